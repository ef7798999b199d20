//! What every command shares: the runtime, the origin's client from the
//! connection flags, progress bars and narration on standard error, dates,
//! and handing a new secret to its holder.

use std::path::Path;
use std::time::Duration;

use indicatif::{ProgressBar, ProgressStyle};
use tracecast_client::{Narrator, OriginClient};

use crate::cli::Connection;

pub fn origin(conn: &Connection) -> anyhow::Result<OriginClient> {
    Ok(OriginClient::new(&conn.server, &conn.token()?)?)
}

/// The one runtime every command runs on (a server's roles use every core).
pub fn runtime() -> anyhow::Result<tokio::runtime::Runtime> {
    Ok(tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()?)
}

/// A byte progress bar, hidden when quiet.
pub fn byte_bar(quiet: bool, message: &'static str) -> ProgressBar {
    if quiet {
        return ProgressBar::hidden();
    }
    let pb = ProgressBar::new(0);
    pb.set_style(
        ProgressStyle::with_template(
            "{msg:>10} [{bar:30}] {bytes}/{total_bytes} {bytes_per_sec} {eta}",
        )
        .expect("static template")
        .progress_chars("=> "),
    );
    pb.set_message(message);
    pb
}

/// Hands a new secret (a token, a set-up code) to its holder: into a 0600
/// file, or on standard output; `what` names it on standard error.
pub fn hand_over(secret: &str, file: Option<&Path>, what: &str) -> anyhow::Result<()> {
    match file {
        Some(path) => {
            tracecast_secrets::replace(path, format!("{secret}\n").as_bytes())?;
            eprintln!("{what} is in {}", path.display());
        }
        None => {
            eprintln!("{what}:");
            println!("{secret}");
        }
    }
    Ok(())
}

/// Narration and progress bars on standard error, unless `--quiet`.
pub struct Terminal {
    quiet: bool,
    bar: std::sync::Mutex<Option<ProgressBar>>,
}

impl Terminal {
    pub fn new(quiet: bool) -> Self {
        Self {
            quiet,
            bar: std::sync::Mutex::new(None),
        }
    }
}

impl Narrator for Terminal {
    fn say(&self, line: String) {
        if !self.quiet {
            eprintln!("{line}");
        }
    }

    fn bytes(&self, what: &'static str, done: u64, total: u64) {
        let mut bar = self.bar.lock().expect("bar lock");
        let pb = bar.get_or_insert_with(|| byte_bar(self.quiet, what));
        // A copy served as it is marked has no length yet: the bar shows
        // what arrived.
        pb.set_length(total.max(done));
        pb.set_position(done);
    }

    fn transfer_ended(&self) {
        if let Some(pb) = self.bar.lock().expect("bar lock").take() {
            pb.finish_and_clear();
        }
    }
}

pub fn when(ms: i64) -> String {
    let t = std::time::UNIX_EPOCH + Duration::from_millis(ms.max(0) as u64);
    httpdate::fmt_http_date(t)
}
