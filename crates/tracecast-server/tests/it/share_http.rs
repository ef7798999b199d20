//! Sharing from a device through a gateway (DESIGN.md "000") on loopback,
//! on both backends: the service server (with the mailbox) on one port, a
//! gateway on another, a device client and a recipient.
//!
//! - set-up: a refused model, a malformed account (refused at the gateway:
//!   the service server never hears of it), an account the service never
//!   issued, a suspended one, and a good one;
//! - share: a small file travels attached, a large one by tus upload and a
//!   signed link; the recipient reads both from the mailbox and downloads
//!   the link; an altered or expired link is refused;
//! - tus: the protocol's refusals, an interrupted upload that resumes,
//!   termination, another gateway's upload unknown, expiry and the sweep.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use reqwest::StatusCode;
use sha2::{Digest, Sha256};
use tracecast_client::{
    download_link, drain, ClientError, DrainOptions, GatewayClient, Inbox, MailboxClient,
    SendOptions, ServiceClient,
};
use tracecast_delivery::LinkKey;
use tracecast_server::auth::{new_token, token_hash};
use tracecast_server::gateway::{
    ComposeAsk, Composed, Composer, Gateway, GatewayConfig, DEFAULT_ATTACHMENT_LIMIT,
};
use tracecast_server::mailbox::{self, MailboxConfig};
use tracecast_server::service::{Service, ServiceConfig};
use tracecast_share::gateway::{DevicePolicy, ServiceRequest};
use tracecast_share::message;
use tracecast_store::testing::TestStore;
use tracecast_store::{AccountKind, Blobs};

use crate::common;

/// The compose prompt in a test: the device's suggestions, recorded.
#[derive(Default)]
struct Recorder {
    asks: Mutex<Vec<ComposeAsk>>,
}

impl Composer for Recorder {
    fn compose(&self, ask: &ComposeAsk) -> Result<Composed, String> {
        self.asks.lock().unwrap().push(ask.clone());
        Ok(Composed {
            recipient: ask.suggested_to.clone().ok_or("no recipient")?,
            text: ask.suggested_text.clone().unwrap_or_default(),
        })
    }
}

struct World {
    base: String,
    gateway_base: String,
    admin: String,
    gateway_token: String,
    gateway_id: tracecast_store::GatewayId,
    bob: String,
    service: Arc<Service>,
    recorder: Arc<Recorder>,
    _tasks: Vec<tokio::task::JoinHandle<()>>,
    dir: tempfile::TempDir,
}

async fn world(t: &TestStore, upload_expiry: Duration) -> World {
    let dir = tempfile::tempdir().unwrap();
    let store = t.store.clone();
    let admin = new_token();
    store
        .add_token(token_hash(&admin), None, "admin")
        .await
        .unwrap();
    let gateway_token = new_token();
    let gw = store
        .add_account(
            AccountKind::Gateway,
            "kenji-phone",
            token_hash(&gateway_token),
            None,
        )
        .await
        .unwrap();
    let bob = new_token();
    store
        .add_account(AccountKind::User, "bob", token_hash(&bob), None)
        .await
        .unwrap();

    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let base = format!("http://{}", listener.local_addr().unwrap());
    let mut config = ServiceConfig::new(&base, dir.path().join("spool"));
    config.upload_expiry = upload_expiry;
    let service = Service::new(
        store.clone(),
        Blobs::local(&dir.path().join("blobs")).unwrap(),
        LinkKey::from_bytes([6; 32]),
        config,
    )
    .unwrap();
    let mb = mailbox::Mailbox::start(store.clone(), MailboxConfig::default());
    let router = mailbox::router(mb).merge(tracecast_server::service::router(service.clone()));
    let mut tasks = vec![common::serve(listener, router)];

    let recorder = Arc::new(Recorder::default());
    let g = Gateway::new(
        GatewayConfig {
            name: "kenji-phone".into(),
            service_url: base.clone(),
            mailbox_url: base.clone(),
            token: gateway_token.clone(),
            attachment_limit: DEFAULT_ATTACHMENT_LIMIT,
            max_content_bytes: 64 << 20,
            policy: DevicePolicy {
                allow_models: vec!["Lumix *".into(), "Pixel Tablet".into()],
                deny_models: Vec::new(),
                max_devices: 4,
            },
            state_dir: dir.path().join("gateway"),
            link_valid_for: None,
        },
        recorder.clone(),
    )
    .unwrap();
    let gl = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let gateway_base = format!("http://{}", gl.local_addr().unwrap());
    tasks.push(common::serve(gl, tracecast_server::gateway::router(g)));
    World {
        base,
        gateway_base,
        admin,
        gateway_token,
        gateway_id: gw.gateway().unwrap(),
        bob,
        service,
        recorder,
        _tasks: tasks,
        dir,
    }
}

fn refusal(e: ClientError) -> (StatusCode, String, String) {
    match e {
        ClientError::Refused {
            status,
            code,
            message,
        } => (status, code, message),
        other => panic!("expected a refusal, got {other}"),
    }
}

fn request(account: &str, model: &str) -> ServiceRequest {
    ServiceRequest {
        account: account.into(),
        model: model.into(),
        hardware: "wifi, 64 GB, 4K video".into(),
    }
}

/// Bob's mail, fetched and acknowledged: (media type, body) in order.
async fn bobs_mail(w: &World) -> Vec<(String, Vec<u8>)> {
    let client = MailboxClient::new(&w.base, &w.bob).unwrap();
    let own = client.whoami().await.unwrap().unwrap();
    let mut inbox = Inbox::open(&w.dir.path().join("bob-inbox")).unwrap();
    let mut got = Vec::new();
    drain(&client, &own, &mut inbox, &DrainOptions::default(), |m| {
        got.push((m.media_type.clone(), m.body.to_vec()))
    })
    .await
    .unwrap();
    got
}

/// A request with these headers and body.
async fn send(
    http: &reqwest::Client,
    method: reqwest::Method,
    url: &str,
    headers: &[(&str, &str)],
    body: Vec<u8>,
) -> reqwest::Response {
    let mut req = http.request(method, url).body(body);
    for (k, v) in headers {
        req = req.header(*k, *v);
    }
    req.send().await.unwrap()
}

fn bytes(n: usize, seed: u8) -> Vec<u8> {
    (0..n)
        .map(|i| (i as u32).wrapping_mul(2_654_435_761).to_le_bytes()[1] ^ seed)
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_device_shares_through_a_gateway_on_both_backends() {
    for t in TestStore::both().await {
        eprintln!("share: {}", t.backend().name());
        let w = world(&t, Duration::from_secs(3600)).await;
        let admin = ServiceClient::new(&w.base, &w.admin).unwrap();
        let camera = admin.issue_account("Kenji's camera").await.unwrap();
        assert!(camera.account.starts_with("TCA-"), "{camera:?}");
        let tablet = admin.issue_account("old tablet").await.unwrap();
        admin
            .set_account_status(&tablet.account, tracecast_share::AccountStatus::Suspended)
            .await
            .unwrap();
        admin.set_number("+1 555 0100", "user:bob").await.unwrap();
        let device = GatewayClient::new(&w.gateway_base, None).unwrap();

        // Step 3 refuses a model the gateway does not serve.
        let (status, code, message) = refusal(
            device
                .request_service(&request(&camera.account, "Canon R5"))
                .await
                .unwrap_err(),
        );
        assert_eq!(
            (status, code.as_str()),
            (StatusCode::FORBIDDEN, "not_served")
        );
        assert!(message.contains("Canon R5"), "{message}");

        // Step 6: a mistyped account is refused at the gateway and never
        // reaches the service server.
        let typo = camera
            .account
            .parse::<tracecast_share::ServiceAccount>()
            .unwrap()
            .mistyped();
        let offer = device
            .request_service(&request(&typo, "Lumix G9"))
            .await
            .unwrap();
        let camera_code = camera.code.clone().expect("a code comes with the account");
        let (status, code, message) = refusal(
            device
                .confirm(&offer, &typo, &camera_code)
                .await
                .unwrap_err(),
        );
        assert_eq!(
            (status, code.as_str()),
            (StatusCode::BAD_REQUEST, "account_format")
        );
        assert!(message.contains("check digit"), "{message}");
        assert!(t
            .store
            .gateway_devices(w.gateway_id)
            .await
            .unwrap()
            .is_empty());
        // An offer is used once.
        let (status, _, _) = refusal(
            device
                .confirm(&offer, &camera.account, &camera_code)
                .await
                .unwrap_err(),
        );
        assert_eq!(status, StatusCode::NOT_FOUND);

        // Well-formed but never issued, and issued but with a wrong code:
        // one answer, which says nothing of which accounts exist.
        let never = tracecast_share::ServiceAccount::new(99_999)
            .unwrap()
            .to_string();
        let offer = device
            .request_service(&request(&never, "Lumix G9"))
            .await
            .unwrap();
        let (status, code, never_message) = refusal(
            device
                .confirm(&offer, &never, &camera_code)
                .await
                .unwrap_err(),
        );
        assert_eq!(
            (status, code.as_str()),
            (StatusCode::FORBIDDEN, "service_refused")
        );
        assert!(never_message.contains("set-up code"), "{never_message}");
        let offer = device
            .request_service(&request(&camera.account, "Lumix G9"))
            .await
            .unwrap();
        let (status, _, wrong_message) = refusal(
            device
                .confirm(&offer, &camera.account, "0000-0000")
                .await
                .unwrap_err(),
        );
        assert_eq!(status, StatusCode::FORBIDDEN);
        assert_eq!(
            wrong_message.replace(&camera.account, "ACCOUNT"),
            never_message.replace(&never, "ACCOUNT"),
            "an unknown account and a wrong code are answered alike"
        );
        // Suspended.
        let offer = device
            .request_service(&request(&tablet.account, "Pixel Tablet"))
            .await
            .unwrap();
        let (status, _, message) = refusal(
            device
                .confirm(&offer, &tablet.account, tablet.code.as_deref().unwrap())
                .await
                .unwrap_err(),
        );
        assert_eq!(status, StatusCode::FORBIDDEN);
        assert!(message.contains("suspended"), "{message}");

        // Steps 2-9 for the camera.
        let offer = device
            .request_service(&request(&camera.account, "Lumix G9"))
            .await
            .unwrap();
        let on = device
            .confirm(&offer, &camera.account, &camera_code)
            .await
            .unwrap();
        assert_eq!(on.account, camera.account);
        assert_eq!(on.attachment_limit, 300 * 1024);
        let devices = t.store.gateway_devices(w.gateway_id).await.unwrap();
        assert_eq!(devices.len(), 1);
        assert_eq!(devices[0].model, "Lumix G9");
        // Abuse 6: whoever computes the camera's account id (serials are
        // sequential, the check digit public) but lacks its code cannot
        // set a device up in its place, nor evict it: the camera's token
        // keeps working below.
        let offer = device
            .request_service(&request(&camera.account, "Lumix G9"))
            .await
            .unwrap();
        let (status, _, _) = refusal(
            device
                .confirm(&offer, &camera.account, "a-guess")
                .await
                .unwrap_err(),
        );
        assert_eq!(status, StatusCode::FORBIDDEN);
        let devices = t.store.gateway_devices(w.gateway_id).await.unwrap();
        assert_eq!(devices.len(), 1);

        // Without the device's token, nothing is sent.
        let files = tempfile::tempdir().unwrap();
        let small = files.path().join("IMG_0001.jpg");
        std::fs::write(&small, bytes(120_000, 1)).unwrap();
        let options = SendOptions {
            filename: "IMG_0001.jpg",
            media_type: "image/jpeg",
            to: Some("+1 555 0100"),
            text: Some("From the beach"),
        };
        let (status, _, _) = refusal(device.send(&small, &options, |_| {}).await.unwrap_err());
        assert_eq!(status, StatusCode::UNAUTHORIZED);

        // Small: attached.
        let camera_client = GatewayClient::new(&w.gateway_base, Some(&on.token)).unwrap();
        let receipt = camera_client.send(&small, &options, |_| {}).await.unwrap();
        assert_eq!(receipt.carried_as, "attachment");
        assert_eq!(receipt.recipient_box, "user:bob");
        assert_eq!(receipt.link, None);
        {
            let asks = w.recorder.asks.lock().unwrap();
            assert_eq!(asks.len(), 1);
            assert!(asks[0].device.contains("Lumix G9"), "{:?}", asks[0]);
            assert_eq!(asks[0].bytes, 120_000);
            assert!(!asks[0].as_link);
        }

        // Large: uploaded by tus, sent as a link.
        let large_bytes = bytes(3_000_000, 2);
        let large = files.path().join("clip.mp4");
        std::fs::write(&large, &large_bytes).unwrap();
        let sent = Arc::new(std::sync::atomic::AtomicU64::new(0));
        let heard = sent.clone();
        let receipt = camera_client
            .send(
                &large,
                &SendOptions {
                    filename: "clip.mp4",
                    media_type: "video/mp4",
                    to: Some("bob"),
                    text: Some("The whole clip"),
                },
                move |n| heard.store(n, std::sync::atomic::Ordering::Relaxed),
            )
            .await
            .unwrap();
        assert_eq!(receipt.carried_as, "link");
        // The device's progress reached the whole file.
        assert_eq!(sent.load(std::sync::atomic::Ordering::Relaxed), 3_000_000);
        let link = receipt.link.clone().unwrap();
        assert!(w.recorder.asks.lock().unwrap()[1].as_link);

        // Bob's mailbox has both, as MIME.
        let mail = bobs_mail(&w).await;
        assert_eq!(mail.len(), 2);
        assert!(mail.iter().all(|(t, _)| t == message::MESSAGE_MEDIA_TYPE));
        let first = message::parse(&mail[0].1).unwrap();
        assert_eq!(first.gateway, "kenji-phone");
        assert!(first.device.contains(&camera.account));
        assert!(first.text.contains("From the beach"));
        assert_eq!(first.attachments.len(), 1);
        assert_eq!(first.attachments[0].bytes, bytes(120_000, 1));
        let second = message::parse(&mail[1].1).unwrap();
        assert!(second.attachments.is_empty());
        assert_eq!(second.links.len(), 1);
        assert_eq!(second.links[0].url, link);
        assert_eq!(second.links[0].length, Some(3_000_000));

        // The link downloads the exact bytes.
        let out = files.path().join("got.mp4");
        let n = download_link(&link, &out, &|_, _| {}).await.unwrap();
        assert_eq!(n, 3_000_000);
        assert_eq!(
            Sha256::digest(std::fs::read(&out).unwrap()),
            Sha256::digest(&large_bytes)
        );
        // A Range of it.
        let http = reqwest::Client::new();
        let part = http
            .get(&link)
            .header("range", "bytes=1000-1999")
            .send()
            .await
            .unwrap();
        assert_eq!(part.status(), StatusCode::PARTIAL_CONTENT);
        assert_eq!(part.bytes().await.unwrap(), &large_bytes[1000..2000]);

        // Altered links are refused: another signature, a later expiry,
        // another upload.
        let altered_sig = {
            let (head, sig) = link.rsplit_once("sig=").unwrap();
            let flipped = if sig.starts_with('0') { "1" } else { "0" };
            format!("{head}sig={flipped}{}", &sig[1..])
        };
        let later = {
            let (head, rest) = link.split_once("expires=").unwrap();
            let (exp, tail) = rest.split_once('&').unwrap();
            let exp: i64 = exp.parse().unwrap();
            format!("{head}expires={}&{tail}", exp + 86_400)
        };
        for bad in [altered_sig, later] {
            let r = http.get(&bad).send().await.unwrap();
            assert_eq!(r.status(), StatusCode::FORBIDDEN, "{bad}");
        }
        let r = http
            .get(link.split('?').next().unwrap())
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), StatusCode::FORBIDDEN);

        // An expired link: one second of life.
        let gw_service = ServiceClient::new(&w.base, &w.gateway_token).unwrap();
        let up = gw_service
            .upload_file(&small, "IMG_0001.jpg", "image/jpeg", 3, &|_| {})
            .await
            .unwrap();
        let short = gw_service
            .link(&up.url, Some(Duration::from_secs(1)))
            .await
            .unwrap();
        assert_eq!(
            http.get(&short.url).send().await.unwrap().status(),
            StatusCode::OK
        );
        tokio::time::sleep(Duration::from_millis(2100)).await;
        let r = http.get(&short.url).send().await.unwrap();
        assert_eq!(r.status(), StatusCode::GONE);

        // An administrator suspends the gateway at the service: it is
        // refused everything there (here a link), and served again once
        // activated; another gateway's name is unknown.
        let admin_service = ServiceClient::new(&w.base, &w.admin).unwrap();
        admin_service
            .set_gateway_status("kenji-phone", tracecast_share::AccountStatus::Suspended)
            .await
            .unwrap();
        let (status, code, _) = refusal(
            gw_service
                .upload_file(&small, "IMG_0001.jpg", "image/jpeg", 3, &|_| {})
                .await
                .unwrap_err(),
        );
        assert_eq!(
            (status, code.as_str()),
            (StatusCode::FORBIDDEN, "gateway_suspended")
        );
        // The device's share through it is refused too (the gateway may
        // not post to a mailbox either), and reaches nobody: bob's next
        // drain below holds only the later message.
        let (_, code, _) = refusal(
            camera_client
                .send(&small, &options, |_| {})
                .await
                .unwrap_err(),
        );
        assert_ne!(code, "");
        let (status, _, _) = refusal(
            admin_service
                .set_gateway_status("no-such-phone", tracecast_share::AccountStatus::Suspended)
                .await
                .unwrap_err(),
        );
        assert_eq!(status, StatusCode::NOT_FOUND);
        // Only an administrator sets it: the gateway cannot lift its own.
        let (status, _, _) = refusal(
            gw_service
                .set_gateway_status("kenji-phone", tracecast_share::AccountStatus::Active)
                .await
                .unwrap_err(),
        );
        assert_eq!(status, StatusCode::FORBIDDEN);
        admin_service
            .set_gateway_status("kenji-phone", tracecast_share::AccountStatus::Active)
            .await
            .unwrap();
        gw_service
            .upload_file(&small, "IMG_0001.jpg", "image/jpeg", 3, &|_| {})
            .await
            .unwrap();

        // The limit is on the message as it travels: 250,000 bytes are
        // under 300 KiB, their base64 is not, so they go as a link; the
        // attached message above stayed under it, headers and all.
        assert!(mail[0].1.len() <= DEFAULT_ATTACHMENT_LIMIT as usize);
        let near = files.path().join("IMG_0002.jpg");
        std::fs::write(&near, bytes(250_000, 3)).unwrap();
        let receipt = camera_client
            .send(
                &near,
                &SendOptions {
                    filename: "IMG_0002.jpg",
                    ..options
                },
                |_| {},
            )
            .await
            .unwrap();
        assert_eq!(receipt.carried_as, "link");
        assert!(w.recorder.asks.lock().unwrap().last().unwrap().as_link);
        assert!(message::attached_len(250_000) > DEFAULT_ATTACHMENT_LIMIT);
        // (what bob drained before is in his inbox: this is the new one)
        let mail = bobs_mail(&w).await;
        assert_eq!(mail.len(), 1);
        let third = message::parse(&mail[0].1).unwrap();
        assert!(third.attachments.is_empty() && third.links.len() == 1);
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn tus_uploads_resume_refuse_and_expire_on_both_backends() {
    for t in TestStore::both().await {
        eprintln!("tus: {}", t.backend().name());
        let w = world(&t, Duration::from_secs(5)).await;
        let http = reqwest::Client::new();
        let uploads = format!("{}/service/v1/uploads", w.base);
        let bearer = format!("Bearer {}", w.gateway_token);

        // OPTIONS tells what the server speaks.
        let r = http
            .request(reqwest::Method::OPTIONS, &uploads)
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), StatusCode::NO_CONTENT);
        assert_eq!(r.headers()["tus-version"], "1.0.0");
        assert_eq!(
            r.headers()["tus-extension"],
            "creation,termination,expiration"
        );
        assert!(r.headers().contains_key("tus-max-size"));

        // Refusals: no token, no Tus-Resumable, another version, no
        // length, bad metadata.
        let v1 = ("tus-resumable", "1.0.0");
        let len = ("upload-length", "10");
        let auth = ("authorization", bearer.as_str());
        for (headers, status) in [
            (vec![v1, len], StatusCode::UNAUTHORIZED),
            (vec![auth, len], StatusCode::PRECONDITION_FAILED),
            (
                vec![auth, ("tus-resumable", "0.2.2"), len],
                StatusCode::PRECONDITION_FAILED,
            ),
            (vec![auth, v1], StatusCode::BAD_REQUEST),
            (
                vec![auth, v1, len, ("upload-metadata", "filename !!notbase64")],
                StatusCode::BAD_REQUEST,
            ),
        ] {
            let r = send(&http, reqwest::Method::POST, &uploads, &headers, Vec::new()).await;
            assert_eq!(r.status(), status, "{headers:?}");
            assert_eq!(r.headers()["tus-resumable"], "1.0.0");
        }

        // An interrupted upload resumes from the server's offset.
        let gw = ServiceClient::new(&w.base, &w.gateway_token).unwrap();
        let data = bytes(5_000_000, 7);
        let file = w.dir.path().join("big.bin");
        std::fs::write(&file, &data).unwrap();
        let url = gw
            .create_upload(data.len() as u64, "big.bin", "application/octet-stream")
            .await
            .unwrap();
        assert_eq!(gw.offset(&url).await.unwrap(), 0);
        // A wrong offset: 409; the wrong body type: 415.
        let patch = |offset: &'static str, body_type: &'static str| {
            vec![
                auth,
                v1,
                ("upload-offset", offset),
                ("content-type", body_type),
            ]
        };
        for (headers, status) in [
            (
                patch("5", "application/offset+octet-stream"),
                StatusCode::CONFLICT,
            ),
            (
                patch("0", "application/octet-stream"),
                StatusCode::UNSUPPORTED_MEDIA_TYPE,
            ),
        ] {
            let r = send(&http, reqwest::Method::PATCH, &url, &headers, vec![0u8; 5]).await;
            assert_eq!(r.status(), status, "{headers:?}");
        }
        // The connection breaks after 2 MiB of the body.
        let head = data[..2 << 20].to_vec();
        let broken = futures::stream::iter(vec![
            Ok::<_, std::io::Error>(bytes::Bytes::from(head)),
            Err(std::io::Error::other("the radio dropped")),
        ]);
        let r = http
            .patch(&url)
            .header("authorization", &bearer)
            .header("tus-resumable", "1.0.0")
            .header("upload-offset", "0")
            .header("content-type", "application/offset+octet-stream")
            .body(reqwest::Body::wrap_stream(broken))
            .send()
            .await;
        assert!(r.is_err() || !r.unwrap().status().is_success());
        // The server kept what arrived (it may take a moment to see the
        // break).
        let mut offset = 0;
        for _ in 0..50 {
            offset = gw.offset(&url).await.unwrap();
            if offset > 0 {
                break;
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        assert!(
            offset > 0 && offset <= 2 << 20,
            "kept {offset} bytes of the first 2 MiB"
        );
        let done = gw.resume_upload(&url, &file, 3, &|_| {}).await.unwrap();
        assert_eq!(done.bytes, data.len() as u64);
        let link = gw.link(&url, None).await.unwrap();
        let got = http
            .get(&link.url)
            .send()
            .await
            .unwrap()
            .bytes()
            .await
            .unwrap();
        assert_eq!(Sha256::digest(&got), Sha256::digest(&data));
        assert_eq!(link.filename, "big.bin");

        // Another gateway knows nothing of it.
        let other = new_token();
        t.store
            .add_account(
                AccountKind::Gateway,
                "other-phone",
                token_hash(&other),
                None,
            )
            .await
            .unwrap();
        let stranger = ServiceClient::new(&w.base, &other).unwrap();
        let (status, _, _) = refusal(stranger.offset(&url).await.unwrap_err());
        assert_eq!(status, StatusCode::NOT_FOUND);
        assert!(stranger.link(&url, None).await.is_err());
        // A user's token is not a gateway's.
        let bob = ServiceClient::new(&w.base, &w.bob).unwrap();
        let (status, _, _) = refusal(bob.create_upload(1, "x", "a/b").await.unwrap_err());
        assert_eq!(status, StatusCode::FORBIDDEN);
        // A link before the upload is complete: 409.
        let half = gw.create_upload(10, "half.bin", "a/b").await.unwrap();
        let (status, _, _) = refusal(gw.link(&half, None).await.unwrap_err());
        assert_eq!(status, StatusCode::CONFLICT);

        // Termination.
        gw.delete_upload(&half).await.unwrap();
        let (status, _, _) = refusal(gw.offset(&half).await.unwrap_err());
        assert_eq!(status, StatusCode::NOT_FOUND);
        // Ids that are not ours are unknown, without touching anything.
        let r = http
            .head(format!("{uploads}/..%2F..%2Fetc%2Fpasswd"))
            .header("authorization", &bearer)
            .header("tus-resumable", "1.0.0")
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), StatusCode::NOT_FOUND);

        // Expiration: an unfinished upload expires (5 s here), PATCH says
        // 410, the sweep removes it and its spool file.
        let stale = gw.create_upload(100, "stale.bin", "a/b").await.unwrap();
        tokio::time::sleep(Duration::from_millis(5200)).await;
        let r = send(
            &http,
            reqwest::Method::PATCH,
            &stale,
            &patch("0", "application/offset+octet-stream"),
            vec![1u8; 10],
        )
        .await;
        assert_eq!(r.status(), StatusCode::GONE);
        let removed = w.service.sweep().await.unwrap();
        assert!(removed >= 1, "swept {removed}");
        let (status, _, _) = refusal(gw.offset(&stale).await.unwrap_err());
        assert_eq!(status, StatusCode::NOT_FOUND);
        let spool: Vec<_> = std::fs::read_dir(w.dir.path().join("spool"))
            .unwrap()
            .flatten()
            .map(|e| e.file_name())
            .collect();
        assert!(spool.is_empty(), "spool files left: {spool:?}");
        // The finished upload is kept (its keeping time is 30 days).
        assert_eq!(
            http.get(&link.url).send().await.unwrap().status(),
            StatusCode::OK
        );
    }
}

/// tuspy (the Python tus client from PyPI) uploads to the service server
/// in chunks, then a second client object resumes the same upload from
/// the server's offset (HEAD), as it would after the first one died.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_real_tus_client_uploads_and_resumes() {
    let python =
        std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../../target/moto-venv/bin/python");
    let has_tuspy = std::process::Command::new(&python)
        .args(["-c", "import tusclient"])
        .status()
        .is_ok_and(|s| s.success());
    assert!(
        has_tuspy,
        "tuspy is missing: python3 -m venv target/moto-venv && target/moto-venv/bin/pip install tuspy (scripts/test does this)"
    );
    let t = TestStore::new(tracecast_store::Backend::Sqlite)
        .await
        .unwrap();
    let w = world(&t, Duration::from_secs(3600)).await;
    let data = bytes(1_300_000, 9);
    let file = w.dir.path().join("tuspy.bin");
    std::fs::write(&file, &data).unwrap();
    let script = r#"
import sys
from tusclient import client
url, token, path = sys.argv[1:4]
c = client.TusClient(url, headers={"Authorization": "Bearer " + token})
first = c.uploader(path, chunk_size=400000, metadata={"filename": "tuspy.bin", "filetype": "application/x-test"})
first.upload_chunk()
print(first.url)
print(first.offset)
again = c.uploader(path, url=first.url, chunk_size=400000)
print(again.offset)
again.upload()
print(again.offset)
"#;
    let out = tokio::process::Command::new(&python)
        .args(["-c", script])
        .arg(format!("{}/service/v1/uploads", w.base))
        .arg(&w.gateway_token)
        .arg(&file)
        .output()
        .await
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "tuspy failed: {stdout}\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let lines: Vec<&str> = stdout.lines().collect();
    assert_eq!(lines.len(), 4, "{stdout}");
    let url = lines[0];
    assert!(url.starts_with(&w.base), "{url}");
    // One chunk, then the second client found the server's offset.
    assert_eq!(lines[1], "400000");
    assert_eq!(lines[2], "400000");
    assert_eq!(lines[3], "1300000");
    let gw = ServiceClient::new(&w.base, &w.gateway_token).unwrap();
    assert_eq!(gw.offset(url).await.unwrap(), 1_300_000);
    let link = gw.link(url, None).await.unwrap();
    assert_eq!(link.filename, "tuspy.bin");
    assert_eq!(link.media_type, "application/x-test");
    let got = reqwest::get(&link.url)
        .await
        .unwrap()
        .bytes()
        .await
        .unwrap();
    assert_eq!(Sha256::digest(&got), Sha256::digest(&data));
}
