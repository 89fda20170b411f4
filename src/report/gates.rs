//! Gates: the pass/fail checks of a scenario's `[gates]` section, evaluated against what was
//! recorded. Their verdict decides the exit code of `kmsload run` (0 all pass, 1 one failed).

use serde::{Deserialize, Serialize};

use std::time::Duration;

use hdrhistogram::Histogram;

use crate::catalog::Application;
use crate::catalog::hresult;
use crate::client::Outcome;
use crate::record::{LatencyPhase, Recorder};
use crate::scenario::{Gate, GateAbort, LatencyOf};

/// One gate's verdict.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct GateResult {
    /// The gate as written, e.g. `total p99 < 1s`.
    pub name: String,
    /// What was measured, in the gate's unit (µs, fraction, clients, attempts/s, codes).
    pub value: serde_json::Value,
    /// The limit, in the same unit.
    pub limit: serde_json::Value,
    /// Whether the measured value is within the limit.
    pub pass: bool,
    /// Human text of the measured value (`812 µs`, `0.5 %`).
    pub shown: String,
}

/// Evaluates every gate. `achieved_rate` is attempts finished per second of the run.
pub fn evaluate(gates: &[Gate], recorder: &Recorder, achieved_rate: f64) -> Vec<GateResult> {
    gates
        .iter()
        .map(|g| evaluate_one(g, recorder, achieved_rate))
        .collect()
}

fn evaluate_one(gate: &Gate, recorder: &Recorder, achieved_rate: f64) -> GateResult {
    let name = gate.to_string();
    match gate {
        Gate::Latency {
            phase,
            of,
            percentile,
            below,
        } => {
            let hist = latency_histogram(recorder, *phase, *of);
            let limit_us = u64::try_from(below.as_micros()).unwrap_or(u64::MAX);
            let value = hist.map(|h| h.value_at_quantile(percentile / 100.0));
            GateResult {
                name,
                value: value.into(),
                limit: limit_us.into(),
                // No measurement (no attempt of that kind reached this phase) cannot show
                // the latency is fine: a dead host must not pass a latency gate.
                pass: value.is_some_and(|v| v < limit_us),
                shown: value.map_or_else(
                    || match of {
                        LatencyOf::All => "no attempts reached this phase".to_owned(),
                        other => format!("no {} attempts", other.as_str()),
                    },
                    format_us,
                ),
            }
        }
        Gate::MaxErrorRate(max) => {
            let attempts = recorder.attempts();
            let errors = attempts - recorder.code_count(hresult::code::S_OK);
            let rate = if attempts == 0 {
                0.0
            } else {
                errors as f64 / attempts as f64
            };
            GateResult {
                name,
                value: rate.into(),
                limit: (*max).into(),
                pass: attempts > 0 && rate <= *max,
                shown: format!("{:.3} % ({errors} of {attempts})", rate * 100.0),
            }
        }
        Gate::ThresholdWithin {
            application,
            clients,
        } => {
            let pools: Vec<Application> = match application {
                Some(a) => vec![*a],
                None => vec![
                    Application::Windows,
                    Application::Office2010,
                    Application::Office2013,
                ],
            };
            // Every pool that got answers must have started activating within the limit.
            let firsts: Vec<(Application, Option<u64>)> = pools
                .iter()
                .filter_map(|p| {
                    recorder
                        .threshold(*p)
                        .map(|t| (*p, t.first_activation_after_clients))
                })
                .collect();
            let worst = firsts.iter().map(|(_, f)| f.unwrap_or(u64::MAX)).max();
            let pass = !firsts.is_empty() && worst.is_some_and(|w| w <= u64::from(*clients));
            let shown = if firsts.is_empty() {
                "no answers from the host".to_owned()
            } else {
                firsts
                    .iter()
                    .map(|(p, f)| match f {
                        Some(n) => format!("{}: after {n} clients", p.as_str()),
                        None => format!("{}: never activated", p.as_str()),
                    })
                    .collect::<Vec<_>>()
                    .join(", ")
            };
            GateResult {
                name,
                value: worst.filter(|w| *w != u64::MAX).into(),
                limit: (*clients).into(),
                pass,
                shown,
            }
        }
        Gate::AllowedCodes(allowed) => {
            let summary = recorder.summary();
            let unexpected: Vec<String> = summary
                .by_code
                .keys()
                .filter(|c| !allowed.contains(&c.0))
                .map(|c| hresult::hex(c.0))
                .collect();
            GateResult {
                name,
                value: serde_json::Value::from(unexpected.clone()),
                limit: serde_json::Value::from(
                    allowed.iter().map(|c| hresult::hex(*c)).collect::<Vec<_>>(),
                ),
                pass: unexpected.is_empty(),
                shown: if unexpected.is_empty() {
                    "only allowed codes".to_owned()
                } else {
                    format!("unexpected {}", unexpected.join(", "))
                },
            }
        }
        Gate::MinAchievedRate(min) => GateResult {
            name,
            value: achieved_rate.into(),
            limit: (*min).into(),
            pass: achieved_rate >= *min,
            shown: format!("{achieved_rate:.1}/s"),
        },
    }
}

/// The fault-free latencies of `phase` over the attempts a gate measures.
fn latency_histogram(
    recorder: &Recorder,
    phase: LatencyPhase,
    of: LatencyOf,
) -> Option<Histogram<u64>> {
    let outcome = match of {
        LatencyOf::All => return recorder.combined_histogram(phase, false),
        LatencyOf::Activated => Outcome::Activated,
        LatencyOf::NotActivated => Outcome::NotActivated,
        LatencyOf::Failed => Outcome::Failed,
    };
    recorder.histogram(phase, outcome, false).cloned()
}

/// The check `kmsload run` makes once a second when the scenario says `[gates] abort =
/// true`: after the grace period, the first gate that fails on what was recorded so far
/// ends the run, and this is the reason. Gates whose verdict can still change for the
/// better as the run goes on wait until it cannot: a threshold gate aborts only once more
/// than `within` distinct clients were answered without an activation; the achieved-rate
/// gate, which depends on the whole run, never aborts.
pub fn abort_reason(
    gates: &[Gate],
    abort: GateAbort,
    recorder: &Recorder,
    elapsed: Duration,
) -> Option<String> {
    if elapsed < abort.grace {
        return None;
    }
    gates.iter().find_map(|g| {
        let decided = match g {
            Gate::MinAchievedRate(_) => return None,
            Gate::ThresholdWithin {
                application,
                clients,
            } => threshold_missed(recorder, *application, *clients),
            _ => !evaluate_one(g, recorder, 0.0).pass,
        };
        decided.then(|| {
            let r = evaluate_one(g, recorder, 0.0);
            format!(
                "{} (measured {} after {} s)",
                r.name,
                r.shown,
                elapsed.as_secs()
            )
        })
    })
}

/// True when the threshold gate can no longer pass: some pool answered more than `clients`
/// distinct clients and none of them activated.
fn threshold_missed(recorder: &Recorder, application: Option<Application>, clients: u32) -> bool {
    let pools = match application {
        Some(a) => vec![a],
        None => vec![
            Application::Windows,
            Application::Office2010,
            Application::Office2013,
        ],
    };
    pools.iter().any(|p| {
        recorder.threshold(*p).is_some_and(|t| {
            t.first_activation_after_clients.is_none() && t.distinct_clients > u64::from(clients)
        })
    })
}

/// `812 µs`, `12.3 ms`, `1.20 s`.
pub fn format_us(us: u64) -> String {
    match us {
        0..1_000 => format!("{us} µs"),
        1_000..1_000_000 => format!("{:.1} ms", us as f64 / 1e3),
        _ => format!("{:.2} s", us as f64 / 1e6),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::catalog::products;
    use crate::client::Outcome;
    use crate::record::LatencyPhase;
    use crate::record::{AttemptRecord, Latencies};
    use crate::sim::{Fleet, FleetSpec, ProductWeight};

    fn recorder(outcomes: &[(Outcome, u32, u64, Option<u32>)]) -> Recorder {
        let win = products()
            .iter()
            .position(|p| p.name == "Windows 10/11 Pro")
            .unwrap();
        let fleet =
            Fleet::new(1, FleetSpec::new(1000, vec![ProductWeight::new(win, 1.0)])).unwrap();
        let mut r = Recorder::new();
        for (k, (outcome, code, total, count)) in outcomes.iter().enumerate() {
            let mut rec =
                AttemptRecord::new(k as u64, 0, 0, &fleet.client(k as u64), *outcome, *code);
            rec.latency = Latencies {
                total_us: Some(*total),
                ..Latencies::default()
            };
            rec.reported_count = *count;
            r.record(&rec, 0);
        }
        r
    }

    #[test]
    fn latency_gate_passes_below_and_fails_at_the_limit() {
        let r = recorder(&[(Outcome::Activated, 0, 900, Some(50)); 100]);
        let gate = |ms| Gate::Latency {
            phase: LatencyPhase::Total,
            of: LatencyOf::Activated,
            percentile: 99.0,
            below: Duration::from_micros(ms),
        };
        assert!(evaluate(&[gate(1000)], &r, 1.0)[0].pass);
        assert!(!evaluate(&[gate(900)], &r, 1.0)[0].pass);
        // Nothing measured is not a pass.
        assert!(!evaluate(&[gate(1000)], &Recorder::new(), 1.0)[0].pass);
    }

    #[test]
    fn error_rate_and_allowed_codes() {
        let mut rows = vec![(Outcome::Activated, 0, 100, Some(50)); 99];
        rows.push((Outcome::NotActivated, 0xC004_F06C, 100, None));
        let r = recorder(&rows);
        let res = evaluate(
            &[
                Gate::MaxErrorRate(0.01),
                Gate::MaxErrorRate(0.0),
                Gate::AllowedCodes(vec![0]),
            ],
            &r,
            1.0,
        );
        assert!(res[0].pass);
        assert!(!res[1].pass);
        assert!(!res[2].pass);
        assert_eq!(res[2].shown, "unexpected 0xC004F06C");
        assert!(evaluate(&[Gate::AllowedCodes(vec![0, 0xC004_F06C])], &r, 1.0)[0].pass);
    }

    #[test]
    fn threshold_gate_reads_the_first_activation() {
        // Counts 1..=24 then activation at the 25th distinct client.
        let mut rows: Vec<_> = (1..25)
            .map(|c| (Outcome::NotActivated, 0xC004_F038, 100, Some(c)))
            .collect();
        rows.push((Outcome::Activated, 0, 100, Some(25)));
        let r = recorder(&rows);
        let within = |n| Gate::ThresholdWithin {
            application: Some(Application::Windows),
            clients: n,
        };
        assert!(evaluate(&[within(25)], &r, 1.0)[0].pass);
        assert!(!evaluate(&[within(24)], &r, 1.0)[0].pass);
    }

    #[test]
    fn achieved_rate_gate() {
        assert!(evaluate(&[Gate::MinAchievedRate(100.0)], &Recorder::new(), 100.0)[0].pass);
        assert!(!evaluate(&[Gate::MinAchievedRate(100.0)], &Recorder::new(), 99.9)[0].pass);
    }
}
