//! The seed talk's array example: `(x.dot(x.T + 1) - x.mean()).std()` on a chunked array.
//!
//! ```text
//! cargo run --release --example array_seed -- [n] [chunk]
//! ```
//! (defaults 4000 and 1000: a 4000 × 4000 matrix in 16 blocks).

use brisk::array::{self, All};
use brisk::prelude::*;

fn main() -> brisk::Result<()> {
    let mut args = std::env::args().skip(1);
    let n: usize = args.next().and_then(|a| a.parse().ok()).unwrap_or(4000);
    let chunk: usize = args.next().and_then(|a| a.parse().ok()).unwrap_or(1000);
    let rt = Runtime::builder().progress(ProgressMode::Auto).build()?;

    let x = array::random::uniform(&[n, n], (chunk, chunk), 1)?;
    let y = (x.dot(&(x.t() + 1.0)) - x.mean(All)).std(All, 0.0);
    // Nothing has run yet: the array knows its shape, chunks and task count.
    println!("x = {x}");
    println!("y = {y}");

    let start = std::time::Instant::now();
    let value = y.compute_scalar(&rt)?;
    println!("std = {value:.6} in {:.2?}", start.elapsed());
    Ok(())
}
