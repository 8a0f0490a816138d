//! The gateway in front of real hosts: a stand-in identity that publishes a test key, and an
//! echo service routed under the `echo` area.

use std::time::Duration;

use clap::Parser;
use http::uri::PathAndQuery;
use lrs_gateway::{Gateway, GatewayConfig};
use lrs_proto::identity::v1::GetSigningKeysRequest;
use lrs_proto::identity::v1::identity_service_client::IdentityServiceClient;
use lrs_server::error::status_reason;
use lrs_server::host::ServiceHost;
use lrs_server::testing::{EchoClient, EchoService, RunningHost, TestIdentity};
use tokio::net::TcpListener;
use tokio::sync::oneshot;
use tonic::metadata::{Ascii, MetadataValue};
use tonic::service::Interceptor;
use tonic::service::interceptor::InterceptedService;
use tonic::transport::Channel;
use tonic::{Code, Request, Status};
use tonic_health::pb::HealthCheckRequest;
use tonic_health::pb::health_check_response::ServingStatus;
use tonic_health::pb::health_client::HealthClient;
use tonic_types::StatusExt;

const ORGANISATION: &str = "0b0c6a0e-2f44-4bb6-9a55-7bd1c1c0c001";

#[derive(Debug, Parser)]
struct Command {
    #[command(flatten)]
    gateway: GatewayConfig,
}

struct Suite {
    identity: TestIdentity,
    echo: EchoService,
    gateway: Channel,
    gateway_url: String,
    stop: Option<oneshot::Sender<()>>,
    _backends: Vec<RunningHost>,
}

/// How the gateway reaches the echo service.
#[derive(Clone, Copy)]
enum Routing {
    /// Over HTTP/2 to the echo host's port (`lrs serve gateway`).
    Network,
    /// In the gateway's own process (`lrs up`).
    InProcess,
}

impl Suite {
    async fn start(extra: &[&str]) -> Self {
        Self::start_routed(extra, Routing::Network).await
    }

    async fn start_routed(extra: &[&str], routing: Routing) -> Self {
        let identity = TestIdentity::new(900);
        let identity_host =
            RunningHost::start(ServiceHost::new("identity").add_service(identity.clone())).await;
        identity_host.readiness.set_serving().await;
        let echo = EchoService::new();
        let echo_host = ServiceHost::new("echo").add_service(echo.clone());

        let identity_url = identity_host.url();
        let mut args = vec!["lrs", "--route-identity", identity_url.as_str()];
        args.extend_from_slice(extra);
        let config = Command::try_parse_from(args).expect("flags parse").gateway;
        let gateway = Gateway::new(&config).expect("a valid gateway");
        let mut backends = vec![identity_host];
        let gateway = match routing {
            Routing::Network => {
                let echo_host = RunningHost::start(echo_host).await;
                echo_host.readiness.set_serving().await;
                let gateway = gateway.with_route("echo", echo_host.channel());
                backends.push(echo_host);
                gateway
            }
            Routing::InProcess => {
                let echo_host = echo_host.build().expect("the echo host builds");
                echo_host.readiness().set_serving().await;
                // Identity's port still publishes the keys; its calls go in-process.
                let identity_host = ServiceHost::new("identity")
                    .add_service(identity.clone())
                    .build()
                    .expect("the identity host builds");
                identity_host.readiness().set_serving().await;
                gateway
                    .with_in_process_route("echo", echo_host.in_process())
                    .with_in_process_route("identity", identity_host.in_process())
            }
        };

        let listener = TcpListener::bind("127.0.0.1:0").await.expect("a free port");
        let gateway_url = format!("http://{}", listener.local_addr().expect("bound"));
        let (stop, stopped) = oneshot::channel::<()>();
        let shutdown = async move {
            let _ = stopped.await;
        };
        tokio::spawn(gateway.serve(listener, Duration::from_secs(5), shutdown));

        let channel = lrs_server::client::channel(&gateway_url).expect("a valid URL");
        let suite = Self {
            identity,
            echo,
            gateway: channel,
            gateway_url,
            stop: Some(stop),
            _backends: backends,
        };
        suite.wait_until_serving().await;
        suite
    }

    async fn wait_until_serving(&self) {
        let mut health = HealthClient::new(self.gateway.clone());
        let request = HealthCheckRequest {
            service: String::new(),
        };
        let mut updates = health
            .watch(request)
            .await
            .expect("watch opens")
            .into_inner();
        while let Some(update) = updates.message().await.expect("health answers") {
            if update.status() == ServingStatus::Serving {
                return;
            }
        }
        panic!("the gateway never reported serving");
    }

    fn token(&self) -> String {
        self.identity
            .token(&TestIdentity::user_claims(ORGANISATION))
    }

    fn signed<T>(&self, message: T) -> Request<T> {
        let mut request = Request::new(message);
        let value = format!("Bearer {}", self.token());
        request
            .metadata_mut()
            .insert("authorization", value.parse().expect("ascii"));
        request
    }

    fn echo_client(&self) -> EchoClient<Channel> {
        EchoClient::new(self.gateway.clone())
    }

    /// An echo client whose every call, streams included, carries the bearer token.
    fn streaming_echo_client(&self) -> EchoClient<InterceptedService<Channel, Signer>> {
        let value = format!("Bearer {}", self.token()).parse().expect("ascii");
        EchoClient::new(InterceptedService::new(self.gateway.clone(), Signer(value)))
    }

    /// Identity's public RPC answers without a token, and its health is SERVING.
    async fn identity_answers_and_serves(&self) {
        let mut identity = IdentityServiceClient::new(self.gateway.clone());
        let keys = identity
            .get_signing_keys(GetSigningKeysRequest {})
            .await
            .expect("public without a token");
        assert_eq!(keys.get_ref().keys.len(), 1);

        let mut health = HealthClient::new(self.gateway.clone());
        let identity_health = HealthCheckRequest {
            service: "lrs.identity.v1.IdentityService".to_owned(),
        };
        let status = health.check(identity_health).await.expect("health answers");
        assert_eq!(status.get_ref().status(), ServingStatus::Serving);
    }
}

/// Puts the bearer token on every call.
#[derive(Clone)]
struct Signer(MetadataValue<Ascii>);

impl Interceptor for Signer {
    fn call(&mut self, mut request: Request<()>) -> Result<Request<()>, Status> {
        request
            .metadata_mut()
            .insert("authorization", self.0.clone());
        Ok(request)
    }
}

impl Drop for Suite {
    fn drop(&mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
    }
}

/// Calls any path with a string message.
async fn call_path(
    channel: &Channel,
    path: &str,
    request: Request<String>,
) -> Result<String, Status> {
    let mut grpc = tonic::client::Grpc::new(channel.clone());
    grpc.ready()
        .await
        .map_err(|error| Status::unavailable(error.to_string()))?;
    let path = PathAndQuery::try_from(path.to_owned()).expect("a valid path");
    let codec = tonic_prost::ProstCodec::<String, String>::default();
    Ok(grpc.unary(request, path, codec).await?.into_inner())
}

fn assert_gateway_failure(status: &Status, code: Code, reason: &str) {
    assert_eq!(status.code(), code, "{status:?}");
    assert_eq!(status_reason(status).as_deref(), Some(reason));
    let domain = status
        .get_error_details()
        .error_info()
        .map(|info| info.domain.clone());
    assert_eq!(domain.as_deref(), Some("gateway.lrs"));
}

#[tokio::test]
async fn routes_signed_calls_and_public_rpcs() {
    let suite = Suite::start(&[]).await;

    let answer = suite
        .echo_client()
        .unary("Echo", suite.signed("hello".to_owned()))
        .await
        .expect("routed");
    assert_eq!(answer.get_ref(), "hello");

    suite.identity_answers_and_serves().await;
}

#[tokio::test]
async fn unrouted_unknown_and_internal_services_are_refused_without_forwarding() {
    let suite = Suite::start(&[]).await;

    let unrouted = Request::new(String::new());
    let status = call_path(
        &suite.gateway,
        "/lrs.plr.v1.PlrService/GetLearningEvent",
        unrouted,
    )
    .await
    .expect_err("no plr route");
    assert_gateway_failure(&status, Code::Unimplemented, "SERVICE_NOT_ROUTED");

    let unknown = Request::new(String::new());
    let status = call_path(&suite.gateway, "/acme.Anything/Do", unknown)
        .await
        .expect_err("not ours");
    assert_gateway_failure(&status, Code::Unimplemented, "SERVICE_NOT_ROUTED");

    let misspelt = Request::new(String::new());
    let status = call_path(
        &suite.gateway,
        "/lrs.identity.v1.IdentityService/SignOn",
        misspelt,
    )
    .await
    .expect_err("no such method");
    assert_gateway_failure(&status, Code::Unimplemented, "METHOD_NOT_FOUND");
    assert!(status.message().contains("SignOn"), "{status:?}");

    let internal = suite.signed(String::new());
    let status = call_path(
        &suite.gateway,
        "/lrs.echo.v1.EchoInternalService/Echo",
        internal,
    )
    .await
    .expect_err("never routed");
    assert_gateway_failure(&status, Code::Unimplemented, "INTERNAL_SERVICE");
    assert_eq!(suite.echo.calls(), 0);
}

#[tokio::test]
async fn calls_without_a_valid_token_never_reach_the_backend() {
    let suite = Suite::start(&[]).await;
    let mut echo = suite.echo_client();

    let status = echo.echo("hello").await.expect_err("no token");
    assert_gateway_failure(&status, Code::Unauthenticated, "MISSING_TOKEN");

    let forged = TestIdentity::new(900).token(&TestIdentity::user_claims(ORGANISATION));
    let mut request = Request::new("hello".to_owned());
    let value = format!("Bearer {forged}");
    request
        .metadata_mut()
        .insert("authorization", value.parse().expect("ascii"));
    let status = echo.unary("Echo", request).await.expect_err("forged");
    assert_gateway_failure(&status, Code::Unauthenticated, "INVALID_TOKEN");

    assert_eq!(suite.echo.calls(), 0);
}

#[tokio::test]
async fn acting_for_metadata_from_outside_is_dropped_and_the_token_passed_on() {
    let suite = Suite::start(&[]).await;
    let mut echo = suite.echo_client();

    let mut request = suite.signed(lrs_server::auth::ACTING_ORGANISATION_HEADER.to_owned());
    let forged_acting = "0b0c6a0e-2f44-4bb6-9a55-7bd1c1c0c009"
        .parse()
        .expect("ascii");
    request
        .metadata_mut()
        .insert(lrs_server::auth::ACTING_ORGANISATION_HEADER, forged_acting);
    let seen = echo.unary("Header", request).await.expect("routed");
    assert_eq!(seen.get_ref(), "");

    let request = suite.signed("authorization".to_owned());
    let expected = request
        .metadata()
        .get("authorization")
        .cloned()
        .expect("set");
    let seen = echo.unary("Header", request).await.expect("routed");
    assert_eq!(seen.get_ref(), expected.to_str().expect("ascii"));
}

#[tokio::test]
async fn the_rate_limit_answers_resource_exhausted_with_a_wait() {
    let suite = Suite::start(&["--rate-limit-per-second", "1", "--rate-limit-burst", "2"]).await;
    let mut echo = suite.echo_client();

    for _ in 0..2 {
        echo.unary("Echo", suite.signed("a".to_owned()))
            .await
            .expect("within the burst");
    }
    let status = echo
        .unary("Echo", suite.signed("a".to_owned()))
        .await
        .expect_err("over the limit");
    assert_gateway_failure(&status, Code::ResourceExhausted, "RATE_LIMITED");
    let retry = status.get_error_details().retry_info().cloned();
    assert!(
        retry
            .and_then(|info| info.retry_delay)
            .is_some_and(|wait| wait > Duration::ZERO)
    );
}

#[tokio::test]
async fn deadlines_are_defaulted_bounded_and_enforced() {
    let suite = Suite::start(&["--default-deadline", "300ms", "--max-deadline", "2s"]).await;
    let mut echo = suite.echo_client();

    let request = suite.signed("grpc-timeout".to_owned());
    let seen = echo.unary("Header", request).await.expect("routed");
    assert_eq!(seen.get_ref(), "300m");

    let mut request = suite.signed("grpc-timeout".to_owned());
    request.set_timeout(Duration::from_secs(600));
    let seen = echo.unary("Header", request).await.expect("routed");
    assert_eq!(seen.get_ref(), "2000m");

    let status = echo
        .unary("Hold", suite.signed(String::new()))
        .await
        .expect_err("held past its deadline");
    assert_eq!(status.code(), Code::DeadlineExceeded, "{status:?}");
}

#[tokio::test]
async fn streams_pass_through_in_every_direction() {
    let suite = Suite::start(&[]).await;
    let mut echo = suite.streaming_echo_client();

    let expanded = echo
        .expand(Request::new("3".to_owned()))
        .await
        .expect("server stream");
    assert_eq!(expanded, ["0", "1", "2"]);

    let parts = vec!["a".to_owned(), "b".to_owned(), "c".to_owned()];
    let collected = echo.collect(parts.clone()).await.expect("client stream");
    assert_eq!(collected, "a,b,c");

    let chatted = echo
        .chat(parts.clone())
        .await
        .expect("bidirectional stream");
    assert_eq!(chatted, parts);
}

#[tokio::test]
async fn in_process_routes_get_the_same_checks_deadlines_streams_and_health() {
    let suite = Suite::start_routed(&["--default-deadline", "300ms"], Routing::InProcess).await;
    let mut echo = suite.echo_client();

    let answer = echo
        .unary("Echo", suite.signed("hello".to_owned()))
        .await
        .expect("routed in-process");
    assert_eq!(answer.get_ref(), "hello");
    let calls = suite.echo.calls();

    let status = echo.echo("hello").await.expect_err("no token");
    assert_gateway_failure(&status, Code::Unauthenticated, "MISSING_TOKEN");
    let internal = suite.signed(String::new());
    let status = call_path(
        &suite.gateway,
        "/lrs.echo.v1.EchoInternalService/Echo",
        internal,
    )
    .await
    .expect_err("never routed");
    assert_gateway_failure(&status, Code::Unimplemented, "INTERNAL_SERVICE");
    assert_eq!(suite.echo.calls(), calls, "refused calls reach the service");

    let seen = echo
        .unary("Header", suite.signed("grpc-timeout".to_owned()))
        .await
        .expect("routed");
    assert_eq!(seen.get_ref(), "300m");
    let status = echo
        .unary("Hold", suite.signed(String::new()))
        .await
        .expect_err("held past its deadline");
    assert_eq!(status.code(), Code::DeadlineExceeded, "{status:?}");

    let mut streaming = suite.streaming_echo_client();
    let expanded = streaming
        .expand(Request::new("3".to_owned()))
        .await
        .expect("server stream");
    assert_eq!(expanded, ["0", "1", "2"]);
    let parts = vec!["a".to_owned(), "b".to_owned()];
    let chatted = streaming
        .chat(parts.clone())
        .await
        .expect("bidirectional stream");
    assert_eq!(chatted, parts);

    // Identity is routed in-process too: a public RPC, and health followed through the route.
    suite.identity_answers_and_serves().await;
}

#[tokio::test]
async fn the_trace_context_of_the_caller_is_carried() {
    let suite = Suite::start(&[]).await;
    let traceparent = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01";

    let mut request = suite.signed("traceparent".to_owned());
    request
        .metadata_mut()
        .insert("traceparent", traceparent.parse().expect("ascii"));
    let seen = suite
        .echo_client()
        .unary("Header", request)
        .await
        .expect("routed");
    assert!(seen.get_ref().contains("4bf92f3577b34da6a3ce929d0e0e4736"));
}

#[tokio::test]
async fn grpc_web_requests_are_answered() {
    use http_body_util::{BodyExt, Full};

    let suite = Suite::start(&[]).await;
    let message = prost::Message::encode_to_vec(&"hello web".to_owned());
    let mut frame = vec![0u8];
    frame.extend_from_slice(&u32::try_from(message.len()).expect("small").to_be_bytes());
    frame.extend_from_slice(&message);

    let request = http::Request::post(format!(
        "{}/{}/Echo",
        suite.gateway_url,
        lrs_server::testing::ECHO_SERVICE
    ))
    .header("content-type", "application/grpc-web+proto")
    .header("x-grpc-web", "1")
    .header("authorization", format!("Bearer {}", suite.token()))
    .body(Full::new(bytes::Bytes::from(frame)))
    .expect("a valid request");
    let client = hyper_util::client::legacy::Client::builder(hyper_util::rt::TokioExecutor::new())
        .build_http::<Full<bytes::Bytes>>();
    let response = client
        .request(request)
        .await
        .expect("answered over HTTP/1.1");

    assert_eq!(response.status(), http::StatusCode::OK);
    let content_type = response.headers().get("content-type").cloned();
    assert!(
        content_type.is_some_and(|value| value.as_bytes().starts_with(b"application/grpc-web"))
    );
    let body = response
        .into_body()
        .collect()
        .await
        .expect("a body")
        .to_bytes();
    let text = String::from_utf8_lossy(&body);
    assert!(text.contains("hello web"), "{text}");
    assert!(text.contains("grpc-status:0"), "{text}");
}
