//! Flags and helpers of the commands that talk to one KMS host (`activate`, `validate`):
//! the deadlines of each network step and the host name's resolution.

use std::net::SocketAddr;
use std::time::Duration;

use crate::client::{self, ClientError, ClientOptions};
use crate::values::{self, Host, HostPort};

/// `--connect-timeout` and `--timeout`.
#[derive(Debug, Clone, PartialEq, Eq, clap::Args)]
pub struct DeadlineArgs {
    /// Deadline for each TCP connect: a dead host fails within it.
    #[arg(long, default_value = "5s", value_parser = values::parse_nonzero_duration)]
    pub connect_timeout: Duration,

    /// Deadline for each later step (bind, each request).
    #[arg(long, default_value = "10s", value_parser = values::parse_nonzero_duration)]
    pub timeout: Duration,
}

impl DeadlineArgs {
    /// `options` with these deadlines: the connect's, and `--timeout` for bind and request.
    pub fn apply(&self, options: ClientOptions) -> ClientOptions {
        ClientOptions {
            connect_timeout: self.connect_timeout,
            bind_timeout: self.timeout,
            request_timeout: self.timeout,
            ..options
        }
    }
}

/// The address of `target`: as given, or its name resolved within `limit`.
///
/// # Errors
/// [`ClientError::Resolve`] when the name does not resolve in time.
pub async fn resolve(target: &HostPort, limit: Duration) -> Result<SocketAddr, ClientError> {
    match &target.host {
        Host::Ip(ip) => Ok(SocketAddr::new(*ip, target.port)),
        Host::Name(name) => client::resolve(name, target.port, limit).await,
    }
}
