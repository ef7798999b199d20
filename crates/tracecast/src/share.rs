//! Sharing from a device through a phone gateway (DESIGN.md "000") on the
//! command line: the gateway role's set-up and its terminal compose
//! prompt, `tracecast service` (device accounts, numbers), `tracecast
//! device` (set-up and send) and saving shared messages from the inbox.

use std::io::{BufRead, Write};
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::sync::Arc;
use std::time::Duration;

use anyhow::{bail, Context};
use serde::{Deserialize, Serialize};
use tracecast_client::{download_link, GatewayClient, SendOptions, ServiceClient};
use tracecast_server::gateway::{
    ComposeAsk, Composed, Composer, Gateway, GatewayConfig, PresetComposer,
};
use tracecast_share::gateway::ServiceRequest;
use tracecast_share::message;
use tracecast_store::{Principal, Store};

use crate::cli::{DeviceCommand, ServiceAccountCommand, ServiceCommand};
use crate::delivery::byte_bar;
use crate::serve::Settings;

fn runtime() -> anyhow::Result<tokio::runtime::Runtime> {
    Ok(tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()?)
}

/// The compose prompt at the gateway's terminal: what the device sent,
/// then the recipient and the text, one line each (the device's
/// suggestions in brackets are taken on an empty line).
pub struct TerminalComposer;

fn ask_line(prompt: &str) -> Result<Option<String>, String> {
    eprint!("{prompt}");
    let _ = std::io::stderr().flush();
    let mut line = String::new();
    match std::io::stdin().lock().read_line(&mut line) {
        Ok(0) => Ok(None),
        Ok(_) => Ok(Some(line.trim_end_matches(['\r', '\n']).to_owned())),
        Err(e) => Err(format!("reading the terminal: {e}")),
    }
}

impl Composer for TerminalComposer {
    fn compose(&self, ask: &ComposeAsk) -> Result<Composed, String> {
        eprintln!(
            "\n── {} wants to share {} ({} bytes, {}){}",
            ask.device,
            ask.filename,
            ask.bytes,
            ask.media_type,
            if ask.as_link {
                ": over the attachment limit, it will travel as a download link"
            } else {
                ""
            }
        );
        let hint = |s: &Option<String>| s.as_ref().map(|v| format!(" [{v}]")).unwrap_or_default();
        let to = ask_line(&format!(
            "To (a number or a user's name; empty line: the suggestion; '-' cancels){}: ",
            hint(&ask.suggested_to)
        ))?
        .ok_or("no one answered at the gateway's terminal")?;
        let to = match to.trim() {
            "-" => return Err("cancelled at the gateway".into()),
            "" => ask.suggested_to.clone().ok_or("no recipient was given")?,
            t => t.to_owned(),
        };
        let text = ask_line(&format!("Message{}: ", hint(&ask.suggested_text)))?
            .ok_or("no one answered at the gateway's terminal")?;
        let text = match text.trim() {
            "-" => return Err("cancelled at the gateway".into()),
            "" => ask.suggested_text.clone().unwrap_or_default(),
            _ => text,
        };
        Ok(Composed {
            recipient: to,
            text,
        })
    }
}

/// Sets up the gateway role: its token, name and composer.
pub async fn start_gateway(
    s: &Settings,
    store: &Store,
    base: &str,
) -> anyhow::Result<(Arc<Gateway>, String)> {
    let g = &s.gateway;
    let token_file = g
        .token_file
        .as_ref()
        .context("a gateway needs its account token: --gateway-token-file FILE")?;
    let token = std::fs::read_to_string(token_file)
        .with_context(|| format!("reading {}", token_file.display()))?
        .trim()
        .to_owned();
    let service = match (&g.service, s.roles.service) {
        (Some(url), _) => url.trim_end_matches('/').to_owned(),
        (None, true) => base.to_owned(),
        (None, false) => bail!("a gateway needs the service server: --service http://HOST:PORT"),
    };
    let mailbox = g.mailbox.clone().unwrap_or_else(|| service.clone());
    // The gateway's name is its account's: asked of the store here, or of
    // the remote mailbox.
    let name = if s.roles.service {
        match store
            .principal(&tracecast_server::auth::token_hash(&token))
            .await?
        {
            Some(Principal::Box { id, .. }) => match store.account_by_box(id).await? {
                Some(a) if a.gateway().is_some() => a.name,
                _ => bail!("the token in {} is not a gateway's", token_file.display()),
            },
            _ => bail!("the token in {} is unknown here", token_file.display()),
        }
    } else {
        let who = tracecast_client::MailboxClient::new(&mailbox, &token)?
            .whoami()
            .await
            .with_context(|| format!("asking {mailbox} who the gateway is"))?
            .context("the gateway's token is an administrator's, not a gateway's")?;
        match who.as_str().strip_prefix("gateway:") {
            Some(n) => n.to_owned(),
            None => bail!(
                "the token in {} is not a gateway's ({who})",
                token_file.display()
            ),
        }
    };
    let composer: Arc<dyn Composer> = match &g.to {
        Some(to) => Arc::new(PresetComposer {
            to: Some(to.clone()),
            text: g.text.clone(),
        }),
        None => Arc::new(TerminalComposer),
    };
    let gateway = Gateway::new(
        GatewayConfig {
            name: name.clone(),
            service_url: service,
            mailbox_url: mailbox,
            token,
            attachment_limit: g.attachment_limit,
            max_content_bytes: g.max_content,
            policy: g.policy.clone(),
            state_dir: s.data.join("gateway"),
            link_valid_for: g.link_valid_for,
        },
        composer,
    )?;
    Ok((gateway, name))
}

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
                    .set_account_status(&account, "suspended")
                    .await?;
                eprintln!("{account}: the service is off");
            }
            ServiceCommand::Account(ServiceAccountCommand::Activate { account, conn }) => {
                ServiceClient::new(&conn.server, &conn.token()?)?
                    .set_account_status(&account, "active")
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
            tracecast_server::auth::write_secret(path, &format!("{code}\n"))
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
                tracecast_server::auth::write_secret(
                    &state,
                    &serde_json::to_string_pretty(&saved)?,
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
                    media_type.unwrap_or_else(|| crate::inbox::guess_media_type(&file).to_owned());
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

/// A free name in `dir` for `name`: `name`, else `stem-1.ext`, …
fn free_name(dir: &Path, name: &str) -> PathBuf {
    let first = dir.join(name);
    if !first.exists() {
        return first;
    }
    let (stem, ext) = match name.rsplit_once('.') {
        Some((s, e)) if !s.is_empty() => (s.to_owned(), format!(".{e}")),
        _ => (name.to_owned(), String::new()),
    };
    (1..)
        .map(|i| dir.join(format!("{stem}-{i}{ext}")))
        .find(|p| !p.exists())
        .expect("some name is free")
}

/// An unfinished download of `path` (to resume rather than rename).
fn part_exists(path: &Path) -> bool {
    tracecast_client::part_path(path).exists()
}

/// Saves what a shared message carries into `out`: `ID.txt` with who sent
/// it and the text, each attachment, and the file behind each link
/// (resuming an unfinished one). Returns what it wrote; a message that is
/// not a shared one is an error.
pub async fn save_shared(
    id: &str,
    body: &[u8],
    sender: Option<&str>,
    links: &LinkPolicy,
    out: &Path,
    quiet: bool,
) -> anyhow::Result<Vec<PathBuf>> {
    let shared = message::parse(body)?;
    std::fs::create_dir_all(out).with_context(|| format!("creating {}", out.display()))?;
    let mut written = Vec::new();
    let text_path = out.join(format!("{id}.txt"));
    // The sender is the mailbox's word; the message's own headers are
    // only a claim.
    let from = match message::verified_gateway(&shared, sender) {
        Some(gateway) => format!("{gateway} (gateway), device {}", shared.device),
        None => format!(
            "{} (the message claims gateway {:?}, device {:?}: not verified)",
            sender.unwrap_or("an unknown sender"),
            shared.gateway,
            shared.device
        ),
    };
    let mut summary = format!(
        "From: {from}\nSubject: {}\n\n{}\n",
        shared.subject, shared.text
    );
    for a in &shared.attachments {
        let path = free_name(out, &a.filename);
        std::fs::write(&path, &a.bytes).with_context(|| format!("writing {}", path.display()))?;
        summary.push_str(&format!("\nattachment: {}\n", path.display()));
        written.push(path);
    }
    for link in &shared.links {
        let verdict = if links.follow_any {
            message::LinkVerdict::Fetch
        } else {
            message::judge_link(link, &shared, sender, &links.trusted)
        };
        if let message::LinkVerdict::ShowOnly(why) = verdict {
            if !quiet {
                eprintln!(
                    "message {id}: not fetching {} ({why}); fetch it yourself if you trust it, or pass --follow-any-link",
                    link.url
                );
            }
            summary.push_str(&format!("\nlink (not fetched: {why}): {}\n", link.url));
            continue;
        }
        // Resume into the same name when a .part is waiting.
        let first = out.join(&link.filename);
        let path = if part_exists(&first) {
            first
        } else {
            free_name(out, &link.filename)
        };
        let bar = byte_bar(quiet, "download");
        let got = download_link(&link.url, &path, &|done, total| {
            bar.set_length(total);
            bar.set_position(done);
        })
        .await
        .with_context(|| format!("downloading {}", link.url))?;
        bar.finish_and_clear();
        summary.push_str(&format!(
            "\nlink: {}\n  saved {} bytes to {}\n",
            link.url,
            got,
            path.display()
        ));
        written.push(path);
    }
    std::fs::write(&text_path, summary)
        .with_context(|| format!("writing {}", text_path.display()))?;
    written.insert(0, text_path);
    Ok(written)
}

/// Which download links in shared messages are fetched unasked.
#[derive(Debug, Clone, Default)]
pub struct LinkPolicy {
    /// Base URLs of service servers whose file links are fetched when a
    /// gateway sent them.
    pub trusted: Vec<String>,
    /// Fetch every link (the user asked for it).
    pub follow_any: bool,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn saved_files_never_overwrite() {
        let dir = tempfile::tempdir().unwrap();
        assert_eq!(free_name(dir.path(), "a.jpg"), dir.path().join("a.jpg"));
        std::fs::write(dir.path().join("a.jpg"), b"x").unwrap();
        assert_eq!(free_name(dir.path(), "a.jpg"), dir.path().join("a-1.jpg"));
        std::fs::write(dir.path().join("a-1.jpg"), b"x").unwrap();
        assert_eq!(free_name(dir.path(), "a.jpg"), dir.path().join("a-2.jpg"));
        assert_eq!(free_name(dir.path(), "noext"), dir.path().join("noext"));
    }
}
