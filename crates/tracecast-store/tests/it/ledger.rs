//! The ledger's storage on both backends: a transaction is written once
//! per event id however often it arrives, unbalanced ones are refused and
//! change nothing, and the stored balances are exactly what the pure rules
//! (`tracecast_ledger::balances`) say, summing to zero.

use rand::{Rng, SeedableRng};
use tracecast_ledger::{balances, Flow, Party, PartyKind, Sale, SiteUse, Transaction};
use tracecast_store::testing::TestStore;
use tracecast_store::{Applied, Store};

fn party(rng: &mut impl Rng) -> Party {
    let kind = PartyKind::ALL[rng.gen_range(0..PartyKind::ALL.len())];
    Party::new(kind, ["a", "b", "c"][rng.gen_range(0..3)])
}

fn flow(rng: &mut impl Rng) -> Flow {
    let sale = Sale {
        user: party(rng),
        provider: party(rng),
        title: "t".into(),
        price_cents: rng.gen_range(0..10_000),
        edge: "e".into(),
        edge_operator: party(rng),
        edge_fee_cents: rng.gen_range(0..100),
    };
    let home = SiteUse {
        site: "h".into(),
        operator: party(rng),
        payer: party(rng),
        fee_cents: rng.gen_range(0..100),
    };
    match rng.gen_range(0..4) {
        0 => Flow::Marked(sale),
        1 => Flow::HomeDelivered { delivery: 1, home },
        2 => Flow::RentalEnded {
            sale,
            fee_cents: rng.gen_range(0..500),
            viewing_ms: 1,
            home,
        },
        _ => Flow::Payment {
            payer: party(rng),
            clearing: Party::clearing("manual"),
            amount_cents: rng.gen_range(1..5_000),
            reference: "r".into(),
        },
    }
}

async fn events_post_once_and_balances_match_the_rules(store: &Store) {
    let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(7);
    let mut sent = Vec::new();
    for _ in 0..120 {
        // Few event ids, so many arrive more than once (with other
        // contents: a replayed or forged repeat).
        let event = format!("event-{}", rng.gen_range(0..40));
        let t = flow(&mut rng).transaction(&event, None);
        let first = !sent.iter().any(|s: &Transaction| s.event == event);
        let applied = store.post_transaction(&t).await.unwrap();
        if t.postings.is_empty() {
            continue;
        }
        assert_eq!(matches!(applied, Applied::Now(())), first, "{event}");
        sent.push(t);
    }
    let want = balances(&sent);
    let got: std::collections::BTreeMap<Party, i64> = store
        .balances()
        .await
        .unwrap()
        .into_iter()
        .map(|(a, c)| (a.parse().unwrap(), c))
        .filter(|(_, c)| *c != 0)
        .collect();
    let want: std::collections::BTreeMap<Party, i64> =
        want.into_iter().filter(|(_, c)| *c != 0).collect();
    assert_eq!(got, want);
    assert_eq!(got.values().sum::<i64>(), 0);

    // An unbalanced transaction is refused and writes nothing.
    let before = store.ledger_lines().await.unwrap().len();
    let mut bad = Transaction::new("bad", None);
    bad.transfer(&Party::user("a"), &Party::provider("b"), 100, "x");
    bad.postings[1].amount_cents = -99;
    assert!(store.post_transaction(&bad).await.is_err());
    assert!(!store.ledger_event_exists("bad").await.unwrap());
    assert_eq!(store.ledger_lines().await.unwrap().len(), before);
}

#[tokio::test]
async fn ledger_on_both_backends() {
    for t in TestStore::both().await {
        eprintln!("ledger: {}", t.backend().name());
        events_post_once_and_balances_match_the_rules(&t.store).await;
        t.finish().await;
    }
}
