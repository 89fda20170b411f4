//! Workstation names: what a synthetic client puts in the request's `MachineName` field
//! (spec 5.2: 64 UTF-16 units with a terminating NUL, so at most 63 characters).
//!
//! Names are ASCII, built into a fixed inline buffer ([`MachineName`]), so computing a
//! client's identity allocates nothing. Two styles:
//!
//! ```text
//! Hashed       WS-7KQ2M9XDAB            "WS-" + 10 Crockford base32 digits of a 50-bit hash
//! Department   FIN-LT-004217            department, device kind, client index + 1 (>= 6 digits)
//!              kind: VM (virtual), SRV (Windows Server edition), LT or DT (laptop / desktop)
//! either, with a domain:   WS-7KQ2M9XDAB.corp.example.com
//! ```
//!
//! Hashed names collide with probability about `clients^2 / 2^51` (4e-4 for a million
//! clients); department names are unique within a fleet because they carry the index. The KMS
//! host does not count by name, so a collision changes nothing but a log line.

use std::fmt;

use crate::wire::base::MACHINE_NAME_MAX_UNITS;

/// How synthetic workstation names look.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub enum NameStyle {
    /// `WS-` and 10 base32 digits of a hash, e.g. `WS-7KQ2M9XDAB`.
    #[default]
    Hashed,
    /// Department, device kind and number, e.g. `FIN-LT-004217`.
    Department,
}

/// Longest host part a name can have before the domain: `DEPT-SRV-` plus 14 digits (indices
/// below 10^14). Longer indices are cut at [`MACHINE_NAME_MAX_UNITS`].
pub const HOST_PART_MAX: usize = 22;
/// Longest domain accepted, so that every name with its domain fits the 63 characters.
pub const DOMAIN_MAX: usize = MACHINE_NAME_MAX_UNITS - 1 - HOST_PART_MAX;

const CROCKFORD: &[u8; 32] = b"0123456789ABCDEFGHJKMNPQRSTVWXYZ";
const DEPARTMENTS: [&str; 16] = [
    "ACC", "ADM", "ENG", "FIN", "HR", "IT", "LAB", "LEG", "MKT", "OPS", "PRD", "QA", "RND", "SAL",
    "SUP", "WHS",
];

/// A machine name of at most 63 ASCII characters, stored inline (no allocation).
#[derive(Clone, Copy, PartialEq, Eq, Hash)]
pub struct MachineName {
    buf: [u8; MACHINE_NAME_MAX_UNITS],
    len: u8,
}

impl MachineName {
    /// The name as a string slice.
    pub fn as_str(&self) -> &str {
        // Only ASCII is ever written (generated characters and a domain checked by
        // `check_domain`), so the slice is always valid UTF-8; "" is unreachable.
        std::str::from_utf8(&self.buf[..usize::from(self.len)]).unwrap_or("")
    }

    /// Length in bytes (= characters = UTF-16 units: the name is ASCII).
    pub fn len(&self) -> usize {
        usize::from(self.len)
    }

    /// True for the empty name (never produced by a fleet).
    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    fn empty() -> Self {
        Self {
            buf: [0; MACHINE_NAME_MAX_UNITS],
            len: 0,
        }
    }

    /// Appends ASCII bytes, silently cutting at the 63-character limit.
    fn push(&mut self, bytes: &[u8]) {
        let at = usize::from(self.len);
        let n = bytes.len().min(MACHINE_NAME_MAX_UNITS - at);
        self.buf[at..at + n].copy_from_slice(&bytes[..n]);
        // `at + n <= 63`, so it fits a u8.
        self.len = (at + n) as u8;
    }

    fn push_decimal(&mut self, mut v: u64, min_digits: usize) {
        let mut digits = [b'0'; 20];
        let mut i = digits.len();
        while v > 0 || digits.len() - i < min_digits.min(20) {
            i -= 1;
            digits[i] = b'0' + (v % 10) as u8;
            v /= 10;
        }
        self.push(&digits[i..]);
    }
}

impl fmt::Display for MachineName {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl fmt::Debug for MachineName {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Debug::fmt(self.as_str(), f)
    }
}

/// What the name of one client depends on.
pub(super) struct NameInput<'a> {
    pub(super) style: NameStyle,
    pub(super) hash: u64,
    pub(super) index: u64,
    pub(super) is_vm: bool,
    pub(super) is_server: bool,
    pub(super) domain: Option<&'a str>,
}

pub(super) fn machine_name(input: &NameInput<'_>) -> MachineName {
    let mut name = MachineName::empty();
    match input.style {
        NameStyle::Hashed => {
            name.push(b"WS-");
            let mut digits = [0u8; 10];
            for (i, d) in digits.iter_mut().enumerate() {
                *d = CROCKFORD[((input.hash >> (5 * i)) & 31) as usize];
            }
            name.push(&digits);
        }
        NameStyle::Department => {
            name.push(DEPARTMENTS[(input.hash & 15) as usize].as_bytes());
            let kind: &[u8] = match (input.is_vm, input.is_server, input.hash >> 63) {
                (true, _, _) => b"-VM-",
                (false, true, _) => b"-SRV-",
                (false, false, 0) => b"-DT-",
                (false, false, _) => b"-LT-",
            };
            name.push(kind);
            name.push_decimal(input.index.saturating_add(1), 6);
        }
    }
    if let Some(domain) = input.domain {
        name.push(b".");
        name.push(domain.as_bytes());
    }
    name
}

/// Why a domain was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum DomainError {
    /// Longer than [`DOMAIN_MAX`] characters.
    #[error("domain is {len} characters; at most {DOMAIN_MAX} fit beside a workstation name")]
    TooLong {
        /// Length of the domain given.
        len: usize,
    },
    /// A label is empty, longer than 63, or has a character outside `A-Z a-z 0-9 -`, or
    /// starts or ends with `-`.
    #[error("domain label {label:?} is not a DNS host label (letters, digits, inner hyphens)")]
    BadLabel {
        /// The offending label.
        label: String,
    },
}

/// Checks that `domain` is a DNS name of LDH labels that fits beside any host part.
pub fn check_domain(domain: &str) -> Result<(), DomainError> {
    if domain.len() > DOMAIN_MAX {
        return Err(DomainError::TooLong { len: domain.len() });
    }
    for label in domain.split('.') {
        let ok = !label.is_empty()
            && label.len() <= 63
            && label
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b == b'-')
            && !label.starts_with('-')
            && !label.ends_with('-');
        if !ok {
            return Err(DomainError::BadLabel {
                label: label.to_owned(),
            });
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn input(style: NameStyle, hash: u64, index: u64) -> NameInput<'static> {
        NameInput {
            style,
            hash,
            index,
            is_vm: false,
            is_server: false,
            domain: None,
        }
    }

    #[test]
    fn hashed_names_are_ws_and_ten_base32_digits() {
        let n = machine_name(&input(NameStyle::Hashed, 0, 0));
        assert_eq!(n.as_str(), "WS-0000000000");
        let n = machine_name(&input(NameStyle::Hashed, 0x3FF_FFFF_FFFF_FFFF, 0));
        assert_eq!(n.as_str(), "WS-ZZZZZZZZZZ");
        // Digit i is bits 5i..5i+5: hash 1 sets the first digit only.
        assert_eq!(
            machine_name(&input(NameStyle::Hashed, 1, 0)).as_str(),
            "WS-1000000000"
        );
        assert_eq!(n.len(), 13);
    }

    #[test]
    fn department_names_carry_kind_and_index() {
        let mut i = input(NameStyle::Department, 3, 4216);
        assert_eq!(machine_name(&i).as_str(), "FIN-DT-004217");
        i.hash = 3 | 1 << 63;
        assert_eq!(machine_name(&i).as_str(), "FIN-LT-004217");
        i.is_server = true;
        assert_eq!(machine_name(&i).as_str(), "FIN-SRV-004217");
        i.is_vm = true;
        i.index = 12_345_678;
        assert_eq!(machine_name(&i).as_str(), "FIN-VM-12345679");
    }

    #[test]
    fn domain_is_appended_and_the_name_never_exceeds_63() {
        let mut i = input(NameStyle::Hashed, 0, 0);
        i.domain = Some("corp.example.com");
        assert_eq!(machine_name(&i).as_str(), "WS-0000000000.corp.example.com");
        let long = "a".repeat(DOMAIN_MAX);
        let mut i = input(NameStyle::Department, 0, u64::MAX);
        i.is_server = true;
        i.domain = Some(&long);
        let n = machine_name(&i);
        assert_eq!(n.len(), MACHINE_NAME_MAX_UNITS);
        assert!(n.as_str().starts_with("ACC-SRV-18446744073709551615"));
    }

    #[test]
    fn domain_checks() {
        assert_eq!(check_domain("corp.example.com"), Ok(()));
        assert_eq!(check_domain("a-b.c1"), Ok(()));
        assert_eq!(
            check_domain(&"a".repeat(DOMAIN_MAX + 1)),
            Err(DomainError::TooLong {
                len: DOMAIN_MAX + 1
            })
        );
        for bad in [
            "", "a..b", "-a.b", "a-.b", "a b", "é.com", "a_b.com", "corp.",
        ] {
            assert!(
                matches!(check_domain(bad), Err(DomainError::BadLabel { .. })),
                "{bad:?} accepted"
            );
        }
    }
}
