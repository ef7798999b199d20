//! tracecast's forensic mark: a keyed, invisible mark of who received a copy
//! and which servers it passed through.
//!
//! This crate is pure: it works on samples in memory and does no file or
//! network I/O (decoding lives in `tracecast-media`).
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
//!   samples, 46 ms at 44.1 kHz); a band is 4 FFT bins starting at 300 Hz
//!   (300 Hz-6.5 kHz at 44.1 kHz). A block lasts 196,608 samples (4.46 s at
//!   44.1 kHz) and repeats back to back over the whole file, so any stretch
//!   of one block length holds every cell once, cyclically.
//! * Layout: from a ChaCha20 stream seeded by a key-derived subkey, the 3,456
//!   cells are shuffled; 456 carry a sync pattern (a ±1 chip each), the other
//!   3,000 are dealt round-robin to the 342 coded bits (8-9 cells each), each
//!   with its own ±1 chip. Without the key the cells and chips cannot be
//!   told apart from noise.
//! * Embedding: every bin of a cell is scaled by ±g dB (sign = chip × coded
//!   bit). g is chosen per coded bit and block from what the detector would
//!   read off the host (informed embedding): enough for the bit to read at
//!   `target_db` per cell, within `[min_db, max_db]`. See [`audio::EmbedConfig`].
//! * Detection (blind): the whitened log spectrogram is folded onto one block
//!   (all repetitions add up), the sync pattern is correlated at every
//!   offset, the best offsets are decoded and accepted only if version and
//!   tag verify. If the plain scale fails, speed (time and pitch, as
//!   resampling) and tempo (time only, pitch kept) changes of ±7% are
//!   searched in 0.5% steps.
//! * False alarms: at most [`audio::MAX_TAG_CHECKS`] payloads are checked
//!   per file, each passing by chance with probability 2^-28 (version and
//!   tag), so an unmarked file, or one marked under another key, is reported
//!   marked with probability at most [`audio::false_alarm_probability`]
//!   (about 1.8e-7).

pub mod audio;
pub mod code;
pub mod key;
pub mod payload;

pub use key::{KeyError, MarkKey, KEY_LEN};
pub use payload::Payload;
