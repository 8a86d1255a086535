//! A Chrome-trace / Perfetto recorder driven by scheduler [`Event`]s.
//!
//! [`ChromeTrace`] is an [`EventHook`] that records what every worker did and when, and exports
//! it in the [Trace Event Format] that `chrome://tracing`, <https://ui.perfetto.dev> and
//! Speedscope open: a JSON object `{"traceEvents": [...], "displayTimeUnit": "ms"}`.
//!
//! What is exported:
//!
//! * one complete event (`"ph": "X"`) per finished task: `name` is the task's key
//!   (`load-3`, `("sum", 2, 0)`), `cat` the op name, `pid` 1, `tid` the worker index — one lane
//!   per worker — and `args` `{key, op, bytes}`;
//! * one complete event per failed attempt, with `cat` `"failed"` and `args`
//!   `{key, op, error, will_retry}` (and `cname` `"terrible"`, red in `chrome://tracing`);
//! * spills and reads back from disk as complete events on the lane of the worker that did the
//!   I/O, `cat` `"spill"` (`args` `{key, bytes, disk_bytes}`) or `"unspill"` (`{key, bytes}`);
//! * the start and end of each run as global instant events (`"ph": "i"`, `"s": "g"`);
//! * metadata events (`"ph": "M"`) naming the process `brisk` and each lane `worker N`.
//!
//! Timestamps and durations are in microseconds (fractional: nanosecond resolution), relative
//! to the earliest instant recorded, i.e. the first event of the first run.
//!
//! # Design
//!
//! Recording happens inline on the worker threads, so it must be cheap and must not make the
//! workers contend. Records go to one of a few cache-line-aligned shards chosen by worker index,
//! so each worker mostly takes an uncontended `parking_lot` lock of its own. A record stores the
//! task's [`Key`] by clone (an `Arc` increment plus inline indices; no allocation), timestamps
//! as nanoseconds, and the op name as an index into a per-shard table of interned names, so a
//! task costs no allocation beyond the occasional growth of the shard's vector. Keys are turned
//! into strings only at export. `TaskStarted` events are not recorded: the finish event carries
//! the start time.
//!
//! Export ([`ChromeTrace::to_json`], [`ChromeTrace::write`]) copies each shard under its lock,
//! then sorts and serializes without holding any lock, so it may run while a computation is
//! still recording (the export then holds what was recorded so far).
//!
//! A record is about 100 bytes: a million tasks take about 100 MB while recording, and the JSON
//! is about 150 to 250 bytes per task. Perfetto copes with traces of that size;
//! `chrome://tracing` gets slow beyond a few hundred thousand events.
//!
//! Spill and unspill events share the lane of the worker that did the I/O with its tasks. The
//! viewers expect the events of a lane to nest: I/O done inside a task shows nested under it;
//! I/O that straddles the end of a task may be drawn overlapping it.
//!
//! [Trace Event Format]: https://docs.google.com/document/d/1CvAClvFfyA5R-PhYUmn5OOQtYMH4h6I0nSsKchNAySU

use std::collections::{BTreeSet, HashMap};
use std::fmt::{self, Write as _};
use std::io::{self, BufWriter, Write};
use std::path::Path;
use std::sync::Arc;
use std::time::Instant;

use parking_lot::Mutex;
use serde::Serialize;

use crate::error::{Error, ErrorKind, Result};
use crate::graph::Key;
use crate::sched::event::{Event, EventHook};

/// Records per chunk of a shard's storage (about 100 KiB).
const CHUNK: usize = 1024;
/// Op index meaning "no op" (spill records).
const NO_OP: u32 = u32::MAX;
/// `pid` of every event.
const PID: u32 = 1;

/// Records a computation's events and exports them as a Chrome / Perfetto trace.
///
/// Install it as an [`EventHook`] (it is `Send + Sync`; share it with an `Arc` to keep a handle
/// for exporting after the computation), then call [`write`](Self::write) or
/// [`to_json`](Self::to_json). Recording accumulates over runs until [`clear`](Self::clear).
///
/// ```
/// use std::time::{Duration, Instant};
/// use brisk::Key;
/// use brisk::sched::event::{Event, EventHook};
/// use brisk::sched::trace::ChromeTrace;
///
/// let trace = ChromeTrace::new();
/// // The executors call `on_event`; here we feed it by hand.
/// let key = Key::from(("load", 3));
/// let t0 = Instant::now();
/// # let task = brisk::graph::TaskId(0);
/// trace.on_event(&Event::TaskFinished {
///     run: 1, task, key: &key, op: "load", worker: 0,
///     started: t0, finished: t0 + Duration::from_millis(5), bytes: 800,
/// });
/// assert_eq!(trace.len(), 1);
/// let json: serde_json::Value = serde_json::from_str(&trace.to_json()).unwrap();
/// assert_eq!(json["traceEvents"].as_array().unwrap().iter()
///     .filter(|e| e["ph"] == "X").count(), 1);
/// ```
pub struct ChromeTrace {
    /// Origin of the recorded nanosecond timestamps (any instant works; export re-bases).
    epoch: Instant,
    /// Power-of-two count of per-worker-ish buffers.
    shards: Box<[Shard]>,
    /// Run starts and ends: a handful per computation.
    runs: Mutex<Vec<RunMark>>,
}

/// One buffer, on its own cache lines so that workers do not false-share.
#[repr(align(128))]
#[derive(Default)]
struct Shard(Mutex<ShardData>);

#[derive(Default, Clone)]
struct ShardData {
    records: Records,
    /// Interned op names; records refer to them by index.
    ops: Vec<Arc<str>>,
    op_index: HashMap<Arc<str>, u32>,
    /// Index of the op of the previous record: consecutive tasks often share an op.
    last_op: u32,
    /// Error messages of failed attempts; records refer to them by index.
    messages: Vec<Arc<str>>,
}

impl ShardData {
    #[inline]
    fn intern_op(&mut self, op: &str) -> u32 {
        if let Some(last) = self.ops.get(self.last_op as usize) {
            if **last == *op {
                return self.last_op;
            }
        }
        // A few ops: a scan beats hashing. Many: the map.
        let found = if self.ops.len() <= 16 {
            self.ops.iter().position(|o| **o == *op).map(|i| i as u32)
        } else {
            self.op_index.get(op).copied()
        };
        let index = match found {
            Some(i) => i,
            None => {
                let name: Arc<str> = Arc::from(op);
                let i = self.ops.len() as u32;
                self.ops.push(Arc::clone(&name));
                self.op_index.insert(name, i);
                i
            }
        };
        self.last_op = index;
        index
    }
}

/// Append-only storage in fixed-size chunks: a push never copies earlier records, so a worker
/// holding its shard's lock never stalls on a large reallocation.
#[derive(Default, Clone)]
struct Records {
    chunks: Vec<Vec<Record>>,
    len: usize,
}

impl Records {
    #[inline]
    fn push(&mut self, record: Record) {
        match self.chunks.last_mut() {
            Some(chunk) if chunk.len() < CHUNK => chunk.push(record),
            _ => {
                let mut chunk = Vec::with_capacity(CHUNK);
                chunk.push(record);
                self.chunks.push(chunk);
            }
        }
        self.len += 1;
    }

    fn len(&self) -> usize {
        self.len
    }

    fn get(&self, i: usize) -> &Record {
        &self.chunks[i / CHUNK][i % CHUNK]
    }

    fn iter(&self) -> impl Iterator<Item = &Record> {
        self.chunks.iter().flatten()
    }
}

#[derive(Clone)]
struct Record {
    key: Key,
    /// Start, in ns relative to `ChromeTrace::epoch` (negative if earlier).
    start_ns: i64,
    dur_ns: u64,
    /// Result bytes (tasks) or in-memory bytes (spills).
    bytes: u64,
    worker: u32,
    /// Index into the shard's ops, or `NO_OP`.
    op: u32,
    kind: Kind,
}

#[derive(Clone, Copy)]
enum Kind {
    Task,
    Failed { message: u32, will_retry: bool },
    Spill { disk_bytes: u64 },
    Unspill,
}

#[derive(Clone, Copy)]
struct RunMark {
    run: u64,
    at_ns: i64,
    what: RunWhat,
}

#[derive(Clone, Copy)]
enum RunWhat {
    Started { tasks: usize, workers: usize },
    Finished { ok: bool },
}

impl ChromeTrace {
    /// An empty recorder.
    pub fn new() -> Self {
        let parallelism = std::thread::available_parallelism().map_or(8, |n| n.get());
        let shards = parallelism.clamp(1, 256).next_power_of_two();
        ChromeTrace {
            epoch: Instant::now(),
            shards: (0..shards).map(|_| Shard::default()).collect(),
            runs: Mutex::new(Vec::new()),
        }
    }

    /// Number of recorded task, failure, spill and unspill events (run markers and metadata
    /// are not counted).
    pub fn len(&self) -> usize {
        self.shards.iter().map(|s| s.0.lock().records.len()).sum()
    }

    /// True when no task, failure, spill or unspill event has been recorded.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Forgets everything recorded so far.
    pub fn clear(&self) {
        for shard in self.shards.iter() {
            *shard.0.lock() = ShardData::default();
        }
        self.runs.lock().clear();
    }

    /// The trace as a JSON string in the Trace Event Format's object form.
    pub fn to_json(&self) -> String {
        let mut out = Vec::new();
        self.write_json(&mut out)
            .expect("writing JSON to a Vec<u8> cannot fail");
        // serde_json writes UTF-8 only.
        String::from_utf8(out)
            .unwrap_or_else(|e| String::from_utf8_lossy(e.as_bytes()).into_owned())
    }

    /// Writes the trace to a JSON file at `path`, to open in <https://ui.perfetto.dev> or
    /// `chrome://tracing`.
    ///
    /// ```no_run
    /// # fn main() -> brisk::Result<()> {
    /// let trace = brisk::sched::trace::ChromeTrace::new();
    /// // ... run a computation with `trace` installed as a hook ...
    /// trace.write(std::path::Path::new("trace.json"))?;
    /// # Ok(())
    /// # }
    /// ```
    pub fn write(&self, path: &Path) -> Result<()> {
        let io_error = |source: io::Error| {
            Error::new(ErrorKind::Io {
                context: format!("writing trace {}", path.display()),
                source,
            })
        };
        let file = std::fs::File::create(path).map_err(io_error)?;
        // `write_json` flushes the buffer, so write errors are reported, not lost on drop.
        self.write_json(BufWriter::with_capacity(1 << 16, file))
            .map_err(io_error)
    }

    /// Streams the trace as JSON into `out` (wrap files in a `BufWriter`).
    pub fn write_json<W: Write>(&self, mut out: W) -> io::Result<()> {
        // Snapshot under the locks, then work without them.
        let shards: Vec<ShardData> = self.shards.iter().map(|s| s.0.lock().clone()).collect();
        let runs: Vec<RunMark> = self.runs.lock().clone();

        let mut order: Vec<(i64, u32, u32, u32)> = Vec::new();
        for (s, shard) in shards.iter().enumerate() {
            for (r, rec) in shard.records.iter().enumerate() {
                order.push((rec.start_ns, rec.worker, s as u32, r as u32));
            }
        }
        order.sort_unstable();
        let origin = order
            .first()
            .map(|o| o.0)
            .into_iter()
            .chain(runs.iter().map(|r| r.at_ns))
            .min()
            .unwrap_or(0);
        let micros = |ns: i64| (ns.saturating_sub(origin)) as f64 / 1000.0;

        let mut lanes: BTreeSet<u32> = shards
            .iter()
            .flat_map(|s| s.records.iter().map(|r| r.worker))
            .collect();
        for run in &runs {
            if let RunWhat::Started { workers, .. } = run.what {
                lanes.extend(0..u32::try_from(workers).unwrap_or(u32::MAX).min(4096));
            }
        }

        out.write_all(b"{\"traceEvents\":[\n")?;
        let mut first = true;
        let mut emit = |out: &mut W, event: &OutEvent<'_>| -> io::Result<()> {
            if !first {
                out.write_all(b",\n")?;
            }
            first = false;
            serde_json::to_writer(&mut *out, event).map_err(io::Error::from)
        };

        // Metadata: process and lane names, lanes in worker order.
        emit(
            &mut out,
            &OutEvent::metadata("process_name", None, MetaArgs::name("brisk")),
        )?;
        let mut lane_name = String::new();
        for &lane in &lanes {
            lane_name.clear();
            let _ = write!(lane_name, "worker {lane}");
            emit(
                &mut out,
                &OutEvent::metadata("thread_name", Some(lane), MetaArgs::name(&lane_name)),
            )?;
            emit(
                &mut out,
                &OutEvent::metadata("thread_sort_index", Some(lane), MetaArgs::sort_index(lane)),
            )?;
        }

        // Run markers.
        let mut name = String::new();
        for run in &runs {
            name.clear();
            let (args, scope_name) = match run.what {
                RunWhat::Started { tasks, workers } => (
                    Args {
                        run: Some(run.run),
                        tasks: Some(tasks as u64),
                        workers: Some(workers as u64),
                        ..Args::default()
                    },
                    "started",
                ),
                RunWhat::Finished { ok } => (
                    Args {
                        run: Some(run.run),
                        ok: Some(ok),
                        ..Args::default()
                    },
                    if ok { "finished" } else { "failed" },
                ),
            };
            let _ = write!(name, "run {} {scope_name}", run.run);
            emit(
                &mut out,
                &OutEvent {
                    name: &name,
                    cat: Some("run"),
                    ph: "i",
                    ts: Some(micros(run.at_ns)),
                    dur: None,
                    pid: PID,
                    tid: Some(0),
                    s: Some("g"),
                    cname: None,
                    args: ArgsOut::Event(args),
                },
            )?;
        }

        // Tasks, failures, spills, in start order.
        let mut key_text = String::new();
        for &(_, _, s, r) in &order {
            let shard = &shards[s as usize];
            let rec = shard.records.get(r as usize);
            key_text.clear();
            let _ = write!(key_text, "{}", rec.key);
            let op = shard.ops.get(rec.op as usize).map(|o| &**o);
            let mut args = Args {
                key: Some(&key_text),
                op,
                ..Args::default()
            };
            let (cat, cname) = match rec.kind {
                Kind::Task => {
                    args.bytes = Some(rec.bytes);
                    (op.unwrap_or("task"), None)
                }
                Kind::Failed {
                    message,
                    will_retry,
                } => {
                    args.error = shard.messages.get(message as usize).map(|m| &**m);
                    args.will_retry = Some(will_retry);
                    ("failed", Some("terrible"))
                }
                Kind::Spill { disk_bytes } => {
                    args.bytes = Some(rec.bytes);
                    args.disk_bytes = Some(disk_bytes);
                    ("spill", None)
                }
                Kind::Unspill => {
                    args.bytes = Some(rec.bytes);
                    ("unspill", None)
                }
            };
            emit(
                &mut out,
                &OutEvent {
                    name: &key_text,
                    cat: Some(cat),
                    ph: "X",
                    ts: Some(micros(rec.start_ns)),
                    dur: Some(rec.dur_ns as f64 / 1000.0),
                    pid: PID,
                    tid: Some(rec.worker),
                    s: None,
                    cname,
                    args: ArgsOut::Event(args),
                },
            )?;
        }
        out.write_all(b"\n],\"displayTimeUnit\":\"ms\"}\n")?;
        out.flush()
    }

    /// Nanoseconds from `epoch` to `at`, negative if `at` is earlier.
    #[inline]
    fn ns(&self, at: Instant) -> i64 {
        match at.checked_duration_since(self.epoch) {
            Some(d) => i64::try_from(d.as_nanos()).unwrap_or(i64::MAX),
            None => -i64::try_from((self.epoch - at).as_nanos()).unwrap_or(i64::MAX),
        }
    }

    #[inline]
    fn shard(&self, worker: usize) -> &Mutex<ShardData> {
        &self.shards[worker & (self.shards.len() - 1)].0
    }

    #[inline]
    #[allow(clippy::too_many_arguments)]
    fn record(
        &self,
        key: &Key,
        op: Option<&str>,
        worker: usize,
        started: Instant,
        finished: Instant,
        bytes: usize,
        kind: impl FnOnce(&mut ShardData) -> Kind,
    ) {
        let start_ns = self.ns(started);
        let dur_ns = u64::try_from(finished.saturating_duration_since(started).as_nanos())
            .unwrap_or(u64::MAX);
        let key = key.clone();
        let mut shard = self.shard(worker).lock();
        let op = op.map_or(NO_OP, |op| shard.intern_op(op));
        let kind = kind(&mut shard);
        shard.records.push(Record {
            key,
            start_ns,
            dur_ns,
            bytes: bytes as u64,
            worker: u32::try_from(worker).unwrap_or(u32::MAX),
            op,
            kind,
        });
    }
}

impl Default for ChromeTrace {
    fn default() -> Self {
        ChromeTrace::new()
    }
}

impl fmt::Debug for ChromeTrace {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ChromeTrace")
            .field("events", &self.len())
            .field("runs", &self.runs.lock().len())
            .finish()
    }
}

impl EventHook for ChromeTrace {
    fn on_event(&self, event: &Event<'_>) {
        match *event {
            Event::TaskFinished {
                key,
                op,
                worker,
                started,
                finished,
                bytes,
                ..
            } => self.record(key, Some(op), worker, started, finished, bytes, |_| {
                Kind::Task
            }),
            Event::TaskFailed {
                key,
                op,
                worker,
                started,
                finished,
                message,
                will_retry,
                ..
            } => self.record(key, Some(op), worker, started, finished, 0, |shard| {
                shard.messages.push(Arc::from(message));
                Kind::Failed {
                    message: (shard.messages.len() - 1) as u32,
                    will_retry,
                }
            }),
            Event::Spilled {
                key,
                bytes,
                disk_bytes,
                worker,
                started,
                finished,
            } => self.record(key, None, worker, started, finished, bytes, |_| {
                Kind::Spill {
                    disk_bytes: disk_bytes as u64,
                }
            }),
            Event::Unspilled {
                key,
                bytes,
                worker,
                started,
                finished,
            } => self.record(key, None, worker, started, finished, bytes, |_| {
                Kind::Unspill
            }),
            Event::RunStarted {
                run,
                tasks,
                workers,
                at,
            } => self.runs.lock().push(RunMark {
                run,
                at_ns: self.ns(at),
                what: RunWhat::Started { tasks, workers },
            }),
            Event::RunFinished { run, at, ok } => self.runs.lock().push(RunMark {
                run,
                at_ns: self.ns(at),
                what: RunWhat::Finished { ok },
            }),
            _ => {}
        }
    }
}

/// One exported trace event.
#[derive(Serialize)]
struct OutEvent<'a> {
    name: &'a str,
    #[serde(skip_serializing_if = "Option::is_none")]
    cat: Option<&'a str>,
    ph: &'static str,
    #[serde(skip_serializing_if = "Option::is_none")]
    ts: Option<f64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    dur: Option<f64>,
    pid: u32,
    #[serde(skip_serializing_if = "Option::is_none")]
    tid: Option<u32>,
    /// Scope of instant events (`"g"`: global).
    #[serde(skip_serializing_if = "Option::is_none")]
    s: Option<&'static str>,
    /// Reserved color name of the legacy viewer.
    #[serde(skip_serializing_if = "Option::is_none")]
    cname: Option<&'static str>,
    args: ArgsOut<'a>,
}

impl<'a> OutEvent<'a> {
    fn metadata(name: &'static str, tid: Option<u32>, args: MetaArgs<'a>) -> Self {
        OutEvent {
            name,
            cat: None,
            ph: "M",
            ts: None,
            dur: None,
            pid: PID,
            tid,
            s: None,
            cname: None,
            args: ArgsOut::Meta(args),
        }
    }
}

#[derive(Serialize)]
#[serde(untagged)]
enum ArgsOut<'a> {
    Event(Args<'a>),
    Meta(MetaArgs<'a>),
}

#[derive(Serialize, Default)]
struct Args<'a> {
    #[serde(skip_serializing_if = "Option::is_none")]
    key: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    op: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    bytes: Option<u64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    disk_bytes: Option<u64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    error: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    will_retry: Option<bool>,
    #[serde(skip_serializing_if = "Option::is_none")]
    run: Option<u64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    tasks: Option<u64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    workers: Option<u64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    ok: Option<bool>,
}

#[derive(Serialize)]
struct MetaArgs<'a> {
    #[serde(skip_serializing_if = "Option::is_none")]
    name: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    sort_index: Option<u32>,
}

impl<'a> MetaArgs<'a> {
    fn name(name: &'a str) -> Self {
        MetaArgs {
            name: Some(name),
            sort_index: None,
        }
    }

    fn sort_index(index: u32) -> Self {
        MetaArgs {
            name: None,
            sort_index: Some(index),
        }
    }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use serde_json::Value;

    use super::*;
    use crate::graph::TaskId;

    fn ms(n: u64) -> Duration {
        Duration::from_millis(n)
    }

    fn task<'a>(
        key: &'a Key,
        op: &'a str,
        worker: usize,
        t0: Instant,
        from: u64,
        to: u64,
    ) -> Event<'a> {
        Event::TaskFinished {
            run: 1,
            task: TaskId(0),
            key,
            op,
            worker,
            started: t0 + ms(from),
            finished: t0 + ms(to),
            bytes: 1000 + worker,
        }
    }

    fn parse(trace: &ChromeTrace) -> Vec<Value> {
        let json: Value = serde_json::from_str(&trace.to_json()).expect("valid JSON");
        assert_eq!(json["displayTimeUnit"], "ms");
        json["traceEvents"]
            .as_array()
            .expect("traceEvents array")
            .clone()
    }

    fn by_ph<'v>(events: &'v [Value], ph: &str) -> Vec<&'v Value> {
        events.iter().filter(|e| e["ph"] == ph).collect()
    }

    #[test]
    fn tasks_become_complete_events_on_worker_lanes() {
        let trace = ChromeTrace::new();
        let t0 = Instant::now();
        let load0 = Key::from(("load", 0));
        let load1 = Key::from(("load", 1));
        let sum = Key::from("sum-\"total\"");
        trace.on_event(&Event::RunStarted {
            run: 1,
            tasks: 3,
            workers: 3,
            at: t0,
        });
        trace.on_event(&task(&load0, "load", 0, t0, 10, 30));
        trace.on_event(&task(&load1, "load", 1, t0, 12, 40));
        trace.on_event(&task(&sum, "sum", 0, t0, 40, 45));
        trace.on_event(&Event::RunFinished {
            run: 1,
            at: t0 + ms(46),
            ok: true,
        });
        assert_eq!(trace.len(), 3);

        let events = parse(&trace);
        let complete = by_ph(&events, "X");
        assert_eq!(complete.len(), 3);
        // Sorted by start; ts relative to the first event (RunStarted at t0), in µs.
        let first = complete[0];
        assert_eq!(first["name"], "(\"load\", 0)");
        assert_eq!(first["cat"], "load");
        assert_eq!(first["pid"], 1);
        assert_eq!(first["tid"], 0);
        assert_eq!(first["ts"].as_f64(), Some(10_000.0));
        assert_eq!(first["dur"].as_f64(), Some(20_000.0));
        assert_eq!(first["args"]["key"], "(\"load\", 0)");
        assert_eq!(first["args"]["op"], "load");
        assert_eq!(first["args"]["bytes"], 1000);
        assert_eq!(complete[1]["tid"], 1);
        assert_eq!(complete[1]["dur"].as_f64(), Some(28_000.0));
        assert_eq!(complete[2]["name"], "sum-\"total\"");
        assert_eq!(complete[2]["cat"], "sum");
        assert_eq!(complete[2]["ts"].as_f64(), Some(40_000.0));

        // Lanes: workers 0..3 from RunStarted, named and ordered.
        let meta = by_ph(&events, "M");
        let names: Vec<(u64, &str)> = meta
            .iter()
            .filter(|e| e["name"] == "thread_name")
            .map(|e| {
                (
                    e["tid"].as_u64().unwrap(),
                    e["args"]["name"].as_str().unwrap(),
                )
            })
            .collect();
        assert_eq!(
            names,
            vec![(0, "worker 0"), (1, "worker 1"), (2, "worker 2")]
        );
        assert!(meta
            .iter()
            .any(|e| e["name"] == "process_name" && e["args"]["name"] == "brisk"));

        let instants = by_ph(&events, "i");
        assert_eq!(instants.len(), 2);
        assert_eq!(instants[0]["ts"].as_f64(), Some(0.0));
        assert_eq!(instants[1]["args"]["ok"], true);
        assert_eq!(instants[1]["ts"].as_f64(), Some(46_000.0));
    }

    #[test]
    fn failures_and_spills() {
        let trace = ChromeTrace::new();
        let t0 = Instant::now();
        let key = Key::from(("load", 7));
        trace.on_event(&Event::TaskFailed {
            run: 1,
            task: TaskId(3),
            key: &key,
            op: "load",
            worker: 2,
            started: t0,
            finished: t0 + ms(1),
            message: "file \"x\" not found",
            will_retry: true,
        });
        trace.on_event(&Event::Spilled {
            key: &key,
            bytes: 4096,
            disk_bytes: 1024,
            worker: 2,
            started: t0 + ms(2),
            finished: t0 + ms(3),
        });
        trace.on_event(&Event::Unspilled {
            key: &key,
            bytes: 4096,
            worker: 5,
            started: t0 + ms(4),
            finished: t0 + ms(6),
        });
        // Not recorded.
        trace.on_event(&Event::TaskStarted {
            run: 1,
            task: TaskId(3),
            key: &key,
            op: "load",
            worker: 2,
            at: t0,
        });
        assert_eq!(trace.len(), 3);

        let events = parse(&trace);
        let complete = by_ph(&events, "X");
        assert_eq!(complete.len(), 3);
        let failed = complete[0];
        assert_eq!(failed["cat"], "failed");
        assert_eq!(failed["tid"], 2);
        assert_eq!(failed["args"]["error"], "file \"x\" not found");
        assert_eq!(failed["args"]["will_retry"], true);
        assert_eq!(failed["args"]["op"], "load");
        assert_eq!(failed["dur"].as_f64(), Some(1000.0));

        let spill = complete[1];
        assert_eq!(spill["cat"], "spill");
        assert_eq!(spill["tid"], 2);
        assert_eq!(spill["ts"].as_f64(), Some(2000.0));
        assert_eq!(spill["args"]["bytes"], 4096);
        assert_eq!(spill["args"]["disk_bytes"], 1024);
        assert!(spill["args"].get("op").is_none());

        let unspill = complete[2];
        assert_eq!(unspill["cat"], "unspill");
        assert_eq!(unspill["tid"], 5);
        assert_eq!(unspill["dur"].as_f64(), Some(2000.0));
        assert_eq!(unspill["args"]["bytes"], 4096);

        // Lanes are the workers seen (no RunStarted here).
        let lanes: Vec<u64> = by_ph(&events, "M")
            .iter()
            .filter(|e| e["name"] == "thread_name")
            .map(|e| e["tid"].as_u64().unwrap())
            .collect();
        assert_eq!(lanes, vec![2, 5]);
    }

    #[test]
    fn concurrent_recording_and_many_ops() {
        let trace = ChromeTrace::new();
        let t0 = Instant::now();
        std::thread::scope(|s| {
            for w in 0..4usize {
                let trace = &trace;
                s.spawn(move || {
                    let name: Arc<str> = Arc::from(format!("blk-{w}"));
                    for i in 0..500u64 {
                        let key = Key::indexed(&name, &[i as i64]);
                        let op = format!("op{}", i % 7);
                        trace.on_event(&task(&key, &op, w, t0, i, i + 1));
                    }
                });
            }
        });
        assert_eq!(trace.len(), 2000);
        let events = parse(&trace);
        let complete = by_ph(&events, "X");
        assert_eq!(complete.len(), 2000);
        for w in 0..4u64 {
            let lane: Vec<&&Value> = complete.iter().filter(|e| e["tid"] == w).collect();
            assert_eq!(lane.len(), 500);
            assert!(lane.iter().all(|e| e["dur"].as_f64() == Some(1000.0)));
        }
        assert_eq!(
            complete.iter().filter(|e| e["cat"] == "op3").count(),
            4 * (500 / 7 + usize::from(500 % 7 > 3))
        );
        // ts are non-decreasing (events are sorted by start).
        let ts: Vec<f64> = complete.iter().map(|e| e["ts"].as_f64().unwrap()).collect();
        assert!(ts.windows(2).all(|w| w[0] <= w[1]));
    }

    #[test]
    fn empty_trace_and_clear() {
        let trace = ChromeTrace::default();
        assert!(trace.is_empty());
        let events = parse(&trace);
        assert_eq!(events.len(), 1); // process_name only
        let key = Key::from("a");
        let t0 = Instant::now();
        trace.on_event(&task(&key, "f", 0, t0, 0, 1));
        assert_eq!(trace.len(), 1);
        trace.clear();
        assert!(trace.is_empty());
    }

    #[test]
    fn events_before_creation_are_not_negative() {
        let t0 = Instant::now();
        let trace = ChromeTrace::new();
        let key = Key::from("early");
        // Started before the recorder existed (if the clock allows going back that far).
        let earlier = t0.checked_sub(ms(5)).unwrap_or(t0);
        trace.on_event(&Event::TaskFinished {
            run: 1,
            task: TaskId(0),
            key: &key,
            op: "f",
            worker: 0,
            started: earlier,
            finished: t0 + ms(10),
            bytes: 0,
        });
        let events = parse(&trace);
        let x = by_ph(&events, "X");
        assert_eq!(x[0]["ts"].as_f64(), Some(0.0));
    }

    #[test]
    fn write_to_file_and_report_io_errors() {
        let trace = ChromeTrace::new();
        let key = Key::from("a");
        trace.on_event(&task(&key, "f", 0, Instant::now(), 0, 1));
        let dir = std::env::temp_dir().join(format!("brisk-trace-test-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let path = dir.join("trace.json");
        trace.write(&path).unwrap();
        let text = std::fs::read_to_string(&path).unwrap();
        let json: Value = serde_json::from_str(&text).unwrap();
        assert_eq!(by_ph(json["traceEvents"].as_array().unwrap(), "X").len(), 1);
        std::fs::remove_dir_all(&dir).unwrap();

        let bad = dir.join("missing-dir").join("trace.json");
        let err = trace.write(&bad).unwrap_err();
        assert!(matches!(err.kind(), ErrorKind::Io { .. }));
        assert!(err.to_string().starts_with("writing trace "), "{err}");
    }
}
