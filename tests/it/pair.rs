//! The client's session against the host model in memory: no tokio, no socket, no clock.
//!
//! A [`Pair`] joins the pieces a real exchange goes through, each the library's own:
//! `wire::session::ClientSession` and `wire::kms::encode_request` on the client side,
//! `wire::session::HostSession`, `wire::kms::HostRequest` and `host::HostModel` on the host
//! side, `Reply::from_call` and `client::outcome::classify` for what the client reports. PDUs
//! pass from one side to the other as byte vectors, each checked to be one whole frame
//! (`wire::rpc::check_frame`), so only the transport is left out. Time is a `FileTime` the
//! test moves: the model takes it as `now`, and clients stamp their requests with it (plus
//! their own skew), so 30-day expiry and the 4-hour time check run in microseconds.
//!
//! Tests here: the thresholds (24 Windows clients get 0xC004F038 and the 25th activates; 4
//! Server clients, then the 5th), the 2 × N cap, the 30-day expiry, the time check, one
//! connection carrying many requests, V4/V5/V6, and the py-kms-like negotiation.

use kmsload::catalog::{Product, lookup};
use kmsload::client::outcome::{Cause, Verdict, classify};
use kmsload::client::{Outcome, Reply};
use kmsload::host::{Decision, HostConfig, HostModel};
use kmsload::wire::kms::{self, HostRequest};
use kmsload::wire::rpc::{Frame, check_frame};
use kmsload::wire::session::{
    BindAckFlags, BindOutcome, ClientRpcConfig, ClientSession, HostAction, HostRpcConfig,
    HostSession,
};
use kmsload::wire::{FileTime, RequestBase};
use uuid::Uuid;

/// 0xC004F038: the count is below the client's N.
const NOT_ENOUGH_COUNT: u32 = 0xC004_F038;
/// 0xC004F06C: the request time is too far from the host's.
const TIME_OFF: u32 = 0xC004_F06C;
/// 2026-11-22T01:26:21Z.
const T0: FileTime = FileTime(134_397_843_810_000_000);
const DAY: i64 = 86_400;

/// A host model and the client configuration that talks to it, in memory.
struct Pair {
    model: HostModel,
    host_rpc: HostRpcConfig,
    client_rpc: ClientRpcConfig,
    /// Host time; clients stamp requests with it plus their skew.
    now: FileTime,
    /// Source of IVs and of the host's random blocks: a counter, so runs repeat.
    counter: u64,
}

/// One connection: the two session state machines.
struct Conn {
    client: ClientSession,
    host: HostSession,
}

impl Pair {
    fn new(config: HostConfig) -> Self {
        Self {
            model: HostModel::new(config, T0).unwrap(),
            host_rpc: HostRpcConfig::default(),
            client_rpc: ClientRpcConfig::default(),
            now: T0,
            counter: 0,
        }
    }

    fn advance_days(&mut self, days: i64) {
        self.now = self.now.offset_secs(days * DAY);
    }

    fn block(&mut self) -> [u8; 16] {
        self.counter += 1;
        let mut b = [0u8; 16];
        b[..8].copy_from_slice(&self.counter.to_le_bytes());
        b[8..].copy_from_slice(&(!self.counter).to_le_bytes());
        b
    }

    /// Connects: bind, and the alter_context round trip when the client needs one.
    fn connect(&mut self) -> Conn {
        let mut conn = Conn {
            client: ClientSession::new(self.client_rpc),
            host: HostSession::new(self.host_rpc.clone(), 0x1234_5678),
        };
        let bind = conn.client.bind().unwrap();
        let ack = self.pass_to_host(&mut conn, &bind).unwrap();
        if let BindOutcome::AlterContext(alter) = conn.client.handle_bind_ack(&ack).unwrap() {
            let resp = self.pass_to_host(&mut conn, &alter).unwrap();
            conn.client.handle_alter_context_resp(&resp).unwrap();
        }
        conn
    }

    /// Hands one client PDU to the host; the host's answer, or why it closed.
    fn pass_to_host(&mut self, conn: &mut Conn, pdu: &[u8]) -> Result<Vec<u8>, String> {
        assert_eq!(check_frame(pdu), Frame::Complete(pdu.len()), "client PDU");
        let (iv, random, now) = (self.block(), self.block(), self.now);
        let model = &mut self.model;
        let answer = |payload: &[u8]| -> Result<Vec<u8>, u32> {
            // What the server does per request: decode, decide at `now`, encode.
            let request = HostRequest::decode(payload).map_err(|_| 0x8007_000D_u32)?;
            match model.handle(&request.base, now) {
                Decision::Respond(a) => {
                    Ok(request.encode_response(&a.base, model.hwid(), iv, random))
                }
                Decision::Refuse(r) => Err(r.hresult()),
            }
        };
        match conn.host.handle_pdu(pdu, answer) {
            HostAction::Send(bytes) => {
                assert_eq!(
                    check_frame(&bytes),
                    Frame::Complete(bytes.len()),
                    "host PDU"
                );
                Ok(bytes)
            }
            HostAction::Close(reason) => Err(reason.to_string()),
        }
    }

    /// One activation request on `conn`, classified as the client reports it.
    fn request(&mut self, conn: &mut Conn, base: &RequestBase) -> (Verdict, Option<u32>) {
        let iv = self.block();
        let (payload, pending) = kms::encode_request(base, iv).unwrap();
        let pdu = conn.client.request(&payload).unwrap();
        let answer = self.pass_to_host(conn, &pdu).unwrap();
        let call = conn
            .client
            .handle_response(&answer)
            .unwrap_or_else(|e| panic!("session: {e}"));
        let result = Reply::from_call(&pending, call);
        let count = match &result {
            Ok(Reply::Response(r)) => Some(r.base.current_count),
            _ => None,
        };
        (classify(&result), count)
    }

    /// One activation on a new connection.
    fn activate(&mut self, base: &RequestBase) -> (Verdict, Option<u32>) {
        let mut conn = self.connect();
        self.request(&mut conn, base)
    }
}

fn product(name: &str) -> &'static Product {
    lookup::find(name).unwrap()
}

/// Client `index` of `p`, stamped with host time plus `skew_secs`.
fn base(pair: &Pair, p: &Product, version: u16, index: u128, skew_secs: i64) -> RequestBase {
    kmsload::client::volume_request(
        p,
        version,
        Uuid::from_u128(0x5eed_0000_0000_4000_8000_0000_0000_0000 | index),
        pair.now.offset_secs(skew_secs),
        &format!("pair-{index}.example.test"),
    )
}

fn assert_below_threshold(v: Verdict, count: Option<u32>, expected: u32) {
    assert_eq!(v.outcome, Outcome::NotActivated, "{v:?}");
    assert_eq!(v.hresult, NOT_ENOUGH_COUNT, "{v:?}");
    assert_eq!(v.cause, Cause::LowCount);
    assert_eq!(count, Some(expected));
}

#[test]
fn windows_clients_activate_from_the_25th() {
    let mut pair = Pair::new(HostConfig::default());
    let p = product("Windows 10/11 Enterprise");
    assert_eq!(p.n_policy, 25);
    for i in 1..=24 {
        let (v, count) = pair.activate(&base(&pair, p, 6, i, 0));
        assert_below_threshold(v, count, i as u32);
    }
    let (v, count) = pair.activate(&base(&pair, p, 6, 25, 0));
    assert_eq!(
        (v.outcome, v.hresult, count),
        (Outcome::Activated, 0, Some(25))
    );
    // The first client, asking again, now activates too; a repeat does not count twice.
    let (v, count) = pair.activate(&base(&pair, p, 6, 1, 0));
    assert_eq!((v.outcome, count), (Outcome::Activated, Some(25)));
}

#[test]
fn server_clients_activate_from_the_5th() {
    let mut pair = Pair::new(HostConfig::default());
    let p = product("Windows Server 2022 Datacenter");
    assert_eq!(p.n_policy, 5);
    for i in 1..=4 {
        let (v, count) = pair.activate(&base(&pair, p, 6, i, 0));
        assert_below_threshold(v, count, i as u32);
    }
    let (v, count) = pair.activate(&base(&pair, p, 6, 5, 0));
    assert_eq!((v.outcome, count), (Outcome::Activated, Some(5)));
}

#[test]
fn count_stops_at_twice_n_and_expires_after_30_days() {
    let mut pair = Pair::new(HostConfig::default());
    let p = product("Windows 10/11 Enterprise");
    let mut last = None;
    for i in 1..=60 {
        last = pair.activate(&base(&pair, p, 6, i, 0)).1;
    }
    assert_eq!(last, Some(50), "count capped at 2 × N");
    // 31 days later every earlier client has expired: a new one is alone again.
    pair.advance_days(31);
    let (v, count) = pair.activate(&base(&pair, p, 6, 1000, 0));
    assert_below_threshold(v, count, 1);
}

#[test]
fn clocks_more_than_four_hours_off_are_refused() {
    let mut pair = Pair::new(HostConfig {
        charged: true,
        ..HostConfig::default()
    });
    let p = product("Windows 10/11 Pro");
    for (i, skew) in [(1, 4 * 3600 + 60), (2, -(4 * 3600 + 60))] {
        let (v, _) = pair.activate(&base(&pair, p, 6, i, skew));
        assert_eq!(
            (v.outcome, v.hresult),
            (Outcome::NotActivated, TIME_OFF),
            "{skew}"
        );
        assert_eq!(v.cause, Cause::HostRefused);
    }
    for (i, skew) in [(3, 4 * 3600 - 60), (4, -(4 * 3600 - 60))] {
        let (v, _) = pair.activate(&base(&pair, p, 6, i, skew));
        assert_eq!(v.outcome, Outcome::Activated, "{skew}: {v:?}");
    }
}

#[test]
fn every_version_and_many_requests_on_one_connection() {
    let mut pair = Pair::new(HostConfig::default());
    let p = product("Windows 10/11 Enterprise");
    let mut conn = pair.connect();
    // Requests of V4, V5 and V6 in turn on one association; the count climbs across them.
    for i in 1..=30u128 {
        let version = [4, 5, 6][(i % 3) as usize];
        let (v, count) = pair.request(&mut conn, &base(&pair, p, version, i, 0));
        assert_eq!(count, Some(i.min(50) as u32), "V{version} request {i}");
        let expected = if i < 25 {
            Outcome::NotActivated
        } else {
            Outcome::Activated
        };
        assert_eq!(v.outcome, expected, "request {i}");
    }
}

#[test]
fn pykms_like_negotiation_still_activates() {
    let mut pair = Pair::new(HostConfig {
        charged: true,
        ..HostConfig::default()
    });
    // No NDR64, CONC_MPX always set, no alter_context: the Windows client binds NDR32.
    pair.host_rpc = HostRpcConfig {
        ndr64: false,
        bind_ack_flags: BindAckFlags::AlwaysConcMpx,
        alter_context: false,
        ..HostRpcConfig::default()
    };
    let p = product("Office LTSC Professional Plus 2021");
    let (v, count) = pair.activate(&base(&pair, p, 6, 1, 0));
    assert_eq!(v.outcome, Outcome::Activated, "{v:?}");
    // A charged table holds N − 1 clients: this one makes N.
    assert_eq!(count, Some(p.n_policy));
}

#[test]
fn a_product_outside_the_host_key_is_refused() {
    let mut pair = Pair::new(HostConfig {
        host_key: kmsload::host::HostKey::lookup("Windows Server 2016").unwrap(),
        charged: true,
        ..HostConfig::default()
    });
    let (v, count) = pair.activate(&base(
        &pair,
        product("Office LTSC Professional Plus 2021"),
        6,
        1,
        0,
    ));
    assert_eq!(
        (v.outcome, v.hresult, count),
        (Outcome::NotActivated, 0xC004_F042, None)
    );
    assert_eq!(v.cause, Cause::HostRefused);
}
