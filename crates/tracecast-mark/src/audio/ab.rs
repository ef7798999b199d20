//! A/B variants: the audio marked twice at ingest, so that an edge makes a
//! buyer's copy by choosing, unit by unit, bytes from one variant or the
//! other (no signal processing per buyer).
//!
//! * Unit: two slots of the block grid (8 hops, 4096 samples: 93 ms at
//!   44.1 kHz). A block holds 48 units. Every payload cell of a unit
//!   carries the unit's one bit: sign = chip × (−1 for variant A, +1 for
//!   B). The sync cells are those of the direct mark and the same in both
//!   variants, so the grid is found as usual.
//! * Guard: in the first and last hop of every unit only the sync cells
//!   are marked. The frames around a unit boundary are then the same in
//!   both variants, and so are the samples `[start, start + HOP)` of every
//!   unit: a copy switches variant at [`CUT`] samples into a unit and the
//!   join is sample-exact, with no click.
//! * A buyer's copy: unit `u` comes from the variant named by position `u`
//!   of their sequence ([`crate::fingerprint::Scheme`]): a quarter of the
//!   units carry their coded payload (a single leaker is named directly),
//!   the rest their Tardos codeword (a mix of copies still points at a
//!   colluder).
//! * Reading: the grid's sync is searched as in [`super::detect`] (with
//!   speed and tempo), then every unit's cells are summed off it. The copy
//!   must start within half a block (2.2 s) of the original start: the
//!   unit number is its place on the timeline.

use super::analysis::mid;
use super::detect::{read_units, UnitReading};
use super::embed::{embed_groups, EmbedConfig, EmbedReport, Group, Guard};
use super::layout::{Cell, Layout, BLOCK_HOPS, HOP, HOPS_PER_SLOT, SLOTS};
use super::{check_shape, MarkError, DETECT_RATES, EMBED_RATES};
use crate::key::MarkKey;

/// Slots per unit.
pub const UNIT_SLOTS: usize = 2;
/// Hops per unit.
pub const UNIT_HOPS: usize = UNIT_SLOTS * HOPS_PER_SLOT;
/// Samples per unit, at the audio's own rate.
pub const UNIT_SAMPLES: usize = UNIT_HOPS * HOP;
/// Units per block.
pub const UNITS_PER_BLOCK: usize = SLOTS / UNIT_SLOTS;
/// Where a copy switches variant: this many samples past a unit's start,
/// in the middle of the span both variants share.
pub const CUT: usize = HOP / 2;

/// Units in audio of `frames` samples per channel.
pub fn units(frames: usize) -> usize {
    if frames == 0 {
        0
    } else {
        1 + frames.saturating_sub(CUT + 1) / UNIT_SAMPLES
    }
}

/// First sample of unit `u` in a copy: 0 for the first, else
/// `u × UNIT_SAMPLES + CUT`.
pub fn unit_start(u: usize) -> usize {
    if u == 0 {
        0
    } else {
        u * UNIT_SAMPLES + CUT
    }
}

/// The unit holding sample `s` of a copy (the inverse of
/// [`unit_start`]; past the last unit, a number past it).
pub fn unit_at(s: usize) -> usize {
    if s < UNIT_SAMPLES + CUT {
        0
    } else {
        (s - CUT) / UNIT_SAMPLES
    }
}

/// The two variants of an audio.
#[derive(Debug, Clone)]
pub struct Variants {
    /// Every unit reads "A" (bit 0).
    pub a: Vec<Vec<f32>>,
    /// Every unit reads "B" (bit 1).
    pub b: Vec<Vec<f32>>,
    /// Units in the audio.
    pub units: usize,
    pub report_a: EmbedReport,
    pub report_b: EmbedReport,
}

/// Each unit's cells (every payload cell of its two slots), for the units
/// of one block.
fn unit_cells(layout: &Layout) -> Vec<Vec<Cell>> {
    let mut out = vec![Vec::new(); UNITS_PER_BLOCK];
    for c in layout.bits.iter().flatten() {
        out[c.slot as usize / UNIT_SLOTS].push(*c);
    }
    for cells in &mut out {
        cells.sort_by_key(|c| (c.slot, c.band));
    }
    out
}

/// Marks `channels` twice: variant A and variant B.
pub fn embed_variants(
    channels: &[Vec<f32>],
    sample_rate: u32,
    key: &MarkKey,
    config: &EmbedConfig,
    progress: &mut dyn FnMut(u64, u64),
) -> Result<Variants, MarkError> {
    super::check_input(channels, sample_rate)?;
    debug_assert!(EMBED_RATES.contains(&sample_rate));
    let layout = Layout::new(key);
    let cells = unit_cells(&layout);
    let guard = Guard {
        unit_hops: UNIT_HOPS,
        sync_groups: layout.sync.len(),
    };
    let groups = |sign: f32| -> Vec<Group> {
        layout
            .sync
            .iter()
            .map(|c| (&c[..], 1.0, config.sync_db))
            .chain(cells.iter().map(|c| (&c[..], sign, config.target_db)))
            .collect()
    };
    let mut a = channels.to_vec();
    let report_a = embed_groups(
        &mut a,
        sample_rate,
        &groups(-1.0),
        Some(guard),
        config,
        &mut |d, t| progress(d, 2 * t),
    )?;
    let mut b = channels.to_vec();
    let report_b = embed_groups(
        &mut b,
        sample_rate,
        &groups(1.0),
        Some(guard),
        config,
        &mut |d, t| progress(t + d, 2 * t),
    )?;
    Ok(Variants {
        a,
        b,
        units: units(channels[0].len()),
        report_a,
        report_b,
    })
}

/// Assembles a copy in memory from `variants` by `sequence` (false = A),
/// cycling the sequence if the audio has more units. For tests and tools:
/// an edge does the same on the encoded bytes.
pub fn assemble(variants: &Variants, sequence: &[bool]) -> Vec<Vec<f32>> {
    let len = variants.a[0].len();
    let mut out = variants.a.clone();
    for u in 0..variants.units {
        if sequence.is_empty() || !sequence[u % sequence.len()] {
            continue;
        }
        let (s, e) = (unit_start(u), unit_start(u + 1).min(len));
        for (o, b) in out.iter_mut().zip(&variants.b) {
            o[s..e].copy_from_slice(&b[s..e]);
        }
    }
    out
}

/// Reads which variant each of `units` units of a copy holds. `None`
/// when no block grid is found (not marked under this key, or too
/// damaged).
pub fn read_variants(
    channels: &[Vec<f32>],
    sample_rate: u32,
    key: &MarkKey,
    units: usize,
    progress: &mut dyn FnMut(u64, u64),
) -> Result<Option<UnitReading>, MarkError> {
    check_shape(channels, sample_rate, DETECT_RATES)?;
    let layout = Layout::new(key);
    let mut signal = mid(channels);
    for s in &mut signal {
        if !s.is_finite() {
            *s = 0.0;
        }
    }
    // The grid is in hops of the original rate; a resampled copy is
    // brought back to a rate the mark was written at.
    let (signal, rate) = if EMBED_RATES.contains(&sample_rate) {
        (signal, sample_rate)
    } else {
        (super::resample(&signal, sample_rate, 44_100), 44_100)
    };
    Ok(read_units(
        &signal,
        rate,
        &layout,
        &unit_cells(&layout),
        UNIT_HOPS,
        units,
        progress,
    ))
}

/// Hard decisions from a reading: `Some(true)` for B; `None` where the
/// unit read nothing.
pub fn decisions(reading: &UnitReading) -> Vec<Option<bool>> {
    reading
        .soft
        .iter()
        .map(|&v| (v != 0.0).then_some(v > 0.0))
        .collect()
}

const _: () = assert!(BLOCK_HOPS.is_multiple_of(UNIT_HOPS));

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn units_and_starts_tile_the_audio() {
        assert_eq!(units(0), 0);
        assert_eq!(units(1), 1);
        assert_eq!(units(UNIT_SAMPLES + CUT), 1);
        assert_eq!(units(UNIT_SAMPLES + CUT + 1), 2);
        for frames in [5_000usize, 44_100 * 7, 1_234_567] {
            let n = units(frames);
            assert!(unit_start(n - 1) < frames);
            assert!(unit_start(n) >= frames);
        }
        assert_eq!(unit_start(3), 3 * UNIT_SAMPLES + CUT);
        for u in 0..50 {
            assert_eq!(unit_at(unit_start(u)), u);
            assert_eq!(unit_at(unit_start(u + 1) - 1), u);
        }
    }

    #[test]
    fn every_payload_cell_belongs_to_one_unit() {
        let layout = Layout::new(&MarkKey::from_bytes([3; 32]));
        let cells = unit_cells(&layout);
        let n: usize = cells.iter().map(Vec::len).sum();
        assert_eq!(n, layout.bits.iter().map(Vec::len).sum::<usize>());
        for (u, c) in cells.iter().enumerate() {
            assert!(c.iter().all(|c| c.slot as usize / UNIT_SLOTS == u));
            assert!(c.len() >= 2 * 30, "unit {u} has {} cells", c.len());
        }
    }
}
