//! The service server (DESIGN.md "000"): it issues device accounts,
//! checks and stores the devices gateways register (set-up steps 7-9),
//! keeps large attachments a gateway uploads with the tus resumable
//! upload protocol 1.0.0 (core, creation, termination, expiration), and
//! mints signed, expiring download links to them. The protocol's rules are
//! `tracecast-share`; here are HTTP, the spool files and the store.
//!
//! An upload's bytes go to a spool file; its durable offset is the row's
//! `received`, written after the file is synced, so after a crash a
//! resumed PATCH starts where the store says (the file is cut back to
//! it). A complete upload moves into the blob store.

use std::collections::HashSet;
use std::path::PathBuf;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::body::Body;
use axum::extract::rejection::JsonRejection;
use axum::extract::{Path, Query, State};
use axum::http::{header, HeaderMap, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post, put};
use axum::{Json, Router};
use futures::StreamExt;
use serde::Deserialize;
use tokio::io::AsyncSeekExt;
use tracecast_delivery::{LinkError, LinkKey};
use tracecast_share::gateway::{
    AccountStatusChange, IssuedAccount, LinkAnswer, NumberEntry, Registered, Registration,
};
use tracecast_share::tus::{self, TusError};
use tracecast_share::{AccountStatus, ServiceAccount};
use tracecast_store::{Blobs, GatewayId, NewUpload, Store, UploadRecord};

use crate::auth::{token_hash, Authenticator};
use crate::caller::Caller;
use crate::openapi::{ErrorBody, Refusals};
use crate::ApiError;

/// The scope of the service's download links.
pub const LINK_SCOPE: &str = "tracecast-share-link/v1";

/// Settings of the service role.
#[derive(Debug, Clone)]
pub struct ServiceConfig {
    /// The URL the service is reached at, for `Location` and links.
    pub public_url: String,
    /// Where uploads in progress are kept.
    pub spool: PathBuf,
    /// The largest upload (`Tus-Max-Size`).
    pub max_upload_bytes: u64,
    /// How long an unfinished upload waits for its next PATCH.
    pub upload_expiry: Duration,
    /// How long a link works unless asked for less.
    pub link_lifetime: Duration,
    /// How long a finished upload is kept (links cannot outlive it).
    pub keep: Duration,
}

impl ServiceConfig {
    pub fn new(public_url: &str, spool: PathBuf) -> Self {
        Self {
            public_url: public_url.trim_end_matches('/').to_owned(),
            spool,
            max_upload_bytes: 16 << 30,
            upload_expiry: Duration::from_secs(24 * 3600),
            link_lifetime: Duration::from_secs(7 * 24 * 3600),
            keep: Duration::from_secs(30 * 24 * 3600),
        }
    }
}

/// The running service server.
pub struct Service {
    store: Store,
    blobs: Blobs,
    auth: Authenticator,
    links: LinkKey,
    config: ServiceConfig,
    /// Uploads with a PATCH in progress: one writer per upload.
    busy: Mutex<HashSet<String>>,
}

impl std::fmt::Debug for Service {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // Never the link key.
        f.debug_struct("Service")
            .field("public_url", &self.config.public_url)
            .finish()
    }
}

/// A gateway calling: its id (kind included) and its account.
struct Gw {
    id: GatewayId,
    name: String,
}

/// The upload's PATCH slot, freed when dropped.
struct Busy<'a> {
    set: &'a Mutex<HashSet<String>>,
    id: String,
}

impl Drop for Busy<'_> {
    fn drop(&mut self) {
        if let Ok(mut set) = self.set.lock() {
            set.remove(&self.id);
        }
    }
}

fn tus_error(e: TusError) -> ApiError {
    let status = StatusCode::from_u16(e.status()).unwrap_or(StatusCode::BAD_REQUEST);
    let code = match e {
        TusError::Version(_) => "tus_version",
        TusError::Missing(_) | TusError::Number(..) => "tus_header",
        TusError::Metadata(_) => "tus_metadata",
        TusError::TooLarge { .. } => "too_large",
        TusError::OffsetMismatch { .. } => "offset_mismatch",
        TusError::PastLength { .. } => "past_length",
        TusError::ContentType => "content_type",
        TusError::Expired => "expired",
    };
    ApiError::new(status, code, e.to_string())
}

fn io_error(what: &str, e: std::io::Error) -> ApiError {
    tracing::error!(error = %e, "{what}");
    ApiError::new(
        StatusCode::INTERNAL_SERVER_ERROR,
        "io",
        format!("{what}; the upload keeps the bytes it had"),
    )
}

fn no_upload(id: &str) -> ApiError {
    ApiError::new(
        StatusCode::NOT_FOUND,
        "unknown_upload",
        format!("no upload {id:?}: it never existed, was deleted, or expired"),
    )
}

fn now_ms() -> i64 {
    tracecast_store::now_ms()
}

fn h<'a>(headers: &'a HeaderMap, name: &str) -> Option<&'a str> {
    headers.get(name).and_then(|v| v.to_str().ok())
}

/// Adds the headers every tus response carries.
fn tus_headers(out: &mut HeaderMap) {
    out.insert(
        "tus-resumable",
        HeaderValue::from_static(tus::TUS_RESUMABLE),
    );
}

fn upload_id() -> String {
    let mut bytes = [0u8; 16];
    rand::RngCore::fill_bytes(&mut rand::rngs::OsRng, &mut bytes);
    format!("u{}", hex::encode(bytes))
}

/// Upload ids are ours: `u` and 32 hex digits. Anything else is unknown
/// without a database query or a path built from it.
fn check_id(id: &str) -> Result<(), ApiError> {
    let ok = id.len() == 33
        && id.starts_with('u')
        && id[1..]
            .bytes()
            .all(|b| b.is_ascii_hexdigit() && !b.is_ascii_uppercase());
    if ok {
        Ok(())
    } else {
        Err(no_upload(id))
    }
}

impl Service {
    pub fn new(
        store: Store,
        blobs: Blobs,
        links: LinkKey,
        config: ServiceConfig,
    ) -> std::io::Result<Arc<Self>> {
        std::fs::create_dir_all(&config.spool)?;
        Ok(Arc::new(Self {
            store,
            blobs,
            auth: Authenticator::default(),
            links,
            config,
            busy: Mutex::new(HashSet::new()),
        }))
    }

    /// Loads the link key from `path`, making one (mode 0600) on first
    /// start.
    pub fn link_key(path: &std::path::Path) -> Result<LinkKey, tracecast_secrets::SecretFileError> {
        tracecast_secrets::read_or_make(path, "link key").map(LinkKey::from_bytes)
    }

    async fn caller(&self, headers: &HeaderMap) -> Result<Caller, ApiError> {
        Caller::identify(&self.auth, &self.store, headers, None).await
    }

    /// The calling gateway: the service server serves gateways (and its
    /// administrator).
    async fn gateway(&self, headers: &HeaderMap) -> Result<Gw, ApiError> {
        let caller = self.caller(headers).await?;
        let (id, account) = caller.gateway().map_err(|_| {
            ApiError::forbidden("the service server serves gateways: use a gateway's token")
        })?;
        // A suspended gateway is served nothing (uploads, links, devices)
        // until an administrator activates it again.
        if self.store.gateway_status(id).await? == Some(tracecast_share::AccountStatus::Suspended) {
            return Err(ApiError::new(
                StatusCode::FORBIDDEN,
                "gateway_suspended",
                format!("gateway {} is suspended at this service", account.name),
            ));
        }
        Ok(Gw {
            id,
            name: account.name.clone(),
        })
    }

    async fn admin(&self, headers: &HeaderMap) -> Result<(), ApiError> {
        self.caller(headers)
            .await?
            .admin("only an administrator does this")
    }

    /// The caller's upload (others' are unknown to it).
    async fn owned(&self, id: &str, gateway: &Gw) -> Result<UploadRecord, ApiError> {
        check_id(id)?;
        match self.store.upload(id).await? {
            Some(u) if u.gateway_id == gateway.id => Ok(u),
            _ => Err(no_upload(id)),
        }
    }

    fn spool_path(&self, id: &str) -> PathBuf {
        self.config.spool.join(format!("{id}.part"))
    }

    fn blob_key(id: &str) -> String {
        format!("attachments/{id}")
    }

    fn claim(&self, id: &str) -> Result<Busy<'_>, ApiError> {
        let mut set = self
            .busy
            .lock()
            .map_err(|_| ApiError::new(StatusCode::INTERNAL_SERVER_ERROR, "internal", "lock"))?;
        if !set.insert(id.to_owned()) {
            return Err(ApiError::new(
                StatusCode::LOCKED,
                "upload_busy",
                "another PATCH to this upload is in progress; ask HEAD for the offset and resume when it ends",
            ));
        }
        Ok(Busy {
            set: &self.busy,
            id: id.to_owned(),
        })
    }

    /// A signed link to a complete upload, valid for `valid_for` (at most
    /// until the upload is dropped).
    pub fn link(&self, u: &UploadRecord, valid_for: Duration) -> (String, i64) {
        let keep_until = u.expires_at / 1000;
        let expires = (now_ms() / 1000)
            .saturating_add(i64::try_from(valid_for.as_secs()).unwrap_or(i64::MAX))
            .min(keep_until);
        let sig = self.links.sign_scoped(LINK_SCOPE, &u.id, expires);
        let name = tracecast_share::url_segment(&u.filename);
        (
            format!(
                "{}/service/v1/files/{}/{name}?expires={expires}&sig={sig}",
                self.config.public_url, u.id
            ),
            expires,
        )
    }

    /// Removes expired uploads: unfinished ones (their spool files) and
    /// finished ones past their keeping time (their blobs). Returns how
    /// many went.
    pub async fn sweep(&self) -> Result<usize, ApiError> {
        let expired = self.store.expired_uploads(now_ms()).await?;
        let mut n = 0;
        for u in expired {
            // An upload being written is left for the next sweep.
            let Ok(_busy) = self.claim(&u.id) else {
                continue;
            };
            self.remove(&u).await?;
            n += 1;
        }
        Ok(n)
    }

    async fn remove(&self, u: &UploadRecord) -> Result<(), ApiError> {
        // The row goes first: a link to it stops working at once; the
        // bytes follow.
        self.store.delete_upload(&u.id).await?;
        let _ = tokio::fs::remove_file(self.spool_path(&u.id)).await;
        if let Some(key) = &u.blob_key {
            if let Err(e) = self.blobs.delete(key).await {
                tracing::warn!(error = %e, upload = %u.id, "deleting an attachment's blob failed");
            }
        }
        Ok(())
    }

    /// Sweeps every `every` until `shutdown`.
    pub async fn run_sweeper(self: Arc<Self>, every: Duration) {
        loop {
            tokio::time::sleep(every).await;
            match self.sweep().await {
                Ok(0) => {}
                Ok(n) => tracing::info!(removed = n, "expired uploads removed"),
                Err(e) => tracing::warn!(error = %e.message, "sweeping uploads failed"),
            }
        }
    }
}

pub fn router(service: Arc<Service>) -> Router {
    Router::new()
        .route(
            "/service/v1/uploads",
            post(create_upload).options(options_uploads),
        )
        .route(
            "/service/v1/uploads/{id}",
            axum::routing::head(head_upload)
                .patch(patch_upload)
                .delete(delete_upload)
                .options(options_upload),
        )
        .route("/service/v1/uploads/{id}/link", post(make_link))
        .route("/service/v1/files/{id}/{name}", get(download))
        .route("/service/v1/registrations", post(register))
        .route("/service/v1/accounts", post(issue_account))
        .route("/service/v1/accounts/{account}/status", put(set_status))
        .route(
            "/service/v1/gateways/{name}/status",
            put(set_gateway_status),
        )
        .route("/service/v1/accounts/{account}/code", post(new_code))
        .route("/service/v1/numbers/{number}", put(set_number).get(number))
        .layer(axum::extract::DefaultBodyLimit::max(
            crate::budget::JSON_BODY,
        ))
        .with_state(service)
        .merge(crate::openapi::router(crate::openapi::RoleApi::Service))
}

/// What the server offers of tus (discovery); anyone may ask.
#[utoipa::path(options, path = "/service/v1/uploads", tag = "uploads", security(()),
    responses((status = 204, description = "The tus version, extensions and largest upload taken.",
        headers(
            ("Tus-Resumable" = String, description = "`1.0.0`."),
            ("Tus-Version" = String, description = "`1.0.0`."),
            ("Tus-Extension" = String, description = "`creation,termination,expiration`."),
            ("Tus-Max-Size" = u64, description = "The largest upload, in bytes.")))))]
async fn options_uploads(State(s): State<Arc<Service>>) -> Response {
    let mut out = HeaderMap::new();
    tus_headers(&mut out);
    out.insert("tus-version", HeaderValue::from_static(tus::TUS_RESUMABLE));
    out.insert(
        "tus-extension",
        HeaderValue::from_static(tus::TUS_EXTENSIONS),
    );
    if let Ok(v) = HeaderValue::from_str(&s.config.max_upload_bytes.to_string()) {
        out.insert("tus-max-size", v);
    }
    (StatusCode::NO_CONTENT, out).into_response()
}

/// What the server offers of tus, asked at an upload's URL (the same
/// answer as at `/service/v1/uploads`); anyone may ask.
#[utoipa::path(options, path = "/service/v1/uploads/{id}", tag = "uploads", security(()),
    params(("id" = String, Path, description = "The upload, as its Location named it (`u` and 32 hex digits).")),
    responses((status = 204, description = "The tus version, extensions and largest upload taken.",
        headers(
            ("Tus-Resumable" = String, description = "`1.0.0`."),
            ("Tus-Version" = String, description = "`1.0.0`."),
            ("Tus-Extension" = String, description = "`creation,termination,expiration`."),
            ("Tus-Max-Size" = u64, description = "The largest upload, in bytes.")))))]
async fn options_upload(state: State<Arc<Service>>) -> Response {
    options_uploads(state).await
}

/// Wraps a handler's answer so refusals carry `Tus-Resumable` too.
fn with_tus(r: Result<Response, ApiError>) -> Response {
    let mut resp = match r {
        Ok(r) => r,
        Err(e) => e.into_response(),
    };
    tus_headers(resp.headers_mut());
    resp
}

/// Creates an upload (tus creation; a gateway, with its account token): its
/// length and metadata now, its bytes by PATCH. An empty upload is
/// complete at once. Every answer carries `Tus-Resumable`.
#[utoipa::path(post, path = "/service/v1/uploads", tag = "uploads", security(("bearer" = [])),
    params(
        ("Tus-Resumable" = String, Header, description = "`1.0.0`: the tus version the client speaks."),
        ("Upload-Length" = u64, Header, description = "The upload's length in bytes (deferring it is not offered)."),
        ("Upload-Metadata" = Option<String>, Header,
            description = "tus metadata, at most 4096 bytes: `filename` (or `name`) and `filetype` (or `type`, `content-type`), values base64.")),
    responses(
        (status = 201, description = "Created; PATCH its bytes to Location.",
            headers(
                ("Location" = String, description = "The upload's URL."),
                ("Upload-Expires" = String, description = "When an unfinished upload is dropped (HTTP date)."),
                ("Tus-Resumable" = String, description = "`1.0.0`."))),
        (status = 400, description = "Upload-Length is missing or not a number, Upload-Defer-Length was sent, or Upload-Metadata is malformed or too long.", body = ErrorBody),
        (status = 412, description = "Tus-Resumable is missing or not `1.0.0`.", body = ErrorBody),
        (status = 413, description = "Upload-Length is over the largest upload (`Tus-Max-Size`).", body = ErrorBody),
        (status = 401, description = "No token, or one the server does not know.", body = ErrorBody),
        (status = 403, description = "The token is not a gateway's.", body = ErrorBody),
        (status = 500, description = "The upload's spool file could not be made.", body = ErrorBody),
        (status = 503, description = "The store, or (for an empty upload) the blob store, is unavailable; retry.", body = ErrorBody)))]
async fn create_upload(State(s): State<Arc<Service>>, headers: HeaderMap) -> Response {
    with_tus(create(&s, &headers).await)
}

async fn create(s: &Service, headers: &HeaderMap) -> Result<Response, ApiError> {
    let gw = s.gateway(headers).await?;
    tus::check_resumable(h(headers, "tus-resumable")).map_err(tus_error)?;
    if h(headers, "upload-defer-length").is_some() {
        return Err(ApiError::bad_request(
            "this server needs Upload-Length when the upload is created (creation-defer-length is not offered)",
        ));
    }
    let length =
        tus::parse_number("Upload-Length", h(headers, "upload-length")).map_err(tus_error)?;
    tus::check_length(length, s.config.max_upload_bytes).map_err(tus_error)?;
    let raw_meta = h(headers, "upload-metadata").unwrap_or_default();
    if raw_meta.len() > 4096 {
        return Err(tus_error(TusError::Metadata(
            "longer than 4096 bytes".into(),
        )));
    }
    let meta = tus::parse_metadata(raw_meta).map_err(tus_error)?;
    let value = |keys: &[&str]| {
        meta.iter()
            .find(|(k, _)| keys.contains(&k.as_str()))
            .map(|(_, v)| String::from_utf8_lossy(v).into_owned())
    };
    let filename =
        tracecast_share::message::safe_filename(&value(&["filename", "name"]).unwrap_or_default());
    let media_type = value(&["filetype", "type", "content-type"])
        .filter(|t| t.contains('/') && t.len() < 128 && !t.contains(['\r', '\n']))
        .unwrap_or_else(|| "application/octet-stream".into());
    let id = upload_id();
    let expires_at =
        now_ms() + i64::try_from(s.config.upload_expiry.as_millis()).unwrap_or(i64::MAX / 2);
    // The spool file exists before the row names it.
    let spool = s.spool_path(&id);
    tokio::fs::File::create(&spool)
        .await
        .map_err(|e| io_error("creating the upload's spool file", e))?;
    let created = s
        .store
        .create_upload(&NewUpload {
            id: id.clone(),
            gateway_id: gw.id,
            length: i64::try_from(length).unwrap_or(i64::MAX),
            metadata: raw_meta.to_owned(),
            filename,
            media_type,
            expires_at,
        })
        .await;
    let u = match created {
        Ok(u) => u,
        Err(e) => {
            // No row names it: the sweep would never find it.
            let _ = tokio::fs::remove_file(&spool).await;
            return Err(e.into());
        }
    };
    tracing::info!(upload = %id, gateway = %gw.name, length, "upload created");
    let mut out = HeaderMap::new();
    let location = format!("{}/service/v1/uploads/{id}", s.config.public_url);
    if let Ok(v) = HeaderValue::from_str(&location) {
        out.insert(header::LOCATION, v);
    }
    expires_header(&mut out, &u);
    if length == 0 {
        // Nothing to send: complete at once.
        finish(s, &u).await?;
    }
    Ok((StatusCode::CREATED, out).into_response())
}

fn expires_header(out: &mut HeaderMap, u: &UploadRecord) {
    if let Ok(v) = HeaderValue::from_str(&tus::http_date(u.expires_at / 1000)) {
        out.insert("upload-expires", v);
    }
}

/// Where an upload stands (tus core; the gateway that made it): the offset
/// to resume a PATCH at. A HEAD answer has no body: refusals are told by
/// their status alone.
#[utoipa::path(head, path = "/service/v1/uploads/{id}", tag = "uploads", security(("bearer" = [])),
    params(("id" = String, Path, description = "The upload, as its Location named it (`u` and 32 hex digits)."), ("Tus-Resumable" = String, Header, description = "`1.0.0`: the tus version the client speaks.")),
    responses(
        (status = 200, description = "The upload's offset and length.",
            headers(
                ("Upload-Offset" = u64, description = "Bytes received and on disk: PATCH from here."),
                ("Upload-Length" = u64, description = "The upload's length."),
                ("Upload-Metadata" = String, description = "The metadata it was created with, if any."),
                ("Upload-Expires" = String, description = "When it is dropped (HTTP date)."),
                ("Cache-Control" = String, description = "`no-store`."),
                ("Tus-Resumable" = String, description = "`1.0.0`."))),
        (status = 401, description = "No token, or one the server does not know."),
        (status = 403, description = "The token is not a gateway's."),
        (status = 404, description = "No such upload of this gateway's (never made, deleted, or swept after expiring)."),
        (status = 410, description = "The unfinished upload has expired."),
        (status = 412, description = "Tus-Resumable is missing or not `1.0.0`."),
        (status = 503, description = "The store is unavailable; retry.")))]
async fn head_upload(
    State(s): State<Arc<Service>>,
    Path(id): Path<String>,
    headers: HeaderMap,
) -> Response {
    with_tus(head(&s, &id, &headers).await)
}

async fn head(s: &Service, id: &str, headers: &HeaderMap) -> Result<Response, ApiError> {
    let gw = s.gateway(headers).await?;
    tus::check_resumable(h(headers, "tus-resumable")).map_err(tus_error)?;
    let u = s.owned(id, &gw).await?;
    if u.completed_at.is_none() && u.expires_at < now_ms() {
        return Err(tus_error(TusError::Expired));
    }
    let mut out = HeaderMap::new();
    out.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    for (k, v) in [
        ("upload-offset", u.received.to_string()),
        ("upload-length", u.length.to_string()),
    ] {
        if let Ok(v) = HeaderValue::from_str(&v) {
            out.insert(k, v);
        }
    }
    if !u.metadata.is_empty() {
        if let Ok(v) = HeaderValue::from_str(&u.metadata) {
            out.insert("upload-metadata", v);
        }
    }
    expires_header(&mut out, &u);
    Ok((StatusCode::OK, out).into_response())
}

/// Sends an upload's bytes from its offset (tus core; the gateway that
/// made it). What reached the disk counts even when the body breaks off:
/// HEAD says where to resume. The last bytes complete the upload.
#[utoipa::path(patch, path = "/service/v1/uploads/{id}", tag = "uploads", security(("bearer" = [])),
    params(("id" = String, Path, description = "The upload, as its Location named it (`u` and 32 hex digits)."), ("Tus-Resumable" = String, Header, description = "`1.0.0`: the tus version the client speaks."),
        ("Upload-Offset" = u64, Header, description = "Where these bytes start: the upload's offset (HEAD gives it).")),
    request_body(content = Vec<u8>, content_type = "application/offset+octet-stream", description = "The next bytes of the upload."),
    responses(
        (status = 204, description = "The bytes are on disk (the upload is complete when the offset reaches its length).",
            headers(
                ("Upload-Offset" = u64, description = "The new offset."),
                ("Upload-Expires" = String, description = "When an unfinished upload is dropped (HTTP date)."),
                ("Tus-Resumable" = String, description = "`1.0.0`."))),
        (status = 400, description = "Upload-Offset or Content-Length is missing or not a number, the body would go past the upload's length, \
            or the body ended before its end (what arrived is kept: HEAD gives the offset).", body = ErrorBody),
        (status = 404, description = "No such upload of this gateway's.", body = ErrorBody),
        (status = 409, description = "Upload-Offset is not the upload's offset: ask HEAD and resume there.", body = ErrorBody),
        (status = 410, description = "The unfinished upload has expired.", body = ErrorBody),
        (status = 412, description = "Tus-Resumable is missing or not `1.0.0`.", body = ErrorBody),
        (status = 415, description = "The Content-Type is not `application/offset+octet-stream`.", body = ErrorBody),
        (status = 423, description = "Another PATCH to this upload is in progress: resume when it ends.", body = ErrorBody),
        (status = 500, description = "Writing the spool file failed; the upload keeps the bytes it had.", body = ErrorBody),
        (status = 401, description = "No token, or one the server does not know.", body = ErrorBody),
        (status = 403, description = "The token is not a gateway's.", body = ErrorBody),
        (status = 503, description = "The store, or the blob store the complete upload goes to, is unavailable: send the last PATCH again.", body = ErrorBody)))]
async fn patch_upload(
    State(s): State<Arc<Service>>,
    Path(id): Path<String>,
    headers: HeaderMap,
    body: Body,
) -> Response {
    with_tus(patch(&s, &id, &headers, body).await)
}

/// Bytes between records of the durable offset, so a crash in a long
/// PATCH loses at most about this much.
const CHECKPOINT: u64 = 64 << 20;

/// Writes a PATCH body to the spool file on a thread of its own with
/// plain blocking writes through a large buffer, while the request's task
/// keeps reading the network. A second thread syncs the file in the
/// background and tells how far it is durable, so writeback overlaps the
/// transfer instead of stopping it at each checkpoint.
struct SpoolWriter {
    tx: tokio::sync::mpsc::Sender<bytes::Bytes>,
    task: tokio::task::JoinHandle<std::io::Result<()>>,
    /// Bytes (from the start of the file) known to be on disk.
    durable: std::sync::Arc<std::sync::atomic::AtomicU64>,
}

impl SpoolWriter {
    /// `file` is positioned at `offset`, the bytes before it durable.
    fn start(file: std::fs::File, offset: u64) -> std::io::Result<Self> {
        use std::io::Write;
        use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
        use std::sync::Arc;
        let (tx, mut rx) = tokio::sync::mpsc::channel::<bytes::Bytes>(64);
        let durable = Arc::new(AtomicU64::new(offset));
        // Bytes handed to the file (past the writer's buffer).
        let flushed = Arc::new(AtomicU64::new(offset));
        let done = Arc::new(AtomicBool::new(false));
        let syncer = {
            let file = file.try_clone()?;
            let (durable, flushed, done) = (durable.clone(), flushed.clone(), done.clone());
            std::thread::spawn(move || {
                while !done.load(Ordering::Acquire) {
                    std::thread::sleep(std::time::Duration::from_millis(100));
                    let upto = flushed.load(Ordering::Acquire);
                    if upto > durable.load(Ordering::Acquire) && file.sync_data().is_ok() {
                        durable.fetch_max(upto, Ordering::AcqRel);
                    }
                }
            })
        };
        let durable_end = durable.clone();
        let task = tokio::task::spawn_blocking(move || {
            let mut w = std::io::BufWriter::with_capacity(4 << 20, file);
            let mut written = offset;
            let result = (|| {
                while let Some(b) = rx.blocking_recv() {
                    w.write_all(&b)?;
                    written += b.len() as u64;
                    flushed.store(written - w.buffer().len() as u64, Ordering::Release);
                }
                w.flush()?;
                w.get_ref().sync_data()
            })();
            done.store(true, Ordering::Release);
            let _ = syncer.join();
            if result.is_ok() {
                durable_end.fetch_max(written, Ordering::AcqRel);
            }
            result
        });
        Ok(Self { tx, task, durable })
    }

    fn stopped() -> std::io::Error {
        std::io::Error::other("the spool writer stopped")
    }

    async fn write(&self, b: bytes::Bytes) -> std::io::Result<()> {
        self.tx.send(b).await.map_err(|_| Self::stopped())
    }

    /// How far the file is on disk now.
    fn durable(&self) -> u64 {
        self.durable.load(std::sync::atomic::Ordering::Acquire)
    }

    /// Flushes, syncs and stops; how far the file is on disk.
    async fn finish(self) -> (u64, std::io::Result<()>) {
        drop(self.tx);
        let r = match self.task.await {
            Ok(r) => r,
            Err(_) => Err(Self::stopped()),
        };
        (self.durable.load(std::sync::atomic::Ordering::Acquire), r)
    }
}

async fn patch(
    s: &Service,
    id: &str,
    headers: &HeaderMap,
    body: Body,
) -> Result<Response, ApiError> {
    let gw = s.gateway(headers).await?;
    tus::check_resumable(h(headers, "tus-resumable")).map_err(tus_error)?;
    let content_type = h(headers, header::CONTENT_TYPE.as_str()).unwrap_or_default();
    if !content_type
        .split(';')
        .next()
        .unwrap_or_default()
        .trim()
        .eq_ignore_ascii_case(tus::OFFSET_CONTENT_TYPE)
    {
        return Err(tus_error(TusError::ContentType));
    }
    let claimed =
        tus::parse_number("Upload-Offset", h(headers, "upload-offset")).map_err(tus_error)?;
    let declared = h(headers, header::CONTENT_LENGTH.as_str())
        .map(|v| tus::parse_number("Content-Length", Some(v)))
        .transpose()
        .map_err(tus_error)?;
    check_id(id)?;
    let _busy = s.claim(id)?;
    // Read after claiming: the offset cannot move under us now.
    let u = s.owned(id, &gw).await?;
    let length = u64::try_from(u.length).unwrap_or(0);
    let mut upload = tus::Upload {
        length,
        offset: u64::try_from(u.received).unwrap_or(0),
        expires: if u.completed_at.is_some() {
            i64::MAX
        } else {
            u.expires_at / 1000
        },
    };
    // Expiry to the millisecond (the protocol's rule works in seconds).
    if u.completed_at.is_none() && now_ms() > u.expires_at {
        return Err(tus_error(TusError::Expired));
    }
    upload
        .check_patch(claimed, declared, now_ms() / 1000)
        .map_err(tus_error)?;
    let mut out = HeaderMap::new();
    if u.completed_at.is_some() {
        // Complete already (an empty PATCH at the end): say so.
        offset_header(&mut out, upload.offset);
        return Ok((StatusCode::NO_CONTENT, out).into_response());
    }
    let spool = s.spool_path(id);
    let mut file = tokio::fs::OpenOptions::new()
        .write(true)
        .open(&spool)
        .await
        .map_err(|e| io_error("opening the upload's spool file", e))?;
    // Bytes past the durable offset (a crash mid-PATCH) are dropped.
    file.set_len(upload.offset)
        .await
        .map_err(|e| io_error("trimming the spool file", e))?;
    file.seek(std::io::SeekFrom::Start(upload.offset))
        .await
        .map_err(|e| io_error("seeking in the spool file", e))?;
    let writer = SpoolWriter::start(file.into_std().await, upload.offset)
        .map_err(|e| io_error("opening the upload's spool file", e))?;
    let mut stream = body.into_data_stream();
    let mut recorded = upload.offset;
    let mut refusal = None;
    while let Some(chunk) = stream.next().await {
        let chunk = match chunk {
            Ok(c) => c,
            Err(e) => {
                // The client went away: keep what arrived.
                tracing::info!(upload = %id, error = %e, offset = upload.offset, "PATCH body ended early");
                refusal = Some(ApiError::bad_request(
                    "the body ended before its end; HEAD gives the offset to resume at",
                ));
                break;
            }
        };
        let n = chunk.len() as u64;
        if let Err(e) = upload.room_for(n) {
            refusal = Some(tus_error(e));
            break;
        }
        if writer.write(chunk).await.is_err() {
            // The writer failed: finish() below tells why.
            break;
        }
        upload.advance(n).map_err(tus_error)?;
        let durable = writer.durable();
        if durable >= recorded + CHECKPOINT {
            recorded = durable;
            s.store
                .set_upload_received(id, i64::try_from(durable).unwrap_or(i64::MAX))
                .await?;
        }
    }
    // Only what is on disk counts as received.
    let (durable, written) = writer.finish().await;
    s.store
        .set_upload_received(id, i64::try_from(durable).unwrap_or(i64::MAX))
        .await?;
    written.map_err(|e| io_error("writing the spool file", e))?;
    upload.offset = durable;
    if let Some(e) = refusal {
        return Err(e);
    }
    if upload.is_complete() {
        finish(s, &u).await?;
        tracing::info!(upload = %id, bytes = upload.length, "upload complete");
    }
    offset_header(&mut out, upload.offset);
    expires_header(&mut out, &u);
    Ok((StatusCode::NO_CONTENT, out).into_response())
}

fn offset_header(out: &mut HeaderMap, offset: u64) {
    if let Ok(v) = HeaderValue::from_str(&offset.to_string()) {
        out.insert("upload-offset", v);
    }
}

/// Moves a complete upload into the blob store and records it.
async fn finish(s: &Service, u: &UploadRecord) -> Result<(), ApiError> {
    let key = Service::blob_key(&u.id);
    s.blobs
        .put_file(&key, &s.spool_path(&u.id))
        .await
        .map_err(|e| {
            tracing::error!(error = %e, upload = %u.id, "storing a finished upload failed");
            ApiError::new(
                StatusCode::SERVICE_UNAVAILABLE,
                "blob_store",
                "the finished upload could not be stored; try the last PATCH again",
            )
        })?;
    let keep_until = now_ms() + i64::try_from(s.config.keep.as_millis()).unwrap_or(i64::MAX / 2);
    s.store.complete_upload(&u.id, &key, keep_until).await?;
    Ok(())
}

/// Drops an upload, finished or not, and its bytes (tus termination; the
/// gateway that made it); links to it stop working.
#[utoipa::path(delete, path = "/service/v1/uploads/{id}", tag = "uploads", security(("bearer" = [])),
    params(("id" = String, Path, description = "The upload, as its Location named it (`u` and 32 hex digits)."), ("Tus-Resumable" = String, Header, description = "`1.0.0`: the tus version the client speaks.")),
    responses(
        (status = 204, description = "The upload and its bytes are gone.",
            headers(("Tus-Resumable" = String, description = "`1.0.0`."))),
        (status = 404, description = "No such upload of this gateway's.", body = ErrorBody),
        (status = 412, description = "Tus-Resumable is missing or not `1.0.0`.", body = ErrorBody),
        (status = 423, description = "A PATCH to this upload is in progress.", body = ErrorBody),
        Refusals))]
async fn delete_upload(
    State(s): State<Arc<Service>>,
    Path(id): Path<String>,
    headers: HeaderMap,
) -> Response {
    with_tus(delete(&s, &id, &headers).await)
}

async fn delete(s: &Service, id: &str, headers: &HeaderMap) -> Result<Response, ApiError> {
    let gw = s.gateway(headers).await?;
    tus::check_resumable(h(headers, "tus-resumable")).map_err(tus_error)?;
    let u = s.owned(id, &gw).await?;
    let _busy = s.claim(id)?;
    s.remove(&u).await?;
    tracing::info!(upload = %id, "upload terminated");
    Ok(StatusCode::NO_CONTENT.into_response())
}

#[derive(Debug, Default, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
struct LinkRequest {
    /// Seconds the link works; at most the service's link lifetime.
    valid_for_secs: Option<u64>,
}

/// A signed, expiring download link to a complete upload (the gateway that
/// made it), to send in place of the content; it works without a token
/// until it expires or the upload is dropped.
#[utoipa::path(post, path = "/service/v1/uploads/{id}/link", tag = "uploads", security(("bearer" = [])),
    params(("id" = String, Path, description = "The upload, as its Location named it (`u` and 32 hex digits).")),
    request_body(content = Option<LinkRequest>,
        description = "Optional (`application/json`): how long the link works, at most the service's link lifetime (the default)."),
    responses(
        (status = 200, description = "The link, when it expires, and what it serves.", body = LinkAnswer),
        (status = 404, description = "No such upload of this gateway's.", body = ErrorBody),
        (status = 409, description = "The upload is not complete: finish it first.", body = ErrorBody),
        (status = 415, description = "A body was sent with a Content-Type that is not JSON.", body = ErrorBody),
        (status = 422, description = "The JSON body is of the wrong shape.", body = ErrorBody),
        Refusals))]
async fn make_link(
    State(s): State<Arc<Service>>,
    Path(id): Path<String>,
    headers: HeaderMap,
    body: Option<Json<LinkRequest>>,
) -> Result<Json<LinkAnswer>, ApiError> {
    let gw = s.gateway(&headers).await?;
    let u = s.owned(&id, &gw).await?;
    if u.completed_at.is_none() {
        return Err(ApiError::new(
            StatusCode::CONFLICT,
            "incomplete",
            format!(
                "upload {id} has {} of {} bytes: finish it before asking for a link",
                u.received, u.length
            ),
        ));
    }
    let req = body.map(|Json(b)| b).unwrap_or_default();
    let valid = req
        .valid_for_secs
        .map(Duration::from_secs)
        .unwrap_or(s.config.link_lifetime)
        .min(s.config.link_lifetime);
    let (url, expires) = s.link(&u, valid);
    Ok(Json(LinkAnswer {
        url,
        expires,
        filename: u.filename,
        media_type: u.media_type,
        bytes: u.length,
    }))
}

#[derive(Debug, Deserialize)]
struct LinkQuery {
    expires: Option<String>,
    sig: Option<String>,
}

/// A shared file behind its signed, expiring link (the link is the
/// authority: no token), with validators and byte ranges; HEAD answers the
/// headers alone.
#[utoipa::path(get, path = "/service/v1/files/{id}/{name}", tag = "files", security(()),
    params(("id" = String, Path, description = "The upload, as its Location named it (`u` and 32 hex digits)."),
        ("name" = String, Path, description = "The file's name, for the recipient's browser (not checked)."),
        ("expires" = i64, Query, description = "When the link stops working (Unix seconds), as the link gives it."),
        ("sig" = String, Query, description = "The link's signature, as the link gives it."),
        ("Range" = Option<String>, Header, description = "Byte ranges (`bytes=0-1023`, several comma-separated)."),
        ("If-Range" = Option<String>, Header, description = "Serve the ranges only if the file is still this ETag or Last-Modified date; else the whole file."),
        ("If-None-Match" = Option<String>, Header, description = "The ETag the caller holds: 304 if it is still the file's.")),
    responses(
        (status = 200, description = "The whole file, in the media type it was uploaded with, as an attachment.",
            content_type = "application/octet-stream", body = Vec<u8>,
            headers(
                ("ETag" = String, description = "The upload's id, quoted."),
                ("Last-Modified" = String, description = "When the upload completed."),
                ("Accept-Ranges" = String, description = "`bytes`."),
                ("Content-Disposition" = String, description = "`attachment` with the file's name."))),
        (status = 206, description = "The ranges asked for: one range with Content-Range, or several as `multipart/byteranges`.",
            content_type = "application/octet-stream", body = Vec<u8>,
            headers(("Content-Range" = String, description = "The range served and the file's length."))),
        (status = 304, description = "If-None-Match names the file's ETag."),
        (status = 400, description = "The query is malformed (a parameter repeated, missing or not a number).", body = ErrorBody),
        (status = 403, description = "The link is not one the service signed (altered or incomplete).", body = ErrorBody),
        (status = 410, description = "The link has expired (ask the sender for a new one), or the file is no longer kept.", body = ErrorBody),
        (status = 416, description = "No range asked for lies within the file.", body = ErrorBody,
            headers(("Content-Range" = String, description = "`bytes */LENGTH`: the file's length."))),
        (status = 500, description = "The file could not be read.", body = ErrorBody),
        (status = 503, description = "The store is unavailable; retry.", body = ErrorBody)))]
async fn download(
    State(s): State<Arc<Service>>,
    Path((id, _name)): Path<(String, String)>,
    Query(q): Query<LinkQuery>,
    headers: HeaderMap,
) -> Result<Response, ApiError> {
    let refused = || {
        ApiError::new(
            StatusCode::FORBIDDEN,
            "bad_link",
            "this download link is not one the service signed (altered or incomplete)",
        )
    };
    let expires: i64 = q
        .expires
        .as_deref()
        .and_then(|e| e.parse().ok())
        .ok_or_else(refused)?;
    let sig = q.sig.as_deref().ok_or_else(refused)?;
    match s
        .links
        .verify_scoped(LINK_SCOPE, &id, expires, sig, now_ms() / 1000)
    {
        Ok(()) => {}
        Err(LinkError::BadSignature) => return Err(refused()),
        Err(LinkError::Expired) => {
            return Err(ApiError::new(
                StatusCode::GONE,
                "link_expired",
                "this download link has expired; ask the sender for a new one",
            ))
        }
    }
    check_id(&id)?;
    let u = match s.store.upload(&id).await? {
        Some(u) if u.completed_at.is_some() => u,
        _ => {
            return Err(ApiError::new(
                StatusCode::GONE,
                "gone",
                "the shared file is no longer kept",
            ))
        }
    };
    let key = u.blob_key.clone().unwrap_or_else(|| Service::blob_key(&id));
    let rep = crate::serve::Representation {
        source: crate::serve::Source::Blob(&s.blobs, &key),
        len: u64::try_from(u.length).unwrap_or(0),
        etag: format!("\"{}\"", u.id),
        last_modified: tus::http_date(u.completed_at.unwrap_or(u.created_at) / 1000),
        media_type: &u.media_type,
        filename: &u.filename,
        max_age: 0,
        inline: false,
    };
    crate::serve::respond(&rep, &headers).await
}

/// Registers a device a gateway sets up (set-up steps 7-9; a gateway, with
/// its account token): the account's set-up code proves whoever sets the
/// device up holds the account.
#[utoipa::path(post, path = "/service/v1/registrations", tag = "devices", security(("bearer" = [])),
    request_body(content = Registration, description = "The device's account, model and hardware, and the account's set-up code."),
    responses(
        (status = 200, description = "The device is registered to the account, through this gateway.", body = Registered),
        (status = 400, description = "The body is not valid JSON, the account is not of the service's format, \
            or the model or hardware is empty or too long.", body = ErrorBody),
        (status = 401, description = "No token, or one the server does not know.", body = ErrorBody),
        (status = 403, description = "The token is not a gateway's; no account of this id has this set-up code (one answer for both); \
            or the account is suspended.", body = ErrorBody),
        (status = 415, description = "The body is not `application/json`.", body = ErrorBody),
        (status = 422, description = "The body is JSON of the wrong shape.", body = ErrorBody),
        (status = 503, description = "The store is unavailable; nothing was changed; retry.", body = ErrorBody)))]
async fn register(
    State(s): State<Arc<Service>>,
    headers: HeaderMap,
    body: Result<Json<Registration>, JsonRejection>,
) -> Result<Json<Registered>, ApiError> {
    let gw = s.gateway(&headers).await?;
    let Json(r) = body?;
    // The gateway checked the format; the server checks again and then
    // whether it issued the account.
    let account: ServiceAccount =
        r.account
            .parse()
            .map_err(|e: tracecast_share::AccountError| {
                ApiError::new(StatusCode::BAD_REQUEST, "account_format", e.to_string())
            })?;
    let account = account.to_string();
    for (what, v) in [("model", &r.model), ("hardware", &r.hardware)] {
        if v.trim().is_empty() || v.chars().count() > tracecast_share::gateway::MAX_DESCRIPTION {
            return Err(ApiError::bad_request(format!(
                "the device's {what} must be 1 to {} characters",
                tracecast_share::gateway::MAX_DESCRIPTION
            )));
        }
    }
    // The account's set-up code is the proof that whoever sets the device
    // up holds the account. An unknown account and a wrong code get one
    // answer: the service says nothing of which accounts exist.
    let refused = || {
        ApiError::new(
            StatusCode::FORBIDDEN,
            "not_set_up",
            format!(
                "the service has no account {account} with this set-up code; check both with whoever issued the account"
            ),
        )
    };
    let record = s.store.service_account(&account).await?;
    let proven = record.as_ref().is_some_and(|rec| {
        rec.code_hash
            .as_deref()
            .is_some_and(|h| crate::auth::same_secret(&token_hash(&r.code), h))
    });
    let Some(record) = record.filter(|_| proven) else {
        tracing::info!(%account, gateway = %gw.name, "device set-up refused: unknown account or wrong code");
        return Err(refused());
    };
    if record.status != AccountStatus::Active {
        return Err(ApiError::new(
            StatusCode::FORBIDDEN,
            "account_suspended",
            format!("{account} is {}: the service is off for it", record.status),
        ));
    }
    let device = s
        .store
        .register_device(&account, gw.id, r.model.trim(), r.hardware.trim())
        .await?;
    tracing::info!(%account, gateway = %gw.name, model = %device.model, "device registered");
    Ok(Json(Registered {
        account,
        gateway: gw.name,
        label: record.label,
        registered_at: device.registered_at,
    }))
}

#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
struct IssueRequest {
    label: String,
}

/// Issues a device account with its set-up code (the administrator); the
/// code is shown only here.
#[utoipa::path(post, path = "/service/v1/accounts", tag = "accounts", security(("bearer" = [])),
    request_body(content = IssueRequest, description = "The account's label (1 to 200 characters): whose it is."),
    responses(
        (status = 201, description = "Issued; `code` is shown only here.", body = IssuedAccount),
        (status = 415, description = "The body is not `application/json`.", body = ErrorBody),
        (status = 422, description = "The body is JSON of the wrong shape.", body = ErrorBody),
        Refusals))]
async fn issue_account(
    State(s): State<Arc<Service>>,
    headers: HeaderMap,
    body: Result<Json<IssueRequest>, JsonRejection>,
) -> Result<Response, ApiError> {
    s.admin(&headers).await?;
    let Json(r) = body?;
    if r.label.trim().is_empty() || r.label.len() > 200 {
        return Err(ApiError::bad_request("a label is 1 to 200 characters"));
    }
    let code = setup_code();
    let mut record = s
        .store
        .issue_service_account(r.label.trim(), &token_hash(&code), |serial| {
            u64::try_from(serial)
                .map_err(|e| e.to_string())
                .and_then(|n| ServiceAccount::new(n).map_err(|e| e.to_string()))
                .map(|a| a.to_string())
        })
        .await?;
    tracing::info!(account = %record.account, "device account issued");
    record.code_hash = None;
    Ok((StatusCode::CREATED, Json(issued(record, code))).into_response())
}

/// A new set-up code: 128 random bits, easy to type.
fn setup_code() -> String {
    let mut bytes = [0u8; 16];
    rand::RngCore::fill_bytes(&mut rand::rngs::OsRng, &mut bytes);
    let hex = hex::encode(bytes);
    // Eight groups of four: read aloud or typed on a camera's buttons.
    hex.as_bytes()
        .chunks(4)
        .map(|c| std::str::from_utf8(c).unwrap_or_default())
        .collect::<Vec<_>>()
        .join("-")
}

/// The administrator's answer when an account gets a code.
fn issued(r: tracecast_store::ServiceAccountRecord, code: String) -> IssuedAccount {
    IssuedAccount {
        serial: r.serial,
        account: r.account,
        label: r.label,
        status: r.status,
        created_at: r.created_at,
        code: Some(code),
    }
}

/// A new set-up code for an account (the administrator; lost, or issued
/// before codes); the old one stops working. Devices already set up keep
/// working.
#[utoipa::path(post, path = "/service/v1/accounts/{account}/code", tag = "accounts", security(("bearer" = [])),
    params(("account" = String, Path, description = "The account's id (`TCA-…`).")),
    responses(
        (status = 200, description = "The account with its new code, shown only here.", body = IssuedAccount),
        (status = 404, description = "The service never issued this account.", body = ErrorBody),
        Refusals))]
async fn new_code(
    State(s): State<Arc<Service>>,
    Path(account): Path<String>,
    headers: HeaderMap,
) -> Result<Response, ApiError> {
    s.admin(&headers).await?;
    let code = setup_code();
    if !s
        .store
        .set_service_account_code(&account, &token_hash(&code))
        .await?
    {
        return Err(ApiError::new(
            StatusCode::NOT_FOUND,
            "unknown_account",
            format!("the service never issued {account}"),
        ));
    }
    let record = s
        .store
        .service_account(&account)
        .await?
        .ok_or_else(|| ApiError::new(StatusCode::NOT_FOUND, "unknown_account", "gone"))?;
    tracing::info!(%account, "device account given a new set-up code");
    Ok(Json(issued(record, code)).into_response())
}

/// Suspends or reactivates an account (the administrator): a suspended
/// account's devices cannot be set up.
#[utoipa::path(put, path = "/service/v1/accounts/{account}/status", tag = "accounts", security(("bearer" = [])),
    params(("account" = String, Path, description = "The account's id (`TCA-…`).")),
    request_body(content = AccountStatusChange, description = "The new status."),
    responses(
        (status = 204, description = "The status is set."),
        (status = 404, description = "The service never issued this account.", body = ErrorBody),
        (status = 415, description = "The body is not `application/json`.", body = ErrorBody),
        (status = 422, description = "The body is JSON of the wrong shape.", body = ErrorBody),
        Refusals))]
async fn set_status(
    State(s): State<Arc<Service>>,
    Path(account): Path<String>,
    headers: HeaderMap,
    body: Result<Json<AccountStatusChange>, JsonRejection>,
) -> Result<Response, ApiError> {
    s.admin(&headers).await?;
    let Json(r) = body?;
    if !s
        .store
        .set_service_account_status(&account, r.status)
        .await?
    {
        return Err(ApiError::new(
            StatusCode::NOT_FOUND,
            "unknown_account",
            format!("the service never issued {account}"),
        ));
    }
    Ok(StatusCode::NO_CONTENT.into_response())
}

/// Suspends or reactivates a gateway (the administrator): a suspended gateway is refused everything here (uploads, links, device set-up) with 403 `gateway_suspended`.
#[utoipa::path(put, path = "/service/v1/gateways/{name}/status", tag = "accounts", security(("bearer" = [])),
    params(("name" = String, Path, description = "The gateway's account name.")),
    request_body(content = AccountStatusChange, description = "The new status."),
    responses(
        (status = 204, description = "The status is set."),
        (status = 404, description = "No gateway has this name.", body = ErrorBody),
        (status = 415, description = "The body is not `application/json`.", body = ErrorBody),
        (status = 422, description = "The body is JSON of the wrong shape.", body = ErrorBody),
        Refusals))]
async fn set_gateway_status(
    State(s): State<Arc<Service>>,
    Path(name): Path<String>,
    headers: HeaderMap,
    body: Result<Json<AccountStatusChange>, JsonRejection>,
) -> Result<Response, ApiError> {
    s.admin(&headers).await?;
    let Json(r) = body?;
    if !s.store.set_gateway_status(&name, r.status).await? {
        return Err(ApiError::new(
            StatusCode::NOT_FOUND,
            "unknown_gateway",
            format!("no gateway is named {name:?}"),
        ));
    }
    tracing::info!(gateway = %name, status = %r.status, "gateway status set");
    Ok(StatusCode::NO_CONTENT.into_response())
}

fn normalised_number(number: &str) -> Result<String, ApiError> {
    match tracecast_share::gateway::Recipient::parse(number) {
        Some(tracecast_share::gateway::Recipient::Number(n)) => Ok(n),
        _ => Err(ApiError::bad_request(format!(
            "{number:?} is not a phone number (digits, an optional leading +)"
        ))),
    }
}

/// Gives a phone number a mailbox (the administrator): gateways send what
/// is shared with that number there.
#[utoipa::path(put, path = "/service/v1/numbers/{number}", tag = "numbers", security(("bearer" = [])),
    params(("number" = String, Path, description = "The phone number: digits, an optional leading +.")),
    request_body(content = NumberEntry, description = "The mailbox the number's messages go to."),
    responses(
        (status = 204, description = "The number names the box now."),
        (status = 404, description = "No such box.", body = ErrorBody),
        (status = 415, description = "The body is not `application/json`.", body = ErrorBody),
        (status = 422, description = "The body is JSON of the wrong shape.", body = ErrorBody),
        Refusals))]
async fn set_number(
    State(s): State<Arc<Service>>,
    Path(number): Path<String>,
    headers: HeaderMap,
    body: Result<Json<NumberEntry>, JsonRejection>,
) -> Result<Response, ApiError> {
    s.admin(&headers).await?;
    let number = normalised_number(&number)?;
    let Json(e) = body?;
    let name: tracecast_mailbox::BoxName = e.box_name.parse()?;
    s.store.box_by_name(&name).await?;
    s.store.set_number(&number, name.as_str()).await?;
    Ok(StatusCode::NO_CONTENT.into_response())
}

/// The mailbox a phone number names (any account, or the administrator).
#[utoipa::path(get, path = "/service/v1/numbers/{number}", tag = "numbers", security(("bearer" = [])),
    params(("number" = String, Path, description = "The phone number: digits, an optional leading +.")),
    responses(
        (status = 200, description = "The number's mailbox.", body = NumberEntry),
        (status = 404, description = "No mailbox has this number.", body = ErrorBody),
        Refusals))]
async fn number(
    State(s): State<Arc<Service>>,
    Path(number): Path<String>,
    headers: HeaderMap,
) -> Result<Json<NumberEntry>, ApiError> {
    s.caller(&headers).await?;
    let number = normalised_number(&number)?;
    let box_name = s.store.number(&number).await?.ok_or_else(|| {
        ApiError::new(
            StatusCode::NOT_FOUND,
            "unknown_number",
            format!("no mailbox has the number {number}"),
        )
    })?;
    Ok(Json(NumberEntry { box_name }))
}

/// The service role's contract (`/openapi/service.json`, docs/openapi/service.json).
#[derive(utoipa::OpenApi)]
#[openapi(
    info(description = "The service server (DESIGN.md \"000\"): it issues device accounts, registers the devices gateways set up, \
        keeps the large attachments gateways upload with the tus resumable upload protocol 1.0.0 (core, creation, termination, \
        expiration; every tus answer carries `Tus-Resumable`), and mints signed, expiring download links to them. \
        Callers use account tokens (`Authorization: Bearer <token>`): a gateway's for uploads, links and registrations; \
        the administrator's to issue accounts and give numbers mailboxes; any account's to look a number up. \
        A download link (`/service/v1/files/…?expires&sig`) is the authority on its own: no token. \
        Errors are JSON `{\"error\": code, \"message\": text}` (a HEAD answer has no body); a 503 changed nothing and may be retried."),
    paths(options_uploads, options_upload, create_upload, head_upload, patch_upload, delete_upload, make_link, download,
        register, issue_account, new_code, set_status, set_gateway_status, set_number, number),
    tags(
        (name = "uploads", description = "Resumable uploads (tus 1.0.0) and links to them"),
        (name = "files", description = "Shared files behind signed links"),
        (name = "devices", description = "Devices gateways set up"),
        (name = "accounts", description = "Device accounts (administrator)"),
        (name = "numbers", description = "Phone numbers' mailboxes"))
)]
pub struct Api;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn upload_ids_are_ours_or_unknown() {
        let id = upload_id();
        assert!(check_id(&id).is_ok());
        assert!(check_id("u../../etc/passwd").is_err());
        assert!(check_id(&id.to_uppercase()).is_err());
        assert!(check_id("").is_err());
        assert!(check_id("ué").is_err());
    }
}
