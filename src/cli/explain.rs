//! `kmsload explain`.

use super::{CliError, Status};

/// Options of `kmsload explain`.
#[derive(Debug, clap::Args)]
pub struct Args {}

/// Runs `kmsload explain`.
///
/// # Errors
/// [`CliError`] on bad input.
pub fn run(_args: Args) -> Result<Status, CliError> {
    Err(CliError::Runtime("`explain` is being built".into()))
}
