//! report.html: the latency distributions: HDR percentile plots per phase and product.

use super::*;

/// `(x = -log10(1 - p), value)` points of a distribution up to `nines`.
pub(super) fn percentile_curve(
    nines: u32,
    quantile: impl Fn(f64) -> Option<u64>,
) -> Vec<(f64, f64)> {
    let steps = nines * 50;
    (0..=steps)
        .filter_map(|i| {
            let x = f64::from(i) / 50.0;
            let p = 1.0 - 10f64.powf(-x);
            quantile(p).map(|v| (x, v as f64))
        })
        .collect()
}

/// Nines worth plotting for `count` samples: a 99.9 % point needs about a thousand.
pub(super) fn nines_for(count: u64) -> u32 {
    ((count.max(1) as f64).log10().floor() as u32).clamp(2, 5)
}

pub(super) fn latency(h: &mut String, r: &Results) {
    let s = &r.summary;
    h.push_str("<section id=\"latency\"><h2>Latency distribution</h2>");
    h.push_str(
        "<table><thead><tr><th>phase</th><th>count</th><th>p50</th><th>p90</th><th>p99</th><th>p99.9</th><th>max</th></tr></thead><tbody>",
    );
    for phase in PHASES {
        match s.recorded.latency_us.get(phase) {
            Some(l) => {
                let _ = write!(
                    h,
                    "<tr><td>{phase}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td></tr>",
                    l.count,
                    fmt_us(l.p50 as f64),
                    fmt_us(l.p90 as f64),
                    fmt_us(l.p99 as f64),
                    fmt_us(l.p999 as f64),
                    fmt_us(l.max as f64)
                );
            }
            None => {
                let _ = write!(
                    h,
                    "<tr><td>{phase}</td><td>0</td><td colspan=\"5\" class=\"muted\">no attempt reached this phase</td></tr>"
                );
            }
        }
    }
    h.push_str(
        "</tbody></table><p class=\"muted\">Attempts no injected fault touched, all outcomes.</p>",
    );
    for (k, phase) in PHASES.iter().enumerate() {
        let mut curves: Vec<(String, Vec<(f64, f64)>)> = Vec::new();
        let all: Option<&Histogram<u64>> = r.histograms.get(phase.as_str());
        let merged: Option<LogHist> = r.events.as_ref().map(|e| {
            let mut m = LogHist::new();
            for p in e.products.values() {
                m.merge(&p.phases[k]);
            }
            m
        });
        let count = all
            .map(Histogram::len)
            .or(merged.as_ref().map(LogHist::len))
            .unwrap_or(0);
        if count == 0 {
            continue;
        }
        let nines = nines_for(count);
        match all {
            Some(hist) => curves.push((
                "all products".to_owned(),
                percentile_curve(nines, |p| Some(hist.value_at_quantile(p))),
            )),
            None => {
                if let Some(m) = &merged {
                    curves.push((
                        "all products".to_owned(),
                        percentile_curve(nines, |p| m.quantile(p)),
                    ));
                }
            }
        }
        if let Some(e) = &r.events {
            let products: Vec<_> = e
                .products
                .iter()
                .filter(|(_, p)| !p.phases[k].is_empty())
                .collect();
            if products.len() > 1 {
                for (name, p) in products {
                    let n = nines_for(p.phases[k].len());
                    curves.push((
                        name.clone(),
                        percentile_curve(n, |q| p.phases[k].quantile(q)),
                    ));
                }
            }
        }
        let values = curves.iter().flat_map(|c| c.1.iter().map(|p| p.1));
        let (lo, hi) = values.fold((f64::INFINITY, 0.0f64), |(lo, hi), v| {
            (lo.min(v), hi.max(v))
        });
        let mut c = Chart::new(
            &format!("chart-hdr-{phase}"),
            &format!("{phase} latency by percentile"),
            Axis::percentile(nines),
            Axis::log(&format!("{phase} time"), Unit::Micros, lo.max(1.0), hi),
        );
        c.height = 280.0;
        // Products first, the run's distribution last and dashed, so both stay visible.
        let Some(all) = (!curves.is_empty()).then(|| curves.remove(0)) else {
            continue;
        };
        for (i, (name, points)) in curves.into_iter().enumerate() {
            c.series.push(Series::line(&name, i + 1, points));
        }
        c.series.push(Series {
            dashed: true,
            ..Series::line(&all.0, 0, all.1)
        });
        figure(
            h,
            &format!(
                "<b>{phase}</b>: value at each percentile ({count} attempts; the axis gives each nine the same width, so the tail is as visible as the median{}).",
                if r.histograms.contains_key(phase.as_str()) {
                    "; \"all products\" is the run's HDR histogram"
                } else {
                    ""
                }
            ),
            &c,
        );
    }
    h.push_str("</section>");
}

/// The application's name as an HTML id (no `+`).
pub(super) fn pool_id(pool: Application) -> &'static str {
    pool.as_str().trim_end_matches('+')
}

pub(super) fn pool_title(pool: Application) -> &'static str {
    match pool {
        Application::Windows => "Windows",
        Application::Office2010 => "Office 2010",
        Application::Office2013 => "Office 2013 and later",
    }
}
