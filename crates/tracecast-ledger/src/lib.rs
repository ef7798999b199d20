//! The ledger's rules (DESIGN.md "001", steps 4-7): who owes whom for every
//! flow, as double-entry transactions that always sum to zero.
//!
//! An amount is in cents. A posting's amount is signed: positive debits the
//! account (it owes, or holds money), negative credits it (it is owed). A
//! transaction is a set of postings under one event id ("delivery-12/marked",
//! "payment-…"); the store writes an event once, so a report delivered twice
//! posts once. This crate does no I/O.

mod flows;
mod party;
mod tariff;

pub use flows::{Flow, Kiosk, Sale, SiteUse};
pub use party::{Party, PartyKind};
pub use tariff::{RentalTariff, TariffUnit, Viewing};

use serde::{Deserialize, Serialize};

/// Why a transaction or an input to one is refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum LedgerError {
    #[error("the transaction {event:?} does not balance: its postings sum to {sum} cents")]
    Unbalanced { event: String, sum: i64 },
    #[error("the transaction {0:?} has a posting of zero")]
    ZeroPosting(String),
    #[error("a transaction needs an event id")]
    NoEvent,
    #[error("{0:?} is not a ledger account: write kind:name with kind one of user, provider, operator, store, manager, clearing")]
    BadParty(String),
    #[error("{0}")]
    BadTariff(String),
    #[error("amount overflow")]
    Overflow,
}

/// One line of a transaction.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Posting {
    pub account: Party,
    /// Positive: debit (the account owes); negative: credit (it is owed).
    pub amount_cents: i64,
    pub memo: String,
}

/// Postings that belong together, written once under their event id.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Transaction {
    pub event: String,
    /// The delivery the fees are for, if any (payments have none).
    pub delivery: Option<i64>,
    pub postings: Vec<Posting>,
}

impl Transaction {
    pub fn new(event: impl Into<String>, delivery: Option<i64>) -> Self {
        Self {
            event: event.into(),
            delivery,
            postings: Vec::new(),
        }
    }

    /// `debtor` owes `creditor` `amount_cents`: a debit and a credit of the
    /// same amount. Nothing is written for a zero amount; a negative amount
    /// turns the direction around.
    pub fn transfer(
        &mut self,
        debtor: &Party,
        creditor: &Party,
        amount_cents: i64,
        memo: impl Into<String>,
    ) -> &mut Self {
        if amount_cents == 0 || debtor == creditor {
            return self;
        }
        let memo = memo.into();
        self.postings.push(Posting {
            account: debtor.clone(),
            amount_cents,
            memo: memo.clone(),
        });
        self.postings.push(Posting {
            account: creditor.clone(),
            amount_cents: -amount_cents,
            memo,
        });
        self
    }

    /// Whether the transaction may be written: an event id, no zero
    /// posting, and postings that sum to zero.
    pub fn check(&self) -> Result<(), LedgerError> {
        if self.event.trim().is_empty() {
            return Err(LedgerError::NoEvent);
        }
        if self.postings.iter().any(|p| p.amount_cents == 0) {
            return Err(LedgerError::ZeroPosting(self.event.clone()));
        }
        let sum = self
            .postings
            .iter()
            .try_fold(0i64, |s, p| s.checked_add(p.amount_cents))
            .ok_or(LedgerError::Overflow)?;
        if sum != 0 {
            return Err(LedgerError::Unbalanced {
                event: self.event.clone(),
                sum,
            });
        }
        Ok(())
    }

    /// What `account` owes to whom in this transaction, transfer by
    /// transfer: a positive amount is owed to the payee, a negative one
    /// paid back by it (a refund). Reads the postings in the pairs
    /// `transfer` writes, as the store keeps them.
    pub fn owed_by(&self, account: &Party) -> Vec<Owed> {
        self.postings
            .chunks_exact(2)
            .filter_map(|pair| {
                let (debtor, creditor) = (&pair[0], &pair[1]);
                if &debtor.account == account {
                    Some(Owed {
                        payee: creditor.account.clone(),
                        amount_cents: debtor.amount_cents,
                        memo: debtor.memo.clone(),
                    })
                } else if &creditor.account == account {
                    Some(Owed {
                        payee: debtor.account.clone(),
                        amount_cents: creditor.amount_cents,
                        memo: creditor.memo.clone(),
                    })
                } else {
                    None
                }
            })
            .collect()
    }

    /// What the transaction does to one account.
    pub fn effect_on(&self, account: &Party) -> i64 {
        self.postings
            .iter()
            .filter(|p| &p.account == account)
            .map(|p| p.amount_cents)
            .sum()
    }
}

/// One line of what an account owes: to whom, how much, for what.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Owed {
    pub payee: Party,
    pub amount_cents: i64,
    pub memo: String,
}

/// Balances of every account touched by `transactions`, each event counted
/// once however often it appears (as the store applies them).
pub fn balances<'a>(
    transactions: impl IntoIterator<Item = &'a Transaction>,
) -> std::collections::BTreeMap<Party, i64> {
    let mut seen = std::collections::HashSet::new();
    let mut out = std::collections::BTreeMap::new();
    for t in transactions {
        if !seen.insert(t.event.as_str()) {
            continue;
        }
        for p in &t.postings {
            *out.entry(p.account.clone()).or_insert(0) += p.amount_cents;
        }
    }
    out
}

/// Formats cents as an amount ("12.50").
pub fn money(cents: i64) -> String {
    let sign = if cents < 0 { "-" } else { "" };
    format!(
        "{sign}{}.{:02}",
        cents.unsigned_abs() / 100,
        cents.unsigned_abs() % 100
    )
}

/// Reads an amount ("12.5", "3", "0.99") as cents; at most two decimals.
pub fn parse_money(s: &str) -> Result<i64, String> {
    let bad = || format!("{s:?} is not an amount like 1.99");
    let s = s.trim();
    let (whole, frac) = s.split_once('.').unwrap_or((s, ""));
    if whole.is_empty() && frac.is_empty() || frac.len() > 2 {
        return Err(bad());
    }
    if !whole.chars().all(|c| c.is_ascii_digit()) || !frac.chars().all(|c| c.is_ascii_digit()) {
        return Err(bad());
    }
    let w: i64 = if whole.is_empty() {
        0
    } else {
        whole.parse().map_err(|_| bad())?
    };
    let f: i64 = format!("{frac:0<2}").parse().map_err(|_| bad())?;
    w.checked_mul(100)
        .and_then(|c| c.checked_add(f))
        .ok_or_else(bad)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_transfer_balances_and_a_tampered_one_does_not() {
        let bob = Party::user("bob");
        let acme = Party::provider("acme");
        let mut t = Transaction::new("delivery-1/marked", Some(1));
        t.transfer(&bob, &acme, 199, "content fee");
        assert_eq!(t.check(), Ok(()));
        assert_eq!(t.effect_on(&bob), 199);
        assert_eq!(t.effect_on(&acme), -199);
        t.postings[1].amount_cents = -198;
        assert!(matches!(
            t.check(),
            Err(LedgerError::Unbalanced { sum: 1, .. })
        ));
        t.postings[1].amount_cents = 0;
        assert!(matches!(t.check(), Err(LedgerError::ZeroPosting(_))));
        assert_eq!(
            Transaction::new(" ", None).check(),
            Err(LedgerError::NoEvent)
        );
    }

    #[test]
    fn money_reads_and_writes() {
        assert_eq!(parse_money("1.99"), Ok(199));
        assert_eq!(parse_money("3"), Ok(300));
        assert_eq!(parse_money(".25"), Ok(25));
        for bad in ["", ".", "1.999", "-1", "1e3", "abc", "99999999999999999999"] {
            assert!(parse_money(bad).is_err(), "{bad}");
        }
        assert_eq!(money(-250), "-2.50");
    }
}
