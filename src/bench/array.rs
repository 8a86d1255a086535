//! `brisk bench array`: the seed-talk array workloads (issue 4). Owned by the array work.

use crate::{Error, Result};

/// Options of `brisk bench array`.
#[derive(clap::Args, Debug)]
pub struct Args {}

/// Runs `brisk bench array`.
pub fn main(_args: Args) -> Result<()> {
    Err(Error::msg("brisk bench array: not built yet"))
}
