//! Errors as HTTP answers: a status and a JSON body
//! `{"error": code, "message": text}` that tells the caller what to fix.

use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use tracecast_mailbox::ProtocolError;
use tracecast_store::StoreError;

#[derive(Debug)]
pub struct ApiError {
    pub status: StatusCode,
    pub code: &'static str,
    pub message: String,
    /// Seconds to wait before asking again (`Retry-After`), for 429/503.
    pub retry_after: Option<u64>,
}

impl ApiError {
    pub fn new(status: StatusCode, code: &'static str, message: impl Into<String>) -> Self {
        Self {
            status,
            code,
            message: message.into(),
            retry_after: None,
        }
    }

    /// Says when to ask again (`Retry-After`, seconds).
    pub fn with_retry_after(mut self, secs: u64) -> Self {
        self.retry_after = Some(secs);
        self
    }
    pub fn bad_request(message: impl Into<String>) -> Self {
        Self::new(StatusCode::BAD_REQUEST, "bad_request", message)
    }
    pub fn unauthorized(message: impl Into<String>) -> Self {
        Self::new(StatusCode::UNAUTHORIZED, "unauthorized", message)
    }
    pub fn forbidden(message: impl Into<String>) -> Self {
        Self::new(StatusCode::FORBIDDEN, "forbidden", message)
    }
}

/// A body over its route's limit (see [`crate::budget`]).
fn body_too_large() -> ApiError {
    ApiError::new(
        StatusCode::PAYLOAD_TOO_LARGE,
        "too_large",
        "the request body is larger than this route takes; docs/config.md \
         (\"Request budgets\") lists each route's limit",
    )
}

/// A body that is not the JSON a route takes: its status (400 malformed,
/// 415 not JSON, 422 the wrong shape, 413 too large) and axum's account of
/// what is wrong.
impl From<axum::extract::rejection::JsonRejection> for ApiError {
    fn from(e: axum::extract::rejection::JsonRejection) -> Self {
        if e.status() == StatusCode::PAYLOAD_TOO_LARGE {
            return body_too_large();
        }
        Self::new(e.status(), "bad_body", e.body_text())
    }
}

/// A body that could not be read (too large, or the connection broke).
impl From<axum::extract::rejection::BytesRejection> for ApiError {
    fn from(e: axum::extract::rejection::BytesRejection) -> Self {
        if e.status() == StatusCode::PAYLOAD_TOO_LARGE {
            return body_too_large();
        }
        Self::new(e.status(), "bad_body", e.body_text())
    }
}

/// A query string that does not parse.
impl From<axum::extract::rejection::QueryRejection> for ApiError {
    fn from(e: axum::extract::rejection::QueryRejection) -> Self {
        Self::bad_request(e.body_text())
    }
}

impl From<ProtocolError> for ApiError {
    fn from(e: ProtocolError) -> Self {
        Self::bad_request(e.to_string())
    }
}

impl From<StoreError> for ApiError {
    fn from(e: StoreError) -> Self {
        let (status, code) = match &e {
            StoreError::UnknownBox(_) => (StatusCode::NOT_FOUND, "unknown_box"),
            StoreError::UnknownMessage(_) => (StatusCode::NOT_FOUND, "unknown_message"),
            StoreError::BoxExists(_) => (StatusCode::CONFLICT, "box_exists"),
            StoreError::Gone(..) => (StatusCode::GONE, "gone"),
            StoreError::Conflict(_) => (StatusCode::CONFLICT, "conflict"),
            StoreError::Invalid(_) => (StatusCode::BAD_REQUEST, "invalid"),
            StoreError::Database(_)
            | StoreError::Migrate(_)
            | StoreError::Url(_)
            | StoreError::Closed => {
                tracing::error!(error = %e, "store failed");
                return Self::new(
                    StatusCode::SERVICE_UNAVAILABLE,
                    "unavailable",
                    "the store is unavailable; nothing was changed, retry later",
                );
            }
        };
        Self::new(status, code, e.to_string())
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let body = serde_json::json!({ "error": self.code, "message": self.message });
        let mut r = (self.status, axum::Json(body)).into_response();
        if let Some(secs) = self.retry_after {
            r.headers_mut().insert(
                axum::http::header::RETRY_AFTER,
                axum::http::HeaderValue::from(secs),
            );
        }
        r
    }
}

/// Answers every refusal with the JSON error body, also those axum makes
/// itself (a path or query that does not parse, an unknown route, a wrong
/// method, a body over its limit), so a client reads one shape and the
/// contract's error answers hold for every route. HEAD answers keep their
/// empty body.
pub(crate) async fn json_errors(
    req: axum::extract::Request,
    next: axum::middleware::Next,
) -> Response {
    use axum::http::{header, HeaderValue, Method};
    let head = req.method() == Method::HEAD;
    let res = next.run(req).await;
    let status = res.status();
    if head || !(status.is_client_error() || status.is_server_error()) {
        return res;
    }
    // axum's own refusals are plain text or empty; a page of the console
    // (HTML) or a body a role chose keeps its type.
    let plain = match res.headers().get(header::CONTENT_TYPE) {
        None => true,
        Some(v) => v.to_str().is_ok_and(|v| v.starts_with("text/plain")),
    };
    if !plain {
        return res;
    }
    let (mut parts, body) = res.into_parts();
    // axum's own refusals are a short sentence; read no more than that.
    let text = axum::body::to_bytes(body, 4096)
        .await
        .map(|b| String::from_utf8_lossy(&b).trim().to_owned())
        .unwrap_or_default();
    let code = match status {
        StatusCode::BAD_REQUEST => "bad_request",
        StatusCode::NOT_FOUND => "not_found",
        StatusCode::METHOD_NOT_ALLOWED => "method_not_allowed",
        StatusCode::PAYLOAD_TOO_LARGE => "too_large",
        StatusCode::UNSUPPORTED_MEDIA_TYPE => "unsupported_media_type",
        StatusCode::UNPROCESSABLE_ENTITY => "bad_body",
        StatusCode::RANGE_NOT_SATISFIABLE => "range_not_satisfiable",
        StatusCode::TOO_MANY_REQUESTS => "rate_limited",
        StatusCode::SERVICE_UNAVAILABLE => "unavailable",
        StatusCode::GATEWAY_TIMEOUT => "timeout",
        s if s.is_server_error() => "internal",
        _ => "refused",
    };
    let message = if text.is_empty() {
        status.canonical_reason().unwrap_or("refused").to_owned()
    } else {
        text
    };
    let body = serde_json::json!({ "error": code, "message": message }).to_string();
    parts.headers.remove(header::CONTENT_LENGTH);
    parts.headers.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/json"),
    );
    Response::from_parts(parts, axum::body::Body::from(body))
}
