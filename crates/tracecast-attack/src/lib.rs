//! The attacks a leaked copy may have gone through, done with the real tools
//! where they exist (lame, oggenc, ffmpeg, sox from Debian) and in code
//! otherwise (white noise), and attacks on pictures ([`picture`]). Used by
//! the mark tests and by `xtask bench`.
//!
//! Every attack reads a WAV file and writes a file that
//! `tracecast_media::decode_file` can read (MP3, Ogg, M4A or WAV).

pub mod picture;

use std::path::{Path, PathBuf};
use std::process::Command;

use rand::SeedableRng;
use rand_chacha::ChaCha8Rng;

/// Errors running an attack.
#[derive(Debug, thiserror::Error)]
pub enum AttackError {
    #[error("{tool} is not installed (apt-get install {package}); .ci/run installs it")]
    Missing {
        tool: &'static str,
        package: &'static str,
    },
    #[error("{0} failed: {1}")]
    Failed(String, String),
    #[error(transparent)]
    Media(#[from] tracecast_media::MediaError),
    #[error(transparent)]
    Io(#[from] std::io::Error),
}

/// One attack.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Attack {
    /// MP3 (lame CBR) at kbit/s.
    Mp3(u32),
    /// MP3 at the first rate, decoded and encoded again at the second.
    Mp3Twice(u32, u32),
    /// Ogg Vorbis at an oggenc quality (-1..10).
    Vorbis(i32),
    /// AAC (ffmpeg's encoder) at kbit/s, in M4A.
    Aac(u32),
    /// Resample to this rate and back (sox).
    Resample(u32),
    /// Volume change in dB (sox; positive values clip).
    Volume(i32),
    /// White Gaussian noise at this SNR in dB (in code).
    Noise(u32),
    /// Mono downmix (ffmpeg).
    Mono,
    /// Cut away the first seconds (sox).
    CutStart(u32),
    /// Keep only an excerpt of this many seconds from an odd place (sox).
    Excerpt(u32),
    /// An excerpt of `.0` seconds starting at `.1` milliseconds (sox).
    ExcerptAt(u32, u32),
    /// Speed change, pitch with it, as resampling (sox speed), in percent.
    Speed(i32),
    /// Tempo change with pitch kept (sox tempo, WSOLA), in percent.
    Tempo(i32),
    /// Pitch shift with tempo kept (sox pitch), in cents.
    Pitch(i32),
}

impl Attack {
    /// The attacks of the mark engine issue, in table order.
    pub fn all() -> Vec<Attack> {
        use Attack::*;
        vec![
            Mp3(128),
            Mp3(64),
            Mp3(48),
            Mp3(32),
            Mp3Twice(128, 64),
            Vorbis(0),
            Vorbis(-1),
            Aac(64),
            Resample(22_050),
            Volume(-6),
            Volume(6),
            Noise(35),
            Noise(20),
            Mono,
            CutStart(10),
            Excerpt(30),
            Excerpt(15),
            Excerpt(8),
            Excerpt(5),
            Speed(2),
            Speed(5),
            Speed(-3),
            Tempo(5),
            Tempo(-5),
            Pitch(50),
            Pitch(-50),
        ]
    }

    /// A short name for tables.
    pub fn name(&self) -> String {
        match self {
            Attack::Mp3(b) => format!("mp3 {b}k"),
            Attack::Mp3Twice(a, b) => format!("mp3 {a}k then {b}k"),
            Attack::Vorbis(q) => format!("vorbis q{q}"),
            Attack::Aac(b) => format!("aac {b}k"),
            Attack::Resample(r) => format!("resample {r} and back"),
            Attack::Volume(v) => format!("volume {v:+} dB"),
            Attack::Noise(s) => format!("white noise {s} dB SNR"),
            Attack::Mono => "mono downmix".into(),
            Attack::CutStart(s) => format!("cut first {s} s"),
            Attack::Excerpt(s) => format!("excerpt {s} s"),
            Attack::ExcerptAt(s, at) => {
                format!("excerpt {s} s at {:.1} s", f64::from(*at) / 1000.0)
            }
            Attack::Speed(p) => format!("speed {p:+}%"),
            Attack::Tempo(p) => format!("tempo {p:+}% (pitch kept)"),
            Attack::Pitch(c) => format!("pitch {c:+} cents (tempo kept)"),
        }
    }

    /// Applies the attack to `input` (WAV), writing into `dir`; returns the
    /// attacked file.
    pub fn apply(&self, input: &Path, dir: &Path) -> Result<PathBuf, AttackError> {
        let slug: String = self
            .name()
            .chars()
            .map(|c| if c.is_ascii_alphanumeric() { c } else { '_' })
            .collect();
        let out = |ext: &str| dir.join(format!("{slug}.{ext}"));
        let p = |x: &Path| x.to_string_lossy().into_owned();
        match *self {
            Attack::Mp3(b) => {
                let o = out("mp3");
                run(
                    "lame",
                    "lame",
                    &["--quiet", "-b", &b.to_string(), &p(input), &p(&o)],
                )?;
                Ok(o)
            }
            Attack::Mp3Twice(a, b) => {
                let first = dir.join(format!("{slug}.first.mp3"));
                run(
                    "lame",
                    "lame",
                    &["--quiet", "-b", &a.to_string(), &p(input), &p(&first)],
                )?;
                let o = out("mp3");
                run(
                    "lame",
                    "lame",
                    &[
                        "--quiet",
                        "--mp3input",
                        "-b",
                        &b.to_string(),
                        &p(&first),
                        &p(&o),
                    ],
                )?;
                Ok(o)
            }
            Attack::Vorbis(q) => {
                let o = out("ogg");
                run(
                    "oggenc",
                    "vorbis-tools",
                    &["-Q", "-q", &q.to_string(), "-o", &p(&o), &p(input)],
                )?;
                Ok(o)
            }
            Attack::Aac(b) => {
                let o = out("m4a");
                ffmpeg(&[
                    "-i",
                    &p(input),
                    "-c:a",
                    "aac",
                    "-b:a",
                    &format!("{b}k"),
                    &p(&o),
                ])?;
                Ok(o)
            }
            Attack::Resample(r) => {
                let mid = dir.join(format!("{slug}.low.wav"));
                let rate = probe_rate(input)?;
                run("sox", "sox", &[&p(input), &p(&mid), "rate", &r.to_string()])?;
                let o = out("wav");
                run("sox", "sox", &[&p(&mid), &p(&o), "rate", &rate.to_string()])?;
                Ok(o)
            }
            Attack::Volume(db) => {
                let o = out("wav");
                run(
                    "sox",
                    "sox",
                    &["-q", &p(input), &p(&o), "vol", &format!("{db}dB")],
                )?;
                Ok(o)
            }
            Attack::Noise(snr) => {
                let mut pcm = tracecast_media::decode_file(input, None)?;
                add_noise(&mut pcm.channels, f64::from(snr), 0x5eed);
                let o = out("wav");
                tracecast_media::encode_file(&pcm, &o)?;
                Ok(o)
            }
            Attack::Mono => {
                let o = out("wav");
                ffmpeg(&["-i", &p(input), "-ac", "1", &p(&o)])?;
                Ok(o)
            }
            Attack::CutStart(s) => {
                let o = out("wav");
                run("sox", "sox", &[&p(input), &p(&o), "trim", &s.to_string()])?;
                Ok(o)
            }
            Attack::Excerpt(s) => Attack::ExcerptAt(s, 13_370).apply(input, dir),
            Attack::ExcerptAt(s, at) => {
                let o = out("wav");
                let start = format!("{:.3}", f64::from(at) / 1000.0);
                run(
                    "sox",
                    "sox",
                    &[&p(input), &p(&o), "trim", &start, &s.to_string()],
                )?;
                Ok(o)
            }
            Attack::Speed(pct) => {
                let o = out("wav");
                let f = 1.0 + f64::from(pct) / 100.0;
                run("sox", "sox", &[&p(input), &p(&o), "speed", &format!("{f}")])?;
                Ok(o)
            }
            Attack::Tempo(pct) => {
                let o = out("wav");
                let f = 1.0 + f64::from(pct) / 100.0;
                run("sox", "sox", &[&p(input), &p(&o), "tempo", &format!("{f}")])?;
                Ok(o)
            }
            Attack::Pitch(cents) => {
                let o = out("wav");
                run(
                    "sox",
                    "sox",
                    &[&p(input), &p(&o), "pitch", &cents.to_string()],
                )?;
                Ok(o)
            }
        }
    }
}

/// Adds white Gaussian noise at `snr_db` below the signal's power.
pub fn add_noise(channels: &mut [Vec<f32>], snr_db: f64, seed: u64) {
    use rand::Rng;
    let n: usize = channels.iter().map(Vec::len).sum();
    let power: f64 = channels
        .iter()
        .flat_map(|c| c.iter())
        .map(|&s| f64::from(s) * f64::from(s))
        .sum::<f64>()
        / n.max(1) as f64;
    let sigma = (power / 10f64.powf(snr_db / 10.0)).sqrt();
    let mut rng = ChaCha8Rng::seed_from_u64(seed);
    for c in channels {
        for s in c.iter_mut() {
            // Box-Muller.
            let u1: f64 = rng.gen_range(f64::MIN_POSITIVE..1.0);
            let u2: f64 = rng.gen();
            let g = (-2.0 * u1.ln()).sqrt() * (std::f64::consts::TAU * u2).cos();
            *s += (g * sigma) as f32;
        }
    }
}

fn probe_rate(path: &Path) -> Result<u32, AttackError> {
    Ok(tracecast_media::decode_file(path, None)?.sample_rate)
}

fn ffmpeg(args: &[&str]) -> Result<(), AttackError> {
    let mut full = vec!["-v", "error", "-y", "-nostdin"];
    full.extend_from_slice(args);
    run("ffmpeg", "ffmpeg", &full)
}

fn run(tool: &'static str, package: &'static str, args: &[&str]) -> Result<(), AttackError> {
    let out = match Command::new(tool).args(args).output() {
        Ok(o) => o,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            return Err(AttackError::Missing { tool, package })
        }
        Err(e) => return Err(e.into()),
    };
    if !out.status.success() {
        return Err(AttackError::Failed(
            format!("{tool} {}", args.join(" ")),
            String::from_utf8_lossy(&out.stderr).trim().to_owned(),
        ));
    }
    Ok(())
}

/// Whether every tool the attacks need is installed.
pub fn tools_missing() -> Vec<&'static str> {
    ["lame", "oggenc", "ffmpeg", "sox"]
        .into_iter()
        .filter(|t| {
            Command::new(t)
                .arg("--help")
                .output()
                .map(|_| false)
                .unwrap_or(true)
        })
        .collect()
}
