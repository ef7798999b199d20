//! The client's durable store of fetched mail: a directory a person can
//! look into. Each message is two files, `<id>.msg` (the body) and
//! `<id>.json` (what the protocol said about it, and whether it was read or
//! protected). The JSON is written last, each file through a temporary name,
//! fsync and rename, then the directory is synced: a message exists once its
//! JSON does, and a crash at any point leaves either nothing or all of it.

use std::collections::BTreeMap;
use std::fs;
use std::io::Write;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};
use tracecast_mailbox::{LocalMessage, MessageId};

use crate::Message;

#[derive(Debug, thiserror::Error)]
pub enum InboxError {
    #[error("{path}: {source}")]
    Io {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("{path}: not an inbox entry: {reason}")]
    Corrupt { path: PathBuf, reason: String },
    #[error("message {0} is not in this inbox")]
    Unknown(MessageId),
}

fn io(path: &Path) -> impl FnOnce(std::io::Error) -> InboxError + '_ {
    move |source| InboxError::Io {
        path: path.to_owned(),
        source,
    }
}

/// What the inbox keeps about one message.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct LocalEntry {
    pub id: MessageId,
    pub media_type: String,
    pub length: u64,
    /// When the server accepted it (IMF-fixdate).
    pub date: String,
    pub protected: bool,
    pub read: bool,
    /// Who posted it, as the mailbox authenticated them (`user:bob`,
    /// `gateway:kenji-phone`, `origin`); absent for mail fetched before
    /// servers said.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub sender: Option<String>,
}

impl LocalEntry {
    pub fn as_local(&self) -> LocalMessage {
        LocalMessage {
            id: self.id,
            length: self.length,
            read: self.read,
            protected: self.protected,
        }
    }
}

/// A directory of fetched messages.
pub struct Inbox {
    dir: PathBuf,
    entries: BTreeMap<MessageId, LocalEntry>,
}

impl Inbox {
    /// Opens (creating) an inbox and tidies what a crash may have left: a
    /// body without its JSON, temporary files.
    pub fn open(dir: &Path) -> Result<Self, InboxError> {
        fs::create_dir_all(dir).map_err(io(dir))?;
        let mut entries = BTreeMap::new();
        let mut bodies = Vec::new();
        for item in fs::read_dir(dir).map_err(io(dir))? {
            let path = item.map_err(io(dir))?.path();
            let name = path.file_name().and_then(|n| n.to_str()).unwrap_or("");
            if name.ends_with(".tmp") {
                fs::remove_file(&path).map_err(io(&path))?;
            } else if let Some(stem) = name.strip_suffix(".json") {
                if stem.parse::<MessageId>().is_err() {
                    continue;
                }
                let text = fs::read(&path).map_err(io(&path))?;
                let entry: LocalEntry =
                    serde_json::from_slice(&text).map_err(|e| InboxError::Corrupt {
                        path: path.clone(),
                        reason: e.to_string(),
                    })?;
                entries.insert(entry.id, entry);
            } else if let Some(stem) = name.strip_suffix(".msg") {
                if let Ok(id) = stem.parse::<MessageId>() {
                    bodies.push((id, path));
                }
            }
        }
        for (id, path) in bodies {
            if !entries.contains_key(&id) {
                fs::remove_file(&path).map_err(io(&path))?;
            }
        }
        Ok(Self {
            dir: dir.to_owned(),
            entries,
        })
    }

    pub fn dir(&self) -> &Path {
        &self.dir
    }

    pub fn entries(&self) -> impl Iterator<Item = &LocalEntry> {
        self.entries.values()
    }

    pub fn local_messages(&self) -> Vec<LocalMessage> {
        self.entries.values().map(LocalEntry::as_local).collect()
    }

    pub fn get(&self, id: MessageId) -> Option<&LocalEntry> {
        self.entries.get(&id)
    }

    pub fn contains(&self, id: MessageId) -> bool {
        self.entries.contains_key(&id)
    }

    pub fn len(&self) -> usize {
        self.entries.len()
    }

    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }

    pub fn bytes(&self) -> u64 {
        self.entries.values().map(|e| e.length).sum()
    }

    pub fn body_path(&self, id: MessageId) -> PathBuf {
        self.dir.join(format!("{id}.msg"))
    }

    fn meta_path(&self, id: MessageId) -> PathBuf {
        self.dir.join(format!("{id}.json"))
    }

    /// Stores a message durably. Returns false (and writes nothing) when it
    /// is already here: the server sent it again because the
    /// acknowledgement did not arrive.
    pub fn store(&mut self, m: &Message) -> Result<bool, InboxError> {
        if self.contains(m.id) {
            return Ok(false);
        }
        let entry = LocalEntry {
            id: m.id,
            media_type: m.media_type.clone(),
            length: m.body.len() as u64,
            date: m.date.clone(),
            protected: m.protected,
            read: false,
            sender: m.sender.as_ref().map(|s| s.to_string()),
        };
        write_durably(&self.body_path(m.id), &m.body)?;
        self.write_meta(&entry)?;
        self.entries.insert(entry.id, entry);
        Ok(true)
    }

    fn write_meta(&self, entry: &LocalEntry) -> Result<(), InboxError> {
        let json = serde_json::to_vec_pretty(entry).expect("entries serialise");
        write_durably(&self.meta_path(entry.id), &json)?;
        sync_dir(&self.dir)
    }

    /// Appends a line to `receipts.log`: every message received, `stored`
    /// or `again` (already here: its acknowledgement had not arrived). An
    /// audit trail, not needed for correctness, so not synced.
    pub fn log_receipt(&self, id: MessageId, stored: bool) -> Result<(), InboxError> {
        let path = self.dir.join("receipts.log");
        let mut f = fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(&path)
            .map_err(io(&path))?;
        let word = if stored { "stored" } else { "again" };
        writeln!(f, "{id} {word}").map_err(io(&path))
    }

    /// The body of a stored message; marks it read.
    pub fn read(&mut self, id: MessageId) -> Result<Vec<u8>, InboxError> {
        let path = self.body_path(id);
        let mut entry = self
            .entries
            .get(&id)
            .cloned()
            .ok_or(InboxError::Unknown(id))?;
        let body = fs::read(&path).map_err(io(&path))?;
        if !entry.read {
            entry.read = true;
            self.write_meta(&entry)?;
            self.entries.insert(id, entry);
        }
        Ok(body)
    }

    /// Protects a message from overwrite, or lifts the protection.
    pub fn set_protected(&mut self, id: MessageId, protected: bool) -> Result<(), InboxError> {
        let mut entry = self
            .entries
            .get(&id)
            .cloned()
            .ok_or(InboxError::Unknown(id))?;
        entry.protected = protected;
        self.write_meta(&entry)?;
        self.entries.insert(id, entry);
        Ok(())
    }

    /// Removes a message (JSON first, so a crash leaves no half entry).
    pub fn remove(&mut self, id: MessageId) -> Result<(), InboxError> {
        if self.entries.remove(&id).is_none() {
            return Err(InboxError::Unknown(id));
        }
        let meta = self.meta_path(id);
        fs::remove_file(&meta).map_err(io(&meta))?;
        let body = self.body_path(id);
        match fs::remove_file(&body) {
            Ok(()) => {}
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
            Err(e) => return Err(io(&body)(e)),
        }
        sync_dir(&self.dir)
    }
}

fn write_durably(path: &Path, bytes: &[u8]) -> Result<(), InboxError> {
    let tmp = path.with_extension(format!(
        "{}.tmp",
        path.extension().and_then(|e| e.to_str()).unwrap_or("")
    ));
    let mut f = fs::File::create(&tmp).map_err(io(&tmp))?;
    f.write_all(bytes).map_err(io(&tmp))?;
    f.sync_all().map_err(io(&tmp))?;
    drop(f);
    fs::rename(&tmp, path).map_err(io(path))
}

fn sync_dir(dir: &Path) -> Result<(), InboxError> {
    #[cfg(unix)]
    fs::File::open(dir)
        .and_then(|d| d.sync_all())
        .map_err(io(dir))?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn msg(id: i64, body: &str) -> Message {
        Message {
            id: MessageId::new(id).unwrap(),
            media_type: "text/plain".into(),
            body: body.as_bytes().to_vec().into(),
            date: "Sun, 22 Nov 2026 00:00:00 GMT".into(),
            protected: false,
            sender: None,
        }
    }

    #[test]
    fn stores_once_reads_and_survives_reopening() {
        let dir = tempfile::tempdir().unwrap();
        let mut inbox = Inbox::open(dir.path()).unwrap();
        assert!(inbox.store(&msg(3, "hello")).unwrap());
        assert!(!inbox.store(&msg(3, "hello")).unwrap());
        assert_eq!(inbox.read(MessageId::new(3).unwrap()).unwrap(), b"hello");
        inbox
            .set_protected(MessageId::new(3).unwrap(), true)
            .unwrap();
        let again = Inbox::open(dir.path()).unwrap();
        let e = again.get(MessageId::new(3).unwrap()).unwrap();
        assert!(e.read && e.protected && e.length == 5);
    }

    #[test]
    fn a_crash_mid_store_leaves_nothing_half_written() {
        let dir = tempfile::tempdir().unwrap();
        // A body without its JSON, and a temporary file: what a kill leaves.
        fs::write(dir.path().join("9.msg"), b"partial").unwrap();
        fs::write(dir.path().join("10.msg.tmp"), b"x").unwrap();
        let inbox = Inbox::open(dir.path()).unwrap();
        assert!(inbox.is_empty());
        assert!(!dir.path().join("9.msg").exists());
        assert!(!dir.path().join("10.msg.tmp").exists());
    }

    #[test]
    fn a_corrupt_entry_is_reported_not_ignored() {
        let dir = tempfile::tempdir().unwrap();
        fs::write(dir.path().join("4.json"), b"{not json").unwrap();
        assert!(matches!(
            Inbox::open(dir.path()),
            Err(InboxError::Corrupt { .. })
        ));
    }
}
