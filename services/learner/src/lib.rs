//! The learner service: the register of learners and their Unique Learner Numbers.
//!
//! A request comes in through [`grpc`] (`lrs.learner.v1.LearnerService` for people and
//! integrators, `LearnerInternalService` for the suite's own services), is taken apart and
//! validated by the field rules of `lrs-fields`, and is carried out by the [`Register`]:
//!
//! - a demographic search reads candidates by indexed blocking keys (date of birth with either
//!   name's phonetic key or the family name's initial; phonetic family and given names with
//!   year of birth; postcode), scores them in Rust by the rules of
//!   [`domain::matching`], and records the search durably through a group committer, so
//!   concurrent searches share one commit;
//! - a registration needs such a search (the rule of [`domain::registration`]), allocates a
//!   ULN, and relies on the store's unique indexes: one active learner per five normalised
//!   keys, one per ULN, one per (organisation, request id);
//! - updates are conditional on the version read, with the ability-to-share rule of
//!   [`domain::update`]; merges link a duplicate to a master ([`domain::merge`]) and are
//!   audited in the learner schema.
//!
//! [`store`] keeps the register behind a trait with PostgreSQL and SQLite implementations
//! that share one conformance suite. The CLI opens the service with [`Learner::open`] and
//! serves [`Learner::grpc_service`] and [`Learner::internal_grpc_service`].

pub mod config;
pub mod domain;
pub mod error;
pub mod grpc;
pub mod register;
pub mod store;

use std::fmt;
use std::sync::Arc;

use lrs_fields::date::Clock;
use lrs_proto::learner::v1::learner_internal_service_server::LearnerInternalServiceServer;
use lrs_proto::learner::v1::learner_service_server::LearnerServiceServer;
use lrs_server::auth::Authenticator;
use lrs_server::call::CallGate;

pub use config::{ConfigError, LearnerConfig};
pub use error::LearnerError;
pub use grpc::LearnerGrpc;
pub use grpc::internal::LearnerInternalGrpc;
pub use register::Register;
pub use store::{LearnerStore, POSTGRES_MIGRATIONS, SQLITE_MIGRATIONS};

/// The service's name: its PostgreSQL schema and SQLite file.
pub const SERVICE_NAME: &str = "learner";

/// The largest gRPC message the service sends or accepts (4 MiB).
pub const MAX_MESSAGE_SIZE: usize = 4 * 1024 * 1024;

/// Why the service could not start.
#[derive(Debug, thiserror::Error)]
pub enum StartError {
    /// The configuration is not usable.
    #[error("invalid learner configuration: {0}")]
    Config(#[from] ConfigError),
    /// Migrating the database failed.
    #[error("{0}")]
    Database(#[from] lrs_store::StoreError),
}

/// An opened learner service: its register and authenticator, ready to serve.
#[derive(Clone)]
pub struct Learner {
    register: Arc<Register>,
    authenticator: Authenticator,
}

impl fmt::Debug for Learner {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Learner")
            .field("register", &self.register)
            .finish_non_exhaustive()
    }
}

impl Learner {
    /// Validates `config`, applies the learner migrations to `database` and opens the
    /// register. Must be called inside a Tokio runtime (it starts the writer of recent
    /// searches).
    pub async fn open(
        database: &lrs_store::Database,
        config: &LearnerConfig,
        clock: Arc<dyn Clock>,
        authenticator: Authenticator,
    ) -> Result<Self, StartError> {
        config.validate()?;
        database
            .migrate(&POSTGRES_MIGRATIONS, &SQLITE_MIGRATIONS)
            .await?;
        let store = store::for_database(database);
        Ok(Self::with_store(store, config, clock, authenticator))
    }

    /// Opens the service over a store whose schema is already migrated; `config` must have
    /// been validated.
    pub fn with_store(
        store: Arc<dyn LearnerStore>,
        config: &LearnerConfig,
        clock: Arc<dyn Clock>,
        authenticator: Authenticator,
    ) -> Self {
        Self {
            register: Arc::new(Register::new(store, clock, config)),
            authenticator,
        }
    }

    /// `lrs.learner.v1.LearnerService`, with 4 MiB message limits.
    pub fn grpc_service(&self) -> LearnerServiceServer<LearnerGrpc> {
        let gate = CallGate::new(self.authenticator.clone(), grpc::ERROR_DOMAIN);
        LearnerServiceServer::new(LearnerGrpc::new(gate, Arc::clone(&self.register)))
            .max_decoding_message_size(MAX_MESSAGE_SIZE)
            .max_encoding_message_size(MAX_MESSAGE_SIZE)
    }

    /// `lrs.learner.v1.LearnerInternalService` (never routed by the gateway), with 4 MiB
    /// message limits.
    pub fn internal_grpc_service(&self) -> LearnerInternalServiceServer<LearnerInternalGrpc> {
        let gate = CallGate::new(self.authenticator.clone(), grpc::ERROR_DOMAIN);
        LearnerInternalServiceServer::new(LearnerInternalGrpc::new(
            gate,
            Arc::clone(&self.register),
        ))
        .max_decoding_message_size(MAX_MESSAGE_SIZE)
        .max_encoding_message_size(MAX_MESSAGE_SIZE)
    }

    /// The register, for in-process callers and tests.
    pub fn register(&self) -> &Arc<Register> {
        &self.register
    }

    /// Removes recent searches too old to permit a registration; `lrs serve` runs it now and
    /// then. Returns how many were removed.
    pub async fn prune_searches(&self) -> Result<u64, LearnerError> {
        self.register.prune_searches().await
    }
}
