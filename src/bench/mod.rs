//! Benchmark workloads shared by `brisk bench` and the criterion benches, so both measure the
//! same graphs.

pub mod overhead;
