//! When a simulated machine is on: a pure function of (group, client, virtual time), so no
//! power-on or power-off event is ever stored. The engine asks one question, [`Presence::next_on`]:
//! "the first moment at or after `t` when this machine is present and powered on".
//!
//! - `always`: on from joining to leaving.
//! - `office-hours`: Monday to Friday; boots at 07:30 plus 0–90 minutes and shuts down at
//!   17:00 plus 0–120 minutes, drawn per (client, day) from the seed. Times are the virtual
//!   clock's (UTC); a fleet spread over time zones is several groups with shifted `start`s.
//! - `weekly`: one weekday per client (drawn from the seed), office hours that day.
//! - `away`: a share of the group (drawn per client) is off during the windows, whatever the
//!   pattern says (laptops off site, a closed site).
//! - joins and leaves: a machine exists from its wave's time until its leaving wave's time.

use super::spec::{ClientGroup, DAY, PowerPattern};
use crate::sim::Stream;

const BOOT_FROM: i64 = 7 * 3600 + 1800;
const BOOT_SPREAD: u64 = 90 * 60;
const OFF_FROM: i64 = 17 * 3600;
const OFF_SPREAD: u64 = 120 * 60;

/// Stream tags of this module (distinct from `sim`'s and the engine's).
const TAG_DAY: u64 = 0x5157_0001;
const TAG_WEEKDAY: u64 = 0x5157_0002;
const TAG_AWAY: u64 = 0x5157_0003;

/// The calendar facts of one client: derived, never stored.
#[derive(Debug, Clone, Copy)]
pub struct Presence<'a> {
    /// The client's group.
    pub group: &'a ClientGroup,
    /// Index within the group.
    pub local: u64,
    /// Seconds from the start when it appears.
    pub joined: i64,
    /// Seconds from the start when it leaves (`i64::MAX`: never).
    pub left: i64,
    /// Whether the group's away windows apply to it.
    pub away: bool,
    /// Unix seconds of virtual time 0.
    pub start_unix: i64,
    /// Per-group stream.
    pub stream: Stream,
}

impl<'a> Presence<'a> {
    /// The presence of client `local` of `group` (group stream derived from the seed).
    pub fn of(
        group: &'a ClientGroup,
        group_index: usize,
        local: u64,
        seed: u64,
        start_unix: i64,
    ) -> Self {
        let stream = Stream::new(seed, 0x5157_0000).derive(group_index as u64);
        let joined = if local < group.size {
            0
        } else {
            let mut first = group.size;
            let mut at = 0;
            for w in &group.joins {
                if local < first + w.count {
                    at = w.at;
                    break;
                }
                first += w.count;
            }
            at
        };
        let mut left = i64::MAX;
        let mut first = 0;
        for w in &group.leaves {
            if local >= first && local < first + w.count {
                left = w.at;
                break;
            }
            first += w.count;
        }
        let away = group
            .away
            .as_ref()
            .is_some_and(|a| stream.derive(TAG_AWAY).unit(local) < a.share);
        Self {
            group,
            local,
            joined,
            left,
            away,
            start_unix,
            stream,
        }
    }

    /// Whether the machine exists at `t` (joined, not yet left).
    pub fn exists(&self, t: i64) -> bool {
        self.joined <= t && t < self.left
    }

    /// The first moment `>= t` and `< end` when the machine exists, is not away and is on.
    pub fn next_on(&self, t: i64, end: i64) -> Option<i64> {
        let mut t = t.max(self.joined);
        let stop = end.min(self.left);
        // Each pass moves t forward to a window's end or an on-interval's start; a fleet
        // calendar has few windows, and office hours repeat weekly, so this ends quickly.
        loop {
            if t >= stop {
                return None;
            }
            if self.away
                && let Some(a) = &self.group.away
                && let Some(&(_, to)) = a.windows.iter().find(|&&(f, to)| f <= t && t < to)
            {
                t = to;
                continue;
            }
            let on = self.power_on_from(t);
            if on == t {
                return Some(t);
            }
            t = on;
        }
    }

    /// The first moment `>= t` when the power pattern alone says on.
    fn power_on_from(&self, t: i64) -> i64 {
        let weekly_day = match self.group.power {
            PowerPattern::Always => return t,
            PowerPattern::OfficeHours => None,
            PowerPattern::Weekly => Some(self.stream.derive(TAG_WEEKDAY).below(self.local, 5)),
        };
        let abs = self.start_unix + t;
        let mut day = abs.div_euclid(DAY);
        loop {
            // 0 = Monday (1970-01-01 was a Thursday).
            let weekday = (day + 3).rem_euclid(7) as u64;
            let works = match weekly_day {
                None => weekday < 5,
                Some(w) => weekday == w,
            };
            if works {
                let (on, off) = self.hours(day);
                if abs < off {
                    return on.max(abs) - self.start_unix;
                }
            }
            day += 1;
        }
    }

    /// Boot and shutdown (Unix seconds) of this client on Unix day `day`.
    fn hours(&self, day: i64) -> (i64, i64) {
        let s = self.stream.derive(TAG_DAY).derive(day as u64);
        let h = s.at(self.local);
        let boot = BOOT_FROM + (h % BOOT_SPREAD) as i64;
        let off = OFF_FROM + ((h >> 32) % OFF_SPREAD) as i64;
        (day * DAY + boot, day * DAY + off)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::lifecycle::spec::{Away, StartState, Wave};
    use crate::scenario::ProductShare;
    use crate::sim::SkewDist;

    const MONDAY: i64 = super::super::spec::DEFAULT_START_UNIX;

    fn group(power: PowerPattern) -> ClientGroup {
        let p = &crate::catalog::products()[0];
        ClientGroup {
            name: "g".into(),
            size: 10,
            products: vec![ProductShare {
                product: p,
                weight: 1.0,
                protocol: p.protocol,
            }],
            vm_fraction: 0.0,
            skew: SkewDist::Fixed(0),
            power,
            state: StartState::Activated,
            renewed_within: None,
            away: None,
            joins: vec![],
            leaves: vec![],
        }
    }

    #[test]
    fn always_on_is_on_at_once() {
        let g = group(PowerPattern::Always);
        let p = Presence::of(&g, 0, 3, 1, MONDAY);
        assert_eq!(p.next_on(12_345, 100 * DAY), Some(12_345));
        assert_eq!(p.next_on(100 * DAY, 100 * DAY), None);
    }

    #[test]
    fn office_hours_boot_on_weekday_mornings() {
        let g = group(PowerPattern::OfficeHours);
        for local in 0..10 {
            let p = Presence::of(&g, 0, local, 1, MONDAY);
            // Midnight Monday → boot Monday between 07:30 and 09:00.
            let on = p.next_on(0, 30 * DAY).unwrap();
            assert!((BOOT_FROM..BOOT_FROM + 5400).contains(&on), "{on}");
            // Saturday noon → Monday morning of the next week.
            let sat = 5 * DAY + 12 * 3600;
            let on = p.next_on(sat, 30 * DAY).unwrap();
            assert!(
                (7 * DAY + BOOT_FROM..7 * DAY + BOOT_FROM + 5400).contains(&on),
                "{on}"
            );
            // Monday 20:00 is after every shutdown (latest 19:00) → Tuesday morning.
            let on = p.next_on(20 * 3600, 30 * DAY).unwrap();
            assert!(
                (DAY + BOOT_FROM..DAY + BOOT_FROM + 5400).contains(&on),
                "{on}"
            );
            // Monday 12:00 is on.
            assert_eq!(p.next_on(12 * 3600, 30 * DAY), Some(12 * 3600));
        }
    }

    #[test]
    fn weekly_machines_come_on_one_weekday() {
        let g = group(PowerPattern::Weekly);
        let p = Presence::of(&g, 0, 7, 1, MONDAY);
        let a = p.next_on(0, 60 * DAY).unwrap();
        let b = p.next_on(a.div_euclid(DAY) * DAY + DAY, 60 * DAY).unwrap();
        assert_eq!(b.div_euclid(DAY) - a.div_euclid(DAY), 7);
    }

    #[test]
    fn away_windows_joins_and_leaves() {
        let mut g = group(PowerPattern::Always);
        g.away = Some(Away {
            share: 1.0,
            windows: vec![(10 * DAY, 40 * DAY)],
        });
        g.joins = vec![Wave {
            at: 5 * DAY,
            count: 2,
        }];
        g.leaves = vec![Wave {
            at: 50 * DAY,
            count: 1,
        }];
        let first = Presence::of(&g, 0, 0, 1, MONDAY);
        assert_eq!(first.next_on(11 * DAY, 100 * DAY), Some(40 * DAY));
        assert_eq!(first.next_on(51 * DAY, 100 * DAY), None, "left on day 50");
        let joiner = Presence::of(&g, 0, 11, 1, MONDAY);
        assert_eq!(joiner.joined, 5 * DAY);
        assert_eq!(joiner.next_on(0, 100 * DAY), Some(5 * DAY));
        assert!(!joiner.exists(DAY) && joiner.exists(6 * DAY));
    }
}
