//! `tracecast licence` and `tracecast decrypt`: protected content
//! (DESIGN.md "002") from the user's side.

use std::process::ExitCode;
use std::time::Duration;

use anyhow::Context;
use tracecast_client::{OpenCopy, PackageItemOutcome};
use tracecast_protect::api::{PackageItem, PackageOrder};

use crate::cli::{DecryptArgs, LicenceCommand};
use crate::terminal::{origin, runtime};

pub fn licence(cmd: LicenceCommand) -> anyhow::Result<ExitCode> {
    match cmd {
        LicenceCommand::Keygen { system, out } => {
            let (secret, recipient) = tracecast_protect::new_key_file(system.parse()?)?;
            tracecast_secrets::write_new(&out, secret.as_bytes())?;
            println!("{recipient}");
            eprintln!(
                "secret written to {} (mode 0600); ask for licences with --recipient {recipient}",
                out.display()
            );
        }
        LicenceCommand::Convert {
            licences,
            recipient,
            out_dir,
            conn,
        } => {
            let answer = runtime()?.block_on(async {
                let origin = origin(&conn)?;
                anyhow::Ok(
                    origin
                        .convert_licence_files(&licences, &recipient, &out_dir)
                        .await?,
                )
            })?;
            for f in &answer.files {
                match &f.outcome {
                    Ok(out) => println!("{}: converted to {}", f.source.display(), out.display()),
                    Err(e) => println!("{}: refused: {e}", f.source.display()),
                }
            }
            println!(
                "{} converted, {} charged",
                answer.converted,
                tracecast_ledger::money(answer.charged_cents)
            );
            if answer.files.iter().any(|f| f.outcome.is_err()) {
                return Ok(ExitCode::from(1));
            }
        }
        LicenceCommand::Consent {
            partner,
            limit,
            revoke,
            conn,
        } => {
            let answer = runtime()?.block_on(async {
                let origin = origin(&conn)?;
                let answer = match (limit, revoke) {
                    (Some(l), _) => {
                        let cents = tracecast_ledger::parse_money(&l)
                            .map_err(|e| anyhow::anyhow!("--limit: {e}"))?;
                        Some(origin.give_consent(&partner, cents).await?)
                    }
                    (None, true) => {
                        origin.revoke_consent(&partner).await?;
                        None
                    }
                    (None, false) => Some(origin.consent(&partner).await?),
                };
                anyhow::Ok(answer)
            })?;
            match answer {
                None => println!("{partner} may no longer buy for you"),
                Some(c) => println!(
                    "{partner} may buy for you up to {} ({} spent)",
                    tracecast_ledger::money(c.limit_cents),
                    tracecast_ledger::money(c.spent_cents)
                ),
            }
        }
        LicenceCommand::Order {
            items,
            recipient,
            out_dir,
            conn,
        } => {
            let items = items
                .iter()
                .map(|i| i.parse::<PackageItem>())
                .collect::<Result<Vec<_>, _>>()
                .map_err(anyhow::Error::msg)?;
            let order = PackageOrder { items, recipient };
            let got = runtime()?.block_on(async {
                let origin = origin(&conn)?;
                anyhow::Ok(origin.order_package_into(&order, &out_dir).await?)
            })?;
            for item in &got.items {
                match item {
                    PackageItemOutcome::Delivered {
                        label,
                        delivery,
                        copy,
                        licence,
                    } => println!(
                        "{label}: delivery {delivery}, {} ({} bytes) with {}",
                        copy.path.display(),
                        copy.bytes,
                        licence.display()
                    ),
                    PackageItemOutcome::Refused { label, reason } => {
                        println!("{label}: refused: {reason}")
                    }
                }
            }
            println!(
                "{} ordered, {} charged by the roaming server",
                got.ordered,
                tracecast_ledger::money(got.charged_cents)
            );
            let refused = |i: &PackageItemOutcome| matches!(i, PackageItemOutcome::Refused { .. });
            if got.items.iter().any(refused) {
                return Ok(ExitCode::from(1));
            }
        }
        LicenceCommand::Get {
            delivery,
            recipient,
            out,
            conn,
        } => {
            let lic = runtime()?.block_on(async {
                origin(&conn)?
                    .licence(delivery, &recipient, None, Duration::from_secs(30))
                    .await
                    .map_err(anyhow::Error::from)
            })?;
            let text = serde_json::to_string_pretty(&lic)?;
            match out {
                Some(path) => {
                    std::fs::write(&path, format!("{text}\n"))
                        .with_context(|| format!("writing {}", path.display()))?;
                    eprintln!(
                        "licence for delivery {delivery} written to {}",
                        path.display()
                    );
                }
                None => println!("{text}"),
            }
        }
    }
    Ok(ExitCode::SUCCESS)
}

pub fn decrypt(args: DecryptArgs) -> anyhow::Result<ExitCode> {
    let range = args
        .range
        .as_deref()
        .map(|r| {
            r.split_once('-')
                .and_then(|(a, b)| Some((a.parse::<u64>().ok()?, b.parse::<u64>().ok()?)))
                .filter(|(a, b)| a <= b)
                .context("--range START-END, START <= END")
        })
        .transpose()?;
    let opened = runtime()?.block_on(async {
        origin(&args.conn)?
            .open_protected_copy(&OpenCopy {
                licence: args.licence.clone(),
                file: args.file.clone(),
                out: args.out.clone(),
                identity: args.identity.clone(),
                range,
            })
            .await
            .context("opening the protected copy")
    })?;
    println!(
        "{}: {} bytes decrypted with licence {} ({}, until {})",
        args.out.display(),
        opened.bytes,
        opened.licence.id,
        opened.licence.system,
        opened.licence.rights.not_after
    );
    Ok(ExitCode::SUCCESS)
}
