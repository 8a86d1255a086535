//! Larger-than-memory benchmarks: data several times the memory limit goes through the store
//! to disk and back.
//!
//! - [`spill`]: `n` chunks (alternately random and compressible) that must all be held until
//!   a barrier, then each is read back and its checksum verified. Every chunk beyond the limit
//!   is written once and read once, so the write and read rates are the store's spill path.
//! - [`outofcore`]: an all-to-all exchange like a transpose or rechunk: `n` input blocks, each
//!   cut into `n` pieces; output block `j` concatenates piece `j` of every input. No output can
//!   finish before every input is cut, so the pieces (the whole data set) must spill. The
//!   checksum of the outputs, which depends on every element and its position, is compared
//!   with the checksum of the inputs.
//!
//! Rates are bytes over the time the store spent writing or reading, the union of the I/O
//! intervals reported by `Spilled`/`Unspilled` events (so two workers reading at once are not
//! counted twice). `write_gbps`/`read_gbps` count the values' bytes in memory (before
//! compression); `disk_write_gbps`/`disk_read_gbps` count the bytes of the spill files
//! (after compression, headers included), which is what the disk saw.
//!
//! Spill files are written through the page cache and read back with `mmap`, so a read may
//! never reach the device. `device_read_gib` is what the process really fetched from storage
//! during the run (`read_bytes` of `/proc/self/io`, which counts page faults on mapped files
//! too), and `page_cache_read_frac` is the share of the spill-file bytes read back that did
//! not come from the device. `brisk bench spill --drop-caches` (root only) flushes and drops
//! the page cache at the barrier, before anything is read back, so reads hit the disk.
//! Peak RSS is the process's high-water mark.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::{Duration, Instant};

use ndarray::{s, Array1};
use parking_lot::Mutex;
use rand::{RngCore, SeedableRng};

use crate::error::{Error, Result};
use crate::graph::{Graph, Key, Op, TaskId, Value};
use crate::sched::{Event, EventHook, Runtime};

/// Bytes per element of the chunks (f64).
const ELEM: usize = 8;

/// One spill write or read: when, and its bytes in memory and on disk.
#[derive(Clone, Copy)]
struct Io {
    started: Instant,
    finished: Instant,
    bytes: usize,
    disk_bytes: usize,
}

/// Spill and unspill intervals seen during a run.
#[derive(Default)]
pub struct IoLog {
    writes: Mutex<Vec<Io>>,
    reads: Mutex<Vec<Io>>,
    /// Bytes of each key's latest spill file: an `Unspilled` event reports only the bytes in
    /// memory, and the file it read is the one the key's last `Spilled` event wrote.
    file_bytes: Mutex<HashMap<Key, usize>>,
}

impl EventHook for IoLog {
    fn on_event(&self, event: &Event<'_>) {
        match event {
            Event::Spilled {
                key,
                bytes,
                disk_bytes,
                started,
                finished,
                ..
            } => {
                self.file_bytes.lock().insert((*key).clone(), *disk_bytes);
                self.writes.lock().push(Io {
                    started: *started,
                    finished: *finished,
                    bytes: *bytes,
                    disk_bytes: *disk_bytes,
                });
            }
            Event::Unspilled {
                key,
                bytes,
                started,
                finished,
                ..
            } => {
                let disk_bytes = self.file_bytes.lock().get(*key).copied().unwrap_or(0);
                self.reads.lock().push(Io {
                    started: *started,
                    finished: *finished,
                    bytes: *bytes,
                    disk_bytes,
                });
            }
            _ => {}
        }
    }
}

/// Bytes in memory and on disk, and the length of the union of the intervals.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
struct Busy {
    bytes: u64,
    disk_bytes: u64,
    time: Duration,
}

impl Busy {
    fn of(intervals: &[Io]) -> Busy {
        let mut v: Vec<_> = intervals.to_vec();
        v.sort_by_key(|i| i.started);
        let mut time = Duration::ZERO;
        let mut current: Option<(Instant, Instant)> = None;
        for io in &v {
            let (a, b) = (io.started, io.finished);
            current = match current {
                Some((s, e)) if a <= e => Some((s, e.max(b))),
                Some((s, e)) => {
                    time += e - s;
                    Some((a, b))
                }
                None => Some((a, b)),
            };
        }
        if let Some((s, e)) = current {
            time += e - s;
        }
        Busy {
            bytes: v.iter().map(|i| i.bytes as u64).sum(),
            disk_bytes: v.iter().map(|i| i.disk_bytes as u64).sum(),
            time,
        }
    }

    /// GB/s of `bytes` over the busy time (0 when nothing moved).
    fn gbps(&self, bytes: u64) -> f64 {
        if self.time.is_zero() {
            0.0
        } else {
            bytes as f64 / self.time.as_secs_f64() / 1e9
        }
    }
}

impl IoLog {
    /// GB/s written and read, counting bytes in memory (0 when nothing was).
    pub fn rates(&self) -> (f64, f64) {
        let (w, r) = (self.write_busy(), self.read_busy());
        (w.gbps(w.bytes), r.gbps(r.bytes))
    }

    /// GB/s written to and read from the spill files, counting the files' bytes.
    pub fn disk_rates(&self) -> (f64, f64) {
        let (w, r) = (self.write_busy(), self.read_busy());
        (w.gbps(w.disk_bytes), r.gbps(r.disk_bytes))
    }

    fn write_busy(&self) -> Busy {
        Busy::of(&self.writes.lock())
    }

    fn read_busy(&self) -> Busy {
        Busy::of(&self.reads.lock())
    }
}

/// Bytes this process has fetched from storage so far (`read_bytes` of `/proc/self/io`: reads
/// and page faults that reached a device, not those served by the page cache); `None` where
/// the file is missing or unreadable.
pub fn device_read_bytes() -> Option<u64> {
    let io = std::fs::read_to_string("/proc/self/io").ok()?;
    io.lines()
        .find_map(|l| l.strip_prefix("read_bytes:"))?
        .trim()
        .parse()
        .ok()
}

/// Flushes dirty pages and drops the page cache (`/proc/sys/vm/drop_caches`, root only), so
/// the next reads of the spill files come from the device.
///
/// # Errors
/// When `sync` cannot run or the kernel refuses the write (not root, read-only `/proc/sys`).
pub fn drop_page_cache() -> Result<()> {
    let status = std::process::Command::new("sync")
        .status()
        .map_err(|e| Error::io("running sync before dropping the page cache", e))?;
    if !status.success() {
        return Err(Error::io(
            "running sync before dropping the page cache",
            std::io::Error::other(format!("sync exited with {status}")),
        ));
    }
    std::fs::write("/proc/sys/vm/drop_caches", "1\n").map_err(|e| {
        Error::io(
            "writing /proc/sys/vm/drop_caches (--drop-caches needs root)",
            e,
        )
    })
}

/// Peak resident set size of this process in MiB (`VmHWM`), or 0 where unknown.
pub fn peak_rss_mib() -> f64 {
    super::proc_status_mib("VmHWM").unwrap_or(0.0)
}

/// A chunk of `len` f64: random bits (incompressible) or a short repeating pattern.
fn chunk(seed: u64, len: usize, random: bool) -> Array1<f64> {
    let mut data = vec![0f64; len];
    if random {
        let mut rng = rand::rngs::SmallRng::seed_from_u64(seed);
        for x in &mut data {
            // Uniform in [0, 1) from the top 53 bits.
            *x = (rng.next_u64() >> 11) as f64 * (1.0 / (1u64 << 53) as f64);
        }
    } else {
        for (i, x) in data.iter_mut().enumerate() {
            *x = ((i as u64 ^ seed) % 1024) as f64 * 0.25;
        }
    }
    Array1::from_vec(data)
}

/// A checksum that depends on every value and on its global position `base + i`.
fn checksum(values: &[f64], base: u64) -> u64 {
    values.iter().enumerate().fold(0u64, |acc, (i, x)| {
        let pos = (base + i as u64).wrapping_mul(0x9E37_79B9_7F4A_7C15);
        acc.wrapping_add(x.to_bits() ^ pos)
    })
}

fn slice_of(v: &Value) -> Result<&[f64]> {
    v.downcast_ref::<Array1<f64>>()
        .and_then(|a| a.as_slice())
        .ok_or_else(|| Error::internal("expected a contiguous f64 array"))
}

fn u64_of(v: &Value) -> Result<u64> {
    v.downcast_ref::<u64>()
        .copied()
        .ok_or_else(|| Error::internal("expected a u64"))
}

/// What a larger-than-memory benchmark measured.
#[derive(Debug, Clone)]
pub struct SpillReport {
    /// GB/s of spill writes, counting the values' bytes in memory.
    pub write_gbps: f64,
    /// GB/s of reads back, counting the values' bytes in memory.
    pub read_gbps: f64,
    /// GB/s of spill writes, counting the bytes of the files (after compression).
    pub disk_write_gbps: f64,
    /// GB/s of reads back, counting the bytes of the files read.
    pub disk_read_gbps: f64,
    /// Peak bytes the store held in memory.
    pub peak_managed: usize,
    /// Peak RSS of the process, MiB.
    pub peak_rss_mib: f64,
    /// Bytes spilled (in memory, before compression).
    pub spilled: u64,
    /// Bytes written to spill files (after compression, headers included).
    pub disk_written: u64,
    /// Bytes of spill files read back.
    pub disk_read: u64,
    /// Bytes the process fetched from storage during the run; `None` where unknown.
    pub device_read: Option<u64>,
    /// Wall time of the computation.
    pub wall: Duration,
}

impl SpillReport {
    /// Share of the spill-file bytes read back that the page cache served (did not come from
    /// the device); `None` where unknown or when nothing was read.
    pub fn page_cache_read_frac(&self) -> Option<f64> {
        let device = self.device_read? as f64;
        (self.disk_read > 0).then(|| (1.0 - device / self.disk_read as f64).clamp(0.0, 1.0))
    }

    /// The `brisk bench spill` line.
    pub fn line(&self) -> String {
        let gib = |b: u64| b as f64 / (1u64 << 30) as f64;
        let or_na = |v: Option<f64>, digits: usize| {
            v.map_or_else(|| "na".to_string(), |v| format!("{v:.digits$}"))
        };
        format!(
            "write_gbps={:.3} disk_write_gbps={:.3} read_gbps={:.3} disk_read_gbps={:.3} \
             spilled_gib={:.3} disk_written_gib={:.3} disk_read_gib={:.3} device_read_gib={} \
             page_cache_read_frac={} peak_managed_mib={:.1} peak_rss_mib={:.1}",
            self.write_gbps,
            self.disk_write_gbps,
            self.read_gbps,
            self.disk_read_gbps,
            gib(self.spilled),
            gib(self.disk_written),
            gib(self.disk_read),
            or_na(self.device_read.map(gib), 3),
            or_na(self.page_cache_read_frac(), 3),
            self.peak_managed as f64 / (1u64 << 20) as f64,
            self.peak_rss_mib,
        )
    }

    /// The line plus the wall time (`brisk bench outofcore`).
    pub fn line_with_wall(&self) -> String {
        format!("{} wall_s={:.3}", self.line(), self.wall.as_secs_f64())
    }
}

fn run_measured(rt: &Runtime, graph: Graph, outputs: &[Key]) -> Result<(Vec<Value>, SpillReport)> {
    let log = Arc::new(IoLog::default());
    rt.reset_peak_memory();
    let options = crate::ComputeOptions::new()
        .hook(Arc::clone(&log) as Arc<dyn EventHook>)
        .progress(crate::ProgressMode::Auto);
    let device_before = device_read_bytes();
    let start = Instant::now();
    let values = rt.compute_graph_with(graph, outputs, &options)?;
    let wall = start.elapsed();
    let device_read = device_read_bytes()
        .zip(device_before)
        .map(|(after, before)| after.saturating_sub(before));
    let after = rt.memory_stats();
    let (write_gbps, read_gbps) = log.rates();
    let (disk_write_gbps, disk_read_gbps) = log.disk_rates();
    let (written, read) = (log.write_busy(), log.read_busy());
    Ok((
        values,
        SpillReport {
            write_gbps,
            read_gbps,
            disk_write_gbps,
            disk_read_gbps,
            peak_managed: after.peak_bytes,
            peak_rss_mib: peak_rss_mib(),
            spilled: written.bytes,
            disk_written: written.disk_bytes,
            disk_read: read.disk_bytes,
            device_read,
            wall,
        },
    ))
}

fn elems_per_chunk(chunk_bytes: u64) -> Result<usize> {
    let n = (chunk_bytes as usize) / ELEM;
    if n == 0 {
        return Err(Error::config(format!(
            "chunk size {chunk_bytes} bytes holds no f64"
        )));
    }
    Ok(n)
}

/// `brisk bench spill`: `total` bytes in chunks of `chunk` bytes, all held until a barrier,
/// then read back and verified.
///
/// # Errors
/// A chunk that came back different from what was written, or any compute error.
pub fn spill(rt: &Runtime, total: u64, chunk_bytes: u64) -> Result<SpillReport> {
    spill_with(rt, total, chunk_bytes, false)
}

/// [`spill`], optionally dropping the page cache at the barrier (see [`drop_page_cache`]) so
/// every chunk read back comes from the device.
///
/// # Errors
/// As [`spill`], and a failure to drop the page cache.
pub fn spill_with(
    rt: &Runtime,
    total: u64,
    chunk_bytes: u64,
    drop_caches: bool,
) -> Result<SpillReport> {
    let len = elems_per_chunk(chunk_bytes)?;
    let n = (total / (len * ELEM) as u64).max(1) as i64;
    let mut g = Graph::new();
    let make = Op::new("make", move |ctx, _: &mut [Value]| {
        let i = ctx.key().index()[0] as u64;
        Ok(Value::spillable(chunk(i, len, i % 2 == 0)))
    });
    let digest = Op::new("digest", |_, inputs: &mut [Value]| {
        Ok(Value::new(checksum(slice_of(&inputs[0])?, 0)))
    });
    let barrier = Op::new("barrier", move |_, inputs: &mut [Value]| {
        if drop_caches {
            drop_page_cache()?;
        }
        Ok(Value::new(inputs.len() as u64))
    });
    let verify = Op::new("verify", |ctx, inputs: &mut [Value]| {
        let again = checksum(slice_of(&inputs[0])?, 0);
        if again != u64_of(&inputs[1])? {
            return Err(Error::msg(format!(
                "{}: chunk read back differs from the one written",
                ctx.key()
            )));
        }
        Ok(Value::new(1u64))
    });
    let count = Op::new("count", |_, inputs: &mut [Value]| {
        inputs
            .iter()
            .map(u64_of)
            .sum::<Result<u64>>()
            .map(Value::new)
    });
    let mut chunks = Vec::new();
    let mut digests = Vec::new();
    for i in 0..n {
        let c = g.add_task(("chunk", i), make.clone(), [] as [TaskId; 0])?;
        digests.push(g.add_task(("digest", i), digest.clone(), [c])?);
        chunks.push(c);
    }
    let b = g.add_task("barrier", barrier, digests.clone())?;
    let mut verified = Vec::new();
    for i in 0..n as usize {
        verified.push(g.add_task(
            ("verify", i as i64),
            verify.clone(),
            [chunks[i], digests[i], b],
        )?);
    }
    g.add_task("verified", count, verified)?;
    let (values, report) = run_measured(rt, g, &[Key::from("verified")])?;
    let ok = values.first().map(u64_of).transpose()?;
    if ok != Some(n as u64) {
        return Err(Error::internal(format!("{ok:?} of {n} chunks verified")));
    }
    Ok(report)
}

/// `brisk bench outofcore`: an all-to-all exchange of `total` bytes in blocks of `block`
/// bytes (see the module docs). Returns the report; fails if the output checksum differs
/// from the input's.
///
/// # Errors
/// A checksum mismatch, a block size that does not split into one piece per block, or any
/// compute error.
pub fn outofcore(rt: &Runtime, total: u64, block_bytes: u64) -> Result<SpillReport> {
    let len = elems_per_chunk(block_bytes)?;
    let n = (total / (len * ELEM) as u64).max(1) as usize;
    if len % n != 0 {
        return Err(Error::config(format!(
            "a block of {len} elements does not split into {n} equal pieces; pick sizes that \
             are powers of two"
        )));
    }
    let piece = len / n;
    let mut g = Graph::new();
    let make = Op::new("make", move |ctx, _: &mut [Value]| {
        let i = ctx.key().index()[0] as u64;
        Ok(Value::spillable(chunk(i, len, true)))
    });
    let cut = Op::new("cut", move |ctx, inputs: &mut [Value]| {
        let j = ctx.key().index()[1] as usize;
        let block = inputs[0]
            .downcast_ref::<Array1<f64>>()
            .ok_or_else(|| Error::internal("cut: expected an f64 array"))?;
        Ok(Value::spillable(
            block.slice(s![j * piece..(j + 1) * piece]).to_owned(),
        ))
    });
    let input_sum = Op::new("input-checksum", move |ctx, inputs: &mut [Value]| {
        let i = ctx.key().index()[0] as u64;
        Ok(Value::new(checksum(slice_of(&inputs[0])?, i * len as u64)))
    });
    // Output j holds, for each input i in order, that input's elements j*piece.. — so its
    // element at i*piece + k is input i's element j*piece + k.
    let assemble = Op::new("assemble", move |_, inputs: &mut [Value]| {
        let mut out = Vec::with_capacity(len);
        for v in inputs.iter() {
            out.extend_from_slice(slice_of(v)?);
        }
        Ok(Value::spillable(Array1::from_vec(out)))
    });
    let output_sum = Op::new("output-checksum", move |ctx, inputs: &mut [Value]| {
        let j = ctx.key().index()[0] as usize;
        let out = slice_of(&inputs[0])?;
        let mut acc = 0u64;
        for (i, part) in out.chunks(piece).enumerate() {
            let base = (i * len + j * piece) as u64;
            acc = acc.wrapping_add(checksum(part, base));
        }
        Ok(Value::new(acc))
    });
    let total_sum = Op::new("total", |_, inputs: &mut [Value]| {
        let mut acc = 0u64;
        for v in inputs.iter() {
            acc = acc.wrapping_add(u64_of(v)?);
        }
        Ok(Value::new(acc))
    });
    let mut pieces = vec![Vec::with_capacity(n); n];
    let mut in_sums = Vec::with_capacity(n);
    for i in 0..n as i64 {
        let b = g.add_task(("block", i), make.clone(), [] as [TaskId; 0])?;
        in_sums.push(g.add_task(("in-sum", i), input_sum.clone(), [b])?);
        for (j, column) in pieces.iter_mut().enumerate() {
            column.push(g.add_task(("piece", i, j as i64), cut.clone(), [b])?);
        }
    }
    let mut out_sums = Vec::with_capacity(n);
    for (j, column) in pieces.into_iter().enumerate() {
        let o = g.add_task(("out", j as i64), assemble.clone(), column)?;
        out_sums.push(g.add_task(("out-sum", j as i64), output_sum.clone(), [o])?);
    }
    g.add_task("in-total", total_sum.clone(), in_sums)?;
    g.add_task("out-total", total_sum, out_sums)?;
    let (values, report) = run_measured(rt, g, &[Key::from("in-total"), Key::from("out-total")])?;
    let sums: Vec<u64> = values.iter().map(u64_of).collect::<Result<_>>()?;
    if sums.len() != 2 || sums[0] != sums[1] {
        return Err(Error::internal(format!(
            "all-to-all exchange lost or moved data: input checksum {:?} != output {:?}",
            sums.first(),
            sums.get(1)
        )));
    }
    Ok(report)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rt(limit: u64) -> Runtime {
        Runtime::builder()
            .threads(2)
            .memory_limit(limit)
            .build()
            .unwrap()
    }

    #[test]
    fn spill_bench_spills_and_verifies_at_small_scale() {
        let rt = rt(4 << 20);
        let r = spill(&rt, 16 << 20, 1 << 20).unwrap();
        assert!(r.spilled > 8 << 20, "{r:?}");
        assert!(r.write_gbps > 0.0 && r.read_gbps > 0.0, "{r:?}");
        assert!(r.disk_write_gbps > 0.0 && r.disk_read_gbps > 0.0, "{r:?}");
        // Half the chunks are compressible, so the files hold fewer bytes than the values.
        assert!(r.disk_written < r.spilled, "{r:?}");
        assert!(r.disk_write_gbps < r.write_gbps, "{r:?}");
        // Every chunk spilled is read back, from the file it was written to.
        assert!(r.disk_read >= r.disk_written, "{r:?}");
        assert!(r.line().starts_with("write_gbps="));
        assert!(r.line().contains(" page_cache_read_frac="));
    }

    #[test]
    fn outofcore_exchange_is_checked_and_spills() {
        let rt = rt(4 << 20);
        let r = outofcore(&rt, 16 << 20, 1 << 20).unwrap();
        assert!(r.spilled > 4 << 20, "{r:?}");
        assert!(r.line_with_wall().contains("wall_s="));
        assert_eq!(rt.memory_stats().current_bytes, 0);
    }

    #[test]
    fn the_checksum_sees_positions() {
        let a = [1.0, 2.0];
        assert_ne!(checksum(&a, 0), checksum(&[2.0, 1.0], 0));
        assert_ne!(checksum(&a, 0), checksum(&a, 1));
        // Split anywhere, the parts add up to the whole.
        let whole = checksum(&[1.0, 2.0, 3.0], 5);
        let parts = checksum(&[1.0], 5).wrapping_add(checksum(&[2.0, 3.0], 6));
        assert_eq!(whole, parts);
    }

    #[test]
    fn busy_time_merges_overlaps() {
        let t = Instant::now();
        let ms = Duration::from_millis;
        let io = |a, b, bytes| Io {
            started: t + ms(a),
            finished: t + ms(b),
            bytes,
            disk_bytes: bytes / 2,
        };
        let busy = Busy::of(&[io(0, 10, 10), io(5, 15, 20), io(20, 30, 30)]);
        assert_eq!(busy.bytes, 60);
        assert_eq!(busy.disk_bytes, 30);
        assert_eq!(busy.time, ms(25));
    }

    #[test]
    fn page_cache_share_compares_device_reads_with_file_bytes() {
        let report = |device_read| SpillReport {
            write_gbps: 1.0,
            read_gbps: 1.0,
            disk_write_gbps: 1.0,
            disk_read_gbps: 1.0,
            peak_managed: 0,
            peak_rss_mib: 0.0,
            spilled: 100,
            disk_written: 80,
            disk_read: 80,
            device_read,
            wall: Duration::ZERO,
        };
        assert_eq!(report(Some(0)).page_cache_read_frac(), Some(1.0));
        assert_eq!(report(Some(20)).page_cache_read_frac(), Some(0.75));
        // Readahead may fetch more than the files hold.
        assert_eq!(report(Some(200)).page_cache_read_frac(), Some(0.0));
        assert_eq!(report(None).page_cache_read_frac(), None);
        assert!(report(None)
            .line()
            .contains("device_read_gib=na page_cache_read_frac=na"));
    }
}
