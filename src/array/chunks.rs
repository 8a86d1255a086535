//! Chunk specifications and their normalization to per-axis block lengths.
//!
//! A spec is one of: a block length for every axis (`1000`), one per axis (`(1000, 500)`,
//! `[1000, 500]`; `0` means "the whole axis"), explicit lengths per axis
//! (`vec![vec![3, 3, 1], vec![7]]`), or [`Chunks::Auto`]. `Auto` follows Dask: the budget is
//! [`AUTO_BYTES`] (128 MiB) per block; every axis gets `(budget / itemsize)^(1/ndim)`
//! elements, an axis shorter than that takes its whole length and the budget is spread over
//! the others again; the block count per axis is then rounded so blocks are nearly equal.

use crate::error::{Error, Result};

use super::fmt_shape;

/// Target bytes per block for [`Chunks::Auto`], like Dask's `array.chunk-size`.
pub const AUTO_BYTES: usize = 128 << 20;

/// How to cut an array into blocks.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Chunks {
    /// About [`AUTO_BYTES`] per block.
    Auto,
    /// The same block length on every axis (0: whole axis).
    Every(usize),
    /// A block length per axis (0: whole axis); the last block of an axis may be shorter.
    Size(Vec<usize>),
    /// The block lengths of every axis.
    Explicit(Vec<Vec<usize>>),
}

impl From<usize> for Chunks {
    fn from(n: usize) -> Self {
        Chunks::Every(n)
    }
}
impl From<(usize,)> for Chunks {
    fn from(n: (usize,)) -> Self {
        Chunks::Size(vec![n.0])
    }
}
impl From<(usize, usize)> for Chunks {
    fn from(n: (usize, usize)) -> Self {
        Chunks::Size(vec![n.0, n.1])
    }
}
impl From<(usize, usize, usize)> for Chunks {
    fn from(n: (usize, usize, usize)) -> Self {
        Chunks::Size(vec![n.0, n.1, n.2])
    }
}
impl<const N: usize> From<[usize; N]> for Chunks {
    fn from(n: [usize; N]) -> Self {
        Chunks::Size(n.to_vec())
    }
}
impl From<&[usize]> for Chunks {
    fn from(n: &[usize]) -> Self {
        Chunks::Size(n.to_vec())
    }
}
impl From<Vec<usize>> for Chunks {
    fn from(n: Vec<usize>) -> Self {
        Chunks::Size(n)
    }
}
impl From<Vec<Vec<usize>>> for Chunks {
    fn from(n: Vec<Vec<usize>>) -> Self {
        Chunks::Explicit(n)
    }
}
impl From<&[Vec<usize>]> for Chunks {
    fn from(n: &[Vec<usize>]) -> Self {
        Chunks::Explicit(n.to_vec())
    }
}
impl From<&str> for Chunks {
    /// `"auto"`; anything else is also treated as auto.
    fn from(_: &str) -> Self {
        Chunks::Auto
    }
}

/// Splits `len` into blocks of `size` (the last shorter); a zero-length axis has one empty
/// block.
pub fn split(len: usize, size: usize) -> Vec<usize> {
    if len == 0 {
        return vec![0];
    }
    let size = if size == 0 { len } else { size.min(len) };
    let mut v = vec![size; len / size];
    if len % size != 0 {
        v.push(len % size);
    }
    v
}

/// Splits `len` into `n` nearly equal blocks (larger first).
pub fn split_even(len: usize, n: usize) -> Vec<usize> {
    if len == 0 || n == 0 {
        return vec![len];
    }
    let n = n.min(len);
    let base = len / n;
    let extra = len % n;
    (0..n).map(|i| base + usize::from(i < extra)).collect()
}

impl Chunks {
    /// The per-axis block lengths for an array of `shape` with elements of `itemsize` bytes.
    ///
    /// # Errors
    /// When the spec has the wrong number of axes or explicit lengths do not add up.
    pub fn normalize(&self, shape: &[usize], itemsize: usize) -> Result<Vec<Vec<usize>>> {
        match self {
            Chunks::Every(n) => Ok(shape.iter().map(|&l| split(l, *n)).collect()),
            Chunks::Size(sizes) => {
                if sizes.len() != shape.len() {
                    return Err(Error::shape(format!(
                        "chunks {sizes:?} have {} axes but the shape {} has {}",
                        sizes.len(),
                        fmt_shape(shape),
                        shape.len()
                    )));
                }
                Ok(shape
                    .iter()
                    .zip(sizes)
                    .map(|(&l, &s)| split(l, s))
                    .collect())
            }
            Chunks::Explicit(c) => {
                if c.len() != shape.len() {
                    return Err(Error::shape(format!(
                        "chunks have {} axes but the shape {} has {}",
                        c.len(),
                        fmt_shape(shape),
                        shape.len()
                    )));
                }
                for (a, (cs, &l)) in c.iter().zip(shape).enumerate() {
                    let total: usize = cs.iter().sum();
                    if total != l || cs.is_empty() {
                        return Err(Error::shape(format!(
                            "chunks {cs:?} of axis {a} add up to {total}, but the axis has length {l} (shape {})",
                            fmt_shape(shape)
                        )));
                    }
                    if l > 0 && cs.contains(&0) {
                        return Err(Error::shape(format!(
                            "chunks {cs:?} of axis {a} contain an empty block"
                        )));
                    }
                }
                Ok(c.clone())
            }
            Chunks::Auto => Ok(auto(shape, itemsize, AUTO_BYTES)),
        }
    }
}

/// Dask-style automatic chunks for a budget of `limit` bytes per block.
pub fn auto(shape: &[usize], itemsize: usize, limit: usize) -> Vec<Vec<usize>> {
    let mut sizes = vec![0usize; shape.len()];
    let mut free: Vec<usize> = (0..shape.len()).collect();
    let mut budget = (limit / itemsize.max(1)).max(1) as f64;
    loop {
        if free.is_empty() {
            break;
        }
        let per = budget.powf(1.0 / free.len() as f64);
        let short: Vec<usize> = free
            .iter()
            .copied()
            .filter(|&a| (shape[a] as f64) <= per)
            .collect();
        if short.is_empty() {
            for &a in &free {
                sizes[a] = (per.floor() as usize).max(1);
            }
            break;
        }
        for &a in &short {
            sizes[a] = shape[a];
            budget /= shape[a].max(1) as f64;
        }
        free.retain(|a| !short.contains(a));
    }
    shape
        .iter()
        .zip(&sizes)
        .map(|(&l, &s)| {
            if l == 0 {
                vec![0]
            } else {
                let n = l.div_ceil(s.max(1));
                split_even(l, n)
            }
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn specs_normalize() {
        assert_eq!(
            Chunks::from(3).normalize(&[7, 3], 8).unwrap(),
            vec![vec![3, 3, 1], vec![3]]
        );
        assert_eq!(
            Chunks::from((2, 0)).normalize(&[4, 5], 8).unwrap(),
            vec![vec![2, 2], vec![5]]
        );
        assert_eq!(Chunks::from(4).normalize(&[0], 8).unwrap(), vec![vec![0]]);
        assert!(Chunks::from(vec![vec![3, 3]]).normalize(&[7], 8).is_err());
        assert!(Chunks::from((2, 2)).normalize(&[4], 8).is_err());
        let a = Chunks::Auto.normalize(&[40000, 40000], 8).unwrap();
        let biggest = a[0][0] * a[1][0] * 8;
        assert!(
            biggest <= AUTO_BYTES && biggest > AUTO_BYTES / 2,
            "{biggest}"
        );
        let b = Chunks::Auto.normalize(&[10, 1 << 30], 8).unwrap();
        assert_eq!(b[0], vec![10]);
    }
}
