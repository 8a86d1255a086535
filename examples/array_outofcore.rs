//! An out-of-core reduction: a random array several times bigger than the memory limit is
//! written to a `.npy` file block by block, read back lazily (memory-mapped per block),
//! rechunked from row blocks to column blocks (the pieces spill through the store) and summed
//! over rows, with a progress bar.
//!
//! ```text
//! cargo run --release --example array_outofcore -- [gigabytes] [memory limit] [dir]
//! ```
//! (defaults: 2 GB of data, a 512 MiB limit, the system temp dir).

use brisk::array;
use brisk::prelude::*;

fn main() -> brisk::Result<()> {
    let mut args = std::env::args().skip(1);
    let gb: f64 = args.next().and_then(|a| a.parse().ok()).unwrap_or(2.0);
    let limit = args.next().unwrap_or_else(|| "512 MiB".into());
    let dir = args
        .next()
        .map(std::path::PathBuf::from)
        .unwrap_or_else(std::env::temp_dir);

    let rt = Runtime::builder()
        .memory_limit(limit.as_str())
        .spill_dir(&dir)
        .progress(ProgressMode::Auto)
        .build()?;
    let cols = 10_000usize;
    let rows = ((gb * 1e9) as usize / 8 / cols).max(1);
    // Blocks of ~40 MB: row blocks for writing, column blocks for the reduction.
    let (rb, cb) = ((5_000_000 / cols).max(1), (5_000_000 / rows).max(1));
    let x = array::random::uniform(&[rows, cols], (rb, cols), 7)?;
    println!(
        "data: {x} ({:.1} GB), memory limit {limit}",
        x.nbytes() as f64 / 1e9
    );

    let path = dir.join("brisk-array-outofcore-example.npy");
    let t = std::time::Instant::now();
    x.to_npy(&rt, &path)?;
    println!("wrote {} in {:.1?}", path.display(), t.elapsed());

    let t = std::time::Instant::now();
    let y = array::io::from_npy::<f64>(&path, (rb, cols))?;
    let col_sums = y.rechunk((rows, cb)).sum(0);
    println!("reduction: {col_sums}");
    let sums = rt.compute(&col_sums)?;
    let stats = rt.memory_stats();
    println!(
        "mean of all elements {:.6} (expect ~0.5) in {:.1?}; spilled {} values",
        sums.sum() / (rows * cols) as f64,
        t.elapsed(),
        stats.spill_count
    );
    let _ = std::fs::remove_file(&path);
    Ok(())
}
