//! A one-shot signal a thread can block on.

use std::sync::atomic::{AtomicBool, Ordering};

use parking_lot::{Condvar, Mutex};

/// Set once; [`wait`](Latch::wait) returns after it is set.
#[derive(Default)]
pub(crate) struct Latch {
    set: AtomicBool,
    lock: Mutex<()>,
    cond: Condvar,
    /// Also wakes pool threads that wait by helping (they sleep on the pool, not here).
    waker: Option<Box<dyn Fn() + Send + Sync>>,
}

impl Latch {
    pub(crate) fn new() -> Self {
        Self::default()
    }

    pub(crate) fn with_waker(waker: impl Fn() + Send + Sync + 'static) -> Self {
        Latch {
            waker: Some(Box::new(waker)),
            ..Self::default()
        }
    }

    #[inline]
    pub(crate) fn is_set(&self) -> bool {
        self.set.load(Ordering::Acquire)
    }

    pub(crate) fn set(&self) {
        // Hold the lock while setting so a waiter cannot check the flag, miss the change and
        // then sleep through the notification.
        {
            let _guard = self.lock.lock();
            self.set.store(true, Ordering::Release);
            self.cond.notify_all();
        }
        if let Some(wake) = &self.waker {
            wake();
        }
    }

    pub(crate) fn wait(&self) {
        let mut guard = self.lock.lock();
        while !self.set.load(Ordering::Acquire) {
            self.cond.wait(&mut guard);
        }
    }
}
