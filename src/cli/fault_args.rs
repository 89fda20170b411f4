//! The `--fault-*` flags (issue 5): the faults of a scenario's `[[faults]]` section on the
//! command line of `kmsload activate`, turned into the same [`FaultRule`]s and a
//! [`FaultPlan`].
//!
//! ```text
//! --fault-refuse[=P]                 --fault-reset-after BYTES[@P]   --fault-stall DUR|forever[@P]
//! --fault-blackhole[=P]              --fault-reset-mid-pdu[=P]       --fault-stall-phase bind|request
//! --fault-delay DELAY[~JITTER][@P]   --fault-truncate[=P]            --fault-trickle BYTES/EVERY[@P]
//! --fault-delay-on connect|send|receive                              --fault-trickle-on send|receive
//! --fault-truncate-after BYTES[@P]   --fault-corrupt REGION[:BYTES][@P]
//! --fault-window START..END          --fault-seed N
//! ```
//!
//! P is a probability per attempt, `0.25` or `25%`, and 1 when left out; flags whose value is
//! only P take it after `=` (`--fault-refuse=0.3`), so a host name after them is never read
//! as P. Durations are as everywhere else (`200ms`, `1.5s`; a number needs its unit, see `crate::values`).
//!
//! Each flag is one rule, in the order of the table in [`FaultArgs::rules`]; as in a
//! scenario, at most one fault hits an attempt, so the probabilities may add up to at most 1
//! (`--fault-refuse --fault-blackhole` would leave the blackhole nothing: an error here, as
//! it is for a scenario file, which [`crate::run::preflight`] refuses through
//! [`FaultPlan::overcommitted`] before anything starts).

use std::time::Duration;

use clap::ValueEnum;

use crate::faults::FaultPlan;
use crate::scenario::{
    CutPoint, DEFAULT_SEED, Direction, FaultKind, FaultRule, Region, StallPhase, Window,
};
use crate::values;

/// Network faults to inject on the client side of each connection (`#[command(flatten)]`).
#[derive(Debug, Clone, Default, PartialEq, clap::Args)]
#[command(next_help_heading = "Fault injection (client side, one fault per attempt at most)")]
pub struct FaultArgs {
    /// Refuse the connect at once, as if nothing listened (0x8007274D), with probability P.
    #[arg(long, value_name = "P", num_args = 0..=1, require_equals = true,
          default_missing_value = "1", value_parser = parse_probability)]
    pub fault_refuse: Option<f64>,

    /// Blackhole the connect: it never completes and the connect timeout ends it
    /// (0x8007274C).
    #[arg(long, value_name = "P", num_args = 0..=1, require_equals = true,
          default_missing_value = "1", value_parser = parse_probability)]
    pub fault_blackhole: Option<f64>,

    /// Wait DELAY plus a random extra up to JITTER before the connect, each write or each
    /// read (see --fault-delay-on), e.g. 200ms~50ms@0.3.
    #[arg(long, value_name = "DELAY[~JITTER][@P]", value_parser = parse_delay)]
    pub fault_delay: Option<Chance<(Duration, Duration)>>,

    /// Where --fault-delay applies [default: receive].
    #[arg(long, value_enum, value_name = "WHERE", requires = "fault_delay")]
    pub fault_delay_on: Option<DelayOn>,

    /// Reset the connection (RST) after BYTES received in the attempt (0x80072746).
    #[arg(long, value_name = "BYTES[@P]", value_parser = parse_bytes)]
    pub fault_reset_after: Option<Chance<u64>>,

    /// Reset the connection (RST) at a random point inside the next PDU received (on a new
    /// connection: the bind_ack).
    #[arg(long, value_name = "P", num_args = 0..=1, require_equals = true,
          default_missing_value = "1", value_parser = parse_probability)]
    pub fault_reset_mid_pdu: Option<f64>,

    /// Close the host's side (FIN) after BYTES received in the attempt.
    #[arg(long, value_name = "BYTES[@P]", value_parser = parse_bytes)]
    pub fault_truncate_after: Option<Chance<u64>>,

    /// Close the host's side (FIN) at a random point inside the next PDU received.
    #[arg(long, value_name = "P", num_args = 0..=1, require_equals = true,
          default_missing_value = "1", value_parser = parse_probability)]
    pub fault_truncate: Option<f64>,

    /// Flip BYTES (default 1) bytes of the activation response: in the RPC header (header),
    /// the stub around the payload (stub) or the KMS payload (payload), e.g. payload:2@0.1.
    #[arg(long, value_name = "REGION[:BYTES][@P]", value_parser = parse_corrupt)]
    pub fault_corrupt: Option<Chance<(Region, u32)>>,

    /// Hold back the reply of a phase (see --fault-stall-phase) for DURATION, or for good
    /// (forever: the phase times out), e.g. 2s@0.5.
    #[arg(long, value_name = "DURATION|forever[@P]", value_parser = parse_stall)]
    pub fault_stall: Option<Chance<Option<Duration>>>,

    /// Which reply --fault-stall holds back [default: request].
    #[arg(long, value_enum, value_name = "PHASE", requires = "fault_stall")]
    pub fault_stall_phase: Option<StallAt>,

    /// Let bytes through BYTES at a time, one chunk per EVERY, e.g. 16/50ms.
    #[arg(long, value_name = "BYTES/EVERY[@P]", value_parser = parse_trickle)]
    pub fault_trickle: Option<Chance<(u32, Duration)>>,

    /// Which direction --fault-trickle slows [default: receive].
    #[arg(long, value_enum, value_name = "WHERE", requires = "fault_trickle")]
    pub fault_trickle_on: Option<TrickleOn>,

    /// Inject only between START and END after the first activation began, e.g. 20s..40s.
    #[arg(long, value_name = "START..END", value_parser = parse_window)]
    pub fault_window: Option<Window>,

    /// Seed of the fault draws; the same seed replays the same faults [default: 1].
    #[arg(long, value_name = "N")]
    pub fault_seed: Option<u64>,
}

/// A flag's parameters and the probability after `@`.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Chance<T> {
    /// The parameters.
    pub value: T,
    /// Per attempt, 0 to 1.
    pub probability: f64,
}

/// `--fault-delay-on`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum DelayOn {
    /// Before the TCP connect.
    Connect,
    /// Before each write to the host.
    Send,
    /// Before each chunk read from the host is passed on.
    Receive,
}

/// `--fault-trickle-on`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum TrickleOn {
    /// Client to host.
    Send,
    /// Host to client.
    Receive,
}

/// `--fault-stall-phase`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum StallAt {
    /// The bind_ack.
    Bind,
    /// The activation response.
    Request,
}

impl FaultArgs {
    /// True when no fault flag is given.
    pub fn is_empty(&self) -> bool {
        self.rules_unchecked().is_empty()
    }

    /// The rules, in this order (which decides which slice of the draw each takes):
    /// refuse, blackhole, delay, reset-after, reset-mid-pdu, truncate-after, truncate,
    /// corrupt, stall, trickle; each with `--fault-window` when given.
    ///
    /// # Errors
    /// A message for the user (exit 2) when the probabilities add up to more than 1.
    pub fn rules(&self) -> Result<Vec<FaultRule>, String> {
        let rules = self.rules_unchecked();
        let total: f64 = rules.iter().map(|r| r.probability).sum();
        if total > 1.0 + 1e-9 {
            let names: Vec<_> = rules.iter().map(|r| r.kind.name()).collect();
            return Err(format!(
                "the fault probabilities add up to {total} ({}); at most one fault hits an \
                 attempt, so they must add up to 1 or less, e.g. --fault-refuse=0.5 \
                 --fault-blackhole=0.5",
                names.join(" + ")
            ));
        }
        Ok(rules)
    }

    /// The seed of the fault draws.
    pub fn seed(&self) -> u64 {
        self.fault_seed.unwrap_or(DEFAULT_SEED)
    }

    /// The plan to decide each attempt's fault with ([`FaultPlan::decide`]).
    ///
    /// # Errors
    /// As [`FaultArgs::rules`].
    pub fn plan(&self) -> Result<FaultPlan, String> {
        Ok(FaultPlan::new(&self.rules()?, self.seed()))
    }

    fn rules_unchecked(&self) -> Vec<FaultRule> {
        let window = self.fault_window;
        let rule = |kind, probability| FaultRule {
            kind,
            probability,
            window,
        };
        let mut out = Vec::new();
        if let Some(p) = self.fault_refuse {
            out.push(rule(FaultKind::Refuse, p));
        }
        if let Some(p) = self.fault_blackhole {
            out.push(rule(FaultKind::Blackhole, p));
        }
        if let Some(c) = self.fault_delay {
            let on = match self.fault_delay_on.unwrap_or(DelayOn::Receive) {
                DelayOn::Connect => Direction::Connect,
                DelayOn::Send => Direction::Send,
                DelayOn::Receive => Direction::Receive,
            };
            let (delay, jitter) = c.value;
            out.push(rule(FaultKind::Delay { on, delay, jitter }, c.probability));
        }
        if let Some(c) = self.fault_reset_after {
            let at = CutPoint::AfterBytes(c.value);
            out.push(rule(FaultKind::Reset { at }, c.probability));
        }
        if let Some(p) = self.fault_reset_mid_pdu {
            let at = CutPoint::MidPdu;
            out.push(rule(FaultKind::Reset { at }, p));
        }
        if let Some(c) = self.fault_truncate_after {
            let at = CutPoint::AfterBytes(c.value);
            out.push(rule(FaultKind::Truncate { at }, c.probability));
        }
        if let Some(p) = self.fault_truncate {
            let at = CutPoint::MidPdu;
            out.push(rule(FaultKind::Truncate { at }, p));
        }
        if let Some(c) = self.fault_corrupt {
            let (region, bytes) = c.value;
            out.push(rule(FaultKind::Corrupt { region, bytes }, c.probability));
        }
        if let Some(c) = self.fault_stall {
            let phase = match self.fault_stall_phase.unwrap_or(StallAt::Request) {
                StallAt::Bind => StallPhase::Bind,
                StallAt::Request => StallPhase::Request,
            };
            let duration = c.value;
            out.push(rule(FaultKind::Stall { phase, duration }, c.probability));
        }
        if let Some(c) = self.fault_trickle {
            let on = match self.fault_trickle_on.unwrap_or(TrickleOn::Receive) {
                TrickleOn::Send => Direction::Send,
                TrickleOn::Receive => Direction::Receive,
            };
            let (chunk, every) = c.value;
            out.push(rule(FaultKind::Trickle { on, chunk, every }, c.probability));
        }
        out
    }
}

/// Reads a probability: `0.25`, `1`, `25%`.
///
/// # Errors
/// A message naming the value when it is not a number from 0 to 1 (0 % to 100 %).
pub fn parse_probability(s: &str) -> Result<f64, String> {
    let t = s.trim();
    let (number, scale) = match t.strip_suffix('%') {
        Some(n) => (n.trim(), 100.0),
        None => (t, 1.0),
    };
    let p = number
        .parse::<f64>()
        .ok()
        .filter(|v| v.is_finite())
        .map(|v| v / scale)
        .ok_or_else(|| format!("'{t}' is not a probability; expected 0 to 1, e.g. 0.25 or 25%"))?;
    if (0.0..=1.0).contains(&p) {
        Ok(p)
    } else {
        Err(format!("'{t}' is outside 0 to 1 (0% to 100%)"))
    }
}

/// Splits `BODY[@P]`.
fn chance(s: &str) -> Result<(&str, f64), String> {
    match s.rsplit_once('@') {
        Some((body, p)) => Ok((body.trim(), parse_probability(p)?)),
        None => Ok((s.trim(), 1.0)),
    }
}

fn duration(s: &str) -> Result<Duration, String> {
    values::parse_duration(s).map_err(|e| e.to_string())
}

fn positive_duration(s: &str) -> Result<Duration, String> {
    values::parse_nonzero_duration(s).map_err(|e| e.to_string())
}

/// Reads `DELAY[~JITTER][@P]`.
///
/// # Errors
/// A bad duration or probability, or a delay of 0 with no jitter (it would do nothing).
pub fn parse_delay(s: &str) -> Result<Chance<(Duration, Duration)>, String> {
    let (body, probability) = chance(s)?;
    let (delay, jitter) = match body.split_once('~') {
        Some((d, j)) => (duration(d)?, duration(j)?),
        None => (duration(body)?, Duration::ZERO),
    };
    if delay.is_zero() && jitter.is_zero() {
        return Err("a delay of 0 with no jitter does nothing; e.g. 200ms or 200ms~50ms".into());
    }
    Ok(Chance {
        value: (delay, jitter),
        probability,
    })
}

/// Reads `BYTES[@P]` (a byte count, `k` = 1000 allowed as in every count).
///
/// # Errors
/// A bad count or probability.
pub fn parse_bytes(s: &str) -> Result<Chance<u64>, String> {
    let (body, probability) = chance(s)?;
    let value = values::parse_count(body).map_err(|e| e.to_string())?;
    Ok(Chance { value, probability })
}

/// Reads `REGION[:BYTES][@P]`: `header` (or `rpc-header`), `stub`, `payload`.
///
/// # Errors
/// An unknown region, a byte count below 1, or a bad probability.
pub fn parse_corrupt(s: &str) -> Result<Chance<(Region, u32)>, String> {
    let (body, probability) = chance(s)?;
    let (name, bytes) = match body.split_once(':') {
        Some((n, b)) => {
            let bytes = b
                .trim()
                .parse::<u32>()
                .ok()
                .filter(|&b| b >= 1)
                .ok_or_else(|| format!("'{b}' is not a byte count of 1 or more"))?;
            (n.trim(), bytes)
        }
        None => (body, 1),
    };
    let region = match name.to_ascii_lowercase().as_str() {
        "header" | "rpc-header" => Region::RpcHeader,
        "stub" => Region::Stub,
        "payload" => Region::Payload,
        other => {
            return Err(format!(
                "unknown region '{other}'; expected header, stub or payload"
            ));
        }
    };
    Ok(Chance {
        value: (region, bytes),
        probability,
    })
}

/// Reads `DURATION|forever[@P]`.
///
/// # Errors
/// A zero or bad duration, or a bad probability.
pub fn parse_stall(s: &str) -> Result<Chance<Option<Duration>>, String> {
    let (body, probability) = chance(s)?;
    let value = if body.eq_ignore_ascii_case("forever") {
        None
    } else {
        Some(positive_duration(body)?)
    };
    Ok(Chance { value, probability })
}

/// Reads `BYTES/EVERY[@P]`.
///
/// # Errors
/// A missing `/`, a chunk below 1 byte, a zero or bad interval, or a bad probability.
pub fn parse_trickle(s: &str) -> Result<Chance<(u32, Duration)>, String> {
    let (body, probability) = chance(s)?;
    let Some((chunk, every)) = body.split_once('/') else {
        return Err(format!("'{body}' needs BYTES/EVERY, e.g. 16/50ms"));
    };
    let chunk = chunk
        .trim()
        .parse::<u32>()
        .ok()
        .filter(|&c| c >= 1)
        .ok_or_else(|| format!("'{chunk}' is not a chunk size of 1 byte or more"))?;
    Ok(Chance {
        value: (chunk, positive_duration(every)?),
        probability,
    })
}

/// Reads `START..END` (END after START).
///
/// # Errors
/// A missing `..`, a bad duration, or END not after START.
pub fn parse_window(s: &str) -> Result<Window, String> {
    let Some((start, end)) = s.split_once("..") else {
        return Err(format!("'{s}' needs START..END, e.g. 20s..40s"));
    };
    let (start, end) = (duration(start)?, duration(end)?);
    if end <= start {
        return Err(format!("'{s}': the end must come after the start"));
    }
    Ok(Window { start, end })
}

#[cfg(test)]
mod tests {
    use clap::{CommandFactory, Parser};

    use super::*;

    #[derive(Debug, Parser)]
    struct Cmd {
        #[command(flatten)]
        faults: FaultArgs,
        target: Option<String>,
    }

    fn parse(args: &[&str]) -> Result<Cmd, clap::Error> {
        Cmd::try_parse_from(std::iter::once("activate").chain(args.iter().copied()))
    }

    fn ms(n: u64) -> Duration {
        Duration::from_millis(n)
    }

    #[test]
    fn command_is_well_formed() {
        Cmd::command().debug_assert();
    }

    #[test]
    fn no_flags_no_rules() {
        let c = parse(&[]).unwrap();
        assert!(c.faults.is_empty());
        assert_eq!(c.faults.rules().unwrap(), vec![]);
        assert_eq!(c.faults.seed(), DEFAULT_SEED);
        assert!(c.faults.plan().unwrap().is_empty());
    }

    #[test]
    fn bare_probability_flags_do_not_swallow_the_host() {
        let c = parse(&["--fault-refuse", "127.0.0.1:1688"]).unwrap();
        assert_eq!(c.faults.fault_refuse, Some(1.0));
        assert_eq!(c.target.as_deref(), Some("127.0.0.1:1688"));
        let c = parse(&["--fault-blackhole=30%", "--fault-seed", "9"]).unwrap();
        assert_eq!(c.faults.fault_blackhole, Some(0.3));
        assert_eq!(c.faults.seed(), 9);
    }

    #[test]
    fn every_flag_becomes_its_rule_in_order() {
        let c = parse(&[
            "--fault-refuse=0.05",
            "--fault-blackhole=0.05",
            "--fault-delay=200ms~50ms@0.1",
            "--fault-delay-on=send",
            "--fault-reset-after=100@0.05",
            "--fault-reset-mid-pdu=0.05",
            "--fault-truncate-after=1k@0.05",
            "--fault-truncate=0.05",
            "--fault-corrupt=payload:2@0.05",
            "--fault-stall=forever@0.05",
            "--fault-stall-phase=bind",
            "--fault-trickle=16/50ms@0.05",
            "--fault-window=20s..40s",
        ])
        .unwrap();
        let window = Some(Window {
            start: Duration::from_secs(20),
            end: Duration::from_secs(40),
        });
        let r = |kind, probability| FaultRule {
            kind,
            probability,
            window,
        };
        let want = vec![
            r(FaultKind::Refuse, 0.05),
            r(FaultKind::Blackhole, 0.05),
            r(
                FaultKind::Delay {
                    on: Direction::Send,
                    delay: ms(200),
                    jitter: ms(50),
                },
                0.1,
            ),
            r(
                FaultKind::Reset {
                    at: CutPoint::AfterBytes(100),
                },
                0.05,
            ),
            r(
                FaultKind::Reset {
                    at: CutPoint::MidPdu,
                },
                0.05,
            ),
            r(
                FaultKind::Truncate {
                    at: CutPoint::AfterBytes(1000),
                },
                0.05,
            ),
            r(
                FaultKind::Truncate {
                    at: CutPoint::MidPdu,
                },
                0.05,
            ),
            r(
                FaultKind::Corrupt {
                    region: Region::Payload,
                    bytes: 2,
                },
                0.05,
            ),
            r(
                FaultKind::Stall {
                    phase: StallPhase::Bind,
                    duration: None,
                },
                0.05,
            ),
            r(
                FaultKind::Trickle {
                    on: Direction::Receive,
                    chunk: 16,
                    every: ms(50),
                },
                0.05,
            ),
        ];
        assert_eq!(c.faults.rules().unwrap(), want);
    }

    #[test]
    fn defaults_of_the_companion_flags() {
        let c = parse(&[
            "--fault-delay=1s",
            "--fault-stall=2s",
            "--fault-trickle=1/1s",
        ]);
        // Three rules at probability 1 each: refused as a whole.
        let c = c.unwrap();
        assert!(c.faults.rules().unwrap_err().contains("add up to 3"));
        let kinds: Vec<_> = c
            .faults
            .rules_unchecked()
            .into_iter()
            .map(|r| r.kind)
            .collect();
        assert_eq!(
            kinds,
            [
                FaultKind::Delay {
                    on: Direction::Receive,
                    delay: Duration::from_secs(1),
                    jitter: Duration::ZERO
                },
                FaultKind::Stall {
                    phase: StallPhase::Request,
                    duration: Some(Duration::from_secs(2))
                },
                FaultKind::Trickle {
                    on: Direction::Receive,
                    chunk: 1,
                    every: Duration::from_secs(1)
                },
            ]
        );
    }

    #[test]
    fn companion_flags_need_their_fault() {
        assert!(parse(&["--fault-delay-on=send"]).is_err());
        assert!(parse(&["--fault-stall-phase=bind"]).is_err());
        assert!(parse(&["--fault-trickle-on=send"]).is_err());
    }

    #[test]
    fn probabilities() {
        assert_eq!(parse_probability("0"), Ok(0.0));
        assert_eq!(parse_probability("1"), Ok(1.0));
        assert_eq!(parse_probability("12.5%"), Ok(0.125));
        assert!(parse_probability("1.5").unwrap_err().contains("outside"));
        assert!(parse_probability("-0.1").unwrap_err().contains("outside"));
        assert!(
            parse_probability("half")
                .unwrap_err()
                .contains("not a probability")
        );
        assert!(parse_probability("NaN").is_err());
        assert!(parse_probability("inf").is_err());
    }

    #[test]
    fn delays() {
        let d = parse_delay("200ms").unwrap();
        assert_eq!((d.value, d.probability), ((ms(200), Duration::ZERO), 1.0));
        let d = parse_delay("0s~20ms@0.5").unwrap();
        assert_eq!((d.value, d.probability), ((Duration::ZERO, ms(20)), 0.5));
        assert!(parse_delay("0s").unwrap_err().contains("does nothing"));
        assert!(parse_delay("fast").is_err());
        assert!(parse_delay("1s@2").is_err());
    }

    #[test]
    fn byte_counts_regions_stalls_trickles_windows() {
        assert_eq!(parse_bytes("10").unwrap().value, 10);
        assert!(parse_bytes("-1").is_err());
        assert_eq!(
            parse_corrupt("header").unwrap().value,
            (Region::RpcHeader, 1)
        );
        assert_eq!(
            parse_corrupt("rpc-header:3").unwrap().value,
            (Region::RpcHeader, 3)
        );
        assert_eq!(parse_corrupt("Stub@0.2").unwrap().probability, 0.2);
        assert!(
            parse_corrupt("body")
                .unwrap_err()
                .contains("unknown region")
        );
        assert!(parse_corrupt("payload:0").is_err());
        assert_eq!(parse_stall("forever").unwrap().value, None);
        assert_eq!(parse_stall("1.5s").unwrap().value, Some(ms(1500)));
        assert!(parse_stall("0s").is_err());
        assert_eq!(parse_trickle("16/50ms").unwrap().value, (16, ms(50)));
        assert!(parse_trickle("16").unwrap_err().contains("BYTES/EVERY"));
        assert!(parse_trickle("0/1s").is_err());
        assert!(parse_trickle("1/0s").is_err());
        assert_eq!(
            parse_window("20s..40s").unwrap(),
            Window {
                start: Duration::from_secs(20),
                end: Duration::from_secs(40)
            }
        );
        assert!(parse_window("40s..20s").unwrap_err().contains("after"));
        assert!(parse_window("20s-40s").is_err());
    }

    #[test]
    fn bad_values_are_usage_errors() {
        let e = parse(&["--fault-corrupt", "body"]).unwrap_err();
        assert_eq!(e.kind(), clap::error::ErrorKind::ValueValidation);
        assert!(parse(&["--fault-refuse=2"]).is_err());
    }
}
