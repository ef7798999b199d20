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

/// Rounds (half away from zero) and clips one sample to a signed integer
/// of `bits` bits; NaN is 0. It runs for every sample written, so it is
/// branch-free and in `f32` (scaling by a power of two and taking the
/// fraction are exact there), with no call to `round`, a library function
/// on baseline x86-64.
#[inline]
fn quantise(s: f32, bits: u32) -> i32 {
    let full = (1u32 << (bits - 1)) as f32;
    // Clipping first keeps the integer in range; the result is the same.
    let x = (s * full).clamp(-full - 1.0, full);
    let whole = x as i32; // toward zero; NaN is 0
    let rest = x - whole as f32; // exact
    let rounded = whole + i32::from(rest >= 0.5) - i32::from(rest <= -0.5);
    rounded.clamp(-(full as i32), full as i32 - 1)
}

/// [`quantise`] at 16 bits, in operations that run several samples at a
/// time: Rust's float-to-integer cast saturates, and that check runs one
/// sample at a time (it was most of a WAV write). The rounding is done in
/// `f32` by adding 1.5·2^23 (whose last bit is worth 1, so the sum is
/// rounded to an integer, ties to even; ties are then moved away from
/// zero), and that sum's bits hold the integer.
#[inline(always)]
pub(crate) fn quantise16(s: f32) -> i16 {
    const MAGIC: f32 = 12_582_912.0;
    let x = (s * 32_768.0).clamp(-32_768.0, 32_767.0);
    let x = if x.is_nan() { 0.0 } else { x };
    let even = (x + MAGIC) - MAGIC;
    let rest = x - even; // exact: -0.5..=0.5
    let away = if rest == 0.5 && x > 0.0 {
        1.0
    } else if rest == -0.5 && x < 0.0 {
        -1.0
    } else {
        0.0
    };
    ((even + away + MAGIC).to_bits() as i32 - MAGIC.to_bits() as i32) as i16
}

thread_local! {
    /// The widest vector instructions this CPU has, found once.
    static ARCH: pulp::Arch = pulp::Arch::new();
}

/// Frames `run` of every channel of `chunk` rounded to 16 bits, compiled
/// for the CPU's widest vectors (pulp picks them at run time).
struct Round16<'a> {
    chunk: &'a [&'a [f32]],
    run: std::ops::Range<usize>,
    rounded: &'a mut [Vec<i16>],
}

impl pulp::WithSimd for Round16<'_> {
    type Output = ();

    #[inline(always)]
    fn with_simd<S: pulp::Simd>(self, _simd: S) {
        for (r, ch) in self.rounded.iter_mut().zip(self.chunk) {
            r.clear();
            r.extend(ch[self.run.clone()].iter().map(|&s| quantise16(s)));
        }
    }
}

/// Writes `n` frames of `chunk` (one slice per channel) interleaved.
fn write_wav_frames<W: Write + Seek>(
    w: &mut hound::WavWriter<W>,
    chunk: &[&[f32]],
    n: usize,
    bits: u32,
) -> Result<(), MediaError> {
    let enc = |e: hound::Error| MediaError::Encode(e.to_string());
    if bits == 16 {
        // Frames in runs whose byte count fits hound's u32 buffer size.
        const RUN: usize = 1 << 16;
        // Each channel is rounded on its own first (a straight loop the
        // compiler runs several samples at a time), then interleaved.
        let mut rounded: Vec<Vec<i16>> = vec![Vec::new(); chunk.len()];
        let mut from = 0;
        while from < n {
            let to = (from + RUN).min(n);
            ARCH.with(|arch| {
                arch.dispatch(Round16 {
                    chunk,
                    run: from..to,
                    rounded: &mut rounded,
                })
            });
            let mut sw = w.get_i16_writer(((to - from) * chunk.len()) as u32);
            match &rounded[..] {
                [mono] => mono.iter().for_each(|&s| sw.write_sample(s)),
                [l, r] => l.iter().zip(r).for_each(|(&l, &r)| {
                    sw.write_sample(l);
                    sw.write_sample(r);
                }),
                many => {
                    for i in 0..to - from {
                        for ch in many {
                            sw.write_sample(ch[i]);
                        }
                    }
                }
            }
            sw.flush().map_err(enc)?;
            from = to;
        }
        return Ok(());
    }
    for i in 0..n {
        for ch in chunk {
            w.write_sample(quantise(ch[i], bits)).map_err(enc)?;
        }
    }
    Ok(())
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
    write_atomic_with(path, |f| {
        f.write_all(bytes).map_err(|source| MediaError::Write {
            path: path.to_owned(),
            source,
        })
    })
}

/// Runs `write` on a file beside `path`, then renames it over `path`; on
/// any failure the partial file is removed, so `path` never holds half a
/// file. Not synced to disk: every file written here is made again from
/// its input (a marked copy is a function of the input, the key and the
/// ids), so a power cut costs a rerun; what cannot be remade (the server's
/// stores and records) is synced where it is kept. The peers (audiowmark,
/// sox, ffmpeg) do not sync either.
pub(crate) fn write_atomic_with<T, E: From<MediaError>>(
    path: &Path,
    write: impl FnOnce(&mut BufWriter<std::fs::File>) -> Result<T, E>,
) -> Result<T, E> {
    let tmp = path.with_extension(format!(
        "{}.partial",
        path.extension().and_then(|e| e.to_str()).unwrap_or("out")
    ));
    let failed = |source: std::io::Error| MediaError::Write {
        path: path.to_owned(),
        source,
    };
    let mut file = BufWriter::new(std::fs::File::create(&tmp).map_err(failed)?);
    let result = write(&mut file).and_then(|t| {
        drop(file.into_inner().map_err(|e| failed(e.into_error()))?);
        put_in_place(&tmp, path).map_err(failed)?;
        Ok(t)
    });
    if result.is_err() {
        let _ = std::fs::remove_file(&tmp);
    }
    result
}

/// Moves the finished file `tmp` to `path`. An existing file at `path`
/// has its name exchanged with `tmp` (Linux), and is then removed: renaming
/// over it makes ext4 write the new file out at once (its guard for
/// programs that do not sync), which cost more than the rest of a marked
/// copy's I/O. Anything else (no file there, or no exchange on this file
/// system) is a plain rename.
fn put_in_place(tmp: &Path, path: &Path) -> std::io::Result<()> {
    #[cfg(target_os = "linux")]
    if std::fs::symlink_metadata(path).is_ok_and(|m| m.is_file()) {
        use rustix::fs::{renameat_with, RenameFlags, CWD};
        if renameat_with(CWD, tmp, CWD, path, RenameFlags::EXCHANGE).is_ok() {
            // `tmp` now names the old file.
            return std::fs::remove_file(tmp);
        }
    }
    std::fs::rename(tmp, path)
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
    let chunk: Vec<&[f32]> = pcm.channels.iter().map(Vec::as_slice).collect();
    write_wav_frames(&mut w, &chunk, pcm.frames(), bits)?;
    w.finalize().map_err(enc)
}

fn write_flac(pcm: &Pcm, effort: FlacEffort) -> Result<Vec<u8>, MediaError> {
    let (config, threads) = flac_config(effort, pcm.sample_rate)?;
    flac_block_by_block(pcm, &config, threads)
}

/// The encoder's settings for an effort, and the threads to code on.
fn flac_config(
    effort: FlacEffort,
    sample_rate: u32,
) -> Result<(flacenc::error::Verified<flacenc::config::Encoder>, usize), MediaError> {
    if sample_rate > 96_000 {
        return Err(MediaError::Parameters(format!(
            "FLAC output supports up to 96 kHz, not {sample_rate}"
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
    Ok((config, threads))
}

fn flac_error(e: &dyn std::fmt::Debug) -> MediaError {
    MediaError::Encode(format!("{e:?}"))
}

/// `pcm`'s samples `from..to`, interleaved and quantised.
#[cfg(test)]
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

/// The same stream made a few blocks at a time (see [`FlacWriter`]), from
/// PCM in memory.
fn flac_block_by_block(
    pcm: &Pcm,
    config: &flacenc::error::Verified<flacenc::config::Encoder>,
    threads: usize,
) -> Result<Vec<u8>, MediaError> {
    Ok(flac_framed(pcm, config, threads, false)?.0)
}

/// As [`flac_block_by_block`]; `variant` also gives every frame's size
/// and states no MD5 (A/B variants: a copy's samples are neither's).
fn flac_framed(
    pcm: &Pcm,
    config: &flacenc::error::Verified<flacenc::config::Encoder>,
    threads: usize,
    variant: bool,
) -> Result<(Vec<u8>, Vec<u32>), MediaError> {
    let mut w = FlacWriter::new(
        Cursor::new(Vec::new()),
        config.clone(),
        threads,
        pcm.sample_rate,
        pcm.channels.len(),
        output_bits(pcm),
        &[],
        None,
    )?;
    if variant {
        w.frame_sizes = Some(Vec::with_capacity(pcm.frames().div_ceil(config.block_size)));
        w.md5 = None;
    }
    let mut from = 0;
    while from < pcm.frames() {
        let to = (from + PIECE).min(pcm.frames());
        let piece: Vec<&[f32]> = pcm.channels.iter().map(|c| &c[from..to]).collect();
        w.write(&piece)?;
        from = to;
    }
    let (out, sizes) = w.finish_framed()?;
    Ok((out.into_inner(), sizes))
}

/// Two FLAC streams of the same audio marked two ways (A/B variants),
/// made to be spliced frame by frame: blocks of `block` frames, the same
/// metadata in both (STREAMINFO's frame sizes bound both streams' frames;
/// its MD5 unset, as a copy's samples are neither's), and every frame's
/// size.
#[derive(Debug, Clone)]
pub struct FlacPair {
    pub a: Vec<u8>,
    pub b: Vec<u8>,
    /// Bytes before the first frame, the same in both.
    pub header: usize,
    pub a_frames: Vec<u32>,
    pub b_frames: Vec<u32>,
}

/// Encodes `a` and `b` (the same shape) as a [`FlacPair`], with the best
/// effort (made once, kept).
pub fn encode_flac_pair(a: &Pcm, b: &Pcm, block: usize) -> Result<FlacPair, MediaError> {
    check(a)?;
    check(b)?;
    if a.sample_rate != b.sample_rate
        || a.channels.len() != b.channels.len()
        || a.frames() != b.frames()
        || output_bits(a) != output_bits(b)
    {
        return Err(MediaError::Parameters(
            "the two variants differ in shape".into(),
        ));
    }
    let (mut config, threads) = flac_config(FlacEffort::Best, a.sample_rate)?;
    if config.block_size != block {
        let mut plain = (*config).clone();
        plain.block_size = block;
        config = plain
            .into_verified()
            .map_err(|(_, e)| MediaError::Encode(format!("{e:?}")))?;
    }
    let (mut a, a_frames) = flac_framed(a, &config, threads, true)?;
    let (mut b, b_frames) = flac_framed(b, &config, threads, true)?;
    // One STREAMINFO for both: frame sizes bounding both, MD5 unset.
    let size = |h: &[u8], at: usize| u32::from_be_bytes([0, h[at], h[at + 1], h[at + 2]]);
    let bound = |x: u32, y: u32, pick: fn(u32, u32) -> u32| match (x, y) {
        (0, _) | (_, 0) => 0,
        _ => pick(x, y),
    };
    let low = bound(size(&a, 12), size(&b, 12), u32::min);
    let high = bound(size(&a, 15), size(&b, 15), u32::max);
    for v in [&mut a, &mut b] {
        v[12..15].copy_from_slice(&low.to_be_bytes()[1..]);
        v[15..18].copy_from_slice(&high.to_be_bytes()[1..]);
        v[26..42].fill(0);
    }
    if a[..FLAC_HEAD] != b[..FLAC_HEAD] {
        return Err(MediaError::Encode(
            "the two variants' FLAC headers differ".into(),
        ));
    }
    Ok(FlacPair {
        a,
        b,
        header: FLAC_HEAD,
        a_frames,
        b_frames,
    })
}

/// Frames handed to a writer at a time from memory.
const PIECE: usize = 1 << 16;

/// Room for "fLaC" and STREAMINFO at the start of a FLAC stream: written
/// last, when the MD5 and the frame sizes are known.
const FLAC_HEAD: usize = 42;

/// "fLaC" and a STREAMINFO block (RFC 9639, 8.2) for a stream of fixed
/// blocks of `block` frames written in order: its length is announced
/// (`total` frames, 0 = unknown) and what only the end knows is left
/// unknown, as the format allows: frame sizes 0 and MD5 all zeros.
fn stream_info_upfront(
    block: usize,
    sample_rate: u32,
    channels: usize,
    bits: u32,
    total: u64,
) -> Result<[u8; FLAC_HEAD], MediaError> {
    let fits = (16..=65_535).contains(&block)
        && (1..=0xF_FFFF).contains(&sample_rate)
        && (1..=8).contains(&channels)
        && (4..=32).contains(&bits)
        && total < 1 << 36;
    if !fits {
        return Err(MediaError::Parameters(format!(
            "a FLAC stream of {block}-frame blocks, {sample_rate} Hz, {channels} channels, {bits} bits, {total} frames"
        )));
    }
    let mut head = [0u8; FLAC_HEAD];
    head[..4].copy_from_slice(b"fLaC");
    // Last metadata block, type 0 (STREAMINFO), 34 bytes long.
    head[4..8].copy_from_slice(&[0x80, 0, 0, 34]);
    let block = (block as u16).to_be_bytes();
    head[8..10].copy_from_slice(&block);
    head[10..12].copy_from_slice(&block);
    // Bytes 12..18: minimum and maximum frame sizes, unknown (0).
    // 20 bits of rate, 3 of channels - 1, 5 of bits - 1, 36 of frames.
    let packed = (u64::from(sample_rate) << 44)
        | ((channels as u64 - 1) << 41)
        | (u64::from(bits - 1) << 36)
        | total;
    head[18..26].copy_from_slice(&packed.to_be_bytes());
    // Bytes 26..42: the MD5 of the samples, unknown (zeros).
    Ok(head)
}

/// A FLAC frame (RFC 9639, section 9) holding `interleaved` (whole frames
/// of `channels` samples of `bits` bits) uncoded, numbered `number` in a
/// stream of fixed blocks: the last block, shorter than the others.
/// flacenc codes only blocks of 64 frames or more, and pads a shorter last
/// block with silence; a verbatim frame holds any length exactly, for at
/// most one block's raw size. Its sample rate and bit depth are the
/// stream's (codes 0: "from STREAMINFO").
fn verbatim_frame(interleaved: &[i32], channels: usize, bits: u32, number: u64) -> Vec<u8> {
    let n = interleaved.len() / channels;
    debug_assert!((1..=65_536).contains(&n) && (1..=8).contains(&channels));
    let mut frame = vec![0xFF, 0xF8];
    // Block size: 8 bits of n - 1 after the number (code 6), or 16 (code 7).
    frame.push(if n <= 256 { 0x60 } else { 0x70 });
    // Channels coded independently (n - 1), bit depth from STREAMINFO.
    frame.push(((channels - 1) as u8) << 4);
    frame.extend_from_slice(&coded_number(number));
    if n <= 256 {
        frame.push((n - 1) as u8);
    } else {
        frame.extend_from_slice(&((n - 1) as u16).to_be_bytes());
    }
    frame.push(crc::Crc::<u8>::new(&crc::CRC_8_SMBUS).checksum(&frame));
    // Each channel's subframe: header 0b0_000001_0 (verbatim, no wasted
    // bits), then its samples of `bits` bits, all packed without gaps.
    let mut acc = 0u64;
    let mut held = 0u32;
    let mut put = |frame: &mut Vec<u8>, value: u64, width: u32| {
        acc = (acc << width) | (value & ((1u64 << width) - 1));
        held += width;
        while held >= 8 {
            held -= 8;
            frame.push((acc >> held) as u8);
        }
    };
    for c in 0..channels {
        put(&mut frame, 0b0000_0010, 8);
        for s in interleaved.iter().skip(c).step_by(channels) {
            put(&mut frame, *s as u32 as u64, bits);
        }
    }
    // Zero bits up to the next byte.
    if held > 0 {
        frame.push((acc << (8 - held)) as u8);
    }
    let crc16 = crc::Crc::<u16>::new(&crc::CRC_16_UMTS).checksum(&frame);
    frame.extend_from_slice(&crc16.to_be_bytes());
    frame
}

/// A frame number as FLAC codes it (RFC 9639, 9.1.5): UTF-8's scheme,
/// extended to 36 bits.
fn coded_number(v: u64) -> Vec<u8> {
    if v < 0x80 {
        return vec![v as u8];
    }
    // Bytes: n, of which the first holds 7 - n bits and the rest 6 each.
    let n = (2..=7u32)
        .find(|&n| v < 1u64 << (6 * (n - 1) + (7 - n)))
        .unwrap_or(7);
    let mut out = vec![(0xFF00u16 >> n) as u8 | (v >> (6 * (n - 1))) as u8];
    for k in (0..n - 1).rev() {
        out.push(0x80 | ((v >> (6 * k)) & 0x3F) as u8);
    }
    out
}

/// A FLAC stream written as samples come: blocks are gathered into runs
/// (16 per thread), each run coded on `threads` threads and written at once,
/// and STREAMINFO written over its place at the end, or, for a stream
/// written in order, first. What it holds is a run of blocks, whatever the
/// length.
struct FlacWriter<W: Write + Seek> {
    out: W,
    start: u64,
    /// Written in order: STREAMINFO went first with this length (frames;
    /// 0 = unknown), and the bytes written are never changed.
    in_order: Option<u64>,
    config: flacenc::error::Verified<flacenc::config::Encoder>,
    threads: usize,
    info: flacenc::component::StreamInfo,
    bufs: Vec<flacenc::source::FrameBuf>,
    filled: usize,
    /// Frame number of the run's first block.
    first: usize,
    /// Whole blocks filled so far.
    blocks: usize,
    /// The MD5 of the samples so far (RFC 9639, 8.2: of each sample's
    /// little-endian bytes, interleaved), with room for a block's bytes;
    /// none for a stream written in order, whose head went first.
    md5: Option<(md5::Md5, Vec<u8>)>,
    /// Interleaved, quantised samples not yet a whole block.
    pending: Vec<i32>,
    bits: u32,
    channels: usize,
    frames: usize,
    /// Metadata blocks written after STREAMINFO (the last one flagged so).
    metadata: bool,
    /// Each frame's size in bytes, when asked for (spliceable variants).
    frame_sizes: Option<Vec<u32>>,
}

impl<W: Write + Seek> FlacWriter<W> {
    #[allow(clippy::too_many_arguments)]
    fn new(
        mut out: W,
        config: flacenc::error::Verified<flacenc::config::Encoder>,
        threads: usize,
        sample_rate: u32,
        channels: usize,
        bits: u32,
        metadata: &[u8],
        in_order: Option<u64>,
    ) -> Result<Self, MediaError> {
        let threads = threads.max(1);
        let block = config.block_size;
        let info =
            flacenc::component::StreamInfo::new(sample_rate as usize, channels, bits as usize)
                .map_err(|e| flac_error(&e))?;
        let head = match in_order {
            Some(total) => {
                let mut head = stream_info_upfront(block, sample_rate, channels, bits, total)?;
                if !metadata.is_empty() {
                    head[4] &= 0x7F;
                }
                head
            }
            None => [0; FLAC_HEAD],
        };
        let bufs = (0..16 * threads)
            .map(|_| flacenc::source::FrameBuf::with_size(channels, block))
            .collect::<Result<Vec<_>, _>>()
            .map_err(|e| flac_error(&e))?;
        let io = |e: std::io::Error| MediaError::Encode(e.to_string());
        let start = out.stream_position().map_err(io)?;
        out.write_all(&head).map_err(io)?;
        out.write_all(metadata).map_err(io)?;
        Ok(FlacWriter {
            out,
            start,
            in_order,
            blocks: 0,
            md5: in_order.is_none().then(|| {
                (
                    <md5::Md5 as md5::Digest>::new(),
                    Vec::with_capacity(block * channels * 4),
                )
            }),
            config,
            threads,
            info,
            bufs,
            filled: 0,
            first: 0,
            pending: Vec::with_capacity(block * channels),
            bits,
            channels,
            frames: 0,
            metadata: !metadata.is_empty(),
            frame_sizes: None,
        })
    }

    /// Takes the next samples, one slice per channel.
    fn write(&mut self, chunk: &[&[f32]]) -> Result<(), MediaError> {
        let block = self.config.block_size * self.channels;
        let n = chunk.first().map_or(0, |c| c.len());
        if let Some(total) = self.in_order.filter(|t| *t != 0) {
            // Refused before any of it is written (and served).
            if (self.frames + n) as u64 > total {
                return Err(MediaError::Encode(format!(
                    "more than the {total} frames announced"
                )));
            }
        }
        for i in 0..n {
            for ch in chunk {
                self.pending.push(quantise(ch[i], self.bits));
            }
            if self.pending.len() == block {
                self.fill_block()?;
            }
        }
        self.frames += n;
        Ok(())
    }

    /// Moves the pending samples into the run's next block, and codes the
    /// run when it is full.
    fn fill_block(&mut self) -> Result<(), MediaError> {
        use flacenc::source::Fill;
        if self.filled == 0 {
            self.first = self.blocks;
        }
        self.bufs[self.filled]
            .fill_interleaved(&self.pending)
            .map_err(|e| flac_error(&e))?;
        self.add_to_md5();
        self.pending.clear();
        self.filled += 1;
        self.blocks += 1;
        if self.filled == self.bufs.len() {
            self.code_run()?;
        }
        Ok(())
    }

    /// Codes the blocks gathered and writes their frames.
    fn code_run(&mut self) -> Result<(), MediaError> {
        let (config, info, first) = (&self.config, &self.info, self.first);
        let encode = |(i, buf): (usize, &flacenc::source::FrameBuf)| {
            flacenc::encode_fixed_size_frame(config, buf, first + i, info)
                .map_err(|e| flac_error(&e))
        };
        let filled = self.filled;
        let frames: Vec<_> = if self.threads == 1 {
            self.bufs[..filled].iter().enumerate().map(encode).collect()
        } else {
            let per = filled.div_ceil(self.threads);
            std::thread::scope(|s| {
                let workers: Vec<_> = self.bufs[..filled]
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
        let mut sink = flacenc::bitsink::ByteSink::new();
        for frame in frames {
            let frame = frame?;
            self.info.update_frame_info(&frame);
            let before = sink.as_slice().len();
            frame.write(&mut sink).map_err(|e| flac_error(&e))?;
            if let Some(sizes) = &mut self.frame_sizes {
                sizes.push((sink.as_slice().len() - before) as u32);
            }
        }
        self.out
            .write_all(sink.as_slice())
            .map_err(|e| MediaError::Encode(e.to_string()))?;
        self.filled = 0;
        Ok(())
    }

    /// Adds the pending samples to the MD5 (when there is one).
    fn add_to_md5(&mut self) {
        use md5::Digest;
        let Some((md5, bytes)) = &mut self.md5 else {
            return;
        };
        let width = self.bits.div_ceil(8) as usize;
        bytes.clear();
        for s in &self.pending {
            bytes.extend_from_slice(&s.to_le_bytes()[..width]);
        }
        md5.update(&bytes[..]);
    }

    /// Codes what is left and writes STREAMINFO over its place.
    fn finish(self) -> Result<W, MediaError> {
        Ok(self.finish_framed()?.0)
    }

    /// As [`FlacWriter::finish`], with every frame's size when they were
    /// asked for.
    fn finish_framed(mut self) -> Result<(W, Vec<u32>), MediaError> {
        use std::io::SeekFrom;
        if self.filled > 0 {
            self.code_run()?;
        }
        // A last block shorter than the others is written as it is, not
        // padded with silence to a whole block as flacenc does (which every
        // decoder then plays, and which `flac -t` finds against the MD5).
        let mut last_frame = None;
        if !self.pending.is_empty() {
            let frame = verbatim_frame(&self.pending, self.channels, self.bits, self.blocks as u64);
            self.add_to_md5();
            self.out
                .write_all(&frame)
                .map_err(|e| MediaError::Encode(e.to_string()))?;
            last_frame = Some(frame.len());
            if let Some(sizes) = &mut self.frame_sizes {
                sizes.push(frame.len() as u32);
            }
            self.pending.clear();
        }
        if let Some(total) = self.in_order {
            // More than announced would be a lie told to every reader.
            // Fewer is a source whose tail did not decode (the decoder
            // skips a damaged last frame): the stream ends where the
            // samples do, as every decoder reads it.
            if total != 0 && self.frames as u64 > total {
                return Err(MediaError::Encode(format!(
                    "{} frames written where {total} were announced",
                    self.frames
                )));
            }
            let sizes = self.frame_sizes.take().unwrap_or_default();
            return Ok((self.out, sizes));
        }
        if let Some((md5, _)) = self.md5.take() {
            self.info
                .set_md5_digest(&<md5::Md5 as md5::Digest>::finalize(md5).into());
        }
        self.info.set_total_samples(self.frames);
        // The fixed block size (a shorter last block does not count), and
        // the frame sizes with the last frame's.
        let block = self.config.block_size;
        self.info
            .set_block_sizes(block, block)
            .map_err(|e| flac_error(&e))?;
        if let Some(last) = last_frame {
            let (low, high) = (self.info.min_frame_size(), self.info.max_frame_size());
            self.info
                .set_frame_sizes(low.min(last), high.max(last))
                .map_err(|e| flac_error(&e))?;
        }
        let mut head = flacenc::bitsink::ByteSink::new();
        flacenc::component::Stream::with_stream_info(self.info)
            .write(&mut head)
            .map_err(|e| flac_error(&e))?;
        let mut head = head.into_inner();
        if head.len() != FLAC_HEAD {
            return Err(MediaError::Encode(format!(
                "a FLAC head of {} bytes, not {FLAC_HEAD}",
                head.len()
            )));
        }
        if self.metadata {
            // STREAMINFO is no longer the last metadata block.
            head[4] &= 0x7F;
        }
        // flacenc can state a largest frame smaller than its smallest (seen
        // with 24-bit mono), which decoders refuse: unknown (0) instead.
        let size = |b: &[u8]| u32::from_be_bytes([0, b[0], b[1], b[2]]);
        if size(&head[15..18]) < size(&head[12..15]) {
            head[12..18].fill(0);
        }
        let io = |e: std::io::Error| MediaError::Encode(e.to_string());
        let end = self.out.stream_position().map_err(io)?;
        self.out.seek(SeekFrom::Start(self.start)).map_err(io)?;
        self.out.write_all(&head).map_err(io)?;
        self.out.seek(SeekFrom::Start(end)).map_err(io)?;
        let sizes = self.frame_sizes.take().unwrap_or_default();
        Ok((self.out, sizes))
    }
}

/// Audio written as it comes, WAV or FLAC, to any seekable sink (a file
/// being written, or memory). WAV sizes and FLAC's STREAMINFO are written
/// over their places at the end.
pub struct PcmWriter<W: Write + Seek> {
    inner: Writer<W>,
    channels: usize,
}

enum Writer<W: Write + Seek> {
    Wav(hound::WavWriter<W>, u32),
    Flac(Box<FlacWriter<W>>),
}

impl<W: Write + Seek> PcmWriter<W> {
    /// A writer of `channels` channels at `sample_rate`, 24-bit when the
    /// source had more than 16 bits, else 16.
    pub fn new(
        out: W,
        format: OutputFormat,
        effort: FlacEffort,
        sample_rate: u32,
        channels: usize,
        source_bits: Option<u32>,
    ) -> Result<Self, MediaError> {
        Self::with_rights(
            out,
            format,
            effort,
            sample_rate,
            channels,
            source_bits,
            None,
        )
    }

    /// As [`PcmWriter::new`], with `rights` in the stream's own metadata
    /// (FLAC: the VORBIS_COMMENT block [`crate::tag`] writes; a WAV carries
    /// none, so it is refused).
    pub fn with_rights(
        out: W,
        format: OutputFormat,
        effort: FlacEffort,
        sample_rate: u32,
        channels: usize,
        source_bits: Option<u32>,
        rights: Option<&crate::Rights>,
    ) -> Result<Self, MediaError> {
        Self::open(
            out,
            format,
            effort,
            sample_rate,
            channels,
            source_bits,
            rights,
            None,
        )
    }

    /// The writer, FLAC written in order when `in_order` announces its
    /// length (see [`Self::flac_in_order`]).
    #[allow(clippy::too_many_arguments)]
    fn open(
        out: W,
        format: OutputFormat,
        effort: FlacEffort,
        sample_rate: u32,
        channels: usize,
        source_bits: Option<u32>,
        rights: Option<&crate::Rights>,
        in_order: Option<u64>,
    ) -> Result<Self, MediaError> {
        if channels == 0 || channels > 8 {
            return Err(MediaError::Parameters(format!("{channels} channels")));
        }
        if sample_rate == 0 {
            return Err(MediaError::Parameters("sample rate 0".into()));
        }
        let bits = match source_bits {
            Some(b) if b > 16 => 24,
            _ => 16,
        };
        let inner = match format {
            OutputFormat::Wav if rights.is_some() => {
                return Err(MediaError::UnsupportedOutput(
                    "rights metadata is written to FLAC, not WAV".into(),
                ))
            }
            OutputFormat::Wav => {
                let spec = hound::WavSpec {
                    channels: channels as u16,
                    sample_rate,
                    bits_per_sample: bits as u16,
                    sample_format: hound::SampleFormat::Int,
                };
                Writer::Wav(
                    hound::WavWriter::new(out, spec)
                        .map_err(|e| MediaError::Encode(e.to_string()))?,
                    bits,
                )
            }
            OutputFormat::Flac => {
                let (config, threads) = flac_config(effort, sample_rate)?;
                Writer::Flac(Box::new(FlacWriter::new(
                    out,
                    config,
                    threads,
                    sample_rate,
                    channels,
                    bits,
                    &rights
                        .map(crate::rights::flac_rights_block)
                        .transpose()?
                        .unwrap_or_default(),
                    in_order,
                )?))
            }
        };
        Ok(PcmWriter { inner, channels })
    }

    /// A FLAC stream whose bytes, once written, never change, so it can
    /// be read (served) while it is written: STREAMINFO goes first with
    /// the length announced (`total_frames`, from the source; `None` =
    /// unknown), and what only the end knows, the MD5 of the samples and
    /// the frame sizes, is left unknown (zeros, as RFC 9639 allows).
    /// Finishing with more frames than announced is an error.
    pub fn flac_in_order(
        out: W,
        effort: FlacEffort,
        sample_rate: u32,
        channels: usize,
        source_bits: Option<u32>,
        rights: Option<&crate::Rights>,
        total_frames: Option<u64>,
    ) -> Result<Self, MediaError> {
        Self::open(
            out,
            OutputFormat::Flac,
            effort,
            sample_rate,
            channels,
            source_bits,
            rights,
            Some(total_frames.unwrap_or(0)),
        )
    }

    /// Writes the next samples, one slice per channel (all the same length).
    pub fn write(&mut self, chunk: &[&[f32]]) -> Result<(), MediaError> {
        let n = chunk.first().map_or(0, |c| c.len());
        if chunk.len() != self.channels || chunk.iter().any(|c| c.len() != n) {
            return Err(MediaError::Parameters("channels differ in length".into()));
        }
        match &mut self.inner {
            Writer::Wav(w, bits) => write_wav_frames(w, chunk, n, *bits),
            Writer::Flac(f) => f.write(chunk),
        }
    }

    /// Ends the stream and writes its sizes over their places. (Pass
    /// `&mut sink` to keep the sink.)
    pub fn finish(self) -> Result<(), MediaError> {
        let enc = |e: hound::Error| MediaError::Encode(e.to_string());
        match self.inner {
            Writer::Wav(w, _) => w.finalize().map_err(enc),
            Writer::Flac(f) => {
                let mut out = f.finish()?;
                out.flush().map_err(|e| MediaError::Encode(e.to_string()))
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn quantising_rounds_half_away_from_zero_and_clips() {
        // The plain formula it replaces, for comparison.
        fn plain(s: f32, bits: u32) -> i32 {
            let full = (1i64 << (bits - 1)) as f64;
            (f64::from(s) * full).round().clamp(-full, full - 1.0) as i32
        }
        let half: f32 = 0.5 / 32_768.0;
        let mut values = vec![
            0.0,
            -0.0,
            half,
            -half,
            3.0 * half,
            -3.0 * half,
            f32::from_bits(half.to_bits() - 1),
            f32::from_bits(half.to_bits() + 1),
            1.0,
            -1.0,
            0.999_99,
            -1.000_01,
            2.5,
            -7.0,
            1e30,
            -1e30,
            f32::INFINITY,
            f32::NEG_INFINITY,
            f32::NAN,
            f32::MIN_POSITIVE,
        ];
        let mut x = 0x1234_5678u32;
        for _ in 0..100_000 {
            x ^= x << 13;
            x ^= x >> 17;
            x ^= x << 5;
            values.push((x as f32 / u32::MAX as f32 - 0.5) * 2.2);
        }
        for bits in [16, 24] {
            for &v in &values {
                assert_eq!(quantise(v, bits), plain(v, bits), "{v} at {bits} bits");
            }
        }
        for &v in &values {
            assert_eq!(i32::from(quantise16(v)), plain(v, 16), "{v}");
        }
        // Every tie and its neighbours, over the whole 16-bit range.
        for k in -32_770i32..32_770 {
            let tie = (k as f32 + 0.5) / 32_768.0;
            for v in [
                tie,
                f32::from_bits(tie.to_bits() - 1),
                f32::from_bits(tie.to_bits() + 1),
            ] {
                assert_eq!(i32::from(quantise16(v)), plain(v, 16), "{v}");
            }
        }
        assert_eq!(quantise(half, 16), 1);
        assert_eq!(quantise(-half, 16), -1);
        assert_eq!(quantise(f32::NAN, 16), 0);
        assert_eq!(quantise(5.0, 16), 32_767);
        assert_eq!(quantise(-5.0, 24), -8_388_608);
    }

    #[test]
    fn a_write_that_fails_half_way_leaves_the_earlier_file_and_no_partial() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("out.flac");
        std::fs::write(&path, b"earlier").unwrap();
        let r: Result<(), MediaError> = write_atomic_with(&path, |f| {
            f.write_all(&[1; 100_000]).unwrap();
            Err(MediaError::Empty)
        });
        assert!(matches!(r, Err(MediaError::Empty)));
        assert_eq!(std::fs::read(&path).unwrap(), b"earlier");
        let names: Vec<_> = std::fs::read_dir(dir.path())
            .unwrap()
            .map(|e| e.unwrap().file_name())
            .collect();
        assert_eq!(names, ["out.flac"]);
        // And one that succeeds replaces it.
        write_atomic_with(&path, |f| {
            f.write_all(b"new").map_err(|_| MediaError::Empty)
        })
        .unwrap();
        assert_eq!(std::fs::read(&path).unwrap(), b"new");
        // Nothing is left beside it (the replaced file is removed).
        let names: Vec<_> = std::fs::read_dir(dir.path())
            .unwrap()
            .map(|e| e.unwrap().file_name())
            .collect();
        assert_eq!(names, ["out.flac"]);
        // A fresh name is written as well.
        let fresh = dir.path().join("fresh.flac");
        write_atomic_with(&fresh, |f| {
            f.write_all(b"first").map_err(|_| MediaError::Empty)
        })
        .unwrap();
        assert_eq!(std::fs::read(&fresh).unwrap(), b"first");
    }

    #[test]
    fn a_directory_in_the_outputs_place_is_left_alone() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("out.wav");
        std::fs::create_dir(&path).unwrap();
        std::fs::write(path.join("inside"), b"kept").unwrap();
        let r: Result<(), MediaError> = write_atomic_with(&path, |f| {
            f.write_all(b"new").map_err(|_| MediaError::Empty)
        });
        assert!(r.is_err());
        assert_eq!(std::fs::read(path.join("inside")).unwrap(), b"kept");
        let names: Vec<_> = std::fs::read_dir(dir.path())
            .unwrap()
            .map(|e| e.unwrap().file_name())
            .collect();
        assert_eq!(names, ["out.wav"]);
    }

    #[test]
    fn a_flac_written_in_order_is_the_same_stream_with_its_head_first() {
        // Whole blocks, so the encoder's own STREAMINFO has the same block
        // sizes as the one written first; its fields are the reference.
        for (rate, channels, bits) in [
            (44_100u32, 2usize, None),
            (48_000, 1, Some(24)),
            (96_000, 6, Some(16)),
            (8_000, 8, Some(24)),
        ] {
            let frames = 4096 * 3;
            let pcm = Pcm {
                sample_rate: rate,
                bits_per_sample: bits,
                channels: (0..channels)
                    .map(|c| {
                        (0..frames)
                            .map(|i| ((i * (c + 1)) as f32 * 0.01).sin() * 0.5)
                            .collect()
                    })
                    .collect(),
            };
            let seeking = encode_flac(&pcm, FlacEffort::Fast).unwrap();
            let chunk: Vec<&[f32]> = pcm.channels.iter().map(Vec::as_slice).collect();
            let mut ordered = Cursor::new(Vec::new());
            let mut w = PcmWriter::flac_in_order(
                &mut ordered,
                FlacEffort::Fast,
                rate,
                channels,
                bits,
                None,
                Some(frames as u64),
            )
            .unwrap();
            w.write(&chunk).unwrap();
            w.finish().unwrap();
            let ordered = ordered.into_inner();
            let case = format!("{rate} Hz, {channels} ch, {bits:?}");
            assert_eq!(ordered.len(), seeking.len(), "{case}");
            // The frames are the same bytes; so are the fields known first.
            assert_eq!(ordered[FLAC_HEAD..], seeking[FLAC_HEAD..], "{case}");
            assert_eq!(ordered[..12], seeking[..12], "{case}");
            assert_eq!(ordered[18..26], seeking[18..26], "{case}");
            // The rest is unknown, as the format allows.
            assert!(ordered[12..18].iter().all(|b| *b == 0), "{case}");
            assert!(ordered[26..42].iter().all(|b| *b == 0), "{case}");
            assert!(seeking[26..42].iter().any(|b| *b != 0), "{case}");
            // And it decodes to the same samples.
            let back = crate::decode_bytes(ordered, Some("flac")).unwrap();
            let want = crate::decode_bytes(seeking, Some("flac")).unwrap();
            assert_eq!(back.channels, want.channels, "{case}");
        }
    }

    #[test]
    fn a_flac_written_in_order_never_holds_more_than_it_announced() {
        let chunk = vec![0.25f32; 5000];
        for (announced, ok) in [
            (Some(5000), true),
            (None, true),
            (Some(5001), true),
            (Some(4999), false),
        ] {
            let mut w = PcmWriter::flac_in_order(
                Cursor::new(Vec::new()),
                FlacEffort::Fast,
                44_100,
                1,
                None,
                None,
                announced,
            )
            .unwrap();
            // More than announced is refused as it comes, before it is
            // written.
            let written = w.write(&[&chunk]).and_then(|()| w.finish());
            assert_eq!(written.is_ok(), ok, "{announced:?}");
        }
    }

    #[test]
    fn block_by_block_flac_is_the_whole_signal_encoders_stream() {
        // Whole blocks: a shorter last block is written otherwise (below).
        for (seconds, rate, channels) in [(0.1, 44_100, 1), (1.3, 48_000, 2), (9.0, 22_050, 2)] {
            let mut pcm = crate::synth::music(seconds, rate, 3);
            pcm.channels.truncate(channels);
            let whole_blocks = pcm.frames() / 4096 * 4096;
            for c in &mut pcm.channels {
                c.truncate(whole_blocks);
            }
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

    /// `pcm` quantised, interleaved.
    fn quantised(pcm: &Pcm, bits: u32) -> Vec<i32> {
        let mut out = Vec::new();
        interleave(pcm, bits, 0, pcm.frames(), &mut out);
        out
    }

    /// Whether the reference decoder (`flac -t`) finds `bytes` sound: every
    /// frame's CRCs, and the MD5 when STREAMINFO has one.
    fn flac_tests_clean(bytes: &[u8]) -> bool {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("t.flac");
        std::fs::write(&path, bytes).unwrap();
        let out = std::process::Command::new("flac")
            .args(["-t", "-s"])
            .arg(&path)
            .output()
            .expect("apt-get install flac");
        if !out.status.success() {
            eprintln!("{}", String::from_utf8_lossy(&out.stderr));
        }
        out.status.success()
    }

    #[test]
    fn a_short_last_block_is_written_as_it_is() {
        for (rest, channels, bits) in [
            (1usize, 1usize, 16u32),
            (15, 2, 16),
            (63, 2, 24),
            (64, 1, 24),
            (1000, 2, 16),
            (4095, 3, 16),
        ] {
            let frames = 4096 * 2 + rest;
            let pcm = Pcm {
                sample_rate: 44_100,
                bits_per_sample: Some(bits),
                channels: (0..channels)
                    .map(|c| {
                        (0..frames)
                            .map(|i| ((i * (c + 2)) as f32 * 0.013).sin() * 0.6)
                            .collect()
                    })
                    .collect(),
            };
            let case = format!("{rest} frames over, {channels} ch, {bits} bits");
            let want = quantised(&pcm, bits);
            let full = (1i64 << (bits - 1)) as f32;
            // Written seeking back (STREAMINFO last) and in order (first).
            let seeking = encode_flac(&pcm, FlacEffort::Fast).unwrap();
            let chunk: Vec<&[f32]> = pcm.channels.iter().map(Vec::as_slice).collect();
            let mut ordered = Cursor::new(Vec::new());
            let mut w = PcmWriter::flac_in_order(
                &mut ordered,
                FlacEffort::Fast,
                44_100,
                channels,
                Some(bits),
                None,
                Some(frames as u64),
            )
            .unwrap();
            w.write(&chunk).unwrap();
            w.finish().unwrap();
            let ordered = ordered.into_inner();
            for (name, bytes) in [("seeking", &seeking), ("in order", &ordered)] {
                // Every sample back, and no more.
                let back = crate::decode_bytes(bytes.clone(), Some("flac")).unwrap();
                assert_eq!(back.frames(), frames, "{case}, {name}");
                let got: Vec<i32> = (0..frames)
                    .flat_map(|i| {
                        back.channels
                            .iter()
                            .map(move |c| (c[i] * full).round() as i32)
                    })
                    .collect();
                assert!(got == want, "{case}, {name}: other samples");
                assert!(flac_tests_clean(bytes), "{case}, {name}: flac -t");
            }
            // The MD5 is of the samples.
            let md5: [u8; 16] = <md5::Md5 as md5::Digest>::digest(
                want.iter()
                    .flat_map(|s| s.to_le_bytes()[..bits.div_ceil(8) as usize].to_vec())
                    .collect::<Vec<u8>>(),
            )
            .into();
            assert_eq!(seeking[26..42], md5, "{case}");
            // The whole blocks are flacenc's frames, as before.
            let tail = verbatim_frame(&want[4096 * 2 * channels..], channels, bits, 2).len();
            assert_eq!(
                seeking[FLAC_HEAD..seeking.len() - tail],
                ordered[FLAC_HEAD..ordered.len() - tail],
                "{case}"
            );
        }
    }

    #[test]
    fn a_flac_pair_splices_frame_by_frame_into_a_clean_stream() {
        const BLOCK: usize = 4096;
        for rest in [0usize, 200, 1500] {
            let frames = BLOCK * 6 + rest;
            let tone = |i: usize, c: usize| ((i * (c + 3)) as f32 * 0.011).sin() * 0.5;
            let a = Pcm {
                sample_rate: 44_100,
                bits_per_sample: Some(16),
                channels: (0..2)
                    .map(|c| (0..frames).map(|i| tone(i, c)).collect())
                    .collect(),
            };
            // B differs inside every block, and the two agree at block starts.
            let mut b = a.clone();
            for ch in &mut b.channels {
                for (i, s) in ch.iter_mut().enumerate() {
                    if i % BLOCK >= 300 {
                        *s = -*s * 0.9;
                    }
                }
            }
            let pair = encode_flac_pair(&a, &b, BLOCK).unwrap();
            assert_eq!(pair.a_frames.len(), frames.div_ceil(BLOCK));
            assert_eq!(pair.a[..pair.header], pair.b[..pair.header]);
            assert_eq!(pair.a[26..42], [0; 16], "no MD5 is claimed");
            let total = |v: &[u8], sizes: &[u32]| {
                pair.header + sizes.iter().map(|&s| s as usize).sum::<usize>() == v.len()
            };
            assert!(total(&pair.a, &pair.a_frames) && total(&pair.b, &pair.b_frames));
            // Frames alternately from A and B.
            let mut copy = pair.a[..pair.header].to_vec();
            let (mut at_a, mut at_b) = (pair.header, pair.header);
            let mut want = Pcm {
                channels: vec![Vec::new(); 2],
                ..a.clone()
            };
            for f in 0..pair.a_frames.len() {
                let (sa, sb) = (pair.a_frames[f] as usize, pair.b_frames[f] as usize);
                let (from, range) = if f % 2 == 1 {
                    (&b, &pair.b[at_b..at_b + sb])
                } else {
                    (&a, &pair.a[at_a..at_a + sa])
                };
                copy.extend_from_slice(range);
                let end = (f * BLOCK + BLOCK).min(frames);
                for (w, c) in want.channels.iter_mut().zip(&from.channels) {
                    w.extend_from_slice(&c[f * BLOCK..end]);
                }
                at_a += sa;
                at_b += sb;
            }
            assert!(flac_tests_clean(&copy), "{rest} over: flac -t");
            let back = crate::decode_bytes(copy, Some("flac")).unwrap();
            assert_eq!(back.frames(), frames);
            let got: Vec<i32> = (0..frames)
                .flat_map(|i| {
                    back.channels
                        .iter()
                        .map(move |c| (c[i] * 32768.0).round() as i32)
                })
                .collect();
            assert!(
                got == quantised(&want, 16),
                "{rest} over: the spliced samples"
            );
        }
        let short = Pcm {
            channels: vec![vec![0.0; 10]; 2],
            sample_rate: 44_100,
            bits_per_sample: Some(16),
        };
        let mono = Pcm {
            channels: vec![vec![0.0; 10]],
            ..short.clone()
        };
        assert!(encode_flac_pair(&short, &mono, BLOCK).is_err());
    }

    #[test]
    fn frame_numbers_are_coded_as_flac_codes_them() {
        for (v, want) in [
            (0u64, vec![0x00]),
            (0x7F, vec![0x7F]),
            (0x80, vec![0xC2, 0x80]),
            (0x7FF, vec![0xDF, 0xBF]),
            (0x800, vec![0xE0, 0xA0, 0x80]),
            (0xFFFF, vec![0xEF, 0xBF, 0xBF]),
            (0x10000, vec![0xF0, 0x90, 0x80, 0x80]),
            (0x7FFF_FFFF, vec![0xFD, 0xBF, 0xBF, 0xBF, 0xBF, 0xBF]),
            (
                0xF_FFFF_FFFF,
                vec![0xFE, 0xBF, 0xBF, 0xBF, 0xBF, 0xBF, 0xBF],
            ),
        ] {
            assert_eq!(coded_number(v), want, "{v:#x}");
        }
    }
}
