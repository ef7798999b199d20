//! Writing the mark: a texture-masked, smoothly interpolated tile pattern,
//! added to luma.
//!
//! Two passes over the rows, so a 24-megapixel picture never needs more than
//! a few rows in memory here: [`Embedder::observe_row`] measures texture
//! (mean absolute difference to the left and upper neighbours, per 8×8
//! block), then [`Embedder::delta_row`] gives the change to add to every
//! colour channel of a row. The mask grows with texture (where changes are
//! least visible and JPEG keeps most detail) and the gain is set so the
//! whole picture lands at the configured PSNR.

use super::layout::{self, Layout, CELLS_PER_SIDE};
use super::{check_row, check_size, working_scale, ImageMarkError};
use crate::code;
use crate::key::MarkKey;
use crate::payload::Payload;

/// Side of the texture-measuring blocks, in picture pixels.
const BLOCK: usize = 8;

/// How strongly to mark.
#[derive(Debug, Clone, PartialEq)]
pub struct EmbedConfig {
    /// Target peak signal-to-noise ratio of the marked picture, in dB.
    pub psnr_db: f32,
    /// Texture (mean absolute neighbour difference, 0-255 scale) added
    /// before the mask exponent, so flat areas still carry some mark.
    pub mask_floor: f32,
    /// Exponent of the texture mask (0 = uniform, 1 = proportional).
    pub mask_exponent: f32,
    /// Largest mask value, as a multiple of the mean (strong edges would
    /// otherwise take most of the energy).
    pub mask_cap: f32,
}

impl Default for EmbedConfig {
    fn default() -> Self {
        Self {
            psnr_db: 39.0,
            mask_floor: 2.0,
            mask_exponent: 0.6,
            mask_cap: 2.5,
        }
    }
}

impl EmbedConfig {
    /// This configuration with the mark's amplitude multiplied by `factor`.
    pub fn scaled(&self, factor: f32) -> Self {
        Self {
            psnr_db: self.psnr_db - 20.0 * factor.max(1e-3).log10(),
            ..self.clone()
        }
    }
}

/// Marks one picture, row by row (see the module docs).
#[derive(Debug)]
pub struct Embedder {
    width: usize,
    height: usize,
    cells: Vec<f32>,
    blocks_x: usize,
    blocks_y: usize,
    activity: Vec<f32>,
    prev: Vec<f32>,
    rows_seen: usize,
    mask: Vec<f32>,
    gain: f32,
    config: EmbedConfig,
    col_cells: Vec<(u16, u16, f32)>,
    col_blocks: Vec<(u32, u32, f32)>,
    scale: f64,
    row_cells: Vec<f32>,
    row_mask: Vec<f32>,
}

impl Embedder {
    /// Prepares to mark a `width`×`height` picture with `payload`.
    pub fn new(
        width: usize,
        height: usize,
        key: &MarkKey,
        payload: &Payload,
        config: &EmbedConfig,
    ) -> Result<Self, ImageMarkError> {
        check_size(width, height)?;
        let layout = Layout::new(key);
        let cells = layout.tile_signs(&code::encode(&payload.to_bits(key)));
        let scale = working_scale(width, height);
        let blocks_x = width.div_ceil(BLOCK);
        let blocks_y = height.div_ceil(BLOCK);
        let col_cells = (0..width)
            .map(|x| {
                let (a, b, f) = layout::cell_coord((x as f64 + 0.5) * scale);
                (a as u16, b as u16, f)
            })
            .collect();
        let col_blocks = (0..width)
            .map(|x| {
                let (a, b, f) = block_coord(x, blocks_x);
                (a as u32, b as u32, f)
            })
            .collect();
        Ok(Self {
            width,
            height,
            cells,
            blocks_x,
            blocks_y,
            activity: vec![0.0; blocks_x * blocks_y],
            prev: Vec::new(),
            rows_seen: 0,
            mask: Vec::new(),
            gain: 0.0,
            config: config.clone(),
            col_cells,
            col_blocks,
            scale,
            row_cells: vec![0.0; CELLS_PER_SIDE],
            row_mask: vec![0.0; blocks_x],
        })
    }

    /// First pass: the next row's luma (0-255 scale), top to bottom.
    pub fn observe_row(&mut self, y: usize, luma: &[f32]) -> Result<(), ImageMarkError> {
        check_row(
            y,
            y == self.rows_seen,
            self.rows_seen,
            luma.len(),
            self.width,
        )?;
        if luma.iter().any(|v| !v.is_finite()) {
            return Err(ImageMarkError::NonFinite);
        }
        let acts = &mut self.activity[(y / BLOCK) * self.blocks_x..][..self.blocks_x];
        for (x, &l) in luma.iter().enumerate() {
            let left = if x > 0 { (l - luma[x - 1]).abs() } else { 0.0 };
            let up = if y > 0 { (l - self.prev[x]).abs() } else { 0.0 };
            acts[x / BLOCK] += left + up;
        }
        self.prev.clear();
        self.prev.extend_from_slice(luma);
        self.rows_seen += 1;
        if self.rows_seen == self.height {
            self.finish_analysis();
        }
        Ok(())
    }

    fn finish_analysis(&mut self) {
        let c = &self.config;
        let (w, h) = (self.width, self.height);
        let mut mask: Vec<f32> = self
            .activity
            .iter()
            .enumerate()
            .map(|(i, &sum)| {
                let bx = i % self.blocks_x;
                let by = i / self.blocks_x;
                let pw = (w - bx * BLOCK).min(BLOCK);
                let ph = (h - by * BLOCK).min(BLOCK);
                let mean = sum / (pw * ph) as f32;
                (mean + c.mask_floor).powf(c.mask_exponent)
            })
            .collect();
        let mean = mask.iter().sum::<f32>() / mask.len() as f32;
        let cap = c.mask_cap * mean;
        for m in &mut mask {
            *m = m.min(cap);
        }
        let mean_sq = mask.iter().map(|m| m * m).sum::<f32>() / mask.len() as f32;
        let tile = layout::render(&self.cells);
        let pattern_sq = tile.iter().map(|p| p * p).sum::<f32>() / tile.len() as f32;
        let mse = 255f32.powi(2) / 10f32.powf(c.psnr_db / 10.0);
        self.gain = (mse / (mean_sq * pattern_sq)).sqrt();
        self.mask = mask;
        self.activity = Vec::new();
        self.prev = Vec::new();
    }

    /// Second pass, after every row was observed: writes into `out` the
    /// change to add to each colour channel of row `y` (0-255 scale).
    pub fn delta_row(&mut self, y: usize, out: &mut [f32]) -> Result<(), ImageMarkError> {
        let ready = self.rows_seen == self.height && y < self.height;
        check_row(y, ready, self.rows_seen, out.len(), self.width)?;
        let (j0, j1, fv) = layout::cell_coord((y as f64 + 0.5) * self.scale);
        let (r0, r1) = (j0 * CELLS_PER_SIDE, j1 * CELLS_PER_SIDE);
        for i in 0..CELLS_PER_SIDE {
            self.row_cells[i] = self.cells[r0 + i] * (1.0 - fv) + self.cells[r1 + i] * fv;
        }
        let (b0, b1, fb) = block_coord(y, self.blocks_y);
        let (m0, m1) = (b0 * self.blocks_x, b1 * self.blocks_x);
        for bx in 0..self.blocks_x {
            self.row_mask[bx] =
                self.gain * (self.mask[m0 + bx] * (1.0 - fb) + self.mask[m1 + bx] * fb);
        }
        for ((o, &(i0, i1, fu)), &(c0, c1, fc)) in
            out.iter_mut().zip(&self.col_cells).zip(&self.col_blocks)
        {
            let p =
                self.row_cells[usize::from(i0)] * (1.0 - fu) + self.row_cells[usize::from(i1)] * fu;
            let m = self.row_mask[c0 as usize] * (1.0 - fc) + self.row_mask[c1 as usize] * fc;
            *o = p * m;
        }
        Ok(())
    }

    /// The PSNR the gain was set for (before rounding and clipping).
    pub fn planned_psnr_db(&self) -> f32 {
        self.config.psnr_db
    }
}

/// The two blocks around pixel `x` (clamped at the edges) and the weight of
/// the second, for a smooth mask.
fn block_coord(x: usize, blocks: usize) -> (usize, usize, f32) {
    let a = (x as f32 + 0.5) / BLOCK as f32 - 0.5;
    if a <= 0.0 {
        return (0, 0, 0.0);
    }
    let i0 = a.floor() as usize;
    if i0 + 1 >= blocks {
        return (blocks - 1, blocks - 1, 0.0);
    }
    (i0, i0 + 1, a - i0 as f32)
}
