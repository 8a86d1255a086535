//! The runtime-wide memory pool: the limit, the thresholds, and who spills when.
//!
//! One pool per runtime counts the bytes of every stored result ([`MemoryAccount`]) against
//! the `memory_limit`. Two thresholds, fractions of the limit, drive it (Dask's worker uses
//! the same pair, design §4):
//!
//! - **spill** (default 0.6): a thread that stores a result and finds the total above it
//!   spills values — synchronously, on that thread, before it takes more work — until the
//!   total is back under it. Victims come from the computations registered as
//!   [`SpillSource`]s, oldest first; each picks its value needed furthest in the future
//!   (see [`victims`](super::victims)).
//! - **pause** (default 0.8): above it, the scheduler admits no new root task while other
//!   tasks of the computation still run (they will free memory); when nothing runs it admits
//!   one anyway, so a computation never waits on itself.
//!
//! Only one thread spills at a time: another thread that crosses the threshold meanwhile goes
//! on (the spilling thread is already bringing the total down), so writes are sequential —
//! unless the total is above the **pause** threshold: then it waits for the spilling thread
//! and spills in turn, so that producers cannot outrun the writer and carry the total to the
//! limit and past it.
//!
//! **Working memory.** A running task's output and scratch space are not results yet, but
//! they are resident. Each task with inputs of 1 MiB or more holds a [`Reservation`] of their
//! size while it runs (for frames and arrays the output is about as large as the inputs; tiny
//! tasks skip it, keeping the hot path free of a shared counter), counted with the stored
//! bytes in the thresholds: the pool spills ahead to make room for what the running tasks are
//! about to produce, instead of after it was produced. Reservations are not results, so
//! [`MemoryStats`] does not count them.
//!
//! A failed spill (disk budget exceeded, disk full, directory not writable) is an error only
//! when it matters: when the total is above the limit itself. Below it the pool stops trying
//! until the limit is crossed (each attempt costs an encode), and work continues in memory.
//!
//! The spill directory is created on the first spill, so runtimes that never spill touch no
//! disk; stale directories of crashed processes are removed when the pool is made.

use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Weak};

use parking_lot::Mutex;

use super::disk::{DiskStats, SpillDir};
use super::store::{MemoryAccount, MemoryStats};
use crate::error::{Error, Result};

/// Default fraction of the limit above which values are spilled.
pub const DEFAULT_SPILL_FRACTION: f64 = 0.6;
/// Default fraction of the limit above which new root tasks wait.
pub const DEFAULT_PAUSE_FRACTION: f64 = 0.8;

/// How a runtime manages memory. Built by [`RuntimeBuilder`](crate::RuntimeBuilder).
#[derive(Debug, Clone)]
pub struct MemoryConfig {
    /// Bytes of results to keep in memory at most.
    pub limit: u64,
    /// Fraction of `limit` above which values are spilled.
    pub spill_fraction: f64,
    /// Fraction of `limit` above which root tasks are paused.
    pub pause_fraction: f64,
    /// Where spill directories are made (`None`: the system temp dir).
    pub spill_dir: Option<PathBuf>,
    /// Bytes of spill files allowed on disk at once (`None`: no cap).
    pub max_spill: Option<u64>,
}

impl MemoryConfig {
    /// A config with the default thresholds, no spill dir and no disk cap.
    pub fn new(limit: u64) -> MemoryConfig {
        MemoryConfig {
            limit,
            spill_fraction: DEFAULT_SPILL_FRACTION,
            pause_fraction: DEFAULT_PAUSE_FRACTION,
            spill_dir: None,
            max_spill: None,
        }
    }

    fn validate(&self) -> Result<()> {
        if self.limit == 0 {
            return Err(Error::config("memory_limit must be above 0"));
        }
        let ok = |f: f64| f > 0.0 && f <= 1.0;
        if !ok(self.spill_fraction) || !ok(self.pause_fraction) {
            return Err(Error::config(format!(
                "spill and pause fractions must be in (0, 1], got spill {} and pause {}",
                self.spill_fraction, self.pause_fraction
            )));
        }
        if self.spill_fraction > self.pause_fraction {
            return Err(Error::config(format!(
                "the spill fraction ({}) must not exceed the pause fraction ({}): roots would \
                 pause before anything is spilled",
                self.spill_fraction, self.pause_fraction
            )));
        }
        if self.max_spill == Some(0) {
            return Err(Error::config(
                "max_spill must be above 0 (leave it unset for no disk cap)",
            ));
        }
        Ok(())
    }
}

/// A computation whose stored values can be spilled.
pub(crate) trait SpillSource: Send + Sync {
    /// Spills the computation's best victim to `dir`, on behalf of `worker`.
    ///
    /// `Ok(Some(bytes))`: a candidate was handled (`bytes` freed, 0 when it turned out to be
    /// pinned or gone); `Ok(None)`: nothing left to try.
    fn spill_one(&self, dir: &SpillDir, worker: usize) -> Result<Option<usize>>;
}

/// Keeps a computation registered with a pool; unregisters it when dropped.
pub(crate) struct Registration {
    pool: Arc<MemoryPool>,
    source: Weak<dyn SpillSource>,
}

impl Drop for Registration {
    fn drop(&mut self) {
        self.pool
            .sources
            .lock()
            .retain(|s| !Weak::ptr_eq(s, &self.source));
    }
}

/// The memory pool of one runtime (see the [module docs](self)).
pub(crate) struct MemoryPool {
    account: Arc<MemoryAccount>,
    config: MemoryConfig,
    spill_at: usize,
    pause_at: usize,
    dir: Mutex<Option<Arc<SpillDir>>>,
    sources: Mutex<Vec<Weak<dyn SpillSource>>>,
    spilling: Mutex<()>,
    /// A spill failed below the limit: do not try again until the limit is crossed.
    spill_failed: AtomicBool,
    /// A root was refused admission: wake sleeping workers once the total falls.
    paused: AtomicBool,
    /// Working memory reserved by running tasks.
    reserved: AtomicUsize,
}

/// Working memory held for a running task; given back when dropped.
pub(crate) struct Reservation<'a> {
    pool: &'a MemoryPool,
    bytes: usize,
}

impl Drop for Reservation<'_> {
    fn drop(&mut self) {
        self.pool.reserved.fetch_sub(self.bytes, Ordering::Relaxed);
    }
}

impl MemoryPool {
    /// A pool for `config`.
    ///
    /// # Errors
    /// [`ErrorKind::Config`](crate::ErrorKind::Config) for a zero limit or thresholds out of
    /// order.
    pub(crate) fn new(config: MemoryConfig) -> Result<MemoryPool> {
        config.validate()?;
        SpillDir::remove_stale(config.spill_dir.as_deref());
        let limit = config.limit.min(usize::MAX as u64) as f64;
        Ok(MemoryPool {
            account: Arc::new(MemoryAccount::default()),
            spill_at: (limit * config.spill_fraction) as usize,
            pause_at: (limit * config.pause_fraction) as usize,
            config,
            dir: Mutex::new(None),
            sources: Mutex::new(Vec::new()),
            spilling: Mutex::new(()),
            spill_failed: AtomicBool::new(false),
            paused: AtomicBool::new(false),
            reserved: AtomicUsize::new(0),
        })
    }

    pub(crate) fn account(&self) -> &Arc<MemoryAccount> {
        &self.account
    }

    pub(crate) fn limit(&self) -> u64 {
        self.config.limit
    }

    pub(crate) fn spill_base(&self) -> Option<&Path> {
        self.config.spill_dir.as_deref()
    }

    /// The spill directory in use, once something was spilled.
    pub(crate) fn spill_path(&self) -> Option<PathBuf> {
        self.dir.lock().as_ref().map(|d| d.path().to_path_buf())
    }

    /// Stored bytes plus the working memory of running tasks: what the thresholds compare.
    #[inline]
    fn current(&self) -> usize {
        self.account.current() + self.reserved.load(Ordering::Relaxed)
    }

    /// Reserves `bytes` of working memory for a task about to run (see the module docs);
    /// call [`relieve`](Self::relieve) after it to make room.
    pub(crate) fn reserve(&self, bytes: usize) -> Reservation<'_> {
        self.reserved.fetch_add(bytes, Ordering::Relaxed);
        Reservation { pool: self, bytes }
    }

    /// True when new roots should wait (the total is above the pause threshold).
    #[inline]
    pub(crate) fn over_pause(&self) -> bool {
        self.current() > self.pause_at
    }

    /// Records that a root was refused for memory, so that the fall below the threshold
    /// wakes sleeping workers (see [`take_unpaused`](Self::take_unpaused)).
    pub(crate) fn note_paused(&self) {
        self.paused.store(true, Ordering::SeqCst);
    }

    /// True once after admission was paused and the total fell below the pause threshold.
    #[inline]
    pub(crate) fn take_unpaused(&self) -> bool {
        self.paused.load(Ordering::Relaxed)
            && !self.over_pause()
            && self.paused.swap(false, Ordering::SeqCst)
    }

    /// Registers a computation as a source of victims.
    pub(crate) fn register(self: &Arc<Self>, source: Weak<dyn SpillSource>) -> Registration {
        self.sources.lock().push(source.clone());
        Registration {
            pool: Arc::clone(self),
            source,
        }
    }

    /// Spills until the total is under the spill threshold, if it is above it and no other
    /// thread is already spilling.
    ///
    /// # Errors
    /// Spilling failed (disk budget, disk full, unwritable directory, encoding) while the
    /// total is above the limit itself. Below the limit a failure is not an error: work goes
    /// on in memory.
    pub(crate) fn relieve(&self, worker: usize) -> Result<()> {
        if self.current() <= self.spill_at {
            return Ok(());
        }
        // Stored bytes only: a reservation is an estimate, not memory a failed spill could free.
        let over_limit = || self.account.current() as u64 > self.config.limit;
        if self.spill_failed.load(Ordering::Relaxed) && !over_limit() {
            return Ok(());
        }
        let _spilling = match self.spilling.try_lock() {
            Some(guard) => guard,
            // Another thread is spilling: below the pause threshold, let it; above, wait
            // and then help, so producers cannot outrun the writer.
            None if self.over_pause() => self.spilling.lock(),
            None => return Ok(()),
        };
        if self.current() <= self.spill_at {
            return Ok(());
        }
        let sources: Vec<Arc<dyn SpillSource>> = self
            .sources
            .lock()
            .iter()
            .filter_map(Weak::upgrade)
            .collect();
        if sources.is_empty() {
            return Ok(());
        }
        let failed = |e: Error| {
            if over_limit() {
                Err(e)
            } else {
                self.spill_failed.store(true, Ordering::Relaxed);
                Ok(())
            }
        };
        let dir = match self.dir() {
            Ok(d) => d,
            Err(e) => return failed(e),
        };
        'spill: while self.current() > self.spill_at {
            for source in &sources {
                match source.spill_one(&dir, worker) {
                    Ok(Some(_)) => continue 'spill,
                    Ok(None) => {}
                    Err(e) => return failed(e),
                }
            }
            break; // nothing left to spill anywhere
        }
        self.spill_failed.store(false, Ordering::Relaxed);
        Ok(())
    }

    /// The spill directory, made on first use.
    fn dir(&self) -> Result<Arc<SpillDir>> {
        let mut dir = self.dir.lock();
        if let Some(d) = &*dir {
            return Ok(Arc::clone(d));
        }
        let made = Arc::new(SpillDir::new(
            self.config.spill_dir.as_deref(),
            self.config.max_spill,
        )?);
        *dir = Some(Arc::clone(&made));
        Ok(made)
    }

    fn disk_stats(&self) -> DiskStats {
        self.dir
            .lock()
            .as_ref()
            .map(|d| d.stats())
            .unwrap_or_default()
    }

    /// The account's numbers plus the disk's.
    pub(crate) fn stats(&self) -> MemoryStats {
        let mut stats = self.account.stats();
        let disk = self.disk_stats();
        stats.limit = self.config.limit;
        stats.disk_bytes = disk.current_bytes;
        stats.peak_disk_bytes = disk.peak_bytes;
        stats
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn thresholds_are_validated() {
        let mut c = MemoryConfig::new(1000);
        c.spill_fraction = 0.9;
        c.pause_fraction = 0.5;
        let err = MemoryPool::new(c).err().unwrap().to_string();
        assert!(err.contains("spill fraction"), "{err}");
        let mut c = MemoryConfig::new(1000);
        c.pause_fraction = 1.5;
        assert!(MemoryPool::new(c).is_err());
        assert!(MemoryPool::new(MemoryConfig::new(0)).is_err());
        let mut c = MemoryConfig::new(1000);
        c.max_spill = Some(0);
        assert!(MemoryPool::new(c).is_err());
    }

    #[test]
    fn pause_and_unpause_follow_the_total() {
        let pool = MemoryPool::new(MemoryConfig::new(1000)).unwrap();
        assert!(!pool.over_pause());
        pool.account.add(900);
        assert!(pool.over_pause());
        pool.note_paused();
        assert!(!pool.take_unpaused());
        pool.account.sub(500);
        assert!(pool.take_unpaused());
        assert!(!pool.take_unpaused(), "reported once");
    }

    #[test]
    fn no_directory_is_made_until_something_spills() {
        let base = tempfile::tempdir().unwrap();
        let mut c = MemoryConfig::new(1000);
        c.spill_dir = Some(base.path().join("spill"));
        let pool = MemoryPool::new(c).unwrap();
        pool.account.add(2000);
        pool.relieve(0).unwrap(); // no sources: nothing to do
        assert!(pool.spill_path().is_none());
        assert!(!base.path().join("spill").exists());
    }

    /// Spills one value of `bytes` per call until none is left.
    struct Values {
        account: Arc<MemoryAccount>,
        left: Mutex<Vec<usize>>,
    }

    impl SpillSource for Values {
        fn spill_one(&self, _dir: &SpillDir, _worker: usize) -> Result<Option<usize>> {
            Ok(self.left.lock().pop().inspect(|&b| self.account.sub(b)))
        }
    }

    #[test]
    fn reservations_make_room_ahead_and_are_not_stored_bytes() {
        let base = tempfile::tempdir().unwrap();
        let mut c = MemoryConfig::new(1000);
        c.spill_dir = Some(base.path().to_path_buf());
        let pool = Arc::new(MemoryPool::new(c).unwrap());
        // 500 stored: under the spill threshold (600).
        pool.account.add(500);
        let values: Arc<dyn SpillSource> = Arc::new(Values {
            account: pool.account.clone(),
            left: Mutex::new(vec![100; 5]),
        });
        let _registration = pool.register(Arc::downgrade(&values));
        pool.relieve(0).unwrap();
        assert_eq!(
            pool.account.current(),
            500,
            "nothing to do below the threshold"
        );
        // A task about to produce ~350 more: room is made before it runs.
        let reservation = pool.reserve(350);
        assert!(pool.over_pause(), "the thresholds see the reservation");
        pool.relieve(0).unwrap();
        assert_eq!(
            pool.account.current(),
            200,
            "500 + 350 brought down under 600"
        );
        assert_eq!(
            pool.account.stats().current_bytes,
            200,
            "stats count stored bytes"
        );
        drop(reservation);
        assert!(!pool.over_pause());
        assert_eq!(pool.current(), 200);
    }
}
