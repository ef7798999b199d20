//! The mailbox's storage rules, each run on SQLite and on PostgreSQL.

use tracecast_mailbox::{
    BoxName, Disposition, FetchRequest, MessageId, MessageState, Next, Retention, Want,
};
use tracecast_store::testing::TestStore;
use tracecast_store::{Applied, DisposeOutcome, NewMessage, Principal, Store, StoreError};

fn name(s: &str) -> BoxName {
    s.parse().unwrap()
}

async fn new_box(store: &Store, n: &str) -> i64 {
    store
        .create_box(&name(n), None, None, format!("hash-of-{n}"))
        .await
        .unwrap()
        .id
}

fn message(box_id: i64, body: &str) -> NewMessage {
    let now = tracecast_store::now_ms();
    NewMessage {
        box_id,
        media_type: "text/plain".into(),
        body: body.as_bytes().to_vec(),
        protected: false,
        sender: tracecast_mailbox::Sender::Box("user:test".parse().unwrap()),
        idempotency_key: None,
        created_at: now,
        expires_at: now + 3_600_000,
    }
}

fn want(w: Want, done: Option<(MessageId, Disposition)>) -> FetchRequest {
    FetchRequest { want: w, done }
}

fn now() -> i64 {
    tracecast_store::now_ms()
}

/// Runs `check` on a fresh store of each backend.
macro_rules! on_both {
    ($check:ident) => {
        for t in TestStore::both().await {
            let backend = t.backend();
            eprintln!("{}: {}", stringify!($check), backend.name());
            $check(&t.store).await;
            t.finish().await;
        }
    };
}

async fn fetch_resends_until_told_and_names_the_next(store: &Store) {
    let b = new_box(store, "user:alice").await;
    let m1 = store.post(message(b, "one")).await.unwrap().id;
    let m2 = store.post(message(b, "two!")).await.unwrap().id;
    assert!(m2 > m1);

    let f = store.fetch(b, &FetchRequest::first(), now()).await.unwrap();
    let got = f.message.unwrap();
    assert_eq!((got.id, got.body.as_slice()), (m1, &b"one"[..]));
    assert_eq!(f.next, Next::Id(m2));
    assert_eq!(f.next_length, Some(4));
    assert_eq!(f.done, None);

    // Asked again, the same message comes again: nothing was acknowledged.
    let again = store.fetch(b, &FetchRequest::first(), now()).await.unwrap();
    assert_eq!(again.message.unwrap().id, m1);

    // Next fetch carries the instruction for the stored one.
    let f = store
        .fetch(b, &want(Want::Id(m2), Some((m1, Disposition::Move))), now())
        .await
        .unwrap();
    assert_eq!(f.message.unwrap().body, b"two!");
    assert_eq!(f.next, Next::None);
    assert_eq!(f.done, Some(DisposeOutcome::Applied));

    // Only the instruction: valid, and it leaves the box empty.
    let f = store
        .fetch(
            b,
            &want(Want::Nothing, Some((m2, Disposition::Delete))),
            now(),
        )
        .await
        .unwrap();
    assert_eq!(
        (f.message, f.next, f.done),
        (None, Next::None, Some(DisposeOutcome::Applied))
    );
    let empty = store.fetch(b, &FetchRequest::first(), now()).await.unwrap();
    assert!(empty.message.is_none());

    // The moved one sits in the processed store with its body.
    let processed = store.list(b, MessageState::Processed, 0, 10).await.unwrap();
    assert_eq!(processed.len(), 1);
    assert_eq!(processed[0].id, m1);
    assert_eq!(store.processed(b, m1).await.unwrap().body, b"one");
    let stats = store.stats(b, now()).await.unwrap();
    assert_eq!((stats.pending, stats.processed), (0, 1));
}

async fn instructions_are_idempotent_and_final(store: &Store) {
    let b = new_box(store, "device:cam-1").await;
    let m = store.post(message(b, "x")).await.unwrap().id;
    let delete = want(Want::Nothing, Some((m, Disposition::Delete)));
    assert_eq!(
        store.fetch(b, &delete, now()).await.unwrap().done,
        Some(DisposeOutcome::Applied)
    );
    // The same request again (the answer was lost on the way): harmless.
    assert_eq!(
        store.fetch(b, &delete, now()).await.unwrap().done,
        Some(DisposeOutcome::Already)
    );
    // A delete is never undone.
    let undo = want(Want::Nothing, Some((m, Disposition::Move)));
    assert!(matches!(
        store.fetch(b, &undo, now()).await,
        Err(StoreError::Conflict(_))
    ));
    // Asking for it by id says it is gone.
    assert!(matches!(
        store.fetch(b, &want(Want::Id(m), None), now()).await,
        Err(StoreError::Gone(_, "deleted"))
    ));
}

async fn bad_requests_change_nothing(store: &Store) {
    let a = new_box(store, "user:a").await;
    let b = new_box(store, "user:b").await;
    let ma = store.post(message(a, "for a")).await.unwrap().id;
    let mb = store.post(message(b, "for b")).await.unwrap().id;
    let unknown = MessageId::new(ma.get() + 1000).unwrap();

    // Unknown wanted id: the valid instruction in the same request is not applied.
    let r = store
        .fetch(
            a,
            &want(Want::Id(unknown), Some((ma, Disposition::Delete))),
            now(),
        )
        .await;
    assert!(matches!(r, Err(StoreError::UnknownMessage(_))));
    // Another box's message is unknown here, for reading and for instructions.
    assert!(matches!(
        store.fetch(a, &want(Want::Id(mb), None), now()).await,
        Err(StoreError::UnknownMessage(_))
    ));
    assert!(matches!(
        store
            .fetch(
                a,
                &want(Want::Nothing, Some((mb, Disposition::Delete))),
                now()
            )
            .await,
        Err(StoreError::UnknownMessage(_))
    ));
    assert_eq!(store.stats(a, now()).await.unwrap().pending, 1);
    assert_eq!(store.stats(b, now()).await.unwrap().pending, 1);
    assert_eq!(
        store
            .fetch(b, &FetchRequest::first(), now())
            .await
            .unwrap()
            .message
            .unwrap()
            .id,
        mb
    );
}

async fn retried_posts_land_once(store: &Store) {
    let b = new_box(store, "role:origin").await;
    let mut m = message(b, "report");
    m.idempotency_key = Some("delivery-42".into());
    let first = store.post(m.clone()).await.unwrap();
    let second = store.post(m.clone()).await.unwrap();
    assert!(!first.duplicate && second.duplicate);
    assert_eq!(first.id, second.id);
    // The same key in another box is another message.
    let other = new_box(store, "role:edge").await;
    m.box_id = other;
    assert_ne!(store.post(m).await.unwrap().id, first.id);
    assert_eq!(store.stats(b, now()).await.unwrap().pending, 1);
}

async fn retention_expires_and_trims(store: &Store) {
    let b = new_box(store, "user:r").await;
    let t0 = now();
    let mut short = message(b, "short-lived");
    short.expires_at = t0 + 1_000;
    let short = store.post(short).await.unwrap().id;
    let mut keep = message(b, "kept");
    keep.expires_at = t0 + 100 * 24 * 3_600_000;
    let keep = store.post(keep).await.unwrap().id;
    // After its TTL the short one is invisible, then swept.
    let f = store
        .fetch(b, &FetchRequest::first(), t0 + 2_000)
        .await
        .unwrap();
    assert_eq!(f.message.unwrap().id, keep);
    assert!(matches!(
        store
            .fetch(b, &want(Want::Id(short), None), t0 + 2_000)
            .await,
        Err(StoreError::Gone(_, "expired"))
    ));
    let retention = Retention {
        processed_max: 2,
        processed_keep: 3600,
        tombstone_keep: 3600,
        ..Retention::default()
    };
    let r = store.sweep(retention, t0 + 2_000).await.unwrap();
    assert_eq!(r.expired, 1);

    // Five processed messages, a cap of two: the three oldest go.
    let mut ids = Vec::new();
    for i in 0..5 {
        let id = store.post(message(b, &format!("p{i}"))).await.unwrap().id;
        store
            .fetch(
                b,
                &want(Want::Nothing, Some((id, Disposition::Move))),
                t0 + 3_000,
            )
            .await
            .unwrap();
        ids.push(id);
    }
    let r = store.sweep(retention, t0 + 4_000).await.unwrap();
    assert_eq!(r.processed_dropped, 3);
    let left: Vec<MessageId> = store
        .list(b, MessageState::Processed, 0, 10)
        .await
        .unwrap()
        .iter()
        .map(|m| m.id)
        .collect();
    assert_eq!(left, ids[3..]);
    // After the period the rest go too, and later their tombstones.
    let r1 = store
        .sweep(retention, t0 + 3_000 + 3_601_000)
        .await
        .unwrap();
    assert_eq!(r1.processed_dropped, 2);
    let r2 = store.sweep(retention, t0 + 3 * 3_601_000).await.unwrap();
    // Six tombstones in all (one expired, five processed), each forgotten
    // an hour after it was made.
    assert_eq!(
        r.tombstones_purged + r1.tombstones_purged + r2.tombstones_purged,
        6,
        "{r1:?} {r2:?}"
    );
    // The pending one is untouched until its own TTL.
    assert_eq!(store.stats(b, t0 + 5_000).await.unwrap().pending, 1);
}

async fn concurrent_posts_commit_in_groups_and_keep_order(store: &Store) {
    let b = new_box(store, "user:busy").await;
    let mut tasks = Vec::new();
    for i in 0..400 {
        let store = store.clone();
        tasks.push(tokio::spawn(async move {
            store.post(message(b, &format!("m{i}"))).await.unwrap().id
        }));
    }
    let mut ids = Vec::new();
    for t in tasks {
        ids.push(t.await.unwrap());
    }
    ids.sort();
    ids.dedup();
    assert_eq!(ids.len(), 400);
    // Draining with acknowledge-on-next-fetch sees every one, in id order.
    let mut seen = Vec::new();
    let mut req = FetchRequest::first();
    loop {
        let f = store.fetch(b, &req, now()).await.unwrap();
        let Some(m) = f.message else { break };
        seen.push(m.id);
        req = match f.next {
            Next::Id(n) => want(Want::Id(n), Some((m.id, Disposition::Delete))),
            Next::None => want(Want::Nothing, Some((m.id, Disposition::Delete))),
        };
        if f.next == Next::None {
            store.fetch(b, &req, now()).await.unwrap();
            break;
        }
    }
    assert_eq!(seen, ids);
    assert_eq!(store.stats(b, now()).await.unwrap().pending, 0);
}

async fn tokens_name_their_holder(store: &Store) {
    let id = new_box(store, "user:t").await;
    assert_eq!(
        store.principal("hash-of-user:t").await.unwrap(),
        Some(Principal::Box {
            id,
            name: name("user:t")
        })
    );
    assert!(!store.has_admin().await.unwrap());
    store
        .add_token("admin-hash".into(), None, "admin")
        .await
        .unwrap();
    assert!(store.has_admin().await.unwrap());
    assert_eq!(
        store.principal("admin-hash").await.unwrap(),
        Some(Principal::Admin)
    );
    assert_eq!(store.principal("nope").await.unwrap(), None);
    assert!(matches!(
        store
            .create_box(&name("user:t"), None, None, "h2".into())
            .await,
        Err(StoreError::BoxExists(_))
    ));
}

async fn consumers_apply_each_key_once(store: &Store) {
    use std::sync::atomic::{AtomicU32, Ordering};
    use std::sync::Arc;
    let runs = Arc::new(AtomicU32::new(0));
    for _ in 0..3 {
        let runs = runs.clone();
        let r = store
            .apply_once("ledger", "delivery-7", move |_conn| {
                Box::pin(async move {
                    runs.fetch_add(1, Ordering::SeqCst);
                    Ok(7)
                })
            })
            .await
            .unwrap();
        assert!(matches!(r, Applied::Now(7) | Applied::Before));
    }
    assert_eq!(runs.load(Ordering::SeqCst), 1);
    // A failed effect records nothing, so the message can be applied later.
    let failed = store
        .apply_once("ledger", "delivery-8", |_conn| {
            Box::pin(async { Err::<(), _>(StoreError::UnknownMessage(8)) })
        })
        .await;
    assert!(failed.is_err());
    let later = store
        .apply_once("ledger", "delivery-8", |_conn| Box::pin(async { Ok(()) }))
        .await
        .unwrap();
    assert_eq!(later, Applied::Now(()));
}

#[tokio::test]
async fn fetch_resends_until_told_and_names_the_next_on_both() {
    on_both!(fetch_resends_until_told_and_names_the_next);
}
#[tokio::test]
async fn instructions_are_idempotent_and_final_on_both() {
    on_both!(instructions_are_idempotent_and_final);
}
#[tokio::test]
async fn bad_requests_change_nothing_on_both() {
    on_both!(bad_requests_change_nothing);
}
#[tokio::test]
async fn retried_posts_land_once_on_both() {
    on_both!(retried_posts_land_once);
}
#[tokio::test]
async fn retention_expires_and_trims_on_both() {
    on_both!(retention_expires_and_trims);
}
#[tokio::test]
async fn concurrent_posts_commit_in_groups_and_keep_order_on_both() {
    on_both!(concurrent_posts_commit_in_groups_and_keep_order);
}
#[tokio::test]
async fn tokens_name_their_holder_on_both() {
    on_both!(tokens_name_their_holder);
}
#[tokio::test]
async fn consumers_apply_each_key_once_on_both() {
    on_both!(consumers_apply_each_key_once);
}

#[tokio::test]
async fn sqlite_mail_survives_reopening() {
    let dir = tempfile::tempdir().unwrap();
    let store = Store::open_dir(dir.path()).await.unwrap();
    let b = new_box(&store, "user:d").await;
    let id = store.post(message(b, "durable")).await.unwrap().id;
    store.close().await;
    let store = Store::open_dir(dir.path()).await.unwrap();
    let f = store.fetch(b, &FetchRequest::first(), now()).await.unwrap();
    assert_eq!(f.message.unwrap().id, id);
}
