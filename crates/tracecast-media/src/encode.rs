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
    if pcm.sample_rate > 96_000 {
        return Err(MediaError::Parameters(format!(
            "FLAC output supports up to 96 kHz, not {}",
            pcm.sample_rate
        )));
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
    // flacenc's own threads work on the whole signal at once, holding all
    // of it coded; blocks are spread over threads here instead.
    let threads = if config.multithread {
        std::thread::available_parallelism().map_or(1, usize::from)
    } else {
        1
    };
    flac_block_by_block(pcm, &config, threads)
}

fn flac_error(e: &dyn std::fmt::Debug) -> MediaError {
    MediaError::Encode(format!("{e:?}"))
}

/// `pcm`'s samples `from..to`, interleaved and quantised.
fn interleave(pcm: &Pcm, bits: u32, from: usize, to: usize, out: &mut Vec<i32>) {
    out.clear();
    for i in from..to {
        for ch in &pcm.channels {
            out.push(quantise(ch[i], bits));
        }
    }
}

/// flacenc's own encoder over the whole signal: it holds every sample
/// interleaved and every coded frame until the end (the reference the
/// block-by-block writer is compared with).
#[cfg(test)]
fn flac_whole_signal(
    pcm: &Pcm,
    config: &flacenc::error::Verified<flacenc::config::Encoder>,
) -> Result<Vec<u8>, MediaError> {
    let bits = output_bits(pcm);
    let mut interleaved = Vec::with_capacity(pcm.frames() * pcm.channels.len());
    interleave(pcm, bits, 0, pcm.frames(), &mut interleaved);
    let source = flacenc::source::MemSource::from_samples(
        &interleaved,
        pcm.channels.len(),
        bits as usize,
        pcm.sample_rate as usize,
    );
    let stream = flacenc::encode_with_fixed_block_size(config, source, config.block_size)
        .map_err(|e| flac_error(&e))?;
    let mut sink = flacenc::bitsink::ByteSink::new();
    stream.write(&mut sink).map_err(|e| flac_error(&e))?;
    Ok(sink.into_inner())
}

/// The same stream made a few blocks at a time, each run of blocks coded
/// on `threads` threads and written at once: what this holds besides
/// `pcm` is a run of blocks and the bytes written.
fn flac_block_by_block(
    pcm: &Pcm,
    config: &flacenc::error::Verified<flacenc::config::Encoder>,
    threads: usize,
) -> Result<Vec<u8>, MediaError> {
    use flacenc::bitsink::BitSink;
    use flacenc::source::Fill;
    // Room for "fLaC" and STREAMINFO, written last, when the MD5 and the
    // frame sizes are known.
    const HEAD: usize = 42;
    let threads = threads.max(1);
    let run = 16 * threads;
    let (bits, n_ch, block) = (output_bits(pcm), pcm.channels.len(), config.block_size);
    let mut info =
        flacenc::component::StreamInfo::new(pcm.sample_rate as usize, n_ch, bits as usize)
            .map_err(|e| flac_error(&e))?;
    let mut bufs = (0..run)
        .map(|_| flacenc::source::FrameBuf::with_size(n_ch, block))
        .collect::<Result<Vec<_>, _>>()
        .map_err(|e| flac_error(&e))?;
    let mut context = flacenc::source::Context::new(bits as usize, n_ch, block);
    let mut sink = flacenc::bitsink::ByteSink::new();
    sink.write_bytes_aligned(&[0; HEAD])
        .map_err(|e| flac_error(&e))?;
    let mut samples = Vec::with_capacity(block * n_ch);
    let mut from = 0;
    while from < pcm.frames() {
        // The next run of blocks, read in order (the MD5 is of the whole).
        let first = context.current_frame_number().map_or(0, |n| n + 1);
        let mut filled = 0;
        while filled < run && from < pcm.frames() {
            let to = (from + block).min(pcm.frames());
            interleave(pcm, bits, from, to, &mut samples);
            (&mut bufs[filled], &mut context)
                .fill_interleaved(&samples)
                .map_err(|e| flac_error(&e))?;
            filled += 1;
            from = to;
        }
        let encode = |(i, buf): (usize, &flacenc::source::FrameBuf)| {
            flacenc::encode_fixed_size_frame(config, buf, first + i, &info)
                .map_err(|e| flac_error(&e))
        };
        let frames: Vec<_> = if threads == 1 {
            bufs[..filled].iter().enumerate().map(encode).collect()
        } else {
            let per = filled.div_ceil(threads);
            std::thread::scope(|s| {
                let workers: Vec<_> = bufs[..filled]
                    .chunks(per)
                    .enumerate()
                    .map(|(c, chunk)| {
                        s.spawn(move || {
                            chunk
                                .iter()
                                .enumerate()
                                .map(|(i, b)| encode((c * per + i, b)))
                                .collect::<Vec<_>>()
                        })
                    })
                    .collect();
                workers
                    .into_iter()
                    .flat_map(|w| w.join().expect("a FLAC worker does not panic"))
                    .collect()
            })
        };
        for frame in frames {
            let frame = frame?;
            info.update_frame_info(&frame);
            frame.write(&mut sink).map_err(|e| flac_error(&e))?;
        }
    }
    info.set_md5_digest(&context.md5_digest());
    info.set_total_samples(pcm.frames());
    let mut head = flacenc::bitsink::ByteSink::new();
    flacenc::component::Stream::with_stream_info(info)
        .write(&mut head)
        .map_err(|e| flac_error(&e))?;
    let head = head.into_inner();
    if head.len() != HEAD {
        return Err(MediaError::Encode(format!(
            "a FLAC head of {} bytes, not {HEAD}",
            head.len()
        )));
    }
    let mut out = sink.into_inner();
    out[..HEAD].copy_from_slice(&head);
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn block_by_block_flac_is_the_whole_signal_encoders_stream() {
        for (seconds, rate, channels) in [(0.01, 44_100, 1), (1.3, 48_000, 2), (9.0, 22_050, 2)] {
            let mut pcm = crate::synth::music(seconds, rate, 3);
            pcm.channels.truncate(channels);
            for lpc in [true, false] {
                let mut config = flacenc::config::Encoder::default();
                config.subframe_coding.use_lpc = lpc;
                config.multithread = false;
                let config = config.into_verified().unwrap();
                let whole = flac_whole_signal(&pcm, &config).unwrap();
                // Runs of blocks over one thread and over three.
                for threads in [1, 3] {
                    let ours = flac_block_by_block(&pcm, &config, threads).unwrap();
                    assert!(
                        ours == whole,
                        "{seconds} s at {rate} Hz, {channels} channel(s), LPC {lpc}, {threads} thread(s)"
                    );
                }
            }
        }
    }
}
