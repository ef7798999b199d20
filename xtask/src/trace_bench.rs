//! `bench trace`: how long the origin takes to name the buyer of a leaked
//! A/B copy that nothing names the content of (a WAV or MP3 with no
//! metadata), against the same trace with the content named, as the
//! catalog grows to `--catalog` A/B works.
//!
//! One origin and edge (SQLite, in this process, as `tracecast serve`
//! runs them). A generated track is ingested with A/B variants and bought
//! by two buyers; their FLAC copies are decoded into a bare WAV (one
//! buyer's), an MP3 of it made by ffmpeg, and a WAV mixing both buyers'
//! copies unit by unit. Each is traced through the HTTP API by the
//! provider, with and without the content named, first with the real
//! catalog and again after the catalog is filled to `--catalog` works of
//! 1 to 10 minutes (rows of their own in the store: tracing reads only
//! their lengths and buyers), some of exactly the track's length.

use std::path::Path;
use std::time::Instant;

use anyhow::Context;
use tracecast_client::{ContentOptions, EdgeClient, OriginClient};
use tracecast_delivery::{ContentKind, Tier};
use tracecast_store::{AbFlacRecord, AbVariantsRecord, NewContent, ProviderId};

use crate::edge_bench::Bench;

#[derive(clap::Parser)]
pub struct Options {
    /// The track's length, in seconds.
    #[arg(long, default_value_t = 180.0)]
    pub seconds: f32,
    /// A/B works in the catalog for the second round.
    #[arg(long, default_value_t = 10_000)]
    pub catalog: usize,
}

pub fn parse(args: &[&str]) -> anyhow::Result<Options> {
    Ok(crate::options("trace", args))
}

pub fn run(o: &Options) -> anyhow::Result<()> {
    tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()?
        .block_on(bench(o))
}

async fn bench(o: &Options) -> anyhow::Result<()> {
    let bench = Bench::start(2).await?;
    bench.edge_alive().await?;
    let dir = bench.dir.path().to_owned();
    eprintln!(
        "making a {:.0}-second track and ingesting it with A/B variants...",
        o.seconds
    );
    let src = dir.join("track.wav");
    tracecast_media::encode_file(&tracecast_media::synth::music(o.seconds, 44_100, 31), &src)?;
    let content = bench
        .provider
        .add_content_with(
            &src,
            &ContentOptions {
                title: "Traced Etude",
                price_cents: 100,
                marking: tracecast_delivery::ab::Marking::Ab,
                ..ContentOptions::default()
            },
            |_, _| {},
        )
        .await?;
    let units = content
        .renditions
        .iter()
        .find(|r| r.tier == Tier::High)
        .and_then(|r| r.ab.as_ref())
        .context("no A/B variants")?
        .geometry
        .units;

    // Two buyers' copies, decoded.
    let edge = EdgeClient::new()?;
    let mut decoded = Vec::new();
    for (i, user) in bench.users.iter().enumerate() {
        let p = user.purchase(content.id, Some(Tier::High), &[]).await?;
        let copy = edge.deliver(&p.edge_address, &p.ticket).await?;
        let out = dir.join(format!("copy-{i}.flac"));
        edge.download(&copy, &out, &|_, _| {}).await?;
        decoded.push(tracecast_media::decode_file(&out, None)?);
    }
    let bare = dir.join("leak.wav");
    tracecast_media::encode_file(&decoded[0], &bare)?;
    let mp3 = dir.join("leak.mp3");
    let ok = std::process::Command::new("ffmpeg")
        .args(["-v", "error", "-y", "-i"])
        .arg(&bare)
        .args(["-map_metadata", "-1", "-b:a", "192k"])
        .arg(&mp3)
        .status()
        .context("ffmpeg (apt-get install ffmpeg)")?;
    anyhow::ensure!(ok.success(), "ffmpeg failed");
    // Each unit from one buyer or the other at random: their payloads'
    // bits mixed too, so the copy's payload rarely verifies and every
    // length in the catalog is tried.
    let mut mixed = decoded[0].clone();
    let mut state = 0x9E37_79B9_7F4A_7C15u64;
    for u in 0..units as usize {
        state ^= state << 13;
        state ^= state >> 7;
        state ^= state << 17;
        if state & 1 == 0 {
            continue;
        }
        use tracecast_mark::audio::ab::unit_start;
        let (s, e) = (unit_start(u), unit_start(u + 1).min(mixed.frames()));
        for (m, b) in mixed.channels.iter_mut().zip(&decoded[1].channels) {
            m[s..e].copy_from_slice(&b[s..e]);
        }
    }
    let mix = dir.join("mix.wav");
    tracecast_media::encode_file(&mixed, &mix)?;

    println!(
        "\ntrace bench: a {:.0}-second A/B track ({units} units), traced by its provider over HTTP",
        o.seconds
    );
    println!(
        "{:>8} | {:<24} | {:>9} | {:>9} | {:>7} | found",
        "catalog", "leak", "named s", "unnamed s", "ratio"
    );
    let leaks = [
        ("one buyer, WAV", bare.as_path()),
        ("one buyer, MP3 192k", mp3.as_path()),
        ("two buyers mixed, WAV", mix.as_path()),
    ];
    round(&bench.provider, content.id, 2, &leaks).await?;

    eprintln!("filling the catalog to {} A/B works...", o.catalog);
    let t = Instant::now();
    let provider = ProviderId(content.provider_id);
    fill_catalog(&bench, provider, o.catalog.saturating_sub(2), units).await?;
    eprintln!("  took {:.1} s", t.elapsed().as_secs_f64());
    round(&bench.provider, content.id, o.catalog.max(2), &leaks).await?;
    Ok(())
}

/// Traces each leak named and unnamed, and prints the times.
async fn round(
    provider: &OriginClient,
    content: i64,
    catalog: usize,
    leaks: &[(&str, &Path)],
) -> anyhow::Result<()> {
    for (what, path) in leaks {
        let (named, named_s) = timed_trace(provider, path, Some(content)).await?;
        let (unnamed, unnamed_s) = timed_trace(provider, path, None).await?;
        let who = |r: &tracecast_delivery::api::TraceReport| -> String {
            match (&r.user, &r.fingerprint) {
                (Some(u), _) => u.clone(),
                (None, Some(f)) if !f.accused.is_empty() => f
                    .accused
                    .iter()
                    .map(|s| s.user.clone().unwrap_or_default())
                    .collect::<Vec<_>>()
                    .join("+"),
                _ => "nobody".into(),
            }
        };
        let content_of =
            |r: &tracecast_delivery::api::TraceReport| r.fingerprint.as_ref().map(|f| f.content);
        println!(
            "{:>8} | {:<24} | {:>9.2} | {:>9.2} | {:>6.2}x | named: {}, unnamed: {} (content {})",
            catalog,
            what,
            named_s,
            unnamed_s,
            unnamed_s / named_s,
            who(&named),
            who(&unnamed),
            content_of(&unnamed).map_or("none".into(), |c| {
                if c == content {
                    "right".to_owned()
                } else {
                    format!("WRONG {c}")
                }
            })
        );
    }
    Ok(())
}

/// One trace and its time, waiting out the account's trace rate (the
/// wait is not counted).
async fn timed_trace(
    provider: &OriginClient,
    path: &Path,
    content: Option<i64>,
) -> anyhow::Result<(tracecast_delivery::api::TraceReport, f64)> {
    loop {
        let t = Instant::now();
        match provider.trace_as(path, content).await {
            Ok(r) => return Ok((r, t.elapsed().as_secs_f64())),
            Err(tracecast_client::ClientError::Refused { status, .. })
                if status == reqwest::StatusCode::TOO_MANY_REQUESTS =>
            {
                tokio::time::sleep(std::time::Duration::from_secs(6)).await;
            }
            Err(e) => return Err(e.into()),
        }
    }
}

/// Adds `n` A/B works of 1 to 10 minutes to the catalog (every 300th of
/// exactly `units` units), as rows: tracing reads their lengths and
/// buyers, never their variants.
async fn fill_catalog(
    bench: &Bench,
    provider: ProviderId,
    n: usize,
    units: u64,
) -> anyhow::Result<()> {
    let lengths = tracecast_mark::audio::ab::units(60 * 44_100)
        ..tracecast_mark::audio::ab::units(600 * 44_100);
    let mut state = 0x2545_F491_4F6C_DD1Du64;
    for i in 0..n {
        // xorshift: a spread of lengths, the same every run.
        state ^= state << 13;
        state ^= state >> 7;
        state ^= state << 17;
        let len = if i % 300 == 0 {
            units as usize
        } else {
            lengths.start + (state as usize) % (lengths.end - lengths.start)
        };
        let sha = format!("{:064x}", i + 1);
        let id = bench
            .store
            .add_content(&NewContent {
                provider_id: provider,
                title: format!("Catalog work {i}"),
                kind: ContentKind::Audio,
                price_cents: 100,
                terms: String::new(),
                source_sha256: sha.clone(),
                source_bytes: 1,
                rental_tariff: None,
                reserved_up_to_order: None,
                protected: false,
                renditions: Vec::new(),
            })
            .await?;
        bench
            .store
            .add_ab_variants(
                id,
                &AbVariantsRecord {
                    tier: Tier::High,
                    units: len as i64,
                    data_offset: 100,
                    frame_bytes: 0,
                    bytes: 1_000,
                    a_blob_key: format!("renditions/{sha}"),
                    a_sha256: sha.clone(),
                    b_blob_key: format!("renditions/{sha}"),
                    b_sha256: sha.clone(),
                    flac: Some(AbFlacRecord {
                        frames: len as i64,
                        b_bytes: 1_000,
                        index_blob_key: format!("renditions/{sha}"),
                        index_sha256: sha,
                    }),
                    mp3: None,
                },
            )
            .await?;
    }
    Ok(())
}
