//! `cargo run --release -p xtask -- fuzz [--seconds N] [TARGET...]`: runs
//! every fuzz target (fuzz/) under libFuzzer for a bounded time each, on
//! the stable toolchain (cargo-fuzz with `--sanitizer none`; installed
//! with `cargo install cargo-fuzz` if missing), and prints what each did.
//! New inputs go to target/fuzz/corpus (the kept seeds stay as they are);
//! a crash leaves its input in fuzz/artifacts/<target>/ and fails the run.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Instant;

use anyhow::{bail, Context};

pub struct Options {
    pub seconds: u64,
    pub targets: Vec<String>,
}

pub fn parse(args: &[&str]) -> anyhow::Result<Options> {
    let mut o = Options {
        seconds: 60,
        targets: Vec::new(),
    };
    let mut it = args.iter();
    while let Some(a) = it.next() {
        match *a {
            "--seconds" => o.seconds = it.next().context("--seconds N")?.parse()?,
            t if !t.starts_with('-') => o.targets.push(t.to_owned()),
            other => bail!("unknown option {other}"),
        }
    }
    Ok(o)
}

fn root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("..")
}

/// The targets fuzz/Cargo.toml declares.
fn declared() -> anyhow::Result<Vec<String>> {
    let text = std::fs::read_to_string(root().join("fuzz/Cargo.toml"))?;
    Ok(text
        .lines()
        .filter_map(|l| l.strip_prefix("name = \""))
        .filter_map(|l| l.strip_suffix('"'))
        .filter(|n| *n != "tracecast-fuzz-targets")
        .map(str::to_owned)
        .collect())
}

fn cargo_fuzz_installed() -> bool {
    Command::new("cargo")
        .args(["fuzz", "--version"])
        .output()
        .is_ok_and(|o| o.status.success())
}

pub fn run(o: &Options) -> anyhow::Result<()> {
    let all = declared()?;
    let targets = if o.targets.is_empty() {
        all.clone()
    } else {
        for t in &o.targets {
            if !all.contains(t) {
                bail!("no fuzz target {t}; the targets are {}", all.join(", "));
            }
        }
        o.targets.clone()
    };
    if !cargo_fuzz_installed() {
        eprintln!("installing cargo-fuzz (cargo install cargo-fuzz --locked)");
        let ok = Command::new("cargo")
            .args(["install", "cargo-fuzz", "--locked"])
            .status()?
            .success();
        if !ok {
            bail!("cargo install cargo-fuzz failed");
        }
    }
    let root = root();
    let target_dir = root.join("target/fuzz");
    eprintln!(
        "building {} fuzz targets (stable toolchain, no sanitizer)",
        targets.len()
    );
    let started = Instant::now();
    let ok = Command::new("cargo")
        .current_dir(&root)
        .args(["fuzz", "build", "--sanitizer", "none", "--target-dir"])
        .arg(&target_dir)
        .status()?
        .success();
    if !ok {
        bail!("cargo fuzz build failed");
    }
    eprintln!("built in {:.0} s", started.elapsed().as_secs_f64());
    let mut rows = Vec::new();
    let mut crashed = Vec::new();
    for t in &targets {
        let work = target_dir.join("corpus").join(t);
        std::fs::create_dir_all(&work)?;
        let seeds = root.join("fuzz/corpus").join(t);
        let artifacts = root.join("fuzz/artifacts").join(t);
        std::fs::create_dir_all(&artifacts)?;
        let started = Instant::now();
        let out = Command::new("cargo")
            .current_dir(&root)
            .args(["fuzz", "run", "--sanitizer", "none", "--target-dir"])
            .arg(&target_dir)
            .arg(t)
            .arg(&work)
            .arg(&seeds)
            .arg("--")
            .arg(format!("-max_total_time={}", o.seconds))
            .arg(format!("-artifact_prefix={}/", artifacts.display()))
            .arg("-rss_limit_mb=2048")
            .arg("-max_len=65536")
            .arg("-timeout=20")
            .arg("-print_final_stats=1")
            .output()?;
        let secs = started.elapsed().as_secs_f64();
        let log = String::from_utf8_lossy(&out.stderr);
        let stat = |name: &str| {
            log.lines()
                .find_map(|l| l.strip_prefix(&format!("stat::{name}:")))
                .map(|v| v.trim().to_owned())
                .unwrap_or_else(|| "?".into())
        };
        let runs = stat("number_of_executed_units");
        let rss = stat("peak_rss_mb");
        let corpus = std::fs::read_dir(&work).map(|d| d.count()).unwrap_or(0);
        let outcome = if out.status.success() {
            "clean".to_owned()
        } else {
            crashed.push(t.clone());
            std::fs::write(target_dir.join(format!("{t}.log")), log.as_bytes())?;
            let line = log
                .lines()
                .find(|l| l.contains("panicked at") || l.contains("ERROR: libFuzzer"))
                .unwrap_or("failed")
                .trim()
                .to_owned();
            format!("CRASH: {line}")
        };
        println!("{t:<22} {secs:>6.0} s  {runs:>10} runs  corpus {corpus:>5}  peak {rss:>5} MB  {outcome}");
        rows.push(t.clone());
    }
    if !crashed.is_empty() {
        bail!(
            "{} of {} targets crashed ({}); inputs are in fuzz/artifacts/, logs in target/fuzz/",
            crashed.len(),
            rows.len(),
            crashed.join(", ")
        );
    }
    println!("{} targets, {} s each, no crash", rows.len(), o.seconds);
    Ok(())
}
