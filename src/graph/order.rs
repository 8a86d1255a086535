//! Static task ordering: one priority per task, after Dask's `dask/order.py` (2024+).
//!
//! The order simulates a single-threaded run that keeps as few results alive as possible:
//! finish the branch you started before loading new inputs, follow the critical (heaviest)
//! path, run the tasks that free their inputs. Its quality is the *pressure* of
//! [`crate::graph::pressure`] (results held before each step, unit sizes); the graphs in
//! `shared/data/order-graphs` record Dask's pressure, and `tests/order.rs` checks that ours is
//! never higher at the peak.
//!
//! # Algorithm
//!
//! 1. **Preparation** (`Prep`, linear apart from the root sets). A depth-first postorder from
//!    the leaves along dependencies gives a topological order (and detects cycles). One sweep
//!    over it computes Dask's sort key `(total_dependencies, #deps, #connected roots,
//!    -max fan-out of those roots)`, packed into a `u128`; the final `str(key)` component is
//!    the caller's `tie`. Connected-root sets are sorted interval lists over a depth-first
//!    numbering of the roots (`RootSets`), so a reduction tree costs one interval per task.
//!    When at least two leaves compete, the root → leaf relation gives each leaf its *degree*
//!    (roots it still needs).
//! 2. **Walk** (`Walker`, Dask's core loop). Repeatedly pick a target leaf — the one of least
//!    positive degree, preferring leaves next to finished work, smallest key first (a
//!    tournament tree, `Targets`), or else the next of the leaves pre-sorted by key — and
//!    build a critical path from it backwards through the heaviest dependency. Walk the path:
//!    emit a runnable task; push a blocked one back with its missing dependencies (heaviest on
//!    top) or with the cached paths that lead to it. Emitting follows single-dependent chains
//!    at once. `process_runnables` walks forward from tasks that became runnable on the side:
//!    paths that end in a leaf or complete a reducer run now, paths that reach a reducer
//!    still missing inputs are cached at it until enough have arrived.
//! 3. **Peak-safe moves.** Every root is moved to just before its first dependent and every
//!    leaf to just after its last dependency (`sink_roots`, `hoist_leaves`). Neither move
//!    can raise the peak (see their docs); together they repair shapes the walk handles
//!    badly, e.g. a chain whose every link also feeds an output ("comb": Dask holds the whole
//!    chain, we hold one result).
//! 4. **Portfolio.** Dask iterates Python sets in three places, so its order depends on the
//!    string hash seed (the README of the graph set lists spreads of up to 30% in peak). On
//!    graphs below `EXTRA_WALK_BUDGET` tasks plus edges we also run up to `MAX_EXTRA_WALKS`
//!    *salted* walks that perturb exactly those choices, and keep the order with the lowest
//!    `(peak, mean)` pressure; the unsalted walk wins ties (every fourth salted walk also
//!    tries Dask's other leaf strategy). Bigger graphs get one walk, so the cost stays
//!    near-linear: about 70–100 ns per task on chains and trees of a million tasks. The
//!    unsalted walk alone is one draw from the same spread as Dask's hash seeds: on ~560
//!    exported graphs it peaks above Dask's seed-0 value on 50, while Dask itself with seed
//!    1, 2 or 3 peaks above its seed-0 value on 82-88.
//! 5. **Dask's own order** ([`order_with_keys`], which the planner and the CLI use). With the
//!    keys' text at hand, [`order_dask_exact`] reproduces Dask's order *exactly* as it comes
//!    out for string keys under `PYTHONHASHSEED=0` (a model of CPython's set tables and string
//!    hash), and it is kept when its `(peak, mean)` pressure is lower. The guarantee is
//!    computed on the graph being ordered, not tuned on any graph set: up to
//!    [`DASK_REPLICA_MAX_SIZE`] tasks plus edges (and within the replica's work budget), the
//!    peak is never above that of Dask's order of the same graph with those strings as keys,
//!    and at an equal peak neither is the mean. On the ~560 exported graphs the salted
//!    portfolio alone peaks above Dask on 9; with the replica on none (Dask's order is chosen
//!    on 30). The replica costs about as much as the walks together (1-3x one walk).
//!
//! Big graphs whose ids scatter the walk over memory (built layer by layer, as array
//! collections do) are first renumbered in depth-first postorder; the result is identical,
//! only the cache misses go (`order` has the numbers).
//!
//! # Invariants
//!
//! * The result is a permutation of `0..n` and, for an acyclic graph, a topological order:
//!   the walk emits only runnable tasks (checked, with a repair as a safety net), and the
//!   moves keep every task between its dependencies and dependents.
//! * No recursion anywhere: explicit stacks, so a million-long chain is fine.
//! * `tie` decides between tasks whose structural keys are equal: when sorting the leaves and,
//!   on graphs up to `KEY_TIE_BUDGET` tasks plus edges, when comparing siblings on the
//!   critical path (Dask's full sort key, which ends with `str(key)`). On bigger graphs
//!   siblings are compared by task id (insertion order): the per-edge key comparisons would
//!   cost 30-40% of the ordering time there.
//! * Deterministic: salts are fixed, and no hash-map iteration order is observed (the Dask
//!   replica models Python's set order with a fixed, zero-keyed hash).
//!
//! # Differences from Dask
//!
//! Every node is a task (Dask's special cases for data nodes and alias leaves do not arise);
//! set iteration is replaced by fixed orders; `max fan-out` is the true maximum over the
//! connected roots; the small key fields saturate beyond 2^21; and when the root sets or the
//! root-leaf relation would exceed `SET_BUDGET_PER_ITEM` entries per task and edge, root
//! counts become capped sums and leaf degrees are not tracked (Dask would be quadratic there).

use std::cmp::Ordering;
use std::collections::VecDeque;

use rustc_hash::FxHashMap;

use crate::graph::csr::Csr;
use crate::graph::order_dask::order_dask_exact;
use crate::graph::pressure::max_and_sum;

const NONE: u32 = u32::MAX;

/// Returns `priority[i]` = position of task `i` in the static order (0 runs first); a
/// permutation of `0..n` that is a topological order (every task after all its dependencies).
///
/// `deps` = dependencies per task, deduplicated; `dependents` = `deps.transpose(n)`.
/// `tie` breaks ties between otherwise-equal tasks (brisk passes a comparison of keys, like
/// Dask's `str(key)` tie-break); it is called only for tasks whose structural keys are equal,
/// and per edge only on graphs of up to about 2^18 tasks plus edges.
///
/// The graph must be acyclic. On a cyclic graph the result is still a permutation (tasks that
/// Kahn's sweep reaches first, in that order, then the rest by id) but cannot be topological.
///
/// # Errors
/// [`ErrorKind::Input`](crate::ErrorKind::Input) when `dependents` does not have one row per
/// task or as many edges as `deps`, or either names a task that does not exist.
pub fn order(
    deps: &Csr,
    dependents: &Csr,
    tie: &dyn Fn(u32, u32) -> Ordering,
) -> crate::Result<Vec<u32>> {
    crate::graph::pressure::check_adjacency("order", deps, dependents)?;
    Ok(order_checked(deps, dependents, tie))
}

/// [`order`], plus Dask's own order as one more candidate: `keys[i]` is task `i`'s key
/// text, hashed as CPython hashes that string under `PYTHONHASHSEED=0` to reproduce Dask's
/// set iteration order exactly (see [`order_dask_exact`]). Of the two orders, the one with
/// the lower `(peak, mean)` pressure on this graph is returned (brisk's walk on ties). So on a
/// graph of up to [`DASK_REPLICA_MAX_SIZE`] tasks plus edges, the peak and mean pressure are
/// never above those of Dask's order of the same graph with these strings as keys.
///
/// `deps` rows should list each task's dependencies in argument order (Dask builds its sets
/// in that order, so the replica is exact only then).
///
/// # Errors
/// As [`order`]; also [`ErrorKind::Input`](crate::ErrorKind::Input) when `keys` does not
/// have one entry per task.
pub fn order_with_keys(
    deps: &Csr,
    dependents: &Csr,
    tie: &dyn Fn(u32, u32) -> Ordering,
    keys: &[&str],
) -> crate::Result<Vec<u32>> {
    crate::graph::pressure::check_adjacency("order", deps, dependents)?;
    if keys.len() != deps.len() {
        return Err(crate::Error::input(format!(
            "order: {} keys for {} tasks (need one per task)",
            keys.len(),
            deps.len()
        )));
    }
    let prio = order_checked(deps, dependents, tie);
    Ok(with_dask_candidate(deps, dependents, prio, keys))
}

/// Largest graph (tasks plus edges) on which [`order_with_keys`] also runs the Dask replica:
/// 2^17, above every graph of Dask's test suite and collections that we exported (the
/// largest is ~120k). The replica costs 1–3 walks (its set tables ~100 bytes per task plus
/// edge); beyond this size ordering time matters more than the last few percent of peak, so
/// bigger graphs keep brisk's own order, as they keep a single walk.
pub const DASK_REPLICA_MAX_SIZE: usize = 1 << 17;

/// Work budget of the replica per task plus edge (set elements touched); a graph that would
/// need more (huge ancestor sets, long scans for the next target) keeps brisk's order.
const DASK_REPLICA_WORK_PER_ITEM: usize = 64;

/// Whether [`order_with_keys`] runs the Dask replica on a graph of this size.
pub(crate) fn dask_replica_applies(deps: &Csr) -> bool {
    deps.len() + deps.num_edges() <= DASK_REPLICA_MAX_SIZE
}

/// `prio`, or Dask's order of the graph when that has a lower `(peak, mean)` pressure.
pub(crate) fn with_dask_candidate(
    deps: &Csr,
    dependents: &Csr,
    prio: Vec<u32>,
    keys: &[&str],
) -> Vec<u32> {
    if !dask_replica_applies(deps) || keys.len() != deps.len() {
        return prio;
    }
    let size = deps.len() + deps.num_edges();
    let budget = DASK_REPLICA_WORK_PER_ITEM * size + (1 << 16);
    let Some(dask) = order_dask_exact(deps, keys, budget) else {
        return prio;
    };
    if !is_topological(deps, &dask) {
        debug_assert!(false, "Dask replica broke dependencies");
        return prio;
    }
    let ours = max_and_sum(deps, dependents, &positions(&prio));
    let theirs = max_and_sum(deps, dependents, &positions(&dask));
    if theirs < ours {
        dask
    } else {
        prio
    }
}

/// [`order`] of arguments already checked (the planner's, which builds them itself).
pub(crate) fn order_checked(
    deps: &Csr,
    dependents: &Csr,
    tie: &dyn Fn(u32, u32) -> Ordering,
) -> Vec<u32> {
    let n = deps.len();
    if n == 0 {
        return Vec::new();
    }
    let Some(topo) = dfs_postorder(deps, dependents) else {
        return cyclic_fallback(deps, dependents);
    };
    if n < RENUMBER_MIN || !scattered(&topo) {
        return order_acyclic(deps, dependents, tie, topo, Vec::new());
    }
    // The walk visits tasks roughly in depth-first postorder. When the caller's ids scatter
    // that order over memory (graphs built layer by layer do), every task touched is a cache
    // miss; renumbering the graph in that order first is cheaper than the misses (a
    // million-task grid built layer by layer: 220 -> 150 ns per task, renumbering included).
    // Rows keep their order and ties are broken by the caller's ids, so the result is the
    // same either way.
    let mut new_of = vec![0u32; n];
    for (i, &t) in topo.iter().enumerate() {
        new_of[t as usize] = i as u32;
    }
    let deps2 = permuted(deps, &topo, &new_of);
    let dependents2 = permuted(dependents, &topo, &new_of);
    let identity: Vec<u32> = (0..n as u32).collect();
    let prio2 = order_acyclic(&deps2, &dependents2, tie, identity, topo);
    new_of.iter().map(|&i| prio2[i as usize]).collect()
}

/// Graphs from this size on may be renumbered before ordering (see [`order`]).
const RENUMBER_MIN: usize = 1 << 16;

/// True when consecutive tasks of `topo` are mostly far apart in memory: a task counts as
/// near when it is within a few slots after one of the last few "streams" (a chain or tree
/// level built in order advances such a stream by one each time).
fn scattered(topo: &[u32]) -> bool {
    const STREAMS: usize = 8;
    const NEAR: u32 = 16;
    let mut heads = [u32::MAX; STREAMS];
    let mut next_slot = 0;
    let mut far = 0usize;
    for &t in topo {
        match heads.iter().position(|&h| t.wrapping_sub(h) <= NEAR) {
            Some(i) => heads[i] = t,
            None => {
                far += 1;
                heads[next_slot] = t;
                next_slot = (next_slot + 1) % STREAMS;
            }
        }
    }
    far * 4 > topo.len()
}

/// `adj` with rows in the order `old_of` (new id -> old id) and targets renamed by `new_of`;
/// each row keeps its order.
fn permuted(adj: &Csr, old_of: &[u32], new_of: &[u32]) -> Csr {
    let mut out = Csr::with_capacity(old_of.len(), adj.num_edges());
    for &t in old_of {
        out.push_row(adj.row(t).iter().map(|&d| new_of[d as usize]));
    }
    out
}

/// [`order`] on an acyclic graph with its topological order `topo` (a depth-first postorder
/// from the leaves). `orig` maps ids to the caller's when the graph was renumbered (empty:
/// the same ids), for the tie-breaks.
fn order_acyclic(
    deps: &Csr,
    dependents: &Csr,
    tie: &dyn Fn(u32, u32) -> Ordering,
    topo: Vec<u32>,
    orig: Vec<u32>,
) -> Vec<u32> {
    let budget = SET_BUDGET_PER_ITEM * (deps.len() + deps.num_edges()) + (1 << 16);
    let prep = Prep::new(deps, dependents, tie, topo, orig, budget);
    let longest = prep.use_longest_path();
    let extra = extra_walks(deps.len() + deps.num_edges());
    let mut best = walk(&prep, longest, 0);
    if extra > 0 {
        let mut best_score = max_and_sum(deps, dependents, &best);
        for salt in 1..=extra {
            // Every fourth extra walk also tries the other of Dask's two strategies.
            let candidate = walk(&prep, longest ^ (salt % 4 == 0), salt);
            let score = max_and_sum(deps, dependents, &candidate);
            // Lower peak first, then lower mean; the unsalted walk wins ties.
            if score < best_score {
                best = candidate;
                best_score = score;
            }
        }
    }
    positions(&best)
}

/// Walks beyond the first for a graph of `size` tasks plus edges: up to
/// [`MAX_EXTRA_WALKS`], within a budget of about [`EXTRA_WALK_BUDGET`] task and edge visits,
/// so that ordering stays near-linear on big graphs.
fn extra_walks(size: usize) -> u32 {
    (EXTRA_WALK_BUDGET / size.max(1)).min(MAX_EXTRA_WALKS) as u32
}

/// Most salted walks tried on a small graph.
const MAX_EXTRA_WALKS: usize = 8;
/// Task and edge visits spent on salted walks: graphs above this size get a single walk.
const EXTRA_WALK_BUDGET: usize = 200_000;

/// One complete ordering as a run sequence: the Dask-style walk (salted when `salt != 0`),
/// then the two peak-safe moves ([`sink_roots`], [`hoist_leaves`]).
fn walk(prep: &Prep, longest: bool, salt: u32) -> Vec<u32> {
    let mut walker = Walker::new(prep, longest, salt);
    walker.run();
    let mut prio: Vec<u32> = walker.st.iter().map(|s| s.prio).collect();
    drop(walker);
    // The walk only emits runnable tasks; should that ever fail, keep the order valid anyway.
    let valid = is_topological(prep.deps, &prio);
    debug_assert!(valid, "walk broke dependencies");
    if !valid {
        prio = positions(&repair(prep.deps, prep.dependents, &positions(&prio)));
    }
    let seq = sink_roots(prep.deps, prep.dependents, &positions(&prio), &prio);
    hoist_leaves(prep.deps, prep.dependents, &seq)
}

/// The topological run order closest to `seq`: Kahn's sweep that always runs the ready task
/// that comes first in `seq`. Only used if a walk ever emitted a task before one of its
/// dependencies, which it is not meant to do.
fn repair(deps: &Csr, dependents: &Csr, seq: &[u32]) -> Vec<u32> {
    use std::cmp::Reverse;
    use std::collections::BinaryHeap;
    let n = deps.len();
    let pos = positions(seq);
    let mut missing: Vec<u32> = (0..n as u32).map(|t| deps.row_len(t) as u32).collect();
    let mut ready: BinaryHeap<Reverse<(u32, u32)>> = (0..n as u32)
        .filter(|&t| missing[t as usize] == 0)
        .map(|t| Reverse((pos[t as usize], t)))
        .collect();
    let mut out = Vec::with_capacity(n);
    while let Some(Reverse((_, t))) = ready.pop() {
        out.push(t);
        for &d in dependents.row(t) {
            missing[d as usize] -= 1;
            if missing[d as usize] == 0 {
                ready.push(Reverse((pos[d as usize], d)));
            }
        }
    }
    out
}

/// Inverse of a permutation: positions from a run sequence, or a run sequence from
/// positions.
fn positions(seq: &[u32]) -> Vec<u32> {
    let mut pos = vec![0u32; seq.len()];
    for (i, &t) in seq.iter().enumerate() {
        pos[t as usize] = i as u32;
    }
    pos
}

/// Moves every leaf (a task nobody consumes) to right after its last dependency, keeping the
/// leaves' relative order. Such a move releases the leaf's inputs earlier and cannot raise the
/// peak: the sample taken before the moved leaf equals the old sample of the task it now
/// precedes, and every other sample stays or drops. (It can raise the mean, rarely.)
fn hoist_leaves(deps: &Csr, dependents: &Csr, seq: &[u32]) -> Vec<u32> {
    let pos = positions(seq);
    let is_moved = |t: u32| dependents.row_len(t) == 0 && deps.row_len(t) != 0;
    let anchor = |t: u32| {
        *deps
            .row(t)
            .iter()
            .max_by_key(|&&d| pos[d as usize])
            .expect("a moved leaf has dependencies")
    };
    regroup(seq, is_moved, anchor, false)
}

/// Moves every root with dependents to right before its first dependent, keeping the roots'
/// relative order: its result is then held for the shortest time. Like [`hoist_leaves`], this
/// cannot raise the peak: the sample before the moved root is the old sample of its first
/// dependent minus the root itself, and the samples it used to span each drop by one.
fn sink_roots(deps: &Csr, dependents: &Csr, seq: &[u32], pos: &[u32]) -> Vec<u32> {
    let is_moved = |t: u32| deps.row_len(t) == 0 && dependents.row_len(t) != 0;
    let anchor = |t: u32| {
        *dependents
            .row(t)
            .iter()
            .min_by_key(|&&d| pos[d as usize])
            .expect("a moved root has dependents")
    };
    regroup(seq, is_moved, anchor, true)
}

/// Rebuilds `seq` with every moved task placed next to its anchor (a task that is not moved):
/// just before it (`before`) or just after it, moved tasks of one anchor in their old order.
fn regroup(
    seq: &[u32],
    is_moved: impl Fn(u32) -> bool,
    anchor: impl Fn(u32) -> u32,
    before: bool,
) -> Vec<u32> {
    let n = seq.len();
    // Moved tasks bucketed by anchor with a counting sort: `start[a]..start[a + 1]`.
    let mut anchor_of = vec![NONE; n];
    let mut start = vec![0u32; n + 1];
    for &t in seq {
        if is_moved(t) {
            let a = anchor(t);
            anchor_of[t as usize] = a;
            start[a as usize + 1] += 1;
        }
    }
    for i in 0..n {
        start[i + 1] += start[i];
    }
    let mut bucket = vec![0u32; start[n] as usize];
    let mut fill = start.clone();
    for &t in seq {
        let a = anchor_of[t as usize];
        if a != NONE {
            bucket[fill[a as usize] as usize] = t;
            fill[a as usize] += 1;
        }
    }
    let mut out = Vec::with_capacity(n);
    for &t in seq {
        if anchor_of[t as usize] != NONE {
            continue;
        }
        let group = &bucket[start[t as usize] as usize..start[t as usize + 1] as usize];
        if before {
            out.extend_from_slice(group);
            out.push(t);
        } else {
            out.push(t);
            out.extend_from_slice(group);
        }
    }
    out
}

/// True when `priority` (one entry per task) puts every task after all of its dependencies.
pub fn is_topological(deps: &Csr, priority: &[u32]) -> bool {
    priority.len() == deps.len()
        && (0..deps.len() as u32).all(|t| {
            deps.row(t)
                .iter()
                .all(|&d| priority[d as usize] < priority[t as usize])
        })
}

/// Kahn's order of whatever is reachable, then the rest (on or behind a cycle) by id.
fn cyclic_fallback(deps: &Csr, dependents: &Csr) -> Vec<u32> {
    let n = deps.len();
    let mut prio = vec![NONE; n];
    let topo = kahn(deps, dependents);
    let mut next = 0u32;
    for &t in &topo {
        prio[t as usize] = next;
        next += 1;
    }
    for p in prio.iter_mut() {
        if *p == NONE {
            *p = next;
            next += 1;
        }
    }
    prio
}

/// Topological order by Kahn's sweep (shorter than `n` on a cyclic graph).
fn kahn(deps: &Csr, dependents: &Csr) -> Vec<u32> {
    let n = deps.len();
    let mut missing: Vec<u32> = (0..n as u32).map(|i| deps.row_len(i) as u32).collect();
    let mut topo: Vec<u32> = (0..n as u32)
        .filter(|&i| missing[i as usize] == 0)
        .collect();
    topo.reserve(n - topo.len());
    let mut head = 0;
    while head < topo.len() {
        let t = topo[head];
        head += 1;
        for &d in dependents.row(t) {
            let m = &mut missing[d as usize];
            *m -= 1;
            if *m == 0 {
                topo.push(d);
            }
        }
    }
    topo
}

/// Field widths of the packed sort key below the 64-bit `total_dependencies`.
const NDEPS_BITS: u32 = 21;
const NROOTS_BITS: u32 = 22;
const FANOUT_BITS: u32 = 21;
const NDEPS_MAX: u64 = (1 << NDEPS_BITS) - 1;
const NROOTS_MAX: u64 = (1 << NROOTS_BITS) - 1;
const FANOUT_MAX: u64 = (1 << FANOUT_BITS) - 1;

/// Dask's structural sort key `(total_dependencies, #deps, #connected roots, -max_fanout)`
/// packed into one `u128`, so a comparison is one integer compare. The three small fields
/// saturate (at 2^21, 2^22 and 2^21), which can only merge keys of tasks that are all beyond
/// those sizes; the final `str(key)` component is the caller's `tie`.
#[inline]
fn pack_key(total: u64, ndeps: usize, nroots: u64, fanout: u64) -> u128 {
    let low = ((ndeps as u64).min(NDEPS_MAX) << (NROOTS_BITS + FANOUT_BITS))
        | (nroots.min(NROOTS_MAX) << FANOUT_BITS)
        | (FANOUT_MAX - fanout.min(FANOUT_MAX));
    ((total as u128) << 64) | low as u128
}

#[inline]
fn key_total(k: u128) -> u64 {
    (k >> 64) as u64
}

#[inline]
fn key_fanout(k: u128) -> u64 {
    FANOUT_MAX - (k as u64 & FANOUT_MAX)
}

#[inline]
fn key_nroots(k: u128) -> u64 {
    (k as u64 >> FANOUT_BITS) & NROOTS_MAX
}

/// Per-graph analysis shared by every walk.
struct Prep<'g> {
    deps: &'g Csr,
    dependents: &'g Csr,
    tie: &'g dyn Fn(u32, u32) -> Ordering,
    /// The caller's id of each task when the graph was renumbered, else empty.
    orig: Vec<u32>,
    key: Vec<u128>,
    /// All tasks without dependents (including isolated tasks), ascending by sort key.
    leaves_sorted: Vec<u32>,
    n_roots: usize,
    /// Leaf-degree data, when there are at least two non-root leaves to choose between and
    /// the root-leaf relation is small enough to hold.
    degrees: Option<Degrees>,
    /// Whether the walk breaks ties between structurally equal siblings with `tie` (graphs up
    /// to [`KEY_TIE_BUDGET`] tasks plus edges) or by id.
    sibling_ties_by_key: bool,
}

/// Graphs up to this many tasks plus edges break ties between equal siblings by key.
const KEY_TIE_BUDGET: usize = 1 << 18;

/// Which leaves each root reaches, and how many roots each leaf needs.
struct Degrees {
    /// Row `r` (a task id) lists the non-root leaves root `r` reaches; empty for non-roots.
    root_leaves: Rows,
    /// Per task: number of distinct roots it reaches (meaningful for leaves).
    leaf_degree: Vec<u32>,
}

/// Above this many stored intervals or root-leaf pairs per task and edge, the exact root-set
/// computation gives up (see [`Prep::new`]).
const SET_BUDGET_PER_ITEM: usize = 8;

impl<'g> Prep<'g> {
    /// Analyses the graph. `topo` is [`dfs_postorder`]'s order (its roots' order makes the
    /// root-set intervals); `orig` the caller's ids if renumbered; `budget` the most stored
    /// intervals and root-leaf pairs before root counts fall back to capped sums.
    fn new(
        deps: &'g Csr,
        dependents: &'g Csr,
        tie: &'g dyn Fn(u32, u32) -> Ordering,
        topo: Vec<u32>,
        orig: Vec<u32>,
        budget: usize,
    ) -> Prep<'g> {
        let n = deps.len();
        let n_roots = (0..n as u32).filter(|&t| deps.row_len(t) == 0).count();

        // One sweep in topological order computes Dask's total_dependencies (1 + the sum over
        // dependencies: over-counts shared ancestors, saturating where Python has big ints),
        // the largest fan-out among connected roots, and the connected root sets.
        let mut key = vec![0u128; n];
        let mut sets = RootSets::new(n);
        let mut exact = true;
        for &t in &topo {
            let row = deps.row(t);
            let k = if row.is_empty() {
                sets.add_root(t);
                // Dask's `roots_connected` of a root is the empty set.
                pack_key(1, 0, 0, dependents.row_len(t) as u64)
            } else {
                let mut total: u64 = 1;
                let mut fanout = 0u64;
                let mut approx_roots = 0u64;
                for &d in row {
                    let kd = key[d as usize];
                    total = total.saturating_add(key_total(kd));
                    fanout = fanout.max(key_fanout(kd));
                    approx_roots += if deps.row_len(d) == 0 {
                        1
                    } else {
                        key_nroots(kd)
                    };
                }
                let nroots = if exact {
                    let c = sets.add_task(t, row);
                    if sets.ivs.len() > budget {
                        exact = false;
                    }
                    c as u64
                } else {
                    // Past the budget: the (over-counting) sum, capped at the number of roots.
                    approx_roots.min(n_roots as u64)
                };
                pack_key(total, row.len(), nroots, fanout)
            };
            key[t as usize] = k;
        }

        let leaves: Vec<u32> = (0..n as u32)
            .filter(|&t| dependents.row_len(t) == 0)
            .collect();
        let n_real_leaves = leaves.iter().filter(|&&t| deps.row_len(t) != 0).count();
        let degrees = if exact && n_real_leaves >= 2 {
            sets.degrees(deps, &leaves, budget)
        } else {
            None
        };
        drop(sets);
        let mut prep = Prep {
            deps,
            dependents,
            tie,
            orig,
            key,
            leaves_sorted: Vec::new(),
            n_roots,
            degrees,
            sibling_ties_by_key: n + deps.num_edges() <= KEY_TIE_BUDGET,
        };
        let mut leaves = leaves;
        leaves.sort_unstable_by(|&a, &b| prep.cmp(a, b));
        prep.leaves_sorted = leaves;
        prep
    }

    /// Dask's `sort_key` order: structural key, then the caller's tie-break, then id.
    #[inline]
    fn cmp(&self, a: u32, b: u32) -> Ordering {
        match self.key[a as usize].cmp(&self.key[b as usize]) {
            Ordering::Equal => {
                let (a, b) = (self.orig(a), self.orig(b));
                (self.tie)(a, b).then(a.cmp(&b))
            }
            o => o,
        }
    }

    /// The caller's id of task `t`.
    #[inline]
    fn orig(&self, t: u32) -> u32 {
        if self.orig.is_empty() {
            t
        } else {
            self.orig[t as usize]
        }
    }

    /// Dask's strategy switch: "longest path first" unless roots and leaves are about as many
    /// and the roots reach different numbers of leaves.
    fn use_longest_path(&self) -> bool {
        let n_leaves = self.leaves_sorted.len();
        let r = self.n_roots;
        if (r as f64 - n_leaves as f64).abs() / (r as f64) < 0.8 {
            // With fewer than two non-root leaves every root reaches the same (one or zero).
            let Some(dg) = &self.degrees else {
                return true;
            };
            let mut size = 0usize;
            for t in 0..self.deps.len() as u32 {
                if self.deps.row_len(t) != 0 {
                    continue;
                }
                let l = dg.root_leaves.row_len(t);
                if size == 0 {
                    size = l;
                } else if size != l {
                    return false;
                }
            }
        }
        true
    }
}

/// Depth-first postorder from the leaves along dependencies: a topological order (every task
/// after its dependencies) whose roots come in the order the search meets them. `None` on a
/// cycle. Explicit stack, so a million-long chain is fine.
fn dfs_postorder(deps: &Csr, dependents: &Csr) -> Option<Vec<u32>> {
    const NEW: u8 = 0;
    const OPEN: u8 = 1;
    const DONE: u8 = 2;
    let n = deps.len();
    let mut state = vec![NEW; n];
    let mut topo = Vec::with_capacity(n);
    let mut stack: Vec<(u32, u32)> = Vec::new();
    for leaf in 0..n as u32 {
        if dependents.row_len(leaf) != 0 {
            continue;
        }
        state[leaf as usize] = OPEN;
        stack.push((leaf, 0));
        while let Some(top) = stack.last_mut() {
            let (t, i) = *top;
            let row = deps.row(t);
            if (i as usize) < row.len() {
                top.1 += 1;
                let d = row[i as usize];
                match state[d as usize] {
                    NEW => {
                        state[d as usize] = OPEN;
                        stack.push((d, 0));
                    }
                    OPEN => return None,
                    _ => {}
                }
            } else {
                stack.pop();
                state[t as usize] = DONE;
                topo.push(t);
            }
        }
    }
    // A cycle that reaches no leaf leaves tasks unvisited.
    (topo.len() == n).then_some(topo)
}

/// Root sets as sorted, coalesced lists of intervals over a numbering of the roots.
///
/// Roots are numbered in the order a depth-first search from the leaves meets them, so the
/// roots below any tree-shaped part of the graph are one interval: a reduction tree over a
/// million inputs costs one interval per task instead of Dask's million-element frozensets.
/// Tasks whose dependencies all share one set (by identity) share it, a set that contains the
/// others is reused (Dask's subset check), and multi-interval unions are interned.
struct RootSets {
    set_of: Vec<u32>,
    /// Per set: (offset, length) into `ivs`, and the number of roots in it.
    sets: Vec<(u32, u32, u32)>,
    ivs: Vec<(u32, u32)>,
    root_of_num: Vec<u32>,
    /// Per set: the last task that looked at it (dedups a task's dependencies' sets).
    stamp: Vec<u32>,
    distinct: Vec<u32>,
    scratch: Vec<(u32, u32)>,
    interned: FxHashMap<u64, u32>,
}

impl RootSets {
    fn new(n: usize) -> Self {
        RootSets {
            set_of: vec![NONE; n],
            sets: Vec::new(),
            ivs: Vec::new(),
            root_of_num: Vec::new(),
            stamp: Vec::new(),
            distinct: Vec::new(),
            scratch: Vec::new(),
            interned: FxHashMap::default(),
        }
    }

    fn add_root(&mut self, t: u32) {
        let num = self.root_of_num.len() as u32;
        self.root_of_num.push(t);
        self.set_of[t as usize] = self.push_set(&[(num, num + 1)]);
    }

    /// Computes the set of a non-root task from its dependencies' sets; returns its size.
    fn add_task(&mut self, t: u32, row: &[u32]) -> u32 {
        self.distinct.clear();
        for &d in row {
            let s = self.set_of[d as usize];
            if self.stamp[s as usize] != t {
                self.stamp[s as usize] = t;
                self.distinct.push(s);
            }
        }
        let chosen = if self.distinct.len() == 1 {
            self.distinct[0]
        } else {
            // The largest set, if it contains all the others, is the union.
            let mut big = self.distinct[0];
            let mut big_len = self.set_len(big);
            for &s in &self.distinct[1..] {
                let l = self.set_len(s);
                if l > big_len {
                    big = s;
                    big_len = l;
                }
            }
            if self
                .distinct
                .iter()
                .all(|&s| s == big || self.is_subset(s, big))
            {
                big
            } else {
                self.union_of_distinct()
            }
        };
        self.set_of[t as usize] = chosen;
        self.set_len(chosen)
    }

    fn union_of_distinct(&mut self) -> u32 {
        let mut scratch = std::mem::take(&mut self.scratch);
        scratch.clear();
        for &s in &self.distinct {
            scratch.extend_from_slice(self.intervals(s));
        }
        scratch.sort_unstable();
        let mut w = 0;
        for i in 1..scratch.len() {
            if scratch[i].0 <= scratch[w].1 {
                scratch[w].1 = scratch[w].1.max(scratch[i].1);
            } else {
                w += 1;
                scratch[w] = scratch[i];
            }
        }
        scratch.truncate(w + 1);
        let id = if scratch.len() == 1 {
            self.push_set(&scratch)
        } else {
            let h = hash_intervals(&scratch);
            match self.interned.get(&h) {
                Some(&s) if self.intervals(s) == &scratch[..] => s,
                _ => {
                    let s = self.push_set(&scratch);
                    self.interned.insert(h, s);
                    s
                }
            }
        };
        self.scratch = scratch;
        id
    }

    fn push_set(&mut self, ivs: &[(u32, u32)]) -> u32 {
        let id = self.sets.len() as u32;
        let size = ivs.iter().map(|&(lo, hi)| hi - lo).sum();
        self.sets
            .push((self.ivs.len() as u32, ivs.len() as u32, size));
        self.ivs.extend_from_slice(ivs);
        self.stamp.push(NONE);
        id
    }

    fn intervals(&self, s: u32) -> &[(u32, u32)] {
        let (off, len, _) = self.sets[s as usize];
        &self.ivs[off as usize..(off + len) as usize]
    }

    #[inline]
    fn set_len(&self, s: u32) -> u32 {
        self.sets[s as usize].2
    }

    /// `a ⊆ b` for coalesced interval lists.
    fn is_subset(&self, a: u32, b: u32) -> bool {
        let big = self.intervals(b);
        self.intervals(a).iter().all(|&(lo, hi)| {
            let i = big.partition_point(|&(_, bhi)| bhi <= lo);
            i < big.len() && big[i].0 <= lo && hi <= big[i].1
        })
    }

    /// The root → leaves relation and the leaf degrees, if it has at most `budget` pairs.
    fn degrees(&self, deps: &Csr, leaves: &[u32], budget: usize) -> Option<Degrees> {
        let n = deps.len();
        let mut leaf_degree = vec![0u32; n];
        let mut pairs: usize = 0;
        for &l in leaves {
            if deps.row_len(l) != 0 {
                let c = self.set_len(self.set_of[l as usize]);
                leaf_degree[l as usize] = c;
                pairs += c as usize;
            }
        }
        if pairs > budget {
            return None;
        }
        // Counting sort of the (root, leaf) pairs into rows indexed by root id.
        let mut offsets = vec![0u32; n + 1];
        for &l in leaves {
            if deps.row_len(l) != 0 {
                for &(lo, hi) in self.intervals(self.set_of[l as usize]) {
                    for num in lo..hi {
                        offsets[self.root_of_num[num as usize] as usize + 1] += 1;
                    }
                }
            }
        }
        for i in 0..n {
            offsets[i + 1] += offsets[i];
        }
        let mut fill = offsets.clone();
        let mut targets = vec![0u32; pairs];
        for &l in leaves {
            if deps.row_len(l) != 0 {
                for &(lo, hi) in self.intervals(self.set_of[l as usize]) {
                    for num in lo..hi {
                        let r = self.root_of_num[num as usize] as usize;
                        targets[fill[r] as usize] = l;
                        fill[r] += 1;
                    }
                }
            }
        }
        let root_leaves = Rows { offsets, targets };
        Some(Degrees {
            root_leaves,
            leaf_degree,
        })
    }
}

/// Adjacency rows built in place (offsets and targets), like a [`Csr`].
struct Rows {
    offsets: Vec<u32>,
    targets: Vec<u32>,
}

impl Rows {
    #[inline]
    fn row(&self, i: u32) -> &[u32] {
        let i = i as usize;
        &self.targets[self.offsets[i] as usize..self.offsets[i + 1] as usize]
    }

    fn row_len(&self, i: u32) -> usize {
        self.row(i).len()
    }
}

fn hash_intervals(ivs: &[(u32, u32)]) -> u64 {
    use std::hash::{Hash, Hasher};
    let mut h = rustc_hash::FxHasher::default();
    ivs.hash(&mut h);
    h.finish()
}

// Per-task flag bits of the walk.
const RUNNABLE_HULL: u8 = 1;
const REACHABLE_HULL: u8 = 2;

/// The leaf-target picker: Dask's degree buckets as a tournament tree over leaf ranks.
///
/// A leaf's degree is the number of its roots not yet ordered. Dask picks, among the leaves of
/// minimum positive degree, the smallest by sort key, preferring leaves in the reachable hull.
/// Encoding each leaf as `(degree, not-in-hull, rank)` in one `u64` makes that choice the
/// minimum of the tree. Updates only mark leaves dirty; the tree is repaired when queried, so a
/// leaf whose degree drops a million times between two queries costs one repair.
struct Targets {
    /// Leaf position (rank in ascending sort-key order) per task, `NONE` for non-leaves.
    pos_of: Vec<u32>,
    degree: Vec<u32>,
    positive: usize,
    tree: Vec<u64>,
    size: usize,
    dirty: Vec<bool>,
    dirty_list: Vec<u32>,
    /// Next unpopped positions of the pre-sorted leaf list, from each end.
    lo: usize,
    hi: usize,
}

impl Targets {
    fn new(prep: &Prep) -> Targets {
        let l = prep.leaves_sorted.len();
        let mut t = Targets {
            pos_of: Vec::new(),
            degree: Vec::new(),
            positive: 0,
            tree: Vec::new(),
            size: 0,
            dirty: Vec::new(),
            dirty_list: Vec::new(),
            lo: 0,
            hi: l,
        };
        // Without degree data every lookup is the trivial pop of the sorted leaves.
        let Some(dg) = &prep.degrees else {
            return t;
        };
        t.pos_of = vec![NONE; prep.deps.len()];
        t.degree = vec![0u32; l];
        for (p, &leaf) in prep.leaves_sorted.iter().enumerate() {
            t.pos_of[leaf as usize] = p as u32;
            t.degree[p] = dg.leaf_degree[leaf as usize];
            if t.degree[p] > 0 {
                t.positive += 1;
            }
        }
        t.size = l.next_power_of_two();
        t.tree = vec![u64::MAX; 2 * t.size];
        t.dirty = vec![false; l];
        for p in 0..l {
            // Nothing is in the hull yet.
            t.tree[t.size + p] = t.leaf_key(p, false);
        }
        for i in (1..t.size).rev() {
            t.tree[i] = t.tree[2 * i].min(t.tree[2 * i + 1]);
        }
        t
    }

    #[inline]
    fn leaf_key(&self, p: usize, in_hull: bool) -> u64 {
        let d = self.degree[p];
        if d == 0 {
            u64::MAX
        } else {
            ((d as u64) << 33) | ((!in_hull as u64) << 32) | p as u64
        }
    }

    #[inline]
    fn touch(&mut self, p: u32) {
        if !self.dirty[p as usize] {
            self.dirty[p as usize] = true;
            self.dirty_list.push(p);
        }
    }

    /// The leaf of minimum positive degree, hull first, smallest rank; `None` when no leaf has
    /// a positive degree.
    fn best(&mut self, leaves_sorted: &[u32], st: &[Slot]) -> Option<u32> {
        while let Some(p) = self.dirty_list.pop() {
            let p = p as usize;
            self.dirty[p] = false;
            let hull = st[leaves_sorted[p] as usize].flags & REACHABLE_HULL != 0;
            let mut i = self.size + p;
            self.tree[i] = self.leaf_key(p, hull);
            while i > 1 {
                i /= 2;
                self.tree[i] = self.tree[2 * i].min(self.tree[2 * i + 1]);
            }
        }
        let k = self.tree[1];
        (k != u64::MAX).then(|| leaves_sorted[(k & 0xffff_ffff) as usize])
    }
}

/// The state of one task during a walk.
#[derive(Clone, Copy)]
struct Slot {
    /// Position in the order, `NONE` until emitted.
    prio: u32,
    /// Dependencies not yet emitted (Dask's `num_needed`).
    need: u32,
    /// First cell of the task's known runnable paths (see `Walker::krp_tail`).
    krp_head: u32,
    /// `RUNNABLE_HULL` / `REACHABLE_HULL` membership.
    flags: u8,
}

/// One Dask-style walk over the graph, producing priorities.
struct Walker<'p, 'g> {
    prep: &'p Prep<'g>,
    deps: &'g Csr,
    dependents: &'g Csr,
    longest_path: bool,
    /// Per-task walk state, one cache line fetch per task touched.
    st: Vec<Slot>,
    next_prio: u32,
    /// Size of Dask's reachable hull: unemitted tasks with an emitted dependency.
    reach_count: usize,
    /// Tasks that became runnable on the side (Dask's `runnable`).
    runnable: Vec<u32>,
    /// Known runnable paths per task (Dask's `known_runnable_paths`): a linked list of path
    /// ids in `krp_cells` from `Slot::krp_head` (`NONE`: absent, `EMPTY`: present but empty)
    /// to `krp_tail`, with `krp_len` entries.
    krp_tail: Vec<u32>,
    krp_len: Vec<u32>,
    krp_cells: Vec<(u32, u32)>,
    /// Forward paths of `process_runnables`, recycled through `free_paths`.
    paths: Vec<Vec<u32>>,
    free_paths: Vec<u32>,
    /// The critical-path stack (top = next to look at).
    crit: Vec<u32>,
    /// `add_to_result`'s stack of single-dependent chains.
    next_items: Vec<u32>,
    targets: Targets,
    /// Whether leaf degrees are tracked (`Prep::degrees` is present).
    tracking: bool,
    /// 0 for Dask's deterministic walk; otherwise the seed of a perturbed walk (see
    /// [`Walker::kcmp`] and [`Walker::add_to_result`]).
    salt: u32,
}

const EMPTY: u32 = u32::MAX - 1;

impl<'p, 'g> Walker<'p, 'g> {
    fn new(prep: &'p Prep<'g>, longest_path: bool, salt: u32) -> Self {
        let n = prep.deps.len();
        Walker {
            prep,
            deps: prep.deps,
            dependents: prep.dependents,
            longest_path,
            st: (0..n as u32)
                .map(|t| Slot {
                    prio: NONE,
                    need: prep.deps.row_len(t) as u32,
                    krp_head: NONE,
                    flags: 0,
                })
                .collect(),
            next_prio: 0,
            reach_count: 0,
            runnable: Vec::new(),
            krp_tail: vec![NONE; n],
            krp_len: vec![0; n],
            krp_cells: Vec::new(),
            paths: Vec::new(),
            free_paths: Vec::new(),
            crit: Vec::new(),
            next_items: Vec::new(),
            targets: Targets::new(prep),
            tracking: prep.degrees.is_some(),
            salt,
        }
    }

    #[inline]
    fn kcmp(&self, a: u32, b: u32) -> Ordering {
        let k = &self.prep.key;
        match k[a as usize].cmp(&k[b as usize]) {
            // Structurally equal siblings (the blocks of one array layer, say) are ordered by
            // the caller's tie-break, like Dask's `str(key)`: which of them the walk opens
            // first decides which inputs are loaded next, and ids (insertion order) made
            // worse choices than keys on array graphs (dot products followed by reductions
            // peaked up to 12% above Dask). Salted walks shuffle these ties instead, and
            // big graphs use ids: there the key comparisons (cache misses on the caller's
            // keys) cost 30-40% of the ordering time.
            Ordering::Equal => {
                let (a, b) = (self.prep.orig(a), self.prep.orig(b));
                if self.salt != 0 {
                    mix(a, self.salt).cmp(&mix(b, self.salt))
                } else if self.prep.sibling_ties_by_key {
                    (self.prep.tie)(a, b).then(a.cmp(&b))
                } else {
                    a.cmp(&b)
                }
            }
            o => o,
        }
    }

    #[inline]
    fn done(&self, t: u32) -> bool {
        self.st[t as usize].prio != NONE
    }

    #[inline]
    fn is_leaf(&self, t: u32) -> bool {
        self.dependents.row_len(t) == 0
    }

    // ---- paths -------------------------------------------------------------------------

    fn new_path(&mut self) -> u32 {
        match self.free_paths.pop() {
            Some(p) => p,
            None => {
                self.paths.push(Vec::new());
                (self.paths.len() - 1) as u32
            }
        }
    }

    fn free_path(&mut self, p: u32) {
        self.paths[p as usize].clear();
        self.free_paths.push(p);
    }

    fn krp_present(&self, t: u32) -> bool {
        self.st[t as usize].krp_head != NONE
    }

    fn krp_append(&mut self, t: u32, p: u32) {
        let cell = self.krp_cells.len() as u32;
        self.krp_cells.push((p, NONE));
        let ti = t as usize;
        if self.st[ti].krp_head == NONE || self.st[ti].krp_head == EMPTY {
            self.st[ti].krp_head = cell;
        } else {
            self.krp_cells[self.krp_tail[ti] as usize].1 = cell;
        }
        self.krp_tail[ti] = cell;
        self.krp_len[ti] += 1;
    }

    /// Removes and returns the cached paths of `t` (in insertion order) into `out`.
    fn krp_pop(&mut self, t: u32, out: &mut Vec<u32>) {
        let ti = t as usize;
        let mut c = self.st[ti].krp_head;
        while c != NONE && c != EMPTY {
            let (p, next) = self.krp_cells[c as usize];
            out.push(p);
            c = next;
        }
        self.st[ti].krp_head = NONE;
        self.krp_tail[ti] = NONE;
        self.krp_len[ti] = 0;
    }

    fn krp_set(&mut self, t: u32, paths: &[u32]) {
        let ti = t as usize;
        self.st[ti].krp_head = EMPTY;
        self.krp_len[ti] = 0;
        for &p in paths {
            self.krp_append(t, p);
        }
    }

    // ---- emission ----------------------------------------------------------------------

    /// Dask's `add_to_result`: give `item` the next priority, then follow single-dependent
    /// chains that become runnable immediately (explicit stack, no recursion).
    fn add_to_result(&mut self, item: u32) {
        self.next_items.push(item);
        while let Some(item) = self.next_items.pop() {
            let f = &mut self.st[item as usize].flags;
            if *f & REACHABLE_HULL != 0 {
                self.reach_count -= 1;
            }
            *f &= !(RUNNABLE_HULL | REACHABLE_HULL);
            if self.done(item) {
                continue;
            }
            debug_assert_eq!(self.st[item as usize].need, 0, "emitting a blocked task");
            self.st[item as usize].prio = self.next_prio;
            self.next_prio += 1;
            if self.tracking && self.deps.row_len(item) == 0 {
                if let Some(dg) = &self.prep.degrees {
                    for &leaf in dg.root_leaves.row(item) {
                        let p = self.targets.pos_of[leaf as usize];
                        let d = &mut self.targets.degree[p as usize];
                        if *d > 0 {
                            *d -= 1;
                            if *d == 0 {
                                self.targets.positive -= 1;
                            }
                            self.targets.touch(p);
                        }
                    }
                }
            }
            let down = self.dependents.row(item);
            let single = down.len() == 1;
            let first_new = self.runnable.len();
            for &d in down {
                let nn = &mut self.st[d as usize].need;
                *nn -= 1;
                let ready = *nn == 0;
                let f = &mut self.st[d as usize].flags;
                if *f & REACHABLE_HULL == 0 {
                    *f |= REACHABLE_HULL;
                    self.reach_count += 1;
                    if self.tracking {
                        let p = self.targets.pos_of[d as usize];
                        if p != NONE {
                            self.targets.touch(p);
                        }
                    }
                }
                if ready {
                    if single {
                        self.next_items.push(d);
                    } else {
                        self.runnable.push(d);
                    }
                }
            }
            // Dask iterates a set here, so its runnable order follows string hashes; a salted
            // walk shuffles it instead.
            if self.salt != 0 && self.runnable.len() > first_new + 1 {
                let salt = self.salt;
                let prep = self.prep;
                self.runnable[first_new..].sort_unstable_by_key(|&d| mix(prep.orig(d), salt));
            }
        }
    }

    /// Emits the nodes of path `p` in order and frees it.
    fn emit_path(&mut self, p: u32) {
        let path = std::mem::take(&mut self.paths[p as usize]);
        for &k in &path {
            self.add_to_result(k);
        }
        self.paths[p as usize] = path;
        self.free_path(p);
    }

    // ---- targets -----------------------------------------------------------------------

    fn get_target(&mut self) -> u32 {
        let trivial = self.reach_count == 0 || self.targets.positive == 0 || !self.tracking;
        if !trivial {
            if let Some(t) = self.targets.best(&self.prep.leaves_sorted, &self.st) {
                return t;
            }
        }
        // Pop the pre-sorted leaves: largest first for "longest path", else smallest.
        let ls = &self.prep.leaves_sorted;
        loop {
            if self.targets.lo >= self.targets.hi {
                break;
            }
            let t = if self.longest_path {
                self.targets.hi -= 1;
                ls[self.targets.hi]
            } else {
                self.targets.lo += 1;
                ls[self.targets.lo - 1]
            };
            if !self.done(t) {
                return t;
            }
        }
        // Unreachable for an acyclic graph (every task leads to an unordered leaf); any task
        // not yet ordered keeps the walk going.
        (0..self.st.len() as u32)
            .find(|&t| !self.done(t) && self.is_leaf(t))
            .or_else(|| (0..self.st.len() as u32).find(|&t| !self.done(t)))
            .unwrap_or(0)
    }

    // ---- main loop ---------------------------------------------------------------------

    fn run(&mut self) {
        let n = self.st.len() as u32;
        let mut buf: Vec<u32> = Vec::new();
        let mut known_paths: Vec<u32> = Vec::new();
        while self.next_prio < n {
            let target = self.get_target();
            // A. Build the critical path backwards from the target.
            debug_assert!(self.crit.is_empty());
            self.crit.push(target);
            let mut cur = target;
            let mut first = true;
            loop {
                let mut best = NONE;
                for &d in self.deps.row(cur) {
                    if !first && self.done(d) {
                        continue;
                    }
                    if best == NONE || self.kcmp(d, best) == Ordering::Greater {
                        best = d;
                    }
                }
                if best == NONE {
                    break;
                }
                self.crit.push(best);
                self.sorted_open_deps(best, &mut buf);
                // Dask extends the path from a set too: salted walks reverse the order (even
                // salts, per task) or shuffle it (odd salts).
                if self.salt != 0 {
                    let salt = self.salt;
                    if salt % 2 == 1 {
                        let prep = self.prep;
                        buf.sort_unstable_by_key(|&d| mix(prep.orig(d), salt));
                    } else if mix(self.prep.orig(best), salt) & 2 != 0 {
                        buf.reverse();
                    }
                }
                self.crit.extend_from_slice(&buf);
                cur = best;
                first = false;
            }

            // B. Walk the critical path.
            let mut walked_back = false;
            while let Some(item) = self.crit.pop() {
                if self.done(item) {
                    continue;
                }
                if self.st[item as usize].need > 0 {
                    // Blocked: put it back under its missing dependencies (ascending key, so
                    // the heaviest is handled first), and under the cached paths that end in
                    // them (reversed, so each path's first task is on top).
                    self.crit.push(item);
                    self.sorted_open_deps(item, &mut buf);
                    let mut n_unknown = 0;
                    for &d in &buf {
                        if !self.krp_present(d) {
                            n_unknown += 1;
                            self.crit.push(d);
                        }
                    }
                    if n_unknown > 1 {
                        walked_back = true;
                    }
                    for &d in &buf {
                        if self.krp_present(d) {
                            known_paths.clear();
                            self.krp_pop(d, &mut known_paths);
                            for &p in &known_paths {
                                let path = std::mem::take(&mut self.paths[p as usize]);
                                self.crit.extend(path.iter().rev());
                                self.paths[p as usize] = path;
                                self.free_path(p);
                            }
                        }
                    }
                    continue;
                }
                // Side work runs only once the path had to open more than one new branch,
                // and not while it would outgrow the path itself (Dask's rule).
                if walked_back && self.runnable.len() < self.crit.len() {
                    self.process_runnables();
                }
                self.add_to_result(item);
            }
            self.process_runnables();
        }
    }

    /// Unordered dependencies of `t`, ascending by sort key, into `buf`.
    fn sorted_open_deps(&self, t: u32, buf: &mut Vec<u32>) {
        buf.clear();
        buf.extend(self.deps.row(t).iter().copied().filter(|&d| !self.done(d)));
        if buf.len() > 1 {
            buf.sort_unstable_by(|&a, &b| self.kcmp(a, b));
        }
    }

    /// Dask's `process_runnables`: walk forward from runnable tasks, emitting paths that end
    /// in a leaf or complete a reducer, and caching paths that reach a reducer still waiting
    /// for other inputs.
    fn process_runnables(&mut self) {
        let mut branches: VecDeque<(u32, u32)> = VecDeque::new();
        let mut list: Vec<u32> = Vec::new();
        let mut pruned: VecDeque<u32> = VecDeque::new();
        let mut buf: Vec<u32> = Vec::new();
        while !self.runnable.is_empty() {
            let mut candidates = std::mem::take(&mut self.runnable);
            while let Some(key) = candidates.pop() {
                if self.st[key as usize].flags & RUNNABLE_HULL != 0 || self.done(key) {
                    continue;
                }
                if self.is_leaf(key) {
                    self.add_to_result(key);
                    continue;
                }
                let p0 = self.new_path();
                self.paths[p0 as usize].push(key);
                branches.push_back((0, p0));
                while let Some((mut nsplits, p)) = branches.pop_front() {
                    loop {
                        let path_len = self.paths[p as usize].len();
                        let current = self.paths[p as usize][path_len - 1];
                        self.st[current as usize].flags |= RUNNABLE_HULL;
                        let down = self.dependents.row(current);
                        let n_up = self.deps.row_len(current);
                        if down.is_empty() {
                            // A leaf: run the path if it supplies the leaf's last input.
                            if self.st[current as usize].need <= 1 {
                                self.emit_path(p);
                            } else {
                                self.st[current as usize].flags &= !RUNNABLE_HULL;
                                self.free_path(p);
                            }
                        } else if path_len == 1 || n_up == 1 {
                            // A linear step: follow it; at a splitter, fork one path per
                            // dependent that has no other input.
                            if down.len() > 1 {
                                nsplits += 1;
                                buf.clear();
                                buf.extend_from_slice(down);
                                buf.sort_unstable_by(|&a, &b| self.kcmp(a, b));
                                for &d in &buf {
                                    // Only genuine splits, not interleavings.
                                    if self.deps.row_len(d) == 1 {
                                        let b = self.new_path();
                                        let (src, dst) = two_mut(&mut self.paths, p, b);
                                        dst.extend_from_slice(src);
                                        dst.push(d);
                                        branches.push_back((nsplits, b));
                                    }
                                }
                                self.free_path(p);
                                break;
                            }
                            self.paths[p as usize].push(down[0]);
                            continue;
                        } else if self.krp_present(current) {
                            // A reducer with cached paths: once there are enough for all its
                            // missing inputs, run them (after nested splits, merge them into
                            // one path that continues from the reducer instead).
                            self.krp_append(current, p);
                            self.st[current as usize].flags &= !RUNNABLE_HULL;
                            if self.krp_len[current as usize] >= self.st[current as usize].need {
                                list.clear();
                                self.krp_pop(current, &mut list);
                                pruned.clear();
                                for &q in &list {
                                    let path = &self.paths[q as usize];
                                    if !self.done(path[path.len() - 2]) {
                                        pruned.push_back(q);
                                    } else {
                                        self.free_path(q);
                                    }
                                }
                                if (pruned.len() as u32) < self.st[current as usize].need {
                                    let v: Vec<u32> = pruned.iter().copied().collect();
                                    self.krp_set(current, &v);
                                } else if nsplits > 1 {
                                    let np = self.new_path();
                                    for &q in &pruned {
                                        let (src, dst) = two_mut(&mut self.paths, q, np);
                                        dst.extend_from_slice(src);
                                        self.free_path(q);
                                    }
                                    branches.push_back((nsplits - 1, np));
                                    break;
                                } else {
                                    self.run_pruned(&mut pruned);
                                }
                            }
                        } else if n_up > 1 && self.st[current as usize].need <= 1 {
                            // A reducer this path completes: run it now.
                            self.emit_path(p);
                        } else {
                            // A reducer still missing inputs: cache the path at it.
                            self.krp_set(current, &[p]);
                            self.st[current as usize].flags &= !RUNNABLE_HULL;
                        }
                        break;
                    }
                }
            }
        }
    }

    /// Emits the cached paths that complete a reducer: each path up to its first blocked
    /// task, re-queuing it until the blocked tasks become runnable.
    fn run_pruned(&mut self, pruned: &mut VecDeque<u32>) {
        let mut stalled = 0usize;
        while let Some(q) = pruned.pop_front() {
            let before = self.next_prio;
            let path = std::mem::take(&mut self.paths[q as usize]);
            let mut blocked = false;
            for &k in &path {
                if self.st[k as usize].need > 0 {
                    blocked = true;
                    break;
                }
                self.add_to_result(k);
            }
            self.paths[q as usize] = path;
            if blocked {
                if self.next_prio == before {
                    stalled += 1;
                    if stalled > pruned.len() {
                        // No path can make progress: leave the rest to the main walk.
                        self.free_path(q);
                        while let Some(r) = pruned.pop_front() {
                            self.free_path(r);
                        }
                        return;
                    }
                } else {
                    stalled = 0;
                }
                pruned.push_back(q);
            } else {
                stalled = 0;
                self.free_path(q);
            }
        }
    }
}

/// Mutable access to two distinct paths.
fn two_mut(paths: &mut [Vec<u32>], src: u32, dst: u32) -> (&Vec<u32>, &mut Vec<u32>) {
    let (s, d) = (src as usize, dst as usize);
    debug_assert_ne!(s, d);
    if s < d {
        let (a, b) = paths.split_at_mut(d);
        (&a[s], &mut b[0])
    } else {
        let (a, b) = paths.split_at_mut(s);
        (&b[0], &mut a[d])
    }
}

#[inline]
fn mix(x: u32, salt: u32) -> u32 {
    let mut h = x ^ salt.wrapping_mul(0x85eb_ca6b);
    h ^= h >> 16;
    h = h.wrapping_mul(0x7feb_352d);
    h ^= h >> 15;
    h = h.wrapping_mul(0x846c_a68b);
    h ^ (h >> 16)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The public functions with their argument checks unwrapped (the graphs here are valid).
    fn order(deps: &Csr, dependents: &Csr, tie: &dyn Fn(u32, u32) -> Ordering) -> Vec<u32> {
        super::order(deps, dependents, tie).unwrap()
    }
    fn pressure(
        deps: &Csr,
        dependents: &Csr,
        priority: &[u32],
    ) -> crate::graph::pressure::Pressure {
        crate::graph::pressure::pressure(deps, dependents, priority).unwrap()
    }

    #[test]
    fn mismatched_arguments_are_errors() {
        let deps = Csr::from_rows([vec![], vec![0u32]]);
        let err = super::order(&deps, &Csr::from_rows([vec![1u32]]), &by_id).unwrap_err();
        assert!(matches!(err.kind(), crate::ErrorKind::Input(_)), "{err}");
        assert!(
            err.to_string().contains("1 dependents rows for 2 tasks"),
            "{err}"
        );
        let bad = Csr::from_rows([vec![], vec![7u32]]);
        let err = super::order(&bad, &deps.transpose(2), &by_id).unwrap_err();
        assert!(
            err.to_string().contains("task 1 depends on task 7"),
            "{err}"
        );
    }

    /// A graph from `(key, deps)` pairs; returns keys, deps and dependents.
    fn graph(tasks: &[(&str, &[&str])]) -> (Vec<String>, Csr, Csr) {
        let keys: Vec<String> = tasks.iter().map(|(k, _)| k.to_string()).collect();
        let id = |k: &str| keys.iter().position(|x| x == k).expect("known key") as u32;
        let deps = Csr::from_rows(
            tasks
                .iter()
                .map(|(_, d)| d.iter().map(|k| id(k)).collect::<Vec<_>>()),
        );
        let dependents = deps.transpose(keys.len());
        (keys, deps, dependents)
    }

    /// Orders with the key-string tie-break and checks the universal invariants.
    fn order_keys(keys: &[String], deps: &Csr, dependents: &Csr) -> Vec<u32> {
        let tie = |a: u32, b: u32| keys[a as usize].cmp(&keys[b as usize]);
        let prio = order(deps, dependents, &tie);
        check_valid(deps, &prio);
        prio
    }

    fn check_valid(deps: &Csr, prio: &[u32]) {
        let mut seen = vec![false; prio.len()];
        for &p in prio {
            assert!(!seen[p as usize], "priority {p} given twice");
            seen[p as usize] = true;
        }
        assert!(
            is_topological(deps, prio),
            "not a topological order: {prio:?}"
        );
    }

    fn pos(keys: &[String], prio: &[u32], key: &str) -> u32 {
        prio[keys.iter().position(|k| k == key).expect("known key")]
    }

    fn chain(n: usize) -> Csr {
        Csr::from_rows((0..n as u32).map(|i| if i == 0 { vec![] } else { vec![i - 1] }))
    }

    /// A reduction tree of fan-in `fan` over `leaves` inputs (inputs first, then each level).
    fn tree(leaves: usize, fan: usize) -> Csr {
        let mut rows: Vec<Vec<u32>> = vec![Vec::new(); leaves];
        let mut level: Vec<u32> = (0..leaves as u32).collect();
        while level.len() > 1 {
            let mut next = Vec::new();
            for group in level.chunks(fan) {
                rows.push(group.to_vec());
                next.push(rows.len() as u32 - 1);
            }
            level = next;
        }
        Csr::from_rows(rows)
    }

    fn by_id(a: u32, b: u32) -> Ordering {
        a.cmp(&b)
    }

    #[test]
    fn empty_and_single() {
        let deps = Csr::new();
        assert!(order(&deps, &deps.transpose(0), &by_id).is_empty());
        let deps = Csr::from_rows([Vec::<u32>::new()]);
        assert_eq!(order(&deps, &deps.transpose(1), &by_id), vec![0]);
    }

    #[test]
    fn chain_runs_in_order_with_pressure_one() {
        let deps = chain(50);
        let dependents = deps.transpose(50);
        let prio = order(&deps, &dependents, &by_id);
        assert_eq!(prio, (0..50).collect::<Vec<u32>>());
        assert_eq!(pressure(&deps, &dependents, &prio).max, 1);
    }

    #[test]
    fn long_chain_does_not_recurse() {
        // Dask's test_recursion_depth_long_linear_chains, a hundred times longer.
        let n = 1_000_000;
        let deps = chain(n);
        let dependents = deps.transpose(n);
        let prio = order(&deps, &dependents, &by_id);
        assert!(prio.iter().enumerate().all(|(i, &p)| p == i as u32));
    }

    #[test]
    fn diamond() {
        let (keys, deps, dependents) =
            graph(&[("a", &[]), ("b", &["a"]), ("c", &["a"]), ("d", &["b", "c"])]);
        let prio = order_keys(&keys, &deps, &dependents);
        assert_eq!(pos(&keys, &prio, "a"), 0);
        assert_eq!(pos(&keys, &prio, "d"), 3);
        assert_eq!(pressure(&deps, &dependents, &prio).max, 2);
    }

    #[test]
    fn tree_reductions_reach_the_depth_first_bound() {
        // Dask's measured optimum for fan-in 4: 3 * levels + 1.
        for (leaves, levels) in [(64, 3), (1024, 5), (4096, 6)] {
            let deps = tree(leaves, 4);
            let n = deps.len();
            let dependents = deps.transpose(n);
            let prio = order(&deps, &dependents, &by_id);
            check_valid(&deps, &prio);
            let p = pressure(&deps, &dependents, &prio);
            assert!(p.max <= 3 * levels + 1, "{leaves} leaves: peak {}", p.max);
        }
        // A binary tree holds at most one result per level plus the one being combined.
        let deps = tree(1 << 12, 2);
        let dependents = deps.transpose(deps.len());
        let prio = order(&deps, &dependents, &by_id);
        assert!(pressure(&deps, &dependents, &prio).max <= 13);
    }

    #[test]
    fn finishes_groups_before_starting_new_ones() {
        // Dask's test_avoid_broker_nodes / test_ordering_keeps_groups_together: the two
        // dependents of a1 run right after it, and a0 is loaded only afterwards.
        let (keys, deps, dependents) = graph(&[
            ("a0", &[]),
            ("a1", &[]),
            ("b0", &["a0"]),
            ("b1", &["a1"]),
            ("b2", &["a1"]),
        ]);
        let prio = order_keys(&keys, &deps, &dependents);
        assert!(pos(&keys, &prio, "b1") < pos(&keys, &prio, "a0"));
        assert!(pos(&keys, &prio, "b2") < pos(&keys, &prio, "a0"));
        assert_eq!(pressure(&deps, &dependents, &prio).max, 1);
    }

    #[test]
    fn base_of_a_reduction_chain_comes_first() {
        // Dask's test_base_of_reduce_preferred: a3 <- a2 <- a1 <- a0, each a_i also needs b_i,
        // all b_i need c. The bottom input b0 must be run right after c.
        let (keys, deps, dependents) = graph(&[
            ("a1", &["a0", "b1"]),
            ("a2", &["a1", "b2"]),
            ("a3", &["a2", "b3"]),
            ("a0", &["b0"]),
            ("b0", &["c"]),
            ("b1", &["c"]),
            ("b2", &["c"]),
            ("b3", &["c"]),
            ("c", &[]),
        ]);
        let prio = order_keys(&keys, &deps, &dependents);
        assert!(pos(&keys, &prio, "b0") <= 1);
        assert!(pressure(&deps, &dependents, &prio).max <= 3);
    }

    #[test]
    fn runs_smaller_sections_first() {
        // Dask's test_run_smaller_sections: the optimal peak of 3 must be reached.
        let (keys, deps, dependents) = graph(&[
            ("a", &[]),
            ("c", &[]),
            ("e", &[]),
            ("cc", &[]),
            ("b", &["a", "c"]),
            ("d", &["c", "e"]),
            ("bb", &["cc"]),
            ("aa", &["bb", "d"]),
            ("dd", &["cc"]),
        ]);
        let prio = order_keys(&keys, &deps, &dependents);
        assert_eq!(pressure(&deps, &dependents, &prio).max, 3);
    }

    #[test]
    fn prefers_deep_branches() {
        // Dask's test_prefer_deep and test_favor_longest_critical_path.
        let (keys, deps, dependents) = graph(&[
            ("a", &[]),
            ("b", &["a"]),
            ("c", &["b"]),
            ("d", &[]),
            ("e", &["d"]),
        ]);
        let prio = order_keys(&keys, &deps, &dependents);
        assert!(pos(&keys, &prio, "c") < pos(&keys, &prio, "d"));
        let (keys, deps, dependents) = graph(&[
            ("c", &[]),
            ("d", &["c"]),
            ("e", &["c"]),
            ("b", &["c"]),
            ("a", &["b"]),
        ]);
        let prio = order_keys(&keys, &deps, &dependents);
        // Dask runs c b a e d (peak 2); the outputs d and e move up next to c, so c is
        // released before b runs: peak 1.
        assert!(pos(&keys, &prio, "b") < pos(&keys, &prio, "a"));
        assert_eq!(pressure(&deps, &dependents, &prio).max, 1);
    }

    #[test]
    fn ties_follow_the_tie_break() {
        // Dask's test_break_ties_by_str: among structurally equal leaves the one with the
        // largest key is popped first ("longest path" pops the end of the ascending list),
        // and reversing the tie-break reverses the order.
        let (keys, deps, dependents) = graph(&[
            ("x-0", &[]),
            ("y-0", &["x-0"]),
            ("x-1", &[]),
            ("y-1", &["x-1"]),
            ("x-2", &[]),
            ("y-2", &["x-2"]),
        ]);
        let prio = order_keys(&keys, &deps, &dependents);
        let firsts: Vec<u32> = ["x-0", "x-1", "x-2"]
            .iter()
            .map(|k| pos(&keys, &prio, k))
            .collect();
        assert!(firsts[2] < firsts[1] && firsts[1] < firsts[0], "{prio:?}");
        let reverse = |a: u32, b: u32| keys[b as usize].cmp(&keys[a as usize]);
        let prio = order(&deps, &dependents, &reverse);
        check_valid(&deps, &prio);
        assert!(pos(&keys, &prio, "x-0") < pos(&keys, &prio, "x-1"));
        assert!(pos(&keys, &prio, "x-1") < pos(&keys, &prio, "x-2"));
    }

    #[test]
    fn tie_calls_stay_linear() {
        // Every sibling comparison of a tree's equal subtrees may ask the tie-break, but the
        // number of calls stays proportional to the edges (the unsalted walk sorts each
        // task's open dependencies once).
        let deps = tree(4096, 4);
        let n = deps.len();
        let dependents = deps.transpose(n);
        let calls = std::cell::Cell::new(0usize);
        let tie = |a: u32, b: u32| {
            calls.set(calls.get() + 1);
            a.cmp(&b)
        };
        order(&deps, &dependents, &tie);
        assert!(calls.get() > 0);
        assert!(
            calls.get() <= 4 * deps.num_edges(),
            "{} tie calls",
            calls.get()
        );
    }

    #[test]
    fn equal_siblings_follow_the_tie_break() {
        // z needs two structurally equal branches; the walk opens the one whose key sorts
        // last first (Dask: `max(deps, key=sort_key)`), and reversing the tie-break reverses
        // that (before, task ids decided and the tie-break was ignored here).
        let (keys, deps, dependents) = graph(&[
            ("z", &["b", "a"]),
            ("b", &["rb"]),
            ("a", &["ra"]),
            ("ra", &[]),
            ("rb", &[]),
        ]);
        let prio = order_keys(&keys, &deps, &dependents);
        assert!(pos(&keys, &prio, "b") < pos(&keys, &prio, "a"), "{prio:?}");
        let reverse = |a: u32, b: u32| keys[b as usize].cmp(&keys[a as usize]);
        let prio = order(&deps, &dependents, &reverse);
        check_valid(&deps, &prio);
        assert!(pos(&keys, &prio, "a") < pos(&keys, &prio, "b"), "{prio:?}");
    }

    #[test]
    fn comb_releases_each_link() {
        // A chain whose every link also feeds an output: run each output right away.
        let n = 1000u32;
        let mut rows = Vec::new();
        for i in 0..n {
            rows.push(if i == 0 { vec![] } else { vec![2 * (i - 1)] });
            rows.push(vec![2 * i]);
        }
        let deps = Csr::from_rows(rows);
        let dependents = deps.transpose(deps.len());
        let prio = order(&deps, &dependents, &by_id);
        check_valid(&deps, &prio);
        assert!(pressure(&deps, &dependents, &prio).max <= 2);
    }

    #[test]
    fn moves_never_raise_the_peak() {
        // The walk's own order versus the order after sink_roots and hoist_leaves, on a graph
        // with roots loaded early and outputs run late.
        let (keys, deps, dependents) = graph(&[
            ("r0", &[]),
            ("r1", &[]),
            ("r2", &[]),
            ("a", &["r0"]),
            ("out-a", &["a"]),
            ("b", &["a", "r1"]),
            ("out-b", &["b"]),
            ("c", &["b", "r2"]),
        ]);
        let _ = keys;
        // r0 r1 r2 a b c out-a out-b: everything is loaded first, outputs come last.
        let seq: Vec<u32> = vec![0, 1, 2, 3, 5, 7, 4, 6];
        let before = pressure(&deps, &dependents, &positions(&seq));
        let sunk = sink_roots(&deps, &dependents, &seq, &positions(&seq));
        let moved = hoist_leaves(&deps, &dependents, &sunk);
        let after_prio = positions(&moved);
        check_valid(&deps, &after_prio);
        let after = pressure(&deps, &dependents, &after_prio);
        assert!(after.max <= before.max);
        assert!(after.max < before.max || after.mean < before.mean);
    }

    #[test]
    fn isolated_tasks_and_many_outputs() {
        let (keys, deps, dependents) = graph(&[
            ("lonely", &[]),
            ("r", &[]),
            ("o1", &["r"]),
            ("o2", &["r"]),
            ("o3", &["r"]),
            ("other", &[]),
        ]);
        let prio = order_keys(&keys, &deps, &dependents);
        assert_eq!(pressure(&deps, &dependents, &prio).max, 1);
    }

    #[test]
    fn cycles_give_a_permutation_without_hanging() {
        // 0 <- 1 <- 2 <- 1 (cycle 1, 2), and 3 <- 2.
        let deps = Csr::from_rows([vec![], vec![0, 2], vec![1], vec![2]]);
        let dependents = deps.transpose(4);
        let mut prio = order(&deps, &dependents, &by_id);
        assert_eq!(prio[0], 0);
        prio.sort_unstable();
        assert_eq!(prio, vec![0, 1, 2, 3]);
        assert!(dfs_postorder(&deps, &dependents).is_none());
        // A cycle no leaf reaches.
        let deps = Csr::from_rows([vec![1], vec![0]]);
        assert!(dfs_postorder(&deps, &deps.transpose(2)).is_none());
        let mut prio = order(&deps, &deps.transpose(2), &by_id);
        prio.sort_unstable();
        assert_eq!(prio, vec![0, 1]);
    }

    #[test]
    fn over_budget_root_sets_still_order_correctly() {
        // A layered all-to-all graph, ordered with no room for exact root sets: root counts
        // become capped sums and leaf degrees are not tracked.
        let width = 12u32;
        let mut rows: Vec<Vec<u32>> = (0..width).map(|_| Vec::new()).collect();
        for layer in 1..4u32 {
            for _ in 0..width {
                rows.push(((layer - 1) * width..layer * width).collect());
            }
        }
        let deps = Csr::from_rows(rows);
        let n = deps.len();
        let dependents = deps.transpose(n);
        let topo = dfs_postorder(&deps, &dependents).expect("acyclic");
        let prep = Prep::new(&deps, &dependents, &by_id, topo, Vec::new(), 0);
        assert!(prep.degrees.is_none());
        let seq = walk(&prep, prep.use_longest_path(), 0);
        check_valid(&deps, &positions(&seq));
        let exact = order(&deps, &dependents, &by_id);
        check_valid(&deps, &exact);
    }

    #[test]
    fn root_sets_are_intervals_on_trees() {
        let deps = tree(1024, 4);
        let n = deps.len();
        let dependents = deps.transpose(n);
        let topo = dfs_postorder(&deps, &dependents).expect("acyclic");
        let mut sets = RootSets::new(n);
        for &t in &topo {
            if deps.row_len(t) == 0 {
                sets.add_root(t);
            } else {
                sets.add_task(t, deps.row(t));
            }
        }
        // One interval per set: the tree needs no more than one per task.
        assert_eq!(sets.ivs.len(), sets.sets.len());
        assert_eq!(sets.set_len(sets.set_of[n - 1]), 1024);
    }

    #[test]
    fn root_sets_count_shared_roots_once() {
        // Two reducers over overlapping roots, then one over both.
        let deps = Csr::from_rows([vec![], vec![], vec![], vec![0, 1], vec![1, 2], vec![3, 4]]);
        let topo = dfs_postorder(&deps, &deps.transpose(6)).expect("acyclic");
        let mut sets = RootSets::new(6);
        for &t in &topo {
            if deps.row_len(t) == 0 {
                sets.add_root(t);
            } else {
                sets.add_task(t, deps.row(t));
            }
        }
        assert_eq!(sets.set_len(sets.set_of[3]), 2);
        assert_eq!(sets.set_len(sets.set_of[5]), 3);
        assert!(sets.is_subset(sets.set_of[3], sets.set_of[5]));
        assert!(!sets.is_subset(sets.set_of[3], sets.set_of[4]));
    }

    #[test]
    fn packed_keys_order_like_tuples() {
        let a = pack_key(10, 2, 3, 4);
        assert_eq!(key_total(a), 10);
        assert_eq!(key_fanout(a), 4);
        assert_eq!(key_nroots(a), 3);
        assert!(pack_key(10, 2, 3, 4) < pack_key(11, 0, 0, 0));
        assert!(pack_key(10, 2, 3, 4) < pack_key(10, 3, 0, 0));
        assert!(pack_key(10, 2, 3, 4) < pack_key(10, 2, 4, 9));
        // Larger fan-out sorts first (Dask's -max_dependents).
        assert!(pack_key(10, 2, 3, 9) < pack_key(10, 2, 3, 4));
    }

    #[test]
    fn renumbering_does_not_change_the_order() {
        // A grid built layer by layer (all inputs, then all maps, then the column sums):
        // scattered enough to be renumbered, and big enough.
        let (r, c) = (200usize, 120usize);
        let mut rows: Vec<Vec<u32>> = vec![Vec::new(); r * c];
        rows.extend((0..r * c).map(|i| vec![i as u32]));
        rows.extend((0..r * c).map(|i| vec![(r * c + i) as u32]));
        let mut tops = Vec::new();
        for j in 0..c {
            let mut level: Vec<u32> = (0..r).map(|i| (2 * r * c + i * c + j) as u32).collect();
            while level.len() > 1 {
                let mut next = Vec::new();
                for group in level.chunks(4) {
                    rows.push(group.to_vec());
                    next.push(rows.len() as u32 - 1);
                }
                level = next;
            }
            tops.push(level[0]);
        }
        rows.push(tops);
        let deps = Csr::from_rows(rows);
        let n = deps.len();
        assert!(n >= RENUMBER_MIN);
        let dependents = deps.transpose(n);
        let topo = dfs_postorder(&deps, &dependents).expect("acyclic");
        assert!(scattered(&topo));
        let renumbered = order(&deps, &dependents, &by_id);
        let direct = order_acyclic(&deps, &dependents, &by_id, topo, Vec::new());
        assert_eq!(renumbered, direct);
        check_valid(&deps, &renumbered);
        // Chains and trees built in order are not renumbered.
        let deps = tree(1 << 16, 4);
        let topo = dfs_postorder(&deps, &deps.transpose(deps.len())).expect("acyclic");
        assert!(!scattered(&topo));
    }

    #[test]
    fn is_topological_checks_every_edge() {
        let deps = chain(3);
        assert!(is_topological(&deps, &[0, 1, 2]));
        assert!(!is_topological(&deps, &[1, 0, 2]));
        assert!(!is_topological(&deps, &[0, 1]));
    }
}
