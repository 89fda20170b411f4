//! The keyed mixing function every synthetic value comes from: a counter-based generator, so
//! the value for `(seed, stream, index)` is computed directly, in O(1), with no state to keep
//! or advance.
//!
//! # Construction
//!
//! ```text
//! mix64(z)  = SplitMix64's output function (Stafford "variant 13"):
//!             z ^= z >> 30; z *= 0xBF58476D1CE4E5B9
//!             z ^= z >> 27; z *= 0x94D049BB133111EB
//!             z ^= z >> 31
//! key       = mix64(seed ^ mix64(tag + GAMMA))          one per (seed, stream tag)
//! at(index) = mix64(key ^ mix64(index + GAMMA))         GAMMA = 0x9E3779B97F4A7C15
//! ```
//!
//! `mix64` is a bijection on `u64` with full avalanche (each input bit flips each output bit
//! with probability close to 1/2). For a fixed key, `at` is therefore a bijection of `index`:
//! two clients of one stream never share a 64-bit value. Different streams (product, VM flag,
//! CMID, ...) use different tags, so their values are unrelated. Adding `GAMMA` before the
//! inner `mix64` avoids its fixed point `mix64(0) = 0`.
//!
//! This is a statistical generator for test fleets, not a cryptographic one: anybody who knows
//! the seed can compute every value, which is the point (a run can be replayed).
//!
//! Floating point draws ([`Stream::unit`]) use the top 53 bits, so they are exact and the same
//! on every platform. Box–Muller (used for normal skew in [`super`]) calls `ln` and `cos`,
//! whose last bit may differ between libm implementations; after rounding to whole seconds that
//! can, very rarely, move one client's skew by one second on another platform.

/// The golden-ratio increment of SplitMix64.
pub const GAMMA: u64 = 0x9E37_79B9_7F4A_7C15;

/// SplitMix64's output function: a bijective 64-bit mixer with full avalanche.
pub const fn mix64(mut z: u64) -> u64 {
    z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    z ^ (z >> 31)
}

/// One keyed stream of pseudo-random values indexed by a `u64` (a client index, an attempt
/// number, ...). Cheap to copy; computing a value is two [`mix64`] calls.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Stream {
    key: u64,
}

impl Stream {
    /// The stream named `tag` under `seed`. Use a distinct tag per kind of value; tags below
    /// `0x100` are taken by [`super::Fleet`], so other modules (faults, schedules) should pick
    /// larger ones, e.g. a few ASCII bytes of their name.
    pub const fn new(seed: u64, tag: u64) -> Self {
        Self {
            key: mix64(seed ^ mix64(tag.wrapping_add(GAMMA))),
        }
    }

    /// A sub-stream, e.g. one per client for values drawn per attempt:
    /// `faults.derive(client).at(attempt)`.
    pub const fn derive(self, sub: u64) -> Self {
        Self::new(self.key, sub)
    }

    /// The 64-bit value at `index`.
    pub const fn at(self, index: u64) -> u64 {
        mix64(self.key ^ mix64(index.wrapping_add(GAMMA)))
    }

    /// A value in `[0, 1)` with 53 random bits.
    pub fn unit(self, index: u64) -> f64 {
        unit_from_bits(self.at(index))
    }

    /// A value in `0..n` (0 when `n` is 0), by multiply-high; the bias is below `n / 2^64`.
    pub const fn below(self, index: u64, n: u64) -> u64 {
        mul_high(self.at(index), n)
    }
}

/// The top 53 bits of `bits` as a float in `[0, 1)`.
pub fn unit_from_bits(bits: u64) -> f64 {
    const SCALE: f64 = 1.0 / (1u64 << 53) as f64;
    (bits >> 11) as f64 * SCALE
}

/// `floor(x * n / 2^64)`: maps a uniform `x` onto `0..n`.
pub const fn mul_high(x: u64, n: u64) -> u64 {
    ((x as u128 * n as u128) >> 64) as u64
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn mix64_matches_splitmix64_reference_outputs() {
        // SplitMix64 with state 0: outputs are mix64(k * GAMMA) for k = 1, 2, 3. Reference values
        // from the published generator (Vigna, splitmix64.c, seed 0).
        assert_eq!(mix64(GAMMA), 0xE220_A839_7B1D_CDAF);
        assert_eq!(mix64(GAMMA.wrapping_mul(2)), 0x6E78_9E6A_A1B9_65F4);
        assert_eq!(mix64(GAMMA.wrapping_mul(3)), 0x06C4_5D18_8009_454F);
        assert_eq!(mix64(0), 0);
    }

    #[test]
    fn streams_are_deterministic_and_distinct() {
        let a = Stream::new(42, 1);
        assert_eq!(a.at(7), Stream::new(42, 1).at(7));
        assert_ne!(a.at(7), Stream::new(42, 2).at(7));
        assert_ne!(a.at(7), Stream::new(43, 1).at(7));
        assert_ne!(a.at(7), a.at(8));
        assert_ne!(a.derive(1).at(0), a.derive(2).at(0));
    }

    #[test]
    fn one_stream_has_no_repeats_over_a_million_indices() {
        let s = Stream::new(1, 1);
        let mut v: Vec<u64> = (0..1_000_000).map(|i| s.at(i)).collect();
        v.sort_unstable();
        v.dedup();
        assert_eq!(v.len(), 1_000_000);
    }

    #[test]
    fn unit_and_below_stay_in_range_and_are_balanced() {
        let s = Stream::new(9, 9);
        let n = 100_000u64;
        let mut sum = 0.0;
        let mut buckets = [0u32; 10];
        for i in 0..n {
            let u = s.unit(i);
            assert!((0.0..1.0).contains(&u));
            sum += u;
            buckets[s.below(i, 10) as usize] += 1;
        }
        let mean = sum / n as f64;
        assert!((mean - 0.5).abs() < 0.01, "mean {mean}");
        for b in buckets {
            assert!((9_000..11_000).contains(&b), "{buckets:?}");
        }
        assert_eq!(s.below(3, 0), 0);
        assert_eq!(mul_high(u64::MAX, 10), 9);
        assert_eq!(unit_from_bits(u64::MAX), 1.0 - 1.0 / (1u64 << 53) as f64);
    }
}
