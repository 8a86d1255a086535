//! The pipeline from Dask's design story, written as plain for-loops over delayed calls.
//!
//! Load 100 files, load one reference, process each file against the reference, roll a
//! window of three over the processed results, compare 200 random pairs of rolled results and
//! reduce all comparisons to one number. Each step sleeps for a seeded random time to stand in
//! for real work. Run it with `cargo run --release --example etl`.
//!
//! It prints the wall time next to the two lower bounds for it: the sum of all task times
//! divided by the threads, and the critical path (the longest chain of dependent tasks).

use std::time::{Duration, Instant};

use brisk::prelude::*;
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;

/// The lazy pipeline and the numbers to judge its run by.
pub struct Etl {
    /// The final reduction.
    pub result: Delayed<f64>,
    /// Sum of every task's simulated time.
    pub total_work: Duration,
    /// The longest chain of dependent tasks.
    pub critical_path: Duration,
    /// Number of delayed calls.
    pub tasks: usize,
}

fn work(ms: f64) {
    std::thread::sleep(Duration::from_secs_f64(ms / 1e3));
}

/// Builds the pipeline; `scale` multiplies every simulated duration (1.0 = the story's).
pub fn build(seed: u64, scale: f64) -> Etl {
    let mut rng = ChaCha8Rng::seed_from_u64(seed);
    let mut pick = ChaCha8Rng::seed_from_u64(seed.wrapping_add(1));
    let mut ms = |lo: f64, hi: f64| rng.random_range(lo..hi) * scale;
    let mut total = 0.0;
    let mut tasks = 0;

    let load = delayed(|i: u64, t: f64| -> Vec<f64> {
        work(t);
        let mut r = ChaCha8Rng::seed_from_u64(i);
        (0..1000).map(|_| r.random::<f64>()).collect()
    })
    .name("load");
    let load_reference = delayed(|t: f64| -> Vec<f64> {
        work(t);
        (0..1000).map(|i| i as f64 / 1000.0).collect()
    })
    .name("load_reference");
    let process = delayed(|d: Vec<f64>, reference: Vec<f64>, t: f64| -> Vec<f64> {
        work(t);
        d.iter().zip(&reference).map(|(a, b)| a - b).collect()
    })
    .name("process");
    let roll = delayed(|a: Vec<f64>, b: Vec<f64>, c: Vec<f64>, t: f64| -> f64 {
        work(t);
        a.iter().chain(&b).chain(&c).sum::<f64>() / 3.0
    })
    .name("roll");
    let compare = delayed(|a: f64, b: f64, t: f64| -> f64 {
        work(t);
        (a - b).abs()
    })
    .name("compare");
    let reduction = delayed(|xs: Vec<f64>, t: f64| -> f64 {
        work(t);
        xs.iter().sum()
    })
    .name("reduction");

    // Earliest finish time of each call, to compute the critical path as we build.
    let t_ref = ms(50.0, 100.0);
    let reference = load_reference.call(t_ref);
    total += t_ref;
    tasks += 1;

    let mut processed = Vec::new();
    let mut processed_finish = Vec::new();
    for i in 0..100u64 {
        let (t_load, t_proc) = (ms(0.0, 50.0), ms(0.0, 50.0));
        let d = load.call((i, t_load));
        processed.push(process.call((d, &reference, t_proc)));
        processed_finish.push(t_load.max(t_ref) + t_proc);
        total += t_load + t_proc;
        tasks += 2;
    }

    let mut rolled = Vec::new();
    let mut rolled_finish = Vec::new();
    for i in 0..processed.len() - 2 {
        let t = ms(0.0, 20.0);
        rolled.push(roll.call((&processed[i], &processed[i + 1], &processed[i + 2], t)));
        let ready = processed_finish[i..i + 3]
            .iter()
            .cloned()
            .fold(0.0, f64::max);
        rolled_finish.push(ready + t);
        total += t;
        tasks += 1;
    }

    let mut compared = Vec::new();
    let mut compared_finish: f64 = 0.0;
    for _ in 0..200 {
        let a = pick.random_range(0..rolled.len());
        let b = pick.random_range(0..rolled.len());
        let t = ms(0.0, 10.0);
        compared.push(compare.call((&rolled[a], &rolled[b], t)));
        compared_finish = compared_finish.max(rolled_finish[a].max(rolled_finish[b]) + t);
        total += t;
        tasks += 1;
    }

    let t = ms(0.0, 100.0);
    let result = reduction.call((compared, t));
    total += t;
    tasks += 2; // the reduction and the gather of its 200 inputs

    Etl {
        result,
        total_work: Duration::from_secs_f64(total / 1e3),
        critical_path: Duration::from_secs_f64((compared_finish + t) / 1e3),
        tasks,
    }
}

/// Runs the pipeline on `rt` and prints the result, wall time and lower bounds.
pub fn run(rt: &Runtime, seed: u64, scale: f64, options: ComputeOptions) -> brisk::Result<f64> {
    let etl = build(seed, scale);
    let start = Instant::now();
    let value = rt.compute_with(&etl.result, &options)?;
    let wall = start.elapsed();
    let threads = rt.threads() as f64;
    let bound = (etl.total_work.as_secs_f64() / threads).max(etl.critical_path.as_secs_f64());
    println!(
        "result={value:.6} tasks={} threads={} wall_s={:.3} work_s={:.3} work_per_thread_s={:.3} critical_path_s={:.3} efficiency={:.3}",
        etl.tasks,
        rt.threads(),
        wall.as_secs_f64(),
        etl.total_work.as_secs_f64(),
        etl.total_work.as_secs_f64() / threads,
        etl.critical_path.as_secs_f64(),
        bound / wall.as_secs_f64(),
    );
    Ok(value)
}

#[allow(dead_code)]
fn main() -> brisk::Result<()> {
    let threads = std::env::args()
        .nth(1)
        .and_then(|s| s.parse().ok())
        .unwrap_or(2);
    let rt = Runtime::builder().threads(threads).build()?;
    run(
        &rt,
        42,
        1.0,
        ComputeOptions::new().progress(ProgressMode::Auto),
    )?;
    Ok(())
}
