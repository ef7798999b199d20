//! The origin role (content server, DESIGN.md "001" steps 1-4 and 8):
//! accounts, ingest into renditions, the catalog, the edge registry with
//! what each edge holds, designation and purchase tickets, pre-positioning,
//! the consumer of edges' delivery reports (ledger postings and the user's
//! bill), and tracing a leaked file back to its delivery.

mod ingest;
mod reports;
mod trace;

use std::collections::HashMap;
use std::sync::{Arc, RwLock};

use axum::body::Bytes;
use axum::extract::rejection::{BytesRejection, JsonRejection};
use axum::extract::{DefaultBodyLimit, Path, State};
use axum::http::{header, HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use ed25519_dalek::SigningKey;
use tokio::sync::Semaphore;
use tracecast_delivery::api::{
    AccountInfo, ContentInfo, EdgeState, NewAccount, OriginInfo, PrePositionRequest, Purchase,
    PurchaseRequest, RenditionInfo,
};
use tracecast_delivery::{designate, ContentKind, EdgeView, PrePosition, Ticket, Tier};
use tracecast_mailbox::BoxName;
use tracecast_mark::MarkKey;
use tracecast_store::{Account, AccountKind, Blobs, ContentRecord, NewDelivery, Principal, Store};

use crate::auth::{new_token, token_hash, Authenticator};
use crate::mailbox::Mailbox;
use crate::ApiError;

/// The box edges send delivery reports to.
pub const REPORTS_BOX: &str = "role:origin-reports";

/// Settings of the origin role.
#[derive(Debug, Clone)]
pub struct OriginConfig {
    /// How long a purchase ticket is good for.
    pub ticket_ttl_secs: i64,
    /// An edge is alive while its last state report is younger than this.
    pub edge_alive_ms: i64,
    /// Deliveries designated within this window count as an edge's load.
    pub load_window_ms: i64,
    /// Largest upload accepted for ingest.
    pub max_upload_bytes: usize,
    pub currency: String,
    pub default_terms: String,
    /// Ingests and traces running at once (each takes a core).
    pub workers: usize,
}

impl Default for OriginConfig {
    fn default() -> Self {
        Self {
            ticket_ttl_secs: 600,
            edge_alive_ms: 15_000,
            load_window_ms: 600_000,
            max_upload_bytes: 1 << 30,
            currency: "EUR".into(),
            default_terms: "personal use only; no redistribution".into(),
            workers: std::thread::available_parallelism().map_or(2, |n| n.get()),
        }
    }
}

/// The running origin.
pub struct Origin {
    store: Store,
    blobs: Blobs,
    mailbox: Arc<Mailbox>,
    auth: Authenticator,
    signing: SigningKey,
    mark_key: MarkKey,
    config: OriginConfig,
    reports_box: i64,
    work: Semaphore,
    accounts: RwLock<HashMap<i64, Account>>,
}

impl std::fmt::Debug for Origin {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // Never the keys.
        f.debug_struct("Origin")
            .field("blobs", &self.blobs)
            .finish()
    }
}

/// Who is calling.
#[derive(Debug, Clone)]
enum Caller {
    Admin,
    Account(Account),
}

impl Caller {
    fn expect(&self, kind: AccountKind) -> Result<&Account, ApiError> {
        match self {
            Caller::Account(a) if a.kind == kind => Ok(a),
            _ => Err(ApiError::forbidden(format!(
                "this needs a {} token",
                kind.as_str()
            ))),
        }
    }
}

impl Origin {
    /// Starts the origin: makes sure its reports box exists and starts the
    /// consumer of delivery reports.
    pub async fn start(
        store: Store,
        blobs: Blobs,
        mailbox: Arc<Mailbox>,
        signing: SigningKey,
        mark_key: MarkKey,
        config: OriginConfig,
    ) -> Result<Arc<Self>, tracecast_store::StoreError> {
        let name: BoxName = REPORTS_BOX.parse().expect("a valid box name");
        let reports_box = match store.box_by_name(&name).await {
            Ok(b) => b.id,
            // Nobody outside reads this box, so its token is thrown away.
            Err(tracecast_store::StoreError::UnknownBox(_)) => {
                store
                    .create_box(&name, None, None, token_hash(&new_token()))
                    .await?
                    .id
            }
            Err(e) => return Err(e),
        };
        let workers = config.workers.max(1);
        let origin = Arc::new(Self {
            store,
            blobs,
            mailbox,
            auth: Authenticator::default(),
            signing,
            mark_key,
            config,
            reports_box,
            work: Semaphore::new(workers),
            accounts: RwLock::default(),
        });
        tokio::spawn(reports::consume(origin.clone()));
        Ok(origin)
    }

    pub fn store(&self) -> &Store {
        &self.store
    }

    /// The identity of an edge account, for an edge run in this process.
    pub fn local_edge(&self, account: &Account) -> Option<crate::edge::EdgeIdentity> {
        (account.kind == AccountKind::Edge).then(|| crate::edge::EdgeIdentity {
            id: u16::try_from(account.id).unwrap_or(u16::MAX),
            name: account.name.clone(),
            origin_key: self.signing.verifying_key(),
            reports_box: REPORTS_BOX.parse().expect("a valid box name"),
            own_box: format!("edge:{}", account.name)
                .parse()
                .expect("a valid box name"),
        })
    }

    async fn caller(&self, headers: &HeaderMap) -> Result<Caller, ApiError> {
        match self.auth.principal(&self.store, headers).await? {
            Principal::Admin => Ok(Caller::Admin),
            Principal::Box { id, name } => {
                if let Some(a) = self.accounts.read().ok().and_then(|m| m.get(&id).cloned()) {
                    return Ok(Caller::Account(a));
                }
                let account = self.store.account_by_box(id).await?.ok_or_else(|| {
                    ApiError::forbidden(format!(
                        "the token of box {name} is a mailbox token, not an account's"
                    ))
                })?;
                if let Ok(mut m) = self.accounts.write() {
                    m.insert(id, account.clone());
                }
                Ok(Caller::Account(account))
            }
        }
    }

    async fn content_info(&self, c: &ContentRecord) -> Result<ContentInfo, ApiError> {
        let mut renditions: Vec<RenditionInfo> = self
            .store
            .renditions(c.id)
            .await?
            .into_iter()
            .filter_map(|r| {
                Some(RenditionInfo {
                    tier: r.tier.parse().ok()?,
                    bytes: r.bytes as u64,
                    sha256: r.sha256,
                    media_type: r.media_type,
                })
            })
            .collect();
        renditions.sort_by_key(|r| r.tier);
        Ok(ContentInfo {
            id: c.id,
            title: c.title.clone(),
            kind: c.kind.clone(),
            provider: c.provider.clone(),
            provider_id: c.provider_id,
            price_cents: c.price_cents,
            terms: c.terms.clone(),
            source_sha256: c.source_sha256.clone(),
            renditions,
            existing: false,
        })
    }

    async fn content_or_404(&self, id: i64) -> Result<ContentRecord, ApiError> {
        self.store.content(id).await?.ok_or_else(|| {
            ApiError::new(
                StatusCode::NOT_FOUND,
                "unknown_content",
                format!("no content {id}"),
            )
        })
    }
}

/// The origin's routes under `/v1` (beside the mailbox's).
pub fn router(origin: Arc<Origin>) -> Router {
    let upload = origin.config.max_upload_bytes;
    Router::new()
        .route("/v1/origin", get(origin_info))
        .route("/v1/account", get(account))
        .route("/v1/accounts", post(add_account))
        .route(
            "/v1/contents",
            get(contents)
                .post(ingest::add_content)
                .layer(DefaultBodyLimit::max(upload)),
        )
        .route("/v1/contents/{id}", get(content))
        .route("/v1/contents/{id}/renditions/{tier}", get(rendition))
        .route("/v1/contents/{id}/pre-position", post(pre_position))
        .route("/v1/purchases", post(purchase))
        .route("/v1/edges", get(edges))
        .route("/v1/edges/state", post(edge_state))
        .route("/v1/deliveries/{id}", get(delivery))
        .route(
            "/v1/trace",
            post(trace::trace).layer(DefaultBodyLimit::max(upload)),
        )
        .with_state(origin)
}

fn json_body<T>(body: Result<Json<T>, JsonRejection>) -> Result<T, ApiError> {
    body.map(|Json(v)| v)
        .map_err(|e| ApiError::new(e.status(), "bad_body", e.body_text()))
}

fn now_secs() -> i64 {
    tracecast_store::now_ms() / 1000
}

async fn origin_info(State(o): State<Arc<Origin>>) -> Json<OriginInfo> {
    Json(OriginInfo {
        ticket_key: hex::encode(o.signing.verifying_key().to_bytes()),
        reports_box: REPORTS_BOX.into(),
        currency: o.config.currency.clone(),
    })
}

fn account_info(a: &Account, token: Option<String>) -> AccountInfo {
    AccountInfo {
        kind: a.kind.as_str().into(),
        id: a.id,
        name: a.name.clone(),
        box_name: format!("{}:{}", a.kind.as_str(), a.name),
        token,
    }
}

async fn account(
    State(o): State<Arc<Origin>>,
    headers: HeaderMap,
) -> Result<Json<AccountInfo>, ApiError> {
    match o.caller(&headers).await? {
        Caller::Account(a) => Ok(Json(account_info(&a, None))),
        Caller::Admin => Err(ApiError::bad_request(
            "an administrator token belongs to no account",
        )),
    }
}

async fn add_account(
    State(o): State<Arc<Origin>>,
    headers: HeaderMap,
    body: Result<Json<NewAccount>, JsonRejection>,
) -> Result<Response, ApiError> {
    if !matches!(o.caller(&headers).await?, Caller::Admin) {
        return Err(ApiError::forbidden("only an administrator adds accounts"));
    }
    let new = json_body(body)?;
    let kind = match new.kind.as_str() {
        "provider" => AccountKind::Provider,
        "user" => AccountKind::User,
        "edge" => AccountKind::Edge,
        other => {
            return Err(ApiError::bad_request(format!(
                "unknown account kind {other:?}: provider, user or edge"
            )))
        }
    };
    let edge = if kind == AccountKind::Edge {
        let address = new
            .address
            .as_deref()
            .filter(|a| a.starts_with("http://") || a.starts_with("https://"))
            .ok_or_else(|| {
                ApiError::bad_request("an edge needs an address like http://host:port/edge")
            })?;
        let fee = new.fee_cents.unwrap_or(0);
        if fee < 0 {
            return Err(ApiError::bad_request("an edge's fee cannot be negative"));
        }
        Some((
            address.trim_end_matches('/'),
            new.operator.as_deref().unwrap_or(&new.name),
            fee,
        ))
    } else {
        None
    };
    let token = new_token();
    let account = o
        .store
        .add_account(kind, &new.name, token_hash(&token), edge)
        .await?;
    tracing::info!(kind = kind.as_str(), id = account.id, name = %account.name, "account added");
    Ok((
        StatusCode::CREATED,
        Json(account_info(&account, Some(token))),
    )
        .into_response())
}

async fn contents(
    State(o): State<Arc<Origin>>,
    headers: HeaderMap,
) -> Result<Json<Vec<ContentInfo>>, ApiError> {
    o.caller(&headers).await?;
    let mut out = Vec::new();
    for c in o.store.contents().await? {
        out.push(o.content_info(&c).await?);
    }
    Ok(Json(out))
}

fn parse_id(s: &str, what: &str) -> Result<i64, ApiError> {
    s.parse::<i64>()
        .ok()
        .filter(|v| *v > 0)
        .ok_or_else(|| ApiError::bad_request(format!("{s:?} is not a {what} id")))
}

async fn content(
    State(o): State<Arc<Origin>>,
    headers: HeaderMap,
    Path(id): Path<String>,
) -> Result<Json<ContentInfo>, ApiError> {
    o.caller(&headers).await?;
    let c = o.content_or_404(parse_id(&id, "content")?).await?;
    Ok(Json(o.content_info(&c).await?))
}

/// A rendition's bytes, for edges (and administrators).
async fn rendition(
    State(o): State<Arc<Origin>>,
    headers: HeaderMap,
    Path((id, tier)): Path<(String, String)>,
) -> Result<Response, ApiError> {
    match o.caller(&headers).await? {
        Caller::Admin => {}
        Caller::Account(a) if a.kind == AccountKind::Edge => {}
        _ => return Err(ApiError::forbidden("renditions are served to edges only")),
    }
    let id = parse_id(&id, "content")?;
    let tier: Tier = tier.parse().map_err(ApiError::bad_request)?;
    let r = o
        .store
        .renditions(id)
        .await?
        .into_iter()
        .find(|r| r.tier == tier.as_str())
        .ok_or_else(|| {
            ApiError::new(
                StatusCode::NOT_FOUND,
                "unknown_rendition",
                format!("content {id} has no {tier} rendition"),
            )
        })?;
    let (size, stream) = o.blobs.get_stream(&r.blob_key).await.map_err(blob_error)?;
    Ok((
        [
            (header::CONTENT_TYPE, r.media_type),
            (header::CONTENT_LENGTH, size.to_string()),
            (
                header::HeaderName::from_static(tracecast_client::SHA256_HEADER),
                r.sha256,
            ),
        ],
        axum::body::Body::from_stream(stream),
    )
        .into_response())
}

pub(super) fn blob_error(e: tracecast_store::BlobError) -> ApiError {
    tracing::error!(error = %e, "blob store failed");
    ApiError::new(
        StatusCode::SERVICE_UNAVAILABLE,
        "blob_store",
        "the object store is unavailable; nothing was changed, retry later",
    )
}

async fn pre_position(
    State(o): State<Arc<Origin>>,
    headers: HeaderMap,
    Path(id): Path<String>,
    body: Result<Json<PrePositionRequest>, JsonRejection>,
) -> Result<Json<Vec<i64>>, ApiError> {
    let caller = o.caller(&headers).await?;
    let c = o.content_or_404(parse_id(&id, "content")?).await?;
    match &caller {
        Caller::Admin => {}
        Caller::Account(a) if a.kind == AccountKind::Provider && a.id == c.provider_id => {}
        _ => {
            return Err(ApiError::forbidden(
                "only the content's provider positions it on edges",
            ))
        }
    }
    let req = json_body(body)?;
    let kind: ContentKind = c.kind.parse().map_err(ApiError::bad_request)?;
    let tier = req.tier.unwrap_or(kind.default_tier());
    if tier.kind() != kind {
        return Err(ApiError::bad_request(format!(
            "a {} has no {tier} tier",
            c.kind
        )));
    }
    let edges = o.store.edges().await?;
    let chosen: Vec<_> = edges
        .into_iter()
        .filter(|e| req.edges.is_empty() || req.edges.contains(&e.id))
        .collect();
    if chosen.is_empty() {
        return Err(ApiError::bad_request("no such edge is registered"));
    }
    let order = serde_json::to_vec(&PrePosition {
        content: c.id,
        tier,
    })
    .expect("serialises");
    let mut told = Vec::new();
    for e in chosen {
        let Some(acct) = o.store.account(AccountKind::Edge, e.id).await? else {
            continue;
        };
        o.mailbox
            .send(
                acct.box_id,
                PrePosition::MEDIA_TYPE,
                order.clone(),
                "origin",
                Some(format!("pre-position-{}-{tier}-{}", c.id, now_secs() / 60)),
            )
            .await?;
        told.push(e.id);
    }
    tracing::info!(content = c.id, %tier, edges = ?told, "pre-position ordered");
    Ok(Json(told))
}

async fn purchase(
    State(o): State<Arc<Origin>>,
    headers: HeaderMap,
    body: Result<Json<PurchaseRequest>, JsonRejection>,
) -> Result<Response, ApiError> {
    let caller = o.caller(&headers).await?;
    let user = caller.expect(AccountKind::User)?;
    let req = json_body(body)?;
    let c = o.content_or_404(req.content).await?;
    let kind: ContentKind = c.kind.parse().map_err(ApiError::bad_request)?;
    let tier = req.tier.unwrap_or(kind.default_tier());
    if tier.kind() != kind {
        return Err(ApiError::bad_request(format!(
            "content {} is {}: its tiers are {}",
            c.id,
            c.kind,
            kind.tiers()
                .iter()
                .map(|t| t.as_str())
                .collect::<Vec<_>>()
                .join(", ")
        )));
    }
    let now = tracecast_store::now_ms();
    let loads = o
        .store
        .edge_loads(c.id, tier.as_str(), now - o.config.load_window_ms)
        .await?;
    let views: Vec<EdgeView> = loads
        .iter()
        .map(|l| EdgeView {
            id: l.edge.id,
            alive: l
                .edge
                .last_seen
                .is_some_and(|t| t > now - o.config.edge_alive_ms),
            holds: l.holds,
            load: l.load.max(0) as u64,
        })
        .collect();
    let chosen = designate(&views, &req.avoid).ok_or_else(|| {
        ApiError::new(
            StatusCode::SERVICE_UNAVAILABLE,
            "no_edge",
            "no edge is available to deliver this now; try again shortly",
        )
    })?;
    let edge = loads
        .into_iter()
        .find(|l| l.edge.id == chosen)
        .expect("designated from the list");
    let price = if tier.is_paid() { c.price_cents } else { 0 };
    let d = o
        .store
        .open_delivery(&NewDelivery {
            content_id: c.id,
            tier: tier.as_str().into(),
            user_id: user.id,
            provider_id: c.provider_id,
            edge_id: edge.edge.id,
            price_cents: price,
            edge_fee_cents: edge.edge.fee_cents,
        })
        .await?;
    let expires = now / 1000 + o.config.ticket_ttl_secs;
    let ticket = Ticket {
        delivery: d.id,
        content: c.id,
        tier,
        user: u32::try_from(user.id)
            .map_err(|_| ApiError::bad_request("user id out of the mark's range"))?,
        content_server: u16::try_from(c.provider_id)
            .map_err(|_| ApiError::bad_request("provider id out of range"))?,
        edge: u16::try_from(edge.edge.id)
            .map_err(|_| ApiError::bad_request("edge id out of range"))?,
        expires,
    }
    .sign(&o.signing);
    tracing::info!(
        delivery = d.id, content = c.id, %tier, user = %user.name, edge = %edge.edge.name,
        holds = edge.holds, "designated"
    );
    Ok((
        StatusCode::CREATED,
        Json(Purchase {
            delivery: d.id,
            content: c.id,
            tier,
            price_cents: price,
            edge_id: edge.edge.id,
            edge_name: edge.edge.name,
            edge_address: edge.edge.address,
            edge_holds: edge.holds,
            ticket,
            ticket_expires: expires,
        }),
    )
        .into_response())
}

async fn edges(State(o): State<Arc<Origin>>, headers: HeaderMap) -> Result<Response, ApiError> {
    if !matches!(
        o.caller(&headers).await?,
        Caller::Admin
            | Caller::Account(Account {
                kind: AccountKind::Provider,
                ..
            })
    ) {
        return Err(ApiError::forbidden(
            "the edge registry is for administrators and providers",
        ));
    }
    Ok(Json(o.store.edges().await?).into_response())
}

async fn edge_state(
    State(o): State<Arc<Origin>>,
    headers: HeaderMap,
    body: Result<Json<EdgeState>, JsonRejection>,
) -> Result<StatusCode, ApiError> {
    let caller = o.caller(&headers).await?;
    let edge = caller.expect(AccountKind::Edge)?;
    let state = json_body(body)?;
    if state.holdings.len() > 100_000 {
        return Err(ApiError::bad_request("too many holdings in one report"));
    }
    let holdings: Vec<(i64, String)> = state
        .holdings
        .iter()
        .map(|h| (h.content, h.tier.as_str().to_owned()))
        .collect();
    o.store
        .set_edge_state(
            edge.id,
            &holdings,
            state.in_flight.max(0),
            tracecast_store::now_ms(),
        )
        .await?;
    Ok(StatusCode::NO_CONTENT)
}

async fn delivery(
    State(o): State<Arc<Origin>>,
    headers: HeaderMap,
    Path(id): Path<String>,
) -> Result<Response, ApiError> {
    let caller = o.caller(&headers).await?;
    let id = parse_id(&id, "delivery")?;
    let d = o.store.delivery(id).await?.ok_or_else(|| {
        ApiError::new(
            StatusCode::NOT_FOUND,
            "unknown_delivery",
            format!("no delivery {id}"),
        )
    })?;
    let allowed = match &caller {
        Caller::Admin => true,
        Caller::Account(a) => match a.kind {
            AccountKind::User => a.id == d.user_id,
            AccountKind::Provider => a.id == d.provider_id,
            AccountKind::Edge => a.id == d.edge_id,
        },
    };
    if !allowed {
        // The same answer as for a missing one: ids are not an oracle.
        return Err(ApiError::new(
            StatusCode::NOT_FOUND,
            "unknown_delivery",
            format!("no delivery {id}"),
        ));
    }
    let postings = o.store.postings(id).await?;
    Ok(Json(serde_json::json!({ "delivery": d, "postings": postings })).into_response())
}

/// Reads a whole upload, checking the optional `Tracecast-Sha256` header.
pub(super) fn upload_bytes(
    headers: &HeaderMap,
    body: Result<Bytes, BytesRejection>,
) -> Result<Bytes, ApiError> {
    use sha2::Digest;
    let body = body.map_err(|e| ApiError::new(e.status(), "bad_body", e.body_text()))?;
    if body.is_empty() {
        return Err(ApiError::bad_request("the upload is empty"));
    }
    if let Some(want) = headers.get(tracecast_client::SHA256_HEADER) {
        let got = hex::encode(sha2::Sha256::digest(&body));
        if want.as_bytes() != got.as_bytes() {
            return Err(ApiError::new(
                StatusCode::UNPROCESSABLE_ENTITY,
                "corrupt_upload",
                "the upload does not match its Tracecast-Sha256 header: it was damaged on the way; nothing was stored",
            ));
        }
    }
    Ok(body)
}
