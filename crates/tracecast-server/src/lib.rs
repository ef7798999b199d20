//! tracecast's roles as HTTP services. Each role is a module with a router
//! and its background workers; `tracecast serve` mounts the roles asked for.
//! Today: the mailbox (DESIGN.md "003"), and the origin, edge, home server
//! and kiosk (DESIGN.md "001").

pub mod auth;
pub mod budget;
mod caller;
pub mod edge;
mod error;
pub mod gateway;
pub mod home;
pub mod kiosk;
pub mod mailbox;
pub mod node;
pub mod openapi;
pub mod ops;
pub mod origin;
pub mod roaming;
mod serve;
pub mod service;
pub mod site;
pub mod slot;

use std::net::SocketAddr;

pub use error::ApiError;

/// Runs CPU-heavy media work (decode, mark, encode) on the blocking pool,
/// at most as many at once as `workers` has permits (one per core), so
/// the async threads keep answering while copies are made.
pub(crate) async fn on_worker<T: Send + 'static>(
    workers: &tokio::sync::Semaphore,
    work: impl FnOnce() -> T + Send + 'static,
) -> Result<T, ApiError> {
    let _permit = workers.acquire().await.map_err(|_| {
        ApiError::new(
            axum::http::StatusCode::SERVICE_UNAVAILABLE,
            "shutting_down",
            "the server is shutting down",
        )
    })?;
    tokio::task::spawn_blocking(work).await.map_err(|e| {
        tracing::error!(error = %e, "media work failed");
        ApiError::new(
            axum::http::StatusCode::INTERNAL_SERVER_ERROR,
            "internal",
            "the media work failed; nothing was changed",
        )
    })
}

/// Serves a router until `shutdown` resolves, then lets in-flight requests
/// finish.
pub async fn serve(
    listener: tokio::net::TcpListener,
    router: axum::Router,
    shutdown: impl std::future::Future<Output = ()> + Send + 'static,
) -> std::io::Result<()> {
    axum::serve(
        listener,
        router.into_make_service_with_connect_info::<SocketAddr>(),
    )
    .with_graceful_shutdown(shutdown)
    .await
}
