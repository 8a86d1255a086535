//! The store of results and what it needs to keep them under a memory limit (design §4).
//!
//! - [`SizeOf`]: bytes a value holds; the store's account ([`MemoryAccount`]) counts them.
//! - [`limit`]: the default memory limit, a fraction of physical memory.
//! - [`codec`]: encodings of values to bytes ([`codec::Spill`], [`codec::Codec`]): raw
//!   little-endian arrays, Arrow IPC frames, postcard for serde types.
//! - [`disk`]: spill files in a per-runtime directory with a disk budget, LZ4 when it pays,
//!   checksums, memory-mapped reads, deletion on drop and stale-directory cleanup.
//!
//! - [`pool`]: the runtime-wide limit and thresholds: spill above one, pause new root tasks
//!   above the other; victims chosen by [`victims`] (the value needed furthest in the future).
//! - the per-computation `Store` of results: in memory or on disk, pinned while read.

pub mod codec;
pub mod disk;
pub mod limit;
pub mod pool;
mod size_of;
mod store;
mod victims;

pub use pool::{MemoryConfig, DEFAULT_PAUSE_FRACTION, DEFAULT_SPILL_FRACTION};
pub(crate) use pool::{MemoryPool, SpillSource};
pub use size_of::SizeOf;
pub(crate) use store::Store;
pub use store::{MemoryAccount, MemoryStats};
pub(crate) use victims::{Recheck, VictimQueue};
