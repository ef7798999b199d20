//! A node: any set of tracecast's roles in one process, on one listener.
//! The binary, the tests and the benchmarks all start a process through
//! [`Node::start`], from [`Settings`] merged by [`settings`] (flags, the
//! environment, the settings file) or made by [`Settings::embedded`].
//!
//! With no settings every role runs on the embedded store (SQLite and a
//! blob directory under the data directory) and a local edge is set up
//! on first start. Split over processes, the settings file points each at
//! PostgreSQL, S3, the origin and the mailbox (docs/config.md).

pub mod file;
mod settings;

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use tracecast_store::{AccountKind, Blobs, Store, StoreError};

pub use file::{parse_size, BadSize, Problems};
pub use settings::*;

use crate::edge::{Edge, EdgeConfig, EdgeIdentity};
use crate::home::{Home, HomeConfig};
use crate::kiosk::{Kiosk, KioskConfig};
use crate::mailbox::{self, MailboxConfig};
use crate::ops::Readiness;
use crate::origin::{self, Origin, OriginConfig};
use crate::site::SiteIdentity;
use tracecast_secrets::SecretFileError;

/// Why a node could not start.
#[derive(Debug, thiserror::Error)]
pub enum NodeError {
    #[error("the store: {0}")]
    Store(#[from] StoreError),
    #[error(transparent)]
    Secret(#[from] SecretFileError),
    #[error("the blob store: {0}")]
    Blobs(#[from] tracecast_store::blob::BlobError),
    #[error("listening: {0}")]
    Listen(#[from] std::io::Error),
    /// A role lacks a setting only its operator can give.
    #[error("{0}")]
    Needs(String),
    #[error("{what}: {source}")]
    Start {
        what: &'static str,
        source: Box<dyn std::error::Error + Send + Sync>,
    },
}

/// Names the part that failed to start.
fn starting<E: std::error::Error + Send + Sync + 'static>(
    what: &'static str,
) -> impl FnOnce(E) -> NodeError {
    move |e| NodeError::Start {
        what,
        source: Box::new(e),
    }
}

/// What a caller may hand a node in place of what its settings would
/// make. The binary hands nothing; tests start an origin, its edges and
/// homes as separate nodes on one throwaway store, with an origin's config
/// of their own and short report intervals.
#[derive(Default)]
pub struct Parts {
    /// An open store, used instead of the settings' database (and closed
    /// when this node stops).
    pub store: Option<Store>,
    /// The origin's whole config, used instead of the one the settings make.
    pub origin: Option<OriginConfig>,
    /// How often an edge reports its state to the origin.
    pub edge_state_every: Option<Duration>,
    /// How often a home sweeps its ended copies.
    pub home_sweep_every: Option<Duration>,
}

/// A running set of roles on one listener. Dropping it stops the listener
/// as [`Node::stop`] would, without the wait for `/readyz` to be seen.
pub struct Node {
    pub base: String,
    pub store: Store,
    pub origin: Option<Arc<Origin>>,
    pub edge: Option<Arc<Edge>>,
    pub home: Option<Arc<Home>>,
    pub admin_token: PathBuf,
    /// What `/readyz` answers; draining starts when the node stops.
    pub readiness: Readiness,
    /// The gateway's mDNS advertisement, withdrawn when the node stops.
    mdns: Option<crate::gateway::Advertisement>,
    shutdown: ShutdownSettings,
    stop: tokio::sync::oneshot::Sender<()>,
    server: tokio::task::JoinHandle<std::io::Result<()>>,
}

impl Node {
    /// Starts the roles in `s` on `listener`.
    pub async fn start(s: &Settings, listener: tokio::net::TcpListener) -> Result<Node, NodeError> {
        Self::start_with(s, listener, Parts::default()).await
    }

    /// [`Node::start`] with parts the caller made.
    pub async fn start_with(
        s: &Settings,
        listener: tokio::net::TcpListener,
        parts: Parts,
    ) -> Result<Node, NodeError> {
        let addr = listener.local_addr()?;
        // Listening on every interface: this process reaches itself (and
        // its local edge is announced) on loopback; edges for remote
        // buyers are registered with their public address.
        let reach = if addr.ip().is_unspecified() {
            std::net::SocketAddr::new(std::net::Ipv4Addr::LOCALHOST.into(), addr.port())
        } else {
            addr
        };
        let base = format!("http://{reach}");
        let store = match (parts.store, &s.database) {
            (Some(store), _) => store,
            (None, Some(url)) => Store::open(url).await?,
            (None, None) => Store::open_dir(&s.data).await?,
        };
        let readiness = Readiness::new(&s.roles.names());
        readiness.check_store(&store);
        let admin_token = s.data.join("admin.token");
        if (s.roles.mailbox || s.roles.origin)
            && crate::auth::ensure_admin(&store, &admin_token)
                .await
                .map_err(starting("the administrator token"))?
                .is_some()
        {
            tracing::info!(path = %admin_token.display(), "wrote a new administrator token");
        }
        let mut router = axum::Router::new();
        let mut mb = None;
        let mailbox_config = MailboxConfig {
            drain: readiness.drain_token(),
            ..s.mailbox.clone()
        };
        if s.roles.mailbox {
            let m = mailbox::Mailbox::start(store.clone(), mailbox_config);
            router = router.merge(mailbox::router(m.clone()));
            mb = Some(m);
        } else if s.roles.origin {
            // The mailbox role runs in another process on this database.
            mb = Some(mailbox::Mailbox::attach(store.clone(), mailbox_config));
        }
        let mut roaming = None;
        if s.roles.roaming {
            let signing = signing_key(&s.data.join("roaming-signing.key"))?;
            // 32 random bytes, kept like the signing key: the X25519 key of
            // its agreements.
            let agreement = signing_key(&s.data.join("roaming-agreement.key"))?;
            let mut agreements = s.roaming_agreements.clone();
            let mut sources = s.roaming_sources.clone();
            if s.roles.origin {
                let origin_signing = signing_key(&s.data.join("origin-ticket.key"))?;
                agreements.push(origin::licences::agreement(
                    &s.licence_issuer,
                    &origin_signing,
                ));
                // Package orders at the origin here, with a partner
                // account of its own.
                let (_, token) = local_account(
                    &store,
                    AccountKind::Partner,
                    &s.roaming_name,
                    &s.data.join("roaming-partner.token"),
                    None,
                )
                .await?;
                sources.push(crate::roaming::PackageSource {
                    issuer: s.licence_issuer.clone(),
                    origin: base.clone(),
                    token,
                });
            }
            let r = crate::roaming::Roaming::new(
                store.clone(),
                signing,
                agreement.to_bytes(),
                crate::roaming::RoamingConfig {
                    name: s.roaming_name.clone(),
                    fee_cents: s.roaming_fee_cents,
                    agreements,
                    sources,
                },
            )
            .map_err(starting("the roaming server"))?;
            if let Some(m) = &mb {
                // Users' boxes are on this store: each charge is billed.
                r.bill_through(m.clone(), crate::origin::DEFAULT_CURRENCY);
            }
            router = router.merge(crate::roaming::router(r.clone()));
            roaming = Some(r);
        }
        let blobs = if s.roles.origin || s.roles.service {
            let b = match &s.blobs {
                BlobPlace::Dir(d) => Blobs::local(d)?,
                BlobPlace::S3(s3) => Blobs::s3(s3)?,
            };
            tracing::info!(blobs = ?b, "blob store");
            Some(b)
        } else {
            None
        };
        if let (true, Some(blobs)) = (s.roles.service, &blobs) {
            let mut config = crate::service::ServiceConfig::new(
                s.service.public_url.as_deref().unwrap_or(&base),
                s.data.join("service-spool"),
            );
            config.max_upload_bytes = s.service.max_upload;
            config.upload_expiry = s.service.upload_expiry;
            config.link_lifetime = s.service.link_lifetime;
            config.keep = s.service.keep;
            let links = crate::service::Service::link_key(&s.data.join("service-link.key"))?;
            let service = crate::service::Service::new(store.clone(), blobs.clone(), links, config)
                .map_err(starting("the service server"))?;
            router = router.merge(crate::service::router(service.clone()));
            tokio::spawn(service.run_sweeper(Duration::from_secs(60)));
        }
        let mut gateway_name = None;
        if s.roles.gateway {
            let (g, name) = start_gateway(s, &store, &base).await?;
            router = router.merge(crate::gateway::router(g));
            gateway_name = Some(name);
        }
        let mut origin = None;
        if s.roles.origin {
            let blobs = blobs.clone().expect("made for the origin");
            let mark_key = mark_key(&s.mark_key, true)?;
            let signing = signing_key(&s.data.join("origin-ticket.key"))?;
            let cdn = match &s.cdn {
                Some(c) => Some(crate::origin::cdn::CdnConfig {
                    edge: c.edge.clone(),
                    url: c.url.clone(),
                    key: Arc::new(wmt_key(&s.data.join("origin-wmt.key"))?),
                    token_secs: c.token_secs,
                }),
                None => None,
            };
            let o = Origin::start(
                store.clone(),
                blobs,
                mb.clone().expect("origin runs with its mailbox"),
                signing,
                mark_key,
                parts.origin.unwrap_or_else(|| OriginConfig {
                    members: s.members.clone(),
                    attributes: s.attributes.clone(),
                    roaming: roaming.clone(),
                    roaming_partner: s.roaming_partner.clone(),
                    native_systems: s.licence_systems.clone(),
                    licence_secs: i64::from(s.licence_days) * 24 * 3600,
                    issuer: s.licence_issuer.clone(),
                    statement_days: s.statement_days,
                    budgets: s.budgets,
                    cdn: cdn.clone(),
                    regions: s.regions.clone(),
                    ..OriginConfig::default()
                }),
            )
            .await
            .map_err(starting("the origin"))?;
            router = router.merge(origin::router(o.clone()));
            if s.console {
                // The web console, a client of this origin's API.
                router = router.merge(
                    tracecast_console::router(tracecast_console::ConsoleConfig {
                        origin: base.clone(),
                        mailbox: s.mailbox_url.clone().unwrap_or_else(|| base.clone()),
                        secure_cookies: s.secure_cookies,
                    })
                    .map_err(starting("the console's templates"))?,
                );
            }
            origin = Some(o);
        }
        let mut edge = None;
        let mut pending_edge = None;
        if s.roles.edge {
            let mark_key = mark_key(&s.mark_key, false)?;
            let (config, who) = match (&s.origin_url, &origin) {
                (None, Some(o)) => local_edge(s, o, &base).await?,
                (Some(url), _) => {
                    let token =
                        read_token(s.edge_token_file.as_ref(), "edge", "--edge-token-file")?;
                    let mut config = EdgeConfig::new(url, &token, &s.data.join("edge"));
                    config.cache_bytes = s.cache_bytes;
                    config.mailbox = s.mailbox_url.clone();
                    if let Some(d) = &s.edge_dir {
                        config.dir = d.clone();
                    }
                    (config, None)
                }
                (None, None) => {
                    return Err(NodeError::Needs(
                        "an edge needs the origin's URL: --origin http://HOST:PORT".into(),
                    ))
                }
            };
            pending_edge = Some((config, who, mark_key));
        }
        // The edge's routes are mounted now; its identity may come from an
        // origin that is only reachable once this process serves.
        let slot = crate::edge::EdgeSlot::new(crate::edge::EDGE);
        if pending_edge.is_some() {
            router = router.merge(crate::edge::deferred_router(slot.clone()));
            ready_when_started(&readiness, "edge", &slot);
        }
        let home_slot = crate::home::HomeSlot::new(crate::home::HOME);
        if s.roles.home {
            router = router.merge(crate::home::deferred_router(home_slot.clone()));
            ready_when_started(&readiness, "home", &home_slot);
        }
        let kiosk_slot = crate::kiosk::KioskSlot::new(crate::kiosk::KIOSK);
        if s.roles.kiosk {
            router = router.merge(crate::kiosk::deferred_router(kiosk_slot.clone()));
            ready_when_started(&readiness, "kiosk", &kiosk_slot);
        }
        router = router.merge(crate::ops::router(
            readiness.clone(),
            &s.ops,
            s.roles.mailbox.then(|| store.clone()),
        ));
        let router = crate::ops::layer(router, &s.ops);
        let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
        let server = tokio::spawn(crate::serve(listener, router, async move {
            let _ = stopped.await;
        }));
        if let Some((mut config, who, mark_key)) = pending_edge {
            let who = match who {
                Some(w) => w,
                None => EdgeIdentity::fetch(&config, Duration::from_secs(60))
                    .await
                    .map_err(starting("the edge"))?,
            };
            config.cache_bytes = s.cache_bytes;
            if let Some(every) = parts.edge_state_every {
                config.state_every = every;
            }
            let e =
                Edge::start(store.clone(), mark_key, config, who).map_err(starting("the edge"))?;
            slot.set(e.clone());
            edge = Some(e);
        }
        let origin_url = s.origin_url.clone().unwrap_or_else(|| base.clone());
        let mut home = None;
        if s.roles.home {
            let token = read_token(s.home_token_file.as_ref(), "home", "--home-token-file")?;
            let who = SiteIdentity::fetch(
                &origin_url,
                &token,
                AccountKind::Home,
                Duration::from_secs(60),
            )
            .await
            .map_err(starting("the home server"))?;
            let dir = s.home_dir.clone().unwrap_or_else(|| s.data.join("home"));
            let mut config = HomeConfig::new(&origin_url, &token, &dir);
            config.mailbox = s.mailbox_url.clone();
            config.pace = s.rental_pace;
            if let Some(every) = parts.home_sweep_every {
                config.sweep_every = every;
            }
            let h = Home::start(store.clone(), config, who).map_err(starting("the home server"))?;
            home_slot.set(h.clone());
            home = Some(h);
        }
        if s.roles.kiosk {
            let token = read_token(s.kiosk_token_file.as_ref(), "kiosk", "--kiosk-token-file")?;
            let who = SiteIdentity::fetch(
                &origin_url,
                &token,
                AccountKind::Kiosk,
                Duration::from_secs(60),
            )
            .await
            .map_err(starting("the kiosk"))?;
            let dir = s.kiosk_dir.clone().unwrap_or_else(|| s.data.join("kiosk"));
            let mut config = KioskConfig::new(&origin_url, &token, &dir);
            config.mailbox = s.mailbox_url.clone();
            let k = Kiosk::start(store.clone(), config, who).map_err(starting("the kiosk"))?;
            kiosk_slot.set(k);
        }
        let mdns = match gateway_name {
            Some(name) if s.gateway.mdns => {
                let ip = addr.ip();
                let addrs: Vec<std::net::IpAddr> = if ip.is_unspecified() {
                    Vec::new()
                } else {
                    vec![ip]
                };
                let loopback = s.gateway.mdns_loopback || ip.is_loopback();
                match crate::gateway::advertise(&name, addr.port(), &addrs, loopback) {
                    Ok(a) => {
                        tracing::info!(gateway = %name, "advertised as _tracecast-gw._tcp");
                        Some(a)
                    }
                    // Devices can still be given the address.
                    Err(e) => {
                        tracing::warn!(error = %e, "mDNS advertisement failed; devices need --gateway");
                        None
                    }
                }
            }
            _ => None,
        };
        tracing::info!(
            %addr, roles = %s.roles.names(), store = store.backend().name(),
            "tracecast listening on {base}"
        );
        Ok(Node {
            base,
            store,
            origin,
            edge,
            home,
            admin_token,
            readiness,
            mdns,
            shutdown: s.shutdown,
            stop,
            server,
        })
    }

    /// Stops in order: `/readyz` turns 503 and long-polls and event
    /// streams end; after `unready` the listener closes; requests in
    /// flight (downloads, posts) get `grace` to finish, then are cut;
    /// last, the store commits what is queued and closes. A message is
    /// acknowledged only once durable, so none is lost either way.
    pub async fn stop(self) {
        let Node {
            store,
            edge,
            readiness,
            mdns,
            shutdown,
            stop,
            mut server,
            ..
        } = self;
        readiness.start_draining();
        drop(mdns);
        if !shutdown.unready.is_zero() {
            tracing::info!(
                secs = shutdown.unready.as_secs(),
                "draining: /readyz answers 503"
            );
            tokio::time::sleep(shutdown.unready).await;
        }
        let _ = stop.send(());
        let in_flight = crate::ops::metrics().in_flight.get();
        if in_flight > 0 {
            tracing::info!(
                requests = in_flight,
                grace_secs = shutdown.grace.as_secs(),
                "letting requests in flight finish"
            );
        }
        if tokio::time::timeout(shutdown.grace, &mut server)
            .await
            .is_err()
        {
            tracing::warn!(
                requests = crate::ops::metrics().in_flight.get(),
                "the grace period ended; cutting the requests still in flight"
            );
            server.abort();
        }
        if let Some(edge) = edge {
            edge.settle(shutdown.grace).await;
        }
        store.close().await;
        tracing::info!("stopped");
    }
}

/// `/readyz` names a late-started role not ready until it has started.
fn ready_when_started<T: Send + Sync + 'static>(
    readiness: &Readiness,
    name: &'static str,
    slot: &crate::slot::Slot<T>,
) {
    let slot = slot.clone();
    readiness.check(name, move || {
        let up = slot.is_started();
        async move { up.then_some(()).ok_or_else(|| "not started yet".to_owned()) }
    });
}

/// A role's account token, kept in a file its operator gave.
pub fn read_token(file: Option<&PathBuf>, role: &str, flag: &str) -> Result<String, NodeError> {
    let file = file.ok_or_else(|| {
        NodeError::Needs(format!("a {role} needs its account token: {flag} FILE"))
    })?;
    Ok(tracecast_secrets::read_text(file)?)
}

/// The mark key (32 raw bytes or 64 hex digits): made on first start at
/// the origin; an edge must be given the origin's.
pub fn mark_key(path: &Path, make: bool) -> Result<tracecast_mark::MarkKey, NodeError> {
    if path.exists() {
        let bytes = tracecast_secrets::read_bytes(path)?;
        return tracecast_mark::MarkKey::parse(&bytes).map_err(|e| {
            NodeError::Secret(SecretFileError::Malformed {
                path: path.to_owned(),
                expected: format!("a mark key ({e})"),
            })
        });
    }
    if !make {
        return Err(NodeError::Needs(format!(
            "an edge marks with the origin's mark key: copy it to {} or give --mark-key",
            path.display()
        )));
    }
    Ok(tracecast_mark::MarkKey::from_bytes(
        tracecast_secrets::read_or_make(path, "mark key")?,
    ))
}

/// An Ed25519 key kept as its 32-byte seed, made on first start.
fn signing_key(path: &Path) -> Result<ed25519_dalek::SigningKey, NodeError> {
    Ok(ed25519_dalek::SigningKey::from_bytes(
        &tracecast_secrets::read_or_make(path, "signing key")?,
    ))
}

/// The origin's ES256 key for watermarking tokens (PKCS#8), made on first
/// start; a file that is there but does not read stops the process
/// (replacing it would void every token out).
fn wmt_key(path: &Path) -> Result<tracecast_delivery::wmt::WmtKey, NodeError> {
    let rng = ring::rand::SystemRandom::new();
    let bytes = match tracecast_secrets::read_bytes(path) {
        Ok(b) => b,
        Err(SecretFileError::Read { source, .. })
            if source.kind() == std::io::ErrorKind::NotFound =>
        {
            let made = tracecast_delivery::wmt::WmtKey::generate(&rng)
                .map_err(|e| NodeError::Needs(e.to_string()))?;
            tracecast_secrets::write_new(path, &made)?;
            made
        }
        Err(e) => return Err(e.into()),
    };
    tracecast_delivery::wmt::WmtKey::from_pkcs8(&bytes, &rng).map_err(|e| {
        NodeError::Needs(format!(
            "{} is not a PKCS#8 P-256 key ({e}): move it away to make a new one (tokens already issued stop opening their copies)",
            path.display()
        ))
    })
}

/// In one process with the origin: an edge account made on first start
/// (its token kept in the data directory), marked with the origin's key.
async fn local_edge(
    s: &Settings,
    o: &Arc<Origin>,
    base: &str,
) -> Result<(EdgeConfig, Option<EdgeIdentity>), NodeError> {
    let (account, token) = local_account(
        o.store(),
        AccountKind::Edge,
        "local",
        &s.data.join("edge-local.token"),
        Some(tracecast_store::NewEdge {
            address: &format!("{base}/edge"),
            operator: "local",
            fee_cents: 0,
            region: None,
            // The origin's own edge, free: every provider may use it.
            open: true,
            period_fee_cents: 0,
            period_days: 0,
        }),
    )
    .await?;
    let who = o.local_edge(&account).ok_or_else(|| {
        NodeError::Needs(format!(
            "{} holds a token that is not the local edge's: move it away",
            s.data.join("edge-local.token").display()
        ))
    })?;
    let config = EdgeConfig::new(
        base,
        &token,
        &s.edge_dir.clone().unwrap_or_else(|| s.data.join("edge")),
    );
    Ok((config, Some(who)))
}

/// An account of a role in this process at the origin in this process:
/// the one whose token is kept at `token_path`, else a new one (its token
/// written there, mode 0600).
async fn local_account(
    store: &Store,
    kind: AccountKind,
    name: &str,
    token_path: &Path,
    edge: Option<tracecast_store::NewEdge<'_>>,
) -> Result<(tracecast_store::Account, String), NodeError> {
    let account = match std::fs::read_to_string(token_path) {
        Ok(token) => {
            let hash = crate::auth::token_hash(token.trim());
            match store.principal(&hash).await? {
                Some(tracecast_store::Principal::Box { id, .. }) => {
                    store.account_by_box(id).await?
                }
                _ => None,
            }
            .map(|a| (a, token))
        }
        Err(_) => None,
    };
    let (account, token) = match account {
        Some(a) => a,
        None => {
            let token = crate::auth::new_token();
            let a = store
                .add_account(kind, name, crate::auth::token_hash(&token), edge)
                .await?;
            tracecast_secrets::replace(token_path, format!("{token}\n").as_bytes())?;
            (a, token)
        }
    };
    Ok((account, token.trim().to_owned()))
}

/// Sets up the gateway role: its token, name and composer.
async fn start_gateway(
    s: &Settings,
    store: &Store,
    base: &str,
) -> Result<(Arc<crate::gateway::Gateway>, String), NodeError> {
    let g = &s.gateway;
    let token_file = g.token_file.as_ref().ok_or_else(|| {
        NodeError::Needs("a gateway needs its account token: --gateway-token-file FILE".into())
    })?;
    let token = tracecast_secrets::read_text(token_file)?;
    let service = match (&g.service, s.roles.service) {
        (Some(url), _) => url.trim_end_matches('/').to_owned(),
        (None, true) => base.to_owned(),
        (None, false) => {
            return Err(NodeError::Needs(
                "a gateway needs the service server: --service http://HOST:PORT".into(),
            ))
        }
    };
    let mailbox = g.mailbox.clone().unwrap_or_else(|| service.clone());
    // The gateway's name is its account's: asked of the store here, or of
    // the remote mailbox.
    let name = if s.roles.service {
        match store.principal(&crate::auth::token_hash(&token)).await? {
            Some(tracecast_store::Principal::Box { id, .. }) => {
                match store.account_by_box(id).await? {
                    Some(a) if a.gateway().is_some() => a.name,
                    _ => {
                        return Err(NodeError::Needs(format!(
                            "the token in {} is not a gateway's",
                            token_file.display()
                        )))
                    }
                }
            }
            _ => {
                return Err(NodeError::Needs(format!(
                    "the token in {} is unknown here",
                    token_file.display()
                )))
            }
        }
    } else {
        let who = tracecast_client::MailboxClient::new(&mailbox, &token)
            .map_err(starting("the gateway's mailbox client"))?
            .whoami()
            .await
            .map_err(starting("asking the mailbox who the gateway is"))?
            .ok_or_else(|| {
                NodeError::Needs(
                    "the gateway's token is an administrator's, not a gateway's".into(),
                )
            })?;
        match who.as_str().strip_prefix("gateway:") {
            Some(n) => n.to_owned(),
            None => {
                return Err(NodeError::Needs(format!(
                    "the token in {} is not a gateway's ({who})",
                    token_file.display()
                )))
            }
        }
    };
    let composer: Arc<dyn crate::gateway::Composer> = match &g.to {
        Some(to) => Arc::new(crate::gateway::PresetComposer {
            to: Some(to.clone()),
            text: g.text.clone(),
        }),
        None => Arc::new(crate::gateway::TerminalComposer),
    };
    let gateway = crate::gateway::Gateway::new(
        crate::gateway::GatewayConfig {
            name: name.clone(),
            service_url: service,
            mailbox_url: mailbox,
            token,
            attachment_limit: g.attachment_limit,
            max_content_bytes: g.max_content,
            policy: g.policy.clone(),
            state_dir: s.data.join("gateway"),
            link_valid_for: g.link_valid_for,
        },
        composer,
    )
    .map_err(starting("the gateway"))?;
    Ok((gateway, name))
}
