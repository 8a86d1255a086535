//! Frame tasks: constructors of the lazy [`Node`]s that compute partitions (polars
//! `DataFrame`s, stored as spillable values) or small results, and the [`Lazy`] handle that
//! computes one of them.
//!
//! Frames share the graph's node type with `delayed` calls and arrays (one drop, one graph
//! walk); what is theirs is how tasks are keyed — `(name, op_id, i)` — and that partition
//! results enter the store through [`Value::spillable`], so the memory limit can move them to
//! disk (Arrow IPC). A `Delayed<DataFrame>` given by the user is used as a dependency as it is.

use std::marker::PhantomData;
use std::sync::atomic::{AtomicI64, Ordering};
use std::sync::Arc;

use polars::prelude::{DataFrame, PolarsError};

use crate::error::{Error, ErrorKind, Result};
pub(crate) use crate::graph::node::{add_nodes, Node};
use crate::graph::{Graph, Key, Op, Value};
use crate::sched::Compute;
use crate::Delayed;

static NEXT_OP: AtomicI64 = AtomicI64::new(0);

/// A fresh operation id: every frame operation's tasks are keyed `(name, op_id, i)`.
pub(crate) fn next_op() -> i64 {
    NEXT_OP.fetch_add(1, Ordering::Relaxed)
}

/// Wraps a polars error with what the frame was doing.
pub(crate) fn pl(context: impl Into<String>) -> impl FnOnce(PolarsError) -> Error {
    let context = context.into();
    move |source| Error::new(ErrorKind::Polars { context, source })
}

/// Moves a `DataFrame` input out of its slot.
pub(crate) fn take_df(v: &mut Value) -> Result<DataFrame> {
    take::<DataFrame>(v)
}

/// Moves an input of type `T` out of its slot.
pub(crate) fn take<T: Clone + Send + Sync + 'static>(v: &mut Value) -> Result<T> {
    std::mem::take(v).take::<T>().map_err(|v| {
        Error::internal(format!(
            "frame task expected {}, found {}",
            std::any::type_name::<T>(),
            v.type_name()
        ))
    })
}

/// A task running `f` on its inputs' values.
pub(crate) fn task(
    name: &str,
    index: &[i64],
    deps: Vec<Arc<Node>>,
    f: impl Fn(&mut [Value]) -> Result<Value> + Send + Sync + 'static,
) -> Arc<Node> {
    let op = Op::new(name.to_string(), move |_ctx, inputs: &mut [Value]| {
        f(inputs)
    });
    Arc::new(Node::new(Key::new(name.to_string(), index), op, deps))
}

/// A task producing a `DataFrame` (stored spillable).
pub(crate) fn df_task(
    name: &str,
    index: &[i64],
    deps: Vec<Arc<Node>>,
    f: impl Fn(&mut [Value]) -> Result<DataFrame> + Send + Sync + 'static,
) -> Arc<Node> {
    task(name, index, deps, move |inputs| {
        Ok(Value::spillable(f(inputs)?))
    })
}

/// A literal `DataFrame`.
pub(crate) fn literal_df(name: &str, index: &[i64], df: DataFrame) -> Arc<Node> {
    Arc::new(Node::new(
        Key::new(name.to_string(), index),
        Op::literal(Value::spillable(df)),
        Vec::new(),
    ))
}

/// A user's delayed partition: its own node.
pub(crate) fn external(d: Delayed<DataFrame>) -> Arc<Node> {
    Arc::clone(d.node())
}

/// A lazily computed result of a frame operation (a length, a reduced `DataFrame`, …):
/// compute it with [`Runtime::compute`](crate::Runtime::compute).
pub struct Lazy<T> {
    pub(crate) node: Arc<Node>,
    _type: PhantomData<fn() -> T>,
}

impl<T> Clone for Lazy<T> {
    fn clone(&self) -> Self {
        Lazy {
            node: Arc::clone(&self.node),
            _type: PhantomData,
        }
    }
}

impl<T> Lazy<T> {
    pub(crate) fn new(node: Arc<Node>) -> Self {
        Lazy {
            node,
            _type: PhantomData,
        }
    }

    /// The key of the task that computes the result.
    pub fn key(&self) -> &Key {
        &self.node.key
    }
}

impl<T: Clone + Send + Sync + 'static> Compute for Lazy<T> {
    type Output = T;

    fn build(&self, graph: &mut Graph, outputs: &mut Vec<Key>) -> Result<()> {
        add_nodes(std::slice::from_ref(&self.node), graph)?;
        outputs.push(self.node.key.clone());
        Ok(())
    }

    fn finish(&self, values: &mut std::vec::IntoIter<Value>) -> Result<T> {
        let mut v = values
            .next()
            .ok_or_else(|| Error::internal("missing output value"))?;
        take::<T>(&mut v)
    }
}
