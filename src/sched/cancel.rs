//! Cooperative cancellation.
//!
//! A [`CancelToken`] is shared by a computation and whoever may cancel it. Cancelling sets a
//! flag that tasks can poll ([`TaskContext::is_cancelled`](super::TaskContext::is_cancelled))
//! and wakes the thread waiting for the computation, which then returns
//! [`ErrorKind::Cancelled`](crate::ErrorKind::Cancelled) without waiting for running tasks.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Weak};

use parking_lot::Mutex;

use super::latch::Latch;

/// A handle to cancel a computation from another thread.
///
/// ```
/// let token = brisk::CancelToken::new();
/// let other = token.clone();
/// other.cancel();
/// assert!(token.is_cancelled());
/// ```
#[derive(Clone, Default)]
pub struct CancelToken {
    inner: Arc<Inner>,
}

#[derive(Default)]
struct Inner {
    cancelled: AtomicBool,
    waiters: Mutex<Vec<Weak<Latch>>>,
}

impl CancelToken {
    /// A fresh, not cancelled token.
    pub fn new() -> Self {
        Self::default()
    }

    /// Cancels: running tasks see the flag, nothing new starts, the waiting compute returns.
    pub fn cancel(&self) {
        self.inner.cancelled.store(true, Ordering::SeqCst);
        let waiters = std::mem::take(&mut *self.inner.waiters.lock());
        for latch in waiters.iter().filter_map(Weak::upgrade) {
            latch.set();
        }
    }

    /// True once [`cancel`](Self::cancel) was called.
    #[inline]
    pub fn is_cancelled(&self) -> bool {
        self.inner.cancelled.load(Ordering::Relaxed)
    }

    /// Wakes `latch` when cancelled (immediately if already cancelled).
    pub(crate) fn wake_on_cancel(&self, latch: &Arc<Latch>) {
        let mut waiters = self.inner.waiters.lock();
        if self.inner.cancelled.load(Ordering::SeqCst) {
            drop(waiters);
            latch.set();
            return;
        }
        waiters.retain(|w| w.strong_count() > 0);
        waiters.push(Arc::downgrade(latch));
    }
}

impl std::fmt::Debug for CancelToken {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "CancelToken(cancelled: {})", self.is_cancelled())
    }
}
