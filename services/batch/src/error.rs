//! The batch service's one error enum and what each variant means to a caller.

use lrs_server::auth::AuthError;
use lrs_server::error::{Failure, FieldViolation, ToFailure};

use crate::learners::LearnerCallError;
use crate::store::StoreError;

/// Everything a batch call can fail with.
#[derive(Debug, thiserror::Error)]
pub enum BatchError {
    /// The caller is not authenticated or not allowed.
    #[error(transparent)]
    Auth(#[from] AuthError),
    /// Fields of the request break their rules; every one is listed.
    #[error("the request has invalid fields")]
    InvalidArgument(Vec<FieldViolation>),
    /// The file has file-level faults; every one is listed (field `file` or `row <n>`).
    #[error("the file was rejected")]
    FileRejected(Vec<FieldViolation>),
    /// The file is larger than the byte limit.
    #[error("the file is larger than {limit} bytes, the most one file may be")]
    FileTooLarge {
        /// The limit.
        limit: u64,
    },
    /// The file holds more records than the limit.
    #[error("the file holds more than {limit} records, the most one file may hold; split it")]
    TooManyRecords {
        /// The limit.
        limit: u64,
    },
    /// The upload stream broke off.
    #[error("the upload was interrupted: {0}")]
    UploadInterrupted(String),
    /// No such job, or not the caller's to see.
    #[error("no such job")]
    JobNotFound,
    /// No such exception, or not the caller's to see.
    #[error("no such exception")]
    ExceptionNotFound,
    /// Output asked for before the job finished.
    #[error("the job has not finished; its output is ready when it is COMPLETED or CANCELLED")]
    JobNotFinished,
    /// Output asked for of a failed job.
    #[error("the job failed and has no output; see its failure message")]
    JobFailed,
    /// A finished job cannot be cancelled.
    #[error("the job has already finished")]
    JobAlreadyFinished,
    /// The exception was decided already.
    #[error("the exception is no longer open")]
    ExceptionNotOpen,
    /// Registering is not allowed for this exception.
    #[error("{0}")]
    RegistrationNotAllowed(String),
    /// The ULN accepted neither is a candidate nor verifies against the record.
    #[error(
        "the ULN is not one of the candidates and does not verify against the record's names and date of birth"
    )]
    UlnDoesNotMatchRecord,
    /// Registering would duplicate a learner on the register.
    #[error(
        "a learner with the same five keys is registered already (ULN {0}); accept that learner instead"
    )]
    LearnerAlreadyRegistered(String),
    /// The file's job type is not handled by this version.
    #[error("{0}")]
    JobTypeNotSupported(String),
    /// The service is stopping; an open watch ends.
    #[error(
        "the batch service is stopping; the job carries on when it is back: watch it again then"
    )]
    Stopping,
    /// The learner service is down.
    #[error("the learner service is unavailable; try again shortly")]
    LearnersUnavailable(String),
    /// The learner service refused a call the batch service made.
    #[error("the learner service refused a call: {0}")]
    LearnersRefused(String),
    /// The store failed.
    #[error(transparent)]
    Store(#[from] StoreError),
    /// A task of the service failed.
    #[error("internal fault: {0}")]
    Internal(String),
}

impl From<LearnerCallError> for BatchError {
    fn from(error: LearnerCallError) -> Self {
        match error {
            LearnerCallError::Unavailable(reason) => BatchError::LearnersUnavailable(reason),
            LearnerCallError::Refused(reason) => BatchError::LearnersRefused(reason),
        }
    }
}

impl BatchError {
    /// One bad field.
    pub fn field(field: &str, description: impl Into<String>) -> BatchError {
        BatchError::InvalidArgument(vec![FieldViolation::new(field, description)])
    }
}

impl ToFailure for BatchError {
    fn to_failure(self) -> Failure {
        let message = self.to_string();
        match self {
            BatchError::Auth(error) => error.to_failure(),
            BatchError::InvalidArgument(violations) | BatchError::FileRejected(violations) => {
                Failure::invalid_argument(violations)
            }
            BatchError::FileTooLarge { .. } => {
                Failure::resource_exhausted("FILE_TOO_LARGE", message)
            }
            BatchError::TooManyRecords { .. } => {
                Failure::resource_exhausted("TOO_MANY_RECORDS", message)
            }
            BatchError::UploadInterrupted(_) => Failure::aborted("UPLOAD_INTERRUPTED", message),
            BatchError::JobNotFound => Failure::not_found("JOB_NOT_FOUND", message),
            BatchError::ExceptionNotFound => Failure::not_found("EXCEPTION_NOT_FOUND", message),
            BatchError::JobNotFinished => Failure::failed_precondition("JOB_NOT_FINISHED", message),
            BatchError::JobFailed => Failure::failed_precondition("JOB_FAILED", message),
            BatchError::JobAlreadyFinished => {
                Failure::failed_precondition("JOB_ALREADY_FINISHED", message)
            }
            BatchError::ExceptionNotOpen => {
                Failure::failed_precondition("EXCEPTION_NOT_OPEN", message)
            }
            BatchError::RegistrationNotAllowed(_) => {
                Failure::failed_precondition("REGISTRATION_NOT_ALLOWED", message)
            }
            BatchError::UlnDoesNotMatchRecord => {
                Failure::failed_precondition("ULN_DOES_NOT_MATCH_RECORD", message)
            }
            BatchError::LearnerAlreadyRegistered(_) => {
                Failure::already_exists("LEARNER_ALREADY_REGISTERED", message)
            }
            BatchError::JobTypeNotSupported(_) => {
                Failure::failed_precondition("JOB_TYPE_NOT_SUPPORTED", message)
            }
            BatchError::LearnersUnavailable(_) => {
                Failure::unavailable("LEARNER_SERVICE_UNAVAILABLE", message)
            }
            BatchError::Stopping => Failure::unavailable("SERVICE_STOPPING", message),
            BatchError::Store(error) if error.is_pool_exhausted() => Failure::busy(),
            BatchError::LearnersRefused(_) | BatchError::Store(_) | BatchError::Internal(_) => {
                Failure::internal(self)
            }
        }
    }
}
