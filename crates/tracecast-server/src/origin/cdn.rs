//! Purchases delivered through a CDN (DASH-IF's server-side A/B
//! watermarking): the origin decides the purchase as any other, then,
//! instead of a ticket for one of its edges, computes the buyer's A/B
//! sequence and signs it into a watermarking token (`tracecast_delivery::wmt`)
//! that a CDN edge verifies with the origin's public key and serves the
//! copy by (`deploy/cdn/`: nginx with njs). The CDN is registered as an
//! edge account: its id is in every mark it serves, its operator is paid
//! the edge's fee.
//!
//! No edge of the origin's sees such a copy leave, so nothing will report
//! it: the sale is recorded and billed when the token is issued (once per
//! delivery; a retry under the same Idempotency-Key gets a fresh token for
//! the same, already paid, copy).

use std::sync::Arc;

use axum::http::StatusCode;
use sha2::{Digest, Sha256};
use tracecast_delivery::api::{CdnCopy, PurchaseRequest};
use tracecast_delivery::wmt::{CopyForm, CopyPath, WmtClaims, WmtKey};
use tracecast_delivery::Tier;
use tracecast_mark::Payload;
use tracecast_store::{AbVariantsRecord, ContentRecord, DeliveryRecord, UserId};

use super::{blob_error, reports, Origin};
use crate::ApiError;

/// The origin's CDN.
#[derive(Clone)]
pub struct CdnConfig {
    /// The edge account the CDN is registered as.
    pub edge: String,
    /// The base URL copies are served under (`{url}/{content}/{tier}/{delivery}.flac`).
    pub url: String,
    /// Signs the tokens (ES256); its public half is in `GET /v1/origin`.
    pub key: Arc<WmtKey>,
    /// How long a token opens its copy.
    pub token_secs: i64,
}

impl std::fmt::Debug for CdnConfig {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("CdnConfig")
            .field("edge", &self.edge)
            .field("url", &self.url)
            .field("key", &self.key)
            .finish_non_exhaustive()
    }
}

fn refused(code: &'static str, why: impl Into<String>) -> ApiError {
    ApiError::new(StatusCode::UNPROCESSABLE_ENTITY, code, why.into())
}

/// What a CDN cannot deliver is refused before anything is decided: a
/// CDN serves a download of unprotected A/B audio, and nothing else.
pub(super) fn check_request(
    o: &Origin,
    req: &PurchaseRequest,
    c: &ContentRecord,
) -> Result<(), ApiError> {
    if o.config.cdn.is_none() {
        return Err(refused("no_cdn", "this origin delivers through no CDN"));
    }
    if req.home.is_some() || req.kiosk.is_some() || req.rent || req.disc.is_some() {
        return Err(refused(
            "cdn_download_only",
            "a CDN delivers downloads: buy without cdn for a home, rental or kiosk",
        ));
    }
    // A CDN copy cannot be revoked, so it never replaces another (whose
    // refund depends on the copy not having left) nor is replaced.
    if req.replaces.is_some() {
        return Err(refused(
            "cdn_no_replacement",
            "a CDN copy cannot replace another delivery",
        ));
    }
    if c.protected {
        return Err(refused(
            "cdn_unprotected_only",
            "protected content is encrypted per copy by an edge of the origin's; buy without cdn",
        ));
    }
    Ok(())
}

/// The rendition's FLAC A/B variants, which a CDN serves copies from.
pub(super) async fn variants(
    o: &Origin,
    c: &ContentRecord,
    tier: Tier,
) -> Result<AbVariantsRecord, ApiError> {
    o.store
        .ab_variants(c.id)
        .await?
        .into_iter()
        .find(|v| v.tier == tier && v.flac.is_some())
        .ok_or_else(|| {
            refused(
                "cdn_not_ab",
                format!(
                    "content {} has no FLAC A/B variants of its {tier} rendition: only those go through a CDN",
                    c.id
                ),
            )
        })
}

/// The best tier of a content that has FLAC A/B variants (none: the
/// purchase is refused when its tier is decided).
pub(super) async fn variant_tier(o: &Origin, c: &ContentRecord) -> Result<Option<Tier>, ApiError> {
    let with_variants: Vec<Tier> = o
        .store
        .ab_variants(c.id)
        .await?
        .into_iter()
        .filter(|v| v.flac.is_some())
        .map(|v| v.tier)
        .collect();
    // The content's tiers, best first.
    Ok(c.kind
        .tiers()
        .iter()
        .copied()
        .find(|t| with_variants.contains(t)))
}

/// The CDN as the one edge a purchase through it may be designated to:
/// always there and holding the content (a CDN is not a process that
/// reports in; what it serves is published to it beforehand).
pub(super) async fn edge(o: &Origin) -> Result<Vec<tracecast_purchase::Edge>, ApiError> {
    let cdn = o.config.cdn.as_ref().expect("checked by check_request");
    let e = o
        .store
        .edges()
        .await?
        .into_iter()
        .find(|e| e.name == cdn.edge)
        .ok_or_else(|| {
            ApiError::new(
                StatusCode::SERVICE_UNAVAILABLE,
                "cdn_edge_missing",
                format!(
                    "the CDN's edge account {:?} is not registered (tracecast account add --kind edge)",
                    cdn.edge
                ),
            )
        })?;
    Ok(vec![tracecast_purchase::Edge {
        id: e.id.get(),
        name: e.name,
        address: cdn.url.clone(),
        fee_cents: e.fee_cents,
        last_seen: Some(tracecast_store::now_ms()),
        holds: true,
        load: 0,
        push_key: None,
        region: None,
        // The origin's operator configured the CDN for every provider.
        open: true,
        contract_fee_cents: None,
    }])
}

/// Settles the sale (once) and signs the token for the buyer's copy.
pub(super) async fn issue(
    o: &Origin,
    v: &AbVariantsRecord,
    c: &ContentRecord,
    d: &DeliveryRecord,
    user: UserId,
) -> Result<CdnCopy, ApiError> {
    let cdn = o.config.cdn.as_ref().expect("checked by check_request");
    let info = super::ingest::ab_info(v);
    let flac = info.flac.clone().expect("variants() takes FLAC ones only");
    let index_key = &v.flac.as_ref().expect("FLAC").index_blob_key;
    let index = o.blobs.get(index_key).await.map_err(blob_error)?;
    if hex::encode(Sha256::digest(&index)) != flac.index_sha256 {
        return Err(ApiError::new(
            StatusCode::INTERNAL_SERVER_ERROR,
            "internal",
            "a frame index does not match its recorded hash",
        ));
    }
    let frames = tracecast_delivery::ab::FlacFrames::decode(&index, &flac)
        .map_err(|e| ApiError::new(StatusCode::INTERNAL_SERVER_ERROR, "internal", e.to_string()))?;
    let payload = Payload {
        content_server: u16::try_from(c.provider_id.get())
            .map_err(|_| ApiError::bad_request("provider id out of range"))?,
        edge: u16::try_from(d.edge_id.get())
            .map_err(|_| ApiError::bad_request("edge id out of range"))?,
        home: 0,
        user: u32::try_from(user.get())
            .map_err(|_| ApiError::bad_request("user id out of the mark's range"))?,
    };
    let key = o.mark_key.clone();
    let (content, units) = (c.id, v.units as usize);
    let sequence = crate::on_worker(&o.work, move || {
        tracecast_mark::fingerprint::Scheme::for_content(&key, content as u64, units).sequence(
            u64::from(payload.user),
            &payload,
            &key,
        )
    })
    .await?;
    let pieces = frames
        .pieces(&sequence)
        .map_err(|e| ApiError::new(StatusCode::INTERNAL_SERVER_ERROR, "internal", e.to_string()))?;
    let bytes = tracecast_delivery::ab::copy_len(&pieces);
    // Every buyer's MP3 form is the variants' length: frames of the same
    // sizes at the same offsets in both.
    let mp3 = info.mp3.as_ref();
    reports::settle_cdn(o, d.id, bytes).await?;
    let now = super::now_secs();
    let expires = now + cdn.token_secs;
    let claims = WmtClaims::for_copy(
        d.id,
        c.id,
        v.tier,
        &flac.index_sha256,
        mp3.map(|m| m.index_sha256.as_str()),
        &sequence,
        now,
        expires,
    );
    let token = cdn
        .key
        .sign(&claims, &ring::rand::SystemRandom::new())
        .map_err(|e| ApiError::new(StatusCode::INTERNAL_SERVER_ERROR, "internal", e.to_string()))?;
    let path = CopyPath {
        content: c.id,
        tier: v.tier,
        delivery: d.id,
        form: CopyForm::Flac,
    };
    let url = |p: CopyPath| format!("{}/{}", cdn.url.trim_end_matches('/'), p.render());
    Ok(CdnCopy {
        url: url(path),
        token,
        expires,
        bytes,
        media_type: CopyForm::Flac.media_type().into(),
        mp3: mp3.map(|m| tracecast_delivery::api::CdnForm {
            url: url(CopyPath {
                form: CopyForm::Mp3,
                ..path
            }),
            bytes: m.bytes,
            media_type: CopyForm::Mp3.media_type().into(),
        }),
    })
}
