//! The context of one call: who is calling and under which request id, and how its errors
//! become a status for this service.

use tonic::{Request, Status};

use crate::auth::{self, ActingFor, Authenticator, Caller, PrincipalKind};
use crate::error::ToFailure;

/// Opens calls for one service: authenticates them and turns their errors into statuses that
/// carry the service's `ErrorInfo` domain.
#[derive(Debug, Clone)]
pub struct CallGate {
    authenticator: Authenticator,
    domain: &'static str,
}

impl CallGate {
    /// A gate for the service whose error domain is `domain` (`learner.lrs`).
    pub fn new(authenticator: Authenticator, domain: &'static str) -> Self {
        Self {
            authenticator,
            domain,
        }
    }

    /// The authenticator, for callers that verify tokens themselves.
    pub fn authenticator(&self) -> &Authenticator {
        &self.authenticator
    }

    /// Opens an authenticated call; a missing or bad token is the status to return.
    pub async fn enter<T>(&self, request: &Request<T>) -> Result<Call, Status> {
        let anonymous = self.enter_anonymous(request);
        match self.authenticator.caller(request.metadata()).await {
            Ok(caller) => Ok(anonymous.with_caller(caller)),
            Err(error) => Err(anonymous.fail(error)),
        }
    }

    /// Opens an authenticated call that also accepts the restricted token of a user who must
    /// change their password (ChangePassword only).
    pub async fn enter_allowing_password_change<T>(
        &self,
        request: &Request<T>,
    ) -> Result<Call, Status> {
        let anonymous = self.enter_anonymous(request);
        let metadata = request.metadata();
        match self
            .authenticator
            .caller_allowing_password_change(metadata)
            .await
        {
            Ok(caller) => Ok(anonymous.with_caller(caller)),
            Err(error) => Err(anonymous.fail(error)),
        }
    }

    /// Opens a call that needs no token (sign-in, key publication).
    pub fn enter_anonymous<T>(&self, request: &Request<T>) -> AnonymousCall {
        AnonymousCall {
            request_id: auth::request_id(request.metadata()).to_owned(),
            domain: self.domain,
        }
    }
}

/// A call that carries no verified caller.
#[derive(Debug, Clone)]
pub struct AnonymousCall {
    /// The call's request id.
    pub request_id: String,
    domain: &'static str,
}

impl AnonymousCall {
    /// Turns a service error into this call's status.
    pub fn fail(&self, error: impl ToFailure) -> Status {
        error
            .to_failure()
            .into_status(self.domain, &self.request_id)
    }

    /// A request to another service carrying this call's request id.
    pub fn outbound<T>(&self, message: T) -> Request<T> {
        crate::client::outbound(message, &self.request_id, None)
    }

    fn with_caller(self, caller: Caller) -> Call {
        Call {
            caller,
            request_id: self.request_id,
            domain: self.domain,
        }
    }
}

/// An authenticated call.
#[derive(Debug, Clone)]
pub struct Call {
    /// Who is calling.
    pub caller: Caller,
    /// The call's request id.
    pub request_id: String,
    domain: &'static str,
}

impl Call {
    /// Turns a service error into this call's status.
    pub fn fail(&self, error: impl ToFailure) -> Status {
        error
            .to_failure()
            .into_status(self.domain, &self.request_id)
    }

    /// Whom work done for this call acts for in other services: the organisation and user a
    /// calling service named, else the caller's own organisation (and the caller, when a
    /// person). `None` for callers without an organisation (learners, services on their own
    /// behalf).
    pub fn acting_for(&self) -> Option<ActingFor> {
        if let Some(acting) = &self.caller.acting_for {
            return Some(acting.clone());
        }
        if self.caller.claims.kind == PrincipalKind::Service {
            return None;
        }
        let organisation_id = self.caller.organisation_id()?.to_owned();
        let user_id = match self.caller.claims.kind {
            PrincipalKind::User => Some(self.caller.subject().to_owned()),
            PrincipalKind::Learner | PrincipalKind::Client | PrincipalKind::Service => None,
        };
        Some(ActingFor {
            organisation_id,
            user_id,
        })
    }

    /// A request to another service carrying this call's request id and whom it acts for.
    pub fn outbound<T>(&self, message: T) -> Request<T> {
        crate::client::outbound(message, &self.request_id, self.acting_for().as_ref())
    }
}
