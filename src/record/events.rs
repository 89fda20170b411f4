//! `events.csv`: one row per attempt, written as attempts complete.
//!
//! ```text
//! intended_start_us,client_index,cmid,product,protocol,connect_us,bind_us,request_us,
//! total_us,outcome,code,reported_count,fault,cause,attempt,host
//! 10000,1,3f2a…-4…,Windows 10/11 Pro,V6,212,301,1022,1611,activated,0x00000000,50,,,1,0
//! ```
//!
//! Missing values (a phase that did not happen, no count, no fault) are empty fields. The
//! header is written when the writer is created, so a run with no attempts still produces a
//! valid file. Rows borrow from the record: no allocation per row beyond the csv buffer.

use std::io;

use serde::{Serialize, Serializer};
use uuid::Uuid;

use super::{AttemptRecord, HexCode};
use crate::catalog::products;
use crate::wire::base::Version;

/// Which attempts get a row (`events` key, `--events`). At tens of thousands of attempts per
/// second a row per attempt is ~1 MB/s; the summary, the histograms and the timeline do not
/// depend on it.
#[derive(
    Debug, Clone, Copy, PartialEq, Eq, Default, serde::Deserialize, Serialize, clap::ValueEnum,
)]
#[serde(rename_all = "kebab-case")]
pub enum EventsMode {
    /// events.csv: one row per attempt.
    #[default]
    Full,
    /// failures.csv, with events.csv's columns: only the attempts that did not activate (not
    /// activated or failed). No events.csv, which always means every attempt.
    Failures,
    /// Neither file.
    Off,
}

impl EventsMode {
    /// The name as written in the scenario file and summary.json.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Full => "full",
            Self::Failures => "failures",
            Self::Off => "off",
        }
    }
}

/// One `events.csv` row, borrowed from an [`AttemptRecord`].
#[derive(Debug, Clone, Serialize)]
pub struct EventRow<'a> {
    /// Intended start, µs from the run start.
    pub intended_start_us: u64,
    /// Fleet index of the client.
    pub client_index: u64,
    /// CMID, hyphenated.
    pub cmid: Uuid,
    /// Product name (`#<index>` when not in the catalog).
    pub product: ProductName,
    /// Protocol version as the rest of kmsload writes it: `V6` (`V6.1` for a minor version).
    pub protocol: VersionText,
    /// Connect time, µs.
    pub connect_us: Option<u64>,
    /// Bind round trip, µs.
    pub bind_us: Option<u64>,
    /// Request round trip, µs.
    pub request_us: Option<u64>,
    /// Total time, µs.
    pub total_us: Option<u64>,
    /// `activated`, `not_activated` or `failed`.
    pub outcome: &'static str,
    /// HRESULT, `0xC004F038`.
    pub code: HexCode,
    /// Count reported by the host.
    pub reported_count: Option<u32>,
    /// Injected fault that touched the attempt.
    pub fault: Option<&'static str>,
    /// Failure cause.
    pub cause: Option<&'a str>,
    /// Attempt number.
    pub attempt: u64,
    /// Host index.
    pub host: u16,
}

impl<'a> EventRow<'a> {
    /// Column names, in order.
    pub const HEADER: [&'static str; 16] = [
        "intended_start_us",
        "client_index",
        "cmid",
        "product",
        "protocol",
        "connect_us",
        "bind_us",
        "request_us",
        "total_us",
        "outcome",
        "code",
        "reported_count",
        "fault",
        "cause",
        "attempt",
        "host",
    ];

    /// The row of `rec`.
    pub fn new(rec: &'a AttemptRecord) -> Self {
        Self {
            intended_start_us: rec.intended_start_us,
            client_index: rec.client_index,
            cmid: rec.cmid,
            product: ProductName(rec.product),
            protocol: VersionText(rec.protocol),
            connect_us: rec.latency.connect_us,
            bind_us: rec.latency.bind_us,
            request_us: rec.latency.request_us,
            total_us: rec.latency.total_us,
            outcome: rec.outcome.as_str(),
            code: HexCode(rec.code),
            reported_count: rec.reported_count,
            fault: rec.fault,
            cause: rec.cause,
            attempt: rec.attempt,
            host: rec.host,
        }
    }
}

/// A catalog index written as the product's name.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ProductName(pub u16);

impl Serialize for ProductName {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        match products().get(usize::from(self.0)) {
            Some(p) => s.serialize_str(&p.name),
            None => s.collect_str(&format_args!("#{}", self.0)),
        }
    }
}

/// A protocol version written as the reports, the host log and `kmsload activate` write it:
/// `V6`, or `V6.1` when the minor version is not 0. No allocation per row.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct VersionText(pub Version);

impl Serialize for VersionText {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        let mut buf = [0u8; 13];
        buf[0] = b'V';
        let mut n = push_decimal(&mut buf, 1, self.0.major);
        if self.0.minor != 0 {
            buf[n] = b'.';
            n = push_decimal(&mut buf, n + 1, self.0.minor);
        }
        // 'V', digits and '.' only: always ASCII.
        s.serialize_str(std::str::from_utf8(&buf[..n]).unwrap_or("?"))
    }
}

/// Writes `v` in decimal at `buf[at..]`, returns the end. `buf` has room for 5 digits.
fn push_decimal(buf: &mut [u8; 13], at: usize, v: u16) -> usize {
    let mut digits = [0u8; 5];
    let mut i = digits.len();
    let mut v = v;
    loop {
        i -= 1;
        digits[i] = b'0' + (v % 10) as u8;
        v /= 10;
        if v == 0 {
            break;
        }
    }
    let len = digits.len() - i;
    buf[at..at + len].copy_from_slice(&digits[i..]);
    at + len
}

/// Writes `events.csv` rows to any writer.
pub struct EventWriter<W: io::Write> {
    csv: csv::Writer<W>,
}

impl<W: io::Write> EventWriter<W> {
    /// Wraps `w` and writes the header line.
    ///
    /// # Errors
    /// The writer's I/O error.
    pub fn new(w: W) -> Result<Self, csv::Error> {
        let mut csv = csv::WriterBuilder::new().has_headers(false).from_writer(w);
        csv.write_record(EventRow::HEADER)?;
        Ok(Self { csv })
    }

    /// Writes the row of `rec`.
    ///
    /// # Errors
    /// The writer's I/O error.
    pub fn write(&mut self, rec: &AttemptRecord) -> Result<(), csv::Error> {
        self.csv.serialize(EventRow::new(rec))
    }

    /// Flushes buffered rows to the writer.
    ///
    /// # Errors
    /// The writer's I/O error.
    pub fn flush(&mut self) -> io::Result<()> {
        self.csv.flush()
    }

    /// Flushes and returns the writer.
    ///
    /// # Errors
    /// The writer's I/O error on the final flush.
    pub fn into_inner(self) -> Result<W, io::Error> {
        self.csv
            .into_inner()
            .map_err(|e| io::Error::new(e.error().kind(), e.error().to_string()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::record::{Application, Latencies, Outcome};

    fn rec() -> AttemptRecord {
        AttemptRecord {
            attempt: 7,
            client_index: 3,
            intended_start_us: 70_000,
            cmid: Uuid::from_u64_pair(0x0102_0304_0506_4708, 0x890A_0B0C_0D0E_0F10),
            product: 0,
            protocol: Version::V6,
            latency: Latencies {
                connect_us: Some(212),
                bind_us: None,
                request_us: None,
                total_us: Some(5000),
            },
            outcome: Outcome::Failed,
            code: 0x8007_2746,
            cause: Some("reset in bind"),
            fault: Some("reset"),
            reported_count: None,
            pool: Application::Windows,
            required: 25,
            host: 1,
            epid: None,
            hwid: None,
        }
    }

    fn written(recs: &[AttemptRecord]) -> String {
        let mut w = EventWriter::new(Vec::new()).expect("header");
        for r in recs {
            w.write(r).expect("row");
        }
        String::from_utf8(w.into_inner().expect("flush")).expect("utf-8")
    }

    #[test]
    fn header_matches_the_struct_fields() {
        let mut csv = csv::Writer::from_writer(Vec::new());
        csv.serialize(EventRow::new(&rec())).expect("row");
        let out = String::from_utf8(csv.into_inner().expect("flush")).expect("utf-8");
        assert_eq!(
            out.lines().next(),
            Some(EventRow::HEADER.join(",").as_str())
        );
    }

    #[test]
    fn rows_have_empty_fields_for_missing_values() {
        let out = written(&[rec()]);
        let mut lines = out.lines();
        assert_eq!(lines.next(), Some(EventRow::HEADER.join(",").as_str()));
        let name = &products()[0].name;
        let want = format!(
            "70000,3,01020304-0506-4708-890a-0b0c0d0e0f10,{name},V6,212,,,5000,failed,0x80072746,,reset,reset in bind,7,1"
        );
        assert_eq!(lines.next(), Some(want.as_str()));
        assert_eq!(lines.next(), None);
    }

    #[test]
    fn empty_runs_still_have_a_header_and_rows_parse_back() {
        assert_eq!(written(&[]), EventRow::HEADER.join(",") + "\n");
        let mut r = rec();
        r.product = 60_000;
        r.protocol = Version {
            major: 65_535,
            minor: 7,
        };
        r.outcome = Outcome::Activated;
        r.code = 0;
        r.reported_count = Some(50);
        r.fault = None;
        r.cause = None;
        let out = written(&[r, rec()]);
        let mut rd = csv::Reader::from_reader(out.as_bytes());
        let rows: Vec<csv::StringRecord> = rd.records().collect::<Result<_, _>>().expect("parses");
        assert_eq!(rows.len(), 2);
        assert_eq!(&rows[0][3], "#60000");
        assert_eq!(&rows[0][4], "V65535.7");
        assert_eq!(&rows[1][4], "V6");
        assert_eq!(&rows[0][10], "0x00000000");
        assert_eq!(&rows[0][11], "50");
        assert_eq!(&rows[0][12], "");
    }

    #[test]
    fn fields_with_commas_and_quotes_are_quoted() {
        let mut r = rec();
        r.cause = Some("timeout, \"bind\"");
        let out = written(&[r]);
        assert!(out.contains(",\"timeout, \"\"bind\"\"\","), "{out}");
        let mut rd = csv::Reader::from_reader(out.as_bytes());
        let row = rd.records().next().expect("a row").expect("parses");
        assert_eq!(&row[13], "timeout, \"bind\"");
    }
}
