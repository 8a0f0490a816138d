//! Logs and traces: a `tracing` subscriber writing text or JSON lines through an env filter,
//! and, when a collector is configured, OpenTelemetry traces exported over OTLP/gRPC.
//!
//! The W3C trace-context propagator is installed globally in every case, so that the call
//! layers ([`crate::layer`], [`crate::client`]) read and write `traceparent` the same way
//! whether or not traces are exported.

use std::io::IsTerminal;
use std::time::Duration;

use opentelemetry::trace::TracerProvider as _;
use opentelemetry_otlp::WithExportConfig;
use opentelemetry_sdk::propagation::TraceContextPropagator;
use opentelemetry_sdk::trace::SdkTracerProvider;
use tracing_subscriber::fmt::writer::BoxMakeWriter;
use tracing_subscriber::layer::SubscriberExt;
use tracing_subscriber::util::SubscriberInitExt;

use crate::config::{ConfigError, LogFormat, LogOutput, TelemetryConfig};

/// How long the exporter may take to send the spans still buffered at shutdown.
const FLUSH_TIMEOUT: Duration = Duration::from_secs(5);

/// Why telemetry could not start.
#[derive(Debug, thiserror::Error)]
pub enum TelemetryError {
    /// The configuration is not valid.
    #[error(transparent)]
    Config(#[from] ConfigError),
    /// The OTLP exporter could not be built.
    #[error("the OTLP exporter could not be built: {0}")]
    Exporter(#[from] opentelemetry_otlp::ExporterBuildError),
    /// A global subscriber was already installed in this process.
    #[error("a tracing subscriber is already installed: {0}")]
    AlreadyInstalled(#[from] tracing_subscriber::util::TryInitError),
}

/// Keeps the trace exporter alive; flushes buffered spans when shut down or dropped.
#[derive(Debug)]
pub struct TelemetryGuard {
    provider: Option<SdkTracerProvider>,
}

impl TelemetryGuard {
    /// Flushes and stops the exporter. The SDK's shutdown blocks, so it runs on a blocking
    /// thread rather than on the async runtime.
    pub async fn shutdown(mut self) {
        if let Some(provider) = self.provider.take() {
            let flushed = tokio::task::spawn_blocking(move || flush(provider)).await;
            if let Err(error) = flushed {
                tracing::warn!(%error, "could not flush traces");
            }
        }
    }
}

impl Drop for TelemetryGuard {
    fn drop(&mut self) {
        if let Some(provider) = self.provider.take() {
            // A thread of its own: dropping may happen on a runtime thread, where the SDK's
            // blocking shutdown must not run.
            let flushing = std::thread::spawn(move || flush(provider));
            let _ = flushing.join();
        }
    }
}

fn flush(provider: SdkTracerProvider) {
    if let Err(error) = provider.shutdown_with_timeout(FLUSH_TIMEOUT) {
        tracing::warn!(%error, "could not flush traces");
    }
}

/// Installs the global subscriber and propagator for `service_name` (`lrs-identity`).
///
/// Call it once, at start-up, inside the tokio runtime (the OTLP exporter needs it). Keep the
/// guard until the process ends and call [`TelemetryGuard::shutdown`] last.
pub fn init(
    config: &TelemetryConfig,
    service_name: &str,
) -> Result<TelemetryGuard, TelemetryError> {
    config.validate()?;
    opentelemetry::global::set_text_map_propagator(TraceContextPropagator::new());

    let provider = match &config.otlp_endpoint {
        Some(endpoint) => Some(tracer_provider(endpoint, service_name)?),
        None => None,
    };
    let otel_layer = provider.as_ref().map(|provider| {
        let tracer = provider.tracer(service_name.to_owned());
        tracing_opentelemetry::layer().with_tracer(tracer)
    });
    if let Some(provider) = &provider {
        opentelemetry::global::set_tracer_provider(provider.clone());
    }

    let output = config.log_output;
    let (text, json) = match config.log_format {
        // Colours only on a terminal: a log redirected to a file stays plain text.
        LogFormat::Text => {
            let layer = tracing_subscriber::fmt::layer()
                .with_writer(writer(output))
                .with_ansi(is_terminal(output));
            (Some(layer), None)
        }
        LogFormat::Json => {
            let layer = tracing_subscriber::fmt::layer()
                .with_writer(writer(output))
                .json();
            (None, Some(layer))
        }
    };
    tracing_subscriber::registry()
        .with(config.env_filter()?)
        .with(text)
        .with(json)
        .with(otel_layer)
        .try_init()?;

    if let Some(endpoint) = &config.otlp_endpoint {
        tracing::info!(%endpoint, "exporting traces over OTLP");
    }
    Ok(TelemetryGuard { provider })
}

/// The stream log lines are written to.
fn writer(output: LogOutput) -> BoxMakeWriter {
    match output {
        LogOutput::Stdout => BoxMakeWriter::new(std::io::stdout),
        LogOutput::Stderr => BoxMakeWriter::new(std::io::stderr),
    }
}

/// Whether that stream is a terminal.
fn is_terminal(output: LogOutput) -> bool {
    match output {
        LogOutput::Stdout => std::io::stdout().is_terminal(),
        LogOutput::Stderr => std::io::stderr().is_terminal(),
    }
}

fn tracer_provider(
    endpoint: &str,
    service_name: &str,
) -> Result<SdkTracerProvider, TelemetryError> {
    let exporter = opentelemetry_otlp::SpanExporter::builder()
        .with_tonic()
        .with_endpoint(endpoint)
        .build()?;
    let resource = opentelemetry_sdk::Resource::builder()
        .with_service_name(service_name.to_owned())
        .build();
    Ok(SdkTracerProvider::builder()
        .with_batch_exporter(exporter)
        .with_resource(resource)
        .build())
}
