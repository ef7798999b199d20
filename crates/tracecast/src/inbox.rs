//! `tracecast mailbox ...` and `tracecast inbox ...`: the mailbox from the
//! command line.

use std::io::{Read, Write};
use std::path::Path;
use std::process::ExitCode;
use std::time::Duration;

use anyhow::{bail, Context};
use tracecast_client::fetch::{fetch_into_inbox, FetchOptions};
use tracecast_client::{DrainOptions, Inbox, MailboxClient, PostOptions};
use tracecast_mailbox::{BoxName, MessageId, Room};

use crate::cli::{Connection, FetchArgs, InboxCommand, MailboxCommand};
use crate::terminal::Terminal;

fn client(conn: &Connection) -> anyhow::Result<MailboxClient> {
    Ok(MailboxClient::new(&conn.server, &conn.token()?)?)
}

pub fn mailbox(cmd: MailboxCommand, _quiet: bool) -> anyhow::Result<ExitCode> {
    crate::terminal::runtime()?.block_on(async {
        match cmd {
            MailboxCommand::CreateBox {
                name,
                webhook,
                token_out,
                conn,
            } => {
                let name: BoxName = name.parse()?;
                let created = client(&conn)?.create_box(&name, webhook.as_deref()).await?;
                let what = format!("created box {}; its token", created.name);
                crate::terminal::hand_over(&created.token, token_out.as_deref(), &what)?;
                if let Some(secret) = created.webhook_secret {
                    eprintln!("webhook secret (verifies Tracecast-Signature): {secret}");
                }
            }
            MailboxCommand::Send {
                to,
                media_type,
                protect,
                ttl,
                key,
                file,
                conn,
            } => {
                let to: BoxName = to.parse()?;
                let body = if file == Path::new("-") {
                    let mut buf = Vec::new();
                    std::io::stdin().read_to_end(&mut buf)?;
                    buf
                } else {
                    std::fs::read(&file).with_context(|| format!("reading {}", file.display()))?
                };
                let media_type = media_type.unwrap_or_else(|| {
                    tracecast_share::message::guess_media_type(&file).to_owned()
                });
                let options = PostOptions {
                    protect,
                    ttl,
                    idempotency_key: key,
                };
                let posted = client(&conn)?
                    .post(&to, &media_type, body, &options)
                    .await?;
                let note = if posted.duplicate {
                    " (already sent with this key)"
                } else {
                    ""
                };
                println!(
                    "message {} to {to}, accepted {}{note}",
                    posted.id, posted.date
                );
            }
            MailboxCommand::Status { conn } => {
                let client = client(&conn)?;
                let Some(own) = client.whoami().await? else {
                    bail!("this is an administrator token; status needs a box's token");
                };
                println!(
                    "{}",
                    serde_json::to_string_pretty(&client.status(&own).await?)?
                );
            }
        }
        Ok(ExitCode::SUCCESS)
    })
}

pub fn inbox(cmd: InboxCommand, quiet: bool) -> anyhow::Result<ExitCode> {
    match cmd {
        InboxCommand::Fetch(args) => crate::terminal::runtime()?.block_on(fetch(args, quiet)),
        InboxCommand::List { dir, json } => {
            let inbox = Inbox::open(&dir)?;
            let mut out = std::io::stdout().lock();
            if !json {
                writeln!(
                    out,
                    "{:>10}  {:<29}  {:>9}  {:<5}  type",
                    "id", "date", "bytes", "flags"
                )?;
            }
            for e in inbox.entries() {
                if json {
                    writeln!(out, "{}", serde_json::to_string(e)?)?;
                } else {
                    let flags = format!(
                        "{}{}",
                        if e.read { "R" } else { "-" },
                        if e.protected { "P" } else { "-" }
                    );
                    writeln!(
                        out,
                        "{:>10}  {:<29}  {:>9}  {:<5}  {}",
                        e.id, e.date, e.length, flags, e.media_type
                    )?;
                }
            }
            if !json && !quiet {
                eprintln!(
                    "{} messages, {} bytes (R read, P protected)",
                    inbox.len(),
                    inbox.bytes()
                );
            }
            Ok(ExitCode::SUCCESS)
        }
        InboxCommand::Read { dir, id, out } => {
            let id: MessageId = id.parse()?;
            let mut inbox = Inbox::open(&dir)?;
            let media_type = inbox
                .get(id)
                .map(|e| e.media_type.clone())
                .with_context(|| format!("message {id} is not in {}", dir.display()))?;
            match out {
                Some(path) => {
                    let body = inbox.read(id)?;
                    std::fs::write(&path, body)
                        .with_context(|| format!("writing {}", path.display()))?;
                }
                None if media_type.starts_with("text/") || media_type.contains("json") => {
                    let body = inbox.read(id)?;
                    std::io::stdout().write_all(&body)?;
                }
                None => bail!("message {id} is {media_type}; write it to a file with --out FILE"),
            }
            Ok(ExitCode::SUCCESS)
        }
        InboxCommand::Save {
            dir,
            id,
            out,
            server,
            links,
        } => {
            let id: MessageId = id.parse()?;
            let mut inbox = Inbox::open(&dir)?;
            let Some(sender) = inbox.get(id).map(|e| e.sender.clone()) else {
                bail!("message {id} is not in {}", dir.display());
            };
            let body = inbox.read(id)?;
            let written = crate::terminal::runtime()?.block_on(tracecast_client::save_shared(
                &id.to_string(),
                &body,
                sender.as_deref(),
                &links.policy(&server),
                &out,
                &Terminal::new(quiet),
            ))?;
            for p in written {
                println!("{}", p.display());
            }
            Ok(ExitCode::SUCCESS)
        }
        InboxCommand::Protect { dir, id, off } => {
            let id: MessageId = id.parse()?;
            Inbox::open(&dir)?.set_protected(id, !off)?;
            Ok(ExitCode::SUCCESS)
        }
    }
}

async fn fetch(args: FetchArgs, quiet: bool) -> anyhow::Result<ExitCode> {
    let client = client(&args.conn)?;
    let own = client
        .whoami()
        .await
        .context("asking the mailbox who this token belongs to")?
        .context("this is an administrator token; fetching needs a box's token")?;
    let mut inbox = Inbox::open(&args.dir)?;
    let policy = args.links.policy(&args.conn.server);
    let options = FetchOptions {
        drain: DrainOptions {
            room: Room {
                max_bytes: args.max_bytes,
                max_count: args.max_count,
            },
            then: args.then,
            retry_for: Duration::from_secs(args.retry_for),
            max_messages: None,
            // Watching holds a waiting fetch that also carries the last
            // acknowledgement, so mail arrives in one round trip.
            watch: args.watch.then_some(Duration::from_secs(30)),
        },
        ride_out_outages: args.watch,
        save: args.save.as_deref().map(|out| (out, &policy)),
    };
    let report =
        fetch_into_inbox(&client, &own, &mut inbox, &options, &Terminal::new(quiet)).await?;
    for p in &report.saved {
        println!("{}", p.display());
    }
    let total = report.drain;
    if total.full && !quiet {
        eprintln!(
            "inbox full ({} messages, {} bytes): the rest waits on the server; read or remove messages, then fetch again",
            inbox.len(),
            inbox.bytes()
        );
    }
    if args.json {
        println!("{}", serde_json::to_string(&total)?);
    } else if !quiet {
        eprintln!(
            "{} stored, {} already here, {} overwritten; inbox {} holds {} messages",
            total.stored,
            total.duplicates,
            total.overwritten,
            args.dir.display(),
            inbox.len()
        );
    }
    Ok(if total.full {
        ExitCode::from(3)
    } else {
        ExitCode::SUCCESS
    })
}
