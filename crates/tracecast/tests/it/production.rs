//! Running tracecast in production (issue 12), with the real binary:
//!
//! - `serve --check` reports every problem of the settings at once;
//! - SIGTERM drains a process: `/readyz` turns 503, a download in flight
//!   finishes, every message acknowledged before the stop is there after
//!   the restart, and the logs are JSON lines holding no token;
//! - the roles split over processes, each on its own port, on one
//!   PostgreSQL database and an S3-compatible bucket (secrets from files):
//!   an origin, a mailbox, two edges, a home server and a kiosk. A
//!   scripted workload of 1,000 buyers (downloads, downloads through the
//!   home, discs at the kiosk) runs with the command line while every role
//!   is killed (SIGKILL) and restarted once. Afterwards every purchase is
//!   delivered or refunded, every report was applied once and every bill
//!   sent once, the ledger balances, and every copy traces to its buyer.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use crate::delivery::{cli, free_port, json, ok, on_postgres_and_s3, Proc};
use crate::{music_wav, p};
use tracecast_store::testing::S3Server;

/// GET on loopback: status and body.
fn get(port: u16, path: &str, token: Option<&str>) -> Option<(u16, String)> {
    use std::io::{Read, Write};
    let mut s = std::net::TcpStream::connect(("127.0.0.1", port)).ok()?;
    s.set_read_timeout(Some(Duration::from_secs(10))).ok()?;
    let auth = token.map_or(String::new(), |t| format!("Authorization: Bearer {t}\r\n"));
    s.write_all(
        format!("GET {path} HTTP/1.0\r\nHost: 127.0.0.1\r\n{auth}Connection: close\r\n\r\n")
            .as_bytes(),
    )
    .ok()?;
    let mut out = Vec::new();
    s.read_to_end(&mut out).ok()?;
    let text = String::from_utf8_lossy(&out).into_owned();
    let status = text.get(9..12)?.parse().ok()?;
    let body = text.split_once("\r\n\r\n").map_or("", |x| x.1).to_owned();
    Some((status, body))
}

fn sha256_file(path: &Path) -> String {
    use sha2::Digest;
    hex::encode(sha2::Sha256::digest(std::fs::read(path).unwrap()))
}

/// Publishes `seconds` of music at 1.00: the content's id.
fn publish(dir: &Path, provider: &Path, base: &str, seconds: f32, title: &str) -> i64 {
    let src = music_wav(dir, seconds);
    let c = json(cli(
        &[
            "content",
            "add",
            p(&src),
            "--title",
            title,
            "--price",
            "1.00",
            "--json",
        ],
        provider,
        base,
    ));
    c["id"].as_i64().expect("a content id")
}

fn write(path: &Path, text: &str) -> PathBuf {
    std::fs::write(path, text).unwrap();
    path.to_owned()
}

#[test]
fn serve_check_reports_every_problem_at_once() {
    let dir = tempfile::tempdir().unwrap();
    let bad = write(
        &dir.path().join("bad.toml"),
        "roles = [\"edge\"]\nsurprise = true\n[edge]\ncache_sise = \"2G\"\n\
         [mailbox]\nurl = \"mailbox.local\"\n[log]\nformat = \"xml\"\n",
    );
    let out = Command::new(env!("CARGO_BIN_EXE_tracecast"))
        .args(["serve", "--check", "--config", p(&bad)])
        .env("TRACECAST_HTTP_MAX_IN_FLIGHT", "many")
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    let err = String::from_utf8_lossy(&out.stderr);
    for want in [
        "4 problems",
        "unknown key `surprise`",
        "unknown key `edge.cache_sise` (did you mean `edge.cache_size`?)",
        "`mailbox.url`: \"mailbox.local\" is not a URL",
        "TRACECAST_HTTP_MAX_IN_FLIGHT",
    ] {
        assert!(err.contains(want), "{want:?} missing from {err}");
    }
    // The shape is right but a value is not: named too (checked once the
    // shape passes).
    let bad_value = write(&dir.path().join("v.toml"), "[log]\nformat = \"xml\"\n");
    let out = Command::new(env!("CARGO_BIN_EXE_tracecast"))
        .args(["serve", "--check", "--config", p(&bad_value)])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("`log.format`"));
    let good = write(
        &dir.path().join("good.toml"),
        "roles = [\"edge\"]\norigin = \"http://origin.example.net:7070\"\n[edge]\ncache_size = \"2G\"\n",
    );
    let out = Command::new(env!("CARGO_BIN_EXE_tracecast"))
        .args(["serve", "--check", "--config", p(&good)])
        .env("TRACECAST_EDGE_CACHE_SIZE", "64M")
        .output()
        .unwrap();
    assert!(
        ok(out).contains("settings are valid: roles edge"),
        "a valid file passes"
    );
    let table = ok(Command::new(env!("CARGO_BIN_EXE_tracecast"))
        .args(["serve", "--options"])
        .output()
        .unwrap());
    assert!(
        table.contains("| `edge.cache_size` | size | `2G` |"),
        "{table}"
    );
}

#[test]
fn sigterm_finishes_downloads_in_flight_and_loses_no_message() {
    let dir = tempfile::tempdir().unwrap();
    let dir = dir.path();
    let data = dir.join("node");
    let conf = write(
        &dir.join("node.toml"),
        &format!(
            "data = {:?}\n[shutdown]\ngrace_secs = 60\nunready_secs = 1\n[log]\nformat = \"json\"\n",
            p(&data)
        ),
    );
    let port = free_port();
    let log = dir.join("node.log");
    let mut node = Proc::start(
        log.clone(),
        vec!["--config".into(), p(&conf).into()],
        Vec::new(),
        port,
        "/readyz",
    );
    let base = format!("http://127.0.0.1:{port}");
    let admin = data.join("admin.token");
    let account = |kind: &str, name: &str| {
        let token = dir.join(format!("{name}.token"));
        ok(cli(
            &["account", "add", kind, name, "--token-out", p(&token)],
            &admin,
            &base,
        ));
        token
    };
    let provider = account("provider", "aurora");
    let alice = account("user", "alice");
    let id = publish(dir, &provider, &base, 40.0, "Long").to_string();

    // A slow download, then messages posted without pause.
    let out = dir.join("alice.flac");
    let buy = Command::new(env!("CARGO_BIN_EXE_tracecast"))
        .args([
            "buy",
            &id,
            "--out",
            p(&out),
            "--limit-rate",
            "300K",
            "--retry-for",
            "0",
            "--json",
            "-q",
            "--server",
            &base,
            "--token-file",
            p(&alice),
        ])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let part = tracecast_client::part_path(&out);
    let deadline = Instant::now() + Duration::from_secs(60);
    while std::fs::metadata(&part).map(|m| m.len()).unwrap_or(0) < 300_000 {
        assert!(Instant::now() < deadline, "the download never started");
        std::thread::sleep(Duration::from_millis(20));
    }
    let admin_token = std::fs::read_to_string(&admin).unwrap().trim().to_owned();
    let acked = Arc::new(Mutex::new(Vec::<i64>::new()));
    let stop = Arc::new(std::sync::atomic::AtomicBool::new(false));
    let poster = {
        let (acked, stop, base, token) = (
            acked.clone(),
            stop.clone(),
            base.clone(),
            admin_token.clone(),
        );
        std::thread::spawn(move || {
            let rt = tokio::runtime::Runtime::new().unwrap();
            rt.block_on(async {
                let http = reqwest::Client::new();
                let mut n = 0;
                while !stop.load(Ordering::SeqCst) {
                    n += 1;
                    let r = http
                        .post(format!("{base}/v1/boxes/user:alice/messages"))
                        .bearer_auth(&token)
                        .header("content-type", "text/plain")
                        .body(format!("message {n}"))
                        .send()
                        .await;
                    match r {
                        Ok(r) if r.status() == reqwest::StatusCode::CREATED => {
                            let v: serde_json::Value = r.json().await.unwrap();
                            acked.lock().unwrap().push(v["id"].as_i64().unwrap());
                        }
                        // Refused while stopping (503) or the listener gone.
                        Ok(_) | Err(_) => tokio::time::sleep(Duration::from_millis(20)).await,
                    }
                }
            });
        })
    };
    while acked.lock().unwrap().len() < 20 {
        std::thread::sleep(Duration::from_millis(10));
    }
    node.signal_term();
    // Draining: not ready, alive.
    let mut saw_draining = false;
    let deadline = Instant::now() + Duration::from_millis(900);
    while Instant::now() < deadline && !saw_draining {
        if let Some((503, body)) = get(port, "/readyz", None) {
            saw_draining = body.contains("draining");
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    assert!(saw_draining, "/readyz never said draining");
    let bought = buy.wait_with_output().unwrap();
    let b: serde_json::Value = serde_json::from_slice(&ok(bought).into_bytes()).unwrap();
    assert_eq!(b["sha256"].as_str().unwrap(), sha256_file(&out));
    assert_eq!(b["resumed_from"], 0, "finished in one go, not resumed");
    let status = node.wait();
    assert!(status.success(), "a drained stop exits 0: {status:?}");
    stop.store(true, Ordering::SeqCst);
    poster.join().unwrap();

    // Every acknowledged message is there after the restart.
    node.spawn();
    let alice_token = std::fs::read_to_string(&alice).unwrap().trim().to_owned();
    // The poster runs flat out, so the box may hold more than one page
    // (1000) of messages: read every page.
    let mut stored = std::collections::HashSet::<i64>::new();
    let mut after = 0;
    loop {
        let (status, body) = get(
            port,
            &format!("/v1/boxes/user:alice/messages?limit=1000&after={after}"),
            Some(&alice_token),
        )
        .unwrap();
        assert_eq!(status, 200, "{body}");
        let listed: serde_json::Value = serde_json::from_str(&body).unwrap();
        let page: Vec<i64> = listed["messages"]
            .as_array()
            .unwrap()
            .iter()
            .map(|m| m["id"].as_i64().unwrap())
            .collect();
        stored.extend(&page);
        match page.iter().max() {
            Some(&last) if page.len() == 1000 => after = last,
            _ => break,
        }
    }
    let acked = acked.lock().unwrap().clone();
    assert!(acked.len() >= 20);
    for id in &acked {
        assert!(stored.contains(id), "acknowledged message {id} was lost");
    }
    node.kill();

    // Structured logs: one JSON object a line, no token in any.
    let text = std::fs::read_to_string(&log).unwrap();
    let mut stopped = false;
    for line in text.lines().filter(|l| !l.trim().is_empty()) {
        let v: serde_json::Value =
            serde_json::from_str(line).unwrap_or_else(|e| panic!("not JSON ({e}): {line}"));
        assert!(
            v["level"].is_string() && v["timestamp"].is_string(),
            "{line}"
        );
        stopped |= v["message"] == "stopped";
        assert!(!line.contains(&admin_token) && !line.contains(&alice_token));
    }
    assert!(stopped, "the stop is logged");
}

/// One `tracecast serve` of the split deployment.
struct Role {
    name: &'static str,
    proc: Proc,
}

/// What a buyer did.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
enum Way {
    Download,
    Home,
    Kiosk,
}

struct Buyer {
    name: String,
    id: i64,
    token: PathBuf,
    way: Way,
}

struct Done {
    delivery: i64,
    /// The copy the buyer holds (the kiosk's is read off the disc later).
    file: Option<PathBuf>,
    attempts: u32,
}

fn buyer_count() -> usize {
    std::env::var("TRACECAST_PROD_BUYERS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(1000)
}

#[test]
fn split_roles_on_postgres_and_s3_survive_restarts_with_a_thousand_buyers() {
    on_postgres_and_s3("tracecast-prod", |dir, db, s3| {
        production_run(dir, db.expect("PostgreSQL"), s3.expect("S3"), buyer_count())
    });
}

fn production_run(dir: &Path, db: &str, s3: &S3Server, n: usize) {
    let started = Instant::now();
    // Secrets in files, as an operator keeps them.
    let secrets = dir.join("secrets");
    std::fs::create_dir_all(&secrets).unwrap();
    let db_file = write(&secrets.join("database-url"), &format!("{db}\n"));
    let key_id = write(&secrets.join("s3-key-id"), "testing\n");
    let key = write(&secrets.join("s3-secret"), "testing\n");
    let ports: HashMap<&str, u16> = ["origin", "mailbox", "tokyo", "paris", "maple", "corner"]
        .into_iter()
        .map(|r| (r, free_port()))
        .collect();
    let url = |r: &str| format!("http://127.0.0.1:{}", ports[r]);
    let origin_data = dir.join("origin");
    let mark_key = origin_data.join("mark.key");
    let common = format!(
        "database_file = {:?}\n[log]\nformat = \"json\"\n[shutdown]\ngrace_secs = 10\n",
        p(&db_file)
    );
    let conf = |name: &str, body: String| -> Vec<String> {
        let path = write(&dir.join(format!("{name}.toml")), &body);
        vec!["--config".into(), p(&path).into()]
    };
    let start = |name: &'static str, args: Vec<String>| Role {
        name,
        proc: Proc::start(
            dir.join(format!("{name}.log")),
            args,
            Vec::new(),
            ports[name],
            "/readyz",
        ),
    };
    let mut roles = vec![start(
        "origin",
        conf(
            "origin",
            format!(
                "data = {:?}\nroles = [\"origin\"]\n{common}[mailbox]\nurl = {:?}\n\
                 [blobs.s3]\nbucket = {:?}\nendpoint = {:?}\nregion = \"us-east-1\"\nallow_http = true\n\
                 access_key_id_file = {:?}\nsecret_access_key_file = {:?}\n",
                p(&origin_data),
                url("mailbox"),
                s3.bucket,
                s3.endpoint,
                p(&key_id),
                p(&key),
            ),
        ),
    )];
    roles.push(start(
        "mailbox",
        conf(
            "mailbox",
            format!(
                "data = {:?}\nroles = [\"mailbox\"]\n{common}",
                p(&dir.join("mailbox"))
            ),
        ),
    ));
    let base = url("origin");
    let admin = origin_data.join("admin.token");
    let add = |args: &[&str]| ok(cli(args, &admin, &base));
    for edge in ["tokyo", "paris"] {
        let token = dir.join(format!("{edge}.token"));
        add(&[
            "account",
            "add",
            "edge",
            edge,
            "--address",
            &format!("{}/edge", url(edge)),
            "--operator",
            &format!("{edge}-ops"),
            "--fee",
            "0.05",
            "--token-out",
            p(&token),
        ]);
        roles.push(start(
            edge,
            conf(
                edge,
                format!(
                    "data = {:?}\nroles = [\"edge\"]\nmark_key = {:?}\norigin = {base:?}\n{common}\
                     [mailbox]\nurl = {:?}\n[edge]\ntoken_file = {:?}\ncache_size = \"64M\"\n",
                    p(&dir.join(edge)),
                    p(&mark_key),
                    url("mailbox"),
                    p(&token)
                ),
            ),
        ));
    }
    let site_token = |kind: &str, name: &str, extra: &[&str]| {
        let token = dir.join(format!("{name}.token"));
        let address = format!("{}/{kind}", url(name));
        let mut args = vec![
            "account",
            "add",
            kind,
            name,
            "--address",
            &address,
            "--operator",
            "shop-ops",
            "--fee",
            "0.20",
            "--token-out",
            p(&token),
        ];
        args.extend_from_slice(extra);
        add(&args);
        token
    };
    let maple = site_token("home", "maple", &[]);
    let corner = site_token("kiosk", "corner", &["--media", "cd-r=1.50"]);
    for (name, kind, token) in [("maple", "home", &maple), ("corner", "kiosk", &corner)] {
        roles.push(start(
            name,
            conf(
                name,
                format!(
                    "data = {:?}\nroles = [{kind:?}]\norigin = {base:?}\n{common}\
                     [mailbox]\nurl = {:?}\n[{kind}]\ntoken_file = {:?}\n",
                    p(&dir.join(name)),
                    url("mailbox"),
                    p(token)
                ),
            ),
        ));
    }

    // A provider, a track, and the buyers.
    let provider = dir.join("aurora.token");
    add(&[
        "account",
        "add",
        "provider",
        "aurora",
        "--token-out",
        p(&provider),
    ]);
    // The provider registers with both edges' operators (by contract, the
    // default): only then do they serve its content.
    for edge in ["tokyo", "paris"] {
        let said = ok(cli(&["contract", "add", edge], &provider, &base));
        assert!(said.contains(&format!("aurora with edge {edge}")), "{said}");
    }
    let content = publish(dir, &provider, &base, 8.0, "Etude");
    let tokens = dir.join("buyers");
    std::fs::create_dir_all(&tokens).unwrap();
    let admin_token = std::fs::read_to_string(&admin).unwrap().trim().to_owned();
    let rt = tokio::runtime::Runtime::new().unwrap();
    let buyers: Vec<Buyer> = rt.block_on(async {
        use futures::StreamExt;
        let client = tracecast_client::OriginClient::new(&base, &admin_token).unwrap();
        futures::stream::iter(0..n)
            .map(|i| {
                let client = client.clone();
                let tokens = tokens.clone();
                async move {
                    let name = format!("buyer{i:04}");
                    let a = client
                        .add_account(&tracecast_delivery::api::NewAccount::named(
                            tracecast_delivery::AccountKind::User,
                            &name,
                        ))
                        .await
                        .unwrap();
                    let token = tokens.join(format!("{name}.token"));
                    std::fs::write(&token, a.token.unwrap()).unwrap();
                    let way = match i % 50 {
                        3 => Way::Home,
                        7 => Way::Kiosk,
                        _ => Way::Download,
                    };
                    Buyer {
                        name,
                        id: a.id,
                        token,
                        way,
                    }
                }
            })
            .buffered(8)
            .collect()
            .await
    });
    eprintln!(
        "production: {} processes up, {n} buyers made in {:.1} s",
        roles.len(),
        started.elapsed().as_secs_f64()
    );

    // The workload: buyers at once, each with the command line, while the
    // roles are killed and restarted.
    let buyers = Arc::new(buyers);
    let next = Arc::new(AtomicUsize::new(0));
    let finished = Arc::new(AtomicUsize::new(0));
    let done: Arc<Mutex<HashMap<usize, Done>>> = Arc::new(Mutex::new(HashMap::new()));
    let copies = dir.join("copies");
    std::fs::create_dir_all(&copies).unwrap();
    let workers: Vec<_> = (0..12)
        .map(|_| {
            let (buyers, next, finished, done, copies, base) = (
                buyers.clone(),
                next.clone(),
                finished.clone(),
                done.clone(),
                copies.clone(),
                base.clone(),
            );
            std::thread::spawn(move || loop {
                let i = next.fetch_add(1, Ordering::SeqCst);
                let Some(b) = buyers.get(i) else { return };
                let out = copies.join(format!("{}.flac", b.name));
                let id = content.to_string();
                // One key a buyer: a buy run again after a failure is the
                // same purchase.
                let key = format!("{}-order", b.name);
                let mut args = vec![
                    "buy",
                    id.as_str(),
                    "--json",
                    "-q",
                    "--retry-for",
                    "8",
                    "--idempotency-key",
                    key.as_str(),
                ];
                match b.way {
                    Way::Download => args.extend(["--out", p(&out)]),
                    Way::Home => args.extend(["--home", "maple", "--out", p(&out)]),
                    Way::Kiosk => args.extend(["--kiosk", "corner", "--medium", "cd-r"]),
                }
                let mut attempts = 0;
                let result = loop {
                    attempts += 1;
                    let o = cli(&args, &b.token, &base);
                    if o.status.success() {
                        break serde_json::from_slice::<serde_json::Value>(&o.stdout).unwrap();
                    }
                    eprintln!(
                        "production: {} tries again: {}",
                        b.name,
                        String::from_utf8_lossy(&o.stderr).trim()
                    );
                    assert!(
                        attempts < 5,
                        "{} could not buy: {}",
                        b.name,
                        String::from_utf8_lossy(&o.stderr)
                    );
                    std::thread::sleep(Duration::from_secs(1));
                };
                let delivery = match b.way {
                    Way::Download => result["delivery"].as_i64(),
                    _ => result["purchase"]["delivery"].as_i64(),
                }
                .unwrap();
                done.lock().unwrap().insert(
                    i,
                    Done {
                        delivery,
                        file: (b.way != Way::Kiosk).then(|| out.clone()),
                        attempts,
                    },
                );
                finished.fetch_add(1, Ordering::SeqCst);
            })
        })
        .collect();
    // Each role killed once, at its point of the workload, and started
    // again after a while down. Paris stays down longer than buyers wait
    // (8 s): its buyers are sent to tokyo, and what paris had marked for
    // them is refunded.
    let schedule: [(&str, f64, u64); 6] = [
        ("tokyo", 0.10, 0),
        ("origin", 0.25, 1),
        ("mailbox", 0.40, 2),
        ("paris", 0.55, 12),
        ("maple", 0.70, 1),
        ("corner", 0.85, 1),
    ];
    for (name, at, down) in schedule {
        let threshold = (n as f64 * at) as usize;
        while finished.load(Ordering::SeqCst) < threshold {
            std::thread::sleep(Duration::from_millis(20));
        }
        let role = roles.iter_mut().find(|r| r.name == name).unwrap();
        role.proc.kill();
        eprintln!(
            "production: killed {name} after {} purchases ({:.1} s)",
            finished.load(Ordering::SeqCst),
            started.elapsed().as_secs_f64()
        );
        std::thread::sleep(Duration::from_secs(down));
        role.proc.spawn();
    }
    for w in workers {
        w.join().expect("a buyer failed");
    }
    let done = Arc::try_unwrap(done).ok().unwrap().into_inner().unwrap();
    let retried = done.values().filter(|d| d.attempts > 1).count();
    eprintln!(
        "production: {n} purchases in {:.1} s ({retried} bought on a second try)",
        started.elapsed().as_secs_f64()
    );

    // Settled: every report applied. The reports box drains and every
    // buyer's delivery reaches its final state.
    let store = rt
        .block_on(tracecast_store::Store::open(db))
        .expect("the test reads the database");
    let finals = |way: Way| match way {
        Way::Download => "marked",
        Way::Home => "delivered",
        Way::Kiosk => "disc-written",
    };
    let deadline = Instant::now() + Duration::from_secs(120);
    loop {
        let mut waiting = 0;
        for (i, d) in &done {
            let rec = rt.block_on(store.delivery(d.delivery)).unwrap().unwrap();
            if rec.status.as_str() != finals(buyers[*i].way) {
                waiting += 1;
                continue;
            }
            // A replaced delivery's revocation report may come after the
            // replacement's own: settled once each replaced one is refunded
            // or has made its replacement free.
            let all = rt
                .block_on(store.deliveries_of_user(tracecast_store::UserId(buyers[*i].id)))
                .unwrap();
            let unsettled = all
                .iter()
                .any(|o| o.id != d.delivery && o.status.is_open() && o.replaced_by.is_some());
            if unsettled && rec.waived_by.is_none() {
                waiting += 1;
            }
        }
        if waiting == 0 {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "{waiting} deliveries never reached their final state"
        );
        std::thread::sleep(Duration::from_millis(500));
    }

    // Every purchase is delivered or refunded, and paid for once. A
    // delivery replaced after bytes of it had left (its edge was killed
    // mid-download) keeps its sale, and what replaced it is free.
    let mut refunded = 0;
    let mut superseded = 0;
    let mut kept = 0;
    let mut bills_expected: HashMap<i64, usize> = HashMap::new();
    for (i, d) in &done {
        let b = &buyers[*i];
        let all = rt
            .block_on(store.deliveries_of_user(tracecast_store::UserId(b.id)))
            .unwrap();
        let mut kept_here = 0;
        for other in &all {
            if other.id == d.delivery {
                continue;
            }
            match other.status.as_str() {
                "refunded" => refunded += 1,
                "superseded" => superseded += 1,
                "marked" | "delivered" | "disc-written" => kept_here += 1,
                s => panic!(
                    "{}: delivery {} is {s}: neither delivered nor refunded",
                    b.name, other.id
                ),
            }
            assert!(other.replaced_by.is_some(), "{}: {}", b.name, other.id);
        }
        kept += kept_here;
        if kept_here > 0 {
            let last = rt.block_on(store.delivery(d.delivery)).unwrap().unwrap();
            assert!(
                last.waived_by.is_some(),
                "{}: a kept sale makes the replacement free",
                b.name
            );
        }
        let lines = rt
            .block_on(store.account_lines(&format!("user:{}", b.name)))
            .unwrap();
        let owed: i64 = lines.iter().map(|l| l.amount_cents).sum();
        match b.way {
            // The price, once; a bill for each sale, refund and waiver.
            Way::Download => {
                assert_eq!(owed, 100, "{}", b.name);
                let mut bills = 0;
                for x in &all {
                    for event in ["marked", "refund", "waived"] {
                        let e = format!("delivery-{}/{event}", x.id);
                        if rt.block_on(store.ledger_event_exists(&e)).unwrap() {
                            bills += 1;
                        }
                    }
                }
                bills_expected.insert(b.id, bills);
            }
            // The price, and the home's or store's part.
            Way::Home | Way::Kiosk => assert!(owed >= 100, "{}: {owed}", b.name),
        }
        let marked = format!("delivery-{}/marked", d.delivery);
        assert!(
            rt.block_on(store.ledger_event_exists(&marked)).unwrap() || b.way == Way::Kiosk,
            "{}: {marked}",
            b.name
        );
    }
    eprintln!(
        "production: {refunded} deliveries refunded, {superseded} superseded, {kept} served before their edge failed (kept their sale)"
    );
    assert!(
        refunded + superseded + kept > 0,
        "paris down longer than buyers wait sends some to tokyo"
    );
    let total: i64 = rt
        .block_on(store.balances())
        .unwrap()
        .iter()
        .map(|b| b.1)
        .sum();
    assert_eq!(total, 0, "the ledger balances");

    // Every report was taken and every bill sent once.
    let reports = rt
        .block_on(store.box_by_name(&"role:origin-reports".parse().unwrap()))
        .unwrap();
    let pending = rt
        .block_on(store.stats(reports.id, tracecast_store::now_ms()))
        .unwrap()
        .pending;
    assert_eq!(pending, 0, "every report was applied");
    for b in buyers.iter().filter(|b| b.way == Way::Download) {
        let a = rt
            .block_on(
                store.account(tracecast_store::AccountId::User(tracecast_store::UserId(
                    b.id,
                ))),
            )
            .unwrap()
            .unwrap();
        let bills = rt
            .block_on(store.list(a.box_id, tracecast_mailbox::MessageState::Pending, 0, 100))
            .unwrap()
            .iter()
            .filter(|m| m.media_type == tracecast_delivery::Bill::MEDIA_TYPE)
            .count();
        assert_eq!(bills, bills_expected[&b.id], "{}: bills", b.name);
    }

    // The kiosk's discs, read off the images as the shop would.
    let discs = dir.join("discs");
    std::fs::create_dir_all(&discs).unwrap();
    let mut files: Vec<(usize, PathBuf)> = Vec::new();
    for (i, d) in &done {
        match &d.file {
            Some(f) => {
                assert!(f.exists(), "{}", f.display());
                files.push((*i, f.clone()));
            }
            None => {
                let iso = discs.join(format!("{}.iso", d.delivery));
                ok(Command::new(env!("CARGO_BIN_EXE_tracecast"))
                    .args([
                        "kiosk",
                        "image",
                        &d.delivery.to_string(),
                        "--out",
                        p(&iso),
                        "--kiosk-url",
                        &format!("{}/kiosk", url("corner")),
                        "--kiosk-token-file",
                        p(&corner),
                    ])
                    .output()
                    .unwrap());
                let listing = ok(Command::new("isoinfo")
                    .args(["-R", "-f", "-i", p(&iso)])
                    .output()
                    .unwrap());
                let name = listing
                    .lines()
                    .find(|l| l.ends_with(".flac"))
                    .unwrap_or_else(|| panic!("no copy on the disc: {listing}"))
                    .to_owned();
                let out = discs.join(format!("{}.flac", d.delivery));
                let bytes = Command::new("isoinfo")
                    .args(["-R", "-i", p(&iso), "-x", &name])
                    .output()
                    .unwrap()
                    .stdout;
                std::fs::write(&out, bytes).unwrap();
                files.push((*i, out));
            }
        }
    }

    // Every copy traces to its buyer (and the site it passed through).
    let files = Arc::new(Mutex::new(files));
    let tracers: Vec<_> = (0..4)
        .map(|_| {
            let (files, buyers, admin, base) =
                (files.clone(), buyers.clone(), admin.clone(), base.clone());
            std::thread::spawn(move || loop {
                let Some((i, f)) = files.lock().unwrap().pop() else {
                    return;
                };
                let b = &buyers[i];
                let t = json(cli(&["trace", p(&f), "--json"], &admin, &base));
                assert_eq!(t["user"].as_str(), Some(b.name.as_str()), "{t}");
                let site = match b.way {
                    Way::Download => None,
                    Way::Home => Some("home maple"),
                    Way::Kiosk => Some("kiosk corner"),
                };
                assert_eq!(t["site"].as_str(), site, "{}: {t}", b.name);
            })
        })
        .collect();
    for t in tracers {
        t.join().expect("a copy did not trace to its buyer");
    }

    // The roles' metrics, as Prometheus scrapes them.
    let (status, edge) = get(ports["tokyo"], "/metrics", None).unwrap();
    assert_eq!(status, 200);
    assert!(
        edge.contains("tracecast_edge_deliveries_total{outcome=\"marked\"}"),
        "{edge}"
    );
    assert!(
        edge.contains("tracecast_mark_seconds_count{kind=\"audio\",stage=\"embed\"}"),
        "{edge}"
    );
    let (_, mailbox) = get(ports["mailbox"], "/metrics", None).unwrap();
    assert!(
        mailbox.contains("tracecast_mailbox_pending_messages{kind=\"user\"}"),
        "{mailbox}"
    );
    let (_, origin) = get(ports["origin"], "/metrics", None).unwrap();
    assert!(
        origin.contains("tracecast_origin_purchases_total{mode=\"download\"}"),
        "{origin}"
    );
    rt.block_on(store.close());
    for mut r in roles {
        let status = r.proc.terminate();
        assert!(status.success(), "{} stopped with {status:?}", r.name);
    }
    eprintln!(
        "production: checked in {:.1} s in all",
        started.elapsed().as_secs_f64()
    );
}
