//! Protected content at the origin (DESIGN.md "002"): each protected
//! rendition's content key (made on first need, kept sealed under a key
//! derived from the origin's signing key), handed to edges over their
//! authenticated link so they encrypt marked copies, and licences issued to
//! the buyer for their own protection system, each recorded without its
//! key.

use std::sync::Arc;

use axum::extract::rejection::JsonRejection;
use axum::extract::{Path, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::Json;
use base64::Engine;
use tracecast_delivery::{DeliveryStatus, Tier};
use tracecast_protect::api::{LicenceIssuer, PublishedKey};
use tracecast_protect::{ContentKey, Grant, KeyId, Recipient, Rights};
use tracecast_store::LicenceRecord;

use super::Origin;
use crate::openapi::{ErrorBody, Refusals};
use crate::ApiError;

/// The name licences are issued under unless `licences.issuer` names
/// another (each issuer a roaming server has agreements with needs its own).
pub const ISSUER: &str = "origin";

/// A roaming server in another process this origin has an agreement with:
/// its licences carry a copy of the key for it, and players trust the
/// licences it converts.
#[derive(Debug, Clone)]
pub struct RoamingPartner {
    pub name: String,
    pub signing: ed25519_dalek::VerifyingKey,
    pub agreement_key: [u8; 32],
    /// Its URL: with it, this origin has the partner convert licences for
    /// systems it does not issue before answering them (way 3).
    pub url: Option<String>,
}

/// The X25519 key of this origin's roaming agreements, derived from its
/// signing key (HKDF-SHA256, its own label).
pub fn agreement_secret(signing: &ed25519_dalek::SigningKey) -> [u8; 32] {
    use sha2::Sha256;
    let mut out = [0u8; 32];
    hkdf::Hkdf::<Sha256>::new(
        Some(b"tracecast origin roaming agreement/1"),
        signing.as_bytes(),
    )
    .expand(b"x25519", &mut out)
    .expect("32 bytes is a valid HKDF length");
    out
}

/// What a roaming server needs to make an agreement with this origin.
pub fn agreement(
    issuer: &str,
    signing: &ed25519_dalek::SigningKey,
) -> tracecast_protect::Agreement {
    tracecast_protect::Agreement {
        issuer: issuer.into(),
        signing: signing.verifying_key(),
        agreement_public: tracecast_protect::x25519_public(&agreement_secret(signing))
            .expect("a derived key is a valid secret"),
    }
}

fn place(content: i64, tier: Tier, key_id: &str) -> String {
    format!("content {content} {tier} {key_id}")
}

impl Origin {
    /// A protected rendition's key id and key, made on first need.
    pub(super) async fn rendition_key(
        &self,
        content: i64,
        tier: Tier,
    ) -> Result<(KeyId, ContentKey), ApiError> {
        let kept = match self.store.content_key(content, tier).await? {
            Some(k) => k,
            None => {
                let kid = KeyId::generate();
                let key = ContentKey::generate();
                let sealed = self
                    .keywrap
                    .seal(&key, &place(content, tier, &kid.to_string()));
                self.store
                    .add_content_key(content, tier, &kid.to_string(), &sealed)
                    .await?
            }
        };
        let (kid, sealed) = (kept.key_id, kept.sealed_key);
        let broken = |e: tracecast_protect::ProtectError| {
            tracing::error!(content, %tier, error = %e, "a content key does not open");
            ApiError::new(
                StatusCode::INTERNAL_SERVER_ERROR,
                "key_unavailable",
                "this rendition's key cannot be opened",
            )
        };
        let key = self
            .keywrap
            .open(&sealed, &place(content, tier, &kid))
            .map_err(broken)?;
        Ok((kid.parse().map_err(broken)?, key))
    }

    /// The key id and key of one delivery's copy of a protected rendition.
    pub(super) async fn copy_key(
        &self,
        content: i64,
        tier: Tier,
        delivery: i64,
    ) -> Result<(KeyId, ContentKey), ApiError> {
        let (_, rendition) = self.rendition_key(content, tier).await?;
        Ok(rendition.for_copy(delivery))
    }
}

/// The key a protected delivery's copy is encrypted under (the delivery's edge).
///
/// Each copy has its own key, derived from the rendition's
/// (`ContentKey::for_copy`), so an edge learns only the keys of copies it
/// makes, and a licence opens one copy.
#[utoipa::path(get, path = "/v1/deliveries/{id}/key", tag = "edges", security(("bearer" = [])),
    params(("id" = i64, Path, description = "The delivery.")),
    responses(
        (status = 200, description = "The copy's key id and key (base64url).", body = tracecast_delivery::api::CopyKey),
        (status = 404, description = "No protected delivery of that id for this edge.", body = ErrorBody),
        (status = 410, description = "The delivery was replaced or is settled: no copy is made for it.", body = ErrorBody),
        (status = 500, description = "The rendition's key cannot be opened (a fault of the origin).", body = ErrorBody),
        Refusals))]
pub(super) async fn copy_key(
    State(o): State<Arc<Origin>>,
    headers: HeaderMap,
    Path(id): Path<i64>,
) -> Result<Response, ApiError> {
    let caller = o.caller(&headers).await?;
    let (edge, _) = caller.edge()?;
    let unknown = || {
        ApiError::new(
            StatusCode::NOT_FOUND,
            "unknown_delivery",
            format!("no protected delivery {id} for this edge"),
        )
    };
    let d = o
        .store
        .delivery(id)
        .await?
        .filter(|d| d.edge_id == edge)
        .ok_or_else(unknown)?;
    // A delivery being replaced (or replaced) gets no new copy.
    if d.replaced_by.is_some() || !d.status.is_open() {
        return Err(ApiError::new(
            StatusCode::GONE,
            "replaced",
            format!("delivery {id} was replaced: no copy is made for it"),
        ));
    }
    let c = o.content_or_404(d.content_id).await?;
    if !c.protected {
        return Err(unknown());
    }
    let (kid, key) = o.copy_key(c.id, d.tier, d.id).await?;
    Ok(Json(tracecast_delivery::api::CopyKey {
        key_id: kid.to_string(),
        key: base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(key.as_bytes()),
    })
    .into_response())
}

/// The licences issued to the caller, oldest first (users).
///
/// What was granted, never the keys.
#[utoipa::path(get, path = "/v1/licences", tag = "licences", security(("bearer" = [])),
    responses((status = 200, description = "The caller's licences.", body = Vec<tracecast_protect::api::IssuedLicence>), Refusals))]
pub(super) async fn list(
    State(o): State<Arc<Origin>>,
    headers: HeaderMap,
) -> Result<Response, ApiError> {
    let caller = o.caller(&headers).await?;
    let (me, _) = caller.user()?;
    let issued: Vec<tracecast_protect::api::IssuedLicence> = o
        .store
        .licences_of(me)
        .await?
        .into_iter()
        .map(|l| tracecast_protect::api::IssuedLicence {
            id: l.id,
            delivery_id: l.delivery_id,
            content_id: l.content_id,
            key_id: l.key_id,
            system: l.system,
            issued_at: l.issued_at,
            not_after: l.not_after,
        })
        .collect();
    Ok(Json(issued).into_response())
}

/// A licence for a protected delivery, in the buyer's protection system (the buyer, or the partner that bought it).
///
/// The licence opens that buyer's copy only; one for a system this origin
/// does not issue is converted by its roaming server first.
#[utoipa::path(post, path = "/v1/licences", tag = "licences", security(("bearer" = [])),
    request_body = tracecast_protect::api::LicenceRequest,
    responses(
        (status = 201, description = "The signed licence.", body = tracecast_protect::SignedLicence),
        (status = 404, description = "No such delivery of the buyer's, no such content, or (a partner's request) no such user.", body = ErrorBody),
        (status = 409, description = "The delivery is not settled yet (its copy is not made and billed); retry in a few seconds.", body = ErrorBody),
        (status = 410, description = "The delivery is replaced, refunded or superseded, or its rental has ended: no licence.", body = ErrorBody),
        (status = 415, description = "The body is not JSON.", body = ErrorBody),
        (status = 422, description = "The body is JSON of the wrong shape, or the recipient's system is one this origin does not issue and has no roaming server for.", body = ErrorBody),
        (status = 500, description = "The rendition's key cannot be opened, or the conversion failed (a fault of the servers).", body = ErrorBody),
        (status = 502, description = "The roaming server did not convert the licence.", body = ErrorBody),
        Refusals))]
pub(super) async fn issue(
    State(o): State<Arc<Origin>>,
    headers: HeaderMap,
    body: Result<Json<tracecast_protect::api::LicenceRequest>, JsonRejection>,
) -> Result<Response, ApiError> {
    let caller = o.caller(&headers).await?;
    let Json(req) = body?;
    let buyer = super::partners::buyer(&o, &caller, req.for_user.as_deref()).await?;
    let me = buyer.user.clone();
    let me_id = buyer.user_id;
    let recipient: Recipient = req
        .recipient
        .parse()
        .map_err(|e: tracecast_protect::ProtectError| ApiError::bad_request(e.to_string()))?;
    let d = o
        .store
        .delivery(req.delivery)
        .await?
        .filter(|d| d.user_id == me_id)
        .ok_or_else(|| {
            ApiError::new(
                StatusCode::NOT_FOUND,
                "unknown_delivery",
                format!("you have no delivery {}", req.delivery),
            )
        })?;
    // A partner has licences for the copies it bought, and no other.
    let paid_by = d.order_info.payer.clone();
    if buyer.partner.is_some() && paid_by != buyer.payer() {
        return Err(ApiError::forbidden(format!(
            "delivery {} was not bought by you",
            d.id
        )));
    }
    let c = o.content_or_404(d.content_id).await?;
    if !c.protected {
        return Err(ApiError::bad_request(format!(
            "content {} is not protected: its copies need no licence",
            c.id
        )));
    }
    // As at purchase: a suspended member receives nothing more.
    if o.store
        .member(me_id)
        .await?
        .is_some_and(|m| m.status != tracecast_members::Status::Active)
    {
        return Err(ApiError::forbidden(
            "your membership is suspended: a copy delivered to you was found leaked",
        ));
    }
    settled(&d, paid_by.is_some())?;
    // The copy's own key: this licence opens this buyer's copy only.
    let (kid, key) = o.copy_key(c.id, d.tier, d.id).await?;
    let now = tracecast_store::now_ms() / 1000;
    // A rental's licence ends with the rental.
    let rental_until = d.order_info.until;
    let not_after = rental_until.map_or(now + o.config.licence_secs, |u| {
        u.min(now + o.config.licence_secs)
    });
    if not_after <= now {
        return Err(ApiError::new(
            StatusCode::GONE,
            "ended",
            "the rental has ended: no licence",
        ));
    }
    let grant = Grant {
        user: &me.name,
        content: c.id,
        key_id: kid,
        rights: Rights {
            not_before: now - 60,
            not_after,
        },
        now,
    };
    // A system this origin does not issue: a licence in its own first
    // system, converted by the roaming server before it is delivered.
    let native = o.config.native_systems.contains(&recipient.system());
    let own = if native {
        recipient.clone()
    } else {
        let converter = o.config.roaming.is_some()
            || o.config
                .roaming_partner
                .as_ref()
                .is_some_and(|p| p.url.is_some());
        match (o.config.native_systems.first(), converter) {
            (Some(tracecast_protect::System::Clearkey), true) => Recipient::Clearkey,
            _ => {
                return Err(ApiError::new(
                    StatusCode::UNPROCESSABLE_ENTITY,
                    "unsupported_system",
                    format!(
                        "this origin issues {} licences and has no roaming server for {}",
                        o.config
                            .native_systems
                            .iter()
                            .map(|s| s.as_str())
                            .collect::<Vec<_>>()
                            .join(", "),
                        recipient.system()
                    ),
                ))
            }
        }
    };
    let (licence, mut signed) = o
        .licence_issuer
        .issue_licence(&grant, &key, &own, o.roaming_agreement.as_ref())
        .map_err(|e| ApiError::bad_request(e.to_string()))?;
    let id = licence.id;
    o.store
        .record_licence(&LicenceRecord {
            id: id.clone(),
            delivery_id: d.id,
            user_id: me_id,
            content_id: c.id,
            key_id: kid.to_string(),
            system: recipient.system(),
            issued_at: now,
            not_after,
        })
        .await?;
    if !native {
        signed = match (&o.config.roaming, &o.config.roaming_partner) {
            (Some(roaming), _) => {
                roaming
                    .convert(
                        &me.name,
                        &signed,
                        &recipient,
                        tracecast_protect::ConversionWay::Issuer,
                    )
                    .await?
            }
            (None, Some(partner)) => {
                convert_remote(&o, partner, signed, &req.recipient, now).await?
            }
            (None, None) => unreachable!("checked above"),
        };
    }
    tracing::info!(licence = %id, delivery = d.id, user = %me.name, system = %recipient.system(), native, "licence issued");
    Ok((StatusCode::CREATED, Json(signed)).into_response())
}

/// Refuses a licence for a delivery that is not live and paid for: one
/// replaced (or being replaced: its copy is revoked), refunded or
/// superseded; and, bought by the user, one whose sale is not in the
/// ledger yet (its edge's report has not been applied: retry shortly). A
/// partner's order is paid when it is placed (its consent was spent).
fn settled(d: &tracecast_store::DeliveryRecord, partner_paid: bool) -> Result<(), ApiError> {
    if d.replaced_by.is_some() || !d.status.is_open() {
        return Err(ApiError::new(
            StatusCode::GONE,
            "not_live",
            format!(
                "delivery {} is {}: it carries no licence",
                d.id,
                if d.replaced_by.is_some() {
                    "replaced".to_owned()
                } else {
                    d.status.to_string()
                }
            ),
        ));
    }
    if partner_paid {
        return Ok(());
    }
    // `marked` is written with the sale in one transaction (the report's
    // apply_once), so a marked delivery is a billed one.
    if d.status != DeliveryStatus::Marked {
        return Err(ApiError::new(
            StatusCode::CONFLICT,
            "not_settled",
            format!(
                "delivery {} is not settled yet: a licence follows once its copy is made and billed (retry in a few seconds)",
                d.id
            ),
        ));
    }
    Ok(())
}

/// Has the roaming server in another process convert a licence this
/// origin just issued (way 3), signing the request with the licence key.
async fn convert_remote(
    o: &Origin,
    partner: &RoamingPartner,
    licence: tracecast_protect::SignedLicence,
    recipient: &str,
    now: i64,
) -> Result<tracecast_protect::SignedLicence, ApiError> {
    let url = partner.url.as_deref().unwrap_or_default();
    let request = crate::roaming::IssuerRequest {
        issuer: o.config.issuer.clone(),
        licence,
        recipient: recipient.to_owned(),
        at: now,
    };
    let (body, signature) = request.sign(&o.signing);
    let unavailable = |why: String| {
        tracing::warn!(roaming = %partner.name, error = %why, "the roaming server did not convert");
        ApiError::new(
            StatusCode::BAD_GATEWAY,
            "roaming_unavailable",
            format!(
                "the roaming server {} did not convert the licence: {why}",
                partner.name
            ),
        )
    };
    let answer = o
        .http
        .post(format!(
            "{}/roaming/v1/issuer-conversions",
            url.trim_end_matches('/')
        ))
        .header(reqwest::header::CONTENT_TYPE, "application/json")
        .header(crate::roaming::ISSUER_SIGNATURE, signature)
        .body(body)
        .send()
        .await
        .map_err(|e| unavailable(e.to_string()))?;
    let status = answer.status();
    let bytes = answer
        .bytes()
        .await
        .map_err(|e| unavailable(e.to_string()))?;
    if !status.is_success() {
        return Err(unavailable(format!(
            "{status}: {}",
            String::from_utf8_lossy(&bytes[..bytes.len().min(300)])
        )));
    }
    let converted =
        tracecast_protect::SignedLicence::parse(&bytes).map_err(|e| unavailable(e.to_string()))?;
    // Only a licence the partner signed goes to the user.
    converted
        .verify_signature(
            &tracecast_protect::Trusted::new().with(partner.name.clone(), partner.signing),
        )
        .map_err(|e| unavailable(e.to_string()))?;
    Ok(converted)
}

/// Who signs the origin's licences, in which systems, and its roaming server (any token).
///
/// Players verify licences with these keys.
#[utoipa::path(get, path = "/v1/licences/issuer", tag = "licences", security(("bearer" = [])),
    responses((status = 200, description = "The issuer's keys and systems.", body = LicenceIssuer), Refusals))]
pub(super) async fn issuer(
    State(o): State<Arc<Origin>>,
    headers: HeaderMap,
) -> Result<Response, ApiError> {
    o.caller(&headers).await?;
    let b64 = base64::engine::general_purpose::URL_SAFE_NO_PAD;
    let key = o.licence_issuer.verifying_key();
    let partner = match (&o.config.roaming, &o.config.roaming_partner) {
        (Some(r), _) => Some((r.name().to_owned(), r.verifying_key())),
        (None, Some(p)) => Some((p.name.clone(), p.signing)),
        (None, None) => None,
    };
    let published = |name: String, key: &ed25519_dalek::VerifyingKey| PublishedKey {
        name,
        key: b64.encode(key.as_bytes()),
        fingerprint: tracecast_protect::fingerprint(key),
    };
    Ok(Json(LicenceIssuer {
        signer: published(o.config.issuer.clone(), &key),
        agreement_key: b64.encode(agreement(&o.config.issuer, &o.signing).agreement_public),
        systems: o.config.native_systems.clone(),
        roaming: partner.map(|(name, key)| published(name, &key)),
    })
    .into_response())
}
