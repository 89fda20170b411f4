//! The reference host's configuration: host key, counting, time check, intervals, identity.
//!
//! [`HostConfig::default`] is the host `kmsload run` starts when no target is given: host key
//! `all`, an empty (uncharged) client table, the 4-hour time check on, Windows' default
//! intervals (120 / 10080 minutes, spec 10.3), LCID 1033, the vlmcsd default HwID
//! ([`HwId::VLMCSD_DEFAULT`], spec 10.6) and protocol versions 4 to 6. Every field maps to one
//! command-line flag of `kmsload host`. The [`HwId`] type itself is the wire's.

use std::ops::RangeInclusive;

use super::{
    epid::{HostBuild, KeyDate},
    keys::{self, HostKey},
};
use crate::wire::base::MAX_PID_SIZE;
use crate::wire::kms::HwId;

/// Configuration of a [`HostModel`](super::HostModel).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HostConfig {
    /// The installed host key(s) (`--host-key NAME|all`).
    pub host_key: &'static HostKey,
    /// Also activate retail and preview KMS IDs of the key's lines (genuine hosts never do).
    pub accept_retail: bool,
    /// Narrow the host key further to exactly these KMS counted IDs (a scenario's
    /// `host_key = [...]` list); others are refused like any KMS ID the key does not cover.
    pub only_kms_ids: Option<Vec<uuid::Uuid>>,
    /// Start with each client table at its threshold (`--charged`, like vlmcsd `-E0`).
    pub charged: bool,
    /// Refuse requests whose time is off by more than [`time_tolerance_secs`]
    /// (`--no-time-check` turns it off, like vlmcsd without `-c1`).
    ///
    /// [`time_tolerance_secs`]: Self::time_tolerance_secs
    pub time_check: bool,
    /// Largest accepted |RequestTime − host clock|, seconds; 4 hours (spec 10.4).
    pub time_tolerance_secs: u32,
    /// `VLActivationInterval` sent to clients, minutes (`--activation-interval`).
    pub activation_interval: u32,
    /// `VLRenewalInterval` sent to clients, minutes (`--renewal-interval`).
    pub renewal_interval: u32,
    /// A fixed ePID for every response (`--epid`), instead of the generated ones. Any text the
    /// wire can carry (≤ 63 UTF-16 units, no NUL) is allowed, so clients can be tested
    /// against malformed ePIDs too.
    pub epid: Option<String>,
    /// The HwID of V6 responses (`--hwid`); `None` keeps the saved one or the default
    /// [`HwId::VLMCSD_DEFAULT`].
    pub hwid: Option<HwId>,
    /// Host LCID in generated ePIDs; 1033 (en-US).
    pub lcid: u32,
    /// Host OS build in generated ePIDs; `None` takes the host key's default
    /// (e.g. 26100 for Windows Server 2025, 14393 for Windows Server 2016).
    pub host_build: Option<u32>,
    /// Key activation date in generated ePIDs; `None` draws one from the seed (spec 10.5).
    pub key_activation: Option<KeyDate>,
    /// Largest `RequiredClientCount` accepted; larger gets 0x8007000D (vlmcsd: 1000). Also
    /// bounds the client tables: at most 2 × this many CMIDs per application.
    pub max_required_count: u32,
    /// Protocol major versions the host implements (spec 10.1): 4..=6 for Server 2012 R2
    /// and later, 4..=5 for Server 2012, 4..=4 for Server 2008 R2.
    pub versions: RangeInclusive<u16>,
    /// Seed for every random choice (key ids, activation dates, synthetic CMIDs).
    pub seed: u64,
}

impl Default for HostConfig {
    fn default() -> Self {
        Self {
            host_key: keys::all(),
            accept_retail: false,
            only_kms_ids: None,
            charged: false,
            time_check: true,
            time_tolerance_secs: DEFAULT_TIME_TOLERANCE_SECS,
            activation_interval: DEFAULT_ACTIVATION_INTERVAL,
            renewal_interval: DEFAULT_RENEWAL_INTERVAL,
            epid: None,
            hwid: None,
            lcid: DEFAULT_LCID,
            host_build: None,
            key_activation: None,
            max_required_count: DEFAULT_MAX_REQUIRED_COUNT,
            versions: 4..=6,
            seed: 0,
        }
    }
}

/// 4 hours (spec 10.4).
pub const DEFAULT_TIME_TOLERANCE_SECS: u32 = 4 * 3600;
/// 2 hours (spec 10.3).
pub const DEFAULT_ACTIVATION_INTERVAL: u32 = 120;
/// 7 days (spec 10.3).
pub const DEFAULT_RENEWAL_INTERVAL: u32 = 10_080;
/// en-US.
pub const DEFAULT_LCID: u32 = 1033;
/// vlmcsd's limit (spec 8.2).
pub const DEFAULT_MAX_REQUIRED_COUNT: u32 = 1000;
/// Upper bound for [`HostConfig::max_required_count`]: keeps the client tables below
/// 3 × 2 × 10 000 entries whatever the configuration.
pub const MAX_REQUIRED_COUNT_LIMIT: u32 = 10_000;

impl HostConfig {
    /// The host build generated ePIDs carry.
    ///
    /// # Errors
    /// [`ConfigError::HostBuild`] for builds without an ePID platform id.
    pub fn build(&self) -> Result<HostBuild, ConfigError> {
        let build = self
            .host_build
            .unwrap_or_else(|| self.host_key.default_build());
        HostBuild::new(build).ok_or(ConfigError::HostBuild(build))
    }

    /// Checks every field against what the wire and the model can carry.
    ///
    /// # Errors
    /// The first [`ConfigError`] found.
    pub fn validate(&self) -> Result<(), ConfigError> {
        self.build()?;
        if let Some(epid) = &self.epid {
            check_fixed_epid(epid)?;
        }
        if !(1..=99_999).contains(&self.lcid) {
            return Err(ConfigError::Lcid(self.lcid));
        }
        if self.versions.is_empty() || *self.versions.start() < 4 || *self.versions.end() > 6 {
            return Err(ConfigError::Versions {
                start: *self.versions.start(),
                end: *self.versions.end(),
            });
        }
        if !(1..=MAX_REQUIRED_COUNT_LIMIT).contains(&self.max_required_count) {
            return Err(ConfigError::MaxRequiredCount(self.max_required_count));
        }
        Ok(())
    }
}

/// Checks that a fixed ePID fits the response's `PIDSize` (spec 5.3, 7.6 check 5).
///
/// # Errors
/// [`ConfigError::Epid`].
pub fn check_fixed_epid(epid: &str) -> Result<(), ConfigError> {
    let units = epid.encode_utf16().count();
    let reason = if epid.is_empty() {
        "is empty"
    } else if epid.contains('\0') {
        "contains a NUL character"
    } else if units > MAX_PID_SIZE / 2 - 1 {
        "is longer than 63 UTF-16 units (PIDSize ≤ 128)"
    } else {
        return Ok(());
    };
    Err(ConfigError::Epid {
        epid: epid.to_owned(),
        reason,
    })
}

/// A host configuration value the model cannot use.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ConfigError {
    /// The host build has no ePID platform id (needs 6000..=99999).
    #[error(
        "host build {0} cannot carry an ePID: expected a Windows build 6000..=99999 (e.g. 6002, 7601, 9200, 9600, 14393, 17763, 20348, 26100)"
    )]
    HostBuild(u32),
    /// The fixed ePID cannot be sent.
    #[error("ePID {epid:?} {reason}")]
    Epid {
        /// The ePID given.
        epid: String,
        /// What is wrong with it.
        reason: &'static str,
    },
    /// The LCID does not fit the ePID (1..=99999).
    #[error("LCID {0} does not fit an ePID: expected 1..=99999 (e.g. 1033 en-US)")]
    Lcid(u32),
    /// The version range is empty or outside 4..=6.
    #[error("protocol versions {start}..={end}: expected a non-empty range within 4..=6")]
    Versions {
        /// First version.
        start: u16,
        /// Last version.
        end: u16,
    },
    /// The limit on `RequiredClientCount` is 0 or beyond [`MAX_REQUIRED_COUNT_LIMIT`].
    #[error("maximum RequiredClientCount {0}: expected 1..={MAX_REQUIRED_COUNT_LIMIT}")]
    MaxRequiredCount(u32),
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn default_is_valid_and_matches_the_brief() {
        let c = HostConfig::default();
        c.validate().unwrap();
        assert_eq!(c.host_key.name, "all");
        assert!(c.time_check);
        assert_eq!(c.time_tolerance_secs, 14_400);
        assert_eq!((c.activation_interval, c.renewal_interval), (120, 10_080));
        assert_eq!(c.lcid, 1033);
        assert_eq!(c.max_required_count, 1000);
        assert_eq!(c.versions, 4..=6);
        assert_eq!(c.build().unwrap().number(), 26100);
    }

    #[test]
    fn host_build_follows_the_key() {
        let c = HostConfig {
            host_key: HostKey::lookup("Windows Server 2016").unwrap(),
            ..Default::default()
        };
        assert_eq!(c.build().unwrap().number(), 14393);
        let c = HostConfig {
            host_build: Some(9600),
            ..c
        };
        assert_eq!(c.build().unwrap().number(), 9600);
    }

    #[test]
    fn rejects_bad_build() {
        let c = HostConfig {
            host_build: Some(3790),
            ..Default::default()
        };
        assert_eq!(c.validate(), Err(ConfigError::HostBuild(3790)));
    }

    #[test]
    fn rejects_bad_fixed_epid() {
        for (epid, reason) in [
            ("", "is empty"),
            ("a\0b", "contains a NUL character"),
            (
                &"x".repeat(64),
                "is longer than 63 UTF-16 units (PIDSize ≤ 128)",
            ),
        ] {
            let c = HostConfig {
                epid: Some(epid.to_owned()),
                ..Default::default()
            };
            assert_eq!(
                c.validate(),
                Err(ConfigError::Epid {
                    epid: epid.to_owned(),
                    reason
                })
            );
        }
        let c = HostConfig {
            epid: Some("x".repeat(63)),
            ..Default::default()
        };
        c.validate().unwrap();
    }

    #[test]
    fn rejects_bad_lcid_versions_and_limit() {
        let c = HostConfig {
            lcid: 0,
            ..Default::default()
        };
        assert_eq!(c.validate(), Err(ConfigError::Lcid(0)));
        let c = HostConfig {
            lcid: 100_000,
            ..Default::default()
        };
        assert_eq!(c.validate(), Err(ConfigError::Lcid(100_000)));
        for versions in [3..=6, 4..=7, RangeInclusive::new(6, 5)] {
            let c = HostConfig {
                versions: versions.clone(),
                ..Default::default()
            };
            assert!(
                matches!(c.validate(), Err(ConfigError::Versions { .. })),
                "{versions:?}"
            );
        }
        let c = HostConfig {
            max_required_count: 0,
            ..Default::default()
        };
        assert_eq!(c.validate(), Err(ConfigError::MaxRequiredCount(0)));
        let c = HostConfig {
            max_required_count: 10_001,
            ..Default::default()
        };
        assert_eq!(c.validate(), Err(ConfigError::MaxRequiredCount(10_001)));
    }
}
