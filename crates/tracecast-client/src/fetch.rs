//! `tracecast inbox fetch` as a library call: drain a box into the local
//! inbox (riding out a server that stays away, when watching), then save
//! what devices shared (attachments and download links) beside it.

use std::path::{Path, PathBuf};
use std::time::Duration;

use tracecast_mailbox::{BoxName, MessageId};

use crate::{drain, ClientError, DrainOptions, DrainReport, Inbox, InboxError, LinkPolicy};
use crate::{MailboxClient, Narrator, SaveError};

/// How to fetch.
#[derive(Debug, Clone)]
pub struct FetchOptions<'a> {
    pub drain: DrainOptions,
    /// Keep fetching through a server that stays unreachable longer than
    /// the drain's retry window (with `drain.watch`): nothing is lost, the
    /// next fetch repeats.
    pub ride_out_outages: bool,
    /// Save shared messages into this directory, following links by this
    /// policy.
    pub save: Option<(&'a Path, &'a LinkPolicy)>,
}

/// What a fetch did.
#[derive(Debug, Default)]
pub struct FetchReport {
    pub drain: DrainReport,
    /// Files written from shared messages.
    pub saved: Vec<PathBuf>,
}

/// Why a fetch stopped.
#[derive(Debug, thiserror::Error)]
pub enum FetchError {
    #[error(transparent)]
    Mailbox(#[from] ClientError),
    #[error(transparent)]
    Inbox(#[from] InboxError),
    #[error("saving message {id}: {source}")]
    Save { id: MessageId, source: SaveError },
}

/// Fetches box `own`'s mail into `inbox`, then saves the shared messages
/// among it when asked.
pub async fn fetch_into_inbox(
    client: &MailboxClient,
    own: &BoxName,
    inbox: &mut Inbox,
    options: &FetchOptions<'_>,
    say: &dyn Narrator,
) -> Result<FetchReport, FetchError> {
    let mut shared: Vec<MessageId> = Vec::new();
    let report = loop {
        let result = drain(client, own, inbox, &options.drain, |m| {
            if m.media_type
                .starts_with(tracecast_share::message::MESSAGE_MEDIA_TYPE)
            {
                shared.push(m.id);
            }
            say.say(format!(
                "stored message {} ({}, {} bytes)",
                m.id,
                m.media_type,
                m.body.len()
            ));
        })
        .await;
        match result {
            Ok(report) => break report,
            Err(e) if options.ride_out_outages && e.is_transient() => {
                tracing::debug!(error = %e, "mailbox unreachable; trying again");
                tokio::time::sleep(Duration::from_secs(1)).await;
            }
            Err(e) => return Err(e.into()),
        }
    };
    let mut saved = Vec::new();
    if let Some((out, policy)) = options.save {
        for id in shared {
            let sender = inbox.get(id).and_then(|e| e.sender.clone());
            let body = inbox.read(id)?;
            match crate::save_shared(&id.to_string(), &body, sender.as_deref(), policy, out, say)
                .await
            {
                Ok(written) => saved.extend(written),
                // Other mail of that media type: kept in the inbox, nothing
                // to save.
                Err(e @ SaveError::NotShared(_)) => {
                    tracing::debug!(error = %e, "not a shared message");
                }
                Err(source) => return Err(FetchError::Save { id, source }),
            }
        }
    }
    Ok(FetchReport {
        drain: report,
        saved,
    })
}
