//! The origin, edges and homes over HTTP, each a node started the way
//! `tracecast serve` starts a process (`tracecast_server::node`), on one
//! throwaway store; shared by the tests that need them: each test module
//! uses a part.
#![allow(dead_code)] // each test module uses a part

use std::sync::Arc;
use std::time::Duration;

use std::path::Path;

use ed25519_dalek::SigningKey;
use reqwest::StatusCode;
use tracecast_client::{ClientError, OriginClient};
use tracecast_delivery::api::NewAccount;
use tracecast_server::edge::Edge;
use tracecast_server::node::{Node, Parts, Roles, Settings};
use tracecast_server::origin::{Origin, OriginConfig};
use tracecast_store::testing::TestStore;
use tracecast_store::Store;

pub const KEY: [u8; 32] = [9; 32];

pub struct Net {
    pub base: String,
    pub admin: OriginClient,
    pub admin_token: String,
    pub origin: Arc<Origin>,
    pub edges: Vec<(Arc<Edge>, String)>,
    pub signing: SigningKey,
    /// The origin's node, then each edge's and home's: started the way
    /// `tracecast serve` starts a process; dropping one stops it.
    nodes: Vec<Node>,
    store: Store,
    dir: tempfile::TempDir,
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

/// Settings for a node of `roles` under `data`, all sharing the mark key
/// file in `dir`.
fn settings(dir: &Path, data: &str, roles: Roles) -> Settings {
    Settings::embedded(&dir.join(data), roles, &dir.join("mark.key"))
}

const NONE: Roles = Roles::NONE;

async fn listener() -> (tokio::net::TcpListener, String) {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let base = format!("http://{}", listener.local_addr().unwrap());
    (listener, base)
}

/// [`start`] with the origin's settings: the origin with its mailbox as one
/// node, each edge as a node of its own, all on the test's store.
pub async fn start_with(t: &TestStore, edge_names: &[&str], config: OriginConfig) -> Net {
    start_roles(t, edge_names, config, NONE).await
}

/// [`start_with`], the origin's node also running `more` roles (e.g. the
/// service server).
pub async fn start_roles(
    t: &TestStore,
    edge_names: &[&str],
    config: OriginConfig,
    more: Roles,
) -> Net {
    start_signing(t, edge_names, config, more, [3; 32]).await
}

/// [`start_roles`] with the origin's signing key (`[3; 32]` there): a
/// second origin in a test is another issuer, with a key of its own.
pub async fn start_signing(
    t: &TestStore,
    edge_names: &[&str],
    config: OriginConfig,
    more: Roles,
    signing_key: [u8; 32],
) -> Net {
    let dir = tempfile::tempdir().unwrap();
    tracecast_secrets::write_new(&dir.path().join("mark.key"), &KEY).unwrap();
    // The origin's ticket key is known to the tests (they sign and verify).
    let signing = SigningKey::from_bytes(&signing_key);
    tracecast_secrets::write_new(
        &dir.path().join("origin/origin-ticket.key"),
        &signing.to_bytes(),
    )
    .unwrap();
    let roles = Roles {
        origin: true,
        mailbox: true,
        ..more
    };
    let (listen, base) = listener().await;
    let node = Node::start_with(
        &settings(dir.path(), "origin", roles),
        listen,
        Parts {
            store: Some(t.store.clone()),
            origin: Some(config),
            ..Parts::default()
        },
    )
    .await
    .unwrap();
    let admin_token = tracecast_secrets::read_text(&node.admin_token).unwrap();
    let origin = node.origin.clone().unwrap();
    let admin = OriginClient::new(&base, &admin_token).unwrap();
    let mut net = Net {
        base,
        admin,
        admin_token,
        origin,
        edges: Vec::new(),
        signing,
        nodes: vec![node],
        store: t.store.clone(),
        dir,
    };
    for name in edge_names {
        net.add_edge(name, None).await;
    }
    net
}

impl Net {
    /// Registers an edge open to every provider (its fee 5 cents more than
    /// the edges before it) standing in `region`, and starts it as a node
    /// of its own.
    pub async fn add_edge(&mut self, name: &str, region: Option<&str>) {
        self.add_edge_as(name, |e| {
            e.region = region.map(|r| r.parse().unwrap());
            e.open = true;
        })
        .await
    }

    /// The token of an edge or home this net started.
    pub fn site_token(&self, name: &str) -> String {
        std::fs::read_to_string(self.dir.path().join(format!("{name}.token"))).unwrap()
    }

    /// [`Net::add_edge`] with the registration as `terms` leave it.
    pub async fn add_edge_as(&mut self, name: &str, terms: impl FnOnce(&mut NewAccount)) {
        let (listen, base) = listener().await;
        let address = format!("{base}/edge");
        let mut new = NewAccount {
            kind: tracecast_delivery::AccountKind::Edge,
            name: name.into(),
            address: Some(address.clone()),
            operator: Some(format!("op-{name}")),
            fee_cents: Some(5 + self.edges.len() as i64),
            ..NewAccount::named(tracecast_delivery::AccountKind::Edge, "")
        };
        terms(&mut new);
        let acct = self.admin.add_account(&new).await.unwrap();
        let roles = Roles { edge: true, ..NONE };
        let node = self
            .site_node(name, roles, acct.token.as_deref().unwrap(), listen)
            .await;
        self.edges.push((node.edge.clone().unwrap(), address));
        self.nodes.push(node);
    }

    /// A node of an edge or a home that reaches the origin with `token`.
    async fn site_node(
        &self,
        name: &str,
        roles: Roles,
        token: &str,
        listen: tokio::net::TcpListener,
    ) -> Node {
        let token_file = self.dir.path().join(format!("{name}.token"));
        tracecast_secrets::write_new(&token_file, token.as_bytes()).unwrap();
        let mut s = settings(self.dir.path(), name, roles);
        s.origin_url = Some(self.base.clone());
        s.edge_token_file = Some(token_file.clone());
        s.home_token_file = Some(token_file);
        Node::start_with(
            &s,
            listen,
            Parts {
                store: Some(self.store.clone()),
                edge_state_every: Some(Duration::from_millis(200)),
                home_sweep_every: Some(Duration::from_millis(200)),
                ..Parts::default()
            },
        )
        .await
        .unwrap()
    }

    pub async fn account(&self, kind: &str, name: &str) -> (i64, OriginClient, String) {
        let a = self
            .admin
            .add_account(&NewAccount::named(kind.parse().unwrap(), name))
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

/// A home server as a node of its own, registered at the origin as
/// `name`: its id and its address (`http://…/home`).
pub async fn start_home(net: &mut Net, _t: &TestStore, name: &str) -> (u16, String) {
    start_home_as(net, name, |_| {}).await
}

/// [`start_home`] with the registration as `terms` leave it (its
/// operator `op-NAME` and fee 30 cents before).
pub async fn start_home_as(
    net: &mut Net,
    name: &str,
    terms: impl FnOnce(&mut NewAccount),
) -> (u16, String) {
    let (listen, base) = listener().await;
    let address = format!("{base}/home");
    let mut new = NewAccount {
        address: Some(address.clone()),
        operator: Some(format!("op-{name}")),
        fee_cents: Some(30),
        ..NewAccount::named(tracecast_delivery::AccountKind::Home, name)
    };
    terms(&mut new);
    let acct = net.admin.add_account(&new).await.unwrap();
    let roles = Roles { home: true, ..NONE };
    let node = net
        .site_node(name, roles, acct.token.as_deref().unwrap(), listen)
        .await;
    let id = node.home.as_ref().unwrap().id();
    net.nodes.push(node);
    (id, address)
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

/// The first message of `media_type` in box `box_name` that `pick`
/// accepts, read with the box owner's `token`; the messages before it
/// are deleted. Waits up to 5 s for it.
pub async fn find_in_box<T: serde::de::DeserializeOwned>(
    base: &str,
    token: &str,
    box_name: &str,
    media_type: &str,
    pick: impl Fn(&T) -> bool,
) -> T {
    let boxname: tracecast_mailbox::BoxName = box_name.parse().unwrap();
    let mbc = tracecast_client::MailboxClient::new(base, token).unwrap();
    let mut done = None;
    for _ in 0..100 {
        let req = tracecast_mailbox::FetchRequest {
            want: tracecast_mailbox::Want::First,
            done: done
                .take()
                .map(|id| (id, tracecast_mailbox::Disposition::Delete)),
        };
        match mbc.fetch(&boxname, req).await.unwrap().message {
            Some(m) => {
                if m.media_type == media_type {
                    let msg: T = serde_json::from_slice(&m.body).unwrap();
                    if pick(&msg) {
                        return msg;
                    }
                }
                done = Some(m.id);
            }
            None => tokio::time::sleep(std::time::Duration::from_millis(50)).await,
        }
    }
    panic!("no {media_type} message in {box_name}");
}
