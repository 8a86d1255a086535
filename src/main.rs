//! The `brisk` command: the demo pipeline, graph ordering reports and benchmarks.

use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Instant;

use brisk::bench::overhead::{self, Shape};
use brisk::bench::spill;
use brisk::bench::{parse_memory_limit, parse_size, MemoryLimit};
use brisk::graph::graph_file::GraphFile;
use brisk::graph::{order, pressure};
use std::sync::Arc;

use brisk::{ChromeTrace, ComputeOptions, ProgressMode, Runtime};
use clap::{Parser, Subcommand};

// Keeps freed pages instead of returning them to the OS: fresh memory is slow to fault in.
#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

#[path = "../examples/etl.rs"]
#[allow(dead_code)]
mod etl;

#[derive(Parser)]
#[command(
    name = "brisk",
    version,
    about = "Parallel, larger-than-memory task graphs"
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Runs an example ETL pipeline of simulated tasks with a progress bar, printing result and
    /// timing.
    Demo {
        /// Worker threads (default: all cores).
        #[arg(long)]
        threads: Option<usize>,
        /// Seed of the simulated task times.
        #[arg(long, default_value_t = 42)]
        seed: u64,
        /// Multiplies every simulated task time.
        #[arg(long, default_value_t = 1.0)]
        scale: f64,
        /// Writes a Chrome trace (open in Perfetto or chrome://tracing).
        #[arg(long)]
        trace: Option<PathBuf>,
        /// Writes the graph as Graphviz DOT, colored by static order.
        #[arg(long)]
        dot: Option<PathBuf>,
    },
    /// Orders task graphs read from JSON files and prints the memory pressure of the order.
    ///
    /// A graph file is `{"name": "...", "tasks": [{"key": "a", "deps": []}, ...]}`.
    Order {
        /// Graph files, or directories whose `*.json` files are read.
        #[arg(required = true)]
        paths: Vec<PathBuf>,
    },
    /// Benchmarks that print one machine-readable line per run.
    Bench {
        #[command(subcommand)]
        bench: Bench,
    },
    /// Writes generated data sets for the benchmarks and examples.
    Gen {
        #[command(subcommand)]
        gen: brisk::bench::frame::Gen,
    },
}

#[derive(Subcommand)]
enum Bench {
    /// Scheduler overhead on no-op graphs.
    Overhead {
        /// Graph shape.
        #[arg(long, value_enum)]
        shape: Shape,
        /// Base number of tasks.
        #[arg(long)]
        tasks: usize,
        /// Worker threads (default: all cores).
        #[arg(long)]
        threads: Option<usize>,
        /// Disable fusion of linear chains.
        #[arg(long)]
        no_fuse: bool,
        /// Runs to make; one line each.
        #[arg(long, default_value_t = 1)]
        repeat: usize,
    },
    /// Writes chunks several times the memory limit through the store and reads them back.
    Spill {
        /// Bytes of chunks in total (e.g. 8GiB, 500MB).
        #[arg(long, default_value = "8GiB", value_parser = parse_size)]
        bytes: u64,
        /// The runtime's memory limit, or `none` for no limit.
        #[arg(long, alias = "limit", default_value = "1GiB", value_parser = parse_memory_limit)]
        memory_limit: MemoryLimit,
        /// Bytes per chunk.
        #[arg(long, default_value = "64MiB", value_parser = parse_size)]
        chunk: u64,
        /// Flush and drop the page cache at the barrier, once every chunk has been made and
        /// those beyond the limit spilled, so the reads back come from the disk (needs root).
        #[arg(long)]
        drop_caches: bool,
        #[command(flatten)]
        io: IoArgs,
    },
    /// An all-to-all exchange (like a rechunk) of data larger than the memory limit.
    Outofcore {
        /// Bytes of input blocks in total (e.g. 16GiB, 500MB).
        #[arg(long, default_value = "16GiB", value_parser = parse_size)]
        bytes: u64,
        /// The runtime's memory limit, or `none` for the in-memory baseline.
        #[arg(long, alias = "limit", default_value = "2GiB", value_parser = parse_memory_limit)]
        memory_limit: MemoryLimit,
        /// Bytes per block (each is cut into one piece per block).
        #[arg(long, default_value = "64MiB", value_parser = parse_size)]
        block: u64,
        #[command(flatten)]
        io: IoArgs,
    },
    /// Array workloads (row means, sums, products, SVD, an out-of-core rechunk), one line each
    /// with its answer checked (`check_ok=`).
    Array(brisk::bench::array::Args),
    /// Frame queries over a directory of timeseries CSVs (from `brisk gen timeseries`).
    Frame(brisk::bench::frame::Args),
    /// An out-of-core join of two generated tables under a memory limit.
    FrameJoin(brisk::bench::frame::JoinArgs),
}

/// Options of the larger-than-memory benchmarks.
#[derive(clap::Args)]
struct IoArgs {
    /// Worker threads (default: all cores).
    #[arg(long)]
    threads: Option<usize>,
    /// Base directory for spill files (default: the system temp dir).
    #[arg(long)]
    spill_dir: Option<PathBuf>,
}

impl IoArgs {
    fn runtime(&self, limit: MemoryLimit) -> brisk::Result<Runtime> {
        let mut b = Runtime::builder();
        if let Some(t) = self.threads {
            b = b.threads(t);
        }
        if let Some(dir) = &self.spill_dir {
            b = b.spill_dir(dir);
        }
        if let MemoryLimit::Bytes(_) = limit {
            brisk::bench::return_freed_pages();
        }
        b.memory_limit(limit.bytes()).build()
    }
}

fn main() -> ExitCode {
    brisk::bench::keep_freed_pages();
    let cli = Cli::parse();
    match run(cli) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("error: {e}");
            ExitCode::FAILURE
        }
    }
}

fn runtime(threads: Option<usize>) -> brisk::Result<Runtime> {
    let mut b = Runtime::builder();
    if let Some(t) = threads {
        b = b.threads(t);
    }
    b.build()
}

fn run(cli: Cli) -> brisk::Result<()> {
    match cli.command {
        Command::Demo {
            threads,
            seed,
            scale,
            trace,
            dot,
        } => {
            let rt = runtime(threads)?;
            if let Some(path) = &dot {
                let (graph, _) = brisk::build_graph(&etl::build(seed, scale).result)?;
                write_file(path, graph.to_dot()?.as_bytes())?;
            }
            let recorder = trace.as_ref().map(|_| Arc::new(ChromeTrace::new()));
            let mut options = ComputeOptions::new().progress(ProgressMode::Auto);
            if let Some(r) = &recorder {
                options = options.trace(Arc::clone(r));
            }
            etl::run(&rt, seed, scale, options)?;
            if let (Some(path), Some(r)) = (&trace, &recorder) {
                r.write(path)?;
                eprintln!("trace written to {}", path.display());
            }
        }
        Command::Order { paths } => {
            let files = expand(&paths)?;
            let many = files.len() > 1;
            for path in files {
                order_file(&path, many)?;
            }
        }
        Command::Bench { bench } => match bench {
            Bench::Overhead {
                shape,
                tasks,
                threads,
                no_fuse,
                repeat,
            } => {
                let rt = runtime(threads)?;
                for _ in 0..repeat.max(1) {
                    let report = overhead::run(&rt, shape, tasks, !no_fuse)?;
                    println!("{}", report.line());
                }
            }
            Bench::Spill {
                bytes,
                memory_limit,
                chunk,
                drop_caches,
                io,
            } => {
                let rt = io.runtime(memory_limit)?;
                let report = spill::spill_with(&rt, bytes, chunk, drop_caches)?;
                println!("{}", report.line());
            }
            Bench::Outofcore {
                bytes,
                memory_limit,
                block,
                io,
            } => {
                let rt = io.runtime(memory_limit)?;
                let report = spill::outofcore(&rt, bytes, block)?;
                println!("{}", report.line_with_wall());
            }
            Bench::Array(args) => brisk::bench::array::main(args)?,
            Bench::Frame(args) => brisk::bench::frame::main(args)?,
            Bench::FrameJoin(args) => brisk::bench::frame::join_main(args)?,
        },
        Command::Gen { gen } => brisk::bench::frame::gen_main(gen)?,
    }
    Ok(())
}

fn write_file(path: &std::path::Path, bytes: &[u8]) -> brisk::Result<()> {
    std::fs::write(path, bytes).map_err(|e| {
        brisk::Error::new(brisk::ErrorKind::Io {
            context: format!("writing {}", path.display()),
            source: e,
        })
    })
}

/// Files named, with directories replaced by their `*.json` files (sorted).
fn expand(paths: &[PathBuf]) -> brisk::Result<Vec<PathBuf>> {
    let mut out = Vec::new();
    for p in paths {
        if p.is_dir() {
            let entries = std::fs::read_dir(p).map_err(|e| {
                brisk::Error::new(brisk::ErrorKind::Io {
                    context: format!("reading directory {}", p.display()),
                    source: e,
                })
            })?;
            let mut files: Vec<PathBuf> = entries
                .filter_map(|e| e.ok().map(|e| e.path()))
                .filter(|f| f.extension().is_some_and(|x| x == "json"))
                .collect();
            files.sort();
            out.extend(files);
        } else {
            out.push(p.clone());
        }
    }
    Ok(out)
}

fn order_file(path: &std::path::Path, with_name: bool) -> brisk::Result<()> {
    let file = GraphFile::load(path)?;
    let dependents = file.dependents();
    let start = Instant::now();
    let keys: Vec<&str> = file.keys.iter().map(String::as_str).collect();
    let priority = order::order_with_keys(&file.deps, &dependents, &file.tie_by_key(), &keys)?;
    let order_ms = start.elapsed().as_secs_f64() * 1e3;
    let p = pressure::pressure(&file.deps, &dependents, &priority)?;
    let mut line = String::new();
    if with_name {
        line.push_str(&format!("graph={} ", file.name));
    }
    line.push_str(&format!(
        "max_pressure={} mean_pressure={:.4} order_ms={:.3} tasks={}",
        p.max,
        p.mean,
        order_ms,
        file.keys.len()
    ));
    if with_name {
        if let (Some(m), Some(a)) = (file.dask_max_pressure, file.dask_mean_pressure) {
            line.push_str(&format!(" dask_max_pressure={m} dask_mean_pressure={a:.4}"));
        }
    }
    println!("{line}");
    Ok(())
}
