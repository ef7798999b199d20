//! Decoding any supported container/codec to planar f32 through symphonia.

use std::fs::File;
use std::io::Cursor;
use std::path::Path;

use symphonia::core::audio::SampleBuffer;
use symphonia::core::codecs::{DecoderOptions, CODEC_TYPE_NULL, CODEC_TYPE_PCM_S16LE};
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
    // A panic in a decoder (an arithmetic overflow on a crafted header,
    // found by fuzzing) refuses this file and leaves the process serving.
    guarded(|| decode_unguarded(source, ext, budget, progress))
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

/// Reads an audio file packet by packet: each call to
/// [`AudioReader::next_chunk`] gives the next decoded samples, planar, so a
/// file of any length is read in the memory of one packet.
///
/// The decoders are third-party code reading what anyone may send: every
/// call runs under `catch_unwind`, and a panic in a decoder refuses the
/// file as malformed and leaves the process serving.
pub struct AudioReader {
    format: Box<dyn symphonia::core::formats::FormatReader>,
    decoder: Box<dyn symphonia::core::codecs::Decoder>,
    track_id: u32,
    /// Frames the container states (authoritative: some encoders pad the
    /// last packet, flacenc to its block size).
    total: Option<u64>,
    budget: Option<Budget>,
    bits_per_sample: Option<u32>,
    sample_rate: u32,
    channels: usize,
    scratch: Option<SampleBuffer<f32>>,
    /// Channels of a 16-bit little-endian PCM stream (WAV's usual kind),
    /// whose packets are converted here rather than by the decoder: the
    /// same values, read a packet at a time instead of a sample at a time
    /// (reading was a tenth of a whole `mark embed`).
    pcm16: Option<usize>,
    /// `pcm16`'s samples, channel after channel, `planar_stride` apart.
    planar: Vec<f32>,
    planar_stride: usize,
    /// The first chunk, decoded by `open` to learn the layout.
    pending: bool,
    /// Frames of the current chunk.
    frames: usize,
    /// Frames handed out so far.
    read: u64,
    truncated: bool,
    ended: bool,
}

impl AudioReader {
    /// Opens an audio file within `budget` and decodes its first packet.
    pub fn open_file(path: &Path, budget: Option<Budget>) -> Result<Self, MediaError> {
        let file = File::open(path).map_err(|source| MediaError::Open {
            path: path.to_owned(),
            source,
        })?;
        let ext = path.extension().and_then(|e| e.to_str()).map(str::to_owned);
        guarded(|| Self::open(Box::new(file), ext.as_deref(), budget))
    }

    /// As [`AudioReader::open_file`], from a file already open; `ext`
    /// hints its format.
    pub fn from_file(
        file: File,
        ext: Option<&str>,
        budget: Option<Budget>,
    ) -> Result<Self, MediaError> {
        guarded(|| Self::open(Box::new(file), ext, budget))
    }

    fn open(
        source: Box<dyn MediaSource>,
        ext: Option<&str>,
        budget: Option<Budget>,
    ) -> Result<Self, MediaError> {
        let source = check_isobmff(source)?;
        let mss = MediaSourceStream::new(source, Default::default());
        let mut hint = Hint::new();
        if let Some(ext) = ext {
            hint.with_extension(ext);
        }
        let format_opts = FormatOptions {
            // Trim encoder delay and padding so decoded audio lines up with
            // the original's timeline as well as the codec allows.
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
        let format = probed.format;
        let track = format
            .tracks()
            .iter()
            .find(|t| {
                t.codec_params.codec != CODEC_TYPE_NULL && t.codec_params.sample_rate.is_some()
            })
            .ok_or(MediaError::NoAudioTrack)?;
        let track_id = track.id;
        let params = track.codec_params.clone();
        let decoder = symphonia::default::get_codecs()
            .make(&params, &DecoderOptions::default())
            .map_err(|e| match e {
                SymError::Unsupported(what) => MediaError::UnsupportedFormat {
                    hint: Some(what.to_string()),
                },
                other => MediaError::Malformed(other.to_string()),
            })?;
        // A file whose header says it is longer than a refusing budget is
        // refused before any sample is decoded (a lying header is caught
        // when the budget runs out).
        if let (Some(b), Some(frames), Some(ch)) = (budget, params.n_frames, params.channels) {
            let claimed = frames.saturating_mul(ch.count().max(1) as u64);
            if b.beyond == Beyond::Refuse && claimed > b.max_samples {
                return Err(too_long(&b, ch.count(), params.sample_rate.unwrap_or(0)));
            }
        }
        let bits_per_sample =
            if params.codec == symphonia::core::codecs::CODEC_TYPE_FLAC || is_pcm(params.codec) {
                params.bits_per_sample
            } else {
                None
            };
        // Only where the decoder would read every bit as it is (16 coded
        // bits in a 16-bit sample: no shift).
        let pcm16 = match (params.codec, params.channels) {
            (CODEC_TYPE_PCM_S16LE, Some(ch))
                if params
                    .bits_per_coded_sample
                    .or(params.bits_per_sample)
                    .is_some_and(|b| b == 16) =>
            {
                Some(ch.count())
            }
            _ => None,
        };
        let mut reader = AudioReader {
            format,
            decoder,
            track_id,
            total: params.n_frames.filter(|&t| t > 0),
            budget,
            bits_per_sample,
            sample_rate: params.sample_rate.unwrap_or(0),
            channels: 0,
            scratch: None,
            pcm16,
            planar: Vec::new(),
            planar_stride: 0,
            pending: false,
            frames: 0,
            read: 0,
            truncated: false,
            ended: false,
        };
        reader.decode_next()?;
        if reader.frames == 0 {
            return Err(MediaError::Empty);
        }
        reader.pending = true;
        Ok(reader)
    }

    /// Samples per second per channel.
    pub fn sample_rate(&self) -> u32 {
        self.sample_rate
    }

    /// Channels.
    pub fn channels(&self) -> usize {
        self.channels
    }

    /// Bit depth of the source when it has one (PCM, FLAC).
    pub fn bits_per_sample(&self) -> Option<u32> {
        self.bits_per_sample
    }

    /// Frames the container states, when it does.
    pub fn total_frames(&self) -> Option<u64> {
        self.total
    }

    /// Frames handed out so far.
    pub fn frames_read(&self) -> u64 {
        self.read
    }

    /// Whether the file went on past a truncating budget.
    pub fn truncated(&self) -> bool {
        self.truncated
    }

    /// The next decoded samples, one slice per channel (all the same
    /// length, never empty), or `None` at the end.
    pub fn next_chunk(&mut self) -> Result<Option<Vec<&[f32]>>, MediaError> {
        if self.pending {
            self.pending = false;
        } else {
            guarded(|| self.decode_next())?;
            if self.frames == 0 {
                return Ok(None);
            }
        }
        let (samples, per_channel) = if self.pcm16.is_some() {
            (&self.planar[..], self.planar_stride)
        } else {
            let samples = self.scratch.as_ref().map_or(&[][..], |b| b.samples());
            (samples, samples.len() / self.channels.max(1))
        };
        Ok(Some(
            (0..self.channels)
                .map(|c| &samples[c * per_channel..c * per_channel + self.frames])
                .collect(),
        ))
    }

    /// Decodes packets until one gives samples (setting `frames`), or the
    /// stream ends (`frames` 0).
    fn decode_next(&mut self) -> Result<(), MediaError> {
        self.frames = 0;
        let mut last_error: Option<String> = None;
        while !self.ended {
            let packet = match self.format.next_packet() {
                Ok(p) => p,
                Err(SymError::IoError(e)) if e.kind() == std::io::ErrorKind::UnexpectedEof => {
                    self.ended = true;
                    break;
                }
                Err(SymError::ResetRequired) => {
                    self.ended = true;
                    break;
                }
                // A truncated or damaged tail ends the stream; what came
                // before is kept, as every media player does.
                Err(e) => {
                    last_error = Some(e.to_string());
                    self.ended = true;
                    break;
                }
            };
            if packet.track_id() != self.track_id {
                continue;
            }
            let (decoded, n_ch, rate, packet_frames) = match self.pcm16 {
                Some(ch) => (
                    None,
                    ch,
                    self.sample_rate,
                    packet.buf().len() / (2 * ch.max(1)),
                ),
                None => match self.decoder.decode(&packet) {
                    Ok(d) => {
                        let spec = *d.spec();
                        let frames = d.frames();
                        (Some(d), spec.channels.count(), spec.rate, frames)
                    }
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
                },
            };
            if n_ch == 0 || n_ch > MAX_CHANNELS {
                return Err(MediaError::Parameters(format!("{n_ch} channels")));
            }
            if self.channels == 0 {
                self.channels = n_ch;
                self.sample_rate = rate;
                if !(1000..=768_000).contains(&rate) {
                    return Err(MediaError::Parameters(format!("sample rate {rate} Hz")));
                }
            } else if self.channels != n_ch || rate != self.sample_rate {
                return Err(MediaError::Malformed(
                    "channel count or sample rate changes mid-stream".into(),
                ));
            }
            let mut frames = packet_frames as u64;
            // The container's length is authoritative (padding is cut).
            if let Some(total) = self.total {
                frames = frames.min(total.saturating_sub(self.read));
            }
            if let Some(b) = self.budget {
                let room = (b.max_samples / n_ch as u64).saturating_sub(self.read);
                if frames > room {
                    match b.beyond {
                        Beyond::Refuse => return Err(too_long(&b, n_ch, self.sample_rate)),
                        Beyond::Truncate => {
                            self.truncated = true;
                            self.ended = true;
                            frames = room;
                        }
                    }
                }
            }
            if self.read + frames > MAX_FRAMES as u64 {
                return Err(MediaError::Parameters(format!(
                    "longer than {} hours",
                    MAX_FRAMES / (3600 * 48_000)
                )));
            }
            if frames == 0 {
                continue;
            }
            match decoded {
                None => {
                    deinterleave_s16le(packet.buf(), n_ch, frames as usize, &mut self.planar);
                    self.planar_stride = frames as usize;
                }
                Some(decoded) => {
                    let spec = *decoded.spec();
                    let buf = match &mut self.scratch {
                        Some(b) if b.capacity() >= decoded.capacity() * n_ch => b,
                        _ => self
                            .scratch
                            .insert(SampleBuffer::<f32>::new(decoded.capacity() as u64, spec)),
                    };
                    buf.copy_planar_ref(decoded);
                    // Lossy codecs may produce out-of-range garbage on
                    // damaged input.
                    for s in buf.samples_mut() {
                        if !s.is_finite() {
                            *s = 0.0;
                        }
                    }
                }
            }
            self.frames = frames as usize;
            self.read += frames;
            return Ok(());
        }
        if self.read == 0 {
            return Err(match last_error {
                Some(e) => MediaError::Malformed(e),
                None => MediaError::Empty,
            });
        }
        Ok(())
    }
}

/// Runs a decoder step, a panic in it refusing the file.
fn guarded<T>(f: impl FnOnce() -> Result<T, MediaError>) -> Result<T, MediaError> {
    std::panic::catch_unwind(std::panic::AssertUnwindSafe(f)).unwrap_or_else(|_| {
        Err(MediaError::Malformed(
            "the decoder failed on this file (it is damaged or crafted)".into(),
        ))
    })
}

fn decode_unguarded(
    source: Box<dyn MediaSource>,
    ext: Option<&str>,
    budget: Option<Budget>,
    mut progress: Option<Progress<'_>>,
) -> Result<Decoded, MediaError> {
    let mut reader = AudioReader::open(source, ext, budget)?;
    let total = reader.total_frames();
    let n_ch = reader.channels();
    let mut channels: Vec<Vec<f32>> = vec![Vec::new(); n_ch];
    // Growth by doubling, but never past the budget: what a file may make
    // this hold is the budget, not twice it.
    let cap = budget.map(|b| (b.max_samples / n_ch as u64) as usize);
    while let Some(chunk) = reader.next_chunk()? {
        for (ch, got) in channels.iter_mut().zip(&chunk) {
            grow_within(ch, got.len(), cap);
            ch.extend_from_slice(got);
        }
        if let Some(p) = progress.as_mut() {
            p(channels[0].len() as u64, total);
        }
    }
    Ok(Decoded {
        pcm: Pcm {
            sample_rate: reader.sample_rate(),
            channels,
            bits_per_sample: reader.bits_per_sample(),
        },
        truncated: reader.truncated(),
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

/// The first `frames` frames of interleaved 16-bit little-endian samples
/// of `channels` channels, into `planar` channel after channel, with the
/// decoder's scaling (`s / 32768`, exact in `f32`).
fn deinterleave_s16le(bytes: &[u8], channels: usize, frames: usize, planar: &mut Vec<f32>) {
    planar.clear();
    planar.resize(frames * channels, 0.0);
    let stride = 2 * channels;
    let sample = |lo: u8, hi: u8| f32::from(i16::from_le_bytes([lo, hi])) * (1.0 / 32_768.0);
    if channels == 2 {
        // Both channels in one pass (the usual case).
        let (left, right) = planar.split_at_mut(frames);
        for ((l, r), frame) in left.iter_mut().zip(right).zip(bytes.chunks_exact(4)) {
            *l = sample(frame[0], frame[1]);
            *r = sample(frame[2], frame[3]);
        }
        return;
    }
    for (c, plane) in planar.chunks_exact_mut(frames).enumerate() {
        for (p, frame) in plane.iter_mut().zip(bytes.chunks_exact(stride)) {
            *p = sample(frame[2 * c], frame[2 * c + 1]);
        }
    }
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
