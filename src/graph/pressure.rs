//! The memory-pressure diagnostic of a static order, exactly as `dask.order.diagnostics`.
//!
//! Replaying an order sequentially with unit-size results, the *pressure* before step `i` is the
//! number of results held in memory just before the `i`-th task runs. A task's result enters
//! memory when the task runs, but only if some task consumes it (outputs are never counted); it
//! leaves when its last consumer runs. In closed form:
//!
//! ```text
//! pressure[i] = #{ j : dependents[j] non-empty, o[j] < i <= max(o[d] for d in dependents[j]) }
//! ```
//!
//! This is the quality measure of `crate::graph::order` and the number the benchmark graphs in
//! `shared/data/order-graphs` record for Dask; it must match Dask's list element for element
//! when fed Dask's own order, so the replay below follows `diagnostics` step by step rather than
//! the closed form (the two agree on topological orders; the replay also defines a value for
//! orders that are not topological, like Dask's).

use crate::error::{Error, Result};
use crate::graph::csr::Csr;

/// Pressure of one order: the per-step series and its maximum and mean.
#[derive(Debug, Clone, PartialEq)]
pub struct Pressure {
    /// The largest number of results held before any step (0 for an empty graph).
    pub max: u64,
    /// The mean of `per_step` (0.0 for an empty graph); `sum / n` like Python's `int / int`.
    pub mean: f64,
    /// `per_step[i]` = results held just before the task at position `i` of the order runs.
    pub per_step: Vec<u32>,
}

/// Exactly Dask's `diagnostics` pressure of the order `priority` (`priority[i]` = position of
/// task `i`). `deps` must be deduplicated (Dask's dependencies are sets) and `dependents` its
/// transpose. Leaves (tasks without dependents) are never counted as held.
///
/// `priority` should be a permutation of `0..n`; if it is not, tasks run in ascending
/// `(priority, id)` order, which is what Dask's `sorted(dsk, key=o.__getitem__)` does for a
/// dict in id order.
///
/// # Errors
/// [`ErrorKind::Input`](crate::ErrorKind::Input) when `priority` or `dependents` do not have
/// one entry per task, or the adjacency names a task that does not exist.
pub fn pressure(deps: &Csr, dependents: &Csr, priority: &[u32]) -> Result<Pressure> {
    check_adjacency("pressure", deps, dependents)?;
    let n = deps.len();
    if priority.len() != n {
        return Err(Error::input(format!(
            "pressure: {} priorities for {n} tasks (need one per task)",
            priority.len()
        )));
    }
    let mut per_step = Vec::with_capacity(n);
    let (max, sum) = replay(deps, dependents, &run_sequence(priority), |held| {
        per_step.push(held.min(u32::MAX as u64) as u32)
    });
    let mean = if n == 0 { 0.0 } else { sum as f64 / n as f64 };
    Ok(Pressure {
        max,
        mean,
        per_step,
    })
}

/// Checks that `dependents` has one row per task of `deps`, that both name only existing
/// tasks, and that they have as many edges (as a transpose does); `what` names the caller.
pub(crate) fn check_adjacency(what: &str, deps: &Csr, dependents: &Csr) -> Result<()> {
    let n = deps.len();
    if dependents.len() != n {
        return Err(Error::input(format!(
            "{what}: {} dependents rows for {n} tasks (need one per task)",
            dependents.len()
        )));
    }
    for (name, adjacency) in [("depends on", deps), ("has dependent", dependents)] {
        if let Some((task, target)) = adjacency.target_out_of_range(n) {
            return Err(Error::input(format!(
                "{what}: task {task} {name} task {target}, but there are only {n} tasks"
            )));
        }
    }
    if deps.num_edges() != dependents.num_edges() {
        return Err(Error::input(format!(
            "{what}: {} dependency edges but {} dependent edges; dependents must be \
             deps.transpose(n)",
            deps.num_edges(),
            dependents.num_edges()
        )));
    }
    Ok(())
}

/// `(max, sum)` of the pressure of the run order `sequence` (task ids, first to run first),
/// without materializing the per-step list; the ordering compares candidate orders with it.
pub(crate) fn max_and_sum(deps: &Csr, dependents: &Csr, sequence: &[u32]) -> (u64, u64) {
    replay(deps, dependents, sequence, |_| {})
}

/// Dask's `diagnostics` replay; calls `sample` with the number of results held before each
/// task and returns the maximum and the sum of those samples.
fn replay(
    deps: &Csr,
    dependents: &Csr,
    sequence: &[u32],
    mut sample: impl FnMut(u64),
) -> (u64, u64) {
    let n = deps.len();
    // Remaining consumers per task; a result is dropped when this reaches zero.
    let mut num_needed: Vec<u32> = (0..n as u32)
        .map(|i| dependents.row_len(i) as u32)
        .collect();
    // Signed so that an order that is not topological (which Dask also accepts) cannot
    // underflow; such an order's negative counts are clamped to 0.
    let mut in_memory: i64 = 0;
    let mut max: u64 = 0;
    let mut sum: u64 = 0;
    for &task in sequence {
        let held = in_memory.max(0) as u64;
        sample(held);
        max = max.max(held);
        sum += held;
        let mut released: i64 = 0;
        for &dep in deps.row(task) {
            let left = &mut num_needed[dep as usize];
            // With deduplicated dependencies each (task, dep) pair decrements once, so this
            // never saturates; the guard only keeps bad input from wrapping.
            if *left > 0 {
                *left -= 1;
                if *left == 0 {
                    released += 1;
                }
            }
        }
        if dependents.row_len(task) > 0 {
            in_memory += 1 - released;
        } else {
            in_memory -= released;
        }
    }
    (max, sum)
}

/// Task ids in the order they run: the inverse permutation when `priority` is one, otherwise a
/// stable sort by priority.
fn run_sequence(priority: &[u32]) -> Vec<u32> {
    let n = priority.len();
    let mut sequence = vec![u32::MAX; n];
    let mut is_permutation = true;
    for (task, &p) in priority.iter().enumerate() {
        match sequence.get_mut(p as usize) {
            Some(slot) if *slot == u32::MAX => *slot = task as u32,
            _ => {
                is_permutation = false;
                break;
            }
        }
    }
    if !is_permutation {
        sequence = (0..n as u32).collect();
        sequence.sort_by_key(|&t| (priority[t as usize], t));
    }
    sequence
}

#[cfg(test)]
mod tests {
    use super::*;

    fn graph(rows: Vec<Vec<u32>>) -> (Csr, Csr) {
        let n = rows.len();
        let deps = Csr::from_rows(rows);
        let dependents = deps.transpose(n);
        (deps, dependents)
    }

    #[test]
    fn chain_holds_one() {
        // 0 -> 1 -> 2 -> 3
        let (deps, dependents) = graph(vec![vec![], vec![0], vec![1], vec![2]]);
        let p = pressure(&deps, &dependents, &[0, 1, 2, 3]).unwrap();
        assert_eq!(p.per_step, vec![0, 1, 1, 1]);
        assert_eq!(p.max, 1);
        assert_eq!(p.mean, 0.75);
    }

    #[test]
    fn dask_diagnostics_example() {
        // Dask's test_avoid_broker_nodes order: a1 b1 b2 a0 b0 -> [0, 1, 1, 0, 1].
        // ids: a0=0, a1=1, b0=2 (a0), b1=3 (a1), b2=4 (a1)
        let (deps, dependents) = graph(vec![vec![], vec![], vec![0], vec![1], vec![1]]);
        let p = pressure(&deps, &dependents, &[3, 0, 4, 1, 2]).unwrap();
        assert_eq!(p.per_step, vec![0, 1, 1, 0, 1]);
        assert_eq!(p.max, 1);
        assert_eq!(p.mean, 0.6);
    }

    #[test]
    fn isolated_tasks_and_outputs_are_not_counted() {
        let (deps, dependents) = graph(vec![vec![], vec![], vec![0]]);
        let p = pressure(&deps, &dependents, &[0, 2, 1]).unwrap();
        // 0 runs (held), 2 runs consuming 0 (released), 1 is isolated.
        assert_eq!(p.per_step, vec![0, 1, 0]);
    }

    #[test]
    fn empty_graph() {
        let (deps, dependents) = graph(vec![]);
        let p = pressure(&deps, &dependents, &[]).unwrap();
        assert_eq!(p.max, 0);
        assert_eq!(p.mean, 0.0);
        assert!(p.per_step.is_empty());
    }

    #[test]
    fn non_permutation_priorities_run_in_priority_then_id_order() {
        let (deps, dependents) = graph(vec![vec![], vec![0], vec![0]]);
        let p = pressure(&deps, &dependents, &[0, 5, 5]).unwrap();
        assert_eq!(p.per_step, vec![0, 1, 1]);
    }

    #[test]
    fn mismatched_arguments_are_errors() {
        let (deps, dependents) = graph(vec![vec![], vec![0]]);
        let err = pressure(&deps, &dependents, &[0]).unwrap_err();
        assert!(matches!(err.kind(), crate::ErrorKind::Input(_)), "{err}");
        assert!(
            err.to_string().contains("1 priorities for 2 tasks"),
            "{err}"
        );
        let err = pressure(&deps, &Csr::from_rows([vec![1u32]]), &[0, 1]).unwrap_err();
        assert!(
            err.to_string().contains("1 dependents rows for 2 tasks"),
            "{err}"
        );
        let bad = Csr::from_rows([vec![], vec![5u32]]);
        let err = pressure(&bad, &dependents, &[0, 1]).unwrap_err();
        assert!(
            err.to_string()
                .contains("task 1 depends on task 5, but there are only 2 tasks"),
            "{err}"
        );
        let err = pressure(&deps, &Csr::from_rows([vec![], vec![]]), &[0, 1]).unwrap_err();
        assert!(
            err.to_string().contains("1 dependency edges but 0"),
            "{err}"
        );
    }
}
