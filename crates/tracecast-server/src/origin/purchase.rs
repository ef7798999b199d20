//! `POST /v1/purchases`: I/O around one decision. The handler gathers the
//! facts from the store, `tracecast_purchase::plan` decides (every rule is
//! there, tested as a table), then the handler opens the delivery (or
//! finds the one a retry opened), finishes a replacement and signs the
//! ticket. Also the replacement's edge order and refund.

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::sync::Arc;

use axum::extract::rejection::JsonRejection;
use axum::extract::{ConnectInfo, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::Json;
use tracecast_delivery::api::{Purchase, PurchaseRequest};
use tracecast_delivery::{SiteTarget, Ticket, Tier};
use tracecast_purchase::{Earlier, Facts, Plan, Refusal, Replaced, Site, SiteKind, Terms};
use tracecast_store::{
    AccountId, AccountKind, ContentRecord, DeliveryRecord, EdgeLoad, NewDelivery, SiteRecord,
    UserId,
};

use super::{cdn, members, partners, reports, Origin};
use crate::openapi::{ErrorBody, Refusals};
use crate::ApiError;

impl From<Refusal> for ApiError {
    fn from(r: Refusal) -> Self {
        let status = StatusCode::from_u16(r.status()).unwrap_or(StatusCode::BAD_REQUEST);
        let e = ApiError::new(status, r.code(), r.to_string());
        // No edge yet is a passing state (one is starting or reporting its
        // key): say when to ask again, as every other 503 does.
        if status == StatusCode::SERVICE_UNAVAILABLE {
            e.with_retry_after(10)
        } else {
            e
        }
    }
}

impl Origin {
    /// The settings a purchase is decided by.
    fn purchase_terms(&self) -> Terms {
        Terms {
            quality: self.config.members.quality.clone(),
            rental_secs: self.config.rental_secs,
            rental_tariff: self.config.rental_tariff,
            ticket_ttl_secs: self.config.ticket_ttl_secs,
            edge_alive_ms: self.config.edge_alive_ms,
        }
    }
}

/// The facts, with the store's records a retry or a replacement acts on.
struct Gathered<'r> {
    facts: Facts<'r>,
    earlier: Option<DeliveryRecord>,
    replaced: Option<DeliveryRecord>,
}

/// A stored value the store should never hold: a fault of the origin.
fn corrupt(what: impl std::fmt::Display) -> ApiError {
    ApiError::new(
        StatusCode::INTERNAL_SERVER_ERROR,
        "internal",
        format!("stored {what} does not read back"),
    )
}

fn replaced_fact(d: &DeliveryRecord) -> Replaced {
    Replaced {
        id: d.id,
        content: d.content_id,
        tier: d.tier,
        mode: d.mode,
        price_cents: d.price_cents,
        replaced: d.replaced_by.is_some(),
        open: d.status.is_open(),
    }
}

fn site_fact(s: SiteRecord) -> Option<Site> {
    let kind = match s.kind {
        AccountKind::Home => SiteKind::Home,
        AccountKind::Kiosk => SiteKind::Kiosk,
        _ => return None,
    };
    Some(Site {
        id: s.id.get(),
        kind,
        media: s.media,
        name: s.name,
        address: s.address,
        fee_cents: s.fee_cents,
        shipping_cents: s.shipping_cents,
    })
}

fn edge_fact(l: EdgeLoad) -> tracecast_purchase::Edge {
    let open = l.edge.open();
    tracecast_purchase::Edge {
        id: l.edge.id.get(),
        name: l.edge.name,
        address: l.edge.address,
        fee_cents: l.edge.fee_cents,
        last_seen: l.edge.last_seen,
        holds: l.holds,
        load: l.load.max(0) as u64,
        push_key: l.edge.push_key,
        region: l.edge.region.and_then(|r| r.parse().ok()),
        open,
        contract_fee_cents: l.contract_fee_cents,
    }
}

/// How many bytes a copy of each tier is: an A/B video as long as variant
/// A's files, else the rendition.
async fn copy_bytes(o: &Origin, c: &ContentRecord) -> Result<BTreeMap<Tier, u64>, ApiError> {
    if let Some(h) = o.store.hls_variants(c.id).await? {
        let files: BTreeMap<String, (u64, String)> =
            serde_json::from_str(&h.manifest).map_err(|_| corrupt("an HLS manifest"))?;
        let a: u64 = files
            .iter()
            .filter(|(f, _)| f.starts_with("a/"))
            .map(|(_, (n, _))| n)
            .sum();
        return Ok(c.kind.tiers().iter().map(|t| (*t, a)).collect());
    }
    Ok(o.store
        .renditions(c.id)
        .await?
        .into_iter()
        .map(|r| (r.tier, r.bytes.max(0) as u64))
        .collect())
}

/// Reads what the purchase decision needs from the store.
async fn gather<'r>(
    o: &Origin,
    req: &'r PurchaseRequest,
    c: &ContentRecord,
    user: UserId,
    payer: Option<String>,
    key: Option<&str>,
    buyer_region: Option<tracecast_delivery::Region>,
) -> Result<Gathered<'r>, ApiError> {
    let member = o.store.member(user).await?;
    let reserved_request = match (c.reserved_up_to_order, &member) {
        (Some(_), Some(_)) => members::reserved_request(o, user, c.id).await?,
        _ => tracecast_purchase::ReservedRequest::None,
    };
    let site = match req.home.as_deref().or(req.kiosk.as_deref()) {
        Some(name) => o.store.site_by_name(name).await?.and_then(site_fact),
        None => None,
    };
    // A purchase retried with its key (the answer was lost: the origin
    // restarted, the network broke) is the same delivery, never a second;
    // if it was replaced since (its edge failed the buyer), the same key
    // answers the delivery that replaced it.
    let mut earlier = match key {
        Some(k) => o.store.delivery_by_purchase_key(user, k).await?,
        None => None,
    };
    for _ in 0..8 {
        match earlier.as_ref().and_then(|d| d.replaced_by) {
            Some(next) => earlier = o.store.delivery(next).await?,
            None => break,
        }
    }
    let replaced = match (req.replaces, &earlier) {
        (Some(old), None) => o.store.delivery(old).await?.filter(|d| d.user_id == user),
        _ => None,
    };
    let facts = Facts {
        request: req,
        content: tracecast_purchase::Content {
            id: c.id,
            kind: c.kind,
            price_cents: c.price_cents,
            protected: c.protected,
            rental_tariff: c.rental_tariff.clone(),
            reserved_up_to_order: c.reserved_up_to_order,
            // Only a kiosk order asks whether the copy fits its medium:
            // other purchases skip the two reads.
            copy_bytes: match req.kiosk {
                Some(_) => copy_bytes(o, c).await?,
                None => BTreeMap::new(),
            },
        },
        member: member.as_ref().map(members::member_fact),
        reserved_request,
        site,
        payer,
        earlier: earlier.as_ref().map(|d| Earlier {
            id: d.id,
            content: d.content_id,
            tier: d.tier,
            mode: d.mode,
            edge: d.edge_id.get(),
            price_cents: d.price_cents,
        }),
        replaced: replaced.as_ref().map(replaced_fact),
        buyer_region,
        now_ms: tracecast_store::now_ms(),
    };
    Ok(Gathered {
        facts,
        earlier,
        replaced,
    })
}

/// Buys a content: designates an edge and signs the ticket to show it (users, or a partner for a user who consented).
///
/// The copy is marked for the user; it is downloaded from the edge, or
/// goes through a home server (download or rental) or a store's kiosk (a
/// disc). A retry with the same Idempotency-Key answers the same delivery;
/// `replaces` names a delivery of the buyer's whose edge failed them. A 503
/// also answers when no edge can deliver now: retry shortly.
#[utoipa::path(post, path = "/v1/purchases", tag = "deliveries", security(("bearer" = [])),
    params(("Idempotency-Key" = Option<String>, Header, description = "A retried purchase with the same key is the same delivery, never a second.")),
    request_body = PurchaseRequest,
    responses(
        (status = 201, description = "A delivery is opened: the edge and the ticket.", body = Purchase),
        (status = 200, description = "The Idempotency-Key was seen: the delivery opened then (or the one that replaced it).", body = Purchase),
        (status = 402, description = "A partner's order would pass the user's limit for it; nothing was charged.", body = ErrorBody),
        (status = 404, description = "No such content, user (a partner's order), home server or kiosk, or delivery to replace.", body = ErrorBody),
        (status = 409, description = "The Idempotency-Key was used for another purchase, or the delivery to replace was replaced already.", body = ErrorBody),
        (status = 415, description = "The body is not JSON.", body = ErrorBody),
        (status = 422, description = "The body is JSON of the wrong shape; or the kiosk does not sell the medium, the copy does not fit it, or protected content was ordered through a home server or kiosk.", body = ErrorBody),
        (status = 500, description = "A stored record does not read back, or a protected rendition's key cannot be opened (a fault of the origin).", body = ErrorBody),
        Refusals))]
pub(super) async fn purchase(
    State(o): State<Arc<Origin>>,
    ConnectInfo(peer): ConnectInfo<SocketAddr>,
    headers: HeaderMap,
    body: Result<Json<PurchaseRequest>, JsonRejection>,
) -> Result<Response, ApiError> {
    let caller = o.caller(&headers).await?;
    let Json(mut req) = body?;
    let buyer = partners::buyer(&o, &caller, req.for_user.as_deref()).await?;
    let user_id = buyer.user_id;
    let c = o.content_or_404(req.content).await?;
    let key = purchase_key(&headers)?;
    if req.cdn {
        cdn::check_request(&o, &req, &c)?;
        // Through a CDN only the tier with variants can be had: asked for
        // no tier, the buyer asks for that one (their trust still decides
        // whether they may have it).
        if req.tier.is_none() {
            req.tier = cdn::variant_tier(&o, &c).await?;
        }
    }
    // The buyer's region as they named it; else, when they send the
    // purchase themselves (not a partner for them), estimated from the
    // address it came from.
    let buyer_region = req.region.clone().or_else(|| match buyer.payer() {
        None => o.config.regions.estimate(peer.ip()).cloned(),
        Some(_) => None,
    });
    let g = gather(
        &o,
        &req,
        &c,
        user_id,
        buyer.payer(),
        key.as_deref(),
        buyer_region,
    )
    .await?;
    // A CDN copy cannot be revoked (no edge of the origin's holds it), so
    // no purchase replaces one: its revocation would never be answered.
    if g.replaced.as_ref().is_some_and(|d| d.order_info.cdn) {
        return Err(ApiError::new(
            StatusCode::UNPROCESSABLE_ENTITY,
            "cdn_no_replacement",
            "a copy delivered through the CDN cannot be replaced",
        ));
    }
    let terms = o.purchase_terms();
    // The edges' loads are of the tier bought.
    let tier = tracecast_purchase::tier(&g.facts, &terms)?;
    // Through the CDN: the content's FLAC variants of the tier, checked
    // before any delivery is opened; the CDN is the only edge.
    let cdn_variants = match req.cdn {
        true => Some(cdn::variants(&o, &c, tier).await?),
        false => None,
    };
    let edges: Vec<_> = match cdn_variants {
        Some(_) => cdn::edge(&o).await?,
        None => o
            .store
            .edge_loads(
                c.id,
                tier.as_str(),
                g.facts.now_ms - o.config.load_window_ms,
            )
            .await?
            .into_iter()
            .map(edge_fact)
            .collect(),
    };
    let plan = tracecast_purchase::plan(&g.facts, &edges, &terms)?;
    let (d, again) = match g.earlier {
        Some(d) => (d, true),
        // A partner's order spends its consent in the same transaction:
        // two at once under one key spend once.
        None => o
            .store
            .open_delivery_paid(
                &NewDelivery {
                    content_id: c.id,
                    tier: plan.tier,
                    user_id,
                    provider_id: c.provider_id,
                    edge_id: tracecast_store::EdgeId(plan.edge.id),
                    price_cents: plan.price_cents,
                    edge_fee_cents: plan.edge.fee_cents,
                    mode: plan.mode,
                    site_id: plan.site.as_ref().map(|s| tracecast_store::SiteId(s.id)),
                    site_fee_cents: plan.site.as_ref().map_or(0, |s| s.fee_cents),
                    order_info: tracecast_delivery::OrderInfo {
                        cdn: req.cdn,
                        ..plan.order.clone()
                    },
                    purchase_key: key.clone(),
                },
                partners::spender(&buyer),
            )
            .await?
            .map_err(|refused| partners::refusal(&buyer, plan.price_cents, refused))?,
    };
    if again && d.order_info.cdn != req.cdn {
        return Err(ApiError::new(
            StatusCode::CONFLICT,
            "idempotency_key_reused",
            "the Idempotency-Key was used for a purchase through another way of delivery",
        ));
    }
    finish_replacement(&o, &plan, req.replaces, g.replaced, &d, again, user_id).await?;
    let (ticket, cdn_copy) = match &cdn_variants {
        Some(v) => (
            String::new(),
            Some(cdn::issue(&o, v, &c, &d, user_id).await?),
        ),
        None => (sign_ticket(&o, &plan, &c, &d, user_id).await?, None),
    };
    if !again {
        crate::ops::metrics()
            .purchases
            .get_or_create(&crate::ops::metrics::ModeLabels {
                mode: plan.mode.as_str().to_owned(),
            })
            .inc();
    }
    tracing::info!(
        delivery = d.id, content = c.id, tier = %plan.tier, user = %buyer.user.name,
        edge = %plan.edge.name, holds = plan.edge.holds, "designated"
    );
    Ok((
        if again {
            StatusCode::OK
        } else {
            StatusCode::CREATED
        },
        Json(Purchase {
            delivery: d.id,
            content: c.id,
            tier: plan.tier,
            price_cents: plan.price_cents,
            edge_id: plan.edge.id,
            edge_name: plan.edge.name,
            edge_address: plan.edge.address,
            edge_holds: plan.edge.holds,
            ticket,
            ticket_expires: plan.ticket_expires,
            mode: plan.mode,
            site: plan.site.map(|s| s.name),
            rental_tariff: plan.tariff.map(|t| t.to_string()),
            rental_until: plan.rental_until,
            store_total_cents: plan.store_cents.map(|extra| extra + plan.price_cents),
            cdn: cdn_copy,
        }),
    )
        .into_response())
}

/// The replaced delivery is revoked at its edge before any money moves:
/// the edge refuses its ticket and links from now on and says whether its
/// copy had left; only a copy that never left is refunded
/// (reports::apply_revoked). A copy already served stays paid for.
async fn finish_replacement(
    o: &Origin,
    plan: &Plan,
    asked: Option<i64>,
    replaced: Option<DeliveryRecord>,
    d: &DeliveryRecord,
    again: bool,
    user: UserId,
) -> Result<(), ApiError> {
    match (replaced, again, asked) {
        (Some(old), false, _) if plan.replaces == Some(old.id) => replace(o, &old, d.id).await,
        // A replacing purchase retried with its key: the first try may
        // have stopped after opening this delivery (the origin died, the
        // store failed) before the one it replaces was marked or its
        // edge ordered to revoke it. Both are keyed, so finishing is safe.
        (_, true, Some(old)) => match o.store.delivery(old).await? {
            Some(od) if od.user_id == user && od.replaced_by == Some(d.id) => {
                order_revocation(o, &od).await
            }
            // Only the replacement this delivery was opened for (a retry
            // cannot name another of the buyer's deliveries after the
            // fact).
            Some(od)
                if od.user_id == user
                    && od.replaced_by.is_none()
                    && old != d.id
                    && d.order_info.replaces == Some(old) =>
            {
                let fact = replaced_fact(&od);
                if tracecast_purchase::replaceable(
                    old,
                    Some(&fact),
                    d.content_id,
                    plan.tier,
                    plan.mode,
                )
                .is_ok()
                {
                    replace(o, &od, d.id).await?;
                }
                Ok(())
            }
            _ => Ok(()),
        },
        _ => Ok(()),
    }
}

/// The ticket the designated edge takes: signed by the origin.
async fn sign_ticket(
    o: &Origin,
    plan: &Plan,
    c: &ContentRecord,
    d: &DeliveryRecord,
    user: UserId,
) -> Result<String, ApiError> {
    // Protected content: the ticket names the copy's own key (the edge
    // asks for it by delivery).
    let protected = if c.protected {
        Some(o.copy_key(c.id, plan.tier, d.id).await?.0.to_string())
    } else {
        None
    };
    Ok(Ticket {
        delivery: d.id,
        content: c.id,
        tier: plan.tier,
        user: u32::try_from(user.get())
            .map_err(|_| ApiError::bad_request("user id out of the mark's range"))?,
        content_server: u16::try_from(c.provider_id.get())
            .map_err(|_| ApiError::bad_request("provider id out of range"))?,
        edge: u16::try_from(plan.edge.id)
            .map_err(|_| ApiError::bad_request("edge id out of range"))?,
        expires: plan.ticket_expires,
        mode: plan.mode,
        site: plan.site.as_ref().map(|s| SiteTarget {
            id: u16::try_from(s.id).unwrap_or(u16::MAX),
            name: s.name.clone(),
            address: s.address.clone(),
        }),
        disc: plan.disc.clone(),
        rental_until: plan.rental_until,
        protected,
        // Only the designated edge's own push reaches a home or kiosk.
        edge_key: plan
            .mode
            .via_site()
            .then(|| plan.edge.push_key.clone())
            .flatten(),
    }
    .sign(&o.signing))
}

/// The purchase's `Idempotency-Key`, if it has one.
fn purchase_key(headers: &HeaderMap) -> Result<Option<String>, ApiError> {
    match headers.get("idempotency-key") {
        None => Ok(None),
        Some(v) => {
            let k = v
                .to_str()
                .map_err(|_| ApiError::bad_request("Idempotency-Key is not visible ASCII"))?;
            tracecast_mailbox::check_idempotency_key(k)?;
            Ok(Some(k.to_owned()))
        }
    }
}

/// Replaces `old` by `new`: marks it replaced and orders its edge to
/// revoke it. Nothing is refunded here.
async fn replace(o: &Origin, old: &DeliveryRecord, new: i64) -> Result<(), ApiError> {
    if !o.store.begin_replacement(old.id, new).await? {
        return Err(Refusal::AlreadyReplaced(old.id).into());
    }
    let old = DeliveryRecord {
        replaced_by: Some(new),
        ..old.clone()
    };
    order_revocation(o, &old).await?;
    tracing::info!(
        delivery = old.id,
        replaced_by = new,
        "delivery replaced; its edge is told to revoke it"
    );
    Ok(())
}

/// Orders the edge of a replaced delivery to revoke it (once per
/// delivery: the order's idempotency key).
async fn order_revocation(o: &Origin, old: &DeliveryRecord) -> Result<(), ApiError> {
    let Some(new) = old.replaced_by else {
        return Ok(());
    };
    let edge = o
        .store
        .account(AccountId::Edge(old.edge_id))
        .await?
        .ok_or_else(|| ApiError::bad_request("the replaced delivery's edge is gone"))?;
    let order = tracecast_delivery::Revoke {
        delivery: old.id,
        replaced_by: new,
    };
    o.mailbox
        .send(
            edge.box_id,
            tracecast_delivery::Revoke::MEDIA_TYPE,
            serde_json::to_vec(&order).expect("serialises"),
            Some(format!("revoke-{}", old.id)),
        )
        .await?;
    Ok(())
}

/// A replaced delivery's edge revoked it before any of its bytes left:
/// it bills nothing (refunded if it was billed already). Both copies carry
/// the buyer's mark, so a second copy gains nobody anything.
pub(super) async fn refund_replaced(o: &Origin, old: i64, new: i64) -> Result<(), ApiError> {
    let event = format!("delivery-{old}/refund");
    let refund = match o.store.supersede_delivery(old, new, &event).await? {
        tracecast_store::Applied::Now(refund) => {
            if refund.is_some() {
                crate::ops::metrics().refunds.inc();
            }
            refund
        }
        // Settled before, by a try that may have failed before the
        // refund bill was sent: the bill is sent again from the ledger
        // (the mailbox keeps one per delivery).
        tracecast_store::Applied::Before => reports::refund_in_ledger(o, old, &event).await?,
    };
    if let Some(refund) = refund {
        reports::send_refund(o, old, &refund).await?;
    }
    tracing::info!(
        delivery = old,
        replaced_by = new,
        "delivery replaced; nothing billed for it"
    );
    Ok(())
}
