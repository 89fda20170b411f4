//! `kmsload products`.

use super::{CliError, Status};

/// Options of `kmsload products`.
#[derive(Debug, clap::Args)]
pub struct Args {}

/// Runs `kmsload products`.
///
/// # Errors
/// [`CliError`] on bad input.
pub fn run(_args: Args) -> Result<Status, CliError> {
    Err(CliError::Runtime("`products` is being built".into()))
}
