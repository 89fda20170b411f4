//! Host identity tracker: the ePIDs and HwIDs each host showed, per counting pool.
//!
//! A Windows host keeps one ePID per host key (so one per pool: Windows and Office use
//! different keys) and one HwID (spec 10.5, 10.6); vlmcsd `-r1` does the same, py-kms draws a
//! new ePID per request. A second value for the same host and pool is reported as a change.
//!
//! The stable case costs one string comparison per attempt and no allocation: the values
//! seen are kept in a short list per (host, pool) and compared directly. At most
//! [`VALUES_MAX`] distinct values are listed per (host, pool); further new values are counted
//! in `unlisted` (a host that changes its ePID every time is already "changed").

use serde::{Deserialize, Serialize};

use super::Application;

/// Distinct ePIDs (and HwIDs) listed per host and pool.
pub const VALUES_MAX: usize = 64;

#[derive(Debug, Clone, PartialEq, Eq)]
struct Seen<K> {
    value: K,
    count: u64,
    first_attempt: u64,
    last_attempt: u64,
}

#[derive(Debug, Clone, PartialEq, Eq)]
struct Values<K> {
    seen: Vec<Seen<K>>,
    unlisted: u64,
}

impl<K> Default for Values<K> {
    fn default() -> Self {
        Self {
            seen: Vec::new(),
            unlisted: 0,
        }
    }
}

impl<K: Clone + Ord> Values<K> {
    fn observe<Q>(&mut self, value: &Q, attempt: u64)
    where
        K: std::borrow::Borrow<Q>,
        Q: ?Sized + Eq + ToOwned<Owned = K>,
    {
        let full = self.seen.len() >= VALUES_MAX;
        match self.seen.iter_mut().find(|s| s.value.borrow() == value) {
            Some(s) => {
                s.count += 1;
                s.first_attempt = s.first_attempt.min(attempt);
                s.last_attempt = s.last_attempt.max(attempt);
            }
            None if full => self.unlisted += 1,
            None => self.seen.push(Seen {
                value: value.to_owned(),
                count: 1,
                first_attempt: attempt,
                last_attempt: attempt,
            }),
        }
    }

    fn merge(&mut self, other: &Self) {
        for o in &other.seen {
            match self.seen.iter_mut().find(|s| s.value == o.value) {
                Some(s) => {
                    s.count += o.count;
                    s.first_attempt = s.first_attempt.min(o.first_attempt);
                    s.last_attempt = s.last_attempt.max(o.last_attempt);
                }
                None => self.seen.push(o.clone()),
            }
        }
        self.unlisted += other.unlisted;
        if self.seen.len() > VALUES_MAX {
            self.seen
                .sort_by(|a, b| (a.first_attempt, &a.value).cmp(&(b.first_attempt, &b.value)));
            for s in self.seen.drain(VALUES_MAX..) {
                self.unlisted += s.count;
            }
        }
    }

    fn distinct(&self) -> usize {
        self.seen.len() + usize::from(self.unlisted > 0)
    }

    fn summary(&self, show: impl Fn(&K) -> String) -> Vec<SeenSummary> {
        let mut v: Vec<SeenSummary> = self
            .seen
            .iter()
            .map(|s| SeenSummary {
                value: show(&s.value),
                count: s.count,
                first_attempt: s.first_attempt,
                last_attempt: s.last_attempt,
            })
            .collect();
        v.sort_by(|a, b| (a.first_attempt, &a.value).cmp(&(b.first_attempt, &b.value)));
        v
    }
}

/// One ePID or HwID and when it was seen.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
pub struct SeenSummary {
    /// The ePID, or the HwID as 16 uppercase hex digits in wire order.
    pub value: String,
    /// Attempts that got it.
    pub count: u64,
    /// Smallest attempt number that got it.
    pub first_attempt: u64,
    /// Largest attempt number that got it.
    pub last_attempt: u64,
}

/// What one host showed for one pool.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
pub struct HostSummary {
    /// Index of the host in the run's target list.
    pub host: u16,
    /// Counting pool.
    pub pool: Application,
    /// ePIDs, by first appearance.
    pub epids: Vec<SeenSummary>,
    /// HwIDs, by first appearance.
    pub hwids: Vec<SeenSummary>,
    /// Answers whose ePID or HwID was new after [`VALUES_MAX`] were listed.
    pub unlisted: u64,
    /// More than one ePID or more than one HwID.
    pub changed: bool,
}

#[derive(Debug, Clone)]
struct HostPool {
    host: u16,
    pool: Application,
    epids: Values<String>,
    hwids: Values<[u8; 8]>,
}

impl HostPool {
    fn changed(&self) -> bool {
        self.epids.distinct() > 1 || self.hwids.distinct() > 1
    }
}

/// See the module docs.
#[derive(Debug, Clone, Default)]
pub(super) struct HostTracker {
    entries: Vec<HostPool>,
}

impl HostTracker {
    pub(super) fn observe(
        &mut self,
        host: u16,
        pool: Application,
        epid: Option<&str>,
        hwid: Option<[u8; 8]>,
        attempt: u64,
    ) {
        if epid.is_none() && hwid.is_none() {
            return;
        }
        let e = self.entry(host, pool);
        if let Some(s) = epid {
            e.epids.observe(s, attempt);
        }
        if let Some(h) = hwid {
            e.hwids.observe(&h, attempt);
        }
    }

    fn entry(&mut self, host: u16, pool: Application) -> &mut HostPool {
        let i = match self
            .entries
            .iter()
            .position(|e| e.host == host && e.pool == pool)
        {
            Some(i) => i,
            None => {
                self.entries.push(HostPool {
                    host,
                    pool,
                    epids: Values::default(),
                    hwids: Values::default(),
                });
                self.entries.len() - 1
            }
        };
        &mut self.entries[i]
    }

    pub(super) fn merge(&mut self, other: &Self) {
        for o in &other.entries {
            let e = self.entry(o.host, o.pool);
            e.epids.merge(&o.epids);
            e.hwids.merge(&o.hwids);
        }
    }

    /// The tracker behind `summaries` (summary.json's `hosts`): every listed value with its
    /// count and attempt range. Answers past the listed values are counted as unlisted ePIDs.
    ///
    /// # Errors
    /// A HwID that is not 16 hex digits.
    pub(super) fn restore(summaries: &[HostSummary]) -> Result<Self, String> {
        let mut t = Self::default();
        for h in summaries {
            let e = t.entry(h.host, h.pool);
            for s in &h.epids {
                e.epids.seen.push(Seen {
                    value: s.value.clone(),
                    count: s.count,
                    first_attempt: s.first_attempt,
                    last_attempt: s.last_attempt,
                });
            }
            for s in &h.hwids {
                let mut value = [0u8; 8];
                let bad = || format!("host {}: HwID {:?} is not 16 hex digits", h.host, s.value);
                if s.value.len() != 16 || !s.value.is_ascii() {
                    return Err(bad());
                }
                for (i, b) in value.iter_mut().enumerate() {
                    *b = u8::from_str_radix(&s.value[2 * i..2 * i + 2], 16).map_err(|_| bad())?;
                }
                e.hwids.seen.push(Seen {
                    value,
                    count: s.count,
                    first_attempt: s.first_attempt,
                    last_attempt: s.last_attempt,
                });
            }
            e.epids.unlisted += h.unlisted;
        }
        Ok(t)
    }

    /// True when any host showed more than one ePID or HwID for a pool.
    pub(super) fn changed(&self) -> bool {
        self.entries.iter().any(HostPool::changed)
    }

    pub(super) fn summary(&self) -> Vec<HostSummary> {
        let mut v: Vec<HostSummary> = self
            .entries
            .iter()
            .map(|e| HostSummary {
                host: e.host,
                pool: e.pool,
                epids: e.epids.summary(String::clone),
                hwids: e
                    .hwids
                    .summary(|h| h.iter().map(|b| format!("{b:02X}")).collect()),
                unlisted: e.epids.unlisted + e.hwids.unlisted,
                changed: e.changed(),
            })
            .collect();
        v.sort_by_key(|h| (h.host, h.pool));
        v
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const EPID: &str = "03612-00206-568-579566-03-1033-17763.0000-2062020";
    const HWID: [u8; 8] = [0x3A, 0x1C, 0x04, 0x96, 0x00, 0xB6, 0x00, 0x76];

    #[test]
    fn a_stable_host_is_not_changed() {
        let mut t = HostTracker::default();
        for a in 0..10 {
            t.observe(0, Application::Windows, Some(EPID), Some(HWID), a);
        }
        t.observe(
            0,
            Application::Office2013,
            Some("other-epid"),
            Some(HWID),
            10,
        );
        t.observe(0, Application::Windows, None, None, 11);
        assert!(!t.changed());
        let s = t.summary();
        assert_eq!(s.len(), 2);
        assert_eq!(
            s[0].epids,
            [SeenSummary {
                value: EPID.into(),
                count: 10,
                first_attempt: 0,
                last_attempt: 9
            }]
        );
        assert_eq!(s[0].hwids[0].value, "3A1C049600B60076");
    }

    #[test]
    fn a_second_epid_or_hwid_is_a_change() {
        let mut t = HostTracker::default();
        t.observe(1, Application::Windows, Some(EPID), None, 0);
        t.observe(1, Application::Windows, Some("x"), None, 1);
        assert!(t.changed());
        let mut t = HostTracker::default();
        t.observe(1, Application::Windows, None, Some(HWID), 0);
        t.observe(1, Application::Windows, None, Some([0; 8]), 1);
        assert!(t.changed());
        assert_eq!(t.summary()[0].hwids.len(), 2);
    }

    #[test]
    fn values_are_bounded_and_merge_keeps_the_earliest() {
        let mut t = HostTracker::default();
        for a in 0..100u64 {
            t.observe(0, Application::Windows, Some(&format!("epid-{a}")), None, a);
        }
        let s = t.summary();
        assert_eq!(
            (s[0].epids.len(), s[0].unlisted),
            (VALUES_MAX, 100 - VALUES_MAX as u64)
        );
        let (mut a, mut b) = (HostTracker::default(), HostTracker::default());
        for i in 0..100u64 {
            let t = if i % 2 == 0 { &mut a } else { &mut b };
            t.observe(0, Application::Windows, Some(&format!("epid-{i}")), None, i);
        }
        a.merge(&b);
        let m = a.summary();
        assert_eq!(
            (m[0].epids.len(), m[0].unlisted),
            (VALUES_MAX, 100 - VALUES_MAX as u64)
        );
        assert_eq!(
            m[0].epids.last().map(|e| e.first_attempt),
            Some(VALUES_MAX as u64 - 1)
        );
    }

    #[test]
    fn merge_combines_counts_and_ranges() {
        let (mut a, mut b) = (HostTracker::default(), HostTracker::default());
        a.observe(2, Application::Office2010, Some(EPID), None, 5);
        b.observe(2, Application::Office2010, Some(EPID), None, 1);
        b.observe(3, Application::Office2010, Some(EPID), None, 9);
        a.merge(&b);
        let s = a.summary();
        assert_eq!(s.len(), 2);
        assert_eq!(
            s[0].epids,
            [SeenSummary {
                value: EPID.into(),
                count: 2,
                first_attempt: 1,
                last_attempt: 5
            }]
        );
        assert_eq!(s[1].host, 3);
    }
}
