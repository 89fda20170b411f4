//! [`Tally`]: counts per key for the small key sets a run has (a dozen HRESULTs, a few
//! causes or faults). A vector scanned linearly beats a hash map at that size and allocates
//! only when a new key appears.

/// Counts per key, in first-seen order; merge adds.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Tally<K> {
    entries: Vec<(K, u64)>,
}

impl<K> Default for Tally<K> {
    fn default() -> Self {
        Self {
            entries: Vec::new(),
        }
    }
}

impl<K: Copy + Eq + Ord> Tally<K> {
    /// Adds `n` to `key`.
    pub fn add(&mut self, key: K, n: u64) {
        match self.entries.iter_mut().find(|(k, _)| *k == key) {
            Some((_, c)) => *c += n,
            None => self.entries.push((key, n)),
        }
    }

    /// The count of `key` (0 if never added).
    pub fn get(&self, key: K) -> u64 {
        self.entries
            .iter()
            .find(|(k, _)| *k == key)
            .map_or(0, |(_, c)| *c)
    }

    /// Sum of all counts.
    pub fn total(&self) -> u64 {
        self.entries.iter().map(|(_, c)| c).sum()
    }

    /// Number of distinct keys.
    pub fn len(&self) -> usize {
        self.entries.len()
    }

    /// True when nothing was counted.
    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }

    /// Adds every count of `other`.
    pub fn merge(&mut self, other: &Self) {
        for &(k, n) in &other.entries {
            self.add(k, n);
        }
    }

    /// `(key, count)` pairs sorted by key: the order-independent view.
    pub fn sorted(&self) -> Vec<(K, u64)> {
        let mut v = self.entries.clone();
        v.sort_unstable_by_key(|e| e.0);
        v
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn adds_merges_and_sorts() {
        let mut a = Tally::default();
        a.add(5u32, 1);
        a.add(3, 2);
        a.add(5, 1);
        assert_eq!(a.get(5), 2);
        assert_eq!(a.get(7), 0);
        assert_eq!(a.total(), 4);
        assert_eq!(a.len(), 2);
        let mut b = Tally::default();
        b.add(7u32, 1);
        b.add(3, 1);
        a.merge(&b);
        assert_eq!(a.sorted(), [(3, 3), (5, 2), (7, 1)]);
        assert!(Tally::<u32>::default().is_empty());
    }
}
