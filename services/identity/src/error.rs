//! The identity service's errors and what each means to a caller.

use std::time::Duration;

use lrs_server::error::{Failure, FieldViolation, ToFailure};

use crate::keys::KeyError;
use crate::store::StoreError;

/// Why an identity call failed.
#[derive(Debug, thiserror::Error)]
pub enum IdentityError {
    /// Fields out of their rules; all of them.
    #[error("{} fields are not valid", .0.len())]
    InvalidArgument(Vec<FieldViolation>),
    /// Unknown user or wrong password (the two are not told apart).
    #[error("the username or password is not correct")]
    InvalidCredentials,
    /// Too many failed sign-ins in a row.
    #[error("the account is locked after failed sign-ins; try again later")]
    AccountLocked {
        /// How long the lock still lasts.
        wait: Duration,
    },
    /// The user is disabled.
    #[error("the account is disabled: ask your organisation's admin")]
    AccountDisabled,
    /// The user's organisation is suspended or closed.
    #[error("the organisation is not active: contact the service desk")]
    OrganisationInactive,
    /// An unknown, expired, used or revoked refresh token.
    #[error("the refresh token is not valid: sign in again")]
    InvalidRefreshToken,
    /// An unknown or revoked client, or a wrong secret.
    #[error("the client id or secret is not valid")]
    InvalidClient,
    /// The caller's roles do not allow the action.
    #[error("{0}")]
    PermissionDenied(&'static str),
    /// The caller is not a person (ChangePassword).
    #[error("only a signed-in person can change a password")]
    NotAPerson,
    /// No such organisation, or not visible to the caller.
    #[error("organisation not found")]
    OrganisationNotFound,
    /// No such user, or not visible to the caller.
    #[error("user not found")]
    UserNotFound,
    /// No such credential, or not visible to the caller.
    #[error("client credential not found")]
    CredentialNotFound,
    /// Another organisation has the UKPRN.
    #[error("an organisation with this UKPRN exists already")]
    UkprnTaken,
    /// Another organisation has the reference.
    #[error("an organisation with this organisation reference exists already")]
    OrganisationReferenceTaken,
    /// Another user has the username.
    #[error("the username is taken")]
    UsernameTaken,
    /// The service already has a credential in force.
    #[error("the service already has a credential: revoke it first")]
    ServiceCredentialTaken,
    /// The version given is not the stored one.
    #[error("the record changed since it was read: read it again and retry")]
    VersionConflict,
    /// The change would leave the organisation without an active admin.
    #[error("the organisation's last active admin cannot lose the role or be disabled")]
    LastAdmin,
    /// An uploaded file over the size limit.
    #[error("the file is larger than {limit} bytes")]
    FileTooLarge {
        /// The limit in bytes.
        limit: u64,
    },
    /// The storage failed.
    #[error("storage failed: {0}")]
    Store(#[source] StoreError),
    /// The signing keys failed.
    #[error("signing keys failed: {0}")]
    Keys(#[from] KeyError),
    /// Password hashing failed, or its blocking task.
    #[error("password hashing failed: {0}")]
    Hashing(String),
    /// A blocking task (parsing an upload) failed.
    #[error("a background task failed: {0}")]
    Task(String),
}

impl From<StoreError> for IdentityError {
    fn from(error: StoreError) -> Self {
        match error {
            StoreError::UkprnTaken => IdentityError::UkprnTaken,
            StoreError::OrganisationReferenceTaken => IdentityError::OrganisationReferenceTaken,
            StoreError::UsernameTaken => IdentityError::UsernameTaken,
            StoreError::ServiceCredentialTaken => IdentityError::ServiceCredentialTaken,
            StoreError::VersionConflict => IdentityError::VersionConflict,
            StoreError::LastAdmin => IdentityError::LastAdmin,
            other @ (StoreError::Database(_)
            | StoreError::IdempotencyRace
            | StoreError::NotFound
            | StoreError::Corrupt(_)) => IdentityError::Store(other),
        }
    }
}

impl From<Vec<FieldViolation>> for IdentityError {
    fn from(violations: Vec<FieldViolation>) -> Self {
        IdentityError::InvalidArgument(violations)
    }
}

impl IdentityError {
    /// True for faults of the service (not the caller's doing), which are not audited as
    /// refusals.
    pub fn is_internal(&self) -> bool {
        matches!(
            self,
            IdentityError::Store(_)
                | IdentityError::Keys(_)
                | IdentityError::Hashing(_)
                | IdentityError::Task(_)
        )
    }

    /// The stable reason, for the audit log's detail.
    pub fn reason(&self) -> &'static str {
        match self {
            IdentityError::InvalidArgument(_) => "INVALID_ARGUMENT",
            IdentityError::PermissionDenied(_) | IdentityError::NotAPerson => "ROLE_NOT_PERMITTED",
            IdentityError::OrganisationNotFound => "ORGANISATION_NOT_FOUND",
            IdentityError::UserNotFound => "USER_NOT_FOUND",
            IdentityError::CredentialNotFound => "CLIENT_NOT_FOUND",
            IdentityError::UkprnTaken => "UKPRN_TAKEN",
            IdentityError::OrganisationReferenceTaken => "ORGANISATION_REFERENCE_TAKEN",
            IdentityError::UsernameTaken => "USERNAME_TAKEN",
            IdentityError::ServiceCredentialTaken => "SERVICE_CREDENTIAL_TAKEN",
            IdentityError::VersionConflict => "VERSION_CONFLICT",
            IdentityError::LastAdmin => "LAST_ADMIN",
            IdentityError::FileTooLarge { .. } => "FILE_TOO_LARGE",
            IdentityError::InvalidCredentials => "INVALID_CREDENTIALS",
            IdentityError::AccountLocked { .. } => "ACCOUNT_LOCKED",
            IdentityError::AccountDisabled => "ACCOUNT_DISABLED",
            IdentityError::OrganisationInactive => "ORGANISATION_INACTIVE",
            IdentityError::InvalidRefreshToken => "INVALID_REFRESH_TOKEN",
            IdentityError::InvalidClient => "INVALID_CLIENT",
            IdentityError::Store(_)
            | IdentityError::Keys(_)
            | IdentityError::Hashing(_)
            | IdentityError::Task(_) => "INTERNAL",
        }
    }
}

impl ToFailure for IdentityError {
    fn to_failure(self) -> Failure {
        let reason = self.reason();
        let message = self.to_string();
        match self {
            IdentityError::InvalidArgument(violations) => Failure::invalid_argument(violations),
            IdentityError::InvalidCredentials
            | IdentityError::AccountDisabled
            | IdentityError::OrganisationInactive
            | IdentityError::InvalidRefreshToken
            | IdentityError::InvalidClient => Failure::unauthenticated(reason, message),
            IdentityError::AccountLocked { wait } => {
                Failure::unauthenticated(reason, message).retry_after(wait)
            }
            IdentityError::PermissionDenied(_) | IdentityError::NotAPerson => {
                Failure::permission_denied(reason, message)
            }
            IdentityError::OrganisationNotFound
            | IdentityError::UserNotFound
            | IdentityError::CredentialNotFound => Failure::not_found(reason, message),
            IdentityError::UkprnTaken
            | IdentityError::OrganisationReferenceTaken
            | IdentityError::UsernameTaken
            | IdentityError::ServiceCredentialTaken => Failure::already_exists(reason, message),
            IdentityError::VersionConflict => Failure::aborted(reason, message),
            IdentityError::LastAdmin => Failure::failed_precondition(reason, message),
            IdentityError::FileTooLarge { .. } => Failure::resource_exhausted(reason, message),
            IdentityError::Store(StoreError::Database(error))
                if lrs_store::is_pool_exhausted(&error) =>
            {
                Failure::busy()
            }
            IdentityError::Store(error) => Failure::internal(error),
            IdentityError::Keys(error) => Failure::internal(error),
            IdentityError::Hashing(error) | IdentityError::Task(error) => Failure::internal(error),
        }
    }
}
