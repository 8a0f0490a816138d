//! One clock for the whole suite: the test kit hands every service the same clock, so a test
//! that moves it moves the time of every service at once.

use std::sync::Arc;

use chrono::{DateTime, TimeDelta, Utc};
use lrs_fields::{Clock, FixedClock};
use lrs_proto::identity::v1::{CreateOrganisationRequest, Organisation, OrganisationKind};
use lrs_testkit::{SignedIn, TestSuite};

/// The service desk creates an awarding organisation; returns when identity says it was
/// created.
async fn created_at(desk: &SignedIn, ukprn: &str) -> Option<DateTime<Utc>> {
    let request = CreateOrganisationRequest {
        organisation: Some(Organisation {
            kind: OrganisationKind::AwardingOrganisation.into(),
            display_name: format!("Awarding body {ukprn}"),
            ukprn: ukprn.to_owned(),
            ..Organisation::default()
        }),
        request_id: format!("create-{ukprn}"),
    };
    let created = desk.identity().create_organisation(request).await;
    let created = created.expect("the service desk creates an organisation");
    let time = created.into_inner().organisation?.create_time?;
    DateTime::from_timestamp(time.seconds, u32::try_from(time.nanos).ok()?)
}

#[tokio::test]
async fn every_service_reads_the_clock_the_suite_is_given() {
    // A day ahead, in whole seconds: tokens are checked against the system's time, so the
    // clock may run ahead of it but not behind.
    let start = DateTime::from_timestamp(Utc::now().timestamp() + 24 * 3600, 0);
    let clock = Arc::new(FixedClock::new(start.expect("a time in range")));
    let shared = Arc::clone(&clock);
    let suite = TestSuite::start_with(|config| config.clock = shared).await;
    let desk = suite.admin().await;

    assert_eq!(created_at(&desk, "10000011").await, Some(clock.now()));
    clock.advance(TimeDelta::hours(1));
    assert_eq!(created_at(&desk, "10000012").await, Some(clock.now()));

    suite.stop().await;
}
