//! Where the mark's bits sit in the tile.
//!
//! A tile is [`CELLS_PER_SIDE`]² cells of [`CELL`] working pixels. From a
//! ChaCha20 stream seeded by a key-derived subkey the cells are shuffled:
//! the first [`SYNC_CELLS`] carry a ±1 sync chip, the rest are dealt in turn
//! to the coded bits (2-3 cells each, scattered over the tile), each with
//! its own ±1 chip.

use rand::seq::SliceRandom;
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha20Rng;

use crate::code;
use crate::key::MarkKey;
use crate::payload::PAYLOAD_BITS;

/// Working pixels per cell side.
pub const CELL: usize = 4;
/// Cells per tile side.
pub const CELLS_PER_SIDE: usize = 32;
/// Tile side in working pixels.
pub const TILE: usize = CELL * CELLS_PER_SIDE;
/// Cells per tile.
pub const CELLS: usize = CELLS_PER_SIDE * CELLS_PER_SIDE;
/// Cells that carry the sync pattern.
pub const SYNC_CELLS: usize = 192;
/// Coded bits of the payload.
pub const CODED_BITS: usize = code::coded_len(PAYLOAD_BITS);

/// One cell: its index (row-major in the tile) and chip.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Cell {
    pub index: u16,
    pub chip: i8,
}

/// The key's layout of sync and payload cells.
#[derive(Debug, Clone)]
pub struct Layout {
    pub sync: Vec<Cell>,
    /// For each coded bit, its cells; a cell's sign is chip × bit (±1).
    pub bits: Vec<Vec<Cell>>,
}

impl Layout {
    /// Derives the layout from the key.
    pub fn new(key: &MarkKey) -> Self {
        let mut rng = ChaCha20Rng::from_seed(key.derive(b"image-layout/v1"));
        let mut order: Vec<u16> = (0..CELLS as u16).collect();
        order.shuffle(&mut rng);
        let mut cells = order.into_iter().map(|index| Cell {
            index,
            chip: if rng.gen::<bool>() { 1 } else { -1 },
        });
        let sync: Vec<Cell> = cells.by_ref().take(SYNC_CELLS).collect();
        let mut bits = vec![Vec::new(); CODED_BITS];
        for (i, c) in cells.enumerate() {
            bits[i % CODED_BITS].push(c);
        }
        Layout { sync, bits }
    }

    /// Cell values (±1) of the whole tile for these coded bits.
    pub fn tile_signs(&self, coded: &[u8]) -> Vec<f32> {
        let mut v = self.sync_signs();
        for (cells, &b) in self.bits.iter().zip(coded) {
            let s = if b == 1 { 1.0 } else { -1.0 };
            for c in cells {
                v[usize::from(c.index)] = s * f32::from(c.chip);
            }
        }
        v
    }

    /// Cell values of the sync cells alone (0 elsewhere).
    pub fn sync_signs(&self) -> Vec<f32> {
        let mut v = vec![0f32; CELLS];
        for c in &self.sync {
            v[usize::from(c.index)] = f32::from(c.chip);
        }
        v
    }
}

/// The pattern at working-grid position (u, v), any real numbers: the cell
/// values interpolated bilinearly between cell centres, repeating every
/// [`TILE`] pixels.
pub fn sample(cells: &[f32], u: f64, v: f64) -> f32 {
    let (i0, i1, fu) = cell_coord(u);
    let (j0, j1, fv) = cell_coord(v);
    let row0 = j0 * CELLS_PER_SIDE;
    let row1 = j1 * CELLS_PER_SIDE;
    let top = cells[row0 + i0] * (1.0 - fu) + cells[row0 + i1] * fu;
    let bottom = cells[row1 + i0] * (1.0 - fu) + cells[row1 + i1] * fu;
    top * (1.0 - fv) + bottom * fv
}

/// The two cells around working coordinate `u` and the weight of the second.
pub(crate) fn cell_coord(u: f64) -> (usize, usize, f32) {
    let a = u / CELL as f64 - 0.5;
    let fl = a.floor();
    let i0 = (fl as i64).rem_euclid(CELLS_PER_SIDE as i64) as usize;
    let i1 = (i0 + 1) % CELLS_PER_SIDE;
    (i0, i1, (a - fl) as f32)
}

/// The tile rendered at one value per working pixel ([`TILE`]², row-major).
pub fn render(cells: &[f32]) -> Vec<f32> {
    let mut out = vec![0f32; TILE * TILE];
    for y in 0..TILE {
        for x in 0..TILE {
            out[y * TILE + x] = sample(cells, x as f64 + 0.5, y as f64 + 0.5);
        }
    }
    out
}
