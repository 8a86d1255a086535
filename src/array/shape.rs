//! Shape operations: transpose, slicing, fancy indexing, concatenate/stack, reshape.
//!
//! - **transpose** permutes the block grid and each block's axes (free for an owned block:
//!   only its strides change).
//! - **slice** takes ndarray's `s![..]` items (ranges with steps, negative steps, integers,
//!   new axes). Every output block is a slice of exactly one input block; blocks that select
//!   nothing are dropped from the chunks.
//! - **take** (fancy indexing along one axis) cuts the index list into runs the size of the
//!   axis's blocks; each output block gathers from the input blocks its indices touch.
//! - **concatenate** only relabels blocks (others are rechunked to the first array's chunks on
//!   the other axes); **stack** adds an axis to every block first.
//! - **reshape** works block by block where the chunks allow it: the input and output shapes
//!   are matched into groups of axes with equal products; within a group all axes but the
//!   first must be a single block on both sides, and the first axis's blocks must divide into
//!   whole rows of the output group. Otherwise the error names the rechunk to do first.

use std::sync::Arc;

use ndarray::{ArrayD, Axis, IxDyn, Slice, SliceInfoElem};

use super::{
    bail_err, block_value, fmt_shape, fresh, grid_indices, offsets, take_block, task, try_arr,
    Array, Elem, NodeRef,
};
use crate::error::{Error, Result};

impl<T: Elem> Array<T> {
    /// Reverses the axes (the `.T` of NumPy).
    pub fn t(&self) -> Array<T> {
        let axes: Vec<usize> = (0..self.ndim()).rev().collect();
        self.transpose(&axes)
    }

    /// Permutes the axes: axis `i` of the result is axis `axes[i]` of `self`.
    pub fn transpose(&self, axes: &[usize]) -> Array<T> {
        bail_err!(self);
        let nd = self.ndim();
        let mut seen = vec![false; nd];
        if axes.len() != nd
            || axes
                .iter()
                .any(|&a| a >= nd || std::mem::replace(&mut seen[a], true))
        {
            return Array::failed(Error::shape(format!(
                "transpose: axes {axes:?} are not a permutation of the {nd} axes of shape {}",
                fmt_shape(&self.shape)
            )));
        }
        if axes.iter().enumerate().all(|(i, &a)| i == a) {
            return self.clone();
        }
        let shape: Vec<usize> = axes.iter().map(|&a| self.shape[a]).collect();
        let chunks: Vec<Vec<usize>> = axes.iter().map(|&a| self.chunks[a].clone()).collect();
        let name = fresh("transpose");
        let nb: Vec<usize> = chunks.iter().map(Vec::len).collect();
        let perm = axes.to_vec();
        let blocks = grid_indices(&nb)
            .iter()
            .map(|idx| {
                let mut src = vec![0; nd];
                for (i, &a) in axes.iter().enumerate() {
                    src[a] = idx[i];
                }
                let perm = perm.clone();
                task(&name, idx, vec![Arc::clone(self.node(&src))], move |inp| {
                    let b = take_block::<T>(&mut inp[0])?;
                    Ok(block_value(b.permuted_axes(IxDyn(&perm))))
                })
            })
            .collect();
        let mut out = Array::from_parts(shape, chunks, blocks);
        out.tsrc = Some(Arc::new(match &self.tsrc {
            Some(t) => super::TSrc {
                blocks: Arc::clone(&t.blocks),
                numblocks: t.numblocks.clone(),
                perm: axes.iter().map(|&a| t.perm[a]).collect(),
                chunks: t.chunks.clone(),
                gen: t.gen.clone(),
            },
            None => super::TSrc {
                blocks: Arc::clone(&self.blocks),
                numblocks: self.numblocks(),
                perm: axes.to_vec(),
                chunks: self.chunks.clone(),
                gen: self.gen.clone(),
            },
        }));
        out
    }

    /// Slices with ndarray's `s![..]` items; axes not mentioned are taken whole.
    ///
    /// ```
    /// use ndarray::s;
    /// let x = brisk::array::arange::<i64>(0.0, 10.0, 1.0, 3).unwrap();
    /// let y = x.slice(s![1..8;2]);
    /// assert_eq!(y.shape(), &[4]);
    /// ```
    pub fn slice(&self, info: impl AsRef<[SliceInfoElem]>) -> Array<T> {
        bail_err!(self);
        let info = info.as_ref();
        let nd = self.ndim();
        let used = info
            .iter()
            .filter(|e| !matches!(e, SliceInfoElem::NewAxis))
            .count();
        if used > nd {
            return Array::failed(Error::shape(format!(
                "slice: {used} indices for an array of shape {}",
                fmt_shape(&self.shape)
            )));
        }
        // Per input axis: for each output block, (old block, local slice); or an index.
        enum AxisSel {
            Range(Vec<(usize, Slice, usize)>, usize),
            Index(usize, usize),
        }
        let mut sels: Vec<AxisSel> = Vec::with_capacity(nd);
        // Output axes: Some(input axis) or None for a new axis.
        let mut out_axes: Vec<Option<usize>> = Vec::new();
        let mut ax = 0;
        let full = SliceInfoElem::Slice {
            start: 0,
            end: None,
            step: 1,
        };
        let items: Vec<SliceInfoElem> = info
            .iter()
            .copied()
            .chain(std::iter::repeat_n(full, nd - used))
            .collect();
        for &e in &items {
            match e {
                SliceInfoElem::NewAxis => out_axes.push(None),
                SliceInfoElem::Index(i) => {
                    let len = self.shape[ax] as isize;
                    let j = if i < 0 { i + len } else { i };
                    if j < 0 || j >= len {
                        return Array::failed(Error::shape(format!(
                            "slice: index {i} is out of bounds for axis {ax} with size {len}"
                        )));
                    }
                    let offs = offsets(&self.chunks[ax]);
                    let j = j as usize;
                    let b = offs.partition_point(|&o| o <= j) - 1;
                    sels.push(AxisSel::Index(b, j - offs[b]));
                    ax += 1;
                }
                SliceInfoElem::Slice { start, end, step } => {
                    if step == 0 {
                        return Array::failed(Error::shape("slice: step cannot be zero"));
                    }
                    let len = self.shape[ax] as isize;
                    let clampi = |v: isize| -> usize {
                        let v = if v < 0 { v + len } else { v };
                        v.clamp(0, len) as usize
                    };
                    let lo = clampi(start);
                    let hi = end.map_or(len as usize, clampi).max(lo);
                    // Selected global indices, in output order.
                    let sel: Vec<usize> = if step > 0 {
                        (lo..hi).step_by(step as usize).collect()
                    } else {
                        (lo..hi).rev().step_by(step.unsigned_abs()).collect()
                    };
                    let offs = offsets(&self.chunks[ax]);
                    let mut runs: Vec<(usize, Slice, usize)> = Vec::new();
                    let mut k = 0;
                    while k < sel.len() {
                        let b = offs.partition_point(|&o| o <= sel[k]) - 1;
                        let mut m = k;
                        while m < sel.len() && sel[m] >= offs[b] && sel[m] < offs[b + 1] {
                            m += 1;
                        }
                        let first = sel[k] - offs[b];
                        let last = sel[m - 1] - offs[b];
                        let s = if step > 0 {
                            Slice::new(first as isize, Some(last as isize + 1), step)
                        } else {
                            Slice::new(last as isize, Some(first as isize + 1), step)
                        };
                        runs.push((b, s, m - k));
                        k = m;
                    }
                    if runs.is_empty() {
                        runs.push((0, Slice::new(0, Some(0), 1), 0));
                    }
                    out_axes.push(Some(sels.len()));
                    sels.push(AxisSel::Range(runs, sel.len()));
                    ax += 1;
                }
            }
        }
        // Output grid: one block per combination of runs of the range axes.
        let mut out_shape = Vec::new();
        let mut out_chunks = Vec::new();
        for oa in &out_axes {
            match oa {
                None => {
                    out_shape.push(1);
                    out_chunks.push(vec![1]);
                }
                Some(a) => {
                    if let AxisSel::Range(runs, n) = &sels[*a] {
                        out_shape.push(*n);
                        out_chunks.push(runs.iter().map(|r| r.2).collect());
                    }
                }
            }
        }
        let name = fresh("getitem");
        let nb: Vec<usize> = out_chunks.iter().map(Vec::len).collect();
        let blocks = grid_indices(&nb)
            .iter()
            .map(|oidx| {
                // Which run of each input axis.
                let mut src = vec![0; nd];
                let mut slices: Vec<SliceInfoElem> = Vec::with_capacity(nd);
                let mut run_of = vec![0usize; nd];
                for (o, oa) in out_axes.iter().enumerate() {
                    if let Some(a) = oa {
                        run_of[*a] = oidx[o];
                    }
                }
                for (a, s) in sels.iter().enumerate() {
                    match s {
                        AxisSel::Index(b, j) => {
                            src[a] = *b;
                            slices.push(SliceInfoElem::Index(*j as isize));
                        }
                        AxisSel::Range(runs, _) => {
                            let (b, sl, _) = runs[run_of[a]];
                            src[a] = b;
                            slices.push(sl.into());
                        }
                    }
                }
                // New axes go where they appear in the items.
                let mut full_info: Vec<SliceInfoElem> = Vec::with_capacity(items.len());
                let mut it = slices.into_iter();
                for e in &items {
                    if matches!(e, SliceInfoElem::NewAxis) {
                        full_info.push(SliceInfoElem::NewAxis);
                    } else if let Some(x) = it.next() {
                        full_info.push(x);
                    }
                }
                task(&name, oidx, vec![Arc::clone(self.node(&src))], move |inp| {
                    let b = super::borrow_block::<T>(&inp[0])?;
                    let v = b.slice(full_info.as_slice());
                    Ok(block_value(v.as_standard_layout().into_owned()))
                })
            })
            .collect();
        Array::from_parts(out_shape, out_chunks, blocks)
    }

    /// Selects `indices` (in that order, repeats allowed) along `axis`.
    pub fn take(&self, indices: &[usize], axis: usize) -> Array<T> {
        bail_err!(self);
        let axis = try_arr!(super::norm_axis(axis as isize, self.ndim(), "take"));
        let len = self.shape[axis];
        if let Some(&bad) = indices.iter().find(|&&i| i >= len) {
            return Array::failed(Error::shape(format!(
                "take: index {bad} is out of bounds for axis {axis} with size {len}"
            )));
        }
        let per = self.chunks[axis].iter().copied().max().unwrap_or(1).max(1);
        let groups: Vec<&[usize]> = if indices.is_empty() {
            vec![&[]]
        } else {
            indices.chunks(per).collect()
        };
        let offs = offsets(&self.chunks[axis]);
        let mut chunks = self.chunks.clone();
        chunks[axis] = groups.iter().map(|g| g.len()).collect();
        let mut shape = self.shape.clone();
        shape[axis] = indices.len();
        let name = fresh("take");
        let nb: Vec<usize> = chunks.iter().map(Vec::len).collect();
        let blocks = grid_indices(&nb)
            .iter()
            .map(|oidx| {
                let g = groups[oidx[axis]];
                // Input blocks touched, and for each index (block position, local index).
                let mut touched: Vec<usize> = g
                    .iter()
                    .map(|&i| offs.partition_point(|&o| o <= i) - 1)
                    .collect();
                touched.sort_unstable();
                touched.dedup();
                if touched.is_empty() {
                    touched.push(0);
                }
                let locs: Vec<(usize, usize)> = g
                    .iter()
                    .map(|&i| {
                        let b = offs.partition_point(|&o| o <= i) - 1;
                        let p = touched.binary_search(&b).unwrap_or(0);
                        (p, i - offs[b])
                    })
                    .collect();
                let deps: Vec<NodeRef> = touched
                    .iter()
                    .map(|&b| {
                        let mut src = oidx.clone();
                        src[axis] = b;
                        Arc::clone(self.node(&src))
                    })
                    .collect();
                let mut bshape: Vec<usize> = oidx.iter().zip(&chunks).map(|(&i, c)| c[i]).collect();
                bshape[axis] = g.len();
                task(&name, oidx, deps, move |inp| {
                    let srcs: Vec<&ArrayD<T>> = inp
                        .iter()
                        .map(super::borrow_block::<T>)
                        .collect::<Result<_>>()?;
                    let mut out = ArrayD::<T>::default(IxDyn(&bshape));
                    for (k, &(p, j)) in locs.iter().enumerate() {
                        out.index_axis_mut(Axis(axis), k)
                            .assign(&srcs[p].index_axis(Axis(axis), j));
                    }
                    Ok(block_value(out))
                })
            })
            .collect();
        Array::from_parts(shape, chunks, blocks)
    }

    /// Adds an axis of length 1 at `axis`.
    pub fn expand_dims(&self, axis: usize) -> Array<T> {
        bail_err!(self);
        if axis > self.ndim() {
            return Array::failed(Error::shape(format!(
                "expand_dims: axis {axis} is out of bounds for {} dimensions",
                self.ndim() + 1
            )));
        }
        let mut shape = self.shape.clone();
        shape.insert(axis, 1);
        let mut chunks = self.chunks.clone();
        chunks.insert(axis, vec![1]);
        let name = fresh("expand_dims");
        let nb: Vec<usize> = chunks.iter().map(Vec::len).collect();
        let blocks = grid_indices(&nb)
            .iter()
            .map(|idx| {
                let mut src = idx.clone();
                src.remove(axis);
                task(&name, idx, vec![Arc::clone(self.node(&src))], move |inp| {
                    let b = take_block::<T>(&mut inp[0])?;
                    Ok(block_value(b.insert_axis(Axis(axis))))
                })
            })
            .collect();
        Array::from_parts(shape, chunks, blocks)
    }

    /// The same elements in another shape (C order), where the chunks allow it (see the
    /// [module docs](self)). One dimension may be `-1` (inferred).
    pub fn reshape(&self, new_shape: &[isize]) -> Array<T> {
        bail_err!(self);
        let total = self.len();
        let known: usize = new_shape
            .iter()
            .filter(|&&d| d >= 0)
            .map(|&d| d as usize)
            .product();
        let n_infer = new_shape.iter().filter(|&&d| d < 0).count();
        let shape: Vec<usize> = if n_infer == 1 && known > 0 && total % known == 0 {
            new_shape
                .iter()
                .map(|&d| if d < 0 { total / known } else { d as usize })
                .collect()
        } else if n_infer == 0 {
            new_shape.iter().map(|&d| d as usize).collect()
        } else {
            return Array::failed(Error::shape(format!(
                "reshape: cannot reshape an array of shape {} into {new_shape:?}",
                fmt_shape(&self.shape)
            )));
        };
        if shape.iter().product::<usize>() != total {
            return Array::failed(Error::shape(format!(
                "reshape: cannot reshape an array of shape {} ({total} elements) into {}",
                fmt_shape(&self.shape),
                fmt_shape(&shape)
            )));
        }
        if shape == self.shape {
            return self.clone();
        }
        let plan = try_arr!(reshape_plan(&self.shape, &self.chunks, &shape));
        let (in_groups, out_chunks) = plan;
        let _ = in_groups;
        let name = fresh("reshape");
        let nb: Vec<usize> = out_chunks.iter().map(Vec::len).collect();
        // Output blocks correspond one to one, in C order, to input blocks.
        let blocks: Vec<NodeRef> = grid_indices(&nb)
            .iter()
            .zip(self.blocks.iter())
            .map(|(idx, node)| {
                let bshape: Vec<usize> = idx.iter().zip(&out_chunks).map(|(&i, c)| c[i]).collect();
                task(&name, idx, vec![Arc::clone(node)], move |inp| {
                    let b = take_block::<T>(&mut inp[0])?;
                    let b = if b.is_standard_layout() {
                        b
                    } else {
                        b.as_standard_layout().into_owned()
                    };
                    let out = b
                        .into_shape_with_order(IxDyn(&bshape))
                        .map_err(|e| Error::internal(format!("reshape block: {e}")))?;
                    Ok(block_value(out))
                })
            })
            .collect();
        Array::from_parts(shape, out_chunks, blocks)
    }
}

/// Groups of axes with equal products, and the output chunks; or an error naming the rechunk.
#[allow(clippy::type_complexity)]
fn reshape_plan(
    ins: &[usize],
    chunks: &[Vec<usize>],
    outs: &[usize],
) -> Result<(Vec<(usize, usize)>, Vec<Vec<usize>>)> {
    let mut out_chunks: Vec<Vec<usize>> = Vec::with_capacity(outs.len());
    let mut groups = Vec::new();
    let (mut i, mut o) = (0, 0);
    let mut need: Vec<Vec<usize>> = chunks.to_vec();
    let mut bad = false;
    while i < ins.len() || o < outs.len() {
        // Take one group: extend the smaller product until they match.
        let (i0, o0) = (i, o);
        let mut pi: usize = 1;
        let mut po: usize = 1;
        if i < ins.len() {
            pi = ins[i];
            i += 1;
        }
        if o < outs.len() {
            po = outs[o];
            o += 1;
        }
        while pi != po {
            if pi < po && i < ins.len() {
                pi *= ins[i];
                i += 1;
            } else if o < outs.len() {
                po *= outs[o];
                o += 1;
            } else if i < ins.len() {
                pi *= ins[i];
                i += 1;
            } else {
                break;
            }
        }
        // Trailing length-1 axes join the group.
        groups.push((i0, o0));
        let gin = &ins[i0..i];
        let gout = &outs[o0..o];
        if gin.len() == 1 && gout.len() == 1 {
            out_chunks.push(chunks[i0].clone());
            continue;
        }
        if gout.is_empty() {
            continue;
        }
        // All input axes but the first must be whole.
        for a in i0 + 1..i {
            if chunks[a].len() > 1 {
                bad = true;
                need[a] = vec![ins[a]];
            }
        }
        if gin.is_empty() {
            for &l in gout {
                out_chunks.push(vec![l]);
            }
            continue;
        }
        let in_rest: usize = gin[1..].iter().product();
        let out_rest: usize = gout[1..].iter().product();
        let mut first = Vec::new();
        for &c in &chunks[i0] {
            let elems = c * in_rest;
            if out_rest == 0 || elems % out_rest != 0 {
                bad = true;
                // Chunks of the first input axis that are whole multiples of the output rows.
                let step = out_rest / gcd(out_rest, in_rest).max(1);
                need[i0] = super::chunks::split(
                    ins[i0],
                    step.max(1) * (chunks[i0][0] / step.max(1)).max(1),
                );
                break;
            }
            first.push(elems / out_rest.max(1));
        }
        out_chunks.push(first);
        for &l in &gout[1..] {
            out_chunks.push(vec![l]);
        }
    }
    if bad || out_chunks.len() != outs.len() {
        return Err(Error::shape(format!(
            "reshape from {} to {} is not possible with chunks {:?} block by block; rechunk to {:?} first",
            fmt_shape(ins),
            fmt_shape(outs),
            chunks,
            need
        )));
    }
    Ok((groups, out_chunks))
}

fn gcd(a: usize, b: usize) -> usize {
    if b == 0 {
        a
    } else {
        gcd(b, a % b)
    }
}

/// Joins arrays along an existing axis (other axes must have equal lengths).
pub fn concatenate<T: Elem>(arrays: &[Array<T>], axis: usize) -> Array<T> {
    let Some(first) = arrays.first() else {
        return Array::failed(Error::shape("concatenate: no arrays"));
    };
    for a in arrays {
        bail_err!(a);
    }
    let nd = first.ndim();
    let axis = try_arr!(super::norm_axis(axis as isize, nd, "concatenate"));
    for a in arrays {
        if a.ndim() != nd || (0..nd).any(|d| d != axis && a.shape[d] != first.shape[d]) {
            return Array::failed(Error::shape(format!(
                "concatenate along axis {axis}: shapes {} and {} do not match on the other axes",
                fmt_shape(&first.shape),
                fmt_shape(&a.shape)
            )));
        }
    }
    let aligned: Vec<Array<T>> = arrays
        .iter()
        .map(|a| {
            let mut target = first.chunks.clone();
            target[axis] = a.chunks[axis].clone();
            if target == a.chunks {
                a.clone()
            } else {
                a.rechunk(target)
            }
        })
        .collect();
    let mut shape = first.shape.clone();
    shape[axis] = arrays.iter().map(|a| a.shape[axis]).sum();
    let mut chunks = first.chunks.clone();
    chunks[axis] = aligned
        .iter()
        .flat_map(|a| a.chunks[axis].iter().copied())
        .filter(|&c| c > 0)
        .collect();
    let mut owners: Vec<(usize, usize)> = Vec::new();
    for (k, a) in aligned.iter().enumerate() {
        for (j, &c) in a.chunks[axis].iter().enumerate() {
            if c > 0 {
                owners.push((k, j));
            }
        }
    }
    if chunks[axis].is_empty() {
        chunks[axis] = vec![0];
        owners.push((0, 0));
    }
    let nb: Vec<usize> = chunks.iter().map(Vec::len).collect();
    let blocks = grid_indices(&nb)
        .iter()
        .map(|idx| {
            let (k, j) = owners[idx[axis]];
            let mut src = idx.clone();
            src[axis] = j;
            Arc::clone(aligned[k].node(&src))
        })
        .collect();
    Array::from_parts(shape, chunks, blocks)
}

/// Joins arrays of equal shape along a new axis.
pub fn stack<T: Elem>(arrays: &[Array<T>], axis: usize) -> Array<T> {
    let Some(first) = arrays.first() else {
        return Array::failed(Error::shape("stack: no arrays"));
    };
    for a in arrays {
        bail_err!(a);
        if a.shape != first.shape {
            return Array::failed(Error::shape(format!(
                "stack: shapes {} and {} differ",
                fmt_shape(&first.shape),
                fmt_shape(&a.shape)
            )));
        }
    }
    if axis > first.ndim() {
        return Array::failed(Error::shape(format!(
            "stack: axis {axis} is out of bounds for {} dimensions",
            first.ndim() + 1
        )));
    }
    let lifted: Vec<Array<T>> = arrays.iter().map(|a| a.expand_dims(axis)).collect();
    concatenate(&lifted, axis)
}
