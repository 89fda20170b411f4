//! Durations and clock offsets as scenario files write them: `"250ms"`, `"5s"`, `"2m"`,
//! `"1h"`, `"7d"`, decimals (`"1.5s"`) and compounds (`"1m30s"`); offsets may carry a sign
//! (`"-6h"`, `"+90m"`).
//!
//! A bare number without a unit is refused: in a load-test file `5` could mean seconds or
//! milliseconds, and guessing wrong silently changes the test. Sub-millisecond units are not
//! accepted either; nothing in a scenario is that fine-grained.

use std::fmt;
use std::time::Duration;

/// Why a duration string was refused. The messages are shown to users after the key name.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum DurationError {
    /// Nothing to parse.
    #[error("empty duration")]
    Empty,
    /// A number without a unit, e.g. `"5"`.
    #[error("`{0}` has no unit")]
    MissingUnit(String),
    /// A unit that is not one of `ms`, `s`, `m`, `h`, `d`.
    #[error("unknown unit `{unit}` in `{text}`")]
    UnknownUnit {
        /// The whole string.
        text: String,
        /// The unit found.
        unit: String,
    },
    /// Something that is not a number where a number must be.
    #[error("`{0}` is not a duration")]
    Malformed(String),
    /// A sign on a value that cannot be negative.
    #[error("`{0}` cannot be negative")]
    Negative(String),
    /// More than about 292 years.
    #[error("`{0}` is too large")]
    Overflow(String),
}

/// The hint shown with any [`DurationError`].
pub const DURATION_HINT: &str =
    "write a number and a unit: ms, s, m, h or d, e.g. \"250ms\", \"5s\", \"1m30s\"";

/// A signed clock offset (a simulated client's clock minus true time), in milliseconds.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Default)]
pub struct ClockOffset {
    millis: i64,
}

impl ClockOffset {
    /// No skew.
    pub const ZERO: Self = Self { millis: 0 };

    /// An offset of `millis` milliseconds (negative: the client's clock is behind).
    pub const fn from_millis(millis: i64) -> Self {
        Self { millis }
    }

    /// The offset in milliseconds.
    pub const fn as_millis(self) -> i64 {
        self.millis
    }

    /// The size of the offset, whatever its sign.
    pub const fn magnitude(self) -> Duration {
        Duration::from_millis(self.millis.unsigned_abs())
    }
}

impl fmt::Display for ClockOffset {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let sign = if self.millis < 0 { "-" } else { "+" };
        write!(f, "{sign}{}", DisplayDuration(self.magnitude()))
    }
}

/// Shows a duration the way scenario files write it (`1h30m`, `250ms`, `0s`).
#[derive(Debug, Clone, Copy)]
pub struct DisplayDuration(pub Duration);

impl fmt::Display for DisplayDuration {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let total_ms = self.0.as_millis();
        let sub_ms = self.0.subsec_nanos() % 1_000_000;
        if total_ms == 0 && sub_ms == 0 {
            return f.write_str("0s");
        }
        let mut rest = total_ms;
        for (unit, size) in [
            ("d", 86_400_000),
            ("h", 3_600_000),
            ("m", 60_000),
            ("s", 1_000),
        ] {
            if rest >= size {
                write!(f, "{}{unit}", rest / size)?;
                rest %= size;
            }
        }
        if rest > 0 {
            write!(f, "{rest}ms")?;
        }
        if sub_ms > 0 {
            write!(f, "{sub_ms}ns")?;
        }
        Ok(())
    }
}

/// Parses a non-negative duration such as `"250ms"`, `"1.5s"` or `"1m30s"`.
///
/// # Errors
/// [`DurationError`] naming what is wrong with the text.
pub fn parse_duration(text: &str) -> Result<Duration, DurationError> {
    let trimmed = text.trim();
    if trimmed.starts_with('-') {
        return Err(DurationError::Negative(text.to_owned()));
    }
    let unsigned = trimmed.strip_prefix('+').unwrap_or(trimmed);
    let nanos = parse_nanos(unsigned, text)?;
    Ok(nanos_to_duration(nanos))
}

/// Parses a signed clock offset such as `"-6h"`, `"+90m"` or `"0s"`.
///
/// # Errors
/// [`DurationError`] naming what is wrong with the text.
pub fn parse_offset(text: &str) -> Result<ClockOffset, DurationError> {
    let trimmed = text.trim();
    let (negative, unsigned) = match trimmed.strip_prefix('-') {
        Some(rest) => (true, rest),
        None => (false, trimmed.strip_prefix('+').unwrap_or(trimmed)),
    };
    let nanos = parse_nanos(unsigned, text)?;
    let millis =
        i64::try_from(nanos / 1_000_000).map_err(|_| DurationError::Overflow(text.to_owned()))?;
    Ok(ClockOffset::from_millis(if negative {
        -millis
    } else {
        millis
    }))
}

fn nanos_to_duration(nanos: u128) -> Duration {
    // `parse_nanos` caps the value at u64::MAX seconds' worth of nanoseconds, so both parts fit.
    let secs = u64::try_from(nanos / 1_000_000_000).unwrap_or(u64::MAX);
    let sub = u32::try_from(nanos % 1_000_000_000).unwrap_or(0);
    Duration::new(secs, sub)
}

/// Sums `<number><unit>` groups into nanoseconds.
fn parse_nanos(s: &str, original: &str) -> Result<u128, DurationError> {
    if s.is_empty() {
        return Err(DurationError::Empty);
    }
    // About 292 years: keeps every later conversion (to i64 milliseconds, to Duration) exact.
    const LIMIT: u128 = i64::MAX as u128;
    let malformed = || DurationError::Malformed(original.to_owned());
    let bytes = s.as_bytes();
    let mut pos = 0;
    let mut total: u128 = 0;
    while pos < bytes.len() {
        let num_start = pos;
        while pos < bytes.len() && (bytes[pos].is_ascii_digit() || bytes[pos] == b'.') {
            pos += 1;
        }
        let number = &s[num_start..pos];
        if number.is_empty() {
            return Err(malformed());
        }
        let unit_start = pos;
        while pos < bytes.len() && bytes[pos].is_ascii_alphabetic() {
            pos += 1;
        }
        let unit = &s[unit_start..pos];
        if unit.is_empty() {
            return Err(if pos == bytes.len() {
                DurationError::MissingUnit(original.to_owned())
            } else {
                malformed()
            });
        }
        let unit_nanos: u128 = match unit {
            "ms" => 1_000_000,
            "s" => 1_000_000_000,
            "m" => 60 * 1_000_000_000,
            "h" => 3_600 * 1_000_000_000,
            "d" => 86_400 * 1_000_000_000,
            _ => {
                return Err(DurationError::UnknownUnit {
                    text: original.to_owned(),
                    unit: unit.to_owned(),
                });
            }
        };
        let (int_part, frac_part) = match number.split_once('.') {
            Some((i, f)) => (i, f),
            None => (number, ""),
        };
        if int_part.is_empty() || frac_part.contains('.') || number.ends_with('.') {
            return Err(malformed());
        }
        let overflow = || DurationError::Overflow(original.to_owned());
        let int: u128 = int_part.parse().map_err(|_| overflow())?;
        let mut value = int.checked_mul(unit_nanos).ok_or_else(overflow)?;
        // Fractions: at most 9 digits count (nanoseconds); more would be noise.
        let mut scale = unit_nanos;
        for digit in frac_part.bytes().take(9) {
            scale /= 10;
            value += u128::from(digit - b'0') * scale;
        }
        total = total.checked_add(value).ok_or_else(overflow)?;
        if total > LIMIT {
            return Err(overflow());
        }
    }
    Ok(total)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_each_unit() {
        assert_eq!(parse_duration("250ms"), Ok(Duration::from_millis(250)));
        assert_eq!(parse_duration("5s"), Ok(Duration::from_secs(5)));
        assert_eq!(parse_duration("2m"), Ok(Duration::from_secs(120)));
        assert_eq!(parse_duration("1h"), Ok(Duration::from_secs(3600)));
        assert_eq!(parse_duration("7d"), Ok(Duration::from_secs(7 * 86_400)));
        assert_eq!(parse_duration("0s"), Ok(Duration::ZERO));
    }

    #[test]
    fn parses_decimals_and_compounds() {
        assert_eq!(parse_duration("1.5s"), Ok(Duration::from_millis(1500)));
        assert_eq!(parse_duration("0.25h"), Ok(Duration::from_secs(900)));
        assert_eq!(parse_duration("1m30s"), Ok(Duration::from_secs(90)));
        assert_eq!(
            parse_duration("1h2m3s4ms"),
            Ok(Duration::from_millis(3_723_004))
        );
        assert_eq!(parse_duration(" 5s "), Ok(Duration::from_secs(5)));
    }

    #[test]
    fn rejects_bad_text() {
        assert_eq!(parse_duration(""), Err(DurationError::Empty));
        assert_eq!(
            parse_duration("5"),
            Err(DurationError::MissingUnit("5".into()))
        );
        assert!(matches!(
            parse_duration("5sec"),
            Err(DurationError::UnknownUnit { .. })
        ));
        assert!(matches!(
            parse_duration("5us"),
            Err(DurationError::UnknownUnit { .. })
        ));
        assert_eq!(
            parse_duration("s"),
            Err(DurationError::Malformed("s".into()))
        );
        assert_eq!(
            parse_duration("1.s"),
            Err(DurationError::Malformed("1.s".into()))
        );
        assert_eq!(
            parse_duration(".5s"),
            Err(DurationError::Malformed(".5s".into()))
        );
        assert_eq!(
            parse_duration("1.2.3s"),
            Err(DurationError::Malformed("1.2.3s".into()))
        );
        assert_eq!(
            parse_duration("5 s"),
            Err(DurationError::Malformed("5 s".into()))
        );
        assert_eq!(
            parse_duration("-5s"),
            Err(DurationError::Negative("-5s".into()))
        );
        assert!(matches!(
            parse_duration("99999999999999999999999d"),
            Err(DurationError::Overflow(_))
        ));
        assert!(matches!(
            parse_duration("300y"),
            Err(DurationError::UnknownUnit { .. })
        ));
        assert!(matches!(
            parse_duration("110000d"),
            Err(DurationError::Overflow(_))
        ));
    }

    #[test]
    fn parses_signed_offsets() {
        assert_eq!(
            parse_offset("-6h"),
            Ok(ClockOffset::from_millis(-6 * 3_600_000))
        );
        assert_eq!(
            parse_offset("+90m"),
            Ok(ClockOffset::from_millis(90 * 60_000))
        );
        assert_eq!(parse_offset("0s"), Ok(ClockOffset::ZERO));
        assert_eq!(parse_offset("-"), Err(DurationError::Empty));
        assert_eq!(
            parse_offset("--1s"),
            Err(DurationError::Malformed("--1s".into()))
        );
    }

    #[test]
    fn displays_like_the_input_format() {
        let show = |d| DisplayDuration(d).to_string();
        assert_eq!(show(Duration::ZERO), "0s");
        assert_eq!(show(Duration::from_millis(250)), "250ms");
        assert_eq!(show(Duration::from_secs(5400)), "1h30m");
        assert_eq!(show(Duration::from_millis(90_001)), "1m30s1ms");
        assert_eq!(ClockOffset::from_millis(-21_600_000).to_string(), "-6h");
        assert_eq!(ClockOffset::from_millis(1000).to_string(), "+1s");
    }

    proptest::proptest! {
        #[test]
        fn display_round_trips(ms in 0u64..10_000_000_000) {
            let d = Duration::from_millis(ms);
            proptest::prop_assert_eq!(parse_duration(&DisplayDuration(d).to_string()), Ok(d));
        }

        #[test]
        fn never_panics(s in "\\PC{0,20}") {
            let _ = parse_duration(&s);
            let _ = parse_offset(&s);
        }
    }
}
