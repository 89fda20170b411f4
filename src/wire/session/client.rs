//! The client's side of a KMS RPC association: [`ClientSession`], its configuration and what
//! it reports (spec 4.3, 4.4, 4.6, 4.7, 4.9, 4.10; the quirks it tolerates are listed in
//! [`super`]).

use std::fmt;
use std::str::FromStr;

use crate::wire::ndr::{RequestStub, ResponseStub, StubError, Syntax};
use crate::wire::rpc::{
    AlterContext, AlterContextResp, Bind, BindAck, ContextElem, ContextResult, DEFAULT_MAX_FRAG,
    Fault, NakReason, NcaStatus, Pdu, PduError, PfcFlags, Ptype, RejectReason, Request,
    ResponseRef, SecondaryAddress, TransferSyntax,
};

use super::{CALL_FIXED_LEN, FIRST_CALL_ID, MAX_WARNINGS};

/// Which transfer syntaxes the client proposes and uses (spec 4.9).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub enum NegotiationMode {
    /// Propose NDR32 (ctx 0), NDR64 (ctx 1) [and BTFN (ctx 2)]; when only NDR64 is accepted,
    /// obtain NDR32 with an alter_context; first request of a connection NDR32, later ones
    /// NDR64. What Windows and vlmcs do.
    #[default]
    Windows,
    /// Propose NDR32 (ctx 0) [and BTFN (ctx 1)]; every request NDR32.
    Ndr32Only,
    /// Propose like `Windows`, never send alter_context, every request NDR64 when accepted.
    Ndr64Preferred,
}

impl NegotiationMode {
    /// Every mode, in declaration order.
    pub const ALL: [Self; 3] = [Self::Windows, Self::Ndr32Only, Self::Ndr64Preferred];

    /// The name used on the command line and in scenario files.
    pub fn name(self) -> &'static str {
        match self {
            Self::Windows => "windows",
            Self::Ndr32Only => "ndr32-only",
            Self::Ndr64Preferred => "ndr64-preferred",
        }
    }
}

impl fmt::Display for NegotiationMode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// A negotiation mode name that is not one of [`NegotiationMode::ALL`].
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("unknown negotiation mode {0:?} (expected windows, ndr32-only or ndr64-preferred)")]
pub struct UnknownMode(pub String);

impl FromStr for NegotiationMode {
    type Err = UnknownMode;
    fn from_str(s: &str) -> Result<Self, UnknownMode> {
        Self::ALL
            .into_iter()
            .find(|m| m.name() == s)
            .ok_or_else(|| UnknownMode(s.to_owned()))
    }
}

/// How a client binds.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ClientRpcConfig {
    /// Transfer syntaxes proposed and used.
    pub mode: NegotiationMode,
    /// Propose bind-time feature negotiation with features 0x3 (Windows: yes).
    pub btfn: bool,
    /// Set CONC_MPX in bind and alter_context: flags 0x13 (Windows) or 0x03.
    pub conc_mpx: bool,
    /// `max_xmit_frag` and `max_recv_frag` proposed (5840).
    pub max_frag: u16,
}

impl Default for ClientRpcConfig {
    /// A Windows-like client: `windows` mode, BTFN, CONC_MPX, 5840-byte fragments.
    fn default() -> Self {
        Self {
            mode: NegotiationMode::Windows,
            btfn: true,
            conc_mpx: true,
            max_frag: DEFAULT_MAX_FRAG,
        }
    }
}

/// Where a [`ClientSession`] is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum ClientSessionState {
    /// Nothing sent yet; call [`ClientSession::bind`].
    Unbound,
    /// bind sent; waiting for bind_ack.
    ExpectBindAck,
    /// alter_context sent; waiting for alter_context_resp.
    ExpectAlterContextResp,
    /// Bound; [`ClientSession::request`] may be called.
    Ready,
    /// request sent; waiting for response or fault.
    ExpectResponse,
    /// A fatal error ended the session; reconnect with [`ClientSession::reconnect`].
    Failed,
}

/// What to do after a bind_ack.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum BindOutcome {
    /// Send this alter_context and hand the reply to
    /// [`ClientSession::handle_alter_context_resp`].
    AlterContext(Vec<u8>),
    /// Bound; requests may be sent.
    Ready,
}

/// The outcome of a call that the host executed (spec 8.1, paths 1 and 4).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum CallResult {
    /// The host returned a KMS response payload (return value 0).
    Payload(Vec<u8>),
    /// The host refused the request with this HRESULT (error stub, or a non-zero return
    /// value).
    Hresult(u32),
}

/// [`CallResult`] with the payload lent from the response PDU
/// ([`ClientSession::handle_response_in`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CallResultRef<'a> {
    /// The host returned a KMS response payload (return value 0).
    Payload(&'a [u8]),
    /// The host refused the request with this HRESULT.
    Hresult(u32),
}

/// How the BTFN item fared.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum BtfnOutcome {
    /// Not proposed.
    NotProposed,
    /// negotiate_ack with these feature bits.
    Acknowledged {
        /// Features the host accepted.
        features: u16,
    },
    /// Rejected (result 1 or 2).
    Rejected(RejectReason),
    /// Some other result (also recorded as a warning).
    Unexpected(ContextResult),
}

/// How the alter_context fared.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum AlterOutcome {
    /// Not needed (or not allowed by the mode).
    NotSent,
    /// NDR32 was accepted on context 0.
    Accepted,
    /// Refused (rejection or fault); requests use NDR64.
    Refused,
}

/// What the bind (and alter_context) established, for `-v` output and reports.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Negotiated {
    /// The context id usable with NDR32, if any.
    pub ndr32: Option<u16>,
    /// The context id usable with NDR64, if any.
    pub ndr64: Option<u16>,
    /// Bind-time feature negotiation.
    pub btfn: BtfnOutcome,
    /// The alter_context round trip.
    pub alter_context: AlterOutcome,
    /// `pfc_flags` of the bind_ack.
    pub bind_ack_flags: PfcFlags,
    /// The host's association group.
    pub assoc_group_id: u32,
    /// The host's secondary address (its listening port).
    pub sec_addr: SecondaryAddress,
    /// The host's `max_xmit_frag`.
    pub max_xmit_frag: u16,
    /// The host's `max_recv_frag`: the largest request PDU it takes.
    pub max_recv_frag: u16,
}

impl Negotiated {
    fn new() -> Self {
        Self {
            ndr32: None,
            ndr64: None,
            btfn: BtfnOutcome::NotProposed,
            alter_context: AlterOutcome::NotSent,
            bind_ack_flags: PfcFlags(0),
            assoc_group_id: 0,
            sec_addr: SecondaryAddress::default(),
            max_xmit_frag: 0,
            max_recv_frag: 0,
        }
    }
}

impl fmt::Display for Negotiated {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let ctx = |c: Option<u16>| c.map_or_else(|| "-".to_owned(), |c| format!("ctx{c}"));
        write!(
            f,
            "NDR32={} NDR64={} BTFN=",
            ctx(self.ndr32),
            ctx(self.ndr64)
        )?;
        match self.btfn {
            BtfnOutcome::NotProposed => f.write_str("not-proposed")?,
            BtfnOutcome::Acknowledged { features } => write!(f, "ack({features:#x})")?,
            BtfnOutcome::Rejected(r) => write!(f, "reject({})", r.0)?,
            BtfnOutcome::Unexpected(r) => write!(f, "{r}")?,
        }
        let alter = match self.alter_context {
            AlterOutcome::NotSent => "not-sent",
            AlterOutcome::Accepted => "accepted",
            AlterOutcome::Refused => "refused",
        };
        write!(
            f,
            " alter_context={alter} flags={:?} assoc={:#x} sec_addr={} max_frag={}/{}",
            self.bind_ack_flags,
            self.assoc_group_id,
            self.sec_addr,
            self.max_xmit_frag,
            self.max_recv_frag
        )
    }
}

/// A deviation the client tolerated (spec 4.1, 4.3 check 6, 4.7, 4.10).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum SessionWarning {
    /// The bind_ack's CONC_MPX bit differs from the bind's (py-kms answers 0x13 to 0x03).
    ConcMpxMismatch {
        /// CONC_MPX in the bind.
        bind: bool,
        /// CONC_MPX in the bind_ack.
        bind_ack: bool,
    },
    /// CONC_MPX set in a PDU that must not carry it.
    ConcMpxSet(Ptype),
    /// A reply carried call_id 1 instead of `expected` (Wine's RPC runtime).
    WineCallId {
        /// The call_id sent.
        expected: u32,
    },
    /// A fault's call_id differs from the request's (vlmcsd writes 2).
    FaultCallId {
        /// The call_id sent.
        expected: u32,
        /// The fault's.
        found: u32,
    },
    /// The BTFN item got neither negotiate_ack nor a rejection.
    BtfnResult(ContextResult),
    /// The alter_context's NDR32 item was not accepted; NDR64 is used instead.
    AlterContextRejected(ContextResult),
    /// The alter_context was answered by a fault; NDR64 is used instead.
    AlterContextFault(NcaStatus),
}

impl fmt::Display for SessionWarning {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::ConcMpxMismatch { bind, bind_ack } => write!(
                f,
                "bind_ack CONC_MPX={} differs from bind CONC_MPX={} (py-kms answers 0x13)",
                u8::from(*bind_ack),
                u8::from(*bind)
            ),
            Self::ConcMpxSet(ptype) => write!(f, "{ptype} has CONC_MPX set"),
            Self::WineCallId { expected } => {
                write!(
                    f,
                    "reply carried call_id 1 instead of {expected} (Wine RPC)"
                )
            }
            Self::FaultCallId { expected, found } => {
                write!(
                    f,
                    "fault carried call_id {found} instead of {expected} (vlmcsd writes 2)"
                )
            }
            Self::BtfnResult(r) => write!(f, "unexpected BTFN result {r}"),
            Self::AlterContextRejected(r) => {
                write!(f, "alter_context answered {r}; using NDR64")
            }
            Self::AlterContextFault(s) => {
                write!(f, "alter_context answered fault {s}; using NDR64")
            }
        }
    }
}

/// Why the client gave up on a PDU or a call.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SessionError {
    /// The PDU failed the header checks of spec 4.1 or could not be decoded.
    #[error("malformed PDU: {0}")]
    Pdu(#[from] PduError),
    /// The response stub could not be decoded (spec 4.8).
    #[error("malformed response stub: {0}")]
    Stub(#[from] StubError),
    /// A PDU of the wrong type for the session's state.
    #[error("expected {expected}, received {found}")]
    UnexpectedPdu {
        /// What the state waits for.
        expected: Ptype,
        /// What arrived.
        found: Ptype,
    },
    /// The reply's call_id is neither the expected one nor a tolerated quirk.
    #[error("call_id: expected {expected}, received {found}")]
    CallIdMismatch {
        /// The call_id sent.
        expected: u32,
        /// The call_id received.
        found: u32,
    },
    /// The host refused the bind with a bind_nak (spec 4.4).
    #[error("bind refused by bind_nak: {reason:?}")]
    BindRejected {
        /// `provider_reject_reason`.
        reason: NakReason,
    },
    /// `n_results` differs from the number of context items proposed (spec 4.3 check 2).
    #[error("n_results: {received} results for {proposed} proposed context items")]
    ResultCount {
        /// Items proposed.
        proposed: usize,
        /// Results received.
        received: usize,
    },
    /// The host does not implement the KMS interface (result 2, reason 1; spec 4.3 check 3).
    #[error("context {context_id}: abstract syntax (KMS interface) not supported by the host")]
    AbstractSyntaxRejected {
        /// The context item.
        context_id: u16,
    },
    /// An NDR32/NDR64 item got a result that is neither an echoing acceptance nor a
    /// rejection (spec 4.3 check 3).
    #[error("context {context_id}: unexpected result {result}")]
    UnexpectedResult {
        /// The context item.
        context_id: u16,
        /// The result received.
        result: ContextResult,
    },
    /// Neither NDR32 nor NDR64 was accepted (spec 4.3 check 5): the bind failed.
    #[error("no transfer syntax accepted: the bind failed")]
    NoTransferSyntax,
    /// The response names another context than the request (spec 4.6).
    #[error("p_cont_id: request used context {expected}, response names {found}")]
    ContextMismatch {
        /// The request's context.
        expected: u16,
        /// The response's.
        found: u16,
    },
    /// The response's `cancel_count` is not 0 (spec 4.6).
    #[error("cancel_count: {0}, expected 0")]
    CancelCount(u8),
    /// The host answered with a fault: the call was not executed (spec 4.7, 8.1 path 2).
    #[error("fault {status} (call_id {call_id}, context {context_id})")]
    Fault {
        /// The NCA status; [`NcaStatus::hresult`] gives what Windows shows.
        status: NcaStatus,
        /// The fault's call_id.
        call_id: u32,
        /// The fault's context id.
        context_id: u16,
    },
    /// A response stub with a NULL pointer but return value 0: no payload and no error.
    #[error("response has neither a payload nor an error code")]
    EmptyResponse,
    /// The request PDU would not fit in one fragment of the host's `max_recv_frag`.
    #[error("request PDU of {len} bytes exceeds the {max}-byte fragment limit")]
    PayloadTooLarge {
        /// PDU length.
        len: usize,
        /// The limit.
        max: usize,
    },
    /// A method was called in a state that does not allow it.
    #[error("{call} called in state {state:?}")]
    OutOfOrder {
        /// The method.
        call: &'static str,
        /// The session's state.
        state: ClientSessionState,
    },
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Pending {
    call_id: u32,
    context_id: u16,
    syntax: Syntax,
}

/// The client side of one RPC association (one TCP connection).
///
/// Call order: [`bind`](Self::bind), [`handle_bind_ack`](Self::handle_bind_ack), if asked
/// [`handle_alter_context_resp`](Self::handle_alter_context_resp), then any number of
/// [`request`](Self::request) / [`handle_response`](Self::handle_response) pairs. Calls out of
/// order return [`SessionError::OutOfOrder`] and change nothing.
#[derive(Debug, Clone)]
pub struct ClientSession {
    config: ClientRpcConfig,
    state: ClientSessionState,
    next_call_id: u32,
    bind_call_id: u32,
    bind_flags: PfcFlags,
    /// The bind's context items: id and transfer syntax.
    proposed: Vec<(u16, TransferSyntax)>,
    negotiated: Negotiated,
    pending: Option<Pending>,
    requests: u32,
    last_syntax: Option<Syntax>,
    warnings: Vec<SessionWarning>,
}

impl ClientSession {
    /// A session whose bind and first request use call_id 2.
    pub fn new(config: ClientRpcConfig) -> Self {
        Self::with_call_id(config, FIRST_CALL_ID)
    }

    /// A session whose bind and first request use `next_call_id` (spec 4.10: after a
    /// reconnect the sequence continues).
    pub fn with_call_id(config: ClientRpcConfig, next_call_id: u32) -> Self {
        Self {
            config,
            state: ClientSessionState::Unbound,
            next_call_id,
            bind_call_id: next_call_id,
            bind_flags: PfcFlags::SINGLE.with(PfcFlags::CONC_MPX, config.conc_mpx),
            proposed: Vec::new(),
            negotiated: Negotiated::new(),
            pending: None,
            requests: 0,
            last_syntax: None,
            warnings: Vec::new(),
        }
    }

    /// A fresh session for a new connection with the same configuration, continuing the
    /// call_id sequence.
    pub fn reconnect(&self) -> Self {
        Self::with_call_id(self.config, self.next_call_id)
    }

    /// The configuration.
    pub fn config(&self) -> &ClientRpcConfig {
        &self.config
    }

    /// Where the session is.
    pub fn state(&self) -> ClientSessionState {
        self.state
    }

    /// The call_id the next bind or request uses.
    pub fn next_call_id(&self) -> u32 {
        self.next_call_id
    }

    /// What the bind (and alter_context) established.
    pub fn negotiated(&self) -> &Negotiated {
        &self.negotiated
    }

    /// The syntax of the last request sent on this connection.
    pub fn last_syntax(&self) -> Option<Syntax> {
        self.last_syntax
    }

    /// Requests sent on this connection.
    pub fn requests(&self) -> u32 {
        self.requests
    }

    /// Tolerated deviations, each recorded once (at most 16).
    pub fn warnings(&self) -> &[SessionWarning] {
        &self.warnings
    }

    fn warn(&mut self, w: SessionWarning) {
        if self.warnings.len() < MAX_WARNINGS && !self.warnings.contains(&w) {
            self.warnings.push(w);
        }
    }

    fn out_of_order(&self, call: &'static str) -> SessionError {
        SessionError::OutOfOrder {
            call,
            state: self.state,
        }
    }

    fn fail<T>(&mut self, e: impl Into<SessionError>) -> Result<T, SessionError> {
        self.state = ClientSessionState::Failed;
        Err(e.into())
    }

    /// Accepts `found` for `expected`, or call_id 1 (Wine) with a warning.
    fn check_call_id(&mut self, expected: u32, found: u32) -> Result<(), SessionError> {
        if found == expected {
            Ok(())
        } else if found == 1 {
            self.warn(SessionWarning::WineCallId { expected });
            Ok(())
        } else {
            Err(SessionError::CallIdMismatch { expected, found })
        }
    }

    /// The bind PDU (spec 4.2, 9 step 3): context items per mode, flags 0x13 or 0x03.
    ///
    /// # Errors
    /// [`SessionError::OutOfOrder`] unless the session is `Unbound`.
    pub fn bind(&mut self) -> Result<Vec<u8>, SessionError> {
        if self.state != ClientSessionState::Unbound {
            return Err(self.out_of_order("bind"));
        }
        let mut syntaxes = vec![TransferSyntax::Ndr32];
        if self.config.mode != NegotiationMode::Ndr32Only {
            syntaxes.push(TransferSyntax::Ndr64);
        }
        if self.config.btfn {
            syntaxes.push(TransferSyntax::Btfn {
                features: crate::wire::rpc::BTFN_WINDOWS_FEATURES,
            });
        }
        self.proposed = (0u16..).zip(syntaxes).collect();
        let bind = Bind {
            flags: self.bind_flags,
            call_id: self.bind_call_id,
            max_xmit_frag: self.config.max_frag,
            max_recv_frag: self.config.max_frag,
            assoc_group_id: 0,
            contexts: self
                .proposed
                .iter()
                .map(|&(id, ts)| ContextElem::kms(id, ts))
                .collect(),
        };
        self.state = ClientSessionState::ExpectBindAck;
        Ok(bind.to_bytes())
    }

    /// Checks a bind_ack (spec 4.3 checks 1-6) and says whether an alter_context is needed
    /// (spec 4.9).
    ///
    /// # Errors
    /// A bind_nak, fault, malformed or unexpected PDU, or a failed check, all fatal: the
    /// session moves to `Failed`. [`SessionError::OutOfOrder`] outside `ExpectBindAck`.
    pub fn handle_bind_ack(&mut self, pdu: &[u8]) -> Result<BindOutcome, SessionError> {
        if self.state != ClientSessionState::ExpectBindAck {
            return Err(self.out_of_order("handle_bind_ack"));
        }
        let ack = match Pdu::parse(pdu) {
            Ok(Pdu::BindAck(ack)) => ack,
            Ok(Pdu::BindNak(nak)) => {
                return self.fail(SessionError::BindRejected { reason: nak.reason });
            }
            Ok(Pdu::Fault(f)) => return self.fail(fault_error(&f)),
            Ok(other) => {
                return self.fail(SessionError::UnexpectedPdu {
                    expected: Ptype::BIND_ACK,
                    found: other.ptype(),
                });
            }
            Err(e) => return self.fail(e),
        };
        match self.apply_bind_ack(&ack) {
            Ok(outcome) => Ok(outcome),
            Err(e) => self.fail(e),
        }
    }

    fn apply_bind_ack(&mut self, ack: &BindAck) -> Result<BindOutcome, SessionError> {
        self.check_call_id(self.bind_call_id, ack.call_id)?;
        let sent = self.bind_flags.contains(PfcFlags::CONC_MPX);
        let got = ack.flags.contains(PfcFlags::CONC_MPX);
        if sent != got {
            self.warn(SessionWarning::ConcMpxMismatch {
                bind: sent,
                bind_ack: got,
            });
        }
        if ack.results.len() != self.proposed.len() {
            return Err(SessionError::ResultCount {
                proposed: self.proposed.len(),
                received: ack.results.len(),
            });
        }
        let mut negotiated = Negotiated::new();
        let items = self.proposed.clone();
        for (&(context_id, proposed), &result) in items.iter().zip(&ack.results) {
            match proposed {
                TransferSyntax::Ndr32 | TransferSyntax::Ndr64 => {
                    if ndr_item_accepted(context_id, proposed, result)? {
                        if proposed == TransferSyntax::Ndr32 {
                            negotiated.ndr32 = Some(context_id);
                        } else {
                            negotiated.ndr64 = Some(context_id);
                        }
                    }
                }
                _ => {
                    negotiated.btfn = match result {
                        ContextResult::NegotiateAck { features } => {
                            BtfnOutcome::Acknowledged { features }
                        }
                        ContextResult::ProviderRejection(r) | ContextResult::UserRejection(r) => {
                            BtfnOutcome::Rejected(r)
                        }
                        other => {
                            self.warn(SessionWarning::BtfnResult(other));
                            BtfnOutcome::Unexpected(other)
                        }
                    };
                }
            }
        }
        if negotiated.ndr32.is_none() && negotiated.ndr64.is_none() {
            return Err(SessionError::NoTransferSyntax);
        }
        negotiated.bind_ack_flags = ack.flags;
        negotiated.assoc_group_id = ack.assoc_group_id;
        negotiated.sec_addr = ack.sec_addr.clone();
        negotiated.max_xmit_frag = ack.max_xmit_frag;
        negotiated.max_recv_frag = ack.max_recv_frag;
        let alter = self.config.mode == NegotiationMode::Windows
            && negotiated.ndr32.is_none()
            && negotiated.ndr64.is_some();
        self.negotiated = negotiated;
        if !alter {
            self.state = ClientSessionState::Ready;
            return Ok(BindOutcome::Ready);
        }
        // Spec 4.9: one item, ctx 0 = NDR32, same call_id and flags as the bind.
        let alter = AlterContext(Bind {
            flags: self.bind_flags,
            call_id: self.bind_call_id,
            max_xmit_frag: self.config.max_frag,
            max_recv_frag: self.config.max_frag,
            assoc_group_id: 0,
            contexts: vec![ContextElem::kms(0, TransferSyntax::Ndr32)],
        });
        self.state = ClientSessionState::ExpectAlterContextResp;
        Ok(BindOutcome::AlterContext(alter.to_bytes()))
    }

    /// Checks the alter_context_resp. A rejection or a fault is not fatal: the session
    /// goes on with NDR64 (spec 4.9) and records a warning.
    ///
    /// # Errors
    /// A malformed or unexpected PDU, a call_id mismatch or a result count other than 1,
    /// all fatal. [`SessionError::OutOfOrder`] outside `ExpectAlterContextResp`.
    pub fn handle_alter_context_resp(&mut self, pdu: &[u8]) -> Result<(), SessionError> {
        if self.state != ClientSessionState::ExpectAlterContextResp {
            return Err(self.out_of_order("handle_alter_context_resp"));
        }
        let resp = match Pdu::parse(pdu) {
            Ok(Pdu::AlterContextResp(AlterContextResp(resp))) => resp,
            Ok(Pdu::Fault(f)) => {
                self.warn(SessionWarning::AlterContextFault(f.status));
                self.negotiated.alter_context = AlterOutcome::Refused;
                self.state = ClientSessionState::Ready;
                return Ok(());
            }
            Ok(other) => {
                return self.fail(SessionError::UnexpectedPdu {
                    expected: Ptype::ALTER_CONTEXT_RESP,
                    found: other.ptype(),
                });
            }
            Err(e) => return self.fail(e),
        };
        if let Err(e) = self.check_call_id(self.bind_call_id, resp.call_id) {
            return self.fail(e);
        }
        if resp.flags.contains(PfcFlags::CONC_MPX) {
            self.warn(SessionWarning::ConcMpxSet(Ptype::ALTER_CONTEXT_RESP));
        }
        let &[result] = resp.results.as_slice() else {
            return self.fail(SessionError::ResultCount {
                proposed: 1,
                received: resp.results.len(),
            });
        };
        if result == ContextResult::Acceptance(TransferSyntax::Ndr32) {
            self.negotiated.ndr32 = Some(0);
            self.negotiated.alter_context = AlterOutcome::Accepted;
        } else {
            self.warn(SessionWarning::AlterContextRejected(result));
            self.negotiated.alter_context = AlterOutcome::Refused;
        }
        self.state = ClientSessionState::Ready;
        Ok(())
    }

    /// The context and syntax the next request uses (spec 4.9, 9 step 5.3).
    fn choose_context(&self) -> Option<(u16, Syntax)> {
        let ndr32 = self.negotiated.ndr32.map(|c| (c, Syntax::Ndr32));
        let ndr64 = self.negotiated.ndr64.map(|c| (c, Syntax::Ndr64));
        match self.config.mode {
            NegotiationMode::Windows if self.requests == 0 => ndr32.or(ndr64),
            NegotiationMode::Windows | NegotiationMode::Ndr64Preferred => ndr64.or(ndr32),
            NegotiationMode::Ndr32Only => ndr32,
        }
    }

    /// A request PDU carrying `payload` (spec 4.5): context per mode, stub in that context's
    /// syntax, `alloc_hint` = stub length, the next call_id.
    ///
    /// # Errors
    /// [`SessionError::OutOfOrder`] unless `Ready`; [`SessionError::PayloadTooLarge`] when
    /// the PDU exceeds one fragment (nothing is consumed then).
    pub fn request(&mut self, payload: &[u8]) -> Result<Vec<u8>, SessionError> {
        let mut out = Vec::new();
        self.request_into(payload, &mut out)?;
        Ok(out)
    }

    /// Like [`ClientSession::request`], appending the PDU to `out` (nothing is appended on
    /// error): the stub is written in place, so a caller that keeps `out` sends requests
    /// without allocating.
    ///
    /// # Errors
    /// As [`ClientSession::request`].
    pub fn request_into(&mut self, payload: &[u8], out: &mut Vec<u8>) -> Result<(), SessionError> {
        if self.state != ClientSessionState::Ready {
            return Err(self.out_of_order("request"));
        }
        // Ready implies a context was accepted (bind check 5), so this always finds one.
        let Some((context_id, syntax)) = self.choose_context() else {
            return Err(SessionError::NoTransferSyntax);
        };
        let stub = RequestStub { payload };
        let stub_len = stub.buffer_len(syntax);
        let len = CALL_FIXED_LEN + stub_len;
        let max = usize::from(self.config.max_frag.min(self.negotiated.max_recv_frag));
        if len > max {
            return Err(SessionError::PayloadTooLarge { len, max });
        }
        out.reserve(len);
        // alloc_hint = stub length, at most max_frag, a u16.
        Request::emit_in_place(
            out,
            PfcFlags::SINGLE,
            self.next_call_id,
            context_id,
            0,
            stub_len,
            |out| stub.emit(syntax, out),
        );
        self.pending = Some(Pending {
            call_id: self.next_call_id,
            context_id,
            syntax,
        });
        self.next_call_id = self.next_call_id.wrapping_add(1);
        self.requests += 1;
        self.last_syntax = Some(syntax);
        self.state = ClientSessionState::ExpectResponse;
        Ok(())
    }

    /// Checks a response (spec 4.6) and decodes its stub in the request's syntax (4.8).
    ///
    /// # Errors
    /// [`SessionError::Fault`] for a fault PDU (the session stays usable); anything else is
    /// fatal. [`SessionError::OutOfOrder`] outside `ExpectResponse`.
    pub fn handle_response(&mut self, pdu: &[u8]) -> Result<CallResult, SessionError> {
        self.handle_response_in(pdu).map(|r| match r {
            CallResultRef::Payload(p) => CallResult::Payload(p.to_vec()),
            CallResultRef::Hresult(code) => CallResult::Hresult(code),
        })
    }

    /// Like [`ClientSession::handle_response`], lending the payload from `pdu` instead of
    /// copying it (the client's per-request path).
    ///
    /// # Errors
    /// As [`ClientSession::handle_response`].
    pub fn handle_response_in<'a>(
        &mut self,
        pdu: &'a [u8],
    ) -> Result<CallResultRef<'a>, SessionError> {
        let (ClientSessionState::ExpectResponse, Some(pending)) = (self.state, self.pending) else {
            return Err(self.out_of_order("handle_response"));
        };
        // A response is read in place; anything else (a fault, a stray PDU, bytes that do
        // not parse) goes through the general parser for its error.
        let Ok(resp) = ResponseRef::parse(pdu) else {
            return match Pdu::parse(pdu) {
                Ok(Pdu::Fault(f)) => {
                    if f.call_id != pending.call_id {
                        self.warn(SessionWarning::FaultCallId {
                            expected: pending.call_id,
                            found: f.call_id,
                        });
                    }
                    self.pending = None;
                    self.state = ClientSessionState::Ready;
                    Err(fault_error(&f))
                }
                // ResponseRef and Response share one decoder, so a response that
                // ResponseRef refused fails here too, with the same error.
                Ok(other) => self.fail(SessionError::UnexpectedPdu {
                    expected: Ptype::RESPONSE,
                    found: other.ptype(),
                }),
                Err(e) => self.fail(e),
            };
        };
        match self.apply_response(pending, &resp) {
            Ok(result) => {
                self.pending = None;
                self.state = ClientSessionState::Ready;
                Ok(result)
            }
            Err(e) => self.fail(e),
        }
    }

    fn apply_response<'a>(
        &mut self,
        pending: Pending,
        resp: &ResponseRef<'a>,
    ) -> Result<CallResultRef<'a>, SessionError> {
        self.check_call_id(pending.call_id, resp.call_id)?;
        if resp.context_id != pending.context_id {
            return Err(SessionError::ContextMismatch {
                expected: pending.context_id,
                found: resp.context_id,
            });
        }
        if resp.cancel_count != 0 {
            return Err(SessionError::CancelCount(resp.cancel_count));
        }
        if resp.flags.contains(PfcFlags::CONC_MPX) {
            self.warn(SessionWarning::ConcMpxSet(Ptype::RESPONSE));
        }
        Ok(match ResponseStub::parse(pending.syntax, resp.stub)? {
            ResponseStub::Payload {
                payload,
                return_value: 0,
                ..
            } => CallResultRef::Payload(payload),
            ResponseStub::Payload { return_value, .. } => CallResultRef::Hresult(return_value),
            ResponseStub::Null {
                return_value: 0, ..
            } => return Err(SessionError::EmptyResponse),
            ResponseStub::Null { return_value, .. } => CallResultRef::Hresult(return_value),
        })
    }
}

fn fault_error(f: &Fault) -> SessionError {
    SessionError::Fault {
        status: f.status,
        call_id: f.call_id,
        context_id: f.context_id,
    }
}

/// Spec 4.3 check 3 for an NDR32/NDR64 item: `Ok(true)` accepted with the proposed syntax,
/// `Ok(false)` rejected for its transfer syntax, `Err` otherwise.
fn ndr_item_accepted(
    context_id: u16,
    proposed: TransferSyntax,
    result: ContextResult,
) -> Result<bool, SessionError> {
    match result {
        ContextResult::Acceptance(ts) if ts == proposed => Ok(true),
        ContextResult::ProviderRejection(RejectReason::ABSTRACT_SYNTAX_NOT_SUPPORTED)
        | ContextResult::UserRejection(RejectReason::ABSTRACT_SYNTAX_NOT_SUPPORTED) => {
            Err(SessionError::AbstractSyntaxRejected { context_id })
        }
        ContextResult::ProviderRejection(_) | ContextResult::UserRejection(_) => Ok(false),
        result => Err(SessionError::UnexpectedResult { context_id, result }),
    }
}

#[cfg(test)]
mod tests {
    use crate::wire::ndr::{ResponseStub, StubError, Syntax};
    use crate::wire::rpc::{
        AlterContextResp, ContextResult, NakReason, NcaStatus, PduError, PfcFlags, Ptype,
        RejectReason, Request, TransferSyntax,
    };

    use super::super::tests::*;
    use super::*;
    use crate::wire::rpc::tests::FAULT;
    use crate::wire::rpc::{BindNak, field};
    use crate::wire::session::{
        CallResult, ClientRpcConfig, ClientSession, ClientSessionState, NegotiationMode,
        SessionError, SessionWarning,
    };

    // --- client: one test per rejection (spec 4.3, 4.4, 4.6, 4.7) -------------------------

    #[test]
    fn client_rejects_bind_nak() {
        let (mut client, _) = awaiting_ack();
        let nak = BindNak {
            flags: PfcFlags::SINGLE,
            call_id: 2,
            reason: NakReason::PROTOCOL_VERSION_NOT_SUPPORTED,
            versions: vec![(5, 0)],
        };
        let err = client.handle_bind_ack(&nak.to_bytes()).unwrap_err();
        assert_eq!(
            err,
            SessionError::BindRejected {
                reason: NakReason::PROTOCOL_VERSION_NOT_SUPPORTED
            }
        );
        assert_eq!(client.state(), ClientSessionState::Failed);
        assert!(matches!(
            client.request(b"x"),
            Err(SessionError::OutOfOrder { .. })
        ));
    }

    #[test]
    fn client_rejects_result_count_mismatch() {
        let (mut client, mut ack) = awaiting_ack();
        ack.results.pop();
        let err = client.handle_bind_ack(&ack.to_bytes()).unwrap_err();
        assert_eq!(
            err,
            SessionError::ResultCount {
                proposed: 3,
                received: 2
            }
        );
    }

    #[test]
    fn client_rejects_abstract_syntax_rejection() {
        let (mut client, mut ack) = awaiting_ack();
        ack.results[0] =
            ContextResult::ProviderRejection(RejectReason::ABSTRACT_SYNTAX_NOT_SUPPORTED);
        let err = client.handle_bind_ack(&ack.to_bytes()).unwrap_err();
        assert_eq!(err, SessionError::AbstractSyntaxRejected { context_id: 0 });
    }

    #[test]
    fn client_rejects_bind_without_transfer_syntax() {
        let (mut client, mut ack) = awaiting_ack();
        ack.results[1] =
            ContextResult::ProviderRejection(RejectReason::TRANSFER_SYNTAXES_NOT_SUPPORTED);
        let err = client.handle_bind_ack(&ack.to_bytes()).unwrap_err();
        assert_eq!(err, SessionError::NoTransferSyntax);
        assert_eq!(client.state(), ClientSessionState::Failed);
    }

    #[test]
    fn client_rejects_acceptance_of_another_syntax() {
        let (mut client, mut ack) = awaiting_ack();
        ack.results[1] = ContextResult::Acceptance(TransferSyntax::Ndr32);
        let err = client.handle_bind_ack(&ack.to_bytes()).unwrap_err();
        assert_eq!(
            err,
            SessionError::UnexpectedResult {
                context_id: 1,
                result: ContextResult::Acceptance(TransferSyntax::Ndr32)
            }
        );
    }

    #[test]
    fn client_rejects_rejection_carrying_a_syntax() {
        let (mut client, mut ack) = awaiting_ack();
        let odd = ContextResult::Other {
            result: 2,
            reason: 2,
            syntax: crate::wire::rpc::NDR32,
        };
        ack.results[0] = odd;
        let err = client.handle_bind_ack(&ack.to_bytes()).unwrap_err();
        assert_eq!(
            err,
            SessionError::UnexpectedResult {
                context_id: 0,
                result: odd
            }
        );
    }

    #[test]
    fn client_rejects_bind_ack_call_id_mismatch_but_tolerates_wine() {
        let (mut client, mut ack) = awaiting_ack();
        ack.call_id = 9;
        let err = client.handle_bind_ack(&ack.to_bytes()).unwrap_err();
        assert_eq!(
            err,
            SessionError::CallIdMismatch {
                expected: 2,
                found: 9
            }
        );

        let (mut client, mut ack) = awaiting_ack();
        ack.call_id = 1;
        assert!(client.handle_bind_ack(&ack.to_bytes()).is_ok());
        assert_eq!(
            client.warnings(),
            [SessionWarning::WineCallId { expected: 2 }]
        );
    }

    #[test]
    fn client_rejects_unexpected_pdu_for_bind_ack() {
        let (mut client, ack) = awaiting_ack();
        let err = client
            .handle_bind_ack(&AlterContextResp(ack).to_bytes())
            .unwrap_err();
        assert_eq!(
            err,
            SessionError::UnexpectedPdu {
                expected: Ptype::BIND_ACK,
                found: Ptype::ALTER_CONTEXT_RESP
            }
        );
    }

    #[test]
    fn client_rejects_malformed_bind_ack() {
        let (mut client, ack) = awaiting_ack();
        let mut bytes = ack.to_bytes();
        bytes[field::RPC_VERS_MINOR] = 1;
        let err = client.handle_bind_ack(&bytes).unwrap_err();
        assert_eq!(
            err,
            SessionError::Pdu(PduError::Version { major: 5, minor: 1 })
        );
    }

    #[test]
    fn client_treats_fault_to_bind_as_fatal() {
        let (mut client, _) = awaiting_ack();
        let err = client.handle_bind_ack(&h(FAULT)).unwrap_err();
        assert!(matches!(
            err,
            SessionError::Fault {
                status: NcaStatus::UNK_IF,
                ..
            }
        ));
        assert_eq!(client.state(), ClientSessionState::Failed);
    }

    #[test]
    fn client_warns_on_unexpected_btfn_result() {
        let (mut client, mut ack) = awaiting_ack();
        let odd = ContextResult::Acceptance(TransferSyntax::Ndr32);
        ack.results[2] = odd;
        client.handle_bind_ack(&ack.to_bytes()).unwrap();
        assert_eq!(client.warnings(), [SessionWarning::BtfnResult(odd)]);
        assert_eq!(client.negotiated().btfn, BtfnOutcome::Unexpected(odd));
    }

    #[test]
    fn client_warns_on_conc_mpx_mismatch() {
        let (mut client, mut ack) = awaiting_ack();
        ack.flags = PfcFlags::SINGLE;
        client.handle_bind_ack(&ack.to_bytes()).unwrap();
        assert_eq!(
            client.warnings(),
            [SessionWarning::ConcMpxMismatch {
                bind: true,
                bind_ack: false
            }]
        );
        assert!(client.warnings()[0].to_string().contains("CONC_MPX"));
    }

    #[test]
    fn client_goes_on_with_ndr64_when_alter_context_is_rejected() {
        let (mut client, mut resp) = awaiting_alter();
        let reject =
            ContextResult::ProviderRejection(RejectReason::TRANSFER_SYNTAXES_NOT_SUPPORTED);
        resp.results = vec![reject];
        client
            .handle_alter_context_resp(&AlterContextResp(resp).to_bytes())
            .unwrap();
        assert_eq!(
            client.warnings(),
            [SessionWarning::AlterContextRejected(reject)]
        );
        assert_eq!(client.negotiated().alter_context, AlterOutcome::Refused);
        let req = Request::parse(&client.request(b"x").unwrap()).unwrap();
        assert_eq!(req.context_id, 1);
        assert_eq!(client.last_syntax(), Some(Syntax::Ndr64));
    }

    #[test]
    fn client_goes_on_with_ndr64_when_alter_context_faults() {
        let (mut client, _) = awaiting_alter();
        client.handle_alter_context_resp(&h(FAULT)).unwrap();
        assert_eq!(
            client.warnings(),
            [SessionWarning::AlterContextFault(NcaStatus::UNK_IF)]
        );
        assert_eq!(client.state(), ClientSessionState::Ready);
    }

    #[test]
    fn client_rejects_alter_context_resp_with_two_results() {
        let (mut client, mut resp) = awaiting_alter();
        resp.results.push(resp.results[0]);
        let err = client
            .handle_alter_context_resp(&AlterContextResp(resp).to_bytes())
            .unwrap_err();
        assert_eq!(
            err,
            SessionError::ResultCount {
                proposed: 1,
                received: 2
            }
        );
    }

    #[test]
    fn client_rejects_bind_ack_in_place_of_alter_context_resp() {
        let (mut client, resp) = awaiting_alter();
        let err = client
            .handle_alter_context_resp(&resp.to_bytes())
            .unwrap_err();
        assert_eq!(
            err,
            SessionError::UnexpectedPdu {
                expected: Ptype::ALTER_CONTEXT_RESP,
                found: Ptype::BIND_ACK
            }
        );
    }

    #[test]
    fn client_warns_on_conc_mpx_in_alter_context_resp() {
        let (mut client, mut resp) = awaiting_alter();
        resp.flags = PfcFlags::SINGLE_MPX;
        client
            .handle_alter_context_resp(&AlterContextResp(resp).to_bytes())
            .unwrap();
        assert_eq!(
            client.warnings(),
            [SessionWarning::ConcMpxSet(Ptype::ALTER_CONTEXT_RESP)]
        );
    }

    #[test]
    fn client_rejects_response_call_id_mismatch_but_tolerates_wine() {
        let (mut client, mut resp) = awaiting_response(b"abc");
        resp.call_id = 3;
        let err = client.handle_response(&resp.to_bytes()).unwrap_err();
        assert_eq!(
            err,
            SessionError::CallIdMismatch {
                expected: 2,
                found: 3
            }
        );
        assert_eq!(client.state(), ClientSessionState::Failed);

        let (mut client, mut resp) = awaiting_response(b"abc");
        resp.call_id = 1;
        assert_eq!(
            client.handle_response(&resp.to_bytes()).unwrap(),
            CallResult::Payload(b"cba".to_vec())
        );
        assert_eq!(
            client.warnings(),
            [SessionWarning::WineCallId { expected: 2 }]
        );
    }

    #[test]
    fn client_rejects_response_on_another_context() {
        let (mut client, mut resp) = awaiting_response(b"abc");
        resp.context_id = 1;
        let err = client.handle_response(&resp.to_bytes()).unwrap_err();
        assert_eq!(
            err,
            SessionError::ContextMismatch {
                expected: 0,
                found: 1
            }
        );
    }

    #[test]
    fn client_rejects_cancel_count() {
        let (mut client, mut resp) = awaiting_response(b"abc");
        resp.cancel_count = 1;
        assert_eq!(
            client.handle_response(&resp.to_bytes()).unwrap_err(),
            SessionError::CancelCount(1)
        );
    }

    #[test]
    fn client_warns_on_conc_mpx_in_response() {
        let (mut client, mut resp) = awaiting_response(b"abc");
        resp.flags = PfcFlags::SINGLE_MPX;
        assert!(client.handle_response(&resp.to_bytes()).is_ok());
        assert_eq!(
            client.warnings(),
            [SessionWarning::ConcMpxSet(Ptype::RESPONSE)]
        );
    }

    #[test]
    fn client_rejects_malformed_stub() {
        let (mut client, mut resp) = awaiting_response(b"abc");
        resp.stub.push(0);
        let err = client.handle_response(&resp.to_bytes()).unwrap_err();
        assert!(
            matches!(err, SessionError::Stub(StubError::Decode(_))),
            "{err}"
        );
    }

    #[test]
    fn client_rejects_null_response_without_error() {
        let (mut client, mut resp) = awaiting_response(b"abc");
        resp.stub = ResponseStub::error(0).to_bytes(Syntax::Ndr32);
        assert_eq!(
            client.handle_response(&resp.to_bytes()).unwrap_err(),
            SessionError::EmptyResponse
        );
    }

    #[test]
    fn client_reports_non_zero_return_value_with_payload_as_hresult() {
        let (mut client, mut resp) = awaiting_response(b"abc");
        let stub = ResponseStub::Payload {
            payload: b"x",
            referent_id: crate::wire::ndr::REFERENT_ID,
            return_value: 5,
        };
        resp.stub = stub.to_bytes(Syntax::Ndr32);
        assert_eq!(
            client.handle_response(&resp.to_bytes()).unwrap(),
            CallResult::Hresult(5)
        );
    }

    #[test]
    fn client_surfaces_fault_and_stays_usable() {
        let (mut client, mut host) = bound_client();
        call(&mut client, &mut host, b"first").unwrap();
        client.request(b"second").unwrap(); // call_id 3
        let err = client.handle_response(&h(FAULT)).unwrap_err(); // vlmcsd: call_id 2
        assert_eq!(
            err,
            SessionError::Fault {
                status: NcaStatus::UNK_IF,
                call_id: 2,
                context_id: 0
            }
        );
        assert_eq!(
            client.warnings(),
            [SessionWarning::FaultCallId {
                expected: 3,
                found: 2
            }]
        );
        assert_eq!(client.state(), ClientSessionState::Ready);
        assert_eq!(
            call(&mut client, &mut host, b"third").unwrap(),
            CallResult::Payload(b"driht".to_vec())
        );
    }

    #[test]
    fn client_rejects_unexpected_pdu_for_response() {
        let (mut client, resp) = awaiting_response(b"abc");
        let mut other = resp.to_bytes();
        other[field::PTYPE] = 0x13;
        let err = client.handle_response(&other).unwrap_err();
        assert_eq!(
            err,
            SessionError::UnexpectedPdu {
                expected: Ptype::RESPONSE,
                found: Ptype(0x13)
            }
        );
    }

    #[test]
    fn client_rejects_calls_out_of_order() {
        let mut client = ClientSession::new(ClientRpcConfig::default());
        assert_eq!(
            client.request(b"x").unwrap_err(),
            SessionError::OutOfOrder {
                call: "request",
                state: ClientSessionState::Unbound
            }
        );
        assert!(matches!(
            client.handle_response(b""),
            Err(SessionError::OutOfOrder { .. })
        ));
        assert!(matches!(
            client.handle_bind_ack(b""),
            Err(SessionError::OutOfOrder { .. })
        ));
        client.bind().unwrap();
        assert!(matches!(
            client.bind(),
            Err(SessionError::OutOfOrder { .. })
        ));
        assert!(matches!(
            client.handle_alter_context_resp(b""),
            Err(SessionError::OutOfOrder { .. })
        ));
        assert_eq!(client.state(), ClientSessionState::ExpectBindAck);
    }

    #[test]
    fn client_rejects_payload_larger_than_a_fragment() {
        let (mut client, _) = bound_client();
        // First request: NDR32, 24-byte header + 8-byte stub prefix + payload.
        let err = client.request(&[0; 5809]).unwrap_err();
        assert_eq!(client.state(), ClientSessionState::Ready);
        assert_eq!(client.next_call_id(), 2);
        assert_eq!(
            err,
            SessionError::PayloadTooLarge {
                len: 24 + 8 + 5809,
                max: 5840
            }
        );
        assert!(client.request(&[0; 5808]).is_ok());
        assert_eq!(client.next_call_id(), 3);
    }

    #[test]
    fn negotiation_modes_parse_from_their_names() {
        for mode in NegotiationMode::ALL {
            assert_eq!(mode.name().parse::<NegotiationMode>().unwrap(), mode);
        }
        assert!("ndr128".parse::<NegotiationMode>().is_err());
    }
}
