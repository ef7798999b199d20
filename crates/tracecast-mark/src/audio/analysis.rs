//! Short-time spectra shared by embedding and detection: the mid signal, a
//! log-magnitude spectrogram on the marked band, and its whitening.

use std::ops::Range;
use std::sync::Arc;

use realfft::num_complex::Complex32;
use realfft::{RealFftPlanner, RealToComplex};

use super::layout::{FRAME, HOP};

/// Half-width of the whitening box in bins.
pub const WHITEN_BINS: usize = 16;
/// Half-width of the whitening box in hops.
pub const WHITEN_HOPS: usize = 12;
/// Whitened values are clipped to ± this many dB so a transient or a codec's
/// spectral hole cannot outvote many quiet cells.
pub(crate) const CLIP_DB: f32 = 8.0;
/// Power floor relative to the loudest marked bin of the frame (-80 dB).
const RELATIVE_FLOOR: f32 = 1e-8;
/// Power floor: about -90 dB below full scale in one bin.
const FLOOR: f32 = 1e-9;

/// The mid (mean of all channels) signal: what a mono downmix keeps.
pub fn mid(channels: &[Vec<f32>]) -> Vec<f32> {
    let n = channels.first().map_or(0, Vec::len);
    let mut m = vec![0f32; n];
    let scale = 1.0 / channels.len().max(1) as f32;
    for ch in channels {
        for (a, &b) in m.iter_mut().zip(ch) {
            *a += b;
        }
    }
    for a in &mut m {
        *a *= scale;
    }
    m
}

/// Column sums over a sliding range of rows `[from, to)`.
struct Window {
    sum: Vec<f64>,
    from: usize,
    to: usize,
}

impl Window {
    fn new(width: usize) -> Self {
        Window {
            sum: vec![0.0; width],
            from: 0,
            to: 0,
        }
    }

    /// Moves the range to `[lo, hi)`; both ends only ever move forward.
    fn slide(&mut self, rows: &[f32], width: usize, lo: usize, hi: usize) {
        while self.to < hi {
            add_row(
                &mut self.sum,
                &rows[self.to * width..(self.to + 1) * width],
                1.0,
            );
            self.to += 1;
        }
        while self.from < lo {
            add_row(
                &mut self.sum,
                &rows[self.from * width..(self.from + 1) * width],
                -1.0,
            );
            self.from += 1;
        }
    }
}

#[inline(always)]
pub(crate) fn add_row(sum: &mut [f64], row: &[f32], sign: f64) {
    for (s, v) in sum.iter_mut().zip(row) {
        *s += sign * f64::from(*v);
    }
}

/// 10·log10(x) for positive normal x, to about 0.001 dB: the exponent from
/// the float's bits and a short series (in (m−1)/(m+1)) for the mantissa's
/// log. This runs for every bin of every frame.
#[inline(always)]
pub fn fast_db(x: f32) -> f32 {
    let bits = x.to_bits();
    let exponent = ((bits >> 23) & 0xff) as i32 - 127;
    let m = f32::from_bits((bits & 0x007f_ffff) | 0x3f80_0000); // in [1, 2)
    let y = (m - 1.0) / (m + 1.0);
    let y2 = y * y;
    let ln_m = 2.0 * y * (1.0 + y2 * (1.0 / 3.0 + y2 * (0.2 + y2 * (1.0 / 7.0))));
    4.342_944_8 * (exponent as f32 * std::f32::consts::LN_2 + ln_m)
}

/// Square-root periodic Hann window, used for analysis and synthesis alike:
/// its square sums to one at a hop of half a frame, so analysis followed by
/// overlap-add synthesis is exact.
pub fn sqrt_hann() -> Vec<f32> {
    (0..FRAME)
        .map(|n| (std::f32::consts::PI * n as f32 / FRAME as f32).sin())
        .collect()
}

/// Frames (hops) covering `len` samples: frame `t` reads `[t·HOP, t·HOP+FRAME)`.
pub fn frame_count(len: usize) -> usize {
    len.div_ceil(HOP)
}

/// Two real frames transformed together by one complex FFT, the first in
/// the real part and the second in the imaginary part: a stereo copy's mid
/// and side cost one FFT of 1024 points each way rather than two real
/// FFTs (whose own passes over the half spectrum cost as much as the FFT).
/// Only the bins asked for are separated out.
pub(crate) struct PairFft {
    forward: Arc<dyn rustfft::Fft<f32>>,
    inverse: Arc<dyn rustfft::Fft<f32>>,
    buf: Vec<Complex32>,
    scratch: Vec<Complex32>,
}

impl PairFft {
    pub(crate) fn new() -> Self {
        let mut planner = rustfft::FftPlanner::<f32>::new();
        let forward = planner.plan_fft_forward(FRAME);
        let inverse = planner.plan_fft_inverse(FRAME);
        let len = forward
            .get_inplace_scratch_len()
            .max(inverse.get_inplace_scratch_len());
        PairFft {
            forward,
            inverse,
            buf: vec![Complex32::default(); FRAME],
            scratch: vec![Complex32::default(); len],
        }
    }

    /// The spectra of `a` and `b` (each `FRAME` long, windowed), bins
    /// `a_bins` of `a`'s into `a_out` and `b_bins` of `b`'s into `b_out`,
    /// as a real FFT gives them (unscaled).
    #[inline(always)]
    pub(crate) fn forward(
        &mut self,
        a: &[f32],
        b: &[f32],
        a_bins: Range<usize>,
        a_out: &mut [Complex32],
        b_bins: Range<usize>,
        b_out: &mut [Complex32],
    ) {
        for ((z, &re), &im) in self.buf.iter_mut().zip(a).zip(b) {
            *z = Complex32::new(re, im);
        }
        self.forward
            .process_with_scratch(&mut self.buf, &mut self.scratch);
        // A real signal's spectrum is conjugate-symmetric: the real part's
        // is (Z[k] + conj Z[N-k]) / 2 and the imaginary part's is
        // (Z[k] - conj Z[N-k]) / 2i.
        // Bin k's mirror is FRAME - k (bin 0 is its own): walked forwards
        // over k and backwards over the mirrors, which runs several bins
        // at a time.
        let z = &self.buf;
        let mirrors = |bins: &Range<usize>| {
            let zero = (bins.start == 0 && !bins.is_empty()).then(|| &z[0]);
            let rest = bins.start.max(1)..bins.end.max(1);
            zero.into_iter()
                .chain(z[FRAME + 1 - rest.end..FRAME + 1 - rest.start].iter().rev())
        };
        for ((p, q), out) in z[a_bins.clone()]
            .iter()
            .zip(mirrors(&a_bins))
            .zip(a_out.iter_mut())
        {
            *out = (p + q.conj()) * 0.5;
        }
        for ((p, q), out) in z[b_bins.clone()]
            .iter()
            .zip(mirrors(&b_bins))
            .zip(b_out.iter_mut())
        {
            let d = p - q.conj();
            *out = Complex32::new(0.5 * d.im, -0.5 * d.re);
        }
    }

    /// The real signals whose spectra are `a` and `b` on bins `bins` (and
    /// nothing elsewhere; never bin 0 or `FRAME / 2`; `a` and `b` hold
    /// those bins only), unscaled as a real inverse FFT gives them, times
    /// `window` and added into `a_out` and `b_out` (overlap-add synthesis;
    /// all `FRAME` long).
    #[inline(always)]
    pub(crate) fn inverse_add(
        &mut self,
        bins: Range<usize>,
        a: &[Complex32],
        b: &[Complex32],
        window: &[f32],
        a_out: &mut [f32],
        b_out: &mut [f32],
    ) {
        assert!(bins.start > 0 && bins.end <= FRAME / 2);
        assert!(a.len() == bins.len() && b.len() == bins.len());
        // Z = X + iY on the positive bins, conj X + i conj Y on their
        // mirrors (FRAME - k, walked backwards): the inverse's real part is
        // x, its imaginary part y. Only the bins left empty are zeroed.
        let (start, end) = (bins.start, bins.end);
        let buf = &mut self.buf;
        buf[..start].fill(Complex32::default());
        buf[end..FRAME + 1 - end].fill(Complex32::default());
        buf[FRAME + 1 - start..].fill(Complex32::default());
        for ((z, x), y) in buf[start..end].iter_mut().zip(a).zip(b) {
            *z = Complex32::new(x.re - y.im, x.im + y.re);
        }
        for ((z, x), y) in buf[FRAME + 1 - end..FRAME + 1 - start]
            .iter_mut()
            .rev()
            .zip(a)
            .zip(b)
        {
            *z = Complex32::new(x.re + y.im, y.re - x.im);
        }
        self.inverse.process_with_scratch(buf, &mut self.scratch);
        for (((z, w), x), y) in buf.iter().zip(window).zip(a_out).zip(b_out) {
            *x += z.re * w;
            *y += z.im * w;
        }
    }
}

/// Complex STFT of bins `[bin0, bin0 + bins)`, row per hop.
pub struct Stft {
    pub hops: usize,
    pub bin0: usize,
    pub bins: usize,
    pub data: Vec<Complex32>,
}

impl Stft {
    /// Computes the STFT of `signal` (sqrt-Hann window).
    pub fn compute(signal: &[f32], bin0: usize, bins: usize) -> Self {
        let hops = frame_count(signal.len());
        let mut planner = RealFftPlanner::<f32>::new();
        let fft: Arc<dyn RealToComplex<f32>> = planner.plan_fft_forward(FRAME);
        let window = sqrt_hann();
        let mut input = fft.make_input_vec();
        let mut output = fft.make_output_vec();
        let mut scratch = fft.make_scratch_vec();
        let mut data = vec![Complex32::default(); hops * bins];
        for t in 0..hops {
            let start = t * HOP;
            let end = (start + FRAME).min(signal.len());
            let n = end - start;
            for i in 0..n {
                input[i] = signal[start + i] * window[i];
            }
            input[n..].fill(0.0);
            fft.process_with_scratch(&mut input, &mut output, &mut scratch)
                .expect("buffer sizes come from the plan");
            data[t * bins..(t + 1) * bins].copy_from_slice(&output[bin0..bin0 + bins]);
        }
        Stft {
            hops,
            bin0,
            bins,
            data,
        }
    }

    /// The STFTs of `a` (bins `a_bins`) and `b` (bins `b_bins`), both
    /// computed by one [`PairFft`] per hop, as the streaming embedder does
    /// for a stereo copy's mid and side.
    #[cfg(test)]
    pub fn compute_pair(
        a: &[f32],
        b: &[f32],
        a_bins: Range<usize>,
        b_bins: Range<usize>,
    ) -> (Self, Self) {
        let hops = frame_count(a.len());
        let window = sqrt_hann();
        let mut fft = PairFft::new();
        let (mut fa, mut fb) = (vec![0f32; FRAME], vec![0f32; FRAME]);
        let mut xa = vec![Complex32::default(); hops * a_bins.len()];
        let mut xb = vec![Complex32::default(); hops * b_bins.len()];
        for t in 0..hops {
            let start = t * HOP;
            let n = (start + FRAME).min(a.len()) - start;
            for i in 0..n {
                fa[i] = a[start + i] * window[i];
                fb[i] = b[start + i] * window[i];
            }
            fa[n..].fill(0.0);
            fb[n..].fill(0.0);
            fft.forward(
                &fa,
                &fb,
                a_bins.clone(),
                &mut xa[t * a_bins.len()..(t + 1) * a_bins.len()],
                b_bins.clone(),
                &mut xb[t * b_bins.len()..(t + 1) * b_bins.len()],
            );
        }
        let stft = |bins: Range<usize>, data| Stft {
            hops,
            bin0: bins.start,
            bins: bins.len(),
            data,
        };
        (stft(a_bins, xa), stft(b_bins, xb))
    }

    /// Row of hop `t`.
    pub fn row(&self, t: usize) -> &[Complex32] {
        &self.data[t * self.bins..(t + 1) * self.bins]
    }
}

#[cfg(test)]
/// Overlap-add synthesis of `len` samples from band-limited spectra:
/// `fill(t, spectrum)` writes hop `t`'s full half-spectrum (zeroed before).
pub fn synthesize(len: usize, mut fill: impl FnMut(usize, &mut [Complex32])) -> Vec<f32> {
    let hops = frame_count(len);
    let mut planner = RealFftPlanner::<f32>::new();
    let inv = planner.plan_fft_inverse(FRAME);
    // The synthesis window with the inverse FFT's 1/N folded in.
    let window: Vec<f32> = sqrt_hann().iter().map(|w| w / FRAME as f32).collect();
    let mut spectrum = inv.make_input_vec();
    let mut out = inv.make_output_vec();
    let mut scratch = inv.make_scratch_vec();
    let mut signal = vec![0f32; hops * HOP + FRAME];
    for t in 0..hops {
        spectrum.fill(Complex32::default());
        fill(t, &mut spectrum);
        // A real signal's DC and Nyquist bins are real.
        spectrum[0].im = 0.0;
        let last = spectrum.len() - 1;
        spectrum[last].im = 0.0;
        inv.process_with_scratch(&mut spectrum, &mut out, &mut scratch)
            .expect("buffer sizes come from the plan");
        let start = t * HOP;
        for ((s, o), w) in signal[start..start + FRAME]
            .iter_mut()
            .zip(&out)
            .zip(&window)
        {
            *s += o * w;
        }
    }
    signal.truncate(len);
    signal
}

#[cfg(test)]
/// As [`synthesize`] for two signals at once, by one [`PairFft`] per hop:
/// `fill(t, a, b)` writes hop `t`'s spectra on bins `bins` (`a` and `b`
/// hold those bins only, zeroed before).
pub fn synthesize_pair(
    len: usize,
    bins: Range<usize>,
    mut fill: impl FnMut(usize, &mut [Complex32], &mut [Complex32]),
) -> (Vec<f32>, Vec<f32>) {
    let hops = frame_count(len);
    let mut fft = PairFft::new();
    let window: Vec<f32> = sqrt_hann().iter().map(|w| w / FRAME as f32).collect();
    let (mut sa, mut sb) = (
        vec![Complex32::default(); bins.len()],
        vec![Complex32::default(); bins.len()],
    );
    let mut a = vec![0f32; hops * HOP + FRAME];
    let mut b = vec![0f32; hops * HOP + FRAME];
    for t in 0..hops {
        sa.fill(Complex32::default());
        sb.fill(Complex32::default());
        fill(t, &mut sa, &mut sb);
        let start = t * HOP;
        fft.inverse_add(
            bins.clone(),
            &sa,
            &sb,
            &window,
            &mut a[start..start + FRAME],
            &mut b[start..start + FRAME],
        );
    }
    a.truncate(len);
    b.truncate(len);
    (a, b)
}

/// A log-magnitude spectrogram of bins `[bin0, bin0 + bins)`, row per hop.
pub struct Spectrogram {
    pub hops: usize,
    pub bin0: usize,
    pub bins: usize,
    pub db: Vec<f32>,
}

impl Spectrogram {
    /// Computes the spectrogram of `signal`.
    pub fn compute(signal: &[f32], bin0: usize, bins: usize, peak: Range<usize>) -> Self {
        Self::from_stft(&Stft::compute(signal, bin0, bins), None, peak)
    }

    /// Levels in dB of `stft`, plus `extra` (same shape) when given. The
    /// floor of each frame is set from its loudest bin in `peak` (absolute
    /// bins: the marked range, so bass outside it does not raise the floor).
    pub fn from_stft(stft: &Stft, extra: Option<&Stft>, peak: Range<usize>) -> Self {
        let p0 = peak.start.saturating_sub(stft.bin0).min(stft.bins);
        let p1 = peak.end.saturating_sub(stft.bin0).clamp(p0, stft.bins);
        let bins = stft.bins;
        let mut db = vec![0f32; stft.hops * bins];
        let mut power = vec![0f32; bins];
        for t in 0..stft.hops {
            let row = stft.row(t);
            match extra {
                Some(e) => {
                    for ((p, a), b) in power.iter_mut().zip(row).zip(e.row(t)) {
                        *p = (a + b).norm_sqr();
                    }
                }
                None => {
                    for (p, a) in power.iter_mut().zip(row) {
                        *p = a.norm_sqr();
                    }
                }
            }
            // Bins far below the frame's loudest are floored: codecs discard
            // them, and their wild level swings would only add noise.
            let floor = peak_floor(&power[p0..p1]);
            for (v, p) in db[t * bins..(t + 1) * bins].iter_mut().zip(&power) {
                *v = fast_db(p + floor);
            }
        }
        Spectrogram {
            hops: stft.hops,
            bin0: stft.bin0,
            bins,
            db,
        }
    }

    /// Removes what the mark does not modulate: each frame's broadband
    /// level (onsets, fades: a local mean across frequency) and then each
    /// bin's sustained level (held notes: a local mean across time). What is
    /// left is the fine time-frequency structure the mark lives in; it is
    /// clipped so no single loud event outvotes many quiet cells.
    pub fn whiten(&mut self) {
        let (h, b) = (self.hops, self.bins);
        if h == 0 || b == 0 {
            return;
        }
        // Across frequency, per frame.
        let mut prefix = vec![0f64; b + 1];
        for t in 0..h {
            whiten_row(&mut self.db[t * b..(t + 1) * b], &mut prefix);
        }
        // Across time, per bin: sliding windows over rows, kept row-major so
        // the sums stay in cache.
        let rows = self.db.clone();
        let mut window = Window::new(b);
        for t in 0..h {
            let (lo, hi) = (t.saturating_sub(WHITEN_HOPS), (t + WHITEN_HOPS + 1).min(h));
            window.slide(&rows, b, lo, hi);
            let inv = 1.0 / (hi - lo) as f64;
            for ((out, v), s) in self.db[t * b..(t + 1) * b]
                .iter_mut()
                .zip(&rows[t * b..(t + 1) * b])
                .zip(&window.sum)
            {
                *out = (v - (s * inv) as f32).clamp(-CLIP_DB, CLIP_DB);
            }
        }
    }

    /// Value at hop `t`, absolute bin `bin` (0 outside the computed range).
    #[inline]
    pub fn at(&self, t: usize, bin: usize) -> f32 {
        if t < self.hops && bin >= self.bin0 && bin < self.bin0 + self.bins {
            self.db[t * self.bins + bin - self.bin0]
        } else {
            0.0
        }
    }
}

/// The power floor of a frame whose marked bins are `power`: 80 dB under
/// the loudest, and never under [`FLOOR`].
#[inline(always)]
pub(crate) fn peak_floor(power: &[f32]) -> f32 {
    let peak = power.iter().copied().fold(0.0, f32::max);
    (peak * RELATIVE_FLOOR).max(FLOOR)
}

/// Whitening over frequency of one hop's row: each value less the mean of
/// the ±[`WHITEN_BINS`] around it. `prefix` is scratch, one longer than the
/// row.
#[inline(always)]
pub(crate) fn whiten_row(row: &mut [f32], prefix: &mut [f64]) {
    let b = row.len();
    // The prefix sums in four quarters at once (four independent chains of
    // additions rather than one), each quarter then offset by the total
    // before it.
    let q = b / 4;
    prefix[0] = 0.0;
    let (mut s0, mut s1, mut s2, mut s3) = (0f64, 0f64, 0f64, 0f64);
    for k in 0..q {
        s0 += f64::from(row[k]);
        s1 += f64::from(row[q + k]);
        s2 += f64::from(row[2 * q + k]);
        s3 += f64::from(row[3 * q + k]);
        prefix[k + 1] = s0;
        prefix[q + k + 1] = s1;
        prefix[2 * q + k + 1] = s2;
        prefix[3 * q + k + 1] = s3;
    }
    for k in 4 * q..b {
        s3 += f64::from(row[k]);
        prefix[k + 1] = s3;
    }
    for quarter in 1..4 {
        let base = prefix[quarter * q];
        let end = if quarter == 3 { b } else { (quarter + 1) * q };
        for p in &mut prefix[quarter * q + 1..=end] {
            *p += base;
        }
    }
    // The bins whose window is whole share one divisor: a loop apart, it
    // runs several bins at a time. The same values as the edges' formula.
    let whole = WHITEN_BINS..b.saturating_sub(WHITEN_BINS);
    let width = (2 * WHITEN_BINS + 1) as f64;
    for (k, v) in row.iter_mut().enumerate() {
        if whole.contains(&k) {
            continue;
        }
        let (lo, hi) = (k.saturating_sub(WHITEN_BINS), (k + WHITEN_BINS + 1).min(b));
        *v -= ((prefix[hi] - prefix[lo]) / (hi - lo) as f64) as f32;
    }
    if !whole.is_empty() {
        let n = whole.len();
        let (ahead, behind) = (&prefix[2 * WHITEN_BINS + 1..], &prefix[..n]);
        for ((v, a), z) in row[whole].iter_mut().zip(ahead).zip(behind) {
            *v -= ((a - z) / width) as f32;
        }
    }
}

/// Resamples a mono signal from `from` Hz to `to` Hz (band-limited, FFT
/// based), keeping it aligned in time: output sample `i` is at time `i / to`.
pub fn resample(signal: &[f32], from: u32, to: u32) -> Vec<f32> {
    use rubato::{FftFixedIn, Resampler};
    if from == to || signal.is_empty() {
        return signal.to_vec();
    }
    const CHUNK: usize = 4096;
    let Ok(mut r) = FftFixedIn::<f32>::new(from as usize, to as usize, CHUNK, 2, 1) else {
        return Vec::new();
    };
    let expected = (signal.len() as u64 * u64::from(to) / u64::from(from)) as usize;
    let mut out = Vec::with_capacity(expected + CHUNK);
    let mut pos = 0;
    while pos < signal.len() {
        let need = r.input_frames_next();
        let result = if pos + need <= signal.len() {
            r.process(&[&signal[pos..pos + need]], None)
        } else {
            r.process_partial(Some(&[&signal[pos..]]), None)
        };
        match result {
            Ok(mut v) => out.append(&mut v[0]),
            Err(_) => return Vec::new(),
        }
        pos += need;
    }
    // Flush what the filter still holds.
    while out.len() < expected + r.output_delay() {
        match r.process_partial::<&[f32]>(None, None) {
            Ok(mut v) if !v[0].is_empty() => out.append(&mut v[0]),
            _ => break,
        }
    }
    let delay = r.output_delay().min(out.len());
    out.drain(..delay);
    out.truncate(expected);
    out
}

#[cfg(test)]
mod tests {
    use super::fast_db;

    /// The pair transform gives what two real FFTs give, both ways, on
    /// every bin range the embedder asks for.
    #[test]
    fn a_pair_fft_is_two_real_ffts() {
        use super::{PairFft, FRAME};
        use rand::{Rng, SeedableRng};
        use realfft::num_complex::Complex32;
        use realfft::RealFftPlanner;
        let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(9);
        let mut planner = RealFftPlanner::<f32>::new();
        let (fwd, inv) = (
            planner.plan_fft_forward(FRAME),
            planner.plan_fft_inverse(FRAME),
        );
        let mut pair = PairFft::new();
        let close = |x: Complex32, y: Complex32, scale: f32| (x - y).norm() <= 1e-5 * scale;
        for (a_bins, b_bins) in [(0..201, 7..187), (0..513, 1..512), (3..150, 19..40)] {
            let a: Vec<f32> = (0..FRAME).map(|_| rng.gen_range(-1.0..1.0)).collect();
            let b: Vec<f32> = (0..FRAME).map(|_| rng.gen_range(-0.1..0.1)).collect();
            let real = |x: &[f32]| {
                let (mut i, mut o) = (x.to_vec(), fwd.make_output_vec());
                fwd.process(&mut i, &mut o).unwrap();
                o
            };
            let (ra, rb) = (real(&a), real(&b));
            let mut pa = vec![Complex32::default(); a_bins.len()];
            let mut pb = vec![Complex32::default(); b_bins.len()];
            pair.forward(&a, &b, a_bins.clone(), &mut pa, b_bins.clone(), &mut pb);
            for (k, x) in a_bins.clone().zip(&pa) {
                assert!(close(*x, ra[k], 32.0), "a bin {k}: {x} against {}", ra[k]);
            }
            for (k, x) in b_bins.clone().zip(&pb) {
                assert!(close(*x, rb[k], 32.0), "b bin {k}: {x} against {}", rb[k]);
            }
            // Back: spectra on `b_bins` only, against the real inverse.
            let band = |r: &[Complex32]| -> Vec<Complex32> {
                let mut full = inv.make_input_vec();
                for k in b_bins.clone() {
                    full[k] = r[k];
                }
                full
            };
            let real_back = |mut full: Vec<Complex32>| {
                let mut o = inv.make_output_vec();
                inv.process(&mut full, &mut o).unwrap();
                o
            };
            let (want_a, want_b) = (real_back(band(&ra)), real_back(band(&rb)));
            let window = vec![0.5f32; FRAME];
            let (mut got_a, mut got_b) = (vec![1f32; FRAME], vec![-1f32; FRAME]);
            pair.inverse_add(
                b_bins.clone(),
                &ra[b_bins.clone()],
                &rb[b_bins.clone()],
                &window,
                &mut got_a,
                &mut got_b,
            );
            for n in 0..FRAME {
                assert!(
                    (got_a[n] - (1.0 + 0.5 * want_a[n])).abs() < 1e-2,
                    "a sample {n}"
                );
                assert!(
                    (got_b[n] - (-1.0 + 0.5 * want_b[n])).abs() < 1e-2,
                    "b sample {n}"
                );
            }
        }
    }

    #[test]
    fn fast_db_is_close_to_the_real_thing() {
        let mut x = 1e-12f32;
        while x < 1e6 {
            let err = (fast_db(x) - 10.0 * x.log10()).abs();
            assert!(err < 0.002, "{x}: {err}");
            x *= 1.37;
        }
    }
}
