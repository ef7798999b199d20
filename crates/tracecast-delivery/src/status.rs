//! A delivery's status, as the origin keeps it: opened at designation,
//! marked when its edge reports the copy, then settled one way. The store
//! writes these names; a name it does not know is a corrupt row, never a
//! default.

use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Serialize};

use crate::site::SiteEvent;

/// Where a delivery stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "kebab-case")]
pub enum DeliveryStatus {
    /// The ticket is issued; no copy reported yet.
    Designated,
    /// The edge reported the marked copy (a download is billed here).
    Marked,
    /// A home's copy was downloaded on the LAN, then deleted.
    Delivered,
    /// A home's copy was not fetched in time, and was deleted.
    Expired,
    /// A rental's viewing ended; its fee is billed.
    RentalEnded,
    /// A kiosk wrote the disc.
    DiscWritten,
    /// A kiosk refused the order.
    Refused,
    /// The shop burned the disc (its image is deleted).
    DiscBurned,
    /// The shop posted the disc.
    DiscShipped,
    /// Replaced before its edge marked it: nothing billed.
    Superseded,
    /// Replaced after it was billed, with no byte served: paid back.
    Refunded,
}

impl DeliveryStatus {
    pub const ALL: [DeliveryStatus; 11] = [
        DeliveryStatus::Designated,
        DeliveryStatus::Marked,
        DeliveryStatus::Delivered,
        DeliveryStatus::Expired,
        DeliveryStatus::RentalEnded,
        DeliveryStatus::DiscWritten,
        DeliveryStatus::Refused,
        DeliveryStatus::DiscBurned,
        DeliveryStatus::DiscShipped,
        DeliveryStatus::Superseded,
        DeliveryStatus::Refunded,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            DeliveryStatus::Designated => "designated",
            DeliveryStatus::Marked => "marked",
            DeliveryStatus::Delivered => "delivered",
            DeliveryStatus::Expired => "expired",
            DeliveryStatus::RentalEnded => "rental-ended",
            DeliveryStatus::DiscWritten => "disc-written",
            DeliveryStatus::Refused => "refused",
            DeliveryStatus::DiscBurned => "disc-burned",
            DeliveryStatus::DiscShipped => "disc-shipped",
            DeliveryStatus::Superseded => "superseded",
            DeliveryStatus::Refunded => "refunded",
        }
    }

    /// Not settled yet: it may still be replaced, licensed or reported.
    pub fn is_open(self) -> bool {
        matches!(self, DeliveryStatus::Designated | DeliveryStatus::Marked)
    }

    /// The status a home's or kiosk's report moves a delivery to.
    pub fn after(event: SiteEvent) -> Self {
        match event {
            SiteEvent::Delivered => DeliveryStatus::Delivered,
            SiteEvent::Expired => DeliveryStatus::Expired,
            SiteEvent::RentalEnded => DeliveryStatus::RentalEnded,
            SiteEvent::DiscWritten => DeliveryStatus::DiscWritten,
            SiteEvent::Refused => DeliveryStatus::Refused,
            SiteEvent::DiscBurned => DeliveryStatus::DiscBurned,
            SiteEvent::DiscShipped => DeliveryStatus::DiscShipped,
        }
    }
}

impl fmt::Display for DeliveryStatus {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for DeliveryStatus {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        DeliveryStatus::ALL
            .into_iter()
            .find(|d| d.as_str() == s)
            .ok_or_else(|| format!("unknown delivery status {s:?}"))
    }
}

/// Read from a store column.
impl TryFrom<String> for DeliveryStatus {
    type Error = String;
    fn try_from(s: String) -> Result<Self, String> {
        s.parse()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_read_back_and_match_serde() {
        for s in DeliveryStatus::ALL {
            assert_eq!(s.as_str().parse::<DeliveryStatus>(), Ok(s));
            assert_eq!(
                serde_json::to_string(&s).unwrap(),
                format!("\"{}\"", s.as_str())
            );
        }
        assert!("settled".parse::<DeliveryStatus>().is_err());
    }

    #[test]
    fn site_events_settle_with_their_own_names() {
        use SiteEvent::*;
        for e in [Delivered, Expired, RentalEnded, DiscWritten, Refused] {
            assert_eq!(DeliveryStatus::after(e).as_str(), e.as_str());
            assert!(!DeliveryStatus::after(e).is_open());
        }
    }
}
