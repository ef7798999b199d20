//! Project chores. `cargo run --release -p xtask -- bench mark-audio [FILES...]`
//! measures the audio mark: embed and detect speed, SNR, and a robustness
//! table over the attacks done with the real tools. `bench mark-image` does
//! the same for pictures; `bench mailbox` runs the mailbox beside NATS
//! JetStream; `bench edge` runs personalised deliveries beside nginx;
//! `bench members` admits a million-member referral tree and computes
//! every trust; `bench upload` sends a large file to the service server
//! by tus beside a plain PUT to nginx; `bench ab` serves copies assembled
//! from A/B variants beside nginx serving the same bytes.

mod ab_bench;
mod audio_peer;
mod edge_bench;
mod fuzz;
mod image_bench;
mod load_bench;
mod mailbox_bench;
mod members_bench;
mod protect_bench;
mod trace_bench;
mod upload_bench;

// The tidy checks are unit tests of xtask's binary, not an integration test:
// an integration test makes `cargo test` build the whole release binary.
#[cfg(test)]
mod tidy;

use std::path::{Path, PathBuf};

use anyhow::{bail, Context};
use tracecast_attack::Attack;
use tracecast_mark::audio::{self, EmbedConfig};
use tracecast_mark::{MarkKey, Payload};

/// A bench's options from its arguments (`bench NAME ARGS...`); `--help`
/// prints them, and a bad one exits 2 naming it.
pub fn options<T: clap::Parser>(bench: &str, args: &[&str]) -> T {
    let argv =
        std::iter::once(format!("xtask bench {bench}")).chain(args.iter().map(|a| (*a).to_owned()));
    T::try_parse_from(argv).unwrap_or_else(|e| e.exit())
}

/// `--backend sqlite|postgres|both`.
#[derive(Clone, Copy, Debug, clap::ValueEnum)]
pub enum Backends {
    Sqlite,
    Postgres,
    Both,
}

impl Backends {
    pub fn list(self) -> Vec<tracecast_store::Backend> {
        use tracecast_store::Backend;
        match self {
            Backends::Sqlite => vec![Backend::Sqlite],
            Backends::Postgres => vec![Backend::Postgres],
            Backends::Both => vec![Backend::Sqlite, Backend::Postgres],
        }
    }
}

/// `--backend sqlite|postgres`: one store.
pub fn one_backend(v: &str) -> anyhow::Result<tracecast_store::Backend> {
    use tracecast_store::Backend;
    Ok(match v {
        "postgres" => Backend::Postgres,
        "sqlite" => Backend::Sqlite,
        other => bail!("{other}: use postgres or sqlite"),
    })
}

fn main() -> anyhow::Result<()> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    match args
        .iter()
        .map(String::as_str)
        .collect::<Vec<_>>()
        .as_slice()
    {
        ["bench", "mark-audio", rest @ ..] => {
            let mut config = EmbedConfig::default();
            let mut files = Vec::new();
            let mut peer = Peer::default();
            let mut it = rest.iter();
            while let Some(a) = it.next() {
                match *a {
                    "--audiowmark" => peer.bin = Some(*it.next().context("--audiowmark PATH")?),
                    "--audiowmark-src" => {
                        peer.source = Some(*it.next().context("--audiowmark-src GIT-URL-OR-PATH")?)
                    }
                    "--strength" => {
                        let f: f32 = it.next().context("--strength N")?.parse()?;
                        config = config.scaled(f);
                    }
                    "--set" => {
                        let kv = it.next().context("--set NAME=VALUE")?;
                        let (k, v) = kv.split_once('=').context("--set NAME=VALUE")?;
                        let v: f32 = v.parse()?;
                        match k {
                            "sync_db" => config.sync_db = v,
                            "min_db" => config.min_db = v,
                            "max_db" => config.max_db = v,
                            "max_unit_db" => config.max_unit_db = v,
                            "target_db" => config.target_db = v,
                            "tilt" => config.tilt = v,
                            "max_weight" => config.max_weight = v,
                            "min_snr_db" => config.min_snr_db = v,
                            _ => bail!("unknown setting {k}"),
                        }
                    }
                    f => files.push(f),
                }
            }
            bench_mark_audio(&files, config, peer)
        }
        ["bench", "mark-image", rest @ ..] => image_bench::run(&image_bench::parse(rest)?),
        ["bench", "mailbox", rest @ ..] => mailbox_bench::run(&mailbox_bench::parse(rest)?),
        ["bench", "edge", rest @ ..] => edge_bench::run(&edge_bench::parse(rest)?),
        ["bench", "members", rest @ ..] => members_bench::run(&members_bench::parse(rest)?),
        ["bench", "protect", rest @ ..] => protect_bench::run(&protect_bench::parse(rest)?),
        ["bench", "upload", rest @ ..] => upload_bench::run(&upload_bench::parse(rest)?),
        ["bench", "ab", rest @ ..] => ab_bench::run(&ab_bench::parse(rest)?),
        ["bench", "load", rest @ ..] => load_bench::run(&load_bench::parse(rest)?),
        ["bench", "trace", rest @ ..] => trace_bench::run(&trace_bench::parse(rest)?),
        ["fuzz", rest @ ..] => fuzz::run(&fuzz::parse(rest)?),
        _ => {
            eprintln!(
                "usage: cargo run --release -p xtask -- bench mark-audio [--strength X] [--set NAME=VALUE]... [--audiowmark BIN | --audiowmark-src GIT] [AUDIO FILES...]\n       cargo run --release -p xtask -- bench mark-image [--strength X] [--short-side N] [--set NAME=VALUE]... [PHOTOS...]\n       cargo run --release -p xtask -- bench mailbox [--messages N] [--boxes N] [--latency-secs S] [--backend sqlite|postgres|both]\n       cargo run --release -p xtask -- bench edge [--seconds 300] [--buyers 1,10,100] [--nginx /usr/sbin/nginx]\n       cargo run --release -p xtask -- bench members [--members 1000000] [--depth 12] [--backend sqlite|postgres|both]\n       cargo run --release -p xtask -- bench protect [--mib 512] [--conversions 3000]\n       cargo run --release -p xtask -- bench upload [--size 1G] [--runs 5] [--nginx /usr/sbin/nginx]\n       cargo run --release -p xtask -- bench ab [--seconds 300] [--buyers 1,10,100] [--rounds N] [--release-only] [--nginx /usr/sbin/nginx]\n       cargo run --release -p xtask -- bench load [--seconds 10] [--connections 32] [--backend postgres|sqlite] [--nginx /usr/sbin/nginx] [--wrk /usr/bin/wrk]\n       cargo run --release -p xtask -- bench trace [--seconds 180] [--catalog 10000]\n       cargo run --release -p xtask -- fuzz [--seconds 60] [TARGET...]"
            );
            std::process::exit(2)
        }
    }
}

/// Real music from Debian packages (asc-music: 22 kHz sources; singularity-
/// music: full-band 48 kHz sources), cut to 60 s, used when no files are
/// named.
fn default_tracks(dir: &Path) -> anyhow::Result<Vec<PathBuf>> {
    let sources = [
        ("/usr/share/games/asc/music/frontiers.mp3", 30),
        ("/usr/share/games/asc/music/machine_wars.mp3", 60),
        ("/usr/share/games/asc/music/time_to_strike.mp3", 90),
        ("/usr/share/games/singularity/music/Aberrations.ogg", 20),
        ("/usr/share/games/singularity/music/Coherence.ogg", 20),
        ("/usr/share/games/singularity/music/Media Threat.ogg", 20),
    ];
    let mut out = Vec::new();
    for (src, start) in sources {
        if !Path::new(src).exists() {
            bail!(
                "{src} is missing: apt-get install asc-music singularity-music (or name audio files)"
            );
        }
        let name = Path::new(src)
            .file_stem()
            .unwrap_or_default()
            .to_string_lossy()
            .chars()
            .map(|c| {
                if c.is_ascii_alphanumeric() {
                    c.to_ascii_lowercase()
                } else {
                    '_'
                }
            })
            .collect::<String>();
        let dst = dir.join(format!("{name}.wav"));
        let status = std::process::Command::new("ffmpeg")
            .args([
                "-v",
                "error",
                "-y",
                "-nostdin",
                "-ss",
                &start.to_string(),
                "-t",
                "60",
                "-i",
                src,
            ])
            .args(["-ar", "44100", "-ac", "2"])
            .arg(&dst)
            .status()
            .context("running ffmpeg")?;
        if !status.success() {
            bail!("ffmpeg could not convert {src}");
        }
        out.push(dst);
    }
    Ok(out)
}

/// Where the peer of `bench mark-audio` comes from.
#[derive(Default)]
struct Peer<'a> {
    /// An audiowmark binary to use as it is.
    bin: Option<&'a str>,
    /// Where to clone its source from.
    source: Option<&'a str>,
}

fn bench_mark_audio(files: &[&str], config: EmbedConfig, peer: Peer) -> anyhow::Result<()> {
    let missing = tracecast_attack::tools_missing();
    if !missing.is_empty() {
        bail!("missing tools: {missing:?} (apt-get install lame vorbis-tools ffmpeg sox)");
    }
    let awm = audio_peer::audiowmark(peer.bin, peer.source)?;
    let tc = audio_peer::tracecast()?;
    let work = tempfile::tempdir()?;
    let tracks: Vec<PathBuf> = if files.is_empty() {
        default_tracks(work.path())?
    } else {
        files.iter().map(PathBuf::from).collect()
    };
    let key_bytes = *b"tracecast-bench-key-0123456789ab";
    let key = MarkKey::from_bytes(key_bytes);
    let key_file = work.path().join("bench.key");
    std::fs::write(&key_file, key_bytes)?;
    let awm_marked = whole_processes(&tracks, &tc, &awm, &key_file, work.path())?;
    let payload = Payload {
        content_server: 7,
        edge: 3,
        home: 12,
        user: 123_456,
    };
    let attacks = Attack::all();
    let mut table: Vec<Vec<String>> = vec![Vec::new(); attacks.len()];
    let mut awm_passed = vec![0usize; attacks.len()];
    // Short excerpts depend on where they are cut: try many places.
    const PLACES: u32 = 12;
    let sweeps = [5u32, 8];
    let mut sweep_table: Vec<Vec<String>> = vec![Vec::new(); sweeps.len()];
    let (mut embed_rt, mut detect_rt) = (Vec::new(), Vec::new());
    println!("tracecast audio mark benchmark (one core, release build)\n");
    println!(
        "{:<22} {:>7} {:>9} {:>12} {:>12}",
        "track", "secs", "SNR dB", "embed x RT", "detect x RT"
    );
    for (ti, track) in tracks.iter().enumerate() {
        let original = tracecast_media::decode_file(track, None)
            .with_context(|| format!("reading {}", track.display()))?;
        let secs = original.duration_secs();
        // Best of three runs: the least disturbed by the rest of the machine.
        let ((pcm, report), embed_s) = image_bench::best_of(3, || {
            let mut pcm = original.clone();
            let report = audio::embed(
                &mut pcm.channels,
                pcm.sample_rate,
                &key,
                &payload,
                &config,
                &mut |_, _| {},
            )?;
            Ok((pcm, report))
        })?;
        let marked = work.path().join(format!("marked{ti}.wav"));
        tracecast_media::encode_file(&pcm, &marked)?;
        // Detect on what a user would hold: the written file, decoded.
        let back = tracecast_media::decode_file(&marked, None)?;
        let (d, detect_s) = image_bench::best_of(3, || {
            Ok(audio::detect(
                &back.channels,
                back.sample_rate,
                &key,
                &mut |_, _| {},
            )?)
        })?;
        if d.payload != Some(payload) {
            bail!(
                "no mark read back from the unattacked copy of {}",
                track.display()
            );
        }
        embed_rt.push(secs / embed_s);
        detect_rt.push(secs / detect_s);
        let name = track.file_name().unwrap_or_default().to_string_lossy();
        println!(
            "{:<22} {:>7.1} {:>9.1} {:>12.0} {:>12.0}",
            name,
            secs,
            report.snr_db,
            secs / embed_s,
            secs / detect_s
        );
        let dir = work.path().join(format!("attacks{ti}"));
        std::fs::create_dir_all(&dir)?;
        for (ai, attack) in attacks.iter().enumerate() {
            let cell = match attack.apply(&marked, &dir) {
                Ok(path) => {
                    let pcm = tracecast_media::decode_file(&path, None)?;
                    let d = audio::detect(&pcm.channels, pcm.sample_rate, &key, &mut |_, _| {})?;
                    match d.payload {
                        Some(p) if p == payload => format!("ok {:.2}", d.confidence),
                        Some(_) => "WRONG".to_string(),
                        None => "miss".to_string(),
                    }
                }
                Err(e) => format!("error: {e}"),
            };
            table[ai].push(cell);
            let awm_dir = dir.join("audiowmark");
            std::fs::create_dir_all(&awm_dir)?;
            if let Ok(path) = attack.apply(&awm_marked[ti], &awm_dir) {
                // On every core: the table is about what reads back.
                let out = std::process::Command::new(&awm)
                    .arg("get")
                    .arg(&path)
                    .output()
                    .context("running audiowmark get")?;
                if audio_peer::audiowmark_found(&String::from_utf8_lossy(&out.stdout)) {
                    awm_passed[ai] += 1;
                }
            }
        }
        for (si, &len) in sweeps.iter().enumerate() {
            let mut ok = 0;
            for k in 0..PLACES {
                let room = (secs - f64::from(len) - 0.5).max(0.0);
                let at = (room * f64::from(k) / f64::from(PLACES) * 1000.0) as u32 + 137;
                let path = Attack::ExcerptAt(len, at).apply(&marked, &dir)?;
                let pcm = tracecast_media::decode_file(&path, None)?;
                let d = audio::detect(&pcm.channels, pcm.sample_rate, &key, &mut |_, _| {})?;
                if d.payload == Some(payload) {
                    ok += 1;
                }
            }
            sweep_table[si].push(format!("{ok}/{PLACES}"));
        }
    }
    let mean = |v: &[f64]| v.iter().sum::<f64>() / v.len().max(1) as f64;
    println!(
        "\nmean: embed {:.0}x real time (target 500x), detect {:.0}x real time (target 150x)",
        mean(&embed_rt),
        mean(&detect_rt)
    );
    println!("\nrobustness (exact payload recovered; 'ok' shows the coded-bit confidence)\n");
    print!("{:<28}", "attack");
    for i in 0..tracks.len() {
        print!(" {:>10}", format!("track {}", i + 1));
    }
    println!(" {:>11}", "audiowmark");
    let mut passed = 0;
    let mut total = 0;
    for ((attack, row), awm_ok) in attacks.iter().zip(&table).zip(&awm_passed) {
        print!("{:<28}", attack.name());
        for cell in row {
            total += 1;
            if cell.starts_with("ok") {
                passed += 1;
            }
            print!(" {cell:>10}");
        }
        println!(" {:>11}", format!("{awm_ok} of {}", tracks.len()));
    }
    for (len, row) in sweeps.iter().zip(&sweep_table) {
        print!("{:<28}", format!("excerpt {len} s, {PLACES} places"));
        for cell in row {
            print!(" {cell:>10}");
        }
        println!();
    }
    println!("\n{passed} of {total} attacked copies gave the exact payload");
    println!(
        "false-alarm bound per file: {:.1e} (at most {} tag checks of 28 bits)",
        audio::false_alarm_probability(),
        audio::MAX_TAG_CHECKS
    );
    println!(
        "audiowmark {}: its message found by `audiowmark get` (default key, no speed search)",
        audio_peer::AUDIOWMARK_TAG
    );
    Ok(())
}

/// Marks and reads every track with both programs as whole processes on
/// one core (best of three wall times, peak memory), and prints the
/// figures and ratios. Returns audiowmark's marked copies.
fn whole_processes(
    tracks: &[PathBuf],
    tc: &Path,
    awm: &Path,
    key: &Path,
    work: &Path,
) -> anyhow::Result<Vec<PathBuf>> {
    use audio_peer::{measure, snr_db, Run, AUDIOWMARK_MESSAGE};
    // Runs of each embed, taking turns with the peer's.
    const EMBED_ROUNDS: usize = 5;
    let key = key.to_string_lossy().into_owned();
    let ids = ["--content-server", "7", "--edge", "3", "--user", "123456"];
    println!(
        "whole processes, one core (taskset -c 0), best wall times of {EMBED_ROUNDS} turns (embed) and of 3 (detect); tracecast {} beside audiowmark {}\n",
        env!("CARGO_PKG_VERSION"),
        audio_peer::AUDIOWMARK_TAG
    );
    println!(
        "{:<20} {:>6} | {:>8} {:>8} {:>6} | {:>7} {:>7} | {:>8} | {:>8} {:>8} {:>6} | {:>6} {:>6}",
        "track",
        "secs",
        "tc emb",
        "awm emb",
        "ratio",
        "tc MiB",
        "awm MiB",
        "tc FLAC",
        "tc det",
        "awm det",
        "ratio",
        "tc SNR",
        "awm SNR"
    );
    let (mut embed_ratios, mut detect_ratios) = (Vec::new(), Vec::new());
    let mut marked = Vec::new();
    for (ti, track) in tracks.iter().enumerate() {
        let input = track.to_string_lossy().into_owned();
        let tc_wav = work
            .join(format!("tc{ti}.wav"))
            .to_string_lossy()
            .into_owned();
        let tc_flac = work
            .join(format!("tc{ti}.flac"))
            .to_string_lossy()
            .into_owned();
        let awm_wav = work.join(format!("awm{ti}.wav"));
        let awm_s = awm_wav.to_string_lossy().into_owned();
        let embed = |out: &str| {
            let mut a = vec!["-q", "mark", "embed", "--key", &key];
            a.extend(ids);
            a.extend([input.as_str(), out]);
            measure(1, tc, &a, true)
        };
        // The two programs' runs take turns, so a slow spell of a shared
        // machine falls on both rather than on whichever ran then.
        let (mut tc_embed, mut tc_flac_run, mut awm_embed) = (Run::NONE, Run::NONE, Run::NONE);
        for _ in 0..EMBED_ROUNDS {
            tc_embed.fold(embed(&tc_wav)?.0);
            awm_embed.fold(
                measure(
                    1,
                    awm,
                    &["add", "-q", &input, &awm_s, AUDIOWMARK_MESSAGE],
                    true,
                )?
                .0,
            );
            tc_flac_run.fold(embed(&tc_flac)?.0);
        }
        let (tc_detect, out) = measure(
            3,
            tc,
            &["-q", "mark", "detect", "--key", &key, "--json", &tc_wav],
            false,
        )?;
        if !out.contains("\"user\":123456") {
            bail!("tracecast read no mark back from its copy of {input}: {out}");
        }
        let (awm_detect, out) = measure(3, awm, &["get", &awm_s], false)?;
        if !audio_peer::audiowmark_found(&out) {
            bail!("audiowmark read no mark back from its copy of {input}: {out}");
        }
        let original = tracecast_media::decode_file(track, None)?;
        let tc_snr = snr_db(
            &original,
            &tracecast_media::decode_file(Path::new(&tc_wav), None)?,
        );
        let awm_snr = snr_db(&original, &tracecast_media::decode_file(&awm_wav, None)?);
        let embed_ratio = awm_embed.seconds / tc_embed.seconds;
        let detect_ratio = awm_detect.seconds / tc_detect.seconds;
        embed_ratios.push(embed_ratio);
        detect_ratios.push(detect_ratio);
        let name = track.file_name().unwrap_or_default().to_string_lossy();
        println!(
            "{:<20} {:>6.1} | {:>8.3} {:>8.3} {:>6.2} | {:>7.1} {:>7.1} | {:>8.3} | {:>8.3} {:>8.3} {:>6.1} | {:>6.1} {:>6.1}",
            name,
            original.duration_secs(),
            tc_embed.seconds,
            awm_embed.seconds,
            embed_ratio,
            tc_embed.peak_kib as f64 / 1024.0,
            awm_embed.peak_kib as f64 / 1024.0,
            tc_flac_run.seconds,
            tc_detect.seconds,
            awm_detect.seconds,
            detect_ratio,
            tc_snr,
            awm_snr
        );
        marked.push(awm_wav);
    }
    let mean = |v: &[f64]| v.iter().sum::<f64>() / v.len().max(1) as f64;
    println!(
        "\nembed speed, audiowmark's time / tracecast's: mean {:.2}x (target 1.5x); detect: mean {:.1}x",
        mean(&embed_ratios),
        mean(&detect_ratios)
    );
    println!("(emb, det: seconds to mark to WAV and to read; tc FLAC: tracecast marking to FLAC, which audiowmark does not write; MiB: peak resident memory of the embed)\n");
    Ok(marked)
}
