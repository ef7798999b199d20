//! The web console: server-rendered HTML pages for providers, users and
//! operators, served under `/console`.
//!
//! The console holds no data and no authority of its own. A person signs
//! in with the same token the API takes; the console keeps it in an
//! HttpOnly, SameSite=Strict cookie and calls the origin's JSON API with it
//! for every page. So a page can show only what the API lets that token
//! see: the API's authorisation is the one rule, and the console adds a
//! role check per page on top (a user never gets the operator's pages).
//!
//! Templates (`templates/`, MiniJinja, HTML-escaped) and the stylesheet
//! are compiled into the binary: nothing is fetched from elsewhere.

use std::sync::Arc;

use axum::extract::{Form, Path, Query, State};
use axum::http::{header, HeaderMap, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Redirect, Response};
use axum::routing::{get, post};
use axum::Router;
use minijinja::{context, Environment};
use serde::Deserialize;
use tracecast_client::{ClientError, OriginClient};
use tracecast_delivery::api::{AccountInfo, ContentInfo};
use tracecast_delivery::{AccountKind, CallerKind};

mod view;

/// Name of the session cookie (it holds the API token).
pub const COOKIE: &str = "tracecast_console";

/// Settings of the console.
#[derive(Debug, Clone)]
pub struct ConsoleConfig {
    /// The origin's API base URL, as this process reaches it.
    pub origin: String,
    /// The mailbox's base URL (the origin's, unless the mailbox runs in a
    /// process of its own).
    pub mailbox: String,
    /// Mark the session cookie `Secure` (behind HTTPS).
    pub secure_cookies: bool,
}

/// Why a page was not shown.
#[derive(Debug, thiserror::Error)]
pub enum PageError {
    #[error("sign in first")]
    SignIn,
    #[error("{0}")]
    Forbidden(String),
    #[error("{0}")]
    NotFound(String),
    #[error("{0}")]
    BadRequest(String),
    #[error("the origin could not answer: {0}")]
    Upstream(String),
    #[error("the page could not be drawn: {0}")]
    Render(#[from] minijinja::Error),
}

impl PageError {
    fn status(&self) -> StatusCode {
        match self {
            Self::SignIn => StatusCode::SEE_OTHER,
            Self::Forbidden(_) => StatusCode::FORBIDDEN,
            Self::NotFound(_) => StatusCode::NOT_FOUND,
            Self::BadRequest(_) => StatusCode::BAD_REQUEST,
            Self::Upstream(_) => StatusCode::BAD_GATEWAY,
            Self::Render(_) => StatusCode::INTERNAL_SERVER_ERROR,
        }
    }
}

impl From<ClientError> for PageError {
    fn from(e: ClientError) -> Self {
        match e {
            ClientError::Refused {
                status, message, ..
            } => match status.as_u16() {
                401 => Self::SignIn,
                403 => Self::Forbidden(message),
                404 => Self::NotFound(message),
                400 | 422 => Self::BadRequest(message),
                _ => Self::Upstream(message),
            },
            other => Self::Upstream(other.to_string()),
        }
    }
}

struct Console {
    config: ConsoleConfig,
    env: Environment<'static>,
}

type Shared = Arc<Console>;

/// A response for a failed page: the sign-in page, or an error page.
struct Failed(Shared, PageError);

impl IntoResponse for Failed {
    fn into_response(self) -> Response {
        let Failed(c, e) = self;
        if matches!(e, PageError::SignIn) {
            return Redirect::to("/console/login").into_response();
        }
        if matches!(e, PageError::Upstream(_) | PageError::Render(_)) {
            tracing::warn!(error = %e, "console page failed");
        }
        let status = e.status();
        let body = c
            .env
            .get_template("error.html")
            .and_then(|t| {
                t.render(context! {
                    status => status.as_u16(),
                    reason => status.canonical_reason().unwrap_or(""),
                    message => e.to_string(),
                })
            })
            .unwrap_or_else(|_| e.to_string());
        (status, html_headers(), body).into_response()
    }
}

type Page = Result<Response, Failed>;

/// Headers of every page: HTML, never cached, never framed, scripts and
/// styles from this server only.
fn html_headers() -> [(header::HeaderName, HeaderValue); 5] {
    [
        (
            header::CONTENT_TYPE,
            HeaderValue::from_static("text/html; charset=utf-8"),
        ),
        (header::CACHE_CONTROL, HeaderValue::from_static("no-store")),
        (
            header::CONTENT_SECURITY_POLICY,
            HeaderValue::from_static(
                "default-src 'self'; img-src 'self' data:; media-src 'self' http: https:; frame-ancestors 'none'; form-action 'self'",
            ),
        ),
        (
            header::X_CONTENT_TYPE_OPTIONS,
            HeaderValue::from_static("nosniff"),
        ),
        (
            header::REFERRER_POLICY,
            HeaderValue::from_static("same-origin"),
        ),
    ]
}

/// The console's routes, under `/console`.
pub fn router(config: ConsoleConfig) -> Result<Router, minijinja::Error> {
    let mut env = Environment::new();
    for (name, source) in view::TEMPLATES {
        env.add_template(name, source)?;
    }
    view::add_filters(&mut env);
    let console = Arc::new(Console {
        config: ConsoleConfig {
            origin: config.origin.trim_end_matches('/').to_owned(),
            mailbox: config.mailbox.trim_end_matches('/').to_owned(),
            ..config
        },
        env,
    });
    Ok(Router::new()
        .route("/console", get(home))
        .route("/console/", get(home))
        .route("/console/login", get(login_page).post(login))
        .route("/console/logout", post(logout))
        .route("/console/catalog", get(catalog))
        .route("/console/contents/{id}", get(content_page))
        .route("/console/library", get(library))
        .route("/console/network", get(network))
        .route("/console/invoices", get(invoices))
        .route("/console/store", get(store))
        .route("/console/buy", post(buy))
        .route("/console/messages", get(messages))
        .route("/console/licences", get(licences).post(new_licence))
        .route("/console/rent", post(rent))
        .route("/console/members", get(members))
        .route("/console/contents", post(upload))
        .route("/console/trace", get(trace_page).post(trace))
        .route("/console/static/console.css", get(stylesheet))
        .route("/console/static/console.js", get(script))
        .with_state(console))
}

/// Who is signed in.
struct Session {
    client: OriginClient,
    account: AccountInfo,
}

const ADMIN: CallerKind = CallerKind::Admin;
const PROVIDER: CallerKind = CallerKind::Account(AccountKind::Provider);
const USER: CallerKind = CallerKind::Account(AccountKind::User);
const OPERATOR: CallerKind = CallerKind::Account(AccountKind::Operator);
const STORE: CallerKind = CallerKind::Account(AccountKind::Store);
const MANAGER: CallerKind = CallerKind::Account(AccountKind::Manager);
/// Who has a ledger account of their own: an invoice (a statement) and a box.
const SETTLING: [CallerKind; 5] = [USER, PROVIDER, OPERATOR, STORE, MANAGER];

impl Session {
    fn is(&self, kind: CallerKind) -> bool {
        self.account.kind == kind
    }

    /// Only these kinds of account see the page.
    fn only(&self, kinds: &[CallerKind], page: &str) -> Result<(), PageError> {
        if kinds.contains(&self.account.kind) {
            Ok(())
        } else {
            Err(PageError::Forbidden(format!(
                "the {page} page is not for a {} account",
                self.account.kind
            )))
        }
    }
}

/// The session's token, from the cookie.
fn token(headers: &HeaderMap) -> Option<String> {
    headers
        .get_all(header::COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(';'))
        .filter_map(|kv| kv.trim().split_once('='))
        .find(|(k, _)| *k == COOKIE)
        .map(|(_, v)| v.trim().to_owned())
        .filter(|t| !t.is_empty())
}

async fn session(c: &Console, headers: &HeaderMap) -> Result<Session, PageError> {
    let token = token(headers).ok_or(PageError::SignIn)?;
    signed_in(c, &token).await
}

async fn signed_in(c: &Console, token: &str) -> Result<Session, PageError> {
    let client = OriginClient::new(&c.config.origin, token)?;
    let account = client.account().await?;
    Ok(Session { client, account })
}

/// A cross-site form post is refused: the browser says where it came from.
fn same_site(headers: &HeaderMap) -> Result<(), PageError> {
    match headers.get("sec-fetch-site").and_then(|v| v.to_str().ok()) {
        None | Some("same-origin") | Some("none") => Ok(()),
        Some(other) => Err(PageError::Forbidden(format!(
            "a form from another site ({other}) is refused"
        ))),
    }
}

fn render(c: &Console, name: &str, ctx: minijinja::Value) -> Result<Response, PageError> {
    let body = c.env.get_template(name)?.render(ctx)?;
    Ok((html_headers(), body).into_response())
}

/// The navigation a session sees.
fn nav(s: &Session) -> minijinja::Value {
    let links: &[(&str, &str)] = match s.account.kind {
        ADMIN => &[
            ("/console/network", "Network"),
            ("/console/members", "Members"),
            ("/console/catalog", "Catalog"),
            ("/console/trace", "Trace"),
        ],
        PROVIDER => &[
            ("/console/catalog", "Catalog"),
            ("/console/trace", "Trace"),
            ("/console/invoices", "Statement"),
            ("/console/messages", "Messages"),
        ],
        OPERATOR | STORE | MANAGER => &[
            ("/console/invoices", "Statement"),
            ("/console/messages", "Messages"),
        ],
        USER => &[
            ("/console/store", "Store"),
            ("/console/library", "Library"),
            ("/console/invoices", "Invoices"),
            ("/console/messages", "Messages"),
            ("/console/licences", "Licences"),
        ],
        _ => &[],
    };
    context! {
        account => &s.account,
        links => links.iter().map(|(href, label)| context! { href, label }).collect::<Vec<_>>(),
    }
}

async fn home(State(c): State<Shared>, headers: HeaderMap) -> Page {
    let s = session(&c, &headers)
        .await
        .map_err(|e| Failed(c.clone(), e))?;
    let to = match s.account.kind {
        ADMIN => "/console/network",
        PROVIDER => "/console/catalog",
        USER => "/console/library",
        OPERATOR | STORE | MANAGER => "/console/invoices",
        other => {
            return Err(Failed(
                c.clone(),
                PageError::Forbidden(format!("the console has no pages for a {other} account")),
            ))
        }
    };
    Ok(Redirect::to(to).into_response())
}

async fn login_page(State(c): State<Shared>) -> Page {
    render(&c, "login.html", context! { error => () }).map_err(|e| Failed(c.clone(), e))
}

#[derive(Deserialize)]
struct LoginForm {
    token: String,
}

async fn login(State(c): State<Shared>, headers: HeaderMap, Form(f): Form<LoginForm>) -> Page {
    let fail = |e| Failed(c.clone(), e);
    same_site(&headers).map_err(fail)?;
    let token = f.token.trim();
    let signed = if token.is_empty() || !token.bytes().all(|b| b.is_ascii_graphic()) {
        Err(PageError::SignIn)
    } else {
        signed_in(&c, token).await
    };
    match signed {
        Ok(s) => {
            tracing::info!(account = %s.account.name, kind = %s.account.kind, "console sign-in");
            let cookie = format!(
                "{COOKIE}={token}; Path=/console; HttpOnly; SameSite=Strict{}",
                if c.config.secure_cookies {
                    "; Secure"
                } else {
                    ""
                }
            );
            let mut resp = Redirect::to("/console").into_response();
            resp.headers_mut().insert(
                header::SET_COOKIE,
                HeaderValue::from_str(&cookie)
                    .map_err(|_| fail(PageError::BadRequest("a malformed token".into())))?,
            );
            Ok(resp)
        }
        Err(PageError::SignIn) | Err(PageError::Forbidden(_)) => {
            let mut resp = render(
                &c,
                "login.html",
                context! { error => "That token is not valid here." },
            )
            .map_err(fail)?;
            *resp.status_mut() = StatusCode::UNAUTHORIZED;
            Ok(resp)
        }
        Err(e) => Err(fail(e)),
    }
}

async fn logout(State(c): State<Shared>, headers: HeaderMap) -> Page {
    same_site(&headers).map_err(|e| Failed(c.clone(), e))?;
    let mut resp = Redirect::to("/console/login").into_response();
    resp.headers_mut().insert(
        header::SET_COOKIE,
        HeaderValue::from_str(&format!(
            "{COOKIE}=; Path=/console; HttpOnly; SameSite=Strict; Max-Age=0"
        ))
        .expect("a valid header"),
    );
    Ok(resp)
}

/// A provider's own contents (an administrator sees every provider's).
async fn catalog(State(c): State<Shared>, headers: HeaderMap) -> Page {
    let run = async {
        let s = session(&c, &headers).await?;
        s.only(&[PROVIDER, ADMIN], "catalog")?;
        let contents: Vec<ContentInfo> = s
            .client
            .contents()
            .await?
            .into_iter()
            .filter(|ci| s.is(ADMIN) || ci.provider_id == s.account.id)
            .collect();
        let deliveries = s.client.deliveries(None).await?;
        let sold = view::sold_per_content(&deliveries);
        // What the ledger owes the provider (their statement's balance,
        // negated: a provider's credits are negative postings).
        let earned = if s.is(PROVIDER) {
            Some(-s.client.invoice(None).await?.balance_cents)
        } else {
            None
        };
        // A provider's contracts with edge operators: which edges may
        // serve its content, at what fees.
        let contracts = if s.is(PROVIDER) {
            Some(s.client.contracts().await?)
        } else {
            None
        };
        render(
            &c,
            "catalog.html",
            context! {
                nav => nav(&s),
                earned_cents => earned,
                contracts => contracts,
                contents => contents.iter().map(|ci| context! {
                    content => ci,
                    sold => sold.get(&ci.id).copied().unwrap_or_default(),
                }).collect::<Vec<_>>(),
            },
        )
    };
    run.await.map_err(|e| Failed(c.clone(), e))
}

/// One content: its renditions and its deliveries.
async fn content_page(State(c): State<Shared>, headers: HeaderMap, Path(id): Path<String>) -> Page {
    let run = async {
        let s = session(&c, &headers).await?;
        s.only(&[PROVIDER, ADMIN], "content")?;
        let id: i64 = id
            .parse()
            .ok()
            .filter(|v| *v > 0)
            .ok_or_else(|| PageError::NotFound(format!("{id:?} is not a content id")))?;
        let ci = s.client.content(id).await?;
        // Another provider's content is as missing as an unknown one.
        if !s.is(ADMIN) && ci.provider_id != s.account.id {
            return Err(PageError::NotFound(format!("no content {id}")));
        }
        let deliveries = s.client.deliveries(Some(id)).await?;
        let ledger = if s.is(PROVIDER) {
            Some(view::ledger_revenue(
                &s.client.invoice(None).await?,
                &deliveries,
            ))
        } else {
            None
        };
        render(
            &c,
            "content.html",
            context! {
                nav => nav(&s),
                content => ci,
                deliveries => deliveries,
                revenue_cents => view::revenue_cents(&deliveries),
                ledger_cents => ledger,
            },
        )
    };
    run.await.map_err(|e| Failed(c.clone(), e))
}

/// A user's deliveries, with the contents' titles.
async fn library(State(c): State<Shared>, headers: HeaderMap) -> Page {
    let run = async {
        let s = session(&c, &headers).await?;
        s.only(&[USER], "library")?;
        let deliveries = s.client.deliveries(None).await?;
        let contents = s.client.contents().await?;
        let rows = view::library_rows(&deliveries, &contents);
        render(
            &c,
            "library.html",
            context! { nav => nav(&s), rows => rows },
        )
    };
    run.await.map_err(|e| Failed(c.clone(), e))
}

/// The operator's view: edges and sites.
async fn network(State(c): State<Shared>, headers: HeaderMap) -> Page {
    let run = async {
        let s = session(&c, &headers).await?;
        s.only(&[ADMIN], "network")?;
        let edges = s.client.edges().await?;
        let sites = s.client.sites().await?;
        // Each server's own word on its cache and load, asked now.
        let addresses: Vec<String> = edges
            .iter()
            .map(|e| e.address.clone())
            .chain(sites.iter().map(|s| s.address.clone()))
            .collect();
        let health = view::health_of(&addresses).await;
        render(
            &c,
            "network.html",
            context! { nav => nav(&s), edges => edges, sites => sites, health => health },
        )
    };
    run.await.map_err(|e| Failed(c.clone(), e))
}

#[derive(Deserialize)]
struct UploadQuery {
    title: String,
    /// `1.50`.
    price: String,
    filename: Option<String>,
    #[serde(default)]
    ab: bool,
}

/// `POST /console/contents?title&price&filename[&ab]`, the file as the
/// body (the catalog page's script, which shows the upload's progress):
/// passed through to the origin's ingest as it arrives. Answers JSON: the
/// content, or `{message}`.
async fn upload(
    State(c): State<Shared>,
    headers: HeaderMap,
    query: Result<Query<UploadQuery>, axum::extract::rejection::QueryRejection>,
    body: axum::body::Body,
) -> Response {
    let run = async {
        script_request(&headers)?;
        let s = session(&c, &headers).await?;
        s.only(&[PROVIDER], "ingest")?;
        let Query(q) = query.map_err(|e| PageError::BadRequest(e.body_text()))?;
        let price_cents = tracecast_ledger::parse_money(&q.price).map_err(PageError::BadRequest)?;
        let len = headers
            .get(header::CONTENT_LENGTH)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.parse().ok());
        let filename = q.filename.unwrap_or_else(|| "upload".into());
        let info = s
            .client
            .add_content_body(
                &tracecast_client::ContentOptions {
                    title: &q.title,
                    price_cents,
                    marking: if q.ab {
                        tracecast_delivery::ab::Marking::Ab
                    } else {
                        tracecast_delivery::ab::Marking::Direct
                    },
                    ..Default::default()
                },
                &filename,
                len,
                reqwest::Body::wrap_stream(body.into_data_stream()),
            )
            .await?;
        tracing::info!(content = info.id, provider = %s.account.name, "ingested from the console");
        Ok(info)
    };
    match run.await {
        Ok(info) => (StatusCode::CREATED, axum::Json(info)).into_response(),
        Err(e) => script_error(e),
    }
}

/// The trace page: upload a suspected leak.
async fn trace_page(State(c): State<Shared>, headers: HeaderMap) -> Page {
    let run = async {
        let s = session(&c, &headers).await?;
        s.only(&[PROVIDER, ADMIN], "trace")?;
        render(&c, "trace.html", context! { nav => nav(&s) })
    };
    run.await.map_err(|e| Failed(c.clone(), e))
}

#[derive(Deserialize)]
struct TraceQuery {
    filename: Option<String>,
    /// A pre-marked (A/B) content the file is a copy of; empty for none.
    content: Option<String>,
}

/// `POST /console/trace?filename[&content]`, the file as the body (the
/// trace page's script): passed through to the origin's trace with the
/// timeline asked for; answers the result as an HTML fragment.
async fn trace(
    State(c): State<Shared>,
    headers: HeaderMap,
    query: Result<Query<TraceQuery>, axum::extract::rejection::QueryRejection>,
    body: axum::body::Body,
) -> Response {
    let run = async {
        script_request(&headers)?;
        let s = session(&c, &headers).await?;
        s.only(&[PROVIDER, ADMIN], "trace")?;
        let Query(q) = query.map_err(|e| PageError::BadRequest(e.body_text()))?;
        let content = match q.content.as_deref().map(str::trim) {
            None | Some("") => None,
            Some(t) => Some(
                t.parse::<i64>()
                    .map_err(|_| PageError::BadRequest(format!("{t:?} is not a content id")))?,
            ),
        };
        let filename = q.filename.unwrap_or_else(|| "leak".into());
        let report = s
            .client
            .trace_body(
                &filename,
                content,
                true,
                reqwest::Body::wrap_stream(body.into_data_stream()),
            )
            .await?;
        render(
            &c,
            "trace_result.html",
            context! {
                filename => filename,
                report => &report,
                plot => view::timeline_plot(&report.timeline),
            },
        )
    };
    match run.await {
        Ok(r) => r,
        Err(e) => script_error(e),
    }
}

/// Requests the console's own script makes carry the `tracecast-console`
/// header: another site's page cannot send it without a CORS preflight,
/// which the console never grants.
fn script_request(headers: &HeaderMap) -> Result<(), PageError> {
    if headers.get("tracecast-console").is_none() {
        return Err(PageError::Forbidden(
            "this is for the console's own pages".into(),
        ));
    }
    same_site(headers)
}

/// A failed script request: its status and `{message}`.
fn script_error(e: PageError) -> Response {
    let status = match e {
        PageError::SignIn => StatusCode::UNAUTHORIZED,
        ref other => other.status(),
    };
    (
        status,
        axum::Json(serde_json::json!({ "message": e.to_string() })),
    )
        .into_response()
}

async fn script() -> impl IntoResponse {
    (
        [
            (header::CONTENT_TYPE, "text/javascript; charset=utf-8"),
            (header::CACHE_CONTROL, "public, max-age=3600"),
        ],
        view::SCRIPT,
    )
}

/// What a user can buy or rent, and the home servers to rent through.
async fn store(State(c): State<Shared>, headers: HeaderMap) -> Page {
    let run = async {
        let s = session(&c, &headers).await?;
        s.only(&[USER], "store")?;
        let contents = s.client.contents().await?;
        let homes: Vec<tracecast_delivery::api::SiteInfo> = s
            .client
            .sites()
            .await?
            .into_iter()
            .filter(|x| x.kind == tracecast_delivery::api::SiteKind::Home)
            .collect();
        render(
            &c,
            "store.html",
            context! { nav => nav(&s), contents => contents, homes => homes },
        )
    };
    run.await.map_err(|e| Failed(c.clone(), e))
}

#[derive(Deserialize)]
struct BuyForm {
    content: i64,
}

/// Buys a copy to keep: the purchase at the origin, the copy marked by
/// the edge; the page links the edge's signed, expiring download.
async fn buy(State(c): State<Shared>, headers: HeaderMap, Form(f): Form<BuyForm>) -> Page {
    let run = async {
        same_site(&headers)?;
        let s = session(&c, &headers).await?;
        s.only(&[USER], "purchase")?;
        let content = s.client.content(f.content).await?;
        let purchase = s.client.purchase(f.content, None, &[]).await?;
        let copy = tracecast_client::EdgeClient::new()?
            .deliver(&purchase.edge_address, &purchase.ticket)
            .await?;
        tracing::info!(delivery = purchase.delivery, user = %s.account.name, "bought from the console");
        render(
            &c,
            "bought.html",
            context! { nav => nav(&s), content => content, purchase => purchase, copy => copy },
        )
    };
    run.await.map_err(|e| Failed(c.clone(), e))
}

/// The caller's box (a user's, or a settling party's with its
/// statements): how much mail waits, and the first message (read, not
/// acknowledged: `tracecast inbox fetch` still takes it).
async fn messages(State(c): State<Shared>, headers: HeaderMap) -> Page {
    let run = async {
        let s = session(&c, &headers).await?;
        s.only(&SETTLING, "messages")?;
        let token = token(&headers).ok_or(PageError::SignIn)?;
        let mailbox = tracecast_client::MailboxClient::new(&c.config.mailbox, &token)?;
        let name: tracecast_mailbox::BoxName = s
            .account
            .box_name
            .parse()
            .map_err(|_| PageError::Upstream("the account's box name is malformed".into()))?;
        let status = mailbox.status(&name).await?;
        let first = mailbox
            .fetch(&name, tracecast_mailbox::FetchRequest::first())
            .await?
            .message
            .map(|m| view::message_view(&m));
        render(
            &c,
            "messages.html",
            context! { nav => nav(&s), box_name => name.to_string(), stats => &status.stats, first => first },
        )
    };
    run.await.map_err(|e| Failed(c.clone(), e))
}

/// A user's licences, and a form for a new one (protected deliveries).
async fn licences(State(c): State<Shared>, headers: HeaderMap) -> Page {
    let run = async {
        let s = session(&c, &headers).await?;
        s.only(&[USER], "licences")?;
        let issued = s.client.licences().await?;
        let deliveries = s.client.deliveries(None).await?;
        let contents = s.client.contents().await?;
        let protected: Vec<minijinja::Value> = view::library_rows(&deliveries, &contents)
            .into_iter()
            .filter(|r| r.get_attr("protected").is_ok_and(|p| p.is_true()))
            .collect();
        render(
            &c,
            "licences.html",
            context! { nav => nav(&s), issued => issued, protected => protected },
        )
    };
    run.await.map_err(|e| Failed(c.clone(), e))
}

#[derive(Deserialize)]
struct LicenceForm {
    delivery: i64,
    /// `clearkey`, `age:age1…` or `device:KEY`.
    recipient: String,
}

/// Asks the origin for a licence and hands it over as a file to save.
async fn new_licence(
    State(c): State<Shared>,
    headers: HeaderMap,
    Form(f): Form<LicenceForm>,
) -> Page {
    let run = async {
        same_site(&headers)?;
        let s = session(&c, &headers).await?;
        s.only(&[USER], "licences")?;
        let licence = s
            .client
            .licence(
                f.delivery,
                f.recipient.trim(),
                None,
                std::time::Duration::from_secs(10),
            )
            .await?;
        let body =
            serde_json::to_vec_pretty(&licence).map_err(|e| PageError::Upstream(e.to_string()))?;
        Ok((
            [
                (header::CONTENT_TYPE, "application/json".to_owned()),
                (
                    header::CONTENT_DISPOSITION,
                    format!(
                        "attachment; filename=\"licence-delivery-{}.json\"",
                        f.delivery
                    ),
                ),
                (header::CACHE_CONTROL, "no-store".to_owned()),
            ],
            body,
        )
            .into_response())
    };
    run.await.map_err(|e| Failed(c.clone(), e))
}

#[derive(Deserialize)]
struct RentForm {
    content: i64,
    home: String,
}

/// Rents a content through a home server and opens the player: the
/// purchase at the origin, the copy marked by the edge and sent on to the
/// home, which streams it (HTTP Range and HLS) with play, pause and seek.
async fn rent(State(c): State<Shared>, headers: HeaderMap, Form(f): Form<RentForm>) -> Page {
    let run = async {
        same_site(&headers)?;
        let s = session(&c, &headers).await?;
        s.only(&[USER], "rental")?;
        let content = s.client.content(f.content).await?;
        let purchase = s
            .client
            .order(&tracecast_delivery::api::PurchaseRequest {
                home: Some(f.home.clone()),
                rent: true,
                ..tracecast_delivery::api::PurchaseRequest::download(f.content, None)
            })
            .await?;
        let copy = tracecast_client::EdgeClient::new()?
            .deliver(&purchase.edge_address, &purchase.ticket)
            .await?;
        let via = copy.via.clone().ok_or_else(|| {
            PageError::Upstream("the edge did not send the rental to the home".into())
        })?;
        tracing::info!(delivery = purchase.delivery, user = %s.account.name, home = %via.site, "rental opened from the console");
        render(
            &c,
            "player.html",
            context! {
                nav => nav(&s),
                content => content,
                purchase => purchase,
                copy => copy,
                via => via,
            },
        )
    };
    run.await.map_err(|e| Failed(c.clone(), e))
}

/// A user's invoice, or the statement of a provider, operator, store or
/// building manager: every posting to their ledger account and the
/// balance.
async fn invoices(State(c): State<Shared>, headers: HeaderMap) -> Page {
    let run = async {
        let s = session(&c, &headers).await?;
        s.only(&SETTLING, "invoices")?;
        let invoice = s.client.invoice(None).await?;
        render(
            &c,
            "invoices.html",
            context! { nav => nav(&s), invoice => invoice },
        )
    };
    run.await.map_err(|e| Failed(c.clone(), e))
}

/// The members tree (administrators): order, referrer, trust, standing,
/// leaks; suspended members listed apart.
async fn members(State(c): State<Shared>, headers: HeaderMap) -> Page {
    let run = async {
        let s = session(&c, &headers).await?;
        s.only(&[ADMIN], "members")?;
        let all = s.client.members().await?;
        let suspended: Vec<&tracecast_members::api::TreeEntry> = all
            .iter()
            .filter(|m| m.status != tracecast_members::Status::Active)
            .collect();
        render(
            &c,
            "members.html",
            context! { nav => nav(&s), members => &all, suspended => suspended },
        )
    };
    run.await.map_err(|e| Failed(c.clone(), e))
}

async fn stylesheet() -> impl IntoResponse {
    (
        [
            (header::CONTENT_TYPE, "text/css; charset=utf-8"),
            (header::CACHE_CONTROL, "public, max-age=3600"),
        ],
        view::STYLESHEET,
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_token_is_read_from_its_cookie_only() {
        let mut h = HeaderMap::new();
        h.insert(
            header::COOKIE,
            HeaderValue::from_static("a=1; tracecast_console=tc_abc ; b=2"),
        );
        assert_eq!(token(&h).as_deref(), Some("tc_abc"));
        let mut other = HeaderMap::new();
        other.insert(header::COOKIE, HeaderValue::from_static("tracecast=tc_x"));
        assert_eq!(token(&other), None);
        let mut empty = HeaderMap::new();
        empty.insert(
            header::COOKIE,
            HeaderValue::from_static("tracecast_console="),
        );
        assert_eq!(token(&empty), None);
    }

    #[test]
    fn cross_site_posts_are_refused() {
        let mut h = HeaderMap::new();
        assert!(same_site(&h).is_ok());
        h.insert("sec-fetch-site", HeaderValue::from_static("same-origin"));
        assert!(same_site(&h).is_ok());
        h.insert("sec-fetch-site", HeaderValue::from_static("cross-site"));
        assert!(same_site(&h).is_err());
    }

    #[test]
    fn every_template_parses() {
        assert!(router(ConsoleConfig {
            origin: "http://127.0.0.1:1".into(),
            mailbox: "http://127.0.0.1:1".into(),
            secure_cookies: false,
        })
        .is_ok());
    }
}
