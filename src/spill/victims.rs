//! Which stored value to spill next: the one needed furthest in the future (Belady's rule).
//!
//! The static order gives every task a priority (its rank: lower runs sooner). A stored
//! value's **next use** is the smallest priority among its consumers that have not started;
//! the value whose next use is largest is the best victim, and among equals the largest (one
//! write frees the most). Outputs nobody consumes have next use `u32::MAX`: they are needed
//! only when the computation ends.
//!
//! Keys change as consumers start (a value's next use only grows). Rather than finding and
//! updating an entry inside the heap, the caller pushes a fresh entry whenever a value's next
//! use may have changed (when one of its consumers starts) and the old entry goes stale. When
//! an entry is popped the caller re-checks it: if its key is still the value's next use it is
//! the true maximum (every live value has an entry with its current key, and no key in the
//! heap overstates one); a stale entry (smaller key) is dropped, since a fresh one exists;
//! entries of values that left memory are dropped too; entries of values a running task
//! reads (pinned) are skipped this time and kept.

use std::collections::BinaryHeap;

use parking_lot::Mutex;

/// A candidate for spilling.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
struct Entry {
    // Field order is the heap order: furthest next use first, then most bytes.
    next_use: u32,
    bytes: usize,
    task: u32,
}

/// What the store says about a popped candidate.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Recheck {
    /// No longer in memory (released, taken, spilled): forget it.
    Gone,
    /// In memory but read by a running task right now: skip it this round, keep it queued.
    Pinned,
    /// In memory and spillable; its next use is this.
    NextUse(u32),
}

/// A lazy max-queue of spill candidates of one computation.
#[derive(Default)]
pub(crate) struct VictimQueue {
    heap: Mutex<BinaryHeap<Entry>>,
}

impl VictimQueue {
    /// Queues a value that just entered memory.
    pub(crate) fn push(&self, task: u32, next_use: u32, bytes: usize) {
        self.heap.lock().push(Entry {
            next_use,
            bytes,
            task,
        });
    }

    /// The best victim: pops entries, re-checking each with `recheck`, until one's key is
    /// current. Pinned candidates are put back before returning. `None` when nothing can be
    /// spilled now.
    pub(crate) fn pop(&self, mut recheck: impl FnMut(u32) -> Recheck) -> Option<(u32, u32)> {
        let mut heap = self.heap.lock();
        let mut pinned = Vec::new();
        let found = loop {
            let Some(e) = heap.pop() else { break None };
            match recheck(e.task) {
                Recheck::Gone => {}
                Recheck::Pinned => pinned.push(e),
                Recheck::NextUse(n) if n == e.next_use => break Some((e.task, n)),
                // Stale: a fresher entry was pushed when the key changed.
                Recheck::NextUse(_) => {}
            }
        };
        heap.extend(pinned);
        found
    }

    /// Queued entries (stale ones included).
    #[cfg(test)]
    pub(crate) fn len(&self) -> usize {
        self.heap.lock().len()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn furthest_next_use_first_then_largest() {
        let q = VictimQueue::default();
        q.push(0, 10, 100);
        q.push(1, 50, 10);
        q.push(2, 50, 20);
        q.push(3, 5, 1000);
        let uses = [10, 50, 50, 5];
        let mut order = Vec::new();
        while let Some((t, _)) = q.pop(|t| Recheck::NextUse(uses[t as usize])) {
            order.push(t);
        }
        assert_eq!(order, vec![2, 1, 0, 3]);
    }

    #[test]
    fn stale_entries_are_dropped_and_gone_or_pinned_entries_skipped() {
        let q = VictimQueue::default();
        q.push(0, 10, 100); // its consumer at 10 started...
        q.push(0, 90, 100); // ...so it was pushed again with its next use, 90
        q.push(1, 60, 100);
        q.push(2, 80, 100); // released meanwhile
        q.push(3, 70, 100); // pinned by a running task
        let now = |t: u32| match t {
            0 => Recheck::NextUse(90),
            1 => Recheck::NextUse(60),
            2 => Recheck::Gone,
            _ => Recheck::Pinned,
        };
        assert_eq!(q.pop(now), Some((0, 90)));
        assert_eq!(q.pop(now), Some((1, 60)));
        // Left: the stale (0, 10) and the pinned 3; the stale one is dropped on the way.
        assert_eq!(q.pop(now), None);
        assert_eq!(q.len(), 1, "the pinned one stays queued for a later round");
        assert_eq!(q.pop(|_| Recheck::NextUse(70)), Some((3, 70)));
    }
}
