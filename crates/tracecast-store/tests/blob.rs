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
    // moto accepts any credentials; object_store reads them from the
    // environment like every AWS client.
    std::env::set_var("AWS_ACCESS_KEY_ID", "testing");
    std::env::set_var("AWS_SECRET_ACCESS_KEY", "testing");
    let blobs = Blobs::s3(&moto.settings()).unwrap();
    exercise(&blobs).await;
    // A bucket that does not exist is an error, not a panic or a hang.
    let missing = Blobs::s3(&S3Settings {
        bucket: "no-such-bucket".into(),
        endpoint: Some(moto.endpoint.clone()),
        region: Some("us-east-1".into()),
        allow_http: true,
        ..S3Settings::default()
    })
    .unwrap();
    assert!(missing.put("x", Bytes::from_static(b"x")).await.is_err());
}
