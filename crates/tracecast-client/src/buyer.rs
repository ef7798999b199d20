//! The buyer's side of a purchase, as `tracecast buy` and the demo run
//! it: designation at the origin under an idempotency key, the ticket
//! shown to the edge, the marked copy downloaded (resuming after a break),
//! another edge asked for when one stays unreachable, and orders through
//! home servers and kiosks. What happens is told to a [`Narrator`], so a
//! terminal can show it and a test can record it.

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use tracecast_delivery::api::{CopyInfo, Purchase, PurchaseRequest};
use tracecast_delivery::messages::money;
use tracecast_delivery::{Mode, Region, Tier};

use crate::{part_path, ClientError, Downloaded, EarlyDelivery, EdgeClient, OriginClient};

/// Where a purchase is told about as it happens.
pub trait Narrator: Send + Sync {
    /// A line of narration.
    fn say(&self, line: String);
    /// `done` of `total` bytes of a transfer (`what`) have arrived.
    fn bytes(&self, _what: &'static str, _done: u64, _total: u64) {}
    /// The transfer ended, whole or broken off.
    fn transfer_ended(&self) {}
}

/// Tells nobody.
pub struct Silent;

impl Narrator for Silent {
    fn say(&self, _line: String) {}
}

/// Why a purchase did not end with a copy.
#[derive(Debug, thiserror::Error)]
pub enum BuyError {
    #[error("asking the origin: {0}")]
    Origin(ClientError),
    #[error("buying: {0}")]
    Edge(ClientError),
    #[error("downloading from the home: {0}")]
    Home(ClientError),
    #[error("confirming receipt: {0}")]
    Receipt(ClientError),
    #[error("writing {path}: {source}")]
    Local {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("a copy downloaded from a home server needs a file to go to (--out FILE)")]
    NeedsOut,
    #[error(transparent)]
    Client(#[from] ClientError),
}

fn now_secs() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_secs() as i64)
}

/// A finished purchase.
pub struct BuyOutcome {
    pub purchase: Purchase,
    pub copy: CopyInfo,
    pub downloaded: Downloaded,
}

/// Buys a content into `out`: designation at the origin, the ticket shown
/// to the edge, the marked copy downloaded (resuming after a break). An
/// edge that stays unreachable for `retry_for` is avoided and the origin
/// asked again, which makes a new copy marked by the other edge.
#[allow(clippy::too_many_arguments)]
pub async fn buy_copy(
    origin: &OriginClient,
    content: i64,
    tier: Option<Tier>,
    region: Option<&Region>,
    out: &Path,
    retry_for: Duration,
    limit_rate: Option<u64>,
    key: Option<&str>,
    tell: &dyn Narrator,
) -> Result<BuyOutcome, BuyError> {
    buy_copy_as(
        origin, content, tier, region, out, retry_for, limit_rate, key, tell, None,
    )
    .await
}

/// [`buy_copy`], the copy in another form than the one it is made in:
/// `Some("mp3")` for a content with MP3 A/B variants (its tier, when none
/// is named, is the one that has them). Refused before anything is bought
/// when the content has no such form.
#[allow(clippy::too_many_arguments)]
pub async fn buy_copy_as(
    origin: &OriginClient,
    content: i64,
    tier: Option<Tier>,
    region: Option<&Region>,
    out: &Path,
    retry_for: Duration,
    limit_rate: Option<u64>,
    key: Option<&str>,
    tell: &dyn Narrator,
    format: Option<&str>,
) -> Result<BuyOutcome, BuyError> {
    let tier = match format {
        None => tier,
        Some(format) => {
            let info = origin.content(content).await?;
            let with_form = info
                .renditions
                .iter()
                .filter(|r| tier.is_none_or(|t| t == r.tier))
                .find(|r| r.ab.as_ref().is_some_and(|ab| ab.mp3.is_some()));
            match with_form {
                Some(r) => Some(r.tier),
                None => {
                    return Err(BuyError::Client(ClientError::Local(format!(
                        "content {content} has no {format} copies{}: its copies are made as FLAC (write to a .flac file)",
                        tier.map(|t| format!(" of its {t} tier")).unwrap_or_default()
                    ))))
                }
            }
        }
    };
    let keys = PurchaseKeys::new(key);
    let edges = EdgeClient::new()?;
    let mut avoid = Vec::new();
    // The delivery an unreachable edge could not serve: the next purchase
    // replaces it, so it bills nothing.
    let mut replaces = None;
    // An earlier run that broke off left its purchase beside the part
    // file: continue that purchase (same copy, no new bill).
    let sidecar = purchase_path(out);
    let mut earlier = std::fs::read(&sidecar)
        .ok()
        .and_then(|b| serde_json::from_slice::<Purchase>(&b).ok())
        .filter(|p| {
            p.content == content
                && tier.is_none_or(|t| t == p.tier)
                && p.ticket_expires > now_secs() + 30
        });
    loop {
        let p: Purchase = match earlier.take() {
            Some(p) => {
                tell.say(format!(
                    "continuing delivery {} from an earlier run",
                    p.delivery
                ));
                p
            }
            None => {
                let mut request = PurchaseRequest::download(content, tier);
                request.region = region.cloned();
                request.avoid = avoid.clone();
                request.replaces = replaces;
                let p = purchase(origin, &request, &keys.nth(avoid.len()), retry_for, tell).await?;
                let json = serde_json::to_vec(&p).expect("a purchase serialises");
                std::fs::write(&sidecar, json).map_err(|source| BuyError::Local {
                    path: sidecar.clone(),
                    source,
                })?;
                p
            }
        };
        tell.say(format!(
            "delivery {}: {} copy of content {} from edge {} ({}), price {}",
            p.delivery,
            p.tier,
            p.content,
            p.edge_name,
            if p.edge_holds {
                "holds it"
            } else {
                "will fetch it from the origin"
            },
            money(p.price_cents)
        ));
        let deadline = Instant::now() + retry_for;
        let result = loop {
            let attempt = async {
                let (copy, followed) = if part_path(out).exists() || format.is_some() {
                    // Continuing an earlier transfer: it resumes on the
                    // whole copy, whose hash is known.
                    (edges.deliver(&p.edge_address, &p.ticket).await?, false)
                } else {
                    match edges.deliver_early(&p.edge_address, &p.ticket).await? {
                        EarlyDelivery::Ready(copy) => (*copy, false),
                        EarlyDelivery::UnderWay(growing) => {
                            // The first bytes come while the rest is
                            // marked; the hash is checked once it is whole.
                            let followed = edges
                                .follow(&growing, out, limit_rate, &|d, t| {
                                    tell.bytes("download", d, t)
                                })
                                .await;
                            tell.transfer_ended();
                            let whole = match followed {
                                Err(e @ ClientError::Refused { .. }) if !e.is_transient() => {
                                    return Err(e)
                                }
                                Ok(_) => true,
                                // A break: what arrived is resumed below.
                                Err(_) => false,
                            };
                            // Whole now: its length and hash. The edge
                            // calls it kept; this purchase had it made.
                            match edges.deliver(&p.edge_address, &p.ticket).await {
                                Ok(mut copy) => {
                                    copy.kept = false;
                                    (copy, true)
                                }
                                // The transfer ended whole (the edge ends it
                                // only once the copy is kept) and the edge
                                // stopped right after (a restart): the copy
                                // as it came, its hash taken here.
                                Err(e) if whole && e.is_transient() => {
                                    tell.say(format!(
                                        "edge {} stopped before confirming the copy's hash ({e}); the transfer had ended whole, so the copy is kept as it came",
                                        p.edge_name
                                    ));
                                    return edges.keep_followed(&growing, out).await;
                                }
                                Err(e) => return Err(e),
                            }
                        }
                    }
                };
                if copy.media_type == HLS_MEDIA_TYPE {
                    // Video: the copy is a stream; a player saves it.
                    tell.say("saving the stream (ffmpeg)".into());
                    let got = save_stream(&copy.url, out).await?;
                    return Ok::<_, ClientError>((copy, got));
                }
                let got = match format {
                    Some(format) => {
                        edges
                            .download_form(&copy, format, out, limit_rate, &|d, t| {
                                tell.bytes("download", d, t)
                            })
                            .await
                    }
                    None => {
                        edges
                            .download_limited(&copy, out, limit_rate, &|d, t| {
                                tell.bytes("download", d, t)
                            })
                            .await
                    }
                };
                tell.transfer_ended();
                let mut got = got?;
                if followed {
                    // Its bytes came in this run, as it was marked.
                    got.resumed_from = 0;
                }
                Ok::<_, ClientError>((copy, got))
            }
            .await;
            match attempt {
                Ok(done) => break Ok(done),
                Err(e) if e.is_transient() && Instant::now() < deadline => {
                    tell.say(format!(
                        "edge {} did not answer ({e}); retrying, the download resumes",
                        p.edge_name
                    ));
                    tokio::time::sleep(Duration::from_secs(1)).await;
                }
                Err(e) => break Err(e),
            }
        };
        match result {
            Ok((copy, downloaded)) => {
                let _ = std::fs::remove_file(&sidecar);
                return Ok(BuyOutcome {
                    purchase: p,
                    copy,
                    downloaded,
                });
            }
            Err(e) if e.is_transient() && avoid.len() < 4 => {
                tell.say(format!(
                    "edge {} is still unreachable; asking the origin for another (a new copy, marked by that edge)",
                    p.edge_name
                ));
                avoid.push(p.edge_id);
                replaces = Some(p.delivery);
                // The part came from the other edge's copy: it cannot be
                // continued with different bytes.
                let _ = std::fs::remove_file(part_path(out));
            }
            Err(e) => return Err(BuyError::Edge(e)),
        }
    }
}

/// The idempotency keys of one purchase: the buyer's (or a random one)
/// for the first, and one derived from it for each replacement, so a
/// purchase run again with the same key (a script retrying after a crash)
/// is the same purchase, replacements included.
struct PurchaseKeys(String);

impl PurchaseKeys {
    fn new(key: Option<&str>) -> Self {
        Self(key.map_or_else(
            || format!("buy-{:016x}", rand::random::<u64>()),
            str::to_owned,
        ))
    }

    fn nth(&self, replacement: usize) -> String {
        match replacement {
            0 => self.0.clone(),
            n => format!("{}~{n}", self.0),
        }
    }
}

/// Asks the origin for a purchase under `key`, again with the same key
/// while the origin is unreachable (up to `retry_for`): a lost answer
/// never becomes a second delivery.
async fn purchase(
    origin: &OriginClient,
    request: &PurchaseRequest,
    key: &str,
    retry_for: Duration,
    tell: &dyn Narrator,
) -> Result<Purchase, BuyError> {
    let deadline = Instant::now() + retry_for;
    loop {
        match origin.order_once(request, Some(key)).await {
            Ok(p) => return Ok(p),
            Err(e) if e.is_transient() && Instant::now() < deadline => {
                tell.say(format!("the origin is unreachable ({e}); asking again"));
                tokio::time::sleep(Duration::from_secs(1)).await;
            }
            Err(e) => return Err(BuyError::Origin(e)),
        }
    }
}

/// Where `buy` keeps its purchase until the copy is whole.
pub fn purchase_path(out: &Path) -> PathBuf {
    let mut name = out.file_name().unwrap_or_default().to_os_string();
    name.push(".purchase.json");
    out.with_file_name(name)
}

/// What an order through a home server or kiosk came to.
#[derive(Debug, serde::Serialize)]
pub struct SiteOutcome {
    pub purchase: Purchase,
    pub copy: CopyInfo,
    /// Home downloads: the file written.
    #[serde(skip)]
    pub downloaded: Option<Downloaded>,
    /// Home downloads: the home's answer to the receipt (`None` when the
    /// home had deleted its copy before the receipt reached it).
    pub finished: Option<tracecast_delivery::api::SiteCopyEnded>,
}

/// Orders through a home server (download or rental) or a kiosk: the
/// origin designates an edge, the edge marks the copy (with the site's id
/// too) and sends it on; a home download is then fetched from the home
/// (resuming if the home restarts) and its receipt confirmed, which makes
/// the home delete its copy.
pub async fn order_via_site(
    origin: &OriginClient,
    request: &PurchaseRequest,
    out: Option<&Path>,
    retry_for: Duration,
    key: Option<&str>,
    tell: &dyn Narrator,
) -> Result<SiteOutcome, BuyError> {
    let keys = PurchaseKeys::new(key);
    let edges = EdgeClient::new()?;
    let mut avoid: Vec<i64> = Vec::new();
    let mut replaces = None;
    let (p, copy) = loop {
        let mut this = request.clone();
        this.avoid.extend_from_slice(&avoid);
        this.replaces = replaces;
        let p = purchase(origin, &this, &keys.nth(avoid.len()), retry_for, tell).await?;
        tell.say(format!(
            "delivery {}: {} copy of content {} by edge {} for {} {}",
            p.delivery,
            p.tier,
            p.content,
            p.edge_name,
            match p.mode {
                Mode::Kiosk => "kiosk",
                _ => "home server",
            },
            p.site.as_deref().unwrap_or("?")
        ));
        if p.mode == Mode::Home && out.is_none() {
            return Err(BuyError::NeedsOut);
        }
        let deadline = Instant::now() + retry_for;
        let delivered = loop {
            match edges.deliver(&p.edge_address, &p.ticket).await {
                Ok(c) => break Ok(c),
                Err(e) if e.is_transient() && Instant::now() < deadline => {
                    tell.say(format!("not delivered yet ({e}); retrying"));
                    tokio::time::sleep(Duration::from_secs(1)).await;
                }
                Err(e) => break Err(e),
            }
        };
        match delivered {
            Ok(copy) => break (p, copy),
            Err(e) if e.is_transient() && avoid.len() < 4 => {
                tell.say(format!(
                    "edge {} is still unreachable; asking the origin for another",
                    p.edge_name
                ));
                avoid.push(p.edge_id);
                replaces = Some(p.delivery);
            }
            Err(e) => return Err(BuyError::Edge(e)),
        }
    };
    let (mut downloaded, mut finished) = (None, None);
    if let (Mode::Home, Some(out)) = (p.mode, out) {
        let deadline = Instant::now() + 2 * retry_for;
        let got = loop {
            let got = edges
                .download(&copy, out, &|d, t| {
                    tell.bytes("download from the home server", d, t)
                })
                .await;
            tell.transfer_ended();
            match got {
                Ok(d) => break d,
                Err(e) if e.is_transient() && Instant::now() < deadline => {
                    tell.say(format!(
                        "the home server did not answer ({e}); the download resumes"
                    ));
                    tokio::time::sleep(Duration::from_secs(1)).await;
                }
                Err(e) => return Err(BuyError::Home(e)),
            }
        };
        if let Some(done) = copy.via.as_ref().and_then(|v| v.done.as_deref()) {
            let deadline = Instant::now() + retry_for;
            finished = loop {
                match edges.finish(done).await {
                    Ok(f) => break Some(f),
                    // The whole copy is here, checked against its SHA-256,
                    // and the home has deleted its own: an earlier
                    // confirmation reached it before it went away, or its
                    // keeping time ran out. Either way the copy is ours.
                    Err(ClientError::Refused {
                        status, message, ..
                    }) if status == reqwest::StatusCode::GONE => {
                        tell.say(format!(
                            "the home server had already deleted its copy ({message})"
                        ));
                        break None;
                    }
                    Err(e) if e.is_transient() && Instant::now() < deadline => {
                        tell.say(format!(
                            "the home server did not answer ({e}); confirming again"
                        ));
                        tokio::time::sleep(Duration::from_secs(1)).await;
                    }
                    Err(e) => return Err(BuyError::Receipt(e)),
                }
            };
        }
        downloaded = Some(got);
    }
    Ok(SiteOutcome {
        purchase: p,
        copy,
        downloaded,
        finished,
    })
}

/// The media type of a video copy: the buyer's own HLS playlist.
pub const HLS_MEDIA_TYPE: &str = "application/vnd.apple.mpegurl";

/// Saves an HLS stream to `out` (MP4) with ffmpeg, as a player would.
async fn save_stream(url: &str, out: &Path) -> Result<Downloaded, ClientError> {
    let (url, path) = (url.to_owned(), out.to_owned());
    let got = tokio::task::spawn_blocking(move || {
        let o = std::process::Command::new("ffmpeg")
            .args(["-v", "error", "-nostdin", "-y", "-i", &url, "-c", "copy"])
            .arg(&path)
            .output()
            .map_err(|e| {
                ClientError::Local(format!("cannot run ffmpeg: {e} (apt-get install ffmpeg)"))
            })?;
        if !o.status.success() {
            return Err(ClientError::Local(format!(
                "ffmpeg could not save the stream: {}",
                String::from_utf8_lossy(&o.stderr).trim()
            )));
        }
        let bytes = std::fs::metadata(&path).map(|m| m.len()).unwrap_or(0);
        Ok(Downloaded {
            path,
            bytes,
            resumed_from: 0,
        })
    })
    .await
    .map_err(|e| ClientError::Local(e.to_string()))?;
    got
}

/// Where `buy --cdn` keeps its purchase's idempotency key until the copy
/// is whole: a run again after a break continues the same (paid) delivery
/// with a fresh token instead of buying a second copy.
fn cdn_key_path(out: &Path) -> PathBuf {
    let mut name = out.file_name().unwrap_or_default().to_os_string();
    name.push(".cdn-key");
    out.with_file_name(name)
}

/// Buys a copy through the origin's CDN (A/B audio): the origin bills it
/// and answers a watermarking token; the copy comes from the CDN, resumed
/// with Range after a break. Answers the purchase and the bytes written.
pub async fn buy_via_cdn(
    origin: &OriginClient,
    content: i64,
    tier: Option<Tier>,
    out: &Path,
    retry_for: Duration,
    key: Option<&str>,
    tell: &dyn Narrator,
) -> Result<(Purchase, u64), BuyError> {
    let key_file = cdn_key_path(out);
    let kept = std::fs::read_to_string(&key_file).ok();
    let keys = PurchaseKeys::new(key.or(kept.as_deref().map(str::trim)));
    let first = keys.nth(0);
    std::fs::write(&key_file, &first).map_err(|source| BuyError::Local {
        path: key_file.clone(),
        source,
    })?;
    let request = PurchaseRequest {
        cdn: true,
        ..PurchaseRequest::download(content, tier)
    };
    // `FILE.mp3`: the copy as MP3, which only contents with MP3 variants
    // have; asked before anything is bought.
    let mp3 = out
        .extension()
        .is_some_and(|e| e.eq_ignore_ascii_case("mp3"));
    if mp3 {
        let info = origin.content(content).await?;
        let has = info
            .renditions
            .iter()
            .filter(|r| tier.is_none_or(|t| t == r.tier))
            .any(|r| r.ab.as_ref().is_some_and(|ab| ab.mp3.is_some()));
        if !has {
            let _ = std::fs::remove_file(&key_file);
            return Err(BuyError::Client(ClientError::Local(format!(
                "content {content} has no mp3 copies through the CDN: write to a .flac file"
            ))));
        }
    }
    let p = purchase(origin, &request, &first, retry_for, tell).await?;
    let mut copy = p.cdn.clone().ok_or_else(|| {
        BuyError::Origin(ClientError::Malformed(
            "the origin answered a purchase through its CDN without a CDN copy".into(),
        ))
    })?;
    if mp3 {
        let form = copy.mp3.take().ok_or_else(|| {
            BuyError::Origin(ClientError::Malformed(
                "the origin's CDN copy has no MP3 form".into(),
            ))
        })?;
        copy.url = form.url;
        copy.bytes = form.bytes;
        copy.media_type = form.media_type;
    }
    tell.say(format!(
        "delivery {} through the CDN at {} ({} bytes)",
        p.delivery, copy.url, copy.bytes
    ));
    let http = reqwest::Client::builder()
        .connect_timeout(Duration::from_secs(10))
        .build()
        .map_err(ClientError::from)?;
    let bytes = crate::cdn::download(&http, &copy, out)
        .await
        .map_err(BuyError::Edge)?;
    let _ = std::fs::remove_file(&key_file);
    Ok((p, bytes))
}
