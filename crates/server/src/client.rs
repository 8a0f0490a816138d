//! Calling other services: one long-lived channel per backend, the service's own token, and
//! the metadata that carries a call's context to the next hop.
//!
//! A service makes a [`channel`] to each backend once, at start-up, and wraps it in a
//! [`ServiceChannel`], which adds `authorization: Bearer <the service's token>` (from
//! [`ServiceTokens`]) and the current trace context to every call. The call's own context,
//! its request id and the organisation and user it acts for, goes on each request through
//! [`outbound`] (or [`crate::call::Call::outbound`]).

use std::fmt;
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::{Duration, Instant};

use futures::future::BoxFuture;
use http::HeaderValue;
use lrs_proto::identity::v1::IssueClientTokenRequest;
use lrs_proto::identity::v1::identity_service_client::IdentityServiceClient;
use tonic::body::Body;
use tonic::metadata::MetadataValue;
use tonic::transport::{Channel, Endpoint};
use tower::{Service, ServiceExt};

use crate::auth::{ACTING_ORGANISATION_HEADER, ACTING_USER_HEADER, ActingFor, REQUEST_ID_HEADER};
use crate::error::{Failure, ToFailure};
use crate::layer::inject_current_trace_context;

/// How long to wait for a backend's TCP connection.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(5);
/// How often an HTTP/2 ping checks an idle connection, and how long its answer may take.
const KEEPALIVE_INTERVAL: Duration = Duration::from_secs(30);
const KEEPALIVE_TIMEOUT: Duration = Duration::from_secs(10);
/// A service token is renewed this long before it expires, at most (a fifth of its life for
/// short-lived tokens), so no call leaves with a token about to lapse.
const TOKEN_RENEWAL_MARGIN: Duration = Duration::from_secs(60);

/// Why a backend cannot be called.
#[derive(Debug, thiserror::Error)]
pub enum ClientError {
    /// The backend's address is not an `http://` or `https://` URL.
    #[error("`{0}` is not a backend URL such as http://127.0.0.1:50052")]
    BadUrl(String),
    /// Identity refused or did not answer the request for the service's token.
    #[error("the service token could not be obtained: {0}")]
    TokenRefused(tonic::Status),
    /// Identity answered a token that cannot be sent as metadata.
    #[error("identity answered a malformed service token")]
    MalformedToken,
}

impl ToFailure for ClientError {
    fn to_failure(self) -> Failure {
        let message = self.to_string();
        match self {
            ClientError::BadUrl(_) => Failure::internal(self),
            ClientError::TokenRefused(_) => {
                Failure::unavailable("SERVICE_TOKEN_UNAVAILABLE", message)
            }
            ClientError::MalformedToken => Failure::internal(self),
        }
    }
}

/// A lazily connecting channel to the backend at `url` (`http://127.0.0.1:50052`), with a
/// connect timeout and HTTP/2 keepalive. It connects on first use and reconnects by itself;
/// make one per backend and clone it. Call it inside the tokio runtime.
pub fn channel(url: &str) -> Result<Channel, ClientError> {
    let usable = url.starts_with("http://") || url.starts_with("https://");
    if !usable {
        return Err(ClientError::BadUrl(url.to_owned()));
    }
    let endpoint = Endpoint::from_shared(url.to_owned())
        .map_err(|_| ClientError::BadUrl(url.to_owned()))?
        .connect_timeout(CONNECT_TIMEOUT)
        .tcp_nodelay(true)
        .http2_keep_alive_interval(KEEPALIVE_INTERVAL)
        .keep_alive_timeout(KEEPALIVE_TIMEOUT)
        .keep_alive_while_idle(true);
    Ok(endpoint.connect_lazy())
}

/// A service's machine credential, as `CreateClientCredential` returned it.
#[derive(Clone)]
pub struct MachineCredential {
    /// The credential's client id.
    pub client_id: String,
    /// The credential's secret.
    pub client_secret: String,
}

impl fmt::Debug for MachineCredential {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("MachineCredential")
            .field("client_id", &self.client_id)
            .finish_non_exhaustive()
    }
}

struct CachedToken {
    authorization: HeaderValue,
    renew_at: Instant,
}

struct TokenState {
    identity: IdentityServiceClient<Channel>,
    credential: MachineCredential,
    cached: std::sync::RwLock<Option<CachedToken>>,
    renewing: tokio::sync::Mutex<()>,
}

/// The service's own access token: obtained with its machine credential through identity's
/// `IssueClientToken`, cached, and renewed shortly before it expires, one request at a time.
#[derive(Clone)]
pub struct ServiceTokens {
    state: Arc<TokenState>,
}

impl fmt::Debug for ServiceTokens {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ServiceTokens")
            .field("credential", &self.state.credential)
            .finish_non_exhaustive()
    }
}

impl ServiceTokens {
    /// Tokens for `credential`, issued by identity over `identity`.
    pub fn new(identity: Channel, credential: MachineCredential) -> Self {
        let state = TokenState {
            identity: IdentityServiceClient::new(identity),
            credential,
            cached: std::sync::RwLock::new(None),
            renewing: tokio::sync::Mutex::new(()),
        };
        Self {
            state: Arc::new(state),
        }
    }

    /// The `authorization` metadata value (`Bearer <token>`) to send now.
    pub async fn authorization(&self) -> Result<HeaderValue, ClientError> {
        if let Some(value) = self.fresh() {
            return Ok(value);
        }

        // One renewal at a time: whoever waited here finds the token the first one fetched.
        let _renewing = self.state.renewing.lock().await;
        if let Some(value) = self.fresh() {
            return Ok(value);
        }
        let token = self.issue().await?;
        let value = token.authorization.clone();
        *self.write_cache() = Some(token);
        Ok(value)
    }

    fn fresh(&self) -> Option<HeaderValue> {
        let cached = match self.state.cached.read() {
            Ok(cached) => cached,
            Err(poisoned) => poisoned.into_inner(),
        };
        cached
            .as_ref()
            .filter(|token| Instant::now() < token.renew_at)
            .map(|token| token.authorization.clone())
    }

    fn write_cache(&self) -> std::sync::RwLockWriteGuard<'_, Option<CachedToken>> {
        match self.state.cached.write() {
            Ok(cached) => cached,
            Err(poisoned) => poisoned.into_inner(),
        }
    }

    async fn issue(&self) -> Result<CachedToken, ClientError> {
        let request = IssueClientTokenRequest {
            client_id: self.state.credential.client_id.clone(),
            client_secret: self.state.credential.client_secret.clone(),
        };
        let issued_at = Instant::now();
        let response = self
            .state
            .identity
            .clone()
            .issue_client_token(request)
            .await
            .map_err(ClientError::TokenRefused)?
            .into_inner();

        let mut authorization = HeaderValue::from_str(&format!("Bearer {}", response.access_token))
            .map_err(|_| ClientError::MalformedToken)?;
        authorization.set_sensitive(true);
        let lifetime = Duration::from_secs(response.expires_in.max(0).unsigned_abs());
        let margin = TOKEN_RENEWAL_MARGIN.min(lifetime / 5);
        tracing::debug!(client_id = %self.state.credential.client_id, "obtained service token");
        Ok(CachedToken {
            authorization,
            renew_at: issued_at + lifetime - margin,
        })
    }
}

/// A channel that sends the service's token and the current trace context on every call.
/// Give it to a generated client: `LearnerServiceClient::new(service_channel)`.
#[derive(Debug, Clone)]
pub struct ServiceChannel {
    channel: Channel,
    tokens: ServiceTokens,
}

impl ServiceChannel {
    /// Calls over `channel` carrying tokens from `tokens`.
    pub fn new(channel: Channel, tokens: ServiceTokens) -> Self {
        Self { channel, tokens }
    }
}

impl Service<http::Request<Body>> for ServiceChannel {
    type Response = http::Response<Body>;
    type Error = tonic::codegen::StdError;
    type Future = BoxFuture<'static, Result<Self::Response, Self::Error>>;

    fn poll_ready(&mut self, _cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        // The channel is made ready in `call`, after the token is at hand.
        Poll::Ready(Ok(()))
    }

    fn call(&mut self, mut request: http::Request<Body>) -> Self::Future {
        inject_current_trace_context(request.headers_mut());
        let channel = self.channel.clone();
        let tokens = self.tokens.clone();
        Box::pin(async move {
            let authorization = tokens
                .authorization()
                .await
                .map_err(|error| -> Self::Error {
                    let request_id = request
                        .headers()
                        .get(REQUEST_ID_HEADER)
                        .and_then(|value| value.to_str().ok())
                        .unwrap_or("");
                    // Boxed as itself, so that the client finds the status and keeps its code.
                    Box::new(error.to_failure().into_status("lrs", request_id))
                })?;
            request
                .headers_mut()
                .insert(http::header::AUTHORIZATION, authorization);
            let response = channel.oneshot(request).await?;
            Ok(response)
        })
    }
}

/// A request carrying the request id being handled and, when the work is done for an
/// organisation (and a user), who that is.
pub fn outbound<T>(
    message: T,
    request_id: &str,
    acting_for: Option<&ActingFor>,
) -> tonic::Request<T> {
    let mut request = tonic::Request::new(message);
    let metadata = request.metadata_mut();
    if !request_id.is_empty()
        && let Ok(value) = MetadataValue::try_from(request_id)
    {
        metadata.insert(REQUEST_ID_HEADER, value);
    }
    if let Some(acting) = acting_for {
        if let Ok(value) = MetadataValue::try_from(acting.organisation_id.as_str()) {
            metadata.insert(ACTING_ORGANISATION_HEADER, value);
        }
        let user = acting.user_id.as_deref().map(MetadataValue::try_from);
        if let Some(Ok(value)) = user {
            metadata.insert(ACTING_USER_HEADER, value);
        }
    }
    request
}

#[cfg(test)]
mod tests {
    use tonic::Code;

    use super::*;
    use crate::host::ServiceHost;
    use crate::testing::{
        EchoClient, EchoService, RunningHost, TEST_CLIENT_ID, TEST_CLIENT_SECRET, TestIdentity,
    };

    fn credential(secret: &str) -> MachineCredential {
        MachineCredential {
            client_id: TEST_CLIENT_ID.to_owned(),
            client_secret: secret.to_owned(),
        }
    }

    async fn identity_host(identity: &TestIdentity) -> RunningHost {
        RunningHost::start(ServiceHost::new("identity").add_service(identity.clone())).await
    }

    #[test]
    fn only_http_urls_make_channels() {
        assert!(matches!(
            channel("127.0.0.1:50052"),
            Err(ClientError::BadUrl(_))
        ));
    }

    #[tokio::test]
    async fn a_token_is_fetched_once_and_shared() {
        let identity = TestIdentity::new(900);
        let host = identity_host(&identity).await;
        let tokens = ServiceTokens::new(host.channel(), credential(TEST_CLIENT_SECRET));

        let asked = (0..8).map(|_| tokens.authorization());
        let answers = futures::future::join_all(asked).await;

        let first = answers[0].as_ref().expect("a token").clone();
        assert!(first.to_str().expect("ascii").starts_with("Bearer "));
        assert!(
            answers
                .iter()
                .all(|answer| answer.as_ref().ok() == Some(&first))
        );
        assert_eq!(identity.tokens_issued(), 1);
    }

    #[tokio::test]
    async fn a_token_about_to_expire_is_renewed() {
        let identity = TestIdentity::new(0);
        let host = identity_host(&identity).await;
        let tokens = ServiceTokens::new(host.channel(), credential(TEST_CLIENT_SECRET));

        tokens.authorization().await.expect("a token");
        tokens.authorization().await.expect("a token");
        assert_eq!(identity.tokens_issued(), 2);
    }

    #[tokio::test]
    async fn the_service_channel_carries_token_request_id_and_acting_for() {
        let identity = TestIdentity::new(900);
        let identity_host = identity_host(&identity).await;
        let backend =
            RunningHost::start(ServiceHost::new("echo").add_service(EchoService::new())).await;
        let tokens = ServiceTokens::new(identity_host.channel(), credential(TEST_CLIENT_SECRET));
        let mut echo = EchoClient::new(ServiceChannel::new(backend.channel(), tokens));
        let acting = ActingFor {
            organisation_id: "0b0c6a0e-2f44-4bb6-9a55-7bd1c1c0c002".to_owned(),
            user_id: Some("0b0c6a0e-2f44-4bb6-9a55-7bd1c1c0c003".to_owned()),
        };

        let mut seen = Vec::new();
        for header in [
            "authorization",
            REQUEST_ID_HEADER,
            ACTING_ORGANISATION_HEADER,
            ACTING_USER_HEADER,
        ] {
            let request = outbound(header.to_owned(), "req-7", Some(&acting));
            let answer = echo.unary("Header", request).await.expect("answers");
            seen.push(answer.into_inner());
        }

        assert!(seen[0].starts_with("Bearer "));
        assert_eq!(seen[1], "req-7");
        assert_eq!(seen[2], acting.organisation_id);
        assert_eq!(Some(&seen[3]), acting.user_id.as_ref());
    }

    #[tokio::test]
    async fn a_refused_credential_is_unavailable() {
        let identity = TestIdentity::new(900);
        let identity_host = identity_host(&identity).await;
        let backend =
            RunningHost::start(ServiceHost::new("echo").add_service(EchoService::new())).await;
        let tokens = ServiceTokens::new(identity_host.channel(), credential("wrong"));
        let mut echo = EchoClient::new(ServiceChannel::new(backend.channel(), tokens));

        let status = echo.echo("hello").await.expect_err("no token");
        assert_eq!(status.code(), Code::Unavailable);
        let reason = crate::error::status_reason(&status);
        assert_eq!(reason.as_deref(), Some("SERVICE_TOKEN_UNAVAILABLE"));
    }

    #[tokio::test]
    async fn the_trace_context_follows_the_call() {
        use opentelemetry::trace::{TraceContextExt, TracerProvider as _};
        use tracing::Instrument;
        use tracing_opentelemetry::OpenTelemetrySpanExt;
        use tracing_subscriber::layer::SubscriberExt;

        opentelemetry::global::set_text_map_propagator(
            opentelemetry_sdk::propagation::TraceContextPropagator::new(),
        );
        let provider = opentelemetry_sdk::trace::SdkTracerProvider::builder().build();
        let subscriber = tracing_subscriber::registry()
            .with(tracing_opentelemetry::layer().with_tracer(provider.tracer("test")));
        let _default = tracing::subscriber::set_default(subscriber);

        let backend =
            RunningHost::start(ServiceHost::new("echo").add_service(EchoService::new())).await;
        let mut echo = EchoClient::new(backend.channel());
        let incoming = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01";
        let mut request = tonic::Request::new(String::new());
        request
            .metadata_mut()
            .insert("traceparent", incoming.parse().expect("ascii"));
        let inside = echo
            .unary("Trace", request)
            .await
            .expect("answers")
            .into_inner();
        assert!(
            inside.contains("4bf92f3577b34da6a3ce929d0e0e4736"),
            "parent kept: {inside}"
        );
        assert!(
            !inside.contains("00f067aa0ba902b7"),
            "a span of its own: {inside}"
        );

        let identity = TestIdentity::new(900);
        let identity_host = identity_host(&identity).await;
        let tokens = ServiceTokens::new(identity_host.channel(), credential(TEST_CLIENT_SECRET));
        let mut echo = EchoClient::new(ServiceChannel::new(backend.channel(), tokens));
        let span = tracing::info_span!("handler");
        let trace_id = span.context().span().span_context().trace_id();
        let sent = async {
            let request = tonic::Request::new("traceparent".to_owned());
            echo.unary("Header", request).await
        }
        .instrument(span)
        .await
        .expect("answers")
        .into_inner();
        assert!(
            sent.contains(&trace_id.to_string()),
            "trace carried: {sent}"
        );
    }
}
