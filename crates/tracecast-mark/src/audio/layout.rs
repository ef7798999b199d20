//! Where and how the audio mark sits: the time-frequency grid of cells, and
//! the key-derived assignment of cells to sync and payload bits.

use rand::seq::SliceRandom;
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha20Rng;

use crate::code;
use crate::key::MarkKey;
use crate::payload::PAYLOAD_BITS;

/// STFT frame length in samples.
pub const FRAME: usize = 1024;
/// Hop between frames (half a frame).
pub const HOP: usize = FRAME / 2;
/// Frames (hops) per cell in time: a cell lasts 2048 samples (46 ms at 44.1 kHz).
pub const HOPS_PER_SLOT: usize = 4;
/// Cells per block in time; a block lasts 96 × 2048 samples (4.46 s at
/// 44.1 kHz) so any 5-second excerpt holds one whole block, cyclically.
pub const SLOTS: usize = 96;
/// Hops per block.
pub const BLOCK_HOPS: usize = SLOTS * HOPS_PER_SLOT;
/// FFT bins per cell in frequency.
pub const BINS_PER_BAND: usize = 5;
/// Cells per block in frequency.
pub const BANDS: usize = 36;
/// Lowest marked frequency in Hz (below it music is too loud and tonal).
pub const LOW_HZ: f32 = 300.0;
/// Cells per block.
pub const CELLS: usize = SLOTS * BANDS;
/// Sync cells per slot.
pub const SYNC_PER_SLOT: usize = 5;
/// Cells carrying the known sync pattern.
pub const SYNC_CELLS: usize = SYNC_PER_SLOT * SLOTS;
/// Coded payload bits per block.
pub const CODED_BITS: usize = code::coded_len(PAYLOAD_BITS);

/// One cell of the grid.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Cell {
    /// Time slot within the block, `0..SLOTS`.
    pub slot: u16,
    /// Band, `0..BANDS`.
    pub band: u16,
    /// Spreading chip: +1 or -1.
    pub chip: i8,
}

/// The key's layout of one block.
///
/// Every coded bit's cells lie in one slot or two adjacent ones (spread over
/// frequency), and the coded bits are placed in key order over the block.
/// Keeping a bit short in time means that a window of one block length
/// starting anywhere cuts through at most two bits: every other bit is read
/// whole from one block, where the embedder made sure it reads right.
#[derive(Debug, Clone)]
pub struct Layout {
    /// Sync cells, grouped by slot; their sign is the chip alone.
    pub sync: Vec<Vec<Cell>>,
    /// For each coded bit, its cells; a cell's sign is chip × bit (±1).
    pub bits: Vec<Vec<Cell>>,
}

impl Layout {
    /// Derives the layout from the key. Positions and chips are a
    /// ChaCha20 stream seeded by a key-derived subkey.
    pub fn new(key: &MarkKey) -> Self {
        let mut rng = ChaCha20Rng::from_seed(key.derive(b"audio-layout/v2"));
        let mut sync = Vec::with_capacity(SLOTS);
        let mut payload_cells = Vec::with_capacity(CELLS - SYNC_CELLS);
        for slot in 0..SLOTS {
            let mut bands: Vec<u16> = (0..BANDS as u16).collect();
            bands.shuffle(&mut rng);
            let mut cells: Vec<Cell> = bands
                .into_iter()
                .map(|band| Cell {
                    slot: slot as u16,
                    band,
                    chip: if rng.gen::<bool>() { 1 } else { -1 },
                })
                .collect();
            let rest = cells.split_off(SYNC_PER_SLOT);
            sync.push(cells);
            payload_cells.extend(rest);
        }
        // Coded bits in a key-chosen order along the block, each taking a
        // contiguous run of the slot-ordered payload cells.
        let mut order: Vec<usize> = (0..CODED_BITS).collect();
        order.shuffle(&mut rng);
        let mut bits = vec![Vec::new(); CODED_BITS];
        let n = payload_cells.len();
        for (rank, &bit) in order.iter().enumerate() {
            let a = rank * n / CODED_BITS;
            let b = (rank + 1) * n / CODED_BITS;
            bits[bit] = payload_cells[a..b].to_vec();
        }
        Layout { sync, bits }
    }
}

/// First FFT bin of the marked range at a sample rate.
pub fn low_bin(sample_rate: u32) -> usize {
    ((LOW_HZ * FRAME as f32 / sample_rate as f32).round() as usize).max(2)
}

/// Marked bins `[low, high)` at a sample rate, clipped below Nyquist.
pub fn bin_range(sample_rate: u32) -> (usize, usize) {
    let lo = low_bin(sample_rate);
    (lo, (lo + BANDS * BINS_PER_BAND).min(FRAME / 2 - 1))
}
