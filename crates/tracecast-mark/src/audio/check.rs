//! Whether audio can carry a readable mark.
//!
//! A copy that cannot be traced must never be delivered as if it could: the
//! origin checks each audio work when it is ingested by marking a probe
//! copy, writing it as 16-bit samples (what a delivered copy holds), and
//! reading it back blind, as a leak would be read; and again with white
//! noise added at [`NOISE_SNR_DB`] below the music. Audio that is mostly
//! silence (one note fading out), too quiet, or too sparse in the marked
//! band fails the first; a mark that only holds in a clean copy fails the
//! second. It all streams: nothing of the audio is copied.

use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;

use super::detect_stream::{DetectPass, StreamDetector};
use super::embed::EmbedConfig;
use super::stream::StreamEmbedder;
use super::{check_input, MarkError};
use crate::key::MarkKey;
use crate::payload::Payload;

/// Longest stretch of audio checked, from the start, in seconds: a work's
/// first ten minutes tell whether it carries a mark, at a bounded cost.
pub const CHECK_SECS: u32 = 600;
/// Signal-to-noise ratio of the white noise the probe copy must survive, dB.
pub const NOISE_SNR_DB: f64 = 20.0;

/// The probe's key and ids: any will do, the host decides.
const PROBE_KEY: [u8; 32] = *b"tracecast markability probe key!";
const PROBE: Payload = Payload {
    content_server: 1,
    edge: 1,
    home: 0,
    user: 1,
};
/// Samples per channel fed at a time.
const PIECE: usize = 1 << 15;

/// What the check found.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Markability {
    /// The probe copy's mark read back, exact.
    pub reads: bool,
    /// It still read with white noise at [`NOISE_SNR_DB`] added.
    pub survives_noise: bool,
    /// Signal-to-noise ratio of the probe's mark, dB.
    pub snr_db: f64,
    /// Sync correlation read from the clean probe, in standard deviations.
    pub sync_z: f32,
    /// Seconds of audio checked.
    pub checked_secs: f64,
}

impl Markability {
    /// Why the audio cannot be delivered traceably, if it cannot.
    pub fn refusal(&self) -> Option<String> {
        (!self.reads).then(|| {
            format!(
                "the audio cannot carry a readable mark: a probe copy of its first {:.0} s, \
                 marked at {:.1} dB SNR and written as 16-bit samples, read back no mark \
                 (sync {:.1} sd); it is mostly silence, or too quiet or sparse between \
                 300 Hz and 8 kHz for a copy to be traced",
                self.checked_secs, self.snr_db, self.sync_z
            )
        })
    }

    /// What a provider should know about a work that can be marked.
    pub fn warning(&self) -> Option<String> {
        (self.reads && !self.survives_noise).then(|| {
            format!(
                "the mark is weak in this audio: a probe copy reads back clean but not \
                 with white noise {NOISE_SNR_DB:.0} dB below the music; copies that are \
                 degraded before they leak may not be traced"
            )
        })
    }
}

/// Marks a probe copy of (the first [`CHECK_SECS`] of) `channels` and reads
/// it back, clean and with noise. Both readings are of the plain scale
/// only: the probe is neither resampled nor stretched.
pub fn check_markable(channels: &[Vec<f32>], sample_rate: u32) -> Result<Markability, MarkError> {
    check_input(channels, sample_rate)?;
    let n = channels[0]
        .len()
        .min(CHECK_SECS as usize * sample_rate as usize);
    let count = channels.len();
    let key = MarkKey::from_bytes(PROBE_KEY);
    let mut embedder =
        StreamEmbedder::new(count, sample_rate, &key, &PROBE, &EmbedConfig::default())?;
    let mut clean = StreamDetector::new(count, sample_rate, &key, DetectPass::Plain)?;
    let mut noisy = StreamDetector::new(count, sample_rate, &key, DetectPass::Plain)?;
    // The noise is set against the audio checked, as the attack sets it
    // against the copy.
    let power = channels
        .iter()
        .map(|c| {
            c[..n]
                .iter()
                .map(|&s| f64::from(s) * f64::from(s))
                .sum::<f64>()
        })
        .sum::<f64>()
        / (n * count) as f64;
    let sigma = (power / 10f64.powf(NOISE_SNR_DB / 10.0)).sqrt() as f32;
    let mut rng = ChaCha8Rng::seed_from_u64(0x5eed);
    let mut quantised: Vec<Vec<f32>> = vec![Vec::new(); count];
    let mut with_noise: Vec<Vec<f32>> = vec![Vec::new(); count];
    let mut failed = None;
    let mut read = |marked: &[&[f32]]| {
        for ((q, w), m) in quantised.iter_mut().zip(&mut with_noise).zip(marked) {
            q.clear();
            q.extend(m.iter().map(|&s| sixteen_bit(s)));
            w.clear();
            w.extend(
                m.iter()
                    .map(|&s| sixteen_bit(s + sigma * gaussian(&mut rng))),
            );
        }
        let q: Vec<&[f32]> = quantised.iter().map(Vec::as_slice).collect();
        let w: Vec<&[f32]> = with_noise.iter().map(Vec::as_slice).collect();
        if let Err(e) = clean.push(&q).and_then(|()| noisy.push(&w)) {
            failed.get_or_insert(e);
        }
    };
    let mut start = 0;
    while start < n {
        let end = (start + PIECE).min(n);
        let piece: Vec<&[f32]> = channels.iter().map(|c| &c[start..end]).collect();
        embedder.push(&piece, &mut read)?;
        start = end;
    }
    let report = embedder.finish(&mut read)?;
    if let Some(e) = failed {
        return Err(e);
    }
    let clean = clean.finish()?;
    let noisy = noisy.finish()?;
    Ok(Markability {
        reads: clean.payload == Some(PROBE),
        survives_noise: noisy.payload == Some(PROBE),
        snr_db: report.snr_db,
        sync_z: clean.sync_z,
        checked_secs: n as f64 / f64::from(sample_rate),
    })
}

/// A sample as 16-bit PCM holds it.
fn sixteen_bit(s: f32) -> f32 {
    (s * 32_768.0).round().clamp(-32_768.0, 32_767.0) / 32_768.0
}

/// A standard normal value (Box-Muller).
fn gaussian(rng: &mut ChaCha8Rng) -> f32 {
    let u1: f32 = rng.gen_range(f32::MIN_POSITIVE..1.0);
    let u2: f32 = rng.gen();
    (-2.0 * u1.ln()).sqrt() * (std::f32::consts::TAU * u2).cos()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn music(secs: f32, rate: u32, seed: u64) -> Vec<Vec<f32>> {
        // Chords of decaying partials over pink-ish noise: sound in the
        // marked band all the time.
        let mut rng = ChaCha8Rng::seed_from_u64(seed);
        let n = (secs * rate as f32) as usize;
        let mut pink = 0f32;
        let left: Vec<f32> = (0..n)
            .map(|i| {
                let t = i as f32 / rate as f32;
                let beat = t % 0.5;
                let env = (-beat * 4.0).exp();
                let f = [220.0, 330.0, 440.0, 550.0][(t * 2.0) as usize % 4];
                let tone: f32 = (1..8)
                    .map(|h| (std::f32::consts::TAU * f * h as f32 * t).sin() / h as f32)
                    .sum();
                pink = 0.97 * pink + 0.03 * rng.gen_range(-1.0f32..1.0);
                0.1 * env * tone + 0.2 * pink
            })
            .collect();
        vec![left.clone(), left]
    }

    /// One plucked note per channel that fades into 16-bit silence, as in
    /// the issue: a few seconds of sound in a 40-second file.
    fn one_note(rate: u32) -> Vec<Vec<f32>> {
        let n = 40 * rate as usize;
        let mut rng = ChaCha8Rng::seed_from_u64(3);
        [196.0f32, 247.0]
            .iter()
            .map(|f| {
                (0..n)
                    .map(|i| {
                        let t = i as f32 / rate as f32;
                        let note: f32 = (1..12)
                            .map(|h| {
                                let decay = (-t * (1.5 + h as f32)).exp();
                                decay * (std::f32::consts::TAU * f * h as f32 * t).sin() / h as f32
                            })
                            .sum();
                        // The dither of a 16-bit master.
                        let dither = (rng.gen::<f32>() - rng.gen::<f32>()) / 32_768.0;
                        sixteen_bit(0.5 * note + dither)
                    })
                    .collect()
            })
            .collect()
    }

    #[test]
    fn music_reads_back_clean_and_through_noise() {
        let m = check_markable(&music(30.0, 44_100, 1), 44_100).unwrap();
        assert!(m.reads && m.survives_noise, "{m:?}");
        assert!(m.refusal().is_none() && m.warning().is_none());
        assert!((m.checked_secs - 30.0).abs() < 1e-6);
    }

    #[test]
    fn silence_and_one_fading_note_are_refused_with_the_reason() {
        let silence = vec![vec![0f32; 30 * 44_100]; 2];
        for (name, audio) in [("silence", silence), ("one note", one_note(44_100))] {
            let m = check_markable(&audio, 44_100).unwrap();
            assert!(!m.reads, "{name}: {m:?}");
            let why = m.refusal().expect("refused");
            assert!(why.contains("cannot carry a readable mark"), "{why}");
        }
    }

    #[test]
    fn only_the_first_ten_minutes_are_checked() {
        let rate = 22_050;
        let mut long = music(30.0, rate, 2);
        for c in &mut long {
            let again = c.clone();
            while c.len() < (CHECK_SECS as usize + 60) * rate as usize {
                c.extend_from_slice(&again);
            }
        }
        let m = check_markable(&long, rate).unwrap();
        assert_eq!(m.checked_secs, f64::from(CHECK_SECS));
        assert!(m.reads, "{m:?}");
    }

    #[test]
    fn bad_input_is_an_error() {
        assert_eq!(check_markable(&[], 44_100), Err(MarkError::NoChannels));
        assert_eq!(
            check_markable(&[vec![0.0; 10], vec![0.0; 9]], 44_100),
            Err(MarkError::RaggedChannels)
        );
        assert_eq!(
            check_markable(&[vec![f32::NAN; 100_000]], 44_100),
            Err(MarkError::NonFinite)
        );
        assert_eq!(
            check_markable(&[vec![0.0; 100]], 8_000),
            Err(MarkError::SampleRate(8_000))
        );
    }
}
