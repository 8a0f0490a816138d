//! Database plumbing shared by the LRS services: PostgreSQL and SQLite pools, schemas and
//! migrations.
//!
//! Each service keeps its SQL in its own store module, behind its own trait, with one
//! implementation per backend and its migrations in `migrations/postgres/` and
//! `migrations/sqlite/`. This crate opens the service's database from a [`DatabaseConfig`]:
//!
//! - PostgreSQL (`--database-url`): one schema per service, named after it; every pooled
//!   connection sets `search_path` to that schema (then `public`, for extensions).
//! - SQLite (the default): one file per service, `<data-dir>/<service>.db`, in WAL mode with
//!   `synchronous=NORMAL`, foreign keys on and a 5 s busy timeout; writes go through a
//!   single writer connection (see [`SqliteDatabase`]).
//!
//! [`Database::migrate`] applies the service's embedded migrations and
//! [`Database::schema_status`] tells whether the schema is at the version the service
//! expects. [`GroupCommitter`] shares commits between concurrent requests that each write a
//! small record. The `testing` feature adds fresh test databases and
//! [`testing::for_each_backend`].
//!
//! ```ignore
//! static POSTGRES: Migrator = sqlx::migrate!("migrations/postgres");
//! static SQLITE: Migrator = sqlx::migrate!("migrations/sqlite");
//!
//! let database = lrs_store::connect(&config.database, "learner").await?;
//! database.migrate(&POSTGRES, &SQLITE).await?;
//! let store: Arc<dyn LearnerStore> = match database {
//!     Database::Postgres(postgres) => Arc::new(PostgresLearnerStore::new(postgres)),
//!     Database::Sqlite(sqlite) => Arc::new(SqliteLearnerStore::new(sqlite)),
//! };
//! ```

mod config;
mod database;
mod error;
mod group_commit;
mod redact;
#[cfg(any(test, feature = "testing"))]
pub mod testing;

pub use config::{Backend, ConfigError, DatabaseConfig};
pub use database::{
    Database, PostgresDatabase, SchemaStatus, SqliteDatabase, connect, latest_version,
};
pub use error::{StoreError, is_pool_exhausted};
pub use group_commit::{GroupCommitError, GroupCommitOptions, GroupCommitter};
pub use redact::redact_url;
pub use sqlx::migrate::Migrator;
