//! How long mail is kept, and how often an unanswered notification is
//! repeated.

use serde::{Deserialize, Serialize};

use crate::ProtocolError;

const DAY: u64 = 24 * 3600;

/// Retention of one mailbox service.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct Retention {
    /// Time to live of a pending message whose sender set none (seconds).
    pub default_ttl: u64,
    /// Longest time to live a sender may ask for (seconds).
    pub max_ttl: u64,
    /// How long processed messages stay in the processed store (seconds).
    pub processed_keep: u64,
    /// At most this many processed messages per box; the oldest go first.
    pub processed_max: u64,
    /// How long the tombstone of a deleted message answers repeated
    /// instructions (seconds).
    pub tombstone_keep: u64,
}

impl Default for Retention {
    fn default() -> Self {
        Self {
            default_ttl: 14 * DAY,
            max_ttl: 365 * DAY,
            processed_keep: 30 * DAY,
            processed_max: 10_000,
            tombstone_keep: 7 * DAY,
        }
    }
}

impl Retention {
    /// When a message accepted at `now_ms` expires, for the sender's TTL.
    pub fn expires_at(&self, now_ms: i64, ttl: Option<u64>) -> Result<i64, ProtocolError> {
        let ttl = ttl.unwrap_or(self.default_ttl);
        if ttl > self.max_ttl {
            return Err(ProtocolError::TtlTooLong(ttl, self.max_ttl));
        }
        Ok(now_ms.saturating_add((ttl as i64).saturating_mul(1000)))
    }

    /// Processed messages finished before this instant are purged.
    pub fn processed_cutoff(&self, now_ms: i64) -> i64 {
        now_ms.saturating_sub((self.processed_keep as i64).saturating_mul(1000))
    }

    /// Tombstones of deletes before this instant are purged.
    pub fn tombstone_cutoff(&self, now_ms: i64) -> i64 {
        now_ms.saturating_sub((self.tombstone_keep as i64).saturating_mul(1000))
    }
}

/// Exponential backoff for repeated notifications: `first`, then doubling,
/// never more than `max` (milliseconds).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct Backoff {
    pub first_ms: u64,
    pub max_ms: u64,
}

impl Default for Backoff {
    fn default() -> Self {
        Self {
            first_ms: 30_000,
            max_ms: 15 * 60_000,
        }
    }
}

impl Backoff {
    /// Wait before notification number `attempt + 1` (attempt 0 is the
    /// first repeat).
    pub fn delay_ms(&self, attempt: u32) -> u64 {
        let factor = 1u64.checked_shl(attempt.min(40)).unwrap_or(u64::MAX);
        self.first_ms.saturating_mul(factor).min(self.max_ms)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ttl_is_bounded() {
        let r = Retention::default();
        assert_eq!(r.expires_at(1_000, Some(5)).unwrap(), 6_000);
        assert_eq!(
            r.expires_at(0, None).unwrap(),
            (r.default_ttl * 1000) as i64
        );
        assert!(matches!(
            r.expires_at(0, Some(r.max_ttl + 1)),
            Err(ProtocolError::TtlTooLong(..))
        ));
    }

    #[test]
    fn backoff_doubles_up_to_its_cap() {
        let b = Backoff {
            first_ms: 100,
            max_ms: 1_000,
        };
        let d: Vec<u64> = (0..6).map(|a| b.delay_ms(a)).collect();
        assert_eq!(d, [100, 200, 400, 800, 1000, 1000]);
        assert_eq!(b.delay_ms(u32::MAX), 1000);
    }
}
