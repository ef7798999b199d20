//! `tracecast serve`: the roles as one process (today: the mailbox).

use std::time::Duration;

use anyhow::Context;
use tracecast_mailbox::{Backoff, Retention};
use tracecast_server::mailbox::{self, MailboxConfig};
use tracecast_store::Store;

use crate::cli::ServeArgs;

const DAY: u64 = 24 * 3600;

pub fn run(args: &ServeArgs, quiet: bool) -> anyhow::Result<()> {
    init_logs(quiet);
    let config = config(args)?;
    tokio::runtime::Runtime::new()?.block_on(async {
        let store = match &args.database {
            Some(url) => Store::open(url).await,
            None => Store::open_dir(&args.data).await,
        }
        .context("opening the store")?;
        let admin = args.data.join("admin.token");
        if tracecast_server::auth::ensure_admin(&store, &admin)
            .await?
            .is_some()
        {
            tracing::info!(path = %admin.display(), "wrote a new administrator token");
        }
        let listener = tokio::net::TcpListener::bind(&args.listen)
            .await
            .with_context(|| format!("listening on {}", args.listen))?;
        let addr = listener.local_addr()?;
        tracing::info!(
            %addr,
            store = store.backend().name(),
            "mailbox listening on http://{addr} (administrator token in {})",
            admin.display()
        );
        let mb = mailbox::Mailbox::start(store.clone(), config);
        tracecast_server::serve(listener, mailbox::router(mb), shutdown_signal()).await?;
        tracing::info!("stopping: in-flight requests finished");
        store.close().await;
        Ok(())
    })
}

fn config(args: &ServeArgs) -> anyhow::Result<MailboxConfig> {
    let secs = |name: &str, v: f64| -> anyhow::Result<u64> {
        anyhow::ensure!(
            v.is_finite() && v > 0.0,
            "--{name} must be a positive number of seconds"
        );
        Ok((v * 1000.0) as u64)
    };
    anyhow::ensure!(
        args.max_message_bytes > 0,
        "--max-message-bytes must be positive"
    );
    anyhow::ensure!(args.processed_max > 0, "--processed-max must be positive");
    anyhow::ensure!(args.sweep_every > 0, "--sweep-every must be positive");
    let retention = Retention {
        default_ttl: args.pending_days * DAY,
        max_ttl: (args.pending_days * DAY).max(Retention::default().max_ttl),
        processed_keep: args.processed_days * DAY,
        processed_max: args.processed_max,
        ..Retention::default()
    };
    Ok(MailboxConfig {
        max_message_bytes: args.max_message_bytes,
        retention,
        backoff: Backoff {
            first_ms: secs("notify-retry", args.notify_retry)?,
            max_ms: secs("notify-retry-max", args.notify_retry_max)?,
        },
        sweep_every: Duration::from_secs(args.sweep_every),
        ..MailboxConfig::default()
    })
}

pub fn init_logs(quiet: bool) {
    let default = if quiet { "warn" } else { "info" };
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new(default));
    let _ = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .try_init();
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
