//! Asking gRPC health whether the suite serves, as a client would.

use std::time::Duration;

use tonic::transport::Endpoint;
use tonic_health::pb::HealthCheckRequest;
use tonic_health::pb::health_check_response::ServingStatus;
use tonic_health::pb::health_client::HealthClient;

use crate::SuiteError;

/// How often health is asked again while waiting.
const POLL_INTERVAL: Duration = Duration::from_millis(50);

/// The status gRPC health reports for `name` (`""` for the server as a whole) at `endpoint`
/// (`http://127.0.0.1:50051`).
pub async fn health_status(endpoint: &str, name: &str) -> Result<ServingStatus, SuiteError> {
    let channel = Endpoint::from_shared(endpoint.to_owned())
        .map_err(|source| SuiteError::Endpoint {
            endpoint: endpoint.to_owned(),
            source,
        })?
        .connect_timeout(Duration::from_secs(2))
        .connect()
        .await
        .map_err(|source| SuiteError::Endpoint {
            endpoint: endpoint.to_owned(),
            source,
        })?;
    let request = HealthCheckRequest {
        service: name.to_owned(),
    };
    let response = HealthClient::new(channel)
        .check(request)
        .await
        .map_err(|status| SuiteError::Health {
            endpoint: endpoint.to_owned(),
            name: name.to_owned(),
            status: Box::new(status),
        })?;
    Ok(response.into_inner().status())
}

/// Waits until gRPC health at `endpoint` answers SERVING for `""` and for each of `names`,
/// asking every 50 ms, for at most `timeout`.
pub async fn wait_until_serving(
    endpoint: &str,
    names: &[&str],
    timeout: Duration,
) -> Result<(), SuiteError> {
    let wait = async {
        loop {
            if all_serving(endpoint, names).await {
                return;
            }
            tokio::time::sleep(POLL_INTERVAL).await;
        }
    };
    tokio::time::timeout(timeout, wait)
        .await
        .map_err(|_| SuiteError::NotServing {
            endpoint: endpoint.to_owned(),
            timeout,
        })
}

async fn all_serving(endpoint: &str, names: &[&str]) -> bool {
    for name in std::iter::once(&"").chain(names) {
        match health_status(endpoint, name).await {
            Ok(ServingStatus::Serving) => {}
            Ok(_) | Err(_) => return false,
        }
    }
    true
}
