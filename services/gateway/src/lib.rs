//! The gateway: the suite's one public endpoint.
//!
//! Every call from outside comes here, over gRPC or gRPC-Web. The gateway answers health and
//! reflection itself and sends everything else through one generic proxy ([`proxy`]): routed
//! by the area in the service's name (`lrs.learner.v1.LearnerService` goes to the learner
//! route), never to an `...InternalService`, after verifying the bearer token with identity's
//! published keys (except for sign-in and the other calls made before one has a token),
//! charging the organisation's rate limit and bounding the deadline ([`deadline`]). The token
//! goes on unchanged; each service verifies it again and decides what the caller may do.
//!
//! A route reaches its service over HTTP/2 (`lrs serve gateway`, one service per container)
//! or, when the service runs in the gateway's own process (`lrs up`), in-process
//! ([`route::Route`]); the checks are the same either way.
//!
//! Health: `""` follows identity's health (no token can be verified without it), and each
//! public service of a routed area follows that service's health at its backend, so a probe
//! of the gateway sees the suite as its callers would.

pub mod catalogue;
pub mod config;
pub mod deadline;
pub mod proxy;
pub mod route;

use std::collections::HashMap;
use std::future::Future;
use std::num::NonZeroU32;
use std::sync::Arc;
use std::time::Duration;

use http::{HeaderName, HeaderValue, Method};
use lrs_server::auth::{Authenticator, IdentityKeySource};
use lrs_server::client::ClientError;
use lrs_server::host::{HostError, InProcess, Readiness, ServiceHost};
use tokio::net::TcpListener;
use tonic::transport::Channel;
use tonic_health::pb::HealthCheckRequest;
use tonic_health::pb::health_check_response::ServingStatus;
use tonic_health::pb::health_client::HealthClient;
use tower_http::cors::{AllowOrigin, CorsLayer};

use crate::catalogue::Catalogue;
pub use crate::config::{GatewayConfig, GatewayConfigError};
use crate::deadline::Deadlines;
use crate::proxy::{Proxy, ProxyState};
use crate::route::Route;

/// How often idle entries are swept from the rate limiter.
const LIMITER_SWEEP: Duration = Duration::from_secs(60);
/// The longest wait between two attempts to watch a backend's health.
const HEALTH_RETRY_MAX: Duration = Duration::from_secs(5);

/// Why the gateway could not be built.
#[derive(Debug, thiserror::Error)]
pub enum GatewayError {
    /// The configuration is not valid.
    #[error(transparent)]
    Config(#[from] GatewayConfigError),
    /// A route's channel could not be made.
    #[error(transparent)]
    Route(#[from] ClientError),
    /// The embedded descriptor set does not decode.
    #[error("the embedded contracts do not decode: {0}")]
    Contracts(#[from] prost::DecodeError),
}

/// The gateway, ready to serve.
#[derive(Debug)]
pub struct Gateway {
    routes: HashMap<String, Route>,
    identity: Channel,
    deadlines: Deadlines,
    per_second: NonZeroU32,
    burst: NonZeroU32,
    cors: CorsLayer,
}

impl Gateway {
    /// A gateway for `config`, validated, with a lazily connecting channel per route. Call it
    /// inside the tokio runtime.
    pub fn new(config: &GatewayConfig) -> Result<Self, GatewayError> {
        config.validate()?;
        let mut routes = HashMap::new();
        let mut identity = None;
        for (area, url) in config.routes() {
            let channel = lrs_server::client::channel(url)?;
            if area == "identity" {
                identity = Some(channel.clone());
            }
            routes.insert(area.to_owned(), Route::Remote(channel));
        }
        let identity = identity.ok_or(GatewayConfigError::MissingIdentityRoute)?;
        let rate = |value: u32| NonZeroU32::new(value).ok_or(GatewayConfigError::ZeroRateLimit);
        Ok(Self {
            routes,
            identity,
            deadlines: Deadlines {
                unary_default: config.default_deadline(),
                unary_max: config.max_deadline(),
                stream: config.stream_deadline(),
            },
            per_second: rate(config.rate_limit_per_second)?,
            burst: rate(config.rate_limit_burst)?,
            cors: cors(&config.cors_allow_origins),
        })
    }

    /// Adds or replaces the route of `area` (the second part of a service's name,
    /// `lrs.<area>.v1...`). For embedding and tests; `lrs` configures routes by flags.
    pub fn with_route(mut self, area: &str, channel: Channel) -> Self {
        if area == "identity" {
            self.identity = channel.clone();
        }
        self.routes.insert(area.to_owned(), Route::Remote(channel));
        self
    }

    /// Sends the calls of `area` to a service hosted in this process rather than over the
    /// network (`lrs up`). Identity's signing keys are still fetched from its URL.
    pub fn with_in_process_route(mut self, area: &str, service: InProcess) -> Self {
        self.routes
            .insert(area.to_owned(), Route::InProcess(service));
        self
    }

    /// Serves on `listener` until `shutdown` resolves, then drains for up to `grace`.
    pub async fn serve<F>(
        self,
        listener: TcpListener,
        grace: Duration,
        shutdown: F,
    ) -> Result<(), GatewayServeError>
    where
        F: Future<Output = ()> + Send + 'static,
    {
        let catalogue = Catalogue::load()?;
        let mut host = ServiceHost::new("gateway")
            .shutdown_grace(grace)
            .grpc_web(self.cors.clone());
        let mut watched = Vec::new();
        for area in self.routes.keys() {
            for service in catalogue.public_services(area) {
                host = host.advertise(service.clone()).register_health(service);
                watched.push((self.routes[area].clone(), service.clone()));
            }
        }

        let state = Arc::new(ProxyState {
            authenticator: Authenticator::new(IdentityKeySource::new(self.identity.clone())),
            limiter: proxy::limiter(self.per_second, self.burst),
            routes: self.routes,
            deadlines: self.deadlines,
            catalogue,
        });
        let host = host.fallback(Proxy::new(state.clone()));
        let readiness = host.readiness();

        let mut tasks = tokio::task::JoinSet::new();
        let identity = state.routes.get("identity").cloned();
        let identity = identity.unwrap_or(Route::Remote(self.identity));
        tasks.spawn(mirror_health(
            readiness.clone(),
            (identity, String::new(), String::new()),
        ));
        for (backend, service) in watched {
            let watch = (backend, service.clone(), service);
            tasks.spawn(mirror_health(readiness.clone(), watch));
        }
        tasks.spawn(sweep_limiter(state));

        let served = host.serve(listener, shutdown).await;
        tasks.abort_all();
        Ok(served?)
    }
}

/// Why the gateway stopped with an error.
#[derive(Debug, thiserror::Error)]
pub enum GatewayServeError {
    /// The embedded descriptor set does not decode.
    #[error("the embedded contracts do not decode: {0}")]
    Contracts(#[from] prost::DecodeError),
    /// The server failed.
    #[error(transparent)]
    Host(#[from] HostError),
}

/// The CORS policy for browsers calling over gRPC-Web from `origins` (`*` for any; none by
/// default).
fn cors(origins: &[String]) -> CorsLayer {
    let allowed = [
        "authorization",
        "content-type",
        "grpc-timeout",
        "traceparent",
        "tracestate",
        "x-grpc-web",
        "x-request-id",
        "x-user-agent",
    ];
    let exposed = [
        "grpc-message",
        "grpc-status",
        "grpc-status-details-bin",
        "x-request-id",
    ];
    let policy = CorsLayer::new()
        .allow_methods([Method::POST, Method::OPTIONS])
        .allow_headers(allowed.map(HeaderName::from_static))
        .expose_headers(exposed.map(HeaderName::from_static))
        .max_age(Duration::from_secs(3600));
    if origins.iter().any(|origin| origin == "*") {
        return policy.allow_origin(AllowOrigin::any());
    }
    let listed: Vec<HeaderValue> = origins
        .iter()
        .filter_map(|origin| HeaderValue::from_str(origin).ok())
        .collect();
    if listed.is_empty() {
        return policy;
    }
    policy.allow_origin(AllowOrigin::list(listed))
}

/// Follows `backend_name`'s health at a backend into the gateway's `local_name`, until the
/// gateway shuts down. Losing the backend reports NOT_SERVING and retries with a backoff.
async fn mirror_health(
    readiness: Readiness,
    (backend, backend_name, local_name): (Route, String, String),
) {
    let mut backoff = Duration::from_millis(50);
    loop {
        let mut health = HealthClient::new(backend.clone());
        let request = HealthCheckRequest {
            service: backend_name.clone(),
        };
        if let Ok(response) = health.watch(request).await {
            let mut statuses = response.into_inner();
            while let Ok(Some(update)) = statuses.message().await {
                let serving = update.status() == ServingStatus::Serving;
                readiness.set_service_serving(&local_name, serving).await;
                backoff = Duration::from_millis(50);
            }
        }
        readiness.set_service_serving(&local_name, false).await;
        if readiness.is_stopping().await {
            return;
        }
        tokio::time::sleep(backoff).await;
        backoff = (backoff * 2).min(HEALTH_RETRY_MAX);
    }
}

/// Forgets rate-limit entries that are back to a full allowance, so that callers' addresses
/// do not accumulate.
async fn sweep_limiter(state: Arc<ProxyState>) {
    let mut ticks = tokio::time::interval(LIMITER_SWEEP);
    loop {
        ticks.tick().await;
        state.limiter.retain_recent();
        state.limiter.shrink_to_fit();
    }
}
