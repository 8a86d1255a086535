//! A join of two generated tables through brisk's hash shuffle, under a memory limit.
//!
//! Two tables of `ROWS` rows each (default 2 000 000; `key`, an integer, a 32-character
//! string) are generated partition by partition inside the tasks, hash-partitioned on `key`
//! into pieces that live in brisk's store (and spill to disk when the memory limit is reached),
//! joined piece by piece, and reduced to a row count and two sums — checked against the values
//! known from how the tables were built. A progress bar shows the run.
//!
//! ```text
//! cargo run --release --example frame_join [ROWS] [MEMORY_LIMIT]
//! ```

use brisk::bench::frame::join_table;
use brisk::frame::{col, len, JoinHow, JoinOptions};
use brisk::prelude::*;
use polars::prelude::ChunkAgg;

fn main() -> brisk::Result<()> {
    // polars' pool: as many threads as brisk's workers (a worker waits while polars' pool runs
    // work it handed over), set before polars is first used.
    let threads = std::thread::available_parallelism().map_or(2, |n| n.get());
    std::env::set_var("POLARS_MAX_THREADS", threads.to_string());
    let rows: usize = std::env::args()
        .nth(1)
        .and_then(|s| s.parse().ok())
        .unwrap_or(2_000_000);
    let limit = std::env::args().nth(2).unwrap_or_else(|| "256MiB".into());
    let rt = Runtime::builder()
        .memory_limit(brisk::sched::parse_bytes(&limit)?)
        .build()?;
    let left = join_table(0, rows, 250_000);
    let right = join_table(1, rows, 250_000);
    let joined = left.join(
        &right,
        &["key"],
        &["key"],
        JoinOptions::new(JoinHow::Inner).broadcast(false),
    )?;
    let summary = joined.agg([len().alias("rows"), col("v").sum(), col("w").sum()])?;
    let opts = ComputeOptions::new().progress(ProgressMode::Always);
    let df = rt.compute_with(&summary, &opts)?;
    println!("{df}");
    let stats = rt.memory_stats();
    println!(
        "memory limit {limit}: store peak {:.0} MiB, spilled {:.0} MiB in {} values",
        stats.peak_bytes as f64 / 1048576.0,
        stats.spilled_bytes as f64 / 1048576.0,
        stats.spill_count
    );
    let want: i64 = (0..rows as i64)
        .map(|k| (3 * k) % 1000 + (7 * k) % 1000)
        .sum();
    let got = df
        .column("v")
        .and_then(|v| v.i64().map(|c| c.sum().unwrap_or(0)))
        .map_err(|e| Error::msg(e.to_string()))?
        + df.column("w")
            .and_then(|w| w.i64().map(|c| c.sum().unwrap_or(0)))
            .map_err(|e| Error::msg(e.to_string()))?;
    println!(
        "checksum {got} (expected {want}): {}",
        if got == want { "OK" } else { "MISMATCH" }
    );
    Ok(())
}
