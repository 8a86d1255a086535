//! Behaviour of `brisk::frame`: every operation compared with polars running the same query on
//! the whole table in memory, over odd partitionings (one partition, several, partitions of a
//! few rows, empty partitions), with nulls in keys and values.

mod frame_common;

use brisk::frame::{self, col, len, lit, JoinHow, JoinOptions};
use frame_common::{assert_same, partitionings, rt, table};
use polars::prelude::*;

#[test]
fn round_trip_over_partitionings() {
    let rt = rt();
    let df = table(200);
    for (name, f) in partitionings(&df) {
        let got = rt.compute(&f).unwrap();
        assert_same(&name, &got, &df, true);
        assert_eq!(rt.compute(&f.len()).unwrap(), 200, "{name}");
    }
}

#[test]
fn per_partition_ops_match_polars() {
    let rt = rt();
    let df = table(300);
    let want = df
        .clone()
        .lazy()
        .filter(col("x").gt(lit(0.0)))
        .with_columns([
            (col("x") * lit(2.0)).alias("x2"),
            col("y").abs().alias("ay"),
        ])
        .drop(Selector::ByName {
            names: ["g".into()].into(),
            strict: true,
        })
        .rename(["y"], ["why"], true)
        .select([col("k"), col("x2"), col("why"), col("ay")])
        .collect()
        .unwrap();
    for (name, f) in partitionings(&df) {
        let q = f
            .filter(col("x").gt(lit(0.0)))
            .unwrap()
            .with_columns([
                (col("x") * lit(2.0)).alias("x2"),
                col("y").abs().alias("ay"),
            ])
            .unwrap()
            .drop(&["g"])
            .unwrap()
            .rename(&[("y", "why")])
            .unwrap()
            .select([col("k"), col("x2"), col("why"), col("ay")])
            .unwrap();
        assert_same(&name, &rt.compute(&q).unwrap(), &want, true);
        assert_eq!(rt.compute(&q.len()).unwrap() as usize, want.height());
    }
}

#[test]
fn map_partitions_and_head() {
    let rt = rt();
    let df = table(100);
    for (name, f) in partitionings(&df) {
        let m = f
            .map_partitions(|d| d.lazy().with_column(col("y") + lit(1)).collect())
            .unwrap();
        let want = df
            .clone()
            .lazy()
            .with_column(col("y") + lit(1))
            .collect()
            .unwrap();
        assert_same(&name, &rt.compute(&m).unwrap(), &want, true);
        let h = rt.compute(&f.head(13)).unwrap();
        assert_same(&name, &h, &df.head(Some(13)), true);
    }
}

#[test]
fn group_by_decomposable_aggregations_match_polars() {
    let rt = rt();
    let df = table(500);
    let aggs = || {
        vec![
            col("x").sum().alias("sum"),
            col("y").sum().alias("ysum"),
            col("x").mean().alias("mean"),
            col("x").count().alias("count"),
            len().alias("len"),
            col("x").min().alias("min"),
            col("y").max().alias("max"),
            col("x").var(1).alias("var"),
            col("x").std(0).alias("std0"),
            col("y").var(1).alias("yvar"),
            col("x").first().alias("first"),
            col("y").last().alias("last"),
            (col("x") * lit(2.0)).mean().alias("mean2x"),
        ]
    };
    for keys in [vec!["k"], vec!["g"], vec!["k", "g"]] {
        let want = df
            .clone()
            .lazy()
            .group_by(keys.iter().map(|k| col(*k)).collect::<Vec<_>>())
            .agg(aggs())
            .collect()
            .unwrap();
        for (name, f) in partitionings(&df) {
            let got = rt
                .compute(&f.group_by(keys.clone()).agg(aggs()).unwrap())
                .unwrap();
            assert_same(&format!("{name} by {keys:?}"), &got, &want, false);
            let split = f.group_by(keys.clone()).split_out(3).agg(aggs()).unwrap();
            assert_eq!(split.num_partitions(), 3);
            assert_same(
                &format!("{name} by {keys:?} split_out 3"),
                &rt.compute(&split).unwrap(),
                &want,
                false,
            );
        }
    }
}

#[test]
fn group_by_holistic_aggregations_are_exact() {
    let rt = rt();
    let df = table(400);
    let aggs = || {
        vec![
            col("x").n_unique().alias("nu"),
            col("y").median().alias("med"),
            col("y")
                .quantile(lit(0.25), QuantileMethod::Linear)
                .alias("q25"),
            col("x").sum().alias("s"),
        ]
    };
    let want = df
        .clone()
        .lazy()
        .group_by([col("k")])
        .agg(aggs())
        .collect()
        .unwrap();
    for (name, f) in partitionings(&df) {
        let got = rt.compute(&f.group_by(["k"]).agg(aggs()).unwrap()).unwrap();
        assert_same(&name, &got, &want, false);
    }
}

#[test]
fn whole_frame_agg_value_counts_unique() {
    let rt = rt();
    let df = table(300);
    let want = df
        .clone()
        .lazy()
        .select([col("x").sum(), col("y").mean().alias("ym"), len()])
        .collect()
        .unwrap();
    let want_vc = df
        .clone()
        .lazy()
        .group_by([col("k")])
        .agg([len().alias("count")])
        .collect()
        .unwrap();
    let dup = df.vstack(&df.slice(10, 50)).unwrap();
    let want_u = dup
        .clone()
        .lazy()
        .unique_stable(None, UniqueKeepStrategy::First)
        .collect()
        .unwrap();
    let want_u_kg = dup
        .clone()
        .lazy()
        .unique_stable(
            Some(Selector::ByName {
                names: ["k".into(), "g".into()].into(),
                strict: true,
            }),
            UniqueKeepStrategy::First,
        )
        .collect()
        .unwrap();
    for (name, f) in partitionings(&df) {
        let got = rt
            .compute(
                &f.agg([col("x").sum(), col("y").mean().alias("ym"), len()])
                    .unwrap(),
            )
            .unwrap();
        assert_same(&name, &got, &want, true);
        let got = rt.compute(&f.value_counts("k").unwrap()).unwrap();
        assert_same(&name, &got, &want_vc, false);
    }
    for (name, f) in partitionings(&dup) {
        assert_same(
            &name,
            &rt.compute(&f.unique().unwrap()).unwrap(),
            &want_u,
            false,
        );
        let got = rt
            .compute(&f.drop_duplicates(Some(&["k", "g"])).unwrap())
            .unwrap();
        // First occurrence kept: the whole rows must match, not just the keys.
        assert_same(&name, &got, &want_u_kg, false);
    }
}

#[test]
fn joins_match_polars_broadcast_and_shuffle() {
    let rt = rt();
    let left = table(300);
    let right = table(120)
        .lazy()
        .select([col("k"), col("g"), (col("y") * lit(10)).alias("z")])
        .unique_stable(None, UniqueKeepStrategy::First)
        .collect()
        .unwrap();
    for how in [
        JoinHow::Inner,
        JoinHow::Left,
        JoinHow::Full,
        JoinHow::Semi,
        JoinHow::Anti,
    ] {
        let jt = match how {
            JoinHow::Inner => JoinType::Inner,
            JoinHow::Left => JoinType::Left,
            JoinHow::Full => JoinType::Full,
            JoinHow::Semi => JoinType::Semi,
            JoinHow::Anti => JoinType::Anti,
        };
        for keys in [vec!["k"], vec!["k", "g"]] {
            let ke: Vec<Expr> = keys.iter().map(|k| col(*k)).collect();
            let want = left
                .clone()
                .lazy()
                .join(
                    right.clone().lazy(),
                    ke.clone(),
                    ke.clone(),
                    JoinArgs::new(jt.clone()),
                )
                .collect()
                .unwrap();
            for (name, lf) in partitionings(&left) {
                for (rname, rf) in [
                    ("right 1 partition", frame::from_polars(right.clone(), 1)),
                    ("right 4 partitions", frame::from_polars(right.clone(), 4)),
                ] {
                    let what = format!("{how:?} on {keys:?}, left {name}, {rname}");
                    let opts = JoinOptions::new(how);
                    let got = rt
                        .compute(&lf.join(&rf, &keys, &keys, opts).unwrap())
                        .unwrap();
                    assert_same(&what, &got, &want, false);
                    let shuffled = JoinOptions::new(how).broadcast(false).partitions(3);
                    let got = rt
                        .compute(&lf.join(&rf, &keys, &keys, shuffled).unwrap())
                        .unwrap();
                    assert_same(&format!("{what}, shuffle"), &got, &want, false);
                }
            }
        }
    }
}

#[test]
fn join_checks_keys_at_build_time() {
    let left = frame::from_polars(table(10), 2);
    let right = frame::from_polars(table(10), 2);
    let e = left
        .join(&right, &["nope"], &["k"], JoinOptions::default())
        .unwrap_err()
        .to_string();
    assert!(e.contains("nope"), "{e}");
    let e = left
        .join(&right, &["k"], &["g"], JoinOptions::default())
        .unwrap_err()
        .to_string();
    assert!(e.contains("`k`") && e.contains("`g`"), "{e}");
    assert!(left
        .join(
            &right,
            &["k"],
            &["k"],
            JoinOptions::new(JoinHow::Full).broadcast(true)
        )
        .is_err());
}

#[test]
fn sort_matches_polars_and_detects_sorted_input() {
    let rt = rt();
    let df = table(400);
    for (name, f) in partitionings(&df) {
        for (by, desc) in [("x", false), ("y", true), ("k", false)] {
            let want = df
                .sort(
                    [by],
                    SortMultipleOptions::default()
                        .with_order_descending(desc)
                        .with_nulls_last(true)
                        .with_maintain_order(true),
                )
                .unwrap();
            let s = f.sort(by, desc).unwrap();
            let got = rt.compute(&s).unwrap();
            // Ties may come in any order: compare the sort column in order, rows as a set.
            assert!(
                got.column(by)
                    .unwrap()
                    .as_materialized_series()
                    .equals_missing(want.column(by).unwrap().as_materialized_series()),
                "{name}: sort by {by}"
            );
            assert_same(&format!("{name} sort {by}"), &got, &want, false);
        }
        // Already sorted by t: partitions kept as they were, so no boundaries.
        let s = f.sort("t", false).unwrap();
        let bounds = rt.compute(&s.divisions().unwrap()).unwrap();
        assert!(bounds.is_empty(), "{name}: sorted input was shuffled");
        assert_eq!(s.sorted_by(), Some("t"));
        assert_same(&name, &rt.compute(&s).unwrap(), &df, true);
        let small = rt.compute(&f.nsmallest(5, "x").unwrap()).unwrap();
        let want = df
            .sort(
                ["x"],
                SortMultipleOptions::default()
                    .with_nulls_last(true)
                    .with_maintain_order(true),
            )
            .unwrap()
            .head(Some(5));
        assert_same(&name, &small, &want, true);
        let large = rt.compute(&f.nlargest(3, "y").unwrap()).unwrap();
        let want = df
            .sort(
                ["y"],
                SortMultipleOptions::default()
                    .with_order_descending(true)
                    .with_nulls_last(true)
                    .with_maintain_order(true),
            )
            .unwrap()
            .head(Some(3));
        assert_same(&name, &large, &want, true);
    }
}

#[test]
fn rolling_across_partitions_matches_polars() {
    use brisk::frame::timeseries::{RollingAgg, Window};
    let rt = rt();
    let df = table(300);
    let opts = RollingOptionsFixedWindow {
        window_size: 10,
        min_periods: 10,
        ..Default::default()
    };
    let want = df
        .clone()
        .lazy()
        .with_columns([col("x").rolling_mean(opts.clone()).alias("rm")])
        .collect()
        .unwrap();
    let want_sum = df
        .clone()
        .lazy()
        .with_columns([col("y").rolling_sum(opts.clone()).alias("rs")])
        .collect()
        .unwrap();
    let want_dur = df
        .clone()
        .lazy()
        .rolling(
            col("t"),
            [],
            RollingGroupOptions {
                index_column: "t".into(),
                period: Duration::parse("1h"),
                offset: -Duration::parse("1h"),
                closed_window: ClosedWindow::Right,
            },
        )
        .agg([col("x").mean().alias("hm")])
        .collect()
        .unwrap();
    let want_dur = df
        .hstack(&[want_dur.column("hm").unwrap().clone()])
        .unwrap();
    for (name, f) in partitionings(&df) {
        let r = f
            .rolling("x", Window::Rows(10), RollingAgg::Mean, "rm")
            .unwrap();
        assert_same(&name, &rt.compute(&r).unwrap(), &want, true);
        let r = f
            .rolling("y", Window::Rows(10), RollingAgg::Sum, "rs")
            .unwrap();
        assert_same(&name, &rt.compute(&r).unwrap(), &want_sum, true);
        let r = f
            .rolling(
                "x",
                Window::Duration {
                    by: "t".into(),
                    period: "1h".into(),
                },
                RollingAgg::Mean,
                "hm",
            )
            .unwrap();
        assert_same(
            &format!("{name} 1h"),
            &rt.compute(&r).unwrap(),
            &want_dur,
            true,
        );
    }
}

#[test]
fn resample_matches_group_by_dynamic() {
    let rt = rt();
    let df = table(500);
    let want = df
        .clone()
        .lazy()
        .group_by_dynamic(
            col("t"),
            [],
            DynamicGroupOptions {
                index_column: "t".into(),
                every: Duration::parse("1h"),
                period: Duration::parse("1h"),
                offset: Duration::parse("0ns"),
                ..Default::default()
            },
        )
        .agg([col("x").mean().alias("m"), col("y").sum().alias("s"), len()])
        .collect()
        .unwrap();
    for (name, f) in partitionings(&df) {
        let r = f
            .resample(
                "t",
                "1h",
                [col("x").mean().alias("m"), col("y").sum().alias("s"), len()],
            )
            .unwrap();
        assert_same(&name, &rt.compute(&r).unwrap(), &want, true);
    }
}

#[test]
fn build_time_errors_name_the_column() {
    let f = frame::from_polars(table(10), 2);
    let e = f.filter(col("nope").gt(lit(1))).unwrap_err().to_string();
    assert!(e.contains("nope"), "{e}");
    let e = f.select([col("zzz")]).unwrap_err().to_string();
    assert!(e.contains("zzz"), "{e}");
    let e = f
        .group_by(["missing"])
        .agg([col("x").sum()])
        .unwrap_err()
        .to_string();
    assert!(e.contains("missing"), "{e}");
    let e = f
        .group_by(["k"])
        .agg([col("xx").mean()])
        .unwrap_err()
        .to_string();
    assert!(e.contains("xx"), "{e}");
    // A type mismatch: string column compared arithmetically.
    let e = f.with_column(col("k") * lit(2.5)).unwrap_err().to_string();
    assert!(e.contains("with_columns"), "{e}");
    assert!(f.drop(&["nope"]).unwrap_err().to_string().contains("nope"));
}

#[test]
fn describe_and_concat() {
    let rt = rt();
    let df = table(250);
    let want = df
        .clone()
        .lazy()
        .select([
            col("x").mean().alias("mean"),
            col("x").std(1).alias("std"),
            col("y").min().cast(DataType::Float64).alias("ymin"),
            col("x").null_count().cast(DataType::Float64).alias("nulls"),
        ])
        .collect()
        .unwrap();
    for (name, f) in partitionings(&df) {
        let d = rt.compute(&f.describe().unwrap()).unwrap();
        let x = d.column("x").unwrap().f64().unwrap().clone();
        let y = d.column("y").unwrap().f64().unwrap().clone();
        let got = DataFrame::new(
            1,
            vec![
                Column::new("mean".into(), [x.get(2).unwrap()]),
                Column::new("std".into(), [x.get(3).unwrap()]),
                Column::new("ymin".into(), [y.get(4).unwrap()]),
                Column::new("nulls".into(), [x.get(1).unwrap()]),
            ],
        )
        .unwrap();
        assert_same(&name, &got, &want, true);
        let two = frame::concat_frames(&[f.clone(), f.clone()]).unwrap();
        assert_eq!(rt.compute(&two.len()).unwrap(), 500);
    }
}

#[test]
fn group_by_dynamic_with_overlapping_and_gapped_windows() {
    let rt = rt();
    let df = table(400);
    for (every, period) in [("1h", "3h"), ("2h", "30m"), ("45m", "45m")] {
        let want = df
            .clone()
            .lazy()
            .group_by_dynamic(
                col("t"),
                [],
                DynamicGroupOptions {
                    index_column: "t".into(),
                    every: Duration::parse(every),
                    period: Duration::parse(period),
                    offset: Duration::parse("0ns"),
                    ..Default::default()
                },
            )
            .agg([col("x").mean().alias("m"), len().alias("n")])
            .collect()
            .unwrap();
        for (name, f) in partitionings(&df) {
            let got = rt
                .compute(
                    &f.group_by_dynamic(
                        "t",
                        every,
                        period,
                        [col("x").mean().alias("m"), len().alias("n")],
                    )
                    .unwrap(),
                )
                .unwrap();
            assert_same(
                &format!("{name} every {every} period {period}"),
                &got,
                &want,
                true,
            );
        }
    }
}

/// Whole-table polars results of `q`, and brisk's over every partitioning.
fn check_query(
    what: &str,
    df: &DataFrame,
    ordered: bool,
    polars_q: impl Fn(LazyFrame) -> LazyFrame,
    brisk_q: impl Fn(&frame::Frame) -> brisk::Result<frame::Frame>,
) {
    let rt = rt();
    let want = polars_q(df.clone().lazy()).collect().unwrap();
    for (name, f) in partitionings(df) {
        let q = brisk_q(&f).unwrap_or_else(|e| panic!("{what}, {name}: {e}"));
        let got = rt.compute(&q).unwrap();
        assert_same(&format!("{what}, {name}"), &got, &want, ordered);
    }
}

#[test]
fn select_of_aggregations_is_one_row_for_the_whole_frame() {
    let df = table(300);
    let aggs = || {
        vec![
            col("x").sum().alias("sum"),
            col("x").mean().alias("mean"),
            col("x").min().alias("min"),
            col("y").max().alias("max"),
            col("x").count().alias("count"),
            col("x").std(1).alias("std"),
            col("y").var(0).alias("var0"),
            len().alias("len"),
            col("x").first().alias("first"),
            col("y").last().alias("last"),
            col("k").n_unique().alias("nu"),
            col("y").median().alias("med"),
            col("x").null_count().alias("nulls"),
            (col("y").sum() * lit(2) + col("y").min()).alias("expr"),
            lit(7).alias("seven"),
        ]
    };
    check_query(
        "select aggregations",
        &df,
        true,
        |lf| lf.select(aggs()),
        |f| f.select(aggs()),
    );
    // No row survives the filter: polars' aggregates of an empty frame, still one row.
    let nothing = || {
        vec![
            col("x").sum().alias("s"),
            col("x").mean().alias("m"),
            len(),
            col("k").n_unique().alias("nu"),
            col("y").median().alias("med"),
        ]
    };
    check_query(
        "aggregations of nothing",
        &df,
        true,
        |lf| lf.filter(col("y").gt(lit(10_000))).select(nothing()),
        |f| f.filter(col("y").gt(lit(10_000)))?.select(nothing()),
    );
}

#[test]
fn aggregations_inside_elementwise_expressions_are_broadcast() {
    let df = table(300);
    let exprs = || {
        vec![
            (col("x") - col("x").mean()).alias("centered"),
            (col("y").cast(DataType::Float64) / col("y").sum().cast(DataType::Float64))
                .alias("share"),
            col("x").max().alias("xmax"),
            (col("y") - col("y").min()).alias("y0"),
        ]
    };
    check_query(
        "with_columns(x - x.mean())",
        &df,
        true,
        |lf| lf.with_columns(exprs()),
        |f| f.with_columns(exprs()),
    );
    check_query(
        "select mixed",
        &df,
        true,
        |lf| lf.select([col("k"), (col("x") / col("x").std(1)).alias("z")]),
        |f| f.select([col("k"), (col("x") / col("x").std(1)).alias("z")]),
    );
    check_query(
        "filter(x > x.mean())",
        &df,
        true,
        |lf| lf.filter(col("x").gt(col("x").mean())),
        |f| f.filter(col("x").gt(col("x").mean())),
    );
}

#[test]
fn shift_and_cumulative_functions_cross_partition_boundaries() {
    let df = table(200);
    let exprs = || {
        vec![
            col("x").shift(lit(1)).alias("prev"),
            col("y").shift(lit(-2)).alias("next2"),
            (col("y") - col("y").shift(lit(1))).alias("diff"),
            col("y").cum_sum(false).alias("cs"),
            col("y").cum_sum(true).alias("rcs"),
            col("x").cum_max(false).alias("cmax"),
            col("x").cum_min(true).alias("rcmin"),
            col("x").cum_count(false).alias("cc"),
            (col("y").cum_sum(false) - col("y").shift(lit(3))).alias("mixed"),
            (col("x").cum_sum(false) - col("x").mean()).alias("cs_centered"),
        ]
    };
    let rolling = |e: Expr, w: usize, center: bool| {
        e.rolling_mean(RollingOptionsFixedWindow {
            window_size: w,
            min_periods: 1,
            center,
            ..Default::default()
        })
    };
    let windows = move || {
        vec![
            rolling(col("x"), 4, false).alias("rm4"),
            rolling(col("y").cast(DataType::Float64), 5, true).alias("rc5"),
        ]
    };
    check_query(
        "shift/cum",
        &df,
        true,
        |lf| lf.with_columns(exprs()),
        |f| f.with_columns(exprs()),
    );
    check_query(
        "rolling by rows",
        &df,
        true,
        |lf| lf.with_columns(windows()),
        |f| f.with_columns(windows()),
    );
    check_query(
        "filter on a shift",
        &df,
        true,
        |lf| lf.filter(col("y").gt(col("y").shift(lit(1)))),
        |f| f.filter(col("y").gt(col("y").shift(lit(1)))),
    );
    check_query(
        "filter on a running sum",
        &df,
        true,
        |lf| lf.filter(col("y").cum_sum(false).gt(lit(0))),
        |f| f.filter(col("y").cum_sum(false).gt(lit(0))),
    );
    check_query(
        "select with a shift",
        &df,
        true,
        |lf| lf.select([col("k"), col("x").shift(lit(2)).alias("x2")]),
        |f| f.select([col("k"), col("x").shift(lit(2)).alias("x2")]),
    );
}

#[test]
fn over_keys_uses_whole_groups() {
    let df = table(300);
    let exprs = || {
        vec![
            col("x").mean().over([col("k")]).unwrap().alias("km"),
            col("y")
                .sum()
                .over([col("k"), col("g")])
                .unwrap()
                .alias("kgs"),
            (col("x") - col("x").max().over([col("g")]).unwrap()).alias("below"),
            len().over([col("g")]).unwrap().alias("gn"),
        ]
    };
    check_query(
        "over(keys)",
        &df,
        true,
        |lf| lf.with_columns(exprs()),
        |f| f.with_columns(exprs()),
    );
}

#[test]
fn expressions_that_cannot_cross_partitions_fail_at_build_time() {
    let f = frame::from_polars(table(50), 3);
    let cases: Vec<(Expr, &str)> = vec![
        (col("x").sort(Default::default()), "Frame::sort"),
        (col("x").head(Some(3)), "Frame::head"),
        (col("y").unique(), "Frame::unique"),
        ((col("x") - col("x").mean()).abs().mean(), "with_columns"),
        (
            col("x").cum_sum(false).over([col("k")]).unwrap(),
            "group_by",
        ),
        ((col("x") - col("x").mean()).cum_sum(false), "with_columns"),
    ];
    for (e, hint) in cases {
        let text = format!("{e:?}");
        let err = f
            .with_columns([e.clone().alias("out")])
            .err()
            .unwrap_or_else(|| panic!("{text} was accepted"));
        let msg = err.to_string();
        assert!(msg.contains(hint), "{text}: {msg}");
        assert!(msg.contains("map_partitions"), "{text}: {msg}");
        assert!(
            matches!(err.kind(), brisk::ErrorKind::Column { .. }),
            "{msg}"
        );
    }
    // map_partitions stays the explicit per-partition way.
    let rt = rt();
    let per = f
        .map_partitions(|d| d.lazy().select([col("y").sum()]).collect())
        .unwrap();
    assert_eq!(rt.compute(&per).unwrap().height(), 3);
}

#[test]
fn sort_set_index_and_head_are_lazy() {
    use std::sync::atomic::{AtomicUsize, Ordering};
    use std::sync::Arc;
    let df = table(120);
    // Built without a runtime.
    let f = frame::from_polars(df.clone(), 6);
    let s = f.set_index("y").unwrap();
    let h = f.sort("x", true).unwrap().head(7);
    let rt = rt();
    let want = df
        .sort(
            ["y"],
            SortMultipleOptions::default()
                .with_nulls_last(true)
                .with_maintain_order(true),
        )
        .unwrap();
    let got = rt.compute(&s).unwrap();
    assert!(got
        .column("y")
        .unwrap()
        .as_materialized_series()
        .equals_missing(want.column("y").unwrap().as_materialized_series()));
    assert_eq!(s.num_partitions(), 6);
    let bounds = rt.compute(&s.divisions().unwrap()).unwrap();
    assert!(!bounds.is_empty() && bounds.len() < 6);
    let want_h = df
        .sort(
            ["x"],
            SortMultipleOptions::default()
                .with_order_descending(true)
                .with_nulls_last(true)
                .with_maintain_order(true),
        )
        .unwrap()
        .head(Some(7));
    let got_h = rt.compute(&h).unwrap();
    assert!(got_h
        .column("x")
        .unwrap()
        .as_materialized_series()
        .equals_missing(want_h.column("x").unwrap().as_materialized_series()));
    // head reads only the partitions it needs: 10 partitions of 10 rows, 2 threads.
    let reads = Arc::new(AtomicUsize::new(0));
    let r2 = reads.clone();
    let big = table(100);
    let schema = big.schema().as_ref().clone();
    let g = frame::from_fn(10, schema, move |i| {
        r2.fetch_add(1, Ordering::SeqCst);
        Ok(big.slice(i as i64 * 10, 10))
    });
    let h = g.head(15);
    assert_eq!(reads.load(Ordering::SeqCst), 0, "head ran at build time");
    let got = rt.compute(&h).unwrap();
    assert_same("head", &got, &table(100).head(Some(15)), true);
    assert_eq!(
        reads.load(Ordering::SeqCst),
        2,
        "head read more than it needed"
    );
}
