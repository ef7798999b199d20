//! Members on both backends: first-order admission with its identity
//! check, referred admission, the chain above a member, bulk admission of a
//! referral tree, and trusts computed over the whole membership with
//! `tracecast-members` and written back; applications and requests for
//! reserved content closed once, with their states as types (a word the
//! types do not know is an error, never a default).

use tracecast_members::{ApplicationStatus, Approvals, Outcome};
use tracecast_store::testing::TestStore;
use tracecast_store::{AccountKind, BulkMember, NewContent, Store, UserId};

async fn user(store: &Store, name: &str) -> UserId {
    store
        .add_account(AccountKind::User, name, format!("hash-{name}"), None)
        .await
        .unwrap()
        .user()
        .unwrap()
}

async fn members_are_kept_and_computed(store: &Store) {
    let ann = user(store, "ann").await;
    let ben = user(store, "ben").await;
    let a = store
        .add_member(
            ann,
            1,
            None,
            0.9,
            1.0,
            0.9,
            "{}",
            Some(("op-1", "passport X123")),
        )
        .await
        .unwrap();
    assert_eq!(
        (a.order, a.trust, a.status),
        (1, 0.9, tracecast_members::Status::Active)
    );
    store
        .add_member(ben, 2, Some(ann), 0.8, 0.5, 0.9 * 0.8 * 0.5, "{}", None)
        .await
        .unwrap();
    // Twice is refused and changes nothing.
    assert!(store
        .add_member(ben, 2, Some(ann), 1.0, 1.0, 1.0, "{}", None)
        .await
        .is_err());
    let chain = store.member_chain(ben, 5).await.unwrap();
    assert_eq!(chain.iter().map(|m| m.user_id).collect::<Vec<_>>(), [ann]);
    assert!((store.member(ben).await.unwrap().unwrap().trust - 0.36).abs() < 1e-12);

    // A referral tree in bulk: member i is referred by member i/3.
    let bulk: Vec<BulkMember> = (0..5000usize)
        .map(|i| BulkMember {
            name: format!("m{i}"),
            referrer: (i > 0).then(|| (i - 1) / 3),
            attribute_trust: 0.5 + (i % 5) as f64 / 10.0,
            rating: 0.9,
        })
        .collect();
    let ids = store.bulk_add_members(&bulk).await.unwrap();
    assert_eq!(ids.len(), 5000);
    // The sequences moved past the bulk ids: a new user still gets one.
    let after = user(store, "late").await;
    assert!(after > *ids.last().unwrap());
    let all = store.all_members().await.unwrap();
    assert_eq!(all.len(), 5002);
    let graph = store.member_graph().await.unwrap();
    assert_eq!(
        graph.user_ids,
        all.iter().map(|m| m.user_id.get()).collect::<Vec<_>>()
    );
    assert_eq!(
        graph.referrers,
        all.iter()
            .map(|m| m.referrer_id.map(UserId::get))
            .collect::<Vec<_>>()
    );
    assert!(graph.active.iter().all(|a| *a));
    let mut forest = graph
        .forest()
        .expect("members come after their referrers by order");
    let trust = forest.compute().to_vec();
    let updates: Vec<(i64, f64)> = all
        .iter()
        .zip(&trust)
        .map(|(m, t)| (m.user_id.get(), *t))
        .collect();
    store.set_member_trusts(&updates).await.unwrap();
    let root = store.member(ids[0]).await.unwrap().unwrap();
    let child = store.member(ids[1]).await.unwrap().unwrap();
    assert!((root.trust - 0.5 * 0.9).abs() < 1e-12);
    assert!((child.trust - root.trust * 0.6 * 0.9).abs() < 1e-12);
    assert!(child.trust <= root.trust);
}

async fn applications_and_requests_close_once(store: &Store) {
    let ann = user(store, "ann").await;
    let ben = user(store, "ben").await;
    let cat = user(store, "cat").await;
    store
        .add_member(ann, 1, None, 0.9, 1.0, 0.9, "{}", Some(("op-1", "id 1")))
        .await
        .unwrap();
    store
        .add_member(ben, 2, Some(ann), 0.8, 0.5, 0.36, "{}", None)
        .await
        .unwrap();

    // An application: pending, then closed once.
    let app = store.add_application(cat, ben, "{}", 0.7, 2).await.unwrap();
    let read = store.application(app).await.unwrap().unwrap();
    assert_eq!(
        (read.user_id, read.referrer_id, read.status),
        (cat, ben, ApplicationStatus::Pending)
    );
    assert!(store
        .close_application(app, ApplicationStatus::Refused)
        .await
        .unwrap());
    assert!(!store
        .close_application(app, ApplicationStatus::Admitted)
        .await
        .unwrap());
    assert_eq!(
        store.application(app).await.unwrap().unwrap().status,
        ApplicationStatus::Refused
    );

    // A request for reserved content: open while pending or granted.
    let provider = store
        .add_account(AccountKind::Provider, "aurora", "hash-aurora".into(), None)
        .await
        .unwrap()
        .provider()
        .unwrap();
    let content = store
        .add_content(&NewContent {
            provider_id: provider,
            title: "Members only".into(),
            kind: tracecast_delivery::ContentKind::Audio,
            price_cents: 100,
            terms: String::new(),
            source_sha256: "ab".repeat(32),
            source_bytes: 1_000,
            rental_tariff: None,
            reserved_up_to_order: Some(1),
            protected: false,
            renditions: Vec::new(),
        })
        .await
        .unwrap();
    let req = store
        .add_reserved_request(ben, content, &[ann], Approvals::Any)
        .await
        .unwrap();
    let open = store
        .open_reserved_request(ben, content)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(
        (open.id, open.asked.clone(), open.rule, open.status),
        (req, vec![ann], Approvals::Any, Outcome::Pending)
    );
    assert!(store
        .close_reserved_request(req, Outcome::Granted)
        .await
        .unwrap());
    assert!(!store
        .close_reserved_request(req, Outcome::Refused)
        .await
        .unwrap());
    let granted = store.open_reserved_request(ben, content).await.unwrap();
    assert_eq!(granted.map(|r| r.status), Some(Outcome::Granted));
    let refused = store
        .add_reserved_request(ben, content, &[ann], Approvals::All)
        .await
        .unwrap();
    store
        .close_reserved_request(refused, Outcome::Refused)
        .await
        .unwrap();
    // The latest open one is the granted request, not the refused one.
    assert_eq!(
        store
            .open_reserved_request(ben, content)
            .await
            .unwrap()
            .map(|r| r.id),
        Some(req)
    );

    // A row the types do not know is an error, not a guess.
    for (table, column, value, id) in [
        ("member_applications", "status", "approved", app),
        ("reserved_requests", "status", "maybe", req),
        ("reserved_requests", "rule", "most", req),
        ("reserved_requests", "asked", "[\"ann\"]", req),
    ] {
        let before: String =
            sqlx::query_scalar(&format!("SELECT {column} FROM {table} WHERE id = $1"))
                .bind(id)
                .fetch_one(store.pool())
                .await
                .unwrap();
        sqlx::query(&format!("UPDATE {table} SET {column} = $1 WHERE id = $2"))
            .bind(value)
            .bind(id)
            .execute(store.pool())
            .await
            .unwrap();
        let read = if table == "member_applications" {
            store.application(id).await.map(|_| ())
        } else {
            store.reserved_request(id).await.map(|_| ())
        };
        assert!(read.is_err(), "{table}.{column} = {value:?} was read");
        sqlx::query(&format!("UPDATE {table} SET {column} = $1 WHERE id = $2"))
            .bind(before)
            .bind(id)
            .execute(store.pool())
            .await
            .unwrap();
    }
    assert!(store.application(app).await.is_ok());
    assert!(store.reserved_request(req).await.is_ok());
}

#[tokio::test]
async fn members_on_both_backends() {
    for t in TestStore::both().await {
        eprintln!("members: {}", t.backend().name());
        members_are_kept_and_computed(&t.store).await;
        t.finish().await;
    }
}

#[tokio::test]
async fn applications_and_requests_on_both_backends() {
    for t in TestStore::both().await {
        eprintln!("applications: {}", t.backend().name());
        applications_and_requests_close_once(&t.store).await;
        t.finish().await;
    }
}
