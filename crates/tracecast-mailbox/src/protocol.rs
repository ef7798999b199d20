//! Identifiers and the fetch request grammar.

use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Serialize};

/// Longest box name accepted.
pub const MAX_BOX_NAME: usize = 64;
/// Longest media type accepted on a post.
pub const MAX_MEDIA_TYPE: usize = 127;
/// Longest idempotency key accepted on a post.
pub const MAX_IDEMPOTENCY_KEY: usize = 128;

/// Why a request does not follow the protocol. Each maps to a 400 with this
/// text, so the wording is for the person who wrote the request.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ProtocolError {
    #[error(
        "box name {0:?} is invalid: use 1-64 of a-z 0-9 . _ - : starting with a letter or digit"
    )]
    BoxName(String),
    #[error("message id {0:?} is invalid: ids are positive integers")]
    MessageId(String),
    #[error("want={0:?} is invalid: use first, none or a message id")]
    Want(String),
    #[error("then={0:?} is invalid: use delete or move")]
    Disposition(String),
    #[error("the request has no want= (first, none or a message id)")]
    MissingWant,
    #[error("done= needs then=delete or then=move")]
    MissingDisposition,
    #[error("then= needs done=<id of the stored message>")]
    DispositionWithoutDone,
    #[error("want=none carries nothing: add done=<id>&then=delete|move, or ask for a message")]
    EmptyRequest,
    #[error("want and done name the same message {0}: acknowledge it, then ask for the next")]
    SameMessage(MessageId),
    #[error("wait={0:?} is invalid: use whole seconds 0-{1}, with want=first")]
    Wait(String, u64),
    #[error("unknown parameter {0:?} (known: want, done, then, wait)")]
    UnknownParameter(String),
    #[error("parameter {0:?} is given twice")]
    Repeated(&'static str),
    #[error("media type {0:?} is invalid: use type/subtype, e.g. text/plain")]
    MediaType(String),
    #[error("time to live {0:?} is invalid: use whole seconds from 1")]
    Ttl(String),
    #[error("time to live of {0} s is longer than this server keeps mail ({1} s)")]
    TtlTooLong(u64, u64),
    #[error("protect flag {0:?} is invalid: use true or false")]
    Protect(String),
    #[error("idempotency key is invalid: use 1-128 visible ASCII characters")]
    IdempotencyKey,
}

/// A message id: positive, unique within one mailbox service, increasing in
/// the order messages were accepted.
#[derive(
    Debug,
    Clone,
    Copy,
    PartialEq,
    Eq,
    PartialOrd,
    Ord,
    Hash,
    Serialize,
    Deserialize,
    utoipa::ToSchema,
)]
#[schema(value_type = i64)]
#[serde(transparent)]
pub struct MessageId(i64);

impl MessageId {
    /// Wraps a stored id; `None` unless positive.
    pub fn new(id: i64) -> Option<Self> {
        (id > 0).then_some(Self(id))
    }
    pub fn get(self) -> i64 {
        self.0
    }
}

impl fmt::Display for MessageId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        // Through i64's own Display, so width and alignment apply.
        fmt::Display::fmt(&self.0, f)
    }
}

impl FromStr for MessageId {
    type Err = ProtocolError;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        // Digits only: no sign, no spaces, no leading "+".
        if s.is_empty() || s.len() > 19 || !s.bytes().all(|b| b.is_ascii_digit()) {
            return Err(ProtocolError::MessageId(s.to_owned()));
        }
        s.parse::<i64>()
            .ok()
            .and_then(MessageId::new)
            .ok_or_else(|| ProtocolError::MessageId(s.to_owned()))
    }
}

/// The name of a box: one recipient (a user `user:alice`, a device
/// `device:cam-1`, or a server role `edge:3`).
#[derive(
    Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize, utoipa::ToSchema,
)]
#[schema(value_type = String, pattern = "^[a-z0-9][a-z0-9._:-]{0,63}$")]
#[serde(try_from = "String", into = "String")]
pub struct BoxName(String);

impl BoxName {
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl TryFrom<String> for BoxName {
    type Error = ProtocolError;
    fn try_from(s: String) -> Result<Self, Self::Error> {
        // `admin` and `origin` name the senders that post without a box
        // (rules::Sender); no box may take those names.
        let ok = !s.is_empty()
            && s != "admin"
            && s != "origin"
            && s.len() <= MAX_BOX_NAME
            && s.as_bytes()[0].is_ascii_alphanumeric()
            && s.bytes().all(|b| {
                b.is_ascii_lowercase()
                    || b.is_ascii_digit()
                    || matches!(b, b'.' | b'_' | b'-' | b':')
            });
        if ok {
            Ok(Self(s))
        } else {
            Err(ProtocolError::BoxName(s))
        }
    }
}

impl FromStr for BoxName {
    type Err = ProtocolError;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Self::try_from(s.to_owned())
    }
}

impl From<BoxName> for String {
    fn from(b: BoxName) -> String {
        b.0
    }
}

impl fmt::Display for BoxName {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.pad(&self.0)
    }
}

/// Which message a fetch asks for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Want {
    /// The oldest pending message.
    First,
    /// This message (normally the `next` id of the previous answer).
    Id(MessageId),
    /// No message: the request carries only an instruction.
    Nothing,
}

impl FromStr for Want {
    type Err = ProtocolError;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s {
            "first" => Ok(Want::First),
            "none" => Ok(Want::Nothing),
            _ => s
                .parse()
                .map(Want::Id)
                .map_err(|_| ProtocolError::Want(s.to_owned())),
        }
    }
}

impl fmt::Display for Want {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Want::First => f.write_str("first"),
            Want::Nothing => f.write_str("none"),
            Want::Id(id) => write!(f, "{id}"),
        }
    }
}

/// What to do with a message the client has stored.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Disposition {
    /// Forget it (a tombstone remains so a repeated instruction is harmless).
    Delete,
    /// Keep it in the box's processed store for the retention period.
    Move,
}

impl Disposition {
    /// The state a message ends in.
    pub fn target(self) -> MessageState {
        match self {
            Disposition::Delete => MessageState::Deleted,
            Disposition::Move => MessageState::Processed,
        }
    }
}

impl FromStr for Disposition {
    type Err = ProtocolError;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s {
            "delete" => Ok(Disposition::Delete),
            "move" => Ok(Disposition::Move),
            _ => Err(ProtocolError::Disposition(s.to_owned())),
        }
    }
}

impl fmt::Display for Disposition {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Disposition::Delete => "delete",
            Disposition::Move => "move",
        })
    }
}

/// Where a message is in its life. States only move forward
/// (pending → processed → deleted, or pending → deleted), which is what
/// makes a repeated instruction harmless and an applied delete final.
#[derive(
    Debug,
    Clone,
    Copy,
    PartialEq,
    Eq,
    PartialOrd,
    Ord,
    Hash,
    Serialize,
    Deserialize,
    utoipa::ToSchema,
)]
#[serde(rename_all = "lowercase")]
pub enum MessageState {
    Pending,
    Processed,
    Deleted,
}

impl MessageState {
    pub fn code(self) -> i64 {
        match self {
            MessageState::Pending => 0,
            MessageState::Processed => 1,
            MessageState::Deleted => 2,
        }
    }
    pub fn from_code(code: i64) -> Option<Self> {
        match code {
            0 => Some(MessageState::Pending),
            1 => Some(MessageState::Processed),
            2 => Some(MessageState::Deleted),
            _ => None,
        }
    }
    /// Whether an instruction may take a message from `self` to `target`:
    /// `Ok(true)` to apply it, `Ok(false)` when it is already there, `Err`
    /// when it would go backwards (a deleted message cannot be processed).
    pub fn transition(self, target: MessageState) -> Result<bool, MessageState> {
        match self.cmp(&target) {
            std::cmp::Ordering::Less => Ok(true),
            std::cmp::Ordering::Equal => Ok(false),
            std::cmp::Ordering::Greater => Err(self),
        }
    }
}

/// One fetch: the message wanted and, optionally, what to do with the one
/// just stored.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct FetchRequest {
    pub want: Want,
    pub done: Option<(MessageId, Disposition)>,
}

impl FetchRequest {
    pub fn first() -> Self {
        Self {
            want: Want::First,
            done: None,
        }
    }

    /// Parses the query parameters of a fetch (`want`, `done`, `then`).
    pub fn parse<'a>(
        pairs: impl IntoIterator<Item = (&'a str, &'a str)>,
    ) -> Result<Self, ProtocolError> {
        let (mut want, mut done, mut then) = (None, None, None);
        for (k, v) in pairs {
            let slot = match k {
                "want" => &mut want,
                "done" => &mut done,
                "then" => &mut then,
                _ => return Err(ProtocolError::UnknownParameter(k.to_owned())),
            };
            if slot.replace(v).is_some() {
                return Err(ProtocolError::Repeated(match k {
                    "want" => "want",
                    "done" => "done",
                    _ => "then",
                }));
            }
        }
        let want: Want = want.ok_or(ProtocolError::MissingWant)?.parse()?;
        let done = match (done, then) {
            (None, None) => None,
            (Some(_), None) => return Err(ProtocolError::MissingDisposition),
            (None, Some(_)) => return Err(ProtocolError::DispositionWithoutDone),
            (Some(d), Some(t)) => Some((d.parse::<MessageId>()?, t.parse::<Disposition>()?)),
        };
        let request = Self { want, done };
        request.validate()?;
        Ok(request)
    }

    /// Checks the combination: something to do, and not the same message
    /// acknowledged and asked for at once.
    pub fn validate(&self) -> Result<(), ProtocolError> {
        match (self.want, self.done) {
            (Want::Nothing, None) => Err(ProtocolError::EmptyRequest),
            (Want::Id(w), Some((d, _))) if w == d => Err(ProtocolError::SameMessage(w)),
            _ => Ok(()),
        }
    }

    /// The query string that [`FetchRequest::parse`] reads back.
    pub fn to_query(&self) -> String {
        match self.done {
            None => format!("want={}", self.want),
            Some((id, then)) => format!("want={}&done={id}&then={then}", self.want),
        }
    }
}

/// The id of the next pending message after the one returned, or none.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Next {
    Id(MessageId),
    None,
}

impl Next {
    pub fn id(self) -> Option<MessageId> {
        match self {
            Next::Id(id) => Some(id),
            Next::None => None,
        }
    }
}

impl From<Option<MessageId>> for Next {
    fn from(id: Option<MessageId>) -> Self {
        id.map_or(Next::None, Next::Id)
    }
}

impl fmt::Display for Next {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Next::Id(id) => write!(f, "{id}"),
            Next::None => f.write_str("none"),
        }
    }
}

impl FromStr for Next {
    type Err = ProtocolError;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        if s == "none" {
            Ok(Next::None)
        } else {
            s.parse().map(Next::Id)
        }
    }
}

/// Checks a media type as `type/subtype` with optional parameters, in the
/// token characters of RFC 9110.
pub fn check_media_type(s: &str) -> Result<(), ProtocolError> {
    let bad = || ProtocolError::MediaType(s.to_owned());
    if s.len() > MAX_MEDIA_TYPE || s.bytes().any(|b| b.is_ascii_control() || !b.is_ascii()) {
        return Err(bad());
    }
    let essence = s.split(';').next().unwrap_or("").trim();
    let mut parts = essence.split('/');
    let token = |t: &str| {
        !t.is_empty()
            && t.bytes()
                .all(|b| b.is_ascii_alphanumeric() || b"!#$%&'*+-.^_`|~".contains(&b))
    };
    match (parts.next(), parts.next(), parts.next()) {
        (Some(t), Some(sub), None) if token(t) && token(sub) => Ok(()),
        _ => Err(bad()),
    }
}

/// Parses a time to live in whole seconds (1 or more).
pub fn parse_ttl(s: &str) -> Result<u64, ProtocolError> {
    match s.parse::<u64>() {
        Ok(v) if v > 0 && s.bytes().all(|b| b.is_ascii_digit()) => Ok(v),
        _ => Err(ProtocolError::Ttl(s.to_owned())),
    }
}

/// Parses the `wait` of a fetch: how long `want=first` may wait for mail
/// when the box is empty (a long-poll fetch).
pub fn parse_wait(s: &str, max: u64) -> Result<u64, ProtocolError> {
    match s.parse::<u64>() {
        Ok(v) if v <= max && s.bytes().all(|b| b.is_ascii_digit()) => Ok(v),
        _ => Err(ProtocolError::Wait(s.to_owned(), max)),
    }
}

/// Parses the protect flag of a post.
pub fn parse_protect(s: &str) -> Result<bool, ProtocolError> {
    match s {
        "true" | "1" | "yes" => Ok(true),
        "false" | "0" | "no" => Ok(false),
        _ => Err(ProtocolError::Protect(s.to_owned())),
    }
}

/// Checks an idempotency key: 1-128 visible ASCII characters.
pub fn check_idempotency_key(s: &str) -> Result<(), ProtocolError> {
    if !s.is_empty() && s.len() <= MAX_IDEMPOTENCY_KEY && s.bytes().all(|b| b.is_ascii_graphic()) {
        Ok(())
    } else {
        Err(ProtocolError::IdempotencyKey)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(q: &str) -> Result<FetchRequest, ProtocolError> {
        FetchRequest::parse(q.split('&').filter(|p| !p.is_empty()).map(|p| {
            let mut kv = p.splitn(2, '=');
            (kv.next().unwrap(), kv.next().unwrap_or(""))
        }))
    }

    #[test]
    fn fetch_requests_of_the_protocol() {
        assert_eq!(parse("want=first").unwrap(), FetchRequest::first());
        let r = parse("want=7&done=6&then=move").unwrap();
        assert_eq!(r.want, Want::Id(MessageId::new(7).unwrap()));
        assert_eq!(
            r.done,
            Some((MessageId::new(6).unwrap(), Disposition::Move))
        );
        assert_eq!(parse(&r.to_query()).unwrap(), r);
        let only = parse("want=none&done=9&then=delete").unwrap();
        assert_eq!(only.want, Want::Nothing);
    }

    #[test]
    fn malformed_fetch_requests_say_why() {
        assert_eq!(parse(""), Err(ProtocolError::MissingWant));
        assert_eq!(parse("want=none"), Err(ProtocolError::EmptyRequest));
        assert_eq!(
            parse("want=first&done=3"),
            Err(ProtocolError::MissingDisposition)
        );
        assert_eq!(
            parse("want=first&then=delete"),
            Err(ProtocolError::DispositionWithoutDone)
        );
        assert!(matches!(parse("want=-1"), Err(ProtocolError::Want(_))));
        assert!(matches!(parse("want=0"), Err(ProtocolError::Want(_))));
        assert!(matches!(
            parse("want=first&done=1&then=keep"),
            Err(ProtocolError::Disposition(_))
        ));
        assert!(matches!(
            parse("want=4&done=4&then=delete"),
            Err(ProtocolError::SameMessage(_))
        ));
        assert_eq!(
            parse("want=first&want=2"),
            Err(ProtocolError::Repeated("want"))
        );
        assert!(matches!(
            parse("want=first&limit=3"),
            Err(ProtocolError::UnknownParameter(_))
        ));
    }

    #[test]
    fn ids_and_names_line_up_in_tables() {
        assert_eq!(format!("{:>5}|", MessageId::new(42).unwrap()), "   42|");
        assert_eq!(
            format!("{:<8}|", "user:a".parse::<BoxName>().unwrap()),
            "user:a  |"
        );
    }

    #[test]
    fn states_only_move_forward() {
        use MessageState::*;
        assert_eq!(Pending.transition(Deleted), Ok(true));
        assert_eq!(Processed.transition(Deleted), Ok(true));
        assert_eq!(Deleted.transition(Deleted), Ok(false));
        assert_eq!(Deleted.transition(Processed), Err(Deleted));
        for s in [Pending, Processed, Deleted] {
            assert_eq!(MessageState::from_code(s.code()), Some(s));
        }
    }

    #[test]
    fn names_types_and_flags() {
        assert!("user:alice".parse::<BoxName>().is_ok());
        assert!("edge-3.eu_1".parse::<BoxName>().is_ok());
        // admin and origin are senders without boxes: no box takes them.
        for bad in [
            "",
            "Alice",
            ":x",
            "a b",
            "a/b",
            &"x".repeat(65),
            "admin",
            "origin",
        ] {
            assert!(bad.parse::<BoxName>().is_err(), "{bad}");
        }
        assert!(check_media_type("text/plain; charset=utf-8").is_ok());
        assert!(check_media_type("application/vnd.tracecast.report+json").is_ok());
        for bad in [
            "text",
            "text/",
            "/x",
            "a/b/c",
            "te xt/plain",
            "text/plain\r\nx: y",
        ] {
            assert!(check_media_type(bad).is_err(), "{bad}");
        }
        assert_eq!(parse_ttl("60"), Ok(60));
        assert!(parse_ttl("0").is_err() && parse_ttl("+5").is_err() && parse_ttl("1.5").is_err());
        assert_eq!(parse_protect("true"), Ok(true));
        assert!(parse_protect("maybe").is_err());
        assert!(check_idempotency_key("post-1").is_ok());
        assert!(check_idempotency_key("has space").is_err());
    }

    mod properties {
        use super::super::*;
        use proptest::prelude::*;

        fn id() -> impl Strategy<Value = MessageId> {
            (1i64..i64::MAX).prop_map(|v| MessageId::new(v).unwrap())
        }

        proptest! {
            // Outside input: any query pairs parse or are refused, never panic.
            #[test]
            fn any_query_is_parsed_or_refused(
                pairs in proptest::collection::vec(("\\PC{0,8}", "\\PC{0,24}"), 0..5)
            ) {
                let r = FetchRequest::parse(pairs.iter().map(|(k, v)| (k.as_str(), v.as_str())));
                if let Ok(req) = r {
                    prop_assert!(req.validate().is_ok());
                }
            }

            #[test]
            fn requests_round_trip_through_their_query(
                want in prop_oneof![Just(Want::First), Just(Want::Nothing), id().prop_map(Want::Id)],
                done in proptest::option::of((id(), prop_oneof![Just(Disposition::Delete), Just(Disposition::Move)])),
            ) {
                let req = FetchRequest { want, done };
                let query = req.to_query();
                let pairs: Vec<(&str, &str)> = query
                    .split('&')
                    .map(|p| p.split_once('=').unwrap())
                    .collect();
                match req.validate() {
                    Ok(()) => prop_assert_eq!(FetchRequest::parse(pairs).unwrap(), req),
                    Err(e) => prop_assert_eq!(FetchRequest::parse(pairs), Err(e)),
                }
            }

            #[test]
            fn strings_from_outside_never_panic(s in "\\PC{0,80}") {
                let _ = s.parse::<MessageId>();
                let _ = s.parse::<BoxName>();
                let _ = s.parse::<Want>();
                let _ = s.parse::<Next>();
                let _ = check_media_type(&s);
                let _ = parse_ttl(&s);
                let _ = parse_protect(&s);
                let _ = check_idempotency_key(&s);
            }

            #[test]
            fn ids_print_and_parse_back(id in id()) {
                prop_assert_eq!(id.to_string().parse::<MessageId>().unwrap(), id);
                prop_assert_eq!(Next::Id(id).to_string().parse::<Next>().unwrap(), Next::Id(id));
            }
        }
    }
}
