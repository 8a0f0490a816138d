//! Domain and stored values into their messages.

use chrono::{DateTime, Utc};
use lrs_proto::batch::v1 as pb;

use crate::domain::job::{JobStatus, JobType};
use crate::domain::layout::LRB_HEADER_COLUMNS;
use crate::domain::outcome::{Outcome, RecordFault};
use crate::domain::parser::{FileFault, FileFaultKind};
use crate::store::{
    ExceptionStatus, Job, JobCounts, ResolutionAction, StoredException, StoredRecord,
};
use crate::worker::decode_candidates;

pub(crate) fn timestamp(time: DateTime<Utc>) -> prost_types::Timestamp {
    prost_types::Timestamp {
        seconds: time.timestamp(),
        nanos: time.timestamp_subsec_nanos() as i32,
    }
}

pub(crate) fn job_type(job_type: JobType) -> pb::JobType {
    match job_type {
        JobType::FindAndRegister => pb::JobType::LearnerFindAndRegister,
        JobType::FindOnly => pb::JobType::LearnerFindOnly,
        JobType::Verification => pb::JobType::Verification,
    }
}

pub(crate) fn job_status(status: JobStatus) -> pb::JobStatus {
    match status {
        JobStatus::Uploading | JobStatus::Queued => pb::JobStatus::Queued,
        JobStatus::Processing => pb::JobStatus::Processing,
        JobStatus::Completed => pb::JobStatus::Completed,
        JobStatus::Failed => pb::JobStatus::Failed,
        JobStatus::Cancelled => pb::JobStatus::Cancelled,
    }
}

pub(crate) fn outcome(outcome: Outcome) -> pb::RecordOutcome {
    pb::RecordOutcome::try_from(i32::from(outcome.code())).unwrap_or(pb::RecordOutcome::Unspecified)
}

pub(crate) fn job(job: &Job, counts: &JobCounts) -> pb::BatchJob {
    let rejected = [
        Outcome::InsufficientData,
        Outcome::IncorrectFormat,
        Outcome::IncorrectIdentifier,
        Outcome::AgeOutOfRange,
    ]
    .into_iter()
    .map(|o| counts.of(o))
    .sum();
    pb::BatchJob {
        job_id: job.job_id.to_string(),
        job_type: job_type(job.job_type) as i32,
        file_name: job.file_name.clone(),
        file_version: job.file_version.clone(),
        file_size_bytes: job.file_size_bytes,
        organisation_id: job.organisation_id.clone(),
        ukprn: job.ukprn.clone(),
        created_by: job.created_by.clone(),
        status: job_status(job.status) as i32,
        counts: Some(pb::BatchJobCounts {
            total: job.total_records,
            processed: counts.processed(),
            new_ulns: counts.of(Outcome::NewUln),
            found: counts.of(Outcome::Found),
            linked_master: counts.of(Outcome::LinkedMaster),
            possible_matches: counts.of(Outcome::PossibleMatch),
            too_many_matches: counts.of(Outcome::TooManyMatches),
            not_found: counts.of(Outcome::NotFound),
            rejected,
            duplicates: counts.of(Outcome::DuplicateInFile),
            verified: counts.of(Outcome::Verified),
            not_verified: counts.of(Outcome::NotVerified),
            achievements_applied: 0,
            achievements_refused: 0,
        }),
        open_exception_count: counts.open_exceptions,
        file_faults: Vec::new(),
        expected_headings: Vec::new(),
        failure_message: job.failure_message.clone(),
        create_time: Some(timestamp(job.create_time)),
        start_time: job.start_time.map(timestamp),
        end_time: job.end_time.map(timestamp),
        update_time: Some(timestamp(job.update_time)),
    }
}

pub(crate) fn file_fault_kind(kind: FileFaultKind) -> pb::FileFaultKind {
    match kind {
        FileFaultKind::FileName => pb::FileFaultKind::FileName,
        FileFaultKind::Extension => pb::FileFaultKind::Extension,
        FileFaultKind::Encoding => pb::FileFaultKind::Encoding,
        FileFaultKind::Headings => pb::FileFaultKind::Headings,
        FileFaultKind::FileVersion => pb::FileFaultKind::FileVersion,
        FileFaultKind::HeaderValue => pb::FileFaultKind::HeaderValue,
        FileFaultKind::Ukprn => pb::FileFaultKind::Ukprn,
        FileFaultKind::RecordCount => pb::FileFaultKind::RecordCount,
        FileFaultKind::Empty => pb::FileFaultKind::Empty,
        FileFaultKind::TooManyRecords => pb::FileFaultKind::TooManyRecords,
        FileFaultKind::ColumnCount => pb::FileFaultKind::ColumnCount,
        FileFaultKind::LineTooLong => pb::FileFaultKind::LineTooLong,
    }
}

pub(crate) fn file_fault(fault: &FileFault) -> pb::FileFault {
    pb::FileFault {
        kind: file_fault_kind(fault.kind) as i32,
        row: fault.row as i64,
        column: fault.column.clone(),
        message: fault.message.clone(),
    }
}

pub(crate) fn record_fault(fault: &RecordFault) -> pb::RecordFault {
    let decided = fault.outcome();
    pb::RecordFault {
        row: fault.row as i64,
        column: fault.column.clone(),
        value: fault.value.clone(),
        reason: fault.reason.clone(),
        outcome: outcome(decided) as i32,
        return_code: decided.return_code().unwrap_or("").to_owned(),
    }
}

/// The headings of a job's record values (LRB: without the four header columns).
pub(crate) fn value_headings(job: &Job) -> &[String] {
    match job.job_type {
        JobType::FindAndRegister | JobType::FindOnly => {
            job.headings.get(LRB_HEADER_COLUMNS..).unwrap_or(&[])
        }
        JobType::Verification => &job.headings,
    }
}

pub(crate) fn record(record: &StoredRecord) -> pb::RecordResult {
    let found = record.outcome.unwrap_or(Outcome::IncorrectFormat);
    pb::RecordResult {
        row: record.row,
        mis_identifier: record.mis_identifier.clone(),
        outcome: outcome(found) as i32,
        return_code: found.return_code().unwrap_or("").to_owned(),
        result_uln: record.result_uln.clone(),
        duplicate_of_row: record.duplicate_of_row.unwrap_or(0),
        faults: record.faults.iter().map(record_fault).collect(),
        reasons: record.reasons.clone(),
        values: record.values.clone(),
        exception_id: record
            .exception_id
            .map(|id| id.to_string())
            .unwrap_or_default(),
    }
}

fn exception_status(status: ExceptionStatus) -> pb::ExceptionStatus {
    match status {
        ExceptionStatus::Open => pb::ExceptionStatus::Open,
        ExceptionStatus::Resolved => pb::ExceptionStatus::Resolved,
        ExceptionStatus::Rejected => pb::ExceptionStatus::Rejected,
    }
}

fn resolution_action(action: ResolutionAction) -> pb::ResolutionAction {
    match action {
        ResolutionAction::AcceptUln => pb::ResolutionAction::AcceptUln,
        ResolutionAction::RegisterNew => pb::ResolutionAction::RegisterNew,
        ResolutionAction::CorrectAndRerun => pb::ResolutionAction::CorrectAndRerun,
        ResolutionAction::Reject => pb::ResolutionAction::Reject,
    }
}

pub(crate) fn exception(found: &StoredException, headings: &[String]) -> pb::BatchException {
    let current = found.record.outcome.unwrap_or(Outcome::IncorrectFormat);
    pb::BatchException {
        exception_id: found.exception_id.to_string(),
        job_id: found.job_id.to_string(),
        row: found.record.row,
        mis_identifier: found.record.mis_identifier.clone(),
        outcome: outcome(current) as i32,
        return_code: current.return_code().unwrap_or("").to_owned(),
        fields: headings
            .iter()
            .zip(&found.record.values)
            .map(|(heading, value)| pb::BatchField {
                heading: heading.clone(),
                value: value.clone(),
            })
            .collect(),
        faults: found.record.faults.iter().map(record_fault).collect(),
        candidates: decode_candidates(&found.candidates),
        status: exception_status(found.status) as i32,
        resolution: found.resolution.as_ref().map(|resolution| pb::Resolution {
            action: resolution_action(resolution.action) as i32,
            result_uln: resolution.result_uln.clone(),
            note: resolution.note.clone(),
            resolved_by: resolution.resolved_by.clone(),
            resolve_time: Some(timestamp(resolution.resolve_time)),
        }),
        create_time: Some(timestamp(found.create_time)),
        update_time: Some(timestamp(found.update_time)),
    }
}
