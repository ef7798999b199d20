//! A body that counts its bytes as they pass, and holds a guard until it
//! is finished or dropped (a download that is cut off counts what left).

use std::pin::Pin;
use std::task::{Context, Poll};

use axum::body::{Body, Bytes};
use http_body::{Body as HttpBody, Frame, SizeHint};
use prometheus_client::metrics::counter::Counter;

pub(crate) struct Counted<G> {
    inner: Body,
    counter: Counter,
    _guard: G,
}

impl<G> Counted<G> {
    pub(crate) fn new(inner: Body, counter: Counter, guard: G) -> Self {
        Self {
            inner,
            counter,
            _guard: guard,
        }
    }
}

impl<G: Unpin> HttpBody for Counted<G> {
    type Data = Bytes;
    type Error = axum::Error;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, axum::Error>>> {
        let polled = Pin::new(&mut self.inner).poll_frame(cx);
        if let Poll::Ready(Some(Ok(frame))) = &polled {
            if let Some(data) = frame.data_ref() {
                self.counter.inc_by(data.len() as u64);
            }
        }
        polled
    }

    // Forwarded so a known length still becomes Content-Length.
    fn size_hint(&self) -> SizeHint {
        self.inner.size_hint()
    }

    fn is_end_stream(&self) -> bool {
        self.inner.is_end_stream()
    }
}

/// One request in flight: its slot under the concurrency limit and its
/// place in the in-flight gauge, both given back when the answer's body is
/// done with.
pub(crate) struct InFlight {
    _permit: tokio::sync::OwnedSemaphorePermit,
}

impl InFlight {
    pub(crate) fn new(permit: tokio::sync::OwnedSemaphorePermit) -> Self {
        Self { _permit: permit }
    }
}

impl Drop for InFlight {
    fn drop(&mut self) {
        super::metrics().in_flight.dec();
    }
}
