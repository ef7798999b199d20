//! Preparing a picture for detection: the working grid, the residual that
//! holds the mark, and its spectrally whitened autocorrelation.

use realfft::num_complex::Complex32;

use super::fft2::{fast_len, Fft2};
use super::{check_row, check_size, working_scale, ImageMarkError, Plane};

/// Scales a picture down to the working grid (area averaging), row by row,
/// so a large picture never has to be held at full size as `f32`.
#[derive(Debug)]
pub struct Reducer {
    width: usize,
    next_row: usize,
    xmap: Vec<(u32, f32, f32)>,
    ymap: Vec<(u32, f32, f32)>,
    row: Vec<f32>,
    out: Plane,
}

impl Reducer {
    /// A reducer for a `width`×`height` picture.
    pub fn new(width: usize, height: usize) -> Result<Self, ImageMarkError> {
        check_size(width, height)?;
        let k = working_scale(width, height);
        let out_w = ((width as f64 * k).floor() as usize).max(1);
        let out_h = ((height as f64 * k).floor() as usize).max(1);
        Ok(Self {
            width,
            next_row: 0,
            xmap: area_map(width, k),
            ymap: area_map(height, k),
            // Two spare cells: the last input pixels may start in or past the
            // last whole output pixel (the partial one is dropped).
            row: vec![0.0; out_w + 2],
            out: Plane::new(out_w, out_h),
        })
    }

    /// The next row of luma (0-255 scale), top to bottom.
    pub fn push_row(&mut self, y: usize, luma: &[f32]) -> Result<(), ImageMarkError> {
        let in_order = y == self.next_row && y < self.ymap.len();
        check_row(y, in_order, self.next_row, luma.len(), self.width)?;
        self.next_row += 1;
        self.row.iter_mut().for_each(|v| *v = 0.0);
        for (&l, &(j, w0, w1)) in luma.iter().zip(&self.xmap) {
            // Non-finite input is a decoding bug upstream; keep it out.
            let l = if l.is_finite() { l } else { 0.0 };
            self.row[j as usize] += w0 * l;
            self.row[j as usize + 1] += w1 * l;
        }
        let (ow, oh) = (self.out.width, self.out.height);
        let (j, w0, w1) = self.ymap[y];
        for (jj, w) in [(j as usize, w0), (j as usize + 1, w1)] {
            if jj < oh && w > 0.0 {
                let dst = &mut self.out.data[jj * ow..(jj + 1) * ow];
                for (d, s) in dst.iter_mut().zip(&self.row) {
                    *d += w * s;
                }
            }
        }
        Ok(())
    }

    /// The working-grid picture (rows not pushed stay black).
    pub fn finish(self) -> Plane {
        self.out
    }
}

/// For each input index, the output index it starts in and the shares of
/// its length (k output pixels) that fall in that output pixel and the next.
fn area_map(n: usize, k: f64) -> Vec<(u32, f32, f32)> {
    (0..n)
        .map(|i| {
            let start = i as f64 * k;
            let end = start + k;
            let j = start.floor();
            if end <= j + 1.0 {
                (j as u32, k as f32, 0.0)
            } else {
                (j as u32, (j + 1.0 - start) as f32, (end - j - 1.0) as f32)
            }
        })
        .collect()
}

/// Box blur of radius `r` along rows and columns (edges clamped), in place.
pub fn box_blur(data: &mut [f32], w: usize, h: usize, r: usize) {
    let mut line = Vec::new();
    for row in data.chunks_exact_mut(w) {
        blur_line(row, r, &mut line);
    }
    let mut col = vec![0f32; h];
    for x in 0..w {
        for (y, c) in col.iter_mut().enumerate() {
            *c = data[y * w + x];
        }
        blur_line(&mut col, r, &mut line);
        for (y, c) in col.iter().enumerate() {
            data[y * w + x] = *c;
        }
    }
}

fn blur_line(v: &mut [f32], r: usize, scratch: &mut Vec<f32>) {
    let n = v.len();
    scratch.clear();
    scratch.extend_from_slice(v);
    let at = |i: isize| scratch[i.clamp(0, n as isize - 1) as usize];
    let r = r as isize;
    let norm = 1.0 / (2 * r + 1) as f32;
    let mut sum: f32 = (-r..=r).map(at).sum();
    for (i, out) in v.iter_mut().enumerate() {
        *out = sum * norm;
        let i = i as isize;
        sum += at(i + r + 1) - at(i - r);
    }
}

/// Floor of the local residual energy (0-255 scale, squared), so flat or
/// clipped areas are not amplified into noise.
const ENERGY_FLOOR: f32 = 0.25;
/// Normalised residual values are limited to this (strong edges).
const RESIDUAL_LIMIT: f32 = 3.0;

/// The band where the mark lives (a difference of blurs: 3×3 box minus a
/// near-Gaussian of σ≈4.5 px), divided by its local RMS so textured and
/// flat areas speak equally and brightness changes cancel.
pub fn residual(p: &Plane) -> Vec<f32> {
    let (w, h) = (p.width, p.height);
    let mut small = p.data.clone();
    box_blur(&mut small, w, h, 1);
    let mut large = p.data.clone();
    for _ in 0..3 {
        box_blur(&mut large, w, h, 4);
    }
    let mut r: Vec<f32> = small.iter().zip(&large).map(|(s, l)| s - l).collect();
    let mut energy: Vec<f32> = r.iter().map(|v| v * v).collect();
    for _ in 0..2 {
        box_blur(&mut energy, w, h, 8);
    }
    for (v, e) in r.iter_mut().zip(&energy) {
        *v = (*v / (e + ENERGY_FLOOR).sqrt()).clamp(-RESIDUAL_LIMIT, RESIDUAL_LIMIT);
    }
    r
}

/// Autocorrelation of a residual with its power spectrum whitened locally
/// (each bin divided by the mean of its 9×9 neighbourhood), so the host's
/// smooth spectrum flattens and the mark's periodic comb stands out. Lines
/// at multiples of 1/8 cycle per pixel (JPEG's block grid, and DC) are
/// removed. Returns the lag plane (`nw × nh`, cyclic: lag -d is at n - d),
/// normalised to 1 at lag 0, with its size.
pub fn autocorrelation(r: &[f32], w: usize, h: usize, max_lag: usize) -> (Vec<f32>, usize, usize) {
    let nw = fast_len(w + max_lag.min(w));
    let nh = fast_len(h + max_lag.min(h));
    let mut padded = vec![0f32; nw * nh];
    for (dst, src) in padded.chunks_exact_mut(nw).zip(r.chunks_exact(w)) {
        dst[..w].copy_from_slice(src);
    }
    let fft = Fft2::new(nw, nh);
    let sw = fft.spec_width();
    let spec = fft.forward(&mut padded);
    let mut power: Vec<f32> = spec.iter().map(|c| c.norm_sqr()).collect();
    let mut local = power.clone();
    box_blur(&mut local, sw, nh, 4);
    let mean = power.iter().sum::<f32>() / power.len() as f32;
    let tiny = mean * 1e-6 + f32::MIN_POSITIVE;
    for (p, l) in power.iter_mut().zip(&local) {
        *p /= l + tiny;
    }
    let notch_x = notches(nw, sw);
    let notch_y = notches(nh, nh);
    for y in 0..nh {
        for x in 0..sw {
            if notch_x[x] || notch_y[y] {
                power[y * sw + x] = 0.0;
            }
        }
    }
    let white: Vec<Complex32> = power.iter().map(|&p| Complex32::new(p, 0.0)).collect();
    let mut acf = fft.inverse(white);
    let zero = acf[0];
    if zero > 0.0 {
        acf.iter_mut().for_each(|v| *v /= zero);
    }
    (acf, nw, nh)
}

/// Bins (of `len` kept, for a transform of size `n`) within one bin of a
/// multiple of n/8, on either side of the spectrum.
fn notches(n: usize, len: usize) -> Vec<bool> {
    let mut out = vec![false; len];
    for j in 0..=8 {
        let centre = (j * n) as f64 / 8.0;
        for d in -1i64..=1 {
            for c in [
                centre.round() as i64 + d,
                (n as f64 - centre).round() as i64 + d,
            ] {
                if (0..len as i64).contains(&c) {
                    out[c as usize] = true;
                }
            }
        }
    }
    out
}
