//! What can go wrong while opening, migrating or inspecting a service's database.

use std::path::PathBuf;

use crate::config::ConfigError;

/// A failure of the database plumbing. Every message names the file, folder, schema or URL
/// (password removed) it concerns and what went wrong.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    /// The configuration block is not usable.
    #[error("invalid database configuration: {0}")]
    Config(#[from] ConfigError),

    /// The service name cannot serve as a schema or file name.
    #[error(
        "service name `{name}` cannot name a schema or file: use 1 to 63 lowercase ASCII \
         letters, digits or `_`, starting with a letter and not with `pg_`"
    )]
    InvalidServiceName {
        /// The name as given.
        name: String,
    },

    /// The folder for the SQLite files could not be created or is not a folder.
    #[error("cannot create the data folder {}: {source}", path.display())]
    CreateDataDir {
        /// The folder.
        path: PathBuf,
        /// What the file system said.
        #[source]
        source: std::io::Error,
    },

    /// The database could not be opened or reached.
    #[error("cannot open database {target}: {source}")]
    Open {
        /// The SQLite file or the PostgreSQL URL (password removed).
        target: String,
        /// What the driver said.
        #[source]
        source: sqlx::Error,
    },

    /// The service's schema does not exist and could not be created.
    #[error("cannot create schema `{schema}` in {target}: {source}")]
    CreateSchema {
        /// The schema, named after the service.
        schema: String,
        /// The PostgreSQL URL (password removed).
        target: String,
        /// What PostgreSQL said.
        #[source]
        source: sqlx::Error,
    },

    /// Applying the migrations failed, or the applied ones differ from the embedded ones.
    #[error("cannot migrate {target}: {source}")]
    Migrate {
        /// The SQLite file, or the schema and the PostgreSQL URL (password removed).
        target: String,
        /// What the migrator said.
        #[source]
        source: sqlx::migrate::MigrateError,
    },

    /// Reading which migrations are applied failed.
    #[error("cannot read the schema version of {target}: {source}")]
    SchemaVersion {
        /// The SQLite file, or the schema and the PostgreSQL URL (password removed).
        target: String,
        /// What the driver said.
        #[source]
        source: sqlx::Error,
    },

    /// A test database could not be created or dropped.
    #[error("cannot {action} test database `{name}` via {admin_url}: {source}")]
    TestDatabase {
        /// `create` or `drop`.
        action: &'static str,
        /// The database's name.
        name: String,
        /// The admin URL (password removed).
        admin_url: String,
        /// What PostgreSQL said.
        #[source]
        source: sqlx::Error,
    },

    /// A temporary folder for a SQLite test database could not be made.
    #[error("cannot create a temporary folder for a test database: {0}")]
    TempDir(#[source] std::io::Error),
}

/// True when a statement failed only because no connection of the pool came free within its
/// acquire timeout: the database is overloaded, not broken, and nothing was run.
pub fn is_pool_exhausted(error: &sqlx::Error) -> bool {
    matches!(error, sqlx::Error::PoolTimedOut)
}
