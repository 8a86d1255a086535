//! Behaviour of `brisk::array`: every operation against the same computation done directly
//! with `ndarray`, on odd shapes and chunks that do not divide them.

use brisk::array::{self, linalg, random, All, Array};
use brisk::Runtime;
use ndarray::{s, Array1, Array2, ArrayD, Axis, IxDyn};
use proptest::prelude::*;

fn rt() -> Runtime {
    Runtime::builder().threads(2).build().unwrap()
}

fn grid(r: usize, c: usize) -> Array2<f64> {
    Array2::from_shape_fn((r, c), |(i, j)| {
        ((i * 7 + j * 13) % 11) as f64 - 4.5 + 0.25 * j as f64
    })
}

fn close(a: &ArrayD<f64>, b: &ArrayD<f64>) {
    assert_eq!(a.shape(), b.shape(), "shapes");
    for (x, y) in a.iter().zip(b.iter()) {
        assert!(
            x == y
                || (x - y).abs() <= 1e-9 * (1.0 + x.abs().max(y.abs()))
                || (x.is_nan() && y.is_nan()),
            "{x} vs {y}\n{a}\n{b}"
        );
    }
}

#[test]
fn creation_and_chunks() {
    let rt = rt();
    let z = array::zeros::<f64>(&[5, 7], (2, 3)).unwrap();
    assert_eq!(z.chunks(), &[vec![2, 2, 1], vec![3, 3, 1]]);
    assert_eq!(z.numblocks(), vec![3, 3]);
    assert_eq!(z.nbytes(), 5 * 7 * 8);
    assert_eq!(z.dtype(), "float64");
    assert_eq!(
        rt.compute(&z).unwrap(),
        ArrayD::<f64>::zeros(IxDyn(&[5, 7]))
    );
    let o = array::ones::<i32>(&[4], 3).unwrap();
    assert_eq!(
        rt.compute(&o).unwrap().into_raw_vec_and_offset().0,
        vec![1; 4]
    );
    let f = array::full(&[2, 2], 1, true).unwrap();
    assert!(rt.compute(&f).unwrap().iter().all(|&x| x));
    let a = array::arange::<i64>(2.0, 11.0, 3.0, 2).unwrap();
    assert_eq!(
        rt.compute(&a).unwrap().into_raw_vec_and_offset().0,
        vec![2, 5, 8]
    );
    let l = array::linspace(0.0, 1.0, 5, true, 2).unwrap();
    assert_eq!(
        rt.compute(&l).unwrap().into_raw_vec_and_offset().0,
        vec![0.0, 0.25, 0.5, 0.75, 1.0]
    );
    let e = array::eye(5, 2).unwrap();
    assert_eq!(rt.compute(&e).unwrap(), Array2::<f64>::eye(5).into_dyn());
    let g = grid(5, 7);
    let x = array::from_ndarray(g.clone(), (3, 4)).unwrap();
    assert_eq!(rt.compute(&x).unwrap(), g.clone().into_dyn());
    // Auto chunks stay below the budget.
    let big = array::zeros::<f64>(&[100_000, 1_000], array::Chunks::Auto).unwrap();
    assert!(big.chunks()[0][0] * big.chunks()[1][0] * 8 <= 128 << 20);
    // Bad chunks are an error naming the shape.
    let err = array::zeros::<f64>(&[5, 7], vec![vec![2, 2], vec![7]])
        .err()
        .unwrap();
    assert!(err.to_string().contains("(5, 7)"), "{err}");
    // Display does not compute.
    let shown = format!("{x}");
    assert!(
        shown.contains("shape=(5, 7)") && shown.contains("float64") && shown.contains("tasks=4"),
        "{shown}"
    );
    // Empty and 0-d arrays.
    let e0 = array::zeros::<f64>(&[0, 3], 2).unwrap();
    assert_eq!(rt.compute(&e0).unwrap().shape(), &[0, 3]);
    let s0 = array::creation::scalar(3.5f64);
    assert_eq!(s0.compute_scalar(&rt).unwrap(), 3.5);
}

#[test]
fn random_is_deterministic_per_seed_and_chunks() {
    let one = Runtime::builder().threads(1).build().unwrap();
    let two = rt();
    let a = random::uniform(&[37, 23], (10, 7), 5).unwrap();
    let x1 = one.compute(&a).unwrap();
    let x2 = two
        .compute(&random::uniform(&[37, 23], (10, 7), 5).unwrap())
        .unwrap();
    assert_eq!(x1, x2);
    assert!(x1.iter().all(|&v| (0.0..1.0).contains(&v)));
    let other = two
        .compute(&random::uniform(&[37, 23], (10, 7), 6).unwrap())
        .unwrap();
    assert_ne!(x1, other);
    // A fused reduction sees the same numbers as the materialized blocks.
    let s = a.sum(All).compute_scalar(&two).unwrap();
    assert!((s - x1.sum()).abs() < 1e-9, "{s} {}", x1.sum());
    let m1 = two.compute(&a.mean(1)).unwrap();
    close(&m1, &x1.mean_axis(Axis(1)).unwrap());
    let n = two
        .compute(&random::normal(&[20000], 3000, 1, 2.0, 3.0).unwrap())
        .unwrap();
    let mu = n.mean().unwrap();
    assert!((mu - 2.0).abs() < 0.1, "{mu}");
    let i = two
        .compute(&random::integers(&[1000], 300, 2, -3, 4).unwrap())
        .unwrap();
    assert!(i.iter().all(|&v| (-3..4).contains(&v)));
    assert!(i.iter().any(|&v| v == -3) && i.iter().any(|&v| v == 3));
}

#[test]
fn elementwise_and_broadcasting() {
    let rt = rt();
    let g = grid(5, 7);
    let h = grid(7, 5).t().to_owned() * 0.5 + 1.0;
    let x = array::from_ndarray(g.clone(), (2, 3)).unwrap();
    let y = array::from_ndarray(h.clone(), (3, 2)).unwrap(); // other chunks: rechunked
    close(&rt.compute(&(&x + &y)).unwrap(), &(&g + &h).into_dyn());
    close(&rt.compute(&(&x - &y)).unwrap(), &(&g - &h).into_dyn());
    close(&rt.compute(&(&x * &y)).unwrap(), &(&g * &h).into_dyn());
    close(&rt.compute(&(&x / &y)).unwrap(), &(&g / &h).into_dyn());
    close(
        &rt.compute(&(&x * 2.0 + 1.0)).unwrap(),
        &(&g * 2.0 + 1.0).into_dyn(),
    );
    close(&rt.compute(&(1.0 - &x)).unwrap(), &(1.0 - &g).into_dyn());
    close(&rt.compute(&(-&x)).unwrap(), &(-&g).into_dyn());
    // Row vector, column vector and 0-d broadcasting.
    let row = Array1::from_shape_fn(7, |j| j as f64);
    let col = Array2::from_shape_fn((5, 1), |(i, _)| i as f64 * 10.0);
    let xr = array::from_ndarray(row.clone(), 3).unwrap();
    let xc = array::from_ndarray(col.clone(), 2).unwrap();
    close(&rt.compute(&(&x + &xr)).unwrap(), &(&g + &row).into_dyn());
    close(
        &rt.compute(&(&xc + &xr)).unwrap(),
        &(&col + &row).into_dyn(),
    );
    let sc = array::creation::scalar(2.0);
    close(&rt.compute(&(&x * &sc)).unwrap(), &(&g * 2.0).into_dyn());
    // Shape mismatch: error with both shapes, reported before running.
    let bad = array::zeros::<f64>(&[4, 7], 2).unwrap();
    let err = rt.compute(&(&x + &bad)).unwrap_err().to_string();
    assert!(err.contains("(5, 7)") && err.contains("(4, 7)"), "{err}");
    assert!((&x + &bad).ok().is_err());
    // Math, comparisons, where, astype.
    let p = x.abs();
    close(
        &rt.compute(&p.sqrt()).unwrap(),
        &g.mapv(|v| v.abs().sqrt()).into_dyn(),
    );
    close(&rt.compute(&x.exp()).unwrap(), &g.mapv(f64::exp).into_dyn());
    close(
        &rt.compute(&p.log()).unwrap(),
        &g.mapv(|v| v.abs().ln()).into_dyn(),
    );
    close(&rt.compute(&x.sin()).unwrap(), &g.mapv(f64::sin).into_dyn());
    close(&rt.compute(&x.cos()).unwrap(), &g.mapv(f64::cos).into_dyn());
    close(
        &rt.compute(&p.powf(1.5)).unwrap(),
        &g.mapv(|v| v.abs().powf(1.5)).into_dyn(),
    );
    close(
        &rt.compute(&x.clip(-1.0, 2.0)).unwrap(),
        &g.mapv(|v| v.clamp(-1.0, 2.0)).into_dyn(),
    );
    let gt = rt.compute(&x.gt(&y)).unwrap();
    assert_eq!(
        gt,
        ndarray::Zip::from(&g)
            .and(&h)
            .map_collect(|a, b| a > b)
            .into_dyn()
    );
    let w = array::elementwise::where_(&x.gt_scalar(0.0), &x, &array::creation::scalar(0.0));
    close(&rt.compute(&w).unwrap(), &g.mapv(|v| v.max(0.0)).into_dyn());
    let i = rt.compute(&x.astype::<i64>()).unwrap();
    assert_eq!(i, g.mapv(|v| v as i64).into_dyn());
    let mb = x.map_blocks(|b| b * 3.0);
    close(&rt.compute(&mb).unwrap(), &(&g * 3.0).into_dyn());
}

#[test]
fn reductions_match_ndarray() {
    let rt = rt();
    let g = grid(11, 9);
    let x = array::from_ndarray(g.clone(), (4, 2)).unwrap();
    let gd = g.clone().into_dyn();
    close(
        &rt.compute(&x.sum(All)).unwrap(),
        &ArrayD::from_elem(IxDyn(&[]), g.sum()),
    );
    close(
        &rt.compute(&x.sum(0)).unwrap(),
        &g.sum_axis(Axis(0)).into_dyn(),
    );
    close(
        &rt.compute(&x.sum(1)).unwrap(),
        &g.sum_axis(Axis(1)).into_dyn(),
    );
    close(
        &rt.compute(&x.mean(0)).unwrap(),
        &g.mean_axis(Axis(0)).unwrap().into_dyn(),
    );
    close(
        &rt.compute(&x.mean(All)).unwrap(),
        &ArrayD::from_elem(IxDyn(&[]), g.mean().unwrap()),
    );
    close(
        &rt.compute(&x.var(0, 1.0)).unwrap(),
        &g.var_axis(Axis(0), 1.0).into_dyn(),
    );
    close(
        &rt.compute(&x.std(1, 0.0)).unwrap(),
        &g.std_axis(Axis(1), 0.0).into_dyn(),
    );
    close(
        &rt.compute(&x.std(All, 0.0)).unwrap(),
        &ArrayD::from_elem(IxDyn(&[]), g.std(0.0)),
    );
    let mx = g.fold_axis(Axis(0), f64::NEG_INFINITY, |a, &b| a.max(b));
    close(&rt.compute(&x.max(0)).unwrap(), &mx.into_dyn());
    let mn = g.fold_axis(Axis(1), f64::INFINITY, |a, &b| a.min(b));
    close(&rt.compute(&x.min(1)).unwrap(), &mn.into_dyn());
    let pr = g.mapv(|v| 1.0 + v / 100.0);
    let xp = array::from_ndarray(pr.clone(), 3).unwrap();
    close(
        &rt.compute(&xp.prod(0)).unwrap(),
        &pr.map_axis(Axis(0), |l| l.product()).into_dyn(),
    );
    // Argmin / argmax along an axis and flat.
    let am = rt.compute(&x.argmax(Some(0))).unwrap();
    let want: Vec<i64> = (0..9)
        .map(|j| {
            let c = g.column(j);
            let mut b = 0;
            for i in 0..c.len() {
                if c[i] > c[b] {
                    b = i;
                }
            }
            b as i64
        })
        .collect();
    assert_eq!(am.into_raw_vec_and_offset().0, want);
    let flat = x.argmin(None).compute_scalar(&rt).unwrap() as usize;
    let minv = gd.iter().cloned().fold(f64::INFINITY, f64::min);
    assert_eq!(gd.iter().position(|&v| v == minv).unwrap(), flat);
    // Several axes of a 3-d array.
    let t =
        ndarray::Array3::from_shape_fn((5, 4, 6), |(i, j, k)| (i * 31 + j * 7 + k) as f64 % 13.0);
    let xt = array::from_ndarray(t.clone(), (2, 3, 4)).unwrap();
    let want = t.sum_axis(Axis(2)).sum_axis(Axis(0));
    close(&rt.compute(&xt.sum([0, 2])).unwrap(), &want.into_dyn());
    // NaN handling.
    let mut gn = g.clone();
    gn[[3, 4]] = f64::NAN;
    let xn = array::from_ndarray(gn.clone(), (4, 2)).unwrap();
    assert!(xn.sum(All).compute_scalar(&rt).unwrap().is_nan());
    let ns = xn.nansum(All).compute_scalar(&rt).unwrap();
    assert!((ns - (g.sum() - g[[3, 4]])).abs() < 1e-9);
    let nm = xn.nanmean(All).compute_scalar(&rt).unwrap();
    assert!((nm - (g.sum() - g[[3, 4]]) / 98.0).abs() < 1e-9);
    assert!(xn.max(All).compute_scalar(&rt).unwrap().is_nan());
    // any / all, integer sums widen.
    let b = x.gt_scalar(4.0);
    assert!(b.any(All).compute_scalar(&rt).unwrap());
    assert!(!b.all(All).compute_scalar(&rt).unwrap());
    let u = array::from_ndarray(Array1::from_elem(300, 200u8), 7).unwrap();
    assert_eq!(u.sum(All).compute_scalar(&rt).unwrap(), 60000i64);
    // cumsum.
    let mut cs = g.clone();
    cs.accumulate_axis_inplace(Axis(0), |&p, c| *c += p);
    close(&rt.compute(&x.cumsum(0)).unwrap(), &cs.into_dyn());
    // Errors at build time.
    let err = rt.compute(&x.sum(2)).unwrap_err().to_string();
    assert!(
        err.contains("axis 2") && err.contains("2 dimensions"),
        "{err}"
    );
    let empty = array::zeros::<f64>(&[0, 3], 2).unwrap();
    assert!(rt.compute(&empty.max(0)).is_err());
    assert_eq!(empty.sum(All).compute_scalar(&rt).unwrap(), 0.0);
    // 1-d and 0-d.
    let v = array::arange::<f64>(0.0, 10.0, 1.0, 3).unwrap();
    assert_eq!(v.sum(0).compute_scalar(&rt).unwrap(), 45.0);
    let z = array::creation::scalar(4.0f64);
    assert_eq!(z.sum(All).compute_scalar(&rt).unwrap(), 4.0);
    // A fused random reduction keeps axis-0 rows apart (strips of many rows).
    let r = random::uniform(&[300, 500], (170, 300), 9).unwrap();
    let rm = rt.compute(&r).unwrap();
    close(
        &rt.compute(&r.max(1)).unwrap(),
        &rm.fold_axis(Axis(1), f64::NEG_INFINITY, |a, &b| a.max(b)),
    );
    close(
        &rt.compute(&r.var(0, 0.0)).unwrap(),
        &rm.var_axis(Axis(0), 0.0),
    );
    close(
        &rt.compute(&r.mean(1)).unwrap(),
        &rm.mean_axis(Axis(1)).unwrap(),
    );
}

#[test]
fn shapes_slicing_and_rechunk() {
    let rt = rt();
    let g = grid(11, 9);
    let x = array::from_ndarray(g.clone(), (4, 2)).unwrap();
    close(&rt.compute(&x.t()).unwrap(), &g.t().to_owned().into_dyn());
    close(
        &rt.compute(&x.slice(s![1..8;2, ..])).unwrap(),
        &g.slice(s![1..8;2, ..]).to_owned().into_dyn(),
    );
    close(
        &rt.compute(&x.slice(s![..;-3, 2..7])).unwrap(),
        &g.slice(s![..;-3, 2..7]).to_owned().into_dyn(),
    );
    close(
        &rt.compute(&x.slice(s![3, 1..])).unwrap(),
        &g.slice(s![3, 1..]).to_owned().into_dyn(),
    );
    close(
        &rt.compute(&x.slice(s![-2.., ndarray::NewAxis, 4])).unwrap(),
        &g.slice(s![-2.., ndarray::NewAxis, 4]).to_owned().into_dyn(),
    );
    close(
        &rt.compute(&x.slice(s![5..5, ..])).unwrap(),
        &g.slice(s![5..5, ..]).to_owned().into_dyn(),
    );
    let idx = [7, 0, 0, 10, 3];
    close(
        &rt.compute(&x.take(&idx, 0)).unwrap(),
        &g.select(Axis(0), &idx).into_dyn(),
    );
    close(
        &rt.compute(&x.take(&[8, 1], 1)).unwrap(),
        &g.select(Axis(1), &[8, 1]).into_dyn(),
    );
    assert!(rt.compute(&x.take(&[11], 0)).is_err());
    for c in [
        vec![vec![11], vec![9]],
        vec![vec![1; 11], vec![2, 2, 2, 3]],
        vec![vec![5, 6], vec![1, 8]],
    ] {
        let y = x.rechunk(c.clone());
        assert_eq!(y.chunks(), c.as_slice());
        close(&rt.compute(&y).unwrap(), &g.clone().into_dyn());
    }
    // A staged all-to-all rechunk.
    let big = array::from_ndarray(
        Array2::from_shape_fn((64, 64), |(i, j)| (i * 64 + j) as f64),
        (1, 64),
    )
    .unwrap();
    let cols = big.rechunk((64, 1));
    assert_eq!(cols.numblocks(), vec![1, 64]);
    assert_eq!(rt.compute(&cols).unwrap(), rt.compute(&big).unwrap());
    // concatenate / stack.
    let y = array::from_ndarray(grid(3, 9), 2).unwrap();
    let c = array::concatenate(&[x.clone(), y], 0);
    let want = ndarray::concatenate(Axis(0), &[g.view(), grid(3, 9).view()]).unwrap();
    close(&rt.compute(&c).unwrap(), &want.into_dyn());
    let st = array::stack(&[x.clone(), &x * 2.0], 1);
    let want = ndarray::stack(Axis(1), &[g.view(), (&g * 2.0).view()]).unwrap();
    close(&rt.compute(&st).unwrap(), &want.into_dyn());
    assert!(rt
        .compute(&array::concatenate(&[x.clone(), x.t()], 0))
        .is_err());
    // reshape where chunks allow; a clear error otherwise.
    let v = array::from_ndarray(Array1::from_shape_fn(24, |i| i as f64), 6).unwrap();
    let r = v.reshape(&[4, 6]);
    close(
        &rt.compute(&r).unwrap(),
        &Array1::from_shape_fn(24, |i| i as f64)
            .into_shape_with_order((4, 6))
            .unwrap()
            .into_dyn(),
    );
    let back = r.reshape(&[-1]);
    assert_eq!(rt.compute(&back).unwrap().shape(), &[24]);
    let m = array::from_ndarray(
        Array2::from_shape_fn((4, 6), |(i, j)| (i * 6 + j) as f64),
        (2, 3),
    )
    .unwrap();
    let err = rt.compute(&m.reshape(&[24])).unwrap_err().to_string();
    assert!(err.contains("rechunk"), "{err}");
    assert!(rt.compute(&m.reshape(&[5, 5])).is_err());
    let ok = m.rechunk((2, 6)).reshape(&[24]);
    assert_eq!(
        rt.compute(&ok).unwrap().into_raw_vec_and_offset().0,
        (0..24).map(|i| i as f64).collect::<Vec<_>>()
    );
    // Persist keeps results.
    let p = (&x * 2.0).persist(&rt).unwrap();
    assert_eq!(p.task_count(), p.nblocks());
    close(&rt.compute(&p).unwrap(), &(&g * 2.0).into_dyn());
}

#[test]
fn linear_algebra() {
    let rt = rt();
    let a = grid(13, 9);
    let b = grid(9, 7) * 0.1;
    let xa = array::from_ndarray(a.clone(), (4, 4)).unwrap();
    let xb = array::from_ndarray(b.clone(), (3, 5)).unwrap();
    close(&rt.compute(&xa.dot(&xb)).unwrap(), &a.dot(&b).into_dyn());
    close(
        &rt.compute(&xa.dot(&xa.t())).unwrap(),
        &a.dot(&a.t()).into_dyn(),
    );
    let v = Array1::from_shape_fn(9, |i| i as f64 - 3.0);
    let xv = array::from_ndarray(v.clone(), 4).unwrap();
    close(&rt.compute(&xa.dot(&xv)).unwrap(), &a.dot(&v).into_dyn());
    close(
        &rt.compute(&xv.dot(&xv)).unwrap(),
        &ArrayD::from_elem(IxDyn(&[]), v.dot(&v)),
    );
    let err = rt.compute(&xa.dot(&xa)).unwrap_err().to_string();
    assert!(err.contains("(13, 9)"), "{err}");
    // tensordot over two axes.
    let t = ndarray::Array3::from_shape_fn((4, 5, 6), |(i, j, k)| (i + 2 * j + 3 * k) as f64 % 5.0);
    let u = Array2::from_shape_fn((5, 6), |(j, k)| (j * k) as f64 % 3.0);
    let xt = array::from_ndarray(t.clone(), (3, 2, 4)).unwrap();
    let xu = array::from_ndarray(u.clone(), (2, 3)).unwrap();
    let got = rt
        .compute(&linalg::tensordot(&xt, &xu, &[1, 2], &[0, 1]))
        .unwrap();
    let want = Array1::from_shape_fn(4, |i| {
        let mut s = 0.0;
        for j in 0..5 {
            for k in 0..6 {
                s += t[[i, j, k]] * u[[j, k]];
            }
        }
        s
    });
    close(&got, &want.into_dyn());
    // The seed talk's expression on small odd shapes.
    let x = array::ones::<f64>(&[50, 50], 16).unwrap();
    let y = (x.dot(&(x.t() + 1.0)) - x.mean(All)).std(All, 0.0);
    assert!(y.compute_scalar(&rt).unwrap().abs() < 1e-9);
    // TSQR and SVD of a tall-and-skinny matrix.
    let tall = random::uniform(&[403, 6], (100, 6), 3).unwrap();
    let tm = rt
        .compute(&tall)
        .unwrap()
        .into_dimensionality::<ndarray::Ix2>()
        .unwrap();
    let (q, r) = linalg::tsqr(&tall).unwrap();
    let (qm, rm) = rt.compute(&(q.clone(), r)).unwrap();
    let qm = qm.into_dimensionality::<ndarray::Ix2>().unwrap();
    let rm = rm.into_dimensionality::<ndarray::Ix2>().unwrap();
    close(&qm.dot(&rm).into_dyn(), &tm.clone().into_dyn());
    close(
        &qm.t().dot(&qm).into_dyn(),
        &Array2::<f64>::eye(6).into_dyn(),
    );
    let sv = rt.compute(&linalg::svd_values(&tall).unwrap()).unwrap();
    let (uu, ss, vt) = linalg::svd(&tall).unwrap();
    let (uu, ss, vt) = rt.compute(&(uu, ss, vt)).unwrap();
    close(&ss, &sv);
    let uu = uu.into_dimensionality::<ndarray::Ix2>().unwrap();
    let vt = vt.into_dimensionality::<ndarray::Ix2>().unwrap();
    let sd = Array2::from_diag(&ss.into_dimensionality::<ndarray::Ix1>().unwrap());
    close(&uu.dot(&sd).dot(&vt).into_dyn(), &tm.clone().into_dyn());
    // More blocks than fit in one stack: recursion.
    let many = random::uniform(&[200, 8], (10, 8), 4).unwrap();
    let mm = rt
        .compute(&many)
        .unwrap()
        .into_dimensionality::<ndarray::Ix2>()
        .unwrap();
    let (q, r) = linalg::tsqr(&many).unwrap();
    let (qm, rm) = rt.compute(&(q, r)).unwrap();
    let qm = qm.into_dimensionality::<ndarray::Ix2>().unwrap();
    let rm = rm.into_dimensionality::<ndarray::Ix2>().unwrap();
    close(&qm.dot(&rm).into_dyn(), &mm.into_dyn());
    // Randomized SVD recovers an exactly low-rank matrix.
    let l = Array2::from_shape_fn((60, 3), |(i, j)| {
        ((i + 1) * (j + 2)) as f64 % 7.0 + j as f64
    });
    let rr = Array2::from_shape_fn((3, 40), |(i, j)| ((i + 3) * (j + 1)) as f64 % 5.0 - 2.0);
    let low = l.dot(&rr);
    let xl = array::from_ndarray(low.clone(), (16, 40)).unwrap();
    let (u, s, v) = linalg::svd_compressed(&xl, 3, 5, 1, 7).unwrap();
    let (u, s, v) = rt.compute(&(u, s, v)).unwrap();
    let u = u.into_dimensionality::<ndarray::Ix2>().unwrap();
    let v = v.into_dimensionality::<ndarray::Ix2>().unwrap();
    let sd = Array2::from_diag(&s.into_dimensionality::<ndarray::Ix1>().unwrap());
    close(&u.dot(&sd).dot(&v).into_dyn(), &low.into_dyn());
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(24))]

    #[test]
    fn sums_and_means_for_any_chunks(r in 1usize..13, c in 1usize..11, cr in 1usize..6, cc in 1usize..6, axis in 0usize..3) {
        let rt = Runtime::builder().threads(2).build().unwrap();
        let g = grid(r, c);
        let x = array::from_ndarray(g.clone(), (cr, cc)).unwrap();
        let (got, want) = match axis {
            0 => (rt.compute(&x.sum(0)).unwrap(), g.sum_axis(Axis(0)).into_dyn()),
            1 => (rt.compute(&x.mean(1)).unwrap(), g.mean_axis(Axis(1)).unwrap().into_dyn()),
            _ => (rt.compute(&x.var(All, 0.0)).unwrap(), ArrayD::from_elem(IxDyn(&[]), g.var(0.0))),
        };
        close(&got, &want);
    }

    #[test]
    fn rechunk_and_slice_preserve_data(r in 1usize..12, c in 1usize..12, a in 1usize..5, b in 1usize..5, d in 1usize..7, e in 1usize..7, st in 1isize..4) {
        let rt = Runtime::builder().threads(2).build().unwrap();
        let g = grid(r, c);
        let x = array::from_ndarray(g.clone(), (a, b)).unwrap();
        prop_assert_eq!(rt.compute(&x.rechunk((d, e))).unwrap(), g.clone().into_dyn());
        let sl = x.slice(s![..;st, ..;-st]);
        prop_assert_eq!(rt.compute(&sl).unwrap(), g.slice(s![..;st, ..;-st]).to_owned().into_dyn());
        let y = array::from_ndarray(g.t().to_owned(), (d, e)).unwrap();
        let z = &x + &y.t();
        prop_assert_eq!(rt.compute(&z).unwrap(), (&g * 2.0).into_dyn());
    }

    #[test]
    fn products_match(m in 1usize..9, k in 1usize..9, n in 1usize..9, c in 1usize..5) {
        let rt = Runtime::builder().threads(2).build().unwrap();
        let a = grid(m, k);
        let b = grid(k, n);
        let xa = array::from_ndarray(a.clone(), c).unwrap();
        let xb = array::from_ndarray(b.clone(), c + 1).unwrap();
        close(&rt.compute(&xa.dot(&xb)).unwrap(), &a.dot(&b).into_dyn());
    }
}

#[allow(dead_code)]
fn _types(_: Array<f64>) {}

#[test]
fn npy_and_dir_round_trips() {
    let rt = rt();
    let dir = tempfile::tempdir().unwrap();
    let g = grid(13, 7);
    let x = array::from_ndarray(g.clone(), (4, 3)).unwrap();
    let p = dir.path().join("x.npy");
    x.to_npy(&rt, &p).unwrap();
    let h = array::io::read_header(&p).unwrap();
    assert_eq!(
        (h.descr.as_str(), h.shape.clone(), h.data_offset % 64),
        ("<f8", vec![13, 7], 0)
    );
    // Read back with other chunks: row runs, column pieces.
    for c in [(5, 7), (13, 2), (3, 4)] {
        let y = array::io::from_npy::<f64>(&p, c).unwrap();
        assert_eq!(rt.compute(&y).unwrap(), g.clone().into_dyn());
    }
    let err = array::io::from_npy::<i32>(&p, 4).err().unwrap().to_string();
    assert!(err.contains("<f8") && err.contains("int32"), "{err}");
    let i = array::arange::<i32>(0.0, 10.0, 1.0, 3).unwrap();
    let pi = dir.path().join("i.npy");
    i.to_npy(&rt, &pi).unwrap();
    assert_eq!(
        rt.compute(&array::io::from_npy::<i32>(&pi, 4).unwrap())
            .unwrap(),
        rt.compute(&i).unwrap()
    );
    let d = dir.path().join("blocks");
    (&x * 3.0).to_dir(&rt, &d).unwrap();
    let back = array::io::from_dir::<f64>(&d).unwrap();
    assert_eq!(back.chunks(), x.chunks());
    close(&rt.compute(&back).unwrap(), &(&g * 3.0).into_dyn());
    assert!(array::io::from_dir::<f32>(&d).is_err());
}

/// The full array padded by `d` on every side with `boundary`'s rule.
fn pad(g: &Array2<f64>, d: usize, boundary: array::Boundary) -> Array2<f64> {
    let (r, c) = g.dim();
    Array2::from_shape_fn((r + 2 * d, c + 2 * d), |(i, j)| {
        let map = |x: isize, n: usize| -> Option<usize> {
            let n = n as isize;
            match boundary {
                array::Boundary::Periodic => Some(x.rem_euclid(n) as usize),
                array::Boundary::Nearest => Some(x.clamp(0, n - 1) as usize),
                array::Boundary::Reflect => Some(if x < 0 {
                    -x - 1
                } else if x >= n {
                    2 * n - x - 1
                } else {
                    x
                } as usize),
                _ => (x >= 0 && x < n).then_some(x as usize),
            }
        };
        let (x, y) = (i as isize - d as isize, j as isize - d as isize);
        match (map(x, r), map(y, c)) {
            (Some(a), Some(b)) => g[[a, b]],
            _ => match boundary {
                array::Boundary::Constant(v) => v,
                _ => 0.0,
            },
        }
    })
}

#[test]
fn map_overlap_matches_a_padded_stencil() {
    let rt = rt();
    let g = grid(11, 9);
    let x = array::from_ndarray(g.clone(), (4, 3)).unwrap();
    let box3 = |e: ArrayD<f64>| {
        let e2 = e.clone().into_dimensionality::<ndarray::Ix2>().unwrap();
        let (r, c) = e2.dim();
        let mut out = e2.clone();
        for i in 1..r.saturating_sub(1) {
            for j in 1..c.saturating_sub(1) {
                out[[i, j]] = e2.slice(s![i - 1..i + 2, j - 1..j + 2]).sum();
            }
        }
        out.into_dyn()
    };
    for b in [
        array::Boundary::Periodic,
        array::Boundary::Reflect,
        array::Boundary::Nearest,
        array::Boundary::Constant(2.5),
    ] {
        let got = rt.compute(&x.map_overlap(&[1, 1], b, box3)).unwrap();
        let p = pad(&g, 1, b);
        let want = Array2::from_shape_fn((11, 9), |(i, j)| p.slice(s![i..i + 3, j..j + 3]).sum());
        close(&got, &want.into_dyn());
    }
    // No boundary: interior cells are the stencil, edge cells stay as they were.
    let got = rt
        .compute(&x.map_overlap(&[1, 1], array::Boundary::None, box3))
        .unwrap();
    let want = box3(g.clone().into_dyn());
    close(&got, &want);
    let err = rt
        .compute(&x.map_overlap(&[4, 1], array::Boundary::None, |e| e))
        .unwrap_err()
        .to_string();
    assert!(err.contains("rechunk"), "{err}");
}

#[test]
fn transposes_read_their_source_blocks() {
    let rt = rt();
    let t = ndarray::Array3::from_shape_fn((4, 5, 6), |(i, j, k)| (i * 30 + j * 6 + k) as f64);
    let x = array::from_ndarray(t.clone(), (3, 2, 4)).unwrap();
    let y = x.transpose(&[2, 0, 1]);
    let want = t.view().permuted_axes([2, 0, 1]).to_owned();
    close(&rt.compute(&y).unwrap(), &want.clone().into_dyn());
    // Elementwise on a transpose of a transpose, and with an untransposed operand.
    let back = y.transpose(&[1, 2, 0]);
    close(
        &rt.compute(&(&back - &x)).unwrap(),
        &ArrayD::zeros(IxDyn(&[4, 5, 6])),
    );
    let z = array::from_ndarray(want.clone(), (2, 2, 2)).unwrap();
    close(&rt.compute(&(&y + &z)).unwrap(), &(&want * 2.0).into_dyn());
    let g = grid(7, 7);
    let m = array::from_ndarray(g.clone(), 3).unwrap();
    close(
        &rt.compute(&(&m + &m.t()).sum(All)).unwrap(),
        &ArrayD::from_elem(IxDyn(&[]), (&g + &g.t()).sum()),
    );
    close(
        &rt.compute(&m.t().dot(&m.t())).unwrap(),
        &g.t().dot(&g.t()).into_dyn(),
    );
}

#[test]
fn other_element_types() {
    let rt = rt();
    let g = grid(6, 5).mapv(|v| v as f32);
    let x = array::from_ndarray(g.clone(), 4).unwrap();
    let d = rt.compute(&x.dot(&x.t())).unwrap();
    let want = g.dot(&g.t()).into_dyn();
    assert!(d.iter().zip(want.iter()).all(|(a, b)| (a - b).abs() < 1e-3));
    assert_eq!(x.dtype(), "float32");
    let i = array::from_ndarray(
        Array2::from_shape_fn((7, 3), |(a, b)| (a * 3 + b) as i32 - 10),
        2,
    )
    .unwrap();
    assert_eq!(
        i.sum(All).compute_scalar(&rt).unwrap(),
        (0..21).map(|v| v - 10).sum::<i64>()
    );
    assert_eq!(i.argmax(None).compute_scalar(&rt).unwrap(), 20);
    assert_eq!(rt.compute(&(&i * 2 - 1)).unwrap()[[0, 0]], -21);
    let u = array::full(&[5], 2, 7u8).unwrap();
    assert_eq!(u.max(All).compute_scalar(&rt).unwrap(), 7u8);
    let b = u.gt_scalar(3);
    assert!(b.all(All).compute_scalar(&rt).unwrap());
    assert_eq!(b.count(All).compute_scalar(&rt).unwrap(), 5);
    let f = i.astype::<f64>().mean(0);
    assert_eq!(rt.compute(&f).unwrap().len(), 3);
}

#[test]
fn generated_operands_are_made_inside_elementwise_tasks() {
    let rt = rt();
    let x = random::uniform(&[9, 9], (4, 3), 21).unwrap();
    let v = random::normal(&[9], 4, 22, 0.0, 1.0).unwrap();
    let (xm, vm) = rt.compute(&(x.clone(), v.clone())).unwrap();
    let xm = xm.into_dimensionality::<ndarray::Ix2>().unwrap();
    close(
        &rt.compute(&(&x + &x.t())).unwrap(),
        &(&xm + &xm.t()).into_dyn(),
    );
    close(
        &rt.compute(&(&x.t() - &x)).unwrap(),
        &(&xm.t() - &xm).into_dyn(),
    );
    close(&rt.compute(&(&x * &v)).unwrap(), &(&xm * &vm).into_dyn());
    let o = array::ones::<f64>(&[9, 9], (4, 3)).unwrap();
    close(
        &rt.compute(&(&o / &(&x + 1.0))).unwrap(),
        &xm.mapv(|a| 1.0 / (a + 1.0)).into_dyn(),
    );
    let s = (&x + &x.t()).sum(All).compute_scalar(&rt).unwrap();
    assert!((s - 2.0 * xm.sum()).abs() < 1e-9);
}

/// Errors found while a graph is built: a real kind, no task prefix, no key.
fn assert_build_error(err: &brisk::Error, kind: fn(&brisk::ErrorKind) -> bool, needle: &str) {
    let text = err.to_string();
    assert!(kind(err.kind()), "wrong kind: {:?} for {text}", err.kind());
    assert_eq!(err.failed_key(), None, "{text}");
    assert!(!text.contains("task "), "task prefix in {text:?}");
    assert!(!text.contains("(op `"), "op prefix in {text:?}");
    assert!(text.contains(needle), "{needle:?} not in {text:?}");
}

fn is_shape(k: &brisk::ErrorKind) -> bool {
    matches!(k, brisk::ErrorKind::Shape(_))
}

#[test]
fn a_shape_error_is_kind_shape_and_printed_once() {
    let rt = rt();
    let x = array::zeros::<f64>(&[5, 7], 2).unwrap();
    let bad = array::zeros::<f64>(&[4, 7], 2).unwrap();
    let want = "shape error: operands could not be broadcast together with shapes (5, 7) (4, 7)";
    let err = rt.compute(&(&x + &bad)).unwrap_err();
    assert_build_error(&err, is_shape, "(4, 7)");
    assert_eq!(err.to_string(), want);
    // Passed on through later operations and `ok()`: still one message of the same kind.
    let later = (&(&x + &bad) * 2.0).sum(All);
    let err = rt.compute(&later).unwrap_err();
    assert_build_error(&err, is_shape, "(4, 7)");
    assert_eq!(err.to_string(), want);
    let err = (&x + &bad).ok().unwrap_err();
    assert_eq!(err.to_string(), want);
}

#[test]
fn build_time_array_errors_have_real_kinds_and_no_key() {
    let rt = rt();
    let x = array::zeros::<f64>(&[5, 7], 2).unwrap();
    let chunks = array::zeros::<f64>(&[5, 7], vec![vec![2, 2], vec![7]])
        .err()
        .unwrap();
    assert_build_error(&chunks, is_shape, "(5, 7)");
    assert_build_error(&rt.compute(&x.sum(2)).unwrap_err(), is_shape, "axis 2");
    assert_build_error(
        &rt.compute(&x.reshape(&[6, 6])).unwrap_err(),
        is_shape,
        "reshape",
    );
    assert_build_error(&rt.compute(&x.dot(&x)).unwrap_err(), is_shape, "(5, 7)");
    assert_build_error(&x.block(&[9, 0]).err().unwrap(), is_shape, "[9, 0]");
    assert_build_error(&x.compute_scalar(&rt).unwrap_err(), is_shape, "(5, 7)");
    let arange = array::arange::<f64>(0.0, 1.0, 0.0, 2).err().unwrap();
    assert_build_error(&arange, |k| matches!(k, brisk::ErrorKind::Input(_)), "step");

    let dir = tempfile::tempdir().unwrap();
    let missing = dir.path().join("missing.npy");
    let err = array::io::from_npy::<f64>(&missing, 2).err().unwrap();
    assert_build_error(
        &err,
        |k| matches!(k, brisk::ErrorKind::Io { .. }),
        "missing.npy",
    );
    let not_npy = dir.path().join("text.npy");
    std::fs::write(&not_npy, "hello, this is not numpy").unwrap();
    let err = array::io::from_npy::<f64>(&not_npy, 2).err().unwrap();
    assert_build_error(
        &err,
        |k| matches!(k, brisk::ErrorKind::Parse { .. }),
        "text.npy",
    );
    let p = dir.path().join("x.npy");
    x.to_npy(&rt, &p).unwrap();
    let err = array::io::from_npy::<i32>(&p, 2).err().unwrap();
    assert_build_error(
        &err,
        |k| matches!(k, brisk::ErrorKind::Parse { .. }),
        "int32",
    );
}
