//! `lrs serve <service>`: one service on its own, as each container runs on Kubernetes, with
//! its data in PostgreSQL (`DATABASE_URL`) or SQLite files.

use std::sync::Arc;
use std::time::Duration;

use anyhow::Context;
use clap::Subcommand;
use lrs_batch::{Batch, BatchConfig, GrpcLearnerRegister, Workers};
use lrs_fields::SystemClock;
use lrs_gateway::{Gateway, GatewayConfig};
use lrs_identity::{Identity, IdentityConfig};
use lrs_learner::{Learner, LearnerConfig};
use lrs_server::auth::{Authenticator, IdentityKeySource};
use lrs_server::client::{MachineCredential, ServiceChannel, ServiceTokens};
use lrs_server::config::{ServerConfig, TelemetryConfig};
use lrs_server::host::ServiceHost;
use lrs_store::{Database, DatabaseConfig};
use tokio::net::TcpListener;
use tokio::sync::watch;

use crate::failure::CliError;

/// Arguments of `lrs serve`.
#[derive(Debug, clap::Args)]
pub struct ServeArgs {
    /// The service to run.
    #[command(subcommand)]
    pub service: ServeService,
}

/// The services `lrs serve` can run.
#[derive(Debug, Subcommand)]
pub enum ServeService {
    /// Identity: organisations, users, tokens and signing keys.
    Identity(ServeIdentityArgs),
    /// Learner: the register of learners and their ULNs.
    Learner(ServeLearnerArgs),
    /// Batch: uploaded files, jobs, results and exceptions, with its workers.
    Batch(ServeBatchArgs),
    /// The gateway: the one public endpoint, routing to the services.
    Gateway(ServeGatewayArgs),
}

/// Arguments of `lrs serve batch`.
#[derive(Debug, clap::Args)]
pub struct ServeBatchArgs {
    /// Where to listen and how long to drain.
    #[command(flatten)]
    pub server: ServerConfig,
    /// Where the data is kept.
    #[command(flatten)]
    pub database: DatabaseConfig,
    /// Logs and traces.
    #[command(flatten)]
    pub telemetry: TelemetryConfig,
    /// Workers, chunks, limits and the learner service's address.
    #[command(flatten)]
    pub batch: BatchConfig,
    /// The identity service: its published keys verify callers' tokens, and it issues this
    /// service's own token.
    #[arg(
        long = "identity-url",
        env = "LRS_IDENTITY_URL",
        default_value = "http://127.0.0.1:50052"
    )]
    pub identity_url: String,
    /// This service's machine credential: its client id.
    #[arg(long = "client-id", env = "LRS_CLIENT_ID", default_value = "")]
    pub client_id: String,
    /// This service's machine credential: its secret.
    #[arg(
        long = "client-secret",
        env = "LRS_CLIENT_SECRET",
        default_value = "",
        hide_env_values = true,
        hide_default_value = true
    )]
    pub client_secret: String,
}

/// Arguments of `lrs serve gateway`.
#[derive(Debug, clap::Args)]
pub struct ServeGatewayArgs {
    /// Where to listen and how long to drain.
    #[command(flatten)]
    pub server: ServerConfig,
    /// Logs and traces.
    #[command(flatten)]
    pub telemetry: TelemetryConfig,
    /// Routes, rate limits, deadlines and browser origins.
    #[command(flatten)]
    pub gateway: GatewayConfig,
}

/// Arguments of `lrs serve identity`.
#[derive(Debug, clap::Args)]
pub struct ServeIdentityArgs {
    /// Where to listen and how long to drain.
    #[command(flatten)]
    pub server: ServerConfig,
    /// Where the data is kept.
    #[command(flatten)]
    pub database: DatabaseConfig,
    /// Logs and traces.
    #[command(flatten)]
    pub telemetry: TelemetryConfig,
    /// Identity's settings.
    #[command(flatten)]
    pub identity: IdentityConfig,
}

/// Arguments of `lrs serve learner`.
#[derive(Debug, clap::Args)]
pub struct ServeLearnerArgs {
    /// Where to listen and how long to drain.
    #[command(flatten)]
    pub server: ServerConfig,
    /// Where the data is kept.
    #[command(flatten)]
    pub database: DatabaseConfig,
    /// Logs and traces.
    #[command(flatten)]
    pub telemetry: TelemetryConfig,
    /// The learner register's policies.
    #[command(flatten)]
    pub learner: LearnerConfig,
    /// The identity service, whose published keys verify callers' tokens.
    #[arg(
        long = "identity-url",
        env = "LRS_IDENTITY_URL",
        default_value = "http://127.0.0.1:50052"
    )]
    pub identity_url: String,
}

/// Runs one service until SIGTERM or Ctrl-C.
pub async fn serve(args: ServeArgs) -> Result<(), CliError> {
    let served = match args.service {
        ServeService::Identity(args) => serve_identity(args).await,
        ServeService::Learner(args) => serve_learner(args).await,
        ServeService::Batch(args) => serve_batch(args).await,
        ServeService::Gateway(args) => serve_gateway(args).await,
    };
    served.map_err(CliError::Start)
}

async fn serve_identity(args: ServeIdentityArgs) -> anyhow::Result<()> {
    check_common(&args.server, &args.database, &args.telemetry)?;
    args.identity.validate().context("invalid identity flags")?;
    let telemetry = lrs_server::telemetry::init(&args.telemetry, "lrs-identity")?;

    let listener = bind(&args.server).await?;
    let database = lrs_store::connect(&args.database, lrs_identity::SERVICE_NAME).await?;
    let identity = Identity::open(&database, &args.identity, Arc::new(SystemClock)).await?;
    let host = ServiceHost::new(lrs_identity::SERVICE_NAME)
        .shutdown_grace(args.server.shutdown_grace())
        .add_service(identity.grpc_service());

    let served = run_host(host, listener, &database, None).await;
    telemetry.shutdown().await;
    served
}

async fn serve_learner(args: ServeLearnerArgs) -> anyhow::Result<()> {
    check_common(&args.server, &args.database, &args.telemetry)?;
    args.learner.validate().context("invalid learner flags")?;
    let identity = lrs_server::client::channel(&args.identity_url)
        .with_context(|| format!("invalid --identity-url {}", args.identity_url))?;
    let telemetry = lrs_server::telemetry::init(&args.telemetry, "lrs-learner")?;

    let listener = bind(&args.server).await?;
    let database = lrs_store::connect(&args.database, lrs_learner::SERVICE_NAME).await?;
    let authenticator = Authenticator::new(IdentityKeySource::new(identity));
    let learner = Learner::open(
        &database,
        &args.learner,
        Arc::new(SystemClock),
        authenticator,
    )
    .await?;
    let host = ServiceHost::new(lrs_learner::SERVICE_NAME)
        .shutdown_grace(args.server.shutdown_grace())
        .add_service(learner.grpc_service())
        .add_service(learner.internal_grpc_service());

    let served = run_host(host, listener, &database, None).await;
    telemetry.shutdown().await;
    served
}

async fn serve_batch(args: ServeBatchArgs) -> anyhow::Result<()> {
    check_common(&args.server, &args.database, &args.telemetry)?;
    args.batch.validate().context("invalid batch flags")?;
    if args.client_id.trim().is_empty() || args.client_secret.is_empty() {
        anyhow::bail!(
            "--client-id and --client-secret (LRS_CLIENT_ID, LRS_CLIENT_SECRET) are required: \
             batch calls the learner service with its own machine credential"
        );
    }
    let identity = lrs_server::client::channel(&args.identity_url)
        .with_context(|| format!("invalid --identity-url {}", args.identity_url))?;
    let learner = lrs_server::client::channel(&args.batch.learner_url)
        .with_context(|| format!("invalid --learner-url {}", args.batch.learner_url))?;
    let telemetry = lrs_server::telemetry::init(&args.telemetry, "lrs-batch")?;

    let listener = bind(&args.server).await?;
    let database = lrs_store::connect(&args.database, "batch").await?;
    Batch::migrate(&database).await?;
    let credential = MachineCredential {
        client_id: args.client_id.clone(),
        client_secret: args.client_secret.clone(),
    };
    let tokens = ServiceTokens::new(identity.clone(), credential);
    let learners = GrpcLearnerRegister::new(ServiceChannel::new(learner, tokens));
    let batch = Batch::open(
        database.clone(),
        args.batch.clone(),
        Arc::new(SystemClock),
        Authenticator::new(IdentityKeySource::new(identity)),
        Arc::new(learners),
    )
    .await?;
    let host = ServiceHost::new("batch")
        .shutdown_grace(args.server.shutdown_grace())
        .add_service(batch.server());

    let workers = BatchWork {
        workers: batch.start_workers(),
        batch,
        grace: args.server.shutdown_grace(),
    };
    let served = run_host(host, listener, &database, Some(workers)).await;
    telemetry.shutdown().await;
    served
}

async fn serve_gateway(args: ServeGatewayArgs) -> anyhow::Result<()> {
    args.server.validate().context("invalid server flags")?;
    args.telemetry
        .validate()
        .context("invalid telemetry flags")?;
    args.gateway.validate().context("invalid gateway flags")?;
    let telemetry = lrs_server::telemetry::init(&args.telemetry, "lrs-gateway")?;

    let listener = bind(&args.server).await?;
    let gateway = Gateway::new(&args.gateway)?;
    let grace = args.server.shutdown_grace();
    let served = gateway
        .serve(listener, grace, lrs_server::shutdown::signal())
        .await
        .context("the gateway failed");
    telemetry.shutdown().await;
    served
}

/// Checks the blocks every service has, before anything is bound or opened.
fn check_common(
    server: &ServerConfig,
    database: &DatabaseConfig,
    telemetry: &TelemetryConfig,
) -> anyhow::Result<()> {
    server.validate().context("invalid server flags")?;
    database.validate().context("invalid database flags")?;
    telemetry.validate().context("invalid telemetry flags")?;
    Ok(())
}

async fn bind(server: &ServerConfig) -> anyhow::Result<TcpListener> {
    TcpListener::bind(server.listen)
        .await
        .with_context(|| format!("cannot listen on {}", server.listen))
}

/// Serves `host` until SIGTERM or Ctrl-C (health SERVING meanwhile), then drains; the
/// workers, if any, finish the work in hand within the same grace period; then the database
/// closes.
/// The batch service's work beside its server: workers, and watches to end at shutdown.
struct BatchWork {
    batch: Batch,
    workers: Workers,
    grace: Duration,
}

async fn run_host(
    host: ServiceHost,
    listener: TcpListener,
    database: &Database,
    batch: Option<BatchWork>,
) -> anyhow::Result<()> {
    let (stop, stopping) = watch::channel(false);
    tokio::spawn(async move {
        lrs_server::shutdown::signal().await;
        let _ = stop.send(true);
    });
    let readiness = host.readiness();
    let serving = tokio::spawn(host.serve(listener, stopped(stopping.clone())));
    readiness.set_serving().await;

    if let Some(BatchWork {
        batch,
        workers,
        grace,
    }) = batch
    {
        stopped(stopping).await;
        batch.stop_watches();
        workers.stop(grace).await;
        tracing::info!("stopped the workers");
    }
    let served = serving.await;
    database.close().await;
    tracing::info!("closed the database");
    served
        .context("the server task failed")?
        .context("the server failed")
}

/// Resolves once `stopping` turns true (or its sender is gone).
async fn stopped(mut stopping: watch::Receiver<bool>) {
    let _ = stopping.wait_for(|stopping| *stopping).await;
}
