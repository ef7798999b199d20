//! `bench upload`: a large file (1 GiB by default) uploaded to the
//! service server with tus (one creation POST, then PATCH streaming the
//! whole file; the server writes it to its spool, syncs it, and moves it
//! into the blob store) beside a plain HTTP PUT of the same bytes to nginx
//! with WebDAV on loopback, in the same run and with the same client.
//! Prints each run's throughput, the best of each and the ratio.
//!
//! The two do not promise the same: nginx answers the PUT once the file
//! is renamed into place, never syncing it; the service answers once the
//! bytes are synced and recorded, so a crash cannot lose an acknowledged
//! upload.

use std::path::{Path, PathBuf};
use std::time::Instant;

use anyhow::{bail, Context};
use tokio::io::AsyncWriteExt;
use tracecast_client::ServiceClient;
use tracecast_delivery::LinkKey;
use tracecast_server::auth::{new_token, token_hash};
use tracecast_server::service::{Service, ServiceConfig};
use tracecast_store::{AccountKind, Blobs, Store};

use crate::edge_bench::start_nginx;

#[derive(clap::Parser)]
pub struct Options {
    /// Bytes to upload (K, M, G suffixes).
    #[arg(long = "size", value_name = "SIZE", default_value = "1G", value_parser = parse_size)]
    pub bytes: u64,
    #[arg(long, default_value_t = 5, value_parser = clap::value_parser!(u32).range(1..))]
    pub runs: u32,
    #[arg(long, default_value = "/usr/sbin/nginx")]
    pub nginx: PathBuf,
}

fn parse_size(s: &str) -> anyhow::Result<u64> {
    let (num, mult) = match s.chars().last() {
        Some('K' | 'k') => (&s[..s.len() - 1], 1u64 << 10),
        Some('M' | 'm') => (&s[..s.len() - 1], 1 << 20),
        Some('G' | 'g') => (&s[..s.len() - 1], 1 << 30),
        _ => (s, 1),
    };
    Ok(num.parse::<u64>().context("--size like 1G or 512M")? * mult)
}

pub fn parse(args: &[&str]) -> anyhow::Result<Options> {
    Ok(crate::options("upload", args))
}

/// A file of `bytes` pseudo-random bytes (incompressible, like media).
async fn payload(path: &Path, bytes: u64) -> anyhow::Result<()> {
    use rand::{RngCore, SeedableRng};
    let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(7);
    let mut f = tokio::fs::File::create(path).await?;
    let mut buf = vec![0u8; 8 << 20];
    let mut left = bytes;
    while left > 0 {
        let n = left.min(buf.len() as u64) as usize;
        rng.fill_bytes(&mut buf[..n]);
        f.write_all(&buf[..n]).await?;
        left -= n as u64;
    }
    f.sync_all().await?;
    Ok(())
}

/// PUTs the file to nginx; seconds.
async fn put(http: &reqwest::Client, url: &str, path: &Path) -> anyhow::Result<f64> {
    let started = Instant::now();
    let file = tokio::fs::File::open(path).await?;
    let len = file.metadata().await?.len();
    let r = http
        .put(url)
        .header(reqwest::header::CONTENT_LENGTH, len)
        .body(reqwest::Body::wrap_stream(
            tokio_util::io::ReaderStream::with_capacity(file, 1 << 20),
        ))
        .send()
        .await?;
    if !r.status().is_success() {
        bail!("nginx PUT: {}", r.status());
    }
    Ok(started.elapsed().as_secs_f64())
}

pub fn run(o: &Options) -> anyhow::Result<()> {
    let dir = tempfile::tempdir_in(std::env::current_dir()?.join("target"))
        .or_else(|_| tempfile::tempdir())?;
    // The server on its own runtime (two workers), the client on another:
    // as with nginx, the server does not share the client's threads.
    let server_rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()?;
    let client_rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()?;
    let (base, token) = server_rt.block_on(async {
        let store = Store::open_dir(&dir.path().join("store")).await?;
        let token = new_token();
        store
            .add_account(
                AccountKind::Gateway,
                "bench-phone",
                token_hash(&token),
                None,
            )
            .await?;
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
        let base = format!("http://{}", listener.local_addr()?);
        let mut config = ServiceConfig::new(&base, dir.path().join("spool"));
        config.max_upload_bytes = o.bytes.max(1 << 30) * 2;
        let service = Service::new(
            store,
            Blobs::local(&dir.path().join("blobs"))?,
            LinkKey::from_bytes([1; 32]),
            config,
        )?;
        tokio::spawn(tracecast_server::serve(
            listener,
            tracecast_server::service::router(service),
            std::future::pending(),
        ));
        anyhow::Ok((base, token))
    })?;
    let www = dir.path().join("www");
    std::fs::create_dir_all(www.join("up"))?;
    std::fs::create_dir_all(dir.path().join("nginx/body"))?;
    // nginx's workers drop to an unprivileged user when started as root:
    // let them reach the directories they write.
    {
        use std::os::unix::fs::PermissionsExt;
        let open =
            |p: &Path, mode| std::fs::set_permissions(p, std::fs::Permissions::from_mode(mode));
        open(dir.path(), 0o755)?;
        open(&www, 0o755)?;
        open(&www.join("up"), 0o777)?;
        open(&dir.path().join("nginx"), 0o755)?;
        open(&dir.path().join("nginx/body"), 0o777)?;
    }
    let nginx = start_nginx(
        &o.nginx,
        &www,
        &dir.path().join("nginx"),
        "dav_methods PUT; create_full_put_path on; client_max_body_size 0; client_body_buffer_size 1m;",
    )?;
    let file = dir.path().join("payload.bin");
    let mib = o.bytes as f64 / f64::from(1 << 20);
    client_rt.block_on(async {
        eprintln!("writing a {mib:.0} MiB payload…");
        payload(&file, o.bytes).await?;
        let http = reqwest::Client::new();
        let service = ServiceClient::new(&base, &token)?;
        println!(
            "upload of {mib:.0} MiB on loopback, {} runs each (MiB/s)",
            o.runs
        );
        println!(
            "{:>4} {:>14} {:>16} {:>14}",
            "run", "nginx PUT", "nginx PUT+sync", "tracecast tus"
        );
        let (mut puts, mut durables, mut tuses) = (Vec::new(), Vec::new(), Vec::new());
        for run in 1..=o.runs {
            // Each run starts with no dirty pages waiting for writeback
            // (the last run's gigabyte would slow whichever comes next).
            let _ = std::process::Command::new("sync").status();
            let url = format!("http://127.0.0.1:{}/up/payload-{run}.bin", nginx.port);
            let put_secs = put(&http, &url, &file).await?;
            // What it takes nginx's file to reach the disk, as the
            // service's has when it answers.
            let synced = Instant::now();
            let _ = std::process::Command::new("sync").status();
            let durable_secs = put_secs + synced.elapsed().as_secs_f64();
            let _ = std::fs::remove_file(www.join(format!("up/payload-{run}.bin")));
            let started = Instant::now();
            let up = service
                .upload_file(&file, "payload.bin", "application/octet-stream", 0, &|_| {})
                .await?;
            let tus_secs = started.elapsed().as_secs_f64();
            if up.bytes != o.bytes {
                bail!("the service took {} of {} bytes", up.bytes, o.bytes);
            }
            service.delete_upload(&up.url).await?;
            println!(
                "{run:>4} {:>14.0} {:>16.0} {:>14.0}",
                mib / put_secs,
                mib / durable_secs,
                mib / tus_secs
            );
            puts.push(put_secs);
            durables.push(durable_secs);
            tuses.push(tus_secs);
        }
        // Loopback writes into the page cache vary a lot from run to run
        // (writeback of earlier runs): the median is the fair figure.
        let median = |v: &mut Vec<f64>| {
            v.sort_by(f64::total_cmp);
            v[v.len() / 2]
        };
        let (best_put, best_tus) = (
            puts.iter().copied().fold(f64::MAX, f64::min),
            tuses.iter().copied().fold(f64::MAX, f64::min),
        );
        let (med_put, med_tus) = (median(&mut puts), median(&mut tuses));
        let med_durable = median(&mut durables);
        println!(
            "median: nginx PUT {:.0} MiB/s, tracecast tus {:.0} MiB/s; ratio tus/nginx = {:.2}",
            mib / med_put,
            mib / med_tus,
            med_put / med_tus
        );
        println!(
            "median, both on disk: nginx PUT+sync {:.0} MiB/s; ratio tus/(nginx PUT+sync) = {:.2}",
            mib / med_durable,
            med_durable / med_tus
        );
        println!(
            "best:   nginx PUT {:.0} MiB/s, tracecast tus {:.0} MiB/s; ratio tus/nginx = {:.2}",
            mib / best_put,
            mib / best_tus,
            best_put / best_tus
        );
        anyhow::Ok(())
    })?;
    drop(nginx);
    Ok(())
}
