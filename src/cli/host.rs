//! `kmsload host`.

use super::{CliError, Status};

/// Options of `kmsload host`.
#[derive(Debug, clap::Args)]
pub struct Args {}

/// Runs `kmsload host`.
///
/// # Errors
/// [`CliError`] on bad input.
pub fn run(_args: Args) -> Result<Status, CliError> {
    Err(CliError::Runtime("`host` is being built".into()))
}
