//! The blob store: renditions and other large bytes, through the
//! `object_store` crate, so one interface covers a local directory (the
//! embedded default) and any S3-compatible service (production).
//!
//! Keys are content addresses (`renditions/<sha256>`), so a blob is never
//! rewritten in place and a half-written upload can never be mistaken for a
//! good one: the metadata store names a blob only after `put` returned.

use std::path::Path;
use std::sync::Arc;

use bytes::Bytes;
use futures::stream::BoxStream;
use futures::StreamExt;
use object_store::aws::AmazonS3Builder;
use object_store::local::LocalFileSystem;
use object_store::path::Path as Key;
use object_store::{ObjectStore, PutPayload};

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

/// Where S3-compatible blobs live. Credentials come from the usual
/// environment (`AWS_ACCESS_KEY_ID`, `AWS_SECRET_ACCESS_KEY`), never from
/// files the server writes.
#[derive(Debug, Clone, Default, serde::Deserialize)]
pub struct S3Settings {
    pub bucket: String,
    /// e.g. `http://127.0.0.1:9000` for a local S3-compatible server.
    pub endpoint: Option<String>,
    pub region: Option<String>,
    /// Let the endpoint be plain HTTP (loopback and tests).
    #[serde(default)]
    pub allow_http: bool,
}

/// The blob store.
#[derive(Clone)]
pub struct Blobs {
    inner: Arc<dyn ObjectStore>,
    describe: String,
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
