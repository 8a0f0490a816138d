//! Configuration blocks shared by every service: where to listen, how long to drain, and how
//! to log and trace.
//!
//! Each block is a clap `Args` struct that a binary flattens into its own command. Every
//! flag also reads an environment variable, its doc comment is its help text, and durations
//! are written in human form (`20s`, `2m`). [`ServerConfig::validate`] and
//! [`TelemetryConfig::validate`] report a bad value as a [`ConfigError`] before any socket is
//! bound.

use std::net::SocketAddr;
use std::time::Duration;

use tracing_subscriber::EnvFilter;

/// The longest shutdown grace period accepted: longer than any orchestrator waits.
const MAX_SHUTDOWN_GRACE: Duration = Duration::from_secs(600);

/// A configuration value that cannot be used.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    /// The grace period is zero or longer than [`MAX_SHUTDOWN_GRACE`].
    #[error("--shutdown-grace must be between 1ms and 10m, not {0:?}")]
    ShutdownGrace(Duration),
    /// The log filter does not parse.
    #[error("the log filter `{filter}` is not valid: {reason}")]
    LogFilter {
        /// The filter as given.
        filter: String,
        /// What the parser said.
        reason: String,
    },
    /// The OTLP endpoint is not an `http` or `https` URL with a host.
    #[error("--otlp-endpoint must be an http:// or https:// URL with a host, not `{0}`")]
    OtlpEndpoint(String),
}

/// Where a service listens and how it stops.
#[derive(Debug, Clone, clap::Args)]
pub struct ServerConfig {
    /// Address and port to listen on for gRPC.
    #[arg(long = "listen", env = "LRS_LISTEN", default_value = "127.0.0.1:50051")]
    pub listen: SocketAddr,

    /// How long in-flight calls may run after SIGTERM before the server stops anyway.
    #[arg(
        long = "shutdown-grace",
        env = "LRS_SHUTDOWN_GRACE",
        default_value = "20s"
    )]
    pub shutdown_grace: humantime::Duration,
}

impl ServerConfig {
    /// Checks the values that clap's parsing cannot.
    pub fn validate(&self) -> Result<(), ConfigError> {
        let grace: Duration = self.shutdown_grace.into();
        if grace.is_zero() || grace > MAX_SHUTDOWN_GRACE {
            return Err(ConfigError::ShutdownGrace(grace));
        }
        Ok(())
    }

    /// The grace period as a [`Duration`].
    pub fn shutdown_grace(&self) -> Duration {
        self.shutdown_grace.into()
    }
}

/// How log lines are written.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, clap::ValueEnum)]
pub enum LogFormat {
    /// Human-readable lines.
    #[default]
    Text,
    /// One JSON object per line, for log collectors.
    Json,
}

/// Where log lines are written.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, clap::ValueEnum)]
pub enum LogOutput {
    /// Standard output.
    #[default]
    Stdout,
    /// Standard error, leaving standard output to what the command prints.
    Stderr,
}

/// Logging and tracing.
#[derive(Debug, Clone, clap::Args)]
pub struct TelemetryConfig {
    /// Log line format: `text` or `json`.
    #[arg(
        long = "log-format",
        env = "LRS_LOG_FORMAT",
        value_enum,
        default_value = "text"
    )]
    pub log_format: LogFormat,

    /// Where log lines go: `stdout` or `stderr`.
    #[arg(
        long = "log-output",
        env = "LRS_LOG_OUTPUT",
        value_enum,
        default_value = "stdout"
    )]
    pub log_output: LogOutput,

    /// Log filter (`info`, `lrs_identity=debug,info`). When unset, `RUST_LOG` is used, and
    /// `info` when that is unset too.
    #[arg(long = "log-level", env = "LRS_LOG")]
    pub log_level: Option<String>,

    /// OTLP/gRPC collector to export traces to (`http://otel-collector:4317`); no traces are
    /// exported when unset.
    #[arg(long = "otlp-endpoint", env = "OTEL_EXPORTER_OTLP_ENDPOINT")]
    pub otlp_endpoint: Option<String>,
}

impl Default for TelemetryConfig {
    fn default() -> Self {
        Self {
            log_format: LogFormat::Text,
            log_output: LogOutput::Stdout,
            log_level: None,
            otlp_endpoint: None,
        }
    }
}

impl TelemetryConfig {
    /// The log filter in force: `--log-level`, else `RUST_LOG`, else `info`.
    pub fn log_filter(&self) -> String {
        match &self.log_level {
            Some(filter) => filter.clone(),
            None => std::env::var("RUST_LOG")
                .ok()
                .filter(|filter| !filter.trim().is_empty())
                .unwrap_or_else(|| "info".to_owned()),
        }
    }

    /// Checks the log filter and the collector's URL.
    pub fn validate(&self) -> Result<(), ConfigError> {
        self.env_filter()?;
        if let Some(endpoint) = &self.otlp_endpoint {
            let url = url::Url::parse(endpoint)
                .map_err(|_| ConfigError::OtlpEndpoint(endpoint.clone()))?;
            let usable = matches!(url.scheme(), "http" | "https") && url.host().is_some();
            if !usable {
                return Err(ConfigError::OtlpEndpoint(endpoint.clone()));
            }
        }
        Ok(())
    }

    pub(crate) fn env_filter(&self) -> Result<EnvFilter, ConfigError> {
        let filter = self.log_filter();
        EnvFilter::builder()
            .parse(&filter)
            .map_err(|error| ConfigError::LogFilter {
                filter,
                reason: error.to_string(),
            })
    }
}

#[cfg(test)]
mod tests {
    use clap::Parser;

    use super::*;

    #[derive(Debug, Parser)]
    struct Command {
        #[command(flatten)]
        server: ServerConfig,
        #[command(flatten)]
        telemetry: TelemetryConfig,
    }

    #[test]
    fn defaults_are_valid() {
        let command = Command::try_parse_from(["lrs"]).expect("defaults parse");
        assert!(command.server.validate().is_ok());
        assert_eq!(command.server.shutdown_grace(), Duration::from_secs(20));
        assert_eq!(command.telemetry.log_format, LogFormat::Text);
        assert_eq!(command.telemetry.log_output, LogOutput::Stdout);
    }

    #[test]
    fn logs_can_go_to_standard_error() {
        let command = Command::try_parse_from(["lrs", "--log-output", "stderr"]).expect("parses");
        assert_eq!(command.telemetry.log_output, LogOutput::Stderr);
        assert!(Command::try_parse_from(["lrs", "--log-output", "file"]).is_err());
    }

    #[test]
    fn durations_are_read_in_human_form() {
        let command = Command::try_parse_from(["lrs", "--shutdown-grace", "1m 30s"])
            .expect("human duration parses");
        assert_eq!(command.server.shutdown_grace(), Duration::from_secs(90));
    }

    #[test]
    fn bad_values_are_typed_errors() {
        let command = Command::try_parse_from(["lrs", "--shutdown-grace", "0s"]).expect("parses");
        assert!(matches!(
            command.server.validate(),
            Err(ConfigError::ShutdownGrace(_))
        ));

        let command =
            Command::try_parse_from(["lrs", "--log-level", "lrs=nonsense=1"]).expect("parses");
        assert!(matches!(
            command.telemetry.validate(),
            Err(ConfigError::LogFilter { .. })
        ));

        let command =
            Command::try_parse_from(["lrs", "--otlp-endpoint", "collector:4317"]).expect("parses");
        assert!(matches!(
            command.telemetry.validate(),
            Err(ConfigError::OtlpEndpoint(_))
        ));
    }

    #[test]
    fn a_bad_listen_address_is_refused_by_the_parser() {
        assert!(Command::try_parse_from(["lrs", "--listen", "localhost"]).is_err());
    }
}
