//! The mailbox protocol (DESIGN.md "003"): durable per-recipient boxes with
//! notify → fetch → acknowledge-with-next-fetch. This crate is the pure core:
//! names, identifiers, the fetch request grammar, the rules for retention,
//! notification retries and the client's room. The store, the HTTP service
//! and the client wrap it (`tracecast-store`, `tracecast-server`,
//! `tracecast-client`).
//!
//! # The exchange
//!
//! 1. A box receives mail; the server notifies the owner (an event on the
//!    open stream, a long-poll answer, or a webhook), and notifies again with
//!    backoff ([`Backoff`]) while the owner does not come.
//! 2. The owner checks its room ([`Room`]) and asks for the first message:
//!    `want=first`.
//! 3. The server answers with the message and the id of the next one, or
//!    `none` ([`Next`]).
//! 4. Once the owner has the message on disk, its next request asks for the
//!    next message and says what to do with the stored one:
//!    `want=<next>&done=<stored>&then=delete|move` ([`FetchRequest`]). With
//!    no next message the request carries only the instruction:
//!    `want=none&done=<stored>&then=delete`.
//! 5. The server keeps every message until told, and sends the same message
//!    again when asked again; a repeated instruction is harmless.
//!
//! `want=first&wait=N` asks the server to hold the request up to N seconds
//! when the box is empty and answer with the first message to arrive: the
//! notification and the fetch in one round trip.

pub mod api;
mod protocol;
mod retention;
mod room;
mod rules;

pub use protocol::{
    check_idempotency_key, check_media_type, parse_protect, parse_ttl, parse_wait, BoxName,
    Disposition, FetchRequest, MessageId, MessageState, Next, ProtocolError, Want, MAX_BOX_NAME,
    MAX_IDEMPOTENCY_KEY, MAX_MEDIA_TYPE,
};
pub use retention::{Backoff, Retention};
pub use room::{LocalMessage, Room, RoomPlan};
pub use rules::{
    may_post, BoxKind, PostRefusal, Sender, DELIVERY_REPORT, REVOCATION_REPORT, SITE_REPORT,
};

/// HTTP header names of the protocol, shared by the service and its clients.
pub mod header {
    /// Id of the message in the body.
    pub const MESSAGE_ID: &str = "tracecast-message-id";
    /// Id of the next pending message, or `none`.
    pub const NEXT: &str = "tracecast-next";
    /// Length in bytes of the next pending message (absent with `none`), so
    /// a client can check its room before it asks.
    pub const NEXT_LENGTH: &str = "tracecast-next-length";
    /// When the message was accepted (IMF-fixdate, as HTTP's `Date`).
    pub const MESSAGE_DATE: &str = "tracecast-message-date";
    /// `true` when the sender protected the message from overwrite.
    pub const PROTECTED: &str = "tracecast-protected";
    /// On a post: time to live in seconds.
    pub const TTL: &str = "tracecast-ttl";
    /// What happened to the instruction of a fetch: `applied`, `already`
    /// (repeated instruction) or absent.
    pub const DONE: &str = "tracecast-done";
    /// Sender-chosen key that makes a retried post land once (within
    /// that sender's posts to the box: one sender cannot take another's
    /// key).
    pub const IDEMPOTENCY_KEY: &str = "idempotency-key";
    /// On a fetched message: who posted it, as the mailbox authenticated
    /// them (`user:bob`, `gateway:kenji-phone`, `origin`, `admin`).
    pub const SENDER: &str = "tracecast-sender";
    /// HMAC-SHA256 of a webhook body under the box's webhook secret.
    pub const SIGNATURE: &str = "tracecast-signature";
}
