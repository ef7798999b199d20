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
    /// Downloads following it now (bounded: one link must not hold the
    /// edge's connections while it is marked).
    pub followers: std::sync::atomic::AtomicUsize,
    /// Set when the delivery is revoked: the marking's next write fails,
    /// so it ends (its followers broken off) and lets the revocation in,
    /// rather than holding it (and every order after it) for the rest of
    /// a long marking.
    pub stop: Arc<std::sync::atomic::AtomicBool>,
}

/// Followers of one copy at a time.
const MOST_FOLLOWERS: usize = 4;

/// Bytes held back from followers until the copy is kept: a marking that
/// breaks off at its very end (the edge stopped, its store failed) leaves
/// the buyer without a whole copy, as it leaves the delivery unbilled.
const HELD_BACK: u64 = 256 << 10;

/// One follower counted while its transfer lasts.
struct Following(Arc<GrowingCopy>);

impl Drop for Following {
    fn drop(&mut self) {
        self.0
            .followers
            .fetch_sub(1, std::sync::atomic::Ordering::Relaxed);
    }
}

/// A file being written that tells its followers how far it got: every
/// byte handed to the operating system is readable from another handle.
pub(super) struct Announcing<W> {
    inner: W,
    grown: watch::Sender<Grown>,
    /// The position written next; followers are told only of the
    /// contiguous bytes from the start.
    at: u64,
    /// Once set, every write fails (see [`GrowingCopy::stop`]).
    stop: Arc<std::sync::atomic::AtomicBool>,
}

impl<W> Announcing<W> {
    pub fn new(inner: W, grown: watch::Sender<Grown>) -> Self {
        Self {
            inner,
            grown,
            at: 0,
            stop: Default::default(),
        }
    }

    /// Writes fail once `stop` is set.
    pub fn stopped_by(mut self, stop: Arc<std::sync::atomic::AtomicBool>) -> Self {
        self.stop = stop;
        self
    }
}

impl<W: Write> Write for Announcing<W> {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        if self.stop.load(std::sync::atomic::Ordering::Relaxed) {
            return Err(std::io::Error::other("the delivery was revoked"));
        }
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
    /// Only asks where the writing is: a copy being served is written in
    /// order, never rewritten nor skipped ahead.
    fn seek(&mut self, pos: SeekFrom) -> std::io::Result<u64> {
        let here = match pos {
            SeekFrom::Start(p) => p == self.at,
            SeekFrom::Current(d) => d == 0,
            SeekFrom::End(_) => false,
        };
        if !here {
            return Err(std::io::Error::other(
                "a copy being served is written in order",
            ));
        }
        self.inner.seek(pos)
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
    if g.followers
        .fetch_add(1, std::sync::atomic::Ordering::Relaxed)
        >= MOST_FOLLOWERS
    {
        g.followers
            .fetch_sub(1, std::sync::atomic::Ordering::Relaxed);
        return Err(ApiError::new(
            StatusCode::TOO_MANY_REQUESTS,
            "busy",
            format!("{MOST_FOLLOWERS} downloads already follow this copy; retry when it is whole"),
        )
        .with_retry_after(5));
    }
    let following = Following(g.clone());
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
    let body = futures::stream::unfold(Some((file, 0u64, rx, following)), |state| async move {
        let (mut file, sent, mut rx, following) = state?;
        loop {
            let (written, end) = {
                let now = rx.borrow_and_update();
                (now.bytes, now.end.clone())
            };
            // The tail waits until the copy is kept (and so billed).
            let written = match end {
                Some(Ok(())) => written,
                _ => written.saturating_sub(HELD_BACK),
            };
            if sent < written {
                let n = (written - sent).min(CHUNK) as usize;
                let mut buf = vec![0; n];
                return Some(match file.read_exact(&mut buf).await {
                    Ok(_) => (
                        Ok(bytes::Bytes::from(buf)),
                        Some((file, sent + n as u64, rx, following)),
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

#[cfg(test)]
mod tests {
    use super::*;
    use futures::StreamExt;
    use std::time::Duration;

    /// A copy being written to a file in `dir`, and its writer's end.
    fn growing(dir: &std::path::Path) -> (Arc<GrowingCopy>, watch::Sender<Grown>, std::fs::File) {
        let partial = dir.join("7.flac.partial");
        let file = std::fs::File::create(&partial).unwrap();
        let (tx, rx) = watch::channel(Grown::default());
        let g = Arc::new(GrowingCopy {
            partial,
            whole: dir.join("7.flac"),
            media_type: "audio/flac",
            filename: "copy.flac".into(),
            grown: rx,
            followers: Default::default(),
            stop: Default::default(),
        });
        (g, tx, file)
    }

    /// What arrives of `body` within `wait`.
    async fn arrived(body: &mut axum::body::BodyDataStream, wait: Duration) -> (Vec<u8>, bool) {
        let mut got = Vec::new();
        loop {
            match tokio::time::timeout(wait, body.next()).await {
                Ok(Some(Ok(chunk))) => got.extend_from_slice(&chunk),
                Ok(None) => return (got, true),
                Ok(Some(Err(e))) => panic!("{e}"),
                Err(_) => return (got, false),
            }
        }
    }

    #[tokio::test]
    async fn a_follower_gets_what_was_written_but_the_tail_only_once_kept() {
        let dir = tempfile::tempdir().unwrap();
        let (g, tx, file) = growing(dir.path());
        let mut w = Announcing::new(file, tx.clone());
        let data: Vec<u8> = (0..(HELD_BACK as usize + 300_000))
            .map(|i| (i % 251) as u8)
            .collect();
        w.write_all(&data[..200_000]).unwrap();
        let r = follow(g.clone(), false, 60).await.unwrap();
        assert_eq!(r.headers()["accept-ranges"], "none");
        assert!(r.headers().get("content-length").is_none());
        let mut body = r.into_body().into_data_stream();
        // Less than the held-back tail written: nothing goes yet.
        assert_eq!(
            arrived(&mut body, Duration::from_millis(200)).await,
            (Vec::new(), false)
        );
        w.write_all(&data[200_000..]).unwrap();
        let (first, ended) = arrived(&mut body, Duration::from_millis(300)).await;
        assert!(!ended);
        assert_eq!(first.len() as u64, data.len() as u64 - HELD_BACK);
        assert_eq!(first[..], data[..first.len()]);
        // Kept: the rest, and the end.
        tx.send_modify(|g| g.end = Some(Ok(())));
        let (rest, ended) = arrived(&mut body, Duration::from_secs(2)).await;
        assert!(ended);
        assert_eq!([first, rest].concat(), data);
        // The follower is no longer counted.
        assert_eq!(g.followers.load(std::sync::atomic::Ordering::Relaxed), 0);
    }

    #[tokio::test]
    async fn a_marking_that_fails_or_stops_breaks_the_transfer_off() {
        for stopped in [false, true] {
            let dir = tempfile::tempdir().unwrap();
            let (g, tx, file) = growing(dir.path());
            let mut w = Announcing::new(file, tx.clone());
            w.write_all(&vec![1; HELD_BACK as usize + 10]).unwrap();
            let mut body = follow(g, false, 60)
                .await
                .unwrap()
                .into_body()
                .into_data_stream();
            assert_eq!(body.next().await.unwrap().unwrap().len(), 10);
            if stopped {
                // The marking task went away without a word.
                drop(w);
                drop(tx);
            } else {
                tx.send_modify(|g| g.end = Some(Err("marking failed".into())));
            }
            let end = tokio::time::timeout(Duration::from_secs(2), body.next())
                .await
                .expect("never hangs");
            assert!(matches!(end, Some(Err(_))), "stopped: {stopped}");
        }
    }

    #[tokio::test]
    async fn a_copy_has_a_bounded_number_of_followers() {
        let dir = tempfile::tempdir().unwrap();
        let (g, _tx, _file) = growing(dir.path());
        let mut held = Vec::new();
        for _ in 0..MOST_FOLLOWERS {
            held.push(follow(g.clone(), false, 60).await.unwrap());
        }
        let refused = follow(g.clone(), false, 60).await.unwrap_err();
        assert_eq!(refused.status, StatusCode::TOO_MANY_REQUESTS);
        // HEAD is no transfer.
        assert!(follow(g.clone(), true, 60).await.is_ok());
        held.pop();
        assert!(follow(g.clone(), false, 60).await.is_ok());
    }

    #[test]
    fn a_copy_being_served_is_never_rewritten_nor_skipped() {
        let (tx, _rx) = watch::channel(Grown::default());
        let mut w = Announcing::new(std::io::Cursor::new(Vec::new()), tx.clone());
        w.write_all(b"fLaC and more").unwrap();
        assert_eq!(tx.borrow().bytes, 13);
        assert_eq!(w.stream_position().unwrap(), 13);
        assert_eq!(w.seek(SeekFrom::Start(13)).unwrap(), 13);
        for pos in [
            SeekFrom::Start(0),
            SeekFrom::Start(20),
            SeekFrom::Current(-1),
            SeekFrom::End(0),
        ] {
            assert!(w.seek(pos).is_err(), "{pos:?}");
        }
        w.write_all(b"!").unwrap();
        assert_eq!(tx.borrow().bytes, 14);
    }

    #[test]
    fn a_revoked_copy_stops_being_written() {
        let (tx, _rx) = watch::channel(Grown::default());
        let stop = Arc::new(std::sync::atomic::AtomicBool::new(false));
        let mut w =
            Announcing::new(std::io::Cursor::new(Vec::new()), tx.clone()).stopped_by(stop.clone());
        w.write_all(b"fLaC").unwrap();
        stop.store(true, std::sync::atomic::Ordering::Relaxed);
        assert!(w.write_all(b" and more").is_err());
        assert_eq!(tx.borrow().bytes, 4, "nothing more announced");
    }
}
