//! Group-by aggregations: partial aggregation per partition → tree combine (fan-in 8) →
//! finalize, or an exact hash shuffle for aggregations that do not decompose.
//!
//! Each aggregation expression (`col("x").mean()`, `len()`, `col("y").var(1).alias("v")`, …)
//! is recognised and split into partial columns that combine associatively:
//!
//! | aggregation     | partial per partition          | combine                      | finalize        |
//! |-----------------|--------------------------------|------------------------------|-----------------|
//! | sum             | sum                            | sum                          | —               |
//! | count / len     | count                          | sum                          | —               |
//! | mean            | sum (f64), count               | sums                         | sum / count     |
//! | var / std(ddof) | count n, mean m, Σ(x−m)² = M2  | Chan et al.'s parallel merge | M2 / (n − ddof) |
//! | min / max       | min / max                      | min / max                    | —               |
//! | first / last    | first / last                   | first / last (input order)   | —               |
//!
//! The partial step runs inside the partition's polars chain (so only the key and input
//! columns are read); groups of 8 partials are concatenated and re-aggregated until one is
//! left, and finalize computes the outputs, cast to the type polars gives for the same query on
//! the whole data. With `split_out(n)`, each partial is hash-split by key into `n` pieces and
//! each piece index combines separately: `n` output partitions, none holding every group.
//!
//! Anything else (n_unique, median, quantile, implode, arbitrary expressions of aggregations)
//! is computed **exactly** by a hash shuffle on the keys: each output partition then holds
//! every row of its groups and runs polars' own `group_by().agg()` on them.

use std::collections::BTreeSet;
use std::sync::Arc;

use polars::prelude::*;

use super::ops::{check_lazy, exprs_columns};
use super::shuffle::{gather_pieces, hash_split, shuffle_pieces};
use super::task::{df_task, next_op, pl, take_df, Node};
use super::{concat, Frame};
use crate::error::{Error, Result};

/// Partials per combine task.
pub const FAN_IN: usize = 8;

/// A pending group-by; finish it with [`agg`](Self::agg).
#[derive(Clone)]
pub struct GroupBy {
    frame: Frame,
    keys: Vec<PlSmallStr>,
    /// Output partitions: `None` = one for the tree, a few for the exact shuffle.
    split_out: Option<usize>,
    sort: bool,
}

impl Frame {
    /// Groups by the named key columns.
    pub fn group_by<I, S>(&self, keys: I) -> GroupBy
    where
        I: IntoIterator<Item = S>,
        S: AsRef<str>,
    {
        GroupBy {
            frame: self.clone(),
            keys: keys
                .into_iter()
                .map(|k| PlSmallStr::from(k.as_ref()))
                .collect(),
            split_out: None,
            sort: false,
        }
    }

    /// Aggregates the whole frame to one row (e.g. `[col("x").sum(), len()]`).
    pub fn agg<E: AsRef<[Expr]>>(&self, aggs: E) -> Result<Frame> {
        const KEY: &str = "__brisk_all";
        let f = self.with_column(lit(0i32).alias(KEY))?;
        let out = f.group_by([KEY]).split_out(1).agg(aggs)?;
        out.drop(&[KEY])
    }

    /// Counts of each distinct value of `column`, as columns `column` and `count`.
    pub fn value_counts(&self, column: &str) -> Result<Frame> {
        self.group_by([column]).agg([len().alias("count")])
    }

    /// Distinct rows (over `subset`, or all columns), keeping each one's first occurrence in
    /// partition order. Rows are hash-shuffled by the subset, so output order is not input
    /// order.
    pub fn drop_duplicates<S: AsRef<str>>(&self, subset: Option<&[S]>) -> Result<Frame> {
        let subset: Vec<PlSmallStr> = match subset {
            Some(s) => s.iter().map(|c| PlSmallStr::from(c.as_ref())).collect(),
            None => self.schema.iter_names().cloned().collect(),
        };
        let cols: Vec<&str> = subset.iter().map(|c| c.as_str()).collect();
        self.check_columns(&cols, "drop_duplicates")?;
        let n = self.parts.len().max(1);
        let sub = subset.clone();
        let dedup = move |lf: LazyFrame| {
            lf.unique_stable(
                Some(Selector::ByName {
                    names: sub.iter().cloned().collect(),
                    strict: true,
                }),
                UniqueKeepStrategy::First,
            )
        };
        let dedup = Arc::new(dedup);
        let d1 = dedup.clone();
        let local = self.lazy_parts("dedup-local", None, Arc::new(move |lf| d1(lf)));
        let keys = subset.clone();
        let outs = shuffle_pieces(
            &local,
            n,
            Arc::new(move |df| hash_split(&df, &keys, n).map_err(pl("drop_duplicates split"))),
        );
        let shuffled = Frame::of_nodes(gather_pieces(outs, &self.schema), self.schema.clone());
        Ok(Frame::of_nodes(
            shuffled.lazy_parts("dedup", None, Arc::new(move |lf| dedup(lf))),
            self.schema.clone(),
        ))
    }

    /// Distinct rows over all columns (see [`drop_duplicates`](Self::drop_duplicates)).
    pub fn unique(&self) -> Result<Frame> {
        self.drop_duplicates::<&str>(None)
    }
}

/// A recognised decomposable aggregation.
#[derive(Clone, Copy, Debug, PartialEq)]
enum Kind {
    Sum,
    Count { include_nulls: bool },
    Len,
    Mean,
    Min,
    Max,
    Var(u8),
    Std(u8),
    First,
    Last,
}

struct Spec {
    kind: Kind,
    input: Expr,
}

/// Whether `e` is an aggregation the partial/tree/finalize path computes.
pub(crate) fn decomposes(e: &Expr) -> bool {
    decompose(e).is_some()
}

fn decompose(e: &Expr) -> Option<Spec> {
    let mut inner = match e {
        Expr::Alias(inner, _) => inner.as_ref(),
        other => other,
    };
    // A cast of an aggregation: finalize casts to the output type anyway.
    if let Expr::Cast { expr, .. } = inner {
        if matches!(expr.as_ref(), Expr::Agg(_) | Expr::Len) {
            inner = expr.as_ref();
        }
    }
    let (kind, input) = match inner {
        Expr::Len => (Kind::Len, lit(0)),
        Expr::Agg(a) => match a {
            AggExpr::Sum(i) => (Kind::Sum, (**i).clone()),
            AggExpr::Mean(i) => (Kind::Mean, (**i).clone()),
            AggExpr::Min { input, .. } => (Kind::Min, (**input).clone()),
            AggExpr::Max { input, .. } => (Kind::Max, (**input).clone()),
            AggExpr::Var(i, d) => (Kind::Var(*d), (**i).clone()),
            AggExpr::Std(i, d) => (Kind::Std(*d), (**i).clone()),
            AggExpr::First(i) => (Kind::First, (**i).clone()),
            AggExpr::Last(i) => (Kind::Last, (**i).clone()),
            AggExpr::Count {
                input,
                include_nulls,
            } => (
                Kind::Count {
                    include_nulls: *include_nulls,
                },
                (**input).clone(),
            ),
            _ => return None,
        },
        _ => return None,
    };
    // Only row-wise inputs: an aggregation inside the input would not decompose.
    for sub in &input {
        if matches!(sub, Expr::Agg(_) | Expr::Len | Expr::Over { .. }) {
            return None;
        }
    }
    Some(Spec { kind, input })
}

fn p(j: usize, part: &str) -> PlSmallStr {
    format!("__p{j}_{part}").into()
}

impl Spec {
    fn partial(&self, j: usize) -> Vec<Expr> {
        let x = self.input.clone();
        let f = || x.clone().cast(DataType::Float64);
        match self.kind {
            Kind::Sum => vec![x.sum().alias(p(j, "s"))],
            Kind::Count { include_nulls } => vec![Expr::Agg(AggExpr::Count {
                input: Arc::new(x),
                include_nulls,
            })
            .cast(DataType::Int64)
            .alias(p(j, "c"))],
            Kind::Len => vec![len().cast(DataType::Int64).alias(p(j, "c"))],
            Kind::Mean => vec![
                f().sum().alias(p(j, "s")),
                x.clone().count().cast(DataType::Int64).alias(p(j, "c")),
            ],
            Kind::Var(_) | Kind::Std(_) => vec![
                x.clone().count().cast(DataType::Int64).alias(p(j, "c")),
                f().mean().alias(p(j, "m")),
                (f() - f().mean()).pow(2).sum().alias(p(j, "q")),
            ],
            Kind::Min => vec![x.min().alias(p(j, "v"))],
            Kind::Max => vec![x.max().alias(p(j, "v"))],
            Kind::First => vec![x.first().alias(p(j, "v"))],
            Kind::Last => vec![x.last().alias(p(j, "v"))],
        }
    }

    fn combine(&self, j: usize) -> Vec<Expr> {
        let c = || col(p(j, "c"));
        match self.kind {
            Kind::Sum => vec![col(p(j, "s")).sum().alias(p(j, "s"))],
            Kind::Count { .. } | Kind::Len => vec![c().sum().alias(p(j, "c"))],
            Kind::Mean => vec![
                col(p(j, "s")).sum().alias(p(j, "s")),
                c().sum().alias(p(j, "c")),
            ],
            Kind::Var(_) | Kind::Std(_) => {
                let n = || c().cast(DataType::Float64);
                let m = || col(p(j, "m"));
                // Null (not NaN) when the group has no values yet, so later merges skip it.
                let mean = when(c().sum().gt(lit(0)))
                    .then((n() * m()).sum() / n().sum())
                    .otherwise(lit(NULL).cast(DataType::Float64));
                vec![
                    c().sum().alias(p(j, "c")),
                    mean.clone().alias(p(j, "m")),
                    (col(p(j, "q")).sum() + (n() * (m() - mean).pow(2)).sum()).alias(p(j, "q")),
                ]
            }
            Kind::Min => vec![col(p(j, "v")).min().alias(p(j, "v"))],
            Kind::Max => vec![col(p(j, "v")).max().alias(p(j, "v"))],
            Kind::First => vec![col(p(j, "v")).first().alias(p(j, "v"))],
            Kind::Last => vec![col(p(j, "v")).last().alias(p(j, "v"))],
        }
    }

    fn finalize(&self, j: usize, name: &PlSmallStr, dtype: &DataType) -> Expr {
        let c = || col(p(j, "c"));
        let e = match self.kind {
            Kind::Sum => col(p(j, "s")),
            Kind::Count { .. } | Kind::Len => c(),
            Kind::Mean => when(c().gt(lit(0)))
                .then(col(p(j, "s")) / c().cast(DataType::Float64))
                .otherwise(lit(NULL)),
            Kind::Var(d) | Kind::Std(d) => {
                let var = when(c().gt(lit(d as i64)))
                    .then(col(p(j, "q")) / (c() - lit(d as i64)).cast(DataType::Float64))
                    .otherwise(lit(NULL));
                if matches!(self.kind, Kind::Std(_)) {
                    var.sqrt()
                } else {
                    var
                }
            }
            Kind::Min | Kind::Max | Kind::First | Kind::Last => col(p(j, "v")),
        };
        e.cast(dtype.clone()).alias(name.clone())
    }
}

impl GroupBy {
    /// Hash-partitions the result into `n` partitions instead of one (for many groups).
    pub fn split_out(mut self, n: usize) -> Self {
        self.split_out = Some(n.max(1));
        self
    }

    /// Sorts the result by the keys (one output partition only).
    pub fn sort_keys(mut self, yes: bool) -> Self {
        self.sort = yes;
        self
    }

    /// Runs the aggregations. Columns and types are checked now, against the schema.
    pub fn agg<E: AsRef<[Expr]>>(self, aggs: E) -> Result<Frame> {
        let aggs: Vec<Expr> = aggs.as_ref().to_vec();
        let frame = &self.frame;
        let keys = self.keys.clone();
        let key_strs: Vec<&str> = keys.iter().map(|k| k.as_str()).collect();
        frame.check_columns(&key_strs, "group_by")?;
        if aggs.is_empty() {
            return Err(Error::config("frame.group_by.agg: no aggregations"));
        }
        let key_exprs: Vec<Expr> = keys.iter().map(|k| col(k.clone())).collect();
        // Output schema of the same query in polars (validates columns and types).
        let (ke, ag) = (key_exprs.clone(), aggs.clone());
        let out_schema = check_lazy(&frame.schema, "group_by.agg", move |lf| {
            lf.group_by(ke).agg(ag)
        })?;
        let mut needed: BTreeSet<PlSmallStr> = keys.iter().cloned().collect();
        match exprs_columns(&aggs) {
            Some(c) => needed.extend(c),
            None => {
                needed = frame.schema.iter_names().cloned().collect();
            }
        }
        let specs: Option<Vec<Spec>> = aggs.iter().map(decompose).collect();
        let out = match specs {
            Some(specs) => self.tree(specs, key_exprs, &out_schema, needed),
            None => self.shuffled(aggs, key_exprs, &out_schema, needed),
        }?;
        if self.sort && out.parts.len() == 1 {
            let k = keys.clone();
            let schema = out.schema.clone();
            let nodes = out.lazy_parts(
                "group-sort",
                None,
                Arc::new(move |lf| lf.sort(k.clone(), SortMultipleOptions::default())),
            );
            return Ok(Frame::of_nodes(nodes, schema));
        }
        Ok(out)
    }

    fn tree(
        &self,
        specs: Vec<Spec>,
        key_exprs: Vec<Expr>,
        out_schema: &SchemaRef,
        needed: BTreeSet<PlSmallStr>,
    ) -> Result<Frame> {
        let partial: Vec<Expr> = specs
            .iter()
            .enumerate()
            .flat_map(|(j, s)| s.partial(j))
            .collect();
        let combine: Vec<Expr> = specs
            .iter()
            .enumerate()
            .flat_map(|(j, s)| s.combine(j))
            .collect();
        let nkeys = key_exprs.len();
        let mut finalize: Vec<Expr> = key_exprs.clone();
        for (j, s) in specs.iter().enumerate() {
            let (name, dtype) = out_schema
                .get_at_index(nkeys + j)
                .ok_or_else(|| Error::internal("group_by output schema"))?;
            finalize.push(s.finalize(j, name, dtype));
        }
        let (ke, pa) = (key_exprs.clone(), partial.clone());
        let partial_schema = check_lazy(&self.frame.schema, "group_by.agg", move |lf| {
            lf.group_by(ke).agg(pa)
        })?;
        let (ke, pa) = (key_exprs.clone(), partial);
        // The partial aggregation joins the partition's own polars chain (one query).
        let partials = self.frame.lazy_parts(
            "groupby-partial",
            Some(needed),
            Arc::new(move |lf| lf.group_by(ke.clone()).agg(pa.clone())),
        );
        let split_out = self.split_out.unwrap_or(1);
        let combine_fn = {
            let (ke, co, ps) = (key_exprs.clone(), combine, partial_schema.clone());
            Arc::new(move |dfs: Vec<DataFrame>| -> Result<DataFrame> {
                let df = concat(dfs, &ps)?;
                df.lazy()
                    .group_by(ke.clone())
                    .agg(co.clone())
                    .collect()
                    .map_err(pl("group_by combine"))
            })
        };
        let finalize_fn = Arc::new(move |df: DataFrame| -> Result<DataFrame> {
            df.lazy()
                .select(finalize.clone())
                .collect()
                .map_err(pl("group_by finalize"))
        });
        let id = next_op();
        let outputs: Vec<Arc<Node>> = if split_out == 1 {
            vec![tree_reduce(partials, id, 0, combine_fn, finalize_fn)]
        } else {
            let keys = self.keys.clone();
            let outs = shuffle_pieces(
                &partials,
                split_out,
                Arc::new(move |df| {
                    hash_split(&df, &keys, split_out).map_err(pl("group_by split_out"))
                }),
            );
            outs.into_iter()
                .enumerate()
                .map(|(j, pieces)| {
                    tree_reduce(
                        pieces,
                        id,
                        j as i64,
                        combine_fn.clone(),
                        finalize_fn.clone(),
                    )
                })
                .collect()
        };
        Ok(Frame::of_nodes(outputs, out_schema.clone()))
    }

    fn shuffled(
        &self,
        aggs: Vec<Expr>,
        key_exprs: Vec<Expr>,
        out_schema: &SchemaRef,
        needed: BTreeSet<PlSmallStr>,
    ) -> Result<Frame> {
        let n = self
            .split_out
            .unwrap_or_else(|| self.frame.parts.len().clamp(1, 64));
        let cols: Vec<Expr> = self
            .frame
            .schema
            .iter_names()
            .filter(|c| needed.contains(*c))
            .map(|c| col(c.clone()))
            .collect();
        let projected = self.frame.select(cols)?;
        let nodes = projected.nodes();
        let keys = self.keys.clone();
        let outs = shuffle_pieces(
            &nodes,
            n,
            Arc::new(move |df| hash_split(&df, &keys, n).map_err(pl("group_by shuffle"))),
        );
        let shuffled = Frame::of_nodes(
            gather_pieces(outs, &projected.schema),
            projected.schema.clone(),
        );
        let nodes = shuffled.lazy_parts(
            "groupby-exact",
            None,
            Arc::new(move |lf| lf.group_by(key_exprs.clone()).agg(aggs.clone())),
        );
        Ok(Frame::of_nodes(nodes, out_schema.clone()))
    }
}

/// Combines `inputs` in groups of [`FAN_IN`] until one is left, then finalizes it.
pub(crate) fn tree_reduce(
    inputs: Vec<Arc<Node>>,
    id: i64,
    out: i64,
    combine: Arc<dyn Fn(Vec<DataFrame>) -> Result<DataFrame> + Send + Sync>,
    finalize: Arc<dyn Fn(DataFrame) -> Result<DataFrame> + Send + Sync>,
) -> Arc<Node> {
    let mut level = inputs;
    let mut depth = 0i64;
    while level.len() > 1 {
        let mut next = Vec::with_capacity(level.len().div_ceil(FAN_IN));
        for (g, chunk) in level.chunks(FAN_IN).enumerate() {
            let combine = combine.clone();
            next.push(df_task(
                "groupby-combine",
                &[id, out, depth, g as i64],
                chunk.to_vec(),
                move |inputs| {
                    let dfs = inputs.iter_mut().map(take_df).collect::<Result<Vec<_>>>()?;
                    combine(dfs)
                },
            ));
        }
        level = next;
        depth += 1;
    }
    let deps = level;
    df_task("groupby-finalize", &[id, out], deps, move |inputs| {
        let df = match inputs.first_mut() {
            // A single partial still goes through combine once: partials of one partition
            // are already one row per group, but combine normalizes empty input.
            Some(v) => combine(vec![take_df(v)?])?,
            None => combine(Vec::new())?,
        };
        finalize(df)
    })
}
