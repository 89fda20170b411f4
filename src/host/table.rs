//! The client table of one application (spec 10.2): unique CMIDs with their last contact,
//! the count the host reports, 30-day expiry and the 2 × N bound.
//!
//! Rules, decided here where the spec leaves room:
//!
//! - **What counts.** Every CMID of an accepted request, physical or virtual (`IsClientVM` is
//!   ignored: current hosts count VMs like physical machines, spec 10.2). A repeated CMID
//!   updates its last contact and does not raise the count. `PreviousClientMachineID` is
//!   ignored (the spec gives hosts no rule for it): a machine whose CMID changed is counted
//!   twice until its old entry expires. Refused requests never reach the table.
//! - **Last contact** is the host's clock (`now`), never the client's `RequestTime`.
//! - **Expiry.** An entry expires once 30 days (30 × 86 400 s) have passed since its last
//!   contact: live ⇔ `now − last_seen < 30 days`. A host clock that goes backwards leaves
//!   entries live.
//! - **N and the bound.** `N` is the largest `RequiredClientCount` of all accepted requests of
//!   this application so far, at least 1; it never shrinks. The table stores at most 2 × N
//!   CMIDs (50 once a Windows client was seen, 10 for Office, 10 for a Windows host that has
//!   only seen servers). A new CMID arriving at a full table replaces the entry with the
//!   oldest last contact. The reported count is the number of live stored entries, so it is
//!   at most 2 × N and memory stays bounded however many distinct CMIDs arrive.
//! - **Consequence.** While N is constant the count equals min(live distinct CMIDs, 2 × N)
//!   (the property test checks this). When N grows, CMIDs evicted under the smaller bound are
//!   not remembered: 12 servers (N = 5, bound 10) then 15 clients (N = 25) give 25, not 27.
//!   vlmcsd `-M1` grows its lists the same way (spec 10.2).
//!
//! The table is ordered by (last contact, insertion sequence), so eviction and expiry take
//! O(log n) per request.

use std::collections::{BTreeMap, HashMap};

use uuid::Uuid;

use crate::wire::FileTime;

/// 30 days in seconds: entries not seen for this long expire (spec 10.2).
pub const CLIENT_TTL_SECS: i64 = 30 * 86_400;

/// One stored client.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ClientEntry {
    /// The CMID.
    pub cmid: Uuid,
    /// Host time of the last accepted request with this CMID.
    pub last_seen: FileTime,
    /// True for the placeholders of a charged start.
    pub synthetic: bool,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct ClientSlot {
    last_seen: FileTime,
    seq: u64,
    synthetic: bool,
}

/// The client table of one application.
#[derive(Debug, Clone, Default)]
pub struct ClientTable {
    max_required: u32,
    by_cmid: HashMap<Uuid, ClientSlot>,
    by_age: BTreeMap<(FileTime, u64), Uuid>,
    next_seq: u64,
}

impl ClientTable {
    /// An empty table that has seen no request.
    pub fn new() -> Self {
        Self::default()
    }

    /// Records an accepted request from `cmid` with policy `required` at host time `now` and
    /// returns the count to report.
    pub fn touch(&mut self, cmid: Uuid, required: u32, now: FileTime) -> u32 {
        self.purge(now);
        self.max_required = self.max_required.max(required);
        self.store(cmid, now, false);
        self.stored() as u32 // at most 2 × 10 000 by `capacity`
    }

    /// Adds a placeholder client (charged start) and raises N to `required`.
    pub fn add_synthetic(&mut self, cmid: Uuid, required: u32, now: FileTime) {
        self.max_required = self.max_required.max(required);
        self.store(cmid, now, true);
    }

    /// Restores one entry from a saved state, keeping its last contact. Entries must be
    /// restored after [`set_max_required`](Self::set_max_required).
    pub fn restore(&mut self, entry: ClientEntry) {
        self.store(entry.cmid, entry.last_seen, entry.synthetic);
    }

    /// Sets N, e.g. from a saved state. N never shrinks.
    pub fn set_max_required(&mut self, required: u32) {
        self.max_required = self.max_required.max(required);
    }

    fn store(&mut self, cmid: Uuid, now: FileTime, synthetic: bool) {
        let seq = self.next_seq;
        self.next_seq += 1;
        if let Some(slot) = self.by_cmid.get_mut(&cmid) {
            self.by_age.remove(&(slot.last_seen, slot.seq));
            slot.last_seen = now;
            slot.seq = seq;
            slot.synthetic &= synthetic;
        } else {
            while self.by_cmid.len() >= self.capacity() {
                let Some(((_, _), oldest)) = self.by_age.pop_first() else {
                    break;
                };
                self.by_cmid.remove(&oldest);
            }
            self.by_cmid.insert(
                cmid,
                ClientSlot {
                    last_seen: now,
                    seq,
                    synthetic,
                },
            );
        }
        self.by_age.insert((now, seq), cmid);
    }

    /// Drops every entry whose last contact is 30 days or more before `now`.
    pub fn purge(&mut self, now: FileTime) {
        let Some(cutoff) = cutoff(now) else { return };
        while let Some(entry) = self.by_age.first_entry() {
            if entry.key().0 > cutoff {
                break;
            }
            let cmid = entry.remove();
            self.by_cmid.remove(&cmid);
        }
    }

    /// The count this table would report at `now` without a new request: live entries.
    pub fn live(&self, now: FileTime) -> u32 {
        let expired = match cutoff(now) {
            Some(c) => self.by_age.range(..=(c, u64::MAX)).count(),
            None => 0,
        };
        (self.by_cmid.len() - expired) as u32 // stored() ≤ 20 000
    }

    /// Entries stored, live or not yet purged.
    pub fn stored(&self) -> usize {
        self.by_cmid.len()
    }

    /// Stored placeholder entries of a charged start.
    pub fn synthetic(&self) -> usize {
        self.by_cmid.values().filter(|s| s.synthetic).count()
    }

    /// N: the largest `RequiredClientCount` accepted so far (0 before the first request).
    pub fn max_required(&self) -> u32 {
        self.max_required
    }

    /// The bound on stored entries and on the count: 2 × max(N, 1).
    pub fn capacity(&self) -> usize {
        2 * self.max_required.max(1) as usize
    }

    /// The stored entries, oldest last contact first.
    pub fn entries(&self) -> impl Iterator<Item = ClientEntry> + '_ {
        self.by_age.iter().map(|(&(last_seen, seq), &cmid)| {
            let synthetic = self
                .by_cmid
                .get(&cmid)
                .is_some_and(|s| s.seq == seq && s.synthetic);
            ClientEntry {
                cmid,
                last_seen,
                synthetic,
            }
        })
    }
}

/// The latest last-contact time that is expired at `now`, `None` if nothing can be.
fn cutoff(now: FileTime) -> Option<FileTime> {
    let ttl = CLIENT_TTL_SECS as u64 * FileTime::TICKS_PER_SEC;
    now.0.checked_sub(ttl).map(FileTime)
}

#[cfg(test)]
mod tests {
    use proptest::prelude::*;

    use super::*;

    const T0: FileTime = FileTime(134_397_843_810_000_000);
    const DAY: i64 = 86_400;

    fn cmid(i: u32) -> Uuid {
        Uuid::from_u128(0x1000 + u128::from(i))
    }

    #[test]
    fn repeats_do_not_count() {
        let mut t = ClientTable::new();
        assert_eq!(t.touch(cmid(1), 25, T0), 1);
        assert_eq!(t.touch(cmid(1), 25, T0.offset_secs(60)), 1);
        assert_eq!(t.touch(cmid(2), 25, T0.offset_secs(120)), 2);
        assert_eq!(t.stored(), 2);
    }

    #[test]
    fn expiry_is_exactly_30_days() {
        let mut t = ClientTable::new();
        t.touch(cmid(1), 5, T0);
        assert_eq!(t.live(T0.offset_secs(30 * DAY - 1)), 1);
        assert_eq!(t.live(T0.offset_secs(30 * DAY)), 0);
        assert_eq!(t.touch(cmid(2), 5, T0.offset_secs(30 * DAY)), 1);
        assert_eq!(t.stored(), 1);
    }

    #[test]
    fn eviction_replaces_the_least_recently_seen() {
        let mut t = ClientTable::new();
        for i in 0..10 {
            t.touch(cmid(i), 5, T0.offset_secs(i64::from(i)));
        }
        t.touch(cmid(0), 5, T0.offset_secs(100)); // 0 becomes the most recent
        assert_eq!(t.touch(cmid(10), 5, T0.offset_secs(101)), 10);
        let stored: Vec<Uuid> = t.entries().map(|e| e.cmid).collect();
        assert!(!stored.contains(&cmid(1)), "the oldest (1) is evicted");
        assert!(stored.contains(&cmid(0)));
    }

    #[test]
    fn clock_going_backwards_keeps_entries() {
        let mut t = ClientTable::new();
        t.touch(cmid(1), 5, T0);
        assert_eq!(t.touch(cmid(2), 5, T0.offset_secs(-DAY)), 2);
        assert_eq!(t.live(FileTime(0)), 2);
    }

    #[test]
    fn synthetic_flag_survives_only_until_a_real_request() {
        let mut t = ClientTable::new();
        t.add_synthetic(cmid(1), 25, T0);
        assert_eq!(t.synthetic(), 1);
        assert!(t.entries().all(|e| e.synthetic));
        t.touch(cmid(1), 25, T0);
        assert_eq!(t.synthetic(), 0);
    }

    #[derive(Debug, Clone)]
    enum Op {
        Request { client: u32, advance_hours: u32 },
    }

    fn op() -> impl Strategy<Value = Op> {
        // Steps up to 10 days so that entries expire now and then; a pool of 24 CMIDs so that
        // the 2N bound (4, 10 or 50) is reached for small N.
        (0u32..24, prop_oneof![0u32..3, 0u32..240]).prop_map(|(client, advance_hours)| {
            Op::Request {
                client,
                advance_hours,
            }
        })
    }

    proptest! {
        /// The count equals min(live distinct CMIDs within 30 days, 2N), computed by a
        /// reference model that remembers every CMID forever.
        #[test]
        fn count_matches_reference_model(
            n in prop_oneof![Just(2u32), Just(5), Just(25)],
            ops in proptest::collection::vec(op(), 1..300),
        ) {
            let mut table = ClientTable::new();
            let mut reference: HashMap<u32, FileTime> = HashMap::new();
            let mut now = T0;
            for Op::Request { client, advance_hours } in ops {
                now = now.offset_secs(i64::from(advance_hours) * 3600);
                reference.insert(client, now);
                let live = reference
                    .values()
                    .filter(|&&seen| now.secs_since(seen) < CLIENT_TTL_SECS)
                    .count() as u32;
                let count = table.touch(cmid(client), n, now);
                prop_assert_eq!(count, live.min(2 * n));
                prop_assert!(table.stored() <= 2 * n as usize);
                prop_assert_eq!(table.live(now), count);
            }
        }
    }
}
