//! The one way an attempt is made, by `kmsload activate` and by the runner alike: a client
//! whose connections go through fault injection, the attempt's fault armed before its request
//! and disarmed after, and a connection a fault touched never kept for the next attempt.

use std::net::{IpAddr, SocketAddr};

use crate::client::{Attempt, Client, ClientOptions, TcpConnector, Tracer};
use crate::wire::RequestBase;

use super::{FaultHandle, FaultyConnector, InjectedFault};

/// A [`Client`] over TCP (from `source`, when given) with its fault handle.
pub struct FaultyClient {
    client: Client<FaultyConnector<TcpConnector>>,
    faults: FaultHandle,
}

impl FaultyClient {
    /// A client of `addr` whose connections leave from `source` (the system's choice when
    /// `None`), nothing armed.
    pub fn new(addr: SocketAddr, source: Option<IpAddr>, options: ClientOptions) -> Self {
        let faults = FaultHandle::new();
        let connector = FaultyConnector::with_handle(TcpConnector { source }, faults.clone());
        Self {
            client: Client::with_connector(connector, addr, options),
            faults,
        }
    }

    /// One activation attempt for `base` with `iv` as `IV_req`, with `fault` (if any) armed
    /// for it alone (from this call on: await the future at once). A connection the fault
    /// touched is closed afterwards, so the next attempt starts clean. Never panics; every
    /// step has the client's deadline.
    ///
    /// Not an `async fn`, whose state would keep its arguments twice for the whole attempt:
    /// the runner holds 10,000 of these at once when 10,000 clients connect together.
    pub fn attempt<'a>(
        &'a mut self,
        base: &'a RequestBase,
        iv: [u8; 16],
        fault: Option<InjectedFault>,
    ) -> impl Future<Output = Attempt> + 'a {
        self.faults.arm(fault);
        let faulted = fault.is_some();
        async move {
            let attempt = self.client.activate(base, iv).await;
            self.faults.arm(None);
            if faulted {
                self.client.disconnect();
            }
            attempt
        }
    }

    /// True while a connection is kept open for the next attempt.
    pub fn is_connected(&self) -> bool {
        self.client.is_connected()
    }

    /// Closes the kept connection, if any.
    pub fn disconnect(&mut self) {
        self.client.disconnect();
    }

    /// Calls `tracer` with every PDU sent or received (`-v`).
    pub fn set_tracer(&mut self, tracer: Tracer) {
        self.client.set_tracer(tracer);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::client::Outcome;
    use crate::faults::{Direction, FaultKind, InjectedFault, Region};
    use crate::host::server::{ServerOptions, start};

    fn base() -> RequestBase {
        let product = crate::catalog::lookup::find("Windows 10/11 Enterprise").unwrap();
        let now = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap();
        let time = crate::wire::FileTime::from_unix(now.as_secs() as i64, 0);
        RequestBase {
            // One client reaches the host's threshold, so every unfaulted attempt activates.
            required_client_count: 1,
            ..crate::client::volume_request(product, 6, uuid::Uuid::new_v4(), time, "fault.test")
        }
    }

    /// A faulted attempt fails and leaves no connection behind; the next, unarmed, attempt
    /// gets a new connection and activates.
    #[tokio::test]
    async fn a_fault_is_armed_for_its_attempt_only_and_its_connection_is_not_kept() {
        let host = start(ServerOptions {
            host: crate::host::HostConfig {
                charged: true,
                ..ServerOptions::default().host
            },
            ..ServerOptions::default()
        })
        .await
        .unwrap();
        let mut client = FaultyClient::new(host.addr(), None, ClientOptions::default());
        let clean = client.attempt(&base(), [1; 16], None).await;
        assert_eq!(
            clean.verdict().outcome,
            Outcome::Activated,
            "{:?}",
            clean.result
        );
        assert!(
            client.is_connected(),
            "a clean attempt keeps its connection"
        );
        let corrupt = InjectedFault::new(
            FaultKind::Corrupt {
                region: Region::Payload,
                bytes: 4,
            },
            7,
        );
        let faulted = client.attempt(&base(), [2; 16], Some(corrupt)).await;
        assert_ne!(faulted.verdict().outcome, Outcome::Activated);
        assert!(!client.is_connected(), "a faulted connection is closed");
        let again = client.attempt(&base(), [3; 16], None).await;
        assert_eq!(
            again.verdict().outcome,
            Outcome::Activated,
            "{:?}",
            again.result
        );
        // A fault that does not fail the attempt still leaves its connection behind.
        let delay = InjectedFault::new(
            FaultKind::Delay {
                on: Direction::Receive,
                delay: std::time::Duration::from_millis(1),
                jitter: std::time::Duration::ZERO,
            },
            8,
        );
        let delayed = client.attempt(&base(), [4; 16], Some(delay)).await;
        assert_eq!(
            delayed.verdict().outcome,
            Outcome::Activated,
            "{:?}",
            delayed.result
        );
        assert!(
            !client.is_connected(),
            "a connection a fault touched is closed"
        );
        host.shutdown().await;
    }
}
