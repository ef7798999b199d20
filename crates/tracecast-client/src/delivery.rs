//! Clients of the origin and the edge (DESIGN.md "001"), and the
//! resumable download of a marked copy.

use std::path::{Path, PathBuf};
use std::time::Duration;

use bytes::Bytes;
use futures::StreamExt;
use reqwest::header::{AUTHORIZATION, CONTENT_TYPE, RANGE};
use reqwest::StatusCode;
use serde::de::DeserializeOwned;
use sha2::{Digest, Sha256};
use tokio::io::AsyncWriteExt;
use tracecast_delivery::api::{
    AccountInfo, ContentInfo, CopyInfo, CopyUnderWay, DeliveryRequest, EdgeState, Invoice,
    NewAccount, OriginInfo, PaymentReceipt, PaymentRequest, PrePositionRequest, Purchase,
    PurchaseRequest, TraceReport,
};
use tracecast_delivery::Tier;

use crate::mailbox::{refused, ClientError};

/// Header carrying a body's SHA-256 (hex), checked by the receiver.
pub const SHA256_HEADER: &str = "tracecast-sha256";

pub(crate) fn http(timeout: Option<Duration>) -> Result<reqwest::Client, ClientError> {
    let mut b = reqwest::Client::builder()
        .connect_timeout(Duration::from_secs(5))
        .pool_idle_timeout(Duration::from_secs(30));
    if let Some(t) = timeout {
        b = b.read_timeout(t);
    }
    Ok(b.build()?)
}

pub(crate) fn check_base(base: &str) -> Result<String, ClientError> {
    let base = base.trim_end_matches('/').to_owned();
    if !(base.starts_with("http://") || base.starts_with("https://")) {
        return Err(ClientError::Url(base));
    }
    Ok(base)
}

pub(crate) async fn json<T: DeserializeOwned>(resp: reqwest::Response) -> Result<T, ClientError> {
    if !resp.status().is_success() {
        return Err(refused(resp).await);
    }
    resp.json()
        .await
        .map_err(|e| ClientError::Malformed(e.to_string()))
}

/// What a provider says about a content at ingest.
#[derive(Debug, Clone, Copy, Default)]
pub struct ContentOptions<'a> {
    pub title: &'a str,
    pub price_cents: i64,
    /// Terms written into every copy's metadata (default: the origin's).
    pub terms: Option<&'a str>,
    /// What renting costs (`0.50/hour`; default: the origin's).
    pub rental_tariff: Option<&'a str>,
    /// Reserve it for members up to this order.
    pub reserved_up_to_order: Option<i64>,
    /// Deliver copies encrypted, opened with licences.
    pub protected: bool,
    /// How copies are marked (default `Direct`: each copy marked by the
    /// edge; `Ab` and `Auto` make A/B variants; see `Marking`).
    pub marking: tracecast_delivery::ab::Marking,
}

/// The query of `POST /v1/contents` for these options.
fn ingest_query(options: &ContentOptions<'_>, filename: &str) -> Vec<(&'static str, String)> {
    let ContentOptions {
        title,
        price_cents,
        terms,
        rental_tariff,
        reserved_up_to_order,
        protected,
        marking,
    } = *options;
    let mut query = vec![
        ("title", title.to_owned()),
        ("price_cents", price_cents.to_string()),
    ];
    if let Some(t) = rental_tariff {
        query.push(("rental_tariff", t.to_owned()));
    }
    if let Some(n) = reserved_up_to_order {
        query.push(("reserved_up_to_order", n.to_string()));
    }
    if protected {
        query.push(("protected", "true".into()));
    }
    match marking {
        tracecast_delivery::ab::Marking::Direct => {}
        // `ab=true` is understood by origins from before `marking`.
        tracecast_delivery::ab::Marking::Ab => query.push(("ab", "true".into())),
        m => query.push(("marking", m.as_str().into())),
    }
    if let Some(t) = terms {
        query.push(("terms", t.to_owned()));
    }
    query.push(("filename", filename.to_owned()));
    query
}

/// Client of the origin, with one account's token.
#[derive(Clone)]
pub struct OriginClient {
    base: String,
    token: String,
    http: reqwest::Client,
}

impl std::fmt::Debug for OriginClient {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("OriginClient")
            .field("base", &self.base)
            .finish()
    }
}

impl OriginClient {
    pub fn new(base: &str, token: &str) -> Result<Self, ClientError> {
        Ok(Self {
            base: check_base(base)?,
            token: token.trim().to_owned(),
            // Ingest and trace do real work before answering.
            http: http(Some(Duration::from_secs(600)))?,
        })
    }

    pub fn base(&self) -> &str {
        &self.base
    }

    pub(crate) fn req(&self, method: reqwest::Method, path: &str) -> reqwest::RequestBuilder {
        self.http
            .request(method, format!("{}{path}", self.base))
            .header(AUTHORIZATION, format!("Bearer {}", self.token))
    }

    pub async fn origin_info(&self) -> Result<OriginInfo, ClientError> {
        json(
            self.http
                .get(format!("{}/v1/origin", self.base))
                .send()
                .await?,
        )
        .await
    }

    /// The account this token belongs to.
    pub async fn account(&self) -> Result<AccountInfo, ClientError> {
        json(self.req(reqwest::Method::GET, "/v1/account").send().await?).await
    }

    /// Creates an account (administrator token); the answer holds its
    /// token, shown this once.
    pub async fn add_account(&self, new: &NewAccount) -> Result<AccountInfo, ClientError> {
        json(
            self.req(reqwest::Method::POST, "/v1/accounts")
                .json(new)
                .send()
                .await?,
        )
        .await
    }

    /// Uploads a source file for ingest (provider token). `progress` sees
    /// bytes sent of the total.
    pub async fn add_content(
        &self,
        file: &Path,
        title: &str,
        price_cents: i64,
        terms: Option<&str>,
        progress: impl Fn(u64, u64) + Send + Sync + 'static,
    ) -> Result<ContentInfo, ClientError> {
        let options = ContentOptions {
            title,
            price_cents,
            terms,
            ..ContentOptions::default()
        };
        self.add_content_with(file, &options, progress).await
    }

    /// [`Self::add_content`] with every option of ingest.
    pub async fn add_content_with(
        &self,
        file: &Path,
        options: &ContentOptions<'_>,
        progress: impl Fn(u64, u64) + Send + Sync + 'static,
    ) -> Result<ContentInfo, ClientError> {
        let bytes = Bytes::from(
            tokio::fs::read(file)
                .await
                .map_err(|e| ClientError::Local(format!("cannot read {}: {e}", file.display())))?,
        );
        let sha = hex::encode(Sha256::digest(&bytes));
        let total = bytes.len() as u64;
        // Sent in 256 KiB pieces so the progress bar moves with the socket.
        let chunks: Vec<Bytes> = (0..bytes.len())
            .step_by(256 << 10)
            .map(|i| bytes.slice(i..(i + (256 << 10)).min(bytes.len())))
            .collect();
        let mut sent = 0u64;
        let stream = futures::stream::iter(chunks).map(move |c| {
            sent += c.len() as u64;
            progress(sent, total);
            Ok::<_, std::io::Error>(c)
        });
        let name = file
            .file_name()
            .and_then(|n| n.to_str())
            .unwrap_or("upload");
        json(
            self.req(reqwest::Method::POST, "/v1/contents")
                .query(&ingest_query(options, name))
                .header(CONTENT_TYPE, "application/octet-stream")
                .header(reqwest::header::CONTENT_LENGTH, total)
                .header(SHA256_HEADER, sha)
                .body(reqwest::Body::wrap_stream(stream))
                .send()
                .await?,
        )
        .await
    }

    /// Ingests a body streamed from elsewhere (the web console passes a
    /// browser's upload through), `len` bytes if known.
    pub async fn add_content_body(
        &self,
        options: &ContentOptions<'_>,
        filename: &str,
        len: Option<u64>,
        body: reqwest::Body,
    ) -> Result<ContentInfo, ClientError> {
        let mut req = self
            .req(reqwest::Method::POST, "/v1/contents")
            .query(&ingest_query(options, filename))
            .header(CONTENT_TYPE, "application/octet-stream");
        if let Some(n) = len {
            req = req.header(reqwest::header::CONTENT_LENGTH, n);
        }
        json(req.body(body).send().await?).await
    }

    pub async fn contents(&self) -> Result<Vec<ContentInfo>, ClientError> {
        json(
            self.req(reqwest::Method::GET, "/v1/contents")
                .send()
                .await?,
        )
        .await
    }

    pub async fn content(&self, id: i64) -> Result<ContentInfo, ClientError> {
        json(
            self.req(reqwest::Method::GET, &format!("/v1/contents/{id}"))
                .send()
                .await?,
        )
        .await
    }

    /// Asks edges to fetch a rendition ahead of demand; returns the edge
    /// ids told.
    pub async fn pre_position(
        &self,
        content: i64,
        request: &PrePositionRequest,
    ) -> Result<Vec<i64>, ClientError> {
        json(
            self.req(
                reqwest::Method::POST,
                &format!("/v1/contents/{content}/pre-position"),
            )
            .json(request)
            .send()
            .await?,
        )
        .await
    }

    /// Designation and ticket for a purchase (user token).
    pub async fn purchase(
        &self,
        content: i64,
        tier: Option<Tier>,
        avoid: &[i64],
    ) -> Result<Purchase, ClientError> {
        let mut req = PurchaseRequest::download(content, tier);
        req.avoid = avoid.to_vec();
        self.order(&req).await
    }

    /// Designation and ticket for any purchase: through a home server, a
    /// rental, a kiosk order (user token).
    pub async fn order(&self, request: &PurchaseRequest) -> Result<Purchase, ClientError> {
        self.order_once(request, None).await
    }

    /// A purchase under an idempotency key: sent again with the same key
    /// (its answer was lost), it answers the same delivery, never a
    /// second one.
    pub async fn order_once(
        &self,
        request: &PurchaseRequest,
        key: Option<&str>,
    ) -> Result<Purchase, ClientError> {
        let mut req = self
            .req(reqwest::Method::POST, "/v1/purchases")
            .json(request);
        if let Some(k) = key {
            req = req.header("idempotency-key", k);
        }
        json(req.send().await?).await
    }

    /// Any JSON call of the origin's API (`POST /v1/members/apply` …).
    pub async fn call(
        &self,
        method: reqwest::Method,
        path: &str,
        body: Option<&serde_json::Value>,
    ) -> Result<serde_json::Value, ClientError> {
        let mut req = self.req(method, path);
        if let Some(b) = body {
            req = req.json(b);
        }
        let resp = req.send().await?;
        // 204 No Content (a DELETE): nothing to decode.
        if resp.status() == reqwest::StatusCode::NO_CONTENT {
            return Ok(serde_json::Value::Null);
        }
        json(resp).await
    }

    /// Home servers and kiosks (any account).
    pub async fn sites(&self) -> Result<Vec<tracecast_delivery::api::SiteInfo>, ClientError> {
        json(self.req(reqwest::Method::GET, "/v1/sites").send().await?).await
    }

    /// The caller's invoice (user), or a user's (administrator).
    pub async fn invoice(&self, user: Option<&str>) -> Result<Invoice, ClientError> {
        let mut req = self.req(reqwest::Method::GET, "/v1/invoice");
        match user {
            // A ledger account (`store:corner`): administrators.
            Some(a) if a.contains(':') => req = req.query(&[("account", a)]),
            Some(u) => req = req.query(&[("user", u)]),
            None => {}
        }
        json(req.send().await?).await
    }

    /// Issues every settling account's statement now (administrator).
    pub async fn issue_statements(
        &self,
    ) -> Result<tracecast_delivery::api::IssuedStatements, ClientError> {
        json(
            self.req(reqwest::Method::POST, "/v1/statements")
                .send()
                .await?,
        )
        .await
    }

    /// Pays what the caller's ledger account owes through the origin's
    /// payment provider (a user's, provider's, operator's, store's or
    /// building manager's token).
    pub async fn pay(&self, request: &PaymentRequest) -> Result<PaymentReceipt, ClientError> {
        json(
            self.req(reqwest::Method::POST, "/v1/payments")
                .json(request)
                .send()
                .await?,
        )
        .await
    }

    /// Every ledger posting (administrator), as CSV text.
    pub async fn ledger_csv(&self) -> Result<String, ClientError> {
        let resp = self
            .req(reqwest::Method::GET, "/v1/ledger")
            .query(&[("format", "csv")])
            .send()
            .await?;
        if !resp.status().is_success() {
            return Err(refused(resp).await);
        }
        Ok(resp.text().await?)
    }

    /// Every ledger posting (administrator).
    pub async fn ledger(&self) -> Result<Vec<tracecast_delivery::api::Posting>, ClientError> {
        json(self.req(reqwest::Method::GET, "/v1/ledger").send().await?).await
    }

    /// The deliveries the caller may see (a user: theirs; a provider: of
    /// its contents; the administrator: all), newest first; of one content
    /// with `content`.
    pub async fn deliveries(
        &self,
        content: Option<i64>,
    ) -> Result<Vec<tracecast_delivery::api::DeliveryInfo>, ClientError> {
        let mut req = self.req(reqwest::Method::GET, "/v1/deliveries");
        if let Some(c) = content {
            req = req.query(&[("content", c)]);
        }
        json(req.send().await?).await
    }

    /// The edge registry with each edge's holdings (administrator,
    /// provider).
    pub async fn edges(&self) -> Result<Vec<tracecast_delivery::api::EdgeInfo>, ClientError> {
        json(self.req(reqwest::Method::GET, "/v1/edges").send().await?).await
    }

    /// Registers the calling provider to use an edge at its published
    /// terms (provider).
    pub async fn sign_contract(
        &self,
        edge: &str,
    ) -> Result<tracecast_delivery::api::ContractInfo, ClientError> {
        let body = tracecast_delivery::api::NewContract { edge: edge.into() };
        json(
            self.req(reqwest::Method::POST, "/v1/contracts")
                .json(&body)
                .send()
                .await?,
        )
        .await
    }

    /// Contracts: a provider's own, an edge's, or all (administrator).
    pub async fn contracts(
        &self,
    ) -> Result<Vec<tracecast_delivery::api::ContractInfo>, ClientError> {
        json(
            self.req(reqwest::Method::GET, "/v1/contracts")
                .send()
                .await?,
        )
        .await
    }

    /// Ends the calling provider's contract with an edge (provider).
    pub async fn end_contract(
        &self,
        edge: &str,
    ) -> Result<tracecast_delivery::api::ContractInfo, ClientError> {
        // Account names are a-z 0-9 . _ -: nothing to escape.
        let path = format!("/v1/contracts/{edge}");
        json(self.req(reqwest::Method::DELETE, &path).send().await?).await
    }

    /// Every account's balance (administrator).
    pub async fn balances(&self) -> Result<tracecast_delivery::api::Balances, ClientError> {
        json(
            self.req(reqwest::Method::GET, "/v1/ledger/balances")
                .send()
                .await?,
        )
        .await
    }

    /// An edge's report of what it holds (edge token).
    pub async fn edge_state(&self, state: &EdgeState) -> Result<(), ClientError> {
        let resp = self
            .req(reqwest::Method::POST, "/v1/edges/state")
            .json(state)
            .send()
            .await?;
        if !resp.status().is_success() {
            return Err(refused(resp).await);
        }
        Ok(())
    }

    /// Replaces a token: the caller's own (`None`), or an account's
    /// (administrator). The answer carries the new token, shown once.
    pub async fn replace_token(
        &self,
        account: Option<(tracecast_delivery::AccountKind, &str)>,
    ) -> Result<AccountInfo, ClientError> {
        let path = match account {
            Some((kind, name)) => format!(
                "/v1/accounts/{}/{}/token",
                kind.as_str(),
                tracecast_share::url_segment(name)
            ),
            None => "/v1/account/token".to_owned(),
        };
        json(self.req(reqwest::Method::POST, &path).send().await?).await
    }

    /// The key of a protected delivery's copy (the delivery's edge).
    pub async fn copy_key(
        &self,
        delivery: i64,
    ) -> Result<tracecast_delivery::api::CopyKey, ClientError> {
        json(
            self.req(
                reqwest::Method::GET,
                &format!("/v1/deliveries/{delivery}/key"),
            )
            .send()
            .await?,
        )
        .await
    }

    /// A licence for one of the caller's deliveries in `recipient`'s
    /// system (`clearkey`, `age:…`, `device:…`; a partner names the user
    /// it bought for). A licence follows the delivery's settlement (its
    /// edge's report reaching the origin): asked too early it is refused
    /// `not_settled`, and asked again here for up to `wait`.
    pub async fn licence(
        &self,
        delivery: i64,
        recipient: &str,
        for_user: Option<&str>,
        wait: std::time::Duration,
    ) -> Result<tracecast_protect::SignedLicence, ClientError> {
        let body = tracecast_protect::api::LicenceRequest {
            delivery,
            recipient: recipient.to_owned(),
            for_user: for_user.map(str::to_owned),
        };
        let deadline = tokio::time::Instant::now() + wait;
        loop {
            let post = self.req(reqwest::Method::POST, "/v1/licences").json(&body);
            match async { json(post.send().await?).await }.await {
                Err(ClientError::Refused { code, .. })
                    if code == "not_settled" && tokio::time::Instant::now() < deadline =>
                {
                    tokio::time::sleep(std::time::Duration::from_millis(300)).await;
                }
                other => return other,
            }
        }
    }

    /// A rendition's bytes (edge token), checked against the SHA-256 the
    /// origin recorded at ingest.
    pub async fn rendition(
        &self,
        content: i64,
        tier: Tier,
        expect_sha256: &str,
    ) -> Result<Bytes, ClientError> {
        self.checked_get(
            &format!("/v1/contents/{content}/renditions/{tier}"),
            &format!("rendition {content}/{tier}"),
            expect_sha256,
        )
        .await
    }

    /// An A/B variant (`which` is `a` or `b`) of a rendition (edges),
    /// checked against the hash the origin recorded.
    pub async fn ab_variant(
        &self,
        content: i64,
        tier: Tier,
        which: &str,
        expect_sha256: &str,
    ) -> Result<Bytes, ClientError> {
        self.checked_get(
            &format!("/v1/contents/{content}/renditions/{tier}/{which}"),
            &format!("variant {which} of {content}/{tier}"),
            expect_sha256,
        )
        .await
    }

    /// A file of a video's HLS variants (`a/seg_00003.m4s`; edges),
    /// checked against the hash the origin recorded.
    pub async fn hls_file(
        &self,
        content: i64,
        file: &str,
        expect_sha256: &str,
    ) -> Result<Bytes, ClientError> {
        self.checked_get(
            &format!("/v1/contents/{content}/hls/{file}"),
            &format!("{file} of video {content}"),
            expect_sha256,
        )
        .await
    }

    async fn checked_get(
        &self,
        path: &str,
        what: &str,
        expect_sha256: &str,
    ) -> Result<Bytes, ClientError> {
        let resp = self.req(reqwest::Method::GET, path).send().await?;
        if !resp.status().is_success() {
            return Err(refused(resp).await);
        }
        let bytes = resp.bytes().await?;
        let got = hex::encode(Sha256::digest(&bytes));
        if got != expect_sha256 {
            return Err(ClientError::Integrity(format!(
                "{what} hashes to {got}, not the recorded {expect_sha256}; refused"
            )));
        }
        Ok(bytes)
    }

    /// Sends a file to the origin to read its mark and find the delivery.
    pub async fn trace(&self, file: &Path) -> Result<TraceReport, ClientError> {
        self.trace_as(file, None).await
    }

    /// [`Self::trace`], naming the content the file is a copy of (for
    /// pre-marked content whose metadata was stripped).
    pub async fn trace_as(
        &self,
        file: &Path,
        content: Option<i64>,
    ) -> Result<TraceReport, ClientError> {
        let bytes = tokio::fs::read(file)
            .await
            .map_err(|e| ClientError::Local(format!("cannot read {}: {e}", file.display())))?;
        let name = file.file_name().and_then(|n| n.to_str()).unwrap_or("file");
        self.trace_body(name, content, false, bytes.into()).await
    }

    /// Traces a file sent as `body` (the web console passes a browser's
    /// upload through); `timeline`: read the mark along the file too.
    pub async fn trace_body(
        &self,
        filename: &str,
        content: Option<i64>,
        timeline: bool,
        body: reqwest::Body,
    ) -> Result<TraceReport, ClientError> {
        let mut query = vec![("filename", filename.to_owned())];
        if let Some(c) = content {
            query.push(("content", c.to_string()));
        }
        if timeline {
            query.push(("timeline", "true".into()));
        }
        json(
            self.req(reqwest::Method::POST, "/v1/trace")
                .query(&query)
                .header(CONTENT_TYPE, "application/octet-stream")
                .body(body)
                .send()
                .await?,
        )
        .await
    }

    /// A delivery with its ledger postings.
    pub async fn delivery(
        &self,
        id: i64,
    ) -> Result<tracecast_delivery::api::DeliveryDetail, ClientError> {
        json(
            self.req(reqwest::Method::GET, &format!("/v1/deliveries/{id}"))
                .send()
                .await?,
        )
        .await
    }
}

/// Client of an edge, for buyers.
#[derive(Debug, Clone)]
pub struct EdgeClient {
    http: reqwest::Client,
    /// For the delivery request, which waits while the copy is marked (a
    /// busy edge queues markings).
    marking: reqwest::Client,
}

/// What an edge answered a buyer who would not wait.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum EarlyDelivery {
    /// The copy is whole (kept from before, or made before the answer).
    Ready(Box<CopyInfo>),
    /// The copy is being marked; its link serves it as it grows.
    UnderWay(CopyUnderWay),
}

/// How a download ended.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Downloaded {
    pub path: PathBuf,
    pub bytes: u64,
    /// Bytes that were already on disk from an interrupted attempt.
    pub resumed_from: u64,
}

impl EdgeClient {
    pub fn new() -> Result<Self, ClientError> {
        Ok(Self {
            // A stalled edge is noticed within seconds, so the buyer can
            // resume or turn to another edge.
            http: http(Some(Duration::from_secs(15)))?,
            marking: reqwest::Client::builder()
                .connect_timeout(Duration::from_secs(5))
                .timeout(Duration::from_secs(900))
                .build()?,
        })
    }

    /// Shows the ticket to the edge (`address` from the designation); the
    /// edge marks a copy (or finds the one it kept) and answers its link.
    pub async fn deliver(&self, address: &str, ticket: &str) -> Result<CopyInfo, ClientError> {
        let base = check_base(address)?;
        json(
            self.marking
                .post(format!("{base}/v1/deliveries"))
                .json(&DeliveryRequest {
                    ticket: ticket.to_owned(),
                })
                .send()
                .await?,
        )
        .await
    }

    /// Shows the ticket, asking the edge not to wait for the marking
    /// (`Prefer: respond-async`): a copy being marked is answered at once
    /// with a link that follows it ([`Self::follow`]); one already made
    /// (or one the edge makes before answering) comes as from
    /// [`Self::deliver`].
    pub async fn deliver_early(
        &self,
        address: &str,
        ticket: &str,
    ) -> Result<EarlyDelivery, ClientError> {
        let base = check_base(address)?;
        // An edge may still mark before answering (a picture, a video, a
        // copy for a home): the marking client's patience.
        let resp = self
            .marking
            .post(format!("{base}/v1/deliveries"))
            .header("prefer", "respond-async")
            .json(&DeliveryRequest {
                ticket: ticket.to_owned(),
            })
            .send()
            .await?;
        if resp.status() == StatusCode::ACCEPTED {
            return Ok(EarlyDelivery::UnderWay(json(resp).await?));
        }
        Ok(EarlyDelivery::Ready(Box::new(json(resp).await?)))
    }

    /// Saves a copy being marked to `out`'s part file as the edge writes
    /// it (the part is started afresh). It ends when the copy is whole;
    /// its hash is checked after, by [`Self::download`] on the copy's
    /// [`CopyInfo`] (which then has nothing left to fetch). A break leaves
    /// the part, which that download resumes. Answers the bytes saved.
    pub async fn follow(
        &self,
        copy: &CopyUnderWay,
        out: &Path,
        limit: Option<u64>,
        progress: &(dyn Fn(u64, u64) + Send + Sync),
    ) -> Result<u64, ClientError> {
        let io = |e: std::io::Error| ClientError::Local(format!("writing {}: {e}", out.display()));
        let part = part_path(out);
        let resp = self.http.get(&copy.url).send().await?;
        if resp.status() != StatusCode::OK {
            return Err(refused(resp).await);
        }
        let mut file = tokio::fs::File::create(&part).await.map_err(io)?;
        // No length yet: the progress shows what arrived.
        save_body(resp, &mut file, out, 0, 0, limit, progress).await
    }

    /// Puts a copy followed to its end ([`Self::follow`] answered `Ok`: the
    /// edge ends the transfer only once the copy is kept) in place at
    /// `out` when the edge can no longer be asked its hash: the copy's
    /// record, its length and SHA-256 taken of the bytes that came.
    pub async fn keep_followed(
        &self,
        copy: &CopyUnderWay,
        out: &Path,
    ) -> Result<(CopyInfo, Downloaded), ClientError> {
        let io = |e: std::io::Error| ClientError::Local(format!("writing {}: {e}", out.display()));
        let part = part_path(out);
        let (bytes, sha256) = hash_file(&part).await.map_err(io)?;
        let info = CopyInfo {
            delivery: copy.delivery,
            url: copy.url.clone(),
            link_expires: copy.link_expires,
            bytes,
            sha256,
            media_type: copy.media_type.clone(),
            filename: copy.filename.clone(),
            kept: false,
            via: None,
        };
        tokio::fs::rename(&part, out).await.map_err(io)?;
        Ok((
            info,
            Downloaded {
                path: out.to_owned(),
                bytes,
                resumed_from: 0,
            },
        ))
    }

    /// Downloads a copy to `out`, resuming from `out.part` when an earlier
    /// attempt left one (Range with If-Range on the copy's ETag), checking
    /// the SHA-256 the edge announced, then renaming into place.
    pub async fn download(
        &self,
        copy: &CopyInfo,
        out: &Path,
        progress: &(dyn Fn(u64, u64) + Send + Sync),
    ) -> Result<Downloaded, ClientError> {
        self.download_limited(copy, out, None, progress).await
    }

    /// [`Self::download`] at no more than `limit` bytes per second.
    pub async fn download_limited(
        &self,
        copy: &CopyInfo,
        out: &Path,
        limit: Option<u64>,
        progress: &(dyn Fn(u64, u64) + Send + Sync),
    ) -> Result<Downloaded, ClientError> {
        let io = |e: std::io::Error| ClientError::Local(format!("writing {}: {e}", out.display()));
        let part = part_path(out);
        let mut have = match tokio::fs::metadata(&part).await {
            Ok(m) if m.len() <= copy.bytes => m.len(),
            Ok(_) => {
                tokio::fs::remove_file(&part).await.map_err(io)?;
                0
            }
            Err(_) => 0,
        };
        let resumed_from = have;
        let etag = format!("\"{}\"", &copy.sha256);
        let mut req = self.http.get(&copy.url);
        if have > 0 {
            req = req
                .header(RANGE, format!("bytes={have}-"))
                .header(reqwest::header::IF_RANGE, &etag);
        }
        let resp = req.send().await?;
        let mut file = match resp.status() {
            StatusCode::PARTIAL_CONTENT if have > 0 => tokio::fs::OpenOptions::new()
                .append(true)
                .open(&part)
                .await
                .map_err(io)?,
            StatusCode::OK => {
                have = 0;
                tokio::fs::File::create(&part).await.map_err(io)?
            }
            StatusCode::RANGE_NOT_SATISFIABLE if have == copy.bytes => {
                tokio::fs::OpenOptions::new()
                    .append(true)
                    .open(&part)
                    .await
                    .map_err(io)?
            }
            _ => return Err(refused(resp).await),
        };
        // Nothing was left to fetch (the part is whole: a followed copy, an
        // earlier run's): the 416's body is the edge's message, not bytes
        // of the copy.
        if resp.status() == StatusCode::RANGE_NOT_SATISFIABLE {
            progress(have, copy.bytes);
        } else {
            have = save_body(resp, &mut file, out, have, copy.bytes, limit, progress).await?;
        }
        drop(file);
        let (_, got) = hash_file(&part).await.map_err(io)?;
        if got != copy.sha256 {
            // A broken part must not be resumed again.
            let _ = tokio::fs::remove_file(&part).await;
            return Err(ClientError::Integrity(format!(
                "the downloaded copy hashes to {got}, not the announced {}; start again",
                copy.sha256
            )));
        }
        tokio::fs::rename(&part, out).await.map_err(io)?;
        Ok(Downloaded {
            path: out.to_owned(),
            bytes: have,
            resumed_from,
        })
    }
}

impl EdgeClient {
    /// A copy assembled from A/B variants in another form than the one it
    /// was made in (`mp3`: spliced from the MP3 variants, the same
    /// buyer's mark), downloaded whole into `out` (its length checked
    /// against what the edge announced; the form has no hash of record).
    pub async fn download_form(
        &self,
        copy: &CopyInfo,
        format: &str,
        out: &Path,
        limit: Option<u64>,
        progress: &(dyn Fn(u64, u64) + Send + Sync),
    ) -> Result<Downloaded, ClientError> {
        let io = |e: std::io::Error| ClientError::Local(format!("writing {}: {e}", out.display()));
        let part = part_path(out);
        let mut url = reqwest::Url::parse(&copy.url)
            .map_err(|e| ClientError::Local(format!("the copy's link {}: {e}", copy.url)))?;
        url.query_pairs_mut().append_pair("format", format);
        let resp = self.http.get(url).send().await?;
        if resp.status() != StatusCode::OK {
            return Err(refused(resp).await);
        }
        let announced = resp.content_length().unwrap_or(0);
        let mut file = tokio::fs::File::create(&part).await.map_err(io)?;
        let have = save_body(resp, &mut file, out, 0, announced, limit, progress).await?;
        drop(file);
        if announced == 0 || have != announced {
            let _ = tokio::fs::remove_file(&part).await;
            return Err(ClientError::Integrity(format!(
                "the {format} copy came as {have} bytes, not the {announced} announced; start again"
            )));
        }
        tokio::fs::rename(&part, out).await.map_err(io)?;
        Ok(Downloaded {
            path: out.to_owned(),
            bytes: have,
            resumed_from: 0,
        })
    }
}

/// Writes a response's body to `file` (the part of `out`, holding `have`
/// bytes) as it comes, each piece flushed (what is written is kept: a
/// break resumes after it), at no more than `limit` bytes a second, telling
/// `progress` of `total` (0: not known yet). Answers the bytes held then.
async fn save_body(
    resp: reqwest::Response,
    file: &mut tokio::fs::File,
    out: &Path,
    mut have: u64,
    total: u64,
    limit: Option<u64>,
    progress: &(dyn Fn(u64, u64) + Send + Sync),
) -> Result<u64, ClientError> {
    let io = |e: std::io::Error| ClientError::Local(format!("writing {}: {e}", out.display()));
    let mut body = resp.bytes_stream();
    progress(have, total);
    let started = std::time::Instant::now();
    let mut this_run = 0u64;
    while let Some(chunk) = body.next().await {
        let chunk = chunk?;
        file.write_all(&chunk).await.map_err(io)?;
        file.flush().await.map_err(io)?;
        have += chunk.len() as u64;
        this_run += chunk.len() as u64;
        progress(have, total);
        if let Some(rate) = limit.filter(|r| *r > 0) {
            let due = Duration::from_secs_f64(this_run as f64 / rate as f64);
            if let Some(wait) = due.checked_sub(started.elapsed()) {
                tokio::time::sleep(wait).await;
            }
        }
    }
    file.sync_all().await.map_err(io)?;
    Ok(have)
}

/// A file's length and SHA-256 (hex), read in pieces: a copy may be
/// gigabytes.
pub async fn hash_file(path: &Path) -> std::io::Result<(u64, String)> {
    use tokio::io::AsyncReadExt;
    let mut file = tokio::fs::File::open(path).await?;
    let mut hash = Sha256::new();
    let mut buf = vec![0u8; 1 << 20];
    let mut len = 0u64;
    loop {
        let n = file.read(&mut buf).await?;
        if n == 0 {
            return Ok((len, hex::encode(hash.finalize())));
        }
        hash.update(&buf[..n]);
        len += n as u64;
    }
}

/// Where an unfinished download of `out` is kept.
pub fn part_path(out: &Path) -> PathBuf {
    let mut name = out.file_name().unwrap_or_default().to_os_string();
    name.push(".part");
    out.with_file_name(name)
}

impl EdgeClient {
    /// Posts to a home server's end link: confirms a download arrived
    /// whole, or ends a rental. The home deletes its copy and reports.
    pub async fn finish(
        &self,
        done_url: &str,
    ) -> Result<tracecast_delivery::api::SiteCopyEnded, ClientError> {
        json(self.http.post(done_url).send().await?).await
    }
}

/// Client of a kiosk, for the shop's operator (the kiosk's own token).
#[derive(Debug, Clone)]
pub struct KioskClient {
    base: String,
    token: String,
    http: reqwest::Client,
}

impl KioskClient {
    pub fn new(base: &str, token: &str) -> Result<Self, ClientError> {
        Ok(Self {
            base: check_base(base)?,
            token: token.trim().to_owned(),
            http: http(None)?,
        })
    }

    /// The orders and their images.
    pub async fn discs(&self) -> Result<Vec<tracecast_delivery::api::KioskDisc>, ClientError> {
        json(
            self.http
                .get(format!("{}/v1/discs", self.base))
                .bearer_auth(&self.token)
                .send()
                .await?,
        )
        .await
    }

    /// Saves an order's image to `out`, checked against its SHA-256.
    pub async fn image(&self, delivery: i64, out: &Path) -> Result<u64, ClientError> {
        use futures::StreamExt;
        use sha2::Digest;
        use tokio::io::AsyncWriteExt;
        let resp = self
            .http
            .get(format!("{}/v1/discs/{delivery}/image", self.base))
            .bearer_auth(&self.token)
            .send()
            .await?;
        if !resp.status().is_success() {
            return Err(refused(resp).await);
        }
        let want = resp
            .headers()
            .get(reqwest::header::ETAG)
            .and_then(|v| v.to_str().ok())
            .map(|v| v.trim_matches('"').to_owned())
            .unwrap_or_default();
        let io = |e: std::io::Error| ClientError::Local(format!("writing {}: {e}", out.display()));
        let mut file = tokio::fs::File::create(out).await.map_err(io)?;
        let mut sha = sha2::Sha256::new();
        let mut n = 0u64;
        let mut body = resp.bytes_stream();
        while let Some(chunk) = body.next().await {
            let chunk = chunk?;
            sha.update(&chunk);
            n += chunk.len() as u64;
            file.write_all(&chunk).await.map_err(io)?;
        }
        file.sync_all().await.map_err(io)?;
        if hex::encode(sha.finalize()) != want {
            return Err(ClientError::Integrity(format!(
                "the image of order {delivery} does not match its SHA-256"
            )));
        }
        Ok(n)
    }

    /// The disc is burned: the kiosk deletes the image.
    pub async fn burned(
        &self,
        delivery: i64,
    ) -> Result<tracecast_delivery::api::DiscBurned, ClientError> {
        json(
            self.http
                .post(format!("{}/v1/discs/{delivery}/burned", self.base))
                .bearer_auth(&self.token)
                .send()
                .await?,
        )
        .await
    }

    /// The burned disc of an order is posted (the shop's operator).
    pub async fn shipped(
        &self,
        delivery: i64,
        tracking: Option<String>,
    ) -> Result<(), ClientError> {
        let resp = self
            .http
            .post(format!("{}/v1/discs/{delivery}/shipped", self.base))
            .bearer_auth(&self.token)
            .json(&tracecast_delivery::api::DiscShipped { tracking })
            .send()
            .await?;
        if !resp.status().is_success() {
            return Err(crate::mailbox::refused(resp).await);
        }
        Ok(())
    }
}
