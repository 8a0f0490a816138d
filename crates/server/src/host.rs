//! Bringing a service up and down, in order.
//!
//! A [`ServiceHost`] serves a service's gRPC services with, beside them, gRPC health (each
//! service registered NOT_SERVING when added, and `""` for the server as a whole), reflection
//! v1 and v1alpha over [`lrs_proto::FILE_DESCRIPTOR_SET`], and the call layer
//! ([`crate::layer`]) in front of everything. The caller turns health to SERVING through
//! [`Readiness`] once its database is ready.
//!
//! [`ServiceHost::build`] puts the stack together as a [`BuiltHost`], which serves it on a
//! listener and also hands it out as [`InProcess`], for a caller in the same process (the
//! gateway under `lrs up`).
//!
//! When the shutdown future resolves the host, in order: reports NOT_SERVING for everything
//! (and ends open health watches), stops accepting connections, lets the calls in flight
//! finish for up to the grace period, and returns. It logs each phase.

use std::convert::Infallible;
use std::future::Future;
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::Duration;

use futures::future::BoxFuture;
use tokio::net::TcpListener;
use tokio::sync::{Mutex, Notify};
use tonic::body::Body;
use tonic::server::NamedService;
use tonic::service::Routes;
use tonic::transport::server::TcpIncoming;
use tonic_health::ServingStatus;
use tonic_health::pb::health_server::HealthServer;
use tonic_health::server::{HealthReporter, HealthService};
use tower::util::BoxCloneSyncService;
use tower::{Layer, Service, ServiceExt};
use tower_http::cors::CorsLayer;

use crate::layer::{CallLayer, InFlight};

/// The largest message a service decodes or encodes: 4 MiB. A larger one is refused with
/// `RESOURCE_EXHAUSTED`; bulk data travels as streams of smaller messages.
pub const MAX_MESSAGE_SIZE: usize = 4 * 1024 * 1024;

/// Applies [`MAX_MESSAGE_SIZE`] to a generated server in both directions:
/// `limit_message_size!(IdentityServiceServer::new(service))`.
#[macro_export]
macro_rules! limit_message_size {
    ($server:expr) => {
        $server
            .max_decoding_message_size($crate::host::MAX_MESSAGE_SIZE)
            .max_encoding_message_size($crate::host::MAX_MESSAGE_SIZE)
    };
}

/// The name under which gRPC health reports the server as a whole.
const OVERALL: &str = "";

/// Why a host could not serve.
#[derive(Debug, thiserror::Error)]
pub enum HostError {
    /// The descriptor set given to reflection does not decode.
    #[error("reflection could not be built: {0}")]
    Reflection(#[from] tonic_reflection::server::Error),
    /// The listener's address could not be read.
    #[error("the listener is not usable: {0}")]
    Listener(#[from] std::io::Error),
    /// The server failed while serving.
    #[error("the server failed: {0}")]
    Serve(#[from] tonic::transport::Error),
}

#[derive(Debug)]
struct HealthState {
    names: Vec<String>,
    stopping: bool,
}

/// Tells gRPC health whether a host is ready. Cheap to clone; after shutdown has begun every
/// change is ignored, so nothing reports SERVING again while the host drains.
#[derive(Debug, Clone)]
pub struct Readiness {
    service: Arc<str>,
    reporter: HealthReporter,
    state: Arc<Mutex<HealthState>>,
}

impl Readiness {
    /// Reports SERVING for every registered service and for the server as a whole.
    pub async fn set_serving(&self) {
        if self.set_all(ServingStatus::Serving).await {
            tracing::info!(service = %self.service, "reported serving");
        }
    }

    /// Reports NOT_SERVING for everything, while the host keeps answering (a lost database).
    pub async fn set_not_serving(&self) {
        if self.set_all(ServingStatus::NotServing).await {
            tracing::warn!(service = %self.service, "reported not serving");
        }
    }

    /// Sets the status of one name (`""` is the server as a whole), registering it if new.
    pub async fn set_service_serving(&self, name: &str, serving: bool) {
        let mut state = self.state.lock().await;
        if state.stopping {
            return;
        }
        if name != OVERALL && !state.names.iter().any(|known| known == name) {
            state.names.push(name.to_owned());
        }
        self.reporter
            .set_service_status(name, status(serving))
            .await;
    }

    /// True once shutdown has begun.
    pub async fn is_stopping(&self) -> bool {
        self.state.lock().await.stopping
    }

    async fn set_all(&self, serving: ServingStatus) -> bool {
        let state = self.state.lock().await;
        if state.stopping {
            return false;
        }
        self.reporter.set_service_status(OVERALL, serving).await;
        for name in &state.names {
            self.reporter.set_service_status(name, serving).await;
        }
        true
    }

    /// Reports NOT_SERVING for good, then removes every status so that open health watches
    /// end instead of holding the drain open until the grace period runs out.
    async fn stop(&self) {
        let mut state = self.state.lock().await;
        state.stopping = true;
        let mut reporter = self.reporter.clone();
        reporter
            .set_service_status(OVERALL, ServingStatus::NotServing)
            .await;
        for name in &state.names {
            reporter
                .set_service_status(name, ServingStatus::NotServing)
                .await;
        }
        tracing::info!(service = %self.service, "reported not serving");

        reporter.clear_service_status(OVERALL).await;
        for name in &state.names {
            reporter.clear_service_status(name).await;
        }
    }
}

fn status(serving: bool) -> ServingStatus {
    if serving {
        ServingStatus::Serving
    } else {
        ServingStatus::NotServing
    }
}

type HttpService = BoxCloneSyncService<http::Request<Body>, http::Response<Body>, Infallible>;

/// Builds and runs the gRPC server of one service (or of the gateway).
#[derive(Debug)]
pub struct ServiceHost {
    service: Arc<str>,
    routes: Routes,
    local_prefixes: Vec<String>,
    advertised: Vec<String>,
    fallback: Option<HttpService>,
    grpc_web: Option<CorsLayer>,
    grace: Duration,
    readiness: Readiness,
    health: HealthServer<HealthService>,
}

impl ServiceHost {
    /// A host for the service called `service` (`identity`), with health reporting
    /// NOT_SERVING and a 20 second grace period.
    pub fn new(service: impl Into<String>) -> Self {
        let reporter = HealthReporter::new();
        let health = HealthServer::new(HealthService::from_health_reporter(reporter.clone()));
        let service: Arc<str> = service.into().into();
        let readiness = Readiness {
            service: service.clone(),
            reporter,
            state: Arc::new(Mutex::new(HealthState {
                names: Vec::new(),
                stopping: false,
            })),
        };
        // The reporter starts with `""` SERVING; nothing can call before `serve`, so this
        // first update completes at once.
        futures::executor::block_on(
            readiness
                .reporter
                .set_service_status(OVERALL, ServingStatus::NotServing),
        );
        Self {
            service,
            routes: Routes::default(),
            local_prefixes: Vec::new(),
            advertised: Vec::new(),
            fallback: None,
            grpc_web: None,
            grace: Duration::from_secs(20),
            readiness,
            health,
        }
    }

    /// How long calls in flight may run after shutdown begins.
    pub fn shutdown_grace(mut self, grace: Duration) -> Self {
        self.grace = grace;
        self
    }

    /// Serves `service` (a generated server, wrapped with [`limit_message_size!`]), lists it
    /// in reflection and registers it with health as NOT_SERVING.
    pub fn add_service<S>(mut self, service: S) -> Self
    where
        S: Service<http::Request<Body>, Response = http::Response<Body>, Error = Infallible>
            + NamedService
            + Clone
            + Send
            + Sync
            + 'static,
        S::Future: Send + 'static,
    {
        self.routes = self.routes.add_service(service);
        self.local_prefixes.push(format!("/{}/", S::NAME));
        self.advertised.push(S::NAME.to_owned());
        self.register_health(S::NAME)
    }

    /// Registers `name` with health as NOT_SERVING, for names the host answers without
    /// serving them itself (the gateway's routes).
    pub fn register_health(self, name: &str) -> Self {
        futures::executor::block_on(self.readiness.set_service_serving(name, false));
        self
    }

    /// Lists `name` in reflection without serving it here (the gateway's routes).
    pub fn advertise(mut self, name: impl Into<String>) -> Self {
        self.advertised.push(name.into());
        self
    }

    /// Answers every call that no added service, health or reflection takes (the gateway's
    /// proxy). Without one, such calls are `UNIMPLEMENTED`.
    pub fn fallback<S>(mut self, service: S) -> Self
    where
        S: Service<http::Request<Body>, Response = http::Response<Body>, Error = Infallible>
            + Clone
            + Send
            + Sync
            + 'static,
        S::Future: Send + 'static,
    {
        self.fallback = Some(BoxCloneSyncService::new(service));
        self
    }

    /// Also accepts gRPC-Web (HTTP/1.1 and HTTP/2), answering browsers under `cors`.
    pub fn grpc_web(mut self, cors: CorsLayer) -> Self {
        self.grpc_web = Some(cors);
        self
    }

    /// The handle that turns health to SERVING.
    pub fn readiness(&self) -> Readiness {
        self.readiness.clone()
    }

    /// Serves on `listener` until `shutdown` resolves, then drains and returns.
    pub async fn serve<F>(self, listener: TcpListener, shutdown: F) -> Result<(), HostError>
    where
        F: Future<Output = ()> + Send + 'static,
    {
        self.build()?.serve(listener, shutdown).await
    }

    /// Puts the host's services, health, reflection and call layer together, so that it can
    /// be called in-process ([`BuiltHost::in_process`]) as well as served.
    pub fn build(self) -> Result<BuiltHost, HostError> {
        let in_flight = InFlight::default();
        Ok(BuiltHost {
            service: self.service.clone(),
            readiness: self.readiness.clone(),
            grace: self.grace,
            accept_http1: self.grpc_web.is_some(),
            in_flight: in_flight.clone(),
            http: self.into_http_service(in_flight)?,
        })
    }

    fn into_http_service(mut self, in_flight: InFlight) -> Result<HttpService, HostError> {
        let health_name = <HealthServer<HealthService> as NamedService>::NAME;
        self.advertised.push(health_name.to_owned());
        self.local_prefixes.push(format!("/{health_name}/"));
        self.local_prefixes.push("/grpc.reflection.".to_owned());
        let routes = self
            .routes
            .add_service(self.health)
            .add_service(reflection(&self.advertised)?.build_v1()?)
            .add_service(reflection(&self.advertised)?.build_v1alpha()?)
            .prepare();

        let dispatch = Dispatch {
            routes,
            local_prefixes: self.local_prefixes.into(),
            fallback: self.fallback,
        };
        let domain = format!("{}.lrs", self.service);
        let called = CallLayer::new(in_flight, domain).layer(dispatch);
        Ok(match self.grpc_web {
            Some(cors) => {
                let web = tonic_web::GrpcWebLayer::new().layer(called);
                BoxCloneSyncService::new(cors.layer(web))
            }
            None => BoxCloneSyncService::new(called),
        })
    }
}

/// A host put together: served on a listener, and callable in-process.
#[derive(Debug)]
pub struct BuiltHost {
    service: Arc<str>,
    readiness: Readiness,
    grace: Duration,
    accept_http1: bool,
    in_flight: InFlight,
    http: HttpService,
}

impl BuiltHost {
    /// The handle that turns health to SERVING.
    pub fn readiness(&self) -> Readiness {
        self.readiness.clone()
    }

    /// A handle that calls this host in the same process, through the same call layer,
    /// routes, health and reflection as a call over TCP, without HTTP/2 framing or a socket
    /// (the gateway's routes under `lrs up`). Such calls count among the host's calls in
    /// flight; the TCP server's drain does not wait for them, the caller's does.
    pub fn in_process(&self) -> InProcess {
        self.http.clone()
    }

    /// Serves on `listener` until `shutdown` resolves, then drains and returns.
    pub async fn serve<F>(self, listener: TcpListener, shutdown: F) -> Result<(), HostError>
    where
        F: Future<Output = ()> + Send + 'static,
    {
        let address = listener.local_addr()?;
        let BuiltHost {
            service,
            readiness,
            grace,
            accept_http1,
            in_flight,
            http,
        } = self;

        let stopping = Arc::new(Notify::new());
        let signal = {
            let stopping = stopping.clone();
            let service = service.clone();
            async move {
                shutdown.await;
                readiness.stop().await;
                tracing::info!(%service, "stopped accepting calls");
                stopping.notify_one();
            }
        };
        let incoming = TcpIncoming::from(listener).with_nodelay(Some(true));
        tracing::info!(%service, %address, "listening");
        let server = tonic::transport::Server::builder()
            .accept_http1(accept_http1)
            .serve_with_incoming_shutdown(http, incoming, signal);

        let grace_over = async {
            stopping.notified().await;
            tokio::time::sleep(grace).await;
        };
        tokio::select! {
            served = server => {
                served?;
                tracing::info!(%service, "drained in-flight calls");
            }
            () = grace_over => {
                let in_flight = in_flight.count();
                tracing::warn!(%service, in_flight, "grace period ended with calls in flight");
            }
        }
        tracing::info!(%service, "stopped");
        Ok(())
    }
}

/// Calls a [`BuiltHost`] in-process: a tower service of HTTP requests, cheap to clone and
/// shareable between threads.
pub type InProcess = HttpService;

fn reflection(
    advertised: &[String],
) -> Result<tonic_reflection::server::Builder<'static>, HostError> {
    let mut builder = tonic_reflection::server::Builder::configure()
        .register_encoded_file_descriptor_set(lrs_proto::FILE_DESCRIPTOR_SET)
        .register_encoded_file_descriptor_set(tonic_health::pb::FILE_DESCRIPTOR_SET)
        .with_service_name("grpc.reflection.v1.ServerReflection")
        .with_service_name("grpc.reflection.v1alpha.ServerReflection");
    for name in advertised {
        builder = builder.with_service_name(name.clone());
    }
    Ok(builder)
}

/// Sends calls for the host's own services to its routes and every other call to the
/// fallback.
#[derive(Clone)]
struct Dispatch {
    routes: Routes,
    local_prefixes: Arc<[String]>,
    fallback: Option<HttpService>,
}

impl Service<http::Request<Body>> for Dispatch {
    type Response = http::Response<Body>;
    type Error = Infallible;
    type Future = BoxFuture<'static, Result<Self::Response, Infallible>>;

    fn poll_ready(&mut self, _cx: &mut Context<'_>) -> Poll<Result<(), Infallible>> {
        // Both sides are made ready in `call`, on the clone that serves the call.
        Poll::Ready(Ok(()))
    }

    fn call(&mut self, request: http::Request<Body>) -> Self::Future {
        let path = request.uri().path();
        let local = self
            .local_prefixes
            .iter()
            .any(|prefix| path.starts_with(prefix));
        match (&self.fallback, local) {
            (Some(fallback), false) => Box::pin(fallback.clone().oneshot(request)),
            _ => Box::pin(self.routes.clone().oneshot(request)),
        }
    }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use tonic::Code;
    use tonic_health::pb::HealthCheckRequest;
    use tonic_health::pb::health_check_response::ServingStatus as Wire;
    use tonic_health::pb::health_client::HealthClient;

    use super::*;
    use crate::testing::{ECHO_SERVICE, EchoClient, EchoService, RunningHost};

    fn echo_host(echo: &EchoService) -> ServiceHost {
        ServiceHost::new("echo").add_service(echo.clone())
    }

    async fn status_of(health: &mut HealthClient<tonic::transport::Channel>, name: &str) -> Wire {
        let request = HealthCheckRequest {
            service: name.to_owned(),
        };
        let response = health.check(request).await.expect("health answers");
        response.into_inner().status()
    }

    #[tokio::test]
    async fn health_turns_serving_when_told_and_not_serving_at_shutdown() {
        let mut host = RunningHost::start(echo_host(&EchoService::new())).await;
        let mut health = HealthClient::new(host.channel());

        assert_eq!(status_of(&mut health, "").await, Wire::NotServing);
        assert_eq!(status_of(&mut health, ECHO_SERVICE).await, Wire::NotServing);

        host.readiness.set_serving().await;
        assert_eq!(status_of(&mut health, "").await, Wire::Serving);
        assert_eq!(status_of(&mut health, ECHO_SERVICE).await, Wire::Serving);

        let request = HealthCheckRequest {
            service: ECHO_SERVICE.to_owned(),
        };
        let mut watch = health
            .watch(request)
            .await
            .expect("watch opens")
            .into_inner();
        let first = watch.message().await.expect("a status").expect("a message");
        assert_eq!(first.status(), Wire::Serving);

        host.begin_shutdown();
        let last = watch.message().await.expect("a status").expect("a message");
        assert_eq!(last.status(), Wire::NotServing);
        assert!(
            watch
                .message()
                .await
                .expect("the watch ends cleanly")
                .is_none()
        );

        host.readiness.set_serving().await;
        host.stop().await.expect("a clean stop");
    }

    #[tokio::test]
    async fn reflection_answers_on_v1_and_v1alpha() {
        use tonic_reflection::pb::{v1, v1alpha};

        let host = RunningHost::start(echo_host(&EchoService::new())).await;

        let request = v1::ServerReflectionRequest {
            host: String::new(),
            message_request: Some(v1::server_reflection_request::MessageRequest::ListServices(
                String::new(),
            )),
        };
        let mut client = v1::server_reflection_client::ServerReflectionClient::new(host.channel());
        let mut replies = client
            .server_reflection_info(futures::stream::iter([request]))
            .await
            .expect("v1 reflection answers")
            .into_inner();
        let reply = replies
            .message()
            .await
            .expect("a reply")
            .expect("a message");
        let Some(v1::server_reflection_response::MessageResponse::ListServicesResponse(list)) =
            reply.message_response
        else {
            panic!("expected a list of services");
        };
        let names: Vec<_> = list.service.into_iter().map(|s| s.name).collect();
        assert!(names.iter().any(|name| name == ECHO_SERVICE));
        assert!(names.iter().any(|name| name == "grpc.health.v1.Health"));

        let request = v1alpha::ServerReflectionRequest {
            host: String::new(),
            message_request: Some(
                v1alpha::server_reflection_request::MessageRequest::FileContainingSymbol(
                    "lrs.identity.v1.IdentityService".to_owned(),
                ),
            ),
        };
        let mut client =
            v1alpha::server_reflection_client::ServerReflectionClient::new(host.channel());
        let mut replies = client
            .server_reflection_info(futures::stream::iter([request]))
            .await
            .expect("v1alpha reflection answers")
            .into_inner();
        let reply = replies
            .message()
            .await
            .expect("a reply")
            .expect("a message");
        let found = matches!(
            reply.message_response,
            Some(v1alpha::server_reflection_response::MessageResponse::FileDescriptorResponse(_))
        );
        assert!(found, "the identity contract is described");
        host.stop().await.expect("a clean stop");
    }

    #[tokio::test]
    async fn request_id_is_echoed_or_generated() {
        let host = RunningHost::start(echo_host(&EchoService::new())).await;
        let mut echo = EchoClient::new(host.channel());

        let mut request = tonic::Request::new(crate::auth::REQUEST_ID_HEADER.to_owned());
        request
            .metadata_mut()
            .insert("x-request-id", "req-42".parse().expect("ascii"));
        let response = echo.unary("Header", request).await.expect("answers");
        assert_eq!(response.get_ref(), "req-42");
        let returned = response.metadata().get("x-request-id").expect("returned");
        assert_eq!(returned, "req-42");

        let request = tonic::Request::new(crate::auth::REQUEST_ID_HEADER.to_owned());
        let response = echo.unary("Header", request).await.expect("answers");
        let seen = response.get_ref().clone();
        assert!(
            uuid::Uuid::parse_str(&seen).is_ok(),
            "a generated UUID, not {seen:?}"
        );
        let returned = response.metadata().get("x-request-id").expect("returned");
        assert_eq!(returned.to_str().expect("ascii"), seen);
        host.stop().await.expect("a clean stop");
    }

    #[tokio::test]
    async fn an_oversize_message_is_resource_exhausted() {
        let host = RunningHost::start(echo_host(&EchoService::new())).await;
        let mut echo = EchoClient::new(host.channel());

        let fits = "x".repeat(MAX_MESSAGE_SIZE - 16);
        assert!(echo.echo(&fits).await.is_ok());

        let oversize = "x".repeat(MAX_MESSAGE_SIZE + 1);
        let status = echo.echo(&oversize).await.expect_err("too large");
        assert_eq!(status.code(), Code::ResourceExhausted);
        let reason = crate::error::status_reason(&status);
        assert_eq!(reason.as_deref(), Some("MESSAGE_TOO_LARGE"));

        let in_a_stream = vec!["small".to_owned(), oversize];
        let status = echo.collect(in_a_stream).await.expect_err("too large");
        assert_eq!(status.code(), Code::ResourceExhausted);
        host.stop().await.expect("a clean stop");
    }

    #[test]
    fn generated_servers_take_the_message_limit() {
        let reflection = tonic_reflection::server::Builder::configure()
            .build_v1()
            .expect("reflection builds");
        let _limited = limit_message_size!(reflection);
    }

    #[tokio::test]
    async fn shutdown_drains_a_call_in_flight() {
        let echo = EchoService::new();
        let mut host = RunningHost::start(echo_host(&echo)).await;
        host.readiness.set_serving().await;
        let mut health = HealthClient::new(host.channel());
        let request = HealthCheckRequest {
            service: String::new(),
        };
        let mut watch = health
            .watch(request)
            .await
            .expect("watch opens")
            .into_inner();
        watch.message().await.expect("a status").expect("a message");

        let mut client = EchoClient::new(host.channel());
        let held = tokio::spawn(async move {
            let request = tonic::Request::new(String::new());
            client.unary("Hold", request).await
        });
        echo.held().await;

        host.begin_shutdown();
        let status = watch.message().await.expect("a status").expect("a message");
        assert_eq!(status.status(), Wire::NotServing);

        echo.release();
        let answer = held
            .await
            .expect("no panic")
            .expect("the held call completes");
        assert_eq!(answer.get_ref(), "released");
        host.stop().await.expect("a clean stop");
    }

    #[tokio::test]
    async fn the_grace_period_bounds_the_drain() {
        let echo = EchoService::new();
        let host = ServiceHost::new("echo")
            .add_service(echo.clone())
            .shutdown_grace(Duration::from_millis(100));
        let host = RunningHost::start(host).await;

        let mut client = EchoClient::new(host.channel());
        let _held = tokio::spawn(async move {
            let request = tonic::Request::new(String::new());
            client.unary("Hold", request).await
        });
        echo.held().await;

        let stopped = tokio::time::timeout(Duration::from_secs(10), host.stop()).await;
        stopped
            .expect("stopped within the grace period")
            .expect("a clean stop");
    }

    #[tokio::test]
    async fn unknown_services_are_unimplemented() {
        let host = RunningHost::start(ServiceHost::new("empty")).await;
        let mut echo = EchoClient::new(host.channel());
        let status = echo.echo("hello").await.expect_err("not served");
        assert_eq!(status.code(), Code::Unimplemented);
        host.stop().await.expect("a clean stop");
    }
}
