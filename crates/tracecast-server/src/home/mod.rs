//! The home server role (DESIGN.md "001" steps 5-6): a cache near users (an
//! apartment building's server). An edge marks a copy with the user, the
//! edge, the content server and this home, and pushes it here over the fast
//! link. The user then either downloads it on the LAN (the home deletes it
//! once the user confirms receipt) or, for a rental, plays it from here
//! without downloading: an HLS playlist (RFC 8216, MPEG-TS segments made
//! from the marked copy with ffmpeg: audio as AAC, video remuxed as it is)
//! or the marked file itself with HTTP Range, so any player can play, pause
//! and seek. The home keeps the
//! viewing sessions; when the rental is ended or its period runs out it
//! deletes the copy and reports the viewing time to the origin through the
//! mailbox, where the fee is posted by the content's tariff.

use std::collections::HashMap;
use std::path::{Path as FsPath, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use axum::body::Body;
use axum::extract::{DefaultBodyLimit, Path, State};
use axum::http::{header, HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use ed25519_dalek::VerifyingKey;
use tokio::sync::Semaphore;
use tracecast_client::MailboxClient;
use tracecast_delivery::api::{PushReceipt, SiteCopy, SiteCopyEnded};
use tracecast_delivery::rental::{range_cost_ms, rental_range, Admit, Pace, RentalRangeError};
use tracecast_delivery::{LinkKey, Mode, Sessions, SiteEvent, SiteReport};
use tracecast_mailbox::BoxName;
use tracecast_store::{HomeCopy, SiteId, Store, UserId};

use crate::openapi::ErrorBody;
use crate::site::{self, SiteError, SiteIdentity};
use crate::ApiError;

/// Largest copy a home takes.
pub const MAX_COPY_BYTES: usize = 4 << 30;

/// Settings of a home server.
#[derive(Debug, Clone)]
pub struct HomeConfig {
    /// The origin's base URL (its mailbox takes the reports).
    pub origin: String,
    /// This home's account token (`tracecast account add home`).
    pub token: String,
    /// Where copies, HLS packages and the link key live.
    pub dir: PathBuf,
    /// How long a bought copy waits for its user before it is deleted.
    pub keep_secs: i64,
    /// Reads closer than this belong to one viewing session.
    pub session_gap_ms: i64,
    /// A session runs this long past its last read (the player plays what
    /// it fetched).
    pub session_tail_ms: i64,
    /// HLS segment length.
    pub segment_secs: u32,
    /// AAC bit rate of the HLS rendition.
    pub hls_bitrate: String,
    /// How often expired copies are looked for.
    pub sweep_every: Duration,
    /// The ffmpeg to package HLS with.
    pub ffmpeg: String,
    /// The mailbox that takes reports, when it is not at the origin's URL.
    pub mailbox: Option<String>,
    /// How rentals are handed out: bounded ranges, no faster than they
    /// play.
    pub pace: Pace,
}

impl HomeConfig {
    pub fn new(origin: &str, token: &str, dir: &FsPath) -> Self {
        Self {
            origin: origin.trim_end_matches('/').to_owned(),
            token: token.trim().to_owned(),
            dir: dir.to_owned(),
            keep_secs: 7 * 24 * 3600,
            session_gap_ms: 60_000,
            session_tail_ms: 10_000,
            segment_secs: 6,
            hls_bitrate: "256k".into(),
            sweep_every: Duration::from_secs(5),
            ffmpeg: "ffmpeg".into(),
            mailbox: None,
            pace: Pace::default(),
        }
    }
}

/// The running home server.
pub struct Home {
    id: u16,
    name: String,
    mailbox: MailboxClient,
    reports_box: BoxName,
    origin_key: VerifyingKey,
    link_key: LinkKey,
    store: Store,
    copies: PathBuf,
    hls: PathBuf,
    config: HomeConfig,
    work: Semaphore,
    /// Viewing sessions of live rentals and the playback time handed out
    /// (also kept in the store).
    rentals: std::sync::Mutex<HashMap<i64, Streamed>>,
    /// Rentals' durations (from their HLS playlists), by delivery.
    timings: std::sync::Mutex<HashMap<i64, Arc<Timings>>>,
}

/// What a rental has been: its viewing and what it was handed.
#[derive(Debug, Clone, Default)]
struct Streamed {
    sessions: Sessions,
    served_ms: i64,
}

/// A rental's playback time: in all, and each HLS segment's.
#[derive(Debug)]
struct Timings {
    duration_ms: i64,
    segments: HashMap<String, i64>,
}

impl std::fmt::Debug for Home {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Home")
            .field("id", &self.id)
            .field("name", &self.name)
            .finish()
    }
}

impl Home {
    /// Opens the home's directories and starts its sweeps (expiry, reports).
    pub fn start(
        store: Store,
        config: HomeConfig,
        who: SiteIdentity,
    ) -> Result<Arc<Self>, SiteError> {
        let mailbox = MailboxClient::new(
            config.mailbox.as_deref().unwrap_or(&config.origin),
            &config.token,
        )
        .map_err(|e| SiteError::Origin(config.origin.clone(), e))?;
        let io = |p: &FsPath| {
            let p = p.to_owned();
            move |e| SiteError::Io(p, e)
        };
        let copies = config.dir.join("copies");
        let hls = config.dir.join("hls");
        for d in [&copies, &hls] {
            std::fs::create_dir_all(d).map_err(io(d))?;
        }
        let link_key = LinkKey::from_bytes(tracecast_secrets::read_or_make(
            &config.dir.join("link.key"),
            "link key",
        )?);
        let home = Arc::new(Self {
            id: who.id,
            name: who.name,
            mailbox,
            reports_box: who.reports_box,
            origin_key: who.origin_key,
            link_key,
            store,
            copies,
            hls,
            work: Semaphore::new(std::thread::available_parallelism().map_or(2, |n| n.get())),
            config,
            rentals: Default::default(),
            timings: Default::default(),
        });
        tokio::spawn(home.clone().sweep_loop());
        tracing::info!(home = %home.name, id = home.id, "home server started");
        Ok(home)
    }

    pub fn id(&self) -> u16 {
        self.id
    }

    fn hls_dir(&self, delivery: i64) -> PathBuf {
        self.hls.join(delivery.to_string())
    }

    fn receipt(&self, c: &HomeCopy, address: &str) -> PushReceipt {
        let expires = c.until_ms / 1000;
        let sig = self.link_key.sign(c.delivery_id, expires);
        let prefix = format!("{address}/v1/copies/{}/{expires}/{sig}", c.delivery_id);
        let mode = c.mode;
        PushReceipt {
            url: Some(format!("{prefix}/{}", c.filename)),
            link_expires: expires,
            via: SiteCopy {
                site: self.name.clone(),
                mode,
                hls: (mode == Mode::Rental).then(|| format!("{prefix}/index.m3u8")),
                done: Some(format!("{prefix}/done")),
                until: Some(expires),
                disc: None,
            },
        }
    }

    /// A rental's viewing and what it was handed, from memory or the
    /// store.
    fn streamed_of(&self, c: &HomeCopy) -> Streamed {
        let mut map = self.rentals.lock().expect("lock");
        map.entry(c.delivery_id)
            .or_insert_with(|| Streamed {
                sessions: c.sessions.clone(),
                served_ms: c.served_ms,
            })
            .clone()
    }

    /// A rental's durations, read once from its HLS playlist.
    fn timings(&self, c: &HomeCopy) -> Result<Arc<Timings>, ApiError> {
        if let Some(t) = self.timings.lock().expect("lock").get(&c.delivery_id) {
            return Ok(t.clone());
        }
        let broken = || {
            ApiError::new(
                StatusCode::INTERNAL_SERVER_ERROR,
                "hls",
                "this rental's playlist is unreadable",
            )
        };
        let text = std::fs::read_to_string(self.hls_dir(c.delivery_id).join("index.m3u8"))
            .map_err(|_| broken())?;
        let (_, segments) =
            tracecast_delivery::ab::MediaPlaylist::parse_segments(&text).map_err(|_| broken())?;
        let t = Arc::new(Timings {
            duration_ms: segments.iter().map(|(d, _)| (d * 1000.0) as i64).sum(),
            segments: segments
                .into_iter()
                .map(|(d, uri)| (uri, (d * 1000.0).ceil() as i64))
                .collect(),
        });
        let mut map = self.timings.lock().expect("lock");
        if map.len() > 10_000 {
            map.clear();
        }
        map.insert(c.delivery_id, t.clone());
        Ok(t)
    }

    /// Counts a read of a rental as viewing and hands out `cost_ms` of
    /// playback if the pace allows (else 429 with when to ask again).
    async fn admit(&self, c: &HomeCopy, cost_ms: i64) -> Result<(), ApiError> {
        let now = tracecast_store::now_ms();
        let _ = self.streamed_of(c);
        let (verdict, sessions, served) = {
            let mut map = self.rentals.lock().expect("lock");
            let s = map.entry(c.delivery_id).or_default();
            s.sessions
                .touch(now, self.config.session_gap_ms, self.config.session_tail_ms);
            let verdict = self
                .config
                .pace
                .admit(s.served_ms, s.sessions.total_ms(), cost_ms);
            if let Admit::Serve { served_ms } = verdict {
                s.served_ms = served_ms;
            }
            (verdict, s.sessions.clone(), s.served_ms)
        };
        if let Err(e) = self
            .store
            .set_home_sessions(SiteId(i64::from(self.id)), c.delivery_id, &sessions, served)
            .await
        {
            tracing::warn!(delivery = c.delivery_id, error = %e, "recording a viewing session failed");
        }
        match verdict {
            Admit::Serve { .. } => Ok(()),
            Admit::Wait { retry_after_secs } => Err(ApiError::new(
                StatusCode::TOO_MANY_REQUESTS,
                "ahead_of_playback",
                format!(
                    "a rental streams at playback speed: this is ahead of what was played; ask again in {retry_after_secs} s"
                ),
            )
            .with_retry_after(retry_after_secs)),
        }
    }

    /// Deletes a copy and queues its report; whether this call ended it.
    async fn end(&self, c: &HomeCopy, event: SiteEvent) -> Result<bool, ApiError> {
        let now = tracecast_store::now_ms();
        let streamed = self.streamed_of(c);
        let mut sessions = streamed.sessions;
        sessions.close(now);
        // The files go first: a copy the store calls ended is one whose
        // bytes are already gone.
        self.remove_files(c).await;
        let ended = self
            .store
            .end_home_copy(
                SiteId(i64::from(self.id)),
                c.delivery_id,
                now,
                event,
                &sessions,
            )
            .await?;
        self.rentals.lock().expect("lock").remove(&c.delivery_id);
        self.timings.lock().expect("lock").remove(&c.delivery_id);
        if ended {
            tracing::info!(
                delivery = c.delivery_id,
                event = event.as_str(),
                viewed_ms = sessions.total_ms(),
                "copy deleted"
            );
            let mut done = c.clone();
            done.ended_at = Some(now);
            done.end_reason = Some(event);
            done.sessions = sessions;
            done.served_ms = streamed.served_ms;
            self.report(&done).await;
        }
        Ok(ended)
    }

    async fn remove_files(&self, c: &HomeCopy) {
        let _ = tokio::fs::remove_file(self.copies.join(&c.file)).await;
        let _ = tokio::fs::remove_dir_all(self.hls_dir(c.delivery_id)).await;
    }

    /// Sends an ended copy's report; the sweep retries the ones that fail.
    async fn report(&self, c: &HomeCopy) {
        let event = match c.end_reason {
            Some(e @ (SiteEvent::Delivered | SiteEvent::RentalEnded)) => e,
            _ => SiteEvent::Expired,
        };
        let report = SiteReport {
            delivery: c.delivery_id,
            site: self.id,
            event,
            viewing: c.sessions.spans.clone(),
            served_ms: c.served_ms,
            at: c.ended_at.unwrap_or_else(tracecast_store::now_ms),
            detail: String::new(),
        };
        match site::send_report(&self.mailbox, &self.reports_box, &report).await {
            Ok(()) => {
                let _ = self
                    .store
                    .set_home_reported(
                        SiteId(i64::from(self.id)),
                        c.delivery_id,
                        tracecast_store::now_ms(),
                    )
                    .await;
            }
            Err(e) => {
                tracing::warn!(delivery = c.delivery_id, error = %e, "report deferred");
            }
        }
    }

    /// Ends copies past their time and resends reports that failed.
    async fn sweep_loop(self: Arc<Self>) {
        loop {
            tokio::time::sleep(self.config.sweep_every).await;
            let now = tracecast_store::now_ms();
            if let Ok(live) = self
                .store
                .live_home_copies(SiteId(i64::from(self.id)))
                .await
            {
                for c in live.into_iter().filter(|c| c.until_ms <= now) {
                    let event = if c.mode == Mode::Rental {
                        SiteEvent::RentalEnded
                    } else {
                        SiteEvent::Expired
                    };
                    if let Err(e) = self.end(&c, event).await {
                        tracing::warn!(delivery = c.delivery_id, error = %e.message, "ending an expired copy failed");
                    }
                }
            }
            if let Ok(pending) = self
                .store
                .unreported_home_ends(SiteId(i64::from(self.id)))
                .await
            {
                for c in pending {
                    // A crash between ending and deleting left files.
                    self.remove_files(&c).await;
                    self.report(&c).await;
                }
            }
        }
    }
}

/// Where the routes find the home: filled when it has started.
pub type HomeSlot = crate::slot::Slot<Home>;

/// The home's routes, under `/home`.
pub fn router(home: Arc<Home>) -> Router {
    deferred_router(HomeSlot::holding(HOME, home))
}

/// The home's routes for a home that starts later (503 until then).
pub fn deferred_router(slot: HomeSlot) -> Router {
    Router::new()
        .route("/home/v1/health", get(health))
        .route(
            "/home/v1/copies",
            post(receive).layer(DefaultBodyLimit::disable()),
        )
        .route(
            "/home/v1/copies/{delivery}/{expires}/{sig}/{file}",
            get(read).post(done),
        )
        .layer(axum::extract::DefaultBodyLimit::max(
            crate::budget::JSON_BODY,
        ))
        .with_state(slot)
        // The contract is served while the home starts too.
        .merge(crate::openapi::router(crate::openapi::RoleApi::Home))
}

/// The home server, as 503 answers name it while it starts.
pub const HOME: &str = "the home server";

/// The copies the home holds, for its operator; anyone may ask.
#[utoipa::path(get, path = "/home/v1/health", tag = "home", security(()),
    responses(
        (status = 200, description = "The home's name and id, and the copies it holds (downloads waiting and rentals).",
            body = tracecast_delivery::api::HomeHealth),
        (status = 503, description = "The home server is starting (it learns who it is from the origin), or its store is unavailable; retry.", body = ErrorBody)))]
async fn health(
    State(slot): State<HomeSlot>,
) -> Result<Json<tracecast_delivery::api::HomeHealth>, ApiError> {
    let h = slot.started()?;
    let live = h.store.live_home_copies(SiteId(i64::from(h.id))).await?;
    Ok(Json(tracecast_delivery::api::HomeHealth {
        home: h.name.clone(),
        id: h.id,
        copies: live.len(),
        rentals: live.iter().filter(|c| c.mode == Mode::Rental).count(),
    }))
}

/// An edge pushes a copy it marked for a delivery through this home (a
/// download from the LAN, or a rental): the origin's ticket naming this
/// home and the voucher of the edge the ticket names are the authority (no
/// token). The body is checked against the vouched SHA-256 and kept; a
/// rental is packaged for HLS. The answer holds the signed links the user
/// reads the copy from and ends it with.
#[utoipa::path(post, path = "/home/v1/copies", tag = "home", security(()),
    params(
        ("Tracecast-Ticket" = String, Header, description = "The purchase ticket the origin signed, naming this home server."),
        ("Tracecast-Copy-Voucher" = String, Header, description = "The pushing edge's signed voucher for this copy (delivery, edge, site, SHA-256, length)."),
        ("Tracecast-Sha256" = String, Header, description = "The copy's SHA-256 (hex), as the voucher names it."),
        ("Tracecast-Filename" = String, Header, description = "The copy's file name: letters, digits, `.`, `_`, `-`.")),
    request_body(content = Vec<u8>, content_type = "application/octet-stream",
        description = "The marked copy; its Content-Type is the copy's media type."),
    responses(
        (status = 201, description = "The copy is kept (and, for a rental, packaged for HLS): its links.", body = PushReceipt),
        (status = 200, description = "The same copy was pushed before (the edge retried): the same links.", body = PushReceipt),
        (status = 400, description = "The ticket is malformed or not for a home server; the SHA-256 header is not the voucher's; \
            the file name is missing or not plain; or the body broke off.", body = ErrorBody),
        (status = 403, description = "No ticket, or its signature does not verify, it has expired, or it names another site; \
            or the voucher is missing, malformed, or not signed by the edge the ticket names.", body = ErrorBody),
        (status = 410, description = "This delivery's copy was already delivered, ended or expired here, and deleted.", body = ErrorBody),
        (status = 413, description = "The body is longer than the voucher says (or than a home takes); nothing is kept.", body = ErrorBody),
        (status = 422, description = "The body's SHA-256 is not the vouched one (damaged on the way: push again); \
            or this home cannot stream rentals (no ffmpeg).", body = ErrorBody),
        (status = 500, description = "Storing the copy or packaging the rental failed; nothing is kept.", body = ErrorBody),
        (status = 503, description = "The home server is starting or shutting down, or its store is unavailable; retry.", body = ErrorBody)))]
async fn receive(
    State(slot): State<HomeSlot>,
    headers: HeaderMap,
    body: Body,
) -> Result<Response, ApiError> {
    let h = slot.started()?;
    let p = site::read_push(&headers, &h.origin_key, h.id)?;
    let t = &p.ticket;
    if !matches!(t.mode, Mode::Home | Mode::Rental) {
        return Err(ApiError::bad_request(format!(
            "this ticket is for a {} delivery, not a home server",
            t.mode.as_str()
        )));
    }
    let address = t
        .site
        .as_ref()
        .map(|s| s.address.trim_end_matches('/').to_owned())
        .unwrap_or_default();
    if let Some(c) = h
        .store
        .home_copy(SiteId(i64::from(h.id)), t.delivery)
        .await?
    {
        if c.ended_at.is_some() {
            return Err(ApiError::new(
                StatusCode::GONE,
                "ended",
                format!(
                    "delivery {} was {} and its copy deleted",
                    t.delivery,
                    c.end_reason.map_or("ended", SiteEvent::as_str)
                ),
            ));
        }
        if c.sha256 == p.sha256
            && tokio::fs::try_exists(h.copies.join(&c.file))
                .await
                .unwrap_or(false)
        {
            // The edge retried: the same copy, the same links.
            return Ok(Json(h.receipt(&c, &address)).into_response());
        }
    }
    let ext = p
        .filename
        .rsplit_once('.')
        .map_or("bin", |(_, e)| e)
        .to_owned();
    let file = format!("{}.{ext}", t.delivery);
    let path = h.copies.join(&file);
    let rental = t.mode == Mode::Rental;
    let hls_dir = h.hls_dir(t.delivery);
    let len = site::store_body(body, &path, &p.sha256, p.bytes.min(MAX_COPY_BYTES as u64)).await?;
    if rental {
        let cfg = h.config.clone();
        let copy = path.clone();
        let video = p.media_type.starts_with("video/");
        let packaged =
            crate::on_worker(&h.work, move || package_hls(&cfg, &copy, &hls_dir, video)).await?;
        if let Err(e) = packaged {
            let _ = tokio::fs::remove_file(&path).await;
            return Err(match e {
                // This home cannot stream rentals at all: not a passing
                // failure (another edge would not help).
                Packaging::MissingTool(why) => {
                    ApiError::new(StatusCode::UNPROCESSABLE_ENTITY, "missing_tool", why)
                }
                Packaging::Failed(why) => {
                    ApiError::new(StatusCode::INTERNAL_SERVER_ERROR, "hls", why)
                }
            });
        }
    }
    let now = tracecast_store::now_ms();
    let until_ms = match t.rental_until {
        Some(s) if rental => s.saturating_mul(1000),
        _ => now + h.config.keep_secs * 1000,
    };
    let copy = HomeCopy {
        home_id: SiteId(i64::from(h.id)),
        delivery_id: t.delivery,
        user_id: UserId(i64::from(t.user)),
        content_id: t.content,
        mode: t.mode,
        file,
        bytes: len as i64,
        sha256: p.sha256.clone(),
        media_type: p.media_type.clone(),
        filename: p.filename.clone(),
        received_at: now,
        until_ms,
        sessions: Sessions::default(),
        ended_at: None,
        end_reason: None,
        reported_at: None,
        served_ms: 0,
    };
    h.store.put_home_copy(&copy).await?;
    tracing::info!(
        delivery = t.delivery,
        user = t.user,
        mode = t.mode.as_str(),
        bytes = copy.bytes,
        "copy received"
    );
    Ok((StatusCode::CREATED, Json(h.receipt(&copy, &address))).into_response())
}

/// Packages the marked copy for HLS in MPEG-TS segments, the form every
/// HLS player (Safari, hls.js, VLC, ffplay) plays and seeks in: audio is
/// encoded to AAC; video is remuxed as it is (H.264 and AAC copied, cut at
/// its key frames), since re-encoding would cost time and weaken the mark.
/// Why a rental could not be packaged.
enum Packaging {
    /// ffmpeg is not installed here.
    MissingTool(String),
    Failed(String),
}

fn package_hls(
    cfg: &HomeConfig,
    copy: &FsPath,
    dir: &FsPath,
    video: bool,
) -> Result<(), Packaging> {
    let tmp = dir.with_extension("partial");
    let _ = std::fs::remove_dir_all(&tmp);
    std::fs::create_dir_all(&tmp)
        .map_err(|e| Packaging::Failed(format!("{}: {e}", tmp.display())))?;
    let mut cmd = std::process::Command::new(&cfg.ffmpeg);
    cmd.args(["-nostdin", "-v", "error", "-y", "-i"]).arg(copy);
    if video {
        cmd.args([
            "-map",
            "0:v:0",
            "-map",
            "0:a:0?",
            "-map_metadata",
            "-1",
            "-c",
            "copy",
        ]);
    } else {
        cmd.args([
            "-vn",
            "-map_metadata",
            "-1",
            "-c:a",
            "aac",
            "-b:a",
            &cfg.hls_bitrate,
        ]);
    }
    let out = cmd
        .args(["-f", "hls", "-hls_time", &cfg.segment_secs.to_string()])
        .args(["-hls_playlist_type", "vod", "-hls_segment_filename"])
        .arg(tmp.join("seg%05d.ts"))
        .arg(tmp.join("index.m3u8"))
        .output()
        .map_err(|e| {
            let why = format!(
                "this home server cannot stream rentals: running {} failed ({e}); it needs ffmpeg (apt-get install ffmpeg)",
                cfg.ffmpeg
            );
            if e.kind() == std::io::ErrorKind::NotFound {
                Packaging::MissingTool(why)
            } else {
                Packaging::Failed(why)
            }
        })?;
    if !out.status.success() {
        return Err(Packaging::Failed(format!(
            "packaging the rental for HLS failed: {}",
            String::from_utf8_lossy(&out.stderr).trim()
        )));
    }
    let _ = std::fs::remove_dir_all(dir);
    std::fs::rename(&tmp, dir).map_err(|e| Packaging::Failed(format!("{}: {e}", dir.display())))
}

/// A link's path: which copy, until when, signed.
struct Link {
    delivery: i64,
    expires: i64,
    file: String,
}

impl Link {
    fn check(
        h: &Home,
        (delivery, expires, sig, file): (String, String, String, String),
    ) -> Result<Self, ApiError> {
        let bad = || ApiError::forbidden("this link is not valid");
        let delivery: i64 = delivery.parse().map_err(|_| bad())?;
        let expires: i64 = expires.parse().map_err(|_| bad())?;
        h.link_key
            .verify(delivery, expires, &sig, tracecast_store::now_ms() / 1000)
            .map_err(|x| ApiError::forbidden(x.to_string()))?;
        Ok(Self {
            delivery,
            expires,
            file,
        })
    }
}

async fn live_copy(h: &Home, delivery: i64) -> Result<HomeCopy, ApiError> {
    match h.store.home_copy(SiteId(i64::from(h.id)), delivery).await? {
        Some(c) if c.ended_at.is_none() => Ok(c),
        Some(c) => Err(ApiError::new(
            StatusCode::GONE,
            "gone",
            format!(
                "this copy was deleted ({})",
                c.end_reason.map_or("ended", SiteEvent::as_str)
            ),
        )),
        None => Err(ApiError::new(
            StatusCode::NOT_FOUND,
            "unknown_copy",
            "this home server holds no such copy",
        )),
    }
}

/// The copy itself with byte ranges, or a rental's HLS playlist and
/// segments, behind the signed link the home gave (the link in the path is
/// the authority: no token); HEAD answers the headers alone. A rental
/// streams: its file only in bounded ranges, and nothing faster than it
/// plays; its reads are the viewing it is billed by.
#[utoipa::path(get, path = "/home/v1/copies/{delivery}/{expires}/{sig}/{file}", tag = "home", security(()),
    params(
        ("delivery" = i64, Path, description = "The delivery the copy was pushed for."),
        ("expires" = i64, Path, description = "When the link stops working (Unix seconds), as the link gives it."),
        ("sig" = String, Path, description = "The link's signature, as the link gives it."),
        ("file" = String, Path, description = "The copy's file name; for a rental also `index.m3u8` or a segment `segNNNNN.ts`."),
        ("Range" = Option<String>, Header, description = "Byte ranges (`bytes=0-1023`); a rental's file is read only in ranges, each cut to the home's bound."),
        ("If-Range" = Option<String>, Header, description = "Serve the ranges only if the file is still this ETag or Last-Modified date (ignored for a rental's file)."),
        ("If-None-Match" = Option<String>, Header, description = "The ETag the caller holds: 304 if it is still the file's.")),
    responses(
        (status = 200, description = "The whole file: the copy in its own media type (an attachment; inline for a rental), \
            a rental's HLS playlist, or one of its MPEG-TS segments.",
            content((Vec<u8> = "application/octet-stream"), (String = "application/vnd.apple.mpegurl"), (Vec<u8> = "video/mp2t")),
            headers(
                ("ETag" = String, description = "The file's validator."),
                ("Last-Modified" = String, description = "When the copy arrived."),
                ("Accept-Ranges" = String, description = "`bytes`."),
                ("Content-Disposition" = String, description = "`attachment` (`inline` for a rental) with the file's name."))),
        (status = 206, description = "The ranges asked for: one range with Content-Range, or several as `multipart/byteranges`; \
            for a rental's file, one range no longer than the home's bound.",
            content_type = "application/octet-stream", body = Vec<u8>,
            headers(("Content-Range" = String, description = "The range served and the file's length."))),
        (status = 304, description = "If-None-Match names the file's ETag."),
        (status = 403, description = "The link is not valid (altered, malformed or expired); or a rental's whole file was asked for (a rental streams in ranges).", body = ErrorBody),
        (status = 404, description = "This home holds no such copy, no such segment, or serves no such file on this link.", body = ErrorBody),
        (status = 410, description = "The copy was deleted (delivered, ended or expired).", body = ErrorBody),
        (status = 416, description = "No range asked for lies within the file: for a rental's file with the error JSON; \
            otherwise with no body and Content-Range `bytes */LENGTH`.", body = ErrorBody),
        (status = 429, description = "A rental is read faster than it plays: ask again after Retry-After.", body = ErrorBody,
            headers(("Retry-After" = u64, description = "Seconds to wait."))),
        (status = 500, description = "The file, or a rental's playlist, could not be read.", body = ErrorBody),
        (status = 503, description = "The home server is starting, or its store is unavailable; retry.", body = ErrorBody)))]
async fn read(
    State(slot): State<HomeSlot>,
    method: axum::http::Method,
    headers: HeaderMap,
    Path(parts): Path<(String, String, String, String)>,
) -> Result<Response, ApiError> {
    let mut headers = headers;
    let h = slot.started()?;
    let link = Link::check(&h, parts)?;
    let c = live_copy(&h, link.delivery).await?;
    let rental = c.mode == Mode::Rental;
    let (path, media_type, etag, len, counts) = if link.file == c.filename {
        (
            h.copies.join(&c.file),
            c.media_type.clone(),
            format!("\"{}\"", c.sha256),
            c.bytes as u64,
            true,
        )
    } else if rental && is_hls_name(&link.file) {
        let path = h.hls_dir(c.delivery_id).join(&link.file);
        let meta = tokio::fs::metadata(&path)
            .await
            .map_err(|_| ApiError::new(StatusCode::NOT_FOUND, "no_segment", "no such segment"))?;
        let playlist = link.file.ends_with(".m3u8");
        (
            path,
            if playlist {
                "application/vnd.apple.mpegurl".to_owned()
            } else {
                "video/mp2t".to_owned()
            },
            format!(
                "\"{}-{}-{}\"",
                c.sha256.get(..16).unwrap_or(""),
                link.file,
                meta.len()
            ),
            meta.len(),
            !playlist,
        )
    } else {
        return Err(ApiError::new(
            StatusCode::NOT_FOUND,
            "no_file",
            "this link serves the copy (and, for rentals, its HLS playlist and segments)",
        ));
    };
    // A rental streams: the file in bounded ranges, segments whole, both
    // handed out no faster than they play (DESIGN.md: rentals do not hand
    // the file over).
    if rental && counts && method != axum::http::Method::HEAD {
        let t = h.timings(&c)?;
        let cost = if link.file == c.filename {
            let r = rental_range(
                headers.get(header::RANGE).and_then(|v| v.to_str().ok()),
                len,
                h.config.pace.max_range,
            )
            .map_err(|e| match e {
                RentalRangeError::WholeFile => {
                    ApiError::new(StatusCode::FORBIDDEN, "rental_streams", e.to_string())
                }
                RentalRangeError::Unsatisfiable => ApiError::new(
                    StatusCode::RANGE_NOT_SATISFIABLE,
                    "range",
                    format!("{e} ({len} bytes)"),
                ),
            })?;
            // Answer exactly the bounded range (If-Range cannot widen it).
            headers.remove(header::IF_RANGE);
            headers.insert(
                header::RANGE,
                header::HeaderValue::from_str(&format!("bytes={}-{}", r.first, r.last))
                    .expect("a range is ASCII"),
            );
            range_cost_ms(r.len(), len, t.duration_ms)
        } else {
            t.segments.get(&link.file).copied().unwrap_or(t.duration_ms)
        };
        h.admit(&c, cost).await?;
    }
    let last_modified = httpdate::fmt_http_date(
        std::time::UNIX_EPOCH + Duration::from_millis(c.received_at.max(0) as u64),
    );
    let name = if link.file == c.filename {
        c.filename.clone()
    } else {
        link.file.clone()
    };
    let rep = crate::serve::Representation {
        source: crate::serve::Source::File(&path),
        len,
        etag,
        last_modified,
        media_type: &media_type,
        filename: &name,
        max_age: (link.expires - tracecast_store::now_ms() / 1000).max(0) as u64,
        inline: rental,
    };
    crate::serve::respond(&rep, &headers).await
}

fn is_hls_name(f: &str) -> bool {
    f == "index.m3u8"
        || f.strip_prefix("seg")
            .and_then(|r| r.strip_suffix(".ts"))
            .is_some_and(|n| !n.is_empty() && n.len() <= 8 && n.bytes().all(|b| b.is_ascii_digit()))
}

/// The user confirms a download arrived whole, or ends a rental, through
/// the `done` link the home gave (the link in the path is the authority: no
/// token); the copy is deleted and reported to the origin with the viewing.
#[utoipa::path(post, path = "/home/v1/copies/{delivery}/{expires}/{sig}/{file}", tag = "home", security(()),
    params(
        ("delivery" = i64, Path, description = "The delivery the copy was pushed for."),
        ("expires" = i64, Path, description = "When the link stops working (Unix seconds), as the link gives it."),
        ("sig" = String, Path, description = "The link's signature, as the link gives it."),
        ("file" = String, Path, description = "`done`: a POST goes to the link's `…/done`.")),
    responses(
        (status = 200, description = "The copy is deleted and its end reported (a rental's viewing with it).", body = SiteCopyEnded),
        (status = 403, description = "The link is not valid (altered, malformed or expired).", body = ErrorBody),
        (status = 404, description = "This home holds no such copy.", body = ErrorBody),
        (status = 405, description = "The link's last part is not `done`.", body = ErrorBody),
        (status = 410, description = "The copy was already deleted (delivered, ended or expired).", body = ErrorBody),
        (status = 503, description = "The home server is starting, or its store is unavailable; nothing was changed, retry.", body = ErrorBody)))]
async fn done(
    State(slot): State<HomeSlot>,
    Path(parts): Path<(String, String, String, String)>,
) -> Result<Response, ApiError> {
    let h = slot.started()?;
    let link = Link::check(&h, parts)?;
    if link.file != "done" {
        return Err(ApiError::new(
            StatusCode::METHOD_NOT_ALLOWED,
            "method",
            "POST goes to …/done",
        ));
    }
    let c = live_copy(&h, link.delivery).await?;
    let event = if c.mode == Mode::Rental {
        SiteEvent::RentalEnded
    } else {
        SiteEvent::Delivered
    };
    h.end(&c, event).await?;
    let viewed_ms = h
        .store
        .home_copy(SiteId(i64::from(h.id)), c.delivery_id)
        .await?
        .map_or(0, |c| c.sessions.total_ms());
    Ok(Json(SiteCopyEnded {
        delivery: c.delivery_id,
        event,
        viewed_ms,
        deleted: true,
    })
    .into_response())
}

/// The home role's contract (`/openapi/home.json`, docs/openapi/home.json).
#[derive(utoipa::OpenApi)]
#[openapi(
    info(description = "A home server (DESIGN.md \"001\" steps 5-6): a cache near users that takes copies an edge marked for them, \
        to download on the LAN or, for a rental, to play from here (HLS or byte ranges, no faster than it plays). \
        No bearer token is used here. An edge's push (`POST /home/v1/copies`) carries the origin's ticket naming this home \
        and the pushing edge's signed voucher for the copy; its answer gives the user signed, expiring links whose path \
        (`/home/v1/copies/{delivery}/{expires}/{sig}/…`) is the authority: read the copy (or a rental's playlist and segments), \
        and POST `…/done` to confirm receipt or end the rental. \
        Errors are JSON `{\"error\": code, \"message\": text}`; a 503 changed nothing and may be retried."),
    paths(health, receive, read, done),
    tags((name = "home", description = "Copies pushed by edges, read and ended by their users"))
)]
pub struct Api;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_hls_names_are_served_from_the_package() {
        for ok in ["index.m3u8", "seg00000.ts", "seg12.ts"] {
            assert!(is_hls_name(ok), "{ok}");
        }
        for bad in [
            "../x",
            "seg.ts",
            "segab.ts",
            "index.m3u",
            "seg000000000.ts",
            "init.mp4",
        ] {
            assert!(!is_hls_name(bad), "{bad}");
        }
    }
}
