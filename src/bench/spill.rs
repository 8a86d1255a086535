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
//! Rates are bytes (in memory, before compression) over the time the store spent writing or
//! reading, the union of the I/O intervals reported by `Spilled`/`Unspilled` events (so two
//! workers reading at once are not counted twice). Peak RSS is the process's high-water mark.

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

/// Spill and unspill intervals seen during a run.
#[derive(Default)]
pub struct IoLog {
    writes: Mutex<Vec<(Instant, Instant, usize)>>,
    reads: Mutex<Vec<(Instant, Instant, usize)>>,
}

impl EventHook for IoLog {
    fn on_event(&self, event: &Event<'_>) {
        match event {
            Event::Spilled {
                bytes,
                started,
                finished,
                ..
            } => self.writes.lock().push((*started, *finished, *bytes)),
            Event::Unspilled {
                bytes,
                started,
                finished,
                ..
            } => self.reads.lock().push((*started, *finished, *bytes)),
            _ => {}
        }
    }
}

/// Bytes and the length of the union of the intervals.
fn busy(intervals: &[(Instant, Instant, usize)]) -> (usize, Duration) {
    let mut v: Vec<_> = intervals.to_vec();
    v.sort_by_key(|i| i.0);
    let mut total = Duration::ZERO;
    let mut current: Option<(Instant, Instant)> = None;
    for &(a, b, _) in &v {
        current = match current {
            Some((s, e)) if a <= e => Some((s, e.max(b))),
            Some((s, e)) => {
                total += e - s;
                Some((a, b))
            }
            None => Some((a, b)),
        };
    }
    if let Some((s, e)) = current {
        total += e - s;
    }
    (v.iter().map(|i| i.2).sum(), total)
}

impl IoLog {
    /// GB/s written and read (0 when nothing was).
    pub fn rates(&self) -> (f64, f64) {
        let rate = |(bytes, time): (usize, Duration)| {
            if time.is_zero() {
                0.0
            } else {
                bytes as f64 / time.as_secs_f64() / 1e9
            }
        };
        (
            rate(busy(&self.writes.lock())),
            rate(busy(&self.reads.lock())),
        )
    }
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
    /// GB/s of spill writes.
    pub write_gbps: f64,
    /// GB/s of reads back.
    pub read_gbps: f64,
    /// Peak bytes the store held in memory.
    pub peak_managed: usize,
    /// Peak RSS of the process, MiB.
    pub peak_rss_mib: f64,
    /// Bytes spilled (in memory, before compression).
    pub spilled: u64,
    /// Bytes written to disk (after compression).
    pub disk_written: u64,
    /// Wall time of the computation.
    pub wall: Duration,
}

impl SpillReport {
    /// The `brisk bench spill` line.
    pub fn line(&self) -> String {
        format!(
            "write_gbps={:.3} read_gbps={:.3} peak_managed_mib={:.1} peak_rss_mib={:.1} spilled_gib={:.3}",
            self.write_gbps,
            self.read_gbps,
            self.peak_managed as f64 / (1u64 << 20) as f64,
            self.peak_rss_mib,
            self.spilled as f64 / (1u64 << 30) as f64,
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
    let before = rt.memory_stats();
    let options = crate::ComputeOptions::new()
        .hook(Arc::clone(&log) as Arc<dyn EventHook>)
        .progress(crate::ProgressMode::Auto);
    let start = Instant::now();
    let values = rt.compute_graph_with(graph, outputs, &options)?;
    let wall = start.elapsed();
    let after = rt.memory_stats();
    let (write_gbps, read_gbps) = log.rates();
    let written: usize = log.writes.lock().iter().map(|w| w.2).sum();
    Ok((
        values,
        SpillReport {
            write_gbps,
            read_gbps,
            peak_managed: after.peak_bytes,
            peak_rss_mib: peak_rss_mib(),
            spilled: written as u64,
            disk_written: after.spilled_bytes - before.spilled_bytes,
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
    let barrier = Op::new("barrier", |_, inputs: &mut [Value]| {
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
        assert!(r.line().starts_with("write_gbps="));
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
        let (bytes, time) = busy(&[
            (t, t + ms(10), 1),
            (t + ms(5), t + ms(15), 2),
            (t + ms(20), t + ms(30), 3),
        ]);
        assert_eq!(bytes, 6);
        assert_eq!(time, ms(25));
    }
}
