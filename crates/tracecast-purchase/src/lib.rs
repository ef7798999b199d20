//! The purchase decision (DESIGN.md "001" steps 1-3, "004" quality by
//! trust), with no I/O: from the facts the origin gathered (the request,
//! the content, the buyer's membership, the home or kiosk named, an earlier
//! try under the same idempotency key, the delivery replaced, the edges'
//! loads) and the time, what the purchase delivers (tier, mode), through
//! which edge and site, at what price, with what order kept, or the
//! [`Refusal`] that says why not.
//!
//! The origin's handler is then I/O around one call: gather, [`plan`],
//! open the delivery, sign the ticket. Every rule is here, tested as a
//! table of cases.

use std::collections::BTreeMap;

use tracecast_delivery::api::PurchaseRequest;
use tracecast_delivery::{
    designate, ContentKind, DiscOrder, EdgeView, Fulfilment, Mode, OrderInfo, Tier,
};
use tracecast_disc::Medium;
use tracecast_ledger::RentalTariff;
use tracecast_members::{QualityTable, Reserved};

/// Bytes a disc image adds to its files (descriptors, directories,
/// manifest, the trailing pad), generously.
pub const DISC_OVERHEAD: u64 = 1 << 20;

/// The origin's settings that bear on a purchase.
#[derive(Debug, Clone)]
pub struct Terms {
    /// Tiers by member trust.
    pub quality: QualityTable,
    /// How long a rental lasts.
    pub rental_secs: i64,
    /// What renting costs when a content names no tariff of its own.
    pub rental_tariff: RentalTariff,
    /// How long a ticket stays good.
    pub ticket_ttl_secs: i64,
    /// An edge not heard from for this long is not designated.
    pub edge_alive_ms: i64,
}

/// The content bought.
#[derive(Debug, Clone)]
pub struct Content {
    pub id: i64,
    pub kind: ContentKind,
    pub price_cents: i64,
    pub protected: bool,
    /// Its own rental tariff as the provider wrote it (`0.50/hour`).
    pub rental_tariff: Option<String>,
    /// Members of this order or lower receive it freely.
    pub reserved_up_to_order: Option<i64>,
    /// How many bytes a copy of each tier is (what a disc must hold); read
    /// only when the request names a kiosk, the one route that uses it.
    pub copy_bytes: BTreeMap<Tier, u64>,
}

/// The buyer's membership, if they are a member.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Member {
    /// Not suspended for a leak.
    pub active: bool,
    pub trust: f64,
    pub order: i64,
}

/// The buyer's request to their upstream members for a reserved content.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum ReservedRequest {
    /// They have not asked.
    #[default]
    None,
    /// Asked (this request), not granted yet.
    Waiting(i64),
    Granted,
}

/// Whether a site is a home server or a kiosk.
pub use tracecast_delivery::api::SiteKind;

/// The home server or kiosk the request names, as registered.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Site {
    pub id: i64,
    pub kind: SiteKind,
    pub name: String,
    pub address: String,
    /// Home: usage fee per delivery or rental; kiosk: agency fee per order.
    pub fee_cents: i64,
    /// Kiosk: what shipping a disc costs.
    pub shipping_cents: i64,
    /// Kiosk: the media it sells (`cd-r`, `dvd-r`…) and their prices.
    pub media: BTreeMap<String, i64>,
}

/// A delivery already opened under the request's idempotency key (after
/// the replacements since, to the latest).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Earlier {
    pub id: i64,
    pub content: i64,
    pub tier: Tier,
    pub mode: Mode,
    pub edge: i64,
    pub price_cents: i64,
}

/// The buyer's delivery that the request says this purchase replaces.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Replaced {
    pub id: i64,
    pub content: i64,
    pub tier: Tier,
    pub mode: Mode,
    pub price_cents: i64,
    /// Replaced by another already.
    pub replaced: bool,
    /// Designated or marked: not yet settled, refunded or superseded.
    pub open: bool,
}

/// An edge as designation sees it, for the tier bought.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Edge {
    pub id: i64,
    pub name: String,
    pub address: String,
    pub fee_cents: i64,
    /// When it last reported (Unix milliseconds).
    pub last_seen: Option<i64>,
    /// It holds the rendition already.
    pub holds: bool,
    /// Deliveries designated to it lately, plus copies in flight.
    pub load: u64,
    /// Its push key (hex), once it said: homes and kiosks take its pushes.
    pub push_key: Option<String>,
    /// Where it stands, as its administrator declared.
    pub region: Option<tracecast_delivery::Region>,
    /// Open to every provider at `fee_cents`, without a contract.
    pub open: bool,
    /// The fee of the content's provider's contract with it, if any.
    pub contract_fee_cents: Option<i64>,
}

/// Everything the origin knows about a purchase before deciding it.
#[derive(Debug, Clone)]
pub struct Facts<'a> {
    pub request: &'a PurchaseRequest,
    pub content: Content,
    pub member: Option<Member>,
    /// Looked at only when the content is reserved.
    pub reserved_request: ReservedRequest,
    /// The site `request.home` or `request.kiosk` names, if one has that
    /// name.
    pub site: Option<Site>,
    /// A partner buying for the user: its ledger party (`operator:NAME`).
    pub payer: Option<String>,
    pub earlier: Option<Earlier>,
    /// The delivery `request.replaces` names, if it is the buyer's.
    pub replaced: Option<Replaced>,
    /// Where the buyer is: as the request named it, or as the origin
    /// estimated it from their address.
    pub buyer_region: Option<tracecast_delivery::Region>,
    /// Unix milliseconds.
    pub now_ms: i64,
}

/// What the purchase delivers, and how.
#[derive(Debug, Clone, PartialEq)]
pub struct Plan {
    pub tier: Tier,
    pub mode: Mode,
    /// What the buyer pays at delivery (a rental's fee follows the
    /// viewing).
    pub price_cents: i64,
    pub edge: Edge,
    pub site: Option<Site>,
    pub disc: Option<DiscOrder>,
    /// Rental: when it ends (Unix seconds) and what viewing costs.
    pub rental_until: Option<i64>,
    pub tariff: Option<RentalTariff>,
    /// Kiosk: medium, agency fee and shipping the buyer owes the store.
    pub store_cents: Option<i64>,
    /// Kept with a new delivery.
    pub order: OrderInfo,
    /// A retry under the same idempotency key: this delivery, again.
    pub again: Option<i64>,
    /// The delivery to mark replaced and revoke once this one is open.
    pub replaces: Option<i64>,
    /// When the ticket stops being good (Unix seconds).
    pub ticket_expires: i64,
}

/// Why a purchase is refused. Nothing is charged for a refused purchase.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum Refusal {
    #[error("your membership is suspended: a copy delivered to you was found leaked")]
    Suspended,
    #[error("content {content} is reserved for members up to order {up_to}; you are not a member")]
    ReservedNotMember { content: i64, up_to: i64 },
    #[error("content {content} is reserved for members up to order {up_to}; your request {request} is still waiting for your upstream members")]
    ReservedWaiting {
        content: i64,
        up_to: i64,
        request: i64,
    },
    #[error("content {content} is reserved for members up to order {up_to} and you are of order {order}: ask your upstream members first (tracecast members ask {content})")]
    ReservedAsk {
        content: i64,
        up_to: i64,
        order: i64,
    },
    #[error("your trust {trust:.2} allows {}; ask for that tier", best.map_or("no tier of this content".to_owned(), |b| format!("{b} at best")))]
    TrustTooLow { trust: f64, best: Option<Tier> },
    #[error("content {content} is {kind}: its tiers are {}", kind.tiers().iter().map(|t| t.as_str()).collect::<Vec<_>>().join(", "))]
    WrongKind { content: i64, kind: ContentKind },
    #[error("name a home server or a kiosk, not both")]
    HomeAndKiosk,
    #[error("a rental is viewed from a home server: name one (home)")]
    RentalWithoutHome,
    #[error("there is no {} named {name:?}", kind_name(*kind))]
    UnknownSite { kind: SiteKind, name: String },
    #[error("content {content} is {kind}: only audio and video are rented (streamed from a home server)")]
    NotRentable { content: i64, kind: ContentKind },
    #[error("{0}")]
    BadTariff(String),
    #[error("a kiosk order names a medium (disc.medium)")]
    NoMedium,
    #[error("{0}")]
    BadMedium(String),
    #[error("{site} does not sell {medium}; it sells {}", sold.join(", "))]
    MediumNotSold {
        site: String,
        medium: String,
        sold: Vec<String>,
    },
    #[error("shipping needs an address (at most 500 bytes)")]
    NoAddress,
    #[error("content {content} ({tier}, {:.1} MB) does not fit on a {medium} ({:.1} MB): choose a larger medium or a smaller tier; nothing was charged", *needed as f64 / 1e6, *capacity as f64 / 1e6)]
    DoesNotFit {
        content: i64,
        tier: Tier,
        medium: String,
        needed: u64,
        capacity: u64,
    },
    #[error("a partner buys downloads only, not orders through a home server or kiosk")]
    PartnerDownloadsOnly,
    #[error("content {content} is protected: it is delivered directly to you, not through a home server or kiosk; nothing was charged")]
    Protected { content: i64 },
    #[error("Idempotency-Key was used for delivery {delivery} of content {content} ({tier} {}); use a new key for another purchase", mode.as_str())]
    KeyReused {
        delivery: i64,
        content: i64,
        tier: Tier,
        mode: Mode,
    },
    #[error("you have no delivery {0} to replace")]
    UnknownDelivery(i64),
    #[error("delivery {delivery} is not a {} of the {tier} of content {content}: a delivery is replaced by one of the same kind", mode.as_str())]
    NotSameKind {
        delivery: i64,
        content: i64,
        tier: Tier,
        mode: Mode,
    },
    #[error("delivery {0} was replaced already")]
    AlreadyReplaced(i64),
    #[error("no edge is available to deliver this now; try again shortly")]
    NoEdge,
    #[error("no edge serves this content: its provider has no contract with an edge, and no edge is open to every provider")]
    NoContract,
    #[error("edge {0} has not told the origin its push key yet; try again shortly")]
    NoPushKey(String),
}

fn kind_name(kind: SiteKind) -> &'static str {
    match kind {
        SiteKind::Home => "home",
        SiteKind::Kiosk => "kiosk",
    }
}

impl Refusal {
    /// The HTTP status the origin answers with.
    pub fn status(&self) -> u16 {
        use Refusal::*;
        match self {
            Suspended
            | ReservedNotMember { .. }
            | ReservedWaiting { .. }
            | ReservedAsk { .. }
            | TrustTooLow { .. } => 403,
            UnknownSite { .. } | UnknownDelivery(_) => 404,
            KeyReused { .. } | AlreadyReplaced(_) => 409,
            MediumNotSold { .. } | DoesNotFit { .. } | Protected { .. } | NoContract => 422,
            NoEdge | NoPushKey(_) => 503,
            WrongKind { .. }
            | HomeAndKiosk
            | RentalWithoutHome
            | NotRentable { .. }
            | BadTariff(_)
            | NoMedium
            | BadMedium(_)
            | NoAddress
            | PartnerDownloadsOnly
            | NotSameKind { .. } => 400,
        }
    }

    /// The error code in the answer's body.
    pub fn code(&self) -> &'static str {
        use Refusal::*;
        match self {
            UnknownSite { .. } => "unknown_site",
            UnknownDelivery(_) => "unknown_delivery",
            KeyReused { .. } => "key_reused",
            AlreadyReplaced(_) => "already_replaced",
            MediumNotSold { .. } => "medium_not_sold",
            DoesNotFit { .. } => "does_not_fit",
            Protected { .. } => "protected",
            NoEdge | NoPushKey(_) => "no_edge",
            NoContract => "no_contracted_edge",
            _ => match self.status() {
                403 => "forbidden",
                _ => "bad_request",
            },
        }
    }
}

/// Whether a buyer may receive a content reserved for members up to
/// order `up_to`: members of that order or lower freely, others once their
/// upstream members granted their request.
pub fn reserved(
    content: i64,
    up_to: i64,
    member: Option<&Member>,
    request: ReservedRequest,
) -> Result<(), Refusal> {
    let Some(m) = member else {
        return Err(Refusal::ReservedNotMember { content, up_to });
    };
    let clamp = |n: i64| n.clamp(0, i64::from(u32::MAX)) as u32;
    let rule = Reserved {
        up_to_order: clamp(up_to),
    };
    if !rule.needs_approval(clamp(m.order)) {
        return Ok(());
    }
    match request {
        ReservedRequest::Granted => Ok(()),
        ReservedRequest::Waiting(request) => Err(Refusal::ReservedWaiting {
            content,
            up_to,
            request,
        }),
        ReservedRequest::None => Err(Refusal::ReservedAsk {
            content,
            up_to,
            order: m.order,
        }),
    }
}

/// The tier the purchase delivers: the one asked for, else the best the
/// member's trust allows, else the content kind's default; refused when
/// the member may not have it or it is not a tier of the content.
pub fn tier(facts: &Facts, terms: &Terms) -> Result<Tier, Refusal> {
    let c = &facts.content;
    if facts.member.is_some_and(|m| !m.active) {
        return Err(Refusal::Suspended);
    }
    if let Some(up_to) = c.reserved_up_to_order {
        reserved(c.id, up_to, facts.member.as_ref(), facts.reserved_request)?;
    }
    // A member receives the quality their trust allows (DESIGN.md "004").
    let allowed = facts
        .member
        .map(|m| (m.trust, terms.quality.tier(m.trust, c.kind)));
    let tier = match (facts.request.tier, allowed) {
        (Some(t), _) => t,
        (None, Some((_, Some(best)))) => best,
        (None, _) => c.kind.default_tier(),
    };
    if let Some((trust, best)) = allowed {
        if tier.kind() == c.kind && !terms.quality.allows(trust, tier) {
            return Err(Refusal::TrustTooLow { trust, best });
        }
    }
    if tier.kind() != c.kind {
        return Err(Refusal::WrongKind {
            content: c.id,
            kind: c.kind,
        });
    }
    Ok(tier)
}

/// Where the purchase goes after the edge: nowhere, a home or a kiosk.
#[derive(Debug, Clone, Default)]
struct Route {
    mode: Mode,
    site: Option<Site>,
    disc: Option<DiscOrder>,
    rental_until: Option<i64>,
    tariff: Option<RentalTariff>,
    store_cents: Option<i64>,
    order: OrderInfo,
}

fn route(facts: &Facts, tier: Tier, terms: &Terms) -> Result<Route, Refusal> {
    let req = facts.request;
    let c = &facts.content;
    let site = |name: &str, kind: SiteKind| {
        facts
            .site
            .clone()
            .filter(|s| s.kind == kind && s.name == name)
            .ok_or_else(|| Refusal::UnknownSite {
                kind,
                name: name.to_owned(),
            })
    };
    match (&req.home, &req.kiosk) {
        (Some(_), Some(_)) => Err(Refusal::HomeAndKiosk),
        (None, None) if req.rent => Err(Refusal::RentalWithoutHome),
        (None, None) => Ok(Route::default()),
        (Some(home), None) => {
            let site = site(home, SiteKind::Home)?;
            if !req.rent {
                return Ok(Route {
                    mode: Mode::Home,
                    site: Some(site),
                    ..Route::default()
                });
            }
            if !matches!(c.kind, ContentKind::Audio | ContentKind::Video) {
                return Err(Refusal::NotRentable {
                    content: c.id,
                    kind: c.kind,
                });
            }
            let tariff = match &c.rental_tariff {
                Some(t) => t.parse().map_err(|e: tracecast_ledger::LedgerError| {
                    Refusal::BadTariff(e.to_string())
                })?,
                None => terms.rental_tariff,
            };
            let until = facts.now_ms / 1000 + terms.rental_secs;
            Ok(Route {
                mode: Mode::Rental,
                site: Some(site),
                rental_until: Some(until),
                tariff: Some(tariff),
                order: OrderInfo {
                    tariff: Some(tariff),
                    until: Some(until),
                    ..OrderInfo::default()
                },
                ..Route::default()
            })
        }
        (None, Some(kiosk)) => {
            let site = site(kiosk, SiteKind::Kiosk)?;
            let disc = req.disc.clone().ok_or(Refusal::NoMedium)?;
            let medium: Medium = disc
                .medium
                .parse()
                .map_err(|e: tracecast_disc::DiscError| Refusal::BadMedium(e.to_string()))?;
            let medium_cents =
                *site
                    .media
                    .get(&medium.to_string())
                    .ok_or_else(|| Refusal::MediumNotSold {
                        site: site.name.clone(),
                        medium: medium.to_string(),
                        sold: site.media.keys().cloned().collect(),
                    })?;
            if let Fulfilment::Ship { address } = &disc.fulfilment {
                if address.trim().is_empty() || address.len() > 500 {
                    return Err(Refusal::NoAddress);
                }
            }
            let needed = c.copy_bytes.get(&tier).copied().unwrap_or(0) + DISC_OVERHEAD;
            if needed > medium.capacity() {
                return Err(Refusal::DoesNotFit {
                    content: c.id,
                    tier,
                    medium: medium.to_string(),
                    needed,
                    capacity: medium.capacity(),
                });
            }
            let shipping = match disc.fulfilment {
                Fulfilment::Ship { .. } => site.shipping_cents,
                Fulfilment::Pickup => 0,
            };
            Ok(Route {
                mode: Mode::Kiosk,
                store_cents: Some(medium_cents + site.fee_cents + shipping),
                order: OrderInfo {
                    medium: Some(medium.to_string()),
                    fulfilment: Some(disc.fulfilment.clone()),
                    medium_cents: Some(medium_cents),
                    shipping_cents: Some(shipping),
                    ..OrderInfo::default()
                },
                site: Some(site),
                disc: Some(disc),
                ..Route::default()
            })
        }
    }
}

/// Whether `replaced` (the delivery a purchase names to replace, if it is
/// the buyer's) may be replaced by a purchase of `content`, `tier` and
/// `mode`: the same copy from another edge, still open, not replaced
/// before.
pub fn replaceable(
    id: i64,
    replaced: Option<&Replaced>,
    content: i64,
    tier: Tier,
    mode: Mode,
) -> Result<(), Refusal> {
    let d = replaced
        .filter(|d| d.id == id)
        .ok_or(Refusal::UnknownDelivery(id))?;
    // A free preview replaced by a paid tier would be a free copy.
    if d.content != content || d.mode != mode || d.tier != tier {
        return Err(Refusal::NotSameKind {
            delivery: id,
            content,
            tier,
            mode,
        });
    }
    if d.replaced || !d.open {
        return Err(Refusal::AlreadyReplaced(id));
    }
    Ok(())
}

/// Decides the purchase. `edges` are the edges' views for the tier that
/// [`tier`] chooses from the same facts.
pub fn plan(facts: &Facts, edges: &[Edge], terms: &Terms) -> Result<Plan, Refusal> {
    let req = facts.request;
    let c = &facts.content;
    let tier = tier(facts, terms)?;
    let mut route = route(facts, tier, terms)?;
    if let Some(payer) = &facts.payer {
        if route.mode != Mode::Download {
            return Err(Refusal::PartnerDownloadsOnly);
        }
        route.order.payer = Some(payer.clone());
    }
    if c.protected && route.mode != Mode::Download {
        // Homes package rentals and kiosks write discs from the plain
        // copy; protected copies go to the buyer only.
        return Err(Refusal::Protected { content: c.id });
    }
    // A retry under the same key is the same delivery, never a second;
    // the key never buys something else.
    if let Some(d) = &facts.earlier {
        if d.content != c.id || d.tier != tier || d.mode != route.mode {
            return Err(Refusal::KeyReused {
                delivery: d.id,
                content: d.content,
                tier: d.tier,
                mode: d.mode,
            });
        }
    }
    let replaces = match (req.replaces, &facts.earlier) {
        (Some(old), None) => {
            replaceable(old, facts.replaced.as_ref(), c.id, tier, route.mode)?;
            facts.replaced
        }
        _ => None,
    };
    // Only edges under contract with the content's provider, or open to
    // every provider, serve it, each at the fee it charges this provider
    // (a retry continues the delivery at the edge and fee it had).
    let serving: Vec<Edge> = match &facts.earlier {
        Some(_) => edges.to_vec(),
        None => edges
            .iter()
            .filter_map(|e| {
                let fee = tracecast_delivery::contract::usage_fee(
                    e.contract_fee_cents,
                    e.open,
                    e.fee_cents,
                )?;
                Some(Edge {
                    fee_cents: fee,
                    ..e.clone()
                })
            })
            .collect(),
    };
    if serving.is_empty() && !edges.is_empty() {
        return Err(Refusal::NoContract);
    }
    let edges = serving.as_slice();
    let chosen = match &facts.earlier {
        Some(d) => Some(d.edge),
        None => {
            let views: Vec<EdgeView> = edges
                .iter()
                .map(|e| EdgeView {
                    id: e.id,
                    alive: e
                        .last_seen
                        .is_some_and(|t| t > facts.now_ms - terms.edge_alive_ms),
                    holds: e.holds,
                    load: e.load,
                    distance: tracecast_delivery::region::distance(
                        facts.buyer_region.as_ref(),
                        e.region.as_ref(),
                    ),
                })
                .collect();
            designate(&views, &req.avoid)
        }
    };
    let edge = chosen
        .and_then(|id| edges.iter().find(|e| e.id == id))
        .ok_or(Refusal::NoEdge)?;
    if route.mode.via_site() && edge.push_key.is_none() {
        // Its pushes could not be told from a buyer's: no site would
        // take them.
        return Err(Refusal::NoPushKey(edge.name.clone()));
    }
    let price = match route.mode {
        // A rental's fee follows the viewing, by its tariff.
        Mode::Rental => 0,
        _ if tier.is_paid() => c.price_cents,
        _ => 0,
    };
    // A replacement costs what the delivery it replaces costs: nothing,
    // when that one was itself free (its own predecessor kept the sale).
    let price = match (&facts.earlier, &replaces) {
        (Some(d), _) => d.price_cents,
        (None, Some(old)) => old.price_cents.min(price),
        (None, None) => price,
    };
    if let Some(old) = &replaces {
        // Kept with the order: a retry finishes this replacement only.
        route.order.replaces = Some(old.id);
    }
    Ok(Plan {
        tier,
        mode: route.mode,
        price_cents: price,
        edge: edge.clone(),
        site: route.site,
        disc: route.disc,
        rental_until: route.rental_until,
        tariff: route.tariff,
        store_cents: route.store_cents,
        order: route.order,
        again: facts.earlier.map(|d| d.id),
        replaces: replaces.map(|r| r.id),
        ticket_expires: facts.now_ms / 1000 + terms.ticket_ttl_secs,
    })
}

#[cfg(test)]
mod tests;
