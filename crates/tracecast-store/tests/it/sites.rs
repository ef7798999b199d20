//! Homes and kiosks on both backends: registered once by name, a home's
//! copies (a retried push replaces an unended copy, never an ended one;
//! viewing sessions kept; ended once; reported once), a kiosk's orders
//! (the first outcome stands; a burned order loses its image); and a row
//! the types do not know read as an error, never as a default.

use std::collections::BTreeMap;

use tracecast_delivery::{DiscStatus, Fulfilment, Mode, Sessions, SiteEvent};
use tracecast_store::testing::TestStore;
use tracecast_store::{AccountKind, HomeCopy, KioskOrder, NewSite, SiteId, Store, UserId};

fn site(kind: AccountKind, name: &str) -> NewSite {
    NewSite {
        kind,
        name: name.into(),
        address: format!("http://{name}.lan"),
        operator: "op".into(),
        fee_cents: 30,
        payer: "user".into(),
        media: if kind == AccountKind::Kiosk {
            BTreeMap::from([("cd-r".to_owned(), 200), ("usb-16g".to_owned(), 900)])
        } else {
            BTreeMap::new()
        },
        shipping_cents: if kind == AccountKind::Kiosk { 450 } else { 0 },
    }
}

fn copy(home: SiteId, delivery: i64, mode: Mode) -> HomeCopy {
    HomeCopy {
        home_id: home,
        delivery_id: delivery,
        user_id: UserId(3),
        content_id: 9,
        mode,
        file: format!("{delivery}.flac"),
        bytes: 1_000,
        sha256: "ab".repeat(32),
        media_type: "audio/flac".into(),
        filename: "nocturne.flac".into(),
        received_at: 1_000,
        until_ms: 90_000,
        sessions: Sessions::default(),
        ended_at: None,
        end_reason: None,
        reported_at: None,
        served_ms: 0,
    }
}

fn order(kiosk: SiteId, delivery: i64, status: DiscStatus) -> KioskOrder {
    KioskOrder {
        kiosk_id: kiosk,
        delivery_id: delivery,
        user_id: UserId(3),
        content_id: 9,
        medium: "cd-r".into(),
        fulfilment: Fulfilment::Ship {
            address: "1 Main St".into(),
        },
        status,
        detail: String::new(),
        image: (status == DiscStatus::Written).then(|| format!("{delivery}.iso")),
        image_bytes: Some(2_048),
        image_sha256: Some("cd".repeat(32)),
        created_at: 5_000,
        reported_at: None,
    }
}

async fn sites_are_kept(store: &Store) {
    // Registered once by name, read back whole.
    let (account, home) = store
        .add_site(&site(AccountKind::Home, "den"), "hash-den".into())
        .await
        .unwrap();
    assert_eq!(account.id.kind(), AccountKind::Home);
    assert_eq!(home.kind, AccountKind::Home);
    let (_, kiosk) = store
        .add_site(&site(AccountKind::Kiosk, "corner-shop"), "hash-shop".into())
        .await
        .unwrap();
    assert_eq!(kiosk.media.get("usb-16g"), Some(&900));
    assert_eq!(kiosk.shipping_cents, 450);
    let again = store
        .add_site(&site(AccountKind::Kiosk, "den"), "hash-2".into())
        .await;
    assert!(again.is_err(), "a second site named den: {again:?}");
    let edge = store
        .add_site(&site(AccountKind::Edge, "paris"), "hash-3".into())
        .await;
    assert!(edge.is_err(), "an edge is not a site: {edge:?}");
    assert_eq!(store.site(home.id).await.unwrap().as_ref(), Some(&home));
    assert_eq!(
        store.site_by_name("corner-shop").await.unwrap().as_ref(),
        Some(&kiosk)
    );
    assert_eq!(
        store.sites().await.unwrap(),
        vec![home.clone(), kiosk.clone()]
    );

    // A home's copies: a retried push replaces the file of an unended copy.
    let rental = copy(home.id, 41, Mode::Rental);
    store.put_home_copy(&rental).await.unwrap();
    let mut retried = rental.clone();
    retried.file = "41-again.flac".into();
    store.put_home_copy(&retried).await.unwrap();
    let read = store.home_copy(home.id, 41).await.unwrap().unwrap();
    assert_eq!(read, retried);
    assert_eq!(read.mode, Mode::Rental);

    // Viewing sessions are kept with the playback handed out.
    let viewed = Sessions {
        spans: vec![(1_000, 4_000), (10_000, 12_500)],
    };
    store
        .set_home_sessions(home.id, 41, &viewed, 6_000)
        .await
        .unwrap();
    let read = store.home_copy(home.id, 41).await.unwrap().unwrap();
    assert_eq!(
        (read.sessions.clone(), read.served_ms),
        (viewed.clone(), 6_000)
    );

    let download = copy(home.id, 42, Mode::Home);
    store.put_home_copy(&download).await.unwrap();
    let live: Vec<i64> = store
        .live_home_copies(home.id)
        .await
        .unwrap()
        .iter()
        .map(|c| c.delivery_id)
        .collect();
    assert_eq!(live, vec![41, 42]);

    // Ended once, with its reason; then neither a push nor new sessions
    // bring it back.
    let closed = Sessions {
        spans: vec![(1_000, 4_000), (10_000, 11_000)],
    };
    assert!(store
        .end_home_copy(home.id, 41, 20_000, SiteEvent::RentalEnded, &closed)
        .await
        .unwrap());
    assert!(!store
        .end_home_copy(home.id, 41, 30_000, SiteEvent::Expired, &viewed)
        .await
        .unwrap());
    store.put_home_copy(&rental).await.unwrap();
    store
        .set_home_sessions(home.id, 41, &viewed, 9_000)
        .await
        .unwrap();
    let ended = store.home_copy(home.id, 41).await.unwrap().unwrap();
    assert_eq!(ended.ended_at, Some(20_000));
    assert_eq!(ended.end_reason, Some(SiteEvent::RentalEnded));
    assert_eq!(ended.sessions, closed);
    assert_eq!(ended.served_ms, 6_000);
    assert_eq!(ended.file, retried.file);
    let live: Vec<i64> = store
        .live_home_copies(home.id)
        .await
        .unwrap()
        .iter()
        .map(|c| c.delivery_id)
        .collect();
    assert_eq!(live, vec![42]);

    // Reported once.
    let pending = store.unreported_home_ends(home.id).await.unwrap();
    assert_eq!(pending.len(), 1);
    assert_eq!(pending[0].delivery_id, 41);
    store.set_home_reported(home.id, 41, 21_000).await.unwrap();
    assert!(store
        .unreported_home_ends(home.id)
        .await
        .unwrap()
        .is_empty());
    // Another home's copies are not this home's.
    assert!(store.home_copy(kiosk.id, 42).await.unwrap().is_none());

    // A kiosk's orders: the first outcome stands.
    let written = order(kiosk.id, 51, DiscStatus::Written);
    assert!(store.put_kiosk_order(&written).await.unwrap());
    assert!(!store
        .put_kiosk_order(&order(kiosk.id, 51, DiscStatus::Refused))
        .await
        .unwrap());
    assert_eq!(
        store.kiosk_order(kiosk.id, 51).await.unwrap().as_ref(),
        Some(&written)
    );
    let refused = order(kiosk.id, 52, DiscStatus::Refused);
    assert!(store.put_kiosk_order(&refused).await.unwrap());
    assert_eq!(
        store.kiosk_orders(kiosk.id).await.unwrap(),
        vec![written.clone(), refused.clone()]
    );
    assert_eq!(
        store.unreported_kiosk_orders(kiosk.id).await.unwrap().len(),
        2
    );
    store.set_kiosk_reported(kiosk.id, 51, 6_000).await.unwrap();
    let pending = store.unreported_kiosk_orders(kiosk.id).await.unwrap();
    assert_eq!(pending, vec![refused]);

    // Burned: the image is forgotten, the order kept.
    store.clear_kiosk_image(kiosk.id, 51).await.unwrap();
    let burned = store.kiosk_order(kiosk.id, 51).await.unwrap().unwrap();
    assert_eq!(burned.status, DiscStatus::Burned);
    assert_eq!(burned.image, None);
    assert_eq!(burned.fulfilment, written.fulfilment);

    // A row the types do not know is an error, not a guess.
    for (table, column, value) in [
        ("home_copies", "mode", "pigeon"),
        ("home_copies", "sessions", "not json"),
        ("home_copies", "sessions", "[[1]]"),
        ("home_copies", "end_reason", "vanished"),
        ("kiosk_orders", "status", "burnt"),
        ("kiosk_orders", "fulfilment", "{\"by\":\"drone\"}"),
    ] {
        let (site, key, delivery) = if table == "home_copies" {
            store
                .put_home_copy(&copy(home.id, 60, Mode::Home))
                .await
                .unwrap();
            (home.id, "home_id", 60)
        } else {
            store
                .put_kiosk_order(&order(kiosk.id, 61, DiscStatus::Written))
                .await
                .unwrap();
            (kiosk.id, "kiosk_id", 61)
        };
        sqlx::query(&format!(
            "UPDATE {table} SET {column} = $1 WHERE {key} = $2 AND delivery_id = $3"
        ))
        .bind(value)
        .bind(site.get())
        .bind(delivery)
        .execute(store.pool())
        .await
        .unwrap();
        let read = if table == "home_copies" {
            store.home_copy(site, delivery).await.map(|_| ())
        } else {
            store.kiosk_order(site, delivery).await.map(|_| ())
        };
        assert!(read.is_err(), "{table}.{column} = {value:?} was read");
        sqlx::query(&format!(
            "DELETE FROM {table} WHERE {key} = $1 AND delivery_id = $2"
        ))
        .bind(site.get())
        .bind(delivery)
        .execute(store.pool())
        .await
        .unwrap();
    }
    sqlx::query("UPDATE sites SET kind = 'edge' WHERE id = $1")
        .bind(kiosk.id.get())
        .execute(store.pool())
        .await
        .unwrap();
    assert!(
        store.site(kiosk.id).await.is_err(),
        "an edge read as a site"
    );
}

#[tokio::test]
async fn sites_on_both_backends() {
    for t in TestStore::both().await {
        eprintln!("sites: {}", t.backend().name());
        sites_are_kept(&t.store).await;
        t.finish().await;
    }
}
