//! Linear algebra: block products (`dot`, `matmul`, `tensordot`), `tsqr`, `svd` of
//! tall-and-skinny arrays, and randomized `svd_compressed`.
//!
//! **Products** follow Dask (§5.4 of the internals notes): no row or column panels. Output
//! block `(i, j)` is `Σ_k A(i,k)·B(k,j)`; the contracted blocks are taken in groups of up to
//! four, each group one task that multiplies its pairs into one buffer with faer's GEMM
//! (sequential: blocks already run in parallel on brisk's workers; operands are passed with
//! their strides, so a transposed block is never copied), and the groups' results are summed
//! with a tree of fan-in 4, in place.
//!
//! **TSQR** (Benson–Gleich–Demmel direct TSQR, like `dask.array.linalg.tsqr`): every row
//! block is factored with faer's Householder QR; the small `R` factors are stacked in groups
//! no taller than the tallest block and factored again, recursively, until one `R` remains.
//! `Q` of a block is its local `Q` times the product of the slices of the inner `Q`s above it.
//! [`svd`] takes the SVD of the final `R` once, and gives `S`, `Vᵀ` and `U = Q·U_R` from it
//! (like `dask.array.linalg.svd`; one `R` tree, so the three always agree). Singular values
//! alone need only the `R` tree: [`svd_values`] builds it without forming any `Q`.
//!
//! **svd_compressed** is Halko–Martinsson–Tropp: `Y = A·Ω` for a normal `Ω` of `k +
//! oversample` columns, optional power iterations `Y = A·(Aᵀ·Y)` re-orthonormalized with
//! TSQR, `Q = tsqr(Y)`, `B = Qᵀ·A` (small), SVD of `B` on one worker, `U = Q·U_B`.

use std::sync::Arc;

use faer::{Accum, MatRef, Par};
use ndarray::{Array2, ArrayD, ArrayView2, Ix2, IxDyn};

use super::{
    bail_err, block_value, fmt_shape, fresh, grid_indices, take_any, take_block, task, Array, Elem,
    Float, NodeRef,
};
use crate::error::{Error, Result};
use crate::graph::Value;

/// Element types with a faer GEMM and factorizations: f64, f32.
pub trait LinalgElem: Float + faer::traits::RealField {}
impl LinalgElem for f64 {}
impl LinalgElem for f32 {}

/// A faer view of a 2-d ndarray view, without copying when it is row- or column-major.
fn with_mat<T: LinalgElem, R>(v: ArrayView2<'_, T>, f: impl FnOnce(MatRef<'_, T>) -> R) -> R {
    let (m, n) = v.dim();
    if let Some(s) = v.as_slice() {
        return f(MatRef::from_row_major_slice(s, m, n));
    }
    let t = v.t();
    if let Some(s) = t.as_slice() {
        return f(MatRef::from_column_major_slice(s, m, n));
    }
    let owned = v.as_standard_layout().into_owned();
    let s = owned.as_slice().unwrap_or(&[]);
    f(MatRef::from_row_major_slice(s, m, n))
}

/// `c (+)= a · b` with faer, sequentially. `c` is row-major.
pub(crate) fn gemm<T: LinalgElem>(
    c: &mut Array2<T>,
    a: ArrayView2<'_, T>,
    b: ArrayView2<'_, T>,
    add: bool,
) {
    let (m, n) = c.dim();
    let Some(cs) = c.as_slice_mut() else { return };
    let cm = faer::MatMut::from_row_major_slice_mut(cs, m, n);
    with_mat(a, |am| {
        with_mat(b, |bm| {
            faer::linalg::matmul::matmul(
                cm,
                if add { Accum::Add } else { Accum::Replace },
                am,
                bm,
                T::one_impl(),
                Par::Seq,
            );
        })
    });
}

fn to2<T: Elem>(b: ArrayD<T>, what: &str) -> Result<ndarray::Array2<T>> {
    b.into_dimensionality::<Ix2>()
        .map_err(|e| Error::internal(format!("{what}: block is not 2-d: {e}")))
}

/// Reshapes a block for a contraction: permute to `perm`, then view as `(rows, cols)`.
fn as_matrix<'a, T: Elem>(
    b: ndarray::ArrayViewD<'a, T>,
    perm: &[usize],
    split: usize,
) -> Result<ndarray::CowArray<'a, T, Ix2>> {
    let p = b.permuted_axes(IxDyn(perm));
    let rows: usize = p.shape()[..split].iter().product();
    let cols: usize = p.shape()[split..].iter().product();
    let bad = |e: ndarray::ShapeError| Error::internal(format!("tensordot block reshape: {e}"));
    if p.ndim() == 2 && split == 1 {
        return Ok(p.into_dimensionality::<Ix2>().map_err(bad)?.into());
    }
    if p.is_standard_layout() {
        return Ok(p.into_shape_with_order((rows, cols)).map_err(bad)?.into());
    }
    let owned = p.as_standard_layout().into_owned();
    Ok(owned
        .into_shape_with_order((rows, cols))
        .map_err(bad)?
        .into())
}

impl<T: LinalgElem> Array<T> {
    /// Matrix product of 2-d arrays (and 1-d vectors, as in NumPy's `dot`).
    pub fn dot(&self, other: &Array<T>) -> Array<T> {
        bail_err!(self, other);
        match (self.ndim(), other.ndim()) {
            (0, _) | (_, 0) => Array::failed(Error::shape("dot: use * for 0-d arrays")),
            (a, b) => tensordot(self, other, &[a - 1], &[b.saturating_sub(2)]),
        }
    }

    /// Matrix product: like [`dot`](Self::dot) for 1-d and 2-d arrays.
    pub fn matmul(&self, other: &Array<T>) -> Array<T> {
        if self.ndim() > 2 || other.ndim() > 2 {
            return Array::failed(Error::shape(format!(
                "matmul: batched products are not supported (shapes {} and {})",
                fmt_shape(&self.shape),
                fmt_shape(&other.shape)
            )));
        }
        self.dot(other)
    }
}

/// Contracts `a_axes` of `a` with `b_axes` of `b` (NumPy's `tensordot`): the result has
/// `a`'s free axes, then `b`'s.
pub fn tensordot<T: LinalgElem>(
    a: &Array<T>,
    b: &Array<T>,
    a_axes: &[usize],
    b_axes: &[usize],
) -> Array<T> {
    bail_err!(a, b);
    if a_axes.len() != b_axes.len()
        || a_axes.iter().any(|&x| x >= a.ndim())
        || b_axes.iter().any(|&x| x >= b.ndim())
    {
        return Array::failed(Error::shape(format!(
            "tensordot: axes {a_axes:?} and {b_axes:?} do not fit shapes {} and {}",
            fmt_shape(&a.shape),
            fmt_shape(&b.shape)
        )));
    }
    for (&x, &y) in a_axes.iter().zip(b_axes) {
        if a.shape[x] != b.shape[y] {
            return Array::failed(Error::shape(format!(
                "shapes {} and {} not aligned: axis {x} ({}) != axis {y} ({})",
                fmt_shape(&a.shape),
                fmt_shape(&b.shape),
                a.shape[x],
                b.shape[y]
            )));
        }
    }
    // Align b's contracted chunks to a's.
    let mut target = b.chunks.clone();
    for (&x, &y) in a_axes.iter().zip(b_axes) {
        target[y] = a.chunks[x].clone();
    }
    let b = if target == b.chunks {
        b.clone()
    } else {
        b.rechunk(target)
    };
    let a_free: Vec<usize> = (0..a.ndim()).filter(|x| !a_axes.contains(x)).collect();
    let b_free: Vec<usize> = (0..b.ndim()).filter(|x| !b_axes.contains(x)).collect();
    let a_perm: Vec<usize> = a_free.iter().chain(a_axes).copied().collect();
    let b_perm: Vec<usize> = b_axes.iter().chain(&b_free).copied().collect();
    let shape: Vec<usize> = a_free
        .iter()
        .map(|&x| a.shape[x])
        .chain(b_free.iter().map(|&y| b.shape[y]))
        .collect();
    let chunks: Vec<Vec<usize>> = a_free
        .iter()
        .map(|&x| a.chunks[x].clone())
        .chain(b_free.iter().map(|&y| b.chunks[y].clone()))
        .collect();
    let contracted_nb: Vec<usize> = a_axes.iter().map(|&x| a.chunks[x].len()).collect();
    let combos = grid_indices(&contracted_nb);
    let gname = fresh("dot_partial");
    let sname = fresh("dot_sum");
    let oname = fresh("dot");
    let nb: Vec<usize> = chunks.iter().map(Vec::len).collect();
    let na_free = a_free.len();
    let blocks = grid_indices(&nb)
        .iter()
        .map(|oidx| {
            let out_shape: Vec<usize> = oidx.iter().zip(&chunks).map(|(&i, c)| c[i]).collect();
            let rows: usize = out_shape[..na_free].iter().product();
            let cols: usize = out_shape[na_free..].iter().product();
            // Leaf groups of up to four (A, B) pairs.
            let mut level: Vec<NodeRef> = combos
                .chunks(4)
                .enumerate()
                .map(|(g, group)| {
                    let mut deps = Vec::with_capacity(group.len() * 2);
                    for kc in group {
                        let mut ai = vec![0; a.ndim()];
                        for (p, &x) in a_free.iter().enumerate() {
                            ai[x] = oidx[p];
                        }
                        for (p, &x) in a_axes.iter().enumerate() {
                            ai[x] = kc[p];
                        }
                        let mut bi = vec![0; b.ndim()];
                        for (p, &y) in b_free.iter().enumerate() {
                            bi[y] = oidx[na_free + p];
                        }
                        for (p, &y) in b_axes.iter().enumerate() {
                            bi[y] = kc[p];
                        }
                        deps.push(a.read_node(&ai).0);
                        deps.push(b.read_node(&bi).0);
                    }
                    let (ap, bp) = (a_perm.clone(), b_perm.clone());
                    let ta = a.tsrc.as_ref().map(|t| t.perm.clone());
                    let tb = b.tsrc.as_ref().map(|t| t.perm.clone());
                    let (sa, sb) = (na_free, b_axes.len());
                    let mut kidx = oidx.clone();
                    kidx.push(g);
                    task(&gname, &kidx, deps, move |inp| {
                        let mut c = Array2::<T>::zeros((rows, cols));
                        for (k, pair) in inp.chunks(2).enumerate() {
                            let x = as_matrix(
                                super::permute(super::borrow_block::<T>(&pair[0])?.view(), &ta),
                                &ap,
                                sa,
                            )?;
                            let y = as_matrix(
                                super::permute(super::borrow_block::<T>(&pair[1])?.view(), &tb),
                                &bp,
                                sb,
                            )?;
                            if x.dim().1 != y.dim().0 {
                                return Err(Error::internal(format!(
                                    "dot: block shapes {:?} and {:?} not aligned",
                                    x.dim(),
                                    y.dim()
                                )));
                            }
                            gemm(&mut c, x.view(), y.view(), k > 0);
                        }
                        Ok(block_value(c.into_dyn()))
                    })
                })
                .collect();
            let mut depth = 0;
            while level.len() > 1 {
                depth += 1;
                level = level
                    .chunks(4)
                    .enumerate()
                    .map(|(g, grp)| {
                        let mut kidx = oidx.clone();
                        kidx.push(depth);
                        kidx.push(g);
                        task(&sname, &kidx, grp.to_vec(), |inp| {
                            let mut acc = take_block::<T>(&mut inp[0])?;
                            for v in inp[1..].iter_mut() {
                                let x = v.downcast_ref::<ArrayD<T>>().ok_or_else(|| {
                                    Error::internal("dot: partial of the wrong type")
                                })?;
                                acc.zip_mut_with(x, |p, &q| *p += q);
                            }
                            Ok(block_value(acc))
                        })
                    })
                    .collect();
            }
            let node = level.pop().unwrap_or_else(|| {
                super::literal(
                    &oname,
                    oidx,
                    block_value(ArrayD::<T>::zeros(IxDyn(&out_shape))),
                )
            });
            let shp = out_shape.clone();
            task(&oname, oidx, vec![node], move |inp| {
                let c = take_block::<T>(&mut inp[0])?;
                let c = if c.shape() == shp.as_slice() {
                    c
                } else {
                    c.into_shape_with_order(IxDyn(&shp))
                        .map_err(|e| Error::internal(format!("dot output: {e}")))?
                };
                Ok(block_value(c))
            })
        })
        .collect();
    Array::from_parts(shape, chunks, blocks)
}

// ---------------------------------------------------------------------------------------
// QR / SVD

fn faer_to_nd<T: LinalgElem>(m: MatRef<'_, T>) -> Array2<T> {
    Array2::from_shape_fn((m.nrows(), m.ncols()), |(i, j)| m[(i, j)])
}

/// Thin QR of a block: (Q: m×k, R: k×n), k = min(m, n).
fn qr_block<T: LinalgElem>(a: ArrayView2<'_, T>, want_q: bool) -> (Option<Array2<T>>, Array2<T>) {
    with_mat(a, |m| {
        let qr = m.qr();
        let r = faer_to_nd(qr.thin_R());
        let q = want_q.then(|| faer_to_nd(qr.compute_thin_Q().as_ref()));
        (q, r)
    })
}

fn vstack<T: Elem>(parts: &[Array2<T>]) -> Result<Array2<T>> {
    let views: Vec<_> = parts.iter().map(|p| p.view()).collect();
    ndarray::concatenate(ndarray::Axis(0), &views)
        .map_err(|e| Error::internal(format!("stacking R factors: {e}")))
}

/// The R tree: final R node (n×n or smaller) and, when `want_q`, for every input an
/// `r_i × n` multiplier node (None: identity).
fn r_tree<T: LinalgElem>(
    rs: Vec<(NodeRef, usize)>,
    n: usize,
    cap: usize,
    want_q: bool,
) -> (NodeRef, usize, Vec<Option<NodeRef>>) {
    if rs.len() == 1 {
        let (node, rows) = rs.into_iter().next().unwrap_or_else(|| unreachable!());
        return (node, rows, vec![None]);
    }
    let g = (cap / n.max(1)).max(2);
    let name = fresh("tsqr_inner");
    let mut up: Vec<(NodeRef, usize)> = Vec::new();
    let mut qs: Vec<(Option<NodeRef>, Vec<usize>)> = Vec::new();
    for (gi, grp) in rs.chunks(g).enumerate() {
        let rows: Vec<usize> = grp.iter().map(|r| r.1).collect();
        let total: usize = rows.iter().sum();
        let deps: Vec<NodeRef> = grp.iter().map(|r| Arc::clone(&r.0)).collect();
        let qr = task(&name, &[gi], deps, move |inp| {
            let parts: Vec<Array2<T>> = inp
                .iter_mut()
                .map(|v| to2(take_block::<T>(v)?, "tsqr"))
                .collect::<Result<_>>()?;
            let st = vstack(&parts)?;
            let (q, r) = qr_block(st.view(), want_q);
            Ok(Value::new((
                q.map(|q| q.into_dyn()).unwrap_or_default(),
                r.into_dyn(),
            )))
        });
        let r = task(&fresh("tsqr_r"), &[gi], vec![Arc::clone(&qr)], |inp| {
            let (_, r): (ArrayD<T>, ArrayD<T>) = take_any(&mut inp[0])?;
            Ok(block_value(r))
        });
        let q = want_q.then(|| {
            task(&fresh("tsqr_q"), &[gi], vec![qr], |inp| {
                let (q, _): (ArrayD<T>, ArrayD<T>) = take_any(&mut inp[0])?;
                Ok(block_value(q))
            })
        });
        up.push((r, total.min(n)));
        qs.push((q, rows));
    }
    let (root, root_rows, group_mult) = r_tree::<T>(up, n, cap, want_q);
    let mut mults = Vec::new();
    if want_q {
        let mname = fresh("tsqr_mult");
        for (gi, ((q, rows), gm)) in qs.into_iter().zip(group_mult).enumerate() {
            let Some(q) = q else { continue };
            let mut off = 0;
            for (j, &r) in rows.iter().enumerate() {
                let (o, rr) = (off, r);
                off += r;
                let mut deps = vec![Arc::clone(&q)];
                if let Some(m) = &gm {
                    deps.push(Arc::clone(m));
                }
                mults.push(Some(task(&mname, &[gi, j], deps, move |inp| {
                    let q = to2(take_block::<T>(&mut inp[0])?, "tsqr")?;
                    let s = q.slice(ndarray::s![o..o + rr, ..]);
                    if inp.len() == 1 {
                        return Ok(block_value(s.to_owned().into_dyn()));
                    }
                    let m = to2(take_block::<T>(&mut inp[1])?, "tsqr")?;
                    let mut c = Array2::<T>::zeros((rr, m.dim().1));
                    gemm(&mut c, s, m.view(), false);
                    Ok(block_value(c.into_dyn()))
                })));
            }
        }
    }
    (root, root_rows, mults)
}

fn tall_skinny<T: LinalgElem>(a: &Array<T>, what: &str) -> Result<Array<T>> {
    if a.ndim() != 2 {
        return Err(Error::shape(format!(
            "{what}: needs a 2-d array, got shape {}",
            fmt_shape(&a.shape)
        )));
    }
    Ok(if a.chunks[1].len() > 1 {
        a.rechunk(vec![a.chunks[0].clone(), vec![a.shape[1]]])
    } else {
        a.clone()
    })
}

struct Tsqr {
    q: Option<Vec<NodeRef>>,
    r: NodeRef,
    r_rows: usize,
}

fn tsqr_nodes<T: LinalgElem>(a: &Array<T>, want_q: bool) -> Result<Tsqr> {
    let a = tall_skinny(a, "tsqr")?;
    if let Some(e) = &a.err {
        return Err(super::copy_err(e));
    }
    let n = a.shape[1];
    let cap = a.chunks[0].iter().copied().max().unwrap_or(1);
    let lname = fresh("tsqr_local");
    let rname = fresh("tsqr_local_r");
    let qname = fresh("tsqr_local_q");
    let mut rs = Vec::new();
    let mut locals = Vec::new();
    for (i, &m) in a.chunks[0].iter().enumerate() {
        let node = Arc::clone(a.node(&[i, 0]));
        if want_q {
            let qr = task(&lname, &[i], vec![node], |inp| {
                let b = to2(take_block::<T>(&mut inp[0])?, "tsqr")?;
                let (q, r) = qr_block(b.view(), true);
                Ok(Value::new((q.unwrap_or_default().into_dyn(), r.into_dyn())))
            });
            let r = task(&rname, &[i], vec![Arc::clone(&qr)], |inp| {
                let (_, r): (ArrayD<T>, ArrayD<T>) = take_any(&mut inp[0])?;
                Ok(block_value(r))
            });
            let q = task(&qname, &[i], vec![qr], |inp| {
                let (q, _): (ArrayD<T>, ArrayD<T>) = take_any(&mut inp[0])?;
                Ok(block_value(q))
            });
            rs.push((r, m.min(n)));
            locals.push(q);
        } else {
            let r = task(&rname, &[i], vec![node], |inp| {
                let b = to2(take_block::<T>(&mut inp[0])?, "tsqr")?;
                let (_, r) = qr_block(b.view(), false);
                Ok(block_value(r.into_dyn()))
            });
            rs.push((r, m.min(n)));
        }
    }
    let (r, r_rows, mults) = r_tree::<T>(rs, n, cap.max(2 * n), want_q);
    let q = if want_q {
        let name = fresh("tsqr_q_final");
        let blocks: Vec<NodeRef> = locals
            .into_iter()
            .zip(mults)
            .enumerate()
            .map(|(i, (ql, m))| match m {
                None => ql,
                Some(m) => task(&name, &[i, 0], vec![ql, m], |inp| {
                    let q = to2(take_block::<T>(&mut inp[0])?, "tsqr")?;
                    let m = to2(take_block::<T>(&mut inp[1])?, "tsqr")?;
                    let mut c = Array2::<T>::zeros((q.dim().0, m.dim().1));
                    gemm(&mut c, q.view(), m.view(), false);
                    Ok(block_value(c.into_dyn()))
                }),
            })
            .collect();
        Some(blocks)
    } else {
        None
    };
    Ok(Tsqr { q, r, r_rows })
}

/// QR of a tall-and-skinny array (one block of columns; more are merged first): `(Q, R)`
/// with `Q` chunked like the rows of `a` and `R` one `n × n` block.
///
/// # Errors
/// When `a` is not 2-d.
pub fn tsqr<T: LinalgElem>(a: &Array<T>) -> Result<(Array<T>, Array<T>)> {
    let t = tsqr_nodes(a, true)?;
    let n = a.shape[1];
    let q = t.q.ok_or_else(|| Error::internal("tsqr without Q"))?;
    let r = Array::from_parts(vec![t.r_rows, n], vec![vec![t.r_rows], vec![n]], vec![t.r]);
    // Q's column count is the final R's row count.
    let q = Array::from_parts(
        vec![a.shape[0], t.r_rows],
        vec![a.chunks[0].clone(), vec![t.r_rows]],
        q,
    );
    Ok((q, r))
}

/// SVD of an `R`-sized block: (U, S, Vt).
fn svd_small<T: LinalgElem>(
    r: ArrayView2<'_, T>,
) -> Result<(Array2<T>, ndarray::Array1<T>, Array2<T>)> {
    with_mat(r, |m| {
        let s = m
            .thin_svd()
            .map_err(|e| Error::msg(format!("svd did not converge: {e:?}")))?;
        let u = faer_to_nd(s.U());
        let vt = faer_to_nd(s.V().transpose());
        let sv = s.S().column_vector();
        let sv = ndarray::Array1::from_shape_fn(sv.nrows(), |i| sv[i]);
        Ok((u, sv, vt))
    })
}

/// Singular values of a tall-and-skinny array, from the TSQR `R` tree only.
pub fn svd_values<T: LinalgElem>(a: &Array<T>) -> Result<Array<T>> {
    let t = tsqr_nodes(a, false)?;
    let k = t.r_rows.min(a.shape[1]);
    let node = task(&fresh("svd_values"), &[0], vec![t.r], |inp| {
        let r = to2(take_block::<T>(&mut inp[0])?, "svd")?;
        let (_, s, _) = svd_small(r.view())?;
        Ok(block_value(s.into_dyn()))
    });
    Ok(Array::from_parts(vec![k], vec![vec![k]], vec![node]))
}

/// SVD of a tall-and-skinny array: `(U, S, Vᵀ)` with `U` chunked like `a`'s rows.
///
/// All three come from one TSQR, which forms `Q` even when only `S` is computed: use
/// [`svd_values`] for the singular values alone.
///
/// # Errors
/// When `a` is not 2-d.
pub fn svd<T: LinalgElem>(a: &Array<T>) -> Result<(Array<T>, Array<T>, Array<T>)> {
    let n = a.shape.get(1).copied().unwrap_or(0);
    let (q, r) = tsqr(a)?;
    let r_rows = r.shape[0];
    let k = r_rows.min(n);
    let sv = task(
        &fresh("svd_r"),
        &[0],
        vec![Arc::clone(r.node(&[0, 0]))],
        |inp| {
            let r = to2(take_block::<T>(&mut inp[0])?, "svd")?;
            let (u, s, vt) = svd_small(r.view())?;
            Ok(Value::new((u.into_dyn(), s.into_dyn(), vt.into_dyn())))
        },
    );
    let ur = task(&fresh("svd_ur"), &[0, 0], vec![Arc::clone(&sv)], |inp| {
        let (u, _, _): (ArrayD<T>, ArrayD<T>, ArrayD<T>) = take_any(&mut inp[0])?;
        Ok(block_value(u))
    });
    let s = task(&fresh("svd_s"), &[0], vec![Arc::clone(&sv)], |inp| {
        let (_, s, _): (ArrayD<T>, ArrayD<T>, ArrayD<T>) = take_any(&mut inp[0])?;
        Ok(block_value(s))
    });
    let vt = task(&fresh("svd_vt"), &[0, 0], vec![sv], |inp| {
        let (_, _, vt): (ArrayD<T>, ArrayD<T>, ArrayD<T>) = take_any(&mut inp[0])?;
        Ok(block_value(vt))
    });
    let ur = Array::from_parts(vec![r_rows, k], vec![vec![r_rows], vec![k]], vec![ur]);
    let u = q.dot(&ur);
    let s = Array::from_parts(vec![k], vec![vec![k]], vec![s]);
    let vt = Array::from_parts(vec![k, n], vec![vec![k], vec![n]], vec![vt]);
    Ok((u, s, vt))
}

impl<T: Elem> Array<T> {
    /// A single-block map that may change the shape to `shape` (internal helper).
    pub(crate) fn map_blocks_any<F>(&self, f: F, shape: Vec<usize>) -> Array<T>
    where
        F: Fn(ArrayD<T>) -> Result<ArrayD<T>> + Send + Sync + 'static,
    {
        bail_err!(self);
        let one = if self.blocks.len() == 1 {
            self.clone()
        } else {
            self.rechunk(super::Chunks::Every(0))
        };
        let node = task(
            &fresh("map_block"),
            &vec![0; shape.len()],
            vec![Arc::clone(&one.blocks[0])],
            move |inp| Ok(block_value(f(take_block::<T>(&mut inp[0])?)?)),
        );
        let chunks = shape.iter().map(|&s| vec![s]).collect();
        Array::from_parts(shape, chunks, vec![node])
    }
}

/// Randomized truncated SVD (Halko–Martinsson–Tropp): the top `k` singular triplets of `a`,
/// with `oversample` extra columns and `power_iters` power iterations.
///
/// # Errors
/// When `a` is not 2-d or `k` is zero or larger than its smaller side.
pub fn svd_compressed(
    a: &Array<f64>,
    k: usize,
    oversample: usize,
    power_iters: usize,
    seed: u64,
) -> Result<(Array<f64>, Array<f64>, Array<f64>)> {
    if let Some(e) = &a.err {
        return Err(super::copy_err(e));
    }
    if a.ndim() != 2 || k == 0 || k > a.shape[0].min(a.shape[1]) {
        return Err(Error::shape(format!(
            "svd_compressed: need a 2-d array and 0 < k <= min(shape), got k={k} and shape {}",
            fmt_shape(&a.shape)
        )));
    }
    let (m, n) = (a.shape[0], a.shape[1]);
    let l = (k + oversample).max(k).min(m.min(n));
    let omega = super::random::normal(
        &[n, l],
        super::Chunks::Explicit(vec![a.chunks[1].clone(), vec![l]]),
        seed,
        0.0,
        1.0,
    )?;
    let mut y = a.dot(&omega);
    for _ in 0..power_iters {
        let (qy, _) = tsqr(&y)?;
        let z = a.t().dot(&qy);
        let (qz, _) = tsqr(&z)?;
        y = a.dot(&qz);
    }
    let (q, _) = tsqr(&y)?;
    // B = Qᵀ A: l × n, small.
    let b = q.t().dot(a);
    let lq = q.shape[1];
    let bsvd = b.map_blocks_any(
        |b: ArrayD<f64>| -> Result<ArrayD<f64>> {
            let b = to2(b, "svd_compressed")?;
            let (u, s, vt) = svd_small(b.view())?;
            // Pack U (l×r), S (r), Vt (r×n) into one (l + 1 + r) × max(n, r) array.
            let (lr, r) = u.dim();
            let nn = vt.dim().1;
            let w = nn.max(r);
            let mut out = Array2::<f64>::zeros((lr + 1 + r, w));
            out.slice_mut(ndarray::s![..lr, ..r]).assign(&u);
            out.slice_mut(ndarray::s![lr, ..r]).assign(&s);
            out.slice_mut(ndarray::s![lr + 1.., ..nn]).assign(&vt);
            Ok(out.into_dyn())
        },
        vec![lq + 1 + lq.min(n), n.max(lq.min(n))],
    );
    let r = lq.min(n);
    let ub = bsvd.slice(ndarray::s![..lq, ..k]);
    let s = bsvd.slice(ndarray::s![lq, ..k]);
    let vt = bsvd.slice(ndarray::s![lq + 1..lq + 1 + k.min(r), ..n]);
    let u = q.dot(&ub.rechunk(super::Chunks::Every(0)));
    Ok((u, s, vt))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::array::random;

    fn count_named(keys: &[crate::graph::Key], prefix: &str) -> usize {
        keys.iter().filter(|k| k.name().starts_with(prefix)).count()
    }

    #[test]
    fn svd_factors_each_row_block_once() {
        let a = random::uniform(&[400, 6], (50, 6), 3).unwrap();
        let (u, s, vt) = svd(&a).unwrap();
        let (graph, _) = crate::build_graph(&(u, s, vt)).unwrap();
        // One local QR per row block, and one SVD of the final R, shared by U, S and Vᵀ.
        assert_eq!(count_named(graph.keys(), "tsqr_local_r"), 8);
        assert_eq!(count_named(graph.keys(), "svd_r"), 1);
    }
}
