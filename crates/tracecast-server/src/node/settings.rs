//! A node's settings: merged from the command line's flags, the
//! environment's `TRACECAST_*` overrides and the settings file (see
//! [`super::file`] and docs/config.md), checked before anything starts,
//! every problem reported at once.

use std::fmt::Display;
use std::path::{Path, PathBuf};
use std::time::Duration;

use tracecast_mailbox::{Backoff, Retention};
use tracecast_store::blob::S3Settings;

use super::file::{self, parse_size, FileConfig, Problems};
use crate::mailbox::MailboxConfig;
use crate::ops::OpsConfig;

const DAY: u64 = 24 * 3600;

/// `[cdn]`: delivery through a CDN with watermarking tokens.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CdnSettings {
    pub edge: String,
    pub url: String,
    pub token_secs: i64,
}

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
            attachment_limit: crate::gateway::DEFAULT_ATTACHMENT_LIMIT,
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

    /// No role: the start of a set written as `Roles { edge: true, ..Roles::NONE }`.
    pub const NONE: Roles = Roles {
        origin: false,
        mailbox: false,
        edge: false,
        home: false,
        kiosk: false,
        roaming: false,
        service: false,
        gateway: false,
    };

    pub fn parse(names: &[String]) -> Result<Roles, String> {
        if names.is_empty() {
            return Ok(Roles::ALL);
        }
        let mut r = Roles::NONE;
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
                other => {
                    return Err(format!(
                        "unknown role {other:?}: origin, mailbox, edge, home, kiosk, roaming, service, gateway or all"
                    ))
                }
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
    pub roaming_sources: Vec<crate::roaming::PackageSource>,
    pub licence_days: u32,
    /// Days between statements (0: on request only).
    pub statement_days: u32,
    /// The name this origin's licences are issued under.
    pub licence_issuer: String,
    /// What one trace or ingest may cost.
    pub budgets: crate::origin::Budgets,
    pub licence_systems: Vec<tracecast_protect::System>,
    pub roaming_partner: Option<crate::origin::licences::RoamingPartner>,
    /// Delivery through a CDN: its edge account, base URL and token life.
    pub cdn: Option<CdnSettings>,
    /// Buyers' regions by network (`[regions]`).
    pub regions: tracecast_delivery::RegionMap,
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
            statement_days: 30,
            licence_issuer: crate::origin::licences::ISSUER.into(),
            budgets: Default::default(),
            licence_systems: vec![
                tracecast_protect::System::Clearkey,
                tracecast_protect::System::Age,
                tracecast_protect::System::Device,
            ],
            roaming_partner: None,
            cdn: None,
            regions: Default::default(),
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

/// The settings of `tracecast serve ARGS`: the file, then the environment's
/// `TRACECAST_*` overrides, then the flags; every problem is reported at
/// once.
pub fn settings(args: &Flags) -> Result<Settings, Problems> {
    settings_from(args, &file::env_vars())
}

/// What the command line gives (`tracecast serve`'s flags); `None` (or an
/// empty list) leaves the choice to the environment, the settings file,
/// then the default.
#[derive(Debug, Clone, Default, clap::Args)]
pub struct Flags {
    /// A TOML settings file (every option in docs/config.md); the
    /// environment's TRACECAST_<KEY> variables override it, and flags
    /// given here override both.
    #[arg(long, env = "TRACECAST_CONFIG")]
    pub config: Option<PathBuf>,
    /// Roles to run, comma-separated: origin (with its mailbox), mailbox,
    /// edge, home, kiosk, roaming, service, gateway. Default: origin,
    /// mailbox, edge, roaming and service in one process (homes, kiosks
    /// and gateways run beside users, shops and devices, with their own
    /// account token).
    #[arg(long, value_delimiter = ',')]
    pub role: Vec<String>,
    /// Data directory: the SQLite store, blobs, the administrator token
    /// [default: tracecast-data].
    #[arg(long, env = "TRACECAST_DATA")]
    pub data: Option<PathBuf>,
    /// Address to listen on [default: 127.0.0.1:7070].
    #[arg(long, env = "TRACECAST_LISTEN")]
    pub listen: Option<String>,
    /// Metadata database URL (postgres://...); the SQLite file in the data
    /// directory when absent.
    #[arg(long, env = "TRACECAST_DATABASE")]
    pub database: Option<String>,
    /// Blob store: a directory, or s3://BUCKET (endpoint and region from
    /// the config file or AWS_ENDPOINT / AWS_REGION; keys from the
    /// AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY environment).
    #[arg(long, env = "TRACECAST_BLOBS")]
    pub blobs: Option<String>,
    /// Edge role: the origin's URL (default: this process).
    #[arg(long, env = "TRACECAST_ORIGIN")]
    pub origin: Option<String>,
    /// Edge role: file holding this edge's account token.
    #[arg(long, env = "TRACECAST_EDGE_TOKEN_FILE")]
    pub edge_token_file: Option<PathBuf>,
    /// Home role: file holding this home server's account token.
    #[arg(long)]
    pub home_token_file: Option<PathBuf>,
    /// Kiosk role: file holding this kiosk's account token.
    #[arg(long)]
    pub kiosk_token_file: Option<PathBuf>,
    /// Edge role: bytes of renditions to cache (suffixes K, M, G).
    #[arg(long)]
    pub cache_size: Option<String>,
    /// Mark key file shared by the origin (to trace) and edges (to mark).
    #[arg(long, env = "TRACECAST_MARK_KEY")]
    pub mark_key: Option<PathBuf>,
    /// Largest message accepted, in bytes.
    #[arg(long)]
    pub max_message_bytes: Option<usize>,
    /// Seconds before an unanswered notification is repeated (then doubling).
    #[arg(long)]
    pub notify_retry: Option<f64>,
    /// Longest wait between repeated notifications, in seconds.
    #[arg(long)]
    pub notify_retry_max: Option<f64>,
    /// Days a pending message waits when its sender set no TTL.
    #[arg(long)]
    pub pending_days: Option<u64>,
    /// Days processed messages are kept.
    #[arg(long)]
    pub processed_days: Option<u64>,
    /// Processed messages kept per box at most.
    #[arg(long)]
    pub processed_max: Option<u64>,
    /// Seconds between retention sweeps.
    #[arg(long)]
    pub sweep_every: Option<u64>,
    /// Gateway role: the service server's URL (default: this process).
    #[arg(long, env = "TRACECAST_SERVICE")]
    pub service: Option<String>,
    /// Gateway role: file holding the gateway's account token.
    #[arg(long, env = "TRACECAST_GATEWAY_TOKEN_FILE")]
    pub gateway_token_file: Option<PathBuf>,
    /// Gateway role: send every message to this recipient instead of
    /// asking at the terminal (scripts).
    #[arg(long)]
    pub to: Option<String>,
    /// Gateway role: with --to, the message text.
    #[arg(long)]
    pub text: Option<String>,
}

/// Where a node keeps its data when nothing says otherwise.
pub const DEFAULT_DATA: &str = "tracecast-data";
/// Where a node listens when nothing says otherwise.
pub const DEFAULT_LISTEN: &str = "127.0.0.1:7070";

/// Names the setting a problem is with.
trait Key<T> {
    fn key(self, key: &str) -> Result<T, String>;
}

impl<T, E: Display> Key<T> for Result<T, E> {
    fn key(self, key: &str) -> Result<T, String> {
        self.map_err(|e| format!("{key}: {e}"))
    }
}

/// [`settings`] with the environment given.
pub fn settings_from(args: &Flags, env: &[(String, String)]) -> Result<Settings, Problems> {
    let file: FileConfig = file::load(args.config.as_deref(), env)?;
    let mut problems = Problems::default();
    // Collects a problem and goes on with a default, so every problem is
    // found in one run.
    macro_rules! or_note {
        ($e:expr, $default:expr) => {
            match $e {
                Ok(v) => v,
                Err(e) => {
                    problems.push(e.to_string());
                    $default
                }
            }
        };
    }
    let data = args
        .data
        .clone()
        .or(file.data.clone())
        .unwrap_or_else(|| PathBuf::from(DEFAULT_DATA));
    let listen = args
        .listen
        .clone()
        .or(file.listen.clone())
        .unwrap_or_else(|| DEFAULT_LISTEN.to_owned());
    let mut roles = or_note!(
        if !args.role.is_empty() {
            Roles::parse(&args.role)
        } else {
            Roles::parse(file.roles.as_deref().unwrap_or(&[]))
        }
        .key("`roles`"),
        Roles::ALL
    );
    let database = match (&args.database, &file.database, &file.database_file) {
        (Some(d), _, _) => Some(d.clone()),
        (None, Some(_), Some(_)) => {
            problems.push("`database` and `database_file`: give one, not both");
            None
        }
        (None, Some(d), None) => Some(d.clone()),
        (None, None, Some(f)) => or_note!(file::read_secret(f, "database_file").map(Some), None),
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
        (None, file::BlobsConfig { s3: Some(s3), dir }) => {
            if dir.is_some() {
                problems.push("`blobs.dir` and `blobs.s3`: give one, not both");
            }
            BlobPlace::S3(s3.clone())
        }
        (None, file::BlobsConfig { dir: Some(d), .. }) => BlobPlace::Dir(d.clone()),
        _ => BlobPlace::Dir(data.join("blobs")),
    };
    let edge_file = file.edge.unwrap_or_default();
    let home_file = file.home.unwrap_or_default();
    let mut rental_pace = tracecast_delivery::rental::Pace::default();
    if let Some(secs) = home_file.rental_lead_secs {
        rental_pace.lead_ms = (secs.min(24 * 3600) * 1000) as i64;
    }
    if let Some(m) = &home_file.rental_max_range {
        let n = or_note!(parse_size(m).key("`home.rental_max_range`"), 0);
        if n == 0 {
            problems.push("`home.rental_max_range` must be at least 1 byte");
        }
        rental_pace.max_range = n.max(1);
    }
    let members = file.members.clone().unwrap_or_default();
    or_note!(members.check().key("`members`"), ());
    let attributes = file.attributes.clone().unwrap_or_default();
    or_note!(attributes.check().key("`attributes`"), ());
    let regions = match &file.regions {
        Some(table) => or_note!(
            tracecast_delivery::RegionMap::new(
                table.iter().map(|(r, nets)| (r.as_str(), nets.as_slice()))
            )
            .map_err(|e| format!("`regions`: {e}")),
            Default::default()
        ),
        None => Default::default(),
    };
    let kiosk_file = file.kiosk.unwrap_or_default();
    let roaming_file = file.roaming.unwrap_or_default();
    let b64 = |v: &str, what: &str| -> Result<[u8; 32], String> {
        tracecast_protect::decode32(v, what).map_err(|e| e.to_string())
    };
    let ed25519 = |v: &str| -> Result<ed25519_dalek::VerifyingKey, String> {
        ed25519_dalek::VerifyingKey::from_bytes(&b64(v, "signing_key")?)
            .map_err(|_| "signing_key is not an Ed25519 key".to_owned())
    };
    let mut roaming_agreements = Vec::new();
    let mut roaming_sources = Vec::new();
    for a in &roaming_file.agreements {
        let keys = (|| -> Result<tracecast_protect::Agreement, String> {
            Ok(tracecast_protect::Agreement {
                issuer: a.issuer.clone(),
                signing: ed25519(&a.signing_key)?,
                agreement_public: b64(&a.agreement_key, "agreement_key")?,
            })
        })();
        if let Some(agreement) = or_note!(
            keys.key(&format!("`roaming.agreements` {}", a.issuer))
                .map(Some),
            None
        ) {
            roaming_agreements.push(agreement);
        }
        match (&a.origin, &a.token_file) {
            (Some(origin), Some(token_file)) => {
                if let Some(token) = or_note!(
                    file::read_secret(token_file, "roaming.agreements[].token_file").map(Some),
                    None
                ) {
                    roaming_sources.push(crate::roaming::PackageSource {
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
            (|| -> Result<_, String> {
                Ok(Some(crate::origin::licences::RoamingPartner {
                    name: p.name.clone(),
                    signing: ed25519(&p.signing_key)?,
                    agreement_key: b64(&p.agreement_key, "agreement_key")?,
                    url: p.url.as_ref().map(|u| u.trim_end_matches('/').to_owned()),
                }))
            })()
            .key("`licences.roaming`"),
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
    let cdn = match &file.cdn {
        Some(c) => {
            let token_hours = c.token_hours.unwrap_or(24);
            if token_hours == 0 {
                problems.push("`cdn.token_hours` must be at least 1");
            }
            if !(c.url.starts_with("http://") || c.url.starts_with("https://")) {
                problems.push("`cdn.url` must be an http:// or https:// URL");
            }
            Some(CdnSettings {
                edge: c.edge.clone(),
                url: c.url.trim_end_matches('/').to_owned(),
                token_secs: i64::from(token_hours) * 3600,
            })
        }
        None => None,
    };
    let statement_days = file.billing.and_then(|b| b.statement_days).unwrap_or(30);
    if statement_days > 3660 {
        problems.push("`billing.statement_days` must be at most 3660 (0: on request only)");
    }
    let licence_issuer = licences_file
        .issuer
        .clone()
        .unwrap_or_else(|| crate::origin::licences::ISSUER.into());
    if licence_issuer.is_empty()
        || licence_issuer.len() > 64
        || !licence_issuer
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-' || b == b'.')
    {
        problems.push("`licences.issuer` must be 1-64 lower-case letters, digits, '-' or '.'");
    }
    let licence_days = licences_file.days.unwrap_or(30);
    if licence_days == 0 {
        problems.push("`licences.days` must be at least 1");
    }
    let budgets = {
        let t = file.trace.unwrap_or_default();
        let i = file.ingest.unwrap_or_default();
        let mut b = crate::origin::Budgets::default();
        if let Some(m) = &t.max_upload {
            b.trace_max_bytes = or_note!(parse_size(m).key("`trace.max_upload`"), 0)
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
            Some(m) => or_note!(parse_size(m).key("`service.max_upload`"), 0),
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
            Some(l) => or_note!(parse_size(l).key("`gateway.attachment_limit`"), 0),
            None => crate::gateway::DEFAULT_ATTACHMENT_LIMIT,
        },
        max_content: match &gateway_file.max_content {
            Some(l) => or_note!(parse_size(l).key("`gateway.max_content`"), 0),
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
        Some(f) => or_note!(tracecast_ledger::parse_money(f).key("`roaming.fee`"), 0),
        None => 10,
    };
    let cache = args
        .cache_size
        .clone()
        .or(edge_file.cache_size)
        .unwrap_or_else(|| "2G".into());
    let cache_bytes = or_note!(parse_size(&cache).key("`edge.cache_size`"), 0);
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
        Some(f) => or_note!(file::read_secret(&f, "metrics.token_file").map(Some), None),
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
                or_note!(file::read_secret(f, key).map(drop), ());
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
        statement_days,
        licence_issuer,
        budgets,
        licence_systems,
        roaming_partner,
        cdn,
        regions,
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

fn mailbox_config(args: &Flags, file: &file::MailboxFileConfig) -> Result<MailboxConfig, String> {
    macro_rules! ensure {
        ($cond:expr, $($msg:tt)+) => {
            if !$cond {
                return Err(format!($($msg)+));
            }
        };
    }
    let secs = |name: &str, v: f64| -> Result<u64, String> {
        ensure!(
            v.is_finite() && v > 0.0,
            "`mailbox.{name}` must be a positive number of seconds"
        );
        Ok((v * 1000.0) as u64)
    };
    let max_message_bytes = match (args.max_message_bytes, &file.max_message_bytes) {
        (Some(n), _) => n,
        (None, Some(v)) => file::size_value(v).key("`mailbox.max_message_bytes`")? as usize,
        (None, None) => 4 << 20,
    };
    ensure!(
        max_message_bytes > 0,
        "`mailbox.max_message_bytes` must be positive"
    );
    let pending_days = args.pending_days.or(file.pending_days).unwrap_or(14);
    let processed_days = args.processed_days.or(file.processed_days).unwrap_or(30);
    let processed_max = args.processed_max.or(file.processed_max).unwrap_or(10_000);
    let sweep_every = args.sweep_every.or(file.sweep_every_secs).unwrap_or(60);
    ensure!(
        processed_max > 0,
        "`mailbox.processed_max` must be positive"
    );
    ensure!(
        sweep_every > 0,
        "`mailbox.sweep_every_secs` must be positive"
    );
    ensure!(pending_days > 0, "`mailbox.pending_days` must be positive");
    let retention = Retention {
        default_ttl: pending_days * DAY,
        max_ttl: (pending_days * DAY).max(Retention::default().max_ttl),
        processed_keep: processed_days * DAY,
        processed_max,
        ..Retention::default()
    };
    let max_wait = file.max_wait_secs.unwrap_or(60);
    ensure!(max_wait > 0, "`mailbox.max_wait_secs` must be positive");
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

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(toml: &str) -> Result<Settings, Problems> {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("t.toml");
        std::fs::write(&path, toml).unwrap();
        let flags = Flags {
            config: Some(path),
            ..Flags::default()
        };
        settings_from(&flags, &[])
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
