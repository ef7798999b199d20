//! The gateway (DESIGN.md "000"): the phone between devices on its local
//! network and the service server on the wide one. It advertises itself
//! with mDNS/DNS-SD (`_tracecast-gw._tcp`), sets devices up (steps 2-9 of
//! the seed's step a: policy check, account format check, registration at
//! the service server), and relays what a device shares: a compose prompt
//! asks its user for the text and the recipient's number, content over the
//! attachment limit goes to the service server by tus and travels as a
//! signed link, and the MIME message goes to the recipient's mailbox.

use std::collections::HashMap;
use std::net::IpAddr;
use std::path::PathBuf;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use axum::body::Body;
use axum::extract::rejection::JsonRejection;
use axum::extract::{Path, Query, State};
use axum::http::{header, HeaderMap, StatusCode};
use axum::routing::{get, post};
use axum::{Json, Router};
use futures::StreamExt;
use serde::{Deserialize, Serialize};
use tokio::io::AsyncWriteExt;
use tracecast_client::{ClientError, MailboxClient, PostOptions, ServiceClient};
use tracecast_mailbox::BoxName;
use tracecast_share::gateway::{
    check_account, AccountConfirm, DevicePolicy, Recipient, Registration, SendReceipt,
    ServiceOffer, ServiceOn, ServiceRequest, MDNS_SERVICE_TYPE,
};
use tracecast_share::message::{self, Content, Outgoing};

use crate::auth::{new_token, token_hash};
use crate::openapi::ErrorBody;
use crate::ApiError;

/// The default attachment limit: 300 KiB, like common MMS limits.
pub const DEFAULT_ATTACHMENT_LIMIT: u64 = 300 * 1024;

/// How long a service offer waits for the device's account.
const OFFER_TTL: Duration = Duration::from_secs(300);

/// Settings of the gateway role.
#[derive(Clone)]
pub struct GatewayConfig {
    /// The gateway's account name at the service server.
    pub name: String,
    pub service_url: String,
    pub mailbox_url: String,
    /// The gateway account's token (service and mailbox).
    pub token: String,
    pub attachment_limit: u64,
    /// The largest content a device may send.
    pub max_content_bytes: u64,
    pub policy: DevicePolicy,
    /// Where the gateway keeps its devices and content in transit.
    pub state_dir: PathBuf,
    /// How long links work (the service's default when `None`).
    pub link_valid_for: Option<Duration>,
}

impl std::fmt::Debug for GatewayConfig {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // Never the token.
        f.debug_struct("GatewayConfig")
            .field("name", &self.name)
            .field("service_url", &self.service_url)
            .field("attachment_limit", &self.attachment_limit)
            .finish()
    }
}

/// What the compose prompt is asked.
#[derive(Debug, Clone)]
pub struct ComposeAsk {
    /// The device, as registered (account and model).
    pub device: String,
    pub filename: String,
    pub media_type: String,
    pub bytes: u64,
    /// Whether it will travel as a link (over the attachment limit).
    pub as_link: bool,
    pub suggested_to: Option<String>,
    pub suggested_text: Option<String>,
}

/// What the gateway's user composed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Composed {
    pub recipient: String,
    pub text: String,
}

/// The compose prompt: the terminal (in the binary) or preset values
/// for scripts. It may block (a person is typing): it runs on the
/// blocking pool, one prompt at a time.
pub trait Composer: Send + Sync + 'static {
    /// The message, or why there is none (the user cancelled).
    fn compose(&self, ask: &ComposeAsk) -> Result<Composed, String>;
}

/// Compose from flags: a fixed recipient and text, else the device's
/// suggestions.
#[derive(Debug, Clone, Default)]
pub struct PresetComposer {
    pub to: Option<String>,
    pub text: Option<String>,
}

impl Composer for PresetComposer {
    fn compose(&self, ask: &ComposeAsk) -> Result<Composed, String> {
        let recipient = self
            .to
            .clone()
            .or_else(|| ask.suggested_to.clone())
            .ok_or("no recipient: the gateway has no --to and the device suggested none")?;
        let text = self
            .text
            .clone()
            .or_else(|| ask.suggested_text.clone())
            .unwrap_or_default();
        Ok(Composed { recipient, text })
    }
}

/// A device the gateway serves (kept across restarts).
#[derive(Debug, Clone, Serialize, Deserialize)]
struct DeviceEntry {
    token_hash: String,
    account: String,
    model: String,
    hardware: String,
    registered_at: i64,
}

/// The running gateway.
pub struct Gateway {
    config: GatewayConfig,
    service: ServiceClient,
    mailbox: MailboxClient,
    composer: Arc<dyn Composer>,
    compose_one: tokio::sync::Mutex<()>,
    devices: Mutex<Vec<DeviceEntry>>,
    /// Open service offers: the request, when, and who asked (its
    /// address: one neighbour may not take every slot).
    offers: Mutex<HashMap<String, (ServiceRequest, Instant, IpAddr)>>,
}

impl std::fmt::Debug for Gateway {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Gateway")
            .field("config", &self.config)
            .finish()
    }
}

/// Why a gateway could not start.
#[derive(Debug, thiserror::Error)]
pub enum GatewayError {
    #[error("gateway state in {0}: {1}")]
    State(PathBuf, String),
    #[error(transparent)]
    Client(#[from] ClientError),
    #[error("mDNS: {0}")]
    Mdns(String),
}

fn random_id() -> String {
    let mut bytes = [0u8; 12];
    rand::RngCore::fill_bytes(&mut rand::rngs::OsRng, &mut bytes);
    hex::encode(bytes)
}

impl Gateway {
    pub fn new(
        config: GatewayConfig,
        composer: Arc<dyn Composer>,
    ) -> Result<Arc<Self>, GatewayError> {
        let state =
            |e: std::io::Error| GatewayError::State(config.state_dir.clone(), e.to_string());
        std::fs::create_dir_all(config.state_dir.join("outgoing")).map_err(state)?;
        let devices = match std::fs::read(config.state_dir.join("devices.json")) {
            Ok(bytes) => serde_json::from_slice(&bytes).map_err(|e| {
                GatewayError::State(config.state_dir.clone(), format!("devices.json: {e}"))
            })?,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Vec::new(),
            Err(e) => return Err(state(e)),
        };
        // Content in transit when the gateway stopped is not resent.
        if let Ok(entries) = std::fs::read_dir(config.state_dir.join("outgoing")) {
            for e in entries.flatten() {
                let _ = std::fs::remove_file(e.path());
            }
        }
        Ok(Arc::new(Self {
            service: ServiceClient::new(&config.service_url, &config.token)?,
            mailbox: MailboxClient::new(&config.mailbox_url, &config.token)?,
            config,
            composer,
            compose_one: tokio::sync::Mutex::new(()),
            devices: Mutex::new(devices),
            offers: Mutex::new(HashMap::new()),
        }))
    }

    fn save_devices(&self, devices: &[DeviceEntry]) -> Result<(), ApiError> {
        let path = self.config.state_dir.join("devices.json");
        let bytes = serde_json::to_vec_pretty(devices).map_err(|e| internal(e.to_string()))?;
        tracecast_secrets::replace(&path, &bytes)
            .map_err(|e| internal(format!("saving the devices: {e}")))
    }

    fn device(&self, headers: &HeaderMap) -> Result<DeviceEntry, ApiError> {
        let token = headers
            .get(header::AUTHORIZATION)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.strip_prefix("Bearer "))
            .map(str::trim)
            .ok_or_else(|| {
                ApiError::unauthorized("set the device up first (tracecast device setup)")
            })?;
        let hash = token_hash(token);
        self.devices
            .lock()
            .map_err(|_| internal("lock".into()))?
            .iter()
            .find(|d| d.token_hash == hash)
            .cloned()
            .ok_or_else(|| {
                ApiError::unauthorized(
                    "this gateway does not know the device: run tracecast device setup again",
                )
            })
    }
}

fn internal(message: String) -> ApiError {
    tracing::error!(%message, "gateway failure");
    ApiError::new(StatusCode::INTERNAL_SERVER_ERROR, "internal", message)
}

/// A service server's refusal, told to the device.
fn relayed(e: ClientError, doing: &str) -> ApiError {
    match e {
        ClientError::Refused {
            status, message, ..
        } if status.is_client_error() => ApiError::new(
            StatusCode::from_u16(status.as_u16()).unwrap_or(StatusCode::FORBIDDEN),
            "service_refused",
            format!("the service server refused {doing}: {message}"),
        ),
        e => ApiError::new(
            StatusCode::BAD_GATEWAY,
            "service_unreachable",
            format!("{doing} failed at the service server: {e}; try again"),
        ),
    }
}

pub fn router(gateway: Arc<Gateway>) -> Router {
    Router::new()
        .route("/gateway/v1", get(info))
        .route("/gateway/v1/service-requests", post(request_service))
        .route(
            "/gateway/v1/service-requests/{id}/account",
            post(confirm_account),
        )
        .route("/gateway/v1/messages", post(send_message))
        .layer(axum::extract::DefaultBodyLimit::max(
            crate::budget::JSON_BODY,
        ))
        .with_state(gateway)
        .merge(crate::openapi::router(crate::openapi::RoleApi::Gateway))
}

/// `GET /gateway/v1`: which gateway this is.
#[derive(Debug, Serialize, Deserialize, utoipa::ToSchema)]
pub struct GatewayInfo {
    pub gateway: String,
    pub attachment_limit: u64,
    pub devices: usize,
}

/// Which gateway this is, its attachment limit and how many devices it
/// serves; anyone on the network may ask (devices find the gateway by
/// mDNS, `_tracecast-gw._tcp`).
#[utoipa::path(get, path = "/gateway/v1", tag = "gateway", security(()),
    responses((status = 200, description = "The gateway's name, attachment limit (bytes) and devices served.", body = GatewayInfo)))]
async fn info(State(g): State<Arc<Gateway>>) -> Json<GatewayInfo> {
    Json(GatewayInfo {
        gateway: g.config.name.clone(),
        attachment_limit: g.config.attachment_limit,
        devices: g.devices.lock().map(|d| d.len()).unwrap_or(0),
    })
}

/// Steps 2-4.
/// Most open offers one address may hold (the gateway keeps 64 in all).
const OFFERS_PER_ADDRESS: usize = 4;

/// A device on the local network asks for service (set-up steps 2-4; no
/// token: the device has none yet). The gateway checks its policy and
/// offers service, to confirm with the account within five minutes.
#[utoipa::path(post, path = "/gateway/v1/service-requests", tag = "gateway", security(()),
    request_body(content = ServiceRequest, description = "The device's account, model and hardware."),
    responses(
        (status = 200, description = "An offer: confirm it at `confirm` with the account and its set-up code, within five minutes.", body = ServiceOffer),
        (status = 400, description = "The body is not valid JSON.", body = ErrorBody),
        (status = 403, description = "The gateway's policy does not serve this device (its model, or the number of devices it serves).", body = ErrorBody),
        (status = 415, description = "The body is not `application/json`.", body = ErrorBody),
        (status = 422, description = "The body is JSON of the wrong shape.", body = ErrorBody),
        (status = 429, description = "This address holds too many open offers (Retry-After), or too many devices are being set up at once.", body = ErrorBody,
            headers(("Retry-After" = u64, description = "Seconds to wait (when one address asked too often)."))),
        (status = 500, description = "The gateway failed inside.", body = ErrorBody)))]
async fn request_service(
    State(g): State<Arc<Gateway>>,
    axum::extract::ConnectInfo(peer): axum::extract::ConnectInfo<std::net::SocketAddr>,
    body: Result<Json<ServiceRequest>, JsonRejection>,
) -> Result<Json<ServiceOffer>, ApiError> {
    let Json(r) = body?;
    let serving = g
        .devices
        .lock()
        .map_err(|_| internal("lock".into()))?
        .iter()
        .filter(|d| d.account != r.account.trim())
        .count();
    g.config.policy.check(&r, serving).map_err(|e| {
        tracing::info!(model = %r.model, reason = %e, "device refused");
        ApiError::new(StatusCode::FORBIDDEN, "not_served", e.to_string())
    })?;
    let id = random_id();
    {
        let mut offers = g.offers.lock().map_err(|_| internal("lock".into()))?;
        offers.retain(|_, (_, at, _)| at.elapsed() < OFFER_TTL);
        if offers
            .values()
            .filter(|(_, _, ip)| *ip == peer.ip())
            .count()
            >= OFFERS_PER_ADDRESS
        {
            return Err(ApiError::new(
                StatusCode::TOO_MANY_REQUESTS,
                "busy",
                "this device has asked for service too often; confirm an offer or wait five minutes",
            )
            .with_retry_after(60));
        }
        if offers.len() >= 64 {
            return Err(ApiError::new(
                StatusCode::TOO_MANY_REQUESTS,
                "busy",
                "too many devices are being set up; try again in a minute",
            )
            .with_retry_after(60));
        }
        offers.insert(id.clone(), (r.clone(), Instant::now(), peer.ip()));
    }
    Ok(Json(ServiceOffer {
        confirm: format!("/gateway/v1/service-requests/{id}/account"),
        request: id,
        gateway: g.config.name.clone(),
        message: format!(
            "{} may use the service through {}: send the account to switch it on",
            r.model.trim(),
            g.config.name
        ),
    }))
}

/// A device confirms an offer with its account and the account's set-up
/// code (set-up steps 5-9; no token: the offer's id is the reference). The
/// gateway checks the account's format, registers the device at the
/// service server, and gives the device its token for sending. The offer
/// is used up by this request, whatever its outcome.
#[utoipa::path(post, path = "/gateway/v1/service-requests/{id}/account", tag = "gateway", security(()),
    params(("id" = String, Path, description = "The offer's id (`request` in the offer).")),
    request_body(content = AccountConfirm, description = "The account (as in the request) and its set-up code."),
    responses(
        (status = 200, description = "The service is on: `token` authorises the device's sends through this gateway, shown only here.", body = ServiceOn),
        (status = 400, description = "The body is not valid JSON, the set-up code is missing or too long, or the account is not of the service's format \
            (or not the one asked for); or the service server refused the registration as malformed.", body = ErrorBody),
        (status = 403, description = "The service server refused the registration: no such account with this code, or the account is suspended.", body = ErrorBody),
        (status = 404, description = "No open offer with this id (used, or expired after five minutes): ask for service again.", body = ErrorBody),
        (status = 415, description = "The body is not `application/json`.", body = ErrorBody),
        (status = 422, description = "The body is JSON of the wrong shape.", body = ErrorBody),
        (status = 500, description = "The gateway failed inside (saving its devices).", body = ErrorBody),
        (status = 502, description = "The service server could not be reached, or failed; try again.", body = ErrorBody)))]
async fn confirm_account(
    State(g): State<Arc<Gateway>>,
    Path(id): Path<String>,
    body: Result<Json<AccountConfirm>, JsonRejection>,
) -> Result<Json<ServiceOn>, ApiError> {
    let Json(confirm) = body?;
    let offer = g
        .offers
        .lock()
        .map_err(|_| internal("lock".into()))?
        .remove(&id)
        .filter(|(_, at, _)| at.elapsed() < OFFER_TTL)
        .map(|(r, _, _)| r)
        .ok_or_else(|| {
            ApiError::new(
                StatusCode::NOT_FOUND,
                "no_offer",
                "no service offer with this id (expired after 5 minutes?): ask for service again",
            )
        })?;
    if confirm.code.trim().is_empty() || confirm.code.len() > tracecast_share::gateway::MAX_CODE {
        return Err(ApiError::new(
            StatusCode::BAD_REQUEST,
            "no_code",
            "send the account's set-up code with it (the code issued with the account)",
        ));
    }
    // Step 6: only an id of the service's format goes further.
    let account = check_account(&offer.account, &confirm.account).map_err(|e| {
        tracing::info!(reason = %e, "malformed account refused at the gateway");
        ApiError::new(
            StatusCode::BAD_REQUEST,
            "account_format",
            format!("{e}; the gateway did not contact the service server"),
        )
    })?;
    let account = account.to_string();
    // Steps 7-8.
    let registered = g
        .service
        .register(&Registration {
            account: account.clone(),
            model: offer.model.trim().to_owned(),
            hardware: offer.hardware.trim().to_owned(),
            code: confirm.code.trim().to_owned(),
        })
        .await
        .map_err(|e| relayed(e, "the device's registration"))?;
    // Step 9. Only now, with the service's word that the code proves the
    // account, does a device of this account replace an earlier one.
    let token = new_token();
    {
        let mut devices = g.devices.lock().map_err(|_| internal("lock".into()))?;
        devices.retain(|d| d.account != account);
        devices.push(DeviceEntry {
            token_hash: token_hash(&token),
            account: account.clone(),
            model: offer.model.trim().to_owned(),
            hardware: offer.hardware.trim().to_owned(),
            registered_at: registered.registered_at,
        });
        g.save_devices(&devices)?;
    }
    tracing::info!(%account, model = %offer.model, "device set up");
    Ok(Json(ServiceOn {
        account,
        gateway: g.config.name.clone(),
        token,
        attachment_limit: g.config.attachment_limit,
        message: format!(
            "the service is on: share through {} ({} as {})",
            g.config.name, offer.model, registered.label
        ),
    }))
}

#[derive(Debug, Deserialize)]
struct SendQuery {
    filename: Option<String>,
    to: Option<String>,
    text: Option<String>,
}

/// Removes a file in transit when the request ends, whatever happened.
struct InTransit(PathBuf);

impl Drop for InTransit {
    fn drop(&mut self) {
        let _ = std::fs::remove_file(&self.0);
    }
}

/// Shares content from a set-up device (its token from the gateway, as
/// `Authorization: Bearer <token>`): the gateway's user composes the
/// message (recipient and text; the device's suggestions are offered),
/// content over the attachment limit goes to the service server by tus and
/// travels as a signed link, and the message goes to the recipient's
/// mailbox.
#[utoipa::path(post, path = "/gateway/v1/messages", tag = "gateway", security(("bearer" = [])),
    params(
        ("filename" = Option<String>, Query, description = "The content's file name."),
        ("to" = Option<String>, Query, description = "The suggested recipient: a phone number or a user's name."),
        ("text" = Option<String>, Query, description = "The suggested message text.")),
    request_body(content = Vec<u8>, content_type = "application/octet-stream",
        description = "The content; its Content-Type is the content's media type."),
    responses(
        (status = 200, description = "The message is in the recipient's mailbox.", body = SendReceipt),
        (status = 400, description = "The content broke off, or the recipient is neither a phone number nor a user's name, or names no valid mailbox; \
            or the service server or mailbox refused a request as malformed.", body = ErrorBody),
        (status = 401, description = "No device token, or one this gateway does not know: set the device up again.", body = ErrorBody),
        (status = 403, description = "The service server or the mailbox refused the gateway (relayed).", body = ErrorBody),
        (status = 404, description = "No mailbox has the recipient's number, or the recipient's mailbox does not exist (relayed).", body = ErrorBody),
        (status = 413, description = "The content is over the gateway's largest; or the mailbox or service server refused it as too large (relayed).", body = ErrorBody),
        (status = 422, description = "The message was not sent: the gateway's user cancelled, or gave no recipient.", body = ErrorBody),
        (status = 500, description = "The gateway failed inside (spooling the content, the compose prompt).", body = ErrorBody),
        (status = 502, description = "The service server or the mailbox could not be reached, or failed; try again.", body = ErrorBody)))]
async fn send_message(
    State(g): State<Arc<Gateway>>,
    Query(q): Query<SendQuery>,
    headers: HeaderMap,
    body: Body,
) -> Result<Json<SendReceipt>, ApiError> {
    let device = g.device(&headers)?;
    let media_type = headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .filter(|t| t.contains('/'))
        .unwrap_or("application/octet-stream")
        .to_owned();
    let filename = message::safe_filename(q.filename.as_deref().unwrap_or_default());
    let id = random_id();
    let spool = InTransit(
        g.config
            .state_dir
            .join("outgoing")
            .join(format!("{id}.bin")),
    );
    let mut file = tokio::fs::File::create(&spool.0)
        .await
        .map_err(|e| internal(format!("spooling the content: {e}")))?;
    let mut bytes = 0u64;
    let mut stream = body.into_data_stream();
    while let Some(chunk) = stream.next().await {
        let chunk = chunk.map_err(|_| {
            ApiError::bad_request("the content broke off before its end; send it again")
        })?;
        bytes += chunk.len() as u64;
        if bytes > g.config.max_content_bytes {
            return Err(ApiError::new(
                StatusCode::PAYLOAD_TOO_LARGE,
                "too_large",
                format!(
                    "this gateway relays at most {} bytes",
                    g.config.max_content_bytes
                ),
            ));
        }
        file.write_all(&chunk)
            .await
            .map_err(|e| internal(format!("spooling the content: {e}")))?;
    }
    file.sync_all()
        .await
        .map_err(|e| internal(format!("spooling the content: {e}")))?;
    drop(file);
    // The limit is on the message as it travels: an attachment is base64,
    // a third larger than the content (checked again on the message made).
    let mut as_link = message::attached_len(bytes) > g.config.attachment_limit;
    let ask = ComposeAsk {
        device: format!("{} ({})", device.account, device.model),
        filename: filename.clone(),
        media_type: media_type.clone(),
        bytes,
        as_link,
        suggested_to: q.to.clone(),
        suggested_text: q.text.clone(),
    };
    // The compose prompt: one at a time, on the blocking pool.
    let composed = {
        let _one = g.compose_one.lock().await;
        let composer = g.composer.clone();
        let ask = ask.clone();
        tokio::task::spawn_blocking(move || composer.compose(&ask))
            .await
            .map_err(|e| internal(format!("the compose prompt failed: {e}")))?
    }
    .map_err(|why| {
        ApiError::new(
            StatusCode::UNPROCESSABLE_ENTITY,
            "not_sent",
            format!("the message was not sent: {why}"),
        )
    })?;
    let recipient_box = resolve(&g, &composed.recipient).await?;
    // The content travels attached, or as a link to its upload.
    enum Carried {
        Attached(Vec<u8>),
        Linked(tracecast_share::gateway::LinkAnswer),
    }
    let (raw, link) = loop {
        let carried = if as_link {
            let uploaded = g
                .service
                .upload_file(&spool.0, &filename, &media_type, 20, &|_| {})
                .await
                .map_err(|e| relayed(e, "the upload"))?;
            let link = g
                .service
                .link(&uploaded.url, g.config.link_valid_for)
                .await
                .map_err(|e| relayed(e, "the download link"))?;
            tracing::info!(
                bytes,
                resumed = uploaded.resumed,
                "content uploaded; sending a link"
            );
            Carried::Linked(link)
        } else {
            Carried::Attached(
                tokio::fs::read(&spool.0)
                    .await
                    .map_err(|e| internal(format!("reading the content: {e}")))?,
            )
        };
        let raw = message::compose(&Outgoing {
            gateway: &g.config.name,
            device: &ask.device,
            recipient: &composed.recipient,
            recipient_box: recipient_box.as_str(),
            text: &composed.text,
            filename: &filename,
            media_type: &media_type,
            content: match &carried {
                Carried::Attached(bytes) => Content::Attachment(bytes),
                Carried::Linked(l) => Content::Link {
                    url: &l.url,
                    expires: l.expires,
                    length: bytes,
                },
            },
            date: tracecast_store::now_ms() / 1000,
            message_id: &id,
        });
        match carried {
            // The headers and the text took it over the limit: a link.
            Carried::Attached(_) if raw.len() as u64 > g.config.attachment_limit => {
                as_link = true;
            }
            Carried::Attached(_) => break (raw, None),
            Carried::Linked(l) => break (raw, Some(l.url)),
        }
    };
    let posted = g
        .mailbox
        .post(
            &recipient_box,
            message::MESSAGE_MEDIA_TYPE,
            raw,
            &PostOptions {
                idempotency_key: Some(format!("share-{id}")),
                ..Default::default()
            },
        )
        .await
        .map_err(|e| relayed(e, "posting the message"))?;
    tracing::info!(to = %recipient_box, bytes, link = link.is_some(), "message sent");
    Ok(Json(SendReceipt {
        message: posted.id.to_string(),
        recipient: composed.recipient,
        recipient_box: recipient_box.to_string(),
        bytes,
        carried_as: if link.is_some() { "link" } else { "attachment" }.into(),
        link,
    }))
}

/// The recipient's mailbox: a number through the service's directory, a
/// name as a user's box.
async fn resolve(g: &Gateway, typed: &str) -> Result<BoxName, ApiError> {
    let box_name = match Recipient::parse(typed) {
        Some(Recipient::Number(n)) => g
            .service
            .number(&n)
            .await
            .map_err(|e| relayed(e, "the recipient's number"))?,
        Some(Recipient::Name(n)) => format!("user:{n}"),
        None => {
            return Err(ApiError::bad_request(format!(
                "{typed:?} is neither a phone number nor a user's name"
            )))
        }
    };
    box_name
        .parse()
        .map_err(|_| ApiError::bad_request(format!("{box_name:?} is not a mailbox")))
}

/// A gateway's mDNS advertisement; dropping it withdraws it.
pub struct Advertisement {
    daemon: mdns_sd::ServiceDaemon,
    fullname: String,
}

impl Drop for Advertisement {
    fn drop(&mut self) {
        let _ = self.daemon.unregister(&self.fullname);
        let _ = self.daemon.shutdown();
    }
}

/// Advertises the gateway as `_tracecast-gw._tcp` on `addrs` (all
/// interfaces' addresses when empty), loopback included when asked (tests
/// and one-machine set-ups).
pub fn advertise(
    name: &str,
    port: u16,
    addrs: &[IpAddr],
    loopback: bool,
) -> Result<Advertisement, GatewayError> {
    let err = |e: mdns_sd::Error| GatewayError::Mdns(e.to_string());
    let daemon = mdns_sd::ServiceDaemon::new().map_err(err)?;
    if loopback {
        daemon
            .enable_interface(mdns_sd::IfKind::LoopbackV4)
            .map_err(err)?;
    }
    let instance: String = name
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || c == '-' {
                c
            } else {
                '-'
            }
        })
        .collect();
    let host = format!("{instance}.local.");
    let props = [("path", "/gateway/v1"), ("name", name)];
    let info = if addrs.is_empty() {
        mdns_sd::ServiceInfo::new(MDNS_SERVICE_TYPE, &instance, &host, "", port, &props[..])
            .map_err(err)?
            .enable_addr_auto()
    } else {
        mdns_sd::ServiceInfo::new(MDNS_SERVICE_TYPE, &instance, &host, addrs, port, &props[..])
            .map_err(err)?
    };
    let fullname = info.get_fullname().to_owned();
    daemon.register(info).map_err(err)?;
    Ok(Advertisement { daemon, fullname })
}

/// A gateway found on the local network.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Found {
    pub name: String,
    pub url: String,
}

/// Looks for gateways for up to `wait` (less once one answered: half a
/// second more for others); at most one entry per gateway.
pub fn discover(wait: Duration, loopback: bool) -> Result<Vec<Found>, GatewayError> {
    let err = |e: mdns_sd::Error| GatewayError::Mdns(e.to_string());
    let daemon = mdns_sd::ServiceDaemon::new().map_err(err)?;
    if loopback {
        daemon
            .enable_interface(mdns_sd::IfKind::LoopbackV4)
            .map_err(err)?;
    }
    let events = daemon.browse(MDNS_SERVICE_TYPE).map_err(err)?;
    let mut deadline = Instant::now() + wait;
    let mut found: Vec<Found> = Vec::new();
    while let Some(left) = deadline.checked_duration_since(Instant::now()) {
        let Ok(event) = events.recv_timeout(left) else {
            break;
        };
        let mdns_sd::ServiceEvent::ServiceResolved(info) = event else {
            continue;
        };
        let name = info
            .get_property_val_str("name")
            .unwrap_or(info.get_fullname())
            .to_owned();
        // An IPv4 address first; loopback only when asked for.
        let mut addrs: Vec<IpAddr> = info
            .get_addresses()
            .iter()
            .copied()
            .filter(|a| loopback || !a.is_loopback())
            .collect();
        addrs.sort_by_key(|a| !a.is_ipv4());
        let Some(addr) = addrs.first() else {
            continue;
        };
        let host = match addr {
            IpAddr::V4(a) => a.to_string(),
            IpAddr::V6(a) => format!("[{a}]"),
        };
        if !found.iter().any(|f| f.name == name) {
            found.push(Found {
                name,
                url: format!("http://{host}:{}", info.get_port()),
            });
            deadline = deadline.min(Instant::now() + Duration::from_millis(500));
        }
    }
    let _ = daemon.shutdown();
    Ok(found)
}

/// The compose prompt at the gateway's terminal: what the device sent,
/// then the recipient and the text, one line each (the device's
/// suggestions in brackets are taken on an empty line).
pub struct TerminalComposer;

fn ask_line(prompt: &str) -> Result<Option<String>, String> {
    use std::io::{BufRead as _, Write as _};
    eprint!("{prompt}");
    let _ = std::io::stderr().flush();
    let mut line = String::new();
    match std::io::stdin().lock().read_line(&mut line) {
        Ok(0) => Ok(None),
        Ok(_) => Ok(Some(line.trim_end_matches(['\r', '\n']).to_owned())),
        Err(e) => Err(format!("reading the terminal: {e}")),
    }
}

impl Composer for TerminalComposer {
    fn compose(&self, ask: &ComposeAsk) -> Result<Composed, String> {
        eprintln!(
            "\n── {} wants to share {} ({} bytes, {}){}",
            ask.device,
            ask.filename,
            ask.bytes,
            ask.media_type,
            if ask.as_link {
                ": over the attachment limit, it will travel as a download link"
            } else {
                ""
            }
        );
        let hint = |s: &Option<String>| s.as_ref().map(|v| format!(" [{v}]")).unwrap_or_default();
        let to = ask_line(&format!(
            "To (a number or a user's name; empty line: the suggestion; '-' cancels){}: ",
            hint(&ask.suggested_to)
        ))?
        .ok_or("no one answered at the gateway's terminal")?;
        let to = match to.trim() {
            "-" => return Err("cancelled at the gateway".into()),
            "" => ask.suggested_to.clone().ok_or("no recipient was given")?,
            t => t.to_owned(),
        };
        let text = ask_line(&format!("Message{}: ", hint(&ask.suggested_text)))?
            .ok_or("no one answered at the gateway's terminal")?;
        let text = match text.trim() {
            "-" => return Err("cancelled at the gateway".into()),
            "" => ask.suggested_text.clone().unwrap_or_default(),
            _ => text,
        };
        Ok(Composed {
            recipient: to,
            text,
        })
    }
}

/// The gateway role's contract (`/openapi/gateway.json`, docs/openapi/gateway.json).
#[derive(utoipa::OpenApi)]
#[openapi(
    info(description = "A phone gateway (DESIGN.md \"000\") between devices on its local network and the service server, \
        advertised by mDNS (`_tracecast-gw._tcp`). A device asks for service and confirms the offer with its account and \
        the account's set-up code (no token: the gateway registers it at the service server and answers the device's token); \
        then it shares content with that token (`Authorization: Bearer <device token>`, a token of this gateway's, not an account's). \
        Errors are JSON `{\"error\": code, \"message\": text}`; refusals of the service server or mailbox are relayed with their status."),
    paths(info, request_service, confirm_account, send_message),
    tags((name = "gateway", description = "Setting devices up and relaying what they share"))
)]
pub struct Api;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_preset_composer_takes_flags_then_the_devices_suggestion() {
        let ask = ComposeAsk {
            device: "TCA-0000-0000-0018 (cam)".into(),
            filename: "a.jpg".into(),
            media_type: "image/jpeg".into(),
            bytes: 10,
            as_link: false,
            suggested_to: Some("bob".into()),
            suggested_text: Some("hi".into()),
        };
        let flags = PresetComposer {
            to: Some("+15550100".into()),
            text: None,
        };
        assert_eq!(
            flags.compose(&ask).unwrap(),
            Composed {
                recipient: "+15550100".into(),
                text: "hi".into()
            }
        );
        let none = PresetComposer::default();
        assert_eq!(none.compose(&ask).unwrap().recipient, "bob");
        let bare = ComposeAsk {
            suggested_to: None,
            ..ask
        };
        assert!(none.compose(&bare).is_err());
    }
}
