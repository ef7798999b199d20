//! Rentals stream; they do not hand the file over. A renter plays a copy
//! from the home server (DESIGN.md "001" step 6): bounded byte ranges of
//! the marked file, or the HLS segments, handed out no faster than they
//! play. What has been handed out is counted in playback time (a range of
//! the file is worth its share of the duration, a segment its own
//! duration), and it may run ahead of the viewing time counted so far by
//! a lead (a player's buffer), never more. The viewing time is what the
//! rental fee follows, so the fee always covers what the renter holds,
//! but for the lead.

use serde::{Deserialize, Serialize};

/// How a rental is paced.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct Pace {
    /// Playback time a renter may hold beyond what was viewed (what a
    /// player buffers ahead), in milliseconds.
    pub lead_ms: i64,
    /// Largest byte range one request of the file itself is answered
    /// with: a longer (or open-ended) range gets this much.
    pub max_range: u64,
}

impl Default for Pace {
    fn default() -> Self {
        Self {
            lead_ms: 60_000,
            max_range: 1 << 20,
        }
    }
}

/// What a request may be answered with.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Admit {
    /// Serve it; the rental has now been handed `served_ms` in all.
    Serve { served_ms: i64 },
    /// Ahead of the playback: ask again in this many seconds.
    Wait { retry_after_secs: u64 },
}

impl Pace {
    /// Whether a request worth `cost_ms` of playback may be served to a
    /// rental that was handed `served_ms` and viewed `viewed_ms` so far.
    pub fn admit(&self, served_ms: i64, viewed_ms: i64, cost_ms: i64) -> Admit {
        let cost_ms = cost_ms.max(0);
        let allowed = self.lead_ms.saturating_add(viewed_ms.max(0));
        let after = served_ms.max(0).saturating_add(cost_ms);
        if after <= allowed {
            Admit::Serve { served_ms: after }
        } else {
            // Viewing time grows with the wall clock while the renter
            // plays: the excess is how long to wait.
            let secs = (after - allowed + 999) / 1000;
            Admit::Wait {
                retry_after_secs: secs.clamp(1, 3600) as u64,
            }
        }
    }
}

/// The playback time `len` bytes of a copy of `copy_bytes` bytes lasting
/// `duration_ms` are worth (rounded up: a byte is never free).
pub fn range_cost_ms(len: u64, copy_bytes: u64, duration_ms: i64) -> i64 {
    if copy_bytes == 0 || duration_ms <= 0 {
        return 0;
    }
    let ms = (u128::from(len) * duration_ms as u128).div_ceil(u128::from(copy_bytes));
    i64::try_from(ms).unwrap_or(i64::MAX)
}

/// Why a request of a rental's file is not served as asked.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum RentalRangeError {
    #[error("a rental streams: ask for byte ranges (a player does), or play its HLS playlist; the whole file is not handed over")]
    WholeFile,
    #[error("the range lies past the end of the copy")]
    Unsatisfiable,
}

/// The one range a request of a rental's file is answered with: its first
/// range, cut to `max` bytes (an open-ended `bytes=0-`, as players send,
/// gets the first `max`; the player asks on).
pub fn rental_range(
    header: Option<&str>,
    len: u64,
    max: u64,
) -> Result<crate::ByteRange, RentalRangeError> {
    match crate::range::parse_range(header, len) {
        Err(_) => Err(RentalRangeError::Unsatisfiable),
        Ok(crate::RangeRequest::Whole) => Err(RentalRangeError::WholeFile),
        Ok(crate::RangeRequest::Ranges(r)) => {
            let first = r.first().ok_or(RentalRangeError::Unsatisfiable)?;
            Ok(crate::ByteRange {
                first: first.first,
                last: first.last.min(first.first + max.max(1) - 1),
            })
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn a_rental_is_handed_out_no_faster_than_it_plays() {
        let pace = Pace {
            lead_ms: 60_000,
            max_range: 1 << 20,
        };
        // (served so far, viewed so far, cost of the request) → serve?
        let cases: &[(i64, i64, i64, Option<i64>)] = &[
            (0, 0, 10_000, Some(10_000)),
            (50_000, 0, 10_000, Some(60_000)),
            // The lead is spent: wait for the viewing to catch up.
            (55_000, 0, 10_000, None),
            (55_000, 5_000, 10_000, Some(65_000)),
            // A whole 3-minute copy at once: never.
            (0, 0, 180_000, None),
            // Played through (viewing counted): all of it, over time.
            (120_000, 150_000, 60_000, Some(180_000)),
            (0, 0, -5, Some(0)),
        ];
        for (served, viewed, cost, want) in cases {
            let got = pace.admit(*served, *viewed, *cost);
            match want {
                Some(total) => assert_eq!(got, Admit::Serve { served_ms: *total }),
                None => assert!(
                    matches!(got, Admit::Wait { .. }),
                    "{served} {viewed} {cost}"
                ),
            }
        }
        assert_eq!(
            pace.admit(55_000, 0, 10_000),
            Admit::Wait {
                retry_after_secs: 5
            }
        );
    }

    #[test]
    fn a_rental_is_read_in_bounded_ranges_only() {
        let r = |h: Option<&str>| rental_range(h, 10_000_000, 1 << 20);
        assert_eq!(r(None), Err(RentalRangeError::WholeFile));
        assert_eq!(r(Some("items=0-5")), Err(RentalRangeError::WholeFile));
        assert_eq!(
            r(Some("bytes=0-")),
            Ok(crate::ByteRange {
                first: 0,
                last: (1 << 20) - 1
            })
        );
        assert_eq!(
            r(Some("bytes=100-199")),
            Ok(crate::ByteRange {
                first: 100,
                last: 199
            })
        );
        // A suffix range, and several: the first, cut.
        assert_eq!(
            r(Some("bytes=-500")),
            Ok(crate::ByteRange {
                first: 9_999_500,
                last: 9_999_999
            })
        );
        assert_eq!(r(Some("bytes=0-9999999")).map(|b| b.len()), Ok(1 << 20));
        assert_eq!(
            r(Some("bytes=20000000-")),
            Err(RentalRangeError::Unsatisfiable)
        );
    }

    #[test]
    fn a_range_is_worth_its_share_of_the_duration() {
        assert_eq!(range_cost_ms(1_000, 10_000, 60_000), 6_000);
        assert_eq!(range_cost_ms(10_000, 10_000, 60_000), 60_000);
        assert_eq!(range_cost_ms(1, 10_000, 60_000), 6);
        assert_eq!(range_cost_ms(1, 1_000_000_000, 60_000), 1, "never free");
        assert_eq!(range_cost_ms(5, 0, 60_000), 0);
    }

    proptest! {
        #[test]
        fn what_is_handed_out_never_passes_the_viewing_and_the_lead(
            requests in prop::collection::vec((0i64..120_000, 0i64..30_000), 1..60),
        ) {
            let pace = Pace::default();
            let (mut served, mut viewed) = (0i64, 0i64);
            for (cost, watch) in requests {
                viewed += watch;
                if let Admit::Serve { served_ms } = pace.admit(served, viewed, cost) {
                    served = served_ms;
                }
                prop_assert!(served <= viewed + pace.lead_ms);
            }
        }
    }
}
