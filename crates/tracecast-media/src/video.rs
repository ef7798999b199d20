//! Video: probing, marking and reading the mark. Debian's ffmpeg does the
//! decoding, encoding (H.264/AAC in MP4) and packaging; frames pass
//! through this process as raw YUV 4:2:0, and only their luma is changed
//! (see `tracecast_mark::video`).

use std::io::{Read, Write};
use std::path::Path;
use std::process::{Child, Command, Stdio};

use tracecast_mark::image::{self, EmbedConfig, Embedder, Plane};
use tracecast_mark::video::Accumulator;
use tracecast_mark::{MarkKey, Payload};

use crate::MediaError;

/// What ffprobe says of a video.
#[derive(Debug, Clone, PartialEq)]
pub struct VideoInfo {
    pub width: usize,
    pub height: usize,
    /// Frames per second (the stream's average rate).
    pub fps: f64,
    /// Seconds.
    pub duration: f64,
    pub has_audio: bool,
    pub video_codec: String,
}

impl VideoInfo {
    /// Frames, about.
    pub fn frames(&self) -> u64 {
        (self.duration * self.fps).round().max(1.0) as u64
    }
}

/// How the marked video is encoded.
#[derive(Debug, Clone, PartialEq)]
pub struct VideoEncode {
    /// x264 constant rate factor (lower is better; 18 is visually lossless).
    pub crf: u32,
    /// x264 preset.
    pub preset: String,
    /// A key frame exactly every this many seconds and nowhere else, so
    /// segments cut there line up between encodes (A/B variants).
    pub gop_secs: Option<f64>,
}

impl Default for VideoEncode {
    fn default() -> Self {
        Self {
            crf: 18,
            preset: "veryfast".into(),
            gop_secs: None,
        }
    }
}

/// Whether ffmpeg and ffprobe are on the PATH.
pub fn ffmpeg_available() -> bool {
    ["ffmpeg", "ffprobe"].iter().all(|t| {
        Command::new(t)
            .arg("-version")
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .status()
            .is_ok_and(|s| s.success())
    })
}

fn tool_error(tool: &str, e: std::io::Error) -> MediaError {
    MediaError::Encode(format!("cannot run {tool}: {e} (apt-get install ffmpeg)"))
}

/// Reads a video's size, rate, duration and tracks with ffprobe.
pub fn probe(path: &Path) -> Result<VideoInfo, MediaError> {
    let out = Command::new("ffprobe")
        .args([
            "-v",
            "error",
            "-show_entries",
            "stream=codec_type,codec_name,width,height,avg_frame_rate:format=duration",
            "-of",
            "default=noprint_wrappers=1",
        ])
        .arg(path)
        .output()
        .map_err(|e| tool_error("ffprobe", e))?;
    if !out.status.success() {
        return Err(MediaError::Malformed(format!(
            "ffprobe cannot read {}: {}",
            path.display(),
            String::from_utf8_lossy(&out.stderr).trim()
        )));
    }
    parse_probe(&String::from_utf8_lossy(&out.stdout))
}

/// Parses ffprobe's `key=value` lines (streams in order, then the format).
pub fn parse_probe(text: &str) -> Result<VideoInfo, MediaError> {
    let mut info = VideoInfo {
        width: 0,
        height: 0,
        fps: 0.0,
        duration: 0.0,
        has_audio: false,
        video_codec: String::new(),
    };
    let mut kind = "";
    let mut seen_video = false;
    let mut codec = String::new();
    for line in text.lines() {
        let Some((k, v)) = line.split_once('=') else {
            continue;
        };
        match k {
            "codec_name" => codec = v.to_owned(),
            "codec_type" => {
                kind = if v == "video" { "video" } else { "other" };
                if v == "audio" {
                    info.has_audio = true;
                }
                if v == "video" && !seen_video {
                    info.video_codec = codec.clone();
                }
            }
            "width" if kind == "video" && !seen_video => info.width = v.parse().unwrap_or(0),
            "height" if kind == "video" && !seen_video => info.height = v.parse().unwrap_or(0),
            "avg_frame_rate" if kind == "video" && !seen_video => {
                info.fps = match v.split_once('/') {
                    Some((a, b)) => {
                        let (a, b): (f64, f64) =
                            (a.parse().unwrap_or(0.0), b.parse().unwrap_or(0.0));
                        if b > 0.0 {
                            a / b
                        } else {
                            0.0
                        }
                    }
                    None => v.parse().unwrap_or(0.0),
                };
                seen_video = true;
            }
            "duration" => {
                if let Ok(d) = v.parse::<f64>() {
                    info.duration = d;
                }
            }
            _ => {}
        }
    }
    if info.width == 0 || info.height == 0 {
        return Err(MediaError::Malformed("no video stream".into()));
    }
    if !(info.fps > 0.0 && info.fps <= 1000.0) {
        return Err(MediaError::Malformed(format!(
            "the video's frame rate is not usable ({})",
            info.fps
        )));
    }
    if info.duration.is_nan() || info.duration <= 0.0 {
        return Err(MediaError::Malformed("the video has no duration".into()));
    }
    Ok(info)
}

/// A child process whose stderr is collected on a thread, so it never
/// blocks on a full pipe.
struct Tool {
    child: Child,
    name: &'static str,
    stderr: Option<std::thread::JoinHandle<String>>,
}

impl Tool {
    fn spawn(name: &'static str, cmd: &mut Command) -> Result<Self, MediaError> {
        let mut child = cmd
            .stderr(Stdio::piped())
            .spawn()
            .map_err(|e| tool_error(name, e))?;
        let mut err = child.stderr.take().expect("piped");
        let stderr = std::thread::spawn(move || {
            let mut s = String::new();
            let _ = err.read_to_string(&mut s);
            s
        });
        Ok(Self {
            child,
            name,
            stderr: Some(stderr),
        })
    }

    fn finish(mut self) -> Result<(), MediaError> {
        let status = self.child.wait().map_err(|e| tool_error(self.name, e))?;
        let err = self
            .stderr
            .take()
            .and_then(|h| h.join().ok())
            .unwrap_or_default();
        if status.success() {
            Ok(())
        } else {
            Err(MediaError::Encode(format!(
                "{} failed: {}",
                self.name,
                err.trim().lines().last().unwrap_or("no message")
            )))
        }
    }
}

impl Drop for Tool {
    fn drop(&mut self) {
        if let Ok(None) = self.child.try_wait() {
            let _ = self.child.kill();
            let _ = self.child.wait();
        }
    }
}

/// Starts ffmpeg decoding `input`'s first video stream to raw frames of
/// `pix_fmt` on its stdout, through the filter `vf`.
fn decoder(input: &Path, vf: &str, pix_fmt: &str) -> Result<Tool, MediaError> {
    Tool::spawn(
        "ffmpeg (decoding)",
        Command::new("ffmpeg")
            .args(["-v", "error", "-nostdin", "-i"])
            .arg(input)
            .args(["-map", "0:v:0", "-vf", vf, "-fps_mode", "passthrough"])
            .args(["-f", "rawvideo", "-pix_fmt", pix_fmt, "-"])
            .stdin(Stdio::null())
            .stdout(Stdio::piped()),
    )
}

/// Reads exactly `buf.len()` bytes; `false` at a clean end of stream.
fn read_frame(r: &mut impl Read, buf: &mut [u8]) -> Result<bool, MediaError> {
    let mut got = 0;
    while got < buf.len() {
        match r.read(&mut buf[got..]) {
            Ok(0) if got == 0 => return Ok(false),
            Ok(0) => return Err(MediaError::Malformed("a frame was cut short".into())),
            Ok(n) => got += n,
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
            Err(e) => return Err(MediaError::Malformed(format!("reading frames: {e}"))),
        }
    }
    Ok(true)
}

/// What marking a video did.
#[derive(Debug, Clone, PartialEq)]
pub struct VideoMarkReport {
    pub frames: u64,
    pub width: usize,
    pub height: usize,
    /// Mean PSNR of the marked luma against the decoded original, dB.
    pub psnr_db: f64,
}

/// Marks every frame of `input` with `payload` and encodes the result to
/// `output` (MP4: H.264, AAC audio re-encoded from the source's).
/// `progress(frames done, frames expected)`.
pub fn mark_video(
    input: &Path,
    output: &Path,
    key: &MarkKey,
    payload: &Payload,
    config: &EmbedConfig,
    encode: &VideoEncode,
    progress: &mut dyn FnMut(u64, u64),
) -> Result<VideoMarkReport, MediaError> {
    transform_video(input, output, encode, progress, &mut |_, y, w, h| {
        mark_luma(y, w, h, key, payload, config)
    })
}

/// Adds the image mark for `payload` to a luma plane; returns the squared
/// error added.
pub fn mark_luma(
    y: &mut [u8],
    w: usize,
    h: usize,
    key: &MarkKey,
    payload: &Payload,
    config: &EmbedConfig,
) -> Result<f64, MediaError> {
    let bad = |e: image::ImageMarkError| MediaError::Malformed(e.to_string());
    let mut emb = Embedder::new(w, h, key, payload, config).map_err(bad)?;
    let mut row = vec![0f32; w];
    for r in 0..h {
        for (d, s) in row.iter_mut().zip(&y[r * w..(r + 1) * w]) {
            *d = f32::from(*s);
        }
        emb.observe_row(r, &row).map_err(bad)?;
    }
    let mut err = 0f64;
    for r in 0..h {
        emb.delta_row(r, &mut row).map_err(bad)?;
        for (p, d) in y[r * w..(r + 1) * w].iter_mut().zip(&row) {
            let v = (f32::from(*p) + d).round().clamp(0.0, 255.0);
            let e = f64::from(v) - f64::from(*p);
            err += e * e;
            *p = v as u8;
        }
    }
    Ok(err)
}

/// What [`transform_video`] does to a frame: `(frame index, luma, width,
/// height)` in, the squared error it added out.
pub type FrameChange<'a> = dyn FnMut(u64, &mut [u8], usize, usize) -> Result<f64, MediaError> + 'a;

/// Decodes `input`, lets `change(frame index, luma, width, height)` alter
/// each frame's luma (returning the squared error it added), and encodes
/// to `output`.
pub fn transform_video(
    input: &Path,
    output: &Path,
    encode: &VideoEncode,
    progress: &mut dyn FnMut(u64, u64),
    change: &mut FrameChange,
) -> Result<VideoMarkReport, MediaError> {
    transform_to(input, &Output::Mp4(output), encode, progress, change)
}

/// Where a transformed video goes.
pub enum Output<'a> {
    /// One MP4 file (H.264, AAC), ready to play from the start.
    Mp4(&'a Path),
    /// HLS with fMP4 segments of `segment_secs` in `dir`: `index.m3u8`,
    /// `init.mp4`, `seg_00000.m4s`, ... (key frames only at segment
    /// starts, so segments of two encodes can be interchanged).
    Hls { dir: &'a Path, segment_secs: u32 },
}

fn transform_to(
    input: &Path,
    output: &Output,
    encode: &VideoEncode,
    progress: &mut dyn FnMut(u64, u64),
    change: &mut FrameChange,
) -> Result<VideoMarkReport, MediaError> {
    let (output, segment_secs): (&Path, Option<u32>) = match output {
        Output::Mp4(p) => (p, None),
        Output::Hls { dir, segment_secs } => (dir, Some(*segment_secs)),
    };
    let encode = &VideoEncode {
        gop_secs: segment_secs.map(f64::from).or(encode.gop_secs),
        ..encode.clone()
    };
    let info = probe(input)?;
    // 4:2:0 needs even sizes.
    let (w, h) = (info.width & !1, info.height & !1);
    image::Reducer::new(w, h).map_err(|e| MediaError::Malformed(e.to_string()))?;
    let mut dec = decoder(input, &format!("crop={w}:{h}:0:0"), "yuv420p")?;
    let mut cmd = Command::new("ffmpeg");
    cmd.args([
        "-v", "error", "-nostdin", "-y", "-f", "rawvideo", "-pix_fmt", "yuv420p",
    ])
    .args([
        "-s",
        &format!("{w}x{h}"),
        "-r",
        &format!("{}", info.fps),
        "-i",
        "-",
    ])
    .arg("-i")
    .arg(input)
    .args([
        "-map", "0:v:0", "-map", "1:a:0?", "-c:v", "libx264", "-pix_fmt", "yuv420p",
    ])
    .args(["-preset", &encode.preset, "-crf", &encode.crf.to_string()]);
    if let Some(g) = encode.gop_secs {
        let frames = (g * info.fps).round().max(1.0) as u64;
        cmd.args([
            "-g",
            &frames.to_string(),
            "-keyint_min",
            &frames.to_string(),
        ])
        .args(["-sc_threshold", "0"])
        .args(["-force_key_frames", &format!("expr:eq(mod(n,{frames}),0)")]);
    }
    cmd.args(["-c:a", "aac", "-b:a", "160k"]);
    match segment_secs {
        None => {
            cmd.args(["-movflags", "+faststart"]).arg(output);
        }
        Some(secs) => {
            std::fs::create_dir_all(output).map_err(|e| MediaError::Write {
                path: output.to_owned(),
                source: e,
            })?;
            cmd.args(["-f", "hls", "-hls_time", &secs.to_string()])
                .args(["-hls_playlist_type", "vod", "-hls_segment_type", "fmp4"])
                .args([
                    "-hls_fmp4_init_filename",
                    "init.mp4",
                    "-hls_segment_filename",
                ])
                .arg(output.join("seg_%05d.m4s"))
                .arg(output.join("index.m3u8"));
        }
    }
    cmd.stdin(Stdio::piped()).stdout(Stdio::null());
    let mut enc = Tool::spawn("ffmpeg (encoding)", &mut cmd)?;
    let mut from = dec.child.stdout.take().expect("piped");
    let mut to = enc.child.stdin.take().expect("piped");
    let frame_len = w * h + 2 * (w / 2) * (h / 2);
    let mut buf = vec![0u8; frame_len];
    let total = info.frames();
    let (mut frames, mut err) = (0u64, 0f64);
    let result = (|| {
        while read_frame(&mut from, &mut buf)? {
            err += change(frames, &mut buf[..w * h], w, h)?;
            to.write_all(&buf).map_err(|e| MediaError::Write {
                path: output.to_owned(),
                source: e,
            })?;
            frames += 1;
            if frames.is_multiple_of(24) {
                progress(frames, total.max(frames));
            }
        }
        Ok(())
    })();
    drop(to);
    drop(from);
    let dec_done = dec.finish();
    let enc_done = enc.finish();
    result?;
    dec_done?;
    enc_done?;
    if frames == 0 {
        return Err(MediaError::Malformed("the video has no frames".into()));
    }
    progress(frames, frames);
    let mse = err / (frames as f64 * (w * h) as f64);
    Ok(VideoMarkReport {
        frames,
        width: w,
        height: h,
        psnr_db: if mse > 0.0 {
            10.0 * (255.0f64 * 255.0 / mse).log10()
        } else {
            f64::INFINITY
        },
    })
}

/// A video's A/B variants as HLS: two encodes whose segment `i` carries,
/// in every frame, the image mark of the payload naming segment `i` and
/// the variant (see [`segment_payload`]).
#[derive(Debug, Clone, PartialEq)]
pub struct AbHls {
    /// Segments in each variant.
    pub segments: usize,
    pub segment_secs: u32,
    /// Frames per segment.
    pub segment_frames: u64,
    pub report_a: VideoMarkReport,
    pub report_b: VideoMarkReport,
}

/// Marks the ids of an A/B segment payload (edge and home are never both
/// 0xFFFF in a delivered copy's payload).
const SEGMENT_MARKER: u16 = 0xFFFF;

/// The payload segment `segment` of variant `b` (false = A) carries, for
/// content `content`: it names the segment, and its tag keeps it
/// unforgeable. B's ids are A's with every bit flipped, so the two coded
/// payloads differ in about half their bits and a segment's variant is
/// told apart by a wide margin.
pub fn segment_payload(content: i64, segment: u32, b: bool) -> Payload {
    let content_server = (content & 0xFFFF) as u16;
    Payload {
        content_server: if b { !content_server } else { content_server },
        edge: SEGMENT_MARKER,
        home: SEGMENT_MARKER,
        user: if b { !segment } else { segment },
    }
}

/// What A/B variants of a video are made for.
#[derive(Debug, Clone)]
pub struct AbSpec {
    /// The content id the segment payloads name.
    pub content: i64,
    /// Segment length (rounded to whole frames).
    pub segment_secs: u32,
    /// Strength of the mark in each frame.
    pub config: EmbedConfig,
}

/// Makes the A and B variants of `input` as HLS in `dir/a` and `dir/b`.
/// A segment is `segment_secs` rounded to whole frames.
pub fn make_ab_hls(
    input: &Path,
    dir: &Path,
    key: &MarkKey,
    spec: &AbSpec,
    encode: &VideoEncode,
    progress: &mut dyn FnMut(u64, u64),
) -> Result<AbHls, MediaError> {
    let AbSpec {
        content,
        segment_secs,
        ref config,
    } = *spec;
    let info = probe(input)?;
    if segment_secs == 0 {
        return Err(MediaError::Parameters("segments of 0 seconds".into()));
    }
    // Segments are whole frames: at 29.97 fps, 2 s is 60 frames (2.002 s).
    let per = (info.fps * f64::from(segment_secs)).round().max(1.0) as u64;
    let total = info.frames();
    let mut reports = Vec::with_capacity(2);
    for (k, b) in [false, true].into_iter().enumerate() {
        let out = dir.join(if b { "b" } else { "a" });
        let report = transform_to(
            input,
            &Output::Hls {
                dir: &out,
                segment_secs,
            },
            encode,
            &mut |d, t| progress(k as u64 * t + d, 2 * t.max(total)),
            &mut |frame, y, w, h| {
                let segment = u32::try_from(frame / per).unwrap_or(u32::MAX);
                mark_luma(y, w, h, key, &segment_payload(content, segment, b), config)
            },
        )?;
        reports.push(report);
    }
    let report_b = reports.pop().expect("two");
    let report_a = reports.pop().expect("two");
    let segments = report_a.frames.div_ceil(per) as usize;
    for v in ["a", "b"] {
        let last = dir.join(v).join(format!("seg_{:05}.m4s", segments - 1));
        if !last.exists() || dir.join(v).join(format!("seg_{segments:05}.m4s")).exists() {
            return Err(MediaError::Encode(format!(
                "variant {v}'s segments do not fall every {segment_secs} s"
            )));
        }
    }
    Ok(AbHls {
        segments,
        segment_secs,
        segment_frames: per,
        report_a,
        report_b,
    })
}

/// Quarters of a segment: the grain at which a copy's segment boundaries
/// are found.
const CHUNKS_PER_SEGMENT: u64 = 4;

/// Segments' worth of a copy's start searched for where it lies in the
/// content.
const SEARCH_SEGMENTS: u64 = 3;

/// Reads, segment by segment, which variant each of the content's
/// `segments` segments holds in a copy. The copy may be an excerpt: its
/// first seconds are summed in quarter segments, and every alignment of a
/// whole segment's span is tried against every segment's two payloads
/// (they name their segment), which finds where the copy starts in the
/// content to a quarter segment. From there each segment's span (or at
/// least half of it, at the copy's ends) is summed and its two possible
/// payloads tried; one must read clearly, and clearly better than the
/// other. Segments the copy does not hold read `None`.
pub fn read_ab_segments(
    path: &Path,
    key: &MarkKey,
    content: i64,
    segments: usize,
    segment_secs: u32,
    progress: &mut dyn FnMut(u64, u64),
) -> Result<Vec<Option<bool>>, MediaError> {
    let info = probe(path)?;
    let (w, h) = working_size(info.width, info.height);
    let per = (info.fps * f64::from(segment_secs)).round().max(1.0) as u64;
    let mut dec = decoder(path, &format!("scale={w}:{h}:flags=area"), "gray")?;
    let mut from = dec.child.stdout.take().expect("piped");
    let mut buf = vec![0u8; w * h];
    let mut plane = Plane::new(w, h);
    let new_acc = || Accumulator::new(w, h).map_err(mark_error);
    let mut reader = SegmentReader {
        key,
        content,
        out: vec![None; segments],
        place: None,
        window: None,
        progress,
    };
    // The first chunks, kept until the copy's place is found.
    let mut chunks: Vec<Accumulator> = Vec::new();
    let chunk_of = |f: u64| f * CHUNKS_PER_SEGMENT / per;
    let mut current = new_acc()?;
    let mut frame = 0u64;
    let mut stopped_early = false;
    let result = (|| {
        loop {
            let more = read_frame(&mut from, &mut buf)?;
            let chunk_ends = !more || (frame > 0 && chunk_of(frame) != chunk_of(frame - 1));
            if chunk_ends && current.frames() > 0 {
                let k = chunk_of(frame - 1);
                let done = std::mem::replace(&mut current, new_acc()?);
                if reader.place.is_some() {
                    reader.feed(k, &done)?;
                } else {
                    chunks.push(done);
                    let enough =
                        chunks.len() as u64 >= (SEARCH_SEGMENTS + 1) * CHUNKS_PER_SEGMENT - 1;
                    if enough || !more {
                        reader.place =
                            find_place(&chunks, key, content, segments).map_err(mark_error)?;
                        if reader.place.is_none() {
                            // None of the content's segments reads here.
                            stopped_early = more;
                            return Ok(());
                        }
                        for (k, c) in chunks.drain(..).enumerate() {
                            reader.feed(k as u64, &c)?;
                        }
                    }
                }
            }
            if !more {
                break;
            }
            if reader
                .segment_of(chunk_of(frame))
                .is_some_and(|s| s >= segments)
            {
                // Past the content's last segment: the rest is not ours.
                stopped_early = true;
                break;
            }
            for (d, s) in plane.data.iter_mut().zip(&buf) {
                *d = f32::from(*s);
            }
            current.push(&plane).map_err(mark_error)?;
            frame += 1;
        }
        reader.finish()
    })();
    drop(from);
    let done = dec.finish();
    result?;
    // Stopping early closes the pipe under ffmpeg: not an error then.
    if !stopped_early {
        done?;
    }
    Ok(reader.out)
}

fn mark_error(e: image::ImageMarkError) -> MediaError {
    MediaError::Malformed(e.to_string())
}

/// Sums a copy's chunks into the spans of the content's segments, once
/// the copy's place is known, and reads each span.
struct SegmentReader<'a> {
    key: &'a MarkKey,
    content: i64,
    out: Vec<Option<bool>>,
    /// (phase, segment): copy chunk `phase` starts the content's `segment`.
    place: Option<(u64, usize)>,
    /// The span being summed: its segment, its sum and its chunks.
    window: Option<(usize, Accumulator, u64)>,
    progress: &'a mut dyn FnMut(u64, u64),
}

impl SegmentReader<'_> {
    /// The content's segment copy chunk `k` lies in (none before the
    /// content's start).
    fn segment_of(&self, k: u64) -> Option<usize> {
        let (phase, first) = self.place?;
        (first as u64 * CHUNKS_PER_SEGMENT + k)
            .checked_sub(phase)
            .map(|c| (c / CHUNKS_PER_SEGMENT) as usize)
    }

    fn feed(&mut self, k: u64, chunk: &Accumulator) -> Result<(), MediaError> {
        let Some(segment) = self.segment_of(k) else {
            return Ok(());
        };
        match &mut self.window {
            Some((s, acc, n)) if *s == segment => {
                acc.merge(chunk).map_err(mark_error)?;
                *n += 1;
            }
            _ => {
                self.finish()?;
                self.window = Some((segment, chunk.clone(), 1));
            }
        }
        Ok(())
    }

    /// Reads the span being summed. Informed: the segment holds A's
    /// payload, B's, or neither; a span cut short at the copy's ends is
    /// read from half a segment.
    fn finish(&mut self) -> Result<(), MediaError> {
        let Some((segment, acc, n)) = self.window.take() else {
            return Ok(());
        };
        let segments = self.out.len();
        if segment >= segments || 2 * n < CHUNKS_PER_SEGMENT || acc.frames() == 0 {
            return Ok(());
        }
        let choices = [false, true].map(|b| segment_payload(self.content, segment as u32, b));
        if let Some((i, _)) = acc.choose(self.key, &choices).map_err(mark_error)? {
            self.out[segment] = Some(i == 1);
        }
        (self.progress)(segment as u64 + 1, segments as u64);
        Ok(())
    }
}

/// Where a copy's first chunks lie in the content: the phase (which of
/// the first chunks starts a segment) and that segment, found by trying
/// every whole-segment span of `chunks` against every segment's two
/// payloads and keeping the strongest clear winner.
fn find_place(
    chunks: &[Accumulator],
    key: &MarkKey,
    content: i64,
    segments: usize,
) -> Result<Option<(u64, usize)>, image::ImageMarkError> {
    let per = CHUNKS_PER_SEGMENT as usize;
    let choices: Vec<Payload> = (0..segments as u32)
        .flat_map(|s| [false, true].map(|b| segment_payload(content, s, b)))
        .collect();
    let mut best: Option<(f32, u64, usize)> = None;
    for phase in 0..per.min(chunks.len()) {
        let Some(span) = chunks.get(phase..phase + per) else {
            break;
        };
        let mut acc = span[0].clone();
        for c in &span[1..] {
            acc.merge(c)?;
        }
        if let Some((i, z)) = acc.choose(key, &choices)? {
            if best.is_none_or(|(bz, _, _)| z > bz) {
                best = Some((z, phase as u64, i / 2));
            }
        }
    }
    Ok(best.map(|(_, phase, segment)| (phase, segment)))
}

/// The working grid a video of this size is read on (as the image mark's
/// reducer would bring it).
pub fn working_size(width: usize, height: usize) -> (usize, usize) {
    let k = image::working_scale(width, height);
    (
        ((width as f64 * k).floor() as usize).max(1),
        ((height as f64 * k).floor() as usize).max(1),
    )
}

/// Every this many frames is read: neighbouring frames carry nearly the
/// same picture and the same mark, so reading all of them buys little
/// (measured: z 12.6 reading every frame of a 64 s 1080p video).
pub const READ_STRIDE: u64 = 3;

/// What reading a video found.
#[derive(Debug, Clone, PartialEq)]
pub struct VideoDetection {
    pub detection: image::Detection,
    pub frames: usize,
    pub info: VideoInfo,
}

/// Reads the mark from a video: every frame on the working grid (ffmpeg
/// scales with area averaging), residuals summed, one detection.
pub fn detect_video(
    path: &Path,
    key: &MarkKey,
    progress: &mut dyn FnMut(u64, u64),
) -> Result<VideoDetection, MediaError> {
    let info = probe(path)?;
    let (w, h) = working_size(info.width, info.height);
    let mut acc = Accumulator::new(w, h).map_err(|e| MediaError::Malformed(e.to_string()))?;
    let mut dec = decoder(
        path,
        &format!("select='not(mod(n,{READ_STRIDE}))',scale={w}:{h}:flags=area"),
        "gray",
    )?;
    let mut from = dec.child.stdout.take().expect("piped");
    let mut buf = vec![0u8; w * h];
    let mut plane = Plane::new(w, h);
    let total = info.frames().div_ceil(READ_STRIDE);
    let result = (|| {
        while read_frame(&mut from, &mut buf)? {
            for (d, s) in plane.data.iter_mut().zip(&buf) {
                *d = f32::from(*s);
            }
            acc.push(&plane)
                .map_err(|e| MediaError::Malformed(e.to_string()))?;
            let n = acc.frames() as u64;
            if n.is_multiple_of(24) {
                progress(n, total.max(n));
            }
        }
        Ok::<_, MediaError>(())
    })();
    drop(from);
    let done = dec.finish();
    result?;
    done?;
    if acc.frames() == 0 {
        return Err(MediaError::Malformed("the video has no frames".into()));
    }
    let detection = acc
        .detect(key)
        .map_err(|e| MediaError::Malformed(e.to_string()))?;
    Ok(VideoDetection {
        detection,
        frames: acc.frames(),
        info,
    })
}

/// Whether a file looks like a video container ffmpeg reads (MP4/MOV,
/// Matroska/WebM, MPEG-TS), by its first bytes.
pub fn is_video(head: &[u8]) -> bool {
    let mp4 = head.len() >= 12 && &head[4..8] == b"ftyp" && {
        let brand = &head[8..12];
        // Audio-only MP4 brands (M4A) are audio.
        brand != b"M4A " && brand != b"M4B "
    };
    let mkv = head.starts_with(&[0x1A, 0x45, 0xDF, 0xA3]);
    let ts = head.len() >= 189 && head[0] == 0x47 && head[188] == 0x47;
    mp4 || mkv || ts
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn ffprobe_output_is_read() {
        let text = "codec_name=h264\ncodec_type=video\nwidth=1920\nheight=1080\navg_frame_rate=24000/1001\ncodec_name=aac\ncodec_type=audio\nwidth=N/A\nheight=N/A\navg_frame_rate=0/0\nduration=64.000000\n";
        let i = parse_probe(text).unwrap();
        assert_eq!((i.width, i.height, i.has_audio), (1920, 1080, true));
        assert!((i.fps - 23.976).abs() < 0.01);
        assert_eq!(i.video_codec, "h264");
        assert_eq!(i.frames(), 1534);
        assert!(parse_probe("codec_type=audio\nduration=3\n").is_err());
        assert!(parse_probe(
            "codec_type=video\nwidth=10\nheight=10\navg_frame_rate=0/0\nduration=3\n"
        )
        .is_err());
    }

    #[test]
    fn containers_are_told_apart() {
        assert!(is_video(b"\0\0\0\x20ftypisom\0\0\0\0"));
        assert!(!is_video(b"\0\0\0\x20ftypM4A \0\0\0\0"));
        assert!(is_video(&[0x1A, 0x45, 0xDF, 0xA3, 0, 0]));
        assert!(!is_video(b"RIFF\0\0\0\0WAVE"));
    }

    proptest! {
        #[test]
        fn no_probe_text_panics(text in ".{0,400}") {
            let _ = parse_probe(&text);
        }
    }
}
