//! `bench load`: the roles as a deployment runs them, each its own
//! `tracecast serve` process (an origin, a mailbox and an edge, on one
//! PostgreSQL database; or origin and mailbox together on SQLite), loaded
//! on loopback by wrk for a bounded time per scenario, beside nginx serving
//! the same copy. Printed: requests/s, MB/s, p50 and p99 latency and
//! failed requests per scenario, the edge's ratio to nginx, and each
//! role's memory (peak and current resident set).

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use anyhow::{bail, Context};
use tracecast_client::{EdgeClient, OriginClient};
use tracecast_delivery::api::NewAccount;
use tracecast_store::testing::TestStore;
use tracecast_store::Backend;

#[derive(clap::Parser)]
pub struct Options {
    /// Seconds a scenario (the load is bounded).
    #[arg(long, default_value_t = 10, value_parser = clap::value_parser!(u32).range(1..=120))]
    pub seconds: u32,
    #[arg(long, default_value_t = 32, value_parser = clap::value_parser!(u32).range(1..=1024))]
    pub connections: u32,
    /// postgres: the roles as separate processes; sqlite: origin with its
    /// mailbox, and an edge.
    #[arg(long, default_value = "postgres", value_parser = crate::one_backend)]
    pub backend: Backend,
    #[arg(long, default_value = "/usr/sbin/nginx")]
    pub nginx: PathBuf,
    #[arg(long, default_value = "/usr/bin/wrk")]
    pub wrk: PathBuf,
}

pub fn parse(args: &[&str]) -> anyhow::Result<Options> {
    Ok(crate::options("load", args))
}

/// One `tracecast serve` process, stopped (SIGTERM, then killed) on drop.
struct Role {
    name: &'static str,
    child: Child,
    port: u16,
}

impl Drop for Role {
    fn drop(&mut self) {
        crate::edge_bench::stop(&mut self.child);
    }
}

impl Role {
    /// Peak and current resident set, in MiB, from /proc.
    fn memory(&self) -> (f64, f64) {
        let status = std::fs::read_to_string(format!("/proc/{}/status", self.child.id()))
            .unwrap_or_default();
        let kib = |key: &str| {
            status
                .lines()
                .find(|l| l.starts_with(key))
                .and_then(|l| l.split_whitespace().nth(1))
                .and_then(|v| v.parse::<f64>().ok())
                .unwrap_or(0.0)
        };
        (kib("VmHWM:") / 1024.0, kib("VmRSS:") / 1024.0)
    }
}

fn free_port() -> anyhow::Result<u16> {
    Ok(std::net::TcpListener::bind("127.0.0.1:0")?
        .local_addr()?
        .port())
}

fn ready(port: u16) -> bool {
    use std::io::{Read, Write};
    let Ok(mut s) = std::net::TcpStream::connect(("127.0.0.1", port)) else {
        return false;
    };
    let _ = s.set_read_timeout(Some(Duration::from_secs(2)));
    if s.write_all(b"GET /readyz HTTP/1.0\r\nHost: 127.0.0.1\r\n\r\n")
        .is_err()
    {
        return false;
    }
    let mut head = [0u8; 12];
    s.read_exact(&mut head).is_ok() && &head[9..12] == b"200"
}

fn start_role(
    bin: &Path,
    dir: &Path,
    name: &'static str,
    port: u16,
    config: &str,
) -> anyhow::Result<Role> {
    let conf = dir.join(format!("{name}.toml"));
    std::fs::write(&conf, config)?;
    let log = std::fs::File::create(dir.join(format!("{name}.log")))?;
    let child = Command::new(bin)
        .args(["serve", "--config"])
        .arg(&conf)
        .args(["--listen", &format!("127.0.0.1:{port}")])
        .env("RUST_LOG", "warn")
        .stdout(Stdio::null())
        .stderr(log)
        .spawn()
        .with_context(|| format!("starting {}", bin.display()))?;
    let role = Role { name, child, port };
    let deadline = Instant::now() + Duration::from_secs(60);
    while !ready(port) {
        if Instant::now() > deadline {
            bail!(
                "{name} did not become ready (see {})",
                dir.join(format!("{name}.log")).display()
            );
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    Ok(role)
}

/// What wrk measured.
#[derive(Debug, Default, Clone)]
struct Measured {
    requests_per_sec: f64,
    mb_per_sec: f64,
    p50_ms: f64,
    p99_ms: f64,
    failed: u64,
}

fn millis(v: &str) -> Option<f64> {
    let v = v.trim();
    let (num, unit) = v.split_at(v.find(|c: char| c.is_ascii_alphabetic())?);
    let n: f64 = num.parse().ok()?;
    Some(match unit {
        "us" => n / 1000.0,
        "ms" => n,
        "s" => n * 1000.0,
        "m" => n * 60_000.0,
        _ => return None,
    })
}

fn megabytes(v: &str) -> Option<f64> {
    let v = v.trim();
    let (num, unit) = v.split_at(v.find(|c: char| c.is_ascii_alphabetic())?);
    let n: f64 = num.parse().ok()?;
    Some(match unit {
        "B" => n / 1e6,
        "KB" => n * 1024.0 / 1e6,
        "MB" => n * 1024.0 * 1024.0 / 1e6,
        "GB" => n * 1024.0 * 1024.0 * 1024.0 / 1e6,
        _ => return None,
    })
}

/// Reads wrk's report (`--latency`).
fn parse_wrk(out: &str) -> anyhow::Result<Measured> {
    let mut m = Measured::default();
    for line in out.lines() {
        let l = line.trim();
        if let Some(v) = l.strip_prefix("Requests/sec:") {
            m.requests_per_sec = v.trim().parse()?;
        } else if let Some(v) = l.strip_prefix("Transfer/sec:") {
            m.mb_per_sec = megabytes(v).context("Transfer/sec")?;
        } else if let Some(v) = l.strip_prefix("50%") {
            m.p50_ms = millis(v).context("50%")?;
        } else if let Some(v) = l.strip_prefix("99%") {
            m.p99_ms = millis(v).context("99%")?;
        } else if let Some(v) = l.strip_prefix("Non-2xx or 3xx responses:") {
            m.failed += v.trim().parse::<u64>()?;
        } else if let Some(v) = l.strip_prefix("Socket errors:") {
            // "connect 0, read 0, write 0, timeout 0"
            for part in v.split(',') {
                if let Some(n) = part.split_whitespace().nth(1) {
                    m.failed += n.parse::<u64>().unwrap_or(0);
                }
            }
        }
    }
    if m.requests_per_sec == 0.0 {
        bail!("wrk reported no requests:\n{out}");
    }
    Ok(m)
}

struct Scenario {
    name: &'static str,
    role: &'static str,
    port: u16,
    /// The Lua script's `request` body.
    script: String,
}

fn lua_quote(s: &str) -> String {
    format!("{s:?}")
}

fn run_wrk(o: &Options, dir: &Path, s: &Scenario) -> anyhow::Result<Measured> {
    let script = dir.join(format!("{}.lua", s.name.replace([' ', ':', '/'], "_")));
    std::fs::write(&script, &s.script)?;
    let out = Command::new(&o.wrk)
        .args([
            "-t2",
            &format!("-c{}", o.connections),
            &format!("-d{}s", o.seconds),
            "--timeout",
            "10s",
            "--latency",
            "-s",
        ])
        .arg(&script)
        .arg(format!("http://127.0.0.1:{}", s.port))
        .output()
        .with_context(|| format!("running {} (apt-get install wrk)", o.wrk.display()))?;
    if !out.status.success() {
        bail!("wrk failed: {}", String::from_utf8_lossy(&out.stderr));
    }
    parse_wrk(&String::from_utf8_lossy(&out.stdout))
}

pub fn run(o: &Options) -> anyhow::Result<()> {
    if !o.wrk.exists() {
        bail!("{} not found: apt-get install wrk", o.wrk.display());
    }
    let root = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("..");
    let status = Command::new(env!("CARGO"))
        .args(["build", "--release", "-q", "-p", "tracecast"])
        .current_dir(&root)
        .status()?;
    if !status.success() {
        bail!("building tracecast failed");
    }
    let bin = root.join("target/release/tracecast");
    let tmp = tempfile::tempdir()?;
    let dir = tmp.path();
    let rt = tokio::runtime::Runtime::new()?;
    let url = match o.backend {
        Backend::Postgres => Some(
            rt.block_on(TestStore::fresh_url(Backend::Postgres))
                .context("PostgreSQL on 127.0.0.1:5432 (or --backend sqlite)")?,
        ),
        Backend::Sqlite => None,
    };
    let database = url
        .as_ref()
        .map_or(String::new(), |u| format!("database = {u:?}\n"));
    let (origin_port, mailbox_port, edge_port) = (free_port()?, free_port()?, free_port()?);
    let origin_data = dir.join("origin");
    let mut roles = Vec::new();
    let split = o.backend == Backend::Postgres;
    roles.push(start_role(
        &bin,
        dir,
        "origin",
        origin_port,
        &format!(
            "data = {:?}\nroles = [\"origin\"]\n{database}{}",
            origin_data.display().to_string(),
            if split {
                format!("[mailbox]\nurl = \"http://127.0.0.1:{mailbox_port}\"\n")
            } else {
                String::new()
            }
        ),
    )?);
    let mailbox_at = if split {
        roles.push(start_role(
            &bin,
            dir,
            "mailbox",
            mailbox_port,
            &format!(
                "data = {:?}\nroles = [\"mailbox\"]\n{database}",
                dir.join("mailbox").display().to_string()
            ),
        )?);
        mailbox_port
    } else {
        origin_port
    };
    let base = format!("http://127.0.0.1:{origin_port}");
    let admin_token = std::fs::read_to_string(origin_data.join("admin.token"))?
        .trim()
        .to_owned();
    let admin = OriginClient::new(&base, &admin_token)?;
    let (provider, user, user_token, edge_token) = rt.block_on(async {
        let p = admin
            .add_account(&NewAccount::named(
                tracecast_delivery::AccountKind::Provider,
                "aurora",
            ))
            .await?;
        let u = admin
            .add_account(&NewAccount::named(
                tracecast_delivery::AccountKind::User,
                "bench",
            ))
            .await?;
        let e = admin
            .add_account(&NewAccount {
                address: Some(format!("http://127.0.0.1:{edge_port}/edge")),
                operator: Some("bench-cdn".into()),
                fee_cents: Some(5),
                open: true,
                ..NewAccount::named(tracecast_delivery::AccountKind::Edge, "tokyo")
            })
            .await?;
        let ut = u.token.clone().context("a token")?;
        anyhow::Ok((
            OriginClient::new(&base, p.token.as_deref().context("a token")?)?,
            OriginClient::new(&base, &ut)?,
            ut,
            e.token.context("a token")?,
        ))
    })?;
    let edge_token_file = dir.join("edge.token");
    std::fs::write(&edge_token_file, &edge_token)?;
    roles.push(start_role(
        &bin,
        dir,
        "edge",
        edge_port,
        &format!(
            "data = {:?}\nroles = [\"edge\"]\norigin = {base:?}\nmark_key = {:?}\n{database}\
             [mailbox]\nurl = \"http://127.0.0.1:{mailbox_at}\"\n[edge]\ntoken_file = {:?}\n",
            dir.join("edge").display().to_string(),
            origin_data.join("mark.key").display().to_string(),
            edge_token_file.display().to_string(),
        ),
    )?);

    // A minute of music, one buyer's copy, nginx serving the same bytes.
    let wav = dir.join("track.wav");
    tracecast_media::encode_file(&tracecast_media::synth::music(60.0, 44_100, 5), &wav)?;
    let copy_file = dir.join("www/copy.flac");
    std::fs::create_dir_all(copy_file.parent().expect("a parent"))?;
    let (content, copy) = rt.block_on(async {
        let c = provider
            .add_content(&wav, "Load", 100, None, |_, _| {})
            .await?;
        // The edge says it is alive every few seconds.
        let mut p = None;
        for _ in 0..100 {
            match user.purchase(c.id, None, &[]).await {
                Ok(x) => {
                    p = Some(x);
                    break;
                }
                Err(_) => tokio::time::sleep(Duration::from_millis(100)).await,
            }
        }
        let p = p.context("no edge was designated")?;
        let edges = EdgeClient::new()?;
        let copy = edges.deliver(&p.edge_address, &p.ticket).await?;
        edges.download(&copy, &copy_file, &|_, _| {}).await?;
        anyhow::Ok((c.id, copy))
    })?;
    let len = copy.bytes;
    // tcp_nopush holds back a small range's last packet for the delayed
    // ACK (40 ms a request): nginx would be measured at its worst.
    let nginx = crate::edge_bench::start_nginx(
        &o.nginx,
        &dir.join("www"),
        &dir.join("nginx"),
        "tcp_nopush off;",
    )?;
    // A message for the fetch scenario.
    rt.block_on(async {
        let mb = tracecast_client::MailboxClient::new(
            &format!("http://127.0.0.1:{mailbox_at}"),
            &user_token,
        )?;
        mb.post(
            &"user:bench".parse()?,
            "text/plain",
            b"hello".to_vec(),
            &Default::default(),
        )
        .await?;
        anyhow::Ok(())
    })?;

    let copy_path = copy
        .url
        .split_once("127.0.0.1")
        .and_then(|(_, rest)| rest.find('/').map(|i| rest[i..].to_owned()))
        .context("the copy's URL")?;
    let auth = format!("wrk.headers[\"Authorization\"] = \"Bearer {user_token}\"\n");
    let ranges = |path: &str| {
        format!(
            "local path = {}\nlocal len = {len}\nrequest = function()\n  local s = math.random(0, len - 65537)\n  \
             return wrk.format(\"GET\", path, {{[\"Range\"] = \"bytes=\" .. s .. \"-\" .. (s + 65535)}})\nend\n",
            lua_quote(path)
        )
    };
    let whole = |path: &str| {
        format!(
            "local path = {}\nrequest = function()\n  return wrk.format(\"GET\", path)\nend\n",
            lua_quote(path)
        )
    };
    let scenarios = vec![
        Scenario {
            name: "64 KiB ranges of a kept copy",
            role: "edge",
            port: edge_port,
            script: ranges(&copy_path),
        },
        Scenario {
            name: "64 KiB ranges of a kept copy",
            role: "nginx",
            port: nginx.port,
            script: ranges("/copy.flac"),
        },
        Scenario {
            name: "whole copy",
            role: "edge",
            port: edge_port,
            script: whole(&copy_path),
        },
        Scenario {
            name: "whole copy",
            role: "nginx",
            port: nginx.port,
            script: whole("/copy.flac"),
        },
        Scenario {
            name: "post a message (durable)",
            role: "mailbox",
            port: mailbox_at,
            script: format!(
                "{auth}wrk.method = \"POST\"\nwrk.body = \"a bill\"\nwrk.headers[\"Content-Type\"] = \"text/plain\"\n\
                 wrk.path = \"/v1/boxes/user:bench/messages\"\n"
            ),
        },
        Scenario {
            name: "fetch the first message",
            role: "mailbox",
            port: mailbox_at,
            script: format!("{auth}wrk.path = \"/v1/boxes/user:bench/fetch?want=first\"\n"),
        },
        Scenario {
            name: "catalog",
            role: "origin",
            port: origin_port,
            script: format!("{auth}wrk.path = \"/v1/contents\"\n"),
        },
        Scenario {
            name: "purchase (a delivery and a signed ticket)",
            role: "origin",
            port: origin_port,
            script: format!(
                "{auth}wrk.method = \"POST\"\nwrk.body = '{{\"content\": {content}}}'\n\
                 wrk.headers[\"Content-Type\"] = \"application/json\"\nwrk.path = \"/v1/purchases\"\n"
            ),
        },
        Scenario {
            name: "readiness (store ping)",
            role: "origin",
            port: origin_port,
            script: "wrk.path = \"/readyz\"\n".to_owned(),
        },
    ];
    println!(
        "bench load: {} s a scenario, {} connections, 2 wrk threads, {} ({}), copy of {:.1} MB\n",
        o.seconds,
        o.connections,
        if split {
            "origin, mailbox and edge as separate processes on PostgreSQL"
        } else {
            "origin with its mailbox, and an edge, on SQLite"
        },
        std::thread::available_parallelism().map_or(0, |n| n.get()),
        len as f64 / 1e6
    );
    println!(
        "| scenario | served by | requests/s | MB/s | p50 ms | p99 ms | failed | RSS after MiB |"
    );
    println!("| --- | --- | ---: | ---: | ---: | ---: | ---: | ---: |");
    let at_start: Vec<f64> = roles.iter().map(|r| r.memory().1).collect();
    let mut results: BTreeMap<(&str, &str), Measured> = BTreeMap::new();
    for s in &scenarios {
        let m = run_wrk(o, dir, s)?;
        // The serving role's resident set right after its scenario, so a
        // role's memory can be put down to the load that grew it.
        let rss = roles
            .iter()
            .find(|r| r.name == s.role || (!split && s.role == "mailbox" && r.name == "origin"))
            .map_or_else(|| "—".to_owned(), |r| format!("{:.0}", r.memory().1));
        println!(
            "| {} | {} | {:.0} | {:.1} | {:.2} | {:.2} | {} | {rss} |",
            s.name, s.role, m.requests_per_sec, m.mb_per_sec, m.p50_ms, m.p99_ms, m.failed
        );
        results.insert((s.name, s.role), m);
    }
    println!();
    for name in ["64 KiB ranges of a kept copy", "whole copy"] {
        if let (Some(e), Some(n)) = (results.get(&(name, "edge")), results.get(&(name, "nginx"))) {
            println!(
                "edge / nginx, {name}: {:.2} (requests/s), p99 {:.2} ms against {:.2} ms",
                e.requests_per_sec / n.requests_per_sec,
                e.p99_ms,
                n.p99_ms
            );
        }
    }
    println!("\n| role | RSS before load MiB | peak RSS MiB | RSS now MiB |");
    println!("| --- | ---: | ---: | ---: |");
    for (r, start) in roles.iter().zip(&at_start) {
        let (peak, now) = r.memory();
        println!(
            "| {} (port {}) | {start:.0} | {peak:.0} | {now:.0} |",
            r.name, r.port
        );
    }
    drop(nginx);
    drop(roles);
    if let Some(u) = url {
        let name = u.rsplit('/').next().unwrap_or_default().to_owned();
        rt.block_on(tracecast_store::testing::drop_postgres_database(&name));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn wrk_reports_are_read() {
        let out = "Running 10s test @ http://127.0.0.1:1\n  2 threads and 32 connections\n\
  Thread Stats   Avg      Stdev     Max   +/- Stdev\n    Latency     1.20ms  300.00us  12.00ms   90.00%\n\
  Latency Distribution\n     50%  850.00us\n     75%    1.20ms\n     90%    2.00ms\n     99%    5.50ms\n\
  120000 requests in 10.00s, 1.50GB read\n  Socket errors: connect 0, read 2, write 0, timeout 1\n\
  Non-2xx or 3xx responses: 4\nRequests/sec:  12000.50\nTransfer/sec:    153.60MB\n";
        let m = parse_wrk(out).unwrap();
        assert_eq!(m.requests_per_sec, 12000.5);
        assert!((m.p50_ms - 0.85).abs() < 1e-9 && (m.p99_ms - 5.5).abs() < 1e-9);
        assert!((m.mb_per_sec - 161.06).abs() < 0.01, "{}", m.mb_per_sec);
        assert_eq!(m.failed, 7);
        assert!(parse_wrk("nothing").is_err());
        assert_eq!(millis("2.5s"), Some(2500.0));
        assert_eq!(millis("junk"), None);
    }
}
