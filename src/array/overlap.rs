//! `map_overlap`: apply a function to blocks extended by halos of their neighbours.
//!
//! Like Dask's ghost cells (§5.3 of the internals notes): every output block's task takes its
//! own block and the needed edges of its up to 3^d − 1 neighbours (diagonals included), and
//! builds the block grown by `depth` on each side of every axis. At the outer edges of the
//! array the halo comes from the boundary rule: `Periodic` wraps to the blocks on the other
//! side, `Reflect` mirrors the edge (`c b a | a b c`, Dask's reflect), `Nearest` repeats the
//! edge value, `Constant(v)` pads with `v`, and `None` does not grow the block on that side.
//! The user function sees the grown block and must return the same shape; the halos are then
//! trimmed off, so the result has the input's chunks. Every block must be at least `depth`
//! long on each axis (otherwise the error names the rechunk to do).

use std::sync::Arc;

use ndarray::{ArrayD, Axis, IxDyn, Slice};

use super::{bail_err, block_value, fmt_shape, fresh, grid_indices, task, Array, Elem, NodeRef};
use crate::error::Error;

/// How to pad the outer edges of the array.
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum Boundary {
    /// No padding: edge blocks grow on their inner side only.
    None,
    /// Pad with a constant.
    Constant(f64),
    /// Mirror the edge, including the edge element (`c b a | a b c`).
    Reflect,
    /// Wrap around to the other side.
    Periodic,
    /// Repeat the edge value.
    Nearest,
}

impl<T: Elem> Array<T> {
    /// Applies `f` to every block grown by `depth[a]` elements on both sides of axis `a`
    /// (see the [module docs](self)).
    pub fn map_overlap<F>(&self, depth: &[usize], boundary: Boundary, f: F) -> Array<T>
    where
        F: Fn(ArrayD<T>) -> ArrayD<T> + Send + Sync + 'static,
    {
        bail_err!(self);
        let nd = self.ndim();
        if depth.len() != nd {
            return Array::failed(Error::shape(format!(
                "map_overlap: {} depths for an array of shape {}",
                depth.len(),
                fmt_shape(&self.shape)
            )));
        }
        for a in 0..nd {
            if depth[a] > 0 && self.chunks[a].iter().any(|&c| c < depth[a]) {
                let want: Vec<Vec<usize>> = (0..nd)
                    .map(|b| {
                        if depth[b] > 0 && self.chunks[b].iter().any(|&c| c < depth[b]) {
                            super::chunks::split(self.shape[b], depth[b].max(self.chunks[b][0]))
                        } else {
                            self.chunks[b].clone()
                        }
                    })
                    .collect();
                return Array::failed(Error::shape(format!(
                    "map_overlap: axis {a} has blocks {:?} shorter than the depth {}; rechunk to {want:?} first",
                    self.chunks[a], depth[a]
                )));
            }
        }
        let f = Arc::new(f);
        let nb = self.numblocks();
        let name = fresh("overlap");
        let offsets3: Vec<Vec<isize>> = grid_indices(&vec![3; nd])
            .into_iter()
            .map(|o| o.into_iter().map(|x| x as isize - 1).collect())
            .collect();
        let blocks: Vec<NodeRef> = grid_indices(&nb)
            .iter()
            .map(|idx| {
                let bshape = self.block_shape(idx);
                // Padding on each side of each axis.
                let mut left = vec![0; nd];
                let mut right = vec![0; nd];
                for a in 0..nd {
                    let pad = boundary != Boundary::None;
                    left[a] = if idx[a] > 0 || pad { depth[a] } else { 0 };
                    right[a] = if idx[a] + 1 < nb[a] || pad {
                        depth[a]
                    } else {
                        0
                    };
                }
                let mut deps: Vec<NodeRef> = Vec::new();
                let mut places: Vec<(Vec<isize>, Vec<usize>)> = Vec::new();
                'outer: for o in &offsets3 {
                    let mut nidx = vec![0; nd];
                    for a in 0..nd {
                        if o[a] != 0 && depth[a] == 0 {
                            continue 'outer;
                        }
                        let j = idx[a] as isize + o[a];
                        nidx[a] = if j < 0 || j >= nb[a] as isize {
                            if boundary != Boundary::Periodic {
                                continue 'outer;
                            }
                            j.rem_euclid(nb[a] as isize) as usize
                        } else {
                            j as usize
                        };
                    }
                    deps.push(Arc::clone(self.node(&nidx)));
                    places.push((o.clone(), nidx));
                }
                let f = Arc::clone(&f);
                let depth = depth.to_vec();
                let (nb, idx) = (nb.clone(), idx.clone());
                task(&name, &idx.clone(), deps, move |inp| {
                    let ext_shape: Vec<usize> =
                        (0..nd).map(|a| bshape[a] + left[a] + right[a]).collect();
                    let fill = match boundary {
                        Boundary::Constant(v) => T::from_f64(v),
                        _ => T::default(),
                    };
                    let mut ext = ArrayD::<T>::from_elem(IxDyn(&ext_shape), fill);
                    for (v, (o, _)) in inp.iter().zip(&places) {
                        let b = super::borrow_block::<T>(v)?;
                        let mut src = b.view();
                        let mut dst = ext.view_mut();
                        for a in 0..nd {
                            let len = b.shape()[a];
                            let (s, d) = match o[a] {
                                -1 => (len - depth[a]..len, 0..depth[a]),
                                0 => (0..len, left[a]..left[a] + len),
                                _ => (
                                    0..depth[a],
                                    left[a] + bshape[a]..left[a] + bshape[a] + depth[a],
                                ),
                            };
                            src.slice_axis_inplace(Axis(a), Slice::from(s));
                            dst.slice_axis_inplace(Axis(a), Slice::from(d));
                        }
                        if src.shape() != dst.shape() {
                            return Err(Error::internal("map_overlap: halo shapes differ"));
                        }
                        dst.assign(&src);
                    }
                    // Reflect / nearest padding at the outer edges, axis by axis.
                    if matches!(boundary, Boundary::Reflect | Boundary::Nearest) {
                        for a in 0..nd {
                            let n = ext_shape[a];
                            let (l, r) = (left[a], right[a]);
                            let edge_l = idx[a] == 0;
                            let edge_r = idx[a] + 1 == nb[a];
                            for i in 0..depth[a] {
                                if edge_l && l > 0 {
                                    let from = if boundary == Boundary::Reflect {
                                        l + i
                                    } else {
                                        l
                                    };
                                    let row = ext.index_axis(Axis(a), from).to_owned();
                                    ext.index_axis_mut(Axis(a), l - 1 - i).assign(&row);
                                }
                                if edge_r && r > 0 {
                                    let last = n - r - 1;
                                    let from = if boundary == Boundary::Reflect {
                                        last - i
                                    } else {
                                        last
                                    };
                                    let row = ext.index_axis(Axis(a), from).to_owned();
                                    ext.index_axis_mut(Axis(a), n - r + i).assign(&row);
                                }
                            }
                        }
                    }
                    let out = f(ext);
                    if out.shape() != ext_shape.as_slice() {
                        return Err(Error::shape(format!(
                            "map_overlap: the function turned a block of shape {} into {}",
                            fmt_shape(&ext_shape),
                            fmt_shape(out.shape())
                        )));
                    }
                    let mut v = out.view();
                    for a in 0..nd {
                        v.slice_axis_inplace(Axis(a), Slice::from(left[a]..left[a] + bshape[a]));
                    }
                    Ok(block_value(v.as_standard_layout().into_owned()))
                })
            })
            .collect();
        Array::from_parts(self.shape.clone(), self.chunks.clone(), blocks)
    }
}
