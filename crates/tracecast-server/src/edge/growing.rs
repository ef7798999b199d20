//! Copies served while they are marked: a buyer who asks the edge not to
//! wait (`Prefer: respond-async`) gets the copy's link at once, and the
//! link follows the file as the marking writes it. The FLAC is written in
//! order (STREAMINFO first, never rewritten), so every byte that left is
//! a byte of the finished copy; its SHA-256 and length come with the
//! ticket shown again once it is whole.

use std::io::{Seek, SeekFrom, Write};
use std::path::PathBuf;
use std::sync::Arc;

use axum::body::Body;
use axum::http::{header, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use tokio::io::AsyncReadExt;
use tokio::sync::watch;

use crate::ApiError;

/// How far a copy being marked has been written, and how it ended.
#[derive(Debug, Clone, Default)]
pub(super) struct Grown {
    /// Bytes written to the file, from its start, in order.
    pub bytes: u64,
    /// `Some` once the marking ended: whole, or why not.
    pub end: Option<Result<(), String>>,
}

/// A copy being marked, which its buyer may already download.
pub(super) struct GrowingCopy {
    /// Where it is written, and where it is renamed to when whole (a
    /// follower opening it late finds it at one or the other).
    pub partial: PathBuf,
    pub whole: PathBuf,
    pub media_type: &'static str,
    pub filename: String,
    pub grown: watch::Receiver<Grown>,
}

/// A file being written that tells its followers how far it got: every
/// byte handed to the operating system is readable from another handle.
pub(super) struct Announcing<W> {
    inner: W,
    grown: watch::Sender<Grown>,
    /// The position written next; followers are told only of the
    /// contiguous bytes from the start.
    at: u64,
}

impl<W> Announcing<W> {
    pub fn new(inner: W, grown: watch::Sender<Grown>) -> Self {
        Self {
            inner,
            grown,
            at: 0,
        }
    }
}

impl<W: Write> Write for Announcing<W> {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        let n = self.inner.write(buf)?;
        self.at += n as u64;
        let at = self.at;
        // A write over bytes already announced (a seek back) would change
        // what a follower has; the writers used here never do that, and
        // the count only grows.
        self.grown.send_if_modified(|g| {
            let more = at > g.bytes;
            if more {
                g.bytes = at;
            }
            more
        });
        Ok(n)
    }

    fn flush(&mut self) -> std::io::Result<()> {
        self.inner.flush()
    }
}

impl<W: Seek> Seek for Announcing<W> {
    fn seek(&mut self, pos: SeekFrom) -> std::io::Result<u64> {
        let to = self.inner.seek(pos)?;
        if to < self.grown.borrow().bytes {
            return Err(std::io::Error::other(
                "a copy being served cannot be rewritten",
            ));
        }
        self.at = to;
        Ok(to)
    }
}

/// Bytes sent to a follower at a time.
const CHUNK: u64 = 256 << 10;

/// The copy as it is written: 200 with the bytes as they come (chunked:
/// the length is not known yet), ended when the marking ends; a marking
/// that fails breaks the body off, so the buyer sees an incomplete
/// transfer, never a short copy that looks whole. Ranges are not served
/// while the copy grows (a range's end is not known): the whole is.
pub(super) async fn follow(
    g: Arc<GrowingCopy>,
    head_only: bool,
    max_age: u64,
) -> Result<Response, ApiError> {
    let mut headers = axum::http::HeaderMap::new();
    let mut put = |k: header::HeaderName, v: &str| {
        if let Ok(v) = HeaderValue::from_str(v) {
            headers.insert(k, v);
        }
    };
    put(header::CONTENT_TYPE, g.media_type);
    put(
        header::CACHE_CONTROL,
        &format!("private, max-age={max_age}, no-transform"),
    );
    put(
        header::CONTENT_DISPOSITION,
        &crate::serve::disposition(&g.filename, false),
    );
    // Ranges only once the copy is whole (it has an ETag then).
    put(header::ACCEPT_RANGES, "none");
    if head_only {
        return Ok((StatusCode::OK, headers).into_response());
    }
    let file = match tokio::fs::File::open(&g.partial).await {
        Ok(f) => f,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            tokio::fs::File::open(&g.whole).await.map_err(|_| {
                ApiError::new(
                    StatusCode::INTERNAL_SERVER_ERROR,
                    "mark_failed",
                    "the copy could not be marked; ask for it again",
                )
            })?
        }
        Err(e) => {
            tracing::error!(error = %e, "opening a copy being marked failed");
            return Err(ApiError::new(
                StatusCode::INTERNAL_SERVER_ERROR,
                "io",
                "the copy could not be read",
            ));
        }
    };
    let rx = g.grown.clone();
    let body = futures::stream::unfold(Some((file, 0u64, rx)), |state| async move {
        let (mut file, sent, mut rx) = state?;
        loop {
            let (written, end) = {
                let now = rx.borrow_and_update();
                (now.bytes, now.end.clone())
            };
            if sent < written {
                let n = (written - sent).min(CHUNK) as usize;
                let mut buf = vec![0; n];
                return Some(match file.read_exact(&mut buf).await {
                    Ok(_) => (
                        Ok(bytes::Bytes::from(buf)),
                        Some((file, sent + n as u64, rx)),
                    ),
                    Err(e) => (Err(e), None),
                });
            }
            match end {
                Some(Ok(())) => return None,
                Some(Err(why)) => return Some((Err(std::io::Error::other(why)), None)),
                None => {
                    if rx.changed().await.is_err() {
                        return Some((Err(std::io::Error::other("the marking stopped")), None));
                    }
                }
            }
        }
    });
    Ok((StatusCode::OK, headers, Body::from_stream(body)).into_response())
}
