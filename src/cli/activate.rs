//! `kmsload activate`.

use super::{CliError, Status};

/// Options of `kmsload activate`.
#[derive(Debug, clap::Args)]
pub struct Args {}

/// Runs `kmsload activate`.
///
/// # Errors
/// [`CliError`] on bad input.
pub fn run(_args: Args) -> Result<Status, CliError> {
    Err(CliError::Runtime("`activate` is being built".into()))
}
