//! The edge role (delivery server, DESIGN.md "001" steps 3-4): a buyer
//! shows the origin's purchase ticket; the edge takes the rendition from
//! its pull-through cache (fetching and hash-checking it from the origin
//! if needed), writes the buyer's mark (user id, this edge's id, the
//! content server id), keeps the copy so an interrupted download resumes
//! on the same bytes without marking again, serves it with HTTP Range
//! behind a signed, expiring link, and reports the delivery to the origin
//! through the mailbox.

mod cache;

use std::collections::HashMap;
use std::path::{Path as FsPath, PathBuf};
use std::sync::atomic::{AtomicI64, Ordering};
use std::sync::Arc;
use std::time::Duration;

use axum::extract::rejection::JsonRejection;
use axum::extract::{Path, Query, State};
use axum::http::{header, HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use bytes::Bytes;
use ed25519_dalek::VerifyingKey;
use serde::Deserialize;
use sha2::{Digest, Sha256};
use tokio::sync::{RwLock, Semaphore};
use tracecast_client::{MailboxClient, OriginClient, PostOptions};
use tracecast_delivery::ab::{FlacFrames, Mp3Frames, Mp3Variants, Piece};
use tracecast_delivery::api::{
    AbInfo, ContentInfo, CopyInfo, DeliveryRequest, EdgeState, Holding, PushReceipt,
};
use tracecast_delivery::{
    copy_plan, CopyFacts, CopyPlan, CopyRefusal, DeliveryReport, Destination, LinkKey, Mode,
    PrePosition, Ticket, TicketError, Tier,
};
use tracecast_mailbox::{BoxName, Disposition, FetchRequest, Want};
use tracecast_mark::{MarkKey, Payload};
use tracecast_media::{MediaError, PictureFormat};
use tracecast_protect::{ContentKey, KeyId};
use tracecast_store::{EdgeCopy, EdgeId, Store, UserId};

pub use cache::{Cache, CacheError};
mod growing;
mod hls;

use crate::openapi::ErrorBody;
use crate::ops::metrics::DeliveryOutcome;
use crate::ApiError;

/// Settings of an edge.
#[derive(Debug, Clone)]
pub struct EdgeConfig {
    /// The origin's base URL (`http://host:port`).
    pub origin: String,
    /// This edge's account token (from `tracecast account add edge`).
    pub token: String,
    /// Where the cache, kept copies and link key live.
    pub dir: PathBuf,
    /// Bytes of renditions kept in the cache.
    pub cache_bytes: u64,
    /// How long a download link works.
    pub link_ttl_secs: i64,
    /// How long a marked copy is kept for resumed downloads.
    pub copy_ttl_secs: i64,
    /// How often the edge tells the origin what it holds.
    pub state_every: Duration,
    /// Copies marked at once (each takes a core).
    pub workers: usize,
    /// Bytes of decoded audio kept in memory for protected copies (a
    /// 5-minute stereo track is about 106 MB); other copies stream from
    /// the cache file.
    pub decoded_bytes: u64,
    /// The mailbox that takes delivery reports, when it is not at the
    /// origin's URL.
    pub mailbox: Option<String>,
}

impl EdgeConfig {
    pub fn new(origin: &str, token: &str, dir: &FsPath) -> Self {
        Self {
            origin: origin.trim_end_matches('/').to_owned(),
            token: token.trim().to_owned(),
            dir: dir.to_owned(),
            cache_bytes: 2 << 30,
            link_ttl_secs: 3600,
            copy_ttl_secs: 24 * 3600,
            state_every: Duration::from_secs(2),
            workers: std::thread::available_parallelism().map_or(2, |n| n.get()),
            decoded_bytes: 512 << 20,
            mailbox: None,
        }
    }
}

/// Why an edge could not start.
#[derive(Debug, thiserror::Error)]
pub enum EdgeError {
    #[error("reaching the origin at {0}: {1}")]
    Origin(String, tracecast_client::ClientError),
    #[error("the token is a {0} account's, not an edge's")]
    NotAnEdge(tracecast_delivery::CallerKind),
    #[error("edge id {0} does not fit in a mark")]
    IdOutOfRange(i64),
    #[error("the origin's ticket key is malformed")]
    OriginKey,
    #[error("edge data directory {0}: {1}")]
    Io(PathBuf, std::io::Error),
    #[error(transparent)]
    Secret(#[from] tracecast_secrets::SecretFileError),
}

/// Who an edge is, as the origin knows it.
#[derive(Debug, Clone)]
pub struct EdgeIdentity {
    pub id: u16,
    pub name: String,
    /// Verifies the origin's purchase tickets.
    pub origin_key: VerifyingKey,
    /// Verifies the origin's watermarking tokens, if it has a CDN: this
    /// edge then serves CDN copies by the same tokens (`/cdn/…`).
    pub wmt_key: Option<tracecast_delivery::wmt::WmtVerifier>,
    /// Where delivery reports go.
    pub reports_box: BoxName,
    /// Where pre-position orders arrive.
    pub own_box: BoxName,
}

impl EdgeIdentity {
    /// Asks the origin (retrying for up to `wait` while it is unreachable).
    pub async fn fetch(config: &EdgeConfig, wait: Duration) -> Result<Self, EdgeError> {
        let (info, account) = crate::site::whoami_at_origin(&config.origin, &config.token, wait)
            .await
            .map_err(|e| EdgeError::Origin(config.origin.clone(), e))?;
        if account.kind != tracecast_delivery::AccountKind::Edge {
            return Err(EdgeError::NotAnEdge(account.kind));
        }
        let key_bytes: [u8; 32] = hex::decode(&info.ticket_key)
            .ok()
            .and_then(|b| b.try_into().ok())
            .ok_or(EdgeError::OriginKey)?;
        Ok(Self {
            id: u16::try_from(account.id).map_err(|_| EdgeError::IdOutOfRange(account.id))?,
            name: account.name,
            origin_key: VerifyingKey::from_bytes(&key_bytes).map_err(|_| EdgeError::OriginKey)?,
            wmt_key: match &info.wmt_key {
                Some(k) => Some(
                    tracecast_delivery::wmt::WmtVerifier::from_spki_base64(k)
                        .map_err(|_| EdgeError::OriginKey)?,
                ),
                None => None,
            },
            reports_box: info.reports_box.parse().map_err(|_| EdgeError::OriginKey)?,
            own_box: account.box_name.parse().map_err(|_| EdgeError::OriginKey)?,
        })
    }
}

/// The running edge.
pub struct Edge {
    id: u16,
    name: String,
    origin: OriginClient,
    mailbox: MailboxClient,
    reports_box: BoxName,
    own_box: BoxName,
    origin_key: VerifyingKey,
    wmt_key: Option<tracecast_delivery::wmt::WmtVerifier>,
    mark_key: MarkKey,
    link_key: LinkKey,
    /// Signs this edge's pushes to homes and kiosks (its public half goes
    /// to the origin with the edge's state, and from there into tickets).
    push_key: ed25519_dalek::SigningKey,
    store: Store,
    cache: Cache,
    /// A/B variants of renditions (issue 10), A and B in a cache each.
    variants: [Cache; 2],
    /// The frame indexes of FLAC variants, as pulled, and as read (by
    /// their SHA-256; bounded like `verified`).
    variant_index: Cache,
    flac_frames: std::sync::Mutex<HashMap<String, Arc<FlacFrames>>>,
    /// MP3 variants (A and B) and their frame indexes, likewise.
    mp3_variants: [Cache; 2],
    mp3_index: Cache,
    mp3_frames: std::sync::Mutex<HashMap<String, Arc<Mp3Frames>>>,
    copies: PathBuf,
    config: EdgeConfig,
    work: Semaphore,
    in_flight: AtomicI64,
    /// Per delivery: marking and revoking hold its gate alone, serving
    /// holds it shared, so a revocation never misses bytes that left.
    gates: Gates,
    /// Deliveries whose bytes this process has seen leave (their
    /// `served_at` is written once; bounded like `verified`).
    served: std::sync::Mutex<std::collections::HashSet<i64>>,
    /// Decoded audio renditions kept in memory while they sell.
    decoded: std::sync::Mutex<Decoded>,
    /// Kept copies known whole in this run (made now, or hashed since a
    /// restart): copies are not fsynced, so one from before a crash is
    /// checked against its recorded SHA-256 before it is served again.
    /// Their records are kept here too, so a range request of a player or
    /// download manager costs no query.
    verified: std::sync::Mutex<HashMap<i64, EdgeCopy>>,
    /// Copies being marked that their buyers may already follow
    /// (`Prefer: respond-async`), until they are kept.
    growing: std::sync::Mutex<HashMap<i64, Arc<growing::GrowingCopy>>>,
    catalog: RwLock<HashMap<i64, ContentInfo>>,
    /// Pushes copies to home servers and kiosks.
    http: reqwest::Client,
}

impl std::fmt::Debug for Edge {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Edge")
            .field("id", &self.id)
            .field("name", &self.name)
            .finish()
    }
}

impl Edge {
    /// Opens the cache and starts the edge's background work (state
    /// reports, pre-position orders, delayed reports, expiry).
    pub fn start(
        store: Store,
        mark_key: MarkKey,
        config: EdgeConfig,
        who: EdgeIdentity,
    ) -> Result<Arc<Self>, EdgeError> {
        let origin_err = |e| EdgeError::Origin(config.origin.clone(), e);
        let origin = OriginClient::new(&config.origin, &config.token).map_err(origin_err)?;
        let mailbox = MailboxClient::new(
            config.mailbox.as_deref().unwrap_or(&config.origin),
            &config.token,
        )
        .map_err(origin_err)?;
        let io = |p: &FsPath| {
            let p = p.to_owned();
            move |e| EdgeError::Io(p, e)
        };
        std::fs::create_dir_all(&config.dir).map_err(io(&config.dir))?;
        let link_key = LinkKey::from_bytes(tracecast_secrets::read_or_make(
            &config.dir.join("link.key"),
            "link key",
        )?);
        // 32 random bytes, like a link key, used as an Ed25519 seed.
        let push_key = ed25519_dalek::SigningKey::from_bytes(&tracecast_secrets::read_or_make(
            &config.dir.join("push.key"),
            "push key",
        )?);
        let cache_dir = config.dir.join("cache");
        let cache = Cache::open(&cache_dir, config.cache_bytes).map_err(io(&cache_dir))?;
        let variants = ["a", "b"].map(|v| {
            let dir = config.dir.join("variants").join(v);
            Cache::open(&dir, config.cache_bytes).map_err(io(&dir))
        });
        let [a, b] = variants;
        let variants = [a?, b?];
        let index_dir = config.dir.join("variants").join("index");
        let variant_index = Cache::open(&index_dir, config.cache_bytes).map_err(io(&index_dir))?;
        let mp3_variants = ["mp3-a", "mp3-b"].map(|v| {
            let dir = config.dir.join("variants").join(v);
            Cache::open(&dir, config.cache_bytes).map_err(io(&dir))
        });
        let [a, b] = mp3_variants;
        let mp3_variants = [a?, b?];
        let mp3_index_dir = config.dir.join("variants").join("mp3-index");
        let mp3_index =
            Cache::open(&mp3_index_dir, config.cache_bytes).map_err(io(&mp3_index_dir))?;
        let copies = config.dir.join("copies");
        std::fs::create_dir_all(&copies).map_err(io(&copies))?;
        // Copies a stopped process was writing: never kept, never served
        // whole; a ticket shown again marks them anew.
        for entry in std::fs::read_dir(&copies).map_err(io(&copies))?.flatten() {
            if entry.file_name().to_string_lossy().ends_with(".partial") {
                let _ = std::fs::remove_file(entry.path());
            }
        }
        let config_decoded = config.decoded_bytes;
        let edge = Arc::new(Self {
            id: who.id,
            name: who.name,
            origin,
            mailbox,
            reports_box: who.reports_box,
            own_box: who.own_box,
            origin_key: who.origin_key,
            wmt_key: who.wmt_key,
            mark_key,
            link_key,
            push_key,
            store,
            cache,
            variants,
            variant_index,
            flac_frames: Default::default(),
            mp3_variants,
            mp3_index,
            mp3_frames: Default::default(),
            copies,
            work: Semaphore::new(config.workers.max(1)),
            config,
            in_flight: AtomicI64::new(0),
            gates: Gates::default(),
            served: Default::default(),
            decoded: std::sync::Mutex::new(Decoded::new(config_decoded)),
            verified: Default::default(),
            growing: Default::default(),
            catalog: RwLock::default(),
            http: reqwest::Client::builder()
                .connect_timeout(Duration::from_secs(5))
                .build()
                .map_err(|e| {
                    EdgeError::Origin(
                        String::new(),
                        tracecast_client::ClientError::Local(e.to_string()),
                    )
                })?,
        });
        tokio::spawn(edge.clone().state_loop());
        tokio::spawn(edge.clone().pre_position_loop());
        tokio::spawn(edge.clone().report_loop());
        tokio::spawn(edge.clone().expiry_loop());
        tracing::info!(edge = %edge.name, id = edge.id, cache = %cache_dir.display(), "edge started");
        Ok(edge)
    }

    /// Waits, up to `grace`, for the markings in progress (those answered
    /// early run on after their request) to end, so a stopping edge keeps
    /// and reports the copies its buyers are following.
    pub async fn settle(&self, grace: Duration) {
        let deadline = tokio::time::Instant::now() + grace;
        while self.in_flight.load(Ordering::Relaxed) > 0 {
            if tokio::time::Instant::now() >= deadline {
                tracing::warn!(
                    markings = self.in_flight.load(Ordering::Relaxed),
                    "the grace period ended with copies still being marked"
                );
                return;
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    pub fn id(&self) -> u16 {
        self.id
    }

    pub fn name(&self) -> &str {
        &self.name
    }

    pub fn cache(&self) -> &Cache {
        &self.cache
    }

    /// A content's record from the origin (kept: renditions never change).
    async fn content(&self, id: i64) -> Result<ContentInfo, tracecast_client::ClientError> {
        if let Some(c) = self.catalog.read().await.get(&id) {
            return Ok(c.clone());
        }
        let c = self.origin.content(id).await?;
        self.catalog.write().await.insert(id, c.clone());
        Ok(c)
    }

    /// The key of a protected delivery's copy, which its ticket names,
    /// from the origin (each copy has its own; nothing is kept after).
    async fn copy_key(&self, delivery: i64, key_id: &str) -> Result<(KeyId, ContentKey), ApiError> {
        let kid: KeyId = key_id
            .parse()
            .map_err(|_| ApiError::bad_request("the ticket's key id is malformed"))?;
        let unavailable = |why: String| {
            ApiError::new(
                StatusCode::SERVICE_UNAVAILABLE,
                "key_unavailable",
                format!("the copy's key is not available now: {why}"),
            )
        };
        let answer = self
            .origin
            .copy_key(delivery)
            .await
            .map_err(|e| unavailable(e.to_string()))?;
        use base64::Engine;
        let key = base64::engine::general_purpose::URL_SAFE_NO_PAD
            .decode(&answer.key)
            .ok()
            .and_then(|b| ContentKey::from_slice(&b).ok())
            .ok_or_else(|| unavailable("the origin's answer holds no key".into()))?;
        if answer.key_id != key_id {
            return Err(unavailable(
                "the origin's key is not the one the ticket names".into(),
            ));
        }
        Ok((kid, key))
    }

    /// The rendition's bytes through the cache; whether it was a hit.
    async fn rendition(&self, content: i64, tier: Tier) -> Result<(Bytes, bool), ApiError> {
        use tokio::io::AsyncReadExt;
        let (file, hit) = self.rendition_file(content, tier).await?;
        let mut bytes = Vec::new();
        tokio::fs::File::from_std(file)
            .read_to_end(&mut bytes)
            .await
            .map_err(|e| cache_error(CacheError::Io(e)))?;
        Ok((Bytes::from(bytes), hit))
    }

    /// The rendition's cache file, open (pulled into the cache first
    /// when missing), and whether it was a hit.
    async fn rendition_file(
        &self,
        content: i64,
        tier: Tier,
    ) -> Result<(std::fs::File, bool), ApiError> {
        let info = self.content(content).await.map_err(origin_error)?;
        let r = info
            .renditions
            .iter()
            .find(|r| r.tier == tier)
            .ok_or_else(|| unknown_rendition(content, tier))?;
        let sha = r.sha256.clone();
        let got = self
            .cache
            .get_file(Holding { content, tier }, &sha, || {
                self.origin.rendition(content, tier, &sha)
            })
            .await
            .map_err(cache_error)?;
        crate::ops::metrics().cache_lookup("rendition", got.1);
        Ok(got)
    }

    /// A rendition's A/B geometry, if it has variants.
    async fn ab_info(&self, content: i64, tier: Tier) -> Result<Option<AbInfo>, ApiError> {
        Ok(self.rendition_info(content, tier).await?.and_then(|r| r.ab))
    }

    /// What the origin says of one of a content's renditions.
    async fn rendition_info(
        &self,
        content: i64,
        tier: Tier,
    ) -> Result<Option<tracecast_delivery::api::RenditionInfo>, ApiError> {
        let info = self.content(content).await.map_err(origin_error)?;
        Ok(info.renditions.into_iter().find(|r| r.tier == tier))
    }

    /// Two variant files through their caches: `(which, sha256, length)`
    /// each, pulled from the origin (hash-checked) when missing and checked
    /// for length; none is read into memory here.
    async fn pair_files(
        &self,
        caches: &[Cache; 2],
        content: i64,
        tier: Tier,
        pair: [(&str, &str, u64); 2],
    ) -> Result<[PathBuf; 2], ApiError> {
        let h = Holding { content, tier };
        let held = || match (caches[0].lookup(&h), caches[1].lookup(&h)) {
            (Some(a), Some(b)) => Some([a, b]),
            _ => None,
        };
        if let Some(files) = held() {
            return Ok(files);
        }
        for (cache, (which, sha, want)) in caches.iter().zip(pair) {
            let (file, _) = cache
                .get_file(h, sha, || self.origin.ab_variant(content, tier, which, sha))
                .await
                .map_err(cache_error)?;
            let len = file.metadata().map(|m| m.len()).map_err(|x| {
                ApiError::new(StatusCode::SERVICE_UNAVAILABLE, "cache", x.to_string())
            })?;
            if len != want {
                return Err(ApiError::new(
                    StatusCode::BAD_GATEWAY,
                    "bad_variant",
                    format!("variant {which} of {content}/{tier} is not the recorded length"),
                ));
            }
        }
        held().ok_or_else(|| {
            ApiError::new(
                StatusCode::SERVICE_UNAVAILABLE,
                "cache",
                "the variants were evicted as they arrived; try again",
            )
        })
    }

    /// A frame index through its cache (`which` at the origin), read by
    /// `decode` once and kept read in `memo` (by its SHA-256; bounded).
    async fn frame_index<T>(
        &self,
        (cache, memo): (&Cache, &std::sync::Mutex<HashMap<String, Arc<T>>>),
        content: i64,
        tier: Tier,
        which: &str,
        sha: &str,
        decode: impl FnOnce(&[u8]) -> Result<T, tracecast_delivery::ab::AssembleError>,
    ) -> Result<Arc<T>, ApiError> {
        if let Some(known) = memo.lock().expect("lock").get(sha).cloned() {
            return Ok(known);
        }
        let h = Holding { content, tier };
        let (bytes, _) = cache
            .get(h, sha, || self.origin.ab_variant(content, tier, which, sha))
            .await
            .map_err(cache_error)?;
        let read = Arc::new(decode(&bytes).map_err(bad_variant)?);
        let mut known = memo.lock().expect("lock");
        if known.len() >= 256 {
            known.clear();
        }
        known.insert(sha.to_owned(), read.clone());
        Ok(read)
    }

    /// The pieces of the copy `sequence` makes of a rendition's variants:
    /// WAV variants cut by their geometry, FLAC ones spliced frame by
    /// frame by their index.
    async fn ab_pieces(
        &self,
        content: i64,
        tier: Tier,
        ab: &AbInfo,
        sequence: &[bool],
    ) -> Result<Vec<Piece>, ApiError> {
        let Some(flac) = &ab.flac else {
            return ab.geometry.pieces(sequence).map_err(bad_variant);
        };
        let frames = self
            .frame_index(
                (&self.variant_index, &self.flac_frames),
                content,
                tier,
                "index",
                &flac.index_sha256,
                |b| FlacFrames::decode(b, flac),
            )
            .await?;
        frames.pieces(sequence).map_err(bad_variant)
    }

    /// The pieces of a copy as MP3: `sequence` over the MP3 variants'
    /// frames, by their index.
    async fn mp3_pieces(
        &self,
        content: i64,
        tier: Tier,
        ab: &AbInfo,
        mp3: &Mp3Variants,
        sequence: &[bool],
    ) -> Result<Vec<Piece>, ApiError> {
        let frames = self
            .frame_index(
                (&self.mp3_index, &self.mp3_frames),
                content,
                tier,
                "mp3-index",
                &mp3.index_sha256,
                |b| Mp3Frames::decode(b, mp3),
            )
            .await?;
        frames
            .pieces(ab.geometry.units, mp3, sequence)
            .map_err(bad_variant)
    }

    /// The MP3 variant files, pulled (and checked) when missing.
    async fn mp3_files(
        &self,
        content: i64,
        tier: Tier,
        mp3: &Mp3Variants,
    ) -> Result<[PathBuf; 2], ApiError> {
        self.pair_files(
            &self.mp3_variants,
            content,
            tier,
            [
                ("mp3-a", &mp3.a_sha256, mp3.bytes),
                ("mp3-b", &mp3.b_sha256, mp3.bytes),
            ],
        )
        .await
    }

    /// The variant files to serve an assembled copy from.
    async fn variant_files(
        &self,
        content: i64,
        tier: Tier,
        ab: &AbInfo,
    ) -> Result<[PathBuf; 2], ApiError> {
        self.pair_files(
            &self.variants,
            content,
            tier,
            [
                ("a", &ab.a_sha256, ab.variant_bytes(false)),
                ("b", &ab.b_sha256, ab.variant_bytes(true)),
            ],
        )
        .await
    }

    /// A signed, expiring link to a delivery's copy, and when it expires.
    fn link(&self, delivery: i64, base: &str) -> (String, i64) {
        let expires = tracecast_store::now_ms() / 1000 + self.config.link_ttl_secs;
        let sig = self.link_key.sign(delivery, expires);
        (
            format!("{base}/v1/copies/{delivery}?expires={expires}&sig={sig}"),
            expires,
        )
    }

    fn copy_info(&self, c: &EdgeCopy, base: &str, kept: bool) -> CopyInfo {
        let (url, expires) = self.link(c.delivery_id, base);
        CopyInfo {
            delivery: c.delivery_id,
            url,
            link_expires: expires,
            bytes: c.bytes as u64,
            sha256: c.sha256.clone(),
            media_type: c.media_type.clone(),
            filename: c.filename.clone(),
            kept,
            via: None,
        }
    }

    /// Notes a kept copy as whole (bounded: past the bound the notes start
    /// over, and copies are looked up and checked again).
    fn remember(&self, c: EdgeCopy) {
        const MOST: usize = 200_000;
        let mut v = self.verified.lock().expect("lock");
        if v.len() >= MOST {
            v.clear();
        }
        v.insert(c.delivery_id, c);
    }

    /// Whether the origin revoked this delivery here (it was replaced).
    async fn revoked(&self, delivery: i64) -> Result<bool, ApiError> {
        Ok(self
            .store
            .edge_revocation(EdgeId(i64::from(self.id)), delivery)
            .await?
            .is_some())
    }

    /// Notes, before they leave, that bytes of a delivery's copy are
    /// served: from then on its buyer has (part of) it, and a replacement
    /// cannot refund it.
    async fn mark_served(&self, delivery: i64) -> Result<(), ApiError> {
        if self.served.lock().expect("lock").contains(&delivery) {
            return Ok(());
        }
        self.store
            .set_edge_copy_served(
                EdgeId(i64::from(self.id)),
                delivery,
                tracecast_store::now_ms(),
            )
            .await?;
        let mut served = self.served.lock().expect("lock");
        if served.len() >= 200_000 {
            served.clear();
        }
        served.insert(delivery);
        Ok(())
    }

    /// A kept copy to serve, under its gate held shared (a revocation
    /// waits for it): refused once the delivery is revoked; noted as
    /// served when bytes will leave (`body`: not a HEAD).
    async fn serving(
        &self,
        delivery: i64,
        body: bool,
    ) -> Result<(tokio::sync::OwnedRwLockReadGuard<()>, EdgeCopy), ApiError> {
        let gate = self.gates.get(delivery).read_owned().await;
        // A copy known whole in this run is not revoked (a revocation
        // drops it from `verified` under the gate held alone): a
        // player's range requests cost no query.
        let known = self.verified.lock().expect("lock").contains_key(&delivery);
        if !known && self.revoked(delivery).await? {
            return Err(replaced(delivery));
        }
        let c = self.kept_copy(delivery).await?.ok_or_else(|| {
            ApiError::new(
                StatusCode::GONE,
                "gone",
                "this copy is no longer kept; buy again",
            )
        })?;
        if body {
            self.mark_served(delivery).await?;
        }
        Ok((gate, c))
    }

    /// Revokes a replaced delivery (the origin's order), once: its ticket
    /// and links are refused from now on and its kept copy is dropped;
    /// the origin hears whether any of its bytes had left. A copy whose
    /// report has not gone yet is reported first, so a served copy is
    /// billed.
    async fn revoke(&self, delivery: i64) -> Result<(), tracecast_client::ClientError> {
        let local =
            |e: tracecast_store::StoreError| tracecast_client::ClientError::Local(e.to_string());
        // A copy still being marked (served as it is written) holds the
        // gate until it is kept: it is stopped instead, so the revocation
        // (and the orders queued behind it) does not wait out its marking.
        let growing = self.growing.lock().expect("lock").get(&delivery).cloned();
        if let Some(g) = growing {
            g.stop.store(true, std::sync::atomic::Ordering::Relaxed);
        }
        let _alone = self.gates.get(delivery).write_owned().await;
        let edge = EdgeId(i64::from(self.id));
        if let Some(c) = self.store.edge_copy(edge, delivery).await.map_err(local)? {
            if let Ok(unreported) = self.store.unreported_edge_copies(edge).await {
                if unreported.iter().any(|u| u.delivery_id == delivery) {
                    self.send_report(&c).await?;
                }
            }
        }
        let seen = self.served.lock().expect("lock").contains(&delivery);
        let (r, file) = self
            .store
            .revoke_edge_copy(edge, delivery, seen, tracecast_store::now_ms())
            .await
            .map_err(local)?;
        self.verified.lock().expect("lock").remove(&delivery);
        if let Some(file) = file {
            let _ = tokio::fs::remove_file(self.copies.join(file)).await;
        }
        tracing::info!(delivery, served = r.served, "replaced delivery revoked");
        self.send_revocation(&r).await
    }

    /// Tells the origin a revocation happened (its idempotency key makes
    /// a resend land once).
    async fn send_revocation(
        &self,
        r: &tracecast_store::EdgeRevocation,
    ) -> Result<(), tracecast_client::ClientError> {
        let report = tracecast_delivery::RevocationReport {
            delivery: r.delivery_id,
            edge: self.id,
            served: r.served,
            copy: r.copy.as_ref().map(|(bytes, sha256, marked_at)| {
                tracecast_delivery::RevokedCopy {
                    bytes: *bytes as u64,
                    sha256: sha256.clone(),
                    marked_at: *marked_at,
                }
            }),
            revoked_at: r.revoked_at,
        };
        self.mailbox
            .post(
                &self.reports_box,
                tracecast_delivery::RevocationReport::MEDIA_TYPE,
                serde_json::to_vec(&report).expect("serialises"),
                &PostOptions {
                    idempotency_key: Some(format!("revoked-{}", r.delivery_id)),
                    ..PostOptions::default()
                },
            )
            .await?;
        self.store
            .set_edge_revocation_reported(
                EdgeId(i64::from(self.id)),
                r.delivery_id,
                tracecast_store::now_ms(),
            )
            .await
            .map_err(|e| tracecast_client::ClientError::Local(e.to_string()))
    }

    async fn kept_copy(&self, delivery: i64) -> Result<Option<EdgeCopy>, ApiError> {
        if let Some(c) = self.verified.lock().expect("lock").get(&delivery) {
            return Ok(Some(c.clone()));
        }
        let Some(c) = self
            .store
            .edge_copy(EdgeId(i64::from(self.id)), delivery)
            .await?
        else {
            return Ok(None);
        };
        let path = self.copies.join(&c.file);
        let want = c.sha256.clone();
        let assembled = c.file.ends_with(AB_SUFFIX) || c.file.ends_with(hls::HLS_SUFFIX);
        let whole = tokio::task::spawn_blocking(move || {
            if assembled {
                // The kept part of an assembled copy is its sequence (a
                // small file); its hash was taken of the whole copy when
                // it was made.
                std::fs::read(&path).is_ok_and(|b| {
                    std::str::from_utf8(&b)
                        .ok()
                        .and_then(tracecast_delivery::ab::sequence_from_text)
                        .is_some_and(|s| !s.is_empty())
                })
            } else {
                // Hashed as it is read: a kept copy may be gigabytes.
                let mut hash = Sha256::new();
                std::fs::File::open(&path)
                    .and_then(|mut f| std::io::copy(&mut f, &mut hash))
                    .is_ok_and(|_| hex::encode(hash.finalize()) == want)
            }
        })
        .await
        .unwrap_or(false);
        if whole {
            self.remember(c.clone());
            Ok(Some(c))
        } else {
            // Lost or torn in a crash: forget it; the ticket marks it again.
            tracing::warn!(
                delivery,
                "a kept copy did not survive; it will be marked again"
            );
            let _ = tokio::fs::remove_file(self.copies.join(&c.file)).await;
            self.store
                .delete_edge_copy(EdgeId(i64::from(self.id)), delivery)
                .await?;
            Ok(None)
        }
    }

    /// Sends a marked copy to the home server or kiosk its ticket names
    /// (DESIGN.md "001" steps 5 and 7) and answers what the buyer needs.
    async fn push_to_site(
        &self,
        c: &EdgeCopy,
        ticket_text: &str,
        ticket: &Ticket,
        base: &str,
        kept: bool,
    ) -> Result<Response, ApiError> {
        let Some(site) = &ticket.site else {
            return Err(ApiError::bad_request(
                "the ticket names no home server or kiosk",
            ));
        };
        // Streamed from the kept file: a copy may be gigabytes.
        let file = tokio::fs::File::open(self.copies.join(&c.file))
            .await
            .map_err(|e| ApiError::new(StatusCode::INTERNAL_SERVER_ERROR, "io", e.to_string()))?;
        let body =
            reqwest::Body::wrap_stream(tokio_util::io::ReaderStream::with_capacity(file, 1 << 20));
        let what = if ticket.mode == Mode::Kiosk {
            "kiosk"
        } else {
            "home server"
        };
        let unreachable = |e: String| {
            ApiError::new(
                StatusCode::BAD_GATEWAY,
                "site_unreachable",
                format!(
                    "the {what} {} cannot take the copy now ({e}); ask again to retry",
                    site.name
                ),
            )
        };
        // Bytes leave with the request: from now on the copy counts as
        // delivered, whatever the site answers.
        self.mark_served(c.delivery_id).await?;
        // The edge's own word that these are the bytes it marked: the
        // site takes no push on the ticket alone (the buyer holds it).
        let voucher = tracecast_delivery::CopyVoucher {
            delivery: c.delivery_id,
            edge: self.id,
            site: site.id,
            sha256: c.sha256.clone(),
            bytes: c.bytes as u64,
        }
        .sign(&self.push_key);
        let resp = self
            .http
            .post(format!("{}/v1/copies", site.address.trim_end_matches('/')))
            .header(crate::site::TICKET_HEADER, ticket_text)
            .header(crate::site::VOUCHER_HEADER, voucher)
            .header(tracecast_client::SHA256_HEADER, &c.sha256)
            .header(crate::site::FILENAME_HEADER, &c.filename)
            .header(header::CONTENT_TYPE, &c.media_type)
            .header(header::CONTENT_LENGTH, c.bytes)
            .body(body)
            .send()
            .await
            .map_err(|e| unreachable(e.to_string()))?;
        let status = resp.status();
        if !status.is_success() {
            let text = resp.text().await.unwrap_or_default();
            let message = serde_json::from_str::<serde_json::Value>(&text)
                .ok()
                .and_then(|v| v["message"].as_str().map(str::to_owned))
                .unwrap_or(text);
            if status.is_server_error() {
                return Err(unreachable(message));
            }
            let code = if status == StatusCode::UNPROCESSABLE_ENTITY {
                "refused"
            } else {
                "site_refused"
            };
            return Err(ApiError::new(
                StatusCode::from_u16(status.as_u16()).unwrap_or(StatusCode::BAD_GATEWAY),
                code,
                format!("the {what} {} refused the copy: {message}", site.name),
            ));
        }
        let receipt: PushReceipt = resp
            .json()
            .await
            .map_err(|e| unreachable(format!("malformed answer: {e}")))?;
        let mut info = self.copy_info(c, base, kept);
        info.url = receipt.url.unwrap_or_default();
        if receipt.link_expires > 0 {
            info.link_expires = receipt.link_expires;
        }
        info.via = Some(receipt.via);
        tracing::info!(delivery = c.delivery_id, site = %site.name, mode = ticket.mode.as_str(), "copy sent on");
        Ok((StatusCode::CREATED, Json(info)).into_response())
    }

    async fn send_report(&self, c: &EdgeCopy) -> Result<(), tracecast_client::ClientError> {
        let report = DeliveryReport {
            delivery: c.delivery_id,
            content: c.content_id,
            tier: c.tier,
            user: c.user_id.get() as u32,
            edge: self.id,
            bytes: c.bytes as u64,
            sha256: c.sha256.clone(),
            marked_at: c.created_at,
        };
        self.mailbox
            .post(
                &self.reports_box,
                DeliveryReport::MEDIA_TYPE,
                serde_json::to_vec(&report).expect("serialises"),
                &PostOptions {
                    idempotency_key: Some(format!("delivery-{}", c.delivery_id)),
                    ..PostOptions::default()
                },
            )
            .await?;
        self.store
            .set_edge_copy_reported(
                EdgeId(i64::from(self.id)),
                c.delivery_id,
                tracecast_store::now_ms(),
            )
            .await
            .map_err(|e| tracecast_client::ClientError::Local(e.to_string()))?;
        Ok(())
    }

    async fn state_loop(self: Arc<Self>) {
        let mut failing = false;
        loop {
            let state = EdgeState {
                holdings: self.cache.holdings(),
                in_flight: self.in_flight.load(Ordering::Relaxed),
                push_key: Some(hex::encode(self.push_key.verifying_key().to_bytes())),
            };
            match self.origin.edge_state(&state).await {
                Ok(()) if failing => {
                    tracing::info!("origin reachable again");
                    failing = false;
                }
                Ok(()) => {}
                Err(e) if !failing => {
                    tracing::warn!(error = %e, "cannot report state to the origin; will keep trying");
                    failing = true;
                }
                Err(_) => {}
            }
            tokio::time::sleep(self.config.state_every).await;
        }
    }

    /// Takes pre-position orders from this edge's box and pulls each
    /// rendition; an order is acknowledged in the fetch after it is done.
    async fn pre_position_loop(self: Arc<Self>) {
        let mut done = None;
        let mut pause = Duration::from_millis(500);
        loop {
            let req = FetchRequest {
                want: Want::First,
                done: done.map(|id| (id, Disposition::Delete)),
            };
            match self
                .mailbox
                .fetch_waiting(&self.own_box, req, Duration::from_secs(20))
                .await
            {
                Ok(f) => {
                    done = None;
                    pause = Duration::from_millis(500);
                    let Some(m) = f.message else { continue };
                    // Only the origin orders an edge (the mailbox refuses
                    // anyone else's post here; this edge checks again).
                    let from_origin = m.sender == Some(tracecast_mailbox::Sender::Origin);
                    if from_origin && m.media_type == tracecast_delivery::Revoke::MEDIA_TYPE {
                        match serde_json::from_slice::<tracecast_delivery::Revoke>(&m.body) {
                            Ok(order) => match self.revoke(order.delivery).await {
                                Ok(()) => done = Some(m.id),
                                Err(e) => {
                                    tracing::warn!(delivery = order.delivery, error = %e, "revocation not reported yet; will retry");
                                    tokio::time::sleep(Duration::from_secs(2)).await;
                                }
                            },
                            Err(e) => {
                                tracing::warn!(error = %e, "ignoring a malformed revocation");
                                done = Some(m.id);
                            }
                        }
                        continue;
                    }
                    match serde_json::from_slice::<PrePosition>(&m.body) {
                        Ok(order) if from_origin && m.media_type == PrePosition::MEDIA_TYPE => {
                            match self.rendition(order.content, order.tier).await {
                                Ok((b, hit)) => {
                                    tracing::info!(content = order.content, tier = %order.tier, bytes = b.len(), already = hit, "pre-positioned");
                                    done = Some(m.id);
                                }
                                Err(e) => {
                                    tracing::warn!(content = order.content, error = %e.message, "pre-position failed; will retry");
                                    tokio::time::sleep(Duration::from_secs(5)).await;
                                }
                            }
                        }
                        _ => {
                            tracing::warn!(
                                media_type = %m.media_type,
                                sender = ?m.sender.as_ref().map(|s| s.to_string()),
                                "ignoring an order that is not the origin's"
                            );
                            done = Some(m.id);
                        }
                    }
                }
                Err(e) => {
                    tracing::debug!(error = %e, "order box unreachable");
                    tokio::time::sleep(pause).await;
                    pause = (pause * 2).min(Duration::from_secs(10));
                }
            }
        }
    }

    /// Sends the reports that could not be sent when the copy was made.
    async fn report_loop(self: Arc<Self>) {
        loop {
            tokio::time::sleep(Duration::from_secs(3)).await;
            let Ok(pending) = self
                .store
                .unreported_edge_copies(EdgeId(i64::from(self.id)))
                .await
            else {
                continue;
            };
            for c in pending {
                if let Err(e) = self.send_report(&c).await {
                    tracing::debug!(delivery = c.delivery_id, error = %e, "report still not sent");
                    break;
                }
                tracing::info!(delivery = c.delivery_id, "delayed delivery report sent");
            }
            let Ok(revoked) = self
                .store
                .unreported_edge_revocations(EdgeId(i64::from(self.id)))
                .await
            else {
                continue;
            };
            for r in revoked {
                if let Err(e) = self.send_revocation(&r).await {
                    tracing::debug!(delivery = r.delivery_id, error = %e, "revocation report still not sent");
                    break;
                }
            }
        }
    }

    /// Drops kept copies past their time.
    async fn expiry_loop(self: Arc<Self>) {
        loop {
            let before = tracecast_store::now_ms() - self.config.copy_ttl_secs * 1000;
            if let Ok(old) = self
                .store
                .edge_copies_before(EdgeId(i64::from(self.id)), before)
                .await
            {
                for (delivery, file) in old {
                    self.verified.lock().expect("lock").remove(&delivery);
                    let _ = tokio::fs::remove_file(self.copies.join(&file)).await;
                    let _ = self
                        .store
                        .delete_edge_copy(EdgeId(i64::from(self.id)), delivery)
                        .await;
                }
            }
            tokio::time::sleep(Duration::from_secs(600)).await;
        }
    }
}

/// Per-delivery locks, made on first need and forgotten when nobody holds
/// them (so the map stays as small as the work in progress).
#[derive(Default)]
struct Gates(std::sync::Mutex<HashMap<i64, Arc<RwLock<()>>>>);

impl Gates {
    fn get(&self, delivery: i64) -> Arc<RwLock<()>> {
        let mut map = self.0.lock().expect("lock");
        if map.len() >= 1024 {
            // Only the map holds a gate nobody is using.
            map.retain(|_, g| Arc::strong_count(g) > 1);
        }
        map.entry(delivery).or_default().clone()
    }

    #[cfg(test)]
    fn len(&self) -> usize {
        self.0.lock().expect("lock").len()
    }
}

/// The answer for a delivery that was replaced and revoked here.
fn replaced(delivery: i64) -> ApiError {
    ApiError::new(
        StatusCode::GONE,
        "replaced",
        format!("delivery {delivery} was replaced by another: its copy is revoked; use the replacement's ticket"),
    )
}

fn origin_error(e: tracecast_client::ClientError) -> ApiError {
    match &e {
        tracecast_client::ClientError::Refused {
            status, message, ..
        } if status.as_u16() == 404 => {
            ApiError::new(StatusCode::NOT_FOUND, "unknown_content", message.clone())
        }
        _ => {
            tracing::warn!(error = %e, "origin request failed");
            ApiError::new(
                StatusCode::BAD_GATEWAY,
                "origin_unreachable",
                format!("the edge cannot get the content from the origin: {e}"),
            )
        }
    }
}

/// Where the routes find the edge: filled when it has started, so the
/// routes can be served before (an edge in the origin's process learns its
/// identity from the origin it serves beside).
pub type EdgeSlot = crate::slot::Slot<Edge>;

/// The edge's routes, under `/edge`.
pub fn router(edge: Arc<Edge>) -> Router {
    deferred_router(EdgeSlot::holding(EDGE, edge))
}

/// The edge's routes for an edge that starts later; until then they answer
/// 503.
pub fn deferred_router(slot: EdgeSlot) -> Router {
    Router::new()
        .route("/edge/v1/health", get(health))
        .route("/edge/v1/deliveries", post(deliver))
        .route("/edge/v1/copies/{delivery}", get(download))
        .route("/edge/v1/copies/{delivery}/hls/{name}", get(hls::segment))
        .route("/cdn/{content}/{tier}/{file}", get(cdn_copy))
        .layer(axum::extract::DefaultBodyLimit::max(
            crate::budget::JSON_BODY,
        ))
        .with_state(slot)
        // The contract is served while the edge starts too.
        .merge(crate::openapi::router(crate::openapi::RoleApi::Edge))
}

/// The edge, as 503 answers name it while it starts.
pub const EDGE: &str = "the edge";

/// The edge's cache and load, for its operator; anyone may ask.
#[utoipa::path(get, path = "/edge/v1/health", tag = "edge", security(()),
    responses(
        (status = 200, description = "The edge's name and id, what its cache holds, and the copies being marked now.",
            body = tracecast_delivery::api::EdgeHealth),
        (status = 503, description = "The edge is starting (it learns who it is from the origin); retry shortly.", body = ErrorBody)))]
async fn health(
    State(slot): State<EdgeSlot>,
) -> Result<Json<tracecast_delivery::api::EdgeHealth>, ApiError> {
    let e = slot.started()?;
    Ok(Json(tracecast_delivery::api::EdgeHealth {
        edge: e.name.clone(),
        id: e.id,
        cached: e.cache.holdings().len(),
        cache_bytes: e.cache.used_bytes(),
        in_flight: e.in_flight.load(Ordering::Relaxed),
    }))
}

/// The edge's base URL as the buyer reached it.
fn base_url(headers: &HeaderMap) -> String {
    let host = headers
        .get(header::HOST)
        .and_then(|h| h.to_str().ok())
        .filter(|h| {
            h.bytes()
                .all(|b| b.is_ascii_alphanumeric() || b".-:[]".contains(&b))
        })
        .unwrap_or("localhost");
    let proto = headers
        .get("x-forwarded-proto")
        .and_then(|h| h.to_str().ok())
        .filter(|p| *p == "https")
        .unwrap_or("http");
    format!("{proto}://{host}/edge")
}

/// Takes a copy marked as it is served off the list of growing copies
/// when its marking task ends, however it ends; followers of a marking
/// that ended without saying how are told it failed.
struct Unlist {
    edge: Arc<Edge>,
    delivery: i64,
    tell: tokio::sync::watch::Sender<growing::Grown>,
}

impl Drop for Unlist {
    fn drop(&mut self) {
        self.edge
            .growing
            .lock()
            .expect("lock")
            .remove(&self.delivery);
        self.tell.send_if_modified(|g| {
            let unsaid = g.end.is_none();
            if unsaid {
                g.end = Some(Err("the marking stopped".into()));
            }
            unsaid
        });
    }
}

/// A marking counted in `in_flight` while it is held.
struct InFlight(Arc<Edge>);

impl InFlight {
    fn start(e: &Arc<Edge>) -> Self {
        e.in_flight.fetch_add(1, Ordering::Relaxed);
        Self(e.clone())
    }
}

impl Drop for InFlight {
    fn drop(&mut self) {
        self.0.in_flight.fetch_sub(1, Ordering::Relaxed);
    }
}

/// Whether the caller asked not to wait for the copy (RFC 7240
/// `Prefer: respond-async`, among other preferences or not).
fn prefers_async(headers: &HeaderMap) -> bool {
    headers.get_all("prefer").iter().any(|v| {
        v.to_str().is_ok_and(|v| {
            v.split(',').any(|p| {
                p.split(';')
                    .next()
                    .unwrap_or("")
                    .trim()
                    .eq_ignore_ascii_case("respond-async")
            })
        })
    })
}

/// Whether an open rendition file holds audio (not a picture or video).
fn is_audio_file(file: &std::fs::File) -> bool {
    use std::os::unix::fs::FileExt;
    let mut head = [0u8; 192];
    let n = file.read_at(&mut head, 0).unwrap_or(0);
    let head = &head[..n];
    !tracecast_media::is_picture(&head[..n.min(16)]) && !tracecast_media::video::is_video(head)
}

/// The file name a buyer's copy is saved under.
fn copy_filename(ticket: &Ticket, extension: &str) -> String {
    format!(
        "content-{}-{}-delivery-{}.{extension}",
        ticket.content, ticket.tier, ticket.delivery
    )
}

/// Marks a copy for the buyer the origin's purchase ticket names (the
/// ticket is the authority: no token) and answers a signed, expiring
/// download link; for an order through a home server or kiosk, the copy is
/// sent on there and the answer says where. A repeated or resumed request
/// gets the copy already marked, never a second marking. With
/// `Prefer: respond-async` an audio copy for the buyer is answered before
/// it is marked (202), and its link serves it as it is written.
#[utoipa::path(post, path = "/edge/v1/deliveries", tag = "edge", security(()),
    request_body(content = DeliveryRequest, description = "The purchase ticket the origin signed for this edge (`POST /v1/purchases` at the origin)."),
    params(("Prefer" = Option<String>, Header, description = "`respond-async` (RFC 7240): do not wait for the marking of an audio copy downloaded by the buyer; \
        the answer is then 202 with the copy's link, which serves it as it is written.")),
    responses(
        (status = 202, description = "Asked with `Prefer: respond-async`: the copy is being marked (`Preference-Applied: respond-async`). \
            Its link serves the copy as it is written (200, chunked, no ETag, no ranges); its length and SHA-256 come with the ticket shown again \
            once it is whole (200, `kept`), and a break in the transfer is resumed from there with a range.",
            body = tracecast_delivery::api::CopyUnderWay),
        (status = 201, description = "The copy was marked (or assembled from A/B variants) for the buyer: `url` is its signed download link. \
            Through a home server or kiosk, the copy was sent there: `via` says what it did with it, `url` is the home's own link.",
            body = CopyInfo),
        (status = 200, description = "The copy was marked before (a resumed or repeated request): the same bytes, a fresh link; `kept` is true.",
            body = CopyInfo),
        (status = 400, description = "The body is not JSON, the ticket is malformed, names no home server or kiosk where it must, or carries a malformed key id; \
            or the home server or kiosk refused the push as malformed.", body = ErrorBody),
        (status = 403, description = "The ticket's signature does not verify with the origin's key, it has expired, or it is for another edge; \
            or the home server or kiosk refused the push.", body = ErrorBody),
        (status = 404, description = "The origin knows no such content, or it has no rendition of the ticket's tier.", body = ErrorBody),
        (status = 410, description = "The delivery was replaced and its copy revoked here: use the replacement's ticket; \
            or the home server already ended this delivery's copy.", body = ErrorBody),
        (status = 413, description = "The body is larger than the edge takes, or the home server or kiosk refused the copy as too large.", body = ErrorBody),
        (status = 415, description = "The body is not `application/json`.", body = ErrorBody),
        (status = 422, description = "The body is JSON of the wrong shape; or the ticket asks for protected A/B video (video is delivered unprotected); \
            or the kiosk refused the order (it does not fit the medium) or the home server cannot stream rentals.", body = ErrorBody),
        (status = 500, description = "Decoding, marking or writing the copy failed.", body = ErrorBody),
        (status = 502, description = "The origin, or the home server or kiosk the copy goes to, could not be reached or answered wrongly; ask again to retry.", body = ErrorBody),
        (status = 503, description = "The edge is starting or shutting down, its store or cache is unavailable, or the protected copy's key could not be had from the origin; retry.", body = ErrorBody)))]
async fn deliver(
    State(slot): State<EdgeSlot>,
    headers: HeaderMap,
    body: Result<Json<DeliveryRequest>, JsonRejection>,
) -> Result<Response, ApiError> {
    let e = slot.started()?;
    let Json(req) = body?;
    let now = tracecast_store::now_ms();
    let ticket =
        Ticket::verify(&req.ticket, &e.origin_key, e.id, now / 1000).map_err(|t| match t {
            TicketError::Malformed(_) => ApiError::bad_request(t.to_string()),
            _ => ApiError::forbidden(t.to_string()),
        })?;
    let base = base_url(&headers);
    let via_site = ticket.mode.via_site();
    let m = crate::ops::metrics();
    let early = prefers_async(&headers) && !via_site && ticket.protected.is_none();
    if early {
        // Asked again while it is marked: the same link, at once.
        let growing = e
            .growing
            .lock()
            .expect("lock")
            .get(&ticket.delivery)
            .cloned();
        if let Some(g) = growing {
            return Ok(under_way(&e, &g, ticket.delivery, &base));
        }
    }
    let marking = e.gates.get(ticket.delivery).write_owned().await;
    // The facts, then the plan (tracecast_delivery::copy_plan), then the
    // work. The rendition is asked about only when a copy is to be made.
    let revoked = e.revoked(ticket.delivery).await?;
    let kept = match revoked {
        true => None,
        false => e.kept_copy(ticket.delivery).await?,
    };
    let rendition = match (revoked, &kept) {
        (false, None) => e.rendition_info(ticket.content, ticket.tier).await?,
        _ => None,
    };
    let plan = copy_plan(CopyFacts {
        revoked,
        kept: kept.is_some(),
        via_site,
        protected: ticket.protected.is_some(),
        hls: rendition.as_ref().is_some_and(|r| r.hls.is_some()),
        ab: rendition.as_ref().is_some_and(|r| r.ab.is_some()),
    })
    .map_err(|refusal| match refusal {
        CopyRefusal::Revoked => replaced(ticket.delivery),
        CopyRefusal::ProtectedVideo => ApiError::new(
            StatusCode::UNPROCESSABLE_ENTITY,
            "not_protectable",
            refusal.to_string(),
        ),
    })?;
    if let (CopyPlan::Kept(to), Some(c)) = (plan, &kept) {
        // A resumed or repeated request: the same bytes, no new marking.
        m.delivery(DeliveryOutcome::kept);
        return match to {
            Destination::Site => e.push_to_site(c, &req.ticket, &ticket, &base, true).await,
            Destination::Buyer => Ok(Json(e.copy_info(c, &base, true)).into_response()),
        };
    }
    let in_flight = InFlight::start(&e);
    let started = std::time::Instant::now();
    let (hls, ab) = rendition.map_or((None, None), |r| (r.hls, r.ab));
    match (plan, hls, ab) {
        (CopyPlan::Hls(Destination::Site), Some(hls), _) => {
            let copy = hls::make_site_copy(&e, &ticket, &hls).await?;
            m.delivery(DeliveryOutcome::pushed);
            return e
                .push_to_site(&copy, &req.ticket, &ticket, &base, false)
                .await;
        }
        (CopyPlan::Hls(Destination::Buyer), Some(hls), _) => {
            let copy = hls::make_copy(&e, &ticket, &hls).await?;
            m.delivery(DeliveryOutcome::assembled);
            return Ok(
                (StatusCode::CREATED, Json(e.copy_info(&copy, &base, false))).into_response(),
            );
        }
        (CopyPlan::AbPieces, _, Some(ab)) => {
            let copy = assemble_copy(&e, &ticket, &ab, started).await?;
            m.delivery(DeliveryOutcome::assembled);
            return Ok(
                (StatusCode::CREATED, Json(e.copy_info(&copy, &base, false))).into_response(),
            );
        }
        // Marked now, below.
        _ => {}
    }
    let holding = Holding {
        content: ticket.content,
        tier: ticket.tier,
    };
    // A protected copy is encrypted whole, so it is marked from the
    // decoded rendition kept in memory; every other copy is made from the
    // cache file, audio streaming from it (memory does not grow with the
    // rendition's length).
    let protected = ticket.protected.is_some();
    let cached = if protected {
        let cached = e.decoded.lock().expect("lock").get(&holding);
        m.cache_lookup("decoded", cached.is_some());
        cached
    } else {
        None
    };
    let (source, hit) = match cached {
        Some(audio) => (Source::Audio(audio), true),
        None if !protected => {
            let (file, hit) = e.rendition_file(ticket.content, ticket.tier).await?;
            (Source::File(file), hit)
        }
        None => {
            let (rendition, hit) = e.rendition(ticket.content, ticket.tier).await?;
            if tracecast_media::is_picture(&rendition[..rendition.len().min(16)]) {
                (Source::Picture(rendition), hit)
            } else if tracecast_media::video::is_video(&rendition[..rendition.len().min(192)]) {
                (Source::Video(rendition), hit)
            } else {
                let audio = crate::on_worker(&e.work, move || decode_audio(&rendition))
                    .await?
                    .map_err(|x| {
                        ApiError::new(
                            StatusCode::INTERNAL_SERVER_ERROR,
                            "mark_failed",
                            format!("decoding the rendition: {x}"),
                        )
                    })?;
                let audio = Arc::new(audio);
                e.decoded.lock().expect("lock").put(holding, audio.clone());
                (Source::Audio(audio), hit)
            }
        }
    };
    let pulled = started.elapsed();
    let payload = Payload {
        content_server: ticket.content_server,
        edge: e.id,
        // The home server or kiosk on the way is marked too, so a copy
        // that leaks there is told apart from one the user leaked.
        home: ticket.site.as_ref().map_or(0, |s| s.id),
        user: ticket.user,
    };
    let protect = match &ticket.protected {
        Some(kid) => Some(e.copy_key(ticket.delivery, kid).await?),
        None => None,
    };
    let key = e.mark_key.clone();
    // Alone on the edge, the encoder may use every core.
    let alone = e.in_flight.load(Ordering::Relaxed) <= 1;
    let copies = e.copies.clone();
    let delivery = ticket.delivery;
    // Markings answered early run on after their request: bounded, so
    // early answers cannot queue work without end (past the bound the
    // answer waits for the copy, under the request limits).
    let room = e.growing.lock().expect("lock").len() < e.config.workers.max(1) * 8;
    let source = match source {
        Source::File(file) if early && room && is_audio_file(&file) => {
            let whole = copies.join(format!("{delivery}.flac"));
            let partial = whole.with_extension("flac.partial");
            // Made before the answer, so a follower that comes before the
            // marking starts finds it.
            std::fs::File::create(&partial).map_err(|x| {
                tracing::error!(error = %x, "creating a copy failed");
                ApiError::new(
                    StatusCode::INTERNAL_SERVER_ERROR,
                    "io",
                    "the copy could not be written",
                )
            })?;
            let (grown, follow) = tokio::sync::watch::channel(growing::Grown::default());
            let stop = Arc::new(std::sync::atomic::AtomicBool::new(false));
            let g = Arc::new(growing::GrowingCopy {
                partial,
                whole,
                media_type: "audio/flac",
                filename: copy_filename(&ticket, "flac"),
                grown: follow,
                followers: Default::default(),
                stop: stop.clone(),
            });
            e.growing.lock().expect("lock").insert(delivery, g.clone());
            let answer = under_way(&e, &g, delivery, &base);
            let task = e.clone();
            tokio::spawn(async move {
                // The gate stays held until the copy is kept: a repeated
                // plain request or a revocation waits for it.
                let _marking = marking;
                let _in_flight = in_flight;
                let tell = grown.clone();
                let stopped = stop.clone();
                // Unlisted however the task ends (a panic included), its
                // followers told.
                let _unlist = Unlist {
                    edge: task.clone(),
                    delivery,
                    tell: tell.clone(),
                };
                let marked = crate::on_worker(&task.work, move || {
                    mark_audio_stream(
                        file,
                        &payload,
                        &key,
                        alone,
                        |ext| copies.join(format!("{delivery}.{ext}")),
                        grown,
                        stop,
                    )
                })
                .await;
                let kept = match marked {
                    Ok(Ok(marked)) => task
                        .keep_marked(&ticket, marked, hit, pulled, started)
                        .await
                        .map(|_| ())
                        .map_err(|x| x.message),
                    Ok(Err(x)) => Err(format!("marking failed: {x}")),
                    Err(x) => Err(x.message),
                };
                match &kept {
                    Ok(()) => m.delivery(DeliveryOutcome::marked),
                    Err(_) if stopped.load(Ordering::Relaxed) => {
                        tracing::info!(
                            delivery,
                            "a copy being marked was stopped: its delivery was revoked"
                        )
                    }
                    Err(why) => {
                        tracing::error!(delivery, error = %why, "a copy served as it was marked failed")
                    }
                }
                tell.send_modify(|g| g.end = Some(kept));
            });
            return Ok(answer);
        }
        other => other,
    };
    let marked = crate::on_worker(&e.work, move || {
        mark_copy(source, &payload, &key, alone, protect, |ext| {
            copies.join(format!("{delivery}.{ext}"))
        })
    })
    .await?
    .map_err(|x| {
        ApiError::new(
            StatusCode::INTERNAL_SERVER_ERROR,
            "mark_failed",
            format!("marking failed: {x}"),
        )
    })?;
    let copy = e.keep_marked(&ticket, marked, hit, pulled, started).await?;
    if via_site {
        m.delivery(DeliveryOutcome::pushed);
        return e
            .push_to_site(&copy, &req.ticket, &ticket, &base, false)
            .await;
    }
    m.delivery(DeliveryOutcome::marked);
    Ok((StatusCode::CREATED, Json(e.copy_info(&copy, &base, false))).into_response())
}

/// The answer to a buyer who did not wait: the copy's link, which follows
/// it as it is marked.
fn under_way(e: &Edge, g: &growing::GrowingCopy, delivery: i64, base: &str) -> Response {
    let (url, link_expires) = e.link(delivery, base);
    (
        StatusCode::ACCEPTED,
        [("preference-applied", "respond-async")],
        Json(tracecast_delivery::api::CopyUnderWay {
            delivery,
            url,
            link_expires,
            media_type: g.media_type.into(),
            filename: g.filename.clone(),
        }),
    )
        .into_response()
}

impl Edge {
    /// Records a copy just marked for `ticket` (its metrics, its record,
    /// its report) and logs what it took.
    async fn keep_marked(
        self: &Arc<Self>,
        ticket: &Ticket,
        marked: Marked,
        hit: bool,
        pulled: Duration,
        started: std::time::Instant,
    ) -> Result<EdgeCopy, ApiError> {
        crate::ops::metrics().marked(marked.kind, marked.mark_ms, marked.encode_ms);
        let file = format!("{}.{}", ticket.delivery, marked.extension);
        let copy = self
            .keep_copy(
                ticket,
                file,
                marked.len,
                marked.sha256,
                marked.media_type,
                marked.extension,
            )
            .await?;
        tracing::info!(
            delivery = ticket.delivery, user = ticket.user, content = ticket.content, tier = %ticket.tier,
            cache_hit = hit, pull_ms = pulled.as_millis() as u64, mark_ms = marked.mark_ms,
            encode_ms = marked.encode_ms,
            total_ms = started.elapsed().as_millis() as u64, "copy marked"
        );
        Ok(copy)
    }

    /// Records a new copy of `ticket`'s delivery, kept in `file`, as
    /// verified, and sends its delivery report now, off the buyer's path
    /// (if the origin cannot take it, the report loop sends it later).
    async fn keep_copy(
        self: &Arc<Self>,
        ticket: &Ticket,
        file: String,
        bytes: u64,
        sha256: String,
        media_type: &str,
        extension: &str,
    ) -> Result<EdgeCopy, ApiError> {
        let copy = EdgeCopy {
            edge_id: EdgeId(i64::from(self.id)),
            delivery_id: ticket.delivery,
            user_id: UserId(i64::from(ticket.user)),
            content_id: ticket.content,
            tier: ticket.tier,
            file,
            bytes: bytes as i64,
            sha256,
            media_type: media_type.into(),
            filename: copy_filename(ticket, extension),
            created_at: tracecast_store::now_ms(),
        };
        self.store.put_edge_copy(&copy).await?;
        self.remember(copy.clone());
        let reporter = self.clone();
        let reported = copy.clone();
        tokio::spawn(async move {
            if let Err(x) = reporter.send_report(&reported).await {
                tracing::warn!(delivery = reported.delivery_id, error = %x, "delivery report deferred");
            }
        });
        Ok(copy)
    }
}

/// Kept copies assembled from A/B variants are files `{delivery}.ab`
/// holding the buyer's sequence.
const AB_SUFFIX: &str = ".ab";

/// Makes a buyer's copy from the A/B variants: their sequence (payload and
/// Tardos codeword, from the mark key), the copy's hash taken over the
/// pieces, the sequence kept, the delivery reported.
async fn assemble_copy(
    e: &Arc<Edge>,
    ticket: &Ticket,
    ab: &AbInfo,
    started: std::time::Instant,
) -> Result<EdgeCopy, ApiError> {
    // The variants' files, pulled if missing; the copy is hashed from them
    // a piece at a time (never both variants in memory: an hour's are
    // 730 MB, for each buyer at once).
    let held = Holding {
        content: ticket.content,
        tier: ticket.tier,
    };
    let hit = e.variants.iter().all(|v| v.lookup(&held).is_some());
    let files = e.variant_files(ticket.content, ticket.tier, ab).await?;
    let pulled = started.elapsed();
    let payload = Payload {
        content_server: ticket.content_server,
        edge: e.id,
        home: 0,
        user: ticket.user,
    };
    let key = e.mark_key.clone();
    let units = ab.geometry.units;
    let content = ticket.content;
    let user = ticket.user;
    let sequence = crate::on_worker(&e.work, move || {
        tracecast_mark::fingerprint::Scheme::for_content(&key, content as u64, units as usize)
            .sequence(u64::from(user), &payload, &key)
    })
    .await?;
    let pieces = e
        .ab_pieces(ticket.content, ticket.tier, ab, &sequence)
        .await?;
    let len = tracecast_delivery::ab::copy_len(&pieces);
    let sha256 = crate::on_worker(&e.work, move || {
        use std::os::unix::fs::FileExt;
        let opened = [
            std::fs::File::open(&files[0])?,
            std::fs::File::open(&files[1])?,
        ];
        let mut hash = Sha256::new();
        let mut buf = vec![0u8; 1 << 20];
        for p in &pieces {
            let mut at = 0;
            while at < p.len() {
                let n = ((p.len() - at) as usize).min(buf.len());
                opened[usize::from(p.b)].read_exact_at(&mut buf[..n], p.from + at)?;
                hash.update(&buf[..n]);
                at += n as u64;
            }
        }
        Ok::<_, std::io::Error>(hex::encode(hash.finalize()))
    })
    .await?
    .map_err(|x| {
        ApiError::new(
            StatusCode::SERVICE_UNAVAILABLE,
            "cache",
            format!("reading the variants: {x}; try again"),
        )
    })?;
    let file = format!("{}{AB_SUFFIX}", ticket.delivery);
    crate::edge::cache::write_durable(
        &e.copies.join(&file),
        tracecast_delivery::ab::sequence_to_text(&sequence).as_bytes(),
    )
    .await
    .map_err(|x| ApiError::new(StatusCode::INTERNAL_SERVER_ERROR, "io", x.to_string()))?;
    let copy = e
        .keep_copy(
            ticket,
            file,
            len,
            sha256,
            &ab.media_type,
            if ab.flac.is_some() { "flac" } else { "wav" },
        )
        .await?;
    tracing::info!(
        delivery = ticket.delivery, user = ticket.user, content = ticket.content, tier = %ticket.tier,
        cache_hit = hit, pull_ms = pulled.as_millis() as u64, units,
        total_ms = started.elapsed().as_millis() as u64, "copy assembled from A/B variants"
    );
    Ok(copy)
}

fn unknown_rendition(content: i64, tier: Tier) -> ApiError {
    ApiError::new(
        StatusCode::NOT_FOUND,
        "unknown_rendition",
        format!("content {content} has no {tier} rendition"),
    )
}

/// Variants or an index that do not fit what the origin recorded.
fn bad_variant(x: tracecast_delivery::ab::AssembleError) -> ApiError {
    ApiError::new(StatusCode::BAD_GATEWAY, "bad_variant", x.to_string())
}

fn cache_error(e: CacheError) -> ApiError {
    match e {
        CacheError::Origin(e) => origin_error(e),
        e => ApiError::new(StatusCode::SERVICE_UNAVAILABLE, "cache", e.to_string()),
    }
}

/// A marked copy, encoded and written.
struct Marked {
    /// What was marked: audio, picture or video.
    kind: &'static str,
    len: u64,
    sha256: String,
    media_type: &'static str,
    extension: &'static str,
    mark_ms: u64,
    encode_ms: u64,
}

/// A decoded audio rendition and the rights its file carried.
pub struct DecodedAudio {
    pcm: tracecast_media::Pcm,
    rights: Option<tracecast_media::Rights>,
}

fn decode_audio(rendition: &[u8]) -> Result<DecodedAudio, MediaError> {
    Ok(DecodedAudio {
        rights: tracecast_media::read_rights(rendition),
        pcm: tracecast_media::decode_bytes(rendition.to_vec(), Some("flac"))?,
    })
}

/// What a copy is made from.
enum Source {
    /// The rendition's cache file, open: audio streams from it.
    File(std::fs::File),
    Audio(Arc<DecodedAudio>),
    Picture(Bytes),
    /// A video's source, marked frame by frame.
    Video(Bytes),
}

/// Decoded audio renditions in memory, least recently used dropped first.
pub struct Decoded {
    capacity: u64,
    clock: u64,
    entries: HashMap<Holding, (Arc<DecodedAudio>, u64)>,
}

impl Decoded {
    fn new(capacity: u64) -> Self {
        Self {
            capacity,
            clock: 0,
            entries: HashMap::new(),
        }
    }

    fn get(&mut self, h: &Holding) -> Option<Arc<DecodedAudio>> {
        self.clock += 1;
        let now = self.clock;
        self.entries.get_mut(h).map(|(a, used)| {
            *used = now;
            a.clone()
        })
    }

    fn put(&mut self, h: Holding, audio: Arc<DecodedAudio>) {
        let bytes = |a: &DecodedAudio| (a.pcm.frames() * a.pcm.channels.len() * 4) as u64;
        let items: Vec<tracecast_delivery::evict::Cached<Holding>> = self
            .entries
            .iter()
            .map(|(k, (a, used))| tracecast_delivery::evict::Cached {
                key: *k,
                bytes: bytes(a),
                last_used: *used,
                pinned: false,
            })
            .collect();
        // Too big to keep: it is used for this copy and dropped.
        if let Ok(victims) =
            tracecast_delivery::evict::victims(&items, self.capacity, bytes(&audio))
        {
            for v in victims {
                self.entries.remove(&v);
            }
            self.clock += 1;
            self.entries.insert(h, (audio, self.clock));
        }
    }
}

/// Writes the mark into a copy of the rendition, encodes it in the
/// rendition's own format and carries the rendition's rights metadata over.
fn mark_copy(
    source: Source,
    payload: &Payload,
    key: &MarkKey,
    alone: bool,
    protect: Option<(KeyId, ContentKey)>,
    out: impl Fn(&str) -> PathBuf,
) -> Result<Marked, MediaError> {
    let t0 = std::time::Instant::now();
    let kind = match &source {
        Source::File(_) | Source::Audio(_) => "audio",
        Source::Picture(_) => "picture",
        Source::Video(_) => "video",
    };
    let (bytes, rights, media_type, extension, mark_ms) = match source {
        Source::File(mut file) => {
            use std::io::{Read, Seek};
            let read =
                |e: std::io::Error| MediaError::Malformed(format!("the rendition file: {e}"));
            let mut head = Vec::new();
            (&mut file).take(192).read_to_end(&mut head).map_err(read)?;
            file.rewind().map_err(read)?;
            let is_picture = tracecast_media::is_picture(&head[..head.len().min(16)]);
            if is_picture || tracecast_media::video::is_video(&head) {
                let mut bytes = Vec::new();
                file.read_to_end(&mut bytes).map_err(read)?;
                let bytes = Bytes::from(bytes);
                let source = match is_picture {
                    true => Source::Picture(bytes),
                    false => Source::Video(bytes),
                };
                return mark_copy(source, payload, key, alone, protect, out);
            }
            if protect.is_some() {
                return Err(MediaError::Malformed(
                    "a protected copy is marked from the decoded rendition".into(),
                ));
            }
            return mark_audio_stream(
                file,
                payload,
                key,
                alone,
                out,
                tokio::sync::watch::channel(growing::Grown::default()).0,
                Default::default(),
            );
        }
        Source::Video(rendition) => {
            if protect.is_some() {
                return Err(MediaError::Malformed(
                    "video is delivered unprotected".into(),
                ));
            }
            return mark_video_copy(&rendition, payload, key, out);
        }
        Source::Picture(rendition) => {
            let rights = tracecast_media::read_rights(&rendition);
            let mut img = tracecast_media::decode_picture(&rendition)?;
            let t = std::time::Instant::now();
            tracecast_media::mark_picture(
                &mut img,
                key,
                payload,
                &Default::default(),
                &mut |_, _| {},
            )
            .map_err(|e| MediaError::Malformed(e.to_string()))?;
            let ms = t.elapsed().as_millis() as u64;
            if rendition.starts_with(&[0xFF, 0xD8]) {
                (
                    tracecast_media::encode_picture(&img, PictureFormat::Jpeg(92))?,
                    rights,
                    "image/jpeg",
                    "jpg",
                    ms,
                )
            } else {
                (
                    tracecast_media::encode_picture(&img, PictureFormat::Png)?,
                    rights,
                    "image/png",
                    "png",
                    ms,
                )
            }
        }
        Source::Audio(audio) => {
            // Marked and encoded in one pass from the shared decoded
            // rendition: a copy costs its FLAC bytes, not a second copy of
            // the samples.
            let marked = tracecast_media::marking::mark_to_flac(
                &audio.pcm,
                key,
                payload,
                &Default::default(),
                if alone {
                    tracecast_media::FlacEffort::FastParallel
                } else {
                    tracecast_media::FlacEffort::Fast
                },
            )
            .map_err(|e| match e {
                tracecast_media::marking::FileMarkError::Media(m) => m,
                other => MediaError::Malformed(other.to_string()),
            })?;
            (
                marked.bytes,
                audio.rights.clone(),
                "audio/flac",
                "flac",
                marked.mark_ms,
            )
        }
    };
    let bytes = match rights {
        Some(r) => tracecast_media::tag(&bytes, &r)?,
        None => bytes,
    };
    // Protected content: the marked copy is encrypted under the
    // rendition's key; the buyer opens it with a licence.
    let (bytes, media_type, extension) = match protect {
        Some((kid, content_key)) => (
            tracecast_protect::encrypt_bytes(&content_key, kid, &bytes),
            tracecast_protect::container::MEDIA_TYPE,
            match extension {
                "flac" => "flac.tcprot",
                "png" => "png.tcprot",
                _ => "jpg.tcprot",
            },
        ),
        None => (bytes, media_type, extension),
    };
    let encode_ms = (t0.elapsed().as_millis() as u64).saturating_sub(mark_ms);
    // Written here, off the async threads; not fsynced (the hot path): a
    // copy from before a crash is hashed before it is served again
    // (`kept_copy`).
    let path = out(extension);
    let tmp = path.with_extension(format!("{extension}.partial"));
    let io = |e: std::io::Error| MediaError::Write {
        path: path.clone(),
        source: e,
    };
    std::fs::write(&tmp, &bytes).map_err(io)?;
    std::fs::rename(&tmp, &path).map_err(io)?;
    Ok(Marked {
        kind,
        len: bytes.len() as u64,
        sha256: hex::encode(Sha256::digest(&bytes)),
        media_type,
        extension,
        mark_ms,
        encode_ms,
    })
}

/// Marks an audio rendition's cache file into a FLAC copy as it reads it:
/// decoding, marking, encoding and writing go packet by packet, so memory
/// is a few of the mark's blocks whatever the rendition's length. The
/// copy carries the rendition's rights metadata, as `mark_copy` does for
/// the others.
fn mark_audio_stream(
    mut file: std::fs::File,
    payload: &Payload,
    key: &MarkKey,
    alone: bool,
    out: impl Fn(&str) -> PathBuf,
    grown: tokio::sync::watch::Sender<growing::Grown>,
    stop: Arc<std::sync::atomic::AtomicBool>,
) -> Result<Marked, MediaError> {
    use std::io::{Read, Seek};
    let read = |e: std::io::Error| MediaError::Malformed(format!("the rendition file: {e}"));
    // FLAC's metadata blocks come first; the rights are among them.
    let mut head = Vec::new();
    (&mut file)
        .take(1 << 16)
        .read_to_end(&mut head)
        .map_err(read)?;
    file.rewind().map_err(read)?;
    let rights = tracecast_media::read_rights(&head);
    let reader = tracecast_media::AudioReader::from_file(file, Some("flac"), None)?;
    let path = out("flac");
    let tmp = path.with_extension("flac.partial");
    let io = |e: std::io::Error| MediaError::Write {
        path: path.clone(),
        source: e,
    };
    let written = std::fs::File::create(&tmp).map_err(io)?;
    // Followers of a copy served as it is marked see what reached the
    // file: a small buffer, so the first bytes leave early.
    let marked = tracecast_media::marking::mark_reader_to_flac(
        reader,
        std::io::BufWriter::with_capacity(
            256 << 10,
            growing::Announcing::new(written, grown).stopped_by(stop),
        ),
        key,
        payload,
        &Default::default(),
        if alone {
            tracecast_media::FlacEffort::FastParallel
        } else {
            tracecast_media::FlacEffort::Fast
        },
        rights.as_ref(),
    )
    .map_err(|e| match e {
        tracecast_media::marking::FileMarkError::Media(m) => m,
        other => MediaError::Malformed(other.to_string()),
    });
    let marked = match marked {
        Ok(m) => m,
        Err(e) => {
            let _ = std::fs::remove_file(&tmp);
            return Err(e);
        }
    };
    // The copy's hash, read back in pieces (not fsynced: the hot path; a
    // copy from before a crash is hashed before it is served again).
    let mut hash = Sha256::new();
    let mut copy = std::fs::File::open(&tmp).map_err(io)?;
    let len = std::io::copy(&mut copy, &mut hash).map_err(io)?;
    std::fs::rename(&tmp, &path).map_err(io)?;
    Ok(Marked {
        kind: "audio",
        len,
        sha256: hex::encode(hash.finalize()),
        media_type: "audio/flac",
        extension: "flac",
        mark_ms: marked.mark_ms,
        encode_ms: marked.encode_ms,
    })
}

/// Marks every frame of a video for one buyer and encodes it to MP4 (key
/// frames every 2 s, so a home server can cut HLS segments from it).
fn mark_video_copy(
    rendition: &[u8],
    payload: &Payload,
    key: &MarkKey,
    out: impl Fn(&str) -> PathBuf,
) -> Result<Marked, MediaError> {
    let path = out("mp4");
    let source = out("source.partial");
    let tmp = out("partial.mp4");
    let write = |p: &PathBuf| {
        let p = p.clone();
        move |e| MediaError::Write { path: p, source: e }
    };
    std::fs::write(&source, rendition).map_err(write(&source))?;
    let t = std::time::Instant::now();
    let marked = tracecast_media::video::mark_video(
        &source,
        &tmp,
        key,
        payload,
        &Default::default(),
        &tracecast_media::video::VideoEncode {
            gop_secs: Some(2.0),
            ..Default::default()
        },
        &mut |_, _| {},
    );
    let _ = std::fs::remove_file(&source);
    if let Err(e) = marked {
        let _ = std::fs::remove_file(&tmp);
        return Err(e);
    }
    // Marking and encoding run as one pipeline.
    let mark_ms = t.elapsed().as_millis() as u64;
    std::fs::rename(&tmp, &path).map_err(write(&path))?;
    let mut hash = Sha256::new();
    let mut file = std::fs::File::open(&path).map_err(write(&path))?;
    let len = std::io::copy(&mut file, &mut hash).map_err(write(&path))?;
    Ok(Marked {
        kind: "video",
        len,
        sha256: hex::encode(hash.finalize()),
        media_type: "video/mp4",
        extension: "mp4",
        mark_ms,
        encode_ms: 0,
    })
}

#[derive(Deserialize)]
struct LinkQuery {
    expires: i64,
    sig: String,
    /// `mp3`: a copy assembled from A/B variants, as MP3.
    #[serde(default)]
    format: Option<String>,
}

/// A link's delivery id and its expiry and signature, or why not.
fn link_parts(
    delivery: &str,
    query: Result<Query<LinkQuery>, axum::extract::rejection::QueryRejection>,
) -> Result<(i64, LinkQuery), ApiError> {
    let Query(q) =
        query.map_err(|_| ApiError::forbidden("a link needs its expires and sig parameters"))?;
    let delivery: i64 = delivery
        .parse()
        .map_err(|_| ApiError::bad_request(format!("{delivery:?} is not a delivery id")))?;
    Ok((delivery, q))
}

/// A marked copy behind its signed, expiring link (the answer of
/// `POST /edge/v1/deliveries`; the link is the authority: no token), with
/// validators and byte ranges for download managers and players; HEAD
/// answers the headers alone. For A/B video the copy is the buyer's own
/// HLS playlist, its URIs signed links to the segments.
#[utoipa::path(get, path = "/edge/v1/copies/{delivery}", tag = "edge", security(()),
    params(
        ("delivery" = i64, Path, description = "The delivery the copy was marked for."),
        ("expires" = i64, Query, description = "When the link stops working (Unix seconds), as the link gives it."),
        ("sig" = String, Query, description = "The link's signature, as the link gives it."),
        ("format" = Option<String>, Query, description = "`mp3`: a copy assembled from A/B variants, as MP3 (320 kbit/s, spliced from the MP3 variants: the same buyer's mark; its own length and ETag). Absent: the copy as made."),
        ("Range" = Option<String>, Header, description = "Byte ranges (`bytes=0-1023`, several comma-separated)."),
        ("If-Range" = Option<String>, Header, description = "Serve the ranges only if the copy is still this ETag or Last-Modified date; else the whole copy."),
        ("If-None-Match" = Option<String>, Header, description = "The ETag the caller holds: 304 if it is still the copy's.")),
    responses(
        (status = 200, description = "The whole copy, in its own media type (audio/flac, image/jpeg, image/png, video/mp4, audio/wav, or the protected container) \
            as an attachment; for A/B video, the buyer's HLS playlist. A copy still being marked (answered 202) is served as it is written: \
            chunked, without ETag or ranges (`Accept-Ranges: none`), ending when it is whole; a marking that fails breaks the transfer off.",
            content((Vec<u8> = "application/octet-stream"), (String = "application/vnd.apple.mpegurl")),
            headers(
                ("ETag" = String, description = "The copy's SHA-256, quoted."),
                ("Last-Modified" = String, description = "When the copy was marked."),
                ("Accept-Ranges" = String, description = "`bytes`."),
                ("Content-Disposition" = String, description = "`attachment` with the copy's file name."),
                ("Cache-Control" = String, description = "`private`, until the link expires."))),
        (status = 206, description = "The ranges asked for: one range with Content-Range, or several as `multipart/byteranges`.",
            content_type = "application/octet-stream", body = Vec<u8>,
            headers(("Content-Range" = String, description = "The range served and the copy's length (`bytes 0-1023/52428800`)."))),
        (status = 304, description = "If-None-Match names the copy's ETag: the caller's bytes are current."),
        (status = 400, description = "The delivery is not a number, or the format is not `mp3`.", body = ErrorBody),
        (status = 403, description = "The link lacks `expires` or `sig`, was altered, or has expired (buy again for a fresh one: the copy is kept).", body = ErrorBody),
        (status = 404, description = "The origin no longer knows the content this copy is assembled from, or `format=mp3` was asked of a copy that has no MP3 form (only copies assembled from A/B variants with MP3 variants do).", body = ErrorBody),
        (status = 410, description = "The copy is no longer kept (its time ran out; buy again), or its delivery was replaced (use the replacement's ticket).", body = ErrorBody),
        (status = 416, description = "No range asked for lies within the copy.", body = ErrorBody,
            headers(("Content-Range" = String, description = "`bytes */LENGTH`: the copy's length."))),
        (status = 500, description = "The copy could not be read.", body = ErrorBody),
        (status = 502, description = "The A/B variants or playlist the copy is made from are inconsistent, or the origin could not be reached for them.", body = ErrorBody),
        (status = 503, description = "The edge is starting, or its store or cache is unavailable; retry.", body = ErrorBody)))]
async fn download(
    State(slot): State<EdgeSlot>,
    method: axum::http::Method,
    headers: HeaderMap,
    Path(delivery): Path<String>,
    query: Result<Query<LinkQuery>, axum::extract::rejection::QueryRejection>,
) -> Result<Response, ApiError> {
    let e = slot.started()?;
    let (delivery, q) = link_parts(&delivery, query)?;
    e.link_key
        .verify(
            delivery,
            q.expires,
            &q.sig,
            tracecast_store::now_ms() / 1000,
        )
        .map_err(|x| ApiError::forbidden(x.to_string()))?;
    let growing = e.growing.lock().expect("lock").get(&delivery).cloned();
    if let Some(g) = growing {
        // Being marked: it is not revoked (a revocation waits for the
        // marking), and the bytes that leave count as served.
        let body = method != axum::http::Method::HEAD;
        if body {
            e.mark_served(delivery).await?;
        }
        // Still marked now that it is noted served: a revocation that
        // comes after sees it served. Else it is whole, and served below
        // under its gate, revocation checked.
        let still = e
            .growing
            .lock()
            .expect("lock")
            .get(&delivery)
            .is_some_and(|now| Arc::ptr_eq(now, &g));
        if still {
            let max_age = (q.expires - tracecast_store::now_ms() / 1000).max(0) as u64;
            return growing::follow(g, !body, max_age).await;
        }
    }
    // Held until the response is made (its file opened): a revocation
    // waits, and counts these bytes as served.
    let (_serving, c) = e
        .serving(delivery, method != axum::http::Method::HEAD)
        .await?;
    if c.file.ends_with(hls::HLS_SUFFIX) {
        return hls::playlist(&e, &c, &base_url(&headers), q.expires).await;
    }
    let path = e.copies.join(&c.file);
    let last_modified = httpdate::fmt_http_date(
        std::time::UNIX_EPOCH + Duration::from_millis(c.created_at.max(0) as u64),
    );
    let mp3 = match q.format.as_deref() {
        None => false,
        Some("mp3") => true,
        Some(other) => {
            return Err(ApiError::bad_request(format!(
                "the format is mp3 (or none: the copy as made), not {other:?}"
            )))
        }
    };
    let no_mp3 = || {
        ApiError::new(
            StatusCode::NOT_FOUND,
            "no_format",
            "this copy has no MP3 form: only copies assembled from A/B variants with MP3 variants have",
        )
    };
    if mp3 && !c.file.ends_with(AB_SUFFIX) {
        return Err(no_mp3());
    }
    if mp3 {
        let ab = e.ab_info(c.content_id, c.tier).await?.ok_or_else(|| {
            ApiError::new(StatusCode::GONE, "gone", "the content's variants are gone")
        })?;
        let m = ab.mp3.clone().ok_or_else(no_mp3)?;
        let sequence = read_sequence(&path).await?;
        let pieces = e
            .mp3_pieces(c.content_id, c.tier, &ab, &m, &sequence)
            .await?;
        let files = e.mp3_files(c.content_id, c.tier, &m).await?;
        // The bytes follow from the sequence (which the copy's own hash
        // stands for) and the MP3 variants: a strong validator of them.
        let etag = hex::encode(Sha256::digest(
            format!(
                "mp3:{}:{}:{}:{}",
                c.sha256, m.a_sha256, m.b_sha256, m.index_sha256
            )
            .as_bytes(),
        ));
        let stem = c.filename.rsplit_once('.').map_or(&*c.filename, |(s, _)| s);
        let filename = format!("{stem}.mp3");
        let rep = crate::serve::Representation {
            source: crate::serve::Source::Pieces(&files, &pieces),
            len: tracecast_delivery::ab::copy_len(&pieces),
            etag: format!("\"{etag}\""),
            last_modified,
            media_type: "audio/mpeg",
            filename: &filename,
            max_age: (q.expires - tracecast_store::now_ms() / 1000).max(0) as u64,
            inline: false,
        };
        return crate::serve::respond(&rep, &headers).await;
    }
    let assembled = if c.file.ends_with(AB_SUFFIX) {
        let ab = e.ab_info(c.content_id, c.tier).await?.ok_or_else(|| {
            ApiError::new(StatusCode::GONE, "gone", "the content's variants are gone")
        })?;
        let sequence = read_sequence(&path).await?;
        let pieces = e.ab_pieces(c.content_id, c.tier, &ab, &sequence).await?;
        let files = e.variant_files(c.content_id, c.tier, &ab).await?;
        Some((files, pieces))
    } else {
        None
    };
    let source = match &assembled {
        Some((files, pieces)) => crate::serve::Source::Pieces(files, pieces),
        None => crate::serve::Source::File(&path),
    };
    let rep = crate::serve::Representation {
        source,
        len: c.bytes as u64,
        etag: format!("\"{}\"", c.sha256),
        last_modified,
        media_type: &c.media_type,
        filename: &c.filename,
        max_age: (q.expires - tracecast_store::now_ms() / 1000).max(0) as u64,
        inline: false,
    };
    crate::serve::respond(&rep, &headers).await
}

/// A kept copy's A/B sequence, or 410 when it is no longer kept.
async fn read_sequence(path: &std::path::Path) -> Result<Vec<bool>, ApiError> {
    tokio::fs::read_to_string(path)
        .await
        .ok()
        .and_then(|t| tracecast_delivery::ab::sequence_from_text(&t))
        .ok_or_else(|| ApiError::new(StatusCode::GONE, "gone", "this copy is no longer kept"))
}

/// `?wmt=`: a watermarking token in the query, for players that cannot
/// send a header.
#[derive(Debug, serde::Deserialize)]
struct WmtQuery {
    wmt: Option<String>,
}

/// A copy by the CDN convention (docs/cdn.md): this edge serves the same watermarking tokens a CDN does.
///
/// The token (`Authorization: Bearer`, or `?wmt=`) is the authority: the origin signed it (ES256) when it sold the copy,
/// naming the delivery, content, tier, the variants' frame index and the buyer's A/B pattern; the copy is the
/// variants' frames in that pattern. Nothing is kept or reported here: the sale was recorded when the token was issued.
#[utoipa::path(get, path = "/cdn/{content}/{tier}/{file}", tag = "edge", security(()),
    params(("content" = i64, Path, description = "The content."),
        ("tier" = String, Path, description = "The rendition's tier (`lossless`, `high`, `preview`)."),
        ("file" = String, Path, description = "`{delivery}.flac`, or `{delivery}.mp3` for the copy as MP3 (when the token names the MP3 variants' index)."),
        ("wmt" = Option<String>, Query, description = "The watermarking token, when no Authorization header carries it."),
        ("Range" = Option<String>, Header, description = "Byte ranges (RFC 9110)")),
    responses(
        (status = 200, description = "The buyer's copy (`audio/flac`, or `audio/mpeg` for `.mp3`).", content_type = "application/octet-stream", body = Vec<u8>),
        (status = 206, description = "The ranges asked for.", content_type = "application/octet-stream", body = Vec<u8>),
        (status = 401, description = "No token, or one that is malformed, not the origin's, altered or expired.", body = ErrorBody),
        (status = 403, description = "The token is for another copy (delivery, content, tier) or other variants.", body = ErrorBody),
        (status = 404, description = "No such copy path, or the origin delivers through no CDN, or the content has no FLAC (or, for `.mp3`, MP3) variants of that tier.", body = ErrorBody),
        (status = 416, description = "No range asked for lies within the copy.", body = ErrorBody),
        (status = 502, description = "The variants are inconsistent, or the origin could not be reached for them.", body = ErrorBody),
        (status = 503, description = "The edge is starting, or its cache is unavailable; retry.", body = ErrorBody)))]
async fn cdn_copy(
    State(slot): State<EdgeSlot>,
    headers: HeaderMap,
    Path((content, tier, file)): Path<(String, String, String)>,
    query: Result<Query<WmtQuery>, axum::extract::rejection::QueryRejection>,
) -> Result<Response, ApiError> {
    use tracecast_delivery::wmt::{CopyForm, CopyPath, WmtError};
    let e = slot.started()?;
    let not_found = |why: &str| ApiError::new(StatusCode::NOT_FOUND, "not_found", why.to_owned());
    let verifier = e
        .wmt_key
        .as_ref()
        .ok_or_else(|| not_found("this edge's origin delivers through no CDN"))?;
    let path = CopyPath::parse(&format!("{content}/{tier}/{file}"))
        .ok_or_else(|| not_found("no such copy: /cdn/{content}/{tier}/{delivery}.flac or .mp3"))?;
    let header = headers
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Bearer "))
        .map(str::trim);
    let token = match (header, query) {
        (Some(t), _) => t.to_owned(),
        (None, Ok(Query(WmtQuery { wmt: Some(t) }))) => t,
        _ => {
            return Err(ApiError::new(
                StatusCode::UNAUTHORIZED,
                "no_token",
                "a watermarking token is needed (Authorization: Bearer, or ?wmt=)",
            ))
        }
    };
    let now = tracecast_store::now_ms() / 1000;
    let claims = verifier.verify(&token, now).map_err(|x| {
        let code = if x == WmtError::Expired {
            "expired_token"
        } else {
            "bad_token"
        };
        ApiError::new(StatusCode::UNAUTHORIZED, code, x.to_string())
    })?;
    let ab = e
        .ab_info(path.content, path.tier)
        .await?
        .filter(|ab| ab.flac.is_some())
        .ok_or_else(|| not_found("the content has no FLAC A/B variants of that tier"))?;
    let index_sha256 = match path.form {
        CopyForm::Flac => ab.flac.as_ref().expect("filtered").index_sha256.clone(),
        CopyForm::Mp3 => ab
            .mp3
            .as_ref()
            .ok_or_else(|| not_found("the content has no MP3 A/B variants of that tier"))?
            .index_sha256
            .clone(),
    };
    claims
        .check_copy(&path, &index_sha256)
        .map_err(|x| ApiError::new(StatusCode::FORBIDDEN, "other_copy", x.to_string()))?;
    let sequence = claims
        .pattern()
        .map_err(|x| ApiError::new(StatusCode::UNAUTHORIZED, "bad_token", x.to_string()))?;
    let (pieces, files) = match (path.form, &ab.mp3) {
        (CopyForm::Mp3, Some(m)) => (
            e.mp3_pieces(path.content, path.tier, &ab, m, &sequence)
                .await,
            e.mp3_files(path.content, path.tier, m).await?,
        ),
        _ => (
            e.ab_pieces(path.content, path.tier, &ab, &sequence).await,
            e.variant_files(path.content, path.tier, &ab).await?,
        ),
    };
    let pieces = pieces.map_err(|x| {
        if x.status == StatusCode::BAD_GATEWAY {
            // The pattern does not fit the variants: the token's fault.
            ApiError::new(StatusCode::UNAUTHORIZED, "bad_token", x.message.clone())
        } else {
            x
        }
    })?;
    let filename = format!("{}.{}", path.delivery, path.form.extension());
    let rep = crate::serve::Representation {
        source: crate::serve::Source::Pieces(&files, &pieces),
        len: tracecast_delivery::ab::copy_len(&pieces),
        etag: format!(
            "\"{}-{}\"",
            claims.tcd,
            index_sha256.get(..16).unwrap_or("")
        ),
        last_modified: httpdate::fmt_http_date(
            std::time::UNIX_EPOCH + Duration::from_secs(claims.iat.max(0) as u64),
        ),
        media_type: path.form.media_type(),
        filename: &filename,
        max_age: (claims.exp - now).max(0) as u64,
        inline: false,
    };
    crate::serve::respond(&rep, &headers).await
}

/// The edge role's contract (`/openapi/edge.json`, docs/openapi/edge.json).
#[derive(utoipa::OpenApi)]
#[openapi(
    info(description = "A delivery server (DESIGN.md \"001\" steps 3-4): it marks a copy of a rendition for one buyer and serves it. \
        No bearer token is used here. A buyer shows the purchase ticket the origin signed for this edge \
        (`POST /edge/v1/deliveries`): the ticket is the authority, and the answer is a signed, expiring link to the copy. \
        Copies (and an A/B video's HLS segments) are served behind such links: the `expires` and `sig` query parameters \
        are the authority, with ETag, If-None-Match, If-Range and byte ranges; HEAD answers the headers alone. \
        Errors are JSON `{\"error\": code, \"message\": text}`; a 503 changed nothing and may be retried."),
    paths(health, deliver, download, hls::segment, cdn_copy),
    tags((name = "edge", description = "Marking copies for buyers and serving them"))
)]
pub struct Api;

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn gates_nobody_holds_are_forgotten() {
        let gates = Gates::default();
        let held = gates.get(1).write_owned().await;
        for delivery in 2..3000 {
            let _ = gates.get(delivery);
        }
        assert!(gates.len() <= 1024, "{} gates kept", gates.len());
        // The gate in use is the same one, still held.
        assert!(gates.get(1).try_write().is_err());
        drop(held);
        assert!(gates.get(1).try_write().is_ok());
    }

    #[test]
    fn the_mailbox_knows_the_reports_by_their_types() {
        // The mailbox's posting rules name the report types of this flow.
        assert_eq!(
            DeliveryReport::MEDIA_TYPE,
            tracecast_mailbox::DELIVERY_REPORT
        );
        assert_eq!(
            tracecast_delivery::RevocationReport::MEDIA_TYPE,
            tracecast_mailbox::REVOCATION_REPORT
        );
        assert_eq!(
            tracecast_delivery::SiteReport::MEDIA_TYPE,
            tracecast_mailbox::SITE_REPORT
        );
    }
}
