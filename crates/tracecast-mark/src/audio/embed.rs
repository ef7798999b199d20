//! Writing the mark into PCM.
//!
//! Each cell's bins are scaled by a small gain (a fraction of a dB) whose
//! sign is the cell's chip times its coded bit. The gain is informed by the
//! host: the embedder measures what the detector will read for every coded
//! bit in every block and raises that bit's gain until the bit reads with a
//! margin, capped for inaudibility (host-interference rejection, in the
//! spirit of improved spread spectrum). Every channel gets the same gains,
//! so a mono downmix carries the same mark.

use realfft::RealFftPlanner;

use super::analysis::{frame_count, mid, Spectrogram, WHITEN_BINS};
use super::layout::{
    bin_range, Layout, BANDS, BINS_PER_BAND, BLOCK_HOPS, CELLS, FRAME, HOP, HOPS_PER_SLOT,
};
use super::{check_input, MarkError};
use crate::code;
use crate::key::MarkKey;
use crate::payload::Payload;

/// How strongly to mark. The defaults were tuned on real music against the
/// attacks in the benchmark (see the crate docs).
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct EmbedConfig {
    /// Gain of sync cells, dB.
    pub sync_db: f32,
    /// Least gain of payload cells, dB.
    pub min_db: f32,
    /// Most gain of payload cells, dB.
    pub max_db: f32,
    /// Mean whitened level each coded bit must read at, per cell, dB.
    pub target_db: f32,
}

impl Default for EmbedConfig {
    fn default() -> Self {
        EmbedConfig {
            sync_db: 0.5,
            min_db: 0.3,
            max_db: 1.6,
            target_db: 1.0,
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
const SEEN: f32 = 0.79;

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
    let len = channels[0].len();
    let layout = Layout::new(key);
    let signs: Vec<f32> = code::encode(&payload.to_bits(key))
        .iter()
        .map(|&b| if b == 1 { 1.0 } else { -1.0 })
        .collect();
    let (lo, hi) = bin_range(sample_rate);
    let hops = frame_count(len);
    let blocks = hops.div_ceil(BLOCK_HOPS);
    let total_work = (hops * (channels.len() + 1)) as u64;

    // What the detector would read from the host alone.
    let bin0 = lo.saturating_sub(WHITEN_BINS);
    let bins = (hi + WHITEN_BINS).min(FRAME / 2 + 1) - bin0;
    let mut spec = Spectrogram::compute(&mid(channels), bin0, bins);
    spec.whiten();
    progress(hops as u64, total_work);

    let cell_value = |block: usize, slot: usize, band: usize| -> Option<f32> {
        let t0 = block * BLOCK_HOPS + slot * HOPS_PER_SLOT;
        if t0 >= hops {
            return None;
        }
        let mut sum = 0.0;
        let mut n = 0;
        for t in t0..(t0 + HOPS_PER_SLOT).min(hops) {
            for j in 0..BINS_PER_BAND {
                let bin = lo + band * BINS_PER_BAND + j;
                if bin < hi {
                    sum += spec.at(t, bin);
                    n += 1;
                }
            }
        }
        (n > 0).then(|| sum / n as f32)
    };

    let mut gains = vec![0f32; blocks * CELLS];
    for block in 0..blocks {
        let g = &mut gains[block * CELLS..(block + 1) * CELLS];
        for c in &layout.sync {
            g[c.slot as usize * BANDS + c.band as usize] = f32::from(c.chip) * config.sync_db;
        }
        for (bit, cells) in layout.bits.iter().enumerate() {
            let sign = signs[bit];
            let mut read = 0.0;
            let mut n = 0usize;
            for c in cells {
                if let Some(v) = cell_value(block, c.slot as usize, c.band as usize) {
                    read += f32::from(c.chip) * sign * v;
                    n += 1;
                }
            }
            if n == 0 {
                continue;
            }
            let need = (config.target_db * n as f32 - read) / (SEEN * n as f32);
            let gain = need.clamp(config.min_db, config.max_db);
            for c in cells {
                g[c.slot as usize * BANDS + c.band as usize] = f32::from(c.chip) * sign * gain;
            }
        }
    }

    // Per band linear factor minus one, per cell: the difference signal is
    // X·(10^(g/20) − 1) in the cell's bins.
    let factors: Vec<f32> = gains.iter().map(|g| 10f32.powf(g / 20.0) - 1.0).collect();

    let mut planner = RealFftPlanner::<f32>::new();
    let fwd = planner.plan_fft_forward(FRAME);
    let inv = planner.plan_fft_inverse(FRAME);
    let window: Vec<f32> = (0..FRAME)
        .map(|n| (std::f32::consts::PI * n as f32 / FRAME as f32).sin())
        .collect();
    let mut input = fwd.make_input_vec();
    let mut spectrum = fwd.make_output_vec();
    let mut fscratch = fwd.make_scratch_vec();
    let mut iscratch = inv.make_scratch_vec();
    let mut out = inv.make_output_vec();
    let mut signal_energy = 0f64;
    let mut diff_energy = 0f64;
    let norm = 1.0 / FRAME as f32;
    let mut done = hops as u64;
    for ch in channels.iter_mut() {
        let mut diff = vec![0f32; len + FRAME];
        for t in 0..hops {
            let start = t * HOP;
            let end = (start + FRAME).min(len);
            let n = end - start;
            for i in 0..n {
                input[i] = ch[start + i] * window[i];
            }
            input[n..].fill(0.0);
            fwd.process_with_scratch(&mut input, &mut spectrum, &mut fscratch)
                .expect("buffer sizes come from the plan");
            let block = t / BLOCK_HOPS;
            let slot = (t % BLOCK_HOPS) / HOPS_PER_SLOT;
            let row = &factors[block * CELLS + slot * BANDS..block * CELLS + (slot + 1) * BANDS];
            spectrum[..lo].fill(Default::default());
            for (k, v) in spectrum[lo..hi].iter_mut().enumerate() {
                *v *= row[k / BINS_PER_BAND];
            }
            spectrum[hi..].fill(Default::default());
            inv.process_with_scratch(&mut spectrum, &mut out, &mut iscratch)
                .expect("buffer sizes come from the plan");
            for i in 0..FRAME {
                diff[start + i] += out[i] * window[i] * norm;
            }
            done += 1;
            if t % 1024 == 0 {
                progress(done, total_work);
            }
        }
        for (s, d) in ch.iter_mut().zip(&diff) {
            signal_energy += f64::from(*s) * f64::from(*s);
            diff_energy += f64::from(*d) * f64::from(*d);
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

#[cfg(test)]
mod tests {
    use super::*;
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
            let mut s = Spectrogram::compute(&x, bin0, bins);
            s.whiten();
            s
        };
        let mut y = vec![x.clone()];
        let payload = Payload { content_server: 1, edge: 2, home: 3, user: 4 };
        let key = MarkKey::from_bytes([7; 32]);
        let cfg = EmbedConfig { sync_db: 1.0, min_db: 1.0, max_db: 1.0, target_db: 0.0 };
        embed(&mut y, sr, &key, &payload, &cfg, &mut |_, _| {}).unwrap();
        let after = {
            let mut s = Spectrogram::compute(&y[0], bin0, bins);
            s.whiten();
            s
        };
        let layout = Layout::new(&key);
        let mut sum = 0.0;
        let mut n = 0.0;
        for block in 0..3 {
            for c in &layout.sync {
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
}

#[cfg(test)]
mod diag_tests {
    use super::*;

    #[test]
    fn diag_synth() {
        let key = MarkKey::from_bytes([7; 32]);
        let payload = Payload { content_server: 1, edge: 2, home: 3, user: 4 };
        for (name, mut ch, sr) in [
            ("synth", tracecast_media::synth::music(40.0, 44100, 1).channels, 44100),
            ("noise", {
                use rand::{Rng, SeedableRng};
                let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(3);
                vec![(0..44100 * 40).map(|_| rng.gen_range(-0.2f32..0.2)).collect::<Vec<f32>>()]
            }, 44100),
        ] {
            let before = crate::audio::detect::diag::true_alignment(&mid(&ch), sr, &key, &payload);
            let r = embed(&mut ch, sr, &key, &payload, &EmbedConfig::default(), &mut |_, _| {}).unwrap();
            let after = crate::audio::detect::diag::true_alignment(&mid(&ch), sr, &key, &payload);
            eprintln!("{name}: snr {:.1} before {before:?} after {after:?}", r.snr_db);
        }
    }
}
