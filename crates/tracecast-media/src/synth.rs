//! Generated music-like test material: chords of harmonic voices with
//! attack/decay envelopes, a bass line and noise percussion, in stereo,
//! with a little reverb.
//! Deterministic for a seed, so tests and the demo need no downloaded media.

use crate::Pcm;

/// A small deterministic PRNG (xorshift64*), enough for test material.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_F491_4F6C_DD1D)
    }
    fn unit(&mut self) -> f32 {
        (self.next() >> 40) as f32 / (1u64 << 24) as f32
    }
}

/// `seconds` of stereo music-like audio at `sample_rate`.
pub fn music(seconds: f32, sample_rate: u32, seed: u64) -> Pcm {
    let sr = sample_rate as f32;
    let n = (seconds * sr) as usize;
    let mut rng = Rng(seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1);
    let mut left = vec![0f32; n];
    let mut right = vec![0f32; n];
    let beat = (sr * 0.5) as usize; // 120 bpm
                                    // Chord roots in semitones from A3 (220 Hz), a loop of four chords.
    let progression = [0i32, 5, 7, 3];
    let mut phase = [0f32; 16];
    for (b, start) in (0..n).step_by(beat.max(1)).enumerate() {
        let chord = progression[(b / 4) % progression.len()];
        let notes = [
            chord,
            chord + 4,
            chord + 7,
            chord + 12 + (rng.next() % 3) as i32,
        ];
        let end = (start + beat).min(n);
        let pan = rng.unit();
        for (v, &semi) in notes.iter().enumerate() {
            let f = 220.0 * 2f32.powf(semi as f32 / 12.0);
            let amp = 0.08 / (1.0 + v as f32 * 0.3);
            for i in start..end {
                let t = (i - start) as f32 / sr;
                let env = (t * 40.0).min(1.0) * (-t * 2.5).exp();
                let mut s = 0.0;
                for h in 1..=16 {
                    let hf = f * h as f32;
                    if hf < sr / 2.0 {
                        s += (phase[v] * h as f32).sin() / h as f32;
                    }
                }
                phase[v] += std::f32::consts::TAU * f / sr;
                if phase[v] > std::f32::consts::TAU * 64.0 {
                    phase[v] -= std::f32::consts::TAU * 64.0;
                }
                let x = amp * env * s;
                left[i] += x * (1.0 - 0.5 * pan);
                right[i] += x * (0.5 + 0.5 * pan);
            }
        }
        // Bass on every beat.
        let fb = 55.0 * 2f32.powf(chord as f32 / 12.0);
        for i in start..end {
            let t = (i - start) as f32 / sr;
            let x = 0.2 * (-t * 4.0).exp() * (std::f32::consts::TAU * fb * t).sin();
            left[i] += x;
            right[i] += x;
        }
        // Hi-hat on off-beats, snare on 2 and 4.
        let hat_start = start + beat / 2;
        let snare = b % 2 == 1;
        for i in hat_start.min(n)..(hat_start + beat / 4).min(n) {
            let t = (i - hat_start) as f32 / sr;
            let x = 0.05 * (-t * 60.0).exp() * (rng.unit() * 2.0 - 1.0);
            left[i] += x;
            right[i] += x * 0.8;
        }
        if snare {
            for i in start..(start + beat / 3).min(n) {
                let t = (i - start) as f32 / sr;
                let x = 0.12 * (-t * 20.0).exp() * (rng.unit() * 2.0 - 1.0);
                left[i] += x;
                right[i] += x;
            }
        }
    }
    // A room: parallel feedback combs (a small Schroeder reverb) per side,
    // so notes ring into each other as in a recording.
    for (ch, delays) in [
        (&mut left, [1557usize, 1617, 1491, 1422]),
        (&mut right, [1277, 1356, 1188, 1116]),
    ] {
        let dry = ch.clone();
        let scale = sr / 44_100.0;
        for d in delays {
            let d = ((d as f32) * scale) as usize;
            let mut buf = vec![0f32; n];
            for i in 0..n {
                let fb = if i >= d { buf[i - d] } else { 0.0 };
                buf[i] = dry[i] + 0.8 * fb;
            }
            for (o, b) in ch.iter_mut().zip(&buf) {
                *o += 0.06 * b;
            }
        }
    }
    Pcm {
        sample_rate,
        channels: vec![left, right],
        bits_per_sample: Some(16),
    }
}

/// A generated photo-like picture (`width`×`height`, RGB): soft colour
/// gradients, clouds of detail at several scales and a few sharp-edged
/// shapes, for the demo when no photo is at hand. Deterministic per `seed`.
pub fn picture(width: u32, height: u32, seed: u64) -> image::DynamicImage {
    use rand::{Rng, SeedableRng};
    let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(seed);
    // Value noise at three scales, one grid per scale.
    let grids: Vec<(u32, u32, Vec<f32>)> = [7u32, 23, 71]
        .iter()
        .map(|&s| {
            let (gw, gh) = (width / s + 2, height / s + 2);
            (
                s,
                gw,
                (0..gw * gh).map(|_| rng.gen_range(-1.0f32..1.0)).collect(),
            )
        })
        .collect();
    let discs: Vec<(f32, f32, f32, [f32; 3])> = (0..6)
        .map(|_| {
            (
                rng.gen_range(0.0..width as f32),
                rng.gen_range(0.0..height as f32),
                rng.gen_range(0.05..0.2) * width.min(height) as f32,
                [
                    rng.gen_range(0.0..255.0),
                    rng.gen_range(0.0..255.0),
                    rng.gen_range(0.0..255.0),
                ],
            )
        })
        .collect();
    let img = image::RgbImage::from_fn(width, height, |x, y| {
        let mut detail = 0.0;
        for (i, (s, gw, g)) in grids.iter().enumerate() {
            let (fx, fy) = (x as f32 / *s as f32, y as f32 / *s as f32);
            let (x0, y0) = (fx as u32, fy as u32);
            let (tx, ty) = (fx - x0 as f32, fy - y0 as f32);
            let at = |i: u32, j: u32| g[(j * gw + i) as usize];
            let v = (at(x0, y0) * (1.0 - tx) + at(x0 + 1, y0) * tx) * (1.0 - ty)
                + (at(x0, y0 + 1) * (1.0 - tx) + at(x0 + 1, y0 + 1) * tx) * ty;
            detail += v * [14.0, 22.0, 30.0][i];
        }
        let (u, v) = (x as f32 / width as f32, y as f32 / height as f32);
        let mut c = [60.0 + 140.0 * u, 90.0 + 100.0 * v, 170.0 - 90.0 * u * v];
        for (cx, cy, r, col) in &discs {
            if (x as f32 - cx).hypot(y as f32 - cy) < *r {
                c = *col;
            }
        }
        image::Rgb(c.map(|ch| (ch + detail).clamp(0.0, 255.0) as u8))
    });
    image::DynamicImage::ImageRgb8(img)
}
