//! HTTP client of the mailbox, and the drain loop of the protocol.

use std::time::Duration;

use bytes::Bytes;
use reqwest::header::{AUTHORIZATION, CONTENT_TYPE};
use reqwest::StatusCode;
use serde::Deserialize;
use tracecast_mailbox::{
    header, BoxName, Disposition, FetchRequest, MessageId, Next, Room, RoomPlan, Sender, Want,
};

use crate::inbox::{Inbox, InboxError};

#[derive(Debug, thiserror::Error)]
pub enum ClientError {
    /// The server could not be reached or the connection broke: the request
    /// may or may not have been applied; repeating it is safe.
    #[error("server unreachable: {0}")]
    Transport(#[from] reqwest::Error),
    /// The server refused the request (its explanation follows).
    #[error("server answered {status}: {message}")]
    Refused {
        status: StatusCode,
        code: String,
        message: String,
    },
    /// The answer does not follow the protocol.
    #[error("the server's answer is malformed: {0}")]
    Malformed(String),
    /// Bytes arrived but are not the ones announced (hash mismatch).
    #[error("{0}")]
    Integrity(String),
    /// A local file could not be read or written.
    #[error("{0}")]
    Local(String),
    #[error(transparent)]
    Inbox(#[from] InboxError),
    #[error("invalid server URL {0:?}: use http://HOST:PORT")]
    Url(String),
}

impl ClientError {
    /// Worth repeating: the network or the server's store failed, not the
    /// request.
    pub fn is_transient(&self) -> bool {
        match self {
            ClientError::Transport(_) => true,
            ClientError::Refused { status, .. } => {
                *status == StatusCode::SERVICE_UNAVAILABLE || status.is_server_error()
            }
            _ => false,
        }
    }
}

/// A fetched message.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Message {
    pub id: MessageId,
    pub media_type: String,
    pub body: Bytes,
    /// When the server accepted it (IMF-fixdate).
    pub date: String,
    pub protected: bool,
    /// Who posted it, as the mailbox authenticated them (`None` from a
    /// server that does not say): what to show as its sender, whatever
    /// the body claims.
    pub sender: Option<Sender>,
}

/// The answer to a fetch.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Fetched {
    pub message: Option<Message>,
    pub next: Next,
    pub next_length: Option<u64>,
    /// `applied` or `already` when the request carried an instruction.
    pub done: Option<String>,
}

#[derive(Debug, Clone, Default)]
pub struct PostOptions {
    pub protect: bool,
    /// Seconds; the server's default when `None`.
    pub ttl: Option<u64>,
    /// A retried post with the same key lands once.
    pub idempotency_key: Option<String>,
}

pub use tracecast_mailbox::api::{BoxStatus, CreatedBox, Notice, Posted};

/// A client of one mailbox server, holding one token.
#[derive(Clone)]
pub struct MailboxClient {
    base: String,
    token: String,
    http: reqwest::Client,
}

impl std::fmt::Debug for MailboxClient {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // Never the token.
        f.debug_struct("MailboxClient")
            .field("base", &self.base)
            .finish()
    }
}

#[derive(Deserialize)]
struct ErrorBody {
    error: String,
    message: String,
}

pub(crate) async fn refused(resp: reqwest::Response) -> ClientError {
    let status = resp.status();
    match resp.json::<ErrorBody>().await {
        Ok(e) => ClientError::Refused {
            status,
            code: e.error,
            message: e.message,
        },
        Err(_) => ClientError::Refused {
            status,
            code: "unknown".into(),
            message: status.canonical_reason().unwrap_or("error").into(),
        },
    }
}

fn header_value<'a>(resp: &'a reqwest::Response, name: &str) -> Option<&'a str> {
    resp.headers().get(name).and_then(|v| v.to_str().ok())
}

impl MailboxClient {
    pub fn new(base: &str, token: &str) -> Result<Self, ClientError> {
        let base = base.trim_end_matches('/').to_owned();
        if !(base.starts_with("http://") || base.starts_with("https://")) {
            return Err(ClientError::Url(base));
        }
        let http = reqwest::Client::builder()
            .connect_timeout(Duration::from_secs(5))
            .pool_idle_timeout(Duration::from_secs(30))
            .build()?;
        Ok(Self {
            base,
            token: token.trim().to_owned(),
            http,
        })
    }

    fn url(&self, path: &str) -> String {
        format!("{}{path}", self.base)
    }

    fn auth(&self, req: reqwest::RequestBuilder) -> reqwest::RequestBuilder {
        req.header(AUTHORIZATION, format!("Bearer {}", self.token))
    }

    /// Who this token is: `Some(box)` for a box owner, `None` for an
    /// administrator.
    pub async fn whoami(&self) -> Result<Option<BoxName>, ClientError> {
        let resp = self
            .auth(self.http.get(self.url("/v1/whoami")))
            .send()
            .await?;
        if !resp.status().is_success() {
            return Err(refused(resp).await);
        }
        let who: tracecast_mailbox::api::WhoAmI = resp
            .json()
            .await
            .map_err(|e| ClientError::Malformed(e.to_string()))?;
        Ok(who.box_name)
    }

    /// Creates a box (administrator token).
    pub async fn create_box(
        &self,
        name: &BoxName,
        webhook: Option<&str>,
    ) -> Result<CreatedBox, ClientError> {
        let resp = self
            .auth(self.http.post(self.url("/v1/boxes")))
            .json(&tracecast_mailbox::api::CreateBox {
                name: name.to_string(),
                webhook: webhook.map(str::to_owned),
            })
            .send()
            .await?;
        if resp.status() != StatusCode::CREATED {
            return Err(refused(resp).await);
        }
        resp.json()
            .await
            .map_err(|e| ClientError::Malformed(e.to_string()))
    }

    /// Posts a message; returns once the server has it on disk.
    pub async fn post(
        &self,
        to: &BoxName,
        media_type: &str,
        body: impl Into<Bytes>,
        options: &PostOptions,
    ) -> Result<Posted, ClientError> {
        let mut req = self
            .auth(
                self.http
                    .post(self.url(&format!("/v1/boxes/{to}/messages"))),
            )
            .header(CONTENT_TYPE, media_type)
            .body(body.into());
        if options.protect {
            req = req.header(header::PROTECTED, "true");
        }
        if let Some(ttl) = options.ttl {
            req = req.header(header::TTL, ttl.to_string());
        }
        if let Some(key) = &options.idempotency_key {
            req = req.header(header::IDEMPOTENCY_KEY, key);
        }
        let resp = req.send().await?;
        if !resp.status().is_success() {
            return Err(refused(resp).await);
        }
        resp.json()
            .await
            .map_err(|e| ClientError::Malformed(e.to_string()))
    }

    /// One fetch of the protocol.
    pub async fn fetch(
        &self,
        from: &BoxName,
        request: FetchRequest,
    ) -> Result<Fetched, ClientError> {
        self.fetch_waiting(from, request, Duration::ZERO).await
    }

    /// A fetch of `want=first` that, if the box is empty, waits up to
    /// `wait` (whole seconds) for the first message to arrive.
    pub async fn fetch_waiting(
        &self,
        from: &BoxName,
        request: FetchRequest,
        wait: Duration,
    ) -> Result<Fetched, ClientError> {
        let mut url = self.url(&format!("/v1/boxes/{from}/fetch?{}", request.to_query()));
        let req = if wait.is_zero() {
            self.http.get(&url)
        } else {
            url.push_str(&format!("&wait={}", wait.as_secs().max(1)));
            self.http.get(&url).timeout(wait + Duration::from_secs(10))
        };
        let resp = self.auth(req).send().await?;
        let status = resp.status();
        if status != StatusCode::OK && status != StatusCode::NO_CONTENT {
            return Err(refused(resp).await);
        }
        let next: Next = header_value(&resp, header::NEXT)
            .ok_or_else(|| ClientError::Malformed("no Tracecast-Next header".into()))?
            .parse()
            .map_err(|e: tracecast_mailbox::ProtocolError| ClientError::Malformed(e.to_string()))?;
        let next_length = header_value(&resp, header::NEXT_LENGTH).and_then(|v| v.parse().ok());
        let done = header_value(&resp, header::DONE).map(str::to_owned);
        if status == StatusCode::NO_CONTENT {
            return Ok(Fetched {
                message: None,
                next,
                next_length,
                done,
            });
        }
        let id: MessageId = header_value(&resp, header::MESSAGE_ID)
            .ok_or_else(|| ClientError::Malformed("no Tracecast-Message-Id header".into()))?
            .parse()
            .map_err(|e: tracecast_mailbox::ProtocolError| ClientError::Malformed(e.to_string()))?;
        let media_type = header_value(&resp, CONTENT_TYPE.as_str())
            .unwrap_or("application/octet-stream")
            .to_owned();
        let date = header_value(&resp, header::MESSAGE_DATE)
            .unwrap_or("")
            .to_owned();
        let protected = header_value(&resp, header::PROTECTED) == Some("true");
        let sender = header_value(&resp, header::SENDER).and_then(Sender::parse);
        let expected = resp.content_length();
        let body = resp.bytes().await?;
        if expected.is_some_and(|n| n != body.len() as u64) {
            return Err(ClientError::Malformed(
                "body shorter than its length".into(),
            ));
        }
        Ok(Fetched {
            message: Some(Message {
                id,
                media_type,
                body,
                date,
                protected,
                sender,
            }),
            next,
            next_length,
            done,
        })
    }

    /// Long-poll: waits up to `timeout` for mail; `None` if none came.
    pub async fn wait(
        &self,
        on: &BoxName,
        timeout: Duration,
    ) -> Result<Option<Notice>, ClientError> {
        let url = self.url(&format!(
            "/v1/boxes/{on}/wait?timeout={}",
            timeout.as_secs().max(1)
        ));
        let resp = self
            .auth(self.http.get(url))
            .timeout(timeout + Duration::from_secs(10))
            .send()
            .await?;
        match resp.status() {
            StatusCode::OK => resp
                .json()
                .await
                .map(Some)
                .map_err(|e| ClientError::Malformed(e.to_string())),
            StatusCode::NO_CONTENT => Ok(None),
            _ => Err(refused(resp).await),
        }
    }

    /// The box's counters.
    pub async fn status(&self, of: &BoxName) -> Result<BoxStatus, ClientError> {
        let resp = self
            .auth(self.http.get(self.url(&format!("/v1/boxes/{of}"))))
            .send()
            .await?;
        if !resp.status().is_success() {
            return Err(refused(resp).await);
        }
        resp.json()
            .await
            .map_err(|e| ClientError::Malformed(e.to_string()))
    }
}

/// How [`drain`] moves mail.
#[derive(Debug, Clone)]
pub struct DrainOptions {
    pub room: Room,
    /// What the server does with each stored message.
    pub then: Disposition,
    /// Keep repeating a request that failed in transit (server restarting,
    /// network down) for this long before giving up.
    pub retry_for: Duration,
    /// Stop after this many messages (None: until the box is empty).
    pub max_messages: Option<u64>,
    /// Keep going when the box is empty: hold a waiting fetch
    /// (`want=first&wait=N`, carrying the last instruction) and store mail
    /// as it arrives. Returns only when full or on an error.
    pub watch: Option<Duration>,
}

impl Default for DrainOptions {
    fn default() -> Self {
        Self {
            room: Room::default(),
            then: Disposition::Delete,
            retry_for: Duration::from_secs(30),
            max_messages: None,
            watch: None,
        }
    }
}

/// What [`drain`] did.
#[derive(Debug, Clone, Default, PartialEq, Eq, serde::Serialize)]
pub struct DrainReport {
    /// New messages stored.
    pub stored: u64,
    /// Messages that came again (their acknowledgement had not arrived) and
    /// were already stored.
    pub duplicates: u64,
    /// Read, unprotected messages removed to make room.
    pub overwritten: u64,
    /// Stopped because the inbox is full; the rest waits on the server.
    pub full: bool,
    /// Requests repeated after a transient failure.
    pub retries: u64,
}

/// Moves mail from box `from` into `inbox`: asks for the first message,
/// stores each durably, and acknowledges it in the next request (or in a
/// request with only the instruction when no message follows). Checks room
/// before each fetch and stops when full. A crash anywhere loses nothing:
/// an unacknowledged message comes again and is recognised.
pub async fn drain(
    client: &MailboxClient,
    from: &BoxName,
    inbox: &mut Inbox,
    options: &DrainOptions,
    mut on_stored: impl FnMut(&Message),
) -> Result<DrainReport, ClientError> {
    let mut report = DrainReport::default();
    let mut want = Want::First;
    let mut incoming: Option<u64> = None;
    let mut owed: Option<MessageId> = None;
    loop {
        let limit_reached = options
            .max_messages
            .is_some_and(|max| report.stored + report.duplicates >= max);
        let unlimited = options.room.max_bytes.is_none() && options.room.max_count.is_none();
        // The first message of a round has no announced length: with a
        // size limit, learn it from the box's counters and ask for it by
        // id, so one large message cannot overfill the store.
        if want == Want::First && !limit_reached && options.room.max_bytes.is_some() {
            let stats = client.status(from).await?.stats;
            match (stats.first_pending, stats.first_pending_length) {
                (Some(first), Some(length)) => {
                    want = Want::Id(first);
                    incoming = Some(u64::try_from(length).unwrap_or(u64::MAX));
                }
                _ => {
                    if let Some(id) = owed.take() {
                        let only = FetchRequest {
                            want: Want::Nothing,
                            done: Some((id, options.then)),
                        };
                        fetch_retrying(client, from, only, Duration::ZERO, options, &mut report)
                            .await?;
                    }
                    match options.watch {
                        Some(wait) => {
                            client.wait(from, wait).await?;
                            continue;
                        }
                        None => return Ok(report),
                    }
                }
            }
        }
        let plan = if limit_reached {
            RoomPlan::Full
        } else if unlimited {
            RoomPlan::Fetch { overwrite: vec![] }
        } else {
            options.room.plan(&inbox.local_messages(), incoming)
        };
        match plan {
            RoomPlan::Full => {
                if let Some(id) = owed.take() {
                    let only = FetchRequest {
                        want: Want::Nothing,
                        done: Some((id, options.then)),
                    };
                    fetch_retrying(client, from, only, Duration::ZERO, options, &mut report)
                        .await?;
                }
                report.full = !limit_reached;
                return Ok(report);
            }
            RoomPlan::Fetch { overwrite } => {
                for id in overwrite {
                    inbox.remove(id)?;
                    report.overwritten += 1;
                }
            }
        }
        let request = FetchRequest {
            want,
            done: owed.map(|id| (id, options.then)),
        };
        let wait = match (want, options.watch) {
            (Want::First, Some(wait)) => wait,
            _ => Duration::ZERO,
        };
        let fetched = match fetch_retrying(client, from, request, wait, options, &mut report).await
        {
            // The announced next message expired or went meanwhile: start
            // again from the oldest one, still carrying the instruction.
            Err(ClientError::Refused { status, .. })
                if matches!(want, Want::Id(_))
                    && (status == StatusCode::GONE || status == StatusCode::NOT_FOUND) =>
            {
                want = Want::First;
                incoming = None;
                continue;
            }
            other => other?,
        };
        // The instruction, if any, is applied: from here nothing is owed
        // until this answer's message is stored.
        let Some(message) = fetched.message else {
            if options.watch.is_some() {
                continue; // The wait ran out with no mail: wait again.
            }
            return Ok(report);
        };
        let stored = inbox.store(&message)?;
        inbox.log_receipt(message.id, stored)?;
        if stored {
            report.stored += 1;
            on_stored(&message);
        } else {
            report.duplicates += 1;
        }
        owed = Some(message.id);
        match fetched.next {
            Next::Id(next) => {
                want = Want::Id(next);
                incoming = fetched.next_length;
            }
            // Watching: the instruction rides on the next waiting fetch.
            Next::None if options.watch.is_some() => {
                want = Want::First;
                incoming = None;
            }
            Next::None => {
                let only = FetchRequest {
                    want: Want::Nothing,
                    done: Some((message.id, options.then)),
                };
                fetch_retrying(client, from, only, Duration::ZERO, options, &mut report).await?;
                return Ok(report);
            }
        }
    }
}

async fn fetch_retrying(
    client: &MailboxClient,
    from: &BoxName,
    request: FetchRequest,
    wait: Duration,
    options: &DrainOptions,
    report: &mut DrainReport,
) -> Result<Fetched, ClientError> {
    let started = std::time::Instant::now();
    let mut pause = Duration::from_millis(20);
    loop {
        match client.fetch_waiting(from, request, wait).await {
            Err(e) if e.is_transient() && started.elapsed() < options.retry_for => {
                tracing::debug!(error = %e, "fetch failed in transit; repeating it");
                report.retries += 1;
                tokio::time::sleep(pause).await;
                pause = (pause * 2).min(Duration::from_secs(1));
            }
            other => return other,
        }
    }
}
