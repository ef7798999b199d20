//! Messages of the delivery flow. They travel through the mailbox, so a
//! process that dies between sending and applying loses none; each carries
//! the delivery id its receiver applies once.

use serde::{Deserialize, Serialize};

use crate::Tier;

/// Edge → origin: a marked copy was made for a buyer (step 4).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct DeliveryReport {
    pub delivery: i64,
    pub content: i64,
    pub tier: Tier,
    pub user: u32,
    pub edge: u16,
    /// The marked copy: size and SHA-256 (hex).
    pub bytes: u64,
    pub sha256: String,
    /// Unix milliseconds when the copy was ready.
    pub marked_at: i64,
}

impl DeliveryReport {
    pub const MEDIA_TYPE: &'static str = "application/vnd.tracecast.delivery-report+json";
}

/// Origin → user: what a delivery costs and to whom it is owed.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Bill {
    pub delivery: i64,
    pub content: i64,
    pub title: String,
    pub tier: Tier,
    /// Owed by the user to the provider, in cents.
    pub amount_cents: i64,
    pub currency: String,
    pub payee: String,
    pub edge: String,
    pub issued_at: i64,
}

impl Bill {
    pub const MEDIA_TYPE: &'static str = "application/vnd.tracecast.bill+json";
}

/// Origin → edge: fetch this rendition ahead of demand (step 1).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PrePosition {
    pub content: i64,
    pub tier: Tier,
}

impl PrePosition {
    pub const MEDIA_TYPE: &'static str = "application/vnd.tracecast.pre-position+json";
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
    fn money_reads_and_writes() {
        assert_eq!(parse_money("1.99"), Ok(199));
        assert_eq!(parse_money("3"), Ok(300));
        assert_eq!(parse_money("0.5"), Ok(50));
        assert_eq!(parse_money(".25"), Ok(25));
        for bad in ["", ".", "1.999", "-1", "1e3", "abc", "99999999999999999999"] {
            assert!(parse_money(bad).is_err(), "{bad}");
        }
        assert_eq!(money(199), "1.99");
        assert_eq!(money(5), "0.05");
        assert_eq!(money(-250), "-2.50");
    }

    #[test]
    fn reports_round_trip_as_json() {
        let r = DeliveryReport {
            delivery: 1,
            content: 2,
            tier: Tier::Lossless,
            user: 3,
            edge: 4,
            bytes: 6,
            sha256: "ab".into(),
            marked_at: 7,
        };
        let json = serde_json::to_string(&r).unwrap();
        assert!(json.contains("\"tier\":\"lossless\""));
        assert_eq!(serde_json::from_str::<DeliveryReport>(&json).unwrap(), r);
    }
}
