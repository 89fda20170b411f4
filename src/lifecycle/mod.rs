//! `lifecycle`: a fleet's life in virtual time (`kmsload simulate`). Renewals, retries,
//! validity, count expiry, outages and boot storms over weeks or years of a virtual
//! calendar, computed in seconds of real time, without sockets and without sleeping.
//!
//! ```text
//! scenario.toml ──► spec (hosts, groups, gates) ──► engine ──► SimOutcome ──► results
//!                                                   │  heap of (t, client)      summary.json, daily.csv,
//!   sim::Fleet (identity from seed + index) ────────┤  client: state machine     hourly.csv, report.md,
//!   power (on/off as a function of time) ──────────┤  host: host::HostModel     findings, gates,
//!                                                   ┘  (the reference host's)   --export-peak
//! ```
//!
//! - [`spec`]: the scenario format and its validation (grammar, positions and messages shared
//!   with [`crate::scenario`]).
//! - [`client`]: the Windows KMS client's licensing state machine, with its sources.
//! - [`power`]: when each machine is on (always, office hours, weekly, away, joins, leaves).
//! - [`engine`]: the event loop; every attempt goes through [`crate::host::HostModel::handle`],
//!   the same decision function `kmsload host` uses, so the two cannot disagree.
//! - [`results`]: files, findings, gates and the peak exported as a `run` scenario.
//! - [`html`]: report.html, in the page style of `kmsload run`'s report.
//!
//! Memory: a client costs its [`client::ClientState`] (24 bytes) and one queue entry
//! (16 bytes); identities are derived from (seed, index) by [`crate::sim`] at each attempt.
//! The host model's client tables are bounded by 2 × N per application.

pub mod client;
pub mod engine;
pub mod html;
pub mod power;
pub mod results;
pub mod spec;
#[cfg(test)]
mod tests;

pub use engine::{SimOutcome, simulate, simulate_logged};
pub use spec::{LifeOverrides, LifeScenario, load_life, parse_life};
