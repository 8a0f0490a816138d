//! Processing: workers that claim chunks of records under a lease and give each record its
//! result.
//!
//! A worker claims one chunk at a time ([`BatchStore::claim_chunk`]): the organisation served
//! least recently goes first, so one organisation's large file does not hold up another's small
//! one. For an LRB chunk it matches the waiting records as a set with `MatchLearners`, registers
//! those not found (find-and-register jobs) with `RegisterLearners`, adds the file's optional
//! details to learners found with `UpdateLearnersFromBatch`, and raises an exception for each
//! possible or too-many match. For a verification chunk it calls `VerifyLearners`. The chunk's
//! results are written in one transaction, which succeeds only while the worker still holds the
//! lease.
//!
//! Exactly once: a worker that dies mid-chunk leaves its lease to expire; another worker takes
//! the chunk over and does it again. Matching has no effect to repeat; each registration carries
//! the request id `<job id>:<row>`, which the learner service answers with the learner it
//! registered the first time, so no learner is registered twice. On a chunk's second or later
//! attempt, records that now match exactly are offered to `RegisterLearners` again under their
//! request ids, so a learner that the dead worker registered still comes out as NEW_ULN.

use std::sync::Arc;
use std::time::Duration;

use lrs_fields::Clock;
use lrs_proto::learner::v1 as learner;
use lrs_proto::types::v1 as types;
use prost::Message;
use tokio::sync::{Notify, watch};
use tokio::task::JoinHandle;
use uuid::Uuid;

use crate::domain::job::JobType;
use crate::domain::layout::LrbVersion;
use crate::domain::outcome::Outcome;
use crate::domain::record::{check_verification, raw_learner};
use crate::learners::{
    LearnerCallError, LearnerRegister, proto_learner, proto_search, proto_to_verify,
};
use crate::store::{
    BatchStore, ChunkResults, ClaimedChunk, NewException, RecordResult, StoreError, StoredRecord,
};

/// Why a chunk could not be processed now.
#[derive(Debug, thiserror::Error)]
pub enum WorkerError {
    /// The store failed.
    #[error(transparent)]
    Store(#[from] StoreError),
    /// The learner service is unavailable.
    #[error(transparent)]
    Learners(#[from] LearnerCallError),
}

/// How the workers run.
#[derive(Debug, Clone, Copy)]
pub struct WorkerSettings {
    /// How many workers this process runs.
    pub workers: usize,
    /// How long a claimed chunk stays leased.
    pub lease: Duration,
    /// How often an idle worker looks for work.
    pub poll_interval: Duration,
    /// After how long an upload that never finished is removed.
    pub stale_upload: Duration,
}

/// Processes chunks: the part of a worker that does the work, callable on its own.
#[derive(Debug, Clone)]
pub struct Processor {
    store: Arc<dyn BatchStore>,
    learners: Arc<dyn LearnerRegister>,
    clock: Arc<dyn Clock>,
    lease: Duration,
    match_size: usize,
}

impl Processor {
    /// A processor over `store` calling `learners`, leasing chunks for `lease` and sending at
    /// most `match_size` records per `MatchLearners` call.
    pub fn new(
        store: Arc<dyn BatchStore>,
        learners: Arc<dyn LearnerRegister>,
        clock: Arc<dyn Clock>,
        lease: Duration,
        match_size: usize,
    ) -> Processor {
        Processor {
            store,
            learners,
            clock,
            lease,
            match_size: match_size.max(1),
        }
    }

    /// Claims one chunk as `owner`, processes it and writes its results. Answers whether a
    /// chunk was claimed.
    pub async fn run_once(&self, owner: &str) -> Result<bool, WorkerError> {
        let Some(chunk) = self.claim(owner).await? else {
            return Ok(false);
        };
        if let Err(error) = self.process(owner, chunk).await {
            // Give the chunk back at once: waiting for its lease to end would stall the job
            // for the length of a lease after a passing fault (the learner service
            // restarting, say). A worker that dies instead still holds it until then.
            if let Err(release) = self.store.release_leases(owner).await {
                tracing::warn!(%owner, error = %release, "could not give back a failed chunk");
            }
            return Err(error);
        }
        Ok(true)
    }

    /// Claims the next chunk as `owner`, leasing it.
    pub async fn claim(&self, owner: &str) -> Result<Option<ClaimedChunk>, WorkerError> {
        let now = self.clock.now();
        let lease = chrono::Duration::from_std(self.lease).unwrap_or(chrono::Duration::seconds(30));
        Ok(self.store.claim_chunk(owner, now, now + lease).await?)
    }

    /// Processes a claimed chunk and writes its results.
    pub async fn process(&self, owner: &str, chunk: ClaimedChunk) -> Result<(), WorkerError> {
        let job_id = chunk.job.job_id;
        let chunk_number = chunk.chunk_number;
        let results = match chunk.job.job_type {
            JobType::Verification => self.verify(&chunk).await?,
            JobType::FindAndRegister | JobType::FindOnly => self.find(&chunk).await?,
        };
        let written = self
            .store
            .complete_chunk(&ChunkResults {
                job_id,
                chunk_number,
                owner: owner.to_owned(),
                results,
                now: self.clock.now(),
            })
            .await?;
        if written {
            tracing::debug!(%job_id, chunk_number, "processed chunk");
        } else {
            tracing::warn!(%job_id, chunk_number, "lost the lease of a chunk; its results were dropped");
        }
        Ok(())
    }

    fn actor(chunk: &ClaimedChunk) -> types::Actor {
        types::Actor {
            organisation_id: chunk.job.organisation_id.clone(),
            user_id: chunk.job.acting_user_id.clone().unwrap_or_default(),
        }
    }

    fn request_id(chunk: &ClaimedChunk) -> String {
        format!("{}:{}", chunk.job.job_id, chunk.chunk_number)
    }

    async fn find(&self, chunk: &ClaimedChunk) -> Result<Vec<RecordResult>, WorkerError> {
        let version = LrbVersion::parse(&chunk.job.file_version).unwrap_or(LrbVersion::V2A);
        let mut results = Vec::new();
        let mut valid = Vec::new();
        for record in &chunk.records {
            match raw_learner(version, &record.values).validate(chunk.job.validation_date) {
                Ok(learner) => valid.push((record.row, learner)),
                Err(violations) => results.push(RecordResult {
                    row: record.row,
                    outcome: Outcome::for_fault(
                        lrs_fields::ViolationKind::decisive(&violations)
                            .unwrap_or(lrs_fields::ViolationKind::Format),
                    ),
                    result_uln: String::new(),
                    reasons: violations.iter().map(|v| v.message.clone()).collect(),
                    exception: None,
                }),
            }
        }
        let mut valid = valid.into_iter().peekable();
        while valid.peek().is_some() {
            let piece: Vec<_> = valid.by_ref().take(self.match_size).collect();
            results.extend(self.find_with_fallback(chunk, piece).await?);
        }
        results.sort_by_key(|result| result.row);
        Ok(results)
    }

    /// Finds records as a set; when the register refuses the set, each record alone, so that
    /// one record it will not take does not hold up the others.
    async fn find_with_fallback(
        &self,
        chunk: &ClaimedChunk,
        valid: Vec<(i64, lrs_fields::ValidLearner)>,
    ) -> Result<Vec<RecordResult>, WorkerError> {
        if valid.is_empty() {
            return Ok(Vec::new());
        }
        match self.find_set(chunk, &valid).await {
            Ok(results) => Ok(results),
            Err(LearnerCallError::Refused(reason)) if valid.len() == 1 => Ok(vec![RecordResult {
                row: valid[0].0,
                outcome: Outcome::IncorrectFormat,
                result_uln: String::new(),
                reasons: vec![format!("the learner register refused the record: {reason}")],
                exception: None,
            }]),
            Err(LearnerCallError::Refused(_)) => {
                let mut results = Vec::new();
                for one in valid {
                    results.extend(Box::pin(self.find_with_fallback(chunk, vec![one])).await?);
                }
                Ok(results)
            }
            Err(error) => Err(error.into()),
        }
    }

    pub(crate) async fn find_set(
        &self,
        chunk: &ClaimedChunk,
        valid: &[(i64, lrs_fields::ValidLearner)],
    ) -> Result<Vec<RecordResult>, LearnerCallError> {
        let request_id = Self::request_id(chunk);
        let records = valid
            .iter()
            .map(|(row, learner)| learner::MatchRecord {
                record_id: row.to_string(),
                uln: learner.uln.map(|uln| uln.to_string()).unwrap_or_default(),
                search: Some(proto_search(learner)),
            })
            .collect();
        let matched = self
            .learners
            .match_learners(
                learner::MatchLearnersRequest {
                    acting_for: Some(Self::actor(chunk)),
                    records,
                    find_type: learner::FindType::Check as i32,
                },
                &request_id,
            )
            .await?;
        if matched.results.len() != valid.len() {
            return Err(LearnerCallError::Refused(format!(
                "MatchLearners answered {} results for {} records",
                matched.results.len(),
                valid.len()
            )));
        }

        let register = chunk.job.job_type == JobType::FindAndRegister;
        let retry = chunk.attempts > 1;
        let mut results = Vec::with_capacity(valid.len());
        let mut to_register = Vec::new();
        let mut found = Vec::new();
        for ((row, valid), result) in valid.iter().zip(matched.results) {
            let outcome = learner::MatchOutcome::try_from(result.outcome)
                .unwrap_or(learner::MatchOutcome::Unspecified);
            let first_uln = result
                .candidates
                .first()
                .and_then(|c| c.learner.as_ref())
                .map(|l| l.uln.clone())
                .unwrap_or_default();
            let uln_given = valid.uln.is_some();
            let mut reasons = Vec::new();
            if uln_given && !result.matched_by_uln {
                reasons.push(
                    "the ULN given did not verify against the record; the learner was looked \
                     for by the five demographic keys"
                        .to_owned(),
                );
            }
            let record = match outcome {
                learner::MatchOutcome::ExactMatch => {
                    if register && retry && !result.matched_by_uln {
                        to_register.push((*row, valid));
                    }
                    if result.matched_by_uln {
                        reasons.push("the ULN given verified".to_owned());
                    }
                    found.push((*row, first_uln.clone(), valid));
                    result_of(*row, Outcome::Found, first_uln, reasons, None)
                }
                learner::MatchOutcome::LinkedMaster => {
                    let matched = result
                        .candidates
                        .first()
                        .map(|c| c.matched_uln.clone())
                        .unwrap_or_default();
                    reasons.push(format!(
                        "the learner found ({matched}) is linked to a master; the master's ULN \
                         is given"
                    ));
                    found.push((*row, first_uln.clone(), valid));
                    result_of(*row, Outcome::LinkedMaster, first_uln, reasons, None)
                }
                learner::MatchOutcome::PossibleMatches => {
                    reasons.push(format!(
                        "{} possible matches: review them in the job's exceptions",
                        result.candidates.len()
                    ));
                    let candidates = encode_candidates(&result.candidates);
                    result_of(
                        *row,
                        Outcome::PossibleMatch,
                        String::new(),
                        reasons,
                        Some(candidates),
                    )
                }
                learner::MatchOutcome::TooManyMatches => {
                    reasons.push(
                        "more than 10 learners match closely: review the exception and search \
                         with more details"
                            .to_owned(),
                    );
                    result_of(
                        *row,
                        Outcome::TooManyMatches,
                        String::new(),
                        reasons,
                        Some(Vec::new()),
                    )
                }
                learner::MatchOutcome::NoMatch | learner::MatchOutcome::Unspecified => {
                    if register {
                        to_register.push((*row, valid));
                        result_of(*row, Outcome::NewUln, String::new(), reasons, None)
                    } else {
                        reasons.push("no learner on the register matches".to_owned());
                        result_of(*row, Outcome::NotFound, String::new(), reasons, None)
                    }
                }
            };
            results.push(record);
        }

        if !to_register.is_empty() {
            self.register(chunk, &to_register, &mut results).await?;
        }
        let updates: Vec<_> = found
            .iter()
            .filter(|(row, _, _)| {
                results.iter().any(|r| {
                    r.row == *row && matches!(r.outcome, Outcome::Found | Outcome::LinkedMaster)
                })
            })
            .collect();
        if !updates.is_empty() {
            self.update_found(chunk, &updates).await?;
        }
        Ok(results)
    }

    async fn register(
        &self,
        chunk: &ClaimedChunk,
        to_register: &[(i64, &lrs_fields::ValidLearner)],
        results: &mut [RecordResult],
    ) -> Result<(), LearnerCallError> {
        let registrations = to_register
            .iter()
            .map(|(row, valid)| learner::LearnerRegistration {
                record_id: row.to_string(),
                request_id: registration_request_id(chunk.job.job_id, *row),
                learner: Some(proto_learner(valid)),
            })
            .collect();
        let registered = self
            .learners
            .register_learners(
                learner::RegisterLearnersRequest {
                    acting_for: Some(Self::actor(chunk)),
                    registrations,
                },
                &Self::request_id(chunk),
            )
            .await?;
        if registered.results.len() != to_register.len() {
            return Err(LearnerCallError::Refused(format!(
                "RegisterLearners answered {} results for {} learners",
                registered.results.len(),
                to_register.len()
            )));
        }
        for ((row, _), answer) in to_register.iter().zip(registered.results) {
            let Some(result) = results.iter_mut().find(|r| r.row == *row) else {
                continue;
            };
            let outcome = learner::RegistrationOutcome::try_from(answer.outcome)
                .unwrap_or(learner::RegistrationOutcome::Unspecified);
            result.result_uln = answer.uln;
            match outcome {
                learner::RegistrationOutcome::Registered => {
                    result.outcome = Outcome::NewUln;
                    result
                        .reasons
                        .push("no learner matched; a new ULN was registered".to_owned());
                }
                learner::RegistrationOutcome::AlreadyRegistered
                | learner::RegistrationOutcome::Unspecified => {
                    result.outcome = Outcome::Found;
                    if !result.reasons.iter().any(|r| r.contains("verified")) {
                        result.reasons.push(
                            "a learner with the same five keys is on the register".to_owned(),
                        );
                    }
                }
            }
        }
        Ok(())
    }

    async fn update_found(
        &self,
        chunk: &ClaimedChunk,
        found: &[&(i64, String, &lrs_fields::ValidLearner)],
    ) -> Result<(), LearnerCallError> {
        let updates = found
            .iter()
            .filter(|(_, uln, _)| !uln.is_empty())
            .map(|(row, uln, valid)| learner::LearnerDetailsUpdate {
                record_id: row.to_string(),
                uln: uln.clone(),
                details: Some(proto_learner(valid)),
            })
            .collect::<Vec<_>>();
        if updates.is_empty() {
            return Ok(());
        }
        self.learners
            .update_learners_from_batch(
                learner::UpdateLearnersFromBatchRequest {
                    acting_for: Some(Self::actor(chunk)),
                    updates,
                },
                &Self::request_id(chunk),
            )
            .await?;
        Ok(())
    }

    async fn verify(&self, chunk: &ClaimedChunk) -> Result<Vec<RecordResult>, WorkerError> {
        let mut results = Vec::new();
        let mut rows = Vec::new();
        for record in &chunk.records {
            let check = check_verification(record.row as u64, &record.values);
            match check.record {
                Some(row) => rows.push((record.row, row)),
                None => results.push(rejected(record)),
            }
        }
        if !rows.is_empty() {
            let records = rows
                .iter()
                .map(|(row, verification)| learner::VerifyRecord {
                    record_id: row.to_string(),
                    learner: Some(proto_to_verify(verification)),
                })
                .collect();
            let verified = self
                .learners
                .verify_learners(
                    learner::VerifyLearnersRequest {
                        acting_for: Some(Self::actor(chunk)),
                        records,
                    },
                    &Self::request_id(chunk),
                )
                .await?;
            for ((row, _), answer) in rows.iter().zip(verified.results) {
                results.push(verification_result(*row, answer));
            }
        }
        results.sort_by_key(|result| result.row);
        Ok(results)
    }
}

/// The request id of a record's registration: the same on every attempt.
pub fn registration_request_id(job_id: Uuid, row: i64) -> String {
    format!("{job_id}:{row}")
}

fn result_of(
    row: i64,
    outcome: Outcome,
    result_uln: String,
    reasons: Vec<String>,
    candidates: Option<Vec<u8>>,
) -> RecordResult {
    RecordResult {
        row,
        outcome,
        result_uln,
        reasons,
        exception: candidates.map(|candidates| NewException {
            exception_id: Uuid::new_v4(),
            candidates,
        }),
    }
}

fn rejected(record: &StoredRecord) -> RecordResult {
    let outcome = crate::domain::outcome::decisive_outcome(&record.faults)
        .unwrap_or(Outcome::IncorrectFormat);
    result_of(
        record.row,
        outcome,
        String::new(),
        record.reasons.clone(),
        None,
    )
}

/// Candidates as an exception stores them: each one length-delimited.
pub fn encode_candidates(candidates: &[learner::MatchCandidate]) -> Vec<u8> {
    let mut bytes = Vec::new();
    for candidate in candidates {
        // Encoding into a Vec cannot run out of room.
        let _ = candidate.encode_length_delimited(&mut bytes);
    }
    bytes
}

/// The candidates an exception stored.
pub fn decode_candidates(mut bytes: &[u8]) -> Vec<learner::MatchCandidate> {
    let mut candidates = Vec::new();
    while !bytes.is_empty() {
        match learner::MatchCandidate::decode_length_delimited(&mut bytes) {
            Ok(candidate) => candidates.push(candidate),
            Err(_) => break,
        }
    }
    candidates
}

fn verification_result(row: i64, answer: learner::VerificationResult) -> RecordResult {
    let Some(verification) = answer.verification else {
        return result_of(
            row,
            Outcome::NotVerified,
            String::new(),
            vec!["the learner service gave no verdict".to_owned()],
            None,
        );
    };
    let outcome = learner::VerificationOutcome::try_from(verification.outcome)
        .unwrap_or(learner::VerificationOutcome::Unspecified);
    use learner::VerificationOutcome as V;
    let (result, reason) = match outcome {
        V::Verified => (Outcome::Verified, None),
        V::VerifiedLinked => (
            Outcome::Verified,
            Some("the ULN is linked to a master; the master's ULN is given".to_owned()),
        ),
        V::Similar => (
            Outcome::Verified,
            Some("verified as a similar match (names close but not equal)".to_owned()),
        ),
        V::SimilarLinked => (
            Outcome::Verified,
            Some(
                "verified as a similar match of a linked ULN; the master's ULN is given".to_owned(),
            ),
        ),
        V::NotMatched => {
            let keys: Vec<&str> = verification
                .mismatched_keys
                .iter()
                .filter_map(|k| learner::DemographicKey::try_from(*k).ok())
                .map(|k| match k {
                    learner::DemographicKey::GivenName => "GivenName",
                    learner::DemographicKey::FamilyName => "FamilyName",
                    learner::DemographicKey::DateOfBirth => "DateOfBirth",
                    learner::DemographicKey::Gender => "Gender",
                    learner::DemographicKey::Postcode => "LastKnownPostCode",
                    learner::DemographicKey::Unspecified => "unknown field",
                })
                .collect();
            let flags = verification.failure_flags.join(", ");
            (
                Outcome::NotVerified,
                Some(format!("did not match: {} ({flags})", keys.join(", "))),
            )
        }
        V::UlnNotFound => (
            Outcome::NotVerified,
            Some("no learner has this ULN".to_owned()),
        ),
        V::Unspecified => (
            Outcome::NotVerified,
            Some("the learner service gave no verdict".to_owned()),
        ),
    };
    let uln = if result == Outcome::Verified {
        verification.uln
    } else {
        String::new()
    };
    result_of(row, result, uln, reason.into_iter().collect(), None)
}

/// The workers of one process, started and stopped by the host.
#[derive(Debug)]
pub struct Workers {
    tasks: Vec<(String, JoinHandle<()>)>,
    stop: watch::Sender<bool>,
    store: Arc<dyn BatchStore>,
}

impl Workers {
    /// Starts `settings.workers` workers; `wake` lets a new job start them at once.
    pub fn start(processor: Processor, settings: WorkerSettings, wake: Arc<Notify>) -> Workers {
        let (stop, stopped) = watch::channel(false);
        let store = processor.store.clone();
        let process = Uuid::new_v4().simple().to_string();
        let tasks = (0..settings.workers)
            .map(|index| {
                let owner = format!("{}-{index}", &process[..12]);
                let task = tokio::spawn(run_worker(
                    processor.clone(),
                    owner.clone(),
                    settings,
                    wake.clone(),
                    stopped.clone(),
                    index == 0,
                ));
                (owner, task)
            })
            .collect();
        tracing::info!(workers = settings.workers, "started batch workers");
        Workers { tasks, stop, store }
    }

    /// Stops the workers: each finishes the chunk in hand, for up to `grace`; a worker still
    /// busy then is stopped and its leases given up, so another process takes its chunk at
    /// once.
    pub async fn stop(self, grace: Duration) {
        let _ = self.stop.send(true);
        let deadline = tokio::time::Instant::now() + grace;
        for (owner, mut task) in self.tasks {
            match tokio::time::timeout_at(deadline, &mut task).await {
                Ok(_) => {}
                Err(_) => {
                    task.abort();
                    let _ = task.await;
                    match self.store.release_leases(&owner).await {
                        Ok(released) => {
                            tracing::warn!(%owner, released, "stopped a busy batch worker")
                        }
                        Err(error) => {
                            tracing::error!(%owner, %error, "could not release a worker's leases")
                        }
                    }
                }
            }
        }
        tracing::info!("stopped batch workers");
    }
}

async fn run_worker(
    processor: Processor,
    owner: String,
    settings: WorkerSettings,
    wake: Arc<Notify>,
    mut stopped: watch::Receiver<bool>,
    sweeps: bool,
) {
    let mut last_sweep = tokio::time::Instant::now();
    loop {
        if *stopped.borrow() {
            return;
        }
        if sweeps && last_sweep.elapsed() > settings.stale_upload / 4 {
            last_sweep = tokio::time::Instant::now();
            sweep(&processor, settings.stale_upload).await;
        }
        let worked = match processor.run_once(&owner).await {
            Ok(worked) => worked,
            Err(error) => {
                tracing::warn!(%owner, %error, "batch chunk not processed; it is tried again");
                false
            }
        };
        if worked {
            continue;
        }
        tokio::select! {
            _ = stopped.changed() => {}
            () = wake.notified() => {}
            () = tokio::time::sleep(settings.poll_interval) => {}
        }
    }
}

async fn sweep(processor: &Processor, stale_upload: Duration) {
    let age = chrono::Duration::from_std(stale_upload).unwrap_or(chrono::Duration::hours(1));
    match processor
        .store
        .sweep_uploads(processor.clock.now() - age)
        .await
    {
        Ok(0) => {}
        Ok(removed) => tracing::info!(removed, "removed uploads that never finished"),
        Err(error) => tracing::warn!(%error, "could not sweep unfinished uploads"),
    }
}
