//! `brisk bench array`: the seed-talk array workloads (issue 4), one line each:
//! `name=<w> wall_s=<f> peak_rss_mib=<f> tasks=<n>`.
//!
//! 1. `mean0`: `random((40000, 40000), chunks (2000, 2000)).mean(axis 1)`;
//! 2. `sum`: the same array's total;
//! 3. `dotstd`: `x = ones((8000, 8000), (1000, 1000)); (x.dot(x.t() + 1) - x.mean()).std()`;
//! 4. `xxt`: `x = random((8000, 8000), (1000, 1000)); (x + x.t()).sum()`;
//! 5. `svd`: singular values of `random((2_000_000, 50), (100_000, 50))` via tsqr;
//! 6. `outofcore`: a random array of `--outofcore-bytes` (16 GB) in row blocks stored to a
//!    `.npy` file in `--dir`, read back, rechunked to column blocks and summed over rows, with
//!    the memory limit `--limit` (2 GiB).
//!
//! Every workload runs in a child process (this binary re-executed with `--child <name>`) so
//! that the peak RSS (`VmHWM`) is the workload's own; children run with
//! `MIMALLOC_ALLOW_LARGE_OS_PAGES=0`. `tasks` is the number of tasks the scheduler ran (after
//! culling and fusion), summed over the workload's computations. Wall time includes building
//! the graph.

use std::path::PathBuf;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Instant;

use crate::array::{self, linalg, random, All};
use crate::error::{Error, Result};
use crate::sched::{ComputeOptions, Event, ProgressMode, Runtime};

/// The workloads, in order.
pub const WORKLOADS: [&str; 6] = ["mean0", "sum", "dotstd", "xxt", "svd", "outofcore"];

/// Options of `brisk bench array`.
#[derive(clap::Args, Debug, Clone)]
pub struct Args {
    /// Run only these workloads (repeat or comma-separate); default: all six.
    #[arg(long, value_delimiter = ',')]
    pub only: Vec<String>,
    /// Worker threads.
    #[arg(long, default_value_t = 2)]
    pub threads: usize,
    /// Memory limit of the outofcore workload.
    #[arg(long, default_value = "2 GiB")]
    pub limit: String,
    /// Directory for the outofcore workload's file and spill files (default: the system
    /// temp dir).
    #[arg(long)]
    pub dir: Option<PathBuf>,
    /// Bytes of the outofcore array.
    #[arg(long, default_value_t = 16_000_000_000)]
    pub outofcore_bytes: u64,
    /// Bytes per block of the outofcore workload (row blocks and column blocks).
    #[arg(long, default_value_t = 32_000_000)]
    pub outofcore_block_bytes: u64,
    /// Seed of the random arrays.
    #[arg(long, default_value_t = 42)]
    pub seed: u64,
    /// Show a progress bar (outofcore).
    #[arg(long)]
    pub progress: bool,
    /// Internal: run one workload in this process.
    #[arg(long, hide = true)]
    pub child: Option<String>,
}

/// Runs `brisk bench array`.
pub fn main(args: Args) -> Result<()> {
    if let Some(w) = &args.child {
        return child(&args, w);
    }
    let wanted: Vec<&str> = if args.only.is_empty() {
        WORKLOADS.to_vec()
    } else {
        for w in &args.only {
            if !WORKLOADS.contains(&w.as_str()) {
                return Err(Error::msg(format!(
                    "unknown workload {w:?}; choose from {WORKLOADS:?}"
                )));
            }
        }
        WORKLOADS
            .iter()
            .copied()
            .filter(|w| args.only.iter().any(|o| o == w))
            .collect()
    };
    let exe = std::env::current_exe().map_err(|e| Error::msg(format!("current_exe: {e}")))?;
    for w in wanted {
        let mut cmd = std::process::Command::new(&exe);
        cmd.args(["bench", "array", "--child", w])
            .args(["--threads", &args.threads.to_string()])
            .args(["--limit", &args.limit])
            .args(["--outofcore-bytes", &args.outofcore_bytes.to_string()])
            .args([
                "--outofcore-block-bytes",
                &args.outofcore_block_bytes.to_string(),
            ])
            .args(["--seed", &args.seed.to_string()])
            .env("MIMALLOC_ALLOW_LARGE_OS_PAGES", "0");
        if let Some(d) = &args.dir {
            cmd.arg("--dir").arg(d);
        }
        if args.progress {
            cmd.arg("--progress");
        }
        let status = cmd
            .status()
            .map_err(|e| Error::msg(format!("cannot run the {w} workload: {e}")))?;
        if !status.success() {
            return Err(Error::msg(format!("workload {w} failed ({status})")));
        }
    }
    Ok(())
}

fn child(args: &Args, w: &str) -> Result<()> {
    let tasks = Arc::new(AtomicUsize::new(0));
    let t2 = Arc::clone(&tasks);
    let hook = Arc::new(move |e: &Event<'_>| {
        if let Event::RunStarted { tasks, .. } = e {
            t2.fetch_add(*tasks, Ordering::Relaxed);
        }
    });
    let mut opts = ComputeOptions::new().hook(hook);
    if args.progress {
        opts = opts.progress(ProgressMode::Auto);
    }
    let mut b = Runtime::builder().threads(args.threads);
    if w == "outofcore" {
        b = b.memory_limit(args.limit.as_str());
        if let Some(d) = &args.dir {
            b = b.spill_dir(d);
        }
    }
    let rt = b.build()?;
    let start = Instant::now();
    let check = run(&rt, &opts, args, w)?;
    let wall = start.elapsed().as_secs_f64();
    eprintln!("{w}: result check {check}");
    println!(
        "name={w} wall_s={wall:.3} peak_rss_mib={:.1} tasks={}",
        super::spill::peak_rss_mib(),
        tasks.load(Ordering::Relaxed)
    );
    Ok(())
}

/// Runs one workload; returns a number derived from its result (printed to stderr).
pub fn run(rt: &Runtime, opts: &ComputeOptions, args: &Args, w: &str) -> Result<f64> {
    let seed = args.seed;
    match w {
        "mean0" => {
            let x = random::uniform(&[40000, 40000], (2000, 2000), seed)?;
            let m = rt.compute_with(&x.mean(1), opts)?;
            Ok(m.mean().unwrap_or(f64::NAN))
        }
        "sum" => {
            let x = random::uniform(&[40000, 40000], (2000, 2000), seed)?;
            let s = rt.compute_with(&x.sum(All), opts)?;
            Ok(s.sum())
        }
        "dotstd" => {
            let x = array::ones::<f64>(&[8000, 8000], (1000, 1000))?;
            let y = (x.dot(&(x.t() + 1.0)) - x.mean(All)).std(All, 0.0);
            Ok(rt.compute_with(&y, opts)?.sum())
        }
        "xxt" => {
            let x = random::uniform(&[8000, 8000], (1000, 1000), seed)?;
            let y = (&x + &x.t()).sum(All);
            Ok(rt.compute_with(&y, opts)?.sum())
        }
        "svd" => {
            let x = random::uniform(&[2_000_000, 50], (100_000, 50), seed)?;
            let s = linalg::svd_values(&x)?;
            let s = rt.compute_with(&s, opts)?;
            Ok(s.first().copied().unwrap_or(f64::NAN))
        }
        "outofcore" => outofcore(rt, opts, args),
        _ => Err(Error::msg(format!("unknown workload {w:?}"))),
    }
}

fn outofcore(rt: &Runtime, opts: &ComputeOptions, args: &Args) -> Result<f64> {
    // Columns fixed at 50 000; rows from the size. Row blocks and column blocks of about
    // `--outofcore-block-bytes`.
    let cols = 50_000usize;
    let rows = ((args.outofcore_bytes / 8) as usize / cols).max(1);
    let bb = args.outofcore_block_bytes as usize;
    let row_block = (bb / (cols * 8)).clamp(1, rows);
    let col_block = (bb / (rows * 8)).clamp(1, cols);
    let dir = args.dir.clone().unwrap_or_else(std::env::temp_dir);
    std::fs::create_dir_all(&dir).map_err(|e| Error::msg(format!("{}: {e}", dir.display())))?;
    let path = dir.join(format!("brisk-array-outofcore-{}.npy", std::process::id()));
    let x = random::uniform(&[rows, cols], (row_block, cols), args.seed)?;
    let result = (|| {
        x.to_npy_with(rt, &path, opts)?;
        let y = array::io::from_npy::<f64>(&path, (row_block, cols))?;
        let z = y.rechunk((rows, col_block)).sum(0);
        let s = rt.compute_with(&z, opts)?;
        Ok(s.sum() / (rows * cols) as f64)
    })();
    let _ = std::fs::remove_file(&path);
    result
}
