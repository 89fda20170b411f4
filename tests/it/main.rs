//! The integration tests: one binary, one module per area, helpers shared through [`util`].
//! `cargo test --test it AREA::` runs one area (e.g. `cargo test --test it host_e2e::`).
//!
//! - `architecture`: ARCHITECTURE.md's dependency direction and use table, against the code.
//! - `cli_catalog`: `kmsload products` and `kmsload explain` through the built binary.
//! - `discover`: DNS SRV discovery against a real dnsmasq, and `kmsload activate --discover`.
//! - `failover`: several in-process hosts (`[[hosts]]`) with outage windows, and runs whose
//!   clients fail over between them through a scenario's static SRV records.
//! - `faults`: injected faults against a real loopback host.
//! - `fuzz_corpus`: the fuzz corpus replayed, and its seeds kept current.
//! - `host_e2e`: the client and `kmsload activate` against the reference host.
//! - `pair`: the client's session against the host model in memory: no socket, virtual time.
//! - `netns`: `kmsload run` across a kernel-shaped veth link between network namespaces.
//! - `report_html`: report.html in headless Chromium, the text twin, `kmsload compare`.
//! - `reports`: what people read: report.md, report.html and the console in the scenario's
//!   terms, numbers that agree, the capacity sentence, the live progress lines.
//! - `run_e2e`: `kmsload run` end to end: result files, accounting, gates, exit codes.
//! - `slurm`: a one-node Slurm cluster on loopback, brought up by the test, running the
//!   shipped job-array and merge scripts.
//! - `shards`: `kmsload run --shard` and `kmsload merge` against one host, and the Kubernetes
//!   Jobs' command lines.
//! - `deploy`: the Dockerfile and the Kubernetes manifests (schema-validated).
//! - `scaleout`: what `slurm` and `shards` share (the cluster fixture, a host child, readers).
//! - `validate`: `kmsload validate` against `kmsload host` in each configuration.
//! - `verdicts`: gates over activated attempts, abort, signals, the duration bound, and
//!   result files that hold every attempt however a run ends.
//! - `system`: run, skip with one line, or fail under CI=true when a system component is
//!   missing (Chromium, root for namespaces, iproute2, Slurm).
//! - `fixture`: a synthetic results directory that the report tests read.

mod architecture;
mod cli_catalog;
mod deploy;
mod discover;
mod failover;
mod faults;
mod fixture;
mod fuzz_corpus;
mod host_e2e;
mod netns;
mod pair;
mod report_html;
mod reports;
mod run_e2e;
mod scaleout;
mod shards;
mod slurm;
mod system;
mod util;
mod validate;
mod verdicts;
