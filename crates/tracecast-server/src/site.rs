//! What home servers and kiosks share (DESIGN.md "001" steps 5-7): learning
//! who they are from the origin, taking a marked copy pushed by an edge
//! (the origin's ticket names this site; the body's SHA-256 is checked),
//! and sending their reports to the origin through the mailbox.

use std::path::Path;
use std::time::Duration;

use axum::body::Body;
use axum::http::{HeaderMap, StatusCode};
use ed25519_dalek::VerifyingKey;
use sha2::{Digest, Sha256};
use tracecast_client::{MailboxClient, OriginClient, PostOptions};
use tracecast_delivery::api::{AccountInfo, OriginInfo};
use tracecast_delivery::{CopyVoucher, SiteReport, Ticket, TicketError};
use tracecast_mailbox::BoxName;

use crate::ApiError;

/// Header carrying the origin's ticket on an edge's push.
pub const TICKET_HEADER: &str = "tracecast-ticket";
/// Header naming the copy's file.
pub const FILENAME_HEADER: &str = "tracecast-filename";
/// Header carrying the pushing edge's signed voucher for the copy.
pub const VOUCHER_HEADER: &str = "tracecast-copy-voucher";
/// How long after a ticket's expiry its copy may still be pushed (marking
/// a long work takes a while).
const PUSH_GRACE_SECS: i64 = 3600;

/// Why a home server or kiosk could not start.
#[derive(Debug, thiserror::Error)]
pub enum SiteError {
    #[error("reaching the origin at {0}: {1}")]
    Origin(String, tracecast_client::ClientError),
    #[error("the token is a {0} account's, not a {1}'s")]
    WrongKind(
        tracecast_delivery::CallerKind,
        tracecast_delivery::AccountKind,
    ),
    #[error("the origin's answer is malformed: {0}")]
    Malformed(&'static str),
    #[error("data directory {0}: {1}")]
    Io(std::path::PathBuf, std::io::Error),
    #[error(transparent)]
    Secret(#[from] tracecast_secrets::SecretFileError),
}

/// Who a home server or kiosk is, as the origin knows it.
#[derive(Debug, Clone)]
pub struct SiteIdentity {
    pub id: u16,
    pub name: String,
    pub origin_key: VerifyingKey,
    pub reports_box: BoxName,
}

/// The origin's description and the account a token belongs to, asked
/// again while the origin is unreachable, for up to `wait` (a server
/// started beside its origin may come up first).
pub(crate) async fn whoami_at_origin(
    origin_url: &str,
    token: &str,
    wait: Duration,
) -> Result<(OriginInfo, AccountInfo), tracecast_client::ClientError> {
    let origin = OriginClient::new(origin_url, token)?;
    let deadline = tokio::time::Instant::now() + wait;
    loop {
        let got: Result<_, tracecast_client::ClientError> =
            async { Ok((origin.origin_info().await?, origin.account().await?)) }.await;
        match got {
            Ok(v) => return Ok(v),
            Err(e) if e.is_transient() && tokio::time::Instant::now() < deadline => {
                tracing::info!(error = %e, "origin not reachable yet; retrying");
                tokio::time::sleep(Duration::from_millis(500)).await;
            }
            Err(e) => return Err(e),
        }
    }
}

impl SiteIdentity {
    /// Asks the origin (retrying for up to `wait` while it is unreachable).
    pub async fn fetch(
        origin_url: &str,
        token: &str,
        kind: tracecast_delivery::AccountKind,
        wait: Duration,
    ) -> Result<Self, SiteError> {
        let (info, account) = whoami_at_origin(origin_url, token, wait)
            .await
            .map_err(|e| SiteError::Origin(origin_url.to_owned(), e))?;
        if account.kind != kind {
            return Err(SiteError::WrongKind(account.kind, kind));
        }
        let key: [u8; 32] = hex::decode(&info.ticket_key)
            .ok()
            .and_then(|b| b.try_into().ok())
            .ok_or(SiteError::Malformed("ticket key"))?;
        Ok(Self {
            id: u16::try_from(account.id).map_err(|_| SiteError::Malformed("site id"))?,
            name: account.name,
            origin_key: VerifyingKey::from_bytes(&key)
                .map_err(|_| SiteError::Malformed("ticket key"))?,
            reports_box: info
                .reports_box
                .parse()
                .map_err(|_| SiteError::Malformed("reports box"))?,
        })
    }
}

/// An edge's push, its headers checked (the body is not read yet).
pub(crate) struct Push {
    pub ticket: Ticket,
    /// The SHA-256 the edge vouched for (lower-case hex): the body must
    /// have it.
    pub sha256: String,
    /// The copy's length, as the edge vouched.
    pub bytes: u64,
    pub media_type: String,
    pub filename: String,
}

/// Checks an edge's push before its body is read: a ticket for this site,
/// the voucher of the edge that ticket names (signed with its push key,
/// for this delivery and site: the buyer holds the ticket but cannot sign
/// one), the SHA-256 it vouches for, a plain file name.
pub(crate) fn read_push(
    headers: &HeaderMap,
    origin_key: &VerifyingKey,
    site: u16,
) -> Result<Push, ApiError> {
    let h = |name: &str| headers.get(name).and_then(|v| v.to_str().ok());
    let ticket = h(TICKET_HEADER)
        .ok_or_else(|| ApiError::forbidden("a push carries the origin's ticket"))?;
    let now = tracecast_store::now_ms() / 1000;
    let ticket = Ticket::verify_for_site(ticket, origin_key, site, now, PUSH_GRACE_SECS).map_err(
        |t| match t {
            TicketError::Malformed(_) => ApiError::bad_request(t.to_string()),
            _ => ApiError::forbidden(t.to_string()),
        },
    )?;
    let voucher = CopyVoucher::verify(h(VOUCHER_HEADER), &ticket, site)
        .map_err(|e| ApiError::new(StatusCode::FORBIDDEN, "not_the_edge", e.to_string()))?;
    let sha256 = voucher.sha256.to_ascii_lowercase();
    if h(tracecast_client::SHA256_HEADER).map(str::to_ascii_lowercase) != Some(sha256.clone()) {
        return Err(ApiError::bad_request(
            "the push's SHA-256 header is not the one its voucher names",
        ));
    }
    let filename = h(FILENAME_HEADER)
        .filter(|f| {
            !f.is_empty()
                && f.len() <= 200
                && f.bytes()
                    .all(|b| b.is_ascii_alphanumeric() || b"._-".contains(&b))
                && !f.starts_with('.')
        })
        .ok_or_else(|| {
            ApiError::bad_request("a push names its file: letters, digits, '.', '_', '-'")
        })?
        .to_owned();
    let media_type = h("content-type")
        .unwrap_or("application/octet-stream")
        .to_owned();
    Ok(Push {
        ticket,
        sha256,
        bytes: voucher.bytes,
        media_type,
        filename,
    })
}

/// Streams a pushed body to `path` (through a temporary name, synced),
/// hashing as it goes; refuses more than `max` bytes or a body whose
/// SHA-256 is not `want`, leaving nothing behind. Answers the length.
pub(crate) async fn store_body(
    body: Body,
    path: &Path,
    want: &str,
    max: u64,
) -> Result<u64, ApiError> {
    use futures::StreamExt;
    use tokio::io::AsyncWriteExt;
    // A name of its own: two pushes of one delivery may overlap.
    let tmp = path.with_extension(format!("partial-{:016x}", rand::random::<u64>()));
    let io = |e: std::io::Error| {
        ApiError::new(
            StatusCode::INTERNAL_SERVER_ERROR,
            "store",
            format!("storing the copy: {e}"),
        )
    };
    let result = async {
        let mut file = tokio::fs::File::create(&tmp).await.map_err(io)?;
        let mut sha = Sha256::new();
        let mut len = 0u64;
        let mut stream = body.into_data_stream();
        while let Some(chunk) = stream.next().await {
            let chunk =
                chunk.map_err(|e| ApiError::bad_request(format!("the push broke off: {e}")))?;
            len += chunk.len() as u64;
            if len > max {
                return Err(ApiError::new(
                    StatusCode::PAYLOAD_TOO_LARGE,
                    "too_large",
                    format!("a copy may be at most {max} bytes"),
                ));
            }
            sha.update(&chunk);
            file.write_all(&chunk).await.map_err(io)?;
        }
        if hex::encode(sha.finalize()) != want {
            return Err(ApiError::new(
                StatusCode::UNPROCESSABLE_ENTITY,
                "integrity",
                "the copy's SHA-256 does not match: it was damaged on the way; push it again",
            ));
        }
        file.sync_all().await.map_err(io)?;
        tokio::fs::rename(&tmp, path).await.map_err(io)?;
        Ok(len)
    }
    .await;
    if result.is_err() {
        let _ = tokio::fs::remove_file(&tmp).await;
    }
    result
}

/// Sends a report to the origin's box; the idempotency key makes a resend
/// land once.
pub(crate) async fn send_report(
    mailbox: &MailboxClient,
    reports_box: &BoxName,
    report: &SiteReport,
) -> Result<(), tracecast_client::ClientError> {
    mailbox
        .post(
            reports_box,
            SiteReport::MEDIA_TYPE,
            serde_json::to_vec(report).expect("serialises"),
            &PostOptions {
                idempotency_key: Some(format!("site-{}", report.event_id())),
                ..PostOptions::default()
            },
        )
        .await?;
    Ok(())
}
