//! `tracecast serve`: any set of roles in one process. With no settings,
//! every role runs on the embedded store (SQLite and a blob directory
//! under the data directory) and a local edge is set up on first start.
//! Split over processes, a TOML file (`--config`, see `config.rs` and
//! docs/config.md) points each at PostgreSQL, S3, the origin and the
//! mailbox.

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use anyhow::{bail, Context};
use tracecast_mailbox::{Backoff, Retention};
use tracecast_server::edge::{Edge, EdgeConfig, EdgeIdentity};
use tracecast_server::home::{Home, HomeConfig};
use tracecast_server::kiosk::{Kiosk, KioskConfig};
use tracecast_server::mailbox::{self, MailboxConfig};
use tracecast_server::ops::{OpsConfig, Readiness};
use tracecast_server::origin::{self, Origin, OriginConfig};
use tracecast_server::site::SiteIdentity;
use tracecast_store::blob::S3Settings;
use tracecast_store::{AccountKind, Blobs, Store};

use crate::cli::ServeArgs;
use crate::config::{self, FileConfig, Problems};

const DAY: u64 = 24 * 3600;

/// The service role's settings.
#[derive(Debug, Clone)]
pub struct ServiceSettings {
    pub public_url: Option<String>,
    pub max_upload: u64,
    pub upload_expiry: Duration,
    pub link_lifetime: Duration,
    pub keep: Duration,
}

impl Default for ServiceSettings {
    fn default() -> Self {
        Self {
            public_url: None,
            max_upload: 16 << 30,
            upload_expiry: Duration::from_secs(24 * 3600),
            link_lifetime: Duration::from_secs(7 * DAY),
            keep: Duration::from_secs(30 * DAY),
        }
    }
}

impl Default for GatewaySettings {
    fn default() -> Self {
        Self {
            service: None,
            mailbox: None,
            token_file: None,
            attachment_limit: tracecast_server::gateway::DEFAULT_ATTACHMENT_LIMIT,
            max_content: 16 << 30,
            policy: Default::default(),
            link_valid_for: None,
            mdns: true,
            mdns_loopback: false,
            to: None,
            text: None,
        }
    }
}

/// The gateway role's settings.
#[derive(Debug, Clone)]
pub struct GatewaySettings {
    pub service: Option<String>,
    pub mailbox: Option<String>,
    pub token_file: Option<PathBuf>,
    pub attachment_limit: u64,
    pub max_content: u64,
    pub policy: tracecast_share::gateway::DevicePolicy,
    pub link_valid_for: Option<Duration>,
    pub mdns: bool,
    pub mdns_loopback: bool,
    pub to: Option<String>,
    pub text: Option<String>,
}

/// Logs: text for people or JSON lines for collectors.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum LogFormat {
    #[default]
    Text,
    Json,
}

/// How the process stops on SIGTERM or Ctrl-C.
#[derive(Debug, Clone, Copy)]
pub struct ShutdownSettings {
    /// Requests in flight may take this long to finish.
    pub grace: Duration,
    /// `/readyz` answers 503 this long before the listener closes.
    pub unready: Duration,
}

impl Default for ShutdownSettings {
    fn default() -> Self {
        Self {
            grace: Duration::from_secs(60),
            unready: Duration::ZERO,
        }
    }
}
/// Which roles a process runs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Roles {
    pub origin: bool,
    pub mailbox: bool,
    pub edge: bool,
    /// A home server (never implied: it has its own account).
    pub home: bool,
    /// A store's kiosk (never implied: it has its own account).
    pub kiosk: bool,
    /// A roaming server for licences.
    pub roaming: bool,
    /// The service server for sharing from devices (DESIGN.md "000").
    pub service: bool,
    /// A gateway (a phone; never implied: it has its own account).
    pub gateway: bool,
}

impl Roles {
    pub const ALL: Roles = Roles {
        origin: true,
        mailbox: true,
        edge: true,
        home: false,
        kiosk: false,
        roaming: true,
        service: true,
        gateway: false,
    };

    pub fn parse(names: &[String]) -> anyhow::Result<Roles> {
        if names.is_empty() {
            return Ok(Roles::ALL);
        }
        let mut r = Roles {
            origin: false,
            mailbox: false,
            edge: false,
            home: false,
            kiosk: false,
            roaming: false,
            service: false,
            gateway: false,
        };
        for n in names {
            match n.trim() {
                "origin" => r.origin = true,
                "mailbox" => r.mailbox = true,
                "edge" => r.edge = true,
                "home" => r.home = true,
                "kiosk" => r.kiosk = true,
                "roaming" => r.roaming = true,
                "service" => r.service = true,
                "gateway" => r.gateway = true,
                "all" => {
                    r.origin = true;
                    r.mailbox = true;
                    r.edge = true;
                    r.roaming = true;
                    r.service = true;
                }
                other => bail!(
                    "unknown role {other:?}: origin, mailbox, edge, home, kiosk, roaming, service, gateway or all"
                ),
            }
        }
        Ok(r)
    }

    pub fn names(&self) -> String {
        let mut v = Vec::new();
        if self.origin {
            v.push("origin");
        }
        if self.mailbox {
            v.push("mailbox");
        }
        if self.edge {
            v.push("edge");
        }
        if self.home {
            v.push("home");
        }
        if self.kiosk {
            v.push("kiosk");
        }
        if self.roaming {
            v.push("roaming");
        }
        if self.service {
            v.push("service");
        }
        if self.gateway {
            v.push("gateway");
        }
        v.join(",")
    }
}

/// Where blobs go.
#[derive(Debug, Clone)]
pub enum BlobPlace {
    Dir(PathBuf),
    S3(S3Settings),
}

/// Everything a node needs, merged from flags, the environment and the
/// settings file (in that order of precedence).
#[derive(Debug, Clone)]
pub struct Settings {
    pub data: PathBuf,
    pub listen: String,
    pub database: Option<String>,
    pub blobs: BlobPlace,
    pub roles: Roles,
    pub mark_key: PathBuf,
    /// The origin's URL; `None` when the origin runs in this process.
    pub origin_url: Option<String>,
    /// The mailbox's URL when it runs in another process.
    pub mailbox_url: Option<String>,
    pub edge_token_file: Option<PathBuf>,
    pub edge_dir: Option<PathBuf>,
    pub home_token_file: Option<PathBuf>,
    pub home_dir: Option<PathBuf>,
    /// How a home hands out rentals.
    pub rental_pace: tracecast_delivery::rental::Pace,
    pub kiosk_token_file: Option<PathBuf>,
    pub kiosk_dir: Option<PathBuf>,
    pub members: tracecast_members::Policy,
    pub attributes: tracecast_members::AttributeTable,
    pub cache_bytes: u64,
    pub mailbox: MailboxConfig,
    pub roaming_name: String,
    pub roaming_fee_cents: i64,
    pub roaming_agreements: Vec<tracecast_protect::Agreement>,
    pub roaming_sources: Vec<tracecast_server::roaming::PackageSource>,
    pub licence_days: u32,
    /// What one trace or ingest may cost.
    pub budgets: tracecast_server::origin::Budgets,
    pub licence_systems: Vec<tracecast_protect::System>,
    pub roaming_partner: Option<tracecast_server::origin::licences::RoamingPartner>,
    pub service: ServiceSettings,
    pub gateway: GatewaySettings,
    pub ops: OpsConfig,
    pub log_format: LogFormat,
    pub log_level: String,
    pub shutdown: ShutdownSettings,
    pub console: bool,
    pub secure_cookies: bool,
}

impl Settings {
    /// Everything on the embedded store under `data`, with defaults.
    pub fn embedded(data: &Path, roles: Roles, mark_key: &Path) -> Settings {
        Settings {
            data: data.to_owned(),
            listen: "127.0.0.1:0".into(),
            database: None,
            blobs: BlobPlace::Dir(data.join("blobs")),
            roles,
            mark_key: mark_key.to_owned(),
            origin_url: None,
            mailbox_url: None,
            edge_token_file: None,
            edge_dir: None,
            home_token_file: None,
            home_dir: None,
            rental_pace: Default::default(),
            kiosk_token_file: None,
            kiosk_dir: None,
            members: Default::default(),
            attributes: Default::default(),
            cache_bytes: 2 << 30,
            mailbox: Default::default(),
            roaming_name: "roaming".into(),
            roaming_fee_cents: 10,
            roaming_agreements: Vec::new(),
            roaming_sources: Vec::new(),
            licence_days: 30,
            budgets: Default::default(),
            licence_systems: vec![
                tracecast_protect::System::Clearkey,
                tracecast_protect::System::Age,
                tracecast_protect::System::Device,
            ],
            roaming_partner: None,
            service: Default::default(),
            gateway: Default::default(),
            ops: OpsConfig::default(),
            log_format: LogFormat::Text,
            log_level: "info".into(),
            shutdown: ShutdownSettings::default(),
            console: true,
            secure_cookies: false,
        }
    }
}

pub use crate::config::parse_size;

/// The settings of `tracecast serve ARGS`: the file, then the environment's
/// `TRACECAST_*` overrides, then the flags; every problem is reported at
/// once.
pub fn settings(args: &ServeArgs) -> anyhow::Result<Settings> {
    settings_from(args, &config::env_vars())
}

fn settings_from(args: &ServeArgs, env: &[(String, String)]) -> anyhow::Result<Settings> {
    let file: FileConfig = config::load(args.config.as_deref(), env)?;
    let mut problems = Problems::default();
    // Collects a problem and goes on with a default, so every problem is
    // found in one run.
    macro_rules! or_note {
        ($e:expr, $default:expr) => {
            match $e {
                Ok(v) => v,
                Err(e) => {
                    problems.push(format!("{e:#}"));
                    $default
                }
            }
        };
    }
    let data = if args.data != Path::new("tracecast-data") || file.data.is_none() {
        args.data.clone()
    } else {
        file.data.clone().unwrap_or_default()
    };
    let listen = if args.listen != "127.0.0.1:7070" {
        args.listen.clone()
    } else {
        file.listen.clone().unwrap_or_else(|| args.listen.clone())
    };
    let mut roles = or_note!(
        if !args.role.is_empty() {
            Roles::parse(&args.role)
        } else {
            Roles::parse(file.roles.as_deref().unwrap_or(&[]))
        }
        .context("`roles`"),
        Roles::ALL
    );
    let database = match (&args.database, &file.database, &file.database_file) {
        (Some(d), _, _) => Some(d.clone()),
        (None, Some(_), Some(_)) => {
            problems.push("`database` and `database_file`: give one, not both");
            None
        }
        (None, Some(d), None) => Some(d.clone()),
        (None, None, Some(f)) => or_note!(config::read_secret(f, "database_file").map(Some), None),
        (None, None, None) => None,
    };
    let mailbox_file = file.mailbox.unwrap_or_default();
    let mailbox_url = mailbox_file
        .url
        .clone()
        .map(|u| u.trim_end_matches('/').to_owned());
    // An origin talks to edges and users through a mailbox: its own,
    // unless one runs elsewhere on the same (PostgreSQL) database.
    if roles.origin && mailbox_url.is_none() {
        roles.mailbox = true;
    }
    if roles.origin && !roles.mailbox && mailbox_url.is_some() {
        match &database {
            Some(d) if d.starts_with("postgres") => {}
            _ => problems.push(
                "`mailbox.url`: an origin whose mailbox runs elsewhere shares its PostgreSQL database: set `database = \"postgres://…\"`",
            ),
        }
    }
    let blob_file = file.blobs.unwrap_or_default();
    let blobs = match (&args.blobs, &blob_file) {
        (Some(b), _) if b.starts_with("s3://") => BlobPlace::S3(S3Settings {
            bucket: b
                .trim_start_matches("s3://")
                .trim_end_matches('/')
                .to_owned(),
            ..blob_file.s3.clone().unwrap_or_default()
        }),
        (Some(b), _) => BlobPlace::Dir(PathBuf::from(b)),
        (None, config::BlobsConfig { s3: Some(s3), dir }) => {
            if dir.is_some() {
                problems.push("`blobs.dir` and `blobs.s3`: give one, not both");
            }
            BlobPlace::S3(s3.clone())
        }
        (None, config::BlobsConfig { dir: Some(d), .. }) => BlobPlace::Dir(d.clone()),
        _ => BlobPlace::Dir(data.join("blobs")),
    };
    let edge_file = file.edge.unwrap_or_default();
    let home_file = file.home.unwrap_or_default();
    let mut rental_pace = tracecast_delivery::rental::Pace::default();
    if let Some(secs) = home_file.rental_lead_secs {
        rental_pace.lead_ms = (secs.min(24 * 3600) * 1000) as i64;
    }
    if let Some(m) = &home_file.rental_max_range {
        let n = or_note!(parse_size(m).context("`home.rental_max_range`"), 0);
        if n == 0 {
            problems.push("`home.rental_max_range` must be at least 1 byte");
        }
        rental_pace.max_range = n.max(1);
    }
    let members = file.members.clone().unwrap_or_default();
    or_note!(members.check().context("`members`"), ());
    let attributes = file.attributes.clone().unwrap_or_default();
    or_note!(attributes.check().context("`attributes`"), ());
    let kiosk_file = file.kiosk.unwrap_or_default();
    let roaming_file = file.roaming.unwrap_or_default();
    let b64 = |v: &str, what: &str| -> anyhow::Result<[u8; 32]> {
        Ok(tracecast_protect::decode32(v, what)?)
    };
    let mut roaming_agreements = Vec::new();
    let mut roaming_sources = Vec::new();
    for a in &roaming_file.agreements {
        let keys = (|| -> anyhow::Result<tracecast_protect::Agreement> {
            Ok(tracecast_protect::Agreement {
                issuer: a.issuer.clone(),
                signing: ed25519_dalek::VerifyingKey::from_bytes(&b64(
                    &a.signing_key,
                    "signing_key",
                )?)
                .context("signing_key is not an Ed25519 key")?,
                agreement_public: b64(&a.agreement_key, "agreement_key")?,
            })
        })();
        if let Some(agreement) = or_note!(
            keys.with_context(|| format!("`roaming.agreements` {}", a.issuer))
                .map(Some),
            None
        ) {
            roaming_agreements.push(agreement);
        }
        match (&a.origin, &a.token_file) {
            (Some(origin), Some(token_file)) => {
                if let Some(token) = or_note!(
                    config::read_secret(token_file, "roaming.agreements[].token_file").map(Some),
                    None
                ) {
                    roaming_sources.push(tracecast_server::roaming::PackageSource {
                        issuer: a.issuer.clone(),
                        origin: origin.trim_end_matches('/').to_owned(),
                        token,
                    });
                }
            }
            (None, None) => {}
            _ => problems.push(format!(
                "`roaming.agreements` {}: give origin and token_file together",
                a.issuer
            )),
        }
    }
    let licences_file = file.licences.unwrap_or_default();
    let roaming_partner = match &licences_file.roaming {
        Some(p) => or_note!(
            (|| -> anyhow::Result<_> {
                Ok(Some(tracecast_server::origin::licences::RoamingPartner {
                    name: p.name.clone(),
                    signing: ed25519_dalek::VerifyingKey::from_bytes(&b64(
                        &p.signing_key,
                        "signing_key",
                    )?)
                    .context("signing_key is not an Ed25519 key")?,
                    agreement_key: b64(&p.agreement_key, "agreement_key")?,
                    url: p.url.as_ref().map(|u| u.trim_end_matches('/').to_owned()),
                }))
            })()
            .context("`licences.roaming`"),
            None
        ),
        None => None,
    };
    let licence_systems = licences_file.systems.clone().unwrap_or_else(|| {
        vec![
            tracecast_protect::System::Clearkey,
            tracecast_protect::System::Age,
            tracecast_protect::System::Device,
        ]
    });
    if licence_systems.is_empty() {
        problems.push("`licences.systems`: name at least one of clearkey, age, device");
    }
    let licence_days = licences_file.days.unwrap_or(30);
    if licence_days == 0 {
        problems.push("`licences.days` must be at least 1");
    }
    let budgets = {
        let t = file.trace.unwrap_or_default();
        let i = file.ingest.unwrap_or_default();
        let mut b = tracecast_server::origin::Budgets::default();
        if let Some(m) = &t.max_upload {
            b.trace_max_bytes = or_note!(parse_size(m).context("`trace.max_upload`"), 0)
                .min(usize::MAX as u64) as usize;
        }
        let mut minutes = |v: Option<f64>, key: &str, into: &mut f64| {
            if let Some(m) = v {
                if m.is_finite() && m > 0.0 && m <= 24.0 * 60.0 {
                    *into = m;
                } else {
                    problems.push(format!("`{key}` is minutes, more than 0 and at most 1440"));
                }
            }
        };
        minutes(t.audio_minutes, "trace.audio_minutes", &mut b.trace_minutes);
        minutes(
            i.audio_minutes,
            "ingest.audio_minutes",
            &mut b.ingest_minutes,
        );
        if let Some(mp) = t.max_megapixels {
            if mp.is_finite() && mp > 0.0 && mp <= 4_000.0 {
                b.max_pixels = (mp * 1e6) as u64;
            } else {
                problems.push("`trace.max_megapixels` is more than 0 and at most 4000");
            }
        }
        if let Some(n) = t.per_minute {
            if n == 0 {
                problems.push("`trace.per_minute` must be at least 1");
            }
            b.traces_per_minute = n.max(1);
        }
        b
    };
    let service_file = file.service.unwrap_or_default();
    let hours = |h: u64| Duration::from_secs(h.saturating_mul(3600));
    let service = ServiceSettings {
        public_url: service_file.public_url,
        max_upload: match &service_file.max_upload {
            Some(m) => or_note!(parse_size(m).context("`service.max_upload`"), 0),
            None => 16 << 30,
        },
        upload_expiry: hours(service_file.upload_expiry_hours.unwrap_or(24).max(1)),
        link_lifetime: hours(service_file.link_days.unwrap_or(7).max(1) * 24),
        keep: hours(service_file.keep_days.unwrap_or(30).max(1) * 24),
    };
    if service.link_lifetime > service.keep {
        problems.push(
            "`service.link_days` cannot be longer than `service.keep_days`: a link would outlive its file",
        );
    }
    let gateway_file = file.gateway.unwrap_or_default();
    let default_policy = tracecast_share::gateway::DevicePolicy::default();
    let gateway = GatewaySettings {
        service: args.service.clone().or(gateway_file.service),
        mailbox: gateway_file.mailbox,
        token_file: args.gateway_token_file.clone().or(gateway_file.token_file),
        attachment_limit: match &gateway_file.attachment_limit {
            Some(l) => or_note!(parse_size(l).context("`gateway.attachment_limit`"), 0),
            None => tracecast_server::gateway::DEFAULT_ATTACHMENT_LIMIT,
        },
        max_content: match &gateway_file.max_content {
            Some(l) => or_note!(parse_size(l).context("`gateway.max_content`"), 0),
            None => 16 << 30,
        },
        policy: tracecast_share::gateway::DevicePolicy {
            allow_models: gateway_file
                .allow_models
                .unwrap_or(default_policy.allow_models),
            deny_models: gateway_file.deny_models.unwrap_or_default(),
            max_devices: gateway_file
                .max_devices
                .unwrap_or(default_policy.max_devices),
        },
        link_valid_for: gateway_file.link_hours.map(hours),
        mdns: gateway_file.mdns.unwrap_or(true),
        mdns_loopback: gateway_file.mdns_loopback.unwrap_or(false),
        to: args.to.clone().or(gateway_file.to),
        text: args.text.clone().or(gateway_file.text),
    };
    let roaming_fee_cents = match &roaming_file.fee {
        Some(f) => or_note!(
            tracecast_ledger::parse_money(f).map_err(|e| anyhow::anyhow!("`roaming.fee`: {e}")),
            0
        ),
        None => 10,
    };
    let cache = args
        .cache_size
        .clone()
        .or(edge_file.cache_size)
        .unwrap_or_else(|| "2G".into());
    let cache_bytes = or_note!(parse_size(&cache).context("`edge.cache_size`"), 0);
    let mailbox = or_note!(
        mailbox_config(args, &mailbox_file),
        MailboxConfig::default()
    );
    let log = file.log.unwrap_or_default();
    let log_format = match log.format.as_deref().unwrap_or("text") {
        "text" => LogFormat::Text,
        "json" => LogFormat::Json,
        other => {
            problems.push(format!("`log.format`: {other:?} is neither text nor json"));
            LogFormat::Text
        }
    };
    let log_level = log.level.unwrap_or_else(|| "info".into());
    if let Err(e) = tracing_subscriber::EnvFilter::try_new(&log_level) {
        problems.push(format!("`log.level`: {log_level:?}: {e}"));
    }
    let http = file.http.unwrap_or_default();
    let metrics_token = match file.metrics.unwrap_or_default().token_file {
        Some(f) => or_note!(
            config::read_secret(&f, "metrics.token_file").map(Some),
            None
        ),
        None => None,
    };
    let ops = OpsConfig {
        request_timeout: match http.request_timeout_secs.unwrap_or(600) {
            0 => None,
            s => Some(Duration::from_secs(s)),
        },
        max_in_flight: http.max_in_flight.unwrap_or(4096),
        metrics_token,
    };
    if ops.max_in_flight == 0 {
        problems.push("`http.max_in_flight` must be at least 1");
    }
    let shutdown_file = file.shutdown.unwrap_or_default();
    let shutdown = ShutdownSettings {
        grace: Duration::from_secs(shutdown_file.grace_secs.unwrap_or(60)),
        unready: Duration::from_secs(shutdown_file.unready_secs.unwrap_or(0)),
    };
    let console = file.console.unwrap_or_default();
    let origin_url = args
        .origin
        .clone()
        .or(file.origin)
        .or(edge_file.origin)
        .map(|u| u.trim_end_matches('/').to_owned());
    if let BlobPlace::S3(s3) = &blobs {
        for (key, f) in [
            ("blobs.s3.access_key_id_file", &s3.access_key_id_file),
            (
                "blobs.s3.secret_access_key_file",
                &s3.secret_access_key_file,
            ),
        ] {
            if let Some(f) = f {
                or_note!(config::read_secret(f, key).map(drop), ());
            }
        }
    }
    problems.into_result()?;
    Ok(Settings {
        listen,
        database,
        blobs,
        roles,
        mark_key: args
            .mark_key
            .clone()
            .or(file.mark_key)
            .unwrap_or_else(|| data.join("mark.key")),
        origin_url,
        mailbox_url,
        edge_token_file: args.edge_token_file.clone().or(edge_file.token_file),
        edge_dir: edge_file.dir,
        home_token_file: args.home_token_file.clone().or(home_file.token_file),
        home_dir: home_file.dir,
        rental_pace,
        kiosk_token_file: args.kiosk_token_file.clone().or(kiosk_file.token_file),
        kiosk_dir: kiosk_file.dir,
        members,
        attributes,
        cache_bytes,
        mailbox,
        roaming_name: roaming_file.name.unwrap_or_else(|| "roaming".into()),
        roaming_fee_cents,
        roaming_agreements,
        roaming_sources,
        licence_days,
        budgets,
        licence_systems,
        roaming_partner,
        service,
        gateway,
        ops,
        log_format,
        log_level,
        shutdown,
        console: console.enabled.unwrap_or(true),
        secure_cookies: console.secure_cookies.unwrap_or(false),
        data,
    })
}

fn mailbox_config(
    args: &ServeArgs,
    file: &config::MailboxFileConfig,
) -> anyhow::Result<MailboxConfig> {
    let secs = |name: &str, v: f64| -> anyhow::Result<u64> {
        anyhow::ensure!(
            v.is_finite() && v > 0.0,
            "`mailbox.{name}` must be a positive number of seconds"
        );
        Ok((v * 1000.0) as u64)
    };
    let max_message_bytes = match (args.max_message_bytes, &file.max_message_bytes) {
        (Some(n), _) => n,
        (None, Some(v)) => config::size_value(v).context("`mailbox.max_message_bytes`")? as usize,
        (None, None) => 4 << 20,
    };
    anyhow::ensure!(
        max_message_bytes > 0,
        "`mailbox.max_message_bytes` must be positive"
    );
    let pending_days = args.pending_days.or(file.pending_days).unwrap_or(14);
    let processed_days = args.processed_days.or(file.processed_days).unwrap_or(30);
    let processed_max = args.processed_max.or(file.processed_max).unwrap_or(10_000);
    let sweep_every = args.sweep_every.or(file.sweep_every_secs).unwrap_or(60);
    anyhow::ensure!(
        processed_max > 0,
        "`mailbox.processed_max` must be positive"
    );
    anyhow::ensure!(
        sweep_every > 0,
        "`mailbox.sweep_every_secs` must be positive"
    );
    anyhow::ensure!(pending_days > 0, "`mailbox.pending_days` must be positive");
    let retention = Retention {
        default_ttl: pending_days * DAY,
        max_ttl: (pending_days * DAY).max(Retention::default().max_ttl),
        processed_keep: processed_days * DAY,
        processed_max,
        ..Retention::default()
    };
    let max_wait = file.max_wait_secs.unwrap_or(60);
    anyhow::ensure!(max_wait > 0, "`mailbox.max_wait_secs` must be positive");
    Ok(MailboxConfig {
        max_message_bytes,
        retention,
        backoff: Backoff {
            first_ms: secs(
                "notify_retry_secs",
                args.notify_retry.or(file.notify_retry_secs).unwrap_or(30.0),
            )?,
            max_ms: secs(
                "notify_retry_max_secs",
                args.notify_retry_max
                    .or(file.notify_retry_max_secs)
                    .unwrap_or(900.0),
            )?,
        },
        sweep_every: Duration::from_secs(sweep_every),
        max_wait: Duration::from_secs(max_wait),
        ..MailboxConfig::default()
    })
}

/// A running set of roles on one listener.
pub struct Node {
    pub base: String,
    pub store: Store,
    pub edge: Option<Arc<Edge>>,
    pub admin_token: PathBuf,
    /// What `/readyz` answers; draining starts when the node stops.
    pub readiness: Readiness,
    /// The gateway's mDNS advertisement, withdrawn when the node stops.
    mdns: Option<tracecast_server::gateway::Advertisement>,
    shutdown: crate::serve::ShutdownSettings,
    stop: tokio::sync::oneshot::Sender<()>,
    server: tokio::task::JoinHandle<std::io::Result<()>>,
}

impl Node {
    /// Starts the roles in `s` on `listener`.
    pub async fn start(s: &Settings, listener: tokio::net::TcpListener) -> anyhow::Result<Node> {
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
        let store = match &s.database {
            Some(url) => Store::open(url).await,
            None => Store::open_dir(&s.data).await,
        }
        .context("opening the store")?;
        let readiness = Readiness::new(&s.roles.names());
        readiness.check_store(&store);
        let admin_token = s.data.join("admin.token");
        if (s.roles.mailbox || s.roles.origin)
            && tracecast_server::auth::ensure_admin(&store, &admin_token)
                .await?
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
            let signing = read_or_make_signing_key(&s.data.join("roaming-signing.key"))?;
            // 32 random bytes, kept like the signing key: the X25519 key of
            // its agreements.
            let agreement = read_or_make_signing_key(&s.data.join("roaming-agreement.key"))?;
            let mut agreements = s.roaming_agreements.clone();
            let mut sources = s.roaming_sources.clone();
            if s.roles.origin {
                let origin_signing = read_or_make_signing_key(&s.data.join("origin-ticket.key"))?;
                agreements.push(origin::licences::agreement(&origin_signing));
                // Package orders at the origin here, with a partner
                // account of its own.
                let (_, token) = local_account(
                    &store,
                    AccountKind::Partner,
                    &s.roaming_name,
                    &s.data.join("roaming-partner.token"),
                    None,
                )
                .await
                .context("setting up the roaming server's partner account")?;
                sources.push(tracecast_server::roaming::PackageSource {
                    issuer: origin::licences::ISSUER.into(),
                    origin: base.clone(),
                    token,
                });
            }
            let r = tracecast_server::roaming::Roaming::new(
                store.clone(),
                signing,
                agreement.to_bytes(),
                tracecast_server::roaming::RoamingConfig {
                    name: s.roaming_name.clone(),
                    fee_cents: s.roaming_fee_cents,
                    agreements,
                    sources,
                },
            )
            .context("starting the roaming server")?;
            router = router.merge(tracecast_server::roaming::router(r.clone()));
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
            let mut config = tracecast_server::service::ServiceConfig::new(
                s.service.public_url.as_deref().unwrap_or(&base),
                s.data.join("service-spool"),
            );
            config.max_upload_bytes = s.service.max_upload;
            config.upload_expiry = s.service.upload_expiry;
            config.link_lifetime = s.service.link_lifetime;
            config.keep = s.service.keep;
            let links =
                tracecast_server::service::Service::link_key(&s.data.join("service-link.key"))
                    .context("the service's link key")?;
            let service = tracecast_server::service::Service::new(
                store.clone(),
                blobs.clone(),
                links,
                config,
            )
            .context("starting the service server")?;
            router = router.merge(tracecast_server::service::router(service.clone()));
            tokio::spawn(service.run_sweeper(Duration::from_secs(60)));
        }
        let mut gateway_name = None;
        if s.roles.gateway {
            let (g, name) = crate::share::start_gateway(s, &store, &base).await?;
            router = router.merge(tracecast_server::gateway::router(g));
            gateway_name = Some(name);
        }
        let mut origin = None;
        if s.roles.origin {
            let blobs = blobs.clone().expect("made for the origin");
            let mark_key = crate::mark::read_or_make_key(&s.mark_key)?;
            let signing = read_or_make_signing_key(&s.data.join("origin-ticket.key"))?;
            let o = Origin::start(
                store.clone(),
                blobs,
                mb.clone().expect("origin runs with its mailbox"),
                signing,
                mark_key,
                OriginConfig {
                    members: s.members.clone(),
                    attributes: s.attributes.clone(),
                    roaming: roaming.clone(),
                    roaming_partner: s.roaming_partner.clone(),
                    native_systems: s.licence_systems.clone(),
                    licence_secs: i64::from(s.licence_days) * 24 * 3600,
                    budgets: s.budgets,
                    ..OriginConfig::default()
                },
            )
            .await?;
            router = router.merge(origin::router(o.clone()));
            if s.console {
                // The web console, a client of this origin's API.
                router = router.merge(
                    tracecast_console::router(tracecast_console::ConsoleConfig {
                        origin: base.clone(),
                        mailbox: s.mailbox_url.clone().unwrap_or_else(|| base.clone()),
                        secure_cookies: s.secure_cookies,
                    })
                    .context("loading the console's templates")?,
                );
            }
            origin = Some(o);
        }
        let mut edge = None;
        let mut pending_edge = None;
        if s.roles.edge {
            let mark_key = crate::mark::read_key(&s.mark_key).with_context(|| {
                "an edge marks with the origin's mark key: copy it here or give --mark-key"
            })?;
            let (config, who) = match (&s.origin_url, &origin) {
                (None, Some(o)) => local_edge(s, o, &base).await?,
                (Some(url), _) => {
                    let token_file = s
                        .edge_token_file
                        .as_ref()
                        .context("an edge needs its account token: --edge-token-file FILE")?;
                    let token = std::fs::read_to_string(token_file)
                        .with_context(|| format!("reading {}", token_file.display()))?;
                    let mut config = EdgeConfig::new(url, &token, &s.data.join("edge"));
                    config.cache_bytes = s.cache_bytes;
                    config.mailbox = s.mailbox_url.clone();
                    if let Some(d) = &s.edge_dir {
                        config.dir = d.clone();
                    }
                    (config, None)
                }
                (None, None) => bail!("an edge needs the origin's URL: --origin http://HOST:PORT"),
            };
            pending_edge = Some((config, who, mark_key));
        }
        // The edge's routes are mounted now; its identity may come from an
        // origin that is only reachable once this process serves.
        let slot = tracecast_server::edge::EdgeSlot::default();
        if pending_edge.is_some() {
            router = router.merge(tracecast_server::edge::deferred_router(slot.clone()));
            let started = slot.clone();
            readiness.check("edge", move || {
                let up = started.get().is_some();
                async move { up.then_some(()).ok_or_else(|| "not started yet".to_owned()) }
            });
        }
        let home_slot = tracecast_server::home::HomeSlot::default();
        if s.roles.home {
            router = router.merge(tracecast_server::home::deferred_router(home_slot.clone()));
            let started = home_slot.clone();
            readiness.check("home", move || {
                let up = started.get().is_some();
                async move { up.then_some(()).ok_or_else(|| "not started yet".to_owned()) }
            });
        }
        let kiosk_slot = tracecast_server::kiosk::KioskSlot::default();
        if s.roles.kiosk {
            router = router.merge(tracecast_server::kiosk::deferred_router(kiosk_slot.clone()));
            let started = kiosk_slot.clone();
            readiness.check("kiosk", move || {
                let up = started.get().is_some();
                async move { up.then_some(()).ok_or_else(|| "not started yet".to_owned()) }
            });
        }
        router = router.merge(tracecast_server::ops::router(
            readiness.clone(),
            &s.ops,
            s.roles.mailbox.then(|| store.clone()),
        ));
        let router = tracecast_server::ops::layer(router, &s.ops);
        let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
        let server = tokio::spawn(tracecast_server::serve(listener, router, async move {
            let _ = stopped.await;
        }));
        if let Some((mut config, who, mark_key)) = pending_edge {
            let who = match who {
                Some(w) => w,
                None => EdgeIdentity::fetch(&config, Duration::from_secs(60)).await?,
            };
            config.cache_bytes = s.cache_bytes;
            let e = Edge::start(store.clone(), mark_key, config, who)?;
            let _ = slot.set(e.clone());
            edge = Some(e);
        }
        let origin_url = s.origin_url.clone().unwrap_or_else(|| base.clone());
        if s.roles.home {
            let token = read_token(s.home_token_file.as_ref(), "home", "--home-token-file")?;
            let who =
                SiteIdentity::fetch(&origin_url, &token, "home", Duration::from_secs(60)).await?;
            let dir = s.home_dir.clone().unwrap_or_else(|| s.data.join("home"));
            let mut config = HomeConfig::new(&origin_url, &token, &dir);
            config.mailbox = s.mailbox_url.clone();
            config.pace = s.rental_pace;
            let h = Home::start(store.clone(), config, who)?;
            let _ = home_slot.set(h);
        }
        if s.roles.kiosk {
            let token = read_token(s.kiosk_token_file.as_ref(), "kiosk", "--kiosk-token-file")?;
            let who =
                SiteIdentity::fetch(&origin_url, &token, "kiosk", Duration::from_secs(60)).await?;
            let dir = s.kiosk_dir.clone().unwrap_or_else(|| s.data.join("kiosk"));
            let mut config = KioskConfig::new(&origin_url, &token, &dir);
            config.mailbox = s.mailbox_url.clone();
            let k = Kiosk::start(store.clone(), config, who)?;
            let _ = kiosk_slot.set(k);
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
                match tracecast_server::gateway::advertise(&name, addr.port(), &addrs, loopback) {
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
            edge,
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
        let in_flight = tracecast_server::ops::metrics().in_flight.get();
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
                requests = tracecast_server::ops::metrics().in_flight.get(),
                "the grace period ended; cutting the requests still in flight"
            );
            server.abort();
        }
        store.close().await;
        tracing::info!("stopped");
    }
}

fn read_token(file: Option<&PathBuf>, role: &str, flag: &str) -> anyhow::Result<String> {
    let file = file.with_context(|| format!("a {role} needs its account token: {flag} FILE"))?;
    Ok(std::fs::read_to_string(file)
        .with_context(|| format!("reading {}", file.display()))?
        .trim()
        .to_owned())
}

/// In one process with the origin: an edge account made on first start
/// (its token kept in the data directory), marked with the origin's key.
async fn local_edge(
    s: &Settings,
    o: &Arc<Origin>,
    base: &str,
) -> anyhow::Result<(EdgeConfig, Option<EdgeIdentity>)> {
    let (account, token) = local_account(
        o.store(),
        AccountKind::Edge,
        "local",
        &s.data.join("edge-local.token"),
        Some((&format!("{base}/edge"), "local", 0)),
    )
    .await
    .context("setting up the local edge")?;
    let who = o.local_edge(&account).context("the local edge account")?;
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
    edge: Option<(&str, &str, i64)>,
) -> anyhow::Result<(tracecast_store::Account, String)> {
    let account = match std::fs::read_to_string(token_path) {
        Ok(token) => {
            let hash = tracecast_server::auth::token_hash(token.trim());
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
            let token = tracecast_server::auth::new_token();
            let a = store
                .add_account(kind, name, tracecast_server::auth::token_hash(&token), edge)
                .await?;
            tracecast_server::auth::write_secret(token_path, &format!("{token}\n"))?;
            (a, token)
        }
    };
    Ok((account, token.trim().to_owned()))
}

fn read_or_make_signing_key(path: &Path) -> anyhow::Result<ed25519_dalek::SigningKey> {
    if let Ok(bytes) = std::fs::read(path) {
        let b: [u8; 32] = bytes
            .as_slice()
            .try_into()
            .map_err(|_| anyhow::anyhow!("{} is not a 32-byte ticket key", path.display()))?;
        return Ok(ed25519_dalek::SigningKey::from_bytes(&b));
    }
    let key = ed25519_dalek::SigningKey::generate(&mut rand::rngs::OsRng);
    if let Some(dir) = path.parent() {
        std::fs::create_dir_all(dir)?;
    }
    tracecast_server::auth::write_secret_bytes(path, &key.to_bytes())
        .with_context(|| format!("writing {}", path.display()))?;
    Ok(key)
}

pub fn run(args: &ServeArgs, quiet: bool) -> anyhow::Result<()> {
    if args.options {
        print!("{}", config::options_markdown());
        return Ok(());
    }
    let s = settings(args)?;
    if args.check {
        println!(
            "settings are valid: roles {}, store {}, blobs {}",
            s.roles.names(),
            match &s.database {
                Some(d) if d.starts_with("postgres") => "PostgreSQL",
                Some(_) => "SQLite (database URL)",
                None => "SQLite in the data directory",
            },
            match &s.blobs {
                BlobPlace::Dir(d) => format!("files in {}", d.display()),
                BlobPlace::S3(s3) => format!("S3 bucket {}", s3.bucket),
            }
        );
        return Ok(());
    }
    init_logs_as(quiet, s.log_format, &s.log_level);
    tokio::runtime::Runtime::new()?.block_on(async {
        let listener = tokio::net::TcpListener::bind(&s.listen)
            .await
            .with_context(|| format!("listening on {}", s.listen))?;
        let node = Node::start(&s, listener).await?;
        if s.roles.mailbox {
            tracing::info!("administrator token in {}", node.admin_token.display());
        }
        shutdown_signal().await;
        tracing::info!("stopping: letting in-flight requests finish");
        node.stop().await;
        Ok(())
    })
}

pub fn init_logs(quiet: bool) {
    init_logs_as(quiet, LogFormat::Text, "info");
}

/// Logs to stderr: text or JSON lines; `RUST_LOG` overrides `level`.
pub fn init_logs_as(quiet: bool, format: LogFormat, level: &str) {
    let default = if quiet { "warn" } else { level };
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new(default));
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr);
    let _ = match format {
        LogFormat::Text => builder.try_init(),
        LogFormat::Json => builder
            .json()
            .flatten_event(true)
            .with_current_span(true)
            .with_span_list(false)
            .try_init(),
    };
}

async fn shutdown_signal() {
    let ctrl_c = async {
        let _ = tokio::signal::ctrl_c().await;
    };
    #[cfg(unix)]
    let term = async {
        if let Ok(mut s) = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate())
        {
            s.recv().await;
        }
    };
    #[cfg(not(unix))]
    let term = std::future::pending::<()>();
    tokio::select! {
        () = ctrl_c => {},
        () = term => {},
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::Parser;

    fn parse(toml: &str) -> anyhow::Result<Settings> {
        let dir = tempfile::tempdir()?;
        let path = dir.path().join("t.toml");
        std::fs::write(&path, toml)?;
        let cli = crate::cli::Cli::try_parse_from([
            "tracecast",
            "serve",
            "--config",
            path.to_str().unwrap(),
        ])?;
        match cli.command {
            crate::cli::Command::Serve(args) => settings_from(&args, &[]),
            _ => unreachable!("serve parses as serve"),
        }
    }

    #[test]
    fn service_and_gateway_settings_are_read_and_checked() {
        let s = parse(
            "roles = [\"service\", \"gateway\"]\n\
             [service]\npublic_url = \"https://share.example.net\"\nmax_upload = \"2G\"\n\
             upload_expiry_hours = 2\nlink_days = 3\nkeep_days = 10\n\
             [gateway]\nattachment_limit = \"100K\"\nallow_models = [\"Lumix *\"]\n\
             max_devices = 2\nlink_hours = 5\nmdns = false\nto = \"+1 555 0100\"\n",
        )
        .unwrap();
        assert!(s.roles.service && s.roles.gateway && !s.roles.origin);
        assert_eq!(
            s.service.public_url.as_deref(),
            Some("https://share.example.net")
        );
        assert_eq!(s.service.max_upload, 2 << 30);
        assert_eq!(s.service.upload_expiry, Duration::from_secs(2 * 3600));
        assert_eq!(s.service.link_lifetime, Duration::from_secs(3 * DAY));
        assert_eq!(s.gateway.attachment_limit, 100 << 10);
        assert_eq!(s.gateway.policy.allow_models, ["Lumix *"]);
        assert_eq!(s.gateway.policy.max_devices, 2);
        assert_eq!(
            s.gateway.link_valid_for,
            Some(Duration::from_secs(5 * 3600))
        );
        assert!(!s.gateway.mdns);
        assert_eq!(s.gateway.to.as_deref(), Some("+1 555 0100"));
        // Defaults: 300 KiB, every model, mDNS on, the terminal prompt.
        let d = parse("").unwrap();
        assert!(d.roles.service && !d.roles.gateway);
        assert_eq!(d.gateway.attachment_limit, 300 << 10);
        assert_eq!(d.gateway.policy.allow_models, ["*"]);
        assert!(d.gateway.mdns && d.gateway.to.is_none());
        for bad in [
            "[service]\nlink_days = 40\n",
            "[service]\npublic_url = \"share.example.net\"\n",
            "[service]\nmax_upload = \"lots\"\n",
            "[gateway]\nattachment_limit = \"big\"\n",
            "[gateway]\nsurprise = true\n",
            "roles = [\"phone\"]\n",
        ] {
            assert!(parse(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn licence_and_roaming_settings_are_read_and_checked() {
        let key = "A".repeat(43);
        let s = parse(&format!(
            "[licences]\ndays = 7\nsystems = [\"clearkey\"]\n[licences.roaming]\nname = \"far\"\nsigning_key = \"{}\"\nagreement_key = \"{key}\"\n[roaming]\nfee = \"0.25\"\n",
            // The Ed25519 identity point, a valid public key.
            base64::Engine::encode(&base64::engine::general_purpose::URL_SAFE_NO_PAD, {
                let mut b = [0u8; 32];
                b[0] = 1;
                b
            }),
        ))
        .unwrap();
        assert_eq!(s.licence_days, 7);
        assert_eq!(s.licence_systems, vec![tracecast_protect::System::Clearkey]);
        assert_eq!(
            s.roaming_partner.as_ref().map(|p| p.name.as_str()),
            Some("far")
        );
        assert_eq!(s.roaming_fee_cents, 25);
        for bad in [
            "[licences]\nsystems = [\"widevine\"]\n",
            "[licences]\ndays = 0\n",
            "[licences]\nsystems = []\n",
            "[licences]\nsurprise = 1\n",
            "[roaming]\nfee = \"lots\"\n",
            "[licences.roaming]\nname = \"x\"\nsigning_key = \"short\"\nagreement_key = \"short\"\n",
        ] {
            assert!(parse(bad).is_err(), "{bad}");
        }
        // A package source names its origin and token file together, and
        // the token file must be there.
        let one = base64::Engine::encode(&base64::engine::general_purpose::URL_SAFE_NO_PAD, {
            let mut b = [0u8; 32];
            b[0] = 1;
            b
        });
        let agreement = format!(
            "[[roaming.agreements]]\nissuer = \"o\"\nsigning_key = \"{one}\"\nagreement_key = \"{key}\"\n"
        );
        let dir = tempfile::tempdir().unwrap();
        let token = dir.path().join("partner.token");
        std::fs::write(&token, "tc_secret\n").unwrap();
        let s = parse(&format!(
            "{agreement}origin = \"http://o:7070/\"\ntoken_file = {:?}\n",
            token.to_str().unwrap()
        ))
        .unwrap();
        assert_eq!(
            s.roaming_sources
                .iter()
                .map(|p| (p.origin.as_str(), p.token.as_str()))
                .collect::<Vec<_>>(),
            [("http://o:7070", "tc_secret")]
        );
        // Never the token in a debug print.
        assert!(!format!("{:?}", s.roaming_sources).contains("tc_secret"));
        for bad in [
            format!("{agreement}origin = \"http://o:7070\"\n"),
            format!("{agreement}origin = \"o:7070\"\ntoken_file = {:?}\n", token.to_str().unwrap()),
            format!("{agreement}origin = \"http://o\"\ntoken_file = \"/nonexistent/t\"\n"),
            format!("[licences.roaming]\nname = \"x\"\nsigning_key = \"{one}\"\nagreement_key = \"{key}\"\nurl = \"ftp://x\"\n"),
        ] {
            assert!(parse(&bad).is_err(), "{bad}");
        }
    }
}
