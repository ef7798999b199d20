//! The roaming server (DESIGN.md "002"): converts a licence of one
//! protection system into the user's own, for issuers it has a roaming
//! agreement with. The rules are `tracecast-protect::RoamingServer`; here
//! are the HTTP API, the user's authentication, the once-per-licence
//! record (the audit log, which never holds a key) and the charge in the
//! ledger, written together.
//!
//! Ways in:
//! 1. the user brings licences from one or more servers
//!    (`POST /roaming/v1/conversions`, the user's token);
//! 2. the user gives a package order (`POST /roaming/v1/orders`): for each
//!    item the roaming server buys at the issuer's origin with its partner
//!    account (the user consented there), takes the licence, converts it
//!    and bills the user the price and its fee;
//! 3. an issuer that sees the user's system is one it does not issue asks
//!    before delivering: in process ([`Roaming::convert`]) or from another
//!    process (`POST /roaming/v1/issuer-conversions`, the request signed
//!    with the issuer's Ed25519 key).

use std::sync::Arc;

use axum::extract::rejection::JsonRejection;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use base64::Engine;
use ed25519_dalek::SigningKey;
use serde::{Deserialize, Serialize};
use tracecast_ledger::{Party, Transaction};
use tracecast_protect::api::{
    ConversionRequest, Conversions, Converted, Package, PackageItem, PackageOrder, Packaged,
    RoamingKeys,
};
use tracecast_protect::{
    Agreement, ConversionWay, Issuer, ProtectError, Recipient, RoamingServer, SignedLicence,
};
use tracecast_store::{Account, ConversionRecord, Principal, Store};

use crate::auth::Authenticator;
use crate::openapi::{ErrorBody, Refusals};
use crate::ApiError;

const B64: base64::engine::GeneralPurpose = base64::engine::general_purpose::URL_SAFE_NO_PAD;

/// Most licences converted in one request.
pub const MAX_BATCH: usize = 100;

/// Settings of the roaming role.
#[derive(Debug, Clone)]
pub struct RoamingConfig {
    /// The name converted licences are issued under.
    pub name: String,
    /// What one conversion costs the user.
    pub fee_cents: i64,
    /// The issuers whose licences it converts.
    pub agreements: Vec<Agreement>,
    /// The origins it buys at for package orders.
    pub sources: Vec<PackageSource>,
}

/// An issuer's origin where this roaming server holds a partner account
/// (way 2).
#[derive(Clone)]
pub struct PackageSource {
    /// The issuer's name, as in its agreement.
    pub issuer: String,
    /// Its origin's URL.
    pub origin: String,
    /// The partner account's token there.
    pub token: String,
}

impl std::fmt::Debug for PackageSource {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // Never the token.
        f.debug_struct("PackageSource")
            .field("issuer", &self.issuer)
            .field("origin", &self.origin)
            .finish()
    }
}

/// The header carrying an issuer's signature of a way-3 request.
pub const ISSUER_SIGNATURE: &str = "tracecast-issuer-signature";

/// How far a signed issuer request's time may be from ours.
const ISSUER_SKEW_SECS: i64 = 300;

/// A way-3 request from an issuer in another process: signed whole (the
/// body's bytes) with its licence key.
#[derive(Debug, Serialize, Deserialize, utoipa::ToSchema)]
pub struct IssuerRequest {
    pub issuer: String,
    pub licence: SignedLicence,
    pub recipient: String,
    /// Unix seconds when it was signed.
    pub at: i64,
}

impl IssuerRequest {
    /// The body and its signature header value.
    pub fn sign(&self, key: &SigningKey) -> (Vec<u8>, String) {
        use ed25519_dalek::Signer;
        let body = serde_json::to_vec(self).expect("serialises");
        let sig = key.sign(&body);
        (body, B64.encode(sig.to_bytes()))
    }
}

/// The running roaming server.
pub struct Roaming {
    rules: RoamingServer,
    store: Store,
    auth: Authenticator,
    config: RoamingConfig,
    /// One batch of conversions or one package order at a time per user.
    busy: crate::budget::OneAtATime<String>,
    /// Where users' bills go, when a mailbox runs on this store, and
    /// their currency.
    billing: std::sync::OnceLock<(Arc<crate::mailbox::Mailbox>, String)>,
}

impl std::fmt::Debug for Roaming {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // Never the keys.
        f.debug_struct("Roaming")
            .field("name", &self.config.name)
            .field("agreements", &self.config.agreements.len())
            .finish()
    }
}

fn refused(e: ProtectError) -> ApiError {
    match e {
        ProtectError::Malformed(_) | ProtectError::Unsupported(_) => {
            ApiError::bad_request(e.to_string())
        }
        ProtectError::Io(_) | ProtectError::Crypto(_) => ApiError::new(
            StatusCode::INTERNAL_SERVER_ERROR,
            "conversion_failed",
            e.to_string(),
        ),
        _ => ApiError::new(StatusCode::FORBIDDEN, "refused", e.to_string()),
    }
}

impl Roaming {
    /// `signing` signs converted licences; `agreement_secret` is the X25519
    /// key of its agreements.
    pub fn new(
        store: Store,
        signing: SigningKey,
        agreement_secret: [u8; 32],
        config: RoamingConfig,
    ) -> Result<Arc<Self>, ProtectError> {
        let rules = RoamingServer::new(
            Issuer::new(config.name.clone(), signing),
            agreement_secret,
            &config.agreements,
        )?;
        Ok(Arc::new(Self {
            rules,
            store,
            auth: Authenticator::default(),
            config,
            busy: crate::budget::OneAtATime::new("conversion_running", "a conversion or order"),
            billing: std::sync::OnceLock::new(),
        }))
    }

    /// Sends each user a bill for what a conversion charged them, through
    /// the mailbox on this store (the user's own box), in `currency`. Set
    /// once; without it the charge is in the ledger and the answer only.
    pub fn bill_through(&self, mailbox: Arc<crate::mailbox::Mailbox>, currency: &str) {
        let _ = self.billing.set((mailbox, currency.to_owned()));
    }

    /// Tells the user what `charge` costs them, once per charge (its
    /// event is the idempotency key). A failure is logged: the charge is
    /// in the ledger, and in the user's invoice, whatever happens here.
    async fn send_bill(
        &self,
        user: &str,
        charge: &Transaction,
        source: &tracecast_protect::Licence,
        licence: &str,
        to: tracecast_protect::System,
    ) {
        let Some((mailbox, currency)) = self.billing.get() else {
            return;
        };
        let payer = Party::user(user);
        let bill = tracecast_delivery::RoamingBill {
            licence: licence.to_owned(),
            issuer: source.issuer.clone(),
            content: source.content,
            from_system: source.system.to_string(),
            to_system: to.to_string(),
            amount_cents: charge.effect_on(&payer),
            currency: currency.clone(),
            lines: charge
                .owed_by(&payer)
                .into_iter()
                .map(|o| tracecast_delivery::BillLine {
                    payee: o.payee.to_string(),
                    amount_cents: o.amount_cents,
                    memo: o.memo,
                })
                .collect(),
            issued_at: tracecast_store::now_ms(),
        };
        let sent = async {
            let account = self
                .store
                .account_by_name(tracecast_store::AccountKind::User, user)
                .await?
                .ok_or_else(|| tracecast_store::StoreError::Invalid(format!("no user {user}")))?;
            mailbox
                .send(
                    account.box_id,
                    tracecast_delivery::RoamingBill::MEDIA_TYPE,
                    serde_json::to_vec(&bill).expect("serialises"),
                    Some(format!("bill-{}", charge.event)),
                )
                .await
        };
        if let Err(e) = sent.await {
            tracing::warn!(error = %e, user, event = %charge.event, "the roaming bill was not sent; the charge stands in the ledger");
        }
    }

    pub fn name(&self) -> &str {
        self.rules.name()
    }

    /// The X25519 key issuers make their agreement with.
    pub fn agreement_key(&self) -> [u8; 32] {
        self.rules.public_key()
    }

    pub fn verifying_key(&self) -> ed25519_dalek::VerifyingKey {
        self.rules.verifying_key()
    }

    /// Converts one licence for `user` (already authenticated as the
    /// licence's user, or an issuer acting for them), records it once with
    /// its charge, and answers the new licence.
    pub async fn convert(
        &self,
        user: &str,
        source: &SignedLicence,
        target: &Recipient,
        way: ConversionWay,
    ) -> Result<SignedLicence, ApiError> {
        self.convert_bought(user, source, target, way, 0, None, true)
            .await
    }

    /// [`Self::convert`] for an issuer in another process (way 3): the
    /// user is named by that issuer's licence, not by an account here, so
    /// the charge is kept but no bill goes to a box here (a namesake's).
    async fn convert_for_remote_issuer(
        &self,
        user: &str,
        source: &SignedLicence,
        target: &Recipient,
    ) -> Result<SignedLicence, ApiError> {
        self.convert_bought(user, source, target, ConversionWay::Issuer, 0, None, false)
            .await
    }

    /// [`Self::convert`], also billing the user `bought_cents` that this
    /// server paid the issuer for them (a package order).
    /// `once_per`: what the charge is for, once (a package order's
    /// delivery: an order retried with its key converts again but charges
    /// nothing more); by default the source licence.
    #[allow(clippy::too_many_arguments)]
    async fn convert_bought(
        &self,
        user: &str,
        source: &SignedLicence,
        target: &Recipient,
        way: ConversionWay,
        bought_cents: i64,
        once_per: Option<String>,
        bill: bool,
    ) -> Result<SignedLicence, ApiError> {
        let now = tracecast_store::now_ms() / 1000;
        let c = self
            .rules
            .convert(source, user, target, now)
            .map_err(refused)?;
        let new_id = c.licence.id.clone();
        let charged_for = once_per.clone().unwrap_or_else(|| c.source.id.clone());
        let mut charge = Transaction::new(format!("roaming-{charged_for}"), None);
        charge.transfer(
            &Party::user(user),
            &Party::operator(&self.config.name),
            self.config.fee_cents,
            format!(
                "licence conversion {} to {} (content {} from {})",
                c.source.system,
                target.system(),
                c.source.content,
                c.source.issuer
            ),
        );
        if bought_cents > 0 {
            charge.transfer(
                &Party::user(user),
                &Party::operator(&self.config.name),
                bought_cents,
                format!(
                    "content {} bought for you at {}",
                    c.source.content, c.source.issuer
                ),
            );
        }
        let fresh = self
            .store
            .record_conversion(
                &ConversionRecord {
                    source_id: charged_for.clone(),
                    issuer: c.source.issuer.clone(),
                    user_name: user.to_owned(),
                    content_id: c.source.content,
                    from_system: c.source.system,
                    to_system: target.system(),
                    licence_id: new_id.clone(),
                    fee_cents: self.config.fee_cents,
                    way,
                    converted_at: now,
                },
                &charge,
            )
            .await?;
        if !fresh && once_per.is_some() {
            // The same order again: the licence, and no second charge
            // (the bill again, in case it was lost: its key lands it once).
            if bill {
                self.send_bill(user, &charge, &c.source, &new_id, target.system())
                    .await;
            }
            return Ok(c.converted);
        }
        if !fresh {
            return Err(ApiError::new(
                StatusCode::CONFLICT,
                "already_converted",
                format!("licence {} was converted before", c.source.id),
            ));
        }
        if bill {
            self.send_bill(user, &charge, &c.source, &new_id, target.system())
                .await;
        }
        tracing::info!(
            source = %c.source.id, licence = %new_id, user, issuer = %c.source.issuer,
            from = %c.source.system, to = %target.system(), way = way.as_str(),
            "licence converted"
        );
        Ok(c.converted)
    }
}

/// The user calling, by their own token.
async fn user_of(r: &Roaming, headers: &HeaderMap) -> Result<Account, ApiError> {
    match r.auth.principal(&r.store, headers).await? {
        Principal::Box { id, .. } => r
            .store
            .account_by_box(id)
            .await?
            .filter(|a| a.user().is_some())
            .ok_or_else(|| ApiError::forbidden("licences are converted for users")),
        Principal::Admin => Err(ApiError::forbidden(
            "licences are converted for the user they name, with their own token",
        )),
    }
}

/// Converts the licences a user brought (way 1), each into the user's own
/// system or refused with the reason; each converted licence is charged the
/// roaming fee once (a user, with their own token).
#[utoipa::path(post, path = "/roaming/v1/conversions", tag = "roaming", security(("bearer" = [])),
    request_body(content = ConversionRequest,
        description = "1 to 100 signed licences, and the recipient to convert them for (`clearkey`, `age:age1…` or `device:KEY`)."),
    responses(
        (status = 200, description = "Each licence's outcome in request order: the converted licence, or why not \
            (no agreement with its issuer, not the caller's, expired, converted before); `charged_cents` is what was charged.",
            body = Conversions),
        (status = 415, description = "The body is not `application/json`.", body = ErrorBody),
        (status = 422, description = "The body is JSON of the wrong shape.", body = ErrorBody),
        (status = 500, description = "A conversion failed in the server (a licence could not be opened or sealed); \
            the conversions before it in the request were made and charged.", body = ErrorBody),
        (status = 429, description = "A conversion or order of this user is running: one at a time.", body = ErrorBody,
            headers(("Retry-After" = u64, description = "Seconds to wait."))),
        Refusals))]
async fn conversions(
    State(r): State<Arc<Roaming>>,
    headers: HeaderMap,
    body: Result<Json<ConversionRequest>, JsonRejection>,
) -> Result<Response, ApiError> {
    let user = user_of(&r, &headers).await?;
    let _converting = r.busy.admit(user.name.clone())?;
    let Json(req) = body?;
    if req.licences.is_empty() || req.licences.len() > MAX_BATCH {
        return Err(ApiError::bad_request(format!(
            "send 1 to {MAX_BATCH} licences"
        )));
    }
    let target: Recipient = req
        .recipient
        .parse()
        .map_err(|e: ProtectError| ApiError::bad_request(e.to_string()))?;
    let mut out = Vec::with_capacity(req.licences.len());
    for (index, l) in req.licences.iter().enumerate() {
        match r.convert(&user.name, l, &target, ConversionWay::User).await {
            Ok(licence) => out.push(Converted {
                index,
                licence: Some(licence),
                error: None,
            }),
            Err(e) if e.status.is_server_error() => return Err(e),
            Err(e) => out.push(Converted {
                index,
                licence: None,
                error: Some(e.message),
            }),
        }
    }
    let converted = out.iter().filter(|o| o.licence.is_some()).count();
    Ok(Json(Conversions {
        converted,
        charged_cents: converted as i64 * r.config.fee_cents,
        results: out,
    })
    .into_response())
}

/// Most items in one package order.
pub const MAX_ORDER: usize = 20;

impl Roaming {
    /// The partner client of an issuer's origin and the recipient its
    /// licences are asked in (any system it issues will do: the licence
    /// carries this server's roaming copy, which is what the conversion
    /// opens). Looked up once per issuer per order.
    async fn source(
        &self,
        issuer: &str,
    ) -> Result<(tracecast_client::OriginClient, String), String> {
        let source = self
            .config
            .sources
            .iter()
            .find(|s| s.issuer == issuer)
            .ok_or_else(|| format!("{} buys nothing at {issuer:?}", self.name()))?;
        let origin = tracecast_client::OriginClient::new(&source.origin, &source.token)
            .map_err(|e| e.to_string())?;
        let systems = origin
            .licence_issuer()
            .await
            .map_err(|e| format!("{issuer}: {e}"))?
            .systems;
        let own = if systems.contains(&tracecast_protect::System::Clearkey) {
            "clearkey".to_owned()
        } else if systems.contains(&tracecast_protect::System::Device) {
            let (_, public) = tracecast_protect::new_x25519_keypair();
            format!("device:{}", B64.encode(public))
        } else {
            let (_, public) = tracecast_protect::new_age_identity();
            format!("age:{public}")
        };
        Ok((origin, own))
    }

    /// One item of a package order: bought at the issuer's origin for the
    /// user, its licence taken in a system the origin issues and converted
    /// into the user's.
    /// `key`: the item's idempotency key at the origin (the order's key
    /// and the item's place): a retried order buys each item once.
    async fn order_item(
        &self,
        user: &str,
        item: &PackageItem,
        target: &Recipient,
        (origin, own): &(tracecast_client::OriginClient, String),
        key: &str,
    ) -> Result<(tracecast_delivery::api::Purchase, SignedLicence), String> {
        let mut request =
            tracecast_delivery::api::PurchaseRequest::download(item.content, item.tier);
        request.for_user = Some(user.to_owned());
        // A lost answer is asked again with the same key: one purchase.
        let mut tries = 0;
        let purchase = loop {
            tries += 1;
            match origin.order_once(&request, Some(key)).await {
                Err(e) if e.is_transient() && tries < 3 => {
                    tokio::time::sleep(std::time::Duration::from_millis(500)).await;
                }
                other => break other,
            }
        }
        .map_err(|e| format!("buying at {}: {e}", item.issuer))?;
        let licence = origin
            .licence(
                purchase.delivery,
                own,
                Some(user),
                std::time::Duration::ZERO,
            )
            .await
            .map_err(|e| format!("licence for delivery {}: {e}", purchase.delivery))?;
        let converted = self
            .convert_bought(
                user,
                &licence,
                target,
                ConversionWay::Package,
                purchase.price_cents,
                Some(format!("package-{}-{}", item.issuer, purchase.delivery)),
                true,
            )
            .await
            .map_err(|e| e.message)?;
        Ok((purchase, converted))
    }
}

/// A package order (way 2, a user with their own token): each item is
/// bought at its issuer's origin on the user's behalf (the user consented
/// there to this roaming server buying for them) and its licence converted
/// into the user's system; the user is billed here, the price and the fee.
/// The same order sent again with its Idempotency-Key buys and charges
/// nothing more.
#[utoipa::path(post, path = "/roaming/v1/orders", tag = "roaming", security(("bearer" = [])),
    params(("Idempotency-Key" = Option<String>, Header,
        description = "The order's key: sent again with the same key, the order buys and charges nothing more. Without one, each order is new.")),
    request_body(content = PackageOrder,
        description = "1 to 20 items (issuer, content, optional tier), and the recipient to license them for (`clearkey`, `age:age1…` or `device:KEY`)."),
    responses(
        (status = 200, description = "Each item's outcome in order: the purchase (where to fetch the copy marked for the user) \
            and its converted licence, or why not; `charged_cents` is what was billed.",
            body = Package),
        (status = 415, description = "The body is not `application/json`.", body = ErrorBody),
        (status = 422, description = "The body is JSON of the wrong shape.", body = ErrorBody),
        (status = 429, description = "A conversion or order of this user is running: one at a time.", body = ErrorBody,
            headers(("Retry-After" = u64, description = "Seconds to wait."))),
        Refusals))]
async fn orders(
    State(r): State<Arc<Roaming>>,
    headers: HeaderMap,
    body: Result<Json<PackageOrder>, JsonRejection>,
) -> Result<Response, ApiError> {
    let user = user_of(&r, &headers).await?;
    let _ordering = r.busy.admit(user.name.clone())?;
    // The order's Idempotency-Key (the CLI sends one): the same order
    // sent again buys and charges nothing more. Without one, each order
    // is new.
    let order_key = match headers.get("idempotency-key") {
        Some(v) => {
            let k = v
                .to_str()
                .map_err(|_| ApiError::bad_request("Idempotency-Key is not visible ASCII"))?;
            tracecast_mailbox::check_idempotency_key(k)?;
            k.to_owned()
        }
        None => {
            let mut b = [0u8; 12];
            rand::RngCore::fill_bytes(&mut rand::rngs::OsRng, &mut b);
            hex::encode(b)
        }
    };
    let Json(req) = body?;
    if req.items.is_empty() || req.items.len() > MAX_ORDER {
        return Err(ApiError::bad_request(format!(
            "order 1 to {MAX_ORDER} items"
        )));
    }
    let target: Recipient = req
        .recipient
        .parse()
        .map_err(|e: ProtectError| ApiError::bad_request(e.to_string()))?;
    let mut out = Vec::with_capacity(req.items.len());
    let mut sources = std::collections::HashMap::new();
    for (index, item) in req.items.iter().enumerate() {
        if !sources.contains_key(&item.issuer) {
            let found = r.source(&item.issuer).await;
            sources.insert(item.issuer.clone(), found);
        }
        let result = match &sources[&item.issuer] {
            Ok(source) => {
                // Within the user's purchase keys at the origin: the
                // roaming server's, this order's, this item's.
                let key = {
                    use sha2::Digest;
                    let h = sha2::Sha256::digest(format!("{}\n{order_key}\n{index}", r.name()));
                    format!("roaming-{}", hex::encode(&h[..16]))
                };
                r.order_item(&user.name, item, &target, source, &key).await
            }
            Err(e) => Err(e.clone()),
        };
        let (purchase, licence, error) = match result {
            Ok((p, l)) => (Some(p), Some(l), None),
            Err(e) => {
                tracing::warn!(user = %user.name, issuer = %item.issuer, content = item.content, error = %e, "package item refused");
                (None, None, Some(e))
            }
        };
        out.push(Packaged {
            index,
            issuer: item.issuer.clone(),
            content: item.content,
            purchase,
            licence,
            error,
        });
    }
    let done: Vec<_> = out.iter().filter_map(|o| o.purchase.as_ref()).collect();
    let charged: i64 = done
        .iter()
        .map(|p| p.price_cents + r.config.fee_cents)
        .sum();
    Ok(Json(Package {
        ordered: done.len(),
        charged_cents: charged,
        results: out,
    })
    .into_response())
}

/// Converts a licence an issuer issued, at the issuer's request before it
/// delivers (way 3, an issuer in another process): the body is signed
/// whole with the issuer's licence key (no token), and fresh.
#[utoipa::path(post, path = "/roaming/v1/issuer-conversions", tag = "roaming", security(()),
    params(("Tracecast-Issuer-Signature" = String, Header,
        description = "The issuer's Ed25519 signature of the body's exact bytes, base64url without padding.")),
    request_body(content = IssuerRequest, description = "The issuer, its licence, the recipient (`clearkey`, `age:age1…` or `device:KEY`), \
        and when it was signed (Unix seconds, within 5 minutes of the server's time)."),
    responses(
        (status = 200, description = "The converted licence, issued by this roaming server; the user is charged the fee.", body = SignedLicence),
        (status = 400, description = "The body is not such a request, the recipient is malformed, or the licence is malformed or of an unsupported system.", body = ErrorBody),
        (status = 401, description = "No signature, or one that is not base64url of an Ed25519 signature.", body = ErrorBody),
        (status = 403, description = "No roaming agreement with the issuer, the signature does not verify, the request is stale, \
            or the agreement's rules refuse the licence (not the issuer's, expired…).", body = ErrorBody),
        (status = 409, description = "This licence was converted before; nothing was charged.", body = ErrorBody),
        (status = 500, description = "The conversion failed in the server.", body = ErrorBody),
        (status = 503, description = "The store is unavailable; nothing was changed; retry.", body = ErrorBody)))]
async fn issuer_conversions(
    State(r): State<Arc<Roaming>>,
    headers: HeaderMap,
    body: axum::body::Bytes,
) -> Result<Response, ApiError> {
    let req: IssuerRequest = serde_json::from_slice(&body)
        .map_err(|e| ApiError::bad_request(format!("malformed request: {e}")))?;
    let agreement = r
        .config
        .agreements
        .iter()
        .find(|a| a.issuer == req.issuer)
        .ok_or_else(|| {
            ApiError::forbidden(format!("no roaming agreement with {:?}", req.issuer))
        })?;
    let sig = headers
        .get(ISSUER_SIGNATURE)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| B64.decode(v).ok())
        .and_then(|b| ed25519_dalek::Signature::from_slice(&b).ok())
        .ok_or_else(|| ApiError::unauthorized(format!("a signed request ({ISSUER_SIGNATURE})")))?;
    agreement
        .signing
        .verify_strict(&body, &sig)
        .map_err(|_| ApiError::forbidden("the issuer's signature does not verify"))?;
    let now = tracecast_store::now_ms() / 1000;
    // abs_diff: a signed `at` near i64::MIN must not overflow the check.
    if req.at.abs_diff(now) > ISSUER_SKEW_SECS.unsigned_abs() {
        return Err(ApiError::forbidden("the request is stale: sign it afresh"));
    }
    let target: Recipient = req
        .recipient
        .parse()
        .map_err(|e: ProtectError| ApiError::bad_request(e.to_string()))?;
    let lic = req
        .licence
        .verify_signature(
            &tracecast_protect::Trusted::new().with(agreement.issuer.clone(), agreement.signing),
        )
        .map_err(refused)?;
    let converted = r
        .convert_for_remote_issuer(&lic.user, &req.licence, &target)
        .await?;
    Ok(Json(converted).into_response())
}

/// What an issuer needs to make an agreement, and players to trust
/// converted licences; anyone may ask.
#[utoipa::path(get, path = "/roaming/v1/keys", tag = "roaming", security(()),
    responses((status = 200, description = "The server's name, its licence-signing key, its agreement key and its fee.", body = RoamingKeys)))]
async fn keys(State(r): State<Arc<Roaming>>) -> Json<RoamingKeys> {
    Json(RoamingKeys {
        name: r.name().to_owned(),
        signing_key: B64.encode(r.verifying_key().as_bytes()),
        agreement_key: B64.encode(r.agreement_key()),
        fee_cents: r.config.fee_cents,
    })
}

pub fn router(r: Arc<Roaming>) -> Router {
    Router::new()
        .route("/roaming/v1/keys", get(keys))
        .route("/roaming/v1/conversions", post(conversions))
        .route("/roaming/v1/orders", post(orders))
        .route("/roaming/v1/issuer-conversions", post(issuer_conversions))
        // Each takes a list the caller sizes (licences, package items).
        .layer(axum::extract::DefaultBodyLimit::max(
            crate::budget::JSON_LIST_BODY,
        ))
        .with_state(r)
        .merge(crate::openapi::router(crate::openapi::RoleApi::Roaming))
}

/// The roaming role's contract (`/openapi/roaming.json`, docs/openapi/roaming.json).
#[derive(utoipa::OpenApi)]
#[openapi(
    info(description = "A roaming server (DESIGN.md \"002\"): it converts a licence of one protection system into the user's own, \
        for issuers it has a roaming agreement with, recording each conversion once and charging its fee in the ledger. \
        A user converts licences they hold (`POST /roaming/v1/conversions`) or gives a package order the server buys for them \
        (`POST /roaming/v1/orders`), with their own account token (`Authorization: Bearer <token>`). An issuer in another \
        process asks for a conversion before it delivers (`POST /roaming/v1/issuer-conversions`) with the body signed by its \
        licence key in `Tracecast-Issuer-Signature`. `GET /roaming/v1/keys` is public. \
        Errors are JSON `{\"error\": code, \"message\": text}`; a 503 changed nothing and may be retried."),
    paths(keys, conversions, orders, issuer_conversions),
    tags((name = "roaming", description = "Licence conversion and package orders"))
)]
pub struct Api;
