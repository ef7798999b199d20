//! A provider's contract with an edge operator (DESIGN.md "001" step 1):
//! the provider registers to use the operator's edge, at the edge's usage
//! fee per delivery and, if the operator asks one, a fee per period, owed
//! in advance from the day of signing. Only edges under contract with a
//! content's provider, or open to every provider, serve that content.

use serde::{Deserialize, Serialize};

/// What a contract costs, fixed when it is signed (a later change of the
/// edge's published terms does not touch contracts already signed).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct ContractTerms {
    /// Usage fee per delivery, in cents.
    pub fee_cents: i64,
    /// Fee per period, in cents (0: none).
    pub period_fee_cents: i64,
    /// Length of a period in days (at least 1 when there is a period fee).
    pub period_days: u32,
}

const DAY_MS: i64 = 86_400_000;

impl ContractTerms {
    /// Periods begun between signing and `until` (the contract's end, or
    /// now): each is owed when it begins, the first at signing. None
    /// without a period fee.
    pub fn periods_begun(&self, signed_at_ms: i64, until_ms: i64) -> u64 {
        if self.period_fee_cents <= 0 || self.period_days == 0 || until_ms < signed_at_ms {
            return 0;
        }
        let period = i64::from(self.period_days) * DAY_MS;
        ((until_ms - signed_at_ms) / period) as u64 + 1
    }
}

/// Which fee an edge charges a provider for a delivery: its contract's, or
/// the published one of an edge open to every provider; `None`: the edge
/// may not serve the provider's content.
pub fn usage_fee(contract: Option<i64>, open: bool, published_fee_cents: i64) -> Option<i64> {
    match (contract, open) {
        (Some(fee), _) => Some(fee),
        (None, true) => Some(published_fee_cents),
        (None, false) => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn periods_are_owed_as_they_begin() {
        let monthly = ContractTerms {
            fee_cents: 5,
            period_fee_cents: 1_000,
            period_days: 30,
        };
        let t0 = 1_700_000_000_000;
        let cases = [
            (t0 - 1, 0),
            (t0, 1),
            (t0 + 29 * DAY_MS, 1),
            (t0 + 30 * DAY_MS - 1, 1),
            (t0 + 30 * DAY_MS, 2),
            (t0 + 365 * DAY_MS, 13),
        ];
        for (until, want) in cases {
            assert_eq!(monthly.periods_begun(t0, until), want, "{}", until - t0);
        }
        let per_delivery_only = ContractTerms {
            period_fee_cents: 0,
            ..monthly
        };
        assert_eq!(per_delivery_only.periods_begun(t0, t0 + 400 * DAY_MS), 0);
        let no_length = ContractTerms {
            period_days: 0,
            ..monthly
        };
        assert_eq!(no_length.periods_begun(t0, t0 + 400 * DAY_MS), 0);
    }

    #[test]
    fn a_contract_sets_the_fee_and_only_open_edges_serve_without_one() {
        let cases = [
            (Some(3), false, 9, Some(3)),
            (Some(3), true, 9, Some(3)),
            (None, true, 9, Some(9)),
            (None, false, 9, None),
        ];
        for (contract, open, published, want) in cases {
            assert_eq!(usage_fee(contract, open, published), want);
        }
    }
}
