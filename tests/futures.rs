//! Behaviour of futures and nested work: submitting and waiting from inside tasks on a
//! one-thread pool, nested computes from tasks, `as_completed`, cancellation of a future that
//! has not started, failures, and future arguments.
//!
//! Every wait that a scheduler bug could turn into a hang has a deadline, so such a bug fails
//! the test instead of hanging it.

use std::collections::BTreeSet;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering::SeqCst};
use std::sync::mpsc;
use std::sync::{Arc, Barrier, Mutex};

use brisk::prelude::*;
use brisk::{Graph, Key, Op, TaskContext, TaskId, Value};

mod common;
use common::*;

/// All `rt.threads()` workers are alive: that many futures meet at one barrier.
fn assert_all_workers_alive(rt: &Runtime) {
    let n = rt.threads();
    let barrier = Arc::new(Barrier::new(n));
    let rt = rt.clone();
    let done = guarded("barrier of futures", move || {
        let fs: Vec<Future<bool>> = (0..n)
            .map(|_| {
                let b = Arc::clone(&barrier);
                rt.submit(move || b.wait().is_leader(), ())
            })
            .collect();
        fs.iter().map(|f| f.result()).collect::<Result<Vec<bool>>>()
    })
    .unwrap();
    assert_eq!(done.iter().filter(|l| **l).count(), 1);
}

// ---------------------------------------------------------------------------------------------
// 6. Nested work on a one-thread pool.

#[test]
fn a_future_that_submits_and_waits_completes_on_one_thread() {
    let rt = rt(1);
    let outer_rt = rt.clone();
    let total = guarded("nested futures", move || {
        let inner = outer_rt.clone();
        let f = outer_rt.submit(
            move |n: u64| {
                let parts: Vec<Future<u64>> =
                    (0..n).map(|i| inner.submit(|i: u64| i * i, i)).collect();
                parts.iter().map(|p| p.result()).sum::<Result<u64>>()
            },
            10u64,
        );
        f.result()
    });
    assert_eq!(total.unwrap(), (0..10u64).map(|i| i * i).sum::<u64>());
}

/// Depth `d`: a future that submits two futures of depth `d - 1` and waits for both.
fn tree(rt: &Runtime, depth: u32) -> Future<u64> {
    let inner = rt.clone();
    rt.submit(
        move |d: u32| -> Result<u64> {
            if d == 0 {
                return Ok(1);
            }
            let a = tree(&inner, d - 1);
            let b = tree(&inner, d - 1);
            Ok(a.result()? + b.result()?)
        },
        depth,
    )
}

#[test]
fn futures_nested_several_levels_deep_complete_on_one_thread() {
    for threads in [1, 2] {
        let rt = rt(threads);
        let r = rt.clone();
        let leaves = guarded("future tree", move || tree(&r, 5).result());
        assert_eq!(leaves.unwrap(), 32, "threads({threads})");
    }
}

/// A small delayed graph: sum of (i + 1) for i in 0..n.
fn small_graph(n: i64) -> Delayed<i64> {
    let inc = delayed(|x: i64| x + 1).name("inc");
    let parts: Vec<Delayed<i64>> = (0..n).map(|i| inc.call(i)).collect();
    delayed(|v: Vec<i64>| v.iter().sum::<i64>()).call(parts)
}

#[test]
fn a_task_computing_a_nested_graph_completes_on_one_thread() {
    for (threads, executor) in [
        (1, Executor::Threads),
        (2, Executor::Threads),
        (1, Executor::Sync),
    ] {
        let rt = rt(threads);
        let mut g = Graph::new();
        let mut ids = Vec::new();
        for i in 0..4i64 {
            let op = Op::new("nested", move |ctx: &TaskContext<'_>, _: &mut [Value]| {
                let rt = ctx.runtime().expect("a task sees its runtime");
                let v = rt.compute(&small_graph(10 + i))?;
                Ok(Value::new(v))
            });
            ids.push(g.add_task(("nested", i), op, Vec::<TaskId>::new()).unwrap());
        }
        let sum = Op::new("sum", |_: &TaskContext<'_>, x: &mut [Value]| {
            Ok(Value::new(
                x.iter()
                    .map(|v| *v.downcast_ref::<i64>().unwrap())
                    .sum::<i64>(),
            ))
        });
        g.add_task("total", sum, ids).unwrap();
        let r = rt.clone();
        let out = guarded("nested compute", move || {
            r.compute_graph_with(
                g,
                &["total".into()],
                &ComputeOptions::new().executor(executor),
            )
        })
        .unwrap();
        let expected: i64 = (0..4).map(|i| (1..=10 + i).sum::<i64>()).sum();
        assert_eq!(
            out[0].downcast_ref::<i64>(),
            Some(&expected),
            "threads({threads}) {executor:?}"
        );
        assert_eq!(rt.memory_stats().current_bytes, 0);
    }
}

#[test]
fn a_delayed_function_computing_a_nested_graph_completes_on_one_thread() {
    let rt = rt(1);
    let inner = rt.clone();
    let nested =
        delayed(move |n: i64| -> Result<i64> { inner.compute(&small_graph(n)) }).name("nested");
    let outer = delayed(|a: i64, b: i64| a + b).call((nested.call(3), nested.call(4)));
    let r = rt.clone();
    let out = guarded("nested delayed", move || r.compute(&outer));
    assert_eq!(out.unwrap(), (1 + 2 + 3) + (1 + 2 + 3 + 4));
}

#[test]
fn a_future_computing_a_graph_completes_on_one_thread() {
    let rt = rt(1);
    let inner = rt.clone();
    let f = rt.submit(move |n: i64| inner.compute(&small_graph(n)), 5i64);
    let out = guarded("graph in a future", move || f.result());
    assert_eq!(out.unwrap(), 15);
}

// ---------------------------------------------------------------------------------------------
// as_completed.

#[test]
fn as_completed_yields_every_future_exactly_once() {
    let rt = rt(2);
    let r = rt.clone();
    let (keys, values) = guarded("as_completed", move || {
        let early: Vec<Future<u64>> = (0..10u64).map(|i| r.submit(|i: u64| i, i)).collect();
        for f in &early {
            f.wait();
        }
        let mut all = early;
        all.extend((10..40u64).map(|i| r.submit(|i: u64| i, i)));
        let expected_keys: BTreeSet<Key> = all.iter().map(|f| f.key().clone()).collect();
        assert_eq!(expected_keys.len(), 40, "every future has its own key");
        let mut keys = Vec::new();
        let mut values = Vec::new();
        for f in as_completed(all) {
            assert!(f.is_done());
            keys.push(f.key().clone());
            values.push(f.result().unwrap());
        }
        (keys, values)
    });
    assert_eq!(keys.len(), 40);
    assert_eq!(
        keys.iter().collect::<BTreeSet<_>>().len(),
        40,
        "a future was yielded twice"
    );
    let mut values = values;
    values.sort_unstable();
    assert_eq!(values, (0..40).collect::<Vec<u64>>());
    assert_eq!(as_completed(Vec::<Future<u64>>::new()).count(), 0);
}

#[test]
fn as_completed_follows_completion_order() {
    let rt = rt(3);
    let mut releases = Vec::new();
    let mut futures = Vec::new();
    for i in 0..3u64 {
        let (tx, rx) = mpsc::channel::<()>();
        let rx = Mutex::new(rx);
        releases.push(tx);
        futures.push(rt.submit(
            move || -> Result<u64> {
                rx.lock()
                    .unwrap()
                    .recv_timeout(HANG)
                    .map_err(|_| Error::msg("never released"))?;
                Ok(i)
            },
            (),
        ));
    }
    // Iterate on a helper thread so every wait below has a deadline.
    let (yielded_tx, yielded) = mpsc::channel();
    std::thread::spawn(move || {
        for f in as_completed(futures) {
            let _ = yielded_tx.send(f.result());
        }
    });
    for i in [2u64, 0, 1] {
        releases[i as usize].send(()).unwrap();
        let got = yielded
            .recv_timeout(HANG)
            .expect("as_completed yielded nothing");
        assert_eq!(got.unwrap(), i, "yielded out of completion order");
    }
    assert!(
        matches!(
            yielded.recv_timeout(HANG),
            Err(mpsc::RecvTimeoutError::Disconnected)
        ),
        "as_completed yielded more than it was given"
    );
}

#[test]
fn as_completed_inside_a_future_on_one_thread() {
    let rt = rt(1);
    let inner = rt.clone();
    let f = rt.submit(
        move |n: u64| -> Result<Vec<u64>> {
            let parts: Vec<Future<u64>> =
                (0..n).map(|i| inner.submit(|i: u64| i + 100, i)).collect();
            let mut got: Vec<u64> = as_completed(parts)
                .map(|f| f.result())
                .collect::<Result<_>>()?;
            got.sort_unstable();
            Ok(got)
        },
        8u64,
    );
    let out = guarded("as_completed in a future", move || f.result()).unwrap();
    assert_eq!(out, (100..108).collect::<Vec<u64>>());
}

// ---------------------------------------------------------------------------------------------
// Cancellation.

#[test]
fn cancel_before_start_means_the_future_never_runs() {
    let rt = rt(1);
    let (started_tx, started) = mpsc::channel();
    let (release, release_rx) = mpsc::channel::<()>();
    let release_rx = Mutex::new(release_rx);
    // Occupy the only worker until we say so.
    let blocker = rt.submit(
        move || -> bool {
            started_tx.send(()).unwrap();
            release_rx.lock().unwrap().recv_timeout(HANG).is_ok()
        },
        (),
    );
    started
        .recv_timeout(HANG)
        .expect("the blocker never started");

    let ran = Arc::new(AtomicBool::new(false));
    let r = Arc::clone(&ran);
    let victim = rt.submit(
        move || {
            r.store(true, SeqCst);
            1u64
        },
        (),
    );
    assert!(!victim.is_done());
    victim.cancel();
    assert!(victim.is_done(), "a cancelled future is done");
    let err = victim.result().unwrap_err();
    assert!(err.is_cancelled(), "{err}");

    release.send(()).unwrap();
    assert!(guarded("blocker", move || blocker.result()).unwrap());
    // The pool still runs new work, and the victim's body never ran.
    let after = rt.submit(|x: u64| x + 1, 1u64);
    assert_eq!(guarded("after", move || after.result()).unwrap(), 2);
    assert!(
        victim.result().unwrap_err().is_cancelled(),
        "cancellation sticks"
    );
    // Dropping the runtime drains the queue and joins the worker: the victim's job is gone.
    drop(rt);
    assert!(
        !ran.load(SeqCst),
        "a future cancelled before it started ran anyway"
    );
}

#[test]
fn cancel_after_completion_keeps_the_result() {
    let rt = rt(1);
    let f = rt.submit(|x: u64| x * 3, 5u64);
    let f2 = f.clone();
    assert_eq!(guarded("result", move || f2.result()).unwrap(), 15);
    f.cancel();
    assert_eq!(f.result().unwrap(), 15);
}

// ---------------------------------------------------------------------------------------------
// Failures and arguments.

#[test]
fn a_failing_future_reports_its_key_and_the_pool_survives() {
    quiet_injected_panics();
    let rt = rt(2);
    let bad = rt.submit(
        |x: i64| -> Result<i64, String> { Err(format!("bad input {x}")) },
        7i64,
    );
    let key = bad.key().to_string();
    let b = bad.clone();
    let err = guarded("failing future", move || b.result()).unwrap_err();
    assert_eq!(err.failed_key(), Some(key.as_str()));
    assert!(err.to_string().contains("bad input 7"), "{err}");
    assert!(!err.is_panic());
    // Asking again gives the same error.
    assert_eq!(bad.result().unwrap_err().to_string(), err.to_string());

    let boom = rt.submit(
        |x: i64| -> i64 {
            if x > 0 {
                panic!("injected panic in future {x}");
            }
            x
        },
        3i64,
    );
    let key = boom.key().to_string();
    let err = guarded("panicking future", move || boom.result()).unwrap_err();
    assert!(err.is_panic(), "{err}");
    assert_eq!(err.failed_key(), Some(key.as_str()));
    assert!(
        err.to_string().contains("injected panic in future 3"),
        "{err}"
    );

    assert_all_workers_alive(&rt);
    let ok = rt.submit(|x: i64| x - 1, 1i64);
    assert_eq!(guarded("good future", move || ok.result()).unwrap(), 0);
}

#[test]
fn future_arguments_are_waited_for() {
    for threads in [1, 2] {
        let rt = rt(threads);
        let r = rt.clone();
        let out = guarded("future arguments", move || {
            let a = r.submit(|x: i64| x + 1, 1i64);
            let b = r.submit(|x: i64, y: i64| x * y, (a.clone(), 10i64));
            let c = r.submit(
                |x: i64, y: i64, z: String| format!("{x}-{y}-{z}"),
                (a.clone(), b, "z".to_string()),
            );
            c.result()
        });
        assert_eq!(out.unwrap(), "2-20-z", "threads({threads})");
    }
}

#[test]
fn a_failed_argument_fails_the_dependent_future() {
    let rt = rt(2);
    let r = rt.clone();
    let calls = Arc::new(AtomicUsize::new(0));
    let c = Arc::clone(&calls);
    let (err, keys) = guarded("failed argument", move || {
        let a = r.submit(
            || -> Result<i64, String> { Err("upstream broke".into()) },
            (),
        );
        let b = r.submit(
            move |x: i64| {
                c.fetch_add(1, SeqCst);
                x
            },
            a.clone(),
        );
        let keys = [a.key().to_string(), b.key().to_string()];
        (b.result().unwrap_err(), keys)
    });
    assert!(err.to_string().contains("upstream broke"), "{err}");
    // Today the error carries the dependent's key; the upstream key would be as right.
    let key = err.failed_key().expect("a task failure").to_string();
    assert!(keys.contains(&key), "{key} is neither of {keys:?}");
    assert_eq!(
        calls.load(SeqCst),
        0,
        "the dependent body ran without its argument"
    );
}

#[test]
fn waiting_inside_a_future_does_not_deadlock_with_a_queued_dependent() {
    let rt = rt(1);
    // Hold the only worker while A and X are queued, so the queue order is fixed.
    let (started_tx, started) = mpsc::channel();
    let (release, release_rx) = mpsc::channel::<()>();
    let release_rx = Mutex::new(release_rx);
    let blocker = rt.submit(
        move || {
            started_tx.send(()).unwrap();
            release_rx.lock().unwrap().recv_timeout(HANG).is_ok()
        },
        (),
    );
    started
        .recv_timeout(HANG)
        .expect("the blocker never started");
    // A submits B and waits for it (the documented nested pattern)...
    let inner = rt.clone();
    let a = rt.submit(move || inner.submit(|| 1u64, ()).result(), ());
    // ...and X, queued behind A, takes A's result as its argument.
    let x = rt.submit(|v: u64| v + 1, a.clone());
    release.send(()).unwrap();
    assert!(guarded("blocker", move || blocker.result()).unwrap());
    assert_eq!(guarded("A", move || a.result()).unwrap(), 1);
    assert_eq!(guarded("X", move || x.result()).unwrap(), 2);
}

// ---------------------------------------------------------------------------------------------
// Results of futures are stored results: counted, spilled, released, with events.

/// Event lines a hook saw, for futures (run 0) and spills.
fn record_events(rt: &Runtime) -> Arc<Mutex<Vec<String>>> {
    use brisk::sched::event::Event;
    let lines = Arc::new(Mutex::new(Vec::new()));
    let seen = Arc::clone(&lines);
    rt.add_hook(Arc::new(move |e: &Event<'_>| {
        let line = match e {
            Event::TaskStarted { run, key, .. } => format!("started run={run} {key}"),
            Event::TaskFinished {
                run, key, bytes, ..
            } => format!("finished run={run} {key} bytes={bytes}"),
            Event::TaskFailed { run, key, .. } => format!("failed run={run} {key}"),
            Event::Spilled { key, .. } => format!("spilled {key}"),
            Event::Unspilled { key, .. } => format!("unspilled {key}"),
            _ => return,
        };
        seen.lock().unwrap().push(line);
    }));
    lines
}

#[test]
fn a_future_result_is_counted_spilled_under_a_small_limit_and_seen_by_hooks() {
    let dir = tempfile::tempdir().unwrap();
    // Spill threshold 0.6 MiB: one 400 kB vector fits under it, two do not.
    let rt = Runtime::builder()
        .threads(2)
        .memory_limit("1 MiB")
        .spill_dir(dir.path())
        .build()
        .unwrap();
    let events = record_events(&rt);
    let n = 50_000;
    let a = rt.submit(|n: usize| vec![1.0f64; n], n);
    assert_eq!(a.result().unwrap(), vec![1.0; n]);
    let stats = rt.memory_stats();
    assert!(stats.current_bytes >= 8 * n, "{stats:?}");
    assert_eq!(stats.spill_count, 0, "{stats:?}");

    // Storing the second crosses the spill threshold: the older value goes to disk before
    // the second future is done.
    let b = rt.submit(|n: usize| vec![2.0f64; n], n);
    b.wait();
    let stats = rt.memory_stats();
    assert_eq!(stats.spill_count, 1, "{stats:?}");
    assert!(stats.disk_bytes > 0, "{stats:?}");
    assert!(
        stats.current_bytes >= 8 * n && stats.current_bytes < 16 * n,
        "{stats:?}"
    );

    // Reading the spilled one brings it back (and pushes the other out).
    assert_eq!(a.result().unwrap(), vec![1.0; n]);
    let stats = rt.memory_stats();
    assert_eq!(stats.unspill_count, 1, "{stats:?}");
    assert_eq!(stats.spill_count, 2, "{stats:?}");
    assert_eq!(b.result().unwrap(), vec![2.0; n]);

    let (ka, kb) = (a.key().to_string(), b.key().to_string());
    let lines = events.lock().unwrap().clone();
    for want in [
        format!("started run=0 {ka}"),
        format!("finished run=0 {ka} bytes="),
        format!("started run=0 {kb}"),
        format!("spilled {ka}"),
        format!("unspilled {ka}"),
        format!("spilled {kb}"),
    ] {
        assert!(
            lines.iter().any(|l| l.starts_with(&want)),
            "no `{want}` in {lines:#?}"
        );
    }

    // Dropping the futures releases their values, in memory and on disk.
    drop((a, b));
    let stats = rt.memory_stats();
    assert_eq!((stats.current_bytes, stats.disk_bytes), (0, 0), "{stats:?}");
}

#[test]
fn a_future_value_is_released_when_the_future_and_its_dependents_are_dropped() {
    let rt = rt(1);
    let n = 10_000;
    let x = rt.submit(|n: usize| vec![3u8; n], n);
    let len = rt.submit(|v: Vec<u8>| v.len(), x.clone());
    drop(x);
    // The dependent took its argument when it ran; nothing else holds the vector.
    assert_eq!(len.result().unwrap(), n);
    let held = rt.memory_stats().current_bytes;
    assert!(held < 100, "only the usize result is held: {held}");
    drop(len);
    assert_eq!(rt.memory_stats().current_bytes, 0);
}

#[test]
fn a_failing_future_emits_a_failure_event() {
    let rt = rt(1);
    let events = record_events(&rt);
    let f = rt.submit(
        |x: i64| -> Result<i64, String> { Err(format!("bad input {x}")) },
        7i64,
    );
    assert!(f.result().is_err());
    let key = f.key().to_string();
    let lines = events.lock().unwrap().clone();
    assert!(
        lines.contains(&format!("started run=0 {key}"))
            && lines.contains(&format!("failed run=0 {key}")),
        "{lines:#?}"
    );
}
