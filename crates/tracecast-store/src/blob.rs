//! The blob store: renditions and other large bytes, through the
//! `object_store` crate, so one interface covers a local directory (the
//! embedded default) and any S3-compatible service (production).
//!
//! Keys are content addresses (`renditions/<sha256>`), so a blob is never
//! rewritten in place and a half-written upload can never be mistaken for a
//! good one: the metadata store names a blob only after `put` returned.

use std::ops::Range;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use bytes::Bytes;
use futures::stream::BoxStream;
use futures::StreamExt;
use object_store::aws::AmazonS3Builder;
use object_store::local::LocalFileSystem;
use object_store::path::Path as Key;
use object_store::{GetOptions, GetRange, ObjectStore, PutPayload, WriteMultipart};

/// Errors of the blob store.
#[derive(Debug, thiserror::Error)]
pub enum BlobError {
    #[error("no blob {0:?} in the object store")]
    NotFound(String),
    #[error("object store {0}: {1}")]
    Backend(String, object_store::Error),
    #[error("object store settings: {0}")]
    Config(String),
}

/// Where S3-compatible blobs live. Credentials come from files the
/// operator provides (secrets, read at start) or the usual environment
/// (`AWS_ACCESS_KEY_ID`, `AWS_SECRET_ACCESS_KEY`); never from files the
/// server writes.
#[derive(Debug, Clone, Default, serde::Deserialize)]
#[serde(deny_unknown_fields)]
pub struct S3Settings {
    pub bucket: String,
    /// e.g. `http://127.0.0.1:9000` for a local S3-compatible server.
    pub endpoint: Option<String>,
    pub region: Option<String>,
    /// Let the endpoint be plain HTTP (loopback and tests).
    #[serde(default)]
    pub allow_http: bool,
    /// A file holding the access key id.
    pub access_key_id_file: Option<PathBuf>,
    /// A file holding the secret access key.
    pub secret_access_key_file: Option<PathBuf>,
}

/// The blob store.
#[derive(Clone)]
pub struct Blobs {
    inner: Arc<dyn ObjectStore>,
    describe: String,
    /// The directory of local blobs, where a finished file can be moved in
    /// rather than copied.
    local_root: Option<PathBuf>,
}

impl std::fmt::Debug for Blobs {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.describe)
    }
}

impl Blobs {
    /// Blobs in a local directory (created if needed).
    pub fn local(dir: &Path) -> Result<Self, BlobError> {
        std::fs::create_dir_all(dir)
            .map_err(|e| BlobError::Config(format!("creating {}: {e}", dir.display())))?;
        let fs = LocalFileSystem::new_with_prefix(dir)
            .map_err(|e| BlobError::Backend(dir.display().to_string(), e))?;
        Ok(Self {
            inner: Arc::new(fs),
            describe: format!("files in {}", dir.display()),
            local_root: Some(dir.to_owned()),
        })
    }

    /// Blobs in an S3-compatible bucket.
    pub fn s3(s: &S3Settings) -> Result<Self, BlobError> {
        if s.bucket.is_empty() {
            return Err(BlobError::Config("an S3 bucket name is needed".into()));
        }
        let mut b = AmazonS3Builder::from_env()
            .with_bucket_name(&s.bucket)
            .with_allow_http(s.allow_http);
        if let Some(e) = &s.endpoint {
            // Path-style requests: what local S3-compatible servers expect.
            b = b.with_endpoint(e).with_virtual_hosted_style_request(false);
        }
        if let Some(r) = &s.region {
            b = b.with_region(r);
        }
        let secret = |path: &Path| {
            std::fs::read_to_string(path)
                .map(|v| v.trim().to_owned())
                .map_err(|e| BlobError::Config(format!("reading {}: {e}", path.display())))
        };
        if let Some(f) = &s.access_key_id_file {
            b = b.with_access_key_id(secret(f)?);
        }
        if let Some(f) = &s.secret_access_key_file {
            b = b.with_secret_access_key(secret(f)?);
        }
        let store = b
            .build()
            .map_err(|e| BlobError::Config(format!("S3 bucket {}: {e}", s.bucket)))?;
        Ok(Self {
            inner: Arc::new(store),
            describe: format!(
                "S3 bucket {}{}",
                s.bucket,
                s.endpoint
                    .as_ref()
                    .map(|e| format!(" at {e}"))
                    .unwrap_or_default()
            ),
            local_root: None,
        })
    }

    fn err(&self, key: &str, e: object_store::Error) -> BlobError {
        match e {
            object_store::Error::NotFound { .. } => BlobError::NotFound(key.to_owned()),
            e => BlobError::Backend(self.describe.clone(), e),
        }
    }

    /// Stores `bytes` under `key` (whole, or not at all).
    pub async fn put(&self, key: &str, bytes: Bytes) -> Result<(), BlobError> {
        self.inner
            .put(&Key::from(key), PutPayload::from(bytes))
            .await
            .map_err(|e| self.err(key, e))?;
        Ok(())
    }

    /// Stores the file at `path` under `key` and consumes the file: a
    /// local store moves it in (a rename on the same file system), S3
    /// takes it as a multipart upload streamed from disk, so a large file
    /// is never held in memory.
    pub async fn put_file(&self, key: &str, path: &Path) -> Result<(), BlobError> {
        let io = |what: &str, e: std::io::Error| {
            BlobError::Config(format!("{what} {}: {e}", path.display()))
        };
        if let Some(root) = &self.local_root {
            let dest = root.join(key);
            if let Some(dir) = dest.parent() {
                tokio::fs::create_dir_all(dir)
                    .await
                    .map_err(|e| io("making room for", e))?;
            }
            if tokio::fs::rename(path, &dest).await.is_ok() {
                // The rename is durable once its directory is.
                if let Some(dir) = dest.parent() {
                    if let Ok(d) = tokio::fs::File::open(dir).await {
                        let _ = d.sync_all().await;
                    }
                }
                return Ok(());
            }
            // Another file system: copy through the object store below.
        }
        let upload = self
            .inner
            .put_multipart(&Key::from(key))
            .await
            .map_err(|e| self.err(key, e))?;
        let mut writer = WriteMultipart::new_with_chunk_size(upload, 8 << 20);
        let mut file = tokio::fs::File::open(path)
            .await
            .map_err(|e| io("opening", e))?;
        let mut buf = vec![0u8; 1 << 20];
        loop {
            use tokio::io::AsyncReadExt;
            let n = file.read(&mut buf).await.map_err(|e| io("reading", e))?;
            if n == 0 {
                break;
            }
            writer
                .wait_for_capacity(4)
                .await
                .map_err(|e| self.err(key, e))?;
            writer.write(&buf[..n]);
        }
        writer.finish().await.map_err(|e| self.err(key, e))?;
        let _ = tokio::fs::remove_file(path).await;
        Ok(())
    }

    /// The bytes `range` of a blob as a stream.
    pub async fn get_range_stream(
        &self,
        key: &str,
        range: Range<u64>,
    ) -> Result<BoxStream<'static, Result<Bytes, BlobError>>, BlobError> {
        let options = GetOptions {
            range: Some(GetRange::Bounded(range)),
            ..Default::default()
        };
        let got = self
            .inner
            .get_opts(&Key::from(key), options)
            .await
            .map_err(|e| self.err(key, e))?;
        let describe = self.describe.clone();
        Ok(got
            .into_stream()
            .map(move |r| r.map_err(|e| BlobError::Backend(describe.clone(), e)))
            .boxed())
    }

    pub async fn get(&self, key: &str) -> Result<Bytes, BlobError> {
        let got = self
            .inner
            .get(&Key::from(key))
            .await
            .map_err(|e| self.err(key, e))?;
        got.bytes().await.map_err(|e| self.err(key, e))
    }

    /// The blob's size and its bytes as a stream.
    pub async fn get_stream(
        &self,
        key: &str,
    ) -> Result<(u64, BoxStream<'static, Result<Bytes, BlobError>>), BlobError> {
        let got = self
            .inner
            .get(&Key::from(key))
            .await
            .map_err(|e| self.err(key, e))?;
        let size = got.meta.size;
        let describe = self.describe.clone();
        let stream = got
            .into_stream()
            .map(move |r| r.map_err(|e| BlobError::Backend(describe.clone(), e)))
            .boxed();
        Ok((size, stream))
    }

    /// The blob's size, or `None` when there is no such blob.
    pub async fn size(&self, key: &str) -> Result<Option<u64>, BlobError> {
        match self.inner.head(&Key::from(key)).await {
            Ok(meta) => Ok(Some(meta.size)),
            Err(object_store::Error::NotFound { .. }) => Ok(None),
            Err(e) => Err(self.err(key, e)),
        }
    }

    pub async fn delete(&self, key: &str) -> Result<(), BlobError> {
        match self.inner.delete(&Key::from(key)).await {
            Ok(()) | Err(object_store::Error::NotFound { .. }) => Ok(()),
            Err(e) => Err(self.err(key, e)),
        }
    }
}

#[cfg(test)]
mod tests {
    use futures::TryStreamExt;

    use super::Blobs;

    #[tokio::test]
    async fn a_file_moves_in_and_reads_back_by_range() {
        let dir = tempfile::tempdir().unwrap();
        let blobs = Blobs::local(&dir.path().join("blobs")).unwrap();
        let spool = dir.path().join("upload.part");
        let bytes: Vec<u8> = (0..300_000u32).map(|i| (i % 251) as u8).collect();
        std::fs::write(&spool, &bytes).unwrap();
        blobs.put_file("attachments/u1", &spool).await.unwrap();
        assert!(!spool.exists(), "the spool file is consumed");
        assert_eq!(blobs.size("attachments/u1").await.unwrap(), Some(300_000));
        let part: Vec<u8> = blobs
            .get_range_stream("attachments/u1", 1000..251_000)
            .await
            .unwrap()
            .map_ok(|b| b.to_vec())
            .try_concat()
            .await
            .unwrap();
        assert_eq!(part, &bytes[1000..251_000]);
        assert!(blobs
            .get_range_stream("attachments/none", 0..1)
            .await
            .is_err());
    }
}
