//! The memory limit: results beyond it go to disk and come back intact, the managed total stays
//! under the limit plus one task's working set, and each way spilling can fail is a clear
//! error that leaves the runtime usable and no file behind.

mod common;

use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};

use brisk::{ErrorKind, Event, Executor, Graph, Key, Op, Runtime, SizeOf, Value};
use common::guarded;

/// Elements per block: 256 KiB of f64.
const LEN: usize = 32 * 1024;
const BLOCK_BYTES: usize = LEN * 8;

fn block(i: usize) -> Vec<f64> {
    (0..LEN).map(|j| (i * 7 + j % 13) as f64).collect()
}

/// `n` blocks that must all be held until their total is known: `block i -> sum i -> total`,
/// then `check i = f(block i, total)`. Outputs: every `check i`, then `total`.
fn hold_all_graph(n: usize) -> (Graph, Vec<Key>) {
    let mut g = Graph::new();
    let make = Op::new("make", |ctx, _inputs: &mut [Value]| {
        let i = ctx.key().index()[0] as usize;
        Ok(Value::spillable(block(i)))
    });
    let sum = Op::new("sum", |_ctx, inputs: &mut [Value]| {
        let b = inputs[0].downcast_ref::<Vec<f64>>().expect("a block");
        Ok(Value::new(b.iter().sum::<f64>()))
    });
    let total = Op::new("total", |_ctx, inputs: &mut [Value]| {
        let t: f64 = inputs
            .iter()
            .map(|v| *v.downcast_ref::<f64>().expect("a partial sum"))
            .sum();
        Ok(Value::new(t))
    });
    // Weighted by position, so a block that came back from disk scrambled would show.
    let check = Op::new("check", |_ctx, inputs: &mut [Value]| {
        let b = inputs[0].downcast_ref::<Vec<f64>>().expect("a block");
        let t = *inputs[1].downcast_ref::<f64>().expect("the total");
        let weighted: f64 = b.iter().enumerate().map(|(j, x)| x * j as f64).sum();
        Ok(Value::new(weighted / t))
    });
    let mut sums = Vec::new();
    for i in 0..n {
        let b = g
            .add_task(("block", i as i64), make.clone(), [] as [Key; 0])
            .unwrap();
        sums.push(g.add_task(("sum", i as i64), sum.clone(), [b]).unwrap());
    }
    let t = g.add_task("total", total, sums).unwrap();
    let mut outputs = Vec::new();
    for i in 0..n {
        let b = Key::from(("block", i as i64));
        let k = Key::from(("check", i as i64));
        g.add_task(k.clone(), check.clone(), [g.id(&b).unwrap(), t])
            .unwrap();
        outputs.push(k);
    }
    outputs.push(Key::from("total"));
    (g, outputs)
}

fn expected(n: usize) -> Vec<f64> {
    let total: f64 = (0..n).map(|i| block(i).iter().sum::<f64>()).sum();
    let mut out: Vec<f64> = (0..n)
        .map(|i| {
            let w: f64 = block(i).iter().enumerate().map(|(j, x)| x * j as f64).sum();
            w / total
        })
        .collect();
    out.push(total);
    out
}

fn floats(values: Vec<Value>) -> Vec<f64> {
    values
        .iter()
        .map(|v| *v.downcast_ref::<f64>().expect("f64"))
        .collect()
}

/// Spill files (and directories) under `dir`.
fn files_under(dir: &Path) -> Vec<PathBuf> {
    let mut out = Vec::new();
    if let Ok(entries) = std::fs::read_dir(dir) {
        for e in entries.flatten() {
            let p = e.path();
            if p.is_dir() {
                out.extend(files_under(&p));
            } else {
                out.push(p);
            }
        }
    }
    out
}

#[derive(Default)]
struct SpillLog {
    spilled: AtomicUsize,
    unspilled: AtomicUsize,
    spilled_bytes: AtomicUsize,
}

impl brisk::EventHook for SpillLog {
    fn on_event(&self, event: &Event<'_>) {
        match event {
            Event::Spilled { bytes, .. } => {
                self.spilled.fetch_add(1, Ordering::Relaxed);
                self.spilled_bytes.fetch_add(*bytes, Ordering::Relaxed);
            }
            Event::Unspilled { .. } => {
                self.unspilled.fetch_add(1, Ordering::Relaxed);
            }
            _ => {}
        }
    }
}

fn limited(threads: usize, limit: usize, base: &Path) -> brisk::RuntimeBuilder {
    Runtime::builder()
        .threads(threads)
        .memory_limit(limit)
        .spill_dir(base)
}

#[test]
fn results_beyond_the_limit_spill_and_come_back_intact() {
    for (threads, executor) in [(2, Executor::Threads), (1, Executor::Sync)] {
        let base = tempfile::tempdir().unwrap();
        let n = 32; // 8 MiB of blocks, all held until the total is known
        let limit = 2 << 20;
        let rt = limited(threads, limit, base.path())
            .executor(executor)
            .build()
            .unwrap();
        let log = Arc::new(SpillLog::default());
        rt.add_hook(log.clone());
        let (g, outputs) = hold_all_graph(n);
        let got = guarded("hold-all graph", move || {
            let got = rt.compute_graph(g, &outputs).map(floats);
            (got, rt)
        });
        let (got, rt) = got;
        assert_eq!(got.unwrap(), expected(n), "{executor:?}");

        let stats = rt.memory_stats();
        assert!(stats.spill_count > 0, "{stats:?}");
        assert!(stats.unspill_count > 0, "{stats:?}");
        assert!(stats.spilled_bytes > 0);
        assert_eq!(stats.limit, limit as u64);
        // A task here holds at most one block of input and one of output.
        let working_set = 2 * BLOCK_BYTES;
        assert!(
            stats.peak_bytes <= limit + working_set,
            "{executor:?}: peak {} > limit {limit} + one task's working set {working_set}",
            stats.peak_bytes
        );
        assert_eq!(stats.current_bytes, 0, "everything released");
        // Events went through the hook, with bytes.
        assert_eq!(
            log.spilled.load(Ordering::Relaxed) as u64,
            stats.spill_count
        );
        assert_eq!(
            log.unspilled.load(Ordering::Relaxed) as u64,
            stats.unspill_count
        );
        assert!(log.spilled_bytes.load(Ordering::Relaxed) >= BLOCK_BYTES);

        // Every spill file was deleted when its value was released; the directory goes with
        // the runtime.
        let dir = rt.spill_path().expect("a spill directory was made");
        assert!(dir.starts_with(base.path()));
        assert_eq!(files_under(&dir), Vec::<PathBuf>::new());
        assert_eq!(stats.disk_bytes, 0);
        assert!(stats.peak_disk_bytes > 0);
        drop(rt);
        assert_eq!(files_under(base.path()), Vec::<PathBuf>::new());
        assert!(!dir.exists());
    }
}

#[test]
fn without_pressure_nothing_touches_the_disk() {
    let base = tempfile::tempdir().unwrap();
    let rt = limited(2, 64 << 20, base.path()).build().unwrap();
    let (g, outputs) = hold_all_graph(8);
    let got = floats(rt.compute_graph(g, &outputs).unwrap());
    assert_eq!(got, expected(8));
    assert_eq!(rt.memory_stats().spill_count, 0);
    assert!(rt.spill_path().is_none());
    assert!(
        std::fs::read_dir(base.path()).unwrap().next().is_none(),
        "no spill directory made"
    );
}

#[test]
fn a_task_whose_output_exceeds_the_limit_fails_naming_it() {
    let rt = Runtime::builder()
        .threads(2)
        .memory_limit(1 << 20)
        .build()
        .unwrap();
    let mut g = Graph::new();
    g.add_task(
        "huge",
        Op::new("alloc", |_ctx, _inputs: &mut [Value]| {
            Ok(Value::spillable(vec![0u8; 3 << 20]))
        }),
        [] as [Key; 0],
    )
    .unwrap();
    let err = rt.compute_graph(g, &[Key::from("huge")]).unwrap_err();
    let ErrorKind::TaskTooLarge {
        key, output, limit, ..
    } = err.kind()
    else {
        panic!("expected TaskTooLarge, got {err}");
    };
    assert_eq!(key, "huge");
    assert_eq!(*output, Some(vec![0u8; 3 << 20].size_of() as u64));
    assert_eq!(*limit, 1 << 20);
    let msg = err.to_string();
    assert!(msg.contains("huge") && msg.contains("1048576"), "{msg}");
    // The runtime is still usable.
    let mut g = Graph::new();
    g.add_value("x", Value::new(5i64)).unwrap();
    let v = rt.compute_graph(g, &[Key::from("x")]).unwrap();
    assert_eq!(v[0].downcast_ref::<i64>(), Some(&5));
    assert_eq!(rt.memory_stats().current_bytes, 0);
}

#[test]
fn a_task_whose_inputs_exceed_the_limit_fails_before_running() {
    let base = tempfile::tempdir().unwrap();
    let rt = limited(2, 1 << 20, base.path()).build().unwrap();
    let ran = Arc::new(AtomicBool::new(false));
    let mut g = Graph::new();
    let part = Op::new("part", |_ctx, _inputs: &mut [Value]| {
        Ok(Value::spillable(vec![1u8; 700 << 10]))
    });
    let a = g.add_task("a", part.clone(), [] as [Key; 0]).unwrap();
    let b = g.add_task("b", part, [] as [Key; 0]).unwrap();
    let flag = Arc::clone(&ran);
    g.add_task(
        "join",
        Op::new("join", move |_ctx, _inputs: &mut [Value]| {
            flag.store(true, Ordering::SeqCst);
            Ok(Value::unit())
        }),
        [a, b],
    )
    .unwrap();
    let err = rt.compute_graph(g, &[Key::from("join")]).unwrap_err();
    match err.kind() {
        ErrorKind::TaskTooLarge {
            key,
            inputs,
            output,
            ..
        } => {
            assert_eq!(key, "join");
            assert_eq!(*inputs, 2 * vec![1u8; 700 << 10].size_of() as u64);
            assert_eq!(*output, None);
        }
        other => panic!("expected TaskTooLarge, got {other}"),
    }
    assert!(!ran.load(Ordering::SeqCst), "the op must not run");
    drop(rt);
    assert_eq!(files_under(base.path()), Vec::<PathBuf>::new());
}

#[test]
fn an_exceeded_disk_budget_fails_the_compute_and_loses_nothing_else() {
    let base = tempfile::tempdir().unwrap();
    let rt = limited(2, 2 << 20, base.path())
        // The blocks compress to about 1 KiB each: room for a few, not for the 24 or so
        // that must go out.
        .max_spill(8 << 10)
        .build()
        .unwrap();
    let (g, outputs) = hold_all_graph(32);
    let (err, rt) = guarded("budget", move || {
        let r = rt.compute_graph(g, &outputs);
        (r.err(), rt)
    });
    let err = err.expect("the compute must fail");
    let msg = err.to_string();
    assert!(msg.contains("budget"), "{msg}");
    assert!(msg.contains("spilling"), "says what it was doing: {msg}");
    assert_eq!(
        rt.memory_stats().current_bytes,
        0,
        "the failed run's values are released"
    );
    assert_eq!(rt.memory_stats().disk_bytes, 0, "and its files deleted");
    // The runtime still computes, spilling included, when the work fits the budget.
    let (g, outputs) = hold_all_graph(8);
    assert_eq!(floats(rt.compute_graph(g, &outputs).unwrap()), expected(8));
    drop(rt);
    assert_eq!(files_under(base.path()), Vec::<PathBuf>::new());
}

#[test]
fn an_unwritable_spill_dir_is_a_clear_error() {
    let base = tempfile::tempdir().unwrap();
    // A regular file where the spill directory's parent should be.
    let blocker = base.path().join("not-a-dir");
    std::fs::write(&blocker, b"x").unwrap();
    let rt = Runtime::builder()
        .threads(2)
        .memory_limit(2 << 20)
        .spill_dir(blocker.join("spill"))
        .build()
        .unwrap();
    let (g, outputs) = hold_all_graph(32);
    let (err, rt) = guarded("unwritable", move || {
        let r = rt.compute_graph(g, &outputs);
        (r.err(), rt)
    });
    let msg = err.expect("the compute must fail").to_string();
    assert!(msg.contains("not-a-dir"), "names the path: {msg}");
    assert_eq!(rt.memory_stats().current_bytes, 0);
    // Work that fits in memory still runs.
    let (g, outputs) = hold_all_graph(2);
    assert_eq!(floats(rt.compute_graph(g, &outputs).unwrap()), expected(2));
}

/// Truncates every spill file under a directory the moment it is written.
struct Truncator {
    base: PathBuf,
    done: Mutex<usize>,
}

impl brisk::EventHook for Truncator {
    fn on_event(&self, event: &Event<'_>) {
        if let Event::Spilled { .. } = event {
            let mut done = self.done.lock().unwrap();
            for f in files_under(&self.base) {
                let len = std::fs::metadata(&f).map(|m| m.len()).unwrap_or(0);
                if len > 100 {
                    let file = std::fs::OpenOptions::new().write(true).open(&f).unwrap();
                    file.set_len(len / 2).unwrap();
                    *done += 1;
                }
            }
        }
    }
}

#[test]
fn a_truncated_spill_file_fails_the_compute_naming_the_value() {
    let base = tempfile::tempdir().unwrap();
    let rt = limited(2, 2 << 20, base.path()).build().unwrap();
    let hook = Arc::new(Truncator {
        base: base.path().to_path_buf(),
        done: Mutex::new(0),
    });
    rt.add_hook(hook.clone());
    let (g, outputs) = hold_all_graph(32);
    let (err, rt) = guarded("truncated", move || {
        let r = rt.compute_graph(g, &outputs);
        (r.err(), rt)
    });
    assert!(*hook.done.lock().unwrap() > 0, "files were truncated");
    let msg = err
        .expect("a truncated file must fail the compute")
        .to_string();
    assert!(msg.contains("block"), "names the value read back: {msg}");
    assert!(
        msg.contains("truncated") || msg.contains("checksum") || msg.contains("short"),
        "says what is wrong: {msg}"
    );
    assert_eq!(rt.memory_stats().current_bytes, 0);
    drop(rt);
    assert_eq!(files_under(base.path()), Vec::<PathBuf>::new());
}

#[test]
fn stale_spill_directories_of_dead_processes_are_removed_at_start() {
    let base = tempfile::tempdir().unwrap();
    // A process that has exited: its pid names a dead owner.
    let mut child = std::process::Command::new("true").spawn().unwrap();
    let pid = child.id();
    child.wait().unwrap();
    let stale = base.path().join(format!("brisk-{pid}-abc123"));
    std::fs::create_dir_all(&stale).unwrap();
    std::fs::write(stale.join("00000001-x.spill"), b"old").unwrap();
    let mine = base
        .path()
        .join(format!("brisk-{}-live", std::process::id()));
    std::fs::create_dir_all(&mine).unwrap();
    let unrelated = base.path().join("notes");
    std::fs::create_dir_all(&unrelated).unwrap();

    let _rt = limited(1, 1 << 20, base.path()).build().unwrap();
    assert!(
        !stale.exists(),
        "a dead process's spill directory is removed"
    );
    assert!(mine.exists(), "a live process's directory is kept");
    assert!(unrelated.exists(), "other directories are left alone");
}

#[test]
fn thresholds_are_configurable_and_checked() {
    let err = Runtime::builder()
        .spill_fraction(0.9)
        .pause_fraction(0.5)
        .build()
        .err()
        .expect("spill above pause is refused");
    assert!(err.to_string().contains("spill fraction"), "{err}");
    let err = Runtime::builder().max_spill("lots").build().err().unwrap();
    assert!(err.to_string().contains("lots"), "{err}");

    // A lower spill fraction spills more; the results are the same.
    let base = tempfile::tempdir().unwrap();
    let eager = limited(2, 4 << 20, base.path())
        .spill_fraction(0.2)
        .pause_fraction(0.3)
        .build()
        .unwrap();
    let (g, outputs) = hold_all_graph(16);
    assert_eq!(
        floats(eager.compute_graph(g, &outputs).unwrap()),
        expected(16)
    );
    let lazy = limited(2, 4 << 20, base.path()).build().unwrap();
    let (g, outputs) = hold_all_graph(16);
    assert_eq!(
        floats(lazy.compute_graph(g, &outputs).unwrap()),
        expected(16)
    );
    assert!(
        eager.memory_stats().spill_count > lazy.memory_stats().spill_count,
        "eager {:?} vs lazy {:?}",
        eager.memory_stats(),
        lazy.memory_stats()
    );
}

#[test]
fn many_roots_under_pressure_pause_instead_of_piling_up() {
    // 64 independent roots whose results all feed one final reduction through a tree: without
    // the pause every root could finish before any reduction ran.
    let base = tempfile::tempdir().unwrap();
    let limit = 2 << 20;
    let rt = limited(2, limit, base.path())
        .root_limit(64)
        .build()
        .unwrap();
    let mut g = Graph::new();
    let make = Op::new("make", |ctx, _inputs: &mut [Value]| {
        let i = ctx.key().index()[0] as usize;
        Ok(Value::spillable(block(i)))
    });
    let fold = Op::new("fold", |_ctx, inputs: &mut [Value]| {
        let s: f64 = inputs
            .iter()
            .map(|v| match v.downcast_ref::<Vec<f64>>() {
                Some(b) => b.iter().sum::<f64>(),
                None => *v.downcast_ref::<f64>().expect("a partial"),
            })
            .sum();
        Ok(Value::new(s))
    });
    let mut level: Vec<brisk::TaskId> = (0..64)
        .map(|i| {
            g.add_task(("make", i), make.clone(), [] as [Key; 0])
                .unwrap()
        })
        .collect();
    let mut depth = 0;
    while level.len() > 1 {
        depth += 1;
        level = level
            .chunks(2)
            .enumerate()
            .map(|(j, pair)| {
                g.add_task(("fold", depth, j as i64), fold.clone(), pair.to_vec())
                    .unwrap()
            })
            .collect();
    }
    let out = g.key(level[0]).clone();
    let got = rt.compute_graph(g, &[out]).unwrap();
    let want: f64 = (0..64).map(|i| block(i).iter().sum::<f64>()).sum();
    assert_eq!(got[0].downcast_ref::<f64>(), Some(&want));
    let stats = rt.memory_stats();
    assert!(
        stats.peak_bytes <= limit + 2 * BLOCK_BYTES,
        "peak {} over the limit {limit}",
        stats.peak_bytes
    );
}

#[test]
fn delayed_results_with_an_encoding_spill_too() {
    use brisk::prelude::*;
    use ndarray::Array1;
    let base = tempfile::tempdir().unwrap();
    let rt = limited(2, 16 * BLOCK_BYTES, base.path()).build().unwrap();
    let make = delayed(|i: usize| Array1::from(block(i))).name("make");
    let weigh = delayed(|b: Array1<f64>, all: Vec<f64>| {
        let total: f64 = all.iter().sum();
        b.iter().enumerate().map(|(j, x)| x * j as f64).sum::<f64>() / total
    })
    .name("weigh");
    let sum = delayed(|b: Array1<f64>| b.sum()).name("sum");
    let n = 64;
    let blocks: Vec<_> = (0..n).map(|i| make.call(i)).collect();
    let sums: Vec<_> = blocks.iter().map(|b| sum.call(b)).collect();
    let checks: Vec<_> = blocks
        .iter()
        .map(|b| weigh.call((b, sums.clone())))
        .collect();
    let got: Vec<f64> = rt.compute(&checks).unwrap();
    assert_eq!(got, expected(n)[..n].to_vec());
    let stats = rt.memory_stats();
    assert!(stats.spill_count > 0, "nothing spilled: {stats:?}");
    assert!(
        stats.peak_bytes <= 16 * BLOCK_BYTES + 3 * BLOCK_BYTES,
        "peak {} over the limit plus a task's working set",
        stats.peak_bytes
    );
}

/// The key of a `TaskTooLarge` error, or a panic naming what came instead.
fn too_large_key(err: &brisk::Error) -> (String, Option<u64>) {
    match err.kind() {
        ErrorKind::TaskTooLarge { key, output, .. } => (key.clone(), *output),
        other => panic!("expected TaskTooLarge, got {other}"),
    }
}

#[test]
fn a_fused_delayed_call_over_the_limit_fails_naming_it() {
    use brisk::prelude::*;
    let rt = Runtime::builder()
        .threads(2)
        .memory_limit(64 << 20)
        .build()
        .unwrap();
    // Zeroed memory comes from fresh pages: making 96 MiB of it touches nothing.
    let big = delayed(|| vec![0u8; 96 << 20]).name("big");
    let len = delayed(|v: Vec<u8>| v.len()).name("len");
    let out = len.call(big.call(()));
    for fuse in [true, false] {
        let err = rt
            .compute_with(&out, &ComputeOptions::new().fuse(fuse))
            .expect_err("a 96 MiB result under a 64 MiB limit must fail");
        let (key, output) = too_large_key(&err);
        assert!(
            key.contains("big"),
            "fuse={fuse}: names the producer: {err}"
        );
        assert_eq!(output, Some(vec![0u8; 96 << 20].size_of() as u64));
        assert_eq!(rt.memory_stats().current_bytes, 0, "fuse={fuse}");
    }
}

#[test]
fn a_fused_array_block_over_the_limit_fails_naming_it() {
    use brisk::array::{self, All};
    use brisk::prelude::*;
    let rt = Runtime::builder()
        .threads(2)
        .memory_limit(64 << 20)
        .build()
        .unwrap();
    // One block of 128 MiB, mapped, then summed: block -> map_blocks -> sum is a linear chain.
    let len = 16 << 20;
    let x = array::ones::<f64>(&[len], len).unwrap();
    let total = x.map_blocks(|b| b).sum(All);
    for fuse in [true, false] {
        let err = rt
            .compute_with(&total, &ComputeOptions::new().fuse(fuse))
            .expect_err("a 128 MiB block under a 64 MiB limit must fail");
        let (key, output) = too_large_key(&err);
        assert!(
            output.is_some_and(|b| b >= 128 << 20),
            "fuse={fuse}: the block is what is too large: {err}"
        );
        assert!(
            key.contains("ones"),
            "fuse={fuse}: names the block's maker: {err}"
        );
        assert_eq!(rt.memory_stats().current_bytes, 0, "fuse={fuse}");
    }
}

/// A value that weighs less after a trip through a spill file (decoding allocates exact
/// capacities) is accounted by what it weighs now. This used to trip a debug assertion on a
/// worker thread, which lost the worker and left the compute waiting forever.
#[test]
fn a_value_lighter_after_its_spill_comes_back_and_is_accounted() {
    use brisk::prelude::*;
    let base = tempfile::tempdir().unwrap();
    let rt = limited(2, 4 << 20, base.path()).build().unwrap();
    let make = delayed(|i: u64| {
        let mut s = String::with_capacity(1 << 20);
        s.push_str(&i.to_string());
        s
    })
    .name("padded");
    let p: Vec<Delayed<String>> = (0..10).map(|i| make.call(i)).collect();
    // Ten arguments rather than a `Vec`: the consumer holds the ten strings as its inputs
    // (those read back from disk are small now), with no gathered copy of them all.
    #[allow(clippy::too_many_arguments)]
    fn total(
        a: String,
        b: String,
        c: String,
        d: String,
        e: String,
        f: String,
        g: String,
        h: String,
        i: String,
        j: String,
    ) -> u64 {
        [a, b, c, d, e, f, g, h, i, j]
            .iter()
            .map(|s| s.parse::<u64>().unwrap_or(u64::MAX))
            .sum()
    }
    let total = delayed(total).call((
        &p[0], &p[1], &p[2], &p[3], &p[4], &p[5], &p[6], &p[7], &p[8], &p[9],
    ));
    let (got, rt) = guarded("padded strings", move || (rt.compute(&total), rt));
    assert_eq!(got.unwrap(), (0..10).sum::<u64>());
    let stats = rt.memory_stats();
    assert!(stats.spill_count > 0, "{stats:?}");
    assert!(stats.unspill_count > 0, "{stats:?}");
    assert_eq!(stats.current_bytes, 0, "everything released: {stats:?}");
}
