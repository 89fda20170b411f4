//! Reading `events.csv` back into [`AttemptRecord`]s and replaying them into a [`Recorder`]:
//! the reverse of [`super::EventWriter`]. `kmsload merge` reads its shards' rows this way
//! for the threshold tracker (the rest it merges from the shards' summaries and histogram
//! logs, [`super::Recorder::restore`]), and `kmsload report` rebuilds the results of a run that was killed before it could write
//! summary.json (SIGKILL, power loss) from the rows it had flushed.
//!
//! ```text
//! events.csv ──read_events──► AttemptRecord per row ──sort_by_end──► record_all ──► Recorder
//!            (times moved by an offset; a torn last row tolerated when asked)
//! ```
//!
//! A replayed attempt is recorded in the second it ended (intended start + total time), as
//! the runner would have recorded it. What a row does not hold is not replayed: ePID and HwID
//! (host identity), and the runner's in-flight samples.

use std::collections::HashMap;
use std::io;

use serde::Deserialize;

use super::{AttemptRecord, Latencies, Recorder};
use crate::catalog::{self, Application};
use crate::client::Outcome;
use crate::wire::base::Version;

/// One events.csv row, as [`super::EventRow`] writes it.
#[derive(Debug, Deserialize)]
struct ReplayedRow {
    intended_start_us: u64,
    client_index: u64,
    cmid: uuid::Uuid,
    product: String,
    protocol: String,
    connect_us: Option<u64>,
    bind_us: Option<u64>,
    request_us: Option<u64>,
    total_us: Option<u64>,
    outcome: String,
    code: String,
    reported_count: Option<u32>,
    fault: Option<String>,
    cause: Option<String>,
    attempt: u64,
    host: u16,
}

/// Labels (causes, faults) are `&'static str` in records; each distinct one read back is
/// kept once for the life of the process (there are a few dozen).
#[derive(Debug, Default)]
pub struct Labels(HashMap<String, &'static str>);

impl Labels {
    fn get(&mut self, text: String) -> &'static str {
        let label: &mut &'static str = self
            .0
            .entry(text)
            .or_insert_with_key(|k| Box::leak(k.clone().into_boxed_str()));
        label
    }
}

/// How reading an events.csv ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ReadEnd {
    /// Rows read.
    pub rows: u64,
    /// The last row was cut short (the process died in the middle of writing it) and was
    /// left out; only reported when the caller tolerates it.
    pub torn_tail: bool,
}

/// Reads every row of an events.csv from `reader`, moving intended starts by `offset_us`,
/// and hands each record to `each`. With `torn_tail_ok`, a last row that cannot be read is
/// left out and reported in [`ReadEnd::torn_tail`] (a killed run may leave one half
/// written); any other bad row is an error.
///
/// # Errors
/// A message naming the row (by line) and what is wrong with it.
pub fn read_events<R: io::Read>(
    reader: R,
    offset_us: u64,
    labels: &mut Labels,
    torn_tail_ok: bool,
    mut each: impl FnMut(AttemptRecord),
) -> Result<ReadEnd, String> {
    let mut csv = csv::Reader::from_reader(reader);
    let mut rows = 0u64;
    let mut bad: Option<String> = None;
    for row in csv.deserialize::<ReplayedRow>() {
        if let Some(e) = bad.take() {
            // A bad row with more after it is not a torn tail.
            return Err(e);
        }
        let parsed = row
            .map_err(|e| e.to_string())
            .and_then(|row| record_of(row, offset_us, labels));
        match parsed {
            Ok(rec) => {
                rows += 1;
                each(rec);
            }
            Err(e) => bad = Some(format!("row {}: {e}", rows + 2)),
        }
    }
    match bad {
        Some(_) if torn_tail_ok => Ok(ReadEnd {
            rows,
            torn_tail: true,
        }),
        Some(e) => Err(e),
        None => Ok(ReadEnd {
            rows,
            torn_tail: false,
        }),
    }
}

/// When `rec` ended, µs from the run start (intended start + total time).
pub fn ended_us(rec: &AttemptRecord) -> u64 {
    rec.intended_start_us + rec.latency.total_us.unwrap_or(0)
}

/// Puts records in the order they ended, as one recorder would have seen them (ties by
/// attempt number).
pub fn sort_by_end(records: &mut [AttemptRecord]) {
    records.sort_by_key(|r| (ended_us(r), r.attempt));
}

/// A recorder that has recorded `records` (in their order; see [`sort_by_end`]), each in
/// the second it ended.
pub fn record_all<'a>(records: impl IntoIterator<Item = &'a AttemptRecord>) -> Recorder {
    let mut recorder = Recorder::new();
    for rec in records {
        recorder.record(rec, ended_us(rec) / 1_000_000);
    }
    recorder
}

fn record_of(
    row: ReplayedRow,
    offset_us: u64,
    labels: &mut Labels,
) -> Result<AttemptRecord, String> {
    let products = catalog::products();
    let unknown = || format!("attempt {}: unknown product `{}`", row.attempt, row.product);
    let index = match row.product.strip_prefix('#') {
        Some(n) => n.parse::<usize>().ok(),
        None => products.iter().position(|p| p.name == row.product),
    }
    .ok_or_else(unknown)?;
    let product = products.get(index).ok_or_else(unknown)?;
    let outcome = Outcome::ALL
        .into_iter()
        .find(|o| o.as_str() == row.outcome)
        .ok_or_else(|| format!("attempt {}: unknown outcome `{}`", row.attempt, row.outcome))?;
    let code = row
        .code
        .strip_prefix("0x")
        .and_then(|h| u32::from_str_radix(h, 16).ok())
        .ok_or_else(|| format!("attempt {}: bad code `{}`", row.attempt, row.code))?;
    let protocol = parse_version(&row.protocol)
        .ok_or_else(|| format!("attempt {}: bad protocol `{}`", row.attempt, row.protocol))?;
    Ok(AttemptRecord {
        attempt: row.attempt,
        client_index: row.client_index,
        intended_start_us: row.intended_start_us + offset_us,
        cmid: row.cmid,
        product: u16::try_from(index).unwrap_or(u16::MAX),
        protocol,
        latency: Latencies {
            connect_us: row.connect_us,
            bind_us: row.bind_us,
            request_us: row.request_us,
            total_us: row.total_us,
        },
        outcome,
        code,
        cause: row.cause.map(|c| labels.get(c)),
        fault: row.fault.map(|f| labels.get(f)),
        reported_count: row.reported_count,
        pool: Application::of(product),
        required: product.n_policy,
        host: row.host,
        epid: None,
        hwid: None,
    })
}

/// `6.0`, `6` or `V6`: the protocol column as any kmsload wrote it.
fn parse_version(text: &str) -> Option<Version> {
    let text = text.strip_prefix(['V', 'v']).unwrap_or(text);
    let (major, minor) = text.split_once('.').unwrap_or((text, "0"));
    Some(Version {
        major: major.parse().ok()?,
        minor: minor.parse().ok()?,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::record::EventWriter;

    fn record(attempt: u64, start: u64, total: Option<u64>, outcome: Outcome) -> AttemptRecord {
        AttemptRecord {
            attempt,
            client_index: attempt * 3,
            intended_start_us: start,
            cmid: uuid::Uuid::from_u128(u128::from(attempt) + 1),
            product: 0,
            protocol: Version { major: 6, minor: 0 },
            latency: Latencies {
                connect_us: total.map(|t| t / 4),
                bind_us: None,
                request_us: None,
                total_us: total,
            },
            outcome,
            code: if outcome == Outcome::Activated {
                0
            } else {
                0xC004_F074
            },
            cause: (outcome != Outcome::Activated).then_some("connect_refused"),
            fault: (attempt == 2).then_some("refuse"),
            reported_count: (outcome == Outcome::Activated).then_some(50),
            pool: Application::of(&catalog::products()[0]),
            required: catalog::products()[0].n_policy,
            host: 0,
            epid: None,
            hwid: None,
        }
    }

    fn csv_of(records: &[AttemptRecord]) -> Vec<u8> {
        let mut out = Vec::new();
        let mut w = EventWriter::new(&mut out).unwrap();
        for r in records {
            w.write(r).unwrap();
        }
        w.flush().unwrap();
        drop(w);
        out
    }

    #[test]
    fn rows_read_back_as_the_records_written() {
        let written = [
            record(1, 1000, Some(2_500_000), Outcome::Activated),
            record(2, 2000, Some(700), Outcome::Failed),
            record(3, 3000, None, Outcome::Failed),
        ];
        let mut labels = Labels::default();
        let mut got = Vec::new();
        let end = read_events(&csv_of(&written)[..], 5, &mut labels, false, |r| {
            got.push(r)
        })
        .unwrap();
        assert_eq!(
            end,
            ReadEnd {
                rows: 3,
                torn_tail: false
            }
        );
        for (w, g) in written.iter().zip(&got) {
            let mut w = w.clone();
            w.intended_start_us += 5;
            assert_eq!(&w, g);
        }
        // In the order they ended: 2 (2.7 ms), 3 (3 ms, no total), 1 (2.5 s).
        sort_by_end(&mut got);
        assert_eq!(got.iter().map(|r| r.attempt).collect::<Vec<_>>(), [2, 3, 1]);
        let rec = record_all(&got);
        assert_eq!(rec.attempts(), 3);
        assert_eq!(rec.outcome_count(Outcome::Failed), 2);
        rec.invariant_check().unwrap();
    }

    #[test]
    fn a_torn_last_row_is_left_out_only_when_tolerated() {
        let written: Vec<AttemptRecord> = (1..=4)
            .map(|i| record(i, i * 1000, Some(900), Outcome::Activated))
            .collect();
        let full = csv_of(&written);
        // Cut the last row in the middle, as a process killed mid-write leaves it.
        let last_start = full[..full.len() - 1]
            .iter()
            .rposition(|&b| b == b'\n')
            .unwrap()
            + 1;
        let torn = &full[..last_start + 20];
        let mut labels = Labels::default();
        let mut n = 0;
        let end = read_events(torn, 0, &mut labels, true, |_| n += 1).unwrap();
        assert_eq!((end.rows, end.torn_tail, n), (3, true, 3));
        let e = read_events(torn, 0, &mut labels, false, |_| {}).unwrap_err();
        assert!(e.starts_with("row 5:"), "{e}");
        // A bad row followed by good ones is corruption, not a torn tail.
        let text = String::from_utf8(full).unwrap();
        let broken = text.replacen(",activated,", ",exploded,", 1);
        let e = read_events(broken.as_bytes(), 0, &mut labels, true, |_| {}).unwrap_err();
        assert!(e.contains("unknown outcome `exploded`"), "{e}");
    }

    #[test]
    fn protocol_column_forms() {
        let v = |major, minor| Some(Version { major, minor });
        assert_eq!(parse_version("6.0"), v(6, 0));
        assert_eq!(parse_version("6"), v(6, 0));
        assert_eq!(parse_version("V5"), v(5, 0));
        assert_eq!(parse_version("x"), None);
    }
}
