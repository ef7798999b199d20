//! Two-dimensional FFT of real planes (rows with realfft, columns with
//! rustfft), for the detector's autocorrelation and tile correlations.

use std::sync::Arc;

use realfft::num_complex::Complex32;
use realfft::{ComplexToReal, RealFftPlanner, RealToComplex};
use rustfft::{Fft, FftPlanner};

/// Forward and inverse 2D transforms of one size. The spectrum is the half
/// spectrum along x: `spec_width() = width / 2 + 1` columns × `height` rows,
/// row-major.
pub struct Fft2 {
    width: usize,
    height: usize,
    row_fwd: Arc<dyn RealToComplex<f32>>,
    row_inv: Arc<dyn ComplexToReal<f32>>,
    col_fwd: Arc<dyn Fft<f32>>,
    col_inv: Arc<dyn Fft<f32>>,
}

impl Fft2 {
    pub fn new(width: usize, height: usize) -> Self {
        let mut real = RealFftPlanner::<f32>::new();
        let mut complex = FftPlanner::<f32>::new();
        Self {
            width,
            height,
            row_fwd: real.plan_fft_forward(width),
            row_inv: real.plan_fft_inverse(width),
            col_fwd: complex.plan_fft_forward(height),
            col_inv: complex.plan_fft_inverse(height),
        }
    }

    pub fn spec_width(&self) -> usize {
        self.width / 2 + 1
    }

    /// Spectrum of `plane` (`width × height`, consumed as scratch).
    pub fn forward(&self, plane: &mut [f32]) -> Vec<Complex32> {
        let sw = self.spec_width();
        let mut spec = vec![Complex32::default(); sw * self.height];
        for (row, out) in plane
            .chunks_exact_mut(self.width)
            .zip(spec.chunks_exact_mut(sw))
        {
            self.row_fwd
                .process(row, out)
                .expect("buffer sizes come from the plan");
        }
        self.columns(&mut spec, &self.col_fwd);
        spec
    }

    /// The plane of a spectrum (unnormalised: scaled by width × height).
    pub fn inverse(&self, mut spec: Vec<Complex32>) -> Vec<f32> {
        let sw = self.spec_width();
        self.columns(&mut spec, &self.col_inv);
        let mut plane = vec![0f32; self.width * self.height];
        for (row, out) in spec
            .chunks_exact_mut(sw)
            .zip(plane.chunks_exact_mut(self.width))
        {
            // A real plane's spectrum has real DC and Nyquist columns; drop
            // the rounding noise realfft would reject.
            row[0].im = 0.0;
            if self.width.is_multiple_of(2) {
                row[sw - 1].im = 0.0;
            }
            self.row_inv
                .process(row, out)
                .expect("buffer sizes come from the plan");
        }
        plane
    }

    fn columns(&self, spec: &mut [Complex32], fft: &Arc<dyn Fft<f32>>) {
        let sw = self.spec_width();
        let mut col = vec![Complex32::default(); self.height];
        for x in 0..sw {
            for (y, c) in col.iter_mut().enumerate() {
                *c = spec[y * sw + x];
            }
            fft.process(&mut col);
            for (y, c) in col.iter().enumerate() {
                spec[y * sw + x] = *c;
            }
        }
    }
}

/// The smallest length ≥ `n` whose only prime factors are 2, 3 and 5.
pub fn fast_len(n: usize) -> usize {
    let mut m = n.max(1);
    loop {
        let mut r = m;
        for p in [2, 3, 5] {
            while r.is_multiple_of(p) {
                r /= p;
            }
        }
        if r == 1 {
            return m;
        }
        m += 1;
    }
}
