//! The settings file of `tracecast serve` (TOML): its sections, every
//! option with its type, default and meaning ([`OPTIONS`], from which
//! `docs/config.md` is generated), overrides from the environment
//! (`TRACECAST_<KEY>`, dots as underscores), and the checks made before
//! anything starts: every unknown key and every value of the wrong type
//! is reported together, naming the key.

use std::path::{Path, PathBuf};

use serde::Deserialize;
use tracecast_store::blob::S3Settings;

/// The settings file; every key is optional.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FileConfig {
    pub listen: Option<String>,
    pub data: Option<PathBuf>,
    pub roles: Option<Vec<String>>,
    pub database: Option<String>,
    pub database_file: Option<PathBuf>,
    pub mark_key: Option<PathBuf>,
    pub origin: Option<String>,
    pub log: Option<LogFileConfig>,
    pub http: Option<HttpFileConfig>,
    pub metrics: Option<MetricsFileConfig>,
    pub shutdown: Option<ShutdownFileConfig>,
    pub console: Option<ConsoleFileConfig>,
    pub mailbox: Option<MailboxFileConfig>,
    pub blobs: Option<BlobsConfig>,
    pub edge: Option<EdgeFileConfig>,
    pub home: Option<HomeFileConfig>,
    pub kiosk: Option<SiteFileConfig>,
    pub members: Option<tracecast_members::Policy>,
    pub attributes: Option<tracecast_members::AttributeTable>,
    pub roaming: Option<RoamingFileConfig>,
    pub licences: Option<LicencesFileConfig>,
    pub billing: Option<BillingFileConfig>,
    pub trace: Option<TraceFileConfig>,
    pub ingest: Option<IngestFileConfig>,
    pub service: Option<ServiceFileConfig>,
    pub gateway: Option<GatewayFileConfig>,
    pub cdn: Option<CdnFileConfig>,
    /// `region = ["network", ...]`: buyers' regions by address.
    pub regions: Option<std::collections::BTreeMap<String, Vec<String>>>,
}

/// `[cdn]`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CdnFileConfig {
    pub edge: String,
    pub url: String,
    pub token_hours: Option<u32>,
}

/// `[log]`.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct LogFileConfig {
    pub format: Option<String>,
    pub level: Option<String>,
}

/// `[http]`.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct HttpFileConfig {
    pub request_timeout_secs: Option<u64>,
    pub max_in_flight: Option<usize>,
}

/// `[metrics]`.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct MetricsFileConfig {
    pub token_file: Option<PathBuf>,
}

/// `[shutdown]`.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ShutdownFileConfig {
    pub grace_secs: Option<u64>,
    pub unready_secs: Option<u64>,
}

/// `[console]`.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ConsoleFileConfig {
    pub enabled: Option<bool>,
    pub secure_cookies: Option<bool>,
}

/// `[mailbox]`.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct MailboxFileConfig {
    pub url: Option<String>,
    pub max_message_bytes: Option<toml::Value>,
    pub notify_retry_secs: Option<f64>,
    pub notify_retry_max_secs: Option<f64>,
    pub pending_days: Option<u64>,
    pub processed_days: Option<u64>,
    pub processed_max: Option<u64>,
    pub sweep_every_secs: Option<u64>,
    pub max_wait_secs: Option<u64>,
}

/// `[service]`.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ServiceFileConfig {
    pub public_url: Option<String>,
    pub max_upload: Option<String>,
    pub upload_expiry_hours: Option<u64>,
    pub link_days: Option<u64>,
    pub keep_days: Option<u64>,
}

/// `[gateway]`.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct GatewayFileConfig {
    pub service: Option<String>,
    pub mailbox: Option<String>,
    pub token_file: Option<PathBuf>,
    pub attachment_limit: Option<String>,
    pub max_content: Option<String>,
    pub allow_models: Option<Vec<String>>,
    pub deny_models: Option<Vec<String>>,
    pub max_devices: Option<usize>,
    pub link_hours: Option<u64>,
    pub mdns: Option<bool>,
    pub mdns_loopback: Option<bool>,
    pub to: Option<String>,
    pub text: Option<String>,
}

/// `[trace]`: what one trace request may cost.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TraceFileConfig {
    pub max_upload: Option<String>,
    pub audio_minutes: Option<f64>,
    pub max_megapixels: Option<f64>,
    pub per_minute: Option<u32>,
}

/// `[ingest]`: what one ingest may cost.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct IngestFileConfig {
    pub audio_minutes: Option<f64>,
}

/// `[licences]`.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct LicencesFileConfig {
    pub days: Option<u32>,
    pub issuer: Option<String>,
    pub systems: Option<Vec<tracecast_protect::System>>,
    pub roaming: Option<RoamingPartnerFileConfig>,
}

/// `[billing]`.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct BillingFileConfig {
    pub statement_days: Option<u32>,
}

/// `[licences.roaming]`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RoamingPartnerFileConfig {
    pub name: String,
    pub signing_key: String,
    pub agreement_key: String,
    pub url: Option<String>,
}

/// `[roaming]`.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RoamingFileConfig {
    pub name: Option<String>,
    pub fee: Option<String>,
    #[serde(default)]
    pub agreements: Vec<AgreementFileConfig>,
}

/// `[[roaming.agreements]]`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AgreementFileConfig {
    pub issuer: String,
    pub signing_key: String,
    pub agreement_key: String,
    pub origin: Option<String>,
    pub token_file: Option<PathBuf>,
}

/// `[home]` and `[kiosk]`.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SiteFileConfig {
    pub token_file: Option<PathBuf>,
    pub dir: Option<PathBuf>,
}

/// `[home]`.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct HomeFileConfig {
    pub token_file: Option<PathBuf>,
    pub dir: Option<PathBuf>,
    pub rental_lead_secs: Option<u64>,
    pub rental_max_range: Option<String>,
}

/// `[blobs]`.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct BlobsConfig {
    pub dir: Option<PathBuf>,
    pub s3: Option<S3Settings>,
}

/// `[edge]`.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct EdgeFileConfig {
    pub origin: Option<String>,
    pub token_file: Option<PathBuf>,
    pub cache_size: Option<String>,
    pub dir: Option<PathBuf>,
}

/// What a key's value must be.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Ty {
    Str,
    /// A URL starting http:// or https://.
    Url,
    Path,
    Int,
    Float,
    Bool,
    /// "2G", "512M", "300K" or a number of bytes.
    Size,
    /// A list of strings (from the environment: comma-separated).
    List,
    /// A table whose keys are the operator's (checked when read).
    Table,
    /// `[[…]]` entries, each with the keys listed under this one.
    Tables,
}

impl Ty {
    fn name(self) -> &'static str {
        match self {
            Ty::Str => "string",
            Ty::Url => "URL",
            Ty::Path => "path",
            Ty::Int => "integer",
            Ty::Float => "number",
            Ty::Bool => "boolean",
            Ty::Size => "size",
            Ty::List => "list of strings",
            Ty::Table => "table",
            Ty::Tables => "array of tables",
        }
    }

    fn accepts(self, v: &toml::Value) -> bool {
        use toml::Value as V;
        match (self, v) {
            (Ty::Str | Ty::Url | Ty::Path, V::String(_)) => true,
            (Ty::Int, V::Integer(i)) => *i >= 0,
            (Ty::Float, V::Float(_) | V::Integer(_)) => true,
            (Ty::Bool, V::Boolean(_)) => true,
            (Ty::Size, V::String(_)) => true,
            (Ty::Size, V::Integer(i)) => *i >= 0,
            (Ty::List, V::Array(a)) => a.iter().all(|x| x.is_str()),
            (Ty::Table, V::Table(_)) => true,
            (Ty::Tables, V::Array(a)) => a.iter().all(|x| x.is_table()),
            _ => false,
        }
    }
}

/// One option of the settings file.
#[derive(Debug, Clone, Copy)]
pub struct Opt {
    /// Dotted path: `edge.cache_size` is `cache_size` in `[edge]`.
    pub key: &'static str,
    pub ty: Ty,
    pub default: &'static str,
    /// Which roles read it.
    pub roles: &'static str,
    pub doc: &'static str,
}

impl Opt {
    /// The environment variable that overrides it (`None` for tables).
    pub fn env(&self) -> Option<String> {
        (!matches!(self.ty, Ty::Table | Ty::Tables) && !self.key.contains("[]"))
            .then(|| format!("TRACECAST_{}", self.key.replace('.', "_").to_uppercase()))
    }
}

const fn opt(
    key: &'static str,
    ty: Ty,
    default: &'static str,
    roles: &'static str,
    doc: &'static str,
) -> Opt {
    Opt {
        key,
        ty,
        default,
        roles,
        doc,
    }
}

/// Every option, in the order `docs/config.md` lists them. Keys of
/// `[[roaming.agreements]]` entries are written `roaming.agreements[].KEY`.
pub const OPTIONS: &[Opt] = &[
    opt("listen", Ty::Str, "127.0.0.1:7070", "all", "Address and port to listen on (`0.0.0.0:7070` for every interface)."),
    opt("data", Ty::Path, "tracecast-data", "all", "Data directory: the SQLite store, blobs by default, keys and tokens this process makes, role directories."),
    opt("roles", Ty::List, "origin, mailbox, edge, roaming, service", "all", "Roles this process runs: origin, mailbox, edge, home, kiosk, roaming, service, gateway, or all. An origin runs a mailbox beside it unless `mailbox.url` names one elsewhere."),
    opt("database", Ty::Str, "SQLite in `data`", "all", "Metadata database URL: `postgres://USER@HOST/DB` (scale-out) or `sqlite://PATH`. Prefer `database_file` when the URL holds a password."),
    opt("database_file", Ty::Path, "", "all", "File holding the database URL (a secret: the password is in it), read at start."),
    opt("mark_key", Ty::Path, "`data`/mark.key", "origin, edge", "The mark key (32 bytes, mode 0600): made by the origin on first start, copied to every edge."),
    opt("origin", Ty::Url, "this process", "edge, home, kiosk", "The origin's URL, for roles that run in another process."),
    opt("log.format", Ty::Str, "text", "all", "`text` (for people) or `json` (one object a line, for log collectors)."),
    opt("log.level", Ty::Str, "info", "all", "A tracing filter such as `info` or `info,tracecast_server=debug`; `RUST_LOG` overrides it."),
    opt("http.request_timeout_secs", Ty::Int, "600", "all", "Longest time a request may take to answer its head (0: no limit); bodies stream as long as they need. Raise it for direct-marked long video."),
    opt("http.max_in_flight", Ty::Int, "4096", "all", "Requests answered or streaming at once; beyond it the process answers 503 with Retry-After at once instead of queueing."),
    opt("metrics.token_file", Ty::Path, "", "all", "File holding the bearer token Prometheus shows at `/metrics`; without it `/metrics` answers loopback clients only."),
    opt("shutdown.grace_secs", Ty::Int, "60", "all", "On SIGTERM, how long requests in flight (downloads) may take to finish before they are cut."),
    opt("shutdown.unready_secs", Ty::Int, "0", "all", "On SIGTERM, how long `/readyz` answers 503 before the listener closes, so a load balancer stops sending work first."),
    opt("console.enabled", Ty::Bool, "true", "origin", "Serve the web console under `/console`."),
    opt("console.secure_cookies", Ty::Bool, "false", "origin", "Mark the console's sign-in cookie Secure (set it when users reach the console over HTTPS)."),
    opt("mailbox.url", Ty::Url, "this process", "origin, edge, home, kiosk", "The mailbox's URL when it runs in another process. An origin then writes its messages into the shared PostgreSQL database and hears of new mail by LISTEN/NOTIFY; edges, homes and kiosks post their reports there."),
    opt("mailbox.max_message_bytes", Ty::Size, "4M", "mailbox", "Largest message accepted."),
    opt("mailbox.notify_retry_secs", Ty::Float, "30", "mailbox", "Seconds before an unanswered notification is repeated (then doubling)."),
    opt("mailbox.notify_retry_max_secs", Ty::Float, "900", "mailbox", "Longest wait between repeated notifications."),
    opt("mailbox.pending_days", Ty::Int, "14", "mailbox", "Days a message waits when its sender set no TTL."),
    opt("mailbox.processed_days", Ty::Int, "30", "mailbox", "Days processed messages are kept."),
    opt("mailbox.processed_max", Ty::Int, "10000", "mailbox", "Processed messages kept per box at most."),
    opt("mailbox.sweep_every_secs", Ty::Int, "60", "mailbox", "Seconds between retention sweeps."),
    opt("mailbox.max_wait_secs", Ty::Int, "60", "mailbox", "Longest long-poll a client may ask for."),
    opt("blobs.dir", Ty::Path, "`data`/blobs", "origin, service", "Blobs (renditions, variants, uploads) in a directory."),
    opt("blobs.s3.bucket", Ty::Str, "", "origin, service", "Blobs in this S3-compatible bucket instead."),
    opt("blobs.s3.endpoint", Ty::Url, "AWS", "origin, service", "The S3-compatible service's URL (MinIO, Ceph, Garage…); path-style requests."),
    opt("blobs.s3.region", Ty::Str, "`AWS_REGION`", "origin, service", "The bucket's region."),
    opt("blobs.s3.allow_http", Ty::Bool, "false", "origin, service", "Let the endpoint be plain HTTP (a private network or loopback)."),
    opt("blobs.s3.access_key_id_file", Ty::Path, "`AWS_ACCESS_KEY_ID`", "origin, service", "File holding the access key id."),
    opt("blobs.s3.secret_access_key_file", Ty::Path, "`AWS_SECRET_ACCESS_KEY`", "origin, service", "File holding the secret access key."),
    opt("edge.origin", Ty::Url, "`origin`", "edge", "The origin's URL (the same as the top-level `origin`)."),
    opt("edge.token_file", Ty::Path, "", "edge", "File holding this edge's account token (`tracecast account add edge … --token-out`)."),
    opt("edge.cache_size", Ty::Size, "2G", "edge", "Bytes of renditions cached on disk, least recently used evicted first."),
    opt("edge.dir", Ty::Path, "`data`/edge", "edge", "Where the cache, kept copies and the link key live."),
    opt("home.token_file", Ty::Path, "", "home", "File holding this home server's account token."),
    opt("home.dir", Ty::Path, "`data`/home", "home", "Where pushed copies and rentals' HLS files live."),
    opt("home.rental_lead_secs", Ty::Int, "60", "home", "Playback time a renter may hold beyond what was viewed (a player's buffer): ranges of the file and HLS segments are handed out no faster than they play (429 with Retry-After beyond), so the viewing fee covers what the renter holds."),
    opt("home.rental_max_range", Ty::Size, "1M", "home", "The largest byte range one request of a rental's file is answered with (an open-ended `bytes=0-` gets this much; a request without Range is refused: a rental streams)."),
    opt("kiosk.token_file", Ty::Path, "", "kiosk", "File holding this kiosk's account token."),
    opt("kiosk.dir", Ty::Path, "`data`/kiosk", "kiosk", "Where pushed copies and disc images live."),
    opt("members.relay_levels", Ty::Int, "1", "origin", "Levels up the referral chain that must approve an applicant."),
    opt("members.reserved", Ty::Str, "all", "origin", "Who approves reserved content: `all` upstream members asked, or `any` one."),
    opt("members.quality", Ty::Table, "steps = [[0.7, 0], [0.4, 1], [0.0, 2]]", "origin", "Trust thresholds to quality ranks (0 = the best tier), highest threshold first."),
    opt("members.leak_penalty", Ty::Float, "0.5", "origin", "Share of standing a leaker's referrer loses."),
    opt("members.leak_decay", Ty::Float, "0.5", "origin", "Each level further up loses this fraction of the level below's share."),
    opt("attributes.unknown", Ty::Float, "0.6", "origin", "Trust factor of an attribute value not in the tables."),
    opt("attributes.occupation", Ty::Table, "see docs/members.md", "origin", "Trust factor by occupation."),
    opt("attributes.place", Ty::Table, "see docs/members.md", "origin", "Trust factor by place of activity."),
    opt("attributes.history", Ty::Table, "see docs/members.md", "origin", "Trust factor by history."),
    opt("roaming.name", Ty::Str, "roaming", "roaming", "The roaming server's name in licences and on bills."),
    opt("roaming.fee", Ty::Str, "0.10", "roaming", "What one licence conversion costs the user."),
    opt("roaming.agreements", Ty::Tables, "", "roaming", "Issuers in other processes whose licences this server converts, one `[[roaming.agreements]]` each."),
    opt("roaming.agreements[].issuer", Ty::Str, "", "roaming", "The issuer's name, as its `GET /v1/licences/issuer` shows it."),
    opt("roaming.agreements[].signing_key", Ty::Str, "", "roaming", "Its Ed25519 signing key (base64url)."),
    opt("roaming.agreements[].agreement_key", Ty::Str, "", "roaming", "Its X25519 agreement key (base64url)."),
    opt("roaming.agreements[].origin", Ty::Url, "", "roaming", "For package orders: the issuer's origin URL (with `token_file`)."),
    opt("roaming.agreements[].token_file", Ty::Path, "", "roaming", "For package orders: this server's partner token there."),
    opt("licences.days", Ty::Int, "30", "origin", "How long a licence lasts."),
    opt("licences.issuer", Ty::Str, "origin", "origin, roaming", "The name this origin's licences are issued under: what roaming servers' agreements name it by (`roaming.agreements[].issuer`), and the issuer users name in package orders (`ISSUER:CONTENT`). Two origins a roaming server deals with need two names."),
    opt("licences.systems", Ty::List, "clearkey, age, device", "origin", "Protection systems the origin issues licences for itself."),
    opt("licences.roaming.name", Ty::Str, "", "origin", "A roaming server in another process: its name…"),
    opt("licences.roaming.signing_key", Ty::Str, "", "origin", "…its signing key (base64url, from `GET /roaming/v1/keys`)…"),
    opt("licences.roaming.agreement_key", Ty::Str, "", "origin", "…its agreement key…"),
    opt("licences.roaming.url", Ty::Url, "", "origin", "…and its URL: licences for systems this origin does not issue are converted there."),
    opt("billing.statement_days", Ty::Int, "30", "origin", "Statements to providers, operators, stores and building managers: one per account every this many days (periods counted from 1970-01-01 UTC), covering its postings since the last; `0`: only when an administrator asks (`tracecast ledger statements`)."),
    opt("regions", Ty::Table, "", "origin", "Buyers' regions by network, for designating the nearest edge when a purchase names no region (`eu-west = [\"10.1.0.0/16\", \"2001:db8:1::/48\"]`; the most specific network wins; the address is the one the purchase came from, so behind a proxy buyers name their region). Edges' regions are declared when they are added (`tracecast account add --kind edge --region`)."),
    opt("cdn.edge", Ty::Str, "", "origin", "Delivery through a CDN (docs/cdn.md): the edge account the CDN is registered as (its id is in every mark the CDN serves; its operator is paid the edge fee)…"),
    opt("cdn.url", Ty::Url, "", "origin", "…the base URL the CDN serves copies under (`{url}/{content}/{tier}/{delivery}.flac`)…"),
    opt("cdn.token_hours", Ty::Int, "24", "origin", "…and how long a watermarking token opens its copy. The tokens' ES256 key is `origin-wmt.key` in the data directory (made on first start); its public half is in `GET /v1/origin`."),
    opt("trace.max_upload", Ty::Size, "512M", "origin", "The largest file `/v1/trace` takes (held in memory while it is read); larger is answered 413."),
    opt("trace.audio_minutes", Ty::Float, "5", "origin", "Audio a trace decodes, from the start: minutes of 48 kHz stereo (the same number of samples at other rates). The mark repeats throughout, so a long file is traced from its start. One trace at the default peaks at about 430 MB (decoded samples and the detector's work), whatever the file holds; traces run one per core."),
    opt("trace.max_megapixels", Ty::Float, "50", "origin", "The largest picture a trace or an ingest decodes; larger is answered 413 before its pixels are decoded."),
    opt("trace.per_minute", Ty::Int, "10", "origin", "Traces one account may ask for in a minute (429 with Retry-After beyond); each account runs one at a time. Administrators are not limited."),
    opt("ingest.audio_minutes", Ty::Float, "60", "origin", "The longest audio an ingest takes (minutes of 48 kHz stereo, the same number of samples at other rates); longer is answered 413 and nothing is stored (at once when the file's header says its length). An ingest holds about 16 bytes per sample of it at its peak (2.8 GB at the default; see \"Peak memory\" under Request budgets): raise it only with the memory to match."),
    opt("service.public_url", Ty::Url, "the listen address", "service", "The URL links and upload locations name."),
    opt("service.max_upload", Ty::Size, "16G", "service", "The largest upload."),
    opt("service.upload_expiry_hours", Ty::Int, "24", "service", "Hours an unfinished upload waits for its next part."),
    opt("service.link_days", Ty::Int, "7", "service", "Days a download link works at most."),
    opt("service.keep_days", Ty::Int, "30", "service", "Days a finished upload is kept."),
    opt("gateway.service", Ty::Url, "", "gateway", "The service server's URL."),
    opt("gateway.mailbox", Ty::Url, "`gateway.service`", "gateway", "The mailbox's URL."),
    opt("gateway.token_file", Ty::Path, "", "gateway", "File holding the gateway's account token."),
    opt("gateway.attachment_limit", Ty::Size, "300K", "gateway", "A message above this (its attachment's base64, headers and text counted) carries a link to the content instead."),
    opt("gateway.max_content", Ty::Size, "16G", "gateway", "The largest content a device may send."),
    opt("gateway.allow_models", Ty::List, "*", "gateway", "Device models served (`*` patterns)."),
    opt("gateway.deny_models", Ty::List, "", "gateway", "Device models refused."),
    opt("gateway.max_devices", Ty::Int, "8", "gateway", "Devices served at once."),
    opt("gateway.link_hours", Ty::Int, "the service's", "gateway", "Hours a link works."),
    opt("gateway.mdns", Ty::Bool, "true", "gateway", "Advertise the gateway with mDNS."),
    opt("gateway.mdns_loopback", Ty::Bool, "false", "gateway", "Advertise on loopback too (one-machine set-ups)."),
    opt("gateway.to", Ty::Str, "", "gateway", "Compose without asking: every message to this recipient."),
    opt("gateway.text", Ty::Str, "", "gateway", "With `to`, the message text."),
];

/// Problems with the settings, all of them, each naming its key.
#[derive(Debug, Default)]
pub struct Problems(pub Vec<String>);

impl Problems {
    pub fn push(&mut self, p: impl Into<String>) {
        self.0.push(p.into());
    }

    /// One problem that stops the reading at once.
    pub fn one(p: impl Into<String>) -> Problems {
        Problems(vec![p.into()])
    }

    /// `Ok(())` when there are none, else every problem in one error.
    pub fn into_result(self) -> Result<(), Problems> {
        if self.0.is_empty() {
            Ok(())
        } else {
            Err(self)
        }
    }
}

impl std::fmt::Display for Problems {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "{} problem{} with the settings:",
            self.0.len(),
            if self.0.len() == 1 { "" } else { "s" }
        )?;
        for p in &self.0 {
            write!(f, "\n  - {p}")?;
        }
        Ok(())
    }
}

impl std::error::Error for Problems {}

/// A size that is not one.
#[derive(Debug, thiserror::Error)]
pub enum BadSize {
    #[error("{0:?} is not a size like 2G, 512M or 100000")]
    NotASize(String),
    #[error("{0:?}: size too large")]
    TooLarge(String),
    #[error("{0} is not a size")]
    WrongType(String),
}

fn find(key: &str) -> Option<&'static Opt> {
    OPTIONS.iter().find(|o| o.key == key)
}

/// Checks every key of `table` (at `prefix`) against [`OPTIONS`].
fn check_keys(table: &toml::Table, prefix: &str, problems: &mut Problems) {
    for (k, v) in table {
        let key = if prefix.is_empty() {
            k.clone()
        } else {
            format!("{prefix}.{k}")
        };
        match find(&key) {
            Some(o) if o.ty == Ty::Tables => {
                if !o.ty.accepts(v) {
                    problems.push(format!("`{key}`: expected {}", o.ty.name()));
                    continue;
                }
                for entry in v.as_array().into_iter().flatten() {
                    if let Some(t) = entry.as_table() {
                        check_keys(t, &format!("{key}[]"), problems);
                    }
                }
            }
            Some(o) => {
                if !o.ty.accepts(v) {
                    problems.push(format!(
                        "`{key}`: expected {}, found {}",
                        o.ty.name(),
                        describe(v)
                    ));
                } else if o.ty == Ty::Url {
                    let u = v.as_str().unwrap_or_default();
                    if !(u.starts_with("http://") || u.starts_with("https://")) {
                        problems.push(format!("`{key}`: {u:?} is not a URL like http://HOST:PORT"));
                    }
                } else if o.ty == Ty::Size {
                    if let Some(s) = v.as_str() {
                        if let Err(e) = parse_size(s) {
                            problems.push(format!("`{key}`: {e}"));
                        }
                    }
                }
            }
            None => match v {
                // A section: its keys are checked one by one.
                toml::Value::Table(t)
                    if OPTIONS
                        .iter()
                        .any(|o| o.key.starts_with(&format!("{key}."))) =>
                {
                    check_keys(t, &key, problems)
                }
                _ => problems.push(format!("unknown key `{key}`{}", suggestion(&key))),
            },
        }
    }
}

fn describe(v: &toml::Value) -> String {
    match v {
        toml::Value::String(s) => format!("the string {s:?}"),
        toml::Value::Integer(i) => format!("the integer {i}"),
        toml::Value::Float(f) => format!("the number {f}"),
        toml::Value::Boolean(b) => format!("{b}"),
        toml::Value::Datetime(d) => format!("the date {d}"),
        toml::Value::Array(_) => "a list".into(),
        toml::Value::Table(_) => "a table".into(),
    }
}

/// " (did you mean `x`?)" for a key one edit or a section away.
fn suggestion(key: &str) -> String {
    let leaf = key.rsplit('.').next().unwrap_or(key);
    let close = OPTIONS.iter().find(|o| {
        let other = o.key.rsplit('.').next().unwrap_or(o.key);
        other == leaf || edit_distance(other, leaf) <= 1
    });
    close.map_or_else(String::new, |o| format!(" (did you mean `{}`?)", o.key))
}

fn edit_distance(a: &str, b: &str) -> usize {
    let b: Vec<char> = b.chars().collect();
    let mut row: Vec<usize> = (0..=b.len()).collect();
    for (i, ca) in a.chars().enumerate() {
        let mut prev = row[0];
        row[0] = i + 1;
        for j in 0..b.len() {
            let here = row[j + 1];
            row[j + 1] = (here + 1)
                .min(row[j] + 1)
                .min(prev + usize::from(ca != b[j]));
            prev = here;
        }
    }
    row[b.len()]
}

/// Puts `value` at the dotted `key` of `table`, making sections on the way.
fn set(table: &mut toml::Table, key: &str, value: toml::Value) {
    let mut parts = key.split('.').peekable();
    let mut t = table;
    while let Some(p) = parts.next() {
        if parts.peek().is_none() {
            t.insert(p.to_owned(), value);
            return;
        }
        let entry = t
            .entry(p.to_owned())
            .or_insert_with(|| toml::Value::Table(Default::default()));
        if !entry.is_table() {
            *entry = toml::Value::Table(Default::default());
        }
        t = entry.as_table_mut().expect("made a table");
    }
}

/// Applies `TRACECAST_<KEY>` variables of `env` over `table`.
fn apply_env(table: &mut toml::Table, env: &[(String, String)], problems: &mut Problems) {
    for o in OPTIONS {
        let Some(name) = o.env() else { continue };
        let Some((_, raw)) = env.iter().find(|(k, _)| *k == name) else {
            continue;
        };
        let value = match o.ty {
            Ty::Str | Ty::Url | Ty::Path | Ty::Size => Ok(toml::Value::String(raw.clone())),
            Ty::Int => raw
                .trim()
                .parse::<i64>()
                .map(toml::Value::Integer)
                .map_err(|_| "an integer"),
            Ty::Float => raw
                .trim()
                .parse::<f64>()
                .map(toml::Value::Float)
                .map_err(|_| "a number"),
            Ty::Bool => match raw.trim() {
                "true" | "1" | "yes" => Ok(toml::Value::Boolean(true)),
                "false" | "0" | "no" => Ok(toml::Value::Boolean(false)),
                _ => Err("true or false"),
            },
            Ty::List => Ok(toml::Value::Array(
                raw.split(',')
                    .map(str::trim)
                    .filter(|s| !s.is_empty())
                    .map(|s| toml::Value::String(s.to_owned()))
                    .collect(),
            )),
            Ty::Table | Ty::Tables => continue,
        };
        match value {
            Ok(v) => set(table, o.key, v),
            Err(want) => problems.push(format!(
                "{name} (overrides `{}`): {raw:?} is not {want}",
                o.key
            )),
        }
    }
}

/// Reads the settings file (if any), applies the environment's overrides,
/// and checks every key and type; all problems are reported together.
pub fn load(path: Option<&Path>, env: &[(String, String)]) -> Result<FileConfig, Problems> {
    let table = match path {
        Some(p) => {
            let text = std::fs::read_to_string(p)
                .map_err(|e| Problems::one(format!("reading {}: {e}", p.display())))?;
            text.parse::<toml::Table>()
                .map_err(|e| Problems::one(format!("{} is not valid TOML: {e}", p.display())))?
        }
        None => toml::Table::new(),
    };
    from_table(table, env)
}

/// A settings file's text, read and checked as [`load`] reads a file.
pub fn parse_str(text: &str, env: &[(String, String)]) -> Result<FileConfig, Problems> {
    let table = text
        .parse::<toml::Table>()
        .map_err(|e| Problems::one(format!("the settings are not valid TOML: {e}")))?;
    from_table(table, env)
}

fn from_table(mut table: toml::Table, env: &[(String, String)]) -> Result<FileConfig, Problems> {
    let mut problems = Problems::default();
    apply_env(&mut table, env, &mut problems);
    check_keys(&table, "", &mut problems);
    problems.into_result()?;
    // The shape is right; serde reads the values (and tables such as
    // members.quality, whose keys are the operator's).
    let config: FileConfig = toml::Value::Table(table)
        .try_into()
        .map_err(|e: toml::de::Error| Problems::one(format!("settings: {}", e.message())))?;
    Ok(config)
}

/// The process's `TRACECAST_*` variables.
pub fn env_vars() -> Vec<(String, String)> {
    std::env::vars()
        .filter(|(k, _)| k.starts_with("TRACECAST_"))
        .collect()
}

/// Reads a secret from a file: its contents, trimmed.
pub fn read_secret(path: &Path, key: &str) -> Result<String, String> {
    let s = std::fs::read_to_string(path)
        .map_err(|e| format!("`{key}`: reading {}: {e}", path.display()))?;
    let s = s.trim().to_owned();
    if s.is_empty() {
        return Err(format!("`{key}`: {} is empty", path.display()));
    }
    Ok(s)
}

/// Reads "2G", "512M", "100000".
pub fn parse_size(s: &str) -> Result<u64, BadSize> {
    let s = s.trim();
    let (num, mult) = match s.chars().last() {
        Some('K' | 'k') => (&s[..s.len() - 1], 1u64 << 10),
        Some('M' | 'm') => (&s[..s.len() - 1], 1 << 20),
        Some('G' | 'g') => (&s[..s.len() - 1], 1 << 30),
        Some('T' | 't') => (&s[..s.len() - 1], 1 << 40),
        _ => (s, 1),
    };
    let n: u64 = num
        .trim()
        .parse()
        .map_err(|_| BadSize::NotASize(s.to_owned()))?;
    n.checked_mul(mult)
        .ok_or_else(|| BadSize::TooLarge(s.to_owned()))
}

/// A size given as a string ("4M") or a number of bytes.
pub fn size_value(v: &toml::Value) -> Result<u64, BadSize> {
    match v {
        toml::Value::Integer(i) if *i >= 0 => Ok(*i as u64),
        toml::Value::String(s) => parse_size(s),
        other => Err(BadSize::WrongType(describe(other))),
    }
}

/// The options as the Markdown table in `docs/config.md`.
pub fn options_markdown() -> String {
    let mut out = String::new();
    let mut section = "";
    for o in OPTIONS {
        let this = match o.key.rsplit_once('.') {
            Some((s, _)) => s.trim_end_matches("[]"),
            None => "",
        };
        let this = if o.key.contains("[]") {
            "roaming.agreements"
        } else {
            this
        };
        if this != section || out.is_empty() {
            section = this;
            if !out.is_empty() {
                out.push('\n');
            }
            let title = if this.is_empty() {
                "Top level".to_owned()
            } else if o.key.contains("[]") {
                format!("`[[{this}]]`")
            } else {
                format!("`[{this}]`")
            };
            out.push_str(&format!(
                "### {title}\n\n| key | type | default | roles | environment | meaning |\n| --- | --- | --- | --- | --- | --- |\n"
            ));
        }
        let default = if o.default.is_empty() {
            "—".to_owned()
        } else if o.default.contains('`') || o.default.contains(' ') && !o.default.contains(',') {
            o.default.to_owned()
        } else {
            format!("`{}`", o.default)
        };
        out.push_str(&format!(
            "| `{}` | {} | {} | {} | {} | {} |\n",
            o.key,
            o.ty.name(),
            default,
            o.roles,
            o.env().map_or_else(|| "—".to_owned(), |e| format!("`{e}`")),
            o.doc
        ));
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn load_str(text: &str, env: &[(&str, &str)]) -> Result<FileConfig, Problems> {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("t.toml");
        std::fs::write(&path, text).unwrap();
        let env: Vec<(String, String)> = env
            .iter()
            .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
            .collect();
        load(Some(&path), &env)
    }

    #[test]
    fn every_problem_is_reported_at_once_naming_its_key() {
        let e = load_str(
            "listen = 7070\nsurprise = 1\n[edge]\ncache_sise = \"2G\"\ncache_size = \"lots\"\n\
             [mailbox]\nurl = \"mailbox.local\"\n[nonsense]\nx = 1\n",
            &[("TRACECAST_HTTP_MAX_IN_FLIGHT", "many")],
        )
        .unwrap_err()
        .to_string();
        for want in [
            "7 problems",
            "`listen`: expected string, found the integer 7070",
            "unknown key `surprise`",
            "unknown key `edge.cache_sise` (did you mean `edge.cache_size`?)",
            "`edge.cache_size`: \"lots\" is not a size",
            "`mailbox.url`: \"mailbox.local\" is not a URL",
            "unknown key `nonsense`",
            "TRACECAST_HTTP_MAX_IN_FLIGHT (overrides `http.max_in_flight`): \"many\" is not an integer",
        ] {
            assert!(e.contains(want), "{want:?} missing from:\n{e}");
        }
    }

    #[test]
    fn the_environment_overrides_the_file() {
        let c = load_str(
            "listen = \"0.0.0.0:7070\"\n[edge]\ncache_size = \"2G\"\n",
            &[
                ("TRACECAST_EDGE_CACHE_SIZE", "64M"),
                ("TRACECAST_ROLES", "edge, home"),
                ("TRACECAST_SHUTDOWN_GRACE_SECS", "5"),
                ("TRACECAST_CONSOLE_SECURE_COOKIES", "true"),
                // Not an option: the command line's, ignored here.
                ("TRACECAST_TOKEN_FILE", "/x"),
            ],
        )
        .unwrap();
        assert_eq!(c.listen.as_deref(), Some("0.0.0.0:7070"));
        assert_eq!(c.edge.unwrap().cache_size.as_deref(), Some("64M"));
        assert_eq!(c.roles.unwrap(), ["edge", "home"]);
        assert_eq!(c.shutdown.unwrap().grace_secs, Some(5));
        assert_eq!(c.console.unwrap().secure_cookies, Some(true));
    }

    #[test]
    fn agreements_and_operator_tables_are_checked() {
        let ok = load_str(
            "[[roaming.agreements]]\nissuer = \"o\"\nsigning_key = \"k\"\nagreement_key = \"a\"\n\
             [members]\nquality = { steps = [[0.5, 0], [0.0, 1]] }\n",
            &[],
        )
        .unwrap();
        assert_eq!(ok.roaming.unwrap().agreements[0].issuer, "o");
        let e = load_str(
            "[[roaming.agreements]]\nissuer = \"o\"\nsigning_key = \"k\"\nagreement_key = \"a\"\ncolour = 1\n",
            &[],
        )
        .unwrap_err()
        .to_string();
        assert!(
            e.contains("unknown key `roaming.agreements[].colour`"),
            "{e}"
        );
    }

    /// Every field serde reads is an option here, and every option here is
    /// a field serde reads: each section's fields are taken from the
    /// "expected one of" of an unknown key in that section.
    #[test]
    fn the_options_table_matches_the_settings_structs() {
        let mut sections: Vec<String> = vec![String::new()];
        for o in OPTIONS {
            let mut parts: Vec<&str> = o.key.split('.').collect();
            parts.pop();
            let s = parts.join(".");
            if !sections.contains(&s) {
                sections.push(s);
            }
        }
        for s in sections {
            let probe = if s.is_empty() {
                "zz_probe = 1\n".to_owned()
            } else if let Some(t) = s.strip_suffix("[]") {
                format!("[[{t}]]\nzz_probe = 1\n")
            } else {
                format!("[{s}]\nzz_probe = 1\n")
            };
            let e = toml::from_str::<FileConfig>(&probe)
                .expect_err("a probe key is refused")
                .to_string();
            let expected = e
                .split("zz_probe`, expected")
                .nth(1)
                .unwrap_or_else(|| panic!("{s}: {e}"));
            // Field names are the `quoted` words of the expectation.
            let mut fields: Vec<String> = expected
                .split('`')
                .skip(1)
                .step_by(2)
                .map(str::to_owned)
                .collect();
            fields.sort();
            let prefix = if s.is_empty() {
                String::new()
            } else {
                format!("{s}.")
            };
            let mut listed: Vec<String> = OPTIONS
                .iter()
                .filter_map(|o| o.key.strip_prefix(&prefix))
                .map(|rest| {
                    rest.split('.')
                        .next()
                        .unwrap_or_default()
                        .trim_end_matches("[]")
                        .to_owned()
                })
                .collect();
            if s.is_empty() {
                listed = OPTIONS
                    .iter()
                    .map(|o| o.key.split('.').next().unwrap_or_default().to_owned())
                    .collect();
            }
            listed.sort();
            listed.dedup();
            assert_eq!(
                fields, listed,
                "section [{s}]: the settings structs vs OPTIONS"
            );
        }
    }

    #[test]
    fn docs_config_md_lists_every_option() {
        let path = concat!(env!("CARGO_MANIFEST_DIR"), "/../../docs/config.md");
        let doc = std::fs::read_to_string(path).unwrap_or_default();
        let table = options_markdown();
        const BEGIN: &str =
            "<!-- options: generated from crates/tracecast-server/src/node/file.rs -->\n";
        const END: &str = "<!-- end of options -->";
        if std::env::var_os("UPDATE_DOCS").is_some() {
            let (head, rest) = doc
                .split_once(BEGIN)
                .expect("docs/config.md has the markers");
            let (_, tail) = rest
                .split_once(END)
                .expect("docs/config.md has the end marker");
            std::fs::write(path, format!("{head}{BEGIN}{table}{END}{tail}")).unwrap();
            return;
        }
        assert!(
            doc.contains(&format!("{BEGIN}{table}{END}")),
            "docs/config.md is out of date: run UPDATE_DOCS=1 cargo test -p tracecast-server node::file"
        );
    }

    #[test]
    fn the_example_deployment_files_are_valid() {
        let dir = std::path::Path::new(concat!(env!("CARGO_MANIFEST_DIR"), "/../../deploy/config"));
        let mut seen = 0;
        for entry in std::fs::read_dir(dir).unwrap() {
            let path = entry.unwrap().path();
            let c = load(Some(&path), &[]).unwrap_or_else(|e| panic!("{}: {e:#}", path.display()));
            let roles = c.roles.unwrap_or_default();
            crate::node::Roles::parse(&roles).unwrap();
            assert!(!roles.is_empty(), "{} names its roles", path.display());
            seen += 1;
        }
        assert_eq!(seen, 5, "origin, mailbox, edge, home, kiosk");
    }

    #[test]
    fn sizes() {
        assert_eq!(parse_size("2G").unwrap(), 2 << 30);
        assert_eq!(parse_size("300K").unwrap(), 300 << 10);
        assert_eq!(parse_size(" 100000 ").unwrap(), 100_000);
        assert!(parse_size("lots").is_err());
        assert!(parse_size("99999999999T").is_err());
        assert_eq!(size_value(&toml::Value::Integer(5)).unwrap(), 5);
        assert!(size_value(&toml::Value::Boolean(true)).is_err());
    }
}
