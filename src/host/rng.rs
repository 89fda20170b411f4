//! The host model's only source of randomness: SplitMix64 over a caller-given seed.
//!
//! Written here rather than taken from `rand` so that a seed gives the same ePID and the same
//! synthetic CMIDs in every kmsload version, whatever `rand`'s algorithms become.

use uuid::Uuid;

/// SplitMix64 (Steele, Lea, Flood 2014): a 64-bit state advanced by a Weyl constant and mixed.
#[derive(Debug, Clone)]
pub(crate) struct SplitMix64(u64);

impl SplitMix64 {
    /// A generator for `seed`, separated from other uses of the same seed by `domain`.
    pub(crate) fn new(seed: u64, domain: &str) -> Self {
        Self(seed ^ fnv1a(domain))
    }

    pub(crate) fn next_u64(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }

    /// A value in `0..span` (`span` > 0). The modulo bias is below 2^-32 for the spans used
    /// here (at most 10^9), which is irrelevant for picking a key id or a date.
    pub(crate) fn below(&mut self, span: u64) -> u64 {
        self.next_u64() % span.max(1)
    }

    /// A random (version 4, RFC 4122 variant) UUID, like the CMIDs Windows generates (spec 5.2).
    pub(crate) fn uuid_v4(&mut self) -> Uuid {
        let mut bytes = [0u8; 16];
        bytes[..8].copy_from_slice(&self.next_u64().to_le_bytes());
        bytes[8..].copy_from_slice(&self.next_u64().to_le_bytes());
        uuid::Builder::from_random_bytes(bytes).into_uuid()
    }
}

/// FNV-1a, 64 bit: turns a domain name into seed material.
fn fnv1a(text: &str) -> u64 {
    text.bytes().fold(0xCBF2_9CE4_8422_2325, |h, b| {
        (h ^ u64::from(b)).wrapping_mul(0x0100_0000_01B3)
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn splitmix_known_answer() {
        // First outputs of SplitMix64 from state 0 (the published reference values).
        let mut r = SplitMix64(0);
        assert_eq!(r.next_u64(), 0xE220_A839_7B1D_CDAF);
        assert_eq!(r.next_u64(), 0x6E78_9E6A_A1B9_65F4);
    }

    #[test]
    fn domains_separate_streams_and_seeds_repeat() {
        let a = SplitMix64::new(7, "a").next_u64();
        let b = SplitMix64::new(7, "b").next_u64();
        assert_ne!(a, b);
        assert_eq!(a, SplitMix64::new(7, "a").next_u64());
        assert_eq!(fnv1a(""), 0xCBF2_9CE4_8422_2325);
    }

    #[test]
    fn uuid_is_version_4() {
        let u = SplitMix64::new(1, "cmid").uuid_v4();
        assert_eq!(u.get_version_num(), 4);
        assert_eq!(u.get_variant(), uuid::Variant::RFC4122);
        assert!(SplitMix64::new(1, "x").below(10) < 10);
    }
}
