//! Marking audio as it arrives: the embedder works block by block, so its
//! memory is a few blocks whatever the file's length, and the first marked
//! samples leave before the last ones arrive.
//!
//! Every step of the mark is local in time: an STFT frame reads 1024
//! samples, whitening reads ±12 hops around a hop, a block's gains read
//! only that block's hops, and a synthesised frame adds into 1024 samples.
//! So the embedder holds one block and that margin, and does the same
//! arithmetic in the same order as a pass over the whole signal would: its
//! output is the same to the bit whatever the sizes of the pieces pushed
//! (the tests compare it with the whole-signal reference).

use std::sync::Arc;

use realfft::num_complex::Complex32;
use realfft::{ComplexToReal, RealFftPlanner, RealToComplex};

use super::analysis::{
    add_row, fast_db, peak_floor, sqrt_hann, whiten_row, PairFft, CLIP_DB, WHITEN_BINS, WHITEN_HOPS,
};
use super::embed::{
    marked_energy, snr_ceiling, solve_unit, EmbedConfig, EmbedReport, Group, Guard, SEEN,
};
use super::layout::{
    bin_range, Cell, BANDS, BINS_PER_BAND, BLOCK_HOPS, CELLS, FRAME, HOP, HOPS_PER_SLOT, SLOTS,
};
use super::{MarkError, EMBED_RATES};

/// Rows of per-hop values, `width` wide, from hop `base` on.
pub(super) struct Rows<T> {
    base: usize,
    width: usize,
    /// Rows that must have gone before the rest is moved down.
    move_after: usize,
    pub(super) data: Vec<T>,
}

impl<T: Copy> Rows<T> {
    /// Rows forgotten a block at a time, for callers that forget often.
    pub(super) fn new(width: usize) -> Self {
        Rows {
            base: 0,
            width,
            move_after: BLOCK_HOPS,
            data: Vec::new(),
        }
    }

    /// Room for `rows` rows from the start, forgetting whatever has gone
    /// at each call: for a caller that forgets once a block, so each move
    /// is of the few rows read ahead. Growing a buffer block by block
    /// copied it and touched fresh pages each time, a cost that showed in
    /// a whole marking's time.
    fn reserved(width: usize, rows: usize) -> Self {
        Rows {
            base: 0,
            width,
            move_after: 1,
            data: Vec::with_capacity(width * rows),
        }
    }

    /// Hop after the last row held.
    pub(super) fn end(&self) -> usize {
        self.base + self.data.len() / self.width.max(1)
    }

    pub(super) fn row(&self, t: usize) -> &[T] {
        let i = (t - self.base) * self.width;
        &self.data[i..i + self.width]
    }

    pub(super) fn push(&mut self, row: &[T]) {
        self.data.extend_from_slice(row);
    }

    /// Forgets rows before hop `t`. Moves the rest only when enough have
    /// gone, so the cost stays linear.
    pub(super) fn forget_before(&mut self, t: usize) {
        let gone = t.saturating_sub(self.base).min(self.end() - self.base);
        if gone >= self.move_after {
            self.data.drain(..gone * self.width);
            self.base += gone;
        }
    }
}

/// The sum of the squares of `x`.
#[inline(always)]
pub(super) fn sum_of_squares(x: &[f32]) -> f64 {
    // Runs of 256 samples are summed in `f32` (eight running sums, which
    // the compiler keeps in vector registers; a run's error is a few parts
    // in a million, far below what an energy is used for), each run's
    // total in `f64`.
    let mut total = 0f64;
    for run in x.chunks(256) {
        let mut acc = [0f32; 8];
        let mut eights = run.chunks_exact(8);
        for e in eights.by_ref() {
            for (a, v) in acc.iter_mut().zip(e) {
                *a += v * v;
            }
        }
        let mut sum = f64::from(
            ((acc[0] + acc[1]) + (acc[2] + acc[3])) + ((acc[4] + acc[5]) + (acc[6] + acc[7])),
        );
        for v in eights.remainder() {
            sum += f64::from(v * v);
        }
        total += sum;
    }
    total
}

/// Frames handed out per call of the sink: a run of every channel's
/// samples and differences stays in cache (a multiple of the energies'
/// runs of 256).
const EMIT_RUN: usize = 4096;

/// Frames handed out at once while a block is synthesised: the
/// differences go out while they are still in cache, and only this many
/// (and a frame) are held, not a block. A block is a whole number of
/// these, so the energies are added up over the same runs however the
/// block went out.
const EMIT_BATCH: usize = 8 * EMIT_RUN;
const _: () = assert!((BLOCK_HOPS * HOP).is_multiple_of(EMIT_BATCH));

/// The most frames taken in at once: a larger push is taken in pieces, so
/// the input held is a block and this much, whatever the caller's sizes.
const PUSH_PIECE: usize = 8192;

/// Hops analysed beyond the block being marked: the whitening's margin,
/// a piece's worth and the frames that end past it.
const AHEAD_HOPS: usize = WHITEN_HOPS + PUSH_PIECE / HOP + 4;

/// A group of cells read together, owned: its cells, its sign, and the
/// level per cell it must read at.
type OwnedGroup = (Vec<Cell>, f32, f32);

/// [`StreamEmbedder::run`] compiled for the CPU's widest vectors (pulp
/// picks them at run time): everything it calls is inlined into it.
struct Run<'a, 'b>(&'a mut StreamEmbedder, &'b mut dyn FnMut(&[&[f32]]));

impl pulp::WithSimd for Run<'_, '_> {
    type Output = ();

    #[inline(always)]
    fn with_simd<S: pulp::Simd>(self, _simd: S) {
        self.0.run(self.1);
    }
}

/// Marks audio pushed to it in pieces. See the module docs.
///
/// After [`StreamEmbedder::push`] returns an error the embedder must be
/// dropped: the samples it had are not marked.
pub struct StreamEmbedder {
    channels: usize,
    groups: Vec<OwnedGroup>,
    guard: Option<Guard>,
    config: EmbedConfig,
    /// Marked bins `[lo, hi)`; the mid's spectra hold `bins` bins from `bin0`.
    lo: usize,
    hi: usize,
    bin0: usize,
    bins: usize,
    /// Where the loudest-bin search runs within a mid row.
    peak: (usize, usize),
    forward: Arc<dyn RealToComplex<f32>>,
    inverse: Arc<dyn ComplexToReal<f32>>,
    window: Vec<f32>,
    synthesis_window: Vec<f32>,
    frame_in: Vec<f32>,
    spectrum: Vec<Complex32>,
    forward_scratch: Vec<Complex32>,
    inverse_in: Vec<Complex32>,
    frame_out: Vec<f32>,
    inverse_scratch: Vec<Complex32>,
    /// Stereo only: the mid and side transformed together, with the side's
    /// frame and the two rows.
    pair: Option<PairFft>,
    side_frame: Vec<f32>,
    mid_row: Vec<Complex32>,
    side_row: Vec<Complex32>,
    /// The mid's and the side's difference spectra of a hop (bins `lo..hi`).
    mid_diff: Vec<Complex32>,
    side_diff: Vec<Complex32>,
    power: Vec<f32>,
    prefix: Vec<f64>,
    /// Input samples `[input_base, received)` of every channel.
    input: Vec<Vec<f32>>,
    input_base: usize,
    received: usize,
    /// Total hops, once the input has ended.
    total_hops: Option<usize>,
    /// The mid's spectra (bins from `bin0`) and each side pass's (bins
    /// from `lo`), from the next hop to synthesise on.
    mid_rows: Rows<Complex32>,
    side_rows: Vec<Rows<Complex32>>,
    /// The mid's log spectrum before whitening (for the cells' weights),
    /// after whitening over frequency, and after whitening over time.
    raw_db: Rows<f32>,
    freq_db: Rows<f32>,
    white_db: Rows<f32>,
    /// The sliding sum over time of `freq_db` rows `[window_from, window_to)`.
    window_sum: Vec<f64>,
    window_from: usize,
    window_to: usize,
    next_block: usize,
    /// Factors of the block being synthesised, and the same with only the
    /// sync cells (for guard hops).
    factors: Vec<f32>,
    guarded: Vec<f32>,
    next_synth: usize,
    /// Difference signals from sample `emitted` on: the mid's, then each
    /// side pass's.
    diffs: Vec<Vec<f32>>,
    emitted: usize,
    out: Vec<Vec<f32>>,
    /// Scratch: one channel's difference while emitting, and one frame's
    /// mid samples while analysing.
    diff_out: Vec<f32>,
    mid_frame: Vec<f32>,
    signal_energy: f64,
    diff_energy: f64,
    /// The widest vector instructions this CPU has, found at run time.
    arch: pulp::Arch,
}

impl StreamEmbedder {
    /// An embedder of `payload` under `key`, for audio of `channels`
    /// channels at `sample_rate`.
    pub fn new(
        channels: usize,
        sample_rate: u32,
        key: &crate::key::MarkKey,
        payload: &crate::payload::Payload,
        config: &EmbedConfig,
    ) -> Result<Self, MarkError> {
        let layout = super::layout::Layout::new(key);
        let signs = super::embed::payload_signs(key, payload);
        let groups = super::embed::payload_groups(&layout, &signs, config);
        Self::with_groups(channels, sample_rate, &groups, None, config)
    }

    pub(crate) fn with_groups(
        channels: usize,
        sample_rate: u32,
        groups: &[Group],
        guard: Option<Guard>,
        config: &EmbedConfig,
    ) -> Result<Self, MarkError> {
        if channels == 0 {
            return Err(MarkError::NoChannels);
        }
        if !EMBED_RATES.contains(&sample_rate) {
            return Err(MarkError::SampleRate(sample_rate));
        }
        let (lo, hi) = bin_range(sample_rate);
        let bin0 = lo.saturating_sub(WHITEN_BINS);
        let bins = (hi + WHITEN_BINS).min(FRAME / 2 + 1) - bin0;
        let p0 = lo.saturating_sub(bin0).min(bins);
        let p1 = hi.saturating_sub(bin0).clamp(p0, bins);
        let mut planner = RealFftPlanner::<f32>::new();
        let forward = planner.plan_fft_forward(FRAME);
        let inverse = planner.plan_fft_inverse(FRAME);
        let side_passes = match channels {
            1 => 0,
            2 => 1,
            n => n,
        };
        // Every buffer is given the room it will need at once.
        let held_rows = BLOCK_HOPS + AHEAD_HOPS;
        Ok(StreamEmbedder {
            channels,
            groups: groups
                .iter()
                .map(|(cells, sign, target)| (cells.to_vec(), *sign, *target))
                .collect(),
            guard,
            config: *config,
            lo,
            hi,
            bin0,
            bins,
            peak: (p0, p1),
            window: sqrt_hann(),
            synthesis_window: sqrt_hann().iter().map(|w| w / FRAME as f32).collect(),
            frame_in: forward.make_input_vec(),
            spectrum: forward.make_output_vec(),
            forward_scratch: forward.make_scratch_vec(),
            inverse_in: inverse.make_input_vec(),
            frame_out: inverse.make_output_vec(),
            inverse_scratch: inverse.make_scratch_vec(),
            forward,
            inverse,
            pair: (channels == 2).then(PairFft::new),
            side_frame: vec![0.0; FRAME],
            mid_row: vec![Complex32::default(); bins],
            side_row: vec![Complex32::default(); hi - lo],
            mid_diff: vec![Complex32::default(); hi - lo],
            side_diff: vec![Complex32::default(); hi - lo],
            power: vec![0.0; bins],
            prefix: vec![0.0; bins + 1],
            input: (0..channels)
                .map(|_| Vec::with_capacity(held_rows * HOP + FRAME))
                .collect(),
            input_base: 0,
            received: 0,
            total_hops: None,
            mid_rows: Rows::reserved(bins, held_rows),
            side_rows: (0..side_passes)
                .map(|_| Rows::reserved(hi - lo, held_rows))
                .collect(),
            raw_db: Rows::reserved(bins, held_rows),
            freq_db: Rows::reserved(bins, held_rows + WHITEN_HOPS),
            white_db: Rows::reserved(bins, held_rows),
            window_sum: vec![0.0; bins],
            window_from: 0,
            window_to: 0,
            next_block: 0,
            factors: vec![0.0; CELLS],
            guarded: vec![0.0; CELLS],
            next_synth: 0,
            diffs: (0..1 + side_passes)
                .map(|_| Vec::with_capacity(EMIT_BATCH + 2 * FRAME))
                .collect(),
            emitted: 0,
            out: vec![Vec::new(); channels],
            diff_out: Vec::new(),
            mid_frame: vec![0.0; FRAME],
            signal_energy: 0.0,
            diff_energy: 0.0,
            arch: pulp::Arch::new(),
        })
    }

    /// Samples pushed so far (per channel).
    pub fn received(&self) -> usize {
        self.received
    }

    /// Samples handed out marked so far (per channel).
    pub fn emitted(&self) -> usize {
        self.emitted
    }

    /// Room for values held now (samples, spectra and levels, in 4-byte
    /// units): what the embedder's memory is made of.
    pub fn held(&self) -> usize {
        let rows = self.mid_rows.data.capacity() * 2
            + self
                .side_rows
                .iter()
                .map(|r| r.data.capacity() * 2)
                .sum::<usize>()
            + self.raw_db.data.capacity()
            + self.freq_db.data.capacity()
            + self.white_db.data.capacity();
        let samples = self.input.iter().map(Vec::capacity).sum::<usize>()
            + self.diffs.iter().map(Vec::capacity).sum::<usize>();
        rows + samples
    }

    /// Takes the next samples of every channel (`input[c]` for channel
    /// `c`, all the same length) and calls `sink` with every run of marked
    /// samples that became final, in order.
    pub fn push(
        &mut self,
        input: &[&[f32]],
        sink: &mut dyn FnMut(&[&[f32]]),
    ) -> Result<(), MarkError> {
        if input.len() != self.channels {
            return Err(MarkError::RaggedChannels);
        }
        let n = input[0].len();
        if input.iter().any(|c| c.len() != n) {
            return Err(MarkError::RaggedChannels);
        }
        // Folded without stopping early, so it runs several samples at a
        // time (stopping at the first bad sample ran one at a time).
        if input
            .iter()
            .any(|c| c.iter().fold(false, |bad, s| bad | !s.is_finite()))
        {
            return Err(MarkError::NonFinite);
        }
        let mut from = 0;
        while from < n {
            let to = (from + PUSH_PIECE).min(n);
            for (buf, c) in self.input.iter_mut().zip(input) {
                buf.extend_from_slice(&c[from..to]);
            }
            self.received += to - from;
            self.arch.dispatch(Run(self, sink));
            from = to;
        }
        Ok(())
    }

    /// Ends the input, hands out the rest of the marked samples and says
    /// what was done.
    pub fn finish(mut self, sink: &mut dyn FnMut(&[&[f32]])) -> Result<EmbedReport, MarkError> {
        if self.received == 0 {
            return Err(MarkError::Empty);
        }
        self.total_hops = Some(self.received.div_ceil(HOP));
        self.arch.dispatch(Run(&mut self, sink));
        let snr_db = if self.diff_energy > 0.0 {
            10.0 * (self.signal_energy / self.diff_energy).log10()
        } else {
            f64::INFINITY
        };
        Ok(EmbedReport {
            blocks: self.total_hops.unwrap_or(0).div_ceil(BLOCK_HOPS),
            snr_db,
        })
    }

    /// Does every step the input received so far allows.
    #[inline(always)]
    fn run(&mut self, sink: &mut dyn FnMut(&[&[f32]])) {
        loop {
            // Analyse every frame whose samples are all here (or, at the
            // end, every frame that starts before the end).
            while self.frame_ready(self.raw_db.end()) {
                self.analyse(self.raw_db.end());
            }
            while self.whiten_ready() {
                self.whiten_next();
            }
            if !self.block_ready() {
                break;
            }
            self.mark_block(sink);
            self.emit(sink, false);
            self.forget();
        }
    }

    fn frame_ready(&self, t: usize) -> bool {
        match self.total_hops {
            Some(h) => t < h,
            None => t * HOP + FRAME <= self.received,
        }
    }

    /// Frame `t`'s spectra and its row of the log spectrum.
    #[inline(always)]
    fn analyse(&mut self, t: usize) {
        let start = t * HOP;
        let n = (start + FRAME).min(self.received) - start;
        let off = start - self.input_base;
        // The mid, added up as [`super::analysis::mid`] does.
        let scale = 1.0 / self.channels as f32;
        let mid = &mut self.mid_frame[..n];
        mid.fill(0.0);
        for ch in &self.input {
            for (m, s) in mid.iter_mut().zip(&ch[off..off + n]) {
                *m += s;
            }
        }
        for m in mid.iter_mut() {
            *m *= scale;
        }
        for ((f, m), w) in self.frame_in.iter_mut().zip(&*mid).zip(&self.window) {
            *f = m * w;
        }
        if let Some(pair) = &mut self.pair {
            // Stereo: the mid and the side by one FFT.
            let (l, r) = (&self.input[0][off..off + n], &self.input[1][off..off + n]);
            for (((f, l), r), w) in self.side_frame.iter_mut().zip(l).zip(r).zip(&self.window) {
                *f = 0.5 * (l - r) * w;
            }
            self.frame_in[n..].fill(0.0);
            self.side_frame[n..].fill(0.0);
            pair.forward(
                &self.frame_in,
                &self.side_frame,
                self.bin0..self.bin0 + self.bins,
                &mut self.mid_row,
                self.lo..self.hi,
                &mut self.side_row,
            );
            self.side_rows[0].push(&self.side_row);
        } else {
            self.transform(n);
            self.mid_row
                .copy_from_slice(&self.spectrum[self.bin0..self.bin0 + self.bins]);
        }
        let row = &self.mid_row;
        self.mid_rows.push(row);
        for (p, a) in self.power.iter_mut().zip(row) {
            *p = a.norm_sqr();
        }
        let floor = peak_floor(&self.power[self.peak.0..self.peak.1]);
        for p in &mut self.power {
            *p = fast_db(*p + floor);
        }
        self.raw_db.push(&self.power);
        whiten_row(&mut self.power, &mut self.prefix);
        self.freq_db.push(&self.power);
        if self.pair.is_some() {
            return;
        }
        // Each side pass (more than two channels): each channel's own part.
        for pass in 0..self.side_rows.len() {
            let own = &self.input[pass][off..off + n];
            for (((f, s), m), w) in self
                .frame_in
                .iter_mut()
                .zip(own)
                .zip(&self.mid_frame[..n])
                .zip(&self.window)
            {
                *f = (s - m) * w;
            }
            self.transform(n);
            self.side_rows[pass].push(&self.spectrum[self.lo..self.hi]);
        }
    }

    /// The spectrum of the frame whose first `n` samples are in
    /// `frame_in` (the rest of the frame is silence: the end of the audio).
    #[inline(always)]
    fn transform(&mut self, n: usize) {
        self.frame_in[n..].fill(0.0);
        self.forward
            .process_with_scratch(
                &mut self.frame_in,
                &mut self.spectrum,
                &mut self.forward_scratch,
            )
            .expect("buffer sizes come from the plan");
    }

    /// Whether the next hop can be whitened over time: the rows of its
    /// whole window are analysed.
    fn whiten_ready(&self) -> bool {
        let t = self.white_db.end();
        let analysed = self.freq_db.end();
        match self.total_hops {
            Some(h) => t < h && analysed == h,
            None => t + WHITEN_HOPS < analysed,
        }
    }

    #[inline(always)]
    fn whiten_next(&mut self) {
        let t = self.white_db.end();
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
        let row = self
            .freq_db
            .row(t)
            .iter()
            .zip(&self.window_sum)
            .map(|(v, s)| (v - (s * inv) as f32).clamp(-CLIP_DB, CLIP_DB));
        self.white_db.data.extend(row);
    }

    /// Whether the next block's hops are all whitened.
    fn block_ready(&self) -> bool {
        let start = self.next_block * BLOCK_HOPS;
        let whitened = self.white_db.end();
        match self.total_hops {
            Some(h) => start < h && whitened == h,
            None => whitened >= start + BLOCK_HOPS,
        }
    }

    /// Hops known to exist: all of them once the input has ended.
    fn hops_known(&self) -> usize {
        self.total_hops.unwrap_or(usize::MAX)
    }

    /// Every cell's mean value in `rows` over its hops and bins, block
    /// `block`'s cells in slot-major order: `None` past the end of the
    /// audio, or where the cell has no bins. A slot's bands are added up
    /// side by side (each cell's additions in the same order as one cell
    /// at a time, which waited on each addition in turn).
    #[inline(always)]
    fn cell_means(&self, rows: &Rows<f32>, block: usize) -> [Option<f32>; CELLS] {
        let mut out = [None; CELLS];
        let hops = self.hops_known();
        let first = self.lo - self.bin0;
        // Bins of each band below `hi` (the last bands may be cut short).
        let width = |band: usize| {
            (self.lo + (band + 1) * BINS_PER_BAND)
                .min(self.hi)
                .saturating_sub(self.lo + band * BINS_PER_BAND)
        };
        for slot in 0..SLOTS {
            let t0 = block * BLOCK_HOPS + slot * HOPS_PER_SLOT;
            if t0 >= hops {
                break;
            }
            let t1 = (t0 + HOPS_PER_SLOT).min(hops);
            let mut sum = [0f32; BANDS];
            for t in t0..t1 {
                let row = &rows.row(t)[first..];
                for (band, s) in sum.iter_mut().enumerate() {
                    let w = width(band);
                    for v in &row[band * BINS_PER_BAND..band * BINS_PER_BAND + w] {
                        *s += v;
                    }
                }
            }
            for (band, s) in sum.iter().enumerate() {
                let n = (t1 - t0) * width(band);
                out[slot * BANDS + band] = (n > 0).then(|| s / n as f32);
            }
        }
        out
    }

    /// The block's cell factors, from its gains.
    #[inline(always)]
    fn mark_block(&mut self, sink: &mut dyn FnMut(&[&[f32]])) {
        let block = self.next_block;
        let config = self.config;
        // Per-cell gain weights from the unwhitened levels: a cell quieter
        // than its slot's mean gets more gain, a louder one less.
        let mut weights = vec![1f32; CELLS];
        if config.tilt != 0.0 {
            let max_weight = config.max_weight.max(1.0);
            let raw = self.cell_means(&self.raw_db, block);
            let mut level = [0f32; BANDS];
            for slot in 0..SLOTS {
                if block * BLOCK_HOPS + slot * HOPS_PER_SLOT >= self.hops_known() {
                    continue;
                }
                for (band, l) in level.iter_mut().enumerate() {
                    *l = raw[slot * BANDS + band].unwrap_or(0.0);
                }
                let mean = level.iter().sum::<f32>() / BANDS as f32;
                for (band, l) in level.iter().enumerate() {
                    let x = 10f32.powf((mean - l) * config.tilt / 10.0);
                    weights[slot * BANDS + band] = x.clamp(1.0 / max_weight, max_weight);
                }
            }
        }
        // Gains from what the detector would read off the host alone.
        let mut factors = vec![0f32; CELLS];
        let white = self.cell_means(&self.white_db, block);
        for (cells, sign, target) in &self.groups {
            let mut read = 0f32;
            let mut n = 0usize;
            for c in cells {
                if let Some(v) = white[c.slot as usize * BANDS + c.band as usize] {
                    read += f32::from(c.chip) * sign * v;
                    n += 1;
                }
            }
            let w: Vec<f32> = cells
                .iter()
                .map(|c| weights[c.slot as usize * BANDS + c.band as usize])
                .collect();
            let need = (target * n as f32 - read) / SEEN;
            let unit = solve_unit(need, &w, &config);
            for c in cells {
                let i = c.slot as usize * BANDS + c.band as usize;
                let g = f32::from(c.chip) * sign * (unit * weights[i]).min(config.max_db);
                factors[i] = 10f32.powf(g / 20.0) - 1.0;
            }
        }
        // The ceiling on the block's loudness. Not for A/B variants: the
        // two variants of a block must keep the same sync gains, and their
        // data cells differ, so their ceilings would too.
        let k = match self.guard {
            None => self.snr_ceiling(block, &factors),
            Some(_) => 1.0,
        };
        if k < 1.0 {
            for f in &mut factors {
                *f *= k;
            }
        }
        if let Some(g) = self.guard {
            self.guarded.copy_from_slice(&factors);
            for (cells, _, _) in &self.groups[g.sync_groups..] {
                for c in cells {
                    self.guarded[c.slot as usize * BANDS + c.band as usize] = 0.0;
                }
            }
        }
        self.factors = factors;
        // Synthesise the block's hops, handing out what is final as it
        // goes.
        let end = ((block + 1) * BLOCK_HOPS).min(self.hops_known());
        for t in block * BLOCK_HOPS..end {
            self.synthesise(t);
            self.emit(sink, true);
        }
        self.next_block += 1;
    }

    /// See [`snr_ceiling`]: block `block`'s energy and what its factors
    /// would add.
    #[inline(always)]
    fn snr_ceiling(&self, block: usize, factors: &[f32]) -> f32 {
        let (t0, t1) = (
            block * BLOCK_HOPS,
            ((block + 1) * BLOCK_HOPS).min(self.hops_known()),
        );
        let (s0, s1) = (t0 * HOP, (t1 * HOP).min(self.received));
        let mut signal = 0f64;
        for c in &self.input {
            signal += sum_of_squares(&c[s0 - self.input_base..s1 - self.input_base]);
        }
        let (mut mid, mut sides) = (0f64, 0f64);
        for t in t0..t1 {
            let slot = (t % BLOCK_HOPS) / HOPS_PER_SLOT;
            let row = &factors[slot * BANDS..(slot + 1) * BANDS];
            mid += marked_energy(self.mid_rows.row(t), self.bin0, self.lo, self.hi, row);
            for r in &self.side_rows {
                sides += marked_energy(r.row(t), self.lo, self.lo, self.hi, row);
            }
        }
        snr_ceiling(signal, mid, sides, self.channels, self.config.min_snr_db)
    }

    /// Adds hop `t`'s difference frames into the difference signals.
    #[inline(always)]
    fn synthesise(&mut self, t: usize) {
        let factors = match self.guard {
            Some(g) if g.holds(t) => &self.guarded,
            _ => &self.factors,
        };
        let slot = (t % BLOCK_HOPS) / HOPS_PER_SLOT;
        let row = &factors[slot * BANDS..(slot + 1) * BANDS];
        let start = t * HOP - self.emitted;
        for d in &mut self.diffs {
            if d.len() < start + FRAME {
                d.resize(start + FRAME, 0.0);
            }
        }
        if let Some(pair) = &mut self.pair {
            let mid = &self.mid_rows.row(t)[self.lo - self.bin0..self.hi - self.bin0];
            let side = self.side_rows[0].row(t);
            // The difference spectra: each band's bins times its factor.
            let bands = mid
                .chunks(BINS_PER_BAND)
                .zip(side.chunks(BINS_PER_BAND))
                .zip(row);
            for (((m, v), f), (dm, dv)) in bands.zip(
                self.mid_diff
                    .chunks_mut(BINS_PER_BAND)
                    .zip(self.side_diff.chunks_mut(BINS_PER_BAND)),
            ) {
                for (d, x) in dm.iter_mut().zip(m) {
                    *d = x * f;
                }
                for (d, x) in dv.iter_mut().zip(v) {
                    *d = x * f;
                }
            }
            let (da, db) = self.diffs.split_at_mut(1);
            pair.inverse_add(
                self.lo..self.hi,
                &self.mid_diff,
                &self.side_diff,
                &self.synthesis_window,
                &mut da[0][start..start + FRAME],
                &mut db[0][start..start + FRAME],
            );
            self.next_synth = t + 1;
            return;
        }
        let passes = 1 + self.side_rows.len();
        let spectrum = &mut self.inverse_in;
        for pass in 0..passes {
            let (src, src_bin0) = if pass == 0 {
                (self.mid_rows.row(t), self.bin0)
            } else {
                (self.side_rows[pass - 1].row(t), self.lo)
            };
            spectrum.fill(Complex32::default());
            for bin in self.lo..self.hi {
                spectrum[bin] = src[bin - src_bin0] * row[(bin - self.lo) / BINS_PER_BAND];
            }
            spectrum[0].im = 0.0;
            let last = spectrum.len() - 1;
            spectrum[last].im = 0.0;
            self.inverse
                .process_with_scratch(spectrum, &mut self.frame_out, &mut self.inverse_scratch)
                .expect("buffer sizes come from the plan");
            for ((s, o), w) in self.diffs[pass][start..start + FRAME]
                .iter_mut()
                .zip(&self.frame_out)
                .zip(&self.synthesis_window)
            {
                *s += o * w;
            }
        }
        self.next_synth = t + 1;
    }

    /// Hands out the samples no later frame touches, in runs of
    /// [`EMIT_RUN`] frames: each run's passes (the differences, the
    /// energies, the sums, then the sink's) find its samples in cache, where
    /// a block at a time went out to memory and back on every pass. With
    /// `batches_only`, only whole [`EMIT_BATCH`]es go (while a block is
    /// synthesised); else everything final.
    #[inline(always)]
    fn emit(&mut self, sink: &mut dyn FnMut(&[&[f32]]), batches_only: bool) {
        let fin = if self.total_hops == Some(self.next_synth) {
            self.received
        } else {
            (self.next_synth * HOP).min(self.received)
        };
        if fin <= self.emitted {
            return;
        }
        let mut n = fin - self.emitted;
        if batches_only {
            n -= n % EMIT_BATCH;
            if n == 0 {
                return;
            }
        }
        let base = self.emitted - self.input_base;
        let mut from = 0;
        while from < n {
            let to = (from + EMIT_RUN).min(n);
            for c in 0..self.channels {
                let input = &self.input[c][base + from..base + to];
                let mid = &self.diffs[0][from..to];
                // This channel's difference: the mid's plus its side pass's
                // (the right channel's side difference is the left's
                // negated).
                let diff = &mut self.diff_out;
                diff.clear();
                match self.channels {
                    1 => diff.extend(mid.iter().map(|m| m + 0.0)),
                    2 => {
                        let side = &self.diffs[1][from..to];
                        if c == 1 {
                            diff.extend(mid.iter().zip(side).map(|(m, v)| m + -v));
                        } else {
                            diff.extend(mid.iter().zip(side).map(|(m, v)| m + v));
                        }
                    }
                    _ => {
                        let own = &self.diffs[1 + c][from..to];
                        diff.extend(mid.iter().zip(own).map(|(m, v)| m + v));
                    }
                }
                self.signal_energy += sum_of_squares(input);
                self.diff_energy += sum_of_squares(diff);
                let out = &mut self.out[c];
                out.clear();
                out.extend(input.iter().zip(diff.iter()).map(|(s, d)| s + d));
            }
            let refs: Vec<&[f32]> = self.out.iter().map(Vec::as_slice).collect();
            sink(&refs);
            from = to;
        }
        for d in &mut self.diffs {
            d.drain(..n.min(d.len()));
        }
        self.emitted += n;
    }

    /// Drops what no later step reads.
    #[inline(always)]
    fn forget(&mut self) {
        let next_frame = self.raw_db.end();
        let keep_from = (next_frame * HOP).min(self.emitted);
        if keep_from - self.input_base >= BLOCK_HOPS * HOP {
            let gone = keep_from - self.input_base;
            for c in &mut self.input {
                c.drain(..gone);
            }
            self.input_base = keep_from;
        }
        let block_start = self.next_block * BLOCK_HOPS;
        self.mid_rows.forget_before(self.next_synth);
        for r in &mut self.side_rows {
            r.forget_before(self.next_synth);
        }
        self.raw_db.forget_before(block_start);
        self.white_db.forget_before(block_start);
        self.freq_db.forget_before(self.window_from);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::audio::embed::{payload_groups, payload_signs};
    use crate::audio::embed_reference::embed_groups_whole;
    use crate::audio::layout::Layout;
    use crate::key::MarkKey;
    use crate::payload::Payload;
    use rand::{Rng, SeedableRng};

    const BLOCK: usize = BLOCK_HOPS * HOP;

    fn key() -> MarkKey {
        MarkKey::from_bytes([3; 32])
    }

    fn payload() -> Payload {
        Payload {
            content_server: 5,
            edge: 6,
            home: 7,
            user: 8,
        }
    }

    /// Music-like test audio: tones and noise under a changing level, with
    /// a stretch of silence (the floor and the weights both matter there).
    fn audio(channels: usize, len: usize, seed: u64) -> Vec<Vec<f32>> {
        let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(seed);
        (0..channels)
            .map(|c| {
                (0..len)
                    .map(|i| {
                        let t = i as f32 / 44_100.0;
                        let level = 0.2 + 0.19 * (t * 0.7 + c as f32).sin();
                        let silent = (i / 20_000) % 7 == 3;
                        if silent {
                            0.0
                        } else {
                            level
                                * (0.5
                                    * (t * 440.0 * (1.0 + c as f32) * std::f32::consts::TAU).sin()
                                    + rng.gen_range(-0.5f32..0.5))
                        }
                    })
                    .collect()
            })
            .collect()
    }

    /// Streams `input` through an embedder in pieces of the given sizes (in
    /// turn), returning the marked samples and the report.
    fn streamed(
        input: &[Vec<f32>],
        mut embedder: StreamEmbedder,
        pieces: &[usize],
    ) -> (Vec<Vec<f32>>, EmbedReport, usize) {
        let len = input[0].len();
        let mut out = vec![Vec::new(); input.len()];
        let mut most_held = 0;
        let mut sink = |marked: &[&[f32]]| {
            for (o, m) in out.iter_mut().zip(marked) {
                o.extend_from_slice(m);
            }
        };
        let mut pos = 0;
        let mut k = 0;
        while pos < len {
            let end = (pos + pieces[k % pieces.len()]).min(len);
            k += 1;
            let refs: Vec<&[f32]> = input.iter().map(|c| &c[pos..end]).collect();
            embedder.push(&refs, &mut sink).unwrap();
            most_held = most_held.max(embedder.held());
            pos = end;
        }
        let report = embedder.finish(&mut sink).unwrap();
        (out, report, most_held)
    }

    #[test]
    fn streaming_marks_exactly_as_the_whole_signal_does() {
        let layout = Layout::new(&key());
        let config = EmbedConfig::default();
        let signs = payload_signs(&key(), &payload());
        let groups = payload_groups(&layout, &signs, &config);
        let guard = Guard {
            unit_hops: 96,
            sync_groups: layout.sync.len(),
        };
        // (channels, rate, length, piece sizes, guard)
        let cases: &[(usize, u32, usize, &[usize], bool)] = &[
            (1, 44_100, 1000, &[1000], false),
            (1, 44_100, 1000, &[1, 3, 999], false),
            (2, 44_100, 2 * BLOCK + 12_345, &[65_536], false),
            (2, 44_100, 2 * BLOCK + 12_345, &[1, 7, 4096, 100_000], false),
            (2, 44_100, 2 * BLOCK, &[BLOCK], true),
            (2, 22_050, 3 * BLOCK - HOP, &[5000, 17], false),
            (3, 48_000, BLOCK + 1, &[777], false),
            (1, 96_000, BLOCK + FRAME, &[FRAME], true),
            (2, 44_100, BLOCK_HOPS * HOP * 4 + 3, &[usize::MAX], false),
        ];
        for (i, &(channels, rate, len, pieces, guarded)) in cases.iter().enumerate() {
            let input = audio(channels, len, i as u64);
            let guard = guarded.then_some(guard);
            let mut whole = input.clone();
            let want =
                embed_groups_whole(&mut whole, rate, &groups, guard, &config, &mut |_, _| {})
                    .unwrap();
            let embedder =
                StreamEmbedder::with_groups(channels, rate, &groups, guard, &config).unwrap();
            let (got, report, _) = streamed(&input, embedder, pieces);
            assert_eq!(got.len(), channels, "case {i}");
            for (c, (g, w)) in got.iter().zip(&whole).enumerate() {
                assert_eq!(g.len(), w.len(), "case {i} channel {c}");
                let first_difference = g
                    .iter()
                    .zip(w)
                    .position(|(a, b)| a.to_bits() != b.to_bits());
                assert_eq!(first_difference, None, "case {i} channel {c}");
            }
            assert_eq!(report.blocks, want.blocks, "case {i}");
            assert!(
                (report.snr_db - want.snr_db).abs() < 1e-6 * want.snr_db.abs().max(1.0),
                "case {i}: {} against {}",
                report.snr_db,
                want.snr_db
            );
            // The mark really went in.
            assert!(want.snr_db.is_finite() && want.snr_db > 10.0, "case {i}");
        }
    }

    #[test]
    fn memory_stays_a_few_blocks_and_samples_leave_early() {
        let embedder =
            StreamEmbedder::new(2, 44_100, &key(), &payload(), &EmbedConfig::default()).unwrap();
        let input = audio(2, 40 * BLOCK, 9);
        let mut embedder = embedder;
        let mut first_out_at = None;
        let mut most_held = 0;
        let mut pos = 0;
        while pos < input[0].len() {
            let end = (pos + 4096).min(input[0].len());
            let refs: Vec<&[f32]> = input.iter().map(|c| &c[pos..end]).collect();
            embedder.push(&refs, &mut |_| {}).unwrap();
            if first_out_at.is_none() && embedder.emitted() > 0 {
                first_out_at = Some(end);
            }
            most_held = most_held.max(embedder.held());
            pos = end;
        }
        // The first marked samples leave after about one block and the
        // whitening margin, not at the end.
        let first = first_out_at.expect("samples left before the end");
        assert!(
            first <= BLOCK + WHITEN_HOPS * HOP + FRAME + 4096,
            "first out at {first}"
        );
        // What it holds does not grow with the length: 80 blocks of
        // samples in (40 a channel), under six blocks' worth held (its
        // buffers are sized once; grown as they filled, they held ten).
        assert!(most_held < 6 * BLOCK, "held {most_held} values");
        let rest = embedder.finish(&mut |_| {}).unwrap();
        assert_eq!(rest.blocks, 40);
    }

    #[test]
    fn a_large_push_is_taken_in_pieces() {
        let mut embedder =
            StreamEmbedder::new(2, 44_100, &key(), &payload(), &EmbedConfig::default()).unwrap();
        let input = audio(2, 10 * BLOCK, 4);
        let refs: Vec<&[f32]> = input.iter().map(Vec::as_slice).collect();
        let mut most_out = 0;
        embedder
            .push(&refs, &mut |out| most_out = most_out.max(out[0].len()))
            .unwrap();
        // Ten blocks in one call: the buffers still hold a block and a
        // piece, and the samples still leave in runs.
        assert!(embedder.held() < 6 * BLOCK, "held {}", embedder.held());
        assert!(embedder.emitted() >= 9 * BLOCK);
        assert_eq!(most_out, EMIT_RUN);
    }

    #[test]
    fn bad_input_is_refused() {
        let config = EmbedConfig::default();
        let new = |channels, rate| StreamEmbedder::new(channels, rate, &key(), &payload(), &config);
        assert_eq!(new(0, 44_100).err(), Some(MarkError::NoChannels));
        assert_eq!(new(1, 8_000).err(), Some(MarkError::SampleRate(8_000)));
        let mut e = new(2, 44_100).unwrap();
        let a = [0.1f32; 10];
        let b = [0.1f32; 9];
        assert_eq!(
            e.push(&[&a, &b], &mut |_| {}),
            Err(MarkError::RaggedChannels)
        );
        assert_eq!(e.push(&[&a], &mut |_| {}), Err(MarkError::RaggedChannels));
        let nan = [f32::NAN; 10];
        assert_eq!(e.push(&[&a, &nan], &mut |_| {}), Err(MarkError::NonFinite));
        assert_eq!(e.received(), 0, "nothing refused was taken");
        assert_eq!(
            new(2, 44_100).unwrap().finish(&mut |_| {}).err(),
            Some(MarkError::Empty)
        );
    }
}
