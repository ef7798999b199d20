//! The tus resumable upload protocol, version 1.0.0 (<https://tus.io>):
//! core (HEAD for the offset, PATCH to append at it), creation (POST with
//! `Upload-Length` and `Upload-Metadata`), termination (DELETE) and
//! expiration (`Upload-Expires`). The header values and an upload's
//! offset rules; the service role serves them over HTTP.

use base64::engine::{DecodePaddingMode, GeneralPurpose, GeneralPurposeConfig};
use base64::Engine;

/// The protocol version this server speaks (`Tus-Resumable`, `Tus-Version`).
pub const TUS_RESUMABLE: &str = "1.0.0";
/// The extensions it supports (`Tus-Extension`).
pub const TUS_EXTENSIONS: &str = "creation,termination,expiration";
/// The body type of a PATCH.
pub const OFFSET_CONTENT_TYPE: &str = "application/offset+octet-stream";

/// Metadata values: standard base64; clients differ on padding.
const METADATA_B64: GeneralPurpose = GeneralPurpose::new(
    &base64::alphabet::STANDARD,
    GeneralPurposeConfig::new().with_decode_padding_mode(DecodePaddingMode::Indifferent),
);

/// Why a tus request is refused; [`TusError::status`] is its HTTP status.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum TusError {
    #[error(
        "this server speaks tus {TUS_RESUMABLE}: send Tus-Resumable: {TUS_RESUMABLE} (got {0})"
    )]
    Version(String),
    #[error("the {0} header is missing")]
    Missing(&'static str),
    #[error("the {0} header is not a whole number of bytes: {1:?}")]
    Number(&'static str, String),
    #[error("Upload-Metadata is malformed: {0}")]
    Metadata(String),
    #[error("an upload is at most {max} bytes (asked for {asked})")]
    TooLarge { max: u64, asked: u64 },
    #[error("the upload is at offset {expected}, not {claimed}: ask HEAD and resume there")]
    OffsetMismatch { expected: u64, claimed: u64 },
    #[error("the body would go past the upload's length of {length} bytes")]
    PastLength { length: u64 },
    #[error("a PATCH body has Content-Type {OFFSET_CONTENT_TYPE}")]
    ContentType,
    #[error("the upload has expired")]
    Expired,
}

impl TusError {
    /// The HTTP status the protocol gives this refusal.
    pub fn status(&self) -> u16 {
        match self {
            TusError::Version(_) => 412,
            TusError::Missing(_) | TusError::Number(..) | TusError::Metadata(_) => 400,
            TusError::TooLarge { .. } => 413,
            TusError::OffsetMismatch { .. } => 409,
            TusError::PastLength { .. } => 400,
            TusError::ContentType => 415,
            TusError::Expired => 410,
        }
    }
}

/// Checks a request's `Tus-Resumable` (every request but OPTIONS has it).
pub fn check_resumable(value: Option<&str>) -> Result<(), TusError> {
    match value {
        Some(v) if v.trim() == TUS_RESUMABLE => Ok(()),
        Some(v) => Err(TusError::Version(v.to_owned())),
        // Like a version it does not speak: 412 (as tus servers answer).
        None => Err(TusError::Version("none".into())),
    }
}

/// A byte count or offset header: digits only (no sign, no spaces).
pub fn parse_number(name: &'static str, value: Option<&str>) -> Result<u64, TusError> {
    let v = value.ok_or(TusError::Missing(name))?;
    if v.is_empty() || v.len() > 19 || !v.bytes().all(|b| b.is_ascii_digit()) {
        return Err(TusError::Number(name, v.chars().take(40).collect()));
    }
    v.parse().map_err(|_| TusError::Number(name, v.to_owned()))
}

/// `Upload-Metadata`: comma-separated `key` or `key base64value` pairs;
/// keys are unique, non-empty ASCII without spaces or commas.
pub fn parse_metadata(value: &str) -> Result<Vec<(String, Vec<u8>)>, TusError> {
    let mut out: Vec<(String, Vec<u8>)> = Vec::new();
    if value.trim().is_empty() {
        return Ok(out);
    }
    for pair in value.split(',') {
        let pair = pair.trim();
        let mut parts = pair.split(' ');
        let key = parts.next().unwrap_or_default();
        if key.is_empty() || !key.bytes().all(|b| b.is_ascii_graphic() && b != b',') {
            return Err(TusError::Metadata(format!("bad key {key:?}")));
        }
        let value = match parts.next() {
            Some(v) => METADATA_B64
                .decode(v)
                .map_err(|_| TusError::Metadata(format!("{key}: the value is not base64")))?,
            None => Vec::new(),
        };
        if parts.next().is_some() {
            return Err(TusError::Metadata(format!("{key}: more than one value")));
        }
        if out.iter().any(|(k, _)| k == key) {
            return Err(TusError::Metadata(format!("{key} appears twice")));
        }
        out.push((key.to_owned(), value));
    }
    Ok(out)
}

/// Writes metadata as `Upload-Metadata` (padded base64, as clients send it).
pub fn encode_metadata(pairs: &[(String, Vec<u8>)]) -> String {
    pairs
        .iter()
        .map(|(k, v)| {
            if v.is_empty() {
                k.clone()
            } else {
                format!(
                    "{k} {}",
                    base64::engine::general_purpose::STANDARD.encode(v)
                )
            }
        })
        .collect::<Vec<_>>()
        .join(",")
}

/// An `Upload-Expires` value (RFC 9110 HTTP date) for Unix seconds.
pub fn http_date(unix_secs: i64) -> String {
    let t = std::time::UNIX_EPOCH + std::time::Duration::from_secs(unix_secs.max(0).unsigned_abs());
    httpdate::fmt_http_date(t)
}

/// Checks a new upload's length against the server's largest.
pub fn check_length(length: u64, max: u64) -> Result<(), TusError> {
    if length > max {
        return Err(TusError::TooLarge { max, asked: length });
    }
    Ok(())
}

/// An upload's progress: its declared length, the bytes received and when
/// it expires (Unix seconds).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Upload {
    pub length: u64,
    pub offset: u64,
    pub expires: i64,
}

impl Upload {
    /// Checks a PATCH before its body is read: the upload is alive, the
    /// client's offset is the upload's, and the declared body (if any)
    /// stays within the length.
    pub fn check_patch(
        &self,
        claimed_offset: u64,
        content_length: Option<u64>,
        now: i64,
    ) -> Result<(), TusError> {
        if now > self.expires {
            return Err(TusError::Expired);
        }
        if claimed_offset != self.offset {
            return Err(TusError::OffsetMismatch {
                expected: self.offset,
                claimed: claimed_offset,
            });
        }
        if let Some(n) = content_length {
            self.room_for(n)?;
        }
        Ok(())
    }

    /// Whether `n` more bytes fit.
    pub fn room_for(&self, n: u64) -> Result<(), TusError> {
        match self.offset.checked_add(n) {
            Some(end) if end <= self.length => Ok(()),
            _ => Err(TusError::PastLength {
                length: self.length,
            }),
        }
    }

    /// Records `n` bytes appended; the new offset.
    pub fn advance(&mut self, n: u64) -> Result<u64, TusError> {
        self.room_for(n)?;
        self.offset += n;
        Ok(self.offset)
    }

    pub fn is_complete(&self) -> bool {
        self.offset == self.length
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn headers_are_read_as_the_protocol_says() {
        assert_eq!(check_resumable(Some("1.0.0")), Ok(()));
        assert_eq!(check_resumable(Some("0.2.2")).unwrap_err().status(), 412);
        assert_eq!(check_resumable(None).unwrap_err().status(), 412);
        assert_eq!(parse_number("Upload-Length", Some("1024")), Ok(1024));
        for bad in ["", "-1", "+5", " 5", "1e3", "99999999999999999999"] {
            assert!(parse_number("Upload-Length", Some(bad)).is_err(), "{bad:?}");
        }
        let m = parse_metadata("filename d29ybGRfZG9taW5hdGlvbl9wbGFuLnBkZg==,is_confidential")
            .unwrap();
        assert_eq!(
            m,
            vec![
                ("filename".to_owned(), b"world_domination_plan.pdf".to_vec()),
                ("is_confidential".to_owned(), Vec::new()),
            ]
        );
        assert_eq!(parse_metadata(&encode_metadata(&m)).unwrap(), m);
        assert_eq!(parse_metadata("name YQ").unwrap()[0].1, b"a");
        for bad in ["a b c", "a !!!", "a YQ==,a YQ==", ",", "é YQ=="] {
            assert!(parse_metadata(bad).is_err(), "{bad:?}");
        }
        assert_eq!(http_date(0), "Thu, 01 Jan 1970 00:00:00 GMT");
        assert_eq!(check_length(10, 5).unwrap_err().status(), 413);
    }

    #[test]
    fn an_upload_appends_only_at_its_offset_and_within_its_length() {
        let mut u = Upload {
            length: 10,
            offset: 0,
            expires: 100,
        };
        assert_eq!(u.check_patch(0, Some(4), 50), Ok(()));
        assert_eq!(u.advance(4), Ok(4));
        assert_eq!(
            u.check_patch(0, None, 50),
            Err(TusError::OffsetMismatch {
                expected: 4,
                claimed: 0
            })
        );
        assert_eq!(u.check_patch(4, Some(7), 50).unwrap_err().status(), 400);
        assert_eq!(u.check_patch(4, None, 101), Err(TusError::Expired));
        assert_eq!(u.advance(6), Ok(10));
        assert!(u.is_complete());
        assert!(u.advance(1).is_err());
    }

    proptest! {
        #[test]
        fn metadata_parsing_never_panics(s in "\\PC{0,80}") {
            let _ = parse_metadata(&s);
        }

        #[test]
        fn metadata_round_trips(pairs in proptest::collection::btree_map("[a-z_]{1,12}", proptest::collection::vec(any::<u8>(), 0..40), 0..6)) {
            let pairs: Vec<(String, Vec<u8>)> = pairs.into_iter().collect();
            prop_assert_eq!(parse_metadata(&encode_metadata(&pairs)).unwrap(), pairs);
        }

        #[test]
        fn the_offset_never_passes_the_length(length in 0u64..1000, chunks in proptest::collection::vec(0u64..300, 0..20)) {
            let mut u = Upload { length, offset: 0, expires: 0 };
            for n in chunks {
                let before = u.offset;
                match u.advance(n) {
                    Ok(at) => prop_assert_eq!(at, before + n),
                    Err(_) => prop_assert_eq!(u.offset, before),
                }
                prop_assert!(u.offset <= u.length);
            }
        }
    }
}
