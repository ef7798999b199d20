//! No message lost: the mailbox server, and separately the fetching client,
//! are killed with SIGKILL at random points while 10,000 messages go
//! through; afterwards every message is in the inbox exactly once, and
//! nothing but the message in flight at a kill was fetched twice. On SQLite
//! and on PostgreSQL.

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use rand::{Rng, SeedableRng};
use tracecast_client::{drain, DrainOptions, Inbox, MailboxClient, PostOptions};
use tracecast_mailbox::BoxName;
use tracecast_store::testing::{drop_postgres_database, TestStore};
use tracecast_store::Backend;

const MESSAGES: u64 = 10_000;
const KILLS: usize = 22;

pub struct Server {
    data: PathBuf,
    port: u16,
    database: Option<String>,
    child: Option<Child>,
}

impl Server {
    pub fn start(data: &Path, database: Option<String>) -> Self {
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port();
        let mut s = Server {
            data: data.to_owned(),
            port,
            database,
            child: None,
        };
        s.spawn();
        s
    }

    pub fn base(&self) -> String {
        format!("http://127.0.0.1:{}", self.port)
    }

    fn spawn(&mut self) {
        let mut cmd = Command::new(env!("CARGO_BIN_EXE_tracecast"));
        cmd.args(["serve", "-q", "--listen"])
            .arg(format!("127.0.0.1:{}", self.port))
            .arg("--data")
            .arg(&self.data)
            .stdout(Stdio::null())
            .stderr(Stdio::null());
        if let Some(url) = &self.database {
            cmd.arg("--database").arg(url);
        }
        self.child = Some(cmd.spawn().expect("tracecast serve starts"));
    }

    pub async fn wait_ready(&self) {
        let deadline = Instant::now() + Duration::from_secs(30);
        loop {
            if let Ok(r) = reqwest::get(format!("{}/v1/health", self.base())).await {
                if r.status().is_success() {
                    return;
                }
            }
            assert!(Instant::now() < deadline, "server did not come up");
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }

    /// SIGKILL: no shutdown, no flush.
    fn kill(&mut self) {
        if let Some(mut c) = self.child.take() {
            c.kill().unwrap();
            c.wait().unwrap();
        }
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        self.kill();
    }
}

async fn admin(server: &Server) -> MailboxClient {
    let token = std::fs::read_to_string(server.data.join("admin.token")).unwrap();
    MailboxClient::new(&server.base(), &token).unwrap()
}

/// Posts `MESSAGES` messages with idempotency keys, repeating each post
/// until it is answered (a kill may eat the answer of an applied post).
async fn produce(client: MailboxClient, to: BoxName, sent: Arc<AtomicU64>) {
    let mut next = 0u64;
    let mut in_flight = tokio::task::JoinSet::new();
    while next < MESSAGES || !in_flight.is_empty() {
        while next < MESSAGES && in_flight.len() < 8 {
            let (client, to, sent) = (client.clone(), to.clone(), sent.clone());
            let i = next;
            next += 1;
            in_flight.spawn(async move {
                let options = PostOptions {
                    idempotency_key: Some(format!("m-{i}")),
                    ..PostOptions::default()
                };
                loop {
                    let body = format!("message {i:05}").into_bytes();
                    match client.post(&to, "text/plain", body, &options).await {
                        Ok(_) => break,
                        Err(e) if e.is_transient() => {
                            tokio::time::sleep(Duration::from_millis(20)).await
                        }
                        Err(e) => panic!("post {i}: {e}"),
                    }
                }
                sent.fetch_add(1, Ordering::Relaxed);
            });
        }
        in_flight.join_next().await.unwrap().unwrap();
    }
}

/// Checks the inbox holds message 0..MESSAGES exactly once each.
fn count_lost(inbox_dir: &Path) -> (u64, u64) {
    let mut inbox = Inbox::open(inbox_dir).unwrap();
    let ids: Vec<_> = inbox.entries().map(|e| e.id).collect();
    let mut seen = vec![0u32; MESSAGES as usize];
    for id in ids {
        let body = String::from_utf8(inbox.read(id).unwrap()).unwrap();
        let i: usize = body.trim_start_matches("message ").parse().unwrap();
        seen[i] += 1;
    }
    let lost = seen.iter().filter(|&&n| n == 0).count() as u64;
    let twice = seen.iter().filter(|&&n| n > 1).count() as u64;
    (lost, twice)
}

fn receipts_again(inbox_dir: &Path) -> u64 {
    std::fs::read_to_string(inbox_dir.join("receipts.log"))
        .unwrap_or_default()
        .lines()
        .filter(|l| l.ends_with(" again"))
        .count() as u64
}

async fn database_for(backend: Backend) -> Option<String> {
    match backend {
        Backend::Sqlite => None,
        Backend::Postgres => Some(TestStore::fresh_url(Backend::Postgres).await.unwrap()),
    }
}

async fn cleanup(database: Option<String>) {
    if let Some(url) = database {
        drop_postgres_database(url.rsplit('/').next().unwrap()).await;
    }
}

async fn server_killed(backend: Backend) {
    let dir = tempfile::tempdir().unwrap();
    let database = database_for(backend).await;
    let mut server = Server::start(&dir.path().join("data"), database.clone());
    server.wait_ready().await;
    let name: BoxName = "user:crash".parse().unwrap();
    let created = admin(&server).await.create_box(&name, None).await.unwrap();
    let client = MailboxClient::new(&server.base(), &created.token).unwrap();

    let sent = Arc::new(AtomicU64::new(0));
    let producer = tokio::spawn(produce(client.clone(), name.clone(), sent.clone()));
    let inbox_dir = dir.path().join("inbox");
    let stop = Arc::new(AtomicBool::new(false));
    let received = Arc::new(AtomicU64::new(0));
    let consumer = tokio::spawn({
        let (client, name, inbox_dir, stop, received) = (
            client.clone(),
            name.clone(),
            inbox_dir.clone(),
            stop.clone(),
            received.clone(),
        );
        async move {
            let mut inbox = Inbox::open(&inbox_dir).unwrap();
            let options = DrainOptions {
                retry_for: Duration::from_secs(60),
                ..DrainOptions::default()
            };
            let mut duplicates = 0;
            while !stop.load(Ordering::Relaxed) || inbox.len() < MESSAGES as usize {
                let count = |_: &tracecast_client::Message| {
                    received.fetch_add(1, Ordering::Relaxed);
                };
                match drain(&client, &name, &mut inbox, &options, count).await {
                    Ok(r) => duplicates += r.duplicates,
                    Err(e) if e.is_transient() => {}
                    Err(e) => panic!("drain: {e}"),
                }
                tokio::time::sleep(Duration::from_millis(5)).await;
            }
            duplicates
        }
    });

    // Kill at random points spread over the whole run: posting, fetching,
    // and both at once.
    let mut rng = rand::rngs::StdRng::seed_from_u64(4);
    let mut kills = 0;
    let mut killed_while_posting = 0;
    while kills < KILLS {
        let target = (kills as u64 + 1) * 2 * MESSAGES / (KILLS as u64 + 2);
        while sent.load(Ordering::Relaxed) + received.load(Ordering::Relaxed) < target {
            tokio::time::sleep(Duration::from_millis(2)).await;
        }
        tokio::time::sleep(Duration::from_millis(rng.gen_range(0..20))).await;
        if sent.load(Ordering::Relaxed) < MESSAGES {
            killed_while_posting += 1;
        }
        server.kill();
        kills += 1;
        server.spawn();
        server.wait_ready().await;
    }
    let received_at_last_kill = received.load(Ordering::Relaxed);
    producer.await.unwrap();
    stop.store(true, Ordering::Relaxed);
    let duplicates = tokio::time::timeout(Duration::from_secs(300), consumer)
        .await
        .expect("the consumer finishes")
        .unwrap();

    let (lost, twice) = count_lost(&inbox_dir);
    eprintln!(
        "server killed {kills} times ({}; {killed_while_posting} while posting, {received_at_last_kill} \
         received at the last kill): {lost} lost, {twice} stored twice, {duplicates} fetched again",
        backend.name()
    );
    assert!(killed_while_posting > 0, "kills must land while posting");
    assert!(
        received_at_last_kill < MESSAGES,
        "kills must land while fetching"
    );
    assert_eq!(lost, 0);
    assert_eq!(twice, 0);
    assert!(
        duplicates <= kills as u64,
        "{duplicates} duplicates for {kills} kills"
    );
    let status = client.status(&name).await.unwrap();
    assert_eq!(status.stats.pending, 0, "{status:?}");
    drop(server);
    cleanup(database).await;
}

async fn client_killed(backend: Backend) {
    let dir = tempfile::tempdir().unwrap();
    let database = database_for(backend).await;
    let server = Server::start(&dir.path().join("data"), database.clone());
    server.wait_ready().await;
    let name: BoxName = "user:crash".parse().unwrap();
    let created = admin(&server).await.create_box(&name, None).await.unwrap();
    let client = MailboxClient::new(&server.base(), &created.token).unwrap();
    let token_file = dir.path().join("box.token");
    std::fs::write(&token_file, &created.token).unwrap();
    produce(client.clone(), name.clone(), Arc::new(AtomicU64::new(0))).await;

    let inbox_dir = dir.path().join("inbox");
    let fetch = || {
        Command::new(env!("CARGO_BIN_EXE_tracecast"))
            .args(["inbox", "fetch", "-q", "--json", "--server", &server.base()])
            .arg("--token-file")
            .arg(&token_file)
            .arg("--dir")
            .arg(&inbox_dir)
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap()
    };
    let mut rng = rand::rngs::StdRng::seed_from_u64(5);
    let mut kills = 0;
    let mut finished_early = 0;
    while kills < KILLS {
        let mut child = fetch();
        tokio::time::sleep(Duration::from_millis(rng.gen_range(30..250))).await;
        if child.try_wait().unwrap().is_some() {
            finished_early += 1;
            break;
        }
        child.kill().unwrap();
        child.wait().unwrap();
        kills += 1;
    }
    let stored_at_last_kill = Inbox::open(&inbox_dir).unwrap().len();
    let status = fetch().wait().unwrap();
    assert!(status.success());

    let (lost, twice) = count_lost(&inbox_dir);
    let again = receipts_again(&inbox_dir);
    eprintln!(
        "client killed {kills} times ({}; {stored_at_last_kill} stored at the last kill): \
         {lost} lost, {twice} stored twice, {again} fetched again",
        backend.name()
    );
    assert_eq!(finished_early, 0, "every kill must land while fetching");
    assert!(kills >= 20);
    assert_eq!(lost, 0);
    assert_eq!(twice, 0);
    assert!(
        again <= kills as u64,
        "{again} duplicates for {kills} kills"
    );
    assert_eq!(client.status(&name).await.unwrap().stats.pending, 0);
    drop(server);
    cleanup(database).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn server_killed_20_times_loses_nothing_on_sqlite() {
    server_killed(Backend::Sqlite).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn server_killed_20_times_loses_nothing_on_postgres() {
    server_killed(Backend::Postgres).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn client_killed_20_times_loses_nothing_on_sqlite() {
    client_killed(Backend::Sqlite).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn client_killed_20_times_loses_nothing_on_postgres() {
    client_killed(Backend::Postgres).await;
}
