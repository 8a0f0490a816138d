//! Jobs: what they do and where they are in their life.

/// What a job does with its file. The numbers are those of `lrs.batch.v1.JobType`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum JobType {
    /// LRB file, `FUL`: find each learner, register those not found.
    FindAndRegister,
    /// LRB file, `CHK`: find each learner, register none.
    FindOnly,
    /// AO verification file: verify each ULN.
    Verification,
}

impl JobType {
    /// The stored code (the proto number).
    pub fn code(self) -> i16 {
        match self {
            JobType::FindAndRegister => 1,
            JobType::FindOnly => 2,
            JobType::Verification => 3,
        }
    }

    /// The job type stored as `code`.
    pub fn from_code(code: i16) -> Option<JobType> {
        [
            JobType::FindAndRegister,
            JobType::FindOnly,
            JobType::Verification,
        ]
        .into_iter()
        .find(|t| t.code() == code)
    }

    /// The file kind the job reads.
    pub fn file_kind(self) -> super::layout::FileKind {
        match self {
            JobType::FindAndRegister | JobType::FindOnly => super::layout::FileKind::Learner,
            JobType::Verification => super::layout::FileKind::Verification,
        }
    }
}

/// Where a job is. Only the states after the upload are visible to callers; an upload in
/// progress is stored as [`JobStatus::Uploading`] and becomes a job, in one transaction, when
/// the whole file has been read and accepted.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum JobStatus {
    /// The file is still arriving; not a job yet, invisible.
    Uploading,
    /// Stored, waiting for a worker.
    Queued,
    /// Records are being processed.
    Processing,
    /// Every record has a result.
    Completed,
    /// Processing hit a fault it cannot recover from.
    Failed,
    /// Cancelled by a user.
    Cancelled,
}

impl JobStatus {
    /// The stored code: the proto number, and 0 for an upload in progress.
    pub fn code(self) -> i16 {
        match self {
            JobStatus::Uploading => 0,
            JobStatus::Queued => 1,
            JobStatus::Processing => 3,
            JobStatus::Completed => 4,
            JobStatus::Failed => 5,
            JobStatus::Cancelled => 6,
        }
    }

    /// The status stored as `code`.
    pub fn from_code(code: i16) -> Option<JobStatus> {
        [
            JobStatus::Uploading,
            JobStatus::Queued,
            JobStatus::Processing,
            JobStatus::Completed,
            JobStatus::Failed,
            JobStatus::Cancelled,
        ]
        .into_iter()
        .find(|s| s.code() == code)
    }

    /// Whether the status is final.
    pub fn is_final(self) -> bool {
        matches!(
            self,
            JobStatus::Completed | JobStatus::Failed | JobStatus::Cancelled
        )
    }
}
