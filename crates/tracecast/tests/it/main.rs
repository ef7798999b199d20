//! End-to-end tests of the `tracecast` command line, and of the audio mark
//! against attacks done with the real tools (lame, oggenc, ffmpeg, sox).

mod attacks;
mod cli;

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

pub fn tracecast(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_tracecast"))
        .args(args)
        .output()
        .expect("the tracecast binary runs")
}

pub fn p(path: &Path) -> &str {
    path.to_str().expect("test paths are UTF-8")
}

/// A 20-second generated music WAV in `dir`.
pub fn music_wav(dir: &Path, seconds: f32) -> PathBuf {
    let path = dir.join("music.wav");
    let pcm = tracecast_media::synth::music(seconds, 44_100, 11);
    tracecast_media::encode_file(&pcm, &path).unwrap();
    path
}
