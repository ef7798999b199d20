//! audiowmark beside tracecast, as whole processes: the peer is built from
//! its public source in the benchmark's set-up (it is not in Debian), and
//! both programs mark and read the same files on one core under
//! `/usr/bin/time`.

use std::path::{Path, PathBuf};
use std::process::Command;

use anyhow::{bail, Context};

/// The release of audiowmark compared against.
pub const AUDIOWMARK_TAG: &str = "0.6.5";
/// Where its source is cloned from unless `--audiowmark-src` says.
pub const AUDIOWMARK_SOURCE: &str = "https://github.com/swesterfeld/audiowmark";
/// The 128-bit message audiowmark writes (its payload size).
pub const AUDIOWMARK_MESSAGE: &str = "0123456789abcdef0123456789abcdef";

fn root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("..")
}

fn run(cmd: &mut Command, what: &str) -> anyhow::Result<()> {
    let out = cmd.output().with_context(|| format!("running {what}"))?;
    if !out.status.success() {
        bail!(
            "{what} failed: {}",
            String::from_utf8_lossy(&out.stderr)
                .lines()
                .rev()
                .take(8)
                .collect::<Vec<_>>()
                .join("\n")
        );
    }
    Ok(())
}

/// The audiowmark binary: `bin` if given, else built once from `source`
/// (a git URL or path) at [`AUDIOWMARK_TAG`] into `target/peers`.
pub fn audiowmark(bin: Option<&str>, source: Option<&str>) -> anyhow::Result<PathBuf> {
    if let Some(b) = bin {
        return Ok(PathBuf::from(b));
    }
    let dir = root().join(format!("target/peers/audiowmark-{AUDIOWMARK_TAG}"));
    let built = dir.join("src/audiowmark");
    if built.exists() {
        return Ok(built);
    }
    let source = source.unwrap_or(AUDIOWMARK_SOURCE);
    eprintln!(
        "building audiowmark {AUDIOWMARK_TAG} from {source} (once, into {})",
        dir.display()
    );
    if dir.exists() {
        std::fs::remove_dir_all(&dir)?;
    }
    std::fs::create_dir_all(dir.parent().expect("has a parent"))?;
    run(
        Command::new("git").args(["clone", "-q", source]).arg(&dir),
        "git clone",
    )?;
    run(
        Command::new("git")
            .arg("-C")
            .arg(&dir)
            .args(["checkout", "-q", AUDIOWMARK_TAG]),
        "git checkout",
    )?;
    let hint = "apt-get install autoconf automake libtool pkg-config g++ libfftw3-dev \
                libsndfile1-dev libgcrypt20-dev libzita-resampler-dev libmpg123-dev";
    run(
        Command::new("sh").arg("autogen.sh").current_dir(&dir),
        &format!("audiowmark's configure ({hint})"),
    )?;
    run(
        Command::new("make").args(["-j2"]).current_dir(&dir),
        &format!("building audiowmark ({hint})"),
    )?;
    if !built.exists() {
        bail!("the build left no {}", built.display());
    }
    Ok(built)
}

/// The tracecast binary, built as a user builds it.
pub fn tracecast() -> anyhow::Result<PathBuf> {
    let status = Command::new(env!("CARGO"))
        .args(["build", "--release", "-q", "-p", "tracecast"])
        .current_dir(root())
        .status()?;
    if !status.success() {
        bail!("building tracecast failed");
    }
    Ok(root().join("target/release/tracecast"))
}

/// One run of a whole process.
#[derive(Debug, Clone, Copy)]
pub struct Run {
    pub seconds: f64,
    pub peak_kib: u64,
}

impl Run {
    /// No run yet: [`Run::fold`] takes the first as it is.
    pub const NONE: Run = Run {
        seconds: f64::INFINITY,
        peak_kib: 0,
    };

    /// The fastest wall time and the largest peak memory of both.
    pub fn fold(&mut self, other: Run) {
        self.seconds = self.seconds.min(other.seconds);
        self.peak_kib = self.peak_kib.max(other.peak_kib);
    }
}

/// Runs `program args` pinned to one core under `/usr/bin/time`, `n`
/// times: the fastest wall time and the largest peak resident memory.
/// With `must_succeed`, a failing run is an error (detection exits 1 when
/// it finds nothing).
pub fn measure(
    n: usize,
    program: &Path,
    args: &[&str],
    must_succeed: bool,
) -> anyhow::Result<(Run, String)> {
    let mut best = Run::NONE;
    let mut stdout = String::new();
    for _ in 0..n {
        // The wall time to the millisecond (`/usr/bin/time` gives 10 ms);
        // taskset and time are the same small overhead for both programs.
        let started = std::time::Instant::now();
        let out = Command::new("taskset")
            .args(["-c", "0", "/usr/bin/time", "-f", "tcbench %e %M"])
            .arg(program)
            .args(args)
            .output()
            .context("taskset and /usr/bin/time (apt-get install util-linux time)")?;
        let seconds = started.elapsed().as_secs_f64();
        let stderr = String::from_utf8_lossy(&out.stderr);
        if must_succeed && !out.status.success() {
            bail!("{} {args:?} failed: {stderr}", program.display());
        }
        let line = stderr
            .lines()
            .rev()
            .find_map(|l| l.strip_prefix("tcbench "))
            .with_context(|| format!("no timing from /usr/bin/time in {stderr}"))?;
        let peak_kib: u64 = line
            .split_whitespace()
            .nth(1)
            .context("peak memory")?
            .parse()?;
        best.fold(Run { seconds, peak_kib });
        stdout = String::from_utf8_lossy(&out.stdout).into_owned();
    }
    Ok((best, stdout))
}

/// Signal-to-noise ratio of `marked` against `original`, in dB, over the
/// samples both hold.
pub fn snr_db(original: &tracecast_media::Pcm, marked: &tracecast_media::Pcm) -> f64 {
    let (mut signal, mut noise) = (0f64, 0f64);
    for (a, b) in original.channels.iter().zip(&marked.channels) {
        for (x, y) in a.iter().zip(b) {
            signal += f64::from(*x) * f64::from(*x);
            noise += (f64::from(*y) - f64::from(*x)).powi(2);
        }
    }
    10.0 * (signal / noise.max(1e-30)).log10()
}

/// Whether audiowmark's `get` output names our message.
pub fn audiowmark_found(stdout: &str) -> bool {
    stdout
        .lines()
        .any(|l| l.starts_with("pattern") && l.contains(AUDIOWMARK_MESSAGE))
}
