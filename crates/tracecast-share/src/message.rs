//! The message a gateway sends for a device (DESIGN.md "000" step 2), as
//! MIME (RFC 2045-2049): `multipart/mixed` with the text the gateway's user
//! typed and either the content itself as an attachment (small content,
//! like an MMS) or, for content over the attachment limit, a
//! `message/external-body` part (RFC 2017, access-type URL) pointing at
//! the service server's signed, expiring download link. The link is in the
//! text as well, for readers that do not know external bodies.
//!
//! Building and parsing use `mail-builder` and `mail-parser`; this module
//! only decides the shape, and what a recipient may trust of a message it
//! parses.

use std::borrow::Cow;

use mail_builder::headers::content_type::ContentType;
use mail_builder::headers::text::Text;
use mail_builder::mime::{BodyPart, MimePart};
use mail_builder::MessageBuilder;
use mail_parser::{MessageParser, MimeHeaders, PartType};

/// The media type of a shared message in a mailbox.
pub const MESSAGE_MEDIA_TYPE: &str = "message/rfc822";

/// Header naming the device a message was shared from.
pub const DEVICE_HEADER: &str = "Tracecast-Device";
/// Header naming the gateway that sent it.
pub const GATEWAY_HEADER: &str = "Tracecast-Gateway";

/// Most bytes of a message a recipient parses (an attachment is at most
/// the gateway's limit, so a message is small; anything larger is not
/// one of ours).
pub const MAX_MESSAGE_BYTES: usize = 16 << 20;

/// What a shared message carries beside its text.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Content<'a> {
    /// The content itself.
    Attachment(&'a [u8]),
    /// A download link to the content on the service server.
    Link {
        url: &'a str,
        /// The link's expiry, Unix seconds.
        expires: i64,
        length: u64,
    },
}

/// A message to compose.
#[derive(Debug, Clone)]
pub struct Outgoing<'a> {
    /// The gateway's name.
    pub gateway: &'a str,
    /// The device's account and model, as the gateway registered it.
    pub device: &'a str,
    /// The recipient as the gateway's user typed it (a number or a name).
    pub recipient: &'a str,
    /// The recipient's mailbox box.
    pub recipient_box: &'a str,
    pub text: &'a str,
    pub filename: &'a str,
    pub media_type: &'a str,
    pub content: Content<'a>,
    /// When it was composed, Unix seconds.
    pub date: i64,
    /// A unique id, e.g. from the upload id or a random value.
    pub message_id: &'a str,
}

/// Why a received message could not be read as a shared message.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum MessageError {
    #[error("the message is larger than {MAX_MESSAGE_BYTES} bytes")]
    TooLarge,
    #[error("the message is not MIME (no headers could be read)")]
    NotMime,
    #[error("the message was not shared through a gateway (no {GATEWAY_HEADER} header)")]
    NotShared,
    #[error("a download link in the message is malformed: {0}")]
    BadLink(String),
}

/// Keeps a header value on one line and printable: what a user typed must
/// not add headers.
fn one_line(s: &str) -> String {
    s.chars()
        .map(|c| if c.is_control() { ' ' } else { c })
        .collect()
}

/// A file name safe for `Content-Disposition` and for saving: no path, no
/// control characters, not empty.
pub fn safe_filename(name: &str) -> String {
    let base = name.rsplit(['/', '\\']).next().unwrap_or_default();
    let cleaned: String = base
        .chars()
        .filter(|c| !c.is_control() && *c != '"')
        .take(120)
        .collect();
    let cleaned = cleaned.trim().trim_start_matches('.').to_owned();
    if cleaned.is_empty() {
        "shared.bin".to_owned()
    } else {
        cleaned
    }
}

/// A subject from the text's first line.
fn subject(text: &str, filename: &str) -> String {
    let first = text.lines().find(|l| !l.trim().is_empty()).unwrap_or("");
    let s: String = one_line(first).chars().take(60).collect();
    if s.trim().is_empty() {
        format!("Shared: {filename}")
    } else {
        s
    }
}

/// Composes the MIME message.
/// What `n` bytes of attachment take in a message: base64 (RFC 2045
/// §6.8), four characters for every three bytes, in lines of at most 76
/// with CRLF; the headers and the text come on top.
pub fn attached_len(n: u64) -> u64 {
    let encoded = n.div_ceil(3) * 4;
    encoded + encoded.div_ceil(76) * 2
}

pub fn compose(m: &Outgoing<'_>) -> Vec<u8> {
    let filename = safe_filename(m.filename);
    let media_type = if m.media_type.contains('/') && !m.media_type.contains(['\r', '\n']) {
        m.media_type
    } else {
        "application/octet-stream"
    };
    let mut text = m.text.to_owned();
    let second = match m.content {
        Content::Attachment(bytes) => MimePart::new(
            ContentType::new(media_type),
            BodyPart::Binary(Cow::Borrowed(bytes)),
        )
        .attachment(filename.clone()),
        Content::Link {
            url,
            expires,
            length,
        } => {
            if !text.is_empty() && !text.ends_with('\n') {
                text.push('\n');
            }
            text.push_str(&format!(
                "\n{filename} ({length} bytes): {url}\nThe link works until {}.\n",
                crate::tus::http_date(expires)
            ));
            // RFC 2046 5.2.3: the body is the external message's header.
            let inner = format!(
                "Content-Type: {media_type}\r\nContent-Disposition: attachment; filename=\"{filename}\"\r\nContent-Length: {length}\r\n\r\n"
            );
            MimePart::new(
                ContentType::new("message/external-body")
                    .attribute("access-type", "URL")
                    .attribute("URL", url.to_owned())
                    .attribute("expiration", crate::tus::http_date(expires))
                    .attribute("size", length.to_string()),
                BodyPart::Binary(Cow::Owned(inner.into_bytes())),
            )
            .transfer_encoding("7bit")
        }
    };
    let body = MimePart::new(
        "multipart/mixed",
        vec![
            MimePart::new("text/plain", BodyPart::Text(Cow::Owned(text))),
            second,
        ],
    );
    let mut out = Vec::new();
    MessageBuilder::new()
        .from((
            one_line(m.gateway),
            format!("{}@gateway.tracecast.invalid", address_part(m.gateway)),
        ))
        .to((
            one_line(m.recipient),
            format!(
                "{}@mailbox.tracecast.invalid",
                address_part(m.recipient_box)
            ),
        ))
        .subject(subject(m.text, &filename))
        .date(m.date)
        .message_id(format!("{}@tracecast.invalid", address_part(m.message_id)))
        .header(GATEWAY_HEADER, Text::from(one_line(m.gateway)))
        .header(DEVICE_HEADER, Text::from(one_line(m.device)))
        .body(body)
        .write_to(&mut out)
        .expect("writing to a Vec cannot fail");
    out
}

/// The local part of an address made from a name: letters, digits, `.`,
/// `-`, `_`, `+` only.
fn address_part(s: &str) -> String {
    let out: String = s
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || matches!(c, '.' | '-' | '_' | '+') {
                c
            } else {
                '.'
            }
        })
        .collect();
    if out.is_empty() {
        "unknown".to_owned()
    } else {
        out
    }
}

/// An attachment carried in the message.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Attachment {
    pub filename: String,
    pub media_type: String,
    pub bytes: Vec<u8>,
}

/// A download link carried in the message.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Link {
    pub url: String,
    pub filename: String,
    pub media_type: String,
    pub length: Option<u64>,
    /// As written in the message (an HTTP date).
    pub expires: Option<String>,
}

/// A shared message as the recipient reads it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Shared {
    pub gateway: String,
    pub device: String,
    pub subject: String,
    pub text: String,
    pub attachments: Vec<Attachment>,
    pub links: Vec<Link>,
}

/// Reads a shared message. Never panics; a message that is not MIME or
/// not from a gateway is an error, and a link must be http(s).
pub fn parse(bytes: &[u8]) -> Result<Shared, MessageError> {
    if bytes.len() > MAX_MESSAGE_BYTES {
        return Err(MessageError::TooLarge);
    }
    let msg = MessageParser::default()
        .parse(bytes)
        .ok_or(MessageError::NotMime)?;
    let header = |name: &str| {
        msg.header(name)
            .and_then(|v| v.as_text())
            .map(|v| one_line(v.trim()))
            .filter(|v| !v.is_empty())
    };
    let gateway = header(GATEWAY_HEADER).ok_or(MessageError::NotShared)?;
    let device = header(DEVICE_HEADER).unwrap_or_default();
    let mut shared = Shared {
        gateway,
        device,
        subject: msg.subject().unwrap_or_default().to_owned(),
        text: msg.body_text(0).map(|t| t.into_owned()).unwrap_or_default(),
        attachments: Vec::new(),
        links: Vec::new(),
    };
    for part in msg.parts.iter().skip(1) {
        let Some(ct) = part.content_type() else {
            continue;
        };
        let is_external = ct.ctype().eq_ignore_ascii_case("message")
            && ct
                .subtype()
                .is_some_and(|s| s.eq_ignore_ascii_case("external-body"));
        if is_external {
            shared.links.push(external_link(ct, part.contents())?);
            continue;
        }
        let attached = part
            .content_disposition()
            .is_some_and(|d| d.ctype().eq_ignore_ascii_case("attachment"));
        if !attached {
            continue;
        }
        let bytes = match &part.body {
            PartType::Binary(b) | PartType::InlineBinary(b) => b.to_vec(),
            PartType::Text(t) | PartType::Html(t) => t.as_bytes().to_vec(),
            PartType::Message(_) | PartType::Multipart(_) => part.contents().to_vec(),
        };
        shared.attachments.push(Attachment {
            filename: safe_filename(part.attachment_name().unwrap_or_default()),
            media_type: match ct.subtype() {
                Some(sub) => format!("{}/{sub}", ct.ctype()),
                None => ct.ctype().to_owned(),
            },
            bytes,
        });
    }
    Ok(shared)
}

fn external_link(ct: &mail_parser::ContentType<'_>, inner: &[u8]) -> Result<Link, MessageError> {
    // Parameter names are case-insensitive (RFC 2045 5.1).
    let attr = |name: &str| {
        ct.attributes()
            .unwrap_or_default()
            .iter()
            .find(|a| a.name.eq_ignore_ascii_case(name))
            .map(|a| a.value.as_ref())
    };
    let access = attr("access-type").unwrap_or_default();
    if !access.eq_ignore_ascii_case("URL") {
        return Err(MessageError::BadLink(format!(
            "access-type {access:?} is not URL"
        )));
    }
    let url: String = attr("URL")
        .unwrap_or_default()
        .chars()
        .filter(|c| !c.is_whitespace())
        .collect();
    if !(url.starts_with("https://") || url.starts_with("http://")) || url.len() > 4096 {
        return Err(MessageError::BadLink(format!(
            "{:?} is not an http(s) URL",
            url.chars().take(80).collect::<String>()
        )));
    }
    let mut filename = String::new();
    let mut media_type = "application/octet-stream".to_owned();
    // The inner header: a few lines up to the blank line.
    let inner = String::from_utf8_lossy(inner);
    for line in inner.lines().take_while(|l| !l.trim().is_empty()) {
        let Some((name, value)) = line.split_once(':') else {
            continue;
        };
        let value = value.trim();
        if name.trim().eq_ignore_ascii_case("Content-Type") {
            media_type = value
                .split(';')
                .next()
                .unwrap_or_default()
                .trim()
                .to_owned();
        } else if name.trim().eq_ignore_ascii_case("Content-Disposition") {
            if let Some(f) = value.split(';').find_map(|p| {
                p.trim()
                    .strip_prefix("filename=")
                    .map(|f| f.trim_matches('"').to_owned())
            }) {
                filename = f;
            }
        }
    }
    Ok(Link {
        url,
        filename: safe_filename(&filename),
        media_type,
        length: attr("size").and_then(|s| s.trim().parse().ok()),
        expires: attr("expiration").map(str::to_owned),
    })
}

/// Who really shared a message: the gateway it names, when the mailbox
/// says that gateway posted it; anyone can write the header.
pub fn verified_gateway<'a>(shared: &'a Shared, sender: Option<&str>) -> Option<&'a str> {
    let sender = sender?;
    (sender.strip_prefix("gateway:") == Some(shared.gateway.as_str()))
        .then_some(shared.gateway.as_str())
}

/// What a recipient does with a link in a shared message.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum LinkVerdict {
    /// Fetch it: a gateway sent it (the mailbox says so) and it points at
    /// a service server the recipient trusts.
    Fetch,
    /// Show it, do not fetch it, and say why.
    ShowOnly(String),
}

/// `scheme://host:port` of an http(s) URL, lower-cased, or `None`.
fn origin_of(url: &str) -> Option<(String, &str)> {
    let (scheme, rest) = url.split_once("://")?;
    let scheme = scheme.to_ascii_lowercase();
    if scheme != "http" && scheme != "https" {
        return None;
    }
    let end = rest.find(['/', '?', '#']).unwrap_or(rest.len());
    let (authority, path) = rest.split_at(end);
    // A user part (`trusted@elsewhere`) names another host.
    if authority.is_empty() || authority.contains('@') {
        return None;
    }
    Some((
        format!("{scheme}://{}", authority.to_ascii_lowercase()),
        path,
    ))
}

/// Whether to fetch `link`: only when the message came from a gateway
/// (by the mailbox's word, `sender`) and the link points at the files of
/// one of the `trusted` service servers (base URLs). Anything else is a
/// link someone typed: shown, never fetched unasked.
pub fn judge_link(
    link: &Link,
    shared: &Shared,
    sender: Option<&str>,
    trusted: &[String],
) -> LinkVerdict {
    if verified_gateway(shared, sender).is_none() {
        return LinkVerdict::ShowOnly(format!(
            "the message names gateway {:?} but was posted by {}",
            shared.gateway,
            sender.unwrap_or("an unknown sender")
        ));
    }
    let Some((origin, path)) = origin_of(&link.url) else {
        return LinkVerdict::ShowOnly("the link is not a plain http(s) address".into());
    };
    let to_service = trusted.iter().any(|t| {
        origin_of(t.trim_end_matches('/')).is_some_and(|(o, _)| o == origin)
            && path.starts_with("/service/v1/files/")
    });
    if to_service {
        LinkVerdict::Fetch
    } else {
        LinkVerdict::ShowOnly(format!(
            "{origin} is not a service server you trust (--service)"
        ))
    }
}

/// The media type a file's extension suggests.
pub fn guess_media_type(file: &std::path::Path) -> &'static str {
    let ext = file
        .extension()
        .and_then(|e| e.to_str())
        .map(str::to_ascii_lowercase);
    match ext.as_deref() {
        Some("txt") => "text/plain; charset=utf-8",
        Some("json") => "application/json",
        Some("eml") => "message/rfc822",
        Some("html" | "htm") => "text/html; charset=utf-8",
        Some("png") => "image/png",
        Some("jpg" | "jpeg") => "image/jpeg",
        Some("wav") => "audio/wav",
        Some("flac") => "audio/flac",
        Some("mp3") => "audio/mpeg",
        _ => "application/octet-stream",
    }
}

#[cfg(test)]
mod tests {

    #[test]
    fn links_are_fetched_only_from_a_real_gateway_to_a_trusted_service() {
        let shared = |gateway: &str| Shared {
            gateway: gateway.into(),
            device: "TCA-0000-0000-0000 cam".into(),
            subject: String::new(),
            text: String::new(),
            attachments: Vec::new(),
            links: Vec::new(),
        };
        let link = |url: &str| Link {
            url: url.into(),
            filename: "f".into(),
            media_type: "application/octet-stream".into(),
            length: None,
            expires: None,
        };
        let trusted = vec!["http://127.0.0.1:7070/".to_owned()];
        let good = "http://127.0.0.1:7070/service/v1/files/u1/a.mp4?expires=9&sig=ab";
        let cases: &[(&str, Option<&str>, &str, bool)] = &[
            ("kenji-phone", Some("gateway:kenji-phone"), good, true),
            (
                "kenji-phone",
                Some("HTTP://127.0.0.1:7070/service/v1/files/x"),
                good,
                false,
            ),
            // A user posting a gateway's header.
            ("kenji-phone", Some("user:mallory"), good, false),
            ("kenji-phone", Some("gateway:other-phone"), good, false),
            ("kenji-phone", None, good, false),
            // A gateway's message, but the link goes elsewhere.
            (
                "kenji-phone",
                Some("gateway:kenji-phone"),
                "http://evil.example/service/v1/files/x",
                false,
            ),
            (
                "kenji-phone",
                Some("gateway:kenji-phone"),
                "http://127.0.0.1:7070@evil.example/service/v1/files/x",
                false,
            ),
            (
                "kenji-phone",
                Some("gateway:kenji-phone"),
                "http://127.0.0.1:7071/service/v1/files/x",
                false,
            ),
            (
                "kenji-phone",
                Some("gateway:kenji-phone"),
                "http://127.0.0.1:7070/v1/boxes/user:bob/fetch",
                false,
            ),
            (
                "kenji-phone",
                Some("gateway:kenji-phone"),
                "file:///etc/passwd",
                false,
            ),
        ];
        for (gateway, sender, url, fetch) in cases {
            let verdict = judge_link(&link(url), &shared(gateway), *sender, &trusted);
            assert_eq!(
                verdict == LinkVerdict::Fetch,
                *fetch,
                "{sender:?} {url}: {verdict:?}"
            );
        }
        assert_eq!(
            verified_gateway(&shared("kenji-phone"), Some("gateway:kenji-phone")),
            Some("kenji-phone")
        );
        assert_eq!(
            verified_gateway(&shared("kenji-phone"), Some("user:kenji-phone")),
            None
        );
    }

    use super::*;
    use proptest::prelude::*;

    fn outgoing<'a>(text: &'a str, content: Content<'a>) -> Outgoing<'a> {
        Outgoing {
            gateway: "kenji-phone",
            device: "TCA-0000-0000-0018 (Lumix G9; wifi)",
            recipient: "+81 90 1234 5678",
            recipient_box: "user:bob",
            text,
            filename: "beach/IMG_0042.jpg",
            media_type: "image/jpeg",
            content,
            date: 1_795_000_000,
            message_id: "upload-7",
        }
    }

    #[test]
    fn a_small_content_travels_as_an_attachment() {
        let bytes: Vec<u8> = (0..5000u32).map(|i| (i * 7) as u8).collect();
        let raw = compose(&outgoing(
            "Look at this!\nKenji",
            Content::Attachment(&bytes),
        ));
        let text = String::from_utf8_lossy(&raw);
        assert!(text.contains("multipart/mixed"), "{text}");
        assert!(text.contains("Tracecast-Gateway: kenji-phone"));
        let shared = parse(&raw).unwrap();
        assert_eq!(shared.gateway, "kenji-phone");
        assert!(shared.device.starts_with("TCA-0000-0000-0018"));
        assert_eq!(shared.subject, "Look at this!");
        assert!(shared.text.contains("Kenji"));
        assert_eq!(shared.attachments.len(), 1);
        assert_eq!(shared.attachments[0].filename, "IMG_0042.jpg");
        assert_eq!(shared.attachments[0].media_type, "image/jpeg");
        assert_eq!(shared.attachments[0].bytes, bytes);
        assert!(shared.links.is_empty());
    }

    #[test]
    fn a_large_content_travels_as_a_link_in_an_external_body() {
        let url = "http://127.0.0.1:7070/service/v1/files/u_abc/IMG_0042.jpg?expires=1795600000&sig=0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef";
        let raw = compose(&outgoing(
            "Big one",
            Content::Link {
                url,
                expires: 1_795_600_000,
                length: 3_000_000,
            },
        ));
        let text = String::from_utf8_lossy(&raw);
        assert!(text.contains("message/external-body"), "{text}");
        let shared = parse(&raw).unwrap();
        assert!(shared.attachments.is_empty());
        assert_eq!(shared.links.len(), 1);
        let link = &shared.links[0];
        assert_eq!(link.url, url);
        assert_eq!(link.filename, "IMG_0042.jpg");
        assert_eq!(link.media_type, "image/jpeg");
        assert_eq!(link.length, Some(3_000_000));
        assert!(link.expires.as_deref().unwrap().contains("GMT"));
        // Readers without external bodies still see the link.
        assert!(shared.text.contains(url), "{}", shared.text);
    }

    #[test]
    fn typed_text_cannot_add_headers() {
        let raw = compose(&Outgoing {
            gateway: "gw\r\nBcc: eve@example.com",
            ..outgoing("hi\r\nBcc: eve@example.com", Content::Attachment(b"x"))
        });
        let text = String::from_utf8_lossy(&raw);
        let head = text.split("\r\n\r\n").next().unwrap();
        assert!(!head.contains("\r\nBcc:"), "{text}");
    }

    #[test]
    fn file_names_lose_their_paths_and_quotes() {
        assert_eq!(safe_filename("../../etc/passwd"), "passwd");
        assert_eq!(safe_filename("C:\\x\\a\"b.jpg"), "ab.jpg");
        assert_eq!(safe_filename(".."), "shared.bin");
        assert_eq!(safe_filename(""), "shared.bin");
        assert_eq!(safe_filename(".hidden"), "hidden");
    }

    #[test]
    fn mail_not_from_a_gateway_or_with_a_bad_link_is_refused() {
        assert_eq!(parse(b""), Err(MessageError::NotMime));
        assert_eq!(
            parse(b"Subject: hi\r\n\r\nbody"),
            Err(MessageError::NotShared)
        );
        let raw = compose(&outgoing(
            "x",
            Content::Link {
                url: "file:///etc/passwd",
                expires: 1,
                length: 1,
            },
        ));
        assert!(matches!(parse(&raw), Err(MessageError::BadLink(_))));
    }

    proptest! {
        #[test]
        fn parsing_any_bytes_never_panics(bytes in proptest::collection::vec(any::<u8>(), 0..2000)) {
            let _ = parse(&bytes);
        }

        #[test]
        fn composed_messages_read_back(text in "[a-zA-Z0-9 .,!?\n]{0,200}", body in proptest::collection::vec(any::<u8>(), 0..3000)) {
            let raw = compose(&outgoing(&text, Content::Attachment(&body)));
            let shared = parse(&raw).unwrap();
            prop_assert_eq!(&shared.attachments[0].bytes, &body);
        }
    }
}
