//! Task graphs: keys, dependencies, ops, and the passes that prepare a graph to run.
//!
//! A [`Graph`] is built by adding tasks: a [`Key`], an [`Op`], and dependencies in argument
//! order (by [`TaskId`] for tasks already added, or by key for forward references). Keys are
//! interned to dense `u32` ids; dependencies live in one flat vector with offsets (CSR), so a
//! million-task graph is a handful of allocations.
//!
//! Before running, [`Graph::plan`] applies the passes, each linear or near-linear:
//!
//! ```text
//!   resolve keys ─► cull to outputs ─► check for cycles ─► fuse linear chains ─► order
//!   (missing dep     (drop what no       (report the keys    (one task per       (one priority
//!    names the key)   output needs)       on the cycle)       chain)              per task)
//! ```
//!
//! Annotations (user priority, retries, resources) ride along with their task through every
//! pass; fusion only joins tasks whose annotations are equal.
//!
//! ```
//! use brisk::{Graph, Op, Value, Runtime};
//! let mut g = Graph::new();
//! let one = g.add_value("one", Value::new(1i64)).unwrap();
//! let two = g.add_value("two", Value::new(2i64)).unwrap();
//! let add = Op::new("add", |_ctx, x: &mut [Value]| {
//!     Ok(Value::new(x[0].downcast_ref::<i64>().unwrap() + x[1].downcast_ref::<i64>().unwrap()))
//! });
//! g.add_task("sum", add, [one, two]).unwrap();
//! let rt = Runtime::builder().threads(2).build().unwrap();
//! let out = rt.compute_graph(g, &["sum".into()]).unwrap();
//! assert_eq!(out[0].downcast_ref::<i64>(), Some(&3));
//! ```

pub mod csr;
pub mod dot;
pub mod graph_file;
mod key;
pub(crate) mod node;
mod op;
pub mod order;
pub mod order_dask;
mod plan;
pub mod pressure;
mod value;

use std::sync::Arc;

use std::cell::OnceCell;
use std::hash::BuildHasher;

use hashbrown::HashTable;
use rustc_hash::FxBuildHasher;

pub use csr::Csr;
pub use key::Key;
pub(crate) use op::FusedStep;
pub use op::{registry, NamedOp, Op, OpFn};
pub use plan::{Plan, PlanOptions};
pub use value::Value;

use crate::error::{Error, ErrorKind, Result};

/// Dense id of a task within one graph.
#[derive(Copy, Clone, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct TaskId(pub u32);

impl TaskId {
    /// The id as an index.
    #[inline]
    pub fn index(self) -> usize {
        self.0 as usize
    }
}

/// A dependency given by id or by key (a key may be added later: a forward reference).
#[derive(Clone, Debug)]
pub enum Dep {
    /// A task already in the graph.
    Id(TaskId),
    /// A task by key, resolved when the graph is planned.
    Key(Key),
}

impl From<TaskId> for Dep {
    fn from(id: TaskId) -> Self {
        Dep::Id(id)
    }
}
impl From<&TaskId> for Dep {
    fn from(id: &TaskId) -> Self {
        Dep::Id(*id)
    }
}
impl From<Key> for Dep {
    fn from(key: Key) -> Self {
        Dep::Key(key)
    }
}
impl From<&Key> for Dep {
    fn from(key: &Key) -> Self {
        Dep::Key(key.clone())
    }
}
impl From<&str> for Dep {
    fn from(key: &str) -> Self {
        Dep::Key(Key::from(key))
    }
}

/// Per-task settings that survive every graph pass.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Annotations {
    /// Runs before ready tasks of lower priority, overriding the static order (default 0;
    /// higher first, like Dask's `priority=`).
    pub priority: Option<i64>,
    /// How many times to re-run the task after it fails.
    pub retries: u32,
    /// Abstract resources the task holds while it runs, e.g. `[("gpu", 1)]`.
    pub resources: Vec<(Arc<str>, u32)>,
}

impl Annotations {
    /// No annotations.
    pub fn new() -> Self {
        Self::default()
    }
    /// Sets the user priority.
    pub fn priority(mut self, priority: i64) -> Self {
        self.priority = Some(priority);
        self
    }
    /// Sets the retry count.
    pub fn retries(mut self, retries: u32) -> Self {
        self.retries = retries;
        self
    }
    /// Adds a resource requirement.
    pub fn resource(mut self, name: &str, units: u32) -> Self {
        self.resources.push((Arc::from(name), units));
        self
    }
    fn is_empty(&self) -> bool {
        self.priority.is_none() && self.retries == 0 && self.resources.is_empty()
    }
}

const UNRESOLVED: u32 = u32::MAX;

/// A task graph under construction. See the [module docs](self).
#[derive(Default)]
pub struct Graph {
    keys: Vec<Key>,
    ops: Vec<Op>,
    dep_offsets: Vec<u32>,
    dep_targets: Vec<u32>,
    /// Dependencies given by a key not yet in the graph: (position in `dep_targets`, key).
    unresolved: Vec<(u32, Key)>,
    /// Empty until a task is annotated, then one entry per task: graphs without annotations
    /// (most big ones) never allocate or touch it.
    annotations: Vec<Option<Box<Annotations>>>,
    /// Key -> id, built on the first lookup and kept up to date after that. Graphs built by id
    /// (the collections, the benchmarks) never need it: a hash table of a million keys costs a
    /// cache miss per insert, more than everything else in building a task. Their duplicate
    /// keys are found when the graph is planned, by sorting key hashes.
    index: OnceCell<KeyIndex>,
}

/// The lazily built key index: ids only (keys are compared through `Graph::keys`), plus the
/// first duplicate found while building it from existing keys.
#[derive(Clone)]
struct KeyIndex {
    table: HashTable<u32>,
    duplicate: Option<u32>,
}

impl KeyIndex {
    fn build(keys: &[Key]) -> KeyIndex {
        let mut table = HashTable::with_capacity(keys.len());
        let mut duplicate = None;
        for (i, key) in keys.iter().enumerate() {
            match table.entry(
                hash_key(key),
                |&j| keys[j as usize] == *key,
                |&j| hash_key(&keys[j as usize]),
            ) {
                hashbrown::hash_table::Entry::Occupied(_) => {
                    duplicate.get_or_insert(i as u32);
                }
                hashbrown::hash_table::Entry::Vacant(e) => {
                    e.insert(i as u32);
                }
            }
        }
        KeyIndex { table, duplicate }
    }

    fn find(&self, keys: &[Key], key: &Key) -> Option<u32> {
        self.table
            .find(hash_key(key), |&i| keys[i as usize] == *key)
            .copied()
    }
}

/// The first key that appears twice. A bitmap of hash buckets (sixteen per key, a few bits
/// per key, mostly in cache) marks the buckets hit twice; only keys in those (a few percent)
/// are sorted by `(hash, id)` and compared. No hash table of keys: that costs a cache miss
/// per key.
fn find_duplicate(keys: &[Key]) -> Option<u32> {
    let hashes: Vec<u64> = keys.iter().map(hash_key).collect();
    let buckets = (keys.len().saturating_mul(16)).next_power_of_two().max(64);
    let shift = 64 - buckets.trailing_zeros();
    // Fibonacci hashing spreads whatever bits of the hash vary over the bucket number.
    let bucket = |h: u64| (h.wrapping_mul(0x9E37_79B9_7F4A_7C15) >> shift) as usize;
    let mut seen = vec![0u64; buckets / 64];
    let mut twice = vec![0u64; buckets / 64];
    for &h in &hashes {
        let b = bucket(h);
        let (word, bit) = (b / 64, 1u64 << (b % 64));
        if seen[word] & bit != 0 {
            twice[word] |= bit;
        } else {
            seen[word] |= bit;
        }
    }
    drop(seen);
    let mut pairs: Vec<(u64, u32)> = hashes
        .iter()
        .enumerate()
        .filter(|&(_, &h)| {
            let b = bucket(h);
            twice[b / 64] & (1u64 << (b % 64)) != 0
        })
        .map(|(i, &h)| (h, i as u32))
        .collect();
    drop(hashes);
    pairs.sort_unstable();
    let mut first_dup: Option<u32> = None;
    let mut start = 0;
    while start < pairs.len() {
        let mut end = start + 1;
        while end < pairs.len() && pairs[end].0 == pairs[start].0 {
            end += 1;
        }
        // Equal hashes: compare the keys themselves (runs longer than one are rare).
        let run = &pairs[start..end];
        for (a, &(_, i)) in run.iter().enumerate() {
            if run[a + 1..]
                .iter()
                .any(|&(_, j)| keys[i as usize] == keys[j as usize])
            {
                let later = run[a + 1..]
                    .iter()
                    .filter(|&&(_, j)| keys[i as usize] == keys[j as usize])
                    .map(|&(_, j)| j)
                    .max()
                    .unwrap_or(i);
                first_dup = Some(first_dup.map_or(later, |d| d.min(later)));
            }
        }
        start = end;
    }
    first_dup
}

fn hash_key(key: &Key) -> u64 {
    FxBuildHasher.hash_one(key)
}

impl Graph {
    /// An empty graph.
    pub fn new() -> Self {
        Self::with_capacity(0, 0)
    }

    /// An empty graph with room for `tasks` tasks and `edges` dependencies.
    pub fn with_capacity(tasks: usize, edges: usize) -> Self {
        let mut dep_offsets = Vec::with_capacity(tasks + 1);
        dep_offsets.push(0);
        let index = OnceCell::new();
        Graph {
            keys: Vec::with_capacity(tasks),
            ops: Vec::with_capacity(tasks),
            dep_offsets,
            dep_targets: Vec::with_capacity(edges),
            unresolved: Vec::new(),
            annotations: Vec::new(),
            index,
        }
    }

    /// Adds a task; `deps` are its inputs in argument order (by id or key).
    ///
    /// # Errors
    /// [`ErrorKind::DuplicateKey`] if `key` is already in the graph; [`ErrorKind::UnknownKey`]
    /// for a [`TaskId`] that is not in the graph.
    pub fn add_task<D: Into<Dep>>(
        &mut self,
        key: impl Into<Key>,
        op: Op,
        deps: impl IntoIterator<Item = D>,
    ) -> Result<TaskId> {
        let key = key.into();
        let id = TaskId(self.keys.len() as u32);
        if self.keys.len() >= UNRESOLVED as usize - 1 {
            return Err(Error::config("a graph holds at most 2^32 - 2 tasks"));
        }
        if let Some(index) = self.index.get_mut() {
            let keys = &self.keys;
            match index.table.entry(
                hash_key(&key),
                |&i| keys[i as usize] == key,
                |&i| hash_key(&keys[i as usize]),
            ) {
                hashbrown::hash_table::Entry::Occupied(_) => {
                    return Err(Error::new(ErrorKind::DuplicateKey {
                        key: key.to_string(),
                    }))
                }
                hashbrown::hash_table::Entry::Vacant(e) => {
                    e.insert(id.0);
                }
            }
        }
        self.keys.push(key);
        let start = self.dep_targets.len();
        for dep in deps {
            match dep.into() {
                Dep::Id(d) => {
                    if d.index() >= id.index() {
                        let key =
                            format!("task id {} (dependency of {})", d.0, self.keys[id.index()]);
                        self.rollback(id, start);
                        return Err(Error::new(ErrorKind::UnknownKey { key }));
                    }
                    self.dep_targets.push(d.0);
                }
                Dep::Key(k) => match self.id(&k) {
                    Some(d) if d != id => self.dep_targets.push(d.0),
                    _ => {
                        // Forward reference (or a self-reference, which resolves to a cycle).
                        self.unresolved.push((self.dep_targets.len() as u32, k));
                        self.dep_targets.push(UNRESOLVED);
                    }
                },
            }
        }
        self.dep_offsets.push(self.dep_targets.len() as u32);
        self.ops.push(op);
        if !self.annotations.is_empty() {
            self.annotations.push(None);
        }
        Ok(id)
    }

    fn rollback(&mut self, id: TaskId, start: usize) {
        self.dep_targets.truncate(start);
        self.unresolved.retain(|(pos, _)| (*pos as usize) < start);
        if let Some(key) = self.keys.pop() {
            let removed = self.keys.len();
            if let Some(index) = self.index.get_mut() {
                if let Ok(e) = index
                    .table
                    .find_entry(hash_key(&key), |&i| i as usize == removed)
                {
                    e.remove();
                }
            }
        }
        debug_assert_eq!(self.keys.len(), id.index());
    }

    /// Adds a task whose result is `value` (a literal: nothing runs).
    pub fn add_value(&mut self, key: impl Into<Key>, value: Value) -> Result<TaskId> {
        self.add_task(key, Op::literal(value), std::iter::empty::<TaskId>())
    }

    /// Sets the annotations of a task.
    pub fn annotate(&mut self, task: TaskId, annotations: Annotations) {
        if task.index() >= self.len() || (self.annotations.is_empty() && annotations.is_empty()) {
            return;
        }
        if self.annotations.is_empty() {
            self.annotations.resize_with(self.len(), || None);
        }
        self.annotations[task.index()] = (!annotations.is_empty()).then(|| Box::new(annotations));
    }

    /// The annotations of a task, if any were set.
    pub fn annotations(&self, task: TaskId) -> Option<&Annotations> {
        self.annotations
            .get(task.index())
            .and_then(|a| a.as_deref())
    }

    /// The id of `key`, if present.
    pub fn id(&self, key: &Key) -> Option<TaskId> {
        self.index
            .get_or_init(|| KeyIndex::build(&self.keys))
            .find(&self.keys, key)
            .map(TaskId)
    }

    /// The first duplicated key, if any (found by the index, or by sorting key hashes when no
    /// index was built).
    fn duplicate_key(&self) -> Option<&Key> {
        let dup = match self.index.get() {
            Some(index) => index.duplicate,
            None => find_duplicate(&self.keys),
        };
        dup.map(|i| &self.keys[i as usize])
    }

    /// True when `key` is in the graph.
    pub fn contains(&self, key: &Key) -> bool {
        self.id(key).is_some()
    }

    /// The key of a task.
    pub fn key(&self, task: TaskId) -> &Key {
        &self.keys[task.index()]
    }

    /// The op of a task.
    pub fn op(&self, task: TaskId) -> &Op {
        &self.ops[task.index()]
    }

    /// Number of tasks.
    pub fn len(&self) -> usize {
        self.keys.len()
    }

    /// True for an empty graph.
    pub fn is_empty(&self) -> bool {
        self.keys.is_empty()
    }

    /// Number of dependency edges (with repeats).
    pub fn num_edges(&self) -> usize {
        self.dep_targets.len()
    }

    /// Keys of all tasks, by id.
    pub fn keys(&self) -> &[Key] {
        &self.keys
    }

    /// Renders the graph as Graphviz DOT, tasks colored by their static order.
    pub fn to_dot(&self) -> Result<String> {
        let outputs: Vec<TaskId> = (0..self.len() as u32).map(TaskId).collect();
        let probe = self.shallow_clone();
        let plan = probe.plan_ids(&outputs, &PlanOptions { fuse: false })?;
        let ops: Vec<&str> = plan.ops.iter().map(|o| o.name()).collect();
        dot::render_dot(&plan.keys, &ops, &plan.deps, Some(&plan.priority))
    }

    /// A copy sharing ops and values (reference counted).
    pub fn shallow_clone(&self) -> Graph {
        Graph {
            keys: self.keys.clone(),
            ops: self.ops.clone(),
            dep_offsets: self.dep_offsets.clone(),
            dep_targets: self.dep_targets.clone(),
            unresolved: self.unresolved.clone(),
            annotations: self.annotations.clone(),
            index: self.index.clone(),
        }
    }

    /// Validates, culls to `outputs`, fuses and orders the graph.
    ///
    /// # Errors
    /// Missing dependencies, unknown output keys and cycles, each naming the keys involved.
    pub fn plan(self, outputs: &[Key], options: &PlanOptions) -> Result<Plan> {
        let mut ids = Vec::with_capacity(outputs.len());
        // A few outputs of a graph without an index: scan (sequential, no index to build),
        // from the end, where graphs built bottom-up keep their outputs. Which copy of a
        // duplicated key is found does not matter: planning refuses duplicates.
        let scan = self.index.get().is_none() && outputs.len() <= 4;
        for k in outputs {
            let found = if scan {
                self.keys
                    .iter()
                    .rposition(|x| x == k)
                    .map(|i| TaskId(i as u32))
            } else {
                self.id(k)
            };
            match found {
                Some(id) => ids.push(id),
                None => return Err(Error::new(ErrorKind::UnknownKey { key: k.to_string() })),
            }
        }
        self.plan_ids(&ids, options)
    }

    /// Like [`plan`](Self::plan) with outputs given by id.
    pub fn plan_ids(self, outputs: &[TaskId], options: &PlanOptions) -> Result<Plan> {
        let start = std::time::Instant::now();
        if let Some(key) = self.duplicate_key() {
            return Err(Error::new(ErrorKind::DuplicateKey {
                key: key.to_string(),
            }));
        }
        if !self.unresolved.is_empty() {
            // Resolving key dependencies needs the index.
            let _ = self.id(&self.keys[0]);
        }
        let checked = start.elapsed();
        let mut plan = plan::build(self, outputs, options)?;
        plan.stats.pass_times.insert(0, ("duplicates", checked));
        plan.stats.total_time += checked;
        Ok(plan)
    }
}

impl std::fmt::Debug for Graph {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "Graph({} tasks, {} edges)",
            self.keys.len(),
            self.dep_targets.len()
        )
    }
}
