//! Test support (feature `testing`): a host started on a free port, a small echo service to
//! route calls to, and a stand-in for identity that publishes a test signing key and issues
//! service tokens. None of it is part of the product; other crates use it in their tests.

use std::convert::Infallible;
use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::task::{Context, Poll};

use ed25519_dalek::pkcs8::spki::der::pem::LineEnding;
use ed25519_dalek::pkcs8::{EncodePrivateKey, EncodePublicKey};
use futures::future::BoxFuture;
use futures::{Stream, StreamExt};
use http::uri::PathAndQuery;
use jsonwebtoken::{Algorithm, EncodingKey, Header};
use lrs_proto::identity::v1::{
    GetSigningKeysRequest, GetSigningKeysResponse, IssueClientTokenRequest,
    IssueClientTokenResponse, SigningKey,
};
use tokio::net::TcpListener;
use tokio::sync::{Notify, oneshot};
use tokio::task::JoinHandle;
use tonic::body::Body;
use tonic::codegen::StdError;
use tonic::server::{Grpc, NamedService};
use tonic::transport::Channel;
use tonic::{Request, Response, Status, Streaming};
use tonic_prost::ProstCodec;
use tower::service_fn;

use crate::auth::{Claims, ISSUER, OrganisationKind, PrincipalKind, Role};
use crate::host::{HostError, MAX_MESSAGE_SIZE, Readiness, ServiceHost};

/// A host serving on a free port of 127.0.0.1.
#[derive(Debug)]
pub struct RunningHost {
    /// Where it listens.
    pub address: SocketAddr,
    /// Its health switch.
    pub readiness: Readiness,
    stop: Option<oneshot::Sender<()>>,
    task: JoinHandle<Result<(), HostError>>,
}

impl RunningHost {
    /// Binds a free port and serves `host` there. Calls may be made at once: the listener is
    /// bound before this returns.
    pub async fn start(host: ServiceHost) -> Self {
        let listener = TcpListener::bind("127.0.0.1:0").await.expect("a free port");
        let address = listener.local_addr().expect("a bound address");
        let readiness = host.readiness();
        let (stop, stopped) = oneshot::channel::<()>();
        let shutdown = async move {
            let _ = stopped.await;
        };
        let task = tokio::spawn(host.serve(listener, shutdown));
        Self {
            address,
            readiness,
            stop: Some(stop),
            task,
        }
    }

    /// `http://127.0.0.1:<port>`.
    pub fn url(&self) -> String {
        format!("http://{}", self.address)
    }

    /// A lazily connecting channel to the host.
    pub fn channel(&self) -> Channel {
        crate::client::channel(&self.url()).expect("a valid URL")
    }

    /// Begins shutdown without waiting for it.
    pub fn begin_shutdown(&mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
    }

    /// Shuts down and waits until the host has returned.
    pub async fn stop(mut self) -> Result<(), HostError> {
        self.begin_shutdown();
        self.task.await.expect("the host task did not panic")
    }
}

/// The full name of the echo service.
pub const ECHO_SERVICE: &str = "lrs.echo.v1.EchoService";

#[derive(Debug, Default)]
struct EchoState {
    calls: AtomicUsize,
    held: Notify,
    release: Notify,
}

/// A test service over `google.protobuf.StringValue` (a Rust `String`) with one method of each kind:
/// `Echo` (unary), `Header` (answers the value of the request header it names), `Trace`
/// (answers the `traceparent` of the handler's span, empty when traces are off), `Hold`
/// (answers only once released), `Expand` (server streaming: `"3"` gives `0`, `1`, `2`),
/// `Collect` (client streaming: joins the values with commas) and `Chat` (bidirectional
/// echo). It decodes and encodes at most [`MAX_MESSAGE_SIZE`].
#[derive(Debug, Clone, Default)]
pub struct EchoService {
    state: Arc<EchoState>,
}

impl EchoService {
    /// A new echo service.
    pub fn new() -> Self {
        Self::default()
    }

    /// How many calls reached it.
    pub fn calls(&self) -> usize {
        self.state.calls.load(Ordering::SeqCst)
    }

    /// Waits until a `Hold` call has arrived.
    pub async fn held(&self) {
        self.state.held.notified().await;
    }

    /// Lets one `Hold` call answer.
    pub fn release(&self) {
        self.state.release.notify_one();
    }
}

impl NamedService for EchoService {
    const NAME: &'static str = ECHO_SERVICE;
}

fn grpc() -> Grpc<ProstCodec<String, String>> {
    Grpc::new(ProstCodec::default())
        .max_decoding_message_size(MAX_MESSAGE_SIZE)
        .max_encoding_message_size(MAX_MESSAGE_SIZE)
}

fn text(value: impl Into<String>) -> String {
    value.into()
}

type Replies = std::pin::Pin<Box<dyn Stream<Item = Result<String, Status>> + Send>>;

impl tower::Service<http::Request<Body>> for EchoService {
    type Response = http::Response<Body>;
    type Error = Infallible;
    type Future = BoxFuture<'static, Result<Self::Response, Infallible>>;

    fn poll_ready(&mut self, _cx: &mut Context<'_>) -> Poll<Result<(), Infallible>> {
        Poll::Ready(Ok(()))
    }

    fn call(&mut self, request: http::Request<Body>) -> Self::Future {
        self.state.calls.fetch_add(1, Ordering::SeqCst);
        let state = self.state.clone();
        let method = request
            .uri()
            .path()
            .rsplit('/')
            .next()
            .unwrap_or("")
            .to_owned();
        Box::pin(async move {
            let response = match method.as_str() {
                "Echo" => {
                    let echo = service_fn(|call: Request<String>| async move {
                        Ok::<_, Status>(Response::new(call.into_inner()))
                    });
                    grpc().unary(echo, request).await
                }
                "Header" => {
                    let header = service_fn(|call: Request<String>| async move {
                        let name = call.get_ref().clone();
                        let value = call
                            .metadata()
                            .get(name.as_str())
                            .and_then(|value| value.to_str().ok())
                            .unwrap_or("")
                            .to_owned();
                        Ok::<_, Status>(Response::new(text(value)))
                    });
                    grpc().unary(header, request).await
                }
                "Trace" => {
                    let trace = service_fn(|_call: Request<String>| async move {
                        let mut headers = http::HeaderMap::new();
                        crate::layer::inject_current_trace_context(&mut headers);
                        let traceparent = headers
                            .get("traceparent")
                            .and_then(|value| value.to_str().ok())
                            .unwrap_or("")
                            .to_owned();
                        Ok::<_, Status>(Response::new(text(traceparent)))
                    });
                    grpc().unary(trace, request).await
                }
                "Hold" => {
                    let hold = service_fn(move |_call: Request<String>| {
                        let state = state.clone();
                        async move {
                            state.held.notify_one();
                            state.release.notified().await;
                            Ok::<_, Status>(Response::new(text("released")))
                        }
                    });
                    grpc().unary(hold, request).await
                }
                "Expand" => {
                    let expand = service_fn(|call: Request<String>| async move {
                        let count: usize = call.get_ref().parse().unwrap_or(0);
                        let replies =
                            futures::stream::iter(0..count).map(|i| Ok(text(i.to_string())));
                        Ok::<_, Status>(Response::new(Box::pin(replies) as Replies))
                    });
                    grpc().server_streaming(expand, request).await
                }
                "Collect" => {
                    let collect = service_fn(|call: Request<Streaming<String>>| async move {
                        let mut stream = call.into_inner();
                        let mut values = Vec::new();
                        while let Some(value) = stream.message().await? {
                            values.push(value);
                        }
                        Ok::<_, Status>(Response::new(text(values.join(","))))
                    });
                    grpc().client_streaming(collect, request).await
                }
                "Chat" => {
                    let chat = service_fn(|call: Request<Streaming<String>>| async move {
                        let replies = call.into_inner();
                        Ok::<_, Status>(Response::new(Box::pin(replies) as Replies))
                    });
                    grpc().streaming(chat, request).await
                }
                _ => Status::unimplemented("no such echo method").into_http(),
            };
            Ok(response)
        })
    }
}

/// A client of [`EchoService`] over any channel.
#[derive(Debug, Clone)]
pub struct EchoClient<T> {
    grpc: tonic::client::Grpc<T>,
}

impl<T> EchoClient<T>
where
    T: tonic::client::GrpcService<Body>,
    T::Error: Into<StdError>,
    T::ResponseBody: http_body::Body<Data = bytes::Bytes> + Send + 'static,
    <T::ResponseBody as http_body::Body>::Error: Into<StdError> + Send,
{
    /// A client calling over `channel`.
    pub fn new(channel: T) -> Self {
        Self {
            grpc: tonic::client::Grpc::new(channel)
                .max_decoding_message_size(usize::MAX)
                .max_encoding_message_size(usize::MAX),
        }
    }

    async fn ready(&mut self) -> Result<(), Status> {
        self.grpc
            .ready()
            .await
            .map_err(|error| Status::unavailable(error.into().to_string()))
    }

    fn path(method: &str) -> PathAndQuery {
        PathAndQuery::try_from(format!("/{ECHO_SERVICE}/{method}")).expect("a valid path")
    }

    /// Calls a unary method (`Echo`, `Header`, `Hold`).
    pub async fn unary(
        &mut self,
        method: &str,
        request: Request<String>,
    ) -> Result<Response<String>, Status> {
        self.ready().await?;
        let codec = ProstCodec::<String, String>::default();
        self.grpc.unary(request, Self::path(method), codec).await
    }

    /// `Echo`.
    pub async fn echo(&mut self, value: &str) -> Result<Response<String>, Status> {
        self.unary("Echo", Request::new(text(value))).await
    }

    /// `Expand`: the values it streams back.
    pub async fn expand(&mut self, request: Request<String>) -> Result<Vec<String>, Status> {
        self.ready().await?;
        let codec = ProstCodec::<String, String>::default();
        let response = self
            .grpc
            .server_streaming(request, Self::path("Expand"), codec)
            .await?;
        let mut stream = response.into_inner();
        let mut values = Vec::new();
        while let Some(value) = stream.message().await? {
            values.push(value);
        }
        Ok(values)
    }

    /// `Collect`: sends `values` as a stream and returns the joined answer.
    pub async fn collect(&mut self, values: Vec<String>) -> Result<String, Status> {
        self.ready().await?;
        let codec = ProstCodec::<String, String>::default();
        let requests = Request::new(futures::stream::iter(values.into_iter().map(text)));
        let response = self
            .grpc
            .client_streaming(requests, Self::path("Collect"), codec)
            .await?;
        Ok(response.into_inner())
    }

    /// `Chat`: sends `values` as a stream and returns what came back.
    pub async fn chat(&mut self, values: Vec<String>) -> Result<Vec<String>, Status> {
        self.ready().await?;
        let codec = ProstCodec::<String, String>::default();
        let requests = Request::new(futures::stream::iter(values.into_iter().map(text)));
        let response = self
            .grpc
            .streaming(requests, Self::path("Chat"), codec)
            .await?;
        let mut stream = response.into_inner();
        let mut replies = Vec::new();
        while let Some(value) = stream.message().await? {
            replies.push(value);
        }
        Ok(replies)
    }
}

/// The client id and secret that [`TestIdentity`] accepts in `IssueClientToken`.
pub const TEST_CLIENT_ID: &str = "test-service";
/// See [`TEST_CLIENT_ID`].
pub const TEST_CLIENT_SECRET: &str = "test-service-secret";

struct IdentityState {
    key_id: String,
    signing: EncodingKey,
    public_pem: String,
    token_lifetime_secs: i64,
    key_fetches: AtomicUsize,
    tokens_issued: AtomicUsize,
}

/// A stand-in for the identity service in tests of other parts: answers `GetSigningKeys`
/// with a test Ed25519 key, `IssueClientToken` for [`TEST_CLIENT_ID`], and nothing else
/// (`UNIMPLEMENTED`). It also signs tokens for tests with [`TestIdentity::token`].
#[derive(Clone)]
pub struct TestIdentity {
    state: Arc<IdentityState>,
}

impl std::fmt::Debug for TestIdentity {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TestIdentity")
            .field("key_id", &self.state.key_id)
            .finish_non_exhaustive()
    }
}

impl TestIdentity {
    /// A stand-in with a fresh key whose service tokens live `token_lifetime_secs`.
    pub fn new(token_lifetime_secs: i64) -> Self {
        let signing = ed25519_dalek::SigningKey::generate(&mut rand_core::OsRng);
        let private = signing
            .to_pkcs8_pem(LineEnding::LF)
            .expect("an encodable key");
        let public_pem = signing
            .verifying_key()
            .to_public_key_pem(LineEnding::LF)
            .expect("an encodable key");
        let signing = EncodingKey::from_ed_pem(private.as_bytes()).expect("a valid PEM");
        Self {
            state: Arc::new(IdentityState {
                key_id: "test-key".to_owned(),
                signing,
                public_pem,
                token_lifetime_secs,
                key_fetches: AtomicUsize::new(0),
                tokens_issued: AtomicUsize::new(0),
            }),
        }
    }

    /// Signs `claims` with the published key.
    pub fn token(&self, claims: &Claims) -> String {
        let mut header = Header::new(Algorithm::EdDSA);
        header.kid = Some(self.state.key_id.clone());
        jsonwebtoken::encode(&header, claims, &self.state.signing).expect("signable claims")
    }

    /// Claims of an online user of organisation `organisation_id`, valid for ten minutes.
    pub fn user_claims(organisation_id: &str) -> Claims {
        let now = chrono::Utc::now().timestamp();
        Claims {
            iss: ISSUER.to_owned(),
            sub: uuid::Uuid::new_v4().to_string(),
            exp: now + 600,
            iat: now,
            jti: uuid::Uuid::new_v4().to_string(),
            kind: PrincipalKind::User,
            org: Some(organisation_id.to_owned()),
            org_kind: Some(OrganisationKind::LearnerRegistrationBody),
            ukprn: Some("10000001".to_owned()),
            roles: vec![Role::OnlineUser],
            uln: None,
            pwd_change: false,
        }
    }

    /// How many times `GetSigningKeys` was called.
    pub fn key_fetches(&self) -> usize {
        self.state.key_fetches.load(Ordering::SeqCst)
    }

    /// How many service tokens `IssueClientToken` issued.
    pub fn tokens_issued(&self) -> usize {
        self.state.tokens_issued.load(Ordering::SeqCst)
    }

    fn service_token(&self) -> String {
        let now = chrono::Utc::now().timestamp();
        let claims = Claims {
            iss: ISSUER.to_owned(),
            sub: TEST_CLIENT_ID.to_owned(),
            exp: now + self.state.token_lifetime_secs,
            iat: now,
            jti: uuid::Uuid::new_v4().to_string(),
            kind: PrincipalKind::Service,
            org: None,
            org_kind: None,
            ukprn: None,
            roles: vec![Role::Service],
            uln: None,
            pwd_change: false,
        };
        self.token(&claims)
    }
}

impl NamedService for TestIdentity {
    const NAME: &'static str = "lrs.identity.v1.IdentityService";
}

impl tower::Service<http::Request<Body>> for TestIdentity {
    type Response = http::Response<Body>;
    type Error = Infallible;
    type Future = BoxFuture<'static, Result<Self::Response, Infallible>>;

    fn poll_ready(&mut self, _cx: &mut Context<'_>) -> Poll<Result<(), Infallible>> {
        Poll::Ready(Ok(()))
    }

    fn call(&mut self, request: http::Request<Body>) -> Self::Future {
        let identity = self.clone();
        let method = request
            .uri()
            .path()
            .rsplit('/')
            .next()
            .unwrap_or("")
            .to_owned();
        Box::pin(async move {
            let response = match method.as_str() {
                "GetSigningKeys" => {
                    let keys = service_fn(move |_call: Request<GetSigningKeysRequest>| {
                        let identity = identity.clone();
                        async move {
                            identity.state.key_fetches.fetch_add(1, Ordering::SeqCst);
                            let key = SigningKey {
                                key_id: identity.state.key_id.clone(),
                                algorithm: "EdDSA".to_owned(),
                                public_key_pem: identity.state.public_pem.clone(),
                                create_time: None,
                                expire_time: None,
                            };
                            let keys = GetSigningKeysResponse { keys: vec![key] };
                            Ok::<_, Status>(Response::new(keys))
                        }
                    });
                    let codec =
                        ProstCodec::<GetSigningKeysResponse, GetSigningKeysRequest>::default();
                    Grpc::new(codec).unary(keys, request).await
                }
                "IssueClientToken" => {
                    let issue = service_fn(move |call: Request<IssueClientTokenRequest>| {
                        let identity = identity.clone();
                        async move {
                            let IssueClientTokenRequest {
                                client_id,
                                client_secret,
                            } = call.into_inner();
                            if client_id != TEST_CLIENT_ID || client_secret != TEST_CLIENT_SECRET {
                                return Err(Status::unauthenticated("unknown credential"));
                            }
                            identity.state.tokens_issued.fetch_add(1, Ordering::SeqCst);
                            Ok(Response::new(IssueClientTokenResponse {
                                access_token: identity.service_token(),
                                expires_in: identity.state.token_lifetime_secs,
                                token_type: "Bearer".to_owned(),
                            }))
                        }
                    });
                    let codec =
                        ProstCodec::<IssueClientTokenResponse, IssueClientTokenRequest>::default();
                    Grpc::new(codec).unary(issue, request).await
                }
                _ => Status::unimplemented("the test identity answers only keys and tokens")
                    .into_http(),
            };
            Ok(response)
        })
    }
}
