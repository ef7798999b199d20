//! Detection as audio arrives: a file of any length is read in bounded
//! memory.
//!
//! What detection needs of the whole file is the block folded at each
//! scale searched, and a fold is a sum over hops. Each hop's whitened row
//! needs only its own frame and ±[`WHITEN_HOPS`] rows around it, so rows
//! are made and folded as samples come, and only the folds (a block of
//! band sums per scale and analysis rate) grow with nothing. Resampling to
//! the other analysis rates runs on the same chunks as a whole-signal pass
//! would. The folds are the same, bit for bit, as those of one spectrogram
//! of the whole signal (the tests compare them).

use std::sync::Arc;

use realfft::num_complex::Complex32;
use realfft::{RealFftPlanner, RealToComplex};
use rubato::{FftFixedIn, Resampler};

use super::analysis::{
    add_row, fast_db, frame_count, peak_floor, sqrt_hann, whiten_row, CLIP_DB, WHITEN_HOPS,
};
use super::detect::{analysis_rates, search_bins, search_folds, search_scales, Detection};
use super::detect::{Folded, Scale};
use super::layout::{Layout, BANDS, BINS_PER_BAND, BLOCK_HOPS, FRAME, HOP};
use super::stream::Rows;
use super::{MarkError, DETECT_RATES};
use crate::key::MarkKey;

/// Which part of the search a pass over the audio does.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DetectPass {
    /// The plain scale at the file's own rate: finds an unaltered copy at
    /// the cost of one spectrogram.
    Plain,
    /// Every scale at every analysis rate.
    Search,
}

impl DetectPass {
    /// The passes, in the order to run them; stop at the first that finds
    /// a verified mark.
    pub const ALL: [DetectPass; 2] = [DetectPass::Plain, DetectPass::Search];
}

/// Reads a mark from audio pushed to it in pieces: one pass of
/// [`DetectPass::ALL`].
pub struct StreamDetector {
    channels: usize,
    layout: Layout,
    key: MarkKey,
    lanes: Vec<Lane>,
    mid: Vec<f32>,
    received: usize,
}

impl StreamDetector {
    /// A detector for audio of `channels` channels at `sample_rate`.
    pub fn new(
        channels: usize,
        sample_rate: u32,
        key: &MarkKey,
        pass: DetectPass,
    ) -> Result<Self, MarkError> {
        if channels == 0 {
            return Err(MarkError::NoChannels);
        }
        if !DETECT_RATES.contains(&sample_rate) {
            return Err(MarkError::SampleRate(sample_rate));
        }
        let mut rates = analysis_rates(sample_rate);
        let scales = match pass {
            DetectPass::Plain => {
                rates.truncate(1);
                vec![Scale::PLAIN]
            }
            DetectPass::Search => search_scales(),
        };
        Ok(StreamDetector {
            channels,
            layout: Layout::new(key),
            key: key.clone(),
            lanes: rates
                .into_iter()
                .map(|r| Lane::new(sample_rate, r, &scales))
                .collect(),
            mid: Vec::new(),
            received: 0,
        })
    }

    /// Samples pushed so far (per channel).
    pub fn received(&self) -> usize {
        self.received
    }

    /// Values held now (samples, rows and folds): what the detector's
    /// memory is made of.
    pub fn held(&self) -> usize {
        self.mid.capacity() + self.lanes.iter().map(Lane::held).sum::<usize>()
    }

    /// Takes the next samples of every channel (`input[c]` for channel
    /// `c`, all the same length). Non-finite samples (a damaged file) read
    /// as silence.
    pub fn push(&mut self, input: &[&[f32]]) -> Result<(), MarkError> {
        if input.len() != self.channels {
            return Err(MarkError::RaggedChannels);
        }
        let n = input[0].len();
        if input.iter().any(|c| c.len() != n) {
            return Err(MarkError::RaggedChannels);
        }
        // The mid, added up as `analysis::mid` does.
        let scale = 1.0 / self.channels as f32;
        self.mid.clear();
        self.mid.resize(n, 0.0);
        for c in input {
            for (m, s) in self.mid.iter_mut().zip(c.iter()) {
                *m += s;
            }
        }
        for m in &mut self.mid {
            *m *= scale;
            if !m.is_finite() {
                *m = 0.0;
            }
        }
        for lane in &mut self.lanes {
            lane.push(&self.mid);
        }
        self.received += n;
        Ok(())
    }

    /// Ends the input and reads the mark: at each analysis rate in turn,
    /// the first verified mark, else the candidate with the best sync.
    pub fn finish(mut self) -> Result<Detection, MarkError> {
        if self.received == 0 {
            return Err(MarkError::Empty);
        }
        let mut best: Option<Detection> = None;
        for lane in &mut self.lanes {
            lane.finish();
            let d = search_folds(&lane.folds.folded(), &self.layout, &self.key);
            if d.tag_ok {
                return Ok(d);
            }
            if best.as_ref().is_none_or(|b| d.sync_z > b.sync_z) {
                best = Some(d);
            }
        }
        Ok(best.expect("every pass has a lane"))
    }

    /// The folds of each lane so far, for the tests.
    #[cfg(test)]
    fn folds(&mut self) -> Vec<Vec<Folded>> {
        self.lanes
            .iter_mut()
            .map(|l| {
                l.finish();
                l.folds.folded()
            })
            .collect()
    }
}

/// One analysis rate: resampling (if the file's rate differs), rows, folds.
struct Lane {
    resampling: Option<Resampling>,
    rows: WhiteRows,
    folds: Folds,
    finished: bool,
}

impl Lane {
    fn new(sample_rate: u32, rate: u32, scales: &[Scale]) -> Self {
        let (lo, hi, bin0, bins) = search_bins(rate);
        Lane {
            resampling: (rate != sample_rate).then(|| Resampling::new(sample_rate, rate)),
            rows: WhiteRows::new(lo, hi, bin0, bins),
            folds: Folds::new(scales, lo, hi, bin0, bins),
            finished: false,
        }
    }

    fn held(&self) -> usize {
        self.resampling.as_ref().map_or(0, Resampling::held) + self.rows.held() + self.folds.held()
    }

    fn push(&mut self, mid: &[f32]) {
        let (rows, folds) = (&mut self.rows, &mut self.folds);
        let mut fold = |t: usize, row: &[f32]| folds.add(t, row);
        match &mut self.resampling {
            Some(r) => r.push(mid, &mut |s| rows.push(s, &mut fold)),
            None => rows.push(mid, &mut fold),
        }
    }

    fn finish(&mut self) {
        if std::mem::replace(&mut self.finished, true) {
            return;
        }
        let (rows, folds) = (&mut self.rows, &mut self.folds);
        let mut fold = |t: usize, row: &[f32]| folds.add(t, row);
        if let Some(r) = &mut self.resampling {
            r.finish(&mut |s| rows.push(s, &mut fold));
        }
        rows.finish(&mut fold);
    }
}

/// Resampling of a stream in the chunks [`super::analysis::resample`]
/// uses, so the samples are the same as that whole-signal pass gives.
struct Resampling {
    /// `None` when the resampler could not be made or failed: the lane
    /// then reads silence (as the whole-signal resampler returns nothing).
    resampler: Option<FftFixedIn<f32>>,
    from: u64,
    to: u64,
    /// Input not yet resampled.
    pending: Vec<f32>,
    received: u64,
    /// Output samples (after the filter's delay) not yet handed on.
    out: Vec<f32>,
    /// Output samples made, with the delay.
    produced: u64,
    released: u64,
}

impl Resampling {
    /// Input samples per chunk, as in the whole-signal resampler.
    const CHUNK: usize = 4096;

    fn new(from: u32, to: u32) -> Self {
        Resampling {
            resampler: FftFixedIn::<f32>::new(from as usize, to as usize, Self::CHUNK, 2, 1).ok(),
            from: u64::from(from),
            to: u64::from(to),
            pending: Vec::new(),
            received: 0,
            out: Vec::new(),
            produced: 0,
            released: 0,
        }
    }

    fn held(&self) -> usize {
        self.pending.capacity() + self.out.capacity()
    }

    fn delay(&self) -> u64 {
        self.resampler
            .as_ref()
            .map_or(0, |r| r.output_delay() as u64)
    }

    /// Keeps what the resampler made, less its leading delay.
    fn take(&mut self, made: &[f32]) {
        let skip = self
            .delay()
            .saturating_sub(self.produced)
            .min(made.len() as u64) as usize;
        self.produced += made.len() as u64;
        self.out.extend_from_slice(&made[skip..]);
    }

    /// Hands on output samples up to `limit` in all.
    fn release(&mut self, limit: u64, sink: &mut dyn FnMut(&[f32])) {
        let n = limit
            .saturating_sub(self.released)
            .min(self.out.len() as u64) as usize;
        if n > 0 {
            sink(&self.out[..n]);
            self.out.drain(..n);
            self.released += n as u64;
        }
    }

    fn push(&mut self, samples: &[f32], sink: &mut dyn FnMut(&[f32])) {
        self.received += samples.len() as u64;
        if self.resampler.is_none() {
            // Nothing will read the input: keep none of it.
            self.pending = Vec::new();
            return;
        }
        self.pending.extend_from_slice(samples);
        let mut used = 0;
        while let Some(r) = &mut self.resampler {
            let need = r.input_frames_next();
            if self.pending.len() - used < need {
                break;
            }
            match r.process(&[&self.pending[used..used + need]], None) {
                Ok(v) => {
                    used += need;
                    self.take(&v[0]);
                }
                Err(_) => self.resampler = None,
            }
        }
        self.pending.drain(..used);
        // Output the finished signal would keep: it is at least as long as
        // what the input so far maps to.
        self.release(self.received * self.to / self.from, sink);
    }

    fn finish(&mut self, sink: &mut dyn FnMut(&[f32])) {
        let expected = self.received * self.to / self.from;
        if let Some(r) = &mut self.resampler {
            if !self.pending.is_empty() {
                match r.process_partial(Some(&[&self.pending[..]]), None) {
                    Ok(v) => self.take(&v[0]),
                    Err(_) => self.resampler = None,
                }
                self.pending.clear();
            }
        }
        // Flush what the filter still holds.
        while self.produced < expected + self.delay() {
            let Some(r) = &mut self.resampler else { break };
            match r.process_partial::<&[f32]>(None, None) {
                Ok(v) if !v[0].is_empty() => self.take(&v[0]),
                _ => break,
            }
        }
        self.release(expected, sink);
        self.out = Vec::new();
    }
}

/// The whitened log spectrogram rows of a mono signal, made as it comes:
/// the same values as `Spectrogram::compute` then `whiten` on the whole.
struct WhiteRows {
    bin0: usize,
    bins: usize,
    /// Where the loudest-bin search runs within a row.
    peak: (usize, usize),
    fft: Arc<dyn RealToComplex<f32>>,
    window: Vec<f32>,
    frame_in: Vec<f32>,
    spectrum: Vec<Complex32>,
    scratch: Vec<Complex32>,
    prefix: Vec<f64>,
    /// Input samples from `input_base` on.
    input: Vec<f32>,
    input_base: usize,
    received: usize,
    total_hops: Option<usize>,
    /// Rows whitened over frequency.
    freq_db: Rows<f32>,
    /// The sliding sum over time of `freq_db` rows `[window_from, window_to)`.
    window_sum: Vec<f64>,
    window_from: usize,
    window_to: usize,
    next_white: usize,
    row: Vec<f32>,
}

impl WhiteRows {
    fn new(lo: usize, hi: usize, bin0: usize, bins: usize) -> Self {
        let p0 = lo.saturating_sub(bin0).min(bins);
        let p1 = hi.saturating_sub(bin0).clamp(p0, bins);
        let fft = RealFftPlanner::<f32>::new().plan_fft_forward(FRAME);
        WhiteRows {
            bin0,
            bins,
            peak: (p0, p1),
            window: sqrt_hann(),
            frame_in: fft.make_input_vec(),
            spectrum: fft.make_output_vec(),
            scratch: fft.make_scratch_vec(),
            fft,
            prefix: vec![0.0; bins + 1],
            input: Vec::new(),
            input_base: 0,
            received: 0,
            total_hops: None,
            freq_db: Rows::new(bins),
            window_sum: vec![0.0; bins],
            window_from: 0,
            window_to: 0,
            next_white: 0,
            row: vec![0.0; bins],
        }
    }

    fn held(&self) -> usize {
        self.input.capacity() + self.freq_db.data.capacity()
    }

    fn push(&mut self, samples: &[f32], out: &mut dyn FnMut(usize, &[f32])) {
        self.input.extend_from_slice(samples);
        self.received += samples.len();
        self.run(out);
    }

    fn finish(&mut self, out: &mut dyn FnMut(usize, &[f32])) {
        self.total_hops = Some(frame_count(self.received));
        self.run(out);
        self.input = Vec::new();
    }

    fn run(&mut self, out: &mut dyn FnMut(usize, &[f32])) {
        loop {
            let t = self.freq_db.end();
            let ready = match self.total_hops {
                Some(h) => t < h,
                None => t * HOP + FRAME <= self.received,
            };
            if !ready {
                break;
            }
            self.analyse(t);
        }
        while self.whiten_ready() {
            self.whiten_next(out);
        }
        self.freq_db.forget_before(self.window_from);
        // Samples before the next frame's start are done with; move the
        // rest only when many have gone, so the cost stays linear.
        let gone = (self.freq_db.end() * HOP)
            .saturating_sub(self.input_base)
            .min(self.input.len());
        if gone >= 1 << 16 {
            self.input.drain(..gone);
            self.input_base += gone;
        }
    }

    /// Frame `t`'s row, whitened over frequency.
    fn analyse(&mut self, t: usize) {
        let start = t * HOP;
        let n = (start + FRAME).min(self.received) - start;
        let samples = &self.input[start - self.input_base..start - self.input_base + n];
        for ((f, s), w) in self.frame_in.iter_mut().zip(samples).zip(&self.window) {
            *f = s * w;
        }
        self.frame_in[n..].fill(0.0);
        self.fft
            .process_with_scratch(&mut self.frame_in, &mut self.spectrum, &mut self.scratch)
            .expect("buffer sizes come from the plan");
        for (p, a) in self
            .row
            .iter_mut()
            .zip(&self.spectrum[self.bin0..self.bin0 + self.bins])
        {
            *p = a.norm_sqr();
        }
        let floor = peak_floor(&self.row[self.peak.0..self.peak.1]);
        for p in &mut self.row {
            *p = fast_db(*p + floor);
        }
        whiten_row(&mut self.row, &mut self.prefix);
        self.freq_db.push(&self.row);
    }

    fn whiten_ready(&self) -> bool {
        let t = self.next_white;
        let analysed = self.freq_db.end();
        match self.total_hops {
            Some(h) => t < h && analysed == h,
            None => t + WHITEN_HOPS < analysed,
        }
    }

    /// The next row whitened over time, handed to `out`.
    fn whiten_next(&mut self, out: &mut dyn FnMut(usize, &[f32])) {
        let t = self.next_white;
        let h = self.total_hops.unwrap_or(usize::MAX);
        let (lo, hi) = (t.saturating_sub(WHITEN_HOPS), (t + WHITEN_HOPS + 1).min(h));
        // The same additions and subtractions, in the same order, as the
        // whole-signal sliding window.
        while self.window_to < hi {
            add_row(&mut self.window_sum, self.freq_db.row(self.window_to), 1.0);
            self.window_to += 1;
        }
        while self.window_from < lo {
            add_row(
                &mut self.window_sum,
                self.freq_db.row(self.window_from),
                -1.0,
            );
            self.window_from += 1;
        }
        let inv = 1.0 / (hi - lo) as f64;
        for ((w, v), s) in self
            .row
            .iter_mut()
            .zip(self.freq_db.row(t))
            .zip(&self.window_sum)
        {
            *w = (v - (s * inv) as f32).clamp(-CLIP_DB, CLIP_DB);
        }
        out(t, &self.row);
        self.next_white += 1;
    }
}

/// The block folded at every scale of a pass, added to hop by hop.
struct Folds {
    scales: Vec<Scale>,
    /// Per distinct frequency scale, the row index each marked bin is read
    /// from (`None` outside the row: it reads 0).
    sources: Vec<Vec<Option<usize>>>,
    /// Per scale, its entry in `sources`.
    source_of: Vec<usize>,
    /// Per scale, band sums per block phase (`[p * BANDS + band]`).
    phase_sums: Vec<Vec<f32>>,
    /// Per distinct frequency scale, the band sums of the current hop.
    bands: Vec<[f32; BANDS]>,
}

impl Folds {
    fn new(scales: &[Scale], lo: usize, hi: usize, bin0: usize, bins: usize) -> Self {
        let mut freqs: Vec<f32> = Vec::new();
        let mut source_of = Vec::with_capacity(scales.len());
        for s in scales {
            source_of.push(match freqs.iter().position(|f| *f == s.freq) {
                Some(i) => i,
                None => {
                    freqs.push(s.freq);
                    freqs.len() - 1
                }
            });
        }
        let sources = freqs
            .iter()
            .map(|&freq| {
                Scale {
                    freq,
                    ..Scale::PLAIN
                }
                .source_bins(lo, hi)
                .into_iter()
                .map(|b| (b >= bin0 && b < bin0 + bins).then(|| b - bin0))
                .collect()
            })
            .collect();
        Folds {
            scales: scales.to_vec(),
            bands: vec![[0.0; BANDS]; freqs.len()],
            sources,
            source_of,
            phase_sums: vec![vec![0.0; BLOCK_HOPS * BANDS]; scales.len()],
        }
    }

    fn held(&self) -> usize {
        self.phase_sums.len() * BLOCK_HOPS * BANDS
    }

    /// Adds hop `t`'s whitened row.
    fn add(&mut self, t: usize, row: &[f32]) {
        for (band, source) in self.bands.iter_mut().zip(&self.sources) {
            band.fill(0.0);
            for (k, i) in source.iter().enumerate() {
                // A bin outside the row reads 0, as in the whole spectrogram.
                band[k / BINS_PER_BAND] += i.map_or(0.0, |i| row[i]);
            }
        }
        for ((scale, sums), &m) in self
            .scales
            .iter()
            .zip(&mut self.phase_sums)
            .zip(&self.source_of)
        {
            let p = scale.phase(t);
            for (s, v) in sums[p * BANDS..(p + 1) * BANDS]
                .iter_mut()
                .zip(&self.bands[m])
            {
                *s += v;
            }
        }
    }

    fn folded(&self) -> Vec<Folded> {
        self.scales
            .iter()
            .zip(&self.phase_sums)
            .map(|(s, sums)| Folded::from_phase_sums(*s, sums))
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::super::analysis::mid;
    use super::super::detect::{detect_whole, folds_whole};
    use super::*;
    use crate::payload::Payload;

    fn key() -> MarkKey {
        MarkKey::from_bytes([7; 32])
    }

    /// Noise-like test audio: a fixed pseudo-random sequence, per channel.
    fn noise(channels: usize, len: usize, seed: u32) -> Vec<Vec<f32>> {
        (0..channels)
            .map(|c| {
                let mut x = seed.wrapping_mul(2_654_435_761).wrapping_add(c as u32 + 1);
                (0..len)
                    .map(|_| {
                        x ^= x << 13;
                        x ^= x >> 17;
                        x ^= x << 5;
                        (x as f32 / u32::MAX as f32 - 0.5) * 0.3
                    })
                    .collect()
            })
            .collect()
    }

    fn push_in_pieces(d: &mut StreamDetector, channels: &[Vec<f32>], piece: usize) {
        let n = channels[0].len();
        let mut start = 0;
        while start < n {
            let end = (start + piece).min(n);
            let p: Vec<&[f32]> = channels.iter().map(|c| &c[start..end]).collect();
            d.push(&p).unwrap();
            start = end;
        }
    }

    #[test]
    fn streaming_folds_are_the_whole_signal_folds_to_the_bit() {
        // (channels, rate, length, piece size)
        let cases = [
            (1, 44_100, 100, 7),
            (2, 44_100, 5 * BLOCK_HOPS * HOP + 3, 4096),
            (2, 48_000, 3 * BLOCK_HOPS * HOP, 1),
            (3, 22_050, 2 * BLOCK_HOPS * HOP + 777, 65_536),
            (2, 16_000, 80_000, 1000),
            (1, 96_000, 1_000_000, 333_333),
            (2, 44_100, FRAME + HOP - 1, 5000),
        ];
        for (i, &(ch, rate, len, piece)) in cases.iter().enumerate() {
            let audio = noise(ch, len, i as u32);
            let mut d = StreamDetector::new(ch, rate, &key(), DetectPass::Search).unwrap();
            push_in_pieces(&mut d, &audio, piece);
            let lanes = d.folds();
            let rates = analysis_rates(rate);
            assert_eq!(lanes.len(), rates.len());
            let m = mid(&audio);
            for (lane, &r) in lanes.iter().zip(&rates) {
                let whole = folds_whole(&m, rate, r);
                assert_eq!(lane.len(), whole.len());
                for (a, b) in lane.iter().zip(&whole) {
                    assert_eq!(a.scale, b.scale);
                    assert!(
                        a.cells
                            .iter()
                            .zip(&b.cells)
                            .all(|(x, y)| x.to_bits() == y.to_bits()),
                        "case {i} ({ch} ch, {rate} Hz, {len} samples, pieces of {piece}) \
                         at {r} Hz, scale {:?}: the folds differ",
                        a.scale
                    );
                }
            }
        }
    }

    #[test]
    fn streaming_detection_reads_as_the_whole_signal_one() {
        let payload = Payload {
            content_server: 11,
            edge: 12,
            home: 13,
            user: 14,
        };
        let audio = noise(2, 6 * BLOCK_HOPS * HOP, 99);
        let mut marked = audio.clone();
        super::super::embed(
            &mut marked,
            44_100,
            &key(),
            &payload,
            &Default::default(),
            &mut |_, _| {},
        )
        .unwrap();
        // Marked, sped up 3% (read back by the search pass), and unmarked.
        let fast: Vec<Vec<f32>> = marked
            .iter()
            .map(|c| super::super::resample(c, 44_100, 42_800))
            .collect();
        for (audio, found) in [(&marked, true), (&fast, true), (&audio, false)] {
            let whole = detect_whole(audio, 44_100, &key());
            let streamed = super::super::detect(audio, 44_100, &key(), &mut |_, _| {}).unwrap();
            assert_eq!(streamed.tag_ok, found);
            assert_eq!(streamed, whole);
            if found {
                assert_eq!(streamed.payload, Some(payload));
            }
        }
    }

    #[test]
    fn memory_does_not_grow_with_the_length() {
        let mut d = StreamDetector::new(2, 48_000, &key(), DetectPass::Search).unwrap();
        let piece = noise(2, 48_000, 5);
        let p: Vec<&[f32]> = piece.iter().map(|c| &c[..]).collect();
        let mut most = 0;
        for second in 0..120 {
            d.push(&p).unwrap();
            if second >= 10 {
                most = most.max(d.held());
            }
        }
        let after_ten = most;
        for _ in 0..120 {
            d.push(&p).unwrap();
            most = most.max(d.held());
        }
        assert_eq!(d.received(), 240 * 48_000);
        // Three lanes of 57 folds; the rest is a few blocks of rows and samples.
        let folds = 3 * search_scales().len() * BLOCK_HOPS * BANDS;
        assert!(most < folds + 2_000_000, "held {most} values");
        assert!(
            most <= after_ten + after_ten / 10,
            "{after_ten} then {most}"
        );
    }

    #[test]
    fn bad_input_is_refused_or_read_as_silence() {
        assert_eq!(
            StreamDetector::new(0, 44_100, &key(), DetectPass::Plain).err(),
            Some(MarkError::NoChannels)
        );
        assert_eq!(
            StreamDetector::new(1, 4_000, &key(), DetectPass::Plain).err(),
            Some(MarkError::SampleRate(4_000))
        );
        let mut d = StreamDetector::new(2, 44_100, &key(), DetectPass::Plain).unwrap();
        assert_eq!(
            d.push(&[&[0.0; 3], &[0.0; 2]]),
            Err(MarkError::RaggedChannels)
        );
        assert_eq!(d.push(&[&[0.0; 3]]), Err(MarkError::RaggedChannels));
        let empty = StreamDetector::new(2, 44_100, &key(), DetectPass::Plain).unwrap();
        assert_eq!(empty.finish().err(), Some(MarkError::Empty));
        d.push(&[&[f32::NAN; 5000], &[f32::INFINITY; 5000]])
            .unwrap();
        let r = d.finish().unwrap();
        assert!(!r.tag_ok);
        assert!(r.sync_z.is_finite());
    }
}
