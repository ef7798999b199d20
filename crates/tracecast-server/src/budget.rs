//! What one request may make a server hold, where the caller decides it:
//! the body each route reads into memory. Bodies that stream to disk (an
//! ingest, a trace, a push of a copy, a tus upload, a gateway's content)
//! have limits of their own in the settings; docs/config.md lists every
//! route's limit under "Request budgets".

/// A JSON request body on most routes: 64 KiB holds any of their requests
/// many times over.
pub const JSON_BODY: usize = 64 << 10;

/// A JSON body that is a list the caller sizes: an edge's holdings, a
/// batch of licences to convert, a package order (1 MiB).
pub const JSON_LIST_BODY: usize = 1 << 20;

use std::collections::HashSet;
use std::hash::Hash;
use std::sync::Mutex;

use axum::http::StatusCode;

use crate::ApiError;

/// Expensive work a caller may run one at a time (a trace, an ingest, a
/// batch of conversions): a second while the first runs is answered 429
/// with `Retry-After`, so one account cannot take every worker.
pub(crate) struct OneAtATime<K> {
    busy: Mutex<HashSet<K>>,
    /// The error code and what the work is called in its message.
    code: &'static str,
    what: &'static str,
}

/// A caller's work in progress; its slot frees when dropped.
pub(crate) struct Slot<'a, K: Eq + Hash + Clone> {
    of: &'a OneAtATime<K>,
    who: K,
}

impl<K: Eq + Hash + Clone> Drop for Slot<'_, K> {
    fn drop(&mut self) {
        if let Ok(mut busy) = self.of.busy.lock() {
            busy.remove(&self.who);
        }
    }
}

impl<K: Eq + Hash + Clone> OneAtATime<K> {
    pub(crate) fn new(code: &'static str, what: &'static str) -> Self {
        Self {
            busy: Mutex::new(HashSet::new()),
            code,
            what,
        }
    }

    /// Admits `who`'s work, or answers 429 when theirs is running.
    pub(crate) fn admit(&self, who: K) -> Result<Slot<'_, K>, ApiError> {
        let mut busy = self.busy.lock().unwrap_or_else(|e| e.into_inner());
        if !busy.insert(who.clone()) {
            return Err(ApiError::new(
                StatusCode::TOO_MANY_REQUESTS,
                self.code,
                format!("{} of this account is running: one at a time", self.what),
            )
            .with_retry_after(2));
        }
        Ok(Slot { of: self, who })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn one_at_a_time_per_caller_and_free_again_when_done() {
        let limit = OneAtATime::new("busy", "an ingest");
        let first = limit.admit(1).unwrap();
        let refused = limit.admit(1).err().expect("a second at once is refused");
        assert_eq!(refused.status, StatusCode::TOO_MANY_REQUESTS);
        assert_eq!(refused.retry_after, Some(2));
        assert!(refused.message.contains("an ingest of this account"));
        let other = limit.admit(2).expect("another caller is not held up");
        drop(first);
        let again = limit.admit(1).expect("free once the first is done");
        drop((other, again));
    }
}
