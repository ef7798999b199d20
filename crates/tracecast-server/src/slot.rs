//! A role that serves before it has started. An edge, a home server or a
//! kiosk learns who it is from an origin that may be reachable only once
//! this process serves (one process holding both); so its routes are
//! mounted first, answer 503 `starting` until the role is set, and the
//! process's `/readyz` reports it as not started yet.

use std::sync::{Arc, OnceLock};

use axum::http::StatusCode;

use crate::ApiError;

/// Where a late-started role will be.
pub struct Slot<T> {
    cell: Arc<OnceLock<Arc<T>>>,
    /// The role's name in answers: "the edge", "the kiosk", ….
    role: &'static str,
}

impl<T> Clone for Slot<T> {
    fn clone(&self) -> Self {
        Self {
            cell: self.cell.clone(),
            role: self.role,
        }
    }
}

impl<T> Slot<T> {
    /// An empty slot for `role` (its routes answer 503 until [`Slot::set`]).
    pub fn new(role: &'static str) -> Self {
        Self {
            cell: Arc::default(),
            role,
        }
    }

    /// A slot that holds a started role already.
    pub fn holding(role: &'static str, started: Arc<T>) -> Self {
        let slot = Self::new(role);
        slot.set(started);
        slot
    }

    /// Puts the started role in; a second call changes nothing.
    pub fn set(&self, started: Arc<T>) {
        let _ = self.cell.set(started);
    }

    pub fn is_started(&self) -> bool {
        self.cell.get().is_some()
    }

    /// The role, or the 503 a caller gets while it starts.
    pub fn started(&self) -> Result<Arc<T>, ApiError> {
        self.cell.get().cloned().ok_or_else(|| {
            ApiError::new(
                StatusCode::SERVICE_UNAVAILABLE,
                "starting",
                format!("{} is starting; retry shortly", self.role),
            )
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn empty_until_set_then_the_first_stays() {
        let slot: Slot<u32> = Slot::new("the edge");
        let e = slot.started().unwrap_err();
        assert_eq!(e.status, StatusCode::SERVICE_UNAVAILABLE);
        assert_eq!(e.message, "the edge is starting; retry shortly");
        assert!(!slot.is_started());
        let seen = slot.clone();
        slot.set(Arc::new(1));
        slot.set(Arc::new(2));
        assert_eq!(*seen.started().unwrap(), 1);
        assert!(Slot::holding("the kiosk", Arc::new(3)).is_started());
    }
}
