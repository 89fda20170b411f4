//! The fault rules a run applies (`[[faults]]` in a scenario, `--fault` on the command line):
//! what each fault does and where. `scenario` builds them from the file; the rest of
//! [`crate::faults`] decides per attempt and applies them to a connection.

use std::time::Duration;

use serde::Deserialize;

/// One fault rule (`[[faults]]`): applied to an attempt with `probability`, drawn from
/// (seed, client index, attempt), while the run's elapsed time is inside `window`.
#[derive(Debug, Clone, PartialEq)]
pub struct FaultRule {
    /// What happens.
    pub kind: FaultKind,
    /// Chance per attempt, 0 to 1.
    pub probability: f64,
    /// Active only in this part of the run; `None`: the whole run.
    pub window: Option<Window>,
}

/// A span of run time, `start <= t < end`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Window {
    /// Start, from the beginning of the run.
    pub start: Duration,
    /// End (exclusive), > `start`.
    pub end: Duration,
}

impl Window {
    /// Whether `elapsed` is inside the window.
    pub fn contains(&self, elapsed: Duration) -> bool {
        self.start <= elapsed && elapsed < self.end
    }
}

/// What a fault does to a connection.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FaultKind {
    /// Wait before connecting, or before each write or read is passed on.
    Delay {
        /// Where.
        on: Direction,
        /// Fixed part.
        delay: Duration,
        /// Plus a uniformly random extra in `[0, jitter]`.
        jitter: Duration,
    },
    /// The connect fails at once as refused.
    Refuse,
    /// The connect never completes (ends in the connect timeout).
    Blackhole,
    /// The connection is reset (RST) while receiving.
    Reset {
        /// Where in the received bytes.
        at: CutPoint,
    },
    /// The host's side closes (FIN) while a response is incomplete.
    Truncate {
        /// Where in the received bytes.
        at: CutPoint,
    },
    /// Bytes of the activation response are flipped before the client sees them.
    Corrupt {
        /// Which part of the response.
        region: Region,
        /// How many bytes (>= 1).
        bytes: u32,
    },
    /// Nothing arrives during a phase for `duration` (`None`: until the phase times out).
    Stall {
        /// Which reply stalls.
        phase: StallPhase,
        /// How long; longer than the phase timeout makes it a timeout.
        duration: Option<Duration>,
    },
    /// Bytes pass `chunk` at a time, one chunk per `every`.
    Trickle {
        /// Send or receive (not connect).
        on: Direction,
        /// Bytes per chunk (>= 1).
        chunk: u32,
        /// Interval between chunks (> 0).
        every: Duration,
    },
}

impl FaultKind {
    /// The `kind` value as written in files and reports.
    pub fn name(&self) -> &'static str {
        match self {
            Self::Delay { .. } => "delay",
            Self::Refuse => "refuse",
            Self::Blackhole => "blackhole",
            Self::Reset { .. } => "reset",
            Self::Truncate { .. } => "truncate",
            Self::Corrupt { .. } => "corrupt",
            Self::Stall { .. } => "stall",
            Self::Trickle { .. } => "trickle",
        }
    }
}

/// Where a delay or trickle applies.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Direction {
    /// Before the TCP connect.
    Connect,
    /// Client → host bytes.
    Send,
    /// Host → client bytes.
    Receive,
}

/// Where a reset or truncation cuts the received byte stream.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CutPoint {
    /// After this many bytes received on the connection.
    AfterBytes(u64),
    /// At a random point (seeded) inside the next PDU received.
    MidPdu,
}

/// The part of a response a corruption hits.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Region {
    /// The 16-byte DCE/RPC common header.
    RpcHeader,
    /// The response stub outside the KMS payload (alloc hint, pointers, sizes, HRESULT).
    Stub,
    /// The KMS response payload (encrypted in V5/V6).
    Payload,
}

/// The reply that a stall holds back.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum StallPhase {
    /// The bind_ack.
    Bind,
    /// The activation response.
    Request,
}
