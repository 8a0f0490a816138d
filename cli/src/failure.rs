//! What can go wrong in a command, and how it is shown to the person who ran it.

use std::io;
use std::path::PathBuf;

use tonic::Status;
use tonic_types::StatusExt;

/// Why a command failed. [`report`] prints it; `main` then exits non-zero.
#[derive(Debug, thiserror::Error)]
pub enum CliError {
    /// The endpoint is not a URL tonic can connect to.
    #[error("the endpoint `{endpoint}` is not a valid URL (e.g. http://127.0.0.1:50051): {source}")]
    InvalidEndpoint {
        /// The endpoint as given.
        endpoint: String,
        /// What is wrong with it.
        #[source]
        source: tonic::transport::Error,
    },
    /// The endpoint is not an `http://` URL (no scheme, or one the client does not know).
    #[error("the endpoint `{endpoint}` is not an http:// URL (e.g. http://127.0.0.1:50051)")]
    EndpointScheme {
        /// The endpoint as given.
        endpoint: String,
    },
    /// The endpoint asks for TLS, which the client does not speak.
    #[error(
        "the endpoint `{endpoint}` asks for TLS, which the client does not speak: it reaches the \
         gateway over plain HTTP/2 (http://), and TLS is expected to end in front of the gateway"
    )]
    TlsEndpoint {
        /// The endpoint as given.
        endpoint: String,
    },
    /// Nothing answered at the endpoint.
    #[error("cannot reach the suite at {endpoint}: {source} (is `lrs up` running?)")]
    Connect {
        /// The endpoint tried.
        endpoint: String,
        /// The transport's error.
        #[source]
        source: tonic::transport::Error,
    },
    /// The suite answered with an error status; [`report`] prints its details.
    #[error("{}", .0.message())]
    Rpc(Box<Status>),
    /// No saved sign-in for this endpoint.
    #[error("not signed in to {endpoint}: run `lrs login`")]
    NotSignedIn {
        /// The endpoint the command was meant for.
        endpoint: String,
    },
    /// The saved sign-in can no longer be refreshed.
    #[error("the sign-in to {endpoint} has expired: run `lrs login` again")]
    SessionExpired {
        /// The endpoint of the saved sign-in.
        endpoint: String,
    },
    /// The saved access token cannot be sent as metadata (the file was edited by hand).
    #[error("the saved access token is not valid: run `lrs login` again")]
    UnusableToken,
    /// Neither `LRS_SESSION_FILE` nor a home folder says where the session file lives.
    #[error("cannot tell where to keep the session: set LRS_SESSION_FILE or HOME")]
    NoSessionLocation,
    /// The session file could not be read, written or removed.
    #[error("session file {}: {source}", path.display())]
    SessionFile {
        /// The session file.
        path: PathBuf,
        /// The I/O error.
        #[source]
        source: io::Error,
    },
    /// The session file is not what `lrs login` writes.
    #[error("session file {} is damaged ({source}): run `lrs login` again", path.display())]
    SessionFormat {
        /// The session file.
        path: PathBuf,
        /// The parse error.
        #[source]
        source: serde_json::Error,
    },
    /// Reading from the terminal or standard input failed.
    #[error("cannot read the {what}: {source}")]
    ReadInput {
        /// What was being read (`password`).
        what: &'static str,
        /// The I/O error.
        #[source]
        source: io::Error,
    },
    /// An answer that is needed was empty.
    #[error("no {what} given")]
    EmptyInput {
        /// What was missing (`username`).
        what: &'static str,
    },
    /// The new password and its confirmation differ.
    #[error("the new password and its confirmation differ")]
    PasswordMismatch,
    /// Standard output could not be written (closed early, full disk).
    #[error("cannot write the result: {0}")]
    Stdout(#[source] io::Error),
    /// A result could not be written as JSON.
    #[error("cannot write the result as JSON: {0}")]
    Json(#[source] serde_json::Error),
    /// Starting or running the suite or a service failed (`up`, `serve`, `migrate`).
    #[error("{}", chain(.0))]
    Start(anyhow::Error),
}

/// An error and its causes, `: `-separated, leaving out a cause whose text the message before
/// it already ends with (most errors here name their cause in their own message).
fn chain(error: &anyhow::Error) -> String {
    let mut text = String::new();
    for cause in error.chain() {
        let cause = cause.to_string();
        if text.ends_with(&cause) {
            continue;
        }
        if !text.is_empty() {
            text.push_str(": ");
        }
        text.push_str(&cause);
    }
    text
}

impl From<Status> for CliError {
    fn from(status: Status) -> Self {
        Self::Rpc(Box::new(status))
    }
}

/// Prints `error` to standard error; for a status also its code, reason, every bad field,
/// the wait before a retry and the request id, as the suite sent them.
pub fn report(error: &CliError) {
    eprintln!("error: {error}");
    if let CliError::Rpc(status) = error {
        for line in status_lines(status) {
            eprintln!("  {line}");
        }
    }
}

/// The details of a status, one line each.
pub fn status_lines(status: &Status) -> Vec<String> {
    let details = status.get_error_details();
    let mut lines = vec![format!("code: {}", code_name(status.code()))];

    if let Some(info) = details.error_info() {
        lines.push(format!("reason: {} ({})", info.reason, info.domain));
    }
    if let Some(bad_request) = details.bad_request() {
        for violation in &bad_request.field_violations {
            lines.push(format!(
                "field {}: {}",
                violation.field, violation.description
            ));
        }
    }
    if let Some(wait) = details.retry_info().and_then(|retry| retry.retry_delay) {
        lines.push(format!("retry after: {} s", wait.as_secs()));
    }
    if let Some(request) = details
        .request_info()
        .filter(|request| !request.request_id.is_empty())
    {
        lines.push(format!("request id: {}", request.request_id));
    }
    lines
}

/// The canonical upper-case name of a gRPC code (`PERMISSION_DENIED`).
pub fn code_name(code: tonic::Code) -> &'static str {
    use tonic::Code;
    match code {
        Code::Ok => "OK",
        Code::Cancelled => "CANCELLED",
        Code::Unknown => "UNKNOWN",
        Code::InvalidArgument => "INVALID_ARGUMENT",
        Code::DeadlineExceeded => "DEADLINE_EXCEEDED",
        Code::NotFound => "NOT_FOUND",
        Code::AlreadyExists => "ALREADY_EXISTS",
        Code::PermissionDenied => "PERMISSION_DENIED",
        Code::ResourceExhausted => "RESOURCE_EXHAUSTED",
        Code::FailedPrecondition => "FAILED_PRECONDITION",
        Code::Aborted => "ABORTED",
        Code::OutOfRange => "OUT_OF_RANGE",
        Code::Unimplemented => "UNIMPLEMENTED",
        Code::Internal => "INTERNAL",
        Code::Unavailable => "UNAVAILABLE",
        Code::DataLoss => "DATA_LOSS",
        Code::Unauthenticated => "UNAUTHENTICATED",
    }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use tonic::Code;
    use tonic_types::{ErrorDetails, FieldViolation};

    use super::*;

    #[derive(Debug, thiserror::Error)]
    #[error("cannot listen on 127.0.0.1:1: {0}")]
    struct Bind(#[source] io::Error);

    #[test]
    fn a_cause_already_named_is_not_repeated() {
        let in_use = io::Error::new(io::ErrorKind::AddrInUse, "Address already in use");
        let error = CliError::Start(anyhow::Error::new(Bind(in_use)));
        assert_eq!(
            error.to_string(),
            "cannot listen on 127.0.0.1:1: Address already in use"
        );

        let wrapped = anyhow::anyhow!("disk full").context("writing the output");
        let error = CliError::Start(wrapped);
        assert_eq!(error.to_string(), "writing the output: disk full");
    }

    #[test]
    fn status_lines_show_reason_fields_wait_and_request_id() {
        let mut details = ErrorDetails::new();
        details.set_error_info(
            "ACCOUNT_LOCKED",
            "identity.lrs",
            std::collections::HashMap::new(),
        );
        details.set_bad_request(vec![
            FieldViolation::new("user.username", "must be 3 to 64 characters"),
            FieldViolation::new("user.roles", "at least one role"),
        ]);
        details.set_retry_info(Some(Duration::from_secs(900)));
        details.set_request_info("req-7", "");
        let status = Status::with_error_details(Code::Unauthenticated, "locked", details);

        let lines = status_lines(&status);

        assert_eq!(
            lines,
            [
                "code: UNAUTHENTICATED",
                "reason: ACCOUNT_LOCKED (identity.lrs)",
                "field user.username: must be 3 to 64 characters",
                "field user.roles: at least one role",
                "retry after: 900 s",
                "request id: req-7",
            ]
        );
    }

    #[test]
    fn a_bare_status_shows_its_code() {
        let status = Status::unavailable("down");
        assert_eq!(status_lines(&status), ["code: UNAVAILABLE"]);
    }
}
