//! The JSON bodies of the mailbox's HTTP API (docs/openapi/mailbox.json),
//! shared by the server and the client so both read the same shapes.

use serde::{Deserialize, Serialize};

use crate::{BoxName, MessageId};

/// `GET /v1/whoami`: a box owner's token names its box; an
/// administrator's names none.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct WhoAmI {
    #[serde(rename = "box")]
    pub box_name: Option<BoxName>,
    pub admin: bool,
}

/// `POST /v1/boxes` (administrator).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CreateBox {
    pub name: String,
    /// Where new mail is announced (an http:// or https:// URL), signed
    /// with the secret the answer holds.
    #[serde(default)]
    pub webhook: Option<String>,
}

/// The answer to [`CreateBox`]: the box's owner token, shown once.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct CreatedBox {
    pub name: BoxName,
    pub token: String,
    pub webhook: Option<String>,
    pub webhook_secret: Option<String>,
}

/// `POST /v1/boxes/{name}/messages`: the message is on disk.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct Posted {
    pub id: MessageId,
    /// HTTP dates.
    pub date: String,
    pub expires: String,
    /// A retry under the same idempotency key: the first post's id.
    pub duplicate: bool,
}

/// A box's counters.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct BoxStats {
    pub pending: i64,
    pub pending_bytes: i64,
    pub first_pending: Option<MessageId>,
    /// The first pending message's length in bytes: a client with a size
    /// limit checks its room before asking for it, as it does for the
    /// next message from `Tracecast-Next-Length`.
    #[serde(default)]
    pub first_pending_length: Option<i64>,
    /// Unix ms.
    pub oldest_pending_at: Option<i64>,
    pub processed: i64,
}

/// `GET /v1/boxes/{name}` (its owner).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct BoxStatus {
    pub name: BoxName,
    pub stats: BoxStats,
}

/// A notice of waiting mail (an event on the stream, a long-poll answer,
/// a webhook's body).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct Notice {
    pub pending: i64,
    pub pending_bytes: i64,
    pub first: Option<MessageId>,
    /// The first message's length in bytes.
    #[serde(default)]
    pub first_length: Option<i64>,
}

/// The body a box's webhook receives (signed in `Tracecast-Signature`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct WebhookNotice {
    #[serde(rename = "box")]
    pub box_name: String,
    pub pending: i64,
    pub first: Option<MessageId>,
    /// 0 for the first notice, then one more for each repeat.
    pub attempt: u32,
}

impl From<BoxStats> for Notice {
    fn from(s: BoxStats) -> Self {
        Notice {
            pending: s.pending,
            pending_bytes: s.pending_bytes,
            first: s.first_pending,
            first_length: s.first_pending_length,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn shapes_read_back_and_unknown_fields_in_a_request_are_refused() {
        let who = WhoAmI {
            box_name: Some("user:alice".parse().unwrap()),
            admin: false,
        };
        let text = serde_json::to_string(&who).unwrap();
        assert_eq!(text, r#"{"box":"user:alice","admin":false}"#);
        assert_eq!(serde_json::from_str::<WhoAmI>(&text).unwrap(), who);
        assert!(serde_json::from_str::<CreateBox>(r#"{"name":"x","token":"mine"}"#).is_err());
        let create: CreateBox = serde_json::from_str(r#"{"name":"user:bob"}"#).unwrap();
        assert_eq!(create.webhook, None);
        // A box name that breaks the grammar is refused on the way in.
        assert!(serde_json::from_str::<BoxStatus>(
            r#"{"name":"no spaces","stats":{"pending":0,"pending_bytes":0,"first_pending":null,"oldest_pending_at":null,"processed":0}}"#
        )
        .is_err());
    }
}
