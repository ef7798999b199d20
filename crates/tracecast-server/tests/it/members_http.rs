//! Members at the origin over HTTP, on both backends, with a policy that
//! relays applications two levels up: a first-order member admitted after
//! an identity check; an application relayed to the referrer's and the
//! referrer's referrer's boxes; approvals checked (only the members asked,
//! each level once, no self-approval); the final trust the product of the
//! attributes, the referrer's trust and both ratings; a refusal; a
//! suspended member cannot refer; records visible only to the member and
//! administrators.

use std::time::Duration;

use reqwest::{Method, StatusCode};
use serde_json::json;
use tracecast_client::{ClientError, OriginClient};
use tracecast_delivery::api::NewAccount;
use tracecast_mailbox::{BoxName, Disposition, FetchRequest, Want};
use tracecast_server::origin::members::{MemberApplication, MembershipDecision, ReservedDecision};
use tracecast_server::origin::OriginConfig;
use tracecast_store::testing::TestStore;

fn status(e: ClientError) -> StatusCode {
    match e {
        ClientError::Refused { status, .. } => status,
        other => panic!("expected a refusal, got {other}"),
    }
}

#[tokio::test]
async fn referral_admission_over_http_on_both_backends() {
    for t in TestStore::both().await {
        let mut config = OriginConfig::default();
        config.members.relay_levels = 2;
        let net = common::start_with(&t, &[], config).await;
        let base = net.base.clone();
        let admin_token = net.admin_token.clone();
        let admin = OriginClient::new(&base, &admin_token).unwrap();
        let mut users = std::collections::HashMap::new();
        for name in ["ann", "ben", "cat", "dan", "eve"] {
            let a = admin
                .add_account(&NewAccount::named(
                    tracecast_delivery::AccountKind::User,
                    name,
                ))
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
                    // The member's own admission may wait there too.
                    Some(m) if m.media_type != MemberApplication::MEDIA_TYPE => {
                        assert_eq!(m.media_type, MembershipDecision::MEDIA_TYPE);
                        done = Some(m.id);
                    }
                    Some(m) => {
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
        // cat hears it through their box: admitted, their final trust and
        // the best quality it receives.
        let said: MembershipDecision = find_in_box(
            &base,
            &users["cat"].1,
            "cat",
            MembershipDecision::MEDIA_TYPE,
            |m: &MembershipDecision| m.application == Some(id),
        )
        .await;
        assert_eq!(
            said.status,
            tracecast_members::api::ApplicationStatus::Admitted
        );
        assert_eq!((said.order, said.trust), (Some(3), Some(cat_trust)));
        assert!(said.best_audio.is_some(), "{said:?}");

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
        let said: MembershipDecision = find_in_box(
            &base,
            &users["dan"].1,
            "dan",
            MembershipDecision::MEDIA_TYPE,
            |m: &MembershipDecision| m.application == Some(id),
        )
        .await;
        assert_eq!(
            said.status,
            tracecast_members::api::ApplicationStatus::Refused
        );
        assert_eq!(
            (said.refused_by.as_deref(), said.trust),
            (Some("cat"), None)
        );
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
            .set_member_status(cat_id, tracecast_members::Status::Suspended)
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

        drop(net);
        t.finish().await;
    }
}

use crate::common;

/// Status and message of a refusal.
fn refusal(e: ClientError) -> (StatusCode, String) {
    match e {
        ClientError::Refused {
            status, message, ..
        } => (status, message),
        other => panic!("expected a refusal, got {other}"),
    }
}

/// Finds the message of `media_type` for which `pick` holds in a user's box.
async fn find_in_box<T: serde::de::DeserializeOwned>(
    base: &str,
    token: &str,
    who: &str,
    media_type: &str,
    pick: impl Fn(&T) -> bool,
) -> T {
    crate::common::find_in_box(base, token, &format!("user:{who}"), media_type, pick).await
}

/// Content reserved for the first order, asked for by a third-order
/// member through both upstream members (all must grant); then a leak of
/// that member's copy, traced by an administrator: the member is
/// suspended, their chain's standing drops by the decaying penalty, the
/// trust of the members below follows, and tracing the file again changes
/// nothing.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn reserved_content_and_accountability_on_both_backends() {
    use tracecast_server::origin::members::ReservedContentRequest;
    for t in TestStore::both().await {
        eprintln!("reserved and leaks: {}", t.backend().name());
        let mut config = OriginConfig::default();
        config.members.relay_levels = 2;
        let net = common::start_with(&t, &["tokyo"], config).await;
        let files = tempfile::tempdir().unwrap();
        let (_, provider, _) = net.account("provider", "aurora").await;
        let mut users = std::collections::HashMap::new();
        for name in ["ann", "ben", "cat", "dan", "eve"] {
            let (_, client, token) = net.account("user", name).await;
            users.insert(name, (client, token));
        }
        let c = |n: &str| users[n].0.clone();
        let post = |client: OriginClient, path: String, body: Option<serde_json::Value>| async move {
            client.call(Method::POST, &path, body.as_ref()).await
        };
        let attrs = json!({"occupation": "teacher", "place": "home", "history": "long-standing"});
        post(
            net.admin.clone(),
            "/v1/members/admit".into(),
            Some(json!({"user": "ann", "operator": "desk-1", "document": "id ...42", "attributes": attrs})),
        )
        .await
        .unwrap();
        // ben through ann; cat and dan through ben, approved by ben and ann.
        for (who, referrer) in [("ben", "ann"), ("cat", "ben"), ("dan", "ben")] {
            let app = post(
                c(who),
                "/v1/members/apply".into(),
                Some(json!({"referrer": referrer, "attributes": attrs})),
            )
            .await
            .unwrap();
            let id = app["application"].as_i64().unwrap();
            let mut last = json!(null);
            for approver in if referrer == "ann" {
                vec!["ann"]
            } else {
                vec!["ben", "ann"]
            } {
                last = post(
                    c(approver),
                    format!("/v1/members/applications/{id}/approve"),
                    Some(json!({"rating": 1.0})),
                )
                .await
                .unwrap();
            }
            assert_eq!(last["status"], "admitted", "{last}");
        }
        let trust = |tree: &serde_json::Value, who: &str| {
            tree.as_array()
                .unwrap()
                .iter()
                .find(|m| m["name"] == who)
                .unwrap_or_else(|| panic!("{who} in the tree"))["trust"]
                .as_f64()
                .unwrap()
        };
        let before = net
            .admin
            .call(Method::GET, "/v1/members", None)
            .await
            .unwrap();
        assert!(
            (trust(&before, "cat") - 0.855f64.powi(3)).abs() < 1e-9,
            "{before}"
        );

        // Reserved up to order 1: only the provider (or an administrator)
        // reserves it.
        let src = common::track(files.path(), 12.0, 7);
        let content = provider
            .add_content(&src, "Members only", 100, None, |_, _| {})
            .await
            .unwrap();
        let reserve = json!({"up_to_order": 1});
        let path = format!("/v1/contents/{}/reserved", content.id);
        assert_eq!(
            status(
                c("ann")
                    .call(Method::PUT, &path, Some(&reserve))
                    .await
                    .unwrap_err()
            ),
            StatusCode::FORBIDDEN
        );
        provider
            .call(Method::PUT, &path, Some(&reserve))
            .await
            .unwrap();
        net.edges_alive().await;
        // Order 1 buys freely; orders 2 and 3 and non-members are refused.
        c("ann").purchase(content.id, None, &[]).await.unwrap();
        for who in ["ben", "cat", "eve"] {
            let (code, message) =
                refusal(c(who).purchase(content.id, None, &[]).await.unwrap_err());
            assert_eq!(code, StatusCode::FORBIDDEN, "{who}: {message}");
            assert!(
                message.contains("reserved for members up to order 1"),
                "{message}"
            );
        }
        // cat (order 3) asks: every upstream member from the content's
        // order to order 2, ben and ann, through their boxes.
        let ask = post(
            c("cat"),
            "/v1/members/reserved".into(),
            Some(json!({"content": content.id})),
        )
        .await
        .unwrap();
        assert_eq!(
            (ask["status"].as_str(), ask["rule"].as_str()),
            (Some("pending"), Some("all"))
        );
        assert_eq!(ask["asked"], json!(["ben", "ann"]));
        let request = ask["request"].as_i64().unwrap();
        for who in ["ben", "ann"] {
            let msg: ReservedContentRequest = find_in_box(
                &net.base,
                &users[who].1,
                who,
                ReservedContentRequest::MEDIA_TYPE,
                |m: &ReservedContentRequest| m.request == request,
            )
            .await;
            assert_eq!(
                (msg.member.as_str(), msg.content, msg.member_order),
                ("cat", content.id, 3)
            );
        }
        // Asking again answers the same request.
        let again = post(
            c("cat"),
            "/v1/members/reserved".into(),
            Some(json!({"content": content.id})),
        )
        .await
        .unwrap();
        assert_eq!(again["request"].as_i64(), Some(request));
        let decide = |who: &str, verb: &str| {
            post(
                c(who),
                format!("/v1/members/reserved/{request}/{verb}"),
                None,
            )
        };
        assert_eq!(
            status(decide("dan", "grant").await.unwrap_err()),
            StatusCode::FORBIDDEN
        );
        assert_eq!(
            status(decide("cat", "grant").await.unwrap_err()),
            StatusCode::UNPROCESSABLE_ENTITY
        );
        let half = decide("ben", "grant").await.unwrap();
        assert_eq!(half["status"], "pending", "{half}");
        assert_eq!(
            status(decide("ben", "grant").await.unwrap_err()),
            StatusCode::CONFLICT
        );
        assert_eq!(
            refusal(c("cat").purchase(content.id, None, &[]).await.unwrap_err()).0,
            StatusCode::FORBIDDEN
        );
        let done = decide("ann", "grant").await.unwrap();
        assert_eq!(done["status"], "granted", "{done}");
        let said: ReservedDecision = find_in_box(
            &net.base,
            &users["cat"].1,
            "cat",
            ReservedDecision::MEDIA_TYPE,
            |m: &ReservedDecision| m.request == request,
        )
        .await;
        assert_eq!(
            (said.status, said.content, said.granted_by),
            (tracecast_members::Outcome::Granted, content.id, 2)
        );

        // dan is denied by ann: with "all", one denial refuses.
        let ask = post(
            c("dan"),
            "/v1/members/reserved".into(),
            Some(json!({"content": content.id})),
        )
        .await
        .unwrap();
        let dan_request = ask["request"].as_i64().unwrap();
        let r = post(
            c("ann"),
            format!("/v1/members/reserved/{dan_request}/deny"),
            None,
        )
        .await
        .unwrap();
        assert_eq!(r["status"], "refused");
        assert!(c("dan").purchase(content.id, None, &[]).await.is_err());
        let said: ReservedDecision = find_in_box(
            &net.base,
            &users["dan"].1,
            "dan",
            ReservedDecision::MEDIA_TYPE,
            |m: &ReservedDecision| m.request == dan_request,
        )
        .await;
        assert_eq!(
            (said.status, said.denied_by),
            (tracecast_members::Outcome::Refused, 1)
        );

        // cat buys the granted content and the copy leaks.
        let p = c("cat").purchase(content.id, None, &[]).await.unwrap();
        let edge = tracecast_client::EdgeClient::new().unwrap();
        let copy = edge.deliver(&p.edge_address, &p.ticket).await.unwrap();
        let leaked = files.path().join("leaked.flac");
        edge.download(&copy, &leaked, &|_, _| {}).await.unwrap();

        // cat's own check holds nobody to account.
        let own = c("cat").trace(&leaked).await.unwrap();
        assert_eq!(own.genuine_for_caller, Some(true));
        assert!(own.accountability.is_none());
        let cat_id = t.store.user_by_name("cat").await.unwrap().unwrap().0;
        assert_eq!(
            t.store.member(cat_id).await.unwrap().unwrap().status,
            tracecast_members::Status::Active
        );

        let r = net.admin.trace(&leaked).await.unwrap();
        assert_eq!(r.user.as_deref(), Some("cat"));
        let a = r.accountability.expect("the leak is accounted for");
        assert!(
            a.first_time && a.suspended && a.delivery == p.delivery,
            "{a:?}"
        );
        assert_eq!(
            a.chain
                .iter()
                .map(|c| c.member.as_str())
                .collect::<Vec<_>>(),
            ["ben", "ann"]
        );
        let after = net
            .admin
            .call(Method::GET, "/v1/members", None)
            .await
            .unwrap();
        // ann keeps 0.75 of her standing; ben 0.5 of his, and loses ann's
        // share too; dan (beside cat, under ben) follows ben; cat is out.
        let ratio = |who: &str| trust(&after, who) / trust(&before, who);
        assert!((ratio("ann") - 0.75).abs() < 1e-9);
        assert!((ratio("ben") - 0.375).abs() < 1e-9);
        assert!((ratio("dan") - 0.375).abs() < 1e-9);
        assert_eq!(trust(&after, "cat"), 0.0);
        assert!((a.chain[0].after - trust(&after, "ben")).abs() < 1e-12);
        assert_eq!(a.members_changed, 4, "cat, ben, ann and dan");
        let cat = after
            .as_array()
            .unwrap()
            .iter()
            .find(|m| m["name"] == "cat")
            .unwrap();
        assert_eq!(
            (cat["status"].as_str(), cat["leaks"].as_i64()),
            (Some("suspended"), Some(1))
        );
        let ben = after
            .as_array()
            .unwrap()
            .iter()
            .find(|m| m["name"] == "ben")
            .unwrap();
        assert!((ben["standing"].as_f64().unwrap() - 0.5).abs() < 1e-12);
        // Invariant: nobody above their referrer.
        for m in after.as_array().unwrap() {
            if let Some(r) = m["referrer"].as_i64() {
                let up = after
                    .as_array()
                    .unwrap()
                    .iter()
                    .find(|x| x["id"] == r)
                    .unwrap();
                assert!(m["trust"].as_f64().unwrap() <= up["trust"].as_f64().unwrap() + 1e-12);
            }
        }

        // The same leak traced again, by the provider this time: recorded
        // before, nothing changes.
        let again = provider.trace(&leaked).await.unwrap();
        let a = again.accountability.unwrap();
        assert!(!a.first_time && a.suspended);
        let still = net
            .admin
            .call(Method::GET, "/v1/members", None)
            .await
            .unwrap();
        assert_eq!(still, after);
        // A suspended member buys nothing and cannot approve.
        let (code, message) = refusal(c("cat").purchase(content.id, None, &[]).await.unwrap_err());
        assert_eq!(code, StatusCode::FORBIDDEN);
        assert!(message.contains("suspended"), "{message}");
        t.finish().await;
    }
}

/// DESIGN.md "004" claims 8 and 9 over HTTP: with `reserved = "any"` one
/// grant is enough and only every member's denial refuses; and every
/// upstream member from the content's order to the asker's order less one
/// is asked, however few levels admission asks (`relay_levels = 1`).
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn reserved_content_under_the_any_rule_on_both_backends() {
    use tracecast_server::origin::members::ReservedContentRequest;
    for t in TestStore::both().await {
        let mut config = OriginConfig::default();
        config.members.relay_levels = 1;
        config.members.reserved = tracecast_members::Approvals::Any;
        let net = common::start_with(&t, &["tokyo"], config).await;
        let files = tempfile::tempdir().unwrap();
        let (_, provider, _) = net.account("provider", "aurora").await;
        let mut users = std::collections::HashMap::new();
        for name in ["ann", "ben", "cat", "dan", "fay"] {
            let (_, client, token) = net.account("user", name).await;
            users.insert(name, (client, token));
        }
        let c = |n: &str| users[n].0.clone();
        let post = |client: OriginClient, path: String, body: Option<serde_json::Value>| async move {
            client.call(Method::POST, &path, body.as_ref()).await
        };
        post(
            net.admin.clone(),
            "/v1/members/admit".into(),
            Some(json!({"user": "ann", "operator": "desk-1", "document": "id ...42"})),
        )
        .await
        .unwrap();
        // A chain ann (1) - ben (2) - cat (3) - dan (4), and fay (4) under
        // cat too; each admitted by their referrer alone.
        for (who, referrer) in [
            ("ben", "ann"),
            ("cat", "ben"),
            ("dan", "cat"),
            ("fay", "cat"),
        ] {
            let app = post(
                c(who),
                "/v1/members/apply".into(),
                Some(json!({"referrer": referrer})),
            )
            .await
            .unwrap();
            let id = app["application"].as_i64().unwrap();
            let done = post(
                c(referrer),
                format!("/v1/members/applications/{id}/approve"),
                Some(json!({"rating": 1.0})),
            )
            .await
            .unwrap();
            assert_eq!(done["status"], "admitted", "{done}");
        }
        let src = common::track(files.path(), 8.0, 5);
        let content = provider
            .add_content(&src, "First order only", 100, None, |_, _| {})
            .await
            .unwrap();
        provider
            .call(
                Method::PUT,
                &format!("/v1/contents/{}/reserved", content.id),
                Some(&json!({"up_to_order": 1})),
            )
            .await
            .unwrap();
        net.edges_alive().await;
        let ask = |who: &'static str| {
            let client = c(who);
            async move {
                post(
                    client,
                    "/v1/members/reserved".into(),
                    Some(json!({"content": content.id})),
                )
                .await
                .unwrap()
            }
        };
        let decide = |who: &str, request: i64, verb: &str| {
            post(
                c(who),
                format!("/v1/members/reserved/{request}/{verb}"),
                None,
            )
        };
        // dan (order 4) asks: cat, ben and ann, three levels though
        // admission asks one.
        let a = ask("dan").await;
        assert_eq!(
            (a["rule"].as_str(), &a["asked"]),
            (Some("any"), &json!(["cat", "ben", "ann"]))
        );
        let request = a["request"].as_i64().unwrap();
        for who in ["cat", "ben", "ann"] {
            find_in_box(
                &net.base,
                &users[who].1,
                who,
                ReservedContentRequest::MEDIA_TYPE,
                |m: &ReservedContentRequest| m.request == request,
            )
            .await;
        }
        // Under "any", one denial leaves it open; one grant decides it.
        let r = decide("cat", request, "deny").await.unwrap();
        assert_eq!(r["status"], "pending", "{r}");
        assert!(c("dan").purchase(content.id, None, &[]).await.is_err());
        let r = decide("ann", request, "grant").await.unwrap();
        assert_eq!(r["status"], "granted", "{r}");
        assert_eq!(
            status(decide("ben", request, "grant").await.unwrap_err()),
            StatusCode::NOT_FOUND
        );
        c("dan").purchase(content.id, None, &[]).await.unwrap();
        let said: ReservedDecision = find_in_box(
            &net.base,
            &users["dan"].1,
            "dan",
            ReservedDecision::MEDIA_TYPE,
            |m: &ReservedDecision| m.request == request,
        )
        .await;
        assert_eq!(
            (said.status, said.granted_by, said.denied_by),
            (tracecast_members::Outcome::Granted, 1, 1)
        );
        // fay asks: refused only once every one asked denied.
        let request = ask("fay").await["request"].as_i64().unwrap();
        for (who, left) in [("cat", "pending"), ("ben", "pending"), ("ann", "refused")] {
            let r = decide(who, request, "deny").await.unwrap();
            assert_eq!(r["status"], left, "{who}: {r}");
        }
        assert!(c("fay").purchase(content.id, None, &[]).await.is_err());
        drop(net);
        t.finish().await;
    }
}

/// DESIGN.md "004" claims 5 and 10: a first-order applicant starts their
/// registration themselves (attributes, the document they will show, kept
/// as a hash); the operator's face-to-face check completes it, and their
/// client hears it is granted.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_first_order_applicant_registers_themselves_on_both_backends() {
    for t in TestStore::both().await {
        let net = common::start_with(&t, &[], OriginConfig::default()).await;
        let (_, gil, gil_token) = net.account("user", "gil").await;
        let attrs = json!({"occupation": "teacher", "place": "home", "history": "long-standing"});
        let r = gil
            .call(
                Method::POST,
                "/v1/members/register",
                Some(&json!({"attributes": attrs, "document": "passport ...7781"})),
            )
            .await
            .unwrap();
        assert_eq!(r["user"], "gil", "{r}");
        let declared = r["attribute_trust"].as_f64().unwrap();
        // Only an administrator (the registration desk) completes it, and
        // only with the document gil registered with.
        let admit = |who: &OriginClient, document: &str| {
            let who = who.clone();
            let body = json!({"user": "gil", "operator": "desk-2", "document": document});
            async move {
                who.call(Method::POST, "/v1/members/admit", Some(&body))
                    .await
            }
        };
        assert_eq!(
            status(admit(&gil, "passport ...7781").await.unwrap_err()),
            StatusCode::FORBIDDEN
        );
        let e = admit(&net.admin, "driving licence ...1234")
            .await
            .unwrap_err();
        assert_eq!(status(e), StatusCode::UNPROCESSABLE_ENTITY);
        assert!(t
            .store
            .member(t.store.user_by_name("gil").await.unwrap().unwrap().0)
            .await
            .unwrap()
            .is_none());
        // The right document (as the desk types it): admitted with the
        // attributes gil declared.
        let m = admit(&net.admin, "  Passport ...7781 ").await.unwrap();
        assert_eq!(m["order"], 1, "{m}");
        assert!(
            (m["attribute_trust"].as_f64().unwrap() - declared).abs() < 1e-12,
            "{m}"
        );
        let said: MembershipDecision = find_in_box(
            &net.base,
            &gil_token,
            "gil",
            MembershipDecision::MEDIA_TYPE,
            |m: &MembershipDecision| m.application.is_none(),
        )
        .await;
        assert_eq!((said.order, said.trust), (Some(1), Some(declared)));
        // A member registers no more.
        let e = gil
            .call(
                Method::POST,
                "/v1/members/register",
                Some(&json!({"document": "passport ...7781"})),
            )
            .await
            .unwrap_err();
        assert_eq!(status(e), StatusCode::CONFLICT);
        drop(net);
        t.finish().await;
    }
}
