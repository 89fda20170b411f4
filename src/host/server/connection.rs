//! One connection: whole PDUs from [`crate::netio::PduReader`] under the idle deadline, each
//! handed to the connection's [`HostSession`]; KMS payloads go to the model through
//! [`ServerShared::answer`]; each answer is one write under the same deadline.
//!
//! A connection ends normally when the peer closes on a PDU boundary, the host stops, or
//! (`close_after_response`) after its first answer; it is dropped, with a [`DropReason`], for
//! bytes that are not DCE/RPC, a PDU the session refuses, a close in the middle of a PDU, a
//! deadline or a socket error.

use std::net::SocketAddr;
use std::time::Duration;

use tokio::io::AsyncWriteExt;
use tokio::net::TcpStream;
use tokio::sync::watch;
use tokio::time::Instant;

use super::ServerShared;
use super::listener::stopped;
use super::log::DropReason;
use super::stats::bump;
use crate::host::rng::SplitMix64;
use crate::netio::{PduReadError, PduReader};
use crate::wire::rpc::{Header, Ptype, field};
use crate::wire::session::{HostAction, HostSession};

/// Serves one connection until it closes normally (`Ok`) or is dropped (`Err`).
pub(super) async fn serve(
    shared: &ServerShared,
    mut stream: TcpStream,
    peer: SocketAddr,
    seed: u64,
    mut stop: watch::Receiver<bool>,
) -> Result<(), DropReason> {
    let mut rng = SplitMix64::new(seed, "connection");
    // The truncation keeps 32 random bits.
    let mut session = HostSession::new(shared.rpc.clone(), rng.next_u64() as u32);
    // No buffer until bytes arrive (see `PduReader::next_pdu`).
    let mut reader = PduReader::default();
    loop {
        // Each PDU must arrive whole within the idle timeout. A PDU already buffered is served
        // even when the host is stopping; the stop ends only a wait for more bytes.
        let deadline = deadline_after(shared.idle_timeout);
        let read = tokio::select! {
            biased;
            () = stopped(&mut stop), if !reader.has_whole_pdu() => return Ok(()),
            read = tokio::time::timeout_at(deadline, reader.next_pdu(&stream)) => read,
        };
        let pdu = match read {
            Ok(Ok(pdu)) => pdu,
            Ok(Err(PduReadError::Closed { partial: false })) => return Ok(()),
            Ok(Err(PduReadError::Closed { partial: true })) => return Err(DropReason::Truncated),
            Ok(Err(PduReadError::Framing(e))) => return Err(DropReason::Framing(e)),
            Ok(Err(PduReadError::Io { error, .. })) => return Err(DropReason::Io(error.kind())),
            Err(_) => return Err(DropReason::IdleTimeout),
        };
        let is_request = Header::new_checked(pdu).is_ok_and(|h| h.ptype() == Ptype::REQUEST);
        let action = session.handle_pdu(pdu, |payload| shared.answer(payload, peer, &mut rng));
        let bytes = match action {
            HostAction::Send(bytes) => bytes,
            HostAction::Close(reason) => return Err(DropReason::Rejected(reason)),
        };
        if bytes.get(field::PTYPE) == Some(&Ptype::FAULT.0) {
            bump(&shared.stats.faults);
        }
        let write_deadline = deadline_after(shared.idle_timeout);
        match tokio::time::timeout_at(write_deadline, stream.write_all(&bytes)).await {
            Ok(Ok(())) => {}
            Ok(Err(e)) => return Err(DropReason::Io(e.kind())),
            Err(_) => return Err(DropReason::WriteTimeout),
        }
        if is_request && shared.close_after_response {
            return Ok(());
        }
    }
}

/// `now + d`, or a time so far ahead it is never reached when that does not fit an
/// [`Instant`]: a huge idle timeout given as a library option must not panic a connection.
pub(super) fn deadline_after(d: Duration) -> Instant {
    let now = Instant::now();
    now.checked_add(d)
        .or_else(|| now.checked_add(FAR_FUTURE))
        .unwrap_or(now)
}

/// About 30 years: what "never" means for a deadline.
const FAR_FUTURE: Duration = Duration::from_secs(30 * 365 * 86_400);

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn deadlines_never_overflow() {
        let now = Instant::now();
        assert!(deadline_after(Duration::MAX) > now + Duration::from_secs(86_400 * 365));
        assert!(deadline_after(Duration::from_secs(u64::MAX / 2)) > now);
        let d = deadline_after(Duration::from_secs(5));
        assert!(d >= now + Duration::from_secs(5) && d < now + Duration::from_secs(60));
    }
}
