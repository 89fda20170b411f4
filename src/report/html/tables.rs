//! report.html: the codes table, the shards of a merged run and the run details.

use super::*;

pub(super) fn codes(h: &mut String, r: &Results) {
    h.push_str("<section id=\"codes\"><h2>Codes</h2>");
    let rows = analysis::code_rows(r);
    if rows.is_empty() {
        h.push_str("<p class=\"muted\">No attempts.</p></section>");
        return;
    }
    let total = r.summary.recorded.attempts.max(1) as f64;
    h.push_str("<table class=\"codes\"><thead><tr><th>code</th><th>name</th><th>count</th><th>share</th><th>first seen</th><th>last seen</th><th>explanation</th></tr></thead><tbody>");
    for c in rows {
        let mut explain = format!("<p>{}</p>", esc(&c.meaning));
        if let Some(t) = &c.typical_cause {
            let _ = write!(explain, "<p><b>typical cause:</b> {}</p>", esc(t));
        }
        if let Some(t) = &c.what_to_check {
            let _ = write!(explain, "<p><b>what to check:</b> {}</p>", esc(t));
        }
        let _ = write!(
            h,
            "<tr class=\"{}\"><td><code>{}</code></td><td>{}</td><td>{}</td><td>{:.2} %</td><td>{}</td><td>{}</td><td>{explain}</td></tr>",
            if c.code == 0 { "ok" } else { "" },
            hresult::hex(c.code),
            esc(&c.name),
            c.count,
            c.count as f64 / total * 100.0,
            c.first_s.map_or_else(|| "-".to_owned(), secs),
            c.last_s.map_or_else(|| "-".to_owned(), secs)
        );
    }
    h.push_str("</tbody></table><p class=\"muted\">First and last seen: completion time since the run start. <code>kmsload explain CODE</code> says more.</p></section>");
}

/// The shards of a merged result (`kmsload merge`), one row each.
pub(super) fn shards(h: &mut String, m: &crate::record::MergeInfo) {
    let _ = write!(
        h,
        "<section id=\"shards\"><h2>Shards</h2><p>Run <code>{}</code>: {} of {} shards merged.</p>",
        esc(&m.run_id),
        m.shards.len(),
        m.count
    );
    if !m.missing.is_empty() {
        let list: Vec<String> = m.missing.iter().map(u32::to_string).collect();
        let _ = write!(
            h,
            "<p class=\"bad\"><b>INCOMPLETE:</b> shard(s) {} missing; the figures leave their attempts out.</p>",
            list.join(", ")
        );
    }
    for n in &m.notes {
        let _ = write!(h, "<p class=\"muted\">Note: {}.</p>", esc(n));
    }
    h.push_str("<table><thead><tr>");
    for c in crate::report::merge::SHARD_COLUMNS {
        let _ = write!(h, "<th>{c}</th>");
    }
    h.push_str("</tr></thead><tbody>");
    for s in &m.shards {
        h.push_str("<tr>");
        for cell in crate::report::merge::shard_cells(s) {
            let _ = write!(h, "<td>{}</td>", esc(&cell));
        }
        h.push_str("</tr>");
    }
    h.push_str("</tbody></table></section>");
}

pub(super) fn details(h: &mut String, r: &Results, episodes: &[Episode]) {
    let s = &r.summary;
    h.push_str("<section id=\"details\"><h2>Details</h2>");
    if !s.recorded.products.is_empty() {
        h.push_str("<h3>Products</h3><table><thead><tr><th>product</th><th>attempts</th><th>activated</th><th>not activated</th><th>failed</th><th>total p50</th><th>total p99</th></tr></thead><tbody>");
        for p in &s.recorded.products {
            let t = p.latency_us.total;
            let _ = write!(
                h,
                "<tr><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td></tr>",
                esc(p.name.as_deref().unwrap_or("?")),
                p.attempts,
                p.by_outcome.activated,
                p.by_outcome.not_activated,
                p.by_outcome.failed,
                t.map_or_else(|| "-".to_owned(), |l| fmt_us(l.p50 as f64)),
                t.map_or_else(|| "-".to_owned(), |l| fmt_us(l.p99 as f64))
            );
        }
        h.push_str("</tbody></table>");
    }
    if !episodes.is_empty() || !s.recorded.faults.is_empty() {
        h.push_str("<h3>Faults</h3><ul>");
        for e in episodes {
            let _ = write!(
                h,
                "<li>{} – {} ({}): {} touched by a fault</li>",
                secs(e.from_s),
                secs(e.to_s),
                e.source,
                analysis::plural(e.faulted, "attempt")
            );
        }
        h.push_str("</ul>");
        if !s.recorded.faults.is_empty() {
            h.push_str("<table><thead><tr><th>fault</th><th>attempts</th><th>activated</th><th>not activated</th><th>failed</th><th>codes</th></tr></thead><tbody>");
            for f in &s.recorded.faults {
                let codes: Vec<String> = parse_codes(&f.by_code)
                    .into_iter()
                    .map(|(c, n)| format!("{} ×{n}", hresult::hex(c)))
                    .collect();
                let _ = write!(
                    h,
                    "<tr><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td></tr>",
                    esc(&f.fault),
                    f.attempts,
                    f.by_outcome.activated,
                    f.by_outcome.not_activated,
                    f.by_outcome.failed,
                    esc(&codes.join(", "))
                );
            }
            h.push_str("</tbody></table>");
        }
    }
    if !s.recorded.by_cause.is_empty() {
        h.push_str(
            "<h3>Causes</h3><table><thead><tr><th>cause</th><th>count</th></tr></thead><tbody>",
        );
        for (cause, n) in &s.recorded.by_cause {
            let _ = write!(h, "<tr><td>{}</td><td>{n}</td></tr>", esc(cause));
        }
        h.push_str("</tbody></table>");
        for (cause, n) in &s.recorded.by_cause {
            if let Some(note) = crate::client::outcome::local_limit_note(cause, *n) {
                let _ = write!(h, "<p class=\"warn\">{}</p>", esc(&note));
            }
        }
    }
    let c = &s.config;
    h.push_str("<h3>Configuration</h3><dl class=\"facts\">");
    let mut fact = |k: &str, v: String| {
        if !v.is_empty() {
            let _ = write!(h, "<div><dt>{}</dt><dd>{}</dd></div>", esc(k), esc(&v));
        }
    };
    fact(
        "scenario file",
        c.source
            .as_ref()
            .map(|p| p.display().to_string())
            .unwrap_or_default(),
    );
    fact("connection", c.connection.clone());
    fact("max in flight", c.max_in_flight.to_string());
    fact(
        "timeouts (connect, bind, request, drain)",
        c.timeouts_s
            .iter()
            .map(|t| format!("{t} s"))
            .collect::<Vec<_>>()
            .join(", "),
    );
    fact("gates", c.gates.join("; "));
    fact("faults", c.faults.join("; "));
    fact(
        "attempts dispatched / abandoned",
        format!("{} / {}", s.dispatched, s.abandoned),
    );
    h.push_str("</dl>");
    if !r.notes.is_empty() {
        h.push_str("<h3>Notes</h3><ul class=\"notes\">");
        for n in &r.notes {
            let _ = write!(h, "<li>{}</li>", esc(n));
        }
        h.push_str("</ul>");
    }
    h.push_str("</section>");
}
