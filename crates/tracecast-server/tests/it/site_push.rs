//! What homes and kiosks accept from an edge: only a push with an origin
//! ticket naming them and the voucher of the edge that ticket names (the
//! buyer holds the ticket, not the edge's key), a body matching the
//! vouched SHA-256 and a plain file name;
//! a kiosk refuses an order whose image does not fit the medium (and keeps
//! refusing it when the push is retried), writing nothing. Runs on both
//! store backends.

use ed25519_dalek::SigningKey;
use reqwest::StatusCode;
use sha2::{Digest, Sha256};
use tracecast_delivery::{CopyVoucher, DiscOrder, Fulfilment, Mode, SiteTarget, Ticket, Tier};
use tracecast_server::home::{Home, HomeConfig};
use tracecast_server::kiosk::{Kiosk, KioskConfig};
use tracecast_server::site::SiteIdentity;
use tracecast_store::testing::TestStore;

const KIOSK: u16 = 3;
const HOME: u16 = 4;
/// The edge's push key.
const EDGE: [u8; 32] = [2; 32];

fn ticket(mode: Mode, site: u16, medium: &str) -> Ticket {
    Ticket {
        delivery: 41,
        content: 1,
        tier: Tier::Lossless,
        user: 7,
        content_server: 1,
        edge: 2,
        expires: i64::MAX / 2,
        mode,
        site: Some(SiteTarget {
            id: site,
            name: "s".into(),
            address: "http://127.0.0.1:1/x".into(),
        }),
        disc: (mode == Mode::Kiosk).then(|| DiscOrder {
            medium: medium.into(),
            fulfilment: Fulfilment::Pickup,
        }),
        rental_until: None,
        protected: None,
        edge_key: Some(hex::encode(
            SigningKey::from_bytes(&EDGE).verifying_key().to_bytes(),
        )),
    }
}

/// The voucher the honest edge signs for a push of `sha` (`len` bytes)
/// under a ticket's text (none for a ticket that does not read).
fn voucher(ticket: &str, sha: &str, len: u64, key: &[u8; 32]) -> Option<String> {
    use base64::Engine;
    let json = base64::engine::general_purpose::URL_SAFE_NO_PAD
        .decode(ticket.split_once('.')?.0)
        .ok()?;
    let t: Ticket = serde_json::from_slice(&json).ok()?;
    Some(
        CopyVoucher {
            delivery: t.delivery,
            edge: t.edge,
            site: t.site?.id,
            sha256: sha.to_owned(),
            bytes: len,
        }
        .sign(&SigningKey::from_bytes(key)),
    )
}

/// A push as the edge makes it: the ticket and the edge's voucher.
async fn push(
    url: &str,
    ticket: Option<&str>,
    body: &[u8],
    sha: &str,
    name: &str,
) -> (StatusCode, String) {
    let v = ticket.and_then(|t| voucher(t, sha, body.len() as u64, &EDGE));
    push_with(url, ticket, v.as_deref(), body, sha, name).await
}

async fn push_with(
    url: &str,
    ticket: Option<&str>,
    voucher: Option<&str>,
    body: &[u8],
    sha: &str,
    name: &str,
) -> (StatusCode, String) {
    let mut req = reqwest::Client::new()
        .post(url)
        .header("tracecast-sha256", sha)
        .header("tracecast-filename", name)
        .header("content-type", "audio/flac")
        .body(body.to_vec());
    if let Some(t) = ticket {
        req = req.header("tracecast-ticket", t);
    }
    if let Some(v) = voucher {
        req = req.header("tracecast-copy-voucher", v);
    }
    let resp = req.send().await.unwrap();
    (resp.status(), resp.text().await.unwrap())
}

#[tokio::test]
async fn sites_take_only_good_pushes_and_a_kiosk_refuses_what_does_not_fit() {
    for t in TestStore::both().await {
        let dir = tempfile::tempdir().unwrap();
        let origin = SigningKey::from_bytes(&[9; 32]);
        let who = |id: u16| SiteIdentity {
            id,
            name: format!("site-{id}"),
            origin_key: origin.verifying_key(),
            reports_box: "role:origin-reports".parse().unwrap(),
        };
        // The origin is not running: reports wait in the sites' outboxes.
        let kiosk = Kiosk::start(
            t.store.clone(),
            KioskConfig::new("http://127.0.0.1:9", "kiosk-token", &dir.path().join("k")),
            who(KIOSK),
        )
        .unwrap();
        let mut home_config =
            HomeConfig::new("http://127.0.0.1:9", "home-token", &dir.path().join("h"));
        home_config.sweep_every = std::time::Duration::from_millis(100);
        let home = Home::start(t.store.clone(), home_config, who(HOME)).unwrap();
        let router = tracecast_server::kiosk::router(kiosk.clone())
            .merge(tracecast_server::home::router(home));
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let base = format!("http://{}", listener.local_addr().unwrap());
        let server = tokio::spawn(async move {
            axum::serve(listener, router).await.unwrap();
        });
        let kiosk_url = format!("{base}/kiosk/v1/copies");
        let home_url = format!("{base}/home/v1/copies");

        let body: Vec<u8> = (0..2_000_000u32)
            .map(|i| (i.wrapping_mul(7919) >> 3) as u8)
            .collect();
        let sha = hex::encode(Sha256::digest(&body));
        let name = "content-1-lossless-delivery-41.flac";
        let too_small = ticket(Mode::Kiosk, KIOSK, "usb-1m").sign(&origin);
        let zeros = "0".repeat(64);

        // Bad pushes change nothing.
        let cases: Vec<(Option<String>, &str, &str, StatusCode)> = vec![
            (None, &sha, name, StatusCode::FORBIDDEN),
            (Some("garbage".into()), &sha, name, StatusCode::BAD_REQUEST),
            (
                Some(ticket(Mode::Kiosk, KIOSK, "cd-r").sign(&SigningKey::from_bytes(&[1; 32]))),
                &sha,
                name,
                StatusCode::FORBIDDEN,
            ),
            (
                Some(ticket(Mode::Kiosk, KIOSK + 1, "cd-r").sign(&origin)),
                &sha,
                name,
                StatusCode::FORBIDDEN,
            ),
            (
                Some(ticket(Mode::Rental, KIOSK, "").sign(&origin)),
                &sha,
                name,
                StatusCode::BAD_REQUEST,
            ),
            (
                Some(too_small.clone()),
                &zeros,
                name,
                StatusCode::UNPROCESSABLE_ENTITY,
            ),
            (
                Some(too_small.clone()),
                &sha,
                "../escape.flac",
                StatusCode::BAD_REQUEST,
            ),
        ];
        for (ticket, sha, name, want) in &cases {
            let (status, text) = push(&kiosk_url, ticket.as_deref(), &body, sha, name).await;
            assert_eq!(status, *want, "{ticket:?} {name}: {text}");
        }
        assert!(t
            .store
            .kiosk_order(tracecast_store::SiteId(i64::from(KIOSK)), 41)
            .await
            .unwrap()
            .is_none());

        // Too big for the stick: refused with the sizes, recorded, and
        // refused again on a retry; no image is written.
        for _ in 0..2 {
            let (status, text) = push(&kiosk_url, Some(&too_small), &body, &sha, name).await;
            assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "{text}");
            assert!(
                text.contains("does not fit") || text.contains("holds"),
                "{text}"
            );
            assert!(text.contains("nothing is charged"), "{text}");
        }
        let o = t
            .store
            .kiosk_order(tracecast_store::SiteId(i64::from(KIOSK)), 41)
            .await
            .unwrap()
            .unwrap();
        assert_eq!(o.status, tracecast_delivery::DiscStatus::Refused);
        assert!(!kiosk.image_path(41).exists());

        // Abuse 7: the buyer holds the ticket and pushes first: without
        // the edge's voucher, or with one signed by a key of their own, or
        // with the edge's voucher but other bytes, nothing is written.
        let cd = ticket(Mode::Kiosk, KIOSK, "cd-r");
        let cd = Ticket { delivery: 42, ..cd }.sign(&origin);
        let own: Vec<u8> = b"the buyer's own bytes".repeat(1000);
        let own_sha = hex::encode(Sha256::digest(&own));
        let theirs = voucher(&cd, &own_sha, own.len() as u64, &[77; 32]);
        let edges = voucher(&cd, &sha, body.len() as u64, &EDGE);
        for (v, bytes, claimed, want) in [
            (None, &own, &own_sha, StatusCode::FORBIDDEN),
            (theirs.as_deref(), &own, &own_sha, StatusCode::FORBIDDEN),
            (edges.as_deref(), &own, &own_sha, StatusCode::BAD_REQUEST),
            (
                edges.as_deref(),
                &own,
                &sha,
                StatusCode::UNPROCESSABLE_ENTITY,
            ),
        ] {
            let (status, text) = push_with(&kiosk_url, Some(&cd), v, bytes, claimed, name).await;
            assert_eq!(status, want, "{text}");
        }
        assert!(t
            .store
            .kiosk_order(tracecast_store::SiteId(i64::from(KIOSK)), 42)
            .await
            .unwrap()
            .is_none());
        assert!(!kiosk.image_path(42).exists());

        // The same copy on a CD-R is written; a retried push answers the
        // same receipt without writing a second image.
        let (status, first) = push(&kiosk_url, Some(&cd), &body, &sha, name).await;
        assert_eq!(status, StatusCode::CREATED, "{first}");
        let (status, again) = push(&kiosk_url, Some(&cd), &body, &sha, name).await;
        assert_eq!(status, StatusCode::OK);
        let a: serde_json::Value = serde_json::from_str(&first).unwrap();
        let b: serde_json::Value = serde_json::from_str(&again).unwrap();
        assert_eq!(a["via"]["disc"], b["via"]["disc"]);
        assert!(kiosk.image_path(42).exists());
        assert!(a["via"]["disc"]["image_bytes"].as_u64().unwrap() > body.len() as u64);

        // A home takes home and rental tickets only, for itself.
        let kiosk_ticket = Ticket {
            delivery: 43,
            ..ticket(Mode::Kiosk, HOME, "cd-r")
        }
        .sign(&origin);
        let (status, _) = push(&home_url, Some(&kiosk_ticket), &body, &sha, name).await;
        assert_eq!(status, StatusCode::BAD_REQUEST);
        let for_kiosk = Ticket {
            delivery: 44,
            ..ticket(Mode::Home, KIOSK, "")
        }
        .sign(&origin);
        let (status, _) = push(&home_url, Some(&for_kiosk), &body, &sha, name).await;
        assert_eq!(status, StatusCode::FORBIDDEN);
        assert!(t
            .store
            .home_copy(tracecast_store::SiteId(i64::from(HOME)), 43)
            .await
            .unwrap()
            .is_none());
        let good = Ticket {
            delivery: 45,
            ..ticket(Mode::Home, HOME, "")
        }
        .sign(&origin);
        let (status, text) = push(&home_url, Some(&good), &body, &sha, name).await;
        assert_eq!(status, StatusCode::CREATED, "{text}");
        let receipt: serde_json::Value = serde_json::from_str(&text).unwrap();
        // The link the home hands out serves the copy; altered, it is refused.
        let url = receipt["url"]
            .as_str()
            .unwrap()
            .replace("http://127.0.0.1:1/x", &format!("{base}/home"));
        let got = reqwest::get(&url).await.unwrap();
        assert_eq!(got.status(), StatusCode::OK);
        assert_eq!(got.bytes().await.unwrap().as_ref(), body.as_slice());
        let forged = url.replacen("/45/", "/46/", 1);
        assert_eq!(
            reqwest::get(&forged).await.unwrap().status(),
            StatusCode::FORBIDDEN
        );

        // A rental whose period has run out is deleted by the home's sweep;
        // its report waits in the outbox while the origin is down.
        let pcm = tracecast_media::synth::music(8.0, 44_100, 3);
        let flac = tracecast_media::encode_flac(&pcm, tracecast_media::FlacEffort::Fast).unwrap();
        let flac_sha = hex::encode(Sha256::digest(&flac));
        let mut rental = ticket(Mode::Rental, HOME, "");
        rental.delivery = 47;
        rental.rental_until = Some(tracecast_store::now_ms() / 1000 + 1);
        let (status, text) = push(
            &home_url,
            Some(&rental.sign(&origin)),
            &flac,
            &flac_sha,
            name,
        )
        .await;
        assert_eq!(status, StatusCode::CREATED, "{text}");
        let receipt: serde_json::Value = serde_json::from_str(&text).unwrap();
        assert!(receipt["via"]["hls"]
            .as_str()
            .unwrap()
            .ends_with("/index.m3u8"));
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(15);
        let ended = loop {
            let c = t
                .store
                .home_copy(tracecast_store::SiteId(i64::from(HOME)), 47)
                .await
                .unwrap()
                .unwrap();
            if c.ended_at.is_some() {
                break c;
            }
            assert!(
                std::time::Instant::now() < deadline,
                "the sweep never ended the rental"
            );
            tokio::time::sleep(std::time::Duration::from_millis(100)).await;
        };
        assert_eq!(
            ended.end_reason,
            Some(tracecast_delivery::SiteEvent::RentalEnded)
        );
        assert!(!dir.path().join("h/copies").join(&ended.file).exists());
        assert!(!dir.path().join("h/hls/47").exists());
        let pending = t
            .store
            .unreported_home_ends(tracecast_store::SiteId(i64::from(HOME)))
            .await
            .unwrap();
        assert!(pending.iter().any(|c| c.delivery_id == 47));

        server.abort();
        t.finish().await;
    }
}
