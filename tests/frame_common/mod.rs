//! Helpers for the frame suites: a test table with nulls, odd partitionings of it, and an
//! order-insensitive comparison of frames with a relative float tolerance.
#![allow(dead_code)]

use brisk::frame::{self, Frame};
use brisk::Runtime;
use polars::prelude::*;

pub fn rt() -> Runtime {
    Runtime::builder().threads(2).build().unwrap()
}

/// A deterministic table of `n` rows: `k` (string key, 7 values + nulls), `g` (i64 key, 5
/// values + nulls), `x` (f64 with nulls), `y` (i64), `t` (datetime, sorted, 7 min apart).
pub fn table(n: usize) -> DataFrame {
    let mut state = 0x1234_5678_9abc_def0u64;
    let mut next = move || {
        state ^= state << 13;
        state ^= state >> 7;
        state ^= state << 17;
        state
    };
    let mut k = Vec::new();
    let mut g = Vec::new();
    let mut x = Vec::new();
    let mut y = Vec::new();
    let mut t = Vec::new();
    for i in 0..n {
        let r = next();
        k.push(if r % 11 == 0 {
            None
        } else {
            Some(format!("k{}", r % 7))
        });
        let r = next();
        g.push(if r % 13 == 0 {
            None
        } else {
            Some((r % 5) as i64)
        });
        let r = next();
        x.push(if r % 17 == 0 {
            None
        } else {
            Some((r % 100_000) as f64 / 997.0 - 50.0)
        });
        y.push((next() % 1000) as i64 - 500);
        t.push(1_700_000_000_000i64 + i as i64 * 7 * 60_000);
    }
    let t = Series::new("t".into(), t)
        .cast(&DataType::Datetime(TimeUnit::Milliseconds, None))
        .unwrap();
    DataFrame::new(
        n,
        vec![
            Series::new("k".into(), k).into(),
            Series::new("g".into(), g).into(),
            Series::new("x".into(), x).into(),
            Series::new("y".into(), y).into(),
            t.into(),
        ],
    )
    .unwrap()
}

/// The same table cut in odd ways: one partition, several, partitions of a few rows, and
/// empty partitions in between.
pub fn partitionings(df: &DataFrame) -> Vec<(String, Frame)> {
    let n = df.height();
    let empty = df.slice(0, 0);
    let mut with_empty = vec![
        empty.clone(),
        df.slice(0, n / 3),
        empty.clone(),
        empty.clone(),
    ];
    with_empty.push(df.slice((n / 3) as i64, n - n / 3 - 5));
    with_empty.push(empty.clone());
    with_empty.push(df.slice((n - 5) as i64, 5));
    with_empty.push(empty);
    vec![
        ("1 partition".into(), frame::from_polars(df.clone(), 1)),
        ("7 partitions".into(), frame::from_polars(df.clone(), 7)),
        (
            "partitions of ~3 rows".into(),
            frame::from_polars(df.clone(), n.div_ceil(3)),
        ),
        (
            "empty partitions".into(),
            frame::from_dataframes(with_empty).unwrap(),
        ),
    ]
}

/// Sorts by every column (nulls last) so row order does not matter.
pub fn sorted(df: &DataFrame) -> DataFrame {
    let cols: Vec<PlSmallStr> = df.get_column_names_owned();
    df.sort(
        cols,
        SortMultipleOptions::default()
            .with_nulls_last(true)
            .with_maintain_order(true),
    )
    .unwrap()
}

fn close(a: f64, b: f64) -> bool {
    if a.is_nan() && b.is_nan() {
        return true;
    }
    a == b || (a - b).abs() <= 1e-9 * a.abs().max(b.abs()).max(1e-300)
}

/// Asserts equal schemas and values (after sorting both by all columns unless `ordered`),
/// floats within 1e-9 relative.
pub fn assert_same(what: &str, got: &DataFrame, want: &DataFrame, ordered: bool) {
    assert_eq!(
        got.schema(),
        want.schema(),
        "{what}: schemas differ\ngot {got}\nwant {want}"
    );
    assert_eq!(
        got.height(),
        want.height(),
        "{what}: row counts differ\ngot {got}\nwant {want}"
    );
    let (g, w) = if ordered {
        (got.clone(), want.clone())
    } else {
        (sorted(got), sorted(want))
    };
    for (cg, cw) in g.columns().iter().zip(w.columns()) {
        let (sg, sw) = (cg.as_materialized_series(), cw.as_materialized_series());
        if sg.dtype().is_float() {
            let a = sg.cast(&DataType::Float64).unwrap();
            let b = sw.cast(&DataType::Float64).unwrap();
            for (i, (x, y)) in a
                .f64()
                .unwrap()
                .iter()
                .zip(b.f64().unwrap().iter())
                .enumerate()
            {
                let ok = match (x, y) {
                    (None, None) => true,
                    (Some(x), Some(y)) => close(x, y),
                    _ => false,
                };
                assert!(
                    ok,
                    "{what}: column {} row {i}: got {x:?}, want {y:?}\ngot {g}\nwant {w}",
                    sg.name()
                );
            }
        } else {
            assert!(
                sg.equals_missing(sw),
                "{what}: column {} differs\ngot {g}\nwant {w}",
                sg.name()
            );
        }
    }
}
