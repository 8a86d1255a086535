//! The passes that turn a [`Graph`] into an executable [`Plan`].
//!
//! Each pass is linear in tasks plus edges:
//! 1. **resolve** dependencies given by key; a key not in the graph is an error naming both the
//!    task and the missing key;
//! 2. **cull**: keep only the tasks the requested outputs need (a reverse reachability walk);
//! 3. **cycle check** (Kahn's algorithm); on failure, walk the leftover tasks to one cycle and
//!    report its keys, `a -> b -> c -> a`, each depending on the next. Skipped when every
//!    dependency was given by id: those always point to earlier tasks, so no cycle can form;
//! 4. **fuse** linear chains `p -> c` where `c` has `p` as its only input, `p` has `c` as its only
//!    consumer, `p` is not an output and both carry the same annotations; a chain becomes one
//!    task under the key of its last member;
//! 5. **order**: one static priority per task ([`order`](super::order)), then user priorities
//!    (annotations) override it: tasks sort by `(-user_priority, static_priority)`.

use std::time::{Duration, Instant};

use super::{order, Annotations, Csr, FusedStep, Graph, Key, Op, TaskId, UNRESOLVED};
use crate::error::{Error, ErrorKind, Result};

/// Which optional passes to run.
#[derive(Clone, Debug)]
pub struct PlanOptions {
    /// Fuse linear chains into single tasks (default on).
    pub fuse: bool,
}

impl Default for PlanOptions {
    fn default() -> Self {
        PlanOptions { fuse: true }
    }
}

/// A validated, culled, fused and ordered graph, ready for an executor.
pub struct Plan {
    pub(crate) keys: Vec<Key>,
    pub(crate) ops: Vec<Op>,
    /// Dependencies in argument order (repeats kept: an input passed twice is two arguments).
    pub(crate) deps: Csr,
    /// Dependencies without repeats; `None` when `deps` has none.
    unique_deps: Option<Csr>,
    /// Distinct consumers of each task.
    pub(crate) dependents: Csr,
    /// Empty when no task is annotated, else one entry per task.
    pub(crate) annotations: Vec<Option<Box<Annotations>>>,
    /// Position in the run order: lower runs first among ready tasks.
    pub(crate) priority: Vec<u32>,
    /// Requested outputs, in the order asked (repeats allowed).
    pub(crate) outputs: Vec<TaskId>,
    pub(crate) is_output: Vec<bool>,
    pub(crate) stats: PlanStats,
}

/// What the passes did and how long they took.
#[derive(Clone, Debug, Default)]
pub struct PlanStats {
    /// Tasks in the graph as built.
    pub tasks_built: usize,
    /// Tasks removed by culling.
    pub culled: usize,
    /// Tasks merged away by fusion.
    pub fused: usize,
    /// Time spent in the static ordering.
    pub order_time: Duration,
    /// Time spent in all passes together.
    pub total_time: Duration,
    /// Time of each pass, in the order run.
    pub pass_times: Vec<(&'static str, Duration)>,
}

impl std::fmt::Debug for Plan {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "Plan({} tasks, {} edges)",
            self.len(),
            self.deps.num_edges()
        )
    }
}

impl Plan {
    /// Number of tasks to run.
    pub fn len(&self) -> usize {
        self.keys.len()
    }
    /// True when nothing runs.
    pub fn is_empty(&self) -> bool {
        self.keys.is_empty()
    }
    /// Keys by id.
    pub fn keys(&self) -> &[Key] {
        &self.keys
    }
    /// Dependencies (argument order) by id.
    pub fn deps(&self) -> &Csr {
        &self.deps
    }
    /// Dependencies without repeats.
    pub fn unique_deps(&self) -> &Csr {
        self.unique_deps.as_ref().unwrap_or(&self.deps)
    }
    /// Distinct consumers by id.
    pub fn dependents(&self) -> &Csr {
        &self.dependents
    }
    /// Static priorities (rank in the run order).
    pub fn priority(&self) -> &[u32] {
        &self.priority
    }
    /// Output ids, in the order requested.
    pub fn outputs(&self) -> &[TaskId] {
        &self.outputs
    }
    /// Statistics of the passes.
    pub fn stats(&self) -> &PlanStats {
        &self.stats
    }
    /// Op names by id.
    pub fn op_name(&self, task: TaskId) -> &str {
        self.ops[task.index()].name()
    }
    /// The annotations of a task.
    pub fn annotations(&self, task: TaskId) -> Option<&Annotations> {
        annotation(&self.annotations, task.index() as u32)
    }
}

/// The columns of a graph while the passes rewrite it.
struct Parts {
    keys: Vec<Key>,
    ops: Vec<Op>,
    deps: Csr,
    /// Empty when no task is annotated (as in `Graph`).
    annotations: Vec<Option<Box<Annotations>>>,
    outputs: Vec<TaskId>,
}

pub(super) fn build(graph: Graph, outputs: &[TaskId], options: &PlanOptions) -> Result<Plan> {
    let start = Instant::now();
    let tasks_built = graph.len();
    for o in outputs {
        if o.index() >= tasks_built {
            return Err(Error::new(ErrorKind::UnknownKey {
                key: format!("task id {}", o.0),
            }));
        }
    }
    // Dependencies given by id always point to earlier tasks, so only dependencies given by
    // key (forward references) can close a cycle.
    let may_have_cycles = !graph.unresolved.is_empty();
    let mut pass_times: Vec<(&'static str, Duration)> = Vec::with_capacity(8);
    let mut lap = Instant::now();
    let mut mark = |name: &'static str, times: &mut Vec<(&'static str, Duration)>| {
        let now = Instant::now();
        times.push((name, now - lap));
        lap = now;
    };
    let mut parts = resolve(graph, outputs)?;
    mark("resolve", &mut pass_times);
    let culled = cull(&mut parts);
    mark("cull", &mut pass_times);
    let (mut unique_deps, mut dependents) = adjacency(&parts.deps, parts.keys.len());
    mark("adjacency", &mut pass_times);
    if may_have_cycles {
        check_cycles(
            &parts.keys,
            unique_deps.as_ref().unwrap_or(&parts.deps),
            &dependents,
        )?;
        mark("cycles", &mut pass_times);
    }
    let mut fused = 0;
    if options.fuse {
        fused = fuse(&mut parts, &dependents);
        if fused > 0 {
            (unique_deps, dependents) = adjacency(&parts.deps, parts.keys.len());
        }
        mark("fuse", &mut pass_times);
    }
    let n = parts.keys.len();
    let order_start = Instant::now();
    let keys = &parts.keys;
    let order_deps = unique_deps.as_ref().unwrap_or(&parts.deps);
    let mut priority = order::order_checked(order_deps, &dependents, &|a: u32, b: u32| {
        keys[a as usize].cmp(&keys[b as usize])
    });
    if order::dask_replica_applies(order_deps) {
        // Dask's own order competes too, with the keys' text as its string keys.
        let texts: Vec<String> = keys.iter().map(ToString::to_string).collect();
        let texts: Vec<&str> = texts.iter().map(String::as_str).collect();
        priority = order::with_dask_candidate(order_deps, &dependents, priority, &texts);
    }
    let order_time = order_start.elapsed();
    mark("order", &mut pass_times);
    apply_user_priorities(&parts.annotations, &mut priority);
    let mut is_output = vec![false; n];
    for o in &parts.outputs {
        is_output[o.index()] = true;
    }
    mark("finish", &mut pass_times);
    Ok(Plan {
        keys: parts.keys,
        ops: parts.ops,
        deps: parts.deps,
        unique_deps,
        dependents,
        annotations: parts.annotations,
        priority,
        outputs: parts.outputs,
        is_output,
        stats: PlanStats {
            tasks_built,
            culled,
            fused,
            order_time,
            total_time: start.elapsed(),
            pass_times,
        },
    })
}

fn resolve(graph: Graph, outputs: &[TaskId]) -> Result<Parts> {
    let Graph {
        keys,
        ops,
        dep_offsets,
        mut dep_targets,
        unresolved,
        annotations,
        index,
    } = graph;
    for (pos, missing) in unresolved {
        // The task owning position `pos`: the last offset <= pos.
        let owner = dep_offsets.partition_point(|&o| o <= pos) - 1;
        let found = index.get().and_then(|ix| ix.find(&keys, &missing));
        match found {
            Some(id) => dep_targets[pos as usize] = id,
            None => {
                return Err(Error::new(ErrorKind::MissingDependency {
                    key: keys[owner].to_string(),
                    missing: missing.to_string(),
                }))
            }
        }
    }
    debug_assert!(!dep_targets.contains(&UNRESOLVED));
    drop(index);
    let deps = Csr::from_raw(dep_offsets, dep_targets);
    Ok(Parts {
        keys,
        ops,
        deps,
        annotations,
        outputs: outputs.to_vec(),
    })
}

/// Unique dependencies (when `deps` has repeats) and distinct dependents.
fn adjacency(deps: &Csr, n: usize) -> (Option<Csr>, Csr) {
    let unique = deps.has_repeated_targets(n).then(|| deps.dedup_rows(n));
    let dependents = unique.as_ref().unwrap_or(deps).transpose(n);
    (unique, dependents)
}

/// Removes tasks no output needs; returns how many were removed.
fn cull(parts: &mut Parts) -> usize {
    let n = parts.keys.len();
    let mut needed = vec![false; n];
    let mut stack: Vec<u32> = Vec::new();
    for o in &parts.outputs {
        if !needed[o.index()] {
            needed[o.index()] = true;
            stack.push(o.0);
        }
    }
    let mut count = stack.len();
    while let Some(t) = stack.pop() {
        for &d in parts.deps.row(t) {
            if !needed[d as usize] {
                needed[d as usize] = true;
                count += 1;
                stack.push(d);
            }
        }
    }
    if count == n {
        return 0;
    }
    let mut new_id = vec![UNRESOLVED; n];
    let mut next = 0u32;
    for (i, keep) in needed.iter().enumerate() {
        if *keep {
            new_id[i] = next;
            next += 1;
        }
    }
    let mut deps = Csr::with_capacity(count, parts.deps.num_edges());
    for i in 0..n as u32 {
        if needed[i as usize] {
            deps.push_row(parts.deps.row(i).iter().map(|&d| new_id[d as usize]));
        }
    }
    parts.deps = deps;
    retain_by_mask(&mut parts.keys, &needed);
    retain_by_mask(&mut parts.ops, &needed);
    retain_by_mask(&mut parts.annotations, &needed);
    for o in &mut parts.outputs {
        o.0 = new_id[o.index()];
    }
    n - count
}

fn retain_by_mask<T>(v: &mut Vec<T>, keep: &[bool]) {
    let mut i = 0;
    v.retain(|_| {
        let k = keep[i];
        i += 1;
        k
    });
}

fn check_cycles(keys: &[Key], deps: &Csr, dependents: &Csr) -> Result<()> {
    match deps.find_cycle(dependents) {
        None => Ok(()),
        Some(cycle) => {
            let mut names: Vec<String> = cycle
                .iter()
                .map(|&i| keys[i as usize].to_string())
                .collect();
            names.push(names[0].clone());
            Err(Error::new(ErrorKind::Cycle { keys: names }))
        }
    }
}

/// Fuses linear chains; returns how many tasks were merged away.
fn fuse(parts: &mut Parts, dependents: &Csr) -> usize {
    let n = parts.keys.len();
    let mut is_output = vec![false; n];
    for o in &parts.outputs {
        is_output[o.index()] = true;
    }
    // The dependency `c` fuses with, if any.
    let fuses_into = |c: u32| -> Option<u32> {
        if parts.deps.row_len(c) != 1 {
            return None;
        }
        // One argument: its single dependency (no repeats possible in a row of one).
        let p = parts.deps.row(c)[0];
        (dependents.row_len(p) == 1
            && !is_output[p as usize]
            && annotation(&parts.annotations, p) == annotation(&parts.annotations, c))
        .then_some(p)
    };
    // Graphs without a chain (trees, fan-ins) stop here, before the per-task arrays below.
    let Some(first) = (0..n as u32).find(|&c| fuses_into(c).is_some()) else {
        return 0;
    };
    // next[p] = c when p fuses into its single consumer c.
    let mut next = vec![UNRESOLVED; n];
    let mut has_prev = vec![false; n];
    let mut merged = 0usize;
    for c in first..n as u32 {
        if let Some(p) = fuses_into(c) {
            next[p as usize] = c;
            has_prev[c as usize] = true;
            merged += 1;
        }
    }
    // Survivors are the tasks that do not fuse into a successor: lone tasks and chain tails.
    let mut new_id = vec![UNRESOLVED; n];
    let mut count = 0u32;
    for i in 0..n {
        if next[i] == UNRESOLVED {
            new_id[i] = count;
            count += 1;
        }
    }
    // For each chain tail, its head (walk back through has_prev; chains are visited once each).
    let mut head_of_tail = vec![UNRESOLVED; n];
    for h in 0..n as u32 {
        if has_prev[h as usize] || next[h as usize] == UNRESOLVED {
            continue;
        }
        let mut t = h;
        while next[t as usize] != UNRESOLVED {
            t = next[t as usize];
        }
        head_of_tail[t as usize] = h;
    }
    let mut ops: Vec<Option<Op>> = std::mem::take(&mut parts.ops)
        .into_iter()
        .map(Some)
        .collect();
    let mut keys: Vec<Option<Key>> = std::mem::take(&mut parts.keys)
        .into_iter()
        .map(Some)
        .collect();
    let mut annotations = std::mem::take(&mut parts.annotations);
    let mut new_keys = Vec::with_capacity(count as usize);
    let mut new_ops = Vec::with_capacity(count as usize);
    let mut new_annotations = Vec::with_capacity(if annotations.is_empty() {
        0
    } else {
        count as usize
    });
    let mut deps = Csr::with_capacity(count as usize, parts.deps.num_edges());
    for i in 0..n as u32 {
        if next[i as usize] != UNRESOLVED {
            continue;
        }
        let head = head_of_tail[i as usize];
        if head == UNRESOLVED {
            deps.push_row(parts.deps.row(i).iter().map(|&d| new_id[d as usize]));
            new_ops.push(ops[i as usize].take());
        } else {
            deps.push_row(parts.deps.row(head).iter().map(|&d| new_id[d as usize]));
            let mut steps = Vec::new();
            let mut t = head;
            loop {
                let key = keys[t as usize].clone().unwrap_or_else(|| Key::from("?"));
                if let Some(op) = ops[t as usize].take() {
                    push_step(&mut steps, key, op);
                }
                if t == i {
                    break;
                }
                t = next[t as usize];
            }
            new_ops.push(Some(Op::fused(steps)));
        }
        new_keys.push(keys[i as usize].take());
        if let Some(a) = annotations.get_mut(i as usize) {
            new_annotations.push(a.take());
        }
    }
    parts.keys = new_keys.into_iter().flatten().collect();
    parts.ops = new_ops.into_iter().flatten().collect();
    parts.annotations = new_annotations;
    parts.deps = deps;
    for o in &mut parts.outputs {
        o.0 = new_id[o.index()];
    }
    merged
}

/// The annotations of task `i` in a column that is empty when no task has any.
fn annotation(annotations: &[Option<Box<Annotations>>], i: u32) -> Option<&Annotations> {
    annotations.get(i as usize).and_then(|a| a.as_deref())
}

/// Appends `op` to a chain, flattening ops that are themselves fused chains.
fn push_step(steps: &mut Vec<FusedStep>, key: Key, op: Op) {
    match op.fused_steps() {
        Some(inner) => steps.extend(inner.iter().cloned()),
        None => steps.push(FusedStep { key, op }),
    }
}

fn apply_user_priorities(annotations: &[Option<Box<Annotations>>], priority: &mut [u32]) {
    if !annotations
        .iter()
        .any(|a| a.as_ref().is_some_and(|a| a.priority.is_some()))
    {
        return;
    }
    let user = |i: usize| {
        annotations[i]
            .as_ref()
            .and_then(|a| a.priority)
            .unwrap_or(0)
    };
    let mut ids: Vec<u32> = (0..priority.len() as u32).collect();
    ids.sort_unstable_by_key(|&i| (std::cmp::Reverse(user(i as usize)), priority[i as usize]));
    for (rank, &i) in ids.iter().enumerate() {
        priority[i as usize] = rank as u32;
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::graph::Value;

    fn noop() -> Op {
        Op::new("noop", |_, _| Ok(Value::unit()))
    }

    #[test]
    fn missing_dependency_names_both_keys() {
        let mut g = Graph::new();
        g.add_task("a", noop(), ["ghost"]).unwrap();
        let err = g.plan(&["a".into()], &PlanOptions::default()).unwrap_err();
        assert_eq!(
            err.to_string(),
            "task a depends on ghost, which is not in the graph"
        );
    }

    #[test]
    fn cycle_lists_keys() {
        let mut g = Graph::new();
        g.add_task("a", noop(), ["b"]).unwrap();
        g.add_task("b", noop(), ["c"]).unwrap();
        g.add_task("c", noop(), ["a"]).unwrap();
        g.add_task("d", noop(), ["a"]).unwrap();
        let err = g.plan(&["d".into()], &PlanOptions::default()).unwrap_err();
        let msg = err.to_string();
        assert!(
            msg == "dependency cycle: a -> b -> c -> a"
                || msg == "dependency cycle: b -> c -> a -> b"
                || msg == "dependency cycle: c -> a -> b -> c",
            "{msg}"
        );
    }

    #[test]
    fn self_cycle() {
        let mut g = Graph::new();
        g.add_task("a", noop(), ["a"]).unwrap();
        let err = g.plan(&["a".into()], &PlanOptions::default()).unwrap_err();
        assert_eq!(err.to_string(), "dependency cycle: a -> a");
    }

    #[test]
    fn duplicate_key_rejected() {
        // Without a key index (graphs built by id), duplicates are found when planning.
        let mut g = Graph::new();
        let a = g.add_task("a", noop(), Vec::<TaskId>::new()).unwrap();
        g.add_task(("x", 1), noop(), [a]).unwrap();
        g.add_task("a", noop(), [a]).unwrap();
        let err = g.plan_ids(&[a], &PlanOptions::default()).unwrap_err();
        assert_eq!(err.to_string(), "key a is defined twice in the graph");

        // Once the index exists (after a lookup), a duplicate is refused on the spot.
        let mut g = Graph::new();
        g.add_task("a", noop(), Vec::<TaskId>::new()).unwrap();
        assert!(g.contains(&Key::from("a")));
        let err = g.add_task("a", noop(), Vec::<TaskId>::new()).unwrap_err();
        assert_eq!(err.to_string(), "key a is defined twice in the graph");
        assert_eq!(g.len(), 1);
    }

    #[test]
    fn many_keys_without_index_find_no_false_duplicates() {
        let mut g = Graph::new();
        let name: std::sync::Arc<str> = std::sync::Arc::from("k");
        for i in 0..10_000 {
            g.add_task(
                Key::indexed(&name, &[i, i % 7]),
                noop(),
                Vec::<TaskId>::new(),
            )
            .unwrap();
        }
        let last = Key::indexed(&name, &[9_999, 9_999 % 7]);
        let plan = g.plan(&[last], &PlanOptions::default()).unwrap();
        assert_eq!(plan.len(), 1);
    }

    #[test]
    fn a_duplicate_among_many_keys_without_index_is_found() {
        let mut g = Graph::new();
        let name: std::sync::Arc<str> = std::sync::Arc::from("k");
        for i in 0..50_000 {
            g.add_task(Key::indexed(&name, &[i]), noop(), Vec::<TaskId>::new())
                .unwrap();
        }
        g.add_task(Key::indexed(&name, &[31_337]), noop(), Vec::<TaskId>::new())
            .unwrap();
        let err = g
            .plan(&[Key::indexed(&name, &[7])], &PlanOptions::default())
            .unwrap_err();
        assert_eq!(
            err.to_string(),
            "key (\"k\", 31337) is defined twice in the graph"
        );
    }

    #[test]
    fn cull_keeps_only_needed() {
        let mut g = Graph::new();
        let a = g.add_task("a", noop(), Vec::<TaskId>::new()).unwrap();
        let b = g.add_task("b", noop(), [a]).unwrap();
        g.add_task("unused", noop(), [a]).unwrap();
        let _ = b;
        let plan = g.plan(&["b".into()], &PlanOptions { fuse: false }).unwrap();
        assert_eq!(plan.len(), 2);
        assert_eq!(plan.stats().culled, 1);
        assert_eq!(plan.keys()[plan.outputs()[0].index()], Key::from("b"));
    }

    #[test]
    fn fuse_chain_keeps_tail_key_and_annotations() {
        let mut g = Graph::new();
        let a = g.add_task("a", noop(), Vec::<TaskId>::new()).unwrap();
        let b = g.add_task("b", noop(), [a]).unwrap();
        let c = g.add_task("c", noop(), [b]).unwrap();
        let d = g.add_task("d", noop(), [c]).unwrap();
        // d carries a resource: it must not fuse with c.
        g.annotate(d, Annotations::new().resource("gpu", 1));
        let plan = g.plan(&["d".into()], &PlanOptions::default()).unwrap();
        assert_eq!(plan.len(), 2);
        assert_eq!(plan.stats().fused, 2);
        assert_eq!(plan.keys(), &[Key::from("c"), Key::from("d")]);
        assert_eq!(plan.deps().row(1), &[0]);
        assert!(plan.annotations(TaskId(1)).is_some());
        match plan.ops[0].fused_steps() {
            Some(steps) => {
                let keys: Vec<String> = steps.iter().map(|s| s.key.to_string()).collect();
                assert_eq!(keys, ["a", "b", "c"]);
            }
            None => panic!("expected a fused op"),
        }
    }

    #[test]
    fn outputs_are_not_fused_away() {
        let mut g = Graph::new();
        let a = g.add_task("a", noop(), Vec::<TaskId>::new()).unwrap();
        g.add_task("b", noop(), [a]).unwrap();
        let plan = g
            .plan(&["a".into(), "b".into()], &PlanOptions::default())
            .unwrap();
        assert_eq!(plan.len(), 2);
    }

    #[test]
    fn user_priority_overrides_order() {
        let mut g = Graph::new();
        let a = g.add_task("a", noop(), Vec::<TaskId>::new()).unwrap();
        let b = g.add_task("b", noop(), Vec::<TaskId>::new()).unwrap();
        g.annotate(b, Annotations::new().priority(10));
        let plan = g
            .plan(&["a".into(), "b".into()], &PlanOptions::default())
            .unwrap();
        assert!(plan.priority()[b.index()] < plan.priority()[a.index()]);
    }
}
