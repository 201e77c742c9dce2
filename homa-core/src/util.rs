//! Small deterministic helpers: a seeded PRNG and a fast hasher for lookups.

use core::hash::{BuildHasherDefault, Hasher};
use std::collections::{HashMap, HashSet};

/// SplitMix64: tiny, fast, and good enough for id bases and tie-breaking.
/// The engine's randomness comes only from here, seeded from the config, so
/// the same inputs give the same outputs.
#[derive(Debug, Clone)]
pub(crate) struct Rng(u64);

impl Rng {
    pub(crate) fn new(seed: u64) -> Self {
        Rng(seed)
    }

    pub(crate) fn next_u64(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }
}

/// A multiply-rotate hasher (the FxHash idea) for maps keyed by ids and
/// addresses. Keys come from the network, but the maps are only used for
/// lookup (never iterated, so order cannot leak into behaviour) and are
/// bounded by the configured RPC limits, so hash flooding can only slow a
/// bounded table. Public for the adapters' maps keyed by RPC ids (SipHash,
/// std's default, costs tens of nanoseconds a lookup on a round trip's
/// path).
///
/// ```
/// use std::collections::HashMap;
/// use std::hash::BuildHasherDefault;
/// let mut m: HashMap<u64, &str, BuildHasherDefault<homa_core::FastHasher>> =
///     HashMap::default();
/// m.insert(42, "rpc");
/// assert_eq!(m.get(&42), Some(&"rpc"));
/// ```
#[derive(Debug, Default, Clone, Copy)]
pub struct FastHasher(u64);

const SEED: u64 = 0x51_7c_c1_b7_27_22_0a_95;

impl Hasher for FastHasher {
    fn finish(&self) -> u64 {
        // The multiply mixes each input bit only into higher bits, while
        // hashbrown takes the bucket from the low bits: rotate the mixed
        // high bits down. Without this, ids differing only in high bits
        // (client ids carry a sequence there) all share one bucket.
        self.0.rotate_left(26)
    }
    fn write(&mut self, bytes: &[u8]) {
        for chunk in bytes.chunks(8) {
            let mut buf = [0u8; 8];
            buf[..chunk.len()].copy_from_slice(chunk);
            self.write_u64(u64::from_le_bytes(buf));
        }
    }
    fn write_u8(&mut self, i: u8) {
        self.write_u64(u64::from(i));
    }
    fn write_u16(&mut self, i: u16) {
        self.write_u64(u64::from(i));
    }
    fn write_u32(&mut self, i: u32) {
        self.write_u64(u64::from(i));
    }
    fn write_u64(&mut self, i: u64) {
        self.0 = (self.0.rotate_left(5) ^ i).wrapping_mul(SEED);
    }
    fn write_usize(&mut self, i: usize) {
        self.write_u64(i as u64);
    }
}

pub(crate) type FastMap<K, V> = HashMap<K, V, BuildHasherDefault<FastHasher>>;
pub(crate) type FastSet<K> = HashSet<K, BuildHasherDefault<FastHasher>>;

#[cfg(test)]
mod tests {
    use super::*;
    use core::hash::{BuildHasher, BuildHasherDefault};

    /// Keys that differ only in high bits must not share low hash bits, or
    /// hashbrown puts them all in one bucket.
    #[test]
    fn high_bit_differences_reach_the_low_bits() {
        let b = BuildHasherDefault::<FastHasher>::default();
        let buckets: FastSet<u64> = (0..1024u64).map(|i| b.hash_one(i << 21) & 1023).collect();
        assert!(
            buckets.len() > 500,
            "only {} of 1024 buckets used",
            buckets.len()
        );
    }
}
