//! Collusion-resistant fingerprinting: Tardos's probabilistic code in
//! Škorić et al.'s symmetric form, for copies assembled from pre-marked
//! segments (variant A = 0, variant B = 1, one bit per segment).
//!
//! Buyers who pool their copies and mix segments can only choose, at each
//! segment, among the variants they hold (the marking assumption: where
//! all of them hold the same variant they cannot tell it is a mark). A
//! Tardos code makes such a mix still point at them:
//!
//! - each position `i` has a secret bias `p_i` drawn from the arcsine
//!   density on `[t, 1 - t]`; a buyer's bit is 1 with probability `p_i`,
//!   independently. Biases and codewords come from the mark key, so the
//!   origin recomputes any buyer's codeword instead of storing it;
//! - a buyer's accusation score against a pirated sequence `y` sums, over
//!   the positions read, `sqrt((1-p)/p)` where the buyer's bit is 1 and
//!   `y` is 1, `-sqrt(p/(1-p))` where it is 0 and `y` is 1, and the mirror
//!   images where `y` is 0 (the symmetric score);
//! - for an innocent buyer each term has mean 0 and variance 1 and is at
//!   most `M = sqrt((1-t)/t)` in size, so Bernstein's inequality bounds
//!   the chance that the score passes `Z`: `exp(-Z² / (2(m + M Z / 3)))`.
//!   [`Params::threshold`] picks `Z` so that this is `epsilon / users`:
//!   with every buyer checked, the chance that any innocent one is accused
//!   is at most `epsilon`;
//! - the colluders' scores add up to at least about `2m/π` whatever they
//!   do, so the best of `c` averages `2m/(πc)`; [`Params::new`] takes the
//!   length `m` where that clears `Z` with a margin.

use rand_chacha::rand_core::{RngCore, SeedableRng};
use rand_chacha::ChaCha20Rng;

use crate::MarkKey;

/// Why parameters cannot be made.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum FingerprintError {
    #[error("resist between 1 and 64 colluders (asked {0})")]
    Colluders(u32),
    #[error("epsilon must be in (0, 0.5) (asked {0})")]
    Epsilon(f64),
    #[error("there must be at least one buyer")]
    Users,
    #[error("{length} segments are too few for a collusion-resistant code ({need} needed)")]
    TooShort { length: usize, need: usize },
    #[error("a pirated sequence has {got} positions, the code {want}")]
    Length { got: usize, want: usize },
}

/// A code's parameters.
#[derive(Debug, Clone, PartialEq)]
pub struct Params {
    /// How many colluders the code resists.
    pub colluders: u32,
    /// The chance, at most, that tracing accuses any innocent buyer.
    pub epsilon: f64,
    /// How many buyers tracing may check.
    pub users: u64,
    /// Positions (segments) in a codeword.
    pub length: usize,
    /// Biases stay in `[cutoff, 1 - cutoff]`.
    pub cutoff: f64,
}

/// How much longer than the bare requirement the code is made, for the
/// spread of the colluders' scores around their mean.
const MARGIN: f64 = 1.5;

impl Params {
    pub fn new(colluders: u32, epsilon: f64, users: u64) -> Result<Self, FingerprintError> {
        if !(1..=64).contains(&colluders) {
            return Err(FingerprintError::Colluders(colluders));
        }
        if !(epsilon > 0.0 && epsilon < 0.5) {
            return Err(FingerprintError::Epsilon(epsilon));
        }
        if users == 0 {
            return Err(FingerprintError::Users);
        }
        let c = f64::from(colluders);
        let mut p = Params {
            colluders,
            epsilon,
            users,
            length: 0,
            cutoff: 1.0 / (30.0 * c),
        };
        // The shortest length where the colluders' mean score clears the
        // innocent threshold, then the margin.
        let mut m = 64usize;
        while 2.0 * m as f64 / (std::f64::consts::PI * c) < p.threshold(m) {
            m += m / 16 + 1;
        }
        p.length = (m as f64 * MARGIN).ceil() as usize;
        Ok(p)
    }

    /// Parameters for a code of `length` positions fixed by the content
    /// (one per segment it has room for): the most colluders that length
    /// resists at `epsilon` among `users` (at least 1; a length too short
    /// even for one is refused).
    pub fn for_length(length: usize, epsilon: f64, users: u64) -> Result<Self, FingerprintError> {
        let mut best = Params::new(1, epsilon, users)?;
        if best.length > length {
            return Err(FingerprintError::TooShort {
                length,
                need: best.length,
            });
        }
        for c in 2..=64 {
            let p = Params::new(c, epsilon, users)?;
            if p.length > length {
                break;
            }
            best = p;
        }
        best.length = length;
        Ok(best)
    }

    /// The largest a score term can be.
    pub fn term_bound(&self) -> f64 {
        ((1.0 - self.cutoff) / self.cutoff).sqrt()
    }

    /// The score an innocent buyer passes with probability at most
    /// `epsilon / users`, over `read` positions (Bernstein's inequality).
    pub fn threshold(&self, read: usize) -> f64 {
        let l = (self.users as f64 / self.epsilon).ln();
        let b = self.term_bound() * l / 3.0;
        b + (b * b + 2.0 * read as f64 * l).sqrt()
    }
}

/// A code: its biases, from the mark key and the content.
#[derive(Clone)]
pub struct Code {
    params: Params,
    biases: Vec<f64>,
    /// Seeds codewords (derived from the mark key; never shown).
    seed: [u8; 32],
}

impl std::fmt::Debug for Code {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // Never the seed or the biases: they are the code's secret.
        f.debug_struct("Code")
            .field("params", &self.params)
            .finish()
    }
}

/// One buyer's place in a tracing.
#[derive(Debug, Clone, PartialEq)]
pub struct Suspect {
    pub user: u64,
    pub score: f64,
}

/// What tracing a pirated sequence found.
#[derive(Debug, Clone, PartialEq)]
pub struct Tracing {
    /// Every buyer checked, highest score first.
    pub ranked: Vec<Suspect>,
    /// The score above which a buyer is accused.
    pub threshold: f64,
    /// Positions read (not erased).
    pub read: usize,
    /// Those above the threshold.
    pub accused: Vec<u64>,
}

fn uniform(rng: &mut ChaCha20Rng) -> f64 {
    // 53 random bits in [0, 1).
    (rng.next_u64() >> 11) as f64 / (1u64 << 53) as f64
}

impl Code {
    /// The code for `content` under `key`.
    pub fn new(key: &MarkKey, content: u64, params: Params) -> Self {
        let seed = key.derive(format!("tracecast-tardos/v1/{content}").as_bytes());
        let mut rng = ChaCha20Rng::from_seed(
            key.derive(format!("tracecast-tardos-biases/v1/{content}").as_bytes()),
        );
        let t = params.cutoff.sqrt().asin();
        let span = std::f64::consts::FRAC_PI_2 - 2.0 * t;
        let biases = (0..params.length)
            .map(|_| (t + span * uniform(&mut rng)).sin().powi(2))
            .collect();
        Self {
            params,
            biases,
            seed,
        }
    }

    pub fn params(&self) -> &Params {
        &self.params
    }

    /// A buyer's codeword: the variant (false = A, true = B) of each
    /// segment in their copy.
    pub fn codeword(&self, user: u64) -> Vec<bool> {
        let mut seed = self.seed;
        for (s, u) in seed.iter_mut().zip(user.to_le_bytes()) {
            *s ^= u;
        }
        let mut rng = ChaCha20Rng::from_seed(seed);
        // The stream is keyed by the user; the nonce keeps the two uses of
        // the seed (here, and nowhere else) apart.
        rng.set_stream(0x7461_7264_6f73);
        self.biases.iter().map(|&p| uniform(&mut rng) < p).collect()
    }

    /// A buyer's symmetric score against a pirated sequence (`None`: the
    /// segment could not be read).
    pub fn score(&self, codeword: &[bool], pirate: &[Option<bool>]) -> f64 {
        self.biases
            .iter()
            .zip(codeword)
            .zip(pirate)
            .map(|((&p, &x), y)| match y {
                None => 0.0,
                Some(y) => {
                    let agree = x == *y;
                    // The chance of the pirate's bit at this position.
                    let q = if *y { p } else { 1.0 - p };
                    if agree {
                        ((1.0 - q) / q).sqrt()
                    } else {
                        -(q / (1.0 - q)).sqrt()
                    }
                }
            })
            .sum()
    }

    /// Scores every buyer in `users` against `pirate` and accuses those
    /// above the threshold for the positions read.
    pub fn trace(
        &self,
        pirate: &[Option<bool>],
        users: impl IntoIterator<Item = u64>,
    ) -> Result<Tracing, FingerprintError> {
        if pirate.len() != self.params.length {
            return Err(FingerprintError::Length {
                got: pirate.len(),
                want: self.params.length,
            });
        }
        let read = pirate.iter().filter(|y| y.is_some()).count();
        let threshold = self.params.threshold(read);
        let mut ranked: Vec<Suspect> = users
            .into_iter()
            .map(|user| Suspect {
                user,
                score: self.score(&self.codeword(user), pirate),
            })
            .collect();
        ranked.sort_by(|a, b| b.score.total_cmp(&a.score));
        let accused = ranked
            .iter()
            .take_while(|s| s.score > threshold)
            .map(|s| s.user)
            .collect();
        Ok(Tracing {
            ranked,
            threshold,
            read,
            accused,
        })
    }
}

/// Where each segment of a copy takes its variant from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Slot {
    /// Coded payload bit `n` (the payload's coded bits repeat over the
    /// payload slots).
    Payload(usize),
    /// Tardos position `n`.
    Tardos(usize),
}

/// A copy's segments: every fourth carries the buyer's mark payload
/// (ids and keyed tag, convolutionally coded, repeated), so a single
/// leaker's copy names them directly; the rest carry the Tardos codeword,
/// which still points at a colluder when copies are mixed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Layout {
    slots: Vec<Slot>,
}

/// Coded payload bits (ids, tag and the code's tail).
const PAYLOAD_CODED: usize = crate::code::coded_len(crate::payload::PAYLOAD_BITS);

/// The order the payload's coded bits are laid out in: a stride through
/// them, so that content with fewer payload segments than coded bits
/// still carries bits from the whole payload (the user and the tag, not
/// only the ids every buyer through one edge shares), which the Viterbi
/// decoder can fill in around.
fn spread(p: usize) -> usize {
    // 131 is prime and does not divide 348: a permutation.
    (p * 131) % PAYLOAD_CODED
}

impl Layout {
    /// The layout for a Tardos code of `tardos` positions: at least one
    /// whole copy of the coded payload, else a quarter of the segments.
    pub fn new(tardos: usize) -> Self {
        Self::with_counts(PAYLOAD_CODED.max(tardos.div_ceil(3)), tardos)
    }

    fn with_counts(payload: usize, tardos: usize) -> Self {
        let (mut p, mut t) = (0, 0);
        let mut slots = Vec::with_capacity(payload + tardos);
        for k in 0..payload + tardos {
            let payload_turn = (k % 4 == 0 || t == tardos) && p < payload;
            if payload_turn {
                slots.push(Slot::Payload(spread(p % PAYLOAD_CODED)));
                p += 1;
            } else {
                slots.push(Slot::Tardos(t));
                t += 1;
            }
        }
        Self { slots }
    }

    /// The layout for content with room for exactly `segments` segments:
    /// the Tardos length is what is left beside the payload's share (a
    /// quarter, and at least one whole coded payload when there is room).
    pub fn for_segments(segments: usize) -> Self {
        let payload_for = |t: usize| PAYLOAD_CODED.max(t.div_ceil(3));
        let mut tardos = segments.saturating_sub(PAYLOAD_CODED);
        while tardos > 0 && tardos + payload_for(tardos) > segments {
            tardos -= 1;
        }
        // Short content: fewer payload segments than one whole copy.
        Self::with_counts(segments - tardos, tardos)
    }

    /// Positions of the Tardos code in this layout.
    pub fn tardos_len(&self) -> usize {
        self.slots
            .iter()
            .filter(|s| matches!(s, Slot::Tardos(_)))
            .count()
    }

    /// Segments in a copy.
    pub fn len(&self) -> usize {
        self.slots.len()
    }

    pub fn is_empty(&self) -> bool {
        self.slots.is_empty()
    }

    pub fn slots(&self) -> &[Slot] {
        &self.slots
    }

    /// A buyer's variant for each segment.
    pub fn sequence(
        &self,
        code: &Code,
        user: u64,
        payload: &crate::Payload,
        key: &MarkKey,
    ) -> Vec<bool> {
        let coded = crate::code::encode(&payload.to_bits(key));
        let word = code.codeword(user);
        self.slots
            .iter()
            .map(|s| match *s {
                Slot::Payload(n) => coded[n] == 1,
                Slot::Tardos(n) => word[n],
            })
            .collect()
    }

    /// The variants read from a copy split into the payload's soft values
    /// (votes of the repeats, positive for 1) and the Tardos positions.
    pub fn split(&self, read: &[Option<bool>]) -> (Vec<f32>, Vec<Option<bool>>) {
        let mut soft = vec![0f32; PAYLOAD_CODED];
        let mut tardos = vec![None; self.tardos_len()];
        for (slot, v) in self.slots.iter().zip(read) {
            match (*slot, v) {
                (Slot::Payload(n), Some(b)) => soft[n] += if *b { 1.0 } else { -1.0 },
                (Slot::Tardos(n), v) => tardos[n] = *v,
                (Slot::Payload(_), None) => {}
            }
        }
        (soft, tardos)
    }

    /// Reads a copy: the payload directly (a single leaker's ids, when the
    /// tag verifies), and a Tardos tracing over `users` for mixed copies.
    pub fn trace(
        &self,
        code: &Code,
        key: &MarkKey,
        read: &[Option<bool>],
        users: impl IntoIterator<Item = u64>,
    ) -> Result<(crate::code::Decoded, Tracing), FingerprintError> {
        if read.len() != self.len() {
            return Err(FingerprintError::Length {
                got: read.len(),
                want: self.len(),
            });
        }
        let (soft, tardos) = self.split(read);
        let direct = crate::code::decode_payload(&soft, key);
        Ok((direct, code.trace(&tardos, users)?))
    }
}

/// False-accusation bound of the codes content gets by default.
pub const DEFAULT_EPSILON: f64 = 1e-3;
/// How many buyers of one content tracing is sized for by default.
pub const DEFAULT_BUYERS: u64 = 1_000_000;

/// What a content's A/B copies carry: the layout for its number of
/// segments, and the Tardos code for the positions beside the payload
/// (none when the content is too short to resist even one: the payload
/// alone then names a single leaker).
#[derive(Debug, Clone)]
pub struct Scheme {
    pub layout: Layout,
    pub code: Option<Code>,
}

impl Scheme {
    /// The scheme of `content` with room for `segments` segments, at
    /// [`DEFAULT_EPSILON`] among [`DEFAULT_BUYERS`].
    pub fn for_content(key: &MarkKey, content: u64, segments: usize) -> Self {
        let layout = Layout::for_segments(segments);
        let code = Params::for_length(layout.tardos_len(), DEFAULT_EPSILON, DEFAULT_BUYERS)
            .ok()
            .map(|p| Code::new(key, content, p));
        Self { layout, code }
    }

    /// Colluders the content resists (0: payload only).
    pub fn colluders(&self) -> u32 {
        self.code.as_ref().map_or(0, |c| c.params().colluders)
    }

    /// A buyer's variant for each segment (false = A).
    pub fn sequence(&self, user: u64, payload: &crate::Payload, key: &MarkKey) -> Vec<bool> {
        let coded = crate::code::encode(&payload.to_bits(key));
        let word = self.code.as_ref().map_or_else(
            || vec![false; self.layout.tardos_len()],
            |c| c.codeword(user),
        );
        self.layout
            .slots
            .iter()
            .map(|s| match *s {
                Slot::Payload(n) => coded[n] == 1,
                Slot::Tardos(n) => word[n],
            })
            .collect()
    }

    /// Reads a copy: the payload directly, and (with a code) the Tardos
    /// tracing over `users`.
    pub fn trace(
        &self,
        key: &MarkKey,
        read: &[Option<bool>],
        users: impl IntoIterator<Item = u64>,
    ) -> Result<(crate::code::Decoded, Option<Tracing>), FingerprintError> {
        if read.len() != self.layout.len() {
            return Err(FingerprintError::Length {
                got: read.len(),
                want: self.layout.len(),
            });
        }
        let (soft, tardos) = self.layout.split(read);
        let direct = crate::code::decode_payload(&soft, key);
        let tracing = match &self.code {
            Some(c) => Some(c.trace(&tardos, users)?),
            None => None,
        };
        Ok((direct, tracing))
    }
}

/// Whether A/B content of `units` units carries a whole coded payload:
/// shorter content names a single leaker only through the Viterbi
/// decoder's filling in, no better than a direct mark.
pub fn carries_whole_payload(units: usize) -> bool {
    units >= PAYLOAD_CODED
}

/// Decodes the payload of an A/B copy whose content nothing names: the
/// layout depends only on a content's length in segments, not on which
/// content it is, so `read` (the copy's segments as read, as far as the
/// longest candidate) is tried against the layout of each length in
/// `lengths`, the copy's own length `near` first, then outward. The first
/// whose tag verifies gives the payload and the length it decoded at.
/// Layouts of nearby lengths share their start, so that length is a
/// hint: the content is one the payload's buyer bought whose length also
/// decodes (see [`Layout::decodes`]). Each try is a Viterbi decode of the
/// coded payload; a false match is 2^-28 per try
/// ([`crate::payload::chance_match_probability`]).
pub fn payload_by_length(
    key: &MarkKey,
    read: &[Option<bool>],
    near: usize,
    lengths: &[usize],
) -> Option<(usize, crate::code::Decoded)> {
    let mut lengths: Vec<usize> = lengths.iter().copied().filter(|&l| l > 0).collect();
    lengths.sort_by_key(|&l| (l.abs_diff(near), l));
    lengths.dedup();
    lengths.into_iter().find_map(|l| {
        let d = Layout::for_segments(l).decode_payload(key, read);
        d.tag_ok.then_some((l, d))
    })
}

impl Layout {
    /// The payload of `read` under this layout (missing or extra
    /// segments read as nothing).
    pub fn decode_payload(&self, key: &MarkKey, read: &[Option<bool>]) -> crate::code::Decoded {
        let mut fitted = read[..read.len().min(self.len())].to_vec();
        fitted.resize(self.len(), None);
        let (soft, _) = self.split(&fitted);
        crate::code::decode_payload(&soft, key)
    }

    /// Whether `read` carries `payload` under this layout.
    pub fn decodes(&self, key: &MarkKey, read: &[Option<bool>], payload: &crate::Payload) -> bool {
        self.decode_payload(key, read).payload.as_ref() == Some(payload)
    }
}

/// How colluders mix their copies where their variants differ (where they
/// agree they cannot change anything: the marking assumption).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Collusion {
    /// Each segment from a colluder picked at random.
    Random,
    /// Segments taken from each colluder in turn.
    Interleaved,
    /// The variant most of them hold.
    Majority,
    /// The variant fewest of them hold.
    Minority,
    /// Always variant A where they can.
    AllA,
}

impl Collusion {
    /// The pirated sequence `codewords`' holders make. `seed` drives the
    /// random choices.
    pub fn mix(self, codewords: &[Vec<bool>], seed: u64) -> Vec<Option<bool>> {
        let mut rng = ChaCha20Rng::seed_from_u64(seed);
        let len = codewords.first().map_or(0, Vec::len);
        (0..len)
            .map(|i| {
                let ones = codewords.iter().filter(|w| w[i]).count();
                let all = codewords.len();
                if ones == 0 || ones == all {
                    return Some(ones == all);
                }
                Some(match self {
                    Collusion::Random => codewords[(rng.next_u32() as usize) % all][i],
                    Collusion::Interleaved => codewords[i % all][i],
                    Collusion::Majority => 2 * ones > all,
                    Collusion::Minority => 2 * ones < all,
                    Collusion::AllA => false,
                })
            })
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn key() -> MarkKey {
        MarkKey::from_bytes([42; 32])
    }

    #[test]
    fn payload_bits_are_spread_so_a_short_copy_still_decodes() {
        let mut seen = [false; PAYLOAD_CODED];
        for p in 0..PAYLOAD_CODED {
            seen[spread(p)] = true;
        }
        assert!(seen.iter().all(|s| *s));
        // Content with room for 300 of the 348 coded bits: the payload
        // still decodes, tag and all.
        let key = key();
        let payload = crate::Payload {
            content_server: 3,
            edge: 9,
            home: 0,
            user: 77_001,
        };
        let scheme = Scheme::for_content(&key, 5, 300);
        assert!(scheme.code.is_none());
        let seq = scheme.sequence(77_001, &payload, &key);
        let read: Vec<Option<bool>> = seq.iter().map(|b| Some(*b)).collect();
        let (direct, _) = scheme.trace(&key, &read, 0..10).unwrap();
        assert_eq!(direct.payload, Some(payload));
    }

    #[test]
    fn a_payload_is_found_by_length_when_no_content_is_named() {
        let key = key();
        let payload = crate::Payload {
            content_server: 2,
            edge: 5,
            home: 0,
            user: 4_242,
        };
        let copy = |len: usize, keep: usize| -> Vec<Option<bool>> {
            Scheme::for_content(&key, 17, len)
                .sequence(4_242, &payload, &key)
                .into_iter()
                .take(keep)
                .map(Some)
                .collect()
        };
        // (content length, units the copy holds, catalog lengths, found at)
        let cases: [(usize, usize, &[usize], Option<usize>); 6] = [
            (2_000, 2_000, &[500, 1_999, 2_000, 9_000], Some(2_000)),
            (2_000, 2_000, &[2_000], Some(2_000)),
            // An excerpt from the start: the nearest length that decodes.
            (6_000, 2_000, &[300, 6_000], Some(6_000)),
            // No length near enough to lay its payload out.
            (2_000, 2_000, &[300, 700], None),
            (2_000, 2_000, &[], None),
            (2_000, 100, &[2_000], None),
        ];
        for (len, keep, lengths, want) in cases {
            let read = copy(len, keep);
            let got = payload_by_length(&key, &read, keep, lengths);
            assert_eq!(got.as_ref().map(|g| g.0), want, "{len} {keep} {lengths:?}");
            if let Some((l, d)) = got {
                assert_eq!(d.payload, Some(payload));
                assert!(Layout::for_segments(l).decodes(&key, &read, &payload));
            }
        }
        // Under another key nothing verifies.
        let other = MarkKey::from_bytes([7; 32]);
        assert!(payload_by_length(&other, &copy(2_000, 2_000), 2_000, &[2_000]).is_none());
    }

    #[test]
    fn a_layout_fills_exactly_the_segments_the_content_has() {
        for n in [10, 347, 348, 349, 1000, 1392, 1393, 1940, 5000] {
            let l = Layout::for_segments(n);
            assert_eq!(l.len(), n, "{n}");
            let payload = n - l.tardos_len();
            assert!(payload >= PAYLOAD_CODED.min(n), "{n}: {payload}");
            assert!(payload >= l.tardos_len().div_ceil(3), "{n}: {payload}");
        }
        // A content's length decides how many colluders it resists.
        let p = Params::for_length(1500, 1e-3, 10_000).unwrap();
        assert_eq!(p.colluders, 2);
        assert_eq!(p.length, 1500);
        assert_eq!(Params::for_length(3100, 1e-3, 10_000).unwrap().colluders, 4);
        assert!(matches!(
            Params::for_length(20, 1e-3, 10_000),
            Err(FingerprintError::TooShort { .. })
        ));
    }

    #[test]
    fn parameters_grow_with_colluders_and_refuse_nonsense() {
        let p2 = Params::new(2, 1e-3, 10_000).unwrap();
        let p4 = Params::new(4, 1e-3, 10_000).unwrap();
        assert!(p4.length > 3 * p2.length, "{} vs {}", p4.length, p2.length);
        // About (π²/2)·c²·ln(n/ε) with the margin: same order.
        let bare = std::f64::consts::PI.powi(2) / 2.0 * 16.0 * (1e7f64).ln();
        assert!((p4.length as f64) < 3.0 * bare, "{}", p4.length);
        assert!(p4.threshold(p4.length) > p4.threshold(p4.length / 2));
        assert!(Params::new(0, 1e-3, 10).is_err());
        assert!(Params::new(2, 0.0, 10).is_err());
        assert!(Params::new(2, 0.7, 10).is_err());
        assert!(Params::new(2, f64::NAN, 10).is_err());
        assert!(Params::new(2, 1e-3, 0).is_err());
    }

    #[test]
    fn codewords_are_keyed_and_follow_the_biases() {
        let p = Params::new(3, 1e-3, 1000).unwrap();
        let code = Code::new(&key(), 7, p.clone());
        assert_eq!(code.codeword(5), code.codeword(5));
        assert_ne!(code.codeword(5), code.codeword(6));
        let other_content = Code::new(&key(), 8, p.clone());
        assert_ne!(code.codeword(5), other_content.codeword(5));
        let other_key = Code::new(&MarkKey::from_bytes([1; 32]), 7, p.clone());
        assert_ne!(code.codeword(5), other_key.codeword(5));
        // Biases in the cutoff; the mean bit close to the mean bias (1/2).
        assert!(code
            .biases
            .iter()
            .all(|&b| b >= p.cutoff * 0.999 && b <= 1.0 - p.cutoff * 0.999));
        let ones: usize = (0..50u64)
            .map(|u| code.codeword(u).iter().filter(|b| **b).count())
            .sum();
        let mean = ones as f64 / (50 * p.length) as f64;
        assert!((mean - 0.5).abs() < 0.05, "{mean}");
        assert!(!format!("{code:?}").contains("biases"));
    }

    #[test]
    fn a_single_leaker_is_accused_and_erasures_are_skipped() {
        let p = Params::new(2, 1e-3, 1000).unwrap();
        let code = Code::new(&key(), 1, p);
        let leak: Vec<Option<bool>> = code
            .codeword(77)
            .into_iter()
            .enumerate()
            // A third of the segments unreadable.
            .map(|(i, b)| (i % 3 != 0).then_some(b))
            .collect();
        let t = code.trace(&leak, 0..1000).unwrap();
        assert_eq!(t.accused, vec![77]);
        assert_eq!(t.ranked[0].user, 77);
        assert!(t.read < code.params().length);
        assert!(code.trace(&leak[1..], 0..10).is_err());
    }

    #[test]
    fn a_single_leaker_decodes_directly_and_a_mix_still_traces() {
        let key = key();
        let p = Params::new(2, 1e-3, 500).unwrap();
        let code = Code::new(&key, 3, p.clone());
        let layout = Layout::new(p.length);
        let tardos = layout
            .slots()
            .iter()
            .filter(|s| matches!(s, Slot::Tardos(_)))
            .count();
        assert_eq!(tardos, p.length);
        assert!(layout.len() >= p.length + PAYLOAD_CODED);
        let payload = |user: u32| crate::Payload {
            content_server: 7,
            edge: 2,
            home: 0,
            user,
        };
        // One leaker, a fifth of the segments unreadable: named directly.
        let seq = layout.sequence(&code, 41, &payload(41), &key);
        let read: Vec<Option<bool>> = seq
            .iter()
            .enumerate()
            .map(|(i, b)| (i % 5 != 2).then_some(*b))
            .collect();
        let (direct, t) = layout.trace(&code, &key, &read, 0..500).unwrap();
        assert!(direct.tag_ok);
        assert_eq!(direct.payload.unwrap().user, 41);
        assert_eq!(t.accused, vec![41]);
        // Two colluders interleave: the payload no longer names an
        // innocent, and Tardos accuses a colluder.
        let a = layout.sequence(&code, 10, &payload(10), &key);
        let b = layout.sequence(&code, 20, &payload(20), &key);
        let mixed = Collusion::Interleaved.mix(&[a, b], 0);
        let (direct, t) = layout.trace(&code, &key, &mixed, 0..500).unwrap();
        if let Some(named) = direct.payload {
            assert!([10, 20].contains(&named.user), "{named:?}");
        }
        assert!(!t.accused.is_empty());
        assert!(
            t.accused.iter().all(|u| [10, 20].contains(u)),
            "{:?}",
            t.accused
        );
        assert!(layout.trace(&code, &key, &mixed[1..], 0..5).is_err());
    }

    #[test]
    fn an_unmarked_or_random_sequence_accuses_no_one() {
        let p = Params::new(3, 1e-3, 1000).unwrap();
        let code = Code::new(&key(), 2, p.clone());
        let mut rng = ChaCha20Rng::seed_from_u64(3);
        let noise: Vec<Option<bool>> = (0..p.length)
            .map(|_| Some(rng.next_u32() & 1 == 1))
            .collect();
        assert!(code.trace(&noise, 0..1000).unwrap().accused.is_empty());
        let all_a = vec![Some(false); p.length];
        assert!(code.trace(&all_a, 0..1000).unwrap().accused.is_empty());
        let none = vec![None; p.length];
        assert!(code.trace(&none, 0..1000).unwrap().accused.is_empty());
    }
}
