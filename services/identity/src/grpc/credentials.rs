//! Machine credentials: integrators' clients, created by their organisation's admins, and
//! the suite's own services, created by the service desk.

use chrono::{DateTime, SecondsFormat, Utc};
use lrs_proto::identity::v1 as pb;
use lrs_server::call::Call;
use tonic::{Request, Response, Status};
use uuid::Uuid;

use super::{IdentityGrpc, convert, parse_id};
use crate::domain::audit::{AuditAction, AuditRecord, client_target};
use crate::domain::credential::{self, ClientCredential, CredentialDraft};
use crate::domain::permissions::{Manager, caller_organisation};
use crate::domain::{FieldViolation, fields, paging, roles_to_text};
use crate::error::IdentityError;
use crate::store::{Created, IdempotencyKey};
use crate::tokens::{digest, new_secret};

fn manager(call: &Call) -> Result<Manager, IdentityError> {
    Manager::of(&call.caller).ok_or(IdentityError::PermissionDenied(
        "only organisation admins and the service desk manage client credentials",
    ))
}

/// The organisation a request names, or the caller's own when it names none.
fn organisation_of(call: &Call, field: &str, given: &str) -> Result<Uuid, IdentityError> {
    match given {
        "" => caller_organisation(&call.caller)
            .ok_or_else(|| vec![FieldViolation::new(field, "is required")].into()),
        given => parse_id(field, given),
    }
}

impl IdentityGrpc {
    async fn create_credential_steps(
        &self,
        call: &Call,
        organisation_id: &str,
        draft: CredentialDraft,
        request_id: &str,
        record: AuditRecord,
    ) -> Result<(Created<ClientCredential>, String), IdentityError> {
        let manager = manager(call)?;
        let organisation_id = organisation_of(call, "credential.organisation_id", organisation_id)?;
        if !manager.may_manage(Some(organisation_id)) {
            return Err(IdentityError::PermissionDenied(
                "you may manage only your own organisation's credentials",
            ));
        }
        if !draft.service.is_empty() && manager != Manager::ServiceDesk {
            return Err(IdentityError::PermissionDenied(
                "only the service desk creates service credentials",
            ));
        }
        let organisation = self
            .store
            .organisation(organisation_id)
            .await?
            .ok_or(IdentityError::OrganisationNotFound)?;
        let mut violations = Vec::new();
        let new = credential::validate_new(draft, organisation.kind)
            .map_err(|found| violations.extend(found));
        let request_id = fields::request_id(request_id)
            .map_err(|error| violations.push(FieldViolation::new("request_id", error.to_string())));
        let (Ok(new), Ok(request_id)) = (new, request_id) else {
            return Err(violations.into());
        };

        let secret = new_secret();
        let credential = ClientCredential {
            client_id: Uuid::new_v4(),
            organisation_id,
            display_name: new.display_name,
            roles: new.roles,
            service: new.service,
            created_at: crate::now(&self.clock),
            revoked_at: None,
        };
        let record = AuditRecord {
            target: client_target(credential.client_id),
            ..record
        }
        .on_organisation(Some(organisation_id))
        .with_detail(format!("roles {}", roles_to_text(&credential.roles)));
        let idempotency = request_id.map(|request_id| IdempotencyKey {
            caller: call.caller.subject().to_owned(),
            operation: "CreateClientCredential",
            request_id,
        });
        let created = self
            .store
            .create_credential(&credential, &digest(&secret), idempotency.as_ref(), &record)
            .await?;
        Ok((created, secret))
    }
}

pub(super) async fn create(
    service: &IdentityGrpc,
    request: Request<pb::CreateClientCredentialRequest>,
) -> Result<Response<pb::CreateClientCredentialResponse>, Status> {
    let call = service.gate.enter(&request).await?;
    let pb::CreateClientCredentialRequest {
        credential,
        request_id,
    } = request.into_inner();
    let pb::ClientCredential {
        client_id: _,
        organisation_id,
        display_name,
        roles,
        service: service_name,
        create_time: _,
        revoke_time: _,
    } = credential.unwrap_or_default();
    let draft = CredentialDraft {
        display_name,
        roles: convert::role_choices(&roles),
        service: service_name,
    };
    let record = service.audit(&call, AuditAction::CreateClientCredential, "client/new");

    let outcome = service
        .create_credential_steps(&call, &organisation_id, draft, &request_id, record.clone())
        .await;
    let (credential, client_secret) = match outcome {
        Ok((Created::New(credential), secret)) => {
            tracing::info!(client_id = %credential.client_id, "created client credential");
            (credential, secret)
        }
        Ok((Created::Existing(credential), _)) => (credential, String::new()),
        Err(error) => return Err(service.refuse(&call, record, error).await),
    };

    Ok(Response::new(pb::CreateClientCredentialResponse {
        credential: Some(convert::credential(&credential)),
        client_secret,
    }))
}

fn credential_key(credential: &ClientCredential) -> Vec<String> {
    vec![
        credential
            .created_at
            .to_rfc3339_opts(SecondsFormat::Micros, true),
        credential.client_id.to_string(),
    ]
}

fn parse_credential_key(key: &[String]) -> Option<(DateTime<Utc>, Uuid)> {
    let time = DateTime::parse_from_rfc3339(key.first()?).ok()?;
    let id = Uuid::try_parse(key.get(1)?).ok()?;
    Some((time.with_timezone(&Utc), id))
}

pub(super) async fn list(
    service: &IdentityGrpc,
    request: Request<pb::ListClientCredentialsRequest>,
) -> Result<Response<pb::ListClientCredentialsResponse>, Status> {
    let call = service.gate.enter(&request).await?;
    let pb::ListClientCredentialsRequest {
        page_size,
        page_token,
        organisation_id,
    } = request.into_inner();

    let outcome = async {
        let manager = manager(&call)?;
        let page = paging::page("credentials", 2, page_size, &page_token)?;
        let after = match &page.after {
            Some(key) => Some(parse_credential_key(key).ok_or_else(|| {
                IdentityError::from(vec![FieldViolation::new("page_token", "is not valid")])
            })?),
            None => None,
        };
        let organisation_id = organisation_of(&call, "organisation_id", &organisation_id)?;
        if !manager.may_manage(Some(organisation_id)) {
            return Err(IdentityError::PermissionDenied(
                "you may list only your own organisation's credentials",
            ));
        }

        let found = service
            .store
            .list_credentials(organisation_id, after, page.size + 1)
            .await?;
        Ok(paging::finish(
            "credentials",
            found,
            page.size,
            credential_key,
        ))
    }
    .await;
    let (credentials, next_page_token) = outcome.map_err(|error| call.fail(error))?;

    Ok(Response::new(pb::ListClientCredentialsResponse {
        credentials: credentials.iter().map(convert::credential).collect(),
        next_page_token,
    }))
}

impl IdentityGrpc {
    async fn revoke_credential_steps(
        &self,
        call: &Call,
        client_id: &str,
        record: AuditRecord,
    ) -> Result<ClientCredential, IdentityError> {
        let manager = manager(call)?;
        let client_id = parse_id("client_id", client_id)?;
        let credential = match self.store.credential(client_id).await? {
            Some((credential, _)) if manager.may_manage(Some(credential.organisation_id)) => {
                credential
            }
            _ => return Err(IdentityError::CredentialNotFound),
        };
        if credential.revoked_at.is_some() {
            return Ok(credential);
        }

        let record = AuditRecord {
            target: client_target(client_id),
            ..record
        }
        .on_organisation(Some(credential.organisation_id));
        let revoked = self.store.revoke_credential(client_id, &record).await?;
        tracing::info!(%client_id, "revoked client credential");
        Ok(revoked)
    }
}

pub(super) async fn revoke(
    service: &IdentityGrpc,
    request: Request<pb::RevokeClientCredentialRequest>,
) -> Result<Response<pb::RevokeClientCredentialResponse>, Status> {
    let call = service.gate.enter(&request).await?;
    let pb::RevokeClientCredentialRequest { client_id } = request.into_inner();
    let record = service.audit(
        &call,
        AuditAction::RevokeClientCredential,
        format!("client/{client_id}"),
    );

    let outcome = service
        .revoke_credential_steps(&call, &client_id, record.clone())
        .await;
    let credential = match outcome {
        Ok(credential) => credential,
        Err(error) => return Err(service.refuse(&call, record, error).await),
    };

    Ok(Response::new(pb::RevokeClientCredentialResponse {
        credential: Some(convert::credential(&credential)),
    }))
}
