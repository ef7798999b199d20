//! The origin's consumer of delivery reports (DESIGN.md "001" step 4).
//! Edges post a report to the origin's box for every marked copy; this
//! task takes them in order, applies each once (the delivery becomes
//! `marked`, the ledger gets its postings), sends the user a bill in their
//! box, and only then moves the report to the processed store. A report
//! applied before a crash is recognised by its delivery id and skipped.

use std::sync::Arc;
use std::time::Duration;

use tracecast_delivery::messages::money;
use tracecast_delivery::{Bill, DeliveryReport};
use tracecast_mailbox::{Disposition, FetchRequest, Want};
use tracecast_store::{AccountKind, FetchedMessage, Posting, StoreError};

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
            Ok(()) => {}
            Err(Fault::Transient(e)) => {
                tracing::warn!(error = %e, message = m.id.get(), "applying a delivery report failed; will retry");
                tokio::time::sleep(pause).await;
                pause = (pause * 2).min(Duration::from_secs(10));
                continue;
            }
            Err(Fault::Rejected(why)) => {
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
    if m.media_type != DeliveryReport::MEDIA_TYPE {
        return Err(Fault::Rejected(format!(
            "unexpected message type {}",
            m.media_type
        )));
    }
    let r: DeliveryReport = serde_json::from_slice(&m.body)
        .map_err(|e| Fault::Rejected(format!("malformed report: {e}")))?;
    let d = o
        .store
        .delivery(r.delivery)
        .await?
        .ok_or_else(|| Fault::Rejected(format!("no delivery {}", r.delivery)))?;
    let edge = o
        .store
        .account(AccountKind::Edge, d.edge_id)
        .await?
        .ok_or_else(|| Fault::Rejected(format!("no edge {}", d.edge_id)))?;
    // Only the designated edge may report, and only what was designated.
    if m.sender != format!("edge:{}", edge.name)
        || i64::from(r.edge) != d.edge_id
        || i64::from(r.user) != d.user_id
        || r.content != d.content_id
        || r.tier.as_str() != d.tier
    {
        return Err(Fault::Rejected(format!(
            "report from {} does not match delivery {}",
            m.sender, d.id
        )));
    }
    let user = o
        .store
        .account(AccountKind::User, d.user_id)
        .await?
        .ok_or_else(|| Fault::Rejected(format!("no user {}", d.user_id)))?;
    let provider = o
        .store
        .account(AccountKind::Provider, d.provider_id)
        .await?
        .ok_or_else(|| Fault::Rejected(format!("no provider {}", d.provider_id)))?;
    let content = o
        .store
        .content(d.content_id)
        .await?
        .ok_or_else(|| Fault::Rejected(format!("no content {}", d.content_id)))?;
    let edge_rec = o
        .store
        .edge(d.edge_id)
        .await?
        .ok_or_else(|| Fault::Rejected("edge gone".into()))?;
    let mut postings = Vec::new();
    if d.price_cents > 0 {
        postings.push(Posting {
            debit: format!("user:{}", user.name),
            credit: format!("provider:{}", provider.name),
            amount_cents: d.price_cents,
            memo: format!("content fee: {} ({})", content.title, d.tier),
        });
    }
    if d.edge_fee_cents > 0 {
        postings.push(Posting {
            debit: format!("provider:{}", provider.name),
            credit: format!("operator:{}", edge_rec.operator),
            amount_cents: d.edge_fee_cents,
            memo: format!("edge usage: delivery {} via {}", d.id, edge.name),
        });
    }
    let applied = o
        .store
        .record_marked(d.id, r.bytes as i64, &r.sha256, r.marked_at, postings)
        .await?;
    // The bill is sent whether or not this run applied the report: a crash
    // between applying and billing must not lose the bill, and the
    // idempotency key makes a repeat land once.
    let bill = Bill {
        delivery: d.id,
        content: content.id,
        title: content.title.clone(),
        tier: r.tier,
        amount_cents: d.price_cents,
        currency: o.config.currency.clone(),
        payee: provider.name.clone(),
        edge: edge.name.clone(),
        issued_at: tracecast_store::now_ms(),
    };
    o.mailbox
        .send(
            user.box_id,
            Bill::MEDIA_TYPE,
            serde_json::to_vec(&bill).expect("serialises"),
            "origin",
            Some(format!("bill-{}", d.id)),
        )
        .await?;
    if matches!(applied, tracecast_store::Applied::Now(())) {
        tracing::info!(
            delivery = d.id, user = %user.name, edge = %edge.name, content = %content.title,
            amount = %money(d.price_cents), "delivery reported; bill sent"
        );
    }
    Ok(())
}
