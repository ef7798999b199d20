//! `tracecast licence` and `tracecast decrypt`: protected content
//! (DESIGN.md "002") from the user's side.

use std::process::ExitCode;
use std::time::Duration;

use anyhow::Context;
use tracecast_client::OpenCopy;
use tracecast_protect::api::{ConversionRequest, PackageItem, PackageOrder};
use tracecast_protect::SignedLicence;

use crate::cli::{DecryptArgs, LicenceCommand};
use crate::delivery::{origin, runtime};

pub fn licence(cmd: LicenceCommand) -> anyhow::Result<ExitCode> {
    match cmd {
        LicenceCommand::Keygen { system, out } => {
            let (secret, recipient) = tracecast_protect::new_key_file(system.parse()?)?;
            tracecast_server::secrets::write_new(&out, secret.as_bytes())?;
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
            let mut sent = Vec::new();
            for path in &licences {
                let raw =
                    std::fs::read(path).with_context(|| format!("reading {}", path.display()))?;
                let l = SignedLicence::parse(&raw)
                    .with_context(|| format!("{} is not a licence", path.display()))?;
                sent.push(l);
            }
            let system: String = recipient.split(':').next().unwrap_or("licence").to_owned();
            let answer = runtime()?.block_on(async {
                origin(&conn)?
                    .convert_licences(&ConversionRequest {
                        licences: sent,
                        recipient,
                    })
                    .await
                    .map_err(anyhow::Error::from)
            })?;
            std::fs::create_dir_all(&out_dir)?;
            let mut failed = 0;
            for r in &answer.results {
                let src = &licences[r.index.min(licences.len() - 1)];
                match (&r.licence, r.error.as_deref()) {
                    (Some(l), None) => {
                        let stem = src
                            .file_stem()
                            .and_then(|s| s.to_str())
                            .unwrap_or("licence");
                        let out = out_dir.join(format!("{stem}.{system}.licence"));
                        std::fs::write(&out, serde_json::to_string_pretty(l)? + "\n")?;
                        println!("{}: converted to {}", src.display(), out.display());
                    }
                    (_, e) => {
                        failed += 1;
                        println!("{}: refused: {}", src.display(), e.unwrap_or("?"));
                    }
                }
            }
            println!(
                "{} converted, {} charged",
                answer.converted,
                tracecast_ledger::money(answer.charged_cents)
            );
            if failed > 0 {
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
            let mut wanted = Vec::new();
            for item in &items {
                let mut parts = item.split(':');
                let (Some(issuer), Some(content)) = (parts.next(), parts.next()) else {
                    anyhow::bail!("{item:?}: write ISSUER:CONTENT or ISSUER:CONTENT:TIER");
                };
                let content: i64 = content
                    .parse()
                    .with_context(|| format!("{item:?}: the content is a number"))?;
                let tier = parts
                    .next()
                    .map(str::parse::<tracecast_delivery::Tier>)
                    .transpose()
                    .map_err(|e| anyhow::anyhow!("{item:?}: {e}"))?;
                if parts.next().is_some() {
                    anyhow::bail!("{item:?}: write ISSUER:CONTENT or ISSUER:CONTENT:TIER");
                }
                wanted.push(PackageItem {
                    issuer: issuer.to_owned(),
                    content,
                    tier,
                });
            }
            std::fs::create_dir_all(&out_dir)
                .with_context(|| format!("creating {}", out_dir.display()))?;
            let system: String = recipient.split(':').next().unwrap_or("licence").to_owned();
            let failed = runtime()?.block_on(async {
                // One key for this order: a retry after a lost answer
                // buys nothing twice.
                let key = format!("order-{:032x}", rand::random::<u128>());
                let answer = origin(&conn)?
                    .package_order(
                        &PackageOrder {
                            items: wanted,
                            recipient,
                        },
                        &key,
                    )
                    .await?;
                let edges = tracecast_client::EdgeClient::new()?;
                let mut failed = 0;
                for r in &answer.results {
                    let label = format!("{}:{}", r.issuer, r.content);
                    let (Some(p), Some(licence)) = (&r.purchase, &r.licence) else {
                        failed += 1;
                        println!(
                            "{label}: refused: {}",
                            r.error.as_deref().unwrap_or("no reason given")
                        );
                        continue;
                    };
                    let copy = edges.deliver(&p.edge_address, &p.ticket).await?;
                    let out = out_dir.join(&copy.filename);
                    let got = edges.download(&copy, &out, &|_, _| {}).await?;
                    let lic = out_dir.join(format!("delivery-{}.{system}.licence", p.delivery));
                    std::fs::write(&lic, serde_json::to_string_pretty(licence)? + "\n")
                        .with_context(|| format!("writing {}", lic.display()))?;
                    println!(
                        "{label}: delivery {}, {} ({} bytes) with {}",
                        p.delivery,
                        out.display(),
                        got.bytes,
                        lic.display()
                    );
                }
                println!(
                    "{} ordered, {} charged by the roaming server",
                    answer.ordered,
                    tracecast_ledger::money(answer.charged_cents)
                );
                anyhow::Ok(failed)
            })?;
            if failed > 0 {
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
