//! The store of results: byte accounting now; the memory limit and spilling to disk are built
//! on it by the spill work (design §4).

pub mod limit;
mod size_of;
mod store;

pub use size_of::SizeOf;
pub(crate) use store::Store;
pub use store::{MemoryAccount, MemoryStats};
