//! Test databases for this crate's tests and other crates' (feature `testing`).
//!
//! A [`TestDatabase`] is fresh and private to one test: on SQLite a temporary folder, on
//! PostgreSQL a new database `lrs_test_<random>` created through the admin URL in
//! `DATABASE_URL`. [`for_each_backend`] runs one test body on SQLite always and on PostgreSQL
//! when `DATABASE_URL` is set, which is how a service's storage conformance suite runs.
//!
//! Cleanup: [`TestDatabase::close`] drops the PostgreSQL database (closing any connection
//! still open to it, `WITH (FORCE)`) or removes the folder. A test database that is dropped
//! without `close`, as when a test panics, is cleaned up in `Drop`: a separate thread with its
//! own runtime drops the PostgreSQL database and `Drop` waits for it, so it works inside or
//! outside an async runtime. Only a process that is killed leaves a database behind;
//! `docs/postgres.md` shows how to remove those.

use sqlx::{Connection, Executor, PgConnection};
use tempfile::TempDir;

use crate::config::{Backend, DatabaseConfig};
use crate::database::{Database, connect};
use crate::error::StoreError;
use crate::redact::redact_url;

/// The environment variable holding the PostgreSQL admin URL for tests.
pub const DATABASE_URL: &str = "DATABASE_URL";

/// A fresh database for one test, removed by [`TestDatabase::close`] or on drop.
#[derive(Debug)]
pub struct TestDatabase {
    config: DatabaseConfig,
    cleanup: Option<Cleanup>,
}

/// What has to be removed when the test database goes away.
#[derive(Debug)]
enum Cleanup {
    /// The temporary folder with the SQLite files.
    Sqlite(TempDir),
    /// The PostgreSQL database and the admin URL to drop it through.
    Postgres { admin_url: String, name: String },
}

impl TestDatabase {
    /// A fresh SQLite data folder in a temporary directory.
    pub fn sqlite() -> Result<Self, StoreError> {
        let folder = tempfile::Builder::new()
            .prefix("lrs-test-")
            .tempdir()
            .map_err(StoreError::TempDir)?;
        Ok(Self {
            config: DatabaseConfig::sqlite(folder.path().join("data")),
            cleanup: Some(Cleanup::Sqlite(folder)),
        })
    }

    /// A fresh PostgreSQL database `lrs_test_<random>`, created through `admin_url` (a role
    /// that may create databases).
    pub async fn postgres(admin_url: &str) -> Result<Self, StoreError> {
        let name = format!("lrs_test_{}", uuid::Uuid::new_v4().simple());
        let error = |source| StoreError::TestDatabase {
            action: "create",
            name: name.clone(),
            admin_url: redact_url(admin_url),
            source,
        };
        let url = database_url(admin_url, &name).map_err(error)?;

        let mut admin = PgConnection::connect(admin_url).await.map_err(error)?;
        // template0 takes no connections, so concurrent creations never find it busy.
        let create = format!("CREATE DATABASE \"{name}\" TEMPLATE template0");
        let created = admin.execute(create.as_str()).await.map_err(error);
        let _ = admin.close().await;
        created?;

        Ok(Self {
            config: DatabaseConfig::postgres(url),
            cleanup: Some(Cleanup::Postgres {
                admin_url: admin_url.to_owned(),
                name,
            }),
        })
    }

    /// A fresh database on `backend`: PostgreSQL through the admin URL in `DATABASE_URL`, or
    /// `None` when that variable is unset or empty.
    pub async fn for_backend(backend: Backend) -> Result<Option<Self>, StoreError> {
        match backend {
            Backend::Sqlite => Self::sqlite().map(Some),
            Backend::Postgres => match admin_url_from_env() {
                Some(url) => Self::postgres(&url).await.map(Some),
                None => Ok(None),
            },
        }
    }

    /// Which backend this test database is on.
    pub fn backend(&self) -> Backend {
        self.config.backend()
    }

    /// A configuration block that points at this test database, for code that connects by
    /// itself (a service started in-process).
    pub fn config(&self) -> &DatabaseConfig {
        &self.config
    }

    /// Opens the database of `service_name` in this test database (its schema, or its file).
    pub async fn connect(&self, service_name: &str) -> Result<Database, StoreError> {
        connect(&self.config, service_name).await
    }

    /// Removes the test database now and reports a failure.
    pub async fn close(mut self) -> Result<(), StoreError> {
        match self.cleanup.take() {
            Some(Cleanup::Postgres { admin_url, name }) => drop_database(&admin_url, &name).await,
            Some(Cleanup::Sqlite(folder)) => {
                remove_folder(folder);
                Ok(())
            }
            None => Ok(()),
        }
    }
}

impl Drop for TestDatabase {
    fn drop(&mut self) {
        let Some(cleanup) = self.cleanup.take() else {
            return;
        };
        let (admin_url, name) = match cleanup {
            Cleanup::Sqlite(folder) => return remove_folder(folder),
            Cleanup::Postgres { admin_url, name } => (admin_url, name),
        };

        // A runtime cannot block on a future inside another runtime, so the drop runs on a
        // thread of its own; waiting for it keeps the database from outliving the test.
        let dropper = std::thread::spawn(move || {
            let runtime = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .map_err(|error| format!("cannot start a runtime to drop `{name}`: {error}"))?;
            runtime
                .block_on(drop_database(&admin_url, &name))
                .map_err(|error| error.to_string())
        });
        match dropper.join() {
            Ok(Ok(())) => {}
            Ok(Err(error)) => eprintln!("test database left behind: {error}"),
            Err(_) => eprintln!("test database left behind: the cleanup thread panicked"),
        }
    }
}

/// Runs `test` on a fresh database for `service_name` on SQLite, then on PostgreSQL when
/// `DATABASE_URL` is set (printing a line that says it was skipped otherwise). Each run gets
/// its own test database, removed afterwards; the body applies the service's migrations.
///
/// ```ignore
/// lrs_store::testing::for_each_backend("learner", async |database| {
///     database.migrate(&POSTGRES, &SQLITE).await.unwrap();
///     conformance::run(&store_for(database)).await;
/// })
/// .await;
/// ```
///
/// # Panics
///
/// When a test database cannot be created or opened, and when `test` panics.
pub async fn for_each_backend<F>(service_name: &str, mut test: F)
where
    F: AsyncFnMut(Database),
{
    for backend in [Backend::Sqlite, Backend::Postgres] {
        let test_database = TestDatabase::for_backend(backend)
            .await
            .unwrap_or_else(|error| panic!("{service_name} on {backend}: {error}"));
        let Some(test_database) = test_database else {
            println!("{service_name}: {backend} skipped, {DATABASE_URL} is not set");
            continue;
        };
        let database = test_database
            .connect(service_name)
            .await
            .unwrap_or_else(|error| panic!("{service_name} on {backend}: {error}"));

        test(database.clone()).await;

        database.close().await;
        if let Err(error) = test_database.close().await {
            eprintln!("test database left behind: {error}");
        }
    }
}

/// The admin URL for PostgreSQL tests, `None` when `DATABASE_URL` is unset or empty.
pub fn admin_url_from_env() -> Option<String> {
    std::env::var(DATABASE_URL)
        .ok()
        .filter(|url| !url.trim().is_empty())
}

/// `admin_url` with its database replaced by `name`.
fn database_url(admin_url: &str, name: &str) -> Result<String, sqlx::Error> {
    let mut url =
        url::Url::parse(admin_url).map_err(|error| sqlx::Error::Configuration(Box::new(error)))?;
    url.set_path(&format!("/{name}"));
    // A `dbname` parameter would override the path.
    let pairs: Vec<(String, String)> = url
        .query_pairs()
        .filter(|(key, _)| key != "dbname")
        .map(|(key, value)| (key.into_owned(), value.into_owned()))
        .collect();
    if pairs.is_empty() {
        url.set_query(None);
    } else {
        url.query_pairs_mut().clear().extend_pairs(pairs);
    }
    Ok(url.to_string())
}

/// Drops the test database `name`, closing the connections still open to it.
async fn drop_database(admin_url: &str, name: &str) -> Result<(), StoreError> {
    let error = |source| StoreError::TestDatabase {
        action: "drop",
        name: name.to_owned(),
        admin_url: redact_url(admin_url),
        source,
    };
    let mut admin = PgConnection::connect(admin_url).await.map_err(error)?;
    let statement = format!("DROP DATABASE IF EXISTS \"{name}\" WITH (FORCE)");
    let dropped = admin.execute(statement.as_str()).await.map_err(error);
    let _ = admin.close().await;
    dropped.map(drop)
}

/// Removes a temporary folder, saying so when it cannot.
fn remove_folder(folder: TempDir) {
    let path = folder.path().to_owned();
    if let Err(error) = folder.close() {
        eprintln!("test folder {} left behind: {error}", path.display());
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Whether the database `name` exists on the server behind `admin_url`.
    async fn database_exists(admin_url: &str, name: &str) -> bool {
        let mut admin = PgConnection::connect(admin_url).await.unwrap();
        let exists =
            sqlx::query_scalar("SELECT EXISTS (SELECT 1 FROM pg_database WHERE datname = $1)")
                .bind(name)
                .fetch_one(&mut admin)
                .await
                .unwrap();
        admin.close().await.unwrap();
        exists
    }

    fn postgres_name(test: &TestDatabase) -> String {
        match &test.cleanup {
            Some(Cleanup::Postgres { name, .. }) => name.clone(),
            other => panic!("expected a PostgreSQL test database, got {other:?}"),
        }
    }

    #[test]
    fn database_url_replaces_the_database() {
        assert_eq!(
            database_url("postgres://u:p@host:5432/test", "lrs_test_x").unwrap(),
            "postgres://u:p@host:5432/lrs_test_x"
        );
        assert_eq!(
            database_url(
                "postgres://host/test?dbname=test&sslmode=disable",
                "lrs_test_x"
            )
            .unwrap(),
            "postgres://host/lrs_test_x?sslmode=disable"
        );
        assert!(database_url("not a url", "lrs_test_x").is_err());
    }

    #[tokio::test]
    async fn sqlite_folder_is_removed_on_close_and_on_drop() {
        let closed = TestDatabase::sqlite().unwrap();
        closed.connect("learner").await.unwrap().close().await;
        let folder = closed.config().data_dir.parent().unwrap().to_owned();
        assert!(folder.join("data/learner.db").is_file());
        closed.close().await.unwrap();
        assert!(!folder.exists());

        let dropped = TestDatabase::sqlite().unwrap();
        let folder = dropped.config().data_dir.parent().unwrap().to_owned();
        drop(dropped);
        assert!(!folder.exists());
    }

    #[tokio::test]
    async fn postgres_database_is_dropped_on_close_and_on_drop() {
        let Some(admin_url) = admin_url_from_env() else {
            println!("test database cleanup on postgres: skipped, {DATABASE_URL} is not set");
            return;
        };

        let closed = TestDatabase::postgres(&admin_url).await.unwrap();
        let name = postgres_name(&closed);
        assert!(name.starts_with("lrs_test_"));
        assert!(database_exists(&admin_url, &name).await);
        // A connection still open does not keep the database alive.
        let database = closed.connect("learner").await.unwrap();
        closed.close().await.unwrap();
        assert!(!database_exists(&admin_url, &name).await);
        drop(database);

        let dropped = TestDatabase::postgres(&admin_url).await.unwrap();
        let name = postgres_name(&dropped);
        let _database = dropped.connect("learner").await.unwrap();
        drop(dropped);
        assert!(!database_exists(&admin_url, &name).await);
    }

    #[tokio::test]
    async fn postgres_test_database_with_bad_admin_url_names_it() {
        let error = TestDatabase::postgres("postgres://u:hunter2@127.0.0.1:1/test")
            .await
            .unwrap_err();
        let message = error.to_string();
        assert!(message.contains("u:***@127.0.0.1:1"), "{message}");
        assert!(!message.contains("hunter2"), "{message}");
    }
}
