//! `kmsload run`.

use super::{CliError, Status};

/// Options of `kmsload run`.
#[derive(Debug, clap::Args)]
pub struct Args {}

/// Runs `kmsload run`.
///
/// # Errors
/// [`CliError`] on bad input.
pub fn run(_args: Args) -> Result<Status, CliError> {
    Err(CliError::Runtime("`run` is being built".into()))
}
