//! The identity service: organisations, users, roles, tokens, signing keys, provider lists
//! and the audit log.
//!
//! A request comes in through [`grpc`] (proto in, domain out, errors to status through the
//! call gate), is checked by the rules of [`domain`] (field rules, password policy, the roles
//! a kind of organisation may grant, who may manage whom, lockout), and is carried out
//! through [`store`], whose PostgreSQL and SQLite implementations share one conformance
//! suite. Access tokens are EdDSA JWTs signed with the keys of [`keys`], which identity keeps
//! sealed in its own schema and rotates with an overlap; identity verifies its own callers
//! with those keys directly ([`keys::StoreKeySource`]). [`bootstrap`] creates what `lrs up`
//! needs, and [`lists`] reads the published provider and awarding-organisation lists.
//!
//! Every rule reads the time from the one [`lrs_fields::Clock`] given to [`Identity::open`]
//! (the suite shares one with every service), truncated to microseconds as the databases keep
//! times.
//!
//! The CLI opens the service with [`Identity::open`] and serves [`Identity::grpc_service`].

pub mod bootstrap;
pub mod config;
pub mod domain;
pub mod error;
pub mod grpc;
pub mod keys;
pub mod lists;
pub mod store;
pub mod tokens;

use std::fmt;
use std::sync::Arc;

use chrono::{DateTime, DurationRound, TimeDelta, Utc};
use lrs_fields::Clock;
use lrs_proto::identity::v1::identity_service_server::IdentityServiceServer;
use lrs_server::auth::Authenticator;
use lrs_server::call::CallGate;
use sqlx::migrate::Migrator;

pub use bootstrap::{BootstrapAdmin, BootstrapError, DemoAccount, ServiceCredential};
pub use config::{ConfigError, IdentityConfig, Settings};
pub use grpc::IdentityGrpc;
pub use keys::{KeyEncryptionKey, KeyError, StoreKeySource};
pub use store::IdentityStore;

/// The service's name: its PostgreSQL schema and SQLite file.
pub const SERVICE_NAME: &str = "identity";

/// The largest gRPC message the service sends or accepts (4 MiB).
pub const MAX_MESSAGE_SIZE: usize = 4 * 1024 * 1024;

/// Identity's PostgreSQL migrations.
pub static POSTGRES_MIGRATIONS: Migrator = sqlx::migrate!("migrations/postgres");

/// Identity's SQLite migrations.
pub static SQLITE_MIGRATIONS: Migrator = sqlx::migrate!("migrations/sqlite");

/// The current time from `clock`, truncated to whole microseconds: both databases keep
/// microseconds, so a time identity writes reads back equal, and a comparison made before a
/// write agrees with one made after it.
pub(crate) fn now<C: Clock + ?Sized>(clock: &C) -> DateTime<Utc> {
    let now = clock.now();
    now.duration_trunc(TimeDelta::microseconds(1))
        .unwrap_or(now)
}

/// Why the service could not start.
#[derive(Debug, thiserror::Error)]
pub enum StartError {
    /// The configuration is not usable.
    #[error("invalid identity configuration: {0}")]
    Config(#[from] ConfigError),
    /// Migrating the database failed.
    #[error("{0}")]
    Database(#[from] lrs_store::StoreError),
    /// The signing keys could not be loaded or created.
    #[error("signing keys: {0}")]
    Keys(#[from] KeyError),
}

/// An opened identity service: its store, keys and settings, ready to serve.
#[derive(Clone)]
pub struct Identity {
    store: Arc<dyn IdentityStore>,
    keys: Arc<keys::KeyRing>,
    clock: Arc<dyn Clock>,
    settings: Arc<Settings>,
    authenticator: Authenticator,
}

impl fmt::Debug for Identity {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Identity")
            .field("store", &self.store)
            .field("settings", &self.settings)
            .finish_non_exhaustive()
    }
}

impl Identity {
    /// Validates `config`, applies identity's migrations to `database` and loads the signing
    /// keys (creating the first on a new database).
    pub async fn open(
        database: &lrs_store::Database,
        config: &IdentityConfig,
        clock: Arc<dyn Clock>,
    ) -> Result<Self, StartError> {
        let settings = config.validate()?;
        database
            .migrate(&POSTGRES_MIGRATIONS, &SQLITE_MIGRATIONS)
            .await?;
        let store = store::for_database(database);
        Self::with_store(store, settings, clock).await
    }

    /// Opens the service over a store whose schema is already migrated.
    pub async fn with_store(
        store: Arc<dyn IdentityStore>,
        settings: Settings,
        clock: Arc<dyn Clock>,
    ) -> Result<Self, StartError> {
        let keys = keys::KeyRing::open(
            Arc::clone(&store),
            Arc::clone(&clock),
            settings.key_encryption_key.clone(),
            settings.signing_key_rotation,
            settings.access_token_ttl,
        )
        .await?;
        let keys = Arc::new(keys);
        // Computed now, so the first sign-in of an unknown user costs no more than later ones.
        let _ = tokio::task::spawn_blocking(domain::password::dummy_hash).await;
        let authenticator = Authenticator::new(StoreKeySource::new(Arc::clone(&keys)));
        Ok(Self {
            store,
            keys,
            clock,
            settings: Arc::new(settings),
            authenticator,
        })
    }

    /// The gRPC service to add to a server, with 4 MiB message limits.
    pub fn grpc_service(&self) -> IdentityServiceServer<IdentityGrpc> {
        let gate = CallGate::new(self.authenticator.clone(), grpc::ERROR_DOMAIN);
        let handlers = IdentityGrpc::new(
            gate,
            Arc::clone(&self.store),
            Arc::clone(&self.keys),
            Arc::clone(&self.clock),
            Arc::clone(&self.settings),
        );
        IdentityServiceServer::new(handlers)
            .max_decoding_message_size(MAX_MESSAGE_SIZE)
            .max_encoding_message_size(MAX_MESSAGE_SIZE)
    }

    /// The verifying keys read in-process, for other services in the same process (`lrs
    /// up`) and for the gateway there.
    pub fn key_source(&self) -> StoreKeySource {
        StoreKeySource::new(Arc::clone(&self.keys))
    }

    /// The authenticator identity itself uses.
    pub fn authenticator(&self) -> Authenticator {
        self.authenticator.clone()
    }

    /// The store.
    pub fn store(&self) -> Arc<dyn IdentityStore> {
        Arc::clone(&self.store)
    }

    /// See [`bootstrap::ensure_service_desk`].
    pub async fn ensure_service_desk(&self) -> Result<Option<BootstrapAdmin>, BootstrapError> {
        bootstrap::ensure_service_desk(&*self.store, &*self.clock).await
    }

    /// See [`bootstrap::ensure_service_credential`].
    pub async fn ensure_service_credential(
        &self,
        service: &str,
    ) -> Result<ServiceCredential, BootstrapError> {
        bootstrap::ensure_service_credential(&*self.store, &*self.clock, service).await
    }

    /// See [`bootstrap::seed_demo`].
    pub async fn seed_demo(&self) -> Result<Vec<DemoAccount>, BootstrapError> {
        bootstrap::seed_demo(&*self.store, &*self.clock).await
    }
}
