//! Saving what a shared message (DESIGN.md "000") carries: who sent it
//! (the mailbox's word, not the message's), its text, its attachments, and
//! the files behind its links when the reader's policy trusts them.

use std::path::{Path, PathBuf};

use tracecast_share::message::{self, MessageError};

use crate::{download_link, part_path, ClientError, Narrator};

/// Why a shared message could not be saved.
#[derive(Debug, thiserror::Error)]
pub enum SaveError {
    #[error("not a shared message: {0}")]
    NotShared(#[from] MessageError),
    #[error("writing {path}: {source}")]
    Local {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("downloading {url}: {source}")]
    Link { url: String, source: ClientError },
}

fn local(path: &Path) -> impl FnOnce(std::io::Error) -> SaveError + '_ {
    move |source| SaveError::Local {
        path: path.to_owned(),
        source,
    }
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
    part_path(path).exists()
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
    tell: &dyn Narrator,
) -> Result<Vec<PathBuf>, SaveError> {
    let shared = message::parse(body)?;
    std::fs::create_dir_all(out).map_err(local(out))?;
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
        std::fs::write(&path, &a.bytes).map_err(local(&path))?;
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
            tell.say(format!(
                "message {id}: not fetching {} ({why}); fetch it yourself if you trust it, or pass --follow-any-link",
                link.url
            ));
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
        let got = download_link(&link.url, &path, &|done, total| {
            tell.bytes("download", done, total)
        })
        .await;
        tell.transfer_ended();
        let got = got.map_err(|source| SaveError::Link {
            url: link.url.clone(),
            source,
        })?;
        summary.push_str(&format!(
            "\nlink: {}\n  saved {} bytes to {}\n",
            link.url,
            got,
            path.display()
        ));
        written.push(path);
    }
    std::fs::write(&text_path, summary).map_err(local(&text_path))?;
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
