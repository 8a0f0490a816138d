//! Opening a service's database, applying its migrations and reading its schema version.

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use sqlx::migrate::Migrator;
use sqlx::pool::PoolOptions;
use sqlx::postgres::PgPool;
use sqlx::sqlite::{SqliteConnectOptions, SqliteJournalMode, SqlitePool, SqliteSynchronous};
use sqlx::{Connection, Executor, Row};

use crate::config::{Backend, DatabaseConfig};
use crate::error::StoreError;

/// How long a SQLite connection waits for a lock held by another connection or process.
const SQLITE_BUSY_TIMEOUT: Duration = Duration::from_secs(5);

/// A pooled connection that sat idle longer than this is pinged before it is handed out;
/// one in use a moment ago is handed out as it is. Pinging on every acquire, sqlx's default,
/// adds a round trip to the database to every statement the suite runs.
const PING_IF_IDLE_FOR: Duration = Duration::from_secs(10);

/// The table in which sqlx records the applied migrations (in the service's schema).
const MIGRATIONS_TABLE: &str = "_sqlx_migrations";

/// One service's open database: its pools, ready for the service's store module.
///
/// Cloning is cheap and shares the pools.
#[derive(Debug, Clone)]
pub enum Database {
    /// The service's schema in a PostgreSQL database.
    Postgres(PostgresDatabase),
    /// The service's own SQLite file.
    Sqlite(SqliteDatabase),
}

/// A PostgreSQL pool whose connections all work in one service's schema.
#[derive(Debug, Clone)]
pub struct PostgresDatabase {
    pool: PgPool,
    schema: String,
    url: String,
}

impl PostgresDatabase {
    /// The pool; every connection has `search_path` set to the service's schema, then
    /// `public` (where a database administrator installs extensions such as `pg_trgm`).
    pub fn pool(&self) -> &PgPool {
        &self.pool
    }

    /// The service's schema, named after the service.
    pub fn schema(&self) -> &str {
        &self.schema
    }

    /// The URL the pool connects to, password removed.
    pub fn redacted_url(&self) -> &str {
        &self.url
    }
}

/// A service's SQLite file, with one pool for writes and one for reads.
///
/// SQLite allows one writer at a time. Rather than let several connections race for the
/// write lock (a deferred transaction that reads and then writes can fail at once with
/// `SQLITE_BUSY` when another connection committed in between, whatever the busy timeout),
/// every write goes through the writer pool, which holds a single connection: writers queue
/// for it in order, bounded by the acquire timeout. The reader pool holds up to
/// `--db-max-connections` connections with `query_only` on, so in WAL mode reads run beside
/// the writer and a write sent to a reader fails loudly instead of contending. The busy
/// timeout (5 s) still covers locks taken by another process, such as a migration run.
#[derive(Debug, Clone)]
pub struct SqliteDatabase {
    writer: SqlitePool,
    reader: SqlitePool,
    path: PathBuf,
}

impl SqliteDatabase {
    /// The pool for anything that writes (one connection, so writes are serialised).
    pub fn writer(&self) -> &SqlitePool {
        &self.writer
    }

    /// The pool for reads only (`PRAGMA query_only`; a write here fails).
    pub fn reader(&self) -> &SqlitePool {
        &self.reader
    }

    /// The database file.
    pub fn path(&self) -> &Path {
        &self.path
    }
}

/// Which migrations a database has applied, compared with those a service embeds.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SchemaStatus {
    /// The highest version applied successfully, `None` on an empty database.
    pub applied: Option<i64>,
    /// The highest version the service embeds, `None` when it has no migrations.
    pub expected: Option<i64>,
    /// Embedded versions not (or not successfully) applied, in ascending order.
    pub missing: Vec<i64>,
}

impl SchemaStatus {
    /// Whether every embedded migration is applied, so the service may report SERVING.
    ///
    /// A schema that is ahead (a newer release migrated it during a rolling upgrade) counts
    /// as ready: migrations are append-only, so the older code's tables are still there.
    pub fn is_ready(&self) -> bool {
        self.missing.is_empty()
    }
}

/// The highest up-migration version in `migrator`, `None` when it has none.
pub fn latest_version(migrator: &Migrator) -> Option<i64> {
    migrator
        .iter()
        .filter(|migration| !migration.migration_type.is_down_migration())
        .map(|migration| migration.version)
        .max()
}

/// Opens the database of the service `service_name` as `config` describes.
///
/// The configuration is validated first. On PostgreSQL the pool's connections work in the
/// schema named after the service (created by [`Database::migrate`]); on SQLite the file
/// `<data-dir>/<service>.db` is created if missing, in a folder created owner-only (0700).
/// One connection is opened at once, so an unreachable server or unwritable file is
/// reported here.
pub async fn connect(config: &DatabaseConfig, service_name: &str) -> Result<Database, StoreError> {
    config.validate()?;
    check_service_name(service_name)?;

    let database = match config.backend() {
        Backend::Postgres => Database::Postgres(connect_postgres(config, service_name).await?),
        Backend::Sqlite => Database::Sqlite(connect_sqlite(config, service_name).await?),
    };

    tracing::info!(
        service = service_name,
        backend = %database.backend(),
        target = %database.target(),
        "opened database"
    );
    Ok(database)
}

impl Database {
    /// Which engine this database runs on.
    pub fn backend(&self) -> Backend {
        match self {
            Self::Postgres(_) => Backend::Postgres,
            Self::Sqlite(_) => Backend::Sqlite,
        }
    }

    /// What this database is, for messages: the SQLite file, or the schema and the URL
    /// (password removed).
    pub fn target(&self) -> String {
        match self {
            Self::Postgres(postgres) => format!("schema `{}` at {}", postgres.schema, postgres.url),
            Self::Sqlite(sqlite) => sqlite.path.display().to_string(),
        }
    }

    /// Applies the migrations not yet applied (`postgres` or `sqlite`, whichever matches the
    /// backend) and returns the highest version now applied.
    ///
    /// On PostgreSQL the service's schema is created first when it is missing; a role that
    /// may not create schemas needs it created beforehand (see `docs/postgres.md`). The
    /// migrator's own table lives in the service's schema, so services migrate independently.
    pub async fn migrate(
        &self,
        postgres: &Migrator,
        sqlite: &Migrator,
    ) -> Result<Option<i64>, StoreError> {
        let outcome = match self {
            Self::Postgres(database) => {
                ensure_schema(database).await?;
                postgres.run(&database.pool).await
            }
            Self::Sqlite(database) => sqlite.run(&database.writer).await,
        };
        outcome.map_err(|source| StoreError::Migrate {
            target: self.target(),
            source,
        })?;

        let version = self.schema_version().await?;
        tracing::info!(target = %self.target(), version, "applied migrations");
        Ok(version)
    }

    /// The highest migration version applied successfully, `None` when none is (or the
    /// schema does not exist yet). Creates nothing.
    pub async fn schema_version(&self) -> Result<Option<i64>, StoreError> {
        Ok(self.applied_versions().await?.last().copied())
    }

    /// Compares the applied migrations with those the service embeds, so a service can stay
    /// NOT_SERVING until its schema is at the version it expects. Creates nothing.
    pub async fn schema_status(
        &self,
        postgres: &Migrator,
        sqlite: &Migrator,
    ) -> Result<SchemaStatus, StoreError> {
        let migrator = match self {
            Self::Postgres(_) => postgres,
            Self::Sqlite(_) => sqlite,
        };
        let applied = self.applied_versions().await?;
        let missing = migrator
            .iter()
            .filter(|migration| !migration.migration_type.is_down_migration())
            .map(|migration| migration.version)
            .filter(|version| !applied.contains(version))
            .collect::<BTreeSet<_>>()
            .into_iter()
            .collect();

        Ok(SchemaStatus {
            applied: applied.last().copied(),
            expected: latest_version(migrator),
            missing,
        })
    }

    /// Closes every pool, waiting for connections in use to be returned.
    pub async fn close(&self) {
        match self {
            Self::Postgres(database) => database.pool.close().await,
            Self::Sqlite(database) => {
                database.reader.close().await;
                database.writer.close().await;
            }
        }
    }

    /// The versions recorded as successfully applied.
    async fn applied_versions(&self) -> Result<BTreeSet<i64>, StoreError> {
        let versions = match self {
            Self::Postgres(database) => postgres_applied_versions(database).await,
            Self::Sqlite(database) => sqlite_applied_versions(&database.reader).await,
        };
        versions.map_err(|source| StoreError::SchemaVersion {
            target: self.target(),
            source,
        })
    }
}

/// Refuses names that cannot be used verbatim as a PostgreSQL schema and a file name.
fn check_service_name(name: &str) -> Result<(), StoreError> {
    let mut chars = name.chars();
    let starts_with_letter = chars.next().is_some_and(|c| c.is_ascii_lowercase());
    let rest_allowed = chars.all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '_');
    if starts_with_letter && rest_allowed && name.len() <= 63 && !name.starts_with("pg_") {
        Ok(())
    } else {
        Err(StoreError::InvalidServiceName {
            name: name.to_owned(),
        })
    }
}

/// Pool options common to both backends: connections are checked with a ping only after
/// [`PING_IF_IDLE_FOR`] idle. A connection that broke while in use fails the statement that
/// finds it, and the pool then replaces it. On release the pool flushes a connection rather
/// than pinging it (the workspace's patched `sqlx-core`, `vendor/README.md`), so a statement
/// costs one round trip to the database, not three.
fn pool_options<DB: sqlx::Database>() -> PoolOptions<DB> {
    PoolOptions::new()
        .test_before_acquire(false)
        .before_acquire(|connection: &mut DB::Connection, metadata| {
            Box::pin(async move {
                if metadata.idle_for > PING_IF_IDLE_FOR {
                    connection.ping().await?;
                }
                Ok(true)
            })
        })
}

/// Opens a PostgreSQL pool whose connections use the service's schema.
async fn connect_postgres(
    config: &DatabaseConfig,
    schema: &str,
) -> Result<PostgresDatabase, StoreError> {
    let url = config.redacted_url();
    // Every statement of the suite is a lookup by key whose best plan does not depend on the
    // keys' values, and is prepared once per connection. Left to itself, PostgreSQL plans a
    // statement afresh on each execution while a plan for the actual values looks cheaper, which
    // for the learner's candidate query costs five times its execution (0.5 ms against 0.1 ms).
    let options = config
        .postgres_options()?
        .application_name(&format!("lrs-{schema}"))
        .options([("plan_cache_mode", "force_generic_plan")]);
    // The name was checked to be a plain lowercase identifier, so quoting it is enough.
    let set_search_path: Arc<str> = format!("SET search_path TO \"{schema}\", public").into();

    let pool = pool_options::<sqlx::Postgres>()
        .max_connections(config.max_connections)
        .acquire_timeout(config.acquire_timeout)
        .after_connect(move |connection, _| {
            let statement = Arc::clone(&set_search_path);
            Box::pin(async move { connection.execute(&*statement).await.map(drop) })
        })
        .connect_with(options)
        .await
        .map_err(|source| StoreError::Open {
            target: url.clone(),
            source,
        })?;

    Ok(PostgresDatabase {
        pool,
        schema: schema.to_owned(),
        url,
    })
}

/// Opens the service's SQLite file (creating it and its folder) with a writer and a reader
/// pool.
async fn connect_sqlite(
    config: &DatabaseConfig,
    service_name: &str,
) -> Result<SqliteDatabase, StoreError> {
    create_data_dir(&config.data_dir)?;
    let path = config.data_dir.join(format!("{service_name}.db"));
    let open_error = |source| StoreError::Open {
        target: path.display().to_string(),
        source,
    };

    create_private_file(&path).map_err(open_error)?;

    let common = SqliteConnectOptions::new()
        .filename(&path)
        .foreign_keys(true)
        .synchronous(SqliteSynchronous::Normal)
        .busy_timeout(SQLITE_BUSY_TIMEOUT);
    // WAL is a property of the file: the writer, opened first, sets it once for all.
    let writer_options = common
        .clone()
        .create_if_missing(true)
        .journal_mode(SqliteJournalMode::Wal);
    let reader_options = common.pragma("query_only", "ON");

    let writer = pool_options::<sqlx::Sqlite>()
        .max_connections(1)
        .acquire_timeout(config.acquire_timeout)
        .connect_with(writer_options)
        .await
        .map_err(open_error)?;
    let reader = pool_options::<sqlx::Sqlite>()
        .max_connections(config.max_connections)
        .acquire_timeout(config.acquire_timeout)
        .connect_with(reader_options)
        .await
        .map_err(open_error)?;

    Ok(SqliteDatabase {
        writer,
        reader,
        path,
    })
}

/// Creates the SQLite file empty and owner-only (0600) on unix when missing, before SQLite
/// opens it: it holds learners' personal data, and SQLite gives its `-wal` and `-shm` files
/// the same permissions. An existing file keeps its permissions.
fn create_private_file(path: &Path) -> Result<(), sqlx::Error> {
    let mut options = std::fs::OpenOptions::new();
    options.write(true).create_new(true);
    #[cfg(unix)]
    std::os::unix::fs::OpenOptionsExt::mode(&mut options, 0o600);
    match options.open(path) {
        Ok(_) => Ok(()),
        Err(exists) if exists.kind() == std::io::ErrorKind::AlreadyExists => Ok(()),
        Err(error) => Err(sqlx::Error::Io(error)),
    }
}

/// Creates the folder for the SQLite files if missing: owner-only (0700) on unix, since it
/// holds learners' personal data. An existing folder keeps its permissions.
fn create_data_dir(path: &Path) -> Result<(), StoreError> {
    let error = |source| StoreError::CreateDataDir {
        path: path.to_owned(),
        source,
    };
    let mut builder = std::fs::DirBuilder::new();
    builder.recursive(true);
    #[cfg(unix)]
    std::os::unix::fs::DirBuilderExt::mode(&mut builder, 0o700);
    builder.create(path).map_err(error)?;

    let metadata = std::fs::metadata(path).map_err(error)?;
    if metadata.is_dir() {
        Ok(())
    } else {
        Err(error(std::io::Error::new(
            std::io::ErrorKind::NotADirectory,
            "exists and is not a folder",
        )))
    }
}

/// Creates the service's schema unless it exists. Checking first lets a role that owns its
/// schema but may not create schemas migrate: PostgreSQL checks the privilege before
/// `IF NOT EXISTS`.
async fn ensure_schema(database: &PostgresDatabase) -> Result<(), StoreError> {
    let error = |source| StoreError::CreateSchema {
        schema: database.schema.clone(),
        target: database.url.clone(),
        source,
    };
    if schema_exists(database).await.map_err(error)? {
        return Ok(());
    }

    let create = format!("CREATE SCHEMA IF NOT EXISTS \"{}\"", database.schema);
    match database.pool.execute(create.as_str()).await {
        Ok(_) => {
            tracing::info!(schema = %database.schema, "created schema");
            Ok(())
        }
        // Another replica may have created it between the check and the statement.
        Err(source) if schema_exists(database).await.unwrap_or(false) => {
            tracing::debug!(schema = %database.schema, error = %source, "schema appeared");
            Ok(())
        }
        Err(source) => Err(error(source)),
    }
}

/// Whether the service's schema exists.
async fn schema_exists(database: &PostgresDatabase) -> Result<bool, sqlx::Error> {
    sqlx::query_scalar("SELECT EXISTS (SELECT 1 FROM pg_namespace WHERE nspname = $1)")
        .bind(&database.schema)
        .fetch_one(&database.pool)
        .await
}

/// The successful versions in the schema's migrations table, empty when it does not exist.
async fn postgres_applied_versions(
    database: &PostgresDatabase,
) -> Result<BTreeSet<i64>, sqlx::Error> {
    // Qualified by schema, so a migrations table elsewhere on the search path never counts.
    let table = format!("\"{}\".{MIGRATIONS_TABLE}", database.schema);
    let exists: bool = sqlx::query_scalar("SELECT to_regclass($1) IS NOT NULL")
        .bind(&table)
        .fetch_one(&database.pool)
        .await?;
    if !exists {
        return Ok(BTreeSet::new());
    }

    let select = format!("SELECT version FROM {table} WHERE success");
    let rows = sqlx::query(&select).fetch_all(&database.pool).await?;
    rows.iter().map(|row| row.try_get::<i64, _>(0)).collect()
}

/// The successful versions in the file's migrations table, empty when it does not exist.
async fn sqlite_applied_versions(reader: &SqlitePool) -> Result<BTreeSet<i64>, sqlx::Error> {
    let exists: bool = sqlx::query_scalar(
        "SELECT EXISTS (SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = ?)",
    )
    .bind(MIGRATIONS_TABLE)
    .fetch_one(reader)
    .await?;
    if !exists {
        return Ok(BTreeSet::new());
    }

    let select = format!("SELECT version FROM {MIGRATIONS_TABLE} WHERE success");
    let rows = sqlx::query(&select).fetch_all(reader).await?;
    rows.iter().map(|row| row.try_get::<i64, _>(0)).collect()
}

#[cfg(test)]
mod tests;
