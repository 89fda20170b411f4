//! `host`: the reference KMS host: its behaviour model (spec 10, 8.2, 5.2/5.3) and the tokio
//! server around it.
//!
//! The model is plain state: it takes a decoded [`RequestBase`](crate::wire::RequestBase) and
//! the host's `now` and returns a [`Decision`] — a [`ResponseBase`](crate::wire::ResponseBase)
//! to encode, or an HRESULT to put in the response stub. It opens no socket, starts no task,
//! reads no clock and draws no random number: time is passed in, and every random choice
//! (key ids, activation dates, charged-start CMIDs) comes from [`HostConfig::seed`]. Tests run
//! thousands of clients through it in virtual time, without sockets.
//!
//! ```text
//!            RequestBase, now                 HostConfig (host key, intervals, …)
//!                   │                                   │
//!                   ▼                                   ▼
//!   HostModel::handle ── version / N / clock / host key ─► Decision::Refuse(Refusal → HRESULT)
//!                   │
//!                   └─ ClientTable (per application) ───► Decision::Respond(ModelResponse {
//!                        unique CMIDs, 30-day expiry,          base: ResponseBase, application,
//!                        count ≤ 2 × N                         activated })
//! ```
//!
//! - [`keys`]: host keys (CSVLKs), the KMS counted IDs each accepts, `--host-key` lookup.
//! - [`epid`]: ePID generation, parsing and plausibility checks (also for real hosts' ePIDs).
//! - [`table`]: one application's client table: counting, expiry, the 2 × N bound.
//! - [`config`]: [`HostConfig`] (the HwID it sends is [`crate::wire::kms::HwId`]).
//! - [`model`]: [`HostModel`], the decision function and its counters.
//! - [`state`]: `--state FILE` persistence, the only file I/O in this module.
//! - [`server`]: the tokio server around the model (`kmsload host`, the in-process host).
//!
//! Left out on purpose: DCE/RPC, the KMS V4/V5/V6 envelopes and their crypto (in `wire`).
//! The tokio server ([`server`]) is a shell around the model: it moves bytes between sockets
//! and [`crate::wire::session::HostSession`], and calls only [`HostModel::handle`] and
//! [`HostModel::hwid`] under a short lock. Refusals a real host may send but the references
//! never do (0xC004F039, 0xC004F041) and vlmcsd's 0xC004D104 are not modelled.
#![warn(missing_docs)]

pub mod config;
pub mod epid;
pub mod keys;
pub mod model;
mod rng;
pub mod server;
pub mod state;
pub mod table;

pub use config::{ConfigError, HostConfig};
pub use epid::{Epid, EpidError, EpidIssue, HostBuild, KeyDate};
pub use keys::{Application, HostKey, UnknownHostKey};
pub use model::{Decision, HostCounters, HostModel, ModelResponse, ModelSummary, Refusal};
pub use server::{
    BackgroundHost, Clock, HostHandle, HostRuntime, Logger, ServerError, ServerOptions,
    ServerReport, ServerStats, SystemClock, VirtualClock, start, start_background,
};
pub use state::{HostState, StateError, StateProblem};
pub use table::ClientTable;
