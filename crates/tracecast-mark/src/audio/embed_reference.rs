//! The whole-signal embedder as it was before it streamed, kept only as the
//! reference the streaming embedder must match to the bit.

use realfft::num_complex::Complex32;

use super::analysis::{
    frame_count, mid, synthesize, synthesize_pair, Spectrogram, Stft, WHITEN_BINS,
};
use super::embed::{
    marked_energy, snr_ceiling, solve_unit, EmbedConfig, EmbedReport, Group, Guard, SEEN,
};
use super::layout::{
    bin_range, BANDS, BINS_PER_BAND, BLOCK_HOPS, CELLS, FRAME, HOP, HOPS_PER_SLOT, SLOTS,
};
use super::stream::sum_of_squares;
use super::{check_input, MarkError};

/// Per-cell gain weights from the unwhitened spectrogram: a cell quieter
/// than its slot's mean level gets more gain, a louder one less.
fn cell_weights(
    spec: &Spectrogram,
    lo: usize,
    hi: usize,
    blocks: usize,
    tilt: f32,
    max_weight: f32,
) -> Vec<f32> {
    let mut w = vec![1f32; blocks * CELLS];
    if tilt == 0.0 {
        return w;
    }
    let mut level = [0f32; BANDS];
    for block in 0..blocks {
        for slot in 0..SLOTS {
            let t0 = block * BLOCK_HOPS + slot * HOPS_PER_SLOT;
            if t0 >= spec.hops {
                continue;
            }
            let t1 = (t0 + HOPS_PER_SLOT).min(spec.hops);
            for (band, l) in level.iter_mut().enumerate() {
                let mut sum = 0.0;
                let mut n = 0;
                for t in t0..t1 {
                    for j in 0..BINS_PER_BAND {
                        let bin = lo + band * BINS_PER_BAND + j;
                        if bin < hi {
                            sum += spec.at(t, bin);
                            n += 1;
                        }
                    }
                }
                *l = if n > 0 { sum / n as f32 } else { 0.0 };
            }
            let mean = level.iter().sum::<f32>() / BANDS as f32;
            for (band, l) in level.iter().enumerate() {
                let x = 10f32.powf((mean - l) * tilt / 10.0);
                w[block * CELLS + slot * BANDS + band] = x.clamp(1.0 / max_weight, max_weight);
            }
        }
    }
    w
}

/// Marks `channels` in place with the given groups, each block alike.
pub(crate) fn embed_groups_whole(
    channels: &mut [Vec<f32>],
    sample_rate: u32,
    groups: &[Group],
    guard: Option<Guard>,
    config: &EmbedConfig,
    progress: &mut dyn FnMut(u64, u64),
) -> Result<EmbedReport, MarkError> {
    check_input(channels, sample_rate)?;
    let len = channels[0].len();
    let (lo, hi) = bin_range(sample_rate);
    let hops = frame_count(len);
    let blocks = hops.div_ceil(BLOCK_HOPS);
    let side_passes = match channels.len() {
        1 => 0,
        2 => 2,
        n => 2 * n,
    };
    let total_work = (hops * (2 + side_passes)) as u64;
    let mut done = 0u64;

    // What the detector would read off the host alone.
    let bin0 = lo.saturating_sub(WHITEN_BINS);
    let bins = (hi + WHITEN_BINS).min(FRAME / 2 + 1) - bin0;
    let mid_signal = mid(channels);
    // Stereo's mid and side are transformed together, as the streaming
    // embedder does; each channel's own part otherwise.
    let (x_mid, x_sides) = match channels.len() {
        2 => {
            let side: Vec<f32> = channels[0]
                .iter()
                .zip(&channels[1])
                .map(|(l, r)| 0.5 * (l - r))
                .collect();
            let (m, s) = Stft::compute_pair(&mid_signal, &side, bin0..bin0 + bins, lo..hi);
            (m, vec![s])
        }
        n => {
            let sides = if n == 1 {
                Vec::new()
            } else {
                channels
                    .iter()
                    .map(|c| {
                        let own: Vec<f32> = c.iter().zip(&mid_signal).map(|(a, m)| a - m).collect();
                        Stft::compute(&own, lo, hi - lo)
                    })
                    .collect()
            };
            (Stft::compute(&mid_signal, bin0, bins), sides)
        }
    };
    let mut spec = Spectrogram::from_stft(&x_mid, None, lo..hi);
    let weights = cell_weights(
        &spec,
        lo,
        hi,
        blocks,
        config.tilt,
        config.max_weight.max(1.0),
    );
    spec.whiten();
    done += hops as u64;
    progress(done, total_work);

    // Pass 1: gains from the host reading (open loop).
    let mut units = vec![0f32; blocks * groups.len()];
    let host_reads = group_reads(&spec, lo, hi, blocks, groups, &weights);
    let cell_weights_of = |block: usize, gi: usize| -> Vec<f32> {
        groups[gi]
            .0
            .iter()
            .map(|c| weights[block * CELLS + c.slot as usize * BANDS + c.band as usize])
            .collect()
    };
    for (i, r) in host_reads.iter().enumerate() {
        let w = cell_weights_of(i / groups.len(), i % groups.len());
        let need = (r.target * r.n as f32 - r.read) / SEEN;
        units[i] = solve_unit(need, &w, config);
    }
    let mut factors = cell_factors(&units, groups, &weights, blocks, config);
    // The ceiling on each block's loudness (not for A/B variants).
    for block in (0..blocks).filter(|_| guard.is_none()) {
        let (t0, t1) = (block * BLOCK_HOPS, ((block + 1) * BLOCK_HOPS).min(hops));
        let (s0, s1) = (t0 * HOP, (t1 * HOP).min(len));
        let mut signal = 0f64;
        for c in channels.iter() {
            signal += sum_of_squares(&c[s0..s1]);
        }
        let cells = &mut factors[block * CELLS..(block + 1) * CELLS];
        let (mut mid, mut sides) = (0f64, 0f64);
        for t in t0..t1 {
            let slot = (t % BLOCK_HOPS) / HOPS_PER_SLOT;
            let row = &cells[slot * BANDS..(slot + 1) * BANDS];
            mid += marked_energy(x_mid.row(t), x_mid.bin0, lo, hi, row);
            for x in &x_sides {
                sides += marked_energy(x.row(t), lo, lo, hi, row);
            }
        }
        let k = snr_ceiling(signal, mid, sides, channels.len(), config.min_snr_db);
        if k < 1.0 {
            for f in cells.iter_mut() {
                *f *= k;
            }
        }
    }
    // Around unit boundaries only the sync cells are marked.
    let guarded = guard.map(|g| {
        let mut f = factors.clone();
        for block in 0..blocks {
            for (cells, _, _) in &groups[g.sync_groups..] {
                for c in cells.iter() {
                    f[block * CELLS + c.slot as usize * BANDS + c.band as usize] = 0.0;
                }
            }
        }
        (g, f)
    });
    let row_factors = |t: usize| pick(&factors, &guarded, t);

    // Pass 2: mark the mid, read it as the detector would, and top up every
    // group that still reads short (closed loop: the STFT round trip and the
    // whitening move readings in ways no constant captures).

    // Output: the mid's difference goes to every channel; each channel's
    // own difference from the mid is marked too, so every channel carries
    // the same gains on its own content.
    let (diff_mid, residual_diffs) = if channels.len() == 2 {
        let (dm, ds) = synthesize_pair(len, lo..hi, |t, a, b| {
            fill_band(t, a, &x_mid, row_factors(t), lo, hi);
            fill_band(t, b, &x_sides[0], row_factors(t), lo, hi);
        });
        let neg: Vec<f32> = ds.iter().map(|v| -v).collect();
        (dm, vec![ds, neg])
    } else {
        let dm = synthesize(len, |t, spectrum| {
            fill(t, spectrum, &x_mid, row_factors(t), lo, hi)
        });
        let own: Vec<Vec<f32>> = x_sides
            .iter()
            .map(|x| {
                synthesize(len, |t, spectrum| {
                    fill(t, spectrum, x, row_factors(t), lo, hi)
                })
            })
            .collect();
        (dm, own)
    };
    drop(x_mid);
    done += hops as u64;
    progress(done, total_work);
    let mut signal_energy = 0f64;
    let mut diff_energy = 0f64;
    for (c, ch) in channels.iter_mut().enumerate() {
        let own = residual_diffs.get(c);
        for (i, (s, m)) in ch.iter_mut().zip(&diff_mid).enumerate() {
            let d = m + own.map_or(0.0, |r| r[i]);
            signal_energy += f64::from(*s * *s);
            diff_energy += f64::from(d * d);
            *s += d;
        }
    }
    progress(total_work, total_work);
    let snr_db = if diff_energy > 0.0 {
        10.0 * (signal_energy / diff_energy).log10()
    } else {
        f64::INFINITY
    };
    Ok(EmbedReport { blocks, snr_db })
}

/// A group's reading in one block.
#[derive(Debug, Clone, Copy, Default)]
struct GroupRead {
    /// Sum of chip × sign × cell value.
    read: f32,
    /// Sum of the cells' gain weights.
    weight: f32,
    /// Cells present (the last block may be short).
    n: usize,
    /// The group's target per cell.
    target: f32,
}

fn group_reads(
    spec: &Spectrogram,
    lo: usize,
    hi: usize,
    blocks: usize,
    groups: &[Group],
    weights: &[f32],
) -> Vec<GroupRead> {
    let mut out = vec![GroupRead::default(); blocks * groups.len()];
    for block in 0..blocks {
        let w = &weights[block * CELLS..(block + 1) * CELLS];
        for (gi, (cells, sign, target)) in groups.iter().enumerate() {
            let r = &mut out[block * groups.len() + gi];
            r.target = *target;
            for c in cells.iter() {
                if let Some(v) = cell_value(spec, lo, hi, block, c.slot as usize, c.band as usize) {
                    r.read += f32::from(c.chip) * sign * v;
                    r.weight += w[c.slot as usize * BANDS + c.band as usize];
                    r.n += 1;
                }
            }
        }
    }
    out
}

/// Mean of a cell's whitened values, `None` past the end of the audio.
fn cell_value(
    spec: &Spectrogram,
    lo: usize,
    hi: usize,
    block: usize,
    slot: usize,
    band: usize,
) -> Option<f32> {
    let t0 = block * BLOCK_HOPS + slot * HOPS_PER_SLOT;
    if t0 >= spec.hops {
        return None;
    }
    let mut sum = 0.0;
    let mut n = 0;
    for t in t0..(t0 + HOPS_PER_SLOT).min(spec.hops) {
        for j in 0..BINS_PER_BAND {
            let bin = lo + band * BINS_PER_BAND + j;
            if bin < hi {
                sum += spec.at(t, bin);
                n += 1;
            }
        }
    }
    (n > 0).then(|| sum / n as f32)
}

/// Linear factor minus one for every cell of every block: the difference
/// signal is X·(10^(g/20) − 1) in the cell's bins.
fn cell_factors(
    units: &[f32],
    groups: &[Group],
    weights: &[f32],
    blocks: usize,
    config: &EmbedConfig,
) -> Vec<f32> {
    let mut f = vec![0f32; blocks * CELLS];
    for block in 0..blocks {
        for (gi, (cells, sign, _)) in groups.iter().enumerate() {
            let unit = units[block * groups.len() + gi];
            for c in cells.iter() {
                let i = block * CELLS + c.slot as usize * BANDS + c.band as usize;
                let g = f32::from(c.chip) * sign * (unit * weights[i]).min(config.max_db);
                f[i] = 10f32.powf(g / 20.0) - 1.0;
            }
        }
    }
    f
}

/// The factors hop `t` uses: without the data cells in guard hops.
fn pick<'a>(factors: &'a [f32], guarded: &'a Option<(Guard, Vec<f32>)>, t: usize) -> &'a [f32] {
    match guarded {
        Some((g, f)) if g.holds(t) => f,
        _ => factors,
    }
}

/// As [`fill`], into `band`, which holds bins `lo..hi` only.
fn fill_band(t: usize, band: &mut [Complex32], x: &Stft, factors: &[f32], lo: usize, hi: usize) {
    let block = t / BLOCK_HOPS;
    let slot = (t % BLOCK_HOPS) / HOPS_PER_SLOT;
    let row = &factors[block * CELLS + slot * BANDS..block * CELLS + (slot + 1) * BANDS];
    let src = x.row(t);
    for bin in lo..hi {
        band[bin - lo] = src[bin - x.bin0] * row[(bin - lo) / BINS_PER_BAND];
    }
}

/// Writes hop `t`'s difference spectrum: the source's marked bins times
/// their cell factor.
fn fill(t: usize, spectrum: &mut [Complex32], x: &Stft, factors: &[f32], lo: usize, hi: usize) {
    fill_band(t, &mut spectrum[lo..hi], x, factors, lo, hi);
}
