//! tracecast's forensic mark: a keyed, invisible mark of who received a copy
//! and which servers it passed through.
//!
//! This crate is pure: it works on samples and pixel rows in memory and does
//! no file or network I/O (decoding lives in `tracecast-media`).
//!
//! # Payload (format version 1)
//!
//! 108 bits: a 4-bit format version, content server id (16), delivery
//! (edge) server id (16), home server id (16, 0 = none), user id (32) and a
//! 24-bit tag, the truncated HMAC-SHA256 of the ids under a subkey of the
//! mark key. See [`payload`]. Without the key nobody can compute a valid tag,
//! so a mark can be neither forged nor moved to another user.
//!
//! # Error correction
//!
//! The 108 bits are terminated and coded with a rate-1/3, constraint-length-9
//! convolutional code (348 coded bits) and decoded with soft-decision Viterbi
//! ([`code`]).
//!
//! # Audio mark (format version 1)
//!
//! * Analysis: STFT of 1024-sample frames with a hop of 512 at the file's own
//!   sample rate (22.05-96 kHz). The mark lives in the mid signal (mean of
//!   channels; every channel gets the same gains, so a mono downmix keeps it).
//! * Grid: a *block* is 96 time slots × 36 bands. A slot is 4 hops (2048
//!   samples, 46 ms at 44.1 kHz); a band is 5 FFT bins starting at 300 Hz
//!   (300 Hz-8 kHz at 44.1 kHz: low enough that most of it survives MP3 at
//!   32 kbit/s, which keeps 5.5 kHz). A block lasts 196,608 samples (4.46 s at
//!   44.1 kHz) and repeats back to back over the whole file, so any stretch
//!   of one block length holds every cell once, cyclically.
//! * Layout: from a ChaCha20 stream seeded by a key-derived subkey, each
//!   slot's 36 bands are shuffled; 5 per slot carry a sync pattern (a ±1
//!   chip each, 480 per block) and the other 2,976 are dealt, in slot order,
//!   as contiguous runs of 8-9 cells to the 348 coded bits taken in a
//!   key-chosen order. So each coded bit lies within one or two adjacent
//!   slots (46-92 ms) and is spread over frequency: a window of one block
//!   length starting anywhere cuts through at most two bits, and the coded
//!   bits of one payload bit are far apart in time. Without the key the
//!   cells and chips cannot be told from noise.
//! * Reading: a cell's value is the mean of its bins' whitened levels: the
//!   log power (floored 80 dB below the frame's loudest marked bin), minus a
//!   local mean across ±16 bins (removes onsets and fades), minus a local
//!   mean across ±12 hops (removes held notes), clipped to ±8 dB.
//! * Embedding: every bin of a cell is scaled by ±g dB (sign = chip × coded
//!   bit, or chip for sync). g is informed by the host: for each coded bit
//!   (and each slot's sync group) in each block, the embedder reads what
//!   the detector will read off the unmarked audio and sets the gain that
//!   lifts the group's reading to `target_db` per cell, between `min_db`
//!   and `max_unit_db`; within a group, cells quieter than their slot get
//!   proportionally more (`tilt`), capped at `max_db`; a block whose mark
//!   would be louder than `min_snr_db` under its sound (estimated from its
//!   spectra) has its gains scaled down. See [`audio::EmbedConfig`]. Every step reads only near its hop (a frame,
//!   ±12 hops of whitening, one block's gains), so
//!   [`audio::StreamEmbedder`] marks audio pushed in pieces of any size
//!   with a few blocks of memory and about one block of delay, to the bit
//!   what a pass over the whole signal writes.
//! * Detection (blind): cell readings are folded onto one block (all
//!   repetitions add up), the sync pattern is correlated at every hop
//!   offset, and the best offsets are decoded (soft Viterbi, each cell's
//!   say limited to 2 robust standard deviations) and accepted only if
//!   version and tag verify. If the plain scale fails, speed (time and
//!   pitch, as resampling) and tempo (time only, pitch kept) changes of ±7%
//!   and pitch (frequency only, tempo kept) changes of ±3% are searched in
//!   0.5% steps. All of this runs at the file's own rate and again at 44.1
//!   and 48 kHz (an encoder may have resampled the copy). The folds are sums
//!   over hops, made as the audio arrives (`audio::StreamDetector`): a
//!   file of any length is read in the same memory.
//! * False alarms: at most [`audio::MAX_TAG_CHECKS`] payloads are checked
//!   per file, each passing by chance with probability 2^-28 (version and
//!   tag), so an unmarked file, or one marked under another key, is reported
//!   marked with probability at most [`audio::false_alarm_probability`]
//!   (about 1.8e-7).

//!
//! # Image mark (format version 1)
//!
//! * Working grid: the picture's luma (BT.601; the change is added to R, G
//!   and B alike) on a grid whose shorter side is 512 pixels for larger
//!   pictures (so the mark scales with the picture and survives
//!   downscaling), the picture itself for smaller ones.
//! * Tile: 32×32 cells of 4×4 working pixels (128 px), interpolated
//!   bilinearly between cell centres so the pattern is smooth (it lives
//!   below 1/8 cycle per pixel, which JPEG at quality 50 and halving keep).
//!   From a ChaCha20 stream seeded by a key-derived subkey, 192 cells carry
//!   ±1 sync chips and the other 832 are dealt to the 348 coded bits (2-3
//!   cells each, scattered), each with a ±1 chip. The tile repeats over the
//!   whole picture. See [`image::layout`].
//! * Embedding: pattern × texture mask (per 8×8 block, the mean absolute
//!   difference to neighbours, plus a floor, to the power 0.6, capped at
//!   2.5× the mean) × a gain that puts the picture at 39 dB PSNR. Two passes
//!   over rows, so memory stays small beside the decoded picture.
//! * Detection (blind): the working grid's band-pass residual (3×3 box
//!   minus a σ≈4.5 blur), divided by its local RMS; its autocorrelation
//!   with the power spectrum whitened (and JPEG's 8-pixel grid notched
//!   out); the tile lattice (period 56-256 working px, any angle) that
//!   collects the most autocorrelation, plus the unchanged geometry; every
//!   pixel folded onto one tile per lattice hypothesis; the sync pattern
//!   correlated at every cyclic shift in all eight orientations (90°
//!   turns and mirror images); the best three hypotheses' best four shifts
//!   decoded (soft Viterbi) and accepted only if version and tag verify.
//! * False alarms: at most [`image::MAX_TAG_CHECKS`] (12) payloads are
//!   checked per picture, so the bound is 12 × 2^-28 ≈ 4.5e-8
//!   ([`image::false_alarm_probability`]).

pub mod audio;
pub mod code;
pub mod fingerprint;
pub mod image;
pub mod key;
pub mod payload;
pub mod video;

pub use key::{KeyError, MarkKey, KEY_LEN};
pub use payload::Payload;
