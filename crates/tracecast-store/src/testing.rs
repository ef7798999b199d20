//! Throwaway stores for tests of stateful behaviour, one per backend, so
//! every such test runs against SQLite and PostgreSQL alike.
//!
//! PostgreSQL is found at `$TRACECAST_TEST_POSTGRES` (default
//! `postgres://postgres@127.0.0.1:5432`); each store gets a fresh database
//! that [`TestStore::finish`] drops.

use sqlx::{AnyConnection, Connection, Executor};

use crate::{Backend, Store, StoreError};

/// A store on a fresh database, removed by [`TestStore::finish`].
pub struct TestStore {
    pub store: Store,
    pub url: String,
    dir: Option<tempfile_dir::Dir>,
    pg_database: Option<String>,
}

mod tempfile_dir {
    /// A directory removed on drop (tests only; no dependency for it).
    pub struct Dir(pub std::path::PathBuf);
    impl Drop for Dir {
        fn drop(&mut self) {
            let _ = std::fs::remove_dir_all(&self.0);
        }
    }
}

/// Where the test PostgreSQL server is.
pub fn postgres_base() -> String {
    std::env::var("TRACECAST_TEST_POSTGRES")
        .unwrap_or_else(|_| "postgres://postgres@127.0.0.1:5432".to_owned())
}

fn unique(prefix: &str) -> String {
    use std::sync::atomic::{AtomicU32, Ordering};
    static N: AtomicU32 = AtomicU32::new(0);
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.subsec_nanos())
        .unwrap_or(0);
    format!(
        "{prefix}_{}_{}_{nanos}",
        std::process::id(),
        N.fetch_add(1, Ordering::Relaxed)
    )
}

impl TestStore {
    /// A store on each backend.
    pub async fn both() -> Vec<TestStore> {
        vec![
            Self::new(Backend::Sqlite).await.expect("SQLite test store"),
            Self::new(Backend::Postgres)
                .await
                .expect("PostgreSQL test store (is PostgreSQL running on 127.0.0.1:5432?)"),
        ]
    }

    pub async fn new(backend: Backend) -> Result<TestStore, StoreError> {
        let url = Self::fresh_url(backend).await?;
        let store = Store::open(&url).await?;
        let (dir, pg_database) = match backend {
            Backend::Sqlite => (
                Some(tempfile_dir::Dir(
                    std::path::Path::new(url.trim_start_matches("sqlite://"))
                        .parent()
                        .expect("a directory")
                        .to_owned(),
                )),
                None,
            ),
            Backend::Postgres => (None, url.rsplit('/').next().map(str::to_owned)),
        };
        Ok(TestStore {
            store,
            url,
            dir,
            pg_database,
        })
    }

    /// A URL to a new, empty database (for tests that open the store in
    /// another process). For PostgreSQL the caller drops it with
    /// [`drop_postgres_database`].
    pub async fn fresh_url(backend: Backend) -> Result<String, StoreError> {
        match backend {
            Backend::Sqlite => {
                let dir = std::env::temp_dir().join(unique("tracecast-test"));
                std::fs::create_dir_all(&dir).map_err(sqlx::Error::Io)?;
                Ok(format!("sqlite://{}", dir.join("tracecast.db").display()))
            }
            Backend::Postgres => {
                sqlx::any::install_default_drivers();
                let name = unique("tracecast_test");
                let mut admin =
                    AnyConnection::connect(&format!("{}/postgres", postgres_base())).await?;
                admin
                    .execute(format!("CREATE DATABASE {name}").as_str())
                    .await?;
                admin.close().await?;
                Ok(format!("{}/{name}", postgres_base()))
            }
        }
    }

    pub fn backend(&self) -> Backend {
        self.store.backend()
    }

    /// Closes the store and removes its database.
    pub async fn finish(self) {
        let TestStore {
            store,
            dir,
            pg_database,
            ..
        } = self;
        store.close().await;
        if let Some(name) = pg_database {
            drop_postgres_database(&name).await;
        }
        drop(dir);
    }
}

/// Drops a test database (best effort).
pub async fn drop_postgres_database(name: &str) {
    if let Ok(mut admin) = AnyConnection::connect(&format!("{}/postgres", postgres_base())).await {
        let _ = admin
            .execute(format!("DROP DATABASE IF EXISTS {name} WITH (FORCE)").as_str())
            .await;
        let _ = admin.close().await;
    }
}
