//! What people read (issue 12, items 9 and 10): report.md, report.html and the console of a
//! real run written in the scenario file's terms, with no Rust debug values; numbers that
//! describe the same thing agreeing; a capacity stated only for the stages that met the
//! gates, saying the in-process host shared the CPU; the ramp seconds between holds left out
//! of the capacity table; the live progress as a plain labelled line when stderr is not a
//! terminal (CI logs).

use std::fs;

use serde_json::Value;

use crate::util::{kmsload, show, stderr, stdout, temp_dir, write_scenario};

/// Keep-alive with a per-connection limit, a staged ramp (hold, 1 s ramp, hold), faults in
/// two windows (two rules sharing the second), a p99 gate and an error gate that the second
/// hold fails.
const SCENARIO: &str = r#"
name = "people"
[host]
charged = true
[fleet]
size = 3000
products = [{ product = "Windows 10/11 Pro" }]
[load]
start_rate = 50
stages = [
  { duration = "4s", rate = 50 },
  { duration = "1s", rate = 150 },
  { duration = "3s", rate = 150 },
]
connection = "keep-alive"
requests_per_connection = 5
[timeouts]
connect = "1s"
request = "1s"
[[faults]]
kind = "delay"
on = "receive"
delay = "5ms"
probability = 0.1
window = ["0s", "2s"]
[[faults]]
kind = "reset"
probability = 0.15
window = ["5s", "8s"]
[[faults]]
kind = "corrupt"
region = "payload"
probability = 0.15
window = ["5s", "8s"]
[gates]
max_error_rate = 0.05
latency = [{ phase = "total", percentile = 99, below = "500ms" }]
"#;

/// The page's text: no style sheet, no tags.
fn page_text(html: &str) -> String {
    let mut text = String::new();
    let mut rest = html;
    while let Some(at) = rest.find("<style") {
        text.push_str(&rest[..at]);
        rest = rest[at..]
            .find("</style>")
            .map_or("", |end| &rest[at + end + 8..]);
    }
    text.push_str(rest);
    let mut out = String::new();
    let mut in_tag = false;
    for c in text.chars() {
        match c {
            '<' => in_tag = true,
            '>' if in_tag => {
                in_tag = false;
                out.push(' ');
            }
            _ if !in_tag => out.push(c),
            _ => {}
        }
    }
    out.replace("&quot;", "\"")
        .replace("&lt;", "<")
        .replace("&gt;", ">")
        .replace("&amp;", "&")
}

fn assert_no_debug_values(what: &str, text: &str) {
    for bad in [
        "{",
        "}",
        "Some(",
        "None",
        "KeepAlive",
        "FaultRule",
        "Delay {",
        "Window {",
    ] {
        assert!(!text.contains(bad), "{what} contains `{bad}`:\n{text}");
    }
}

/// The report.md lines of a table under `heading`: rows starting with `|`, header and rule
/// left out.
fn table_rows<'a>(md: &'a str, heading: &str) -> Vec<Vec<&'a str>> {
    let at = md
        .find(heading)
        .unwrap_or_else(|| panic!("{heading} missing:\n{md}"));
    md[at..]
        .lines()
        .skip_while(|l| !l.starts_with('|'))
        .take_while(|l| l.starts_with('|'))
        .skip(2)
        .map(|l| l.trim_matches('|').split('|').map(str::trim).collect())
        .collect()
}

#[test]
fn reports_speak_the_scenario_terms_and_agree_with_themselves() {
    let dir = temp_dir("people");
    let file = write_scenario(&dir, SCENARIO);
    let out = dir.join("out");
    let o = kmsload(&["run", &file, "--out", out.to_str().unwrap()]);
    // The error gate fails overall (the second hold's faults): exit 1.
    assert_eq!(o.status.code(), Some(1), "{}", show(&o));
    let md = fs::read_to_string(out.join("report.md")).unwrap();
    let html = fs::read_to_string(out.join("report.html")).unwrap();
    let page = page_text(&html);
    let s: Value =
        serde_json::from_str(&fs::read_to_string(out.join("summary.json")).unwrap()).unwrap();

    // No debug values anywhere a person reads.
    assert_no_debug_values("report.md", &md);
    assert_no_debug_values("report.html", &page);
    assert_no_debug_values("stdout", &stdout(&o));
    assert_no_debug_values("stderr", &stderr(&o));
    // The configuration as the file says it.
    assert!(
        page.contains(r#"connection = "keep-alive", requests_per_connection = 5"#),
        "{page}"
    );
    assert!(
        page.contains(
            r#"kind = "delay", on = "receive", delay = "5ms", jitter = "0s", probability = 0.1, window = ["0s", "2s"]"#
        ),
        "{page}"
    );
    assert_eq!(
        s["config"]["faults"][2],
        r#"kind = "corrupt", region = "payload", bytes = 1, probability = 0.15, window = ["5s", "8s"]"#
    );

    // Faulted attempts: the summary, the faults table, the episodes (one per window, the
    // two rules sharing 5-8 s counted once) and the page's list all say the same.
    let faulted = s["faulted_attempts"].as_u64().unwrap();
    assert!(faulted > 50, "{faulted}");
    assert!(
        md.contains(&format!("{faulted} attempts had a fault injected")),
        "{md}"
    );
    let table: u64 = table_rows(&md, "## Injected faults")
        .iter()
        .map(|r| r[1].parse::<u64>().unwrap())
        .sum();
    assert_eq!(table, faulted, "{md}");
    let episodes: Vec<&str> = md
        .lines()
        .filter(|l| l.contains("touched by a fault"))
        .collect();
    assert_eq!(episodes.len(), 2, "{md}");
    let touched: u64 = episodes
        .iter()
        .map(|l| {
            let n = l.rsplit("): ").next().unwrap();
            n.split_whitespace().next().unwrap().parse::<u64>().unwrap()
        })
        .sum();
    assert_eq!(touched, faulted, "{md}");
    assert!(md.contains("- 5.00 s – 8.00 s (scenario window): "), "{md}");
    assert!(
        page.contains("5.00 s – 8.00 s (scenario window): "),
        "{page}"
    );

    // Capacity: the first hold met both gates and is the knee; the second did not (errors)
    // and is not stated as a capacity; the 1 s ramp between them is not a row.
    // (A loaded machine may start an attempt or two late: rates within 2 % of the holds.)
    let rows = table_rows(&md, "## Capacity");
    let rates: Vec<f64> = rows.iter().map(|r| r[0].parse().unwrap()).collect();
    assert_eq!(rates.len(), 2, "{md}");
    assert!(
        (rates[0] - 50.0).abs() <= 1.0 && (rates[1] - 150.0).abs() <= 3.0,
        "{md}"
    );
    assert_eq!(rows[0][8], "**knee**");
    assert_eq!(rows[1][8], "first over the limits");
    assert!(md.contains("1 second in which a stage ramped between two holds is left out"));
    let sentence = md
        .lines()
        .find(|l| l.starts_with("**this host sustains"))
        .unwrap_or_else(|| panic!("no capacity sentence:\n{md}"));
    assert!(
        sentence.contains(" activations/s with p99 < 500 ms and errors <= 5.0 % (p99 "),
        "{sentence}"
    );
    // (On a loaded machine its p99 may be over the limit too; the sentence then says both.)
    let over = format!("; at {:.0} offered/s ", rates[1]);
    let errors = format!("{} did not activate", rows[1][2]);
    assert!(
        sentence.contains(&over) && sentence.contains(&errors),
        "{sentence} lacks {over} or {errors}"
    );
    assert!(
        sentence
            .contains("in-process reference host, which shared the CPU with the load generator"),
        "{sentence}"
    );
    for text in [&md, &page, &stdout(&o)] {
        assert!(!text.contains("knee was not reached"), "{text}");
        assert!(!text.contains("sustains 1"), "no capacity at 150/s: {text}");
    }
    let marker = format!("knee: {:.0}/s", rates[0]);
    assert!(
        page.contains(&marker),
        "the chart marks the knee the table names: {marker}"
    );
    fs::remove_dir_all(dir).unwrap();
}

#[test]
fn without_a_terminal_progress_is_a_plain_labelled_line_at_1_s_then_every_5_s() {
    // issue 12 item 9: stderr is a pipe here, as in CI logs.
    let dir = temp_dir("progress");
    let file = write_scenario(
        &dir,
        "name = \"watched\"\n[host]\ncharged = true\n[load]\nrate = 20\nduration = \"7s\"\n",
    );
    let out = dir.join("out");
    let o = kmsload(&["run", &file, "--no-html", "--out", out.to_str().unwrap()]);
    assert_eq!(o.status.code(), Some(0), "{}", show(&o));
    let err = stderr(&o);
    let lines: Vec<&str> = err.lines().filter(|l| l.starts_with("progress ")).collect();
    assert_eq!(
        lines.len(),
        2,
        "a line at 1 s and at 6 s of a 7 s run:\n{err}"
    );
    let elapsed: Vec<f64> = lines
        .iter()
        .map(|l| {
            let t = l.strip_prefix("progress ").unwrap();
            t.split(" s of 7.0 s, ").next().unwrap().parse().unwrap()
        })
        .collect();
    assert!((1.0..2.0).contains(&elapsed[0]), "{err}");
    let gap = elapsed[1] - elapsed[0];
    assert!((4.5..=5.75).contains(&gap), "{gap} s between lines:\n{err}");
    // Every figure labelled: position, share, ETA, rates, in flight, outcomes, p99.
    for l in &lines {
        let rest = l.split(" s of 7.0 s, ").nth(1).unwrap();
        let (share, figures) = rest.split_once(": ").unwrap();
        assert!(share.ends_with(" s") && share.contains(" %, ETA "), "{l}");
        assert!(figures.contains("/s of 20/s offered, in flight "), "{l}");
        assert!(
            figures.contains(", activated ") && figures.contains(", errors 0, p99 "),
            "{l}"
        );
        assert!(!l.contains('·') && !l.contains("  "), "{l}");
    }
    // The second line is past a second of load: a rate near 20/s and a p99 in a unit.
    let second = lines[1];
    assert!(
        second.contains(" ETA 1.") || second.contains(" ETA 0."),
        "{second}"
    );
    assert!(second.contains(" ms") || second.contains(" µs"), "{second}");
    fs::remove_dir_all(dir).unwrap();
}
