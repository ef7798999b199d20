//! A small catalog both the deliveries and the protected-content suites
//! start from: two users, a provider, an edge and one content.
#![allow(dead_code)]

use tracecast_delivery::{Mode, OrderInfo, Tier};
use tracecast_store::{AccountKind, EdgeId, NewContent, NewDelivery, ProviderId, Store, UserId};

pub struct World {
    pub alice: UserId,
    pub bob: UserId,
    pub provider: ProviderId,
    pub edge: EdgeId,
    pub content: i64,
}

pub async fn world(store: &Store) -> World {
    let account = |kind, name: &'static str, edge| async move {
        store
            .add_account(kind, name, format!("hash-{name}"), edge)
            .await
            .unwrap()
    };
    let alice = account(AccountKind::User, "alice", None)
        .await
        .user()
        .unwrap();
    let bob = account(AccountKind::User, "bob", None)
        .await
        .user()
        .unwrap();
    let provider = account(AccountKind::Provider, "aurora", None)
        .await
        .provider()
        .unwrap();
    let edge = account(
        AccountKind::Edge,
        "paris",
        Some(tracecast_store::NewEdge {
            address: "http://paris.example",
            operator: "op",
            fee_cents: 20,
            region: Some("eu-west-3"),
            open: true,
            period_fee_cents: 0,
            period_days: 0,
        }),
    )
    .await
    .edge()
    .unwrap();
    let content = store
        .add_content(&NewContent {
            provider_id: provider,
            title: "Nocturne".into(),
            kind: tracecast_delivery::ContentKind::Audio,
            price_cents: 250,
            terms: String::new(),
            source_sha256: "ab".repeat(32),
            source_bytes: 1_000,
            rental_tariff: None,
            reserved_up_to_order: None,
            protected: false,
            renditions: Vec::new(),
        })
        .await
        .unwrap();
    World {
        alice,
        bob,
        provider,
        edge,
        content,
    }
}

pub fn order(w: &World, user: UserId, key: Option<&str>) -> NewDelivery {
    NewDelivery {
        content_id: w.content,
        tier: Tier::High,
        user_id: user,
        provider_id: w.provider,
        edge_id: w.edge,
        price_cents: 250,
        edge_fee_cents: 20,
        mode: Mode::Download,
        site_id: None,
        site_fee_cents: 0,
        order_info: OrderInfo::default(),
        purchase_key: key.map(str::to_owned),
    }
}
