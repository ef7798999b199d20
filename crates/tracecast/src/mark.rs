//! `tracecast keygen` and `tracecast mark embed|detect`: the work is
//! `tracecast_media::marking`; this is its progress bar and report.

use std::path::Path;
use std::process::ExitCode;

use anyhow::Context;
use indicatif::{ProgressBar, ProgressStyle};
use rand::RngCore;
use serde::Serialize;
use tracecast_mark::{MarkKey, Payload, KEY_LEN};
use tracecast_media::marking::{self, FileDetection, MarkOptions, Marked, Stage};

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
    tracecast_secrets::write_new(path, &key)?;
    Ok(MarkKey::from_bytes(key))
}

pub fn read_key(path: &Path) -> anyhow::Result<MarkKey> {
    let bytes = tracecast_secrets::read_bytes(path)?;
    MarkKey::parse(&bytes).with_context(|| format!("bad key file {}", path.display()))
}

/// A progress bar that names the stage under way; hidden when quiet.
fn stage_bar(quiet: bool) -> (ProgressBar, impl FnMut(Stage, u64, u64)) {
    let pb = if quiet {
        ProgressBar::hidden()
    } else {
        let pb = ProgressBar::new(0);
        pb.set_style(
            ProgressStyle::with_template("{msg:>14} [{bar:30}] {percent:>3}% {elapsed}")
                .expect("static template")
                .progress_chars("=> "),
        );
        pb
    };
    let bar = pb.clone();
    let mut shown = None;
    let tick = move |stage: Stage, done: u64, total: u64| {
        if shown != Some(stage) {
            shown = Some(stage);
            bar.set_message(stage.as_str());
            bar.reset();
        }
        bar.set_length(total);
        bar.set_position(done);
    };
    (pb, tick)
}

pub fn embed(args: &EmbedArgs, quiet: bool) -> anyhow::Result<()> {
    let key = read_key(&args.key)?;
    let payload = Payload {
        content_server: args.content_server,
        edge: args.edge,
        home: args.home,
        user: args.user,
    };
    let options = MarkOptions {
        strength: args.strength,
        jpeg_quality: args.quality,
    };
    let (pb, mut tick) = stage_bar(quiet);
    let marked = marking::mark_file(
        &args.input,
        &args.output,
        &key,
        &payload,
        &options,
        &mut tick,
    );
    pb.finish_and_clear();
    let marked = marked.with_context(|| format!("cannot mark {}", args.input.display()))?;
    if !quiet {
        let what = match marked {
            Marked::Audio {
                seconds,
                blocks,
                snr_db,
            } => format!("{seconds:.1} s, {blocks} blocks, SNR {snr_db:.1} dB"),
            Marked::Picture {
                width,
                height,
                psnr_db,
            } => format!("{width}x{height}, PSNR {psnr_db:.1} dB"),
            Marked::Video {
                width,
                height,
                frames,
                psnr_db,
            } => format!("{width}x{height}, {frames} frames, luma PSNR {psnr_db:.1} dB"),
        };
        eprintln!(
            "marked {} -> {} ({what})",
            args.input.display(),
            args.output.display()
        );
    }
    Ok(())
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
    let (pb, mut tick) = stage_bar(quiet || args.json);
    let d = marking::detect_file(&args.file, &key, &mut tick);
    pb.finish_and_clear();
    let d = d.with_context(|| format!("cannot search {}", args.file.display()))?;
    report(&d, args.json)
}

fn report(d: &FileDetection, json: bool) -> anyhow::Result<ExitCode> {
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
