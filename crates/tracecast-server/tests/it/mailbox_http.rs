//! The mailbox over HTTP, with the real client, on SQLite and PostgreSQL.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::http::HeaderMap;
use tracecast_client::{drain, ClientError, DrainOptions, Inbox, MailboxClient, PostOptions};
use tracecast_mailbox::{Backoff, BoxName, Disposition, MessageId, Room};
use tracecast_server::auth::{new_token, token_hash};
use tracecast_server::mailbox::{self, MailboxConfig};
use tracecast_store::testing::TestStore;

struct Server {
    base: String,
    admin: MailboxClient,
    task: tokio::task::JoinHandle<()>,
}

impl Drop for Server {
    fn drop(&mut self) {
        self.task.abort();
    }
}

fn config() -> MailboxConfig {
    MailboxConfig {
        max_message_bytes: 64 * 1024,
        backoff: Backoff {
            first_ms: 300,
            max_ms: 1_200,
        },
        ..MailboxConfig::default()
    }
}

async fn start(t: &TestStore) -> Server {
    let admin_token = new_token();
    t.store
        .add_token(token_hash(&admin_token), None, "admin")
        .await
        .unwrap();
    let mb = mailbox::Mailbox::start(t.store.clone(), config());
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let base = format!("http://{}", listener.local_addr().unwrap());
    let task = tokio::spawn(async move {
        tracecast_server::serve(listener, mailbox::router(mb), std::future::pending())
            .await
            .unwrap();
    });
    Server {
        admin: MailboxClient::new(&base, &admin_token).unwrap(),
        base,
        task,
    }
}

impl Server {
    async fn new_box(&self, name: &str) -> (BoxName, MailboxClient) {
        let name: BoxName = name.parse().unwrap();
        let created = self.admin.create_box(&name, None).await.unwrap();
        (
            name,
            MailboxClient::new(&self.base, &created.token).unwrap(),
        )
    }
}

/// Posts a short text message and waits for the receipt.
async fn send(client: &MailboxClient, to: &BoxName, body: &str) -> tracecast_client::Posted {
    client
        .post(
            to,
            "text/plain",
            body.as_bytes().to_vec(),
            &PostOptions::default(),
        )
        .await
        .unwrap()
}

macro_rules! on_both {
    ($check:ident) => {
        for t in TestStore::both().await {
            eprintln!("{}: {}", stringify!($check), t.backend().name());
            let server = start(&t).await;
            $check(&server).await;
            drop(server);
            t.finish().await;
        }
    };
}

fn status_of(e: ClientError) -> u16 {
    match e {
        ClientError::Refused { status, .. } => status.as_u16(),
        other => panic!("expected a refusal, got {other}"),
    }
}

async fn drain_moves_everything_once(s: &Server) {
    let (alice, alice_client) = s.new_box("user:alice").await;
    let (_, sender) = s.new_box("role:origin").await;
    for i in 0..40 {
        let body = format!("bill {i}");
        sender
            .post(
                &alice,
                "text/plain",
                body.into_bytes(),
                &PostOptions::default(),
            )
            .await
            .unwrap();
    }
    let dir = tempfile::tempdir().unwrap();
    let mut inbox = Inbox::open(dir.path()).unwrap();
    let options = DrainOptions {
        then: Disposition::Move,
        ..DrainOptions::default()
    };
    let report = drain(&alice_client, &alice, &mut inbox, &options, |_| {})
        .await
        .unwrap();
    assert_eq!(
        (report.stored, report.duplicates, report.full),
        (40, 0, false)
    );
    let bodies: Vec<Vec<u8>> = inbox
        .entries()
        .map(|e| e.id)
        .collect::<Vec<_>>()
        .into_iter()
        .map(|id| inbox.read(id).unwrap())
        .collect();
    assert_eq!(bodies[0], b"bill 0");
    assert_eq!(bodies[39], b"bill 39");
    let status = alice_client.status(&alice).await.unwrap();
    assert_eq!(status.stats.pending, 0);
    assert_eq!(status.stats.processed, 40);
    // Nothing more to fetch.
    let again = drain(&alice_client, &alice, &mut inbox, &options, |_| {})
        .await
        .unwrap();
    assert_eq!(again.stored, 0);
}

async fn every_request_is_authenticated_and_boxes_are_private(s: &Server) {
    let (alice, alice_client) = s.new_box("user:alice").await;
    let (bob, bob_client) = s.new_box("user:bob").await;
    send(&bob_client, &alice, "hi").await;
    // Bob may write to Alice, never read her box.
    let e = bob_client
        .fetch(&alice, tracecast_mailbox::FetchRequest::first())
        .await
        .unwrap_err();
    assert_eq!(status_of(e), 403);
    assert_eq!(status_of(bob_client.status(&alice).await.unwrap_err()), 403);
    // Administrators create boxes; they do not read mail.
    let e = s
        .admin
        .fetch(&alice, tracecast_mailbox::FetchRequest::first())
        .await
        .unwrap_err();
    assert_eq!(status_of(e), 403);
    // Box owners do not create boxes.
    let e = alice_client
        .create_box(&"user:eve".parse().unwrap(), None)
        .await
        .unwrap_err();
    assert_eq!(status_of(e), 403);
    let stranger = MailboxClient::new(&s.base, "tc_not-a-token").unwrap();
    assert_eq!(status_of(stranger.status(&alice).await.unwrap_err()), 401);
    let raw = reqwest::get(format!("{}/v1/boxes/user:alice/fetch?want=first", s.base))
        .await
        .unwrap();
    assert_eq!(raw.status(), 401);
    assert_eq!(alice_client.whoami().await.unwrap(), Some(alice.clone()));
    assert_eq!(bob_client.whoami().await.unwrap(), Some(bob));
    // Alice's mail is still there, untouched.
    let f = alice_client
        .fetch(&alice, tracecast_mailbox::FetchRequest::first())
        .await
        .unwrap();
    assert_eq!(f.message.unwrap().body.as_ref(), b"hi");
}

async fn bad_requests_get_4xx_and_change_nothing(s: &Server) {
    let (alice, client) = s.new_box("user:alice").await;
    let posted = send(&client, &alice, "keep me").await;
    let token = {
        // The raw token, for hand-made requests: create another box owner.
        let created = s
            .admin
            .create_box(&"user:raw".parse().unwrap(), None)
            .await
            .unwrap();
        created.token
    };
    let http = reqwest::Client::new();
    let get = |path: String| {
        let http = http.clone();
        let auth = format!("Bearer {token}");
        let base = s.base.clone();
        async move {
            http.get(format!("{base}{path}"))
                .header("authorization", auth)
                .send()
                .await
                .unwrap()
        }
    };
    for (query, status) in [
        ("want=firstt", 400),
        ("want=-4", 400),
        ("want=first&done=1", 400),
        ("want=none", 400),
        ("want=first&then=delete", 400),
        ("want=first&done=abc&then=delete", 400),
        ("want=first&bogus=1", 400),
        ("want=999999", 404),
        ("want=first&wait=soon", 400),
        ("want=first&wait=999", 400),
        ("want=first&wait=1&wait=2", 400),
        ("want=7&wait=3", 400),
        ("want=first&done=999999&then=delete", 404),
    ] {
        let r = get(format!("/v1/boxes/user:raw/fetch?{query}")).await;
        assert_eq!(r.status().as_u16(), status, "{query}");
        let body: serde_json::Value = r.json().await.unwrap();
        assert!(
            body["message"].as_str().unwrap().len() > 5,
            "{query}: {body}"
        );
    }
    // Another box's message id is unknown in this box.
    let r = get(format!(
        "/v1/boxes/user:raw/fetch?want=none&done={}&then=delete",
        posted.id
    ))
    .await;
    assert_eq!(r.status(), 404);
    let r = get("/v1/boxes/No_Such/fetch?want=first".into()).await;
    assert_eq!(r.status(), 400);
    // Posts: oversize, no type, bad TTL, bad flag, unknown box.
    let post = |path: &str, body: Vec<u8>, headers: &[(&str, &str)]| {
        let mut req = http
            .post(format!("{}{path}", s.base))
            .header("authorization", format!("Bearer {token}"))
            .body(body);
        for (k, v) in headers {
            req = req.header(*k, *v);
        }
        req.send()
    };
    let octets = ("content-type", "application/octet-stream");
    let text = ("content-type", "text/plain");
    let alice_path = "/v1/boxes/user:alice/messages";
    let cases = [
        (alice_path, vec![0; 64 * 1024 + 1], vec![octets], 413),
        // Exactly at the limit is accepted (into the raw box, not Alice's).
        (
            "/v1/boxes/user:raw/messages",
            vec![0; 64 * 1024],
            vec![octets],
            201,
        ),
        (alice_path, b"x".to_vec(), vec![], 415),
        (
            alice_path,
            b"x".to_vec(),
            vec![("content-type", "nonsense")],
            400,
        ),
        (
            alice_path,
            b"x".to_vec(),
            vec![text, ("tracecast-ttl", "soon")],
            400,
        ),
        (
            alice_path,
            b"x".to_vec(),
            vec![text, ("tracecast-ttl", "999999999999")],
            400,
        ),
        (
            alice_path,
            b"x".to_vec(),
            vec![text, ("tracecast-protected", "perhaps")],
            400,
        ),
        (
            "/v1/boxes/user:nobody/messages",
            b"x".to_vec(),
            vec![text],
            404,
        ),
    ];
    for (path, body, headers, status) in cases {
        let r = post(path, body, &headers).await.unwrap();
        assert_eq!(r.status().as_u16(), status, "{path} {headers:?}");
    }
    // Alice's box holds exactly the one message it held.
    let status = client.status(&alice).await.unwrap();
    assert_eq!(status.stats.pending, 1);
    let f = client
        .fetch(&alice, tracecast_mailbox::FetchRequest::first())
        .await
        .unwrap();
    assert_eq!(f.message.unwrap().id, posted.id);
}

async fn room_is_checked_and_read_mail_is_overwritten_unless_protected(s: &Server) {
    let (alice, client) = s.new_box("user:alice").await;
    for i in 0..5 {
        let options = PostOptions {
            protect: i == 0,
            ..PostOptions::default()
        };
        client
            .post(&alice, "text/plain", format!("m{i}").into_bytes(), &options)
            .await
            .unwrap();
    }
    let dir = tempfile::tempdir().unwrap();
    let mut inbox = Inbox::open(dir.path()).unwrap();
    let options = DrainOptions {
        room: Room {
            max_bytes: None,
            max_count: Some(3),
        },
        ..DrainOptions::default()
    };
    let r = drain(&client, &alice, &mut inbox, &options, |_| {})
        .await
        .unwrap();
    assert_eq!((r.stored, r.full), (3, true));
    assert_eq!(client.status(&alice).await.unwrap().stats.pending, 2);
    // Nothing read yet: still full, nothing fetched.
    let r = drain(&client, &alice, &mut inbox, &options, |_| {})
        .await
        .unwrap();
    assert_eq!((r.stored, r.full), (0, true));
    // Read all three; the first is protected by its sender.
    let ids: Vec<MessageId> = inbox.entries().map(|e| e.id).collect();
    for id in &ids {
        inbox.read(*id).unwrap();
    }
    assert!(inbox.get(ids[0]).unwrap().protected);
    let r = drain(&client, &alice, &mut inbox, &options, |_| {})
        .await
        .unwrap();
    assert_eq!((r.stored, r.overwritten, r.full), (2, 2, false));
    assert!(inbox.contains(ids[0]), "protected message kept");
    assert_eq!(inbox.len(), 3);
    assert_eq!(client.status(&alice).await.unwrap().stats.pending, 0);
}

/// 003: the room check by size covers the first message of a round too:
/// its length comes from the box's counters, so one large message never
/// overfills a client with a byte limit.
async fn the_first_message_of_a_round_is_checked_against_the_byte_limit(s: &Server) {
    let (alice, client) = s.new_box("user:alice").await;
    let dir = tempfile::tempdir().unwrap();
    let mut inbox = Inbox::open(dir.path()).unwrap();
    let options = DrainOptions {
        room: Room {
            max_bytes: Some(100),
            max_count: None,
        },
        ..DrainOptions::default()
    };
    let held = |inbox: &Inbox| -> u64 { inbox.local_messages().iter().map(|m| m.length).sum() };
    let body = |n: usize| "x".repeat(n).into_bytes();
    let plain = PostOptions::default();
    // Larger than the whole store: it stays on the server, nothing stored.
    client
        .post(&alice, "text/plain", body(150), &plain)
        .await
        .unwrap();
    let r = drain(&client, &alice, &mut inbox, &options, |_| {})
        .await
        .unwrap();
    assert_eq!((r.stored, r.full), (0, true));
    assert_eq!(inbox.len(), 0);
    assert_eq!(client.status(&alice).await.unwrap().stats.pending, 1);
    let first = client
        .fetch(&alice, tracecast_mailbox::FetchRequest::first())
        .await
        .unwrap()
        .message
        .unwrap();
    client
        .fetch(
            &alice,
            tracecast_mailbox::FetchRequest {
                want: tracecast_mailbox::Want::Nothing,
                done: Some((first.id, Disposition::Delete)),
            },
        )
        .await
        .unwrap();
    // 60 bytes fit; the next round's first message (50) does not fit
    // beside them while they are unread.
    client
        .post(&alice, "text/plain", body(60), &plain)
        .await
        .unwrap();
    let r = drain(&client, &alice, &mut inbox, &options, |_| {})
        .await
        .unwrap();
    assert_eq!((r.stored, r.full), (1, false));
    client
        .post(&alice, "text/plain", body(50), &plain)
        .await
        .unwrap();
    let status = client.status(&alice).await.unwrap().stats;
    assert_eq!(status.first_pending_length, Some(50));
    let r = drain(&client, &alice, &mut inbox, &options, |_| {})
        .await
        .unwrap();
    assert_eq!((r.stored, r.full), (0, true));
    assert_eq!(held(&inbox), 60, "the limit holds");
    // Once read, the 60 are overwritten to make room for the 50.
    let id = inbox.entries().map(|e| e.id).next().unwrap();
    inbox.read(id).unwrap();
    let r = drain(&client, &alice, &mut inbox, &options, |_| {})
        .await
        .unwrap();
    assert_eq!((r.stored, r.overwritten, r.full), (1, 1, false));
    assert_eq!(held(&inbox), 50);
    assert_eq!(client.status(&alice).await.unwrap().stats.pending, 0);
}

async fn retried_posts_land_once(s: &Server) {
    let (alice, client) = s.new_box("user:alice").await;
    let options = PostOptions {
        idempotency_key: Some("report-17".into()),
        ..PostOptions::default()
    };
    let a = client
        .post(&alice, "text/plain", b"r".to_vec(), &options)
        .await
        .unwrap();
    let b = client
        .post(&alice, "text/plain", b"r".to_vec(), &options)
        .await
        .unwrap();
    assert_eq!(a.id, b.id);
    assert!(!a.duplicate && b.duplicate);
    assert_eq!(client.status(&alice).await.unwrap().stats.pending, 1);
}

async fn long_poll_and_events_announce_mail_and_repeat(s: &Server) {
    let (alice, client) = s.new_box("user:alice").await;
    // Empty box: the long-poll times out with no notice.
    assert_eq!(
        client.wait(&alice, Duration::from_secs(1)).await.unwrap(),
        None
    );
    // A post during a long-poll answers it.
    let poster = client.clone();
    let to = alice.clone();
    let waiter = tokio::spawn({
        let client = client.clone();
        let alice = alice.clone();
        async move { client.wait(&alice, Duration::from_secs(20)).await.unwrap() }
    });
    tokio::time::sleep(Duration::from_millis(200)).await;
    send(&poster, &to, "n").await;
    let notice = tokio::time::timeout(Duration::from_secs(10), waiter)
        .await
        .unwrap()
        .unwrap()
        .unwrap();
    assert_eq!(notice.pending, 1);

    // A waiting fetch: acknowledges the stored message, then holds until the
    // next one arrives and answers with it.
    let first = client
        .fetch(&alice, tracecast_mailbox::FetchRequest::first())
        .await
        .unwrap();
    let first = first.message.unwrap().id;
    let fetcher = tokio::spawn({
        let client = client.clone();
        let alice = alice.clone();
        async move {
            let request = tracecast_mailbox::FetchRequest {
                want: tracecast_mailbox::Want::First,
                done: Some((first, Disposition::Delete)),
            };
            client
                .fetch_waiting(&alice, request, Duration::from_secs(20))
                .await
                .unwrap()
        }
    });
    tokio::time::sleep(Duration::from_millis(300)).await;
    let later = send(&poster, &to, "later").await;
    let got = tokio::time::timeout(Duration::from_secs(10), fetcher)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(got.done.as_deref(), Some("applied"));
    assert_eq!(got.message.unwrap().id, later.id);
    // Nothing more: a waiting fetch times out empty.
    let request = tracecast_mailbox::FetchRequest {
        want: tracecast_mailbox::Want::First,
        done: Some((later.id, Disposition::Delete)),
    };
    let empty = client
        .fetch_waiting(&alice, request, Duration::from_secs(1))
        .await
        .unwrap();
    assert!(empty.message.is_none());
    assert_eq!(empty.done.as_deref(), Some("applied"));

    // The event stream: the waiting mail at once, then repeats with backoff
    // while nobody fetches.
    let http = reqwest::Client::new();
    let created = s
        .admin
        .create_box(&"user:sse".parse().unwrap(), None)
        .await
        .unwrap();
    let mut resp = http
        .get(format!("{}/v1/boxes/user:sse/events", s.base))
        .header("authorization", format!("Bearer {}", created.token))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.headers()["content-type"], "text/event-stream");
    let sse_client = MailboxClient::new(&s.base, &created.token).unwrap();
    // Timed from before the post: the server's first notice follows it, and
    // a loaded machine may answer the post itself late.
    let started = std::time::Instant::now();
    sse_client
        .post(
            &created.name,
            "text/plain",
            b"e".to_vec(),
            &PostOptions::default(),
        )
        .await
        .unwrap();
    // Read for 2.5 s: the notice for the post, then repeats after 0.3 s,
    // 0.6 s and 1.2 s more of silence (four in all). A notice may also come
    // when the server looks again after losing its database listener, so
    // the check is a range: repeats come, and they back off (without
    // backoff the 75 ms retry tick would send some thirty).
    let mut text = String::new();
    let window = Duration::from_millis(2500);
    while let Some(left) = window.checked_sub(started.elapsed()) {
        match tokio::time::timeout(left, resp.chunk()).await {
            Ok(chunk) => text.push_str(&String::from_utf8_lossy(&chunk.unwrap().unwrap())),
            Err(_) => break,
        }
    }
    let notices = text.matches("event: mail").count();
    assert!(
        (3..=8).contains(&notices),
        "{notices} notices in 2.5 s: {text}"
    );
    assert!(text.contains("\"pending\":1"), "{text}");
}

async fn webhooks_are_signed_and_repeated_until_fetched(s: &Server) {
    let hits: Arc<Mutex<Vec<(HeaderMap, String)>>> = Arc::default();
    let app = axum::Router::new().route(
        "/hook",
        axum::routing::post({
            let hits = hits.clone();
            move |headers: HeaderMap, body: String| {
                let hits = hits.clone();
                async move {
                    hits.lock().unwrap().push((headers, body));
                    "ok"
                }
            }
        }),
    );
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let hook = format!("http://{}/hook", listener.local_addr().unwrap());
    let receiver = tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });

    let name: BoxName = "app:webhook-1".parse().unwrap();
    let created = s.admin.create_box(&name, Some(&hook)).await.unwrap();
    let secret = created.webhook_secret.clone().unwrap();
    let edge = MailboxClient::new(&s.base, &created.token).unwrap();
    edge.post(
        &name,
        "application/json",
        b"{}".to_vec(),
        &PostOptions::default(),
    )
    .await
    .unwrap();
    let deadline = std::time::Instant::now() + Duration::from_secs(10);
    while hits.lock().unwrap().len() < 2 && std::time::Instant::now() < deadline {
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    {
        let hits = hits.lock().unwrap();
        assert!(
            hits.len() >= 2,
            "the notice is repeated while nobody fetches"
        );
        for (headers, body) in hits.iter() {
            let sig = headers["tracecast-signature"].to_str().unwrap();
            assert_eq!(
                sig,
                format!("sha256={}", mailbox::sign_webhook(&secret, body.as_bytes()))
            );
            let v: tracecast_mailbox::api::WebhookNotice = serde_json::from_str(body).unwrap();
            assert_eq!(v.box_name, "app:webhook-1");
            assert_eq!(v.pending, 1);
        }
        // Each repeat says which it is.
        let attempts: Vec<u32> = hits
            .iter()
            .map(|(_, body)| {
                serde_json::from_str::<tracecast_mailbox::api::WebhookNotice>(body)
                    .unwrap()
                    .attempt
            })
            .collect();
        assert!(
            attempts.windows(2).all(|w| w[0] < w[1]),
            "attempts {attempts:?}"
        );
    }
    // Once fetched, the repeats stop.
    let dir = tempfile::tempdir().unwrap();
    let mut inbox = Inbox::open(dir.path()).unwrap();
    drain(&edge, &name, &mut inbox, &DrainOptions::default(), |_| {})
        .await
        .unwrap();
    tokio::time::sleep(Duration::from_millis(300)).await;
    let before = hits.lock().unwrap().len();
    tokio::time::sleep(Duration::from_millis(1_500)).await;
    assert_eq!(hits.lock().unwrap().len(), before);
    receiver.abort();
}

#[tokio::test]
async fn drain_moves_everything_once_on_both() {
    on_both!(drain_moves_everything_once);
}
#[tokio::test]
async fn every_request_is_authenticated_and_boxes_are_private_on_both() {
    on_both!(every_request_is_authenticated_and_boxes_are_private);
}
#[tokio::test]
async fn bad_requests_get_4xx_and_change_nothing_on_both() {
    on_both!(bad_requests_get_4xx_and_change_nothing);
}
#[tokio::test]
async fn room_is_checked_and_read_mail_is_overwritten_unless_protected_on_both() {
    on_both!(room_is_checked_and_read_mail_is_overwritten_unless_protected);
}
#[tokio::test]
async fn the_first_message_of_a_round_is_checked_against_the_byte_limit_on_both() {
    on_both!(the_first_message_of_a_round_is_checked_against_the_byte_limit);
}

#[tokio::test]
async fn retried_posts_land_once_on_both() {
    on_both!(retried_posts_land_once);
}
#[tokio::test]
async fn long_poll_and_events_announce_mail_and_repeat_on_both() {
    on_both!(long_poll_and_events_announce_mail_and_repeat);
}
#[tokio::test]
async fn webhooks_are_signed_and_repeated_until_fetched_on_both() {
    on_both!(webhooks_are_signed_and_repeated_until_fetched);
}

#[tokio::test]
async fn the_openapi_document_is_served() {
    let t = TestStore::new(tracecast_store::Backend::Sqlite)
        .await
        .unwrap();
    let s = start(&t).await;
    let text = reqwest::get(format!("{}/openapi/mailbox.json", s.base))
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert_eq!(
        text,
        tracecast_server::openapi::RoleApi::Mailbox.json(),
        "the mailbox serves the contract its code makes"
    );
    assert!(text.contains("\"openapi\": \"3.1.0\""));
    for path in [
        "/v1/boxes/{name}/fetch",
        "/v1/boxes/{name}/messages",
        "/v1/boxes/{name}/events",
    ] {
        assert!(text.contains(path), "{path}");
    }
    drop(s);
    t.finish().await;
}

/// Outside input: random queries, headers and bodies on every route get a
/// clear 4xx (never a 5xx or a dropped connection) and leave the box as it
/// was.
async fn random_requests_are_refused_cleanly(s: &Server) {
    use rand::{Rng, SeedableRng};
    let (alice, client) = s.new_box("user:alice").await;
    let kept = send(&client, &alice, "kept").await;
    let created = s
        .admin
        .create_box(&"user:fuzz".parse().unwrap(), None)
        .await
        .unwrap();
    let http = reqwest::Client::new();
    let mut rng = rand::rngs::StdRng::seed_from_u64(9);
    let words = [
        "want",
        "done",
        "then",
        "first",
        "none",
        "delete",
        "move",
        "-1",
        "0",
        "%00",
        "%ZZ",
        "=",
        "&",
        "999999999999999999999",
        "1",
        "2",
        "state",
        "limit",
        "timeout",
        "processed",
        "é",
        " ",
    ];
    let paths = [
        "fetch",
        "messages",
        "wait",
        "processed/1",
        "processed/x",
        "events/..",
        "",
    ];
    for i in 0..300 {
        let mut query = String::new();
        for _ in 0..rng.gen_range(0..5) {
            query.push_str(words[rng.gen_range(0..words.len())]);
            query.push(['=', '&', '='][rng.gen_range(0..3)]);
            query.push_str(words[rng.gen_range(0..words.len())]);
        }
        let target = if i % 2 == 0 {
            "user:fuzz"
        } else {
            "user:alice"
        };
        let path = paths[rng.gen_range(0..paths.len())];
        let url = format!("{}/v1/boxes/{target}/{path}?{query}", s.base);
        let mut req = if rng.gen_bool(0.5) {
            http.get(&url)
        } else {
            http.post(&url)
        };
        req = req.header("authorization", format!("Bearer {}", created.token));
        if rng.gen_bool(0.5) {
            req = req.header("content-type", words[rng.gen_range(0..words.len())]);
        }
        if rng.gen_bool(0.3) {
            req = req.header("tracecast-ttl", words[rng.gen_range(0..words.len())]);
        }
        let body: Vec<u8> = (0..rng.gen_range(0..64)).map(|_| rng.gen()).collect();
        let r = tokio::time::timeout(Duration::from_secs(5), req.body(body).send()).await;
        // An event stream may legitimately stay open; everything else answers.
        let Ok(r) = r else { continue };
        let r = r.unwrap();
        let status = r.status().as_u16();
        assert!(status < 500, "{url} -> {status}");
    }
    // Alice's box: the one message, untouched.
    let stats = client.status(&alice).await.unwrap();
    assert_eq!(stats.stats.pending, 1);
    let f = client
        .fetch(&alice, tracecast_mailbox::FetchRequest::first())
        .await
        .unwrap();
    assert_eq!(f.message.unwrap().id, kept.id);
}

#[tokio::test]
async fn random_requests_are_refused_cleanly_on_both() {
    on_both!(random_requests_are_refused_cleanly);
}

/// `drain` with `watch`: holds a waiting fetch, stores mail as it arrives,
/// and acknowledges each message on the next waiting fetch.
async fn watching_drain_stores_mail_as_it_arrives(s: &Server) {
    use std::sync::atomic::{AtomicU64, Ordering};
    let (alice, client) = s.new_box("user:alice").await;
    let stored = Arc::new(AtomicU64::new(0));
    let dir = tempfile::tempdir().unwrap();
    let watcher = tokio::spawn({
        let (client, alice, stored) = (client.clone(), alice.clone(), stored.clone());
        let path = dir.path().to_owned();
        async move {
            let mut inbox = Inbox::open(&path).unwrap();
            let options = DrainOptions {
                watch: Some(Duration::from_secs(1)),
                ..DrainOptions::default()
            };
            drain(&client, &alice, &mut inbox, &options, |_| {
                stored.fetch_add(1, Ordering::SeqCst);
            })
            .await
        }
    });
    for i in 0..3 {
        // Longer than the wait, so the watcher also goes round empty.
        tokio::time::sleep(Duration::from_millis(1_300)).await;
        send(&client, &alice, &format!("w{i}")).await;
    }
    let deadline = std::time::Instant::now() + Duration::from_secs(10);
    while (stored.load(Ordering::SeqCst) < 3
        || client.status(&alice).await.unwrap().stats.pending != 0)
        && std::time::Instant::now() < deadline
    {
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert_eq!(stored.load(Ordering::SeqCst), 3);
    // The last one was acknowledged by the waiting fetch that followed it.
    assert_eq!(client.status(&alice).await.unwrap().stats.pending, 0);
    assert!(!watcher.is_finished(), "a watching drain keeps going");
    watcher.abort();
}

#[tokio::test]
async fn watching_drain_stores_mail_as_it_arrives_on_both() {
    on_both!(watching_drain_stores_mail_as_it_arrives);
}
