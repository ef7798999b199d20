//! The audio mark: embedding into and detecting from PCM samples.

pub mod ab;
mod analysis;
mod check;
mod detect;
mod detect_stream;
mod embed;
#[cfg(test)]
mod embed_reference;
pub mod layout;
mod stream;

pub use analysis::resample;
pub use check::{check_markable, Markability, CHECK_SECS, NOISE_SNR_DB};
pub use detect::{
    detect, false_alarm_probability, Detection, UnitReading, MAX_SCALE, MAX_TAG_CHECKS, UNIT_SYNC_Z,
};
pub use detect_stream::{DetectPass, StreamDetector};
pub use embed::{embed, EmbedConfig, EmbedReport};
pub use stream::StreamEmbedder;

/// Errors of the audio mark.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum MarkError {
    #[error("no audio channels")]
    NoChannels,
    #[error("channels differ in length")]
    RaggedChannels,
    #[error("sample rate {0} Hz is outside the supported 22050-96000 Hz")]
    SampleRate(u32),
    #[error("the audio is empty")]
    Empty,
    #[error("the audio holds non-finite samples (NaN or infinity)")]
    NonFinite,
}

/// Sample rates the mark is written at.
pub(crate) const EMBED_RATES: std::ops::RangeInclusive<u32> = 22_050..=96_000;
/// Sample rates a copy is searched at (it is resampled as needed).
pub(crate) const DETECT_RATES: std::ops::RangeInclusive<u32> = 8_000..=192_000;

/// Checks channels are present, equally long and not empty, and the rate
/// is in `rates`.
pub(crate) fn check_shape(
    channels: &[Vec<f32>],
    sample_rate: u32,
    rates: std::ops::RangeInclusive<u32>,
) -> Result<(), MarkError> {
    let first = channels.first().ok_or(MarkError::NoChannels)?;
    if channels.iter().any(|c| c.len() != first.len()) {
        return Err(MarkError::RaggedChannels);
    }
    if !rates.contains(&sample_rate) {
        return Err(MarkError::SampleRate(sample_rate));
    }
    if first.is_empty() {
        return Err(MarkError::Empty);
    }
    Ok(())
}

/// What embedding accepts: [`check_shape`] at the embedding rates, and only
/// finite samples.
pub(crate) fn check_input(channels: &[Vec<f32>], sample_rate: u32) -> Result<(), MarkError> {
    check_shape(channels, sample_rate, EMBED_RATES)?;
    if channels.iter().flatten().any(|s| !s.is_finite()) {
        return Err(MarkError::NonFinite);
    }
    Ok(())
}
