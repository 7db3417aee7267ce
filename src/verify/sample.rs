//! The sample of one masked column: a keyed 64-bit hash per distinct source value, chosen
//! as the N smallest hashes (a "bottom-k" sample). It is uniform over distinct values,
//! the same in every run under one key, and needs one pass in any row order.
//!
//! Values are hashed in their COPY text form, which is what the target sends back too,
//! so no field is decoded on the hot path. The real values themselves are kept only for
//! `--deep`, which must search for them as substrings.

use std::collections::{BTreeMap, HashSet};
use std::hash::{BuildHasherDefault, Hasher};

use crate::mask::MaskingKey;

/// A keyed 64-bit hash of a value: SipHash over a secret derived from the masking key and
/// the value, so the sample is the same in every run and the hashes say nothing without
/// the key.
#[derive(Clone)]
pub struct ValueHasher {
    secret: [u8; 32],
}

impl ValueHasher {
    /// Derives the hash's secret from the masking key.
    pub fn new(key: &MaskingKey) -> Self {
        Self {
            secret: key.seed("lethe verify sample", b""),
        }
    }

    /// The hash of one value (in COPY text form).
    pub fn hash(&self, value: &[u8]) -> u64 {
        let mut hasher = std::hash::DefaultHasher::new();
        hasher.write(&self.secret);
        hasher.write(value);
        hasher.finish()
    }
}

/// A hasher for keys that are already hashes: it passes the `u64` through.
#[derive(Default)]
pub struct PassThrough(u64);

impl Hasher for PassThrough {
    fn finish(&self) -> u64 {
        self.0
    }

    fn write(&mut self, bytes: &[u8]) {
        for &b in bytes {
            self.0 = self.0.rotate_left(8) ^ u64::from(b);
        }
    }

    fn write_u64(&mut self, n: u64) {
        self.0 = n;
    }
}

/// A set of value hashes.
pub type HashSet64 = HashSet<u64, BuildHasherDefault<PassThrough>>;

/// One sampled value.
#[derive(Debug)]
pub struct Sampled {
    /// Source rows that hold it (all of them: a value enters the sample on its first row,
    /// and a value that leaves it never comes back).
    pub rows: u64,
    /// The value in COPY text form, kept only when `--deep` needs it.
    pub value: Option<Box<[u8]>>,
}

/// The distinct non-NULL values of one source column with the smallest hashes.
#[derive(Debug)]
pub struct ColumnSample {
    limit: Option<usize>,
    keep_values: bool,
    entries: BTreeMap<u64, Sampled>,
    /// The largest hash in a full sample: anything above it is out at once.
    threshold: u64,
    /// Non-NULL source values read.
    pub non_null: u64,
}

impl ColumnSample {
    /// An empty sample of at most `limit` distinct values (`None`: every value).
    pub fn new(limit: Option<usize>, keep_values: bool) -> Self {
        Self {
            limit,
            keep_values,
            entries: BTreeMap::new(),
            threshold: u64::MAX,
            non_null: 0,
        }
    }

    /// Adds one non-NULL value with its hash.
    pub fn add(&mut self, hash: u64, value: &[u8]) {
        self.non_null += 1;
        let full = self.limit.is_some_and(|limit| self.entries.len() >= limit);
        if full && hash > self.threshold {
            return;
        }
        if let Some(entry) = self.entries.get_mut(&hash) {
            entry.rows += 1;
            return;
        }
        let value = self.keep_values.then(|| Box::<[u8]>::from(value));
        self.entries.insert(hash, Sampled { rows: 1, value });
        if let Some(limit) = self.limit
            && self.entries.len() > limit
        {
            self.entries.pop_last();
        }
        if self.limit.is_some_and(|limit| self.entries.len() >= limit) {
            self.threshold = self.entries.last_key_value().map_or(u64::MAX, |(h, _)| *h);
        }
    }

    /// Distinct values in the sample.
    pub fn len(&self) -> usize {
        self.entries.len()
    }

    /// Whether no value was sampled.
    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }

    /// The sampled hashes, for lookups while the target streams by.
    pub fn hash_set(&self) -> HashSet64 {
        self.entries.keys().copied().collect()
    }

    /// The sampled values with their hashes (values only when they were kept).
    pub fn entries(&self) -> impl Iterator<Item = (u64, &Sampled)> {
        self.entries.iter().map(|(h, s)| (*h, s))
    }

    /// Forgets the sample (its hashes live on in [`ColumnSample::hash_set`]'s set).
    pub fn clear(&mut self) {
        self.entries = BTreeMap::new();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keeps_the_smallest_hashes_and_counts_rows() {
        let hasher = ValueHasher::new(&MaskingKey::new(b"a test key of some length"));
        let values: Vec<String> = (0..1000).map(|i| format!("value {i}")).collect();
        let mut full = ColumnSample::new(None, false);
        let mut sample = ColumnSample::new(Some(50), true);
        // Each value twice, in two different orders: the sample must not care.
        for v in values.iter().chain(values.iter().rev()) {
            let h = hasher.hash(v.as_bytes());
            full.add(h, v.as_bytes());
            sample.add(h, v.as_bytes());
        }
        assert_eq!(full.len(), 1000);
        assert_eq!(sample.len(), 50);
        assert_eq!(sample.non_null, 2000);
        let smallest: Vec<u64> = full.entries().map(|(h, _)| h).take(50).collect();
        let kept: Vec<u64> = sample.entries().map(|(h, _)| h).collect();
        assert_eq!(kept, smallest);
        assert!(
            sample
                .entries()
                .all(|(_, s)| s.rows == 2 && s.value.is_some())
        );
        assert!(full.entries().all(|(_, s)| s.value.is_none()));
        assert!(sample.hash_set().contains(&kept[7]));
    }

    #[test]
    fn the_hash_depends_on_the_key() {
        let a = ValueHasher::new(&MaskingKey::new(b"one key, long enough"));
        let b = ValueHasher::new(&MaskingKey::new(b"another key, long enough"));
        assert_eq!(a.hash(b"x@y.z"), a.clone().hash(b"x@y.z"));
        assert_ne!(a.hash(b"x@y.z"), b.hash(b"x@y.z"));
    }
}
