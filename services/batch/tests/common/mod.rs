//! Test support: a learner register in memory behind the batch service's `LearnerRegister`
//! seam, a running batch service with a stand-in identity, and signed-in clients.

#![allow(dead_code)]

use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};

use async_trait::async_trait;
use chrono::NaiveDate;
use lrs_batch::{Batch, BatchConfig, LearnerCallError, LearnerRegister};
use lrs_fields::{FixedClock, Postcode, Uln, normalise_name};
use lrs_proto::batch::v1 as pb;
use lrs_proto::batch::v1::batch_service_client::BatchServiceClient;
use lrs_proto::learner::v1 as learner;
use lrs_proto::types::v1 as types;
use lrs_server::auth::{Authenticator, Claims, IdentityKeySource, Role};
use lrs_server::host::ServiceHost;
use lrs_server::testing::{RunningHost, TestIdentity};
use lrs_store::testing::TestDatabase;
use tonic::transport::Channel;

pub const ORG_A: &str = "0b0c6a0e-2f44-4bb6-9a55-7bd1c1c0c001";
pub const ORG_B: &str = "0b0c6a0e-2f44-4bb6-9a55-7bd1c1c0c002";

/// A learner in the register double.
#[derive(Debug, Clone)]
pub struct Held {
    pub uln: String,
    pub given: String,
    pub family: String,
    pub date_of_birth: (i32, i32, i32),
    pub gender: i32,
    pub postcode: String,
    pub master: Option<String>,
}

impl Held {
    fn keys(&self) -> (String, String, (i32, i32, i32), i32, String) {
        (
            normalise_name(&self.given),
            normalise_name(&self.family),
            self.date_of_birth,
            self.gender,
            self.postcode.clone(),
        )
    }

    fn candidate(&self, score: i32) -> learner::MatchCandidate {
        learner::MatchCandidate {
            learner: Some(learner::Learner {
                uln: self.uln.clone(),
                given_name: self.given.clone(),
                family_name: self.family.clone(),
                ..Default::default()
            }),
            score,
            master_substituted: false,
            matched_uln: self.uln.clone(),
            agreeing_keys: Vec::new(),
        }
    }
}

#[derive(Debug, Default)]
struct RegisterState {
    learners: Vec<Held>,
    by_request: HashMap<String, String>,
    next_stem: u32,
}

/// The learner register in memory: exact match on the five normalised keys, possible matches
/// on the same family name and date of birth, registrations idempotent by request id.
#[derive(Debug, Default)]
pub struct RegisterDouble {
    state: Mutex<RegisterState>,
    /// How many learners were registered (a retried request id is not counted again).
    pub registrations: AtomicUsize,
    /// When set, RegisterLearners registers and then never answers (a worker dying mid-chunk).
    pub hang_after_registering: AtomicBool,
    /// When set, every call fails as if the learner service were down.
    pub down: AtomicBool,
    /// Calls of MatchLearners.
    pub match_calls: AtomicUsize,
}

fn postcode_key(postcode: &str) -> String {
    Postcode::parse(postcode)
        .map(|p| p.compact())
        .unwrap_or_else(|_| postcode.to_owned())
}

fn date_key(date: Option<&types::Date>) -> (i32, i32, i32) {
    date.map(|d| (d.year, d.month, d.day)).unwrap_or_default()
}

impl RegisterDouble {
    /// Puts a learner on the register (gender as its code, 0, 1, 2 or 9), answering its ULN.
    pub fn add(
        &self,
        given: &str,
        family: &str,
        born: (i32, i32, i32),
        gender: i32,
        postcode: &str,
    ) -> String {
        let gender = match gender {
            0 => types::Gender::NotKnown,
            1 => types::Gender::Male,
            2 => types::Gender::Female,
            _ => types::Gender::NotSpecified,
        } as i32;
        let mut state = self.state.lock().expect("unpoisoned");
        let uln = Self::allocate(&mut state);
        state.learners.push(Held {
            uln: uln.clone(),
            given: given.into(),
            family: family.into(),
            date_of_birth: born,
            gender,
            postcode: postcode_key(postcode),
            master: None,
        });
        uln
    }

    /// How many learners the register holds.
    pub fn len(&self) -> usize {
        self.state.lock().expect("unpoisoned").learners.len()
    }

    fn allocate(state: &mut RegisterState) -> String {
        loop {
            state.next_stem += 1;
            if let Some(uln) = Uln::from_stem(100_000_000 + state.next_stem * 7) {
                return uln.to_string();
            }
        }
    }

    fn check_up(&self) -> Result<(), LearnerCallError> {
        if self.down.load(Ordering::SeqCst) {
            return Err(LearnerCallError::Unavailable("down for the test".into()));
        }
        Ok(())
    }
}

#[async_trait]
impl LearnerRegister for RegisterDouble {
    async fn match_learners(
        &self,
        request: learner::MatchLearnersRequest,
        _request_id: &str,
    ) -> Result<learner::MatchLearnersResponse, LearnerCallError> {
        self.check_up()?;
        self.match_calls.fetch_add(1, Ordering::SeqCst);
        let state = self.state.lock().expect("unpoisoned");
        let results = request
            .records
            .iter()
            .map(|record| {
                let search = record.search.clone().unwrap_or_default();
                let keys = (
                    normalise_name(&search.given_name),
                    normalise_name(&search.family_name),
                    date_key(search.date_of_birth.as_ref()),
                    search.gender,
                    postcode_key(&search.postcode),
                );
                let by_uln = state.learners.iter().find(|l| {
                    !record.uln.is_empty()
                        && l.uln == record.uln
                        && normalise_name(&l.family) == keys.1
                        && normalise_name(&l.given) == keys.0
                });
                if let Some(found) = by_uln {
                    return learner::MatchResult {
                        record_id: record.record_id.clone(),
                        outcome: learner::MatchOutcome::ExactMatch as i32,
                        response_code: "WSRC0004".into(),
                        candidates: vec![found.candidate(100)],
                        matched_by_uln: true,
                    };
                }
                let exact: Vec<&Held> =
                    state.learners.iter().filter(|l| l.keys() == keys).collect();
                let (outcome, candidates) = if exact.len() == 1 {
                    match &exact[0].master {
                        Some(master) => {
                            let mut candidate = exact[0].candidate(100);
                            candidate.master_substituted = true;
                            if let Some(l) = candidate.learner.as_mut() {
                                l.uln = master.clone();
                            }
                            (learner::MatchOutcome::LinkedMaster, vec![candidate])
                        }
                        None => (
                            learner::MatchOutcome::ExactMatch,
                            vec![exact[0].candidate(100)],
                        ),
                    }
                } else {
                    let close: Vec<&Held> = state
                        .learners
                        .iter()
                        .filter(|l| {
                            normalise_name(&l.family) == keys.1 && l.date_of_birth == keys.2
                        })
                        .collect();
                    match close.len() {
                        0 => (learner::MatchOutcome::NoMatch, Vec::new()),
                        1..=10 => (
                            learner::MatchOutcome::PossibleMatches,
                            close.iter().map(|l| l.candidate(80)).collect(),
                        ),
                        _ => (learner::MatchOutcome::TooManyMatches, Vec::new()),
                    }
                };
                learner::MatchResult {
                    record_id: record.record_id.clone(),
                    outcome: outcome as i32,
                    response_code: String::new(),
                    candidates,
                    matched_by_uln: false,
                }
            })
            .collect();
        Ok(learner::MatchLearnersResponse { results })
    }

    async fn register_learners(
        &self,
        request: learner::RegisterLearnersRequest,
        _request_id: &str,
    ) -> Result<learner::RegisterLearnersResponse, LearnerCallError> {
        self.check_up()?;
        let results = {
            let mut state = self.state.lock().expect("unpoisoned");
            let mut results = Vec::new();
            for registration in &request.registrations {
                let person = registration.learner.clone().unwrap_or_default();
                if let Some(uln) = state.by_request.get(&registration.request_id) {
                    results.push(learner::RegistrationResult {
                        record_id: registration.record_id.clone(),
                        outcome: learner::RegistrationOutcome::Registered as i32,
                        uln: uln.clone(),
                    });
                    continue;
                }
                let held = Held {
                    uln: String::new(),
                    given: person.given_name.clone(),
                    family: person.family_name.clone(),
                    date_of_birth: date_key(person.date_of_birth.as_ref()),
                    gender: person.gender,
                    postcode: postcode_key(&person.postcode),
                    master: None,
                };
                if let Some(existing) = state.learners.iter().find(|l| l.keys() == held.keys()) {
                    results.push(learner::RegistrationResult {
                        record_id: registration.record_id.clone(),
                        outcome: learner::RegistrationOutcome::AlreadyRegistered as i32,
                        uln: existing.uln.clone(),
                    });
                    continue;
                }
                let uln = Self::allocate(&mut state);
                state.learners.push(Held {
                    uln: uln.clone(),
                    ..held
                });
                state
                    .by_request
                    .insert(registration.request_id.clone(), uln.clone());
                self.registrations.fetch_add(1, Ordering::SeqCst);
                results.push(learner::RegistrationResult {
                    record_id: registration.record_id.clone(),
                    outcome: learner::RegistrationOutcome::Registered as i32,
                    uln,
                });
            }
            results
        };
        if self.hang_after_registering.load(Ordering::SeqCst) {
            std::future::pending::<()>().await;
        }
        Ok(learner::RegisterLearnersResponse { results })
    }

    async fn update_learners_from_batch(
        &self,
        request: learner::UpdateLearnersFromBatchRequest,
        _request_id: &str,
    ) -> Result<learner::UpdateLearnersFromBatchResponse, LearnerCallError> {
        self.check_up()?;
        let results = request
            .updates
            .iter()
            .map(|update| learner::LearnerDetailsUpdateResult {
                record_id: update.record_id.clone(),
                uln: update.uln.clone(),
                changed: false,
                found: true,
            })
            .collect();
        Ok(learner::UpdateLearnersFromBatchResponse { results })
    }

    async fn verify_learners(
        &self,
        request: learner::VerifyLearnersRequest,
        _request_id: &str,
    ) -> Result<learner::VerifyLearnersResponse, LearnerCallError> {
        self.check_up()?;
        let state = self.state.lock().expect("unpoisoned");
        let results = request
            .records
            .iter()
            .map(|record| {
                let asked = record.learner.clone().unwrap_or_default();
                let held = state.learners.iter().find(|l| l.uln == asked.uln);
                let (outcome, mismatched, uln) = match held {
                    None => (
                        learner::VerificationOutcome::UlnNotFound,
                        Vec::new(),
                        String::new(),
                    ),
                    Some(held) => {
                        let mut mismatched = Vec::new();
                        if normalise_name(&held.given) != normalise_name(&asked.given_name) {
                            mismatched.push(learner::DemographicKey::GivenName as i32);
                        }
                        if normalise_name(&held.family) != normalise_name(&asked.family_name) {
                            mismatched.push(learner::DemographicKey::FamilyName as i32);
                        }
                        if let Some(date) = &asked.date_of_birth
                            && date_key(Some(date)) != held.date_of_birth
                        {
                            mismatched.push(learner::DemographicKey::DateOfBirth as i32);
                        }
                        if mismatched.is_empty() {
                            (
                                learner::VerificationOutcome::Verified,
                                mismatched,
                                held.uln.clone(),
                            )
                        } else {
                            (
                                learner::VerificationOutcome::NotMatched,
                                mismatched,
                                String::new(),
                            )
                        }
                    }
                };
                learner::VerificationResult {
                    record_id: record.record_id.clone(),
                    verification: Some(learner::Verification {
                        searched_uln: asked.uln.clone(),
                        outcome: outcome as i32,
                        mismatched_keys: mismatched,
                        uln,
                        ..Default::default()
                    }),
                    record_ulns: Vec::new(),
                    ability_to_share: 0,
                }
            })
            .collect();
        Ok(learner::VerifyLearnersResponse { results })
    }
}

/// The day the samples were written for.
pub fn sample_day() -> NaiveDate {
    NaiveDate::from_ymd_opt(2026, 12, 3).expect("a date")
}

/// A running batch service over a fresh database, with its register double.
pub struct Harness {
    pub batch: Batch,
    pub register: Arc<RegisterDouble>,
    pub clock: Arc<FixedClock>,
    pub identity: TestIdentity,
    pub host: RunningHost,
    pub identity_host: RunningHost,
    pub database: TestDatabase,
}

impl Harness {
    /// A harness on `database`, with no workers running (tests drive the processor).
    pub async fn start(database: TestDatabase) -> Harness {
        Harness::start_with(database, |_| {}).await
    }

    /// A harness whose configuration `adjust` changes first.
    pub async fn start_with(
        database: TestDatabase,
        adjust: impl FnOnce(&mut BatchConfig),
    ) -> Harness {
        let identity = TestIdentity::new(600);
        let identity_host =
            RunningHost::start(ServiceHost::new("identity").add_service(identity.clone())).await;
        let authenticator = Authenticator::new(IdentityKeySource::new(identity_host.channel()));
        let connected = database.connect("batch").await.expect("the database opens");
        Batch::migrate(&connected).await.expect("migrations apply");
        let clock = Arc::new(FixedClock::on_london_date(sample_day()));
        let register = Arc::new(RegisterDouble::default());
        let mut config = BatchConfig {
            workers: 0,
            chunk_size: 4,
            watch_interval: std::time::Duration::from_millis(50).into(),
            ..BatchConfig::default()
        };
        adjust(&mut config);
        let batch = Batch::open(
            connected,
            config,
            clock.clone(),
            authenticator,
            register.clone(),
        )
        .await
        .expect("the service opens");
        let host = RunningHost::start(ServiceHost::new("batch").add_service(batch.server())).await;
        host.readiness.set_serving().await;
        Harness {
            batch,
            register,
            clock,
            identity,
            host,
            identity_host,
            database,
        }
    }

    /// A client; `token` goes on each request by [`Harness::request`].
    pub fn client(&self) -> BatchServiceClient<Channel> {
        BatchServiceClient::new(self.host.channel())
    }

    /// A token for a user of `organisation` with `roles`.
    pub fn token(&self, organisation: &str, ukprn: &str, roles: Vec<Role>) -> String {
        let claims = Claims {
            ukprn: Some(ukprn.to_owned()),
            roles,
            ..TestIdentity::user_claims(organisation)
        };
        self.identity.token(&claims)
    }

    /// Runs the processor until no chunk is left.
    pub async fn process_all(&self) {
        let processor = self.batch.processor();
        while processor
            .run_once("test-worker")
            .await
            .expect("a chunk is processed")
        {}
    }
}

/// `message` with `token` as its bearer token.
pub fn request<T>(token: &str, message: T) -> tonic::Request<T> {
    let mut request = tonic::Request::new(message);
    let value = format!("Bearer {token}").parse().expect("an ASCII token");
    request.metadata_mut().insert("authorization", value);
    request
}

/// An upload stream of `file_name` in chunks of `chunk` bytes.
pub fn submit_stream(
    file_name: &str,
    bytes: &[u8],
    chunk: usize,
    request_id: &str,
) -> impl futures::Stream<Item = pb::SubmitBatchFileRequest> + Send + 'static {
    let mut messages = vec![pb::SubmitBatchFileRequest {
        content: Some(pb::submit_batch_file_request::Content::Metadata(
            pb::SubmitBatchFileMetadata {
                file: Some(pb::BatchFileMetadata {
                    file_name: file_name.to_owned(),
                    job_type: 0,
                }),
                request_id: request_id.to_owned(),
            },
        )),
    }];
    for piece in bytes.chunks(chunk.max(1)) {
        messages.push(pb::SubmitBatchFileRequest {
            content: Some(pb::submit_batch_file_request::Content::Chunk(
                piece.to_vec(),
            )),
        });
    }
    futures::stream::iter(messages)
}

/// A validate stream of `file_name`.
pub fn validate_stream(
    file_name: &str,
    bytes: &[u8],
) -> impl futures::Stream<Item = pb::ValidateBatchFileRequest> + Send + 'static {
    let mut messages = vec![pb::ValidateBatchFileRequest {
        content: Some(pb::validate_batch_file_request::Content::Metadata(
            pb::BatchFileMetadata {
                file_name: file_name.to_owned(),
                job_type: 0,
            },
        )),
    }];
    for piece in bytes.chunks(1000) {
        messages.push(pb::ValidateBatchFileRequest {
            content: Some(pb::validate_batch_file_request::Content::Chunk(
                piece.to_vec(),
            )),
        });
    }
    futures::stream::iter(messages)
}

/// A sample file from the fixtures.
pub fn fixture(name: &str) -> Vec<u8> {
    std::fs::read(format!(
        "{}/tests/fixtures/{name}",
        env!("CARGO_MANIFEST_DIR")
    ))
    .expect("the fixture is there")
}

/// Each backend's test database: SQLite, and PostgreSQL when `DATABASE_URL` is set.
pub async fn databases() -> Vec<TestDatabase> {
    let mut found = vec![TestDatabase::sqlite().expect("a SQLite test database")];
    if let Some(url) = lrs_store::testing::admin_url_from_env() {
        found.push(
            TestDatabase::postgres(&url)
                .await
                .expect("a PostgreSQL test database"),
        );
    }
    found
}
