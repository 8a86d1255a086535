//! `brisk bench frame`, `brisk bench frame-join` and `brisk gen`: the frame workloads (issue 5).
//! Owned by the frame work.

use crate::{Error, Result};

/// Options of `brisk bench frame`.
#[derive(clap::Args, Debug)]
pub struct Args {}

/// Options of `brisk bench frame-join`.
#[derive(clap::Args, Debug)]
pub struct JoinArgs {}

/// `brisk gen ...`: data generators.
#[derive(clap::Subcommand, Debug)]
pub enum Gen {}

/// Runs `brisk bench frame`.
pub fn main(_args: Args) -> Result<()> {
    Err(Error::msg("brisk bench frame: not built yet"))
}

/// Runs `brisk bench frame-join`.
pub fn join_main(_args: JoinArgs) -> Result<()> {
    Err(Error::msg("brisk bench frame-join: not built yet"))
}

/// Runs `brisk gen ...`.
pub fn gen_main(gen: Gen) -> Result<()> {
    match gen {}
}
