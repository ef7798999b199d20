//! tracecast's roles as HTTP services. Each role is a module with a router
//! and its background workers; `tracecast serve` mounts the roles asked for.
//! Today: the mailbox (DESIGN.md "003"), the origin and the edge (DESIGN.md
//! "001").

pub mod auth;
pub mod edge;
mod error;
pub mod mailbox;
pub mod origin;

use std::net::SocketAddr;

pub use error::ApiError;

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
