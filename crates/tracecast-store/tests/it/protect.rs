//! Protected content on both backends: a rendition's key kept once (two
//! first requests agree on one key), licences recorded per user with their
//! system, a roaming conversion and its charge written together once per
//! source licence, a partner's consent spent only within its limit; and a
//! row the types do not know read as an error, never as a default.

use tracecast_delivery::Tier;
use tracecast_ledger::{Party, Transaction};
use tracecast_protect::{ConversionWay, System};
use tracecast_store::testing::TestStore;
use tracecast_store::{
    AccountKind, ContentKeyRecord, ConversionRecord, LicenceRecord, PartnerConsent, Spend, Store,
    UserId,
};

use crate::common::{order, world, World};

fn licence(
    w: &World,
    delivery: i64,
    id: &str,
    user: UserId,
    system: System,
    issued_at: i64,
) -> LicenceRecord {
    LicenceRecord {
        id: id.into(),
        delivery_id: delivery,
        user_id: user,
        content_id: w.content,
        key_id: "kid-1".into(),
        system,
        issued_at,
        not_after: issued_at + 3_600,
    }
}

fn conversion(source: &str, way: ConversionWay, at: i64) -> ConversionRecord {
    // The roaming server's log names the issuer's content, not a row here.
    ConversionRecord {
        source_id: source.into(),
        issuer: "origin-a".into(),
        user_name: "alice".into(),
        content_id: 3,
        from_system: System::Clearkey,
        to_system: System::Age,
        licence_id: format!("new-{source}"),
        fee_cents: 25,
        way,
        converted_at: at,
    }
}

fn charge(event: &str, cents: i64) -> Transaction {
    let mut t = Transaction::new(event, None);
    t.transfer(
        &Party::user("alice"),
        &Party::operator("roaming"),
        cents,
        "conversion",
    );
    t
}

async fn protected_content_is_kept(store: &Store) {
    let w = world(store).await;
    let content = w.content;
    // A rendition's key: the first one kept wins; tiers are apart.
    assert_eq!(store.content_key(content, Tier::High).await.unwrap(), None);
    let first = store
        .add_content_key(content, Tier::High, "kid-1", "sealed-1")
        .await
        .unwrap();
    let second = store
        .add_content_key(content, Tier::High, "kid-2", "sealed-2")
        .await
        .unwrap();
    let want = ContentKeyRecord {
        key_id: "kid-1".into(),
        sealed_key: "sealed-1".into(),
    };
    assert_eq!((first, second), (want.clone(), want.clone()));
    assert_eq!(
        store.content_key(content, Tier::High).await.unwrap(),
        Some(want)
    );
    assert_eq!(
        store.content_key(content, Tier::Preview).await.unwrap(),
        None
    );

    // Licences, per user, in the order issued, with their system.
    let (alice, bob) = (w.alice, w.bob);
    let (da, _) = store.open_delivery(&order(&w, alice, None)).await.unwrap();
    let (db, _) = store.open_delivery(&order(&w, bob, None)).await.unwrap();
    let a1 = licence(&w, da.id, "lic-a1", alice, System::Age, 100);
    let a2 = licence(&w, da.id, "lic-a2", alice, System::Device, 200);
    let b1 = licence(&w, db.id, "lic-b1", bob, System::Clearkey, 150);
    for l in [&a2, &b1, &a1] {
        store.record_licence(l).await.unwrap();
    }
    assert!(
        store.record_licence(&a1).await.is_err(),
        "a licence id is recorded once"
    );
    assert_eq!(store.licences_of(alice).await.unwrap(), vec![a1, a2]);
    assert_eq!(store.licences_of(bob).await.unwrap(), vec![b1]);

    // A conversion and its charge together, once per source licence.
    let c = conversion("src-1", ConversionWay::User, 300);
    assert!(store
        .record_conversion(&c, &charge("roaming/src-1", 25))
        .await
        .unwrap());
    assert!(!store
        .record_conversion(
            &conversion("src-1", ConversionWay::Package, 400),
            &charge("roaming/src-1-again", 25)
        )
        .await
        .unwrap());
    assert!(store.ledger_event_exists("roaming/src-1").await.unwrap());
    assert!(
        !store
            .ledger_event_exists("roaming/src-1-again")
            .await
            .unwrap(),
        "a repeated conversion charges nothing"
    );
    // An unbalanced charge writes neither the conversion nor the charge.
    let mut broken = charge("roaming/src-2", 25);
    broken.postings.pop();
    assert!(store
        .record_conversion(&conversion("src-2", ConversionWay::Issuer, 500), &broken)
        .await
        .is_err());
    assert_eq!(store.conversions_of("alice").await.unwrap(), vec![c]);
    assert!(store.conversions_of("bob").await.unwrap().is_empty());

    // A partner's consent: spent within its limit only; a changed limit
    // keeps what was spent; taken back, nothing more is spent.
    let user = store
        .add_account(AccountKind::User, "carol", "hash-carol".into(), None)
        .await
        .unwrap()
        .user()
        .unwrap();
    let partner = store
        .add_account(AccountKind::Partner, "roamer", "hash-roamer".into(), None)
        .await
        .unwrap()
        .partner()
        .unwrap();
    assert_eq!(
        store
            .spend_partner_consent(user, partner, 10)
            .await
            .unwrap(),
        Spend::NoConsent
    );
    store.set_partner_consent(user, partner, 500).await.unwrap();
    assert_eq!(
        store
            .spend_partner_consent(user, partner, 300)
            .await
            .unwrap(),
        Spend::Done
    );
    assert_eq!(
        store
            .spend_partner_consent(user, partner, 300)
            .await
            .unwrap(),
        Spend::OverLimit(PartnerConsent {
            limit_cents: 500,
            spent_cents: 300
        })
    );
    assert_eq!(
        store.set_partner_consent(user, partner, 800).await.unwrap(),
        PartnerConsent {
            limit_cents: 800,
            spent_cents: 300
        }
    );
    assert_eq!(
        store
            .spend_partner_consent(user, partner, 500)
            .await
            .unwrap(),
        Spend::Done
    );
    assert!(store.revoke_partner_consent(user, partner).await.unwrap());
    assert!(!store.revoke_partner_consent(user, partner).await.unwrap());
    assert_eq!(
        store.spend_partner_consent(user, partner, 1).await.unwrap(),
        Spend::NoConsent
    );

    // A row the types do not know is an error, not a guess.
    for (table, column, value) in [
        ("licences", "system", "widevine"),
        ("roaming_conversions", "from_system", "playready"),
        ("roaming_conversions", "to_system", "Age"),
        ("roaming_conversions", "way", "smuggled"),
    ] {
        sqlx::query(&format!("UPDATE {table} SET {column} = $1"))
            .bind(value)
            .execute(store.pool())
            .await
            .unwrap();
        let read = if table == "licences" {
            store.licences_of(alice).await.map(|_| ())
        } else {
            store.conversions_of("alice").await.map(|_| ())
        };
        assert!(read.is_err(), "{table}.{column} = {value:?} was read");
        let good = match column {
            "system" => "age",
            "way" => "user",
            _ => "clearkey",
        };
        sqlx::query(&format!("UPDATE {table} SET {column} = $1"))
            .bind(good)
            .execute(store.pool())
            .await
            .unwrap();
    }
    assert!(store.licences_of(alice).await.is_ok());
    assert!(store.conversions_of("alice").await.is_ok());
}

#[tokio::test]
async fn protected_content_on_both_backends() {
    for t in TestStore::both().await {
        eprintln!("protect: {}", t.backend().name());
        protected_content_is_kept(&t.store).await;
        t.finish().await;
    }
}
