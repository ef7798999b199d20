//! Clients for sharing from a device (DESIGN.md "000"): the gateway's
//! client of the service server ([`ServiceClient`]: device registration,
//! numbers, tus uploads that resume after a break, links), the device's
//! client of the gateway ([`GatewayClient`]), and the recipient's
//! resumable download of a link ([`download_link`]).

use std::path::Path;
use std::time::Duration;

use futures::StreamExt;
use reqwest::header::{AUTHORIZATION, CONTENT_LENGTH, CONTENT_TYPE, IF_RANGE, RANGE};
use reqwest::StatusCode;
use tokio::io::{AsyncReadExt, AsyncSeekExt, AsyncWriteExt};
use tokio_util::io::ReaderStream;
use tracecast_share::gateway::{
    AccountConfirm, IssuedAccount, LinkAnswer, NumberEntry, Registered, Registration, SendReceipt,
    ServiceOffer, ServiceOn, ServiceRequest,
};
use tracecast_share::tus;
use tracecast_share::url_segment;

use crate::delivery::{check_base, http, json, part_path};
use crate::mailbox::{refused, ClientError};

fn local(path: &Path, e: std::io::Error) -> ClientError {
    ClientError::Local(format!("{}: {e}", path.display()))
}

/// The gateway's client of the service server (its own token).
#[derive(Clone)]
pub struct ServiceClient {
    base: String,
    token: String,
    http: reqwest::Client,
}

impl std::fmt::Debug for ServiceClient {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // Never the token.
        f.debug_struct("ServiceClient")
            .field("base", &self.base)
            .finish()
    }
}

/// How a tus upload went.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Uploaded {
    /// The upload's URL on the service server.
    pub url: String,
    pub bytes: u64,
    /// How many times it resumed after a break.
    pub resumed: u32,
}

impl ServiceClient {
    pub fn new(base: &str, token: &str) -> Result<Self, ClientError> {
        Ok(Self {
            base: check_base(base)?,
            token: token.trim().to_owned(),
            http: http(Some(Duration::from_secs(60)))?,
        })
    }

    fn req(&self, method: reqwest::Method, url: &str) -> reqwest::RequestBuilder {
        let url = if url.starts_with("http") {
            url.to_owned()
        } else {
            format!("{}{url}", self.base)
        };
        self.http
            .request(method, url)
            .header(AUTHORIZATION, format!("Bearer {}", self.token))
    }

    /// Set-up step 7: the gateway's and the device's credentials.
    pub async fn register(&self, r: &Registration) -> Result<Registered, ClientError> {
        json(
            self.req(reqwest::Method::POST, "/service/v1/registrations")
                .json(r)
                .send()
                .await?,
        )
        .await
    }

    /// The mailbox box a number names.
    pub async fn number(&self, number: &str) -> Result<String, ClientError> {
        let entry: NumberEntry = json(
            self.req(
                reqwest::Method::GET,
                &format!("/service/v1/numbers/{}", url_segment(number)),
            )
            .send()
            .await?,
        )
        .await?;
        Ok(entry.box_name)
    }

    /// Names a box by a number (administrator).
    pub async fn set_number(&self, number: &str, box_name: &str) -> Result<(), ClientError> {
        let resp = self
            .req(
                reqwest::Method::PUT,
                &format!("/service/v1/numbers/{}", url_segment(number)),
            )
            .json(&NumberEntry {
                box_name: box_name.to_owned(),
            })
            .send()
            .await?;
        if !resp.status().is_success() {
            return Err(refused(resp).await);
        }
        Ok(())
    }

    /// Issues a device account (administrator).
    pub async fn issue_account(&self, label: &str) -> Result<IssuedAccount, ClientError> {
        json(
            self.req(reqwest::Method::POST, "/service/v1/accounts")
                .json(&serde_json::json!({ "label": label }))
                .send()
                .await?,
        )
        .await
    }

    /// Gives a device account a new set-up code (administrator); the
    /// answer carries it, shown this once.
    pub async fn new_code(&self, account: &str) -> Result<IssuedAccount, ClientError> {
        json(
            self.req(
                reqwest::Method::POST,
                &format!("/service/v1/accounts/{}/code", url_segment(account)),
            )
            .send()
            .await?,
        )
        .await
    }

    /// Suspends or reactivates a device account (administrator).
    pub async fn set_account_status(
        &self,
        account: &str,
        status: tracecast_share::AccountStatus,
    ) -> Result<(), ClientError> {
        self.put_status(
            &format!("/service/v1/accounts/{}/status", url_segment(account)),
            status,
        )
        .await
    }

    /// Suspends or activates a gateway (administrator).
    pub async fn set_gateway_status(
        &self,
        gateway: &str,
        status: tracecast_share::AccountStatus,
    ) -> Result<(), ClientError> {
        self.put_status(
            &format!("/service/v1/gateways/{}/status", url_segment(gateway)),
            status,
        )
        .await
    }

    async fn put_status(
        &self,
        path: &str,
        status: tracecast_share::AccountStatus,
    ) -> Result<(), ClientError> {
        let resp = self
            .req(reqwest::Method::PUT, path)
            .json(&tracecast_share::gateway::AccountStatusChange { status })
            .send()
            .await?;
        if !resp.status().is_success() {
            return Err(refused(resp).await);
        }
        Ok(())
    }

    /// tus creation: a new upload of `length` bytes; its URL.
    pub async fn create_upload(
        &self,
        length: u64,
        filename: &str,
        media_type: &str,
    ) -> Result<String, ClientError> {
        let meta = tus::encode_metadata(&[
            ("filename".to_owned(), filename.as_bytes().to_vec()),
            ("filetype".to_owned(), media_type.as_bytes().to_vec()),
        ]);
        let resp = self
            .req(reqwest::Method::POST, "/service/v1/uploads")
            .header("tus-resumable", tus::TUS_RESUMABLE)
            .header("upload-length", length.to_string())
            .header("upload-metadata", meta)
            .send()
            .await?;
        if resp.status() != StatusCode::CREATED {
            return Err(refused(resp).await);
        }
        let location = resp
            .headers()
            .get(reqwest::header::LOCATION)
            .and_then(|v| v.to_str().ok())
            .ok_or_else(|| ClientError::Malformed("a created upload has no Location".into()))?;
        // A relative Location is relative to the service.
        Ok(if location.starts_with("http") {
            location.to_owned()
        } else {
            format!("{}{location}", self.base)
        })
    }

    /// tus core: the upload's offset (HEAD).
    pub async fn offset(&self, url: &str) -> Result<u64, ClientError> {
        let resp = self
            .req(reqwest::Method::HEAD, url)
            .header("tus-resumable", tus::TUS_RESUMABLE)
            .send()
            .await?;
        if !resp.status().is_success() {
            // HEAD answers carry no body: say what the status means.
            return Err(ClientError::Refused {
                status: resp.status(),
                code: "upload".into(),
                message: match resp.status() {
                    StatusCode::NOT_FOUND => "the upload is unknown to the service".into(),
                    StatusCode::GONE => "the upload has expired".into(),
                    s => s.to_string(),
                },
            });
        }
        resp.headers()
            .get("upload-offset")
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.parse().ok())
            .ok_or_else(|| ClientError::Malformed("HEAD gave no Upload-Offset".into()))
    }

    /// tus core: sends the file from `offset` to its end in one PATCH;
    /// the offset the server reached.
    pub async fn patch(
        &self,
        url: &str,
        path: &Path,
        offset: u64,
        progress: &(dyn Fn(u64) + Send + Sync),
    ) -> Result<u64, ClientError> {
        let mut file = tokio::fs::File::open(path)
            .await
            .map_err(|e| local(path, e))?;
        let len = file.metadata().await.map_err(|e| local(path, e))?.len();
        file.seek(std::io::SeekFrom::Start(offset))
            .await
            .map_err(|e| local(path, e))?;
        let sent = std::sync::Arc::new(std::sync::atomic::AtomicU64::new(offset));
        let counter = sent.clone();
        let stream = ReaderStream::with_capacity(file.take(len - offset.min(len)), 1 << 20)
            .inspect(move |c| {
                if let Ok(c) = c {
                    counter.fetch_add(c.len() as u64, std::sync::atomic::Ordering::Relaxed);
                }
            });
        let body = reqwest::Body::wrap_stream(stream);
        let request = self
            .req(reqwest::Method::PATCH, url)
            .header("tus-resumable", tus::TUS_RESUMABLE)
            .header("upload-offset", offset.to_string())
            .header(CONTENT_TYPE, tus::OFFSET_CONTENT_TYPE)
            .header(CONTENT_LENGTH, (len - offset.min(len)).to_string())
            .body(body)
            .send();
        // Progress while the body streams.
        tokio::pin!(request);
        let resp = loop {
            tokio::select! {
                r = &mut request => break r?,
                _ = tokio::time::sleep(Duration::from_millis(200)) => {
                    progress(sent.load(std::sync::atomic::Ordering::Relaxed));
                }
            }
        };
        if resp.status() != StatusCode::NO_CONTENT {
            return Err(refused(resp).await);
        }
        let reached = resp
            .headers()
            .get("upload-offset")
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.parse().ok())
            .ok_or_else(|| ClientError::Malformed("PATCH gave no Upload-Offset".into()))?;
        progress(reached);
        Ok(reached)
    }

    /// Uploads a file: creates the upload and sends it, resuming from the
    /// server's offset after a break (up to `attempts` times).
    pub async fn upload_file(
        &self,
        path: &Path,
        filename: &str,
        media_type: &str,
        attempts: u32,
        progress: &(dyn Fn(u64) + Send + Sync),
    ) -> Result<Uploaded, ClientError> {
        let len = tokio::fs::metadata(path)
            .await
            .map_err(|e| local(path, e))?
            .len();
        let url = self.create_upload(len, filename, media_type).await?;
        self.resume_upload(&url, path, attempts, progress).await
    }

    /// Sends what the server lacks of an upload, asking HEAD for the offset
    /// first and again after every break.
    pub async fn resume_upload(
        &self,
        url: &str,
        path: &Path,
        attempts: u32,
        progress: &(dyn Fn(u64) + Send + Sync),
    ) -> Result<Uploaded, ClientError> {
        let len = tokio::fs::metadata(path)
            .await
            .map_err(|e| local(path, e))?
            .len();
        let mut resumed = 0;
        loop {
            let result = match self.offset(url).await {
                Ok(o) if o >= len => Ok(o),
                Ok(o) => self.patch(url, path, o, progress).await,
                Err(e) => Err(e),
            };
            match result {
                Ok(o) if o >= len => {
                    return Ok(Uploaded {
                        url: url.to_owned(),
                        bytes: len,
                        resumed,
                    })
                }
                Ok(_) => {}
                Err(e) if e.is_transient() && resumed < attempts => {
                    tracing::info!(error = %e, "upload broke off; resuming");
                }
                // The server still holds the broken PATCH (423), or it kept
                // more bytes than the HEAD said (409): ask again and resume
                // from its offset.
                Err(ClientError::Refused { status, .. })
                    if (status == StatusCode::LOCKED || status == StatusCode::CONFLICT)
                        && resumed < attempts =>
                {
                    tracing::info!(%status, "the server is still settling the upload; resuming");
                }
                Err(e) => return Err(e),
            }
            resumed += 1;
            if resumed > attempts {
                return Err(ClientError::Local(format!(
                    "the upload did not finish after {attempts} resumptions"
                )));
            }
            tokio::time::sleep(Duration::from_millis(200 * u64::from(resumed.min(10)))).await;
        }
    }

    /// tus termination.
    pub async fn delete_upload(&self, url: &str) -> Result<(), ClientError> {
        let resp = self
            .req(reqwest::Method::DELETE, url)
            .header("tus-resumable", tus::TUS_RESUMABLE)
            .send()
            .await?;
        if resp.status() != StatusCode::NO_CONTENT {
            return Err(refused(resp).await);
        }
        Ok(())
    }

    /// A signed, expiring download link to a finished upload.
    pub async fn link(
        &self,
        upload_url: &str,
        valid_for: Option<Duration>,
    ) -> Result<LinkAnswer, ClientError> {
        let body = match valid_for {
            Some(d) => serde_json::json!({ "valid_for_secs": d.as_secs() }),
            None => serde_json::json!({}),
        };
        json(
            self.req(reqwest::Method::POST, &format!("{upload_url}/link"))
                .json(&body)
                .send()
                .await?,
        )
        .await
    }
}

/// The device's client of a gateway on the local network.
#[derive(Clone)]
pub struct GatewayClient {
    base: String,
    token: Option<String>,
    http: reqwest::Client,
}

impl std::fmt::Debug for GatewayClient {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("GatewayClient")
            .field("base", &self.base)
            .finish()
    }
}

/// What the device sends with its content.
#[derive(Debug, Clone, Default)]
pub struct SendOptions<'a> {
    pub filename: &'a str,
    pub media_type: &'a str,
    /// A recipient to suggest in the gateway's compose prompt.
    pub to: Option<&'a str>,
    /// Text to suggest.
    pub text: Option<&'a str>,
}

impl GatewayClient {
    /// `base` is the gateway's address (`http://192.168.1.5:7080`).
    /// Composing at the gateway waits for its user, so answers may be slow.
    pub fn new(base: &str, token: Option<&str>) -> Result<Self, ClientError> {
        Ok(Self {
            base: check_base(base)?,
            token: token.map(|t| t.trim().to_owned()),
            http: http(Some(Duration::from_secs(3600)))?,
        })
    }

    pub fn base(&self) -> &str {
        &self.base
    }

    fn req(&self, method: reqwest::Method, path: &str) -> reqwest::RequestBuilder {
        let r = self.http.request(method, format!("{}{path}", self.base));
        match &self.token {
            Some(t) => r.header(AUTHORIZATION, format!("Bearer {t}")),
            None => r,
        }
    }

    /// Set-up step 2: asks for service.
    pub async fn request_service(&self, r: &ServiceRequest) -> Result<ServiceOffer, ClientError> {
        json(
            self.req(reqwest::Method::POST, "/gateway/v1/service-requests")
                .json(r)
                .send()
                .await?,
        )
        .await
    }

    /// Set-up step 5: confirms with the account; the service is on.
    pub async fn confirm(
        &self,
        offer: &ServiceOffer,
        account: &str,
        code: &str,
    ) -> Result<ServiceOn, ClientError> {
        json(
            self.req(reqwest::Method::POST, &offer.confirm)
                .json(&AccountConfirm {
                    account: account.to_owned(),
                    code: code.to_owned(),
                })
                .send()
                .await?,
        )
        .await
    }

    /// Share step: sends content with a send-message request; `progress`
    /// hears the bytes sent so far. The answer comes once the gateway's
    /// user has composed the message and it is in the recipient's box.
    pub async fn send(
        &self,
        path: &Path,
        options: &SendOptions<'_>,
        progress: impl Fn(u64) + Send + Sync + 'static,
    ) -> Result<SendReceipt, ClientError> {
        let file = tokio::fs::File::open(path)
            .await
            .map_err(|e| local(path, e))?;
        let len = file.metadata().await.map_err(|e| local(path, e))?.len();
        let mut query = vec![("filename", options.filename)];
        if let Some(t) = options.to {
            query.push(("to", t));
        }
        if let Some(t) = options.text {
            query.push(("text", t));
        }
        json(
            self.req(reqwest::Method::POST, "/gateway/v1/messages")
                .query(&query)
                .header(CONTENT_TYPE, options.media_type)
                .header(CONTENT_LENGTH, len.to_string())
                .body(reqwest::Body::wrap_stream({
                    let mut sent = 0u64;
                    ReaderStream::with_capacity(file, 1 << 20).inspect(move |c| {
                        if let Ok(c) = c {
                            sent += c.len() as u64;
                            progress(sent);
                        }
                    })
                }))
                .send()
                .await?,
        )
        .await
    }
}

/// Downloads a link to `out`, resuming a `.part` left by an earlier try
/// (Range with If-Range on the ETag the server gave).
pub async fn download_link(
    url: &str,
    out: &Path,
    progress: &(dyn Fn(u64, u64) + Send + Sync),
) -> Result<u64, ClientError> {
    let client = http(Some(Duration::from_secs(60)))?;
    let part = part_path(out);
    let etag_file = {
        let mut name = part.file_name().unwrap_or_default().to_os_string();
        name.push(".etag");
        part.with_file_name(name)
    };
    let have = tokio::fs::metadata(&part)
        .await
        .map(|m| m.len())
        .unwrap_or(0);
    let etag = tokio::fs::read_to_string(&etag_file).await.ok();
    let mut req = client.get(url);
    if let (true, Some(etag)) = (have > 0, &etag) {
        req = req
            .header(RANGE, format!("bytes={have}-"))
            .header(IF_RANGE, etag.trim());
    }
    let resp = req.send().await?;
    let (mut file, mut got, total) = match resp.status() {
        StatusCode::PARTIAL_CONTENT if have > 0 => {
            let total = resp
                .headers()
                .get(reqwest::header::CONTENT_RANGE)
                .and_then(|v| v.to_str().ok())
                .and_then(|v| v.rsplit('/').next())
                .and_then(|v| v.parse().ok())
                .unwrap_or(0);
            let f = tokio::fs::OpenOptions::new()
                .append(true)
                .open(&part)
                .await
                .map_err(|e| local(&part, e))?;
            (f, have, total)
        }
        StatusCode::OK => {
            if let Some(e) = resp.headers().get(reqwest::header::ETAG) {
                if let Ok(e) = e.to_str() {
                    let _ = tokio::fs::write(&etag_file, e).await;
                }
            }
            let total = resp.content_length().unwrap_or(0);
            let f = tokio::fs::File::create(&part)
                .await
                .map_err(|e| local(&part, e))?;
            (f, 0, total)
        }
        _ => return Err(refused(resp).await),
    };
    let mut body = resp.bytes_stream();
    progress(got, total);
    while let Some(chunk) = body.next().await {
        let chunk = chunk?;
        file.write_all(&chunk).await.map_err(|e| local(&part, e))?;
        got += chunk.len() as u64;
        progress(got, total);
    }
    file.sync_all().await.map_err(|e| local(&part, e))?;
    drop(file);
    if total > 0 && got != total {
        return Err(ClientError::Integrity(format!(
            "the download stopped at {got} of {total} bytes; run again to resume"
        )));
    }
    tokio::fs::rename(&part, out)
        .await
        .map_err(|e| local(out, e))?;
    let _ = tokio::fs::remove_file(&etag_file).await;
    Ok(got)
}
