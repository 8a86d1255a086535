//! # brisk
//!
//! Parallel, larger-than-memory computation for Rust, in the spirit of Python's Dask: build a
//! task graph — with [`delayed`] functions, [`Runtime::submit`] futures, or chunked
//! collections — and a work-stealing scheduler runs it on every core, ordered to hold as few
//! results in memory as the graph allows.
//!
//! ```
//! use brisk::prelude::*;
//!
//! let rt = Runtime::builder().threads(2).build()?;
//! let inc = delayed(|x: i64| x + 1).name("inc");
//! let add = delayed(|a: i64, b: i64| a + b).name("add");
//! let xs: Vec<Delayed<i64>> = (0..10).map(|i| inc.call(i)).collect();
//! let total = xs.iter().skip(1).fold(xs[0].clone(), |acc, x| add.call((acc, x)));
//! assert_eq!(rt.compute(&total)?, 55);
//! # Ok::<(), brisk::Error>(())
//! ```
//!
//! The layers (see `DESIGN.md`): [`graph`] (keys, tasks, validation, culling, fusion,
//! ordering), [`sched`] (executors and events), [`spill`] (the result store and byte
//! accounting), and the collections [`array`](mod@array) and [`frame`](mod@frame).

#![warn(missing_docs)]
#![deny(unsafe_op_in_unsafe_fn)]

pub mod array;
pub mod bench;
pub mod delayed;
mod error;
pub mod frame;
pub mod future;
pub mod graph;
pub mod sched;
pub mod spill;

/// `#[derive(SizeOf)]`: inline size plus every field's heap bytes; see [`SizeOf`] for the
/// attributes (`skip`, `with`, `spill = "postcard"`, `bound`).
pub use brisk_derive::SizeOf;
pub use delayed::{delayed, gather, value, Delayed, DelayedFn};
pub use error::{BoxError, Error, ErrorKind, Result};
pub use future::{as_completed, Future};
pub use graph::{Annotations, Graph, Key, NamedOp, Op, TaskId, Value};
pub use sched::{
    build_graph, CancelToken, ChromeTrace, Compute, ComputeOptions, Event, EventHook, Executor,
    ProgressMode, Runtime, RuntimeBuilder, TaskContext,
};
pub use spill::{MemoryStats, SizeOf};

/// The polars brisk is built with, so that programs name its types (`TimeUnit`, `DataType`,
/// expressions) without depending on the exact same polars version themselves.
///
/// ```
/// use brisk::polars::prelude::{col, lit, TimeUnit};
/// let _unit = TimeUnit::Milliseconds;
/// let _e = col("x").gt(lit(0.0));
/// ```
pub use polars;

/// The ndarray brisk is built with (`s![]`, `ArrayD`, `Axis`), for the same reason.
///
/// ```
/// use brisk::ndarray::{s, Array2};
/// let a = Array2::<f64>::zeros((3, 4));
/// assert_eq!(a.slice(s![1.., ..2]).dim(), (2, 2));
/// ```
pub use ndarray;

// The derive's generated code names `::brisk`; this makes that path work inside the crate too.
extern crate self as brisk;

/// What `#[derive(SizeOf)]` expands to needs; not a public API.
#[doc(hidden)]
pub mod __private {
    pub use serde;
}

// The README's examples are compiled and run as doc tests.
#[cfg(doctest)]
#[doc = include_str!("../README.md")]
struct ReadmeDoctests;

/// The names most programs need: `use brisk::prelude::*;`.
pub mod prelude {
    pub use crate::delayed::{delayed, gather, value, Delayed};
    pub use crate::future::{as_completed, Future};
    pub use crate::sched::{CancelToken, Compute, ComputeOptions, Executor, ProgressMode, Runtime};
    pub use crate::{Error, Result, SizeOf};
}
