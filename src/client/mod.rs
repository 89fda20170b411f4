//! `client`: one simulated KMS client over TCP.
//!
//! A [`Client`] connects, binds (with the alter_context step Windows uses when the host
//! accepts only NDR64) and sends activation requests, with a deadline on every step: connect,
//! bind and request each run under their own `tokio::time::timeout`, so a stalled host gives a
//! timeout classified by phase, never a hang. Byte encoding and checking is all in
//! [`crate::wire`], and PDU framing in [`crate::netio`] (shared with the host's server); this
//! module moves bytes and measures time. [`Reply::from_call`] is the one step from a finished
//! call to what the client got, with no I/O, so a socket-free harness can reuse it.
//!
//! Hosts differ in how long they keep a connection (spec 2, 10.10): vlmcsd keeps it, py-kms
//! closes after every response. The client keeps a connection for the next request when
//! allowed, and when the host turns out to have closed it (the request dies before a single
//! byte of response arrives), it reconnects, re-binds with the call_id sequence continued,
//! and sends the request once more. Each PDU goes out in a single write, because some hosts
//! read one PDU per `recv`.
//!
//! [`outcome`] holds the one mapping from what happened to what a real client reports, and
//! the [`Outcome`] type the recorder, reports and gates use.
//! Faults (issue 5) plug in through the [`Connector`] trait, which hands out the stream.

use std::cell::RefCell;
use std::future::Future;
use std::io;
use std::net::{IpAddr, SocketAddr};
use std::pin::Pin;
use std::task::{Context, Poll, Waker};
use std::time::{Duration, Instant};

use tokio::io::{AsyncRead, AsyncWrite, AsyncWriteExt, ReadBuf};
use tokio::net::{TcpSocket, TcpStream};

use crate::netio::{PduReadError, PduReader};
use crate::wire::RequestBase;
use crate::wire::kms::{self, ClientResponse, EncodeError, PendingRequest, ResponseError};
use crate::wire::rpc::FrameError;
use crate::wire::session::{
    BindOutcome, CallResult, CallResultRef, ClientRpcConfig, ClientSession, Negotiated,
    SessionError,
};

mod dns;
pub mod outcome;
mod request;

pub use dns::DnsCause;
pub use outcome::{Cause, Outcome, Verdict};
pub use request::volume_request;

/// The step of an exchange something happened in.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, serde::Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Phase {
    /// TCP connect.
    Connect,
    /// RPC bind, and alter_context when used.
    Bind,
    /// The activation call: request out, response in.
    Request,
}

impl Phase {
    /// Lower-case name.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Connect => "connect",
            Self::Bind => "bind",
            Self::Request => "request",
        }
    }
}

impl std::fmt::Display for Phase {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// How a client talks: negotiation, deadlines, connection reuse.
#[derive(Debug, Clone)]
pub struct ClientOptions {
    /// RPC negotiation (NDR32/NDR64 mode, BTFN, CONC_MPX).
    pub rpc: ClientRpcConfig,
    /// Deadline for the TCP connect.
    pub connect_timeout: Duration,
    /// Deadline for bind (+ alter_context).
    pub bind_timeout: Duration,
    /// Deadline for one request/response round trip.
    pub request_timeout: Duration,
    /// Keep the connection for the next activation (false: one connection per activation,
    /// as real clients do).
    pub keep_alive: bool,
}

impl Default for ClientOptions {
    fn default() -> Self {
        Self {
            rpc: ClientRpcConfig::default(),
            connect_timeout: Duration::from_secs(5),
            bind_timeout: Duration::from_secs(10),
            request_timeout: Duration::from_secs(10),
            keep_alive: true,
        }
    }
}

/// Why an activation attempt failed below the KMS layer, or its response was unusable.
#[derive(Debug, thiserror::Error)]
pub enum ClientError {
    /// The host name did not resolve.
    #[error("cannot resolve {host}: {detail}")]
    Resolve {
        /// The name.
        host: String,
        /// The resolver's message.
        detail: String,
    },
    /// TCP connect failed.
    #[error("connect failed: {detail}")]
    Connect {
        /// The socket error kind (refused, unreachable, ...).
        kind: io::ErrorKind,
        /// The OS error number, when the OS gave one (tells "too many open files" apart).
        os_error: Option<i32>,
        /// The OS message.
        detail: String,
    },
    /// A phase ran past its deadline.
    #[error("no answer within the {phase} timeout ({limit:?})")]
    Timeout {
        /// The phase that stalled.
        phase: Phase,
        /// Its deadline.
        limit: Duration,
    },
    /// The socket failed (reset, broken pipe, ...).
    #[error("{phase}: {detail}")]
    Io {
        /// The phase.
        phase: Phase,
        /// The socket error kind.
        kind: io::ErrorKind,
        /// The OS message.
        detail: String,
        /// True when part of an answer had arrived before the failure.
        partial: bool,
    },
    /// The host closed the connection before answering.
    #[error("{phase}: host closed the connection{}", if *partial { " in the middle of a PDU" } else { " before answering" })]
    Closed {
        /// The phase.
        phase: Phase,
        /// True when part of a PDU had arrived.
        partial: bool,
    },
    /// The host's bytes are not DCE/RPC.
    #[error("{phase}: {error}")]
    Framing {
        /// The phase.
        phase: Phase,
        /// What was wrong.
        error: FrameError,
    },
    /// The RPC layer failed: bind refused, fault, malformed PDU, wrong call id.
    #[error("{phase}: {error}")]
    Rpc {
        /// The phase.
        phase: Phase,
        /// The session's error.
        error: SessionError,
    },
    /// The response failed one of the client's checks (spec 7.6, checks 2-13).
    #[error("response rejected (spec 7.6 check {check}): {error}", check = .0.check(), error = .0)]
    Verify(#[from] ResponseError),
    /// The request could not be encoded (unsupported version).
    #[error("request not encodable: {0}")]
    Encode(#[from] EncodeError),
}

impl ClientError {
    fn from_read(phase: Phase, e: PduReadError) -> Self {
        match e {
            PduReadError::Closed { partial } => Self::Closed { phase, partial },
            PduReadError::Framing(error) => Self::Framing { phase, error },
            PduReadError::Io { error, partial } => Self::Io {
                phase,
                kind: error.kind(),
                detail: error.to_string(),
                partial,
            },
        }
    }

    fn io(phase: Phase, e: &io::Error) -> Self {
        Self::Io {
            phase,
            kind: e.kind(),
            detail: e.to_string(),
            partial: false,
        }
    }

    /// True when the error says the host had already closed a kept connection: the
    /// request died before a single byte of response arrived.
    fn is_stale_connection(&self) -> bool {
        match self {
            Self::Closed {
                phase: Phase::Request,
                partial,
            } => !partial,
            Self::Io {
                phase: Phase::Request,
                kind,
                ..
            } => matches!(
                kind,
                io::ErrorKind::ConnectionReset
                    | io::ErrorKind::BrokenPipe
                    | io::ErrorKind::ConnectionAborted
                    | io::ErrorKind::NotConnected
            ),
            _ => false,
        }
    }
}

/// What the host answered to an activation request.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Reply {
    /// A response that passed every check of spec 7.6 up to 13 (check 14, the count, is the
    /// caller's: see [`ClientResponse::is_activated`]).
    Response(ClientResponse),
    /// The host refused with an HRESULT in the response stub (spec 8.1).
    Refused(u32),
}

impl Reply {
    /// What a completed call means to the client: the response payload checked against the
    /// request it answers (spec 7.6, checks 2-13), or the HRESULT of the response stub. No
    /// I/O: [`Client::activate`] uses it, and so can a harness that runs the session without
    /// sockets.
    ///
    /// # Errors
    /// [`ClientError::Verify`] when the response fails a check.
    pub fn from_call(pending: &PendingRequest, call: CallResult) -> Result<Self, ClientError> {
        match call {
            CallResult::Payload(bytes) => {
                Self::from_call_in(pending, CallResultRef::Payload(&bytes))
            }
            CallResult::Hresult(code) => Self::from_call_in(pending, CallResultRef::Hresult(code)),
        }
    }

    /// [`Reply::from_call`] of a call whose payload is lent from the response PDU.
    ///
    /// # Errors
    /// [`ClientError::Verify`] when the response fails a check.
    pub fn from_call_in(
        pending: &PendingRequest,
        call: CallResultRef<'_>,
    ) -> Result<Self, ClientError> {
        match call {
            CallResultRef::Payload(bytes) => Ok(Self::Response(pending.decode_response(bytes)?)),
            CallResultRef::Hresult(code) => Ok(Self::Refused(code)),
        }
    }
}

/// Time spent in each phase of one attempt. A phase that did not run is `None` (connect and
/// bind on a kept connection).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct PhaseTimes {
    /// TCP connect.
    pub connect: Option<Duration>,
    /// bind (+ alter_context).
    pub bind: Option<Duration>,
    /// request round trip.
    pub request: Option<Duration>,
    /// From the start of the attempt to its end.
    pub total: Duration,
}

/// One attempt's result and measurements.
#[derive(Debug)]
pub struct Attempt {
    /// What came back.
    pub result: Result<Reply, ClientError>,
    /// Time per phase.
    pub times: PhaseTimes,
    /// True when the host had closed the kept connection and the request was sent again on
    /// a new one.
    pub reconnected: bool,
}

impl Attempt {
    /// The one classification of this attempt (see [`outcome`]).
    pub fn verdict(&self) -> Verdict {
        outcome::classify(&self.result)
    }
}

/// Which way a traced PDU went (`-v`). Not the fault rules' direction (connect, send, receive),
/// which `scenario` owns.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TraceDirection {
    /// Client to host.
    Sent,
    /// Host to client.
    Received,
}

/// Receives every PDU the client sends or receives (for `-v`).
pub type Tracer = Box<dyn FnMut(TraceDirection, &[u8]) + Send>;

/// Hands out connected byte streams. The plain implementation is [`TcpConnector`]; fault
/// injection wraps it.
pub trait Connector: Send + Sync {
    /// The stream type.
    type Stream: AsyncRead + AsyncWrite + Unpin + Send;
    /// Connects to `addr`. Deadlines are the caller's.
    fn connect(&self, addr: SocketAddr) -> impl Future<Output = io::Result<Self::Stream>> + Send;
}

/// Plain TCP, optionally from a given local source address (so many connections can spread
/// over several 127.0.0.x sources instead of exhausting one address's ephemeral ports).
///
/// Known limit: with a source, the kernel picks the port at `bind(ip, 0)`, before it knows
/// the destination, searching for one free of every socket on any address, TIME_WAIT ones
/// included. At thousands of new connections per second that search grows with the
/// TIME_WAIT table (measured against the in-process host: 12,000/s offered, 3,900/s
/// achieved, 53 s of system CPU in a 31 s run; the same run without sources sustains
/// 9,000/s with 9 s of system CPU in 8 s). `IP_BIND_ADDRESS_NO_PORT` defers the choice to `connect`,
/// but neither tokio nor socket2 exposes it without `unsafe`. Without sources the kernel
/// picks ports per destination at `connect`, which stays cheap.
#[derive(Debug, Clone, Copy, Default)]
pub struct TcpConnector {
    /// Local address to bind before connecting; `None` lets the OS choose.
    pub source: Option<IpAddr>,
}

impl Connector for TcpConnector {
    type Stream = TcpStream;

    async fn connect(&self, addr: SocketAddr) -> io::Result<TcpStream> {
        let socket = if addr.is_ipv4() {
            TcpSocket::new_v4()?
        } else {
            TcpSocket::new_v6()?
        };
        if let Some(ip) = self.source {
            socket.bind(SocketAddr::new(ip, 0))?;
        }
        let stream = refuse_self_connection(socket.connect(addr).await?)?;
        // Every PDU is one write followed by a wait for the answer: nothing to coalesce.
        stream.set_nodelay(true)?;
        Ok(stream)
    }
}

/// A connection whose two ends are the same address and port is the socket connected to
/// itself (TCP simultaneous open): with nothing listening on a loopback port of the
/// ephemeral range, the kernel can pick that very port as the source, and the "host" then
/// answers every request with the request. Nothing listens there: refused, as a real client
/// would report it.
fn refuse_self_connection(stream: TcpStream) -> io::Result<TcpStream> {
    if stream.local_addr()? == stream.peer_addr()? {
        return Err(io::Error::new(
            io::ErrorKind::ConnectionRefused,
            "connected to itself: nothing listens on the target port",
        ));
    }
    Ok(stream)
}

struct Conn<S> {
    stream: S,
    session: ClientSession,
    reader: PduReader,
}

/// One simulated client talking to one host.
pub struct Client<C: Connector = TcpConnector> {
    connector: C,
    addr: SocketAddr,
    options: ClientOptions,
    conn: Option<Conn<C::Stream>>,
    next_call_id: u32,
    tracer: Option<Tracer>,
}

thread_local! {
    /// The KMS payload of the request being built on this thread. It is encoded and copied
    /// into its request PDU in one synchronous step, so one buffer per thread serves every
    /// client, and a client keeps only the buffer of its connection (which holds the request
    /// PDU and then the response; see [`PduReader::outgoing`]).
    static PAYLOAD: RefCell<Vec<u8>> = const { RefCell::new(Vec::new()) };
}

/// Encodes the request for `base` and its request PDU into `out`, with the payload in this
/// thread's [`PAYLOAD`]; returns what checks the response.
fn request_pdu(
    session: &mut ClientSession,
    base: &RequestBase,
    iv: [u8; 16],
    out: &mut Vec<u8>,
) -> Result<PendingRequest, ClientError> {
    PAYLOAD.with_borrow_mut(|payload| {
        payload.clear();
        let pending = kms::encode_request_into(base, iv, payload)?;
        out.clear();
        session
            .request_into(payload, out)
            .map_err(|error| ClientError::Rpc {
                phase: Phase::Request,
                error,
            })?;
        Ok(pending)
    })
}

impl Client<TcpConnector> {
    /// A client for `addr` over plain TCP.
    pub fn new(addr: SocketAddr, options: ClientOptions) -> Self {
        Self::with_connector(TcpConnector::default(), addr, options)
    }
}

impl<C: Connector> Client<C> {
    /// A client whose connections come from `connector`.
    pub fn with_connector(connector: C, addr: SocketAddr, options: ClientOptions) -> Self {
        Self {
            connector,
            addr,
            options,
            conn: None,
            next_call_id: 2,
            tracer: None,
        }
    }

    /// Calls `tracer` with every PDU sent or received.
    pub fn set_tracer(&mut self, tracer: Tracer) {
        self.tracer = Some(tracer);
    }

    /// The host address.
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// True while a connection is kept open for the next activation.
    pub fn is_connected(&self) -> bool {
        self.conn.is_some()
    }

    /// What the bind of the kept connection negotiated (transfer syntaxes, BTFN,
    /// alter_context); `None` when no connection is kept.
    pub fn negotiated(&self) -> Option<&Negotiated> {
        self.conn.as_ref().map(|c| c.session.negotiated())
    }

    /// Closes the kept connection, if any.
    pub fn disconnect(&mut self) {
        self.conn = None;
    }

    /// Sends one activation request for `base`, with `iv` as `IV_req` (ignored for V4), and
    /// returns what happened. Never panics; every step has a deadline.
    pub async fn activate(&mut self, base: &RequestBase, iv: [u8; 16]) -> Attempt {
        let start = Instant::now();
        let mut times = PhaseTimes::default();
        let mut reconnected = false;
        let result = self.attempt(base, iv, &mut times, &mut reconnected).await;
        if result.is_err() || !self.options.keep_alive {
            self.conn = None;
        }
        times.total = start.elapsed();
        Attempt {
            result,
            times,
            reconnected,
        }
    }

    async fn attempt(
        &mut self,
        base: &RequestBase,
        iv: [u8; 16],
        times: &mut PhaseTimes,
        reconnected: &mut bool,
    ) -> Result<Reply, ClientError> {
        // A request that cannot be encoded fails before a connection is made; it is encoded
        // once there is one (see `call`).
        kms::request_protocol(base)?;
        if self
            .conn
            .as_mut()
            .is_some_and(|c| !peer_still_open(&mut c.stream, &c.reader))
        {
            // The host closed the kept connection since the last answer (py-kms does so
            // after every response): don't spend a request finding that out.
            self.conn = None;
        }
        loop {
            let kept = self.conn.is_some();
            if !kept {
                // Boxed: connecting and binding is the rare step on a kept connection, and
                // the largest; inline, it would make every attempt's future that large.
                Box::pin(self.open(times)).await?;
            }
            let started = Instant::now();
            let call = self.call(base, iv).await;
            times.request = Some(started.elapsed());
            match call {
                Ok(reply) => return Ok(reply),
                Err(e) if kept && !*reconnected && e.is_stale_connection() => {
                    self.conn = None;
                    *reconnected = true;
                }
                Err(e) => return Err(e),
            }
        }
    }

    /// Connects and binds, recording both phases.
    async fn open(&mut self, times: &mut PhaseTimes) -> Result<(), ClientError> {
        let started = Instant::now();
        let limit = self.options.connect_timeout;
        let stream = match tokio::time::timeout(limit, self.connector.connect(self.addr)).await {
            Ok(Ok(s)) => s,
            Ok(Err(e)) => {
                times.connect = Some(started.elapsed());
                return Err(ClientError::Connect {
                    kind: e.kind(),
                    os_error: e.raw_os_error(),
                    detail: e.to_string(),
                });
            }
            Err(_) => {
                times.connect = Some(started.elapsed());
                return Err(ClientError::Timeout {
                    phase: Phase::Connect,
                    limit,
                });
            }
        };
        times.connect = Some(started.elapsed());

        let started = Instant::now();
        let session = ClientSession::with_call_id(self.options.rpc, self.next_call_id);
        // In place while it binds, not in this future: a client that connects holds its
        // connection once (this future is the largest step of an attempt).
        let conn = self.conn.insert(Conn {
            stream,
            session,
            reader: PduReader::new(),
        });
        let limit = self.options.bind_timeout;
        let bound = tokio::time::timeout(limit, bind(conn, &mut self.tracer)).await;
        times.bind = Some(started.elapsed());
        self.next_call_id = conn.session.next_call_id();
        let result = match bound {
            Ok(r) => r,
            Err(_) => Err(ClientError::Timeout {
                phase: Phase::Bind,
                limit,
            }),
        };
        if result.is_err() {
            self.conn = None;
        }
        result
    }

    /// One request/response round trip on the kept connection: the request for `base` with
    /// `iv`, and its answer checked.
    async fn call(&mut self, base: &RequestBase, iv: [u8; 16]) -> Result<Reply, ClientError> {
        let phase = Phase::Request;
        let limit = self.options.request_timeout;
        let Some(conn) = self.conn.as_mut() else {
            // `attempt` opens a connection before every call.
            return Err(ClientError::Closed {
                phase,
                partial: false,
            });
        };
        let tracer = &mut self.tracer;
        let round_trip = async {
            // The request PDU goes in the buffer the answer is read into. (It is always free
            // here: bytes buffered before a request close the kept connection, see
            // `peer_still_open`; a spare buffer otherwise, not kept.)
            let mut spare = Vec::new();
            let mut lent = conn.reader.outgoing();
            let pdu = match lent.as_mut() {
                Some(lent) => lent.buf(),
                None => &mut spare,
            };
            let pending = request_pdu(&mut conn.session, base, iv, pdu)?;
            send(&mut conn.stream, pdu, phase, tracer).await?;
            drop(lent);
            let reply = conn
                .reader
                .read_pdu_in(&mut conn.stream)
                .await
                .map_err(|e| ClientError::from_read(phase, e))?;
            if let Some(t) = tracer {
                t(TraceDirection::Received, reply);
            }
            let call = conn
                .session
                .handle_response_in(reply)
                .map_err(|error| ClientError::Rpc { phase, error })?;
            Reply::from_call_in(&pending, call)
        };
        let result = match tokio::time::timeout(limit, round_trip).await {
            Ok(r) => r,
            Err(_) => Err(ClientError::Timeout { phase, limit }),
        };
        self.next_call_id = conn.session.next_call_id();
        result
    }
}

async fn bind<S: AsyncRead + AsyncWrite + Unpin>(
    conn: &mut Conn<S>,
    tracer: &mut Option<Tracer>,
) -> Result<(), ClientError> {
    let phase = Phase::Bind;
    let rpc = |error| ClientError::Rpc { phase, error };
    let pdu = conn.session.bind().map_err(rpc)?;
    send(&mut conn.stream, &pdu, phase, tracer).await?;
    let ack = receive(conn, phase, tracer).await?;
    if let BindOutcome::AlterContext(pdu) = conn.session.handle_bind_ack(&ack).map_err(rpc)? {
        send(&mut conn.stream, &pdu, phase, tracer).await?;
        let resp = receive(conn, phase, tracer).await?;
        conn.session.handle_alter_context_resp(&resp).map_err(rpc)?;
    }
    Ok(())
}

async fn send<S: AsyncWrite + Unpin>(
    stream: &mut S,
    pdu: &[u8],
    phase: Phase,
    tracer: &mut Option<Tracer>,
) -> Result<(), ClientError> {
    if let Some(t) = tracer {
        t(TraceDirection::Sent, pdu);
    }
    // One write per PDU: some hosts (py-kms) assume one PDU per recv.
    stream
        .write_all(pdu)
        .await
        .map_err(|e| ClientError::io(phase, &e))
}

async fn receive<S: AsyncRead + Unpin>(
    conn: &mut Conn<S>,
    phase: Phase,
    tracer: &mut Option<Tracer>,
) -> Result<Vec<u8>, ClientError> {
    let pdu = conn
        .reader
        .read_pdu(&mut conn.stream)
        .await
        .map_err(|e| ClientError::from_read(phase, e))?;
    if let Some(t) = tracer {
        t(TraceDirection::Received, &pdu);
    }
    Ok(pdu)
}

/// Resolves `host:port` to the first address, under `limit`.
///
/// # Errors
/// [`ClientError::Resolve`] when the name does not resolve in time.
pub async fn resolve(host: &str, port: u16, limit: Duration) -> Result<SocketAddr, ClientError> {
    let err = |detail: String| ClientError::Resolve {
        host: host.to_owned(),
        detail,
    };
    match tokio::time::timeout(limit, tokio::net::lookup_host((host, port))).await {
        Ok(Ok(mut addrs)) => addrs.next().ok_or_else(|| err("no address".into())),
        Ok(Err(e)) => Err(err(e.to_string())),
        Err(_) => Err(err(format!("no answer within {limit:?}"))),
    }
}

/// Polls the kept stream once without waiting: end-of-stream or an error means the host has
/// closed it. Bytes arriving unasked also make the connection unusable.
fn peer_still_open<S: AsyncRead + Unpin>(stream: &mut S, reader: &PduReader) -> bool {
    if reader.has_buffered() {
        return false;
    }
    let mut probe = [0u8; 1];
    let mut buf = ReadBuf::new(&mut probe);
    let mut cx = Context::from_waker(Waker::noop());
    matches!(Pin::new(stream).poll_read(&mut cx, &mut buf), Poll::Pending)
}

#[cfg(test)]
mod connector_tests {
    use super::*;

    /// Connections from a source address leave from it.
    #[tokio::test]
    async fn source_address_connections_leave_from_the_source() {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let source: IpAddr = "127.0.0.3".parse().unwrap();
        let connector = TcpConnector {
            source: Some(source),
        };
        for _ in 0..50 {
            let (client, accepted) = tokio::join!(connector.connect(addr), listener.accept());
            let client = client.unwrap();
            let (_, peer) = accepted.unwrap();
            assert_eq!(peer.ip(), source);
            assert_eq!(client.local_addr().unwrap(), peer);
            drop(client);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// What a kept-alive connection holds on the heap between activations, counted on this
    /// thread (the host runs on its own): tokio's registration of the socket (256 bytes), the
    /// session's proposed contexts and one PDU buffer of 320 bytes, which held the request
    /// and then the response; 678 bytes in 4 blocks when written. The request's payload is
    /// built in a buffer of the thread, not of the connection: 10,000 thinking clients hold
    /// 10,000 of these. (Before: a 512-byte read buffer and the client's own payload and PDU
    /// buffers, about 1.5 KB in 6 blocks.)
    #[test]
    fn a_kept_connection_holds_one_buffer_sized_for_a_kms_exchange() {
        let host = crate::host::server::start_background(
            crate::host::server::ServerOptions {
                host: crate::host::HostConfig {
                    charged: true,
                    ..crate::host::HostConfig::default()
                },
                ..crate::host::server::ServerOptions::default()
            },
            1,
        )
        .unwrap();
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap();
        let product = crate::catalog::lookup::find("Windows 10/11 Enterprise").unwrap();
        let now = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap();
        let time = crate::wire::FileTime::from_unix(now.as_secs() as i64, 0);
        let base = volume_request(product, 6, uuid::Uuid::from_u128(7), time, "held.test");
        let mut client = Client::new(host.addr(), ClientOptions::default());
        // A first client warms up the runtime's and this thread's one-time allocations.
        let warm = rt
            .block_on(Client::new(host.addr(), ClientOptions::default()).activate(&base, [1; 16]));
        assert!(warm.result.is_ok(), "{:?}", warm.result);
        // Its socket's registration is released when the driver next turns: not in the count.
        rt.block_on(async { tokio::time::sleep(Duration::from_millis(5)).await });
        let held = allocation_counter::measure(|| {
            for iv in [2, 3] {
                let attempt = rt.block_on(client.activate(&base, [iv; 16]));
                assert!(
                    matches!(attempt.result, Ok(Reply::Response(_))),
                    "{:?}",
                    attempt.result
                );
            }
        });
        assert!(client.is_connected());
        let conn = client.conn.as_ref().unwrap();
        assert_eq!(conn.reader.capacity(), 320, "the PDU buffer did not grow");
        assert!(
            held.bytes_current <= 768,
            "a kept connection holds {} bytes in {} blocks",
            held.bytes_current,
            held.count_current
        );
        drop(client);
        drop(rt);
    }

    /// A socket connected to itself (its own port as the target, nothing listening) is
    /// refused, not taken for a host that echoes.
    #[tokio::test]
    async fn a_connection_to_itself_is_refused() {
        let socket = TcpSocket::new_v4().unwrap();
        socket.bind(SocketAddr::from(([127, 0, 0, 1], 0))).unwrap();
        let own = socket.local_addr().unwrap();
        let stream = socket
            .connect(own)
            .await
            .expect("simultaneous open to itself");
        let err = refuse_self_connection(stream).unwrap_err();
        assert_eq!(err.kind(), io::ErrorKind::ConnectionRefused, "{err}");
    }
}
