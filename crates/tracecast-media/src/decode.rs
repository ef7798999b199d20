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

/// How much audio one decode may produce. A few kilobytes of compressed
/// silence can decode to gigabytes of samples: whoever decodes what
/// someone else sent says how much it needs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Budget {
    /// Most samples, all channels together (`seconds * rate * channels`).
    pub max_samples: u64,
    /// What to do with audio beyond it.
    pub beyond: Beyond,
}

/// Audio past a [`Budget`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Beyond {
    /// Keep the start that fits and stop decoding (a trace reads the
    /// first minutes: the mark repeats throughout).
    Truncate,
    /// Refuse the file ([`MediaError::TooLong`]).
    Refuse,
}

impl Budget {
    /// `minutes` of 48 kHz stereo, the same number of samples at other
    /// rates and channel counts.
    pub fn minutes(minutes: f64, beyond: Beyond) -> Self {
        Self {
            max_samples: (minutes.max(0.0) * 60.0 * 48_000.0 * 2.0) as u64,
            beyond,
        }
    }
}

/// Audio decoded within a budget.
#[derive(Debug, Clone, PartialEq)]
pub struct Decoded {
    pub pcm: Pcm,
    /// The file went on past the budget; `pcm` is its start.
    pub truncated: bool,
}

/// Decodes an audio file. `progress` is told samples decoded per channel and,
/// when the container says, the total.
pub fn decode_file(path: &Path, progress: Option<Progress<'_>>) -> Result<Pcm, MediaError> {
    decode_file_within(path, None, progress).map(|d| d.pcm)
}

/// [`decode_file`] within a budget.
pub fn decode_file_within(
    path: &Path,
    budget: Option<Budget>,
    progress: Option<Progress<'_>>,
) -> Result<Decoded, MediaError> {
    let file = File::open(path).map_err(|source| MediaError::Open {
        path: path.to_owned(),
        source,
    })?;
    let ext = path.extension().and_then(|e| e.to_str()).map(str::to_owned);
    decode_source(Box::new(file), ext.as_deref(), budget, progress)
}

/// Decodes an audio file held in memory; `ext` is a format hint ("mp3").
pub fn decode_bytes<B>(bytes: B, ext: Option<&str>) -> Result<Pcm, MediaError>
where
    B: AsRef<[u8]> + Send + Sync + 'static,
{
    decode_bytes_within(bytes, ext, None).map(|d| d.pcm)
}

/// [`decode_bytes`] within a budget: memory stays near the budget
/// whatever the file claims or holds. The bytes are read in place (a
/// server passes the upload it holds without copying it).
pub fn decode_bytes_within<B>(
    bytes: B,
    ext: Option<&str>,
    budget: Option<Budget>,
) -> Result<Decoded, MediaError>
where
    B: AsRef<[u8]> + Send + Sync + 'static,
{
    decode_source(Box::new(Cursor::new(bytes)), ext, budget, None)
}

fn decode_source(
    source: Box<dyn MediaSource>,
    ext: Option<&str>,
    budget: Option<Budget>,
    progress: Option<Progress<'_>>,
) -> Result<Decoded, MediaError> {
    // The decoders are third-party code reading what anyone may send: a
    // panic in one (an arithmetic overflow on a crafted header, found by
    // fuzzing) refuses this file and leaves the process serving.
    std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
        decode_unguarded(source, ext, budget, progress)
    }))
    .unwrap_or_else(|_| {
        Err(MediaError::Malformed(
            "the decoder failed on this file (it is damaged or crafted)".into(),
        ))
    })
}

/// MP4 boxes are checked before symphonia's MP4 reader sees them: it
/// sizes its tables from the counts a file states, and a failed
/// allocation aborts the process (see `isobmff`). The reader starts at
/// the first "ftyp" its probe finds, wherever that is (a crafted file
/// hides one past junk), so the probe is run here first, the same way,
/// and the boxes are checked from where it would start.
fn check_isobmff(source: Box<dyn MediaSource>) -> Result<Box<dyn MediaSource>, MediaError> {
    use std::io::{Read, Seek, SeekFrom};
    use symphonia::core::io::ReadBytes;
    use symphonia::core::probe::Instantiate;
    let io = |e: std::io::Error| MediaError::Malformed(e.to_string());
    let mut mss = MediaSourceStream::new(source, Default::default());
    let probe = symphonia::default::get_probe();
    let found = loop {
        match probe.next(&mut mss) {
            Ok(Instantiate::Metadata(reader)) => {
                if reader(&MetadataOptions::default())
                    .read_all(&mut mss)
                    .is_err()
                {
                    break None;
                }
            }
            Ok(Instantiate::Format(_)) => break Some(mss.pos()),
            Err(_) => break None,
        }
    };
    if let Some(at) = found {
        let len = mss.seek(SeekFrom::End(0)).map_err(io)?;
        let mut marker = [0u8; 4];
        mss.seek(SeekFrom::Start(at)).map_err(io)?;
        if mss.read_exact(&mut marker).is_ok() && &marker == b"ftyp" {
            crate::isobmff::check(&mut mss, at.saturating_sub(4), len)
                .map_err(|why| MediaError::Malformed(format!("a damaged MP4 file: {why}")))?;
        }
    }
    mss.seek(SeekFrom::Start(0)).map_err(io)?;
    Ok(Box::new(mss))
}

fn decode_unguarded(
    source: Box<dyn MediaSource>,
    ext: Option<&str>,
    budget: Option<Budget>,
    mut progress: Option<Progress<'_>>,
) -> Result<Decoded, MediaError> {
    let source = check_isobmff(source)?;
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

    // A file whose header says it is longer than a refusing budget is
    // refused before any sample is decoded (a lying header is caught
    // below, when the budget runs out).
    if let (Some(b), Some(frames), Some(ch)) = (budget, total, params.channels) {
        let claimed = frames.saturating_mul(ch.count().max(1) as u64);
        if b.beyond == Beyond::Refuse && claimed > b.max_samples {
            return Err(too_long(&b, ch.count(), params.sample_rate.unwrap_or(0)));
        }
    }
    let mut sample_rate = params.sample_rate.unwrap_or(0);
    let mut channels: Vec<Vec<f32>> = Vec::new();
    let mut scratch: Option<SampleBuffer<f32>> = None;
    let mut decoded_packets = 0usize;
    let mut last_error: Option<String> = None;
    let mut truncated = false;
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
        let per_channel = decoded.frames();
        let mut frames = per_channel;
        if frames == 0 {
            continue;
        }
        if let Some(b) = budget {
            let room = (b.max_samples / n_ch as u64).saturating_sub(channels[0].len() as u64);
            if frames as u64 > room {
                match b.beyond {
                    Beyond::Refuse => return Err(too_long(&b, n_ch, sample_rate)),
                    Beyond::Truncate => {
                        truncated = true;
                        frames = room as usize;
                    }
                }
            }
        }
        let buf = match &mut scratch {
            Some(b) if b.capacity() >= decoded.capacity() * n_ch => b,
            _ => scratch.insert(SampleBuffer::<f32>::new(decoded.capacity() as u64, spec)),
        };
        buf.copy_planar_ref(decoded);
        let samples = buf.samples();
        // Growth by doubling, but never past the budget: what a file may
        // make this hold is the budget, not twice it.
        let cap = budget.map(|b| (b.max_samples / n_ch as u64) as usize);
        for (c, ch) in channels.iter_mut().enumerate() {
            grow_within(ch, frames, cap);
            ch.extend_from_slice(&samples[c * per_channel..c * per_channel + frames]);
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
        if truncated {
            break;
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
    Ok(Decoded {
        pcm: Pcm {
            sample_rate,
            channels,
            bits_per_sample,
        },
        truncated,
    })
}

/// Makes room for `more` samples in `ch`, doubling as `Vec` does but
/// stopping at `cap` samples when there is one.
fn grow_within(ch: &mut Vec<f32>, more: usize, cap: Option<usize>) {
    let need = ch.len() + more;
    if need <= ch.capacity() {
        return;
    }
    let doubled = need.max(ch.capacity() * 2).max(4096);
    let target = cap.map_or(doubled, |c| doubled.min(c.max(need)));
    ch.reserve_exact(target - ch.len());
}

fn too_long(b: &Budget, channels: usize, sample_rate: u32) -> MediaError {
    let channels = channels.max(1);
    MediaError::TooLong(format!(
        "it holds more than {:.0} s of {} Hz audio in {channels} channel(s), the most this decodes",
        b.max_samples as f64 / channels as f64 / f64::from(sample_rate.max(1)),
        sample_rate
    ))
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
