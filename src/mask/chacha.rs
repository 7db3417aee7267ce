//! ChaCha8 one block at a time: word for word the stream of
//! `rand_chacha::ChaCha8Rng::from_seed`, which defines every pseudonym, computed one
//! 16-word block at a time. A masker draws a handful of words per value, and
//! `ChaCha8Rng` always computes four blocks at once: three quarters of that work was
//! thrown away with the generator.

use std::convert::Infallible;

use rand::TryRng;

/// Words in a ChaCha block.
pub(super) const BLOCK_WORDS: usize = 16;

/// A ChaCha8 generator seeded by a masking seed, for the maskers that draw from word
/// lists and digit shapes. Its output must never change: it is `ChaCha8Rng`'s, and the
/// golden values in `golden.rs` hold it to that.
pub struct ChaCha8 {
    key: [u32; 8],
    /// The next block to compute.
    counter: u64,
    block: [u32; BLOCK_WORDS],
    /// The next word of `block` to hand out; `BLOCK_WORDS` when it is used up.
    next: usize,
}

impl ChaCha8 {
    /// The generator `ChaCha8Rng::from_seed(seed)` is, at its first word.
    #[must_use]
    pub fn from_seed(seed: [u8; 32]) -> Self {
        Self {
            key: key_words(&seed),
            counter: 0,
            block: [0; BLOCK_WORDS],
            next: BLOCK_WORDS,
        }
    }
}

impl TryRng for ChaCha8 {
    type Error = Infallible;

    #[inline]
    fn try_next_u32(&mut self) -> Result<u32, Infallible> {
        if self.next == BLOCK_WORDS {
            self.block = block(&self.key, self.counter, 0);
            self.counter = self.counter.wrapping_add(1);
            self.next = 0;
        }
        let word = self.block[self.next];
        self.next += 1;
        Ok(word)
    }

    /// Two words, the first one low: as `ChaCha8Rng` joins them.
    #[inline]
    fn try_next_u64(&mut self) -> Result<u64, Infallible> {
        rand::rand_core::utils::next_u64_via_u32(self)
    }

    /// Whole words in order, little-endian, the rest of the last one dropped: as
    /// `ChaCha8Rng` fills bytes.
    fn try_fill_bytes(&mut self, dst: &mut [u8]) -> Result<(), Infallible> {
        rand::rand_core::utils::fill_bytes_via_next_word(dst, || self.try_next_u32())
    }
}

/// A 32-byte seed as ChaCha's eight little-endian key words.
pub(super) fn key_words(seed: &[u8; 32]) -> [u32; 8] {
    std::array::from_fn(|i| {
        u32::from_le_bytes([
            seed[4 * i],
            seed[4 * i + 1],
            seed[4 * i + 2],
            seed[4 * i + 3],
        ])
    })
}

/// One ChaCha8 block under `key` at block `counter` of `stream`: the very words
/// `ChaCha8Rng` gives from that position.
pub(super) fn block(key: &[u32; 8], counter: u64, stream: u64) -> [u32; BLOCK_WORDS] {
    /// "expand 32-byte k".
    const SIGMA: [u32; 4] = [0x6170_7865, 0x3320_646e, 0x7962_2d32, 0x6b20_6574];
    let mut init = [0u32; BLOCK_WORDS];
    init[..4].copy_from_slice(&SIGMA);
    init[4..12].copy_from_slice(key);
    init[12..].copy_from_slice(&[
        counter as u32,
        (counter >> 32) as u32,
        stream as u32,
        (stream >> 32) as u32,
    ]);
    let mut s = init;
    let quarter = |s: &mut [u32; BLOCK_WORDS], a: usize, b: usize, c: usize, d: usize| {
        s[a] = s[a].wrapping_add(s[b]);
        s[d] = (s[d] ^ s[a]).rotate_left(16);
        s[c] = s[c].wrapping_add(s[d]);
        s[b] = (s[b] ^ s[c]).rotate_left(12);
        s[a] = s[a].wrapping_add(s[b]);
        s[d] = (s[d] ^ s[a]).rotate_left(8);
        s[c] = s[c].wrapping_add(s[d]);
        s[b] = (s[b] ^ s[c]).rotate_left(7);
    };
    // Eight rounds: four double rounds of columns, then diagonals.
    for _ in 0..4 {
        quarter(&mut s, 0, 4, 8, 12);
        quarter(&mut s, 1, 5, 9, 13);
        quarter(&mut s, 2, 6, 10, 14);
        quarter(&mut s, 3, 7, 11, 15);
        quarter(&mut s, 0, 5, 10, 15);
        quarter(&mut s, 1, 6, 11, 12);
        quarter(&mut s, 2, 7, 8, 13);
        quarter(&mut s, 3, 4, 9, 14);
    }
    for (word, start) in s.iter_mut().zip(init) {
        *word = word.wrapping_add(start);
    }
    s
}

#[cfg(test)]
mod tests {
    use rand::{Rng, RngExt, SeedableRng};
    use rand_chacha::ChaCha8Rng;

    use super::*;

    const SEED: [u8; 32] = {
        let mut seed = [0u8; 32];
        let mut i = 0;
        while i < 32 {
            seed[i] = (i * 7 + 3) as u8;
            i += 1;
        }
        seed
    };

    #[test]
    fn a_block_is_rand_chachas_at_any_position() {
        for (counter, stream) in [
            (0, 0),
            (1, 0),
            (4, 99),
            (u64::MAX - 3, u64::MAX),
            (1 << 40, 7),
        ] {
            let mut rng = ChaCha8Rng::from_seed(SEED);
            rng.set_stream(stream);
            rng.set_word_pos(u128::from(counter) * 16);
            let expected: [u32; 16] = std::array::from_fn(|_| rng.next_u32());
            assert_eq!(
                block(&key_words(&SEED), counter, stream),
                expected,
                "{counter} {stream}"
            );
        }
    }

    /// Every way a masker draws, mixed so that u64s and byte runs straddle the blocks
    /// (and ChaCha8Rng's four-block buffers) at every offset.
    #[test]
    fn draws_are_chacha8rngs_word_for_word() {
        let (mut ours, mut theirs) = (ChaCha8::from_seed(SEED), ChaCha8Rng::from_seed(SEED));
        for step in 0..2_000usize {
            match step % 5 {
                0 => assert_eq!(ours.next_u32(), theirs.next_u32(), "step {step}"),
                1 => assert_eq!(ours.next_u64(), theirs.next_u64(), "step {step}"),
                2 => {
                    let len = step % 23;
                    let (mut a, mut b) = (vec![0u8; len], vec![0u8; len]);
                    ours.fill_bytes(&mut a);
                    theirs.fill_bytes(&mut b);
                    assert_eq!(a, b, "step {step}");
                }
                3 => assert_eq!(
                    ours.random_range(0..1_000_003u32),
                    theirs.random_range(0..1_000_003u32),
                    "step {step}"
                ),
                _ => assert_eq!(
                    ours.random::<f64>().to_bits(),
                    theirs.random::<f64>().to_bits(),
                    "step {step}"
                ),
            }
        }
    }
}
