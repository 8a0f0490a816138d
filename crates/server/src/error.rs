//! The one mapping from service errors to gRPC status.
//!
//! Each service keeps its own error enum and says, in one exhaustive `match`, what each
//! variant means to a caller by implementing [`ToFailure`]. [`Failure`] then becomes a
//! [`tonic::Status`] with `google.rpc.ErrorInfo` (a stable reason and the service's domain),
//! `google.rpc.BadRequest` listing every bad field, `google.rpc.RetryInfo` where a wait is
//! known, and `google.rpc.RequestInfo` carrying the request id. Internal faults are logged
//! here, once, with the request id; the caller sees only a generic message and that id.

use std::time::Duration;

use tonic::{Code, Status};
use tonic_types::{ErrorDetails, StatusExt};

/// How long [`Failure::busy`] asks a caller to wait before trying again.
const BUSY_RETRY: Duration = Duration::from_millis(200);

/// One field that failed its rules, as `google.rpc.BadRequest.FieldViolation` reports it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FieldViolation {
    /// The request field's path, in proto names (`learner.date_of_birth`).
    pub field: String,
    /// What is wrong, in words a person can act on.
    pub description: String,
}

impl FieldViolation {
    /// A violation of `field` described by `description`.
    pub fn new(field: impl Into<String>, description: impl Into<String>) -> Self {
        Self {
            field: field.into(),
            description: description.into(),
        }
    }
}

/// What a failed call means to the caller: a status code, a stable reason and details.
#[derive(Debug)]
pub struct Failure {
    code: Code,
    reason: &'static str,
    message: String,
    violations: Vec<FieldViolation>,
    retry_after: Option<Duration>,
    internal: Option<Box<dyn std::error::Error + Send + Sync>>,
}

impl Failure {
    fn new(code: Code, reason: &'static str, message: impl Into<String>) -> Self {
        Self {
            code,
            reason,
            message: message.into(),
            violations: Vec::new(),
            retry_after: None,
            internal: None,
        }
    }

    /// `INVALID_ARGUMENT` listing every bad field; reason `INVALID_ARGUMENT`.
    pub fn invalid_argument(violations: Vec<FieldViolation>) -> Self {
        let message = match violations.as_slice() {
            [only] => format!("{}: {}", only.field, only.description),
            many => format!(
                "{} fields are not valid; see the BadRequest details",
                many.len()
            ),
        };
        Self {
            violations,
            ..Self::new(Code::InvalidArgument, "INVALID_ARGUMENT", message)
        }
    }

    /// `NOT_FOUND`: the thing does not exist, or the caller may not know that it does.
    pub fn not_found(reason: &'static str, message: impl Into<String>) -> Self {
        Self::new(Code::NotFound, reason, message)
    }

    /// `ALREADY_EXISTS`: creating it would duplicate something stored.
    pub fn already_exists(reason: &'static str, message: impl Into<String>) -> Self {
        Self::new(Code::AlreadyExists, reason, message)
    }

    /// `ABORTED`: a concurrent change won, typically a stale version.
    pub fn aborted(reason: &'static str, message: impl Into<String>) -> Self {
        Self::new(Code::Aborted, reason, message)
    }

    /// `FAILED_PRECONDITION`: the system is not in the state the call needs.
    pub fn failed_precondition(reason: &'static str, message: impl Into<String>) -> Self {
        Self::new(Code::FailedPrecondition, reason, message)
    }

    /// `PERMISSION_DENIED`: the caller is known but its roles do not allow the call.
    pub fn permission_denied(reason: &'static str, message: impl Into<String>) -> Self {
        Self::new(Code::PermissionDenied, reason, message)
    }

    /// `UNAUTHENTICATED`: no valid credentials.
    pub fn unauthenticated(reason: &'static str, message: impl Into<String>) -> Self {
        Self::new(Code::Unauthenticated, reason, message)
    }

    /// `RESOURCE_EXHAUSTED`: a rate or size limit was reached.
    pub fn resource_exhausted(reason: &'static str, message: impl Into<String>) -> Self {
        Self::new(Code::ResourceExhausted, reason, message)
    }

    /// `UNAVAILABLE`: a dependency is down; the call may succeed if retried.
    pub fn unavailable(reason: &'static str, message: impl Into<String>) -> Self {
        Self::new(Code::Unavailable, reason, message)
    }

    /// `DEADLINE_EXCEEDED`: the work did not finish within the call's deadline.
    pub fn deadline_exceeded(reason: &'static str, message: impl Into<String>) -> Self {
        Self::new(Code::DeadlineExceeded, reason, message)
    }

    /// `UNIMPLEMENTED`: the service or method is not served here.
    pub fn unimplemented(reason: &'static str, message: impl Into<String>) -> Self {
        Self::new(Code::Unimplemented, reason, message)
    }

    /// `UNAVAILABLE` with reason `SERVICE_BUSY` and a retry delay: every database connection
    /// of the service stayed busy for as long as a call may wait for one. The service is
    /// overloaded, not broken; the call may be retried.
    pub fn busy() -> Self {
        Self::unavailable(
            "SERVICE_BUSY",
            "the service is busy: no database connection came free in time; try again shortly",
        )
        .retry_after(BUSY_RETRY)
    }

    /// `INTERNAL`: a fault of the service. The error is logged when the status is built; the
    /// caller sees only a generic message and the request id.
    pub fn internal(error: impl Into<Box<dyn std::error::Error + Send + Sync>>) -> Self {
        Self {
            internal: Some(error.into()),
            ..Self::new(Code::Internal, "INTERNAL", "internal error")
        }
    }

    /// Adds how long the caller should wait before trying again (`google.rpc.RetryInfo`).
    pub fn retry_after(mut self, wait: Duration) -> Self {
        self.retry_after = Some(wait);
        self
    }

    /// The status code.
    pub fn code(&self) -> Code {
        self.code
    }

    /// The stable UPPER_SNAKE reason.
    pub fn reason(&self) -> &'static str {
        self.reason
    }

    /// Builds the status for a service whose `ErrorInfo` domain is `domain`
    /// (`learner.lrs`), naming the request id that the call carried.
    pub fn into_status(self, domain: &str, request_id: &str) -> Status {
        let mut details = ErrorDetails::new();
        details.set_error_info(self.reason, domain, std::collections::HashMap::new());
        details.set_request_info(request_id, "");
        if !self.violations.is_empty() {
            details.set_bad_request(
                self.violations
                    .into_iter()
                    .map(|violation| {
                        tonic_types::FieldViolation::new(violation.field, violation.description)
                    })
                    .collect::<Vec<_>>(),
            );
        }
        if let Some(wait) = self.retry_after {
            details.set_retry_info(Some(wait));
        }

        let message = match self.internal {
            Some(error) => {
                tracing::error!(%domain, %request_id, error = %error, "request failed");
                format!("internal error (request id {request_id})")
            }
            None => self.message,
        };
        Status::with_error_details(self.code, message, details)
    }
}

/// Implemented by each service's error enum: what each variant means to a caller.
pub trait ToFailure {
    /// The failure that this error is. Implement it with an exhaustive `match`.
    fn to_failure(self) -> Failure;
}

impl ToFailure for Failure {
    fn to_failure(self) -> Failure {
        self
    }
}

/// Reads the reason of a status built by [`Failure::into_status`], for clients and tests.
pub fn status_reason(status: &Status) -> Option<String> {
    status
        .get_error_details()
        .error_info()
        .map(|info| info.reason.clone())
}

/// Reads the fields named in a status's `BadRequest`, for clients and tests.
pub fn status_bad_fields(status: &Status) -> Vec<String> {
    status
        .get_error_details()
        .bad_request()
        .map(|bad| {
            bad.field_violations
                .iter()
                .map(|v| v.field.clone())
                .collect()
        })
        .unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn invalid_argument_lists_every_field() {
        let failure = Failure::invalid_argument(vec![
            FieldViolation::new("given_name", "must not be blank"),
            FieldViolation::new("postcode", "is not a UK postcode"),
        ]);
        let status = failure.into_status("learner.lrs", "req-1");

        assert_eq!(status.code(), Code::InvalidArgument);
        assert_eq!(status_reason(&status).as_deref(), Some("INVALID_ARGUMENT"));
        assert_eq!(status_bad_fields(&status), ["given_name", "postcode"]);
        let details = status.get_error_details();
        assert_eq!(
            details.error_info().map(|i| i.domain.as_str()),
            Some("learner.lrs")
        );
        assert_eq!(
            details.request_info().map(|i| i.request_id.as_str()),
            Some("req-1")
        );
    }

    #[test]
    fn internal_faults_hide_their_cause() {
        let cause = std::io::Error::other("disk on fire at /var/lib/secret");
        let status = Failure::internal(cause).into_status("batch.lrs", "req-9");

        assert_eq!(status.code(), Code::Internal);
        assert!(!status.message().contains("disk"));
        assert!(status.message().contains("req-9"));
    }

    #[test]
    fn retry_info_is_carried() {
        let status = Failure::unauthenticated("ACCOUNT_LOCKED", "account locked")
            .retry_after(Duration::from_secs(900))
            .into_status("identity.lrs", "req-2");

        let retry = status.get_error_details().retry_info().cloned();
        assert_eq!(
            retry.and_then(|r| r.retry_delay),
            Some(Duration::from_secs(900))
        );
    }
}
