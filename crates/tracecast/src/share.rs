//! Sharing from a device through a phone gateway (DESIGN.md "000") on the
//! command line: the gateway role's set-up and its terminal compose
//! prompt, `tracecast service` (device accounts, numbers), `tracecast
//! device` (set-up and send) and saving shared messages from the inbox.

use std::path::Path;
use std::process::ExitCode;
use std::time::Duration;

use anyhow::Context;
use serde::{Deserialize, Serialize};
use tracecast_client::{GatewayClient, SendOptions, ServiceClient};
use tracecast_share::gateway::ServiceRequest;

use crate::cli::{DeviceCommand, ServiceAccountCommand, ServiceCommand};
use crate::delivery::{byte_bar, runtime};

pub fn service(cmd: ServiceCommand) -> anyhow::Result<ExitCode> {
    runtime()?.block_on(async {
        match cmd {
            ServiceCommand::Account(ServiceAccountCommand::Issue {
                label,
                json,
                code_out,
                conn,
            }) => {
                let client = ServiceClient::new(&conn.server, &conn.token()?)?;
                let mut issued = client.issue_account(&label).await?;
                let code = issued.code.take().unwrap_or_default();
                if json {
                    let mut v = serde_json::to_value(&issued)?;
                    if code_out.is_none() {
                        v["code"] = code.clone().into();
                    }
                    println!("{v}");
                } else {
                    println!("{}", issued.account);
                    eprintln!("device account for {:?} issued", issued.label);
                }
                show_code(&issued.account, &code, code_out.as_deref(), json)?;
            }
            ServiceCommand::Account(ServiceAccountCommand::Code {
                account,
                code_out,
                conn,
            }) => {
                let issued = ServiceClient::new(&conn.server, &conn.token()?)?
                    .new_code(&account)
                    .await?;
                let code = issued.code.unwrap_or_default();
                show_code(&issued.account, &code, code_out.as_deref(), false)?;
            }
            ServiceCommand::Account(ServiceAccountCommand::Suspend { account, conn }) => {
                ServiceClient::new(&conn.server, &conn.token()?)?
                    .set_account_status(&account, tracecast_share::AccountStatus::Suspended)
                    .await?;
                eprintln!("{account}: the service is off");
            }
            ServiceCommand::Account(ServiceAccountCommand::Activate { account, conn }) => {
                ServiceClient::new(&conn.server, &conn.token()?)?
                    .set_account_status(&account, tracecast_share::AccountStatus::Active)
                    .await?;
                eprintln!("{account}: the service is on");
            }
            ServiceCommand::Number {
                number,
                box_name,
                conn,
            } => {
                let box_name = if box_name.contains(':') {
                    box_name
                } else {
                    format!("user:{box_name}")
                };
                ServiceClient::new(&conn.server, &conn.token()?)?
                    .set_number(&number, &box_name)
                    .await?;
                eprintln!("{number} names {box_name}");
            }
        }
        Ok(ExitCode::SUCCESS)
    })
}

/// Hands a set-up code over: to a 0600 file, or on stdout (after the
/// account, which `issue` prints first).
fn show_code(account: &str, code: &str, out: Option<&Path>, json: bool) -> anyhow::Result<()> {
    match out {
        Some(path) => {
            tracecast_server::secrets::replace(path, format!("{code}\n").as_bytes())
                .with_context(|| format!("writing {}", path.display()))?;
            eprintln!(
                "{account}: set-up code in {} (give it to the device's holder; shown once)",
                path.display()
            );
        }
        None if json => {}
        None => {
            println!("{code}");
            eprintln!(
                "{account}: that is its set-up code (give it to the device's holder; shown once)"
            );
        }
    }
    Ok(())
}

/// What a device keeps after set-up.
#[derive(Debug, Serialize, Deserialize)]
struct DeviceState {
    gateway: String,
    gateway_name: String,
    account: String,
    token: String,
    attachment_limit: u64,
}

pub fn device(cmd: DeviceCommand, quiet: bool) -> anyhow::Result<ExitCode> {
    runtime()?.block_on(async {
        match cmd {
            DeviceCommand::Setup {
                account,
                code,
                code_file,
                model,
                hardware,
                gateway,
                discover_secs,
                loopback,
                state,
            } => {
                // Step 1: find a gateway.
                let url = match gateway {
                    Some(g) => g,
                    None => {
                        if !quiet {
                            eprintln!("looking for gateways (mDNS _tracecast-gw._tcp) for {discover_secs} s…");
                        }
                        let found = tokio::task::spawn_blocking(move || {
                            tracecast_server::gateway::discover(
                                Duration::from_secs(discover_secs),
                                loopback,
                            )
                        })
                        .await??;
                        let first = found.first().context(
                            "no gateway answered on the local network: is the phone's gateway on? (or give --gateway http://HOST:PORT)",
                        )?;
                        if !quiet {
                            for f in &found {
                                eprintln!("found gateway {} at {}", f.name, f.url);
                            }
                        }
                        first.url.clone()
                    }
                };
                let client = GatewayClient::new(&url, None)?;
                // Steps 2-4.
                let offer = client
                    .request_service(&ServiceRequest {
                        account: account.clone(),
                        model,
                        hardware,
                    })
                    .await
                    .context("the gateway refused the service request")?;
                if !quiet {
                    eprintln!("{}", offer.message);
                }
                // Steps 5-9.
                let code = match (code, code_file) {
                    (Some(c), _) => c,
                    (None, Some(f)) => std::fs::read_to_string(&f)
                        .with_context(|| format!("reading {}", f.display()))?
                        .trim()
                        .to_owned(),
                    (None, None) => anyhow::bail!(
                        "give the account's set-up code (--code-file FILE or TRACECAST_SETUP_CODE): the operator issued it with the account"
                    ),
                };
                let on = client
                    .confirm(&offer, &account, &code)
                    .await
                    .context("the service was not switched on")?;
                let saved = DeviceState {
                    gateway: url,
                    gateway_name: on.gateway.clone(),
                    account: on.account.clone(),
                    token: on.token.clone(),
                    attachment_limit: on.attachment_limit,
                };
                tracecast_server::secrets::replace(
                    &state,
                    serde_json::to_string_pretty(&saved)?.as_bytes(),
                )
                .with_context(|| format!("writing {}", state.display()))?;
                println!("{}", on.message);
            }
            DeviceCommand::Send {
                file,
                to,
                text,
                media_type,
                state,
            } => {
                let saved: DeviceState = serde_json::from_slice(
                    &std::fs::read(&state).with_context(|| {
                        format!(
                            "reading {}: set the device up first (tracecast device setup)",
                            state.display()
                        )
                    })?,
                )
                .with_context(|| format!("{} is not a device's state", state.display()))?;
                let client = GatewayClient::new(&saved.gateway, Some(&saved.token))?;
                let filename = file
                    .file_name()
                    .and_then(|n| n.to_str())
                    .unwrap_or("shared.bin")
                    .to_owned();
                let media_type =
                    media_type.unwrap_or_else(|| tracecast_share::message::guess_media_type(&file).to_owned());
                if !quiet {
                    eprintln!(
                        "sending {} to gateway {}: its user composes the message…",
                        file.display(),
                        saved.gateway_name
                    );
                }
                let bar = byte_bar(quiet, "send");
                bar.set_length(std::fs::metadata(&file).map(|m| m.len()).unwrap_or(0));
                let ticks = bar.clone();
                let receipt = client
                    .send(
                        &file,
                        &SendOptions {
                            filename: &filename,
                            media_type: &media_type,
                            to: to.as_deref(),
                            text: text.as_deref(),
                        },
                        move |n| ticks.set_position(n),
                    )
                    .await;
                bar.finish_and_clear();
                let receipt = receipt?;
                println!(
                    "sent to {} ({}) as {}: message {}{}",
                    receipt.recipient,
                    receipt.recipient_box,
                    receipt.carried_as,
                    receipt.message,
                    receipt
                        .link
                        .as_ref()
                        .map(|l| format!(", link {l}"))
                        .unwrap_or_default()
                );
            }
        }
        Ok(ExitCode::SUCCESS)
    })
}
