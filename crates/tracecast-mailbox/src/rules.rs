//! Who may post what to which box. A message's sender is who the mailbox
//! authenticated, never what the message says; the box a message goes to
//! says what it is for, and only the parties whose part that is may post
//! there. The rule is one function over three facts (the sender, the
//! box's kind, the media type), so it is tested as a table.
//!
//! | box | may post |
//! | --- | --- |
//! | `role:*` (a server's work queue: delivery reports) | edges their delivery reports; homes and kiosks their site reports; nobody else |
//! | `edge:*`, `home:*`, `kiosk:*`, `partner:*` (servers' order boxes) | the origin only |
//! | `user:*`, `provider:*`, `gateway:*` and boxes of no kind | anyone authenticated; the system's own types (`application/vnd.tracecast.*`) only from the origin |

use std::fmt;

use crate::BoxName;

/// The system's own message types: what servers act on (bills, orders,
/// reports). Nobody but the party the type belongs to may post one.
const SYSTEM_TYPES: &str = "application/vnd.tracecast.";

/// A delivery report from an edge.
pub const DELIVERY_REPORT: &str = "application/vnd.tracecast.delivery-report+json";
/// An edge's word that a replaced delivery's copy was revoked.
pub const REVOCATION_REPORT: &str = "application/vnd.tracecast.revocation-report+json";
/// A home server's or kiosk's report.
pub const SITE_REPORT: &str = "application/vnd.tracecast.site-report+json";

/// Who posted a message, as the mailbox authenticated them.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Sender {
    /// The operator's administrator token.
    Admin,
    /// The origin, posting from its own process (bills, orders to edges,
    /// members' notices); no token reaches it.
    Origin,
    /// The owner of a box, by its token: `user:alice`, `edge:tokyo`.
    Box(BoxName),
}

impl Sender {
    /// How a sender is stored beside its message and shown to the
    /// recipient (`Tracecast-Sender`). `admin` and `origin` are not box
    /// names of any kind (box names of accounts carry their kind).
    pub fn as_str(&self) -> &str {
        match self {
            Sender::Admin => "admin",
            Sender::Origin => "origin",
            Sender::Box(b) => b.as_str(),
        }
    }

    /// Reads a stored sender back.
    pub fn parse(s: &str) -> Option<Self> {
        match s {
            "admin" => Some(Sender::Admin),
            "origin" => Some(Sender::Origin),
            other => other.parse().ok().map(Sender::Box),
        }
    }

    /// The kind of the sender's box, if it posted with a box's token.
    pub fn kind(&self) -> Option<BoxKind> {
        match self {
            Sender::Box(b) => Some(BoxKind::of(b)),
            _ => None,
        }
    }
}

impl fmt::Display for Sender {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// What a box is for, from the part of its name before `:`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum BoxKind {
    /// A server's work queue (`role:origin-reports`).
    Role,
    User,
    Provider,
    Edge,
    Home,
    Kiosk,
    Partner,
    Gateway,
    /// No kind, or one the system does not know: a box for people and
    /// programs the operator set up.
    Other,
}

impl BoxKind {
    pub fn of(name: &BoxName) -> Self {
        match name.as_str().split_once(':').map(|(k, _)| k) {
            Some("role") => BoxKind::Role,
            Some("user") => BoxKind::User,
            Some("provider") => BoxKind::Provider,
            Some("edge") => BoxKind::Edge,
            Some("home") => BoxKind::Home,
            Some("kiosk") => BoxKind::Kiosk,
            Some("partner") => BoxKind::Partner,
            Some("gateway") => BoxKind::Gateway,
            _ => BoxKind::Other,
        }
    }
}

/// Why a post was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum PostRefusal {
    #[error("{to} takes {what} only; {sender} may not post there")]
    NotYourBox {
        sender: String,
        to: String,
        what: &'static str,
    },
    #[error("{media_type} is a message of the system's own that only {from} sends; {sender} may not post it")]
    SystemType {
        sender: String,
        media_type: String,
        from: &'static str,
    },
}

/// The media type without parameters, in lower case.
fn essence(media_type: &str) -> String {
    media_type
        .split(';')
        .next()
        .unwrap_or("")
        .trim()
        .to_ascii_lowercase()
}

/// Whether `sender` may post a message of `media_type` to box `to`.
pub fn may_post(sender: &Sender, to: &BoxName, media_type: &str) -> Result<(), PostRefusal> {
    let media = essence(media_type);
    let from = sender.kind();
    let not_yours = |what| {
        Err(PostRefusal::NotYourBox {
            sender: sender.to_string(),
            to: to.to_string(),
            what,
        })
    };
    match BoxKind::of(to) {
        BoxKind::Role => match (from, media.as_str()) {
            (Some(BoxKind::Edge), DELIVERY_REPORT | REVOCATION_REPORT) => Ok(()),
            (Some(BoxKind::Home | BoxKind::Kiosk), SITE_REPORT) => Ok(()),
            _ => not_yours("reports from edges, homes and kiosks"),
        },
        BoxKind::Edge | BoxKind::Home | BoxKind::Kiosk | BoxKind::Partner => match sender {
            Sender::Origin => Ok(()),
            _ => not_yours("orders from the origin"),
        },
        BoxKind::User | BoxKind::Provider | BoxKind::Gateway | BoxKind::Other => {
            if media.starts_with(SYSTEM_TYPES) && *sender != Sender::Origin {
                return Err(PostRefusal::SystemType {
                    sender: sender.to_string(),
                    media_type: media,
                    from: "the origin",
                });
            }
            Ok(())
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn b(name: &str) -> BoxName {
        name.parse().unwrap()
    }

    fn from(name: &str) -> Sender {
        Sender::parse(name).unwrap()
    }

    #[test]
    fn who_may_post_what_where() {
        const BILL: &str = "application/vnd.tracecast.bill+json";
        const ORDER: &str = "application/vnd.tracecast.pre-position+json";
        let cases: &[(&str, &str, &str, bool)] = &[
            // Reports: only the party whose report it is.
            ("edge:tokyo", "role:origin-reports", DELIVERY_REPORT, true),
            ("edge:tokyo", "role:origin-reports", REVOCATION_REPORT, true),
            ("edge:tokyo", "role:origin-reports", SITE_REPORT, false),
            ("home:maple", "role:origin-reports", SITE_REPORT, true),
            ("kiosk:corner", "role:origin-reports", SITE_REPORT, true),
            ("home:maple", "role:origin-reports", DELIVERY_REPORT, false),
            (
                "user:mallory",
                "role:origin-reports",
                "application/json",
                false,
            ),
            (
                "user:mallory",
                "role:origin-reports",
                DELIVERY_REPORT,
                false,
            ),
            ("gateway:phone", "role:origin-reports", SITE_REPORT, false),
            ("admin", "role:origin-reports", DELIVERY_REPORT, false),
            ("origin", "role:origin-reports", DELIVERY_REPORT, false),
            // Orders: only the origin.
            ("origin", "edge:tokyo", ORDER, true),
            ("user:mallory", "edge:tokyo", ORDER, false),
            ("edge:paris", "edge:tokyo", ORDER, false),
            ("admin", "edge:tokyo", ORDER, false),
            ("user:mallory", "home:maple", "text/plain", false),
            ("user:mallory", "kiosk:corner", "text/plain", false),
            ("user:mallory", "partner:roam", "text/plain", false),
            ("origin", "home:maple", "text/plain", true),
            // People's boxes: anyone, but the system's types only from
            // the origin.
            ("user:bob", "user:alice", "text/plain", true),
            ("user:bob", "user:alice", "message/rfc822", true),
            ("gateway:phone", "user:alice", "message/rfc822", true),
            ("admin", "user:alice", "text/plain", true),
            ("origin", "user:alice", BILL, true),
            ("user:bob", "user:alice", BILL, false),
            (
                "user:bob",
                "user:alice",
                "Application/Vnd.Tracecast.Bill+JSON; x=1",
                false,
            ),
            ("admin", "user:alice", BILL, false),
            ("edge:tokyo", "user:alice", BILL, false),
            ("user:bob", "provider:aurora", "text/plain", true),
            ("user:bob", "inbox", "text/plain", true),
            ("user:bob", "inbox", ORDER, false),
        ];
        for (sender, to, media, ok) in cases {
            assert_eq!(
                may_post(&from(sender), &b(to), media).is_ok(),
                *ok,
                "{sender} → {to} ({media})"
            );
        }
    }

    #[test]
    fn senders_read_back_as_stored() {
        for s in ["admin", "origin", "user:alice", "edge:tokyo", "inbox"] {
            assert_eq!(from(s).as_str(), s);
        }
        assert_eq!(Sender::parse("Not A Box"), None);
        assert_eq!(from("edge:tokyo").kind(), Some(BoxKind::Edge));
        assert_eq!(from("origin").kind(), None);
    }
}
