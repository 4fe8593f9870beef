//! A throw-away PostgreSQL database per test (feature `testing`).
//!
//! The server comes from `MFTPLUS_TEST_PG_URL`, an admin URL whose role may `CREATE DATABASE`
//! (`scripts/pg-test-setup.sh` prints one for the local cluster). Each call creates an empty
//! database with a random name and returns its URL; dropping the guard drops the database.
//!
//! ```no_run
//! # async fn example() {
//! use mftplus_store::Store;
//! let Some(db) = mftplus_store_postgres::testing::fresh_database().await else { return };
//! let store = mftplus_store_postgres::PostgresStore::connect(db.url()).await.unwrap();
//! store.migrate().await.unwrap();
//! # }
//! ```

use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{SystemTime, UNIX_EPOCH};

use tokio_postgres::NoTls;

/// Admin URL of the test server, e.g. `postgres://mftplus:mftplus@127.0.0.1:5432/postgres`.
pub const URL_ENV: &str = "MFTPLUS_TEST_PG_URL";
/// Set to `1` to skip PostgreSQL tests (with a loud line) instead of failing without a server.
pub const SKIP_ENV: &str = "MFTPLUS_SKIP_PG";

/// A database that exists until this guard is dropped (or [`TestDatabase::drop_now`]).
#[derive(Debug)]
pub struct TestDatabase {
    url: String,
    name: String,
    admin_url: String,
    dropped: bool,
}

/// Creates a fresh, empty database.
///
/// Returns `None` after printing a skip line when `MFTPLUS_SKIP_PG=1`; the test should then
/// return early. Panics, naming the fix, when `MFTPLUS_TEST_PG_URL` is unset or the server
/// cannot be reached: a PostgreSQL test that silently does nothing would hide regressions.
pub async fn fresh_database() -> Option<TestDatabase> {
    let test = std::thread::current()
        .name()
        .unwrap_or("<unnamed test>")
        .to_string();
    if std::env::var(SKIP_ENV).is_ok_and(|value| value == "1") {
        eprintln!("\n!!! SKIPPED {test}: PostgreSQL tests disabled by {SKIP_ENV}=1 !!!\n");
        return None;
    }
    let Ok(admin_url) = std::env::var(URL_ENV) else {
        panic!(
            "{test} needs PostgreSQL: {URL_ENV} is not set. Run the tests through \
             scripts/test.sh, which starts a local server and sets it (or run \
             scripts/pg-test-setup.sh and export the line it prints). \
             Set {SKIP_ENV}=1 to skip PostgreSQL tests."
        );
    };
    let name = unique_name();
    let admin = admin_client(&admin_url).await;
    admin
        .batch_execute(&format!("CREATE DATABASE \"{name}\""))
        .await
        .unwrap_or_else(|err| panic!("CREATE DATABASE {name} failed: {err}"));
    Some(TestDatabase {
        url: with_database(&admin_url, &name),
        name,
        admin_url,
        dropped: false,
    })
}

impl TestDatabase {
    /// URL of the fresh database, for `PostgresStore::connect` or a cloud config.
    pub fn url(&self) -> &str {
        &self.url
    }

    pub fn name(&self) -> &str {
        &self.name
    }

    /// Drops the database now, terminating connections still open to it.
    pub async fn drop_now(mut self) {
        self.dropped = true;
        if let Err(err) = drop_database(&self.admin_url, &self.name).await {
            eprintln!("warning: could not drop test database {}: {err}", self.name);
        }
    }
}

impl Drop for TestDatabase {
    /// Best effort. `Drop` cannot await and may run inside a runtime, so the drop runs on its
    /// own thread with its own small runtime; we wait for it so the database is gone before the
    /// test process exits.
    fn drop(&mut self) {
        if self.dropped {
            return;
        }
        let (admin_url, name) = (self.admin_url.clone(), self.name.clone());
        let outcome = std::thread::spawn(move || {
            let runtime = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .map_err(|err| err.to_string())?;
            runtime
                .block_on(drop_database(&admin_url, &name))
                .map_err(|err| err.to_string())
        })
        .join();
        if !matches!(outcome, Ok(Ok(()))) {
            eprintln!("warning: could not drop test database {}", self.name);
        }
    }
}

async fn admin_client(admin_url: &str) -> tokio_postgres::Client {
    let (client, connection) = tokio_postgres::connect(admin_url, NoTls)
        .await
        .unwrap_or_else(|err| {
            panic!(
                "cannot connect to {URL_ENV}: {err}. Is the server running? \
                 scripts/pg-test-setup.sh starts the local one."
            )
        });
    tokio::spawn(connection);
    client
}

async fn drop_database(admin_url: &str, name: &str) -> Result<(), tokio_postgres::Error> {
    let (client, connection) = tokio_postgres::connect(admin_url, NoTls).await?;
    let driver = tokio::spawn(connection);
    // FORCE (PostgreSQL 13+) ends sessions a test left open, such as a store's pool.
    let result = client
        .batch_execute(&format!("DROP DATABASE IF EXISTS \"{name}\" WITH (FORCE)"))
        .await;
    drop(client);
    let _ = driver.await;
    result
}

/// Lower-case and short enough for an unquoted identifier; unique across parallel tests in one
/// process (counter) and across processes and runs (pid, clock).
fn unique_name() -> String {
    static COUNTER: AtomicU64 = AtomicU64::new(0);
    let nanos = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |elapsed| elapsed.as_nanos() as u64);
    let count = COUNTER.fetch_add(1, Ordering::Relaxed);
    format!("t_{:x}_{:x}_{count}", std::process::id(), nanos)
}

/// Swaps the database name in a `postgres://` URL, keeping credentials, host and parameters.
fn with_database(url: &str, name: &str) -> String {
    let Some(scheme_end) = url.find("://") else {
        panic!("{URL_ENV} must be a postgres:// URL, got key=value form");
    };
    let after_scheme = scheme_end + 3;
    let (base, query) = match url.find('?') {
        Some(at) => (&url[..at], &url[at..]),
        None => (url, ""),
    };
    let authority_end = base[after_scheme..]
        .find('/')
        .map_or(base.len(), |at| after_scheme + at);
    format!("{}/{name}{query}", &base[..authority_end])
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn swaps_the_database_name() {
        assert_eq!(
            with_database("postgres://u:p@127.0.0.1:5432/postgres", "t_1"),
            "postgres://u:p@127.0.0.1:5432/t_1"
        );
        assert_eq!(
            with_database("postgres://u@host", "t_1"),
            "postgres://u@host/t_1"
        );
        assert_eq!(
            with_database("postgresql://u@host/db?connect_timeout=5", "t_1"),
            "postgresql://u@host/t_1?connect_timeout=5"
        );
    }

    #[test]
    fn names_are_unique_identifiers() {
        let (a, b) = (unique_name(), unique_name());
        assert_ne!(a, b);
        assert!(a.len() < 63 && a.starts_with("t_"));
        assert!(a
            .chars()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '_'));
    }
}
