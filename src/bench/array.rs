//! `brisk bench array`: the seed-talk array workloads, one line each:
//! `name=<w> wall_s=<f> peak_rss_mib=<f> tasks=<n> result=<f> check=<k:v,…> check_ok=<bool>`.
//!
//! 1. `mean0`: `random((40000, 40000), chunks (2000, 2000)).mean(axis 1)`;
//! 2. `sum`: the same array's total;
//! 3. `dotstd`: `x = random((8000, 8000), (1000, 1000)); (x.dot(x.t() + 1) - x.mean()).std()`
//!    (random rather than ones: on ones every entry is equal and the answer is exactly 0);
//! 4. `xxt`: `x = random((8000, 8000), (1000, 1000)); (x + x.t()).sum()`;
//! 5. `svd`: `(U, S, Vᵀ)` of `random((2_000_000, 50), (100_000, 50))` via tsqr, all three
//!    computed (what `dask.array.linalg.svd` gives);
//! 6. `svd_values`: the singular values alone of the same array (no `Q` is formed);
//! 7. `outofcore`: a random array of `--outofcore-bytes` (16 GB) in row blocks stored to a
//!    `.npy` file in `--dir`, read back, rechunked to column blocks and summed over rows, with
//!    the memory limit `--memory-limit` (2 GiB).
//!
//! `--scale` multiplies the sizes of workloads 1–6 and their blocks alike (the block grid, and
//! so the graph, stays the same; `svd` keeps its 50 columns), for smoke tests.
//! `benches/dask_array.py` runs workloads 1–6 the same way and prints the same line.
//!
//! Every workload runs in a child process (this binary re-executed with `--child <name>`) so
//! that the peak RSS (`VmHWM`) is the workload's own; children run with
//! `MIMALLOC_ALLOW_LARGE_OS_PAGES=0`. `tasks` is the number of tasks the scheduler ran (after
//! culling and fusion), summed over the workload's computations. Wall time includes building
//! the graph. Wall time and peak RSS are taken before the check.
//!
//! The check recomputes the answer outside the graph, generating the random blocks again
//! block by block and reducing them with plain ndarray loops (`recomputed`, `rel_err`), and
//! compares the answer with its expectation for uniform data within six standard deviations
//! (`expect`, `tol`). The SVD is checked by its defining identities: `‖A − U·S·Vᵀ‖ / ‖A‖`,
//! `‖UᵀU − I‖`, `‖VᵀV − I‖`, and `Σ s² = ‖A‖²`, `Σ s⁴ = ‖AᵀA‖²` with `A` generated again.
//! `check_ok=true` when every comparison holds.

use std::path::PathBuf;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Instant;

use ndarray::{s, Array1, Array2, ArrayD, Axis, Dimension};
use rayon::prelude::*;

use crate::array::{self, linalg, random, All};
use crate::error::{Error, Result};
use crate::sched::{ComputeOptions, Event, ProgressMode, Runtime};

/// The workloads, in order.
pub const WORKLOADS: [&str; 7] = [
    "mean0",
    "sum",
    "dotstd",
    "xxt",
    "svd",
    "svd_values",
    "outofcore",
];

/// Columns of the `svd` workloads' array.
pub const SVD_COLS: usize = 50;

/// Relative error allowed between an answer and its recomputation (summation order differs)
/// and in the SVD identities.
pub const EXACT_TOL: f64 = 1e-9;

/// Options of `brisk bench array`.
#[derive(clap::Args, Debug, Clone)]
pub struct Args {
    /// Run only these workloads (repeat or comma-separate); default: all seven.
    #[arg(long, value_delimiter = ',', value_parser = clap::builder::PossibleValuesParser::new(WORKLOADS))]
    pub only: Vec<String>,
    /// Worker threads (default: all cores).
    #[arg(long)]
    pub threads: Option<usize>,
    /// Multiplies the array and block sizes of all workloads but outofcore (e.g. 0.01 for a
    /// smoke test; the block grid stays the same).
    #[arg(long, default_value_t = 1.0)]
    pub scale: f64,
    /// Memory limit of the outofcore workload (e.g. 2GiB, 500MB).
    #[arg(long, alias = "limit", default_value = "2GiB", value_parser = super::parse_size)]
    pub memory_limit: u64,
    /// Directory for the outofcore workload's file and spill files (default: the system
    /// temp dir).
    #[arg(long)]
    pub dir: Option<PathBuf>,
    /// Bytes of the outofcore array (e.g. 16GB).
    #[arg(long, default_value = "16GB", value_parser = super::parse_size)]
    pub outofcore_bytes: u64,
    /// Bytes per block of the outofcore workload (row blocks and column blocks).
    #[arg(long, default_value = "32MB", value_parser = super::parse_size)]
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

/// Array and block sides of the workloads at a scale.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Sizes {
    /// Side and block side of the square array of `mean0` and `sum`.
    pub big: (usize, usize),
    /// Side and block side of the square array of `dotstd` and `xxt`.
    pub mid: (usize, usize),
    /// Rows and rows per block of the `svd` workloads (with [`SVD_COLS`] columns).
    pub svd: (usize, usize),
}

impl Sizes {
    /// The sizes at `scale` (1 is the seed talks' sizes). Blocks are at least 1, arrays at
    /// least one block.
    ///
    /// # Errors
    /// When `scale` is not a positive number.
    pub fn at(scale: f64) -> Result<Sizes> {
        if !(scale.is_finite() && scale > 0.0) {
            return Err(Error::config(format!(
                "--scale must be a positive number, got {scale}"
            )));
        }
        let at = |side: usize, block: usize| {
            let scaled = |n: usize| (n as f64 * scale + 0.5).floor() as usize;
            let b = scaled(block).max(1);
            (scaled(side).max(b), b)
        };
        Ok(Sizes {
            big: at(40_000, 2_000),
            mid: at(8_000, 1_000),
            svd: at(2_000_000, 100_000),
        })
    }
}

/// Runs `brisk bench array`.
///
/// # Errors
/// An unknown workload name, a workload that fails, or one whose check fails (after all
/// wanted workloads have run).
pub fn main(args: Args) -> Result<()> {
    if let Some(w) = &args.child {
        return child(&args, w);
    }
    Sizes::at(args.scale)?;
    let wanted: Vec<&str> = if args.only.is_empty() {
        WORKLOADS.to_vec()
    } else {
        for w in &args.only {
            if !WORKLOADS.contains(&w.as_str()) {
                return Err(Error::input(format!(
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
    let exe = std::env::current_exe()
        .map_err(|e| Error::io("finding this executable to run the workloads", e))?;
    let mut failed = Vec::new();
    for w in wanted {
        let mut cmd = std::process::Command::new(&exe);
        cmd.args(["bench", "array", "--child", w])
            .args(["--scale", &args.scale.to_string()])
            .args(["--memory-limit", &args.memory_limit.to_string()])
            .args(["--outofcore-bytes", &args.outofcore_bytes.to_string()])
            .args([
                "--outofcore-block-bytes",
                &args.outofcore_block_bytes.to_string(),
            ])
            .args(["--seed", &args.seed.to_string()])
            .env("MIMALLOC_ALLOW_LARGE_OS_PAGES", "0");
        if let Some(t) = args.threads {
            cmd.args(["--threads", &t.to_string()]);
        }
        if let Some(d) = &args.dir {
            cmd.arg("--dir").arg(d);
        }
        if args.progress {
            cmd.arg("--progress");
        }
        let status = cmd
            .status()
            .map_err(|e| Error::io(format!("running the {w} workload"), e))?;
        if !status.success() {
            failed.push(w);
        }
    }
    if failed.is_empty() {
        Ok(())
    } else {
        Err(Error::internal(format!(
            "workloads failed or gave wrong results: {}",
            failed.join(", ")
        )))
    }
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
    let mut b = Runtime::builder().threads(args.threads.unwrap_or_else(super::all_cores));
    if w == "outofcore" {
        b = b.memory_limit(args.memory_limit);
        if let Some(d) = &args.dir {
            b = b.spill_dir(d);
        }
    }
    let rt = b.build()?;
    let start = Instant::now();
    let outcome = run(&rt, &opts, args, w)?;
    let wall = start.elapsed().as_secs_f64();
    let peak_rss = super::spill::peak_rss_mib();
    let check = check(args, w, &outcome)?;
    println!(
        "name={w} wall_s={wall:.3} peak_rss_mib={peak_rss:.1} tasks={} result={} check={} \
         check_ok={}",
        tasks.load(Ordering::Relaxed),
        sci(outcome.summary()),
        check.text(),
        check.ok
    );
    if check.ok {
        Ok(())
    } else {
        Err(Error::internal(format!("{w}: the result check failed")))
    }
}

/// What a workload computed, kept for its check.
#[derive(Debug, Clone)]
pub enum Outcome {
    /// `mean0`: the mean of every row.
    RowMeans(Array1<f64>),
    /// `sum` and `xxt`: a total.
    Total(f64),
    /// `dotstd`: a standard deviation.
    Std(f64),
    /// `svd`: the three factors.
    Svd {
        /// Left singular vectors, rows × k.
        u: Array2<f64>,
        /// Singular values, k.
        s: Array1<f64>,
        /// Right singular vectors, k × columns.
        vt: Array2<f64>,
    },
    /// `svd_values`: the singular values.
    Values(Array1<f64>),
    /// `outofcore`: the sum of every column.
    ColumnSums {
        /// One per column.
        sums: Array1<f64>,
        /// Elements of the array.
        elements: usize,
    },
}

impl Outcome {
    /// One number standing for the answer (printed as `result=`): the mean of all elements
    /// (`mean0`, `outofcore`), the total, the deviation, or the largest singular value.
    pub fn summary(&self) -> f64 {
        match self {
            Outcome::RowMeans(m) => m.mean().unwrap_or(f64::NAN),
            Outcome::Total(t) | Outcome::Std(t) => *t,
            Outcome::Svd { s, .. } | Outcome::Values(s) => s.first().copied().unwrap_or(f64::NAN),
            Outcome::ColumnSums { sums, elements } => sums.sum() / *elements as f64,
        }
    }
}

fn dim<D: Dimension>(a: ArrayD<f64>, what: &str) -> Result<ndarray::Array<f64, D>> {
    a.into_dimensionality::<D>()
        .map_err(|e| Error::internal(format!("{what}: unexpected result shape: {e}")))
}

fn scalar(a: ArrayD<f64>) -> f64 {
    a.iter().next().copied().unwrap_or(f64::NAN)
}

/// Runs one workload and returns what it computed.
///
/// # Errors
/// An unknown workload, bad sizes, or any compute error.
pub fn run(rt: &Runtime, opts: &ComputeOptions, args: &Args, w: &str) -> Result<Outcome> {
    let seed = args.seed;
    let sizes = Sizes::at(args.scale)?;
    let (big, big_block) = sizes.big;
    let (mid, mid_block) = sizes.mid;
    let (svd_rows, svd_block) = sizes.svd;
    match w {
        "mean0" => {
            let x = random::uniform(&[big, big], (big_block, big_block), seed)?;
            let m = rt.compute_with(&x.mean(1), opts)?;
            Ok(Outcome::RowMeans(dim(m, w)?))
        }
        "sum" => {
            let x = random::uniform(&[big, big], (big_block, big_block), seed)?;
            Ok(Outcome::Total(scalar(rt.compute_with(&x.sum(All), opts)?)))
        }
        "dotstd" => {
            let x = random::uniform(&[mid, mid], (mid_block, mid_block), seed)?;
            let y = (x.dot(&(x.t() + 1.0)) - x.mean(All)).std(All, 0.0);
            Ok(Outcome::Std(scalar(rt.compute_with(&y, opts)?)))
        }
        "xxt" => {
            let x = random::uniform(&[mid, mid], (mid_block, mid_block), seed)?;
            let y = (&x + &x.t()).sum(All);
            Ok(Outcome::Total(scalar(rt.compute_with(&y, opts)?)))
        }
        "svd" => {
            let x = random::uniform(&[svd_rows, SVD_COLS], (svd_block, SVD_COLS), seed)?;
            let (u, s, vt) = linalg::svd(&x)?;
            let (u, s, vt) = rt.compute_with(&(u, s, vt), opts)?;
            Ok(Outcome::Svd {
                u: dim(u, w)?,
                s: dim(s, w)?,
                vt: dim(vt, w)?,
            })
        }
        "svd_values" => {
            let x = random::uniform(&[svd_rows, SVD_COLS], (svd_block, SVD_COLS), seed)?;
            let s = rt.compute_with(&linalg::svd_values(&x)?, opts)?;
            Ok(Outcome::Values(dim(s, w)?))
        }
        "outofcore" => outofcore(rt, opts, args),
        _ => Err(Error::input(format!(
            "unknown workload {w:?}; choose from {WORKLOADS:?}"
        ))),
    }
}

/// Shape and blocks of the outofcore workload: columns fixed at 50 000, rows from the size,
/// row blocks and column blocks of about `--outofcore-block-bytes`.
#[derive(Debug, Clone, Copy)]
struct OutOfCore {
    rows: usize,
    cols: usize,
    row_block: usize,
    col_block: usize,
}

impl OutOfCore {
    fn of(args: &Args) -> OutOfCore {
        let cols = 50_000usize;
        let rows = ((args.outofcore_bytes / 8) as usize / cols).max(1);
        let bb = args.outofcore_block_bytes as usize;
        OutOfCore {
            rows,
            cols,
            row_block: (bb / (cols * 8)).clamp(1, rows),
            col_block: (bb / (rows * 8)).clamp(1, cols),
        }
    }
}

fn outofcore(rt: &Runtime, opts: &ComputeOptions, args: &Args) -> Result<Outcome> {
    let OutOfCore {
        rows,
        cols,
        row_block,
        col_block,
    } = OutOfCore::of(args);
    let dir = args.dir.clone().unwrap_or_else(std::env::temp_dir);
    std::fs::create_dir_all(&dir)
        .map_err(|e| Error::io(format!("creating {}", dir.display()), e))?;
    let path = dir.join(format!("brisk-array-outofcore-{}.npy", std::process::id()));
    let x = random::uniform(&[rows, cols], (row_block, cols), args.seed)?;
    let result = (|| {
        x.to_npy_with(rt, &path, opts)?;
        let y = array::io::from_npy::<f64>(&path, (row_block, cols))?;
        let z = y.rechunk((rows, col_block)).sum(0);
        Ok(Outcome::ColumnSums {
            sums: dim(rt.compute_with(&z, opts)?, "outofcore")?,
            elements: rows * cols,
        })
    })();
    let _ = std::fs::remove_file(&path);
    result
}

/// The comparisons of one workload's check.
#[derive(Debug, Clone)]
pub struct Check {
    fields: Vec<String>,
    /// Whether every comparison held.
    pub ok: bool,
}

/// A number in the form both this bench and `benches/dask_array.py` print (`1.234568e8`).
fn sci(x: f64) -> String {
    format!("{x:.6e}")
}

impl Check {
    fn new() -> Check {
        Check {
            fields: Vec::new(),
            ok: true,
        }
    }

    /// `k:v,k:v,…` (the `check=` field).
    pub fn text(&self) -> String {
        self.fields.join(",")
    }

    fn value(&mut self, name: &str, v: f64) {
        self.fields.push(format!("{name}:{}", sci(v)));
    }

    /// An error that must be at most `tol` (NaN fails).
    fn small(&mut self, name: &str, err: f64, tol: f64) {
        self.fields.push(format!("{name}:{err:.1e}"));
        self.ok &= err <= tol;
    }

    /// `got` against a recomputation: relative error at most [`EXACT_TOL`].
    fn recomputed(&mut self, got: f64, again: f64) {
        self.value("recomputed", again);
        self.small("rel_err", rel_err(got, again), EXACT_TOL);
    }

    /// `got` within `tol` of `expect`.
    fn expect(&mut self, got: f64, expect: f64, tol: f64) {
        self.value("expect", expect);
        self.value("tol", tol);
        self.ok &= (got - expect).abs() <= tol;
    }

    fn flag(&mut self, name: &str, holds: bool) {
        self.fields.push(format!("{name}:{holds}"));
        self.ok &= holds;
    }
}

fn rel_err(got: f64, want: f64) -> f64 {
    (got - want).abs() / want.abs().max(f64::MIN_POSITIVE)
}

/// `(start, len)` of each block along an axis of `len` cut into blocks of `block`.
fn spans(len: usize, block: usize) -> Vec<(usize, usize)> {
    (0..len)
        .step_by(block.max(1))
        .map(|a| (a, block.min(len - a)))
        .collect()
}

/// Block `(i, j)` of `random::uniform(…, seed)`, of `shape`, generated outside any graph.
pub fn uniform_block(seed: u64, i: usize, j: usize, shape: (usize, usize)) -> Array2<f64> {
    let mut b = Array2::zeros(shape);
    if let Some(data) = b.as_slice_mut() {
        random::fill_words(random::block_key(seed, &[i, j]), 0, data, random::unit_f64);
    }
    b
}

/// The whole `side × side` uniform array with blocks of `block`, generated outside any graph.
fn uniform_square(seed: u64, side: usize, block: usize) -> Array2<f64> {
    let sp = spans(side, block);
    let mut x = Array2::zeros((side, side));
    for (i, &(r0, h)) in sp.iter().enumerate() {
        for (j, &(c0, w)) in sp.iter().enumerate() {
            x.slice_mut(s![r0..r0 + h, c0..c0 + w])
                .assign(&uniform_block(seed, i, j, (h, w)));
        }
    }
    x
}

/// Sum over every block of a `side × side` uniform array, block by block.
fn uniform_total(seed: u64, side: usize, block: usize) -> f64 {
    let sp = spans(side, block);
    let cells: Vec<(usize, usize)> = (0..sp.len())
        .flat_map(|i| (0..sp.len()).map(move |j| (i, j)))
        .collect();
    let sums: Vec<f64> = cells
        .par_iter()
        .map(|&(i, j)| uniform_block(seed, i, j, (sp[i].1, sp[j].1)).sum())
        .collect();
    sums.iter().sum()
}

/// Six standard deviations of the sum of `n` uniform [0, 1) numbers.
fn sum_tol(n: f64) -> f64 {
    6.0 * (n / 12.0).sqrt()
}

/// Checks one workload's outcome (see the module docs).
///
/// # Errors
/// An outcome that does not belong to workload `w`, or bad sizes.
pub fn check(args: &Args, w: &str, outcome: &Outcome) -> Result<Check> {
    let seed = args.seed;
    let sizes = Sizes::at(args.scale)?;
    let mut c = Check::new();
    match (w, outcome) {
        ("mean0", Outcome::RowMeans(got)) => {
            let (side, block) = sizes.big;
            let sp = spans(side, block);
            let rows: Vec<Vec<f64>> = (0..sp.len())
                .into_par_iter()
                .map(|i| {
                    let mut acc = vec![0.0; sp[i].1];
                    for (j, &(_, wj)) in sp.iter().enumerate() {
                        let b = uniform_block(seed, i, j, (sp[i].1, wj));
                        for (a, row) in acc.iter_mut().zip(b.rows()) {
                            *a += row.sum();
                        }
                    }
                    acc
                })
                .collect();
            let again: Vec<f64> = rows.concat().iter().map(|s| s / side as f64).collect();
            c.flag("len_ok", again.len() == got.len());
            c.small(
                "recomputed_max_rel_err",
                max_rel_err(got.iter(), again.iter()),
                EXACT_TOL,
            );
            let n = (side * side) as f64;
            c.expect(outcome.summary(), 0.5, sum_tol(n) / n);
        }
        ("sum", Outcome::Total(got)) => {
            let (side, block) = sizes.big;
            c.recomputed(*got, uniform_total(seed, side, block));
            let n = (side * side) as f64;
            c.expect(*got, n / 2.0, sum_tol(n));
        }
        ("xxt", Outcome::Total(got)) => {
            let (side, block) = sizes.mid;
            // Every element appears twice: once as x[i, j], once as x.t()[j, i].
            c.recomputed(*got, 2.0 * uniform_total(seed, side, block));
            let n = (side * side) as f64;
            c.expect(*got, n, 2.0 * sum_tol(n));
        }
        ("dotstd", Outcome::Std(got)) => {
            let (n, block) = sizes.mid;
            c.recomputed(*got, dotstd_again(seed, n, block));
            // For x uniform, entry (i, j) of x·(xᵀ + 1) is Σ_k x_ik·x_jk + Σ_k x_ik, whose
            // variance over i ≠ j is 31n/144; the diagonal, n/12 higher, adds n/144. So the
            // deviation is about √(2n/9), with a spread of ~0.65/√n of it (simulated).
            let nf = n as f64;
            let expect = (2.0 * nf / 9.0).sqrt();
            c.expect(*got, expect, expect * 4.0 / nf.sqrt());
        }
        ("svd", Outcome::Svd { u, s, vt }) => {
            let (rows, block) = sizes.svd;
            svd_identities(&mut c, seed, rows, block, s, Some((u, vt)));
        }
        ("svd_values", Outcome::Values(s)) => {
            let (rows, block) = sizes.svd;
            svd_identities(&mut c, seed, rows, block, s, None);
        }
        ("outofcore", Outcome::ColumnSums { sums: got, .. }) => {
            let l = OutOfCore::of(args);
            let sp = spans(l.rows, l.row_block);
            let parts: Vec<Array1<f64>> = (0..sp.len())
                .into_par_iter()
                .map(|i| uniform_block(seed, i, 0, (sp[i].1, l.cols)).sum_axis(Axis(0)))
                .collect();
            let mut again = Array1::<f64>::zeros(l.cols);
            for p in &parts {
                again += p;
            }
            c.flag("len_ok", again.len() == got.len());
            c.small(
                "recomputed_max_rel_err",
                max_rel_err(got.iter(), again.iter()),
                EXACT_TOL,
            );
            let n = (l.rows * l.cols) as f64;
            c.expect(outcome.summary(), 0.5, sum_tol(n) / n);
        }
        _ => {
            return Err(Error::internal(format!(
                "no check for workload {w:?} with {outcome:?}"
            )))
        }
    }
    Ok(c)
}

/// The largest difference between `got` and `again`, relative to the largest `|again|`.
fn max_rel_err<'a>(
    got: impl Iterator<Item = &'a f64>,
    again: impl Iterator<Item = &'a f64> + Clone,
) -> f64 {
    let scale = again.clone().fold(0f64, |m, v| m.max(v.abs()));
    let worst = got.zip(again).fold(0f64, |m, (g, a)| m.max((g - a).abs()));
    worst / scale
}

/// `(x.dot(x.t() + 1) - x.mean()).std()` for the `dotstd` array, outside the graph: the whole
/// `x` at once, `x·xᵀ` by row panels with faer, plus the row sums, and the deviation from
/// shifted sums (the shift is near the mean, so nothing cancels).
fn dotstd_again(seed: u64, n: usize, block: usize) -> f64 {
    let x = uniform_square(seed, n, block);
    let row_sums = x.sum_axis(Axis(1));
    let mean = x.sum() / (n * n) as f64;
    let shift = 0.75 * n as f64;
    let panels: Vec<(f64, f64)> = spans(n, block)
        .into_par_iter()
        .map(|(r0, h)| {
            let mut p = Array2::<f64>::zeros((h, n));
            linalg::gemm(&mut p, x.slice(s![r0..r0 + h, ..]), x.t(), false);
            let (mut s1, mut s2) = (0.0, 0.0);
            for (i, row) in p.rows().into_iter().enumerate() {
                let add = row_sums[r0 + i] - mean - shift;
                for &v in row {
                    let z = v + add;
                    s1 += z;
                    s2 += z * z;
                }
            }
            (s1, s2)
        })
        .collect();
    let count = (n * n) as f64;
    let s1: f64 = panels.iter().map(|p| p.0).sum();
    let s2: f64 = panels.iter().map(|p| p.1).sum();
    let m = s1 / count;
    (s2 / count - m * m).max(0.0).sqrt()
}

/// The SVD checks against `A` generated again block by block: `Σ s² = ‖A‖²`,
/// `Σ s⁴ = ‖AᵀA‖²`, `s` sorted and non-negative, and with the vectors `‖A − U·S·Vᵀ‖ / ‖A‖`,
/// `‖UᵀU − I‖` and `‖Vᵀ·V − I‖` (largest entry).
fn svd_identities(
    c: &mut Check,
    seed: u64,
    rows: usize,
    block: usize,
    s: &Array1<f64>,
    vectors: Option<(&Array2<f64>, &Array2<f64>)>,
) {
    let sp = spans(rows, block);
    // Per block: AᵀA, ‖A‖², ‖A − U·S·Vᵀ‖².
    let parts: Vec<(Array2<f64>, f64, f64)> = sp
        .par_iter()
        .enumerate()
        .map(|(i, &(r0, h))| {
            let a = uniform_block(seed, i, 0, (h, SVD_COLS));
            let gram = a.t().dot(&a);
            let norm2 = a.iter().map(|v| v * v).sum();
            let resid2 = vectors.map_or(0.0, |(u, vt)| {
                let us = &u.slice(s![r0..r0 + h, ..]) * s;
                let back = us.dot(vt);
                a.iter().zip(&back).map(|(x, y)| (x - y) * (x - y)).sum()
            });
            (gram, norm2, resid2)
        })
        .collect();
    let mut gram = Array2::<f64>::zeros((SVD_COLS, SVD_COLS));
    let (mut norm2, mut resid2) = (0.0, 0.0);
    for (g, n, r) in &parts {
        gram += g;
        norm2 += n;
        resid2 += r;
    }
    let s2: f64 = s.iter().map(|v| v * v).sum();
    let s4: f64 = s.iter().map(|v| v.powi(4)).sum();
    let gram2: f64 = gram.iter().map(|v| v * v).sum();
    c.value("s_max", s.first().copied().unwrap_or(f64::NAN));
    c.small("sum_s2_rel_err", rel_err(s2, norm2), EXACT_TOL);
    c.small("sum_s4_rel_err", rel_err(s4, gram2), EXACT_TOL);
    c.flag(
        "sorted",
        s.len() == SVD_COLS.min(rows)
            && s.iter().all(|&v| v >= 0.0)
            && s.windows(2).into_iter().all(|w| w[0] >= w[1]),
    );
    if let Some((u, vt)) = vectors {
        c.small("recon_rel_err", (resid2 / norm2).sqrt(), EXACT_TOL);
        c.small("u_orth_err", off_identity(&u.t().dot(u)), EXACT_TOL);
        c.small("v_orth_err", off_identity(&vt.dot(&vt.t())), EXACT_TOL);
    }
}

/// Largest entry of `m − I`.
fn off_identity(m: &Array2<f64>) -> f64 {
    m.indexed_iter().fold(0f64, |worst, ((i, j), &v)| {
        let want = if i == j { 1.0 } else { 0.0 };
        worst.max((v - want).abs())
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn args(scale: f64) -> Args {
        Args {
            only: Vec::new(),
            threads: Some(2),
            scale,
            memory_limit: 64 << 20,
            dir: None,
            outofcore_bytes: 8_000_000,
            outofcore_block_bytes: 400_000,
            seed: 7,
            progress: false,
            child: None,
        }
    }

    #[test]
    fn sizes_scale_arrays_and_blocks_alike() {
        let s = Sizes::at(0.01).unwrap();
        assert_eq!(s.big, (400, 20));
        assert_eq!(s.mid, (80, 10));
        assert_eq!(s.svd, (20_000, 1_000));
        assert_eq!(Sizes::at(1.0).unwrap().big, (40_000, 2_000));
        assert!(Sizes::at(0.0).is_err());
        assert!(Sizes::at(f64::NAN).is_err());
    }

    #[test]
    fn blocks_generated_outside_the_graph_are_the_arrays_blocks() {
        let rt = Runtime::builder().threads(2).build().unwrap();
        let x = random::uniform(&[7, 5], (3, 2), 9).unwrap();
        let got = rt.compute(&x).unwrap();
        let got = got.into_dimensionality::<ndarray::Ix2>().unwrap();
        let sp0 = spans(7, 3);
        let sp1 = spans(5, 2);
        for (i, &(r0, h)) in sp0.iter().enumerate() {
            for (j, &(c0, w)) in sp1.iter().enumerate() {
                let b = uniform_block(9, i, j, (h, w));
                assert_eq!(got.slice(s![r0..r0 + h, c0..c0 + w]), b, "block ({i}, {j})");
            }
        }
    }

    #[test]
    fn every_workload_passes_its_check_at_a_small_scale() {
        let rt = Runtime::builder().threads(2).build().unwrap();
        let a = args(0.002);
        for w in WORKLOADS {
            let outcome = run(&rt, &ComputeOptions::new(), &a, w).unwrap();
            let c = check(&a, w, &outcome).unwrap();
            assert!(c.ok, "{w}: {}", c.text());
        }
    }

    #[test]
    fn a_wrong_answer_fails_its_check() {
        let a = args(0.002);
        let rt = Runtime::builder().threads(2).build().unwrap();
        let Outcome::Total(t) = run(&rt, &ComputeOptions::new(), &a, "sum").unwrap() else {
            panic!("sum gives a total")
        };
        let off = check(&a, "sum", &Outcome::Total(t * (1.0 + 1e-6))).unwrap();
        assert!(!off.ok, "{}", off.text());
        let Outcome::Svd { u, s, vt } = run(&rt, &ComputeOptions::new(), &a, "svd").unwrap() else {
            panic!("svd gives factors")
        };
        let mut flipped = vt.clone();
        flipped.row_mut(0).mapv_inplace(|v| -v);
        let bad = Outcome::Svd { u, s, vt: flipped };
        let c = check(&a, "svd", &bad).unwrap();
        assert!(!c.ok && c.text().contains("recon_rel_err"), "{}", c.text());
        // dotstd on ones (the old workload) is exactly 0, far from the random expectation.
        let c = check(&a, "dotstd", &Outcome::Std(0.0)).unwrap();
        assert!(!c.ok, "{}", c.text());
    }
}
