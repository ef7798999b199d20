//! Writing the mark into PCM.
//!
//! Each cell's bins are scaled by a small gain (a fraction of a dB) whose
//! sign is the cell's chip times its coded bit. The gain is informed by the
//! host: the embedder measures what the detector will read for every coded
//! bit in every block and raises that bit's gain until the bit reads with a
//! margin, capped for inaudibility (host-interference rejection, in the
//! spirit of improved spread spectrum). Every channel gets the same gains,
//! so a mono downmix carries the same mark.

use super::layout::{Cell, Layout};
use super::stream::StreamEmbedder;
use super::{check_input, MarkError};
use crate::code;
use crate::key::MarkKey;
use crate::payload::Payload;

/// How strongly to mark. The defaults were tuned on real music against the
/// attacks in the benchmark (see the crate docs).
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct EmbedConfig {
    /// Mean whitened level each slot's sync cells must read at, dB.
    pub sync_db: f32,
    /// Least gain of payload cells, dB.
    pub min_db: f32,
    /// Most gain of any cell, dB.
    pub max_db: f32,
    /// Most gain per unit of weight (a cell of mean level), dB: bounds what
    /// a group that reads badly may take from loud cells.
    pub max_unit_db: f32,
    /// Mean whitened level each coded bit must read at, per cell, dB.
    pub target_db: f32,
    /// How much quieter cells are favoured: a cell's gain is scaled by
    /// (reference level / cell level)^tilt, so the mark's energy goes where
    /// it costs the least signal-to-noise (0 = same gain everywhere).
    pub tilt: f32,
    /// Largest factor by which tilt may raise (or lower) a cell's gain.
    pub max_weight: f32,
    /// Least signal-to-noise ratio of the mark in any block, dB: a block
    /// whose gains would make the mark louder is marked more weakly. (Not
    /// applied to A/B variants, whose two versions of a block must keep
    /// the same sync gains.)
    pub min_snr_db: f32,
}

impl EmbedConfig {
    /// Every dB figure scaled by `factor` (tilt unchanged).
    pub fn scaled(&self, factor: f32) -> Self {
        EmbedConfig {
            sync_db: self.sync_db * factor,
            min_db: self.min_db * factor,
            max_db: self.max_db * factor,
            max_unit_db: self.max_unit_db * factor,
            target_db: self.target_db * factor,
            tilt: self.tilt,
            max_weight: self.max_weight,
            // A stronger mark is a louder one: the ceiling moves with it.
            min_snr_db: self.min_snr_db - 20.0 * factor.max(f32::MIN_POSITIVE).log10(),
        }
    }
}

impl Default for EmbedConfig {
    fn default() -> Self {
        EmbedConfig {
            sync_db: 0.81,
            min_db: 0.33,
            max_db: 2.52,
            max_unit_db: 1.89,
            target_db: 1.63,
            tilt: 0.85,
            max_weight: 16.0,
            min_snr_db: 29.7,
        }
    }
}

/// What embedding did.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct EmbedReport {
    /// Blocks written (a block is 96 × 2048 samples).
    pub blocks: usize,
    /// Signal-to-noise ratio of marked vs original, dB, over all channels.
    pub snr_db: f64,
}

/// Share of a cell's gain the detector sees after the STFT round trip and
/// whitening (measured; edges of a cell leak into neighbours).
pub(crate) const SEEN: f32 = 0.79;

/// Marks `channels` in place. `progress(done, total)` is called now and then.
pub fn embed(
    channels: &mut [Vec<f32>],
    sample_rate: u32,
    key: &MarkKey,
    payload: &Payload,
    config: &EmbedConfig,
    progress: &mut dyn FnMut(u64, u64),
) -> Result<EmbedReport, MarkError> {
    check_input(channels, sample_rate)?;
    let layout = Layout::new(key);
    let signs = payload_signs(key, payload);
    let groups = payload_groups(&layout, &signs, config);
    embed_groups(channels, sample_rate, &groups, None, config, progress)
}

/// The coded payload as ±1.
pub(crate) fn payload_signs(key: &MarkKey, payload: &Payload) -> Vec<f32> {
    code::encode(&payload.to_bits(key))
        .iter()
        .map(|&b| if b == 1 { 1.0 } else { -1.0 })
        .collect()
}

/// Groups of cells whose sums the detector reads: a slot's sync cells
/// (sign +1) and each coded bit's cells (sign of the bit).
pub(crate) fn payload_groups<'a>(
    layout: &'a Layout,
    signs: &[f32],
    config: &EmbedConfig,
) -> Vec<Group<'a>> {
    layout
        .sync
        .iter()
        .map(|cells| (&cells[..], 1.0, config.sync_db))
        .chain(
            layout
                .bits
                .iter()
                .zip(signs)
                .map(|(cells, &s)| (&cells[..], s, config.target_db)),
        )
        .collect()
}

/// A group of cells read together: its cells, its sign, and the level per
/// cell it must read at.
pub(crate) type Group<'a> = (&'a [Cell], f32, f32);

/// Guard hops: in the first and last hop of every run of `unit_hops`,
/// only the sync cells (the first `sync_groups` groups) are marked, so
/// two variants of the same audio have identical samples around every
/// unit boundary.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Guard {
    pub unit_hops: usize,
    pub sync_groups: usize,
}

impl Guard {
    pub(crate) fn holds(&self, t: usize) -> bool {
        let r = t % self.unit_hops;
        r == 0 || r == self.unit_hops - 1
    }
}

/// Samples fed to the streaming embedder at a time by the in-memory path.
const PIECE: usize = 1 << 16;

/// Marks `channels` in place with the given groups, each block alike: the
/// streaming embedder fed from memory, piece by piece.
pub(crate) fn embed_groups(
    channels: &mut [Vec<f32>],
    sample_rate: u32,
    groups: &[Group],
    guard: Option<Guard>,
    config: &EmbedConfig,
    progress: &mut dyn FnMut(u64, u64),
) -> Result<EmbedReport, MarkError> {
    check_input(channels, sample_rate)?;
    let len = channels[0].len();
    let mut embedder =
        StreamEmbedder::with_groups(channels.len(), sample_rate, groups, guard, config)?;
    let mut written = 0;
    let mut piece: Vec<Vec<f32>> = vec![Vec::with_capacity(PIECE); channels.len()];
    let mut pos = 0;
    while pos < len {
        let end = (pos + PIECE).min(len);
        for (p, ch) in piece.iter_mut().zip(channels.iter()) {
            p.clear();
            p.extend_from_slice(&ch[pos..end]);
        }
        let refs: Vec<&[f32]> = piece.iter().map(Vec::as_slice).collect();
        embedder.push(&refs, &mut |out| {
            put(channels, written, out);
            written += out[0].len();
        })?;
        pos = end;
        progress(pos as u64, len as u64);
    }
    let report = embedder.finish(&mut |out| {
        put(channels, written, out);
        written += out[0].len();
    })?;
    debug_assert_eq!(written, len);
    progress(len as u64, len as u64);
    Ok(report)
}

/// Writes marked samples back over the input from sample `at`.
fn put(channels: &mut [Vec<f32>], at: usize, marked: &[&[f32]]) {
    for (ch, m) in channels.iter_mut().zip(marked) {
        ch[at..at + m.len()].copy_from_slice(m);
    }
}

/// The energy a hop's difference spectrum will have: the marked bins of
/// `row` (bins from `row_bin0`) times their cell's factor, squared (the
/// streaming and the reference embedder add it up alike): band by band, a
/// band's few bins in `f32`, the bands in `f64` (one `f64` addition per bin
/// waited on the one before).
#[inline(always)]
pub(crate) fn marked_energy(
    row: &[realfft::num_complex::Complex32],
    row_bin0: usize,
    lo: usize,
    hi: usize,
    factors: &[f32],
) -> f64 {
    let mut sum = 0f64;
    let bins = &row[lo - row_bin0..hi - row_bin0];
    for (band, f) in bins.chunks(super::layout::BINS_PER_BAND).zip(factors) {
        let e: f32 = band.iter().map(|x| x.norm_sqr()).sum();
        sum += f64::from(e * f * f);
    }
    sum
}

/// The factor a block's cell factors are scaled by so its mark is at least
/// `min_snr_db` below its sound (1 when it is already).
///
/// `signal` is the block's energy over all channels; `mid` and `sides` the
/// [`marked_energy`] of its hops in the mid pass and, summed, in the side
/// passes. The difference a hop synthesises has (2 / FRAME) times its
/// one-sided spectrum's energy (Parseval; the analysis and synthesis
/// windows' squares add up to one), and each channel gets the mid's
/// difference plus its own pass's (stereo: plus and minus the side's).
pub(crate) fn snr_ceiling(
    signal: f64,
    mid: f64,
    sides: f64,
    channels: usize,
    min_snr_db: f32,
) -> f32 {
    let passes = match channels {
        1 => mid,
        2 => 2.0 * (mid + sides),
        n => n as f64 * mid + sides,
    };
    let diff = passes * 2.0 / super::layout::FRAME as f64;
    if diff <= 0.0 || signal <= 0.0 {
        return 1.0;
    }
    let snr = 10.0 * (signal / diff).log10();
    if snr >= f64::from(min_snr_db) {
        1.0
    } else {
        10f64.powf((snr - f64::from(min_snr_db)) / 20.0) as f32
    }
}

/// Sum of cell gains (dB) for a unit gain: each cell gets unit × weight,
/// capped at `max_db`.
fn total_gain(unit: f32, weights: &[f32], config: &EmbedConfig) -> f32 {
    weights.iter().map(|w| (unit * w).min(config.max_db)).sum()
}

/// The unit gain whose total is `wanted` dB (bisection; the total is
/// monotone in the unit), within `[min_db, max_unit_db]`.
pub(crate) fn solve_unit(wanted: f32, weights: &[f32], config: &EmbedConfig) -> f32 {
    let (mut a, mut b) = (config.min_db, config.max_unit_db);
    if total_gain(a, weights, config) >= wanted {
        return a;
    }
    if total_gain(b, weights, config) <= wanted {
        return b;
    }
    for _ in 0..24 {
        let m = 0.5 * (a + b);
        if total_gain(m, weights, config) < wanted {
            a = m;
        } else {
            b = m;
        }
    }
    b
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::audio::analysis::{Spectrogram, WHITEN_BINS};
    use crate::audio::layout::{bin_range, BINS_PER_BAND, BLOCK_HOPS, HOP, HOPS_PER_SLOT};
    use rand::{Rng, SeedableRng};

    /// Measures how much of a cell's gain the detector's reading sees.
    #[test]
    fn seen_fraction_matches_the_constant() {
        let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(9);
        let sr = 44_100;
        let len = BLOCK_HOPS * HOP * 3;
        let x: Vec<f32> = (0..len).map(|_| rng.gen_range(-0.3f32..0.3)).collect();
        let (lo, hi) = bin_range(sr);
        let bin0 = lo.saturating_sub(WHITEN_BINS);
        let bins = hi + WHITEN_BINS - bin0;
        let before = {
            let mut s = Spectrogram::compute(&x, bin0, bins, lo..hi);
            s.whiten();
            s
        };
        let mut y = vec![x.clone()];
        let payload = Payload {
            content_server: 1,
            edge: 2,
            home: 3,
            user: 4,
        };
        let key = MarkKey::from_bytes([7; 32]);
        let cfg = EmbedConfig {
            sync_db: 1.0,
            min_db: 1.0,
            max_db: 1.0,
            max_unit_db: 1.0,
            target_db: 0.0,
            tilt: 0.0,
            max_weight: 1.0,
            min_snr_db: 0.0,
        };
        embed(&mut y, sr, &key, &payload, &cfg, &mut |_, _| {}).unwrap();
        let after = {
            let mut s = Spectrogram::compute(&y[0], bin0, bins, lo..hi);
            s.whiten();
            s
        };
        let layout = Layout::new(&key);
        let mut sum = 0.0;
        let mut n = 0.0;
        for block in 0..3 {
            for c in layout.sync.iter().flatten() {
                let t0 = block * BLOCK_HOPS + c.slot as usize * HOPS_PER_SLOT;
                let mut d = 0.0;
                for t in t0..t0 + HOPS_PER_SLOT {
                    for j in 0..BINS_PER_BAND {
                        let bin = lo + c.band as usize * BINS_PER_BAND + j;
                        d += after.at(t, bin) - before.at(t, bin);
                    }
                }
                sum += f32::from(c.chip) * d / 16.0;
                n += 1.0;
            }
        }
        let seen = sum / n;
        eprintln!("seen fraction {seen}");
        assert!((seen - SEEN).abs() < 0.15, "seen {seen}");
    }

    /// Dense, loud noise is where the informed gains grow most: the
    /// ceiling keeps the mark at least 30 dB under the sound (mono and
    /// stereo, whose side pass the estimate counts too), it would be
    /// louder without, and the mark still reads.
    #[test]
    fn the_mark_stays_under_its_snr_ceiling_on_dense_loud_noise() {
        let sr = 44_100;
        let key = MarkKey::from_bytes([11; 32]);
        let payload = Payload {
            content_server: 2,
            edge: 3,
            home: 0,
            user: 77,
        };
        for channels in [1usize, 2] {
            let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(channels as u64);
            let noise: Vec<Vec<f32>> = (0..channels)
                .map(|_| {
                    (0..sr as usize * 20)
                        .map(|_| rng.gen_range(-0.5f32..0.5))
                        .collect()
                })
                .collect();
            let snr = |config: &EmbedConfig| {
                let mut y = noise.clone();
                let r = embed(&mut y, sr, &key, &payload, config, &mut |_, _| {}).unwrap();
                (r.snr_db, y)
            };
            let (capped, marked) = snr(&EmbedConfig::default());
            let (free, _) = snr(&EmbedConfig {
                min_snr_db: -100.0,
                ..EmbedConfig::default()
            });
            assert!(capped >= 30.0, "{channels} channel(s): SNR {capped:.1} dB");
            assert!(
                free < capped - 1.0,
                "{channels} channel(s): {free:.1} vs {capped:.1} dB"
            );
            let d = crate::audio::detect(&marked, sr, &key, &mut |_, _| {}).unwrap();
            assert_eq!(d.payload, Some(payload), "{channels} channel(s)");
        }
    }

    #[test]
    fn the_ceiling_scales_only_blocks_above_it() {
        // (signal, mid, sides, channels, min) -> factor
        let frame = crate::audio::layout::FRAME as f64;
        let cases = [
            // Mono: diff = mid * 2 / FRAME; 40 dB under: untouched.
            (1.0, 1e-4 * frame / 2.0, 0.0, 1, 30.0, 1.0),
            // 20 dB under a 30 dB ceiling: amplitudes scaled by 10^(-10/20).
            (1.0, 1e-2 * frame / 2.0, 0.0, 1, 30.0, 0.316_227_8),
            // Stereo: twice mid plus side.
            (
                1.0,
                0.25e-2 * frame / 2.0,
                0.25e-2 * frame / 2.0,
                2,
                30.0,
                0.316_227_8,
            ),
            // Silence or no mark: nothing to scale.
            (0.0, 1.0, 0.0, 1, 30.0, 1.0),
            (1.0, 0.0, 0.0, 2, 30.0, 1.0),
        ];
        for (i, (signal, mid, sides, channels, min, want)) in cases.into_iter().enumerate() {
            let got = snr_ceiling(signal, mid, sides, channels, min);
            assert!((got - want).abs() < 1e-4, "case {i}: {got} vs {want}");
        }
    }
}
