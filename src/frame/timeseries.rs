//! Time series across partition boundaries, **without** known divisions.
//!
//! **Rolling windows** need, for the first rows of a partition, the last rows of the ones
//! before it. A chain of small *tail* tasks carries them: `tail[0]` is empty and
//! `tail[i + 1]` is the part of `tail[i] ++ partition[i]` a window can still reach — its last
//! `n − 1` rows for a window of `n` rows, or the rows within `period` of its last timestamp for a
//! duration window. Partition `i` is then computed by polars on `tail[i] ++ partition[i]`, and
//! the borrowed rows are cut off again. This is exact for any partition sizes (a tail may span
//! several tiny or empty partitions), where Dask refuses a window without known divisions.
//!
//! **Resampling** (`resample(every)`, windows `[t, t + every)` starting at multiples of
//! `every`) is a group-by on the truncated timestamp, so it runs as a partial aggregation per
//! partition and a tree combine; windows that straddle partitions merge in the combine.

use std::sync::Arc;

use polars::prelude::*;

use super::task::{df_task, literal_df, next_op, pl, take_df};
use super::{concat, Frame};
use crate::error::{Error, Result};

/// A rolling window's extent.
#[derive(Clone, Debug)]
pub enum Window {
    /// The current row and the `n − 1` before it (full windows only: the first `n − 1` rows of
    /// the frame are null).
    Rows(usize),
    /// Rows with timestamp in `(t − period, t]` for a sorted datetime column `by`; `period`
    /// in polars' duration language (`"1h"`, `"30m"`, `"2d"`).
    Duration {
        /// The sorted time column.
        by: String,
        /// The window length.
        period: String,
    },
}

/// The statistic of a rolling window.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum RollingAgg {
    /// Mean.
    Mean,
    /// Sum.
    Sum,
    /// Minimum.
    Min,
    /// Maximum.
    Max,
    /// Sample standard deviation (ddof 1).
    Std,
}

/// What a partition must borrow from the rows before it.
#[derive(Clone)]
enum Lookback {
    Rows(usize),
    Duration { by: PlSmallStr, period: Duration },
}

fn tail_of(df: DataFrame, lookback: &Lookback) -> Result<DataFrame> {
    match lookback {
        Lookback::Rows(n) => {
            let h = df.height();
            Ok(df.slice(h.saturating_sub(*n) as i64, (*n).min(h)))
        }
        Lookback::Duration { by, period } => {
            if df.height() == 0 {
                return Ok(df);
            }
            let t = df
                .column(by)
                .map_err(pl("rolling tail"))?
                .as_materialized_series()
                .to_physical_repr()
                .into_owned();
            let t = t.i64().map_err(pl("rolling tail"))?;
            let last = t.get(t.len() - 1).unwrap_or(i64::MIN);
            let span = duration_units(period, df.column(by).map_err(pl("rolling"))?.dtype());
            let from = last.saturating_sub(span);
            // Sorted: the first row with t >= from.
            let start = t
                .iter()
                .position(|v| v.is_some_and(|v| v >= from))
                .unwrap_or(t.len());
            Ok(df.slice(start as i64, df.height() - start))
        }
    }
}

/// A fixed duration in the time column's units.
fn duration_units(d: &Duration, dtype: &DataType) -> i64 {
    let ns = d.duration_ns();
    match dtype {
        DataType::Datetime(TimeUnit::Milliseconds, _) => ns / 1_000_000,
        DataType::Datetime(TimeUnit::Microseconds, _) => ns / 1_000,
        DataType::Date => ns / 86_400_000_000_000,
        _ => ns,
    }
}

impl Frame {
    /// Adds column `out`: the rolling `agg` of `column` over `window`, across partition
    /// boundaries (see the [module docs](self)).
    ///
    /// # Errors
    /// At graph-build time: a missing column, a non-numeric column, a duration window on a
    /// non-datetime column, or an unparsable period.
    pub fn rolling(
        &self,
        column: &str,
        window: Window,
        agg: RollingAgg,
        out: &str,
    ) -> Result<Frame> {
        self.check_columns(&[column], "rolling")?;
        let outc = PlSmallStr::from(out);
        match window {
            Window::Rows(n) => {
                if n == 0 {
                    return Err(Error::config("frame.rolling: a window of 0 rows"));
                }
                let opts = RollingOptionsFixedWindow {
                    window_size: n,
                    min_periods: n,
                    ..Default::default()
                };
                let x = col(column);
                let e = match agg {
                    RollingAgg::Mean => x.rolling_mean(opts),
                    RollingAgg::Sum => x.rolling_sum(opts),
                    RollingAgg::Min => x.rolling_min(opts),
                    RollingAgg::Max => x.rolling_max(opts),
                    RollingAgg::Std => x.rolling_std(opts),
                }
                .alias(outc);
                self.with_lookback(
                    "rolling",
                    Lookback::Rows(n - 1),
                    Arc::new(move |df: DataFrame| df.lazy().with_column(e.clone()).collect()),
                )
            }
            Window::Duration { by, period } => {
                self.check_columns(&[by.as_str()], "rolling")?;
                match self.schema.get(&by) {
                    Some(DataType::Datetime(_, _)) | Some(DataType::Date) => {}
                    other => {
                        return Err(Error::config(format!(
                            "frame.rolling: time column `{by}` is {other:?}, not a datetime"
                        )))
                    }
                }
                let p = Duration::try_parse(&period)
                    .map_err(|e| Error::config(format!("frame.rolling: period `{period}`: {e}")))?;
                if p.months() != 0 || p.weeks() != 0 && p.duration_ns() == 0 {
                    return Err(Error::config(
                        "frame.rolling: calendar periods (months) are not supported",
                    ));
                }
                let byc = PlSmallStr::from(by.as_str());
                let x = col(column);
                let a = match agg {
                    RollingAgg::Mean => x.mean(),
                    RollingAgg::Sum => x.sum(),
                    RollingAgg::Min => x.min(),
                    RollingAgg::Max => x.max(),
                    RollingAgg::Std => x.std(1),
                }
                .alias(outc.clone());
                let opts = RollingGroupOptions {
                    index_column: byc.clone(),
                    period: p,
                    offset: -p,
                    closed_window: ClosedWindow::Right,
                };
                let oc = outc.clone();
                self.with_lookback(
                    "rolling",
                    Lookback::Duration {
                        by: byc.clone(),
                        period: p,
                    },
                    Arc::new(move |df: DataFrame| {
                        // polars' rolling group-by yields one row per input row, in order.
                        let agg = df
                            .clone()
                            .lazy()
                            .rolling(col(byc.clone()), [], opts.clone())
                            .agg([a.clone()])
                            .select([col(oc.clone())])
                            .collect()?;
                        df.hstack(agg.columns())
                    }),
                )
            }
        }
    }

    fn with_lookback(
        &self,
        name: &str,
        lookback: Lookback,
        compute: Arc<dyn Fn(DataFrame) -> PolarsResult<DataFrame> + Send + Sync>,
    ) -> Result<Frame> {
        let out_schema = compute(DataFrame::empty_with_schema(&self.schema))
            .map_err(super::ops::build_err(name))?
            .schema()
            .clone();
        let nodes = self.nodes();
        let id = next_op();
        let schema = self.schema.clone();
        let mut tail = literal_df(
            "rolling-tail0",
            &[id],
            DataFrame::empty_with_schema(&schema),
        );
        let mut outs = Vec::with_capacity(nodes.len());
        for (i, part) in nodes.iter().enumerate() {
            let (compute, schema2) = (compute.clone(), schema.clone());
            outs.push(df_task(
                name,
                &[id, i as i64],
                vec![part.clone(), tail.clone()],
                move |ins| {
                    let part = take_df(&mut ins[0])?;
                    let tail = take_df(&mut ins[1])?;
                    let skip = tail.height();
                    let whole = concat(vec![tail, part], &schema2)?;
                    let out = compute(whole).map_err(pl("rolling window"))?;
                    Ok(out.slice(skip as i64, out.height().saturating_sub(skip)))
                },
            ));
            if i + 1 < nodes.len() {
                let (lb, schema3) = (lookback.clone(), schema.clone());
                tail = df_task(
                    "rolling-tail",
                    &[id, i as i64 + 1],
                    vec![tail.clone(), part.clone()],
                    move |ins| {
                        let t = take_df(&mut ins[0])?;
                        let p = take_df(&mut ins[1])?;
                        tail_of(concat(vec![t, p], &schema3)?, &lb)
                    },
                );
            }
        }
        let mut f = Frame::of_nodes(outs, out_schema);
        f.sorted_by = self.sorted_by.clone();
        Ok(f)
    }

    /// Means, sums, … per time window `[t, t + every)` of the datetime column `by`, windows
    /// starting at multiples of `every` (polars' `group_by_dynamic` with `period = every`),
    /// one output row per non-empty window, sorted by window start. The input need not be
    /// sorted or have known divisions.
    pub fn resample<E: AsRef<[Expr]>>(&self, by: &str, every: &str, aggs: E) -> Result<Frame> {
        self.check_columns(&[by], "resample")?;
        match self.schema.get(by) {
            Some(DataType::Datetime(_, _)) | Some(DataType::Date) => {}
            other => {
                return Err(Error::config(format!(
                    "frame.resample: `{by}` is {other:?}, not a datetime"
                )))
            }
        }
        Duration::try_parse(every)
            .map_err(|e| Error::config(format!("frame.resample: every `{every}`: {e}")))?;
        let f = self.with_column(col(by).dt().truncate(lit(every)).alias(by))?;
        f.group_by([by]).sort_keys(true).agg(aggs)
    }
}

impl Frame {
    /// polars' `group_by_dynamic` on the datetime column `by`: windows `[w, w + period)` for
    /// every `w` that is a multiple of `every` at or after the first timestamp truncated to
    /// `every`, one output row per window holding data, sorted by `w` (labelled by it, in
    /// column `by`). Works on unsorted input without divisions: each row is copied to each of
    /// the ⌈period / every⌉ windows that can contain it, the copies are aggregated by window
    /// start like any group-by (partial, tree combine, finalize), and windows before the first
    /// truncated timestamp are dropped at the end. Fixed durations only (no months).
    pub fn group_by_dynamic<E: AsRef<[Expr]>>(
        &self,
        by: &str,
        every: &str,
        period: &str,
        aggs: E,
    ) -> Result<Frame> {
        self.check_columns(&[by], "group_by_dynamic")?;
        let dtype = self.schema.get(by).cloned().unwrap_or(DataType::Null);
        if !matches!(dtype, DataType::Datetime(_, _)) {
            return Err(Error::config(format!(
                "frame.group_by_dynamic: `{by}` is {dtype:?}, not a datetime"
            )));
        }
        let parse = |what: &str, s: &str| -> Result<Duration> {
            let d = Duration::try_parse(s)
                .map_err(|e| Error::config(format!("frame.group_by_dynamic: {what} `{s}`: {e}")))?;
            if d.months() != 0 || d.duration_ns() <= 0 {
                return Err(Error::config(format!(
                    "frame.group_by_dynamic: {what} `{s}` must be a fixed, positive duration"
                )));
            }
            Ok(d)
        };
        let e = duration_units(&parse("every", every)?, &dtype);
        let p = duration_units(&parse("period", period)?, &dtype);
        let copies = (p + e - 1) / e;
        const W: &str = "__brisk_window";
        let mut frames = Vec::new();
        for j in 0..copies.max(1) {
            let start = col(by).dt().truncate(lit(every)).cast(DataType::Int64) - lit(j * e);
            frames.push(
                self.with_column(start.alias(W))?
                    .filter((col(W) + lit(p)).gt(col(by).cast(DataType::Int64)))?,
            );
        }
        let all = super::concat_frames(&frames)?;
        let grouped = all
            .group_by([W])
            .sort_keys(true)
            .agg(aggs)?
            .with_column(col(W).cast(dtype.clone()))?;
        let renamed = grouped.rename(&[(W, by)])?;
        let cols: Vec<Expr> = std::iter::once(col(by))
            .chain(
                renamed
                    .schema
                    .iter_names()
                    .filter(|n| n.as_str() != by)
                    .map(|n| col(n.clone())),
            )
            .collect();
        let out = renamed.select(cols)?;
        // The first window starts at the first timestamp truncated to `every`.
        let first = self.agg([col(by).min().alias("m")])?.nodes();
        let nodes = out.nodes();
        let (every_s, byc) = (every.to_string(), PlSmallStr::from(by));
        let schema = out.schema.clone();
        let id = next_op();
        let mut deps = nodes.clone();
        deps.extend(first);
        let n = nodes.len();
        let filtered = df_task("group_by_dynamic-start", &[id], deps, move |ins| {
            let m = take_df(&mut ins[n])?;
            let start = m
                .lazy()
                .select([col("m")
                    .dt()
                    .truncate(lit(every_s.as_str()))
                    .cast(DataType::Int64)])
                .collect()
                .map_err(pl("group_by_dynamic start"))?;
            let start = start
                .columns()
                .first()
                .and_then(|c| c.i64().ok().and_then(|c| c.get(0)));
            let parts = ins[..n]
                .iter_mut()
                .map(take_df)
                .collect::<Result<Vec<_>>>()?;
            let df = concat(parts, &schema)?;
            match start {
                None => Ok(df.clear()),
                Some(s) => df
                    .lazy()
                    .filter(col(byc.clone()).cast(DataType::Int64).gt_eq(lit(s)))
                    .collect()
                    .map_err(pl("group_by_dynamic start")),
            }
        });
        Ok(Frame::of_nodes(vec![filtered], out.schema.clone()))
    }
}
