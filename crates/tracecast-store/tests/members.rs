//! Members on both backends: first-order admission with its identity
//! check, referred admission, the chain above a member, bulk admission of a
//! referral tree, and trusts computed over the whole membership with
//! `tracecast-members` and written back.

use tracecast_store::testing::TestStore;
use tracecast_store::{AccountKind, BulkMember, Store, UserId};

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

#[tokio::test]
async fn members_on_both_backends() {
    for t in TestStore::both().await {
        eprintln!("members: {}", t.backend().name());
        members_are_kept_and_computed(&t.store).await;
        t.finish().await;
    }
}
