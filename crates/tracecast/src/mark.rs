//! `tracecast keygen` and `tracecast mark embed|detect`.

use std::path::Path;
use std::process::ExitCode;

use anyhow::{bail, Context};
use indicatif::{ProgressBar, ProgressStyle};
use rand::RngCore;
use serde::Serialize;
use tracecast_mark::audio::{self, EmbedConfig};
use tracecast_mark::image as picture_mark;
use tracecast_mark::{MarkKey, Payload, KEY_LEN};

use crate::cli::{DetectArgs, EmbedArgs, KeygenArgs};

pub fn keygen(args: &KeygenArgs) -> anyhow::Result<()> {
    let k = write_new_key(&args.out)?;
    eprintln!(
        "wrote mark key {} (fingerprint {})",
        args.out.display(),
        k.fingerprint()
    );
    Ok(())
}

/// Writes a fresh random key to `path` (mode 0600; an existing file is never
/// overwritten) and returns it.
pub fn write_new_key(path: &Path) -> anyhow::Result<MarkKey> {
    let mut key = [0u8; KEY_LEN];
    rand::rngs::OsRng.fill_bytes(&mut key);
    tracecast_server::secrets::write_new(path, &key)?;
    Ok(MarkKey::from_bytes(key))
}

pub fn read_key(path: &Path) -> anyhow::Result<MarkKey> {
    let bytes = tracecast_server::secrets::read_bytes(path)?;
    MarkKey::parse(&bytes).with_context(|| format!("bad key file {}", path.display()))
}

/// A progress bar, hidden when quiet or not on a terminal.
pub fn bar(quiet: bool, message: &'static str) -> ProgressBar {
    if quiet {
        return ProgressBar::hidden();
    }
    let pb = ProgressBar::new(0);
    pb.set_style(
        ProgressStyle::with_template("{msg:>10} [{bar:30}] {percent:>3}% {elapsed}")
            .expect("static template")
            .progress_chars("=> "),
    );
    pb.set_message(message);
    pb
}

fn decode(path: &Path, quiet: bool) -> anyhow::Result<tracecast_media::Pcm> {
    let pb = bar(quiet, "decoding");
    let mut progress = |done: u64, total: Option<u64>| {
        if let Some(t) = total {
            pb.set_length(t);
        }
        pb.set_position(done);
    };
    // The mark engine holds a file whole: at most 3 hours of 48 kHz
    // stereo (the same number of samples at other rates and channel
    // counts, about 4 GB decoded), refused beyond with its length.
    let pcm = tracecast_media::decode_file_within(
        path,
        Some(tracecast_media::Budget::minutes(
            180.0,
            tracecast_media::Beyond::Refuse,
        )),
        Some(&mut progress),
    )
    .with_context(|| format!("cannot read {}", path.display()))?
    .pcm;
    pb.finish_and_clear();
    Ok(pcm)
}

/// Whether `path` holds a picture (PNG or JPEG), judged by its first bytes.
fn is_picture_file(path: &Path) -> anyhow::Result<bool> {
    use std::io::Read;
    let mut head = [0u8; 8];
    let mut f =
        std::fs::File::open(path).with_context(|| format!("cannot read {}", path.display()))?;
    let n = f.read(&mut head)?;
    Ok(tracecast_media::is_picture(&head[..n]))
}

/// Whether `path` holds a video (MP4/MOV, Matroska/WebM, MPEG-TS).
fn is_video_file(path: &Path) -> anyhow::Result<bool> {
    use std::io::Read;
    let mut head = [0u8; 192];
    let mut f =
        std::fs::File::open(path).with_context(|| format!("cannot read {}", path.display()))?;
    let mut n = 0;
    while n < head.len() {
        match f.read(&mut head[n..])? {
            0 => break,
            k => n += k,
        }
    }
    Ok(tracecast_media::video::is_video(&head[..n]))
}

fn embed_video(args: &EmbedArgs, key: &MarkKey, quiet: bool) -> anyhow::Result<()> {
    let ext = args
        .output
        .extension()
        .and_then(|e| e.to_str())
        .unwrap_or("")
        .to_ascii_lowercase();
    if ext != "mp4" {
        bail!("a marked video is written as .mp4 (H.264 and AAC)");
    }
    let pb = bar(quiet, "marking frames");
    let report = tracecast_media::video::mark_video(
        &args.input,
        &args.output,
        key,
        &payload_of(args),
        &picture_mark::EmbedConfig::default().scaled(args.strength),
        &Default::default(),
        &mut |done, total| {
            pb.set_length(total);
            pb.set_position(done);
        },
    )
    .with_context(|| format!("cannot mark {}", args.input.display()))?;
    pb.finish_and_clear();
    if !quiet {
        eprintln!(
            "marked {} -> {} ({}x{}, {} frames, luma PSNR {:.1} dB)",
            args.input.display(),
            args.output.display(),
            report.width,
            report.height,
            report.frames,
            report.psnr_db
        );
    }
    Ok(())
}

fn payload_of(args: &EmbedArgs) -> Payload {
    Payload {
        content_server: args.content_server,
        edge: args.edge,
        home: args.home,
        user: args.user,
    }
}

pub fn embed(args: &EmbedArgs, quiet: bool) -> anyhow::Result<()> {
    let key = read_key(&args.key)?;
    if is_picture_file(&args.input)? {
        return embed_picture(args, &key, quiet);
    }
    if is_video_file(&args.input)? {
        return embed_video(args, &key, quiet);
    }
    // Refuse a bad output name before the long work.
    tracecast_media::OutputFormat::from_path(&args.output)?;
    let payload = payload_of(args);
    let mut pcm = decode(&args.input, quiet)?;
    let pb = bar(quiet, "marking");
    let report = audio::embed(
        &mut pcm.channels,
        pcm.sample_rate,
        &key,
        &payload,
        &EmbedConfig::default().scaled(args.strength),
        &mut |done, total| {
            pb.set_length(total);
            pb.set_position(done);
        },
    )
    .with_context(|| format!("cannot mark {}", args.input.display()))?;
    pb.finish_and_clear();
    tracecast_media::encode_file(&pcm, &args.output)?;
    if !quiet {
        eprintln!(
            "marked {} -> {} ({:.1} s, {} blocks, SNR {:.1} dB)",
            args.input.display(),
            args.output.display(),
            pcm.duration_secs(),
            report.blocks,
            report.snr_db
        );
    }
    Ok(())
}

fn embed_picture(args: &EmbedArgs, key: &MarkKey, quiet: bool) -> anyhow::Result<()> {
    let format = tracecast_media::PictureFormat::from_path(&args.output, args.quality)
        .context("a picture is written as .png, .jpg or .jpeg")?;
    let mut img = tracecast_media::read_picture(&args.input)
        .with_context(|| format!("cannot read {}", args.input.display()))?;
    let (w, h) = (img.width(), img.height());
    let pb = bar(quiet, "marking");
    let psnr = tracecast_media::mark_picture(
        &mut img,
        key,
        &payload_of(args),
        &picture_mark::EmbedConfig::default().scaled(args.strength),
        &mut |done, total| {
            pb.set_length(total);
            pb.set_position(done);
        },
    )
    .with_context(|| format!("cannot mark {}", args.input.display()))?;
    pb.finish_and_clear();
    tracecast_media::write_picture(&img, &args.output, format)?;
    if !quiet {
        eprintln!(
            "marked {} -> {} ({w}x{h}, PSNR {psnr:.1} dB)",
            args.input.display(),
            args.output.display(),
        );
    }
    Ok(())
}

/// Reads a picture onto the mark's working grid and looks for the mark.
pub fn detect_picture_file(path: &Path, key: &MarkKey) -> anyhow::Result<picture_mark::Detection> {
    let img = tracecast_media::read_picture(path)
        .with_context(|| format!("cannot read {}", path.display()))?;
    tracecast_media::detect_picture(&img, key)
        .with_context(|| format!("cannot search {}", path.display()))
}

/// The JSON line other tools parse; field order is part of the interface.
#[derive(Serialize)]
struct DetectJson {
    found: bool,
    content_server: Option<u16>,
    edge: Option<u16>,
    home: Option<u16>,
    user: Option<u32>,
    tag_ok: bool,
    confidence: f64,
}

pub fn detect(args: &DetectArgs, quiet: bool) -> anyhow::Result<ExitCode> {
    let key = read_key(&args.key)?;
    if is_picture_file(&args.file)? {
        let d = detect_picture_file(&args.file, &key)?;
        let summary = Summary {
            payload: d.payload,
            tag_ok: d.tag_ok,
            confidence: d.confidence,
            details: format!(
                "sync {:.1} sd, scale {:.3}, rotation {:.1} deg{}",
                d.sync_z,
                d.scale,
                d.rotation_deg,
                if d.mirrored { ", mirrored" } else { "" }
            ),
            sync_z: d.sync_z,
        };
        return report(&summary, args.json);
    }
    if is_video_file(&args.file)? {
        let pb = bar(quiet || args.json, "reading frames");
        let v = tracecast_media::video::detect_video(&args.file, &key, &mut |done, total| {
            pb.set_length(total);
            pb.set_position(done);
        })
        .with_context(|| format!("cannot search {}", args.file.display()))?;
        pb.finish_and_clear();
        let d = v.detection;
        let summary = Summary {
            payload: d.payload,
            tag_ok: d.tag_ok,
            confidence: d.confidence,
            details: format!(
                "{}x{}, {} frames read, sync {:.1} sd, scale {:.3}",
                v.info.width, v.info.height, v.frames, d.sync_z, d.scale
            ),
            sync_z: d.sync_z,
        };
        return report(&summary, args.json);
    }
    let pcm = decode(&args.file, quiet || args.json)?;
    if pcm.frames() == 0 {
        bail!("{} holds no audio", args.file.display());
    }
    let pb = bar(quiet || args.json, "searching");
    let d = audio::detect(&pcm.channels, pcm.sample_rate, &key, &mut |done, total| {
        pb.set_length(total);
        pb.set_position(done);
    })
    .with_context(|| format!("cannot search {}", args.file.display()))?;
    pb.finish_and_clear();
    let summary = Summary {
        payload: d.payload,
        tag_ok: d.tag_ok,
        confidence: d.confidence,
        details: format!(
            "sync {:.1} sd, speed {:.3}, tempo {:.3}",
            d.sync_z, d.speed, d.tempo
        ),
        sync_z: d.sync_z,
    };
    report(&summary, args.json)
}

/// What any detector found, for printing.
struct Summary {
    payload: Option<Payload>,
    tag_ok: bool,
    confidence: f32,
    details: String,
    sync_z: f32,
}

fn report(d: &Summary, json: bool) -> anyhow::Result<ExitCode> {
    let found = d.payload.is_some();
    if json {
        let p = d.payload;
        let out = DetectJson {
            found,
            content_server: p.map(|p| p.content_server),
            edge: p.map(|p| p.edge),
            home: p.map(|p| p.home),
            user: p.map(|p| p.user),
            tag_ok: d.tag_ok,
            confidence: (f64::from(d.confidence) * 1000.0).round() / 1000.0,
        };
        println!("{}", serde_json::to_string(&out)?);
    } else if let Some(p) = d.payload {
        println!(
            "mark found: user {} via edge {}{} from content server {} (tag verified, confidence {:.2}; {})",
            p.user,
            p.edge,
            if p.home != 0 { format!(" and home {}", p.home) } else { String::new() },
            p.content_server,
            d.confidence,
            d.details
        );
    } else {
        println!(
            "no mark found under this key (best sync {:.1} sd)",
            d.sync_z
        );
    }
    Ok(if found {
        ExitCode::SUCCESS
    } else {
        ExitCode::from(1)
    })
}
