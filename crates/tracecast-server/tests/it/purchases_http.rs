//! Purchases that survive failures, on both stores: a purchase retried
//! with its `Idempotency-Key` is the same delivery (never a second bill),
//! and a purchase that replaces a delivery the buyer could not fetch
//! leaves that one unbilled: refunded when it was billed already,
//! superseded (billing nothing when its report comes late) when not.

use std::future::Future;
use std::time::Duration;

use crate::common::{refused, start, track};
use reqwest::StatusCode;
use tracecast_client::EdgeClient;
use tracecast_delivery::api::PurchaseRequest;
use tracecast_store::testing::TestStore;
use tracecast_store::{AccountId, Store, UserId};

/// Waits until the origin applied the report of `delivery` (its status
/// left `designated`).
async fn reported(store: &Store, delivery: i64) -> String {
    for _ in 0..200 {
        let d = store.delivery(delivery).await.unwrap().unwrap();
        if d.marked_at.is_some() {
            return d.status.to_string();
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    panic!("delivery {delivery} was never reported");
}

/// The user's balance: what they owe (cents).
async fn owed(store: &Store, user: &str) -> i64 {
    store
        .account_lines(&format!("user:{user}"))
        .await
        .unwrap()
        .iter()
        .map(|l| l.amount_cents)
        .sum()
}

/// Waits (up to 5 s) for the origin to apply what it was sent; the
/// assertions after it say what was expected.
async fn settled<F: Future<Output = bool>>(check: impl Fn() -> F) {
    for _ in 0..100 {
        if check().await {
            return;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

async fn bills(store: &Store, user_id: i64) -> usize {
    let a = store
        .account(AccountId::User(UserId(user_id)))
        .await
        .unwrap()
        .unwrap();
    store
        .list(a.box_id, tracecast_mailbox::MessageState::Pending, 0, 100)
        .await
        .unwrap()
        .iter()
        .filter(|m| m.media_type == tracecast_delivery::Bill::MEDIA_TYPE)
        .count()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn retried_purchases_are_one_delivery_and_replaced_ones_bill_nothing() {
    for t in TestStore::both().await {
        let net = start(&t, &["tokyo", "paris"]).await;
        let refunds_before = tracecast_server::ops::metrics().refunds.get();
        let files = tempfile::tempdir().unwrap();
        let (_, provider, _) = net.account("provider", "aurora").await;
        let (alice_id, alice, _) = net.account("user", "alice").await;
        let (bob_id, bob, _) = net.account("user", "bob").await;
        net.edges_alive().await;
        let src = track(files.path(), 8.0, 3);
        let c = provider
            .add_content(&src, "Etude", 200, None, |_, _| {})
            .await
            .unwrap();
        let other = provider
            .add_content(
                &track(files.path(), 6.0, 4),
                "Prelude",
                100,
                None,
                |_, _| {},
            )
            .await
            .unwrap();
        let store = net.origin.store().clone();
        let buy = PurchaseRequest::download(c.id, None);

        // The same key: the same delivery, at the same edge, not a second.
        let first = alice.order_once(&buy, Some("k-alice-1")).await.unwrap();
        let again = alice.order_once(&buy, Some("k-alice-1")).await.unwrap();
        assert_eq!(
            (again.delivery, again.edge_id),
            (first.delivery, first.edge_id)
        );
        // Another content under the same key is a mistake, refused.
        let e = alice
            .order_once(
                &PurchaseRequest::download(other.id, None),
                Some("k-alice-1"),
            )
            .await
            .unwrap_err();
        assert_eq!(refused(e), (StatusCode::CONFLICT, "key_reused".into()));
        // Bob's key space is his own.
        let b1 = bob.order_once(&buy, Some("k-alice-1")).await.unwrap();
        assert_ne!(b1.delivery, first.delivery);
        // A malformed key is refused and opens nothing.
        let before = store
            .deliveries_of_user(UserId(alice_id))
            .await
            .unwrap()
            .len();
        let e = alice
            .order_once(&buy, Some(&"x".repeat(300)))
            .await
            .unwrap_err();
        assert_eq!(refused(e).0, StatusCode::BAD_REQUEST);
        assert_eq!(
            store
                .deliveries_of_user(UserId(alice_id))
                .await
                .unwrap()
                .len(),
            before
        );

        // Alice's copy is marked and billed; then its edge fails her
        // before a byte reaches her and she is sent to the other: the
        // first is revoked at its edge, which says it was never served,
        // and refunded.
        let edges = EdgeClient::new().unwrap();
        edges
            .deliver(&first.edge_address, &first.ticket)
            .await
            .unwrap();
        assert_eq!(reported(&store, first.delivery).await, "marked");
        settled(|| async { owed(&store, "alice").await == 200 }).await;
        assert_eq!(owed(&store, "alice").await, 200);
        let replacing = PurchaseRequest {
            avoid: vec![first.edge_id],
            replaces: Some(first.delivery),
            ..buy.clone()
        };
        let second = alice
            .order_once(&replacing, Some("k-alice-2"))
            .await
            .unwrap();
        assert_ne!(second.edge_id, first.edge_id);
        settled(|| async {
            store
                .delivery(first.delivery)
                .await
                .unwrap()
                .unwrap()
                .status
                .as_str()
                == "refunded"
        })
        .await;
        let d1 = store.delivery(first.delivery).await.unwrap().unwrap();
        assert_eq!(
            (d1.status.as_str(), d1.replaced_by),
            ("refunded", Some(second.delivery))
        );
        assert_eq!(owed(&store, "alice").await, 0, "the first bill reversed");
        // The retried replacing purchase refunds nothing more.
        let same = alice
            .order_once(&replacing, Some("k-alice-2"))
            .await
            .unwrap();
        assert_eq!(same.delivery, second.delivery);
        assert_eq!(owed(&store, "alice").await, 0);
        // The first key, asked again (a script run again after a crash),
        // answers the delivery that replaced it.
        let followed = alice.order_once(&buy, Some("k-alice-1")).await.unwrap();
        assert_eq!(followed.delivery, second.delivery);
        // A delivery is replaced once, and only by its buyer.
        let e = alice
            .order_once(&replacing, Some("k-alice-3"))
            .await
            .unwrap_err();
        assert_eq!(refused(e).0, StatusCode::CONFLICT);
        let e = bob
            .order_once(
                &PurchaseRequest {
                    replaces: Some(second.delivery),
                    ..buy.clone()
                },
                None,
            )
            .await
            .unwrap_err();
        assert_eq!(refused(e).0, StatusCode::NOT_FOUND);
        edges
            .deliver(&second.edge_address, &second.ticket)
            .await
            .unwrap();
        assert_eq!(reported(&store, second.delivery).await, "marked");
        settled(|| async { owed(&store, "alice").await == 200 }).await;
        assert_eq!(owed(&store, "alice").await, 200, "alice pays once");
        // Her box: the first bill, its refund, the second bill.
        settled(|| async { bills(&store, alice_id).await == 3 }).await;
        assert_eq!(bills(&store, alice_id).await, 3);

        // Bob's first delivery is replaced before its edge marks it: it is
        // revoked there, bills nothing, and its ticket no longer makes a
        // copy.
        let b2 = bob
            .order_once(
                &PurchaseRequest {
                    avoid: vec![b1.edge_id],
                    replaces: Some(b1.delivery),
                    ..buy.clone()
                },
                None,
            )
            .await
            .unwrap();
        settled(|| async {
            store
                .delivery(b1.delivery)
                .await
                .unwrap()
                .unwrap()
                .status
                .as_str()
                == "superseded"
        })
        .await;
        assert_eq!(
            store.delivery(b1.delivery).await.unwrap().unwrap().status,
            tracecast_delivery::DeliveryStatus::Superseded
        );
        let e = edges
            .deliver(&b1.edge_address, &b1.ticket)
            .await
            .unwrap_err();
        assert_eq!(refused(e), (StatusCode::GONE, "replaced".into()));
        edges.deliver(&b2.edge_address, &b2.ticket).await.unwrap();
        assert_eq!(reported(&store, b2.delivery).await, "marked");
        settled(|| async { owed(&store, "bob").await == 200 && bills(&store, bob_id).await == 1 })
            .await;
        assert_eq!(owed(&store, "bob").await, 200, "bob pays once");
        assert!(!store
            .ledger_event_exists(&format!("delivery-{}/marked", b1.delivery))
            .await
            .unwrap());
        assert_eq!(bills(&store, bob_id).await, 1);
        // Erin followed her copy as it was marked and its edge died before
        // the copy was whole: bytes left (the edge noted it), yet no copy
        // was kept or reported. A partial copy is no sale: revoked, it is
        // superseded, and the replacement bills her the price, once (were
        // it counted served, the replacement would be waived and she
        // would pay nothing at all).
        let (_, erin, _) = net.account("user", "erin").await;
        let e1 = erin.order_once(&buy, None).await.unwrap();
        store
            .set_edge_copy_served(
                tracecast_store::EdgeId(e1.edge_id),
                e1.delivery,
                tracecast_store::now_ms(),
            )
            .await
            .unwrap();
        let e2 = erin
            .order_once(
                &PurchaseRequest {
                    avoid: vec![e1.edge_id],
                    replaces: Some(e1.delivery),
                    ..buy.clone()
                },
                None,
            )
            .await
            .unwrap();
        let erin_first = || async { store.delivery(e1.delivery).await.unwrap().unwrap().status };
        settled(|| async { erin_first().await == tracecast_delivery::DeliveryStatus::Superseded })
            .await;
        assert_eq!(
            erin_first().await,
            tracecast_delivery::DeliveryStatus::Superseded
        );
        edges.deliver(&e2.edge_address, &e2.ticket).await.unwrap();
        assert_eq!(reported(&store, e2.delivery).await, "marked");
        settled(|| async { owed(&store, "erin").await == 200 }).await;
        assert_eq!(owed(&store, "erin").await, 200, "erin pays once");

        // A replacing purchase whose first try stopped half way (the
        // origin died after opening the new delivery; then, for dave,
        // after the ledger refund but before the refund bill): retried
        // with its key, it finishes settling the delivery it replaces.
        for (name, stopped_after_refund) in [("carol", false), ("dave", true)] {
            let (user_id, user, _) = net.account("user", name).await;
            let d1 = user.order_once(&buy, None).await.unwrap();
            edges.deliver(&d1.edge_address, &d1.ticket).await.unwrap();
            assert_eq!(reported(&store, d1.delivery).await, "marked");
            settled(|| async {
                owed(&store, name).await == 200 && bills(&store, user_id).await == 1
            })
            .await;
            assert_eq!(owed(&store, name).await, 200);
            let r1 = store.delivery(d1.delivery).await.unwrap().unwrap();
            let other_edge = if d1.edge_id == first.edge_id {
                second.edge_id
            } else {
                first.edge_id
            };
            let key = format!("k-{name}-2");
            let (opened, _) = store
                .open_delivery(&tracecast_store::NewDelivery {
                    content_id: r1.content_id,
                    tier: r1.tier,
                    user_id: UserId(user_id),
                    provider_id: r1.provider_id,
                    edge_id: tracecast_store::EdgeId(other_edge),
                    price_cents: r1.price_cents,
                    edge_fee_cents: r1.edge_fee_cents,
                    mode: r1.mode,
                    site_id: None,
                    site_fee_cents: 0,
                    // What the purchase path keeps: the delivery it replaces.
                    order_info: tracecast_delivery::OrderInfo {
                        replaces: Some(d1.delivery),
                        ..Default::default()
                    },
                    purchase_key: Some(key.clone()),
                })
                .await
                .unwrap();
            if stopped_after_refund {
                store
                    .supersede_delivery(
                        d1.delivery,
                        opened.id,
                        &format!("delivery-{}/refund", d1.delivery),
                    )
                    .await
                    .unwrap();
                assert_eq!(owed(&store, name).await, 0);
                assert_eq!(bills(&store, user_id).await, 1, "the refund bill was lost");
            }
            let replacing = PurchaseRequest {
                avoid: vec![d1.edge_id],
                replaces: Some(d1.delivery),
                ..buy.clone()
            };
            for _ in 0..2 {
                let retried = user.order_once(&replacing, Some(&key)).await.unwrap();
                assert_eq!(retried.delivery, opened.id);
                // Settled once its edge revoked the unserved copy.
                settled(|| async {
                    store
                        .delivery(d1.delivery)
                        .await
                        .unwrap()
                        .unwrap()
                        .status
                        .as_str()
                        == "refunded"
                        && bills(&store, user_id).await == 2
                })
                .await;
                let r1 = store.delivery(d1.delivery).await.unwrap().unwrap();
                assert_eq!(
                    (r1.status.as_str(), r1.replaced_by),
                    ("refunded", Some(opened.id)),
                    "{name}"
                );
                assert_eq!(
                    owed(&store, name).await,
                    0,
                    "{name}: the bill reversed once"
                );
                assert_eq!(bills(&store, user_id).await, 2, "{name}: bill and refund");
            }
        }

        // The books balance.
        let total: i64 = store.balances().await.unwrap().iter().map(|b| b.1).sum();
        assert_eq!(total, 0);
        // Refunds the origin made on this store: alice's and carol's (dave's
        // was made by hand above; supersessions are not refunds).
        let refunds = tracecast_server::ops::metrics().refunds.get() - refunds_before;
        assert_eq!(refunds, 2);
    }
}

/// A revocation does not wait out a copy being marked as it is served
/// (which would hold every order queued behind it at that edge): the
/// marking stops, its follower's transfer breaks off, no copy is kept,
/// and the delivery is superseded, its replacement billed.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_revocation_stops_a_copy_being_marked() {
    for t in TestStore::both().await {
        let net = start(&t, &["tokyo", "paris"]).await;
        let files = tempfile::tempdir().unwrap();
        let (_, provider, _) = net.account("provider", "aurora").await;
        let (_, alice, _) = net.account("user", "alice").await;
        net.edges_alive().await;
        // Long enough that its marking outlasts a purchase and an order.
        let c = provider
            .add_content(
                &track(files.path(), 240.0, 6),
                "Long Nocturne",
                300,
                None,
                |_, _| {},
            )
            .await
            .unwrap();
        let store = net.origin.store().clone();
        let buy = PurchaseRequest::download(c.id, Some(tracecast_delivery::Tier::Lossless));
        let p = alice.order_once(&buy, None).await.unwrap();
        let http = reqwest::Client::new();
        let r = http
            .post(format!("{}/v1/deliveries", p.edge_address))
            .header("prefer", "respond-async")
            .json(&serde_json::json!({ "ticket": p.ticket }))
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), StatusCode::ACCEPTED);
        let under_way: tracecast_delivery::api::CopyUnderWay = r.json().await.unwrap();
        let mut follow = http.get(&under_way.url).send().await.unwrap();
        assert_eq!(follow.status(), StatusCode::OK);
        // Bytes are coming: the marking is under way.
        assert!(!follow.chunk().await.unwrap().unwrap().is_empty());
        // She gives up on it and buys it again at the other edge.
        let again = alice
            .order_once(
                &PurchaseRequest {
                    avoid: vec![p.edge_id],
                    replaces: Some(p.delivery),
                    ..buy.clone()
                },
                None,
            )
            .await
            .unwrap();
        assert_ne!(again.edge_id, p.edge_id);
        // The transfer breaks off (waited out, it would have ended whole).
        let broke = loop {
            match follow.chunk().await {
                Ok(Some(_)) => continue,
                Ok(None) => break false,
                Err(_) => break true,
            }
        };
        assert!(
            broke,
            "the copy was marked to its end despite the revocation"
        );
        let first = || async { store.delivery(p.delivery).await.unwrap().unwrap().status };
        settled(|| async { first().await == tracecast_delivery::DeliveryStatus::Superseded }).await;
        assert_eq!(
            first().await,
            tracecast_delivery::DeliveryStatus::Superseded
        );
        // Nothing was kept: its ticket is refused as replaced.
        let e = EdgeClient::new()
            .unwrap()
            .deliver(&p.edge_address, &p.ticket)
            .await
            .unwrap_err();
        assert_eq!(refused(e), (StatusCode::GONE, "replaced".into()));
        drop(net);
        t.finish().await;
    }
}

/// DESIGN.md "001" step 2: with no edge holding the rendition, the one
/// nearest the buyer is designated: the buyer names their region, or the
/// origin estimates it from their address by its `[regions]` table.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn the_nearest_edge_serves_when_none_holds_the_rendition() {
    for t in TestStore::both().await {
        let regions = vec!["127.0.0.0/8".to_owned()];
        let config = tracecast_server::origin::OriginConfig {
            regions: tracecast_delivery::RegionMap::new([("us-east", regions.as_slice())]).unwrap(),
            ..Default::default()
        };
        let mut net = crate::common::start_with(&t, &[], config).await;
        // West is registered first: by load and id alone it would serve.
        net.add_edge("west", Some("eu-west-1")).await;
        net.add_edge("east", Some("us-east-1")).await;
        net.add_edge("nowhere", None).await;
        let files = tempfile::tempdir().unwrap();
        let (_, provider, _) = net.account("provider", "aurora").await;
        let (_, alice, alice_token) = net.account("user", "alice").await;
        net.edges_alive().await;
        let c = provider
            .add_content(&track(files.path(), 6.0, 3), "Etude", 200, None, |_, _| {})
            .await
            .unwrap();
        let edges = net.admin.edges().await.unwrap();
        let region_of = |name: &str| {
            edges
                .iter()
                .find(|e| e.name == name)
                .and_then(|e| e.region.clone())
                .map(|r| r.to_string())
        };
        assert_eq!(region_of("west").as_deref(), Some("eu-west-1"));
        assert_eq!(region_of("nowhere"), None);

        // Not named: estimated from the address (127.0.0.1 is us-east),
        // and the nearest serves though busier.
        let buy = PurchaseRequest::download(c.id, None);
        for _ in 0..2 {
            let p = alice.order_once(&buy, None).await.unwrap();
            assert_eq!(p.edge_name, "east");
        }
        // Named by the buyer: eu-west-2 is nearest eu-west-1; us-east-1
        // is east, though busier still.
        let named = |region: &str| PurchaseRequest {
            region: Some(region.parse().unwrap()),
            ..PurchaseRequest::download(c.id, None)
        };
        let p = alice.order_once(&named("eu-west-2"), None).await.unwrap();
        assert_eq!(p.edge_name, "west");
        let p = alice.order_once(&named("us-east-1"), None).await.unwrap();
        assert_eq!(p.edge_name, "east");
        // Avoiding the nearest, the next nearest; an edge with no region
        // only when nothing else can serve.
        let buy = PurchaseRequest {
            avoid: vec![p.edge_id],
            ..PurchaseRequest::download(c.id, None)
        };
        assert_eq!(
            alice.order_once(&buy, None).await.unwrap().edge_name,
            "west"
        );

        // Regions are checked: a malformed one is refused, and only an
        // edge has one.
        let r = reqwest::Client::new()
            .post(format!("{}/v1/purchases", net.base))
            .bearer_auth(&alice_token)
            .json(&serde_json::json!({"content": c.id, "region": "EU West"}))
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), StatusCode::UNPROCESSABLE_ENTITY);
        assert!(r.text().await.unwrap().contains("region"));
        let e = net
            .admin
            .add_account(&tracecast_delivery::api::NewAccount {
                region: Some("eu-west-1".parse().unwrap()),
                ..tracecast_delivery::api::NewAccount::named(
                    tracecast_delivery::AccountKind::User,
                    "carol",
                )
            })
            .await
            .unwrap_err();
        assert_eq!(refused(e).0, StatusCode::BAD_REQUEST);
        drop(net);
        t.finish().await;
    }
}

/// DESIGN.md "001" step 1: a provider registers with an edge operator (a
/// contract: its usage fee per delivery and, here, a monthly fee), and
/// only edges under contract with a content's provider serve it, at the
/// contract's fee.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn only_edges_under_contract_serve_a_providers_content() {
    for t in TestStore::both().await {
        let mut net = start(&t, &[]).await;
        net.add_edge_as("kanto", |e| {
            e.fee_cents = Some(7);
            e.period_fee_cents = Some(2_500);
            e.period_days = Some(30);
        })
        .await;
        net.add_edge_as("seine", |e| e.fee_cents = Some(4)).await;
        let files = tempfile::tempdir().unwrap();
        let (_, aurora, _) = net.account("provider", "aurora").await;
        let (_, borealis, _) = net.account("provider", "borealis").await;
        let (_, alice, _) = net.account("user", "alice").await;
        net.edges_alive().await;
        let c = aurora
            .add_content(&track(files.path(), 6.0, 3), "Etude", 200, None, |_, _| {})
            .await
            .unwrap();
        let d = borealis
            .add_content(
                &track(files.path(), 6.0, 4),
                "Prelude",
                100,
                None,
                |_, _| {},
            )
            .await
            .unwrap();
        let buy = |id| PurchaseRequest::download(id, None);
        let no_contract = |e| {
            refused(e)
                == (
                    StatusCode::UNPROCESSABLE_ENTITY,
                    "no_contracted_edge".into(),
                )
        };

        // No contract: no edge serves, none takes the content ahead.
        assert!(no_contract(
            alice.order_once(&buy(c.id), None).await.unwrap_err()
        ));
        let ahead = tracecast_delivery::api::PrePositionRequest {
            tier: Some(tracecast_delivery::Tier::High),
            edges: vec![],
        };
        assert!(no_contract(
            aurora.pre_position(c.id, &ahead).await.unwrap_err()
        ));
        // Only a provider signs, for itself.
        for who in [&alice, &net.admin] {
            let e = who.sign_contract("kanto").await.unwrap_err();
            assert_eq!(refused(e).0, StatusCode::FORBIDDEN);
        }
        let e = aurora.sign_contract("atlantis").await.unwrap_err();
        assert_eq!(refused(e).0, StatusCode::NOT_FOUND);

        // Aurora signs with kanto: its first month is on aurora's statement.
        let k = aurora.sign_contract("kanto").await.unwrap();
        assert_eq!(
            (
                k.fee_cents,
                k.period_fee_cents,
                k.period_days,
                k.periods_charged
            ),
            (7, 2_500, 30, 1)
        );
        let statement = aurora.invoice(None).await.unwrap();
        let month: Vec<_> = statement
            .lines
            .iter()
            .filter(|l| l.memo.contains("edge contract: kanto"))
            .collect();
        assert_eq!(month.len(), 1, "{statement:?}");
        assert_eq!(month[0].amount_cents, 2_500);
        let e = aurora.sign_contract("kanto").await.unwrap_err();
        assert_eq!(
            refused(e),
            (StatusCode::CONFLICT, "contract_in_force".into())
        );

        // Kanto serves aurora's content, at the contract's fee; not
        // borealis's, who has no contract.
        let p = alice.order_once(&buy(c.id), None).await.unwrap();
        assert_eq!(p.edge_name, "kanto");
        let rec = net
            .origin
            .store()
            .delivery(p.delivery)
            .await
            .unwrap()
            .unwrap();
        assert_eq!(rec.edge_fee_cents, 7);
        assert!(no_contract(
            alice.order_once(&buy(d.id), None).await.unwrap_err()
        ));
        aurora.pre_position(c.id, &ahead).await.unwrap();
        borealis.sign_contract("seine").await.unwrap();
        let p = alice.order_once(&buy(d.id), None).await.unwrap();
        assert_eq!(p.edge_name, "seine");

        // Who reads which contracts.
        assert_eq!(net.admin.contracts().await.unwrap().len(), 2);
        let own = aurora.contracts().await.unwrap();
        assert_eq!((own.len(), own[0].edge.as_str()), (1, "kanto"));
        let kanto =
            tracecast_client::OriginClient::new(&net.base, &net.site_token("kanto")).unwrap();
        let theirs = kanto.contracts().await.unwrap();
        assert_eq!((theirs.len(), theirs[0].provider.as_str()), (1, "aurora"));
        let e = alice.contracts().await.unwrap_err();
        assert_eq!(refused(e).0, StatusCode::FORBIDDEN);

        // Ended, kanto no longer serves aurora; the month begun stays owed.
        let ended = aurora.end_contract("kanto").await.unwrap();
        assert!(ended.ended_at.is_some());
        assert!(no_contract(
            alice.order_once(&buy(c.id), None).await.unwrap_err()
        ));
        let e = aurora.end_contract("kanto").await.unwrap_err();
        assert_eq!(refused(e).0, StatusCode::NOT_FOUND);
        assert_eq!(
            aurora.invoice(None).await.unwrap().balance_cents,
            statement.balance_cents
        );
        drop(net);
        t.finish().await;
    }
}
