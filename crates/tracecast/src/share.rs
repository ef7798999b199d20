//! Sharing from a device through a phone gateway (DESIGN.md "000") on the
//! command line: the gateway role's set-up and its terminal compose
//! prompt, `tracecast service` (device accounts, numbers), `tracecast
//! device` (set-up and send) and saving shared messages from the inbox.

use std::path::Path;
use std::process::ExitCode;
use std::time::Duration;

use anyhow::Context;
use tracecast_client::device::{DeviceState, Setup, Share};
use tracecast_client::ServiceClient;

use crate::cli::{DeviceCommand, ServiceAccountCommand, ServiceCommand};
use crate::terminal::{hand_over, runtime, Terminal};

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
            ServiceCommand::Gateway { name, action, conn } => {
                let status = if action == "suspend" {
                    tracecast_share::AccountStatus::Suspended
                } else {
                    tracecast_share::AccountStatus::Active
                };
                ServiceClient::new(&conn.server, &conn.token()?)?
                    .set_gateway_status(&name, status)
                    .await?;
                eprintln!(
                    "gateway {name}: the service is {}",
                    if action == "suspend" { "off" } else { "on" }
                );
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

/// Hands a set-up code over (after the account, which `issue` prints
/// first); with `--json` and no file, the code is in the JSON.
fn show_code(account: &str, code: &str, out: Option<&Path>, json: bool) -> anyhow::Result<()> {
    if json && out.is_none() {
        return Ok(());
    }
    let what = format!("{account}: its set-up code (give it to the device's holder; shown once)");
    hand_over(code, out, &what)
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
                // The code first: a missing one fails before the network.
                let code = match (code, code_file) {
                    (Some(c), _) => c,
                    (None, Some(f)) => tracecast_secrets::read_text(&f)?,
                    (None, None) => anyhow::bail!(
                        "give the account's set-up code (--code-file FILE or TRACECAST_SETUP_CODE): the operator issued it with the account"
                    ),
                };
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
                        for f in found.iter().filter(|_| !quiet) {
                            eprintln!("found gateway {} at {}", f.name, f.url);
                        }
                        found.into_iter().next().context(
                            "no gateway answered on the local network: is the phone's gateway on? (or give --gateway http://HOST:PORT)",
                        )?.url
                    }
                };
                let setup = Setup {
                    gateway: &url,
                    account: &account,
                    code: &code,
                    model: &model,
                    hardware: &hardware,
                };
                let (saved, message) = tracecast_client::device::set_up(&setup, &Terminal::new(quiet))
                    .await
                    .with_context(|| format!("setting the device up with the gateway at {url}"))?;
                saved.save(&state)?;
                println!("{message}");
            }
            DeviceCommand::Send {
                file,
                to,
                text,
                media_type,
                state,
            } => {
                let saved = DeviceState::load(&state)?;
                let share = Share {
                    to: to.as_deref(),
                    text: text.as_deref(),
                    media_type: media_type.as_deref(),
                };
                let receipt = tracecast_client::device::share_file(
                    &saved,
                    &file,
                    &share,
                    std::sync::Arc::new(Terminal::new(quiet)),
                )
                .await?;
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
