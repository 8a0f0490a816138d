//! Telemetry installs a process-wide subscriber, so its tests run in a process of their own.

use lrs_server::config::{LogFormat, LogOutput, TelemetryConfig};
use lrs_server::telemetry::{TelemetryError, init};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn installs_once_with_an_exporter_and_flushes() {
    let bad = TelemetryConfig {
        log_level: Some("lrs=nonsense=1".to_owned()),
        ..TelemetryConfig::default()
    };
    assert!(matches!(
        init(&bad, "lrs-test"),
        Err(TelemetryError::Config(_))
    ));

    let config = TelemetryConfig {
        log_format: LogFormat::Json,
        log_output: LogOutput::Stderr,
        log_level: Some("warn".to_owned()),
        otlp_endpoint: Some("http://127.0.0.1:9".to_owned()),
    };
    let guard = init(&config, "lrs-test").expect("installs");
    tracing::warn_span!("exported").in_scope(|| tracing::warn!("recorded a span"));

    let again = init(&config, "lrs-test");
    assert!(matches!(again, Err(TelemetryError::AlreadyInstalled(_))));
    guard.shutdown().await;
}
