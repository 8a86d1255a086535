//! Behaviour of the executors on hand-built graphs.
//!
//! * property tests over random DAGs: every needed task runs exactly once, after all of its
//!   dependencies, with its inputs in argument order; outputs equal a recursive evaluation on
//!   every executor (sync, 1, 2 and 4 threads) with fusion on and off; results are dropped by
//!   the time their consumers are done and the byte account returns to zero;
//! * graph errors (cycles, missing dependencies, duplicate and unknown keys) are reported
//!   before any op runs;
//! * a task that fails or panics anywhere in a random DAG fails the compute with its key, op
//!   and message, its consumers never run, and the runtime keeps every worker;
//! * cancellation from another thread, and events (hooks and the Chrome trace).
//!
//! Nothing here sleeps to synchronize: threads meet on channels and barriers, and every wait
//! that could hang on a bug has a generous deadline so that a bug fails the test instead.

use std::collections::{BTreeSet, HashMap};
use std::sync::atomic::{AtomicI64, AtomicU32, AtomicU64, AtomicUsize, Ordering::SeqCst};
use std::sync::mpsc;
use std::sync::{Arc, Barrier, Mutex};
use std::time::Duration;

use brisk::prelude::*;
use brisk::sched::event::Event;
use brisk::{ChromeTrace, ErrorKind, Graph, Key, Op, TaskContext, TaskId, Value};
use proptest::prelude::*;
use proptest::sample::Index;
use proptest::test_runner::{Config, RngSeed, TestCaseError, TestRunner};

mod common;
use common::*;

// ---------------------------------------------------------------------------------------------
// Helpers shared by the tests of this file (the hang guard and panic hook are in `common`).

/// Proptest settings: few cases (the suite runs in a debug build), a fixed seed unless
/// `PROPTEST_RNG_SEED` is set, `PROPTEST_CASES` respected, no regression files.
fn proptest_config(cases: u32) -> Config {
    let mut config = Config::default();
    if std::env::var_os("PROPTEST_CASES").is_none() {
        config.cases = cases;
    }
    if std::env::var_os("PROPTEST_RNG_SEED").is_none() {
        config.rng_seed = RngSeed::Fixed(0x5EED_B215);
    }
    config.failure_persistence = None;
    config.max_shrink_iters = 256;
    config.max_shrink_time = 120_000;
    config
}

fn key(i: usize) -> Key {
    Key::new("t", &[i as i64])
}

fn op_name(i: usize) -> String {
    format!("op{}", i % 7)
}

/// Proves that all `rt.threads()` workers are alive: that many tasks meet at one barrier.
/// Also checks that they ran on distinct workers with indices below the thread count.
fn assert_all_workers_alive(rt: &Runtime) {
    let n = rt.threads();
    let barrier = Arc::new(Barrier::new(n));
    let mut g = Graph::new();
    let mut outputs = Vec::new();
    for i in 0..n {
        let barrier = Arc::clone(&barrier);
        let op = Op::new("barrier", move |ctx: &TaskContext<'_>, _: &mut [Value]| {
            barrier.wait();
            Ok(Value::new(ctx.worker() as u64))
        });
        g.add_task(Key::new("barrier", &[i as i64]), op, Vec::<TaskId>::new())
            .unwrap();
        outputs.push(Key::new("barrier", &[i as i64]));
    }
    let rt = rt.clone();
    let values = guarded("barrier of all workers", move || {
        rt.compute_graph_with(
            g,
            &outputs,
            &ComputeOptions::new().executor(Executor::Threads),
        )
    })
    .expect("barrier compute");
    let workers: BTreeSet<u64> = values
        .iter()
        .map(|v| *v.downcast_ref::<u64>().unwrap())
        .collect();
    assert_eq!(
        workers,
        (0..n as u64).collect::<BTreeSet<_>>(),
        "one task per worker"
    );
}

// ---------------------------------------------------------------------------------------------
// Random DAGs and their model.

/// A random DAG: task `i` depends on `deps[i]` (earlier tasks, in argument order, repeats
/// allowed); `outputs` are requested in order (repeats allowed).
#[derive(Clone, Debug)]
struct Dag {
    deps: Vec<Vec<usize>>,
    outputs: Vec<usize>,
    /// Add tasks last-to-first with dependencies given by key (forward references).
    by_key: bool,
}

fn dag_strategy(max_tasks: usize) -> impl Strategy<Value = Dag> {
    (1..=max_tasks)
        .prop_flat_map(|n| {
            // Per task: dependencies as (near?, which) and whether to repeat the first one.
            let task = (
                prop::collection::vec((any::<bool>(), any::<Index>()), 0..4),
                prop::bool::weighted(0.15),
            );
            (
                prop::collection::vec(task, n),
                prop::collection::vec(any::<Index>(), 1..5),
                prop::bool::weighted(0.3),
                any::<bool>(),
            )
        })
        .prop_map(|(tasks, outs, all_sinks, by_key)| {
            let n = tasks.len();
            let mut deps = Vec::with_capacity(n);
            for (i, (raw, repeat)) in tasks.into_iter().enumerate() {
                let mut d = Vec::new();
                if i > 0 {
                    for (near, which) in raw {
                        // Near dependencies make chains (fusion); far ones make fan-in.
                        d.push(if near {
                            i - 1 - which.index(i.min(3))
                        } else {
                            which.index(i)
                        });
                    }
                    if repeat && !d.is_empty() {
                        let first = d[0];
                        d.push(first);
                    }
                }
                deps.push(d);
            }
            let outputs = if all_sinks {
                let mut consumed = vec![false; n];
                deps.iter().flatten().for_each(|&d| consumed[d] = true);
                (0..n).filter(|&i| !consumed[i]).collect()
            } else {
                outs.iter().map(|x| x.index(n)).collect()
            };
            Dag {
                deps,
                outputs,
                by_key,
            }
        })
}

#[derive(Clone)]
struct Bits(Vec<u64>);

impl Bits {
    fn new(n: usize) -> Self {
        Bits(vec![0; n.div_ceil(64)])
    }
    fn set(&mut self, i: usize) {
        self.0[i / 64] |= 1 << (i % 64);
    }
    fn has(&self, i: usize) -> bool {
        self.0[i / 64] & (1 << (i % 64)) != 0
    }
    fn union(&mut self, other: &Bits) {
        for (a, b) in self.0.iter_mut().zip(&other.0) {
            *a |= b;
        }
    }
}

/// What a correct scheduler must do with a [`Dag`].
struct Model {
    n: usize,
    keys: Vec<Key>,
    deps: Vec<Vec<usize>>,
    outputs: Vec<usize>,
    by_key: bool,
    needed: Vec<bool>,
    is_output: Vec<bool>,
    /// Distinct needed consumers of each task.
    consumers: Vec<Vec<usize>>,
    /// Strict ancestors of each task.
    ancestors: Vec<Bits>,
    /// The value each task computes (recursive evaluation).
    expected: Vec<u64>,
}

fn seed(i: usize) -> u64 {
    (i as u64 + 1).wrapping_mul(0x9E37_79B9_7F4A_7C15)
}

/// Order-sensitive: swapping two arguments changes the result.
fn mix(h: u64, x: u64) -> u64 {
    (h ^ x).wrapping_mul(0x0000_0100_0000_01B3).rotate_left(17)
}

fn eval(deps: &[Vec<usize>], i: usize, memo: &mut [Option<u64>]) -> u64 {
    if let Some(v) = memo[i] {
        return v;
    }
    let mut h = seed(i);
    for &d in &deps[i] {
        h = mix(h, eval(deps, d, memo));
    }
    memo[i] = Some(h);
    h
}

impl Model {
    fn new(dag: &Dag) -> Arc<Model> {
        let n = dag.deps.len();
        let mut needed = vec![false; n];
        let mut stack: Vec<usize> = dag.outputs.clone();
        while let Some(t) = stack.pop() {
            if !needed[t] {
                needed[t] = true;
                stack.extend(&dag.deps[t]);
            }
        }
        let mut is_output = vec![false; n];
        dag.outputs.iter().for_each(|&o| is_output[o] = true);
        let mut consumers = vec![Vec::new(); n];
        for (c, ds) in dag.deps.iter().enumerate() {
            if !needed[c] {
                continue;
            }
            for &d in ds {
                if !consumers[d].contains(&c) {
                    consumers[d].push(c);
                }
            }
        }
        let mut ancestors: Vec<Bits> = Vec::with_capacity(n);
        for i in 0..n {
            let mut a = Bits::new(n);
            for &d in &dag.deps[i] {
                a.set(d);
                let ad = ancestors[d].clone();
                a.union(&ad);
            }
            ancestors.push(a);
        }
        let mut memo = vec![None; n];
        let expected = (0..n).map(|i| eval(&dag.deps, i, &mut memo)).collect();
        Arc::new(Model {
            n,
            keys: (0..n).map(key).collect(),
            deps: dag.deps.clone(),
            outputs: dag.outputs.clone(),
            by_key: dag.by_key,
            needed,
            is_output,
            consumers,
            ancestors,
            expected,
        })
    }
}

/// A task result that counts itself alive until dropped.
struct Tracked {
    task: usize,
    val: u64,
    alive: Arc<Vec<AtomicI64>>,
}

impl Drop for Tracked {
    fn drop(&mut self) {
        self.alive[self.task].fetch_sub(1, SeqCst);
    }
}

/// Every tracked value weighs exactly this much in the byte account.
const TRACKED_BYTES: usize = 100;

impl SizeOf for Tracked {
    fn size_of(&self) -> usize {
        TRACKED_BYTES
    }
}

#[derive(Clone, Copy, Debug)]
enum FailMode {
    Err,
    Panic,
}

/// What the ops of one compute observed.
struct Probe {
    calls: Vec<AtomicU32>,
    /// Sequence numbers (from 1; 0 = never) at op start and end.
    start: Vec<AtomicU64>,
    end: Vec<AtomicU64>,
    seq: AtomicU64,
    alive: Arc<Vec<AtomicI64>>,
    violations: Mutex<Vec<String>>,
    /// Sync executor: any result whose consumers have all finished must be gone.
    strict_drop: bool,
    fail: Option<(usize, FailMode)>,
}

impl Probe {
    fn new(n: usize, strict_drop: bool, fail: Option<(usize, FailMode)>) -> Arc<Probe> {
        Arc::new(Probe {
            calls: (0..n).map(|_| AtomicU32::new(0)).collect(),
            start: (0..n).map(|_| AtomicU64::new(0)).collect(),
            end: (0..n).map(|_| AtomicU64::new(0)).collect(),
            seq: AtomicU64::new(1),
            alive: Arc::new((0..n).map(|_| AtomicI64::new(0)).collect()),
            violations: Mutex::new(Vec::new()),
            strict_drop,
            fail,
        })
    }

    fn violation(&self, msg: String) {
        self.violations.lock().unwrap().push(msg);
    }

    /// The body of task `i`: checks what the scheduler promised, then computes.
    fn run(
        &self,
        m: &Model,
        i: usize,
        ctx: &TaskContext<'_>,
        inputs: &mut [Value],
    ) -> Result<Value> {
        self.start[i].store(self.seq.fetch_add(1, SeqCst), SeqCst);
        self.calls[i].fetch_add(1, SeqCst);
        if ctx.key() != &m.keys[i] {
            self.violation(format!("task {i} ran with key {}", ctx.key()));
        }
        for &d in &m.deps[i] {
            if self.end[d].load(SeqCst) == 0 {
                self.violation(format!(
                    "task {i} started before its dependency {d} finished"
                ));
            }
        }
        // Results whose consumers are all done must have been released by now.
        for t in 0..m.n {
            if !m.needed[t] || m.is_output[t] || m.consumers[t].is_empty() {
                continue;
            }
            let consumers_done = if self.strict_drop {
                m.consumers[t]
                    .iter()
                    .all(|&c| self.end[c].load(SeqCst) != 0)
            } else {
                m.consumers[t].iter().all(|&c| m.ancestors[i].has(c))
            };
            if consumers_done && self.alive[t].load(SeqCst) != 0 {
                self.violation(format!(
                    "task {i} started while the result of task {t} is alive, although all \
                     its consumers {:?} finished",
                    m.consumers[t]
                ));
            }
        }
        if inputs.len() != m.deps[i].len() {
            self.violation(format!(
                "task {i} got {} inputs, expected {}",
                inputs.len(),
                m.deps[i].len()
            ));
            return Err(Error::msg("wrong number of inputs"));
        }
        // Own the inputs (the documented idiom) and release them before finishing.
        let owned: Vec<Value> = inputs.iter_mut().map(std::mem::take).collect();
        let mut h = seed(i);
        for (j, v) in owned.iter().enumerate() {
            match v.downcast_ref::<Tracked>() {
                Some(t) if t.task == m.deps[i][j] => h = mix(h, t.val),
                Some(t) => self.violation(format!(
                    "task {i} argument {j}: got the result of task {}, expected task {}",
                    t.task, m.deps[i][j]
                )),
                None => self.violation(format!("task {i} argument {j}: {v:?}")),
            }
        }
        drop(owned);
        if let Some((f, mode)) = self.fail {
            if f == i {
                match mode {
                    FailMode::Err => {
                        return Err(Error::msg(format!("injected failure in task {i}")))
                    }
                    FailMode::Panic => panic!("injected panic in task {i}"),
                }
            }
        }
        self.alive[i].fetch_add(1, SeqCst);
        let value = Value::new(Tracked {
            task: i,
            val: h,
            alive: Arc::clone(&self.alive),
        });
        self.end[i].store(self.seq.fetch_add(1, SeqCst), SeqCst);
        Ok(value)
    }
}

fn build(m: &Arc<Model>, probe: &Arc<Probe>) -> (Graph, Vec<Key>) {
    let mut g = Graph::new();
    let op = |i: usize| {
        let (m, probe) = (Arc::clone(m), Arc::clone(probe));
        Op::new(
            op_name(i),
            move |ctx: &TaskContext<'_>, inputs: &mut [Value]| probe.run(&m, i, ctx, inputs),
        )
    };
    if m.by_key {
        for i in (0..m.n).rev() {
            let deps: Vec<Key> = m.deps[i].iter().map(|&d| key(d)).collect();
            g.add_task(key(i), op(i), deps).unwrap();
        }
    } else {
        for i in 0..m.n {
            let deps: Vec<TaskId> = m.deps[i].iter().map(|&d| TaskId(d as u32)).collect();
            let id = g.add_task(key(i), op(i), deps).unwrap();
            assert_eq!(id, TaskId(i as u32));
        }
    }
    let outputs = m.outputs.iter().map(|&o| key(o)).collect();
    (g, outputs)
}

/// One way to run a graph: a runtime and an executor.
struct Setup {
    name: &'static str,
    rt: Runtime,
    executor: Executor,
}

fn setups() -> Vec<Setup> {
    let threads = |n: usize| Runtime::builder().threads(n).build().unwrap();
    vec![
        Setup {
            name: "sync",
            rt: Runtime::builder()
                .threads(1)
                .executor(Executor::Sync)
                .build()
                .unwrap(),
            executor: Executor::Sync,
        },
        Setup {
            name: "threads(1)",
            rt: threads(1),
            executor: Executor::Threads,
        },
        Setup {
            name: "threads(2)",
            rt: threads(2),
            executor: Executor::Threads,
        },
        Setup {
            name: "threads(4)",
            rt: threads(4),
            executor: Executor::Threads,
        },
    ]
}

/// Runs the model's graph once; returns the outcome and what the ops saw.
fn run_once(
    setup: &Setup,
    m: &Arc<Model>,
    fuse: bool,
    fail: Option<(usize, FailMode)>,
) -> (Result<Vec<Value>>, Arc<Probe>) {
    let probe = Probe::new(m.n, setup.executor == Executor::Sync, fail);
    let (g, outputs) = build(m, &probe);
    let rt = setup.rt.clone();
    let opts = ComputeOptions::new().executor(setup.executor).fuse(fuse);
    let what = format!("{} fuse={fuse}", setup.name);
    let result = guarded(&what, move || rt.compute_graph_with(g, &outputs, &opts));
    (result, probe)
}

fn fail_case(msg: String) -> TestCaseError {
    TestCaseError::fail(msg)
}

/// Checks a successful run: values, run-once, dependency order, releases and bytes.
fn check_success(
    setup: &Setup,
    m: &Model,
    fuse: bool,
    result: Result<Vec<Value>>,
    probe: &Probe,
) -> Result<(), TestCaseError> {
    check_run(setup, m, fuse, result, probe, true)
}

/// [`check_success`]; `alone` says that no other compute shares the runtime (so its byte
/// account must be back to zero).
fn check_run(
    setup: &Setup,
    m: &Model,
    fuse: bool,
    result: Result<Vec<Value>>,
    probe: &Probe,
    alone: bool,
) -> Result<(), TestCaseError> {
    let ctx = format!("{} fuse={fuse}", setup.name);
    let values = result.map_err(|e| fail_case(format!("{ctx}: compute failed: {e}")))?;
    let violations = probe.violations.lock().unwrap().clone();
    prop_assert!(violations.is_empty(), "{}: {:?}", ctx, violations);
    prop_assert_eq!(values.len(), m.outputs.len(), "{}: number of outputs", ctx);
    for (v, &o) in values.iter().zip(&m.outputs) {
        let t = v
            .downcast_ref::<Tracked>()
            .ok_or_else(|| fail_case(format!("{ctx}: output {o} is {v:?}")))?;
        prop_assert_eq!(t.task, o, "{}: output order", ctx);
        prop_assert_eq!(t.val, m.expected[o], "{}: value of output {}", ctx, o);
    }
    for i in 0..m.n {
        let calls = probe.calls[i].load(SeqCst);
        let want = u32::from(m.needed[i]);
        prop_assert_eq!(calls, want, "{}: task {} ran {} times", ctx, i, calls);
        if m.needed[i] {
            let start = probe.start[i].load(SeqCst);
            for &d in &m.deps[i] {
                let end = probe.end[d].load(SeqCst);
                prop_assert!(
                    end != 0 && end < start,
                    "{}: task {} started at {} but its dependency {} ended at {}",
                    ctx,
                    i,
                    start,
                    d,
                    end
                );
            }
        }
    }
    if alone {
        prop_assert_eq!(
            setup.rt.memory_stats().current_bytes,
            0,
            "{}: bytes still counted after the compute returned",
            ctx
        );
    }
    // Only the outputs we hold are still alive.
    for t in 0..m.n {
        let held = values
            .iter()
            .filter(|v| v.downcast_ref::<Tracked>().is_some_and(|x| x.task == t))
            .count();
        let alive = probe.alive[t].load(SeqCst);
        prop_assert_eq!(
            alive,
            i64::from(held > 0),
            "{}: task {} has {} live results",
            ctx,
            t,
            alive
        );
    }
    drop(values);
    prop_assert!(
        probe.alive.iter().all(|a| a.load(SeqCst) == 0),
        "{}: results alive after the outputs were dropped",
        ctx
    );
    Ok(())
}

// ---------------------------------------------------------------------------------------------
// 1. Random DAGs run correctly on every executor.

#[test]
fn random_dags_run_once_in_order_with_correct_values_and_releases() {
    let setups = setups();
    let mut runner = TestRunner::new(proptest_config(64));
    let result = runner.run(&dag_strategy(200), |dag| {
        let m = Model::new(&dag);
        for setup in &setups {
            for fuse in [true, false] {
                let (result, probe) = run_once(setup, &m, fuse, None);
                check_success(setup, &m, fuse, result, &probe)?;
            }
        }
        Ok(())
    });
    if let Err(e) = result {
        panic!("{e}");
    }
    for setup in setups.iter().filter(|s| s.executor == Executor::Threads) {
        assert_all_workers_alive(&setup.rt);
    }
}

#[test]
fn concurrent_computes_share_one_runtime_correctly() {
    use proptest::strategy::ValueTree;
    let rt = Runtime::builder().threads(3).build().unwrap();
    let mut runner = TestRunner::new(proptest_config(1));
    let strategy = dag_strategy(150);
    let dags: Vec<Dag> = (0..16)
        .map(|_| strategy.new_tree(&mut runner).unwrap().current())
        .collect();
    let handles: Vec<_> = dags
        .chunks(4)
        .enumerate()
        .map(|(k, chunk)| {
            let rt = rt.clone();
            let chunk = chunk.to_vec();
            std::thread::spawn(move || -> Result<(), String> {
                let setup = Setup {
                    name: "shared threads(3)",
                    rt,
                    executor: Executor::Threads,
                };
                for (j, dag) in chunk.iter().enumerate() {
                    let m = Model::new(dag);
                    let fuse = (k + j) % 2 == 0;
                    let (result, probe) = run_once(&setup, &m, fuse, None);
                    check_run(&setup, &m, fuse, result, &probe, false)
                        .map_err(|e| format!("thread {k} dag {j}: {e}"))?;
                }
                Ok(())
            })
        })
        .collect();
    for h in handles {
        h.join().expect("a computing thread panicked").unwrap();
    }
    assert_eq!(rt.memory_stats().current_bytes, 0);
    assert_all_workers_alive(&rt);
}

// ---------------------------------------------------------------------------------------------
// 3. Failures anywhere in random DAGs.

#[test]
fn random_failures_report_the_task_and_leave_the_runtime_whole() {
    quiet_injected_panics();
    let setups = setups();
    let strategy = (
        dag_strategy(120),
        any::<Index>(),
        any::<bool>(),
        0..setups.len(),
        any::<bool>(),
    );
    let mut runner = TestRunner::new(proptest_config(64));
    let result = runner.run(&strategy, |(dag, which, panic, s, fuse)| {
        let m = Model::new(&dag);
        let setup = &setups[s];
        let needed: Vec<usize> = (0..m.n).filter(|&i| m.needed[i]).collect();
        let f = needed[which.index(needed.len())];
        let mode = if panic {
            FailMode::Panic
        } else {
            FailMode::Err
        };
        let ctx = format!("{} fuse={fuse} failing task {f} ({mode:?})", setup.name);

        let (result, probe) = run_once(setup, &m, fuse, Some((f, mode)));
        let err = match result {
            Ok(_) => return Err(fail_case(format!("{ctx}: compute succeeded"))),
            Err(e) => e,
        };
        let msg = err.to_string();
        let expected_key = key(f).to_string();
        prop_assert_eq!(
            err.failed_key(),
            Some(expected_key.as_str()),
            "{}: {}",
            ctx,
            msg
        );
        prop_assert_eq!(err.is_panic(), panic, "{}: {}", ctx, msg);
        let text = match mode {
            FailMode::Err => format!("injected failure in task {f}"),
            FailMode::Panic => format!("injected panic in task {f}"),
        };
        prop_assert!(
            msg.contains(&text),
            "{}: message lacks {:?}: {}",
            ctx,
            text,
            msg
        );
        let op = format!("`{}`", op_name(f));
        prop_assert!(
            msg.contains(&op),
            "{}: message lacks op {}: {}",
            ctx,
            op,
            msg
        );
        match err.kind() {
            ErrorKind::TaskFailed { key: k, op: o, .. } => {
                prop_assert_eq!(k, &expected_key);
                prop_assert_eq!(o, &op_name(f));
            }
            other => return Err(fail_case(format!("{ctx}: unexpected error kind {other:?}"))),
        }
        let violations = probe.violations.lock().unwrap().clone();
        prop_assert!(violations.is_empty(), "{}: {:?}", ctx, violations);
        for i in 0..m.n {
            prop_assert!(
                probe.calls[i].load(SeqCst) <= 1,
                "{}: task {} ran twice",
                ctx,
                i
            );
            if m.ancestors[i].has(f) {
                prop_assert_eq!(
                    probe.calls[i].load(SeqCst),
                    0,
                    "{}: task {} ran although it depends on the failed task",
                    ctx,
                    i
                );
            }
        }
        prop_assert_eq!(
            setup.rt.memory_stats().current_bytes,
            0,
            "{}: bytes still counted after the failed compute",
            ctx
        );
        prop_assert!(
            probe.alive.iter().all(|a| a.load(SeqCst) == 0),
            "{}: results alive after the failed compute: {:?}",
            ctx,
            probe
                .alive
                .iter()
                .enumerate()
                .filter(|(_, a)| a.load(SeqCst) != 0)
                .map(|(i, _)| i)
                .collect::<Vec<_>>()
        );

        // The same runtime still computes correctly, with every worker.
        let (result, probe) = run_once(setup, &m, fuse, None);
        check_success(setup, &m, fuse, result, &probe)?;
        if setup.executor == Executor::Threads {
            assert_all_workers_alive(&setup.rt);
        }
        Ok(())
    });
    if let Err(e) = result {
        panic!("{e}");
    }
}

// ---------------------------------------------------------------------------------------------
// Hand-written corner cases of the same checks.

fn counting_op(name: &str, calls: &Arc<AtomicUsize>) -> Op {
    let calls = Arc::clone(calls);
    Op::new(name, move |_: &TaskContext<'_>, inputs: &mut [Value]| {
        calls.fetch_add(1, SeqCst);
        let sum: i64 = inputs
            .iter()
            .map(|v| *v.downcast_ref::<i64>().unwrap())
            .sum();
        Ok(Value::new(sum + 1))
    })
}

#[test]
fn repeated_dependency_is_passed_as_two_arguments() {
    for executor in [Executor::Sync, Executor::Threads] {
        let rt = Runtime::builder().threads(2).build().unwrap();
        let mut g = Graph::new();
        let a = g.add_value("a", Value::new(5i64)).unwrap();
        let b = g.add_value("b", Value::new(7i64)).unwrap();
        let pair = Op::new("pair", |_: &TaskContext<'_>, x: &mut [Value]| {
            let v: Vec<i64> = x
                .iter()
                .map(|v| *v.downcast_ref::<i64>().unwrap())
                .collect();
            Ok(Value::new(v))
        });
        g.add_task("c", pair, [a, b, a, a]).unwrap();
        let out = rt
            .compute_graph_with(
                g,
                &["c".into(), "a".into()],
                &ComputeOptions::new().executor(executor),
            )
            .unwrap();
        assert_eq!(out[0].downcast_ref::<Vec<i64>>().unwrap(), &[5, 7, 5, 5]);
        assert_eq!(out[1].downcast_ref::<i64>(), Some(&5));
        assert_eq!(rt.memory_stats().current_bytes, 0);
    }
}

#[test]
fn empty_output_list_runs_nothing() {
    let calls = Arc::new(AtomicUsize::new(0));
    let rt = Runtime::builder().threads(2).build().unwrap();
    let mut g = Graph::new();
    g.add_task("a", counting_op("count", &calls), Vec::<TaskId>::new())
        .unwrap();
    let out = rt.compute_graph(g, &[]).unwrap();
    assert!(out.is_empty());
    assert_eq!(calls.load(SeqCst), 0, "culled tasks must not run");
}

// ---------------------------------------------------------------------------------------------
// 2. Graph errors, all reported before any op runs.

fn both_executors(mut f: impl FnMut(&Runtime, &ComputeOptions)) {
    let rt = Runtime::builder().threads(2).build().unwrap();
    for executor in [Executor::Threads, Executor::Sync] {
        f(&rt, &ComputeOptions::new().executor(executor));
    }
}

#[test]
fn cycle_is_reported_with_its_keys_before_anything_runs() {
    both_executors(|rt, opts| {
        let calls = Arc::new(AtomicUsize::new(0));
        let mut g = Graph::new();
        // x is runnable on its own; a -> b -> c -> a (each depends on the next).
        g.add_task("x", counting_op("count", &calls), Vec::<TaskId>::new())
            .unwrap();
        g.add_task("a", counting_op("count", &calls), ["b"])
            .unwrap();
        g.add_task("b", counting_op("count", &calls), ["c"])
            .unwrap();
        g.add_task("c", counting_op("count", &calls), ["a"])
            .unwrap();
        g.add_task("d", counting_op("count", &calls), ["a", "x"])
            .unwrap();
        let err = rt
            .compute_graph_with(g, &["x".into(), "d".into()], opts)
            .unwrap_err();
        let msg = err.to_string();
        assert!(
            [
                "dependency cycle: a -> b -> c -> a",
                "dependency cycle: b -> c -> a -> b",
                "dependency cycle: c -> a -> b -> c",
            ]
            .contains(&msg.as_str()),
            "{msg}"
        );
        match err.kind() {
            ErrorKind::Cycle { keys } => {
                assert_eq!(keys.len(), 4);
                assert_eq!(keys.first(), keys.last());
            }
            other => panic!("expected a cycle, got {other:?}"),
        }
        assert_eq!(
            calls.load(SeqCst),
            0,
            "an op ran before the cycle was reported"
        );
    });
}

#[test]
fn self_dependency_is_a_cycle() {
    both_executors(|rt, opts| {
        let calls = Arc::new(AtomicUsize::new(0));
        let mut g = Graph::new();
        g.add_task(
            ("s", 1),
            counting_op("count", &calls),
            [Key::from(("s", 1))],
        )
        .unwrap();
        let err = rt
            .compute_graph_with(g, &[Key::from(("s", 1))], opts)
            .unwrap_err();
        assert_eq!(
            err.to_string(),
            "dependency cycle: (\"s\", 1) -> (\"s\", 1)"
        );
        assert_eq!(calls.load(SeqCst), 0);
    });
}

#[test]
fn missing_dependency_names_both_keys_before_anything_runs() {
    both_executors(|rt, opts| {
        let calls = Arc::new(AtomicUsize::new(0));
        let mut g = Graph::new();
        g.add_task("root", counting_op("count", &calls), Vec::<TaskId>::new())
            .unwrap();
        g.add_task(
            "needs-ghost",
            counting_op("count", &calls),
            ["root", "ghost"],
        )
        .unwrap();
        let err = rt
            .compute_graph_with(g, &["needs-ghost".into()], opts)
            .unwrap_err();
        assert_eq!(
            err.to_string(),
            "task needs-ghost depends on ghost, which is not in the graph"
        );
        match err.kind() {
            ErrorKind::MissingDependency { key, missing } => {
                assert_eq!(key, "needs-ghost");
                assert_eq!(missing, "ghost");
            }
            other => panic!("expected a missing dependency, got {other:?}"),
        }
        assert_eq!(calls.load(SeqCst), 0);
    });
}

/// A duplicate key is refused either by `add_task` (the graph is then unchanged and the first
/// definition runs) or, for graphs built without a key lookup, when the graph is planned. Either
/// way nothing runs with two tasks under one key.
fn check_duplicate(mut g: Graph, first: &Arc<AtomicUsize>, second: &Arc<AtomicUsize>, a: TaskId) {
    let key = Key::from(("k", 1));
    let expected = "key (\"k\", 1) is defined twice in the graph";
    let rt = Runtime::builder().threads(2).build().unwrap();
    match g.add_task(key.clone(), counting_op("second", second), [a]) {
        Err(err) => {
            assert!(matches!(err.kind(), ErrorKind::DuplicateKey { key } if key == "(\"k\", 1)"));
            assert_eq!(err.to_string(), expected);
            assert_eq!(g.len(), 2);
            assert_eq!(g.num_edges(), 0);
            let out = rt.compute_graph(g, &[key]).unwrap();
            assert_eq!(out[0].downcast_ref::<i64>(), Some(&1));
            assert_eq!(first.load(SeqCst), 1);
        }
        Ok(_) => {
            for executor in [Executor::Threads, Executor::Sync] {
                let opts = ComputeOptions::new().executor(executor);
                let err = rt
                    .compute_graph_with(g.shallow_clone(), &["other".into()], &opts)
                    .unwrap_err();
                assert!(
                    matches!(err.kind(), ErrorKind::DuplicateKey { key } if key == "(\"k\", 1)"),
                    "{executor:?}: {err}"
                );
                assert_eq!(err.to_string(), expected);
                assert_eq!(first.load(SeqCst), 0, "an op ran despite the duplicate");
            }
        }
    }
    assert_eq!(second.load(SeqCst), 0, "the second definition ran");
}

#[test]
fn duplicate_key_is_reported_before_anything_runs() {
    // Built by id only, then after a key lookup (which may build an index).
    for lookup in [false, true] {
        let first = Arc::new(AtomicUsize::new(0));
        let second = Arc::new(AtomicUsize::new(0));
        let mut g = Graph::new();
        let a = g
            .add_task(("k", 1), counting_op("count", &first), Vec::<TaskId>::new())
            .unwrap();
        g.add_task("other", counting_op("count", &first), Vec::<TaskId>::new())
            .unwrap();
        if lookup {
            assert!(g.contains(&Key::from(("k", 1))));
        }
        check_duplicate(g, &first, &second, a);
    }
}

#[test]
fn unknown_task_id_dependency_is_rejected_and_rolled_back() {
    let calls = Arc::new(AtomicUsize::new(0));
    let mut g = Graph::new();
    let a = g
        .add_task("a", counting_op("count", &calls), Vec::<TaskId>::new())
        .unwrap();
    let err = g
        .add_task("b", counting_op("count", &calls), [a, TaskId(7)])
        .unwrap_err();
    assert!(matches!(err.kind(), ErrorKind::UnknownKey { .. }), "{err}");
    assert!(err.to_string().contains('b'), "{err}");
    assert_eq!(g.len(), 1);
    assert!(!g.contains(&"b".into()));
    // The key is free again.
    g.add_task("b", counting_op("count", &calls), [a]).unwrap();
    let rt = Runtime::builder().threads(1).build().unwrap();
    let out = rt.compute_graph(g, &["b".into()]).unwrap();
    assert_eq!(out[0].downcast_ref::<i64>(), Some(&2));
}

#[test]
fn unknown_output_key_is_reported_before_anything_runs() {
    both_executors(|rt, opts| {
        let calls = Arc::new(AtomicUsize::new(0));
        let mut g = Graph::new();
        g.add_task("a", counting_op("count", &calls), Vec::<TaskId>::new())
            .unwrap();
        let err = rt
            .compute_graph_with(g, &["a".into(), "nope".into()], opts)
            .unwrap_err();
        assert!(
            matches!(err.kind(), ErrorKind::UnknownKey { key } if key == "nope"),
            "{err}"
        );
        assert_eq!(err.to_string(), "requested key nope is not in the graph");
        assert_eq!(calls.load(SeqCst), 0);
    });
}

// ---------------------------------------------------------------------------------------------
// 5. Cancellation.

/// A graph of `n` long tasks that run until cancelled (with a deadline so a bug cannot hang
/// them), plus a sink over all of them. Each long task reports its start and its exit.
fn cancellable_graph(
    n: usize,
    started: mpsc::Sender<usize>,
    exited: mpsc::Sender<usize>,
    sink_calls: &Arc<AtomicUsize>,
) -> Graph {
    let mut g = Graph::new();
    let mut ids = Vec::new();
    for i in 0..n {
        let (started, exited) = (started.clone(), exited.clone());
        let op = Op::new("long", move |ctx: &TaskContext<'_>, _: &mut [Value]| {
            let _ = started.send(i);
            let deadline = std::time::Instant::now() + HANG;
            let result = loop {
                if ctx.is_cancelled() {
                    break ctx.check_cancelled().map(|_| Value::unit());
                }
                if std::time::Instant::now() > deadline {
                    break Err(Error::msg("never saw the cancellation"));
                }
                // Simulated work between polls.
                std::thread::sleep(Duration::from_millis(1));
            };
            let _ = exited.send(i);
            result
        });
        ids.push(
            g.add_task(("long", i as i64), op, Vec::<TaskId>::new())
                .unwrap(),
        );
    }
    g.add_task("sink", counting_op("sink", sink_calls), ids)
        .unwrap();
    g
}

fn cancel_running_compute(rt: &Runtime, executor: Executor) {
    let (started_tx, started) = mpsc::channel();
    let (exited_tx, exited) = mpsc::channel();
    let sink_calls = Arc::new(AtomicUsize::new(0));
    let g = cancellable_graph(8, started_tx, exited_tx, &sink_calls);
    let token = CancelToken::new();
    let opts = ComputeOptions::new()
        .cancel(token.clone())
        .executor(executor);
    let (done_tx, done) = mpsc::channel();
    let runner = rt.clone();
    std::thread::spawn(move || {
        let _ = done_tx.send(runner.compute_graph_with(g, &["sink".into()], &opts));
    });
    started.recv_timeout(HANG).expect("no long task started");
    token.cancel();
    let result = done
        .recv_timeout(HANG)
        .expect("the cancelled compute did not return");
    let err = result.expect_err("a cancelled compute must fail");
    assert!(err.is_cancelled(), "{executor:?}: {err}");
    assert_eq!(err.to_string(), "computation cancelled");
    assert_eq!(sink_calls.load(SeqCst), 0);
    // Every long task that started also stops.
    let mut n_started = 1 + started.try_iter().count();
    let mut n_exited = 0;
    while n_exited < n_started {
        exited
            .recv_timeout(HANG)
            .expect("a started task never stopped after cancellation");
        n_exited += 1;
        n_started += started.try_iter().count();
    }
    if executor == Executor::Sync {
        assert_eq!(n_started, 1, "sync: nothing starts after the cancellation");
    }
    assert!(n_started <= 8);
}

#[test]
fn cancel_from_another_thread_stops_a_threads_compute() {
    let rt = Runtime::builder().threads(3).build().unwrap();
    cancel_running_compute(&rt, Executor::Threads);
    // The runtime is whole afterwards: a good compute and a barrier of every worker.
    let calls = Arc::new(AtomicUsize::new(0));
    let mut g = Graph::new();
    let a = g
        .add_task("a", counting_op("count", &calls), Vec::<TaskId>::new())
        .unwrap();
    g.add_task("b", counting_op("count", &calls), [a, a])
        .unwrap();
    let out = rt.compute_graph(g, &["b".into()]).unwrap();
    assert_eq!(out[0].downcast_ref::<i64>(), Some(&3));
    assert_all_workers_alive(&rt);
    // Twice on the same runtime.
    cancel_running_compute(&rt, Executor::Threads);
    assert_all_workers_alive(&rt);
}

#[test]
fn cancel_from_another_thread_stops_a_sync_compute() {
    let rt = Runtime::builder().threads(2).build().unwrap();
    cancel_running_compute(&rt, Executor::Sync);
    let calls = Arc::new(AtomicUsize::new(0));
    let mut g = Graph::new();
    g.add_task("a", counting_op("count", &calls), Vec::<TaskId>::new())
        .unwrap();
    let out = rt
        .compute_graph_with(
            g,
            &["a".into()],
            &ComputeOptions::new().executor(Executor::Sync),
        )
        .unwrap();
    assert_eq!(out[0].downcast_ref::<i64>(), Some(&1));
}

#[test]
fn cancelled_token_before_compute_runs_nothing() {
    both_executors(|rt, opts| {
        let calls = Arc::new(AtomicUsize::new(0));
        let mut g = Graph::new();
        let mut ids = Vec::new();
        for i in 0..20 {
            ids.push(
                g.add_task(("r", i), counting_op("count", &calls), Vec::<TaskId>::new())
                    .unwrap(),
            );
        }
        g.add_task("sink", counting_op("count", &calls), ids)
            .unwrap();
        let token = CancelToken::new();
        token.cancel();
        let opts = opts.clone().cancel(token);
        let rt2 = rt.clone();
        let err = guarded("pre-cancelled compute", move || {
            rt2.compute_graph_with(g, &["sink".into()], &opts)
        })
        .unwrap_err();
        assert!(err.is_cancelled(), "{err}");
        assert_eq!(calls.load(SeqCst), 0);
    });
}

// ---------------------------------------------------------------------------------------------
// 9. Events: hooks and the Chrome trace.

/// A fixed DAG of `n` tasks: a few roots, fan-in and chains.
fn event_graph(n: usize) -> (Graph, Vec<Key>) {
    let mut g = Graph::new();
    for i in 0..n {
        let deps: Vec<TaskId> = match i {
            0..=3 => vec![],
            _ if i % 5 == 0 => vec![TaskId((i - 1) as u32), TaskId((i / 2) as u32)],
            _ => vec![TaskId((i - 1) as u32)],
        };
        let op = Op::new(op_name(i), move |_: &TaskContext<'_>, x: &mut [Value]| {
            Ok(Value::new(x.len() as u64 + i as u64))
        });
        g.add_task(key(i), op, deps).unwrap();
    }
    (g, vec![key(n - 1), key(0), key(1), key(2), key(3)])
}

#[derive(Default)]
struct Recorded {
    started: HashMap<String, Vec<usize>>,
    finished: HashMap<String, Vec<usize>>,
    runs_started: Vec<(usize, usize)>,
    runs_finished: Vec<bool>,
    bad_order: Vec<String>,
}

#[test]
fn hooks_see_every_task_start_and_finish_on_a_valid_worker() {
    for (threads, executor) in [
        (3, Executor::Threads),
        (1, Executor::Threads),
        (2, Executor::Sync),
    ] {
        let rt = Runtime::builder().threads(threads).build().unwrap();
        let rec = Arc::new(Mutex::new(Recorded::default()));
        let sink = Arc::clone(&rec);
        let hook = move |e: &Event<'_>| {
            let mut r = sink.lock().unwrap();
            match e {
                Event::TaskStarted { key, worker, .. } => {
                    r.started.entry(key.to_string()).or_default().push(*worker)
                }
                Event::TaskFinished {
                    key,
                    worker,
                    started,
                    finished,
                    ..
                } => {
                    let k = key.to_string();
                    if !r.started.contains_key(&k) || finished < started {
                        r.bad_order.push(k.clone());
                    }
                    r.finished.entry(k).or_default().push(*worker)
                }
                Event::RunStarted { tasks, workers, .. } => r.runs_started.push((*tasks, *workers)),
                Event::RunFinished { ok, .. } => r.runs_finished.push(*ok),
                _ => {}
            }
        };
        let (g, outputs) = event_graph(60);
        let opts = ComputeOptions::new()
            .executor(executor)
            .fuse(false)
            .hook(Arc::new(hook));
        rt.compute_graph_with(g, &outputs, &opts).unwrap();
        let r = rec.lock().unwrap();
        let workers = if executor == Executor::Sync {
            1
        } else {
            threads
        };
        assert_eq!(r.runs_started, [(60, workers)], "{executor:?}");
        assert_eq!(r.runs_finished, [true]);
        assert!(r.bad_order.is_empty(), "{:?}", r.bad_order);
        assert_eq!(r.started.len(), 60);
        assert_eq!(r.finished.len(), 60);
        for i in 0..60 {
            let k = key(i).to_string();
            let s = &r.started[&k];
            let f = &r.finished[&k];
            assert_eq!(s.len(), 1, "{k} started {} times", s.len());
            assert_eq!(f, s, "{k}: finished on another worker than it started");
            assert!(s[0] < workers, "{k} ran on worker {} of {workers}", s[0]);
        }
    }
}

#[test]
fn runtime_hook_sees_every_later_compute() {
    let rt = Runtime::builder().threads(2).build().unwrap();
    let finished = Arc::new(AtomicUsize::new(0));
    let count = Arc::clone(&finished);
    rt.add_hook(Arc::new(move |e: &Event<'_>| {
        if matches!(e, Event::TaskFinished { .. }) {
            count.fetch_add(1, SeqCst);
        }
    }));
    for _ in 0..3 {
        let (g, outputs) = event_graph(20);
        rt.compute_graph_with(g, &outputs, &ComputeOptions::new().fuse(false))
            .unwrap();
    }
    assert_eq!(finished.load(SeqCst), 60);
}

#[test]
fn failed_attempts_are_events_too() {
    quiet_injected_panics();
    let rt = Runtime::builder().threads(2).build().unwrap();
    let failed = Arc::new(Mutex::new(Vec::new()));
    let sink = Arc::clone(&failed);
    let hook = move |e: &Event<'_>| {
        if let Event::TaskFailed {
            key,
            message,
            will_retry,
            ..
        } = e
        {
            sink.lock()
                .unwrap()
                .push((key.to_string(), message.to_string(), *will_retry));
        }
    };
    let mut g = Graph::new();
    let op = Op::new(
        "boom",
        |_: &TaskContext<'_>, _: &mut [Value]| -> Result<Value> {
            panic!("injected panic for the hook")
        },
    );
    g.add_task("boom", op, Vec::<TaskId>::new()).unwrap();
    let err = rt
        .compute_graph_with(
            g,
            &["boom".into()],
            &ComputeOptions::new().hook(Arc::new(hook)),
        )
        .unwrap_err();
    assert!(err.is_panic());
    let failed = failed.lock().unwrap();
    assert_eq!(failed.len(), 1);
    assert_eq!(failed[0].0, "boom");
    assert!(
        failed[0].1.contains("injected panic for the hook"),
        "{:?}",
        failed[0]
    );
    assert!(!failed[0].2);
}

#[test]
fn chrome_trace_has_one_complete_event_per_task_and_one_lane_per_worker() {
    let threads = 3;
    let rt = Runtime::builder().threads(threads).build().unwrap();
    let (mut g, mut outputs) = event_graph(40);
    // A barrier of `threads` tasks makes every worker run at least one task.
    let barrier = Arc::new(Barrier::new(threads));
    for i in 0..threads {
        let barrier = Arc::clone(&barrier);
        let op = Op::new("barrier", move |_: &TaskContext<'_>, _: &mut [Value]| {
            barrier.wait();
            Ok(Value::unit())
        });
        g.add_task(("barrier", i as i64), op, Vec::<TaskId>::new())
            .unwrap();
        outputs.push(Key::from(("barrier", i as i64)));
    }
    let trace = Arc::new(ChromeTrace::new());
    let opts = ComputeOptions::new().fuse(false).trace(Arc::clone(&trace));
    let rt2 = rt.clone();
    guarded("traced compute", move || {
        rt2.compute_graph_with(g, &outputs, &opts)
    })
    .unwrap();
    let tasks = 40 + threads;
    assert_eq!(trace.len(), tasks);

    let json: serde_json::Value = serde_json::from_str(&trace.to_json()).unwrap();
    let events = json["traceEvents"].as_array().expect("traceEvents array");
    let complete: Vec<&serde_json::Value> = events.iter().filter(|e| e["ph"] == "X").collect();
    assert_eq!(complete.len(), tasks);
    let names: BTreeSet<String> = complete
        .iter()
        .map(|e| e["name"].as_str().unwrap().to_string())
        .collect();
    assert_eq!(names.len(), tasks, "one event per task");
    for i in 0..40 {
        assert!(
            names.contains(&key(i).to_string()),
            "no event for {}",
            key(i)
        );
    }
    for e in &complete {
        assert!(e["dur"].as_f64().unwrap() >= 0.0);
        assert!(e["ts"].as_f64().unwrap() >= 0.0);
        assert_eq!(e["args"]["key"], e["name"]);
    }
    let task_lanes: BTreeSet<u64> = complete
        .iter()
        .map(|e| e["tid"].as_u64().unwrap())
        .collect();
    let all_lanes: BTreeSet<u64> = (0..threads as u64).collect();
    assert_eq!(task_lanes, all_lanes, "tasks on lanes 0..threads");
    let named_lanes: BTreeSet<u64> = events
        .iter()
        .filter(|e| e["ph"] == "M" && e["name"] == "thread_name")
        .map(|e| e["tid"].as_u64().unwrap())
        .collect();
    assert_eq!(named_lanes, all_lanes, "one named lane per worker");
    for lane in &all_lanes {
        let named = events.iter().any(|e| {
            e["ph"] == "M"
                && e["name"] == "thread_name"
                && e["tid"] == *lane
                && e["args"]["name"] == format!("worker {lane}")
        });
        assert!(named, "lane {lane} is not named `worker {lane}`");
    }
}

/// Root admission must never deadlock: a consumer that needs 32 roots at once gets them even
/// when only one root may run at a time, and the limit on running roots holds throughout.
#[test]
fn root_admission_feeds_a_fan_in_of_32_under_a_limit_of_one() {
    for (threads, limit) in [(1, 1), (2, 1), (4, 2)] {
        let rt = Runtime::builder()
            .threads(threads)
            .root_limit(limit)
            .build()
            .unwrap();
        let running = Arc::new(AtomicUsize::new(0));
        let peak = Arc::new(AtomicUsize::new(0));
        let mut g = Graph::new();
        let mut roots = Vec::new();
        for i in 0..64 {
            let (running, peak) = (Arc::clone(&running), Arc::clone(&peak));
            let op = Op::new("root", move |_ctx: &TaskContext<'_>, _: &mut [Value]| {
                let now = running.fetch_add(1, SeqCst) + 1;
                peak.fetch_max(now, SeqCst);
                running.fetch_sub(1, SeqCst);
                Ok(Value::new(1u64))
            });
            roots.push(g.add_task(("root", i), op, Vec::<TaskId>::new()).unwrap());
        }
        let sum = Op::new("sum", |_ctx: &TaskContext<'_>, xs: &mut [Value]| {
            Ok(Value::new(
                xs.iter()
                    .map(|x| *x.downcast_ref::<u64>().unwrap())
                    .sum::<u64>(),
            ))
        });
        let a = g
            .add_task("sum-a", sum.clone(), roots[..32].to_vec())
            .unwrap();
        let b = g
            .add_task("sum-b", sum.clone(), roots[32..].to_vec())
            .unwrap();
        g.add_task("total", sum, [a, b]).unwrap();
        let out = guarded("fan-in under root limit", move || {
            rt.compute_graph(g, &[Key::from("total")])
                .map(|v| *v[0].downcast_ref::<u64>().unwrap())
        })
        .unwrap();
        assert_eq!(out, 64);
        assert!(
            peak.load(SeqCst) <= limit,
            "{} roots ran at once with root_limit({limit}) on {threads} threads",
            peak.load(SeqCst)
        );
    }
}

// ---------------------------------------------------------------------------------------------
// Bad arguments to the public helpers and the builder are errors, not panics or hangs.

#[test]
fn a_pool_whose_threads_cannot_start_fails_build() {
    // No system gives a thread a stack of an exbibyte: spawning fails every time.
    let err = Runtime::builder()
        .threads(2)
        .name("tiny-pool")
        .stack_size(1u64 << 60)
        .build()
        .err()
        .expect("build must fail");
    assert!(matches!(err.kind(), ErrorKind::Io { .. }), "{err}");
    let text = err.to_string();
    assert!(text.contains("worker thread tiny-pool-0"), "{text}");
    assert!(text.contains("stack size"), "{text}");
    // A stack size that is not a size is a configuration error.
    let err = Runtime::builder().stack_size("big").build().err().unwrap();
    assert!(matches!(err.kind(), ErrorKind::Config(_)), "{err}");
    // A sensible one works.
    let rt = Runtime::builder()
        .threads(1)
        .stack_size("4 MiB")
        .build()
        .unwrap();
    let x = delayed(|a: i64| a + 1).call(1i64);
    assert_eq!(rt.compute(&x).unwrap(), 2);
}

#[test]
fn graph_helpers_reject_mismatched_arguments() {
    use brisk::graph::dot::render_dot;
    use brisk::graph::order::order;
    use brisk::graph::pressure::pressure;
    use brisk::graph::Csr;
    let keys = [Key::from("a"), Key::from("b")];
    let deps = Csr::from_rows([vec![], vec![0u32]]);
    let dependents = deps.transpose(2);
    let by_id = |a: u32, b: u32| a.cmp(&b);
    let input = |e: &brisk::Error| matches!(e.kind(), ErrorKind::Input(_));

    assert!(render_dot(&keys, &["f", "g"], &deps, None).is_ok());
    let err = render_dot(&keys, &["f"], &deps, None).unwrap_err();
    assert!(
        input(&err) && err.to_string().contains("1 ops for 2 keys"),
        "{err}"
    );
    let err = render_dot(&keys, &["f", "g"], &deps, Some(&[0])).unwrap_err();
    assert!(input(&err), "{err}");
    let err = render_dot(
        &keys,
        &["f", "g"],
        &Csr::from_rows([vec![], vec![4u32]]),
        None,
    )
    .unwrap_err();
    assert!(err.to_string().contains("depends on task 4"), "{err}");

    let prio = order(&deps, &dependents, &by_id).unwrap();
    assert_eq!(prio, vec![0, 1]);
    let err = order(&deps, &Csr::new(), &by_id).unwrap_err();
    assert!(input(&err) && err.to_string().contains("order"), "{err}");

    assert_eq!(pressure(&deps, &dependents, &prio).unwrap().max, 1);
    let err = pressure(&deps, &dependents, &[0]).unwrap_err();
    assert!(
        input(&err) && err.to_string().contains("1 priorities for 2"),
        "{err}"
    );
}

/// A panic on a task's path outside its op (here: a result whose `Drop` panics when the store
/// releases it after its consumer ran) fails the compute with an internal error instead of
/// killing the worker and leaving the caller waiting; the runtime stays usable.
#[test]
fn a_panic_outside_the_op_fails_the_compute_and_keeps_the_runtime() {
    struct Bomb;
    impl Drop for Bomb {
        fn drop(&mut self) {
            if !std::thread::panicking() {
                panic!("bomb dropped");
            }
        }
    }
    impl brisk::SizeOf for Bomb {
        fn size_of(&self) -> usize {
            0
        }
    }
    for executor in [Executor::Threads, Executor::Sync] {
        let rt = Runtime::builder().threads(2).build().unwrap();
        let mut g = Graph::new();
        let bomb = g
            .add_task(
                Key::from("bomb"),
                Op::new("bomb", |_: &TaskContext<'_>, _: &mut [Value]| {
                    Ok(Value::new(Bomb))
                }),
                Vec::<TaskId>::new(),
            )
            .unwrap();
        g.add_task(
            Key::from("use"),
            Op::new("use", |_: &TaskContext<'_>, _: &mut [Value]| {
                Ok(Value::new(1u64))
            }),
            vec![bomb],
        )
        .unwrap();
        let rt2 = rt.clone();
        let got = guarded("a panicking drop", move || {
            rt2.compute_graph_with(
                g,
                &[Key::from("use")],
                &ComputeOptions::new().executor(executor).fuse(false),
            )
        });
        let err = got.expect_err("the panic fails the compute");
        assert!(
            matches!(err.kind(), ErrorKind::Internal(m) if m.contains("bomb dropped")),
            "{executor:?}: {err}"
        );
        assert_all_workers_alive(&rt);
    }
}
