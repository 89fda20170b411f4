//! The plan written back in the scenario file's own terms, for summary.json's `config` and
//! the reports: `connection = "keep-alive", requests_per_connection = 1000`, `kind = "delay",
//! on = "receive", delay = "200ms", ...` — the keys and values a user wrote (or would write),
//! never Rust's debug notation.
//!
//! Each function gives `key = value` pairs joined by `, `; durations as scenario files write
//! them ([`DisplayDuration`]).

use std::fmt::Write as _;

use crate::scenario::{
    ClientPlan, ClientReuse, ConnectionPolicy, CutPoint, Direction, FaultKind, FaultRule, NdrMode,
    Region, StallPhase,
};
use crate::sim::SkewDist;
use crate::values::{DisplayDuration, DisplaySkew};

/// `"5s"`, quoted as in a file.
fn dur(d: std::time::Duration) -> String {
    format!("\"{}\"", DisplayDuration(d))
}

/// `[load] connection` (and `requests_per_connection`).
pub fn connection(c: &ConnectionPolicy) -> String {
    match c {
        ConnectionPolicy::NewPerActivation => "connection = \"new\"".to_owned(),
        ConnectionPolicy::KeepAlive {
            requests_per_connection: None,
        } => "connection = \"keep-alive\"".to_owned(),
        ConnectionPolicy::KeepAlive {
            requests_per_connection: Some(n),
        } => format!("connection = \"keep-alive\", requests_per_connection = {n}"),
    }
}

/// `[client]`.
pub fn client(c: &ClientPlan) -> String {
    let ndr = match c.ndr {
        NdrMode::Windows => "windows",
        NdrMode::Ndr32Only => "ndr32-only",
        NdrMode::Ndr64Preferred => "ndr64-preferred",
    };
    format!("ndr = \"{ndr}\", btfn = {}", c.btfn)
}

/// `[fleet] reuse`.
pub fn reuse(r: ClientReuse) -> &'static str {
    match r {
        ClientReuse::Renew => "renew",
        ClientReuse::New => "new",
    }
}

/// `[fleet.skew]`.
pub fn skew(s: &SkewDist) -> String {
    match s {
        SkewDist::Fixed(0) => "kind = \"none\"".to_owned(),
        &SkewDist::Fixed(o) => format!("kind = \"fixed\", offset = \"{}\"", DisplaySkew(o)),
        &SkewDist::Uniform { min, max } => format!(
            "kind = \"uniform\", min = \"{}\", max = \"{}\"",
            DisplaySkew(min),
            DisplaySkew(max)
        ),
        &SkewDist::Normal { mean, stddev } => format!(
            "kind = \"normal\", mean = \"{}\", stddev = {}",
            DisplaySkew(mean.round() as i64),
            dur(std::time::Duration::from_secs_f64(stddev.max(0.0)))
        ),
        SkewDist::List(offsets) => {
            let list: Vec<String> = offsets
                .iter()
                .map(|&o| format!("\"{}\"", DisplaySkew(o)))
                .collect();
            format!("kind = \"list\", offsets = [{}]", list.join(", "))
        }
    }
}

fn direction(d: Direction) -> &'static str {
    match d {
        Direction::Connect => "connect",
        Direction::Send => "send",
        Direction::Receive => "receive",
    }
}

/// One `[[faults]]` rule.
pub fn fault_rule(f: &FaultRule) -> String {
    let mut s = format!("kind = \"{}\"", f.kind.name());
    match f.kind {
        FaultKind::Delay { on, delay, jitter } => {
            let _ = write!(
                s,
                ", on = \"{}\", delay = {}, jitter = {}",
                direction(on),
                dur(delay),
                dur(jitter)
            );
        }
        FaultKind::Refuse | FaultKind::Blackhole => {}
        FaultKind::Reset { at } | FaultKind::Truncate { at } => match at {
            CutPoint::AfterBytes(n) => {
                let _ = write!(s, ", after_bytes = {n}");
            }
            CutPoint::MidPdu => s.push_str(" (inside the next PDU)"),
        },
        FaultKind::Corrupt { region, bytes } => {
            let region = match region {
                Region::RpcHeader => "rpc-header",
                Region::Stub => "stub",
                Region::Payload => "payload",
            };
            let _ = write!(s, ", region = \"{region}\", bytes = {bytes}");
        }
        FaultKind::Stall { phase, duration } => {
            let phase = match phase {
                StallPhase::Bind => "bind",
                StallPhase::Request => "request",
            };
            let _ = write!(s, ", phase = \"{phase}\"");
            match duration {
                Some(d) => {
                    let _ = write!(s, ", duration = {}", dur(d));
                }
                None => s.push_str(" (until the phase times out)"),
            }
        }
        FaultKind::Trickle { on, chunk, every } => {
            let _ = write!(
                s,
                ", on = \"{}\", bytes = {chunk}, every = {}",
                direction(on),
                dur(every)
            );
        }
    }
    let _ = write!(s, ", probability = {}", f.probability);
    if let Some(w) = f.window {
        let _ = write!(s, ", window = [{}, {}]", dur(w.start), dur(w.end));
    }
    s
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::*;
    use crate::scenario::Window;

    fn ms(n: u64) -> Duration {
        Duration::from_millis(n)
    }

    #[test]
    fn plans_read_as_scenario_keys() {
        assert_eq!(
            connection(&ConnectionPolicy::KeepAlive {
                requests_per_connection: None
            }),
            "connection = \"keep-alive\""
        );
        assert_eq!(
            connection(&ConnectionPolicy::KeepAlive {
                requests_per_connection: Some(1000)
            }),
            "connection = \"keep-alive\", requests_per_connection = 1000"
        );
        assert_eq!(
            connection(&ConnectionPolicy::NewPerActivation),
            "connection = \"new\""
        );
        let rule = FaultRule {
            kind: FaultKind::Delay {
                on: Direction::Receive,
                delay: ms(200),
                jitter: ms(100),
            },
            probability: 0.2,
            window: Some(Window {
                start: ms(20_000),
                end: ms(40_000),
            }),
        };
        assert_eq!(
            fault_rule(&rule),
            "kind = \"delay\", on = \"receive\", delay = \"200ms\", jitter = \"100ms\", \
             probability = 0.2, window = [\"20s\", \"40s\"]"
        );
        let stall = FaultRule {
            kind: FaultKind::Stall {
                phase: StallPhase::Request,
                duration: None,
            },
            probability: 0.02,
            window: None,
        };
        assert_eq!(
            fault_rule(&stall),
            "kind = \"stall\", phase = \"request\" (until the phase times out), probability = 0.02"
        );
        assert_eq!(
            skew(&SkewDist::Normal {
                mean: 0.0,
                stddev: 7200.0
            }),
            "kind = \"normal\", mean = \"0s\", stddev = \"2h\""
        );
        assert_eq!(
            skew(&SkewDist::List(vec![-18_000, 0, 5400])),
            "kind = \"list\", offsets = [\"-5h\", \"0s\", \"+1h30m\"]"
        );
        assert_eq!(
            client(&ClientPlan {
                ndr: NdrMode::Ndr32Only,
                btfn: false
            }),
            "ndr = \"ndr32-only\", btfn = false"
        );
    }
}
