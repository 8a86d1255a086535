//! Per-partition operations kept pending on a frame and fused into one polars `LazyFrame`
//! chain per partition when a consumer materializes it, plus the column analysis that pushes
//! the projection into the source reader.
//!
//! Projection analysis walks the pending ops backwards from the columns the consumer needs:
//! `select` needs exactly the leaf columns of its expressions, `filter` adds its predicate's
//! columns, `with_columns` replaces the columns it defines by their inputs, `rename` maps new
//! names back to old ones, and a user function (`map_partitions`) or a selector (`col("*")`,
//! regex) needs every column. The source then parses only the columns that survive.

use std::collections::BTreeSet;
use std::sync::Arc;

use polars::prelude::*;

use crate::error::{Error, Result};

/// A user function applied to each partition.
pub type PartitionFn = Arc<dyn Fn(DataFrame) -> PolarsResult<DataFrame> + Send + Sync>;

/// One pending per-partition operation.
#[derive(Clone)]
pub(crate) enum PartOp {
    Select(Vec<Expr>),
    Filter(Expr),
    WithColumns(Vec<Expr>),
    Drop(Vec<PlSmallStr>),
    Rename(Vec<PlSmallStr>, Vec<PlSmallStr>),
    Map(PartitionFn),
    /// A join with a whole small table (a graph value), e.g. a broadcast join: pending like
    /// the others, so the columns it and its consumer need reach the source reader.
    JoinSide(Arc<SideJoin>),
    /// Columns of a one-row graph value (whole-frame aggregates) added to every row.
    Broadcast(Arc<Broadcast>),
}

/// A one-row `DataFrame` computed by `side`, whose columns every partition gets as literals.
pub(crate) struct Broadcast {
    pub(crate) side: Arc<super::task::Node>,
    pub(crate) side_schema: SchemaRef,
}

/// The columns of the first row of `row` as literal expressions (typed nulls when `row` is
/// empty, which only happens when checking schemas).
pub(crate) fn row_literals(row: &DataFrame, schema: &Schema) -> Vec<Expr> {
    schema
        .iter()
        .map(|(name, dtype)| {
            let value = row
                .column(name)
                .ok()
                .filter(|c| !c.is_empty())
                .and_then(|c| c.get(0).ok().map(|v| v.into_static()));
            match value {
                Some(v) => lit(Scalar::new(dtype.clone(), v)).alias(name.clone()),
                None => lit(NULL).cast(dtype.clone()).alias(name.clone()),
            }
        })
        .collect()
}

/// A join of every partition with one `DataFrame` computed by `side`.
pub(crate) struct SideJoin {
    pub(crate) side: Arc<super::task::Node>,
    pub(crate) side_schema: SchemaRef,
    /// Output columns of this join that come from the left (partition) side.
    pub(crate) left_columns: BTreeSet<PlSmallStr>,
    pub(crate) left_on: Vec<PlSmallStr>,
    pub(crate) join: Arc<dyn Fn(LazyFrame, LazyFrame) -> LazyFrame + Send + Sync>,
}

impl PartOp {
    /// The graph value this op reads besides the partition, if any.
    pub(crate) fn side_node(&self) -> Option<&Arc<super::task::Node>> {
        match self {
            PartOp::JoinSide(j) => Some(&j.side),
            PartOp::Broadcast(b) => Some(&b.side),
            _ => None,
        }
    }
}

impl PartOp {
    /// Appends this op to `lf`; `side` is the value of [`side_node`](Self::side_node) (`None`
    /// when only the schema matters: an empty frame of the side's schema stands in).
    fn apply_lazy(&self, lf: LazyFrame, side: Option<DataFrame>) -> LazyFrame {
        match self {
            PartOp::JoinSide(j) => {
                let right = side.unwrap_or_else(|| DataFrame::empty_with_schema(&j.side_schema));
                (j.join)(lf, right.lazy())
            }
            PartOp::Broadcast(b) => {
                let row = side.unwrap_or_else(|| DataFrame::empty_with_schema(&b.side_schema));
                lf.with_columns(row_literals(&row, &b.side_schema))
            }
            PartOp::Select(e) => lf.select(e.clone()),
            PartOp::Filter(e) => lf.filter(e.clone()),
            PartOp::WithColumns(e) => lf.with_columns(e.clone()),
            PartOp::Drop(c) => lf.drop(by_names(c)),
            PartOp::Rename(a, b) => lf.rename(a.iter().cloned(), b.iter().cloned(), true),
            PartOp::Map(_) => lf,
        }
    }
}

fn by_names(c: &[PlSmallStr]) -> Selector {
    Selector::ByName {
        names: c.iter().cloned().collect(),
        strict: true,
    }
}

/// Applies `ops` to `df` as one lazy chain (user functions split the chain), then `last`.
/// `sides` holds the values of the ops' [`side_node`](PartOp::side_node)s, in op order.
pub(crate) fn apply(
    df: DataFrame,
    ops: &[PartOp],
    last: Option<&(dyn Fn(LazyFrame) -> LazyFrame + Send + Sync)>,
    sides: &mut [crate::graph::Value],
) -> crate::error::Result<DataFrame> {
    if ops.is_empty() && last.is_none() {
        return Ok(df);
    }
    let mut sides = sides.iter_mut();
    let mut lf = df.lazy();
    for op in ops {
        if let PartOp::Map(f) = op {
            let df = lf.collect().map_err(super::task::pl("partition query"))?;
            lf = f(df).map_err(super::task::pl("partition function"))?.lazy();
        } else if op.side_node().is_some() {
            let side = sides
                .next()
                .ok_or_else(|| Error::internal("frame op: missing side input"))?;
            let side = super::task::take_df(side)?;
            lf = op.apply_lazy(lf, Some(side));
        } else {
            lf = op.apply_lazy(lf, None);
        }
    }
    if let Some(last) = last {
        lf = last(lf);
    }
    lf.collect().map_err(super::task::pl("partition query"))
}

/// The schema after `ops`, checked against `schema` (a missing column or a type error is
/// reported here, at graph-build time, naming the column). User functions are run on an empty
/// frame of the input schema.
pub(crate) fn output_schema(schema: &SchemaRef, ops: &[PartOp], what: &str) -> Result<SchemaRef> {
    let empty = DataFrame::empty_with_schema(schema);
    let mut lf = empty.lazy();
    for op in ops {
        if let PartOp::Map(f) = op {
            let df = lf.collect().map_err(build_err(what))?;
            lf = f(df).map_err(build_err(what))?.lazy();
        } else {
            lf = op.apply_lazy(lf, None);
        }
    }
    lf.collect_schema().map_err(build_err(what))
}

/// Runs `last` on an empty frame of `schema` to check it and learn its output schema.
pub(crate) fn check_lazy(
    schema: &SchemaRef,
    what: &str,
    last: impl FnOnce(LazyFrame) -> LazyFrame,
) -> Result<SchemaRef> {
    let mut lf = last(DataFrame::empty_with_schema(schema).lazy());
    lf.collect_schema().map_err(build_err(what))
}

pub(crate) fn build_err(what: &str) -> impl Fn(PolarsError) -> Error + '_ {
    move |e| Error::config(format!("frame.{what}: {e}"))
}

/// Columns an expression reads, or `None` when it may read any (a selector, `*`, regex).
pub(crate) fn expr_columns(e: &Expr) -> Option<BTreeSet<PlSmallStr>> {
    let mut out = BTreeSet::new();
    for sub in e {
        match sub {
            Expr::Column(name) => {
                if name.as_str() == "*" || name.starts_with('^') {
                    return None;
                }
                out.insert(name.clone());
            }
            Expr::Selector(_) => return None,
            _ => {}
        }
    }
    Some(out)
}

pub(crate) fn exprs_columns(es: &[Expr]) -> Option<BTreeSet<PlSmallStr>> {
    let mut out = BTreeSet::new();
    for e in es {
        out.extend(expr_columns(e)?);
    }
    Some(out)
}

/// Output names of expressions (the alias, else the first leaf column).
fn output_names(es: &[Expr], schema_in: &SchemaRef) -> Option<Vec<PlSmallStr>> {
    let lf = DataFrame::empty_with_schema(schema_in).lazy().select(es);
    let mut lf = lf;
    lf.collect_schema()
        .ok()
        .map(|s| s.iter_names().cloned().collect())
}

/// The source columns needed to produce `needed` (`None` = all) after `ops`, given the source
/// schema. Returns `None` when every column is needed.
pub(crate) fn needed_source_columns(
    source: &SchemaRef,
    ops: &[PartOp],
    needed: Option<BTreeSet<PlSmallStr>>,
) -> Option<Vec<PlSmallStr>> {
    // Schemas before each op, to resolve `with_columns` output names.
    let mut schemas = vec![source.clone()];
    for (i, _) in ops.iter().enumerate() {
        let s = output_schema(source, &ops[..=i], "projection")
            .unwrap_or_else(|_| Arc::new(Schema::default()));
        schemas.push(s);
    }
    let mut need = needed;
    for (i, op) in ops.iter().enumerate().rev() {
        need = match (op, need) {
            (PartOp::Map(_), _) => None,
            (PartOp::Select(e), _) => exprs_columns(e),
            (_, None) => None,
            (PartOp::Filter(e), Some(mut n)) => expr_columns(e).map(|c| {
                n.extend(c);
                n
            }),
            (PartOp::WithColumns(e), Some(mut n)) => match output_names(e, &schemas[i]) {
                None => None,
                Some(names) => {
                    // Only the expressions whose outputs are needed.
                    let mut used = Vec::new();
                    for (expr, name) in e.iter().zip(&names) {
                        if n.remove(name) {
                            used.push(expr.clone());
                        }
                    }
                    exprs_columns(&used).map(|c| {
                        n.extend(c);
                        n
                    })
                }
            },
            (PartOp::Drop(_), Some(n)) => Some(n),
            // The broadcast columns come from the side value, not the source.
            (PartOp::Broadcast(b), Some(n)) => Some(
                n.into_iter()
                    .filter(|c| b.side_schema.get(c).is_none())
                    .collect(),
            ),
            // The partition side's columns among those needed, and its join keys.
            (PartOp::JoinSide(j), Some(n)) => Some(
                n.into_iter()
                    .filter(|c| j.left_columns.contains(c))
                    .chain(j.left_on.iter().cloned())
                    .collect(),
            ),
            (PartOp::Rename(old, new), Some(n)) => Some(
                n.into_iter()
                    .map(|c| match new.iter().position(|x| *x == c) {
                        Some(p) => old[p].clone(),
                        None => c,
                    })
                    .collect(),
            ),
        };
    }
    let need = need?;
    let cols: Vec<PlSmallStr> = source
        .iter_names()
        .filter(|n| need.contains(*n))
        .cloned()
        .collect();
    if cols.len() == source.len() {
        None
    } else {
        Some(cols)
    }
}
