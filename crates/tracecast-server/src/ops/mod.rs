//! What every process serves beside its roles, and the one layer stack
//! every request passes through: liveness (`/livez`), readiness
//! (`/readyz`), Prometheus metrics (`/metrics`), a request id, a tracing
//! span per request (route template, never the path: paths carry signed
//! links), sensitive headers hidden from logs, a timeout, and load
//! shedding at a concurrency limit.

mod body;
pub mod metrics;

use std::net::SocketAddr;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use axum::extract::{ConnectInfo, MatchedPath, Request, State};
use axum::http::{header, HeaderMap, HeaderName, HeaderValue, StatusCode};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::{Json, Router};
use futures::future::BoxFuture;
use tokio_util::sync::CancellationToken;
use tower_http::request_id::{MakeRequestUuid, PropagateRequestIdLayer, SetRequestIdLayer};
use tower_http::sensitive_headers::SetSensitiveHeadersLayer;
use tower_http::timeout::TimeoutLayer;
use tower_http::trace::{DefaultOnFailure, DefaultOnResponse, TraceLayer};
use tracecast_store::Store;

pub use metrics::metrics;

const REQUEST_ID: HeaderName = HeaderName::from_static("x-request-id");

/// Settings of the layer stack and the operations endpoints.
#[derive(Debug, Clone)]
pub struct OpsConfig {
    /// Longest time a request may take to answer its head; `None`: no
    /// limit. Bodies (downloads) stream for as long as they need.
    pub request_timeout: Option<Duration>,
    /// Requests answered or streaming at once; beyond it, 503 at once.
    pub max_in_flight: usize,
    /// Bearer token a scraper must show at `/metrics`; without one, only
    /// loopback clients are answered.
    pub metrics_token: Option<String>,
}

impl Default for OpsConfig {
    fn default() -> Self {
        Self {
            request_timeout: Some(Duration::from_secs(600)),
            max_in_flight: 4096,
            metrics_token: None,
        }
    }
}

type CheckFn = Arc<dyn Fn() -> BoxFuture<'static, Result<(), String>> + Send + Sync>;

/// Whether this process should be sent traffic: every check passes and it
/// is not draining.
#[derive(Clone)]
pub struct Readiness {
    inner: Arc<ReadinessInner>,
}

struct ReadinessInner {
    roles: String,
    draining: AtomicBool,
    drain: CancellationToken,
    checks: Mutex<Vec<(String, CheckFn)>>,
}

impl Readiness {
    pub fn new(roles: &str) -> Self {
        Self {
            inner: Arc::new(ReadinessInner {
                roles: roles.to_owned(),
                draining: AtomicBool::new(false),
                drain: CancellationToken::new(),
                checks: Mutex::new(Vec::new()),
            }),
        }
    }

    /// Adds a named check run at every `/readyz`.
    pub fn check<F, Fut>(&self, name: &str, f: F)
    where
        F: Fn() -> Fut + Send + Sync + 'static,
        Fut: std::future::Future<Output = Result<(), String>> + Send + 'static,
    {
        let f: CheckFn = Arc::new(move || Box::pin(f()));
        self.inner
            .checks
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .push((name.to_owned(), f));
    }

    /// The store answers a query.
    pub fn check_store(&self, store: &Store) {
        let store = store.clone();
        self.check("store", move || {
            let store = store.clone();
            async move {
                // The detail goes to the log; the unauthenticated answer
                // says only what failed.
                store.ping().await.map_err(|e| {
                    tracing::warn!(error = %e, "readiness: the store does not answer");
                    "the database does not answer".to_owned()
                })
            }
        });
    }

    /// From now on `/readyz` answers 503 and long waits (event streams,
    /// long-polls) end, so a load balancer stops sending work here while
    /// requests in flight finish.
    pub fn start_draining(&self) {
        self.inner.draining.store(true, Ordering::SeqCst);
        self.inner.drain.cancel();
    }

    pub fn is_draining(&self) -> bool {
        self.inner.draining.load(Ordering::SeqCst)
    }

    /// Cancelled when draining starts.
    pub fn drain_token(&self) -> CancellationToken {
        self.inner.drain.clone()
    }
}

struct OpsState {
    readiness: Readiness,
    metrics_token: Option<String>,
    /// The mailbox's store, when this process runs the mailbox: its depth
    /// and age are read at each scrape.
    mailbox: Option<Store>,
}

/// `/livez`, `/readyz` and `/metrics`.
pub fn router(readiness: Readiness, config: &OpsConfig, mailbox: Option<Store>) -> Router {
    metrics().mark_started();
    Router::new()
        .route("/livez", get(livez))
        .route("/readyz", get(readyz))
        .route("/metrics", get(scrape))
        .with_state(Arc::new(OpsState {
            readiness,
            metrics_token: config.metrics_token.clone(),
            mailbox,
        }))
}

async fn livez() -> Json<serde_json::Value> {
    Json(serde_json::json!({ "status": "live", "version": env!("CARGO_PKG_VERSION") }))
}

async fn readyz(State(ops): State<Arc<OpsState>>) -> Response {
    let r = &ops.readiness;
    if r.is_draining() {
        return (
            StatusCode::SERVICE_UNAVAILABLE,
            Json(serde_json::json!({ "status": "draining", "roles": r.inner.roles })),
        )
            .into_response();
    }
    let checks: Vec<(String, CheckFn)> = r
        .inner
        .checks
        .lock()
        .unwrap_or_else(|e| e.into_inner())
        .clone();
    let results = futures::future::join_all(checks.into_iter().map(|(name, f)| async move {
        let outcome = match tokio::time::timeout(Duration::from_secs(2), f()).await {
            Ok(r) => r,
            Err(_) => Err("no answer within 2 s".to_owned()),
        };
        (name, outcome)
    }))
    .await;
    let ready = results.iter().all(|(_, r)| r.is_ok());
    let detail: serde_json::Map<String, serde_json::Value> = results
        .into_iter()
        .map(|(name, r)| (name, r.err().unwrap_or_else(|| "ok".into()).into()))
        .collect();
    let status = if ready {
        StatusCode::OK
    } else {
        StatusCode::SERVICE_UNAVAILABLE
    };
    (
        status,
        Json(serde_json::json!({
            "status": if ready { "ready" } else { "not ready" },
            "roles": r.inner.roles,
            "uptime_secs": metrics().uptime_secs(),
            "checks": detail,
        })),
    )
        .into_response()
}

async fn scrape(
    State(ops): State<Arc<OpsState>>,
    ConnectInfo(peer): ConnectInfo<SocketAddr>,
    headers: HeaderMap,
) -> Response {
    match &ops.metrics_token {
        Some(want) => {
            let shown = headers
                .get(header::AUTHORIZATION)
                .and_then(|v| v.to_str().ok())
                .and_then(|v| v.strip_prefix("Bearer "))
                .unwrap_or("");
            if !crate::auth::same_secret(shown, want) {
                return crate::ApiError::unauthorized(
                    "metrics need the scrape token: Authorization: Bearer TOKEN",
                )
                .into_response();
            }
        }
        None if !peer.ip().is_loopback() => {
            return crate::ApiError::forbidden(
                "metrics are answered on loopback only unless [metrics] token_file is set",
            )
            .into_response();
        }
        None => {}
    }
    let m = metrics();
    if let Some(store) = &ops.mailbox {
        let _one = m.scrape.lock().await;
        match store.mailbox_depth(tracecast_store::now_ms()).await {
            Ok(kinds) => {
                m.mailbox_pending.clear();
                m.mailbox_pending_bytes.clear();
                m.mailbox_oldest_seconds.clear();
                let now = tracecast_store::now_ms();
                for k in kinds {
                    let labels = metrics::BoxKindLabels { kind: k.kind };
                    m.mailbox_pending.get_or_create(&labels).set(k.pending);
                    m.mailbox_pending_bytes.get_or_create(&labels).set(k.bytes);
                    m.mailbox_oldest_seconds
                        .get_or_create(&labels)
                        .set((now - k.oldest_created_at).max(0) / 1000);
                }
            }
            Err(e) => tracing::warn!(error = %e, "reading the mailbox's depth for metrics failed"),
        }
    }
    (
        [(
            header::CONTENT_TYPE,
            "application/openmetrics-text; version=1.0.0; charset=utf-8",
        )],
        m.encode(),
    )
        .into_response()
}

/// The layer stack every route of a process runs under.
pub fn layer(router: Router, config: &OpsConfig) -> Router {
    let slots = Arc::new(tokio::sync::Semaphore::new(config.max_in_flight.max(1)));
    let mut router = router;
    if let Some(t) = config.request_timeout {
        router = router.layer(TimeoutLayer::with_status_code(
            StatusCode::SERVICE_UNAVAILABLE,
            t,
        ));
    }
    router
        .layer(axum::middleware::from_fn(crate::error::json_errors))
        .layer(axum::middleware::from_fn_with_state(slots, observe))
        .layer(PropagateRequestIdLayer::new(REQUEST_ID))
        .layer(SetSensitiveHeadersLayer::new([
            header::AUTHORIZATION,
            header::COOKIE,
            header::SET_COOKIE,
            HeaderName::from_static(crate::site::TICKET_HEADER),
        ]))
        .layer(
            TraceLayer::new_for_http()
                .make_span_with(|req: &Request| {
                    let route = req
                        .extensions()
                        .get::<MatchedPath>()
                        .map_or("unmatched", |p| p.as_str());
                    let id = req
                        .headers()
                        .get(REQUEST_ID)
                        .and_then(|v| v.to_str().ok())
                        .unwrap_or("");
                    tracing::info_span!("request", id, method = %req.method(), route)
                })
                .on_request(())
                .on_response(DefaultOnResponse::new().level(tracing::Level::DEBUG))
                .on_failure(DefaultOnFailure::new().level(tracing::Level::WARN)),
        )
        .layer(SetRequestIdLayer::new(REQUEST_ID, MakeRequestUuid))
}

/// Counts the request (route, status, time, bytes both ways) and sheds it
/// with 503 when the process already has `max_in_flight` requests.
async fn observe(
    State(slots): State<Arc<tokio::sync::Semaphore>>,
    request: Request,
    next: Next,
) -> Response {
    let m = metrics();
    let route = request
        .extensions()
        .get::<MatchedPath>()
        .map_or_else(|| "unmatched".to_owned(), |p| p.as_str().to_owned());
    let Ok(permit) = slots.try_acquire_owned() else {
        m.shed.inc();
        let mut r = crate::ApiError::new(
            StatusCode::SERVICE_UNAVAILABLE,
            "overloaded",
            "the server is at its limit of requests at once; retry shortly",
        )
        .into_response();
        r.headers_mut()
            .insert(header::RETRY_AFTER, HeaderValue::from_static("1"));
        return r;
    };
    let labels = metrics::RouteLabels {
        route: route.clone(),
    };
    let method = request.method().as_str().to_owned();
    let received = m.received_bytes.get_or_create(&labels).clone();
    let request = request.map(|b| axum::body::Body::new(body::Counted::new(b, received, ())));
    let started = Instant::now();
    m.in_flight.inc();
    let guard = body::InFlight::new(permit);
    let response = next.run(request).await;
    m.request_seconds
        .get_or_create(&labels)
        .observe(started.elapsed().as_secs_f64());
    m.requests
        .get_or_create(&metrics::RequestLabels {
            method,
            route,
            status: response.status().as_u16(),
        })
        .inc();
    let sent = m.sent_bytes.get_or_create(&labels).clone();
    response.map(|b| axum::body::Body::new(body::Counted::new(b, sent, guard)))
}

#[cfg(test)]
mod tests {
    use super::*;
    use axum::body::Body;
    use tower::ServiceExt;

    fn app(readiness: Readiness, config: OpsConfig) -> Router {
        let roles = Router::new()
            .route("/hello/{name}", get(|| async { "hello, world" }))
            .route(
                "/slow",
                get(|| async {
                    tokio::time::sleep(Duration::from_millis(400)).await;
                    "late"
                }),
            );
        layer(roles.merge(router(readiness, &config, None)), &config)
    }

    async fn call(app: &Router, path: &str, from: [u8; 4], auth: Option<&str>) -> Response {
        let mut req = Request::get(path);
        if let Some(a) = auth {
            req = req.header(header::AUTHORIZATION, a);
        }
        let mut req = req.body(Body::empty()).unwrap();
        req.extensions_mut()
            .insert(ConnectInfo(SocketAddr::from((from, 40000))));
        app.clone().oneshot(req).await.unwrap()
    }

    async fn text(r: Response) -> String {
        let b = axum::body::to_bytes(r.into_body(), 1 << 20).await.unwrap();
        String::from_utf8(b.to_vec()).unwrap()
    }

    #[tokio::test]
    async fn requests_are_counted_by_route_template_and_get_an_id() {
        let app = app(Readiness::new("test"), OpsConfig::default());
        let r = call(&app, "/hello/alice-secret-path", [127, 0, 0, 1], None).await;
        assert_eq!(r.status(), StatusCode::OK);
        assert!(r.headers().get(REQUEST_ID).is_some(), "a request id");
        assert_eq!(text(r).await, "hello, world");
        let m = text(call(&app, "/metrics", [127, 0, 0, 1], None).await).await;
        assert!(
            m.contains(
                "tracecast_http_requests_total{method=\"GET\",route=\"/hello/{name}\",status=\"200\"}"
            ),
            "{m}"
        );
        assert!(
            !m.contains("alice-secret-path"),
            "paths never become labels"
        );
        let sent = m
            .lines()
            .find(|l| l.starts_with("tracecast_http_sent_bytes_total{route=\"/hello/{name}\"}"))
            .expect("bytes sent on the route");
        let n: u64 = sent.rsplit(' ').next().unwrap().parse().unwrap();
        assert!(n >= 12, "{sent}");
    }

    #[tokio::test]
    async fn metrics_need_loopback_or_the_token() {
        let open = app(Readiness::new("test"), OpsConfig::default());
        assert_eq!(
            call(&open, "/metrics", [10, 0, 0, 7], None).await.status(),
            StatusCode::FORBIDDEN
        );
        let guarded = app(
            Readiness::new("test"),
            OpsConfig {
                metrics_token: Some("scrape-me".into()),
                ..OpsConfig::default()
            },
        );
        for (from, auth) in [([127, 0, 0, 1], None), ([10, 0, 0, 7], Some("Bearer nope"))] {
            assert_eq!(
                call(&guarded, "/metrics", from, auth).await.status(),
                StatusCode::UNAUTHORIZED
            );
        }
        let r = call(
            &guarded,
            "/metrics",
            [10, 0, 0, 7],
            Some("Bearer scrape-me"),
        )
        .await;
        assert_eq!(r.status(), StatusCode::OK);
        assert!(text(r).await.contains("# EOF"));
    }

    #[tokio::test]
    async fn readiness_runs_every_check_and_drains() {
        let readiness = Readiness::new("edge");
        let app = app(readiness.clone(), OpsConfig::default());
        let ok = call(&app, "/readyz", [10, 0, 0, 7], None).await;
        assert_eq!(ok.status(), StatusCode::OK);
        let flag = Arc::new(AtomicBool::new(false));
        let f = flag.clone();
        readiness.check("origin", move || {
            let up = f.load(Ordering::SeqCst);
            async move {
                if up {
                    Ok(())
                } else {
                    Err("not reached yet".into())
                }
            }
        });
        let r = call(&app, "/readyz", [10, 0, 0, 7], None).await;
        assert_eq!(r.status(), StatusCode::SERVICE_UNAVAILABLE);
        let body: serde_json::Value = serde_json::from_str(&text(r).await).unwrap();
        assert_eq!(body["checks"]["origin"], "not reached yet", "{body}");
        flag.store(true, Ordering::SeqCst);
        assert_eq!(
            call(&app, "/readyz", [10, 0, 0, 7], None).await.status(),
            StatusCode::OK
        );
        let token = readiness.drain_token();
        readiness.start_draining();
        assert!(token.is_cancelled());
        let r = call(&app, "/readyz", [10, 0, 0, 7], None).await;
        assert_eq!(r.status(), StatusCode::SERVICE_UNAVAILABLE);
        assert!(text(r).await.contains("draining"));
        // Alive all the same.
        assert_eq!(
            call(&app, "/livez", [10, 0, 0, 7], None).await.status(),
            StatusCode::OK
        );
    }

    #[tokio::test]
    async fn a_full_process_sheds_and_a_slow_answer_times_out() {
        let app = app(
            Readiness::new("test"),
            OpsConfig {
                request_timeout: Some(Duration::from_millis(100)),
                max_in_flight: 1,
                metrics_token: None,
            },
        );
        // The slow request holds the only slot until it times out.
        let slow = tokio::spawn({
            let app = app.clone();
            async move { call(&app, "/slow", [127, 0, 0, 1], None).await.status() }
        });
        tokio::time::sleep(Duration::from_millis(30)).await;
        let shed = call(&app, "/hello/bob", [127, 0, 0, 1], None).await;
        assert_eq!(shed.status(), StatusCode::SERVICE_UNAVAILABLE);
        assert_eq!(shed.headers()[header::RETRY_AFTER], "1");
        assert!(text(shed).await.contains("overloaded"));
        assert_eq!(slow.await.unwrap(), StatusCode::SERVICE_UNAVAILABLE);
        // The slot is free again once the answer is gone.
        assert_eq!(
            call(&app, "/hello/bob", [127, 0, 0, 1], None)
                .await
                .status(),
            StatusCode::OK
        );
    }
}
