//! What a running task can see of its surroundings.

use std::sync::Weak;

use super::{CancelToken, Runtime, RuntimeInner};
use crate::error::{Error, ErrorKind, Result};
use crate::graph::Key;

/// Passed to every op: the task's key, its attempt number, the worker running it, the
/// cancellation flag, and the runtime (to submit nested work).
pub struct TaskContext<'a> {
    pub(crate) key: &'a Key,
    pub(crate) attempt: u32,
    pub(crate) worker: usize,
    pub(crate) cancel: &'a CancelToken,
    pub(crate) runtime: Option<&'a Weak<RuntimeInner>>,
}

impl<'a> TaskContext<'a> {
    /// A context for calling an op outside a runtime (tests, tools).
    pub fn detached(key: &'a Key, cancel: &'a CancelToken) -> Self {
        TaskContext {
            key,
            attempt: 1,
            worker: 0,
            cancel,
            runtime: None,
        }
    }

    /// The key of the running task (for a fused chain, of the member running now).
    pub fn key(&self) -> &Key {
        self.key
    }

    /// 1 on the first run, 2 on the first retry, and so on.
    pub fn attempt(&self) -> u32 {
        self.attempt
    }

    /// Index of the worker thread running the task.
    pub fn worker(&self) -> usize {
        self.worker
    }

    /// True when the computation was cancelled; long tasks should poll this and stop.
    pub fn is_cancelled(&self) -> bool {
        self.cancel.is_cancelled()
    }

    /// `Err(Cancelled)` when the computation was cancelled.
    pub fn check_cancelled(&self) -> Result<()> {
        if self.is_cancelled() {
            Err(Error::new(ErrorKind::Cancelled))
        } else {
            Ok(())
        }
    }

    /// The runtime running this task, to submit or compute nested work.
    pub fn runtime(&self) -> Option<Runtime> {
        self.runtime
            .and_then(Weak::upgrade)
            .map(|inner| Runtime { inner })
    }

    pub(crate) fn with_key<'b>(&'b self, key: &'b Key) -> TaskContext<'b> {
        TaskContext {
            key,
            attempt: self.attempt,
            worker: self.worker,
            cancel: self.cancel,
            runtime: self.runtime,
        }
    }
}
