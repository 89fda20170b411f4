//! The host's side of a KMS RPC association: [`HostSession`] answers binds, alter_contexts and
//! requests, or says why it closes the connection (spec 4.3, 4.9, 8.1, 10.10).

use crate::wire::ndr::{RequestStub, ResponseStub, StubError, Syntax};
use crate::wire::rpc::{
    AlterContext, AlterContextResp, Bind, BindAck, BindNak, ContextElem, ContextResult, Fault,
    Header, KMS_INTERFACE, NakReason, NcaStatus, Pdu, PduError, PfcFlags, Ptype, RejectReason,
    Request, Response, SecondaryAddress, TransferSyntax,
};

/// Presentation contexts one association may hold. A KMS client needs at most two (NDR32
/// and NDR64; the BTFN item is not a context); the margin covers clients that renumber.
/// Without a bound, repeated alter_contexts register up to 65,536 per connection. Windows
/// bounds them too (MS-RPCE 3.3.1.5: 4,000 per registered interface) and refuses the excess
/// with a bind_nak, reason local_limit_exceeded.
pub const MAX_CONTEXTS: usize = 8;

/// The largest bind or alter_context PDU the host reads. A Windows client's bind (three items)
/// is 160 bytes and its alter_context 72; a longer one is refused with a bind_nak (local
/// limit exceeded) before its items are decoded.
pub const MAX_NEGOTIATION_PDU: usize = 1024;

use super::{CALL_FIXED_LEN, FAULT_LEN};

/// How the host sets CONC_MPX in a bind_ack (spec 4.10).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub enum BindAckFlags {
    /// Mirror the bind's CONC_MPX bit: Windows and vlmcsd.
    #[default]
    MirrorConcMpx,
    /// Always 0x13: py-kms.
    AlwaysConcMpx,
}

/// How a host negotiates.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HostRpcConfig {
    /// Accept NDR64. When a bind or alter_context offers NDR64, NDR32 is then rejected
    /// (reason 2) and NDR64 accepted, like a Windows host or vlmcsd `-N1`; otherwise NDR32 is
    /// accepted and NDR64 rejected (py-kms, vlmcsd `-N0`).
    pub ndr64: bool,
    /// Acknowledge bind-time feature negotiation (result 3); otherwise reject it (result 2,
    /// reason 2, vlmcsd `-B0`).
    pub btfn: bool,
    /// Feature bits the host supports; the negotiate_ack carries those the client asked for
    /// (Windows and both references: 0x3).
    pub btfn_features: u16,
    /// The secondary address in the bind_ack: the listening port.
    pub sec_addr: SecondaryAddress,
    /// CONC_MPX in the bind_ack.
    pub bind_ack_flags: BindAckFlags,
    /// Answer alter_context; otherwise close the connection (py-kms).
    pub alter_context: bool,
}

impl HostRpcConfig {
    /// A Windows-like host listening on `port`: NDR64, BTFN, CONC_MPX mirrored,
    /// alter_context answered.
    pub fn windows(port: u16) -> Self {
        Self {
            ndr64: true,
            btfn: true,
            btfn_features: crate::wire::rpc::BTFN_WINDOWS_FEATURES as u16,
            sec_addr: SecondaryAddress::port(port),
            bind_ack_flags: BindAckFlags::MirrorConcMpx,
            alter_context: true,
        }
    }
}

impl Default for HostRpcConfig {
    /// [`HostRpcConfig::windows`] on port [`KMS_PORT`](crate::wire::KMS_PORT) (1688).
    fn default() -> Self {
        Self::windows(crate::wire::KMS_PORT)
    }
}

/// What the host does with a PDU.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum HostAction {
    /// Send this PDU.
    Send(Vec<u8>),
    /// Close the connection without answering.
    Close(CloseReason),
}

/// Why the host closes the connection.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum CloseReason {
    /// The PDU failed the header checks of spec 4.1 or could not be decoded.
    #[error("malformed PDU: {0}")]
    Malformed(PduError),
    /// A request or alter_context arrived before the bind.
    #[error("{0} before bind")]
    NotBound(Ptype),
    /// A second bind on the same association.
    #[error("second bind on one association")]
    SecondBind,
    /// alter_context while the configuration says not to answer it (py-kms).
    #[error("alter_context not supported")]
    AlterContextUnsupported,
    /// A PDU type a client does not send.
    #[error("unexpected {0} from the client")]
    UnexpectedPdu(Ptype),
    /// The request stub could not be decoded in its context's syntax.
    #[error("malformed request stub: {0}")]
    BadStub(StubError),
    /// The response would not fit in one fragment of the client's `max_recv_frag`.
    #[error("response PDU of {len} bytes exceeds the client's {max}-byte fragments")]
    ResponseTooLarge {
        /// PDU length.
        len: usize,
        /// The client's `max_recv_frag`.
        max: usize,
    },
    /// The session closed earlier.
    #[error("connection already closed")]
    AlreadyClosed,
}

/// The host side of one RPC association (one TCP connection): feed it one whole PDU at a
/// time with [`handle_pdu`](Self::handle_pdu).
#[derive(Debug, Clone)]
pub struct HostSession {
    config: HostRpcConfig,
    assoc_group_id: u32,
    contexts: Vec<(u16, Syntax)>,
    client_max_recv: Option<u16>,
    closed: bool,
}

impl HostSession {
    /// A session that will answer binds with `assoc_group_id` (vlmcsd: random per
    /// connection; py-kms: 0x1063bf3f; the caller decides).
    pub fn new(config: HostRpcConfig, assoc_group_id: u32) -> Self {
        Self {
            config,
            assoc_group_id,
            contexts: Vec::new(),
            client_max_recv: None,
            closed: false,
        }
    }

    /// The configuration.
    pub fn config(&self) -> &HostRpcConfig {
        &self.config
    }

    /// The association group id.
    pub fn assoc_group_id(&self) -> u32 {
        self.assoc_group_id
    }

    /// The negotiated contexts: id and syntax.
    pub fn contexts(&self) -> &[(u16, Syntax)] {
        &self.contexts
    }

    /// True once the bind was answered.
    pub fn is_bound(&self) -> bool {
        self.client_max_recv.is_some()
    }

    /// True once a [`HostAction::Close`] was returned.
    pub fn is_closed(&self) -> bool {
        self.closed
    }

    /// Answers one whole PDU. `app` gets the KMS request payload of each request and returns
    /// the response payload, or an HRESULT to send as an error stub.
    ///
    /// - bind → bind_ack (once per association); alter_context → alter_context_resp;
    /// - a bind or alter_context longer than [`MAX_NEGOTIATION_PDU`], or one that would leave
    ///   the association with more than [`MAX_CONTEXTS`] contexts → bind_nak, reason
    ///   local_limit_exceeded, and nothing recorded (after a refused bind the client may bind
    ///   again; after a refused alter_context the contexts it had stay usable);
    /// - request on a negotiated context, opnum 0 → response in that context's syntax;
    /// - request on an unknown context → fault nca_s_unk_if (flags 0x23), checked first;
    /// - request with opnum ≠ 0 → fault nca_s_op_rng_error;
    /// - a malformed PDU or stub, a request or alter_context before the bind, a second bind,
    ///   or any other PDU type → close. After a close every call closes again.
    pub fn handle_pdu<F>(&mut self, pdu: &[u8], app: F) -> HostAction
    where
        F: FnMut(&[u8]) -> Result<Vec<u8>, u32>,
    {
        if self.closed {
            return HostAction::Close(CloseReason::AlreadyClosed);
        }
        let action = self.answer(pdu, app);
        if let HostAction::Close(_) = action {
            self.closed = true;
        }
        action
    }

    fn answer<F>(&mut self, pdu: &[u8], app: F) -> HostAction
    where
        F: FnMut(&[u8]) -> Result<Vec<u8>, u32>,
    {
        if pdu.len() > MAX_NEGOTIATION_PDU {
            // Answered from the header alone: the items of an oversized bind are never read.
            let h = match Header::new_checked(pdu).and_then(|h| h.check().map(|()| h)) {
                Ok(h) => h,
                Err(e) => return HostAction::Close(CloseReason::Malformed(e)),
            };
            match h.ptype() {
                Ptype::BIND if self.is_bound() => {
                    return HostAction::Close(CloseReason::SecondBind);
                }
                Ptype::ALTER_CONTEXT if !self.is_bound() => {
                    return HostAction::Close(CloseReason::NotBound(Ptype::ALTER_CONTEXT));
                }
                Ptype::ALTER_CONTEXT if !self.config.alter_context => {
                    return HostAction::Close(CloseReason::AlterContextUnsupported);
                }
                Ptype::BIND | Ptype::ALTER_CONTEXT => {
                    return HostAction::Send(Self::nak(h.call_id()));
                }
                _ => {}
            }
        }
        let pdu = match Pdu::parse(pdu) {
            Ok(pdu) => pdu,
            Err(e) => return HostAction::Close(CloseReason::Malformed(e)),
        };
        match pdu {
            Pdu::Bind(bind) => {
                if self.is_bound() {
                    return HostAction::Close(CloseReason::SecondBind);
                }
                let Some(results) = self.evaluate(&bind) else {
                    return HostAction::Send(Self::nak(bind.call_id));
                };
                let mpx = match self.config.bind_ack_flags {
                    BindAckFlags::MirrorConcMpx => bind.flags.contains(PfcFlags::CONC_MPX),
                    BindAckFlags::AlwaysConcMpx => true,
                };
                self.client_max_recv = Some(bind.max_recv_frag);
                let ack = BindAck {
                    flags: PfcFlags::SINGLE.with(PfcFlags::CONC_MPX, mpx),
                    call_id: bind.call_id,
                    max_xmit_frag: bind.max_xmit_frag,
                    max_recv_frag: bind.max_recv_frag,
                    assoc_group_id: self.assoc_group_id,
                    sec_addr: self.config.sec_addr.clone(),
                    results,
                };
                HostAction::Send(ack.to_bytes())
            }
            Pdu::AlterContext(AlterContext(alter)) => {
                if !self.is_bound() {
                    return HostAction::Close(CloseReason::NotBound(Ptype::ALTER_CONTEXT));
                }
                if !self.config.alter_context {
                    return HostAction::Close(CloseReason::AlterContextUnsupported);
                }
                let Some(results) = self.evaluate(&alter) else {
                    return HostAction::Send(Self::nak(alter.call_id));
                };
                let resp = AlterContextResp(BindAck {
                    flags: PfcFlags::SINGLE,
                    call_id: alter.call_id,
                    max_xmit_frag: alter.max_xmit_frag,
                    max_recv_frag: alter.max_recv_frag,
                    assoc_group_id: self.assoc_group_id,
                    sec_addr: SecondaryAddress::default(),
                    results,
                });
                HostAction::Send(resp.to_bytes())
            }
            Pdu::Request(req) => self.call(&req, app),
            other => HostAction::Close(CloseReason::UnexpectedPdu(other.ptype())),
        }
    }

    /// The results for a bind's or alter_context's items, recording the accepted contexts;
    /// `None` (and nothing recorded) when the association would then hold more than
    /// [`MAX_CONTEXTS`].
    fn evaluate(&mut self, pdu: &Bind) -> Option<Vec<ContextResult>> {
        let items = &pdu.contexts;
        if items.len() > MAX_CONTEXTS + 1 {
            // More items than contexts allowed plus the BTFN item: refused unread.
            return None;
        }
        let ndr64_offered = self.config.ndr64
            && items.iter().any(|c| {
                c.abstract_syntax == KMS_INTERFACE
                    && c.transfer_syntaxes.contains(&TransferSyntax::Ndr64)
            });
        let mut results = Vec::with_capacity(items.len());
        let mut contexts = self.contexts.clone();
        for item in items {
            let result = self.evaluate_item(item, ndr64_offered);
            let accepted = match result {
                ContextResult::Acceptance(ts) => ts.stub_syntax(),
                _ => None,
            };
            if let Some(syntax) = accepted {
                contexts.retain(|&(id, _)| id != item.context_id);
                contexts.push((item.context_id, syntax));
            }
            results.push(result);
        }
        if contexts.len() > MAX_CONTEXTS {
            return None;
        }
        self.contexts = contexts;
        Some(results)
    }

    /// A bind_nak refusing the negotiation for lack of room (MS-RPCE 3.3.1.5).
    fn nak(call_id: u32) -> Vec<u8> {
        BindNak {
            flags: PfcFlags::SINGLE,
            call_id,
            reason: NakReason::LOCAL_LIMIT_EXCEEDED,
            versions: vec![(5, 0)],
        }
        .to_bytes()
    }

    fn evaluate_item(&self, item: &ContextElem, ndr64_offered: bool) -> ContextResult {
        let btfn = item.transfer_syntaxes.iter().find_map(|ts| match ts {
            TransferSyntax::Btfn { features } => Some(*features),
            _ => None,
        });
        if let Some(requested) = btfn {
            return if self.config.btfn {
                // Masked by a u16, so the cast keeps every bit.
                let features = (requested & u64::from(self.config.btfn_features)) as u16;
                ContextResult::NegotiateAck { features }
            } else {
                ContextResult::ProviderRejection(RejectReason::TRANSFER_SYNTAXES_NOT_SUPPORTED)
            };
        }
        if item.abstract_syntax != KMS_INTERFACE {
            return ContextResult::ProviderRejection(RejectReason::ABSTRACT_SYNTAX_NOT_SUPPORTED);
        }
        let acceptable = |ts: &&TransferSyntax| match ts {
            TransferSyntax::Ndr64 => self.config.ndr64,
            TransferSyntax::Ndr32 => !ndr64_offered,
            _ => false,
        };
        match item.transfer_syntaxes.iter().find(acceptable) {
            Some(&ts) => ContextResult::Acceptance(ts),
            None => ContextResult::ProviderRejection(RejectReason::TRANSFER_SYNTAXES_NOT_SUPPORTED),
        }
    }

    fn call<F>(&mut self, req: &Request, mut app: F) -> HostAction
    where
        F: FnMut(&[u8]) -> Result<Vec<u8>, u32>,
    {
        let Some(max) = self.client_max_recv else {
            return HostAction::Close(CloseReason::NotBound(Ptype::REQUEST));
        };
        let Some(&(_, syntax)) = self.contexts.iter().find(|&&(id, _)| id == req.context_id) else {
            // vlmcsd writes p_cont_id 0 here: the named context does not exist.
            return HostAction::Send(self.fault(req.call_id, 0, NcaStatus::UNK_IF));
        };
        if req.opnum != 0 {
            return HostAction::Send(self.fault(
                req.call_id,
                req.context_id,
                NcaStatus::OP_RNG_ERROR,
            ));
        }
        let payload = match RequestStub::parse(syntax, &req.stub) {
            Ok(stub) => stub.payload,
            Err(e) => return HostAction::Close(CloseReason::BadStub(e)),
        };
        let answer = app(payload);
        let stub = match &answer {
            Ok(payload) => ResponseStub::success(payload),
            Err(hresult) => ResponseStub::error(*hresult),
        }
        .to_bytes(syntax);
        let len = CALL_FIXED_LEN + stub.len();
        if len > usize::from(max) {
            return HostAction::Close(CloseReason::ResponseTooLarge {
                len,
                max: usize::from(max),
            });
        }
        let resp = Response {
            flags: PfcFlags::SINGLE,
            call_id: req.call_id,
            alloc_hint: stub.len() as u32, // at most max_recv_frag, a u16
            context_id: req.context_id,
            cancel_count: 0,
            stub,
        };
        HostAction::Send(resp.to_bytes())
    }

    fn fault(&self, call_id: u32, context_id: u16, status: NcaStatus) -> Vec<u8> {
        Fault {
            flags: PfcFlags::SINGLE_NOT_EXECUTED,
            call_id,
            alloc_hint: FAULT_LEN,
            context_id,
            cancel_count: 0,
            status,
            stub: Vec::new(),
        }
        .to_bytes()
    }
}

#[cfg(test)]
mod tests {
    use crate::wire::ndr::{RequestStub, Syntax};
    use crate::wire::rpc::{
        AlterContext, Bind, BindAck, ContextResult, Fault, NcaStatus, Pdu, PduError, PfcFlags,
        Ptype, RejectReason, Request, Response, TransferSyntax,
    };

    use super::super::tests::*;
    use super::*;
    use crate::wire::rpc::tests::{FAULT, masked};
    use crate::wire::rpc::{SyntaxId, UnknownPdu, field};
    use crate::wire::session::{ClientRpcConfig, ClientSession, HostRpcConfig, HostSession};

    // --- host: one test per rejection ------------------------------------------------------

    fn kms_request(context_id: u16, opnum: u16, stub: Vec<u8>) -> Vec<u8> {
        Request {
            flags: PfcFlags::SINGLE,
            call_id: 2,
            alloc_hint: stub.len() as u32,
            context_id,
            opnum,
            object: None,
            stub,
        }
        .to_bytes()
    }

    #[test]
    fn host_closes_on_request_before_bind() {
        let mut host = HostSession::new(HostRpcConfig::default(), 7);
        let req = kms_request(0, 0, RequestStub { payload: b"x" }.to_bytes(Syntax::Ndr32));
        assert_eq!(
            close(&mut host, &req),
            CloseReason::NotBound(Ptype::REQUEST)
        );
        assert_eq!(close(&mut host, &client_bind()), CloseReason::AlreadyClosed);
    }

    #[test]
    fn host_closes_on_alter_context_before_bind() {
        let mut host = HostSession::new(HostRpcConfig::default(), 7);
        let alter = AlterContext(Bind::parse(&client_bind()).unwrap()).to_bytes();
        assert_eq!(
            close(&mut host, &alter),
            CloseReason::NotBound(Ptype::ALTER_CONTEXT)
        );
    }

    #[test]
    fn host_closes_on_second_bind() {
        let mut host = bound_host();
        assert_eq!(close(&mut host, &client_bind()), CloseReason::SecondBind);
    }

    #[test]
    fn host_closes_on_malformed_pdu() {
        let mut host = HostSession::new(HostRpcConfig::default(), 7);
        let mut bind = client_bind();
        bind[field::AUTH_LENGTH.start] = 4;
        assert_eq!(
            close(&mut host, &bind),
            CloseReason::Malformed(PduError::AuthLength(4))
        );
        assert!(host.is_closed());
    }

    #[test]
    fn host_closes_on_pdus_clients_do_not_send() {
        let mut host = bound_host();
        let resp = Response {
            flags: PfcFlags::SINGLE,
            call_id: 2,
            alloc_hint: 0,
            context_id: 0,
            cancel_count: 0,
            stub: vec![],
        };
        assert_eq!(
            close(&mut host, &resp.to_bytes()),
            CloseReason::UnexpectedPdu(Ptype::RESPONSE)
        );
        let mut host = bound_host();
        let unknown = UnknownPdu {
            ptype: Ptype(16),
            flags: PfcFlags::SINGLE,
            call_id: 2,
            body: vec![],
        };
        assert_eq!(
            close(&mut host, &Pdu::Unknown(unknown).to_bytes()),
            CloseReason::UnexpectedPdu(Ptype(16))
        );
    }

    #[test]
    fn host_faults_request_on_unknown_context() {
        let mut host = bound_host();
        let req = kms_request(7, 0, RequestStub { payload: b"x" }.to_bytes(Syntax::Ndr32));
        let fault = send(&mut host, &req);
        // vlmcsd's fault (vector vlmcsd-unknown-context-fault) without its garbage bytes.
        assert_eq!(
            fault,
            masked(&h(FAULT), &[field::CANCEL_COUNT, field::RESERVED])
        );
        assert!(!host.is_closed());
    }

    fn alter(call_id: u32, items: Vec<ContextElem>) -> Vec<u8> {
        let mut bind = Bind::parse(&client_bind()).unwrap();
        bind.call_id = call_id;
        bind.contexts = items;
        AlterContext(bind).to_bytes()
    }

    fn assert_nak(bytes: &[u8], call_id: u32) {
        match Pdu::parse(bytes).unwrap() {
            Pdu::BindNak(nak) => {
                assert_eq!(nak.reason, NakReason::LOCAL_LIMIT_EXCEEDED);
                assert_eq!(nak.call_id, call_id);
            }
            other => panic!("expected a bind_nak, got {other}"),
        }
    }

    #[test]
    fn host_bounds_the_contexts_of_an_association() {
        let mut host = bound_host();
        assert_eq!(host.contexts(), [(1, Syntax::Ndr64)]);
        let mut acked = 0;
        for id in 100..1100u16 {
            let call_id = u32::from(id);
            let reply = send(
                &mut host,
                &alter(call_id, vec![ContextElem::kms(id, TransferSyntax::Ndr64)]),
            );
            match Pdu::parse(&reply).unwrap() {
                Pdu::AlterContextResp(_) => acked += 1,
                _ => assert_nak(&reply, call_id),
            }
            assert!(host.contexts().len() <= MAX_CONTEXTS);
        }
        assert_eq!(acked, MAX_CONTEXTS - 1);
        // Re-negotiating a context the association holds still works, and so do requests.
        let reply = send(
            &mut host,
            &alter(5, vec![ContextElem::kms(1, TransferSyntax::Ndr64)]),
        );
        assert!(matches!(
            Pdu::parse(&reply).unwrap(),
            Pdu::AlterContextResp(_)
        ));
        let req = kms_request(1, 0, RequestStub { payload: b"ab" }.to_bytes(Syntax::Ndr64));
        assert!(matches!(
            Pdu::parse(&send(&mut host, &req)).unwrap(),
            Pdu::Response(_)
        ));
        // A refused alter_context records none of its items.
        let mut host = bound_host();
        let many: Vec<_> = (10..10 + MAX_CONTEXTS as u16)
            .map(|id| ContextElem::kms(id, TransferSyntax::Ndr64))
            .collect();
        assert_nak(&send(&mut host, &alter(9, many)), 9);
        assert_eq!(host.contexts(), [(1, Syntax::Ndr64)]);
        assert!(!host.is_closed());
    }

    #[test]
    fn host_refuses_oversized_binds_and_alter_contexts_unread() {
        let big = |call_id| {
            // Each item repeats NDR32 40 times: 4 items of 844 bytes.
            let items = (0..4)
                .map(|id| ContextElem {
                    transfer_syntaxes: vec![TransferSyntax::Ndr32; 40],
                    ..ContextElem::kms(id, TransferSyntax::Ndr32)
                })
                .collect();
            alter(call_id, items)
        };
        let alter_pdu = big(3);
        assert!(alter_pdu.len() > MAX_NEGOTIATION_PDU);
        let mut host = bound_host();
        assert_nak(&send(&mut host, &alter_pdu), 3);
        assert_eq!(host.contexts(), [(1, Syntax::Ndr64)]);

        // The same items as a bind: refused, and the client may bind again.
        let mut bind_pdu = alter_pdu.clone();
        bind_pdu[2] = Ptype::BIND.0;
        let mut host = HostSession::new(HostRpcConfig::default(), 7);
        assert_nak(&send(&mut host, &bind_pdu), 3);
        assert!(!host.is_bound());
        assert!(matches!(
            Pdu::parse(&send(&mut host, &client_bind())).unwrap(),
            Pdu::BindAck(_)
        ));
        // Once bound, an oversized bind is a second bind, and closes.
        assert_eq!(close(&mut host, &bind_pdu), CloseReason::SecondBind);
        // Before the bind, an oversized alter_context closes as any alter_context does.
        let mut host = HostSession::new(HostRpcConfig::default(), 7);
        assert_eq!(
            close(&mut host, &big(4)),
            CloseReason::NotBound(Ptype::ALTER_CONTEXT)
        );
    }

    #[test]
    fn host_faults_request_with_other_opnum() {
        let mut host = bound_host();
        let req = kms_request(1, 1, RequestStub { payload: b"x" }.to_bytes(Syntax::Ndr64));
        let fault = Fault::parse(&send(&mut host, &req)).unwrap();
        assert_eq!(fault.status, NcaStatus::OP_RNG_ERROR);
        assert_eq!(fault.context_id, 1);
        assert_eq!(fault.flags, PfcFlags::SINGLE_NOT_EXECUTED);
    }

    #[test]
    fn host_closes_on_malformed_stub() {
        let mut host = bound_host();
        // Context 1 is NDR64; an NDR32 stub does not decode there.
        let req = kms_request(
            1,
            0,
            RequestStub {
                payload: b"abcdefgh",
            }
            .to_bytes(Syntax::Ndr32),
        );
        assert!(matches!(close(&mut host, &req), CloseReason::BadStub(_)));
    }

    #[test]
    fn host_closes_when_response_exceeds_client_fragments() {
        let mut bind = Bind::parse(&client_bind()).unwrap();
        bind.max_recv_frag = 64;
        let mut host = HostSession::new(HostRpcConfig::default(), 7);
        send(&mut host, &bind.to_bytes());
        let req = kms_request(
            1,
            0,
            RequestStub { payload: &[1; 40] }.to_bytes(Syntax::Ndr64),
        );
        assert_eq!(
            close(&mut host, &req),
            CloseReason::ResponseTooLarge {
                len: 24 + 24 + 40 + 4,
                max: 64
            }
        );
    }

    #[test]
    fn host_rejects_foreign_interfaces_and_syntaxes() {
        let mut host = HostSession::new(HostRpcConfig::default(), 7);
        let mut bind = Bind::parse(&client_bind()).unwrap();
        bind.contexts[0].abstract_syntax.uuid = uuid::Uuid::nil();
        bind.contexts[1].transfer_syntaxes = vec![TransferSyntax::Other(SyntaxId::NIL)];
        let ack = BindAck::parse(&send(&mut host, &bind.to_bytes())).unwrap();
        assert_eq!(
            ack.results,
            [
                ContextResult::ProviderRejection(RejectReason::ABSTRACT_SYNTAX_NOT_SUPPORTED),
                ContextResult::ProviderRejection(RejectReason::TRANSFER_SYNTAXES_NOT_SUPPORTED),
                ContextResult::NegotiateAck { features: 3 },
            ]
        );
        assert!(host.contexts().is_empty());
    }

    #[test]
    fn host_acknowledges_only_supported_btfn_features() {
        let mut host = HostSession::new(
            HostRpcConfig {
                btfn_features: 1,
                ..HostRpcConfig::default()
            },
            7,
        );
        let ack = BindAck::parse(&send(&mut host, &client_bind())).unwrap();
        assert_eq!(ack.results[2], ContextResult::NegotiateAck { features: 1 });
    }

    #[test]
    fn host_mirrors_or_forces_conc_mpx() {
        let plain = ClientSession::new(ClientRpcConfig {
            conc_mpx: false,
            ..ClientRpcConfig::default()
        })
        .bind()
        .unwrap();
        let mut windows = HostSession::new(HostRpcConfig::default(), 7);
        assert_eq!(
            BindAck::parse(&send(&mut windows, &plain)).unwrap().flags,
            PfcFlags::SINGLE
        );
        let mut pykms = HostSession::new(pykms(), 7);
        assert_eq!(
            BindAck::parse(&send(&mut pykms, &plain)).unwrap().flags,
            PfcFlags::SINGLE_MPX
        );
    }
}
