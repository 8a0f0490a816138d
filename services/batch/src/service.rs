//! The batch service as a host runs it: opened over its database, served over gRPC, with its
//! workers started and stopped beside the server.

use std::sync::Arc;

use lrs_fields::Clock;
use lrs_proto::batch::v1::batch_service_server::BatchServiceServer;
use lrs_server::auth::Authenticator;
use lrs_server::call::CallGate;
use lrs_store::{Database, Migrator, SchemaStatus, StoreError as DatabaseError};
use tokio::sync::Notify;

use crate::config::{BatchConfig, BatchConfigError};
use crate::grpc::{BatchGrpc, Shared};
use crate::learners::LearnerRegister;
use crate::store::{BatchStore, PostgresBatchStore, SqliteBatchStore};
use crate::worker::{Processor, WorkerSettings, Workers};

/// The error domain of the batch service's statuses.
pub const DOMAIN: &str = "batch.lrs";

static POSTGRES: Migrator = sqlx::migrate!("migrations/postgres");
static SQLITE: Migrator = sqlx::migrate!("migrations/sqlite");

/// Why the service could not be opened.
#[derive(Debug, thiserror::Error)]
pub enum OpenError {
    /// The configuration is not usable.
    #[error(transparent)]
    Config(#[from] BatchConfigError),
    /// The database failed.
    #[error(transparent)]
    Database(#[from] DatabaseError),
}

/// The batch service: its store, its gRPC server and its workers.
#[derive(Debug, Clone)]
pub struct Batch {
    shared: Arc<Shared>,
}

impl Batch {
    /// Applies the batch service's migrations to `database`.
    pub async fn migrate(database: &Database) -> Result<Option<i64>, OpenError> {
        Ok(database.migrate(&POSTGRES, &SQLITE).await?)
    }

    /// Whether `database` is at the schema version this build expects.
    pub async fn schema_status(database: &Database) -> Result<SchemaStatus, OpenError> {
        Ok(database.schema_status(&POSTGRES, &SQLITE).await?)
    }

    /// Opens the service over `database` (migrated already, see [`Batch::migrate`]), taking
    /// "today" from `clock`, verifying callers with `authenticator` and reaching the learner
    /// register through `learners`.
    pub async fn open(
        database: Database,
        config: BatchConfig,
        clock: Arc<dyn Clock>,
        authenticator: Authenticator,
        learners: Arc<dyn LearnerRegister>,
    ) -> Result<Batch, OpenError> {
        config.validate()?;
        let store: Arc<dyn BatchStore> = match database {
            Database::Postgres(postgres) => {
                Arc::new(PostgresBatchStore::new(postgres.pool().clone()))
            }
            Database::Sqlite(sqlite) => Arc::new(SqliteBatchStore::new(
                sqlite.writer().clone(),
                sqlite.reader().clone(),
            )),
        };
        let processor = Processor::new(
            store.clone(),
            learners.clone(),
            clock.clone(),
            config.lease.into(),
            config.match_size,
        );
        let shared = Shared {
            store,
            learners,
            clock,
            gate: CallGate::new(authenticator, DOMAIN),
            config,
            wake: Arc::new(Notify::new()),
            processor,
            stopping: tokio::sync::watch::Sender::new(false),
        };
        Ok(Batch {
            shared: Arc::new(shared),
        })
    }

    /// The generated gRPC server, with the 4 MiB message limits.
    pub fn server(&self) -> BatchServiceServer<BatchGrpc> {
        lrs_server::limit_message_size!(BatchServiceServer::new(BatchGrpc::new(
            self.shared.clone()
        )))
    }

    /// Starts the configured number of workers. Stop them with [`Workers::stop`] at shutdown.
    pub fn start_workers(&self) -> Workers {
        let config = &self.shared.config;
        let settings = WorkerSettings {
            workers: config.workers,
            lease: config.lease.into(),
            poll_interval: config.poll_interval.into(),
            stale_upload: config.stale_upload.into(),
        };
        Workers::start(
            self.shared.processor.clone(),
            settings,
            self.shared.wake.clone(),
        )
    }

    /// Ends every open `WatchBatchJob` stream with `UNAVAILABLE` (`SERVICE_STOPPING`), and
    /// any opened from now on after its first message. Called when shutdown begins, so that
    /// a client following a job does not hold the drain for its whole grace period.
    pub fn stop_watches(&self) {
        self.shared.stopping.send_replace(true);
    }

    /// The chunk processor, for running work by hand (tests, tools).
    pub fn processor(&self) -> Processor {
        self.shared.processor.clone()
    }

    /// The store.
    pub fn store(&self) -> Arc<dyn BatchStore> {
        self.shared.store.clone()
    }
}
