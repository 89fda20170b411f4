//! The host's clock: the system's UTC time, or a virtual clock tests move by days. The model
//! takes `now` as an argument; the server asks its [`Clock`] once per request.

use std::fmt;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use crate::wire::FileTime;

/// The host's clock: what "now" is for the time check, the client tables and the logs.
pub trait Clock: Send + Sync + fmt::Debug {
    /// The current host time.
    fn now(&self) -> FileTime;
}

/// The system's UTC clock.
#[derive(Debug, Clone, Copy, Default)]
pub struct SystemClock;

impl Clock for SystemClock {
    fn now(&self) -> FileTime {
        // Before 1970 only on a badly broken clock; FileTime saturates anyway.
        let since = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .unwrap_or_default();
        let secs = i64::try_from(since.as_secs()).unwrap_or(i64::MAX);
        FileTime::from_unix(secs, since.subsec_nanos())
    }
}

/// A clock that only moves when told to: tests start it anywhere and advance it by days.
/// Clones share the same time.
#[derive(Debug, Clone)]
pub struct VirtualClock(Arc<AtomicU64>);

impl VirtualClock {
    /// A clock standing at `start`.
    pub fn new(start: FileTime) -> Self {
        Self(Arc::new(AtomicU64::new(start.0)))
    }

    /// Moves the clock by `secs` (negative: back), saturating.
    pub fn advance_secs(&self, secs: i64) {
        // fetch_update with a closure that always returns Some cannot fail.
        let _ = self
            .0
            .fetch_update(Ordering::SeqCst, Ordering::SeqCst, |t| {
                Some(FileTime(t).offset_secs(secs).0)
            });
    }

    /// Moves the clock forward by `by` (whole seconds).
    pub fn advance(&self, by: Duration) {
        self.advance_secs(i64::try_from(by.as_secs()).unwrap_or(i64::MAX));
    }

    /// Sets the clock.
    pub fn set(&self, t: FileTime) {
        self.0.store(t.0, Ordering::SeqCst);
    }
}

impl Clock for VirtualClock {
    fn now(&self) -> FileTime {
        FileTime(self.0.load(Ordering::SeqCst))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn virtual_clock_moves_only_when_told() {
        let c = VirtualClock::new(FileTime::from_unix(1000, 0));
        let shared = c.clone();
        c.advance_secs(30 * 86_400);
        assert_eq!(shared.now().unix_secs(), 1000 + 30 * 86_400);
        c.advance_secs(-1000 - 30 * 86_400);
        assert_eq!(shared.now().unix_secs(), 0);
        c.advance(Duration::from_secs(5));
        assert_eq!(shared.now().unix_secs(), 5);
        c.set(FileTime(0));
        assert_eq!(shared.now(), FileTime(0));
    }

    #[test]
    fn system_clock_is_after_2024() {
        assert!(SystemClock.now().unix_secs() > 1_704_067_200);
    }
}
