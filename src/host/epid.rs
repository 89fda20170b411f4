//! The host ePID (spec 10.5): generation for the reference host, and a parser/checker for the
//! ePIDs real hosts send.
//!
//! ```text
//! PPPPP-GGGGG-KKK-KKKKKK-03-LLLL-BBBB.0000-DDDYYYY      e.g.
//! 03612-00206-568-579566-03-1063-14393.0000-2062020
//! │     │     └─ key id  │  │    │          └ activation: day of year 206, year 2020
//! │     │       568579566│  │    └ host build 14393, always followed by ".0000"
//! │     └ ePID group 206 │  └ host LCID 1063, decimal, not padded
//! └ platform id 3612     └ licence channel, always 03 (volume)
//! ```
//!
//! Platform id by host build (spec 10.5): 6002 and 7601 → 55041, 9200 → 5426, 9600 → 6401,
//! 10240 and later → 3612. The spec lists single builds; [`HostBuild`] extends each value to
//! the builds between them (6000–9199 → 55041, 9200–9599 → 5426, 9600–10239 → 6401) and
//! rejects builds before 6000, which no KMS host runs.
//!
//! Generation follows vlmcsd's `-r1` model (spec 10.5): once per host and CSVLK, a key id drawn
//! from the CSVLK's range and an activation date drawn between the later of the key's and the
//! build's release dates and one year after it (never after the host's `now`). Unlike vlmcsd the
//! LCID is not random: it is the configured one (1033 by default). Everything is a function of
//! the seed, so a host started twice with the same seed has the same ePID.
//!
//! Parsing is strict about syntax (digit counts, the `.0000`, no leading zeros in the unpadded
//! LCID and build) so that text and [`Epid`] convert both ways without loss; plausibility
//! (channel, platform id versus build, day of year, a date in the future) is reported by
//! [`Epid::issues`] as findings, not as parse errors.

use crate::wire::base::{civil_from_days, days_from_civil};
use std::{fmt, str::FromStr};

use crate::wire::FileTime;

use super::{
    keys::{Csvlk, Date, csvlks},
    rng::SplitMix64,
};

/// A host OS build number for which the ePID platform id is known (>= 6000, at most 5 digits).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct HostBuild(u32);

impl HostBuild {
    /// The build, if it can carry an ePID (6000..=99999).
    pub fn new(build: u32) -> Option<Self> {
        (6000..=99_999).contains(&build).then_some(Self(build))
    }

    /// The build number.
    pub fn number(self) -> u32 {
        self.0
    }

    /// The ePID platform id `PPPPP` for this build (spec 10.5).
    pub fn platform_id(self) -> u32 {
        platform_id(self.0).unwrap_or(PLATFORM_WIN10)
    }

    /// General availability of the server release with this build, for the builds the spec
    /// names; bounds the generated activation date from below.
    pub fn released(self) -> Option<Date> {
        let d = |year, month, day| Some(Date { year, month, day });
        match self.0 {
            6002 => d(2009, 5, 26),
            7601 => d(2011, 2, 22),
            9200 => d(2012, 9, 4),
            9600 => d(2013, 10, 17),
            14393 => d(2016, 10, 12),
            17763 => d(2018, 10, 2),
            20348 => d(2021, 8, 18),
            26100 => d(2024, 11, 1),
            _ => None,
        }
    }
}

impl fmt::Display for HostBuild {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.0)
    }
}

const PLATFORM_WIN10: u32 = 3612;

/// The ePID platform id for a host build, `None` before 6000 (spec 10.5, extended to ranges).
pub fn platform_id(build: u32) -> Option<u32> {
    match build {
        0..=5999 => None,
        6000..=9199 => Some(55041),
        9200..=9599 => Some(5426),
        9600..=10239 => Some(6401),
        _ => Some(PLATFORM_WIN10),
    }
}

/// The date a host key was activated: day of year (1..=366) and year, the ePID's `DDDYYYY`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct KeyDate {
    year: u16,
    day_of_year: u16,
}

impl KeyDate {
    /// The date with this day of the year, if it exists (years 1601..=9999).
    pub fn new(day_of_year: u16, year: u16) -> Option<Self> {
        ((1601..=9999).contains(&year) && (1..=days_in_year(year)).contains(&day_of_year))
            .then_some(Self { year, day_of_year })
    }

    /// The date from a calendar date, if it exists.
    pub fn from_ymd(year: u16, month: u8, day: u8) -> Option<Self> {
        let valid = (1..=12).contains(&month) && day >= 1 && day <= days_in_month(year, month);
        if !valid {
            return None;
        }
        let doy = days_from_civil(year, month, day) - days_from_civil(year, 1, 1) + 1;
        Self::new(u16::try_from(doy).ok()?, year)
    }

    /// The UTC day `time` falls on (clamped to the years this type holds).
    pub fn from_filetime(time: FileTime) -> Self {
        let days = time.unix_secs().div_euclid(86_400);
        Self::from_unix_days(days)
    }

    fn from_unix_days(days: i64) -> Self {
        let (year, month, day) = civil_from_days(days);
        let clamped = if year < 1601 {
            (1601, 1, 1)
        } else if year > 9999 {
            (9999, 12, 31)
        } else {
            // In range by the branches above.
            (year as u16, month, day)
        };
        let (y, m, d) = clamped;
        let doy = days_from_civil(y, m, d) - days_from_civil(y, 1, 1) + 1;
        // 1..=366 by construction of a valid date.
        Self {
            year: y,
            day_of_year: doy as u16,
        }
    }

    fn to_unix_days(self) -> i64 {
        days_from_civil(self.year, 1, 1) + i64::from(self.day_of_year) - 1
    }

    fn add_days(self, days: i64) -> Self {
        Self::from_unix_days(self.to_unix_days() + days)
    }

    /// From a release [`Date`]; `None` if it is not a real date.
    pub fn from_date(date: Date) -> Option<Self> {
        Self::from_ymd(date.year, date.month, date.day)
    }

    /// Day of the year, 1..=366.
    pub fn day_of_year(self) -> u16 {
        self.day_of_year
    }

    /// The year.
    pub fn year(self) -> u16 {
        self.year
    }

    /// Calendar month and day.
    pub fn month_day(self) -> (u8, u8) {
        let (_, m, d) = civil_from_days(self.to_unix_days());
        (m, d)
    }
}

/// `YYYY-MM-DD`.
impl fmt::Display for KeyDate {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let (m, d) = self.month_day();
        write!(f, "{:04}-{m:02}-{d:02}", self.year)
    }
}

/// `YYYY-MM-DD` or the ePID form `DDDYYYY`.
impl FromStr for KeyDate {
    type Err = KeyDateError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let err = || KeyDateError(s.to_owned());
        let s = s.trim();
        if s.len() == 7 && s.bytes().all(|b| b.is_ascii_digit()) {
            let day = s[..3].parse().map_err(|_| err())?;
            let year = s[3..].parse().map_err(|_| err())?;
            return Self::new(day, year).ok_or_else(err);
        }
        let mut parts = s.splitn(3, '-');
        let mut next = |len: usize| {
            parts
                .next()
                .filter(|p| p.len() == len && p.bytes().all(|b| b.is_ascii_digit()))
                .and_then(|p| p.parse::<u16>().ok())
        };
        let (Some(y), Some(m), Some(d)) = (next(4), next(2), next(2)) else {
            return Err(err());
        };
        Self::from_ymd(
            y,
            u8::try_from(m).map_err(|_| err())?,
            u8::try_from(d).map_err(|_| err())?,
        )
        .ok_or_else(err)
    }
}

/// A key activation date that is neither `YYYY-MM-DD` nor `DDDYYYY`, or does not exist.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("invalid key activation date {0:?}: expected YYYY-MM-DD or DDDYYYY (day of year 001-366)")]
pub struct KeyDateError(pub String);

fn is_leap(year: u16) -> bool {
    (year.is_multiple_of(4) && !year.is_multiple_of(100)) || year.is_multiple_of(400)
}

fn days_in_year(year: u16) -> u16 {
    if is_leap(year) { 366 } else { 365 }
}

fn days_in_month(year: u16, month: u8) -> u8 {
    match month {
        2 if is_leap(year) => 29,
        2 => 28,
        4 | 6 | 9 | 11 => 30,
        _ => 31,
    }
}

/// A parsed ePID (spec 10.5). Fields hold what the text says, plausible or not.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Epid {
    /// `PPPPP`: platform id of the host OS.
    pub platform_id: u32,
    /// `GGGGG`: ePID group of the host key.
    pub group_id: u32,
    /// `KKK-KKKKKK` as one number (0..=999_999_999).
    pub key_id: u32,
    /// The licence channel digits, 3 (`03`) for volume.
    pub channel: u8,
    /// `LLLL`: host LCID.
    pub lcid: u32,
    /// `BBBB`: host OS build.
    pub build: u32,
    /// `DDD`: day of the year the key was activated (as sent; 001..=366 when plausible).
    pub day_of_year: u16,
    /// `YYYY`: year the key was activated.
    pub year: u16,
}

/// Why a string is not an ePID of the spec 10.5 format.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum EpidError {
    /// Not 8 dash-separated parts.
    #[error(
        "ePID has {found} dash-separated parts, expected 8 \
         (PPPPP-GGGGG-KKK-KKKKKK-03-LLLL-BBBB.0000-DDDYYYY)"
    )]
    PartCount {
        /// How many parts the text had.
        found: usize,
    },
    /// One part has the wrong form.
    #[error("ePID {field} is {text:?}, expected {expected}")]
    Field {
        /// Which part (`platform id`, `group id`, …).
        field: &'static str,
        /// The part as sent.
        text: String,
        /// What the format requires.
        expected: &'static str,
    },
}

impl Epid {
    /// Parses an ePID in the spec 10.5 format.
    ///
    /// # Errors
    /// [`EpidError`] naming the part that does not match the format.
    pub fn parse(text: &str) -> Result<Self, EpidError> {
        let parts: Vec<&str> = text.split('-').collect();
        let [p, g, k1, k2, ch, l, b, d] = parts[..] else {
            return Err(EpidError::PartCount { found: parts.len() });
        };
        let Some((build, suffix)) = b.split_once('.') else {
            return Err(field("build", b, "BBBB.0000"));
        };
        if suffix != "0000" {
            return Err(field("build", b, "BBBB.0000"));
        }
        let key_hi = fixed(k1, 3, "key id (first part)")?;
        let key_lo = fixed(k2, 6, "key id (second part)")?;
        let date = fixed(d, 7, "activation date")?;
        Ok(Self {
            platform_id: fixed(p, 5, "platform id")?,
            group_id: fixed(g, 5, "group id")?,
            key_id: key_hi * 1_000_000 + key_lo,
            channel: fixed(ch, 2, "channel")? as u8, // two digits: at most 99
            lcid: unpadded(l, "LCID")?,
            build: unpadded(build, "build")?,
            day_of_year: (date / 10_000) as u16, // three digits
            year: (date % 10_000) as u16,        // four digits
        })
    }

    /// Generates the ePID of one CSVLK on the reference host: platform id from `build`, the
    /// CSVLK's group, a key id drawn from its range with `seed`, channel 03, `lcid`, `build`
    /// and `activation`.
    pub fn generate(
        csvlk: &Csvlk,
        build: HostBuild,
        lcid: u32,
        activation: KeyDate,
        seed: u64,
    ) -> Self {
        let mut rng = SplitMix64::new(seed, csvlk.name);
        let span = u64::from(csvlk.max_key_id - csvlk.min_key_id) + 1;
        // below(span) < span <= 10^9, so the sum stays within max_key_id.
        let key_id = csvlk.min_key_id + rng.below(span) as u32;
        Self {
            platform_id: build.platform_id(),
            group_id: csvlk.group_id,
            key_id,
            channel: 3,
            lcid,
            build: build.number(),
            day_of_year: activation.day_of_year(),
            year: activation.year(),
        }
    }

    /// The activation date, if `DDDYYYY` names a real day.
    pub fn activation_date(&self) -> Option<KeyDate> {
        KeyDate::new(self.day_of_year, self.year)
    }

    /// The known CSVLK whose group and key range contain this ePID's key, if any.
    pub fn csvlk(&self) -> Option<&'static Csvlk> {
        csvlks()
            .iter()
            .copied()
            .find(|c| c.group_id == self.group_id && c.contains_key_id(self.key_id))
    }

    /// Findings about a syntactically valid ePID that a genuine host would not send.
    /// `now` (the checker's clock) enables the "activated in the future" finding.
    pub fn issues(&self, now: Option<FileTime>) -> Vec<EpidIssue> {
        let mut out = Vec::new();
        if self.channel != 3 {
            out.push(EpidIssue::ChannelNotVolume {
                channel: self.channel,
            });
        }
        let expected = platform_id(self.build);
        if expected != Some(self.platform_id) {
            out.push(EpidIssue::PlatformMismatch {
                platform_id: self.platform_id,
                build: self.build,
                expected,
            });
        }
        if self.lcid == 0 {
            out.push(EpidIssue::ZeroLcid);
        }
        match self.activation_date() {
            None => out.push(EpidIssue::InvalidActivationDate {
                day_of_year: self.day_of_year,
                year: self.year,
            }),
            Some(date) => {
                if let Some(today) = now.map(KeyDate::from_filetime)
                    && date > today
                {
                    out.push(EpidIssue::ActivatedInFuture { date, today });
                }
            }
        }
        if !KNOWN_GROUPS.contains(&self.group_id) {
            out.push(EpidIssue::UnknownGroup {
                group_id: self.group_id,
            });
        }
        out
    }
}

/// ePID groups named by spec 10.5 and 10.7.
const KNOWN_GROUPS: [u32; 10] = [206, 96, 3858, 152, 168, 172, 142, 154, 4573, 4918];

fn field(field: &'static str, text: &str, expected: &'static str) -> EpidError {
    EpidError::Field {
        field,
        text: text.to_owned(),
        expected,
    }
}

fn fixed(text: &str, len: usize, name: &'static str) -> Result<u32, EpidError> {
    const EXPECTED: [&str; 8] = [
        "", "1 digit", "2 digits", "3 digits", "4 digits", "5 digits", "6 digits", "7 digits",
    ];
    let ok = text.len() == len && text.bytes().all(|b| b.is_ascii_digit());
    match (ok, text.parse()) {
        (true, Ok(v)) => Ok(v),
        _ => Err(field(name, text, EXPECTED[len.min(7)])),
    }
}

fn unpadded(text: &str, name: &'static str) -> Result<u32, EpidError> {
    let ok = (1..=5).contains(&text.len())
        && text.bytes().all(|b| b.is_ascii_digit())
        && (text == "0" || !text.starts_with('0'));
    match (ok, text.parse()) {
        (true, Ok(v)) => Ok(v),
        _ => Err(field(name, text, "1 to 5 digits without leading zeros")),
    }
}

impl fmt::Display for Epid {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{:05}-{:05}-{:03}-{:06}-{:02}-{}-{}.0000-{:03}{:04}",
            self.platform_id,
            self.group_id,
            self.key_id / 1_000_000,
            self.key_id % 1_000_000,
            self.channel,
            self.lcid,
            self.build,
            self.day_of_year,
            self.year
        )
    }
}

impl FromStr for Epid {
    type Err = EpidError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Self::parse(s)
    }
}

/// Something a genuine host would not put in its ePID.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum EpidIssue {
    /// The channel is not `03` (volume).
    ChannelNotVolume {
        /// The channel sent.
        channel: u8,
    },
    /// The platform id does not belong to the build (`expected` is `None` for builds before
    /// 6000, which have no KMS platform id).
    PlatformMismatch {
        /// `PPPPP` as sent.
        platform_id: u32,
        /// `BBBB` as sent.
        build: u32,
        /// What spec 10.5 gives for that build.
        expected: Option<u32>,
    },
    /// LCID 0.
    ZeroLcid,
    /// `DDDYYYY` is not a day that exists.
    InvalidActivationDate {
        /// `DDD` as sent.
        day_of_year: u16,
        /// `YYYY` as sent.
        year: u16,
    },
    /// The key was activated after the checker's today.
    ActivatedInFuture {
        /// The activation date.
        date: KeyDate,
        /// The checker's date.
        today: KeyDate,
    },
    /// The group id is none of those spec 10.5/10.7 name.
    UnknownGroup {
        /// `GGGGG` as sent.
        group_id: u32,
    },
}

impl fmt::Display for EpidIssue {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::ChannelNotVolume { channel } => {
                write!(f, "licence channel {channel:02}, volume hosts send 03")
            }
            Self::PlatformMismatch {
                platform_id,
                build,
                expected: Some(e),
            } => {
                write!(
                    f,
                    "platform id {platform_id:05} does not match build {build} ({e:05})"
                )
            }
            Self::PlatformMismatch {
                platform_id,
                build,
                expected: None,
            } => {
                write!(
                    f,
                    "build {build} (platform id {platform_id:05}) cannot run a KMS host"
                )
            }
            Self::ZeroLcid => f.write_str("LCID 0"),
            Self::InvalidActivationDate { day_of_year, year } => {
                write!(
                    f,
                    "activation date {day_of_year:03}{year:04} is not a real day"
                )
            }
            Self::ActivatedInFuture { date, today } => {
                write!(f, "key activated on {date}, after today ({today})")
            }
            Self::UnknownGroup { group_id } => write!(f, "unknown ePID group {group_id}"),
        }
    }
}

/// The default activation date of a CSVLK on a host (see the module docs): drawn with `seed`
/// from the year after the later of the key's and the build's release, never after `now`.
pub fn default_activation(csvlk: &Csvlk, build: HostBuild, seed: u64, now: FileTime) -> KeyDate {
    let key = KeyDate::from_date(csvlk.released);
    let os = build.released().and_then(KeyDate::from_date);
    let lower = key.max(os).unwrap_or_else(|| KeyDate::from_filetime(now));
    let today = KeyDate::from_filetime(now);
    let upper = lower.add_days(365).min(today).max(lower);
    let span = (upper.to_unix_days() - lower.to_unix_days()) as u64 + 1;
    let mut rng = SplitMix64::new(seed, &format!("{}/activation", csvlk.name));
    lower.add_days(rng.below(span) as i64)
}

#[cfg(test)]
mod tests {
    use proptest::prelude::*;

    use super::*;
    use crate::host::keys::{OFFICE2010, WS2016, WS2019, WS2025};

    fn days_from_civil_i64(year: i64, month: u8, day: u8) -> i64 {
        days_from_civil(u16::try_from(year).unwrap(), month, day)
    }

    const EXAMPLE: &str = "03612-00206-568-579566-03-1063-14393.0000-2062020";

    #[test]
    fn parses_spec_example() {
        let e = Epid::parse(EXAMPLE).unwrap();
        assert_eq!(
            e,
            Epid {
                platform_id: 3612,
                group_id: 206,
                key_id: 568_579_566,
                channel: 3,
                lcid: 1063,
                build: 14393,
                day_of_year: 206,
                year: 2020,
            }
        );
        assert_eq!(e.to_string(), EXAMPLE);
        assert_eq!(e.activation_date().unwrap().to_string(), "2020-07-24");
        assert_eq!(e.csvlk(), Some(&WS2019));
        assert!(
            e.issues(Some(FileTime::from_unix(1_795_310_781, 0)))
                .is_empty()
        );
    }

    #[test]
    fn parses_every_epid_in_the_vectors() {
        // ePIDs seen in tests/data: vlmcsd (Windows, Office 2010, 2019) and py-kms.
        for text in [
            "03612-00096-211-338414-03-1032-17763.0000-2232023",
            "03612-00206-559-265458-03-16394-14393.0000-0732023",
            "06401-00206-672-651913-03-1040-9600.0000-0862025",
            "55041-00206-565-844005-03-5179-6002.0000-0052020",
            "03612-00206-667-363103-03-18442-14393.0000-1372021",
        ] {
            let e = Epid::parse(text).unwrap();
            assert_eq!(e.to_string(), text);
            assert!(e.issues(None).is_empty(), "{text}: {:?}", e.issues(None));
        }
    }

    #[test]
    fn rejects_wrong_part_count() {
        assert_eq!(Epid::parse(""), Err(EpidError::PartCount { found: 1 }));
        assert_eq!(
            Epid::parse("03612-00206-568-579566-03-1063-14393.0000"),
            Err(EpidError::PartCount { found: 7 })
        );
        assert!(matches!(
            Epid::parse(&format!("{EXAMPLE}-1")),
            Err(EpidError::PartCount { found: 9 })
        ));
    }

    #[test]
    fn rejects_each_malformed_field() {
        let cases = [
            (
                "3612-00206-568-579566-03-1063-14393.0000-2062020",
                "platform id",
            ),
            (
                "03612-0206x-568-579566-03-1063-14393.0000-2062020",
                "group id",
            ),
            (
                "03612-00206-56-579566-03-1063-14393.0000-2062020",
                "key id (first part)",
            ),
            (
                "03612-00206-568-57956-03-1063-14393.0000-2062020",
                "key id (second part)",
            ),
            (
                "03612-00206-568-579566-3-1063-14393.0000-2062020",
                "channel",
            ),
            ("03612-00206-568-579566-03-01063-14393.0000-2062020", "LCID"),
            (
                "03612-00206-568-579566-03-106300-14393.0000-2062020",
                "LCID",
            ),
            ("03612-00206-568-579566-03--14393.0000-2062020", "LCID"),
            ("03612-00206-568-579566-03-1063-14393-2062020", "build"),
            ("03612-00206-568-579566-03-1063-14393.0001-2062020", "build"),
            ("03612-00206-568-579566-03-1063-.0000-2062020", "build"),
            (
                "03612-00206-568-579566-03-1063-14393.0000-206202",
                "activation date",
            ),
            (
                "03612-00206-568-579566-03-1063-14393.0000-2062020 ",
                "activation date",
            ),
            (
                "+3612-00206-568-579566-03-1063-14393.0000-2062020",
                "platform id",
            ),
        ];
        for (text, which) in cases {
            match Epid::parse(text) {
                Err(EpidError::Field { field, .. }) => assert_eq!(field, which, "{text}"),
                other => panic!("{text}: {other:?}"),
            }
        }
    }

    #[test]
    fn issues_are_reported() {
        let mut e = Epid::parse(EXAMPLE).unwrap();
        e.channel = 2;
        e.platform_id = 6401;
        e.lcid = 0;
        e.day_of_year = 366; // 2021 is not a leap year
        e.year = 2021;
        e.group_id = 12345;
        let issues = e.issues(None);
        assert_eq!(issues.len(), 5, "{issues:?}");
        assert!(issues.contains(&EpidIssue::ChannelNotVolume { channel: 2 }));
        assert!(issues.contains(&EpidIssue::PlatformMismatch {
            platform_id: 6401,
            build: 14393,
            expected: Some(3612)
        }));
        assert!(issues.iter().all(|i| !i.to_string().is_empty()));

        let e = Epid::parse("03612-00206-568-579566-03-1063-14393.0000-0012030").unwrap();
        let now = FileTime::from_unix(1_795_310_781, 0); // 2026-11-22
        assert!(matches!(
            e.issues(Some(now))[..],
            [EpidIssue::ActivatedInFuture { .. }]
        ));
        let e = Epid::parse("03612-00206-568-579566-03-1063-5600.0000-0012020").unwrap();
        assert!(matches!(
            e.issues(None)[..],
            [EpidIssue::PlatformMismatch { expected: None, .. }]
        ));
    }

    #[test]
    fn platform_ids_follow_spec_10_5() {
        assert_eq!(platform_id(6002), Some(55041));
        assert_eq!(platform_id(7601), Some(55041));
        assert_eq!(platform_id(9200), Some(5426));
        assert_eq!(platform_id(9600), Some(6401));
        for b in [10240, 14393, 17763, 20348, 26100] {
            assert_eq!(platform_id(b), Some(3612));
        }
        assert_eq!(platform_id(5999), None);
        assert!(HostBuild::new(5999).is_none());
        assert!(HostBuild::new(100_000).is_none());
        assert_eq!(HostBuild::new(9600).unwrap().platform_id(), 6401);
    }

    #[test]
    fn generate_is_deterministic_and_in_range() {
        let build = HostBuild::new(17763).unwrap();
        let date = KeyDate::from_ymd(2019, 4, 24).unwrap();
        let a = Epid::generate(&WS2019, build, 1033, date, 42);
        assert_eq!(a, Epid::generate(&WS2019, build, 1033, date, 42));
        assert_ne!(
            a.key_id,
            Epid::generate(&WS2019, build, 1033, date, 43).key_id
        );
        assert!(WS2019.contains_key_id(a.key_id));
        assert_eq!(a.to_string()[..12], *"03612-00206-");
        assert!(
            a.to_string().ends_with("-03-1033-17763.0000-1142019"),
            "{a}"
        );
        assert_eq!(Epid::parse(&a.to_string()), Ok(a));
        assert_eq!(a.csvlk(), Some(&WS2019));

        let o = Epid::generate(&OFFICE2010, HostBuild::new(7601).unwrap(), 1033, date, 1);
        assert!(o.to_string().starts_with("55041-00096-"), "{o}");
    }

    #[test]
    fn default_activation_is_between_release_and_now() {
        let now = FileTime::from_unix(1_795_310_781, 0); // 2026-11-22
        for seed in 0..200 {
            let d = default_activation(&WS2016, HostBuild::new(14393).unwrap(), seed, now);
            assert!(d >= KeyDate::from_ymd(2016, 10, 12).unwrap(), "{d}");
            assert!(d <= KeyDate::from_ymd(2017, 10, 12).unwrap(), "{d}");
        }
        // A key released days before `now` cannot be activated after `now`.
        let early = FileTime::from_unix(1_731_000_000, 0); // 2024-11-07
        for seed in 0..50 {
            let d = default_activation(&WS2025, HostBuild::new(26100).unwrap(), seed, early);
            assert!(d <= KeyDate::from_filetime(early), "{d}");
            assert!(d >= KeyDate::from_ymd(2024, 11, 1).unwrap(), "{d}");
        }
        // A clock before the release gives the release day.
        let d = default_activation(&WS2025, HostBuild::new(26100).unwrap(), 3, FileTime(0));
        assert_eq!(d, KeyDate::from_ymd(2024, 11, 1).unwrap());
    }

    #[test]
    fn key_date_parsing_and_calendar() {
        assert_eq!(
            "2020-07-24".parse::<KeyDate>().unwrap(),
            KeyDate::new(206, 2020).unwrap()
        );
        assert_eq!(
            "2062020".parse::<KeyDate>().unwrap(),
            KeyDate::new(206, 2020).unwrap()
        );
        assert_eq!(KeyDate::from_ymd(2024, 12, 31).unwrap().day_of_year(), 366);
        assert_eq!(KeyDate::from_ymd(2023, 12, 31).unwrap().day_of_year(), 365);
        assert_eq!(KeyDate::from_ymd(2000, 3, 1).unwrap().day_of_year(), 61);
        assert!(KeyDate::from_ymd(2023, 2, 29).is_none());
        assert!(KeyDate::from_ymd(1900, 2, 29).is_none());
        assert!(KeyDate::new(0, 2020).is_none());
        assert!(KeyDate::new(366, 2023).is_none());
        for bad in [
            "2020-13-01",
            "3662023",
            "20-07-24",
            "2020-7-24",
            "",
            "2020-07-24x",
        ] {
            assert!(bad.parse::<KeyDate>().is_err(), "{bad}");
        }
        assert_eq!(
            KeyDate::from_filetime(FileTime::from_unix(0, 0)).to_string(),
            "1970-01-01"
        );
        assert_eq!(
            KeyDate::from_filetime(FileTime(0)).to_string(),
            "1601-01-01"
        );
        assert_eq!(
            KeyDate::from_filetime(FileTime::from_unix(1_795_310_781, 0)).to_string(),
            "2026-11-22"
        );
        assert_eq!(days_from_civil_i64(1970, 1, 1), 0);
    }

    proptest! {
        #[test]
        fn epid_text_round_trip(
            platform_id in 0u32..=99_999, group_id in 0u32..=99_999, key_id in 0u32..=999_999_999,
            channel in 0u8..=99, lcid in 0u32..=99_999, build in 0u32..=99_999,
            day_of_year in 0u16..=999, year in 0u16..=9999,
        ) {
            let e = Epid { platform_id, group_id, key_id, channel, lcid, build, day_of_year, year };
            prop_assert_eq!(Epid::parse(&e.to_string()), Ok(e));
        }

        #[test]
        fn epid_parse_never_panics(s in "\\PC{0,80}") {
            let _ = Epid::parse(&s);
        }

        #[test]
        fn calendar_round_trip(days in -134_774i64..=2_932_896) {
            let (y, m, d) = civil_from_days(days);
            prop_assert_eq!(days_from_civil_i64(y, m, d), days);
            let k = KeyDate::from_unix_days(days);
            prop_assert_eq!(k.to_unix_days(), days);
        }
    }
}
