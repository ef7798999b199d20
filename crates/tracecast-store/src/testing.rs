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

/// A local S3-compatible server for tests (moto, from PyPI), with one
/// bucket made; stopped on drop. Found at `$TRACECAST_MOTO`, else in the
/// workspace's `target/moto-venv` (made by `scripts/test`), else on PATH.
pub struct S3Server {
    child: std::process::Child,
    pub endpoint: String,
    pub bucket: String,
}

impl Drop for S3Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl S3Server {
    pub fn start(bucket: &str) -> S3Server {
        use std::io::{Read, Write};
        let bin = std::env::var("TRACECAST_MOTO")
            .map(std::path::PathBuf::from)
            .unwrap_or_else(|_| {
                let venv = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
                    .join("../../target/moto-venv/bin/moto_server");
                if venv.exists() {
                    venv
                } else {
                    "moto_server".into()
                }
            });
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .and_then(|l| l.local_addr())
            .map(|a| a.port())
            .expect("a free port");
        let child = std::process::Command::new(&bin)
            .args(["-H", "127.0.0.1", "-p", &port.to_string()])
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::null())
            .spawn()
            .unwrap_or_else(|e| {
                panic!(
                    "{}: {e}. Install the S3 test server: python3 -m venv target/moto-venv && \
                     target/moto-venv/bin/pip install 'moto[server]' (scripts/test does)",
                    bin.display()
                )
            });
        let server = S3Server {
            child,
            endpoint: format!("http://127.0.0.1:{port}"),
            bucket: bucket.to_owned(),
        };
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(30);
        loop {
            // moto takes unsigned requests: PUT /bucket creates it.
            if let Ok(mut s) = std::net::TcpStream::connect(("127.0.0.1", port)) {
                let req = format!(
                    "PUT /{bucket} HTTP/1.0\r\nHost: 127.0.0.1\r\nContent-Length: 0\r\n\r\n"
                );
                let mut head = [0u8; 12];
                if s.write_all(req.as_bytes()).is_ok()
                    && s.read_exact(&mut head).is_ok()
                    && &head[9..10] == b"2"
                {
                    return server;
                }
            }
            assert!(std::time::Instant::now() < deadline, "moto did not start");
            std::thread::sleep(std::time::Duration::from_millis(100));
        }
    }

    /// Settings for the blob store on this server.
    pub fn settings(&self) -> crate::blob::S3Settings {
        crate::blob::S3Settings {
            bucket: self.bucket.clone(),
            endpoint: Some(self.endpoint.clone()),
            region: Some("us-east-1".into()),
            allow_http: true,
            ..Default::default()
        }
    }
}
