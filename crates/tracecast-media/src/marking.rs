//! Marking and reading whole files of any kind the mark engine knows
//! (audio, pictures, video): the kind is judged by the file's first bytes,
//! never by its name, and each kind goes to its own engine. `tracecast
//! mark embed|detect` is this module with a progress bar.

use std::io::Read;
use std::path::Path;

use tracecast_mark::{audio, image as picture_mark, MarkKey, Payload};

use crate::{MediaError, PictureMarkError};

/// What kind of media a file holds, judged by its first bytes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FileKind {
    Audio,
    Picture,
    Video,
}

/// The longest audio the engine marks or reads whole: 3 hours of 48 kHz
/// stereo (the same number of samples at other rates and channel counts,
/// about 4 GB decoded), refused beyond with its length.
pub const LONGEST_MARKED_AUDIO_MINUTES: f64 = 180.0;

impl FileKind {
    /// The kind of a file whose first bytes are `head` (192 bytes are
    /// enough for every signature here); anything else is audio, which the
    /// decoder then accepts or refuses.
    pub fn of_head(head: &[u8]) -> Self {
        if crate::is_picture(head) {
            FileKind::Picture
        } else if crate::video::is_video(head) {
            FileKind::Video
        } else {
            FileKind::Audio
        }
    }

    /// The kind of the file at `path`.
    pub fn of_file(path: &Path) -> Result<Self, MediaError> {
        let open = |source| MediaError::Open {
            path: path.to_owned(),
            source,
        };
        let mut head = Vec::with_capacity(192);
        std::fs::File::open(path)
            .map_err(open)?
            .take(192)
            .read_to_end(&mut head)
            .map_err(open)?;
        Ok(Self::of_head(&head))
    }
}

/// Which part of a long operation is under way, for a progress display.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Stage {
    Marking,
    MarkingFrames,
    ReadingFrames,
    Searching,
}

impl Stage {
    pub fn as_str(self) -> &'static str {
        match self {
            Stage::Marking => "marking",
            Stage::MarkingFrames => "marking frames",
            Stage::ReadingFrames => "reading frames",
            Stage::Searching => "searching",
        }
    }
}

/// Progress of [`mark_file`] and [`detect_file`]: stage, units done, total
/// units (0 while unknown).
pub type StageProgress<'a> = &'a mut dyn FnMut(Stage, u64, u64);

/// How to mark a file.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct MarkOptions {
    /// Mark strength relative to the default.
    pub strength: f32,
    /// Quality of JPEG output (1-100).
    pub jpeg_quality: u8,
}

impl Default for MarkOptions {
    fn default() -> Self {
        MarkOptions {
            strength: 1.0,
            jpeg_quality: crate::DEFAULT_JPEG_QUALITY,
        }
    }
}

/// What marking a file did.
#[derive(Debug, Clone, PartialEq)]
pub enum Marked {
    Audio {
        seconds: f64,
        blocks: usize,
        snr_db: f64,
    },
    Picture {
        width: u32,
        height: u32,
        psnr_db: f64,
    },
    Video {
        width: usize,
        height: usize,
        frames: u64,
        psnr_db: f64,
    },
}

/// Why a file could not be marked or read.
#[derive(Debug, thiserror::Error)]
pub enum FileMarkError {
    #[error(transparent)]
    Media(#[from] MediaError),
    #[error(transparent)]
    Picture(#[from] PictureMarkError),
    #[error(transparent)]
    Mark(#[from] audio::MarkError),
    #[error("a marked video is written as .mp4 (H.264 and AAC)")]
    VideoOutput,
    #[error("a marked picture is written as .png, .jpg or .jpeg")]
    PictureOutput,
    #[error("the file holds no audio")]
    NoAudio,
}

/// Marks `input` with `payload` under `key` and writes the marked copy to
/// `output` (audio as .wav or .flac, a picture as .png or .jpg, a video as
/// .mp4). An output name the kind cannot take is refused before any work.
pub fn mark_file(
    input: &Path,
    output: &Path,
    key: &MarkKey,
    payload: &Payload,
    options: &MarkOptions,
    progress: StageProgress,
) -> Result<Marked, FileMarkError> {
    match FileKind::of_file(input)? {
        FileKind::Picture => {
            let format = crate::PictureFormat::from_path(output, options.jpeg_quality)
                .map_err(|_| FileMarkError::PictureOutput)?;
            let mut img = crate::read_picture(input)?;
            let psnr_db = crate::mark_picture(
                &mut img,
                key,
                payload,
                &picture_mark::EmbedConfig::default().scaled(options.strength),
                &mut |done, total| progress(Stage::Marking, done, total),
            )?;
            crate::write_picture(&img, output, format)?;
            Ok(Marked::Picture {
                width: img.width(),
                height: img.height(),
                psnr_db,
            })
        }
        FileKind::Video => {
            if crate::extension(output) != "mp4" {
                return Err(FileMarkError::VideoOutput);
            }
            let r = crate::video::mark_video(
                input,
                output,
                key,
                payload,
                &picture_mark::EmbedConfig::default().scaled(options.strength),
                &Default::default(),
                &mut |done, total| progress(Stage::MarkingFrames, done, total),
            )?;
            Ok(Marked::Video {
                width: r.width,
                height: r.height,
                frames: r.frames,
                psnr_db: r.psnr_db,
            })
        }
        FileKind::Audio => {
            let format = crate::OutputFormat::from_path(output)?;
            let config = audio::EmbedConfig::default().scaled(options.strength);
            mark_audio_file(input, output, format, key, payload, &config, progress)
        }
    }
}

/// A copy of in-memory audio, marked and encoded as FLAC.
#[derive(Debug, Clone, PartialEq)]
pub struct MarkedFlac {
    pub bytes: Vec<u8>,
    pub report: audio::EmbedReport,
    /// Time spent marking and encoding, ms.
    pub mark_ms: u64,
    pub encode_ms: u64,
}

/// Marks `pcm` and encodes the copy as FLAC in one pass: the marked
/// samples go from the streaming embedder to the encoder a few blocks at a
/// time, so a copy costs its FLAC bytes and a few blocks, never a second
/// copy of the decoded audio. The bytes are those of marking `pcm` whole
/// and encoding it with [`crate::encode_flac`].
pub fn mark_to_flac(
    pcm: &crate::Pcm,
    key: &MarkKey,
    payload: &Payload,
    config: &audio::EmbedConfig,
    effort: crate::FlacEffort,
) -> Result<MarkedFlac, FileMarkError> {
    use std::time::{Duration, Instant};
    let channels = pcm.channels.len();
    let mut embedder = audio::StreamEmbedder::new(channels, pcm.sample_rate, key, payload, config)?;
    let mut out = std::io::Cursor::new(Vec::new());
    let mut writer = crate::PcmWriter::new(
        &mut out,
        crate::OutputFormat::Flac,
        effort,
        pcm.sample_rate,
        channels,
        pcm.bits_per_sample,
    )?;
    let mut failed = None;
    let mut encoding = Duration::ZERO;
    let mut sink = |marked: &[&[f32]]| {
        if failed.is_none() {
            let t = Instant::now();
            failed = writer.write(marked).err();
            encoding += t.elapsed();
        }
    };
    let started = Instant::now();
    const PIECE: usize = 1 << 16;
    let mut from = 0;
    let report = loop {
        if from >= pcm.frames() {
            break embedder.finish(&mut sink)?;
        }
        let to = (from + PIECE).min(pcm.frames());
        let piece: Vec<&[f32]> = pcm.channels.iter().map(|c| &c[from..to]).collect();
        embedder.push(&piece, &mut sink)?;
        from = to;
    };
    if let Some(e) = failed {
        return Err(FileMarkError::Media(e));
    }
    let t = Instant::now();
    writer.finish()?;
    encoding += t.elapsed();
    let total = started.elapsed();
    Ok(MarkedFlac {
        bytes: out.into_inner(),
        report,
        mark_ms: total.saturating_sub(encoding).as_millis() as u64,
        encode_ms: encoding.as_millis() as u64,
    })
}

/// Marks the audio `reader` gives, packet by packet, into a FLAC stream
/// on `out` that carries `rights` in its metadata: memory is a few of the
/// mark's blocks and the encoder's run of blocks, whatever the length (an
/// edge marks a rendition of hours from its cache file this way). The
/// stream holds the samples [`mark_to_flac`] gives for the same audio
/// decoded whole.
pub fn mark_reader_to_flac<W: std::io::Write + std::io::Seek>(
    mut reader: crate::AudioReader,
    out: W,
    key: &MarkKey,
    payload: &Payload,
    config: &audio::EmbedConfig,
    effort: crate::FlacEffort,
    rights: Option<&crate::Rights>,
) -> Result<MarkedFlacStream, FileMarkError> {
    use std::time::{Duration, Instant};
    let (rate, channels) = (reader.sample_rate(), reader.channels());
    let mut embedder = audio::StreamEmbedder::new(channels, rate, key, payload, config)?;
    // Written in order (STREAMINFO first, no MD5): the copy can be served
    // as it grows, and its bytes do not depend on how it was served.
    let mut writer = crate::PcmWriter::flac_in_order(
        out,
        effort,
        rate,
        channels,
        reader.bits_per_sample(),
        rights,
        reader.total_frames(),
    )?;
    let mut failed = None;
    let mut encoding = Duration::ZERO;
    let mut sink = |marked: &[&[f32]]| {
        if failed.is_none() {
            let t = Instant::now();
            failed = writer.write(marked).err();
            encoding += t.elapsed();
        }
    };
    let started = Instant::now();
    while let Some(chunk) = reader.next_chunk()? {
        embedder.push(&chunk, &mut sink)?;
    }
    let report = embedder.finish(&mut sink)?;
    if let Some(e) = failed {
        return Err(FileMarkError::Media(e));
    }
    let t = Instant::now();
    writer.finish()?;
    encoding += t.elapsed();
    let total = started.elapsed();
    Ok(MarkedFlacStream {
        report,
        frames: reader.frames_read(),
        mark_ms: total.saturating_sub(encoding).as_millis() as u64,
        encode_ms: encoding.as_millis() as u64,
    })
}

/// What [`mark_reader_to_flac`] did.
#[derive(Debug, Clone, PartialEq)]
pub struct MarkedFlacStream {
    pub report: audio::EmbedReport,
    /// Samples per channel written.
    pub frames: u64,
    /// Time spent decoding and marking, and encoding, ms.
    pub mark_ms: u64,
    pub encode_ms: u64,
}

/// Marks an audio file as it is read: decoding, marking and writing go
/// packet by packet, so memory stays a few of the mark's blocks whatever
/// the file's length (the output is written beside `output` and renamed
/// when whole).
fn mark_audio_file(
    input: &Path,
    output: &Path,
    format: crate::OutputFormat,
    key: &MarkKey,
    payload: &Payload,
    config: &audio::EmbedConfig,
    progress: StageProgress,
) -> Result<Marked, FileMarkError> {
    let mut reader = crate::AudioReader::open_file(
        input,
        Some(crate::Budget::minutes(
            LONGEST_MARKED_AUDIO_MINUTES,
            crate::Beyond::Refuse,
        )),
    )?;
    let (rate, channels) = (reader.sample_rate(), reader.channels());
    let mut embedder = audio::StreamEmbedder::new(channels, rate, key, payload, config)?;
    let total = reader.total_frames().unwrap_or(0);
    let report = crate::encode::write_atomic_with(output, |file| {
        let mut writer = crate::PcmWriter::new(
            file,
            format,
            crate::FlacEffort::Best,
            rate,
            channels,
            reader.bits_per_sample(),
        )?;
        let mut failed = None;
        let mut sink = |marked: &[&[f32]]| {
            if failed.is_none() {
                failed = writer.write(marked).err();
            }
        };
        while let Some(chunk) = reader.next_chunk()? {
            embedder.push(&chunk, &mut sink)?;
            progress(Stage::Marking, reader.frames_read(), total);
        }
        let report = embedder.finish(&mut sink)?;
        if let Some(e) = failed {
            return Err(FileMarkError::Media(e));
        }
        writer.finish()?;
        Ok::<_, FileMarkError>(report)
    })?;
    Ok(Marked::Audio {
        seconds: reader.frames_read() as f64 / f64::from(rate),
        blocks: report.blocks,
        snr_db: report.snr_db,
    })
}

/// What any kind's detector found.
#[derive(Debug, Clone, PartialEq)]
pub struct FileDetection {
    pub kind: FileKind,
    /// The ids, when a mark was found and its tag verified.
    pub payload: Option<Payload>,
    pub tag_ok: bool,
    /// 0 (chance) ..1 (every coded bit agrees).
    pub confidence: f32,
    /// Sync correlation of the best candidate, in standard deviations.
    pub sync_z: f32,
    /// The kind's own measures, for people (speed and tempo, scale and
    /// rotation, frames read).
    pub details: String,
}

impl FileDetection {
    /// A picture's or a video's reading (both are the image mark's).
    fn of_image(kind: FileKind, d: &picture_mark::Detection, details: String) -> Self {
        FileDetection {
            kind,
            payload: d.payload,
            tag_ok: d.tag_ok,
            confidence: d.confidence,
            sync_z: d.sync_z,
            details,
        }
    }
}

/// Looks for a mark under `key` in the file at `path`, of any kind.
pub fn detect_file(
    path: &Path,
    key: &MarkKey,
    progress: StageProgress,
) -> Result<FileDetection, FileMarkError> {
    let kind = FileKind::of_file(path)?;
    match kind {
        FileKind::Picture => {
            let img = crate::read_picture(path)?;
            let d = crate::detect_picture(&img, key)?;
            let details = format!(
                "sync {:.1} sd, scale {:.3}, rotation {:.1} deg{}",
                d.sync_z,
                d.scale,
                d.rotation_deg,
                if d.mirrored { ", mirrored" } else { "" }
            );
            Ok(FileDetection::of_image(kind, &d, details))
        }
        FileKind::Video => {
            let v = crate::video::detect_video(path, key, &mut |done, total| {
                progress(Stage::ReadingFrames, done, total)
            })?;
            let d = &v.detection;
            let details = format!(
                "{}x{}, {} frames read, sync {:.1} sd, scale {:.3}",
                v.info.width, v.info.height, v.frames, d.sync_z, d.scale
            );
            Ok(FileDetection::of_image(kind, d, details))
        }
        FileKind::Audio => {
            let (d, truncated) = detect_audio_file(path, key, progress)?;
            Ok(FileDetection {
                kind,
                payload: d.payload,
                tag_ok: d.tag_ok,
                confidence: d.confidence,
                sync_z: d.sync_z,
                details: format!(
                    "sync {:.1} sd, speed {:.3}, tempo {:.3}, pitch {:.3}{}",
                    d.sync_z,
                    d.speed,
                    d.tempo,
                    d.pitch,
                    if truncated {
                        format!(", the first {LONGEST_MARKED_AUDIO_MINUTES} minutes read")
                    } else {
                        String::new()
                    }
                ),
            })
        }
    }
}

/// Reads the mark of an audio file as it is decoded, one pass of
/// [`audio::DetectPass::ALL`] after another until one finds a mark: memory
/// stays the same whatever the file's length. Of a longer file the first
/// [`LONGEST_MARKED_AUDIO_MINUTES`] are read (the mark repeats
/// throughout); the flag says so.
fn detect_audio_file(
    path: &Path,
    key: &MarkKey,
    progress: StageProgress,
) -> Result<(audio::Detection, bool), FileMarkError> {
    let passes = audio::DetectPass::ALL;
    let mut last = None;
    for (i, pass) in passes.into_iter().enumerate() {
        let mut reader = crate::AudioReader::open_file(
            path,
            Some(crate::Budget::minutes(
                LONGEST_MARKED_AUDIO_MINUTES,
                crate::Beyond::Truncate,
            )),
        )?;
        let total = reader.total_frames().unwrap_or(0);
        let all = total * passes.len() as u64;
        let mut detector =
            audio::StreamDetector::new(reader.channels(), reader.sample_rate(), key, pass)?;
        while let Some(chunk) = reader.next_chunk()? {
            detector.push(&chunk)?;
            progress(
                Stage::Searching,
                i as u64 * total + reader.frames_read(),
                all,
            );
        }
        if reader.frames_read() == 0 {
            return Err(FileMarkError::NoAudio);
        }
        let d = detector.finish()?;
        let found = d.tag_ok;
        last = Some((d, reader.truncated()));
        if found {
            progress(Stage::Searching, all, all);
            break;
        }
    }
    Ok(last.expect("at least one pass is made"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_kind_is_read_from_the_first_bytes() {
        let mut ts = vec![0u8; 192];
        ts[0] = 0x47;
        ts[188] = 0x47;
        let cases: &[(&str, &[u8], FileKind)] = &[
            ("png", b"\x89PNG\r\n\x1a\n....", FileKind::Picture),
            ("jpeg", b"\xff\xd8\xff\xe0..JFIF", FileKind::Picture),
            ("mp4", b"\0\0\0\x20ftypisom\0\0\0\0", FileKind::Video),
            (
                "m4a is audio",
                b"\0\0\0\x20ftypM4A \0\0\0\0",
                FileKind::Audio,
            ),
            ("matroska", b"\x1a\x45\xdf\xa3\x01\0\0\0", FileKind::Video),
            ("mpeg-ts", &ts, FileKind::Video),
            ("wav", b"RIFF\x24\0\0\0WAVEfmt ", FileKind::Audio),
            ("flac", b"fLaC\0\0\0\x22", FileKind::Audio),
            ("empty", b"", FileKind::Audio),
        ];
        for (name, head, want) in cases {
            assert_eq!(FileKind::of_head(head), *want, "{name}");
        }
    }

    #[test]
    fn a_picture_is_marked_and_read_back_whatever_its_name() {
        let dir = tempfile::tempdir().unwrap();
        let plain = image::RgbImage::from_fn(512, 384, |x, y| {
            image::Rgb([(x / 2) as u8, (y / 2) as u8, ((x + y) / 4) as u8])
        });
        // A PNG under a misleading name: the first bytes decide.
        let input = dir.path().join("original.wav");
        image::DynamicImage::ImageRgb8(plain)
            .save_with_format(&input, image::ImageFormat::Png)
            .unwrap();
        let key = MarkKey::from_bytes([7; tracecast_mark::KEY_LEN]);
        let payload = Payload {
            content_server: 3,
            edge: 4,
            home: 0,
            user: 56_789,
        };
        let opts = MarkOptions::default();
        let wrong = dir.path().join("marked.mp4");
        assert!(matches!(
            mark_file(&input, &wrong, &key, &payload, &opts, &mut |_, _, _| {}),
            Err(FileMarkError::PictureOutput)
        ));
        assert!(!wrong.exists());
        let out = dir.path().join("marked.png");
        let m = mark_file(&input, &out, &key, &payload, &opts, &mut |_, _, _| {}).unwrap();
        assert!(
            matches!(m, Marked::Picture { width: 512, height: 384, psnr_db } if psnr_db > 30.0)
        );
        let d = detect_file(&out, &key, &mut |_, _, _| {}).unwrap();
        assert_eq!((d.kind, d.payload), (FileKind::Picture, Some(payload)));
        let other = MarkKey::from_bytes([8; tracecast_mark::KEY_LEN]);
        assert_eq!(
            detect_file(&out, &other, &mut |_, _, _| {})
                .unwrap()
                .payload,
            None
        );
    }
}
