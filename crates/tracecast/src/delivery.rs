//! `tracecast account`, `content`, `buy` and `trace`: the delivery flow
//! from the command line, over the origin's and edges' HTTP APIs.

use std::path::Path;
use std::process::ExitCode;
use std::time::{Duration, Instant};

use anyhow::Context;
use indicatif::{ProgressBar, ProgressStyle};
use tracecast_client::{part_path, ClientError, Downloaded, EdgeClient, OriginClient};
use tracecast_delivery::api::{
    NewAccount, PrePositionRequest, Purchase, PurchaseRequest, TraceReport,
};
use tracecast_delivery::messages::{money, parse_money};
use tracecast_delivery::{DiscOrder, Fulfilment, Mode, Tier};

use crate::cli::{AccountCommand, BuyArgs, Connection, ContentCommand, TraceArgs};

pub fn origin(conn: &Connection) -> anyhow::Result<OriginClient> {
    Ok(OriginClient::new(&conn.server, &conn.token()?)?)
}

pub fn runtime() -> anyhow::Result<tokio::runtime::Runtime> {
    Ok(tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()?)
}

/// A byte progress bar, hidden when quiet.
pub fn byte_bar(quiet: bool, message: &'static str) -> ProgressBar {
    if quiet {
        return ProgressBar::hidden();
    }
    let pb = ProgressBar::new(0);
    pb.set_style(
        ProgressStyle::with_template(
            "{msg:>10} [{bar:30}] {bytes}/{total_bytes} {bytes_per_sec} {eta}",
        )
        .expect("static template")
        .progress_chars("=> "),
    );
    pb.set_message(message);
    pb
}

pub fn account(cmd: AccountCommand) -> anyhow::Result<ExitCode> {
    runtime()?.block_on(async {
        match cmd {
            AccountCommand::Add {
                kind,
                name,
                address,
                operator,
                fee,
                payer,
                media,
                shipping,
                token_out,
                conn,
            } => {
                let money = |v: Option<String>| {
                    v.as_deref()
                        .map(parse_money)
                        .transpose()
                        .map_err(anyhow::Error::msg)
                };
                let media = media
                    .map(|m| {
                        m.split(',')
                            .map(|item| {
                                let (medium, price) = item.split_once('=').with_context(|| {
                                    format!("--media: {item:?} is not MEDIUM=PRICE")
                                })?;
                                Ok((
                                    medium.trim().to_owned(),
                                    parse_money(price).map_err(anyhow::Error::msg)?,
                                ))
                            })
                            .collect::<anyhow::Result<std::collections::BTreeMap<_, _>>>()
                    })
                    .transpose()?;
                let created = origin(&conn)?
                    .add_account(&NewAccount {
                        kind,
                        name,
                        address,
                        operator,
                        fee_cents: money(fee)?,
                        payer,
                        media,
                        shipping_cents: money(shipping)?,
                    })
                    .await?;
                let token = created.token.clone().unwrap_or_default();
                match token_out {
                    Some(path) => {
                        tracecast_server::auth::write_secret(&path, &format!("{token}\n"))
                            .with_context(|| format!("writing {}", path.display()))?;
                        eprintln!(
                            "added {} {} (id {}, box {}); its token is in {}",
                            created.kind,
                            created.name,
                            created.id,
                            created.box_name,
                            path.display()
                        );
                    }
                    None => {
                        eprintln!(
                            "added {} {} (id {}, box {}); token:",
                            created.kind, created.name, created.id, created.box_name
                        );
                        println!("{token}");
                    }
                }
            }
            AccountCommand::Whoami { conn } => {
                let a = origin(&conn)?.account().await?;
                println!("{} {} (id {}, box {})", a.kind, a.name, a.id, a.box_name);
            }
            AccountCommand::Token {
                kind,
                name,
                token_out,
                conn,
            } => {
                let whose = match (kind.as_deref(), name.as_deref()) {
                    (Some(k), Some(n)) => Some((k, n)),
                    (None, None) => None,
                    _ => anyhow::bail!("name the account as KIND NAME, or neither for your own"),
                };
                let a = origin(&conn)?.replace_token(whose).await?;
                let token = a.token.clone().unwrap_or_default();
                match token_out {
                    Some(path) => {
                        tracecast_server::auth::write_secret(&path, &format!("{token}\n"))
                            .with_context(|| format!("writing {}", path.display()))?;
                        eprintln!(
                            "{} {}: new token in {}; every earlier one is revoked",
                            a.kind,
                            a.name,
                            path.display()
                        );
                    }
                    None => {
                        eprintln!(
                            "{} {}: new token (every earlier one is revoked):",
                            a.kind, a.name
                        );
                        println!("{token}");
                    }
                }
            }
        }
        Ok(ExitCode::SUCCESS)
    })
}

pub fn content(cmd: ContentCommand, quiet: bool) -> anyhow::Result<ExitCode> {
    runtime()?.block_on(async {
        match cmd {
            ContentCommand::Add {
                file,
                title,
                price,
                terms,
                rental,
                reserved_up_to,
                protect,
                ab,
                json,
                conn,
            } => {
                let price = parse_money(&price).map_err(anyhow::Error::msg)?;
                let client = origin(&conn)?;
                let pb = byte_bar(quiet, "uploading");
                let bar = pb.clone();
                let spinner_at = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
                let flag = spinner_at.clone();
                let started = Instant::now();
                let info = client
                    .add_content_with(
                        &file,
                        &tracecast_client::ContentOptions {
                            title: &title,
                            price_cents: price,
                            terms: terms.as_deref(),
                            rental_tariff: rental.as_deref(),
                            reserved_up_to_order: reserved_up_to,
                            protected: protect,
                            ab,
                        },
                        move |sent, total| {
                            bar.set_length(total);
                            bar.set_position(sent);
                            if sent == total
                                && !flag.swap(true, std::sync::atomic::Ordering::Relaxed)
                            {
                                bar.set_message("renditions");
                                bar.enable_steady_tick(Duration::from_millis(200));
                            }
                        },
                    )
                    .await;
                pb.finish_and_clear();
                let info = info.with_context(|| format!("publishing {}", file.display()))?;
                if json {
                    println!("{}", serde_json::to_string_pretty(&info)?);
                } else {
                    println!(
                        "content {}: {:?} ({}) by {}, price {}{}",
                        info.id,
                        info.title,
                        info.kind,
                        info.provider,
                        money(info.price_cents),
                        if info.existing {
                            " (already published)"
                        } else {
                            ""
                        }
                    );
                    for r in &info.renditions {
                        println!(
                            "  {:<9} {:>12} bytes  {}  sha256 {}",
                            r.tier.as_str(),
                            r.bytes,
                            r.media_type,
                            &r.sha256[..16]
                        );
                    }
                    if info.protected {
                        println!("  protected: copies are encrypted, opened with a licence");
                    }
                    for r in &info.renditions {
                        if let Some(ab) = &r.ab {
                            println!(
                                "  {}: A/B variants of {} bytes each, {} segments; copies are assembled",
                                r.tier, ab.geometry.bytes, ab.geometry.units
                            );
                        }
                    }
                    if let Some(n) = info.reserved_up_to_order {
                        println!("  reserved for members up to order {n}");
                    }
                    if !quiet {
                        eprintln!("took {:.1} s", started.elapsed().as_secs_f64());
                    }
                }
            }
            ContentCommand::List { json, conn } => {
                let list = origin(&conn)?.contents().await?;
                if json {
                    println!("{}", serde_json::to_string_pretty(&list)?);
                } else {
                    for c in list {
                        let tiers: Vec<&str> =
                            c.renditions.iter().map(|r| r.tier.as_str()).collect();
                        println!(
                            "{:>6}  {:<8} {:>8}  {:<24} {}  [{}]",
                            c.id,
                            c.kind,
                            money(c.price_cents),
                            c.provider,
                            c.title,
                            tiers.join(", ")
                        );
                    }
                }
            }
            ContentCommand::PrePosition {
                id,
                tier,
                edges,
                conn,
            } => {
                let tier = tier
                    .map(|t| t.parse::<Tier>())
                    .transpose()
                    .map_err(anyhow::Error::msg)?;
                let told = origin(&conn)?
                    .pre_position(id, &PrePositionRequest { tier, edges })
                    .await?;
                println!("content {id}: pre-position ordered on edge(s) {told:?}");
            }
            ContentCommand::Reserve {
                id,
                up_to_order,
                free,
                conn,
            } => {
                let up_to = if free { None } else { up_to_order };
                origin(&conn)?
                    .call(
                        reqwest::Method::PUT,
                        &format!("/v1/contents/{id}/reserved"),
                        Some(&serde_json::json!({ "up_to_order": up_to })),
                    )
                    .await?;
                match up_to {
                    Some(n) => println!("content {id}: reserved for members up to order {n}"),
                    None => println!("content {id}: no longer reserved"),
                }
            }
        }
        Ok(ExitCode::SUCCESS)
    })
}

/// What `buy` did.
#[derive(Debug, serde::Serialize)]
struct Bought {
    delivery: i64,
    content: i64,
    tier: Tier,
    edge: String,
    price: String,
    bytes: u64,
    sha256: String,
    resumed_from: u64,
    kept: bool,
    file: String,
}

/// A finished purchase.
pub struct BuyOutcome {
    pub purchase: Purchase,
    pub copy: tracecast_delivery::api::CopyInfo,
    pub downloaded: tracecast_client::Downloaded,
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
    out: &Path,
    retry_for: Duration,
    limit_rate: Option<u64>,
    key: Option<&str>,
    quiet: bool,
    say: &(dyn Fn(String) + Sync),
) -> anyhow::Result<BuyOutcome> {
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
                && p.ticket_expires > tracecast_store::now_ms() / 1000 + 30
        });
    loop {
        let p: Purchase = match earlier.take() {
            Some(p) => {
                say(format!(
                    "continuing delivery {} from an earlier run",
                    p.delivery
                ));
                p
            }
            None => {
                let mut request = PurchaseRequest::download(content, tier);
                request.avoid = avoid.clone();
                request.replaces = replaces;
                let p = purchase(origin, &request, &keys.nth(avoid.len()), retry_for, say).await?;
                std::fs::write(&sidecar, serde_json::to_vec(&p)?)
                    .with_context(|| format!("writing {}", sidecar.display()))?;
                p
            }
        };
        say(format!(
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
                let copy = edges.deliver(&p.edge_address, &p.ticket).await?;
                if copy.media_type == HLS_MEDIA_TYPE {
                    // Video: the copy is a stream; a player saves it.
                    let got = save_stream(&copy.url, out, quiet).await?;
                    return Ok::<_, ClientError>((copy, got));
                }
                let pb = byte_bar(quiet, "download");
                let bar = pb.clone();
                let got = edges
                    .download_limited(&copy, out, limit_rate, &move |d, t| {
                        bar.set_length(t);
                        bar.set_position(d);
                    })
                    .await;
                pb.finish_and_clear();
                Ok::<_, ClientError>((copy, got?))
            }
            .await;
            match attempt {
                Ok(done) => break Ok(done),
                Err(e) if e.is_transient() && Instant::now() < deadline => {
                    say(format!(
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
                say(format!(
                    "edge {} is still unreachable; asking the origin for another (a new copy, marked by that edge)",
                    p.edge_name
                ));
                avoid.push(p.edge_id);
                replaces = Some(p.delivery);
                // The part came from the other edge's copy: it cannot be
                // continued with different bytes.
                let _ = std::fs::remove_file(part_path(out));
            }
            Err(e) => return Err(anyhow::Error::new(e).context("buying")),
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
    say: &(dyn Fn(String) + Sync),
) -> anyhow::Result<Purchase> {
    let deadline = Instant::now() + retry_for;
    loop {
        match origin.order_once(request, Some(key)).await {
            Ok(p) => return Ok(p),
            Err(e) if e.is_transient() && Instant::now() < deadline => {
                say(format!("the origin is unreachable ({e}); asking again"));
                tokio::time::sleep(Duration::from_secs(1)).await;
            }
            Err(e) => return Err(anyhow::Error::new(e).context("asking the origin")),
        }
    }
}

/// Where `buy` keeps its purchase until the copy is whole.
pub fn purchase_path(out: &Path) -> std::path::PathBuf {
    let mut name = out.file_name().unwrap_or_default().to_os_string();
    name.push(".purchase.json");
    out.with_file_name(name)
}

/// What an order through a home server or kiosk came to.
#[derive(Debug, serde::Serialize)]
pub struct SiteOutcome {
    pub purchase: Purchase,
    pub copy: tracecast_delivery::api::CopyInfo,
    /// Home downloads: the file written.
    #[serde(skip)]
    pub downloaded: Option<tracecast_client::Downloaded>,
    /// Home downloads: the home's answer to the receipt.
    pub finished: Option<serde_json::Value>,
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
    quiet: bool,
    say: &(dyn Fn(String) + Sync),
) -> anyhow::Result<SiteOutcome> {
    let keys = PurchaseKeys::new(key);
    let edges = EdgeClient::new()?;
    let mut avoid: Vec<i64> = Vec::new();
    let mut replaces = None;
    let (p, copy) = loop {
        let mut this = request.clone();
        this.avoid.extend_from_slice(&avoid);
        this.replaces = replaces;
        let p = purchase(origin, &this, &keys.nth(avoid.len()), retry_for, say).await?;
        say(format!(
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
            anyhow::bail!("--out FILE: where to write the copy downloaded from the home server");
        }
        let deadline = Instant::now() + retry_for;
        let delivered = loop {
            match edges.deliver(&p.edge_address, &p.ticket).await {
                Ok(c) => break Ok(c),
                Err(e) if e.is_transient() && Instant::now() < deadline => {
                    say(format!("not delivered yet ({e}); retrying"));
                    tokio::time::sleep(Duration::from_secs(1)).await;
                }
                Err(e) => break Err(e),
            }
        };
        match delivered {
            Ok(copy) => break (p, copy),
            Err(e) if e.is_transient() && avoid.len() < 4 => {
                say(format!(
                    "edge {} is still unreachable; asking the origin for another",
                    p.edge_name
                ));
                avoid.push(p.edge_id);
                replaces = Some(p.delivery);
            }
            Err(e) => return Err(anyhow::Error::new(e).context("delivering")),
        }
    };
    let (mut downloaded, mut finished) = (None, None);
    if let (Mode::Home, Some(out)) = (p.mode, out) {
        let deadline = Instant::now() + 2 * retry_for;
        let got = loop {
            let pb = byte_bar(quiet, "download from the home server");
            let bar = pb.clone();
            let got = edges
                .download(&copy, out, &move |d, t| {
                    bar.set_length(t);
                    bar.set_position(d);
                })
                .await;
            pb.finish_and_clear();
            match got {
                Ok(d) => break d,
                Err(e) if e.is_transient() && Instant::now() < deadline => {
                    say(format!(
                        "the home server did not answer ({e}); the download resumes"
                    ));
                    tokio::time::sleep(Duration::from_secs(1)).await;
                }
                Err(e) => return Err(anyhow::Error::new(e).context("downloading from the home")),
            }
        };
        if let Some(done) = copy.via.as_ref().and_then(|v| v.done.as_deref()) {
            let deadline = Instant::now() + retry_for;
            finished = Some(loop {
                match edges.finish(done).await {
                    Ok(f) => break f,
                    Err(e) if e.is_transient() && Instant::now() < deadline => {
                        say(format!(
                            "the home server did not answer ({e}); confirming again"
                        ));
                        tokio::time::sleep(Duration::from_secs(1)).await;
                    }
                    Err(e) => return Err(anyhow::Error::new(e).context("confirming receipt")),
                }
            });
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

fn parse_tier(tier: Option<&str>) -> anyhow::Result<Option<Tier>> {
    tier.map(str::parse::<Tier>)
        .transpose()
        .map_err(anyhow::Error::msg)
}

/// Narration on standard error, unless `--quiet`.
fn stderr_unless(quiet: bool) -> impl Fn(String) + Sync {
    move |s| {
        if !quiet {
            eprintln!("{s}");
        }
    }
}

fn buy_via_site(args: BuyArgs, quiet: bool) -> anyhow::Result<ExitCode> {
    runtime()?.block_on(async move {
        let tier = parse_tier(args.tier.as_deref())?;
        let origin = origin(&args.conn)?;
        let say = stderr_unless(quiet);
        let mut request = PurchaseRequest::download(args.content, tier);
        request.home = args.home.clone();
        request.rent = args.rent;
        request.kiosk = args.kiosk.clone();
        if args.kiosk.is_some() {
            request.disc = Some(DiscOrder {
                medium: args.medium.clone().unwrap_or_default(),
                fulfilment: match &args.ship_to {
                    Some(a) => Fulfilment::Ship { address: a.clone() },
                    None => Fulfilment::Pickup,
                },
            });
        }
        let o = order_via_site(
            &origin,
            &request,
            args.out.as_deref(),
            Duration::from_secs(args.retry_for),
            args.idempotency_key.as_deref(),
            quiet,
            &say,
        )
        .await?;
        if args.json {
            println!("{}", serde_json::to_string_pretty(&o)?);
            return Ok(ExitCode::SUCCESS);
        }
        let p = &o.purchase;
        let via = o.copy.via.clone();
        match p.mode {
            Mode::Home => {
                let d = o.downloaded.as_ref().expect("a home download wrote a file");
                println!(
                    "{}: {} bytes, marked for you by edge {} via home server {}; the home deleted its copy",
                    d.path.display(),
                    d.bytes,
                    p.edge_name,
                    p.site.as_deref().unwrap_or("?")
                );
            }
            Mode::Rental => {
                let via = via.context("the edge did not say where the rental is")?;
                println!(
                    "rental {} from home server {}: {} until {}",
                    p.delivery,
                    via.site,
                    p.rental_tariff.as_deref().unwrap_or("by tariff"),
                    when(via.until.unwrap_or(0) * 1000)
                );
                if let Some(hls) = &via.hls {
                    println!("  play (HLS):          ffplay '{hls}'");
                }
                println!("  play (HTTP Range):   ffplay '{}'", o.copy.url);
                if let Some(done) = &via.done {
                    println!("  end:                 tracecast rental end '{done}'");
                }
            }
            Mode::Kiosk => {
                let disc = via
                    .and_then(|v| v.disc)
                    .context("the edge did not say what the kiosk wrote")?;
                println!(
                    "order {}: {} image of {} bytes written for a {} at {} ({} files: {})",
                    p.delivery,
                    disc.volume,
                    disc.image_bytes,
                    disc.medium,
                    p.site.as_deref().unwrap_or("?"),
                    disc.files.len(),
                    disc.files.join(", ")
                );
                match &disc.fulfilment {
                    Fulfilment::Pickup => println!("  pick it up at the store"),
                    Fulfilment::Ship { address } => println!("  the store posts it to {address}"),
                }
                if let Some(total) = p.store_total_cents {
                    println!("  you owe the store {}", money(total));
                }
            }
            Mode::Download => {}
        }
        Ok(ExitCode::SUCCESS)
    })
}

/// The media type of a video copy: the buyer's own HLS playlist.
const HLS_MEDIA_TYPE: &str = "application/vnd.apple.mpegurl";

/// Saves an HLS stream to `out` (MP4) with ffmpeg, as a player would.
async fn save_stream(url: &str, out: &Path, quiet: bool) -> Result<Downloaded, ClientError> {
    let pb = if quiet {
        ProgressBar::hidden()
    } else {
        let pb = ProgressBar::new_spinner();
        pb.set_message("saving the stream (ffmpeg)");
        pb.enable_steady_tick(Duration::from_millis(120));
        pb
    };
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
    pb.finish_and_clear();
    got
}

pub fn buy(args: BuyArgs, quiet: bool) -> anyhow::Result<ExitCode> {
    if args.home.is_some() || args.kiosk.is_some() {
        return buy_via_site(args, quiet);
    }
    let out_path = args
        .out
        .clone()
        .context("--out FILE: where to write the copy")?;
    runtime()?.block_on(async move {
        let tier = parse_tier(args.tier.as_deref())?;
        let origin = origin(&args.conn)?;
        let say = stderr_unless(quiet);
        let limit = args
            .limit_rate
            .as_deref()
            .map(crate::serve::parse_size)
            .transpose()?;
        let b = buy_copy(
            &origin,
            args.content,
            tier,
            &out_path,
            Duration::from_secs(args.retry_for),
            limit,
            args.idempotency_key.as_deref(),
            quiet,
            &say,
        )
        .await?;
        let out = Bought {
            delivery: b.purchase.delivery,
            content: b.purchase.content,
            tier: b.purchase.tier,
            edge: b.purchase.edge_name.clone(),
            price: money(b.purchase.price_cents),
            bytes: b.downloaded.bytes,
            sha256: b.copy.sha256.clone(),
            resumed_from: b.downloaded.resumed_from,
            kept: b.copy.kept,
            file: b.downloaded.path.display().to_string(),
        };
        if args.json {
            println!("{}", serde_json::to_string_pretty(&out)?);
        } else {
            println!(
                "{}: {} bytes, marked for you by edge {}{}",
                out.file,
                out.bytes,
                out.edge,
                if out.resumed_from > 0 {
                    format!(" (resumed at byte {})", out.resumed_from)
                } else {
                    String::new()
                }
            );
        }
        Ok(ExitCode::SUCCESS)
    })
}

pub fn trace(args: TraceArgs, quiet: bool) -> anyhow::Result<ExitCode> {
    runtime()?.block_on(async move {
        let pb = if quiet {
            ProgressBar::hidden()
        } else {
            let pb = ProgressBar::new_spinner();
            pb.set_message("the origin is reading the mark");
            pb.enable_steady_tick(Duration::from_millis(120));
            pb
        };
        let report = origin(&args.conn)?.trace_as(&args.file, args.content).await;
        pb.finish_and_clear();
        let report = report.with_context(|| format!("tracing {}", args.file.display()))?;
        if args.json {
            println!("{}", serde_json::to_string_pretty(&report)?);
        } else {
            print_trace(&args.file, &report);
        }
        let found = report.mark.is_some()
            || report.genuine_for_caller == Some(true)
            || report
                .fingerprint
                .as_ref()
                .is_some_and(|f| !f.accused.is_empty());
        Ok(if found {
            ExitCode::SUCCESS
        } else {
            ExitCode::from(1)
        })
    })
}

pub fn when(ms: i64) -> String {
    let t = std::time::UNIX_EPOCH + Duration::from_millis(ms.max(0) as u64);
    httpdate::fmt_http_date(t)
}

pub fn print_trace(file: &Path, r: &TraceReport) {
    println!("{} ({}):", file.display(), r.media);
    if let Some(genuine) = r.genuine_for_caller {
        if genuine {
            println!("  a genuine delivery to you");
        } else {
            println!("  not a delivery to you");
        }
    }
    if let Some(f) = &r.fingerprint {
        println!(
            "  pre-marked content {}: {} of {} segments read; its code resists {} colluder(s) (false accusation at most {})",
            f.content, f.read, f.segments, f.resists, f.epsilon
        );
        for s in &f.ranked {
            println!(
                "    {} {} (id {}): score {:.1} (threshold {})",
                if f.accused.iter().any(|a| a.user_id == s.user_id) {
                    "ACCUSED"
                } else {
                    "       "
                },
                s.user.as_deref().unwrap_or("?"),
                s.user_id,
                s.score,
                f.threshold.map_or("none".into(), |t| format!("{t:.1}"))
            );
        }
        if f.accused.is_empty() {
            println!("    nobody scores above the threshold");
        }
    }
    match &r.mark {
        None if r.genuine_for_caller.is_none() && r.fingerprint.is_some() => {
            println!("  no single buyer's payload reads whole: a mix of copies, or damaged")
        }
        None if r.genuine_for_caller.is_none() => {
            println!("  no mark: not a copy delivered by this origin (or too damaged to read)")
        }
        None => {}
        Some(m) => {
            println!(
                "  marked for user {} (id {}) by edge {} (id {}, operator {}), content server {} (id {}){}",
                r.user.as_deref().unwrap_or("?"),
                m.user,
                r.edge.as_deref().unwrap_or("?"),
                m.edge,
                r.edge_operator.as_deref().unwrap_or("?"),
                r.provider.as_deref().unwrap_or("?"),
                m.content_server,
                match (&r.site, m.home) {
                    (_, 0) => String::new(),
                    (Some(site), id) => format!(", through {site} (id {id})"),
                    (None, id) => format!(", through home or kiosk id {id}"),
                }
            );
            println!("  keyed tag verified; confidence {:.2}", m.confidence);
        }
    }
    for d in r.deliveries.iter().take(5) {
        println!(
            "  delivery {}: {:?} ({}), ordered {}, marked {}",
            d.delivery,
            d.title,
            d.tier,
            when(d.ordered_at),
            d.marked_at.map(when).unwrap_or_else(|| "-".into())
        );
    }
    if let Some(c) = r.metadata_content {
        println!("  the file's metadata names content {c}");
    }
    if let Some(a) = &r.accountability {
        if a.first_time {
            println!(
                "  member {} suspended for the leak of delivery {}; {} member(s)' trust lowered",
                a.member, a.delivery, a.members_changed
            );
            for c in &a.chain {
                println!(
                    "    referrer {}: trust {:.3} -> {:.3}",
                    c.member, c.before, c.after
                );
            }
        } else {
            println!(
                "  member {}: the leak of delivery {} was recorded before ({})",
                a.member,
                a.delivery,
                if a.suspended { "suspended" } else { "active" }
            );
        }
    }
}
