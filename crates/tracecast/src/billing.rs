//! `tracecast rental`, `bill`, `pay`, `ledger` and `kiosk`: rentals,
//! invoices, payments, the ledger for accountants, and the shop operator's
//! disc images.

use std::io::Write;
use std::process::ExitCode;

use anyhow::Context;
use tracecast_client::{EdgeClient, KioskClient};
use tracecast_delivery::api::{PaymentRequest, SiteKind};
use tracecast_ledger::{money, parse_money};

use crate::cli::{BillArgs, KioskCommand, LedgerCommand, PayArgs, RentalCommand, SitesArgs};
use crate::terminal::{origin, runtime, when};

pub fn sites(args: SitesArgs) -> anyhow::Result<ExitCode> {
    runtime()?.block_on(async move {
        let sites = origin(&args.conn)?.sites().await?;
        if args.json {
            println!("{}", serde_json::to_string_pretty(&sites)?);
            return Ok(ExitCode::SUCCESS);
        }
        for s in &sites {
            let fee = money(s.fee_cents);
            let (kind, what) = match s.kind {
                SiteKind::Kiosk => {
                    let media: Vec<String> = s
                        .media
                        .iter()
                        .map(|(m, c)| format!("{m} {}", money(*c)))
                        .collect();
                    (
                        "kiosk",
                        format!(
                            "agency fee {fee}, media: {}, shipping {}",
                            media.join(", "),
                            money(s.shipping_cents)
                        ),
                    )
                }
                SiteKind::Home => ("home", format!("usage fee {fee}, paid by {}", s.payer)),
            };
            println!(
                "{kind:<5} {:<20} {}  (operator {}; {what})",
                s.name, s.address, s.operator
            );
        }
        Ok(ExitCode::SUCCESS)
    })
}

pub fn rental(cmd: RentalCommand) -> anyhow::Result<ExitCode> {
    let RentalCommand::End { link } = cmd;
    // A link, or the JSON `buy --rent --json` printed.
    let url = if link.starts_with("http://") || link.starts_with("https://") {
        link
    } else {
        let text = std::fs::read_to_string(&link).with_context(|| format!("reading {link}"))?;
        let v: serde_json::Value =
            serde_json::from_str(&text).with_context(|| format!("{link} is not JSON"))?;
        v["copy"]["via"]["done"]
            .as_str()
            .with_context(|| format!("{link} holds no rental end link"))?
            .to_owned()
    };
    runtime()?.block_on(async move {
        let r = EdgeClient::new()?.finish(&url).await.context("ending the rental")?;
        let viewed = r.viewed_ms;
        println!(
            "rental {} ended: {} min {} s viewed; the home server deleted its copy, and the fee follows the tariff",
            r.delivery,
            viewed / 60_000,
            viewed / 1000 % 60
        );
        Ok(ExitCode::SUCCESS)
    })
}

pub fn bill(args: BillArgs) -> anyhow::Result<ExitCode> {
    runtime()?.block_on(async move {
        let inv = origin(&args.conn)?.invoice(args.user.as_deref()).await?;
        if args.json {
            println!("{}", serde_json::to_string_pretty(&inv)?);
            return Ok(ExitCode::SUCCESS);
        }
        println!("invoice for {} ({})", inv.account, inv.currency);
        for l in &inv.lines {
            println!(
                "  {}  {:>10}  {}",
                when(l.at),
                money(l.amount_cents),
                l.memo
            );
        }
        if inv.balance_cents > 0 {
            println!("  owed: {} {}", money(inv.balance_cents), inv.currency);
        } else if inv.balance_cents < 0 {
            println!(
                "  in your favour: {} {}",
                money(-inv.balance_cents),
                inv.currency
            );
        } else {
            println!("  nothing owed");
        }
        Ok(ExitCode::SUCCESS)
    })
}

pub fn pay(args: PayArgs) -> anyhow::Result<ExitCode> {
    let amount = args
        .amount
        .as_deref()
        .map(parse_money)
        .transpose()
        .map_err(anyhow::Error::msg)?;
    let key = args.idempotency_key.clone().unwrap_or_else(|| {
        let mut b = [0u8; 12];
        rand::RngCore::fill_bytes(&mut rand::rngs::OsRng, &mut b);
        hex::encode(b)
    });
    runtime()?.block_on(async move {
        let r = origin(&args.conn)?
            .pay(&PaymentRequest {
                amount_cents: amount,
                idempotency_key: key,
                note: args.note.clone(),
            })
            .await?;
        if r.repeated {
            println!(
                "payment {} was already recorded; balance {}",
                r.reference,
                money(r.balance_cents)
            );
        } else {
            println!(
                "paid {} through {} (reference {}); balance {}",
                money(r.amount_cents),
                r.provider,
                r.reference,
                money(r.balance_cents)
            );
        }
        Ok(ExitCode::SUCCESS)
    })
}

/// What a ledger balance says of its account (positive: it owes).
fn standing(cents: i64) -> &'static str {
    match cents.signum() {
        1 => "owes",
        -1 => "is owed",
        _ => "settled",
    }
}

pub fn ledger(cmd: LedgerCommand) -> anyhow::Result<ExitCode> {
    runtime()?.block_on(async move {
        match cmd {
            LedgerCommand::Export { format, out, conn } => {
                let o = origin(&conn)?;
                let text = if format == "csv" {
                    o.ledger_csv().await?
                } else {
                    serde_json::to_string_pretty(&o.ledger().await?)?
                };
                match out {
                    Some(path) => {
                        std::fs::write(&path, &text)
                            .with_context(|| format!("writing {}", path.display()))?;
                        eprintln!("wrote {}", path.display());
                    }
                    None => std::io::stdout().write_all(text.as_bytes())?,
                }
            }
            LedgerCommand::Statements { json, conn } => {
                let r = origin(&conn)?.issue_statements().await?;
                if json {
                    println!("{}", serde_json::to_string_pretty(&r)?);
                } else if r.issued.is_empty() {
                    println!("no statements: nothing was posted since the last ones");
                } else {
                    for s in &r.issued {
                        let c = s.closing_cents;
                        let how = standing(c);
                        println!(
                            "{:<36} statement {:>4}  {:>5} postings  {:>10}  {how}",
                            s.account,
                            s.number,
                            s.postings,
                            money(c.abs())
                        );
                    }
                }
            }
            LedgerCommand::Balances { json, conn } => {
                let b = origin(&conn)?.balances().await?;
                if json {
                    println!("{}", serde_json::to_string_pretty(&b)?);
                } else {
                    let currency = &b.currency;
                    for row in &b.balances {
                        let c = row.balance_cents;
                        let how = standing(c);
                        println!(
                            "{:<36} {:>10} {currency}  {how}",
                            row.account,
                            money(c.abs())
                        );
                    }
                    println!(
                        "{:<36} {:>10} {currency}  (every transaction sums to zero)",
                        "total",
                        money(b.total_cents)
                    );
                }
            }
        }
        Ok(ExitCode::SUCCESS)
    })
}

pub fn kiosk(cmd: KioskCommand) -> anyhow::Result<ExitCode> {
    let conn = match &cmd {
        KioskCommand::Discs { kiosk }
        | KioskCommand::Image { kiosk, .. }
        | KioskCommand::Burned { kiosk, .. }
        | KioskCommand::Shipped { kiosk, .. } => kiosk,
    };
    let token = std::fs::read_to_string(&conn.kiosk_token_file)
        .with_context(|| format!("reading {}", conn.kiosk_token_file.display()))?;
    let client = KioskClient::new(&conn.kiosk_url, &token)?;
    runtime()?.block_on(async move {
        match cmd {
            KioskCommand::Discs { .. } => {
                let orders = client.discs().await?;
                for o in orders {
                    println!(
                        "order {:>6}  {:<9} {:<8} user {:<8} {}",
                        o.delivery,
                        o.status.as_str(),
                        o.medium,
                        o.user,
                        o.detail
                    );
                }
            }
            KioskCommand::Image { delivery, out, .. } => {
                let n = client.image(delivery, &out).await?;
                println!(
                    "{}: {n} bytes, checked; burn it, then `tracecast kiosk burned {delivery}`",
                    out.display()
                );
            }
            KioskCommand::Burned { delivery, .. } => {
                client.burned(delivery).await?;
                println!("order {delivery}: burned; the image is deleted; the buyer is told");
            }
            KioskCommand::Shipped {
                delivery, tracking, ..
            } => {
                client.shipped(delivery, tracking).await?;
                println!("order {delivery}: posted; the buyer is told");
            }
        }
        Ok(ExitCode::SUCCESS)
    })
}
