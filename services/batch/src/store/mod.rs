//! The batch service's storage: the [`BatchStore`] trait and its PostgreSQL and SQLite
//! implementations, which share their SQL (`sql.rs`) and differ in pools, in how a chunk is
//! claimed (row locks with `FOR UPDATE SKIP LOCKED` on PostgreSQL, a compare-and-set update
//! through the single writer connection on SQLite) and in column types.
//!
//! An upload is a job in the hidden status `Uploading` while its records arrive, one
//! transaction per chunk of records; [`BatchStore::finish_upload`] makes it a job in one
//! transaction, and [`BatchStore::abandon_upload`] (or the sweep of stale uploads) removes
//! a broken one with everything it stored.

use std::collections::HashMap;
use std::fmt;

use async_trait::async_trait;
use chrono::{DateTime, NaiveDate, Utc};
use uuid::Uuid;

use crate::domain::job::{JobStatus, JobType};
use crate::domain::outcome::{Outcome, RecordFault};

#[cfg(test)]
pub(crate) mod conformance;
mod postgres;
mod sql;
mod sqlite;

pub use postgres::PostgresBatchStore;
pub use sqlite::SqliteBatchStore;

/// What can go wrong in the store.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    /// The database failed.
    #[error("database error: {0}")]
    Database(#[from] sqlx::Error),
    /// A stored value this version cannot read.
    #[error("a stored {what} cannot be read: {value}")]
    Corrupt {
        /// Which value.
        what: &'static str,
        /// What was found.
        value: String,
    },
}

impl StoreError {
    /// True when no database connection came free in time ([`lrs_store::is_pool_exhausted`]).
    pub fn is_pool_exhausted(&self) -> bool {
        matches!(self, StoreError::Database(error) if lrs_store::is_pool_exhausted(error))
    }
}

/// An upload about to start.
#[derive(Debug, Clone)]
pub struct NewUpload {
    /// The job id it becomes.
    pub job_id: Uuid,
    /// The uploader's organisation.
    pub organisation_id: String,
    /// The uploader's UKPRN (empty when it has none).
    pub ukprn: String,
    /// The user or client that uploads.
    pub created_by: String,
    /// The user that work for the job acts for, when a person uploaded it.
    pub acting_user_id: Option<String>,
    /// What the job does.
    pub job_type: JobType,
    /// The file's name.
    pub file_name: String,
    /// The date the record checks used (today in Europe/London at upload).
    pub validation_date: NaiveDate,
    /// Now.
    pub now: DateTime<Utc>,
}

/// A record to store.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NewRecord {
    /// The row, 1 being the headings.
    pub row: i64,
    /// The `MISIdentifier`.
    pub mis_identifier: String,
    /// The values in the layout's order.
    pub values: Vec<String>,
    /// The outcome known at upload (rejected or duplicate); `None` when it waits for a worker.
    pub outcome: Option<Outcome>,
    /// For a duplicate, the earlier row.
    pub duplicate_of_row: Option<i64>,
    /// The record's faults.
    pub faults: Vec<RecordFault>,
    /// The reasons the output gives.
    pub reasons: Vec<String>,
    /// The exception raised for a rejected record (LRB files), so that it can be corrected.
    pub exception_id: Option<Uuid>,
}

/// What the end of an upload records.
#[derive(Debug, Clone)]
pub struct UploadFinish {
    /// The LRB version (`2A`, `3A`), empty for other files.
    pub file_version: String,
    /// The file's headings.
    pub headings: Vec<String>,
    /// The values of the header columns (LRB row 2, columns 1 to 4).
    pub header_values: Vec<String>,
    /// The records stored.
    pub total_records: i64,
    /// The file's size.
    pub file_size_bytes: i64,
    /// The idempotency key of the upload.
    pub request_id: Option<String>,
    /// Now.
    pub now: DateTime<Utc>,
}

/// What finishing an upload did.
#[derive(Debug, Clone)]
pub enum FinishOutcome {
    /// The job was created.
    Created(Job),
    /// A job with the same idempotency key already exists; the upload was removed.
    Existing(Job),
}

/// A job as stored.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Job {
    /// Its id.
    pub job_id: Uuid,
    /// The uploader's organisation.
    pub organisation_id: String,
    /// The uploader's UKPRN.
    pub ukprn: String,
    /// Who uploaded it.
    pub created_by: String,
    /// The user work for it acts for.
    pub acting_user_id: Option<String>,
    /// What it does.
    pub job_type: JobType,
    /// Where it is.
    pub status: JobStatus,
    /// The file's name.
    pub file_name: String,
    /// The LRB version.
    pub file_version: String,
    /// The file's size.
    pub file_size_bytes: i64,
    /// The file's headings.
    pub headings: Vec<String>,
    /// The header values.
    pub header_values: Vec<String>,
    /// The date the checks used.
    pub validation_date: NaiveDate,
    /// The records in the file.
    pub total_records: i64,
    /// Set when processing failed.
    pub failure_message: String,
    /// When submitted.
    pub create_time: DateTime<Utc>,
    /// When a worker started.
    pub start_time: Option<DateTime<Utc>>,
    /// When it reached a final status.
    pub end_time: Option<DateTime<Utc>>,
    /// When it last changed.
    pub update_time: DateTime<Utc>,
}

/// A job's record counts.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct JobCounts {
    /// Records by outcome (processed records only).
    pub by_outcome: HashMap<Outcome, i64>,
    /// Open exceptions.
    pub open_exceptions: i64,
}

impl JobCounts {
    /// Records with a result.
    pub fn processed(&self) -> i64 {
        self.by_outcome.values().sum()
    }

    /// Records with `outcome`.
    pub fn of(&self, outcome: Outcome) -> i64 {
        self.by_outcome.get(&outcome).copied().unwrap_or(0)
    }
}

/// Which jobs to list.
#[derive(Debug, Clone, Default)]
pub struct JobFilter {
    /// Only this organisation's; `None` for all.
    pub organisation_id: Option<String>,
    /// Only this type.
    pub job_type: Option<JobType>,
    /// Only this status.
    pub status: Option<JobStatus>,
    /// Start after this job (newest first): its create time and id.
    pub after: Option<(DateTime<Utc>, Uuid)>,
    /// The most to return.
    pub limit: i64,
}

/// A record as stored.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StoredRecord {
    /// The row.
    pub row: i64,
    /// The `MISIdentifier`.
    pub mis_identifier: String,
    /// The values (after any correction).
    pub values: Vec<String>,
    /// The outcome; `None` while waiting.
    pub outcome: Option<Outcome>,
    /// The result ULN; empty when none.
    pub result_uln: String,
    /// For a duplicate, the earlier row.
    pub duplicate_of_row: Option<i64>,
    /// The faults.
    pub faults: Vec<RecordFault>,
    /// The reasons.
    pub reasons: Vec<String>,
    /// The exception raised for it.
    pub exception_id: Option<Uuid>,
}

/// A chunk claimed by a worker, with its records still waiting.
#[derive(Debug, Clone)]
pub struct ClaimedChunk {
    /// The job.
    pub job: Job,
    /// The chunk.
    pub chunk_number: i64,
    /// How many times it has been claimed, this time included.
    pub attempts: i32,
    /// The records of the chunk without an outcome, in row order.
    pub records: Vec<StoredRecord>,
}

/// An exception to raise with a record's result.
#[derive(Debug, Clone)]
pub struct NewException {
    /// Its id.
    pub exception_id: Uuid,
    /// The candidates, encoded by the caller.
    pub candidates: Vec<u8>,
}

/// A record's result, written by a worker.
#[derive(Debug, Clone)]
pub struct RecordResult {
    /// The row.
    pub row: i64,
    /// The outcome.
    pub outcome: Outcome,
    /// The ULN; empty when none.
    pub result_uln: String,
    /// The reasons.
    pub reasons: Vec<String>,
    /// The exception to raise, for possible and too many matches.
    pub exception: Option<NewException>,
}

/// A chunk's results, written in one transaction.
#[derive(Debug, Clone)]
pub struct ChunkResults {
    /// The job.
    pub job_id: Uuid,
    /// The chunk.
    pub chunk_number: i64,
    /// The worker that holds the lease.
    pub owner: String,
    /// The results.
    pub results: Vec<RecordResult>,
    /// Now.
    pub now: DateTime<Utc>,
}

/// Whether an exception still needs a decision. Numbers as `lrs.batch.v1.ExceptionStatus`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum ExceptionStatus {
    /// Waiting.
    Open,
    /// Decided with a ULN.
    Resolved,
    /// Rejected.
    Rejected,
}

impl ExceptionStatus {
    /// The stored code.
    pub fn code(self) -> i16 {
        match self {
            ExceptionStatus::Open => 1,
            ExceptionStatus::Resolved => 2,
            ExceptionStatus::Rejected => 3,
        }
    }

    /// The status stored as `code`.
    pub fn from_code(code: i16) -> Option<ExceptionStatus> {
        [
            ExceptionStatus::Open,
            ExceptionStatus::Resolved,
            ExceptionStatus::Rejected,
        ]
        .into_iter()
        .find(|s| s.code() == code)
    }
}

/// How an exception was decided. Numbers as `lrs.batch.v1.ResolutionAction`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum ResolutionAction {
    /// A ULN accepted.
    AcceptUln,
    /// Registered as new.
    RegisterNew,
    /// Corrected and run again.
    CorrectAndRerun,
    /// Rejected.
    Reject,
}

impl ResolutionAction {
    /// The stored code.
    pub fn code(self) -> i16 {
        match self {
            ResolutionAction::AcceptUln => 1,
            ResolutionAction::RegisterNew => 2,
            ResolutionAction::CorrectAndRerun => 3,
            ResolutionAction::Reject => 4,
        }
    }

    /// The action stored as `code`.
    pub fn from_code(code: i16) -> Option<ResolutionAction> {
        [
            ResolutionAction::AcceptUln,
            ResolutionAction::RegisterNew,
            ResolutionAction::CorrectAndRerun,
            ResolutionAction::Reject,
        ]
        .into_iter()
        .find(|a| a.code() == code)
    }
}

/// The decision recorded on an exception.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StoredResolution {
    /// What was done.
    pub action: ResolutionAction,
    /// The ULN after it; empty when rejected.
    pub result_uln: String,
    /// The note or rejection reason.
    pub note: String,
    /// Who decided.
    pub resolved_by: String,
    /// When.
    pub resolve_time: DateTime<Utc>,
}

/// An exception with its record.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StoredException {
    /// Its id.
    pub exception_id: Uuid,
    /// The job.
    pub job_id: Uuid,
    /// The job's organisation.
    pub organisation_id: String,
    /// Whether it is open.
    pub status: ExceptionStatus,
    /// The candidates, as the caller encoded them.
    pub candidates: Vec<u8>,
    /// The decision, once made.
    pub resolution: Option<StoredResolution>,
    /// When raised.
    pub create_time: DateTime<Utc>,
    /// When last changed.
    pub update_time: DateTime<Utc>,
    /// The record.
    pub record: StoredRecord,
}

/// Which exceptions to list.
#[derive(Debug, Clone)]
pub struct ExceptionFilter {
    /// Only this organisation's; `None` for all.
    pub organisation_id: Option<String>,
    /// Only this job's.
    pub job_id: Option<Uuid>,
    /// Only in this status.
    pub status: ExceptionStatus,
    /// Only with this outcome.
    pub outcome: Option<Outcome>,
    /// Start after this exception: its job's create time, its job and its row.
    pub after: Option<(DateTime<Utc>, Uuid, i64)>,
    /// The most to return.
    pub limit: i64,
}

/// A decision on an exception, with the record's result after it.
#[derive(Debug, Clone)]
pub struct ExceptionDecision {
    /// The exception.
    pub exception_id: Uuid,
    /// The deciding caller's organisation (for idempotency keys).
    pub organisation_id: String,
    /// The idempotency key.
    pub request_id: Option<String>,
    /// Who decides.
    pub actor: String,
    /// What is done.
    pub action: ResolutionAction,
    /// The exception's status after the decision (OPEN when a rerun still needs one).
    pub status: ExceptionStatus,
    /// The record's outcome after it.
    pub outcome: Outcome,
    /// The record's ULN after it.
    pub result_uln: String,
    /// The record's reasons after it.
    pub reasons: Vec<String>,
    /// The corrected values, for a rerun.
    pub values: Option<Vec<String>>,
    /// The record's faults after it.
    pub faults: Vec<RecordFault>,
    /// New candidates, for a rerun that is still an exception.
    pub candidates: Option<Vec<u8>>,
    /// The note.
    pub note: String,
    /// What the audit records besides (JSON).
    pub detail: String,
    /// Now.
    pub now: DateTime<Utc>,
}

/// What deciding did.
#[derive(Debug, Clone)]
pub enum DecisionOutcome {
    /// Recorded; the exception after it.
    Applied(StoredException),
    /// The idempotency key was used before: the exception as it is.
    Replayed(StoredException),
    /// The exception is no longer open.
    NotOpen,
    /// No such exception.
    NotFound,
}

/// The batch service's storage.
#[async_trait]
pub trait BatchStore: Send + Sync + fmt::Debug + 'static {
    /// Starts an upload: a hidden job row.
    async fn begin_upload(&self, upload: &NewUpload) -> Result<(), StoreError>;

    /// Stores one chunk of an upload's records in one transaction, with the chunk's lease row
    /// when any record waits for a worker.
    async fn add_records(
        &self,
        job_id: Uuid,
        chunk_number: i64,
        records: &[NewRecord],
    ) -> Result<(), StoreError>;

    /// Makes the upload a queued job in one transaction (completed at once when no record
    /// waits); with an idempotency key already used, removes the upload and answers the
    /// existing job.
    async fn finish_upload(
        &self,
        job_id: Uuid,
        finish: &UploadFinish,
    ) -> Result<FinishOutcome, StoreError>;

    /// Removes an upload and all it stored.
    async fn abandon_upload(&self, job_id: Uuid) -> Result<(), StoreError>;

    /// Removes uploads started before `before` that never finished (their process died).
    async fn sweep_uploads(&self, before: DateTime<Utc>) -> Result<u64, StoreError>;

    /// The job of an organisation with an idempotency key.
    async fn job_by_request(
        &self,
        organisation_id: &str,
        request_id: &str,
    ) -> Result<Option<Job>, StoreError>;

    /// A job (never an upload in progress).
    async fn job(&self, job_id: Uuid) -> Result<Option<Job>, StoreError>;

    /// A job's counts.
    async fn job_counts(&self, job_id: Uuid) -> Result<JobCounts, StoreError>;

    /// Jobs, newest first.
    async fn list_jobs(&self, filter: &JobFilter) -> Result<Vec<Job>, StoreError>;

    /// Cancels an unfinished job: its waiting chunks are dropped. Answers the job after.
    async fn cancel_job(&self, job_id: Uuid, now: DateTime<Utc>)
    -> Result<Option<Job>, StoreError>;

    /// Claims the next chunk, fairly: from the organisation served least recently, its oldest
    /// job, its first waiting chunk; a chunk whose lease expired is taken over.
    async fn claim_chunk(
        &self,
        owner: &str,
        now: DateTime<Utc>,
        lease_until: DateTime<Utc>,
    ) -> Result<Option<ClaimedChunk>, StoreError>;

    /// Writes a chunk's results in one transaction, if the lease is still the owner's; the job
    /// completes when it was its last chunk. Answers false when the lease was lost (nothing
    /// written).
    async fn complete_chunk(&self, results: &ChunkResults) -> Result<bool, StoreError>;

    /// Gives up the leases `owner` holds, so another worker can take them at once.
    async fn release_leases(&self, owner: &str) -> Result<u64, StoreError>;

    /// Records with a result, in row order, after `after_row`.
    async fn records(
        &self,
        job_id: Uuid,
        after_row: i64,
        limit: i64,
    ) -> Result<Vec<StoredRecord>, StoreError>;

    /// An exception with its record.
    async fn exception(&self, exception_id: Uuid) -> Result<Option<StoredException>, StoreError>;

    /// Exceptions in job (newest first) then row order.
    async fn list_exceptions(
        &self,
        filter: &ExceptionFilter,
    ) -> Result<Vec<StoredException>, StoreError>;

    /// Records a decision on an open exception, with the record's new result, the ULN passed
    /// on to duplicates of the record, and the audit, in one transaction.
    async fn decide_exception(
        &self,
        decision: &ExceptionDecision,
    ) -> Result<DecisionOutcome, StoreError>;
}
