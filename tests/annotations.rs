//! Behaviour of task annotations: user priority, retries and resources, on hand-built graphs
//! and through `delayed`, with and without fusion.
//!
//! Waits that a scheduler bug could turn into hangs have deadlines, so such a bug fails the
//! test instead of hanging it.

use std::sync::atomic::{AtomicU32, AtomicUsize, Ordering::SeqCst};
use std::sync::{Arc, Condvar, Mutex};
use std::time::Duration;

use brisk::graph::PlanOptions;
use brisk::prelude::*;
use brisk::{Annotations, ErrorKind, Graph, Key, Op, TaskContext, TaskId, Value};

mod common;
use common::*;

/// Deadline of a wait inside a task (shorter than [`HANG`] so the task reports it first).
const TASK_WAIT: Duration = Duration::from_secs(10);

fn no_deps() -> Vec<TaskId> {
    Vec::new()
}

/// Shared counters that tasks wait on, with deadlines.
#[derive(Default)]
struct Board {
    state: Mutex<Counts>,
    changed: Condvar,
}

#[derive(Default, Debug)]
struct Counts {
    /// Units-holding tasks that started (tickets).
    gpu_started: usize,
    /// gpu tasks running now and at most.
    gpu_now: usize,
    gpu_max: usize,
    /// Tasks without needs that finished, and how many of them saw two gpu tasks running.
    cpu_done: usize,
    cpu_while_two_held: usize,
    flags: Vec<&'static str>,
    problems: Vec<String>,
}

impl Board {
    fn update<R>(&self, f: impl FnOnce(&mut Counts) -> R) -> R {
        let mut s = self.state.lock().unwrap();
        let r = f(&mut s);
        self.changed.notify_all();
        r
    }

    /// Waits until `cond` holds; records a problem (and returns false) after [`TASK_WAIT`].
    fn wait_for(&self, what: &str, cond: impl Fn(&Counts) -> bool) -> bool {
        let s = self.state.lock().unwrap();
        let (mut s, timeout) = self
            .changed
            .wait_timeout_while(s, TASK_WAIT, |s| !cond(s))
            .unwrap();
        if timeout.timed_out() {
            let problem = format!("timed out waiting for {what}: {s:?}");
            s.problems.push(problem);
            return false;
        }
        true
    }

    fn snapshot(&self) -> (usize, usize, usize, Vec<String>) {
        let s = self.state.lock().unwrap();
        (
            s.gpu_max,
            s.cpu_done,
            s.cpu_while_two_held,
            s.problems.clone(),
        )
    }
}

// ---------------------------------------------------------------------------------------------
// Priority.

/// Runs `n` independent tasks on the sync executor; returns the order they ran in.
fn sync_run_order(n: usize, priority: impl Fn(usize) -> Option<i64>) -> Vec<usize> {
    let order = Arc::new(Mutex::new(Vec::new()));
    let mut g = Graph::new();
    let mut outputs = Vec::new();
    for i in 0..n {
        let order = Arc::clone(&order);
        let op = Op::new("record", move |_: &TaskContext<'_>, _: &mut [Value]| {
            order.lock().unwrap().push(i);
            Ok(Value::unit())
        });
        let id = g.add_task(("p", i as i64), op, no_deps()).unwrap();
        if let Some(p) = priority(i) {
            g.annotate(id, Annotations::new().priority(p));
        }
        outputs.push(Key::from(("p", i as i64)));
    }
    let rt = Runtime::builder().threads(1).build().unwrap();
    rt.compute_graph_with(g, &outputs, &ComputeOptions::new().executor(Executor::Sync))
        .unwrap();
    let order = order.lock().unwrap().clone();
    order
}

#[test]
fn user_priority_overrides_the_static_order() {
    let n = 10;
    let baseline = sync_run_order(n, |_| None);
    let mut sorted = baseline.clone();
    sorted.sort_unstable();
    assert_eq!(sorted, (0..n).collect::<Vec<_>>());
    assert_eq!(
        sync_run_order(n, |_| None),
        baseline,
        "the sync order is deterministic"
    );

    // Higher priority first: the last of the static order gets the highest priority.
    let rank = |i: usize| baseline.iter().position(|&b| b == i).unwrap() as i64;
    let reversed: Vec<usize> = baseline.iter().rev().copied().collect();
    assert_eq!(sync_run_order(n, |i| Some(rank(i))), reversed);

    // One task raised above the default 0, one lowered below it; the rest keep their order.
    let (up, down) = (baseline[n - 1], baseline[0]);
    let order = sync_run_order(n, |i| match i {
        _ if i == up => Some(5),
        _ if i == down => Some(-5),
        _ => None,
    });
    let mut expected = vec![up];
    expected.extend(baseline[1..n - 1].iter().copied());
    expected.push(down);
    assert_eq!(order, expected);
}

#[test]
fn priority_never_runs_a_task_before_its_dependencies() {
    let order = Arc::new(Mutex::new(Vec::new()));
    let record = |name: &'static str| {
        let order = Arc::clone(&order);
        Op::new(name, move |_: &TaskContext<'_>, _: &mut [Value]| {
            order.lock().unwrap().push(name);
            Ok(Value::unit())
        })
    };
    let mut g = Graph::new();
    let low = g.add_task("low", record("low"), no_deps()).unwrap();
    let urgent = g.add_task("urgent", record("urgent"), [low]).unwrap();
    let mid = g.add_task("mid", record("mid"), no_deps()).unwrap();
    g.annotate(low, Annotations::new().priority(-10));
    g.annotate(urgent, Annotations::new().priority(100));
    g.annotate(mid, Annotations::new().priority(50));
    let rt = Runtime::builder().threads(1).build().unwrap();
    rt.compute_graph_with(
        g,
        &["urgent".into(), "mid".into()],
        &ComputeOptions::new().executor(Executor::Sync),
    )
    .unwrap();
    assert_eq!(*order.lock().unwrap(), ["mid", "low", "urgent"]);
}

#[test]
fn delayed_priority_orders_independent_calls() {
    let order = Arc::new(Mutex::new(Vec::new()));
    let (o1, o2) = (Arc::clone(&order), Arc::clone(&order));
    let low = delayed(move |i: u32| {
        o1.lock().unwrap().push(("low", i));
        i
    })
    .name("low");
    let high = delayed(move |i: u32| {
        o2.lock().unwrap().push(("high", i));
        i
    })
    .name("high")
    .priority(10);
    let lows: Vec<Delayed<u32>> = (0..5).map(|i| low.call(i)).collect();
    let highs: Vec<Delayed<u32>> = (0..5).map(|i| high.call(i)).collect();
    let rt = Runtime::builder().threads(1).build().unwrap();
    rt.compute_with(
        &(lows, highs),
        &ComputeOptions::new().executor(Executor::Sync),
    )
    .unwrap();
    let order = order.lock().unwrap();
    assert_eq!(order.len(), 10);
    assert!(order[..5].iter().all(|(n, _)| *n == "high"), "{order:?}");
    assert!(order[5..].iter().all(|(n, _)| *n == "low"), "{order:?}");
}

// ---------------------------------------------------------------------------------------------
// Retries on hand-built graphs.

/// input -> flaky -> double; `flaky` takes its input and fails while `attempt() <= fail_first`.
fn flaky_graph(fail_first: u32, retries: u32, calls: &Arc<AtomicU32>) -> Graph {
    let mut g = Graph::new();
    let input = g.add_value("input", Value::new(vec![1u64, 2, 3])).unwrap();
    let calls = Arc::clone(calls);
    let flaky = Op::new("flaky", move |ctx: &TaskContext<'_>, x: &mut [Value]| {
        calls.fetch_add(1, SeqCst);
        // Own the input: on a retry it must be there again.
        let v: Vec<u64> = std::mem::take(&mut x[0]).take().map_err(|v| {
            Error::msg(format!("input missing on attempt {}: {v:?}", ctx.attempt()))
        })?;
        if ctx.attempt() <= fail_first {
            return Err(Error::msg(format!("flaky on attempt {}", ctx.attempt())));
        }
        Ok(Value::new(v.iter().sum::<u64>()))
    });
    let f = g.add_task("flaky", flaky, [input]).unwrap();
    g.annotate(f, Annotations::new().retries(retries));
    let double = Op::new("double", |_: &TaskContext<'_>, x: &mut [Value]| {
        Ok(Value::new(2 * x[0].downcast_ref::<u64>().unwrap()))
    });
    g.add_task("double", double, [f]).unwrap();
    g
}

fn executors() -> [(Executor, bool); 4] {
    [
        (Executor::Sync, true),
        (Executor::Sync, false),
        (Executor::Threads, true),
        (Executor::Threads, false),
    ]
}

#[test]
fn annotated_retries_let_a_failing_task_succeed() {
    let rt = Runtime::builder().threads(2).build().unwrap();
    for k in 1..=3 {
        for (executor, fuse) in executors() {
            let calls = Arc::new(AtomicU32::new(0));
            let g = flaky_graph(k, k, &calls);
            let opts = ComputeOptions::new().executor(executor).fuse(fuse);
            let out = rt.compute_graph_with(g, &["double".into()], &opts).unwrap();
            assert_eq!(
                out[0].downcast_ref::<u64>(),
                Some(&12),
                "{executor:?} k={k}"
            );
            assert_eq!(calls.load(SeqCst), k + 1, "{executor:?} fuse={fuse} k={k}");
            assert_eq!(rt.memory_stats().current_bytes, 0);
        }
    }
}

#[test]
fn too_few_annotated_retries_fail_and_count_attempts() {
    let rt = Runtime::builder().threads(2).build().unwrap();
    for k in 1..=3 {
        for (executor, fuse) in executors() {
            let calls = Arc::new(AtomicU32::new(0));
            let g = flaky_graph(k, k - 1, &calls);
            let opts = ComputeOptions::new().executor(executor).fuse(fuse);
            let err = rt
                .compute_graph_with(g, &["double".into()], &opts)
                .unwrap_err();
            let msg = err.to_string();
            assert_eq!(calls.load(SeqCst), k, "{executor:?} k={k}");
            assert_eq!(err.failed_key(), Some("flaky"), "{msg}");
            assert!(msg.contains(&format!("flaky on attempt {k}")), "{msg}");
            assert!(msg.contains("(op `flaky`)"), "{msg}");
            if k > 1 {
                assert!(msg.contains(&format!("after {k} attempts")), "{msg}");
            }
            assert!(
                matches!(err.kind(), ErrorKind::TaskFailed { attempts, .. } if *attempts == k),
                "{msg}"
            );
            assert_eq!(rt.memory_stats().current_bytes, 0);
        }
    }
}

// ---------------------------------------------------------------------------------------------
// Resources.

fn gpu_runtime(threads: usize, gpus: u32) -> Runtime {
    Runtime::builder()
        .threads(threads)
        .resource("gpu", gpus)
        .build()
        .unwrap()
}

/// A gpu task: counts itself running; the first two to start hold their units until
/// `release` is true of the board (with a deadline).
fn gpu_op(board: &Arc<Board>, release: fn(&Counts) -> bool) -> Op {
    let board = Arc::clone(board);
    Op::new("gpu", move |_: &TaskContext<'_>, _: &mut [Value]| {
        let ticket = board.update(|s| {
            s.gpu_now += 1;
            s.gpu_max = s.gpu_max.max(s.gpu_now);
            s.gpu_started += 1;
            s.gpu_started - 1
        });
        if ticket < 2 {
            board.wait_for("the release condition of the first two gpu tasks", release);
        }
        board.update(|s| s.gpu_now -= 1);
        Ok(Value::unit())
    })
}

/// A task without needs: records whether two gpu tasks were running meanwhile.
fn cpu_op(board: &Arc<Board>) -> Op {
    let board = Arc::clone(board);
    Op::new("cpu", move |_: &TaskContext<'_>, _: &mut [Value]| {
        board.update(|s| {
            s.cpu_done += 1;
            if s.gpu_now == 2 {
                s.cpu_while_two_held += 1;
            }
        });
        Ok(Value::unit())
    })
}

#[test]
fn resource_capacity_holds_while_other_tasks_keep_running() {
    let rt = gpu_runtime(4, 2);
    let board = Arc::new(Board::default());
    let mut g = Graph::new();
    let mut outputs = Vec::new();
    // `start` (first in priority) waits until two gpu tasks hold their units; the 20 tasks
    // without needs follow it and run while those two wait for them all to finish.
    let b = Arc::clone(&board);
    let start = Op::new("start", move |_: &TaskContext<'_>, _: &mut [Value]| {
        b.wait_for("two gpu tasks to hold their units", |s| s.gpu_started >= 2);
        Ok(Value::unit())
    });
    let start = g.add_task("start", start, no_deps()).unwrap();
    g.annotate(start, Annotations::new().priority(100));
    for i in 0..20 {
        g.add_task(("cpu", i), cpu_op(&board), [start]).unwrap();
        outputs.push(Key::from(("cpu", i)));
    }
    for i in 0..20 {
        let id = g
            .add_task(("gpu", i), gpu_op(&board, |s| s.cpu_done == 20), no_deps())
            .unwrap();
        g.annotate(id, Annotations::new().resource("gpu", 1));
        outputs.push(Key::from(("gpu", i)));
    }
    let r = rt.clone();
    guarded("gpu compute", move || r.compute_graph(g, &outputs)).unwrap();
    let (max, cpu_done, while_held, problems) = board.snapshot();
    assert!(problems.is_empty(), "{problems:?}");
    assert_eq!(
        max, 2,
        "at most two gpu tasks at once, and two did run together"
    );
    assert_eq!(cpu_done, 20);
    assert_eq!(
        while_held, 20,
        "every task without needs ran while two gpu tasks were held"
    );
    assert_eq!(board.state.lock().unwrap().gpu_started, 20);
}

#[test]
fn parked_gpu_roots_do_not_starve_independent_roots() {
    // 20 gpu roots first in priority, 20 independent roots without needs, 4 workers, gpu: 2.
    // Two gpu tasks hold their units until every task without needs is done: the other two
    // workers must be free to run those ("the worker moves on to other work").
    let rt = gpu_runtime(4, 2);
    let board = Arc::new(Board::default());
    let mut g = Graph::new();
    let mut outputs = Vec::new();
    for i in 0..20 {
        let id = g
            .add_task(("gpu", i), gpu_op(&board, |s| s.cpu_done == 20), no_deps())
            .unwrap();
        g.annotate(id, Annotations::new().resource("gpu", 1).priority(1));
        outputs.push(Key::from(("gpu", i)));
        g.add_task(("cpu", i), cpu_op(&board), no_deps()).unwrap();
        outputs.push(Key::from(("cpu", i)));
    }
    let r = rt.clone();
    guarded("gpu compute", move || r.compute_graph(g, &outputs)).unwrap();
    let (max, cpu_done, _, problems) = board.snapshot();
    assert!(problems.is_empty(), "{problems:?}");
    assert!(max <= 2);
    assert_eq!(cpu_done, 20);
}

#[test]
fn resource_units_are_returned_when_a_run_fails() {
    // gpu: 1, two workers. A holds the gpu; B (needing it) is parked behind A; then A fails.
    // A's release grants the unit to parked B, which the aborting run then discards.
    let rt = gpu_runtime(2, 1);
    let board = Arc::new(Board::default());
    let mut g = Graph::new();
    let b1 = Arc::clone(&board);
    let a = Op::new(
        "a",
        move |_: &TaskContext<'_>, _: &mut [Value]| -> Result<Value> {
            b1.update(|s| s.flags.push("a started"));
            b1.wait_for("q to run", |s| s.flags.contains(&"q ran"));
            Err(Error::msg("a fails while b is parked"))
        },
    );
    let b2 = Arc::clone(&board);
    let p = Op::new("p", move |_: &TaskContext<'_>, _: &mut [Value]| {
        b2.wait_for("a to start", |s| s.flags.contains(&"a started"));
        Ok(Value::unit())
    });
    let b3 = Arc::clone(&board);
    let q = Op::new("q", move |_: &TaskContext<'_>, _: &mut [Value]| {
        b3.update(|s| s.flags.push("q ran"));
        Ok(Value::unit())
    });
    let b = Op::new(
        "b",
        |_: &TaskContext<'_>, _: &mut [Value]| Ok(Value::unit()),
    );
    let a = g.add_task("a", a, no_deps()).unwrap();
    g.annotate(a, Annotations::new().resource("gpu", 1));
    let p = g.add_task("p", p, no_deps()).unwrap();
    // When p finishes, its worker tries b first (higher priority): b parks behind a. q runs
    // next on the same worker and lets a fail.
    let b = g.add_task("b", b, [p]).unwrap();
    g.annotate(b, Annotations::new().resource("gpu", 1).priority(10));
    g.add_task("q", q, [p]).unwrap();
    let r = rt.clone();
    let outputs: Vec<Key> = vec!["a".into(), "b".into(), "q".into()];
    let err = guarded("failing gpu compute", move || r.compute_graph(g, &outputs)).unwrap_err();
    assert_eq!(err.failed_key(), Some("a"), "{err}");
    let (_, _, _, problems) = board.snapshot();
    assert!(problems.is_empty(), "{problems:?}");

    // The gpu must be free again: one gpu task runs.
    let mut g = Graph::new();
    let one = g
        .add_task(
            "one",
            Op::new("one", |_: &TaskContext<'_>, _: &mut [Value]| {
                Ok(Value::new(1u8))
            }),
            no_deps(),
        )
        .unwrap();
    g.annotate(one, Annotations::new().resource("gpu", 1));
    let r = rt.clone();
    let out = guarded("gpu compute after a failure", move || {
        r.compute_graph(g, &["one".into()])
    });
    assert_eq!(out.unwrap()[0].downcast_ref::<u8>(), Some(&1));
}

#[test]
fn a_task_needing_more_than_the_capacity_fails_at_compute_time() {
    let rt = gpu_runtime(2, 2);
    assert_eq!(rt.resources(), vec![("gpu".to_string(), 2)]);
    for executor in [Executor::Threads, Executor::Sync] {
        for (resource, units, capacity) in [("gpu", 3, 2), ("tpu", 1, 0)] {
            let calls = Arc::new(AtomicUsize::new(0));
            let mut g = Graph::new();
            let c = Arc::clone(&calls);
            let count = move |_: &TaskContext<'_>, _: &mut [Value]| {
                c.fetch_add(1, SeqCst);
                Ok(Value::unit())
            };
            let free = g
                .add_task("free", Op::new("count", count.clone()), no_deps())
                .unwrap();
            let greedy = g
                .add_task(("greedy", 7), Op::new("count", count), [free])
                .unwrap();
            g.annotate(greedy, Annotations::new().resource(resource, units));
            let err = rt
                .compute_graph_with(
                    g,
                    &[Key::from(("greedy", 7))],
                    &ComputeOptions::new().executor(executor),
                )
                .unwrap_err();
            let msg = err.to_string();
            assert_eq!(
                msg,
                format!(
                    "task (\"greedy\", 7) needs {units} of resource `{resource}`, but the \
                     runtime has only {capacity}"
                )
            );
            match err.kind() {
                ErrorKind::ResourceUnavailable {
                    key,
                    resource: r,
                    needed,
                    capacity: cap,
                } => {
                    assert_eq!(key, "(\"greedy\", 7)");
                    assert_eq!(r, resource);
                    assert_eq!((*needed, *cap), (units, capacity));
                }
                other => panic!("{other:?}"),
            }
            assert_eq!(
                calls.load(SeqCst),
                0,
                "{executor:?}: an op ran before the check"
            );
        }
    }
    // Through delayed, too.
    let greedy = delayed(|x: u8| x).name("greedy").resource("gpu", 5);
    let d = greedy.call(1u8);
    let err = rt.compute(&d).unwrap_err();
    assert!(
        matches!(err.kind(), ErrorKind::ResourceUnavailable { key, .. } if *key == d.key().to_string()),
        "{err}"
    );
}

// ---------------------------------------------------------------------------------------------
// Annotations survive fusion.

/// a -> b -> c, each annotated alike; `b` fails while `attempt() <= fail_first`.
fn annotated_chain(
    fail_first: u32,
    annotations: &Annotations,
    calls: &Arc<[AtomicU32; 3]>,
) -> Graph {
    let mut g = Graph::new();
    let mut prev: Option<TaskId> = None;
    for (i, name) in ["a", "b", "c"].into_iter().enumerate() {
        let calls = Arc::clone(calls);
        let op = Op::new(name, move |ctx: &TaskContext<'_>, x: &mut [Value]| {
            calls[i].fetch_add(1, SeqCst);
            if name == "b" && ctx.attempt() <= fail_first {
                return Err(Error::msg(format!("b fails on attempt {}", ctx.attempt())));
            }
            let before = x.first().map_or(0, |v| *v.downcast_ref::<u64>().unwrap());
            Ok(Value::new(before * 10 + i as u64 + 1))
        });
        let id = g.add_task(name, op, prev).unwrap();
        g.annotate(id, annotations.clone());
        prev = Some(id);
    }
    g
}

#[test]
fn retries_survive_fusion() {
    let annotations = Annotations::new().retries(2);
    // The chain does fuse into one task that keeps its annotations.
    let calls = Arc::new([const { AtomicU32::new(0) }; 3]);
    let plan = annotated_chain(0, &annotations, &calls)
        .plan(&["c".into()], &PlanOptions::default())
        .unwrap();
    assert_eq!(plan.len(), 1);
    assert_eq!(plan.stats().fused, 2);
    assert_eq!(plan.annotations(TaskId(0)), Some(&annotations));

    let rt = Runtime::builder().threads(2).build().unwrap();
    for (executor, fuse) in executors() {
        let opts = ComputeOptions::new().executor(executor).fuse(fuse);
        let calls = Arc::new([const { AtomicU32::new(0) }; 3]);
        let g = annotated_chain(2, &annotations, &calls);
        let out = rt.compute_graph_with(g, &["c".into()], &opts).unwrap();
        assert_eq!(
            out[0].downcast_ref::<u64>(),
            Some(&123),
            "{executor:?} fuse={fuse}"
        );
        assert_eq!(
            calls[1].load(SeqCst),
            3,
            "{executor:?} fuse={fuse}: b's attempts"
        );
        assert_eq!(calls[2].load(SeqCst), 1);

        let calls = Arc::new([const { AtomicU32::new(0) }; 3]);
        let g = annotated_chain(3, &annotations, &calls);
        let err = rt.compute_graph_with(g, &["c".into()], &opts).unwrap_err();
        let msg = err.to_string();
        assert_eq!(
            err.failed_key(),
            Some("b"),
            "{executor:?} fuse={fuse}: {msg}"
        );
        assert!(msg.contains("(op `b`)"), "{msg}");
        assert!(msg.contains("after 3 attempts"), "{msg}");
        assert!(msg.contains("b fails on attempt 3"), "{msg}");
        assert_eq!(calls[1].load(SeqCst), 3);
        assert_eq!(calls[2].load(SeqCst), 0, "c ran after b failed");
    }
}

#[test]
fn resource_limits_survive_fusion() {
    let chains = 6;
    let gpus = 1;
    let mut g = Graph::new();
    let board = Arc::new(Board::default());
    let annotations = Annotations::new().resource("gpu", gpus);
    let mut outputs = Vec::new();
    for c in 0..chains {
        let mut prev: Option<TaskId> = None;
        for step in 0..3 {
            let board = Arc::clone(&board);
            let op = Op::new("step", move |_: &TaskContext<'_>, _: &mut [Value]| {
                board.update(|s| {
                    s.gpu_now += 1;
                    s.gpu_max = s.gpu_max.max(s.gpu_now);
                });
                // Simulated work, so that unlimited chains would overlap.
                std::thread::sleep(Duration::from_millis(2));
                board.update(|s| s.gpu_now -= 1);
                Ok(Value::unit())
            });
            let id = g.add_task(("step", c, step), op, prev).unwrap();
            g.annotate(id, annotations.clone());
            prev = Some(id);
        }
        outputs.push(Key::from(("step", c, 2)));
    }
    let plan = g
        .shallow_clone()
        .plan(&outputs, &PlanOptions::default())
        .unwrap();
    assert_eq!(
        plan.len(),
        chains as usize,
        "each chain fuses into one task"
    );
    for t in 0..plan.len() {
        assert_eq!(plan.annotations(TaskId(t as u32)), Some(&annotations));
    }
    let rt = gpu_runtime(4, gpus);
    let r = rt.clone();
    guarded("fused gpu chains", move || r.compute_graph(g, &outputs)).unwrap();
    let (max, _, _, problems) = board.snapshot();
    assert!(problems.is_empty(), "{problems:?}");
    assert_eq!(max, 1, "fused chains exceeded the gpu capacity");
}

#[test]
fn delayed_resource_chains_fuse_and_stay_limited() {
    let board = Arc::new(Board::default());
    let b = Arc::clone(&board);
    let step = delayed(move |x: u64| {
        b.update(|s| {
            s.gpu_now += 1;
            s.gpu_max = s.gpu_max.max(s.gpu_now);
        });
        std::thread::sleep(Duration::from_millis(1));
        b.update(|s| s.gpu_now -= 1);
        x + 1
    })
    .name("step")
    .resource("gpu", 1)
    .retries(1);
    let ends: Vec<Delayed<u64>> = (0..4u64)
        .map(|c| {
            let mut d = step.call(c * 100);
            for _ in 0..3 {
                d = step.call(d);
            }
            d
        })
        .collect();
    let (graph, outputs) = brisk::build_graph(&ends).unwrap();
    let plan = graph.plan(&outputs, &PlanOptions::default()).unwrap();
    assert_eq!(
        plan.len(),
        4,
        "each chain of four calls fuses into one task"
    );
    let rt = gpu_runtime(4, 1);
    let r = rt.clone();
    let out = guarded("delayed gpu chains", move || r.compute(&ends)).unwrap();
    assert_eq!(out, vec![4, 104, 204, 304]);
    assert_eq!(board.snapshot().0, 1);
}
