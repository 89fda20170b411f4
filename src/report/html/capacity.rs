//! report.html: the capacity section: the holds of a ramp, their gates and the knee.

use super::*;

pub(super) fn capacity(h: &mut String, r: &Results, knee: Option<&Knee>) {
    h.push_str("<section id=\"capacity\"><h2>Capacity: latency against offered load</h2>");
    let Some(k) = knee.filter(|k| k.is_ramp()) else {
        let why = if !r.summary.is_open_model() {
            "closed-model run: the offered rate follows the host, so there is no knee to find"
        } else if r.events.is_none() {
            "events.csv is needed for latency by offered rate"
        } else {
            "the run offered fewer than two distinct rates with enough attempts (a ramp scenario shows the knee)"
        };
        let _ = write!(h, "<p class=\"muted\">Not shown: {why}.</p></section>");
        return;
    };
    let _ = write!(h, "<p class=\"knee-sentence\">{}</p>", esc(&k.sentence()));
    let trusted: Vec<_> = k.buckets.iter().filter(|b| b.enough).collect();
    let rates = k.buckets.iter().map(|b| b.offered_rate);
    let (rlo, rhi) = rates.fold((f64::INFINITY, 0.0f64), |(a, b), r| (a.min(r), b.max(r)));
    let x = if rhi / rlo.max(1e-9) > 20.0 {
        Axis::log("offered attempts / s", Unit::Count, rlo, rhi)
    } else {
        Axis::linear_from_zero("offered attempts / s", Unit::Count, rhi * 1.05)
    };
    let values = k
        .buckets
        .iter()
        .flat_map(|b| [b.p50_us, b.p99_us])
        .flatten()
        .map(|v| v as f64);
    let (lo, hi) = values.fold((f64::INFINITY, 0.0f64), |(a, b), v| (a.min(v), b.max(v)));
    let limit = k.limit_us as f64;
    let mut c = Chart::new(
        "chart-knee",
        "Total latency percentiles against offered rate",
        x,
        Axis::log(
            "total time",
            Unit::Micros,
            lo.min(limit),
            hi.max(limit * 1.2),
        ),
    );
    c.height = 320.0;
    for (name, color, pick) in [("p50", 4usize, 0usize), ("p90", 5, 1), ("p99", 6, 2)] {
        let points: Vec<(f64, f64)> = trusted
            .iter()
            .filter_map(|b| {
                let v = [b.p50_us, b.p90_us, b.p99_us][pick]?;
                Some((b.offered_rate, v as f64))
            })
            .collect();
        c.series.push(Series::line(name, color, points.clone()));
        c.series.push(Series {
            name: String::new(),
            kind: Kind::Points,
            ..Series::line(name, color, points)
        });
    }
    let thin: Vec<(f64, f64)> = k
        .buckets
        .iter()
        .filter(|b| !b.enough)
        .filter_map(|b| Some((b.offered_rate, b.p99_us? as f64)))
        .collect();
    if !thin.is_empty() {
        c.series.push(Series {
            name: format!("p99 of a group under {MIN_SAMPLES} attempts (not used)"),
            kind: Kind::Points,
            class: "muted".into(),
            dashed: false,
            points: thin,
        });
    }
    c.rules.push(Rule {
        vertical: false,
        at: limit,
        label: match &k.limit_source {
            LimitSource::Gate(g) => format!("limit: gate {g}"),
            LimitSource::Default => {
                format!("limit: {} (default; no total p99 gate)", fmt_us(limit))
            }
        },
        class: "bad".into(),
    });
    if let Some(b) = k.knee.map(|i| &k.buckets[i]) {
        c.rules.push(Rule {
            vertical: true,
            at: b.offered_rate,
            label: String::new(),
            class: "ok".into(),
        });
        c.markers.push(Marker {
            x: b.offered_rate,
            y: b.p99_us.unwrap_or(0) as f64,
            label: format!(
                "{}: {}/s, p99 {}",
                if k.reached() {
                    "knee"
                } else {
                    "highest rate, within the limits"
                },
                fmt_num(b.offered_rate.round()),
                fmt_us(b.p99_us.unwrap_or(0) as f64)
            ),
            class: "ok".into(),
        });
    }
    figure(
        h,
        &format!(
            "Each point is a group of seconds with about the same offered rate (within 10 %); latency of the attempts started in them, no fault touched. The knee is the highest rate whose p99 stays under the limit{}, with every lower rate within the limits too.{}",
            if k.max_error_rate.is_some() {
                " and whose share of attempts not activated is within the error gate"
            } else {
                ""
            },
            analysis::left_out(k)
        ),
        &c,
    );
    h.push_str("<table><thead><tr>");
    for th in Knee::TABLE_HEADER {
        let _ = write!(h, "<th>{th}</th>");
    }
    h.push_str("<th></th></tr></thead><tbody>");
    for (cells, mark) in k.table_rows() {
        let note = match mark {
            RowMark::Knee => "<strong class=\"ok\">knee</strong>",
            RowMark::HighestWithin => {
                "<span class=\"ok\">highest rate offered, within the limits</span>"
            }
            RowMark::FirstOver => "<span class=\"bad\">first over the limits</span>",
            RowMark::TooFewSamples => "<span class=\"muted\">too few samples</span>",
            RowMark::None => "",
        };
        h.push_str("<tr>");
        for c in cells {
            let _ = write!(h, "<td>{c}</td>");
        }
        let _ = write!(h, "<td>{note}</td></tr>");
    }
    h.push_str("</tbody></table></section>");
}
