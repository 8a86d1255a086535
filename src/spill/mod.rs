//! The store of results and what it needs to keep them under a memory limit (design §4).
//!
//! - [`SizeOf`]: bytes a value holds; the store's account ([`MemoryAccount`]) counts them.
//! - [`limit`]: the default memory limit, a fraction of physical memory.
//! - [`codec`]: encodings of values to bytes ([`codec::Spill`], [`codec::Codec`]): raw
//!   little-endian arrays, Arrow IPC frames, postcard for serde types.
//! - [`disk`]: spill files in a per-runtime directory with a disk budget, LZ4 when it pays,
//!   checksums, memory-mapped reads, deletion on drop and stale-directory cleanup.
//!
//! The store does not spill yet: choosing victims, pinning and the thresholds that connect
//! these layers to the scheduler are the next step of the spill work.

pub mod codec;
pub mod disk;
pub mod limit;
mod size_of;
mod store;

pub use size_of::SizeOf;
pub(crate) use store::Store;
pub use store::{MemoryAccount, MemoryStats};
