//! Decoding any supported container/codec to planar f32 through symphonia.

use std::fs::File;
use std::io::Cursor;
use std::path::Path;

use symphonia::core::audio::SampleBuffer;
use symphonia::core::codecs::{DecoderOptions, CODEC_TYPE_NULL};
use symphonia::core::errors::Error as SymError;
use symphonia::core::formats::FormatOptions;
use symphonia::core::io::{MediaSource, MediaSourceStream};
use symphonia::core::meta::MetadataOptions;
use symphonia::core::probe::Hint;

use crate::{MediaError, Pcm, Progress};

/// Longest input accepted, in samples per channel (3 hours at 48 kHz): a
/// guard against files whose headers claim absurd lengths.
const MAX_FRAMES: usize = 3 * 3600 * 48_000;
/// Most channels accepted; the mark engine folds them to mid anyway.
const MAX_CHANNELS: usize = 8;

/// Decodes an audio file. `progress` is told samples decoded per channel and,
/// when the container says, the total.
pub fn decode_file(path: &Path, progress: Option<Progress<'_>>) -> Result<Pcm, MediaError> {
    let file = File::open(path).map_err(|source| MediaError::Open {
        path: path.to_owned(),
        source,
    })?;
    let ext = path.extension().and_then(|e| e.to_str()).map(str::to_owned);
    decode_source(Box::new(file), ext.as_deref(), progress)
}

/// Decodes an audio file held in memory; `ext` is a format hint ("mp3").
pub fn decode_bytes(bytes: Vec<u8>, ext: Option<&str>) -> Result<Pcm, MediaError> {
    decode_source(Box::new(Cursor::new(bytes)), ext, None)
}

fn decode_source(
    source: Box<dyn MediaSource>,
    ext: Option<&str>,
    mut progress: Option<Progress<'_>>,
) -> Result<Pcm, MediaError> {
    let mss = MediaSourceStream::new(source, Default::default());
    let mut hint = Hint::new();
    if let Some(ext) = ext {
        hint.with_extension(ext);
    }
    let format_opts = FormatOptions {
        // Trim encoder delay and padding so decoded audio lines up with the
        // original's timeline as well as the codec allows.
        enable_gapless: true,
        ..Default::default()
    };
    let probed = symphonia::default::get_probe()
        .format(&hint, mss, &format_opts, &MetadataOptions::default())
        .map_err(|e| match e {
            SymError::Unsupported(_) => MediaError::UnsupportedFormat {
                hint: ext.map(str::to_owned),
            },
            other => MediaError::Malformed(other.to_string()),
        })?;
    let mut format = probed.format;
    let track = format
        .tracks()
        .iter()
        .find(|t| t.codec_params.codec != CODEC_TYPE_NULL && t.codec_params.sample_rate.is_some())
        .ok_or(MediaError::NoAudioTrack)?;
    let track_id = track.id;
    let params = track.codec_params.clone();
    let total = params.n_frames;
    let mut decoder = symphonia::default::get_codecs()
        .make(&params, &DecoderOptions::default())
        .map_err(|e| match e {
            SymError::Unsupported(what) => MediaError::UnsupportedFormat {
                hint: Some(what.to_string()),
            },
            other => MediaError::Malformed(other.to_string()),
        })?;

    let mut sample_rate = params.sample_rate.unwrap_or(0);
    let mut channels: Vec<Vec<f32>> = Vec::new();
    let mut scratch: Option<SampleBuffer<f32>> = None;
    let mut decoded_packets = 0usize;
    let mut last_error: Option<String> = None;
    loop {
        let packet = match format.next_packet() {
            Ok(p) => p,
            Err(SymError::IoError(e)) if e.kind() == std::io::ErrorKind::UnexpectedEof => break,
            Err(SymError::ResetRequired) => break,
            // A truncated or damaged tail ends the stream; what came before is
            // kept, as every media player does.
            Err(e) => {
                last_error = Some(e.to_string());
                break;
            }
        };
        if packet.track_id() != track_id {
            continue;
        }
        let decoded = match decoder.decode(&packet) {
            Ok(d) => d,
            // A damaged packet is skipped; the next may decode.
            Err(SymError::DecodeError(e)) => {
                last_error = Some(e.to_string());
                continue;
            }
            Err(SymError::IoError(e)) => {
                last_error = Some(e.to_string());
                continue;
            }
            Err(e) => return Err(MediaError::Malformed(e.to_string())),
        };
        let spec = *decoded.spec();
        let n_ch = spec.channels.count();
        if n_ch == 0 || n_ch > MAX_CHANNELS {
            return Err(MediaError::Parameters(format!("{n_ch} channels")));
        }
        if channels.is_empty() {
            channels = vec![Vec::new(); n_ch];
            sample_rate = spec.rate;
        } else if channels.len() != n_ch || spec.rate != sample_rate {
            return Err(MediaError::Malformed(
                "channel count or sample rate changes mid-stream".into(),
            ));
        }
        let frames = decoded.frames();
        if frames == 0 {
            continue;
        }
        let buf = match &mut scratch {
            Some(b) if b.capacity() >= decoded.capacity() * n_ch => b,
            _ => scratch.insert(SampleBuffer::<f32>::new(decoded.capacity() as u64, spec)),
        };
        buf.copy_planar_ref(decoded);
        let samples = buf.samples();
        for (c, ch) in channels.iter_mut().enumerate() {
            ch.extend_from_slice(&samples[c * frames..(c + 1) * frames]);
        }
        if channels[0].len() > MAX_FRAMES {
            return Err(MediaError::Parameters(format!(
                "longer than {} hours",
                MAX_FRAMES / (3600 * 48_000)
            )));
        }
        decoded_packets += 1;
        if let Some(p) = progress.as_mut() {
            p(channels[0].len() as u64, total);
        }
    }
    if decoded_packets == 0 || channels.first().is_none_or(Vec::is_empty) {
        return Err(match last_error {
            Some(e) => MediaError::Malformed(e),
            None => MediaError::Empty,
        });
    }
    if !(1000..=768_000).contains(&sample_rate) {
        return Err(MediaError::Parameters(format!(
            "sample rate {sample_rate} Hz"
        )));
    }
    // The container's sample count is authoritative: some encoders pad the
    // last frame (flacenc pads to its block size) and report the true length.
    if let Some(total) = total {
        if (total as usize) < channels[0].len() && total > 0 {
            for ch in &mut channels {
                ch.truncate(total as usize);
            }
        }
    }
    // Lossy codecs may produce out-of-range garbage on damaged input.
    for ch in &mut channels {
        for s in ch.iter_mut() {
            if !s.is_finite() {
                *s = 0.0;
            }
        }
    }
    let bits_per_sample =
        if params.codec == symphonia::core::codecs::CODEC_TYPE_FLAC || is_pcm(params.codec) {
            params.bits_per_sample
        } else {
            None
        };
    Ok(Pcm {
        sample_rate,
        channels,
        bits_per_sample,
    })
}

fn is_pcm(codec: symphonia::core::codecs::CodecType) -> bool {
    use symphonia::core::codecs::*;
    [
        CODEC_TYPE_PCM_S16LE,
        CODEC_TYPE_PCM_S24LE,
        CODEC_TYPE_PCM_S32LE,
        CODEC_TYPE_PCM_U8,
        CODEC_TYPE_PCM_F32LE,
        CODEC_TYPE_PCM_F64LE,
        CODEC_TYPE_PCM_S16BE,
        CODEC_TYPE_PCM_S24BE,
        CODEC_TYPE_PCM_S32BE,
    ]
    .contains(&codec)
}
