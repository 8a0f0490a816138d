//! The gRPC adapter: takes each request apart, turns it into domain values, checks the
//! caller, acts through the store and answers; every error becomes a status through the
//! call's gate, and refused management actions are written to the audit log.

mod audit;
mod convert;
mod credentials;
mod lists;
mod organisations;
mod session;
mod users;

use std::fmt;
use std::sync::Arc;

use lrs_proto::identity::v1 as pb;
use lrs_proto::identity::v1::identity_service_server::IdentityService;
use lrs_server::call::{Call, CallGate};
use tonic::{Request, Response, Status, Streaming};
use uuid::Uuid;

use crate::config::Settings;
use crate::domain::audit::{Actor, AuditAction, AuditRecord};
use crate::domain::permissions::caller_organisation;
use crate::domain::{FieldViolation, password};
use crate::error::IdentityError;
use crate::keys::KeyRing;
use crate::store::IdentityStore;
use lrs_fields::Clock;

/// The `ErrorInfo` domain of identity's errors.
pub const ERROR_DOMAIN: &str = "identity.lrs";

/// The identity service's gRPC handlers.
#[derive(Clone)]
pub struct IdentityGrpc {
    gate: CallGate,
    store: Arc<dyn IdentityStore>,
    keys: Arc<KeyRing>,
    clock: Arc<dyn Clock>,
    settings: Arc<Settings>,
}

impl fmt::Debug for IdentityGrpc {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("IdentityGrpc")
            .field("gate", &self.gate)
            .field("store", &self.store)
            .finish_non_exhaustive()
    }
}

impl IdentityGrpc {
    /// Handlers over `store`, signing with `keys`, opening calls through `gate`.
    pub fn new(
        gate: CallGate,
        store: Arc<dyn IdentityStore>,
        keys: Arc<KeyRing>,
        clock: Arc<dyn Clock>,
        settings: Arc<Settings>,
    ) -> Self {
        Self {
            gate,
            store,
            keys,
            clock,
            settings,
        }
    }

    /// An audit record of `action` on `target` by the caller, now.
    fn audit(&self, call: &Call, action: AuditAction, target: impl Into<String>) -> AuditRecord {
        let actor = Actor {
            id: call.caller.subject().to_owned(),
            organisation_id: caller_organisation(&call.caller),
        };
        AuditRecord::new(
            actor,
            action,
            target,
            crate::now(&self.clock),
            &call.request_id,
        )
    }

    /// The status for `error`, after recording `record` as refused unless the error is a
    /// fault of the service.
    async fn refuse(&self, call: &Call, record: AuditRecord, error: IdentityError) -> Status {
        if !error.is_internal() {
            let record = record.refused(error.reason());
            if let Err(audit_error) = self.store.record_audit(&record).await {
                tracing::warn!(
                    request_id = %call.request_id,
                    error = %audit_error,
                    "could not record a refused action"
                );
            }
        }
        call.fail(error)
    }
}

/// Parses a required id field, naming it on failure.
fn parse_id(field: &str, value: &str) -> Result<Uuid, IdentityError> {
    crate::domain::fields::uuid(value)
        .map_err(|error| vec![FieldViolation::new(field, error.to_string())].into())
}

/// Hashes a password on a blocking thread (argon2 is slow on purpose).
async fn hash_password(password: String) -> Result<String, IdentityError> {
    tokio::task::spawn_blocking(move || password::hash(&password))
        .await
        .map_err(|error| IdentityError::Hashing(error.to_string()))?
        .map_err(|error| IdentityError::Hashing(error.to_string()))
}

/// Checks a password against a hash on a blocking thread.
async fn verify_password(password: String, hash: String) -> Result<bool, IdentityError> {
    tokio::task::spawn_blocking(move || password::verify(&password, &hash))
        .await
        .map_err(|error| IdentityError::Hashing(error.to_string()))
}

/// The paths of an update mask, each one of `allowed`; empty means all of them.
fn mask_paths(
    mask: Option<prost_types::FieldMask>,
    allowed: &[&'static str],
) -> Result<Vec<&'static str>, IdentityError> {
    let paths = mask.map(|mask| mask.paths).unwrap_or_default();
    if paths.is_empty() {
        return Ok(allowed.to_vec());
    }
    let mut chosen = Vec::new();
    let mut violations = Vec::new();
    for path in &paths {
        match allowed.iter().find(|known| *known == path) {
            Some(known) => chosen.push(*known),
            None => violations.push(FieldViolation::new(
                "update_mask",
                format!(
                    "`{path}` cannot be updated; allowed: {}",
                    allowed.join(", ")
                ),
            )),
        }
    }
    if violations.is_empty() {
        Ok(chosen)
    } else {
        Err(violations.into())
    }
}

#[tonic::async_trait]
impl IdentityService for IdentityGrpc {
    async fn sign_in(
        &self,
        request: Request<pb::SignInRequest>,
    ) -> Result<Response<pb::SignInResponse>, Status> {
        session::sign_in(self, request).await
    }

    async fn refresh_token(
        &self,
        request: Request<pb::RefreshTokenRequest>,
    ) -> Result<Response<pb::RefreshTokenResponse>, Status> {
        session::refresh_token(self, request).await
    }

    async fn sign_out(
        &self,
        request: Request<pb::SignOutRequest>,
    ) -> Result<Response<pb::SignOutResponse>, Status> {
        session::sign_out(self, request).await
    }

    async fn change_password(
        &self,
        request: Request<pb::ChangePasswordRequest>,
    ) -> Result<Response<pb::ChangePasswordResponse>, Status> {
        session::change_password(self, request).await
    }

    async fn issue_client_token(
        &self,
        request: Request<pb::IssueClientTokenRequest>,
    ) -> Result<Response<pb::IssueClientTokenResponse>, Status> {
        session::issue_client_token(self, request).await
    }

    async fn get_signing_keys(
        &self,
        request: Request<pb::GetSigningKeysRequest>,
    ) -> Result<Response<pb::GetSigningKeysResponse>, Status> {
        session::get_signing_keys(self, request).await
    }

    async fn create_organisation(
        &self,
        request: Request<pb::CreateOrganisationRequest>,
    ) -> Result<Response<pb::CreateOrganisationResponse>, Status> {
        organisations::create(self, request).await
    }

    async fn get_organisation(
        &self,
        request: Request<pb::GetOrganisationRequest>,
    ) -> Result<Response<pb::GetOrganisationResponse>, Status> {
        organisations::get(self, request).await
    }

    async fn list_organisations(
        &self,
        request: Request<pb::ListOrganisationsRequest>,
    ) -> Result<Response<pb::ListOrganisationsResponse>, Status> {
        organisations::list(self, request).await
    }

    async fn update_organisation(
        &self,
        request: Request<pb::UpdateOrganisationRequest>,
    ) -> Result<Response<pb::UpdateOrganisationResponse>, Status> {
        organisations::update(self, request).await
    }

    async fn create_user(
        &self,
        request: Request<pb::CreateUserRequest>,
    ) -> Result<Response<pb::CreateUserResponse>, Status> {
        users::create(self, request).await
    }

    async fn get_user(
        &self,
        request: Request<pb::GetUserRequest>,
    ) -> Result<Response<pb::GetUserResponse>, Status> {
        users::get(self, request).await
    }

    async fn list_users(
        &self,
        request: Request<pb::ListUsersRequest>,
    ) -> Result<Response<pb::ListUsersResponse>, Status> {
        users::list(self, request).await
    }

    async fn update_user(
        &self,
        request: Request<pb::UpdateUserRequest>,
    ) -> Result<Response<pb::UpdateUserResponse>, Status> {
        users::update(self, request).await
    }

    async fn disable_user(
        &self,
        request: Request<pb::DisableUserRequest>,
    ) -> Result<Response<pb::DisableUserResponse>, Status> {
        users::disable(self, request).await
    }

    async fn enable_user(
        &self,
        request: Request<pb::EnableUserRequest>,
    ) -> Result<Response<pb::EnableUserResponse>, Status> {
        users::enable(self, request).await
    }

    async fn reset_password(
        &self,
        request: Request<pb::ResetPasswordRequest>,
    ) -> Result<Response<pb::ResetPasswordResponse>, Status> {
        users::reset_password(self, request).await
    }

    async fn create_client_credential(
        &self,
        request: Request<pb::CreateClientCredentialRequest>,
    ) -> Result<Response<pb::CreateClientCredentialResponse>, Status> {
        credentials::create(self, request).await
    }

    async fn list_client_credentials(
        &self,
        request: Request<pb::ListClientCredentialsRequest>,
    ) -> Result<Response<pb::ListClientCredentialsResponse>, Status> {
        credentials::list(self, request).await
    }

    async fn revoke_client_credential(
        &self,
        request: Request<pb::RevokeClientCredentialRequest>,
    ) -> Result<Response<pb::RevokeClientCredentialResponse>, Status> {
        credentials::revoke(self, request).await
    }

    async fn import_provider_list(
        &self,
        request: Request<Streaming<pb::ImportProviderListRequest>>,
    ) -> Result<Response<pb::ImportProviderListResponse>, Status> {
        lists::import_providers(self, request).await
    }

    async fn import_awarding_organisation_list(
        &self,
        request: Request<Streaming<pb::ImportAwardingOrganisationListRequest>>,
    ) -> Result<Response<pb::ImportAwardingOrganisationListResponse>, Status> {
        lists::import_awarding_organisations(self, request).await
    }

    async fn list_providers(
        &self,
        request: Request<pb::ListProvidersRequest>,
    ) -> Result<Response<pb::ListProvidersResponse>, Status> {
        lists::list_providers(self, request).await
    }

    async fn list_awarding_organisations(
        &self,
        request: Request<pb::ListAwardingOrganisationsRequest>,
    ) -> Result<Response<pb::ListAwardingOrganisationsResponse>, Status> {
        lists::list_awarding_organisations(self, request).await
    }

    async fn list_audit_events(
        &self,
        request: Request<pb::ListAuditEventsRequest>,
    ) -> Result<Response<pb::ListAuditEventsResponse>, Status> {
        audit::list(self, request).await
    }
}
