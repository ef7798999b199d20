//! A/B video at the edge: a buyer's own HLS playlist, whose init and
//! segment URLs are signed for their delivery and name only a segment's
//! place, never its variant. The edge picks the variant from the buyer's
//! sequence, pulls the file from the origin once (hash-checked against the
//! content's manifest) and serves it with Range.

use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use axum::extract::{Path, Query, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use sha2::{Digest, Sha256};
use tracecast_delivery::ab::{sequence_from_text, sequence_to_text, MediaPlaylist};
use tracecast_delivery::api::HlsInfo;
use tracecast_delivery::{Ticket, Tier};
use tracecast_mark::Payload;
use tracecast_store::EdgeCopy;

use super::{origin_error, Edge, EdgeSlot, LinkQuery};
use crate::openapi::ErrorBody;
use crate::ApiError;

/// Kept copies of A/B video are files `{delivery}.hls` holding the
/// buyer's sequence.
pub(super) const HLS_SUFFIX: &str = ".hls";

/// Scope of the segment links' signatures (apart from copy links').
const SCOPE: &str = "tracecast-hls-segment/v1";

/// The variant file a place (`init.mp4` or `{i}.m4s`) names for this
/// buyer's sequence.
fn variant_file(name: &str, sequence: &[bool]) -> Option<String> {
    if name == "init.mp4" {
        return Some("a/init.mp4".into());
    }
    // `{i}.m4s`: players want a segment's extension in its URL.
    let i: usize = name.strip_suffix(".m4s")?.parse().ok()?;
    Some(segment_file(i, *sequence.get(i)?))
}

/// The variant files a buyer's copy is made of, in order: the init
/// segment, then each segment in the variant the sequence picks.
fn copy_files(sequence: &[bool]) -> Vec<String> {
    std::iter::once("a/init.mp4".to_owned())
        .chain(
            sequence
                .iter()
                .enumerate()
                .map(|(i, &b)| segment_file(i, b)),
        )
        .collect()
}

/// Segment `i` of variant B (`b`) or A.
fn segment_file(i: usize, b: bool) -> String {
    format!("{}/seg_{i:05}.m4s", if b { "b" } else { "a" })
}

impl Edge {
    /// A content's HLS variants, if it has them.
    pub(super) async fn hls_info(
        &self,
        content: i64,
        tier: Tier,
    ) -> Result<Option<HlsInfo>, ApiError> {
        Ok(self
            .rendition_info(content, tier)
            .await?
            .and_then(|r| r.hls))
    }

    /// A variant file through the edge's disk (pulled once, hash-checked).
    async fn hls_file(
        &self,
        content: i64,
        hls: &HlsInfo,
        file: &str,
    ) -> Result<(PathBuf, u64, String), ApiError> {
        let (bytes, sha) = hls.files.get(file).cloned().ok_or_else(|| {
            ApiError::new(StatusCode::NOT_FOUND, "unknown_segment", "no such segment")
        })?;
        let path = self
            .config
            .dir
            .join("variants/hls")
            .join(content.to_string())
            .join(file);
        if tokio::fs::metadata(&path)
            .await
            .is_ok_and(|m| m.len() == bytes)
        {
            return Ok((path, bytes, sha));
        }
        let got = self
            .origin
            .hls_file(content, file, &sha)
            .await
            .map_err(origin_error)?;
        if let Some(dir) = path.parent() {
            tokio::fs::create_dir_all(dir).await.map_err(io)?;
        }
        let tmp = path.with_extension("partial");
        super::cache::write_durable(&tmp, &got).await.map_err(io)?;
        tokio::fs::rename(&tmp, &path).await.map_err(io)?;
        Ok((path, bytes, sha))
    }
}

fn io(e: std::io::Error) -> ApiError {
    ApiError::new(StatusCode::INTERNAL_SERVER_ERROR, "io", e.to_string())
}

/// The buyer's sequence of variants: payload (with the home or kiosk on
/// the way, if any) and Tardos codeword, from the mark key.
fn buyer_sequence(e: &Edge, ticket: &Ticket, hls: &HlsInfo) -> Vec<bool> {
    let payload = Payload {
        content_server: ticket.content_server,
        edge: e.id,
        home: ticket.site.as_ref().map_or(0, |s| s.id),
        user: ticket.user,
    };
    let scheme = tracecast_mark::fingerprint::Scheme::for_content(
        &e.mark_key,
        ticket.content as u64,
        hls.segments as usize,
    );
    scheme.sequence(u64::from(ticket.user), &payload, &e.mark_key)
}

/// Makes a buyer's A/B video copy: their sequence, kept; the delivery
/// reported. The copy's bytes are those of the segments it names; its
/// hash is over the sequence (the segments are hash-checked one by one).
pub(super) async fn make_copy(
    e: &Arc<Edge>,
    ticket: &Ticket,
    hls: &HlsInfo,
) -> Result<EdgeCopy, ApiError> {
    let sequence = buyer_sequence(e, ticket, hls);
    let text = sequence_to_text(&sequence);
    let bytes: u64 = copy_files(&sequence)
        .iter()
        .filter_map(|f| hls.files.get(f).map(|(n, _)| *n))
        .sum();
    let file = format!("{}{HLS_SUFFIX}", ticket.delivery);
    super::cache::write_durable(&e.copies.join(&file), text.as_bytes())
        .await
        .map_err(io)?;
    let copy = e
        .keep_copy(
            ticket,
            file,
            bytes,
            hex::encode(Sha256::digest(text.as_bytes())),
            "application/vnd.apple.mpegurl",
            "m3u8",
        )
        .await?;
    tracing::info!(
        delivery = ticket.delivery,
        user = ticket.user,
        content = ticket.content,
        segments = hls.segments,
        "HLS copy assembled from A/B segments"
    );
    Ok(copy)
}

/// Makes the copy of A/B video an edge sends on to a home server or kiosk:
/// the init segment and the buyer's variant of every segment, one after
/// another, which is a fragmented MP4 that plays and seeks as it is. The
/// sequence names the site too, so a copy leaked there is told apart.
pub(super) async fn make_site_copy(
    e: &Arc<Edge>,
    ticket: &Ticket,
    hls: &HlsInfo,
) -> Result<EdgeCopy, ApiError> {
    let sequence = buyer_sequence(e, ticket, hls);
    let mut parts = Vec::with_capacity(sequence.len() + 1);
    for file in copy_files(&sequence) {
        parts.push(e.hls_file(ticket.content, hls, &file).await?.0);
    }
    let file = format!("{}.mp4", ticket.delivery);
    let path = e.copies.join(&file);
    let (bytes, sha256) = tokio::task::spawn_blocking(move || {
        use std::io::Write;
        let tmp = path.with_extension("mp4.partial");
        let mut out = std::io::BufWriter::with_capacity(1 << 20, std::fs::File::create(&tmp)?);
        let mut hash = Sha256::new();
        let mut len = 0u64;
        for p in &parts {
            let b = std::fs::read(p)?;
            hash.update(&b);
            out.write_all(&b)?;
            len += b.len() as u64;
        }
        out.into_inner().map_err(|e| e.into_error())?.sync_all()?;
        std::fs::rename(&tmp, &path)?;
        Ok::<_, std::io::Error>((len, hex::encode(hash.finalize())))
    })
    .await
    .map_err(|x| ApiError::new(StatusCode::INTERNAL_SERVER_ERROR, "io", x.to_string()))?
    .map_err(io)?;
    let copy = e
        .keep_copy(ticket, file, bytes, sha256, "video/mp4", "mp4")
        .await?;
    tracing::info!(
        delivery = ticket.delivery,
        user = ticket.user,
        content = ticket.content,
        segments = hls.segments,
        bytes,
        "video copy for a site assembled from A/B segments"
    );
    Ok(copy)
}

async fn sequence_of(e: &Edge, c: &EdgeCopy) -> Result<Vec<bool>, ApiError> {
    tokio::fs::read_to_string(e.copies.join(&c.file))
        .await
        .ok()
        .and_then(|t| sequence_from_text(&t))
        .ok_or_else(|| ApiError::new(StatusCode::GONE, "gone", "this copy is no longer kept"))
}

/// The buyer's playlist: the variant's durations, every URI signed for
/// this delivery until `expires`.
pub(super) async fn playlist(
    e: &Edge,
    c: &EdgeCopy,
    base: &str,
    expires: i64,
) -> Result<Response, ApiError> {
    let tier = c.tier;
    let hls = e.hls_info(c.content_id, tier).await?.ok_or_else(|| {
        ApiError::new(StatusCode::GONE, "gone", "the content's variants are gone")
    })?;
    let sequence = sequence_of(e, c).await?;
    let template = MediaPlaylist::parse(&hls.playlist)
        .map_err(|x| ApiError::new(StatusCode::BAD_GATEWAY, "bad_playlist", x.to_string()))?;
    let link = |name: &str| {
        let sig = e
            .link_key
            .sign_scoped(SCOPE, &format!("{}/{name}", c.delivery_id), expires);
        format!(
            "{base}/v1/copies/{}/hls/{name}?expires={expires}&sig={sig}",
            c.delivery_id
        )
    };
    if template.segments.len() != sequence.len() {
        return Err(ApiError::new(
            StatusCode::BAD_GATEWAY,
            "bad_playlist",
            "the playlist and the copy disagree on the segments",
        ));
    }
    let mine = template.personal(link("init.mp4"), |i| link(&format!("{i}.m4s")));
    Ok((
        [
            ("content-type", "application/vnd.apple.mpegurl"),
            ("cache-control", "private, no-store"),
        ],
        mine.render(),
    )
        .into_response())
}

/// The init segment (`init.mp4`) or segment `i` (`{i}.m4s`) of a buyer's
/// A/B video, in the variant their sequence picks, behind the signed link
/// their playlist gives (the link is the authority: no token); byte ranges
/// as for a copy, HEAD the headers alone.
#[utoipa::path(get, path = "/edge/v1/copies/{delivery}/hls/{name}", tag = "edge", security(()),
    params(
        ("delivery" = i64, Path, description = "The delivery the copy was made for."),
        ("name" = String, Path, description = "`init.mp4`, or `{i}.m4s` for segment i (from 0)."),
        ("expires" = i64, Query, description = "When the link stops working (Unix seconds), as the playlist gives it."),
        ("sig" = String, Query, description = "The link's signature, as the playlist gives it."),
        ("Range" = Option<String>, Header, description = "Byte ranges (`bytes=0-1023`, several comma-separated)."),
        ("If-Range" = Option<String>, Header, description = "Serve the ranges only if the segment is still this ETag; else the whole segment."),
        ("If-None-Match" = Option<String>, Header, description = "The ETag the caller holds: 304 if it is still the segment's.")),
    responses(
        (status = 200, description = "The whole segment, played in place.",
            content((Vec<u8> = "video/mp4"), (Vec<u8> = "video/iso.segment")),
            headers(
                ("ETag" = String, description = "The segment file's SHA-256, quoted."),
                ("Accept-Ranges" = String, description = "`bytes`."),
                ("Cache-Control" = String, description = "`private`, until the link expires."))),
        (status = 206, description = "The ranges asked for: one range with Content-Range, or several as `multipart/byteranges`.",
            content_type = "application/octet-stream", body = Vec<u8>,
            headers(("Content-Range" = String, description = "The range served and the segment's length."))),
        (status = 304, description = "If-None-Match names the segment's ETag."),
        (status = 400, description = "The delivery is not a number.", body = ErrorBody),
        (status = 403, description = "The link lacks `expires` or `sig`, was altered, is for another segment, or has expired.", body = ErrorBody),
        (status = 404, description = "No such segment in this copy, or the origin no longer knows the content.", body = ErrorBody),
        (status = 410, description = "The copy is no longer kept, is not an A/B video copy, its delivery was replaced, or the content's variants are gone.", body = ErrorBody),
        (status = 416, description = "No range asked for lies within the segment.", body = ErrorBody,
            headers(("Content-Range" = String, description = "`bytes */LENGTH`: the segment's length."))),
        (status = 500, description = "The segment could not be stored or read.", body = ErrorBody),
        (status = 502, description = "The origin could not be reached for the segment, or its answer did not check.", body = ErrorBody),
        (status = 503, description = "The edge is starting, or its store is unavailable; retry.", body = ErrorBody)))]
pub(super) async fn segment(
    State(slot): State<EdgeSlot>,
    method: axum::http::Method,
    headers: HeaderMap,
    Path((delivery, name)): Path<(String, String)>,
    query: Result<Query<LinkQuery>, axum::extract::rejection::QueryRejection>,
) -> Result<Response, ApiError> {
    let e = slot.started()?;
    let (delivery, q) = super::link_parts(&delivery, query)?;
    e.link_key
        .verify_scoped(
            SCOPE,
            &format!("{delivery}/{name}"),
            q.expires,
            &q.sig,
            tracecast_store::now_ms() / 1000,
        )
        .map_err(|x| ApiError::forbidden(x.to_string()))?;
    let (_serving, c) = e
        .serving(delivery, method != axum::http::Method::HEAD)
        .await?;
    if !c.file.ends_with(HLS_SUFFIX) {
        return Err(ApiError::new(
            StatusCode::GONE,
            "gone",
            "this copy is no longer kept",
        ));
    }
    let tier = c.tier;
    let hls = e.hls_info(c.content_id, tier).await?.ok_or_else(|| {
        ApiError::new(StatusCode::GONE, "gone", "the content's variants are gone")
    })?;
    let sequence = sequence_of(&e, &c).await?;
    let file = variant_file(&name, &sequence).ok_or_else(|| {
        ApiError::new(StatusCode::NOT_FOUND, "unknown_segment", "no such segment")
    })?;
    let (path, len, sha) = e.hls_file(c.content_id, &hls, &file).await?;
    let rep = crate::serve::Representation {
        source: crate::serve::Source::File(&path),
        len,
        etag: format!("\"{sha}\""),
        last_modified: httpdate::fmt_http_date(std::time::UNIX_EPOCH + Duration::from_secs(0)),
        media_type: if name == "init.mp4" {
            "video/mp4"
        } else {
            "video/iso.segment"
        },
        filename: &name,
        max_age: (q.expires - tracecast_store::now_ms() / 1000).max(0) as u64,
        inline: true,
    };
    crate::serve::respond(&rep, &headers).await
}
