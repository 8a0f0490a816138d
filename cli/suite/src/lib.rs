//! The whole LRS suite in one process: the assembly shared by `lrs up` and the test kit.
//!
//! [`Suite::start`] brings the suite up in order:
//!
//! 1. checks every configuration block, before any socket is bound or file opened;
//! 2. binds the public address, so a port that is taken is reported at once;
//! 3. opens identity's database (its own SQLite file in the data folder, or its schema on
//!    PostgreSQL), applies its migrations and serves it on `127.0.0.1:0`;
//! 4. bootstraps: on first start the service-desk organisation and its `admin`, whose
//!    generated password goes to `<data-dir>/admin-password` (mode 0600), never to a log;
//!    with `demo`, the demonstration organisations and users;
//! 5. serves every other implemented service on `127.0.0.1:0` over its own database: the
//!    learner register, and batch with its workers and a fresh machine credential for its
//!    calls to learner (the secret is replaced at every start, so none is kept on disk);
//! 6. serves the gateway on the public address, routing to them.
//!
//! Identity, learner and batch take the time from one clock, [`SuiteConfig::clock`], so a
//! test that moves it moves every service at once.
//!
//! Each service reports SERVING once its database is migrated. [`RunningSuite::stop`] stops
//! in order: every service and the gateway report NOT_SERVING at once; the gateway drains
//! first, so calls it is forwarding still reach the services; the batch workers finish the
//! chunks in hand (they call learner); then the services drain and their databases close;
//! all within one grace period.

mod files;
mod health;

use std::future::Future;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use lrs_batch::{Batch, BatchConfig, GrpcLearnerRegister, Workers};
use lrs_fields::{Clock, SystemClock};
use lrs_gateway::{Gateway, GatewayConfig};
use lrs_identity::{DemoAccount, Identity, IdentityConfig};
use lrs_learner::{Learner, LearnerConfig};
use lrs_server::auth::Authenticator;
use lrs_server::client::{MachineCredential, ServiceChannel, ServiceTokens};
use lrs_server::host::{BuiltHost, HostError, Readiness, ServiceHost};
use lrs_store::{Database, DatabaseConfig};
use tokio::net::TcpListener;
use tokio::sync::{mpsc, oneshot};
use tokio::task::JoinHandle;
use tokio::time::Instant;

pub use files::{ADMIN_PASSWORD_FILE, KEY_ENCRYPTION_KEY_FILE};
pub use health::{health_status, wait_until_serving};
pub use tonic_health::pb::health_check_response::ServingStatus;

/// The address every service but the gateway listens on: loopback, a free port.
const INTERNAL_ADDRESS: &str = "127.0.0.1:0";

/// How long the suite may take to report SERVING through the gateway once every server
/// runs.
const START_TIMEOUT: Duration = Duration::from_secs(30);

/// The gRPC names of the public services the suite serves, as health and the gateway know
/// them.
pub const PUBLIC_SERVICES: &[&str] = &[
    "lrs.identity.v1.IdentityService",
    "lrs.learner.v1.LearnerService",
    "lrs.batch.v1.BatchService",
];

/// The batch service's name: its PostgreSQL schema, SQLite file and machine credential.
const BATCH: &str = "batch";

/// How the suite runs.
#[derive(Debug, Clone)]
pub struct SuiteConfig {
    /// The gateway's public address (`127.0.0.1:50051`; port 0 picks a free one).
    pub listen: SocketAddr,
    /// Where the services keep their data: for `lrs up`, SQLite files in the data folder; for
    /// tests, also PostgreSQL (one schema per service).
    pub database: DatabaseConfig,
    /// The folder for the admin-password file and the generated key-encryption key.
    pub data_dir: PathBuf,
    /// Also create the demonstration organisations and users.
    pub demo: bool,
    /// How long calls in flight may run once shutdown begins.
    pub shutdown_grace: Duration,
    /// Identity's settings. An empty key-encryption key means the one kept in
    /// `<data-dir>/key-encryption-key`, generated on first start.
    pub identity: IdentityConfig,
    /// The learner register's policies.
    pub learner: LearnerConfig,
    /// The batch service's workers, chunks and limits. Its learner URL is ignored: the suite
    /// connects batch to its own learner service.
    pub batch: BatchConfig,
    /// The gateway's limits and deadlines. Its routes must be unset: the suite routes to its
    /// own services.
    pub gateway: GatewayConfig,
    /// Where every service takes the time from: this one clock is shared by identity, learner
    /// and batch. The system's clock by default; tests may give a `lrs_fields::FixedClock`.
    pub clock: Arc<dyn Clock>,
}

impl SuiteConfig {
    /// A configuration with every block at its default (as `lrs up` with no flags and no
    /// environment variables would read them) and the system's clock, listening on `listen`,
    /// keeping data as `database` says and the admin-password and key files in `data_dir`.
    pub fn new(listen: SocketAddr, database: DatabaseConfig, data_dir: impl Into<PathBuf>) -> Self {
        Self {
            listen,
            database,
            data_dir: data_dir.into(),
            demo: false,
            shutdown_grace: Duration::from_secs(20),
            identity: IdentityConfig::default(),
            learner: LearnerConfig::default(),
            batch: BatchConfig::default(),
            gateway: GatewayConfig::default(),
            clock: Arc::new(SystemClock),
        }
    }
}

/// Why the suite could not start or stopped badly.
#[derive(Debug, thiserror::Error)]
pub enum SuiteError {
    /// A configuration block is not usable.
    #[error("invalid configuration: {0}")]
    Config(String),
    /// A database could not be opened or migrated.
    #[error("the {service} database: {source}")]
    Database {
        /// The service whose database it is.
        service: &'static str,
        /// What went wrong.
        #[source]
        source: lrs_store::StoreError,
    },
    /// Identity could not start.
    #[error("identity could not start: {0}")]
    Identity(#[from] lrs_identity::StartError),
    /// The learner service could not start.
    #[error("the learner service could not start: {0}")]
    Learner(#[from] lrs_learner::StartError),
    /// The batch service could not start.
    #[error("the batch service could not start: {0}")]
    Batch(#[from] lrs_batch::OpenError),
    /// A channel to a service could not be made.
    #[error("cannot reach a service: {0}")]
    Channel(#[from] lrs_server::client::ClientError),
    /// The gateway could not start.
    #[error("the gateway could not start: {0}")]
    Gateway(#[from] lrs_gateway::GatewayError),
    /// Creating the bootstrap accounts or credentials failed.
    #[error("bootstrap failed: {0}")]
    Bootstrap(#[from] lrs_identity::BootstrapError),
    /// An address could not be bound.
    #[error("cannot listen on {address}: {source}")]
    Bind {
        /// The address.
        address: String,
        /// Why.
        #[source]
        source: std::io::Error,
    },
    /// Another process runs a suite on the same data folder.
    #[error(
        "the data folder {} is in use by another `lrs up` (process {holder}); stop it, or give \
         this one its own --data-dir",
        folder.display()
    )]
    DataFolderInUse {
        /// The data folder.
        folder: PathBuf,
        /// What the lock file says of its holder (its process id).
        holder: String,
    },
    /// A file beside the data could not be written or read.
    #[error("{}: {source}", path.display())]
    File {
        /// The file or folder.
        path: PathBuf,
        /// Why.
        #[source]
        source: std::io::Error,
    },
    /// A service's server failed.
    #[error("the {service} server failed: {source}")]
    Host {
        /// The service.
        service: &'static str,
        /// Why.
        #[source]
        source: HostError,
    },
    /// The gateway's server failed.
    #[error("the gateway failed: {0}")]
    GatewayServe(#[from] lrs_gateway::GatewayServeError),
    /// A service's server task panicked or was cancelled.
    #[error("the {service} server stopped abnormally: {source}")]
    Task {
        /// The service.
        service: &'static str,
        /// The join error.
        #[source]
        source: tokio::task::JoinError,
    },
    /// A service's server stopped while the suite was running.
    #[error("the {service} server stopped unexpectedly")]
    Stopped {
        /// The service.
        service: &'static str,
    },
    /// The endpoint to ask for health is not usable.
    #[error("cannot reach {endpoint}: {source}")]
    Endpoint {
        /// The endpoint.
        endpoint: String,
        /// Why.
        #[source]
        source: tonic::transport::Error,
    },
    /// Health answered with an error.
    #[error("health of `{name}` at {endpoint}: {}", status.message())]
    Health {
        /// The endpoint.
        endpoint: String,
        /// The service name asked about.
        name: String,
        /// The status returned.
        status: Box<tonic::Status>,
    },
    /// Health did not answer SERVING in time.
    #[error("{endpoint} did not report SERVING within {timeout:?}")]
    NotServing {
        /// The endpoint.
        endpoint: String,
        /// How long was waited.
        timeout: Duration,
    },
}

/// The bootstrap admin's sign-in: where the first password is kept.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AdminSignIn {
    /// The username (`admin`).
    pub username: String,
    /// The owner-only file with the generated first password.
    pub password_file: PathBuf,
    /// True when the admin was created by this start (and the file written now).
    pub created_now: bool,
}

/// One service of a running suite.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ServiceAddress {
    /// The service's short name (`identity`).
    pub name: &'static str,
    /// Where it listens (loopback).
    pub address: SocketAddr,
}

/// Starts the whole suite.
#[derive(Debug)]
pub struct Suite;

impl Suite {
    /// Starts every implemented service and the gateway as the module documentation says,
    /// and returns once all of them are serving.
    pub async fn start(config: SuiteConfig) -> Result<RunningSuite, SuiteError> {
        let lock = files::lock_data_folder(&config.data_dir)?;
        let identity_config = checked_identity_config(&config)?;
        config
            .database
            .validate()
            .map_err(|error| SuiteError::Config(error.to_string()))?;
        config
            .learner
            .validate()
            .map_err(|error| SuiteError::Config(error.to_string()))?;
        check_gateway_config(&config.gateway)?;
        config
            .batch
            .validate()
            .map_err(|error| SuiteError::Config(error.to_string()))?;

        let public = bind(config.listen).await?;
        let (exited, exits) = mpsc::unbounded_channel();
        let mut running = RunningSuite {
            _lock: lock,
            gateway: None,
            batch: None,
            batch_workers: None,
            services: Vec::new(),
            databases: Vec::new(),
            admin: None,
            demo_accounts: Vec::new(),
            address: public.local_addr().map_err(|source| SuiteError::Bind {
                address: config.listen.to_string(),
                source,
            })?,
            grace: config.shutdown_grace,
            exits,
        };

        let database = open_database(&config.database, lrs_identity::SERVICE_NAME).await?;
        running.databases.push(database.clone());
        let clock = Arc::clone(&config.clock);
        let identity = Identity::open(&database, &identity_config, Arc::clone(&clock)).await?;
        let host = ServiceHost::new(lrs_identity::SERVICE_NAME)
            .shutdown_grace(config.shutdown_grace)
            .add_service(identity.grpc_service());
        let host = build("identity", host)?;
        let mut in_process = vec![("identity", host.in_process())];
        let listener = bind_internal().await?;
        let identity_host = Hosted::start("identity", host, listener, &exited).await?;
        running.services.push(identity_host);

        running.admin = Some(bootstrap_admin(&identity, &config.data_dir).await?);
        if config.demo {
            running.demo_accounts = identity.seed_demo().await?;
        }

        let database = open_database(&config.database, lrs_learner::SERVICE_NAME).await?;
        running.databases.push(database.clone());
        let authenticator = Authenticator::new(identity.key_source());
        let learner = Learner::open(
            &database,
            &config.learner,
            Arc::clone(&clock),
            authenticator,
        )
        .await?;
        let host = ServiceHost::new(lrs_learner::SERVICE_NAME)
            .shutdown_grace(config.shutdown_grace)
            .add_service(learner.grpc_service())
            .add_service(learner.internal_grpc_service());
        let host = build("learner", host)?;
        in_process.push(("learner", host.in_process()));
        let listener = bind_internal().await?;
        let learner_host = Hosted::start("learner", host, listener, &exited).await?;
        running.services.push(learner_host);

        let database = open_database(&config.database, BATCH).await?;
        running.databases.push(database.clone());
        Batch::migrate(&database).await?;
        let credential = identity.ensure_service_credential(BATCH).await?;
        let credential = MachineCredential {
            client_id: credential.client_id,
            client_secret: credential.client_secret,
        };
        let identity_channel = lrs_server::client::channel(&url_of(&running.services, "identity"))?;
        let learner_channel = lrs_server::client::channel(&url_of(&running.services, "learner"))?;
        let tokens = ServiceTokens::new(identity_channel, credential);
        let learners = GrpcLearnerRegister::new(ServiceChannel::new(learner_channel, tokens));
        let mut batch_config = config.batch.clone();
        batch_config.learner_url = url_of(&running.services, "learner");
        let batch = Batch::open(
            database,
            batch_config,
            clock,
            Authenticator::new(identity.key_source()),
            Arc::new(learners),
        )
        .await?;
        let host = ServiceHost::new(BATCH)
            .shutdown_grace(config.shutdown_grace)
            .add_service(batch.server());
        let host = build(BATCH, host)?;
        in_process.push((BATCH, host.in_process()));
        let listener = bind_internal().await?;
        let batch_host = Hosted::start(BATCH, host, listener, &exited).await?;
        running.services.push(batch_host);
        running.batch_workers = Some(batch.start_workers());
        running.batch = Some(batch);

        let mut gateway_config = config.gateway.clone();
        gateway_config.route_identity = Some(url_of(&running.services, "identity"));
        gateway_config.route_learner = Some(url_of(&running.services, "learner"));
        gateway_config.route_batch = Some(url_of(&running.services, BATCH));
        // The gateway calls the services in-process; their ports serve the services' calls to
        // one another and identity's signing keys.
        let gateway = in_process.into_iter().fold(
            Gateway::new(&gateway_config)?,
            |gateway, (area, service)| gateway.with_in_process_route(area, service),
        );
        let gateway = Hosted::start_gateway(gateway, public, config.shutdown_grace, &exited)?;
        running.gateway = Some(gateway);

        wait_until_serving(&running.endpoint(), PUBLIC_SERVICES, START_TIMEOUT).await?;
        Ok(running)
    }
}

/// Puts the host of the service `name` together.
fn build(name: &'static str, host: ServiceHost) -> Result<BuiltHost, SuiteError> {
    host.build().map_err(|source| SuiteError::Host {
        service: name,
        source,
    })
}

/// The URL of the running service `name`, for the gateway's routes.
fn url_of(services: &[Hosted], name: &str) -> String {
    services
        .iter()
        .find(|hosted| hosted.name == name)
        .map(|hosted| format!("http://{}", hosted.address))
        .unwrap_or_default()
}

/// Checks the gateway's limits and deadlines; its routes are the suite's to set.
fn check_gateway_config(gateway: &GatewayConfig) -> Result<(), SuiteError> {
    let routed = gateway.routes();
    if let Some((area, _)) = routed.first() {
        return Err(SuiteError::Config(format!(
            "--route-{area} is set, but the suite routes to its own services: unset it \
             (routes are for `lrs serve gateway`)"
        )));
    }
    let mut checked = gateway.clone();
    checked.route_identity = Some("http://127.0.0.1:1".to_owned());
    checked
        .validate()
        .map_err(|error| SuiteError::Config(error.to_string()))
}

/// The identity block to run with: the given one, with the stored key-encryption key when
/// none is given; checked.
fn checked_identity_config(config: &SuiteConfig) -> Result<IdentityConfig, SuiteError> {
    let mut identity = config.identity.clone();
    if identity.key_encryption_key.trim().is_empty() {
        files::create_private_folder(&config.data_dir)?;
        identity.key_encryption_key = files::stored_key_encryption_key(&config.data_dir)?;
    }
    identity
        .validate()
        .map_err(|error| SuiteError::Config(error.to_string()))?;
    Ok(identity)
}

/// Creates the service desk and its admin on first start and writes the password file.
async fn bootstrap_admin(identity: &Identity, data_dir: &Path) -> Result<AdminSignIn, SuiteError> {
    let password_file = data_dir.join(ADMIN_PASSWORD_FILE);
    let created = identity.ensure_service_desk().await?;
    let created_now = created.is_some();
    let username = match created {
        Some(admin) => {
            files::create_private_folder(data_dir)?;
            files::write_admin_password(data_dir, &admin.password)?;
            tracing::info!(
                username = %admin.username,
                path = %password_file.display(),
                "created the service desk admin; wrote the first password to the file"
            );
            admin.username
        }
        None => lrs_identity::bootstrap::ADMIN_USERNAME.to_owned(),
    };
    Ok(AdminSignIn {
        username,
        password_file,
        created_now,
    })
}

async fn open_database(
    config: &DatabaseConfig,
    service: &'static str,
) -> Result<Database, SuiteError> {
    lrs_store::connect(config, service)
        .await
        .map_err(|source| SuiteError::Database { service, source })
}

async fn bind(address: SocketAddr) -> Result<TcpListener, SuiteError> {
    TcpListener::bind(address)
        .await
        .map_err(|source| SuiteError::Bind {
            address: address.to_string(),
            source,
        })
}

async fn bind_internal() -> Result<TcpListener, SuiteError> {
    TcpListener::bind(INTERNAL_ADDRESS)
        .await
        .map_err(|source| SuiteError::Bind {
            address: INTERNAL_ADDRESS.to_owned(),
            source,
        })
}

/// One server of the suite, running on its own task.
#[derive(Debug)]
struct Hosted {
    name: &'static str,
    address: SocketAddr,
    /// The service's health switch; the gateway's host keeps its own.
    readiness: Option<Readiness>,
    stop: Option<oneshot::Sender<()>>,
    task: JoinHandle<Result<(), SuiteError>>,
}

impl Hosted {
    /// Serves `host` on `listener` until told to stop, reporting SERVING at once (its
    /// database is migrated by now).
    async fn start(
        name: &'static str,
        host: BuiltHost,
        listener: TcpListener,
        exited: &mpsc::UnboundedSender<&'static str>,
    ) -> Result<Self, SuiteError> {
        let address = local_address(&listener)?;
        let readiness = host.readiness();
        let (stop, shutdown) = stop_signal();
        let served = async move {
            host.serve(listener, shutdown)
                .await
                .map_err(|source| SuiteError::Host {
                    service: name,
                    source,
                })
        };
        let mut hosted = Self::spawn(name, address, stop, served, exited);
        readiness.set_serving().await;
        hosted.readiness = Some(readiness);
        Ok(hosted)
    }

    /// Serves the gateway on the public `listener` until told to stop.
    fn start_gateway(
        gateway: Gateway,
        listener: TcpListener,
        grace: Duration,
        exited: &mpsc::UnboundedSender<&'static str>,
    ) -> Result<Self, SuiteError> {
        let address = local_address(&listener)?;
        let (stop, shutdown) = stop_signal();
        let served = async move {
            gateway
                .serve(listener, grace, shutdown)
                .await
                .map_err(SuiteError::from)
        };
        Ok(Self::spawn("gateway", address, stop, served, exited))
    }

    fn spawn(
        name: &'static str,
        address: SocketAddr,
        stop: oneshot::Sender<()>,
        served: impl Future<Output = Result<(), SuiteError>> + Send + 'static,
        exited: &mpsc::UnboundedSender<&'static str>,
    ) -> Self {
        let exited = exited.clone();
        let task = tokio::spawn(async move {
            let outcome = served.await;
            let _ = exited.send(name);
            outcome
        });
        Self {
            name,
            address,
            readiness: None,
            stop: Some(stop),
            task,
        }
    }

    fn begin_stop(&mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
    }

    async fn join(self) -> Result<(), SuiteError> {
        let service = self.name;
        match self.task.await {
            Ok(outcome) => outcome,
            Err(source) => Err(SuiteError::Task { service, source }),
        }
    }
}

/// A sender that stops a server and the shutdown future the server waits on.
fn stop_signal() -> (
    oneshot::Sender<()>,
    impl Future<Output = ()> + Send + 'static,
) {
    let (stop, stopped) = oneshot::channel::<()>();
    let shutdown = async move {
        // A dropped sender stops the server too.
        let _ = stopped.await;
    };
    (stop, shutdown)
}

fn local_address(listener: &TcpListener) -> Result<SocketAddr, SuiteError> {
    listener.local_addr().map_err(|source| SuiteError::Bind {
        address: INTERNAL_ADDRESS.to_owned(),
        source,
    })
}

/// The suite, serving. Stop it with [`RunningSuite::stop`] or run it with
/// [`RunningSuite::run_until`].
#[derive(Debug)]
pub struct RunningSuite {
    /// Held while the suite runs, so that no other suite starts on its data folder.
    _lock: files::DataFolderLock,
    gateway: Option<Hosted>,
    /// The batch service, whose open watches end when the suite stops.
    batch: Option<Batch>,
    batch_workers: Option<Workers>,
    services: Vec<Hosted>,
    databases: Vec<Database>,
    admin: Option<AdminSignIn>,
    demo_accounts: Vec<DemoAccount>,
    address: SocketAddr,
    grace: Duration,
    exits: mpsc::UnboundedReceiver<&'static str>,
}

impl RunningSuite {
    /// The public address (the gateway's).
    pub fn address(&self) -> SocketAddr {
        self.address
    }

    /// The public endpoint as a URL (`http://127.0.0.1:50051`).
    pub fn endpoint(&self) -> String {
        format!("http://{}", self.address)
    }

    /// Where each service listens behind the gateway.
    pub fn services(&self) -> Vec<ServiceAddress> {
        self.services
            .iter()
            .map(|hosted| ServiceAddress {
                name: hosted.name,
                address: hosted.address,
            })
            .collect()
    }

    /// The bootstrap admin's username and password file.
    pub fn admin(&self) -> Option<&AdminSignIn> {
        self.admin.as_ref()
    }

    /// The demonstration accounts, when started with `demo`.
    pub fn demo_accounts(&self) -> &[DemoAccount] {
        &self.demo_accounts
    }

    /// Runs until `shutdown` resolves, then stops in order. A server that stops by itself
    /// before then stops the rest and is reported as the error.
    pub async fn run_until(mut self, shutdown: impl Future<Output = ()>) -> Result<(), SuiteError> {
        let unexpected = tokio::select! {
            () = shutdown => None,
            Some(service) = self.exits.recv() => Some(service),
        };
        match unexpected {
            None => self.stop().await,
            Some(service) => {
                tracing::error!(%service, "server stopped unexpectedly; stopping the suite");
                let stopped = self.stop().await;
                stopped.and(Err(SuiteError::Stopped { service }))
            }
        }
    }

    /// Stops the suite: every server reports NOT_SERVING, the gateway drains, then the
    /// services drain and their databases close, all within the grace period. Servers still
    /// busy when it ends are stopped anyway.
    pub async fn stop(mut self) -> Result<(), SuiteError> {
        let deadline = Instant::now() + self.grace;
        tracing::info!(grace = ?self.grace, "stopping the suite");
        for readiness in self
            .services
            .iter()
            .filter_map(|hosted| hosted.readiness.as_ref())
        {
            readiness.set_not_serving().await;
        }
        // Open watches would hold the gateway's drain until the grace period ends.
        if let Some(batch) = &self.batch {
            batch.stop_watches();
        }

        let mut outcome = Ok(());
        if let Some(mut gateway) = self.gateway.take() {
            gateway.begin_stop();
            outcome = outcome.and(join_until(gateway, deadline).await);
        }
        if let Some(workers) = self.batch_workers.take() {
            let remaining = deadline.saturating_duration_since(Instant::now());
            workers.stop(remaining).await;
            tracing::info!("stopped the batch workers");
        }
        for hosted in &mut self.services {
            hosted.begin_stop();
        }
        for hosted in self.services.drain(..) {
            let joined = join_until(hosted, deadline).await;
            outcome = outcome.and(joined);
        }
        for database in &self.databases {
            database.close().await;
        }
        tracing::info!("suite stopped");
        outcome
    }
}

/// Waits for a server to finish draining until `deadline`, then ends it.
async fn join_until(hosted: Hosted, deadline: Instant) -> Result<(), SuiteError> {
    let service = hosted.name;
    let abort = hosted.task.abort_handle();
    match tokio::time::timeout_at(deadline, hosted.join()).await {
        Ok(joined) => joined,
        Err(_) => {
            tracing::warn!(%service, "grace period over; stopping the server with calls in flight");
            abort.abort();
            Ok(())
        }
    }
}
