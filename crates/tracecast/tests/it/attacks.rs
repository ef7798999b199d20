//! Every attack of the mark engine issue, done with the real tools, on real
//! music from a Debian package (asc-music) and on generated music. `.ci/run`
//! installs the tools and the music.

use std::path::{Path, PathBuf};

use tracecast_attack::Attack;
use tracecast_mark::audio::{self, EmbedConfig};
use tracecast_mark::{MarkKey, Payload};

const BUYER: Payload = Payload {
    content_server: 7,
    edge: 3,
    home: 12,
    user: 123_456,
};

const REAL_MUSIC: &str = "/usr/share/games/asc/music/frontiers.mp3";

fn key() -> MarkKey {
    MarkKey::from_bytes(*b"tracecast attack test key 32 by.")
}

/// Marks `pcm`, writes it as WAV in `dir`, and runs every attack on it.
/// Returns the attacks that lost the payload.
fn failures_on(pcm: tracecast_media::Pcm, dir: &Path) -> Vec<String> {
    let mut pcm = pcm;
    let report = audio::embed(
        &mut pcm.channels,
        pcm.sample_rate,
        &key(),
        &BUYER,
        &EmbedConfig::default(),
        &mut |_, _| {},
    )
    .unwrap();
    assert!(report.snr_db > 28.0, "SNR {:.1} dB", report.snr_db);
    let marked = dir.join("marked.wav");
    tracecast_media::encode_file(&pcm, &marked).unwrap();
    let mut failed = Vec::new();
    for attack in Attack::all() {
        let path = attack
            .apply(&marked, dir)
            .unwrap_or_else(|e| panic!("{}: {e}", attack.name()));
        let back = tracecast_media::decode_file(&path, None).unwrap();
        let d = audio::detect(&back.channels, back.sample_rate, &key(), &mut |_, _| {}).unwrap();
        if d.payload != Some(BUYER) {
            failed.push(format!("{} (found {:?})", attack.name(), d.payload));
        }
    }
    failed
}

fn real_music(dir: &Path) -> PathBuf {
    assert!(
        Path::new(REAL_MUSIC).exists(),
        "{REAL_MUSIC} is missing: apt-get install asc-music (.ci/run does)"
    );
    let wav = dir.join("real.wav");
    let status = std::process::Command::new("ffmpeg")
        .args([
            "-v", "error", "-y", "-nostdin", "-ss", "30", "-t", "45", "-i", REAL_MUSIC, "-ar",
            "44100", "-ac", "2",
        ])
        .arg(&wav)
        .status()
        .expect("ffmpeg runs (apt-get install ffmpeg)");
    assert!(status.success());
    wav
}

#[test]
fn every_attack_keeps_the_exact_payload() {
    let missing = tracecast_attack::tools_missing();
    assert!(
        missing.is_empty(),
        "missing tools {missing:?}: run .ci/run or apt-get install lame vorbis-tools ffmpeg sox"
    );
    let real_dir = tempfile::tempdir().unwrap();
    let synth_dir = tempfile::tempdir().unwrap();
    let real = tracecast_media::decode_file(&real_music(real_dir.path()), None).unwrap();
    let synth = tracecast_media::synth::music(45.0, 44_100, 21);
    let (a, b) = std::thread::scope(|s| {
        let a = s.spawn(|| failures_on(real, real_dir.path()));
        let b = s.spawn(|| failures_on(synth, synth_dir.path()));
        (a.join().unwrap(), b.join().unwrap())
    });
    assert!(
        a.is_empty() && b.is_empty(),
        "real music lost: {a:?}; generated music lost: {b:?}"
    );
}
