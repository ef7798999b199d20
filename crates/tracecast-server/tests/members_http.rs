//! Members at the origin over HTTP, on both backends, with a policy that
//! relays applications two levels up: a first-order member admitted after
//! an identity check; an application relayed to the referrer's and the
//! referrer's referrer's boxes; approvals checked (only the members asked,
//! each level once, no self-approval); the final trust the product of the
//! attributes, the referrer's trust and both ratings; a refusal; a
//! suspended member cannot refer; records visible only to the member and
//! administrators.

use std::time::Duration;

use ed25519_dalek::SigningKey;
use reqwest::{Method, StatusCode};
use serde_json::json;
use tracecast_client::{ClientError, OriginClient};
use tracecast_delivery::api::NewAccount;
use tracecast_mailbox::{BoxName, Disposition, FetchRequest, Want};
use tracecast_mark::MarkKey;
use tracecast_server::auth::{new_token, token_hash};
use tracecast_server::mailbox::{self, MailboxConfig};
use tracecast_server::origin::members::MemberApplication;
use tracecast_server::origin::{self, Origin, OriginConfig};
use tracecast_store::testing::TestStore;
use tracecast_store::Blobs;

fn status(e: ClientError) -> StatusCode {
    match e {
        ClientError::Refused { status, .. } => status,
        other => panic!("expected a refusal, got {other}"),
    }
}

#[tokio::test]
async fn referral_admission_over_http_on_both_backends() {
    for t in TestStore::both().await {
        let dir = tempfile::tempdir().unwrap();
        let admin_token = new_token();
        t.store
            .add_token(token_hash(&admin_token), None, "admin")
            .await
            .unwrap();
        let mb = mailbox::Mailbox::start(t.store.clone(), MailboxConfig::default());
        let mut config = OriginConfig::default();
        config.members.relay_levels = 2;
        let o = Origin::start(
            t.store.clone(),
            Blobs::local(&dir.path().join("blobs")).unwrap(),
            mb.clone(),
            SigningKey::from_bytes(&[3; 32]),
            MarkKey::from_bytes([7; 32]),
            config,
        )
        .await
        .unwrap();
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let base = format!("http://{}", listener.local_addr().unwrap());
        let server = tokio::spawn(async move {
            let router = mailbox::router(mb).merge(origin::router(o));
            let _ = tracecast_server::serve(listener, router, std::future::pending()).await;
        });
        let admin = OriginClient::new(&base, &admin_token).unwrap();
        let mut users = std::collections::HashMap::new();
        for name in ["ann", "ben", "cat", "dan", "eve"] {
            let a = admin
                .add_account(&NewAccount::named("user", name))
                .await
                .unwrap();
            let token = a.token.unwrap();
            users.insert(name, (OriginClient::new(&base, &token).unwrap(), token));
        }
        let c = |n: &str| users[n].0.clone();
        let post = |client: OriginClient, path: String, body: serde_json::Value| async move {
            client.call(Method::POST, &path, Some(&body)).await
        };

        // Only an administrator admits face to face.
        let admit = json!({"user": "ann", "operator": "desk-1", "document": "passport ...1234",
            "attributes": {"occupation": "teacher", "place": "home", "history": "long-standing"}});
        assert_eq!(
            status(
                post(c("ann"), "/v1/members/admit".into(), admit.clone())
                    .await
                    .unwrap_err()
            ),
            StatusCode::FORBIDDEN
        );
        let ann = post(admin.clone(), "/v1/members/admit".into(), admit)
            .await
            .unwrap();
        assert!((ann["trust"].as_f64().unwrap() - 0.95 * 0.9).abs() < 1e-9);
        // ben through ann (one level: ann is first order).
        let app = post(c("ben"), "/v1/members/apply".into(), json!({"referrer": "ann",
            "attributes": {"occupation": "office-worker", "place": "registered-business", "history": "long-standing"}}))
            .await
            .unwrap();
        assert_eq!(app["levels"], 1);
        let id = app["application"].as_i64().unwrap();
        let r = post(
            c("ann"),
            format!("/v1/members/applications/{id}/approve"),
            json!({"rating": 0.8}),
        )
        .await
        .unwrap();
        assert_eq!(r["status"], "admitted");
        let ben_trust = r["member"]["trust"].as_f64().unwrap();
        assert!((ben_trust - 0.9 * 0.855 * 0.8).abs() < 1e-9, "{r}");

        // cat through ben: relayed to ben (level 1) and ann (level 2).
        let app = post(
            c("cat"),
            "/v1/members/apply".into(),
            json!({"referrer": "ben",
            "attributes": {"occupation": "student", "place": "home", "history": "new"}}),
        )
        .await
        .unwrap();
        assert_eq!(app["levels"], 2);
        let id = app["application"].as_i64().unwrap();
        for (who, level) in [("ben", 1), ("ann", 2)] {
            let boxname: BoxName = format!("user:{who}").parse().unwrap();
            let mbc = tracecast_client::MailboxClient::new(&base, &users[who].1).unwrap();
            // The member's box may hold earlier applications: the one for
            // this application must be there.
            let mut found = None;
            let mut done = None;
            for _ in 0..100 {
                let req = FetchRequest {
                    want: Want::First,
                    done: done.take().map(|id| (id, Disposition::Delete)),
                };
                let f = mbc.fetch(&boxname, req).await.unwrap();
                match f.message {
                    Some(m) => {
                        assert_eq!(m.media_type, MemberApplication::MEDIA_TYPE);
                        let msg: MemberApplication = serde_json::from_slice(&m.body).unwrap();
                        if msg.application == id {
                            found = Some(msg);
                            break;
                        }
                        done = Some(m.id);
                    }
                    None => tokio::time::sleep(Duration::from_millis(50)).await,
                }
            }
            let msg = found.expect("the application reaches the member's box");
            assert_eq!(
                (msg.application, msg.level, msg.applicant.as_str()),
                (id, level, "cat")
            );
        }
        // Not asked, self, out of range: refused and nothing recorded.
        let approve = |who: &str, rating: f64| {
            post(
                c(who),
                format!("/v1/members/applications/{id}/approve"),
                json!({"rating": rating}),
            )
        };
        assert_eq!(
            status(approve("dan", 0.9).await.unwrap_err()),
            StatusCode::FORBIDDEN
        );
        assert_eq!(
            status(approve("cat", 0.9).await.unwrap_err()),
            StatusCode::FORBIDDEN
        );
        assert_eq!(
            status(approve("ben", 1.5).await.unwrap_err()),
            StatusCode::UNPROCESSABLE_ENTITY
        );
        let half = approve("ben", 0.9).await.unwrap();
        assert_eq!(
            (half["status"].as_str(), half["approved_levels"].as_i64()),
            (Some("pending"), Some(1))
        );
        let done = approve("ann", 0.5).await.unwrap();
        assert_eq!(done["status"], "admitted", "{done}");
        assert_eq!(done["member"]["order"], 3);
        let cat_trust = done["member"]["trust"].as_f64().unwrap();
        assert!(
            (cat_trust - 0.8 * 0.9 * 0.8 * ben_trust * 0.9 * 0.5).abs() < 1e-9,
            "{done}"
        );
        assert!(cat_trust <= ben_trust);

        // dan through cat: cat refuses.
        let app = post(
            c("dan"),
            "/v1/members/apply".into(),
            json!({"referrer": "cat"}),
        )
        .await
        .unwrap();
        let id = app["application"].as_i64().unwrap();
        let r = c("cat")
            .call(
                Method::POST,
                &format!("/v1/members/applications/{id}/refuse"),
                None,
            )
            .await
            .unwrap();
        assert_eq!(r["status"], "refused");
        assert_eq!(
            status(
                post(
                    c("ben"),
                    format!("/v1/members/applications/{id}/approve"),
                    json!({"rating": 1.0})
                )
                .await
                .unwrap_err()
            ),
            StatusCode::NOT_FOUND
        );

        // A suspended member cannot refer.
        let cat_id = t.store.user_by_name("cat").await.unwrap().unwrap().0;
        t.store
            .set_member_status(cat_id, "suspended")
            .await
            .unwrap();
        assert_eq!(
            status(
                post(
                    c("eve"),
                    "/v1/members/apply".into(),
                    json!({"referrer": "cat"})
                )
                .await
                .unwrap_err()
            ),
            StatusCode::UNPROCESSABLE_ENTITY
        );
        // Records: the member and administrators only.
        let me = c("ben")
            .call(Method::GET, "/v1/members/ben", None)
            .await
            .unwrap();
        assert_eq!(me["chain"][0]["name"], "ann");
        assert_eq!(
            status(
                c("ben")
                    .call(Method::GET, "/v1/members/ann", None)
                    .await
                    .unwrap_err()
            ),
            StatusCode::FORBIDDEN
        );
        let tree = admin.call(Method::GET, "/v1/members", None).await.unwrap();
        assert_eq!(tree.as_array().unwrap().len(), 3);
        assert_eq!(
            status(
                c("ann")
                    .call(Method::GET, "/v1/members", None)
                    .await
                    .unwrap_err()
            ),
            StatusCode::FORBIDDEN
        );

        server.abort();
        t.finish().await;
    }
}
