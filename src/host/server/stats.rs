//! The server's counters (connections, requests, drops), kept as atomics by the connection
//! tasks and read as a [`ServerStats`] snapshot, and the [`ServerReport`] of a stopped host.

use std::fmt;
use std::sync::atomic::{AtomicU64, Ordering};

use crate::host::model::ModelSummary;

/// What the server did, beyond the model's counters.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, serde::Serialize)]
pub struct ServerStats {
    /// Connections accepted.
    pub connections: u64,
    /// Connections open now.
    pub open: u64,
    /// Most connections open at once.
    pub peak_open: u64,
    /// KMS requests received (each answered with a response or an HRESULT).
    pub requests: u64,
    /// Answered with a KMS response.
    pub responses: u64,
    /// Answered with an HRESULT (model refusals and undecodable payloads).
    pub refused: u64,
    /// Payloads that did not decode (answered 0x8007000D).
    pub invalid: u64,
    /// Fault PDUs sent (unknown context, bad opnum).
    pub faults: u64,
    /// Connections dropped for bytes that are not DCE/RPC or a PDU the session refused.
    pub dropped_malformed: u64,
    /// Connections dropped at the idle timeout.
    pub dropped_idle: u64,
    /// Connections the peer closed in the middle of a PDU, or that failed.
    pub dropped_other: u64,
    /// `accept` failures (e.g. out of file descriptors).
    pub accept_errors: u64,
}

impl fmt::Display for ServerStats {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "connections {} (peak {} open)  requests {}  responses {}  refused {} ({} undecodable)  faults {}  dropped: malformed {}, idle {}, other {}",
            self.connections,
            self.peak_open,
            self.requests,
            self.responses,
            self.refused,
            self.invalid,
            self.faults,
            self.dropped_malformed,
            self.dropped_idle,
            self.dropped_other,
        )?;
        if self.accept_errors > 0 {
            write!(f, "  accept errors {}", self.accept_errors)?;
        }
        Ok(())
    }
}

#[derive(Debug, Default)]
pub(super) struct Stats {
    pub(super) connections: AtomicU64,
    pub(super) open: AtomicU64,
    pub(super) peak_open: AtomicU64,
    pub(super) requests: AtomicU64,
    pub(super) responses: AtomicU64,
    pub(super) refused: AtomicU64,
    pub(super) invalid: AtomicU64,
    pub(super) faults: AtomicU64,
    pub(super) dropped_malformed: AtomicU64,
    pub(super) dropped_idle: AtomicU64,
    pub(super) dropped_other: AtomicU64,
    pub(super) accept_errors: AtomicU64,
}

pub(super) fn bump(counter: &AtomicU64) {
    counter.fetch_add(1, Ordering::Relaxed);
}

impl Stats {
    pub(super) fn snapshot(&self) -> ServerStats {
        let get = |c: &AtomicU64| c.load(Ordering::Relaxed);
        ServerStats {
            connections: get(&self.connections),
            open: get(&self.open),
            peak_open: get(&self.peak_open),
            requests: get(&self.requests),
            responses: get(&self.responses),
            refused: get(&self.refused),
            invalid: get(&self.invalid),
            faults: get(&self.faults),
            dropped_malformed: get(&self.dropped_malformed),
            dropped_idle: get(&self.dropped_idle),
            dropped_other: get(&self.dropped_other),
            accept_errors: get(&self.accept_errors),
        }
    }
}

/// What a stopped host reports.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct ServerReport {
    /// Connection and request statistics.
    pub stats: ServerStats,
    /// The model's summary at shutdown.
    pub summary: ModelSummary,
    /// The final `--state` save failed with this message.
    pub state_error: Option<String>,
    /// Log lines dropped because the log sink could not keep up (set by the caller that owns
    /// the [`super::LogWriter`]; 0 without one).
    pub log_lines_dropped: u64,
    /// Log lines still queued when the host stopped, because the log sink did not take them
    /// within the exit grace ([`super::LOG_EXIT_GRACE`]; e.g. stderr piped to a reader that
    /// stopped reading). Set like `log_lines_dropped`.
    pub log_lines_unwritten: u64,
}

impl fmt::Display for ServerReport {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.summary)?;
        writeln!(f, "{}", self.stats)?;
        if let Some(e) = &self.state_error {
            writeln!(f, "state not saved: {e}")?;
        }
        if self.log_lines_dropped > 0 {
            writeln!(
                f,
                "log lines dropped {} (the log sink was slower than the host)",
                self.log_lines_dropped
            )?;
        }
        if self.log_lines_unwritten > 0 {
            writeln!(
                f,
                "log lines not written {} (the log sink took nothing for {} s after the stop)",
                self.log_lines_unwritten,
                super::LOG_EXIT_GRACE.as_secs()
            )?;
        }
        Ok(())
    }
}
