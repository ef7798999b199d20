//! The metadata store: one interface over two backends, SQLite (the embedded
//! default, one file under the data directory) and PostgreSQL (scale-out),
//! through sqlx with migrations for each.
//!
//! SQL is written once in the dialect both accept (`$1` parameters,
//! `RETURNING`, `ON CONFLICT`, integers as BIGINT), through sqlx's `Any`
//! driver; only the schema files differ.
//!
//! Writes on hot paths go through one writer task that commits them in
//! groups ([`writer`]): each caller is answered only after the transaction
//! holding its write is durable (SQLite `synchronous=FULL` in WAL mode,
//! PostgreSQL `synchronous_commit=on`), and one fsync covers every write that
//! arrived while the previous one ran.

pub mod blob;
mod consumer;
mod contracts;
mod delivery;
mod ids;
mod ledger;
mod mailbox;
mod members;
mod notify;
mod protect;
mod service;
mod sites;
mod writer;

pub use contracts::{ContractRecord, ContractsOf};
#[doc(hidden)]
/// Throwaway stores for tests; compiled for tests and with the `testing`
/// feature, never into a product build.
#[cfg(any(test, feature = "testing"))]
pub mod testing;

use std::path::Path;
use std::str::FromStr;
use std::time::Duration;

use sqlx::any::{AnyConnectOptions, AnyPoolOptions};
use sqlx::{AnyPool, Executor};

pub use blob::{BlobError, Blobs};
pub use consumer::Applied;
pub use delivery::{
    AbFlacRecord, AbMp3Record, AbVariantsRecord, Account, AccountKind, ContentRecord,
    DeliveryRecord, EdgeCopy, EdgeLoad, EdgeRecord, EdgeRevocation, HlsVariantsRecord, KindInStore,
    NewContent, NewDelivery, NewEdge, RenditionRecord,
};
pub use ids::{AccountId, BusinessId, EdgeId, GatewayId, PartnerId, ProviderId, SiteId, UserId};
pub use ledger::{LedgerLine, StatementRecord, StatementView};
pub use mailbox::{
    BoxInfo, BoxKindDepth, BoxStats, DisposeOutcome, Fetch, FetchedMessage, MessageMeta,
    NewMessage, PostReceipt, Principal, SweepReport,
};
pub use members::{
    ApplicationRecord, BulkMember, LeakChanges, MemberGraph, MemberRecord, MemberRegistration,
    ReservedRequestRecord,
};
pub use notify::{MailListener, MailNotice};
pub use protect::{ContentKeyRecord, ConversionRecord, LicenceRecord, PartnerConsent, Spend};
pub use service::{DeviceRecord, NewUpload, ServiceAccountRecord, UploadRecord};
pub use sites::{HomeCopy, KioskOrder, NewSite, SiteRecord};
pub use sqlx::AnyConnection;

/// Errors of the store. `Unavailable` is the database failing (retry
/// later); the others are the caller's mistake and change nothing.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    #[error("database error: {0}")]
    Database(#[from] sqlx::Error),
    #[error("migrating the database failed: {0}")]
    Migrate(#[from] sqlx::migrate::MigrateError),
    #[error("database URL {0:?} is not supported: use sqlite://PATH or postgres://USER@HOST/DB")]
    Url(String),
    #[error("no box named {0:?}")]
    UnknownBox(String),
    #[error("a box named {0:?} already exists")]
    BoxExists(String),
    #[error("message {0} is not in this box")]
    UnknownMessage(i64),
    #[error("message {0} was already {1} and is no longer pending")]
    Gone(i64, &'static str),
    #[error("message {0} was deleted; it cannot be moved to the processed store")]
    Conflict(i64),
    #[error("the store is shutting down")]
    Closed,
    #[error("{0}")]
    Invalid(String),
}

impl StoreError {
    /// True when the database itself failed, rather than the request.
    pub fn is_unavailable(&self) -> bool {
        matches!(
            self,
            StoreError::Database(_) | StoreError::Migrate(_) | StoreError::Closed
        )
    }
}

/// Which database is behind the store.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Backend {
    Sqlite,
    Postgres,
}

impl Backend {
    pub fn name(self) -> &'static str {
        match self {
            Backend::Sqlite => "sqlite",
            Backend::Postgres => "postgres",
        }
    }
}

/// The store: a pool for reads and one group-committing writer.
#[derive(Clone)]
pub struct Store {
    pool: AnyPool,
    writer: writer::Writer,
    backend: Backend,
    /// The PostgreSQL URL, for the mail listener's own connection (never
    /// printed: it may hold a password).
    listen_url: Option<std::sync::Arc<str>>,
}

impl std::fmt::Debug for Store {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Store")
            .field("backend", &self.backend)
            .finish()
    }
}

impl Store {
    /// Opens (creating if needed) the embedded SQLite store in `data_dir`.
    pub async fn open_dir(data_dir: &Path) -> Result<Self, StoreError> {
        std::fs::create_dir_all(data_dir).map_err(|e| {
            StoreError::Database(sqlx::Error::Io(std::io::Error::new(
                e.kind(),
                format!("creating {}: {e}", data_dir.display()),
            )))
        })?;
        let file = data_dir.join("tracecast.db");
        Self::open(&format!("sqlite://{}", file.display())).await
    }

    /// Opens the store at a database URL (`sqlite://PATH` or
    /// `postgres://...`) and brings its schema up to date.
    pub async fn open(url: &str) -> Result<Self, StoreError> {
        sqlx::any::install_default_drivers();
        let backend = if url.starts_with("sqlite:") {
            Backend::Sqlite
        } else if url.starts_with("postgres:") || url.starts_with("postgresql:") {
            Backend::Postgres
        } else {
            return Err(StoreError::Url(redact(url)));
        };
        let url = match backend {
            // Create the file on first use.
            Backend::Sqlite if !url.contains("mode=") => {
                let sep = if url.contains('?') { '&' } else { '?' };
                format!("{url}{sep}mode=rwc")
            }
            _ => url.to_owned(),
        };
        let options = AnyConnectOptions::from_str(&url)?;
        let (readers, writers) = match backend {
            Backend::Sqlite => (4, 1),
            Backend::Postgres => (8, 1),
        };
        let pool = pool_options(backend, readers)
            .connect_with(options.clone())
            .await?;
        match backend {
            Backend::Sqlite => sqlx::migrate!("./migrations/sqlite").run(&pool).await?,
            Backend::Postgres => sqlx::migrate!("./migrations/postgres").run(&pool).await?,
        }
        let write_pool = pool_options(backend, writers).connect_with(options).await?;
        Ok(Self {
            pool,
            writer: writer::Writer::start(write_pool, backend),
            backend,
            listen_url: (backend == Backend::Postgres).then(|| url.as_str().into()),
        })
    }

    pub fn backend(&self) -> Backend {
        self.backend
    }

    /// The read pool, for queries of later roles.
    pub fn pool(&self) -> &AnyPool {
        &self.pool
    }

    /// Hears of mail posted by any process on this database: `Some` on
    /// PostgreSQL (LISTEN/NOTIFY), `None` on SQLite, where one process
    /// serves the store and hears of its own posts.
    pub async fn listen_mail(&self) -> Result<Option<MailListener>, StoreError> {
        match &self.listen_url {
            Some(url) => Ok(Some(MailListener::connect(url).await?)),
            None => Ok(None),
        }
    }

    /// Whether the database answers (readiness checks).
    pub async fn ping(&self) -> Result<(), StoreError> {
        sqlx::query("SELECT 1").execute(&self.pool).await?;
        Ok(())
    }

    /// Resolves when the store is being closed (background tasks end).
    pub async fn closed(&self) {
        self.writer.closed().await
    }

    /// Waits for queued writes and closes the connections.
    pub async fn close(self) {
        self.writer.close().await;
        self.pool.close().await;
    }
}

fn pool_options(backend: Backend, max: u32) -> AnyPoolOptions {
    AnyPoolOptions::new()
        .max_connections(max)
        .acquire_timeout(Duration::from_secs(10))
        .after_connect(move |conn, _meta| {
            Box::pin(async move {
                if backend == Backend::Sqlite {
                    // WAL lets readers run beside the writer; FULL makes
                    // every commit reach the disk before it returns.
                    conn.execute(
                        "PRAGMA journal_mode = WAL; PRAGMA synchronous = FULL; \
                         PRAGMA foreign_keys = ON; PRAGMA busy_timeout = 10000;",
                    )
                    .await?;
                }
                Ok(())
            })
        })
}

/// A database URL without its password, for error messages.
fn redact(url: &str) -> String {
    match (url.find("://"), url.find('@')) {
        (Some(s), Some(at)) if at > s => {
            let creds = &url[s + 3..at];
            match creds.find(':') {
                Some(c) => format!("{}{}:***{}", &url[..s + 3], &creds[..c], &url[at..]),
                None => url.to_owned(),
            }
        }
        _ => url.to_owned(),
    }
}

/// Milliseconds since the Unix epoch.
pub fn now_ms() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_millis() as i64)
        .unwrap_or(0)
}

/// A text column read as its type (a tier, a kind, a status): a value the
/// type does not know is a decode error naming the column, never a
/// default.
pub(crate) fn typed<T, I>(row: &sqlx::any::AnyRow, index: I) -> Result<T, sqlx::Error>
where
    T: TryFrom<String>,
    T::Error: std::fmt::Display,
    I: sqlx::ColumnIndex<sqlx::any::AnyRow> + std::fmt::Display + Copy,
{
    use sqlx::Row;
    let text: String = row.try_get(index)?;
    T::try_from(text).map_err(|e| sqlx::Error::ColumnDecode {
        index: index.to_string(),
        source: e.to_string().into(),
    })
}

/// [`typed`] for a column that may be NULL.
pub(crate) fn typed_opt<T, I>(row: &sqlx::any::AnyRow, index: I) -> Result<Option<T>, sqlx::Error>
where
    T: TryFrom<String>,
    T::Error: std::fmt::Display,
    I: sqlx::ColumnIndex<sqlx::any::AnyRow> + std::fmt::Display + Copy,
{
    use sqlx::Row;
    let text: Option<String> = row.try_get(index)?;
    text.map(|t| {
        T::try_from(t).map_err(|e| sqlx::Error::ColumnDecode {
            index: index.to_string(),
            source: e.to_string().into(),
        })
    })
    .transpose()
}

#[cfg(test)]
mod tests {
    #[test]
    fn passwords_never_reach_error_messages() {
        assert_eq!(
            super::redact("postgres://app:s3cret@db/tc"),
            "postgres://app:***@db/tc"
        );
        assert_eq!(super::redact("mysql://x"), "mysql://x");
    }
}
