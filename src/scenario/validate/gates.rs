//! Validation of `[gates]`.

use super::*;

// ---------------------------------------------------------------------------------------
// [gates]

/// Abort checks wait this long by default (`[gates] abort_grace`).
pub(super) const ABORT_GRACE: Duration = Duration::from_secs(5);

pub(super) fn gates(
    cx: &mut Ctx<'_>,
    raw: RawGates,
    fleet: Option<&FleetPlan>,
    load: Option<&Load>,
) -> (Vec<Gate>, Option<GateAbort>) {
    let base = root("gates");
    let mut out = Vec::new();
    let grace = raw
        .abort_grace
        .as_deref()
        .and_then(|g| cx.duration(&base.key("abort_grace"), g));
    if raw.abort_grace.is_some() && raw.abort != Some(true) {
        cx.err(
            &base.key("abort_grace"),
            "has no effect without `abort = true`",
            Some("add `abort = true` to [gates], or remove abort_grace".to_owned()),
        );
    }
    let gate_abort = (raw.abort == Some(true)).then(|| GateAbort {
        grace: grace.unwrap_or(ABORT_GRACE),
    });
    for (i, g) in raw.latency.iter().flatten().enumerate() {
        let item = base.key("latency").index(i);
        let p = g.percentile;
        let percentile = if p.is_finite() && p > 0.0 && p <= 100.0 {
            Some(p)
        } else {
            cx.err(
                &item.key("percentile"),
                format!("{p} is not a percentile"),
                Some("a number above 0 and at most 100, e.g. 99 or 99.9".to_owned()),
            );
            None
        };
        let below = cx.positive_duration(&item.key("below"), &g.below);
        if let (Some(percentile), Some(below)) = (percentile, below) {
            out.push(Gate::Latency {
                phase: g.phase.unwrap_or(crate::record::LatencyPhase::Total),
                of: g.of.unwrap_or_default(),
                percentile,
                below,
            });
        }
    }
    if let Some(r) = raw.max_error_rate
        && let Some(r) = cx.fraction(&base.key("max_error_rate"), r)
    {
        out.push(Gate::MaxErrorRate(r));
    }
    if let Some(t) = raw.threshold {
        let path = base.key("threshold");
        let within = cx.at_least_one(&path.key("within"), t.within);
        let apps: Vec<Application> = fleet
            .map(|f| {
                f.products
                    .iter()
                    .filter_map(|s| Application::from_app_id(s.product.app_id))
                    .collect()
            })
            .unwrap_or_default();
        let app_ok = match (t.application, fleet) {
            (Some(app), Some(_)) if !apps.contains(&app) => {
                cx.err(
                    &path.key("application"),
                    format!("the fleet has no {} products", app.as_str()),
                    Some("name an application the fleet uses, or add such products".to_owned()),
                );
                false
            }
            _ => true,
        };
        if let (Some(clients), true) = (within, app_ok) {
            out.push(Gate::ThresholdWithin {
                application: t.application,
                clients,
            });
        }
    }
    if let Some(codes) = raw.allowed_codes {
        let path = base.key("allowed_codes");
        if codes.is_empty() {
            cx.err(
                &path,
                "an empty list allows no outcome at all",
                Some("list the codes you accept, 0 for success: [0, \"0xC004F038\"]".to_owned()),
            );
        }
        let parsed: Vec<Option<u32>> = codes
            .iter()
            .enumerate()
            .map(|(i, c)| code(cx, &path.index(i), c))
            .collect();
        if let (false, Some(mut list)) = (
            codes.is_empty(),
            parsed.into_iter().collect::<Option<Vec<u32>>>(),
        ) {
            let mut seen = HashSet::new();
            list.retain(|c| seen.insert(*c));
            out.push(Gate::AllowedCodes(list));
        }
    }
    if let Some(r) = raw.min_achieved_rate {
        let path = base.key("min_achieved_rate");
        if let Some(r) = cx.positive_rate(&path, r) {
            match load.map(|l| &l.model) {
                Some(LoadModel::Open(s)) if r > s.peak_rate() => cx.err(
                    &path,
                    format!(
                        "can never pass: the schedule never offers more than {}/s",
                        s.peak_rate()
                    ),
                    Some("lower the gate or raise the rate".to_owned()),
                ),
                _ => out.push(Gate::MinAchievedRate(r)),
            }
        }
    }
    if gate_abort.is_some() && out.is_empty() {
        cx.err(
            &base.key("abort"),
            "there is no gate to abort on",
            Some("add a gate (e.g. max_error_rate = 0.01), or remove `abort`".to_owned()),
        );
    }
    (out, gate_abort)
}

pub(super) fn code(cx: &mut Ctx<'_>, path: &KeyPath, raw: &RawCode) -> Option<u32> {
    let hint =
        Some("write HRESULTs as in `kmsload explain`: \"0xC004F038\", or 0 for success".to_owned());
    match raw {
        RawCode::Number(n) => match u32::try_from(*n) {
            Ok(v) => Some(v),
            Err(_) => {
                cx.err(path, format!("{n} is not a 32-bit HRESULT"), hint);
                None
            }
        },
        RawCode::Text(t) => match parse_code_text(t) {
            Some(v) => Some(v),
            None => {
                cx.err(path, format!("\"{t}\" is not an HRESULT"), hint);
                None
            }
        },
    }
}

pub(super) fn parse_code_text(t: &str) -> Option<u32> {
    let t = t.trim();
    if t.eq_ignore_ascii_case("S_OK") || t.eq_ignore_ascii_case("ok") {
        return Some(0);
    }
    match t.strip_prefix("0x").or_else(|| t.strip_prefix("0X")) {
        Some(hex) if !hex.is_empty() && hex.len() <= 8 => u32::from_str_radix(hex, 16).ok(),
        Some(_) => None,
        None => t.parse::<u32>().ok(),
    }
}
