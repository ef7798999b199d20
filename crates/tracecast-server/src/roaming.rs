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
//! 2. an issuer that sees the user's system is one it does not issue asks
//!    before delivering ([`Roaming::convert`], in process).

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
use tracecast_protect::{Agreement, Issuer, ProtectError, Recipient, RoamingServer, SignedLicence};
use tracecast_store::{AccountKind, ConversionRecord, Principal, Store};

use crate::auth::Authenticator;
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
}

/// The running roaming server.
pub struct Roaming {
    rules: RoamingServer,
    store: Store,
    auth: Authenticator,
    config: RoamingConfig,
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

/// How a conversion came.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Way {
    /// The user brought the licence.
    User,
    /// The issuer asked before delivering.
    Issuer,
}

impl Way {
    fn as_str(self) -> &'static str {
        match self {
            Way::User => "user",
            Way::Issuer => "issuer",
        }
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
        }))
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
        way: Way,
    ) -> Result<SignedLicence, ApiError> {
        let now = tracecast_store::now_ms() / 1000;
        let c = self
            .rules
            .convert(source, user, target, now)
            .map_err(refused)?;
        let new_id = c.licence.id.clone();
        let mut charge = Transaction::new(format!("roaming-{}", c.source.id), None);
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
        let fresh = self
            .store
            .record_conversion(
                &ConversionRecord {
                    source_id: c.source.id.clone(),
                    issuer: c.source.issuer.clone(),
                    user_name: user.to_owned(),
                    content_id: c.source.content,
                    from_system: c.source.system.to_string(),
                    to_system: target.system().to_string(),
                    licence_id: new_id.clone(),
                    fee_cents: self.config.fee_cents,
                    way: way.as_str().into(),
                    converted_at: now,
                },
                &charge,
            )
            .await?;
        if !fresh {
            return Err(ApiError::new(
                StatusCode::CONFLICT,
                "already_converted",
                format!("licence {} was converted before", c.source.id),
            ));
        }
        tracing::info!(
            source = %c.source.id, licence = %new_id, user, issuer = %c.source.issuer,
            from = %c.source.system, to = %target.system(), way = way.as_str(),
            "licence converted"
        );
        Ok(c.converted)
    }
}

#[derive(Debug, Deserialize)]
struct ConvertRequest {
    licences: Vec<SignedLicence>,
    /// `clearkey`, `age:age1…` or `device:KEY`.
    recipient: String,
}

/// One licence's outcome in a batch.
#[derive(Debug, Serialize)]
struct Outcome {
    index: usize,
    #[serde(skip_serializing_if = "Option::is_none")]
    licence: Option<SignedLicence>,
    #[serde(skip_serializing_if = "Option::is_none")]
    error: Option<String>,
}

/// `POST /roaming/v1/conversions` (a user): the licences they brought, each
/// converted into their system or refused with the reason.
async fn conversions(
    State(r): State<Arc<Roaming>>,
    headers: HeaderMap,
    body: Result<Json<ConvertRequest>, JsonRejection>,
) -> Result<Response, ApiError> {
    let user = match r.auth.principal(&r.store, &headers).await? {
        Principal::Box { id, .. } => r
            .store
            .account_by_box(id)
            .await?
            .filter(|a| a.kind == AccountKind::User)
            .ok_or_else(|| ApiError::forbidden("licences are converted for users"))?,
        Principal::Admin => {
            return Err(ApiError::forbidden(
                "licences are converted for the user they name, with their own token",
            ))
        }
    };
    let Json(req) = body.map_err(|e| ApiError::new(e.status(), "bad_body", e.body_text()))?;
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
        match r.convert(&user.name, l, &target, Way::User).await {
            Ok(licence) => out.push(Outcome {
                index,
                licence: Some(licence),
                error: None,
            }),
            Err(e) if e.status.is_server_error() => return Err(e),
            Err(e) => out.push(Outcome {
                index,
                licence: None,
                error: Some(e.message),
            }),
        }
    }
    let converted = out.iter().filter(|o| o.licence.is_some()).count();
    Ok(Json(serde_json::json!({
        "converted": converted,
        "charged_cents": converted as i64 * r.config.fee_cents,
        "results": out,
    }))
    .into_response())
}

/// `GET /roaming/v1/keys`: what an issuer needs to make an agreement, and
/// players to trust converted licences.
async fn keys(State(r): State<Arc<Roaming>>) -> Json<serde_json::Value> {
    Json(serde_json::json!({
        "name": r.name(),
        "signing_key": B64.encode(r.verifying_key().as_bytes()),
        "agreement_key": B64.encode(r.agreement_key()),
        "fee_cents": r.config.fee_cents,
    }))
}

pub fn router(r: Arc<Roaming>) -> Router {
    Router::new()
        .route("/roaming/v1/keys", get(keys))
        .route("/roaming/v1/conversions", post(conversions))
        .with_state(r)
}
