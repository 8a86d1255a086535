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
//! A finished future's value is a stored result like a task's: it counts in
//! [`Runtime::memory_stats`], is spilled to disk under memory pressure when its type names a
//! codec ([`SizeOf::spill_codec`](crate::SizeOf::spill_codec)), and is released once every
//! clone of the future is dropped and every call that takes it as an argument has run. A value
//! larger than the whole memory limit fails the call with `TaskTooLarge`. The runtime's hooks
//! ([`Runtime::add_hook`]) see `TaskStarted`, `TaskFinished` / `TaskFailed`, `Spilled` and
//! `Unspilled` events for futures, with `run` 0 (runs count from 1) and the submission number
//! as the task id. Held futures are spilled before the values of running computations (whose
//! next use is known), oldest first.
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

use std::collections::VecDeque;
use std::marker::PhantomData;
use std::panic::AssertUnwindSafe;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Weak};
use std::time::Instant;

use parking_lot::{Condvar, Mutex};

use crate::delayed::{fn_name, output_value, TaskFn, TaskOutput};
use crate::error::{Error, ErrorKind, Result};
use crate::graph::{Key, TaskId, Value};
use crate::sched::pool::{block_on, current_worker, Job, Pool, PoolCall};
use crate::sched::{CancelToken, Event, Runtime, RuntimeInner, TaskContext};
use crate::spill::disk::SpillDir;
use crate::spill::{SpillSource, Store};

static NEXT_FUTURE: AtomicU64 = AtomicU64::new(0);

/// The `run` of the events of futures (computations are numbered from 1).
const FUTURE_RUN: u64 = 0;

struct State {
    key: Key,
    /// The submission number: the task id in events.
    number: u64,
    done: AtomicBool,
    /// Set with `done`, under the lock the waiters' condvar uses.
    finished: Mutex<bool>,
    /// The value, once the call succeeded: a one-slot store counted in the runtime's memory
    /// account, spillable like any stored result.
    store: Store,
    /// Every handle is gone: a value produced now is not kept.
    abandoned: AtomicBool,
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
    /// Marks the call done with `error`, or with the value already in the store; false when
    /// it was done before (cancelled meanwhile).
    fn complete(&self, error: Option<Error>) -> bool {
        {
            let mut finished = self.finished.lock();
            if *finished {
                return false;
            }
            if let Some(e) = error {
                *self.error.lock() = Some(e);
            }
            *finished = true;
            self.done.store(true, Ordering::Release);
            self.cond.notify_all();
        }
        for l in std::mem::take(&mut *self.listeners.lock()) {
            l.send();
        }
        if let Some(pool) = self.pool.upgrade() {
            pool.wake();
        }
        true
    }

    /// Stores the call's value like a task's result: counted, queued as a spill candidate,
    /// then room is made if the total is above the spill threshold. A value larger than the
    /// whole memory limit fails the call, as it fails a task.
    fn hold(self: &Arc<Self>, value: Value, worker: usize) -> Result<()> {
        if self.abandoned.load(Ordering::Acquire) {
            return Ok(()); // nobody can read it
        }
        let Some(rt) = self.runtime.upgrade() else {
            self.store.insert(0, value);
            return Ok(());
        };
        let memory = rt.memory();
        let bytes = value.bytes() as u64;
        if bytes > memory.limit() {
            return Err(Error::new(ErrorKind::TaskTooLarge {
                key: self.key.to_string(),
                bytes,
                inputs: 0,
                output: Some(bytes),
                limit: memory.limit(),
            }));
        }
        let spillable = value.codec().is_some();
        self.store.insert(0, value);
        if spillable {
            rt.held_results().push(self);
        }
        memory.relieve(worker).map_err(|e| {
            self.store.release(0);
            e.context(format!("making room after storing {}", self.key))
        })
    }
}

/// A value being computed on the pool; see the [module docs](self).
pub struct Future<T> {
    state: Arc<Handle>,
    _type: PhantomData<fn() -> T>,
}

/// What the handles of one call share: when the last one goes (the user's futures and the
/// arguments of calls not yet run), the value is released, whoever else still holds the
/// state (the queued job of a call that was run inline, a spill candidate entry).
struct Handle(Arc<State>);

impl std::ops::Deref for Handle {
    type Target = Arc<State>;
    fn deref(&self) -> &Arc<State> {
        &self.0
    }
}

impl Drop for Handle {
    fn drop(&mut self) {
        self.0.abandoned.store(true, Ordering::Release);
        self.0.store.release(0);
    }
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
        self.state.complete(Some(Error::new(ErrorKind::Cancelled)));
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
        let mut finished = self.state.finished.lock();
        while !*finished {
            self.state.cond.wait(&mut finished);
        }
    }
}

impl<T: Clone + Send + Sync + 'static> Future<T> {
    /// Waits for and returns the value (cloned if other handles may still read it).
    ///
    /// # Errors
    /// The call's error (naming its key), or `Cancelled`.
    ///
    /// A value that was spilled is read back (and stays in memory until spilled again).
    pub fn result(&self) -> Result<T> {
        self.wait();
        if let Some(e) = self.state.error.lock().as_ref() {
            // Errors are not `Clone`; every caller gets an equivalent copy.
            return Err(e.duplicate());
        }
        let value = self.state.read()?;
        value.downcast_ref::<T>().cloned().ok_or_else(|| {
            Error::new(ErrorKind::TypeMismatch {
                key: self.state.key.to_string(),
                expected: std::any::type_name::<T>(),
                found: value.type_name(),
            })
        })
    }
}

impl State {
    /// A reference to the stored value, read back from disk if it was spilled.
    fn read(self: &Arc<Self>) -> Result<Value> {
        let rt = self.runtime.upgrade();
        let hooks = rt.as_ref().is_some_and(|rt| rt.has_hooks());
        let started = hooks.then(Instant::now);
        let fetched = self
            .store
            .fetch(0)
            .map_err(|e| e.context(format!("reading the result of {}", self.key)))?;
        let Some((value, from_disk)) = fetched else {
            return Err(Error::internal(format!(
                "future {} finished without a result",
                self.key
            )));
        };
        if let (true, Some(rt)) = (from_disk, rt) {
            let worker = current_worker(&rt.pool).unwrap_or(0);
            if let Some(started) = started {
                rt.emit(&Event::Unspilled {
                    key: &self.key,
                    bytes: value.bytes(),
                    worker,
                    started,
                    finished: Instant::now(),
                });
            }
            // Back in memory and counted: a candidate again once this read is done.
            rt.held_results().push(self);
            rt.memory()
                .relieve(worker)
                .map_err(|e| e.context(format!("making room after reading back {}", self.key)))?;
        }
        Ok(value)
    }
}

/// The values futures hold, as a source of spill victims for the runtime's memory pool:
/// oldest first, skipping values being read. Entries are weak: a dropped future's value is
/// released with it, and its entry is pruned later.
pub(crate) struct HeldResults {
    candidates: Mutex<Candidates>,
    runtime: Weak<RuntimeInner>,
}

#[derive(Default)]
struct Candidates {
    queue: VecDeque<Weak<State>>,
    /// Queue length after the last pruning of dropped futures.
    after_prune: usize,
}

impl HeldResults {
    pub(crate) fn new(runtime: Weak<RuntimeInner>) -> HeldResults {
        HeldResults {
            candidates: Mutex::new(Candidates::default()),
            runtime,
        }
    }

    fn push(&self, state: &Arc<State>) {
        let mut c = self.candidates.lock();
        c.queue.push_back(Arc::downgrade(state));
        // Amortized pruning, so that futures dropped without ever spilling do not pile up.
        if c.queue.len() >= 2 * c.after_prune.max(32) {
            c.queue.retain(|w| w.strong_count() > 0);
            c.after_prune = c.queue.len();
        }
    }
}

impl SpillSource for HeldResults {
    fn spill_one(&self, dir: &SpillDir, worker: usize) -> Result<Option<usize>> {
        let mut tries = self.candidates.lock().queue.len();
        while tries > 0 {
            tries -= 1;
            let Some(weak) = self.candidates.lock().queue.pop_front() else {
                return Ok(None);
            };
            let Some(state) = weak.upgrade() else {
                continue; // dropped: its value is gone
            };
            match state.store.pinned(0) {
                None => continue, // on disk already, or released
                Some(true) => {
                    // Being read: try the others, and this one again later.
                    self.candidates.lock().queue.push_back(weak);
                    continue;
                }
                Some(false) => {}
            }
            let started = Instant::now();
            let spilled = match state.store.spill(0, dir, &state.key.to_string()) {
                Ok(s) => s,
                Err(e) => {
                    self.candidates.lock().queue.push_front(weak);
                    return Err(e.context(format!(
                        "spilling {} to {}",
                        state.key,
                        dir.path().display()
                    )));
                }
            };
            let Some((bytes, disk_bytes)) = spilled else {
                // A reader came while it was being written: still a candidate.
                if state.store.pinned(0).is_some() {
                    self.candidates.lock().queue.push_back(weak);
                }
                return Ok(Some(0));
            };
            if let Some(rt) = self.runtime.upgrade().filter(|rt| rt.has_hooks()) {
                rt.emit(&Event::Spilled {
                    key: &state.key,
                    bytes,
                    disk_bytes: disk_bytes as usize,
                    worker,
                    started,
                    finished: Instant::now(),
                });
            }
            return Ok(Some(bytes));
        }
        Ok(None)
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
    fn run(self: &Arc<Self>, worker: usize) -> bool {
        let Some(body) = self.body.lock().take() else {
            return false;
        };
        if self.cancel.is_cancelled() || self.done.load(Ordering::Acquire) {
            return true;
        }
        let rt = self.runtime.upgrade().filter(|rt| rt.has_hooks());
        let started = rt.as_ref().map(|rt| {
            let at = Instant::now();
            rt.emit(&Event::TaskStarted {
                run: FUTURE_RUN,
                task: self.task_id(),
                key: &self.key,
                op: self.key.name(),
                worker,
                at,
            });
            at
        });
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
            Err(p) => Err(name_failure(
                Error::msg(crate::error::panic_message(&*p)),
                &self.key,
                true,
            )),
        };
        let bytes = result.as_ref().map_or(0, Value::bytes);
        // Errors of storing it (too large, no room) keep their own kind; they name the key.
        let outcome = result.and_then(|v| self.hold(v, worker));
        if let (Some(rt), Some(started)) = (&rt, started) {
            let finished = Instant::now();
            match &outcome {
                Ok(()) => rt.emit(&Event::TaskFinished {
                    run: FUTURE_RUN,
                    task: self.task_id(),
                    key: &self.key,
                    op: self.key.name(),
                    worker,
                    started,
                    finished,
                    bytes,
                }),
                Err(e) => {
                    let message = match e.kind() {
                        ErrorKind::TaskFailed { message, .. } => message.clone(),
                        other => other.to_string(),
                    };
                    rt.emit(&Event::TaskFailed {
                        run: FUTURE_RUN,
                        task: self.task_id(),
                        key: &self.key,
                        op: self.key.name(),
                        worker,
                        started,
                        finished,
                        message: &message,
                        will_retry: false,
                    });
                }
            }
        }
        if !self.complete(outcome.err()) {
            // Cancelled while it ran: the value is not wanted.
            self.store.release(0);
        }
        true
    }

    fn task_id(&self) -> TaskId {
        // Ids wrap after 2^32 submissions; they only tell events apart.
        TaskId(self.number as u32)
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
        let number = NEXT_FUTURE.fetch_add(1, Ordering::Relaxed);
        let key = Key::new(name, &[number as i64]);
        let state = Arc::new(State {
            key,
            number,
            done: AtomicBool::new(false),
            finished: Mutex::new(false),
            store: Store::new(1, Arc::clone(self.inner.memory().account())),
            abandoned: AtomicBool::new(false),
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
            state: Arc::new(Handle(state)),
            _type: PhantomData,
        }
    }
}
