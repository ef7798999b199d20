//! The mailbox role: HTTP API of DESIGN.md "003" (documented in
//! `docs/mailbox.md` and `docs/openapi/mailbox.json`).

mod notify;

use std::convert::Infallible;
use std::sync::Arc;
use std::time::{Duration, UNIX_EPOCH};

use axum::body::Bytes;
use axum::extract::rejection::{BytesRejection, QueryRejection};
use axum::extract::{DefaultBodyLimit, Path, Query, State};
use axum::http::{header as http_header, HeaderMap, HeaderValue, StatusCode};
use axum::response::sse::{Event, KeepAlive, Sse};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use futures::{Stream, StreamExt};
use serde::Deserialize;
use tracecast_mailbox::api::{BoxStatus, CreateBox, CreatedBox, Notice, Posted, WhoAmI};
use tracecast_mailbox::{
    check_idempotency_key, check_media_type, header, may_post, parse_protect, parse_ttl,
    parse_wait, Backoff, BoxName, FetchRequest, MessageId, MessageState, Retention, Sender, Want,
};
use tracecast_store::{NewMessage, Principal, Store};

pub use notify::sign as sign_webhook;
use notify::Notifier;

use crate::auth::{new_token, token_hash, Authenticator};
use crate::openapi::{ErrorBody, Refusals};
use crate::ApiError;

/// Settings of the mailbox role.
#[derive(Debug, Clone)]
pub struct MailboxConfig {
    /// Largest message body accepted (bytes).
    pub max_message_bytes: usize,
    pub retention: Retention,
    /// Repeats of an unanswered notification.
    pub backoff: Backoff,
    /// How often retention runs.
    pub sweep_every: Duration,
    /// Longest long-poll.
    pub max_wait: Duration,
    /// Cancelled when the process starts draining: long-polls answer and
    /// event streams end, so shutdown is not held up by them.
    pub drain: tokio_util::sync::CancellationToken,
}

impl Default for MailboxConfig {
    fn default() -> Self {
        Self {
            max_message_bytes: 4 << 20,
            retention: Retention::default(),
            backoff: Backoff::default(),
            sweep_every: Duration::from_secs(60),
            max_wait: Duration::from_secs(60),
            drain: Default::default(),
        }
    }
}

/// The running mailbox: store, notifier, settings.
pub struct Mailbox {
    store: Store,
    notifier: Arc<Notifier>,
    auth: Authenticator,
    config: MailboxConfig,
    /// Box ids by name (boxes are never renamed, so entries never go stale).
    box_ids: std::sync::RwLock<std::collections::HashMap<BoxName, i64>>,
}

impl Mailbox {
    /// Starts the mailbox's background work (notification retries,
    /// retention) and returns it, ready for [`router`].
    pub fn start(store: Store, config: MailboxConfig) -> Arc<Self> {
        let mailbox = Self::new(store, config, true);
        tokio::spawn(mailbox.notifier.clone().retry_loop(mailbox.store.clone()));
        let sweeper = mailbox.store.clone();
        let (retention, every) = (mailbox.config.retention, mailbox.config.sweep_every);
        tokio::spawn(async move {
            loop {
                match sweeper.sweep(retention, tracecast_store::now_ms()).await {
                    Ok(r) if r != Default::default() => tracing::info!(?r, "retention sweep"),
                    Ok(_) => {}
                    Err(e) => tracing::warn!(error = %e, "retention sweep failed"),
                }
                tokio::time::sleep(every).await;
            }
        });
        mailbox
    }

    /// The mailbox as a library for an origin whose mailbox role runs in
    /// another process on the same PostgreSQL database: it posts into the
    /// store and hears of new mail through the database; retention,
    /// webhooks and the HTTP API are the mailbox process's.
    pub fn attach(store: Store, config: MailboxConfig) -> Arc<Self> {
        Self::new(store, config, false)
    }

    /// The mailbox over `store`, hearing of mail other processes post
    /// there; `webhooks`: whether it calls boxes' webhooks.
    fn new(store: Store, config: MailboxConfig, webhooks: bool) -> Arc<Self> {
        let notifier = Notifier::new(config.backoff, webhooks);
        tokio::spawn(notifier.clone().listen(store.clone()));
        Arc::new(Self {
            store,
            notifier,
            auth: Authenticator::default(),
            config,
            box_ids: Default::default(),
        })
    }

    pub fn store(&self) -> &Store {
        &self.store
    }

    /// Posts a message from the origin in this process (a bill, an order
    /// to an edge, a member's notice) and notifies the box's owner, as a
    /// post over HTTP would. Its sender is the origin: no token posts as
    /// the origin. Answers once the message is durable.
    pub async fn send(
        &self,
        box_id: i64,
        media_type: &str,
        body: Vec<u8>,
        idempotency_key: Option<String>,
    ) -> Result<tracecast_store::PostReceipt, tracecast_store::StoreError> {
        let now = tracecast_store::now_ms();
        let expires_at =
            now.saturating_add((self.config.retention.default_ttl as i64).saturating_mul(1000));
        let receipt = self
            .store
            .post(NewMessage {
                box_id,
                media_type: media_type.to_owned(),
                body,
                protected: false,
                sender: Sender::Origin,
                idempotency_key,
                created_at: now,
                expires_at,
            })
            .await?;
        count_post(receipt.duplicate);
        if !receipt.duplicate {
            self.notifier.mail(&self.store, box_id);
        }
        Ok(receipt)
    }

    /// Forgets one cached token (it was replaced).
    pub fn forget_token(&self, hash: &str) {
        self.auth.forget(hash);
    }

    /// Forgets the cached tokens of a box whose tokens were replaced.
    pub fn forget_tokens(&self, box_id: i64) {
        self.auth.forget_box(box_id);
    }

    /// Changes whenever mail arrives in the box (for in-process consumers).
    pub fn subscribe(&self, box_id: i64) -> tokio::sync::watch::Receiver<u64> {
        self.notifier.subscribe(box_id)
    }

    async fn box_id(&self, name: &BoxName) -> Result<i64, ApiError> {
        if let Some(id) = self.box_ids.read().ok().and_then(|m| m.get(name).copied()) {
            return Ok(id);
        }
        let id = self.store.box_by_name(name).await?.id;
        if let Ok(mut m) = self.box_ids.write() {
            m.insert(name.clone(), id);
        }
        Ok(id)
    }

    async fn principal(&self, headers: &HeaderMap) -> Result<Principal, ApiError> {
        self.auth.principal(&self.store, headers).await
    }

    /// The box named in the path, read by its owner only.
    async fn owned_box(&self, headers: &HeaderMap, name: &str) -> Result<i64, ApiError> {
        let name: BoxName = name.parse()?;
        match self.principal(headers).await? {
            Principal::Box { id, name: own } if own == name => Ok(id),
            Principal::Box { name: own, .. } => Err(ApiError::forbidden(format!(
                "this token reads box {own} only, not {name}"
            ))),
            Principal::Admin => Err(ApiError::forbidden(
                "an administrator token cannot read boxes; use the box's own token",
            )),
        }
    }
}

/// The mailbox's contract (`/openapi/mailbox.json`, docs/openapi/mailbox.json).
#[derive(utoipa::OpenApi)]
#[openapi(
    info(description = "Durable per-recipient boxes with notify, fetch, and acknowledge-with-next-fetch; \
        docs/mailbox.md gives the exchange step by step. A box's token reads that box only; any valid \
        token may post where the mailbox's rules allow; an administrator token creates boxes. Errors \
        are JSON `{\"error\": code, \"message\": text}`: a 4xx changed nothing, a 503 changed nothing \
        and may be retried."),
    paths(health, whoami, create_box, box_status, post_message, list_messages, fetch, processed, events, wait),
    tags((name = "mailbox", description = "Boxes, messages and their notices"))
)]
pub struct Api;

/// The mailbox's routes under `/v1`.
pub fn router(mailbox: Arc<Mailbox>) -> Router {
    let limit = mailbox.config.max_message_bytes;
    Router::new()
        .route("/v1/health", get(health))
        .route("/v1/whoami", get(whoami))
        .route("/v1/boxes", post(create_box))
        .route("/v1/boxes/{name}", get(box_status))
        .route(
            "/v1/boxes/{name}/messages",
            post(post_message).get(list_messages),
        )
        .route("/v1/boxes/{name}/fetch", get(fetch))
        .route("/v1/boxes/{name}/processed/{id}", get(processed))
        .route("/v1/boxes/{name}/events", get(events))
        .route("/v1/boxes/{name}/wait", get(wait))
        // Let one byte more through so an oversize body is told apart from
        // a body exactly at the limit, and answered with our own 413.
        .layer(DefaultBodyLimit::max(limit + 1))
        .with_state(mailbox)
        .merge(crate::openapi::router(crate::openapi::RoleApi::Mailbox))
}

/// Liveness.
#[utoipa::path(get, path = "/v1/health", tag = "mailbox", security(()),
    responses((status = 200, description = "Up.", body = Object, example = json!({"status": "ok"}))))]
async fn health() -> Json<serde_json::Value> {
    Json(serde_json::json!({ "status": "ok" }))
}

/// The holder of the token: a box's owner (`box` set) or the administrator.
#[utoipa::path(get, path = "/v1/whoami", tag = "mailbox", security(("bearer" = [])),
    responses((status = 200, description = "Who the token is.", body = WhoAmI), Refusals))]
async fn whoami(
    State(mb): State<Arc<Mailbox>>,
    headers: HeaderMap,
) -> Result<Json<WhoAmI>, ApiError> {
    Ok(Json(match mb.principal(&headers).await? {
        Principal::Admin => WhoAmI {
            box_name: None,
            admin: true,
        },
        Principal::Box { name, .. } => WhoAmI {
            box_name: Some(name),
            admin: false,
        },
    }))
}

/// Creates a box (administrator). Its owner token is shown only here.
#[utoipa::path(post, path = "/v1/boxes", tag = "mailbox", security(("bearer" = [])),
    request_body = CreateBox,
    responses(
        (status = 201, description = "Created; the token is shown only here.", body = CreatedBox),
        (status = 409, description = "A box of that name exists; nothing changed.", body = ErrorBody),
        (status = 415, description = "The body is not JSON.", body = ErrorBody),
        (status = 422, description = "The body is JSON of the wrong shape.", body = ErrorBody),
        Refusals))]
async fn create_box(
    State(mb): State<Arc<Mailbox>>,
    headers: HeaderMap,
    body: Result<Json<CreateBox>, axum::extract::rejection::JsonRejection>,
) -> Result<Response, ApiError> {
    if mb.principal(&headers).await? != Principal::Admin {
        return Err(ApiError::forbidden(
            "creating boxes needs an administrator token",
        ));
    }
    let Json(req) = body?;
    let name: BoxName = req.name.parse()?;
    if let Some(url) = &req.webhook {
        if !(url.starts_with("http://") || url.starts_with("https://")) || url.len() > 2048 {
            return Err(ApiError::bad_request(format!(
                "webhook {url:?} must be an http:// or https:// URL"
            )));
        }
    }
    let secret = req.webhook.as_ref().map(|_| new_token());
    let token = new_token();
    let info = mb
        .store
        .create_box(
            &name,
            req.webhook.clone(),
            secret.clone(),
            token_hash(&token),
        )
        .await?;
    let body = CreatedBox {
        name,
        token,
        webhook: info.webhook,
        webhook_secret: secret,
    };
    Ok((StatusCode::CREATED, Json(body)).into_response())
}

/// A box's counters (its owner).
#[utoipa::path(get, path = "/v1/boxes/{name}", tag = "mailbox", security(("bearer" = [])),
    params(("name" = BoxName, Path, description = "The box: 1-64 of a-z 0-9 . _ - : starting with a letter or digit.")),
    responses((status = 200, description = "The box's counters.", body = BoxStatus),
        (status = 404, description = "No such box.", body = ErrorBody), Refusals))]
async fn box_status(
    State(mb): State<Arc<Mailbox>>,
    Path(name): Path<String>,
    headers: HeaderMap,
) -> Result<Json<BoxStatus>, ApiError> {
    let id = mb.owned_box(&headers, &name).await?;
    let stats = mb.store.stats(id, tracecast_store::now_ms()).await?;
    Ok(Json(BoxStatus {
        name: name.parse()?,
        stats,
    }))
}

fn header_str<'a>(headers: &'a HeaderMap, name: &str) -> Result<Option<&'a str>, ApiError> {
    headers
        .get(name)
        .map(|v| {
            v.to_str()
                .map_err(|_| ApiError::bad_request(format!("header {name} is not visible ASCII")))
        })
        .transpose()
}

/// Sends a message to a box, answered once it is on disk (fsync; commits
/// are grouped). Who may post where is a rule of the mailbox: `role:*`
/// boxes take reports from edges, homes and kiosks only; `edge:*`,
/// `home:*`, `kiosk:*` and `partner:*` boxes take the origin's orders
/// only; other boxes take any valid token, but the system's own types
/// (`application/vnd.tracecast.*`) only from the origin. The sender is the
/// authenticated token, stamped by the server.
#[utoipa::path(post, path = "/v1/boxes/{name}/messages", tag = "mailbox", security(("bearer" = [])),
    params(("name" = BoxName, Path, description = "The box: 1-64 of a-z 0-9 . _ - : starting with a letter or digit."),
        ("Tracecast-Protected" = Option<bool>, Header, description = "Protect the message from overwrite in the recipient's inbox."),
        ("Tracecast-Ttl" = Option<u64>, Header, description = "Seconds before a pending message expires (the server's default otherwise)."),
        ("Idempotency-Key" = Option<String>, Header, description = "A retried post with the same key lands once; the key is the sender's own.")),
    request_body(content = Vec<u8>, content_type = "application/octet-stream", description = "The message; its Content-Type is the message's media type."),
    responses(
        (status = 201, description = "Accepted and durable.", body = Posted,
            headers(("Location" = String, description = "The message's address."))),
        (status = 200, description = "The Idempotency-Key was seen; the earlier message stands.", body = Posted),
        (status = 404, description = "No such box.", body = ErrorBody),
        (status = 413, description = "Larger than `mailbox.max_message`; nothing stored.", body = ErrorBody),
        (status = 415, description = "No or a malformed Content-Type.", body = ErrorBody),
        Refusals))]
async fn post_message(
    State(mb): State<Arc<Mailbox>>,
    Path(name): Path<String>,
    headers: HeaderMap,
    body: Result<Bytes, BytesRejection>,
) -> Result<Response, ApiError> {
    // The sender is who the token says, stamped on the message and shown
    // to its recipient; nothing in the message can change it.
    let sender = match mb.principal(&headers).await? {
        Principal::Admin => Sender::Admin,
        Principal::Box { name, .. } => Sender::Box(name),
    };
    let name: BoxName = name.parse()?;
    let body = body?;
    if body.len() > mb.config.max_message_bytes {
        return Err(ApiError::new(
            StatusCode::PAYLOAD_TOO_LARGE,
            "too_large",
            format!(
                "messages are limited to {} bytes; send a link to large content instead",
                mb.config.max_message_bytes
            ),
        ));
    }
    let media_type =
        header_str(&headers, http_header::CONTENT_TYPE.as_str())?.ok_or_else(|| {
            ApiError::new(
                StatusCode::UNSUPPORTED_MEDIA_TYPE,
                "no_media_type",
                "a message needs a Content-Type",
            )
        })?;
    check_media_type(media_type)?;
    may_post(&sender, &name, media_type)
        .map_err(|e| ApiError::new(StatusCode::FORBIDDEN, "not_your_box", e.to_string()))?;
    // A gateway suspended at the service relays nothing, here either.
    if let Sender::Box(from) = &sender {
        if let Some(gateway) = from.as_str().strip_prefix("gateway:") {
            if mb.store.gateway_status_by_name(gateway).await?
                == Some(tracecast_share::AccountStatus::Suspended)
            {
                return Err(ApiError::new(
                    StatusCode::FORBIDDEN,
                    "gateway_suspended",
                    format!("gateway {gateway} is suspended at the service"),
                ));
            }
        }
    }
    let protected = header_str(&headers, header::PROTECTED)?
        .map(parse_protect)
        .transpose()?
        .unwrap_or(false);
    let ttl = header_str(&headers, header::TTL)?
        .map(parse_ttl)
        .transpose()?;
    let key = header_str(&headers, header::IDEMPOTENCY_KEY)?;
    if let Some(k) = key {
        check_idempotency_key(k)?;
    }
    let box_id = mb.box_id(&name).await?;
    let now = tracecast_store::now_ms();
    let expires_at = mb.config.retention.expires_at(now, ttl)?;
    let receipt = mb
        .store
        .post(NewMessage {
            box_id,
            media_type: media_type.to_owned(),
            body: body.to_vec(),
            protected,
            sender,
            idempotency_key: key.map(str::to_owned),
            created_at: now,
            expires_at,
        })
        .await?;
    count_post(receipt.duplicate);
    if !receipt.duplicate {
        mb.notifier.mail(&mb.store, box_id);
    }
    let location = format!("/v1/boxes/{name}/messages/{}", receipt.id);
    let body = Posted {
        id: receipt.id,
        date: http_date(receipt.created_at),
        expires: http_date(expires_at),
        duplicate: receipt.duplicate,
    };
    let status = if receipt.duplicate {
        StatusCode::OK
    } else {
        StatusCode::CREATED
    };
    Ok((status, [(http_header::LOCATION, location)], Json(body)).into_response())
}

fn count_post(duplicate: bool) {
    let outcome = if duplicate { "duplicate" } else { "new" };
    crate::ops::metrics()
        .posts
        .get_or_create(&crate::ops::metrics::PostLabels { outcome })
        .inc();
}

fn http_date(ms: i64) -> String {
    httpdate::fmt_http_date(UNIX_EPOCH + Duration::from_millis(ms.max(0) as u64))
}

fn set(headers: &mut HeaderMap, name: &'static str, value: String) {
    if let Ok(v) = HeaderValue::from_str(&value) {
        headers.insert(name, v);
    }
}

/// Fetches a message and acknowledges the one stored before (its owner).
/// The whole request is checked before anything is applied; the server
/// keeps every message until told, and a repeated instruction answers
/// `Tracecast-Done: already`.
#[utoipa::path(get, path = "/v1/boxes/{name}/fetch", tag = "mailbox", security(("bearer" = [])),
    params(("name" = BoxName, Path, description = "The box: 1-64 of a-z 0-9 . _ - : starting with a letter or digit."),
        ("want" = String, Query, pattern = "^(first|none|[1-9][0-9]*)$",
            description = "`first` (oldest pending), a message id (the previous answer's Tracecast-Next), or `none` (only the instruction)."),
        ("done" = Option<MessageId>, Query, description = "The message just stored."),
        ("then" = Option<String>, Query, pattern = "^(delete|move)$", description = "What to do with `done`: delete it, or move it to the processed store."),
        ("wait" = Option<u64>, Query, maximum = 60,
            description = "With want=first only: if the box is empty, hold the request up to this many seconds (a long-poll fetch).")),
    responses(
        (status = 200, description = "The message, as it was posted.", content_type = "application/octet-stream", body = Vec<u8>,
            headers(
                ("Tracecast-Message-Id" = i64, description = "The message's id."),
                ("Tracecast-Message-Date" = String, description = "IMF-fixdate when accepted."),
                ("Tracecast-Protected" = bool, description = "Protected from overwrite."),
                ("Tracecast-Sender" = String, description = "Who posted it, as the mailbox authenticated them; never taken from the message."),
                ("Tracecast-Next" = String, description = "The next pending message's id, or `none`."),
                ("Tracecast-Next-Length" = i64, description = "The next pending message's length."),
                ("Tracecast-Done" = String, description = "What the instruction did: `applied` or `already`."))),
        (status = 204, description = "No message (want=none, or the box is empty, also after `wait`); the instruction, if any, is applied.",
            headers(("Tracecast-Next" = String, description = "The next pending message's id, or `none`."))),
        (status = 404, description = "No such box or message.", body = ErrorBody),
        (status = 409, description = "The instruction conflicts with the message's state.", body = ErrorBody),
        (status = 410, description = "The message is gone (deleted or expired).", body = ErrorBody),
        Refusals))]
async fn fetch(
    State(mb): State<Arc<Mailbox>>,
    Path(name): Path<String>,
    headers: HeaderMap,
    query: Result<Query<Vec<(String, String)>>, QueryRejection>,
) -> Result<Response, ApiError> {
    let box_id = mb.owned_box(&headers, &name).await?;
    let Query(pairs) = query?;
    let max_wait = mb.config.max_wait.as_secs();
    let mut wait = None;
    for (_, v) in pairs.iter().filter(|(k, _)| k == "wait") {
        if wait.replace(parse_wait(v, max_wait)?).is_some() {
            return Err(tracecast_mailbox::ProtocolError::Repeated("wait").into());
        }
    }
    let request = FetchRequest::parse(
        pairs
            .iter()
            .filter(|(k, _)| k != "wait")
            .map(|(k, v)| (k.as_str(), v.as_str())),
    )?;
    let wait = wait.unwrap_or(0);
    if wait > 0 && request.want != Want::First {
        return Err(tracecast_mailbox::ProtocolError::Wait(wait.to_string(), max_wait).into());
    }
    // Subscribe before looking, so mail arriving in between is not missed.
    let mut notices = mb.notifier.subscribe(box_id);
    let mut fetch = mb
        .store
        .fetch(box_id, &request, tracecast_store::now_ms())
        .await?;
    if fetch.message.is_none() && wait > 0 {
        // The instruction is applied; now wait for the first new message.
        let deadline = tokio::time::Instant::now() + Duration::from_secs(wait);
        let drain = mb.config.drain.clone();
        while fetch.message.is_none() && !drain.is_cancelled() {
            tokio::select! {
                changed = tokio::time::timeout_at(deadline, notices.changed()) => match changed {
                    Ok(Ok(())) => {}
                    _ => break,
                },
                () = drain.cancelled() => break,
            }
            let done = fetch.done;
            fetch = mb
                .store
                .fetch(box_id, &FetchRequest::first(), tracecast_store::now_ms())
                .await?;
            fetch.done = done;
        }
    }
    mb.notifier.fetched(box_id);
    let mut out = HeaderMap::new();
    set(&mut out, header::NEXT, fetch.next.to_string());
    if let Some(len) = fetch.next_length {
        set(&mut out, header::NEXT_LENGTH, len.to_string());
    }
    if let Some(done) = fetch.done {
        let word = match done {
            tracecast_store::DisposeOutcome::Applied => "applied",
            tracecast_store::DisposeOutcome::Already => "already",
        };
        set(&mut out, header::DONE, word.to_owned());
    }
    out.insert(
        http_header::CACHE_CONTROL,
        HeaderValue::from_static("no-store"),
    );
    let Some(m) = fetch.message else {
        return Ok((StatusCode::NO_CONTENT, out).into_response());
    };
    set(&mut out, header::MESSAGE_ID, m.id.to_string());
    set(&mut out, header::MESSAGE_DATE, http_date(m.created_at));
    set(&mut out, header::PROTECTED, m.protected.to_string());
    set(&mut out, header::SENDER, m.sender.to_string());
    set(
        &mut out,
        http_header::CONTENT_TYPE.as_str(),
        m.media_type.clone(),
    );
    Ok((StatusCode::OK, out, m.body).into_response())
}

/// A listing's answer.
#[derive(serde::Serialize, utoipa::ToSchema)]
struct MessageList {
    messages: Vec<tracecast_store::MessageMeta>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct ListQuery {
    state: Option<String>,
    after: Option<i64>,
    limit: Option<i64>,
}

/// Lists messages' metadata, oldest first (its owner).
#[utoipa::path(get, path = "/v1/boxes/{name}/messages", tag = "mailbox", security(("bearer" = [])),
    params(("name" = BoxName, Path, description = "The box: 1-64 of a-z 0-9 . _ - : starting with a letter or digit."),
        ("state" = Option<String>, Query, pattern = "^(pending|processed)$", description = "Which store (default pending)."),
        ("after" = Option<i64>, Query, description = "Only ids above this."),
        ("limit" = Option<i64>, Query, minimum = 1, maximum = 1000, description = "At most this many (default 100).")),
    responses(
        (status = 200, description = "Oldest first.", body = MessageList),
        (status = 404, description = "No such box.", body = ErrorBody),
        Refusals))]
async fn list_messages(
    State(mb): State<Arc<Mailbox>>,
    Path(name): Path<String>,
    headers: HeaderMap,
    query: Result<Query<ListQuery>, QueryRejection>,
) -> Result<Json<MessageList>, ApiError> {
    let box_id = mb.owned_box(&headers, &name).await?;
    let Query(q) = query?;
    let state = match q.state.as_deref().unwrap_or("pending") {
        "pending" => MessageState::Pending,
        "processed" => MessageState::Processed,
        other => {
            return Err(ApiError::bad_request(format!(
                "state={other:?} is invalid: use pending or processed"
            )))
        }
    };
    let limit = q.limit.unwrap_or(100);
    if !(1..=1000).contains(&limit) {
        return Err(ApiError::bad_request("limit must be 1-1000"));
    }
    let messages = mb
        .store
        .list(box_id, state, q.after.unwrap_or(0).max(0), limit)
        .await?;
    Ok(Json(MessageList { messages }))
}

/// A message of the processed store (its owner).
#[utoipa::path(get, path = "/v1/boxes/{name}/processed/{id}", tag = "mailbox", security(("bearer" = [])),
    params(("name" = BoxName, Path, description = "The box: 1-64 of a-z 0-9 . _ - : starting with a letter or digit."), ("id" = MessageId, Path, description = "The message.")),
    responses(
        (status = 200, description = "The message, as it was posted.", content_type = "application/octet-stream", body = Vec<u8>,
            headers(("Tracecast-Message-Id" = i64), ("Tracecast-Message-Date" = String), ("Tracecast-Sender" = String))),
        (status = 404, description = "No such box or processed message.", body = ErrorBody),
        (status = 410, description = "The message is gone.", body = ErrorBody),
        Refusals))]
async fn processed(
    State(mb): State<Arc<Mailbox>>,
    Path((name, id)): Path<(String, String)>,
    headers: HeaderMap,
) -> Result<Response, ApiError> {
    let box_id = mb.owned_box(&headers, &name).await?;
    let id: MessageId = id.parse()?;
    let m = mb.store.processed(box_id, id).await?;
    let mut out = HeaderMap::new();
    set(&mut out, header::MESSAGE_ID, m.id.to_string());
    set(&mut out, header::MESSAGE_DATE, http_date(m.created_at));
    set(&mut out, header::SENDER, m.sender.to_string());
    set(&mut out, http_header::CONTENT_TYPE.as_str(), m.media_type);
    Ok((StatusCode::OK, out, m.body).into_response())
}

/// The notice an event stream or long-poll carries.
async fn notice(mb: &Mailbox, box_id: i64) -> Result<Option<Notice>, ApiError> {
    let stats = mb.store.stats(box_id, tracecast_store::now_ms()).await?;
    Ok((stats.pending > 0).then(|| Notice::from(stats)))
}

/// Notices as Server-Sent Events (its owner): an event `mail` with a
/// Notice as data when mail waits (at once on connecting if some does), on
/// new mail, and again with backoff while the owner does not fetch.
#[utoipa::path(get, path = "/v1/boxes/{name}/events", tag = "mailbox", security(("bearer" = [])),
    params(("name" = BoxName, Path, description = "The box: 1-64 of a-z 0-9 . _ - : starting with a letter or digit.")),
    responses(
        (status = 200, description = "An event stream of `mail` events, each a Notice.", content_type = "text/event-stream", body = String),
        (status = 404, description = "No such box.", body = ErrorBody),
        Refusals))]
async fn events(
    State(mb): State<Arc<Mailbox>>,
    Path(name): Path<String>,
    headers: HeaderMap,
) -> Result<Sse<impl Stream<Item = Result<Event, Infallible>>>, ApiError> {
    let box_id = mb.owned_box(&headers, &name).await?;
    let mb_drain = mb.config.drain.clone();
    let rx = mb.notifier.subscribe(box_id);
    // The first pass reports mail already waiting; later passes wait for a
    // new notice (new mail or a repeat).
    let stream =
        futures::stream::unfold((mb, rx, true), move |(mb, mut rx, mut first)| async move {
            loop {
                if !first {
                    rx.changed().await.ok()?;
                }
                rx.borrow_and_update();
                let was_first = std::mem::replace(&mut first, false);
                match notice(&mb, box_id).await {
                    Ok(Some(n)) => {
                        let data = serde_json::to_string(&n).expect("a notice serialises");
                        let event = Event::default().event("mail").data(data);
                        return Some((Ok(event), (mb, rx, false)));
                    }
                    // Nothing waiting: say so, then wait for the first notice.
                    Ok(None) if was_first => {
                        return Some((Ok(Event::default().comment("no mail")), (mb, rx, false)));
                    }
                    _ => continue,
                }
            }
        });
    let stream = stream.take_until(mb_drain.cancelled_owned());
    Ok(Sse::new(stream).keep_alive(KeepAlive::new().interval(Duration::from_secs(15))))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct WaitQuery {
    timeout: Option<u64>,
}

/// Long-polls for mail (its owner).
#[utoipa::path(get, path = "/v1/boxes/{name}/wait", tag = "mailbox", security(("bearer" = [])),
    params(("name" = BoxName, Path, description = "The box: 1-64 of a-z 0-9 . _ - : starting with a letter or digit."), ("timeout" = Option<u64>, Query, maximum = 60, description = "Seconds to wait (default 30; at most `mailbox.max_wait`).")),
    responses(
        (status = 200, description = "Mail waits.", body = Notice),
        (status = 204, description = "No mail within the timeout."),
        (status = 404, description = "No such box.", body = ErrorBody),
        Refusals))]
async fn wait(
    State(mb): State<Arc<Mailbox>>,
    Path(name): Path<String>,
    headers: HeaderMap,
    query: Result<Query<WaitQuery>, QueryRejection>,
) -> Result<Response, ApiError> {
    let box_id = mb.owned_box(&headers, &name).await?;
    let Query(q) = query?;
    let timeout = Duration::from_secs(q.timeout.unwrap_or(30)).min(mb.config.max_wait);
    let mut rx = mb.notifier.subscribe(box_id);
    let deadline = tokio::time::Instant::now() + timeout;
    loop {
        if let Some(n) = notice(&mb, box_id).await? {
            return Ok(Json(n).into_response());
        }
        tokio::select! {
            changed = tokio::time::timeout_at(deadline, rx.changed()) => match changed {
                Ok(Ok(())) => continue,
                _ => return Ok(StatusCode::NO_CONTENT.into_response()),
            },
            () = mb.config.drain.cancelled() => return Ok(StatusCode::NO_CONTENT.into_response()),
        }
    }
}
