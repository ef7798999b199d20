//! Home servers and kiosks on the way to the user (DESIGN.md "001" steps
//! 5-7): how a delivery reaches its user, what a kiosk order asks for, the
//! reports homes and kiosks send the origin, and viewing sessions.

use serde::{Deserialize, Serialize};

/// How a delivery reaches its user.
#[derive(
    Debug, Clone, Copy, Default, PartialEq, Eq, Hash, Serialize, Deserialize, utoipa::ToSchema,
)]
#[serde(rename_all = "lowercase")]
pub enum Mode {
    /// Downloaded from the edge.
    #[default]
    Download,
    /// Sent to a home server, downloaded from it on the LAN, then deleted.
    Home,
    /// Sent to a home server and viewed from it; deleted when viewing ends.
    Rental,
    /// Sent to a store's kiosk and written to a disc.
    Kiosk,
}

impl Mode {
    pub fn as_str(self) -> &'static str {
        match self {
            Mode::Download => "download",
            Mode::Home => "home",
            Mode::Rental => "rental",
            Mode::Kiosk => "kiosk",
        }
    }

    pub fn parse(s: &str) -> Option<Self> {
        [Mode::Download, Mode::Home, Mode::Rental, Mode::Kiosk]
            .into_iter()
            .find(|m| m.as_str() == s)
    }

    /// Whether a home server or kiosk is on the way.
    pub fn via_site(self) -> bool {
        self != Mode::Download
    }
}

/// Read from a store column.
impl TryFrom<String> for Mode {
    type Error = String;
    fn try_from(s: String) -> Result<Self, String> {
        Mode::parse(&s).ok_or_else(|| format!("unknown delivery mode {s:?}"))
    }
}

/// How the user gets a kiosk's disc.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "lowercase", tag = "by")]
pub enum Fulfilment {
    /// The user collects it at the store.
    Pickup,
    /// The store posts it.
    Ship { address: String },
}

impl TryFrom<String> for Fulfilment {
    type Error = serde_json::Error;
    /// As a store keeps it: a JSON object.
    fn try_from(s: String) -> Result<Self, serde_json::Error> {
        serde_json::from_str(&s)
    }
}

/// Where a kiosk's order stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "lowercase")]
pub enum DiscStatus {
    /// The image is written and waits for the burner.
    Written,
    /// The order could not be written (it does not fit the medium).
    Refused,
    /// The disc is made; the image is deleted.
    Burned,
}

impl DiscStatus {
    pub fn as_str(self) -> &'static str {
        match self {
            DiscStatus::Written => "written",
            DiscStatus::Refused => "refused",
            DiscStatus::Burned => "burned",
        }
    }

    pub fn parse(s: &str) -> Option<Self> {
        [DiscStatus::Written, DiscStatus::Refused, DiscStatus::Burned]
            .into_iter()
            .find(|d| d.as_str() == s)
    }
}

impl TryFrom<String> for DiscStatus {
    type Error = String;
    fn try_from(s: String) -> Result<Self, String> {
        DiscStatus::parse(&s).ok_or_else(|| format!("unknown disc order status {s:?}"))
    }
}

/// What a kiosk is asked to write.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct DiscOrder {
    /// `cd-r`, `dvd-r`, `bd-r`, `usb-16g`…
    pub medium: String,
    pub fulfilment: Fulfilment,
}

/// What a delivery's order holds beyond its columns, kept with the
/// delivery: a rental's tariff and end, a kiosk order's medium, fulfilment
/// and store prices, the partner that paid, the delivery it replaces.
/// Stored as a JSON object; absent fields are not written.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct OrderInfo {
    /// Rental: what viewing costs.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schema(value_type = Option<String>)]
    pub tariff: Option<tracecast_ledger::RentalTariff>,
    /// Rental: when it ends (Unix seconds).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub until: Option<i64>,
    /// Kiosk: the medium written (`cd-r`, `dvd-r`…).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub medium: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub fulfilment: Option<Fulfilment>,
    /// Kiosk: what the store charges for the medium and for shipping.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub medium_cents: Option<i64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub shipping_cents: Option<i64>,
    /// The partner that bought the copy for its user (a ledger party,
    /// `operator:NAME`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub payer: Option<String>,
    /// The delivery this one was opened to replace.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub replaces: Option<i64>,
    /// Delivered through the CDN (sold when its token was issued).
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub cdn: bool,
}

/// Read from a store column (a JSON object).
impl TryFrom<String> for OrderInfo {
    type Error = serde_json::Error;
    fn try_from(s: String) -> Result<Self, serde_json::Error> {
        serde_json::from_str(&s)
    }
}

/// What happened at a home or kiosk.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "kebab-case")]
pub enum SiteEvent {
    /// The user downloaded the copy from the home; it was deleted.
    Delivered,
    /// Nobody fetched the copy in time; it was deleted.
    Expired,
    /// A rental ended (the user stopped, or its period ran out); deleted.
    RentalEnded,
    /// The kiosk wrote the disc image and erased the copy.
    DiscWritten,
    /// The kiosk could not write the order (e.g. it does not fit).
    Refused,
    /// The shop burned the disc.
    DiscBurned,
    /// The shop posted the disc (`detail`: the carrier's tracking, if
    /// any).
    DiscShipped,
}

impl SiteEvent {
    pub fn as_str(self) -> &'static str {
        match self {
            SiteEvent::Delivered => "delivered",
            SiteEvent::Expired => "expired",
            SiteEvent::RentalEnded => "rental-ended",
            SiteEvent::DiscWritten => "disc-written",
            SiteEvent::Refused => "refused",
            SiteEvent::DiscBurned => "disc-burned",
            SiteEvent::DiscShipped => "disc-shipped",
        }
    }

    pub fn parse(s: &str) -> Option<Self> {
        [
            SiteEvent::Delivered,
            SiteEvent::Expired,
            SiteEvent::RentalEnded,
            SiteEvent::DiscWritten,
            SiteEvent::Refused,
            SiteEvent::DiscBurned,
            SiteEvent::DiscShipped,
        ]
        .into_iter()
        .find(|e| e.as_str() == s)
    }
}

impl TryFrom<String> for SiteEvent {
    type Error = String;
    fn try_from(s: String) -> Result<Self, String> {
        SiteEvent::parse(&s).ok_or_else(|| format!("unknown site event {s:?}"))
    }
}

/// Home or kiosk → origin, through the mailbox: the copy is gone, and why.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SiteReport {
    pub delivery: i64,
    pub site: u16,
    pub event: SiteEvent,
    /// Rentals: viewing sessions, [start, end] in Unix ms.
    #[serde(default)]
    pub viewing: Vec<(i64, i64)>,
    /// Rentals: the playback time handed out (ranges of the file and
    /// segments, `crate::rental`); the fee never covers less.
    #[serde(default)]
    pub served_ms: i64,
    /// Unix ms when the copy was deleted or the disc written.
    pub at: i64,
    /// Kiosk: the image's size and SHA-256; refusals: why.
    #[serde(default)]
    pub detail: String,
}

impl SiteReport {
    pub const MEDIA_TYPE: &'static str = "application/vnd.tracecast.site-report+json";

    /// The event id the origin applies once.
    pub fn event_id(&self) -> String {
        format!("delivery-{}/{}", self.delivery, self.event.as_str())
    }
}

/// Viewing sessions from the times a rental was read: requests closer
/// than `gap_ms` belong to one session, which lasts until `tail_ms` after
/// its last request (the player keeps playing what it fetched).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Sessions {
    pub spans: Vec<(i64, i64)>,
}

impl Sessions {
    /// Records a read at `now`.
    pub fn touch(&mut self, now: i64, gap_ms: i64, tail_ms: i64) {
        match self.spans.last_mut() {
            Some((_, end)) if now <= *end + gap_ms => *end = (*end).max(now + tail_ms),
            _ => self.spans.push((now, now + tail_ms)),
        }
    }

    /// Cuts the sessions at `now` (the rental ended now): nothing is
    /// counted after the end.
    pub fn close(&mut self, now: i64) {
        for s in &mut self.spans {
            s.1 = s.1.min(now).max(s.0);
        }
    }

    pub fn total_ms(&self) -> i64 {
        self.spans.iter().map(|(a, b)| b - a).sum()
    }

    /// As a store keeps them: a JSON list of `[start, end]` pairs.
    pub fn to_column(&self) -> String {
        serde_json::to_string(&self.spans).expect("pairs of integers serialise")
    }
}

impl TryFrom<String> for Sessions {
    type Error = serde_json::Error;
    fn try_from(s: String) -> Result<Self, serde_json::Error> {
        Ok(Sessions {
            spans: serde_json::from_str(&s)?,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn order_info_reads_what_earlier_versions_stored() {
        // Rows written before the type existed, as the store holds them.
        for (stored, want) in [
            ("{}", OrderInfo::default()),
            (
                r#"{"tariff":"0.50/hour","until":1700000000}"#,
                OrderInfo {
                    tariff: Some("0.50/hour".parse().unwrap()),
                    until: Some(1_700_000_000),
                    ..OrderInfo::default()
                },
            ),
            (
                r#"{"fulfilment":{"by":"ship","address":"1 Main St"},"medium":"cd-r","medium_cents":200,"shipping_cents":450,"replaces":7}"#,
                OrderInfo {
                    medium: Some("cd-r".into()),
                    fulfilment: Some(Fulfilment::Ship {
                        address: "1 Main St".into(),
                    }),
                    medium_cents: Some(200),
                    shipping_cents: Some(450),
                    replaces: Some(7),
                    ..OrderInfo::default()
                },
            ),
            (
                r#"{"payer":"operator:roaming"}"#,
                OrderInfo {
                    payer: Some("operator:roaming".into()),
                    ..OrderInfo::default()
                },
            ),
        ] {
            let read: OrderInfo = serde_json::from_str(stored).unwrap();
            assert_eq!(read, want, "{stored}");
            let again: OrderInfo =
                serde_json::from_str(&serde_json::to_string(&read).unwrap()).unwrap();
            assert_eq!(again, read);
        }
        assert_eq!(serde_json::to_string(&OrderInfo::default()).unwrap(), "{}");
    }

    #[test]
    fn reads_close_together_make_one_session() {
        let mut s = Sessions::default();
        s.touch(0, 30_000, 10_000);
        s.touch(5_000, 30_000, 10_000);
        s.touch(100_000, 30_000, 10_000);
        assert_eq!(s.spans, vec![(0, 15_000), (100_000, 110_000)]);
        s.close(104_000);
        assert_eq!(s.total_ms(), 15_000 + 4_000);
    }

    #[test]
    fn reports_and_orders_read_back() {
        let r = SiteReport {
            delivery: 4,
            site: 2,
            event: SiteEvent::RentalEnded,
            viewing: vec![(1, 2)],
            served_ms: 5,
            at: 3,
            detail: String::new(),
        };
        let j = serde_json::to_string(&r).unwrap();
        assert!(j.contains("\"rental-ended\""));
        assert_eq!(serde_json::from_str::<SiteReport>(&j).unwrap(), r);
        assert_eq!(r.event_id(), "delivery-4/rental-ended");
        let o: DiscOrder = serde_json::from_str(
            r#"{"medium":"cd-r","fulfilment":{"by":"ship","address":"1 Main St"}}"#,
        )
        .unwrap();
        assert_eq!(
            o.fulfilment,
            Fulfilment::Ship {
                address: "1 Main St".into()
            }
        );
    }

    #[test]
    fn stored_words_read_back_and_unknown_ones_are_errors() {
        for e in [
            SiteEvent::Delivered,
            SiteEvent::Expired,
            SiteEvent::RentalEnded,
            SiteEvent::DiscWritten,
            SiteEvent::Refused,
        ] {
            assert_eq!(SiteEvent::try_from(e.as_str().to_owned()), Ok(e));
            // The column and the JSON name it the same way.
            assert_eq!(
                serde_json::to_string(&e).unwrap(),
                format!("\"{}\"", e.as_str())
            );
        }
        for d in [DiscStatus::Written, DiscStatus::Refused, DiscStatus::Burned] {
            assert_eq!(DiscStatus::try_from(d.as_str().to_owned()), Ok(d));
            assert_eq!(
                serde_json::to_string(&d).unwrap(),
                format!("\"{}\"", d.as_str())
            );
        }
        for bad in ["", "Delivered", "burnt", "rental_ended"] {
            assert!(SiteEvent::try_from(bad.to_owned()).is_err(), "{bad}");
            assert!(DiscStatus::try_from(bad.to_owned()).is_err(), "{bad}");
        }
        let s = Sessions {
            spans: vec![(1, 5), (9, 12)],
        };
        assert_eq!(s.to_column(), "[[1,5],[9,12]]");
        assert_eq!(Sessions::try_from(s.to_column()).unwrap(), s);
        assert_eq!(
            Sessions::try_from("[]".to_owned()).unwrap(),
            Sessions::default()
        );
        for bad in ["", "{}", "[[1]]", "[[\"a\",2]]"] {
            assert!(Sessions::try_from(bad.to_owned()).is_err(), "{bad}");
        }
        assert_eq!(
            Fulfilment::try_from(r#"{"by":"pickup"}"#.to_owned()).unwrap(),
            Fulfilment::Pickup
        );
        assert!(Fulfilment::try_from(r#"{"by":"drone"}"#.to_owned()).is_err());
    }

    proptest! {
        #[test]
        fn sessions_never_overlap_and_grow_with_reads(
            mut times in prop::collection::vec(0i64..10_000_000, 1..50),
        ) {
            times.sort_unstable();
            let mut s = Sessions::default();
            let mut before = 0;
            for t in &times {
                s.touch(*t, 30_000, 6_000);
                prop_assert!(s.total_ms() >= before);
                before = s.total_ms();
            }
            for w in s.spans.windows(2) {
                prop_assert!(w[0].1 < w[1].0);
            }
        }
    }
}
