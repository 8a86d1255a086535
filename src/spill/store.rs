//! The store of task results for one computation, and the runtime-wide byte account.
//!
//! Every result a task produces goes into its slot here and is counted in the runtime's
//! [`MemoryAccount`]; it leaves when its last consumer is done with it. Consumers read by
//! cloning (a reference-count increment); the last consumer takes the store's reference so
//! that it holds the only one and can reuse the buffer. Bytes of a taken value stay counted
//! until the task holding it finishes.

use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::Arc;

use parking_lot::Mutex;

use crate::graph::Value;

/// Bytes held by a runtime's stores, now and at the peak.
#[derive(Debug, Default)]
pub struct MemoryAccount {
    current: AtomicUsize,
    peak: AtomicUsize,
    spilled_bytes: AtomicU64,
    spill_count: AtomicU64,
    unspill_count: AtomicU64,
}

/// A snapshot of a runtime's memory use.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct MemoryStats {
    /// Bytes of results held in memory now.
    pub current_bytes: usize,
    /// The most bytes held at once since the runtime started (or since `reset_peak`).
    pub peak_bytes: usize,
    /// Bytes written to spill files in total.
    pub spilled_bytes: u64,
    /// Values spilled.
    pub spill_count: u64,
    /// Values read back from disk.
    pub unspill_count: u64,
}

impl MemoryAccount {
    #[inline]
    pub(crate) fn add(&self, bytes: usize) {
        if bytes == 0 {
            return;
        }
        let now = self.current.fetch_add(bytes, Ordering::Relaxed) + bytes;
        self.peak.fetch_max(now, Ordering::Relaxed);
    }

    #[inline]
    pub(crate) fn sub(&self, bytes: usize) {
        if bytes != 0 {
            self.current.fetch_sub(bytes, Ordering::Relaxed);
        }
    }

    /// The current numbers.
    pub fn stats(&self) -> MemoryStats {
        MemoryStats {
            current_bytes: self.current.load(Ordering::Relaxed),
            peak_bytes: self.peak.load(Ordering::Relaxed),
            spilled_bytes: self.spilled_bytes.load(Ordering::Relaxed),
            spill_count: self.spill_count.load(Ordering::Relaxed),
            unspill_count: self.unspill_count.load(Ordering::Relaxed),
        }
    }

    /// Starts a new peak measurement from the current level.
    pub fn reset_peak(&self) {
        self.peak
            .store(self.current.load(Ordering::Relaxed), Ordering::Relaxed);
    }
}

/// Result slots of one computation, indexed by task id.
pub(crate) struct Store {
    slots: Box<[Mutex<Option<Value>>]>,
    account: Arc<MemoryAccount>,
}

impl Store {
    pub(crate) fn new(tasks: usize, account: Arc<MemoryAccount>) -> Self {
        Store {
            slots: (0..tasks).map(|_| Mutex::new(None)).collect(),
            account,
        }
    }

    /// Stores a task's result and counts its bytes.
    pub(crate) fn insert(&self, task: u32, value: Value) {
        self.account.add(value.bytes());
        let old = self.slots[task as usize].lock().replace(value);
        if let Some(old) = old {
            self.account.sub(old.bytes());
        }
    }

    /// A shared reference to a stored result.
    pub(crate) fn get(&self, task: u32) -> Option<Value> {
        self.slots[task as usize].lock().clone()
    }

    /// Removes a result without uncounting it: the caller holds it and calls
    /// [`uncount`](Self::uncount) when done.
    pub(crate) fn take(&self, task: u32) -> Option<Value> {
        self.slots[task as usize].lock().take()
    }

    /// Drops a result and uncounts it.
    pub(crate) fn release(&self, task: u32) {
        if let Some(v) = self.slots[task as usize].lock().take() {
            self.account.sub(v.bytes());
        }
    }

    pub(crate) fn uncount(&self, bytes: usize) {
        self.account.sub(bytes);
    }

    /// Drops everything still stored (after a failure or at the end).
    pub(crate) fn clear(&self) {
        for slot in self.slots.iter() {
            if let Some(v) = slot.lock().take() {
                self.account.sub(v.bytes());
            }
        }
    }
}

impl Drop for Store {
    fn drop(&mut self) {
        // Exclusive access: no locking needed, and after a successful run nothing is left.
        for slot in self.slots.iter_mut() {
            if let Some(v) = slot.get_mut().take() {
                self.account.sub(v.bytes());
            }
        }
    }
}
