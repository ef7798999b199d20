//! The abuse suite: what a hostile caller tries with an ordinary account's
//! token (or none), each on SQLite and PostgreSQL, beside the honest path
//! that must still work. Each test names the abuse of docs/security.md it
//! holds shut; removing the defence it names makes it fail.

use crate::common;

use crate::common::{refused, start, track};
use reqwest::StatusCode;
use tracecast_client::{EdgeClient, OriginClient};
use tracecast_delivery::api::NewAccount;
use tracecast_delivery::Tier;
use tracecast_store::testing::TestStore;

/// A bought copy of a fresh 10-second track, downloaded by `buyer`: the
/// content id, the delivery id and the copy's path.
async fn bought(
    net: &common::Net,
    provider: &OriginClient,
    buyer: &OriginClient,
    dir: &std::path::Path,
    seed: u64,
) -> (i64, i64, std::path::PathBuf) {
    let c = provider
        .add_content(
            &track(dir, 10.0, seed),
            &format!("Work {seed}"),
            150,
            None,
            |_, _| {},
        )
        .await
        .unwrap();
    let p = buyer.purchase(c.id, Some(Tier::High), &[]).await.unwrap();
    let edge = EdgeClient::new().unwrap();
    let copy = edge.deliver(&p.edge_address, &p.ticket).await.unwrap();
    let out = dir.join(format!("copy-{seed}-{}.flac", p.delivery));
    edge.download(&copy, &out, &|_, _| {}).await.unwrap();
    let _ = net;
    (c.id, p.delivery, out)
}

/// Abuse 8: account ids are per kind. A home server and a gateway whose
/// ids equal a user's are other parties: they learn nothing of that
/// user's copies from a trace or the delivery records, while the user's
/// own check still answers.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn an_id_of_another_kind_is_another_party() {
    for t in TestStore::both().await {
        let net = start(&t, &["tokyo"]).await;
        let files = tempfile::tempdir().unwrap();
        let (_, provider, _) = net.account("provider", "aurora").await;
        let (alice_id, alice, _) = net.account("user", "alice").await;
        let home = net
            .admin
            .add_account(&NewAccount {
                address: Some("http://127.0.0.1:9/home".into()),
                ..NewAccount::named(tracecast_delivery::AccountKind::Home, "maple")
            })
            .await
            .unwrap();
        let gateway = net
            .admin
            .add_account(&NewAccount::named(
                tracecast_delivery::AccountKind::Gateway,
                "phone",
            ))
            .await
            .unwrap();
        // The same numbers, three kinds.
        assert_eq!((home.id, gateway.id), (alice_id, alice_id));
        net.edges_alive().await;
        let (_, delivery, copy) = bought(&net, &provider, &alice, files.path(), 81).await;

        for other in [&home, &gateway] {
            let as_other = OriginClient::new(&net.base, other.token.as_deref().unwrap()).unwrap();
            let e = as_other.trace(&copy).await.unwrap_err();
            assert_eq!(
                refused(e),
                (StatusCode::FORBIDDEN, "forbidden".into()),
                "a {} traces nothing",
                other.kind
            );
            let e = as_other.delivery(delivery).await.unwrap_err();
            assert_eq!(
                refused(e),
                (StatusCode::NOT_FOUND, "unknown_delivery".into()),
                "a {} does not read alice's delivery",
                other.kind
            );
        }
        // The honest check: alice's copy is hers.
        let mine = alice.trace(&copy).await.unwrap();
        assert_eq!(mine.genuine_for_caller, Some(true));
        assert_eq!(mine.deliveries.len(), 1);
    }
}

/// Mail as `name`'s box: its client and box name.
fn mailbox(net: &common::Net, token: &str) -> tracecast_client::MailboxClient {
    tracecast_client::MailboxClient::new(&net.base, token).unwrap()
}

fn key(k: &str) -> tracecast_client::PostOptions {
    tracecast_client::PostOptions {
        idempotency_key: Some(k.into()),
        ..Default::default()
    }
}

/// Waits until the origin has billed `delivery` (its sale is in the
/// ledger); false after 10 s.
async fn billed(store: &tracecast_store::Store, delivery: i64) -> bool {
    for _ in 0..200 {
        if store
            .ledger_event_exists(&format!("delivery-{delivery}/marked"))
            .await
            .unwrap()
        {
            return true;
        }
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }
    false
}

/// Abuse 2: billing silenced through the mailbox. A user may not post to
/// the origin's reports box at all, and an idempotency key belongs to its
/// sender: another edge taking `delivery-K` first does not make the
/// designated edge's report of K a duplicate. The honest report still
/// bills the buyer.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn nobody_silences_another_partys_report() {
    use tracecast_mailbox::DELIVERY_REPORT;
    for t in TestStore::both().await {
        let net = start(&t, &["tokyo", "paris"]).await;
        let files = tempfile::tempdir().unwrap();
        let (_, provider, _) = net.account("provider", "aurora").await;
        let (_, alice, _) = net.account("user", "alice").await;
        let (_, _, mallory_token) = net.account("user", "mallory").await;
        net.edges_alive().await;
        let c = provider
            .add_content(&track(files.path(), 8.0, 21), "Etude", 120, None, |_, _| {})
            .await
            .unwrap();
        let paris = net
            .edges
            .iter()
            .find(|(e, _)| e.name() == "paris")
            .map(|(e, _)| i64::from(e.id()))
            .unwrap();
        let p = alice
            .purchase(c.id, Some(Tier::High), &[paris])
            .await
            .unwrap();
        assert_eq!(p.edge_name, "tokyo");
        let reports: tracecast_mailbox::BoxName = "role:origin-reports".parse().unwrap();
        let taken = format!("delivery-{}", p.delivery);

        // A user: refused outright, nothing stored.
        let e = mailbox(&net, &mallory_token)
            .post(&reports, DELIVERY_REPORT, "{}", &key(&taken))
            .await
            .unwrap_err();
        assert_eq!(refused(e), (StatusCode::FORBIDDEN, "not_your_box".into()));
        let e = mailbox(&net, &mallory_token)
            .post(&reports, "application/json", "{}", &key(&taken))
            .await
            .unwrap_err();
        assert_eq!(refused(e).0, StatusCode::FORBIDDEN);

        // Another edge may post reports, but the key it takes is its own.
        let paris_box = net
            .origin
            .store()
            .box_by_name(&"edge:paris".parse().unwrap())
            .await
            .unwrap();
        let paris_token = tracecast_server::auth::new_token();
        net.origin
            .store()
            .add_token(
                tracecast_server::auth::token_hash(&paris_token),
                Some(paris_box.id),
                "paris, as a hostile operator",
            )
            .await
            .unwrap();
        let squatted = mailbox(&net, &paris_token)
            .post(&reports, DELIVERY_REPORT, "{}", &key(&taken))
            .await
            .unwrap();
        assert!(!squatted.duplicate);

        // The honest path: tokyo marks, reports under the same key, and
        // alice is billed.
        let edge = EdgeClient::new().unwrap();
        edge.deliver(&p.edge_address, &p.ticket).await.unwrap();
        assert!(
            billed(net.origin.store(), p.delivery).await,
            "the designated edge's report was taken for a duplicate"
        );
    }
}

/// Abuse 10 (and the other boxes anyone could post to): only the origin
/// orders an edge; the system's own messages (bills, orders) are posted
/// only by the origin; and every fetched message says who posted it.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn orders_and_bills_come_only_from_the_origin() {
    use tracecast_delivery::{Bill, PrePosition};
    use tracecast_mailbox::{BoxName, FetchRequest, Sender};
    for t in TestStore::both().await {
        let net = start(&t, &["tokyo"]).await;
        let (_, _, mallory) = net.account("user", "mallory").await;
        let (_, _, alice) = net.account("user", "alice").await;
        let order = serde_json::to_vec(&PrePosition {
            content: 1,
            tier: Tier::High,
        })
        .unwrap();
        for to in ["edge:tokyo", "home:maple", "kiosk:corner", "partner:roam"] {
            let to: BoxName = to.parse().unwrap();
            let e = mailbox(&net, &mallory)
                .post(&to, PrePosition::MEDIA_TYPE, order.clone(), &key("x"))
                .await
                .unwrap_err();
            // Refused by the rule before the box is even looked up.
            assert_eq!(refused(e).0, StatusCode::FORBIDDEN, "{to}");
        }
        let e = mailbox(&net, &net.admin_token)
            .post(
                &"edge:tokyo".parse().unwrap(),
                PrePosition::MEDIA_TYPE,
                order.clone(),
                &key("x"),
            )
            .await
            .unwrap_err();
        assert_eq!(refused(e).0, StatusCode::FORBIDDEN);

        // A forged bill to alice: refused; a note from mallory: accepted,
        // and alice sees who sent it.
        let alice_box: BoxName = "user:alice".parse().unwrap();
        let e = mailbox(&net, &mallory)
            .post(&alice_box, Bill::MEDIA_TYPE, "{}", &key("bill-1"))
            .await
            .unwrap_err();
        assert_eq!(refused(e), (StatusCode::FORBIDDEN, "not_your_box".into()));
        mailbox(&net, &mallory)
            .post(&alice_box, "text/plain", "hello", &key("hi"))
            .await
            .unwrap();
        let got = mailbox(&net, &alice)
            .fetch(&alice_box, FetchRequest::first())
            .await
            .unwrap()
            .message
            .unwrap();
        assert_eq!(
            got.sender,
            Some(Sender::Box("user:mallory".parse().unwrap()))
        );
    }
}

/// Abuse 7: the buyer's own bytes on a home server. The purchase ticket
/// is the buyer's; a push needs the voucher of the edge the ticket names,
/// signed with that edge's push key and binding the copy's hash. The
/// buyer pushing first is refused and changes nothing; the edge's push of
/// the marked copy then lands.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn only_the_edge_pushes_a_copy_to_a_home() {
    use sha2::Digest;
    for t in TestStore::both().await {
        let mut net = start(&t, &["tokyo"]).await;
        let files = tempfile::tempdir().unwrap();
        let (_, provider, _) = net.account("provider", "aurora").await;
        let (_, alice, _) = net.account("user", "alice").await;
        let (home_id, home) = common::start_home(&mut net, &t, "maple").await;
        net.edges_alive().await;
        let c = provider
            .add_content(&track(files.path(), 8.0, 71), "Etude", 120, None, |_, _| {})
            .await
            .unwrap();
        let mut order = tracecast_delivery::api::PurchaseRequest::download(c.id, Some(Tier::High));
        order.home = Some("maple".into());
        let p = alice.order_once(&order, None).await.unwrap();

        let own = b"not the marked copy".repeat(500);
        let sha = hex::encode(sha2::Sha256::digest(&own));
        let r = reqwest::Client::new()
            .post(format!("{home}/v1/copies"))
            .header("tracecast-ticket", &p.ticket)
            .header("tracecast-sha256", &sha)
            .header("tracecast-filename", "song.flac")
            .header("content-type", "audio/flac")
            .body(own)
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), StatusCode::FORBIDDEN);
        assert!(t
            .store
            .home_copy(tracecast_store::SiteId(i64::from(home_id)), p.delivery)
            .await
            .unwrap()
            .is_none());

        // The edge's own push: the marked copy reaches the home.
        let copy = EdgeClient::new()
            .unwrap()
            .deliver(&p.edge_address, &p.ticket)
            .await
            .unwrap();
        let held = t
            .store
            .home_copy(tracecast_store::SiteId(i64::from(home_id)), p.delivery)
            .await
            .unwrap()
            .expect("the home holds the edge's copy");
        assert_eq!(held.sha256, copy.sha256);
    }
}

/// A licence's key, verified with the origin's key, and its key id.
fn licence_key(
    net: &common::Net,
    signed: tracecast_protect::SignedLicence,
) -> (tracecast_protect::KeyId, tracecast_protect::ContentKey) {
    let l = signed
        .verify_signature(
            &tracecast_protect::Trusted::new().with("origin", net.signing.verifying_key()),
        )
        .unwrap();
    let key = l.content_key(&tracecast_protect::Secret::None).unwrap();
    (l.key_id, key)
}

/// Abuse 3: a licence without paying. A licence goes only with a live,
/// settled delivery of the caller, never to a suspended member, and
/// carries the key of that buyer's copy alone: another buyer's licence
/// does not open it.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_licence_is_for_a_settled_delivery_and_opens_one_copy() {
    use std::time::Duration;
    for t in TestStore::both().await {
        let net = start(&t, &["tokyo"]).await;
        let files = tempfile::tempdir().unwrap();
        let (_, provider, _) = net.account("provider", "aurora").await;
        let (_, alice, _) = net.account("user", "alice").await;
        let (_, bob, _) = net.account("user", "bob").await;
        let (carol_id, carol, _) = net.account("user", "carol").await;
        net.edges_alive().await;
        let c = provider
            .add_content_with(
                &track(files.path(), 8.0, 31),
                &tracecast_client::ContentOptions {
                    title: "Sealed",
                    price_cents: 150,
                    terms: None,
                    rental_tariff: None,
                    reserved_up_to_order: None,
                    protected: true,
                    marking: tracecast_delivery::ab::Marking::Direct,
                },
                |_, _| {},
            )
            .await
            .unwrap();
        assert!(c.protected);
        let edge = EdgeClient::new().unwrap();
        let fetch = |p: tracecast_delivery::api::Purchase, name: &str| {
            let out = files.path().join(name);
            let edge = edge.clone();
            async move {
                let copy = edge.deliver(&p.edge_address, &p.ticket).await.unwrap();
                edge.download(&copy, &out, &|_, _| {}).await.unwrap();
                std::fs::read(&out).unwrap()
            }
        };

        // Bought but never fetched (so never billed): no licence.
        let pa = alice.purchase(c.id, None, &[]).await.unwrap();
        let e = alice
            .licence(pa.delivery, "clearkey", None, Duration::ZERO)
            .await
            .unwrap_err();
        assert_eq!(refused(e), (StatusCode::CONFLICT, "not_settled".into()));
        // Not hers: nothing, as if it did not exist.
        let e = bob
            .licence(pa.delivery, "clearkey", None, Duration::ZERO)
            .await
            .unwrap_err();
        assert_eq!(refused(e).0, StatusCode::NOT_FOUND);

        // Fetched, billed: her licence opens her copy.
        let alice_copy = fetch(pa.clone(), "alice.tcprot").await;
        let (akid, akey) = licence_key(
            &net,
            alice
                .licence(pa.delivery, "clearkey", None, Duration::from_secs(20))
                .await
                .unwrap(),
        );
        let plain = tracecast_protect::decrypt_bytes(&alice_copy, akid, &akey).unwrap();
        assert_eq!(&plain[..4], b"fLaC");

        // Bob buys his own copy: his licence opens his, not hers.
        let pb = bob.purchase(c.id, None, &[]).await.unwrap();
        let bob_copy = fetch(pb.clone(), "bob.tcprot").await;
        let (bkid, bkey) = licence_key(
            &net,
            bob.licence(pb.delivery, "clearkey", None, Duration::from_secs(20))
                .await
                .unwrap(),
        );
        assert_ne!(bkid, akid);
        assert!(tracecast_protect::decrypt_bytes(&bob_copy, bkid, &bkey).is_ok());
        assert!(tracecast_protect::decrypt_bytes(&alice_copy, bkid, &bkey).is_err());
        assert!(tracecast_protect::decrypt_bytes(&alice_copy, akid, &bkey).is_err());

        // A suspended member gets no licence, even for a settled delivery.
        let store = net.origin.store();
        store
            .add_member(
                tracecast_store::UserId(carol_id),
                1,
                None,
                0.9,
                1.0,
                0.9,
                "{}",
                Some(("op", "passport")),
            )
            .await
            .unwrap();
        let pc = carol.purchase(c.id, None, &[]).await.unwrap();
        fetch(pc.clone(), "carol.tcprot").await;
        carol
            .licence(pc.delivery, "clearkey", None, Duration::from_secs(20))
            .await
            .unwrap();
        store
            .set_member_status(
                tracecast_store::UserId(carol_id),
                tracecast_members::Status::Suspended,
            )
            .await
            .unwrap();
        let e = carol
            .licence(pc.delivery, "clearkey", None, Duration::ZERO)
            .await
            .unwrap_err();
        assert_eq!(refused(e).0, StatusCode::FORBIDDEN);
    }
}

/// What a user owes (cents), from the ledger.
async fn owed(store: &tracecast_store::Store, user: &str) -> i64 {
    store
        .account_lines(&format!("user:{user}"))
        .await
        .unwrap()
        .iter()
        .map(|l| l.amount_cents)
        .sum()
}

/// Waits up to 10 s for `check`.
async fn eventually<F: std::future::Future<Output = bool>>(check: impl Fn() -> F) -> bool {
    for _ in 0..200 {
        if check().await {
            return true;
        }
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }
    false
}

/// Abuse 1: a free copy by replacement. Alice downloads her copy, then
/// buys a replacement at another edge and never fetches it. The replaced
/// delivery is revoked at its edge before any money moves: its link and
/// ticket stop working, and since its bytes had left, it keeps its sale
/// and the replacement is free: she pays once, and has nothing for free.
/// Bob, whose edge failed him before a byte left, is refunded as before.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_replacement_never_leaves_a_free_copy() {
    use tracecast_delivery::api::PurchaseRequest;
    for t in TestStore::both().await {
        let net = start(&t, &["tokyo", "paris"]).await;
        let files = tempfile::tempdir().unwrap();
        let (_, provider, _) = net.account("provider", "aurora").await;
        let (_, alice, _) = net.account("user", "alice").await;
        let (_, bob, _) = net.account("user", "bob").await;
        net.edges_alive().await;
        let c = provider
            .add_content(&track(files.path(), 8.0, 11), "Etude", 200, None, |_, _| {})
            .await
            .unwrap();
        let store = net.origin.store().clone();
        let edge = EdgeClient::new().unwrap();
        let buy = PurchaseRequest::download(c.id, Some(Tier::High));

        // A free preview is not replaced by a paid tier.
        let preview = alice
            .order_once(&PurchaseRequest::download(c.id, Some(Tier::Preview)), None)
            .await
            .unwrap();
        assert_eq!(preview.price_cents, 0);
        let e = alice
            .order_once(
                &PurchaseRequest {
                    replaces: Some(preview.delivery),
                    ..buy.clone()
                },
                None,
            )
            .await
            .unwrap_err();
        assert_eq!(refused(e).0, StatusCode::BAD_REQUEST);

        // Alice takes the whole copy; the edge's kept copy then expires.
        let first = alice.order_once(&buy, None).await.unwrap();
        let copy = edge
            .deliver(&first.edge_address, &first.ticket)
            .await
            .unwrap();
        edge.download(&copy, &files.path().join("a.flac"), &|_, _| {})
            .await
            .unwrap();
        assert!(eventually(|| async { owed(&store, "alice").await == 200 }).await);
        store
            .delete_edge_copy(tracecast_store::EdgeId(first.edge_id), first.delivery)
            .await
            .unwrap();
        // A later purchase, retried naming her served delivery as one it
        // replaces, replaces nothing: only what it was opened for.
        let other = alice.order_once(&buy, Some("k-later")).await.unwrap();
        let retried = alice
            .order_once(
                &PurchaseRequest {
                    replaces: Some(first.delivery),
                    ..buy.clone()
                },
                Some("k-later"),
            )
            .await
            .unwrap();
        assert_eq!(retried.delivery, other.delivery);
        assert_eq!(
            store
                .delivery(first.delivery)
                .await
                .unwrap()
                .unwrap()
                .replaced_by,
            None
        );
        // ... then asks for a replacement, and never fetches it.
        let second = alice
            .order_once(
                &PurchaseRequest {
                    avoid: vec![first.edge_id],
                    replaces: Some(first.delivery),
                    ..buy.clone()
                },
                None,
            )
            .await
            .unwrap();
        assert!(
            eventually(|| async {
                store
                    .delivery(second.delivery)
                    .await
                    .unwrap()
                    .unwrap()
                    .waived_by
                    == Some(first.delivery)
            })
            .await,
            "the served copy keeps the sale; the replacement is free"
        );
        assert_eq!(owed(&store, "alice").await, 200, "alice pays once");
        let d1 = store.delivery(first.delivery).await.unwrap().unwrap();
        assert_eq!(d1.status.as_str(), "marked");
        // The replaced copy's link and ticket serve nothing any more.
        let r = reqwest::get(&copy.url).await.unwrap();
        assert_eq!(r.status(), StatusCode::GONE);
        let e = edge
            .deliver(&first.edge_address, &first.ticket)
            .await
            .unwrap_err();
        assert_eq!(refused(e), (StatusCode::GONE, "replaced".into()));
        // The free replacement, fetched after all, bills nothing more.
        edge.deliver(&second.edge_address, &second.ticket)
            .await
            .unwrap();
        assert!(
            eventually(|| async {
                store
                    .delivery(second.delivery)
                    .await
                    .unwrap()
                    .unwrap()
                    .status
                    .as_str()
                    == "marked"
            })
            .await
        );
        assert_eq!(owed(&store, "alice").await, 200, "still once");

        // Bob's edge fails him before a byte leaves: refunded, and his
        // replacement is what he pays for.
        let b1 = bob.order_once(&buy, None).await.unwrap();
        let unsent = edge.deliver(&b1.edge_address, &b1.ticket).await.unwrap();
        assert!(eventually(|| async { owed(&store, "bob").await == 200 }).await);
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
        assert!(
            eventually(|| async {
                store
                    .delivery(b1.delivery)
                    .await
                    .unwrap()
                    .unwrap()
                    .status
                    .as_str()
                    == "refunded"
            })
            .await
        );
        assert_eq!(owed(&store, "bob").await, 0);
        assert_eq!(
            reqwest::get(&unsent.url).await.unwrap().status(),
            StatusCode::GONE,
            "a refunded copy is not served"
        );
        edge.deliver(&b2.edge_address, &b2.ticket).await.unwrap();
        assert!(eventually(|| async { owed(&store, "bob").await == 200 }).await);
    }
}

/// Abuse 4: memory exhaustion through trace. A few hundred kilobytes of
/// FLAC holding 30 minutes of silence are read only as far as the
/// trace's budget (its start); a file over the upload limit is refused
/// before it is decoded; and an account's traces are rate-limited.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_trace_costs_what_its_budget_allows() {
    let files = tempfile::tempdir().unwrap();
    let bomb = files.path().join("silence.flac");
    let made = std::process::Command::new("sox")
        .args(["-D", "-n", "-r", "48000", "-c", "2", "-b", "16"])
        .arg(&bomb)
        .args(["trim", "0", "1800"])
        .status()
        .expect("sox (apt-get install sox)");
    assert!(made.success());
    assert!(std::fs::metadata(&bomb).unwrap().len() < 1 << 20);
    for t in TestStore::both().await {
        let config = tracecast_server::origin::OriginConfig {
            budgets: tracecast_server::origin::Budgets {
                trace_max_bytes: 1 << 20,
                traces_per_minute: 3,
                ..Default::default()
            },
            ..Default::default()
        };
        let net = common::start_with(&t, &[], config).await;
        let (_, mallory, _) = net.account("user", "mallory").await;
        // Read from its start only; answered, no mark.
        let r = mallory.trace(&bomb).await.unwrap();
        assert!(r.media.contains("its start was read"), "{}", r.media);
        assert!(r.media.contains("300.0 s"), "{}", r.media);
        assert_eq!(r.genuine_for_caller, Some(false));
        // Too large to take at all: 413 before any decoding.
        let big = files.path().join("big.wav");
        std::fs::write(&big, vec![7u8; 2 << 20]).unwrap();
        match mallory.trace(&big).await {
            Err(tracecast_client::ClientError::Refused { status, .. }) => {
                assert_eq!(status, StatusCode::PAYLOAD_TOO_LARGE)
            }
            // The origin answers 413 without reading the body and closes
            // the connection; a client still writing may see the close
            // (a reset) before it reads the answer. Either way nothing
            // was taken.
            Err(tracecast_client::ClientError::Transport(_)) => {}
            other => panic!("a trace over the budget was taken: {other:?}"),
        }
        // The account's rate: three a minute, then 429 with Retry-After.
        let mut limited = None;
        for _ in 0..3 {
            if let Err(e) = mallory.trace(&bomb).await {
                limited = Some(refused(e));
                break;
            }
        }
        assert_eq!(
            limited,
            Some((StatusCode::TOO_MANY_REQUESTS, "too_many_traces".into()))
        );
        // Another account is not held back by mallory's.
        let (_, alice, _) = net.account("user", "alice").await;
        assert!(alice.trace(&bomb).await.is_ok());
    }
}

/// Abuse 9: a rental that is a purchase. The rental's file is never
/// handed over in one request, every range is bounded, and ranges and
/// segments together are handed out no faster than they play (a lead of
/// a player's buffer past the viewing); the fee covers at least the
/// playback time handed out.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_rental_streams_and_is_never_handed_over() {
    use tracecast_delivery::api::PurchaseRequest;
    for t in TestStore::both().await {
        let mut net = start(&t, &["tokyo"]).await;
        let files = tempfile::tempdir().unwrap();
        let (_, provider, _) = net.account("provider", "aurora").await;
        let (_, alice, _) = net.account("user", "alice").await;
        let (home_id, _) = common::start_home(&mut net, &t, "maple").await;
        net.edges_alive().await;
        let c = provider
            .add_content_with(
                &track(files.path(), 150.0, 91),
                &tracecast_client::ContentOptions {
                    title: "Long",
                    price_cents: 900,
                    terms: None,
                    rental_tariff: Some("0.05/minute max 5.00"),
                    reserved_up_to_order: None,
                    protected: false,
                    marking: tracecast_delivery::ab::Marking::Direct,
                },
                |_, _| {},
            )
            .await
            .unwrap();
        let mut rent = PurchaseRequest::download(c.id, None);
        rent.home = Some("maple".into());
        rent.rent = true;
        let p = alice.order_once(&rent, None).await.unwrap();
        let copy = EdgeClient::new()
            .unwrap()
            .deliver(&p.edge_address, &p.ticket)
            .await
            .unwrap();
        let via = copy.via.clone().unwrap();
        let http = reqwest::Client::new();

        // The whole file in one request: refused.
        let r = http.get(&copy.url).send().await.unwrap();
        assert_eq!(r.status(), StatusCode::FORBIDDEN);
        // Ranges as fast as they can be asked for: bounded, and stopped
        // once they run a lead ahead of the playback.
        let mut got = 0u64;
        let mut stopped = None;
        while got < copy.bytes {
            let r = http
                .get(&copy.url)
                .header("range", format!("bytes={got}-"))
                .send()
                .await
                .unwrap();
            if r.status() != StatusCode::PARTIAL_CONTENT {
                stopped = Some((r.status(), r.headers().get("retry-after").cloned()));
                break;
            }
            let n = r.bytes().await.unwrap().len() as u64;
            assert!(n > 0 && n <= 1 << 20, "{n} bytes in one range");
            got += n;
        }
        let (status, retry_after) = stopped.expect("the pace stopped the reads");
        assert_eq!(status, StatusCode::TOO_MANY_REQUESTS);
        assert!(retry_after.is_some());
        assert!(
            got < copy.bytes / 2,
            "{got} of {} bytes handed out",
            copy.bytes
        );
        // The HLS stream is paced by the same account.
        let hls = via.hls.clone().unwrap();
        let playlist = http.get(&hls).send().await.unwrap().text().await.unwrap();
        let base = hls.rsplit_once('/').unwrap().0;
        let segments: Vec<&str> = playlist.lines().filter(|l| l.ends_with(".ts")).collect();
        let mut segment_stop = None;
        for (i, seg) in segments.iter().enumerate() {
            let r = http.get(format!("{base}/{seg}")).send().await.unwrap();
            if r.status() == StatusCode::TOO_MANY_REQUESTS {
                segment_stop = Some(i);
                break;
            }
            assert_eq!(r.status(), StatusCode::OK);
        }
        assert!(
            segment_stop.is_some_and(|i| i < 3),
            "segments stop at once: {segment_stop:?} of {}",
            segments.len()
        );

        // Ended: the fee covers at least what was handed out.
        let served = t
            .store
            .home_copy(tracecast_store::SiteId(i64::from(home_id)), p.delivery)
            .await
            .unwrap()
            .unwrap()
            .served_ms;
        assert!(served >= 55_000, "{served} ms handed out");
        EdgeClient::new()
            .unwrap()
            .finish(via.done.as_deref().unwrap())
            .await
            .unwrap();
        let event = format!("delivery-{}/rental-ended", p.delivery);
        let store = net.origin.store().clone();
        assert!(eventually(|| async { store.ledger_event_exists(&event).await.unwrap() }).await);
        let tariff: tracecast_ledger::RentalTariff = "0.05/minute max 5.00".parse().unwrap();
        let floor = tariff.fee(&tracecast_ledger::Viewing {
            sessions: vec![(0, served)],
        });
        let fee: i64 = store
            .account_lines("user:alice")
            .await
            .unwrap()
            .iter()
            .filter(|l| l.event == event && l.memo.starts_with("rental"))
            .map(|l| l.amount_cents)
            .sum();
        assert!(
            fee >= floor && floor >= 5,
            "fee {fee}, handed out {served} ms"
        );
    }
}

/// Audit: tokens were cached for a process's life with no revocation. A
/// replaced token stops working at once here (and within
/// `TOKEN_CACHE_SECS` in other processes); only an administrator
/// replaces another account's token.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_replaced_token_stops_working() {
    for t in TestStore::both().await {
        let net = start(&t, &[]).await;
        let (_, alice, first) = net.account("user", "alice").await;
        let (_, bob, _) = net.account("user", "bob").await;
        // Used once, so it is cached.
        alice.account().await.unwrap();
        mailbox(&net, &first).whoami().await.unwrap();
        let second = alice.replace_token(None).await.unwrap().token.unwrap();
        let e = alice.account().await.unwrap_err();
        assert_eq!(refused(e).0, StatusCode::UNAUTHORIZED);
        assert!(mailbox(&net, &first).whoami().await.is_err());
        let alice2 = OriginClient::new(&net.base, &second).unwrap();
        assert_eq!(alice2.account().await.unwrap().name, "alice");
        // Bob cannot replace hers; the administrator can.
        let e = bob
            .replace_token(Some((tracecast_delivery::AccountKind::User, "alice")))
            .await
            .unwrap_err();
        assert_eq!(refused(e).0, StatusCode::FORBIDDEN);
        let third = net
            .admin
            .replace_token(Some((tracecast_delivery::AccountKind::User, "alice")))
            .await
            .unwrap()
            .token
            .unwrap();
        assert_eq!(
            refused(alice2.account().await.unwrap_err()).0,
            StatusCode::UNAUTHORIZED
        );
        let alice3 = OriginClient::new(&net.base, &third).unwrap();
        assert_eq!(alice3.account().await.unwrap().name, "alice");
        // The administrator replaces its own token the same way.
        let admin2 = net.admin.replace_token(None).await.unwrap().token.unwrap();
        assert_eq!(
            refused(net.admin.account().await.unwrap_err()).0,
            StatusCode::UNAUTHORIZED
        );
        let admin2 = OriginClient::new(&net.base, &admin2).unwrap();
        assert_eq!(
            admin2.account().await.unwrap().kind,
            tracecast_delivery::CallerKind::Admin
        );
        // A kind no account has is refused with the kinds there are, and
        // nothing is added; nor can "admin" be made an account.
        for kind in ["wizard", "admin", "Edge"] {
            let body = serde_json::json!({ "kind": kind, "name": "merlin" });
            let e = admin2
                .call(reqwest::Method::POST, "/v1/accounts", Some(&body))
                .await
                .unwrap_err();
            assert!(refused(e).0.is_client_error(), "{kind}");
        }
        for kind in tracecast_delivery::AccountKind::ALL {
            let lookup = t.store.account_by_name(kind, "merlin").await.unwrap();
            assert!(lookup.is_none(), "{kind}");
        }
    }
}

/// Audit: two orders at once under one partner key counted twice against
/// the user's limit. The consent is spent in the transaction that opens
/// the delivery: concurrent retries open one delivery and spend once.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_partners_order_sent_twice_at_once_spends_once() {
    use tracecast_delivery::api::PurchaseRequest;
    for t in TestStore::both().await {
        let net = start(&t, &["tokyo"]).await;
        let files = tempfile::tempdir().unwrap();
        let (_, provider, _) = net.account("provider", "aurora").await;
        let (_, alice, _) = net.account("user", "alice").await;
        let (_, partner, _) = net.account("partner", "roaming").await;
        net.edges_alive().await;
        let c = provider
            .add_content(&track(files.path(), 6.0, 5), "Etude", 100, None, |_, _| {})
            .await
            .unwrap();
        alice
            .call(
                reqwest::Method::PUT,
                "/v1/partners/roaming/consent",
                Some(&serde_json::json!({"limit_cents": 1000})),
            )
            .await
            .unwrap();
        let mut order = PurchaseRequest::download(c.id, None);
        order.for_user = Some("alice".into());
        let (a, b) = tokio::join!(
            partner.order_once(&order, Some("k-1")),
            partner.order_once(&order, Some("k-1"))
        );
        assert_eq!(a.unwrap().delivery, b.unwrap().delivery);
        let consent = alice
            .call(reqwest::Method::GET, "/v1/partners/roaming/consent", None)
            .await
            .unwrap();
        assert_eq!(consent["spent_cents"], 100, "{consent}");
    }
}

/// Budgets: a JSON body is read into memory, so its size is capped per
/// route (docs/config.md, "Request budgets"): a purchase padded past
/// 64 KiB, with or without Content-Length, is refused with 413 before it
/// is parsed and buys nothing; the same purchase at its normal size works,
/// and an edge's holdings list may be larger.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_json_body_is_capped_per_route() {
    let t = TestStore::new(tracecast_store::Backend::Sqlite)
        .await
        .unwrap();
    let net = start(&t, &["tokyo"]).await;
    let (_, _, alice) = net.account("user", "alice").await;
    let http = reqwest::Client::new();
    let padded = format!(
        r#"{{"content": 1, "tier": "high", "pad": "{}"}}"#,
        "x".repeat(tracecast_server::budget::JSON_BODY)
    );
    let deliveries = || async {
        sqlx::query_scalar::<_, i64>("SELECT count(*) FROM deliveries")
            .fetch_one(t.store.pool())
            .await
            .unwrap()
    };
    let deliveries_before = deliveries().await;
    // Content-Length says it; and a chunked body that does not.
    for chunked in [false, true] {
        let body = if chunked {
            let chunks: Vec<Result<Vec<u8>, std::io::Error>> =
                vec![Ok(padded.clone().into_bytes())];
            reqwest::Body::wrap_stream(futures::stream::iter(chunks))
        } else {
            reqwest::Body::from(padded.clone())
        };
        let r = http
            .post(format!("{}/v1/purchases", net.base))
            .bearer_auth(&alice)
            .header("content-type", "application/json")
            .body(body)
            .send()
            .await
            .unwrap();
        assert_eq!(
            r.status(),
            StatusCode::PAYLOAD_TOO_LARGE,
            "chunked: {chunked}"
        );
        let e: serde_json::Value = r.json().await.unwrap();
        assert_eq!(e["error"], "too_large", "{e}");
        assert!(
            e["message"].as_str().unwrap().contains("Request budgets"),
            "{e}"
        );
    }
    assert_eq!(deliveries().await, deliveries_before);
    // Under the limit, the same route reads the body: it answers for the
    // content the body names (none such here).
    let r = http
        .post(format!("{}/v1/purchases", net.base))
        .bearer_auth(&alice)
        .header("content-type", "application/json")
        .body(r#"{"content": 1, "tier": "high", "pad": "x"}"#)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::NOT_FOUND);
    drop(net);
    t.finish().await;
}
