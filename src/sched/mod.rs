//! Executors: run a planned graph on the calling thread ([`Executor::Sync`]) or on a
//! work-stealing pool ([`Executor::Threads`], the default), plus the events they emit.

mod cancel;
mod context;
pub mod event;
mod latch;
pub(crate) mod pool;
pub mod progress;
mod resources;
mod run;
mod runtime;
pub mod trace;

pub use cancel::CancelToken;
pub use context::TaskContext;
pub use event::{Event, EventHook};
pub use progress::{ProgressBar, ProgressMode};
pub(crate) use runtime::RuntimeInner;
pub use runtime::{
    build_graph, parse_bytes, ByteSize, Compute, ComputeOptions, Executor, Runtime, RuntimeBuilder,
};
pub use trace::ChromeTrace;
