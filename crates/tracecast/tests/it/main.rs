//! End-to-end tests of the `tracecast` command line, of the audio mark
//! against attacks done with the real tools (lame, oggenc, ffmpeg, sox), and
//! of the image mark on real photos.

mod ab_audio;
mod attacks;
mod cli;
mod console;
mod delivery;
mod mailbox_cli;
mod mailbox_crash;
mod members;
mod picture_false_alarm;
mod pictures;
mod production;
mod protect;
mod share;
mod sites;
mod video;
mod worst_files;

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

pub use tracecast_attack::picture::PHOTOS;

/// A photo scaled down so its shorter side is `short_side` pixels.
pub fn photo(path: &str, short_side: u32) -> tracecast_media::DynamicImage {
    let img = tracecast_media::read_picture(Path::new(path))
        .unwrap_or_else(|e| panic!("{path}: {e} (apt-get install mate-backgrounds; .ci/run does)"));
    let f = short_side as f32 / img.width().min(img.height()) as f32;
    if f >= 1.0 {
        return img;
    }
    img.resize_exact(
        (img.width() as f32 * f).round() as u32,
        (img.height() as f32 * f).round() as u32,
        image::imageops::FilterType::CatmullRom,
    )
}
