//! Deliveries on both backends: opened under an idempotency key (once),
//! read back with their typed tier, mode, status and order, listed by
//! buyer, provider and content, marked with their sale once, replaced and
//! superseded or refunded, settled by a site's event; and a row the types
//! do not know read as an error, never as a default.

use tracecast_delivery::{DeliveryStatus, Fulfilment, Mode, OrderInfo, Tier};
use tracecast_ledger::{Flow, Party, Sale};
use tracecast_store::testing::TestStore;
use tracecast_store::{Applied, NewDelivery, Store};

use crate::common::{order, world};

fn sale(id: i64) -> tracecast_ledger::Transaction {
    Flow::Marked(Sale {
        user: Party::user("alice"),
        provider: Party::provider("aurora"),
        title: "Nocturne".into(),
        price_cents: 250,
        edge: "paris".into(),
        edge_operator: Party::operator("op"),
        edge_fee_cents: 20,
    })
    .transaction(&format!("delivery-{id}/marked"), Some(id))
}

async fn deliveries_are_kept(store: &Store) {
    let w = world(store).await;

    // Opened once per key: the same key answers the same delivery.
    let kiosk_order = OrderInfo {
        medium: Some("cd-r".into()),
        fulfilment: Some(Fulfilment::Ship {
            address: "1 Main St".into(),
        }),
        medium_cents: Some(200),
        shipping_cents: Some(450),
        ..OrderInfo::default()
    };
    let first = NewDelivery {
        order_info: kiosk_order.clone(),
        mode: Mode::Kiosk,
        ..order(&w, w.alice, Some("key-1"))
    };
    let (d1, again) = store.open_delivery(&first).await.unwrap();
    assert!(!again);
    assert_eq!(
        (d1.tier, d1.mode, d1.status, &d1.order_info),
        (
            Tier::High,
            Mode::Kiosk,
            DeliveryStatus::Designated,
            &kiosk_order
        )
    );
    let (same, again) = store.open_delivery(&first).await.unwrap();
    assert!(again);
    assert_eq!(same, d1);
    assert_eq!(
        store
            .delivery_by_purchase_key(w.alice, "key-1")
            .await
            .unwrap(),
        Some(d1.clone())
    );
    // Another buyer's key of the same name is another delivery.
    let (b1, again) = store
        .open_delivery(&order(&w, w.bob, Some("key-1")))
        .await
        .unwrap();
    assert!(!again && b1.id != d1.id);

    // Listed by buyer, provider and content.
    let mine = store
        .deliveries_where(Some(w.alice), None, None, 10)
        .await
        .unwrap();
    assert_eq!(mine.iter().map(|d| d.id).collect::<Vec<_>>(), [d1.id]);
    assert_eq!(mine[0], d1);
    let sold = store
        .deliveries_where(None, Some(w.provider), Some(w.content), 10)
        .await
        .unwrap();
    assert_eq!(
        sold.iter().map(|d| d.id).collect::<Vec<_>>(),
        [b1.id, d1.id]
    );

    // Marked with its sale once: a second report changes nothing.
    let (d2, _) = store
        .open_delivery(&order(&w, w.alice, None))
        .await
        .unwrap();
    let marked = store
        .record_marked(d2.id, 4_096, &"cd".repeat(32), 1_000, sale(d2.id))
        .await
        .unwrap();
    assert!(matches!(marked, Applied::Now(())));
    let again = store
        .record_marked(d2.id, 4_096, &"cd".repeat(32), 1_000, sale(d2.id))
        .await
        .unwrap();
    assert!(matches!(again, Applied::Before));
    let d2 = store.delivery(d2.id).await.unwrap().unwrap();
    assert_eq!(
        (d2.status, d2.bytes, d2.marked_at),
        (DeliveryStatus::Marked, Some(4_096), Some(1_000))
    );
    let postings = store.postings(d2.id).await.unwrap();
    assert_eq!(postings.iter().map(|p| p.amount_cents).sum::<i64>(), 0);
    assert_eq!(
        postings
            .iter()
            .filter(|p| p.account == "user:alice")
            .map(|p| p.amount_cents)
            .collect::<Vec<_>>(),
        [250],
        "the sale is posted once"
    );

    // Replaced: once only. A designated one is superseded (nothing was
    // billed); a marked one is refunded (its sale reversed).
    let (r1, _) = store
        .open_delivery(&order(&w, w.alice, None))
        .await
        .unwrap();
    assert!(store.begin_replacement(b1.id, r1.id).await.unwrap());
    assert!(!store.begin_replacement(b1.id, r1.id).await.unwrap());
    store
        .supersede_delivery(b1.id, r1.id, "refund-b1")
        .await
        .unwrap();
    let b1 = store.delivery(b1.id).await.unwrap().unwrap();
    assert_eq!(
        (b1.status, b1.replaced_by),
        (DeliveryStatus::Superseded, Some(r1.id))
    );
    assert!(store.begin_replacement(d2.id, r1.id).await.unwrap());
    let refund = store
        .supersede_delivery(d2.id, r1.id, "refund-d2")
        .await
        .unwrap();
    assert!(matches!(refund, Applied::Now(Some(_))), "{refund:?}");
    assert_eq!(
        store.delivery(d2.id).await.unwrap().unwrap().status,
        DeliveryStatus::Refunded
    );
    // A settled delivery is not replaced again.
    assert!(!store.begin_replacement(d2.id, d1.id).await.unwrap());

    // A site's event settles a delivery, once per event.
    let done = store
        .record_delivery_event(d1.id, "kiosk-1/d1", DeliveryStatus::DiscWritten, None)
        .await
        .unwrap();
    assert!(matches!(done, Applied::Now(())));
    assert_eq!(
        store.delivery(d1.id).await.unwrap().unwrap().status,
        DeliveryStatus::DiscWritten
    );

    // A row the types do not know is an error, not a guess.
    for (column, value) in [
        ("status", "settled"),
        ("tier", "ultra"),
        ("mode", "pigeon"),
        ("order_info", "not json"),
    ] {
        let (d, _) = store.open_delivery(&order(&w, w.bob, None)).await.unwrap();
        sqlx::query(&format!(
            "UPDATE deliveries SET {column} = $1 WHERE id = $2"
        ))
        .bind(value)
        .bind(d.id)
        .execute(store.pool())
        .await
        .unwrap();
        let read = store.delivery(d.id).await;
        assert!(read.is_err(), "{column} = {value:?} read as {read:?}");
    }
}

#[tokio::test]
async fn deliveries_on_both_backends() {
    for t in TestStore::both().await {
        eprintln!("deliveries: {}", t.backend().name());
        deliveries_are_kept(&t.store).await;
        t.finish().await;
    }
}
