//! Error correction: a terminated convolutional code (constraint length 9,
//! rate 1/3, generators 557/663/711 octal) with a soft-decision Viterbi
//! decoder.
//!
//! Soft values are log-likelihood-like numbers: positive means "1 more
//! likely", their size how sure. Decisions are taken only at the end, on the
//! path that agrees best with all the soft values at once.

/// Constraint length.
const K: usize = 9;
const STATES: usize = 1 << (K - 1);
const GENERATORS: [u32; 3] = [0o557, 0o663, 0o711];
/// Coded bits per input bit.
pub const RATE_INV: usize = GENERATORS.len();
/// Zero bits appended so the trellis ends in state 0.
pub const TAIL: usize = K - 1;

/// Number of coded bits for `n` input bits.
pub const fn coded_len(n: usize) -> usize {
    (n + TAIL) * RATE_INV
}

fn parity(x: u32) -> u8 {
    (x.count_ones() & 1) as u8
}

/// Encodes `bits` (0/1) into `coded_len(bits.len())` coded bits.
pub fn encode(bits: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(coded_len(bits.len()));
    let mut reg: u32 = 0;
    for &b in bits.iter().chain(std::iter::repeat_n(&0u8, TAIL)) {
        reg = ((reg << 1) | u32::from(b & 1)) & ((1 << K) - 1);
        for g in GENERATORS {
            out.push(parity(reg & g));
        }
    }
    out
}

/// Decodes soft values (`coded_len(n)` of them) into `n` bits.
///
/// # Panics
/// If `soft.len()` is not `coded_len(n)` for some `n`; callers size it from
/// the same layout.
pub fn decode(soft: &[f32]) -> Vec<u8> {
    assert!(soft.len().is_multiple_of(RATE_INV) && soft.len() >= coded_len(0));
    let steps = soft.len() / RATE_INV;
    let n = steps - TAIL;
    // Expected coded symbols (±1) leaving each state for input 0 and 1.
    let mut out_sym = [[[0f32; RATE_INV]; 2]; STATES];
    for (s, syms) in out_sym.iter_mut().enumerate() {
        for (b, sym) in syms.iter_mut().enumerate() {
            let reg = ((s as u32) << 1) | b as u32;
            for (i, g) in GENERATORS.iter().enumerate() {
                sym[i] = if parity(reg & g) == 1 { 1.0 } else { -1.0 };
            }
        }
    }
    let mut metric = [f32::NEG_INFINITY; STATES];
    metric[0] = 0.0;
    let mut decisions = vec![[0u8; STATES]; steps];
    for step in 0..steps {
        let r = &soft[step * RATE_INV..(step + 1) * RATE_INV];
        let mut next = [f32::NEG_INFINITY; STATES];
        for s in 0..STATES {
            if metric[s] == f32::NEG_INFINITY {
                continue;
            }
            let inputs: &[usize] = if step >= n { &[0] } else { &[0, 1] };
            for &b in inputs {
                let sym = &out_sym[s][b];
                let m = metric[s] + sym[0] * r[0] + sym[1] * r[1] + sym[2] * r[2];
                let ns = ((s << 1) | b) & (STATES - 1);
                if m > next[ns] {
                    next[ns] = m;
                    // Remember the oldest register bit of the predecessor:
                    // with it and ns the predecessor is known.
                    decisions[step][ns] = (s >> (K - 2)) as u8;
                }
            }
        }
        metric = next;
    }
    // Trace back from state 0 (the tail forces it).
    let mut state = 0usize;
    let mut bits = vec![0u8; steps];
    for step in (0..steps).rev() {
        bits[step] = (state & 1) as u8;
        let high = decisions[step][state] as usize;
        state = (state >> 1) | (high << (K - 2));
    }
    bits.truncate(n);
    bits
}

#[cfg(test)]
mod tests {
    use super::*;
    use rand::{Rng, SeedableRng};

    #[test]
    fn clean_round_trip() {
        let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(1);
        let bits: Vec<u8> = (0..108).map(|_| rng.gen_range(0..2)).collect();
        let coded = encode(&bits);
        assert_eq!(coded.len(), coded_len(108));
        let soft: Vec<f32> = coded
            .iter()
            .map(|&c| if c == 1 { 1.0 } else { -1.0 })
            .collect();
        assert_eq!(decode(&soft), bits);
    }

    #[test]
    fn corrects_noise_and_erasures() {
        let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(2);
        let mut failures = 0;
        for _ in 0..200 {
            let bits: Vec<u8> = (0..108).map(|_| rng.gen_range(0..2)).collect();
            let coded = encode(&bits);
            // Es/N0 around 0 dB plus 15% of symbols erased.
            let soft: Vec<f32> = coded
                .iter()
                .map(|&c| {
                    if rng.gen_bool(0.15) {
                        return 0.0;
                    }
                    let s = if c == 1 { 1.0 } else { -1.0 };
                    let noise: f32 = (0..12).map(|_| rng.gen::<f32>()).sum::<f32>() - 6.0;
                    s + 0.7 * noise
                })
                .collect();
            if decode(&soft) != bits {
                failures += 1;
            }
        }
        assert!(failures <= 2, "{failures} of 200 blocks failed");
    }

    #[test]
    fn one_wrong_hard_symbol_in_ten_is_corrected() {
        let bits: Vec<u8> = (0..108).map(|i| ((i * 7 + 3) % 5 % 2) as u8).collect();
        let coded = encode(&bits);
        let soft: Vec<f32> = coded
            .iter()
            .enumerate()
            .map(|(i, &c)| {
                let s = if c == 1 { 1.0 } else { -1.0 };
                if i % 10 == 3 {
                    -s
                } else {
                    s
                }
            })
            .collect();
        assert_eq!(decode(&soft), bits);
    }
}

/// What soft decoding of a payload gave.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Decoded {
    /// The ids, when version and tag verify under the key.
    pub payload: Option<crate::Payload>,
    /// Whether version and tag verify.
    pub tag_ok: bool,
    /// Share of coded bits that agree with the decoded payload, mapped to
    /// 0 (chance) ..1 (all); 0 unless the tag verifies.
    pub confidence: f32,
}

/// Decodes the soft values of a coded payload and checks its tag: the one
/// rule every mark (audio, picture) accepts a payload by.
pub fn decode_payload(soft: &[f32], key: &crate::MarkKey) -> Decoded {
    let bits = decode(soft);
    let recoded = encode(&bits);
    let agree = soft
        .iter()
        .zip(&recoded)
        .filter(|(s, &r)| (**s > 0.0) == (r == 1))
        .count();
    let confidence = ((agree as f32 / soft.len() as f32 - 0.5) * 2.0).clamp(0.0, 1.0);
    let (payload, ok) = match crate::Payload::from_bits(&bits, key) {
        Some((p, ok)) => (ok.then_some(p), ok),
        None => (None, false),
    };
    Decoded {
        payload,
        tag_ok: ok,
        confidence: if ok { confidence } else { 0.0 },
    }
}
