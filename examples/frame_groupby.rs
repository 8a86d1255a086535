//! A group-by over a directory of CSV files with `brisk::frame`.
//!
//! Writes a small timeseries dataset (4 files × 200 000 rows: timestamp, id, name, x, y) to a
//! temporary directory — or uses `DIR` if given — then computes the mean and standard deviation
//! of `x` per name over the rows with `y > 0`, showing a progress bar.
//!
//! ```text
//! cargo run --release --example frame_groupby [DIR]
//! ```
//!
//! Each CSV file is cut into byte-range partitions; each partition task parses only the columns
//! the query reads (`name`, `x`, `y`), filters, and aggregates its rows; partial results are
//! merged in a tree and finalized into one small `DataFrame`.

use brisk::bench::frame::{gen_main, Gen};
use brisk::frame::{self, col, len, lit, CsvOptions};
use brisk::prelude::*;

fn main() -> brisk::Result<()> {
    // polars' pool: as many threads as brisk's workers (a worker waits while polars' pool runs
    // work it handed over), set before polars is first used.
    let threads = std::thread::available_parallelism().map_or(2, |n| n.get());
    std::env::set_var("POLARS_MAX_THREADS", threads.to_string());
    let tmp = tempfile::tempdir().map_err(|e| Error::msg(e.to_string()))?;
    let dir = match std::env::args().nth(1) {
        Some(d) => std::path::PathBuf::from(d),
        None => {
            let dir = tmp.path().join("ts");
            gen_main(Gen::Timeseries {
                dir: dir.clone(),
                files: 4,
                rows: 200_000,
                seed: 1,
            })?;
            dir
        }
    };
    let rt = Runtime::builder().build()?;
    let data = frame::read_csv(
        &format!("{}/*.csv", dir.display()),
        CsvOptions::default().partition_size(4 << 20),
    )?;
    println!(
        "{} partitions, columns {:?}",
        data.num_partitions(),
        data.columns()
    );
    let query = data
        .filter(col("y").gt(lit(0.0)))?
        .group_by(["name"])
        .agg([
            col("x").mean().alias("mean_x"),
            col("x").std(1).alias("std_x"),
            len().alias("rows"),
        ])?;
    let opts = ComputeOptions::new().progress(ProgressMode::Always);
    let result = rt.compute_with(&query, &opts)?;
    let result = result
        .sort(["name"], Default::default())
        .map_err(|e| Error::msg(e.to_string()))?;
    println!("{}", result.head(Some(10)));
    Ok(())
}
