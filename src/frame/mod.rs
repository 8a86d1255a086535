//! Chunked data frames: a [`Frame`] is a lazy sequence of partitions, each a polars
//! [`DataFrame`], computed through brisk's runtime within its memory limit (design §5).
//!
//! The API speaks polars: filters, projections and new columns are polars [`Expr`]s, and they
//! mean what they mean in polars on the whole table: `col("x").sum()` is the whole column's
//! sum, whatever the partitioning. Elementwise expressions are kept pending on the frame and
//! applied per partition as **one** `LazyFrame` chain when something consumes the partitions;
//! the columns the chain and its consumer read are pushed into the source reader, so a CSV
//! partition parses only the columns a query uses (see [`ops`]). Aggregations, `shift`,
//! `cum_*`, `rolling_*` by rows and `over(keys)` inside an expression are computed across
//! partitions; any other expression that depends on other rows fails when the frame is built.
//!
//! ```no_run
//! use brisk::frame::{self, col, lit, CsvOptions};
//! use brisk::prelude::*;
//! let rt = Runtime::builder().threads(2).build()?;
//! let f = frame::read_csv("data/*.csv", CsvOptions::default())?;
//! let by_name = f
//!     .filter(col("x").gt(lit(0.0)))?
//!     .group_by(["name"])
//!     .agg([col("x").mean()])?;
//! let df = rt.compute(&by_name)?;
//! # Ok::<(), brisk::Error>(())
//! ```
//!
//! How each family of operations runs:
//! - sources ([`read_csv`], [`read_parquet`], [`from_polars`], [`from_partitions`]);
//! - expressions (`select`, `filter`, `with_columns`, …): elementwise ones per partition, in
//!   [`ops`]; aggregations, windows and cumulative functions across partitions (`expr`);
//! - group-bys: partial aggregation per partition, a tree combine of fan-in 8, finalize; or an
//!   exact hash shuffle for holistic aggregations ([`groupby`]);
//! - joins: broadcast a small side or hash-shuffle both ([`join`], [`shuffle`]);
//! - sorting by sampled quantiles and a range shuffle, all inside the graph ([`sort`]);
//! - rolling windows and resampling across partition boundaries ([`timeseries`]);
//! - sinks ([`sink`]).
//!
//! **Threads.** Partition tasks run on brisk's workers, one per core, and must not be joined by
//! a second full set of busy polars threads. CSV partitions are parsed by polars' chunk parser
//! called on the worker itself (not polars' reader, which counts lines first and parses in its
//! pool), and each partition's query runs through polars' in-memory engine. Some polars kernels
//! still hand work to polars' global pool and **wait** for it; so a program should size that
//! pool to brisk's thread count with `POLARS_MAX_THREADS` set before polars is first used (the
//! `brisk` benchmarks and the examples do): a waiting worker is idle, so at most that many
//! threads are busy. A pool of one thread would serialize every worker's polars calls.

mod expr;
pub mod groupby;
mod iso_time;
pub mod join;
pub mod ops;
mod plain_csv;
pub mod shuffle;
pub mod sink;
pub mod sort;
pub mod source_csv;
pub mod source_parquet;
pub mod task;
pub mod timeseries;

use std::collections::BTreeSet;
use std::sync::Arc;

pub use polars::prelude::{col, len, lit, DataFrame, DataType, Expr, Schema, SchemaRef};
use polars::prelude::{LazyFrame, PlSmallStr};

pub use groupby::GroupBy;
pub use join::{JoinHow, JoinOptions};
pub use ops::PartitionFn;
pub use source_csv::{read_csv, read_csv_paths, CsvOptions};
pub use source_parquet::{read_parquet, ParquetOptions};
pub use task::Lazy;

use crate::error::{Error, Result};
use crate::graph::{Graph, Key, Value};
use crate::sched::{Compute, Runtime};
use crate::Delayed;
use ops::PartOp;
use task::{df_task, external, literal_df, next_op, pl, take_df, task, Node};

/// Reads one partition from outside the graph (a byte range of a CSV file, a Parquet row
/// group), parsing only `columns` (`None`: all).
pub(crate) trait Source: Send + Sync {
    fn read(&self, columns: Option<&[PlSmallStr]>) -> Result<DataFrame>;

    /// Only the given rows (0-based within the partition, in the given order), all columns;
    /// `None` when this source cannot pick rows cheaply (the caller reads everything and
    /// gathers). Lets `nsmallest` parse one column of every row and all columns of `n` rows.
    fn read_rows(&self, _rows: &[polars::prelude::IdxSize]) -> Result<Option<DataFrame>> {
        Ok(None)
    }
}

/// Where a partition comes from.
#[derive(Clone)]
pub(crate) enum Part {
    /// A task of the graph.
    Node(Arc<Node>),
    /// Read by the consuming task itself (so reading, the pending ops and the consumer fuse).
    Source(Arc<dyn Source>),
}

/// A lazy, partitioned data frame. Cheap to clone.
#[derive(Clone)]
pub struct Frame {
    pub(crate) parts: Vec<Part>,
    /// Schema of what the parts yield, before `ops`.
    pub(crate) source_schema: SchemaRef,
    pub(crate) ops: Arc<Vec<PartOp>>,
    /// Schema after `ops`.
    pub(crate) schema: SchemaRef,
    /// A column the partitions are sorted by, each partition's values all ≤ the next's.
    pub(crate) sorted_by: Option<PlSmallStr>,
    /// The task that finds the boundaries between partitions of the sort column (after
    /// `sort`), computed with the frame.
    pub(crate) divisions: Option<Arc<Node>>,
}

impl std::fmt::Debug for Frame {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Frame")
            .field("partitions", &self.parts.len())
            .field("schema", &self.schema)
            .field("pending_ops", &self.ops.len())
            .finish()
    }
}

/// A per-partition consumer: the partition after the pending ops, and its index.
pub(crate) type Consumer = Arc<dyn Fn(DataFrame, usize) -> Result<Value> + Send + Sync>;
/// A lazy step appended to a partition's polars chain.
pub(crate) type LastFn = Arc<dyn Fn(LazyFrame) -> LazyFrame + Send + Sync>;
/// A per-partition consumer that also reads extra inputs.
pub(crate) type ConsumerWith =
    Arc<dyn Fn(DataFrame, usize, &mut [Value]) -> Result<Value> + Send + Sync>;

/// Concatenates frames of the same schema (an empty list gives an empty frame of `schema`).
pub(crate) fn concat(dfs: Vec<DataFrame>, schema: &SchemaRef) -> Result<DataFrame> {
    let mut it = dfs.into_iter().filter(|d| d.height() > 0);
    let Some(mut first) = it.next() else {
        return Ok(DataFrame::empty_with_schema(schema));
    };
    for d in it {
        first
            .vstack_mut_owned(d)
            .map_err(pl("concatenating partitions"))?;
    }
    Ok(first)
}

impl Frame {
    pub(crate) fn from_parts(parts: Vec<Part>, schema: SchemaRef) -> Frame {
        Frame {
            parts,
            source_schema: schema.clone(),
            ops: Arc::new(Vec::new()),
            schema,
            sorted_by: None,
            divisions: None,
        }
    }

    /// Number of partitions.
    pub fn num_partitions(&self) -> usize {
        self.parts.len()
    }

    /// The schema of the partitions (known at graph-build time).
    pub fn schema(&self) -> &SchemaRef {
        &self.schema
    }

    /// Column names, in order.
    pub fn columns(&self) -> Vec<String> {
        self.schema.iter_names().map(|n| n.to_string()).collect()
    }

    /// The column the partitions are known to be sorted by (each partition's values ≤ the
    /// next partition's), if any.
    pub fn sorted_by(&self) -> Option<&str> {
        self.sorted_by.as_deref()
    }

    /// Declares the frame sorted by `column` (e.g. files named in time order).
    /// [`sort`](Self::sort) then checks this cheaply instead of shuffling.
    pub fn assume_sorted(mut self, column: &str) -> Result<Frame> {
        self.check_columns(&[column], "assume_sorted")?;
        self.sorted_by = Some(column.into());
        Ok(self)
    }

    pub(crate) fn check_columns(&self, cols: &[&str], what: &str) -> Result<()> {
        for c in cols {
            if self.schema.get(c).is_none() {
                return Err(Error::config(format!(
                    "frame.{what}: no column `{c}` (columns: {})",
                    self.columns().join(", ")
                )));
            }
        }
        Ok(())
    }

    fn with_op(&self, op: PartOp, what: &str) -> Result<Frame> {
        let mut ops = (*self.ops).clone();
        ops.push(op);
        let schema = ops::output_schema(&self.source_schema, &ops, what)?;
        let keeps_sort = self
            .sorted_by
            .as_ref()
            .is_some_and(|c| schema.get(c).is_some());
        Ok(Frame {
            parts: self.parts.clone(),
            source_schema: self.source_schema.clone(),
            ops: Arc::new(ops),
            schema,
            sorted_by: if keeps_sort {
                self.sorted_by.clone()
            } else {
                None
            },
            divisions: if keeps_sort {
                self.divisions.clone()
            } else {
                None
            },
        })
    }

    /// Keeps the given expressions (polars `select`), computed over the whole frame: an
    /// aggregation (`col("x").sum()`) is the whole column's, a `select` of aggregations only
    /// yields one row, and `shift`, `cum_sum`, `rolling_*` by rows and `agg.over(keys)` see
    /// across partition boundaries. An expression that cannot be computed so fails here,
    /// naming the method that does it (see [`map_partitions`](Self::map_partitions) for
    /// polars code run on each partition on purpose).
    pub fn select<E: AsRef<[Expr]>>(&self, exprs: E) -> Result<Frame> {
        self.apply_exprs(expr::Method::Select, exprs.as_ref().to_vec())
    }

    /// Keeps the rows where `predicate` holds; the predicate is computed over the whole frame
    /// like [`select`](Self::select)'s expressions (`col("x").gt(col("x").mean())` compares
    /// with the whole column's mean).
    pub fn filter(&self, predicate: Expr) -> Result<Frame> {
        self.apply_exprs(expr::Method::Filter, vec![predicate])
    }

    /// Adds or replaces columns, computed over the whole frame like
    /// [`select`](Self::select)'s expressions (`col("x") - col("x").mean()` subtracts the
    /// whole column's mean).
    pub fn with_columns<E: AsRef<[Expr]>>(&self, exprs: E) -> Result<Frame> {
        self.apply_exprs(expr::Method::WithColumns, exprs.as_ref().to_vec())
    }

    /// Adds or replaces one column.
    pub fn with_column(&self, expr: Expr) -> Result<Frame> {
        self.with_columns([expr])
    }

    /// Drops columns (each must exist).
    pub fn drop<S: AsRef<str>>(&self, columns: &[S]) -> Result<Frame> {
        let cols: Vec<&str> = columns.iter().map(|c| c.as_ref()).collect();
        self.check_columns(&cols, "drop")?;
        self.with_op(
            PartOp::Drop(cols.iter().map(|c| PlSmallStr::from(*c)).collect()),
            "drop",
        )
    }

    /// Renames columns `(old, new)`.
    pub fn rename<S: AsRef<str>>(&self, pairs: &[(S, S)]) -> Result<Frame> {
        let old: Vec<&str> = pairs.iter().map(|p| p.0.as_ref()).collect();
        self.check_columns(&old, "rename")?;
        let mut f = self.with_op(
            PartOp::Rename(
                old.iter().map(|c| PlSmallStr::from(*c)).collect(),
                pairs
                    .iter()
                    .map(|p| PlSmallStr::from(p.1.as_ref()))
                    .collect(),
            ),
            "rename",
        )?;
        if let Some(s) = &self.sorted_by {
            if let Some(p) = pairs.iter().find(|p| p.0.as_ref() == s.as_str()) {
                f.sorted_by = Some(p.1.as_ref().into());
            }
        }
        Ok(f)
    }

    /// Applies a user function to every partition: the way to run polars code on each
    /// partition on purpose (expressions given to [`select`](Self::select) and its siblings
    /// mean the whole frame). Its output schema is learned by calling it once on an empty frame
    /// of the input schema (so it must accept empty input).
    pub fn map_partitions(
        &self,
        f: impl Fn(DataFrame) -> polars::prelude::PolarsResult<DataFrame> + Send + Sync + 'static,
    ) -> Result<Frame> {
        let mut out = self.with_op(PartOp::Map(Arc::new(f)), "map_partitions")?;
        out.sorted_by = None;
        Ok(out)
    }

    /// One task per partition: reads it (only the columns the pending ops and `needed` use),
    /// applies the pending ops, then `consume`.
    pub(crate) fn consume(
        &self,
        name: &str,
        needed: Option<BTreeSet<PlSmallStr>>,
        consume: Consumer,
    ) -> Vec<Arc<Node>> {
        self.consume_with(
            name,
            needed,
            Vec::new(),
            None,
            Arc::new(move |df, i, _| consume(df, i)),
        )
    }

    /// Like [`consume`](Self::consume), with `extra` nodes as further inputs of every task
    /// (their values are passed to `consume` as a slice).
    pub(crate) fn consume_with(
        &self,
        name: &str,
        needed: Option<BTreeSet<PlSmallStr>>,
        extra: Vec<Arc<Node>>,
        last: Option<LastFn>,
        consume: ConsumerWith,
    ) -> Vec<Arc<Node>> {
        let projection: Option<Arc<[PlSmallStr]>> =
            ops::needed_source_columns(&self.source_schema, &self.ops, needed).map(|mut c| {
                if c.is_empty() {
                    // Still need the row count: read the first column.
                    if let Some(first) = self.source_schema.iter_names().next() {
                        c.push(first.clone());
                    }
                }
                c.into()
            });
        let id = next_op();
        let side_nodes: Vec<Arc<Node>> = self
            .ops
            .iter()
            .filter_map(|op| op.side_node().cloned())
            .collect();
        self.parts
            .iter()
            .enumerate()
            .map(|(i, part)| {
                let ops = Arc::clone(&self.ops);
                let consume = Arc::clone(&consume);
                let last = last.clone();
                let index = [id, i as i64];
                // Inputs: [the partition's node], the ops' side values, then `extra`.
                let mut deps: Vec<Arc<Node>> = match part {
                    Part::Node(n) => vec![n.clone()],
                    Part::Source(_) => Vec::new(),
                };
                let own = deps.len();
                deps.extend(side_nodes.iter().cloned());
                deps.extend(extra.iter().cloned());
                let sides = side_nodes.len();
                match part {
                    Part::Node(_) => task(name, &index, deps, move |inputs| {
                        let df = take_df(&mut inputs[0])?;
                        let (side, rest) = inputs[own..].split_at_mut(sides);
                        let df = ops::apply(df, &ops, last.as_deref(), side)?;
                        consume(df, i, rest)
                    }),
                    Part::Source(src) => {
                        let src = Arc::clone(src);
                        let projection = projection.clone();
                        task(name, &index, deps, move |inputs| {
                            let df = src.read(projection.as_deref())?;
                            let (side, rest) = inputs.split_at_mut(sides);
                            let df = ops::apply(df, &ops, last.as_deref(), side)?;
                            consume(df, i, rest)
                        })
                    }
                }
            })
            .collect()
    }

    /// Like [`consume`](Self::consume) with a lazy step appended to the per-partition chain;
    /// yields spillable `DataFrame` tasks.
    pub(crate) fn lazy_parts(
        &self,
        name: &str,
        needed: Option<BTreeSet<PlSmallStr>>,
        last: LastFn,
    ) -> Vec<Arc<Node>> {
        self.consume_with(
            name,
            needed,
            Vec::new(),
            Some(last),
            Arc::new(|df, _, _| Ok(Value::spillable(df))),
        )
    }

    /// The partitions as graph tasks with the pending ops applied (no op: the parts as they
    /// are). Sources are read by these tasks.
    pub(crate) fn materialize(&self) -> Frame {
        let all_nodes =
            self.ops.is_empty() && self.parts.iter().all(|p| matches!(p, Part::Node(_)));
        if all_nodes {
            return self.clone();
        }
        let nodes = self.consume(
            "partition",
            None,
            Arc::new(|df, _| Ok(Value::spillable(df))),
        );
        Frame {
            parts: nodes.into_iter().map(Part::Node).collect(),
            source_schema: self.schema.clone(),
            ops: Arc::new(Vec::new()),
            schema: self.schema.clone(),
            sorted_by: self.sorted_by.clone(),
            divisions: self.divisions.clone(),
        }
    }

    /// The partitions as graph nodes (materializing pending ops).
    pub(crate) fn nodes(&self) -> Vec<Arc<Node>> {
        self.materialize()
            .parts
            .into_iter()
            .filter_map(|p| match p {
                Part::Node(n) => Some(n),
                Part::Source(_) => None,
            })
            .collect()
    }

    /// A frame of already built partition nodes.
    pub(crate) fn of_nodes(nodes: Vec<Arc<Node>>, schema: SchemaRef) -> Frame {
        Frame::from_parts(nodes.into_iter().map(Part::Node).collect(), schema)
    }

    /// Number of rows, computed lazily (reads as few columns as the pending ops allow).
    pub fn len(&self) -> Lazy<u64> {
        let counts = self.consume(
            "len",
            Some(BTreeSet::new()),
            Arc::new(|df, _| Ok(Value::new(df.height() as u64))),
        );
        let id = next_op();
        Lazy::new(task("len-sum", &[id], counts, |inputs| {
            let mut total = 0u64;
            for v in inputs.iter_mut() {
                total += task::take::<u64>(v)?;
            }
            Ok(Value::new(total))
        }))
    }

    /// Same as [`len`](Self::len) (Dask's `count` of rows).
    pub fn count_rows(&self) -> Lazy<u64> {
        self.len()
    }

    /// True if the frame has no partitions (it may still have empty partitions).
    pub fn is_empty(&self) -> bool {
        self.parts.is_empty()
    }

    /// The first `n` rows, as a one-partition frame. Nothing runs now: when computed, its
    /// task computes the partitions one batch at a time (as many as the runtime has threads)
    /// and stops as soon as it has `n` rows, so only the partitions it needs are read.
    pub fn head(&self, n: usize) -> Frame {
        let heads = self.consume(
            "head-part",
            None,
            Arc::new(move |df, _| Ok(Value::spillable(df.head(Some(n))))),
        );
        let schema = self.schema.clone();
        let s2 = schema.clone();
        let op = crate::graph::Op::new("head", move |ctx, _inputs| {
            let rt = ctx
                .runtime()
                .ok_or_else(|| Error::msg("frame.head: computed outside a runtime"))?;
            let mut got: Vec<DataFrame> = Vec::new();
            let mut rows = 0;
            for batch in heads.chunks(rt.threads().max(1)) {
                if rows >= n {
                    break;
                }
                let part = Parts {
                    nodes: batch.to_vec(),
                };
                for df in rt.compute(&part)? {
                    rows += df.height();
                    got.push(df);
                }
            }
            Ok(Value::spillable(concat(got, &s2)?.head(Some(n))))
        });
        let key = Key::new("head".to_string(), &[next_op()]);
        Frame::of_nodes(vec![Arc::new(Node::new(key, op, Vec::new()))], schema)
    }

    /// Computes every partition now and keeps them in memory: later graphs read them instead
    /// of recomputing.
    pub fn persist(&self, rt: &Runtime) -> Result<Frame> {
        let m = self.materialize();
        let nodes = m.nodes();
        let dfs = rt.compute(&Parts {
            nodes: nodes.clone(),
        })?;
        let id = next_op();
        let parts = dfs
            .into_iter()
            .enumerate()
            .map(|(i, df)| Part::Node(literal_df("persisted", &[id, i as i64], df)))
            .collect();
        Ok(Frame {
            parts,
            source_schema: self.schema.clone(),
            ops: Arc::new(Vec::new()),
            schema: self.schema.clone(),
            sorted_by: self.sorted_by.clone(),
            divisions: self.divisions.clone(),
        })
    }

    /// Computes on `rt` and concatenates the partitions into one `DataFrame`.
    pub fn collect(&self, rt: &Runtime) -> Result<DataFrame> {
        rt.compute(self)
    }

    /// The partitions as a lazy list (for `rt.compute`), without concatenating them.
    pub fn partitions(&self) -> Parts {
        Parts {
            nodes: self.nodes(),
        }
    }
}

/// A list of partitions to compute as `Vec<DataFrame>`.
pub struct Parts {
    pub(crate) nodes: Vec<Arc<Node>>,
}

impl Compute for Parts {
    type Output = Vec<DataFrame>;

    fn build(&self, graph: &mut Graph, outputs: &mut Vec<Key>) -> Result<()> {
        task::add_nodes(&self.nodes, graph)?;
        outputs.extend(self.nodes.iter().map(|n| n.key.clone()));
        Ok(())
    }

    fn finish(&self, values: &mut std::vec::IntoIter<Value>) -> Result<Vec<DataFrame>> {
        (0..self.nodes.len())
            .map(|_| {
                let mut v = values
                    .next()
                    .ok_or_else(|| Error::internal("missing partition value"))?;
                take_df(&mut v)
            })
            .collect()
    }
}

/// Computing a frame concatenates its partitions in order. (Each `build` makes fresh tasks, so
/// a frame computed twice is computed twice; use [`Frame::persist`] to keep it.)
impl Compute for Frame {
    type Output = DataFrame;

    fn build(&self, graph: &mut Graph, outputs: &mut Vec<Key>) -> Result<()> {
        let nodes = self.nodes();
        task::add_nodes(&nodes, graph)?;
        outputs.extend(nodes.iter().map(|n| n.key.clone()));
        Ok(())
    }

    fn finish(&self, values: &mut std::vec::IntoIter<Value>) -> Result<DataFrame> {
        let mut dfs = Vec::with_capacity(self.parts.len());
        for _ in 0..self.parts.len() {
            let mut v = values
                .next()
                .ok_or_else(|| Error::internal("missing partition value"))?;
            dfs.push(take_df(&mut v)?);
        }
        let mut df = concat(dfs, &self.schema)?;
        df.rechunk_mut();
        Ok(df)
    }
}

/// Splits `df` into `n` partitions of near-equal row counts (`n` ≥ 1).
pub fn from_polars(df: DataFrame, n: usize) -> Frame {
    let n = n.max(1);
    let rows = df.height();
    let schema = df.schema().clone();
    let id = next_op();
    let parts = (0..n)
        .map(|i| {
            let start = rows * i / n;
            let end = rows * (i + 1) / n;
            let part = df.slice(start as i64, end - start);
            Part::Node(literal_df("from_polars", &[id, i as i64], part))
        })
        .collect();
    Frame::from_parts(parts, schema)
}

/// A frame whose partitions are the given `DataFrame`s (all of the same schema; may be empty
/// frames).
pub fn from_dataframes(dfs: Vec<DataFrame>) -> Result<Frame> {
    let schema = match dfs.first() {
        Some(d) => d.schema().clone(),
        None => return Err(Error::config("frame.from_dataframes: no partitions")),
    };
    for (i, d) in dfs.iter().enumerate() {
        if d.schema() != &schema {
            return Err(Error::config(format!(
                "frame.from_dataframes: partition {i} has schema {:?}, partition 0 has {:?}",
                d.schema(),
                schema
            )));
        }
    }
    let id = next_op();
    let parts = dfs
        .into_iter()
        .enumerate()
        .map(|(i, d)| Part::Node(literal_df("from_dataframes", &[id, i as i64], d)))
        .collect();
    Ok(Frame::from_parts(parts, schema))
}

/// A frame of delayed partitions; `schema` is what each must yield (checked when each
/// partition is consumed).
pub fn from_partitions(parts: Vec<Delayed<DataFrame>>, schema: Schema) -> Frame {
    let schema: SchemaRef = Arc::new(schema);
    let check_schema = schema.clone();
    let id = next_op();
    let nodes = parts
        .into_iter()
        .enumerate()
        .map(|(i, d)| {
            let ext = external(d);
            let s = check_schema.clone();
            Part::Node(df_task(
                "check_partition",
                &[id, i as i64],
                vec![ext],
                move |inputs| {
                    let df = take_df(&mut inputs[0])?;
                    if df.schema().as_ref() != s.as_ref() {
                        return Err(Error::config(format!(
                            "frame.from_partitions: partition {i} has schema {:?}, expected {:?}",
                            df.schema(),
                            s
                        )));
                    }
                    Ok(df)
                },
            ))
        })
        .collect();
    Frame::from_parts(nodes, schema)
}

/// A generated partition: `f(i)` computes partition `i` inside its task.
struct FnSource {
    f: Arc<dyn Fn(usize) -> polars::prelude::PolarsResult<DataFrame> + Send + Sync>,
    i: usize,
    schema: SchemaRef,
}

impl Source for FnSource {
    fn read(&self, columns: Option<&[PlSmallStr]>) -> Result<DataFrame> {
        let df = (self.f)(self.i).map_err(pl(format!("generating partition {}", self.i)))?;
        if df.schema().as_ref() != self.schema.as_ref() {
            return Err(Error::config(format!(
                "frame.from_fn: partition {} has schema {:?}, expected {:?}",
                self.i,
                df.schema(),
                self.schema
            )));
        }
        match columns {
            Some(c) => df
                .select(c.iter().cloned())
                .map_err(pl("projecting a generated partition")),
            None => Ok(df),
        }
    }
}

/// A frame of `n` partitions generated by `f(i)` inside the tasks that consume them (nothing
/// is materialized up front); every partition must have `schema`.
pub fn from_fn(
    n: usize,
    schema: Schema,
    f: impl Fn(usize) -> polars::prelude::PolarsResult<DataFrame> + Send + Sync + 'static,
) -> Frame {
    let schema: SchemaRef = Arc::new(schema);
    let f: Arc<dyn Fn(usize) -> polars::prelude::PolarsResult<DataFrame> + Send + Sync> =
        Arc::new(f);
    let parts = (0..n)
        .map(|i| {
            Part::Source(Arc::new(FnSource {
                f: f.clone(),
                i,
                schema: schema.clone(),
            }))
        })
        .collect();
    Frame::from_parts(parts, schema)
}

/// Concatenates frames of the same schema, partitions in order.
pub fn concat_frames(frames: &[Frame]) -> Result<Frame> {
    let first = frames
        .first()
        .ok_or_else(|| Error::config("frame.concat: no frames"))?;
    let mut parts = Vec::new();
    for (i, f) in frames.iter().enumerate() {
        if f.schema != first.schema {
            return Err(Error::config(format!(
                "frame.concat: frame {i} has schema {:?}, frame 0 has {:?}",
                f.schema, first.schema
            )));
        }
        parts.extend(f.materialize().parts);
    }
    Ok(Frame::from_parts(parts, first.schema.clone()))
}

impl Frame {
    /// Summary statistics of the numeric columns, like polars' `describe`: a column
    /// `statistic` (count, null_count, mean, std, min, max) and one `f64` column per numeric
    /// column. Computed in one pass (partial aggregation and a tree combine).
    pub fn describe(&self) -> Result<Frame> {
        use polars::prelude::{Column, NamedFrom, Series};
        let numeric: Vec<PlSmallStr> = self
            .schema
            .iter()
            .filter(|(_, d)| d.is_primitive_numeric())
            .map(|(n, _)| n.clone())
            .collect();
        if numeric.is_empty() {
            return Err(Error::config("frame.describe: no numeric columns"));
        }
        const STATS: [&str; 6] = ["count", "null_count", "mean", "std", "min", "max"];
        let mut aggs = Vec::new();
        for c in &numeric {
            let x = || col(c.clone());
            let f = |e: Expr, s: &str| e.cast(DataType::Float64).alias(format!("{c}\u{1}{s}"));
            aggs.push(f(x().count(), "count"));
            aggs.push(f(x().is_null().sum(), "null_count"));
            aggs.push(f(x().mean(), "mean"));
            aggs.push(f(x().std(1), "std"));
            aggs.push(f(x().min(), "min"));
            aggs.push(f(x().max(), "max"));
        }
        let one_row = self.agg(aggs)?;
        let cols = numeric.clone();
        one_row.map_partitions(move |df| {
            let mut out = vec![Column::new("statistic".into(), STATS.to_vec())];
            for c in &cols {
                let mut vals: Vec<Option<f64>> = Vec::with_capacity(STATS.len());
                for s in STATS {
                    let v = match df.column(&format!("{c}\u{1}{s}")) {
                        Ok(col) if !col.is_empty() => col.f64()?.get(0),
                        _ => None,
                    };
                    vals.push(v);
                }
                out.push(Series::new(c.clone(), vals).into());
            }
            DataFrame::new(STATS.len(), out)
        })
    }
}
