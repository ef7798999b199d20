//! `tracecast serve`: the command line's side of a node. The node itself
//! (roles, settings, start and stop) is `tracecast_server::node`.

use anyhow::Context;
use tracecast_server::node::{self, BlobPlace, LogFormat, Node};

use crate::cli::ServeArgs;

pub fn run(args: &ServeArgs, quiet: bool) -> anyhow::Result<()> {
    if args.options {
        print!("{}", node::file::options_markdown());
        return Ok(());
    }
    let s = node::settings(&args.flags)?;
    if args.check {
        println!(
            "settings are valid: roles {}, store {}, blobs {}",
            s.roles.names(),
            match &s.database {
                Some(d) if d.starts_with("postgres") => "PostgreSQL",
                Some(_) => "SQLite (database URL)",
                None => "SQLite in the data directory",
            },
            match &s.blobs {
                BlobPlace::Dir(d) => format!("files in {}", d.display()),
                BlobPlace::S3(s3) => format!("S3 bucket {}", s3.bucket),
            }
        );
        return Ok(());
    }
    init_logs_as(quiet, s.log_format, &s.log_level);
    crate::terminal::runtime()?.block_on(async {
        let listener = tokio::net::TcpListener::bind(&s.listen)
            .await
            .with_context(|| format!("listening on {}", s.listen))?;
        let node = Node::start(&s, listener).await?;
        if s.roles.mailbox {
            tracing::info!("administrator token in {}", node.admin_token.display());
        }
        shutdown_signal().await;
        tracing::info!("stopping: letting in-flight requests finish");
        node.stop().await;
        Ok(())
    })
}

pub fn init_logs(quiet: bool) {
    init_logs_as(quiet, LogFormat::Text, "info");
}

/// Logs to stderr: text or JSON lines; `RUST_LOG` overrides `level`.
pub fn init_logs_as(quiet: bool, format: LogFormat, level: &str) {
    let default = if quiet { "warn" } else { level };
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new(default));
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr);
    let _ = match format {
        LogFormat::Text => builder.try_init(),
        LogFormat::Json => builder
            .json()
            .flatten_event(true)
            .with_current_span(true)
            .with_span_list(false)
            .try_init(),
    };
}

async fn shutdown_signal() {
    let ctrl_c = async {
        let _ = tokio::signal::ctrl_c().await;
    };
    #[cfg(unix)]
    let term = async {
        if let Ok(mut s) = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate())
        {
            s.recv().await;
        }
    };
    #[cfg(not(unix))]
    let term = std::future::pending::<()>();
    tokio::select! {
        () = ctrl_c => {},
        () = term => {},
    }
}
