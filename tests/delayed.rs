//! Behaviour of `delayed`: argument kinds and arities, `gather`, shared work, `persist`,
//! fallible functions, retries, very long chains, and moving values into their last consumer.

use std::sync::atomic::{AtomicU32, AtomicUsize, Ordering::SeqCst};
use std::sync::{Arc, Mutex};

use brisk::prelude::*;
use brisk::{build_graph, ErrorKind};

mod common;
use common::*;

/// Every executor/fusion combination worth checking.
fn all_options() -> Vec<(&'static str, ComputeOptions)> {
    let mut v = Vec::new();
    for (name, executor) in [("sync", Executor::Sync), ("threads", Executor::Threads)] {
        for fuse in [true, false] {
            v.push((name, ComputeOptions::new().executor(executor).fuse(fuse)));
        }
    }
    v
}

// ---------------------------------------------------------------------------------------------
// Arguments.

#[test]
fn ten_arguments_mix_values_handles_references_vecs_and_slices() {
    let rt = rt(2);
    let x = value(7i64);
    let s = delayed(|n: i64| format!("s{n}")).call(&x);
    let parts: Vec<Delayed<i64>> = (1..=3).map(|i| delayed(|i: i64| i * 10).call(i)).collect();
    let more: Vec<Delayed<i64>> = (4..=5).map(|i| delayed(|i: i64| -i).call(i)).collect();
    let f10 = delayed(
        |a: i64,
         b: i64,
         c: String,
         d: Vec<i64>,
         e: u8,
         f: i64,
         g: Vec<i64>,
         h: Vec<i64>,
         i: f64,
         j: String| { format!("{a}|{b}|{c}|{d:?}|{e}|{f}|{g:?}|{h:?}|{i}|{j}") },
    )
    .name("f10");
    let out = f10.call((
        1i64,              // plain value
        x.clone(),         // Delayed<T> by value
        &s,                // &Delayed<T>
        parts,             // Vec<Delayed<T>> as Vec<T>
        3u8,               // plain value of another type
        &x,                // the same handle again
        vec![8i64, 9],     // a plain Vec<T>
        more.as_slice(),   // &[Delayed<T>] as Vec<T>
        value(2.5f64),     // a delayed constant
        "end".to_string(), // plain String
    ));
    assert_eq!(out.key().name(), "f10");
    for (name, opts) in all_options() {
        assert_eq!(
            rt.compute_with(&out, &opts).unwrap(),
            "1|7|s7|[10, 20, 30]|3|7|[8, 9]|[-4, -5]|2.5|end",
            "{name}"
        );
    }
}

#[test]
fn eight_arguments_feed_from_other_calls() {
    let rt = rt(3);
    let add = delayed(|a: i64, b: i64| a + b).name("add");
    let a = add.call((1, 2));
    let b = add.call((&a, 10));
    let xs: Vec<Delayed<i64>> = (0..4).map(|i| add.call((i, &a))).collect();
    let f8 = delayed(
        |p: i64, q: i64, r: Vec<i64>, s: i64, t: bool, u: Vec<i64>, v: String, w: i64| {
            let total: i64 = p + q + r.iter().sum::<i64>() + s + u.iter().sum::<i64>() + w;
            format!("{total}:{t}:{v}:{}:{}", r.len(), u.len())
        },
    )
    .name("f8");
    let out = f8.call((
        &a,
        b.clone(),
        xs.clone(),
        5i64,
        true,
        vec![a.clone(), b.clone()],
        delayed(|| "v".to_string()).call(()),
        add.call((&b, &b)),
    ));
    // a = 3, b = 13, xs = 3..=6 (sum 18), u = [3, 13], w = 26
    let expected = format!("{}:true:v:4:2", 3 + 13 + 18 + 5 + 16 + 26);
    for (name, opts) in all_options() {
        assert_eq!(rt.compute_with(&out, &opts).unwrap(), expected, "{name}");
    }
    // A handle used by many calls is one task in the graph.
    let (graph, outputs) = build_graph(&out).unwrap();
    assert_eq!(outputs, vec![out.key().clone()]);
    assert!(graph.contains(a.key()));
    let distinct: std::collections::HashSet<_> = graph.keys().iter().collect();
    assert_eq!(distinct.len(), graph.len());
}

#[test]
fn names_become_key_names() {
    fn double(x: i64) -> i64 {
        2 * x
    }
    let d = delayed(double).call(4);
    assert_eq!(d.key().name(), "double");
    let c = delayed(|x: i64| x).call(1);
    assert_eq!(c.key().name(), "delayed");
    let n = delayed(|x: i64| x).name("ident").call(1);
    assert_eq!(n.key().name(), "ident");
    assert_ne!(
        delayed(double).call(4).key(),
        d.key(),
        "every call gets its own key"
    );
    assert_eq!(rt(1).compute(&d).unwrap(), 8);
}

#[test]
fn gather_keeps_order_and_handles_empty() {
    let rt = rt(2);
    let sq = delayed(|i: u64| i * i);
    let items: Vec<Delayed<u64>> = (0..50).map(|i| sq.call(i)).collect();
    let all = gather(items.clone());
    let empty: Delayed<Vec<u64>> = gather(Vec::new());
    let len = delayed(|v: Vec<u64>| v.len()).call(&all);
    for (name, opts) in all_options() {
        let (v, e, n) = rt
            .compute_with(&(all.clone(), empty.clone(), len.clone()), &opts)
            .unwrap();
        assert_eq!(v, (0..50).map(|i| i * i).collect::<Vec<u64>>(), "{name}");
        assert!(e.is_empty());
        assert_eq!(n, 50);
    }
    // A vector of handles computes to a vector of values too.
    assert_eq!(rt.compute(&items[..3].to_vec()).unwrap(), vec![0, 1, 4]);
}

#[test]
fn tuples_of_up_to_six_handles_compute_in_one_graph() {
    let rt = rt(2);
    let v = |x: i64| value(x);
    let out = rt
        .compute(&(
            v(1),
            v(2),
            value("three".to_string()),
            v(4),
            value(5u8),
            v(6),
        ))
        .unwrap();
    assert_eq!(out, (1, 2, "three".to_string(), 4, 5u8, 6));
}

// ---------------------------------------------------------------------------------------------
// Shared work and persist.

#[test]
fn shared_work_in_one_compute_runs_once() {
    for (name, opts) in all_options() {
        let rt = rt(3);
        let calls = Arc::new(AtomicUsize::new(0));
        let c = Arc::clone(&calls);
        let expensive = delayed(move |n: u64| {
            c.fetch_add(1, SeqCst);
            (0..n).sum::<u64>()
        })
        .name("expensive");
        let shared = expensive.call(100u64);
        let plus = delayed(|a: u64, b: u64| a + b);
        let x = plus.call((&shared, 1u64));
        let y = plus.call((&shared, &shared));
        let z = plus.call((&x, &y));
        let out = rt.compute_with(&(x, y, z, shared.clone()), &opts).unwrap();
        assert_eq!(out, (4951, 9900, 14851, 4950), "{name}");
        assert_eq!(
            calls.load(SeqCst),
            1,
            "{name}: shared work ran more than once"
        );
        assert_eq!(rt.memory_stats().current_bytes, 0, "{name}");
    }
}

#[test]
fn persist_then_reuse_without_recomputing() {
    let rt = rt(2);
    let calls = Arc::new(AtomicUsize::new(0));
    let c = Arc::clone(&calls);
    let load = delayed(move |n: usize| {
        c.fetch_add(1, SeqCst);
        vec![1u32; n]
    })
    .name("load");
    let data = load.call(1000usize);
    let persisted = rt.persist(&data).unwrap();
    assert_eq!(calls.load(SeqCst), 1);
    assert_eq!(persisted.key(), data.key());

    let total = delayed(|v: Vec<u32>| v.iter().sum::<u32>());
    let first = total.call(&persisted);
    let count = delayed(|v: Vec<u32>| v.len()).call(&persisted);
    for (name, opts) in all_options() {
        assert_eq!(
            rt.compute_with(&(first.clone(), count.clone()), &opts)
                .unwrap(),
            (1000, 1000),
            "{name}"
        );
    }
    assert_eq!(rt.compute(&persisted).unwrap().len(), 1000);
    assert_eq!(calls.load(SeqCst), 1, "persisted data was recomputed");
    // The original handle still computes from scratch.
    assert_eq!(rt.compute(&total.call(&data)).unwrap(), 1000);
    assert_eq!(calls.load(SeqCst), 2);
}

// ---------------------------------------------------------------------------------------------
// Failures and retries.

#[derive(Debug)]
struct ParseFailure(String);

impl std::fmt::Display for ParseFailure {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "cannot parse {:?}", self.0)
    }
}
impl std::error::Error for ParseFailure {}

#[test]
fn err_result_fails_the_compute_with_key_op_and_message() {
    let rt = rt(2);
    let parse = delayed(|s: String| -> Result<i64, ParseFailure> {
        s.parse().map_err(|_| ParseFailure(s.clone()))
    })
    .name("parse");
    let consumed = Arc::new(AtomicUsize::new(0));
    let c = Arc::clone(&consumed);
    let double = delayed(move |x: i64| {
        c.fetch_add(1, SeqCst);
        x * 2
    })
    .name("double");
    let good = parse.call("21".to_string());
    let bad = parse.call("twenty".to_string());
    for (name, opts) in all_options() {
        assert_eq!(rt.compute_with(&double.call(&good), &opts).unwrap(), 42);
        let before = consumed.load(SeqCst);
        let err = rt.compute_with(&double.call(&bad), &opts).unwrap_err();
        let msg = err.to_string();
        assert_eq!(
            err.failed_key(),
            Some(bad.key().to_string().as_str()),
            "{name}: {msg}"
        );
        assert!(msg.contains("cannot parse \"twenty\""), "{name}: {msg}");
        assert!(msg.contains("(op `parse`)"), "{name}: {msg}");
        assert!(!err.is_panic());
        let source = std::error::Error::source(&err).expect("the user error is the source");
        assert_eq!(source.to_string(), "cannot parse \"twenty\"");
        assert_eq!(
            consumed.load(SeqCst),
            before,
            "{name}: the consumer of a failed task ran"
        );
        assert_eq!(rt.memory_stats().current_bytes, 0, "{name}");
    }
    // String errors work too.
    let checked = delayed(|x: i64| -> Result<i64, String> {
        if x < 0 {
            Err(format!("negative input {x}"))
        } else {
            Ok(x)
        }
    })
    .name("check");
    let h = checked.call(-3);
    let err = rt.compute(&h).unwrap_err();
    assert_eq!(err.failed_key(), Some(h.key().to_string().as_str()));
    assert!(err.to_string().contains("negative input -3"), "{err}");
}

#[test]
fn panicking_function_fails_the_compute_with_its_key() {
    quiet_injected_panics();
    let rt = rt(2);
    let boom = delayed(|x: i64| -> i64 {
        if x == 3 {
            panic!("injected panic at {x}");
        }
        x
    })
    .name("boom");
    let items: Vec<Delayed<i64>> = (0..6).map(|i| boom.call(i)).collect();
    let bad_key = items[3].key().to_string();
    let total = delayed(|v: Vec<i64>| v.iter().sum::<i64>()).call(items);
    for (name, opts) in all_options() {
        let err = rt.compute_with(&total, &opts).unwrap_err();
        assert!(err.is_panic(), "{name}: {err}");
        assert_eq!(err.failed_key(), Some(bad_key.as_str()), "{name}");
        assert!(err.to_string().contains("injected panic at 3"), "{err}");
        assert!(err.to_string().contains("`boom`"), "{err}");
    }
    // Still usable.
    assert_eq!(rt.compute(&boom.call(4)).unwrap(), 4);
}

/// A function of a delayed input that fails its first `fail_first` attempts.
fn flaky_sum(
    attempts: &Arc<AtomicU32>,
    fail_first: u32,
    retries: u32,
    panic: bool,
) -> (Delayed<u64>, String) {
    let seen = Arc::clone(attempts);
    let input = delayed(|n: u64| (0..n).collect::<Vec<u64>>()).call(5u64);
    let flaky = delayed(move |xs: Vec<u64>| -> Result<u64, String> {
        let n = seen.fetch_add(1, SeqCst) + 1;
        if n <= fail_first {
            if panic {
                panic!("injected panic on attempt {n}");
            }
            return Err(format!("flaky attempt {n}"));
        }
        // The input is there again on every attempt.
        Ok(xs.iter().sum())
    })
    .name("flaky")
    .retries(retries);
    let out = flaky.call(input);
    let key = out.key().to_string();
    (out, key)
}

#[test]
fn retries_let_a_flaky_function_succeed() {
    quiet_injected_panics();
    let rt = rt(2);
    for k in 1..=3u32 {
        for panic in [false, true] {
            for (name, opts) in all_options() {
                let attempts = Arc::new(AtomicU32::new(0));
                let (out, _) = flaky_sum(&attempts, k, k, panic);
                assert_eq!(rt.compute_with(&out, &opts).unwrap(), 10, "{name} k={k}");
                assert_eq!(attempts.load(SeqCst), k + 1, "{name} k={k}");
            }
        }
    }
}

#[test]
fn too_few_retries_fail_and_say_how_many_attempts() {
    quiet_injected_panics();
    let rt = rt(2);
    for k in 1..=3u32 {
        for panic in [false, true] {
            for (name, opts) in all_options() {
                let attempts = Arc::new(AtomicU32::new(0));
                let (out, key) = flaky_sum(&attempts, k, k - 1, panic);
                let err = rt.compute_with(&out, &opts).unwrap_err();
                let msg = err.to_string();
                assert_eq!(attempts.load(SeqCst), k, "{name} k={k}");
                assert_eq!(err.failed_key(), Some(key.as_str()), "{name}: {msg}");
                assert_eq!(err.is_panic(), panic, "{name}: {msg}");
                let last = if panic {
                    format!("injected panic on attempt {k}")
                } else {
                    format!("flaky attempt {k}")
                };
                assert!(msg.contains(&last), "{name}: {msg}");
                if k > 1 {
                    assert!(
                        msg.contains(&format!("after {k} attempts")),
                        "{name}: {msg}"
                    );
                }
                match err.kind() {
                    ErrorKind::TaskFailed { attempts, op, .. } => {
                        assert_eq!(*attempts, k);
                        assert_eq!(op, "flaky");
                    }
                    other => panic!("{other:?}"),
                }
            }
        }
    }
}

// ---------------------------------------------------------------------------------------------
// Scale: long chains.

#[test]
fn a_chain_of_100_000_calls_builds_computes_and_drops() {
    let rt = rt(2);
    let inc = delayed(|x: u64| x + 1).name("inc");
    let mut d = value(0u64);
    for _ in 0..100_000 {
        d = inc.call(d);
    }
    let by_ref = {
        let mut r = value(0u64);
        for _ in 0..100_000 {
            r = inc.call(&r);
        }
        r
    };
    for opts in [
        ComputeOptions::new(),
        ComputeOptions::new().fuse(false),
        ComputeOptions::new().fuse(false).executor(Executor::Sync),
    ] {
        let (d2, r2) = (d.clone(), by_ref.clone());
        let rt2 = rt.clone();
        let out = guarded("100k chain", move || rt2.compute_with(&(d2, r2), &opts));
        assert_eq!(out.unwrap(), (100_000, 100_000));
    }
    let (graph, _) = build_graph(&d).unwrap();
    assert_eq!(graph.len(), 100_001);
    drop(graph);
    // Dropping the handles frees 100k nodes without recursion.
    drop(d);
    drop(by_ref);
}

// ---------------------------------------------------------------------------------------------
// Values are moved into their last consumer.

/// Counts its clones; `data` is a heap buffer whose address shows whether it was moved.
#[derive(Debug)]
struct Counted {
    data: Vec<u64>,
    clones: Arc<AtomicUsize>,
}

impl Clone for Counted {
    fn clone(&self) -> Self {
        self.clones.fetch_add(1, SeqCst);
        Counted {
            data: self.data.clone(),
            clones: Arc::clone(&self.clones),
        }
    }
}

impl SizeOf for Counted {
    fn size_of(&self) -> usize {
        std::mem::size_of::<Self>() + 8 * self.data.capacity()
    }
}

#[test]
fn a_chain_moves_its_value_through_every_step_without_cloning() {
    for (name, opts) in all_options() {
        let rt = rt(2);
        let clones = Arc::new(AtomicUsize::new(0));
        let addresses = Arc::new(Mutex::new(Vec::new()));
        let c = Arc::clone(&clones);
        let make = delayed(move |n: u64| Counted {
            data: (0..n).collect(),
            clones: Arc::clone(&c),
        });
        let seen = Arc::clone(&addresses);
        let step = delayed(move |mut x: Counted| {
            seen.lock().unwrap().push(x.data.as_ptr() as usize);
            x.data[0] += 1;
            x
        });
        let mut d = make.call(1000u64);
        for _ in 0..20 {
            d = step.call(d);
        }
        let out = rt.compute_with(&d, &opts).unwrap();
        assert_eq!(out.data[0], 20, "{name}");
        assert_eq!(clones.load(SeqCst), 0, "{name}: a chain cloned its value");
        let addresses = addresses.lock().unwrap();
        assert_eq!(addresses.len(), 20);
        assert!(
            addresses.iter().all(|&a| a == out.data.as_ptr() as usize),
            "{name}: the buffer was copied somewhere along the chain"
        );
        assert_eq!(rt.memory_stats().current_bytes, 0, "{name}");
    }
}

#[test]
fn a_value_read_twice_is_cloned_once_and_moved_into_the_last_reader() {
    let rt = rt(2);
    let sync = ComputeOptions::new().executor(Executor::Sync);
    let clones = Arc::new(AtomicUsize::new(0));
    let c = Arc::clone(&clones);
    let make = delayed(move |n: u64| Counted {
        data: (0..n).collect(),
        clones: Arc::clone(&c),
    });
    let len = delayed(|x: Counted| x.data.len());
    let both = delayed(|a: usize, b: usize| a + b);

    // Two consumers of one value (a diamond).
    let a = make.call(10u64);
    let out = both.call((len.call(&a), len.call(&a)));
    assert_eq!(rt.compute_with(&out, &sync).unwrap(), 20);
    assert_eq!(clones.load(SeqCst), 1, "sync: only the first reader copies");

    // The same value passed twice to one call.
    clones.store(0, SeqCst);
    let pair = delayed(|x: Counted, y: Counted| x.data.len() + y.data.len());
    let a = make.call(10u64);
    assert_eq!(rt.compute_with(&pair.call((&a, &a)), &sync).unwrap(), 20);
    assert_eq!(
        clones.load(SeqCst),
        1,
        "sync: one argument copied, the other moved"
    );

    // On threads the readers may overlap; each still gets its own value.
    clones.store(0, SeqCst);
    let a = make.call(10u64);
    let out = both.call((len.call(&a), len.call(&a)));
    assert_eq!(rt.compute(&out).unwrap(), 20);
    let n = clones.load(SeqCst);
    assert!((1..=2).contains(&n), "threads: {n} clones for two readers");
}

#[test]
fn compute_on_the_global_runtime() {
    let d = delayed(|a: i64, b: i64| a * b).call((value(6i64), 7));
    assert_eq!(d.compute().unwrap(), 42);
}
