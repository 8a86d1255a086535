//! Reductions over any set of axes: a per-block partial, then a tree of fan-in ~4.
//!
//! Like Dask's `reduction`: every block is reduced to a small *partial* whose reduced axes have
//! length 1 (keepdims). Partials of neighbouring blocks along the reduced axes are merged in
//! groups (per-axis fan-in `max(⌊4^(1/r)⌋, 2)` for `r` reduced axes) until one remains per
//! output block, which is turned into the result. No task holds more than a few partials.
//!
//! Partials: running sums / products / extrema (`NumAcc`), any/all flags, `(value, index)`
//! pairs for argmin/argmax, and `(count, mean, M2)` moments for mean/var/std, computed per
//! block with two passes (mean, then squared deviations) and merged with Chan's pairwise
//! formula — numerically stable. Sums of contiguous lanes are blocked pairwise sums.
//!
//! Within a block, the kept axes are moved first and the reduced axes last; when the reduced
//! axes are already trailing in a C-ordered block this is free and every output element's
//! inputs are one contiguous lane, otherwise the block is copied into that order once.
//! Arrays straight from a creation function are reduced strip by strip from their generator
//! (see the module docs of [`array`](super)).

use std::sync::Arc;

use ndarray::{ArrayD, ArrayViewD, Axis, IxDyn, Zip};

use super::{
    bail_err, fmt_shape, fresh, grid_indices, offsets, take_any, take_block, task, try_arr, Array,
    Elem, NodeRef, Num,
};
use crate::error::{Error, Result};
use crate::spill::SizeOf;

/// All axes, for reductions: `x.sum(All)`.
#[derive(Clone, Copy, Debug)]
pub struct All;

/// Which axes a reduction runs over.
#[derive(Clone, Debug)]
pub enum Axes {
    /// Every axis: the result is 0-d.
    All,
    /// These axes (negative counts from the end).
    List(Vec<isize>),
}

impl From<All> for Axes {
    fn from(_: All) -> Self {
        Axes::All
    }
}
impl From<usize> for Axes {
    fn from(a: usize) -> Self {
        Axes::List(vec![a as isize])
    }
}
impl<const N: usize> From<[usize; N]> for Axes {
    fn from(a: [usize; N]) -> Self {
        Axes::List(a.iter().map(|&x| x as isize).collect())
    }
}
impl From<&[usize]> for Axes {
    fn from(a: &[usize]) -> Self {
        Axes::List(a.iter().map(|&x| x as isize).collect())
    }
}
impl From<Vec<usize>> for Axes {
    fn from(a: Vec<usize>) -> Self {
        Axes::List(a.iter().map(|&x| x as isize).collect())
    }
}
impl From<Option<usize>> for Axes {
    fn from(a: Option<usize>) -> Self {
        a.map_or(Axes::All, Axes::from)
    }
}

impl Axes {
    /// Sorted, distinct, in-range axes.
    pub(crate) fn resolve(&self, ndim: usize, what: &str) -> Result<Vec<usize>> {
        match self {
            Axes::All => Ok((0..ndim).collect()),
            Axes::List(l) => {
                let mut out = Vec::with_capacity(l.len());
                for &a in l {
                    let r = super::norm_axis(a, ndim, what)?;
                    if out.contains(&r) {
                        return Err(Error::shape(format!("{what}: axis {a} repeated in {l:?}")));
                    }
                    out.push(r);
                }
                out.sort_unstable();
                Ok(out)
            }
        }
    }
}

// ---------------------------------------------------------------------------------------
// Lane arithmetic

/// Leaf of the blocked sums: 16 independent accumulators (vectorizes, and hides the
/// latency of the adds).
#[inline(always)]
fn leaf<A: Num, T: Copy>(x: &[T], conv: impl Fn(T) -> A) -> A {
    let mut acc = [A::ZERO; 16];
    let mut it = x.chunks_exact(16);
    for c in &mut it {
        for k in 0..16 {
            acc[k] = acc[k] + conv(c[k]);
        }
    }
    for k in 0..8 {
        acc[k] = acc[k] + acc[k + 8];
    }
    let mut s = ((acc[0] + acc[1]) + (acc[2] + acc[3])) + ((acc[4] + acc[5]) + (acc[6] + acc[7]));
    for &v in it.remainder() {
        s = s + conv(v);
    }
    s
}

/// Sums of 256-element leaves, combined pairwise.
#[inline(always)]
fn blocked<A: Num, T: Copy>(x: &[T], conv: impl Fn(T) -> A + Copy) -> A {
    if x.len() <= 256 {
        return leaf(x, conv);
    }
    let mut parts: smallvec::SmallVec<[A; 64]> = x.chunks(256).map(|c| leaf(c, conv)).collect();
    while parts.len() > 1 {
        let half = parts.len().div_ceil(2);
        for i in 0..half {
            let b = parts.get(2 * i + 1).copied().unwrap_or(A::ZERO);
            parts[i] = parts[2 * i] + b;
        }
        parts.truncate(half);
    }
    parts[0]
}

#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx512f")]
fn blocked_avx512<A: Num, T: Copy>(x: &[T], conv: impl Fn(T) -> A + Copy) -> A {
    blocked(x, conv)
}

/// Blocked pairwise sum of a lane (AVX-512 when the CPU has it; same rounding either way:
/// the order of the additions does not depend on the instruction set).
pub(crate) fn pairwise_sum<T: Num>(x: &[T]) -> T::Acc {
    #[cfg(target_arch = "x86_64")]
    if std::arch::is_x86_feature_detected!("avx512f") {
        // SAFETY: the CPU supports AVX-512F, checked just above.
        return unsafe { blocked_avx512(x, |v: T| v.acc()) };
    }
    blocked(x, |v: T| v.acc())
}

fn pairwise_f64<T: Elem>(x: &[T], skip_nan: bool) -> (f64, f64) {
    if skip_nan {
        let mut s = 0.0;
        let mut n = 0.0;
        for &v in x {
            if !v.is_nan() {
                s += v.to_f64();
                n += 1.0;
            }
        }
        return (s, n);
    }
    #[cfg(target_arch = "x86_64")]
    if std::arch::is_x86_feature_detected!("avx512f") {
        // SAFETY: the CPU supports AVX-512F, checked just above.
        return (
            unsafe { blocked_avx512(x, |v: T| v.to_f64()) },
            x.len() as f64,
        );
    }
    (blocked(x, |v: T| v.to_f64()), x.len() as f64)
}

// ---------------------------------------------------------------------------------------
// Partials

/// A per-block intermediate of a reduction, merged in the tree.
pub(crate) trait Partial: Clone + Send + Sync + SizeOf + 'static {
    /// Merges `other` (covering the same output elements).
    fn merge(&mut self, other: &Self);
    /// Joins partials of consecutive row strips (axis 0 kept) into one.
    fn concat0(parts: Vec<Self>) -> Self;
}

fn cat0<A: Clone>(parts: &[&ArrayD<A>]) -> ArrayD<A> {
    let views: Vec<_> = parts.iter().map(|a| a.view()).collect();
    ndarray::concatenate(Axis(0), &views).unwrap_or_else(|_| parts[0].clone())
}

#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub(crate) enum NumOp {
    Sum,
    Prod,
    Min,
    Max,
}

#[inline]
fn num_merge<A: Num>(op: NumOp, a: A, b: A) -> A {
    match op {
        NumOp::Sum => a + b,
        NumOp::Prod => a * b,
        NumOp::Min => {
            if a.is_nan() || (!b.is_nan() && a <= b) {
                a
            } else {
                b
            }
        }
        NumOp::Max => {
            if a.is_nan() || (!b.is_nan() && a >= b) {
                a
            } else {
                b
            }
        }
    }
}

#[derive(Clone)]
pub(crate) struct NumAcc<A: Num> {
    a: ArrayD<A>,
    op: NumOp,
}

impl<A: Num> SizeOf for NumAcc<A> {
    fn size_of(&self) -> usize {
        self.a.size_of()
    }
}

impl<A: Num> Partial for NumAcc<A> {
    fn concat0(parts: Vec<Self>) -> Self {
        let op = parts[0].op;
        NumAcc {
            a: cat0(&parts.iter().map(|p| &p.a).collect::<Vec<_>>()),
            op,
        }
    }
    fn merge(&mut self, other: &Self) {
        let op = self.op;
        self.a
            .zip_mut_with(&other.a, |x, &y| *x = num_merge(op, *x, y));
    }
}

#[derive(Clone)]
pub(crate) struct BoolAcc {
    a: ArrayD<bool>,
    any: bool,
}

impl SizeOf for BoolAcc {
    fn size_of(&self) -> usize {
        self.a.size_of()
    }
}

impl Partial for BoolAcc {
    fn concat0(parts: Vec<Self>) -> Self {
        let any = parts[0].any;
        BoolAcc {
            a: cat0(&parts.iter().map(|p| &p.a).collect::<Vec<_>>()),
            any,
        }
    }
    fn merge(&mut self, other: &Self) {
        let any = self.any;
        self.a
            .zip_mut_with(&other.a, |x, &y| *x = if any { *x || y } else { *x && y });
    }
}

/// Count, mean and sum of squared deviations per output element.
#[derive(Clone)]
pub(crate) struct Moments {
    n: ArrayD<f64>,
    mean: ArrayD<f64>,
    m2: ArrayD<f64>,
}

impl SizeOf for Moments {
    fn size_of(&self) -> usize {
        self.n.size_of() * 3
    }
}

#[inline]
fn chan(n: &mut f64, mean: &mut f64, m2: &mut f64, nb: f64, mb: f64, m2b: f64) {
    if nb == 0.0 {
        return;
    }
    if *n == 0.0 {
        (*n, *mean, *m2) = (nb, mb, m2b);
        return;
    }
    let tot = *n + nb;
    let d = mb - *mean;
    *mean += d * nb / tot;
    *m2 += m2b + d * d * *n * nb / tot;
    *n = tot;
}

impl Partial for Moments {
    fn concat0(parts: Vec<Self>) -> Self {
        Moments {
            n: cat0(&parts.iter().map(|p| &p.n).collect::<Vec<_>>()),
            mean: cat0(&parts.iter().map(|p| &p.mean).collect::<Vec<_>>()),
            m2: cat0(&parts.iter().map(|p| &p.m2).collect::<Vec<_>>()),
        }
    }
    fn merge(&mut self, o: &Self) {
        Zip::from(&mut self.n)
            .and(&mut self.mean)
            .and(&mut self.m2)
            .and(&o.n)
            .and(&o.mean)
            .and(&o.m2)
            .for_each(|n, m, q, &nb, &mb, &qb| chan(n, m, q, nb, mb, qb));
    }
}

#[derive(Clone)]
pub(crate) struct ArgAcc<T: Elem> {
    v: ArrayD<T>,
    i: ArrayD<i64>,
    max: bool,
}

impl<T: Elem> SizeOf for ArgAcc<T> {
    fn size_of(&self) -> usize {
        self.v.size_of() + self.i.size_of()
    }
}

#[inline]
fn arg_better<T: Elem>(max: bool, v: T, i: i64, bv: T, bi: i64) -> bool {
    // NaN wins (NumPy returns the first NaN), then the extreme, then the lower index.
    if bi < 0 {
        return true;
    }
    if i < 0 {
        return false;
    }
    match (v.is_nan(), bv.is_nan()) {
        (true, true) => i < bi,
        (true, false) => true,
        (false, true) => false,
        _ => {
            if v == bv {
                i < bi
            } else if max {
                v > bv
            } else {
                v < bv
            }
        }
    }
}

impl<T: Elem> Partial for ArgAcc<T> {
    fn concat0(parts: Vec<Self>) -> Self {
        let max = parts[0].max;
        ArgAcc {
            v: cat0(&parts.iter().map(|p| &p.v).collect::<Vec<_>>()),
            i: cat0(&parts.iter().map(|p| &p.i).collect::<Vec<_>>()),
            max,
        }
    }
    fn merge(&mut self, o: &Self) {
        let max = self.max;
        Zip::from(&mut self.v)
            .and(&mut self.i)
            .and(&o.v)
            .and(&o.i)
            .for_each(|v, i, &ov, &oi| {
                if arg_better(max, ov, oi, *v, *i) {
                    *v = ov;
                    *i = oi;
                }
            });
    }
}

// ---------------------------------------------------------------------------------------
// Kinds of reduction

/// Where lane elements sit in the whole array, for arg-reductions.
#[derive(Clone)]
pub(crate) enum Pos {
    /// Not needed.
    None,
    /// One reduced axis: the index along it is `start + j`.
    Axis(usize),
    /// All axes: the global flat index of local flat `j` in a block of `shape` at `start`.
    Flat {
        shape: Vec<usize>,
        start: Vec<usize>,
        gshape: Vec<usize>,
    },
}

impl Pos {
    fn index(&self, j: usize) -> i64 {
        match self {
            Pos::None => 0,
            Pos::Axis(s) => (s + j) as i64,
            Pos::Flat {
                shape,
                start,
                gshape,
            } => {
                let mut rem = j;
                let mut local = vec![0; shape.len()];
                for a in (0..shape.len()).rev() {
                    local[a] = rem % shape[a].max(1);
                    rem /= shape[a].max(1);
                }
                let mut g = 0usize;
                for a in 0..shape.len() {
                    g = g * gshape[a] + start[a] + local[a];
                }
                g as i64
            }
        }
    }
}

/// A reduction: how to reduce `k` lanes of `l` elements to a partial, and how to finish.
pub(crate) trait Kind<T: Elem>: Send + Sync + 'static {
    type P: Partial;
    type Out: Elem;
    /// `data` holds `k` lanes of `l` elements; `kshape` is the keepdims shape (k elements).
    fn chunk(&self, data: &[T], k: usize, l: usize, kshape: &[usize], pos: &Pos) -> Self::P;
    fn finish(&self, p: Self::P) -> ArrayD<Self::Out>;
}

struct SumK<T: Num> {
    op: NumOp,
    skip_nan: bool,
    _t: std::marker::PhantomData<fn() -> T>,
}

impl<T: Num> Kind<T> for SumK<T> {
    type P = NumAcc<T::Acc>;
    type Out = T::Acc;
    fn chunk(&self, data: &[T], k: usize, l: usize, kshape: &[usize], _: &Pos) -> Self::P {
        let mut out = Vec::with_capacity(k);
        for lane in data.chunks_exact(l.max(1)).take(k) {
            let lane = if l == 0 { &lane[..0] } else { lane };
            let v = match (self.op, self.skip_nan) {
                (NumOp::Sum, false) => pairwise_sum(lane),
                (NumOp::Sum, true) => lane
                    .iter()
                    .filter(|x| !x.is_nan())
                    .fold(<T::Acc as Num>::ZERO, |a, &x| a + x.acc()),
                _ => lane.iter().fold(<T::Acc as Num>::ONE, |a, &x| a * x.acc()),
            };
            out.push(v);
        }
        if l == 0 {
            let id = if self.op == NumOp::Prod {
                <T::Acc as Num>::ONE
            } else {
                <T::Acc as Num>::ZERO
            };
            out = vec![id; k];
        }
        NumAcc {
            a: ArrayD::from_shape_vec(IxDyn(kshape), out).unwrap_or_default(),
            op: self.op,
        }
    }
    fn finish(&self, p: Self::P) -> ArrayD<T::Acc> {
        p.a
    }
}

struct ExtK {
    max: bool,
}

impl<T: Num> Kind<T> for ExtK {
    type P = NumAcc<T>;
    type Out = T;
    fn chunk(&self, data: &[T], k: usize, l: usize, kshape: &[usize], _: &Pos) -> Self::P {
        let op = if self.max { NumOp::Max } else { NumOp::Min };
        let out: Vec<T> = data
            .chunks_exact(l.max(1))
            .take(k)
            .map(|lane| {
                let mut it = lane.iter().copied();
                let first = it.next().unwrap_or_default();
                it.fold(first, |a, x| num_merge(op, a, x))
            })
            .collect();
        NumAcc {
            a: ArrayD::from_shape_vec(IxDyn(kshape), out).unwrap_or_default(),
            op,
        }
    }
    fn finish(&self, p: Self::P) -> ArrayD<T> {
        p.a
    }
}

struct BoolK {
    any: bool,
}

impl Kind<bool> for BoolK {
    type P = BoolAcc;
    type Out = bool;
    fn chunk(&self, data: &[bool], k: usize, l: usize, kshape: &[usize], _: &Pos) -> BoolAcc {
        let out: Vec<bool> = if l == 0 {
            vec![!self.any; k]
        } else {
            data.chunks_exact(l)
                .take(k)
                .map(|lane| {
                    if self.any {
                        lane.iter().any(|&x| x)
                    } else {
                        lane.iter().all(|&x| x)
                    }
                })
                .collect()
        };
        BoolAcc {
            a: ArrayD::from_shape_vec(IxDyn(kshape), out).unwrap_or_default(),
            any: self.any,
        }
    }
    fn finish(&self, p: BoolAcc) -> ArrayD<bool> {
        p.a
    }
}

#[derive(Clone, Copy, PartialEq)]
enum MomOut {
    Mean,
    Var(f64),
    Std(f64),
}

struct MomK {
    out: MomOut,
    skip_nan: bool,
}

impl<T: Elem> Kind<T> for MomK {
    type P = Moments;
    type Out = f64;
    fn chunk(&self, data: &[T], k: usize, l: usize, kshape: &[usize], _: &Pos) -> Moments {
        let mut n = Vec::with_capacity(k);
        let mut mean = Vec::with_capacity(k);
        let mut m2 = Vec::with_capacity(k);
        let need_m2 = self.out != MomOut::Mean;
        for i in 0..k {
            let lane = &data[i * l..(i + 1) * l];
            let (s, c) = pairwise_f64(lane, self.skip_nan);
            let mu = if c > 0.0 { s / c } else { 0.0 };
            let mut q = 0.0;
            if need_m2 {
                let mut acc = [0.0f64; 4];
                if self.skip_nan {
                    for &x in lane {
                        if !x.is_nan() {
                            let d = x.to_f64() - mu;
                            acc[0] += d * d;
                        }
                    }
                } else {
                    let mut it = lane.chunks_exact(4);
                    for c in &mut it {
                        for j in 0..4 {
                            let d = c[j].to_f64() - mu;
                            acc[j] += d * d;
                        }
                    }
                    for &x in it.remainder() {
                        let d = x.to_f64() - mu;
                        acc[0] += d * d;
                    }
                }
                q = (acc[0] + acc[1]) + (acc[2] + acc[3]);
            }
            n.push(c);
            mean.push(mu);
            m2.push(q);
        }
        let mk = |v: Vec<f64>| ArrayD::from_shape_vec(IxDyn(kshape), v).unwrap_or_default();
        Moments {
            n: mk(n),
            mean: mk(mean),
            m2: mk(m2),
        }
    }
    fn finish(&self, p: Moments) -> ArrayD<f64> {
        match self.out {
            MomOut::Mean => {
                let mut m = p.mean;
                m.zip_mut_with(&p.n, |m, &n| {
                    if n == 0.0 {
                        *m = f64::NAN
                    }
                });
                m
            }
            MomOut::Var(ddof) | MomOut::Std(ddof) => {
                let sqrt = matches!(self.out, MomOut::Std(_));
                let mut q = p.m2;
                q.zip_mut_with(&p.n, |q, &n| {
                    let d = n - ddof;
                    let v = if d > 0.0 { *q / d } else { f64::NAN };
                    *q = if sqrt { v.sqrt() } else { v };
                });
                q
            }
        }
    }
}

struct ArgK {
    max: bool,
}

impl<T: Elem> Kind<T> for ArgK {
    type P = ArgAcc<T>;
    type Out = i64;
    fn chunk(&self, data: &[T], k: usize, l: usize, kshape: &[usize], pos: &Pos) -> ArgAcc<T> {
        let mut vs = Vec::with_capacity(k);
        let mut is = Vec::with_capacity(k);
        for i in 0..k {
            let lane = &data[i * l..(i + 1) * l];
            let mut best = (T::default(), -1i64);
            let mut bj = 0;
            for (j, &x) in lane.iter().enumerate() {
                if arg_better(self.max, x, j as i64, best.0, best.1) {
                    best = (x, j as i64);
                    bj = j;
                }
            }
            vs.push(best.0);
            is.push(if best.1 < 0 { -1 } else { pos.index(bj) });
        }
        ArgAcc {
            v: ArrayD::from_shape_vec(IxDyn(kshape), vs).unwrap_or_default(),
            i: ArrayD::from_shape_vec(IxDyn(kshape), is).unwrap_or_default(),
            max: self.max,
        }
    }
    fn finish(&self, p: ArgAcc<T>) -> ArrayD<i64> {
        p.i
    }
}

// ---------------------------------------------------------------------------------------
// The tree

/// Reduces one block (or strip) view to a partial.
fn chunk_view<T: Elem, K: Kind<T>>(
    kind: &K,
    v: ArrayViewD<'_, T>,
    red: &[usize],
    pos: Pos,
) -> K::P {
    let nd = v.ndim();
    let kept: Vec<usize> = (0..nd).filter(|a| !red.contains(a)).collect();
    let kshape: Vec<usize> = (0..nd)
        .map(|a| if red.contains(&a) { 1 } else { v.shape()[a] })
        .collect();
    let k: usize = kept.iter().map(|&a| v.shape()[a]).product();
    let l: usize = red.iter().map(|&a| v.shape()[a]).product();
    let perm: Vec<usize> = kept.iter().chain(red.iter()).copied().collect();
    let p = v.permuted_axes(IxDyn(&perm));
    if kept.is_empty() && matches!(pos, Pos::None) {
        // Every element goes to one output: any memory order will do.
        if let Some(s) = p.as_slice_memory_order() {
            return kind.chunk(s, 1, l, &kshape, &pos);
        }
    }
    if let Some(s) = p.as_slice() {
        kind.chunk(s, k, l, &kshape, &pos)
    } else {
        let owned = p.as_standard_layout();
        let s = owned.as_slice().unwrap_or(&[]);
        kind.chunk(s, k, l, &kshape, &pos)
    }
}

/// Elements per strip when generating blocks for a reduction.
const STRIP: usize = 1 << 16;

pub(crate) fn reduce<T: Elem, K: Kind<T>>(
    x: &Array<T>,
    axes: Axes,
    keepdims: bool,
    kind: K,
    op: &str,
    needs_identity: bool,
    arg_axis: bool,
) -> Array<K::Out> {
    bail_err!(x);
    let red = try_arr!(axes.resolve(x.ndim(), op));
    if needs_identity && red.iter().any(|&a| x.shape[a] == 0) {
        return Array::failed(Error::shape(format!(
            "{op}: zero-size reduction over axes {red:?} of an array of shape {} has no identity",
            fmt_shape(&x.shape)
        )));
    }
    let kind = Arc::new(kind);
    let nd = x.ndim();
    let nb = x.numblocks();
    let offs: Vec<Vec<usize>> = x.chunks.iter().map(|c| offsets(c)).collect();
    let cname = fresh(&format!("{op}_chunk"));
    let flat_pos = arg_axis && red.len() == nd && nd > 1;
    let gshape = x.shape.clone();

    // Level 0: one partial per block.
    let mut grid: Vec<NodeRef> = grid_indices(&nb)
        .iter()
        .map(|idx| {
            let start: Vec<usize> = idx.iter().enumerate().map(|(a, &i)| offs[a][i]).collect();
            let bshape = x.block_shape(idx);
            let kind = Arc::clone(&kind);
            let red0 = red.first().copied().unwrap_or(0);
            let gshape = gshape.clone();
            let pos_for = move |shape: &[usize], start: &[usize]| -> Pos {
                if !arg_axis {
                    Pos::None
                } else if flat_pos {
                    Pos::Flat {
                        shape: shape.to_vec(),
                        start: start.to_vec(),
                        gshape: gshape.clone(),
                    }
                } else {
                    Pos::Axis(start.get(red0).copied().unwrap_or(0))
                }
            };
            let red = red.clone();
            if let Some(gen) = &x.gen {
                // Fused: generate the block strip by strip into one buffer.
                let gen = Arc::clone(gen);
                let bidx = idx.clone();
                task(&cname, idx, Vec::new(), move |_| {
                    if bshape.is_empty() {
                        let mut b = ArrayD::<T>::default(IxDyn(&[]));
                        gen.fill(&bidx, &start, 0, b.view_mut());
                        return Ok(crate::graph::Value::new(chunk_view(
                            &*kind,
                            b.view(),
                            &red,
                            pos_for(&bshape, &start),
                        )));
                    }
                    let rows = bshape[0];
                    let inner: usize = bshape[1..].iter().product();
                    let per = (STRIP / inner.max(1)).clamp(1, rows.max(1));
                    let mut buf: Vec<T> = vec![T::default(); per * inner];
                    let mut acc: Option<K::P> = None;
                    let mut rows_parts: Vec<K::P> = Vec::new();
                    let axis0_kept = !red.contains(&0);
                    let mut r = 0;
                    loop {
                        let n = per.min(rows - r);
                        let mut sshape = bshape.clone();
                        sshape[0] = n;
                        let mut sstart = start.clone();
                        sstart[0] += r;
                        let mut view = ndarray::ArrayViewMutD::from_shape(
                            IxDyn(&sshape),
                            &mut buf[..n * inner],
                        )
                        .map_err(|e| Error::internal(format!("strip view: {e}")))?;
                        gen.fill(&bidx, &sstart, r, view.view_mut());
                        let part = chunk_view(&*kind, view.view(), &red, pos_for(&sshape, &sstart));
                        if axis0_kept {
                            rows_parts.push(part);
                        } else if let Some(a) = &mut acc {
                            a.merge(&part);
                        } else {
                            acc = Some(part);
                        }
                        r += n;
                        if r >= rows {
                            break;
                        }
                    }
                    if axis0_kept {
                        acc = Some(if rows_parts.len() == 1 {
                            rows_parts
                                .pop()
                                .ok_or_else(|| Error::internal("no strip"))?
                        } else {
                            K::P::concat0(rows_parts)
                        });
                    }
                    let acc = acc.ok_or_else(|| Error::internal("empty reduction strip"))?;
                    Ok(crate::graph::Value::new(acc))
                })
            } else {
                let (node, tp) = x.read_node(idx);
                task(&cname, idx, vec![node], move |inp| {
                    let b = super::permute(super::borrow_block::<T>(&inp[0])?.view(), &tp);
                    let pos = pos_for(b.shape(), &start);
                    Ok(crate::graph::Value::new(chunk_view(&*kind, b, &red, pos)))
                })
            }
        })
        .collect();

    // Tree levels over the reduced axes of the block grid.
    let mut dims = nb.clone();
    let fan = ((4f64).powf(1.0 / red.len().max(1) as f64).floor() as usize).max(2);
    let mut level = 0;
    while red.iter().any(|&a| dims[a] > 1) {
        level += 1;
        let new_dims: Vec<usize> = (0..nd)
            .map(|a| {
                if red.contains(&a) {
                    dims[a].div_ceil(fan)
                } else {
                    dims[a]
                }
            })
            .collect();
        let name = fresh(&format!("{op}_combine{level}"));
        let strides = super::grid_strides(&dims);
        let new_grid = grid_indices(&new_dims)
            .iter()
            .map(|nidx| {
                // Members: the old indices that map to nidx.
                let ranges: Vec<std::ops::Range<usize>> = (0..nd)
                    .map(|a| {
                        if red.contains(&a) {
                            nidx[a] * fan..((nidx[a] + 1) * fan).min(dims[a])
                        } else {
                            nidx[a]..nidx[a] + 1
                        }
                    })
                    .collect();
                let lens: Vec<usize> = ranges.iter().map(|r| r.len()).collect();
                let deps: Vec<NodeRef> = grid_indices(&lens)
                    .iter()
                    .map(|o| {
                        let flat: usize = o
                            .iter()
                            .zip(&ranges)
                            .zip(&strides)
                            .map(|((&d, r), s)| (r.start + d) * s)
                            .sum();
                        Arc::clone(&grid[flat])
                    })
                    .collect();
                task(&name, nidx, deps, move |inp| {
                    let mut it = inp.iter_mut();
                    let first = it.next().ok_or_else(|| Error::internal("empty combine"))?;
                    let mut acc: K::P = take_any(first)?;
                    for v in it {
                        let p = v.downcast_ref::<K::P>().ok_or_else(|| {
                            Error::internal("reduction partial of the wrong type")
                        })?;
                        acc.merge(p);
                    }
                    Ok(crate::graph::Value::new(acc))
                })
            })
            .collect();
        grid = new_grid;
        dims = new_dims;
    }

    // Finish: one output block per remaining partial.
    let fname = fresh(op);
    let out_axes: Vec<usize> = if keepdims {
        (0..nd).collect()
    } else {
        (0..nd).filter(|a| !red.contains(a)).collect()
    };
    let out_shape: Vec<usize> = out_axes
        .iter()
        .map(|&a| if red.contains(&a) { 1 } else { x.shape[a] })
        .collect();
    let out_chunks: Vec<Vec<usize>> = out_axes
        .iter()
        .map(|&a| {
            if red.contains(&a) {
                vec![1]
            } else {
                x.chunks[a].clone()
            }
        })
        .collect();
    let blocks = grid_indices(&dims)
        .iter()
        .zip(grid)
        .map(|(idx, node)| {
            let kind = Arc::clone(&kind);
            let oidx: Vec<usize> = out_axes.iter().map(|&a| idx[a]).collect();
            let oshape: Vec<usize> = oidx.iter().zip(&out_chunks).map(|(&i, c)| c[i]).collect();
            task(&fname, &oidx, vec![node], move |inp| {
                let p: K::P = take_any(&mut inp[0])?;
                let out = kind.finish(p);
                let out = out
                    .into_shape_with_order(IxDyn(&oshape))
                    .map_err(|e| Error::internal(format!("reduction output shape: {e}")))?;
                Ok(super::block_value(out))
            })
        })
        .collect();
    Array::from_parts(out_shape, out_chunks, blocks)
}

impl<T: Num> Array<T> {
    /// Sum over `axes` (i32 and u8 sum to i64).
    pub fn sum(&self, axes: impl Into<Axes>) -> Array<T::Acc> {
        reduce(
            self,
            axes.into(),
            false,
            SumK::<T> {
                op: NumOp::Sum,
                skip_nan: false,
                _t: Default::default(),
            },
            "sum",
            false,
            false,
        )
    }
    /// Sum ignoring NaNs.
    pub fn nansum(&self, axes: impl Into<Axes>) -> Array<T::Acc> {
        reduce(
            self,
            axes.into(),
            false,
            SumK::<T> {
                op: NumOp::Sum,
                skip_nan: true,
                _t: Default::default(),
            },
            "nansum",
            false,
            false,
        )
    }
    /// Product over `axes`.
    pub fn prod(&self, axes: impl Into<Axes>) -> Array<T::Acc> {
        reduce(
            self,
            axes.into(),
            false,
            SumK::<T> {
                op: NumOp::Prod,
                skip_nan: false,
                _t: Default::default(),
            },
            "prod",
            false,
            false,
        )
    }
    /// Minimum over `axes` (NaN propagates).
    pub fn min(&self, axes: impl Into<Axes>) -> Array<T> {
        reduce(
            self,
            axes.into(),
            false,
            ExtK { max: false },
            "min",
            true,
            false,
        )
    }
    /// Maximum over `axes` (NaN propagates).
    pub fn max(&self, axes: impl Into<Axes>) -> Array<T> {
        reduce(
            self,
            axes.into(),
            false,
            ExtK { max: true },
            "max",
            true,
            false,
        )
    }
    /// Mean over `axes`, as f64.
    pub fn mean(&self, axes: impl Into<Axes>) -> Array<f64> {
        reduce(
            self,
            axes.into(),
            false,
            MomK {
                out: MomOut::Mean,
                skip_nan: false,
            },
            "mean",
            false,
            false,
        )
    }
    /// Mean ignoring NaNs.
    pub fn nanmean(&self, axes: impl Into<Axes>) -> Array<f64> {
        reduce(
            self,
            axes.into(),
            false,
            MomK {
                out: MomOut::Mean,
                skip_nan: true,
            },
            "nanmean",
            false,
            false,
        )
    }
    /// Variance with `ddof` delta degrees of freedom.
    pub fn var(&self, axes: impl Into<Axes>, ddof: f64) -> Array<f64> {
        reduce(
            self,
            axes.into(),
            false,
            MomK {
                out: MomOut::Var(ddof),
                skip_nan: false,
            },
            "var",
            false,
            false,
        )
    }
    /// Standard deviation with `ddof` delta degrees of freedom.
    pub fn std(&self, axes: impl Into<Axes>, ddof: f64) -> Array<f64> {
        reduce(
            self,
            axes.into(),
            false,
            MomK {
                out: MomOut::Std(ddof),
                skip_nan: false,
            },
            "std",
            false,
            false,
        )
    }
    /// Index of the minimum along `axis`, or the flat index over the whole array for `None`.
    pub fn argmin(&self, axis: Option<usize>) -> Array<i64> {
        let axes = axis.map_or(Axes::All, Axes::from);
        reduce(self, axes, false, ArgK { max: false }, "argmin", true, true)
    }
    /// Index of the maximum along `axis`, or the flat index over the whole array for `None`.
    pub fn argmax(&self, axis: Option<usize>) -> Array<i64> {
        let axes = axis.map_or(Axes::All, Axes::from);
        reduce(self, axes, false, ArgK { max: true }, "argmax", true, true)
    }
}

impl Array<bool> {
    /// True where any element over `axes` is true.
    pub fn any(&self, axes: impl Into<Axes>) -> Array<bool> {
        reduce(
            self,
            axes.into(),
            false,
            BoolK { any: true },
            "any",
            false,
            false,
        )
    }
    /// True where all elements over `axes` are true.
    pub fn all(&self, axes: impl Into<Axes>) -> Array<bool> {
        reduce(
            self,
            axes.into(),
            false,
            BoolK { any: false },
            "all",
            false,
            false,
        )
    }
    /// Number of true elements over `axes`.
    pub fn count(&self, axes: impl Into<Axes>) -> Array<i64> {
        self.astype::<i64>().sum(axes)
    }
}

impl<T: Num> Array<T> {
    /// Cumulative sum along `axis`: per-block scans, then each block adds the running total
    /// of the blocks before it (a sequential carry, like Dask's default).
    pub fn cumsum(&self, axis: usize) -> Array<T> {
        bail_err!(self);
        let axis = try_arr!(super::norm_axis(axis as isize, self.ndim(), "cumsum"));
        let nb = self.numblocks();
        let sname = fresh("cumsum_block");
        let lname = fresh("cumsum_last");
        let cname = fresh("cumsum_carry");
        let oname = fresh("cumsum");
        let mut blocks = Vec::with_capacity(self.blocks.len());
        let idxs = grid_indices(&nb);
        // Local scans.
        let scans: Vec<NodeRef> = idxs
            .iter()
            .map(|idx| {
                task(&sname, idx, vec![Arc::clone(self.node(idx))], move |inp| {
                    let mut b = take_block::<T>(&mut inp[0])?;
                    b.accumulate_axis_inplace(Axis(axis), |&p, c| *c = *c + p);
                    Ok(super::block_value(b))
                })
            })
            .collect();
        let strides = super::grid_strides(&nb);
        let mut carries: Vec<Option<NodeRef>> = vec![None; idxs.len()];
        for (f, idx) in idxs.iter().enumerate() {
            if idx[axis] == 0 {
                blocks.push(Arc::clone(&scans[f]));
                continue;
            }
            let prev = f - strides[axis];
            // Last slice of the previous block's scan.
            let last = task(
                &lname,
                &idxs[prev],
                vec![Arc::clone(&scans[prev])],
                move |inp| {
                    let b = take_block::<T>(&mut inp[0])?;
                    let n = b.shape()[axis];
                    let l = b
                        .slice_axis(Axis(axis), ndarray::Slice::from(n.saturating_sub(1)..n))
                        .to_owned();
                    Ok(super::block_value(l))
                },
            );
            let carry = match &carries[prev] {
                None => last,
                Some(pc) => task(&cname, idx, vec![Arc::clone(pc), last], |inp| {
                    let mut a = take_block::<T>(&mut inp[0])?;
                    let b = take_block::<T>(&mut inp[1])?;
                    a.zip_mut_with(&b, |x, &y| *x = *x + y);
                    Ok(super::block_value(a))
                }),
            };
            carries[f] = Some(Arc::clone(&carry));
            blocks.push(task(
                &oname,
                idx,
                vec![Arc::clone(&scans[f]), carry],
                |inp| {
                    let mut a = take_block::<T>(&mut inp[0])?;
                    let c = take_block::<T>(&mut inp[1])?;
                    if c.broadcast(a.raw_dim()).is_none() {
                        return Err(Error::internal("cumsum: carry does not broadcast"));
                    }
                    a.zip_mut_with(&c, |x, &y| *x = *x + y);
                    Ok(super::block_value(a))
                },
            ));
        }
        Array::from_parts(self.shape.clone(), self.chunks.clone(), blocks)
    }
}
