//! Writing PCM as WAV (hound) or FLAC (flacenc).

use std::io::{BufWriter, Cursor, Seek, Write};
use std::path::Path;

use flacenc::component::BitRepr;
use flacenc::error::Verify;

use crate::{MediaError, Pcm};

/// Output container, chosen from the file extension.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum OutputFormat {
    Wav,
    Flac,
}

impl OutputFormat {
    /// `.wav` or `.flac` (any case); anything else is an error naming it.
    pub fn from_path(path: &Path) -> Result<Self, MediaError> {
        let ext = crate::extension(path);
        match ext.as_str() {
            "wav" | "wave" => Ok(Self::Wav),
            "flac" => Ok(Self::Flac),
            _ => Err(MediaError::UnsupportedOutput(ext)),
        }
    }
}

/// Bit depth to write: 24 when the source had more than 16, else 16.
fn output_bits(pcm: &Pcm) -> u32 {
    match pcm.bits_per_sample {
        Some(b) if b > 16 => 24,
        _ => 16,
    }
}

fn check(pcm: &Pcm) -> Result<(), MediaError> {
    if pcm.channels.is_empty() || pcm.channels.len() > 8 {
        return Err(MediaError::Parameters(format!(
            "{} channels",
            pcm.channels.len()
        )));
    }
    let n = pcm.frames();
    if pcm.channels.iter().any(|c| c.len() != n) {
        return Err(MediaError::Parameters("channels differ in length".into()));
    }
    if pcm.sample_rate == 0 {
        return Err(MediaError::Parameters("sample rate 0".into()));
    }
    Ok(())
}

/// Rounds and clips one sample to a signed integer of `bits` bits.
fn quantise(s: f32, bits: u32) -> i32 {
    let full = (1i64 << (bits - 1)) as f64;
    let v = (f64::from(s) * full).round();
    v.clamp(-full, full - 1.0) as i32
}

/// Writes `pcm` to `path` in the format its extension names.
pub fn encode_file(pcm: &Pcm, path: &Path) -> Result<(), MediaError> {
    let format = OutputFormat::from_path(path)?;
    let bytes = encode_to_vec(pcm, format)?;
    write_atomic(path, &bytes)
}

/// Writes `bytes` beside `path` and renames, so a failure never leaves half
/// a file (and never touches an existing one until the new one is whole).
pub(crate) fn write_atomic(path: &Path, bytes: &[u8]) -> Result<(), MediaError> {
    let tmp = path.with_extension(format!(
        "{}.partial",
        path.extension().and_then(|e| e.to_str()).unwrap_or("out")
    ));
    let write = |p: &Path| -> std::io::Result<()> {
        let mut f = BufWriter::new(std::fs::File::create(p)?);
        f.write_all(bytes)?;
        f.into_inner().map_err(|e| e.into_error())?.sync_all()
    };
    write(&tmp)
        .and_then(|()| std::fs::rename(&tmp, path))
        .map_err(|source| {
            let _ = std::fs::remove_file(&tmp);
            MediaError::Write {
                path: path.to_owned(),
                source,
            }
        })
}

/// Encodes `pcm` into memory.
pub fn encode_to_vec(pcm: &Pcm, format: OutputFormat) -> Result<Vec<u8>, MediaError> {
    check(pcm)?;
    match format {
        OutputFormat::Wav => {
            let mut out = Cursor::new(Vec::new());
            write_wav(pcm, &mut out)?;
            Ok(out.into_inner())
        }
        OutputFormat::Flac => write_flac(pcm, FlacEffort::Best),
    }
}

/// How hard the FLAC encoder works.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FlacEffort {
    /// Linear prediction and every stereo mode: the smallest files
    /// (renditions, made once).
    Best,
    /// Fixed predictors only: about three times faster for files about 3%
    /// larger (a copy made for each buyer), on one thread.
    Fast,
    /// As `Fast`, on every core (one copy alone on an idle machine).
    FastParallel,
}

/// Encodes `pcm` as FLAC with the given effort.
pub fn encode_flac(pcm: &Pcm, effort: FlacEffort) -> Result<Vec<u8>, MediaError> {
    check(pcm)?;
    write_flac(pcm, effort)
}

fn write_wav<W: Write + Seek>(pcm: &Pcm, out: W) -> Result<(), MediaError> {
    let bits = output_bits(pcm);
    let spec = hound::WavSpec {
        channels: pcm.channels.len() as u16,
        sample_rate: pcm.sample_rate,
        bits_per_sample: bits as u16,
        sample_format: hound::SampleFormat::Int,
    };
    let enc = |e: hound::Error| MediaError::Encode(e.to_string());
    let mut w = hound::WavWriter::new(out, spec).map_err(enc)?;
    for i in 0..pcm.frames() {
        for ch in &pcm.channels {
            w.write_sample(quantise(ch[i], bits)).map_err(enc)?;
        }
    }
    w.finalize().map_err(enc)
}

fn write_flac(pcm: &Pcm, effort: FlacEffort) -> Result<Vec<u8>, MediaError> {
    let bits = output_bits(pcm);
    if pcm.sample_rate > 96_000 {
        return Err(MediaError::Parameters(format!(
            "FLAC output supports up to 96 kHz, not {}",
            pcm.sample_rate
        )));
    }
    let n_ch = pcm.channels.len();
    let mut interleaved = Vec::with_capacity(pcm.frames() * n_ch);
    for i in 0..pcm.frames() {
        for ch in &pcm.channels {
            interleaved.push(quantise(ch[i], bits));
        }
    }
    let mut config = flacenc::config::Encoder::default();
    if effort != FlacEffort::Best {
        config.subframe_coding.use_lpc = false;
        // Copies are made several at once, one per core; threads inside
        // one encode would only contend.
        config.multithread = effort == FlacEffort::FastParallel;
    }
    let config = config
        .into_verified()
        .map_err(|(_, e)| MediaError::Encode(format!("{e:?}")))?;
    let source = flacenc::source::MemSource::from_samples(
        &interleaved,
        n_ch,
        bits as usize,
        pcm.sample_rate as usize,
    );
    let stream = flacenc::encode_with_fixed_block_size(&config, source, config.block_size)
        .map_err(|e| MediaError::Encode(format!("{e:?}")))?;
    let mut sink = flacenc::bitsink::ByteSink::new();
    stream
        .write(&mut sink)
        .map_err(|e| MediaError::Encode(format!("{e:?}")))?;
    Ok(sink.as_slice().to_vec())
}
