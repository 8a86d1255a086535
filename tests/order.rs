//! Behaviour of the static ordering on the shared benchmark graphs.
//!
//! `shared/data/order-graphs` holds task graphs exported from Dask's own tests and
//! collections, each with the peak and mean pressure Dask's `order` reaches on it, plus Dask's
//! order itself in `dask_orders/`. For every graph this test checks that:
//!
//! * our order is a topological permutation;
//! * its peak pressure is at most Dask's (no exceptions are needed today: [`PEAK_EXCEPTIONS`]
//!   is where a graph would be listed, with the reason, if that ever became impossible);
//! * our pressure implementation reproduces Dask's per-step list when fed Dask's order;
//! * at an equal peak, the mean is at most Dask's (Dask's exact order is one of the candidates
//!   of `order_with_keys`, see `brisk::graph::order_dask`), and that replica reproduces Dask's
//!   order key for key on every graph that comes with it.
//!
//! The same checks run on `tests/data/order-graphs`, a small committed sample of graphs written
//! by `benches/export_order_graphs.py` (more sizes and chunkings of the same families; the
//! script exports hundreds), and a property test checks that the order is a deterministic
//! topological permutation on random DAGs.
//!
//! Mean pressure is otherwise reported, not asserted: a lower peak may come with a higher mean.
//! With `BRISK_ORDER_EXTRA` set to a directory of exported graphs, one more test checks the
//! replica's pressure and the final peak against Dask on all of them; `BRISK_ORDER_GRAPHS`
//! overrides the location of the shared set.
//! The directory lives beside the crate (`../shared/...`); without it the test prints a note
//! and passes.

use std::collections::HashMap;
use std::path::{Path, PathBuf};

use brisk::graph::graph_file::GraphFile;
use brisk::graph::order::{is_topological, order, order_with_keys};
use brisk::graph::order_dask::order_dask_exact;
use brisk::graph::pressure::pressure;
use brisk::graph::Csr;

/// Graphs where our peak may exceed Dask's, with the reason. Empty: on every graph of the set
/// the peak is at most Dask's.
const PEAK_EXCEPTIONS: &[(&str, &str)] = &[];

/// `../shared/data/order-graphs` beside the crate, or `$BRISK_ORDER_GRAPHS` (for a worktree
/// that lives elsewhere).
fn graph_dir() -> PathBuf {
    if let Some(dir) = std::env::var_os("BRISK_ORDER_GRAPHS") {
        return PathBuf::from(dir);
    }
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../shared/data/order-graphs")
}

fn graph_files(dir: &Path) -> Vec<PathBuf> {
    let mut files: Vec<PathBuf> = std::fs::read_dir(dir)
        .unwrap_or_else(|e| panic!("reading {}: {e}", dir.display()))
        .map(|entry| entry.expect("directory entry").path())
        .filter(|p| p.extension().is_some_and(|x| x == "json") && p.is_file())
        .collect();
    files.sort();
    files
}

/// Dask's order of `g` as priorities, and Dask's pressure list, from `dask_orders/`.
fn dask_order(dir: &Path, g: &GraphFile) -> Option<(Vec<u32>, Vec<u32>)> {
    let path = dir.join("dask_orders").join(format!("{}.json", g.name));
    let text = std::fs::read_to_string(&path).ok()?;
    let v: serde_json::Value =
        serde_json::from_str(&text).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    let index: HashMap<&str, u32> = g
        .keys
        .iter()
        .enumerate()
        .map(|(i, k)| (k.as_str(), i as u32))
        .collect();
    let order = v["order"].as_array().expect("order list");
    assert_eq!(order.len(), g.keys.len(), "{}: dask order length", g.name);
    let mut prio = vec![u32::MAX; g.keys.len()];
    for (p, key) in order.iter().enumerate() {
        let key = key.as_str().expect("key string");
        prio[index[key] as usize] = p as u32;
    }
    let list = v["pressure"]
        .as_array()
        .expect("pressure list")
        .iter()
        .map(|x| x.as_u64().expect("pressure value") as u32)
        .collect();
    Some((prio, list))
}

fn close(a: f64, b: f64) -> bool {
    (a - b).abs() <= 1e-12 * b.abs().max(1.0)
}

fn is_permutation(prio: &[u32]) -> bool {
    let mut seen = vec![false; prio.len()];
    prio.iter().all(|&p| {
        let fresh = (p as usize) < seen.len() && !seen[p as usize];
        if fresh {
            seen[p as usize] = true;
        }
        fresh
    })
}

/// Orders every graph of `dir`, checks validity, and compares peak pressure with Dask's.
/// Returns the graphs whose peak is above Dask's (outside [`PEAK_EXCEPTIONS`]).
fn check_graph_dir(dir: &Path) -> Vec<String> {
    let files = graph_files(dir);
    assert!(!files.is_empty(), "no graph files in {}", dir.display());

    let mut failures = Vec::new();
    let (mut peak_ok, mut mean_ok, mut dask_checked) = (0, 0, 0);
    println!(
        "{:48} {:>7} {:>5} {:>9} {:>5} {:>9}",
        "graph", "tasks", "max", "mean", "dask", "dask mean"
    );
    for path in &files {
        let g = GraphFile::load(path).unwrap_or_else(|e| panic!("{e}"));
        let dependents = g.dependents();
        let tie = g.tie_by_key();
        let keys: Vec<&str> = g.keys.iter().map(String::as_str).collect();
        let prio = order_with_keys(&g.deps, &dependents, &tie, &keys).unwrap();
        assert!(is_permutation(&prio), "{}: not a permutation", g.name);
        assert!(
            is_topological(&g.deps, &prio),
            "{}: not topological",
            g.name
        );
        let ours = pressure(&g.deps, &dependents, &prio).unwrap();

        if let Some((dask_prio, dask_list)) = dask_order(dir, &g) {
            let replay = pressure(&g.deps, &dependents, &dask_prio).unwrap();
            assert_eq!(
                replay.per_step, dask_list,
                "{}: pressure of dask's order",
                g.name
            );
            if let Some(m) = g.dask_max_pressure {
                assert_eq!(replay.max, m, "{}: dask max", g.name);
            }
            if let Some(m) = g.dask_mean_pressure {
                // serde_json (without its `float_roundtrip` feature) may parse the last digit
                // of a float one ulp off, so the file's mean is compared with a tolerance;
                // the per-step list above is exact.
                assert!(
                    close(replay.mean, m),
                    "{}: dask mean {} vs {m}",
                    g.name,
                    replay.mean
                );
            }
            dask_checked += 1;
        }

        let (Some(dmax), Some(dmean)) = (g.dask_max_pressure, g.dask_mean_pressure) else {
            continue;
        };
        println!(
            "{:48} {:>7} {:>5} {:>9.4} {:>5} {:>9.4}",
            g.name,
            g.keys.len(),
            ours.max,
            ours.mean,
            dmax,
            dmean
        );
        if ours.max <= dmax {
            peak_ok += 1;
        } else if !PEAK_EXCEPTIONS.iter().any(|(name, _)| *name == g.name) {
            failures.push(format!("{}: peak {} > dask {}", g.name, ours.max, dmax));
        }
        if ours.mean <= dmean || close(ours.mean, dmean) {
            mean_ok += 1;
        } else if ours.max == dmax {
            // Dask's own order is a candidate, so at an equal peak the mean cannot be worse.
            failures.push(format!(
                "{}: mean {} > dask {dmean} at equal peak",
                g.name, ours.mean
            ));
        }
    }
    println!(
        "{} graphs: peak <= dask on {peak_ok}, mean <= dask on {mean_ok}; \
         dask's own pressure reproduced on {dask_checked}",
        files.len()
    );
    failures
}

#[test]
fn benchmark_graphs_beat_or_match_dask() {
    let dir = graph_dir();
    if !dir.is_dir() {
        println!(
            "note: {} not found; skipping the order-graph checks",
            dir.display()
        );
        return;
    }
    let failures = check_graph_dir(&dir);
    assert!(
        failures.is_empty(),
        "peak pressure above Dask's:\n{}",
        failures.join("\n")
    );
}

/// A small committed sample of graphs exported with `benches/export_order_graphs.py` (the
/// same families as the shared set, other sizes and chunkings), including graphs where an
/// earlier walk peaked above Dask.
#[test]
fn exported_sample_graphs_beat_or_match_dask() {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/data/order-graphs");
    let failures = check_graph_dir(&dir);
    assert!(
        failures.is_empty(),
        "peak pressure above Dask's:\n{}",
        failures.join("\n")
    );
}

#[test]
fn graph_file_errors_name_file_and_key() {
    let err = GraphFile::from_json_str(
        "broken.json",
        r#"{"tasks": [{"key": "a", "deps": []}, {"key": "b", "deps": ["nope"]}]}"#,
    )
    .expect_err("unknown dependency is an error");
    let msg = err.to_string();
    assert!(
        msg.contains("broken.json") && msg.contains("b") && msg.contains("nope"),
        "{msg}"
    );
}

#[test]
fn ordering_a_loaded_graph_uses_its_csr() {
    let g = GraphFile::from_json_str(
        "inline",
        r#"{"tasks": [{"key": "x", "deps": []}, {"key": "y", "deps": ["x", "x"]},
                      {"key": "z", "deps": ["y"]}]}"#,
    )
    .expect("valid graph");
    let deps: &Csr = &g.deps;
    assert_eq!(deps.row(1), &[0]);
    let prio = order(deps, &g.dependents(), &g.tie_by_key()).unwrap();
    assert_eq!(prio, vec![0, 1, 2]);
}

/// A random DAG: task `i` depends on up to `max_deps` distinct earlier tasks, picked from
/// `picks` (so every edge points backwards and the graph is acyclic). Ids are then shuffled
/// by `perm_seed` so that ids do not follow the topological order.
fn random_dag(n: usize, picks: &[(u16, u16)], max_deps: usize, perm_seed: u64) -> Csr {
    let mut rows: Vec<Vec<u32>> = vec![Vec::new(); n];
    let mut it = picks.iter().cycle();
    for (i, row) in rows.iter_mut().enumerate().skip(1) {
        let &(count, first) = it.next().expect("non-empty picks");
        let count = count as usize % (max_deps + 1);
        for k in 0..count {
            let d = (first as usize + k * 7919) % i;
            if !row.contains(&(d as u32)) {
                row.push(d as u32);
            }
        }
    }
    // A fixed pseudo-random relabelling (Fisher-Yates with a 64-bit LCG).
    let mut label: Vec<u32> = (0..n as u32).collect();
    let mut s = perm_seed | 1;
    for i in (1..n).rev() {
        s = s
            .wrapping_mul(6364136223846793005)
            .wrapping_add(1442695040888963407);
        label.swap(i, (s >> 33) as usize % (i + 1));
    }
    let mut relabelled: Vec<Vec<u32>> = vec![Vec::new(); n];
    for (i, row) in rows.into_iter().enumerate() {
        relabelled[label[i] as usize] = row.into_iter().map(|d| label[d as usize]).collect();
    }
    Csr::from_rows(relabelled)
}

proptest::proptest! {
    #![proptest_config(proptest::prelude::ProptestConfig::with_cases(200))]

    /// On any DAG the order is a topological permutation, and ordering twice gives the same
    /// result (no hidden randomness).
    #[test]
    fn order_is_a_deterministic_topological_permutation(
        n in 1usize..160,
        picks in proptest::collection::vec((0u16..8, 0u16..u16::MAX), 1..64),
        max_deps in 1usize..6,
        perm_seed in 0u64..u64::MAX,
    ) {
        let deps = random_dag(n, &picks, max_deps, perm_seed);
        let dependents = deps.transpose(n);
        let by_id = |a: u32, b: u32| a.cmp(&b);
        let prio = order(&deps, &dependents, &by_id).unwrap();
        proptest::prop_assert!(is_permutation(&prio), "not a permutation: {:?}", prio);
        proptest::prop_assert!(is_topological(&deps, &prio), "not topological: {:?}", prio);
        proptest::prop_assert_eq!(prio, order(&deps, &dependents, &by_id).unwrap());
    }

    /// On any DAG the Dask replica gives a topological permutation, and the keyed order's
    /// (peak, mean) is never above the replica's.
    #[test]
    fn keyed_order_is_never_above_the_dask_replica(
        n in 1usize..160,
        picks in proptest::collection::vec((0u16..8, 0u16..u16::MAX), 1..64),
        max_deps in 1usize..6,
        perm_seed in 0u64..u64::MAX,
    ) {
        let deps = random_dag(n, &picks, max_deps, perm_seed);
        let dependents = deps.transpose(n);
        let names: Vec<String> = (0..n).map(|i| format!("('t', {i})")).collect();
        let keys: Vec<&str> = names.iter().map(String::as_str).collect();
        let dask = order_dask_exact(&deps, &keys, usize::MAX);
        proptest::prop_assert!(dask.is_some(), "replica gave up");
        let dask = dask.unwrap_or_default();
        proptest::prop_assert!(is_permutation(&dask), "not a permutation: {:?}", dask);
        proptest::prop_assert!(is_topological(&deps, &dask), "not topological: {:?}", dask);
        let tie = |a: u32, b: u32| names[a as usize].cmp(&names[b as usize]);
        let ours = order_with_keys(&deps, &dependents, &tie, &keys).unwrap();
        let ours = pressure(&deps, &dependents, &ours).unwrap();
        let theirs = pressure(&deps, &dependents, &dask).unwrap();
        proptest::prop_assert!(
            (ours.max, ours.mean) <= (theirs.max, theirs.mean),
            "ours {} {} vs dask {} {}", ours.max, ours.mean, theirs.max, theirs.mean
        );
    }
}

/// The replica of Dask's order reproduces Dask's exact order (`PYTHONHASHSEED=0`, string keys)
/// on every shared graph that comes with Dask's order.
#[test]
fn dask_replica_reproduces_dask_exactly() {
    let dir = graph_dir();
    if !dir.is_dir() {
        println!("note: {} not found; skipping", dir.display());
        return;
    }
    let mut mismatches = Vec::new();
    let mut checked = 0;
    for path in graph_files(&dir) {
        let g = GraphFile::load(&path).unwrap_or_else(|e| panic!("{e}"));
        let Some((dask_prio, _)) = dask_order(&dir, &g) else {
            continue;
        };
        let keys: Vec<&str> = g.keys.iter().map(String::as_str).collect();
        let replica = order_dask_exact(&g.deps, &keys, usize::MAX)
            .unwrap_or_else(|| panic!("{}: replica gave up", g.name));
        checked += 1;
        if replica != dask_prio {
            let first = (0..g.keys.len() as u32)
                .find(|&p| {
                    replica.iter().position(|&x| x == p) != dask_prio.iter().position(|&x| x == p)
                })
                .unwrap_or(0);
            mismatches.push(format!("{} (first difference at step {first})", g.name));
        }
    }
    println!("replica checked on {checked} graphs");
    assert!(checked > 0, "no dask_orders files");
    assert!(
        mismatches.is_empty(),
        "replica differs from Dask on:\n{}",
        mismatches.join("\n")
    );
}

/// With `BRISK_ORDER_EXTRA` naming a directory of exported graphs (such as the hundreds that
/// `benches/export_order_graphs.py` writes), the replica's pressure equals the max and mean
/// that Dask reached on each of them, and the final order's peak is at most Dask's.
#[test]
fn dask_replica_matches_dask_pressure_on_exported_graphs() {
    let Some(dir) = std::env::var_os("BRISK_ORDER_EXTRA") else {
        return;
    };
    let mut mismatches = Vec::new();
    let mut checked = 0;
    for path in graph_files(Path::new(&dir)) {
        let g = GraphFile::load(&path).unwrap_or_else(|e| panic!("{e}"));
        let (Some(dmax), Some(dmean)) = (g.dask_max_pressure, g.dask_mean_pressure) else {
            continue;
        };
        let keys: Vec<&str> = g.keys.iter().map(String::as_str).collect();
        let replica = order_dask_exact(&g.deps, &keys, usize::MAX)
            .unwrap_or_else(|| panic!("{}: replica gave up", g.name));
        let dependents = g.dependents();
        let p = pressure(&g.deps, &dependents, &replica).unwrap();
        checked += 1;
        if p.max != dmax || !close(p.mean, dmean) {
            mismatches.push(format!(
                "{}: {} {} vs dask {dmax} {dmean}",
                g.name, p.max, p.mean
            ));
        }
        let ours = order_with_keys(&g.deps, &dependents, &g.tie_by_key(), &keys).unwrap();
        let ours = pressure(&g.deps, &dependents, &ours).unwrap();
        if ours.max > dmax {
            mismatches.push(format!("{}: final peak {} > dask {dmax}", g.name, ours.max));
        }
    }
    println!("replica pressure checked on {checked} graphs");
    assert!(
        mismatches.is_empty(),
        "replica pressure differs:\n{}",
        mismatches.join("\n")
    );
}
