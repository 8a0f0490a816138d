//! The learner service's one error enum and what each variant means to a caller.

use lrs_server::auth::AuthError;
use lrs_server::error::{Failure, FieldViolation, ToFailure};
use lrs_store::GroupCommitError;

use crate::domain::merge::MergeRefusal;
use crate::store::StoreError;

/// Everything that can make a learner RPC fail.
#[derive(Debug, thiserror::Error)]
pub enum LearnerError {
    /// The caller is not authenticated or its roles do not allow the call.
    #[error(transparent)]
    Auth(#[from] AuthError),
    /// Fields that break their rules, every one listed.
    #[error("{} fields are not valid", .0.len())]
    Invalid(Vec<FieldViolation>),
    /// The call needs an organisation and the caller has none.
    #[error("this call is made for an organisation, and the caller belongs to none")]
    OrganisationRequired,
    /// No recent search by the organisation for these keys found no exact match.
    #[error(
        "register only after a demographic search by your organisation for the same five keys \
         within the last {minutes} minutes that found no exact match"
    )]
    SearchRequired {
        /// The search validity, in minutes.
        minutes: u64,
    },
    /// The latest search for these keys found the learner exactly.
    #[error("the latest search for these details found the learner: use that ULN")]
    SearchFoundLearner,
    /// A learner with the same five keys is registered.
    #[error("a learner with the same five keys is already registered, with ULN {uln}")]
    AlreadyRegistered {
        /// That learner's ULN (the master's, when linked).
        uln: String,
    },
    /// The version given is not the current one.
    #[error("the learner has changed since it was read: read it again and reapply the change")]
    VersionConflict,
    /// No learner has the ULN.
    #[error("no learner has ULN {uln}")]
    NotFound {
        /// The ULN.
        uln: String,
    },
    /// An update of a linked ULN.
    #[error("ULN {uln} is linked to master {master}: update the master")]
    Linked {
        /// The linked ULN.
        uln: String,
        /// Its master.
        master: String,
    },
    /// A stored opt-out may change only to notice seen.
    #[error(
        "a learner who opted out may only move to ability to share NOTICE_SEEN, which records \
         that you have given them the current privacy notice"
    )]
    AbilityToShareChangeRefused,
    /// A merge or unmerge that the rules refuse.
    #[error("{}", merge_message(.0))]
    Merge(MergeRefusal),
    /// No free ULN was found after several tries (the index clashed every time).
    #[error("no unused ULN could be allocated")]
    UlnAllocation,
    /// The storage failed.
    #[error("storage failed: {0}")]
    Store(#[from] StoreError),
    /// The search could not be recorded.
    #[error("recording the search failed: {0}")]
    SearchLog(#[from] GroupCommitError<StoreError>),
}

fn merge_message(refusal: &MergeRefusal) -> &'static str {
    match refusal {
        MergeRefusal::SameLearner => "a learner cannot be merged into itself",
        MergeRefusal::MasterIsLinked => {
            "the master is itself linked to another learner: merge into that master"
        }
        MergeRefusal::LinkedElsewhere => {
            "the duplicate is linked to another master: unmerge it first"
        }
        MergeRefusal::NotLinked => "the learner is not linked to a master",
    }
}

impl LearnerError {
    /// One invalid field.
    pub fn invalid(field: impl Into<String>, description: impl Into<String>) -> Self {
        LearnerError::Invalid(vec![FieldViolation::new(field, description)])
    }
}

impl ToFailure for LearnerError {
    fn to_failure(self) -> Failure {
        let message = self.to_string();
        match self {
            LearnerError::Auth(error) => error.to_failure(),
            LearnerError::Invalid(violations) => Failure::invalid_argument(violations),
            LearnerError::OrganisationRequired => {
                Failure::permission_denied("ORGANISATION_REQUIRED", message)
            }
            LearnerError::SearchRequired { .. } | LearnerError::SearchFoundLearner => {
                Failure::failed_precondition("SEARCH_REQUIRED", message)
            }
            LearnerError::AlreadyRegistered { .. } => {
                Failure::already_exists("LEARNER_ALREADY_REGISTERED", message)
            }
            LearnerError::VersionConflict => Failure::aborted("VERSION_CONFLICT", message),
            LearnerError::NotFound { .. } => Failure::not_found("LEARNER_NOT_FOUND", message),
            LearnerError::Linked { .. } => Failure::failed_precondition("LEARNER_LINKED", message),
            LearnerError::AbilityToShareChangeRefused => {
                Failure::failed_precondition("ABILITY_TO_SHARE_CHANGE_REFUSED", message)
            }
            LearnerError::Merge(refusal) => {
                let reason = match refusal {
                    MergeRefusal::SameLearner => "SAME_LEARNER",
                    MergeRefusal::MasterIsLinked => "MASTER_IS_LINKED",
                    MergeRefusal::LinkedElsewhere => "LEARNER_LINKED_ELSEWHERE",
                    MergeRefusal::NotLinked => "LEARNER_NOT_LINKED",
                };
                Failure::failed_precondition(reason, message)
            }
            LearnerError::UlnAllocation => Failure::internal(message),
            LearnerError::Store(error) if error.is_pool_exhausted() => Failure::busy(),
            LearnerError::SearchLog(GroupCommitError::Write(error))
                if error.is_pool_exhausted() =>
            {
                Failure::busy()
            }
            LearnerError::Store(error) => Failure::internal(error),
            LearnerError::SearchLog(error) => Failure::internal(error),
        }
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use lrs_server::error::status_reason;
    use tonic::Code;
    use tonic_types::StatusExt;

    use super::*;

    #[test]
    fn a_pool_with_no_free_connection_answers_busy_with_a_wait_not_internal() {
        let busy = [
            LearnerError::Store(StoreError::Database(sqlx::Error::PoolTimedOut)),
            LearnerError::SearchLog(GroupCommitError::Write(Arc::new(StoreError::Database(
                sqlx::Error::PoolTimedOut,
            )))),
        ];
        for error in busy {
            let status = error.to_failure().into_status("learner.lrs", "req-1");
            assert_eq!(status.code(), Code::Unavailable, "{status:?}");
            assert_eq!(status_reason(&status).as_deref(), Some("SERVICE_BUSY"));
            let retry = status.get_error_details().retry_info().cloned();
            assert!(retry.and_then(|r| r.retry_delay).is_some());
        }

        let broken = LearnerError::Store(StoreError::Database(sqlx::Error::PoolClosed));
        let status = broken.to_failure().into_status("learner.lrs", "req-2");
        assert_eq!(status.code(), Code::Internal);
    }
}
