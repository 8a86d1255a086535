//! What a task does: an [`Op`].
//!
//! Three kinds of op:
//! - **closure ops** wrap any `Fn(&TaskContext, &mut [Value]) -> Result<Value>`; local only;
//! - **named ops** are a registered name plus serde parameters ([`NamedOp`]). The array and frame
//!   collections emit only named ops, so their graphs can be printed with meaningful names,
//!   hashed, and later shipped to remote workers, which rebuild the op from `(name, params)`
//!   through the [`registry`](crate::graph::registry) and never deserialize code;
//! - **literals** hold an already computed [`Value`] (persisted results, constants).
//!
//! The graph's fusion pass adds a fourth, internal kind: a chain of ops run back to back.
//!
//! Inputs arrive as `&mut [Value]` in dependency (argument) order. An op may
//! `std::mem::take` an input to own it; when the task is the last consumer of that input the
//! scheduler has given it the only reference, so [`Value::take`] moves instead of copying.

use std::sync::Arc;

use serde::{de::DeserializeOwned, Serialize};

use super::{Key, Value};
use crate::error::{Error, ErrorKind, Result};
use crate::sched::TaskContext;

/// The signature of a task body.
pub type OpFn = dyn Fn(&TaskContext<'_>, &mut [Value]) -> Result<Value> + Send + Sync;

/// An operation a task runs. Cheap to clone: one reference count, and eight bytes in every
/// task that uses it (a million tasks sharing one op share one allocation).
#[derive(Clone)]
pub struct Op(Arc<OpInner>);

#[doc(hidden)]
pub struct OpInner {
    name: Arc<str>,
    kind: OpKind,
}

impl std::ops::Deref for Op {
    type Target = OpInner;
    fn deref(&self) -> &OpInner {
        &self.0
    }
}

/// What an op runs. Closures are the op of almost every task; the other kinds are boxed so
/// that this is two words (the box lives beside the closure's null-pointer niche).
#[derive(Clone)]
enum OpKind {
    Fn(Arc<OpFn>),
    Other(Box<OtherOp>),
}

/// The kinds of op that are not plain closures.
#[derive(Clone)]
enum OtherOp {
    Named { run: Arc<OpFn>, params: Arc<[u8]> },
    Literal(Value),
    Fused(Arc<[FusedStep]>),
}

// Every task of a graph built by `delayed` or a collection allocates its own op: with the
// reference counts it is six words, one of the allocator's small size classes.
const _: () = assert!(std::mem::size_of::<OpInner>() <= 32);

impl OpInner {
    /// The members of a fused chain, for a fused op.
    pub(crate) fn fused_steps(&self) -> Option<&[FusedStep]> {
        match &self.kind {
            OpKind::Other(other) => match &**other {
                OtherOp::Fused(steps) => Some(steps),
                _ => None,
            },
            OpKind::Fn(_) => None,
        }
    }

    /// The value of a literal op.
    pub(crate) fn literal_value(&self) -> Option<&Value> {
        match &self.kind {
            OpKind::Other(other) => match &**other {
                OtherOp::Literal(value) => Some(value),
                _ => None,
            },
            OpKind::Fn(_) => None,
        }
    }

    /// The function a closure or named op calls.
    pub(crate) fn body(&self) -> Option<&Arc<OpFn>> {
        match &self.kind {
            OpKind::Fn(f) => Some(f),
            OpKind::Other(other) => match &**other {
                OtherOp::Named { run, .. } => Some(run),
                _ => None,
            },
        }
    }
}

/// One member of a fused chain: the key it had before fusion and its op. Step `i + 1` takes
/// step `i`'s result as its only input.
#[derive(Clone)]
pub(crate) struct FusedStep {
    pub(crate) key: Key,
    pub(crate) op: Op,
}

impl Op {
    /// A closure op. `name` is what errors, progress and traces call it.
    ///
    /// ```
    /// use brisk::{Op, Value};
    /// let add = Op::new("add", |_ctx, inputs: &mut [Value]| {
    ///     let a = *inputs[0].downcast_ref::<i64>().unwrap();
    ///     let b = *inputs[1].downcast_ref::<i64>().unwrap();
    ///     Ok(Value::new(a + b))
    /// });
    /// assert_eq!(add.name(), "add");
    /// ```
    pub fn new<F>(name: impl Into<Arc<str>>, f: F) -> Op
    where
        F: Fn(&TaskContext<'_>, &mut [Value]) -> Result<Value> + Send + Sync + 'static,
    {
        Op(Arc::new(OpInner {
            name: name.into(),
            kind: OpKind::Fn(Arc::new(f)),
        }))
    }

    /// A closure op from an already shared function (no allocation per task).
    pub fn from_arc(name: impl Into<Arc<str>>, f: Arc<OpFn>) -> Op {
        Op(Arc::new(OpInner {
            name: name.into(),
            kind: OpKind::Fn(f),
        }))
    }

    /// A named op built from its parameters.
    pub fn named<T: NamedOp>(op: T) -> Result<Op> {
        let params = postcard::to_allocvec(&op).map_err(|e| {
            Error::new(ErrorKind::Codec {
                what: format!("parameters of op `{}`", T::NAME),
                message: e.to_string(),
            })
        })?;
        Ok(Op(Arc::new(OpInner {
            name: Arc::from(T::NAME),
            kind: OpKind::Other(Box::new(OtherOp::Named {
                run: Arc::new(move |ctx: &TaskContext<'_>, inputs: &mut [Value]| {
                    op.run(ctx, inputs)
                }),
                params: params.into(),
            })),
        })))
    }

    /// An op that yields `value` without running anything.
    pub fn literal(value: Value) -> Op {
        Op(Arc::new(OpInner {
            name: Arc::from("literal"),
            kind: OpKind::Other(Box::new(OtherOp::Literal(value))),
        }))
    }

    /// The op's name.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// For named ops, the serialized parameters.
    pub fn params(&self) -> Option<&[u8]> {
        match &self.kind {
            OpKind::Other(other) => match &**other {
                OtherOp::Named { params, .. } => Some(params),
                _ => None,
            },
            OpKind::Fn(_) => None,
        }
    }

    /// True for literal ops.
    pub fn is_literal(&self) -> bool {
        self.literal_value().is_some()
    }

    pub(crate) fn fused(steps: Vec<FusedStep>) -> Op {
        let name = steps.last().map(|s| s.op.name.clone()).unwrap_or_default();
        Op(Arc::new(OpInner {
            name,
            kind: OpKind::Other(Box::new(OtherOp::Fused(steps.into()))),
        }))
    }
}

impl std::fmt::Debug for Op {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let kind = match &self.kind {
            OpKind::Fn(_) => "fn",
            OpKind::Other(other) => match &**other {
                OtherOp::Named { .. } => "named",
                OtherOp::Literal(_) => "literal",
                OtherOp::Fused(_) => "fused",
            },
        };
        write!(f, "Op({kind} {})", self.name)
    }
}

/// An op defined by a name and serde parameters, so that it can be rebuilt from bytes.
///
/// ```
/// use brisk::{NamedOp, Op, TaskContext, Value, Result};
/// #[derive(serde::Serialize, serde::Deserialize)]
/// struct Scale { factor: f64 }
/// impl NamedOp for Scale {
///     const NAME: &'static str = "example.scale";
///     fn run(&self, _ctx: &TaskContext<'_>, inputs: &mut [Value]) -> Result<Value> {
///         let x: f64 = *inputs[0].downcast_ref::<f64>().unwrap();
///         Ok(Value::new(x * self.factor))
///     }
/// }
/// brisk::graph::registry::register::<Scale>();
/// let op = Op::named(Scale { factor: 2.0 }).unwrap();
/// let again = brisk::graph::registry::build(op.name(), op.params().unwrap()).unwrap();
/// assert_eq!(again.name(), "example.scale");
/// ```
pub trait NamedOp: Serialize + DeserializeOwned + Send + Sync + 'static {
    /// Globally unique name, e.g. `"array.sum_chunk"`.
    const NAME: &'static str;
    /// Computes the result from the inputs (in dependency order).
    fn run(&self, ctx: &TaskContext<'_>, inputs: &mut [Value]) -> Result<Value>;
}

pub mod registry {
    //! The process-wide table of named ops: `name → decode parameters and build the op`.
    //! A remote worker runs an op only if its own binary registered it.

    use std::collections::HashMap;
    use std::sync::LazyLock;

    use parking_lot::RwLock;

    use super::{NamedOp, Op};
    use crate::error::{Error, ErrorKind, Result};

    type Factory = fn(&[u8]) -> Result<Op>;

    static REGISTRY: LazyLock<RwLock<HashMap<&'static str, Factory>>> =
        LazyLock::new(|| RwLock::new(HashMap::new()));

    fn build_op<T: NamedOp>(params: &[u8]) -> Result<Op> {
        let op: T = postcard::from_bytes(params).map_err(|e| {
            Error::new(ErrorKind::Codec {
                what: format!("parameters of op `{}`", T::NAME),
                message: e.to_string(),
            })
        })?;
        Op::named(op)
    }

    /// Registers `T` so that [`build`] can rebuild it from `(T::NAME, params)`.
    pub fn register<T: NamedOp>() {
        REGISTRY.write().insert(T::NAME, build_op::<T>);
    }

    /// Rebuilds a registered op from its name and serialized parameters.
    pub fn build(name: &str, params: &[u8]) -> Result<Op> {
        let factory = REGISTRY.read().get(name).copied();
        match factory {
            Some(f) => f(params),
            None => Err(Error::new(ErrorKind::UnknownOp { name: name.into() })),
        }
    }

    /// True when `name` is registered.
    pub fn is_registered(name: &str) -> bool {
        REGISTRY.read().contains_key(name)
    }
}
