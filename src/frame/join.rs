//! Joins: broadcast a small right side, or hash-shuffle both sides on the keys.
//!
//! **Broadcast** (inner, left, semi, anti — the joins where each left row's result depends
//! only on the right table): the right side is concatenated into one value and every left
//! partition is joined with it inside the left partition's own polars chain. Chosen when the
//! right side has at most [`JoinOptions::broadcast_partitions`] partitions, or when asked.
//!
//! **Hash shuffle** (any join, and the only correct strategy for full joins): both sides are
//! split by a fixed-seed hash of their key columns into the same number of pieces; output
//! partition `j` joins piece `j` of the left with piece `j` of the right. Equal keys meet in the
//! same partition. Pieces are spillable store values, so a join of two tables bigger than
//! memory runs within the memory limit.
//!
//! Key types must match on both sides (checked at graph-build time); the result's columns and
//! types are polars' for the same join on the whole tables.

use std::sync::Arc;

use polars::prelude::*;

use super::ops::{check_lazy, PartOp, SideJoin};
use super::shuffle::{gather_pieces, hash_split, shuffle_pieces};
use super::task::{df_task, next_op, pl, take_df};
use super::{concat, Frame};
use crate::error::{Error, Result};

/// Which rows a join keeps.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum JoinHow {
    /// Rows with a match on both sides.
    Inner,
    /// Every left row, with the right's columns null when unmatched.
    Left,
    /// Every row of both sides.
    Full,
    /// Left rows that have a match (left columns only).
    Semi,
    /// Left rows without a match.
    Anti,
}

impl JoinHow {
    fn polars(self) -> JoinType {
        match self {
            JoinHow::Inner => JoinType::Inner,
            JoinHow::Left => JoinType::Left,
            JoinHow::Full => JoinType::Full,
            JoinHow::Semi => JoinType::Semi,
            JoinHow::Anti => JoinType::Anti,
        }
    }
}

/// Options of [`Frame::join`].
#[derive(Clone, Debug)]
pub struct JoinOptions {
    /// Which rows to keep (default inner).
    pub how: JoinHow,
    /// Broadcast the right side when it has at most this many partitions (default 1).
    pub broadcast_partitions: usize,
    /// Force (`Some(true)`) or forbid (`Some(false)`) broadcasting the right side.
    pub broadcast: Option<bool>,
    /// Output partitions of a shuffle join (default: the larger side's partition count).
    pub partitions: Option<usize>,
    /// Suffix for right columns whose names clash (default `_right`).
    pub suffix: String,
}

impl Default for JoinOptions {
    fn default() -> Self {
        JoinOptions {
            how: JoinHow::Inner,
            broadcast_partitions: 1,
            broadcast: None,
            partitions: None,
            suffix: "_right".into(),
        }
    }
}

impl JoinOptions {
    /// Options for a join of kind `how`.
    pub fn new(how: JoinHow) -> Self {
        JoinOptions {
            how,
            ..Default::default()
        }
    }
    /// Forces or forbids the broadcast strategy.
    pub fn broadcast(mut self, yes: bool) -> Self {
        self.broadcast = Some(yes);
        self
    }
    /// Sets the number of shuffle output partitions.
    pub fn partitions(mut self, n: usize) -> Self {
        self.partitions = Some(n.max(1));
        self
    }
}

fn join_lazy(
    left: LazyFrame,
    right: LazyFrame,
    left_on: &[PlSmallStr],
    right_on: &[PlSmallStr],
    how: JoinHow,
    suffix: &str,
) -> LazyFrame {
    let lo: Vec<Expr> = left_on.iter().map(|c| col(c.clone())).collect();
    let ro: Vec<Expr> = right_on.iter().map(|c| col(c.clone())).collect();
    let args = JoinArgs::new(how.polars()).with_suffix(Some(suffix.into()));
    left.join(right, lo, ro, args)
}

impl Frame {
    /// Joins with `right` on `left_on` = `right_on` (one or more key columns).
    ///
    /// # Errors
    /// At graph-build time: a missing key column, different key counts, or key types that
    /// differ between the sides; broadcast asked for a full join.
    pub fn join<S: AsRef<str>>(
        &self,
        right: &Frame,
        left_on: &[S],
        right_on: &[S],
        options: JoinOptions,
    ) -> Result<Frame> {
        let lo: Vec<&str> = left_on.iter().map(|c| c.as_ref()).collect();
        let ro: Vec<&str> = right_on.iter().map(|c| c.as_ref()).collect();
        self.check_columns(&lo, "join (left)")?;
        right.check_columns(&ro, "join (right)")?;
        if lo.len() != ro.len() || lo.is_empty() {
            return Err(Error::config(format!(
                "frame.join: {} left keys and {} right keys",
                lo.len(),
                ro.len()
            )));
        }
        for (l, r) in lo.iter().zip(&ro) {
            let (lt, rt) = (self.schema.get(l), right.schema.get(r));
            if lt != rt {
                return Err(Error::config(format!(
                    "frame.join: key `{l}` is {lt:?} on the left but `{r}` is {rt:?} on the right"
                )));
            }
        }
        let left_on: Vec<PlSmallStr> = lo.iter().map(|c| PlSmallStr::from(*c)).collect();
        let right_on: Vec<PlSmallStr> = ro.iter().map(|c| PlSmallStr::from(*c)).collect();
        let how = options.how;
        let suffix = options.suffix.clone();
        let (l2, r2, s2) = (left_on.clone(), right_on.clone(), suffix.clone());
        let right_empty = DataFrame::empty_with_schema(&right.schema).lazy();
        let out_schema = check_lazy(&self.schema, "join", move |lf| {
            join_lazy(lf, right_empty, &l2, &r2, how, &s2)
        })?;
        let broadcast_ok = how != JoinHow::Full;
        let broadcast = match options.broadcast {
            Some(true) if !broadcast_ok => {
                return Err(Error::config(
                    "frame.join: a full join cannot broadcast one side; use the shuffle",
                ))
            }
            Some(b) => b,
            None => broadcast_ok && right.parts.len() <= options.broadcast_partitions,
        };
        if broadcast {
            let right_nodes = right.nodes();
            let rschema = right.schema.clone();
            let whole = df_task(
                "join-broadcast-side",
                &[next_op()],
                right_nodes,
                move |ins| {
                    let dfs = ins.iter_mut().map(take_df).collect::<Result<Vec<_>>>()?;
                    let mut df = concat(dfs, &rschema)?;
                    df.rechunk_mut();
                    Ok(df)
                },
            );
            let (l3, r3) = (left_on.clone(), right_on.clone());
            let op = PartOp::JoinSide(Arc::new(SideJoin {
                side: whole,
                side_schema: right.schema.clone(),
                left_columns: self.schema.iter_names().cloned().collect(),
                left_on: left_on.clone(),
                join: Arc::new(move |l, r| join_lazy(l, r, &l3, &r3, how, &suffix)),
            }));
            let mut ops = (*self.ops).clone();
            ops.push(op);
            return Ok(Frame {
                parts: self.parts.clone(),
                source_schema: self.source_schema.clone(),
                ops: Arc::new(ops),
                schema: out_schema,
                sorted_by: None,
                divisions: None,
            });
        }
        let n = options
            .partitions
            .unwrap_or_else(|| self.parts.len().max(right.parts.len()))
            .max(1);
        let (lk, rk) = (left_on.clone(), right_on.clone());
        let lparts = gather_pieces(
            shuffle_pieces(
                &self.nodes(),
                n,
                Arc::new(move |df| hash_split(&df, &lk, n).map_err(pl("join shuffle (left)"))),
            ),
            &self.schema,
        );
        let rparts = gather_pieces(
            shuffle_pieces(
                &right.nodes(),
                n,
                Arc::new(move |df| hash_split(&df, &rk, n).map_err(pl("join shuffle (right)"))),
            ),
            &right.schema,
        );
        let id = next_op();
        let nodes = lparts
            .into_iter()
            .zip(rparts)
            .enumerate()
            .map(|(j, (l, r))| {
                let (lo, ro, sf) = (left_on.clone(), right_on.clone(), suffix.clone());
                df_task("join-shuffled", &[id, j as i64], vec![l, r], move |ins| {
                    let l = take_df(&mut ins[0])?;
                    let r = take_df(&mut ins[1])?;
                    join_lazy(l.lazy(), r.lazy(), &lo, &ro, how, &sf)
                        .collect()
                        .map_err(pl("shuffle join"))
                })
            })
            .collect();
        Ok(Frame::of_nodes(nodes, out_schema))
    }
}
