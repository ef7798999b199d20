//! The kiosk role (store server, DESIGN.md "001" step 7): a server in a
//! shop. An edge marks a copy for the user and pushes it here; the kiosk
//! writes a disc image a burner accepts (ISO 9660 with Joliet and Rock
//! Ridge, `tracecast-disc`) holding the copy and a manifest of the order,
//! refuses an order that does not fit the medium, erases the pushed copy
//! once its image is written (or refused), and reports to the origin through the mailbox, where
//! the store is billed (it pays the provider on the user's behalf) and the
//! user owes the store. The shop's operator lists the images, takes each
//! to the burner and confirms it burned, which deletes the image.

use std::io::Write;
use std::path::{Path as FsPath, PathBuf};
use std::sync::Arc;

use axum::body::Body;
use axum::extract::{DefaultBodyLimit, Path, State};
use axum::http::{header, HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use ed25519_dalek::VerifyingKey;
use sha2::{Digest, Sha256};
use tokio::sync::Semaphore;
use tracecast_client::MailboxClient;
use tracecast_delivery::api::{
    DiscBurned, DiscReceipt, DiscShipped as DiscShippedBody, KioskDisc, PushReceipt, SiteCopy,
};
use tracecast_delivery::{DiscStatus, Mode, SiteEvent, SiteReport};
use tracecast_disc::{DiscFile, Medium, Plan};
use tracecast_mailbox::BoxName;
use tracecast_store::{KioskOrder, SiteId, Store, UserId};

use crate::openapi::{ErrorBody, Refusals};
use crate::site::{self, SiteError, SiteIdentity};
use crate::ApiError;

/// Largest copy a kiosk takes.
pub const MAX_COPY_BYTES: usize = 8 << 30;

/// Settings of a kiosk.
#[derive(Debug, Clone)]
pub struct KioskConfig {
    pub origin: String,
    /// This kiosk's account token; the shop's operator uses it too.
    pub token: String,
    /// Where disc images wait for the burner.
    pub dir: PathBuf,
    /// The mailbox that takes reports, when it is not at the origin's URL.
    pub mailbox: Option<String>,
}

impl KioskConfig {
    pub fn new(origin: &str, token: &str, dir: &FsPath) -> Self {
        Self {
            origin: origin.trim_end_matches('/').to_owned(),
            token: token.trim().to_owned(),
            dir: dir.to_owned(),
            mailbox: None,
        }
    }
}

/// The running kiosk.
pub struct Kiosk {
    id: u16,
    name: String,
    mailbox: MailboxClient,
    reports_box: BoxName,
    origin_key: VerifyingKey,
    store: Store,
    discs: PathBuf,
    token_hash: String,
    work: Semaphore,
}

impl std::fmt::Debug for Kiosk {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Kiosk")
            .field("id", &self.id)
            .field("name", &self.name)
            .finish()
    }
}

impl Kiosk {
    pub fn start(
        store: Store,
        config: KioskConfig,
        who: SiteIdentity,
    ) -> Result<Arc<Self>, SiteError> {
        let mailbox = MailboxClient::new(
            config.mailbox.as_deref().unwrap_or(&config.origin),
            &config.token,
        )
        .map_err(|e| SiteError::Origin(config.origin.clone(), e))?;
        let discs = config.dir.join("discs");
        std::fs::create_dir_all(&discs).map_err(|e| SiteError::Io(discs.clone(), e))?;
        let kiosk = Arc::new(Self {
            id: who.id,
            name: who.name,
            mailbox,
            reports_box: who.reports_box,
            origin_key: who.origin_key,
            store,
            discs,
            token_hash: crate::auth::token_hash(&config.token),
            // One image at a time per core: each is a long sequential write.
            work: Semaphore::new(std::thread::available_parallelism().map_or(2, |n| n.get())),
        });
        tokio::spawn(kiosk.clone().report_loop());
        tracing::info!(kiosk = %kiosk.name, id = kiosk.id, "kiosk started");
        Ok(kiosk)
    }

    pub fn id(&self) -> u16 {
        self.id
    }

    /// Where an order's image is.
    pub fn image_path(&self, delivery: i64) -> PathBuf {
        self.discs.join(format!("{delivery}.iso"))
    }

    /// Tells the origin a later stage of an order (burned, shipped) at
    /// once; the origin applies each stage once, and relays it to the
    /// buyer.
    async fn report_stage(
        &self,
        delivery: i64,
        event: SiteEvent,
        detail: String,
    ) -> Result<(), ApiError> {
        let report = SiteReport {
            delivery,
            site: self.id,
            event,
            viewing: Vec::new(),
            served_ms: 0,
            at: tracecast_store::now_ms(),
            detail,
        };
        site::send_report(&self.mailbox, &self.reports_box, &report)
            .await
            .map_err(|e| {
                tracing::warn!(delivery, error = %e, "stage report not sent");
                ApiError::new(
                    StatusCode::SERVICE_UNAVAILABLE,
                    "unavailable",
                    "the origin could not be told; nothing was changed, retry",
                )
                .with_retry_after(5)
            })
    }

    async fn report(&self, o: &KioskOrder) {
        let report = SiteReport {
            delivery: o.delivery_id,
            site: self.id,
            event: if o.status == DiscStatus::Refused {
                SiteEvent::Refused
            } else {
                SiteEvent::DiscWritten
            },
            viewing: Vec::new(),
            served_ms: 0,
            at: o.created_at,
            detail: o.detail.clone(),
        };
        match site::send_report(&self.mailbox, &self.reports_box, &report).await {
            Ok(()) => {
                let _ = self
                    .store
                    .set_kiosk_reported(
                        SiteId(i64::from(self.id)),
                        o.delivery_id,
                        tracecast_store::now_ms(),
                    )
                    .await;
            }
            Err(e) => tracing::warn!(delivery = o.delivery_id, error = %e, "report deferred"),
        }
    }

    async fn report_loop(self: Arc<Self>) {
        loop {
            tokio::time::sleep(std::time::Duration::from_secs(3)).await;
            if let Ok(pending) = self
                .store
                .unreported_kiosk_orders(SiteId(i64::from(self.id)))
                .await
            {
                for o in pending {
                    self.report(&o).await;
                }
            }
        }
    }

    /// The shop's operator: the kiosk's own token.
    fn operator(&self, headers: &HeaderMap) -> Result<(), ApiError> {
        let token = headers
            .get(header::AUTHORIZATION)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.strip_prefix("Bearer "))
            .map(str::trim)
            .ok_or_else(|| ApiError::unauthorized("missing Authorization: Bearer <kiosk token>"))?;
        if crate::auth::token_hash(token) != self.token_hash {
            return Err(ApiError::forbidden(
                "this is for the shop's operator (the kiosk's token)",
            ));
        }
        Ok(())
    }
}

pub type KioskSlot = crate::slot::Slot<Kiosk>;

pub fn router(kiosk: Arc<Kiosk>) -> Router {
    deferred_router(KioskSlot::holding(KIOSK, kiosk))
}

pub fn deferred_router(slot: KioskSlot) -> Router {
    Router::new()
        .route("/kiosk/v1/health", get(health))
        .route(
            "/kiosk/v1/copies",
            post(receive).layer(DefaultBodyLimit::disable()),
        )
        .route("/kiosk/v1/discs", get(discs))
        .route("/kiosk/v1/discs/{delivery}/image", get(image))
        .route("/kiosk/v1/discs/{delivery}/burned", post(burned))
        .route("/kiosk/v1/discs/{delivery}/shipped", post(shipped))
        .layer(axum::extract::DefaultBodyLimit::max(
            crate::budget::JSON_BODY,
        ))
        .with_state(slot)
        // The contract is served while the kiosk starts too.
        .merge(crate::openapi::router(crate::openapi::RoleApi::Kiosk))
}

/// The kiosk, as 503 answers name it while it starts.
pub const KIOSK: &str = "the kiosk";

/// The images waiting for the burner, for the shop; anyone may ask.
#[utoipa::path(get, path = "/kiosk/v1/health", tag = "kiosk", security(()),
    responses(
        (status = 200, description = "The kiosk's name and id, and how many images wait for the burner.",
            body = tracecast_delivery::api::KioskHealth),
        (status = 503, description = "The kiosk is starting (it learns who it is from the origin), or its store is unavailable; retry.", body = ErrorBody)))]
async fn health(
    State(slot): State<KioskSlot>,
) -> Result<Json<tracecast_delivery::api::KioskHealth>, ApiError> {
    let k = slot.started()?;
    let orders = k.store.kiosk_orders(SiteId(i64::from(k.id))).await?;
    Ok(Json(tracecast_delivery::api::KioskHealth {
        kiosk: k.name.clone(),
        id: k.id,
        waiting_to_burn: orders
            .iter()
            .filter(|o| o.status == DiscStatus::Written)
            .count(),
    }))
}

fn receipt(o: &KioskOrder, capacity: u64, files: Vec<String>, name: &str) -> PushReceipt {
    PushReceipt {
        url: None,
        link_expires: 0,
        via: SiteCopy {
            site: name.to_owned(),
            mode: Mode::Kiosk,
            hls: None,
            done: None,
            until: None,
            disc: Some(DiscReceipt {
                medium: o.medium.clone(),
                volume: volume_name(o.delivery_id),
                image_bytes: o.image_bytes.unwrap_or(0).max(0) as u64,
                image_sha256: o.image_sha256.clone().unwrap_or_default(),
                capacity,
                files,
                fulfilment: o.fulfilment.clone(),
            }),
        },
    }
}

fn volume_name(delivery: i64) -> String {
    format!("TRACECAST_{delivery}")
}

fn refused(detail: &str) -> ApiError {
    ApiError::new(
        StatusCode::UNPROCESSABLE_ENTITY,
        "refused",
        detail.to_owned(),
    )
}

/// An edge pushes a copy it marked for a kiosk order: the origin's ticket
/// naming this kiosk (with the medium and fulfilment) and the voucher of
/// the edge the ticket names are the authority (no token). The kiosk
/// writes a disc image holding the copy and the order's manifest, or
/// refuses an order that does not fit the medium; either way it keeps no
/// copy apart from the image, and reports to the origin.
#[utoipa::path(post, path = "/kiosk/v1/copies", tag = "kiosk", security(()),
    params(
        ("Tracecast-Ticket" = String, Header, description = "The purchase ticket the origin signed, naming this kiosk and the order's medium."),
        ("Tracecast-Copy-Voucher" = String, Header, description = "The pushing edge's signed voucher for this copy (delivery, edge, site, SHA-256, length)."),
        ("Tracecast-Sha256" = String, Header, description = "The copy's SHA-256 (hex), as the voucher names it."),
        ("Tracecast-Filename" = String, Header, description = "The copy's file name on the disc: letters, digits, `.`, `_`, `-`.")),
    request_body(content = Vec<u8>, content_type = "application/octet-stream",
        description = "The marked copy; its Content-Type is the copy's media type."),
    responses(
        (status = 201, description = "The disc image is written and waits for the burner; `via.disc` describes it.", body = PushReceipt),
        (status = 200, description = "The order was written before (the edge retried): the first outcome stands.", body = PushReceipt),
        (status = 400, description = "The ticket is malformed, or not a kiosk order with a medium; the medium is unknown; \
            the SHA-256 header is not the voucher's; the file name is missing or not plain, or cannot go on a disc; or the body broke off.", body = ErrorBody),
        (status = 403, description = "No ticket, or its signature does not verify, it has expired, or it names another site; \
            or the voucher is missing, malformed, or not signed by the edge the ticket names.", body = ErrorBody),
        (status = 413, description = "The body is longer than the voucher says (or than a kiosk takes); nothing is kept.", body = ErrorBody),
        (status = 422, description = "The order does not fit its medium (refused, now or when first pushed: nothing is charged); \
            or the body's SHA-256 is not the vouched one (damaged on the way: push again).", body = ErrorBody),
        (status = 500, description = "Storing the copy or writing the image failed; no image is kept.", body = ErrorBody),
        (status = 503, description = "The kiosk is starting or shutting down, or its store is unavailable; retry.", body = ErrorBody)))]
async fn receive(
    State(slot): State<KioskSlot>,
    headers: HeaderMap,
    body: Body,
) -> Result<Response, ApiError> {
    let k = slot.started()?;
    let p = site::read_push(&headers, &k.origin_key, k.id)?;
    let t = p.ticket.clone();
    let order = match (&t.mode, &t.disc) {
        (Mode::Kiosk, Some(d)) => d.clone(),
        _ => {
            return Err(ApiError::bad_request(
                "this ticket is not a kiosk order with a medium",
            ))
        }
    };
    let medium: Medium = order
        .medium
        .parse()
        .map_err(|e: tracecast_disc::DiscError| ApiError::bad_request(e.to_string()))?;
    let manifest_name = "manifest.json".to_owned();
    let files = vec![manifest_name.clone(), p.filename.clone()];
    if let Some(o) = k
        .store
        .kiosk_order(SiteId(i64::from(k.id)), t.delivery)
        .await?
    {
        // The edge retried: the first outcome stands.
        return match o.status {
            DiscStatus::Refused => Err(refused(&o.detail)),
            _ => Ok(Json(receipt(&o, medium.capacity(), files, &k.name)).into_response()),
        };
    }
    // The copy waits on disk only while its image is written.
    let copy_path = k
        .discs
        .join(format!("{}-{:08x}.copy", t.delivery, rand::random::<u32>()));
    let len = site::store_body(
        body,
        &copy_path,
        &p.sha256,
        p.bytes.min(MAX_COPY_BYTES as u64),
    )
    .await?;
    let erase = || {
        let path = copy_path.clone();
        async move {
            let _ = tokio::fs::remove_file(path).await;
        }
    };
    let now = tracecast_store::now_ms();
    let manifest = serde_json::to_vec_pretty(&serde_json::json!({
        "format": "tracecast-disc/1",
        "delivery": t.delivery,
        "content": t.content,
        "tier": t.tier,
        "user": t.user,
        "store": k.name,
        "medium": medium.to_string(),
        "fulfilment": order.fulfilment,
        "written_at_ms": now,
        "files": [{
            "name": p.filename,
            "bytes": len,
            "sha256": p.sha256,
            "media_type": p.media_type,
        }],
        "notice": "This copy carries an invisible mark naming its recipient. Personal use only.",
    }))
    .expect("serialises");
    let plan = Plan::new(
        &volume_name(t.delivery),
        vec![
            DiscFile {
                name: manifest_name,
                len: manifest.len() as u64,
                modified: now / 1000,
            },
            DiscFile {
                name: p.filename.clone(),
                len,
                modified: now / 1000,
            },
        ],
        now / 1000,
    )
    .map_err(|e| ApiError::bad_request(e.to_string()))?;
    let mut o = KioskOrder {
        kiosk_id: SiteId(i64::from(k.id)),
        delivery_id: t.delivery,
        user_id: UserId(i64::from(t.user)),
        content_id: t.content,
        medium: medium.to_string(),
        fulfilment: order.fulfilment.clone(),
        status: DiscStatus::Written,
        detail: String::new(),
        image: None,
        image_bytes: None,
        image_sha256: None,
        created_at: now,
        reported_at: None,
    };
    if let Err(e) = medium.check_fits(plan.image_bytes()) {
        erase().await;
        o.status = DiscStatus::Refused;
        o.detail = format!("{e}; the order was not written and nothing is charged");
        k.store.put_kiosk_order(&o).await?;
        tracing::warn!(delivery = t.delivery, %medium, "order refused: does not fit");
        k.report(&o).await;
        return Err(refused(&o.detail));
    }
    let path = k.image_path(t.delivery);
    let copy = copy_path.clone();
    let written =
        crate::on_worker(&k.work, move || write_disc(&plan, &path, &manifest, &copy)).await;
    // Written or not, the kiosk keeps no copy apart from the image.
    erase().await;
    let written =
        written?.map_err(|e| ApiError::new(StatusCode::INTERNAL_SERVER_ERROR, "disc", e))?;
    o.image = Some(format!("{}.iso", t.delivery));
    o.image_bytes = Some(written.0 as i64);
    o.image_sha256 = Some(written.1.clone());
    o.detail = format!(
        "{} image of {} bytes on {medium}, sha256 {}",
        "ISO 9660 + Joliet + Rock Ridge", written.0, written.1
    );
    k.store.put_kiosk_order(&o).await?;
    tracing::info!(delivery = t.delivery, user = t.user, %medium, bytes = written.0, "disc image written");
    k.report(&o).await;
    Ok((
        StatusCode::CREATED,
        Json(receipt(&o, medium.capacity(), files, &k.name)),
    )
        .into_response())
}

/// Writes the image through a temporary name, synced; answers its size and
/// SHA-256.
fn write_disc(
    plan: &Plan,
    path: &FsPath,
    manifest: &[u8],
    copy: &FsPath,
) -> Result<(u64, String), String> {
    let tmp = path.with_extension(format!("partial-{:08x}", rand::random::<u32>()));
    let written = write_image_file(plan, &tmp, manifest, copy).and_then(|done| {
        std::fs::rename(&tmp, path)
            .map_err(|e| e.to_string())
            .map(|()| done)
    });
    if written.is_err() {
        // A half image is never left under any name.
        let _ = std::fs::remove_file(&tmp);
    }
    written
}

fn write_image_file(
    plan: &Plan,
    tmp: &FsPath,
    manifest: &[u8],
    copy: &FsPath,
) -> Result<(u64, String), String> {
    struct Hashing<W> {
        inner: W,
        sha: Sha256,
    }
    impl<W: Write> Write for Hashing<W> {
        fn write(&mut self, b: &[u8]) -> std::io::Result<usize> {
            let n = self.inner.write(b)?;
            self.sha.update(&b[..n]);
            Ok(n)
        }
        fn flush(&mut self) -> std::io::Result<()> {
            self.inner.flush()
        }
    }
    let file = std::fs::File::create(tmp).map_err(|e| format!("{}: {e}", tmp.display()))?;
    let mut out = Hashing {
        inner: std::io::BufWriter::with_capacity(1 << 20, file),
        sha: Sha256::new(),
    };
    let n = tracecast_disc::write_image(
        plan,
        &mut out,
        |f| -> std::io::Result<Box<dyn std::io::Read>> {
            Ok(if f.name == "manifest.json" {
                Box::new(std::io::Cursor::new(manifest.to_vec()))
            } else {
                Box::new(std::io::BufReader::with_capacity(
                    1 << 20,
                    std::fs::File::open(copy)?,
                ))
            })
        },
        &mut |_, _| {},
    )
    .map_err(|e| e.to_string())?;
    let sha = hex::encode(out.sha.finalize());
    let file = out
        .inner
        .into_inner()
        .map_err(|e| format!("writing the image: {e}"))?;
    file.sync_all().map_err(|e| e.to_string())?;
    Ok((n, sha))
}

/// The kiosk's orders and their images (the shop's operator, with the
/// kiosk's own token; any other token is refused with 403).
#[utoipa::path(get, path = "/kiosk/v1/discs", tag = "kiosk", security(("bearer" = [])),
    responses(
        (status = 200, description = "Every order this kiosk took, with whether its image waits for the burner.", body = Vec<KioskDisc>),
        Refusals))]
async fn discs(State(slot): State<KioskSlot>, headers: HeaderMap) -> Result<Response, ApiError> {
    let k = slot.started()?;
    k.operator(&headers)?;
    let orders = k.store.kiosk_orders(SiteId(i64::from(k.id))).await?;
    Ok(Json(orders.into_iter().map(KioskDisc::from).collect::<Vec<_>>()).into_response())
}

/// The order whose image waits for the burner.
async fn waiting_image(k: &Kiosk, delivery: &str) -> Result<(i64, KioskOrder), ApiError> {
    let d = parse_delivery(delivery)?;
    let o = k
        .store
        .kiosk_order(SiteId(i64::from(k.id)), d)
        .await?
        .filter(|o| o.image.is_some())
        .ok_or_else(|| {
            ApiError::new(
                StatusCode::NOT_FOUND,
                "no_image",
                "no image waits for this order",
            )
        })?;
    Ok((d, o))
}

fn parse_delivery(s: &str) -> Result<i64, ApiError> {
    s.parse()
        .map_err(|_| ApiError::bad_request(format!("{s:?} is not a delivery id")))
}

/// The disc image of an order, to burn, with byte ranges (the shop's
/// operator, with the kiosk's own token).
#[utoipa::path(get, path = "/kiosk/v1/discs/{delivery}/image", tag = "kiosk", security(("bearer" = [])),
    params(
        ("delivery" = i64, Path, description = "The order's delivery."),
        ("Range" = Option<String>, Header, description = "Byte ranges (`bytes=0-1023`, several comma-separated)."),
        ("If-Range" = Option<String>, Header, description = "Serve the ranges only if the image is still this ETag or Last-Modified date; else the whole image."),
        ("If-None-Match" = Option<String>, Header, description = "The ETag the caller holds: 304 if it is still the image's.")),
    responses(
        (status = 200, description = "The whole image (ISO 9660 with Joliet and Rock Ridge), as an attachment.",
            content_type = "application/x-iso9660-image", body = Vec<u8>,
            headers(
                ("ETag" = String, description = "The image's SHA-256, quoted."),
                ("Accept-Ranges" = String, description = "`bytes`."),
                ("Content-Disposition" = String, description = "`attachment; filename=\"tracecast-{delivery}.iso\"`."))),
        (status = 206, description = "The ranges asked for: one range with Content-Range, or several as `multipart/byteranges`.",
            content_type = "application/x-iso9660-image", body = Vec<u8>,
            headers(("Content-Range" = String, description = "The range served and the image's length."))),
        (status = 304, description = "If-None-Match names the image's ETag."),
        (status = 404, description = "No image waits for this order (none was written, or it was burned).", body = ErrorBody),
        (status = 416, description = "No range asked for lies within the image.", body = ErrorBody,
            headers(("Content-Range" = String, description = "`bytes */LENGTH`: the image's length."))),
        (status = 500, description = "The image could not be read.", body = ErrorBody),
        Refusals))]
async fn image(
    State(slot): State<KioskSlot>,
    headers: HeaderMap,
    Path(delivery): Path<String>,
) -> Result<Response, ApiError> {
    let k = slot.started()?;
    k.operator(&headers)?;
    let (d, o) = waiting_image(&k, &delivery).await?;
    let path = k.image_path(d);
    let name = format!("tracecast-{d}.iso");
    let rep = crate::serve::Representation {
        source: crate::serve::Source::File(&path),
        len: o.image_bytes.unwrap_or(0).max(0) as u64,
        etag: format!("\"{}\"", o.image_sha256.clone().unwrap_or_default()),
        last_modified: httpdate::fmt_http_date(
            std::time::UNIX_EPOCH + std::time::Duration::from_millis(o.created_at.max(0) as u64),
        ),
        media_type: "application/x-iso9660-image",
        filename: &name,
        max_age: 0,
        inline: false,
    };
    crate::serve::respond(&rep, &headers).await
}

/// The disc is made: its image is deleted (the shop's operator, with the
/// kiosk's own token).
#[utoipa::path(post, path = "/kiosk/v1/discs/{delivery}/burned", tag = "kiosk", security(("bearer" = [])),
    params(("delivery" = i64, Path, description = "The order's delivery.")),
    responses(
        (status = 200, description = "The image is deleted.", body = DiscBurned),
        (status = 404, description = "No image waits for this order (none was written, or it was burned already).", body = ErrorBody),
        Refusals))]
async fn burned(
    State(slot): State<KioskSlot>,
    headers: HeaderMap,
    Path(delivery): Path<String>,
) -> Result<Response, ApiError> {
    let k = slot.started()?;
    k.operator(&headers)?;
    let (d, o) = waiting_image(&k, &delivery).await?;
    // The written report first (if the outbox has not sent it yet), so
    // the origin hears the stages in order; then burned. Told before the
    // image goes: a failure changes nothing and may be retried.
    if o.reported_at.is_none() {
        k.report(&o).await;
    }
    k.report_stage(d, SiteEvent::DiscBurned, String::new())
        .await?;
    let _ = tokio::fs::remove_file(k.image_path(d)).await;
    k.store
        .clear_kiosk_image(SiteId(i64::from(k.id)), d)
        .await?;
    tracing::info!(delivery = d, "disc burned; image deleted");
    Ok(Json(DiscBurned {
        delivery: d,
        image_deleted: true,
    })
    .into_response())
}

/// The burned disc is posted (the shop's operator, with the kiosk's own
/// token): the buyer hears it, with the tracking reference.
#[utoipa::path(post, path = "/kiosk/v1/discs/{delivery}/shipped", tag = "kiosk", security(("bearer" = [])),
    params(("delivery" = i64, Path, description = "The order's delivery.")),
    request_body = DiscShippedBody,
    responses(
        (status = 204, description = "The origin is told; the buyer hears it."),
        (status = 404, description = "No such order.", body = ErrorBody),
        (status = 409, description = "The order is collected at the shop, or its disc is not burned yet.", body = ErrorBody),
        (status = 415, description = "The body is not JSON.", body = ErrorBody),
        (status = 422, description = "The body is JSON of the wrong shape.", body = ErrorBody),
        Refusals))]
async fn shipped(
    State(slot): State<KioskSlot>,
    headers: HeaderMap,
    Path(delivery): Path<String>,
    body: Result<Json<DiscShippedBody>, axum::extract::rejection::JsonRejection>,
) -> Result<Response, ApiError> {
    let k = slot.started()?;
    k.operator(&headers)?;
    let d = parse_delivery(&delivery)?;
    let Json(body) = body?;
    let tracking = body.tracking.unwrap_or_default();
    if tracking.chars().count() > 200 || tracking.chars().any(char::is_control) {
        return Err(ApiError::bad_request(
            "a tracking reference is at most 200 printable characters",
        ));
    }
    let o = k
        .store
        .kiosk_order(SiteId(i64::from(k.id)), d)
        .await?
        .ok_or_else(|| ApiError::new(StatusCode::NOT_FOUND, "unknown_order", "no such order"))?;
    if !matches!(o.fulfilment, tracecast_delivery::Fulfilment::Ship { .. }) {
        return Err(ApiError::new(
            StatusCode::CONFLICT,
            "pickup_order",
            "this order is collected at the shop, not posted",
        ));
    }
    if o.status != DiscStatus::Burned {
        return Err(ApiError::new(
            StatusCode::CONFLICT,
            "not_burned",
            "the disc is not burned yet: burn it first",
        ));
    }
    k.report_stage(d, SiteEvent::DiscShipped, tracking).await?;
    tracing::info!(delivery = d, "disc shipped");
    Ok(StatusCode::NO_CONTENT.into_response())
}

/// The kiosk role's contract (`/openapi/kiosk.json`, docs/openapi/kiosk.json).
#[derive(utoipa::OpenApi)]
#[openapi(
    info(description = "A kiosk in a shop (DESIGN.md \"001\" step 7): it takes copies an edge marked for kiosk orders and writes \
        each to a disc image (ISO 9660 with Joliet and Rock Ridge) for the shop's burner, refusing an order that does not fit \
        its medium. An edge's push (`POST /kiosk/v1/copies`) carries the origin's ticket naming this kiosk and the pushing \
        edge's signed voucher for the copy: no token. The shop's operator lists the orders, downloads each image and confirms \
        it burned with the kiosk's own account token (`Authorization: Bearer <kiosk token>`); any other token is refused. \
        Errors are JSON `{\"error\": code, \"message\": text}`; a 503 changed nothing and may be retried."),
    paths(health, receive, discs, image, burned, shipped),
    tags((name = "kiosk", description = "Copies pushed by edges, written to disc images for the shop's burner"))
)]
pub struct Api;
