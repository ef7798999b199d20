//! The origin role (content server, DESIGN.md "001" steps 1-4 and 8):
//! accounts, ingest into renditions, the catalog, the edge registry with
//! what each edge holds, designation and purchase tickets, pre-positioning,
//! the consumer of edges' delivery reports (ledger postings and the user's
//! bill), and tracing a leaked file back to its delivery.

mod billing;
pub mod cdn;
mod contracts;
mod ingest;
pub mod licences;
pub mod members;
mod partners;
mod purchase;
mod reports;
mod statements;
mod trace;

use std::collections::HashMap;
use std::sync::{Arc, RwLock};

use axum::body::Bytes;
use axum::extract::rejection::{BytesRejection, JsonRejection};
use axum::extract::{DefaultBodyLimit, Path, Query, State};
use axum::http::{header, HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::{delete, get, post, put};
use axum::{Json, Router};
use ed25519_dalek::SigningKey;
use serde::Deserialize;
use tokio::sync::Semaphore;
use tracecast_delivery::api::{
    AccountInfo, ContentInfo, DeliveryDetail, DeliveryInfo, EdgeInfo, EdgeState, Holding,
    NewAccount, OriginInfo, PrePositionRequest, RenditionInfo,
};
use tracecast_delivery::{CallerKind, ContentKind, PrePosition, Tier};
use tracecast_mailbox::BoxName;
use tracecast_mark::MarkKey;
use tracecast_store::{
    Account, AccountId, AccountKind, Blobs, ContentRecord, EdgeId, ProviderId, Store,
};

use crate::auth::{new_token, token_hash, Authenticator};
use crate::mailbox::Mailbox;
use crate::openapi::{ErrorBody, Refusals};
use crate::ApiError;

/// The box edges send delivery reports to.
pub const REPORTS_BOX: &str = "role:origin-reports";

/// The currency amounts are in unless configured otherwise.
pub const DEFAULT_CURRENCY: &str = "EUR";

/// Settings of the origin role.
#[derive(Clone)]
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
    /// What renting costs when the provider set no tariff.
    pub rental_tariff: tracecast_ledger::RentalTariff,
    /// How long a rental lasts before the home deletes the copy.
    pub rental_secs: i64,
    /// Where users' payments go.
    pub payments: Arc<dyn billing::PaymentProvider>,
    /// Admission by referral: relay levels, quality by trust, leak penalty.
    pub members: tracecast_members::Policy,
    /// Attribute trust by occupation, place of activity and history.
    pub attributes: tracecast_members::AttributeTable,
    /// How long a licence for protected content lasts (a rental's ends
    /// with the rental).
    pub licence_secs: i64,
    /// The name its licences are issued under (`origin`): what roaming
    /// servers know this origin by.
    pub issuer: String,
    /// The protection systems this origin issues licences in itself; a
    /// user of another system gets theirs through the roaming server.
    pub native_systems: Vec<tracecast_protect::System>,
    /// A roaming server in this process: licences carry a copy of the key
    /// for it (the roaming agreement), and it converts licences into
    /// systems this origin does not issue.
    pub roaming: Option<Arc<crate::roaming::Roaming>>,
    /// A roaming server in another process: licences carry a copy of the
    /// key for it (conversions into systems this origin does not issue
    /// need one in this process).
    pub roaming_partner: Option<licences::RoamingPartner>,
    /// What one request of outside media may cost.
    pub budgets: Budgets,
    /// Delivery through a CDN with watermarking tokens (none by default).
    pub cdn: Option<cdn::CdnConfig>,
    /// Buyers' regions by network, for purchases that name none.
    pub regions: tracecast_delivery::RegionMap,
    /// Days between the statements of settling accounts (0: on request).
    pub statement_days: u32,
}

/// What decoding what a caller sent may cost: each request is bounded,
/// whatever the file claims or holds (DESIGN.md: what one request may
/// cost is bounded and documented; docs/config.md).
#[derive(Debug, Clone, Copy)]
pub struct Budgets {
    /// Largest file a trace takes (bytes; held in memory while read).
    pub trace_max_bytes: usize,
    /// Audio a trace reads: this many minutes of 48 kHz stereo (the same
    /// number of samples at other rates), from the start; the mark
    /// repeats throughout, so the rest is not needed.
    pub trace_minutes: f64,
    /// Largest picture (pixels) a trace or an ingest decodes.
    pub max_pixels: u64,
    /// Traces one account may ask for in a minute (administrators: no
    /// limit); each account runs one at a time.
    pub traces_per_minute: u32,
    /// Longest audio an ingest takes (minutes of 48 kHz stereo); longer
    /// is refused.
    pub ingest_minutes: f64,
}

impl Default for Budgets {
    fn default() -> Self {
        Self {
            trace_max_bytes: 512 << 20,
            trace_minutes: 5.0,
            max_pixels: 50_000_000,
            traces_per_minute: 10,
            // 16 bytes a sample at an ingest's peak: 2.8 GB at an hour.
            ingest_minutes: 60.0,
        }
    }
}

/// One decode's bounds.
#[derive(Debug, Clone, Copy)]
pub(crate) struct DecodeBudget {
    pub audio: tracecast_media::Budget,
    pub max_pixels: u64,
}

impl Budgets {
    pub(crate) fn trace(&self) -> DecodeBudget {
        DecodeBudget {
            audio: tracecast_media::Budget::minutes(
                self.trace_minutes,
                tracecast_media::Beyond::Truncate,
            ),
            max_pixels: self.max_pixels,
        }
    }

    pub(crate) fn ingest(&self) -> DecodeBudget {
        DecodeBudget {
            audio: tracecast_media::Budget::minutes(
                self.ingest_minutes,
                tracecast_media::Beyond::Refuse,
            ),
            max_pixels: self.max_pixels,
        }
    }
}

/// The answer to media over a budget: 413 naming the limit; other bad
/// media 422.
pub(crate) fn budget_refusal(e: &tracecast_media::MediaError) -> (StatusCode, &'static str) {
    match e {
        tracecast_media::MediaError::TooLong(_) | tracecast_media::MediaError::TooLarge(_) => {
            (StatusCode::PAYLOAD_TOO_LARGE, "over_budget")
        }
        tracecast_media::MediaError::Unmarkable(_) => {
            (StatusCode::UNPROCESSABLE_ENTITY, "unmarkable")
        }
        _ => (StatusCode::UNPROCESSABLE_ENTITY, "bad_media"),
    }
}

impl std::fmt::Debug for OriginConfig {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("OriginConfig")
            .field("currency", &self.currency)
            .field("rental_tariff", &self.rental_tariff.to_string())
            .field("payments", &self.payments.name())
            .finish_non_exhaustive()
    }
}

impl Default for OriginConfig {
    fn default() -> Self {
        Self {
            ticket_ttl_secs: 600,
            edge_alive_ms: 15_000,
            load_window_ms: 600_000,
            max_upload_bytes: 1 << 30,
            currency: DEFAULT_CURRENCY.into(),
            default_terms: "personal use only; no redistribution".into(),
            workers: std::thread::available_parallelism().map_or(2, |n| n.get()),
            rental_tariff: "0.50/hour max 3.00".parse().expect("a valid tariff"),
            rental_secs: 48 * 3600,
            payments: Arc::new(billing::ManualPayments),
            members: tracecast_members::Policy::default(),
            attributes: tracecast_members::AttributeTable::default(),
            licence_secs: 30 * 24 * 3600,
            issuer: licences::ISSUER.into(),
            native_systems: vec![
                tracecast_protect::System::Clearkey,
                tracecast_protect::System::Age,
                tracecast_protect::System::Device,
            ],
            roaming: None,
            roaming_partner: None,
            budgets: Budgets::default(),
            cdn: None,
            regions: Default::default(),
            statement_days: 30,
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
    accounts: crate::caller::AccountCache,
    /// Held while a leak's penalties are computed and written.
    members_lock: tokio::sync::Mutex<()>,
    /// Seals content keys at rest.
    keywrap: tracecast_protect::KeyWrap,
    /// Signs licences (the origin's signing key, under the licence
    /// format's own domain).
    licence_issuer: tracecast_protect::Issuer,
    /// Traces by account: a rate, and one at a time.
    traces: trace::TraceLimits,
    /// One ingest at a time per provider (decoding and encoding take a
    /// worker each).
    ingests: crate::budget::OneAtATime<ProviderId>,
    /// This origin's side of its agreement with the roaming server.
    roaming_agreement: Option<tracecast_protect::RoamingAgreement>,
    /// Calls to a roaming server in another process.
    http: reqwest::Client,
}

impl std::fmt::Debug for Origin {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // Never the keys.
        f.debug_struct("Origin")
            .field("blobs", &self.blobs)
            .finish()
    }
}

use crate::caller::Caller;

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
        let config_traces_per_minute = config.budgets.traces_per_minute;
        let issuer_name = config.issuer.clone();
        let partner = match (&config.roaming, &config.roaming_partner) {
            (Some(r), _) => Some((r.name().to_owned(), r.agreement_key())),
            (None, Some(p)) => Some((p.name.clone(), p.agreement_key)),
            (None, None) => None,
        };
        let roaming_agreement = match partner {
            Some((name, key)) => Some(
                tracecast_protect::RoamingAgreement::for_issuer(
                    &config.issuer,
                    &licences::agreement_secret(&signing),
                    &name,
                    &key,
                )
                .map_err(|e| tracecast_store::StoreError::Invalid(e.to_string()))?,
            ),
            None => None,
        };
        let origin = Arc::new(Self {
            store,
            blobs,
            mailbox,
            auth: Authenticator::default(),
            signing: signing.clone(),
            mark_key,
            config,
            reports_box,
            work: Semaphore::new(workers),
            accounts: RwLock::default(),
            members_lock: tokio::sync::Mutex::new(()),
            keywrap: tracecast_protect::KeyWrap::derive(
                signing.as_bytes(),
                "tracecast origin content keys",
            ),
            licence_issuer: tracecast_protect::Issuer::new(&issuer_name, signing.clone()),
            roaming_agreement,
            traces: trace::TraceLimits::new(config_traces_per_minute),
            ingests: crate::budget::OneAtATime::new("ingest_running", "an ingest"),
            http: reqwest::Client::builder()
                .timeout(std::time::Duration::from_secs(30))
                .build()
                .map_err(|e| tracecast_store::StoreError::Invalid(e.to_string()))?,
        });
        tokio::spawn(reports::consume(origin.clone()));
        tokio::spawn(contracts::charge_periods(origin.clone()));
        tokio::spawn(statements::sweep(origin.clone()));
        Ok(origin)
    }

    pub fn store(&self) -> &Store {
        &self.store
    }

    /// The mailbox the origin sends through (a roaming server beside it
    /// bills users through the same).
    pub fn mailbox(&self) -> &Arc<Mailbox> {
        &self.mailbox
    }

    /// The identity of an edge account, for an edge run in this process.
    pub fn local_edge(&self, account: &Account) -> Option<crate::edge::EdgeIdentity> {
        account.edge().map(|id| crate::edge::EdgeIdentity {
            id: u16::try_from(id.get()).unwrap_or(u16::MAX),
            name: account.name.clone(),
            origin_key: self.signing.verifying_key(),
            wmt_key: self.config.cdn.as_ref().map(|c| c.key.verifier()),
            reports_box: REPORTS_BOX.parse().expect("a valid box name"),
            own_box: format!("edge:{}", account.name)
                .parse()
                .expect("a valid box name"),
        })
    }

    async fn caller(&self, headers: &HeaderMap) -> Result<Caller, ApiError> {
        Caller::identify(&self.auth, &self.store, headers, Some(&self.accounts)).await
    }

    async fn content_info(&self, c: &ContentRecord) -> Result<ContentInfo, ApiError> {
        let variants = self.store.ab_variants(c.id).await?;
        let hls = match self.store.hls_variants(c.id).await? {
            Some(h) => Some(ingest::hls_info(&h)?),
            None => None,
        };
        let mut renditions: Vec<RenditionInfo> = self
            .store
            .renditions(c.id)
            .await?
            .into_iter()
            .map(|r| {
                let ab = variants
                    .iter()
                    .find(|v| v.tier == r.tier)
                    .map(ingest::ab_info);
                RenditionInfo {
                    tier: r.tier,
                    bytes: r.bytes as u64,
                    sha256: r.sha256,
                    hls: hls.clone().filter(|_| r.tier == ingest::VIDEO_TIER),
                    media_type: r.media_type,
                    ab,
                }
            })
            .collect();
        renditions.sort_by_key(|r| r.tier);
        Ok(ContentInfo {
            id: c.id,
            title: c.title.clone(),
            kind: c.kind,
            provider: c.provider.clone(),
            provider_id: c.provider_id.get(),
            price_cents: c.price_cents,
            terms: c.terms.clone(),
            source_sha256: c.source_sha256.clone(),
            rental_tariff: matches!(c.kind, ContentKind::Audio | ContentKind::Video).then(|| {
                c.rental_tariff
                    .clone()
                    .unwrap_or_else(|| self.config.rental_tariff.to_string())
            }),
            reserved_up_to_order: c.reserved_up_to_order,
            protected: c.protected,
            renditions,
            existing: false,
            warnings: Vec::new(),
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
    let trace_upload = origin.config.budgets.trace_max_bytes;
    Router::new()
        .route("/v1/origin", get(origin_info))
        .route("/v1/account", get(account))
        .route("/v1/accounts", post(add_account))
        .route("/v1/accounts/{kind}/{name}/token", post(replace_token))
        .route("/v1/account/token", post(replace_own_token))
        .route(
            "/v1/contents",
            get(contents)
                .post(ingest::add_content)
                .layer(DefaultBodyLimit::max(upload)),
        )
        .route("/v1/contents/{id}", get(content))
        .route("/v1/contents/{id}/renditions/{tier}", get(rendition))
        .route(
            "/v1/contents/{id}/renditions/{tier}/{which}",
            get(ab_variant),
        )
        .route("/v1/contents/{id}/hls/{which}/{file}", get(hls_file))
        .route("/v1/contents/{id}/pre-position", post(pre_position))
        .route("/v1/contents/{id}/reserved", put(members::set_reserved))
        .route("/v1/deliveries/{id}/key", get(licences::copy_key))
        .route("/v1/licences", post(licences::issue).get(licences::list))
        .route(
            "/v1/partners/{name}/consent",
            put(partners::give_consent)
                .delete(partners::revoke_consent)
                .get(partners::show_consent),
        )
        .route("/v1/licences/issuer", get(licences::issuer))
        .route("/v1/purchases", post(purchase::purchase))
        .route("/v1/edges", get(edges))
        .route("/v1/contracts", get(contracts::list).post(contracts::sign))
        .route("/v1/contracts/{edge}", delete(contracts::end))
        .route("/v1/sites", get(sites))
        .route("/v1/members", get(members::tree))
        .route("/v1/members/admit", post(members::admit))
        .route("/v1/members/register", post(members::register))
        .route("/v1/members/apply", post(members::apply))
        .route(
            "/v1/members/applications/{id}/{verb}",
            post(members::decide),
        )
        .route("/v1/members/reserved", post(members::ask_reserved))
        .route(
            "/v1/members/reserved/{id}/{verb}",
            post(members::decide_reserved),
        )
        .route("/v1/members/{name}", get(members::show))
        .route("/v1/invoice", get(billing::invoice))
        .route("/v1/payments", post(billing::pay))
        .route("/v1/ledger", get(billing::ledger))
        .route("/v1/ledger/balances", get(billing::balances))
        .route("/v1/statements", post(statements::issue_now))
        .route(
            "/v1/edges/state",
            post(edge_state).layer(DefaultBodyLimit::max(crate::budget::JSON_LIST_BODY)),
        )
        .route("/v1/deliveries", get(deliveries))
        .route("/v1/deliveries/{id}", get(delivery))
        .route(
            "/v1/trace",
            post(trace::trace).layer(DefaultBodyLimit::max(trace_upload)),
        )
        .layer(DefaultBodyLimit::max(crate::budget::JSON_BODY))
        .with_state(origin)
        .merge(crate::openapi::router(crate::openapi::RoleApi::Origin))
}

fn now_secs() -> i64 {
    tracecast_store::now_ms() / 1000
}

/// What edges and clients need to know of the origin (no token needed).
///
/// The key that signs purchase tickets, the box edges report to, and the
/// currency of prices.
#[utoipa::path(get, path = "/v1/origin", tag = "origin", security(()),
    responses((status = 200, description = "The origin's public facts.", body = OriginInfo)))]
async fn origin_info(State(o): State<Arc<Origin>>) -> Json<OriginInfo> {
    Json(OriginInfo {
        ticket_key: hex::encode(o.signing.verifying_key().to_bytes()),
        reports_box: REPORTS_BOX.into(),
        currency: o.config.currency.clone(),
        wmt_key: o
            .config
            .cdn
            .as_ref()
            .map(|c| c.key.verifier().spki_base64()),
        wmt_kid: o.config.cdn.as_ref().map(|c| c.key.verifier().kid()),
    })
}

fn account_info(a: &Account, token: Option<String>) -> AccountInfo {
    AccountInfo {
        kind: a.kind().into(),
        id: a.id.raw(),
        name: a.name.clone(),
        box_name: format!("{}:{}", a.kind().as_str(), a.name),
        token,
    }
}

/// The account behind the token (any token).
///
/// An administrator's token answers kind `admin`, id 0 and no box.
#[utoipa::path(get, path = "/v1/account", tag = "accounts", security(("bearer" = [])),
    responses((status = 200, description = "Who the token is; never a token.", body = AccountInfo), Refusals))]
async fn account(
    State(o): State<Arc<Origin>>,
    headers: HeaderMap,
) -> Result<Json<AccountInfo>, ApiError> {
    match o.caller(&headers).await? {
        Caller::Account(a) => Ok(Json(account_info(&a, None))),
        // An administrator has no account: id 0, no box.
        Caller::Admin => Ok(Json(AccountInfo {
            kind: CallerKind::Admin,
            id: 0,
            name: "administrator".into(),
            box_name: String::new(),
            token: None,
        })),
    }
}

#[derive(Deserialize)]
struct DeliveriesQuery {
    content: Option<i64>,
    limit: Option<i64>,
}

/// The deliveries the caller may see, newest first.
///
/// A user's own, a provider's contents' (without a kiosk order's
/// fulfilment), every one for an administrator; other accounts are refused.
#[utoipa::path(get, path = "/v1/deliveries", tag = "deliveries", security(("bearer" = [])),
    params(("content" = Option<i64>, Query, description = "Only deliveries of this content."),
        ("limit" = Option<i64>, Query, description = "At most this many (default 500; taken as 1-10000).")),
    responses((status = 200, description = "Newest first.", body = Vec<DeliveryInfo>), Refusals))]
async fn deliveries(
    State(o): State<Arc<Origin>>,
    headers: HeaderMap,
    query: Result<Query<DeliveriesQuery>, axum::extract::rejection::QueryRejection>,
) -> Result<Response, ApiError> {
    let caller = o.caller(&headers).await?;
    let Query(q) = query?;
    let (user, provider) = match caller.id() {
        None => (None, None),
        Some(AccountId::User(u)) => (Some(u), None),
        Some(AccountId::Provider(p)) => (None, Some(p)),
        Some(other) => {
            return Err(ApiError::forbidden(format!(
                "a {} account lists no deliveries",
                other.kind().as_str()
            )))
        }
    };
    let list: Vec<DeliveryInfo> = o
        .store
        .deliveries_where(user, provider, q.content, q.limit.unwrap_or(500))
        .await?
        .into_iter()
        .map(DeliveryInfo::from)
        .map(|d| match provider {
            Some(_) => d.seen_by_provider(),
            None => d,
        })
        .collect();
    Ok(Json(list).into_response())
}

/// Adds an account (administrator): a provider, user, edge, home, kiosk, partner or gateway.
///
/// Edges, homes and kiosks need an address; homes and kiosks are
/// registered with their fees (and a kiosk with its media's prices). The
/// account's token is shown only here.
#[utoipa::path(post, path = "/v1/accounts", tag = "accounts", security(("bearer" = [])),
    request_body = NewAccount,
    responses(
        (status = 201, description = "Added; `token` is shown only here.", body = AccountInfo),
        (status = 409, description = "A mailbox box of the account's name exists already; nothing changed.", body = ErrorBody),
        (status = 415, description = "The body is not JSON.", body = ErrorBody),
        (status = 422, description = "The body is JSON of the wrong shape.", body = ErrorBody),
        Refusals))]
async fn add_account(
    State(o): State<Arc<Origin>>,
    headers: HeaderMap,
    body: Result<Json<NewAccount>, JsonRejection>,
) -> Result<Response, ApiError> {
    if !matches!(o.caller(&headers).await?, Caller::Admin) {
        return Err(ApiError::forbidden("only an administrator adds accounts"));
    }
    let Json(new) = body?;
    let kind = new.kind;
    let edge_terms = new.region.is_some()
        || new.open
        || new.period_fee_cents.is_some()
        || new.period_days.is_some();
    if edge_terms && kind != AccountKind::Edge {
        return Err(ApiError::bad_request(
            "only an edge has a region, is open, or has a period fee",
        ));
    }
    if matches!(kind, AccountKind::Home | AccountKind::Kiosk) {
        return add_site(&o, kind, new).await;
    }
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
        let period_fee_cents = new.period_fee_cents.unwrap_or(0);
        let period_days = new.period_days.unwrap_or(0);
        if period_fee_cents < 0 {
            return Err(ApiError::bad_request(
                "an edge's period fee cannot be negative",
            ));
        }
        if (period_fee_cents > 0) != (1..=3660).contains(&period_days) {
            return Err(ApiError::bad_request(
                "a period fee needs its period, 1-3660 days (period_days), and a period needs a fee",
            ));
        }
        Some(tracecast_store::NewEdge {
            address: address.trim_end_matches('/'),
            operator: new.operator.as_deref().unwrap_or(&new.name),
            fee_cents: fee,
            region: new.region.as_ref().map(|r| r.as_str()),
            open: new.open,
            period_fee_cents,
            period_days,
        })
    } else {
        None
    };
    let token = new_token();
    let account = o
        .store
        .add_account(kind, &new.name, token_hash(&token), edge)
        .await?;
    tracing::info!(kind = kind.as_str(), id = %account.id, name = %account.name, "account added");
    Ok((
        StatusCode::CREATED,
        Json(account_info(&account, Some(token))),
    )
        .into_response())
}

/// Replaces an account's token (administrator).
///
/// Every earlier token of the account stops working (a leaked token, a
/// device lost); the new one is shown only here.
#[utoipa::path(post, path = "/v1/accounts/{kind}/{name}/token", tag = "accounts", security(("bearer" = [])),
    params(("kind" = AccountKind, Path, description = "The account's kind."),
        ("name" = String, Path, description = "The account's name.")),
    responses(
        (status = 201, description = "The new token, shown only here.", body = AccountInfo),
        (status = 404, description = "No account of that kind and name.", body = ErrorBody),
        Refusals))]
async fn replace_token(
    State(o): State<Arc<Origin>>,
    headers: HeaderMap,
    Path((kind, name)): Path<(String, String)>,
) -> Result<Response, ApiError> {
    if !matches!(o.caller(&headers).await?, Caller::Admin) {
        return Err(ApiError::forbidden(
            "only an administrator replaces another account's token",
        ));
    }
    let kind: AccountKind = kind.parse().map_err(ApiError::bad_request)?;
    let account = o.store.account_by_name(kind, &name).await?.ok_or_else(|| {
        ApiError::new(
            StatusCode::NOT_FOUND,
            "unknown_account",
            format!("there is no {} named {name:?}", kind.as_str()),
        )
    })?;
    o.new_token_for(&account).await
}

/// Replaces the caller's own token (any account, or an administrator).
///
/// The token it called with stops working; an administrator's other
/// tokens stay. The new one is shown only here.
#[utoipa::path(post, path = "/v1/account/token", tag = "accounts", security(("bearer" = [])),
    responses((status = 201, description = "The new token, shown only here.", body = AccountInfo), Refusals))]
async fn replace_own_token(
    State(o): State<Arc<Origin>>,
    headers: HeaderMap,
) -> Result<Response, ApiError> {
    match o.caller(&headers).await? {
        Caller::Account(a) => o.new_token_for(&a).await,
        // The administrator's own token: this one is replaced, other
        // administrator tokens stay.
        Caller::Admin => {
            let old = Authenticator::presented_hash(&headers)
                .ok_or_else(|| ApiError::unauthorized("no token"))?;
            let token = new_token();
            if !o
                .store
                .replace_admin_token(&old, &token_hash(&token))
                .await?
            {
                return Err(ApiError::unauthorized("unknown token"));
            }
            o.auth.forget(&old);
            o.mailbox.forget_token(&old);
            tracing::info!("an administrator token was replaced");
            Ok((
                StatusCode::CREATED,
                Json(AccountInfo {
                    kind: CallerKind::Admin,
                    id: 0,
                    name: "administrator".into(),
                    box_name: String::new(),
                    token: Some(token),
                }),
            )
                .into_response())
        }
    }
}

impl Origin {
    async fn new_token_for(&self, a: &Account) -> Result<Response, ApiError> {
        let token = new_token();
        let gone = self
            .store
            .replace_box_tokens(
                a.box_id,
                &token_hash(&token),
                &format!("{} {}", a.kind().as_str(), a.name),
            )
            .await?;
        // At once in this process; other processes within their cache's
        // time to live.
        self.auth.forget_box(a.box_id);
        self.mailbox.forget_tokens(a.box_id);
        tracing::info!(account = %a.id, name = %a.name, revoked = gone, "account token replaced");
        Ok((StatusCode::CREATED, Json(account_info(a, Some(token)))).into_response())
    }
}

/// Registers a home server or kiosk.
async fn add_site(o: &Origin, kind: AccountKind, new: NewAccount) -> Result<Response, ApiError> {
    let what = kind.as_str();
    let address = new
        .address
        .as_deref()
        .filter(|a| a.starts_with("http://") || a.starts_with("https://"))
        .ok_or_else(|| {
            ApiError::bad_request(format!(
                "a {what} needs an address like http://host:port/{what}"
            ))
        })?;
    let fee = new.fee_cents.unwrap_or(0);
    let shipping = new.shipping_cents.unwrap_or(0);
    if fee < 0 || shipping < 0 {
        return Err(ApiError::bad_request(format!(
            "a {what}'s fees cannot be negative"
        )));
    }
    let payer = new.payer.clone().unwrap_or_else(|| "user".into());
    if payer != "user" {
        let p: tracecast_ledger::Party =
            payer.parse().map_err(|e: tracecast_ledger::LedgerError| {
                ApiError::bad_request(format!("payer: {e}"))
            })?;
        if kind != AccountKind::Home {
            return Err(ApiError::bad_request("only a home's usage fee has a payer"));
        }
        drop(p);
    }
    let media = match kind {
        AccountKind::Kiosk => {
            let media = new.media.clone().unwrap_or_else(|| {
                [("cd-r", 150), ("dvd-r", 300), ("bd-r", 900)]
                    .into_iter()
                    .map(|(m, c)| (m.to_owned(), c))
                    .collect()
            });
            for (m, price) in &media {
                m.parse::<tracecast_disc::Medium>()
                    .map_err(|e| ApiError::bad_request(e.to_string()))?;
                if *price < 0 {
                    return Err(ApiError::bad_request("a medium's price cannot be negative"));
                }
            }
            media
        }
        _ => Default::default(),
    };
    let token = new_token();
    let (account, _) = o
        .store
        .add_site(
            &tracecast_store::NewSite {
                kind,
                name: new.name.clone(),
                address: address.trim_end_matches('/').to_owned(),
                operator: new.operator.clone().unwrap_or_else(|| new.name.clone()),
                fee_cents: fee,
                payer,
                media,
                shipping_cents: shipping,
            },
            token_hash(&token),
        )
        .await?;
    tracing::info!(kind = what, id = %account.id, name = %account.name, "site added");
    Ok((
        StatusCode::CREATED,
        Json(account_info(&account, Some(token))),
    )
        .into_response())
}

/// Home servers and kiosks with their terms (any token), to choose one.
#[utoipa::path(get, path = "/v1/sites", tag = "sites", security(("bearer" = [])),
    responses((status = 200, description = "Every home server and kiosk.", body = Vec<tracecast_delivery::api::SiteInfo>), Refusals))]
async fn sites(State(o): State<Arc<Origin>>, headers: HeaderMap) -> Result<Response, ApiError> {
    o.caller(&headers).await?;
    let sites: Vec<tracecast_delivery::api::SiteInfo> = o
        .store
        .sites()
        .await?
        .into_iter()
        .map(|s| tracecast_delivery::api::SiteInfo {
            id: s.id.get(),
            kind: if s.kind == AccountKind::Kiosk {
                tracecast_delivery::api::SiteKind::Kiosk
            } else {
                tracecast_delivery::api::SiteKind::Home
            },
            media: s.media,
            name: s.name,
            address: s.address,
            operator: s.operator,
            fee_cents: s.fee_cents,
            payer: s.payer,
            shipping_cents: s.shipping_cents,
        })
        .collect();
    Ok(Json(sites).into_response())
}

/// The catalog (any token): every content with its renditions.
#[utoipa::path(get, path = "/v1/contents", tag = "contents", security(("bearer" = [])),
    responses(
        (status = 200, description = "Every content of the catalog.", body = Vec<ContentInfo>),
        (status = 500, description = "A stored HLS manifest does not read back (a fault of the origin).", body = ErrorBody),
        Refusals))]
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

/// One content of the catalog with its renditions (any token).
#[utoipa::path(get, path = "/v1/contents/{id}", tag = "contents", security(("bearer" = [])),
    params(("id" = i64, Path, minimum = 1, description = "The content.")),
    responses(
        (status = 200, description = "The content.", body = ContentInfo),
        (status = 404, description = "No such content.", body = ErrorBody),
        (status = 500, description = "A stored HLS manifest does not read back (a fault of the origin).", body = ErrorBody),
        Refusals))]
async fn content(
    State(o): State<Arc<Origin>>,
    headers: HeaderMap,
    Path(id): Path<String>,
) -> Result<Json<ContentInfo>, ApiError> {
    o.caller(&headers).await?;
    let c = o.content_or_404(parse_id(&id, "content")?).await?;
    Ok(Json(o.content_info(&c).await?))
}

/// A file of a video's A/B variants, named in its manifest (edges and administrators).
///
/// Sent with the SHA-256 the origin recorded, which the edge checks.
#[utoipa::path(get, path = "/v1/contents/{id}/hls/{which}/{file}", tag = "edges", security(("bearer" = [])),
    params(("id" = i64, Path, minimum = 1, description = "The content."),
        ("which" = String, Path, pattern = "^(a|b)$", description = "The variant."),
        ("file" = String, Path, description = "A file of the variant's manifest: `init.mp4` or `seg_NNNNN.m4s`.")),
    responses(
        (status = 200, description = "The file.", content_type = "video/mp4", body = Vec<u8>,
            headers(("Tracecast-Sha256" = String, description = "The file's SHA-256 (hex), as recorded at ingest."))),
        (status = 404, description = "The content has no HLS variants, or its manifest has no such file.", body = ErrorBody),
        (status = 500, description = "The stored HLS manifest does not read back (a fault of the origin).", body = ErrorBody),
        Refusals))]
async fn hls_file(
    State(o): State<Arc<Origin>>,
    headers: HeaderMap,
    Path((id, which, file)): Path<(String, String, String)>,
) -> Result<Response, ApiError> {
    edges_only(&o, &headers, "variants").await?;
    let id = parse_id(&id, "content")?;
    let h = o.store.hls_variants(id).await?.ok_or_else(|| {
        ApiError::new(
            StatusCode::NOT_FOUND,
            "unknown_rendition",
            format!("content {id} has no HLS variants"),
        )
    })?;
    let info = ingest::hls_info(&h)?;
    let name = format!("{which}/{file}");
    // Only files of the manifest: the name never reaches the blob store
    // unchecked.
    let (_, sha256) = info.files.get(&name).cloned().ok_or_else(|| {
        ApiError::new(
            StatusCode::NOT_FOUND,
            "unknown_segment",
            format!("no file {name}"),
        )
    })?;
    blob_response(&o, &format!("hls/{id}/{name}"), "video/mp4", sha256).await
}

/// One of a rendition's pre-marked A/B variants (FLAC, or WAV for contents ingested before FLAC variants), or the index of the FLAC variants' frames (edges and administrators).
///
/// Edges assemble each buyer's copy from the two: FLAC variants frame by frame, by the index.
#[utoipa::path(get, path = "/v1/contents/{id}/renditions/{tier}/{which}", tag = "edges", security(("bearer" = [])),
    params(("id" = i64, Path, minimum = 1, description = "The content."),
        ("tier" = Tier, Path, description = "The rendition's tier."),
        ("which" = String, Path, pattern = "^(a|b|index|mp3-a|mp3-b|mp3-index)$", description = "The variant, or the frame index; `mp3-`: the MP3 variants and theirs.")),
    responses(
        (status = 200, description = "The variant (`audio/flac`, `audio/wav` or `audio/mpeg`) or the frame index (`application/octet-stream`: \"tcABflac\", the header's length and the frame count as u64, then every frame's size as u32, A's then B's, all little-endian; for MP3, \"tcABmp3\\0\", the frame count as u64, the samples per frame, the decoder's delay, the samples per unit and the unit's cut as u32, then every frame's size as u32, the same in both).", content_type = "application/octet-stream", body = Vec<u8>,
            headers(("Tracecast-Sha256" = String, description = "The file's SHA-256 (hex), as recorded at ingest."))),
        (status = 404, description = "The content has no A/B variants of that tier.", body = ErrorBody),
        Refusals))]
async fn ab_variant(
    State(o): State<Arc<Origin>>,
    headers: HeaderMap,
    Path((id, tier, which)): Path<(String, String, String)>,
) -> Result<Response, ApiError> {
    edges_only(&o, &headers, "variants").await?;
    let id = parse_id(&id, "content")?;
    let tier: Tier = tier.parse().map_err(ApiError::bad_request)?;
    let v = o
        .store
        .ab_variants(id)
        .await?
        .into_iter()
        .find(|v| v.tier == tier)
        .ok_or_else(|| {
            ApiError::new(
                StatusCode::NOT_FOUND,
                "unknown_rendition",
                format!("content {id} has no A/B variants of its {tier} rendition"),
            )
        })?;
    let media_type = if v.flac.is_some() {
        "audio/flac"
    } else {
        "audio/wav"
    };
    let no_mp3 = || {
        ApiError::new(
            StatusCode::NOT_FOUND,
            "unknown_rendition",
            format!("content {id} has no MP3 variants"),
        )
    };
    let (key, sha256, media_type) = match (which.as_str(), v.flac) {
        ("mp3-a", _) => {
            let m = v.mp3.ok_or_else(no_mp3)?;
            (m.a_blob_key, m.a_sha256, "audio/mpeg")
        }
        ("mp3-b", _) => {
            let m = v.mp3.ok_or_else(no_mp3)?;
            (m.b_blob_key, m.b_sha256, "audio/mpeg")
        }
        ("mp3-index", _) => {
            let m = v.mp3.ok_or_else(no_mp3)?;
            (m.index_blob_key, m.index_sha256, "application/octet-stream")
        }
        ("a", _) => (v.a_blob_key, v.a_sha256, media_type),
        ("b", _) => (v.b_blob_key, v.b_sha256, media_type),
        ("index", Some(f)) => (f.index_blob_key, f.index_sha256, "application/octet-stream"),
        ("index", None) => {
            return Err(ApiError::new(
                StatusCode::NOT_FOUND,
                "unknown_rendition",
                format!("content {id}'s variants are WAV: they have no frame index"),
            ))
        }
        _ => {
            return Err(ApiError::bad_request(
                "the variant is a, b, index, mp3-a, mp3-b or mp3-index",
            ))
        }
    };
    blob_response(&o, &key, media_type, sha256).await
}

/// A rendition's bytes (edges and administrators).
///
/// Its Content-Type is the rendition's media type (`audio/flac`,
/// `image/jpeg`, `image/png`, a video container, or
/// `application/vnd.apple.mpegurl` for an A/B video's playlist).
#[utoipa::path(get, path = "/v1/contents/{id}/renditions/{tier}", tag = "edges", security(("bearer" = [])),
    params(("id" = i64, Path, minimum = 1, description = "The content."),
        ("tier" = Tier, Path, description = "The rendition's tier.")),
    responses(
        (status = 200, description = "The rendition, in its own media type.", content_type = "application/octet-stream", body = Vec<u8>,
            headers(("Tracecast-Sha256" = String, description = "The rendition's SHA-256 (hex), as recorded at ingest."))),
        (status = 404, description = "The content has no rendition of that tier.", body = ErrorBody),
        Refusals))]
async fn rendition(
    State(o): State<Arc<Origin>>,
    headers: HeaderMap,
    Path((id, tier)): Path<(String, String)>,
) -> Result<Response, ApiError> {
    edges_only(&o, &headers, "renditions").await?;
    let id = parse_id(&id, "content")?;
    let tier: Tier = tier.parse().map_err(ApiError::bad_request)?;
    let r = o
        .store
        .renditions(id)
        .await?
        .into_iter()
        .find(|r| r.tier == tier)
        .ok_or_else(|| {
            ApiError::new(
                StatusCode::NOT_FOUND,
                "unknown_rendition",
                format!("content {id} has no {tier} rendition"),
            )
        })?;
    blob_response(&o, &r.blob_key, &r.media_type, r.sha256).await
}

/// Refuses anyone but edges and administrators.
async fn edges_only(o: &Origin, headers: &HeaderMap, what: &str) -> Result<(), ApiError> {
    match o.caller(headers).await?.id() {
        None | Some(AccountId::Edge(_)) => Ok(()),
        Some(_) => Err(ApiError::forbidden(format!(
            "{what} are served to edges only"
        ))),
    }
}

/// Streams a blob with its media type and the SHA-256 the origin recorded
/// (the edge checks it).
async fn blob_response(
    o: &Origin,
    key: &str,
    media_type: &str,
    sha256: String,
) -> Result<Response, ApiError> {
    let (size, stream) = o.blobs.get_stream(key).await.map_err(blob_error)?;
    Ok((
        [
            (header::CONTENT_TYPE, media_type.to_owned()),
            (header::CONTENT_LENGTH, size.to_string()),
            (
                header::HeaderName::from_static(tracecast_client::SHA256_HEADER),
                sha256,
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

/// Orders edges to fetch a rendition before buyers ask (the content's provider, or an administrator).
///
/// Each edge named (every edge when none is) gets an order in its box.
#[utoipa::path(post, path = "/v1/contents/{id}/pre-position", tag = "contents", security(("bearer" = [])),
    params(("id" = i64, Path, minimum = 1, description = "The content.")),
    request_body = PrePositionRequest,
    responses(
        (status = 200, description = "The ids of the edges ordered.", body = Vec<i64>),
        (status = 404, description = "No such content.", body = ErrorBody),
        (status = 415, description = "The body is not JSON.", body = ErrorBody),
        (status = 422, description = "The body is JSON of the wrong shape.", body = ErrorBody),
        Refusals))]
async fn pre_position(
    State(o): State<Arc<Origin>>,
    headers: HeaderMap,
    Path(id): Path<String>,
    body: Result<Json<PrePositionRequest>, JsonRejection>,
) -> Result<Json<Vec<i64>>, ApiError> {
    let caller = o.caller(&headers).await?;
    let c = o.content_or_404(parse_id(&id, "content")?).await?;
    match caller.id() {
        None => {}
        Some(AccountId::Provider(p)) if p == c.provider_id => {}
        _ => {
            return Err(ApiError::forbidden(
                "only the content's provider positions it on edges",
            ))
        }
    }
    let Json(req) = body?;
    let kind = c.kind;
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
        .filter(|e| req.edges.is_empty() || req.edges.contains(&e.id.get()))
        .collect();
    if chosen.is_empty() {
        return Err(ApiError::bad_request("no such edge is registered"));
    }
    // Only edges that serve the provider's content hold it: open ones and
    // those under contract with the provider.
    let contracted: Vec<EdgeId> = o
        .store
        .contracts(tracecast_store::ContractsOf::Provider(c.provider_id), true)
        .await?
        .into_iter()
        .map(|k| k.edge_id)
        .collect();
    let (chosen, refused): (Vec<_>, Vec<_>) = chosen
        .into_iter()
        .partition(|e| e.open() || contracted.contains(&e.id));
    if !req.edges.is_empty() && !refused.is_empty() || chosen.is_empty() {
        let names: Vec<&str> = refused.iter().map(|e| e.name.as_str()).collect();
        return Err(ApiError::new(
            StatusCode::UNPROCESSABLE_ENTITY,
            "no_contracted_edge",
            format!(
                "edges {names:?} serve only providers under contract: sign one first (tracecast contract add EDGE)"
            ),
        ));
    }
    let order = serde_json::to_vec(&PrePosition {
        content: c.id,
        tier,
    })
    .expect("serialises");
    let mut told = Vec::new();
    for e in chosen {
        let Some(acct) = o.store.account(AccountId::Edge(e.id)).await? else {
            continue;
        };
        o.mailbox
            .send(
                acct.box_id,
                PrePosition::MEDIA_TYPE,
                order.clone(),
                Some(format!("pre-position-{}-{tier}-{}", c.id, now_secs() / 60)),
            )
            .await?;
        told.push(e.id.get());
    }
    tracing::info!(content = c.id, %tier, edges = ?told, "pre-position ordered");
    Ok(Json(told))
}

/// The edge registry with what each edge last said it holds (administrators and providers).
#[utoipa::path(get, path = "/v1/edges", tag = "edges", security(("bearer" = [])),
    responses((status = 200, description = "Every registered edge.", body = Vec<EdgeInfo>), Refusals))]
async fn edges(State(o): State<Arc<Origin>>, headers: HeaderMap) -> Result<Response, ApiError> {
    if !matches!(
        o.caller(&headers).await?.id(),
        None | Some(AccountId::Provider(_))
    ) {
        return Err(ApiError::forbidden(
            "the edge registry is for administrators and providers",
        ));
    }
    // Each edge with the renditions it last said it holds.
    let mut holdings: HashMap<EdgeId, Vec<Holding>> = HashMap::new();
    for (edge, content, tier) in o.store.edge_holdings().await? {
        holdings
            .entry(edge)
            .or_default()
            .push(Holding { content, tier });
    }
    let edges: Vec<EdgeInfo> = o
        .store
        .edges()
        .await?
        .into_iter()
        .map(|e| EdgeInfo {
            holdings: holdings.remove(&e.id).unwrap_or_default(),
            id: e.id.get(),
            name: e.name,
            address: e.address,
            operator: e.operator,
            fee_cents: e.fee_cents,
            last_seen: e.last_seen,
            in_flight: e.in_flight,
            push_key: e.push_key,
            open: e.open_to_all != 0,
            region: e.region.and_then(|r| r.parse().ok()),
            period_fee_cents: e.period_fee_cents,
            period_days: u32::try_from(e.period_days).unwrap_or(0),
        })
        .collect();
    Ok(Json(edges).into_response())
}

/// An edge reports what it holds, how busy it is and its push key (edges).
///
/// The origin designates edges for purchases from these reports.
#[utoipa::path(post, path = "/v1/edges/state", tag = "edges", security(("bearer" = [])),
    request_body = EdgeState,
    responses(
        (status = 204, description = "Recorded."),
        (status = 415, description = "The body is not JSON.", body = ErrorBody),
        (status = 422, description = "The body is JSON of the wrong shape.", body = ErrorBody),
        Refusals))]
async fn edge_state(
    State(o): State<Arc<Origin>>,
    headers: HeaderMap,
    body: Result<Json<EdgeState>, JsonRejection>,
) -> Result<StatusCode, ApiError> {
    let caller = o.caller(&headers).await?;
    let (edge, _) = caller.edge()?;
    let Json(state) = body?;
    if state.holdings.len() > 100_000 {
        return Err(ApiError::bad_request("too many holdings in one report"));
    }
    let holdings: Vec<(i64, String)> = state
        .holdings
        .iter()
        .map(|h| (h.content, h.tier.as_str().to_owned()))
        .collect();
    let push_key = state.push_key.as_deref().map(str::to_ascii_lowercase);
    if let Some(k) = &push_key {
        let valid = hex::decode(k)
            .ok()
            .and_then(|b| <[u8; 32]>::try_from(b.as_slice()).ok())
            .is_some_and(|b| ed25519_dalek::VerifyingKey::from_bytes(&b).is_ok());
        if !valid {
            return Err(ApiError::bad_request(
                "push_key is an Ed25519 public key in hex (64 digits)",
            ));
        }
    }
    o.store
        .set_edge_state(
            edge,
            &holdings,
            state.in_flight.max(0),
            push_key.as_deref(),
            tracecast_store::now_ms(),
        )
        .await?;
    Ok(StatusCode::NO_CONTENT)
}

/// A delivery with its ledger postings (whoever may see it).
///
/// Its user, its content's provider, its edge, its home or kiosk, the
/// partner that bought it, or an administrator; to anyone else it does
/// not exist.
#[utoipa::path(get, path = "/v1/deliveries/{id}", tag = "deliveries", security(("bearer" = [])),
    params(("id" = i64, Path, minimum = 1, description = "The delivery.")),
    responses(
        (status = 200, description = "The delivery and its postings.", body = DeliveryDetail),
        (status = 404, description = "No such delivery, or not one the caller may see.", body = ErrorBody),
        Refusals))]
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
        Caller::Account(a) => match a.id {
            AccountId::User(u) => u == d.user_id,
            AccountId::Provider(p) => p == d.provider_id,
            AccountId::Edge(e) => e == d.edge_id,
            AccountId::Home(s) | AccountId::Kiosk(s) => Some(s) == d.site_id,
            // The deliveries it bought.
            AccountId::Partner(_) => {
                d.order_info.payer.as_deref() == Some(&format!("operator:{}", a.name))
            }
            // Parties that settle read their postings in their
            // statement, not deliveries.
            AccountId::Gateway(_)
            | AccountId::Operator(_)
            | AccountId::Store(_)
            | AccountId::Manager(_) => false,
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
    let delivery = DeliveryInfo::from(d);
    Ok(Json(DeliveryDetail {
        delivery: match caller.id() {
            Some(AccountId::Provider(_)) => delivery.seen_by_provider(),
            _ => delivery,
        },
        postings: postings.into_iter().map(Into::into).collect(),
    })
    .into_response())
}

/// Reads a whole upload, checking the optional `Tracecast-Sha256` header.
pub(super) fn upload_bytes(
    headers: &HeaderMap,
    body: Result<Bytes, BytesRejection>,
) -> Result<Bytes, ApiError> {
    use sha2::Digest;
    let body = body?;
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

/// The origin role's contract (`/openapi/origin.json`, docs/openapi/origin.json).
#[derive(utoipa::OpenApi)]
#[openapi(
    info(description = "The content server: accounts, ingest into renditions, the catalog, the edge \
        registry, purchases (an edge designated and a signed ticket), licences for protected content, \
        partners' consents, members admitted by referral, invoices, payments and the ledger, and tracing \
        a leaked file back to its delivery. Every route but `/v1/origin` takes a bearer token, and each \
        operation says whose it takes: the administrator's (accounts and their tokens, the ledger, the \
        members tree and first-order members, traces), a provider's (ingest, reserving and positioning \
        its contents, its deliveries and statement, traces of its copies), a user's (purchases, \
        licences, consents, membership, invoices and payments, checking a copy), a partner's (purchases \
        and licences for users who consented), an edge's (renditions and variants, copy keys, its \
        state), or a home's or kiosk's site token (a delivery through it). Any token reads the \
        catalog and the sites. Errors are JSON `{\"error\": code, \"message\": text}`: a 4xx changed \
        nothing, a 503 changed nothing and may be retried."),
    paths(
        origin_info, account, add_account, replace_token, replace_own_token,
        contents, ingest::add_content, content, rendition, ab_variant, hls_file, pre_position,
        members::set_reserved,
        edges, sites, edge_state, contracts::sign, contracts::list, contracts::end,
        purchase::purchase, deliveries, delivery, licences::copy_key,
        licences::issue, licences::list, licences::issuer,
        partners::give_consent, partners::revoke_consent, partners::show_consent,
        members::tree, members::admit, members::register, members::apply, members::decide, members::ask_reserved,
        members::decide_reserved, members::show,
        billing::invoice, billing::pay, billing::ledger, billing::balances, statements::issue_now,
        trace::trace
    ),
    components(schemas(Tier, AccountKind)),
    tags(
        (name = "origin", description = "What edges and clients need to know of the origin"),
        (name = "accounts", description = "Accounts and their tokens"),
        (name = "contents", description = "The catalog: ingest, contents, reservation, pre-positioning"),
        (name = "edges", description = "The edge registry, and what edges fetch from the origin"),
        (name = "sites", description = "Home servers and kiosks"),
        (name = "deliveries", description = "Purchases and the deliveries they open"),
        (name = "licences", description = "Licences for protected content"),
        (name = "partners", description = "Users' consents to partners buying for them"),
        (name = "members", description = "Admission by referral, and reserved content"),
        (name = "billing", description = "Invoices, payments and the ledger"),
        (name = "trace", description = "Tracing a leaked file back to its delivery")
    )
)]
pub struct Api;
