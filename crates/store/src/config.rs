//! The database configuration block shared by every service, and its validation.

use std::fmt;
use std::path::PathBuf;
use std::str::FromStr;
use std::time::Duration;

use sqlx::postgres::PgConnectOptions;

use crate::redact::redact_url;

/// Where a service keeps its data: PostgreSQL when a URL is given, SQLite files otherwise.
///
/// Every flag has an environment variable; the doc comments are the `--help` text.
/// [`DatabaseConfig::validate`] checks the block before anything is opened.
#[derive(Clone, PartialEq, Eq, clap::Args)]
pub struct DatabaseConfig {
    /// PostgreSQL URL (`postgres://user:password@host:5432/database`). Each service works in
    /// its own schema named after it. Leave empty to keep the data in SQLite files under
    /// `--data-dir`.
    #[arg(
        long = "database-url",
        env = "DATABASE_URL",
        default_value = "",
        hide_env_values = true,
        hide_default_value = true
    )]
    pub database_url: String,

    /// Folder for the SQLite files, one `<service>.db` per service; created (owner-only) if
    /// missing. Ignored when `--database-url` is set.
    #[arg(long = "data-dir", env = "LRS_DATA_DIR", default_value = "./lrs-data")]
    pub data_dir: PathBuf,

    /// Most connections a service keeps open to its database (on SQLite: readers; writes
    /// always go through one connection).
    #[arg(
        long = "db-max-connections",
        env = "LRS_DB_MAX_CONNECTIONS",
        default_value_t = 4
    )]
    pub max_connections: u32,

    /// How long a request waits for a free connection before it fails (`500ms`, `5s`).
    #[arg(
        long = "db-acquire-timeout",
        env = "LRS_DB_ACQUIRE_TIMEOUT",
        default_value = "5s",
        value_parser = humantime::parse_duration
    )]
    pub acquire_timeout: Duration,
}

/// The default block: SQLite files in `./lrs-data`, 4 connections, 5 s acquire timeout.
impl Default for DatabaseConfig {
    fn default() -> Self {
        Self {
            database_url: String::new(),
            data_dir: PathBuf::from("./lrs-data"),
            max_connections: 4,
            acquire_timeout: Duration::from_secs(5),
        }
    }
}

/// Shows the block with any password in the URL replaced, so it can be logged.
impl fmt::Debug for DatabaseConfig {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("DatabaseConfig")
            .field("database_url", &redact_url(&self.database_url))
            .field("data_dir", &self.data_dir)
            .field("max_connections", &self.max_connections)
            .field("acquire_timeout", &self.acquire_timeout)
            .finish()
    }
}

/// Which database engine a configuration or an open database uses.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Backend {
    /// PostgreSQL: one schema per service.
    Postgres,
    /// SQLite: one file per service.
    Sqlite,
}

impl Backend {
    /// The backend's name in lowercase, for logs and test output.
    pub fn name(self) -> &'static str {
        match self {
            Self::Postgres => "postgres",
            Self::Sqlite => "sqlite",
        }
    }
}

impl fmt::Display for Backend {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// A configuration that cannot be used; found before any file or connection is opened.
///
/// URLs in messages have their password removed.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    /// The URL is not a PostgreSQL URL.
    #[error(
        "database URL `{url}` is not a PostgreSQL URL: it must start with `postgres://` or \
         `postgresql://` (leave it empty to use SQLite files under --data-dir)"
    )]
    UnsupportedUrl {
        /// The URL, password removed.
        url: String,
    },
    /// The URL looks like PostgreSQL but cannot be parsed.
    #[error("database URL `{url}` is not valid: {source}")]
    InvalidUrl {
        /// The URL, password removed.
        url: String,
        /// What the parser found wrong.
        #[source]
        source: sqlx::Error,
    },
    /// SQLite is chosen but no data folder is given.
    #[error("--data-dir is empty: give a folder for the SQLite files")]
    EmptyDataDir,
    /// The pool would have no connection at all.
    #[error("--db-max-connections is 0: at least one connection is needed")]
    ZeroMaxConnections,
    /// Every acquire would time out at once.
    #[error("--db-acquire-timeout is 0: give a positive duration such as `5s`")]
    ZeroAcquireTimeout,
}

impl DatabaseConfig {
    /// A SQLite configuration with its files in `data_dir` and the other defaults.
    pub fn sqlite(data_dir: impl Into<PathBuf>) -> Self {
        Self {
            data_dir: data_dir.into(),
            ..Self::default()
        }
    }

    /// A PostgreSQL configuration for `url` with the other defaults.
    pub fn postgres(url: impl Into<String>) -> Self {
        Self {
            database_url: url.into(),
            ..Self::default()
        }
    }

    /// The backend this configuration selects: PostgreSQL when a URL is given.
    pub fn backend(&self) -> Backend {
        if self.database_url.trim().is_empty() {
            Backend::Sqlite
        } else {
            Backend::Postgres
        }
    }

    /// The URL with its password removed, fit for logs and messages.
    pub fn redacted_url(&self) -> String {
        redact_url(&self.database_url)
    }

    /// Checks the block without opening anything.
    pub fn validate(&self) -> Result<(), ConfigError> {
        if self.max_connections == 0 {
            return Err(ConfigError::ZeroMaxConnections);
        }
        if self.acquire_timeout.is_zero() {
            return Err(ConfigError::ZeroAcquireTimeout);
        }
        match self.backend() {
            Backend::Postgres => self.postgres_options().map(drop),
            Backend::Sqlite if self.data_dir.as_os_str().is_empty() => {
                Err(ConfigError::EmptyDataDir)
            }
            Backend::Sqlite => Ok(()),
        }
    }

    /// Parses the PostgreSQL URL into connection options.
    pub(crate) fn postgres_options(&self) -> Result<PgConnectOptions, ConfigError> {
        let url = self.database_url.trim();
        let scheme = url.split_once("://").map(|(scheme, _)| scheme);
        if !matches!(scheme, Some("postgres" | "postgresql")) {
            return Err(ConfigError::UnsupportedUrl {
                url: redact_url(url),
            });
        }
        PgConnectOptions::from_str(url).map_err(|source| ConfigError::InvalidUrl {
            url: redact_url(url),
            source,
        })
    }
}

#[cfg(test)]
mod tests {
    use clap::Parser;

    use super::*;

    #[derive(Debug, Parser)]
    struct Cli {
        #[command(flatten)]
        database: DatabaseConfig,
    }

    #[test]
    fn flags_parse_with_human_durations() {
        let cli = Cli::try_parse_from([
            "lrs",
            "--database-url",
            "postgres://u:p@localhost/lrs",
            "--data-dir",
            "/tmp/x",
            "--db-max-connections",
            "2",
            "--db-acquire-timeout",
            "750ms",
        ])
        .unwrap();

        assert_eq!(cli.database.backend(), Backend::Postgres);
        assert_eq!(cli.database.data_dir, PathBuf::from("/tmp/x"));
        assert_eq!(cli.database.max_connections, 2);
        assert_eq!(cli.database.acquire_timeout, Duration::from_millis(750));
        cli.database.validate().unwrap();
    }

    #[test]
    fn bad_duration_is_a_parse_error() {
        let parsed = Cli::try_parse_from(["lrs", "--db-acquire-timeout", "soon"]);
        assert!(parsed.is_err());
    }

    #[test]
    fn empty_url_selects_sqlite() {
        let config = DatabaseConfig::sqlite("/tmp/data");
        assert_eq!(config.backend(), Backend::Sqlite);
        config.validate().unwrap();
        assert_eq!(DatabaseConfig::postgres("  ").backend(), Backend::Sqlite);
    }

    #[test]
    fn other_schemes_are_refused_without_leaking_the_password() {
        let error = DatabaseConfig::postgres("mysql://root:hunter2@db/lrs")
            .validate()
            .unwrap_err();

        assert!(matches!(error, ConfigError::UnsupportedUrl { .. }));
        let message = error.to_string();
        assert!(message.contains("mysql://root:***@db/lrs"), "{message}");
        assert!(!message.contains("hunter2"), "{message}");
    }

    #[test]
    fn unparseable_postgres_url_is_refused() {
        let error = DatabaseConfig::postgres("postgres://u:hunter2@host:notaport/db")
            .validate()
            .unwrap_err();

        assert!(matches!(error, ConfigError::InvalidUrl { .. }), "{error:?}");
        assert!(!error.to_string().contains("hunter2"), "{error}");
    }

    #[test]
    fn zero_limits_are_refused() {
        let mut config = DatabaseConfig::sqlite("/tmp/data");
        config.max_connections = 0;
        assert!(matches!(
            config.validate(),
            Err(ConfigError::ZeroMaxConnections)
        ));

        let mut config = DatabaseConfig::sqlite("/tmp/data");
        config.acquire_timeout = Duration::ZERO;
        assert!(matches!(
            config.validate(),
            Err(ConfigError::ZeroAcquireTimeout)
        ));

        assert!(matches!(
            DatabaseConfig::sqlite("").validate(),
            Err(ConfigError::EmptyDataDir)
        ));
    }

    #[test]
    fn debug_output_hides_the_password() {
        let config = DatabaseConfig::postgres("postgres://u:hunter2@host/db");
        let shown = format!("{config:?}");
        assert!(!shown.contains("hunter2"), "{shown}");
        assert!(shown.contains("u:***@host"), "{shown}");
    }
}
