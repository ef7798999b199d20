//! Ingest: a provider's upload becomes renditions (DESIGN.md "001"
//! step 1). The source is decoded once; each tier is encoded, tagged with
//! the rights (provider, content id, terms) in the file's own metadata, and
//! stored in the blob store under its SHA-256; only then is it recorded.

use std::sync::Arc;

use axum::body::Bytes;
use axum::extract::rejection::{BytesRejection, QueryRejection};
use axum::extract::{Query, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::Json;
use serde::Deserialize;
use sha2::{Digest, Sha256};
use tracecast_delivery::{ContentKind, Tier};
use tracecast_media::{MediaError, OutputFormat, Pcm, PictureFormat, Rights};
use tracecast_store::{NewContent, RenditionRecord};

use super::{upload_bytes, Origin};
use crate::openapi::{ErrorBody, Refusals};
use crate::ApiError;

/// Longest preview excerpt.
pub const PREVIEW_SECS: f64 = 30.0;
/// Shortest audio accepted.
pub const MIN_AUDIO_SECS: f64 = 5.0;
/// Highest rate kept in the lossless tier (the FLAC writer's limit).
const MAX_LOSSLESS_RATE: u32 = 96_000;

#[derive(Deserialize)]
pub(super) struct IngestQuery {
    title: String,
    #[serde(default)]
    price_cents: i64,
    terms: Option<String>,
    filename: Option<String>,
    /// What renting costs (`0.50/hour`, `1.50/day`, `0.02/minute max 3`).
    rental_tariff: Option<String>,
    /// Reserve the content for members up to this order.
    reserved_up_to_order: Option<i64>,
    /// Deliver copies encrypted, opened with licences.
    #[serde(default)]
    protected: bool,
    /// How copies are marked: `direct` (the default), `ab` (A/B variants,
    /// so that edges assemble copies from them instead of marking each;
    /// audio: the high tier, video: HLS segments), or `auto` (A/B variants
    /// for audio long enough to carry a whole payload and not protected).
    marking: Option<tracecast_delivery::ab::Marking>,
    /// `ab=true`: the same as `marking=ab`.
    #[serde(default)]
    ab: bool,
}

impl IngestQuery {
    /// The marking asked for, `ab=true` read as `marking=ab`.
    fn marking(&self) -> Result<tracecast_delivery::ab::Marking, ApiError> {
        use tracecast_delivery::ab::Marking;
        match (self.ab, self.marking) {
            (true, None | Some(Marking::Ab)) => Ok(Marking::Ab),
            (true, Some(m)) => Err(ApiError::bad_request(format!(
                "ab=true and marking={} disagree",
                m.as_str()
            ))),
            (false, m) => Ok(m.unwrap_or_default()),
        }
    }
}

/// The tier a video is sold in (HLS assembled from A/B segments, or the
/// source marked for each buyer).
pub const VIDEO_TIER: Tier = Tier::Stream;
/// Length of a video's HLS segments (one bit of a buyer's sequence each).
pub const VIDEO_SEGMENT_SECS: u32 = 2;

/// The HLS variants as edges see them.
pub(super) fn hls_info(
    h: &tracecast_store::HlsVariantsRecord,
) -> Result<tracecast_delivery::api::HlsInfo, ApiError> {
    let files = serde_json::from_str(&h.manifest).map_err(|e| {
        ApiError::new(
            StatusCode::INTERNAL_SERVER_ERROR,
            "bad_manifest",
            format!("the stored HLS manifest does not parse: {e}"),
        )
    })?;
    Ok(tracecast_delivery::api::HlsInfo {
        segments: h.segments as u64,
        segment_secs: h.segment_secs as u32,
        playlist: h.playlist.clone(),
        files,
    })
}

/// Makes a video's A/B variants (HLS) for content `id` and stores them:
/// every file a blob under `hls/{id}/`, the manifest and variant A's
/// playlist recorded, and the playlist as the `stream` rendition.
async fn store_video(
    o: &Origin,
    id: i64,
    bytes: Bytes,
    ext: Option<String>,
) -> Result<usize, ApiError> {
    let failed = |e: String| {
        ApiError::new(
            StatusCode::UNPROCESSABLE_ENTITY,
            "bad_media",
            format!("cannot ingest this video: {e}; nothing was stored"),
        )
    };
    let internal =
        |e: std::io::Error| ApiError::new(StatusCode::INTERNAL_SERVER_ERROR, "io", e.to_string());
    let dir = tempfile::tempdir().map_err(internal)?;
    let work = dir.path().to_owned();
    let key = o.mark_key.clone();
    let made = crate::on_worker(&o.work, move || {
        let ext: String = ext
            .filter(|e| e.len() <= 8 && e.chars().all(|c| c.is_ascii_alphanumeric()))
            .unwrap_or_else(|| "mp4".into());
        let src = work.join(format!("source.{ext}"));
        std::fs::write(&src, &bytes).map_err(|e| e.to_string())?;
        tracecast_media::video::make_ab_hls(
            &src,
            &work.join("ab"),
            &key,
            &tracecast_media::video::AbSpec {
                content: id,
                segment_secs: VIDEO_SEGMENT_SECS,
                config: Default::default(),
            },
            &Default::default(),
            &mut |_, _| {},
        )
        .map_err(|e| e.to_string())
    })
    .await?
    .map_err(failed)?;
    let mut files = std::collections::BTreeMap::new();
    for v in ["a", "b"] {
        let vdir = dir.path().join("ab").join(v);
        let mut names: Vec<String> = std::fs::read_dir(&vdir)
            .map_err(internal)?
            .filter_map(|e| e.ok()?.file_name().into_string().ok())
            .filter(|n| n.ends_with(".m4s") || n == "init.mp4")
            .collect();
        names.sort();
        for name in names {
            let path = vdir.join(&name);
            let sha = hex::encode(Sha256::digest(std::fs::read(&path).map_err(internal)?));
            let len = std::fs::metadata(&path).map_err(internal)?.len();
            o.blobs
                .put_file(&format!("hls/{id}/{v}/{name}"), &path)
                .await
                .map_err(super::blob_error)?;
            files.insert(format!("{v}/{name}"), (len, sha));
        }
    }
    let playlist = std::fs::read_to_string(dir.path().join("ab/a/index.m3u8")).map_err(internal)?;
    let parsed = tracecast_delivery::ab::MediaPlaylist::parse(&playlist)
        .map_err(|e| failed(e.to_string()))?;
    if parsed.segments.len() != made.segments {
        return Err(failed(format!(
            "the playlist lists {} segments, the encode made {}",
            parsed.segments.len(),
            made.segments
        )));
    }
    let sha256 = hex::encode(Sha256::digest(playlist.as_bytes()));
    let key = format!("hls/{id}/a/index.m3u8");
    o.blobs
        .put(&key, Bytes::from(playlist.clone()))
        .await
        .map_err(super::blob_error)?;
    o.store
        .add_hls_variants(
            id,
            &tracecast_store::HlsVariantsRecord {
                tier: VIDEO_TIER,
                segments: made.segments as i64,
                segment_secs: i64::from(VIDEO_SEGMENT_SECS),
                playlist: playlist.clone(),
                manifest: serde_json::to_string(&files).expect("a map serialises"),
            },
        )
        .await?;
    add_video_rendition(
        o,
        id,
        key,
        sha256,
        playlist.len(),
        "application/vnd.apple.mpegurl",
    )
    .await?;
    Ok(made.segments)
}

/// Records a video's one rendition, in [`VIDEO_TIER`].
async fn add_video_rendition(
    o: &Origin,
    id: i64,
    blob_key: String,
    sha256: String,
    bytes: usize,
    media_type: &str,
) -> Result<(), ApiError> {
    o.store
        .add_renditions(
            id,
            &[RenditionRecord {
                tier: VIDEO_TIER,
                blob_key,
                sha256,
                bytes: bytes as i64,
                media_type: media_type.into(),
            }],
        )
        .await?;
    Ok(())
}

/// Stores a video for direct marking: the source itself, checked with
/// ffprobe, as the `stream` rendition; each edge marks every frame of it
/// for each buyer.
async fn store_video_source(
    o: &Origin,
    id: i64,
    bytes: Bytes,
    ext: Option<String>,
) -> Result<(), ApiError> {
    let dir = tempfile::tempdir()
        .map_err(|e| ApiError::new(StatusCode::INTERNAL_SERVER_ERROR, "io", e.to_string()))?;
    let src = dir.path().join(format!(
        "source.{}",
        ext.filter(|e| e.len() <= 8 && e.chars().all(|c| c.is_ascii_alphanumeric()))
            .unwrap_or_else(|| "mp4".into())
    ));
    let body = bytes.clone();
    crate::on_worker(&o.work, move || {
        std::fs::write(&src, &body).map_err(|e| e.to_string())?;
        tracecast_media::video::probe(&src).map_err(|e| e.to_string())
    })
    .await?
    .map_err(|e| {
        ApiError::new(
            StatusCode::UNPROCESSABLE_ENTITY,
            "bad_media",
            format!("cannot ingest this video: {e}; nothing was stored"),
        )
    })?;
    let media_type = video_media_type(&bytes[..bytes.len().min(16)]);
    let sha256 = hex::encode(Sha256::digest(&bytes));
    let key = format!("renditions/{sha256}");
    let len = bytes.len();
    o.blobs.put(&key, bytes).await.map_err(super::blob_error)?;
    add_video_rendition(o, id, key, sha256, len, media_type).await
}

/// A video container's media type, by its first bytes.
fn video_media_type(head: &[u8]) -> &'static str {
    if head.starts_with(&[0x1A, 0x45, 0xDF, 0xA3]) {
        "video/x-matroska"
    } else if head.first() == Some(&0x47) {
        "video/mp2t"
    } else {
        "video/mp4"
    }
}

/// The tier whose copies are assembled from A/B variants.
pub const AB_TIER: Tier = Tier::High;

/// A/B variants made at ingest: two FLAC streams spliceable frame by
/// frame, one frame per unit.
struct MadeVariants {
    pair: tracecast_media::FlacPair,
    /// The same variants as MP3, when ffmpeg is here to make them.
    mp3: Option<tracecast_media::mp3::Mp3Pair>,
    units: usize,
}

/// What edges need to assemble copies from a content's variants.
pub(super) fn ab_info(v: &tracecast_store::AbVariantsRecord) -> tracecast_delivery::api::AbInfo {
    let flac = v
        .flac
        .as_ref()
        .map(|f| tracecast_delivery::ab::FlacVariants {
            header_bytes: v.data_offset as u64,
            frames: f.frames as u64,
            a_bytes: v.bytes as u64,
            b_bytes: f.b_bytes as u64,
            index_sha256: f.index_sha256.clone(),
        });
    tracecast_delivery::api::AbInfo {
        geometry: tracecast_delivery::ab::Geometry {
            units: v.units as u64,
            data_offset: v.data_offset as u64,
            frame_bytes: v.frame_bytes as u64,
            bytes: v.bytes as u64,
            unit_frames: tracecast_mark::audio::ab::UNIT_SAMPLES as u64,
            cut_frames: if flac.is_some() {
                0
            } else {
                tracecast_mark::audio::ab::CUT as u64
            },
        },
        a_sha256: v.a_sha256.clone(),
        b_sha256: v.b_sha256.clone(),
        media_type: if flac.is_some() {
            "audio/flac"
        } else {
            "audio/wav"
        }
        .into(),
        flac,
        mp3: v.mp3.as_ref().map(|m| tracecast_delivery::ab::Mp3Variants {
            a_sha256: m.a_sha256.clone(),
            b_sha256: m.b_sha256.clone(),
            index_sha256: m.index_sha256.clone(),
            ..mp3_variants(m.bytes as u64, m.frames as u64, m.kbps as u32)
        }),
    }
}

/// MP3 variants' shape: frames of the encoder's, units of the mark's.
fn mp3_variants(bytes: u64, frames: u64, kbps: u32) -> tracecast_delivery::ab::Mp3Variants {
    tracecast_delivery::ab::Mp3Variants {
        a_sha256: String::new(),
        b_sha256: String::new(),
        bytes,
        frames,
        kbps,
        frame_samples: tracecast_media::mp3::FRAME_SAMPLES as u64,
        delay_samples: tracecast_media::mp3::DELAY as u64,
        unit_samples: tracecast_mark::audio::ab::UNIT_SAMPLES as u64,
        cut_samples: tracecast_mark::audio::ab::CUT as u64,
        index_sha256: String::new(),
    }
}

/// Whether audio, brought to CD quality as its variants would be, holds a
/// whole coded payload.
fn carries_payload(pcm: &Pcm) -> bool {
    let frames = pcm.frames() as u64 * 44_100 / u64::from(pcm.sample_rate.max(1));
    tracecast_mark::fingerprint::carries_whole_payload(tracecast_mark::audio::ab::units(
        frames as usize,
    ))
}

fn make_variants(
    pcm: &Pcm,
    key: &tracecast_mark::MarkKey,
    warnings: &mut Vec<String>,
) -> Result<MadeVariants, MediaError> {
    let pcm = tracecast_media::cd_quality(pcm);
    let v = tracecast_mark::audio::ab::embed_variants(
        &pcm.channels,
        pcm.sample_rate,
        key,
        &Default::default(),
        &mut |_, _| {},
    )
    .map_err(|e| MediaError::Malformed(e.to_string()))?;
    let pcm_of = |channels: Vec<Vec<f32>>| Pcm {
        sample_rate: pcm.sample_rate,
        channels,
        bits_per_sample: Some(16),
    };
    let units = v.units;
    let (a, b) = (pcm_of(v.a), pcm_of(v.b));
    let pair = tracecast_media::encode_flac_pair(&a, &b, tracecast_mark::audio::ab::UNIT_SAMPLES)?;
    let mp3 = if tracecast_media::video::ffmpeg_available() {
        Some(tracecast_media::mp3::encode_mp3_pair(
            &a,
            &b,
            tracecast_media::mp3::DEFAULT_KBPS,
        )?)
    } else {
        warnings.push(
            "no MP3 variants were made (ffmpeg is not installed here): copies are FLAC only".into(),
        );
        None
    };
    Ok(MadeVariants { pair, mp3, units })
}

/// One rendition, encoded but not yet tagged.
struct Made {
    tier: Tier,
    bytes: Vec<u8>,
    media_type: &'static str,
}

/// Ingests an upload into the catalog (providers).
///
/// The source (audio, a picture or a video) is decoded once and each tier
/// encoded, tagged with the rights and stored; the content is listed once
/// its renditions are. The same source uploaded again answers the content
/// already made.
#[utoipa::path(post, path = "/v1/contents", tag = "contents", security(("bearer" = [])),
    params(("title" = String, Query, description = "1 to 300 characters."),
        ("price_cents" = Option<i64>, Query, minimum = 0, description = "The price of a copy, in cents (default 0)."),
        ("terms" = Option<String>, Query, description = "The licence terms tagged into every copy (the origin's default otherwise)."),
        ("filename" = Option<String>, Query, description = "The source's file name; its extension helps decoding."),
        ("rental_tariff" = Option<String>, Query, description = "What renting costs: `0.50/hour`, `1.50/day`, `0.02/minute max 3`."),
        ("reserved_up_to_order" = Option<i64>, Query, minimum = 1, description = "Reserve the content for members up to this order."),
        ("protected" = Option<bool>, Query, description = "Deliver copies encrypted, opened with licences (not video)."),
        ("marking" = Option<tracecast_delivery::ab::Marking>, Query, description = "How copies are marked: `direct` (default: every copy marked by the edge; an excerpt of a few seconds still traces), `ab` (A/B variants that edges assemble copies from; audio: the high tier; video: HLS segments; an audio excerpt needs about 32 s from its start), or `auto` (A/B variants for audio that holds a whole payload, about 33 s or more, and is not protected; direct otherwise)."),
        ("ab" = Option<bool>, Query, description = "`ab=true` is `marking=ab`."),
        ("Tracecast-Sha256" = Option<String>, Header, description = "The upload's SHA-256 (hex); a damaged upload is refused.")),
    request_body(content = Vec<u8>, content_type = "application/octet-stream", description = "The source file."),
    responses(
        (status = 201, description = "Ingested.", body = tracecast_delivery::api::ContentInfo),
        (status = 200, description = "This source was ingested before (`existing`); nothing new was made.", body = tracecast_delivery::api::ContentInfo),
        (status = 413, description = "Larger than the upload limit, or audio or a picture beyond the ingest budget; nothing was stored.", body = ErrorBody),
        (status = 429, description = "An ingest of this provider is running: one at a time; nothing was stored.", body = ErrorBody,
            headers(("Retry-After" = u64, description = "Seconds to wait."))),
        (status = 422, description = "The upload does not match its Tracecast-Sha256, or it cannot be ingested (undecodable, too short, audio that cannot carry a readable mark (code `unmarkable`), protected video, A/B variants of a picture); nothing was stored.", body = ErrorBody),
        (status = 500, description = "Encoding or storing a rendition failed; nothing was stored.", body = ErrorBody),
        Refusals))]
pub(super) async fn add_content(
    State(o): State<Arc<Origin>>,
    headers: HeaderMap,
    query: Result<Query<IngestQuery>, QueryRejection>,
    body: Result<Bytes, BytesRejection>,
) -> Result<Response, ApiError> {
    let caller = o.caller(&headers).await?;
    let (provider_id, provider) = caller.provider()?;
    let provider = provider.clone();
    let _ingesting = o.ingests.admit(provider_id)?;
    let Query(q) = query.map_err(|e| {
        ApiError::bad_request(format!(
            "{}: give ?title=...&price_cents=...",
            e.body_text()
        ))
    })?;
    let title = q.title.trim().to_owned();
    if title.is_empty() || title.len() > 300 {
        return Err(ApiError::bad_request(
            "a title of 1 to 300 characters is needed",
        ));
    }
    if q.price_cents < 0 {
        return Err(ApiError::bad_request("a price cannot be negative"));
    }
    let marking = q.marking()?;
    let terms = q.terms.unwrap_or_else(|| o.config.default_terms.clone());
    let rental_tariff = match q.rental_tariff.as_deref().map(str::trim) {
        None | Some("") => None,
        Some(t) => Some(
            t.parse::<tracecast_ledger::RentalTariff>()
                .map_err(|e| ApiError::bad_request(e.to_string()))?
                .to_string(),
        ),
    };
    if q.reserved_up_to_order.is_some_and(|n| n < 1) {
        return Err(ApiError::bad_request("orders start at 1"));
    }
    let bytes = upload_bytes(&headers, body)?;
    let source_sha256 = hex::encode(Sha256::digest(&bytes));
    if let Some(id) = o
        .store
        .content_by_source(provider_id, &source_sha256)
        .await?
    {
        // A retried upload: the content is already there.
        if let Some(c) = o.store.content(id).await? {
            let mut info = o.content_info(&c).await?;
            if !info.renditions.is_empty() {
                info.existing = true;
                return Ok((StatusCode::OK, Json(info)).into_response());
            }
        }
    }
    let ext = q
        .filename
        .as_deref()
        .and_then(|f| f.rsplit_once('.'))
        .map(|(_, e)| e.to_ascii_lowercase());
    let source_bytes = bytes.len() as i64;
    let started = std::time::Instant::now();
    if tracecast_media::video::is_video(&bytes[..bytes.len().min(192)]) {
        if q.protected {
            return Err(ApiError::new(
                StatusCode::UNPROCESSABLE_ENTITY,
                "bad_media",
                "video is delivered unprotected (its mark is the protection); nothing was stored",
            ));
        }
        let id = o
            .store
            .add_content(&NewContent {
                provider_id,
                title: title.clone(),
                kind: ContentKind::Video,
                price_cents: q.price_cents,
                terms: terms.clone(),
                source_sha256,
                source_bytes,
                rental_tariff: rental_tariff.clone(),
                reserved_up_to_order: q.reserved_up_to_order,
                protected: false,
                renditions: Vec::new(),
            })
            .await?;
        let stored = if marking.video_variants() {
            store_video(&o, id, bytes, ext).await
        } else {
            store_video_source(&o, id, bytes, ext).await.map(|()| 0)
        };
        let segments = match stored {
            Ok(n) => n,
            Err(e) => {
                let _ = o.store.delete_unfinished_content(id).await;
                return Err(e);
            }
        };
        tracing::info!(
            content = id, %title, provider = %provider.name, kind = "video", segments,
            seconds = started.elapsed().as_secs_f64(), "ingested"
        );
        let c = o.content_or_404(id).await?;
        return Ok((StatusCode::CREATED, Json(o.content_info(&c).await?)).into_response());
    }
    let (protected, mark_key) = (q.protected, o.mark_key.clone());
    let budget = o.config.budgets.ingest();
    let made = crate::on_worker(&o.work, move || {
        let (kind, made, pcm, mut warnings) = make_renditions(&bytes, ext.as_deref(), &budget)?;
        let variants = match (marking, pcm) {
            (m, Some(pcm)) if m.audio_variants(carries_payload(&pcm), protected) => {
                Some(make_variants(&pcm, &mark_key, &mut warnings)?)
            }
            (tracecast_delivery::ab::Marking::Ab, None) => {
                return Err(MediaError::Malformed(
                    "A/B variants are made for audio only".into(),
                ))
            }
            _ => None,
        };
        Ok((kind, made, variants, warnings))
    })
    .await?;
    let (kind, made, variants, warnings) = made.map_err(|e| {
        let (status, code) = super::budget_refusal(&e);
        ApiError::new(
            status,
            code,
            format!("cannot ingest this file: {e}; nothing was stored"),
        )
    })?;
    let id = o
        .store
        .add_content(&NewContent {
            provider_id,
            title: title.clone(),
            kind,
            price_cents: q.price_cents,
            terms: terms.clone(),
            source_sha256,
            source_bytes,
            rental_tariff,
            reserved_up_to_order: q.reserved_up_to_order,
            protected: q.protected,
            renditions: Vec::new(),
        })
        .await?;
    let rights = Rights {
        provider: provider.name.clone(),
        content_id: id,
        title: title.clone(),
        terms,
    };
    let stored = store_renditions(&o, &rights, made).await;
    let records = match stored {
        Ok(r) => r,
        Err(e) => {
            let _ = o.store.delete_unfinished_content(id).await;
            return Err(e);
        }
    };
    if let Some(v) = variants {
        // Recorded before the renditions: a content is visible only once
        // it has renditions, and then its variants are there too.
        let stored = store_variants(&o, id, &rights, v).await;
        if let Err(e) = stored {
            let _ = o.store.delete_unfinished_content(id).await;
            return Err(e);
        }
    }
    if let Err(e) = o.store.add_renditions(id, &records).await {
        let _ = o.store.delete_unfinished_content(id).await;
        return Err(e.into());
    }
    tracing::info!(
        content = id, %title, provider = %provider.name, kind = kind.as_str(),
        renditions = records.len(), seconds = started.elapsed().as_secs_f64(), "ingested"
    );
    for w in &warnings {
        tracing::warn!(content = id, provider = %provider.name, "{w}");
    }
    let c = o.content_or_404(id).await?;
    let mut info = o.content_info(&c).await?;
    info.warnings = warnings;
    Ok((StatusCode::CREATED, Json(info)).into_response())
}

async fn store_renditions(
    o: &Origin,
    rights: &Rights,
    made: Vec<Made>,
) -> Result<Vec<RenditionRecord>, ApiError> {
    let mut out = Vec::with_capacity(made.len());
    for m in made {
        let tagged = tracecast_media::tag(&m.bytes, rights).map_err(|e| {
            ApiError::new(
                StatusCode::INTERNAL_SERVER_ERROR,
                "ingest_failed",
                e.to_string(),
            )
        })?;
        let sha256 = hex::encode(Sha256::digest(&tagged));
        let key = format!("renditions/{sha256}");
        let len = tagged.len() as i64;
        o.blobs
            .put(&key, Bytes::from(tagged))
            .await
            .map_err(super::blob_error)?;
        out.push(RenditionRecord {
            tier: m.tier,
            blob_key: key,
            sha256,
            bytes: len,
            media_type: m.media_type.into(),
        });
    }
    Ok(out)
}

/// Stores a content's variants, each tagged with its rights (the same
/// metadata in both), and the index of their frames.
async fn store_variants(
    o: &Origin,
    content: i64,
    rights: &Rights,
    v: MadeVariants,
) -> Result<(), ApiError> {
    let failed = |e: String| ApiError::new(StatusCode::INTERNAL_SERVER_ERROR, "ingest_failed", e);
    let pair = v.pair;
    let a = tracecast_media::tag(&pair.a, rights).map_err(|e| failed(e.to_string()))?;
    let b = tracecast_media::tag(&pair.b, rights).map_err(|e| failed(e.to_string()))?;
    let frames_of = |sizes: &[u32]| sizes.iter().map(|&s| s as usize).sum::<usize>();
    let header = a.len() - frames_of(&pair.a_frames);
    if b.len() - frames_of(&pair.b_frames) != header || a[..header] != b[..header] {
        return Err(failed("the two variants' FLAC metadata differ".into()));
    }
    let index =
        tracecast_delivery::ab::FlacFrames::encode(header as u64, &pair.a_frames, &pair.b_frames);
    let (a_len, b_len) = (a.len(), b.len());
    let put = |bytes: Vec<u8>| async move {
        let sha256 = hex::encode(Sha256::digest(&bytes));
        let key = format!("renditions/{sha256}");
        o.blobs
            .put(&key, Bytes::from(bytes))
            .await
            .map_err(super::blob_error)?;
        Ok::<_, ApiError>((key, sha256))
    };
    let (a, b, index) = (put(a).await?, put(b).await?, put(index).await?);
    let mp3 = match v.mp3 {
        Some(m) => {
            let index = tracecast_delivery::ab::Mp3Frames::encode(
                &mp3_variants(m.a.len() as u64, m.frames.len() as u64, 0),
                &m.frames,
            );
            let bytes = m.a.len() as i64;
            let (ma, mb, mi) = (put(m.a).await?, put(m.b).await?, put(index).await?);
            Some(tracecast_store::AbMp3Record {
                a_blob_key: ma.0,
                a_sha256: ma.1,
                b_blob_key: mb.0,
                b_sha256: mb.1,
                bytes,
                frames: m.frames.len() as i64,
                kbps: i64::from(tracecast_media::mp3::DEFAULT_KBPS),
                index_blob_key: mi.0,
                index_sha256: mi.1,
            })
        }
        None => None,
    };
    o.store
        .add_ab_variants(
            content,
            &tracecast_store::AbVariantsRecord {
                tier: AB_TIER,
                units: v.units as i64,
                data_offset: header as i64,
                frame_bytes: 0,
                bytes: a_len as i64,
                a_blob_key: a.0,
                a_sha256: a.1,
                b_blob_key: b.0,
                b_sha256: b.1,
                flac: Some(tracecast_store::AbFlacRecord {
                    frames: pair.a_frames.len() as i64,
                    b_bytes: b_len as i64,
                    index_blob_key: index.0,
                    index_sha256: index.1,
                }),
                mp3,
            },
        )
        .await?;
    Ok(())
}

/// Decodes the source and encodes every tier of its kind; audio's decoded
/// PCM comes back too, and what the provider should be warned of.
#[allow(clippy::type_complexity)]
fn make_renditions(
    bytes: &Bytes,
    ext: Option<&str>,
    budget: &super::DecodeBudget,
) -> Result<(ContentKind, Vec<Made>, Option<Pcm>, Vec<String>), MediaError> {
    if tracecast_media::is_picture(&bytes[..bytes.len().min(16)]) {
        let img = tracecast_media::decode_picture_within(bytes, Some(budget.max_pixels))?;
        let (format, media_type) = if bytes.starts_with(&[0xFF, 0xD8]) {
            (PictureFormat::Jpeg(92), "image/jpeg")
        } else {
            (PictureFormat::Png, "image/png")
        };
        let mut out = Vec::new();
        for &tier in ContentKind::Picture.tiers() {
            let pic = match tier.max_side() {
                Some(side) => tracecast_media::fit_picture(&img, side),
                None => img.clone(),
            };
            out.push(Made {
                tier,
                bytes: tracecast_media::encode_picture(&pic, format)?,
                media_type,
            });
        }
        return Ok((ContentKind::Picture, out, None, Vec::new()));
    }
    // The upload is read where it lies, not copied.
    let pcm = tracecast_media::decode_bytes_within(bytes.clone(), ext, Some(budget.audio))?.pcm;
    // A copy must be traceable: the audio mark needs about one block
    // (4.5 s) to be read back.
    if pcm.duration_secs() < MIN_AUDIO_SECS {
        return Err(MediaError::Malformed(format!(
            "the audio lasts {:.1} s; works shorter than {MIN_AUDIO_SECS} s cannot carry a readable mark",
            pcm.duration_secs()
        )));
    }
    // The source itself when its rate fits: no copy of every sample.
    let resampled = (pcm.sample_rate > MAX_LOSSLESS_RATE).then(|| Pcm {
        sample_rate: MAX_LOSSLESS_RATE,
        channels: pcm
            .channels
            .iter()
            .map(|c| tracecast_mark::audio::resample(c, pcm.sample_rate, MAX_LOSSLESS_RATE))
            .collect(),
        bits_per_sample: pcm.bits_per_sample,
    });
    let lossless = resampled.as_ref().unwrap_or(&pcm);
    let cd = tracecast_media::cd_quality(&pcm);
    // Never an untraceable copy delivered silently: a probe copy of what
    // buyers get is marked and read back before anything is stored.
    let check = tracecast_mark::audio::check_markable(&cd.channels, cd.sample_rate)
        .map_err(|e| MediaError::Unmarkable(format!("the audio cannot be marked: {e}")))?;
    if let Some(why) = check.refusal() {
        return Err(MediaError::Unmarkable(why));
    }
    let warnings: Vec<String> = check.warning().into_iter().collect();
    let flac = |p: &Pcm| tracecast_media::encode_to_vec(p, OutputFormat::Flac);
    let out = vec![
        Made {
            tier: Tier::Lossless,
            bytes: flac(lossless)?,
            media_type: "audio/flac",
        },
        Made {
            tier: Tier::High,
            bytes: flac(&cd)?,
            media_type: "audio/flac",
        },
        Made {
            tier: Tier::Preview,
            bytes: flac(&tracecast_media::preview(&pcm, PREVIEW_SECS))?,
            media_type: "audio/flac",
        },
    ];
    Ok((ContentKind::Audio, out, Some(pcm), warnings))
}
