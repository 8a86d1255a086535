//! Sorting: sampled quantile boundaries and a range shuffle, with already-sorted input
//! detected; and `nsmallest` / `nlargest` without a full sort.
//!
//! [`Frame::sort`] builds its whole plan into the graph, like Dask's `set_index` does inside
//! `compute`: nothing runs when the frame is built. When computed, one small task per
//! partition takes the sort column's minimum, maximum, whether the partition is sorted, and an
//! evenly spaced sample of its sorted values; one task reads them all and decides. If every
//! partition is sorted and each one's maximum is ≤ the next non-empty one's minimum, the input
//! is already sorted: every partition stays whole where it is. Otherwise up to `n − 1`
//! boundaries are taken at the quantiles of the pooled sample and every row goes to the
//! partition of its range (`search_sorted` on the boundaries; nulls to the last). The pieces
//! are shuffled through the store and each output partition (as many as the input has, fixed
//! when the graph is built) is sorted locally. The decision task is kept as the frame's
//! divisions.

use std::sync::Arc;

use polars::prelude::*;

use super::groupby::tree_reduce;
use super::shuffle::{gather_pieces, shuffle_pieces_with, split_by};
use super::task::{next_op, pl, take, task, Node};
use super::{Frame, Lazy, Part, Source};
use crate::error::Result;
use crate::graph::Value;
use crate::spill::SizeOf;

/// The rows of `df` that `pick` chooses from its column `c`, in that order.
fn top_rows(
    df: DataFrame,
    c: &PlSmallStr,
    pick: &dyn Fn(&Series) -> Result<IdxCa>,
) -> Result<Value> {
    let s = df
        .column(c)
        .map_err(pl("nsmallest/nlargest"))?
        .as_materialized_series()
        .clone();
    let idx = pick(&s)?;
    Ok(Value::spillable(
        df.take(&idx).map_err(pl("nsmallest/nlargest"))?,
    ))
}

/// The row indices of the first `n` rows of `s` in stable sort order (nulls last, NaN as the
/// largest float, `-0.0 == 0.0`), in that order; `None` for types without a fast order key
/// (strings, booleans, …).
///
/// Every value becomes an `i64` key whose integer order is the column's order (reversed for
/// `descending`); a max-heap of the best `n` `(key, row)` pairs sees each row once, and since
/// rows arrive in increasing order, a tie never displaces an earlier row: the result is exactly
/// the prefix of a stable sort.
pub(crate) fn top_k_indices(
    s: &Series,
    n: usize,
    descending: bool,
) -> PolarsResult<Option<Vec<IdxSize>>> {
    use std::collections::BinaryHeap;
    if n == 0 {
        return Ok(Some(Vec::new()));
    }
    let flip = |k: i64| if descending { !k } else { k };
    let mut heap: BinaryHeap<(i64, IdxSize)> = BinaryHeap::with_capacity(n + 1);
    let mut nulls: Vec<IdxSize> = Vec::new();
    let mut offer = |key: i64, row: IdxSize| {
        if heap.len() < n {
            heap.push((key, row));
        } else if let Some(mut top) = heap.peek_mut() {
            if (key, row) < *top {
                *top = (key, row);
            }
        }
    };
    let mut scan = |keys: &mut dyn Iterator<Item = Option<i64>>| {
        for (row, key) in (0 as IdxSize..).zip(keys) {
            match key {
                Some(k) => offer(flip(k), row),
                None if nulls.len() < n => nulls.push(row),
                None => {}
            }
        }
    };
    let dtype = s.dtype();
    if dtype.is_float() {
        let f = s.cast(&DataType::Float64)?;
        scan(&mut f.f64()?.iter().map(|v| v.map(f64_key)));
    } else if matches!(dtype, DataType::UInt64) {
        scan(&mut s.u64()?.iter().map(|v| v.map(|x| (x ^ (1 << 63)) as i64)));
    } else if dtype.to_physical().is_integer() {
        let phys = s.to_physical_repr().cast(&DataType::Int64)?;
        scan(&mut phys.i64()?.iter());
    } else {
        return Ok(None);
    }
    let mut rows: Vec<IdxSize> = heap.into_sorted_vec().into_iter().map(|(_, r)| r).collect();
    rows.extend(nulls.into_iter().take(n - rows.len().min(n)));
    Ok(Some(rows))
}

/// An `i64` whose order is polars' float order: NaN after every number, `-0.0` equal to `0.0`.
fn f64_key(x: f64) -> i64 {
    let x = if x.is_nan() {
        f64::NAN
    } else if x == 0.0 {
        0.0
    } else {
        x
    };
    let bits = x.to_bits() as i64;
    // Negative floats order backwards as integers: flip their magnitude bits.
    bits ^ (((bits >> 63) as u64) >> 1) as i64
}

/// Sample values taken per partition.
const SAMPLE: usize = 256;

#[derive(Clone)]
struct Stats {
    rows: usize,
    nulls: usize,
    sorted: bool,
    /// Min and max (non-null) as a 2-row series, or empty.
    range: Series,
    sample: Series,
}

impl SizeOf for Stats {
    fn size_of(&self) -> usize {
        std::mem::size_of::<Stats>() + self.range.size_of() + self.sample.size_of()
    }
}

fn stats(df: &DataFrame, by: &str) -> Result<Stats> {
    let s = df
        .column(by)
        .map_err(pl("sort stats"))?
        .as_materialized_series()
        .clone();
    let opts = SortOptions::default().with_nulls_last(true);
    let sorted_s = s.sort(opts).map_err(pl("sort stats"))?;
    let sorted = sorted_s.equals_missing(&s);
    let nn = sorted_s.len() - s.null_count();
    let non_null = sorted_s.slice(0, nn);
    let range = if nn == 0 {
        non_null.clear()
    } else {
        let mut r = non_null.slice(0, 1);
        r.append(&non_null.slice(nn as i64 - 1, 1))
            .map_err(pl("sort stats"))?;
        r
    };
    let sample = if nn <= SAMPLE {
        non_null.clone()
    } else {
        let idx: Vec<IdxSize> = (0..SAMPLE)
            .map(|k| (k * (nn - 1) / (SAMPLE - 1)) as IdxSize)
            .collect();
        non_null
            .take(&IdxCa::from_vec("".into(), idx))
            .map_err(pl("sort sample"))?
    };
    Ok(Stats {
        rows: s.len(),
        nulls: s.null_count(),
        sorted,
        range,
        sample,
    })
}

/// Is `a` ≤ `b` (both 1-element series of the same type)?
fn le(a: &Series, b: &Series) -> Result<bool> {
    let c = a.lt_eq(b).map_err(pl("sort check"))?;
    Ok(c.get(0).unwrap_or(false))
}

/// What the divisions task decides for a sort: keep the partitions (already sorted) or move
/// every row to the output partition of its range.
#[derive(Clone)]
struct SortPlan {
    already_sorted: bool,
    /// `k` boundaries (distinct, ascending): output partition `i` holds values below
    /// `bounds[i]`, the last one the rest and the nulls.
    bounds: Series,
}

impl SizeOf for SortPlan {
    fn size_of(&self) -> usize {
        std::mem::size_of::<SortPlan>() + self.bounds.size_of()
    }
}

/// Is the input, partition by partition, already sorted ascending (each partition sorted, its
/// maximum ≤ the next non-empty one's minimum, nulls only at the very end)?
fn already_sorted(st: &[Stats]) -> Result<bool> {
    if !st.iter().all(|s| s.sorted) {
        return Ok(false);
    }
    let non_empty: Vec<&Stats> = st.iter().filter(|s| s.rows > s.nulls).collect();
    for w in non_empty.windows(2) {
        if !le(&w[0].range.slice(1, 1), &w[1].range.slice(0, 1))? {
            return Ok(false);
        }
    }
    let last_with_rows = st.iter().rposition(|s| s.rows > 0);
    Ok(st
        .iter()
        .enumerate()
        .all(|(i, s)| s.nulls == 0 || Some(i) == last_with_rows))
}

/// Up to `n − 1` distinct boundaries at the quantiles of the pooled samples.
fn boundaries(st: &[Stats], n: usize, name: &PlSmallStr, dtype: &DataType) -> Result<Series> {
    let mut pooled = Series::new_empty(name.clone(), dtype);
    for s in st {
        pooled.append(&s.sample).map_err(pl("sort sample"))?;
    }
    let pooled = pooled
        .sort(SortOptions::default())
        .map_err(pl("sort sample"))?;
    let m = pooled.len();
    let mut bounds = Series::new_empty(name.clone(), dtype);
    if m > 0 {
        for k in 1..n {
            let at = (k * m / n).min(m - 1);
            bounds
                .append(&pooled.slice(at as i64, 1))
                .map_err(pl("sort boundaries"))?;
        }
    }
    bounds.unique_stable().map_err(pl("sort boundaries"))
}

impl Frame {
    /// Sorts by `by` across partitions (nulls last), lazily like every other operation. When
    /// computed: one small task per partition takes the sort column's range and a sample, one
    /// task finds the divisions from them (or finds the input already sorted, and then no row
    /// moves), each partition is split by the divisions, and each of the output partitions (as
    /// many as the input has) concatenates its pieces and sorts them.
    pub fn sort(&self, by: &str, descending: bool) -> Result<Frame> {
        self.check_columns(&[by], "sort")?;
        let nodes = self.nodes();
        let n = nodes.len();
        let byc = PlSmallStr::from(by);
        if n == 0 {
            let mut out = self.materialize();
            out.sorted_by = Some(byc);
            return Ok(out);
        }
        let id = next_op();
        let stats_nodes: Vec<Arc<Node>> = nodes
            .iter()
            .enumerate()
            .map(|(i, node)| {
                let b = byc.clone();
                task(
                    "sort-stats",
                    &[id, i as i64],
                    vec![node.clone()],
                    move |ins| {
                        let df = super::task::take_df(&mut ins[0])?;
                        Ok(Value::new(stats(&df, &b)?))
                    },
                )
            })
            .collect();
        let dtype = self.schema.get(by).cloned().unwrap_or(DataType::Null);
        let b = byc.clone();
        let plan = task("sort-divisions", &[id], stats_nodes, move |ins| {
            let st = ins
                .iter_mut()
                .map(take::<Stats>)
                .collect::<Result<Vec<_>>>()?;
            let keep = !descending && already_sorted(&st)?;
            let bounds = if keep {
                Series::new_empty(b.clone(), &dtype)
            } else {
                boundaries(&st, n, &b, &dtype)?
            };
            Ok(Value::new(SortPlan {
                already_sorted: keep,
                bounds,
            }))
        });
        let b = byc.clone();
        let outs = shuffle_pieces_with(
            &nodes,
            Some(plan.clone()),
            n,
            Arc::new(move |df, i, plan| {
                let plan = plan
                    .and_then(|v| v.downcast_ref::<SortPlan>())
                    .ok_or_else(|| crate::Error::internal("sort split: no divisions"))?;
                if plan.already_sorted {
                    let mut pieces = vec![df.clear(); n];
                    pieces[i] = df;
                    return Ok(pieces);
                }
                let bd = &plan.bounds;
                let nb = bd.len();
                let s = df
                    .column(&b)
                    .map_err(pl("sort split"))?
                    .as_materialized_series()
                    .clone();
                let idx = search_sorted(bd, &s, SearchSortedSide::Right, false)
                    .map_err(pl("sort split"))?;
                let assign: Vec<u32> = idx
                    .iter()
                    .zip(s.is_null().iter())
                    .map(|(i, null)| {
                        let i = if null == Some(true) {
                            nb as u32
                        } else {
                            i.unwrap_or(nb as IdxSize)
                        };
                        if descending {
                            nb as u32 - i
                        } else {
                            i
                        }
                    })
                    .collect();
                split_by(&df, &assign, n).map_err(pl("sort split"))
            }),
        );
        let shuffled = Frame::of_nodes(gather_pieces(outs, &self.schema), self.schema.clone());
        let b3 = byc.clone();
        let sorted = shuffled.lazy_parts(
            "sort-local",
            None,
            Arc::new(move |lf| {
                lf.sort(
                    [b3.clone()],
                    SortMultipleOptions::default()
                        .with_order_descending(descending)
                        .with_nulls_last(true)
                        .with_maintain_order(true),
                )
            }),
        );
        let mut out = Frame::of_nodes(sorted, self.schema.clone());
        if !descending {
            out.sorted_by = Some(byc);
        }
        out.divisions = Some(plan);
        Ok(out)
    }

    /// Sorts by `column` and records its divisions (Dask's `set_index`; the column stays a
    /// column, polars having no index). Lazy like [`sort`](Self::sort): the divisions are
    /// found when the frame is computed; [`divisions`](Self::divisions) computes them alone.
    pub fn set_index(&self, column: &str) -> Result<Frame> {
        self.sort(column, false)
    }

    /// The `n` rows with the smallest `column` (nulls last), sorted: each partition keeps its
    /// own `n` smallest, then a tree of fan-in 8 merges them. No shuffle.
    pub fn nsmallest(&self, n: usize, column: &str) -> Result<Frame> {
        self.top(n, column, false)
    }

    /// The `n` rows with the largest `column`, sorted descending.
    pub fn nlargest(&self, n: usize, column: &str) -> Result<Frame> {
        self.top(n, column, true)
    }

    fn top(&self, n: usize, column: &str, descending: bool) -> Result<Frame> {
        self.check_columns(&[column], if descending { "nlargest" } else { "nsmallest" })?;
        let c = PlSmallStr::from(column);
        let opts = SortMultipleOptions::default()
            .with_order_descending(descending)
            .with_nulls_last(true)
            .with_maintain_order(true);
        let c1 = c.clone();
        // Per partition, a bounded heap picks the `n` first rows of the stable order in one
        // pass (a full arg-sort of a million rows per partition cost more than its parse), then
        // a gather of those rows; types without an order key fall back to the arg-sort.
        let pick = move |s: &Series| -> Result<IdxCa> {
            Ok(
                match top_k_indices(s, n, descending).map_err(pl("nsmallest/nlargest"))? {
                    Some(rows) => IdxCa::from_vec(PlSmallStr::EMPTY, rows),
                    None => s
                        .arg_sort(
                            SortOptions::default()
                                .with_order_descending(descending)
                                .with_nulls_last(true)
                                .with_maintain_order(true)
                                .with_multithreaded(false),
                        )
                        .slice(0, n),
                },
            )
        };
        let pick = Arc::new(pick);
        let p1 = pick.clone();
        let sources: Option<Vec<Arc<dyn Source>>> = if self.ops.is_empty() {
            self.parts
                .iter()
                .map(|p| match p {
                    Part::Source(src) => Some(src.clone()),
                    Part::Node(_) => None,
                })
                .collect()
        } else {
            None
        };
        let local: Vec<Arc<Node>> = match sources {
            // Straight from the source: parse the one column, then only the chosen rows with
            // every column (late materialization), when the source can pick rows.
            Some(sources) => {
                let id = next_op();
                sources
                    .into_iter()
                    .enumerate()
                    .map(|(i, src)| {
                        let (c1, pick) = (c1.clone(), pick.clone());
                        task("top-local", &[id, i as i64], Vec::new(), move |_| {
                            let one = src.read(Some(std::slice::from_ref(&c1)))?;
                            let s = one
                                .column(&c1)
                                .map_err(pl("nsmallest/nlargest"))?
                                .as_materialized_series()
                                .clone();
                            let idx = pick(&s)?;
                            let rows: Vec<IdxSize> = idx.into_no_null_iter().collect();
                            let df = match src.read_rows(&rows)? {
                                Some(df) if df.height() == rows.len() => df,
                                _ => src
                                    .read(None)?
                                    .take(&IdxCa::from_vec(PlSmallStr::EMPTY, rows))
                                    .map_err(pl("nsmallest/nlargest"))?,
                            };
                            Ok(Value::spillable(df))
                        })
                    })
                    .collect()
            }
            None => self.consume(
                "top-local",
                None,
                Arc::new(move |df, _| top_rows(df, &c1, &*p1)),
            ),
        };
        let schema = self.schema.clone();
        let s2 = schema.clone();
        let combine = Arc::new(move |dfs: Vec<DataFrame>| -> Result<DataFrame> {
            super::concat(dfs, &s2)?
                .lazy()
                .sort([c.clone()], opts.clone())
                .slice(0, n as IdxSize)
                .collect()
                .map_err(pl("top combine"))
        });
        let root = tree_reduce(local, next_op(), 0, combine, Arc::new(Ok));
        Ok(Frame::of_nodes(vec![root], schema))
    }

    /// The divisions found by [`sort`](Self::sort) or [`set_index`](Self::set_index), as a
    /// lazy value (`None` for a frame not sorted by brisk): computing it runs the sampling
    /// pass (and whatever the partitions need), not the shuffle. Output partition `i` holds values `< divisions[i]` and partition `i + 1`
    /// values `≥ divisions[i]` (ascending; reversed for a descending sort); the series is
    /// empty when the input was found already sorted and its partitions were kept.
    pub fn divisions(&self) -> Option<Lazy<Series>> {
        let plan = self.divisions.clone()?;
        let node = task("sort-divisions-value", &[next_op()], vec![plan], |ins| {
            let plan = take::<SortPlan>(&mut ins[0])?;
            Ok(Value::new(plan.bounds))
        });
        Some(Lazy::new(node))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn by_arg_sort(s: &Series, n: usize, descending: bool) -> Vec<IdxSize> {
        s.arg_sort(
            SortOptions::default()
                .with_order_descending(descending)
                .with_nulls_last(true)
                .with_maintain_order(true),
        )
        .slice(0, n)
        .into_no_null_iter()
        .collect()
    }

    #[test]
    fn top_k_is_the_prefix_of_a_stable_sort() {
        let floats = Series::new(
            "f".into(),
            [
                Some(1.0),
                None,
                Some(f64::NAN),
                Some(-0.0),
                Some(0.0),
                Some(-3.5),
                Some(1.0),
                Some(f64::INFINITY),
                None,
                Some(-f64::NAN),
                Some(f64::NEG_INFINITY),
                Some(2.0),
            ],
        );
        let ints = Series::new(
            "i".into(),
            [
                Some(3i32),
                None,
                Some(-1),
                Some(3),
                Some(i32::MIN),
                None,
                Some(0),
                Some(-1),
            ],
        );
        let big = Series::new("u".into(), [u64::MAX, 0, 1 << 63, 5, u64::MAX, 7]);
        let dates = Series::new("d".into(), [3i32, 1, 2, 1])
            .cast(&DataType::Date)
            .unwrap();
        for s in [floats, ints, big, dates] {
            for descending in [false, true] {
                for n in 0..=s.len() + 1 {
                    let fast = top_k_indices(&s, n, descending).unwrap().unwrap();
                    assert_eq!(
                        fast,
                        by_arg_sort(&s, n, descending),
                        "{} n={n} descending={descending}",
                        s.name()
                    );
                }
            }
        }
        let strings = Series::new("s".into(), ["b", "a"]);
        assert!(top_k_indices(&strings, 1, false).unwrap().is_none());
    }
}
