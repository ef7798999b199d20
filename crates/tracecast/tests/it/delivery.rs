//! Origin and two edges as separate `tracecast serve` processes on
//! loopback, on SQLite (a file per process, flags) and PostgreSQL (one
//! database shared by all three, settings files, renditions in an
//! S3-compatible server), driven by the command line a user would type:
//! accounts, publishing, pre-positioning, buying through both edges, an
//! edge killed mid-download (the buyer resumes when it is back, or buys
//! again at the other edge), and every copy traced to its buyer.

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::time::{Duration, Instant};

use tracecast_store::testing::{drop_postgres_database, S3Server, TestStore};
use tracecast_store::Backend;

use crate::{music_wav, p};

pub(crate) fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// Whether GET `path` answers 200 (a plain HTTP/1.0 request).
pub(crate) fn http_ok(port: u16, path: &str) -> bool {
    use std::io::{Read, Write};
    let Ok(mut s) = std::net::TcpStream::connect(("127.0.0.1", port)) else {
        return false;
    };
    let _ = s.set_read_timeout(Some(Duration::from_secs(2)));
    if s.write_all(format!("GET {path} HTTP/1.0\r\nHost: 127.0.0.1\r\n\r\n").as_bytes())
        .is_err()
    {
        return false;
    }
    let mut head = [0u8; 12];
    s.read_exact(&mut head).is_ok() && head.starts_with(b"HTTP/1.") && &head[9..12] == b"200"
}

/// One `tracecast serve` process.
pub(crate) struct Proc {
    /// The server's log (kept beside its data for a failing run).
    log: PathBuf,
    args: Vec<String>,
    envs: Vec<(&'static str, String)>,
    port: u16,
    health: &'static str,
    child: Option<Child>,
}

impl Proc {
    pub(crate) fn start(
        log: PathBuf,
        args: Vec<String>,
        envs: Vec<(&'static str, String)>,
        port: u16,
        health: &'static str,
    ) -> Proc {
        let mut p = Proc {
            log,
            args,
            envs,
            port,
            health,
            child: None,
        };
        p.spawn();
        p
    }

    pub(crate) fn spawn(&mut self) {
        let log = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(&self.log)
            .unwrap();
        let child = Command::new(env!("CARGO_BIN_EXE_tracecast"))
            .arg("serve")
            .args(&self.args)
            .envs(self.envs.iter().map(|(k, v)| (*k, v.as_str())))
            .arg("--listen")
            .arg(format!("127.0.0.1:{}", self.port))
            .stdout(Stdio::null())
            .stderr(log)
            .spawn()
            .expect("tracecast serve starts");
        self.child = Some(child);
        self.wait_ready();
    }

    fn wait_ready(&self) {
        let deadline = Instant::now() + Duration::from_secs(60);
        loop {
            if http_ok(self.port, self.health) {
                return;
            }
            assert!(
                Instant::now() < deadline,
                "127.0.0.1:{}{} did not come up",
                self.port,
                self.health
            );
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    /// The running process's id.
    pub(crate) fn pid(&self) -> u32 {
        self.child.as_ref().expect("running").id()
    }

    /// Stops the process and starts it again with more arguments.
    pub(crate) fn restart_with(&mut self, more: &[String]) {
        self.kill();
        self.args.extend_from_slice(more);
        self.spawn();
    }

    /// Asks the process to stop (SIGTERM) and waits for it to exit.
    pub(crate) fn terminate(&mut self) -> std::process::ExitStatus {
        let mut c = self.child.take().expect("running");
        let status = Command::new("kill")
            .args(["-TERM", &c.id().to_string()])
            .status()
            .unwrap();
        assert!(status.success());
        c.wait().unwrap()
    }

    /// Sends SIGTERM and returns at once; [`Proc::wait`] collects it.
    pub(crate) fn signal_term(&self) {
        let c = self.child.as_ref().expect("running");
        let status = Command::new("kill")
            .args(["-TERM", &c.id().to_string()])
            .status()
            .unwrap();
        assert!(status.success());
    }

    pub(crate) fn wait(&mut self) -> std::process::ExitStatus {
        self.child.take().expect("running").wait().unwrap()
    }

    pub(crate) fn kill(&mut self) {
        if let Some(mut c) = self.child.take() {
            c.kill().unwrap();
            c.wait().unwrap();
        }
    }
}

impl Drop for Proc {
    fn drop(&mut self) {
        self.kill();
    }
}

pub(crate) fn cli(args: &[&str], token_file: &Path, server: &str) -> Output {
    Command::new(env!("CARGO_BIN_EXE_tracecast"))
        .args(args)
        .arg("--server")
        .arg(server)
        .arg("--token-file")
        .arg(token_file)
        .output()
        .expect("tracecast runs")
}

pub(crate) fn ok(out: Output) -> String {
    assert!(
        out.status.success(),
        "status {:?}\nstdout: {}\nstderr: {}",
        out.status,
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

pub(crate) fn json(out: Output) -> serde_json::Value {
    serde_json::from_str(&ok(out)).expect("JSON output")
}

pub(crate) struct Net {
    pub(crate) dir: PathBuf,
    pub(crate) origin: Proc,
    pub(crate) edges: Vec<Proc>,
    pub(crate) base: String,
    pub(crate) admin: PathBuf,
}

impl Net {
    /// SQLite: flags, a database file per process, blobs in a directory.
    /// PostgreSQL: settings files, one database for all three processes,
    /// blobs in an S3-compatible server.
    pub(crate) fn start(dir: &Path, database: Option<&str>, s3: Option<&S3Server>) -> Net {
        let port = free_port();
        let origin_data = dir.join("origin");
        let mark_key = origin_data.join("mark.key");
        let (args, envs) = match (database, s3) {
            (Some(url), Some(s3)) => {
                let conf = dir.join("origin.toml");
                std::fs::write(
                    &conf,
                    format!(
                        "data = {:?}\nroles = [\"origin\"]\ndatabase = {url:?}\n\
                         [blobs.s3]\nbucket = {:?}\nendpoint = {:?}\nregion = \"us-east-1\"\nallow_http = true\n",
                        p(&origin_data),
                        s3.bucket,
                        s3.endpoint
                    ),
                )
                .unwrap();
                (
                    vec!["--config".to_string(), p(&conf).into()],
                    vec![
                        ("AWS_ACCESS_KEY_ID", "testing".to_string()),
                        ("AWS_SECRET_ACCESS_KEY", "testing".to_string()),
                    ],
                )
            }
            _ => (
                vec![
                    "--role".to_string(),
                    "origin".into(),
                    "--data".into(),
                    p(&origin_data).into(),
                ],
                Vec::new(),
            ),
        };
        let origin = Proc::start(dir.join("origin.log"), args, envs, port, "/v1/health");
        let base = format!("http://127.0.0.1:{port}");
        let admin = origin_data.join("admin.token");
        let mut edges = Vec::new();
        for name in ["tokyo", "paris"] {
            let port = free_port();
            let token = dir.join(format!("{name}.token"));
            ok(cli(
                &[
                    "account",
                    "add",
                    "edge",
                    name,
                    "--address",
                    &format!("http://127.0.0.1:{port}/edge"),
                    "--operator",
                    &format!("{name}-ops"),
                    "--fee",
                    "0.05",
                    "--open",
                    "--token-out",
                    p(&token),
                ],
                &admin,
                &base,
            ));
            let args = match database {
                Some(url) => {
                    let conf = dir.join(format!("{name}.toml"));
                    std::fs::write(
                        &conf,
                        format!(
                            "data = {:?}\nroles = [\"edge\"]\ndatabase = {url:?}\nmark_key = {:?}\n\
                             [edge]\norigin = {base:?}\ntoken_file = {:?}\ncache_size = \"64M\"\n",
                            p(&dir.join(name)),
                            p(&mark_key),
                            p(&token)
                        ),
                    )
                    .unwrap();
                    vec!["--config".to_string(), p(&conf).into()]
                }
                None => vec![
                    "--role".to_string(),
                    "edge".into(),
                    "--data".into(),
                    p(&dir.join(name)).into(),
                    "--origin".into(),
                    base.clone(),
                    "--edge-token-file".into(),
                    p(&token).into(),
                    "--mark-key".into(),
                    p(&mark_key).into(),
                ],
            };
            edges.push(Proc::start(
                dir.join(format!("{name}.log")),
                args,
                Vec::new(),
                port,
                "/edge/v1/health",
            ));
        }
        Net {
            dir: dir.to_owned(),
            origin,
            edges,
            base,
            admin,
        }
    }

    pub(crate) fn account(&self, kind: &str, name: &str) -> PathBuf {
        let token = self.dir.join(format!("{name}.token"));
        ok(cli(
            &["account", "add", kind, name, "--token-out", p(&token)],
            &self.admin,
            &self.base,
        ));
        token
    }

    /// `content add FILE --title TITLE --price PRICE [EXTRA…] --json` by
    /// `provider`: the content's JSON, and its id as an argument.
    pub(crate) fn publish(
        &self,
        provider: &Path,
        src: &Path,
        title: &str,
        price: &str,
        extra: &[&str],
    ) -> (serde_json::Value, String) {
        let mut args = vec!["content", "add", p(src), "--title", title, "--price", price];
        args.extend_from_slice(extra);
        args.push("--json");
        let c = json(self.run(provider, &args));
        let id = c["id"].as_i64().expect("a content id").to_string();
        (c, id)
    }

    pub(crate) fn run(&self, token: &Path, args: &[&str]) -> Output {
        cli(args, token, &self.base)
    }

    fn spawn_buy(&self, token: &Path, args: &[&str]) -> Child {
        Command::new(env!("CARGO_BIN_EXE_tracecast"))
            .args(args)
            .args([
                "--json",
                "-q",
                "--server",
                &self.base,
                "--token-file",
                p(token),
            ])
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap()
    }
}

/// Waits until `path` holds at least `bytes`.
fn wait_for_part(path: &Path, bytes: u64) {
    let deadline = Instant::now() + Duration::from_secs(60);
    while std::fs::metadata(path).map(|m| m.len()).unwrap_or(0) < bytes {
        assert!(Instant::now() < deadline, "{} never grew", path.display());
        std::thread::sleep(Duration::from_millis(20));
    }
}

fn finish(child: Child) -> serde_json::Value {
    json(child.wait_with_output().unwrap())
}

pub(crate) fn traced(net: &Net, file: &Path) -> serde_json::Value {
    json(net.run(&net.admin, &["trace", p(file), "--json"]))
}

fn whole_flow(dir: &Path, database: Option<&str>, s3: Option<&S3Server>) {
    let mut net = Net::start(dir, database, s3);
    let provider = net.account("provider", "aurora");
    let alice = net.account("user", "alice");
    let bob = net.account("user", "bob");
    let carol = net.account("user", "carol");

    let src = music_wav(dir, 24.0);
    let (c, id) = net.publish(&provider, &src, "Etude", "1.50", &[]);
    assert_eq!(c["renditions"].as_array().unwrap().len(), 3);

    // Pre-position on tokyo, then alice is sent to tokyo, which holds it.
    ok(net.run(
        &provider,
        &[
            "content",
            "pre-position",
            &id,
            "--tier",
            "high",
            "--edge",
            "1",
        ],
    ));
    let deadline = Instant::now() + Duration::from_secs(30);
    let alice_out = dir.join("alice.flac");
    loop {
        let b = json(net.run(
            &alice,
            &[
                "buy",
                &id,
                "--tier",
                "high",
                "--out",
                p(&alice_out),
                "--json",
            ],
        ));
        if b["edge"] == "tokyo" {
            break;
        }
        // Not yet reported: designation went by load; try again.
        assert!(
            Instant::now() < deadline,
            "tokyo never became the designated holder"
        );
        std::fs::remove_file(&alice_out).unwrap();
        std::thread::sleep(Duration::from_millis(300));
    }

    // Bob's download is cut: his edge and his `buy` die mid-download (a
    // killed server's last bytes may already sit in the buyer's socket
    // buffer, so the buyer is stopped too to leave a true half file). The
    // edge comes back; `buy` run again continues the same delivery from
    // where the part file ends, on the copy the edge kept (or, had it
    // died while marking it, marked again to the same bytes: a copy is
    // written in order, so what was followed is a prefix of it).
    let bob_out = dir.join("bob.flac");
    let buy_bob = [
        "buy",
        &id,
        "--out",
        p(&bob_out),
        "--limit-rate",
        "200K",
        "--retry-for",
        "60",
    ];
    let mut child = net.spawn_buy(&bob, &buy_bob);
    let part = tracecast_client::part_path(&bob_out);
    wait_for_part(&part, 150_000);
    let sidecar = dir.join("bob.flac.purchase.json");
    let designated: serde_json::Value =
        serde_json::from_slice(&std::fs::read(&sidecar).unwrap()).unwrap();
    let edge_index = (designated["edge_id"].as_i64().unwrap() - 1) as usize;
    net.edges[edge_index].kill();
    child.kill().unwrap();
    child.wait().unwrap();
    let cut_at = std::fs::metadata(&part).unwrap().len();
    net.edges[edge_index].spawn();
    let b = finish(net.spawn_buy(&bob, &buy_bob[..6]));
    assert_eq!(b["resumed_from"].as_u64().unwrap(), cut_at, "{b}");
    assert_eq!(b["delivery"], designated["delivery"]);
    assert!(!sidecar.exists() && !part.exists());

    // Carol's edge dies for good during her download: `buy` run again
    // cannot reach it, asks the origin for another edge, and gets a new
    // copy marked there.
    let carol_out = dir.join("carol.flac");
    let buy_carol = [
        "buy",
        &id,
        "--out",
        p(&carol_out),
        "--limit-rate",
        "200K",
        "--retry-for",
        "3",
    ];
    let mut child = net.spawn_buy(&carol, &buy_carol);
    wait_for_part(&tracecast_client::part_path(&carol_out), 100_000);
    let first: serde_json::Value =
        serde_json::from_slice(&std::fs::read(dir.join("carol.flac.purchase.json")).unwrap())
            .unwrap();
    let dead = (first["edge_id"].as_i64().unwrap() - 1) as usize;
    net.edges[dead].kill();
    child.kill().unwrap();
    child.wait().unwrap();
    let b = finish(net.spawn_buy(
        &carol,
        &["buy", &id, "--out", p(&carol_out), "--retry-for", "3"],
    ));
    assert_ne!(b["edge"], first["edge_name"], "{b}");
    assert_ne!(b["delivery"], first["delivery"]);
    assert_eq!(b["resumed_from"], 0);

    // Every copy traces to its buyer and the edge that marked it.
    for (file, user, edge) in [
        (&alice_out, "alice", "tokyo".to_string()),
        (
            &bob_out,
            "bob",
            designated["edge_name"].as_str().unwrap().to_string(),
        ),
        (&carol_out, "carol", b["edge"].as_str().unwrap().to_string()),
    ] {
        let t = traced(&net, file);
        assert_eq!(t["user"], user, "{t}");
        assert_eq!(t["edge"].as_str().unwrap(), edge, "{t}");
        assert!(t["mark"]["tag_verified"].as_bool().unwrap());
    }
    // The unmarked source: no mark, exit status 1.
    let out = net.run(&net.admin, &["trace", p(&src)]);
    assert_eq!(out.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&out.stdout).contains("no mark"));
    // Bad input from the command line: unknown content, a foreign token.
    let out = net.run(&alice, &["buy", "9999", "--out", p(&dir.join("x.flac"))]);
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("no content 9999"));
    let out = net.run(&alice, &["content", "add", p(&src), "--title", "Stolen"]);
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("provider token"));
    net.origin.kill();
    // Origin unreachable: a clear error.
    let out = net.run(&alice, &["buy", &id, "--out", p(&dir.join("y.flac"))]);
    assert_eq!(out.status.code(), Some(2));
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("unreachable"),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
}

#[test]
fn origin_and_two_edges_as_processes_on_sqlite() {
    let dir = tempfile::tempdir().unwrap();
    whole_flow(dir.path(), None, None);
}

/// Runs `flow` in a fresh directory on a fresh PostgreSQL database and an
/// S3-compatible bucket, then drops the database.
pub(crate) fn on_postgres_and_s3(
    bucket: &str,
    flow: impl FnOnce(&Path, Option<&str>, Option<&S3Server>),
) {
    let dir = tempfile::tempdir().unwrap();
    let rt = tokio::runtime::Runtime::new().unwrap();
    let url = rt
        .block_on(TestStore::fresh_url(Backend::Postgres))
        .expect("PostgreSQL for tests");
    let s3 = S3Server::start(bucket);
    flow(dir.path(), Some(&url), Some(&s3));
    let name = url.rsplit('/').next().unwrap().to_owned();
    rt.block_on(drop_postgres_database(&name));
}

#[test]
fn origin_and_two_edges_as_processes_on_postgres() {
    on_postgres_and_s3("tracecast-it", whole_flow);
}

/// `tracecast buy --out FILE.mp3`: a content with MP3 A/B variants comes
/// as MP3 spliced by the edge (its tier chosen for the buyer), which
/// decodes cleanly and traces to its buyer; a content without is refused
/// before anything is bought.
#[test]
fn a_buyer_asks_for_mp3_by_the_file_name() {
    let dir = tempfile::tempdir().unwrap();
    let dir = dir.path();
    let net = Net::start(dir, None, None);
    let provider = net.account("provider", "aurora");
    let alice = net.account("user", "alice");
    let long = music_wav(dir, 40.0);
    let (c, ab_id) = net.publish(&provider, &long, "Long", "1.00", &["--ab"]);
    let high = c["renditions"]
        .as_array()
        .unwrap()
        .iter()
        .find(|r| r["tier"] == "high")
        .unwrap();
    assert_eq!(high["ab"]["mp3"]["kbps"], 320, "{c}");
    let out = dir.join("alice.mp3");
    let b = json(net.run(&alice, &["buy", &ab_id, "--out", p(&out), "--json"]));
    assert_eq!(b["tier"], "high", "{b}");
    let bytes = std::fs::read(&out).unwrap();
    assert_eq!(b["bytes"].as_u64().unwrap(), bytes.len() as u64);
    use sha2::Digest;
    assert_eq!(
        b["sha256"].as_str().unwrap(),
        hex::encode(sha2::Sha256::digest(&bytes))
    );
    assert!(tracecast_media::mp3::frame_sizes(&bytes).is_ok());
    let ff = Command::new("ffmpeg")
        .args(["-v", "error", "-i", p(&out), "-f", "null", "-"])
        .output()
        .unwrap();
    assert!(ff.status.success() && ff.stderr.is_empty(), "{ff:?}");
    let t = traced(&net, &out);
    assert_eq!(t["user"], "alice", "{t}");

    // Short music is marked copy by copy: no MP3 form, nothing bought.
    let short = music_wav(dir, 12.0);
    let (_, direct_id) = net.publish(&provider, &short, "Short", "1.00", &[]);
    let no = dir.join("short.mp3");
    let out = net.run(&alice, &["buy", &direct_id, "--out", p(&no)]);
    assert_eq!(out.status.code(), Some(2));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("has no mp3 copies"), "{err}");
    assert!(!no.exists());
    assert!(!tracecast_client::purchase_path(&no).exists());
}
