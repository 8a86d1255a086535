//! Times the static ordering on generated graphs of about a million tasks:
//! `cargo run --example order_timing` (build with optimizations for meaningful numbers, e.g.
//! `--config 'profile.dev.package.brisk.opt-level=3'`).
use std::time::Instant;

use brisk::graph::order::order;
use brisk::graph::Csr;

/// Fan-in-`fan` reduction over `leaves` inputs.
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

/// An array-like graph built layer by layer: `r * c` inputs, an element-wise map, a map that
/// also reads the transposed block, and per-column tree sums joined at the end.
fn grid(r: usize, c: usize) -> Csr {
    let n = r * c;
    let mut rows: Vec<Vec<u32>> = vec![Vec::new(); n];
    rows.extend((0..n).map(|i| vec![i as u32]));
    rows.extend((0..n).map(|i| {
        let (a, b) = (i / c, i % c);
        let t = (b % r) * c + (a % c);
        let mut v = vec![(n + i) as u32, (n + t) as u32];
        v.dedup();
        v.sort_unstable();
        v.dedup();
        v
    }));
    let mut tops = Vec::new();
    for j in 0..c {
        let mut level: Vec<u32> = (0..r).map(|i| (2 * n + i * c + j) as u32).collect();
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
    Csr::from_rows(rows)
}

fn main() {
    let graphs = [
        ("tree4", tree(750_000, 4)),
        ("tree2", tree(1 << 19, 2)),
        ("grid", grid(600, 550)),
    ];
    for (name, deps) in &graphs {
        let n = deps.len();
        let dependents = deps.transpose(n);
        // Keys like an array collection's, compared as brisk compares `Key`s (name, then
        // indices): a few layers of blocks whose names are shared, as collections share them.
        let names: Vec<std::sync::Arc<str>> = ["load", "map", "sum"]
            .iter()
            .map(|&s| std::sync::Arc::from(s))
            .collect();
        let keys: Vec<brisk::Key> = (0..n)
            .map(|i| brisk::Key::from((&names[i % 3], (i / 3) as i64, 0i64)))
            .collect();
        let tie = |a: u32, b: u32| keys[a as usize].cmp(&keys[b as usize]);
        let mut best = f64::MAX;
        for _ in 0..3 {
            let start = Instant::now();
            let prio = order(deps, &dependents, &tie).expect("the graph and its transpose agree");
            best = best.min(start.elapsed().as_secs_f64());
            assert_eq!(prio.len(), n);
        }
        println!(
            "graph={name} tasks={n} edges={} order_ms={:.1} ns_per_task={:.1}",
            deps.num_edges(),
            best * 1e3,
            best * 1e9 / n as f64
        );
    }
}
