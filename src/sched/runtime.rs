//! The [`Runtime`]: worker threads, the memory pool, event hooks, and the entry points that
//! turn collections and graphs into results.

use std::path::PathBuf;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, OnceLock, Weak};

use parking_lot::RwLock;

use super::event::{Event, EventHook};
use super::latch::Latch;
use super::pool::{block_on, Job, Pool};
use super::progress::{ProgressBar, ProgressMode};
use super::run::{ExecCtx, Outcome, RunState};
use super::trace::ChromeTrace;
use super::CancelToken;
use crate::error::{Error, ErrorKind, Result};
use crate::future::HeldResults;
use crate::graph::{Graph, Key, Plan, PlanOptions, Value};
use crate::spill::pool::Registration;
use crate::spill::{MemoryConfig, MemoryPool, MemoryStats, SpillSource};

/// Which executor runs computations.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum Executor {
    /// Work-stealing threads, one per core (the default).
    #[default]
    Threads,
    /// Everything on the calling thread, in priority order: for debugging and deterministic
    /// tests.
    Sync,
}

/// Builds a [`Runtime`].
///
/// ```
/// let rt = brisk::Runtime::builder()
///     .threads(2)
///     .memory_limit("512 MiB")
///     .resource("gpu", 2)
///     .build()
///     .unwrap();
/// assert_eq!(rt.threads(), 2);
/// assert_eq!(rt.memory_limit(), 512 << 20);
/// // Without one, the limit is a fraction of physical memory.
/// assert!(brisk::Runtime::builder().threads(1).build().unwrap().memory_limit() > 0);
/// ```
#[derive(Clone, Debug)]
pub struct RuntimeBuilder {
    threads: Option<usize>,
    executor: Executor,
    memory_limit: Option<ByteSize>,
    spill_dir: Option<PathBuf>,
    max_spill: Option<ByteSize>,
    spill_fraction: f64,
    pause_fraction: f64,
    resources: Vec<(String, u32)>,
    root_limit: Option<usize>,
    fuse: bool,
    progress: ProgressMode,
    name: String,
    stack_size: Option<ByteSize>,
}

/// A byte count given as a number or a string such as `"8 GiB"`, `"512MB"`, `"1e9"`.
#[derive(Clone, Debug)]
pub enum ByteSize {
    /// Exact bytes.
    Bytes(u64),
    /// To be parsed (errors are reported by `build()`).
    Text(String),
}

impl From<u64> for ByteSize {
    fn from(b: u64) -> Self {
        ByteSize::Bytes(b)
    }
}
impl From<usize> for ByteSize {
    fn from(b: usize) -> Self {
        ByteSize::Bytes(b as u64)
    }
}
impl From<u32> for ByteSize {
    fn from(b: u32) -> Self {
        ByteSize::Bytes(b as u64)
    }
}
/// So that `memory_limit(512 << 20)` works; a negative count is reported by `build()`.
impl From<i32> for ByteSize {
    fn from(b: i32) -> Self {
        u64::try_from(b).map_or_else(|_| ByteSize::Text(b.to_string()), ByteSize::Bytes)
    }
}
impl From<i64> for ByteSize {
    fn from(b: i64) -> Self {
        u64::try_from(b).map_or_else(|_| ByteSize::Text(b.to_string()), ByteSize::Bytes)
    }
}
impl From<&str> for ByteSize {
    fn from(s: &str) -> Self {
        ByteSize::Text(s.to_string())
    }
}
impl From<String> for ByteSize {
    fn from(s: String) -> Self {
        ByteSize::Text(s)
    }
}

impl ByteSize {
    /// The number of bytes.
    ///
    /// # Errors
    /// [`ErrorKind::Config`] naming the text when it is not a size.
    pub fn bytes(&self) -> Result<u64> {
        match self {
            ByteSize::Bytes(b) => Ok(*b),
            ByteSize::Text(t) => parse_bytes(t),
        }
    }
}

/// Parses `"8 GiB"`, `"1.5GB"`, `"512 MiB"`, `"1000"`, `"64k"`.
pub fn parse_bytes(text: &str) -> Result<u64> {
    let t = text.trim();
    let split = t
        .find(|c: char| !(c.is_ascii_digit() || c == '.' || c == 'e' || c == 'E' || c == '_'))
        .unwrap_or(t.len());
    let (num, unit) = t.split_at(split);
    let num: f64 = num
        .replace('_', "")
        .parse()
        .map_err(|_| Error::config(format!("`{text}` is not a byte size (try \"8 GiB\")")))?;
    let mult: f64 = match unit.trim().to_ascii_lowercase().as_str() {
        "" | "b" => 1.0,
        "k" | "kb" => 1e3,
        "m" | "mb" => 1e6,
        "g" | "gb" => 1e9,
        "t" | "tb" => 1e12,
        "kib" => 1024.0,
        "mib" => 1024.0 * 1024.0,
        "gib" => 1024.0 * 1024.0 * 1024.0,
        "tib" => 1024.0f64.powi(4),
        other => {
            return Err(Error::config(format!(
                "unknown unit `{other}` in byte size `{text}` (use B, KB, MB, GB, KiB, MiB, GiB)"
            )))
        }
    };
    if !num.is_finite() || num < 0.0 {
        return Err(Error::config(format!("byte size `{text}` must be >= 0")));
    }
    Ok((num * mult).round() as u64)
}

impl Default for RuntimeBuilder {
    fn default() -> Self {
        RuntimeBuilder {
            threads: None,
            executor: Executor::Threads,
            memory_limit: None,
            spill_dir: None,
            max_spill: None,
            spill_fraction: crate::spill::DEFAULT_SPILL_FRACTION,
            pause_fraction: crate::spill::DEFAULT_PAUSE_FRACTION,
            resources: Vec::new(),
            root_limit: None,
            fuse: true,
            progress: ProgressMode::Never,
            name: "brisk".into(),
            stack_size: None,
        }
    }
}

impl RuntimeBuilder {
    /// Applies the settings given in the environment, over those set so far (later builder
    /// calls override them in turn):
    ///
    /// | variable | setting | example |
    /// |---|---|---|
    /// | `BRISK_THREADS` | [`threads`](Self::threads) | `8` |
    /// | `BRISK_MEMORY_LIMIT` | [`memory_limit`](Self::memory_limit) | `8 GiB` |
    /// | `BRISK_SPILL_DIR` | [`spill_dir`](Self::spill_dir) | `/scratch/brisk` |
    /// | `BRISK_PROGRESS` | [`progress`](Self::progress) | `auto`, `always`, `never` |
    ///
    /// Unset or empty variables change nothing. [`Runtime::global`] reads them too.
    ///
    /// ```
    /// use brisk::Runtime;
    /// let rt = Runtime::builder().from_env()?.threads(2).build()?;
    /// assert_eq!(rt.threads(), 2);
    /// # Ok::<(), brisk::Error>(())
    /// ```
    ///
    /// # Errors
    /// [`ErrorKind::Config`](crate::ErrorKind::Config) naming the variable and its value when
    /// one cannot be read (a thread count that is not a positive integer, a size that does not
    /// parse, an unknown progress mode, a value that is not UTF-8).
    pub fn from_env(self) -> Result<Self> {
        self.with_vars(|name| std::env::var_os(name))
    }

    /// [`from_env`](Self::from_env) over any source of variables (tests use a map).
    pub(crate) fn with_vars(
        mut self,
        var: impl Fn(&str) -> Option<std::ffi::OsString>,
    ) -> Result<Self> {
        let text = |name: &str| -> Result<Option<String>> {
            match var(name) {
                None => Ok(None),
                Some(v) => match v.into_string() {
                    Ok(v) if v.trim().is_empty() => Ok(None),
                    Ok(v) => Ok(Some(v.trim().to_string())),
                    Err(v) => Err(Error::config(format!(
                        "{name}={} is not UTF-8",
                        v.to_string_lossy()
                    ))),
                },
            }
        };
        if let Some(v) = text("BRISK_THREADS")? {
            match v.parse::<usize>() {
                Ok(n) if n > 0 => self.threads = Some(n),
                _ => {
                    return Err(Error::config(format!(
                        "BRISK_THREADS={v}: expected a positive number of threads"
                    )))
                }
            }
        }
        if let Some(v) = text("BRISK_MEMORY_LIMIT")? {
            let bytes = parse_bytes(&v)
                .map_err(|e| Error::config(format!("BRISK_MEMORY_LIMIT={v}: {}", e.kind())))?;
            self.memory_limit = Some(ByteSize::Bytes(bytes));
        }
        if let Some(v) = text("BRISK_SPILL_DIR")? {
            self.spill_dir = Some(PathBuf::from(v));
        }
        if let Some(v) = text("BRISK_PROGRESS")? {
            self.progress = v
                .parse()
                .map_err(|e: String| Error::config(format!("BRISK_PROGRESS: {e}")))?;
        }
        Ok(self)
    }

    /// Worker threads (default: the number of cores).
    pub fn threads(mut self, n: usize) -> Self {
        self.threads = Some(n);
        self
    }
    /// Which executor runs computations.
    pub fn executor(mut self, executor: Executor) -> Self {
        self.executor = executor;
        self
    }
    /// The most bytes of results to hold in memory (a number or `"8 GiB"`; default: a
    /// fraction of physical memory, see [`limit`](crate::spill::limit)). Values are spilled
    /// to disk above [`spill_fraction`](Self::spill_fraction) of it.
    pub fn memory_limit(mut self, limit: impl Into<ByteSize>) -> Self {
        self.memory_limit = Some(limit.into());
        self
    }
    /// Where spill files go: a fresh directory is made inside `dir` on the first spill and
    /// removed when the runtime drops (default: in the system temp dir).
    pub fn spill_dir(mut self, dir: impl Into<PathBuf>) -> Self {
        self.spill_dir = Some(dir.into());
        self
    }
    /// The most bytes of spill files on disk at once (default: no cap). When spilling would
    /// exceed it and memory is over the limit, the computation fails with a clear error.
    pub fn max_spill(mut self, bytes: impl Into<ByteSize>) -> Self {
        self.max_spill = Some(bytes.into());
        self
    }
    /// Fraction of the memory limit above which values are spilled (default 0.6).
    pub fn spill_fraction(mut self, fraction: f64) -> Self {
        self.spill_fraction = fraction;
        self
    }
    /// Fraction of the memory limit above which no new root task starts while others run
    /// (default 0.8).
    pub fn pause_fraction(mut self, fraction: f64) -> Self {
        self.pause_fraction = fraction;
        self
    }
    /// Declares `units` of an abstract resource (e.g. `("gpu", 2)`); tasks annotated with
    /// needs of it never hold more than that at once.
    pub fn resource(mut self, name: &str, units: u32) -> Self {
        match self.resources.iter_mut().find(|(n, _)| n == name) {
            Some(r) => r.1 = units,
            None => self.resources.push((name.to_string(), units)),
        }
        self
    }
    /// How many root tasks of one computation may run at once (default threads + 1).
    pub fn root_limit(mut self, n: usize) -> Self {
        self.root_limit = Some(n);
        self
    }
    /// Whether to fuse linear chains (default true).
    pub fn fuse(mut self, fuse: bool) -> Self {
        self.fuse = fuse;
        self
    }
    /// Progress bar for every compute (default [`ProgressMode::Never`]; the `brisk` binary
    /// uses `Auto`).
    pub fn progress(mut self, mode: ProgressMode) -> Self {
        self.progress = mode;
        self
    }
    /// Thread name prefix.
    pub fn name(mut self, name: &str) -> Self {
        self.name = name.to_string();
        self
    }
    /// Stack size of each worker thread (a number or `"16 MiB"`; default: the platform's), for
    /// tasks that recurse deeply.
    pub fn stack_size(mut self, bytes: impl Into<ByteSize>) -> Self {
        self.stack_size = Some(bytes.into());
        self
    }

    /// Starts the worker threads.
    ///
    /// # Errors
    /// [`ErrorKind::Config`] for a zero thread count, an unparsable memory limit or stack
    /// size; [`ErrorKind::Io`] naming the thread when a worker thread cannot be started.
    ///
    /// ```
    /// // No system gives a thread a stack of an exbibyte.
    /// let err = brisk::Runtime::builder().threads(1).stack_size(1u64 << 60).build();
    /// assert!(matches!(err.err().unwrap().kind(), brisk::ErrorKind::Io { .. }));
    /// ```
    pub fn build(self) -> Result<Runtime> {
        let threads = match self.threads {
            Some(0) => return Err(Error::config("threads must be at least 1")),
            Some(n) => n,
            None => std::thread::available_parallelism().map_or(1, |n| n.get()),
        };
        let memory_limit = match &self.memory_limit {
            Some(l) => l.bytes()?,
            None => crate::spill::limit::default_limit(),
        };
        let memory = MemoryPool::new(MemoryConfig {
            limit: memory_limit,
            spill_fraction: self.spill_fraction,
            pause_fraction: self.pause_fraction,
            spill_dir: self.spill_dir,
            max_spill: self.max_spill.as_ref().map(ByteSize::bytes).transpose()?,
        })?;
        let stack_size = match &self.stack_size {
            Some(s) => {
                let bytes = s.bytes()?;
                Some(usize::try_from(bytes).map_err(|_| {
                    Error::config(format!("a stack size of {bytes} bytes is not addressable"))
                })?)
            }
            None => None,
        };
        let pool = Pool::start(threads, &self.resources, &self.name, stack_size)?;
        let memory = Arc::new(memory);
        Ok(Runtime {
            inner: Arc::new_cyclic(|inner| {
                let held_results = Arc::new(HeldResults::new(inner.clone()));
                let held_registration =
                    memory.register(Arc::downgrade(&held_results) as Weak<dyn SpillSource>);
                RuntimeInner {
                    pool,
                    executor: self.executor,
                    threads,
                    root_limit: self.root_limit.unwrap_or(threads + 1),
                    fuse: self.fuse,
                    progress: self.progress,
                    memory,
                    hooks: RwLock::new(Vec::new()),
                    next_run: AtomicU64::new(1),
                    held_results,
                    _held_registration: held_registration,
                }
            }),
        })
    }
}

/// Runs computations: a pool of worker threads plus the memory account and event hooks.
/// Cheap to clone; the threads stop when the last clone is dropped.
#[derive(Clone)]
pub struct Runtime {
    pub(crate) inner: Arc<RuntimeInner>,
}

pub(crate) struct RuntimeInner {
    pub(crate) pool: Arc<Pool>,
    executor: Executor,
    threads: usize,
    root_limit: usize,
    fuse: bool,
    progress: ProgressMode,
    memory: Arc<MemoryPool>,
    hooks: RwLock<Vec<Arc<dyn EventHook>>>,
    next_run: AtomicU64,
    /// The values of finished futures, a source of spill victims.
    held_results: Arc<HeldResults>,
    _held_registration: Registration,
}

impl RuntimeInner {
    pub(crate) fn memory(&self) -> &Arc<MemoryPool> {
        &self.memory
    }

    pub(crate) fn held_results(&self) -> &HeldResults {
        &self.held_results
    }

    /// True when the runtime has hooks (checked before reading clocks for events).
    pub(crate) fn has_hooks(&self) -> bool {
        !self.hooks.read().is_empty()
    }

    /// Sends an event of a future to the runtime's hooks.
    pub(crate) fn emit(&self, event: &Event<'_>) {
        for hook in self.hooks.read().iter() {
            hook.on_event(event);
        }
    }
}

impl Drop for RuntimeInner {
    fn drop(&mut self) {
        self.pool.shutdown();
    }
}

/// Per-call settings of a computation.
#[derive(Clone, Default)]
pub struct ComputeOptions {
    /// Cancels the computation from another thread.
    pub cancel: Option<CancelToken>,
    /// Overrides the runtime's progress mode for this call.
    pub progress: Option<ProgressMode>,
    /// Records every task into this trace.
    pub trace: Option<Arc<ChromeTrace>>,
    /// Extra hooks for this call only.
    pub hooks: Vec<Arc<dyn EventHook>>,
    /// Overrides fusion for this call.
    pub fuse: Option<bool>,
    /// Overrides the executor for this call.
    pub executor: Option<Executor>,
}

impl ComputeOptions {
    /// Default options.
    pub fn new() -> Self {
        Self::default()
    }
    /// Cancel through `token`.
    pub fn cancel(mut self, token: CancelToken) -> Self {
        self.cancel = Some(token);
        self
    }
    /// Show a progress bar.
    pub fn progress(mut self, mode: ProgressMode) -> Self {
        self.progress = Some(mode);
        self
    }
    /// Record a Chrome trace.
    pub fn trace(mut self, trace: Arc<ChromeTrace>) -> Self {
        self.trace = Some(trace);
        self
    }
    /// Add a hook.
    pub fn hook(mut self, hook: Arc<dyn EventHook>) -> Self {
        self.hooks.push(hook);
        self
    }
    /// Turn fusion on or off.
    pub fn fuse(mut self, fuse: bool) -> Self {
        self.fuse = Some(fuse);
        self
    }
    /// Use this executor.
    pub fn executor(mut self, executor: Executor) -> Self {
        self.executor = Some(executor);
        self
    }
}

/// Something that can be computed: it adds its tasks to a graph and turns the results of its
/// output keys into a value. Delayed values, arrays and frames implement it; so do tuples and
/// vectors of them, which compute together in one graph (shared work runs once).
pub trait Compute {
    /// What computing yields.
    type Output;
    /// Adds the tasks (skipping keys already in `graph`) and appends the output keys.
    fn build(&self, graph: &mut Graph, outputs: &mut Vec<Key>) -> Result<()>;
    /// Builds the result from the output values, consumed in the order they were appended.
    fn finish(&self, values: &mut std::vec::IntoIter<Value>) -> Result<Self::Output>;
}

macro_rules! compute_tuple {
    ($($t:ident),+) => {
        impl<$($t: Compute),+> Compute for ($($t,)+) {
            type Output = ($($t::Output,)+);
            #[allow(non_snake_case)]
            fn build(&self, graph: &mut Graph, outputs: &mut Vec<Key>) -> Result<()> {
                let ($($t,)+) = self;
                $($t.build(graph, outputs)?;)+
                Ok(())
            }
            #[allow(non_snake_case)]
            fn finish(&self, values: &mut std::vec::IntoIter<Value>) -> Result<Self::Output> {
                let ($($t,)+) = self;
                Ok(($($t.finish(values)?,)+))
            }
        }
    };
}
compute_tuple!(A);
compute_tuple!(A, B);
compute_tuple!(A, B, C);
compute_tuple!(A, B, C, D);
compute_tuple!(A, B, C, D, E);
compute_tuple!(A, B, C, D, E, F);

impl<C: Compute> Compute for Vec<C> {
    type Output = Vec<C::Output>;
    fn build(&self, graph: &mut Graph, outputs: &mut Vec<Key>) -> Result<()> {
        self.iter().try_for_each(|c| c.build(graph, outputs))
    }
    fn finish(&self, values: &mut std::vec::IntoIter<Value>) -> Result<Self::Output> {
        self.iter().map(|c| c.finish(values)).collect()
    }
}

impl<C: Compute> Compute for &C {
    type Output = C::Output;
    fn build(&self, graph: &mut Graph, outputs: &mut Vec<Key>) -> Result<()> {
        (*self).build(graph, outputs)
    }
    fn finish(&self, values: &mut std::vec::IntoIter<Value>) -> Result<Self::Output> {
        (*self).finish(values)
    }
}

/// The graph a collection would run, with its output keys, without running it (to inspect,
/// render with [`Graph::to_dot`], or run later with [`Runtime::compute_graph`]).
pub fn build_graph<C: Compute + ?Sized>(c: &C) -> Result<(Graph, Vec<Key>)> {
    let mut graph = Graph::new();
    let mut outputs = Vec::new();
    c.build(&mut graph, &mut outputs)?;
    Ok((graph, outputs))
}

static GLOBAL: OnceLock<Runtime> = OnceLock::new();

impl Runtime {
    /// A builder with defaults.
    pub fn builder() -> RuntimeBuilder {
        RuntimeBuilder::default()
    }

    /// The process-wide default runtime, created on first use from the defaults and the
    /// environment ([`RuntimeBuilder::from_env`]: `BRISK_THREADS`, `BRISK_MEMORY_LIMIT`,
    /// `BRISK_SPILL_DIR`, `BRISK_PROGRESS`). Its threads live until the process ends.
    ///
    /// # Errors
    /// When a variable cannot be read, or the worker threads cannot be started. A failed
    /// start is not remembered: the next call tries again.
    pub fn try_global() -> Result<&'static Runtime> {
        static STARTING: parking_lot::Mutex<()> = parking_lot::Mutex::new(());
        if let Some(rt) = GLOBAL.get() {
            return Ok(rt);
        }
        let _one_at_a_time = STARTING.lock();
        if let Some(rt) = GLOBAL.get() {
            return Ok(rt);
        }
        let rt = Runtime::builder()
            .name("brisk-global")
            .from_env()?
            .build()
            .map_err(|e| e.context("starting the default brisk runtime"))?;
        Ok(GLOBAL.get_or_init(|| rt))
    }

    /// [`try_global`](Self::try_global) for programs that cannot go on without it.
    ///
    /// # Panics
    /// Where `try_global` returns an error (a bad `BRISK_*` variable, no threads to be had).
    pub fn global() -> &'static Runtime {
        Runtime::try_global().unwrap_or_else(|e| panic!("{e}"))
    }

    /// Number of worker threads.
    pub fn threads(&self) -> usize {
        self.inner.threads
    }

    /// The memory limit in bytes: the one configured, or by default a fraction
    /// ([`limit::DEFAULT_FRACTION`](crate::spill::limit::DEFAULT_FRACTION)) of physical memory.
    pub fn memory_limit(&self) -> u64 {
        self.inner.memory.limit()
    }

    /// The base directory for spill files, if one was set.
    pub fn spill_dir(&self) -> Option<&std::path::Path> {
        self.inner.memory.spill_base()
    }

    /// The directory holding this runtime's spill files, once something was spilled.
    pub fn spill_path(&self) -> Option<PathBuf> {
        self.inner.memory.spill_path()
    }

    /// The resource capacities the runtime was built with.
    pub fn resources(&self) -> Vec<(String, u32)> {
        self.inner.pool.gate.capacities()
    }

    /// Bytes of results held in memory now and at the peak, bytes on disk, and spill counts.
    ///
    /// ```
    /// let rt = brisk::Runtime::builder().memory_limit("1 GiB").build().unwrap();
    /// let stats = rt.memory_stats();
    /// assert_eq!(stats.limit, 1 << 30);
    /// assert_eq!((stats.current_bytes, stats.spill_count), (0, 0));
    /// ```
    pub fn memory_stats(&self) -> MemoryStats {
        self.inner.memory.stats()
    }

    /// Starts a new peak-memory measurement.
    pub fn reset_peak_memory(&self) {
        self.inner.memory.account().reset_peak();
    }

    /// Adds a hook that sees the events of every later computation, and of futures (with
    /// `run` 0).
    pub fn add_hook(&self, hook: Arc<dyn EventHook>) {
        self.inner.hooks.write().push(hook);
    }

    /// Computes `c` and returns its value.
    ///
    /// ```
    /// use brisk::prelude::*;
    /// let rt = Runtime::builder().threads(2).build().unwrap();
    /// let add = delayed(|a: i64, b: i64| a + b);
    /// let x = add.call((1, 2));
    /// let y = add.call((&x, 10));
    /// assert_eq!(rt.compute(&(x, y)).unwrap(), (3, 13));
    /// ```
    pub fn compute<C: Compute + ?Sized>(&self, c: &C) -> Result<C::Output> {
        self.compute_with(c, &ComputeOptions::default())
    }

    /// [`compute`](Self::compute) with per-call options (cancellation, progress, trace).
    pub fn compute_with<C: Compute + ?Sized>(
        &self,
        c: &C,
        options: &ComputeOptions,
    ) -> Result<C::Output> {
        let (graph, outputs) = build_graph(c)?;
        let values = self.compute_graph_with(graph, &outputs, options)?;
        let mut it = values.into_iter();
        c.finish(&mut it)
    }

    /// Runs a hand-built graph and returns the values of `outputs`, in order.
    pub fn compute_graph(&self, graph: Graph, outputs: &[Key]) -> Result<Vec<Value>> {
        self.compute_graph_with(graph, outputs, &ComputeOptions::default())
    }

    /// [`compute_graph`](Self::compute_graph) with options.
    pub fn compute_graph_with(
        &self,
        graph: Graph,
        outputs: &[Key],
        options: &ComputeOptions,
    ) -> Result<Vec<Value>> {
        let plan = graph.plan(
            outputs,
            &PlanOptions {
                fuse: options.fuse.unwrap_or(self.inner.fuse),
            },
        )?;
        self.execute_plan(plan, options)
    }

    /// Runs an already planned graph.
    pub fn execute_plan(&self, plan: Plan, options: &ComputeOptions) -> Result<Vec<Value>> {
        let inner = &self.inner;
        let mut hooks: Vec<Arc<dyn EventHook>> = inner.hooks.read().clone();
        hooks.extend(options.hooks.iter().cloned());
        if let Some(trace) = &options.trace {
            hooks.push(Arc::clone(trace) as Arc<dyn EventHook>);
        }
        let progress = options.progress.unwrap_or(inner.progress);
        if progress != ProgressMode::Never {
            let bar = ProgressBar::new(progress);
            if bar.is_visible() {
                hooks.push(Arc::new(bar));
            }
        }
        let executor = options.executor.unwrap_or(inner.executor);
        let cancel = options.cancel.clone().unwrap_or_default();
        let latch = Arc::new(Latch::new());
        let workers = match executor {
            Executor::Threads => inner.threads,
            Executor::Sync => 1,
        };
        let id = inner.next_run.fetch_add(1, Ordering::Relaxed);
        let run = Arc::new(RunState::new(
            id,
            plan,
            workers,
            inner.root_limit,
            Arc::clone(&inner.memory),
            cancel.clone(),
            Arc::clone(&latch),
            hooks,
            Some(&inner.pool.gate),
            Arc::downgrade(&self.inner),
        )?);
        let _spill_source = inner
            .memory
            .register(Arc::downgrade(&run) as Weak<dyn crate::spill::SpillSource>);
        if run.has_hooks() {
            run.emit(&Event::RunStarted {
                run: id,
                tasks: run.plan.len(),
                workers,
                at: std::time::Instant::now(),
            });
        }
        let result = if run.plan.is_empty() {
            Ok(Vec::new())
        } else {
            match executor {
                Executor::Threads => self.run_threads(&run, &cancel),
                Executor::Sync => run_sync(&run, &Arc::downgrade(&self.inner)),
            }
        };
        if run.has_hooks() {
            run.emit(&Event::RunFinished {
                run: id,
                at: std::time::Instant::now(),
                ok: result.is_ok(),
            });
        }
        if result.is_err() {
            run.store.clear();
            inner
                .pool
                .gate
                .forget(|job| matches!(job, Job::Task { run: r, .. } if Arc::ptr_eq(r, &run)));
        }
        result
    }

    fn run_threads(&self, run: &Arc<RunState>, cancel: &CancelToken) -> Result<Vec<Value>> {
        let pool = &self.inner.pool;
        cancel.wake_on_cancel(&run.latch);
        pool.start_run(run);
        block_on(pool, || run.latch.wait());
        if cancel.is_cancelled() {
            // Stop before unregistering so no queued task of this run starts afterwards.
            run.fail(Error::new(ErrorKind::Cancelled));
            pool.end_run(run);
            return Err(Error::new(ErrorKind::Cancelled));
        }
        pool.end_run(run);
        if let Some(e) = run.take_error() {
            return Err(e);
        }
        run.collect_outputs()
    }

    pub(crate) fn pool(&self) -> &Arc<Pool> {
        &self.inner.pool
    }

    pub(crate) fn downgrade(&self) -> Weak<RuntimeInner> {
        Arc::downgrade(&self.inner)
    }
}

/// The sync executor: one task at a time on the calling thread, best priority first.
fn run_sync(run: &Arc<RunState>, _rt: &Weak<RuntimeInner>) -> Result<Vec<Value>> {
    use std::cmp::Reverse;
    use std::collections::BinaryHeap;
    let mut heap: BinaryHeap<Reverse<(u32, u32)>> = run
        .roots
        .iter()
        .map(|&t| Reverse((run.priority(t), t)))
        .collect();
    // Resources cannot be contended with one task at a time; needs were validated on creation.
    let mut ctx: ExecCtx<'_, Job> = ExecCtx::new(0, None);
    while let Some(Reverse((_, task))) = heap.pop() {
        match run.execute(task, false, false, false, &mut ctx, unreachable_job) {
            Outcome::Done => {
                for &t in &ctx.ready {
                    heap.push(Reverse((run.priority(t), t)));
                }
            }
            Outcome::Parked => return Err(Error::internal("sync executor parked a task")),
            Outcome::Discarded | Outcome::Failed => break,
        }
    }
    if let Some(e) = run.take_error() {
        return Err(e);
    }
    if run.cancel.is_cancelled() {
        return Err(Error::new(ErrorKind::Cancelled));
    }
    run.collect_outputs()
}

fn unreachable_job() -> Job {
    // The sync executor passes no resource gate, so nothing is ever parked.
    Job::Call(Arc::new(NoopCall))
}

struct NoopCall;
impl super::pool::PoolCall for NoopCall {
    fn call(&self, _worker: usize) {}
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn byte_sizes_parse() {
        assert_eq!(parse_bytes("8 GiB").unwrap(), 8 << 30);
        assert_eq!(parse_bytes("512MiB").unwrap(), 512 << 20);
        assert_eq!(parse_bytes("1.5 GB").unwrap(), 1_500_000_000);
        assert_eq!(parse_bytes("1000").unwrap(), 1000);
        let err = parse_bytes("8 gallons").unwrap_err().to_string();
        assert!(err.contains("gallons"), "{err}");
        assert!(parse_bytes("lots").is_err());
    }

    fn vars(pairs: &[(&str, &str)]) -> impl Fn(&str) -> Option<std::ffi::OsString> {
        let map: std::collections::HashMap<String, String> = pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        move |name| map.get(name).map(std::ffi::OsString::from)
    }

    #[test]
    fn the_environment_configures_a_runtime() {
        let dir = tempfile::tempdir().unwrap();
        let b = Runtime::builder()
            .with_vars(vars(&[
                ("BRISK_THREADS", "3"),
                ("BRISK_MEMORY_LIMIT", " 64 MiB "),
                ("BRISK_SPILL_DIR", dir.path().to_str().unwrap()),
                ("BRISK_PROGRESS", "never"),
            ]))
            .unwrap();
        assert_eq!(b.threads, Some(3));
        assert!(matches!(b.memory_limit, Some(ByteSize::Bytes(n)) if n == 64 << 20));
        assert_eq!(b.spill_dir.as_deref(), Some(dir.path()));
        assert_eq!(b.progress, ProgressMode::Never);
        let rt = b.build().unwrap();
        assert_eq!(rt.threads(), 3);
        assert_eq!(rt.memory_limit(), 64 << 20);
        // Later builder calls win over the environment; empty variables change nothing.
        let b = Runtime::builder()
            .with_vars(vars(&[("BRISK_THREADS", "3"), ("BRISK_MEMORY_LIMIT", "")]))
            .unwrap()
            .threads(1);
        assert_eq!(b.threads, Some(1));
        assert!(b.memory_limit.is_none());
    }

    #[test]
    fn a_bad_environment_variable_is_a_config_error_naming_it() {
        for (name, value, says) in [
            ("BRISK_THREADS", "0", "positive"),
            ("BRISK_THREADS", "many", "positive"),
            ("BRISK_MEMORY_LIMIT", "8 gallons", "gallons"),
            ("BRISK_PROGRESS", "sometimes", "auto"),
        ] {
            let err = Runtime::builder()
                .with_vars(vars(&[(name, value)]))
                .err()
                .unwrap_or_else(|| panic!("{name}={value} accepted"));
            assert!(matches!(err.kind(), crate::ErrorKind::Config(_)), "{err}");
            let text = err.to_string();
            assert!(text.contains(name) && text.contains(says), "{text}");
        }
    }

    #[test]
    fn zero_threads_is_an_error() {
        let err = Runtime::builder().threads(0).build().err().unwrap();
        assert!(err.to_string().contains("threads"));
    }
}
