//! A keyed format-preserving permutation, the tool behind the unique-safe maskers
//! (`iban`, `credit_card`, `ip`, `mac`, `national_id` with `format = "digits"`).
//!
//! A keyed hash of each value can collide; a keyed *permutation* cannot: distinct inputs
//! give distinct outputs by construction, so a unique column survives masking. The
//! values here are short strings of symbols where each position has its own radix (10
//! for a digit, 26 for a letter, 2 for a bit), so the permutation must stay inside that
//! mixed-radix domain.
//!
//! It is an unbalanced Feistel network over the positions: the symbols are split into a
//! left and a right half, and each round adds (position by position, modulo that
//! position's radix) a keyed stream derived from the other half to one half. Given the
//! other half, the addition is undone by subtraction, so every round (and hence the
//! whole network) is a bijection of exactly the input's domain: no cycle-walking is
//! needed, whatever the radices. Eight rounds, as FF3-1 uses, let each half be
//! rewritten four times from the other.
//!
//! A round costs one ChaCha8 block (two for a half of more than 32 positions), not an
//! HMAC: one HMAC per value, `HMAC(key, domain || 0 || 0xff, length, tweak)`, gives the
//! ChaCha8 key of all rounds, and the round number with the other half (read as a
//! mixed-radix number) is the block's input (its 64-bit stream and block counter).
//! ChaCha keyed by a secret is a pseudo-random function of that input, so the rounds
//! are as unguessable as with one HMAC each, at a fraction of the cost; each position
//! to rewrite takes 16 bits of the block. The leading 0xff byte never starts UTF-8
//! text, so the permutation's key never equals the seed of a value that a masker seeds
//! by its text in the same domain.

use super::MaskingKey;
use super::chacha::{self, BLOCK_WORDS};

/// Feistel rounds; even, so both halves are rewritten equally often.
const ROUNDS: u8 = 8;

/// The most positions one value may have (an IPv6 address as bits).
pub(super) const MAX_POSITIONS: usize = 128;

/// The longest tweak a caller may pass.
const MAX_TWEAK: usize = 32;

/// Starts the message of the permutation's key: a byte no UTF-8 text starts with.
const KEY_MARK: u8 = 0xff;

/// ChaCha8 blocks each round input owns: 64 16-bit draws, one per position of the
/// largest half (64 positions).
const ROUND_BLOCKS: u64 = 2;

/// 16-bit draws in a ChaCha block.
const BLOCK_DRAWS: usize = 2 * BLOCK_WORDS;

/// Permutes `symbols` in place, where `symbols[i] < radix(i)`, under the key, the
/// domain and a `tweak` (data that the output keeps, such as a country code, so that
/// each kept context gets its own permutation). The result again has
/// `symbols[i] < radix(i)` and two different inputs never give the same output.
///
/// Each half, read as a mixed-radix number, must stay below 2^124 so that it and the
/// round number fit the 127 bits of ChaCha8 input a round uses: 64 bits (an IPv6
/// half), 37 decimal digits or 26 letters. Every caller stays well below that.
pub(super) fn permute(
    key: &MaskingKey,
    domain: &str,
    tweak: &[u8],
    symbols: &mut [u8],
    radix: impl Fn(usize) -> u8,
) {
    let n = symbols.len();
    debug_assert!(n <= MAX_POSITIONS && tweak.len() <= MAX_TWEAK);
    if n == 0 {
        return;
    }
    let mid = n / 2;
    // mark, length, tweak length, tweak.
    let mut message = [0u8; 3 + MAX_TWEAK];
    message[..3].copy_from_slice(&[KEY_MARK, n as u8, tweak.len() as u8]);
    message[3..3 + tweak.len()].copy_from_slice(tweak);
    let seed = key.seed(domain, &message[..3 + tweak.len()]);
    let round_key = chacha::key_words(&seed);
    for round in 0..ROUNDS {
        // Even rounds rewrite the right half from the left one, odd rounds the reverse;
        // with one position the left half is empty and the right is shifted by a key.
        let (source, target) = if round % 2 == 0 {
            (0..mid, mid..n)
        } else {
            (mid..n, 0..mid)
        };
        let input = source.fold(u128::from(round), |acc, i| {
            let r = u128::from(radix(i));
            debug_assert!(
                acc < (1 << 127) / r,
                "a half too large for one ChaCha8 input"
            );
            acc.wrapping_mul(r).wrapping_add(u128::from(symbols[i]))
        });
        // The low 64 bits are the stream, the rest the block counter, times two: every
        // input owns the two blocks it may read. The second block is computed only for
        // a half of more than 32 positions (an IPv6 address).
        let (stream, first_block) = (input as u64, (input >> 64) as u64 * ROUND_BLOCKS);
        let mut words = [0u32; BLOCK_WORDS];
        for (k, i) in target.enumerate() {
            let draw = k % BLOCK_DRAWS;
            if draw == 0 {
                let block = first_block + (k / BLOCK_DRAWS) as u64;
                words = chacha::block(&round_key, block, stream);
            }
            let r = radix(i);
            // `% r` is slightly biased for radices that do not divide 2^16 (by 1 in
            // 6,500 for digits); the map stays a bijection all the same, and the rounds
            // wash the bias out.
            let half_word = words[draw / 2] >> (16 * (draw % 2)) & 0xffff;
            let add = (half_word % u32::from(r)) as u8;
            symbols[i] = ((u16::from(symbols[i]) + u16::from(add)) % u16::from(r)) as u8;
        }
    }
}

/// Permutes the bits of `value` whose positions (0 = most significant of `width`) are
/// set in `free`, leaving the other bits as they are.
pub(super) fn permute_bits(
    key: &MaskingKey,
    domain: &str,
    tweak: &[u8],
    value: u128,
    width: u32,
    free: impl Fn(u32) -> bool,
) -> u128 {
    let mut bits = [0u8; MAX_POSITIONS];
    let mut n = 0;
    for i in (0..width).filter(|&i| free(i)) {
        bits[n] = ((value >> (width - 1 - i)) & 1) as u8;
        n += 1;
    }
    permute(key, domain, tweak, &mut bits[..n], |_| 2);
    let mut result = value;
    let mut next = bits.iter();
    for i in (0..width).filter(|&i| free(i)) {
        let shift = width - 1 - i;
        result &= !(1 << shift);
        if let Some(&bit) = next.next() {
            result |= u128::from(bit) << shift;
        }
    }
    result
}

#[cfg(test)]
mod tests {
    use std::collections::HashSet;

    use super::*;

    fn digits_of(mut x: u32, n: usize) -> Vec<u8> {
        let mut d = vec![0; n];
        for slot in d.iter_mut().rev() {
            *slot = (x % 10) as u8;
            x /= 10;
        }
        d
    }

    #[test]
    fn the_largest_halves_of_every_caller_fit_a_round_input() {
        // Debug builds assert the fit: an IBAN of 30 letters, an IPv6 address as bits,
        // a `national_id` block of 64 digits.
        let key = MaskingKey::new(b"k");
        let (mut letters, mut bits, mut digits) = ([25u8; 30], [1u8; 128], [9u8; 64]);
        permute(&key, "d", b"", &mut letters, |_| 26);
        permute(&key, "d", b"", &mut bits, |_| 2);
        permute(&key, "d", b"", &mut digits, |_| 10);
        assert!(letters.iter().all(|&s| s < 26) && bits.iter().all(|&s| s < 2));
        assert_ne!(digits, [9u8; 64]);
    }

    #[test]
    fn is_a_bijection_on_small_decimal_domains() {
        let key = MaskingKey::new(b"k");
        for n in 1..=4 {
            let size = 10u32.pow(n as u32);
            let mut seen = HashSet::new();
            for x in 0..size {
                let mut d = digits_of(x, n);
                permute(&key, "d", b"t", &mut d, |_| 10);
                assert!(d.iter().all(|&s| s < 10));
                assert!(seen.insert(d), "collision for n={n}");
            }
            assert_eq!(seen.len(), size as usize);
        }
    }

    #[test]
    fn is_a_bijection_on_mixed_radix_domains() {
        let key = MaskingKey::new(b"k");
        let radix = |i: usize| if i.is_multiple_of(2) { 26 } else { 10 };
        let mut seen = HashSet::new();
        for a in 0..26 {
            for b in 0..10 {
                for c in 0..26 {
                    let mut s = [a, b, c];
                    permute(&key, "d", b"", &mut s, radix);
                    assert!(s[0] < 26 && s[1] < 10 && s[2] < 26);
                    assert!(seen.insert(s));
                }
            }
        }
    }

    #[test]
    fn keyed_tweaked_and_deterministic() {
        let k1 = MaskingKey::new(b"k1");
        let k2 = MaskingKey::new(b"k2");
        let run = |key: &MaskingKey, domain: &str, tweak: &[u8]| {
            let mut d = digits_of(123_456, 12);
            permute(key, domain, tweak, &mut d, |_| 10);
            d
        };
        let a = run(&k1, "d", b"DE");
        assert_eq!(a, run(&k1, "d", b"DE"));
        assert_ne!(a, run(&k2, "d", b"DE"));
        assert_ne!(a, run(&k1, "e", b"DE"));
        assert_ne!(a, run(&k1, "d", b"FR"));
    }

    #[test]
    fn bit_permutation_keeps_fixed_bits_and_is_injective() {
        let key = MaskingKey::new(b"k");
        let mut seen = HashSet::new();
        for low in 0..4096u128 {
            let value = (0xAB << 12) | low;
            let out = permute_bits(&key, "d", b"", value, 20, |i| i >= 8);
            assert_eq!(out >> 12, 0xAB);
            assert!(seen.insert(out));
        }
        let wide = permute_bits(&key, "d", b"", u128::MAX, 128, |i| i % 2 == 0);
        assert_eq!(wide & 0x5555, 0x5555);
    }
}
