//! The CDN side of delivery (docs/cdn.md): publishing a content's A/B
//! variants where a CDN edge reads them, its verification key, and a
//! buyer's download of a copy through the CDN with its watermarking token.

use std::io::Write;
use std::path::{Path, PathBuf};

use futures::StreamExt;
use tracecast_delivery::api::CdnCopy;
use tracecast_delivery::Tier;

use crate::{ClientError, OriginClient};

fn local<'a>(what: &'a str, path: &'a Path) -> impl FnOnce(std::io::Error) -> ClientError + 'a {
    move |e| ClientError::Local(format!("{what} {}: {e}", path.display()))
}

/// Writes `bytes` at `path` whole: a temporary name, synced, renamed, so a
/// CDN edge reading the folder never sees half a file.
fn put_whole(path: &Path, bytes: &[u8]) -> Result<(), ClientError> {
    let mut tmp = path.as_os_str().to_owned();
    tmp.push(".partial");
    let tmp = PathBuf::from(tmp);
    let mut f = std::fs::File::create(&tmp).map_err(local("writing", &tmp))?;
    f.write_all(bytes)
        .and_then(|()| f.sync_all())
        .map_err(local("writing", &tmp))?;
    std::fs::rename(&tmp, path).map_err(local("renaming into", path))
}

/// Copies a rendition's FLAC A/B variants and their frame index from the
/// origin (an administrator's or edge's token) into
/// `{dir}/{content}/{tier}/` as `a.flac`, `b.flac` and `index` (and, when
/// the content has MP3 variants, `a.mp3`, `b.mp3` and `mp3-index`), each
/// checked against the hash recorded at ingest: the layout the reference
/// CDN edge (`deploy/cdn/`) serves from, to copy as it is into a bucket
/// or any origin directory a CDN pulls from. Answers the folder written.
pub async fn publish(
    origin: &OriginClient,
    content: i64,
    tier: Tier,
    dir: &Path,
) -> Result<PathBuf, ClientError> {
    let info = origin.content(content).await?;
    let ab = info
        .renditions
        .iter()
        .find(|r| r.tier == tier)
        .and_then(|r| r.ab.clone())
        .ok_or_else(|| {
            ClientError::Local(format!(
                "content {content} has no A/B variants of its {tier} rendition (ingest it with --marking ab)"
            ))
        })?;
    let flac = ab.flac.clone().ok_or_else(|| {
        ClientError::Local(format!(
            "content {content}'s variants are WAV (ingested before FLAC variants): ingest it again to serve it through a CDN"
        ))
    })?;
    let folder = dir.join(content.to_string()).join(tier.as_str());
    std::fs::create_dir_all(&folder).map_err(local("making", &folder))?;
    for (which, sha, name) in [
        ("a", &ab.a_sha256, "a.flac"),
        ("b", &ab.b_sha256, "b.flac"),
        ("index", &flac.index_sha256, "index"),
    ] {
        let bytes = origin.ab_variant(content, tier, which, sha).await?;
        put_whole(&folder.join(name), &bytes)?;
    }
    if let Some(m) = &ab.mp3 {
        for (which, sha, name) in [
            ("mp3-a", &m.a_sha256, "a.mp3"),
            ("mp3-b", &m.b_sha256, "b.mp3"),
            ("mp3-index", &m.index_sha256, "mp3-index"),
        ] {
            let bytes = origin.ab_variant(content, tier, which, sha).await?;
            put_whole(&folder.join(name), &bytes)?;
        }
    }
    Ok(folder)
}

/// The origin's key for watermarking tokens as PEM, for the CDN's
/// settings (`deploy/cdn/`), and its key id.
pub async fn token_key(origin: &OriginClient) -> Result<(String, String), ClientError> {
    let info = origin.origin_info().await?;
    let (Some(spki), Some(kid)) = (info.wmt_key, info.wmt_kid) else {
        return Err(ClientError::Local(
            "this origin delivers through no CDN (no [cdn] in its settings)".into(),
        ));
    };
    let v = tracecast_delivery::wmt::WmtVerifier::from_spki_base64(&spki)
        .map_err(|e| ClientError::Malformed(e.to_string()))?;
    if v.kid() != kid {
        return Err(ClientError::Malformed(
            "the origin's token key does not match its key id".into(),
        ));
    }
    Ok((v.pem(), kid))
}

/// Downloads a copy from the CDN into `out`, resuming a part file left by
/// an earlier try (`{out}.part`, asked for with Range), and checks the
/// length the origin announced. Answers the bytes written.
pub async fn download(
    http: &reqwest::Client,
    copy: &CdnCopy,
    out: &Path,
) -> Result<u64, ClientError> {
    let part = crate::part_path(out);
    let have = std::fs::metadata(&part).map(|m| m.len()).unwrap_or(0);
    let mut req = http.get(&copy.url).bearer_auth(&copy.token);
    if have > 0 && have < copy.bytes {
        req = req.header(reqwest::header::RANGE, format!("bytes={have}-"));
    }
    let resp = req.send().await?;
    let status = resp.status();
    let append = status == reqwest::StatusCode::PARTIAL_CONTENT;
    if !status.is_success() {
        return Err(ClientError::Refused {
            status,
            code: "cdn".into(),
            message: resp.text().await.unwrap_or_default(),
        });
    }
    let mut f = std::fs::OpenOptions::new()
        .create(true)
        .append(append)
        .write(true)
        .truncate(!append)
        .open(&part)
        .map_err(local("writing", &part))?;
    let mut stream = resp.bytes_stream();
    while let Some(chunk) = stream.next().await {
        f.write_all(&chunk?).map_err(local("writing", &part))?;
    }
    f.sync_all().map_err(local("syncing", &part))?;
    let got = std::fs::metadata(&part)
        .map_err(local("reading", &part))?
        .len();
    if got != copy.bytes {
        return Err(ClientError::Integrity(format!(
            "the CDN's copy is {got} bytes, not the {} the origin announced; {} is kept to resume",
            copy.bytes,
            part.display()
        )));
    }
    std::fs::rename(&part, out).map_err(local("renaming into", out))?;
    Ok(got)
}
