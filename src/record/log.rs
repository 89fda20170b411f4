//! Histograms in HdrHistogram interval-log format (`.hlog`), written to any `io::Write`.
//! The report module chooses the files; this module only produces the bytes.
//!
//! ```text
//! #kmsload latency histograms; values in microseconds
//! #[StartTime: 1700000000.000 (seconds since epoch)]      when a start time is given
//! #[BaseTime: 1700000000.000 (seconds since epoch)]       interval timestamps are relative
//! Tag=total,12.000,1.000,1843.000,HISTFAAAA…              tag,start,length,max,base64(V2 deflate)
//! ```
//!
//! Two logs: [`Recorder::write_run_log`] (one interval covering the run per phase, outcome
//! and fault class, and per product and phase) and [`Recorder::write_timeline_log`] (one interval per second: fault-free
//! total time). The histograms use the compressed V2 encoding that the Java
//! `HistogramLogReader` and HistogramLogAnalyzer read.

use std::io;
use std::time::{Duration, SystemTime};

use hdrhistogram::Histogram;
use hdrhistogram::serialization::V2DeflateSerializer;
use hdrhistogram::serialization::interval_log::{
    IntervalLogWriterBuilder, IntervalLogWriterError, Tag,
};

use super::Recorder;

/// Writing an interval log failed.
#[derive(Debug, thiserror::Error)]
pub enum LogError {
    /// The writer failed.
    #[error("writing the histogram log: {0}")]
    Io(#[from] io::Error),
    /// A histogram could not be encoded.
    #[error("encoding a histogram for the log: {0}")]
    Encode(String),
}

impl<E: std::fmt::Debug> From<IntervalLogWriterError<E>> for LogError {
    fn from(e: IntervalLogWriterError<E>) -> Self {
        match e {
            IntervalLogWriterError::IoError(e) => Self::Io(e),
            IntervalLogWriterError::SerializeError(e) => Self::Encode(format!("{e:?}")),
        }
    }
}

fn builder(comment: &str, start: Option<SystemTime>) -> IntervalLogWriterBuilder {
    let mut b = IntervalLogWriterBuilder::new();
    b.add_comment(comment);
    match start {
        Some(t) => {
            b.with_start_time(t).with_base_time(t);
        }
        None => {
            b.add_comment("interval timestamps are seconds since the run start");
        }
    }
    b
}

fn tag(s: &str) -> Result<Tag<'_>, LogError> {
    Tag::new(s)
        .ok_or_else(|| LogError::Encode(format!("tag {s:?} has a character tags cannot hold")))
}

impl Recorder {
    /// Writes the whole-run histograms, one interval `[0, duration]` each, tagged
    /// `<phase>` (fault-free, all outcomes), `<phase>.<outcome>`, `faulted.<phase>` and
    /// `faulted.<phase>.<outcome>`; empty histograms are left out. `start` is the wall-clock
    /// run start, when known.
    ///
    /// # Errors
    /// [`LogError`] when the writer fails.
    pub fn write_run_log<W: io::Write>(
        &self,
        w: &mut W,
        start: Option<SystemTime>,
        duration: Duration,
    ) -> Result<(), LogError> {
        let mut ser = V2DeflateSerializer::new();
        let b = builder(
            "kmsload whole-run latency histograms; values in microseconds",
            start,
        );
        let mut log = b.begin_log_with(w, &mut ser)?;
        self.for_each_run_histogram(|t, h: &Histogram<u64>| {
            log.write_histogram(h, Duration::ZERO, duration, Some(tag(t)?))
                .map_err(LogError::from)
        })
    }

    /// Writes one interval per second that has fault-free latencies, tagged `total`: the
    /// per-second histograms behind the timeline's p50/p99.
    ///
    /// # Errors
    /// [`LogError`] when the writer fails.
    pub fn write_timeline_log<W: io::Write>(
        &self,
        w: &mut W,
        start: Option<SystemTime>,
    ) -> Result<(), LogError> {
        let mut ser = V2DeflateSerializer::new();
        let b = builder(
            "kmsload per-second total time (fault-free attempts); values in microseconds",
            start,
        );
        let mut log = b.begin_log_with(w, &mut ser)?;
        let total = tag("total")?;
        self.timeline_parts().for_each_histogram(|second, h| {
            log.write_histogram(
                h,
                Duration::from_secs(second),
                Duration::from_secs(1),
                Some(total),
            )
            .map_err(LogError::from)
        })
    }
}

#[cfg(test)]
mod tests {
    use hdrhistogram::serialization::Deserializer;
    use hdrhistogram::serialization::interval_log::{IntervalLogIterator, LogEntry};
    use uuid::Uuid;

    use super::*;
    use crate::record::{Application, AttemptRecord, Latencies, Outcome};
    use crate::wire::base::Version;

    fn rec(attempt: u64, total: u64, fault: Option<&'static str>) -> AttemptRecord {
        AttemptRecord {
            attempt,
            client_index: attempt,
            intended_start_us: attempt * 1000,
            cmid: Uuid::from_u64_pair(1, attempt),
            product: 0,
            protocol: Version::V6,
            latency: Latencies {
                connect_us: Some(100),
                bind_us: None,
                request_us: None,
                total_us: Some(total),
            },
            outcome: Outcome::Activated,
            code: 0,
            cause: None,
            fault,
            reported_count: Some(50),
            pool: Application::Windows,
            required: 25,
            host: 0,
            epid: None,
            hwid: None,
        }
    }

    /// Standard base64 (RFC 4648) decoder, enough for the log's histogram field.
    fn base64(s: &str) -> Vec<u8> {
        const A: &[u8] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
        let mut out = Vec::new();
        let (mut acc, mut bits) = (0u32, 0);
        for c in s.bytes().filter(|&c| c != b'=') {
            let v = A.iter().position(|&a| a == c).expect("base64 character") as u32;
            acc = acc << 6 | v;
            bits += 6;
            if bits >= 8 {
                bits -= 8;
                out.push((acc >> bits) as u8);
            }
        }
        out
    }

    /// (tag, start secs, histogram) of every interval.
    fn parse(log: &[u8]) -> Vec<(String, f64, Histogram<u64>)> {
        IntervalLogIterator::new(log)
            .filter_map(|e| match e.expect("parses") {
                LogEntry::Interval(h) => {
                    let bytes = base64(h.encoded_histogram());
                    let hist: Histogram<u64> = Deserializer::new()
                        .deserialize(&mut bytes.as_slice())
                        .expect("decodes");
                    Some((
                        h.tag().map(|t| t.as_str().to_owned()).unwrap_or_default(),
                        h.start_timestamp().as_secs_f64(),
                        hist,
                    ))
                }
                _ => None,
            })
            .collect()
    }

    #[test]
    fn run_log_round_trips() {
        let mut r = Recorder::new();
        for a in 0..50 {
            r.record(&rec(a, 1000 + a, None), a / 10);
        }
        r.record(&rec(50, 9_000_000, Some("stall")), 5);
        let mut out = Vec::new();
        r.write_run_log(&mut out, None, Duration::from_secs(6))
            .expect("writes");
        let text = String::from_utf8_lossy(&out);
        assert!(text.starts_with("#kmsload whole-run"));
        let got = parse(&out);
        let tags: Vec<&str> = got.iter().map(|(t, _, _)| t.as_str()).collect();
        assert_eq!(
            tags,
            [
                "connect",
                "connect.activated",
                "total",
                "total.activated",
                "faulted.connect",
                "faulted.connect.activated",
                "faulted.total",
                "faulted.total.activated",
                "product.0.connect",
                "product.0.total"
            ]
        );
        assert_eq!(got[9].2.len(), 50, "the product's fault-free attempts");
        let total = &got[2].2;
        assert_eq!(total.len(), 50);
        assert_eq!(total.max(), 1049);
        assert_eq!(got[6].2.len(), 1);
        assert!(got[6].2.max() >= 9_000_000);
    }

    #[test]
    fn timeline_log_has_one_interval_per_second() {
        let mut r = Recorder::new();
        for a in 0..60 {
            r.record(&rec(a, 100 * (a % 10 + 1), None), a / 10);
        }
        // A faulted attempt alone in second 9 adds no interval.
        r.record(&rec(60, 5, Some("delay")), 9);
        let start = SystemTime::UNIX_EPOCH + Duration::from_secs(1_700_000_000);
        let mut out = Vec::new();
        r.write_timeline_log(&mut out, Some(start)).expect("writes");
        let text = String::from_utf8_lossy(&out);
        assert!(text.contains("#[BaseTime: 1700000000.000"), "{text}");
        let got = parse(&out);
        assert_eq!(got.len(), 6);
        for (i, (tag, at, h)) in got.iter().enumerate() {
            assert_eq!(tag, "total");
            assert_eq!(*at, i as f64);
            assert_eq!(h.len(), 10);
            assert_eq!(h.value_at_quantile(0.5), 500);
        }
        let rows = r.timeline();
        assert_eq!(rows[0].p50_us, Some(500));
        assert_eq!(rows[0].p99_us, Some(1000));
    }

    #[test]
    fn writer_errors_surface() {
        struct Broken;
        impl io::Write for Broken {
            fn write(&mut self, _: &[u8]) -> io::Result<usize> {
                Err(io::Error::other("disk full"))
            }
            fn flush(&mut self) -> io::Result<()> {
                Ok(())
            }
        }
        let mut r = Recorder::new();
        r.record(&rec(0, 10, None), 0);
        let e = r
            .write_run_log(&mut Broken, None, Duration::from_secs(1))
            .expect_err("fails");
        assert!(matches!(e, LogError::Io(_)), "{e}");
        let e = r.write_timeline_log(&mut Broken, None).expect_err("fails");
        assert!(e.to_string().contains("disk full"), "{e}");
    }
}
