//! Creating arrays: constants, ranges, identity, random ([`super::random`]) and from an
//! in-memory `ndarray`.
//!
//! Created arrays (except [`from_ndarray`]) carry a generator that can produce any row strip
//! of any block; each block's task calls it once for the whole block, and reductions call it
//! strip by strip instead of depending on the block tasks (see the module docs of
//! [`array`](super)).

use std::marker::PhantomData;
use std::sync::Arc;

use ndarray::{ArrayD, ArrayViewMutD, IxDyn};

use super::chunks::Chunks;
use super::{block_value, fresh, grid_indices, literal, task, Array, Elem, Gen, Num};
use crate::error::{Error, Result};

/// An array whose blocks `gen` fills.
pub(crate) fn from_gen<T: Elem>(
    shape: &[usize],
    chunks: Chunks,
    op: &str,
    gen: Arc<dyn Gen<T>>,
) -> Result<Array<T>> {
    let chunks = chunks.normalize(shape, std::mem::size_of::<T>())?;
    let name = fresh(op);
    let nb: Vec<usize> = chunks.iter().map(Vec::len).collect();
    let offs: Vec<Vec<usize>> = chunks.iter().map(|c| super::offsets(c)).collect();
    let blocks = grid_indices(&nb)
        .into_iter()
        .map(|idx| {
            let bshape: Vec<usize> = idx.iter().zip(&chunks).map(|(&i, c)| c[i]).collect();
            let start: Vec<usize> = idx.iter().enumerate().map(|(a, &i)| offs[a][i]).collect();
            let g = Arc::clone(&gen);
            let i2 = idx.clone();
            task(&name, &idx, Vec::new(), move |_| {
                let mut b = ArrayD::<T>::default(IxDyn(&bshape));
                g.fill(&i2, &start, 0, b.view_mut());
                Ok(block_value(b))
            })
        })
        .collect();
    let mut a = Array::from_parts(shape.to_vec(), chunks, blocks);
    a.gen = Some(gen);
    Ok(a)
}

struct Const<T>(T);

impl<T: Elem> Gen<T> for Const<T> {
    fn fill(&self, _: &[usize], _: &[usize], _: usize, mut out: ArrayViewMutD<'_, T>) {
        out.fill(self.0);
    }
}

/// An array of `value`.
///
/// ```
/// let a = brisk::array::full(&[3, 4], 2, 7i64).unwrap();
/// assert_eq!(a.shape(), &[3, 4]);
/// ```
pub fn full<T: Elem>(shape: &[usize], chunks: impl Into<Chunks>, value: T) -> Result<Array<T>> {
    from_gen(shape, chunks.into(), "full", Arc::new(Const(value)))
}

/// An array of zeros.
pub fn zeros<T: Num>(shape: &[usize], chunks: impl Into<Chunks>) -> Result<Array<T>> {
    from_gen(shape, chunks.into(), "zeros", Arc::new(Const(T::ZERO)))
}

/// An array of ones.
pub fn ones<T: Num>(shape: &[usize], chunks: impl Into<Chunks>) -> Result<Array<T>> {
    from_gen(shape, chunks.into(), "ones", Arc::new(Const(T::ONE)))
}

/// An array of default values (zeros) with the shape and chunks of `like`.
pub fn empty_like<T: Elem, U: Elem>(like: &Array<U>) -> Result<Array<T>> {
    from_gen(
        &like.shape,
        Chunks::Explicit(like.chunks.clone()),
        "zeros",
        Arc::new(Const(T::default())),
    )
}

struct Linear<T> {
    start: f64,
    step: f64,
    _t: PhantomData<fn() -> T>,
}

impl<T: Elem> Gen<T> for Linear<T> {
    fn fill(&self, _: &[usize], start: &[usize], _: usize, mut out: ArrayViewMutD<'_, T>) {
        let s0 = start.first().copied().unwrap_or(0);
        for (i, x) in out.iter_mut().enumerate() {
            *x = T::from_f64(self.start + (s0 + i) as f64 * self.step);
        }
    }
}

/// `start, start + step, ...` below `stop` (1-d), like `numpy.arange`.
///
/// # Errors
/// When `step` is zero or not finite.
pub fn arange<T: Num>(
    start: f64,
    stop: f64,
    step: f64,
    chunks: impl Into<Chunks>,
) -> Result<Array<T>> {
    if step == 0.0 || !step.is_finite() || !start.is_finite() || !stop.is_finite() {
        return Err(Error::input(format!(
            "arange: need a finite non-zero step and finite bounds, got start={start} stop={stop} step={step}"
        )));
    }
    let n = ((stop - start) / step).ceil().max(0.0) as usize;
    from_gen(
        &[n],
        chunks.into(),
        "arange",
        Arc::new(Linear::<T> {
            start,
            step,
            _t: PhantomData,
        }),
    )
}

/// `num` evenly spaced values from `start` to `stop` (included when `endpoint`).
pub fn linspace(
    start: f64,
    stop: f64,
    num: usize,
    endpoint: bool,
    chunks: impl Into<Chunks>,
) -> Result<Array<f64>> {
    let div = if endpoint { num.saturating_sub(1) } else { num };
    let step = if div == 0 {
        0.0
    } else {
        (stop - start) / div as f64
    };
    struct Lin {
        start: f64,
        stop: f64,
        step: f64,
        last: Option<usize>,
    }
    impl Gen<f64> for Lin {
        fn fill(&self, _: &[usize], start: &[usize], _: usize, mut out: ArrayViewMutD<'_, f64>) {
            let s0 = start.first().copied().unwrap_or(0);
            for (i, x) in out.iter_mut().enumerate() {
                let g = s0 + i;
                *x = if Some(g) == self.last {
                    self.stop
                } else {
                    self.start + g as f64 * self.step
                };
            }
        }
    }
    let last = if endpoint && num > 1 {
        Some(num - 1)
    } else {
        None
    };
    from_gen(
        &[num],
        chunks.into(),
        "linspace",
        Arc::new(Lin {
            start,
            stop,
            step,
            last,
        }),
    )
}

struct Eye;

impl Gen<f64> for Eye {
    fn fill(&self, _: &[usize], start: &[usize], _: usize, mut out: ArrayViewMutD<'_, f64>) {
        out.fill(0.0);
        if let [r0, c0] = *start {
            for ((i, j), x) in out
                .indexed_iter_mut()
                .map(|(ix, x)| ((ix[0] + r0, ix[1] + c0), x))
            {
                if i == j {
                    *x = 1.0;
                }
            }
        }
    }
}

/// The `n × n` identity matrix.
pub fn eye(n: usize, chunks: impl Into<Chunks>) -> Result<Array<f64>> {
    from_gen(&[n, n], chunks.into(), "eye", Arc::new(Eye))
}

/// Cuts an in-memory array into blocks (copied now; each block is a literal task).
///
/// ```
/// let a = ndarray::Array2::<f64>::zeros((5, 3));
/// let x = brisk::array::from_ndarray(a, 2).unwrap();
/// assert_eq!(x.chunks(), &[vec![2, 2, 1], vec![2, 1]]);
/// ```
pub fn from_ndarray<T: Elem, D: ndarray::Dimension>(
    a: ndarray::Array<T, D>,
    chunks: impl Into<Chunks>,
) -> Result<Array<T>> {
    let a = a.into_dyn();
    let shape = a.shape().to_vec();
    let chunks = chunks.into().normalize(&shape, std::mem::size_of::<T>())?;
    let name = fresh("array");
    let nb: Vec<usize> = chunks.iter().map(Vec::len).collect();
    if nb.iter().product::<usize>() == 1 {
        let blocks = vec![literal(&name, &vec![0; shape.len()], block_value(a))];
        return Ok(Array::from_parts(shape, chunks, blocks));
    }
    let offs: Vec<Vec<usize>> = chunks.iter().map(|c| super::offsets(c)).collect();
    let blocks = grid_indices(&nb)
        .iter()
        .map(|idx| {
            let mut v = a.view();
            for (ax, &i) in idx.iter().enumerate() {
                v.slice_axis_inplace(
                    ndarray::Axis(ax),
                    ndarray::Slice::from(offs[ax][i]..offs[ax][i + 1]),
                );
            }
            literal(&name, idx, block_value(v.as_standard_layout().into_owned()))
        })
        .collect();
    Ok(Array::from_parts(shape, chunks, blocks))
}

/// A 0-d array holding `v`.
pub fn scalar<T: Elem>(v: T) -> Array<T> {
    let name = fresh("scalar");
    let blocks = vec![literal(
        &name,
        &[],
        block_value(ArrayD::from_elem(IxDyn(&[]), v)),
    )];
    Array::from_parts(Vec::new(), Vec::new(), blocks)
}
