//! Expressions over the whole frame: `select`, `with_columns` and `filter` give the result polars
//! gives on the whole table, whatever the partitioning, or fail at graph-build time.
//!
//! Each expression is converted to polars' own expression IR (against the frame's schema, so
//! selectors and wildcards are expanded) and walked once. polars' function flags say which
//! nodes are elementwise and which return one value; every node falls in one class:
//!
//! - **elementwise** (columns, literals, arithmetic, casts, `when`, string and date functions,
//!   …): computed inside each partition's polars chain, as before;
//! - **aggregation** (`sum`, `mean`, `std`, `len`, `n_unique`, `median`, `null_count`, … of an
//!   elementwise input): computed once for the whole frame, then broadcast to every partition
//!   as a literal column of a one-row value; a `select` of aggregations only is that one row.
//!   sum, count, len, min, max, mean, var/std (merging count, mean and M2), first and last
//!   share one tree reduction; `n_unique` counts the values left by a hash-shuffled dedup;
//!   the others (median, quantile, null_count, …) gather their own input column into one
//!   task and run polars on it, exactly;
//! - **order-dependent with a bounded reach** (`shift`, `rolling_*` by rows): each partition is
//!   computed with the rows of its neighbours that the expression can reach (an overlap carried
//!   by a chain of small tasks), then cut back to its own rows;
//! - **cumulative** (`cum_sum`, `cum_prod`, `cum_min`, `cum_max`, `cum_count`, also reversed):
//!   each partition's own cumulative result is combined with a carry, the aggregate of every
//!   partition before it (after it, reversed), built by a chain of small tasks;
//! - **window per group** (`agg.over(keys)`): the per-group aggregate is computed by
//!   [`Frame::group_by`], then joined back on the keys in every partition;
//! - anything else (`sort`, `rank`, `head`, `gather`, `unique`, an expression filter, an
//!   aggregation of a non-elementwise input, `over` of a non-aggregation, …) is rejected with an
//!   error naming the expression and the frame method that computes it; `map_partitions` stays
//!   the way to run polars code on each partition on purpose.

use std::sync::Arc;

use polars::polars_utils::arena::{Arena, Node as ExprNode};
use polars::prelude::*;
use polars_plan::plans::{
    expr_ir::ExprIR, is_elementwise_rec, is_scalar_ae, node_to_expr, AExpr, IRFunctionExpr, IR,
};

use super::ops::{build_err, check_lazy, row_literals, Broadcast, PartOp, SideJoin};
use super::task::{df_task, literal_df, next_op, pl, take_df, Node};
use super::{concat, Frame};
use crate::error::{Error, Result};

/// Marks a partition's own rows among the rows borrowed from its neighbours.
const OWN: &str = "__brisk_own";
/// A filter's predicate, computed before the borrowed rows are cut off.
const KEEP: &str = "__brisk_keep";

/// The frame method an expression list belongs to.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Method {
    Select,
    Filter,
    WithColumns,
}

impl Method {
    fn name(self) -> &'static str {
        match self {
            Method::Select => "select",
            Method::Filter => "filter",
            Method::WithColumns => "with_columns",
        }
    }

    fn op(self, mut exprs: Vec<Expr>) -> PartOp {
        match self {
            Method::Select => PartOp::Select(exprs),
            Method::WithColumns => PartOp::WithColumns(exprs),
            Method::Filter => PartOp::Filter(exprs.pop().unwrap_or_else(|| lit(true))),
        }
    }
}

/// Whether an expression's value varies by row or is one value for the whole frame.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Shape {
    Row,
    Const,
}

/// What a subexpression needs: its shape, how many rows before and after it reaches, and
/// whether it holds a cumulative carry.
#[derive(Clone, Copy, Debug)]
struct Info {
    shape: Shape,
    back: usize,
    ahead: usize,
    carry: bool,
}

impl Info {
    fn of(shape: Shape) -> Info {
        Info {
            shape,
            back: 0,
            ahead: 0,
            carry: false,
        }
    }

    fn join(self, o: Info) -> Info {
        Info {
            shape: if self.shape == Shape::Row || o.shape == Shape::Row {
                Shape::Row
            } else {
                Shape::Const
            },
            back: self.back.max(o.back),
            ahead: self.ahead.max(o.ahead),
            carry: self.carry || o.carry,
        }
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum CumKind {
    Sum,
    Prod,
    Min,
    Max,
    Count,
}

/// A cumulative function of an elementwise input, computed with a carry.
struct Carry {
    kind: CumKind,
    reverse: bool,
    inner: Expr,
    /// Column of the carry value (the aggregate of the partitions before).
    value: PlSmallStr,
    /// Column of the combined cumulative result.
    out: PlSmallStr,
}

impl Carry {
    /// The aggregate of one partition that the carry accumulates.
    fn partial(&self) -> Expr {
        let x = self.inner.clone();
        match self.kind {
            CumKind::Sum => x.sum(),
            CumKind::Prod => x.product(),
            CumKind::Min => x.min(),
            CumKind::Max => x.max(),
            CumKind::Count => x.count(),
        }
        .alias(self.value.clone())
    }

    /// Merges partials (rows of a concatenation) into one.
    fn merge(&self) -> Expr {
        let c = col(self.value.clone());
        match self.kind {
            CumKind::Sum | CumKind::Count => c.sum(),
            CumKind::Prod => c.product(),
            CumKind::Min => c.min(),
            CumKind::Max => c.max(),
        }
        .alias(self.value.clone())
    }

    /// The cumulative function over the partition's own rows only.
    fn local(&self) -> Expr {
        let masked = when(col(OWN)).then(self.inner.clone()).otherwise(lit(NULL));
        let r = self.reverse;
        match self.kind {
            CumKind::Sum => masked.cum_sum(r),
            CumKind::Prod => masked.cum_prod(r),
            CumKind::Min => masked.cum_min(r),
            CumKind::Max => masked.cum_max(r),
            CumKind::Count => masked.cum_count(r),
        }
    }

    /// The whole-frame cumulative result: the local one combined with the carry.
    fn combined(&self, dtype: &DataType) -> Expr {
        let local = self.local();
        let c = col(self.value.clone()).cast(dtype.clone());
        let e = match self.kind {
            CumKind::Sum | CumKind::Count => local + c,
            CumKind::Prod => local * c,
            CumKind::Min | CumKind::Max => {
                let better = if self.kind == CumKind::Min {
                    local.clone().lt_eq(c.clone())
                } else {
                    local.clone().gt_eq(c.clone())
                };
                // A null row stays null; no carry yet keeps the local value.
                when(local.clone().is_null().or(c.clone().is_null()).or(better))
                    .then(local)
                    .otherwise(c)
            }
        };
        e.cast(dtype.clone()).alias(self.out.clone())
    }
}

/// `agg.over(keys)`: the aggregate per group, joined back on the keys.
struct OverAgg {
    keys: Vec<PlSmallStr>,
    agg: Expr,
}

/// The expressions of one frame method, classified and rewritten.
struct Analysis {
    /// The expressions with aggregations, windows and carries replaced by hidden columns.
    exprs: Vec<Expr>,
    /// Some output varies by row (otherwise a `select` yields one row).
    any_row: bool,
    globals: Vec<Expr>,
    overs: Vec<OverAgg>,
    carries: Vec<Carry>,
    back: usize,
    ahead: usize,
}

struct Walker<'a> {
    arena: &'a mut Arena<AExpr>,
    what: &'static str,
    /// The expression being walked, for error messages.
    text: String,
    globals: Vec<Expr>,
    overs: Vec<OverAgg>,
    carries: Vec<Carry>,
}

impl Walker<'_> {
    fn fail(&self, message: impl Into<String>) -> Error {
        Error::column(
            self.text.clone(),
            format!(
                "frame.{}: {}; Frame::map_partitions runs polars code on each partition when \
                 that is what is meant",
                self.what,
                message.into()
            ),
        )
    }

    fn show(&self, node: ExprNode) -> String {
        format!("{:?}", node_to_expr(node, self.arena))
    }

    /// How a message names a subexpression: "it" for the whole expression.
    fn name(&self, node: ExprNode) -> String {
        let s = self.show(node);
        if s == self.text {
            "it".to_string()
        } else {
            format!("`{s}`")
        }
    }

    /// Does the subexpression read any column (so its value varies by row)?
    fn reads_rows(&self, node: ExprNode) -> bool {
        let ae = self.arena.get(node);
        if matches!(ae, AExpr::Column(_) | AExpr::Element) {
            return true;
        }
        let mut inputs: Vec<ExprNode> = Vec::new();
        ae.inputs(&mut inputs);
        inputs.into_iter().any(|n| self.reads_rows(n))
    }

    fn children(&mut self, node: ExprNode) -> Result<Info> {
        let mut inputs: Vec<ExprNode> = Vec::new();
        self.arena.get(node).inputs(&mut inputs);
        let mut info = Info::of(Shape::Const);
        for n in inputs {
            info = info.join(self.walk(n)?);
        }
        Ok(info)
    }

    fn walk(&mut self, node: ExprNode) -> Result<Info> {
        if is_elementwise_rec(node, self.arena) {
            return Ok(Info::of(if self.reads_rows(node) {
                Shape::Row
            } else {
                Shape::Const
            }));
        }
        let ae = self.arena.get(node).clone();
        match ae {
            AExpr::Agg(_) | AExpr::Len | AExpr::AnonymousAgg { .. } => self.aggregate(node),
            AExpr::Function { ref options, .. } | AExpr::AnonymousFunction { ref options, .. }
                if options.returns_scalar() =>
            {
                self.aggregate(node)
            }
            AExpr::Function { ref options, .. } | AExpr::AnonymousFunction { ref options, .. }
                if options.is_elementwise() =>
            {
                self.children(node)
            }
            AExpr::Function {
                function, input, ..
            } => self.ordered(node, &function, &input),
            AExpr::Literal(_) => Ok(Info::of(Shape::Const)),
            AExpr::BinaryExpr { .. } | AExpr::Cast { .. } | AExpr::Ternary { .. } => {
                self.children(node)
            }
            AExpr::Eval { variant, .. } if variant.is_elementwise() => self.children(node),
            AExpr::Over {
                function,
                partition_by,
                order_by,
                mapping,
            } => self.over(node, function, &partition_by, order_by.is_some(), mapping),
            AExpr::Sort { .. } | AExpr::SortBy { .. } => Err(self.fail(format!(
                "{} sorts within each partition; use Frame::sort for the whole frame",
                self.name(node)
            ))),
            AExpr::Slice { .. } | AExpr::Gather { .. } => Err(self.fail(format!(
                "{} picks rows by position within each partition; use Frame::head, \
                 Frame::sort or Frame::nsmallest for the whole frame",
                self.name(node)
            ))),
            AExpr::Rolling { .. } => Err(self.fail(format!(
                "{} is a rolling window by time; use Frame::rolling with Window::Duration",
                self.name(node)
            ))),
            _ => Err(self.fail(format!(
                "{} changes the rows of a column, which is not computed across partitions; \
                 use Frame::filter, Frame::unique or Frame::group_by(..).agg(..) instead",
                self.name(node)
            ))),
        }
    }

    /// A whole-frame aggregate: computed once and broadcast as a hidden column.
    fn aggregate(&mut self, node: ExprNode) -> Result<Info> {
        let mut inputs: Vec<ExprNode> = Vec::new();
        self.arena.get(node).inputs(&mut inputs);
        for n in &inputs {
            if !is_elementwise_rec(*n, self.arena) {
                return Err(self.fail(format!(
                    "{} aggregates an input that is itself not elementwise ({}); \
                     add the input as a column with Frame::with_columns first, then aggregate",
                    self.name(node),
                    self.name(*n)
                )));
            }
        }
        let name: PlSmallStr = format!("__brisk_g{}", self.globals.len()).into();
        self.globals
            .push(node_to_expr(node, self.arena).alias(name.clone()));
        self.arena.replace(node, AExpr::Column(name));
        Ok(Info::of(Shape::Const))
    }

    fn over(
        &mut self,
        node: ExprNode,
        function: ExprNode,
        partition_by: &[ExprNode],
        ordered: bool,
        mapping: WindowMapping,
    ) -> Result<Info> {
        if ordered || !matches!(mapping, WindowMapping::GroupsToRows) {
            return Err(self.fail(format!(
                "{}: only `over(keys)` without order_by and with the default mapping is \
                 computed across partitions; use Frame::group_by(..).agg(..) and Frame::join",
                self.name(node)
            )));
        }
        let mut keys = Vec::with_capacity(partition_by.len());
        for p in partition_by {
            match self.arena.get(*p) {
                AExpr::Column(c) => keys.push(c.clone()),
                _ => {
                    return Err(self.fail(format!(
                        "{} partitions by an expression; add it as a column with \
                         Frame::with_columns first",
                        self.name(*p)
                    )))
                }
            }
        }
        if !is_scalar_ae(function, self.arena) {
            return Err(self.fail(format!(
                "{} is not one value per group, so over(..) would depend on the \
                 partitioning; use Frame::group_by(..).agg(..) and Frame::join",
                self.name(node)
            )));
        }
        let name: PlSmallStr = format!("__brisk_o{}", self.overs.len()).into();
        self.overs.push(OverAgg {
            keys,
            agg: node_to_expr(function, self.arena).alias(name.clone()),
        });
        self.arena.replace(node, AExpr::Column(name));
        Ok(Info::of(Shape::Row))
    }

    /// A literal integer argument (a shift amount).
    fn literal_i64(&self, e: Option<&ExprIR>) -> Option<i64> {
        match self.arena.get(e?.node()) {
            AExpr::Literal(v) => v.extract_i64().ok(),
            _ => None,
        }
    }

    fn ordered(
        &mut self,
        node: ExprNode,
        function: &IRFunctionExpr,
        input: &[ExprIR],
    ) -> Result<Info> {
        let Some(data) = input.first().map(|e| e.node()) else {
            return Err(self.fail(format!("{} has no input", self.name(node))));
        };
        // Shown before the walk rewrites the inputs.
        let shown = self.name(node);
        let bounded = |w: &mut Self, back: usize, ahead: usize| -> Result<Info> {
            let mut info = Info::of(Shape::Row);
            for e in input {
                info = info.join(w.walk(e.node())?);
            }
            if info.carry {
                return Err(w.fail(format!(
                    "{shown} reaches into a cumulative result; compute the cumulative \
                     column with one Frame::with_columns call and the window in a second"
                )));
            }
            info.shape = Shape::Row;
            info.back += back;
            info.ahead += ahead;
            Ok(info)
        };
        match function {
            IRFunctionExpr::Shift | IRFunctionExpr::ShiftAndFill => {
                let Some(n) = self.literal_i64(input.get(1)) else {
                    return Err(self.fail(format!(
                        "{} shifts by a non-literal amount",
                        self.name(node)
                    )));
                };
                let reach = n.unsigned_abs() as usize;
                if n >= 0 {
                    bounded(self, reach, 0)
                } else {
                    bounded(self, 0, reach)
                }
            }
            IRFunctionExpr::RollingExpr { options, .. } => {
                let w = options.window_size;
                if options.center {
                    bounded(self, w, w)
                } else {
                    bounded(self, w.saturating_sub(1), 0)
                }
            }
            IRFunctionExpr::CumSum { reverse } => {
                self.cumulative(node, data, CumKind::Sum, *reverse)
            }
            IRFunctionExpr::CumProd { reverse } => {
                self.cumulative(node, data, CumKind::Prod, *reverse)
            }
            IRFunctionExpr::CumMin { reverse } => {
                self.cumulative(node, data, CumKind::Min, *reverse)
            }
            IRFunctionExpr::CumMax { reverse } => {
                self.cumulative(node, data, CumKind::Max, *reverse)
            }
            IRFunctionExpr::CumCount { reverse } => {
                self.cumulative(node, data, CumKind::Count, *reverse)
            }
            other => {
                let hint = match format!("{other}").as_str() {
                    "rank" => {
                        "the rank over the whole frame is a position in the sorted frame: \
                               use Frame::sort"
                    }
                    "unique" | "unique_stable" => "use Frame::unique or Frame::drop_duplicates",
                    "reverse" => "a reversed frame is not supported",
                    _ => {
                        "it depends on rows of other partitions in a way brisk does not \
                          compute across partitions"
                    }
                };
                Err(self.fail(format!(
                    "{} depends on rows of other partitions: {hint}",
                    self.name(node)
                )))
            }
        }
    }

    fn cumulative(
        &mut self,
        node: ExprNode,
        data: ExprNode,
        kind: CumKind,
        reverse: bool,
    ) -> Result<Info> {
        if !is_elementwise_rec(data, self.arena) {
            return Err(self.fail(format!(
                "{} is cumulative over a non-elementwise input; add the input as a column \
                 with Frame::with_columns first",
                self.name(node)
            )));
        }
        let j = self.carries.len();
        let out: PlSmallStr = format!("__brisk_k{j}").into();
        self.carries.push(Carry {
            kind,
            reverse,
            inner: node_to_expr(data, self.arena),
            value: format!("__brisk_c{j}").into(),
            out: out.clone(),
        });
        self.arena.replace(node, AExpr::Column(out));
        Ok(Info {
            shape: Shape::Row,
            back: 0,
            ahead: 0,
            carry: true,
        })
    }
}

/// Classifies `exprs` against `schema`; `None` when they are elementwise and can run per
/// partition as they are.
fn analyze(schema: &SchemaRef, method: Method, exprs: &[Expr]) -> Result<Option<Analysis>> {
    let what = method.name();
    let plan = DataFrame::empty_with_schema(schema)
        .lazy()
        .select(exprs)
        .to_alp()
        .map_err(build_err(what))?;
    let mut arena = plan.expr_arena;
    let roots: Vec<ExprIR> = match plan.lp_arena.get(plan.lp_top) {
        IR::Select { expr, .. } => expr.clone(),
        _ => {
            return Err(Error::internal(
                "frame expressions: no select at the plan's top",
            ))
        }
    };
    let all_elementwise = roots.iter().all(|r| is_elementwise_rec(r.node(), &arena));
    let mut walker = Walker {
        arena: &mut arena,
        what,
        text: String::new(),
        globals: Vec::new(),
        overs: Vec::new(),
        carries: Vec::new(),
    };
    if all_elementwise
        && (method != Method::Select || roots.iter().any(|r| walker.reads_rows(r.node())))
    {
        return Ok(None);
    }
    let mut any_row = false;
    let (mut back, mut ahead) = (0, 0);
    let mut rewritten = Vec::with_capacity(roots.len());
    for r in &roots {
        walker.text = walker.show(r.node());
        let info = walker.walk(r.node())?;
        any_row |= info.shape == Shape::Row;
        back = back.max(info.back);
        ahead = ahead.max(info.ahead);
        let e = node_to_expr(r.node(), walker.arena);
        rewritten.push(if method == Method::Filter {
            e
        } else {
            e.alias(r.output_name().clone())
        });
    }
    let special = !walker.globals.is_empty()
        || !walker.overs.is_empty()
        || !walker.carries.is_empty()
        || back > 0
        || ahead > 0
        || (method == Method::Select && !any_row);
    if !special {
        return Ok(None);
    }
    Ok(Some(Analysis {
        exprs: rewritten,
        any_row,
        globals: walker.globals,
        overs: walker.overs,
        carries: walker.carries,
        back,
        ahead,
    }))
}

/// `df`'s columns named by `schema`, in its order, cast to its types.
fn conform(df: DataFrame, schema: &Schema) -> Result<DataFrame> {
    let height = df.height();
    let mut cols = Vec::with_capacity(schema.len());
    for (name, dtype) in schema.iter() {
        let c = df.column(name).map_err(pl("frame expression output"))?;
        cols.push(if c.dtype() == dtype {
            c.clone()
        } else {
            c.cast(dtype).map_err(pl("frame expression output"))?
        });
    }
    DataFrame::new(height, cols).map_err(pl("frame expression output"))
}

impl Frame {
    /// `select`, `with_columns` or `filter` with whole-frame semantics (see the module docs).
    pub(crate) fn apply_exprs(&self, method: Method, exprs: Vec<Expr>) -> Result<Frame> {
        let what = method.name();
        let plain = self.with_op(method.op(exprs.clone()), what)?;
        let Some(a) = analyze(&self.schema, method, &exprs)? else {
            return Ok(plain);
        };
        let out_schema = plain.schema.clone();
        let global = if a.globals.is_empty() && a.any_row {
            None
        } else {
            Some(self.global_row(&a.globals, what)?)
        };
        if method == Method::Select && !a.any_row {
            // Aggregations only: one row.
            let (row, _) = global.ok_or_else(|| Error::internal("select: no global row"))?;
            let (exprs, schema) = (a.exprs, out_schema.clone());
            let node = df_task("select-aggregates", &[next_op()], vec![row], move |ins| {
                let row = take_df(&mut ins[0])?;
                let df = row
                    .lazy()
                    .select(exprs.clone())
                    .collect()
                    .map_err(pl("select of aggregations"))?;
                conform(df, &schema)
            });
            return Ok(Frame::of_nodes(vec![node], out_schema));
        }
        let mut pre: Vec<PartOp> = Vec::new();
        let mut hidden: Vec<PlSmallStr> = Vec::new();
        let mut columns: Vec<PlSmallStr> = self.schema.iter_names().cloned().collect();
        if let Some((side, side_schema)) = global {
            hidden.extend(side_schema.iter_names().cloned());
            columns.extend(side_schema.iter_names().cloned());
            pre.push(PartOp::Broadcast(Arc::new(Broadcast { side, side_schema })));
        }
        for o in &a.overs {
            let (op, name) = self.over_join(o, &columns, what)?;
            hidden.push(name.clone());
            columns.push(name);
            pre.push(op);
        }
        if a.back == 0 && a.ahead == 0 && a.carries.is_empty() {
            let mut f = self.clone();
            for op in pre {
                f = f.with_op(op, what)?;
            }
            f = f.with_op(method.op(a.exprs), what)?;
            if method != Method::Select && !hidden.is_empty() {
                f = f.with_op(PartOp::Drop(hidden), what)?;
            }
            f.sorted_by = plain.sorted_by;
            f.divisions = plain.divisions;
            return Ok(f);
        }
        self.with_neighbours(method, a, pre, out_schema)
    }

    /// The whole-frame aggregates `globals` as a one-row value, typed as polars types them.
    ///
    /// The decomposable ones share one tree reduction; `n_unique` counts the distinct values
    /// left by a hash-shuffled dedup; any other (median, quantile, …) gathers only its own
    /// input into one task, exactly, so it does not pull the others off the tree.
    fn global_row(&self, globals: &[Expr], what: &str) -> Result<(Arc<Node>, SchemaRef)> {
        let g = globals.to_vec();
        let want = check_lazy(&self.schema, what, move |lf| lf.select(g))?;
        if globals.is_empty() {
            let one = DataFrame::new(1, Vec::new()).map_err(pl("one-row frame"))?;
            return Ok((literal_df("global-row", &[next_op()], one), want));
        }
        let (tree, other): (Vec<Expr>, Vec<Expr>) = globals
            .iter()
            .cloned()
            .partition(super::groupby::decomposes);
        let mut groups: Vec<Vec<Expr>> = Vec::new();
        if !tree.is_empty() {
            groups.push(tree);
        }
        // Each piece: its nodes, whether they are partitions of a one-row aggregate (else one
        // distinct count), and the output column.
        let mut pieces: Vec<(Vec<Arc<Node>>, Option<SchemaRef>, PlSmallStr)> = Vec::new();
        for e in other {
            match &e {
                Expr::Alias(inner, name) => match inner.as_ref() {
                    Expr::Agg(AggExpr::NUnique(input)) => {
                        const V: &str = "__brisk_v";
                        let distinct = self
                            .select([input.as_ref().clone().alias(V)])?
                            .drop_duplicates(Some(&[V]))?;
                        pieces.push((vec![distinct.len().node], None, name.clone()));
                    }
                    _ => groups.push(vec![e.clone()]),
                },
                _ => groups.push(vec![e.clone()]),
            }
        }
        for group in groups {
            let agg = self.agg(group)?;
            let name = PlSmallStr::EMPTY;
            pieces.push((agg.nodes(), Some(agg.schema.clone()), name));
        }
        let layout: Vec<(usize, Option<SchemaRef>, PlSmallStr)> = pieces
            .iter()
            .map(|(nodes, s, name)| (nodes.len(), s.clone(), name.clone()))
            .collect();
        let deps: Vec<Arc<Node>> = pieces.into_iter().flat_map(|p| p.0).collect();
        let (in_schema, g, w) = (self.schema.clone(), globals.to_vec(), want.clone());
        let node = df_task("global-aggregates", &[next_op()], deps, move |ins| {
            let mut at = 0;
            let mut cols: Vec<Column> = Vec::new();
            let mut empty = false;
            for (count, schema, name) in &layout {
                let slots = &mut ins[at..at + count];
                at += count;
                match schema {
                    Some(schema) => {
                        let dfs = slots.iter_mut().map(take_df).collect::<Result<Vec<_>>>()?;
                        let df = concat(dfs, schema)?;
                        empty |= df.height() == 0;
                        cols.extend(df.into_columns());
                    }
                    None => {
                        let n = super::task::take::<u64>(&mut slots[0])?;
                        cols.push(Column::new(name.clone(), [n]));
                    }
                }
            }
            // No rows at all: polars' aggregates of an empty frame (sum 0, mean null, …).
            let df = if empty {
                DataFrame::empty_with_schema(&in_schema)
                    .lazy()
                    .select(g.clone())
                    .collect()
                    .map_err(pl("aggregates of an empty frame"))?
            } else {
                DataFrame::new(1, cols).map_err(pl("whole-frame aggregates"))?
            };
            conform(df, &w)
        });
        Ok((node, want))
    }

    /// A left join of every partition with `o`'s aggregate per group, nulls matching nulls.
    fn over_join(
        &self,
        o: &OverAgg,
        columns: &[PlSmallStr],
        what: &str,
    ) -> Result<(PartOp, PlSmallStr)> {
        let grouped = self
            .group_by(o.keys.iter().map(|k| k.as_str()))
            .agg([o.agg.clone()])
            .map_err(|e| e.context(format!("frame.{what}: over(..)")))?;
        let name = grouped
            .schema
            .get_at_index(o.keys.len())
            .map(|(n, _)| n.clone())
            .ok_or_else(|| Error::internal("over: no aggregate column"))?;
        let side_schema = grouped.schema.clone();
        let nodes = grouped.nodes();
        let s2 = side_schema.clone();
        let side = df_task("over-groups", &[next_op()], nodes, move |ins| {
            let dfs = ins.iter_mut().map(take_df).collect::<Result<Vec<_>>>()?;
            let mut df = concat(dfs, &s2)?;
            df.rechunk_mut();
            Ok(df)
        });
        let keys: Vec<Expr> = o.keys.iter().map(|k| col(k.clone())).collect();
        let op = PartOp::JoinSide(Arc::new(SideJoin {
            side,
            side_schema,
            left_columns: columns.iter().cloned().collect(),
            left_on: o.keys.clone(),
            join: Arc::new(move |l, r| {
                let mut args = JoinArgs::new(JoinType::Left);
                args.nulls_equal = true;
                args.maintain_order = MaintainOrderJoin::Left;
                l.join(r, keys.clone(), keys.clone(), args)
            }),
        }));
        Ok((op, name))
    }

    /// Order-dependent expressions: every partition is computed with the rows of its
    /// neighbours the expressions reach and with the carries of the partitions before (after)
    /// it, then cut back to its own rows.
    fn with_neighbours(
        &self,
        method: Method,
        a: Analysis,
        pre: Vec<PartOp>,
        out_schema: SchemaRef,
    ) -> Result<Frame> {
        let what = method.name();
        let parts = self.nodes();
        let n = parts.len();
        let schema = self.schema.clone();
        let id = next_op();
        let empty = || DataFrame::empty_with_schema(&schema);

        // tails[i]: the last `back` rows before partition i; heads[i]: the first `ahead` after.
        let mut tails: Vec<Option<Arc<Node>>> = vec![None; n];
        if a.back > 0 && n > 0 {
            let mut tail = literal_df("overlap-tail", &[id, 0], empty());
            for i in 0..n {
                tails[i] = Some(tail.clone());
                if i + 1 < n {
                    let (s, back) = (schema.clone(), a.back);
                    tail = df_task(
                        "overlap-tail",
                        &[id, i as i64 + 1],
                        vec![tail, parts[i].clone()],
                        move |ins| {
                            let t = take_df(&mut ins[0])?;
                            let p = take_df(&mut ins[1])?;
                            let all = concat(vec![t, p], &s)?;
                            let h = all.height();
                            Ok(all.slice(h.saturating_sub(back) as i64, back.min(h)))
                        },
                    );
                }
            }
        }
        let mut heads: Vec<Option<Arc<Node>>> = vec![None; n];
        if a.ahead > 0 && n > 0 {
            let mut head = literal_df("overlap-head", &[id, n as i64 - 1], empty());
            for i in (0..n).rev() {
                heads[i] = Some(head.clone());
                if i > 0 {
                    let (s, ahead) = (schema.clone(), a.ahead);
                    head = df_task(
                        "overlap-head",
                        &[id, i as i64 - 1],
                        vec![parts[i].clone(), head],
                        move |ins| {
                            let p = take_df(&mut ins[0])?;
                            let h = take_df(&mut ins[1])?;
                            Ok(concat(vec![p, h], &s)?.head(Some(ahead)))
                        },
                    );
                }
            }
        }

        // carries[i]: one row, the aggregates of the partitions before (after) partition i.
        let mut carries: Vec<Option<Arc<Node>>> = vec![None; n];
        let mut carry_schema: SchemaRef = Arc::new(Schema::default());
        let mut ops = pre;
        if !a.carries.is_empty() {
            let partial: Vec<Expr> = a.carries.iter().map(Carry::partial).collect();
            let merge: Vec<Expr> = a.carries.iter().map(Carry::merge).collect();
            let identity = empty()
                .lazy()
                .select(partial.clone())
                .collect()
                .map_err(build_err(what))?;
            carry_schema = identity.schema().clone();
            let partials: Vec<Arc<Node>> = parts
                .iter()
                .enumerate()
                .map(|(i, p)| {
                    let partial = partial.clone();
                    df_task(
                        "carry-partial",
                        &[id, i as i64],
                        vec![p.clone()],
                        move |ins| {
                            take_df(&mut ins[0])?
                                .lazy()
                                .select(partial.clone())
                                .collect()
                                .map_err(pl("cumulative carry"))
                        },
                    )
                })
                .collect();
            let merge_task = |name: &str, i: usize, deps: Vec<Arc<Node>>| {
                let (merge, cs) = (merge.clone(), carry_schema.clone());
                df_task(name, &[id, i as i64], deps, move |ins| {
                    let dfs = ins.iter_mut().map(take_df).collect::<Result<Vec<_>>>()?;
                    concat(dfs, &cs)?
                        .lazy()
                        .select(merge.clone())
                        .collect()
                        .map_err(pl("cumulative carry"))
                })
            };
            let mut forward: Vec<Arc<Node>> = Vec::with_capacity(n);
            let mut acc = literal_df("carry-start", &[id, 0], identity.clone());
            for (i, p) in partials.iter().enumerate() {
                forward.push(acc.clone());
                if i + 1 < n {
                    acc = merge_task("carry-forward", i + 1, vec![acc, p.clone()]);
                }
            }
            let mut backward: Vec<Option<Arc<Node>>> = vec![None; n];
            if a.carries.iter().any(|c| c.reverse) {
                let mut acc = literal_df("carry-end", &[id, 1], identity);
                for i in (0..n).rev() {
                    backward[i] = Some(acc.clone());
                    if i > 0 {
                        acc = merge_task("carry-backward", i - 1, vec![partials[i].clone(), acc]);
                    }
                }
            }
            let reversed: Vec<bool> = a.carries.iter().map(|c| c.reverse).collect();
            for i in 0..n {
                carries[i] = Some(match backward[i].clone() {
                    None => forward[i].clone(),
                    Some(b) => {
                        let reversed = reversed.clone();
                        df_task(
                            "carry",
                            &[id, i as i64],
                            vec![forward[i].clone(), b],
                            move |ins| {
                                let f = take_df(&mut ins[0])?;
                                let b = take_df(&mut ins[1])?;
                                let cols = f
                                    .columns()
                                    .iter()
                                    .zip(b.columns())
                                    .zip(&reversed)
                                    .map(|((f, b), r)| if *r { b.clone() } else { f.clone() })
                                    .collect();
                                DataFrame::new(1, cols).map_err(pl("cumulative carry"))
                            },
                        )
                    }
                });
            }
            // The cumulative results, as hidden columns the rewritten expressions read.
            let mut with_own = self.schema.as_ref().clone();
            with_own.insert(OWN.into(), DataType::Boolean);
            let with_own = Arc::new(with_own);
            let mut combined = Vec::with_capacity(a.carries.len());
            for c in &a.carries {
                let local = c.local();
                let dtype = check_lazy(&with_own, what, move |lf| lf.select([local]))?
                    .get_at_index(0)
                    .map(|(_, d)| d.clone())
                    .ok_or_else(|| Error::internal("cumulative: no output type"))?;
                combined.push(c.combined(&dtype));
            }
            ops.push(PartOp::WithColumns(combined));
        }
        let main = match method {
            Method::Filter => {
                PartOp::WithColumns(a.exprs.into_iter().map(|e| e.alias(KEEP)).collect())
            }
            m => m.op(a.exprs),
        };
        ops.push(main);
        let ops = Arc::new(ops);
        let side_nodes: Vec<Arc<Node>> =
            ops.iter().filter_map(|o| o.side_node().cloned()).collect();
        let out_id = next_op();
        let mut outs = Vec::with_capacity(n);
        for i in 0..n {
            let mut deps = vec![parts[i].clone()];
            let has_tail = tails[i].is_some();
            let has_head = heads[i].is_some();
            let has_carry = carries[i].is_some();
            deps.extend(tails[i].clone());
            deps.extend(heads[i].clone());
            deps.extend(carries[i].clone());
            deps.extend(side_nodes.iter().cloned());
            let (ops, s, cs, out_schema) = (
                ops.clone(),
                schema.clone(),
                carry_schema.clone(),
                out_schema.clone(),
            );
            outs.push(df_task(what, &[out_id, i as i64], deps, move |ins| {
                let part = take_df(&mut ins[0])?;
                let mut k = 1;
                let mut next = |ins: &mut [crate::graph::Value], on: bool| -> Result<DataFrame> {
                    if on {
                        k += 1;
                        take_df(&mut ins[k - 1])
                    } else {
                        Ok(DataFrame::empty_with_schema(&s))
                    }
                };
                let tail = next(ins, has_tail)?;
                let head = next(ins, has_head)?;
                let carry = if has_carry {
                    Some(next(ins, true)?)
                } else {
                    None
                };
                let (skip, own) = (tail.height(), part.height());
                let mark = |df: DataFrame, own: bool| -> Result<DataFrame> {
                    df.lazy()
                        .with_column(lit(own).alias(OWN))
                        .collect()
                        .map_err(pl("frame expression"))
                };
                let mut ext = mark(tail, false)?;
                ext.vstack_mut_owned(mark(part, true)?)
                    .map_err(pl("frame expression"))?;
                ext.vstack_mut_owned(mark(head, false)?)
                    .map_err(pl("frame expression"))?;
                if let Some(carry) = carry {
                    ext = ext
                        .lazy()
                        .with_columns(row_literals(&carry, &cs))
                        .collect()
                        .map_err(pl("frame expression"))?;
                }
                let out = super::ops::apply(ext, &ops, None, &mut ins[k..])?;
                let mut out = out.slice(skip as i64, own);
                if method == Method::Filter {
                    out = out
                        .lazy()
                        .filter(col(KEEP))
                        .collect()
                        .map_err(pl("filter"))?;
                }
                conform(out, &out_schema)
            }));
        }
        let mut f = Frame::of_nodes(outs, out_schema);
        f.sorted_by = self
            .sorted_by
            .clone()
            .filter(|c| f.schema.get(c).is_some() && method != Method::Select);
        Ok(f)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn schema() -> SchemaRef {
        let mut s = Schema::default();
        s.insert("x".into(), DataType::Float64);
        s.insert("k".into(), DataType::String);
        s.insert("t".into(), DataType::Datetime(TimeUnit::Milliseconds, None));
        Arc::new(s)
    }

    #[test]
    fn elementwise_expressions_stay_per_partition() {
        let keys = Series::new("keys".into(), ["a", "b"]);
        for (method, e) in [
            (Method::Select, col("x") * lit(2.0)),
            (Method::WithColumns, col("k").str().len_bytes()),
            (Method::WithColumns, col("t").dt().month()),
            (
                Method::Filter,
                col("k").is_in(lit(keys.clone()).implode(false), false),
            ),
            (Method::WithColumns, lit(1).alias("one")),
            (
                Method::WithColumns,
                when(col("x").gt(lit(0.0)))
                    .then(col("x"))
                    .otherwise(lit(NULL)),
            ),
        ] {
            let a = analyze(&schema(), method, std::slice::from_ref(&e)).unwrap();
            assert!(
                a.is_none(),
                "{e:?} in {method:?} was not kept per partition"
            );
        }
    }

    #[test]
    fn each_class_is_recognised() {
        let a = analyze(
            &schema(),
            Method::WithColumns,
            &[
                (col("x") - col("x").mean()).alias("c"),
                col("x").shift(lit(3)).alias("s"),
                col("x").shift(lit(-1)).alias("n"),
                col("x").cum_sum(false).alias("cs"),
                col("x").sum().over([col("k")]).unwrap().alias("o"),
            ],
        )
        .unwrap()
        .unwrap();
        assert_eq!(a.globals.len(), 1);
        assert_eq!((a.back, a.ahead), (3, 1));
        assert_eq!(a.carries.len(), 1);
        assert_eq!(a.overs.len(), 1);
        assert_eq!(a.overs[0].keys, vec![PlSmallStr::from("k")]);
        assert!(a.any_row);
        // A select of aggregations and literals only: one row.
        let a = analyze(&schema(), Method::Select, &[col("x").sum(), lit(1)])
            .unwrap()
            .unwrap();
        assert!(!a.any_row);
        let a = analyze(&schema(), Method::Select, &[lit(1)])
            .unwrap()
            .unwrap();
        assert!(a.globals.is_empty() && !a.any_row);
    }
}
