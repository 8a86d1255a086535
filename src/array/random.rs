//! Random arrays with an independent, deterministic stream per block.
//!
//! Every block has its own key, derived from the seed and the block's grid index with
//! SplitMix64 (the same seed and chunks give the same data on any number of threads, like
//! Dask's per-block seeds). A block's elements, in C order, are cut into segments of
//! [`SEGMENT`] elements; segment `s` is produced by sixteen interleaved xoshiro256+ generators
//! seeded from `(block key, s)`. So any strip of a block can be generated without the rest
//! (what fuses generation into reductions), and the inner loop has sixteen independent
//! lanes that the compiler vectorizes (AVX-512 or AVX2, chosen at run time).
//!
//! Uniform doubles take the top 52 bits as the mantissa of a number in [1, 2) minus 1;
//! normals use the Box–Muller transform on pairs; integers in `[low, high)` use Lemire's
//! multiply-shift (bias below `range / 2^64`). Not cryptographic.

use ndarray::ArrayViewMutD;

use super::chunks::Chunks;
use super::creation::from_gen;
use super::{Array, Gen};
use crate::error::{Error, Result};

/// Elements per independently seeded segment of a block's stream.
pub const SEGMENT: usize = 1024;

#[inline]
fn splitmix(mut z: u64) -> u64 {
    z = z.wrapping_add(0x9E37_79B9_7F4A_7C15);
    z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    z ^ (z >> 31)
}

/// The key of one block's stream.
pub(crate) fn block_key(seed: u64, block: &[usize]) -> u64 {
    let mut k = splitmix(seed ^ 0x5851_F42D_4C95_7F2D);
    for &i in block {
        k = splitmix(k ^ (i as u64).wrapping_mul(0xD6E8_FEB8_6659_FD93));
    }
    k
}

/// Independent generators interleaved in a segment (element `e` comes from lane `e % 16`):
/// two registers of eight, so the two dependency chains overlap.
const LANES: usize = 16;

/// Fills `out` with segment `seg` of stream `key` (`out.len() <= SEGMENT`).
#[inline(always)]
fn segment(key: u64, seg: u64, out: &mut [u64]) {
    let base = splitmix(key ^ seg.wrapping_mul(0x2545_F491_4F6C_DD1D));
    let mut s0 = [0u64; LANES];
    let mut s1 = [0u64; LANES];
    let mut s2 = [0u64; LANES];
    let mut s3 = [0u64; LANES];
    for l in 0..LANES {
        let b = base.wrapping_add((l as u64) << 32);
        s0[l] = splitmix(b);
        s1[l] = splitmix(b ^ 0x1);
        s2[l] = splitmix(b ^ 0x2);
        s3[l] = splitmix(b ^ 0x3) | 1;
    }
    let mut chunks = out.chunks_exact_mut(LANES);
    for c in &mut chunks {
        for l in 0..LANES {
            c[l] = s0[l].wrapping_add(s3[l]);
            let t = s1[l] << 17;
            s2[l] ^= s0[l];
            s3[l] ^= s1[l];
            s1[l] ^= s2[l];
            s0[l] ^= s3[l];
            s2[l] ^= t;
            s3[l] = s3[l].rotate_left(45);
        }
    }
    for (l, x) in chunks.into_remainder().iter_mut().enumerate() {
        *x = s0[l].wrapping_add(s3[l]);
    }
}

#[inline(always)]
fn fill_words_body<T, F: Fn(u64) -> T>(key: u64, flat0: usize, out: &mut [T], f: F) {
    let mut buf = [0u64; SEGMENT];
    let mut pos = 0;
    while pos < out.len() {
        let g = flat0 + pos;
        let seg = g / SEGMENT;
        let off = g % SEGMENT;
        let n = (SEGMENT - off).min(out.len() - pos);
        segment(key, seg as u64, &mut buf);
        for (o, &w) in out[pos..pos + n].iter_mut().zip(&buf[off..off + n]) {
            *o = f(w);
        }
        pos += n;
    }
}

#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx512f,avx512dq")]
fn fill_words_avx512<T, F: Fn(u64) -> T>(key: u64, flat0: usize, out: &mut [T], f: F) {
    fill_words_body(key, flat0, out, f)
}

#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx2")]
fn fill_words_avx2<T, F: Fn(u64) -> T>(key: u64, flat0: usize, out: &mut [T], f: F) {
    fill_words_body(key, flat0, out, f)
}

/// Fills `out` with elements `flat0..flat0 + out.len()` of stream `key`, mapped by `f` from
/// raw 64-bit words. Uses AVX-512 or AVX2 when the CPU has them (same numbers either way).
pub(crate) fn fill_words<T, F: Fn(u64) -> T>(key: u64, flat0: usize, out: &mut [T], f: F) {
    #[cfg(target_arch = "x86_64")]
    {
        if std::arch::is_x86_feature_detected!("avx512f")
            && std::arch::is_x86_feature_detected!("avx512dq")
        {
            // SAFETY: the CPU supports AVX-512F and DQ, checked just above.
            return unsafe { fill_words_avx512(key, flat0, out, f) };
        }
        if std::arch::is_x86_feature_detected!("avx2") {
            // SAFETY: the CPU supports AVX2, checked just above.
            return unsafe { fill_words_avx2(key, flat0, out, f) };
        }
    }
    fill_words_body(key, flat0, out, f)
}

/// A uniform double in [0, 1) from the top 52 bits of `w`.
#[inline]
pub(crate) fn unit_f64(w: u64) -> f64 {
    f64::from_bits(0x3FF0_0000_0000_0000 | (w >> 12)) - 1.0
}

/// Standard normals: Box–Muller on the pairs of segment-aligned words, so element `i`
/// depends only on words `i & !1` and `i | 1`.
pub(crate) fn fill_normal(key: u64, flat0: usize, out: &mut [f64]) {
    let mut buf = [0u64; SEGMENT];
    let mut pos = 0;
    while pos < out.len() {
        let g = flat0 + pos;
        let seg = g / SEGMENT;
        let off = g % SEGMENT;
        let n = (SEGMENT - off).min(out.len() - pos);
        segment(key, seg as u64, &mut buf);
        for (k, o) in out[pos..pos + n].iter_mut().enumerate() {
            let i = off + k;
            let p = i & !1;
            // (0, 1] so the logarithm is finite.
            let u1 = 1.0 - unit_f64(buf[p]);
            let u2 = unit_f64(buf[p + 1]);
            let r = (-2.0 * u1.ln()).sqrt();
            let th = std::f64::consts::TAU * u2;
            *o = if i & 1 == 0 {
                r * th.cos()
            } else {
                r * th.sin()
            };
        }
        pos += n;
    }
}

/// The distribution of a random array.
#[derive(Clone, Copy, Debug)]
enum Dist {
    Uniform { low: f64, high: f64 },
    Normal { mean: f64, std: f64 },
}

struct RandomGen {
    seed: u64,
    dist: Dist,
}

fn inner_len(out: &ArrayViewMutD<'_, impl Sized>) -> usize {
    out.shape().iter().skip(1).product()
}

impl Gen<f64> for RandomGen {
    fn fill(
        &self,
        block: &[usize],
        _start: &[usize],
        row0: usize,
        mut out: ArrayViewMutD<'_, f64>,
    ) {
        let key = block_key(self.seed, block);
        let flat0 = row0 * inner_len(&out);
        let Some(s) = out.as_slice_mut() else { return };
        match self.dist {
            Dist::Uniform { low, high } => {
                let w = high - low;
                if low == 0.0 && w == 1.0 {
                    fill_words(key, flat0, s, unit_f64);
                } else {
                    fill_words(key, flat0, s, |x| low + w * unit_f64(x));
                }
            }
            Dist::Normal { mean, std } => {
                fill_normal(key, flat0, s);
                if mean != 0.0 || std != 1.0 {
                    for x in s.iter_mut() {
                        *x = mean + std * *x;
                    }
                }
            }
        }
    }
}

struct IntegersGen {
    seed: u64,
    low: i64,
    range: u64,
}

impl Gen<i64> for IntegersGen {
    fn fill(
        &self,
        block: &[usize],
        _start: &[usize],
        row0: usize,
        mut out: ArrayViewMutD<'_, i64>,
    ) {
        let key = block_key(self.seed, block);
        let flat0 = row0 * inner_len(&out);
        let (low, range) = (self.low, self.range);
        if let Some(s) = out.as_slice_mut() {
            fill_words(key, flat0, s, |w| {
                low.wrapping_add(((u128::from(w) * u128::from(range)) >> 64) as i64)
            });
        }
    }
}

/// Uniform doubles in [0, 1).
///
/// ```
/// let x = brisk::array::random::uniform(&[5, 7], 3, 1).unwrap();
/// assert_eq!(x.numblocks(), vec![2, 3]);
/// ```
pub fn uniform(shape: &[usize], chunks: impl Into<Chunks>, seed: u64) -> Result<Array<f64>> {
    uniform_range(shape, chunks, seed, 0.0, 1.0)
}

/// Uniform doubles in [low, high).
///
/// # Errors
/// When `high < low` or the chunks do not fit the shape.
pub fn uniform_range(
    shape: &[usize],
    chunks: impl Into<Chunks>,
    seed: u64,
    low: f64,
    high: f64,
) -> Result<Array<f64>> {
    if high < low || !(low.is_finite() && high.is_finite()) {
        return Err(Error::input(format!(
            "uniform: need finite low <= high, got low={low} high={high}"
        )));
    }
    from_gen(
        shape,
        chunks.into(),
        "random_uniform",
        std::sync::Arc::new(RandomGen {
            seed,
            dist: Dist::Uniform { low, high },
        }),
    )
}

/// Normal doubles with the given mean and standard deviation.
///
/// # Errors
/// When `std` is negative or not finite.
pub fn normal(
    shape: &[usize],
    chunks: impl Into<Chunks>,
    seed: u64,
    mean: f64,
    std: f64,
) -> Result<Array<f64>> {
    if std < 0.0 || !std.is_finite() || !mean.is_finite() {
        return Err(Error::input(format!(
            "normal: need finite mean and std >= 0, got mean={mean} std={std}"
        )));
    }
    from_gen(
        shape,
        chunks.into(),
        "random_normal",
        std::sync::Arc::new(RandomGen {
            seed,
            dist: Dist::Normal { mean, std },
        }),
    )
}

/// Integers uniform in `[low, high)`.
///
/// # Errors
/// When `high <= low`.
pub fn integers(
    shape: &[usize],
    chunks: impl Into<Chunks>,
    seed: u64,
    low: i64,
    high: i64,
) -> Result<Array<i64>> {
    if high <= low {
        return Err(Error::input(format!(
            "integers: need low < high, got low={low} high={high}"
        )));
    }
    from_gen(
        shape,
        chunks.into(),
        "random_integers",
        std::sync::Arc::new(IntegersGen {
            seed,
            low,
            range: high.wrapping_sub(low) as u64,
        }),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn strips_match_whole_streams() {
        let mut whole = vec![0.0; 5000];
        fill_words(7, 0, &mut whole, unit_f64);
        let mut part = vec![0.0; 1500];
        fill_words(7, 1234, &mut part, unit_f64);
        assert_eq!(&whole[1234..2734], &part[..]);
        let mean = whole.iter().sum::<f64>() / 5000.0;
        assert!((mean - 0.5).abs() < 0.02, "{mean}");
        let mut n = vec![0.0; 4001];
        fill_normal(3, 0, &mut n);
        let mut m = vec![0.0; 999];
        fill_normal(3, 1001, &mut m);
        assert_eq!(&n[1001..2000], &m[..]);
        let mu = n.iter().sum::<f64>() / n.len() as f64;
        let var = n.iter().map(|x| (x - mu) * (x - mu)).sum::<f64>() / n.len() as f64;
        assert!(mu.abs() < 0.06 && (var - 1.0).abs() < 0.08, "{mu} {var}");
    }
}
