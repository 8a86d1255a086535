//! The frame's own task graph: nodes that compute partitions (polars `DataFrame`s, stored as
//! spillable values) or small results, and the [`Lazy`] handle that computes one of them.
//!
//! Frames keep their own node type instead of `Delayed` so that partition results enter the
//! store through [`Value::spillable`]: the memory limit can move them to disk (Arrow IPC).
//! A `Delayed<DataFrame>` given by the user is carried as an external node and added to the
//! graph by its own `Compute::build`.

use std::marker::PhantomData;
use std::sync::atomic::{AtomicI64, Ordering};
use std::sync::Arc;

use polars::prelude::{DataFrame, PolarsError};

use crate::error::{Error, ErrorKind, Result};
use crate::graph::{Graph, Key, Op, Value};
use crate::sched::Compute;
use crate::Delayed;

static NEXT_OP: AtomicI64 = AtomicI64::new(0);

/// A fresh operation id: every frame operation's tasks are keyed `(name, op_id, i)`.
pub(crate) fn next_op() -> i64 {
    NEXT_OP.fetch_add(1, Ordering::Relaxed)
}

/// One task of a frame graph.
pub(crate) struct Node {
    pub(crate) key: Key,
    op: Option<Op>,
    deps: Vec<Arc<Node>>,
    external: Option<Delayed<DataFrame>>,
}

impl Drop for Node {
    // Long chains (rolling tails, tree combines) must not drop recursively.
    fn drop(&mut self) {
        let mut stack = std::mem::take(&mut self.deps);
        while let Some(node) = stack.pop() {
            if let Some(mut inner) = Arc::into_inner(node) {
                stack.append(&mut inner.deps);
            }
        }
    }
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

impl Node {
    /// A task running `f` on its inputs' values.
    pub(crate) fn new(
        name: &str,
        index: &[i64],
        deps: Vec<Arc<Node>>,
        f: impl Fn(&mut [Value]) -> Result<Value> + Send + Sync + 'static,
    ) -> Arc<Node> {
        let op = Op::new(name.to_string(), move |_ctx, inputs: &mut [Value]| {
            f(inputs)
        });
        Arc::new(Node {
            key: Key::new(name.to_string(), index),
            op: Some(op),
            deps,
            external: None,
        })
    }

    /// A task producing a `DataFrame` (stored spillable).
    pub(crate) fn df(
        name: &str,
        index: &[i64],
        deps: Vec<Arc<Node>>,
        f: impl Fn(&mut [Value]) -> Result<DataFrame> + Send + Sync + 'static,
    ) -> Arc<Node> {
        Node::new(name, index, deps, move |inputs| {
            Ok(Value::spillable(f(inputs)?))
        })
    }

    /// A literal `DataFrame`.
    pub(crate) fn literal_df(name: &str, index: &[i64], df: DataFrame) -> Arc<Node> {
        Arc::new(Node {
            key: Key::new(name.to_string(), index),
            op: Some(Op::literal(Value::spillable(df))),
            deps: Vec::new(),
            external: None,
        })
    }

    /// A user's delayed partition.
    pub(crate) fn external(d: Delayed<DataFrame>) -> Arc<Node> {
        Arc::new(Node {
            key: d.key().clone(),
            op: None,
            deps: Vec::new(),
            external: Some(d),
        })
    }
}

/// Adds `roots` and everything they depend on to `graph`, dependencies first.
pub(crate) fn add_nodes(roots: &[Arc<Node>], graph: &mut Graph) -> Result<()> {
    for root in roots {
        let mut stack: Vec<(&Node, usize)> = vec![(root, 0)];
        while let Some((node, i)) = stack.last_mut() {
            if graph.contains(&node.key) {
                stack.pop();
                continue;
            }
            if let Some(dep) = node.deps.get(*i) {
                *i += 1;
                stack.push((dep, 0));
                continue;
            }
            let node: &Node = node;
            stack.pop();
            if let Some(d) = &node.external {
                let mut ignored = Vec::new();
                d.build(graph, &mut ignored)?;
            } else if let Some(op) = &node.op {
                graph.add_task(
                    node.key.clone(),
                    op.clone(),
                    node.deps.iter().map(|d| &d.key),
                )?;
            }
        }
    }
    Ok(())
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
