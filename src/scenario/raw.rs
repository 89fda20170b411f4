//! The scenario file as written: serde structs that only check shape (known keys, types,
//! enum names). Every field is optional here, so defaults and cross-key rules live in one
//! place, `validate`, which also knows each key's line.

use std::fmt;

use serde::Deserialize;
use serde::de::{self, Deserializer, SeqAccess, Visitor};

use super::plan::{ClientReuse, Direction, EventsMode, LatencyOf, NdrMode, Region, StallPhase};
use crate::catalog::Application;
use crate::record::LatencyPhase;

/// The whole file.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct RawScenario {
    pub(crate) name: Option<String>,
    pub(crate) description: Option<String>,
    pub(crate) target: Option<String>,
    pub(crate) confirm_target: Option<String>,
    pub(crate) discover: Option<String>,
    pub(crate) dns_server: Option<String>,
    pub(crate) srv_order: Option<String>,
    pub(crate) host_cache: Option<bool>,
    pub(crate) dns_ttl: Option<String>,
    pub(crate) dns_timeout: Option<String>,
    pub(crate) confirm_discovered: Option<String>,
    pub(crate) seed: Option<u64>,
    pub(crate) out: Option<String>,
    pub(crate) events: Option<EventsMode>,
    pub(crate) host: Option<RawHost>,
    #[serde(default)]
    pub(crate) hosts: Vec<RawHost>,
    pub(crate) srv: Option<Vec<RawSrv>>,
    pub(crate) fleet: Option<RawFleet>,
    pub(crate) client: Option<RawClient>,
    pub(crate) load: Option<RawLoad>,
    pub(crate) timeouts: Option<RawTimeouts>,
    pub(crate) gates: Option<RawGates>,
    #[serde(default)]
    pub(crate) faults: Vec<RawFault>,
}

/// `[host]`, or one `[[hosts]]` entry: an in-process reference host.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct RawHost {
    pub(crate) name: Option<String>,
    pub(crate) down: Option<Vec<RawDown>>,
    pub(crate) port: Option<u16>,
    pub(crate) charged: Option<bool>,
    pub(crate) host_key: Option<RawHostKey>,
    pub(crate) time_check: Option<bool>,
    pub(crate) ndr64: Option<bool>,
    pub(crate) btfn: Option<bool>,
    pub(crate) close_after_response: Option<bool>,
    pub(crate) activation_interval: Option<String>,
    pub(crate) renewal_interval: Option<String>,
}

/// One outage window of an in-process host: `{ from = "10s", for = "20s" }`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct RawDown {
    pub(crate) from: String,
    #[serde(rename = "for")]
    pub(crate) length: String,
}

/// One entry of `srv`: a static SRV record naming a `[[hosts]]` entry.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct RawSrv {
    pub(crate) host: String,
    pub(crate) priority: Option<u16>,
    pub(crate) weight: Option<u16>,
}

/// `[fleet]`.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct RawFleet {
    pub(crate) size: Option<u64>,
    pub(crate) products: Option<Vec<RawProduct>>,
    pub(crate) vm_fraction: Option<f64>,
    pub(crate) protocol: Option<u16>,
    pub(crate) skew: Option<RawSkew>,
    pub(crate) reuse: Option<ClientReuse>,
    pub(crate) cmid_pool: Option<u64>,
}

/// One entry of `[fleet] products`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct RawProduct {
    pub(crate) product: String,
    pub(crate) weight: Option<f64>,
    pub(crate) protocol: Option<u16>,
}

/// `[fleet.skew]`.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct RawSkew {
    pub(crate) kind: Option<SkewKind>,
    pub(crate) offset: Option<String>,
    pub(crate) min: Option<String>,
    pub(crate) max: Option<String>,
    pub(crate) mean: Option<String>,
    pub(crate) stddev: Option<String>,
    pub(crate) offsets: Option<Vec<String>>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub(crate) enum SkewKind {
    None,
    Fixed,
    Uniform,
    Normal,
    List,
}

/// `[client]`.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct RawClient {
    pub(crate) ndr: Option<NdrMode>,
    pub(crate) btfn: Option<bool>,
}

/// `[load]`.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct RawLoad {
    pub(crate) model: Option<Model>,
    pub(crate) rate: Option<f64>,
    pub(crate) start_rate: Option<f64>,
    pub(crate) stages: Option<Vec<RawStage>>,
    pub(crate) bursts: Option<RawBursts>,
    pub(crate) clients: Option<u32>,
    pub(crate) think_time: Option<String>,
    pub(crate) duration: Option<String>,
    pub(crate) attempts: Option<u64>,
    pub(crate) connection: Option<Connection>,
    pub(crate) requests_per_connection: Option<u32>,
    pub(crate) source_addresses: Option<Vec<String>>,
    pub(crate) max_in_flight: Option<u32>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub(crate) enum Model {
    Open,
    Closed,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub(crate) enum Connection {
    New,
    KeepAlive,
}

/// One entry of `[load] stages`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct RawStage {
    pub(crate) duration: String,
    pub(crate) rate: f64,
}

/// `[load.bursts]`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct RawBursts {
    pub(crate) base_rate: Option<f64>,
    pub(crate) burst_rate: f64,
    pub(crate) every: String,
    pub(crate) length: String,
}

/// `[timeouts]`.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct RawTimeouts {
    pub(crate) connect: Option<String>,
    pub(crate) bind: Option<String>,
    pub(crate) request: Option<String>,
    pub(crate) drain: Option<String>,
}

/// `[gates]`.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct RawGates {
    pub(crate) latency: Option<Vec<RawLatencyGate>>,
    pub(crate) max_error_rate: Option<f64>,
    pub(crate) threshold: Option<RawThreshold>,
    pub(crate) allowed_codes: Option<Vec<RawCode>>,
    pub(crate) min_achieved_rate: Option<f64>,
    pub(crate) abort: Option<bool>,
    pub(crate) abort_grace: Option<String>,
}

/// One entry of `[gates] latency`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct RawLatencyGate {
    pub(crate) phase: Option<LatencyPhase>,
    pub(crate) of: Option<LatencyOf>,
    pub(crate) percentile: f64,
    pub(crate) below: String,
}

/// `[gates] threshold`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct RawThreshold {
    pub(crate) within: u32,
    pub(crate) application: Option<Application>,
}

/// One `[[faults]]` rule: every parameter of every kind, checked against the kind later.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct RawFault {
    pub(crate) kind: FaultKindName,
    pub(crate) probability: Option<f64>,
    pub(crate) window: Option<Vec<String>>,
    pub(crate) on: Option<Direction>,
    pub(crate) delay: Option<String>,
    pub(crate) jitter: Option<String>,
    pub(crate) after_bytes: Option<u64>,
    pub(crate) region: Option<Region>,
    pub(crate) bytes: Option<u32>,
    pub(crate) phase: Option<StallPhase>,
    pub(crate) duration: Option<String>,
    pub(crate) every: Option<String>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub(crate) enum FaultKindName {
    Delay,
    Refuse,
    Blackhole,
    Reset,
    Truncate,
    Corrupt,
    Stall,
    Trickle,
}

impl FaultKindName {
    /// The parameters (besides `kind`, `probability`, `window`) this kind accepts.
    pub(crate) fn params(self) -> &'static [&'static str] {
        match self {
            Self::Delay => &["on", "delay", "jitter"],
            Self::Refuse | Self::Blackhole => &[],
            Self::Reset | Self::Truncate => &["after_bytes"],
            Self::Corrupt => &["region", "bytes"],
            Self::Stall => &["phase", "duration"],
            Self::Trickle => &["on", "bytes", "every"],
        }
    }

    pub(crate) fn as_str(self) -> &'static str {
        match self {
            Self::Delay => "delay",
            Self::Refuse => "refuse",
            Self::Blackhole => "blackhole",
            Self::Reset => "reset",
            Self::Truncate => "truncate",
            Self::Corrupt => "corrupt",
            Self::Stall => "stall",
            Self::Trickle => "trickle",
        }
    }
}

impl RawFault {
    /// The kind parameters that are set, by name.
    pub(crate) fn params_set(&self) -> Vec<&'static str> {
        let set = [
            ("on", self.on.is_some()),
            ("delay", self.delay.is_some()),
            ("jitter", self.jitter.is_some()),
            ("after_bytes", self.after_bytes.is_some()),
            ("region", self.region.is_some()),
            ("bytes", self.bytes.is_some()),
            ("phase", self.phase.is_some()),
            ("duration", self.duration.is_some()),
            ("every", self.every.is_some()),
        ];
        set.iter().filter(|(_, on)| *on).map(|(k, _)| *k).collect()
    }
}

/// `host_key`: `"all"`, `"volume"`, or a list of KMS counted ID names / products.
#[derive(Debug)]
pub(crate) enum RawHostKey {
    Word(String),
    List(Vec<String>),
}

impl<'de> Deserialize<'de> for RawHostKey {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct HostKeyVisitor;
        impl<'de> Visitor<'de> for HostKeyVisitor {
            type Value = RawHostKey;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("\"all\", \"volume\" or a list of KMS counted ID names")
            }
            fn visit_str<E: de::Error>(self, v: &str) -> Result<RawHostKey, E> {
                Ok(RawHostKey::Word(v.to_owned()))
            }
            fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<RawHostKey, A::Error> {
                let mut v = Vec::new();
                while let Some(s) = seq.next_element::<String>()? {
                    v.push(s);
                }
                Ok(RawHostKey::List(v))
            }
        }
        d.deserialize_any(HostKeyVisitor)
    }
}

/// An entry of `allowed_codes`: an integer or a string (`"0xC004F038"`, `"S_OK"`).
#[derive(Debug)]
pub(crate) enum RawCode {
    Number(i64),
    Text(String),
}

impl<'de> Deserialize<'de> for RawCode {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct CodeVisitor;
        impl Visitor<'_> for CodeVisitor {
            type Value = RawCode;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("an HRESULT such as \"0xC004F038\" or 0")
            }
            fn visit_i64<E: de::Error>(self, v: i64) -> Result<RawCode, E> {
                Ok(RawCode::Number(v))
            }
            fn visit_u64<E: de::Error>(self, v: u64) -> Result<RawCode, E> {
                Ok(RawCode::Number(i64::try_from(v).unwrap_or(i64::MAX)))
            }
            fn visit_str<E: de::Error>(self, v: &str) -> Result<RawCode, E> {
                Ok(RawCode::Text(v.to_owned()))
            }
        }
        d.deserialize_any(CodeVisitor)
    }
}

/// The keys of `[host]` and of each `[[hosts]]` entry.
const HOST_KEYS: &[&str] = &[
    "name",
    "port",
    "charged",
    "host_key",
    "time_check",
    "ndr64",
    "btfn",
    "close_after_response",
    "activation_interval",
    "renewal_interval",
    "down",
];

/// Every section and its keys, for "did you mean" across sections and for the docs test.
/// `tests::key_lists_match_the_structs` keeps this in step with the structs above.
pub(crate) const SECTIONS: &[(&str, &[&str])] = &[
    (
        "",
        &[
            "name",
            "description",
            "target",
            "confirm_target",
            "discover",
            "dns_server",
            "srv_order",
            "host_cache",
            "dns_ttl",
            "dns_timeout",
            "confirm_discovered",
            "seed",
            "out",
            "events",
            "host",
            "hosts",
            "srv",
            "fleet",
            "client",
            "load",
            "timeouts",
            "gates",
            "faults",
        ],
    ),
    ("host", HOST_KEYS),
    ("host.down", &["from", "for"]),
    ("hosts", HOST_KEYS),
    ("hosts.down", &["from", "for"]),
    ("srv", &["host", "priority", "weight"]),
    (
        "fleet",
        &[
            "size",
            "products",
            "vm_fraction",
            "protocol",
            "skew",
            "reuse",
            "cmid_pool",
        ],
    ),
    ("fleet.products", &["product", "weight", "protocol"]),
    (
        "fleet.skew",
        &["kind", "offset", "min", "max", "mean", "stddev", "offsets"],
    ),
    ("client", &["ndr", "btfn"]),
    (
        "load",
        &[
            "model",
            "rate",
            "start_rate",
            "stages",
            "bursts",
            "clients",
            "think_time",
            "duration",
            "attempts",
            "connection",
            "requests_per_connection",
            "source_addresses",
            "max_in_flight",
        ],
    ),
    ("load.stages", &["duration", "rate"]),
    (
        "load.bursts",
        &["base_rate", "burst_rate", "every", "length"],
    ),
    ("timeouts", &["connect", "bind", "request", "drain"]),
    (
        "gates",
        &[
            "latency",
            "max_error_rate",
            "threshold",
            "allowed_codes",
            "min_achieved_rate",
            "abort",
            "abort_grace",
        ],
    ),
    ("gates.latency", &["phase", "of", "percentile", "below"]),
    ("gates.threshold", &["within", "application"]),
    (
        "faults",
        &[
            "kind",
            "probability",
            "window",
            "on",
            "delay",
            "jitter",
            "after_bytes",
            "region",
            "bytes",
            "phase",
            "duration",
            "every",
        ],
    ),
];

/// What a key's value looks like, for hints on type errors.
pub(crate) fn value_hint(key: &str) -> Option<&'static str> {
    Some(match key {
        "duration"
        | "think_time"
        | "connect"
        | "bind"
        | "request"
        | "drain"
        | "every"
        | "length"
        | "delay"
        | "jitter"
        | "below"
        | "stddev"
        | "activation_interval"
        | "renewal_interval" => "durations are strings with a unit, e.g. \"5s\" or \"250ms\"",
        "offset" | "min" | "max" | "mean" | "offsets" => {
            "clock offsets are strings with a unit and an optional sign, e.g. \"-6h\""
        }
        "window" => "a window is two durations, e.g. window = [\"20s\", \"40s\"]",
        "down" => {
            "down = [{ from = \"10s\", for = \"20s\" }]: down from 10 s after the start, for 20 s"
        }
        "from" | "for" => "durations are strings with a unit, e.g. \"10s\"",
        "hosts" => "each host is a [[hosts]] table, e.g. [[hosts]] name = \"kms01\"",
        "srv" => "srv = [{ host = \"kms01\", priority = 0, weight = 0 }, ...]",
        "rate" | "start_rate" | "base_rate" | "burst_rate" | "min_achieved_rate" => {
            "rates are numbers of attempts per second, e.g. 500"
        }
        "probability" | "vm_fraction" | "max_error_rate" => "a fraction from 0 to 1, e.g. 0.05",
        "products" => "products = [{ product = \"Windows 10/11 Pro\", weight = 1 }]",
        "stages" => "stages = [{ duration = \"10s\", rate = 500 }, ...]",
        "latency" => "latency = [{ phase = \"total\", percentile = 99, below = \"1s\" }]",
        "threshold" => "threshold = { within = 25 }",
        "allowed_codes" => "allowed_codes = [0, \"0xC004F038\"]",
        "source_addresses" => "source_addresses = [\"127.0.0.2\", \"127.0.0.3\"]",
        "faults" => "each fault is a [[faults]] table with a kind",
        "seed"
        | "size"
        | "attempts"
        | "clients"
        | "cmid_pool"
        | "max_in_flight"
        | "port"
        | "requests_per_connection"
        | "after_bytes"
        | "bytes"
        | "within" => "a whole number without quotes",
        "charged" | "time_check" | "ndr64" | "btfn" | "close_after_response" => {
            "true or false, without quotes"
        }
        "target" => "target = \"host:port\", e.g. \"kms.example.com:1688\"",
        "protocol" => "the protocol major version: 4, 5 or 6",
        _ => return None,
    })
}
