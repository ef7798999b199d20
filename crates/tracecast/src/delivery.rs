//! `tracecast account`, `content`, `buy` and `trace`: the delivery flow
//! from the command line, over the origin's and edges' HTTP APIs.

use std::path::Path;
use std::process::ExitCode;
use std::time::{Duration, Instant};

use anyhow::Context;
use indicatif::ProgressBar;
use tracecast_client::order_via_site;
use tracecast_delivery::api::{NewAccount, PrePositionRequest, PurchaseRequest, TraceReport};
use tracecast_delivery::messages::{money, parse_money};
use tracecast_delivery::{DiscOrder, Fulfilment, Mode, Tier};

use crate::cli::{AccountCommand, BuyArgs, ContentCommand, TraceArgs};
use crate::terminal::{byte_bar, hand_over, origin, runtime, when, Terminal};

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
                region,
                open,
                period_fee,
                period_days,
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
                        region,
                        open,
                        period_fee_cents: money(period_fee)?,
                        period_days,
                    })
                    .await?;
                hand_over(
                    created.token.as_deref().unwrap_or_default(),
                    token_out.as_deref(),
                    &format!(
                        "added {} {} (id {}, box {}); its token",
                        created.kind, created.name, created.id, created.box_name
                    ),
                )?;
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
                let whose = match (kind, name.as_deref()) {
                    (Some(k), Some(n)) => Some((k, n)),
                    (None, None) => None,
                    _ => anyhow::bail!("name the account as KIND NAME, or neither for your own"),
                };
                let a = origin(&conn)?.replace_token(whose).await?;
                hand_over(
                    a.token.as_deref().unwrap_or_default(),
                    token_out.as_deref(),
                    &format!(
                        "{} {}: new token (every earlier one is revoked)",
                        a.kind, a.name
                    ),
                )?;
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
                marking,
                json,
                conn,
            } => {
                let marking = match (ab, marking) {
                    (true, _) => tracecast_delivery::ab::Marking::Ab,
                    (false, m) => m.unwrap_or_default(),
                };
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
                            marking,
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
                    for w in &info.warnings {
                        eprintln!("warning: {w}");
                    }
                    for r in &info.renditions {
                        if let Some(ab) = &r.ab {
                            let format = if ab.flac.is_some() { "FLAC" } else { "WAV" };
                            println!(
                                "  {}: {format} A/B variants of {} and {} bytes, {} segments; copies are assembled",
                                r.tier,
                                ab.variant_bytes(false),
                                ab.variant_bytes(true),
                                ab.geometry.units
                            );
                            if let Some(m) = &ab.mp3 {
                                println!(
                                    "  {}: MP3 A/B variants of {} bytes each ({} kbit/s): `buy --out FILE.mp3`",
                                    r.tier, m.bytes, m.kbps
                                );
                            }
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
                origin(&conn)?.set_reserved(id, up_to).await?;
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

fn parse_tier(tier: Option<&str>) -> anyhow::Result<Option<Tier>> {
    tier.map(str::parse::<Tier>)
        .transpose()
        .map_err(anyhow::Error::msg)
}

fn buy_via_site(args: BuyArgs, quiet: bool) -> anyhow::Result<ExitCode> {
    runtime()?.block_on(async move {
        let tier = parse_tier(args.tier.as_deref())?;
        let origin = origin(&args.conn)?;
        let terminal = Terminal::new(quiet);
        let mut request = PurchaseRequest::download(args.content, tier);
        request.region = args.region.clone();
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
            &terminal,
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

pub fn buy(args: BuyArgs, quiet: bool) -> anyhow::Result<ExitCode> {
    if args.home.is_some() || args.kiosk.is_some() {
        return buy_via_site(args, quiet);
    }
    if args.cdn {
        return buy_through_cdn(args, quiet);
    }
    let out_path = args
        .out
        .clone()
        .context("--out FILE: where to write the copy")?;
    runtime()?.block_on(async move {
        let tier = parse_tier(args.tier.as_deref())?;
        let origin = origin(&args.conn)?;
        let terminal = Terminal::new(quiet);
        let limit = args
            .limit_rate
            .as_deref()
            .map(tracecast_server::node::parse_size)
            .transpose()?;
        let mp3 = out_path
            .extension()
            .is_some_and(|e| e.eq_ignore_ascii_case("mp3"));
        let b = tracecast_client::buy_copy_as(
            &origin,
            args.content,
            tier,
            args.region.as_ref(),
            &out_path,
            Duration::from_secs(args.retry_for),
            limit,
            args.idempotency_key.as_deref(),
            &terminal,
            mp3.then_some("mp3"),
        )
        .await?;
        // An MP3 form has no hash of record: its own, taken here.
        let sha256 = if mp3 {
            tracecast_client::hash_file(&b.downloaded.path).await?.1
        } else {
            b.copy.sha256.clone()
        };
        let out = Bought {
            delivery: b.purchase.delivery,
            content: b.purchase.content,
            tier: b.purchase.tier,
            edge: b.purchase.edge_name.clone(),
            price: money(b.purchase.price_cents),
            bytes: b.downloaded.bytes,
            sha256,
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

/// `buy --cdn`: billed at the origin, downloaded from the CDN.
fn buy_through_cdn(args: BuyArgs, quiet: bool) -> anyhow::Result<ExitCode> {
    let out_path = args
        .out
        .clone()
        .context("--out FILE: where to write the copy")?;
    runtime()?.block_on(async move {
        let tier = parse_tier(args.tier.as_deref())?;
        let origin = origin(&args.conn)?;
        let terminal = Terminal::new(quiet);
        let (p, bytes) = tracecast_client::buy_via_cdn(
            &origin,
            args.content,
            tier,
            &out_path,
            Duration::from_secs(args.retry_for),
            args.idempotency_key.as_deref(),
            &terminal,
        )
        .await?;
        if args.json {
            println!(
                "{}",
                serde_json::to_string_pretty(&serde_json::json!({
                    "delivery": p.delivery,
                    "content": p.content,
                    "tier": p.tier,
                    "cdn": p.edge_name,
                    "price": money(p.price_cents),
                    "bytes": bytes,
                    "file": out_path.display().to_string(),
                }))?
            );
        } else {
            println!(
                "{}: {bytes} bytes, marked for you through the CDN ({})",
                out_path.display(),
                p.edge_name
            );
        }
        Ok(ExitCode::SUCCESS)
    })
}

/// `tracecast cdn publish|key`.
pub fn contract(cmd: crate::cli::ContractCommand) -> anyhow::Result<ExitCode> {
    use tracecast_delivery::api::ContractInfo;
    let line = |k: &ContractInfo| {
        let period = if k.period_fee_cents > 0 {
            format!(
                ", {} every {} days ({} charged)",
                tracecast_delivery::messages::money(k.period_fee_cents),
                k.period_days,
                k.periods_charged
            )
        } else {
            String::new()
        };
        let state = match k.ended_at {
            Some(t) => format!("ended {}", when(t)),
            None => format!("since {}", when(k.signed_at)),
        };
        format!(
            "{:>5}  {} with edge {} ({}): {} a delivery{period}; {state}",
            k.id,
            k.provider,
            k.edge,
            k.operator,
            tracecast_delivery::messages::money(k.fee_cents)
        )
    };
    runtime()?.block_on(async move {
        match cmd {
            crate::cli::ContractCommand::Add { edge, json, conn } => {
                let k = origin(&conn)?.sign_contract(&edge).await?;
                if json {
                    println!("{}", serde_json::to_string_pretty(&k)?);
                } else {
                    println!("{}", line(&k));
                }
            }
            crate::cli::ContractCommand::List { json, conn } => {
                let all = origin(&conn)?.contracts().await?;
                if json {
                    println!("{}", serde_json::to_string_pretty(&all)?);
                } else {
                    for k in &all {
                        println!("{}", line(k));
                    }
                }
            }
            crate::cli::ContractCommand::End { edge, conn } => {
                let k = origin(&conn)?.end_contract(&edge).await?;
                println!("{}", line(&k));
            }
        }
        Ok(ExitCode::SUCCESS)
    })
}

pub fn cdn(cmd: crate::cli::CdnCommand) -> anyhow::Result<ExitCode> {
    runtime()?.block_on(async move {
        match cmd {
            crate::cli::CdnCommand::Publish {
                content,
                tier,
                dir,
                conn,
            } => {
                let tier: Tier = tier.parse().map_err(anyhow::Error::msg)?;
                let folder =
                    tracecast_client::cdn::publish(&origin(&conn)?, content, tier, &dir).await?;
                println!("{}", folder.display());
            }
            crate::cli::CdnCommand::Key { out, conn } => {
                let (pem, kid) = tracecast_client::cdn::token_key(&origin(&conn)?).await?;
                match out {
                    Some(path) => {
                        std::fs::write(&path, &pem)
                            .with_context(|| format!("writing {}", path.display()))?;
                        eprintln!("wrote {} (key id {kid})", path.display());
                    }
                    None => {
                        print!("{pem}");
                        eprintln!("key id {kid}");
                    }
                }
            }
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
