//! The origin and edges in-process over HTTP, shared by the tests that
//! need them: each test binary uses a part.
#![allow(dead_code)]

use std::sync::Arc;
use std::time::Duration;

use ed25519_dalek::SigningKey;
use reqwest::StatusCode;
use tracecast_client::{ClientError, OriginClient};
use tracecast_delivery::api::NewAccount;
use tracecast_mark::MarkKey;
use tracecast_server::auth::{new_token, token_hash};
use tracecast_server::edge::{Edge, EdgeConfig, EdgeIdentity};
use tracecast_server::mailbox::{self, MailboxConfig};
use tracecast_server::origin::{self, Origin, OriginConfig};
use tracecast_store::testing::TestStore;
use tracecast_store::Blobs;

pub const KEY: [u8; 32] = [9; 32];

pub struct Net {
    pub base: String,
    pub admin: OriginClient,
    pub admin_token: String,
    pub origin: Arc<Origin>,
    pub edges: Vec<(Arc<Edge>, String)>,
    pub signing: SigningKey,
    tasks: Vec<tokio::task::JoinHandle<()>>,
    _dir: tempfile::TempDir,
}

impl Drop for Net {
    fn drop(&mut self) {
        for t in &self.tasks {
            t.abort();
        }
    }
}

pub fn serve(
    listener: tokio::net::TcpListener,
    router: axum::Router,
) -> tokio::task::JoinHandle<()> {
    tokio::spawn(async move {
        let _ = tracecast_server::serve(listener, router, std::future::pending()).await;
    })
}

pub async fn start(t: &TestStore, edge_names: &[&str]) -> Net {
    start_with(t, edge_names, OriginConfig::default()).await
}

/// [`start`] with the origin's settings.
pub async fn start_with(t: &TestStore, edge_names: &[&str], config: OriginConfig) -> Net {
    let dir = tempfile::tempdir().unwrap();
    let admin_token = new_token();
    t.store
        .add_token(token_hash(&admin_token), None, "admin")
        .await
        .unwrap();
    let mb = mailbox::Mailbox::start(t.store.clone(), MailboxConfig::default());
    let signing = SigningKey::from_bytes(&[3; 32]);
    let o = Origin::start(
        t.store.clone(),
        Blobs::local(&dir.path().join("blobs")).unwrap(),
        mb.clone(),
        signing.clone(),
        MarkKey::from_bytes(KEY),
        config,
    )
    .await
    .unwrap();
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let base = format!("http://{}", listener.local_addr().unwrap());
    let mut tasks = vec![serve(
        listener,
        mailbox::router(mb).merge(origin::router(o.clone())),
    )];
    let admin = OriginClient::new(&base, &admin_token).unwrap();
    let mut edges = Vec::new();
    for (i, name) in edge_names.iter().enumerate() {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let address = format!("http://{}/edge", listener.local_addr().unwrap());
        let acct = admin
            .add_account(&NewAccount {
                kind: "edge".into(),
                name: (*name).into(),
                address: Some(address.clone()),
                operator: Some(format!("op-{name}")),
                fee_cents: Some(5 + i as i64),
                ..NewAccount::named("edge", "")
            })
            .await
            .unwrap();
        let mut config = EdgeConfig::new(
            &base,
            acct.token.as_deref().unwrap(),
            &dir.path().join(name),
        );
        config.state_every = Duration::from_millis(200);
        let who = EdgeIdentity::fetch(&config, Duration::from_secs(5))
            .await
            .unwrap();
        let edge = Edge::start(t.store.clone(), MarkKey::from_bytes(KEY), config, who).unwrap();
        tasks.push(serve(
            listener,
            tracecast_server::edge::router(edge.clone()),
        ));
        edges.push((edge, address));
    }
    Net {
        base,
        admin,
        admin_token,
        origin: o,
        edges,
        signing,
        tasks,
        _dir: dir,
    }
}

impl Net {
    pub async fn account(&self, kind: &str, name: &str) -> (i64, OriginClient, String) {
        let a = self
            .admin
            .add_account(&NewAccount::named(kind, name))
            .await
            .unwrap();
        let token = a.token.unwrap();
        (a.id, OriginClient::new(&self.base, &token).unwrap(), token)
    }

    /// Waits until every edge has reported its state at least once.
    pub async fn edges_alive(&self) {
        for _ in 0..100 {
            let all = self.origin.store().edges().await.unwrap();
            if all.iter().all(|e| e.last_seen.is_some()) {
                return;
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        panic!("edges never reported");
    }
}

/// A home server in-process, registered at the origin as `name`: its
/// id, its address (`http://…/home`) and the task serving it.
pub async fn start_home(net: &mut Net, t: &TestStore, name: &str) -> (u16, String) {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let address = format!("http://{}/home", listener.local_addr().unwrap());
    let acct = net
        .admin
        .add_account(&NewAccount {
            address: Some(address.clone()),
            operator: Some(format!("op-{name}")),
            fee_cents: Some(30),
            ..NewAccount::named("home", name)
        })
        .await
        .unwrap();
    let token = acct.token.unwrap();
    let mut config = tracecast_server::home::HomeConfig::new(
        &net.base,
        &token,
        &net._dir.path().join(format!("home-{name}")),
    );
    config.sweep_every = Duration::from_millis(200);
    let who = tracecast_server::site::SiteIdentity::fetch(
        &net.base,
        &token,
        "home",
        Duration::from_secs(5),
    )
    .await
    .unwrap();
    let home = tracecast_server::home::Home::start(t.store.clone(), config, who).unwrap();
    net.tasks.push(serve(
        listener,
        tracecast_server::home::router(home.clone()),
    ));
    (home.id(), address)
}

pub fn track(dir: &std::path::Path, seconds: f32, seed: u64) -> std::path::PathBuf {
    let path = dir.join(format!("track-{seed}.wav"));
    tracecast_media::encode_file(&tracecast_media::synth::music(seconds, 44_100, seed), &path)
        .unwrap();
    path
}

pub fn refused(e: ClientError) -> (StatusCode, String) {
    match e {
        ClientError::Refused { status, code, .. } => (status, code),
        other => panic!("expected a refusal, got {other}"),
    }
}
