//! Reading and writing media files for tracecast: audio, pictures and
//! video, and marking whole files of each kind ([`marking`]).
//!
//! This crate is the I/O edge of the mark engine: it turns files into planar
//! `f32` PCM ([`Pcm`]) and back. Decoding goes through symphonia (WAV, FLAC,
//! MP3, Ogg Vorbis, AAC in MP4/M4A); encoding writes WAV (hound) or FLAC
//! (flacenc) at the input's sample rate and channel count.
//!
//! Every failure is a typed [`MediaError`]; malformed or truncated input never
//! panics (see the property tests in `tests/`).

mod decode;
mod encode;
mod isobmff;
pub mod marking;
pub mod mp3;
mod picture;
mod rendition;
mod rights;
pub mod synth;
pub mod video;

pub use decode::{
    decode_bytes, decode_bytes_within, decode_file, decode_file_within, AudioReader, Beyond,
    Budget, Decoded,
};
pub use encode::{
    encode_file, encode_flac, encode_flac_pair, encode_to_vec, FlacEffort, FlacPair, OutputFormat,
    PcmWriter,
};
/// The `image` crate's picture type, as read and written here.
pub use image::DynamicImage;
pub use picture::{
    add_to_rows, decode_picture, decode_picture_within, detect_picture, encode_picture, is_picture,
    luma_rows, mark_picture, psnr, read_picture, write_picture, PictureFormat, PictureMarkError,
    DEFAULT_JPEG_QUALITY, MAX_PICTURE_SIDE,
};
pub use rendition::{cd_quality, fit_picture, preview};
pub use rights::{read_rights, tag, Rights};

use std::path::PathBuf;

/// Planar PCM audio: one `Vec<f32>` per channel, samples nominally in [-1, 1].
#[derive(Debug, Clone, PartialEq)]
pub struct Pcm {
    /// Samples per second per channel.
    pub sample_rate: u32,
    /// One vector per channel, all the same length.
    pub channels: Vec<Vec<f32>>,
    /// Bit depth of the source when it had one (PCM, FLAC); `None` for lossy
    /// sources. Encoders keep 24-bit sources at 24 bits.
    pub bits_per_sample: Option<u32>,
}

impl Pcm {
    /// Samples per channel.
    pub fn frames(&self) -> usize {
        self.channels.first().map_or(0, Vec::len)
    }

    /// Duration in seconds.
    pub fn duration_secs(&self) -> f64 {
        if self.sample_rate == 0 {
            return 0.0;
        }
        self.frames() as f64 / f64::from(self.sample_rate)
    }
}

/// Progress of a long operation: units done and, when known, the total.
pub type Progress<'a> = &'a mut dyn FnMut(u64, Option<u64>);

/// Errors from reading or writing media.
#[derive(Debug, thiserror::Error)]
pub enum MediaError {
    #[error("cannot open {path}")]
    Open {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("cannot write {path}")]
    Write {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("unsupported or unrecognised media format{}", hint.as_ref().map(|h| format!(" ({h})")).unwrap_or_default())]
    UnsupportedFormat { hint: Option<String> },
    #[error("no audio track in the file")]
    NoAudioTrack,
    #[error("malformed media: {0}")]
    Malformed(String),
    #[error("the file holds no decodable audio")]
    Empty,
    #[error("unsupported output extension {0:?}: use .wav or .flac for audio, .png, .jpg or .jpeg for pictures")]
    UnsupportedOutput(String),
    #[error("cannot encode: {0}")]
    Encode(String),
    #[error("audio parameters out of range: {0}")]
    Parameters(String),
    #[error("the file is too long: {0}")]
    TooLong(String),
    #[error("the picture is too large: {0}")]
    TooLarge(String),
    /// Audio a copy of which could not be traced (the reason says why).
    #[error("{0}")]
    Unmarkable(String),
}

/// A path's extension in lower case ("" when it has none).
pub(crate) fn extension(path: &std::path::Path) -> String {
    path.extension()
        .and_then(|e| e.to_str())
        .unwrap_or("")
        .to_ascii_lowercase()
}
