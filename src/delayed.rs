//! `delayed`: ordinary Rust functions called lazily, building a task graph.
//!
//! [`delayed`] wraps a function; [`DelayedFn::call`] takes its arguments — each either a plain
//! value or a [`Delayed`] handle to another call's result — and returns a `Delayed<T>` without
//! running anything. Handles are typed: a `Delayed<Vec<f64>>` computes to a `Vec<f64>`, and
//! passing it where the function expects something else does not compile.
//!
//! One argument is passed as is (`f.call(x)`), several as a tuple (`f.call((x, y, 3))`), up to
//! ten. A `Vec<Delayed<T>>` may be passed where a `Vec<T>` is expected (or turned into a
//! `Delayed<Vec<T>>` with [`gather`]). A function may return `T` or `Result<T, E>`; an `Err`
//! fails the computation with the task's key in the error.
//!
//! Values reach the function by value. When the task is the last consumer of an input, the
//! input is moved, not copied; otherwise it is cloned (so prefer cheap-to-clone types, or
//! `Arc`, for data read by many tasks).
//!
//! ```
//! use brisk::prelude::*;
//! let rt = Runtime::builder().threads(2).build().unwrap();
//! let load = delayed(|i: u64| -> brisk::Result<Vec<u64>> { Ok((0..i).collect()) }).name("load");
//! let parts: Vec<Delayed<Vec<u64>>> = (1..=4).map(|i| load.call(i)).collect();
//! let total = delayed(|xs: Vec<Vec<u64>>| xs.iter().flatten().sum::<u64>()).call(parts);
//! assert_eq!(rt.compute(&total).unwrap(), 0 + 1 + 3 + 6);
//! ```

use std::marker::PhantomData;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;

use crate::error::{BoxError, Error, ErrorKind, Result};
use crate::graph::node::add_nodes;
use crate::graph::{Annotations, Graph, Key, Op, Value};
use crate::sched::{Compute, Runtime};
use crate::spill::SizeOf;

static NEXT_CALL: AtomicU64 = AtomicU64::new(0);

#[doc(hidden)]
pub use crate::graph::node::Node;

/// A lazily computed value of type `T`: the result of a [`DelayedFn::call`].
pub struct Delayed<T> {
    node: Arc<Node>,
    _type: PhantomData<fn() -> T>,
}

impl<T> Delayed<T> {
    /// The lazy node that computes this value (for collections that depend on it).
    pub(crate) fn node(&self) -> &Arc<Node> {
        &self.node
    }
}

impl<T> Clone for Delayed<T> {
    fn clone(&self) -> Self {
        Delayed {
            node: Arc::clone(&self.node),
            _type: PhantomData,
        }
    }
}

impl<T> std::fmt::Debug for Delayed<T> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "Delayed<{}>({})",
            std::any::type_name::<T>(),
            self.node.key
        )
    }
}

impl<T> Delayed<T> {
    /// The key of the task that computes this value.
    pub fn key(&self) -> &Key {
        &self.node.key
    }
}

impl<T: Clone + Send + Sync + 'static> Delayed<T> {
    /// Computes on the default runtime ([`Runtime::global`]).
    pub fn compute(&self) -> Result<T> {
        Runtime::global().compute(self)
    }
}

/// A delayed constant: `value(x)` is a `Delayed<T>` that computes to `x`.
pub fn value<T: SizeOf + Send + Sync + 'static>(v: T) -> Delayed<T> {
    let key = Key::new("value", &[NEXT_CALL.fetch_add(1, Ordering::Relaxed) as i64]);
    Delayed {
        node: Arc::new(Node {
            key,
            op: Op::literal(Value::new(v)),
            deps: Vec::new(),
            annotations: None,
        }),
        _type: PhantomData,
    }
}

impl<T: Clone + Send + Sync + 'static> Compute for Delayed<T> {
    type Output = T;

    fn build(&self, graph: &mut Graph, outputs: &mut Vec<Key>) -> Result<()> {
        add_nodes(std::slice::from_ref(&self.node), graph)?;
        outputs.push(self.node.key.clone());
        Ok(())
    }

    fn finish(&self, values: &mut std::vec::IntoIter<Value>) -> Result<T> {
        let v = values
            .next()
            .ok_or_else(|| Error::internal("missing output value"))?;
        v.take::<T>().map_err(|v| {
            Error::new(ErrorKind::TypeMismatch {
                key: self.node.key.to_string(),
                expected: std::any::type_name::<T>(),
                found: v.type_name(),
            })
        })
    }
}

/// What a task function may return: a value, or a `Result` whose `Err` fails the task.
pub trait TaskOutput {
    /// The value type.
    type Value: SizeOf + Clone + Send + Sync + 'static;
    /// Splits into the value or the task's error.
    fn into_result(self) -> std::result::Result<Self::Value, BoxError>;
}

impl<T: SizeOf + Clone + Send + Sync + 'static> TaskOutput for T {
    type Value = T;
    fn into_result(self) -> std::result::Result<T, BoxError> {
        Ok(self)
    }
}

impl<T, E> TaskOutput for std::result::Result<T, E>
where
    T: SizeOf + Clone + Send + Sync + 'static,
    E: Into<BoxError>,
{
    type Value = T;
    fn into_result(self) -> std::result::Result<T, BoxError> {
        self.map_err(Into::into)
    }
}

pub(crate) fn output_value<R: TaskOutput>(r: R) -> Result<Value> {
    match r.into_result() {
        Ok(v) => Ok(Value::auto(v)),
        Err(e) => Err(match e.downcast::<Error>() {
            Ok(brisk_error) => *brisk_error,
            Err(other) => Error::user(other),
        }),
    }
}

/// A function of argument tuple `Args` (implemented for closures and fns of up to 10
/// arguments).
pub trait TaskFn<Args>: Send + Sync + 'static {
    /// The return type.
    type Output: TaskOutput;
    /// Calls the function.
    fn call_with(&self, args: Args) -> Self::Output;
}

/// An argument: a plain value, or a handle whose result is passed when the task runs.
pub enum Arg<T> {
    /// A value captured now.
    Value(T),
    /// The result of another task.
    Delayed(Delayed<T>),
}

/// Converts into an [`Arg`]: implemented for `T`, `Delayed<T>`, `&Delayed<T>`, and
/// `Vec<Delayed<T>>` as an argument of type `Vec<T>`.
pub trait IntoArg<T> {
    /// The argument.
    fn into_arg(self) -> Arg<T>;
}

impl<T: Clone + Send + Sync + 'static> IntoArg<T> for T {
    fn into_arg(self) -> Arg<T> {
        Arg::Value(self)
    }
}
impl<T> IntoArg<T> for Delayed<T> {
    fn into_arg(self) -> Arg<T> {
        Arg::Delayed(self)
    }
}
impl<T> IntoArg<T> for &Delayed<T> {
    fn into_arg(self) -> Arg<T> {
        Arg::Delayed(self.clone())
    }
}
impl<T: Clone + Send + Sync + SizeOf + 'static> IntoArg<Vec<T>> for Vec<Delayed<T>> {
    fn into_arg(self) -> Arg<Vec<T>> {
        Arg::Delayed(gather(self))
    }
}
impl<T: Clone + Send + Sync + SizeOf + 'static> IntoArg<Vec<T>> for &[Delayed<T>] {
    fn into_arg(self) -> Arg<Vec<T>> {
        Arg::Delayed(gather(self.to_vec()))
    }
}

/// Where an argument comes from when the task runs.
#[doc(hidden)]
pub enum Slot<T> {
    Value(T),
    Input(usize),
}

impl<T: Clone + Send + Sync + 'static> Slot<T> {
    fn new(arg: Arg<T>, deps: &mut Vec<Arc<Node>>) -> Slot<T> {
        match arg {
            Arg::Value(v) => Slot::Value(v),
            Arg::Delayed(d) => {
                deps.push(d.node);
                Slot::Input(deps.len() - 1)
            }
        }
    }

    fn resolve(&self, inputs: &mut [Value], key: &Key) -> Result<T> {
        match self {
            Slot::Value(v) => Ok(v.clone()),
            Slot::Input(i) => std::mem::take(&mut inputs[*i]).take::<T>().map_err(|v| {
                Error::new(ErrorKind::TypeMismatch {
                    key: key.to_string(),
                    expected: std::any::type_name::<T>(),
                    found: v.type_name(),
                })
            }),
        }
    }
}

/// Arguments for a call with argument tuple `Args`: one argument as is, several as a tuple.
pub trait CallArgs<Args>: Sized {
    /// Resolves the arguments at run time.
    #[doc(hidden)]
    type Slots: Send + Sync + 'static;
    #[doc(hidden)]
    fn into_slots(self, deps: &mut Vec<Arc<Node>>) -> Self::Slots;
    #[doc(hidden)]
    fn resolve(slots: &Self::Slots, inputs: &mut [Value], key: &Key) -> Result<Args>;
}

impl CallArgs<()> for () {
    type Slots = ();
    fn into_slots(self, _deps: &mut Vec<Arc<Node>>) {}
    fn resolve(_: &(), _: &mut [Value], _: &Key) -> Result<()> {
        Ok(())
    }
}

impl<F, R> TaskFn<()> for F
where
    F: Fn() -> R + Send + Sync + 'static,
    R: TaskOutput,
{
    type Output = R;
    fn call_with(&self, _args: ()) -> R {
        self()
    }
}

impl<T1: Clone + Send + Sync + 'static, A1: IntoArg<T1>> CallArgs<(T1,)> for A1 {
    type Slots = Slot<T1>;
    fn into_slots(self, deps: &mut Vec<Arc<Node>>) -> Slot<T1> {
        Slot::new(self.into_arg(), deps)
    }
    fn resolve(slots: &Slot<T1>, inputs: &mut [Value], key: &Key) -> Result<(T1,)> {
        Ok((slots.resolve(inputs, key)?,))
    }
}

impl<F, R, T1> TaskFn<(T1,)> for F
where
    F: Fn(T1) -> R + Send + Sync + 'static,
    R: TaskOutput,
{
    type Output = R;
    fn call_with(&self, args: (T1,)) -> R {
        self(args.0)
    }
}

macro_rules! arity {
    ($($T:ident $A:ident $i:tt),+) => {
        impl<$($T: Clone + Send + Sync + 'static, $A: IntoArg<$T>),+> CallArgs<($($T,)+)> for ($($A,)+) {
            type Slots = ($(Slot<$T>,)+);
            fn into_slots(self, deps: &mut Vec<Arc<Node>>) -> Self::Slots {
                ($(Slot::new(self.$i.into_arg(), deps),)+)
            }
            fn resolve(slots: &Self::Slots, inputs: &mut [Value], key: &Key) -> Result<($($T,)+)> {
                Ok(($(slots.$i.resolve(inputs, key)?,)+))
            }
        }

        impl<F, R, $($T),+> TaskFn<($($T,)+)> for F
        where
            F: Fn($($T),+) -> R + Send + Sync + 'static,
            R: TaskOutput,
        {
            type Output = R;
            #[allow(non_snake_case)]
            fn call_with(&self, args: ($($T,)+)) -> R {
                let ($($T,)+) = args;
                self($($T),+)
            }
        }
    };
}

arity!(T1 A1 0, T2 A2 1);
arity!(T1 A1 0, T2 A2 1, T3 A3 2);
arity!(T1 A1 0, T2 A2 1, T3 A3 2, T4 A4 3);
arity!(T1 A1 0, T2 A2 1, T3 A3 2, T4 A4 3, T5 A5 4);
arity!(T1 A1 0, T2 A2 1, T3 A3 2, T4 A4 3, T5 A5 4, T6 A6 5);
arity!(T1 A1 0, T2 A2 1, T3 A3 2, T4 A4 3, T5 A5 4, T6 A6 5, T7 A7 6);
arity!(T1 A1 0, T2 A2 1, T3 A3 2, T4 A4 3, T5 A5 4, T6 A6 5, T7 A7 6, T8 A8 7);
arity!(T1 A1 0, T2 A2 1, T3 A3 2, T4 A4 3, T5 A5 4, T6 A6 5, T7 A7 6, T8 A8 7, T9 A9 8);
arity!(T1 A1 0, T2 A2 1, T3 A3 2, T4 A4 3, T5 A5 4, T6 A6 5, T7 A7 6, T8 A8 7, T9 A9 8, T10 A10 9);

/// A function wrapped for lazy calls; see the [module docs](self).
pub struct DelayedFn<F, Args> {
    f: Arc<F>,
    name: Arc<str>,
    annotations: Annotations,
    _args: PhantomData<fn(Args)>,
}

impl<F, Args> Clone for DelayedFn<F, Args> {
    fn clone(&self) -> Self {
        DelayedFn {
            f: Arc::clone(&self.f),
            name: Arc::clone(&self.name),
            annotations: self.annotations.clone(),
            _args: PhantomData,
        }
    }
}

/// The name tasks of function type `F` get: `crate::module::function` gives `function`;
/// closures have no name of their own and get `closure_name`.
pub(crate) fn fn_name<F>(closure_name: &'static str) -> &'static str {
    let full = std::any::type_name::<F>();
    if full.contains("{{closure}}") {
        closure_name
    } else {
        full.rsplit("::").next().unwrap_or(full)
    }
}

/// Wraps `f` so that calling it builds a task instead of running.
pub fn delayed<F, Args>(f: F) -> DelayedFn<F, Args>
where
    F: TaskFn<Args>,
{
    let name = fn_name::<F>("delayed");
    DelayedFn {
        f: Arc::new(f),
        name: Arc::from(name),
        annotations: Annotations::default(),
        _args: PhantomData,
    }
}

impl<F, Args> DelayedFn<F, Args>
where
    F: TaskFn<Args>,
    Args: 'static,
{
    /// Names the tasks this function creates (keys become `(name, n)`).
    pub fn name(mut self, name: &str) -> Self {
        self.name = Arc::from(name);
        self
    }

    /// Re-runs a failing call up to `n` more times.
    pub fn retries(mut self, n: u32) -> Self {
        self.annotations.retries = n;
        self
    }

    /// Runs ready calls of this function before ready tasks of lower priority.
    pub fn priority(mut self, priority: i64) -> Self {
        self.annotations.priority = Some(priority);
        self
    }

    /// Each call holds `units` of resource `name` while it runs.
    pub fn resource(mut self, name: &str, units: u32) -> Self {
        self.annotations.resources.push((Arc::from(name), units));
        self
    }

    /// A lazy call: returns a handle, runs nothing.
    pub fn call<A: CallArgs<Args>>(&self, args: A) -> Delayed<<F::Output as TaskOutput>::Value> {
        let mut deps = Vec::new();
        let slots = args.into_slots(&mut deps);
        let f = Arc::clone(&self.f);
        let op = Op::new(
            Arc::clone(&self.name),
            move |ctx: &crate::TaskContext<'_>, inputs: &mut [Value]| {
                let args = A::resolve(&slots, inputs, ctx.key())?;
                output_value(f.call_with(args))
            },
        );
        let key = Key::indexed(
            &self.name,
            &[NEXT_CALL.fetch_add(1, Ordering::Relaxed) as i64],
        );
        let annotations = (self.annotations != Annotations::default())
            .then(|| Box::new(self.annotations.clone()));
        Delayed {
            node: Arc::new(Node {
                key,
                op,
                deps,
                annotations,
            }),
            _type: PhantomData,
        }
    }
}

/// Turns many handles into one handle of a `Vec`, in order.
pub fn gather<T: Clone + Send + Sync + SizeOf + 'static>(
    items: Vec<Delayed<T>>,
) -> Delayed<Vec<T>> {
    let deps: Vec<Arc<Node>> = items.into_iter().map(|d| d.node).collect();
    let op = Op::new(
        "gather",
        |ctx: &crate::TaskContext<'_>, inputs: &mut [Value]| {
            let mut out = Vec::with_capacity(inputs.len());
            for v in inputs.iter_mut() {
                let v = std::mem::take(v);
                out.push(v.take::<T>().map_err(|v| {
                    Error::new(ErrorKind::TypeMismatch {
                        key: ctx.key().to_string(),
                        expected: std::any::type_name::<T>(),
                        found: v.type_name(),
                    })
                })?);
            }
            Ok(Value::new(out))
        },
    );
    Delayed {
        node: Arc::new(Node {
            key: Key::new(
                "gather",
                &[NEXT_CALL.fetch_add(1, Ordering::Relaxed) as i64],
            ),
            op,
            deps,
            annotations: None,
        }),
        _type: PhantomData,
    }
}

impl Runtime {
    /// Computes `d` and returns a handle that holds the result: later graphs that use it read
    /// the stored value instead of recomputing.
    pub fn persist<T: Clone + SizeOf + Send + Sync + 'static>(
        &self,
        d: &Delayed<T>,
    ) -> Result<Delayed<T>> {
        let v: T = self.compute(d)?;
        Ok(Delayed {
            node: Arc::new(Node {
                key: d.node.key.clone(),
                op: Op::literal(Value::new(v)),
                deps: Vec::new(),
                annotations: None,
            }),
            _type: PhantomData,
        })
    }
}
