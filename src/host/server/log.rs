//! What the server logs: one [`LogEvent`] per answered request and per dropped connection,
//! each printed as one line (text, or one JSON object with `--log-format json`), and the
//! [`Logger`] they go to (a [`LogWriter`] on stderr for `kmsload host`, nothing for the
//! in-process host, a closure in tests).
//!
//! # Off the hot path, and what happens when the sink is slow
//! [`Logger::writer`] hands each event to a bounded channel ([`LOG_QUEUE`] events) read by
//! one dedicated thread, which formats the events into a buffered writer and flushes it at
//! least every [`LOG_FLUSH`] and at exit ([`LogWriter::finish`]). A connection task only
//! ever tries to enqueue: it never formats, writes or waits, and while lines keep coming it
//! does not wake the thread either: the thread takes what arrived every [`LOG_POLL`] and
//! blocks on the queue only once a poll finds it empty. (Woken for each line, the thread's
//! futex calls and the context switches that pre-empted the connection tasks cost the host
//! more than the lines themselves.) When the queue is full (the
//! sink, e.g. a terminal or a slow disk, cannot keep up with the host) the event is
//! **dropped and counted** rather than slowing the host down: the writer then adds the line
//! `N log lines dropped: the log sink is slower than the host` at its next flush (at most
//! one such line per flush), and the total is in the summary at exit
//! ([`super::ServerReport::log_lines_dropped`]). The host's counters never depend on the
//! log, so a dropped line loses nothing but the line.

use std::fmt;
use std::io::{self, BufWriter, Write};
use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::mpsc::{self, RecvTimeoutError, SyncSender, TryRecvError, TrySendError};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use uuid::Uuid;

use serde::ser::{Serialize, SerializeMap, Serializer};

use crate::catalog::hresult::code;
use crate::catalog::lookup;
use crate::host::model::Refusal;
use crate::wire::base::civil_from_days;
use crate::wire::kms::RequestError;
use crate::wire::rpc::FrameError;
use crate::wire::session::CloseReason;
use crate::wire::{FileTime, Version};

/// Receives the server's log events (one per request, one per dropped connection).
#[derive(Clone)]
pub struct Logger(Arc<dyn Fn(&LogEvent) + Send + Sync>);

impl Logger {
    /// A logger calling `f` for every event.
    pub fn new(f: impl Fn(&LogEvent) + Send + Sync + 'static) -> Self {
        Self(Arc::new(f))
    }

    /// One line per event written synchronously on stderr, in the caller's task: simple but
    /// on the hot path. `kmsload host` uses [`Logger::writer`] instead.
    pub fn stderr() -> Self {
        Self::new(|event| {
            let _ = writeln!(io::stderr().lock(), "{event}");
        })
    }

    /// A logger feeding a dedicated writer thread that writes `format` lines to `sink`
    /// (see the module docs for the queue, the flushes and the drop policy). The thread runs
    /// until [`LogWriter::finish`].
    ///
    /// # Errors
    /// The thread cannot be started.
    pub fn writer(
        sink: Box<dyn Write + Send>,
        format: LogFormat,
        capacity: usize,
    ) -> io::Result<(Self, LogWriter)> {
        let (tx, rx) = mpsc::sync_channel::<Message>(capacity);
        let counters = Arc::new(WriterCounters::default());
        let thread = std::thread::Builder::new()
            .name("kmsload-log".into())
            .spawn({
                let counters = Arc::clone(&counters);
                move || write_loop(&rx, sink, format, &counters)
            })?;
        let logger = Self::new({
            let tx = tx.clone();
            let counters = Arc::clone(&counters);
            move |event| match tx.try_send(Message::Event(event.clone())) {
                Ok(()) => {
                    counters.queued.fetch_add(1, Ordering::Relaxed);
                }
                // Full: the sink is behind. Disconnected: the writer has finished (a
                // straggler after the stop). Either way the line is counted, not waited for.
                Err(TrySendError::Full(_) | TrySendError::Disconnected(_)) => {
                    counters.dropped.fetch_add(1, Ordering::Relaxed);
                }
            }
        });
        Ok((
            logger,
            LogWriter {
                tx,
                thread,
                counters,
            },
        ))
    }

    pub(super) fn log(&self, event: &LogEvent) {
        (self.0)(event);
    }
}

impl fmt::Debug for Logger {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Logger")
    }
}

/// Events the writer thread's queue holds (`kmsload host`).
pub const LOG_QUEUE: usize = 8192;

/// How long [`LogWriter::finish`] waits at exit for the sink to take the last lines
/// (`kmsload host`).
pub const LOG_EXIT_GRACE: Duration = Duration::from_secs(2);

/// The writer thread flushes at least this often while there is something to write.
pub const LOG_FLUSH: Duration = Duration::from_millis(100);

/// While lines keep coming, the writer thread takes them this often instead of being woken
/// for each (see [`LogWriter`]'s thread). [`LOG_QUEUE`] holds about 100 ms of lines at the
/// rate this machine's host answers, many polls' worth.
pub const LOG_POLL: Duration = Duration::from_millis(5);

/// The log line format (`--log-format`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, clap::ValueEnum)]
pub enum LogFormat {
    /// One line of text per event (see [`LogEvent`]'s `Display`).
    #[default]
    Text,
    /// One JSON object per line (see [`LogEvent::to_json`]).
    Json,
}

enum Message {
    Event(LogEvent),
    Stop,
}

/// The writer thread of a [`Logger::writer`]; [`finish`](Self::finish) it at exit.
#[derive(Debug)]
pub struct LogWriter {
    tx: SyncSender<Message>,
    thread: JoinHandle<LogTotals>,
    counters: Arc<WriterCounters>,
}

/// Counters shared by the logging side and the writer thread.
#[derive(Debug, Default)]
struct WriterCounters {
    /// Events dropped because the queue was full.
    dropped: AtomicU64,
    /// Events put on the queue.
    queued: AtomicU64,
    /// Events the thread has handed to the sink's buffer (updated once per batch).
    written: AtomicU64,
    /// Times an event woke the thread from a wait on the empty queue.
    wakeups: AtomicU64,
}

/// What a [`LogWriter`] did.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct LogTotals {
    /// Event lines written to the sink.
    pub written: u64,
    /// Events dropped because the queue was full.
    pub dropped: u64,
    /// Events queued but not written when [`LogWriter::finish`] gave up on a stuck sink.
    pub unwritten: u64,
}

impl LogWriter {
    /// Events dropped so far because the queue was full.
    pub fn dropped(&self) -> u64 {
        self.counters.dropped.load(Ordering::Relaxed)
    }

    /// Times a logged event had to wake the writer thread so far (see [`LOG_POLL`]).
    pub fn wakeups(&self) -> u64 {
        self.counters.wakeups.load(Ordering::Relaxed)
    }

    /// Writes what is queued, the drop count if any is not reported yet, flushes and stops
    /// the thread, waiting at most `grace` for the sink to take it all. A sink that is not
    /// read (stderr piped to a process that stopped reading) must not keep the host from
    /// exiting: past `grace` the thread is left blocked in its write (it ends with the
    /// process) and the lines it still held are counted in [`LogTotals::unwritten`].
    pub fn finish(self, grace: Duration) -> LogTotals {
        let deadline = Instant::now() + grace;
        let mut stop = Message::Stop;
        // The queue may be full of lines for a sink that is stuck: retry until the deadline.
        loop {
            match self.tx.try_send(stop) {
                Ok(()) | Err(TrySendError::Disconnected(_)) => break,
                Err(TrySendError::Full(back)) if Instant::now() < deadline => {
                    stop = back;
                    std::thread::sleep(Duration::from_millis(5));
                }
                Err(TrySendError::Full(_)) => break,
            }
        }
        drop(self.tx);
        while !self.thread.is_finished() && Instant::now() < deadline {
            std::thread::sleep(Duration::from_millis(5));
        }
        let dropped = self.counters.dropped.load(Ordering::Relaxed);
        if self.thread.is_finished() {
            let mut totals = self.thread.join().unwrap_or_default();
            totals.dropped = dropped;
            return totals;
        }
        let written = self.counters.written.load(Ordering::Relaxed);
        LogTotals {
            written,
            dropped,
            unwritten: self
                .counters
                .queued
                .load(Ordering::Relaxed)
                .saturating_sub(written),
        }
    }
}

/// The writer thread: batches whatever is queued into a buffer, flushes at least every
/// [`LOG_FLUSH`] and reports new drops at each flush.
///
/// While lines keep coming the thread does not wait on the queue: it sleeps [`LOG_POLL`] and
/// takes everything that arrived meanwhile, so a logging task's `try_send` finds no waiting
/// receiver and wakes nobody (waking the thread for each line, a futex call and a context
/// switch that pre-empts a connection task, cost more than writing the line). Only when a poll
/// finds the queue empty does the thread block on it (an idle host costs nothing), and the
/// next line wakes it: at most one wake-up per [`LOG_POLL`], counted in `wakeups`.
fn write_loop(
    rx: &mpsc::Receiver<Message>,
    sink: Box<dyn Write + Send>,
    format: LogFormat,
    counters: &WriterCounters,
) -> LogTotals {
    let mut out = BufWriter::with_capacity(64 * 1024, sink);
    let mut lines = LineWriter::new(format);
    let mut written = 0u64;
    let mut reported = 0u64;
    let mut pending = false;
    let mut idle = true;
    let mut last_flush = Instant::now();
    let flush = |out: &mut BufWriter<Box<dyn Write + Send>>, reported: &mut u64| {
        let now = counters.dropped.load(Ordering::Relaxed);
        if now > *reported {
            let _ = writeln!(
                out,
                "{} log lines dropped: the log sink is slower than the host",
                now - *reported
            );
            *reported = now;
        }
        let _ = out.flush();
    };
    loop {
        let mut stop = false;
        let mut batch = 0u64;
        if idle {
            let wait = LOG_FLUSH.saturating_sub(last_flush.elapsed());
            match rx.recv_timeout(wait) {
                Ok(Message::Event(event)) => {
                    counters.wakeups.fetch_add(1, Ordering::Relaxed);
                    lines.write(&mut out, &event);
                    batch += 1;
                }
                Ok(Message::Stop) | Err(RecvTimeoutError::Disconnected) => stop = true,
                Err(RecvTimeoutError::Timeout) => {}
            }
        } else {
            std::thread::sleep(LOG_POLL);
        }
        // Take what else is queued before looking at the clock again.
        while !stop {
            match rx.try_recv() {
                Ok(Message::Event(event)) => {
                    lines.write(&mut out, &event);
                    batch += 1;
                }
                Ok(Message::Stop) | Err(TryRecvError::Disconnected) => stop = true,
                Err(TryRecvError::Empty) => break,
            }
        }
        if batch > 0 {
            written += batch;
            counters.written.store(written, Ordering::Relaxed);
            pending = true;
        }
        idle = batch == 0;
        if stop {
            flush(&mut out, &mut reported);
            break;
        }
        if last_flush.elapsed() >= LOG_FLUSH {
            if pending || counters.dropped.load(Ordering::Relaxed) > reported {
                flush(&mut out, &mut reported);
                pending = false;
            }
            last_flush = Instant::now();
        }
    }
    LogTotals {
        written,
        dropped: reported,
        unwritten: 0,
    }
}

/// Writes events as lines of one format, keeping the text of the last line's time: the
/// lines of one second share it (formatting the date was the largest piece of the writer
/// thread's work per line in a profile at 80,000 lines a second).
struct LineWriter {
    format: LogFormat,
    /// The second `time` is the text of.
    secs: Option<i64>,
    time: String,
}

impl LineWriter {
    fn new(format: LogFormat) -> Self {
        Self {
            format,
            secs: None,
            time: String::new(),
        }
    }

    /// One line, the same bytes as the event's `Display` (text) or `to_json` (JSON) and a
    /// newline.
    fn write(&mut self, out: &mut impl Write, event: &LogEvent) {
        let time = event.time();
        if self.secs != Some(time.unix_secs()) {
            self.time.clear();
            let _ = fmt::Write::write_fmt(&mut self.time, format_args!("{}", Utc(time)));
            self.secs = Some(time.unix_secs());
        }
        let _ = match self.format {
            LogFormat::Text => writeln!(out, "{} {}", self.time, AfterTime(event)),
            LogFormat::Json => {
                let line = JsonLine {
                    event,
                    time: &self.time,
                };
                serde_json::to_writer(&mut *out, &line)
                    .map_err(io::Error::from)
                    .and_then(|()| out.write_all(b"\n"))
            }
        };
    }
}

/// Something worth a log line.
#[derive(Debug, Clone)]
pub enum LogEvent {
    /// A KMS request was answered.
    Request(RequestEvent),
    /// A connection was closed for misbehaving (not for a normal close).
    Dropped {
        /// Host time.
        time: FileTime,
        /// The peer.
        peer: SocketAddr,
        /// Why.
        reason: DropReason,
    },
    /// Saving the `--state` file failed; the table in memory is intact and the save is
    /// tried again at the next interval (and at stop).
    SaveFailed {
        /// Host time.
        time: FileTime,
        /// The state file.
        path: std::path::PathBuf,
        /// What went wrong.
        error: String,
    },
    /// Accepting connections failed (e.g. out of file descriptors): at most one event per
    /// second, with the number of failures since the last one.
    AcceptErrors {
        /// Host time.
        time: FileTime,
        /// Failed accepts this event stands for.
        count: u64,
        /// The last failure.
        error: String,
    },
}

/// One answered KMS request.
#[derive(Debug, Clone)]
pub struct RequestEvent {
    /// Host time of the answer.
    pub time: FileTime,
    /// The client's address.
    pub peer: SocketAddr,
    /// The request's version (`None` when the payload was too short to have one).
    pub protocol: Option<Version>,
    /// CMID, SKU ID and KMS counted ID, when the request decoded.
    pub ids: Option<RequestIds>,
    /// What the host answered.
    pub outcome: RequestOutcome,
}

/// The identifiers of a decoded request.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RequestIds {
    /// `ClientMachineID`.
    pub cmid: Uuid,
    /// `SkuID`.
    pub sku_id: Uuid,
    /// `KmsCountedID`.
    pub kms_id: Uuid,
}

/// What the host answered to one request.
#[derive(Debug, Clone)]
pub enum RequestOutcome {
    /// A response with count ≥ N: the client activates.
    Activated {
        /// `CurrentCount` sent.
        count: u32,
        /// The request's `RequiredClientCount`.
        required: u32,
    },
    /// A response with count < N: the client reports 0xC004F038.
    LowCount {
        /// `CurrentCount` sent.
        count: u32,
        /// The request's `RequiredClientCount`.
        required: u32,
    },
    /// The model refused; its HRESULT went into the response stub.
    Refused(Refusal),
    /// The payload did not decode; 0x8007000D went into the response stub.
    Invalid(RequestError),
}

impl RequestOutcome {
    /// The HRESULT on the wire (0 for a response).
    pub fn hresult(&self) -> u32 {
        match self {
            Self::Activated { .. } | Self::LowCount { .. } => 0,
            Self::Refused(r) => r.hresult(),
            Self::Invalid(_) => code::ERROR_INVALID_DATA,
        }
    }
}

/// Why a connection was dropped.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum DropReason {
    /// No whole PDU within the idle timeout.
    IdleTimeout,
    /// The bytes are not DCE/RPC.
    Framing(FrameError),
    /// The session refused the PDU (malformed, out of order, ...).
    Rejected(CloseReason),
    /// The peer closed in the middle of a PDU.
    Truncated,
    /// A write did not complete within the idle timeout.
    WriteTimeout,
    /// The socket failed (reset, ...).
    Io(io::ErrorKind),
}

impl fmt::Display for DropReason {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::IdleTimeout => f.write_str("idle timeout: no whole PDU in time"),
            Self::Framing(e) => write!(f, "not DCE/RPC: {e}"),
            Self::Rejected(r) => write!(f, "{r}"),
            Self::Truncated => f.write_str("peer closed in the middle of a PDU"),
            Self::WriteTimeout => f.write_str("write timed out"),
            Self::Io(kind) => write!(f, "socket error: {kind}"),
        }
    }
}

/// One line: time, peer, protocol, CMID, product, outcome, HRESULT, count (and why, when not
/// activated):
///
/// ```text
/// 2026-11-22T01:26:21Z 127.0.0.1:50112 V6 cmid=… "Windows 10/11 Enterprise" activated 0x00000000 count 25/25
/// 2026-11-22T01:26:21Z 127.0.0.1:50114 V6 cmid=… "Office 2019 Standard" refused 0xC004F042 count - (KMS ID …)
/// 2026-11-22T01:26:22Z 127.0.0.1:50120 connection dropped: idle timeout: no whole PDU in time
/// ```
impl fmt::Display for LogEvent {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} {}", Utc(self.time()), AfterTime(self))
    }
}

/// A text line after its time and the space that follows it (the writer thread writes the
/// time from its [`LineWriter`] cache).
struct AfterTime<'a>(&'a LogEvent);

impl fmt::Display for AfterTime<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.0 {
            LogEvent::Request(r) => {
                write!(f, "{} ", r.peer)?;
                match r.protocol {
                    Some(v) if v.minor == 0 => write!(f, "V{} ", v.major)?,
                    Some(v) => write!(f, "V{v} ")?,
                    None => f.write_str("V? ")?,
                }
                match &r.ids {
                    Some(ids) => write!(
                        f,
                        "cmid={} \"{}\" ",
                        ids.cmid,
                        ProductLabel(ids.sku_id, ids.kms_id)
                    )?,
                    None => f.write_str("cmid=- - ")?,
                }
                match &r.outcome {
                    RequestOutcome::Activated { count, required } => {
                        write!(f, "activated 0x00000000 count {count}/{required}")
                    }
                    RequestOutcome::LowCount { count, required } => write!(
                        f,
                        "not_activated 0xC004F038 count {count}/{required} (below threshold)"
                    ),
                    RequestOutcome::Refused(refusal) => {
                        // Refusal's Display is "0xCODE: reason"; the code is written first.
                        let text = refusal.to_string();
                        let reason = text.split_once(": ").map_or(text.as_str(), |(_, r)| r);
                        write!(f, "refused 0x{:08X} count - ({reason})", refusal.hresult())
                    }
                    RequestOutcome::Invalid(e) => {
                        write!(f, "refused 0x8007000D count - (undecodable request: {e})")
                    }
                }
            }
            LogEvent::Dropped { peer, reason, .. } => {
                write!(f, "{peer} connection dropped: {reason}")
            }
            LogEvent::SaveFailed { path, error, .. } => write!(
                f,
                "state NOT saved to {}: {error} (the table in memory is intact; the save \
                 is tried again at the next interval)",
                path.display()
            ),
            LogEvent::AcceptErrors { count, error, .. } => write!(
                f,
                "{count} connection{} not accepted: {error}{}",
                if *count == 1 { "" } else { "s" },
                if error.contains("Too many open files") || error.contains("os error 24") {
                    " (the open-file limit is reached: raise ulimit -n or lower --max-connections)"
                } else {
                    ""
                }
            ),
        }
    }
}

impl LogEvent {
    /// The event as one JSON object (`--log-format json`). Every object has `time` (RFC 3339,
    /// UTC) and `event`; a request (`"event": "request"`) has `peer`, `protocol` (`"V6"`, or
    /// null when undecodable), `product` (name), `cmid`, `outcome` (`activated`,
    /// `not_activated`, `refused`), `code` (HRESULT as `"0xC004F038"`), `count` (sent
    /// `CurrentCount`, null when refused), `required` and, when not activated, `reason`.
    pub fn to_json(&self) -> serde_json::Value {
        // Serialising plain text and numbers into a `Value` cannot fail.
        serde_json::to_value(JsonLine {
            event: self,
            time: &Utc(self.time()).to_string(),
        })
        .unwrap_or_default()
    }

    /// Host time of the event.
    pub fn time(&self) -> FileTime {
        match self {
            Self::Request(r) => r.time,
            Self::Dropped { time, .. }
            | Self::SaveFailed { time, .. }
            | Self::AcceptErrors { time, .. } => *time,
        }
    }
}

/// [`LogEvent`] as its JSON object, serialised straight from the event: every text value is
/// written through its `Display` into the output, so a line costs no `String` or map (the
/// writer thread formats thousands of lines a second). Keys in alphabetical order, as
/// `serde_json::Value` objects print them.
struct JsonLine<'a> {
    event: &'a LogEvent,
    /// The event's time as [`Utc`] writes it.
    time: &'a str,
}

/// A value serialised as the string its `Display` writes.
struct Displayed<T>(T);

impl<T: fmt::Display> Serialize for Displayed<T> {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.collect_str(&self.0)
    }
}

/// The protocol as the log writes it: `V6`, `V4`, or `V5.1` for a minor version.
struct ProtocolLabel(Version);

impl fmt::Display for ProtocolLabel {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.0.minor == 0 {
            write!(f, "V{}", self.0.major)
        } else {
            write!(f, "V{}", self.0)
        }
    }
}

/// The text after `0xCODE: ` in a refusal's `Display`, the reason alone.
struct RefusalReason<'a>(&'a Refusal);

impl fmt::Display for RefusalReason<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let text = self.0.to_string();
        f.write_str(text.split_once(": ").map_or(text.as_str(), |(_, r)| r))
    }
}

/// An HRESULT as `0xC004F038`.
struct Code(u32);

impl fmt::Display for Code {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "0x{:08X}", self.0)
    }
}

impl Serialize for JsonLine<'_> {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        match self.event {
            LogEvent::Request(r) => {
                let (outcome, count, required) = match &r.outcome {
                    RequestOutcome::Activated { count, required } => {
                        ("activated", Some(*count), Some(*required))
                    }
                    RequestOutcome::LowCount { count, required } => {
                        ("not_activated", Some(*count), Some(*required))
                    }
                    RequestOutcome::Refused(_) | RequestOutcome::Invalid(_) => {
                        ("refused", None, None)
                    }
                };
                // As in the text line: a low count is a response on the wire (0) that the
                // client reports as 0xC004F038.
                let code = match &r.outcome {
                    RequestOutcome::LowCount { .. } => code::SL_E_VL_NOT_ENOUGH_COUNT,
                    other => other.hresult(),
                };
                let mut map = serializer.serialize_map(None)?;
                map.serialize_entry("cmid", &r.ids.map(|ids| Displayed(ids.cmid)))?;
                map.serialize_entry("code", &Displayed(Code(code)))?;
                map.serialize_entry("count", &count)?;
                map.serialize_entry("event", "request")?;
                map.serialize_entry("outcome", outcome)?;
                map.serialize_entry("peer", &Displayed(r.peer))?;
                map.serialize_entry(
                    "product",
                    &r.ids
                        .map(|ids| Displayed(ProductLabel(ids.sku_id, ids.kms_id))),
                )?;
                map.serialize_entry("protocol", &r.protocol.map(|v| Displayed(ProtocolLabel(v))))?;
                match &r.outcome {
                    RequestOutcome::Activated { .. } => {}
                    RequestOutcome::LowCount { .. } => {
                        map.serialize_entry("reason", "below threshold")?;
                    }
                    RequestOutcome::Refused(refusal) => {
                        map.serialize_entry("reason", &Displayed(RefusalReason(refusal)))?;
                    }
                    RequestOutcome::Invalid(e) => map.serialize_entry(
                        "reason",
                        &Displayed(format_args!("undecodable request: {e}")),
                    )?,
                }
                map.serialize_entry("required", &required)?;
                map.serialize_entry("time", self.time)?;
                map.end()
            }
            LogEvent::Dropped { peer, reason, .. } => {
                let mut map = serializer.serialize_map(Some(4))?;
                map.serialize_entry("event", "connection_dropped")?;
                map.serialize_entry("peer", &Displayed(peer))?;
                map.serialize_entry("reason", &Displayed(reason))?;
                map.serialize_entry("time", self.time)?;
                map.end()
            }
            LogEvent::SaveFailed { path, error, .. } => {
                let mut map = serializer.serialize_map(Some(4))?;
                map.serialize_entry("error", error)?;
                map.serialize_entry("event", "state_not_saved")?;
                map.serialize_entry("path", &Displayed(path.display()))?;
                map.serialize_entry("time", self.time)?;
                map.end()
            }
            LogEvent::AcceptErrors { count, error, .. } => {
                let mut map = serializer.serialize_map(Some(4))?;
                map.serialize_entry("count", count)?;
                map.serialize_entry("error", error)?;
                map.serialize_entry("event", "accept_errors")?;
                map.serialize_entry("time", self.time)?;
                map.end()
            }
        }
    }
}

/// The catalog's product name for a SKU ID, else the KMS ID's name, else the SKU ID.
struct ProductLabel(Uuid, Uuid);

impl fmt::Display for ProductLabel {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if let Some(p) = lookup::by_sku_id(self.0) {
            f.write_str(&p.name)
        } else if let Some(k) = crate::host::keys::kms_id(self.1) {
            write!(f, "SKU {} of {}", self.0, k.name)
        } else {
            write!(f, "SKU {}", self.0)
        }
    }
}

/// A FILETIME as `YYYY-MM-DDTHH:MM:SSZ`.
struct Utc(FileTime);

impl fmt::Display for Utc {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let secs = self.0.unix_secs();
        let (days, rem) = (secs.div_euclid(86_400), secs.rem_euclid(86_400));
        let (year, month, day) = civil_from_days(days);
        write!(
            f,
            "{year:04}-{month:02}-{day:02}T{:02}:{:02}:{:02}Z",
            rem / 3600,
            rem / 60 % 60,
            rem % 60
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn utc_formats_known_dates() {
        assert_eq!(
            Utc(FileTime::from_unix(0, 0)).to_string(),
            "1970-01-01T00:00:00Z"
        );
        // 2026-11-22T01:26:21Z, the model tests' T0.
        assert_eq!(
            Utc(FileTime(134_397_843_810_000_000)).to_string(),
            "2026-11-22T01:26:21Z"
        );
        assert_eq!(
            Utc(FileTime::from_unix(951_782_400, 0)).to_string(),
            "2000-02-29T00:00:00Z"
        );
        assert_eq!(
            Utc(FileTime::from_unix(-1, 0)).to_string(),
            "1969-12-31T23:59:59Z"
        );
    }

    #[test]
    fn request_event_line_names_product_and_outcome() {
        let event = LogEvent::Request(RequestEvent {
            time: FileTime::from_unix(0, 0),
            peer: "127.0.0.1:5000".parse().unwrap(),
            protocol: Some(Version::V6),
            ids: Some(RequestIds {
                cmid: Uuid::nil(),
                sku_id: lookup::find("Windows 10/11 Enterprise").unwrap().sku_id,
                kms_id: Uuid::nil(),
            }),
            outcome: RequestOutcome::LowCount {
                count: 3,
                required: 25,
            },
        });
        assert_eq!(
            event.to_string(),
            "1970-01-01T00:00:00Z 127.0.0.1:5000 V6 cmid=00000000-0000-0000-0000-000000000000 \"Windows 10/11 Enterprise\" not_activated 0xC004F038 count 3/25 (below threshold)"
        );
        let invalid = LogEvent::Request(RequestEvent {
            time: FileTime::from_unix(0, 0),
            peer: "127.0.0.1:5000".parse().unwrap(),
            protocol: None,
            ids: None,
            outcome: RequestOutcome::Invalid(RequestError::TooShort { actual: 2 }),
        });
        assert!(
            invalid
                .to_string()
                .ends_with("V? cmid=- - refused 0x8007000D count - (undecodable request: request payload of 2 bytes has no version)"),
            "{invalid}"
        );
    }

    fn activated(port: u16) -> LogEvent {
        LogEvent::Request(RequestEvent {
            time: FileTime::from_unix(0, 0),
            peer: SocketAddr::from(([127, 0, 0, 1], port)),
            protocol: Some(Version::V6),
            ids: Some(RequestIds {
                cmid: Uuid::nil(),
                sku_id: lookup::find("Windows 10/11 Enterprise").unwrap().sku_id,
                kms_id: Uuid::nil(),
            }),
            outcome: RequestOutcome::Activated {
                count: 25,
                required: 25,
            },
        })
    }

    /// A sink whose first write tells the test it has started and then waits for the test's
    /// go-ahead: a log sink that cannot keep up.
    struct StuckSink {
        entered: mpsc::Sender<()>,
        gate: Option<mpsc::Receiver<()>>,
        out: Arc<std::sync::Mutex<Vec<u8>>>,
    }

    impl Write for StuckSink {
        fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
            if let Some(gate) = self.gate.take() {
                let _ = self.entered.send(());
                let _ = gate.recv();
            }
            self.out.lock().unwrap().extend_from_slice(buf);
            Ok(buf.len())
        }

        fn flush(&mut self) -> io::Result<()> {
            Ok(())
        }
    }

    #[test]
    fn a_stuck_sink_drops_and_counts_lines_and_never_blocks_the_logger() {
        let (entered_tx, entered) = mpsc::channel();
        let (go, gate) = mpsc::channel();
        let out = Arc::new(std::sync::Mutex::new(Vec::new()));
        let sink = StuckSink {
            entered: entered_tx,
            gate: Some(gate),
            out: Arc::clone(&out),
        };
        let (logger, writer) = Logger::writer(Box::new(sink), LogFormat::Text, 4).unwrap();
        // The first line reaches the sink at the first flush, where the sink gets stuck.
        logger.log(&activated(1));
        entered
            .recv_timeout(Duration::from_secs(30))
            .expect("the writer flushes within its interval");
        // The writer thread is stuck: 4 lines fit in the queue, the other 96 are dropped,
        // and the logging side returns without waiting for the sink.
        let (done_tx, done) = mpsc::channel();
        let logging = logger.clone();
        std::thread::spawn(move || {
            for port in 2..102 {
                logging.log(&activated(port));
            }
            let _ = done_tx.send(());
        });
        done.recv_timeout(Duration::from_secs(30))
            .expect("logging never waits for a stuck sink");
        assert_eq!(writer.dropped(), 96);
        go.send(()).unwrap();
        let totals = writer.finish(Duration::from_secs(30));
        assert_eq!(
            totals,
            LogTotals {
                written: 5,
                dropped: 96,
                unwritten: 0,
            }
        );
        let text = String::from_utf8(out.lock().unwrap().clone()).unwrap();
        let requests = text.lines().filter(|l| l.contains(" activated ")).count();
        assert_eq!(requests, 5, "{text}");
        assert!(
            text.lines()
                .any(|l| l == "96 log lines dropped: the log sink is slower than the host"),
            "{text}"
        );
        // After the stop a straggler is counted, not queued for nobody.
        logger.log(&activated(200));
    }

    /// The writer's lines are the events' `Display` and `to_json` text whatever the order of
    /// their times: the cached time text is the current line's, within one second, across a
    /// second and when a line's time goes back (a clock set back).
    #[test]
    fn line_writer_reuses_the_time_text_only_within_its_second() {
        let at = |secs: i64, nanos: u32| match activated(7) {
            LogEvent::Request(r) => LogEvent::Request(RequestEvent {
                time: FileTime::from_unix(secs, nanos),
                ..r
            }),
            _ => unreachable!(),
        };
        let t = 1_800_000_000;
        let events = [
            at(t, 0),
            at(t, 999_999_900),
            at(t + 1, 0),
            at(t - 1, 500_000_000),
            LogEvent::Dropped {
                time: FileTime::from_unix(t - 1, 0),
                peer: "[::1]:7".parse().unwrap(),
                reason: DropReason::IdleTimeout,
            },
            at(t + 86_400, 0),
        ];
        for format in [LogFormat::Text, LogFormat::Json] {
            let mut writer = LineWriter::new(format);
            let mut out = Vec::new();
            for event in &events {
                writer.write(&mut out, event);
            }
            let text = String::from_utf8(out).unwrap();
            let expected: Vec<String> = events
                .iter()
                .map(|e| match format {
                    LogFormat::Text => e.to_string(),
                    LogFormat::Json => e.to_json().to_string(),
                })
                .collect();
            assert_eq!(text.lines().collect::<Vec<_>>(), expected, "{format:?}");
        }
        assert!(events[3].to_string().starts_with("2027-01-15T07:59:59Z "));
        assert!(events[5].to_string().starts_with("2027-01-16T08:00:00Z "));
    }

    /// A sink the test can read back.
    #[derive(Clone, Default)]
    struct SharedSink(Arc<std::sync::Mutex<Vec<u8>>>);

    impl Write for SharedSink {
        fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
            self.0.lock().unwrap().extend_from_slice(buf);
            Ok(buf.len())
        }

        fn flush(&mut self) -> io::Result<()> {
            Ok(())
        }
    }

    /// Lines that trickle in faster than every `LOG_POLL` are taken by the writer's polls:
    /// the logging side wakes the writer thread at most once per poll interval, not once per
    /// line (a writer blocking on the queue after each line is woken by nearly every one of
    /// these 1000 lines, 0.2 ms apart). The bound holds by construction (between two
    /// wake-ups the thread sleeps one `LOG_POLL`), whatever the machine's speed.
    #[test]
    fn a_steady_trickle_of_lines_does_not_wake_the_writer_for_each() {
        let sink = SharedSink::default();
        let started = Instant::now();
        let (logger, writer) =
            Logger::writer(Box::new(sink.clone()), LogFormat::Text, LOG_QUEUE).unwrap();
        for port in 0..1000 {
            logger.log(&activated(port));
            std::thread::sleep(Duration::from_micros(200));
        }
        let wakeups = writer.wakeups();
        let totals = writer.finish(Duration::from_secs(30));
        let elapsed = started.elapsed();
        assert_eq!(totals.written, 1000);
        let bound = elapsed.as_micros() / LOG_POLL.as_micros() + 1;
        assert!(
            u128::from(wakeups) <= bound,
            "{wakeups} wake-ups in {elapsed:?}: more than one per {LOG_POLL:?}"
        );
        let text = String::from_utf8(sink.0.lock().unwrap().clone()).unwrap();
        assert_eq!(text.lines().count(), 1000);
    }

    /// A sink that never takes anything again (stderr piped to a reader that stopped
    /// reading) cannot hold the host at exit: `finish` gives up after its grace and counts
    /// the lines it could not write.
    #[test]
    fn finish_gives_up_on_a_sink_that_never_takes_the_lines() {
        let (entered_tx, entered) = mpsc::channel();
        let (_never, gate) = mpsc::channel::<()>();
        let sink = StuckSink {
            entered: entered_tx,
            gate: Some(gate),
            out: Arc::default(),
        };
        let (logger, writer) = Logger::writer(Box::new(sink), LogFormat::Text, 4).unwrap();
        logger.log(&activated(1));
        entered
            .recv_timeout(Duration::from_secs(30))
            .expect("the writer flushes within its interval");
        for port in 2..5 {
            logger.log(&activated(port));
        }
        let started = Instant::now();
        let totals = writer.finish(Duration::from_millis(200));
        assert!(
            started.elapsed() < Duration::from_secs(20),
            "finish waited {:?} for a stuck sink",
            started.elapsed()
        );
        assert_eq!(
            totals,
            LogTotals {
                written: 1,
                dropped: 0,
                unwritten: 3,
            }
        );
        // `_never` is still alive here: the sink stays stuck until the test process ends.
        drop(_never);
    }

    /// The JSON line is the same object `to_json` gives, for every kind of event and
    /// outcome, with keys in one order.
    #[test]
    fn json_lines_parse_back_to_the_documented_objects() {
        let refused = LogEvent::Request(RequestEvent {
            outcome: RequestOutcome::Invalid(RequestError::TooShort { actual: 2 }),
            ids: None,
            protocol: None,
            ..match activated(1) {
                LogEvent::Request(r) => r,
                _ => unreachable!(),
            }
        });
        let dropped = LogEvent::Dropped {
            time: FileTime::from_unix(1_800_000_000, 0),
            peer: "[::1]:7".parse().unwrap(),
            reason: DropReason::IdleTimeout,
        };
        for event in [activated(9), refused, dropped] {
            let mut line = Vec::new();
            LineWriter::new(LogFormat::Json).write(&mut line, &event);
            let text = String::from_utf8(line).unwrap();
            assert!(
                text.ends_with('\n') && text.matches('\n').count() == 1,
                "{text}"
            );
            let parsed: serde_json::Value = serde_json::from_str(&text).unwrap();
            assert_eq!(parsed, event.to_json(), "{text}");
            assert_eq!(text.trim_end(), event.to_json().to_string());
        }
        let v = match activated(1) {
            LogEvent::Request(r) => LogEvent::Request(RequestEvent {
                outcome: RequestOutcome::Invalid(RequestError::TooShort { actual: 2 }),
                ids: None,
                protocol: None,
                ..r
            }),
            _ => unreachable!(),
        }
        .to_json();
        assert_eq!(v["protocol"], serde_json::Value::Null);
        assert_eq!(v["cmid"], serde_json::Value::Null);
        assert_eq!(v["count"], serde_json::Value::Null);
        assert_eq!(v["code"], "0x8007000D");
        assert_eq!(v["outcome"], "refused");
        assert!(
            v["reason"]
                .as_str()
                .unwrap()
                .starts_with("undecodable request: "),
            "{v}"
        );
        let d = LogEvent::Dropped {
            time: FileTime::from_unix(1_800_000_000, 0),
            peer: "[::1]:7".parse().unwrap(),
            reason: DropReason::IdleTimeout,
        }
        .to_json();
        assert_eq!(
            d,
            serde_json::json!({
                "time": "2027-01-15T08:00:00Z",
                "event": "connection_dropped",
                "peer": "[::1]:7",
                "reason": "idle timeout: no whole PDU in time",
            })
        );
    }

    #[test]
    fn json_request_object_has_every_field() {
        let v = activated(5000).to_json();
        assert_eq!(v["time"], "1970-01-01T00:00:00Z");
        assert_eq!(v["event"], "request");
        assert_eq!(v["peer"], "127.0.0.1:5000");
        assert_eq!(v["protocol"], "V6");
        assert_eq!(v["product"], "Windows 10/11 Enterprise");
        assert_eq!(v["cmid"], "00000000-0000-0000-0000-000000000000");
        assert_eq!(v["outcome"], "activated");
        assert_eq!(v["code"], "0x00000000");
        assert_eq!(v["count"], 25);
        let low = LogEvent::Request(RequestEvent {
            outcome: RequestOutcome::LowCount {
                count: 3,
                required: 25,
            },
            ..match activated(1) {
                LogEvent::Request(r) => r,
                _ => unreachable!(),
            }
        })
        .to_json();
        assert_eq!(low["outcome"], "not_activated");
        assert_eq!(low["code"], "0xC004F038");
        assert_eq!(low["count"], 3);
    }
}
