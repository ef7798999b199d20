//! The postings of every flow of DESIGN.md "001": who owes whom when an
//! edge marks a copy, a home delivers it or ends a rental, a kiosk writes a
//! disc, or a user pays.

use crate::{money, Party, Transaction};

/// A sale through an edge: the content, its price and the edge's fee.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Sale {
    pub user: Party,
    pub provider: Party,
    pub title: String,
    pub price_cents: i64,
    pub edge: String,
    pub edge_operator: Party,
    pub edge_fee_cents: i64,
}

/// Use of a home server: its operator's fee and who pays it (the user, or
/// the building's manager by configuration).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SiteUse {
    pub site: String,
    pub operator: Party,
    pub payer: Party,
    pub fee_cents: i64,
}

/// A kiosk order: the store pays the provider on the user's behalf and the
/// user pays the store the content, the medium, the agency fee and any
/// shipping.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Kiosk {
    pub store: Party,
    pub medium: String,
    pub medium_cents: i64,
    pub agency_cents: i64,
    pub shipping_cents: i64,
}

/// An event that moves money.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Flow {
    /// An edge marked a bought copy (download, or through a home server):
    /// the user owes the provider the price; the provider owes the edge's
    /// operator its usage fee.
    Marked(Sale),
    /// An edge marked a copy for a rental: only the edge's fee now; the
    /// rental fee follows the viewing.
    RentalMarked(Sale),
    /// A home server delivered a copy and deleted it.
    HomeDelivered { delivery: i64, home: SiteUse },
    /// A rental ended: the fee by the tariff for the viewing, and the home.
    RentalEnded {
        sale: Sale,
        fee_cents: i64,
        viewing_ms: i64,
        home: SiteUse,
    },
    /// A kiosk wrote the disc image.
    DiscWritten { sale: Sale, kiosk: Kiosk },
    /// A replacement made free after it was billed: an earlier delivery
    /// of the same purchase had been served and keeps the sale, so the
    /// price goes back (the edge's fee for the copy stays: it made one).
    Waived(Sale),
    /// A provider's contract with an edge operator (DESIGN.md "001" step
    /// 1): the periodic fee of period `period` (0: the one that starts at
    /// signing), owed in advance.
    ContractPeriod {
        provider: Party,
        edge: String,
        edge_operator: Party,
        fee_cents: i64,
        period: u64,
    },
    /// A party (a user, a store, a building manager…) paid through a
    /// payment provider.
    Payment {
        payer: Party,
        clearing: Party,
        amount_cents: i64,
        reference: String,
    },
}

impl Flow {
    /// The flow's postings under `event`.
    pub fn transaction(&self, event: &str, delivery: Option<i64>) -> Transaction {
        let mut t = Transaction::new(event, delivery);
        match self {
            Flow::Marked(s) => {
                t.transfer(
                    &s.user,
                    &s.provider,
                    s.price_cents,
                    format!("content fee: {}", s.title),
                );
                edge_fee(&mut t, s);
            }
            Flow::RentalMarked(s) => {
                edge_fee(&mut t, s);
            }
            Flow::Waived(s) => {
                t.transfer(
                    &s.provider,
                    &s.user,
                    s.price_cents,
                    format!(
                        "refund: {} (an earlier copy of this purchase was delivered and paid)",
                        s.title
                    ),
                );
            }
            Flow::HomeDelivered { delivery, home } => {
                home_fee(&mut t, home, &format!("delivery {delivery}"));
            }
            Flow::RentalEnded {
                sale,
                fee_cents,
                viewing_ms,
                home,
            } => {
                let minutes = viewing_ms / 60_000;
                t.transfer(
                    &sale.user,
                    &sale.provider,
                    *fee_cents,
                    format!("rental: {} ({minutes} min viewed)", sale.title),
                );
                home_fee(&mut t, home, &format!("rental of {}", sale.title));
            }
            Flow::DiscWritten { sale, kiosk } => {
                t.transfer(
                    &kiosk.store,
                    &sale.provider,
                    sale.price_cents,
                    format!(
                        "content fee paid for {} on {}: {}",
                        sale.user.name, kiosk.medium, sale.title
                    ),
                );
                edge_fee(&mut t, sale);
                let owed = sale.price_cents + kiosk.medium_cents + kiosk.agency_cents;
                t.transfer(
                    &sale.user,
                    &kiosk.store,
                    owed,
                    format!(
                        "{} on {}: content {}, medium {}, agency {}",
                        sale.title,
                        kiosk.medium,
                        money(sale.price_cents),
                        money(kiosk.medium_cents),
                        money(kiosk.agency_cents)
                    ),
                );
                t.transfer(
                    &sale.user,
                    &kiosk.store,
                    kiosk.shipping_cents,
                    format!("shipping of {}", sale.title),
                );
            }
            Flow::ContractPeriod {
                provider,
                edge,
                edge_operator,
                fee_cents,
                period,
            } => {
                t.transfer(
                    provider,
                    edge_operator,
                    *fee_cents,
                    format!("edge contract: {edge}, period {}", period + 1),
                );
            }
            Flow::Payment {
                payer,
                clearing,
                amount_cents,
                reference,
            } => {
                t.transfer(
                    clearing,
                    payer,
                    *amount_cents,
                    format!("payment {reference}"),
                );
            }
        }
        t
    }
}

fn edge_fee(t: &mut Transaction, s: &Sale) {
    t.transfer(
        &s.provider,
        &s.edge_operator,
        s.edge_fee_cents,
        format!("edge usage: {} via {}", s.title, s.edge),
    );
}

fn home_fee(t: &mut Transaction, h: &SiteUse, what: &str) {
    t.transfer(
        &h.payer,
        &h.operator,
        h.fee_cents,
        format!("home server usage: {what} at {}", h.site),
    );
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{balances, PartyKind};
    use proptest::prelude::*;

    fn party() -> impl Strategy<Value = Party> {
        (prop::sample::select(PartyKind::ALL.to_vec()), "[a-c]{1,2}")
            .prop_map(|(k, n)| Party::new(k, &n))
    }

    fn sale() -> impl Strategy<Value = Sale> {
        (party(), party(), 0i64..100_000, party(), 0i64..10_000).prop_map(
            |(user, provider, price_cents, edge_operator, edge_fee_cents)| Sale {
                user,
                provider,
                title: "t".into(),
                price_cents,
                edge: "e".into(),
                edge_operator,
                edge_fee_cents,
            },
        )
    }

    fn site() -> impl Strategy<Value = SiteUse> {
        (party(), party(), 0i64..10_000).prop_map(|(operator, payer, fee_cents)| SiteUse {
            site: "h".into(),
            operator,
            payer,
            fee_cents,
        })
    }

    fn flow() -> impl Strategy<Value = Flow> {
        prop_oneof![
            sale().prop_map(Flow::Marked),
            sale().prop_map(Flow::RentalMarked),
            sale().prop_map(Flow::Waived),
            (any::<i64>(), site())
                .prop_map(|(delivery, home)| Flow::HomeDelivered { delivery, home }),
            (sale(), 0i64..100_000, 0i64..1_000_000_000, site()).prop_map(
                |(sale, fee_cents, viewing_ms, home)| Flow::RentalEnded {
                    sale,
                    fee_cents,
                    viewing_ms,
                    home
                }
            ),
            (sale(), party(), 0i64..5000, 0i64..5000, 0i64..5000).prop_map(
                |(sale, store, m, a, s)| Flow::DiscWritten {
                    sale,
                    kiosk: Kiosk {
                        store,
                        medium: "cd-r".into(),
                        medium_cents: m,
                        agency_cents: a,
                        shipping_cents: s
                    }
                }
            ),
            (party(), party(), -100_000i64..100_000).prop_map(|(payer, clearing, amount_cents)| {
                Flow::Payment {
                    payer,
                    clearing,
                    amount_cents,
                    reference: "r".into(),
                }
            }),
            (party(), party(), 0i64..100_000, 0u64..50).prop_map(
                |(provider, edge_operator, fee_cents, period)| Flow::ContractPeriod {
                    provider,
                    edge: "e".into(),
                    edge_operator,
                    fee_cents,
                    period,
                }
            ),
        ]
    }

    proptest! {
        #[test]
        fn every_flow_balances(f in flow(), event in "[a-z0-9/-]{1,20}") {
            let t = f.transaction(&event, None);
            prop_assert_eq!(t.check(), Ok(()));
        }

        #[test]
        fn the_books_balance_and_a_repeated_event_counts_once(
            flows in prop::collection::vec((flow(), 0usize..8), 0..40),
        ) {
            let txs: Vec<Transaction> = flows
                .iter()
                .map(|(f, event)| f.transaction(&format!("event-{event}"), None))
                .collect();
            let once: Vec<&Transaction> = {
                let mut seen = std::collections::HashSet::new();
                txs.iter().filter(|t| seen.insert(t.event.clone())).collect()
            };
            let all = balances(&txs);
            prop_assert_eq!(all.values().sum::<i64>(), 0);
            prop_assert_eq!(&all, &balances(once.iter().copied()));
            // Delivering every report twice changes nothing.
            let twice: Vec<&Transaction> = txs.iter().chain(txs.iter()).collect();
            prop_assert_eq!(&all, &balances(twice.iter().copied()));
        }
    }

    #[test]
    fn a_waived_replacement_gives_the_price_back_and_keeps_the_edges_fee() {
        let sale = Sale {
            user: Party::user("bob"),
            provider: Party::provider("acme"),
            title: "Song".into(),
            price_cents: 500,
            edge: "e1".into(),
            edge_operator: Party::operator("fastnet"),
            edge_fee_cents: 20,
        };
        let billed = Flow::Marked(sale.clone()).transaction("delivery-2/marked", Some(2));
        let waived = Flow::Waived(sale).transaction("delivery-2/waived", Some(2));
        assert_eq!(waived.check(), Ok(()));
        let both = crate::balances([&billed, &waived]);
        // Bob owes nothing for the replacement; the edge keeps its fee.
        assert_eq!(both.get(&Party::user("bob")).copied().unwrap_or(0), 0);
        assert_eq!(both[&Party::operator("fastnet")], -20);
        assert_eq!(both[&Party::provider("acme")], 20);
    }

    #[test]
    fn a_kiosk_order_bills_the_store_and_the_user_pays_the_store() {
        let sale = Sale {
            user: Party::user("bob"),
            provider: Party::provider("acme"),
            title: "Song".into(),
            price_cents: 500,
            edge: "e1".into(),
            edge_operator: Party::operator("fastnet"),
            edge_fee_cents: 20,
        };
        let t = Flow::DiscWritten {
            sale,
            kiosk: Kiosk {
                store: Party::store("corner"),
                medium: "cd-r".into(),
                medium_cents: 100,
                agency_cents: 50,
                shipping_cents: 0,
            },
        }
        .transaction("delivery-1/disc-written", Some(1));
        assert_eq!(t.check(), Ok(()));
        assert_eq!(t.effect_on(&Party::user("bob")), 650);
        assert_eq!(t.effect_on(&Party::store("corner")), 500 - 650);
        assert_eq!(t.effect_on(&Party::provider("acme")), -500 + 20);
        assert_eq!(t.effect_on(&Party::operator("fastnet")), -20);
    }

    #[test]
    fn a_bill_names_each_payee() {
        let sale = Sale {
            user: Party::user("bob"),
            provider: Party::provider("acme"),
            title: "Film".into(),
            price_cents: 500,
            edge: "e1".into(),
            edge_operator: Party::operator("fastnet"),
            edge_fee_cents: 20,
        };
        let home = |payer: Party| SiteUse {
            site: "den".into(),
            operator: Party::operator("maple-net"),
            payer,
            fee_cents: 30,
        };
        let rental = Flow::RentalEnded {
            sale: sale.clone(),
            fee_cents: 120,
            viewing_ms: 3_600_000,
            home: home(Party::user("bob")),
        }
        .transaction("delivery-1/rental-ended", Some(1));
        let lines: Vec<(String, i64)> = rental
            .owed_by(&Party::user("bob"))
            .into_iter()
            .map(|o| (o.payee.to_string(), o.amount_cents))
            .collect();
        let want = [
            ("provider:acme".to_owned(), 120),
            ("operator:maple-net".to_owned(), 30),
        ];
        assert_eq!(lines, want);
        // A building manager pays the home: the renter's bill names only
        // the provider; the manager's names the home's operator.
        let managed = Flow::RentalEnded {
            sale: sale.clone(),
            fee_cents: 120,
            viewing_ms: 3_600_000,
            home: home("manager:maple-court".parse().unwrap()),
        }
        .transaction("delivery-1/rental-ended", Some(1));
        assert_eq!(managed.owed_by(&Party::user("bob")).len(), 1);
        let manager = managed.owed_by(&"manager:maple-court".parse().unwrap());
        assert_eq!(
            (manager[0].payee.to_string(), manager[0].amount_cents),
            ("operator:maple-net".into(), 30)
        );
        // A refund is owed back: negative, from the provider.
        let waived = Flow::Waived(sale).transaction("delivery-1/waived", Some(1));
        let back = waived.owed_by(&Party::user("bob"));
        assert_eq!(
            (back[0].payee.to_string(), back[0].amount_cents),
            ("provider:acme".into(), -500)
        );
        // The edge's fee is not the user's to pay.
        assert!(rental
            .owed_by(&Party::user("bob"))
            .iter()
            .all(|o| o.payee != Party::operator("fastnet")));
    }
}
