//! Futures: submit a function now, collect its result later.
//!
//! [`Runtime::submit`] queues a call on the worker pool at once and returns a [`Future`].
//! Arguments are plain values or other futures (a future argument is waited for when the call
//! runs). [`Future::result`] blocks until the value is there. On a worker thread, a future that
//! has not started yet runs inline on the waiting thread; otherwise the waiting thread blocks
//! and the pool starts a replacement worker while it waits (like Dask's `secede`). So a task may
//! submit tasks and wait for them without deadlocking the pool, even with one thread.
//! [`as_completed`] yields futures in the order they finish; [`Future::cancel`] stops a call
//! that has not started and flags a running one.
//!
//! ```
//! use brisk::Runtime;
//! let rt = Runtime::builder().threads(1).build().unwrap();
//! let inner = rt.clone();
//! let f = rt.submit(move |n: u64| {
//!     // nested: submit and wait from inside a task, on a one-thread pool
//!     let parts: Vec<_> = (0..n).map(|i| inner.submit(|i: u64| i * i, i)).collect();
//!     parts.iter().map(|p| p.result()).sum::<brisk::Result<u64>>()
//! }, 4);
//! assert_eq!(f.result().unwrap(), 0 + 1 + 4 + 9);
//! ```

use std::marker::PhantomData;
use std::panic::AssertUnwindSafe;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Weak};

use parking_lot::{Condvar, Mutex};

use crate::delayed::{fn_name, output_value, TaskFn, TaskOutput};
use crate::error::{Error, ErrorKind, Result};
use crate::graph::{Key, Value};
use crate::sched::pool::{block_on, current_worker, Job, Pool, PoolCall};
use crate::sched::{CancelToken, Runtime, RuntimeInner, TaskContext};

static NEXT_FUTURE: AtomicU64 = AtomicU64::new(0);

struct State {
    key: Key,
    done: AtomicBool,
    result: Mutex<Option<Result<Value, String>>>,
    error: Mutex<Option<Error>>,
    cond: Condvar,
    cancel: CancelToken,
    listeners: Mutex<Vec<crossbeam_channel_lite::Sender>>,
    pool: Weak<Pool>,
    /// The call, until a worker (or a waiter running it inline) takes it.
    body: Mutex<Option<Body>>,
    runtime: Weak<RuntimeInner>,
}

/// A channel-free completion signal for `as_completed`: a shared queue plus a condvar.
mod crossbeam_channel_lite {
    use std::sync::Arc;

    use parking_lot::{Condvar, Mutex};

    #[derive(Clone)]
    pub(super) struct Sender {
        pub(super) queue: Arc<(Mutex<Vec<usize>>, Condvar)>,
        pub(super) index: usize,
    }

    impl Sender {
        pub(super) fn send(&self) {
            self.queue.0.lock().push(self.index);
            self.queue.1.notify_all();
        }
    }
}

impl State {
    fn complete(&self, result: Result<Value>) {
        {
            let mut slot = self.result.lock();
            if self.done.load(Ordering::Acquire) {
                return;
            }
            match result {
                Ok(v) => *slot = Some(Ok(v)),
                Err(e) => {
                    *slot = Some(Err(e.to_string()));
                    *self.error.lock() = Some(e);
                }
            }
            self.done.store(true, Ordering::Release);
            self.cond.notify_all();
        }
        for l in std::mem::take(&mut *self.listeners.lock()) {
            l.send();
        }
        if let Some(pool) = self.pool.upgrade() {
            pool.wake();
        }
    }
}

/// A value being computed on the pool; see the [module docs](self).
pub struct Future<T> {
    state: Arc<State>,
    _type: PhantomData<fn() -> T>,
}

impl<T> Clone for Future<T> {
    fn clone(&self) -> Self {
        Future {
            state: Arc::clone(&self.state),
            _type: PhantomData,
        }
    }
}

impl<T> std::fmt::Debug for Future<T> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "Future({}, done: {})", self.state.key, self.is_done())
    }
}

impl<T> Future<T> {
    /// The key naming this call in errors.
    pub fn key(&self) -> &Key {
        &self.state.key
    }

    /// True once the call finished (or failed, or was cancelled).
    pub fn is_done(&self) -> bool {
        self.state.done.load(Ordering::Acquire)
    }

    /// Cancels: a call that has not started never runs; a running one sees
    /// [`TaskContext::is_cancelled`]. `result()` then returns `Cancelled`.
    pub fn cancel(&self) {
        self.state.cancel.cancel();
        self.state.complete(Err(Error::new(ErrorKind::Cancelled)));
    }

    /// Blocks until done. On a pool thread, a call that has not started runs right here;
    /// otherwise the pool starts a replacement worker while this thread waits.
    pub fn wait(&self) {
        if self.is_done() {
            return;
        }
        let Some(pool) = self.state.pool.upgrade() else {
            return self.wait_done();
        };
        if let Some(worker) = current_worker(&pool) {
            if self.state.run(worker) {
                return;
            }
        }
        block_on(&pool, || self.wait_done());
    }

    fn wait_done(&self) {
        let mut slot = self.state.result.lock();
        while !self.state.done.load(Ordering::Acquire) {
            self.state.cond.wait(&mut slot);
        }
    }
}

impl<T: Clone + Send + Sync + 'static> Future<T> {
    /// Waits for and returns the value (cloned if other handles may still read it).
    ///
    /// # Errors
    /// The call's error (naming its key), or `Cancelled`.
    pub fn result(&self) -> Result<T> {
        self.wait();
        if let Some(e) = self.state.error.lock().as_ref() {
            return Err(copy_error(e));
        }
        let slot = self.state.result.lock();
        match slot.as_ref() {
            Some(Ok(v)) => v.downcast_ref::<T>().cloned().ok_or_else(|| {
                Error::new(ErrorKind::TypeMismatch {
                    key: self.state.key.to_string(),
                    expected: std::any::type_name::<T>(),
                    found: v.type_name(),
                })
            }),
            Some(Err(msg)) => Err(Error::internal(msg.clone())),
            None => Err(Error::internal("future finished without a result")),
        }
    }
}

/// Errors are not `Clone` (they may hold an I/O error); futures hand out equivalent copies.
fn copy_error(e: &Error) -> Error {
    match e.kind() {
        ErrorKind::Cancelled => Error::new(ErrorKind::Cancelled),
        ErrorKind::TaskFailed {
            key,
            op,
            message,
            panicked,
            attempts,
            consumers,
            source,
        } => Error::new(ErrorKind::TaskFailed {
            key: key.clone(),
            op: op.clone(),
            message: message.clone(),
            panicked: *panicked,
            attempts: *attempts,
            consumers: consumers.clone(),
            source: source.clone(),
        }),
        other => Error::msg(other.to_string()),
    }
}

/// Yields the futures in the order they complete (each exactly once).
pub fn as_completed<T>(futures: impl IntoIterator<Item = Future<T>>) -> AsCompleted<T> {
    let futures: Vec<Future<T>> = futures.into_iter().collect();
    let queue = Arc::new((Mutex::new(Vec::new()), Condvar::new()));
    for (index, f) in futures.iter().enumerate() {
        let sender = crossbeam_channel_lite::Sender {
            queue: Arc::clone(&queue),
            index,
        };
        let mut listeners = f.state.listeners.lock();
        if f.is_done() {
            drop(listeners);
            sender.send();
        } else {
            listeners.push(sender);
        }
    }
    AsCompleted {
        remaining: futures.len(),
        futures: futures.into_iter().map(Some).collect(),
        queue,
    }
}

/// Iterator returned by [`as_completed`].
pub struct AsCompleted<T> {
    futures: Vec<Option<Future<T>>>,
    queue: Arc<(Mutex<Vec<usize>>, Condvar)>,
    remaining: usize,
}

impl<T> Iterator for AsCompleted<T> {
    type Item = Future<T>;

    fn next(&mut self) -> Option<Future<T>> {
        if self.remaining == 0 {
            return None;
        }
        let pool = self
            .futures
            .iter()
            .flatten()
            .next()
            .and_then(|f| f.state.pool.upgrade());
        let queue = Arc::clone(&self.queue);
        let wait = move || {
            let mut q = queue.0.lock();
            loop {
                if let Some(i) = q.pop() {
                    return i;
                }
                queue.1.wait(&mut q);
            }
        };
        let i = match pool {
            Some(pool) if !self.queue.0.lock().is_empty() || pool.is_current() => {
                block_on(&pool, wait)
            }
            _ => wait(),
        };
        self.remaining -= 1;
        self.futures[i].take()
    }
}

/// An argument of a submitted call: a plain value or a future of one.
pub trait IntoFutureArg<T> {
    #[doc(hidden)]
    fn into_source(self) -> FutureArg<T>;
}

#[doc(hidden)]
pub enum FutureArg<T> {
    Value(T),
    Future(Future<T>),
}

impl<T: Clone + Send + Sync + 'static> FutureArg<T> {
    fn get(self) -> Result<T> {
        match self {
            FutureArg::Value(v) => Ok(v),
            FutureArg::Future(f) => f.result(),
        }
    }
}

impl<T: Clone + Send + Sync + 'static> IntoFutureArg<T> for T {
    fn into_source(self) -> FutureArg<T> {
        FutureArg::Value(self)
    }
}
impl<T> IntoFutureArg<T> for Future<T> {
    fn into_source(self) -> FutureArg<T> {
        FutureArg::Future(self)
    }
}

/// Arguments of [`Runtime::submit`]: one as is, several as a tuple.
pub trait SubmitArgs<Args>: Send + 'static {
    #[doc(hidden)]
    fn resolve(self) -> Result<Args>;
}

impl SubmitArgs<()> for () {
    fn resolve(self) -> Result<()> {
        Ok(())
    }
}

impl<T1: Clone + Send + Sync + 'static, A1: IntoFutureArg<T1> + Send + 'static> SubmitArgs<(T1,)>
    for A1
{
    fn resolve(self) -> Result<(T1,)> {
        Ok((self.into_source().get()?,))
    }
}

macro_rules! submit_arity {
    ($($T:ident $A:ident $i:tt),+) => {
        impl<$($T: Clone + Send + Sync + 'static, $A: IntoFutureArg<$T> + Send + 'static),+>
            SubmitArgs<($($T,)+)> for ($($A,)+)
        {
            fn resolve(self) -> Result<($($T,)+)> {
                Ok(($(self.$i.into_source().get()?,)+))
            }
        }
    };
}
submit_arity!(T1 A1 0, T2 A2 1);
submit_arity!(T1 A1 0, T2 A2 1, T3 A3 2);
submit_arity!(T1 A1 0, T2 A2 1, T3 A3 2, T4 A4 3);
submit_arity!(T1 A1 0, T2 A2 1, T3 A3 2, T4 A4 3, T5 A5 4);
submit_arity!(T1 A1 0, T2 A2 1, T3 A3 2, T4 A4 3, T5 A5 4, T6 A6 5);
submit_arity!(T1 A1 0, T2 A2 1, T3 A3 2, T4 A4 3, T5 A5 4, T6 A6 5, T7 A7 6);
submit_arity!(T1 A1 0, T2 A2 1, T3 A3 2, T4 A4 3, T5 A5 4, T6 A6 5, T7 A7 6, T8 A8 7);

type Body = Box<dyn FnOnce(&TaskContext<'_>) -> Result<Value> + Send>;

impl State {
    /// Runs the call if nobody has taken it yet; returns false if it was already taken.
    fn run(&self, worker: usize) -> bool {
        let Some(body) = self.body.lock().take() else {
            return false;
        };
        if self.cancel.is_cancelled() || self.done.load(Ordering::Acquire) {
            return true;
        }
        let ctx = TaskContext {
            key: &self.key,
            attempt: 1,
            worker,
            cancel: &self.cancel,
            runtime: Some(&self.runtime),
        };
        let result = match std::panic::catch_unwind(AssertUnwindSafe(|| body(&ctx))) {
            Ok(Ok(v)) => Ok(v),
            Ok(Err(e)) => Err(name_failure(e, &self.key, false)),
            Err(p) => {
                let msg = p
                    .downcast_ref::<&str>()
                    .map(|s| s.to_string())
                    .or_else(|| p.downcast_ref::<String>().cloned())
                    .unwrap_or_default();
                Err(name_failure(
                    Error::msg(format!("panicked: {msg}")),
                    &self.key,
                    true,
                ))
            }
        };
        self.complete(result);
        true
    }
}

/// The pool's handle on a submitted call.
struct Call(Arc<State>);

impl PoolCall for Call {
    fn call(&self, worker: usize) {
        self.0.run(worker);
    }
}

fn name_failure(e: Error, key: &Key, panicked: bool) -> Error {
    if e.is_cancelled() || e.failed_key().is_some_and(|k| !k.is_empty()) {
        // Cancelled, or the failure of another task (a future argument): keep its key.
        return e;
    }
    let message = match e.kind() {
        ErrorKind::TaskFailed { message, .. } => message.clone(),
        other => other.to_string(),
    };
    let source = match e.into_kind() {
        ErrorKind::TaskFailed { source, .. } => source,
        other => Some(Arc::new(Error::new(other)) as Arc<dyn std::error::Error + Send + Sync>),
    };
    Error::new(ErrorKind::TaskFailed {
        key: key.to_string(),
        op: key.name().to_string(),
        message,
        panicked,
        attempts: 1,
        consumers: Vec::new(),
        source,
    })
}

impl Runtime {
    /// Runs `f(args)` on the pool as soon as a worker is free; see [`Future`].
    pub fn submit<F, Args, A>(&self, f: F, args: A) -> Future<<F::Output as TaskOutput>::Value>
    where
        F: TaskFn<Args>,
        A: SubmitArgs<Args>,
        Args: 'static,
    {
        let name = fn_name::<F>("submit");
        let key = Key::new(name, &[NEXT_FUTURE.fetch_add(1, Ordering::Relaxed) as i64]);
        let state = Arc::new(State {
            key,
            done: AtomicBool::new(false),
            result: Mutex::new(None),
            error: Mutex::new(None),
            cond: Condvar::new(),
            cancel: CancelToken::new(),
            listeners: Mutex::new(Vec::new()),
            pool: Arc::downgrade(self.pool()),
            body: Mutex::new(Some(Box::new(move |_ctx: &TaskContext<'_>| {
                let args = args.resolve()?;
                output_value(f.call_with(args))
            }))),
            runtime: self.downgrade(),
        });
        self.pool()
            .push(Job::Call(Arc::new(Call(Arc::clone(&state)))));
        Future {
            state,
            _type: PhantomData,
        }
    }
}
