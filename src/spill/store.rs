//! The store of task results for one computation, and the runtime-wide byte account.
//!
//! Every result a task produces goes into its slot here and is counted in the runtime's
//! [`MemoryAccount`]; it leaves when its last consumer is done with it. Consumers read by
//! cloning (a reference-count increment); the last consumer takes the store's reference so
//! that it holds the only one and can reuse the buffer. Bytes of a taken value stay counted
//! until the task holding it finishes.
//!
//! A slot holds its value in memory or **on disk**. [`Store::spill`] writes a spillable value
//! (one that carries a [`Codec`](crate::spill::codec::Codec)) to a spill file and uncounts it —
//! but only when the store holds the *only* reference: a value a running task still reads is
//! pinned by that reference, and spilling it would free nothing. The encoding and the write
//! happen outside the slot's lock (a reader is not held up by a write); the slot changes to
//! on-disk only if nobody took a reference meanwhile, otherwise the new file is dropped.
//! Reading a slot on disk reads the file back (memory-mapped) and keeps the value in memory
//! again; releasing it deletes the file without reading it.

use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::Arc;

use parking_lot::Mutex;

use crate::error::{Error, Result};
use crate::graph::Value;
use crate::spill::codec::Codec;
use crate::spill::disk::{SpillDir, SpillFile};

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
    /// The runtime's memory limit in bytes.
    pub limit: u64,
    /// Bytes of spill files on disk now.
    pub disk_bytes: u64,
    /// The most bytes of spill files on disk at once.
    pub peak_disk_bytes: u64,
    /// The most bytes held at once since the runtime started (or since `reset_peak`).
    pub peak_bytes: usize,
    /// Bytes written to spill files in total (after compression).
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

    /// Bytes counted now.
    #[inline]
    pub fn current(&self) -> usize {
        self.current.load(Ordering::Relaxed)
    }

    /// The current numbers (without the limit and disk figures, which the runtime adds).
    pub fn stats(&self) -> MemoryStats {
        MemoryStats {
            current_bytes: self.current.load(Ordering::Relaxed),
            limit: 0,
            disk_bytes: 0,
            peak_disk_bytes: 0,
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

/// One result: nothing yet (or released), in memory, or in a spill file.
///
/// `repr(u8)` with `Empty = 0`: an all-zero slot is empty (see [`empty_slots`]).
#[repr(u8)]
enum Slot {
    Empty = 0,
    Mem(Value),
    /// Boxed so that slots stay small: most never go to disk.
    Disk(Box<OnDisk>),
}

struct OnDisk {
    file: SpillFile,
    codec: Codec,
}

impl MemoryAccount {
    fn spilled(&self, disk_bytes: u64) {
        self.spilled_bytes.fetch_add(disk_bytes, Ordering::Relaxed);
        self.spill_count.fetch_add(1, Ordering::Relaxed);
    }

    fn unspilled(&self) {
        self.unspill_count.fetch_add(1, Ordering::Relaxed);
    }
}

/// Result slots of one computation, indexed by task id.
pub(crate) struct Store {
    slots: Box<[Mutex<Slot>]>,
    account: Arc<MemoryAccount>,
}

// A slot per task of every computation: four words, lock included.
const _: () = assert!(std::mem::size_of::<Mutex<Slot>>() <= 32);

/// `n` empty, unlocked slots, allocated zeroed rather than written: a fresh process gets the
/// pages zero from the OS, and each is first touched by the worker that stores a result there
/// (in parallel, and not twice).
fn empty_slots(n: usize) -> Box<[Mutex<Slot>]> {
    let layout = match std::alloc::Layout::array::<Mutex<Slot>>(n) {
        Ok(layout) if layout.size() > 0 => layout,
        _ => return (0..n).map(|_| Mutex::new(Slot::Empty)).collect(),
    };
    // SAFETY: the layout has a non-zero size. An all-zero `Mutex<Slot>` is
    // `Mutex::new(Slot::Empty)`: parking_lot's raw mutex is one state byte whose zero is
    // `RawMutex::INIT` (unlocked, nobody parked), and `Slot` is `repr(u8)` with `Empty = 0` and
    // no payload. The box is freed with the same layout (that of `[Mutex<Slot>; n]`).
    unsafe {
        let ptr = std::alloc::alloc_zeroed(layout).cast::<Mutex<Slot>>();
        if ptr.is_null() {
            std::alloc::handle_alloc_error(layout);
        }
        Box::from_raw(std::ptr::slice_from_raw_parts_mut(ptr, n))
    }
}

impl Store {
    pub(crate) fn new(tasks: usize, account: Arc<MemoryAccount>) -> Self {
        Store {
            slots: empty_slots(tasks),
            account,
        }
    }

    /// Stores a task's result and counts its bytes.
    pub(crate) fn insert(&self, task: u32, value: Value) {
        self.account.add(value.bytes());
        let old = std::mem::replace(&mut *self.slots[task as usize].lock(), Slot::Mem(value));
        if let Slot::Mem(old) = old {
            self.account.sub(old.bytes());
        }
    }

    /// A shared reference to a stored result, read back from disk if it was spilled.
    ///
    /// # Errors
    /// The spill file cannot be read or does not decode (I/O error, corruption).
    pub(crate) fn get(&self, task: u32) -> Result<Option<Value>> {
        Ok(self.fetch(task)?.map(|(v, _)| v))
    }

    /// [`get`](Self::get), also saying whether the value was read back from disk.
    pub(crate) fn fetch(&self, task: u32) -> Result<Option<(Value, bool)>> {
        let mut slot = self.slots[task as usize].lock();
        match &*slot {
            Slot::Empty => Ok(None),
            Slot::Mem(v) => Ok(Some((v.clone(), false))),
            Slot::Disk(_) => {
                let value = self.read_back(&slot)?;
                *slot = Slot::Mem(value.clone());
                Ok(Some((value, true)))
            }
        }
    }

    /// Bytes of a result held in memory (0 when not in memory).
    pub(crate) fn bytes_in_memory(&self, task: u32) -> usize {
        match &*self.slots[task as usize].lock() {
            Slot::Mem(v) => v.bytes(),
            _ => 0,
        }
    }

    /// Whether a result could be spilled now: `None` when it is not in memory or has no
    /// codec, `Some(true)` when a running task holds a reference (pinned).
    pub(crate) fn pinned(&self, task: u32) -> Option<bool> {
        match &*self.slots[task as usize].lock() {
            Slot::Mem(v) if v.codec().is_some() => Some(v.ref_count() > 1),
            _ => None,
        }
    }

    /// Removes a result without uncounting it: the caller holds it and calls
    /// [`uncount`](Self::uncount) when done. A spilled result is read back (and counted).
    pub(crate) fn take(&self, task: u32) -> Result<Option<Value>> {
        Ok(self.take_read(task)?.map(|(v, _)| v))
    }

    /// [`take`](Self::take), also saying whether the value was read back from disk.
    pub(crate) fn take_read(&self, task: u32) -> Result<Option<(Value, bool)>> {
        let mut slot = self.slots[task as usize].lock();
        match std::mem::replace(&mut *slot, Slot::Empty) {
            Slot::Empty => Ok(None),
            Slot::Mem(v) => Ok(Some((v, false))),
            disk @ Slot::Disk(_) => {
                let value = self.read_back(&disk);
                // On failure the file stays where it was, so nothing is lost.
                if value.is_err() {
                    *slot = disk;
                }
                value.map(|v| Some((v, true)))
            }
        }
    }

    fn read_back(&self, slot: &Slot) -> Result<Value> {
        let Slot::Disk(d) = slot else {
            return Err(Error::internal("read_back of a slot not on disk"));
        };
        let bytes = d.file.read()?;
        let value = d.codec.decode(&bytes)?;
        self.account.add(value.bytes());
        // The decoded value may weigh less than it did when spilled (decoding allocates exact
        // capacities): the account adds what it weighs now, and releasing it later subtracts
        // the same.
        self.account.unspilled();
        Ok(value)
    }

    /// Moves a result to a spill file in `dir` if it is in memory, spillable, and referenced
    /// only by the store. Returns the bytes freed from memory and the bytes written to disk
    /// (`None`: nothing was spilled).
    ///
    /// # Errors
    /// Encoding or writing failed (disk full, budget exceeded); the value stays in memory.
    pub(crate) fn spill(
        &self,
        task: u32,
        dir: &SpillDir,
        name: &str,
    ) -> Result<Option<(usize, u64)>> {
        let (value, codec) = {
            let slot = self.slots[task as usize].lock();
            let Slot::Mem(v) = &*slot else {
                return Ok(None);
            };
            let Some(codec) = v.codec().copied() else {
                return Ok(None);
            };
            if v.ref_count() > 1 {
                return Ok(None); // pinned: a running task reads it
            }
            (v.clone(), codec)
        };
        // Arrays in standard layout are written where they lie; others are encoded first.
        let mut head = Vec::new();
        let file = match codec.encode_split(&value, &mut head)? {
            Some(body) => dir.write_parts(name, &head, body)?,
            None => {
                let mut buf = Vec::with_capacity(value.bytes() + 64);
                codec.encode(&value, &mut buf)?;
                dir.write(name, &buf)?
            }
        };
        let mut slot = self.slots[task as usize].lock();
        // Still ours alone? (Our clone and the slot's: two references.) A reader that came
        // meanwhile pins it; a last reader may have taken it; then the file is dropped unused.
        match &*slot {
            Slot::Mem(v) if v.same(&value) && v.ref_count() == 2 => {}
            _ => return Ok(None),
        }
        let bytes = value.bytes();
        let disk_len = file.disk_len();
        *slot = Slot::Disk(Box::new(OnDisk { file, codec }));
        drop(slot);
        drop(value);
        self.account.spilled(disk_len);
        self.account.sub(bytes);
        Ok(Some((bytes, disk_len)))
    }

    /// True when the result is in a spill file.
    #[cfg(test)]
    fn is_on_disk(&self, task: u32) -> bool {
        matches!(&*self.slots[task as usize].lock(), Slot::Disk(_))
    }

    /// Drops a result (deleting its spill file unread) and uncounts it.
    pub(crate) fn release(&self, task: u32) {
        let old = std::mem::replace(&mut *self.slots[task as usize].lock(), Slot::Empty);
        self.forget(old);
    }

    pub(crate) fn uncount(&self, bytes: usize) {
        self.account.sub(bytes);
    }

    fn forget(&self, slot: Slot) {
        // A spilled value was uncounted when it went to disk; dropping its file deletes it.
        if let Slot::Mem(v) = slot {
            self.account.sub(v.bytes());
        }
    }

    /// Drops everything still stored (after a failure or at the end).
    pub(crate) fn clear(&self) {
        for slot in self.slots.iter() {
            let old = std::mem::replace(&mut *slot.lock(), Slot::Empty);
            self.forget(old);
        }
    }
}

impl Drop for Store {
    fn drop(&mut self) {
        // Exclusive access: no locking needed, and after a successful run nothing is left.
        for i in 0..self.slots.len() {
            let old = std::mem::replace(self.slots[i].get_mut(), Slot::Empty);
            self.forget(old);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn store(n: usize) -> (Store, Arc<MemoryAccount>) {
        let account = Arc::new(MemoryAccount::default());
        (Store::new(n, Arc::clone(&account)), account)
    }

    #[test]
    fn zeroed_slots_are_empty_and_unlocked() {
        let (store, _) = store(1000);
        for slot in store.slots.iter() {
            let guard = slot.try_lock().expect("unlocked");
            assert!(matches!(&*guard, Slot::Empty));
        }
        assert_eq!(store.get(999).unwrap().map(|v| v.bytes()), None);
        store.insert(999, Value::new(vec![1u8; 10]));
        assert!(store.get(999).unwrap().is_some());
    }

    #[test]
    fn spill_and_read_back_keeps_value_and_counts() {
        let dir = SpillDir::new(None, None).unwrap();
        let (store, account) = store(2);
        let data: Vec<f64> = (0..10_000).map(|i| i as f64).collect();
        store.insert(0, Value::spillable(data.clone()));
        let bytes = account.stats().current_bytes;
        assert!(bytes >= 80_000);
        assert_eq!(
            store.spill(0, &dir, "t0").unwrap().map(|s| s.0),
            Some(bytes)
        );
        assert!(store.is_on_disk(0));
        let stats = account.stats();
        assert_eq!(stats.current_bytes, 0);
        assert_eq!(stats.spill_count, 1);
        assert!(stats.spilled_bytes > 0);
        // Reading brings it back into memory, counted again.
        let v = store.get(0).unwrap().unwrap();
        assert_eq!(v.downcast_ref::<Vec<f64>>(), Some(&data));
        assert!(!store.is_on_disk(0));
        assert_eq!(account.stats().current_bytes, bytes);
        assert_eq!(account.stats().unspill_count, 1);
        drop(v);
        store.release(0);
        assert_eq!(account.stats().current_bytes, 0);
    }

    #[test]
    fn pinned_or_unspillable_values_stay_in_memory() {
        let dir = SpillDir::new(None, None).unwrap();
        let (store, _) = store(2);
        store.insert(0, Value::spillable(vec![1.0f64; 100]));
        let reader = store.get(0).unwrap().unwrap(); // a running task holds it
        assert_eq!(store.spill(0, &dir, "t0").unwrap(), None);
        drop(reader);
        assert!(store.spill(0, &dir, "t0").unwrap().is_some());
        store.insert(1, Value::new(vec![1.0f64; 100])); // no codec
        assert_eq!(store.spill(1, &dir, "t1").unwrap(), None);
    }

    #[test]
    fn releasing_a_spilled_value_deletes_its_file_unread() {
        let dir = SpillDir::new(None, None).unwrap();
        let (store, account) = store(1);
        store.insert(0, Value::spillable(vec![7u8; 50_000]));
        store.spill(0, &dir, "t0").unwrap();
        assert_eq!(dir.stats().files_written, 1);
        assert!(dir.stats().current_bytes > 0);
        store.release(0);
        assert_eq!(dir.stats().current_bytes, 0);
        assert_eq!(dir.stats().files_read, 0);
        assert_eq!(account.stats().unspill_count, 0);
    }

    #[test]
    fn take_of_a_spilled_value_reads_it_back() {
        let dir = SpillDir::new(None, None).unwrap();
        let (store, account) = store(1);
        store.insert(0, Value::spillable(vec![3i64; 1000]));
        store.spill(0, &dir, "t0").unwrap();
        let v = store.take(0).unwrap().unwrap();
        assert_eq!(v.take::<Vec<i64>>().unwrap(), vec![3i64; 1000]);
        // Taken values stay counted until the holder uncounts them.
        assert!(account.stats().current_bytes > 0);
    }

    #[test]
    fn a_full_disk_budget_leaves_the_value_in_memory() {
        let dir = SpillDir::new(None, Some(1024)).unwrap();
        let (store, account) = store(1);
        // Incompressible (a multiplicative hash of the index), so LZ4 cannot fit it in 1 KiB.
        let noise: Vec<u64> = (0..10_000u64)
            .map(|i| i.wrapping_mul(0x9E37_79B9_7F4A_7C15).rotate_left(17))
            .collect();
        let noise: Vec<f64> = noise.into_iter().map(|x| x as f64).collect();
        store.insert(0, Value::spillable(noise));
        let before = account.stats().current_bytes;
        let err = store.spill(0, &dir, "t0").unwrap_err();
        assert!(err.to_string().contains("budget"), "{err}");
        assert_eq!(account.stats().current_bytes, before);
        assert!(store.get(0).unwrap().is_some());
    }
}
