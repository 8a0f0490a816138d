//! Health through the gateway, and the way the suite stops.

use std::time::Duration;

use lrs_testkit::{PUBLIC_SERVICES, ServingStatus, TestSuite};
use tokio::time::Instant;
use tonic::Code;
use tonic::transport::Endpoint;
use tonic_health::pb::HealthCheckRequest;
use tonic_health::pb::health_client::HealthClient;

fn check(name: &str) -> HealthCheckRequest {
    HealthCheckRequest {
        service: name.to_owned(),
    }
}

#[tokio::test]
async fn health_is_serving_for_the_suite_and_every_public_service() {
    let suite = TestSuite::start().await;
    let mut health = HealthClient::new(suite.channel());

    for name in std::iter::once(&"").chain(PUBLIC_SERVICES) {
        let answer = health.check(check(name)).await;
        let status = answer.expect("health answers").into_inner().status();
        assert_eq!(status, ServingStatus::Serving, "health of `{name}`");
    }

    // The gateway never exposes the services meant only for other services.
    let internal = health
        .check(check("lrs.learner.v1.LearnerInternalService"))
        .await
        .expect_err("not known at the gateway");
    assert_eq!(internal.code(), Code::NotFound, "{internal:?}");
    suite.stop().await;
}

#[tokio::test]
async fn shutdown_reports_not_serving_and_stops_within_the_grace_period() {
    let grace = Duration::from_secs(5);
    let mut suite = TestSuite::start_with(|config| config.shutdown_grace = grace).await;
    let identity_address = suite
        .running()
        .services()
        .into_iter()
        .find(|service| service.name == "identity")
        .expect("identity runs")
        .address;
    let identity = Endpoint::from_shared(format!("http://{identity_address}"))
        .expect("a valid endpoint")
        .connect_lazy();
    let mut at_gateway = HealthClient::new(suite.channel())
        .watch(check(""))
        .await
        .expect("the gateway's health can be watched")
        .into_inner();
    let mut at_identity = HealthClient::new(identity)
        .watch(check(""))
        .await
        .expect("identity's health can be watched")
        .into_inner();
    for watch in [&mut at_gateway, &mut at_identity] {
        let first = watch
            .message()
            .await
            .expect("a first status")
            .expect("open");
        assert_eq!(first.status(), ServingStatus::Serving);
    }

    let running = suite.take_running();
    let started = Instant::now();
    let stopping = tokio::spawn(running.stop());

    for (name, watch) in [("gateway", &mut at_gateway), ("identity", &mut at_identity)] {
        let next = watch.message().await;
        let status = next.ok().flatten().map(|update| update.status());
        assert_eq!(
            status,
            Some(ServingStatus::NotServing),
            "{name} reports NOT_SERVING"
        );
    }
    let stopped = stopping.await.expect("the stop task ran");
    stopped.expect("the suite stops cleanly");
    let took = started.elapsed();
    assert!(took <= grace, "stopped in {took:?}, grace {grace:?}");

    let gone = HealthClient::new(suite.channel()).check(check("")).await;
    assert!(gone.is_err(), "nothing answers once stopped: {gone:?}");
    suite.stop().await;
}
