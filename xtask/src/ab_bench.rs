//! `bench ab`: one edge serving copies assembled from A/B variants to 1,
//! 10 and 100 concurrent buyers, beside nginx serving the same bytes (each
//! buyer's copy as a static file, sendfile on) in the same run; and the
//! ingest cost of A/B (time and storage) against direct marking.
//!
//! A 5-minute generated track is ingested twice: plainly (three FLAC
//! renditions; every copy is then marked by the edge) and with `ab` (the
//! high tier also as two marked FLAC variants). Each buyer buys the A/B
//! content; the edge assembles their copy (a sequence of a few kilobytes),
//! a FLAC stream spliced frame by frame, and serves it from the variant
//! files; its size is set against the plain high-tier FLAC. The serving phase has each buyer
//! download their copy again and again; nginx serves the copies the buyers
//! downloaded, one file per buyer, to as many clients; and the reference CDN
//! edge (`deploy/cdn/`: the same nginx with njs) serves each buyer a copy
//! bought through the CDN, assembled per request by its watermarking token.

use std::path::PathBuf;
use std::sync::Arc;
use std::time::Instant;

use anyhow::Context;
use tracecast_client::{ContentOptions, EdgeClient};
use tracecast_delivery::Tier;

use crate::edge_bench::{fetch_all, load, start_cdn_nginx, start_nginx, Bench};

#[derive(clap::Parser)]
pub struct Options {
    /// Music to assemble from, in seconds.
    #[arg(long, default_value_t = 300.0)]
    pub seconds: f32,
    /// Buyer counts to run, comma-separated.
    #[arg(long, value_delimiter = ',', default_values_t = [1, 10, 100])]
    pub buyers: Vec<usize>,
    #[arg(long, default_value = "/usr/sbin/nginx")]
    pub nginx: PathBuf,
    /// Downloads per buyer in the serving phase (at least 2).
    #[arg(long, default_value_t = 0)]
    pub rounds: usize,
    /// A release only: every buyer's copy made (ticket to copy ready, and
    /// the process's CPU per copy), nothing downloaded or served (for an
    /// album to a thousand buyers: `--seconds 3600 --buyers 1000
    /// --release-only`).
    #[arg(long)]
    pub release_only: bool,
}

/// CPU seconds this process has used (user and system), from
/// /proc/self/stat: the origin and edge run in it.
fn cpu_secs() -> f64 {
    let stat = std::fs::read_to_string("/proc/self/stat").unwrap_or_default();
    // Fields after the command's closing parenthesis; utime and stime are
    // the 14th and 15th of the whole line, in clock ticks (100 a second).
    let rest = stat.rsplit_once(')').map_or("", |(_, r)| r);
    // The first field after it is the 3rd (the state).
    let field = |n: usize| -> f64 {
        rest.split_whitespace()
            .nth(n - 3)
            .and_then(|x| x.parse().ok())
            .unwrap_or(0.0)
    };
    (field(14) + field(15)) / 100.0
}

pub fn parse(args: &[&str]) -> anyhow::Result<Options> {
    Ok(crate::options("ab", args))
}

pub fn run(o: &Options) -> anyhow::Result<()> {
    tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()?
        .block_on(bench(o))
}

async fn bench(o: &Options) -> anyhow::Result<()> {
    let max_buyers = o.buyers.iter().copied().max().unwrap_or(1);
    // Unless only the release is simulated, the copies are served through
    // the reference CDN edge (nginx + njs, deploy/cdn/) too.
    let bench = if o.release_only {
        Bench::start(max_buyers).await?
    } else {
        Bench::start_with_cdn(max_buyers).await?
    };
    bench.edge_alive().await?;
    let dir = bench.dir.path();
    eprintln!("making a {:.0}-second track...", o.seconds);
    // Long music as FLAC: an hour of WAV is over the upload limit.
    let src = dir.join(if o.seconds > 600.0 {
        "track.flac"
    } else {
        "track.wav"
    });
    tracecast_media::encode_file(&tracecast_media::synth::music(o.seconds, 44_100, 78), &src)?;
    let blobs = dir.join("data/blobs/renditions");

    // Ingest: direct (three FLAC tiers) and A/B (the same, plus the two
    // variants of the high tier). The second upload differs by one byte
    // so it is not taken for a retry.
    eprintln!("ingesting it directly, then with A/B variants...");
    let t = Instant::now();
    let plain = bench
        .provider
        .add_content(&src, "Bench direct", 100, None, |_, _| {})
        .await?;
    let plain_s = t.elapsed().as_secs_f64();
    // The same music again, one sample changed, as a new upload.
    let mut again = tracecast_media::decode_file(&src, None)?;
    again.channels[0][0] += 1.0 / 32_768.0;
    let src_ab = dir.join(format!(
        "track-ab.{}",
        src.extension().and_then(|e| e.to_str()).unwrap_or("wav")
    ));
    tracecast_media::encode_file(&again, &src_ab)?;
    drop(again);
    let t = Instant::now();
    let content = bench
        .provider
        .add_content_with(
            &src_ab,
            &ContentOptions {
                title: "Bench A/B",
                price_cents: 100,
                marking: tracecast_delivery::ab::Marking::Ab,
                ..ContentOptions::default()
            },
            |_, _| {},
        )
        .await?;
    let ab_s = t.elapsed().as_secs_f64();
    let stored = |c: &tracecast_delivery::api::ContentInfo| -> u64 {
        c.renditions
            .iter()
            .map(|r| {
                r.bytes
                    + r.ab.as_ref().map_or(0, |a| {
                        a.variant_bytes(false)
                            + a.variant_bytes(true)
                            + a.mp3.as_ref().map_or(0, |m| 2 * m.bytes)
                    })
            })
            .sum()
    };
    let high = content
        .renditions
        .iter()
        .find(|r| r.tier == Tier::High)
        .context("no high rendition")?;
    let ab = high.ab.clone().context("no A/B variants")?;
    let scheme = tracecast_mark::fingerprint::Scheme::for_content(
        &bench.key,
        content.id as u64,
        ab.geometry.units as usize,
    );

    // Direct marking's cost per copy, on the high FLAC rendition in this
    // process (what the edge does per buyer without variants).
    let flac = std::fs::read(blobs.join(&high.sha256))?;
    let plain_high_bytes = plain
        .renditions
        .iter()
        .find(|r| r.tier == Tier::High)
        .map_or(0, |r| r.bytes);
    let pcm = tracecast_media::decode_bytes(flac, Some("flac"))?;
    let t = Instant::now();
    let mut marked = pcm.clone();
    tracecast_mark::audio::embed(
        &mut marked.channels,
        marked.sample_rate,
        &bench.key,
        &tracecast_mark::Payload {
            content_server: 1,
            edge: 1,
            home: 0,
            user: 1,
        },
        &Default::default(),
        &mut |_, _| {},
    )?;
    let copy = tracecast_media::encode_flac(&marked, tracecast_media::FlacEffort::FastParallel)?;
    let direct_copy_s = t.elapsed().as_secs_f64();
    std::hint::black_box(copy);

    let cores = std::thread::available_parallelism().map_or(0, |n| n.get());
    println!(
        "\nA/B bench: {:.0}-second track, {} segments of 93 ms ({} resist {} colluders), {} cores",
        o.seconds,
        ab.geometry.units,
        scheme.layout.tardos_len(),
        scheme.colluders(),
        cores
    );
    println!(
        "ingest: direct {plain_s:.1} s, {:.1} MB stored | A/B {ab_s:.1} s, {:.1} MB stored (two {} variants of {:.1} and {:.1} MB{}) | A/B costs {:.1}x the time, {:.1}x the storage",
        stored(&plain) as f64 / 1e6,
        stored(&content) as f64 / 1e6,
        if ab.flac.is_some() { "FLAC" } else { "WAV" },
        ab.variant_bytes(false) as f64 / 1e6,
        ab.variant_bytes(true) as f64 / 1e6,
        ab.mp3.as_ref().map_or(String::new(), |m| format!(
            ", two MP3 variants of {:.1} MB",
            m.bytes as f64 / 1e6
        )),
        ab_s / plain_s,
        stored(&content) as f64 / stored(&plain) as f64,
    );

    let http = reqwest::Client::builder()
        .pool_max_idle_per_host(256)
        .build()?;
    let edge_client = Arc::new(EdgeClient::new()?);
    // Each buyer's copy: bought, assembled, downloaded once.
    let mut urls = Vec::new();
    let mut assemble_ms = Vec::new();
    let mut copy_bytes = Vec::new();
    let www = dir.join("www");
    std::fs::create_dir_all(&www)?;
    let (release, cpu) = (Instant::now(), cpu_secs());
    for (i, user) in bench.users.iter().enumerate() {
        let t = Instant::now();
        let p = user.purchase(content.id, Some(Tier::High), &[]).await?;
        let copy = edge_client.deliver(&p.edge_address, &p.ticket).await?;
        assemble_ms.push(t.elapsed().as_secs_f64() * 1e3);
        if o.release_only {
            copy_bytes.push(copy.bytes);
            continue;
        }
        let out = www.join(format!("copy-{i}.{}", copy_extension(&copy.media_type)));
        edge_client.download(&copy, &out, &|_, _| {}).await?;
        copy_bytes.push(copy.bytes);
        urls.push(copy.url);
    }
    let (release_s, cpu_s) = (release.elapsed().as_secs_f64(), cpu_secs() - cpu);
    assemble_ms.sort_by(f64::total_cmp);
    let median_ms = assemble_ms[assemble_ms.len() / 2];
    println!(
        "per buyer: ticket to copy ready {median_ms:.0} ms (median of {}; the variants cached, SHA-256 of the copy included) against direct marking's {:.0} ms (embed + FLAC, this process)",
        assemble_ms.len(),
        direct_copy_s * 1e3
    );
    let mean = copy_bytes.iter().sum::<u64>() as f64 / copy_bytes.len().max(1) as f64;
    println!(
        "copies: {} of {:.2} MB on average ({:.2}-{:.2}) against the plain high-tier FLAC's {:.2} MB: {:.3}x",
        high.ab.as_ref().map_or("?", |a| &a.media_type),
        mean / 1e6,
        *copy_bytes.iter().min().unwrap_or(&0) as f64 / 1e6,
        *copy_bytes.iter().max().unwrap_or(&0) as f64 / 1e6,
        plain_high_bytes as f64 / 1e6,
        mean / plain_high_bytes as f64
    );

    if let Some(m) = &ab.mp3 {
        println!(
            "MP3 form of every copy: {:.2} MB ({} kbit/s, {} frames; the same length for every buyer), made at ingest beside the FLAC variants",
            m.bytes as f64 / 1e6,
            m.kbps,
            m.frames
        );
    }
    let n = bench.users.len().max(1) as f64;
    println!(
        "release: {} copies in {release_s:.1} s ({:.1} copies/s), {:.0} ms of CPU per copy (origin, edge and buyers in this process; 95th percentile ticket to copy ready {:.0} ms)",
        bench.users.len(),
        n / release_s,
        cpu_s / n * 1e3,
        assemble_ms[(assemble_ms.len() * 95 / 100).min(assemble_ms.len() - 1)]
    );
    if o.release_only {
        return Ok(());
    }
    let nginx = start_nginx(&o.nginx, &www, &dir.join("nginx"), "")?;
    // The same buyers through the CDN: each buys again with `cdn` (a token,
    // billed at once) and the njs edge assembles their copy per request.
    let cdn_dir = dir.join("cdn");
    tracecast_client::cdn::publish(&bench.admin, content.id, Tier::High, &cdn_dir).await?;
    let (pem, _) = tracecast_client::cdn::token_key(&bench.admin).await?;
    let pem_path = dir.join("wmt-key.pem");
    std::fs::write(&pem_path, pem)?;
    let njs = start_cdn_nginx(&o.nginx, &dir.join("nginx-cdn"), &cdn_dir, &pem_path)?;
    let port = bench.cdn_port.context("the bench's origin has a CDN")?;
    let mut cdn_urls = Vec::new();
    let mut token_ms = Vec::new();
    for user in &bench.users {
        let t = Instant::now();
        let p = user
            .order(&tracecast_delivery::api::PurchaseRequest {
                cdn: true,
                ..tracecast_delivery::api::PurchaseRequest::download(content.id, Some(Tier::High))
            })
            .await?;
        token_ms.push(t.elapsed().as_secs_f64() * 1e3);
        let copy = p.cdn.context("a CDN copy")?;
        // The origin names the port it was given; this nginx listens on
        // its own.
        let url = copy.url.replace(
            &format!("127.0.0.1:{port}/"),
            &format!("127.0.0.1:{}/", njs.port),
        );
        cdn_urls.push(format!("{url}?wmt={}", copy.token));
    }
    token_ms.sort_by(f64::total_cmp);
    println!(
        "through the CDN: purchase to token {:.0} ms (median of {}: the buyer's sequence, the sale recorded and billed, the token signed)",
        token_ms[token_ms.len() / 2],
        token_ms.len()
    );
    println!(
        "{:>7} | {:>12} {:>10} | {:>12} {:>10} | {:>12} | {:>12} {:>10} | {:>12}",
        "buyers",
        "edge dl/s",
        "MB/s",
        "nginx dl/s",
        "MB/s",
        "edge/nginx",
        "njs CDN dl/s",
        "MB/s",
        "njs/nginx"
    );
    let mut cdn_ratios = Vec::new();
    let mut ratios = Vec::new();
    for &n in &o.buyers {
        let per = if o.rounds >= 2 {
            o.rounds
        } else {
            (200 / n).max(2)
        };
        let edge_urls: Vec<String> = urls.iter().take(n).cloned().collect();
        let nginx_urls: Vec<String> = (0..n)
            .map(|i| {
                let ext = copy_extension(&ab.media_type);
                format!("http://127.0.0.1:{}/copy-{i}.{ext}", nginx.port)
            })
            .collect();
        // Warm both (page cache, connections).
        for u in edge_urls.iter().chain(&nginx_urls).take(2 * n) {
            fetch_all(&http, u).await?;
        }
        let njs_urls: Vec<String> = cdn_urls.iter().take(n).cloned().collect();
        for u in &njs_urls {
            fetch_all(&http, u).await?;
        }
        let mut best_edge = (0.0f64, 0.0f64);
        let mut best_nginx = (0.0f64, 0.0f64);
        let mut best_njs = (0.0f64, 0.0f64);
        // Alternating runs, best of three each: the machine's noise hits
        // both alike.
        for _ in 0..3 {
            let (reqs, bytes, secs) = load(&http, &edge_urls, per).await?;
            if bytes as f64 / secs > best_edge.1 {
                best_edge = (reqs as f64 / secs, bytes as f64 / secs);
            }
            let (reqs, bytes, secs) = load(&http, &nginx_urls, per).await?;
            if bytes as f64 / secs > best_nginx.1 {
                best_nginx = (reqs as f64 / secs, bytes as f64 / secs);
            }
            let (reqs, bytes, secs) = load(&http, &njs_urls, per).await?;
            if bytes as f64 / secs > best_njs.1 {
                best_njs = (reqs as f64 / secs, bytes as f64 / secs);
            }
        }
        let ratio = best_edge.1 / best_nginx.1;
        ratios.push(ratio);
        cdn_ratios.push(best_njs.1 / best_nginx.1);
        println!(
            "{:>7} | {:>12.1} {:>10.0} | {:>12.1} {:>10.0} | {:>11.2}x | {:>12.1} {:>10.0} | {:>11.2}x",
            n,
            best_edge.0,
            best_edge.1 / 1e6,
            best_nginx.0,
            best_nginx.1 / 1e6,
            ratio,
            best_njs.0,
            best_njs.1 / 1e6,
            best_njs.1 / best_nginx.1
        );
    }
    drop(nginx);
    drop(njs);
    println!(
        "njs CDN edge / nginx serving files: {} (the CDN assembles each copy per request from the two variants; nginx sends a finished file with sendfile)",
        cdn_ratios
            .iter()
            .map(|r| format!("{r:.2}"))
            .collect::<Vec<_>>()
            .join(" / ")
    );
    let worst = ratios.iter().copied().fold(f64::INFINITY, f64::min);
    println!(
        "worst edge/nginx ratio {worst:.2} (target 0.5): {}",
        if worst >= 0.5 { "met" } else { "NOT met" }
    );
    Ok(())
}

/// The extension a copy of this media type is written under.
fn copy_extension(media_type: &str) -> &'static str {
    if media_type == "audio/flac" {
        "flac"
    } else {
        "wav"
    }
}
