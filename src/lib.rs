//! kmsload: a KMS client simulator and load tester.
//!
//! kmsload plays synthetic Windows and Office volume-licence clients against a KMS host over
//! TCP/1688, the way real clients do, and reports what the host did: latency per protocol
//! phase, when the activation threshold was reached, and every error code a real client would
//! have shown.
//!
//! # Layout
//!
//! ```text
//! scenario.toml ──► scenario ──► Plan ──► load (one runner, a schedule policy)
//!                                           │ per attempt: sim identity → client → outcome
//!   wire (sans-IO codec) ◄── client (tokio TCP, deadlines, faults) ──► KMS host / host
//!                                           │
//!                                        record ──► report (files, gates → exit code)
//! ```
//!
//! - [`wire`]: DCE/RPC and KMS V4/V5/V6 encoding, decoding and crypto; no I/O.
//! - [`catalog`]: products and HRESULT codes, embedded.
//! - [`client`]: one simulated client over TCP, with a deadline on every step and the one
//!   mapping from what happened to the code a real client shows.
//! - [`discover`]: KMS hosts from DNS SRV records as Windows clients find them, with
//!   priority/weight order, failover and the cached host.
//! - [`host`]: the reference KMS host: a behaviour model with an injected clock and a thin
//!   tokio server.
//! - [`sim`]: synthetic client identities derived from (seed, index).
//! - [`scenario`]: the scenario file format and its validation into a plan.
//! - [`load`]: schedules, the runner and its configuration (built by `scenario`).
//! - [`faults`]: network faults on the client side of a connection.
//! - [`record`]: histograms, timelines, tallies, the threshold tracker.
//! - [`report`]: result files and gates.
//! - [`run`]: one whole `kmsload run`, from a plan to its results directory, in-process.
//! - [`validate`]: the pre-rollout checklist (`kmsload validate`).
//! - [`netio`]: PDU framing over tokio streams, shared by the client and the host's server.
//! - [`lifecycle`]: a fleet's life in virtual time (`kmsload simulate`) on the host model.
//! - [`values`]: the one grammar for durations, skews, targets and counts, shared by flags
//!   and scenario files.
//! - [`cli`]: the command line; nothing depends on it.
#![forbid(unsafe_code)]

pub mod catalog;
pub mod cli;
pub mod client;
pub mod discover;
pub mod faults;
pub mod host;
pub mod lifecycle;
pub mod load;
pub mod netio;
pub mod procfs;
pub mod record;
pub mod report;
pub mod run;
pub mod scenario;
pub mod sim;
pub mod validate;
pub mod values;
pub mod wire;
