//! report.html: the time series (rates, latency, in flight, the threshold) over the run.

use super::*;

pub(super) fn timeline(h: &mut String, r: &Results, episodes: &[Episode]) {
    let s = &r.summary;
    h.push_str("<section id=\"timeline\"><h2>Timeline</h2>");
    if !episodes.is_empty() {
        h.push_str(
            "<p class=\"muted\">Shaded: fault episodes (faults injected on the client side).</p>",
        );
    }
    let (x, last) = time_axis(r);
    let bins = Bins::new(last);
    let n = bins.count as usize;
    let per_s = |v: Vec<f64>| -> Vec<(f64, f64)> {
        v.into_iter()
            .enumerate()
            .map(|(i, y)| (bins.x(i), y / bins.width as f64))
            .collect()
    };
    let (mut offered, mut achieved, mut activated) = (vec![0.0; n], vec![0.0; n], vec![0.0; n]);
    let mut in_flight = vec![f64::NAN; n];
    for t in &s.timeline {
        let i = bins.of(t.second).min(n - 1);
        offered[i] += t.started as f64;
        achieved[i] += t.completed as f64;
        activated[i] += t.activated as f64;
        if let Some(f) = t.in_flight {
            in_flight[i] = if in_flight[i].is_nan() {
                f as f64
            } else {
                in_flight[i].max(f as f64)
            };
        }
    }
    let (offered, achieved, activated) = (per_s(offered), per_s(achieved), per_s(activated));
    let peak = offered
        .iter()
        .chain(&achieved)
        .map(|p| p.1)
        .fold(0.0, f64::max);
    let mut c = Chart::new(
        "chart-rate",
        "Offered and achieved rate per second",
        x.clone(),
        Axis::linear_from_zero("attempts / s", Unit::Count, peak * 1.05),
    );
    c.bands = bands(episodes);
    c.series
        .push(Series::line("offered (intended starts)", 0, offered));
    c.series
        .push(Series::line("achieved (completions)", 1, achieved));
    c.series.push(Series {
        dashed: true,
        ..Series::line("activated", 2, activated)
    });
    figure(
        h,
        &format!(
            "Offered load (attempts whose intended start fell in the second) against completions. {}",
            if bins.width > 1 {
                format!("Averaged over {} s bins.", bins.width)
            } else {
                String::new()
            }
        ),
        &c,
    );

    let fl: Vec<(f64, f64)> = in_flight
        .iter()
        .enumerate()
        .map(|(i, v)| (bins.x(i), *v))
        .collect();
    let top = fl
        .iter()
        .map(|p| p.1)
        .filter(|v| v.is_finite())
        .fold(0.0, f64::max);
    let mut c = Chart::new(
        "chart-inflight",
        "Attempts in flight",
        x.clone(),
        Axis::linear_from_zero("in flight", Unit::Count, (top * 1.1).max(1.0)),
    );
    c.height = 220.0;
    c.bands = bands(episodes);
    c.series
        .push(Series::line("in flight (largest sample)", 3, fl));
    figure(
        h,
        "Attempts started and not yet finished: the largest sample of each second. A host that falls behind shows a growing count.",
        &c,
    );

    // Latency per phase per second.
    let gate = s.total_p99_gate();
    for (k, phase) in PHASES.iter().enumerate() {
        let mut lines: [Vec<(f64, f64)>; 3] = Default::default();
        let mut lo = f64::INFINITY;
        let mut hi: f64 = 0.0;
        match &r.events {
            Some(e) => {
                let mut acc = vec![LogHist::new(); n];
                for (sec, se) in &e.seconds {
                    acc[bins.of(*sec).min(n - 1)].merge(&se.phases[k]);
                }
                for (i, hist) in acc.iter().enumerate() {
                    for (j, q) in [0.5, 0.9, 0.99].into_iter().enumerate() {
                        let v = hist.quantile(q).map_or(f64::NAN, |v| v as f64);
                        if v.is_finite() {
                            lo = lo.min(v);
                            hi = hi.max(v);
                        }
                        lines[j].push((bins.x(i), v));
                    }
                }
            }
            None if *phase == LatencyPhase::Total => {
                // Without events.csv: the summary's p50/p99 of the total, by completion.
                for t in &s.timeline {
                    for (j, v) in [(0, t.p50_us), (2, t.p99_us)] {
                        let v = v.map_or(f64::NAN, |v| v as f64);
                        if v.is_finite() {
                            lo = lo.min(v);
                            hi = hi.max(v);
                        }
                        lines[j].push((t.second as f64 + 0.5, v));
                    }
                }
            }
            None => continue,
        }
        if hi <= 0.0 {
            continue;
        }
        if *phase == LatencyPhase::Total
            && let Some((limit, _)) = gate
        {
            hi = hi.max(limit as f64 * 1.2);
            lo = lo.min(limit as f64);
        }
        let mut c = Chart::new(
            &format!("chart-latency-{phase}"),
            &format!("{phase} latency per second: p50, p90, p99"),
            x.clone(),
            Axis::log(&format!("{phase} time"), Unit::Micros, lo, hi),
        );
        c.height = 240.0;
        c.bands = bands(episodes);
        for (j, (name, color)) in [("p50", 4), ("p90", 5), ("p99", 6)].into_iter().enumerate() {
            if !lines[j].is_empty() {
                c.series
                    .push(Series::line(name, color, std::mem::take(&mut lines[j])));
            }
        }
        if *phase == LatencyPhase::Total
            && let Some((limit, name)) = gate
        {
            c.rules.push(Rule {
                vertical: false,
                at: limit as f64,
                label: format!("gate: {name}"),
                class: "bad".into(),
            });
        }
        figure(
            h,
            &format!(
                "<b>{phase}</b>: percentiles of the attempts no fault touched, {}.",
                if r.events.is_some() {
                    "grouped by intended start (a second's latency belongs to the load offered in it)"
                } else {
                    "by completion second (events.csv missing: p90 not available)"
                }
            ),
            &c,
        );
    }

    // Errors per second by code.
    let mut by_code: std::collections::BTreeMap<u32, Vec<f64>> = Default::default();
    for t in &s.timeline {
        for (code, count) in parse_codes(&t.by_code) {
            if code != 0 {
                by_code.entry(code).or_insert_with(|| vec![0.0; n])
                    [bins.of(t.second).min(n - 1)] += count as f64;
            }
        }
    }
    let mut totals = vec![0.0; n];
    for v in by_code.values() {
        for (t, x) in totals.iter_mut().zip(v) {
            *t += x;
        }
    }
    let top = totals.iter().fold(0.0, |a: f64, b| a.max(*b)) / bins.width as f64;
    let mut c = Chart::new(
        "chart-errors",
        "Errors per second by code",
        x,
        Axis::linear_from_zero("errors / s", Unit::Count, (top * 1.1).max(1.0)),
    );
    c.height = 240.0;
    c.bands = bands(episodes);
    for (i, (code, v)) in by_code.into_iter().enumerate() {
        let name = hresult::hresult(code).map_or_else(
            || hresult::hex(code),
            |x| format!("{} {}", hresult::hex(code), x.name),
        );
        c.series.push(Series {
            kind: Kind::StackedBars {
                width: bins.width as f64 * 0.9,
            },
            ..Series::line(&name, i, per_s(v))
        });
    }
    figure(
        h,
        if c.series.is_empty() {
            "No attempt ended with an error code."
        } else {
            "Attempts that did not activate, by the code a real client would show, per completion second (stacked)."
        },
        &c,
    );
    h.push_str("</section>");
}
