//! The event loop: one priority queue of "client i's next attempt at virtual time t", each
//! attempt decided by [`HostModel::handle`] — the reference host's own decision function —
//! and the statistics the results are written from.
//!
//! ```text
//! heap (t, client) ──pop──► roll hour/day samples up to t
//!        ▲                   │
//!        │                   ▼
//!        │            identity = sim::Fleet::client(local)       (derived, not stored)
//!        │            RequestBase(licence state, skewed clock)
//!        │            hosts in order: down? over service rate? ─► next host
//!        │                            else HostModel::handle ──► Respond / Refuse
//!        │            ClientState::record (validity, intervals from the response)
//!        └── push (next_on(due), client)      due = renewal or retry time
//! ```
//!
//! Power-on and power-off are not events: [`Presence::next_on`] answers "first moment on at
//! or after the due time", which is when a real client's timer would fire (or its boot
//! check, when the time passed while it was off). So the queue holds one entry per client
//! and the work is proportional to attempts, not to days × clients. Per-day state counts
//! are a scan of the client array at each midnight.
//!
//! Outcomes, as a client reports them (spec 8.2–8.4): S_OK; 0xC004F038 (a response whose
//! count is below the client's N); the host's refusal code (0xC004F06C, 0xC004F042,
//! 0x8007000D); 0xC004F074 when no host answered (every host down, or over its service rate
//! in that second, which a client sees as a timeout).

use std::cmp::Reverse;
use std::collections::BinaryHeap;

use uuid::Uuid;

use super::client::{ClientState, LicenceState};
use super::power::Presence;
use super::spec::{DAY, LifeScenario, StartState};
use crate::host::{Application, Decision, HostConfig, HostModel};
use crate::sim::{self, Fleet, FleetSpec, ProductWeight, Stream};
use crate::wire::{FileTime, RequestBase, Version};

/// SimOutcome columns, in order: S_OK, then the codes a client can end an attempt with.
pub const CODES: [u32; 6] = [
    0,
    0xC004_F038,
    0xC004_F074,
    0xC004_F06C,
    0xC004_F042,
    0x8007_000D,
];
const OK: usize = 0;
const LOW: usize = 1;
const NO_HOST: usize = 2;

/// The index of `code` in [`CODES`].
fn code_index(code: u32) -> usize {
    CODES
        .iter()
        .position(|&c| c == code)
        .unwrap_or(CODES.len() - 1)
}

/// Tally of attempts by outcome column ([`CODES`]).
pub type OutcomeCounts = [u64; 6];

/// One sample of a time series (an hour or a day).
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Row {
    /// Attempts by outcome.
    pub outcomes: OutcomeCounts,
    /// At the end of the period: each (host, application) pool's count (see [`Pool`]).
    pub counts: Vec<u32>,
    /// At the end of the period (days only): clients by [`LicenceState::ALL`] order.
    pub states: [u64; 5],
}

impl Row {
    /// Attempts in the period.
    pub fn requests(&self) -> u64 {
        self.outcomes.iter().sum()
    }
}

/// One counting pool: an application's client table on one host.
#[derive(Debug, Clone, PartialEq)]
pub struct Pool {
    /// Host index.
    pub host: usize,
    /// Host name.
    pub host_name: String,
    /// The application.
    pub application: Application,
    /// The threshold: the largest N of the fleet's products of this application.
    pub required: u32,
    /// First virtual time a response from this host carried a count ≥ `required`.
    pub reached_at: Option<i64>,
    /// Days whose end-of-day count was below `required`.
    pub days_below: u64,
    /// (first day, last day) of each stretch below the threshold after it was first reached.
    pub dips: Vec<(i64, i64)>,
}

/// Everything the simulation measured.
#[derive(Debug, Clone)]
pub struct SimOutcome {
    /// Attempts by outcome over the run.
    pub totals: OutcomeCounts,
    /// Per virtual day.
    pub days: Vec<Row>,
    /// Per virtual hour (no state counts).
    pub hours: Vec<Row>,
    /// Attempts per virtual minute.
    pub minutes: Vec<u32>,
    /// The counting pools, host by host.
    pub pools: Vec<Pool>,
    /// Clients by state at the end.
    pub end_states: [u64; 5],
    /// Clients whose validity lapsed at some point.
    pub lost_activation: u64,
    /// Smallest validity left (days) seen on an activated client; 0 if one lapsed.
    pub min_validity_days_left: Option<f64>,
    /// Longest time a client went without a successful activation or renewal, seconds.
    pub longest_without_renewal: i64,
    /// Attempts per product slot per hour: `hour_products[h * slots + s]`.
    pub hour_products: Vec<u32>,
    /// The product slots: (catalog index, protocol).
    pub slots: Vec<(usize, u16)>,
    /// Clients that ever existed.
    pub clients: u64,
    /// Bytes of per-client state held (the client array and the queue).
    pub state_bytes: usize,
    /// Requests each host answered (refusals included).
    pub host_requests: Vec<u64>,
    /// Every attempt, when asked for ([`simulate_logged`]); empty otherwise.
    pub log: Vec<LoggedAttempt>,
}

/// One attempt as the simulation made it, for replaying against a real host.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LoggedAttempt {
    /// Virtual time, seconds from the start.
    pub t: i64,
    /// Global client index.
    pub client: u32,
    /// The host that answered, if one did.
    pub host: Option<usize>,
    /// The outcome code ([`CODES`]: 0 for S_OK).
    pub code: u32,
    /// The request sent.
    pub request: RequestBase,
}

struct HostRt {
    model: HostModel,
    down: Vec<(i64, i64)>,
    rate: Option<u32>,
    second: i64,
    used: u32,
}

struct GroupRt {
    fleet: Fleet,
    first: u32,
    total: u32,
    /// Product slot per fleet product entry.
    slot_of: Vec<(usize, u16, usize)>,
}

/// Runs a scenario to its end.
///
/// # Panics
/// Never on a validated scenario (host configurations and fleets are checked by `spec`).
pub fn simulate(sc: &LifeScenario) -> Result<SimOutcome, String> {
    Engine::new(sc)?.run()
}

/// [`simulate`], also keeping every attempt in [`SimOutcome::log`] (for short scenarios).
///
/// # Errors
/// As [`simulate`].
pub fn simulate_logged(sc: &LifeScenario) -> Result<SimOutcome, String> {
    let mut e = Engine::new(sc)?;
    e.logging = true;
    e.run()
}

/// The reference host configuration of host `index` of the scenario, as the simulation
/// builds its [`HostModel`] (and as `kmsload host` would be configured to match it).
pub fn host_config(sc: &LifeScenario, index: usize) -> HostConfig {
    let h = &sc.hosts[index];
    HostConfig {
        host_key: h.host_key,
        charged: h.charged,
        time_check: h.time_check,
        activation_interval: h.activation_interval_min,
        renewal_interval: h.renewal_interval_min,
        seed: sc.seed.wrapping_add(index as u64),
        ..HostConfig::default()
    }
}

struct Engine<'a> {
    sc: &'a LifeScenario,
    groups: Vec<GroupRt>,
    clients: Vec<ClientState>,
    heap: BinaryHeap<Reverse<(i64, u32)>>,
    hosts: Vec<HostRt>,
    start: FileTime,
    end: i64,
    out: SimOutcome,
    /// Pool index per (host, application index).
    pool_at: Vec<[Option<usize>; 3]>,
    next_hour: i64,
    next_day: i64,
    logging: bool,
}

fn app_index(a: Application) -> usize {
    match a {
        Application::Windows => 0,
        Application::Office2010 => 1,
        Application::Office2013 => 2,
    }
}

impl<'a> Engine<'a> {
    fn new(sc: &'a LifeScenario) -> Result<Self, String> {
        let start = FileTime::from_unix(sc.start_unix, 0);
        let mut slots: Vec<(usize, u16)> = Vec::new();
        let mut groups = Vec::new();
        let mut first = 0u32;
        let mut required = [0u32; 3];
        for (gi, g) in sc.groups.iter().enumerate() {
            let mut slot_of = Vec::new();
            let weights = g
                .products
                .iter()
                .map(|share| {
                    let index = crate::catalog::index_of(share.product);
                    let key = (index, share.protocol);
                    let slot = slots.iter().position(|s| *s == key).unwrap_or_else(|| {
                        slots.push(key);
                        slots.len() - 1
                    });
                    slot_of.push((index, share.protocol, slot));
                    if let Some(app) = Application::from_app_id(share.product.app_id) {
                        let r = &mut required[app_index(app)];
                        *r = (*r).max(share.product.n_policy);
                    }
                    let mut w = ProductWeight::new(index, share.weight);
                    w.protocol = Some(Version::new(share.protocol));
                    w
                })
                .collect();
            let mut spec = FleetSpec::new(g.total().max(1), weights);
            spec.vm_fraction = g.vm_fraction;
            spec.skew = g.skew.clone();
            // Distinct CMIDs per group: each group has its own CMID key.
            spec.cmid_namespace = Some(sim::mix::mix64(
                sc.seed ^ (gi as u64 + 1).wrapping_mul(sim::mix::GAMMA),
            ));
            let fleet = Fleet::new(sim::mix::mix64(sc.seed.wrapping_add(gi as u64)), spec)
                .map_err(|e| format!("[[groups]] #{}: {e}", gi + 1))?;
            let total = u32::try_from(g.total()).map_err(|_| "too many clients".to_owned())?;
            groups.push(GroupRt {
                fleet,
                first,
                total,
                slot_of,
            });
            first = first
                .checked_add(total)
                .ok_or_else(|| "too many clients".to_owned())?;
        }
        let mut hosts = Vec::new();
        let mut pools = Vec::new();
        let mut pool_at = Vec::new();
        for (hi, h) in sc.hosts.iter().enumerate() {
            let config = host_config(sc, hi);
            let model =
                HostModel::new(config, start).map_err(|e| format!("[[hosts]] #{}: {e}", hi + 1))?;
            let mut at = [None; 3];
            for app in Application::ALL {
                let n = required[app_index(app)];
                if n > 0 {
                    at[app_index(app)] = Some(pools.len());
                    pools.push(Pool {
                        host: hi,
                        host_name: h.name.clone(),
                        application: app,
                        required: n,
                        reached_at: None,
                        days_below: 0,
                        dips: Vec::new(),
                    });
                }
            }
            pool_at.push(at);
            hosts.push(HostRt {
                model,
                down: h.down.clone(),
                rate: h.service_rate,
                second: i64::MIN,
                used: 0,
            });
        }
        let end = sc.duration_secs;
        let n_hours = usize::try_from((end + 3599) / 3600).unwrap_or(0);
        let n_minutes = usize::try_from((end + 59) / 60).unwrap_or(0);
        let out = SimOutcome {
            totals: [0; 6],
            days: Vec::new(),
            hours: Vec::with_capacity(n_hours),
            minutes: vec![0; n_minutes],
            pools,
            end_states: [0; 5],
            lost_activation: 0,
            min_validity_days_left: None,
            longest_without_renewal: 0,
            hour_products: vec![0; n_hours * slots.len()],
            slots,
            clients: u64::from(first),
            state_bytes: 0,
            host_requests: vec![0; sc.hosts.len()],
            log: Vec::new(),
        };
        Ok(Self {
            sc,
            groups,
            clients: Vec::with_capacity(first as usize),
            heap: BinaryHeap::with_capacity(first as usize),
            hosts,
            start,
            end,
            out,
            pool_at,
            next_hour: 3600,
            next_day: DAY,
            logging: false,
        })
    }

    fn presence(&self, gi: usize, local: u64) -> Presence<'a> {
        Presence::of(
            &self.sc.groups[gi],
            gi,
            local,
            self.sc.seed,
            self.sc.start_unix,
        )
    }

    fn locate(&self, i: u32) -> (usize, u64) {
        let gi = self.groups.iter().rposition(|g| g.first <= i).unwrap_or(0);
        (gi, u64::from(i - self.groups[gi].first))
    }

    fn run(mut self) -> Result<SimOutcome, String> {
        let (act, renew) = self.sc.hosts.first().map_or((120, 10_080), |h| {
            (h.activation_interval_min, h.renewal_interval_min)
        });
        let phase = Stream::new(self.sc.seed, 0x5157_1000);
        for gi in 0..self.groups.len() {
            let g = &self.sc.groups[gi];
            for local in 0..u64::from(self.groups[gi].total) {
                let i = self.groups[gi].first + local as u32;
                let p = self.presence(gi, local);
                let state = if local < g.size && g.state == StartState::Activated {
                    // Steady state: the last renewal fell uniformly in the renewal interval
                    // before the start (or in `renewed_within`).
                    let within = g.renewed_within.unwrap_or(i64::from(renew) * 60);
                    let back = (phase.unit(u64::from(i)) * within as f64) as i64;
                    ClientState::activated_at(-back, act, renew)
                } else {
                    ClientState::new_machine(p.joined, act, renew)
                };
                let due = state.first_due();
                self.clients.push(state);
                if let Some(t) = p.next_on(due, self.end) {
                    self.heap.push(Reverse((t, i)));
                }
            }
        }
        self.out.state_bytes = self.clients.capacity() * size_of::<ClientState>()
            + self.heap.capacity() * size_of::<Reverse<(i64, u32)>>();
        while let Some(Reverse((t, i))) = self.heap.pop() {
            self.roll_to(t);
            let (gi, local) = self.locate(i);
            let success = self.attempt(gi, local, i, t);
            let due = self.clients[i as usize].due_after(t, success);
            if let Some(next) = self.presence(gi, local).next_on(due, self.end) {
                self.heap.push(Reverse((next, i)));
            }
        }
        self.roll_to(self.end);
        // A last partial hour or day is sampled at the end.
        if self.end % 3600 != 0 {
            let h = (self.end / 3600) as usize;
            while self.out.hours.len() <= h {
                self.out.hours.push(Row::default());
            }
            self.out.hours[h].counts = self.counts(self.end);
        }
        if self.end % DAY != 0 {
            self.sample_day(self.end);
        }
        self.finish();
        Ok(self.out)
    }

    fn attempt(&mut self, gi: usize, local: u64, i: u32, t: i64) -> bool {
        let id = self.groups[gi].fleet.client(local);
        let now = self.start.offset_secs(t);
        let client = &self.clients[i as usize];
        let state = client.state(t);
        let base = RequestBase {
            version: id.protocol,
            is_client_vm: id.is_client_vm(),
            license_status: state.license_status(),
            binding_expiration: client.binding_expiration(t),
            application_id: id.product.app_id,
            sku_id: id.product.sku_id,
            kms_counted_id: id.product.kms_id,
            client_machine_id: id.cmid,
            required_client_count: id.product.n_policy,
            request_time: id.request_time(now),
            previous_client_machine_id: Uuid::nil(),
            machine_name: id.machine_name.as_str().to_owned(),
        };
        let mut code = NO_HOST;
        let mut intervals = None;
        let mut answered = None;
        for (hi, host) in self.hosts.iter_mut().enumerate() {
            if host.down.iter().any(|&(f, to)| f <= t && t < to) {
                continue;
            }
            if let Some(rate) = host.rate {
                if host.second != t {
                    host.second = t;
                    host.used = 0;
                }
                if host.used >= rate {
                    continue; // the client times out on this host and tries the next
                }
                host.used += 1;
            }
            answered = Some(hi);
            self.out.host_requests[hi] += 1;
            match host.model.handle(&base, now) {
                Decision::Respond(r) => {
                    intervals = Some((r.base.activation_interval, r.base.renewal_interval));
                    code = if r.activated { OK } else { LOW };
                    if let Some(p) = self.pool_at[hi][app_index(r.application)] {
                        let pool = &mut self.out.pools[p];
                        if pool.reached_at.is_none() && r.base.current_count >= pool.required {
                            pool.reached_at = Some(t);
                        }
                    }
                }
                Decision::Refuse(r) => code = code_index(r.hresult()),
            }
            break;
        }
        let success = code == OK;
        if self.logging {
            self.out.log.push(LoggedAttempt {
                t,
                client: i,
                host: answered,
                code: CODES[code],
                request: base,
            });
        }
        let client = &mut self.clients[i as usize];
        if let Some(left) = client.record(t, success, intervals) {
            let m = self.out.min_validity_days_left.get_or_insert(left);
            *m = m.min(left);
        }
        self.out.totals[code] += 1;
        if let Some(m) = self.out.minutes.get_mut((t / 60) as usize) {
            *m = m.saturating_add(1);
        }
        let hour = (t / 3600) as usize;
        while self.out.hours.len() <= hour {
            self.out.hours.push(Row::default());
        }
        self.out.hours[hour].outcomes[code] += 1;
        let slots = self.out.slots.len();
        let slot = self.groups[gi]
            .slot_of
            .iter()
            .find(|&&(index, proto, _)| index == id.product_index && proto == id.protocol.major)
            .map_or(0, |s| s.2);
        if let Some(c) = self.out.hour_products.get_mut(hour * slots + slot) {
            *c += 1;
        }
        success
    }

    /// Samples every hour and day boundary up to and including `t`.
    fn roll_to(&mut self, t: i64) {
        while self.next_hour <= t && self.next_hour <= self.end {
            let h = (self.next_hour / 3600 - 1) as usize;
            while self.out.hours.len() <= h {
                self.out.hours.push(Row::default());
            }
            self.out.hours[h].counts = self.counts(self.next_hour);
            self.next_hour += 3600;
        }
        while self.next_day <= t && self.next_day <= self.end {
            self.sample_day(self.next_day);
            self.next_day += DAY;
        }
    }

    fn counts(&self, t: i64) -> Vec<u32> {
        let now = self.start.offset_secs(t);
        self.out
            .pools
            .iter()
            .map(|p| self.hosts[p.host].model.current_count(p.application, now))
            .collect()
    }

    fn scan_states(&mut self, t: i64) -> [u64; 5] {
        let mut states = [0u64; 5];
        let mut min_left: Option<f64> = None;
        for gi in 0..self.groups.len() {
            let g = &self.sc.groups[gi];
            let simple = g.joins.is_empty() && g.leaves.is_empty();
            for local in 0..u64::from(self.groups[gi].total) {
                if !simple && !self.presence(gi, local).exists(t) {
                    continue;
                }
                let c = &mut self.clients[(self.groups[gi].first as u64 + local) as usize];
                c.note_gap(t);
                let s = c.state(t);
                states[s as usize] += 1;
                if s == LicenceState::Activated {
                    if let Some(l) = c.last_success() {
                        let left = (l + super::client::VALIDITY_SECS - t) as f64 / DAY as f64;
                        min_left = Some(min_left.map_or(left, |m: f64| m.min(left)));
                    }
                } else if c.lost {
                    min_left = Some(0.0);
                }
            }
        }
        if let Some(l) = min_left {
            let m = self.out.min_validity_days_left.get_or_insert(l);
            *m = m.min(l);
        }
        states
    }

    fn sample_day(&mut self, at: i64) {
        let day = ((at - 1).max(0) / DAY) as usize;
        let counts = self.counts(at);
        let states = self.scan_states(at);
        let outcomes =
            self.out
                .hours
                .iter()
                .skip(day * 24)
                .take(24)
                .fold([0u64; 6], |mut acc, h| {
                    for (a, b) in acc.iter_mut().zip(h.outcomes) {
                        *a += b;
                    }
                    acc
                });
        for (p, &c) in self.out.pools.iter_mut().zip(&counts) {
            if c < p.required {
                p.days_below += 1;
                if p.reached_at.is_some_and(|r| r < at) {
                    match p.dips.last_mut() {
                        Some(d) if d.1 + 1 == day as i64 => d.1 = day as i64,
                        _ => p.dips.push((day as i64, day as i64)),
                    }
                }
            }
        }
        while self.out.days.len() < day {
            self.out.days.push(Row::default());
        }
        self.out.days.push(Row {
            outcomes,
            counts,
            states,
        });
    }

    fn finish(&mut self) {
        // The last partial hour and day are sampled by roll_to(end); the end states are the
        // last day's.
        if let Some(last) = self.out.days.last() {
            self.out.end_states = last.states;
        }
        self.out.lost_activation = self.clients.iter().filter(|c| c.lost).count() as u64;
        self.out.longest_without_renewal = self
            .clients
            .iter()
            .map(ClientState::longest_gap)
            .max()
            .unwrap_or(0);
        let h = self.out.minutes.len().div_ceil(60);
        while self.out.hours.len() < h {
            self.out.hours.push(Row::default());
        }
    }
}
