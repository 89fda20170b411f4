//! The Windows KMS client's licensing state machine, as far as it decides when a client
//! talks to a KMS host and what it is licensed as.
//!
//! # Rules and where they come from
//!
//! | rule | value | source |
//! |---|---|---|
//! | an activation is valid for | 180 days | Microsoft Learn, "Plan for volume activation" / "KMS activation planning": *KMS activations are valid for 180 days, the activation validity interval*; spec 10.3 |
//! | renewal | when `VLRenewalInterval` (default 10080 min = 7 days) has passed since the last success; success restarts the 180 days | same pages: *by default, KMS client computers attempt to renew their activation every seven days … after renewal the validity interval begins again*; spec 10.3, 5.3 |
//! | retry | every `VLActivationInterval` (default 120 min) while the client is not activated or its renewal failed | same pages: *if the client cannot activate, it retries every two hours*; spec 10.3 |
//! | intervals | taken from the last response received, as clients do (`slmgr /sai`, `/sri` set them on the host) | spec 5.3 (`VLActivationInterval`, `VLRenewalInterval` in every response) |
//! | initial (out-of-box) grace | 30 days from installation | Volume Activation technical reference (Windows Vista/7, kept since): *a 30-day initial grace period*; `LicenseStatus` 2 in the request (spec 5.2) |
//! | out-of-tolerance grace | 30 days from the end of validity | same reference: *out-of-tolerance grace, 30 days*; `LicenseStatus` 3 |
//! | notification | when a grace period ends unactivated | same reference; `LicenseStatus` 5 |
//! | a client that is off does nothing; a due attempt happens at the next boot | — | the licensing service runs only while Windows runs; *at boot if it passed while off* (issue 14) |
//!
//! What a client does, in one table (t = now, L = last success):
//!
//! ```text
//! state            attempt due at                               on success       on failure
//! never activated  install (first boot), then every act. int.   activated, L=t   retry after act. int.
//! activated        L + renewal interval (at boot if passed)     L = t            retry after act. int.
//! lapsed (L+180d)  every act. int. while on                     activated, L=t   retry after act. int.
//! ```
//!
//! Left out: the client's KMS host cache and DNS SRV ordering (a fixed host list is tried in
//! order, see the engine), token-based and AD-based activation, and the retail/OEM channels.

use super::spec::DAY;

/// 180 days.
pub const VALIDITY_SECS: i64 = 180 * DAY;
/// 30 days, initial and out-of-tolerance grace alike.
pub const GRACE_SECS: i64 = 30 * DAY;
/// `i32::MIN`: never succeeded.
const NEVER: i32 = i32::MIN;

/// A client's licence state at some time, as `slmgr /dli` would show it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, serde::Serialize)]
#[serde(rename_all = "snake_case")]
pub enum LicenceState {
    /// Activated (within 180 days of the last success).
    Activated,
    /// Never activated, still in the 30-day initial grace.
    Grace,
    /// Was activated, validity lapsed, within the 30-day out-of-tolerance grace.
    OutOfTolerance,
    /// Was activated, validity and out-of-tolerance grace both over.
    Notification,
    /// Never activated and the initial grace is over (notification without ever activating).
    NeverActivated,
}

impl LicenceState {
    /// All states, in column order.
    pub const ALL: [Self; 5] = [
        Self::Activated,
        Self::Grace,
        Self::OutOfTolerance,
        Self::Notification,
        Self::NeverActivated,
    ];

    /// Column name.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Activated => "activated",
            Self::Grace => "grace",
            Self::OutOfTolerance => "out_of_tolerance",
            Self::Notification => "notification",
            Self::NeverActivated => "never_activated",
        }
    }

    /// `LicenseStatus` the client sends in this state (spec 5.2).
    pub fn license_status(self) -> u32 {
        match self {
            Self::Activated => 1,
            Self::Grace => 2,
            Self::OutOfTolerance => 3,
            Self::Notification | Self::NeverActivated => 5,
        }
    }
}

/// Everything a simulated client stores: 24 bytes. Times are seconds from the start of the
/// simulation (negative: before it).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ClientState {
    /// Last successful activation or renewal, or never.
    last_success: i32,
    /// When the machine was installed (start of the initial grace).
    installed: i32,
    /// Activation interval from the last response, minutes.
    pub activation_interval_min: u32,
    /// Renewal interval from the last response, minutes.
    pub renewal_interval_min: u32,
    /// Longest time between two successes (or from the last success to now) seen so far.
    longest_gap: i32,
    /// Set once the client's validity lapsed at some point of the run.
    pub lost: bool,
}

impl ClientState {
    /// A machine installed at `installed`, never activated.
    pub fn new_machine(installed: i64, act_min: u32, renew_min: u32) -> Self {
        Self {
            last_success: NEVER,
            installed: clamp(installed),
            activation_interval_min: act_min,
            renewal_interval_min: renew_min,
            longest_gap: 0,
            lost: false,
        }
    }

    /// A machine activated at `last_success` (installed long before).
    pub fn activated_at(last_success: i64, act_min: u32, renew_min: u32) -> Self {
        Self {
            last_success: clamp(last_success),
            installed: clamp(last_success - 365 * DAY),
            activation_interval_min: act_min,
            renewal_interval_min: renew_min,
            longest_gap: 0,
            lost: false,
        }
    }

    /// The last success, if any.
    pub fn last_success(&self) -> Option<i64> {
        (self.last_success != NEVER).then_some(i64::from(self.last_success))
    }

    /// The state at `t`.
    pub fn state(&self, t: i64) -> LicenceState {
        match self.last_success() {
            Some(l) if t < l + VALIDITY_SECS => LicenceState::Activated,
            Some(l) if t < l + VALIDITY_SECS + GRACE_SECS => LicenceState::OutOfTolerance,
            Some(_) => LicenceState::Notification,
            None if t < i64::from(self.installed) + GRACE_SECS => LicenceState::Grace,
            None => LicenceState::NeverActivated,
        }
    }

    /// Minutes left in the current state at `t` (`BindingExpiration`, spec 5.2).
    pub fn binding_expiration(&self, t: i64) -> u32 {
        let end = match (self.state(t), self.last_success()) {
            (LicenceState::Activated, Some(l)) => l + VALIDITY_SECS,
            (LicenceState::OutOfTolerance, Some(l)) => l + VALIDITY_SECS + GRACE_SECS,
            (LicenceState::Grace, _) => i64::from(self.installed) + GRACE_SECS,
            _ => t,
        };
        u32::try_from((end - t).max(0) / 60).unwrap_or(u32::MAX)
    }

    /// When the next attempt is due, before power is taken into account: install time for a
    /// machine that never tried; the renewal time for an activated one whose last attempt
    /// succeeded; otherwise the retry after the activation interval.
    pub fn due_after(&self, attempt_at: i64, succeeded: bool) -> i64 {
        if succeeded {
            attempt_at + i64::from(self.renewal_interval_min) * 60
        } else {
            attempt_at + i64::from(self.activation_interval_min) * 60
        }
    }

    /// The first attempt due for a client in this state at the start.
    pub fn first_due(&self) -> i64 {
        match self.last_success() {
            Some(l) => l + i64::from(self.renewal_interval_min) * 60,
            None => i64::from(self.installed),
        }
    }

    /// Applies an attempt's result at `t`: a success restarts validity; any response (even a
    /// count too low) brings the host's intervals. Returns the validity days that were left
    /// before a success (`None` if the client was not activated).
    pub fn record(&mut self, t: i64, success: bool, intervals: Option<(u32, u32)>) -> Option<f64> {
        if let Some((act, renew)) = intervals {
            self.activation_interval_min = act;
            self.renewal_interval_min = renew;
        }
        if !success {
            return None;
        }
        let left = match self.last_success() {
            Some(l) => {
                self.note_gap(t);
                if t >= l + VALIDITY_SECS {
                    self.lost = true;
                }
                (self.state(t) == LicenceState::Activated)
                    .then(|| (l + VALIDITY_SECS - t) as f64 / DAY as f64)
            }
            None => None,
        };
        self.last_success = clamp(t);
        left
    }

    /// Records, at `t`, the time since the last success if it is the longest yet, and marks the
    /// client lost if its validity has lapsed by `t`.
    pub fn note_gap(&mut self, t: i64) {
        if let Some(l) = self.last_success() {
            self.longest_gap = self.longest_gap.max(clamp(t - l));
            if t >= l + VALIDITY_SECS {
                self.lost = true;
            }
        }
    }

    /// The longest time without a success noted so far, seconds.
    pub fn longest_gap(&self) -> i64 {
        i64::from(self.longest_gap)
    }
}

fn clamp(t: i64) -> i32 {
    t.clamp(i64::from(i32::MIN) + 1, i64::from(i32::MAX)) as i32
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn validity_grace_and_notification() {
        let mut c = ClientState::new_machine(0, 120, 10_080);
        assert_eq!(c.state(0), LicenceState::Grace);
        assert_eq!(c.state(29 * DAY), LicenceState::Grace);
        assert_eq!(c.state(30 * DAY), LicenceState::NeverActivated);
        assert_eq!(c.first_due(), 0, "a new machine tries at install");
        c.record(DAY, true, Some((120, 10_080)));
        assert_eq!(c.state(DAY + 179 * DAY), LicenceState::Activated);
        // Off for 181 days after its last success: out of tolerance.
        assert_eq!(c.state(DAY + 181 * DAY), LicenceState::OutOfTolerance);
        assert_eq!(c.state(DAY + 210 * DAY), LicenceState::Notification);
        assert_eq!(c.binding_expiration(DAY), 180 * 24 * 60);
        assert_eq!(LicenceState::OutOfTolerance.license_status(), 3);
    }

    #[test]
    fn renewal_due_after_the_renewal_interval_retry_after_the_activation_interval() {
        let c = ClientState::activated_at(-3 * DAY, 120, 10_080);
        assert_eq!(c.first_due(), 4 * DAY);
        assert_eq!(c.due_after(100, true), 100 + 7 * DAY);
        assert_eq!(c.due_after(100, false), 100 + 7200);
    }

    #[test]
    fn success_restarts_validity_and_takes_the_hosts_intervals() {
        let mut c = ClientState::activated_at(0, 120, 10_080);
        let left = c.record(7 * DAY, true, Some((60, 1440))).unwrap();
        assert!((left - 173.0).abs() < 1e-9);
        assert_eq!(
            (c.activation_interval_min, c.renewal_interval_min),
            (60, 1440)
        );
        assert_eq!(c.longest_gap(), 7 * DAY);
        assert!(!c.lost);
        // A success after the validity lapsed marks the client lost and reports no days left.
        assert_eq!(c.record(7 * DAY + 181 * DAY, true, None), None);
        assert!(c.lost);
        assert_eq!(c.state(7 * DAY + 181 * DAY), LicenceState::Activated);
    }
}
