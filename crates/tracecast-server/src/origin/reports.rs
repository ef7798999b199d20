//! The origin's consumer of delivery reports (DESIGN.md "001" step 4).
//! Edges post a report to the origin's box for every marked copy; this
//! task takes them in order, applies each once (the delivery becomes
//! `marked`, the ledger gets its postings), sends the user a bill in their
//! box, and only then moves the report to the processed store. A report
//! applied before a crash is recognised by its delivery id and skipped.

use std::sync::Arc;
use std::time::Duration;

use tracecast_delivery::messages::money;
use tracecast_delivery::{
    Bill, DeliveryReport, DeliveryStatus, Mode, RevocationReport, SiteEvent, SiteReport,
};
use tracecast_ledger::{Flow, Kiosk, Party, RentalTariff, Sale, SiteUse, Transaction, Viewing};
use tracecast_mailbox::{Disposition, FetchRequest, Sender, Want};
use tracecast_store::KindInStore;
use tracecast_store::{
    AccountId, AccountKind, DeliveryRecord, EdgeId, FetchedMessage, SiteId, StoreError, UserId,
};

use super::Origin;

pub(super) async fn consume(origin: Arc<Origin>) {
    let mut notices = origin.mailbox.subscribe(origin.reports_box);
    let mut pause = Duration::from_millis(200);
    loop {
        let now = tracecast_store::now_ms();
        let fetched = origin
            .store
            .fetch(
                origin.reports_box,
                &FetchRequest {
                    want: Want::First,
                    done: None,
                },
                now,
            )
            .await;
        let message = match fetched {
            Ok(f) => f.message,
            Err(StoreError::Closed) => return,
            Err(e) => {
                tracing::warn!(error = %e, "reading delivery reports failed; retrying");
                tokio::time::sleep(pause).await;
                pause = (pause * 2).min(Duration::from_secs(10));
                continue;
            }
        };
        let Some(m) = message else {
            // Wait for mail, or look again in a while in case a notice
            // was missed.
            let _ = tokio::time::timeout(Duration::from_secs(5), notices.changed()).await;
            continue;
        };
        match apply(&origin, &m).await {
            Ok(()) => crate::ops::metrics().report("applied"),
            Err(Fault::Transient(e)) => {
                tracing::warn!(error = %e, message = m.id.get(), "applying a delivery report failed; will retry");
                tokio::time::sleep(pause).await;
                pause = (pause * 2).min(Duration::from_secs(10));
                continue;
            }
            Err(Fault::Rejected(why)) => {
                crate::ops::metrics().report("rejected");
                // Kept in the processed store for an operator to read; it
                // must not block the reports behind it.
                tracing::warn!(message = m.id.get(), sender = %m.sender, %why, "delivery report rejected");
            }
        }
        pause = Duration::from_millis(200);
        let done = FetchRequest {
            want: Want::Nothing,
            done: Some((m.id, Disposition::Move)),
        };
        if let Err(e) = origin
            .store
            .fetch(origin.reports_box, &done, tracecast_store::now_ms())
            .await
        {
            tracing::warn!(error = %e, "acknowledging a delivery report failed; it will be seen again");
        }
    }
}

enum Fault {
    Transient(StoreError),
    Rejected(String),
}

impl From<StoreError> for Fault {
    fn from(e: StoreError) -> Self {
        if e.is_unavailable() {
            Fault::Transient(e)
        } else {
            Fault::Rejected(e.to_string())
        }
    }
}

async fn apply(o: &Origin, m: &FetchedMessage) -> Result<(), Fault> {
    match m.media_type.as_str() {
        DeliveryReport::MEDIA_TYPE => apply_marked(o, m).await,
        SiteReport::MEDIA_TYPE => apply_site(o, m).await,
        RevocationReport::MEDIA_TYPE => apply_revoked(o, m).await,
        other => Err(Fault::Rejected(format!("unexpected message type {other}"))),
    }
}

/// What a delivery's postings are made of.
struct Parties {
    d: DeliveryRecord,
    user: tracecast_store::Account,
    provider: tracecast_store::Account,
    content: tracecast_store::ContentRecord,
    edge: tracecast_store::EdgeRecord,
    site: Option<tracecast_store::SiteRecord>,
}

impl Parties {
    async fn load(o: &Origin, delivery: i64) -> Result<Self, Fault> {
        let d = o
            .store
            .delivery(delivery)
            .await?
            .ok_or_else(|| Fault::Rejected(format!("no delivery {delivery}")))?;
        let user = o
            .store
            .account(AccountId::User(d.user_id))
            .await?
            .ok_or_else(|| Fault::Rejected(format!("no user {}", d.user_id)))?;
        let provider = o
            .store
            .account(AccountId::Provider(d.provider_id))
            .await?
            .ok_or_else(|| Fault::Rejected(format!("no provider {}", d.provider_id)))?;
        let content = o
            .store
            .content(d.content_id)
            .await?
            .ok_or_else(|| Fault::Rejected(format!("no content {}", d.content_id)))?;
        let edge = o
            .store
            .edge(d.edge_id)
            .await?
            .ok_or_else(|| Fault::Rejected("edge gone".into()))?;
        let site = match d.site_id {
            Some(id) => Some(
                o.store
                    .site(id)
                    .await?
                    .ok_or_else(|| Fault::Rejected(format!("no site {id}")))?,
            ),
            None => None,
        };
        Ok(Self {
            d,
            user,
            provider,
            content,
            edge,
            site,
        })
    }

    /// Who pays for the copy when it is not the user: a partner that
    /// bought it for them ("002" way 2).
    fn partner_payer(&self) -> Option<Party> {
        self.d
            .order_info
            .payer
            .as_deref()
            .and_then(|p| p.parse().ok())
    }

    fn sale(&self) -> Sale {
        Sale {
            user: self
                .partner_payer()
                .unwrap_or_else(|| Party::user(&self.user.name)),
            provider: Party::provider(&self.provider.name),
            title: self.content.title.clone(),
            price_cents: self.d.price_cents,
            edge: self.edge.name.clone(),
            edge_operator: Party::operator(&self.edge.operator),
            edge_fee_cents: self.d.edge_fee_cents,
        }
    }

    fn home_use(&self) -> Option<SiteUse> {
        let s = self.site.as_ref()?;
        let payer = if s.payer == "user" {
            Party::user(&self.user.name)
        } else {
            s.payer.parse().ok()?
        };
        Some(SiteUse {
            site: s.name.clone(),
            operator: Party::operator(&s.operator),
            payer,
            fee_cents: self.d.site_fee_cents,
        })
    }
}

async fn apply_marked(o: &Origin, m: &FetchedMessage) -> Result<(), Fault> {
    let r: DeliveryReport = serde_json::from_slice(&m.body)
        .map_err(|e| Fault::Rejected(format!("malformed report: {e}")))?;
    let p = Parties::load(o, r.delivery).await?;
    let d = &p.d;
    // Only the designated edge may report, and only what was designated.
    // The designated edge's own box posted it: nobody else's report of
    // this delivery counts.
    let edge_box = Sender::Box(AccountKind::Edge.box_name(&p.edge.name)?);
    if m.sender != edge_box
        || EdgeId(i64::from(r.edge)) != d.edge_id
        || UserId(i64::from(r.user)) != d.user_id
        || r.content != d.content_id
        || r.tier != d.tier
    {
        return Err(Fault::Rejected(format!(
            "report from {} does not match delivery {}",
            m.sender, d.id
        )));
    }
    record_sale(o, &p, r.bytes as i64, &r.sha256, r.marked_at).await
}

/// Records a delivery's copy as made (its sale, once) and bills the user.
async fn record_sale(
    o: &Origin,
    p: &Parties,
    bytes: i64,
    sha256: &str,
    marked_at: i64,
) -> Result<(), Fault> {
    let d = &p.d;
    let event = format!("delivery-{}/marked", d.id);
    let t = match d.mode {
        Mode::Download | Mode::Home => Flow::Marked(p.sale()).transaction(&event, Some(d.id)),
        // The rental fee follows the viewing; the edge has done its part.
        Mode::Rental => Flow::RentalMarked(p.sale()).transaction(&event, Some(d.id)),
        // Billed when the kiosk writes the disc (nothing if it cannot).
        Mode::Kiosk => Transaction::new(&event, Some(d.id)),
    };
    let applied = o
        .store
        .record_marked(d.id, bytes, sha256, marked_at, t.clone())
        .await?;
    // A partner's order is billed to the user by the partner; a delivery
    // replaced before its report came was never sold.
    if matches!(d.mode, Mode::Download | Mode::Home)
        && p.partner_payer().is_none()
        && o.store.ledger_event_exists(&event).await?
    {
        // Sent whether or not this run applied the report: a crash
        // between applying and billing must not lose the bill, and the
        // idempotency key makes a repeat land once.
        send_bill(o, p, &t, BillFor::Delivery).await?;
    }
    if matches!(applied, tracecast_store::Applied::Now(())) {
        tracing::info!(
            delivery = d.id, user = %p.user.name, edge = %p.edge.name, content = %p.content.title,
            mode = d.mode.as_str(), amount = %money(d.price_cents), "delivery reported"
        );
    }
    Ok(())
}

/// A replaced delivery's edge revoked it (the origin ordered it when the
/// replacement was bought). A copy that never left the edge is refunded
/// (superseded if it was never billed). A copy that had left is a
/// delivered copy: it keeps its sale (billed now from the edge's word if
/// its own report never came), and every delivery that replaced it
/// bills no price: its buyer pays once.
async fn apply_revoked(o: &Origin, m: &FetchedMessage) -> Result<(), Fault> {
    let r: RevocationReport = serde_json::from_slice(&m.body)
        .map_err(|e| Fault::Rejected(format!("malformed revocation report: {e}")))?;
    let p = Parties::load(o, r.delivery).await?;
    let d = &p.d;
    let edge_box = Sender::Box(AccountKind::Edge.box_name(&p.edge.name)?);
    let Some(replacement) = d.replaced_by else {
        return Err(Fault::Rejected(format!(
            "delivery {} was not replaced: nothing to revoke",
            d.id
        )));
    };
    if m.sender != edge_box || EdgeId(i64::from(r.edge)) != d.edge_id {
        return Err(Fault::Rejected(format!(
            "revocation from {} does not match delivery {}",
            m.sender, d.id
        )));
    }
    // Fail closed: a copy the origin knows was made (the delivery is
    // marked) but the edge no longer has a record of counts as served.
    // Bytes that left of a copy never reported nor recorded (its marking
    // broke off: an edge that died while its buyer followed the copy as
    // it was marked) are no sale: the buyer pays for the replacement, so
    // once, and no delivery is left both unbilled and waiving the others.
    let served = match d.status {
        DeliveryStatus::Designated => r.served && r.copy.is_some(),
        _ => r.served || r.copy.is_none(),
    };
    if !served {
        return super::purchase::refund_replaced(o, d.id, replacement)
            .await
            .map_err(|e| match e.status.is_server_error() {
                true => Fault::Transient(StoreError::Closed),
                false => Fault::Rejected(e.message),
            });
    }
    if d.status == DeliveryStatus::Designated {
        if let Some(c) = &r.copy {
            // Its own report never came: bill it from the edge's word.
            record_sale(o, &p, c.bytes as i64, &c.sha256, c.marked_at).await?;
        }
    }
    // Every later delivery of this chain is free.
    let mut next = Some(replacement);
    let mut hops = 0;
    while let (Some(id), true) = (next, hops < 16) {
        hops += 1;
        let later = Parties::load(o, id).await?;
        let refund = waiver(&later);
        if let tracecast_store::Applied::Now(Some(t)) =
            o.store.waive_delivery(id, d.id, refund).await?
        {
            send_bill(o, &later, &t, BillFor::Waived).await?;
        }
        tracing::info!(
            delivery = id,
            kept_by = d.id,
            "replacement made free: the delivery it replaced had been served and keeps the sale"
        );
        next = later.d.replaced_by;
    }
    Ok(())
}

/// The price of a delivery back to whoever paid it (a replacement made
/// free after it was billed).
fn waiver(p: &Parties) -> Transaction {
    Flow::Waived(p.sale()).transaction(&format!("delivery-{}/waived", p.d.id), Some(p.d.id))
}

async fn apply_site(o: &Origin, m: &FetchedMessage) -> Result<(), Fault> {
    let r: SiteReport = serde_json::from_slice(&m.body)
        .map_err(|e| Fault::Rejected(format!("malformed site report: {e}")))?;
    let p = Parties::load(o, r.delivery).await?;
    let d = &p.d;
    let site = p
        .site
        .as_ref()
        .ok_or_else(|| Fault::Rejected(format!("delivery {} has no home or kiosk", d.id)))?;
    let fits = match r.event {
        SiteEvent::Delivered | SiteEvent::Expired => d.mode == Mode::Home,
        SiteEvent::RentalEnded => d.mode == Mode::Rental,
        SiteEvent::DiscWritten
        | SiteEvent::Refused
        | SiteEvent::DiscBurned
        | SiteEvent::DiscShipped => d.mode == Mode::Kiosk,
    };
    if m.sender != Sender::Box(site.kind.box_name(&site.name)?)
        || SiteId(i64::from(r.site)) != site.id
        || !fits
    {
        return Err(Fault::Rejected(format!(
            "{} report from {} does not match delivery {}",
            r.event.as_str(),
            m.sender,
            d.id
        )));
    }
    let event = r.event_id();
    let home = p.home_use();
    let t = match r.event {
        SiteEvent::Delivered | SiteEvent::Expired => home.map(|home| {
            Flow::HomeDelivered {
                delivery: d.id,
                home,
            }
            .transaction(&event, Some(d.id))
        }),
        SiteEvent::RentalEnded => {
            let tariff: RentalTariff = d.order_info.tariff.unwrap_or(o.config.rental_tariff);
            let viewing = Viewing {
                sessions: r.viewing.clone(),
            };
            // Never less than what the renter was handed: its playback
            // time as one viewing (the home paces it by the viewing, so
            // the two differ by a player's buffer at most).
            let handed = Viewing {
                sessions: vec![(0, r.served_ms.max(0))],
            };
            let home = home.ok_or_else(|| Fault::Rejected("the rental's home is gone".into()))?;
            let t = Flow::RentalEnded {
                sale: p.sale(),
                fee_cents: tariff.fee(&viewing).max(tariff.fee(&handed)),
                viewing_ms: viewing.total_ms().max(handed.total_ms()),
                home,
            }
            .transaction(&event, Some(d.id));
            Some(t)
        }
        SiteEvent::DiscWritten => {
            let order = &d.order_info;
            let t = Flow::DiscWritten {
                sale: p.sale(),
                kiosk: Kiosk {
                    store: Party::store(&site.operator),
                    medium: order.medium.clone().unwrap_or_else(|| "disc".to_owned()),
                    medium_cents: order.medium_cents.unwrap_or(0),
                    agency_cents: d.site_fee_cents,
                    shipping_cents: order.shipping_cents.unwrap_or(0),
                },
            }
            .transaction(&event, Some(d.id));
            Some(t)
        }
        SiteEvent::Refused | SiteEvent::DiscBurned | SiteEvent::DiscShipped => None,
    };
    let applied = o
        .store
        .record_delivery_event(d.id, &event, DeliveryStatus::after(r.event), t.clone())
        .await?;
    if let Some(t) = &t {
        // A home's delivery is billed to the user only when they pay the
        // home's fee (a building manager may).
        let user_pays = t.effect_on(&Party::user(&p.user.name)) != 0;
        let billed = match r.event {
            SiteEvent::RentalEnded | SiteEvent::DiscWritten => true,
            SiteEvent::Delivered | SiteEvent::Expired => user_pays,
            SiteEvent::Refused | SiteEvent::DiscBurned | SiteEvent::DiscShipped => false,
        };
        if billed {
            send_bill(o, &p, t, BillFor::Site(r.event)).await?;
        }
    }
    // The buyer of a kiosk order hears each stage (once: keyed by stage).
    if d.mode == Mode::Kiosk {
        let progress = tracecast_delivery::DiscProgress {
            delivery: d.id,
            content: p.content.id,
            title: p.content.title.clone(),
            kiosk: site.name.clone(),
            stage: r.event,
            detail: r.detail.chars().take(200).collect(),
            at: tracecast_store::now_ms(),
        };
        o.mailbox
            .send(
                p.user.box_id,
                tracecast_delivery::DiscProgress::MEDIA_TYPE,
                serde_json::to_vec(&progress).expect("serialises"),
                Some(format!("disc-{}-{}", d.id, r.event.as_str())),
            )
            .await?;
    }
    if matches!(applied, tracecast_store::Applied::Now(())) {
        tracing::info!(
            delivery = d.id, site = %site.name, event = r.event.as_str(), detail = %r.detail,
            "site reported"
        );
    }
    Ok(())
}

/// What a bill is for; each is sent once per delivery.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum BillFor {
    /// The marked copy itself.
    Delivery,
    /// A replacement that costs nothing more.
    Waived,
    Refund,
    /// What a home's or kiosk's report costs (a rental's end, a disc).
    Site(SiteEvent),
}

impl BillFor {
    /// The bill's idempotency key for `delivery` (the words are stored in
    /// boxes: unchanged from when they were strings).
    fn key(self, delivery: i64) -> String {
        match self {
            BillFor::Delivery => format!("bill-{delivery}"),
            BillFor::Waived => format!("bill-{delivery}-waived"),
            BillFor::Refund => format!("bill-{delivery}-refund"),
            BillFor::Site(e) => format!("bill-{delivery}-{}", e.as_str()),
        }
    }
}

/// Sends the user what this event costs them (once per delivery and kind).
async fn send_bill(o: &Origin, p: &Parties, t: &Transaction, kind: BillFor) -> Result<(), Fault> {
    let user = Party::user(&p.user.name);
    let owed = t.effect_on(&user);
    // A disc is paid to the store, a home's delivery to its operator;
    // everything else to the provider. The lines name every payee.
    let payee = match (kind, &p.site) {
        (
            BillFor::Site(SiteEvent::DiscWritten | SiteEvent::Delivered | SiteEvent::Expired),
            Some(s),
        ) => s.operator.clone(),
        _ => p.provider.name.clone(),
    };
    let lines = t
        .owed_by(&user)
        .into_iter()
        .map(|o| tracecast_delivery::BillLine {
            payee: o.payee.to_string(),
            amount_cents: o.amount_cents,
            memo: o.memo,
        })
        .collect();
    let bill = Bill {
        delivery: p.d.id,
        content: p.content.id,
        title: p.content.title.clone(),
        tier: p.d.tier,
        amount_cents: owed,
        currency: o.config.currency.clone(),
        payee,
        edge: p.edge.name.clone(),
        issued_at: tracecast_store::now_ms(),
        lines,
    };
    let key = kind.key(p.d.id);
    o.mailbox
        .send(
            p.user.box_id,
            Bill::MEDIA_TYPE,
            serde_json::to_vec(&bill).expect("serialises"),
            Some(key),
        )
        .await?;
    Ok(())
}

/// The refund of `delivery` as the ledger holds it (event `event`), if it
/// was refunded.
pub(super) async fn refund_in_ledger(
    o: &Origin,
    delivery: i64,
    event: &str,
) -> Result<Option<Transaction>, StoreError> {
    let mut refund = Transaction::new(event, Some(delivery));
    for line in o.store.postings(delivery).await? {
        if line.event != event {
            continue;
        }
        refund.postings.push(tracecast_ledger::Posting {
            account: line
                .account
                .parse()
                .map_err(|e: tracecast_ledger::LedgerError| StoreError::Invalid(e.to_string()))?,
            amount_cents: line.amount_cents,
            memo: line.memo,
        });
    }
    Ok((!refund.postings.is_empty()).then_some(refund))
}

/// Tells the user a delivery's bill was reversed (it was replaced by
/// another delivery): a bill of the negative amount, sent once.
pub(super) async fn send_refund(
    o: &Origin,
    delivery: i64,
    refund: &Transaction,
) -> Result<(), StoreError> {
    let Some(p) = Parties::load(o, delivery).await.ok() else {
        return Err(StoreError::Invalid(format!("no delivery {delivery}")));
    };
    send_bill(o, &p, refund, BillFor::Refund)
        .await
        .map_err(|f| match f {
            Fault::Transient(e) => e,
            Fault::Rejected(why) => StoreError::Invalid(why),
        })
}

/// A copy delivered through the CDN is sold when its token is issued: no
/// edge of the origin's sees it leave, so no report would ever come. Its
/// hash is not known (the CDN assembles it); its length is. Applied once
/// per delivery like a report, and billed once.
pub(super) async fn settle_cdn(o: &Origin, delivery: i64, bytes: u64) -> Result<(), StoreError> {
    let p = match Parties::load(o, delivery).await {
        Ok(p) => p,
        Err(Fault::Transient(e)) => return Err(e),
        Err(Fault::Rejected(why)) => return Err(StoreError::Invalid(why)),
    };
    record_sale(
        o,
        &p,
        i64::try_from(bytes).unwrap_or(i64::MAX),
        "",
        tracecast_store::now_ms(),
    )
    .await
    .map_err(|f| match f {
        Fault::Transient(e) => e,
        Fault::Rejected(why) => StoreError::Invalid(why),
    })
}
