//! `brisk bench frame`, `brisk bench frame-join` and `brisk gen`: the frame workloads.
//!
//! `brisk gen timeseries --dir DIR --files 20 --rows 2500000` writes CSV files with columns
//! `timestamp` (1 s apart from 2000-01-01, sorted across files), `id` (Poisson, mean 1000),
//! `name` (one of the 676 `[A-Z][a-z]ice`), `x`, `y` (uniform −1..1). Files are written in
//! parallel through polars' CSV writer, so they are what polars' `write_csv` writes: floats
//! with up to 17 significant digits, `2000-01-01T00:00:00.000` timestamps.
//!
//! `brisk bench frame --dir DIR` runs the seven queries below ([`QUERIES`]), each in a child process
//! (the binary re-executed with a hidden flag) so that its peak RSS (`VmHWM`) is its own, and
//! prints `query=<q> engine=<e> wall_s=<f> peak_rss_mib=<f> check=<checksum>`. Engines:
//! `brisk` (this crate's frames; CSV parsing runs on brisk's workers themselves, and the child
//! runs with `POLARS_MAX_THREADS` = threads: a worker calling a polars kernel that uses polars'
//! pool waits for it, so busy threads stay at `threads`) and `polars` (polars' own streaming engine in
//! the same binary, `POLARS_MAX_THREADS` = threads: a same-build baseline). The checksum is the
//! sum of the result's value column, so engines can be compared; with `--engine both` a line
//! `query=<q> checks=agree|DIFFER` follows each query.
//!
//! `brisk bench frame-join --rows N --memory-limit 2GiB` joins two generated tables of `N`
//! rows each (key, an integer, a 32-byte string) on a high-cardinality key through the hash
//! shuffle, with the runtime's memory limit; every key matches exactly once, so the expected
//! row count and checksum are known in closed form and checked.

use std::io::{BufWriter, Write};
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Instant;

use polars::prelude::*;
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;

use crate::frame::{self, CsvOptions, Frame, JoinHow, JoinOptions};
use crate::sched::{ComputeOptions, ProgressMode, Runtime};
use crate::{Error, Result};

/// The queries, in order.
pub const QUERIES: [&str; 7] = [
    "groupby_name_mean",
    "groupby_month_var",
    "filter_groupby_id_sum",
    "resample_1h_mean",
    "rolling_100_mean_sum",
    "sort_x_head",
    "join_names",
];

/// Options of `brisk bench frame`.
#[derive(clap::Args, Debug)]
pub struct Args {
    /// Directory of timeseries CSVs (from `brisk gen timeseries`).
    #[arg(long)]
    pub dir: PathBuf,
    /// Which engine runs the queries.
    #[arg(long, value_enum, default_value_t = Engine::Both)]
    pub engine: Engine,
    /// Worker threads (brisk) and polars threads (default: all cores).
    #[arg(long)]
    pub threads: Option<usize>,
    /// Run only these queries (repeat or comma-separate); default: all seven.
    #[arg(long, value_delimiter = ',', value_parser = clap::builder::PossibleValuesParser::new(QUERIES))]
    pub queries: Vec<String>,
    /// CSV partition size in MiB (brisk; `read_csv`'s default).
    #[arg(long, default_value_t = 32)]
    pub partition_mib: u64,
    /// Runs one query in this process (used by the parent; prints one line).
    #[arg(long, hide = true)]
    pub child: Option<String>,
}

/// Options of `brisk bench frame-join`.
#[derive(clap::Args, Debug)]
pub struct JoinArgs {
    /// Rows per table (100M ≈ 6 GB in memory per table).
    #[arg(long, default_value_t = 100_000_000)]
    pub rows: usize,
    /// Rows per partition.
    #[arg(long, default_value_t = 1_000_000)]
    pub partition_rows: usize,
    /// The runtime's memory limit (e.g. 2GiB, 500MB).
    #[arg(long, alias = "limit", default_value = "2GiB", value_parser = super::parse_size)]
    pub memory_limit: u64,
    /// Worker threads (default: all cores).
    #[arg(long)]
    pub threads: Option<usize>,
    /// Directory for spill files (default: the runtime's).
    #[arg(long)]
    pub spill_dir: Option<PathBuf>,
    /// Show a progress bar.
    #[arg(long)]
    pub progress: bool,
    /// Print managed bytes and resident size every half second on stderr.
    #[arg(long)]
    pub trace_memory: bool,
}

/// The engines of `brisk bench frame`.
#[derive(clap::ValueEnum, Clone, Copy, Debug, PartialEq, Eq)]
pub enum Engine {
    /// This crate's frames.
    Brisk,
    /// polars' own streaming engine, in this binary.
    Polars,
    /// Each engine in turn, then whether their checksums agree.
    Both,
}

impl Engine {
    /// The name on the command line and in the output lines.
    pub fn name(self) -> &'static str {
        match self {
            Engine::Brisk => "brisk",
            Engine::Polars => "polars",
            Engine::Both => "both",
        }
    }
}

/// `brisk gen ...`: data generators.
#[derive(clap::Subcommand, Debug)]
pub enum Gen {
    /// Timeseries CSVs: timestamp, id, name, x, y.
    Timeseries {
        /// Output directory (created).
        #[arg(long)]
        dir: PathBuf,
        /// Number of files.
        #[arg(long, default_value_t = 20)]
        files: usize,
        /// Rows per file.
        #[arg(long, default_value_t = 2_500_000)]
        rows: usize,
        /// Random seed.
        #[arg(long, default_value_t = 42)]
        seed: u64,
    },
    /// The two join tables of `bench frame-join`, as Parquet files (one per partition).
    JoinTables {
        /// Output directory (`left/`, `right/` are created in it).
        #[arg(long)]
        dir: PathBuf,
        /// Rows per table.
        #[arg(long, default_value_t = 10_000_000)]
        rows: usize,
        /// Rows per file.
        #[arg(long, default_value_t = 1_000_000)]
        partition_rows: usize,
    },
}

// ---------------------------------------------------------------------------------------------
// Generators.

/// The 676 names `[A-Z][a-z]ice` (`Aaice`, `Abice`, …, `Zzice`).
pub fn names() -> Vec<String> {
    let mut out = Vec::with_capacity(676);
    for a in b'A'..=b'Z' {
        for b in b'a'..=b'z' {
            out.push(format!("{}{}ice", a as char, b as char));
        }
    }
    out
}

const EPOCH_2000_MS: i64 = 946_684_800_000;

/// One timestamp file's rows: `timestamp` (milliseconds, 1 s apart, continuing the files
/// before it), `id` (Poisson, mean 1000), `name`, `x`, `y` (uniform −1..1).
fn timeseries_frame(file: usize, rows: usize, seed: u64) -> Result<DataFrame> {
    let names = names();
    let mut rng = ChaCha8Rng::seed_from_u64(seed ^ (file as u64).wrapping_mul(0x9E37_79B9));
    let poisson = rand_distr::Poisson::new(1000.0f64)
        .map_err(|e| Error::internal(format!("gen timeseries: poisson: {e}")))?;
    let start = EPOCH_2000_MS + (file * rows) as i64 * 1000;
    let timestamps: Vec<i64> = (0..rows as i64).map(|r| start + r * 1000).collect();
    let mut ids = Vec::with_capacity(rows);
    let mut name_col = Vec::with_capacity(rows);
    let mut xs = Vec::with_capacity(rows);
    let mut ys = Vec::with_capacity(rows);
    for _ in 0..rows {
        let id: f64 = rng.sample(poisson);
        ids.push(id as i64);
        name_col.push(names[rng.random_range(0..names.len())].as_str());
        xs.push(rng.random_range(-1.0f64..=1.0));
        ys.push(rng.random_range(-1.0f64..=1.0));
    }
    let timestamp = Int64Chunked::from_vec("timestamp".into(), timestamps)
        .into_datetime(TimeUnit::Milliseconds, None)
        .into_column();
    DataFrame::new(
        rows,
        vec![
            timestamp,
            Column::new("id".into(), ids),
            Column::new("name".into(), name_col),
            Column::new("x".into(), xs),
            Column::new("y".into(), ys),
        ],
    )
    .map_err(|e| Error::internal(format!("gen timeseries: {e}")))
}

/// Writes one timeseries file through polars' CSV writer (what `write_csv` writes: floats in
/// their shortest round-trip form, `T` timestamps with milliseconds); returns its bytes.
fn gen_timeseries_file(path: &Path, file: usize, rows: usize, seed: u64) -> Result<u64> {
    let mut df = timeseries_frame(file, rows, seed)?;
    let what = || format!("gen timeseries: writing {}", path.display());
    let f = std::fs::File::create(path).map_err(|e| Error::io(what(), e))?;
    let mut w = BufWriter::with_capacity(1 << 20, f);
    CsvWriter::new(&mut w)
        .include_header(true)
        .finish(&mut df)
        .map_err(|e| Error::input(format!("{}: {e}", what())))?;
    w.flush().map_err(|e| Error::io(what(), e))?;
    let len = std::fs::metadata(path)
        .map_err(|e| Error::io(what(), e))?
        .len();
    Ok(len)
}

/// Key permutation for the join tables: `i ↦ i·p mod n` with `p` coprime to `n`.
fn perm_mult(n: u64, salt: u64) -> u64 {
    fn gcd(a: u64, b: u64) -> u64 {
        if b == 0 {
            a
        } else {
            gcd(b, a % b)
        }
    }
    let mut p = (0x9E37_79B9_7F4A_7C15u64 ^ salt) % n.max(2);
    while gcd(p, n) != 1 {
        p += 1;
    }
    p
}

/// Rows `[start, end)` of join table `side` (0 left, 1 right) of `n` rows: `key` (a
/// permutation of `0..n`), `v` (left: `3·key mod 1000`, right: `7·key mod 1000`), `pad`
/// (32 hex characters).
pub fn join_table_part(side: u8, n: usize, start: usize, end: usize) -> PolarsResult<DataFrame> {
    let nn = n as u64;
    let p = perm_mult(nn, side as u64 * 0x1234_5678) as u128;
    let mut key = Vec::with_capacity(end - start);
    let mut v = Vec::with_capacity(end - start);
    let mut pad = Vec::with_capacity(end - start);
    let mul = if side == 0 { 3 } else { 7 };
    for i in start..end {
        let k = ((i as u128 * p) % nn as u128) as i64;
        key.push(k);
        v.push((k * mul) % 1000);
        pad.push(format!(
            "{:032x}",
            (k as u64).wrapping_mul(0x2545_F491_4F6C_DD1D) as u128 * 3
        ));
    }
    let vname = if side == 0 { "v" } else { "w" };
    DataFrame::new(
        end - start,
        vec![
            Column::new("key".into(), key),
            Column::new(vname.into(), v),
            Column::new(if side == 0 { "pad" } else { "pad_r" }.into(), pad),
        ],
    )
}

fn join_schema(side: u8) -> Schema {
    Schema::from_iter([
        Field::new("key".into(), DataType::Int64),
        Field::new(if side == 0 { "v" } else { "w" }.into(), DataType::Int64),
        Field::new(
            if side == 0 { "pad" } else { "pad_r" }.into(),
            DataType::String,
        ),
    ])
}

/// The generated join table as a frame (partitions generated inside their tasks).
pub fn join_table(side: u8, rows: usize, partition_rows: usize) -> Frame {
    let pr = partition_rows.max(1);
    let parts = rows.div_ceil(pr);
    frame::from_fn(parts, join_schema(side), move |i| {
        join_table_part(side, rows, i * pr, ((i + 1) * pr).min(rows))
    })
}

/// Runs `brisk gen ...`.
pub fn gen_main(gen: Gen) -> Result<()> {
    match gen {
        Gen::Timeseries {
            dir,
            files,
            rows,
            seed,
        } => {
            std::fs::create_dir_all(&dir)
                .map_err(|e| Error::io(format!("gen timeseries: creating {}", dir.display()), e))?;
            let t = Instant::now();
            let next = std::sync::atomic::AtomicUsize::new(0);
            let threads = std::thread::available_parallelism().map_or(2, |n| n.get());
            let total = std::sync::atomic::AtomicU64::new(0);
            let failed = parking_lot::Mutex::new(None);
            std::thread::scope(|s| {
                for _ in 0..threads {
                    s.spawn(|| loop {
                        let i = next.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                        if i >= files {
                            break;
                        }
                        let path = dir.join(format!("ts-{i:03}.csv"));
                        match gen_timeseries_file(&path, i, rows, seed) {
                            Ok(b) => {
                                total.fetch_add(b, std::sync::atomic::Ordering::Relaxed);
                            }
                            Err(e) => *failed.lock() = Some(e),
                        }
                    });
                }
            });
            if let Some(e) = failed.into_inner() {
                return Err(e);
            }
            println!(
                "wrote {files} files, {} rows, {:.2} GB in {:.1} s",
                files * rows,
                total.into_inner() as f64 / 1e9,
                t.elapsed().as_secs_f64()
            );
            Ok(())
        }
        Gen::JoinTables {
            dir,
            rows,
            partition_rows,
        } => {
            let rt = Runtime::builder().build()?;
            for side in [0u8, 1] {
                let sub = dir.join(if side == 0 { "left" } else { "right" });
                let n = rt.compute(&join_table(side, rows, partition_rows).to_parquet(&sub)?)?;
                println!("wrote {n} rows to {}", sub.display());
            }
            Ok(())
        }
    }
}

// ---------------------------------------------------------------------------------------------
// Queries.

fn peak_rss_mib() -> f64 {
    super::proc_status_mib("VmHWM").unwrap_or(f64::NAN)
}

/// Resident size now (`VmRSS`), in MiB.
fn rss_mib() -> f64 {
    super::proc_status_mib("VmRSS").unwrap_or(f64::NAN)
}

/// Sum of column `c` as f64 (the checksum).
fn checksum(df: &DataFrame, c: &str) -> Result<f64> {
    let s = df
        .column(c)
        .map_err(|e| Error::column(c, format!("bench check: {e}")))?
        .as_materialized_series()
        .cast(&DataType::Float64)
        .map_err(|e| Error::column(c, format!("bench check: {e}")))?;
    Ok(s.f64()
        .map(|ca| ca.sum().unwrap_or(0.0))
        .unwrap_or(f64::NAN))
}

/// The `join_names` table: each of the 676 names with its group, the name's first letter (as
/// in the polars and Dask versions of the query in `benches/frame_queries.py`).
fn names_table() -> DataFrame {
    let names = names();
    let groups: Vec<String> = names.iter().map(|n| n[..1].to_string()).collect();
    DataFrame::new(
        names.len(),
        vec![
            Column::new("name".into(), names),
            Column::new("group".into(), groups),
        ],
    )
    .unwrap_or_default()
}

fn brisk_query(
    q: &str,
    dir: &Path,
    threads: usize,
    partition_mib: u64,
) -> Result<(f64, DataFrame, &'static str)> {
    let rt = Runtime::builder().threads(threads).build()?;
    let pattern = format!("{}/*.csv", dir.display());
    let opts = CsvOptions::default().partition_size(partition_mib << 20);
    let plain = || frame::read_csv(&pattern, opts.clone());
    let dated = || frame::read_csv(&pattern, opts.clone().try_parse_dates(true));
    let t = Instant::now();
    let (df, col_name) = match q {
        "groupby_name_mean" => (
            rt.compute(&plain()?.group_by(["name"]).agg([col("x").mean()])?)?,
            "x",
        ),
        "groupby_month_var" => (
            rt.compute(
                &dated()?
                    .with_column(col("timestamp").dt().month().alias("month"))?
                    .group_by(["month"])
                    .agg([col("x").var(1)])?,
            )?,
            "x",
        ),
        "filter_groupby_id_sum" => (
            rt.compute(
                &plain()?
                    .filter(col("x").gt(lit(0.0)))?
                    .group_by(["id"])
                    .agg([col("y").sum()])?,
            )?,
            "y",
        ),
        "resample_1h_mean" => (
            rt.compute(&dated()?.resample("timestamp", "1h", [col("x").mean()])?)?,
            "x",
        ),
        "rolling_100_mean_sum" => (
            rt.compute(
                &plain()?
                    .select([col("x")])?
                    .rolling(
                        "x",
                        frame::timeseries::Window::Rows(100),
                        frame::timeseries::RollingAgg::Mean,
                        "r",
                    )?
                    .agg([col("r").sum()])?,
            )?,
            "r",
        ),
        "sort_x_head" => (rt.compute(&plain()?.nsmallest(5, "x")?)?, "x"),
        "join_names" => {
            let names = frame::from_polars(names_table(), 1);
            (
                rt.compute(
                    &plain()?
                        .join(
                            &names,
                            &["name"],
                            &["name"],
                            JoinOptions::new(JoinHow::Inner),
                        )?
                        .group_by(["group"])
                        .agg([col("x").mean()])?,
                )?,
                "x",
            )
        }
        other => return Err(Error::config(format!("bench frame: unknown query {other}"))),
    };
    Ok((t.elapsed().as_secs_f64(), df, col_name))
}

fn polars_query(q: &str, dir: &Path) -> Result<(f64, DataFrame, &'static str)> {
    let pattern = format!("{}/*.csv", dir.display());
    let scan = |dates: bool| -> Result<LazyFrame> {
        LazyCsvReader::new(PlRefPath::new(pattern.as_str()))
            .with_has_header(true)
            .with_try_parse_dates(dates)
            .finish()
            .map_err(|e| Error::from(e).context(format!("scanning {pattern}")))
    };
    let t = Instant::now();
    let (lf, c) = match q {
        "groupby_name_mean" => (
            scan(false)?.group_by([col("name")]).agg([col("x").mean()]),
            "x",
        ),
        "groupby_month_var" => (
            scan(true)?
                .with_column(col("timestamp").dt().month().alias("month"))
                .group_by([col("month")])
                .agg([col("x").var(1)]),
            "x",
        ),
        "filter_groupby_id_sum" => (
            scan(false)?
                .filter(col("x").gt(lit(0.0)))
                .group_by([col("id")])
                .agg([col("y").sum()]),
            "y",
        ),
        "resample_1h_mean" => (
            scan(true)?
                .group_by_dynamic(
                    col("timestamp"),
                    [],
                    DynamicGroupOptions {
                        index_column: "timestamp".into(),
                        every: Duration::parse("1h"),
                        period: Duration::parse("1h"),
                        offset: Duration::parse("0ns"),
                        ..Default::default()
                    },
                )
                .agg([col("x").mean()]),
            "x",
        ),
        "rolling_100_mean_sum" => (
            scan(false)?.select([col("x")
                .rolling_mean(RollingOptionsFixedWindow {
                    window_size: 100,
                    min_periods: 100,
                    ..Default::default()
                })
                .sum()
                .alias("r")]),
            "r",
        ),
        "sort_x_head" => (
            scan(false)?
                .sort(["x"], SortMultipleOptions::default())
                .slice(0, 5),
            "x",
        ),
        "join_names" => (
            scan(false)?
                .join(
                    names_table().lazy(),
                    [col("name")],
                    [col("name")],
                    polars::prelude::JoinArgs::new(JoinType::Inner),
                )
                .group_by([col("group")])
                .agg([col("x").mean()]),
            "x",
        ),
        other => return Err(Error::config(format!("bench frame: unknown query {other}"))),
    };
    // The parent sets POLARS_FORCE_STREAMING=1: `collect` runs the streaming engine.
    let df = lf
        .collect()
        .map_err(|e| Error::from(e).context(format!("running {q} in polars")))?;
    Ok((t.elapsed().as_secs_f64(), df, c))
}

/// Runs `brisk bench frame`.
pub fn main(args: Args) -> Result<()> {
    let threads = args.threads.unwrap_or_else(super::all_cores);
    if let Some(q) = &args.child {
        let (wall, df, c) = match args.engine {
            Engine::Brisk => brisk_query(q, &args.dir, threads, args.partition_mib)?,
            Engine::Polars => polars_query(q, &args.dir)?,
            Engine::Both => {
                return Err(Error::config(
                    "bench frame: a child runs one engine, brisk or polars",
                ))
            }
        };
        println!(
            "query={q} engine={} wall_s={wall:.2} peak_rss_mib={:.0} check={:.9e} rows={}",
            args.engine.name(),
            peak_rss_mib(),
            checksum(&df, c)?,
            df.height()
        );
        return Ok(());
    }
    let engines: Vec<&str> = match args.engine {
        Engine::Both => vec!["brisk", "polars"],
        e => vec![e.name()],
    };
    let queries: Vec<String> = if args.queries.is_empty() {
        QUERIES.iter().map(|s| s.to_string()).collect()
    } else {
        args.queries.clone()
    };
    let exe = std::env::current_exe()
        .map_err(|e| Error::io("bench frame: finding the running executable", e))?;
    println!(
        "# brisk bench frame --dir {} threads={} (each query in a child process)",
        args.dir.display(),
        threads
    );
    for q in &queries {
        let mut checks: Vec<(String, String)> = Vec::new();
        for e in &engines {
            // polars' pool as many threads as brisk's workers: a worker that calls into polars
            // waits while the pool runs its work, so busy threads stay at `threads`; a pool of
            // one would funnel both workers' polars calls through one thread.
            let polars_threads = threads;
            let out = Command::new(&exe)
                .args(["bench", "frame", "--dir"])
                .arg(&args.dir)
                .args(["--engine", e, "--threads", &threads.to_string()])
                .args(["--partition-mib", &args.partition_mib.to_string()])
                .args(["--child", q])
                .env("POLARS_MAX_THREADS", polars_threads.to_string())
                .env(
                    "POLARS_FORCE_STREAMING",
                    if *e == "polars" { "1" } else { "0" },
                )
                .output()
                .map_err(|err| Error::io(format!("bench frame: running {}", exe.display()), err))?;
            let text = String::from_utf8_lossy(&out.stdout);
            if out.status.success() {
                print!("{text}");
                if let Some(check) = field(&text, "check").zip(field(&text, "rows")) {
                    checks.push((check.0.to_string(), check.1.to_string()));
                }
            } else {
                println!(
                    "query={q} engine={e} failed: {}",
                    String::from_utf8_lossy(&out.stderr).trim()
                );
            }
        }
        if engines.len() > 1 {
            println!("query={q} checks={}", agreement(&checks, engines.len()));
        }
    }
    Ok(())
}

/// The value of `name=` in a `key=value` line.
fn field<'a>(line: &'a str, name: &str) -> Option<&'a str> {
    line.split_whitespace()
        .find_map(|kv| kv.strip_prefix(name)?.strip_prefix('='))
}

/// `agree` when every engine ran and their checksums are equal to 1e-9 relative (sums of
/// floats in another order) with equal row counts, else `DIFFER` with the values.
fn agreement(checks: &[(String, String)], engines: usize) -> String {
    let values: Vec<(f64, &str)> = checks
        .iter()
        .map(|(c, r)| (c.parse().unwrap_or(f64::NAN), r.as_str()))
        .collect();
    let close = |a: f64, b: f64| (a - b).abs() <= 1e-9 * a.abs().max(b.abs()).max(1e-300);
    let agree = checks.len() == engines
        && values
            .windows(2)
            .all(|w| close(w[0].0, w[1].0) && w[0].1 == w[1].1);
    if agree {
        "agree".to_string()
    } else {
        let shown: Vec<String> = checks.iter().map(|(c, r)| format!("{c}/{r}")).collect();
        format!("DIFFER({})", shown.join(","))
    }
}

/// Runs `brisk bench frame-join`.
pub fn join_main(args: JoinArgs) -> Result<()> {
    // Under a memory limit resident size matters more than fresh-page cost: give freed pages
    // back to the OS at once instead of keeping them in mimalloc's segments.
    super::return_freed_pages();
    let mut b = Runtime::builder()
        .threads(args.threads.unwrap_or_else(super::all_cores))
        .memory_limit(args.memory_limit);
    if let Some(d) = &args.spill_dir {
        b = b.spill_dir(d);
    }
    let rt = b.build()?;
    let left = join_table(0, args.rows, args.partition_rows);
    let right = join_table(1, args.rows, args.partition_rows);
    let joined = left.join(
        &right,
        &["key"],
        &["key"],
        JoinOptions::new(JoinHow::Inner).broadcast(false),
    )?;
    let q = joined.agg([len().alias("n"), col("v").sum(), col("w").sum()])?;
    let opts = ComputeOptions::new().progress(if args.progress {
        ProgressMode::Always
    } else {
        ProgressMode::Never
    });
    let t = Instant::now();
    let done = std::sync::atomic::AtomicBool::new(false);
    let df = std::thread::scope(|scope| {
        if args.trace_memory {
            let (rt, done) = (&rt, &done);
            scope.spawn(move || {
                while !done.load(std::sync::atomic::Ordering::Relaxed) {
                    let m = rt.memory_stats();
                    eprintln!(
                        "t={:.1} managed_mib={:.0} rss_mib={:.0} spilled_gib={:.2}",
                        t.elapsed().as_secs_f64(),
                        m.current_bytes as f64 / (1u64 << 20) as f64,
                        rss_mib(),
                        m.spilled_bytes as f64 / (1u64 << 30) as f64
                    );
                    std::thread::sleep(std::time::Duration::from_millis(500));
                }
            });
        }
        let out = rt.compute_with(&q, &opts);
        done.store(true, std::sync::atomic::Ordering::Relaxed);
        out
    })?;
    let wall = t.elapsed().as_secs_f64();
    let n = checksum(&df, "n")? as u64;
    let sum = checksum(&df, "v")? as i64 + checksum(&df, "w")? as i64;
    let mut want = 0i64;
    for k in 0..args.rows as i64 {
        want += (3 * k) % 1000 + (7 * k) % 1000;
    }
    let stats = rt.memory_stats();
    let ok = n == args.rows as u64 && sum == want;
    println!(
        "frame-join rows={} partitions={} memory_limit={} wall_s={wall:.2} peak_rss_mib={:.0} \
         store_peak_mib={:.0} spilled_gib={:.2} result_rows={n} checksum={sum} expected_rows={} expected_checksum={want} {}",
        args.rows,
        args.rows.div_ceil(args.partition_rows.max(1)),
        super::format_size(args.memory_limit),
        peak_rss_mib(),
        stats.peak_bytes as f64 / (1u64 << 20) as f64,
        stats.spilled_bytes as f64 / (1u64 << 30) as f64,
        args.rows,
        if ok { "OK" } else { "MISMATCH" }
    );
    if ok {
        Ok(())
    } else {
        Err(Error::internal(
            "frame-join: the joined rows or checksum differ from the closed form",
        ))
    }
}
