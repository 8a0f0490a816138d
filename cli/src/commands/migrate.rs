//! `lrs migrate <service>`: applies a service's migrations and exits (the Kubernetes Job).

use anyhow::Context;
use clap::ValueEnum;
use lrs_server::config::TelemetryConfig;
use lrs_store::{Database, DatabaseConfig};

use crate::failure::CliError;
use crate::output;

/// Arguments of `lrs migrate`.
#[derive(Debug, clap::Args)]
pub struct MigrateArgs {
    /// The service whose schema to migrate, or `all`.
    #[arg(value_enum)]
    pub service: MigrateTarget,
    /// Where the data is kept.
    #[command(flatten)]
    pub database: DatabaseConfig,
    /// Logs and traces.
    #[command(flatten)]
    pub telemetry: TelemetryConfig,
}

/// The services with a schema of their own.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum MigrateTarget {
    /// Every service below, in order.
    All,
    /// Identity's schema.
    Identity,
    /// The learner register's schema.
    Learner,
    /// The batch service's schema.
    Batch,
}

impl MigrateTarget {
    /// The services this target stands for, in the order they are migrated.
    fn services(self) -> Vec<Self> {
        match self {
            Self::All => vec![Self::Identity, Self::Learner, Self::Batch],
            single => vec![single],
        }
    }

    /// The service's name: its schema and SQLite file.
    fn name(self) -> &'static str {
        match self {
            Self::All => "all",
            Self::Identity => lrs_identity::SERVICE_NAME,
            Self::Learner => lrs_learner::SERVICE_NAME,
            Self::Batch => "batch",
        }
    }

    /// Applies this service's migrations; returns the version now applied.
    async fn apply(self, database: &Database) -> anyhow::Result<Option<i64>> {
        let version = match self {
            Self::All => None,
            Self::Identity => {
                database
                    .migrate(
                        &lrs_identity::POSTGRES_MIGRATIONS,
                        &lrs_identity::SQLITE_MIGRATIONS,
                    )
                    .await?
            }
            Self::Learner => {
                database
                    .migrate(
                        &lrs_learner::POSTGRES_MIGRATIONS,
                        &lrs_learner::SQLITE_MIGRATIONS,
                    )
                    .await?
            }
            Self::Batch => lrs_batch::Batch::migrate(database).await?,
        };
        Ok(version)
    }
}

/// Applies the migrations and prints each schema's version.
pub async fn migrate(args: MigrateArgs) -> Result<(), CliError> {
    migrate_all(&args).await.map_err(CliError::Start)
}

async fn migrate_all(args: &MigrateArgs) -> anyhow::Result<()> {
    args.database.validate().context("invalid database flags")?;
    let telemetry = lrs_server::telemetry::init(&args.telemetry, "lrs-migrate")?;

    let mut migrated = Ok(());
    for service in args.service.services() {
        migrated = migrate_one(&args.database, service).await;
        if migrated.is_err() {
            break;
        }
    }
    telemetry.shutdown().await;
    migrated
}

async fn migrate_one(config: &DatabaseConfig, service: MigrateTarget) -> anyhow::Result<()> {
    let name = service.name();
    let database = lrs_store::connect(config, name).await?;
    let version = service.apply(&database).await;
    database.close().await;
    let version = version.with_context(|| format!("migrating {name}"))?;

    let shown = version.map_or_else(|| "none".to_owned(), |version| version.to_string());
    output::print(&format!(
        "{name}: {} at migration {shown}\n",
        database.target()
    ))
    .map_err(anyhow::Error::new)
}
