//! Serving a kept copy over HTTP with the validators and ranges a
//! download manager or a player expects: ETag (the copy's SHA-256),
//! Last-Modified, If-None-Match, If-Range, single and multiple byte ranges
//! (multipart/byteranges), and HEAD (axum answers it from the GET route
//! without the body).

use std::path::Path;

use axum::body::Body;
use axum::http::{header, HeaderMap, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use futures::StreamExt;
use tokio::io::{AsyncReadExt, AsyncSeekExt};
use tokio_util::io::ReaderStream;
use tracecast_delivery::ab::{slice, Piece};
use tracecast_delivery::range::{if_range_holds, none_match, parse_range, ByteRange, RangeRequest};
use tracecast_store::Blobs;

use crate::ApiError;

/// Where the bytes to serve are.
#[derive(Clone, Copy)]
pub enum Source<'a> {
    /// A file on local disk (kept copies, cached renditions).
    File(&'a Path),
    /// A blob in the object store (the service server's attachments).
    Blob(&'a Blobs, &'a str),
    /// A copy assembled from two files (A/B variants): each piece's bytes
    /// come from the same offsets of file A or B.
    Pieces(&'a [std::path::PathBuf; 2], &'a [Piece]),
}

/// A [`Source`] that outlives the request's borrow (for multipart
/// bodies, read after the handler returned).
#[derive(Clone)]
enum Owned {
    File(std::path::PathBuf),
    Blob(Blobs, String),
    Pieces(std::sync::Arc<([std::path::PathBuf; 2], Vec<Piece>)>),
}

/// What is known of the file to serve.
pub struct Representation<'a> {
    pub source: Source<'a>,
    pub len: u64,
    pub etag: String,
    pub last_modified: String,
    pub media_type: &'a str,
    pub filename: &'a str,
    pub max_age: u64,
    /// Played in place (a player, a browser's audio element) rather than
    /// saved.
    pub inline: bool,
}

const CHUNK: usize = 1 << 20;

type Bytestream = futures::stream::BoxStream<'static, std::io::Result<bytes::Bytes>>;

async fn segment(source: Source<'_>, r: ByteRange) -> std::io::Result<Bytestream> {
    match source {
        Source::File(path) if r.len() <= CHUNK as u64 => {
            // A player's or download manager's range: opened and read in
            // one trip to the blocking pool.
            use std::os::unix::fs::FileExt;
            let path = path.to_owned();
            let bytes = tokio::task::spawn_blocking(move || {
                let f = std::fs::File::open(path)?;
                let mut buf = vec![0u8; r.len() as usize];
                f.read_exact_at(&mut buf, r.first)?;
                Ok::<_, std::io::Error>(bytes::Bytes::from(buf))
            })
            .await
            .map_err(std::io::Error::other)??;
            Ok(futures::stream::once(async move { Ok(bytes) }).boxed())
        }
        Source::File(path) => {
            let mut f = tokio::fs::File::open(path).await?;
            // Fewer, larger reads: each one is a hop to the blocking pool.
            f.set_max_buf_size(CHUNK);
            f.seek(std::io::SeekFrom::Start(r.first)).await?;
            Ok(ReaderStream::with_capacity(f.take(r.len()), CHUNK).boxed())
        }
        Source::Blob(blobs, key) => {
            let s = blobs
                .get_range_stream(key, r.first..r.last + 1)
                .await
                .map_err(std::io::Error::other)?;
            Ok(s.map(|b| b.map_err(std::io::Error::other)).boxed())
        }
        Source::Pieces(files, pieces) => {
            let pieces = slice(pieces, r.first, r.last + 1);
            let [a, b] = files;
            let (a, b) = (a.clone(), b.clone());
            let opened = tokio::task::spawn_blocking(move || {
                Ok::<_, std::io::Error>([std::fs::File::open(a)?, std::fs::File::open(b)?])
            })
            .await
            .map_err(std::io::Error::other)??;
            Ok(pieces_stream(std::sync::Arc::new(opened), pieces))
        }
    }
}

/// Streams pieces of two open files in chunks of about [`CHUNK`], each
/// chunk gathered by positional reads in one trip to the blocking pool
/// (pieces are often a few kilobytes: one trip per piece would be slow).
fn pieces_stream(files: std::sync::Arc<[std::fs::File; 2]>, pieces: Vec<Piece>) -> Bytestream {
    use std::os::unix::fs::FileExt;
    // `at`: bytes of piece `i` already sent.
    let state = (files, std::sync::Arc::new(pieces), 0usize, 0u64);
    futures::stream::try_unfold(state, |(files, pieces, mut i, mut at)| async move {
        if i >= pieces.len() {
            return Ok(None);
        }
        let work_files = files.clone();
        let work_pieces = pieces.clone();
        let (chunk, next_i, next_at) = tokio::task::spawn_blocking(move || {
            let mut buf = bytes::BytesMut::with_capacity(CHUNK);
            while i < work_pieces.len() && buf.len() < CHUNK {
                let p = work_pieces[i];
                let n = ((p.len() - at) as usize).min(CHUNK - buf.len());
                let old = buf.len();
                buf.resize(old + n, 0);
                work_files[usize::from(p.b)].read_exact_at(&mut buf[old..], p.from + at)?;
                at += n as u64;
                if at == p.len() {
                    i += 1;
                    at = 0;
                }
            }
            Ok::<_, std::io::Error>((buf.freeze(), i, at))
        })
        .await
        .map_err(std::io::Error::other)??;
        Ok(Some((chunk, (files, pieces, next_i, next_at))))
    })
    .boxed()
}

fn io_error(e: std::io::Error) -> ApiError {
    tracing::error!(error = %e, "reading a kept copy failed");
    ApiError::new(
        StatusCode::INTERNAL_SERVER_ERROR,
        "io",
        "the copy could not be read",
    )
}

/// A Content-Disposition naming `filename` (only printable ASCII kept,
/// no quotes or backslashes: the name cannot break out of its quotes).
pub fn disposition(filename: &str, inline: bool) -> String {
    let safe_name: String = filename
        .chars()
        .filter(|c| c.is_ascii_graphic() && *c != '"' && *c != '\\' || *c == ' ')
        .collect();
    format!(
        "{}; filename=\"{safe_name}\"",
        if inline { "inline" } else { "attachment" }
    )
}

pub async fn respond(rep: &Representation<'_>, headers: &HeaderMap) -> Result<Response, ApiError> {
    let h = |name: header::HeaderName| headers.get(name).and_then(|v| v.to_str().ok());
    let mut out = HeaderMap::new();
    let put = |out: &mut HeaderMap, k: header::HeaderName, v: &str| {
        if let Ok(v) = HeaderValue::from_str(v) {
            out.insert(k, v);
        }
    };
    put(&mut out, header::ETAG, &rep.etag);
    put(&mut out, header::LAST_MODIFIED, &rep.last_modified);
    put(&mut out, header::ACCEPT_RANGES, "bytes");
    // Personal copies: never in a shared cache, never recompressed.
    put(
        &mut out,
        header::CACHE_CONTROL,
        &format!("private, max-age={}, no-transform", rep.max_age),
    );
    put(
        &mut out,
        header::CONTENT_DISPOSITION,
        &disposition(rep.filename, rep.inline),
    );
    if let Some(inm) = h(header::IF_NONE_MATCH) {
        if none_match(inm, &rep.etag) {
            return Ok((StatusCode::NOT_MODIFIED, out).into_response());
        }
    }
    let range_header = match h(header::IF_RANGE) {
        Some(ir) if !if_range_holds(ir, &rep.etag, &rep.last_modified) => None,
        _ => h(header::RANGE),
    };
    let ranges = match parse_range(range_header, rep.len) {
        Ok(r) => r,
        Err(e) => {
            put(
                &mut out,
                header::CONTENT_RANGE,
                &format!("bytes */{}", e.len),
            );
            return Ok((StatusCode::RANGE_NOT_SATISFIABLE, out).into_response());
        }
    };
    match ranges {
        RangeRequest::Whole => {
            put(&mut out, header::CONTENT_TYPE, rep.media_type);
            put(&mut out, header::CONTENT_LENGTH, &rep.len.to_string());
            if rep.len == 0 {
                return Ok((StatusCode::OK, out, Body::empty()).into_response());
            }
            let s = segment(
                rep.source,
                ByteRange {
                    first: 0,
                    last: rep.len - 1,
                },
            )
            .await
            .map_err(io_error)?;
            Ok((StatusCode::OK, out, Body::from_stream(s)).into_response())
        }
        RangeRequest::Ranges(rs) if rs.len() == 1 => {
            let r = rs[0];
            put(&mut out, header::CONTENT_TYPE, rep.media_type);
            put(&mut out, header::CONTENT_RANGE, &r.content_range(rep.len));
            put(&mut out, header::CONTENT_LENGTH, &r.len().to_string());
            let s = segment(rep.source, r).await.map_err(io_error)?;
            Ok((StatusCode::PARTIAL_CONTENT, out, Body::from_stream(s)).into_response())
        }
        RangeRequest::Ranges(rs) => {
            let boundary = format!("tracecast-{:016x}", rand::random::<u64>());
            let heads: Vec<String> = rs
                .iter()
                .enumerate()
                .map(|(i, r)| {
                    format!(
                        "{}--{boundary}\r\nContent-Type: {}\r\nContent-Range: {}\r\n\r\n",
                        if i == 0 { "" } else { "\r\n" },
                        rep.media_type,
                        r.content_range(rep.len)
                    )
                })
                .collect();
            let tail = format!("\r\n--{boundary}--\r\n");
            let total: u64 = heads.iter().map(|h| h.len() as u64).sum::<u64>()
                + rs.iter().map(|r| r.len()).sum::<u64>()
                + tail.len() as u64;
            put(
                &mut out,
                header::CONTENT_TYPE,
                &format!("multipart/byteranges; boundary={boundary}"),
            );
            put(&mut out, header::CONTENT_LENGTH, &total.to_string());
            // Each part opens its own reader when the body gets to it.
            let owned = match rep.source {
                Source::File(p) => Owned::File(p.to_owned()),
                Source::Blob(b, k) => Owned::Blob(b.clone(), k.to_owned()),
                Source::Pieces(f, p) => Owned::Pieces(std::sync::Arc::new((f.clone(), p.to_vec()))),
            };
            let parts = futures::stream::iter(rs.into_iter().zip(heads))
                .then(move |(r, head)| {
                    let owned = owned.clone();
                    async move {
                        let head =
                            futures::stream::once(async move { Ok(bytes::Bytes::from(head)) });
                        let source = match &owned {
                            Owned::File(p) => Source::File(p),
                            Owned::Blob(b, k) => Source::Blob(b, k),
                            Owned::Pieces(fp) => Source::Pieces(&fp.0, &fp.1),
                        };
                        match segment(source, r).await {
                            Ok(s) => head.chain(s).boxed(),
                            Err(e) => head
                                .chain(futures::stream::once(async move { Err(e) }))
                                .boxed(),
                        }
                    }
                })
                .flatten()
                .chain(futures::stream::once(async move {
                    Ok(bytes::Bytes::from(tail))
                }));
            Ok((StatusCode::PARTIAL_CONTENT, out, Body::from_stream(parts)).into_response())
        }
    }
}
