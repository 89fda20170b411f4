//! Validation of `[[faults]]`.

use super::*;

// ---------------------------------------------------------------------------------------
// [[faults]]

pub(super) fn faults(
    cx: &mut Ctx<'_>,
    raw: Vec<RawFault>,
    run_length: Option<Duration>,
) -> Vec<FaultRule> {
    let mut out = Vec::new();
    for (i, f) in raw.into_iter().enumerate() {
        let item = root("faults").index(i);
        if let Some(rule) = fault(cx, &item, f, run_length) {
            out.push(rule);
        }
    }
    out
}

pub(super) fn fault(
    cx: &mut Ctx<'_>,
    item: &KeyPath,
    f: RawFault,
    run_length: Option<Duration>,
) -> Option<FaultRule> {
    let k = |key: &str| item.key(key);
    let name = f.kind.as_str();
    let allowed = f.kind.params();
    let mut ok = true;
    for key in f.params_set() {
        if !allowed.contains(&key) {
            let takes = if allowed.is_empty() {
                "no parameters".to_owned()
            } else {
                allowed.join(", ")
            };
            cx.err(
                &k(key),
                format!("does not apply to kind = \"{name}\""),
                Some(format!(
                    "kind = \"{name}\" takes {takes} (besides probability and window)"
                )),
            );
            ok = false;
        }
    }
    let probability = cx.fraction(&k("probability"), f.probability.unwrap_or(1.0));
    let window = match &f.window {
        None => Some(None),
        Some(w) => window(cx, &k("window"), w, run_length).map(Some),
    };
    let missing = |cx: &mut Ctx<'_>, key: &str, example: &str| {
        cx.err(
            &k(key),
            format!("kind = \"{name}\" needs `{key}`"),
            Some(format!("e.g. {key} = {example}")),
        );
    };
    let kind = match f.kind {
        FaultKindName::Delay => {
            let on = f.on;
            if on.is_none() {
                missing(cx, "on", "\"receive\" (or \"connect\", \"send\")");
            }
            let delay = match &f.delay {
                Some(t) => cx.duration(&k("delay"), t),
                None => {
                    missing(cx, "delay", "\"200ms\"");
                    None
                }
            };
            let jitter = match &f.jitter {
                Some(t) => cx.duration(&k("jitter"), t),
                None => Some(Duration::ZERO),
            };
            match (on, delay, jitter) {
                (Some(_), Some(d), Some(j)) if d.is_zero() && j.is_zero() => {
                    cx.err(
                        &k("delay"),
                        "a delay of 0s with no jitter does nothing",
                        None,
                    );
                    None
                }
                (Some(on), Some(delay), Some(jitter)) => {
                    Some(FaultKind::Delay { on, delay, jitter })
                }
                _ => None,
            }
        }
        FaultKindName::Refuse => Some(FaultKind::Refuse),
        FaultKindName::Blackhole => Some(FaultKind::Blackhole),
        FaultKindName::Reset | FaultKindName::Truncate => {
            let at = f.after_bytes.map_or(CutPoint::MidPdu, CutPoint::AfterBytes);
            Some(if f.kind == FaultKindName::Reset {
                FaultKind::Reset { at }
            } else {
                FaultKind::Truncate { at }
            })
        }
        FaultKindName::Corrupt => {
            let bytes = cx.at_least_one(&k("bytes"), f.bytes.unwrap_or(1));
            match (f.region, bytes) {
                (None, _) => {
                    missing(cx, "region", "\"payload\" (or \"rpc-header\", \"stub\")");
                    None
                }
                (Some(region), Some(bytes)) => Some(FaultKind::Corrupt { region, bytes }),
                _ => None,
            }
        }
        FaultKindName::Stall => {
            let duration = match &f.duration {
                Some(t) => cx.positive_duration(&k("duration"), t).map(Some),
                None => Some(None),
            };
            duration.map(|duration| FaultKind::Stall {
                phase: f.phase.unwrap_or(StallPhase::Request),
                duration,
            })
        }
        FaultKindName::Trickle => {
            let on = match f.on.unwrap_or(Direction::Receive) {
                Direction::Connect => {
                    cx.err(
                        &k("on"),
                        "a trickle applies to bytes: \"send\" or \"receive\"",
                        None,
                    );
                    None
                }
                d => Some(d),
            };
            let chunk = cx.at_least_one(&k("bytes"), f.bytes.unwrap_or(1));
            let every = match &f.every {
                Some(t) => cx.positive_duration(&k("every"), t),
                None => {
                    missing(cx, "every", "\"50ms\"");
                    None
                }
            };
            match (on, chunk, every) {
                (Some(on), Some(chunk), Some(every)) => {
                    Some(FaultKind::Trickle { on, chunk, every })
                }
                _ => None,
            }
        }
    };
    if !ok {
        return None;
    }
    Some(FaultRule {
        kind: kind?,
        probability: probability?,
        window: window?,
    })
}

pub(super) fn window(
    cx: &mut Ctx<'_>,
    path: &KeyPath,
    w: &[String],
    run_length: Option<Duration>,
) -> Option<Window> {
    let hint = Some("window = [\"20s\", \"40s\"]: from 20 s to 40 s after the start".to_owned());
    let [start, end] = w else {
        cx.err(
            path,
            format!("needs two durations (start, end), found {}", w.len()),
            hint,
        );
        return None;
    };
    let start = cx.duration(&path.index(0), start);
    let end = cx.duration(&path.index(1), end);
    let (start, end) = (start?, end?);
    if end <= start {
        cx.err(
            path,
            format!(
                "ends ({}) before it starts ({})",
                DisplayDuration(end),
                DisplayDuration(start)
            ),
            hint,
        );
        return None;
    }
    if let Some(len) = run_length
        && start >= len
    {
        cx.err(
            &path.index(0),
            format!(
                "starts at {}, after the run ends ({})",
                DisplayDuration(start),
                DisplayDuration(len)
            ),
            Some("move the window into the run, or lengthen [load] duration".to_owned()),
        );
        return None;
    }
    Some(Window { start, end })
}
