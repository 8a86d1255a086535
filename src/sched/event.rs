//! Events the executors emit, and the hook that receives them.
//!
//! An [`EventHook`] sees every task start, finish and failure, with the worker that ran it and
//! when. The progress bar, the Chrome trace and user diagnostics are all hooks. Hooks run inline
//! on worker threads, so they must be quick; when no hook is installed the executors skip the
//! clock reads entirely, so an unused hook costs nothing on the hot path.

use std::time::Instant;

use crate::graph::{Key, TaskId};

/// Something that happened during a computation.
#[derive(Debug, Clone)]
#[non_exhaustive]
pub enum Event<'a> {
    /// A computation began with `tasks` tasks on `workers` workers.
    RunStarted {
        /// Identifies the computation among concurrent ones.
        run: u64,
        /// Number of tasks in the (culled, fused) graph.
        tasks: usize,
        /// Number of worker threads.
        workers: usize,
        /// When.
        at: Instant,
    },
    /// A task began running.
    TaskStarted {
        /// The computation.
        run: u64,
        /// Dense id within the computation's graph.
        task: TaskId,
        /// The task's key.
        key: &'a Key,
        /// Name of the op.
        op: &'a str,
        /// Index of the worker thread (0 for the sync executor).
        worker: usize,
        /// When.
        at: Instant,
    },
    /// A task finished successfully.
    TaskFinished {
        /// The computation.
        run: u64,
        /// Dense id.
        task: TaskId,
        /// The task's key.
        key: &'a Key,
        /// Name of the op.
        op: &'a str,
        /// Worker index.
        worker: usize,
        /// When it started.
        started: Instant,
        /// When it finished.
        finished: Instant,
        /// Bytes of the result it produced.
        bytes: usize,
    },
    /// A task attempt failed (it may be retried; see `will_retry`).
    TaskFailed {
        /// The computation.
        run: u64,
        /// Dense id.
        task: TaskId,
        /// The task's key.
        key: &'a Key,
        /// Name of the op.
        op: &'a str,
        /// Worker index.
        worker: usize,
        /// When it started.
        started: Instant,
        /// When it failed.
        finished: Instant,
        /// The error or panic message.
        message: &'a str,
        /// Whether the task will be run again.
        will_retry: bool,
    },
    /// The store moved a value to disk.
    Spilled {
        /// The value's key.
        key: &'a Key,
        /// Bytes in memory before spilling.
        bytes: usize,
        /// Bytes written to disk.
        disk_bytes: usize,
        /// Worker index that did the I/O.
        worker: usize,
        /// When the write began.
        started: Instant,
        /// When it ended.
        finished: Instant,
    },
    /// The store read a value back from disk.
    Unspilled {
        /// The value's key.
        key: &'a Key,
        /// Bytes in memory after reading.
        bytes: usize,
        /// Worker index that did the I/O.
        worker: usize,
        /// When the read began.
        started: Instant,
        /// When it ended.
        finished: Instant,
    },
    /// A computation ended.
    RunFinished {
        /// The computation.
        run: u64,
        /// When.
        at: Instant,
        /// Whether it succeeded.
        ok: bool,
    },
}

/// Receives [`Event`]s. Called on worker threads: keep it short and non-blocking.
pub trait EventHook: Send + Sync {
    /// Called once per event.
    fn on_event(&self, event: &Event<'_>);
}

impl<F> EventHook for F
where
    F: Fn(&Event<'_>) + Send + Sync,
{
    fn on_event(&self, event: &Event<'_>) {
        self(event)
    }
}
