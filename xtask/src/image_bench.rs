//! `bench mark-image`: the image mark's speed, PSNR and robustness on real
//! photos, side by side with the PyPI peers when they are installed.

use std::path::{Path, PathBuf};
use std::time::Instant;

use anyhow::{bail, Context};
use tracecast_attack::picture::PictureAttack;
use tracecast_mark::image::{self as mark, EmbedConfig};
use tracecast_mark::{MarkKey, Payload};
use tracecast_media::DynamicImage;

use tracecast_attack::picture::PHOTOS as DEFAULT_PHOTOS;

pub struct Options {
    pub config: EmbedConfig,
    pub files: Vec<PathBuf>,
    /// Scale photos down so their shorter side is this (0 = as they are).
    pub max_side: u32,
    /// Also run the harder attacks.
    pub harder: bool,
    /// Run the PyPI peers on the same photos and attacks.
    pub peers: bool,
}

pub fn parse(rest: &[&str]) -> anyhow::Result<Options> {
    let mut o = Options {
        config: EmbedConfig::default(),
        files: Vec::new(),
        max_side: 0,
        harder: false,
        peers: false,
    };
    let mut it = rest.iter();
    while let Some(a) = it.next() {
        match *a {
            "--strength" => {
                let f: f32 = it.next().context("--strength N")?.parse()?;
                o.config = o.config.scaled(f);
            }
            "--harder" => o.harder = true,
            "--peers" => o.peers = true,
            "--short-side" => o.max_side = it.next().context("--short-side N")?.parse()?,
            "--set" => {
                let kv = it.next().context("--set NAME=VALUE")?;
                let (k, v) = kv.split_once('=').context("--set NAME=VALUE")?;
                let v: f32 = v.parse()?;
                match k {
                    "psnr_db" => o.config.psnr_db = v,
                    "mask_floor" => o.config.mask_floor = v,
                    "mask_exponent" => o.config.mask_exponent = v,
                    "mask_cap" => o.config.mask_cap = v,
                    _ => bail!("unknown setting {k}"),
                }
            }
            f => o.files.push(PathBuf::from(f)),
        }
    }
    if o.files.is_empty() {
        for f in DEFAULT_PHOTOS {
            if !Path::new(f).exists() {
                bail!("{f} is missing: apt-get install mate-backgrounds (or name photos)");
            }
            o.files.push(PathBuf::from(f));
        }
    }
    Ok(o)
}

/// Marks a picture in memory; returns the marked copy and its PSNR.
pub fn embed(
    img: &DynamicImage,
    key: &MarkKey,
    payload: &Payload,
    config: &EmbedConfig,
) -> anyhow::Result<(DynamicImage, f64)> {
    let mut out = img.clone();
    let psnr = tracecast_media::mark_picture(&mut out, key, payload, config, &mut |_, _| {})?;
    Ok((out, psnr))
}

/// Looks for the mark in a picture in memory.
pub fn detect(img: &DynamicImage, key: &MarkKey) -> anyhow::Result<mark::Detection> {
    Ok(tracecast_media::detect_picture(img, key)?)
}

/// Runs `f` `n` times; returns the last result and the fastest time in
/// seconds (the run least disturbed by the rest of the machine).
pub fn best_of<T>(n: usize, mut f: impl FnMut() -> anyhow::Result<T>) -> anyhow::Result<(T, f64)> {
    let mut best = f64::INFINITY;
    let mut out = None;
    for _ in 0..n {
        let t = Instant::now();
        let v = f()?;
        best = best.min(t.elapsed().as_secs_f64());
        out = Some(v);
    }
    Ok((out.expect("n > 0"), best))
}

pub fn run(o: &Options) -> anyhow::Result<()> {
    let key = MarkKey::from_bytes(*b"tracecast image benchmark key 01");
    let payload = Payload {
        content_server: 7,
        edge: 301,
        home: 12,
        user: 4_000_123,
    };
    let mut attacks = PictureAttack::all();
    if o.harder {
        attacks.extend(PictureAttack::harder());
    }
    println!("{:<16} {:>9} {}", "photo", "size", header(&attacks));
    let mut passed = vec![0usize; attacks.len()];
    let (mut emb_rates, mut det_rates, mut psnrs) = (Vec::new(), Vec::new(), Vec::new());
    let work = tempfile::tempdir()?;
    let mut originals = Vec::new();
    for file in &o.files {
        let mut img = tracecast_media::read_picture(file)
            .with_context(|| format!("cannot read {}", file.display()))?;
        if o.max_side > 0 {
            // Scale so the shorter side is `max_side`.
            let f = o.max_side as f32 / img.width().min(img.height()) as f32;
            if f < 1.0 {
                img = img.resize_exact(
                    (img.width() as f32 * f).round() as u32,
                    (img.height() as f32 * f).round() as u32,
                    image_filter(),
                );
            }
        }
        let mp = f64::from(img.width()) * f64::from(img.height()) / 1e6;
        if o.peers {
            let stem = file.file_stem().and_then(|s| s.to_str()).unwrap_or("photo");
            let path = work.path().join(format!("{stem}.png"));
            tracecast_media::write_picture(&img, &path, tracecast_media::PictureFormat::Png)?;
            originals.push(path);
        }
        let ((marked, psnr), t_emb) = best_of(3, || embed(&img, &key, &payload, &o.config))?;
        let (d, t_det) = best_of(3, || detect(&marked, &key))?;
        let clean = if d.payload == Some(payload) {
            ""
        } else {
            " (clean copy NOT read)"
        };
        let mut row = String::new();
        for (i, a) in attacks.iter().enumerate() {
            let attacked = a.apply(&marked, 17 + i as u64);
            let d = detect(&attacked, &key)?;
            let ok = d.payload == Some(payload);
            if ok {
                passed[i] += 1;
            }
            row += &format!(
                "{:>16}",
                format!("{} {:.1}", if ok { "ok" } else { "FAIL" }, d.sync_z)
            );
        }
        let name = file.file_stem().and_then(|s| s.to_str()).unwrap_or("?");
        println!(
            "{:<16} {:>9} {:>6.2} {:>9.1} {:>9.1} {row}{clean}",
            name,
            format!("{}x{}", img.width(), img.height()),
            psnr,
            mp / t_emb,
            mp / t_det
        );
        emb_rates.push(mp / t_emb);
        det_rates.push(mp / t_det);
        psnrs.push(psnr);
    }
    let mean = |v: &[f64]| v.iter().sum::<f64>() / v.len() as f64;
    println!(
        "mean: PSNR {:.2} dB (min {:.2}), embed {:.1} MP/s, detect {:.1} MP/s (one core, in memory, best of 3)",
        mean(&psnrs),
        psnrs.iter().cloned().fold(f64::INFINITY, f64::min),
        mean(&emb_rates),
        mean(&det_rates)
    );
    println!(
        "recovered: {}",
        attacks
            .iter()
            .zip(&passed)
            .map(|(a, p)| format!("{} {}/{}", a.name(), p, o.files.len()))
            .collect::<Vec<_>>()
            .join(", ")
    );
    if o.peers {
        let ours = Peer {
            name: "tracecast".into(),
            psnr: mean(&psnrs),
            embed_mp_s: mean(&emb_rates),
            detect_mp_s: mean(&det_rates),
            recovered: passed,
        };
        peers_table(&attacks, &originals, work.path(), ours)?;
    }
    Ok(())
}

/// The columns both tables share: quality, speeds and one per attack.
fn header(attacks: &[PictureAttack]) -> String {
    let names: String = attacks
        .iter()
        .map(|a| format!("{:>16}", a.name()))
        .collect();
    format!("{:>6} {:>9} {:>9} {names}", "PSNR", "emb MP/s", "det MP/s")
}

/// One row of the side-by-side table.
struct Peer {
    name: String,
    psnr: f64,
    embed_mp_s: f64,
    detect_mp_s: f64,
    recovered: Vec<usize>,
}

/// The Python that has invisible-watermark and blind-watermark installed:
/// `$TRACECAST_PEERS_PYTHON`, else `target/peers/bin/python` (see README).
fn peers_python() -> anyhow::Result<PathBuf> {
    let p = std::env::var_os("TRACECAST_PEERS_PYTHON")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from("target/peers/bin/python"));
    if !p.exists() {
        bail!(
            "{} is missing: python3 -m venv target/peers && target/peers/bin/pip install invisible-watermark blind-watermark",
            p.display()
        );
    }
    Ok(p)
}

fn run_peers(args: &[&str]) -> anyhow::Result<Vec<serde_json::Value>> {
    let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("peers/image_peers.py");
    let out = std::process::Command::new(peers_python()?)
        .arg(&script)
        .args(args)
        .output()?;
    if !out.status.success() {
        bail!("peers failed: {}", String::from_utf8_lossy(&out.stderr));
    }
    // The peers print banners of their own; keep the JSON lines.
    Ok(String::from_utf8_lossy(&out.stdout)
        .lines()
        .filter(|l| l.starts_with('{'))
        .filter_map(|l| serde_json::from_str(l).ok())
        .collect())
}

fn peers_table(
    attacks: &[PictureAttack],
    originals: &[PathBuf],
    dir: &Path,
    ours: Peer,
) -> anyhow::Result<()> {
    let mut args = vec!["embed", dir.to_str().context("temp dir is UTF-8")?];
    args.extend(originals.iter().filter_map(|p| p.to_str()));
    let embedded = run_peers(&args)?;
    let mut rows = vec![ours];
    for method in ["dwtDct", "dwtDctSvd", "blind"] {
        let mine: Vec<&serde_json::Value> =
            embedded.iter().filter(|v| v["method"] == method).collect();
        let num = |v: &serde_json::Value, k: &str| v[k].as_f64().unwrap_or(f64::NAN);
        let n = mine.len().max(1) as f64;
        // Attack each peer-marked photo exactly as ours were attacked.
        let mut files: Vec<(usize, String)> = Vec::new();
        for v in &mine {
            let marked =
                tracecast_media::read_picture(Path::new(v["file"].as_str().context("file")?))?;
            for (i, a) in attacks.iter().enumerate() {
                let path = dir.join(format!("{}.{method}.{i}.png", files.len()));
                let attacked = a.apply(&marked, 17 + i as u64);
                tracecast_media::write_picture(
                    &attacked,
                    &path,
                    tracecast_media::PictureFormat::Png,
                )?;
                files.push((i, path.to_string_lossy().into_owned()));
            }
        }
        let mut dargs = vec!["decode", method];
        dargs.extend(files.iter().map(|(_, f)| f.as_str()));
        let decoded = run_peers(&dargs)?;
        let mut recovered = vec![0usize; attacks.len()];
        for ((i, _), v) in files.iter().zip(&decoded) {
            if v["bits_ok"].as_u64() == Some(32) {
                recovered[*i] += 1;
            }
        }
        let det =
            decoded.iter().map(|v| num(v, "mp_per_s")).sum::<f64>() / decoded.len().max(1) as f64;
        rows.push(Peer {
            name: method.into(),
            psnr: mine.iter().map(|v| num(v, "psnr")).sum::<f64>() / n,
            embed_mp_s: mine.iter().map(|v| num(v, "mp_per_s")).sum::<f64>() / n,
            detect_mp_s: det,
            recovered,
        });
    }
    println!();
    println!(
        "side by side ({} photos; peers carry 32 bits and count only when all 32 come back; tracecast carries 108 with its tag):",
        originals.len()
    );
    println!("{:<10} {}", "method", header(attacks));
    for r in &rows {
        println!(
            "{:<10} {:>6.2} {:>9.2} {:>9.2} {}",
            r.name,
            r.psnr,
            r.embed_mp_s,
            r.detect_mp_s,
            r.recovered
                .iter()
                .map(|k| format!("{:>16}", format!("{k}/{}", originals.len())))
                .collect::<String>()
        );
    }
    let base = &rows[0];
    for r in &rows[1..] {
        println!(
            "tracecast / {}: embed speed x{:.0}, detect speed x{:.0}",
            r.name,
            base.embed_mp_s / r.embed_mp_s,
            base.detect_mp_s / r.detect_mp_s
        );
    }
    Ok(())
}

fn image_filter() -> image::imageops::FilterType {
    image::imageops::FilterType::CatmullRom
}
