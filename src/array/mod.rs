//! Chunked N-dimensional arrays of `ndarray` blocks (design §5), like `dask.array`.
//!
//! An [`Array<T>`] is a lazy N-d array cut into a grid of blocks along every axis (its
//! [`chunks`](Array::chunks): per-axis block lengths, as in Dask). Each block is the result of
//! one task of a brisk graph; a block's value is an `ndarray::ArrayD<T>` wrapped as a spillable
//! [`Value`], so the store can move blocks to disk when memory runs short. Building an array
//! runs nothing: every operation adds tasks (one per output block, plus reduction trees) whose
//! keys are `("<op>-<n>", i, j, ..)`, and [`Runtime::compute`](crate::Runtime::compute)
//! (`Array` implements [`Compute`]) runs them and assembles an `ndarray::ArrayD<T>`.
//!
//! ```
//! use brisk::array::{self, All};
//! use brisk::prelude::*;
//! let rt = Runtime::builder().threads(2).build()?;
//! let x = array::random::uniform(&[1000, 300], (256, 128), 42)?;
//! let y = (x.dot(&(x.t() + 1.0)) - x.mean(All)).std(All, 0.0);
//! println!("{y}"); // shape, dtype, chunks and task count; nothing has run
//! let std: f64 = y.compute_scalar(&rt)?;
//! assert!(std > 0.0);
//! // Bad shapes are reported when the graph is built (or eagerly with `.ok()`).
//! assert!((&x + &x.t()).ok().is_err());
//! # Ok::<(), brisk::Error>(())
//! ```
//!
//! Modules: [`chunks`] (normalizing chunk specs, `auto`), [`creation`] and [`random`],
//! [`elementwise`] (broadcasting binary ops, math, `map_blocks`), [`reduction`] (trees of
//! fan-in 4), [`shape`] (transpose, slicing, reshape, concatenate), [`rechunk`], [`linalg`]
//! (block products, tsqr, svd), [`overlap`] (`map_overlap`) and [`io`] (`.npy` and block
//! directories).
//!
//! **Errors.** Operations on arrays do not return `Result`, so expressions chain like NumPy;
//! an operation given bad input (shape mismatch, bad axis, impossible reshape) returns an
//! array carrying the error — with the shapes or axis in the message — which every later
//! operation passes on and `compute` reports before running anything. [`Array::ok`] checks
//! eagerly.
//!
//! **Transposes are views.** `t()`/`transpose` make tasks that permute a block's axes, but
//! elementwise ops, products and reductions read a transposed array straight from its source
//! blocks with a strided view, so `x + x.t()` or `x.dot(&x.t())` copy no block.
//!
//! **Generated blocks are fused into reductions.** Arrays made by the creation functions keep a
//! recipe that can produce any row strip of a block; a reduction of such an array generates
//! each block strip by strip into a small reused buffer and reduces the strips, so
//! `random(..).sum()` never materializes a block (fresh memory is slow, design §9).

pub mod chunks;
pub mod creation;
pub mod elementwise;
pub mod io;
pub mod linalg;
pub mod overlap;
pub mod random;
pub mod rechunk;
pub mod reduction;
pub mod shape;

use std::collections::HashSet;
use std::fmt;
use std::marker::PhantomData;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;

use ndarray::{ArrayD, ArrayViewMutD, IxDyn};

use crate::error::{Error, Result};
use crate::graph::{Graph, Key, Op, Value};
use crate::sched::{Compute, Runtime};
use crate::spill::codec::Element;
use crate::spill::SizeOf;

pub use chunks::Chunks;
pub use creation::{arange, empty_like, eye, from_ndarray, full, linspace, ones, zeros};
pub use overlap::Boundary;
pub use reduction::{All, Axes};
pub use shape::{concatenate, stack};

/// An element type of arrays: f64, f32, i64, i32, u8 and bool.
pub trait Elem:
    Element + Default + PartialOrd + PartialEq + fmt::Debug + SizeOf + Send + Sync + 'static
{
    /// NumPy's name of the type (`"float64"`, ...).
    const DTYPE: &'static str;
    /// The value as f64 (bool: 0 or 1).
    fn to_f64(self) -> f64;
    /// The value from f64, truncating and saturating like an `as` cast.
    fn from_f64(x: f64) -> Self;
    /// True for a floating-point NaN.
    fn is_nan(self) -> bool {
        false
    }
}

/// A numeric element type: everything but bool.
pub trait Num:
    Elem
    + std::ops::Add<Output = Self>
    + std::ops::Sub<Output = Self>
    + std::ops::Mul<Output = Self>
    + std::ops::Div<Output = Self>
{
    /// Additive identity.
    const ZERO: Self;
    /// Multiplicative identity.
    const ONE: Self;
    /// The type sums are accumulated and returned in (i32 and u8 sum to i64, like NumPy's
    /// widening).
    type Acc: Num;
    /// Widens to the accumulator type.
    fn acc(self) -> Self::Acc;
    /// Absolute value.
    fn abs(self) -> Self;
}

/// A floating-point element type (f64, f32).
pub trait Float: Num {
    /// Square root.
    fn sqrt(self) -> Self;
    /// e^x.
    fn exp(self) -> Self;
    /// Natural logarithm.
    fn ln(self) -> Self;
    /// Sine.
    fn sin(self) -> Self;
    /// Cosine.
    fn cos(self) -> Self;
    /// x^y.
    fn powf(self, y: Self) -> Self;
}

macro_rules! float_elem {
    ($($t:ty => $name:expr),*) => {$(
        impl Elem for $t {
            const DTYPE: &'static str = $name;
            #[inline]
            fn to_f64(self) -> f64 { self as f64 }
            #[inline]
            fn from_f64(x: f64) -> Self { x as $t }
            #[inline]
            fn is_nan(self) -> bool { <$t>::is_nan(self) }
        }
        impl Num for $t {
            const ZERO: Self = 0.0;
            const ONE: Self = 1.0;
            type Acc = $t;
            #[inline]
            fn acc(self) -> $t { self }
            #[inline]
            fn abs(self) -> Self { <$t>::abs(self) }
        }
        impl Float for $t {
            #[inline] fn sqrt(self) -> Self { <$t>::sqrt(self) }
            #[inline] fn exp(self) -> Self { <$t>::exp(self) }
            #[inline] fn ln(self) -> Self { <$t>::ln(self) }
            #[inline] fn sin(self) -> Self { <$t>::sin(self) }
            #[inline] fn cos(self) -> Self { <$t>::cos(self) }
            #[inline] fn powf(self, y: Self) -> Self { <$t>::powf(self, y) }
        }
    )*};
}
float_elem!(f64 => "float64", f32 => "float32");

macro_rules! int_elem {
    ($($t:ty => $name:expr, $acc:ty, $abs:expr),*) => {$(
        impl Elem for $t {
            const DTYPE: &'static str = $name;
            #[inline]
            fn to_f64(self) -> f64 { self as f64 }
            #[inline]
            fn from_f64(x: f64) -> Self { x as $t }
        }
        impl Num for $t {
            const ZERO: Self = 0;
            const ONE: Self = 1;
            type Acc = $acc;
            #[inline]
            fn acc(self) -> $acc { self as $acc }
            #[inline]
            fn abs(self) -> Self { let f: fn($t) -> $t = $abs; f(self) }
        }
    )*};
}
int_elem!(
    i64 => "int64", i64, |x: i64| x.wrapping_abs(),
    i32 => "int32", i64, |x: i32| x.wrapping_abs(),
    u8 => "uint8", i64, |x: u8| x
);

impl Elem for bool {
    const DTYPE: &'static str = "bool";
    #[inline]
    fn to_f64(self) -> f64 {
        f64::from(u8::from(self))
    }
    #[inline]
    fn from_f64(x: f64) -> Self {
        x != 0.0
    }
}

pub(crate) use crate::graph::node::{add_nodes, Node};

pub(crate) type NodeRef = Arc<Node>;

static NEXT_NAME: AtomicU64 = AtomicU64::new(0);

/// A fresh layer name `"<op>-<n>"`, shared by the keys of one operation's tasks.
pub(crate) fn fresh(op: &str) -> Arc<str> {
    Arc::from(format!(
        "{op}-{}",
        NEXT_NAME.fetch_add(1, Ordering::Relaxed)
    ))
}

/// A task node: key `(name, idx..)`, running `f` on the deps' values (in order).
pub(crate) fn task<F>(name: &Arc<str>, idx: &[usize], deps: Vec<NodeRef>, f: F) -> NodeRef
where
    F: Fn(&mut [Value]) -> Result<Value> + Send + Sync + 'static,
{
    let key_idx: Vec<i64> = idx.iter().map(|&i| i as i64).collect();
    let op_name = name
        .rsplit_once('-')
        .map_or(&**name, |(a, _)| a)
        .to_string();
    Arc::new(Node::new(
        Key::indexed(name, &key_idx),
        Op::new(op_name, move |_ctx, inputs: &mut [Value]| f(inputs)),
        deps,
    ))
}

/// A node holding an already computed value.
pub(crate) fn literal(name: &Arc<str>, idx: &[usize], value: Value) -> NodeRef {
    let key_idx: Vec<i64> = idx.iter().map(|&i| i as i64).collect();
    Arc::new(Node::new(
        Key::indexed(name, &key_idx),
        Op::literal(value),
        Vec::new(),
    ))
}

/// Moves a block out of a task input (no copy when the task is its last consumer).
pub(crate) fn take_block<T: Elem>(v: &mut Value) -> Result<ArrayD<T>> {
    std::mem::take(v).take::<ArrayD<T>>().map_err(|v| {
        Error::internal(format!(
            "array block has type {}, expected {}",
            v.type_name(),
            std::any::type_name::<ArrayD<T>>()
        ))
    })
}

/// Borrows a block from a task input (for ops that only read it: no copy even when other
/// tasks still need the block).
pub(crate) fn borrow_block<T: Elem>(v: &Value) -> Result<&ArrayD<T>> {
    v.downcast_ref::<ArrayD<T>>().ok_or_else(|| {
        Error::internal(format!(
            "array block has type {}, expected {}",
            v.type_name(),
            std::any::type_name::<ArrayD<T>>()
        ))
    })
}

/// Moves any value out of a task input.
pub(crate) fn take_any<P: Clone + Send + Sync + 'static>(v: &mut Value) -> Result<P> {
    std::mem::take(v).take::<P>().map_err(|v| {
        Error::internal(format!(
            "array task input has type {}, expected {}",
            v.type_name(),
            std::any::type_name::<P>()
        ))
    })
}

/// Wraps a block so the store can spill it.
pub(crate) fn block_value<T: Elem>(a: ArrayD<T>) -> Value {
    Value::spillable(a)
}

/// Produces any strip of rows (a range along axis 0) of any block of an array without
/// materializing the block: the recipe of a created array, used to fuse generation into
/// reductions and elementwise maps.
pub(crate) trait Gen<T>: Send + Sync {
    /// Fills `out`, the part of block `block` starting at block-local row `row0` (axis 0)
    /// and global coordinates `start`. `out` is in standard layout.
    fn fill(&self, block: &[usize], start: &[usize], row0: usize, out: ArrayViewMutD<'_, T>);
}

/// A lazy, chunked N-dimensional array. See the [module docs](self).
pub struct Array<T: Elem> {
    pub(crate) shape: Vec<usize>,
    pub(crate) chunks: Vec<Vec<usize>>,
    /// One node per block, in C order of the block grid.
    pub(crate) blocks: Arc<Vec<NodeRef>>,
    /// How to generate blocks in strips, for arrays straight from a creation function.
    pub(crate) gen: Option<Arc<dyn Gen<T>>>,
    /// Set when the operation that made this array was given bad input; computing reports it
    /// before anything runs.
    pub(crate) err: Option<Arc<Error>>,
    /// For a transposed array: the source blocks, so that consumers that only read a block
    /// can view the source block permuted instead of depending on a copied one.
    pub(crate) tsrc: Option<Arc<TSrc<T>>>,
    pub(crate) _t: PhantomData<fn() -> T>,
}

impl<T: Elem> Clone for Array<T> {
    fn clone(&self) -> Self {
        Array {
            shape: self.shape.clone(),
            chunks: self.chunks.clone(),
            blocks: Arc::clone(&self.blocks),
            gen: self.gen.clone(),
            err: self.err.clone(),
            tsrc: self.tsrc.clone(),
            _t: PhantomData,
        }
    }
}

/// The source of a transposed array: block `idx` of the transpose is source block `src` with
/// `src[perm[i]] = idx[i]`, viewed with `permuted_axes(perm)`.
pub(crate) struct TSrc<T> {
    pub(crate) blocks: Arc<Vec<NodeRef>>,
    pub(crate) numblocks: Vec<usize>,
    pub(crate) perm: Vec<usize>,
    /// The source's chunks and generator, when the source came from a creation function.
    pub(crate) chunks: Vec<Vec<usize>>,
    pub(crate) gen: Option<Arc<dyn Gen<T>>>,
}

/// Views a borrowed block through an optional axis permutation.
pub(crate) fn permute<'a, T>(
    v: ndarray::ArrayViewD<'a, T>,
    perm: &Option<Vec<usize>>,
) -> ndarray::ArrayViewD<'a, T> {
    match perm {
        Some(p) => v.permuted_axes(IxDyn(p)),
        None => v,
    }
}

/// Row-major strides of a grid.
pub(crate) fn grid_strides(dims: &[usize]) -> Vec<usize> {
    let mut s = vec![1; dims.len()];
    for i in (0..dims.len().saturating_sub(1)).rev() {
        s[i] = s[i + 1] * dims[i + 1];
    }
    s
}

/// Every multi-index of a grid, in C order.
pub(crate) fn grid_indices(dims: &[usize]) -> Vec<Vec<usize>> {
    let total: usize = dims.iter().product();
    let mut out = Vec::with_capacity(total);
    let mut idx = vec![0; dims.len()];
    for _ in 0..total {
        out.push(idx.clone());
        for a in (0..dims.len()).rev() {
            idx[a] += 1;
            if idx[a] < dims[a] {
                break;
            }
            idx[a] = 0;
        }
    }
    out
}

/// Start offsets of the blocks along one axis (plus the total at the end).
pub(crate) fn offsets(chunks: &[usize]) -> Vec<usize> {
    let mut o = Vec::with_capacity(chunks.len() + 1);
    let mut acc = 0;
    o.push(0);
    for &c in chunks {
        acc += c;
        o.push(acc);
    }
    o
}

pub(crate) fn fmt_shape(shape: &[usize]) -> String {
    match shape {
        [one] => format!("({one},)"),
        _ => format!(
            "({})",
            shape
                .iter()
                .map(usize::to_string)
                .collect::<Vec<_>>()
                .join(", ")
        ),
    }
}

impl<T: Elem> Array<T> {
    /// Builds an array from its parts; `blocks` are in C order of the block grid.
    pub(crate) fn from_parts(
        shape: Vec<usize>,
        chunks: Vec<Vec<usize>>,
        blocks: Vec<NodeRef>,
    ) -> Array<T> {
        debug_assert_eq!(blocks.len(), chunks.iter().map(Vec::len).product::<usize>());
        Array {
            shape,
            chunks,
            blocks: Arc::new(blocks),
            gen: None,
            err: None,
            tsrc: None,
            _t: PhantomData,
        }
    }

    /// An array standing for a failed operation: computing it returns `err`.
    pub(crate) fn failed(err: Error) -> Array<T> {
        Array::failed_arc(Arc::new(err))
    }

    pub(crate) fn failed_arc(err: Arc<Error>) -> Array<T> {
        Array {
            shape: Vec::new(),
            chunks: Vec::new(),
            blocks: Arc::new(Vec::new()),
            gen: None,
            err: Some(err),
            tsrc: None,
            _t: PhantomData,
        }
    }

    /// The error of the operation that made this array, if it was given bad input.
    pub fn error(&self) -> Option<&Error> {
        self.err.as_deref()
    }

    /// `Ok(self)`, or the error of the operation that made this array (to check shapes
    /// eagerly, e.g. `let z = (&x + &y).ok()?;`).
    pub fn ok(self) -> Result<Array<T>> {
        match &self.err {
            Some(e) => Err(copy_err(e)),
            None => Ok(self),
        }
    }

    /// The length of every axis.
    pub fn shape(&self) -> &[usize] {
        &self.shape
    }

    /// Number of axes.
    pub fn ndim(&self) -> usize {
        self.shape.len()
    }

    /// Number of elements.
    pub fn len(&self) -> usize {
        self.shape.iter().product()
    }

    /// True when the array has no elements.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// NumPy's name of the element type.
    pub fn dtype(&self) -> &'static str {
        T::DTYPE
    }

    /// Bytes of the whole array.
    pub fn nbytes(&self) -> usize {
        self.len() * std::mem::size_of::<T>()
    }

    /// The block lengths along each axis.
    pub fn chunks(&self) -> &[Vec<usize>] {
        &self.chunks
    }

    /// Number of blocks along each axis.
    pub fn numblocks(&self) -> Vec<usize> {
        self.chunks.iter().map(Vec::len).collect()
    }

    /// Total number of blocks.
    pub fn nblocks(&self) -> usize {
        self.blocks.len()
    }

    /// The shape of block `idx`.
    pub fn block_shape(&self, idx: &[usize]) -> Vec<usize> {
        idx.iter().zip(&self.chunks).map(|(&i, c)| c[i]).collect()
    }

    pub(crate) fn flat_block(&self, idx: &[usize]) -> usize {
        let s = grid_strides(&self.numblocks());
        idx.iter().zip(&s).map(|(i, s)| i * s).sum()
    }

    /// The node to read block `idx` from, and the permutation to view its value with (for
    /// a transposed array, the source block: no copy).
    pub(crate) fn read_node(&self, idx: &[usize]) -> (NodeRef, Option<Vec<usize>>) {
        match &self.tsrc {
            Some(t) => {
                let mut src = vec![0; idx.len()];
                for (i, &p) in t.perm.iter().enumerate() {
                    src[p] = idx[i];
                }
                let s = grid_strides(&t.numblocks);
                let flat: usize = src.iter().zip(&s).map(|(i, s)| i * s).sum();
                (Arc::clone(&t.blocks[flat]), Some(t.perm.clone()))
            }
            None => (Arc::clone(self.node(idx)), None),
        }
    }

    pub(crate) fn node(&self, idx: &[usize]) -> &NodeRef {
        &self.blocks[self.flat_block(idx)]
    }

    /// Block `idx` as a one-block array (the `.blocks[i, j]` of Dask).
    ///
    /// # Errors
    /// When `idx` has the wrong length or is out of range.
    pub fn block(&self, idx: &[usize]) -> Result<Array<T>> {
        let nb = self.numblocks();
        if idx.len() != nb.len() || idx.iter().zip(&nb).any(|(i, n)| i >= n) {
            return Err(Error::shape(format!(
                "block index {idx:?} out of range for a grid of {nb:?} blocks"
            )));
        }
        let shape = self.block_shape(idx);
        let chunks = shape.iter().map(|&s| vec![s]).collect();
        Ok(Array::from_parts(
            shape,
            chunks,
            vec![Arc::clone(self.node(idx))],
        ))
    }

    /// Number of distinct tasks needed to compute the array (without culling or fusion).
    pub fn task_count(&self) -> usize {
        let mut seen: HashSet<*const Node> = HashSet::new();
        let mut stack: Vec<&NodeRef> = self.blocks.iter().collect();
        while let Some(n) = stack.pop() {
            if seen.insert(Arc::as_ptr(n)) {
                stack.extend(n.deps.iter());
            }
        }
        seen.len()
    }

    /// Computes on `rt`.
    pub fn compute_on(&self, rt: &Runtime) -> Result<ArrayD<T>> {
        rt.compute(self)
    }

    /// Computes on `rt` and returns the single element of a 0-d (or one-element) array.
    ///
    /// # Errors
    /// When the array does not have exactly one element.
    pub fn compute_scalar(&self, rt: &Runtime) -> Result<T> {
        if self.len() != 1 {
            return Err(Error::shape(format!(
                "compute_scalar of an array of shape {}",
                fmt_shape(&self.shape)
            )));
        }
        let a = rt.compute(self)?;
        a.iter()
            .next()
            .copied()
            .ok_or_else(|| Error::internal("compute_scalar: no element"))
    }

    /// Computes the blocks on `rt` and returns an array whose blocks are those results, held
    /// in memory: later computations start from them instead of recomputing.
    pub fn persist(&self, rt: &Runtime) -> Result<Array<T>> {
        if let Some(e) = &self.err {
            return Err(copy_err(e));
        }
        let mut graph = Graph::new();
        add_nodes(&self.blocks, &mut graph)?;
        let keys: Vec<Key> = self.blocks.iter().map(|n| n.key.clone()).collect();
        let values = rt.compute_graph(graph, &keys)?;
        let name = fresh("persist");
        let nb = self.numblocks();
        let blocks = grid_indices(&nb)
            .iter()
            .zip(values)
            .map(|(i, v)| literal(&name, i, v))
            .collect();
        Ok(Array::from_parts(
            self.shape.clone(),
            self.chunks.clone(),
            blocks,
        ))
    }
}

/// Assembles computed blocks (C order of the grid) into one array.
pub(crate) fn assemble<T: Elem>(
    shape: &[usize],
    chunks: &[Vec<usize>],
    mut blocks: Vec<ArrayD<T>>,
) -> Result<ArrayD<T>> {
    if blocks.len() == 1 {
        let b = blocks.pop().ok_or_else(|| Error::internal("no block"))?;
        if b.shape() == shape {
            return Ok(b);
        }
        return Err(Error::internal(format!(
            "block has shape {}, expected {}",
            fmt_shape(b.shape()),
            fmt_shape(shape)
        )));
    }
    let mut out = ArrayD::<T>::default(IxDyn(shape));
    let nb: Vec<usize> = chunks.iter().map(Vec::len).collect();
    let offs: Vec<Vec<usize>> = chunks.iter().map(|c| offsets(c)).collect();
    for (idx, b) in grid_indices(&nb).iter().zip(blocks) {
        let mut view = out.view_mut();
        for (a, &i) in idx.iter().enumerate() {
            view.slice_axis_inplace(
                ndarray::Axis(a),
                ndarray::Slice::from(offs[a][i]..offs[a][i + 1]),
            );
        }
        if view.shape() != b.shape() {
            return Err(Error::internal(format!(
                "block {idx:?} has shape {}, expected {}",
                fmt_shape(b.shape()),
                fmt_shape(view.shape())
            )));
        }
        view.assign(&b);
    }
    Ok(out)
}

impl<T: Elem> Compute for Array<T> {
    type Output = ArrayD<T>;

    fn build(&self, graph: &mut Graph, outputs: &mut Vec<Key>) -> Result<()> {
        if let Some(e) = &self.err {
            return Err(copy_err(e));
        }
        add_nodes(&self.blocks, graph)?;
        outputs.extend(self.blocks.iter().map(|n| n.key.clone()));
        Ok(())
    }

    fn finish(&self, values: &mut std::vec::IntoIter<Value>) -> Result<ArrayD<T>> {
        let mut blocks = Vec::with_capacity(self.blocks.len());
        for _ in 0..self.blocks.len() {
            let mut v = values
                .next()
                .ok_or_else(|| Error::internal("missing array block"))?;
            blocks.push(take_block::<T>(&mut v)?);
        }
        assemble(&self.shape, &self.chunks, blocks)
    }
}

fn fmt_chunks(chunks: &[Vec<usize>]) -> String {
    let axes: Vec<String> = chunks
        .iter()
        .map(|c| {
            let first = c.first().copied().unwrap_or(0);
            let last = c.last().copied().unwrap_or(0);
            if c.len() > 3 && c[..c.len() - 1].iter().all(|&x| x == first) {
                if last == first {
                    format!("({first},)*{}", c.len())
                } else {
                    format!("({first},)*{}+({last},)", c.len() - 1)
                }
            } else {
                fmt_shape(c)
            }
        })
        .collect();
    format!("({})", axes.join(", "))
}

impl<T: Elem> fmt::Display for Array<T> {
    /// `brisk.Array<float64>(shape=(4, 6), chunks=((2, 2), (3, 3)), blocks=4, tasks=4)`;
    /// nothing is computed.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if let Some(e) = &self.err {
            return write!(f, "brisk.Array<{}>(error: {e})", T::DTYPE);
        }
        write!(
            f,
            "brisk.Array<{}>(shape={}, chunks={}, blocks={}, tasks={})",
            T::DTYPE,
            fmt_shape(&self.shape),
            fmt_chunks(&self.chunks),
            self.blocks.len(),
            self.task_count()
        )
    }
}

impl<T: Elem> fmt::Debug for Array<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Display::fmt(self, f)
    }
}

/// Normalizes a possibly negative axis against `ndim`.
pub(crate) fn norm_axis(axis: isize, ndim: usize, what: &str) -> Result<usize> {
    let n = ndim as isize;
    let a = if axis < 0 { axis + n } else { axis };
    if a < 0 || a >= n {
        return Err(Error::shape(format!(
            "{what}: axis {axis} is out of bounds for an array of {ndim} dimensions"
        )));
    }
    Ok(a as usize)
}

/// A copy of a shared error (errors are not `Clone`): same kind and message.
pub(crate) fn copy_err(e: &Error) -> Error {
    e.duplicate()
}

/// Returns early with a failed array when `$a` carries an error.
macro_rules! bail_err {
    ($($a:expr),+) => {
        $(if let Some(e) = &$a.err {
            return $crate::array::Array::failed_arc(std::sync::Arc::clone(e));
        })+
    };
}
pub(crate) use bail_err;

/// Returns a failed array from a `Result` error.
macro_rules! try_arr {
    ($e:expr) => {
        match $e {
            Ok(v) => v,
            Err(err) => return $crate::array::Array::failed(err),
        }
    };
}
pub(crate) use try_arr;
