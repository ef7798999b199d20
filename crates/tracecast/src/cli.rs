//! Command-line grammar.

use std::path::PathBuf;

use clap::{Args, Parser, Subcommand};

/// tracecast: content distribution where every copy carries a keyed,
/// invisible mark of its recipient.
#[derive(Debug, Parser)]
#[command(name = "tracecast", version, about)]
pub struct Cli {
    /// No progress bars or chatter (for scripts).
    #[arg(long, short, global = true)]
    pub quiet: bool,
    #[command(subcommand)]
    pub command: Command,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Write a new random 32-byte mark key.
    Keygen(KeygenArgs),
    /// Embed or detect forensic marks.
    #[command(subcommand)]
    Mark(MarkCommand),
    /// Watch the whole mark pipeline on generated music: key, embed, attack,
    /// detect.
    Demo(DemoArgs),
}

#[derive(Debug, Args)]
pub struct KeygenArgs {
    /// Where to write the key (created with mode 0600; never overwritten).
    #[arg(long)]
    pub out: PathBuf,
}

#[derive(Debug, Subcommand)]
pub enum MarkCommand {
    /// Mark a copy for its recipient.
    Embed(EmbedArgs),
    /// Look for a mark and print who received the copy.
    Detect(DetectArgs),
}

#[derive(Debug, Args)]
pub struct EmbedArgs {
    /// Mark key file (from `tracecast keygen`).
    #[arg(long)]
    pub key: PathBuf,
    /// Content server id (0-65535).
    #[arg(long)]
    pub content_server: u16,
    /// Delivery (edge) server id (0-65535).
    #[arg(long)]
    pub edge: u16,
    /// Recipient user id (0-4294967295).
    #[arg(long)]
    pub user: u32,
    /// Home server id (0 = none).
    #[arg(long, default_value_t = 0)]
    pub home: u16,
    /// Mark strength relative to the default (0.25-4): higher survives
    /// harsher attacks and shorter excerpts at a lower signal-to-noise ratio
    /// (for pictures, PSNR drops by 20·log10(strength) dB).
    #[arg(long, default_value_t = 1.0, value_parser = parse_strength)]
    pub strength: f32,
    /// Quality of JPEG output (1-100).
    #[arg(long, default_value_t = tracecast_media::DEFAULT_JPEG_QUALITY, value_parser = clap::value_parser!(u8).range(1..=100))]
    pub quality: u8,
    /// Input media: WAV, FLAC, MP3, Ogg Vorbis, AAC (M4A); or a PNG or JPEG
    /// picture.
    pub input: PathBuf,
    /// Output: .wav or .flac for audio (same sample rate and channels as the
    /// input); .png, .jpg or .jpeg for a picture.
    pub output: PathBuf,
}

#[derive(Debug, Args)]
pub struct DetectArgs {
    /// Mark key file.
    #[arg(long)]
    pub key: PathBuf,
    /// Print one JSON line instead of text.
    #[arg(long)]
    pub json: bool,
    /// The suspected copy.
    pub file: PathBuf,
}

#[derive(Debug, Args)]
pub struct DemoArgs {
    /// Where the demo writes its files.
    #[arg(long, default_value = "tracecast-data/demo")]
    pub dir: PathBuf,
    /// Use this audio file instead of generated music.
    #[arg(long)]
    pub input: Option<PathBuf>,
}

fn parse_strength(s: &str) -> Result<f32, String> {
    let v: f32 = s.parse().map_err(|_| format!("{s:?} is not a number"))?;
    if (0.25..=4.0).contains(&v) {
        Ok(v)
    } else {
        Err(format!("strength {v} is outside 0.25-4"))
    }
}
