//! The origin and two edges over HTTP with the real clients, on SQLite and
//! PostgreSQL: ingest, pre-positioning, designation, marking, Range
//! serving, reports and bills through the mailbox, tracing, and the
//! refusals of bad input.

use std::time::Duration;

use ed25519_dalek::SigningKey;
use reqwest::StatusCode;
use tracecast_client::EdgeClient;
use tracecast_delivery::api::PrePositionRequest;
use tracecast_delivery::{Bill, Ticket, Tier};
use tracecast_mailbox::{BoxName, FetchRequest};
use tracecast_mark::MarkKey;
use tracecast_server::edge::{Edge, EdgeConfig, EdgeIdentity};
use tracecast_store::testing::TestStore;

use crate::common::{refused, serve, start, track, KEY};

/// A buyer who does not wait (`Prefer: respond-async`) gets the link
/// before the copy exists, and the link serves the copy as it is marked:
/// the bytes that come are the kept copy's, to the last one.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_copy_is_served_as_it_is_marked() {
    use sha2::Digest;
    for t in TestStore::both().await {
        let net = start(&t, &["tokyo"]).await;
        let files = tempfile::tempdir().unwrap();
        let (provider_id, provider, _) = net.account("provider", "aurora").await;
        let (alice_id, alice, _) = net.account("user", "alice").await;
        net.edges_alive().await;
        let src = track(files.path(), 40.0, 3);
        let c = provider
            .add_content(&src, "Long Etude", 250, None, |_, _| {})
            .await
            .unwrap();
        let p = alice
            .purchase(c.id, Some(Tier::Lossless), &[])
            .await
            .unwrap();
        let http = reqwest::Client::new();
        let ask = |prefer: bool| {
            let mut r = http
                .post(format!("{}/v1/deliveries", p.edge_address))
                .json(&serde_json::json!({ "ticket": p.ticket }));
            if prefer {
                r = r.header("prefer", "wait=10, respond-async");
            }
            r.send()
        };
        let asked = std::time::Instant::now();
        let r = ask(true).await.unwrap();
        let answered = asked.elapsed();
        assert_eq!(r.status(), StatusCode::ACCEPTED);
        assert_eq!(r.headers()["preference-applied"], "respond-async");
        let under_way: tracecast_delivery::api::CopyUnderWay = r.json().await.unwrap();
        assert_eq!(
            (under_way.delivery, under_way.media_type.as_str()),
            (p.delivery, "audio/flac")
        );
        // The link is signed like any other: an altered one is refused
        // while the copy grows.
        let forged = under_way.url.replace("sig=", "sig=00");
        assert_eq!(
            http.get(&forged).send().await.unwrap().status(),
            StatusCode::FORBIDDEN
        );
        // Asked again, it is the same copy: never a second marking.
        let again = ask(true).await.unwrap();
        match again.status() {
            StatusCode::ACCEPTED => {}
            StatusCode::OK => {
                let kept: tracecast_delivery::api::CopyInfo = again.json().await.unwrap();
                assert!(kept.kept);
            }
            other => panic!("asked again: {other}"),
        }
        let r = http.get(&under_way.url).send().await.unwrap();
        assert_eq!(r.status(), StatusCode::OK);
        let growing = r.headers().get("etag").is_none();
        if growing {
            assert_eq!(r.headers()["accept-ranges"], "none");
            assert!(r.content_length().is_none());
        }
        let mut body = Vec::new();
        let mut first_byte = None;
        let mut r = r;
        while let Some(chunk) = r.chunk().await.unwrap() {
            first_byte.get_or_insert_with(|| asked.elapsed());
            body.extend_from_slice(&chunk);
        }
        // What a buyer waits (printed, not asserted: timings vary).
        eprintln!(
            "a 40 s copy followed as it was marked: link in {answered:?}, first bytes after {:?}, whole after {:?}",
            first_byte.unwrap_or_default(),
            asked.elapsed()
        );
        // Whole now: the same ticket answers its length and hash, and
        // they are those of the bytes that came.
        let copy = EdgeClient::new()
            .unwrap()
            .deliver(&p.edge_address, &p.ticket)
            .await
            .unwrap();
        assert!(copy.kept);
        assert_eq!(copy.bytes, body.len() as u64);
        assert_eq!(copy.sha256, hex::encode(sha2::Sha256::digest(&body)));
        // A FLAC written in order: its length announced first, no MD5.
        let pcm = tracecast_media::decode_bytes(body.clone(), Some("flac")).unwrap();
        let source = tracecast_media::decode_file(&src, None).unwrap();
        assert_eq!(pcm.frames(), source.frames());
        let total = u64::from_be_bytes(body[18..26].try_into().unwrap()) & ((1 << 36) - 1);
        assert_eq!(total, source.frames() as u64);
        // And it is alice's.
        let out = files.path().join("alice.flac");
        std::fs::write(&out, &body).unwrap();
        let m = net.admin.trace(&out).await.unwrap().mark.unwrap();
        assert_eq!(
            (i64::from(m.user), i64::from(m.content_server)),
            (alice_id, provider_id)
        );
        // Without the preference the edge answers when the copy is whole.
        let plain = ask(false).await.unwrap();
        assert_eq!(plain.status(), StatusCode::OK);
        drop(net);
        t.finish().await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_purchase_is_marked_served_with_ranges_reported_billed_and_traced() {
    for t in TestStore::both().await {
        let net = start(&t, &["tokyo", "paris"]).await;
        let files = tempfile::tempdir().unwrap();
        let (provider_id, provider, _) = net.account("provider", "aurora").await;
        let (alice_id, alice, alice_token) = net.account("user", "alice").await;
        let (_, bob, _) = net.account("user", "bob").await;
        net.edges_alive().await;

        // Ingest: three renditions; the same upload again is recognised.
        let src = track(files.path(), 12.0, 1);
        let c = provider
            .add_content(&src, "Etude", 250, None, |_, _| {})
            .await
            .unwrap();
        assert_eq!(
            c.renditions.iter().map(|r| r.tier).collect::<Vec<_>>(),
            vec![Tier::Lossless, Tier::High, Tier::Preview]
        );
        let again = provider
            .add_content(&src, "Etude", 250, None, |_, _| {})
            .await
            .unwrap();
        assert!(again.existing && again.id == c.id);

        // Pre-position on paris; designation then prefers paris.
        let paris = net.edges[1].0.clone();
        provider
            .pre_position(
                c.id,
                &PrePositionRequest {
                    tier: Some(Tier::High),
                    edges: vec![i64::from(paris.id())],
                },
            )
            .await
            .unwrap();
        let mut holds = false;
        for _ in 0..100 {
            let loads = net
                .origin
                .store()
                .edge_loads(c.id, "high", 0)
                .await
                .unwrap();
            holds = loads
                .iter()
                .any(|l| l.edge.id.get() == i64::from(paris.id()) && l.holds);
            if holds {
                break;
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        assert!(holds, "paris never reported holding the rendition");
        let p = alice.purchase(c.id, Some(Tier::High), &[]).await.unwrap();
        assert_eq!(
            (p.edge_name.as_str(), p.edge_holds, p.price_cents),
            ("paris", true, 250)
        );
        // Another buyer: paris still wins, holding it, though it is busier.
        let pb = bob.purchase(c.id, Some(Tier::High), &[]).await.unwrap();
        assert_eq!(pb.edge_name, "paris");
        // Avoiding paris, the least loaded other edge is designated.
        let pt = bob
            .purchase(c.id, Some(Tier::High), &[pb.edge_id])
            .await
            .unwrap();
        assert_eq!((pt.edge_name.as_str(), pt.edge_holds), ("tokyo", false));

        // The edge marks once; a repeated request gets the kept copy.
        let edge = EdgeClient::new().unwrap();
        let copy = edge.deliver(&p.edge_address, &p.ticket).await.unwrap();
        assert!(!copy.kept);
        let kept = edge.deliver(&p.edge_address, &p.ticket).await.unwrap();
        assert!(kept.kept && kept.sha256 == copy.sha256);
        let out = files.path().join("alice.flac");
        let got = edge.download(&copy, &out, &|_, _| {}).await.unwrap();
        assert_eq!(got.bytes, copy.bytes);
        let bytes = std::fs::read(&out).unwrap();
        // The rights travel in the copy's own metadata.
        let rights = tracecast_media::read_rights(&bytes).unwrap();
        assert_eq!(
            (rights.content_id, rights.provider.as_str()),
            (c.id, "aurora")
        );

        // HTTP validators and ranges.
        let http = reqwest::Client::new();
        let etag = format!("\"{}\"", copy.sha256);
        let r = http
            .get(&copy.url)
            .header("range", "bytes=0-99")
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), StatusCode::PARTIAL_CONTENT);
        assert_eq!(
            r.headers()["content-range"],
            format!("bytes 0-99/{}", bytes.len()).as_str()
        );
        assert_eq!(r.headers()["etag"], etag.as_str());
        assert!(r.headers()["cache-control"]
            .to_str()
            .unwrap()
            .starts_with("private"));
        assert_eq!(r.bytes().await.unwrap(), bytes[..100]);
        let r = http
            .get(&copy.url)
            .header("range", "bytes=100-")
            .header("if-range", &etag)
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), StatusCode::PARTIAL_CONTENT);
        assert_eq!(r.bytes().await.unwrap(), bytes[100..]);
        let r = http
            .get(&copy.url)
            .header("range", "bytes=100-")
            .header("if-range", "\"stale\"")
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), StatusCode::OK);
        assert_eq!(r.bytes().await.unwrap().len(), bytes.len());
        let r = http
            .get(&copy.url)
            .header("range", "bytes=0-9,-10")
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), StatusCode::PARTIAL_CONTENT);
        let ct = r.headers()["content-type"].to_str().unwrap().to_owned();
        let len: usize = r.headers()["content-length"]
            .to_str()
            .unwrap()
            .parse()
            .unwrap();
        let body = r.bytes().await.unwrap();
        assert!(ct.starts_with("multipart/byteranges; boundary="));
        assert_eq!(body.len(), len);
        let tail = &bytes[bytes.len() - 10..];
        assert!(body.windows(10).any(|w| w == &bytes[..10]) && body.windows(10).any(|w| w == tail));
        let r = http
            .get(&copy.url)
            .header("range", format!("bytes={}-", bytes.len()))
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), StatusCode::RANGE_NOT_SATISFIABLE);
        assert_eq!(
            r.headers()["content-range"],
            format!("bytes */{}", bytes.len()).as_str()
        );
        let r = http
            .get(&copy.url)
            .header("if-none-match", &etag)
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), StatusCode::NOT_MODIFIED);
        let r = http.head(&copy.url).send().await.unwrap();
        assert_eq!(
            r.headers()["content-length"],
            bytes.len().to_string().as_str()
        );
        // Links are signed and expire.
        let forged = copy.url.replace("sig=", "sig=00");
        assert_eq!(
            http.get(&forged).send().await.unwrap().status(),
            StatusCode::FORBIDDEN
        );
        let other = copy.url.replace(
            &format!("/copies/{}", p.delivery),
            &format!("/copies/{}", pb.delivery),
        );
        assert_eq!(
            http.get(&other).send().await.unwrap().status(),
            StatusCode::FORBIDDEN
        );

        // The report reaches the origin: the delivery is marked, the
        // ledger has its postings, and alice gets a bill in her box.
        let mb = tracecast_client::MailboxClient::new(&net.base, &alice_token).unwrap();
        let alice_box: BoxName = "user:alice".parse().unwrap();
        let mut bill = None;
        for _ in 0..100 {
            let f = mb.fetch(&alice_box, FetchRequest::first()).await.unwrap();
            if let Some(m) = f.message {
                bill = Some(serde_json::from_slice::<Bill>(&m.body).unwrap());
                break;
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        let bill = bill.expect("a bill reaches alice");
        assert_eq!(
            (bill.delivery, bill.amount_cents, bill.payee.as_str()),
            (p.delivery, 250, "aurora")
        );
        let d = alice.delivery(p.delivery).await.unwrap();
        assert_eq!(
            d.delivery.status,
            tracecast_delivery::DeliveryStatus::Marked
        );
        assert_eq!(d.delivery.sha256.as_deref(), Some(copy.sha256.as_str()));
        // Double entry: alice owes the price to aurora, aurora owes
        // paris's operator the usage fee; the postings sum to zero.
        let postings: Vec<(String, i64)> = d
            .postings
            .iter()
            .map(|p| (p.account.clone(), p.amount_cents))
            .collect();
        assert_eq!(
            postings,
            [
                ("user:alice".to_owned(), 250),
                ("provider:aurora".to_owned(), -250),
                ("provider:aurora".to_owned(), 6),
                ("operator:op-paris".to_owned(), -6),
            ]
        );
        // Another user cannot read alice's delivery.
        assert_eq!(
            refused(bob.delivery(p.delivery).await.unwrap_err()).0,
            StatusCode::NOT_FOUND
        );

        // Tracing: the administrator learns everything; alice that it is
        // hers; bob that it is not his.
        let r = net.admin.trace(&out).await.unwrap();
        let m = r.mark.unwrap();
        assert_eq!(
            (i64::from(m.user), i64::from(m.content_server), m.edge),
            (alice_id, provider_id, paris.id())
        );
        assert_eq!(r.user.as_deref(), Some("alice"));
        assert_eq!(r.deliveries[0].delivery, p.delivery);
        assert_eq!(
            alice.trace(&out).await.unwrap().genuine_for_caller,
            Some(true)
        );
        let not_his = bob.trace(&out).await.unwrap();
        assert_eq!(not_his.genuine_for_caller, Some(false));
        assert!(not_his.deliveries.is_empty() && not_his.user.is_none());
        // The unmarked source reads as no mark.
        assert!(net.admin.trace(&src).await.unwrap().mark.is_none());

        // A ticket for paris is refused at tokyo; a forged one everywhere.
        let (tokyo_status, _) =
            refused(edge.deliver(&net.edges[0].1, &p.ticket).await.unwrap_err());
        assert_eq!(tokyo_status, StatusCode::FORBIDDEN);
        let forged = Ticket {
            user: 999,
            delivery: p.delivery,
            content: c.id,
            tier: Tier::High,
            content_server: 1,
            edge: paris.id(),
            expires: i64::MAX,
            mode: Default::default(),
            site: None,
            disc: None,
            rental_until: None,
            protected: None,
            edge_key: None,
        }
        .sign(&SigningKey::from_bytes(&[4; 32]));
        assert_eq!(
            refused(edge.deliver(&p.edge_address, &forged).await.unwrap_err()).0,
            StatusCode::FORBIDDEN
        );
        assert_eq!(
            refused(edge.deliver(&p.edge_address, "nonsense").await.unwrap_err()).0,
            StatusCode::BAD_REQUEST
        );
        let _ = &net.signing;
        drop(net);
        t.finish().await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn bad_input_is_refused_and_changes_nothing() {
    for t in TestStore::both().await {
        let net = start(&t, &["tokyo"]).await;
        let files = tempfile::tempdir().unwrap();
        let (_, provider, provider_token) = net.account("provider", "aurora").await;
        let (_, alice, _) = net.account("user", "alice").await;
        net.edges_alive().await;
        let src = track(files.path(), 6.0, 2);
        let c = provider
            .add_content(&src, "Kept", 100, None, |_, _| {})
            .await
            .unwrap();
        let before = net.origin.store().contents().await.unwrap();

        let http = reqwest::Client::new();
        let post = |body: Vec<u8>, sha: Option<&str>| {
            let mut req = http
                .post(format!("{}/v1/contents?title=x&price_cents=1", net.base))
                .bearer_auth(&provider_token)
                .body(body);
            if let Some(s) = sha {
                req = req.header(tracecast_client::SHA256_HEADER, s);
            }
            req.send()
        };
        // Damaged on the way: the hash header does not match.
        let wav = std::fs::read(&src).unwrap();
        let r = post(wav.clone(), Some(&"0".repeat(64))).await.unwrap();
        assert_eq!(r.status(), StatusCode::UNPROCESSABLE_ENTITY);
        // Not media, cut media, empty.
        let r = post(b"this is not a song".to_vec(), None).await.unwrap();
        assert_eq!(r.status(), StatusCode::UNPROCESSABLE_ENTITY);
        let r = post(wav[..200].to_vec(), None).await.unwrap();
        assert_eq!(r.status(), StatusCode::UNPROCESSABLE_ENTITY);
        let r = post(Vec::new(), None).await.unwrap();
        assert_eq!(r.status(), StatusCode::BAD_REQUEST);
        // Too short to carry a readable mark.
        let short = std::fs::read(track(files.path(), 3.0, 9)).unwrap();
        let r = post(short, None).await.unwrap();
        assert_eq!(r.status(), StatusCode::UNPROCESSABLE_ENTITY);
        assert!(r.text().await.unwrap().contains("readable mark"));
        // Random bytes never make the server fail.
        for seed in 0..20u8 {
            let junk: Vec<u8> = (0..500)
                .map(|i| (i as u8).wrapping_mul(seed).wrapping_add(seed))
                .collect();
            let r = post(junk, None).await.unwrap();
            assert!(r.status().is_client_error(), "{}", r.status());
        }
        assert_eq!(net.origin.store().contents().await.unwrap(), before);

        // Unknown content, wrong tier, wrong role.
        assert_eq!(
            refused(alice.purchase(9999, None, &[]).await.unwrap_err()).0,
            StatusCode::NOT_FOUND
        );
        assert_eq!(
            refused(
                alice
                    .purchase(c.id, Some(Tier::Large), &[])
                    .await
                    .unwrap_err()
            )
            .0,
            StatusCode::BAD_REQUEST
        );
        assert_eq!(
            refused(provider.purchase(c.id, None, &[]).await.unwrap_err()).0,
            StatusCode::FORBIDDEN
        );
        let r = alice.rendition(c.id, Tier::High, "").await.unwrap_err();
        assert_eq!(refused(r).0, StatusCode::FORBIDDEN);
        let r = http
            .post(format!("{}/v1/purchases", net.base))
            .bearer_auth("tc_nope")
            .json(&serde_json::json!({"content": c.id}))
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), StatusCode::UNAUTHORIZED);
        let r = http
            .post(format!("{}/v1/purchases", net.base))
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), StatusCode::UNAUTHORIZED);
        // Every edge avoided: no edge to designate.
        let tokyo = i64::from(net.edges[0].0.id());
        assert_eq!(
            refused(alice.purchase(c.id, None, &[tokyo]).await.unwrap_err()).0,
            StatusCode::SERVICE_UNAVAILABLE
        );

        // An edge whose origin is unreachable says so and keeps nothing.
        let dir = tempfile::tempdir().unwrap();
        let config = EdgeConfig::new("http://127.0.0.1:9", "tc_x", dir.path());
        let who = EdgeIdentity {
            id: 77,
            name: "island".into(),
            origin_key: net.signing.verifying_key(),
            wmt_key: None,
            reports_box: "role:origin-reports".parse().unwrap(),
            own_box: "edge:island".parse().unwrap(),
        };
        let island = Edge::start(t.store.clone(), MarkKey::from_bytes(KEY), config, who).unwrap();
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let address = format!("http://{}/edge", listener.local_addr().unwrap());
        let task = serve(listener, tracecast_server::edge::router(island));
        let ticket = Ticket {
            delivery: 5000,
            content: c.id,
            tier: Tier::High,
            user: 1,
            content_server: 1,
            edge: 77,
            expires: i64::MAX,
            mode: Default::default(),
            site: None,
            disc: None,
            rental_until: None,
            protected: None,
            edge_key: None,
        }
        .sign(&net.signing);
        let (status, code) = refused(
            EdgeClient::new()
                .unwrap()
                .deliver(&address, &ticket)
                .await
                .unwrap_err(),
        );
        assert_eq!(
            (status, code.as_str()),
            (StatusCode::BAD_GATEWAY, "origin_unreachable")
        );
        assert!(t
            .store
            .edge_copy(tracecast_store::EdgeId(77), 5000)
            .await
            .unwrap()
            .is_none());
        // Garbage bodies at the edge are refused, never a server error.
        for body in [
            "",
            "{}",
            "[1,2]",
            "{\"ticket\": 5}",
            "{\"ticket\": \"a.b\"}",
        ] {
            let r = http
                .post(format!("{address}/v1/deliveries"))
                .header("content-type", "application/json")
                .body(body)
                .send()
                .await
                .unwrap();
            assert!(r.status().is_client_error(), "{body}: {}", r.status());
        }
        task.abort();
        drop(net);
        t.finish().await;
    }
}
