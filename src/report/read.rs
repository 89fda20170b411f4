//! Reading a results directory back: the one place that knows its files' shapes from the
//! reader's side. `kmsload report`, `kmsload compare` and the end of `kmsload run` all start
//! here, so a report can be made from any results directory, also one copied off another
//! machine.
//!
//! ```text
//! summary.json     → SummaryFile        required; the very type the run wrote, every field
//!                                       defaulted (older or trimmed files still read)
//! events.csv       → EventData          optional; streamed once into per-second latency
//!                                       histograms (by intended start), per-product
//!                                       histograms, the charge curve per pool and when each
//!                                       code was first and last seen
//! histograms.hlog  → run histograms     optional; whole-run HDR histograms by tag
//! ```
//!
//! Memory is bounded by the run's length and its distinct latencies, not by its attempts:
//! per-second and per-product latencies go into [`LogHist`]s (0.8 % buckets), and the charge
//! curve keeps the [`CHARGE_ROWS_MAX`] lowest attempt numbers of each pool (the curve's
//! interesting part, up to 2N and the flip, lies far below). A missing or damaged optional
//! file is not an error: the report says what it could not show ([`Results::notes`]).
//!
//! Left out: timeline.hlog (the per-second total-time histograms it holds are rebuilt, per
//! phase, from events.csv), junit.xml and report.md (outputs, not inputs).

use std::collections::{BTreeMap, HashMap, HashSet};
use std::fs;
use std::io;
use std::path::{Path, PathBuf};

use hdrhistogram::Histogram;
use hdrhistogram::serialization::Deserializer;
use hdrhistogram::serialization::interval_log::{IntervalLogIterator, LogEntry};

use super::SCHEMA_VERSION;
pub use super::SummaryFile;
use super::loghist::LogHist;
use crate::catalog::Application;
use crate::catalog::{hresult, products};
use crate::record::LatencyPhase;
use crate::scenario::EventsMode;

/// Rows of the lowest attempt numbers kept per pool for the charge curve.
pub const CHARGE_ROWS_MAX: usize = 20_000;

/// Phases in the order of summary.json and the arrays here.
pub const PHASES: [LatencyPhase; 4] = LatencyPhase::ALL;

/// Reading a results directory or a summary failed.
#[derive(Debug, thiserror::Error)]
pub enum ReadError {
    /// The file or directory does not exist.
    #[error("{}: not found (a results directory holds summary.json, written when a run ends)", path.display())]
    Missing {
        /// What was looked for.
        path: PathBuf,
    },
    /// Reading failed.
    #[error("{}: {source}", path.display())]
    Io {
        /// The file.
        path: PathBuf,
        /// The I/O error.
        source: io::Error,
    },
    /// summary.json is not a kmsload summary.
    #[error("{}: not a kmsload summary.json: {message}", path.display())]
    Summary {
        /// The file.
        path: PathBuf,
        /// What was wrong.
        message: String,
    },
    /// summary.json is from a newer kmsload.
    #[error(
        "{}: summary schema version {found} is newer than this kmsload reads ({supported}); use a newer kmsload",
        path.display()
    )]
    Schema {
        /// The file.
        path: PathBuf,
        /// Version in the file.
        found: u32,
        /// Highest version understood.
        supported: u32,
    },
    /// events.csv cannot be used at all (e.g. a column is missing).
    #[error("{}: {message}", path.display())]
    Events {
        /// The file.
        path: PathBuf,
        /// What was wrong.
        message: String,
    },
    /// histograms.hlog cannot be read.
    #[error("{}: {message}", path.display())]
    Hlog {
        /// The file.
        path: PathBuf,
        /// What was wrong.
        message: String,
    },
}

/// Reads summary.json from `path`: the file itself, or a results directory holding it.
///
/// # Errors
/// [`ReadError`] when it is missing, unreadable, not a kmsload summary or from a newer
/// schema.
pub fn read_summary(path: &Path) -> Result<SummaryFile, ReadError> {
    let file = if path.is_dir() {
        path.join("summary.json")
    } else {
        path.to_path_buf()
    };
    let text = fs::read_to_string(&file).map_err(|source| {
        if source.kind() == io::ErrorKind::NotFound {
            ReadError::Missing { path: file.clone() }
        } else {
            ReadError::Io {
                path: file.clone(),
                source,
            }
        }
    })?;
    parse_summary(&text, &file)
}

/// Parses summary.json text (`path` names it in errors).
///
/// # Errors
/// [`ReadError::Summary`] or [`ReadError::Schema`].
pub fn parse_summary(text: &str, path: &Path) -> Result<SummaryFile, ReadError> {
    let bad = |message: String| ReadError::Summary {
        path: path.to_path_buf(),
        message,
    };
    let value: serde_json::Value = serde_json::from_str(text).map_err(|e| bad(e.to_string()))?;
    if !value.is_object() {
        return Err(bad("the top level is not an object".to_owned()));
    }
    let s: SummaryFile = serde_json::from_value(value).map_err(|e| bad(e.to_string()))?;
    if s.schema_version == 0 {
        return Err(bad("no schema_version".to_owned()));
    }
    if s.schema_version > SCHEMA_VERSION {
        return Err(ReadError::Schema {
            path: path.to_path_buf(),
            found: s.schema_version,
            supported: SCHEMA_VERSION,
        });
    }
    Ok(s)
}

/// One second of events, by intended start.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct SecondEvents {
    /// Attempts whose intended start fell in this second.
    pub started: u64,
    /// Of those, activated.
    pub activated: u64,
    /// Of those, touched by a fault.
    pub faulted: u64,
    /// Fault-free latencies per phase ([`PHASES`] order).
    pub phases: [LogHist; 4],
}

/// One product's fault-free latencies.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct ProductEvents {
    /// Attempts.
    pub attempts: u64,
    /// Fault-free latencies per phase ([`PHASES`] order).
    pub phases: [LogHist; 4],
}

/// When a code was seen, µs from the run start (completion: intended start + total time).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct CodeSeen {
    /// Attempts.
    pub count: u64,
    /// Earliest.
    pub first_us: u64,
    /// Latest.
    pub last_us: u64,
}

/// The charge curve of one pool: the host's reported count against the distinct clients
/// that had reached it, in attempt (start) order.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ChargeCurve {
    /// `(distinct clients so far, reported count)` per answered attempt.
    pub points: Vec<(u64, u32)>,
    /// Distinct clients when the first activation in the pool happened.
    pub first_activation_after: Option<u64>,
    /// True when the pool had more answered attempts than [`CHARGE_ROWS_MAX`].
    pub truncated: bool,
}

/// What events.csv adds to the summary.
#[derive(Debug, Clone, Default)]
pub struct EventData {
    /// Rows read.
    pub rows: u64,
    /// Rows that could not be read.
    pub skipped: u64,
    /// The first such row's problem.
    pub first_skip: Option<String>,
    /// By intended-start second.
    pub seconds: BTreeMap<u64, SecondEvents>,
    /// By product name.
    pub products: BTreeMap<String, ProductEvents>,
    /// By counting pool.
    pub charge: BTreeMap<Application, ChargeCurve>,
    /// By code.
    pub codes: BTreeMap<u32, CodeSeen>,
}

/// A results directory, read back.
#[derive(Debug, Clone)]
pub struct Results {
    /// The directory.
    pub dir: PathBuf,
    /// summary.json.
    pub summary: SummaryFile,
    /// events.csv, when it could be read.
    pub events: Option<EventData>,
    /// histograms.hlog by tag (`total`, `bind.failed`, `faulted.total`, ...).
    pub histograms: BTreeMap<String, Histogram<u64>>,
    /// What could not be read, for the report to say.
    pub notes: Vec<String>,
}

/// Reads a results directory: summary.json must be there, the rest is used when readable.
///
/// # Errors
/// [`ReadError`] about summary.json.
pub fn read_dir(dir: &Path) -> Result<Results, ReadError> {
    if !dir.exists() {
        return Err(ReadError::Missing {
            path: dir.to_path_buf(),
        });
    }
    let summary = read_summary(dir)?;
    let mut notes = Vec::new();
    let events_path = dir.join("events.csv");
    let events = match summary.events {
        // Without a row per attempt, per-second figures from the rows would be wrong: the
        // report uses the summary's timeline instead, as when events.csv is missing.
        EventsMode::Failures | EventsMode::Off => {
            notes.push(format!(
                "events = \"{}\": no events.csv{}; per-second percentiles other than the \
                 total p50/p99, per-product distributions and charge curves are not shown",
                summary.events.as_str(),
                if summary.events == EventsMode::Off {
                    ""
                } else {
                    " (failures.csv holds the attempts that did not activate)"
                }
            ));
            None
        }
        EventsMode::Full => match fs::File::open(&events_path) {
            Ok(f) => match read_events(io::BufReader::with_capacity(1 << 16, f), &events_path) {
                Ok(e) => {
                    if e.skipped > 0 {
                        notes.push(format!(
                            "events.csv: {} rows could not be read and are left out (first: {})",
                            e.skipped,
                            e.first_skip.as_deref().unwrap_or("?")
                        ));
                    }
                    if e.rows != summary.recorded.attempts {
                        notes.push(format!(
                            "events.csv has {} rows but the summary counts {} attempts; \
                         per-second latency, charge curves and code times come from the rows",
                            e.rows, summary.recorded.attempts
                        ));
                    }
                    Some(e)
                }
                Err(e) => {
                    notes.push(e.to_string());
                    None
                }
            },
            Err(e) => {
                notes.push(format!(
                    "events.csv: {e}; per-second percentiles other than the total p50/p99, \
                 per-product distributions and charge curves are not shown"
                ));
                None
            }
        },
    };
    let hlog_path = dir.join("histograms.hlog");
    let histograms = match fs::read(&hlog_path) {
        Ok(bytes) => match read_hlog(&bytes, &hlog_path) {
            Ok(h) => h,
            Err(e) => {
                notes.push(e.to_string());
                BTreeMap::new()
            }
        },
        Err(e) => {
            notes.push(format!("histograms.hlog: {e}"));
            BTreeMap::new()
        }
    };
    Ok(Results {
        dir: dir.to_path_buf(),
        summary,
        events,
        histograms,
        notes,
    })
}

/// Column positions in events.csv, found by name.
struct Columns {
    start: usize,
    cmid: usize,
    product: usize,
    phases: [usize; 4],
    outcome: usize,
    code: usize,
    count: usize,
    fault: usize,
    attempt: usize,
}

impl Columns {
    fn find(header: &csv::StringRecord) -> Result<Self, String> {
        let at = |name: &str| {
            header
                .iter()
                .position(|h| h == name)
                .ok_or_else(|| format!("no column {name:?} in the header"))
        };
        Ok(Self {
            start: at("intended_start_us")?,
            cmid: at("cmid")?,
            product: at("product")?,
            phases: [
                at("connect_us")?,
                at("bind_us")?,
                at("request_us")?,
                at("total_us")?,
            ],
            outcome: at("outcome")?,
            code: at("code")?,
            count: at("reported_count")?,
            fault: at("fault")?,
            attempt: at("attempt")?,
        })
    }
}

/// One answered attempt kept for the charge curve.
#[derive(Debug, Clone, Copy)]
struct ChargeRow {
    cmid: u128,
    count: Option<u32>,
    activated: bool,
}

#[derive(Default)]
struct ChargeRows {
    rows: BTreeMap<u64, ChargeRow>,
    dropped: bool,
}

/// Streams events.csv (see the module docs).
///
/// # Errors
/// [`ReadError::Events`] when the header lacks a column this reader needs, or the input
/// cannot be read at all.
pub fn read_events<R: io::Read>(input: R, path: &Path) -> Result<EventData, ReadError> {
    let fail = |message: String| ReadError::Events {
        path: path.to_path_buf(),
        message,
    };
    let mut rd = csv::ReaderBuilder::new().flexible(true).from_reader(input);
    let header = rd.headers().map_err(|e| fail(e.to_string()))?.clone();
    let cols = Columns::find(&header).map_err(fail)?;
    let names: HashMap<&str, Application> = products()
        .iter()
        .map(|p| (p.name.as_str(), Application::of(p)))
        .collect();
    let mut out = EventData::default();
    let mut charge: BTreeMap<Application, ChargeRows> = BTreeMap::new();
    let mut record = csv::StringRecord::new();
    let mut line = 1u64;
    loop {
        line += 1;
        match rd.read_record(&mut record) {
            Ok(false) => break,
            Ok(true) => {
                if let Err(why) = add_row(&record, &cols, &names, &mut out, &mut charge) {
                    out.skipped += 1;
                    out.first_skip
                        .get_or_insert_with(|| format!("line {line}: {why}"));
                }
            }
            Err(e) => {
                // A damaged row (bad UTF-8, a broken quote): skip it and go on; an I/O
                // error ends the file.
                if matches!(e.kind(), csv::ErrorKind::Io(_)) {
                    return Err(fail(e.to_string()));
                }
                out.skipped += 1;
                out.first_skip
                    .get_or_insert_with(|| format!("line {line}: {e}"));
            }
        }
    }
    for (pool, rows) in charge {
        out.charge.insert(pool, curve(&rows));
    }
    Ok(out)
}

fn add_row(
    r: &csv::StringRecord,
    c: &Columns,
    names: &HashMap<&str, Application>,
    out: &mut EventData,
    charge: &mut BTreeMap<Application, ChargeRows>,
) -> Result<(), String> {
    let field = |i: usize| r.get(i).ok_or_else(|| format!("only {} fields", r.len()));
    let number = |i: usize, name: &str| -> Result<Option<u64>, String> {
        let f = field(i)?;
        if f.is_empty() {
            return Ok(None);
        }
        f.parse::<u64>()
            .map(Some)
            .map_err(|_| format!("{name} {f:?} is not a number"))
    };
    let start = number(c.start, "intended_start_us")?.ok_or("no intended_start_us")?;
    let attempt = number(c.attempt, "attempt")?.ok_or("no attempt")?;
    let mut phases = [None; 4];
    for (k, &i) in c.phases.iter().enumerate() {
        phases[k] = number(i, PHASES[k].as_str())?;
    }
    let outcome = field(c.outcome)?;
    let activated = match outcome {
        "activated" => true,
        "not_activated" | "failed" => false,
        other => return Err(format!("outcome {other:?} is not one kmsload writes")),
    };
    let code = hresult::parse_code(field(c.code)?).map_err(|e| e.to_string())?;
    let count = number(c.count, "reported_count")?
        .map(|n| u32::try_from(n).map_err(|_| format!("reported_count {n} is too large")))
        .transpose()?;
    let faulted = !field(c.fault)?.is_empty();
    let product = field(c.product)?;
    let cmid = uuid::Uuid::parse_str(field(c.cmid)?).map_err(|e| format!("cmid: {e}"))?;

    out.rows += 1;
    let sec = out.seconds.entry(start / 1_000_000).or_default();
    sec.started += 1;
    sec.activated += u64::from(activated);
    sec.faulted += u64::from(faulted);
    let p = out.products.entry(product.to_owned()).or_default();
    p.attempts += 1;
    if !faulted {
        for (k, v) in phases.iter().enumerate() {
            if let Some(v) = v {
                sec.phases[k].record(*v);
                p.phases[k].record(*v);
            }
        }
    }
    let done = start.saturating_add(phases[3].unwrap_or(0));
    out.codes
        .entry(code)
        .and_modify(|s| {
            s.count += 1;
            s.first_us = s.first_us.min(done);
            s.last_us = s.last_us.max(done);
        })
        .or_insert(CodeSeen {
            count: 1,
            first_us: done,
            last_us: done,
        });

    // The threshold tracker sees answered attempts (a count) and activations.
    if count.is_some() || activated {
        // A product this catalog does not know (`#<index>`, or a newer catalog's name) counts
        // as Windows, as the recorder counts unknown application IDs.
        let pool = names.get(product).copied().unwrap_or(Application::Windows);
        let rows = charge.entry(pool).or_default();
        let full = rows.rows.len() >= CHARGE_ROWS_MAX;
        let later = rows
            .rows
            .last_key_value()
            .is_some_and(|(k, _)| *k < attempt);
        if full && later {
            rows.dropped = true;
        } else {
            rows.rows.insert(
                attempt,
                ChargeRow {
                    cmid: cmid.as_u128(),
                    count,
                    activated,
                },
            );
            if rows.rows.len() > CHARGE_ROWS_MAX {
                rows.rows.pop_last();
                rows.dropped = true;
            }
        }
    }
    Ok(())
}

fn curve(rows: &ChargeRows) -> ChargeCurve {
    let mut seen = HashSet::with_capacity(rows.rows.len());
    let mut out = ChargeCurve {
        truncated: rows.dropped,
        ..ChargeCurve::default()
    };
    for r in rows.rows.values() {
        seen.insert(r.cmid);
        let distinct = seen.len() as u64;
        if let Some(c) = r.count {
            out.points.push((distinct, c));
        }
        if r.activated && out.first_activation_after.is_none() {
            out.first_activation_after = Some(distinct);
        }
    }
    out
}

/// Reads histograms.hlog into tag → histogram.
///
/// # Errors
/// [`ReadError::Hlog`] when a line or a histogram cannot be decoded.
pub fn read_hlog(bytes: &[u8], path: &Path) -> Result<BTreeMap<String, Histogram<u64>>, ReadError> {
    let fail = |message: String| ReadError::Hlog {
        path: path.to_path_buf(),
        message,
    };
    let mut out = BTreeMap::new();
    let mut de = Deserializer::new();
    for entry in IntervalLogIterator::new(bytes) {
        let entry = entry.map_err(|e| fail(format!("{e:?}")))?;
        let LogEntry::Interval(h) = entry else {
            continue;
        };
        let tag = h.tag().map_or_else(String::new, |t| t.as_str().to_owned());
        let raw = base64_decode(h.encoded_histogram())
            .ok_or_else(|| fail(format!("histogram {tag:?} is not valid base64")))?;
        let hist: Histogram<u64> = de
            .deserialize(&mut io::Cursor::new(raw))
            .map_err(|e| fail(format!("histogram {tag:?}: {e:?}")))?;
        match out.get_mut(&tag) {
            Some(acc) => {
                let acc: &mut Histogram<u64> = acc;
                acc.add(&hist)
                    .map_err(|e| fail(format!("histogram {tag:?}: {e:?}")))?;
            }
            None => {
                out.insert(tag, hist);
            }
        }
    }
    Ok(out)
}

/// Standard base64 with `=` padding; `None` on any other character or a bad length.
pub(crate) fn base64_decode(s: &str) -> Option<Vec<u8>> {
    fn value(c: u8) -> Option<u32> {
        Some(u32::from(match c {
            b'A'..=b'Z' => c - b'A',
            b'a'..=b'z' => c - b'a' + 26,
            b'0'..=b'9' => c - b'0' + 52,
            b'+' => 62,
            b'/' => 63,
            _ => return None,
        }))
    }
    let s = s.trim().as_bytes();
    if !s.len().is_multiple_of(4) {
        return None;
    }
    let mut out = Vec::with_capacity(s.len() / 4 * 3);
    for (i, chunk) in s.chunks(4).enumerate() {
        let last = i + 1 == s.len() / 4;
        let pad = chunk.iter().rev().take_while(|&&c| c == b'=').count();
        if pad > 2 || (pad > 0 && !last) {
            return None;
        }
        let mut n = 0u32;
        for &c in &chunk[..4 - pad] {
            n = (n << 6) | value(c)?;
        }
        n <<= 6 * pad as u32;
        let bytes = n.to_be_bytes();
        out.extend_from_slice(&bytes[1..4 - pad]);
    }
    Some(out)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::report::GateResult;

    #[test]
    fn base64_round_trips_known_values() {
        assert_eq!(base64_decode("").unwrap(), b"");
        assert_eq!(base64_decode("Zg==").unwrap(), b"f");
        assert_eq!(base64_decode("Zm8=").unwrap(), b"fo");
        assert_eq!(base64_decode("Zm9v").unwrap(), b"foo");
        assert_eq!(base64_decode("Zm9vYmFy").unwrap(), b"foobar");
        assert_eq!(base64_decode("/+A=").unwrap(), [0xFF, 0xE0]);
        assert!(base64_decode("Zm9").is_none(), "length");
        assert!(base64_decode("Zm=v").is_none(), "padding inside");
        assert!(
            base64_decode("Zg==Zg==").is_none(),
            "padding before the end"
        );
        assert!(base64_decode("Zm9*").is_none(), "alphabet");
    }

    #[test]
    fn summaries_are_checked_for_kind_and_version() {
        let p = Path::new("s.json");
        let s = parse_summary(
            r#"{"schema_version":1,"attempts":3,"by_code":{"0x00000000":2,"0xC004F038":1}}"#,
            p,
        )
        .unwrap();
        assert_eq!(s.codes(), [(0, 2), (0xC004_F038, 1)]);
        assert!((s.error_rate() - 1.0 / 3.0).abs() < 1e-12);
        let e = parse_summary("{}", p).unwrap_err();
        assert!(e.to_string().contains("no schema_version"), "{e}");
        let e = parse_summary("[1]", p).unwrap_err();
        assert!(
            e.to_string()
                .starts_with("s.json: not a kmsload summary.json"),
            "{e}"
        );
        let e = parse_summary(r#"{"schema_version":99}"#, p).unwrap_err();
        assert!(matches!(e, ReadError::Schema { found: 99, .. }), "{e}");
        let e = read_summary(Path::new("/nonexistent/kmsload")).unwrap_err();
        assert!(matches!(e, ReadError::Missing { .. }), "{e}");
    }

    #[test]
    fn total_p99_gate_is_found_by_name() {
        let mut s = SummaryFile::default();
        s.gates.push(GateResult {
            name: "request p99 < 1s".into(),
            limit: 1_000_000.into(),
            ..GateResult::default()
        });
        assert_eq!(s.total_p99_gate(), None);
        s.gates.push(GateResult {
            name: "total p99 < 500ms".into(),
            limit: 500_000.into(),
            ..GateResult::default()
        });
        assert_eq!(s.total_p99_gate(), Some((500_000, "total p99 < 500ms")));
    }

    const HEADER: &str = "intended_start_us,client_index,cmid,product,protocol,connect_us,bind_us,request_us,total_us,outcome,code,reported_count,fault,cause,attempt,host\n";

    fn row(
        attempt: u64,
        start: u64,
        cmid: u64,
        count: &str,
        outcome: &str,
        code: &str,
        fault: &str,
    ) -> String {
        format!(
            "{start},{cmid},00000000-0000-4000-8000-{cmid:012x},Windows 10/11 Pro,6.0,100,200,300,{},{outcome},{code},{count},{fault},,{attempt},0\n",
            600 + attempt
        )
    }

    #[test]
    fn events_fill_seconds_products_codes_and_the_charge_curve() {
        let mut text = HEADER.to_owned();
        // Clients 1..=3 are told counts 1, 2, 3 (not enough), client 4 activates; client 1
        // comes back (no new distinct client). Rows arrive out of attempt order.
        text += &row(2, 1_200_000, 2, "2", "not_activated", "0xC004F038", "");
        text += &row(1, 1_100_000, 1, "1", "not_activated", "0xC004F038", "");
        text += &row(3, 1_300_000, 3, "3", "not_activated", "0xC004F038", "");
        text += &row(4, 2_000_000, 4, "4", "activated", "0x00000000", "");
        text += &row(5, 2_100_000, 1, "4", "activated", "0x00000000", "");
        text += &row(6, 2_200_000, 9, "", "failed", "0x80072746", "reset");
        text += "garbage,row\n";
        let e = read_events(text.as_bytes(), Path::new("events.csv")).unwrap();
        assert_eq!((e.rows, e.skipped), (6, 1));
        assert!(
            e.first_skip.as_deref().unwrap().starts_with("line 8:"),
            "{:?}",
            e.first_skip
        );
        assert_eq!(e.seconds.len(), 2);
        let s1 = &e.seconds[&1];
        assert_eq!((s1.started, s1.activated, s1.faulted), (3, 0, 0));
        assert_eq!(s1.phases[3].len(), 3);
        let s2 = &e.seconds[&2];
        assert_eq!((s2.started, s2.activated, s2.faulted), (3, 2, 1));
        assert_eq!(
            s2.phases[0].len(),
            2,
            "the faulted attempt's latency is left out"
        );
        assert_eq!(e.products["Windows 10/11 Pro"].attempts, 6);
        let c = e.codes[&0xC004_F038];
        assert_eq!((c.count, c.first_us, c.last_us), (3, 1_100_601, 1_300_603));
        let w = &e.charge[&Application::Windows];
        assert_eq!(w.points, [(1, 1), (2, 2), (3, 3), (4, 4), (4, 4)]);
        assert_eq!(w.first_activation_after, Some(4));
        assert!(!w.truncated);
    }

    #[test]
    fn events_need_their_columns() {
        let e = read_events("a,b\n1,2\n".as_bytes(), Path::new("events.csv")).unwrap_err();
        assert!(
            e.to_string().contains("no column \"intended_start_us\""),
            "{e}"
        );
    }

    #[test]
    fn charge_rows_keep_the_lowest_attempts() {
        let mut text = HEADER.to_owned();
        let n = CHARGE_ROWS_MAX as u64 + 50;
        for k in (0..n).rev() {
            text += &row(k, k, k, "1", "not_activated", "0xC004F038", "");
        }
        let e = read_events(text.as_bytes(), Path::new("events.csv")).unwrap();
        let w = &e.charge[&Application::Windows];
        assert!(w.truncated);
        assert_eq!(w.points.len(), CHARGE_ROWS_MAX);
        assert_eq!(w.points.last(), Some(&(CHARGE_ROWS_MAX as u64, 1)));
    }
}
