//! Licence roaming over HTTP on both backends: an origin that issues only
//! ClearKey itself, with a roaming agreement; a user of a device system
//! gets a licence converted before delivery (the issuer's way in); a user
//! brings a licence and has it converted into age (their way in); the same
//! licence again, another user's licence, a forged one and one from an
//! issuer without an agreement are refused; every conversion is charged
//! once in the ledger and kept in the audit log, without keys.

use base64::Engine;
use ed25519_dalek::SigningKey;
use reqwest::{Method, StatusCode};
use serde_json::json;
use tracecast_client::{ClientError, EdgeClient};
use tracecast_protect::{Secret, SignedLicence, System, Trusted};
use tracecast_server::origin::{licences, OriginConfig};
use tracecast_server::roaming::{PackageSource, Roaming, RoamingConfig};
use tracecast_store::testing::TestStore;

use crate::common;

fn status(e: ClientError) -> StatusCode {
    match e {
        ClientError::Refused { status, .. } => status,
        other => panic!("expected a refusal, got {other}"),
    }
}

/// The roaming server "roaming" (fee 0.10) with an agreement with the
/// origin; the same keys each time, so any of them opens its licences.
fn roaming_server(
    t: &TestStore,
    origin_signing: &SigningKey,
    sources: Vec<PackageSource>,
) -> std::sync::Arc<Roaming> {
    Roaming::new(
        t.store.clone(),
        SigningKey::from_bytes(&[4; 32]),
        [5; 32],
        RoamingConfig {
            name: "roaming".into(),
            fee_cents: 10,
            agreements: vec![licences::agreement(licences::ISSUER, origin_signing)],
            sources,
        },
    )
    .unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn licences_roam_between_systems_on_both_backends() {
    let b64 = base64::engine::general_purpose::URL_SAFE_NO_PAD;
    for t in TestStore::both().await {
        eprintln!("roaming: {}", t.backend().name());
        // The origin's signing key in common::start_with is [3; 32].
        let origin_signing = SigningKey::from_bytes(&[3; 32]);
        let roaming = roaming_server(&t, &origin_signing, Vec::new());
        let config = OriginConfig {
            native_systems: vec![System::Clearkey],
            roaming: Some(roaming.clone()),
            ..OriginConfig::default()
        };
        let net = common::start_with(&t, &["tokyo"], config).await;
        // Users' boxes are on this store: the roaming server bills there.
        roaming.bill_through(net.origin.mailbox().clone(), "EUR");
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let roaming_base = format!("http://{}", listener.local_addr().unwrap());
        let _roaming_task =
            common::serve(listener, tracecast_server::roaming::router(roaming.clone()));
        let files = tempfile::tempdir().unwrap();
        let (_, provider, _) = net.account("provider", "aurora").await;
        let (_, alice, alice_token) = net.account("user", "alice").await;
        let (_, _bob, bob_token) = net.account("user", "bob").await;
        net.edges_alive().await;

        let src = common::track(files.path(), 12.0, 3);
        let c = provider
            .add_content_with(
                &src,
                &tracecast_client::ContentOptions {
                    title: "Sealed",
                    price_cents: 100,
                    protected: true,
                    marking: tracecast_delivery::ab::Marking::Direct,
                    ..Default::default()
                },
                |_, _| {},
            )
            .await
            .unwrap();
        assert!(c.protected);
        let p = alice.purchase(c.id, None, &[]).await.unwrap();
        let edge = EdgeClient::new().unwrap();
        let copy = edge.deliver(&p.edge_address, &p.ticket).await.unwrap();
        let sealed = files.path().join("sealed.tcprot");
        edge.download(&copy, &sealed, &|_, _| {}).await.unwrap();
        let sealed = std::fs::read(&sealed).unwrap();

        let issuer = alice
            .call(Method::GET, "/v1/licences/issuer", None)
            .await
            .unwrap();
        assert_eq!(issuer["systems"], json!(["clearkey"]));
        let key = |v: &serde_json::Value| {
            ed25519_dalek::VerifyingKey::from_bytes(
                &b64.decode(v.as_str().unwrap()).unwrap().try_into().unwrap(),
            )
            .unwrap()
        };
        let trusted = Trusted::new()
            .with("origin", key(&issuer["key"]))
            .with("roaming", key(&issuer["roaming"]["key"]));
        let now = tracecast_store::now_ms() / 1000;
        let licence =
            |v: serde_json::Value| -> SignedLicence { serde_json::from_value(v).unwrap() };

        // The issuer's way: alice's device system is not one the origin
        // issues; the roaming server converts before delivery.
        let (dev_secret, dev_public) = tracecast_protect::new_x25519_keypair();
        // A licence follows the delivery's settlement (its report).
        let wait = std::time::Duration::from_secs(30);
        let l = alice
            .licence(
                p.delivery,
                &format!("device:{}", b64.encode(dev_public)),
                None,
                wait,
            )
            .await
            .unwrap();
        let dl = l.verify(&trusted, "alice", now).unwrap();
        assert_eq!((dl.issuer.as_str(), dl.system), ("roaming", System::Device));
        let k = dl.content_key(&Secret::Device(dev_secret)).unwrap();
        let flac = tracecast_protect::decrypt_bytes(&sealed, dl.key_id, &k).unwrap();
        assert_eq!(&flac[..4], b"fLaC");

        // The user's way: a ClearKey licence (carrying the roaming copy)
        // brought to the roaming server and converted into age.
        // As JSON: the tests below also send it tampered with.
        let ck = serde_json::to_value(
            alice
                .licence(p.delivery, "clearkey", None, wait)
                .await
                .unwrap(),
        )
        .unwrap();
        let (age_secret, age_public) = tracecast_protect::new_age_identity();
        let as_alice = tracecast_client::OriginClient::new(&roaming_base, &alice_token).unwrap();
        let convert = |client: tracecast_client::OriginClient, lic: serde_json::Value| {
            let recipient = format!("age:{age_public}");
            async move {
                client
                    .call(
                        Method::POST,
                        "/roaming/v1/conversions",
                        Some(&json!({"licences": [lic], "recipient": recipient})),
                    )
                    .await
            }
        };
        let r = convert(as_alice.clone(), ck.clone()).await.unwrap();
        assert_eq!(
            (r["converted"].as_i64(), r["charged_cents"].as_i64()),
            (Some(1), Some(10)),
            "{r}"
        );
        let al = licence(r["results"][0]["licence"].clone())
            .verify(&trusted, "alice", now)
            .unwrap();
        assert_eq!(al.system, System::Age);
        // Alice's bill names the roaming server as the payee of its fee.
        let bill: tracecast_delivery::RoamingBill = common::find_in_box(
            &net.base,
            &alice_token,
            "user:alice",
            tracecast_delivery::RoamingBill::MEDIA_TYPE,
            |b: &tracecast_delivery::RoamingBill| b.licence == al.id,
        )
        .await;
        assert_eq!((bill.amount_cents, bill.to_system.as_str()), (10, "age"));
        assert_eq!(bill.lines.len(), 1, "{bill:?}");
        assert_eq!(
            (bill.lines[0].payee.as_str(), bill.lines[0].amount_cents),
            ("operator:roaming", 10)
        );
        assert_eq!(
            tracecast_protect::decrypt_bytes(
                &sealed,
                al.key_id,
                &al.content_key(&Secret::Age(age_secret)).unwrap()
            )
            .unwrap(),
            flac
        );
        // Replayed: converted once only.
        let again = convert(as_alice.clone(), ck.clone()).await.unwrap();
        assert_eq!(again["converted"], 0);
        assert!(
            again["results"][0]["error"]
                .as_str()
                .unwrap()
                .contains("converted before"),
            "{again}"
        );
        // Bob brings alice's licence: refused.
        let as_bob = tracecast_client::OriginClient::new(&roaming_base, &bob_token).unwrap();
        let r = convert(as_bob, ck.clone()).await.unwrap();
        assert!(
            r["results"][0]["error"]
                .as_str()
                .unwrap()
                .contains("another user"),
            "{r}"
        );
        // Forged: the payload changed.
        let mut forged = ck.clone();
        let payload = b64.decode(forged["payload"].as_str().unwrap()).unwrap();
        let text = String::from_utf8(payload)
            .unwrap()
            .replace("\"content\":", "\"content\":1");
        forged["payload"] = json!(b64.encode(text));
        let r = convert(as_alice.clone(), forged).await.unwrap();
        assert!(
            r["results"][0]["error"]
                .as_str()
                .unwrap()
                .contains("signature"),
            "{r}"
        );
        // An issuer without an agreement.
        let stranger = tracecast_protect::Issuer::new("origin", SigningKey::from_bytes(&[8; 32]));
        let foreign = stranger
            .issue(
                &tracecast_protect::Grant {
                    user: "alice",
                    content: c.id,
                    key_id: dl.key_id,
                    rights: tracecast_protect::Rights {
                        not_before: now - 5,
                        not_after: now + 60,
                    },
                    now,
                },
                &tracecast_protect::ContentKey::generate(),
                &tracecast_protect::Recipient::Clearkey,
                None,
            )
            .unwrap();
        let r = convert(as_alice.clone(), serde_json::to_value(foreign).unwrap())
            .await
            .unwrap();
        assert!(
            r["results"][0]["error"]
                .as_str()
                .unwrap()
                .contains("unknown issuer"),
            "{r}"
        );
        // The administrator token converts nothing; nor does no token.
        let admin_roaming =
            tracecast_client::OriginClient::new(&roaming_base, "tc_nobody").unwrap();
        assert_eq!(
            status(convert(admin_roaming, ck.clone()).await.unwrap_err()),
            StatusCode::UNAUTHORIZED
        );

        // Two conversions, each charged once; the audit log has no key.
        let lines = t.store.account_lines("operator:roaming").await.unwrap();
        assert_eq!(
            lines.iter().map(|l| l.amount_cents).sum::<i64>(),
            -20,
            "{lines:?}"
        );
        let audit = t.store.conversions_of("alice").await.unwrap();
        assert_eq!(
            audit
                .iter()
                .map(|a| (a.way.as_str(), a.to_system.as_str()))
                .collect::<Vec<_>>(),
            [("issuer", "device"), ("user", "age")]
        );
        let dump = format!("{audit:?}");
        assert!(!dump.contains(&b64.encode(k.as_bytes())));

        // Way 2, a package order: a roaming server with the same keys that
        // buys at this origin with a partner account.
        let (_, partner, partner_token) = net.account("partner", "roaming").await;
        let shop = roaming_server(
            &t,
            &origin_signing,
            vec![PackageSource {
                issuer: "origin".into(),
                origin: net.base.clone(),
                token: partner_token,
            }],
        );
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let shop_base = format!("http://{}", listener.local_addr().unwrap());
        shop.bill_through(net.origin.mailbox().clone(), "EUR");
        let _shop_task = common::serve(listener, tracecast_server::roaming::router(shop));
        let (age_secret, age_public) = tracecast_protect::new_age_identity();
        let alice_at_shop = tracecast_client::OriginClient::new(&shop_base, &alice_token).unwrap();
        let order = || {
            let client = alice_at_shop.clone();
            let recipient = format!("age:{age_public}");
            async move {
                client
                    .call(
                        Method::POST,
                        "/roaming/v1/orders",
                        Some(&json!({"items": [{"issuer": "origin", "content": c.id}], "recipient": recipient})),
                    )
                    .await
                    .unwrap()
            }
        };
        let r = order().await;
        assert_eq!(r["ordered"], 0, "{r}");
        assert!(
            r["results"][0]["error"]
                .as_str()
                .unwrap()
                .contains("has not consented"),
            "{r}"
        );
        alice
            .call(
                Method::PUT,
                "/v1/partners/roaming/consent",
                Some(&json!({"limit_cents": 150})),
            )
            .await
            .unwrap();
        // Under an idempotency key (the CLI sends one): sent again after a
        // lost answer, the order buys and charges nothing more.
        let body = tracecast_protect::api::PackageOrder {
            items: vec![tracecast_protect::api::PackageItem {
                issuer: "origin".into(),
                content: c.id,
                tier: None,
            }],
            recipient: format!("age:{age_public}"),
        };
        let r = alice_at_shop.package_order(&body, "order-1").await.unwrap();
        assert_eq!((r.ordered, r.charged_cents), (1, 110), "{r:?}");
        let again = alice_at_shop.package_order(&body, "order-1").await.unwrap();
        let delivery_of = |p: &tracecast_protect::api::Package| {
            p.results[0].purchase.as_ref().map(|p| p.delivery)
        };
        assert_eq!(delivery_of(&again), delivery_of(&r), "{again:?}");
        let packages = t
            .store
            .conversions_of("alice")
            .await
            .unwrap()
            .into_iter()
            .filter(|c| c.way == tracecast_protect::ConversionWay::Package)
            .count();
        assert_eq!(packages, 1, "the retried order is charged once");
        // One bill for the order, the content and the fee on their lines.
        let bill: tracecast_delivery::RoamingBill = common::find_in_box(
            &net.base,
            &alice_token,
            "user:alice",
            tracecast_delivery::RoamingBill::MEDIA_TYPE,
            |b: &tracecast_delivery::RoamingBill| b.content == c.id && b.lines.len() == 2,
        )
        .await;
        assert_eq!(bill.amount_cents, 110, "{bill:?}");
        assert!(
            bill.lines.iter().all(|l| l.payee == "operator:roaming")
                && bill.lines.iter().map(|l| l.amount_cents).sum::<i64>() == 110,
            "{bill:?}"
        );
        assert!(
            bill.lines.iter().any(|l| l.memo.contains("bought for you")),
            "{bill:?}"
        );
        let bought = r.results[0].purchase.clone().unwrap();
        let copy = edge
            .deliver(&bought.edge_address, &bought.ticket)
            .await
            .unwrap();
        let path = files.path().join("bought.tcprot");
        edge.download(&copy, &path, &|_, _| {}).await.unwrap();
        let pl = r.results[0]
            .licence
            .clone()
            .unwrap()
            .verify(&trusted, "alice", now)
            .unwrap();
        assert_eq!((pl.system, pl.content), (System::Age, c.id));
        let plain = tracecast_protect::decrypt_bytes(
            &std::fs::read(&path).unwrap(),
            pl.key_id,
            &pl.content_key(&Secret::Age(age_secret)).unwrap(),
        )
        .unwrap();
        assert_eq!(&plain[..4], b"fLaC");
        // The copy is alice's: the delivery names her, the partner pays.
        let d = t.store.delivery(bought.delivery).await.unwrap().unwrap();
        assert!(
            d.order_info.payer.as_deref() == Some("operator:roaming"),
            "{:?}",
            d.order_info
        );
        // A second would pass her limit: refused, nothing spent or charged.
        let r = order().await;
        assert_eq!(r["ordered"], 0, "{r}");
        assert!(
            r["results"][0]["error"].as_str().unwrap().contains("limit"),
            "{r}"
        );
        let consent = alice
            .call(Method::GET, "/v1/partners/roaming/consent", None)
            .await
            .unwrap();
        assert_eq!(consent["spent_cents"], 100, "{consent}");
        // The partner gets licences only for copies it bought.
        let e = partner
            .call(
                Method::POST,
                "/v1/licences",
                Some(
                    &json!({"delivery": p.delivery, "recipient": "clearkey", "for_user": "alice"}),
                ),
            )
            .await
            .unwrap_err();
        assert_eq!(status(e), StatusCode::FORBIDDEN);
        // A user cannot buy as another.
        let e = alice
            .order(&tracecast_delivery::api::PurchaseRequest {
                for_user: Some("bob".into()),
                ..tracecast_delivery::api::PurchaseRequest::download(c.id, None)
            })
            .await
            .unwrap_err();
        assert_eq!(status(e), StatusCode::BAD_REQUEST);
        let alice_lines = t.store.account_lines("user:alice").await.unwrap();
        assert!(
            alice_lines
                .iter()
                .any(|l| l.amount_cents == 100 && l.memo.contains("bought for you at origin")),
            "{alice_lines:?}"
        );

        // Way 3 from another process: a request not signed by the issuer,
        // or signed long ago, is refused.
        let remote = reqwest::Client::new();
        let signed_request = |at: i64, key: &SigningKey| {
            tracecast_server::roaming::IssuerRequest {
                issuer: "origin".into(),
                licence: licence(ck.clone()),
                recipient: "clearkey".into(),
                at,
            }
            .sign(key)
        };
        for (body, sig, want) in [
            {
                let (b, s) = signed_request(now, &SigningKey::from_bytes(&[8; 32]));
                (b, s, StatusCode::FORBIDDEN)
            },
            {
                let (b, s) = signed_request(now - 3600, &origin_signing);
                (b, s, StatusCode::FORBIDDEN)
            },
            {
                let (b, _) = signed_request(now, &origin_signing);
                (b, String::new(), StatusCode::UNAUTHORIZED)
            },
        ] {
            let r = remote
                .post(format!("{roaming_base}/roaming/v1/issuer-conversions"))
                .header(tracecast_server::roaming::ISSUER_SIGNATURE, sig)
                .body(body)
                .send()
                .await
                .unwrap();
            assert_eq!(r.status(), want);
        }
        t.finish().await;
    }
}

/// A second issuer, over HTTP both ways (DESIGN.md "002"): origin
/// "south", on a store and key of its own, issues only ClearKey and has
/// the roaming server, in another process on the first origin's store,
/// convert a device licence before answering (way 3, a signed request);
/// a user of both services brings a south licence to the roaming server
/// herself (way 1). The roaming server tells the two issuers apart by
/// name and key: a south licence passed off as the first origin's is
/// refused. Both conversions are charged and billed once.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_second_issuer_roams_over_http_on_both_backends() {
    let b64 = base64::engine::general_purpose::URL_SAFE_NO_PAD;
    let north_stores = TestStore::both().await;
    let south_stores = TestStore::both().await;
    for (t, south_t) in north_stores.into_iter().zip(south_stores) {
        eprintln!("second issuer: {}", t.backend().name());
        let north_signing = SigningKey::from_bytes(&[3; 32]);
        let south_signing = SigningKey::from_bytes(&[6; 32]);
        let roaming = Roaming::new(
            t.store.clone(),
            SigningKey::from_bytes(&[4; 32]),
            [5; 32],
            RoamingConfig {
                name: "roaming".into(),
                fee_cents: 10,
                agreements: vec![
                    licences::agreement(licences::ISSUER, &north_signing),
                    licences::agreement("south", &south_signing),
                ],
                sources: Vec::new(),
            },
        )
        .unwrap();
        let north = common::start(&t, &[]).await;
        roaming.bill_through(north.origin.mailbox().clone(), "EUR");
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let roaming_base = format!("http://{}", listener.local_addr().unwrap());
        let _roaming_task =
            common::serve(listener, tracecast_server::roaming::router(roaming.clone()));
        let south = common::start_signing(
            &south_t,
            &["osaka"],
            OriginConfig {
                issuer: "south".into(),
                native_systems: vec![System::Clearkey],
                roaming_partner: Some(licences::RoamingPartner {
                    name: "roaming".into(),
                    signing: roaming.verifying_key(),
                    agreement_key: roaming.agreement_key(),
                    url: Some(roaming_base.clone()),
                }),
                ..OriginConfig::default()
            },
            tracecast_server::node::Roles::NONE,
            [6; 32],
        )
        .await;
        // Alice has an account at each service.
        let (_, _, alice_north_token) = north.account("user", "alice").await;
        let (_, alice, _) = south.account("user", "alice").await;
        let (_, provider, _) = south.account("provider", "meridian").await;
        south.edges_alive().await;

        let files = tempfile::tempdir().unwrap();
        let c = provider
            .add_content_with(
                &common::track(files.path(), 12.0, 5),
                &tracecast_client::ContentOptions {
                    title: "Southern",
                    price_cents: 100,
                    protected: true,
                    marking: tracecast_delivery::ab::Marking::Direct,
                    ..Default::default()
                },
                |_, _| {},
            )
            .await
            .unwrap();
        let p = alice.purchase(c.id, None, &[]).await.unwrap();
        let edge = EdgeClient::new().unwrap();
        let copy = edge.deliver(&p.edge_address, &p.ticket).await.unwrap();
        let sealed = files.path().join("southern.tcprot");
        edge.download(&copy, &sealed, &|_, _| {}).await.unwrap();
        let sealed = std::fs::read(&sealed).unwrap();
        let trusted = Trusted::new()
            .with("south", south_signing.verifying_key())
            .with("roaming", roaming.verifying_key());
        let now = tracecast_store::now_ms() / 1000;
        let wait = std::time::Duration::from_secs(30);

        // Way 3: south asks the roaming server over HTTP.
        let (dev_secret, dev_public) = tracecast_protect::new_x25519_keypair();
        let l = alice
            .licence(
                p.delivery,
                &format!("device:{}", b64.encode(dev_public)),
                None,
                wait,
            )
            .await
            .unwrap();
        let dl = l.verify(&trusted, "alice", now).unwrap();
        assert_eq!((dl.issuer.as_str(), dl.system), ("roaming", System::Device));
        let k = dl.content_key(&Secret::Device(dev_secret)).unwrap();
        let flac = tracecast_protect::decrypt_bytes(&sealed, dl.key_id, &k).unwrap();
        assert_eq!(&flac[..4], b"fLaC");

        // Way 1: alice brings south's ClearKey licence herself.
        let ck = alice
            .licence(p.delivery, "clearkey", None, wait)
            .await
            .unwrap();
        assert_eq!(
            ck.verify(&trusted, "alice", now).unwrap().issuer,
            "south",
            "south issues under its own name"
        );
        let (age_secret, age_public) = tracecast_protect::new_age_identity();
        let as_alice =
            tracecast_client::OriginClient::new(&roaming_base, &alice_north_token).unwrap();
        let convert = |lic: serde_json::Value| {
            let client = as_alice.clone();
            let recipient = format!("age:{age_public}");
            async move {
                client
                    .call(
                        Method::POST,
                        "/roaming/v1/conversions",
                        Some(&json!({"licences": [lic], "recipient": recipient})),
                    )
                    .await
                    .unwrap()
            }
        };
        // Passed off as the first origin's: its key does not sign it.
        let mut relabelled = serde_json::to_value(&ck).unwrap();
        let payload = b64.decode(relabelled["payload"].as_str().unwrap()).unwrap();
        let text = String::from_utf8(payload)
            .unwrap()
            .replace("\"issuer\":\"south\"", "\"issuer\":\"origin\"");
        assert!(text.contains("\"issuer\":\"origin\""), "{text}");
        relabelled["payload"] = json!(b64.encode(text));
        let r = convert(relabelled).await;
        assert_eq!(r["converted"], 0, "{r}");
        let r = convert(serde_json::to_value(&ck).unwrap()).await;
        assert_eq!(
            (r["converted"].as_i64(), r["charged_cents"].as_i64()),
            (Some(1), Some(10)),
            "{r}"
        );
        let al: SignedLicence = serde_json::from_value(r["results"][0]["licence"].clone()).unwrap();
        let al = al.verify(&trusted, "alice", now).unwrap();
        assert_eq!(
            tracecast_protect::decrypt_bytes(
                &sealed,
                al.key_id,
                &al.content_key(&Secret::Age(age_secret)).unwrap()
            )
            .unwrap(),
            flac
        );

        // Both conversions charged once, on the roaming server's books;
        // the one alice asked for here is billed to her box here, naming
        // south. South's way-3 request names its own user, not an account
        // here, so no bill goes to a namesake's box.
        let lines = t.store.account_lines("operator:roaming").await.unwrap();
        assert_eq!(
            lines.iter().map(|l| l.amount_cents).sum::<i64>(),
            -20,
            "{lines:?}"
        );
        let audit = t.store.conversions_of("alice").await.unwrap();
        assert_eq!(
            audit
                .iter()
                .map(|a| (a.issuer.as_str(), a.way.as_str(), a.to_system.as_str()))
                .collect::<Vec<_>>(),
            [("south", "issuer", "device"), ("south", "user", "age")]
        );
        let boxname: tracecast_mailbox::BoxName = "user:alice".parse().unwrap();
        let mbc = tracecast_client::MailboxClient::new(&north.base, &alice_north_token).unwrap();
        let mut bills = Vec::new();
        let mut done = None;
        loop {
            let req = tracecast_mailbox::FetchRequest {
                want: tracecast_mailbox::Want::First,
                done: done
                    .take()
                    .map(|id| (id, tracecast_mailbox::Disposition::Delete)),
            };
            let Some(m) = mbc.fetch(&boxname, req).await.unwrap().message else {
                break;
            };
            if m.media_type == tracecast_delivery::RoamingBill::MEDIA_TYPE {
                bills.push(
                    serde_json::from_slice::<tracecast_delivery::RoamingBill>(&m.body).unwrap(),
                );
            }
            done = Some(m.id);
        }
        assert_eq!(bills.len(), 1, "{bills:?}");
        assert_eq!(
            (
                bills[0].licence.as_str(),
                bills[0].issuer.as_str(),
                bills[0].amount_cents
            ),
            (al.id.as_str(), "south", 10)
        );
        assert_ne!(bills[0].licence, dl.id);
    }
}
