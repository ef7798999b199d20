//! `tracecast demo`: a whole distribution run on loopback, narrated, as a
//! library the binary calls (and a test could). An origin (with its
//! mailbox), two edges, and a home server with a shop's kiosk start as
//! separate servers in one process through `tracecast_server::node`, each
//! with its own SQLite store; a provider publishes a track and a photo;
//! three users buy through the edges; bills arrive in their boxes; one copy
//! leaks (cut and re-encoded as MP3) and is traced back to its buyer, as is
//! a cropped, recompressed copy of the photo; an unmarked file must come
//! back "no mark". Then alice rents the track from the home server and
//! plays it with seeks, bob orders it on a CD-R at the kiosk, and bob pays
//! his invoice; the ledger's balances sum to zero. Last, a camera shares a
//! short memo (attached) and a long recording (a download link) through a
//! phone's gateway to bob's mailbox, and bob's inbox saves both.

use std::path::PathBuf;

mod run;

pub use run::run;

/// What the demo runs with.
#[derive(Debug, Clone)]
pub struct DemoOptions {
    /// Working directory (data, copies, leaks); cleared first.
    pub dir: PathBuf,
    /// A directory of media to publish (audio and pictures) instead of
    /// generated music and the bundled photo.
    pub media: Option<PathBuf>,
    /// Print nothing (the narration goes to standard output).
    pub quiet: bool,
}

/// Why the demo stopped: a step that did not come out as the design says,
/// or a part that failed under it.
#[derive(Debug, thiserror::Error)]
pub enum DemoError {
    /// A step's outcome was not the expected one (the message says which).
    #[error("{0}")]
    Step(String),
    #[error(transparent)]
    Client(#[from] tracecast_client::ClientError),
    #[error(transparent)]
    Io(#[from] std::io::Error),
    #[error(transparent)]
    Http(#[from] reqwest::Error),
    #[error("a server of the demo did not start: {0}")]
    Node(#[from] tracecast_server::node::NodeError),
    #[error(transparent)]
    Secret(#[from] tracecast_secrets::SecretFileError),
    #[error(transparent)]
    Buy(#[from] tracecast_client::BuyError),
    #[error(transparent)]
    Inbox(#[from] tracecast_client::InboxError),
    #[error(transparent)]
    Save(#[from] tracecast_client::SaveError),
    #[error(transparent)]
    Mailbox(#[from] tracecast_mailbox::ProtocolError),
    #[error(transparent)]
    Media(#[from] tracecast_media::MediaError),
    #[error(transparent)]
    Attack(#[from] tracecast_attack::AttackError),
    #[error(transparent)]
    Protect(#[from] tracecast_protect::ProtectError),
    #[error(transparent)]
    Account(#[from] tracecast_share::AccountError),
}

pub(crate) type Result<T, E = DemoError> = std::result::Result<T, E>;

/// Says what a failed step was doing, as `anyhow::Context` would.
pub(crate) trait Context<T> {
    fn context(self, what: impl std::fmt::Display) -> Result<T, DemoError>;
    fn with_context<W: std::fmt::Display>(self, what: impl FnOnce() -> W) -> Result<T, DemoError>;
}

impl<T, E: std::fmt::Display> Context<T> for Result<T, E> {
    fn context(self, what: impl std::fmt::Display) -> Result<T, DemoError> {
        self.map_err(|e| DemoError::Step(format!("{what}: {e}")))
    }
    fn with_context<W: std::fmt::Display>(self, what: impl FnOnce() -> W) -> Result<T, DemoError> {
        self.map_err(|e| DemoError::Step(format!("{}: {e}", what())))
    }
}

impl<T> Context<T> for Option<T> {
    fn context(self, what: impl std::fmt::Display) -> Result<T, DemoError> {
        self.ok_or_else(|| DemoError::Step(what.to_string()))
    }
    fn with_context<W: std::fmt::Display>(self, what: impl FnOnce() -> W) -> Result<T, DemoError> {
        self.ok_or_else(|| DemoError::Step(what().to_string()))
    }
}

/// Stops the demo at a step that did not come out as expected.
macro_rules! fail {
    ($($arg:tt)*) => {
        return Err($crate::DemoError::Step(format!($($arg)*)))
    };
}
pub(crate) use fail;
