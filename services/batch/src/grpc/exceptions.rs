//! ListBatchExceptions and ResolveBatchException.

use chrono::{DateTime, Utc};
use lrs_fields::Uln;
use lrs_proto::batch::v1 as pb;
use lrs_proto::learner::v1 as learner;
use lrs_proto::types::v1 as types;
use lrs_server::call::Call;
use lrs_server::error::FieldViolation;
use uuid::Uuid;

use super::{Shared, convert, organisation_of, require_role, visible_job};
use crate::domain::job::JobType;
use crate::domain::layout::LrbVersion;
use crate::domain::outcome::{Outcome, decisive_outcome};
use crate::domain::record::{check_learner, raw_learner};
use crate::error::BatchError;
use crate::learners::{proto_date, proto_learner};
use crate::store::{
    ClaimedChunk, DecisionOutcome, ExceptionDecision, ExceptionFilter, ExceptionStatus, Job,
    ResolutionAction, StoredException,
};

/// The longest note or rejection reason.
const NOTE_MAX: usize = 500;

fn page_size(size: i32) -> Result<i64, BatchError> {
    match size {
        0 => Ok(50),
        1..=1000 => Ok(i64::from(size)),
        _ => Err(BatchError::field("page_size", "1 to 1000, or 0 for 50")),
    }
}

fn cursor(token: &str) -> Result<Option<(DateTime<Utc>, Uuid, i64)>, BatchError> {
    if token.is_empty() {
        return Ok(None);
    }
    let bad = || BatchError::field("page_token", "not a token this service gave");
    let mut parts = token.split('_');
    let (Some(time), Some(job), Some(row), None) =
        (parts.next(), parts.next(), parts.next(), parts.next())
    else {
        return Err(bad());
    };
    let time = super::token_time(time).ok_or_else(bad)?;
    let job = Uuid::parse_str(job).map_err(|_| bad())?;
    let row: i64 = row.parse().map_err(|_| bad())?;
    Ok(Some((time, job, row)))
}

pub(crate) async fn list(
    shared: &Shared,
    call: &Call,
    request: pb::ListBatchExceptionsRequest,
) -> Result<pb::ListBatchExceptionsResponse, BatchError> {
    let pb::ListBatchExceptionsRequest {
        page_size: size,
        page_token,
        job_id,
        status,
        outcome,
    } = request;
    let limit = page_size(size)?;
    let after = cursor(&page_token)?;
    let status = match pb::ExceptionStatus::try_from(status).unwrap_or(pb::ExceptionStatus::Open) {
        pb::ExceptionStatus::Unspecified | pb::ExceptionStatus::Open => ExceptionStatus::Open,
        pb::ExceptionStatus::Resolved => ExceptionStatus::Resolved,
        pb::ExceptionStatus::Rejected => ExceptionStatus::Rejected,
    };
    let outcome = Outcome::from_code(outcome as i16);

    require_role(&call.caller, JobType::FindAndRegister)?;
    let job = match job_id.as_str() {
        "" => None,
        id => Some(visible_job(shared, call, id).await?),
    };
    let organisation_id = match (&job, call.caller.is_service_desk()) {
        (Some(_), _) | (None, true) => None,
        (None, false) => Some(organisation_of(call)?),
    };

    let filter = ExceptionFilter {
        organisation_id,
        job_id: job.as_ref().map(|job| job.job_id),
        status,
        outcome,
        after,
        limit: limit + 1,
    };
    let mut found = shared.store.list_exceptions(&filter).await?;
    let more = found.len() as i64 > limit;
    found.truncate(limit as usize);

    let mut exceptions = Vec::with_capacity(found.len());
    let mut next_page_token = String::new();
    let mut jobs: Vec<Job> = job.into_iter().collect();
    for exception in &found {
        if !jobs.iter().any(|j| j.job_id == exception.job_id)
            && let Some(owner) = shared.store.job(exception.job_id).await?
        {
            jobs.push(owner);
        }
        let owner = jobs.iter().find(|j| j.job_id == exception.job_id);
        let headings = owner.map(convert::value_headings).unwrap_or(&[]);
        exceptions.push(convert::exception(exception, headings));
        if more && let Some(owner) = owner {
            next_page_token = format!(
                "{}_{}_{}",
                super::time_token(owner.create_time),
                owner.job_id,
                exception.record.row
            );
        }
    }
    if !more {
        next_page_token.clear();
    }
    Ok(pb::ListBatchExceptionsResponse {
        exceptions,
        next_page_token,
    })
}

/// A decision as asked for, checked.
enum Asked {
    Accept(Uln),
    Register,
    Correct(Vec<(String, String)>),
    Reject(String),
}

fn checked_text(field: &str, value: &str, required: bool) -> Result<String, BatchError> {
    let length = value.trim().chars().count();
    if length > NOTE_MAX || (required && length == 0) {
        let rule = if required {
            "1 to 500 characters"
        } else {
            "at most 500 characters"
        };
        return Err(BatchError::field(field, rule));
    }
    Ok(value.trim().to_owned())
}

pub(crate) async fn resolve(
    shared: &Shared,
    call: &Call,
    request: pb::ResolveBatchExceptionRequest,
) -> Result<pb::ResolveBatchExceptionResponse, BatchError> {
    let pb::ResolveBatchExceptionRequest {
        exception_id,
        action,
        note,
        request_id,
    } = request;
    let exception_id = Uuid::parse_str(&exception_id)
        .map_err(|_| BatchError::field("exception_id", "an exception id is a UUID"))?;
    let note = checked_text("note", &note, false)?;
    if request_id.chars().count() > 64 {
        return Err(BatchError::field("request_id", "at most 64 characters"));
    }
    let request_id = Some(request_id).filter(|id| !id.is_empty());
    use pb::resolve_batch_exception_request::Action;
    let asked = match action {
        None => {
            return Err(BatchError::field(
                "action",
                "say what to do with the exception",
            ));
        }
        Some(Action::AcceptUln(pb::AcceptUln { uln })) => Asked::Accept(
            Uln::parse(&uln)
                .map_err(|error| BatchError::field("accept_uln.uln", error.to_string()))?,
        ),
        Some(Action::RegisterNew(pb::RegisterNew {})) => Asked::Register,
        Some(Action::CorrectAndRerun(pb::CorrectAndRerun { corrections })) => Asked::Correct(
            corrections
                .into_iter()
                .map(|pb::BatchField { heading, value }| (heading, value))
                .collect(),
        ),
        Some(Action::Reject(pb::RejectRecord { reason })) => {
            Asked::Reject(checked_text("reject.reason", &reason, true)?)
        }
    };

    require_role(&call.caller, JobType::FindAndRegister)?;
    let exception = shared
        .store
        .exception(exception_id)
        .await?
        .ok_or(BatchError::ExceptionNotFound)?;
    let job = visible_job(shared, call, &exception.job_id.to_string())
        .await
        .map_err(|error| match error {
            BatchError::JobNotFound => BatchError::ExceptionNotFound,
            other => other,
        })?;
    let organisation_id = organisation_of(call)?;

    let decision = if exception.status == ExceptionStatus::Open {
        decide(shared, call, &job, &exception, asked, note).await?
    } else {
        // Not open: only a retry of the decision that closed it is answered.
        rejected_decision(&exception, call, String::new(), note)
    };
    let decision = ExceptionDecision {
        exception_id,
        organisation_id,
        request_id,
        ..decision
    };

    let after = match shared.store.decide_exception(&decision).await? {
        DecisionOutcome::Applied(after) => {
            tracing::info!(%exception_id, action = ?decision.action, "decided batch exception");
            after
        }
        DecisionOutcome::Replayed(after) => after,
        DecisionOutcome::NotOpen => return Err(BatchError::ExceptionNotOpen),
        DecisionOutcome::NotFound => return Err(BatchError::ExceptionNotFound),
    };
    let headings = convert::value_headings(&job);
    Ok(pb::ResolveBatchExceptionResponse {
        exception: Some(convert::exception(&after, headings)),
        result: Some(convert::record(&after.record)),
    })
}

fn base_decision(
    exception: &StoredException,
    call: &Call,
    action: ResolutionAction,
    status: ExceptionStatus,
    outcome: Outcome,
    result_uln: String,
    note: String,
) -> ExceptionDecision {
    ExceptionDecision {
        exception_id: exception.exception_id,
        organisation_id: String::new(),
        request_id: None,
        actor: call.caller.subject().to_owned(),
        action,
        status,
        outcome,
        result_uln,
        reasons: exception.record.reasons.clone(),
        values: None,
        faults: exception.record.faults.clone(),
        candidates: None,
        note,
        detail: String::new(),
        now: Utc::now(),
    }
}

fn rejected_decision(
    exception: &StoredException,
    call: &Call,
    reason: String,
    note: String,
) -> ExceptionDecision {
    let outcome = exception.record.outcome.unwrap_or(Outcome::IncorrectFormat);
    let mut decision = base_decision(
        exception,
        call,
        ResolutionAction::Reject,
        ExceptionStatus::Rejected,
        outcome,
        String::new(),
        if reason.is_empty() {
            note
        } else {
            reason.clone()
        },
    );
    decision
        .reasons
        .push(format!("rejected on review: {reason}"));
    decision.detail = serde_json::json!({ "action": "reject" }).to_string();
    decision
}

fn actor(job: &Job) -> types::Actor {
    types::Actor {
        organisation_id: job.organisation_id.clone(),
        user_id: job.acting_user_id.clone().unwrap_or_default(),
    }
}

async fn decide(
    shared: &Shared,
    call: &Call,
    job: &Job,
    exception: &StoredException,
    asked: Asked,
    note: String,
) -> Result<ExceptionDecision, BatchError> {
    let now = shared.clock.now();
    let version = LrbVersion::parse(&job.file_version).unwrap_or(LrbVersion::V2A);
    let record = &exception.record;
    let mut decision = match asked {
        Asked::Reject(reason) => rejected_decision(exception, call, reason, note),
        Asked::Accept(uln) => accept(shared, call, job, exception, version, uln, note).await?,
        Asked::Register => {
            let current = record.outcome.unwrap_or(Outcome::IncorrectFormat);
            if job.job_type != JobType::FindAndRegister {
                return Err(BatchError::RegistrationNotAllowed(
                    "this is a find-only job: it registers no learners".to_owned(),
                ));
            }
            if !current.is_exception() {
                return Err(BatchError::RegistrationNotAllowed(
                    "the record has faults: correct it first".to_owned(),
                ));
            }
            let valid = raw_learner(version, &record.values)
                .validate(job.validation_date)
                .map_err(|_| {
                    BatchError::RegistrationNotAllowed(
                        "the record has faults: correct it first".to_owned(),
                    )
                })?;
            let registered = shared
                .learners
                .register_learners(
                    learner::RegisterLearnersRequest {
                        acting_for: Some(actor(job)),
                        registrations: vec![learner::LearnerRegistration {
                            record_id: record.row.to_string(),
                            request_id: format!("{}:{}:resolve", job.job_id, record.row),
                            learner: Some(proto_learner(&valid)),
                        }],
                    },
                    &call.request_id,
                )
                .await?;
            let Some(answer) = registered.results.into_iter().next() else {
                return Err(BatchError::LearnersRefused(
                    "no registration result".to_owned(),
                ));
            };
            if answer.outcome != learner::RegistrationOutcome::Registered as i32 {
                return Err(BatchError::LearnerAlreadyRegistered(answer.uln));
            }
            let mut decision = base_decision(
                exception,
                call,
                ResolutionAction::RegisterNew,
                ExceptionStatus::Resolved,
                Outcome::NewUln,
                answer.uln,
                note,
            );
            decision
                .reasons
                .push("registered as a new learner on review".to_owned());
            decision.detail = serde_json::json!({ "action": "register_new" }).to_string();
            decision
        }
        Asked::Correct(corrections) => {
            correct(shared, call, job, exception, version, corrections, note).await?
        }
    };
    decision.now = now;
    Ok(decision)
}

async fn accept(
    shared: &Shared,
    call: &Call,
    job: &Job,
    exception: &StoredException,
    version: LrbVersion,
    uln: Uln,
    note: String,
) -> Result<ExceptionDecision, BatchError> {
    let wanted = uln.to_string();
    let candidates = crate::worker::decode_candidates(&exception.candidates);
    let listed = candidates.iter().find(|candidate| {
        candidate.matched_uln == wanted
            || candidate.learner.as_ref().is_some_and(|l| l.uln == wanted)
    });
    let (outcome, result_uln) = match listed {
        Some(candidate) => {
            let master = candidate
                .learner
                .as_ref()
                .map(|l| l.uln.clone())
                .unwrap_or(wanted.clone());
            let outcome = if master != wanted || candidate.master_substituted {
                Outcome::LinkedMaster
            } else {
                Outcome::Found
            };
            (outcome, master)
        }
        None => {
            let raw = raw_learner(version, &exception.record.values);
            let given = raw.given_name.unwrap_or_default();
            let family = raw.family_name.unwrap_or_default();
            let born = raw
                .date_of_birth
                .as_deref()
                .and_then(|d| lrs_fields::parse_date(d).ok());
            if given.trim().is_empty() || family.trim().is_empty() {
                return Err(BatchError::UlnDoesNotMatchRecord);
            }
            let verified = shared
                .learners
                .verify_learners(
                    learner::VerifyLearnersRequest {
                        acting_for: Some(actor(job)),
                        records: vec![learner::VerifyRecord {
                            record_id: exception.record.row.to_string(),
                            learner: Some(learner::LearnerToVerify {
                                uln: wanted.clone(),
                                given_name: given.trim().to_owned(),
                                family_name: family.trim().to_owned(),
                                date_of_birth: born.map(proto_date),
                                gender: types::Gender::Unspecified as i32,
                            }),
                        }],
                    },
                    &call.request_id,
                )
                .await?;
            let verdict = verified
                .results
                .into_iter()
                .next()
                .and_then(|result| result.verification)
                .ok_or(BatchError::UlnDoesNotMatchRecord)?;
            use learner::VerificationOutcome as V;
            match V::try_from(verdict.outcome).unwrap_or(V::Unspecified) {
                V::Verified | V::Similar => (Outcome::Found, verdict.uln),
                V::VerifiedLinked | V::SimilarLinked => (Outcome::LinkedMaster, verdict.uln),
                V::NotMatched | V::UlnNotFound | V::Unspecified => {
                    return Err(BatchError::UlnDoesNotMatchRecord);
                }
            }
        }
    };
    let mut decision = base_decision(
        exception,
        call,
        ResolutionAction::AcceptUln,
        ExceptionStatus::Resolved,
        outcome,
        result_uln.clone(),
        note,
    );
    decision.faults = Vec::new();
    decision
        .reasons
        .push(format!("ULN {result_uln} accepted on review"));
    decision.detail = serde_json::json!({ "action": "accept_uln", "uln": wanted }).to_string();
    Ok(decision)
}

async fn correct(
    shared: &Shared,
    call: &Call,
    job: &Job,
    exception: &StoredException,
    version: LrbVersion,
    corrections: Vec<(String, String)>,
    note: String,
) -> Result<ExceptionDecision, BatchError> {
    let headings = convert::value_headings(job);
    let mut values = exception.record.values.clone();
    let mut violations = Vec::new();
    for (index, (heading, value)) in corrections.iter().enumerate() {
        match headings.iter().position(|h| h == heading) {
            Some(column) if column < values.len() => values[column] = value.clone(),
            _ => violations.push(FieldViolation::new(
                format!("correct_and_rerun.corrections[{index}].heading"),
                format!("`{heading}` is not a learner column of this job's file"),
            )),
        }
    }
    if corrections.is_empty() {
        violations.push(FieldViolation::new(
            "correct_and_rerun.corrections",
            "give at least one column to correct",
        ));
    }
    if !violations.is_empty() {
        return Err(BatchError::InvalidArgument(violations));
    }

    let row = exception.record.row;
    let check = check_learner(version, row as u64, &values, shared.clock.today());
    let corrected: Vec<&str> = corrections.iter().map(|(h, _)| h.as_str()).collect();
    let detail =
        serde_json::json!({ "action": "correct_and_rerun", "columns": corrected }).to_string();
    let mut decision = base_decision(
        exception,
        call,
        ResolutionAction::CorrectAndRerun,
        ExceptionStatus::Open,
        Outcome::IncorrectFormat,
        String::new(),
        note,
    );
    decision.values = Some(values);
    decision.detail = detail;
    decision.reasons = vec!["corrected on review and run again".to_owned()];
    decision.faults = check.faults.clone();

    let Some(valid) = check.learner else {
        decision.outcome = decisive_outcome(&check.faults).unwrap_or(Outcome::IncorrectFormat);
        decision.reasons.extend(
            check
                .faults
                .iter()
                .map(|f| format!("{}: {}", f.column, f.reason)),
        );
        return Ok(decision);
    };

    let chunk = ClaimedChunk {
        job: job.clone(),
        chunk_number: -1,
        attempts: 1,
        records: Vec::new(),
    };
    let results = shared.processor.find_set(&chunk, &[(row, valid)]).await?;
    let Some(result) = results.into_iter().next() else {
        return Err(BatchError::LearnersRefused("no match result".to_owned()));
    };
    decision.outcome = result.outcome;
    decision.result_uln = result.result_uln;
    decision.reasons.extend(result.reasons);
    match result.exception {
        Some(raised) => decision.candidates = Some(raised.candidates),
        None => decision.status = ExceptionStatus::Resolved,
    }
    Ok(decision)
}
