//! The audit log's records of management actions.

use chrono::{DateTime, Utc};
use uuid::Uuid;

/// A management action that is audited.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AuditAction {
    /// CreateOrganisation.
    CreateOrganisation,
    /// UpdateOrganisation.
    UpdateOrganisation,
    /// CreateUser.
    CreateUser,
    /// UpdateUser.
    UpdateUser,
    /// DisableUser.
    DisableUser,
    /// EnableUser.
    EnableUser,
    /// ResetPassword.
    ResetPassword,
    /// ChangePassword by the user.
    ChangePassword,
    /// CreateClientCredential.
    CreateClientCredential,
    /// RevokeClientCredential.
    RevokeClientCredential,
    /// A service credential's secret replaced at start-up.
    RotateServiceCredential,
    /// ImportProviderList.
    ImportProviderList,
    /// ImportAwardingOrganisationList.
    ImportAwardingOrganisationList,
    /// An account locked after failed sign-ins.
    SignInLocked,
}

impl AuditAction {
    /// The stored UPPER_SNAKE name.
    pub fn name(self) -> &'static str {
        match self {
            AuditAction::CreateOrganisation => "CREATE_ORGANISATION",
            AuditAction::UpdateOrganisation => "UPDATE_ORGANISATION",
            AuditAction::CreateUser => "CREATE_USER",
            AuditAction::UpdateUser => "UPDATE_USER",
            AuditAction::DisableUser => "DISABLE_USER",
            AuditAction::EnableUser => "ENABLE_USER",
            AuditAction::ResetPassword => "RESET_PASSWORD",
            AuditAction::ChangePassword => "CHANGE_PASSWORD",
            AuditAction::CreateClientCredential => "CREATE_CLIENT_CREDENTIAL",
            AuditAction::RevokeClientCredential => "REVOKE_CLIENT_CREDENTIAL",
            AuditAction::RotateServiceCredential => "ROTATE_SERVICE_CREDENTIAL",
            AuditAction::ImportProviderList => "IMPORT_PROVIDER_LIST",
            AuditAction::ImportAwardingOrganisationList => "IMPORT_AWARDING_ORGANISATION_LIST",
            AuditAction::SignInLocked => "SIGN_IN_LOCKED",
        }
    }
}

/// How an audited action ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AuditOutcome {
    /// Carried out.
    Succeeded,
    /// Refused (permission, validation or conflict).
    Refused,
}

impl AuditOutcome {
    /// The stored name.
    pub fn name(self) -> &'static str {
        match self {
            AuditOutcome::Succeeded => "SUCCEEDED",
            AuditOutcome::Refused => "REFUSED",
        }
    }

    /// The outcome with the stored name `name`.
    pub fn from_name(name: &str) -> Option<Self> {
        [Self::Succeeded, Self::Refused]
            .into_iter()
            .find(|outcome| outcome.name() == name)
    }
}

/// Who acted: a user, a client, a service, or the service itself at start-up.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Actor {
    /// The user id, client id or service name; empty for the service itself.
    pub id: String,
    /// The actor's organisation.
    pub organisation_id: Option<Uuid>,
}

/// One entry of the audit log. The detail never holds a secret or a learner's personal
/// details.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AuditRecord {
    /// Its id.
    pub id: Uuid,
    /// When it happened.
    pub time: DateTime<Utc>,
    /// Who acted.
    pub actor: Actor,
    /// What was done.
    pub action: String,
    /// What was acted on: `user/<id>`, `organisation/<id>`, `client/<id>`, `list/<file>`.
    pub target: String,
    /// The organisation acted on, for filtering; `None` when none.
    pub target_organisation_id: Option<Uuid>,
    /// How it ended.
    pub outcome: AuditOutcome,
    /// A short description.
    pub detail: String,
    /// The request id of the call.
    pub request_id: String,
}

impl AuditRecord {
    /// A record of `action` on `target` by `actor` at `time`.
    pub fn new(
        actor: Actor,
        action: AuditAction,
        target: impl Into<String>,
        time: DateTime<Utc>,
        request_id: &str,
    ) -> Self {
        Self {
            id: Uuid::new_v4(),
            time,
            actor,
            action: action.name().to_owned(),
            target: target.into(),
            target_organisation_id: None,
            outcome: AuditOutcome::Succeeded,
            detail: String::new(),
            request_id: request_id.to_owned(),
        }
    }

    /// The same record, about the organisation `organisation_id`.
    pub fn on_organisation(mut self, organisation_id: Option<Uuid>) -> Self {
        self.target_organisation_id = organisation_id;
        self
    }

    /// The same record with `detail`.
    pub fn with_detail(mut self, detail: impl Into<String>) -> Self {
        self.detail = detail.into();
        self
    }

    /// The same record, refused.
    pub fn refused(mut self, why: impl Into<String>) -> Self {
        self.outcome = AuditOutcome::Refused;
        self.detail = why.into();
        self
    }
}

/// An audit record as listed, with its position in the log.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AuditEvent {
    /// Position in the log: higher is newer.
    pub sequence: i64,
    /// The record.
    pub record: AuditRecord,
}

/// The target text of a user.
pub fn user_target(id: Uuid) -> String {
    format!("user/{id}")
}

/// The target text of an organisation.
pub fn organisation_target(id: Uuid) -> String {
    format!("organisation/{id}")
}

/// The target text of a machine credential.
pub fn client_target(id: Uuid) -> String {
    format!("client/{id}")
}
