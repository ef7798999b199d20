//! HTTP Range requests (RFC 9110 §14) and the validators that go with them
//! (ETag, If-Range, If-None-Match), as pure functions over header values.

/// Most ranges served in one multipart answer; more are merged or refused.
pub const MAX_RANGES: usize = 16;

/// An inclusive byte range within a representation.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ByteRange {
    pub first: u64,
    pub last: u64,
}

impl ByteRange {
    pub fn len(&self) -> u64 {
        self.last - self.first + 1
    }

    pub fn is_empty(&self) -> bool {
        false
    }

    /// The `Content-Range` value for this range of `total` bytes.
    pub fn content_range(&self, total: u64) -> String {
        format!("bytes {}-{}/{}", self.first, self.last, total)
    }
}

/// What to send for a request's Range header.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RangeRequest {
    /// No usable Range header: send the whole representation (200).
    Whole,
    /// Send these ranges (206), sorted and non-overlapping.
    Ranges(Vec<ByteRange>),
}

/// A Range header that no byte of the representation satisfies (416).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("range not satisfiable for {len} bytes")]
pub struct RangeError {
    pub len: u64,
}

/// Reads a `Range` header value for a representation of `len` bytes.
/// Syntax errors and other units are ignored (the whole is sent, as RFC
/// 9110 allows); ranges that all lie past the end are a `RangeError`.
pub fn parse_range(header: Option<&str>, len: u64) -> Result<RangeRequest, RangeError> {
    let Some(value) = header else {
        return Ok(RangeRequest::Whole);
    };
    let Some(spec) = value.trim().strip_prefix("bytes=") else {
        return Ok(RangeRequest::Whole);
    };
    let mut ranges = Vec::new();
    for part in spec.split(',') {
        let part = part.trim();
        if part.is_empty() {
            continue;
        }
        let Some((a, b)) = part.split_once('-') else {
            return Ok(RangeRequest::Whole);
        };
        let (a, b) = (a.trim(), b.trim());
        let range = if a.is_empty() {
            // Suffix: the last `b` bytes.
            let Ok(n) = b.parse::<u64>() else {
                return Ok(RangeRequest::Whole);
            };
            if n == 0 || len == 0 {
                continue;
            }
            ByteRange {
                first: len.saturating_sub(n),
                last: len - 1,
            }
        } else {
            let Ok(first) = a.parse::<u64>() else {
                return Ok(RangeRequest::Whole);
            };
            let last = if b.is_empty() {
                u64::MAX
            } else {
                match b.parse::<u64>() {
                    Ok(l) if l >= first => l,
                    _ => return Ok(RangeRequest::Whole),
                }
            };
            if first >= len {
                continue;
            }
            ByteRange {
                first,
                last: last.min(len - 1),
            }
        };
        ranges.push(range);
        if ranges.len() > 4 * MAX_RANGES {
            // A request for hundreds of pieces is abuse; send it all once.
            return Ok(RangeRequest::Whole);
        }
    }
    if ranges.is_empty() {
        return Err(RangeError { len });
    }
    ranges.sort_by_key(|r| r.first);
    let mut merged: Vec<ByteRange> = Vec::with_capacity(ranges.len());
    for r in ranges {
        match merged.last_mut() {
            Some(m) if r.first <= m.last.saturating_add(1) => m.last = m.last.max(r.last),
            _ => merged.push(r),
        }
    }
    if merged.len() > MAX_RANGES {
        return Ok(RangeRequest::Whole);
    }
    Ok(RangeRequest::Ranges(merged))
}

/// Whether an `If-None-Match` value matches `etag` (weak comparison).
pub fn none_match(if_none_match: &str, etag: &str) -> bool {
    let ours = etag.trim_start_matches("W/");
    if_none_match
        .split(',')
        .map(str::trim)
        .any(|t| t == "*" || t.trim_start_matches("W/") == ours)
}

/// Whether an `If-Range` value still names this representation, so the
/// range may be served (else the whole is sent). An entity tag must match
/// strongly; a date must equal our `Last-Modified` exactly.
pub fn if_range_holds(if_range: &str, etag: &str, last_modified: &str) -> bool {
    let v = if_range.trim();
    if v.starts_with('"') {
        v == etag && !etag.starts_with("W/")
    } else if v.starts_with("W/") {
        false
    } else {
        v == last_modified
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn r(first: u64, last: u64) -> ByteRange {
        ByteRange { first, last }
    }

    #[test]
    fn the_usual_forms() {
        assert_eq!(parse_range(None, 100), Ok(RangeRequest::Whole));
        assert_eq!(
            parse_range(Some("bytes=0-9"), 100),
            Ok(RangeRequest::Ranges(vec![r(0, 9)]))
        );
        assert_eq!(
            parse_range(Some("bytes=90-"), 100),
            Ok(RangeRequest::Ranges(vec![r(90, 99)]))
        );
        assert_eq!(
            parse_range(Some("bytes=-10"), 100),
            Ok(RangeRequest::Ranges(vec![r(90, 99)]))
        );
        assert_eq!(
            parse_range(Some("bytes=-1000"), 100),
            Ok(RangeRequest::Ranges(vec![r(0, 99)]))
        );
        assert_eq!(
            parse_range(Some("bytes=50-1000"), 100),
            Ok(RangeRequest::Ranges(vec![r(50, 99)]))
        );
        assert_eq!(
            parse_range(Some("bytes=0-0, 10-19,-5"), 100),
            Ok(RangeRequest::Ranges(vec![r(0, 0), r(10, 19), r(95, 99)]))
        );
    }

    #[test]
    fn overlaps_merge_and_nonsense_is_ignored() {
        assert_eq!(
            parse_range(Some("bytes=10-20,15-30,31-40"), 100),
            Ok(RangeRequest::Ranges(vec![r(10, 40)]))
        );
        for bad in [
            "items=0-1",
            "bytes=5-1",
            "bytes=a-b",
            "bytes=1",
            "bytes=--3",
        ] {
            assert_eq!(
                parse_range(Some(bad), 100),
                Ok(RangeRequest::Whole),
                "{bad}"
            );
        }
    }

    #[test]
    fn ranges_past_the_end_are_unsatisfiable() {
        assert_eq!(
            parse_range(Some("bytes=100-"), 100),
            Err(RangeError { len: 100 })
        );
        assert_eq!(
            parse_range(Some("bytes=-0"), 100),
            Err(RangeError { len: 100 })
        );
        assert_eq!(parse_range(Some("bytes=0-"), 0), Err(RangeError { len: 0 }));
    }

    #[test]
    fn validators() {
        assert!(none_match("\"abc\"", "\"abc\""));
        assert!(none_match("W/\"abc\", \"x\"", "\"abc\""));
        assert!(none_match("*", "\"abc\""));
        assert!(!none_match("\"abd\"", "\"abc\""));
        let date = "Sun, 22 Nov 2026 03:00:00 GMT";
        assert!(if_range_holds("\"abc\"", "\"abc\"", date));
        assert!(!if_range_holds("W/\"abc\"", "\"abc\"", date));
        assert!(!if_range_holds("\"abd\"", "\"abc\"", date));
        assert!(if_range_holds(date, "\"abc\"", date));
        assert!(!if_range_holds(
            "Sat, 21 Nov 2026 03:00:00 GMT",
            "\"abc\"",
            date
        ));
    }

    proptest! {
        #[test]
        fn served_ranges_lie_inside_and_never_overlap(h in "bytes=[0-9,\\- ]{0,40}", len in 0u64..500) {
            match parse_range(Some(&h), len) {
                Ok(RangeRequest::Ranges(rs)) => {
                    prop_assert!(!rs.is_empty() && rs.len() <= MAX_RANGES);
                    for w in rs.windows(2) {
                        prop_assert!(w[0].last + 1 < w[1].first);
                    }
                    for x in rs {
                        prop_assert!(x.first <= x.last && x.last < len);
                    }
                }
                Ok(RangeRequest::Whole) | Err(_) => {}
            }
        }

        #[test]
        fn any_header_is_answered_without_panic(h in ".{0,80}", len in 0u64..u64::MAX) {
            let _ = parse_range(Some(&h), len);
        }
    }
}
