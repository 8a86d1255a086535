//! Elementwise operations: NumPy broadcasting between arrays, scalars, math, `where`,
//! `astype`, `map_blocks`.
//!
//! **Broadcasting.** Shapes are aligned on the right; an axis of length 1 stretches to the
//! other's length. The output takes the chunks of the first operand that is not broadcast on
//! each axis; the other operands are rechunked to match (Dask's `unify_chunks`), and an operand
//! broadcast along an axis contributes its single block to every output block on that axis.
//! One task per output block. A mismatch is an error naming both shapes.
//!
//! **In place.** When an operand block already has the output block's shape and the task is
//! its last consumer, the result is written into it (no fresh memory, design §9); scalar ops
//! and unary math always work in place on an owned block. On an array straight from a
//! creation function, same-type maps also extend its generator, so a later reduction still
//! generates strips instead of reading blocks.

use std::sync::Arc;

use ndarray::{ArrayD, ArrayViewMutD, Axis, IxDyn, Zip};

use super::{
    bail_err, block_value, fmt_shape, fresh, grid_indices, take_block, task, try_arr, Array, Elem,
    Float, Gen, NodeRef, Num,
};
use crate::error::{Error, Result};
use crate::graph::Value;

/// The broadcast shape of two shapes, or an error naming them.
pub fn broadcast_shapes(a: &[usize], b: &[usize]) -> Result<Vec<usize>> {
    let n = a.len().max(b.len());
    let mut out = vec![0; n];
    for i in 0..n {
        let x = if i + a.len() >= n {
            a[i + a.len() - n]
        } else {
            1
        };
        let y = if i + b.len() >= n {
            b[i + b.len() - n]
        } else {
            1
        };
        out[i] = if x == y || y == 1 {
            x
        } else if x == 1 {
            y
        } else {
            return Err(Error::shape(format!(
                "operands could not be broadcast together with shapes {} {}",
                fmt_shape(a),
                fmt_shape(b)
            )));
        };
    }
    Ok(out)
}

/// An operand aligned to the output: its block nodes, per-axis "is broadcast" flags
/// (aligned to the output's axes), and its own ndim.
struct Operand<T: Elem> {
    array: Array<T>,
    numblocks: Vec<usize>,
    ndim: usize,
    /// The permutation to view every block with (a transposed operand read from its source).
    perm: Option<Vec<usize>>,
}

impl<T: Elem> Operand<T> {
    fn node_for(&self, out_idx: &[usize]) -> NodeRef {
        let off = out_idx.len() - self.ndim;
        let idx: Vec<usize> = (0..self.ndim)
            .map(|a| {
                if self.numblocks[a] == 1 {
                    0
                } else {
                    out_idx[a + off]
                }
            })
            .collect();
        self.array.read_node(&idx).0
    }

    /// For an operand straight from a creation function (or a transpose of one): how to
    /// generate the block `out_idx` reads, in the task, instead of depending on it.
    fn gen_for(&self, out_idx: &[usize]) -> Option<GenBlock<T>> {
        let off = out_idx.len() - self.ndim;
        let idx: Vec<usize> = (0..self.ndim)
            .map(|a| {
                if self.numblocks[a] == 1 {
                    0
                } else {
                    out_idx[a + off]
                }
            })
            .collect();
        let (gen, chunks, src) = match &self.array.tsrc {
            Some(t) => {
                let mut src = vec![0; idx.len()];
                for (i, &p) in t.perm.iter().enumerate() {
                    src[p] = idx[i];
                }
                (t.gen.as_ref()?, &t.chunks, src)
            }
            None => (self.array.gen.as_ref()?, &self.array.chunks, idx),
        };
        let start = src
            .iter()
            .zip(chunks)
            .map(|(&i, c)| c[..i].iter().sum())
            .collect();
        let shape = src.iter().zip(chunks).map(|(&i, c)| c[i]).collect();
        Some(GenBlock {
            gen: Arc::clone(gen),
            block: src,
            start,
            shape,
        })
    }
}

/// A block to generate inside the task that reads it.
struct GenBlock<T> {
    gen: Arc<dyn Gen<T>>,
    block: Vec<usize>,
    start: Vec<usize>,
    shape: Vec<usize>,
}

impl<T: Elem> GenBlock<T> {
    fn make(&self) -> ArrayD<T> {
        let mut b = ArrayD::<T>::default(IxDyn(&self.shape));
        self.gen.fill(&self.block, &self.start, 0, b.view_mut());
        b
    }
}

/// Output shape and chunks for broadcasting `shapes`; then each operand's target chunks.
fn layout(ops: &[(&[usize], &[Vec<usize>])]) -> Result<(Vec<usize>, Vec<Vec<usize>>)> {
    let mut shape: Vec<usize> = Vec::new();
    for (s, _) in ops {
        shape = broadcast_shapes(&shape, s)?;
    }
    let n = shape.len();
    let mut chunks = Vec::with_capacity(n);
    for (ax, &len) in shape.iter().enumerate() {
        let c = ops
            .iter()
            .find_map(|(s, c)| {
                let off = n - s.len();
                (ax >= off && s[ax - off] == len).then(|| c[ax - off].clone())
            })
            .unwrap_or_else(|| vec![len]);
        chunks.push(c);
    }
    Ok((shape, chunks))
}

/// The chunks `x` must have to line up with the output.
fn target_chunks(
    shape: &[usize],
    out_chunks: &[Vec<usize>],
    out_shape: &[usize],
) -> Vec<Vec<usize>> {
    let off = out_shape.len() - shape.len();
    shape
        .iter()
        .enumerate()
        .map(|(a, &l)| {
            if l == 1 && out_shape[a + off] != 1 {
                vec![1]
            } else {
                out_chunks[a + off].clone()
            }
        })
        .collect()
}

fn aligned<T: Elem>(x: &Array<T>, out_chunks: &[Vec<usize>], out_shape: &[usize]) -> Operand<T> {
    let t = target_chunks(&x.shape, out_chunks, out_shape);
    let x = if t == x.chunks {
        x.clone()
    } else {
        x.rechunk(t)
    };
    let perm = x.tsrc.as_ref().map(|t| t.perm.clone());
    Operand {
        numblocks: x.numblocks(),
        ndim: x.ndim(),
        perm,
        array: x,
    }
}

/// Views a block with `ndim` axes by adding leading axes of length 1.
fn lift_view<T>(mut b: ndarray::ArrayViewD<'_, T>, ndim: usize) -> ndarray::ArrayViewD<'_, T> {
    while b.ndim() < ndim {
        b.insert_axis_inplace(Axis(0));
    }
    b
}

fn bshape(chunks: &[Vec<usize>], idx: &[usize]) -> Vec<usize> {
    idx.iter().zip(chunks).map(|(&i, c)| c[i]).collect()
}

fn broadcast_err(a: &[usize], b: &[usize]) -> Error {
    Error::shape(format!(
        "blocks of shapes {} and {} do not broadcast",
        fmt_shape(a),
        fmt_shape(b)
    ))
}

/// Same-type map of a generator: the generator's output, then `f` in place.
struct MapGen<T> {
    inner: Arc<dyn Gen<T>>,
    f: Arc<dyn Fn(T) -> T + Send + Sync>,
}

impl<T: Elem> Gen<T> for MapGen<T> {
    fn fill(&self, block: &[usize], start: &[usize], row0: usize, mut out: ArrayViewMutD<'_, T>) {
        self.inner.fill(block, start, row0, out.view_mut());
        out.mapv_inplace(|x| (self.f)(x));
    }
}

impl<T: Elem> Array<T> {
    /// Applies `f` to every element in place (same type); keeps the generator fused.
    pub fn map_inplace<F>(&self, f: F) -> Array<T>
    where
        F: Fn(T) -> T + Send + Sync + 'static,
    {
        bail_err!(self);
        let f: Arc<dyn Fn(T) -> T + Send + Sync> = Arc::new(f);
        let name = fresh("map");
        let nb = self.numblocks();
        let blocks = grid_indices(&nb)
            .iter()
            .map(|idx| {
                let f = Arc::clone(&f);
                task(&name, idx, vec![Arc::clone(self.node(idx))], move |x| {
                    let mut b = take_block::<T>(&mut x[0])?;
                    b.mapv_inplace(|v| f(v));
                    Ok(block_value(b))
                })
            })
            .collect();
        let mut out = Array::from_parts(self.shape.clone(), self.chunks.clone(), blocks);
        if let Some(g) = &self.gen {
            out.gen = Some(Arc::new(MapGen {
                inner: Arc::clone(g),
                f,
            }));
        }
        out
    }

    /// Applies `f` to every element, producing another element type.
    pub fn mapv<U: Elem, F>(&self, f: F) -> Array<U>
    where
        F: Fn(T) -> U + Send + Sync + 'static,
    {
        bail_err!(self);
        let f = Arc::new(f);
        self.map_blocks(move |b: ArrayD<T>| b.mapv(|v| f(v)))
    }

    /// Applies `f` to every block. The result must have the block's shape (checked when the
    /// task runs).
    pub fn map_blocks<U: Elem, F>(&self, f: F) -> Array<U>
    where
        F: Fn(ArrayD<T>) -> ArrayD<U> + Send + Sync + 'static,
    {
        bail_err!(self);
        let f = Arc::new(f);
        let name = fresh("map_blocks");
        let nb = self.numblocks();
        let blocks = grid_indices(&nb)
            .iter()
            .map(|idx| {
                let f = Arc::clone(&f);
                task(&name, idx, vec![Arc::clone(self.node(idx))], move |x| {
                    let b = take_block::<T>(&mut x[0])?;
                    let shape = b.shape().to_vec();
                    let out = f(b);
                    if out.shape() != shape.as_slice() {
                        return Err(Error::shape(format!(
                            "map_blocks: the function turned a block of shape {} into {}",
                            fmt_shape(&shape),
                            fmt_shape(out.shape())
                        )));
                    }
                    Ok(block_value(out))
                })
            })
            .collect();
        Array::from_parts(self.shape.clone(), self.chunks.clone(), blocks)
    }

    /// Converts every element (`as`-cast semantics through f64 for floats; bool is 0/1).
    pub fn astype<U: Elem>(&self) -> Array<U> {
        self.mapv(cast::<T, U>)
    }

    /// Combines with `other` elementwise, broadcasting.
    pub fn zip_with<U: Elem, V: Elem, F>(&self, other: &Array<U>, f: F) -> Array<V>
    where
        F: Fn(T, U) -> V + Send + Sync + 'static,
    {
        bail_err!(self, other);
        let (shape, chunks) = try_arr!(layout(&[
            (&self.shape, &self.chunks),
            (&other.shape, &other.chunks)
        ]));
        let a = aligned(self, &chunks, &shape);
        let b = aligned(other, &chunks, &shape);
        let f = Arc::new(f);
        let name = fresh("zip");
        let nb: Vec<usize> = chunks.iter().map(Vec::len).collect();
        let n = shape.len();
        let blocks = grid_indices(&nb)
            .iter()
            .map(|idx| {
                let f = Arc::clone(&f);
                let out_shape = bshape(&chunks, idx);
                let (pa, pb) = (a.perm.clone(), b.perm.clone());
                task(
                    &name,
                    idx,
                    vec![a.node_for(idx), b.node_for(idx)],
                    move |x| {
                        let xa = lift_view(
                            super::permute(super::borrow_block::<T>(&x[0])?.view(), &pa),
                            n,
                        );
                        let xb = lift_view(
                            super::permute(super::borrow_block::<U>(&x[1])?.view(), &pb),
                            n,
                        );
                        let va = xa
                            .broadcast(IxDyn(&out_shape))
                            .ok_or_else(|| broadcast_err(xa.shape(), &out_shape))?;
                        let vb = xb
                            .broadcast(IxDyn(&out_shape))
                            .ok_or_else(|| broadcast_err(xb.shape(), &out_shape))?;
                        Ok(block_value(
                            Zip::from(&va).and(&vb).map_collect(|&p, &q| f(p, q)),
                        ))
                    },
                )
            })
            .collect();
        Array::from_parts(shape, chunks, blocks)
    }

    /// Same-type elementwise combination, writing into an operand block when it has the
    /// output's shape.
    pub fn zip_inplace<F>(&self, other: &Array<T>, f: F) -> Array<T>
    where
        F: Fn(T, T) -> T + Send + Sync + 'static,
    {
        bail_err!(self, other);
        let (shape, chunks) = try_arr!(layout(&[
            (&self.shape, &self.chunks),
            (&other.shape, &other.chunks)
        ]));
        let a = aligned(self, &chunks, &shape);
        let b = aligned(other, &chunks, &shape);
        let f = Arc::new(f);
        let name = fresh("zip");
        let nb: Vec<usize> = chunks.iter().map(Vec::len).collect();
        let n = shape.len();
        let blocks = grid_indices(&nb)
            .iter()
            .map(|idx| {
                let f = Arc::clone(&f);
                let out_shape = bshape(&chunks, idx);
                let perms = [a.perm.clone(), b.perm.clone()];
                // Generated operands are made in the task (no block held for other readers).
                let gens = [a.gen_for(idx), b.gen_for(idx)];
                let mut deps = Vec::new();
                for (g, op) in gens.iter().zip([&a, &b]) {
                    if g.is_none() {
                        deps.push(op.node_for(idx));
                    }
                }
                task(&name, idx, deps, move |inputs| {
                    let mut it = inputs.iter_mut();
                    let mut vals: Vec<Value> = Vec::with_capacity(2);
                    for g in &gens {
                        vals.push(match g {
                            Some(g) => block_value(g.make()),
                            None => std::mem::take(
                                it.next()
                                    .ok_or_else(|| Error::internal("zip: missing input"))?,
                            ),
                        });
                    }
                    let x = &mut vals[..];
                    // Write into an operand that has the output's shape and no other
                    // reader; otherwise allocate the result.
                    for (mine, other) in [(0usize, 1usize), (1, 0)] {
                        let fits = x[mine].downcast_ref::<ArrayD<T>>().is_some_and(|b| {
                            let b = super::permute(b.view(), &perms[mine]);
                            b.ndim() == n && b.shape() == out_shape.as_slice()
                        });
                        if fits && x[mine].ref_count() == 1 {
                            let mut own = take_block::<T>(&mut x[mine])?;
                            if let Some(p) = &perms[mine] {
                                own = own.permuted_axes(IxDyn(p));
                            }
                            let o = lift_view(
                                super::permute(
                                    super::borrow_block::<T>(&x[other])?.view(),
                                    &perms[other],
                                ),
                                n,
                            );
                            if o.broadcast(own.raw_dim()).is_none() {
                                return Err(broadcast_err(o.shape(), &out_shape));
                            }
                            if mine == 0 {
                                own.zip_mut_with(&o, |p, &q| *p = f(*p, q));
                            } else {
                                own.zip_mut_with(&o, |q, &p| *q = f(p, *q));
                            }
                            return Ok(block_value(own));
                        }
                    }
                    let xa = lift_view(
                        super::permute(super::borrow_block::<T>(&x[0])?.view(), &perms[0]),
                        n,
                    );
                    let xb = lift_view(
                        super::permute(super::borrow_block::<T>(&x[1])?.view(), &perms[1]),
                        n,
                    );
                    let va = xa
                        .broadcast(IxDyn(&out_shape))
                        .ok_or_else(|| broadcast_err(xa.shape(), &out_shape))?;
                    let vb = xb
                        .broadcast(IxDyn(&out_shape))
                        .ok_or_else(|| broadcast_err(xb.shape(), &out_shape))?;
                    Ok(block_value(
                        Zip::from(&va).and(&vb).map_collect(|&p, &q| f(p, q)),
                    ))
                })
            })
            .collect();
        Array::from_parts(shape, chunks, blocks)
    }

    /// Elementwise `self > other` (broadcasting).
    pub fn gt(&self, other: &Array<T>) -> Array<bool> {
        self.zip_with(other, |a, b| a > b)
    }
    /// Elementwise `self >= other`.
    pub fn ge(&self, other: &Array<T>) -> Array<bool> {
        self.zip_with(other, |a, b| a >= b)
    }
    /// Elementwise `self < other`.
    pub fn lt(&self, other: &Array<T>) -> Array<bool> {
        self.zip_with(other, |a, b| a < b)
    }
    /// Elementwise `self <= other`.
    pub fn le(&self, other: &Array<T>) -> Array<bool> {
        self.zip_with(other, |a, b| a <= b)
    }
    /// Elementwise `self == other`.
    pub fn eq_elem(&self, other: &Array<T>) -> Array<bool> {
        self.zip_with(other, |a, b| a == b)
    }
    /// Elementwise `self != other`.
    pub fn ne_elem(&self, other: &Array<T>) -> Array<bool> {
        self.zip_with(other, |a, b| a != b)
    }
    /// Elementwise `self > v`.
    pub fn gt_scalar(&self, v: T) -> Array<bool> {
        self.mapv(move |a| a > v)
    }
    /// Elementwise `self >= v`.
    pub fn ge_scalar(&self, v: T) -> Array<bool> {
        self.mapv(move |a| a >= v)
    }
    /// Elementwise `self < v`.
    pub fn lt_scalar(&self, v: T) -> Array<bool> {
        self.mapv(move |a| a < v)
    }
    /// Elementwise `self <= v`.
    pub fn le_scalar(&self, v: T) -> Array<bool> {
        self.mapv(move |a| a <= v)
    }
    /// Elementwise `self == v`.
    pub fn eq_scalar(&self, v: T) -> Array<bool> {
        self.mapv(move |a| a == v)
    }
    /// Elementwise `self != v`.
    pub fn ne_scalar(&self, v: T) -> Array<bool> {
        self.mapv(move |a| a != v)
    }
}

/// Converts between element types: the identity for the same type, otherwise through f64
/// (`as`-cast semantics: truncating, saturating; bool is 0/1 and non-zero is true).
pub fn cast<T: Elem, U: Elem>(x: T) -> U {
    if let Some(u) = (&x as &dyn std::any::Any).downcast_ref::<U>() {
        return *u;
    }
    U::from_f64(x.to_f64())
}

impl<T: Num> Array<T> {
    /// Absolute value.
    pub fn abs(&self) -> Array<T> {
        self.map_inplace(Num::abs)
    }

    /// Clamps every element to `[lo, hi]`.
    pub fn clip(&self, lo: T, hi: T) -> Array<T> {
        self.map_inplace(move |x| {
            if x < lo {
                lo
            } else if x > hi {
                hi
            } else {
                x
            }
        })
    }
}

impl<T: Float> Array<T> {
    /// Square root.
    pub fn sqrt(&self) -> Array<T> {
        self.map_inplace(Float::sqrt)
    }
    /// e^x.
    pub fn exp(&self) -> Array<T> {
        self.map_inplace(Float::exp)
    }
    /// Natural logarithm.
    pub fn log(&self) -> Array<T> {
        self.map_inplace(Float::ln)
    }
    /// Sine.
    pub fn sin(&self) -> Array<T> {
        self.map_inplace(Float::sin)
    }
    /// Cosine.
    pub fn cos(&self) -> Array<T> {
        self.map_inplace(Float::cos)
    }
    /// x^p.
    pub fn powf(&self, p: T) -> Array<T> {
        self.map_inplace(move |x| x.powf(p))
    }
    /// Elementwise `self^other` (broadcasting).
    pub fn pow(&self, other: &Array<T>) -> Array<T> {
        self.zip_inplace(other, |x, p| x.powf(p))
    }
}

/// `cond ? a : b` elementwise, broadcasting all three.
pub fn where_<T: Elem>(cond: &Array<bool>, a: &Array<T>, b: &Array<T>) -> Array<T> {
    bail_err!(cond, a, b);
    let (shape, chunks) = try_arr!(layout(&[
        (&cond.shape, &cond.chunks),
        (&a.shape, &a.chunks),
        (&b.shape, &b.chunks),
    ]));
    let c = aligned(cond, &chunks, &shape);
    let xa = aligned(a, &chunks, &shape);
    let xb = aligned(b, &chunks, &shape);
    let name = fresh("where");
    let nb: Vec<usize> = chunks.iter().map(Vec::len).collect();
    let n = shape.len();
    let blocks = grid_indices(&nb)
        .iter()
        .map(|idx| {
            let out_shape = bshape(&chunks, idx);
            let perms = [c.perm.clone(), xa.perm.clone(), xb.perm.clone()];
            task(
                &name,
                idx,
                vec![c.node_for(idx), xa.node_for(idx), xb.node_for(idx)],
                move |x| {
                    let bc = lift_view(
                        super::permute(super::borrow_block::<bool>(&x[0])?.view(), &perms[0]),
                        n,
                    );
                    let ba = lift_view(
                        super::permute(super::borrow_block::<T>(&x[1])?.view(), &perms[1]),
                        n,
                    );
                    let bb = lift_view(
                        super::permute(super::borrow_block::<T>(&x[2])?.view(), &perms[2]),
                        n,
                    );
                    let d = IxDyn(&out_shape);
                    let vc = bc
                        .broadcast(d.clone())
                        .ok_or_else(|| broadcast_err(bc.shape(), &out_shape))?;
                    let va = ba
                        .broadcast(d.clone())
                        .ok_or_else(|| broadcast_err(ba.shape(), &out_shape))?;
                    let vb = bb
                        .broadcast(d)
                        .ok_or_else(|| broadcast_err(bb.shape(), &out_shape))?;
                    Ok(block_value(
                        Zip::from(&vc)
                            .and(&va)
                            .and(&vb)
                            .map_collect(|&c, &p, &q| if c { p } else { q }),
                    ))
                },
            )
        })
        .collect();
    Array::from_parts(shape, chunks, blocks)
}

macro_rules! binop {
    ($tr:ident, $m:ident, $op:tt) => {
        impl<T: Num> std::ops::$tr<&Array<T>> for &Array<T> {
            type Output = Array<T>;
            fn $m(self, rhs: &Array<T>) -> Array<T> {
                self.zip_inplace(rhs, |a, b| a $op b)
            }
        }
        impl<T: Num> std::ops::$tr<Array<T>> for Array<T> {
            type Output = Array<T>;
            fn $m(self, rhs: Array<T>) -> Array<T> {
                self.zip_inplace(&rhs, |a, b| a $op b)
            }
        }
        impl<T: Num> std::ops::$tr<&Array<T>> for Array<T> {
            type Output = Array<T>;
            fn $m(self, rhs: &Array<T>) -> Array<T> {
                self.zip_inplace(rhs, |a, b| a $op b)
            }
        }
        impl<T: Num> std::ops::$tr<Array<T>> for &Array<T> {
            type Output = Array<T>;
            fn $m(self, rhs: Array<T>) -> Array<T> {
                self.zip_inplace(&rhs, |a, b| a $op b)
            }
        }
        impl<T: Num> std::ops::$tr<T> for &Array<T> {
            type Output = Array<T>;
            fn $m(self, rhs: T) -> Array<T> {
                self.map_inplace(move |a| a $op rhs)
            }
        }
        impl<T: Num> std::ops::$tr<T> for Array<T> {
            type Output = Array<T>;
            fn $m(self, rhs: T) -> Array<T> {
                self.map_inplace(move |a| a $op rhs)
            }
        }
    };
}
binop!(Add, add, +);
binop!(Sub, sub, -);
binop!(Mul, mul, *);
binop!(Div, div, /);

macro_rules! scalar_lhs {
    ($($t:ty),*) => {$(
        impl std::ops::Add<&Array<$t>> for $t {
            type Output = Array<$t>;
            fn add(self, rhs: &Array<$t>) -> Array<$t> { rhs.map_inplace(move |b| self + b) }
        }
        impl std::ops::Sub<&Array<$t>> for $t {
            type Output = Array<$t>;
            fn sub(self, rhs: &Array<$t>) -> Array<$t> { rhs.map_inplace(move |b| self - b) }
        }
        impl std::ops::Mul<&Array<$t>> for $t {
            type Output = Array<$t>;
            fn mul(self, rhs: &Array<$t>) -> Array<$t> { rhs.map_inplace(move |b| self * b) }
        }
        impl std::ops::Div<&Array<$t>> for $t {
            type Output = Array<$t>;
            fn div(self, rhs: &Array<$t>) -> Array<$t> { rhs.map_inplace(move |b| self / b) }
        }
        impl std::ops::Add<Array<$t>> for $t {
            type Output = Array<$t>;
            fn add(self, rhs: Array<$t>) -> Array<$t> { rhs.map_inplace(move |b| self + b) }
        }
        impl std::ops::Sub<Array<$t>> for $t {
            type Output = Array<$t>;
            fn sub(self, rhs: Array<$t>) -> Array<$t> { rhs.map_inplace(move |b| self - b) }
        }
        impl std::ops::Mul<Array<$t>> for $t {
            type Output = Array<$t>;
            fn mul(self, rhs: Array<$t>) -> Array<$t> { rhs.map_inplace(move |b| self * b) }
        }
        impl std::ops::Div<Array<$t>> for $t {
            type Output = Array<$t>;
            fn div(self, rhs: Array<$t>) -> Array<$t> { rhs.map_inplace(move |b| self / b) }
        }
    )*};
}
scalar_lhs!(f64, f32, i64, i32, u8);

impl<T: Num> std::ops::Neg for &Array<T> {
    type Output = Array<T>;
    fn neg(self) -> Array<T> {
        self.map_inplace(|a| T::ZERO - a)
    }
}
impl<T: Num> std::ops::Neg for Array<T> {
    type Output = Array<T>;
    fn neg(self) -> Array<T> {
        self.map_inplace(|a| T::ZERO - a)
    }
}

impl Array<bool> {
    /// Elementwise logical and.
    pub fn and(&self, other: &Array<bool>) -> Array<bool> {
        self.zip_inplace(other, |a, b| a && b)
    }
    /// Elementwise logical or.
    pub fn or(&self, other: &Array<bool>) -> Array<bool> {
        self.zip_inplace(other, |a, b| a || b)
    }
    /// Elementwise logical not.
    pub fn not(&self) -> Array<bool> {
        self.map_inplace(|a| !a)
    }
}
