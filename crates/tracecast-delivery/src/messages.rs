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
    /// What makes up the amount, one line per payee and fee (a rental:
    /// the provider's fee and the home operator's, each named): ledger
    /// parties (`provider:aurora`, `operator:maple-net`), negative when
    /// paid back.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub lines: Vec<BillLine>,
}

/// One fee on a bill and whom it is owed to.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct BillLine {
    pub payee: String,
    pub amount_cents: i64,
    pub memo: String,
}

impl Bill {
    pub const MEDIA_TYPE: &'static str = "application/vnd.tracecast.bill+json";
}

/// Roaming server → user: what converting a licence cost them (and, for
/// a package order, the content it bought for them at the issuer), each
/// payee and fee on its own line ("002").
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct RoamingBill {
    /// The converted licence.
    pub licence: String,
    /// Whose licence was converted, and the content.
    pub issuer: String,
    pub content: i64,
    pub from_system: String,
    pub to_system: String,
    /// Owed by the user in all, in cents.
    pub amount_cents: i64,
    pub currency: String,
    pub lines: Vec<BillLine>,
    pub issued_at: i64,
}

impl RoamingBill {
    pub const MEDIA_TYPE: &'static str = "application/vnd.tracecast.roaming-bill+json";
}

/// Origin → a settling party (a provider, an edge or home operator, a
/// store, a building manager): its statement for a period, every posting
/// on its ledger account since the last one. A positive closing balance
/// is owed (the statement is the bill: pay it with `POST /v1/payments`);
/// a negative one is owed to the party.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Statement {
    /// The ledger account (`operator:fastnet`).
    pub account: String,
    /// 1, 2, … per account: a gap means a statement was missed.
    pub number: i64,
    pub currency: String,
    /// Unix milliseconds: the first and last postings it covers.
    pub from: i64,
    pub through: i64,
    /// The balance before and after its postings (positive: owed).
    pub opening_cents: i64,
    pub closing_cents: i64,
    /// The postings, oldest first (at most [`Statement::MAX_LINES`]; the
    /// rest are counted in `more_lines` and listed by `GET /v1/invoice`).
    pub lines: Vec<StatementLine>,
    #[serde(default, skip_serializing_if = "is_zero")]
    pub more_lines: u64,
    pub issued_at: i64,
}

fn is_zero(n: &u64) -> bool {
    *n == 0
}

/// One posting on a statement.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct StatementLine {
    pub at: i64,
    pub event: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub delivery: Option<i64>,
    pub memo: String,
    /// Positive: owed by the party; negative: owed to it.
    pub amount_cents: i64,
}

impl Statement {
    pub const MEDIA_TYPE: &'static str = "application/vnd.tracecast.statement+json";
    /// Lines carried in one message: keeps a busy operator's statement
    /// well inside the mailbox's message size.
    pub const MAX_LINES: usize = 500;
}

/// Origin → buyer: a stage of their kiosk order (DESIGN.md "001" step 7):
/// the disc image written, or the order refused; the disc burned; posted.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct DiscProgress {
    pub delivery: i64,
    pub content: i64,
    pub title: String,
    /// The store's kiosk.
    pub kiosk: String,
    pub stage: crate::SiteEvent,
    /// Why it was refused, or the posted disc's tracking reference.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub detail: String,
    pub at: i64,
}

impl DiscProgress {
    pub const MEDIA_TYPE: &'static str = "application/vnd.tracecast.disc-progress+json";
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
