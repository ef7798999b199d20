//! The blob store on both of its backends: a local directory and a real
//! S3-compatible server (moto, from PyPI, started here on loopback;
//! scripts/test installs it into target/moto-venv).

use bytes::Bytes;
use futures::StreamExt;
use tracecast_store::blob::S3Settings;
use tracecast_store::testing::S3Server;
use tracecast_store::{BlobError, Blobs};

async fn exercise(blobs: &Blobs) {
    let big = Bytes::from(
        (0..3_000_000u32)
            .map(|i| (i % 251) as u8)
            .collect::<Vec<_>>(),
    );
    blobs.put("renditions/abc", big.clone()).await.unwrap();
    assert_eq!(blobs.get("renditions/abc").await.unwrap(), big);
    assert_eq!(
        blobs.size("renditions/abc").await.unwrap(),
        Some(big.len() as u64)
    );
    let (size, mut stream) = blobs.get_stream("renditions/abc").await.unwrap();
    assert_eq!(size, big.len() as u64);
    let mut streamed = Vec::new();
    while let Some(chunk) = stream.next().await {
        streamed.extend_from_slice(&chunk.unwrap());
    }
    assert_eq!(streamed, big);
    assert!(matches!(
        blobs.get("renditions/missing").await,
        Err(BlobError::NotFound(_))
    ));
    assert_eq!(blobs.size("renditions/missing").await.unwrap(), None);
    blobs.delete("renditions/abc").await.unwrap();
    blobs.delete("renditions/abc").await.unwrap();
    assert_eq!(blobs.size("renditions/abc").await.unwrap(), None);
}

#[tokio::test]
async fn local_directory() {
    let dir = tempfile::tempdir().unwrap();
    exercise(&Blobs::local(dir.path()).unwrap()).await;
}

#[tokio::test]
async fn s3_compatible_server() {
    let moto = S3Server::start("tracecast-test");
    // moto accepts any credentials; they come from files, as an operator's
    // secrets do (the environment is the process's, shared by every test).
    let keys = tempfile::tempdir().unwrap();
    let (id, secret) = (keys.path().join("key-id"), keys.path().join("secret"));
    std::fs::write(&id, "testing\n").unwrap();
    std::fs::write(&secret, "testing\n").unwrap();
    let with_keys = |settings: S3Settings| S3Settings {
        access_key_id_file: Some(id.clone()),
        secret_access_key_file: Some(secret.clone()),
        ..settings
    };
    let blobs = Blobs::s3(&with_keys(moto.settings())).unwrap();
    exercise(&blobs).await;
    // A bucket that does not exist is an error, not a panic or a hang.
    let missing = Blobs::s3(&with_keys(S3Settings {
        bucket: "no-such-bucket".into(),
        endpoint: Some(moto.endpoint.clone()),
        region: Some("us-east-1".into()),
        allow_http: true,
        ..S3Settings::default()
    }))
    .unwrap();
    assert!(missing.put("x", Bytes::from_static(b"x")).await.is_err());
}
