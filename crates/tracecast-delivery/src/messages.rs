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

/// Origin → edge: a delivery was replaced (its buyer was sent to another
/// edge); revoke its copy: refuse its ticket and links from now on, drop
/// the kept copy, and say whether any of its bytes had left. Only then
/// does money move: a copy that never left is refunded, one that did is
/// paid for (DESIGN.md: a refund never leaves a usable copy).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Revoke {
    pub delivery: i64,
    pub replaced_by: i64,
}

impl Revoke {
    pub const MEDIA_TYPE: &'static str = "application/vnd.tracecast.revoke+json";
}

/// Edge → origin: a replaced delivery's copy is revoked.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct RevocationReport {
    pub delivery: i64,
    pub edge: u16,
    /// Whether bytes of the copy had left the edge (a download, a push to
    /// a home or kiosk) before it was revoked.
    pub served: bool,
    /// The copy the edge had made, if any (its report may not have
    /// reached the origin: a served copy is billed from this).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub copy: Option<RevokedCopy>,
    /// Unix milliseconds.
    pub revoked_at: i64,
}

/// What a revoked delivery's copy was.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct RevokedCopy {
    pub bytes: u64,
    pub sha256: String,
    pub marked_at: i64,
}

impl RevocationReport {
    pub const MEDIA_TYPE: &'static str = "application/vnd.tracecast.revocation-report+json";
}

/// Money is the ledger's: amounts in cents, written "12.50".
pub use tracecast_ledger::{money, parse_money};

#[cfg(test)]
mod tests {
    use super::*;

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
