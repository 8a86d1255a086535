//! The state of one computation and the body of a task run, shared by both executors.
//!
//! Counters, all per task and all atomic so any worker may finish any task:
//! - `remaining_deps[t]`: distinct dependencies of `t` not yet finished; `t` is ready at 0;
//! - `consumers_to_start[t]`: distinct consumers of `t` that have not yet read it. Each
//!   consumer clones its inputs *before* decrementing, so the one that brings the count to 0
//!   knows every other reader is done and takes the store's reference: it then holds the only
//!   one (buffers can be reused in place) and the value is freed when that task ends — the
//!   moment its last consumer finishes. Requested outputs are never taken.
//!
//!   Both are kept only for counts of two or more (a task with one dependency is ready when it
//!   finishes; a value's only consumer is its last reader, and takes it from the store without
//!   cloning it first): the arrays are allocated zeroed, and the pages of tasks that need no
//!   counter are never touched.
//! - `remaining_sinks`: tasks without consumers still to finish; every task is an ancestor of
//!   some sink, so when this reaches 0 the computation is complete. Counting only sinks keeps
//!   a shared counter off the path of most tasks.
//!
//! Memory (see `spill::pool`): every spillable result that enters the store is queued as a
//! spill candidate keyed by its next use — the best priority among its consumers that have not
//! started (`started[c]`, set once a consumer holds its inputs, by consumers of spillable
//! values only) — and queued again with its new
//! key whenever one of its consumers starts. After storing a result or
//! reading one back from disk, the worker asks the runtime's pool to spill if the total is
//! above the spill threshold. Above the pause threshold no new root is admitted while another
//! task of the run is running. A task whose inputs (before it runs) or inputs plus output
//! (after) exceed the limit fails with `ErrorKind::TaskTooLarge`; so does each member of a fused
//! chain whose input plus result does (every result a step produces is counted and checked,
//! fused or not).
//!
//! Failure: the first error is kept, `aborting` is raised, nothing new starts, and the waiting
//! thread is released once no task of the run is running (per-worker `running` counters,
//! summed only while aborting).

use std::panic::AssertUnwindSafe;
use std::sync::atomic::{AtomicBool, AtomicU32, AtomicUsize, Ordering};
use std::sync::{Arc, Weak};
use std::time::Instant;

use crossbeam_utils::CachePadded;
use parking_lot::Mutex;

use super::event::{Event, EventHook};
use super::latch::Latch;
use super::resources::{Needs, ResourceGate};
use super::{CancelToken, RuntimeInner, TaskContext};

use crate::error::{Error, ErrorKind, Result};
use crate::graph::{Key, Op, Plan, TaskId, Value};
use crate::spill::disk::SpillDir;
use crate::spill::{MemoryPool, Recheck, SpillSource, Store, VictimQueue};

/// Inputs smaller than this reserve no working memory (see `execute_inner`).
const MIN_RESERVATION: u64 = 1 << 20;

/// What happened to a task handed to [`RunState::execute`].
#[derive(Debug, PartialEq, Eq)]
pub(crate) enum Outcome {
    /// Ran and succeeded; newly ready consumers are in `ExecCtx::ready`.
    Done,
    /// Waiting for resources; it will come back through the gate.
    Parked,
    /// Not run: the computation is stopping.
    Discarded,
    /// Ran and failed; the run is aborting.
    Failed,
}

/// Per-worker scratch space and links for running tasks.
pub(crate) struct ExecCtx<'a, J> {
    pub(crate) worker: usize,
    pub(crate) ready: Vec<u32>,
    pub(crate) inputs: Vec<Value>,
    pub(crate) woken: Vec<J>,
    pub(crate) gate: Option<&'a ResourceGate<J>>,
}

impl<J> ExecCtx<'_, J> {
    pub(crate) fn new(worker: usize, gate: Option<&ResourceGate<J>>) -> ExecCtx<'_, J> {
        ExecCtx {
            worker,
            ready: Vec::new(),
            inputs: Vec::new(),
            woken: Vec::new(),
            gate,
        }
    }
}

pub(crate) struct RunState {
    pub(crate) id: u64,
    pub(crate) plan: Plan,
    remaining_deps: Box<[AtomicU32]>,
    consumers_to_start: Box<[AtomicU32]>,
    pub(crate) store: Store,
    remaining_sinks: AtomicUsize,
    /// Tasks without dependencies, best first; admitted through `root_cursor`. A `Vec` as
    /// collected: boxing would shrink it, copying up to a million ids into fresh memory.
    pub(crate) roots: Vec<u32>,
    root_cursor: AtomicUsize,
    running_roots: AtomicUsize,
    pub(crate) root_limit: usize,
    aborting: AtomicBool,
    error: Mutex<Option<Error>>,
    pub(crate) cancel: CancelToken,
    pub(crate) latch: Arc<Latch>,
    running: Box<[CachePadded<AtomicUsize>]>,
    hooks: Box<[Arc<dyn EventHook>]>,
    needs: Option<Box<[Needs]>>,
    runtime: Weak<RuntimeInner>,
    memory: Arc<MemoryPool>,
    /// Consumers of spillable values that hold their inputs: they no longer count for a
    /// value's next use. Only such consumers set their flag (see `next_use`).
    started: Box<[AtomicBool]>,
    victims: VictimQueue,
}

impl RunState {
    #[allow(clippy::too_many_arguments)]
    pub(crate) fn new<J>(
        id: u64,
        plan: Plan,
        workers: usize,
        root_limit: usize,
        memory: Arc<MemoryPool>,
        cancel: CancelToken,
        latch: Arc<Latch>,
        hooks: Vec<Arc<dyn EventHook>>,
        gate: Option<&ResourceGate<J>>,
        runtime: Weak<RuntimeInner>,
    ) -> Result<RunState> {
        let n = plan.len();
        let udeps = plan.unique_deps();
        // Counters only where there is something to count: a task with one dependency is
        // ready when that one finishes, and a value with one consumer is that consumer's to
        // take. The others start at their count; the rest stay zero and, allocated zeroed,
        // are never touched (chains and trees of a million tasks need almost none).
        let mut remaining_deps = zeroed_u32s(n);
        let mut consumers_to_start = zeroed_u32s(n);
        let mut sinks = 0;
        for i in 0..n as u32 {
            let deps = udeps.row_len(i) as u32;
            if deps > 1 {
                *remaining_deps[i as usize].get_mut() = deps;
            }
            match plan.dependents.row_len(i) as u32 {
                0 => sinks += 1,
                1 => {}
                consumers => *consumers_to_start[i as usize].get_mut() = consumers,
            }
        }
        // Roots in priority order, read off the inverse of the priority permutation (linear,
        // no sort). Priorities are a permutation of 0..n by construction of the plan.
        let mut by_rank = vec![u32::MAX; n];
        for (t, &p) in plan.priority.iter().enumerate() {
            if let Some(slot) = by_rank.get_mut(p as usize) {
                *slot = t as u32;
            }
        }
        let roots: Vec<u32> = by_rank
            .into_iter()
            .filter(|&t| t != u32::MAX && udeps.row_len(t) == 0)
            .collect();
        let needs = resolve_needs(&plan, gate)?;
        Ok(RunState {
            id,
            remaining_deps,
            consumers_to_start,
            store: Store::new(n, Arc::clone(memory.account())),
            remaining_sinks: AtomicUsize::new(sinks),
            roots,
            root_cursor: AtomicUsize::new(0),
            running_roots: AtomicUsize::new(0),
            root_limit: root_limit.max(1),
            aborting: AtomicBool::new(false),
            error: Mutex::new(None),
            cancel,
            latch,
            running: (0..workers.max(1))
                .map(|_| CachePadded::new(AtomicUsize::new(0)))
                .collect(),
            hooks: hooks.into(),
            needs,
            runtime,
            memory,
            started: zeroed_bools(n),
            victims: VictimQueue::default(),
            plan,
        })
    }

    pub(crate) fn emit(&self, event: &Event<'_>) {
        for h in self.hooks.iter() {
            h.on_event(event);
        }
    }

    pub(crate) fn has_hooks(&self) -> bool {
        !self.hooks.is_empty()
    }

    #[inline]
    pub(crate) fn is_aborting(&self) -> bool {
        self.aborting.load(Ordering::Relaxed)
    }

    #[inline]
    pub(crate) fn priority(&self, task: u32) -> u32 {
        self.plan.priority[task as usize]
    }

    /// True when roots are waiting and the run is not stopping.
    pub(crate) fn has_pending_roots(&self) -> bool {
        !self.is_aborting() && self.root_cursor.load(Ordering::Relaxed) < self.roots.len()
    }

    /// True when a root is waiting and a root slot is free: an idle worker could start one.
    pub(crate) fn can_admit_root(&self) -> bool {
        self.has_pending_roots()
            && self.running_roots.load(Ordering::Relaxed) < self.root_limit
            && !(self.memory.over_pause() && self.any_running())
    }

    /// True when some task of this run is running (summed over workers: only on the slow path
    /// of a paused admission).
    fn any_running(&self) -> bool {
        self.running.iter().any(|r| r.load(Ordering::SeqCst) > 0)
    }

    /// Whether memory stops a new root now. Above the pause threshold this worker first
    /// spills; if that does not bring the total down, roots wait for running tasks to free
    /// memory — unless none is running, then one is admitted so the run cannot stall.
    fn admission_paused(&self) -> bool {
        if !self.memory.over_pause() {
            return false;
        }
        if let Err(e) = self.memory.relieve(self.worker_index()) {
            self.fail(e.context("making room before starting a new root task"));
            return true;
        }
        if self.memory.over_pause() && self.any_running() {
            self.memory.note_paused();
            return true;
        }
        false
    }

    fn worker_index(&self) -> usize {
        self.runtime
            .upgrade()
            .and_then(|rt| super::pool::current_worker(&rt.pool))
            .unwrap_or(0)
    }

    /// True once after a memory pause lifted: sleeping workers should look for roots again.
    pub(crate) fn memory_unpaused(&self) -> bool {
        self.memory.take_unpaused()
    }

    /// Admits the next root if fewer than `root_limit` roots are running and memory allows.
    pub(crate) fn try_admit_root(&self) -> Option<u32> {
        if !self.has_pending_roots() || self.admission_paused() {
            return None;
        }
        let mut running = self.running_roots.load(Ordering::Relaxed);
        loop {
            if running >= self.root_limit {
                return None;
            }
            match self.running_roots.compare_exchange_weak(
                running,
                running + 1,
                Ordering::AcqRel,
                Ordering::Relaxed,
            ) {
                Ok(_) => break,
                Err(now) => running = now,
            }
        }
        let i = self.root_cursor.fetch_add(1, Ordering::AcqRel);
        if i < self.roots.len() {
            Some(self.roots[i])
        } else {
            self.running_roots.fetch_sub(1, Ordering::AcqRel);
            None
        }
    }

    /// Records the first error and stops the run.
    pub(crate) fn fail(&self, error: Error) {
        {
            let mut slot = self.error.lock();
            if slot.is_none() {
                *slot = Some(error);
            }
        }
        self.aborting.store(true, Ordering::SeqCst);
    }

    pub(crate) fn take_error(&self) -> Option<Error> {
        self.error.lock().take()
    }

    /// Releases the waiter once an aborting run has no running task.
    fn maybe_finish_abort(&self) {
        if self.aborting.load(Ordering::SeqCst)
            && self.running.iter().all(|r| r.load(Ordering::SeqCst) == 0)
        {
            self.latch.set();
        }
    }

    fn is_root(&self, task: u32) -> bool {
        self.plan.deps.row_len(task) == 0
    }

    fn end_root(&self, task: u32) {
        if self.is_root(task) {
            self.running_roots.fetch_sub(1, Ordering::AcqRel);
        }
    }

    /// The next root for a worker whose root just finished: the finished root's admission
    /// slot passes to the new one, so the running-roots count is untouched (two fewer atomic
    /// operations on a line every worker writes). Without a next root, the slot is released.
    pub(crate) fn transfer_root_slot(&self) -> Option<u32> {
        if !self.is_aborting() && !self.admission_paused() {
            let i = self.root_cursor.fetch_add(1, Ordering::AcqRel);
            if i < self.roots.len() {
                return Some(self.roots[i]);
            }
        }
        self.running_roots.fetch_sub(1, Ordering::AcqRel);
        None
    }

    /// Runs one task: reads inputs, calls the op (retrying as annotated), stores the result,
    /// releases inputs and reports newly ready consumers in `ctx.ready`.
    ///
    /// `admitted_root` says whether this task holds a root admission slot (roots started by
    /// the threads executor do; the sync executor does not use admission); with `keep_slot`
    /// a successful root keeps its slot for [`transfer_root_slot`](Self::transfer_root_slot).
    /// `held` says whether the resource gate already granted its units.
    pub(crate) fn execute<J>(
        self: &Arc<Self>,
        task: u32,
        held: bool,
        admitted_root: bool,
        keep_slot: bool,
        ctx: &mut ExecCtx<'_, J>,
        park: impl FnOnce() -> J,
    ) -> Outcome {
        let w = ctx.worker;
        let running = &self.running[w.min(self.running.len() - 1)];
        running.fetch_add(1, Ordering::SeqCst);
        // An op's own panic is caught around the op call and fails its task. This catches a
        // panic anywhere else on the task's path (storing, reading back, releasing: a bug in
        // brisk), so that the run fails with an error instead of losing a worker and leaving
        // the caller waiting for a task that never finishes.
        let outcome = match std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
            self.execute_inner(task, held, ctx, park)
        })) {
            Ok(outcome) => outcome,
            Err(payload) => {
                ctx.ready.clear();
                ctx.inputs.clear();
                let failure = Failure::from_panic(payload);
                self.fail(Error::internal(format!(
                    "the scheduler panicked while handling task {}: {}",
                    self.plan.keys[task as usize], failure.message
                )));
                Outcome::Failed
            }
        };
        let keeps = keep_slot && outcome == Outcome::Done && ctx.ready.is_empty();
        // A root parked for resources gives its slot back too (it comes back as a plain task),
        // or roots waiting for units could fill every slot and starve roots that need none.
        if admitted_root && !keeps {
            self.end_root(task);
        }
        running.fetch_sub(1, Ordering::SeqCst);
        // Whatever this task's outcome, it may have been the last one running in a run that
        // is stopping (a task that succeeds after another failed included).
        self.maybe_finish_abort();
        outcome
    }

    fn execute_inner<J>(
        self: &Arc<Self>,
        task: u32,
        held: bool,
        ctx: &mut ExecCtx<'_, J>,
        park: impl FnOnce() -> J,
    ) -> Outcome {
        let ti = task as usize;
        let needs = self
            .needs
            .as_ref()
            .map(|n| &n[ti])
            .filter(|n| !n.is_empty());
        if self.aborting.load(Ordering::SeqCst) || self.cancel.is_cancelled() {
            if self.cancel.is_cancelled() {
                self.fail(Error::new(ErrorKind::Cancelled));
            }
            // Units granted while this task was parked go back, or they would leak.
            if held {
                self.release_needs(needs, ctx);
            }
            return Outcome::Discarded;
        }
        if let (Some(needs), Some(gate), false) = (needs, ctx.gate, held) {
            if !gate.acquire_or_park(needs, self.priority(task), park) {
                return Outcome::Parked;
            }
        }

        // Inputs, in argument order. Clone first, then count ourselves out of each input's
        // readers; the last reader takes the store's reference (see module docs).
        let plan = &self.plan;
        ctx.inputs.clear();
        let mut unspilled = false;
        let mut any_spillable = false;
        let mut taken_bytes = 0usize;
        // An input whose only consumer is this task, passed once, is taken at once: nobody
        // else reads it, so there is no need to clone it first and count this task out.
        let passed_once = plan.unique_deps().row_len(task) == plan.deps.row_len(task);
        let sole_reader =
            |d: u32| passed_once && plan.dependents.row_len(d) == 1 && !plan.is_output[d as usize];
        for &d in plan.deps.row(task) {
            let read_at = self.has_hooks().then(Instant::now);
            let sole = sole_reader(d);
            let read = if sole {
                self.store.take_read(d)
            } else {
                self.store.fetch(d)
            };
            match read {
                Ok(Some((v, from_disk))) => {
                    if sole {
                        taken_bytes += v.bytes();
                    }
                    if from_disk {
                        unspilled = true;
                        if let Some(started) = read_at {
                            self.emit(&Event::Unspilled {
                                key: &plan.keys[d as usize],
                                bytes: v.bytes(),
                                worker: ctx.worker,
                                started,
                                finished: Instant::now(),
                            });
                        }
                    }
                    any_spillable |= v.codec().is_some();
                    ctx.inputs.push(v)
                }
                Err(e) => {
                    self.fail(e.context(format!(
                        "reading input {} of task {}",
                        plan.keys[d as usize], plan.keys[ti]
                    )));
                    ctx.inputs.clear();
                    self.store.uncount(taken_bytes);
                    self.release_needs(needs, ctx);
                    return Outcome::Failed;
                }
                Ok(None) => {
                    self.fail(Error::internal(format!(
                        "input {} of task {} is not in the store",
                        plan.keys[d as usize], plan.keys[ti]
                    )));
                    ctx.inputs.clear();
                    self.store.uncount(taken_bytes);
                    self.release_needs(needs, ctx);
                    return Outcome::Failed;
                }
            }
        }
        if any_spillable {
            // Only values that can spill have a next use to track.
            self.started[ti].store(true, Ordering::Relaxed);
        }
        for &d in plan.unique_deps().row(task) {
            if sole_reader(d) {
                continue; // taken above
            }
            let last_reader = plan.dependents.row_len(d) == 1
                || self.consumers_to_start[d as usize].fetch_sub(1, Ordering::AcqRel) == 1;
            if last_reader && !plan.is_output[d as usize] {
                // We already hold a reference (read above), so a spilled input is in memory
                // now and taking it cannot fail; an error here would be a store bug.
                if let Ok(Some(v)) = self.store.take(d) {
                    taken_bytes += v.bytes();
                }
            } else if any_spillable && self.store.pinned(d).is_some() {
                // Still wanted by others, and its next use just moved (this consumer started;
                // or it was read back from disk): queue it with its new key. It stays pinned
                // while this task runs; pinned entries wait in the queue.
                self.queue_victim(d);
            }
        }
        let input_bytes = self.input_bytes(&ctx.inputs);
        if input_bytes > self.memory.limit() {
            self.fail(self.too_large(task, input_bytes, None));
            ctx.inputs.clear();
            self.store.uncount(taken_bytes);
            self.release_needs(needs, ctx);
            return Outcome::Failed;
        }
        // The task's output and scratch space: about its inputs' size (pool module docs).
        // Small inputs reserve nothing: their working memory is noise next to any limit, and
        // the shared counter would cost every tiny task two contended atomic updates.
        let reservation =
            (input_bytes >= MIN_RESERVATION).then(|| self.memory.reserve(input_bytes as usize));
        let relieved = if reservation.is_some() || unspilled {
            self.memory.relieve(ctx.worker)
        } else {
            Ok(())
        };
        if let Err(e) = relieved {
            let what = if unspilled {
                "making room for the inputs of"
            } else {
                "making room to run"
            };
            self.fail(e.context(format!("{what} {}", plan.keys[ti])));
            ctx.inputs.clear();
            self.store.uncount(taken_bytes);
            self.release_needs(needs, ctx);
            return Outcome::Failed;
        }

        let key = &plan.keys[ti];
        let op = &plan.ops[ti];
        let retries = plan.annotations(TaskId(task)).map_or(0, |a| a.retries);
        let started = self.has_hooks().then(Instant::now);
        if let Some(at) = started {
            self.emit(&Event::TaskStarted {
                run: self.id,
                task: TaskId(task),
                key,
                op: op.name(),
                worker: ctx.worker,
                at,
            });
        }
        let mut attempt = 1u32;
        let result = loop {
            let tctx = TaskContext {
                key,
                attempt,
                worker: ctx.worker,
                cancel: &self.cancel,
                runtime: Some(&self.runtime),
            };
            let outcome = if attempt <= retries {
                // Keep the inputs for the next attempt: run on copies of the references.
                let mut copy = ctx.inputs.clone();
                self.run_op(op, &tctx, &mut copy, input_bytes)
            } else {
                self.run_op(op, &tctx, &mut ctx.inputs, input_bytes)
            };
            match outcome {
                Ok(v) => break Ok(v),
                // Not the op's failure: no retry would change it.
                Err(OpError::Stop(e)) => break Err(e),
                Err(OpError::Failed(failure)) => {
                    let will_retry = attempt <= retries && !failure.cancelled;
                    if let Some(started) = started {
                        self.emit(&Event::TaskFailed {
                            run: self.id,
                            task: TaskId(task),
                            key: failure.key.as_ref().unwrap_or(key),
                            op: failure.op.as_deref().unwrap_or(op.name()),
                            worker: ctx.worker,
                            started,
                            finished: Instant::now(),
                            message: &failure.message,
                            will_retry,
                        });
                    }
                    if !will_retry {
                        break Err(self.task_error(task, *failure, attempt));
                    }
                    attempt += 1;
                }
            }
        };
        ctx.inputs.clear();
        self.store.uncount(taken_bytes);
        drop(reservation);
        self.release_needs(needs, ctx);

        let value = match result {
            Ok(v) => v,
            Err(e) => {
                self.fail(e);
                return Outcome::Failed;
            }
        };
        if input_bytes + value.bytes() as u64 > self.memory.limit() {
            self.fail(self.too_large(task, input_bytes, Some(value.bytes() as u64)));
            return Outcome::Failed;
        }
        if let Some(started) = started {
            self.emit(&Event::TaskFinished {
                run: self.id,
                task: TaskId(task),
                key,
                op: op.name(),
                worker: ctx.worker,
                started,
                finished: Instant::now(),
                bytes: value.bytes(),
            });
        }
        let dependents = plan.dependents.row(task);
        if !dependents.is_empty() || plan.is_output[ti] {
            let spillable = value.codec().is_some();
            self.store.insert(task, value);
            if spillable {
                self.queue_victim(task);
            }
            if let Err(e) = self.memory.relieve(ctx.worker) {
                self.fail(e.context(format!("making room after storing {}", plan.keys[ti])));
                return Outcome::Failed;
            }
        } else {
            drop(value);
        }
        ctx.ready.clear();
        let udeps = plan.unique_deps();
        for &c in dependents {
            if udeps.row_len(c) == 1
                || self.remaining_deps[c as usize].fetch_sub(1, Ordering::AcqRel) == 1
            {
                ctx.ready.push(c);
            }
        }
        if dependents.is_empty() && self.remaining_sinks.fetch_sub(1, Ordering::AcqRel) == 1 {
            self.latch.set();
        }
        Outcome::Done
    }

    /// The smallest priority among `task`'s consumers that have not started (`u32::MAX`
    /// when none: an output, needed only at the end). Only asked of spillable values, whose
    /// consumers all set their `started` flag.
    fn next_use(&self, task: u32) -> u32 {
        self.plan
            .dependents
            .row(task)
            .iter()
            .filter(|&&c| !self.started[c as usize].load(Ordering::Relaxed))
            .map(|&c| self.priority(c))
            .min()
            .unwrap_or(u32::MAX)
    }

    fn queue_victim(&self, task: u32) {
        let bytes = self.store.bytes_in_memory(task);
        if bytes > 0 {
            self.victims.push(task, self.next_use(task), bytes);
        }
    }

    /// Bytes of distinct inputs (a value passed twice counts once).
    fn input_bytes(&self, inputs: &[Value]) -> u64 {
        let total: u64 = inputs.iter().map(|v| v.bytes() as u64).sum();
        if total <= self.memory.limit() || inputs.len() < 2 {
            return total;
        }
        // Only on the way to an error: worth an exact count.
        let mut seen: Vec<&Value> = Vec::with_capacity(inputs.len());
        for v in inputs {
            if !seen.iter().any(|s| s.same(v)) {
                seen.push(v);
            }
        }
        seen.iter().map(|v| v.bytes() as u64).sum()
    }

    fn too_large(&self, task: u32, inputs: u64, output: Option<u64>) -> Error {
        Error::new(ErrorKind::TaskTooLarge {
            key: self.plan.keys[task as usize].to_string(),
            bytes: inputs + output.unwrap_or(0),
            inputs,
            output,
            limit: self.memory.limit(),
        })
    }

    fn release_needs<J>(&self, needs: Option<&Needs>, ctx: &mut ExecCtx<'_, J>) {
        if let (Some(needs), Some(gate)) = (needs, ctx.gate) {
            gate.release(needs, &mut ctx.woken);
        }
    }

    fn task_error(&self, task: u32, failure: Failure, attempts: u32) -> Error {
        if failure.cancelled {
            return Error::new(ErrorKind::Cancelled);
        }
        let plan = &self.plan;
        let key = failure
            .key
            .unwrap_or_else(|| plan.keys[task as usize].clone());
        let op = failure
            .op
            .unwrap_or_else(|| plan.ops[task as usize].name().to_string());
        let consumers = plan
            .dependents
            .row(task)
            .iter()
            .take(5)
            .map(|&c| plan.keys[c as usize].to_string())
            .collect();
        Error::new(ErrorKind::TaskFailed {
            key: key.to_string(),
            op,
            message: failure.message,
            panicked: failure.panicked,
            attempts,
            consumers,
            source: failure.source,
        })
    }

    /// Results of the requested outputs, in the order requested. They leave the store (and
    /// its byte count), so the caller holds the only references.
    pub(crate) fn collect_outputs(&self) -> Result<Vec<Value>> {
        let mut out = Vec::with_capacity(self.plan.outputs.len());
        for o in &self.plan.outputs {
            match self.store.get(o.0) {
                Ok(Some(v)) => out.push(v),
                Err(e) => {
                    return Err(e.context(format!("reading output {}", self.plan.keys[o.index()])))
                }
                Ok(None) => {
                    return Err(Error::internal(format!(
                        "output {} missing after the run",
                        self.plan.keys[o.index()]
                    )))
                }
            }
        }
        for o in &self.plan.outputs {
            self.store.release(o.0);
        }
        Ok(out)
    }
}

fn resolve_needs<J>(plan: &Plan, gate: Option<&ResourceGate<J>>) -> Result<Option<Box<[Needs]>>> {
    if !plan
        .annotations
        .iter()
        .any(|a| a.as_ref().is_some_and(|a| !a.resources.is_empty()))
    {
        return Ok(None);
    }
    let mut all = Vec::with_capacity(plan.len());
    for (i, a) in plan.annotations.iter().enumerate() {
        let mut needs = Needs::new();
        for (name, units) in a.iter().flat_map(|a| a.resources.iter()) {
            let found = gate.and_then(|g| g.lookup(name));
            match found {
                Some((idx, cap)) if *units <= cap => needs.push((idx, *units)),
                _ => {
                    return Err(Error::new(ErrorKind::ResourceUnavailable {
                        key: plan.keys[i].to_string(),
                        resource: name.to_string(),
                        needed: *units,
                        capacity: found.map_or(0, |f| f.1),
                    }))
                }
            }
        }
        all.push(needs);
    }
    Ok(Some(all.into()))
}

/// A failed op call: the message, and for fused chains the member that failed.
pub(crate) struct Failure {
    key: Option<Key>,
    op: Option<String>,
    message: String,
    panicked: bool,
    cancelled: bool,
    source: Option<Arc<dyn std::error::Error + Send + Sync>>,
}

impl Failure {
    fn from_error(err: Error) -> Failure {
        let cancelled = err.is_cancelled();
        match err.into_kind() {
            ErrorKind::TaskFailed {
                message, source, ..
            } => Failure {
                key: None,
                op: None,
                message,
                panicked: false,
                cancelled,
                source,
            },
            other => {
                let message = other.to_string();
                Failure {
                    key: None,
                    op: None,
                    message,
                    panicked: false,
                    cancelled,
                    source: Some(Arc::new(Error::new(other))),
                }
            }
        }
    }

    fn from_panic(payload: Box<dyn std::any::Any + Send>) -> Failure {
        let message = crate::error::panic_message(&*payload);
        Failure {
            key: None,
            op: None,
            message,
            panicked: true,
            cancelled: false,
            source: None,
        }
    }
}

/// `n` atomic counters at zero. Allocated zeroed, so a fresh process gets the pages from the OS
/// already zero and touches only those it writes.
fn zeroed_u32s(n: usize) -> Box<[AtomicU32]> {
    const _: () = assert!(std::mem::align_of::<AtomicU32>() == std::mem::align_of::<u32>());
    let zeros = vec![0u32; n].into_boxed_slice();
    // SAFETY: `AtomicU32` has the size and bit validity of `u32` and (asserted above) its
    // alignment, so the allocation holds `n` valid zero counters with the layout it had.
    unsafe { Box::from_raw(Box::into_raw(zeros) as *mut [AtomicU32]) }
}

/// `n` flags at false, allocated zeroed (see [`zeroed_u32s`]).
fn zeroed_bools(n: usize) -> Box<[AtomicBool]> {
    const _: () = assert!(std::mem::align_of::<AtomicBool>() == std::mem::align_of::<bool>());
    let zeros = vec![false; n].into_boxed_slice();
    // SAFETY: `AtomicBool` has the size, alignment (asserted) and bit validity of `bool`.
    unsafe { Box::from_raw(Box::into_raw(zeros) as *mut [AtomicBool]) }
}

/// Why an op call gave no value.
enum OpError {
    /// The op failed (returned an error or panicked): retried as annotated.
    Failed(Box<Failure>),
    /// The run must stop with this error (a fused member's result over the memory limit).
    Stop(Error),
}

/// Calls a single op (not a chain), catching panics.
fn call_op(op: &Op, ctx: &TaskContext<'_>, inputs: &mut [Value]) -> Result<Value, Box<Failure>> {
    if let Some(v) = op.literal_value() {
        return Ok(v.clone());
    }
    let Some(f) = op.body() else {
        return Err(Box::new(Failure::from_error(Error::internal(
            "a fused chain nested in a fused chain",
        ))));
    };
    match std::panic::catch_unwind(AssertUnwindSafe(|| f(ctx, inputs))) {
        Ok(Ok(v)) => Ok(v),
        Ok(Err(e)) => Err(Box::new(Failure::from_error(e))),
        Err(p) => Err(Box::new(Failure::from_panic(p))),
    }
}

impl RunState {
    /// Calls an op; a fused chain runs member by member and reports the member that failed.
    ///
    /// Each member's result is what that member would have stored unfused, so it is counted
    /// and checked the same way: its input (the task's inputs, `input_bytes`, for the first
    /// member; the previous member's result after that) plus its result above the limit is
    /// `TaskTooLarge` naming the member, and it stays counted until the next member is done
    /// with it. Results of `()` are zero bytes: the unit chains of the overhead bench pay
    /// one comparison per member.
    fn run_op(
        &self,
        op: &Op,
        ctx: &TaskContext<'_>,
        inputs: &mut [Value],
        input_bytes: u64,
    ) -> Result<Value, OpError> {
        let Some(steps) = op.fused_steps() else {
            return call_op(op, ctx, inputs).map_err(OpError::Failed);
        };
        let account = self.memory.account();
        let limit = self.memory.limit();
        let mut value: Option<Value> = None;
        // Bytes of `value`, counted in the account while it is held between members.
        let mut held = 0usize;
        let mut step_input = input_bytes;
        for (i, step) in steps.iter().enumerate() {
            let sctx = ctx.with_key(&step.key);
            let result = match value.take() {
                None => call_op(&step.op, &sctx, inputs),
                Some(v) => call_op(&step.op, &sctx, &mut [v]),
            };
            account.sub(held);
            held = 0;
            let v = match result {
                Ok(v) => v,
                Err(mut f) => {
                    f.key.get_or_insert_with(|| step.key.clone());
                    f.op.get_or_insert_with(|| step.op.name().to_string());
                    return Err(OpError::Failed(f));
                }
            };
            let bytes = v.bytes();
            if bytes > 0 {
                if step_input + bytes as u64 > limit {
                    return Err(OpError::Stop(Error::new(ErrorKind::TaskTooLarge {
                        key: step.key.to_string(),
                        bytes: step_input + bytes as u64,
                        inputs: step_input,
                        output: Some(bytes as u64),
                        limit,
                    })));
                }
                // The last member's result is the task's: the store counts it.
                if i + 1 < steps.len() {
                    account.add(bytes);
                    held = bytes;
                    self.memory.relieve(ctx.worker).map_err(|e| {
                        account.sub(held);
                        OpError::Stop(e.context(format!("making room after {}", step.key)))
                    })?;
                }
            }
            step_input = bytes as u64;
            value = Some(v);
        }
        account.sub(held);
        value.ok_or_else(|| {
            OpError::Failed(Box::new(Failure::from_error(Error::internal(
                "empty fused chain",
            ))))
        })
    }
}

impl SpillSource for RunState {
    fn spill_one(&self, dir: &SpillDir, worker: usize) -> Result<Option<usize>> {
        let Some((task, _)) = self.victims.pop(|t| match self.store.pinned(t) {
            None => Recheck::Gone,
            Some(true) => Recheck::Pinned,
            Some(false) => Recheck::NextUse(self.next_use(t)),
        }) else {
            return Ok(None);
        };
        let key = &self.plan.keys[task as usize];
        let started = Instant::now();
        let spilled = self
            .store
            .spill(task, dir, &key.to_string())
            .map_err(|e| e.context(format!("spilling {key} to {}", dir.path().display())))?;
        let Some((bytes, disk_bytes)) = spilled else {
            // A reader came while it was being written: still a candidate once it is done.
            if self.store.pinned(task).is_some() {
                self.queue_victim(task);
            }
            return Ok(Some(0));
        };
        if self.has_hooks() {
            self.emit(&Event::Spilled {
                key,
                bytes,
                disk_bytes: disk_bytes as usize,
                worker,
                started,
                finished: Instant::now(),
            });
        }
        Ok(Some(bytes))
    }
}
