//! The generic gRPC proxy: one path for every RPC of every routed service.
//!
//! A call's steps: find its route by the service's area, refusing internal services and
//! services without a route; drop acting-for metadata, which only the suite's own services
//! may send; verify the bearer token unless the RPC is one of the few that need none; charge
//! the caller's rate limit; bound its deadline; carry the trace context; forward the HTTP/2
//! request and stream the answer back, body and trailers as they come.

use std::collections::HashMap;
use std::convert::Infallible;
use std::net::IpAddr;
use std::num::NonZeroU32;
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::Duration;

use futures::future::BoxFuture;
use governor::clock::{Clock, DefaultClock};
use governor::{DefaultKeyedRateLimiter, Quota, RateLimiter};
use http::HeaderMap;
use lrs_server::auth::{
    ACTING_ORGANISATION_HEADER, ACTING_USER_HEADER, AuthError, Authenticator, Claims,
};
use lrs_server::error::{Failure, ToFailure};
use tonic::body::Body;
use tower::ServiceExt;

use crate::catalogue::{Catalogue, INTERNAL_SUFFIX, area_of};
use crate::deadline::{self, DeadlineBody, Deadlines};
use crate::route::Route;

/// The `ErrorInfo` domain of the gateway's own answers.
pub const DOMAIN: &str = "gateway.lrs";

/// The RPCs a caller makes before it has a token.
const PUBLIC_METHODS: [&str; 4] = [
    "/lrs.identity.v1.IdentityService/SignIn",
    "/lrs.identity.v1.IdentityService/RefreshToken",
    "/lrs.identity.v1.IdentityService/IssueClientToken",
    "/lrs.identity.v1.IdentityService/GetSigningKeys",
];

/// How close to its deadline a call may fail in transport and still count as timed out.
const DEADLINE_TOLERANCE: Duration = Duration::from_millis(10);

/// Headers that belong to one HTTP connection, never forwarded.
const HOP_BY_HOP: [&str; 7] = [
    "connection",
    "keep-alive",
    "proxy-connection",
    "transfer-encoding",
    "upgrade",
    "host",
    "content-length",
];

/// Whose allowance a call is charged to.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum RateKey {
    /// A signed-in caller's organisation.
    Organisation(String),
    /// A signed-in caller without an organisation (a learner): its own allowance.
    Subject(String),
    /// A caller without a token, by its address.
    Address(IpAddr),
    /// A caller without a token whose address is unknown.
    Unknown,
}

impl RateKey {
    fn of(claims: &Claims) -> Self {
        match &claims.org {
            Some(organisation) => Self::Organisation(organisation.clone()),
            None => Self::Subject(claims.sub.clone()),
        }
    }
}

/// Why the gateway answered a call itself.
#[derive(Debug, thiserror::Error)]
pub enum ProxyError {
    /// The path does not name an LRS service, or the service has no route.
    #[error("the service `{0}` is not served here")]
    NotRouted(String),
    /// The contracts name the service but not the method.
    #[error("the service `{service}` has no method `{method}`")]
    UnknownMethod {
        /// The service's full name.
        service: String,
        /// The method as called.
        method: String,
    },
    /// The path names a service meant only for the suite's own services.
    #[error("the service `{0}` is not served here")]
    Internal(String),
    /// The token is missing or not valid.
    #[error(transparent)]
    Auth(#[from] AuthError),
    /// The caller's rate limit is used up for now.
    #[error("too many calls from your organisation; try again in {}ms", .0.as_millis())]
    RateLimited(Duration),
    /// The call did not finish within its deadline.
    #[error("the call did not finish within its deadline of {}ms", .0.as_millis())]
    DeadlineExceeded(Duration),
    /// The backend could not be reached.
    #[error("the {area} service is unavailable: {reason}")]
    BackendUnavailable {
        /// The backend's area.
        area: String,
        /// What the transport said.
        reason: String,
    },
}

impl ToFailure for ProxyError {
    fn to_failure(self) -> Failure {
        let message = self.to_string();
        match self {
            ProxyError::NotRouted(_) => Failure::unimplemented("SERVICE_NOT_ROUTED", message),
            ProxyError::Internal(_) => Failure::unimplemented("INTERNAL_SERVICE", message),
            ProxyError::UnknownMethod { .. } => Failure::unimplemented("METHOD_NOT_FOUND", message),
            ProxyError::Auth(error) => error.to_failure(),
            ProxyError::RateLimited(wait) => {
                Failure::resource_exhausted("RATE_LIMITED", message).retry_after(wait)
            }
            ProxyError::DeadlineExceeded(_) => {
                Failure::deadline_exceeded("DEADLINE_EXCEEDED", message)
            }
            ProxyError::BackendUnavailable { .. } => {
                Failure::unavailable("BACKEND_UNAVAILABLE", message)
            }
        }
    }
}

/// Everything the proxy needs, shared by every call.
pub struct ProxyState {
    /// Backends by area (`identity`).
    pub routes: HashMap<String, Route>,
    /// Verifies bearer tokens.
    pub authenticator: Authenticator,
    /// Allowance per organisation or client address.
    pub limiter: DefaultKeyedRateLimiter<RateKey>,
    /// Deadline rules.
    pub deadlines: Deadlines,
    /// Which methods stream.
    pub catalogue: Catalogue,
}

impl std::fmt::Debug for ProxyState {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let mut areas: Vec<_> = self.routes.keys().collect();
        areas.sort();
        f.debug_struct("ProxyState")
            .field("areas", &areas)
            .field("deadlines", &self.deadlines)
            .finish_non_exhaustive()
    }
}

/// A keyed limiter allowing `per_second` calls on average and `burst` at once.
pub fn limiter(per_second: NonZeroU32, burst: NonZeroU32) -> DefaultKeyedRateLimiter<RateKey> {
    RateLimiter::keyed(Quota::per_second(per_second).allow_burst(burst))
}

/// The proxy as a tower service, the gateway host's fallback.
#[derive(Debug, Clone)]
pub struct Proxy {
    state: Arc<ProxyState>,
}

impl Proxy {
    /// A proxy over `state`.
    pub fn new(state: Arc<ProxyState>) -> Self {
        Self { state }
    }
}

impl tower::Service<http::Request<Body>> for Proxy {
    type Response = http::Response<Body>;
    type Error = Infallible;
    type Future = BoxFuture<'static, Result<Self::Response, Infallible>>;

    fn poll_ready(&mut self, _cx: &mut Context<'_>) -> Poll<Result<(), Infallible>> {
        Poll::Ready(Ok(()))
    }

    fn call(&mut self, mut request: http::Request<Body>) -> Self::Future {
        // The trace context is written here, inside the call's span, before the future runs.
        let traced = lrs_server::layer::inject_current_trace_context(request.headers_mut());
        if traced {
            tracing::trace!("carried the gateway's trace context");
        }
        let state = self.state.clone();
        Box::pin(async move {
            let request_id = lrs_server::auth::REQUEST_ID_HEADER;
            let request_id = request
                .headers()
                .get(request_id)
                .and_then(|value| value.to_str().ok())
                .unwrap_or("")
                .to_owned();
            let answer = match forward(&state, request).await {
                Ok(response) => response,
                Err(error) => {
                    tracing::debug!(error = %error, "refused call");
                    error
                        .to_failure()
                        .into_status(DOMAIN, &request_id)
                        .into_http()
                }
            };
            Ok(answer)
        })
    }
}

async fn forward(
    state: &ProxyState,
    mut request: http::Request<Body>,
) -> Result<http::Response<Body>, ProxyError> {
    let path = request.uri().path().to_owned();
    let (area, backend) = route(state, &path)?;
    if state.catalogue.lacks_method(&path) {
        let (service, method) = path
            .trim_start_matches('/')
            .rsplit_once('/')
            .unwrap_or_default();
        return Err(ProxyError::UnknownMethod {
            service: service.to_owned(),
            method: method.to_owned(),
        });
    }

    let headers = request.headers_mut();
    headers.remove(ACTING_ORGANISATION_HEADER);
    headers.remove(ACTING_USER_HEADER);
    for name in HOP_BY_HOP {
        headers.remove(name);
    }

    let key = if PUBLIC_METHODS.contains(&path.as_str()) {
        address_key(&request)
    } else {
        let token = bearer_token(request.headers())?;
        RateKey::of(&state.authenticator.verify(token).await?)
    };
    charge(state, &key)?;

    let requested = deadline::requested(request.headers());
    let deadline = state
        .deadlines
        .for_call(requested, state.catalogue.is_streaming(&path));
    deadline::rewrite(request.headers_mut(), deadline);
    let expires = tokio::time::Instant::now() + deadline;

    let sent = tokio::time::timeout_at(expires, backend.oneshot(request));
    let response = match sent.await {
        Err(_elapsed) => return Err(ProxyError::DeadlineExceeded(deadline)),
        // The backend enforces the same deadline and resets the stream when it passes; its
        // timer and ours fire within a timer tick of each other.
        Ok(Err(_)) if tokio::time::Instant::now() + DEADLINE_TOLERANCE >= expires => {
            return Err(ProxyError::DeadlineExceeded(deadline));
        }
        Ok(Err(error)) => {
            return Err(ProxyError::BackendUnavailable {
                area: area.to_owned(),
                reason: error.to_string(),
            });
        }
        Ok(Ok(response)) => response,
    };

    let cut_off = ProxyError::DeadlineExceeded(deadline)
        .to_failure()
        .into_status(DOMAIN, "")
        .into_http::<()>();
    let trailers = grpc_headers(cut_off.headers());
    Ok(response.map(|body| Body::new(DeadlineBody::new(body, expires, trailers))))
}

fn route<'a>(state: &'a ProxyState, path: &str) -> Result<(&'a str, Route), ProxyError> {
    let service = path
        .strip_prefix('/')
        .and_then(|rest| rest.split_once('/'))
        .map(|(service, _method)| service)
        .unwrap_or("");
    if service.ends_with(INTERNAL_SUFFIX) {
        return Err(ProxyError::Internal(service.to_owned()));
    }
    let area = area_of(service).ok_or_else(|| ProxyError::NotRouted(service.to_owned()))?;
    state
        .routes
        .get_key_value(area)
        .map(|(area, backend)| (area.as_str(), backend.clone()))
        .ok_or_else(|| ProxyError::NotRouted(service.to_owned()))
}

fn address_key(request: &http::Request<Body>) -> RateKey {
    request
        .extensions()
        .get::<tonic::transport::server::TcpConnectInfo>()
        .and_then(|info| info.remote_addr())
        .map_or(RateKey::Unknown, |address| RateKey::Address(address.ip()))
}

fn bearer_token(headers: &HeaderMap) -> Result<&str, AuthError> {
    let value = headers
        .get(http::header::AUTHORIZATION)
        .ok_or(AuthError::MissingToken)?
        .to_str()
        .map_err(|_| AuthError::MalformedHeader)?;
    let token = value
        .strip_prefix("Bearer ")
        .or_else(|| value.strip_prefix("bearer "))
        .map(str::trim)
        .filter(|token| !token.is_empty())
        .ok_or(AuthError::MalformedHeader)?;
    Ok(token)
}

fn charge(state: &ProxyState, key: &RateKey) -> Result<(), ProxyError> {
    state.limiter.check_key(key).map_err(|not_until| {
        let wait = not_until.wait_time_from(DefaultClock::default().now());
        ProxyError::RateLimited(wait)
    })
}

fn grpc_headers(headers: &HeaderMap) -> HeaderMap {
    headers
        .iter()
        .filter(|(name, _)| name.as_str().starts_with("grpc-"))
        .map(|(name, value)| (name.clone(), value.clone()))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bearer_tokens_are_read_strictly() {
        let mut headers = HeaderMap::new();
        assert!(matches!(
            bearer_token(&headers),
            Err(AuthError::MissingToken)
        ));
        headers.insert("authorization", "Basic abc".parse().expect("ascii"));
        assert!(matches!(
            bearer_token(&headers),
            Err(AuthError::MalformedHeader)
        ));
        headers.insert("authorization", "Bearer  ".parse().expect("ascii"));
        assert!(matches!(
            bearer_token(&headers),
            Err(AuthError::MalformedHeader)
        ));
        headers.insert("authorization", "Bearer abc.def".parse().expect("ascii"));
        assert_eq!(bearer_token(&headers).expect("a token"), "abc.def");
    }

    #[test]
    fn the_limiter_refuses_past_the_burst_with_a_wait() {
        let one = NonZeroU32::MIN;
        let state_limiter = limiter(one, one);
        let key = RateKey::Organisation("org".to_owned());
        assert!(state_limiter.check_key(&key).is_ok());
        let refused = state_limiter.check_key(&key).expect_err("over the burst");
        assert!(refused.wait_time_from(DefaultClock::default().now()) > Duration::ZERO);
        let other = RateKey::Organisation("other".to_owned());
        assert!(state_limiter.check_key(&other).is_ok());
    }
}
