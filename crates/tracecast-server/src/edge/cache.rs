//! The edge's pull-through cache of renditions: files named by content,
//! tier and SHA-256 in one directory, bounded in bytes, evicting the least
//! recently used. A rendition enters only after its hash matched the one
//! the origin recorded at ingest, and is written beside its final name and
//! renamed, so a crash never leaves a half file that looks whole.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};

use bytes::Bytes;
use tracecast_delivery::api::Holding;
use tracecast_delivery::evict::{victims, Cached};
use tracecast_delivery::Tier;

#[derive(Debug, Clone)]
struct Entry {
    file: PathBuf,
    bytes: u64,
    last_used: u64,
}

#[derive(Default)]
struct Inner {
    entries: HashMap<Holding, Entry>,
    clock: u64,
}

/// Why a rendition could not be had.
#[derive(Debug, thiserror::Error)]
pub enum CacheError {
    #[error("fetching from the origin: {0}")]
    Origin(#[from] tracecast_client::ClientError),
    #[error("the cache directory: {0}")]
    Io(#[from] std::io::Error),
    #[error("a {0}-byte rendition does not fit in a {1}-byte cache")]
    TooBig(u64, u64),
}

pub struct Cache {
    dir: PathBuf,
    capacity: u64,
    inner: Mutex<Inner>,
    /// One pull per rendition at a time; others wait for it.
    pulls: tokio::sync::Mutex<HashMap<Holding, Arc<tokio::sync::Mutex<()>>>>,
}

fn file_name(h: &Holding, sha256: &str) -> String {
    format!("{}-{}-{sha256}", h.content, h.tier)
}

fn parse_name(name: &str) -> Option<Holding> {
    let mut parts = name.splitn(3, '-');
    let content = parts.next()?.parse().ok()?;
    let tier: Tier = parts.next()?.parse().ok()?;
    let sha = parts.next()?;
    (sha.len() == 64 && sha.bytes().all(|b| b.is_ascii_hexdigit()))
        .then_some(Holding { content, tier })
}

impl Cache {
    /// Opens the cache directory, taking in what an earlier run left (and
    /// removing unfinished files).
    pub fn open(dir: &Path, capacity: u64) -> std::io::Result<Self> {
        std::fs::create_dir_all(dir)?;
        let mut inner = Inner::default();
        for entry in std::fs::read_dir(dir)? {
            let entry = entry?;
            let name = entry.file_name().to_string_lossy().into_owned();
            match parse_name(&name) {
                Some(h) => {
                    let bytes = entry.metadata()?.len();
                    inner.clock += 1;
                    inner.entries.insert(
                        h,
                        Entry {
                            file: entry.path(),
                            bytes,
                            last_used: inner.clock,
                        },
                    );
                }
                None => {
                    let _ = std::fs::remove_file(entry.path());
                }
            }
        }
        Ok(Self {
            dir: dir.to_owned(),
            capacity,
            inner: Mutex::new(inner),
            pulls: Default::default(),
        })
    }

    /// What the cache holds now.
    pub fn holdings(&self) -> Vec<Holding> {
        let inner = self.inner.lock().expect("cache lock");
        let mut v: Vec<Holding> = inner.entries.keys().copied().collect();
        v.sort_by_key(|h| (h.content, h.tier));
        v
    }

    pub fn used_bytes(&self) -> u64 {
        self.inner
            .lock()
            .expect("cache lock")
            .entries
            .values()
            .map(|e| e.bytes)
            .sum()
    }

    /// The file holding `h`, if cached (marks it used).
    pub fn lookup(&self, h: &Holding) -> Option<PathBuf> {
        let mut inner = self.inner.lock().expect("cache lock");
        inner.clock += 1;
        let now = inner.clock;
        inner.entries.get_mut(h).map(|e| {
            e.last_used = now;
            e.file.clone()
        })
    }

    /// The rendition's bytes: from the cache, else pulled from the origin
    /// with `pull` (which checks the hash), stored, and older renditions
    /// evicted to make room. Returns whether it was a hit.
    pub async fn get<F, Fut>(
        &self,
        h: Holding,
        sha256: &str,
        pull: F,
    ) -> Result<(Bytes, bool), CacheError>
    where
        F: FnOnce() -> Fut,
        Fut: std::future::Future<Output = Result<Bytes, tracecast_client::ClientError>>,
    {
        use tokio::io::AsyncReadExt;
        let (file, hit) = self.get_file(h, sha256, pull).await?;
        let mut bytes = Vec::new();
        tokio::fs::File::from_std(file)
            .read_to_end(&mut bytes)
            .await?;
        Ok((Bytes::from(bytes), hit))
    }

    /// As [`Cache::get`], but the cached file opened for reading instead
    /// of its bytes: a reader that streams it never holds the rendition in
    /// memory (after a pull, the pulled bytes are dropped once written),
    /// and an eviction after the open does not take the file from under
    /// it.
    pub async fn get_file<F, Fut>(
        &self,
        h: Holding,
        sha256: &str,
        pull: F,
    ) -> Result<(std::fs::File, bool), CacheError>
    where
        F: FnOnce() -> Fut,
        Fut: std::future::Future<Output = Result<Bytes, tracecast_client::ClientError>>,
    {
        let open = |file: PathBuf| async move {
            Some(tokio::fs::File::open(&file).await.ok()?.into_std().await)
        };
        if let Some(file) = self.lookup(&h) {
            if let Some(f) = open(file).await {
                return Ok((f, true));
            }
            // The file vanished under us: forget it and pull again.
            self.inner.lock().expect("cache lock").entries.remove(&h);
        }
        let gate = {
            let mut pulls = self.pulls.lock().await;
            pulls.entry(h).or_default().clone()
        };
        let _pulling = gate.lock().await;
        if let Some(file) = self.lookup(&h) {
            if let Some(f) = open(file).await {
                return Ok((f, true));
            }
        }
        let bytes = pull().await?;
        let file = self.admit(h, sha256, &bytes).await?;
        drop(bytes);
        Ok((tokio::fs::File::open(&file).await?.into_std().await, false))
    }

    async fn admit(&self, h: Holding, sha256: &str, bytes: &Bytes) -> Result<PathBuf, CacheError> {
        let len = bytes.len() as u64;
        let evict: Vec<(Holding, PathBuf)> = {
            let inner = self.inner.lock().expect("cache lock");
            let items: Vec<Cached<Holding>> = inner
                .entries
                .iter()
                .map(|(k, e)| Cached {
                    key: *k,
                    bytes: e.bytes,
                    last_used: e.last_used,
                    pinned: false,
                })
                .collect();
            let keys = victims(&items, self.capacity, len)
                .map_err(|_| CacheError::TooBig(len, self.capacity))?;
            keys.into_iter()
                .filter_map(|k| inner.entries.get(&k).map(|e| (k, e.file.clone())))
                .collect()
        };
        for (k, file) in evict {
            self.inner.lock().expect("cache lock").entries.remove(&k);
            let _ = tokio::fs::remove_file(&file).await;
            tracing::info!(content = k.content, tier = %k.tier, "evicted from the edge cache");
        }
        let file = self.dir.join(file_name(&h, sha256));
        let tmp = self.dir.join(format!(".{}.partial", file_name(&h, sha256)));
        write_durable(&tmp, bytes).await?;
        tokio::fs::rename(&tmp, &file).await?;
        let mut inner = self.inner.lock().expect("cache lock");
        inner.clock += 1;
        let now = inner.clock;
        inner.entries.insert(
            h,
            Entry {
                file: file.clone(),
                bytes: len,
                last_used: now,
            },
        );
        Ok(file)
    }
}

/// Writes a file and flushes it to disk.
pub async fn write_durable(path: &Path, bytes: &[u8]) -> std::io::Result<()> {
    use tokio::io::AsyncWriteExt;
    let mut f = tokio::fs::File::create(path).await?;
    f.write_all(bytes).await?;
    f.sync_all().await
}

#[cfg(test)]
mod tests {
    use super::*;

    fn h(content: i64) -> Holding {
        Holding {
            content,
            tier: Tier::High,
        }
    }

    #[tokio::test]
    async fn pulls_once_evicts_the_least_recently_used_and_survives_a_restart() {
        let dir = tempfile::tempdir().unwrap();
        let cache = Cache::open(dir.path(), 250).unwrap();
        let sha = |n: u8| format!("{:064x}", n);
        for n in 1..=2 {
            let (_, hit) = cache
                .get(h(n), &sha(n as u8), || async {
                    Ok(Bytes::from(vec![n as u8; 100]))
                })
                .await
                .unwrap();
            assert!(!hit);
        }
        // A hit does not pull.
        let (b, hit) = cache
            .get(h(1), &sha(1), || async { panic!("must not pull") })
            .await
            .unwrap();
        assert!(hit && b.len() == 100);
        // A third evicts content 2, now the least recently used.
        cache
            .get(h(3), &sha(3), || async { Ok(Bytes::from(vec![3; 100])) })
            .await
            .unwrap();
        assert_eq!(cache.holdings(), vec![h(1), h(3)]);
        assert!(cache.used_bytes() <= 250);
        let too_big = cache
            .get(h(4), &sha(4), || async { Ok(Bytes::from(vec![4; 300])) })
            .await;
        assert!(matches!(too_big, Err(CacheError::TooBig(300, 250))));
        assert_eq!(cache.holdings(), vec![h(1), h(3)]);
        // Unfinished files are dropped on reopen; finished ones kept.
        std::fs::write(dir.path().join(".junk.partial"), b"x").unwrap();
        let again = Cache::open(dir.path(), 250).unwrap();
        assert_eq!(again.holdings(), vec![h(1), h(3)]);
        assert!(!dir.path().join(".junk.partial").exists());
    }
}
