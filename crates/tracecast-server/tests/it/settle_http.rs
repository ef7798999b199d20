//! Every party settles (DESIGN.md "001"; issue 30): operators, stores and
//! building managers have accounts of their own; each settling account
//! gets numbered statements in its box, reads its invoice and pays what
//! it owes, and nobody reads or pays another's.

use std::time::Duration;

use reqwest::StatusCode;
use tracecast_client::{OriginClient, Silent};
use tracecast_delivery::api::{NewAccount, PaymentRequest, PurchaseRequest};
use tracecast_delivery::{AccountKind, Statement, Tier};
use tracecast_store::testing::TestStore;

use crate::common::{self, find_in_box, refused, start, track};

fn pay(key: &str) -> PaymentRequest {
    PaymentRequest {
        amount_cents: None,
        idempotency_key: key.into(),
        note: "bank transfer".into(),
    }
}

/// A home whose fees a building manager pays: the manager, the home's
/// operator and the edge's operator each get their statement; the
/// manager pays it; the next statement carries the payment.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_building_manager_and_the_operators_get_statements_and_the_manager_pays() {
    for t in TestStore::both().await {
        let files = tempfile::tempdir().unwrap();
        let mut net = start(&t, &["tokyo"]).await;
        common::start_home_as(&mut net, "maple", |h| {
            h.payer = Some("manager:maple-court".into());
        })
        .await;
        let (_, provider, _) = net.account("provider", "aurora").await;
        let (_, bob, _) = net.account("user", "bob").await;
        let (_, manager, manager_token) = net.account("manager", "maple-court").await;
        let (_, op_tokyo, op_tokyo_token) = net.account("operator", "op-tokyo").await;
        let (_, _, op_maple_token) = net.account("operator", "op-maple").await;
        // A manager's name is its own: a second one is refused, and an
        // operator may share a store's or manager's name (other kinds).
        let (status, _) = refused(
            net.admin
                .add_account(&NewAccount::named(AccountKind::Manager, "maple-court"))
                .await
                .unwrap_err(),
        );
        assert_eq!(status, StatusCode::BAD_REQUEST);
        net.account("operator", "maple-court").await;
        net.edges_alive().await;

        let c = provider
            .add_content(&track(files.path(), 8.0, 7), "Etude", 120, None, |_, _| {})
            .await
            .unwrap();
        let mut order = PurchaseRequest::download(c.id, Some(Tier::High));
        order.home = Some("maple".into());
        let got = tracecast_client::order_via_site(
            &bob,
            &order,
            Some(&files.path().join("bob.flac")),
            Duration::from_secs(20),
            None,
            &Silent,
        )
        .await
        .unwrap();
        let delivery = got.purchase.delivery;
        // The home's report reaches the origin through the mailbox.
        let mut owed = 0;
        for _ in 0..100 {
            owed = manager.invoice(None).await.unwrap().balance_cents;
            if owed != 0 {
                break;
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        assert_eq!(owed, 30, "the manager owes the home's fee");
        // Bob owes the content only: the manager pays the home.
        assert_eq!(bob.invoice(None).await.unwrap().balance_cents, 120);

        let issued = net.admin.issue_statements().await.unwrap().issued;
        let closing = |account: &str| {
            issued
                .iter()
                .find(|s| s.account == account)
                .map(|s| (s.number, s.closing_cents))
        };
        assert_eq!(closing("manager:maple-court"), Some((1, 30)), "{issued:?}");
        assert_eq!(closing("operator:op-maple"), Some((1, -30)), "{issued:?}");
        assert_eq!(closing("operator:op-tokyo"), Some((1, -5)), "{issued:?}");
        assert_eq!(
            closing("provider:aurora"),
            Some((1, -(120 - 5))),
            "{issued:?}"
        );
        // Users are billed per delivery; the other operator has nothing.
        assert!(issued.iter().all(|s| !s.account.starts_with("user:")));
        assert_eq!(closing("operator:maple-court"), None);

        // Each reads its own in its box.
        let s: Statement = find_in_box(
            &net.base,
            &manager_token,
            "manager:maple-court",
            Statement::MEDIA_TYPE,
            |s: &Statement| s.number == 1,
        )
        .await;
        assert_eq!((s.opening_cents, s.closing_cents), (0, 30));
        assert_eq!(s.lines.len(), 1, "{s:?}");
        assert_eq!(s.lines[0].delivery, Some(delivery));
        assert_eq!(s.lines[0].amount_cents, 30);
        assert_eq!(s.account, "manager:maple-court");
        let s: Statement = find_in_box(
            &net.base,
            &op_maple_token,
            "operator:op-maple",
            Statement::MEDIA_TYPE,
            |s: &Statement| s.number == 1,
        )
        .await;
        assert_eq!(s.closing_cents, -30);
        let s: Statement = find_in_box(
            &net.base,
            &op_tokyo_token,
            "operator:op-tokyo",
            Statement::MEDIA_TYPE,
            |s: &Statement| s.number == 1,
        )
        .await;
        assert_eq!(s.closing_cents, -5);

        // Nobody reads another's: not a user's, not a ledger account by
        // name; machines have no ledger account; the administrator reads
        // any.
        for query in ["user=bob", "account=user:bob", "account=operator:op-maple"] {
            let r = reqwest::Client::new()
                .get(format!("{}/v1/invoice?{query}", net.base))
                .bearer_auth(&manager_token)
                .send()
                .await
                .unwrap();
            assert_eq!(r.status(), StatusCode::FORBIDDEN, "{query}");
        }
        let edge = OriginClient::new(&net.base, &net.site_token("tokyo")).unwrap();
        let (status, _) = refused(edge.invoice(None).await.unwrap_err());
        assert_eq!(status, StatusCode::FORBIDDEN);
        let (status, _) = refused(edge.pay(&pay("e1")).await.unwrap_err());
        assert_eq!(status, StatusCode::FORBIDDEN);
        let (status, _) = refused(net.admin.pay(&pay("a1")).await.unwrap_err());
        assert_eq!(status, StatusCode::FORBIDDEN);
        let seen = net
            .admin
            .invoice(Some("manager:maple-court"))
            .await
            .unwrap();
        assert_eq!(
            (seen.account.as_str(), seen.balance_cents),
            ("manager:maple-court", 30)
        );

        // The manager pays its statement, once however often it retries;
        // an operator, owed money, has nothing to pay.
        let r = manager.pay(&pay("march")).await.unwrap();
        assert_eq!(
            (r.amount_cents, r.balance_cents, r.repeated),
            (30, 0, false)
        );
        let again = manager.pay(&pay("march")).await.unwrap();
        assert!(again.repeated && again.amount_cents == 0);
        assert_eq!(manager.invoice(None).await.unwrap().balance_cents, 0);
        let (status, code) = refused(op_tokyo.pay(&pay("x")).await.unwrap_err());
        assert_eq!(
            (status, code.as_str()),
            (StatusCode::UNPROCESSABLE_ENTITY, "nothing_owed")
        );

        // The next statement carries the payment; then nothing is new.
        let issued = net.admin.issue_statements().await.unwrap().issued;
        assert_eq!(issued.len(), 1, "{issued:?}");
        assert_eq!(
            (
                issued[0].account.as_str(),
                issued[0].number,
                issued[0].closing_cents
            ),
            ("manager:maple-court", 2, 0)
        );
        let s: Statement = find_in_box(
            &net.base,
            &manager_token,
            "manager:maple-court",
            Statement::MEDIA_TYPE,
            |s: &Statement| s.number == 2,
        )
        .await;
        assert_eq!((s.opening_cents, s.closing_cents), (30, 0));
        assert_eq!(s.lines[0].amount_cents, -30);
        assert!(net
            .admin
            .issue_statements()
            .await
            .unwrap()
            .issued
            .is_empty());
        // Only the administrator issues them.
        let (status, _) = refused(manager.issue_statements().await.unwrap_err());
        assert_eq!(status, StatusCode::FORBIDDEN);
    }
}
