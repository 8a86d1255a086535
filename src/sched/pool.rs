//! The worker threads of the threads executor.
//!
//! One thread per core, each owning a LIFO [`crossbeam_deque::Worker`]; a shared
//! [`Injector`] takes work from outside the pool. A worker looks for work in this order:
//!
//! 1. the task it just made ready (the best of a finished task's newly ready consumers runs
//!    next on the same thread, without touching a queue: warm caches, depth first);
//! 2. its own deque (LIFO: the rest of those consumers, best on top);
//! 3. the injector, then the other workers' deques (stealing the oldest work, FIFO end);
//! 4. **root admission**: tasks without dependencies (reading a file, generating a block) are
//!    not queued at the start. Each run keeps them sorted by priority and releases one only
//!    when the worker found no other work and fewer than `root_limit` (default threads + 1)
//!    of the run's roots are running. This is what stops input overproduction. It cannot
//!    deadlock: the limit counts *running* roots, not results held, so a consumer that needs
//!    32 roots gets them one after another.
//!
//! Idle workers sleep on a condition variable. A thread that adds work bumps an epoch only
//! when someone sleeps (a fence and one load otherwise); a sleeper registers, re-checks for
//! work, then waits for the epoch to change, so no wake-up is lost.
//!
//! A thread of the pool that must wait for something (a nested compute, a future's result)
//! *blocks*, and the pool starts a replacement worker for as long as it waits ([`block_on`]),
//! like Dask's `secede`. So tasks that submit and wait for tasks never deadlock the pool, even
//! with one thread, and no waiting task sits on the stack under an unrelated job (running other
//! jobs on the waiting thread's stack deadlocks as soon as one of them waits for a task further
//! down that same stack). Replacements retire once the blocked thread resumes and their own
//! deque is empty. A future that has not started is simply run inline by its waiter.

use std::cell::RefCell;
use std::rc::Rc;
use std::sync::atomic::{fence, AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::sync::Arc;
use std::thread::JoinHandle;

use crossbeam_deque::{Injector, Steal, Stealer, Worker};
use parking_lot::{Condvar, Mutex};

use super::resources::ResourceGate;
use super::run::{ExecCtx, Outcome, RunState};
use crate::error::{Error, Result};

/// A unit of work in the pool.
pub(crate) enum Job {
    /// Task `task` of a computation; `held` when the resource gate already granted its units;
    /// `root` when it holds a root-admission slot.
    Task {
        run: Arc<RunState>,
        task: u32,
        held: bool,
        root: bool,
    },
    /// A submitted future's body.
    Call(Arc<dyn PoolCall>),
}

/// A job that is not part of a graph: a submitted future.
pub(crate) trait PoolCall: Send + Sync {
    fn call(&self, worker: usize);
}

pub(crate) struct Pool {
    injector: Injector<Job>,
    stealers: Vec<Stealer<Job>>,
    sleep: Sleep,
    active: Mutex<Vec<Arc<RunState>>>,
    active_count: AtomicUsize,
    pub(crate) gate: ResourceGate<Job>,
    shutdown: AtomicBool,
    handles: Mutex<Vec<JoinHandle<()>>>,
    /// Pool threads blocked in [`block_on`].
    blocked: AtomicUsize,
    /// Replacement workers alive; kept at `blocked` or above while threads are blocked.
    extra: AtomicUsize,
    next_index: AtomicUsize,
    name: String,
    /// Stack size of every worker thread (`None`: the platform default).
    stack_size: Option<usize>,
}

struct Sleep {
    lock: Mutex<()>,
    cond: Condvar,
    epoch: AtomicU64,
    sleepers: AtomicUsize,
}

impl Sleep {
    fn notify(&self) {
        fence(Ordering::SeqCst);
        if self.sleepers.load(Ordering::SeqCst) > 0 {
            let _g = self.lock.lock();
            self.epoch.fetch_add(1, Ordering::SeqCst);
            self.cond.notify_all();
        }
    }

    fn sleep(&self, has_work: impl Fn() -> bool) {
        self.sleepers.fetch_add(1, Ordering::SeqCst);
        let epoch = self.epoch.load(Ordering::SeqCst);
        if !has_work() {
            let mut g = self.lock.lock();
            while self.epoch.load(Ordering::SeqCst) == epoch {
                self.cond.wait(&mut g);
            }
        }
        self.sleepers.fetch_sub(1, Ordering::SeqCst);
    }
}

/// What a pool thread keeps in thread-local storage.
struct Local {
    pool: Arc<Pool>,
    index: usize,
    deque: Worker<Job>,
    scratch: RefCell<Option<Scratch>>,
}

/// Buffers reused from task to task on one thread.
#[derive(Default)]
struct Scratch {
    ready: Vec<u32>,
    inputs: Vec<crate::graph::Value>,
    woken: Vec<Job>,
}

thread_local! {
    static LOCAL: RefCell<Option<Rc<Local>>> = const { RefCell::new(None) };
}

impl Pool {
    /// Starts `threads` workers named `{name}-{index}`.
    ///
    /// # Errors
    /// [`ErrorKind::Io`](crate::ErrorKind::Io) naming the thread when one cannot be started
    /// (the ones already running are stopped): a pool short of workers would leave its
    /// missing workers' share of the roots waiting.
    pub(crate) fn start(
        threads: usize,
        resources: &[(String, u32)],
        name: &str,
        stack_size: Option<usize>,
    ) -> Result<Arc<Pool>> {
        let threads = threads.max(1);
        let deques: Vec<Worker<Job>> = (0..threads).map(|_| Worker::new_lifo()).collect();
        let pool = Arc::new(Pool {
            injector: Injector::new(),
            stealers: deques.iter().map(Worker::stealer).collect(),
            sleep: Sleep {
                lock: Mutex::new(()),
                cond: Condvar::new(),
                epoch: AtomicU64::new(0),
                sleepers: AtomicUsize::new(0),
            },
            active: Mutex::new(Vec::new()),
            active_count: AtomicUsize::new(0),
            gate: ResourceGate::new(resources),
            shutdown: AtomicBool::new(false),
            handles: Mutex::new(Vec::new()),
            blocked: AtomicUsize::new(0),
            extra: AtomicUsize::new(0),
            next_index: AtomicUsize::new(threads),
            name: name.to_string(),
            stack_size,
        });
        let mut handles = Vec::with_capacity(threads);
        for (index, deque) in deques.into_iter().enumerate() {
            let worker_pool = Arc::clone(&pool);
            let spawned = pool
                .thread_builder(index)
                .spawn(move || worker_main(worker_pool, index, deque, false));
            match spawned {
                Ok(h) => handles.push(h),
                Err(e) => {
                    *pool.handles.lock() = handles;
                    pool.shutdown();
                    return Err(Error::io(
                        format!(
                            "starting worker thread {name}-{index} of {threads}{}",
                            pool.stack_note()
                        ),
                        e,
                    ));
                }
            }
        }
        *pool.handles.lock() = handles;
        Ok(pool)
    }

    fn thread_builder(&self, index: usize) -> std::thread::Builder {
        let builder = std::thread::Builder::new().name(format!("{}-{index}", self.name));
        match self.stack_size {
            Some(bytes) => builder.stack_size(bytes),
            None => builder,
        }
    }

    /// ` (stack size N bytes)` when one was set, for error messages.
    fn stack_note(&self) -> String {
        self.stack_size
            .map(|b| format!(" (stack size {b} bytes)"))
            .unwrap_or_default()
    }

    /// Stops the threads after their current jobs; joins them unless called from one of them.
    pub(crate) fn shutdown(&self) {
        self.shutdown.store(true, Ordering::SeqCst);
        {
            let _g = self.sleep.lock.lock();
            self.sleep.epoch.fetch_add(1, Ordering::SeqCst);
            self.sleep.cond.notify_all();
        }
        let on_own_thread = LOCAL.with(|l| {
            l.borrow()
                .as_ref()
                .is_some_and(|l| std::ptr::eq(Arc::as_ptr(&l.pool), self))
        });
        let handles = std::mem::take(&mut *self.handles.lock());
        if !on_own_thread {
            for h in handles {
                let _ = h.join();
            }
        }
    }

    pub(crate) fn push(&self, job: Job) {
        self.injector.push(job);
        self.sleep.notify();
    }

    pub(crate) fn wake(&self) {
        self.sleep.notify();
    }

    /// Registers a run and queues its first roots.
    pub(crate) fn start_run(&self, run: &Arc<RunState>) {
        {
            let mut active = self.active.lock();
            active.push(Arc::clone(run));
            self.active_count.store(active.len(), Ordering::SeqCst);
        }
        while let Some(task) = run.try_admit_root() {
            self.injector.push(Job::Task {
                run: Arc::clone(run),
                task,
                held: false,
                root: true,
            });
        }
        self.sleep.notify();
    }

    pub(crate) fn end_run(&self, run: &Arc<RunState>) {
        let mut active = self.active.lock();
        active.retain(|r| !Arc::ptr_eq(r, run));
        self.active_count.store(active.len(), Ordering::SeqCst);
    }

    fn admit_any_root(&self) -> Option<Job> {
        if self.active_count.load(Ordering::Relaxed) == 0 {
            return None;
        }
        let active = self.active.lock();
        // Oldest run first: finish what was started before feeding a newer computation.
        for run in active.iter() {
            if let Some(task) = run.try_admit_root() {
                return Some(Job::Task {
                    run: Arc::clone(run),
                    task,
                    held: false,
                    root: true,
                });
            }
        }
        None
    }

    fn has_work(&self) -> bool {
        self.shutdown.load(Ordering::Relaxed)
            || !self.injector.is_empty()
            || self.stealers.iter().any(|s| !s.is_empty())
            || (self.active_count.load(Ordering::Relaxed) > 0
                && self.active.lock().iter().any(|r| r.can_admit_root()))
    }

    /// True when the current thread is one of this pool's workers.
    pub(crate) fn is_current(self: &Arc<Self>) -> bool {
        LOCAL.with(|l| {
            l.borrow()
                .as_ref()
                .is_some_and(|l| Arc::ptr_eq(&l.pool, self))
        })
    }

    /// Starts replacement workers until there is one per blocked thread.
    fn ensure_replacements(self: &Arc<Self>) {
        loop {
            let extra = self.extra.load(Ordering::SeqCst);
            if extra >= self.blocked.load(Ordering::SeqCst) {
                return;
            }
            if self
                .extra
                .compare_exchange(extra, extra + 1, Ordering::SeqCst, Ordering::SeqCst)
                .is_err()
            {
                continue;
            }
            let index = self.next_index.fetch_add(1, Ordering::Relaxed);
            let pool = Arc::clone(self);
            let spawned = self
                .thread_builder(index)
                .spawn(move || worker_main(pool, index, Worker::new_lifo(), true));
            if let Err(e) = spawned {
                self.extra.fetch_sub(1, Ordering::SeqCst);
                // The pool goes on one worker short while this thread waits.
                log::warn!(
                    "brisk: could not start replacement worker {}-{index}{}: {e}",
                    self.name,
                    self.stack_note()
                );
                return;
            }
        }
    }

    /// A replacement leaves when there are more of them than blocked threads.
    fn retire_extra(&self) -> bool {
        let mut extra = self.extra.load(Ordering::SeqCst);
        while extra > self.blocked.load(Ordering::SeqCst) {
            match self
                .extra
                .compare_exchange(extra, extra - 1, Ordering::SeqCst, Ordering::SeqCst)
            {
                Ok(_) => return true,
                Err(now) => extra = now,
            }
        }
        false
    }

    fn has_excess(&self) -> bool {
        self.extra.load(Ordering::SeqCst) > self.blocked.load(Ordering::SeqCst)
    }
}

/// Runs `wait` (which blocks); when called on a thread of `pool`, a replacement worker keeps
/// the pool at full strength meanwhile. See the module docs.
pub(crate) fn block_on<R>(pool: &Arc<Pool>, wait: impl FnOnce() -> R) -> R {
    let on_pool = pool.is_current();
    if on_pool {
        pool.blocked.fetch_add(1, Ordering::SeqCst);
        pool.ensure_replacements();
    }
    let result = wait();
    if on_pool {
        pool.blocked.fetch_sub(1, Ordering::SeqCst);
        // Let an idle replacement notice that it is no longer needed.
        pool.wake();
    }
    result
}

/// The index of the current pool thread, if it is one of `pool`'s.
pub(crate) fn current_worker(pool: &Arc<Pool>) -> Option<usize> {
    LOCAL.with(|l| {
        l.borrow()
            .as_ref()
            .filter(|l| Arc::ptr_eq(&l.pool, pool))
            .map(|l| l.index)
    })
}

fn worker_main(pool: Arc<Pool>, index: usize, deque: Worker<Job>, replacement: bool) {
    let local = Rc::new(Local {
        pool,
        index,
        deque,
        scratch: RefCell::new(None),
    });
    LOCAL.with(|l| *l.borrow_mut() = Some(Rc::clone(&local)));
    loop {
        if let Some(job) = local.find_job() {
            local.run_job(job);
            continue;
        }
        // Nothing left here (own deque empty): a replacement no longer needed leaves.
        if local.pool.shutdown.load(Ordering::SeqCst) || (replacement && local.pool.retire_extra())
        {
            break;
        }
        let pool = &local.pool;
        pool.sleep
            .sleep(|| pool.has_work() || (replacement && pool.has_excess()));
    }
    LOCAL.with(|l| *l.borrow_mut() = None);
}

impl Local {
    fn find_job(&self) -> Option<Job> {
        if let Some(job) = self.deque.pop() {
            return Some(job);
        }
        loop {
            let mut retry = false;
            match self.pool.injector.steal_batch_and_pop(&self.deque) {
                Steal::Success(job) => return Some(job),
                Steal::Retry => retry = true,
                Steal::Empty => {}
            }
            let n = self.pool.stealers.len();
            for k in 1..n {
                match self.pool.stealers[(self.index + k) % n].steal() {
                    Steal::Success(job) => return Some(job),
                    Steal::Retry => retry = true,
                    Steal::Empty => {}
                }
            }
            if !retry {
                break;
            }
        }
        self.pool.admit_any_root()
    }

    fn run_job(&self, job: Job) {
        match job {
            Job::Call(call) => call.call(self.index),
            Job::Task {
                run,
                task,
                held,
                root,
            } => self.run_task(run, task, held, root),
        }
    }

    /// Runs a task and then, on the same thread, the best consumer it made ready (or a new
    /// root of the same run), until a task leaves nothing to continue with.
    fn run_task(&self, run: Arc<RunState>, task: u32, held: bool, root: bool) {
        // Buffers are reused across tasks; a nested wait inside a task finds them taken and
        // starts with empty ones, which is rare.
        let scratch = self.scratch.borrow_mut().take().unwrap_or_default();
        let mut ctx: ExecCtx<'_, Job> = ExecCtx {
            worker: self.index,
            ready: scratch.ready,
            inputs: scratch.inputs,
            woken: scratch.woken,
            gate: Some(&self.pool.gate),
        };
        let mut next = Some((task, held, root));
        while let Some((task, held, root)) = next.take() {
            // A root that makes nothing ready and leaves this thread idle hands its admission
            // slot straight to the next root (see `RunState::transfer_root_slot`).
            let idle = self.deque.is_empty() && self.pool.injector.is_empty();
            let outcome = run.execute(task, held, root, root && idle, &mut ctx, || Job::Task {
                run: Arc::clone(&run),
                task,
                held: true,
                // A parked root gave back its admission slot.
                root: false,
            });
            for job in ctx.woken.drain(..) {
                self.pool.push(job);
            }
            if run.memory_unpaused() {
                // Roots were held back for memory and may start again.
                self.pool.sleep.notify();
            }
            if outcome != Outcome::Done {
                if root && run.can_admit_root() {
                    // A root slot freed: wake a sleeper in case this thread stops here.
                    self.pool.sleep.notify();
                }
                continue;
            }
            if !ctx.ready.is_empty() {
                if root && run.can_admit_root() {
                    self.pool.sleep.notify();
                }
                // Best (lowest priority number) runs next here; the rest go on our deque,
                // worst first so the best of them is on top.
                ctx.ready
                    .sort_unstable_by_key(|&t| std::cmp::Reverse(run.priority(t)));
                let best = ctx.ready.pop();
                let pushed = !ctx.ready.is_empty();
                for &t in &ctx.ready {
                    self.deque.push(Job::Task {
                        run: Arc::clone(&run),
                        task: t,
                        held: false,
                        root: false,
                    });
                }
                if pushed {
                    self.pool.sleep.notify();
                }
                next = best.map(|t| (t, false, false));
            } else if root && idle {
                next = run.transfer_root_slot().map(|t| (t, false, true));
            } else if self.deque.is_empty() && self.pool.injector.is_empty() {
                if root && run.can_admit_root() {
                    self.pool.sleep.notify();
                }
                next = run.try_admit_root().map(|t| (t, false, true));
            } else if root && run.can_admit_root() {
                self.pool.sleep.notify();
            }
        }
        *self.scratch.borrow_mut() = Some(Scratch {
            ready: ctx.ready,
            inputs: ctx.inputs,
            woken: ctx.woken,
        });
    }
}
