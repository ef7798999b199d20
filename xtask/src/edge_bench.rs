//! `bench edge`: personalised deliveries by one edge beside nginx serving
//! the same unmarked file, in one run on this machine.
//!
//! A 5-minute track (generated music, 44.1 kHz stereo, ingested at the
//! origin; the `high` rendition, FLAC) is bought by 1, 10 and 100 buyers at
//! once. For tracecast each buyer asks the origin for a ticket, the edge
//! marks a copy for them and they download it in full; for nginx
//! (Debian's package, started here on loopback with sendfile on) each
//! client downloads the unmarked rendition. Printed: deliveries per second
//! and MB/s, the edge's serving alone (the kept copies fetched again, as a
//! resumed download would), the ratio to nginx, and where one delivery's
//! time goes next to the mark engine's own embedding time.

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::{bail, Context};
use tracecast_client::{EdgeClient, OriginClient};
use tracecast_delivery::api::{CopyInfo, NewAccount};
use tracecast_delivery::Tier;
use tracecast_mark::MarkKey;
use tracecast_server::node::{Node, Roles, Settings};
use tracecast_store::Store;

#[derive(clap::Parser)]
pub struct Options {
    /// Music to deliver, in seconds.
    #[arg(long, default_value_t = 300.0)]
    pub seconds: f32,
    /// Buyer counts to run, comma-separated.
    #[arg(long, value_delimiter = ',', default_values_t = [1, 10, 100])]
    pub buyers: Vec<usize>,
    #[arg(long, default_value = "/usr/sbin/nginx")]
    pub nginx: PathBuf,
}

pub fn parse(args: &[&str]) -> anyhow::Result<Options> {
    Ok(crate::options("edge", args))
}

/// nginx on loopback serving one directory, stopped on drop (however the
/// bench ends: a failed bench returns through it too).
pub(crate) struct Nginx {
    child: Child,
    pub(crate) port: u16,
}

impl Drop for Nginx {
    fn drop(&mut self) {
        stop(&mut self.child);
    }
}

/// Stops a server process the bench started: SIGTERM, on which nginx's
/// master stops its workers and waits for them, and `tracecast serve`
/// drains; after ten seconds, SIGKILL to its children and then to it. A
/// SIGKILL to nginx's master alone left its workers running.
pub(crate) fn stop(child: &mut Child) {
    let pid = child.id();
    let _ = Command::new("kill")
        .args(["-TERM", &pid.to_string()])
        .status();
    let deadline = Instant::now() + Duration::from_secs(10);
    while Instant::now() < deadline {
        if let Ok(Some(_)) = child.try_wait() {
            return;
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    for orphan in children_of(pid) {
        let _ = Command::new("kill")
            .args(["-KILL", &orphan.to_string()])
            .status();
    }
    let _ = child.kill();
    let _ = child.wait();
}

/// The processes whose parent is `pid` (from /proc).
pub(crate) fn children_of(pid: u32) -> Vec<u32> {
    let Ok(dir) = std::fs::read_dir("/proc") else {
        return Vec::new();
    };
    dir.filter_map(|e| e.ok()?.file_name().to_str()?.parse::<u32>().ok())
        .filter(|p| {
            // `pid (name) state ppid ...`: the name may hold spaces, so
            // the fields are read after its closing parenthesis.
            std::fs::read_to_string(format!("/proc/{p}/stat")).is_ok_and(|stat| {
                stat.rsplit_once(')')
                    .and_then(|(_, rest)| rest.split_whitespace().nth(1)?.parse::<u32>().ok())
                    == Some(pid)
            })
        })
        .collect()
}

/// Starts nginx serving `root`; `location` is what goes inside its
/// `location / { }` (e.g. WebDAV PUT for the upload bench).
pub(crate) fn start_nginx(
    bin: &Path,
    root: &Path,
    prefix: &Path,
    location: &str,
) -> anyhow::Result<Nginx> {
    spawn_nginx(bin, prefix, "", |port| {
        format!(
            "server {{ listen 127.0.0.1:{port}; root {root}; location / {{ {location} }} }}",
            root = root.display()
        )
    })
}

/// Starts the reference CDN edge as it ships (`deploy/cdn/`: nginx with
/// njs) over `variants` (what `tracecast cdn publish` wrote), checking
/// tokens with the PEM key at `key_pem`, on a port of its own; its URL is
/// answered with it.
pub(crate) fn start_cdn_nginx(
    bin: &Path,
    prefix: &Path,
    variants: &Path,
    key_pem: &Path,
) -> anyhow::Result<Nginx> {
    let shipped = Path::new(env!("CARGO_MANIFEST_DIR")).join("../deploy/cdn");
    let conf = std::fs::read_to_string(shipped.join("tracecast-cdn.conf"))
        .context("deploy/cdn/tracecast-cdn.conf")?;
    let js = shipped.canonicalize()?;
    spawn_nginx(
        bin,
        prefix,
        "load_module /usr/lib/nginx/modules/ngx_http_js_module.so;\n",
        |port| {
            conf.replace("listen 8080;", &format!("listen 127.0.0.1:{port};"))
                .replace("/srv/tracecast-cdn", &variants.display().to_string())
                .replace("/etc/tracecast/wmt-key.pem", &key_pem.display().to_string())
                .replace(
                    "js_path /etc/tracecast/cdn;",
                    &format!("js_path {};", js.display()),
                )
        },
    )
}

/// nginx with two workers on a free loopback port: `top` goes before the
/// main context's settings (modules), `http` makes the http block's
/// servers for the port.
fn spawn_nginx(
    bin: &Path,
    prefix: &Path,
    top: &str,
    http: impl FnOnce(u16) -> String,
) -> anyhow::Result<Nginx> {
    if !bin.exists() {
        bail!(
            "{} not found: apt-get install nginx-light (or pass --nginx PATH)",
            bin.display()
        );
    }
    let port = std::net::TcpListener::bind("127.0.0.1:0")?
        .local_addr()?
        .port();
    std::fs::create_dir_all(prefix.join("logs"))?;
    let conf = prefix.join("nginx.conf");
    std::fs::write(
        &conf,
        format!(
            "{top}daemon off;\nworker_processes 2;\npid {p}/nginx.pid;\nerror_log {p}/logs/error.log;\n\
             events {{ worker_connections 1024; }}\n\
             http {{\n  sendfile on;\n  tcp_nopush on;\n  access_log off;\n  keepalive_requests 100000;\n\
             client_body_temp_path {p}/body; proxy_temp_path {p}/proxy; fastcgi_temp_path {p}/fcgi;\n\
             uwsgi_temp_path {p}/uwsgi; scgi_temp_path {p}/scgi;\n\
             {servers}\n}}\n",
            p = prefix.display(),
            servers = http(port),
        ),
    )?;
    let child = Command::new(bin)
        .args([
            "-p",
            &prefix.display().to_string(),
            "-c",
            &conf.display().to_string(),
        ])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .with_context(|| format!("starting {}", bin.display()))?;
    // Stopped on every path from here on.
    let mut nginx = Nginx { child, port };
    let deadline = Instant::now() + Duration::from_secs(10);
    while std::net::TcpStream::connect(("127.0.0.1", port)).is_err() {
        if Instant::now() > deadline || matches!(nginx.child.try_wait(), Ok(Some(_))) {
            bail!(
                "nginx did not start (see {}/logs/error.log)",
                prefix.display()
            );
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    Ok(nginx)
}

/// Downloads `url` in full, returning the bytes read.
pub(crate) async fn fetch_all(http: &reqwest::Client, url: &str) -> anyhow::Result<u64> {
    let mut r = http.get(url).send().await?;
    if !r.status().is_success() {
        bail!("{url}: {}", r.status());
    }
    let mut n = 0u64;
    while let Some(c) = r.chunk().await? {
        n += c.len() as u64;
    }
    Ok(n)
}

/// Runs `clients` concurrent loops of `per_client` downloads; returns
/// (requests, bytes, seconds).
pub(crate) async fn load(
    http: &reqwest::Client,
    urls: &[String],
    per_client: usize,
) -> anyhow::Result<(usize, u64, f64)> {
    let started = Instant::now();
    let mut set = tokio::task::JoinSet::new();
    for url in urls {
        let http = http.clone();
        let url = url.clone();
        set.spawn(async move {
            let mut bytes = 0;
            for _ in 0..per_client {
                bytes += fetch_all(&http, &url).await?;
            }
            Ok::<_, anyhow::Error>(bytes)
        });
    }
    let mut bytes = 0;
    while let Some(r) = set.join_next().await {
        bytes += r??;
    }
    Ok((
        urls.len() * per_client,
        bytes,
        started.elapsed().as_secs_f64(),
    ))
}

pub fn run(o: &Options) -> anyhow::Result<()> {
    tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()?
        .block_on(bench(o))
}

/// An origin and its edge in this process on SQLite, started as
/// `tracecast serve` starts them ([`Node::start`]), with a provider and
/// `buyers` users: what the edge benches run against.
pub(crate) struct Bench {
    pub dir: tempfile::TempDir,
    pub store: Store,
    pub key: MarkKey,
    pub admin: OriginClient,
    /// With [`Bench::start_with_cdn`]: where the CDN serves copies.
    pub cdn_port: Option<u16>,
    pub provider: OriginClient,
    pub users: Vec<OriginClient>,
    /// Serving until the bench ends.
    _node: Node,
}

impl Bench {
    pub(crate) async fn start(buyers: usize) -> anyhow::Result<Self> {
        Self::start_as(buyers, false).await
    }

    /// [`Bench::start`], the origin also delivering through a CDN (an
    /// edge account `bench-cdn` on a port kept for it).
    pub(crate) async fn start_with_cdn(buyers: usize) -> anyhow::Result<Self> {
        Self::start_as(buyers, true).await
    }

    async fn start_as(buyers: usize, cdn: bool) -> anyhow::Result<Self> {
        // RUST_LOG=tracecast_server=info shows each copy's timings.
        if let Ok(filter) = tracing_subscriber::EnvFilter::try_from_default_env() {
            let _ = tracing_subscriber::fmt()
                .with_env_filter(filter)
                .with_writer(std::io::stderr)
                .try_init();
        }
        let dir = tempfile::tempdir()?;
        let data = dir.path().join("data");
        let key = MarkKey::from_bytes([6; 32]);
        let key_file = data.join("mark.key");
        tracecast_secrets::write_new(&key_file, key.as_bytes())?;
        let roles = Roles {
            origin: true,
            mailbox: true,
            edge: true,
            ..Roles::NONE
        };
        let mut settings = Settings::embedded(&data, roles, &key_file);
        settings.console = false;
        let cdn_port = if cdn {
            Some(
                std::net::TcpListener::bind("127.0.0.1:0")?
                    .local_addr()?
                    .port(),
            )
        } else {
            None
        };
        settings.cdn = cdn_port.map(|port| tracecast_server::node::CdnSettings {
            edge: "bench-cdn".into(),
            url: format!("http://127.0.0.1:{port}"),
            token_secs: 3600,
        });
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
        let node = Node::start(&settings, listener).await?;
        let base = node.base.clone();
        let admin_token = tracecast_secrets::read_text(&node.admin_token)?;
        let admin = OriginClient::new(&base, &admin_token)?;
        let account = |kind: tracecast_delivery::AccountKind, name: String| {
            let admin = admin.clone();
            let base = base.clone();
            async move {
                let a = admin.add_account(&NewAccount::named(kind, &name)).await?;
                Ok::<_, anyhow::Error>(OriginClient::new(
                    &base,
                    a.token.as_deref().unwrap_or_default(),
                )?)
            }
        };
        let provider = account(
            tracecast_delivery::AccountKind::Provider,
            "bench-provider".into(),
        )
        .await?;
        if let Some(port) = cdn_port {
            admin
                .add_account(&NewAccount {
                    address: Some(format!("http://127.0.0.1:{port}/edge")),
                    ..NewAccount::named(tracecast_delivery::AccountKind::Edge, "bench-cdn")
                })
                .await?;
        }
        let mut users = Vec::new();
        for i in 0..buyers {
            users.push(account(tracecast_delivery::AccountKind::User, format!("buyer-{i}")).await?);
        }
        Ok(Self {
            dir,
            store: node.store.clone(),
            key,
            admin,
            cdn_port,
            provider,
            users,
            _node: node,
        })
    }

    /// Waits until the edge is alive at the origin.
    pub(crate) async fn edge_alive(&self) -> anyhow::Result<()> {
        for _ in 0..100 {
            if self
                .store
                .edges()
                .await?
                .iter()
                .all(|e| e.last_seen.is_some() || e.name == "bench-cdn")
            {
                break;
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        Ok(())
    }
}

async fn bench(o: &Options) -> anyhow::Result<()> {
    let max_buyers = o.buyers.iter().sum::<usize>() + 6;
    let bench = Bench::start(max_buyers).await?;
    bench.edge_alive().await?;
    let Bench {
        dir,
        key,
        provider,
        users,
        ..
    } = bench;
    eprintln!("making a {:.0}-second track and ingesting it...", o.seconds);
    let src = dir.path().join("track.wav");
    tracecast_media::encode_file(&tracecast_media::synth::music(o.seconds, 44_100, 77), &src)?;
    let content = provider
        .add_content(&src, "Bench", 100, None, |_, _| {})
        .await?;
    let rendition = content
        .renditions
        .iter()
        .find(|r| r.tier == Tier::High)
        .context("no high rendition")?
        .clone();

    // Where one delivery's time goes, measured on the rendition in this
    // process: decode, embed (the mark engine alone), encode.
    let blob = std::fs::read(
        dir.path()
            .join("data/blobs/renditions")
            .join(&rendition.sha256),
    )?;
    let mut best = [f64::MAX; 3];
    for _ in 0..3 {
        let t = Instant::now();
        let mut pcm = tracecast_media::decode_bytes(blob.clone(), Some("flac"))?;
        let decode = t.elapsed().as_secs_f64();
        let t = Instant::now();
        tracecast_mark::audio::embed(
            &mut pcm.channels,
            pcm.sample_rate,
            &key,
            &tracecast_mark::Payload {
                content_server: 1,
                edge: 1,
                home: 0,
                user: 1,
            },
            &Default::default(),
            &mut |_, _| {},
        )?;
        let embed = t.elapsed().as_secs_f64();
        let t = Instant::now();
        let flac = tracecast_media::encode_flac(&pcm, tracecast_media::FlacEffort::FastParallel)?;
        let encode = t.elapsed().as_secs_f64();
        std::hint::black_box(flac);
        for (b, v) in best.iter_mut().zip([decode, embed, encode]) {
            *b = b.min(v);
        }
    }
    let [decode_s, embed_s, encode_s] = best;

    // nginx beside, serving the same (unmarked) rendition.
    let www = dir.path().join("www");
    std::fs::create_dir_all(&www)?;
    std::fs::write(www.join("track.flac"), &blob)?;
    let nginx = start_nginx(&o.nginx, &www, &dir.path().join("nginx"), "")?;
    let nginx_url = format!("http://127.0.0.1:{}/track.flac", nginx.port);

    let http = reqwest::Client::builder()
        .pool_max_idle_per_host(256)
        .build()?;
    let edge_client = Arc::new(EdgeClient::new()?);
    println!(
        "\nedge bench: one edge, {:.0}-second track, high rendition {:.1} MB (FLAC 44.1 kHz 16-bit stereo), {} cores",
        o.seconds,
        rendition.bytes as f64 / 1e6,
        std::thread::available_parallelism().map_or(0, |n| n.get())
    );
    println!(
        "{:>7} | {:>14} {:>9} | {:>13} {:>10} | {:>11} {:>10} | {:>12}",
        "buyers",
        "tracecast dl/s",
        "MB/s",
        "edge re-get/s",
        "MB/s",
        "nginx req/s",
        "MB/s",
        "re-get/nginx"
    );
    // One buyer at a time, the rendition already decoded in the edge's
    // memory (after a first, cold delivery): ticket to copy ready.
    let one = async |user: &OriginClient| -> anyhow::Result<f64> {
        let t = Instant::now();
        let p = user.purchase(content.id, Some(Tier::High), &[]).await?;
        edge_client.deliver(&p.edge_address, &p.ticket).await?;
        Ok(t.elapsed().as_secs_f64())
    };
    let cold = one(&users[0]).await?;
    let mut warm = Vec::new();
    for u in users.iter().skip(1).take(5) {
        warm.push(one(u).await?);
    }
    warm.sort_by(f64::total_cmp);
    let first_latency = warm.get(warm.len() / 2).copied();
    let mut fresh = 1 + warm.len();
    for &n in &o.buyers {
        let started = Instant::now();
        let mut set = tokio::task::JoinSet::new();
        if fresh + n > users.len() {
            bail!("not enough buyers made");
        }
        for user in users.iter().skip(fresh).take(n) {
            let user = user.clone();
            let edge_client = edge_client.clone();
            let http = http.clone();
            let content = content.id;
            set.spawn(async move {
                let p = user.purchase(content, Some(Tier::High), &[]).await?;
                let copy: CopyInfo = edge_client.deliver(&p.edge_address, &p.ticket).await?;
                let bytes = fetch_all(&http, &copy.url).await?;
                Ok::<_, anyhow::Error>((copy.url, bytes))
            });
        }
        let mut urls = Vec::new();
        let mut bytes = 0u64;
        while let Some(r) = set.join_next().await {
            let (url, b) = r??;
            urls.push(url);
            bytes += b;
        }
        let wall = started.elapsed().as_secs_f64();
        fresh += n;
        // Serving alone: the kept copies fetched again (no marking).
        let per = (400 / n).max(2);
        let (reqs, rbytes, rsecs) = load(&http, &urls, per).await?;
        let nginx_urls = vec![nginx_url.clone(); n];
        let (nreqs, nbytes, nsecs) = load(&http, &nginx_urls, per).await?;
        let reget = reqs as f64 / rsecs;
        let ngx = nreqs as f64 / nsecs;
        println!(
            "{:>7} | {:>14.2} {:>9.1} | {:>13.1} {:>10.1} | {:>11.1} {:>10.1} | {:>11.2}x",
            n,
            n as f64 / wall,
            bytes as f64 / 1e6 / wall,
            reget,
            rbytes as f64 / 1e6 / rsecs,
            ngx,
            nbytes as f64 / 1e6 / nsecs,
            reget / ngx
        );
    }
    if let Some(lat) = first_latency {
        let other = (lat - embed_s - encode_s).max(0.0);
        println!(
            "\none delivery, one buyer at a time (median of {}; ticket to copy ready): {:.0} ms = embed {:.0} ms (the mark engine alone) + FLAC encode {:.0} ms + the rest {:.0} ms (ticket, PCM copy, tag, SHA-256, write, record)",
            warm.len(),
            lat * 1e3,
            embed_s * 1e3,
            encode_s * 1e3,
            other * 1e3
        );
        println!(
            "first delivery (rendition pulled from the origin and decoded, {:.0} ms of decode): {:.0} ms",
            decode_s * 1e3,
            cold * 1e3
        );
        println!(
            "the edge adds {:.0}% over the embedding time; the FLAC encode alone is {:.0}% of it",
            (lat - embed_s) / embed_s * 100.0,
            encode_s / embed_s * 100.0
        );
    }
    drop(nginx);
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Whether process `pid` is running (a zombie has ended).
    fn running(pid: u32) -> bool {
        std::fs::read_to_string(format!("/proc/{pid}/stat")).is_ok_and(|stat| {
            stat.rsplit_once(')')
                .and_then(|(_, rest)| rest.split_whitespace().next())
                .is_some_and(|state| state != "Z")
        })
    }

    #[test]
    fn nginx_stops_with_its_workers() {
        let bin = Path::new("/usr/sbin/nginx");
        assert!(bin.exists(), "apt-get install nginx-light");
        let dir = tempfile::tempdir().unwrap();
        let nginx = start_nginx(bin, dir.path(), &dir.path().join("nginx"), "").unwrap();
        let master = nginx.child.id();
        let deadline = Instant::now() + Duration::from_secs(10);
        let workers = loop {
            let w = children_of(master);
            if w.len() == 2 || Instant::now() > deadline {
                break w;
            }
            std::thread::sleep(Duration::from_millis(20));
        };
        assert_eq!(workers.len(), 2, "nginx's two workers");
        drop(nginx);
        for pid in workers.into_iter().chain([master]) {
            assert!(!running(pid), "process {pid} outlived the bench");
        }
    }
}
