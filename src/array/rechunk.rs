//! Rechunking: cutting the same data into other blocks.
//!
//! **One stage** (Dask's tasks method): for every new block and every old block it overlaps, a
//! `getitem` task cuts the overlapping piece (skipped when the whole old block is used), and
//! one task per new block copies its pieces into place (a plain alias when one whole old
//! block is the new block). Old blocks are released as soon as their pieces are cut; pieces
//! are ordinary spillable values, so an all-to-all rechunk of an array bigger than the memory
//! limit goes through the store's spill files.
//!
//! **Planning.** When the direct graph is large — Dask's estimate Π over axes of
//! `(old blocks + new blocks − 1)` is more than 4 × (old + new blocks) — an intermediate
//! chunking is inserted whose block length on every axis is the geometric mean of the old and
//! new lengths (merging part of the way along axes that grow, splitting part of the way along
//! axes that shrink), scaled down if needed so its blocks are no bigger than the larger of
//! the old and new blocks or [`AUTO_BYTES`](super::chunks::AUTO_BYTES). Each stage then has
//! far fewer pieces per block.

use std::sync::Arc;

use ndarray::{ArrayD, Axis, IxDyn, Slice};

use super::chunks::{split, Chunks};
use super::{
    bail_err, block_value, fresh, grid_indices, offsets, task, try_arr, Array, Elem, NodeRef,
};

/// One piece along an axis: (old block index, range inside the old block, offset in the
/// new block).
type Piece = (usize, std::ops::Range<usize>, usize);

fn axis_pieces(old: &[usize], new: &[usize]) -> Vec<Vec<Piece>> {
    let oo = offsets(old);
    let no = offsets(new);
    let mut out = Vec::with_capacity(new.len());
    let mut i = 0;
    for j in 0..new.len() {
        let (s, e) = (no[j], no[j + 1]);
        let mut v = Vec::new();
        if s == e {
            // An empty block: one empty piece of the first old block.
            v.push((i.min(old.len() - 1), 0..0, 0));
            out.push(v);
            continue;
        }
        while oo[i + 1] <= s {
            i += 1;
        }
        let mut k = i;
        while k < old.len() && oo[k] < e {
            let a = s.max(oo[k]);
            let b = e.min(oo[k + 1]);
            if b > a {
                v.push((k, a - oo[k]..b - oo[k], a - s));
            }
            k += 1;
        }
        out.push(v);
    }
    out
}

fn geo_chunks(len: usize, old: &[usize], new: &[usize]) -> usize {
    let mo = old.iter().copied().max().unwrap_or(1).max(1) as f64;
    let mn = new.iter().copied().max().unwrap_or(1).max(1) as f64;
    ((mo * mn).sqrt().round() as usize).clamp(1, len.max(1))
}

impl<T: Elem> Array<T> {
    /// The same data in other blocks (see the [module docs](self)).
    ///
    /// ```
    /// let x = brisk::array::ones::<f64>(&[6, 6], (6, 1)).unwrap();
    /// let y = x.rechunk((1, 6));
    /// assert_eq!(y.chunks(), &[vec![1; 6], vec![6]]);
    /// ```
    pub fn rechunk(&self, chunks: impl Into<Chunks>) -> Array<T> {
        bail_err!(self);
        let new = try_arr!(chunks
            .into()
            .normalize(&self.shape, std::mem::size_of::<T>()));
        if new == self.chunks {
            return self.clone();
        }
        let old_blocks: usize = self.chunks.iter().map(Vec::len).product();
        let new_blocks: usize = new.iter().map(Vec::len).product();
        let estimate: f64 = self
            .chunks
            .iter()
            .zip(&new)
            .map(|(o, n)| (o.len() + n.len() - 1) as f64)
            .product();
        if self.ndim() >= 2 && estimate > 4.0 * (old_blocks + new_blocks) as f64 {
            let item = std::mem::size_of::<T>();
            let block_bytes = |c: &[Vec<usize>]| -> usize {
                c.iter()
                    .map(|a| a.iter().copied().max().unwrap_or(1))
                    .product::<usize>()
                    * item
            };
            let budget = block_bytes(&self.chunks)
                .max(block_bytes(&new))
                .max(super::chunks::AUTO_BYTES);
            let mut sizes: Vec<usize> = (0..self.ndim())
                .map(|a| geo_chunks(self.shape[a], &self.chunks[a], &new[a]))
                .collect();
            while sizes.iter().product::<usize>() * item > budget {
                // Shrink the largest axis until the block fits.
                let (a, _) = sizes
                    .iter()
                    .enumerate()
                    .max_by_key(|(_, &s)| s)
                    .unwrap_or((0, &1));
                if sizes[a] <= 1 {
                    break;
                }
                sizes[a] = sizes[a].div_ceil(2);
            }
            let mid: Vec<Vec<usize>> = self
                .shape
                .iter()
                .zip(&sizes)
                .map(|(&l, &s)| split(l, s))
                .collect();
            if mid != self.chunks && mid != new {
                return self.rechunk_direct(&mid).rechunk_direct(&new);
            }
        }
        self.rechunk_direct(&new)
    }

    pub(crate) fn rechunk_direct(&self, new: &[Vec<usize>]) -> Array<T> {
        let nd = self.ndim();
        let per_axis: Vec<Vec<Vec<Piece>>> = (0..nd)
            .map(|a| axis_pieces(&self.chunks[a], &new[a]))
            .collect();
        let gname = fresh("rechunk_split");
        let mname = fresh("rechunk_merge");
        let new_nb: Vec<usize> = new.iter().map(Vec::len).collect();
        let blocks: Vec<NodeRef> = grid_indices(&new_nb)
            .iter()
            .map(|nidx| {
                let lists: Vec<&Vec<Piece>> = (0..nd).map(|a| &per_axis[a][nidx[a]]).collect();
                let lens: Vec<usize> = lists.iter().map(|l| l.len()).collect();
                let out_shape: Vec<usize> = (0..nd).map(|a| new[a][nidx[a]]).collect();
                let mut pieces: Vec<(NodeRef, Vec<usize>)> = Vec::new();
                for (pk, combo) in grid_indices(&lens).iter().enumerate() {
                    let oidx: Vec<usize> = (0..nd).map(|a| lists[a][combo[a]].0).collect();
                    let ranges: Vec<std::ops::Range<usize>> =
                        (0..nd).map(|a| lists[a][combo[a]].1.clone()).collect();
                    let dest: Vec<usize> = (0..nd).map(|a| lists[a][combo[a]].2).collect();
                    let oshape = self.block_shape(&oidx);
                    let whole = ranges
                        .iter()
                        .zip(&oshape)
                        .all(|(r, &l)| r.start == 0 && r.end == l);
                    let node = if whole {
                        Arc::clone(self.node(&oidx))
                    } else {
                        let mut kidx = nidx.clone();
                        kidx.push(pk);
                        task(
                            &gname,
                            &kidx,
                            vec![Arc::clone(self.node(&oidx))],
                            move |inp| {
                                let b = super::borrow_block::<T>(&inp[0])?;
                                let mut v = b.view();
                                for (a, r) in ranges.iter().enumerate() {
                                    v.slice_axis_inplace(Axis(a), Slice::from(r.clone()));
                                }
                                Ok(block_value(v.as_standard_layout().into_owned()))
                            },
                        )
                    };
                    pieces.push((node, dest));
                }
                if pieces.len() == 1 {
                    if let Some((node, _)) = pieces.pop() {
                        return node;
                    }
                }
                let (deps, dests): (Vec<NodeRef>, Vec<Vec<usize>>) = pieces.into_iter().unzip();
                task(&mname, nidx, deps, move |inp| {
                    let mut out = ArrayD::<T>::default(IxDyn(&out_shape));
                    for (v, d) in inp.iter().zip(&dests) {
                        let p = super::borrow_block::<T>(v)?;
                        let mut view = out.view_mut();
                        for (a, (&s, &l)) in d.iter().zip(p.shape()).enumerate() {
                            view.slice_axis_inplace(Axis(a), Slice::from(s..s + l));
                        }
                        view.assign(p);
                    }
                    Ok(block_value(out))
                })
            })
            .collect();
        Array::from_parts(self.shape.clone(), new.to_vec(), blocks)
    }
}
