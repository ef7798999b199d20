//! Finding and reading the mark, blind (without the original).
//!
//! 1. Whitened log spectrogram of the mid signal.
//! 2. For a time scale τ (original hops per hop of the file) and a frequency
//!    scale φ, every hop of the file is folded onto its phase within the
//!    block: all repetitions of the block add up, so long files read far
//!    above the noise and a 5-second excerpt still holds one block.
//! 3. The sync cells are correlated at every block offset; the best offsets
//!    are decoded (soft Viterbi) and kept only if the keyed tag verifies.
//! 4. The plain scale (1, 1) is tried first; if it gives no verified mark,
//!    speed changes (time and pitch together, as resampling does) and tempo
//!    changes (time only) from -7% to +7%, and pitch changes (frequency
//!    only) from -3% to +3% (a pitch shift of ±50 cents is ±2.9%), in 0.5%
//!    steps, are searched. More scales do not raise the false-alarm
//!    probability: the number of payloads whose tag is checked is fixed.
//!
//! Steps 1 and 2 run as the audio arrives ([`super::detect_stream`]): a
//! fold is a sum over hops, so a file of any length is read in bounded
//! memory; steps 3 and 4 run on the folds at the end.

use super::analysis::{Spectrogram, WHITEN_BINS};
use super::detect_stream::{DetectPass, StreamDetector};
use super::layout::{
    bin_range, Layout, BANDS, BINS_PER_BAND, BLOCK_HOPS, CODED_BITS, FRAME, HOP, HOPS_PER_SLOT,
};
use super::{check_shape, MarkError, DETECT_RATES, EMBED_RATES};
use crate::code;
use crate::key::MarkKey;
use crate::payload::Payload;

/// Largest speed or tempo change searched, as a fraction.
pub const MAX_SCALE: f32 = 0.07;
/// Largest pitch change (frequency only) searched, as a fraction.
pub const MAX_PITCH: f32 = 0.03;
/// Step of the speed, tempo and pitch search.
pub const SCALE_STEP: f32 = 0.005;
/// Cell readings are limited to this many robust standard deviations.
const CELL_LIMIT: f32 = 2.0;
/// Offsets decoded at the plain scale before the search.
const PLAIN_CANDIDATES: usize = 8;
/// Offsets decoded from the whole search.
const SEARCH_CANDIDATES: usize = 8;
/// Most payloads whose tag is checked per file; bounds the false-alarm
/// probability (see [`false_alarm_probability`]).
pub const MAX_TAG_CHECKS: usize = ANALYSIS_RATES * (PLAIN_CANDIDATES + SEARCH_CANDIDATES);
/// Sample rates the mark is looked for at: the file's own, then 44.1 and
/// 48 kHz (a lossy encoder may have resampled the copy, e.g. MP3 at 32 kbit/s
/// is 16 kHz).
const ANALYSIS_RATES: usize = 3;

/// Probability that an unmarked file (or one marked under another key) is
/// reported as marked: every checked payload must match a 4-bit version and
/// a 24-bit keyed tag by chance.
pub fn false_alarm_probability() -> f64 {
    MAX_TAG_CHECKS as f64 * crate::payload::chance_match_probability()
}

/// What detection found.
#[derive(Debug, Clone, PartialEq)]
pub struct Detection {
    /// The ids, when a mark was found and its tag verified.
    pub payload: Option<Payload>,
    /// Whether the tag verified (a found mark always has `tag_ok`).
    pub tag_ok: bool,
    /// Share of coded bits that agree with the decoded payload, mapped to
    /// 0 (chance) ..1 (all); 0 when nothing was found.
    pub confidence: f32,
    /// Sync correlation of the best candidate, in standard deviations.
    pub sync_z: f32,
    /// Speed factor of the best candidate (1.0 = unchanged).
    pub speed: f32,
    /// Tempo factor of the best candidate (1.0 = unchanged).
    pub tempo: f32,
    /// Pitch factor of the best candidate (1.0 = unchanged).
    pub pitch: f32,
    /// Block offset of the best candidate, in samples of the original.
    pub offset: usize,
}

#[derive(Debug, Clone, Copy, PartialEq)]
pub(super) struct Scale {
    /// Original hops per file hop.
    pub(super) time: f32,
    /// File bin per original bin.
    pub(super) freq: f32,
    pub(super) speed: f32,
    pub(super) tempo: f32,
    pub(super) pitch: f32,
}

impl Scale {
    pub(super) const PLAIN: Scale = Scale {
        time: 1.0,
        freq: 1.0,
        speed: 1.0,
        tempo: 1.0,
        pitch: 1.0,
    };

    /// The block phase (hop within the block of the original) that hop `t`
    /// of the file folds onto.
    #[inline]
    pub(super) fn phase(&self, t: usize) -> usize {
        ((t as f64 * f64::from(self.time)).round() as usize) % BLOCK_HOPS
    }

    /// For each original marked bin `[lo, hi)`, the file's bin it is read from.
    pub(super) fn source_bins(&self, lo: usize, hi: usize) -> Vec<usize> {
        (lo..hi)
            .map(|b| ((b as f32 + 0.5) * self.freq - 0.5).round() as usize)
            .collect()
    }
}

/// Every scale searched: the plain one first, then speed changes (time and
/// pitch together, as resampling does) and tempo changes (time only), from
/// -[`MAX_SCALE`] to +[`MAX_SCALE`] in [`SCALE_STEP`]s, paired by size, then
/// pitch changes (frequency only) up to ±[`MAX_PITCH`].
pub(super) fn search_scales() -> Vec<Scale> {
    let mut scales = vec![Scale::PLAIN];
    let steps = (MAX_SCALE / SCALE_STEP).round() as i32;
    for i in -steps..=steps {
        if i == 0 {
            continue;
        }
        let a = 1.0 + i as f32 * SCALE_STEP;
        scales.push(Scale {
            speed: a,
            time: a,
            freq: a,
            ..Scale::PLAIN
        });
        scales.push(Scale {
            tempo: a,
            time: a,
            ..Scale::PLAIN
        });
    }
    let steps = (MAX_PITCH / SCALE_STEP).round() as i32;
    for i in -steps..=steps {
        if i != 0 {
            let a = 1.0 + i as f32 * SCALE_STEP;
            scales.push(Scale {
                pitch: a,
                freq: a,
                ..Scale::PLAIN
            });
        }
    }
    scales
}

/// The block folded at one scale: cell sums for every block offset.
pub(super) struct Folded {
    pub(super) scale: Scale,
    /// `cells[p * BANDS + band]`: sum of the cell starting at hop phase p.
    pub(super) cells: Vec<f32>,
}

impl Folded {
    /// The cells of a block whose band sums per hop phase are `phase_sum`
    /// (`phase_sum[p * BANDS + band]`): a cell spans [`HOPS_PER_SLOT`]
    /// consecutive phases.
    pub(super) fn from_phase_sums(scale: Scale, phase_sum: &[f32]) -> Self {
        let mut cells = vec![0f32; BLOCK_HOPS * BANDS];
        for p in 0..BLOCK_HOPS {
            for i in 0..HOPS_PER_SLOT {
                let q = (p + i) % BLOCK_HOPS;
                for b in 0..BANDS {
                    cells[p * BANDS + b] += phase_sum[q * BANDS + b];
                }
            }
        }
        Folded { scale, cells }
    }
}

#[derive(Debug, Clone, Copy)]
struct Candidate {
    z: f32,
    offset: usize,
    scale_index: usize,
}

/// Sample rates the mark is looked for at, in order, for a file at
/// `sample_rate`: its own (if a mark can be written at it), then 44.1 and
/// 48 kHz.
pub(super) fn analysis_rates(sample_rate: u32) -> Vec<u32> {
    let mut rates = Vec::with_capacity(ANALYSIS_RATES);
    if EMBED_RATES.contains(&sample_rate) {
        rates.push(sample_rate);
    }
    for r in [44_100, 48_000] {
        if !rates.contains(&r) {
            rates.push(r);
        }
    }
    rates.truncate(ANALYSIS_RATES);
    rates
}

/// Detects a mark in `channels`: two passes of [`StreamDetector`] over the
/// samples (the plain scale at the file's rate, then the whole search).
/// `progress(done, total)` is called as the passes advance.
pub fn detect(
    channels: &[Vec<f32>],
    sample_rate: u32,
    key: &MarkKey,
    progress: &mut dyn FnMut(u64, u64),
) -> Result<Detection, MarkError> {
    check_shape(channels, sample_rate, DETECT_RATES)?;
    /// Samples per channel pushed at once, so the mid is never whole.
    const PIECE: usize = 1 << 16;
    let n = channels[0].len();
    let total = (DetectPass::ALL.len() * n) as u64;
    let mut last = None;
    for (i, pass) in DetectPass::ALL.into_iter().enumerate() {
        let mut detector = StreamDetector::new(channels.len(), sample_rate, key, pass)?;
        let mut start = 0;
        while start < n {
            let end = (start + PIECE).min(n);
            let pieces: Vec<&[f32]> = channels.iter().map(|c| &c[start..end]).collect();
            detector.push(&pieces)?;
            progress((i * n + end) as u64, total);
            start = end;
        }
        let d = detector.finish()?;
        if d.tag_ok {
            progress(total, total);
            return Ok(d);
        }
        last = Some(d);
    }
    progress(total, total);
    Ok(last.expect("at least one pass is made"))
}

/// The bins detection analyses at `sample_rate`: the marked bins
/// `[lo, hi)`, and the `bins` bins from `bin0` that hold them with room for
/// whitening and for the frequency scales tried.
pub(super) fn search_bins(sample_rate: u32) -> (usize, usize, usize, usize) {
    let (lo, hi) = bin_range(sample_rate);
    let margin = ((hi as f32) * MAX_SCALE).ceil() as usize + 2;
    let bin0 = lo.saturating_sub(WHITEN_BINS + margin).max(1);
    let bins = (hi + WHITEN_BINS + margin).min(FRAME / 2) - bin0;
    (lo, hi, bin0, bins)
}

/// The whitened spectrogram detection searches, with room around the
/// marked bins `[lo, hi)` for the frequency scales tried.
fn searchable_spectrogram(signal: &[f32], sample_rate: u32) -> (Spectrogram, usize, usize) {
    let (lo, hi, bin0, bins) = search_bins(sample_rate);
    let mut spec = Spectrogram::compute(signal, bin0, bins, lo..hi);
    spec.whiten();
    (spec, lo, hi)
}

/// What the block folded at each scale (`folds[0]` the plain one) says at
/// one analysis rate: the plain scale's best offsets are decoded first
/// (most copies are not time-scaled), then the best offsets over all the
/// other scales; a verified tag ends the search.
pub(super) fn search_folds(folds: &[Folded], layout: &Layout, key: &MarkKey) -> Detection {
    let mut best: Option<Detection> = None;
    let mut consider = |cand: Candidate| -> bool {
        let d = decode_at(&folds[cand.scale_index], cand, layout, key);
        let better = match &best {
            None => true,
            Some(b) => (d.tag_ok && !b.tag_ok) || (d.tag_ok == b.tag_ok && d.sync_z > b.sync_z),
        };
        if better {
            best = Some(d);
        }
        best.as_ref().is_some_and(|d| d.tag_ok)
    };
    let mut plain = sync_candidates(&folds[0], layout, 0);
    plain.truncate(PLAIN_CANDIDATES);
    if !plain.into_iter().any(&mut consider) {
        let mut all: Vec<Candidate> = Vec::new();
        for (i, f) in folds.iter().enumerate().skip(1) {
            let mut c = sync_candidates(f, layout, i);
            c.truncate(2);
            all.extend(c);
        }
        all.sort_by(|a, b| b.z.total_cmp(&a.z));
        all.truncate(SEARCH_CANDIDATES);
        let _verified = all.into_iter().any(&mut consider);
    }
    best.unwrap_or(Detection {
        payload: None,
        tag_ok: false,
        confidence: 0.0,
        sync_z: 0.0,
        speed: 1.0,
        tempo: 1.0,
        pitch: 1.0,
        offset: 0,
    })
}

/// Folds the spectrogram onto one block at `scale`, adding each hop's band
/// sums as [`super::detect_stream`] does.
fn fold(spec: &Spectrogram, lo: usize, hi: usize, scale: Scale) -> Folded {
    let src_bins = scale.source_bins(lo, hi);
    let mut phase_sum = vec![0f32; BLOCK_HOPS * BANDS];
    let mut band = [0f32; BANDS];
    for t in 0..spec.hops {
        band.fill(0.0);
        for (k, &bin) in src_bins.iter().enumerate() {
            band[k / BINS_PER_BAND] += spec.at(t, bin);
        }
        let p = scale.phase(t);
        for (s, v) in phase_sum[p * BANDS..(p + 1) * BANDS].iter_mut().zip(&band) {
            *s += v;
        }
    }
    Folded::from_phase_sums(scale, &phase_sum)
}

/// The whole-signal detection the streaming one replaced, kept to check it
/// against: the same folds, from one spectrogram of the whole signal.
#[cfg(test)]
pub(super) fn detect_whole(channels: &[Vec<f32>], sample_rate: u32, key: &MarkKey) -> Detection {
    let layout = Layout::new(key);
    let mut signal = super::analysis::mid(channels);
    for s in &mut signal {
        if !s.is_finite() {
            *s = 0.0;
        }
    }
    let mut best: Option<Detection> = None;
    for rate in analysis_rates(sample_rate) {
        let d = search_folds(&folds_whole(&signal, sample_rate, rate), &layout, key);
        if d.tag_ok {
            return d;
        }
        if best.as_ref().is_none_or(|b| d.sync_z > b.sync_z) {
            best = Some(d);
        }
    }
    best.expect("at least one rate is tried")
}

/// The block folded at every searched scale, from the whole mid signal
/// resampled to `rate`.
#[cfg(test)]
pub(super) fn folds_whole(signal: &[f32], sample_rate: u32, rate: u32) -> Vec<Folded> {
    let resampled = super::analysis::resample(signal, sample_rate, rate);
    let (spec, lo, hi) = searchable_spectrogram(&resampled, rate);
    search_scales()
        .into_iter()
        .map(|s| fold(&spec, lo, hi, s))
        .collect()
}

#[inline]
fn cell_at(f: &Folded, offset: usize, slot: u16, band: u16) -> f32 {
    let p = (offset + slot as usize * HOPS_PER_SLOT) % BLOCK_HOPS;
    f.cells[p * BANDS + band as usize]
}

/// Sync correlation at every block offset, best first.
fn sync_candidates(f: &Folded, layout: &Layout, scale_index: usize) -> Vec<Candidate> {
    let mut out: Vec<Candidate> = (0..BLOCK_HOPS)
        .map(|offset| {
            let mut score = 0.0f32;
            let mut energy = 0.0f32;
            for c in layout.sync.iter().flatten() {
                let v = cell_at(f, offset, c.slot, c.band);
                score += f32::from(c.chip) * v;
                energy += v * v;
            }
            let z = if energy > 0.0 {
                score / energy.sqrt()
            } else {
                0.0
            };
            Candidate {
                z,
                offset,
                scale_index,
            }
        })
        .collect();
    out.sort_by(|a, b| b.z.total_cmp(&a.z));
    out
}

fn decode_at(f: &Folded, cand: Candidate, layout: &Layout, key: &MarkKey) -> Detection {
    // A cell far louder than is typical is mostly host (a transient, a
    // note that starts): limit how much any one cell can say.
    let mut magnitudes: Vec<f32> = layout
        .bits
        .iter()
        .flatten()
        .map(|c| cell_at(f, cand.offset, c.slot, c.band).abs())
        .collect();
    let mid = magnitudes.len() / 2;
    let median = *magnitudes.select_nth_unstable_by(mid, f32::total_cmp).1;
    let limit = CELL_LIMIT * 1.4826 * median;
    let mut soft = vec![0f32; CODED_BITS];
    for (bit, cells) in layout.bits.iter().enumerate() {
        soft[bit] = cells
            .iter()
            .map(|c| {
                f32::from(c.chip) * cell_at(f, cand.offset, c.slot, c.band).clamp(-limit, limit)
            })
            .sum();
    }
    let decoded = code::decode_payload(&soft, key);
    // Offset in samples of the original timeline, for diagnostics.
    let offset = (BLOCK_HOPS - cand.offset) % BLOCK_HOPS * HOP;
    Detection {
        payload: decoded.payload,
        tag_ok: decoded.tag_ok,
        confidence: decoded.confidence,
        sync_z: cand.z,
        speed: f.scale.speed,
        tempo: f.scale.tempo,
        pitch: f.scale.pitch,
        offset,
    }
}

/// Where a copy's block grid was found, and what each unit of it read.
#[derive(Debug, Clone, PartialEq)]
pub struct UnitReading {
    /// Per unit: the sum of chip × cell value over the unit's cells
    /// (positive: variant B), 0 where the copy has no audio for it.
    pub soft: Vec<f32>,
    /// Sync correlation of the grid found, in standard deviations.
    pub sync_z: f32,
    /// Speed factor found (1.0 = unchanged).
    pub speed: f32,
    /// Tempo factor found (1.0 = unchanged).
    pub tempo: f32,
    /// Pitch factor found (1.0 = unchanged).
    pub pitch: f32,
    /// Where block 0 starts in the copy, in hops of the original
    /// (negative: the copy lost its first hops).
    pub start_hops: isize,
}

/// Least sync correlation (in standard deviations) a grid must reach
/// before units are read off it.
pub const UNIT_SYNC_Z: f32 = 6.0;

/// Finds the block grid by its sync cells (plain scale first, then the
/// speed and tempo search) and reads, for each of `units` units of
/// `unit_hops` hops, the sum over its cells (`unit_cells[u % per block]`).
/// The copy must start within half a block of the original's start.
pub(crate) fn read_units(
    signal: &[f32],
    sample_rate: u32,
    layout: &Layout,
    unit_cells: &[Vec<super::layout::Cell>],
    unit_hops: usize,
    units: usize,
    progress: &mut dyn FnMut(u64, u64),
) -> Option<UnitReading> {
    let (spec, lo, hi) = searchable_spectrogram(signal, sample_rate);
    let scales = search_scales();
    let total = scales.len() as u64;
    let plain = Scale::PLAIN;
    let mut best = (
        plain,
        sync_candidates(&fold(&spec, lo, hi, plain), layout, 0)[0],
    );
    progress(1, total);
    if best.1.z < 2.0 * UNIT_SYNC_Z {
        for (n, s) in scales.into_iter().enumerate().skip(1) {
            let c = sync_candidates(&fold(&spec, lo, hi, s), layout, 0)[0];
            if c.z > best.1.z {
                best = (s, c);
            }
            progress(n as u64 + 1, total);
        }
    }
    progress(total, total);
    let (scale, cand) = best;
    if cand.z < UNIT_SYNC_Z {
        return None;
    }
    let start = if cand.offset > BLOCK_HOPS / 2 {
        cand.offset as isize - BLOCK_HOPS as isize
    } else {
        cand.offset as isize
    };
    // Band sums per hop of the original timeline.
    let hops = units * unit_hops;
    let src_bins = scale.source_bins(lo, hi);
    let mut rows = vec![0f32; hops * BANDS];
    let mut seen = vec![false; hops];
    for t in 0..spec.hops {
        let h = (t as f64 * f64::from(scale.time)).round() as isize - start;
        if h < 0 || h as usize >= hops {
            continue;
        }
        let h = h as usize;
        seen[h] = true;
        let row = &mut rows[h * BANDS..(h + 1) * BANDS];
        for (k, &bin) in src_bins.iter().enumerate() {
            row[k / BINS_PER_BAND] += spec.at(t, bin);
        }
    }
    let per_block = unit_cells.len();
    let cell = |u: usize, c: &super::layout::Cell| -> f32 {
        let h0 = (u / per_block) * BLOCK_HOPS + c.slot as usize * HOPS_PER_SLOT;
        (h0..(h0 + HOPS_PER_SLOT).min(hops))
            .map(|h| rows[h * BANDS + c.band as usize])
            .sum()
    };
    // As in decoding: no single loud cell may say too much.
    let mut magnitudes: Vec<f32> = (0..units)
        .filter(|&u| seen[u * unit_hops])
        .flat_map(|u| unit_cells[u % per_block].iter().map(move |c| (u, *c)))
        .map(|(u, c)| cell(u, &c).abs())
        .collect();
    if magnitudes.is_empty() {
        return None;
    }
    let mid = magnitudes.len() / 2;
    let median = *magnitudes.select_nth_unstable_by(mid, f32::total_cmp).1;
    let limit = CELL_LIMIT * 1.4826 * median;
    let soft = (0..units)
        .map(|u| {
            if !seen[u * unit_hops] {
                return 0.0;
            }
            unit_cells[u % per_block]
                .iter()
                .map(|c| f32::from(c.chip) * cell(u, c).clamp(-limit, limit))
                .sum()
        })
        .collect();
    Some(UnitReading {
        soft,
        sync_z: cand.z,
        speed: scale.speed,
        tempo: scale.tempo,
        pitch: scale.pitch,
        start_hops: start,
    })
}
