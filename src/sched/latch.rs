//! A one-shot signal a thread can block on.

use parking_lot::{Condvar, Mutex};

/// Set once; [`wait`](Latch::wait) returns after it is set.
#[derive(Default)]
pub(crate) struct Latch {
    set: Mutex<bool>,
    cond: Condvar,
}

impl Latch {
    pub(crate) fn new() -> Self {
        Self::default()
    }

    pub(crate) fn set(&self) {
        // Set under the lock: a waiter cannot check the flag, miss the change and then sleep
        // through the notification.
        let mut set = self.set.lock();
        *set = true;
        self.cond.notify_all();
    }

    pub(crate) fn wait(&self) {
        let mut set = self.set.lock();
        while !*set {
            self.cond.wait(&mut set);
        }
    }
}
