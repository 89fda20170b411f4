//! The validated, typed plan of a run. Every value here has been checked (ranges, units,
//! cross-key rules) and carries no text left to parse. Built by [`super::parse_str`] /
//! [`super::load_file`]. The runner's part is [`crate::load`]'s own configuration
//! ([`Load`], [`Timeouts`], re-exported here); [`Plan::job`] hands it to the runner with the
//! fleet and the client translated into the simulator's and the client's options.

use std::fmt;
use std::path::PathBuf;
use std::time::Duration;

use serde::Deserialize;
use uuid::Uuid;

use crate::catalog::{Application, Product};
use crate::client::ClientOptions;
pub use crate::faults::{CutPoint, Direction, FaultKind, FaultRule, Region, StallPhase, Window};
pub use crate::load::{Bounds, ConnectionPolicy, Load, LoadModel, Schedule, Stage, Timeouts};
pub use crate::record::EventsMode;
use crate::record::LatencyPhase;
use crate::sim::{self, FleetSpec, ProductWeight};
use crate::values::DisplayDuration;
use crate::wire::Version;
use crate::wire::session::{ClientRpcConfig, NegotiationMode};

/// Seed used when neither the file nor `--seed` gives one. Fixed, so two runs of the same
/// file make the same fleet and the same schedule.
pub const DEFAULT_SEED: u64 = 1;

/// A validated scenario.
#[derive(Debug, Clone, PartialEq)]
pub struct Plan {
    /// Scenario name: the `name` key, else the file stem. Letters, digits, `.`, `_`, `-`.
    pub name: String,
    /// Free text from the `description` key.
    pub description: Option<String>,
    /// The file the plan came from (`None` when parsed from a string without a path).
    pub source: Option<PathBuf>,
    /// Seed of every random choice in the run (fleet, schedule jitter, faults).
    pub seed: u64,
    /// Where the clients connect.
    pub target: Target,
    /// The synthetic clients.
    pub fleet: FleetPlan,
    /// How every client speaks the protocol.
    pub client: ClientPlan,
    /// Arrivals, bounds and connections.
    pub load: Load,
    /// Deadlines per phase, and for stopping.
    pub timeouts: Timeouts,
    /// Pass/fail conditions evaluated on the results (empty: the run passes if it ran).
    pub gates: Vec<Gate>,
    /// `[gates] abort = true`: the gates are also checked once a second during the run, and
    /// the first that fails ends it early (as k6's `abortOnFail`).
    pub gate_abort: Option<GateAbort>,
    /// Network faults injected on the client side.
    pub faults: Vec<FaultRule>,
    /// Output directory (`out` key or `--out`); `None`: the runner's default.
    pub out: Option<PathBuf>,
    /// Which attempts get an events.csv row (`events` key or `--events`).
    pub events: EventsMode,
}

impl Plan {
    /// What the runner runs: this plan's load, deadlines, faults and events, with the fleet
    /// and the client translated into the simulator's and the client's options.
    pub fn job(&self) -> crate::load::Job<'_> {
        crate::load::Job {
            seed: self.seed,
            fleet: self.fleet_spec(),
            client: self.client_options(),
            load: &self.load,
            drain: self.timeouts.drain,
            faults: &self.faults,
            events: self.events,
            // A fact of the machine the run is on: `run` reads it.
            local_ports: None,
        }
    }

    /// The plan's fleet as the simulator's spec.
    pub fn fleet_spec(&self) -> FleetSpec {
        let products = self
            .fleet
            .products
            .iter()
            .map(|share| {
                // Plans hold references into the catalog, so the row is always found.
                let mut w =
                    ProductWeight::new(crate::catalog::index_of(share.product), share.weight);
                if share.protocol != share.product.protocol {
                    w.protocol = Some(Version::new(share.protocol));
                }
                w
            })
            .collect();
        let mut spec = FleetSpec::new(self.fleet.size, products);
        spec.vm_fraction = self.fleet.vm_fraction;
        spec.skew = self.fleet.skew.clone();
        spec.reuse = match self.fleet.reuse {
            ClientReuse::Renew => sim::Reuse::Renewals,
            ClientReuse::New => sim::Reuse::NewClients,
        };
        if let Some(n) = self.fleet.cmid_pool {
            spec.cmid = sim::CmidSource::Pool(n);
        }
        spec
    }

    /// The client options the plan asks for.
    pub fn client_options(&self) -> ClientOptions {
        ClientOptions {
            rpc: ClientRpcConfig {
                mode: match self.client.ndr {
                    NdrMode::Windows => NegotiationMode::Windows,
                    NdrMode::Ndr32Only => NegotiationMode::Ndr32Only,
                    NdrMode::Ndr64Preferred => NegotiationMode::Ndr64Preferred,
                },
                btfn: self.client.btfn,
                ..ClientRpcConfig::default()
            },
            connect_timeout: self.timeouts.connect,
            bind_timeout: self.timeouts.bind,
            request_timeout: self.timeouts.request,
            keep_alive: matches!(self.load.connection, ConnectionPolicy::KeepAlive { .. }),
        }
    }
}

/// Where clients connect.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Target {
    /// The reference host, started in-process on 127.0.0.1 for this run.
    InProcess(HostOptions),
    /// A host given by `target` / `--target`.
    Remote(RemoteTarget),
    /// Hosts found by each client through DNS SRV records (`discover = "DOMAIN"`).
    Discover(DiscoverTarget),
}

/// `discover = "DOMAIN"` and its keys: how every synthetic client finds its host.
///
/// Non-loopback hosts the discovery finds receive traffic only when confirmed: named in
/// `confirm_target` / `--confirm-target` (several, comma-separated), or all of them with
/// `confirm_discovered = "DOMAIN"` naming the same domain.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DiscoverTarget {
    /// Domain, DNS server, order, host cache, deadlines.
    pub config: crate::discover::DiscoveryConfig,
    /// Which discovered hosts may be contacted.
    pub gate: crate::discover::HostGate,
    /// `[[hosts]]`: reference hosts started in-process for the run, which the records lead
    /// to (through `srv`, or through DNS records naming their addresses and ports).
    pub hosts: Vec<HostOptions>,
    /// `srv`: the SRV records of the domain, standing in for DNS; each leads to one of
    /// `hosts`. `None`: ask DNS.
    pub srv: Option<Vec<StaticSrv>>,
}

/// One record of a scenario's `srv` list.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StaticSrv {
    /// Index of the host in [`DiscoverTarget::hosts`].
    pub host: usize,
    /// Lower is tried first.
    pub priority: u16,
    /// Relative share within a priority.
    pub weight: u16,
}

/// A host given as `host:port`.
///
/// A plan holds a non-loopback target only if it was confirmed (`confirm_target` or
/// `--confirm-target` naming the same host): validation refuses it otherwise.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RemoteTarget {
    /// Host name or IP address as written (IPv6 without brackets).
    pub host: String,
    /// TCP port (1688 when not written).
    pub port: u16,
    /// True for 127.0.0.0/8, ::1 and `localhost`; everything else needed a confirmation.
    pub loopback: bool,
}

impl RemoteTarget {
    /// `host:port`, with IPv6 addresses in brackets: ready for `TcpStream::connect` /
    /// `lookup_host`.
    pub fn addr(&self) -> String {
        if self.host.contains(':') {
            format!("[{}]:{}", self.host, self.port)
        } else {
            format!("{}:{}", self.host, self.port)
        }
    }
}

/// Options of an in-process reference host (`[host]`, or one `[[hosts]]` entry).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HostOptions {
    /// Its name: the SRV target clients look up (`name`; `kms01`, `kms02`, ... by position).
    pub name: String,
    /// Loopback address listened on: 127.0.0.1 for `[host]`; for `[[hosts]]`, 127.0.0.2,
    /// 127.0.0.3, ... in order, one address each as real hosts have.
    pub address: std::net::Ipv4Addr,
    /// Port; 0 lets the system choose a free one.
    pub port: u16,
    /// Outage windows (`down`), sorted and disjoint, from the run's start: the host is a
    /// stopped service during each (see [`crate::host::HostHandle::set_down`]).
    pub down: Vec<Window>,
    /// Start with a charged client table (the first client already sees the threshold)
    /// instead of an empty one, as a fresh real host has.
    pub charged: bool,
    /// Which KMS counted IDs the host's key covers; others get 0xC004F042.
    pub host_key: HostKeyPlan,
    /// Refuse request times more than 4 h from the host clock with 0xC004F06C (10.4).
    pub time_check: bool,
    /// Accept NDR64 (and then reject NDR32 in the bind, as Windows does; 4.9).
    pub ndr64: bool,
    /// Acknowledge bind-time feature negotiation.
    pub btfn: bool,
    /// Close the connection after every response (like py-kms) instead of keeping it.
    pub close_after_response: bool,
    /// `VLActivationInterval` sent to clients (whole minutes, 15 min to 30 d).
    pub activation_interval: Duration,
    /// `VLRenewalInterval` sent to clients (whole minutes, 15 min to 30 d).
    pub renewal_interval: Duration,
}

/// The host key group of the in-process host (kms-protocol.md 10.7).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum HostKeyPlan {
    /// Every volume KMS counted ID: retail, preview and pre-release ones are refused, as a
    /// genuine host refuses them (like vlmcsd `-K2`).
    VolumeOnly,
    /// A real host key (CSVLK) group, e.g. "Windows Server 2016", or `all` (the newest key of
    /// every line): the KMS counted IDs those keys cover, as `kmsload host --host-key`
    /// accepts them. Like a real host, no group activates retail or preview KMS IDs.
    Group(&'static crate::host::HostKey),
    /// Exactly these KMS counted IDs.
    KmsIds(Vec<Uuid>),
}

impl HostKeyPlan {
    /// Whether a host with this key activates `product`.
    pub fn accepts(&self, product: &Product) -> bool {
        match self {
            Self::VolumeOnly => !is_non_volume_kms_id(&product.kms_id_name),
            Self::Group(key) => crate::host::keys::kms_id(product.kms_id)
                .is_some_and(|kms| key.csvlk_for(kms, false).is_some()),
            Self::KmsIds(ids) => ids.contains(&product.kms_id),
        }
    }
}

/// Retail, preview and pre-release KMS counted IDs, by the catalog's `kms_id_name`.
pub(crate) fn is_non_volume_kms_id(kms_id_name: &str) -> bool {
    ["Retail", "Preview", "Pre-release"]
        .iter()
        .any(|w| kms_id_name.contains(w))
}

/// The synthetic clients (`[fleet]`).
#[derive(Debug, Clone, PartialEq)]
pub struct FleetPlan {
    /// Number of distinct synthetic clients (client indices `0..size`).
    pub size: u64,
    /// Product mix: each client's product is drawn by weight from (seed, index).
    pub products: Vec<ProductShare>,
    /// Fraction of clients that say they are virtual machines, 0 to 1.
    pub vm_fraction: f64,
    /// Each client's clock offset in seconds, drawn from (seed, index) (`[fleet.skew]`).
    pub skew: sim::SkewDist,
    /// Whether attempts come back to the same clients.
    pub reuse: ClientReuse,
    /// With `Some(n)`, CMIDs come from a fixed pool of `n` that does not depend on the seed
    /// (client `i` uses pool entry `i mod n`), so repeated runs against a real host reuse
    /// the same table entries instead of adding new ones.
    pub cmid_pool: Option<u64>,
}

/// One product of the mix.
#[derive(Debug, Clone, PartialEq)]
pub struct ProductShare {
    /// The catalog row.
    pub product: &'static Product,
    /// Relative weight (> 0); shares are `weight / sum of weights`.
    pub weight: f64,
    /// Protocol major version the client uses: 4, 5 or 6 (catalog value unless overridden
    /// per product or for the whole fleet).
    pub protocol: u16,
}

/// Whether attempts re-use clients.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum ClientReuse {
    /// Attempt `k` uses client `k mod size`: the first pass activates, later passes renew
    /// with the same CMIDs.
    Renew,
    /// Attempt `k` uses client `k`: every attempt is a machine the host has not seen. The
    /// fleet runs out after `size` attempts, which ends the run.
    New,
}

/// Client protocol options (`[client]`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ClientPlan {
    /// Transfer syntaxes offered and used (4.9).
    pub ndr: NdrMode,
    /// Offer bind-time feature negotiation in the bind.
    pub btfn: bool,
}

/// Transfer-syntax mode of the clients (kms-protocol.md 4.9).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum NdrMode {
    /// NDR32 + NDR64 (+ BTFN) in the bind, alter_context when needed, first request NDR32,
    /// later ones NDR64: what Windows does.
    Windows,
    /// NDR32 only.
    Ndr32Only,
    /// Every request NDR64 when the host accepts it.
    Ndr64Preferred,
}

/// When the gates may end a run early (`[gates] abort`, `abort_grace`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct GateAbort {
    /// No gate is checked before this much of the run has passed: the first seconds of a
    /// run (connections opening, a host below its threshold) should not end it.
    pub grace: Duration,
}

/// Which attempts a latency gate measures (`of` in a `[gates] latency` entry).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum LatencyOf {
    /// Attempts that activated (the default): a host that fails fast must not pass a
    /// latency gate.
    #[default]
    Activated,
    /// Attempts the host answered with an error code.
    NotActivated,
    /// Attempts that got no valid answer (connect, timeout, bad bytes).
    Failed,
    /// Every attempt, whatever its outcome.
    All,
}

impl LatencyOf {
    /// Name as written in files and reports.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Activated => "activated",
            Self::NotActivated => "not-activated",
            Self::Failed => "failed",
            Self::All => "all",
        }
    }
}

/// A pass/fail condition on the results (`[gates]`). Any failed gate: exit 1.
#[derive(Debug, Clone, PartialEq)]
pub enum Gate {
    /// The `percentile` of `phase` latency, over the attempts of kind `of` (activated ones
    /// by default) that reached that phase, is below `below`.
    Latency {
        /// Which phase.
        phase: LatencyPhase,
        /// Which attempts.
        of: LatencyOf,
        /// In (0, 100], e.g. 99 or 99.9.
        percentile: f64,
        /// Strict upper limit.
        below: Duration,
    },
    /// Attempts whose code is not 0 (S_OK), over all attempts, at most this fraction (0..=1).
    MaxErrorRate(f64),
    /// The host reported a count that met the clients' N policy by the time at most
    /// `clients` distinct clients of `application` had contacted it (every application the
    /// fleet uses when `None`).
    ThresholdWithin {
        /// The application counted, or all of the fleet's.
        application: Option<Application>,
        /// Distinct clients.
        clients: u32,
    },
    /// Every attempt ended with one of these codes (0 = S_OK).
    AllowedCodes(Vec<u32>),
    /// Completed attempts per second over the run at least this.
    MinAchievedRate(f64),
}

impl fmt::Display for Gate {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Latency {
                phase,
                of,
                percentile,
                below,
            } => {
                write!(
                    f,
                    "{} p{percentile} < {}",
                    phase.as_str(),
                    DisplayDuration(*below)
                )?;
                match of {
                    LatencyOf::Activated => Ok(()),
                    other => write!(f, " ({})", other.as_str()),
                }
            }
            Self::MaxErrorRate(r) => write!(f, "error rate <= {r}"),
            Self::ThresholdWithin {
                application,
                clients,
            } => {
                let app = application.map_or("every application", Application::as_str);
                write!(f, "threshold reached within {clients} clients ({app})")
            }
            Self::AllowedCodes(codes) => {
                f.write_str("only codes ")?;
                for (i, c) in codes.iter().enumerate() {
                    write!(f, "{}{c:#010X}", if i > 0 { ", " } else { "" })?;
                }
                Ok(())
            }
            Self::MinAchievedRate(r) => write!(f, "achieved rate >= {r}/s"),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn secs(s: u64) -> Duration {
        Duration::from_secs(s)
    }

    #[test]
    fn window_is_half_open() {
        let w = Window {
            start: secs(20),
            end: secs(40),
        };
        assert!(!w.contains(Duration::from_millis(19_999)));
        assert!(w.contains(secs(20)));
        assert!(!w.contains(secs(40)));
    }

    #[test]
    fn remote_addr_brackets_ipv6() {
        let t = |host: &str| RemoteTarget {
            host: host.into(),
            port: 1688,
            loopback: true,
        };
        assert_eq!(t("::1").addr(), "[::1]:1688");
        assert_eq!(t("127.0.0.1").addr(), "127.0.0.1:1688");
    }

    #[test]
    fn host_keys_decide_by_kms_id() {
        let all = crate::catalog::products();
        let retail = all
            .iter()
            .find(|p| p.kms_id_name.contains("Retail"))
            .unwrap();
        let volume = all.iter().find(|p| p.name == "Windows 10/11 Pro").unwrap();
        let every = HostKeyPlan::Group(crate::host::HostKey::lookup("all").unwrap());
        assert!(!every.accepts(retail), "no real host key activates retail");
        assert!(every.accepts(volume));
        assert!(!HostKeyPlan::VolumeOnly.accepts(retail));
        assert!(HostKeyPlan::VolumeOnly.accepts(volume));
        assert!(HostKeyPlan::KmsIds(vec![volume.kms_id]).accepts(volume));
        assert!(!HostKeyPlan::KmsIds(vec![volume.kms_id]).accepts(retail));
    }

    #[test]
    fn gates_print_one_line() {
        let g = Gate::Latency {
            phase: LatencyPhase::Total,
            of: LatencyOf::Activated,
            percentile: 99.0,
            below: secs(1),
        };
        assert_eq!(g.to_string(), "total p99 < 1s");
        let g = Gate::Latency {
            phase: LatencyPhase::Connect,
            of: LatencyOf::Failed,
            percentile: 99.9,
            below: secs(2),
        };
        assert_eq!(g.to_string(), "connect p99.9 < 2s (failed)");
        assert_eq!(
            Gate::AllowedCodes(vec![0, 0xC004F06C]).to_string(),
            "only codes 0x00000000, 0xC004F06C"
        );
    }
}
