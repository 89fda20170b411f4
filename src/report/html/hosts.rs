//! report.html: the hosts section: the split between hosts, failovers and outages.

use super::*;

/// `#hosts` (runs through discovery): each host's share, outcomes, latency and failovers;
/// `chart-hosts`, the attempts each host answered per second with the outages shaded; the
/// failover cost.
pub(super) fn hosts(h: &mut String, r: &Results) {
    let s = &r.summary;
    if s.by_host.is_empty() {
        return;
    }
    h.push_str("<section id=\"hosts\"><h2>Hosts found by discovery</h2>");
    let (x, last) = time_axis(r);
    let bins = Bins::new(last);
    let n = bins.count as usize;
    let series = |v: &[u64]| -> Vec<(f64, f64)> {
        let mut acc = vec![0.0; n];
        for (sec, c) in v.iter().enumerate() {
            acc[bins.of(sec as u64).min(n - 1)] += *c as f64;
        }
        acc.into_iter()
            .enumerate()
            .map(|(i, y)| (bins.x(i), y / bins.width as f64))
            .collect()
    };
    let mut lines: Vec<Series> = s
        .by_host
        .iter()
        .enumerate()
        .map(|(i, split)| Series::line(&split.host, i, series(&split.per_second)))
        .collect();
    let mut failed_over = vec![
        0u64;
        s.by_host
            .iter()
            .map(|x| x.failovers_per_second.len())
            .max()
            .unwrap_or(0)
    ];
    for split in &s.by_host {
        for (i, c) in split.failovers_per_second.iter().enumerate() {
            failed_over[i] += c;
        }
    }
    if failed_over.iter().any(|c| *c > 0) {
        lines.push(Series {
            dashed: true,
            ..Series::line(
                "failed over (all hosts)",
                s.by_host.len(),
                series(&failed_over),
            )
        });
    }
    let peak = lines
        .iter()
        .flat_map(|l| l.points.iter().map(|p| p.1))
        .fold(0.0, f64::max);
    let mut c = Chart::new(
        "chart-hosts",
        "Attempts answered per second, by host",
        x,
        Axis::linear_from_zero("attempts / s", Unit::Count, peak * 1.05),
    );
    c.series = lines;
    c.bands = s
        .outages
        .iter()
        .map(|o| Band {
            from: o.from_s,
            to: o.to_s,
            label: format!("{} down {} – {}", o.host, secs(o.from_s), secs(o.to_s)),
        })
        .collect();
    figure(
        h,
        &format!(
            "Attempts each host answered, by intended start{}; dashed: those that reached it only after another host failed.{}",
            if bins.width > 1 {
                format!(", averaged over {} s bins", bins.width)
            } else {
                String::new()
            },
            if s.outages.is_empty() {
                ""
            } else {
                " Shaded: a host's outage window (its service stopped: connects refused)."
            }
        ),
        &c,
    );
    let total = s.by_host.iter().map(|x| x.attempts).sum::<u64>().max(1) as f64;
    let ms = |us: Option<u64>| us.map_or_else(|| "-".to_owned(), |u| fmt_us(u as f64));
    h.push_str("<table><thead><tr><th>host</th><th>attempts</th><th>share</th><th>activated</th><th>not activated</th><th>failed</th><th>p50</th><th>p99</th><th>failed tries</th><th>failovers to it</th><th>their extra time (mean / max)</th><th>down</th></tr></thead><tbody>");
    for split in &s.by_host {
        let down: Vec<String> = s
            .outages
            .iter()
            .filter(|o| o.is_of(&split.host))
            .map(|o| format!("{} – {}", secs(o.from_s), secs(o.to_s)))
            .collect();
        let _ = write!(
            h,
            "<tr><td><code>{}</code></td><td>{}</td><td>{:.1} %</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{} / {}</td><td>{}</td></tr>",
            esc(&split.host),
            split.attempts,
            split.attempts as f64 / total * 100.0,
            split.activated,
            split.not_activated,
            split.failed,
            ms(split.latency_us.map(|l| l.p50)),
            ms(split.latency_us.map(|l| l.p99)),
            split.failed_tries,
            split.failovers_in,
            ms(split.failover_cost_us_mean),
            ms(split.failover_cost_us_max),
            esc(&down.join(", "))
        );
    }
    h.push_str("</tbody></table>");
    if let Some(cost) = crate::report::failover_cost_sentence(&s.by_host) {
        let _ = write!(h, "<p id=\"failover-cost\">{}</p>", esc(&cost));
    }
    h.push_str("</section>");
}
