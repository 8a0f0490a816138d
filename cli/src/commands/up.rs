//! `lrs up`: the whole suite in one process, on SQLite files in a data folder.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;

use anyhow::Context;
use lrs_batch::BatchConfig;
use lrs_fields::SystemClock;
use lrs_gateway::GatewayConfig;
use lrs_identity::IdentityConfig;
use lrs_learner::LearnerConfig;
use lrs_server::config::{ServerConfig, TelemetryConfig};
use lrs_store::DatabaseConfig;
use lrs_suite::{RunningSuite, Suite, SuiteConfig};

use crate::failure::CliError;
use crate::output::{self, Table};

/// Arguments of `lrs up`.
#[derive(Debug, clap::Args)]
pub struct UpArgs {
    /// Also create the demonstration organisations and users (an LRB with UKPRN 10000001, an
    /// awarding organisation, a learner account) and print how to sign in as them.
    #[arg(long = "demo", env = "LRS_DEMO")]
    pub demo: bool,

    /// Folder for the suite's data: one SQLite file per service, the admin's first password
    /// (`admin-password`) and the generated key-encryption key (`key-encryption-key`), all
    /// readable by their owner only.
    #[arg(long = "data-dir", env = "LRS_DATA_DIR", default_value = "./lrs-data")]
    pub data_dir: PathBuf,

    /// Public address (the gateway) and shutdown grace period.
    #[command(flatten)]
    pub server: ServerConfig,

    /// Logs and traces.
    #[command(flatten)]
    pub telemetry: TelemetryConfig,

    /// Identity's settings. Without `--key-encryption-key`, the key kept in the data folder is
    /// used (generated on first start).
    #[command(flatten)]
    pub identity: IdentityConfig,

    /// The learner register's policies.
    #[command(flatten)]
    pub learner: LearnerConfig,

    /// The batch service's workers and limits. `--learner-url` is ignored here: the suite
    /// connects batch to its own learner service.
    #[command(flatten)]
    pub batch: BatchConfig,

    /// The gateway's limits and deadlines. Its `--route-*` flags must stay unset here: the
    /// suite routes to its own services.
    #[command(flatten)]
    pub gateway: GatewayConfig,
}

/// Runs the suite until SIGTERM or Ctrl-C, then stops it within the grace period.
pub async fn up(args: UpArgs) -> Result<(), CliError> {
    let config = suite_config(&args).map_err(CliError::Start)?;
    let telemetry = lrs_server::telemetry::init(&args.telemetry, "lrs")
        .context("cannot start logging")
        .map_err(CliError::Start)?;

    let started = Suite::start(config).await;
    let suite = match started {
        Ok(suite) => suite,
        Err(error) => {
            telemetry.shutdown().await;
            return Err(CliError::Start(anyhow::Error::new(error)));
        }
    };
    print_banner(&suite, &args)?;

    let stopped = suite.run_until(lrs_server::shutdown::signal()).await;
    telemetry.shutdown().await;
    stopped
        .context("the suite stopped with an error")
        .map_err(CliError::Start)
}

/// The suite's configuration from the flags, checked before anything is bound.
fn suite_config(args: &UpArgs) -> anyhow::Result<SuiteConfig> {
    args.server.validate().context("invalid server flags")?;
    args.telemetry
        .validate()
        .context("invalid telemetry flags")?;
    args.learner.validate().context("invalid learner flags")?;
    let database = DatabaseConfig::sqlite(&args.data_dir);
    database.validate().context("invalid --data-dir")?;
    Ok(SuiteConfig {
        listen: args.server.listen,
        database,
        data_dir: args.data_dir.clone(),
        demo: args.demo,
        shutdown_grace: args.server.shutdown_grace(),
        identity: args.identity.clone(),
        learner: args.learner.clone(),
        batch: args.batch.clone(),
        gateway: args.gateway.clone(),
        clock: Arc::new(SystemClock),
    })
}

/// Says where the suite is and how to sign in; never prints a generated password.
fn print_banner(suite: &RunningSuite, args: &UpArgs) -> Result<(), CliError> {
    let endpoint = suite.endpoint();
    let mut text = format!("\nLRS is serving at {endpoint}\n\n");
    text.push_str(&format!(
        "  data:      {} (SQLite, one file per service)\n",
        args.data_dir.display()
    ));
    for service in suite.services() {
        text.push_str(&format!(
            "  {:<10} {}\n",
            format!("{}:", service.name),
            service.address
        ));
    }
    if let Some(admin) = suite.admin() {
        let login = format!(
            "lrs login --endpoint {endpoint} --username {}",
            admin.username
        );
        if admin.created_now {
            text.push_str(&format!(
                "\nThe service desk admin `{}` was created now; its first password is in\n  {}\n\
                 Sign in (you will be asked to choose a new password):\n  {login}\n",
                admin.username,
                admin.password_file.display(),
            ));
        } else {
            text.push_str(&format!(
                "\nThe service desk admin is `{}` (created at the first start; its first \
                 password, until changed, is in {}). Sign in:\n  {login}\n",
                admin.username,
                admin.password_file.display(),
            ));
        }
    }
    if !suite.demo_accounts().is_empty() {
        text.push_str(&demo_accounts(
            suite,
            endpoint_flag(args.server.listen, &endpoint),
        ));
    }
    text.push_str("\nStop with Ctrl-C or SIGTERM.\n");
    output::print(&text)
}

fn endpoint_flag(listen: SocketAddr, endpoint: &str) -> String {
    if listen.to_string() == "127.0.0.1:50051" {
        String::new()
    } else {
        format!(" --endpoint {endpoint}")
    }
}

fn demo_accounts(suite: &RunningSuite, endpoint_flag: String) -> String {
    let mut table = Table::new(&["USERNAME", "ORGANISATION", "ROLES", "ULN"]);
    for account in suite.demo_accounts() {
        let roles: Vec<&str> = account.roles.iter().map(|role| role.as_str()).collect();
        table.row(vec![
            account.username.clone(),
            account.organisation.clone(),
            roles.join(","),
            account.uln.clone().unwrap_or_default(),
        ]);
    }
    let password = lrs_identity::bootstrap::DEMO_PASSWORD;
    let example = suite
        .demo_accounts()
        .first()
        .map(|account| account.username.clone())
        .unwrap_or_default();
    format!(
        "\nDemonstration accounts (password `{password}`, for demonstrations only):\n{}\
         Sign in as one:\n  LRS_PASSWORD={password} lrs login{endpoint_flag} --username {example}\n",
        indent(&table.render())
    )
}

fn indent(text: &str) -> String {
    text.lines().map(|line| format!("  {line}\n")).collect()
}
