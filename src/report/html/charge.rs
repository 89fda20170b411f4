//! report.html: the charge curves: how each counting pool reached its threshold.

use super::*;

pub(super) fn charge(h: &mut String, r: &Results) {
    let s = &r.summary;
    h.push_str("<section id=\"charge\"><h2>Activation threshold: the charge curve</h2>");
    if s.recorded.threshold.is_empty() {
        h.push_str("<p class=\"muted\">No answer reported a count.</p></section>");
        return;
    }
    for pool in Application::ALL {
        let Some(t) = s.recorded.threshold.get(&pool) else {
            continue;
        };
        let n = f64::from(t.required);
        let sentence = {
            let first = match t.first_activation_after_clients {
                Some(k) => format!("activation began after {k} distinct clients"),
                None => format!(
                    "no activation after {} distinct clients",
                    t.distinct_clients
                ),
            };
            let count = match t.max_count {
                Some(m) if t.distinct_clients > u64::from(m) => format!("count capped at {m}"),
                Some(m) => format!("count reached {m}"),
                None => "no count reported".to_owned(),
            };
            format!("{first}; {count}")
        };
        let _ = write!(
            h,
            "<h3>{} <span class=\"muted\">(N = {})</span></h3><p>{}</p>",
            pool_title(pool),
            t.required,
            esc(&sentence)
        );
        let curve: Option<&ChargeCurve> = r.events.as_ref().and_then(|e| e.charge.get(&pool));
        let Some(curve) = curve.filter(|c| !c.points.is_empty()) else {
            h.push_str("<p class=\"muted\">No per-attempt counts (events.csv) for a curve.</p>");
            continue;
        };
        let flip = t
            .first_activation_after_clients
            .or(curve.first_activation_after);
        let max_x = curve.points.last().map_or(1, |p| p.0) as f64;
        let want = (4.0 * n)
            .max(flip.map_or(0.0, |f| 2.0 * f as f64))
            .max(50.0);
        let shown = max_x.min(want);
        let mut points: Vec<(f64, f64)> = curve
            .points
            .iter()
            .filter(|p| p.0 as f64 <= shown)
            .map(|p| (p.0 as f64, f64::from(p.1)))
            .collect();
        if points.len() > MAX_CHARGE_POINTS {
            let step = points.len().div_ceil(MAX_CHARGE_POINTS);
            let last = points.last().copied();
            points = points.into_iter().step_by(step).collect();
            points.extend(last);
        }
        let top = points.iter().map(|p| p.1).fold(2.0 * n, f64::max) * 1.1;
        let mut c = Chart::new(
            &format!("chart-charge-{}", pool_id(pool)),
            &format!(
                "{} pool: reported count against distinct clients",
                pool_title(pool)
            ),
            Axis::linear_from_zero("distinct clients that reached the host", Unit::Count, shown),
            Axis::linear_from_zero("count reported", Unit::Count, top),
        );
        c.height = 260.0;
        c.series
            .push(Series::line("reported count", 0, points.clone()));
        c.rules.push(Rule {
            vertical: false,
            at: n,
            label: format!("N = {}: clients with this N activate from here", t.required),
            class: "warn".into(),
        });
        c.rules.push(Rule {
            vertical: false,
            at: 2.0 * n,
            label: format!("2N = {}: the host's count cap", 2 * t.required),
            class: "muted".into(),
        });
        if let Some(f) = flip {
            let at = points.iter().find(|p| p.0 >= f as f64).map_or(n, |p| p.1);
            c.rules.push(Rule {
                vertical: true,
                at: f as f64,
                label: String::new(),
                class: "ok".into(),
            });
            c.markers.push(Marker {
                x: f as f64,
                y: at,
                label: format!("flip: first activation after {f} clients"),
                class: "ok".into(),
            });
        }
        figure(
            h,
            &format!(
                "Count the host reported to each answered attempt, in start order, against the distinct clients (CMIDs) that had reached it{}.{}",
                if shown < max_x {
                    format!("; the first {} shown", fmt_num(shown))
                } else {
                    String::new()
                },
                if curve.truncated {
                    format!(
                        " Only the first {} answers of the pool were kept.",
                        crate::report::read::CHARGE_ROWS_MAX
                    )
                } else {
                    String::new()
                }
            ),
            &c,
        );
    }
    h.push_str("</section>");
}
