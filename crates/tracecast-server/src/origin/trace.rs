//! Tracing (DESIGN.md "001" step 8): a leaked file is sent to the origin,
//! which reads the mark with its key (the key never leaves the origin) and
//! looks the delivery up. Administrators see everything; a provider sees
//! copies of its own content; a user learns only whether a copy is a
//! genuine delivery to them.

use std::sync::Arc;

use axum::body::Bytes;
use axum::extract::rejection::BytesRejection;
use axum::extract::{Query, State};
use axum::http::{HeaderMap, StatusCode};
use axum::Json;
use serde::Deserialize;
use tracecast_delivery::api::{
    FingerprintTrace, MarkFound, Suspect, TimelinePoint, TraceReport, TracedDelivery,
};
use tracecast_mark::{MarkKey, Payload};
use tracecast_media::MediaError;
use tracecast_store::{AccountId, EdgeId, ProviderId, SiteId, UserId};

use super::{upload_bytes, Caller, Origin};
use crate::openapi::{ErrorBody, Refusals};
use crate::ApiError;

#[derive(Deserialize)]
pub(super) struct TraceQuery {
    filename: Option<String>,
    /// The content the file is a copy of, when it is pre-marked (A/B) and
    /// its metadata is gone: its units are read against its code.
    content: Option<i64>,
    /// Read the mark stretch by stretch too, for a plot along the file.
    #[serde(default)]
    timeline: bool,
}

/// What one account may ask of the tracer: a rate (a keyed token bucket,
/// `governor`), and one trace at a time. Administrators are not limited.
pub(super) struct TraceLimits {
    rate: governor::DefaultKeyedRateLimiter<AccountId>,
    busy: crate::budget::OneAtATime<AccountId>,
}

impl TraceLimits {
    pub(super) fn new(per_minute: u32) -> Self {
        let per_minute = std::num::NonZeroU32::new(per_minute.max(1)).expect("at least 1");
        Self {
            rate: governor::RateLimiter::keyed(governor::Quota::per_minute(per_minute)),
            busy: crate::budget::OneAtATime::new("too_many_traces", "a trace"),
        }
    }

    /// Admits one trace of `who`, or answers 429 with when to ask again.
    fn admit(&self, who: AccountId) -> Result<crate::budget::Slot<'_, AccountId>, ApiError> {
        if let Err(not_until) = self.rate.check_key(&who) {
            let wait = not_until
                .wait_time_from(governor::clock::Clock::now(
                    &governor::clock::DefaultClock::default(),
                ))
                .as_secs()
                + 1;
            return Err(ApiError::new(
                StatusCode::TOO_MANY_REQUESTS,
                "too_many_traces",
                format!(
                    "too many traces from this account: ask again in {wait} s (trace.per_minute)"
                ),
            )
            .with_retry_after(wait));
        }
        self.busy.admit(who)
    }
}

/// Who asks for a trace, by what they may learn.
enum Asker {
    Admin,
    Provider(ProviderId),
    User(UserId),
}

struct Read {
    payload: Option<Payload>,
    confidence: f32,
    media: String,
    rights: Option<tracecast_media::Rights>,
    fingerprint: Option<(AbTrace, tracecast_mark::fingerprint::Tracing, usize)>,
    timeline: Vec<TimelinePoint>,
    /// An audio copy read as A/B when nothing named its content.
    unnamed: Option<Unnamed>,
}

/// Units a copy's length may be off its content's by and still be taken
/// for a whole copy of it (an encoder's padding, a trimmed end).
const LENGTH_SLACK: usize = 4;
/// Contents of about a copy's length, with buyers, a mix is traced
/// against, at most: each may accuse with probability epsilon, so the
/// bound is this times epsilon.
const MIX_CANDIDATES: usize = 16;
/// Contents of about a copy's length looked at for buyers, at most (a
/// query each; many works of one length may have sold nothing).
const MIX_LOOKUPS: usize = 512;

/// An audio copy read as A/B with no content named (no `content`, no
/// metadata): its units, and the payload if one verified at one of the
/// catalog's lengths.
struct Unnamed {
    /// Each unit's variant as read, from the copy's start.
    reads: Vec<Option<bool>>,
    /// The copy's own length in units (at CD rate, as A/B content is).
    copy_units: usize,
    /// The payload that verified and the length it decoded at.
    found: Option<(usize, Payload, f32)>,
}

/// Reads an audio copy as A/B against every length of A/B content in the
/// catalog (`lengths`): one reading of its units, then a payload decode
/// per length (see `payload_by_length`). None when no content is long
/// enough or no grid is found.
fn read_unnamed(pcm: &tracecast_media::Pcm, key: &MarkKey, lengths: &[usize]) -> Option<Unnamed> {
    use tracecast_mark::audio::ab as variants;
    let copy_units = variants::units((pcm.duration_secs() * 44_100.0) as usize);
    let lengths: Vec<usize> = lengths
        .iter()
        .copied()
        .filter(|&l| l + LENGTH_SLACK >= copy_units)
        .collect();
    let longest = lengths.iter().copied().max()?;
    let n = longest.min(copy_units + LENGTH_SLACK);
    let reading =
        variants::read_variants(&pcm.channels, pcm.sample_rate, key, n, &mut |_, _| {}).ok()??;
    let reads = variants::decisions(&reading);
    let found = tracecast_mark::fingerprint::payload_by_length(key, &reads, copy_units, &lengths)
        .and_then(|(l, d)| Some((l, d.payload?, d.confidence)));
    Some(Unnamed {
        reads,
        copy_units,
        found,
    })
}

/// `reads` cut or padded (with nothing read) to `units`.
fn fitted(reads: &[Option<bool>], units: usize) -> Vec<Option<bool>> {
    let mut out = reads[..reads.len().min(units)].to_vec();
    out.resize(units, None);
    out
}

/// Stretches of a timeline: long enough for the mark to read alone.
const TIMELINE_WINDOW_SECS: f64 = 12.0;
const TIMELINE_STEP_SECS: f64 = 6.0;

/// The audio mark read on successive overlapping stretches of `pcm`.
fn audio_timeline(pcm: &tracecast_media::Pcm, key: &MarkKey) -> Vec<TimelinePoint> {
    let rate = f64::from(pcm.sample_rate);
    let len = pcm.frames();
    let window = ((TIMELINE_WINDOW_SECS * rate) as usize).min(len);
    let step = ((TIMELINE_STEP_SECS * rate) as usize).max(1);
    let mut out = Vec::new();
    let mut start = 0usize;
    while window > 0 && start + window <= len {
        let slice: Vec<Vec<f32>> = pcm
            .channels
            .iter()
            .map(|c| c[start..start + window].to_vec())
            .collect();
        if let Ok(d) = tracecast_mark::audio::detect(&slice, pcm.sample_rate, key, &mut |_, _| {}) {
            out.push(TimelinePoint {
                start: start as f64 / rate,
                end: (start + window) as f64 / rate,
                confidence: d.confidence,
                tag_ok: d.tag_ok,
            });
        }
        start += step;
    }
    out
}

/// A/B video segments read: one point per segment, read or not.
fn segment_timeline(reads: &[Option<bool>], secs: u32) -> Vec<TimelinePoint> {
    reads
        .iter()
        .enumerate()
        .map(|(i, r)| TimelinePoint {
            start: (i as u32 * secs) as f64,
            end: ((i as u32 + 1) * secs) as f64,
            confidence: if r.is_some() { 1.0 } else { 0.0 },
            tag_ok: r.is_some(),
        })
        .collect()
}

/// A pre-marked content a copy is read against.
struct AbTrace {
    content: i64,
    /// Units (audio) or segments (video).
    units: usize,
    /// Video: the HLS segments' length.
    segment_secs: Option<u32>,
    buyers: Vec<UserId>,
    scheme_resists: u32,
}

type AbRead = (
    Option<Payload>,
    f32,
    tracecast_mark::fingerprint::Tracing,
    usize,
);

/// Traces the variants read from a copy through the content's scheme.
fn trace_reads(reads: &[Option<bool>], key: &MarkKey, ab: &mut AbTrace) -> Option<AbRead> {
    let read = reads.iter().filter(|r| r.is_some()).count();
    let scheme = tracecast_mark::fingerprint::Scheme::for_content(key, ab.content as u64, ab.units);
    ab.scheme_resists = scheme.colluders();
    let buyers = ab.buyers.iter().map(|u| u.get() as u64);
    let (direct, tracing) = scheme.trace(key, reads, buyers).ok()?;
    let tracing = tracing.unwrap_or(tracecast_mark::fingerprint::Tracing {
        ranked: Vec::new(),
        threshold: f64::INFINITY,
        read,
        accused: Vec::new(),
    });
    Some((direct.payload, direct.confidence, tracing, read))
}

/// Reads a video copy: segment by segment against a pre-marked content,
/// else the direct video mark.
fn read_video(
    bytes: &[u8],
    ext: Option<&str>,
    key: &MarkKey,
    ab: Option<AbTrace>,
) -> Result<Read, MediaError> {
    let io = |e: std::io::Error| MediaError::Malformed(format!("a scratch file: {e}"));
    let dir = tempfile::tempdir().map_err(io)?;
    let ext = ext
        .filter(|e| e.len() <= 8 && e.chars().all(|c| c.is_ascii_alphanumeric()))
        .unwrap_or("mp4");
    let path = dir.path().join(format!("copy.{ext}"));
    std::fs::write(&path, bytes).map_err(io)?;
    let info = tracecast_media::video::probe(&path)?;
    let media = format!(
        "video {:.1} s, {}x{}, {:.2} fps",
        info.duration, info.width, info.height, info.fps
    );
    if let Some(mut ab) = ab {
        if let Some(secs) = ab.segment_secs {
            let reads = tracecast_media::video::read_ab_segments(
                &path,
                key,
                ab.content,
                ab.units,
                secs,
                &mut |_, _| {},
            )?;
            if let Some((payload, confidence, tracing, read)) = trace_reads(&reads, key, &mut ab) {
                return Ok(Read {
                    payload,
                    confidence,
                    media,
                    rights: None,
                    fingerprint: Some((ab, tracing, read)),
                    timeline: segment_timeline(&reads, secs),
                    unnamed: None,
                });
            }
        }
    }
    let v = tracecast_media::video::detect_video(&path, key, &mut |_, _| {})?;
    Ok(Read {
        payload: v.detection.payload,
        confidence: v.detection.confidence,
        media,
        rights: None,
        fingerprint: None,
        timeline: Vec::new(),
        unnamed: None,
    })
}

/// Reads an audio copy unit by unit against the content's A/B code: the
/// direct payload (a single leaker) and the Tardos tracing (a mix).
fn read_ab(pcm: &tracecast_media::Pcm, key: &MarkKey, ab: &mut AbTrace) -> Option<AbRead> {
    use tracecast_mark::audio::ab as variants;
    let reading = variants::read_variants(
        &pcm.channels,
        pcm.sample_rate,
        key,
        ab.units,
        &mut |_, _| {},
    )
    .ok()??;
    trace_reads(&variants::decisions(&reading), key, ab)
}

/// Reads a file's mark: against the A/B content `ab` names, else (audio)
/// against the catalog's A/B lengths `catalog`, else the direct mark.
fn read_mark(
    bytes: &Bytes,
    ext: Option<&str>,
    key: &MarkKey,
    ab: Option<AbTrace>,
    catalog: &[usize],
    timeline: bool,
    budget: &super::DecodeBudget,
) -> Result<Read, MediaError> {
    if tracecast_media::video::is_video(&bytes[..bytes.len().min(192)]) {
        return read_video(bytes, ext, key, ab);
    }
    let rights = tracecast_media::read_rights(bytes);
    if tracecast_media::is_picture(&bytes[..bytes.len().min(16)]) {
        let img = tracecast_media::decode_picture_within(bytes, Some(budget.max_pixels))?;
        let d = tracecast_media::detect_picture(&img, key)
            .map_err(|e| MediaError::Malformed(e.to_string()))?;
        return Ok(Read {
            payload: d.payload,
            confidence: d.confidence,
            media: format!("picture {}x{}", img.width(), img.height()),
            rights,
            fingerprint: None,
            timeline: Vec::new(),
            unnamed: None,
        });
    }
    // At most the trace's budget, from the start: a small file of
    // compressed silence must not cost gigabytes.
    // The upload is read where it lies, not copied.
    let decoded = tracecast_media::decode_bytes_within(bytes.clone(), ext, Some(budget.audio))?;
    let pcm = decoded.pcm;
    let media = format!(
        "audio {:.1} s, {} Hz, {} channel(s){}",
        pcm.duration_secs(),
        pcm.sample_rate,
        pcm.channels.len(),
        if decoded.truncated {
            " (the file is longer; its start was read)"
        } else {
            ""
        }
    );
    // A copy of pre-marked content is read unit by unit first: it holds
    // no repeating payload for the direct detector to find.
    let named = ab.is_some();
    // What the A/B reading found when it named nobody: the copy may be a
    // directly marked one of the same content (its lossless tier, a copy
    // through a home or kiosk), which the direct detector reads.
    let mut ab_reading = None;
    if let Some(mut ab) = ab {
        if let Some((payload, confidence, tracing, read)) = read_ab(&pcm, key, &mut ab) {
            if payload.is_some() || !tracing.accused.is_empty() {
                return Ok(Read {
                    payload,
                    confidence,
                    media,
                    rights,
                    fingerprint: Some((ab, tracing, read)),
                    timeline: Vec::new(),
                    unnamed: None,
                });
            }
            ab_reading = Some((ab, tracing, read));
        }
    }
    // Nothing names the content: the catalog's A/B lengths are tried.
    let unnamed = if named {
        None
    } else {
        read_unnamed(&pcm, key, catalog)
    };
    if let Some((_, payload, confidence)) = unnamed.as_ref().and_then(|u| u.found) {
        return Ok(Read {
            payload: Some(payload),
            confidence,
            media,
            rights,
            fingerprint: None,
            timeline: Vec::new(),
            unnamed,
        });
    }
    let d = tracecast_mark::audio::detect(&pcm.channels, pcm.sample_rate, key, &mut |_, _| {})
        .map_err(|e| MediaError::Malformed(e.to_string()))?;
    Ok(Read {
        payload: d.payload,
        confidence: d.confidence,
        media,
        rights,
        fingerprint: if d.payload.is_some() {
            None
        } else {
            ab_reading
        },
        timeline: if timeline {
            audio_timeline(&pcm, key)
        } else {
            Vec::new()
        },
        // A direct mark read: no mix of A/B copies to trace.
        unnamed: if d.payload.is_some() { None } else { unnamed },
    })
}

/// The A/B contents an unnamed copy is traced against, most likely first:
/// with a payload, the contents its buyer got through that edge whose
/// length holds the copy and decodes the same payload; without (a mix),
/// the catalog's contents of about the copy's length.
async fn unnamed_candidates(
    o: &Origin,
    un: &Unnamed,
    payload: Option<&Payload>,
    catalog: &[(i64, usize)],
) -> Result<Vec<(i64, usize)>, ApiError> {
    let near = |l: usize| l.abs_diff(un.copy_units);
    let Some(p) = payload else {
        let mut c: Vec<(i64, usize)> = catalog
            .iter()
            .copied()
            .filter(|&(_, l)| near(l) <= LENGTH_SLACK)
            .collect();
        c.sort_by_key(|&(id, l)| (near(l), std::cmp::Reverse(id)));
        c.truncate(MIX_LOOKUPS);
        return Ok(c);
    };
    let bought: std::collections::HashSet<i64> = o
        .store
        .deliveries_marked(
            UserId(i64::from(p.user)),
            EdgeId(i64::from(p.edge)),
            ProviderId(i64::from(p.content_server)),
        )
        .await?
        .into_iter()
        .map(|d| d.content_id)
        .collect();
    let mut c: Vec<(i64, usize)> = catalog
        .iter()
        .copied()
        .filter(|(id, l)| bought.contains(id) && l + LENGTH_SLACK >= un.copy_units)
        .collect();
    c.sort_by_key(|&(id, l)| (near(l), std::cmp::Reverse(id)));
    let key = &o.mark_key;
    c.retain(|&(_, l)| {
        tracecast_mark::fingerprint::Layout::for_segments(l).decodes(key, &un.reads, p)
    });
    c.truncate(MIX_CANDIDATES);
    Ok(c)
}

/// Traces a file back to its delivery by the mark it carries (administrators, providers, users).
///
/// An administrator learns everything, and a provider everything of its own
/// content's copies; a leak either traces suspends the member it is traced
/// to and lowers their referrers' standing. A user learns only whether the
/// copy is a genuine delivery to them.
/// Each account traces one file at a time, within a rate.
#[utoipa::path(post, path = "/v1/trace", tag = "trace", security(("bearer" = [])),
    params(("filename" = Option<String>, Query, description = "The file's name; its extension helps decoding."),
        ("content" = Option<i64>, Query, description = "The content the file is a copy of, when it was pre-marked (A/B) and its metadata is gone."),
        ("timeline" = Option<bool>, Query, description = "Also read the mark stretch by stretch along the file (administrators and the content's provider)."),
        ("Tracecast-Sha256" = Option<String>, Header, description = "The upload's SHA-256 (hex); a damaged upload is refused.")),
    request_body(content = Vec<u8>, content_type = "application/octet-stream", description = "The file to trace: audio, a picture or a video."),
    responses(
        (status = 200, description = "What the file says about who received it, as much as the caller may learn.", body = TraceReport),
        (status = 409, description = "The membership changed while the leak was accounted for; trace again.", body = ErrorBody),
        (status = 413, description = "Larger than `trace.max_upload`, or a picture beyond the pixel budget.", body = ErrorBody),
        (status = 422, description = "The upload does not match its Tracecast-Sha256, or the file cannot be read; or the members' records do not form a valid tree.", body = ErrorBody),
        (status = 429, description = "Too many traces from this account, or one of its traces is running.", body = ErrorBody,
            headers(("Retry-After" = u64, description = "Seconds to wait before asking again."))),
        (status = 500, description = "Reading the file failed unexpectedly (a fault of the origin).", body = ErrorBody),
        Refusals))]
pub(super) async fn trace(
    State(o): State<Arc<Origin>>,
    headers: HeaderMap,
    Query(q): Query<TraceQuery>,
    body: Result<Bytes, BytesRejection>,
) -> Result<Json<TraceReport>, ApiError> {
    let caller = o.caller(&headers).await?;
    // Who may learn what of a copy: administrators everything, a
    // provider its own content's copies, a user whether a copy is theirs.
    // Other accounts (edges, homes, kiosks, partners, gateways) hold no
    // copies of their own and do not trace.
    let asker = match caller.id() {
        None => Asker::Admin,
        Some(AccountId::Provider(p)) => Asker::Provider(p),
        Some(AccountId::User(u)) => Asker::User(u),
        Some(other) => {
            return Err(ApiError::forbidden(format!(
                "a {} account does not trace copies",
                other.kind().as_str()
            )))
        }
    };
    // A rate per account and one trace at a time (the work is a core
    // for seconds).
    let _running = match caller.id() {
        Some(id) => Some(o.traces.admit(id)?),
        None => None,
    };
    let bytes = upload_bytes(&headers, body)?;
    let ext = q
        .filename
        .as_deref()
        .and_then(|f| f.rsplit_once('.'))
        .map(|(_, e)| e.to_ascii_lowercase());
    let started = std::time::Instant::now();
    let key = o.mark_key.clone();
    // Pre-marked content named by the caller or by the file's metadata.
    let ab_content = q
        .content
        .or_else(|| tracecast_media::read_rights(&bytes).map(|r| r.content_id));
    let ab = match ab_content {
        Some(c) => {
            let audio = o
                .store
                .ab_variants(c)
                .await?
                .first()
                .map(|v| (v.units, None));
            let video = o
                .store
                .hls_variants(c)
                .await?
                .map(|h| (h.segments, Some(h.segment_secs as u32)));
            match audio.or(video) {
                Some((units, segment_secs)) => Some(AbTrace {
                    content: c,
                    units: units as usize,
                    segment_secs,
                    buyers: o.store.buyers_of(c).await?,
                    scheme_resists: 0,
                }),
                None => None,
            }
        }
        None => None,
    };
    // Nothing names it: the A/B contents the asker may trace (a
    // provider, its own), by length.
    let catalog: Vec<(i64, usize)> = if ab.is_none() {
        let provider = match &asker {
            Asker::Provider(p) => Some(*p),
            _ => None,
        };
        o.store
            .ab_lengths(provider)
            .await?
            .into_iter()
            .map(|(c, u)| (c, u.max(0) as usize))
            .collect()
    } else {
        Vec::new()
    };
    let mut lengths: Vec<usize> = catalog.iter().map(|c| c.1).collect();
    lengths.sort_unstable();
    lengths.dedup();
    let budget = o.config.budgets.trace();
    let mut read = crate::on_worker(&o.work, move || {
        read_mark(
            &bytes,
            ext.as_deref(),
            &key,
            ab,
            &lengths,
            q.timeline,
            &budget,
        )
    })
    .await?
    .map_err(|e| {
        let (status, code) = super::budget_refusal(&e);
        ApiError::new(status, code, format!("cannot read this file: {e}"))
    })?;
    // An unnamed A/B copy: its content found, then traced through its
    // code. With a payload (its layout is the same for every content of a
    // length), the content whose code accuses that buyer, else the likeliest;
    // for a mix, the first whose code accuses anyone.
    if let Some(un) = read.unnamed.take() {
        let payload = un.found.map(|f| f.1);
        let mut likeliest = None;
        let mut traced_contents = 0;
        for (content, units) in unnamed_candidates(&o, &un, payload.as_ref(), &catalog).await? {
            // A content nobody bought accuses nobody: not counted.
            let buyers = o.store.buyers_of(content).await?;
            if buyers.is_empty() {
                continue;
            }
            traced_contents += 1;
            if traced_contents > MIX_CANDIDATES {
                break;
            }
            let mut ab = AbTrace {
                content,
                units,
                segment_secs: None,
                buyers,
                scheme_resists: 0,
            };
            let reads = fitted(&un.reads, units);
            let key = o.mark_key.clone();
            let traced = crate::on_worker(&o.work, move || {
                trace_reads(&reads, &key, &mut ab).map(|t| (ab, t))
            })
            .await?;
            if let Some((ab, (_, _, tracing, n))) = traced {
                let accused = match &payload {
                    Some(p) => tracing.accused.contains(&u64::from(p.user)),
                    None => !tracing.accused.is_empty(),
                };
                if accused {
                    read.fingerprint = Some((ab, tracing, n));
                    break;
                }
                if payload.is_some() && likeliest.is_none() {
                    likeliest = Some((ab, tracing, n));
                }
            }
        }
        if read.fingerprint.is_none() {
            read.fingerprint = likeliest;
        }
    }
    let mut report = TraceReport {
        mark: None,
        user: None,
        edge: None,
        edge_operator: None,
        site: None,
        provider: None,
        deliveries: Vec::new(),
        metadata_content: read.rights.as_ref().map(|r| r.content_id),
        genuine_for_caller: None,
        media: read.media,
        seconds: 0.0,
        accountability: None,
        fingerprint: None,
        timeline: read.timeline,
    };
    if let Some((ab, tracing, read_units)) = &read.fingerprint {
        let mut named = Vec::new();
        for s in tracing.ranked.iter().take(5) {
            let user = o
                .store
                .account(AccountId::User(UserId(s.user as i64)))
                .await?
                .map(|a| a.name);
            named.push(Suspect {
                user_id: s.user as i64,
                user,
                score: s.score,
            });
        }
        let accused = named
            .iter()
            .filter(|s| tracing.accused.contains(&(s.user_id as u64)))
            .cloned()
            .collect();
        report.fingerprint = Some(FingerprintTrace {
            content: ab.content,
            read: *read_units,
            segments: ab.units,
            resists: ab.scheme_resists,
            threshold: tracing.threshold.is_finite().then_some(tracing.threshold),
            epsilon: tracecast_mark::fingerprint::DEFAULT_EPSILON,
            accused,
            ranked: named,
        });
    }
    if let Some(p) = read.payload {
        report.mark = Some(MarkFound {
            user: p.user,
            edge: p.edge,
            home: p.home,
            content_server: p.content_server,
            confidence: read.confidence,
            tag_verified: true,
        });
        let mut found = o
            .store
            .deliveries_marked(
                UserId(i64::from(p.user)),
                EdgeId(i64::from(p.edge)),
                ProviderId(i64::from(p.content_server)),
            )
            .await?;
        // The content named in the file's metadata first, if it survived.
        // Deliveries through the home or kiosk the mark names come first,
        // then the content named in the file's metadata, if it survived.
        let site = (p.home != 0).then_some(SiteId(i64::from(p.home)));
        let named = report
            .metadata_content
            .or(report.fingerprint.as_ref().map(|f| f.content));
        found.sort_by_key(|d| {
            (
                d.site_id != site,
                named.is_some_and(|cid| d.content_id != cid),
            )
        });
        if let Some(id) = site {
            if let Some(s) = o.store.site(id).await? {
                report.site = Some(format!("{} {}", s.kind.as_str(), s.name));
            }
        }
        for d in found.iter().take(50) {
            let title = o
                .store
                .content(d.content_id)
                .await?
                .map(|c| c.title)
                .unwrap_or_default();
            report.deliveries.push(TracedDelivery {
                delivery: d.id,
                content: d.content_id,
                title,
                tier: d.tier,
                status: d.status,
                ordered_at: d.created_at,
                marked_at: d.marked_at,
            });
        }
        report.user = o
            .store
            .account(AccountId::User(UserId(i64::from(p.user))))
            .await?
            .map(|a| a.name);
        report.provider = o
            .store
            .account(AccountId::Provider(ProviderId(i64::from(p.content_server))))
            .await?
            .map(|a| a.name);
        if let Some(e) = o.store.edge(EdgeId(i64::from(p.edge))).await? {
            report.edge = Some(e.name);
            report.edge_operator = Some(e.operator);
        }
    }
    // A leak traced by an administrator, or by the provider of the leaked
    // content, holds the member to account (DESIGN.md "004"); a user's own
    // check never does.
    let mark_provider = report
        .mark
        .as_ref()
        .map(|m| ProviderId(i64::from(m.content_server)));
    let traced_by = match (&asker, &caller) {
        (Asker::Admin, _) => Some("admin".to_owned()),
        (Asker::Provider(p), Caller::Account(a)) if mark_provider == Some(*p) => {
            Some(format!("provider:{}", a.name))
        }
        _ => None,
    };
    if let (Some(by), Some(m), Some(d)) = (&traced_by, &report.mark, report.deliveries.first()) {
        report.accountability =
            super::members::account_for_leak(&o, d.delivery, UserId(i64::from(m.user)), by).await?;
    }
    report.seconds = started.elapsed().as_secs_f64();
    tracing::info!(
        found = report.mark.is_some(), user = ?report.user, edge = ?report.edge,
        seconds = report.seconds, "trace"
    );
    // Who bought a content is its provider's business alone.
    let fingerprint_provider = match &report.fingerprint {
        Some(f) => o.store.content(f.content).await?.map(|c| c.provider_id),
        None => None,
    };
    match asker {
        Asker::Admin => Ok(Json(report)),
        Asker::Provider(p) => match mark_provider {
            _ if report.fingerprint.is_some() && fingerprint_provider != Some(p) => Err(
                ApiError::forbidden("this copy was not delivered from your content"),
            ),
            Some(m) if m == p => Ok(Json(report)),
            Some(_) => Err(ApiError::forbidden(
                "this copy was not delivered from your content",
            )),
            None => Ok(Json(report)),
        },
        Asker::User(me) => {
            // A user's own check: genuine for them or not, nothing more.
            let mine = report
                .mark
                .as_ref()
                .is_some_and(|m| UserId(i64::from(m.user)) == me)
                && !report.deliveries.is_empty();
            Ok(Json(TraceReport {
                mark: None,
                user: None,
                edge: if mine { report.edge } else { None },
                edge_operator: None,
                site: None,
                provider: if mine { report.provider } else { None },
                deliveries: if mine { report.deliveries } else { Vec::new() },
                metadata_content: report.metadata_content,
                genuine_for_caller: Some(mine),
                media: report.media,
                seconds: report.seconds,
                accountability: None,
                fingerprint: None,
                timeline: Vec::new(),
            }))
        }
    }
}
