//! Scheduler overhead: no-op tasks in three shapes, timed end to end.
//!
//! - `independent`: N no-op roots joined by a fan-in-32 reduction tree;
//! - `chain`: N tasks, each depending on the previous;
//! - `tree`: a binary reduction over N leaves (2N - 1 tasks).
//!
//! Timing covers everything from the first graph call to the result: building keys and
//! dependencies, the planning passes (validate, cull, fuse, order) and the run with result
//! handling.

use std::str::FromStr;
use std::sync::Arc;
use std::time::{Duration, Instant};

use crate::error::{Error, Result};
use crate::graph::{Graph, Key, Op, OpFn, PlanOptions, TaskId, Value};
use crate::sched::{ComputeOptions, Runtime};

/// The graph shapes.
#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum)]
pub enum Shape {
    /// N roots under a fan-in-32 tree.
    Independent,
    /// A linear chain of N tasks.
    Chain,
    /// A binary tree over N leaves.
    Tree,
}

impl FromStr for Shape {
    type Err = Error;
    fn from_str(s: &str) -> Result<Shape> {
        match s {
            "independent" => Ok(Shape::Independent),
            "chain" => Ok(Shape::Chain),
            "tree" => Ok(Shape::Tree),
            other => Err(Error::config(format!(
                "unknown shape `{other}` (use independent, chain or tree)"
            ))),
        }
    }
}

impl std::fmt::Display for Shape {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            Shape::Independent => "independent",
            Shape::Chain => "chain",
            Shape::Tree => "tree",
        })
    }
}

fn noop() -> Arc<OpFn> {
    Arc::new(|_ctx: &crate::TaskContext<'_>, _inputs: &mut [Value]| Ok(Value::unit()))
}

/// Builds the graph of `shape` over `n` base tasks; returns it with its output key.
pub fn build(shape: Shape, n: usize) -> Result<(Graph, Key)> {
    let f = noop();
    let op = |name: &Arc<str>| Op::from_arc(Arc::clone(name), Arc::clone(&f));
    let n = n.max(1);
    match shape {
        Shape::Chain => {
            let name: Arc<str> = Arc::from("chain");
            let mut g = Graph::with_capacity(n, n);
            let mut prev: Option<TaskId> = None;
            for i in 0..n {
                let key = Key::indexed(&name, &[i as i64]);
                prev = Some(g.add_task(key, op(&name), prev)?);
            }
            Ok((g, Key::indexed(&name, &[n as i64 - 1])))
        }
        Shape::Independent => reduce_tree(n, 32, "noop", op),
        Shape::Tree => reduce_tree(n, 2, "leaf", op),
    }
}

fn reduce_tree(
    n: usize,
    fan_in: usize,
    leaf_name: &str,
    op: impl Fn(&Arc<str>) -> Op,
) -> Result<(Graph, Key)> {
    let leaf: Arc<str> = Arc::from(leaf_name);
    let node: Arc<str> = Arc::from("reduce");
    let mut g = Graph::with_capacity(n + n / (fan_in - 1) + 1, n + n / (fan_in - 1) + 1);
    let mut level: Vec<TaskId> = Vec::with_capacity(n);
    for i in 0..n {
        level.push(g.add_task(
            Key::indexed(&leaf, &[i as i64]),
            op(&leaf),
            std::iter::empty::<TaskId>(),
        )?);
    }
    let mut depth = 0i64;
    let mut last = Key::indexed(&leaf, &[0]);
    while level.len() > 1 {
        depth += 1;
        let mut next = Vec::with_capacity(level.len() / fan_in + 1);
        for (j, group) in level.chunks(fan_in).enumerate() {
            if group.len() == 1 {
                // A lone leftover moves up a level: a reduction of one input is no task.
                next.push(group[0]);
                continue;
            }
            last = Key::indexed(&node, &[depth, j as i64]);
            next.push(g.add_task(last.clone(), op(&node), group.iter().copied())?);
        }
        level = next;
    }
    Ok((g, last))
}

/// Timings of one overhead run.
#[derive(Clone, Debug)]
pub struct OverheadReport {
    /// The shape.
    pub shape: Shape,
    /// Tasks in the graph as built.
    pub tasks: usize,
    /// Worker threads.
    pub threads: usize,
    /// Building keys and dependencies.
    pub build: Duration,
    /// All planning passes (validate, cull, fuse, order).
    pub plan: Duration,
    /// Running, including result handling.
    pub run: Duration,
    /// Tasks after fusion.
    pub tasks_run: usize,
}

impl OverheadReport {
    /// Microseconds per task, end to end.
    pub fn us_per_task(&self) -> f64 {
        (self.build + self.plan + self.run).as_secs_f64() * 1e6 / self.tasks as f64
    }

    /// The one-line summary `brisk bench overhead` prints.
    pub fn line(&self) -> String {
        format!(
            "shape={} tasks={} threads={} build_ms={:.3} order_ms={:.3} run_ms={:.3} us_per_task={:.4}",
            self.shape,
            self.tasks,
            self.threads,
            self.build.as_secs_f64() * 1e3,
            self.plan.as_secs_f64() * 1e3,
            self.run.as_secs_f64() * 1e3,
            self.us_per_task(),
        )
    }
}

/// Builds, plans and runs one overhead graph on `rt`.
pub fn run(rt: &Runtime, shape: Shape, n: usize, fuse: bool) -> Result<OverheadReport> {
    let t0 = Instant::now();
    let (graph, out) = build(shape, n)?;
    let tasks = graph.len();
    let t1 = Instant::now();
    let plan = graph.plan(&[out], &PlanOptions { fuse })?;
    let tasks_run = plan.len();
    let t2 = Instant::now();
    let values = rt.execute_plan(plan, &ComputeOptions::default())?;
    let t3 = Instant::now();
    if values.len() != 1 || !values[0].is::<()>() {
        return Err(Error::internal(
            "overhead graph returned an unexpected result",
        ));
    }
    drop(values);
    Ok(OverheadReport {
        shape,
        tasks,
        threads: rt.threads(),
        build: t1 - t0,
        plan: t2 - t1,
        run: t3 - t2,
        tasks_run,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn shapes_have_expected_sizes() {
        assert_eq!(build(Shape::Chain, 10).unwrap().0.len(), 10);
        assert_eq!(build(Shape::Tree, 8).unwrap().0.len(), 15);
        assert_eq!(build(Shape::Tree, 1000).unwrap().0.len(), 1999);
        // 64 leaves, 2 groups of 32, one root.
        assert_eq!(build(Shape::Independent, 64).unwrap().0.len(), 67);
    }

    #[test]
    fn runs_each_shape() {
        let rt = Runtime::builder().threads(2).build().unwrap();
        for shape in [Shape::Independent, Shape::Chain, Shape::Tree] {
            let r = run(&rt, shape, 1000, true).unwrap();
            assert!(r.tasks >= 1000);
            assert!(r.line().starts_with(&format!("shape={shape} ")));
        }
    }
}
