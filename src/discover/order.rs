//! The order in which a client tries the hosts of an SRV answer: sans-IO, the randomness is
//! passed in, so a seeded generator gives the same order every time.
//!
//! - [`SrvOrder::Rfc2782`] (the default, as current Microsoft documentation and vlmcs do):
//!   priority groups lowest first; inside a group the weighted draw of RFC 2782 ("Usage
//!   rules"): weight-0 records first in the list, a uniform number between 0 and the sum of
//!   the weights (inclusive), the first record whose running sum reaches it is next; repeat
//!   with the rest.
//! - [`SrvOrder::Random`]: every record equally likely at every step, priority and weight
//!   ignored (an older Microsoft page says KMS clients do this).
//! - [`SrvOrder::Ordered`]: the sorted list as it is (priority, then higher weight first, then
//!   name): deterministic, for tests and for pinning a fleet to its primary host.
//!
//! Where RFC 2782 is silent or its literal text misbehaves, kmsload decides:
//! - A group whose weights are all 0 (what Windows publishes by default) is drawn uniformly:
//!   the RFC's literal rule would always pick the first record of the list, and the list
//!   order is whatever the DNS server sent.
//! - The uniform number comes from 32 random bits by a widening multiply; the bias is below
//!   2^-16 for any weight sum an SRV answer can hold.

use rand::Rng;

use super::{SrvOrder, SrvRecord};

/// A uniform integer in `0..=max`.
fn uniform_inclusive<R: Rng + ?Sized>(rng: &mut R, max: u32) -> u32 {
    let span = u64::from(max) + 1;
    u32::try_from((u64::from(rng.next_u32()) * span) >> 32).unwrap_or(max)
}

/// The order in which a client tries `records` (any order in; the output holds each record
/// once).
pub fn try_order<R: Rng + ?Sized>(
    records: &[SrvRecord],
    order: SrvOrder,
    rng: &mut R,
) -> Vec<SrvRecord> {
    let mut sorted = records.to_vec();
    sorted.sort();
    match order {
        SrvOrder::Ordered => sorted,
        SrvOrder::Random => {
            let mut out = Vec::with_capacity(sorted.len());
            while !sorted.is_empty() {
                let max = u32::try_from(sorted.len() - 1).unwrap_or(u32::MAX);
                let i = uniform_inclusive(rng, max) as usize;
                out.push(sorted.remove(i));
            }
            out
        }
        SrvOrder::Rfc2782 => {
            let mut out = Vec::with_capacity(sorted.len());
            let mut rest = sorted.as_slice();
            while let Some(first) = rest.first() {
                let n = rest
                    .iter()
                    .take_while(|r| r.priority == first.priority)
                    .count();
                let (group, tail) = rest.split_at(n);
                draw_group(group.to_vec(), rng, &mut out);
                rest = tail;
            }
            out
        }
    }
}

/// RFC 2782's weighted draw over one priority group, appended to `out`.
fn draw_group<R: Rng + ?Sized>(mut group: Vec<SrvRecord>, rng: &mut R, out: &mut Vec<SrvRecord>) {
    // Weight-0 records at the beginning, as the RFC says; the rest keep the sorted order.
    group.sort_by_key(|r| r.weight != 0);
    while !group.is_empty() {
        let sum: u32 = group.iter().map(|r| u32::from(r.weight)).sum();
        let pick = if sum == 0 {
            let max = u32::try_from(group.len() - 1).unwrap_or(u32::MAX);
            uniform_inclusive(rng, max) as usize
        } else {
            let draw = uniform_inclusive(rng, sum);
            let mut running = 0u32;
            group
                .iter()
                .position(|r| {
                    running += u32::from(r.weight);
                    running >= draw
                })
                .unwrap_or(group.len() - 1)
        };
        out.push(group.remove(pick));
    }
}

/// The share of first tries each record gets under `order`, in the order of `records`
/// (sorted or not): what a large fleet's split across the hosts is expected to be when all
/// of them answer. The shares sum to 1 (or the list is empty).
pub fn first_choice_shares(records: &[SrvRecord], order: SrvOrder) -> Vec<f64> {
    let n = records.len();
    if n == 0 {
        return Vec::new();
    }
    match order {
        SrvOrder::Random => vec![1.0 / n as f64; n],
        SrvOrder::Ordered => {
            let first = records.iter().min().cloned();
            let mut seen = false;
            records
                .iter()
                .map(|r| {
                    if !seen && Some(r) == first.as_ref() {
                        seen = true;
                        1.0
                    } else {
                        0.0
                    }
                })
                .collect()
        }
        SrvOrder::Rfc2782 => {
            let best = records.iter().map(|r| r.priority).min().unwrap_or(0);
            let mut group: Vec<&SrvRecord> =
                records.iter().filter(|r| r.priority == best).collect();
            group.sort();
            group.sort_by_key(|r| r.weight != 0);
            let sum: u32 = group.iter().map(|r| u32::from(r.weight)).sum();
            // Draw 0 of 0..=sum lands on the head of the list (a weight-0 record when there
            // is one: the "very small chance" the RFC gives them).
            let head = group[0];
            let mut head_counted = false;
            records
                .iter()
                .map(|r| {
                    if r.priority != best {
                        0.0
                    } else if sum == 0 {
                        1.0 / group.len() as f64
                    } else {
                        let extra = if !head_counted && r == head {
                            head_counted = true;
                            1.0
                        } else {
                            0.0
                        };
                        (f64::from(r.weight) + extra) / (f64::from(sum) + 1.0)
                    }
                })
                .collect()
        }
    }
}

#[cfg(test)]
mod tests {
    use rand::SeedableRng;
    use rand::rngs::StdRng;

    use super::*;

    fn rec(target: &str, priority: u16, weight: u16) -> SrvRecord {
        SrvRecord {
            target: target.to_owned(),
            port: 1688,
            priority,
            weight,
        }
    }

    fn first_counts(records: &[SrvRecord], order: SrvOrder, draws: u32, seed: u64) -> Vec<u32> {
        let mut rng = StdRng::seed_from_u64(seed);
        let mut counts = vec![0u32; records.len()];
        for _ in 0..draws {
            let o = try_order(records, order, &mut rng);
            let i = records.iter().position(|r| *r == o[0]).unwrap();
            counts[i] += 1;
        }
        counts
    }

    #[test]
    fn lower_priority_always_comes_first() {
        let records = [
            rec("b", 10, 5),
            rec("a", 0, 1),
            rec("c", 10, 60000),
            rec("d", 5, 0),
        ];
        let mut rng = StdRng::seed_from_u64(1);
        for _ in 0..500 {
            let o = try_order(&records, SrvOrder::Rfc2782, &mut rng);
            let prios: Vec<u16> = o.iter().map(|r| r.priority).collect();
            assert_eq!(&prios[..2], &[0, 5]);
            assert_eq!(o.len(), 4);
        }
    }

    #[test]
    fn weights_split_the_first_choice_in_proportion() {
        // 3:1 within priority 0; 10 000 draws, binomial sd ~43: 5 sd is ±220 around 7500.
        let records = [rec("a", 0, 75), rec("b", 0, 25), rec("z", 1, 1000)];
        let counts = first_counts(&records, SrvOrder::Rfc2782, 10_000, 7);
        let expected = first_choice_shares(&records, SrvOrder::Rfc2782);
        assert!((expected[0] - 76.0 / 101.0).abs() < 1e-9, "{expected:?}");
        assert!(
            (f64::from(counts[0]) - 10_000.0 * expected[0]).abs() < 220.0,
            "{counts:?}"
        );
        assert_eq!(
            counts[2], 0,
            "priority 1 never first while priority 0 exists"
        );
    }

    #[test]
    fn all_zero_weights_are_drawn_uniformly() {
        let records = [
            rec("a", 0, 0),
            rec("b", 0, 0),
            rec("c", 0, 0),
            rec("d", 0, 0),
        ];
        let counts = first_counts(&records, SrvOrder::Rfc2782, 8_000, 3);
        // Each 2000 ± 5 sd (sd ~39).
        for c in &counts {
            assert!((f64::from(*c) - 2000.0).abs() < 195.0, "{counts:?}");
        }
        assert_eq!(
            first_choice_shares(&records, SrvOrder::Rfc2782),
            vec![0.25; 4]
        );
    }

    #[test]
    fn weight_zero_next_to_weighted_is_rarely_first() {
        let records = [rec("a", 0, 0), rec("b", 0, 99)];
        let counts = first_counts(&records, SrvOrder::Rfc2782, 10_000, 11);
        // Expected 1 % (draw 0 of 0..=99): 100 ± 5 sd (sd ~10).
        assert!(counts[0] > 50 && counts[0] < 150, "{counts:?}");
        let shares = first_choice_shares(&records, SrvOrder::Rfc2782);
        assert!((shares[0] - 0.01).abs() < 1e-9 && (shares[1] - 0.99).abs() < 1e-9);
    }

    #[test]
    fn the_same_seed_gives_the_same_order() {
        let records: Vec<SrvRecord> = (0..8).map(|i| rec(&format!("h{i}"), 0, 10 + i)).collect();
        for order in [SrvOrder::Rfc2782, SrvOrder::Random] {
            let a = try_order(&records, order, &mut StdRng::seed_from_u64(42));
            let b = try_order(&records, order, &mut StdRng::seed_from_u64(42));
            let c = try_order(&records, order, &mut StdRng::seed_from_u64(43));
            assert_eq!(a, b);
            assert_ne!(a, c, "another seed, another order (8! orders)");
        }
    }

    #[test]
    fn ordered_is_the_sorted_list_and_random_ignores_priority() {
        let records = [rec("b", 1, 0), rec("a", 0, 1), rec("c", 0, 9)];
        let o = try_order(&records, SrvOrder::Ordered, &mut StdRng::seed_from_u64(0));
        let names: Vec<&str> = o.iter().map(|r| r.target.as_str()).collect();
        assert_eq!(names, ["c", "a", "b"]);
        assert_eq!(
            first_choice_shares(&records, SrvOrder::Ordered),
            vec![0.0, 0.0, 1.0]
        );
        let counts = first_counts(&records, SrvOrder::Random, 9_000, 5);
        for c in &counts {
            assert!((f64::from(*c) - 3000.0).abs() < 225.0, "{counts:?}");
        }
    }

    #[test]
    fn uniform_covers_both_ends() {
        let mut rng = StdRng::seed_from_u64(9);
        let mut seen = [false; 3];
        for _ in 0..200 {
            let v = uniform_inclusive(&mut rng, 2) as usize;
            seen[v] = true;
        }
        assert_eq!(seen, [true; 3]);
        assert_eq!(uniform_inclusive(&mut rng, 0), 0);
    }
}
