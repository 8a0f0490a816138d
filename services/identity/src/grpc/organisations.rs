//! Organisations: created and changed by the service desk.

use lrs_proto::identity::v1 as pb;
use lrs_server::call::Call;
use tonic::{Request, Response, Status};
use uuid::Uuid;

use super::{IdentityGrpc, convert, mask_paths, parse_id};
use crate::domain::audit::{AuditAction, AuditRecord, organisation_target};
use crate::domain::fields::{self, generate_organisation_reference};
use crate::domain::organisation::{
    self, Choice, Organisation, OrganisationChanges, OrganisationDraft,
};
use crate::domain::{FieldViolation, paging};
use crate::error::IdentityError;
use crate::store::{Created, IdempotencyKey};

/// How many generated references are tried before giving up (a clash is already rare).
const REFERENCE_ATTEMPTS: usize = 5;

fn require_service_desk(call: &Call) -> Result<(), IdentityError> {
    if call.caller.is_service_desk() {
        Ok(())
    } else {
        Err(IdentityError::PermissionDenied(
            "only the service desk manages organisations",
        ))
    }
}

impl IdentityGrpc {
    async fn create_organisation_steps(
        &self,
        call: &Call,
        draft: OrganisationDraft,
        request_id: &str,
        record: AuditRecord,
    ) -> Result<Created<Organisation>, IdentityError> {
        require_service_desk(call)?;
        let request_id = fields::request_id(request_id)
            .map_err(|error| vec![FieldViolation::new("request_id", error.to_string())]);
        let new = organisation::validate_new(draft);
        let (new, request_id) = match (new, request_id) {
            (Ok(new), Ok(request_id)) => (new, request_id),
            (new, request_id) => {
                let mut violations = new.err().unwrap_or_default();
                violations.extend(request_id.err().unwrap_or_default());
                return Err(violations.into());
            }
        };
        let idempotency = request_id.map(|request_id| IdempotencyKey {
            caller: call.caller.subject().to_owned(),
            operation: "CreateOrganisation",
            request_id,
        });

        let generated = new.reference.is_none();
        let mut attempts = 0;
        loop {
            attempts += 1;
            let id = Uuid::new_v4();
            let organisation = new.clone().into_organisation(
                id,
                generate_organisation_reference(),
                crate::now(&self.clock),
            );
            let record = record
                .clone()
                .on_organisation(Some(id))
                .with_detail(format!(
                    "kind {}, UKPRN {}",
                    crate::domain::organisation_kind_name(organisation.kind),
                    organisation.ukprn.as_deref().unwrap_or("none")
                ));
            let record = AuditRecord {
                target: organisation_target(id),
                ..record
            };
            match self
                .store
                .create_organisation(&organisation, idempotency.as_ref(), &record)
                .await
            {
                Err(crate::store::StoreError::OrganisationReferenceTaken)
                    if generated && attempts < REFERENCE_ATTEMPTS => {}
                outcome => return Ok(outcome?),
            }
        }
    }
}

pub(super) async fn create(
    service: &IdentityGrpc,
    request: Request<pb::CreateOrganisationRequest>,
) -> Result<Response<pb::CreateOrganisationResponse>, Status> {
    let call = service.gate.enter(&request).await?;
    let pb::CreateOrganisationRequest {
        organisation,
        request_id,
    } = request.into_inner();
    let pb::Organisation {
        organisation_id: _,
        kind,
        lrb_type,
        display_name,
        ukprn,
        organisation_reference,
        status,
        version: _,
        create_time: _,
        update_time: _,
    } = organisation.unwrap_or_default();
    let draft = OrganisationDraft {
        kind: convert::organisation_kind_choice(kind),
        lrb_type: convert::lrb_type_choice(lrb_type),
        display_name,
        ukprn,
        reference: organisation_reference,
        status: convert::status_choice(status),
    };
    let record = service.audit(&call, AuditAction::CreateOrganisation, "organisation/new");

    let outcome = service
        .create_organisation_steps(&call, draft, &request_id, record.clone())
        .await;
    let organisation = match outcome {
        Ok(Created::New(organisation)) => {
            tracing::info!(organisation_id = %organisation.id, "created organisation");
            organisation
        }
        Ok(Created::Existing(organisation)) => organisation,
        Err(error) => return Err(service.refuse(&call, record, error).await),
    };

    Ok(Response::new(pb::CreateOrganisationResponse {
        organisation: Some(convert::organisation(&organisation)),
    }))
}

pub(super) async fn get(
    service: &IdentityGrpc,
    request: Request<pb::GetOrganisationRequest>,
) -> Result<Response<pb::GetOrganisationResponse>, Status> {
    let call = service.gate.enter(&request).await?;
    let pb::GetOrganisationRequest { organisation_id } = request.into_inner();

    let outcome = async {
        let id = parse_id("organisation_id", &organisation_id)?;
        if !crate::domain::permissions::may_read_organisation(&call.caller, id) {
            return Err(IdentityError::OrganisationNotFound);
        }
        service
            .store
            .organisation(id)
            .await?
            .ok_or(IdentityError::OrganisationNotFound)
    }
    .await;
    let organisation = outcome.map_err(|error| call.fail(error))?;

    Ok(Response::new(pb::GetOrganisationResponse {
        organisation: Some(convert::organisation(&organisation)),
    }))
}

pub(super) async fn list(
    service: &IdentityGrpc,
    request: Request<pb::ListOrganisationsRequest>,
) -> Result<Response<pb::ListOrganisationsResponse>, Status> {
    let call = service.gate.enter(&request).await?;
    let pb::ListOrganisationsRequest {
        page_size,
        page_token,
        kind,
        ukprn,
    } = request.into_inner();

    let outcome = async {
        require_service_desk(&call)?;
        let mut violations = Vec::new();
        let page = paging::page("organisations", 2, page_size, &page_token)
            .map_err(|found| violations.extend(found))
            .ok();
        let kind = match convert::organisation_kind_choice(kind) {
            Choice::Known(kind) => Some(kind),
            Choice::Unset => None,
            Choice::Unknown(number) => {
                violations.push(FieldViolation::new(
                    "kind",
                    format!("{number} is not a kind"),
                ));
                None
            }
        };
        let ukprn = match ukprn.as_str() {
            "" => None,
            given => fields::ukprn(given)
                .map_err(|error| violations.push(FieldViolation::new("ukprn", error.to_string())))
                .ok(),
        };
        let after = match page.as_ref().and_then(|page| page.after.as_ref()) {
            Some(key) => match Uuid::try_parse(&key[1]) {
                Ok(id) => Some((key[0].clone(), id)),
                Err(_) => {
                    violations.push(FieldViolation::new("page_token", "is not valid"));
                    None
                }
            },
            None => None,
        };
        let Some(page) = page.filter(|_| violations.is_empty()) else {
            return Err(IdentityError::from(violations));
        };

        let found = service
            .store
            .list_organisations(kind, ukprn.as_deref(), after, page.size + 1)
            .await?;
        Ok(paging::finish(
            "organisations",
            found,
            page.size,
            |organisation| {
                vec![
                    organisation.display_name.clone(),
                    organisation.id.to_string(),
                ]
            },
        ))
    }
    .await;
    let (organisations, next_page_token) = outcome.map_err(|error| call.fail(error))?;

    Ok(Response::new(pb::ListOrganisationsResponse {
        organisations: organisations.iter().map(convert::organisation).collect(),
        next_page_token,
    }))
}

impl IdentityGrpc {
    async fn update_organisation_steps(
        &self,
        call: &Call,
        id: &str,
        version: i64,
        changes: OrganisationChanges,
        record: AuditRecord,
    ) -> Result<(Organisation, bool), IdentityError> {
        require_service_desk(call)?;
        let id = parse_id("organisation.organisation_id", id)?;
        let current = self
            .store
            .organisation(id)
            .await?
            .ok_or(IdentityError::OrganisationNotFound)?;
        let updated = organisation::apply_changes(&current, changes)?;
        if version != current.version {
            return Err(IdentityError::VersionConflict);
        }
        if updated == current {
            return Ok((current, false));
        }

        let record = AuditRecord {
            target: organisation_target(id),
            ..record
        }
        .on_organisation(Some(id))
        .with_detail(format!("status {}", updated.status.name()));
        let stored = self
            .store
            .update_organisation(&updated, version, &record)
            .await?;
        tracing::info!(organisation_id = %id, "updated organisation");
        Ok((stored, true))
    }
}

pub(super) async fn update(
    service: &IdentityGrpc,
    request: Request<pb::UpdateOrganisationRequest>,
) -> Result<Response<pb::UpdateOrganisationResponse>, Status> {
    let call = service.gate.enter(&request).await?;
    let pb::UpdateOrganisationRequest {
        organisation,
        update_mask,
    } = request.into_inner();
    let pb::Organisation {
        organisation_id,
        kind: _,
        lrb_type,
        display_name,
        ukprn: _,
        organisation_reference: _,
        status,
        version,
        create_time: _,
        update_time: _,
    } = organisation.unwrap_or_default();
    let target = format!("organisation/{organisation_id}");
    let record = service.audit(&call, AuditAction::UpdateOrganisation, target);

    let outcome = async {
        let paths = mask_paths(update_mask, &["display_name", "lrb_type", "status"])?;
        let changes = OrganisationChanges {
            display_name: paths.contains(&"display_name").then_some(display_name),
            lrb_type: paths
                .contains(&"lrb_type")
                .then(|| convert::lrb_type_choice(lrb_type)),
            status: paths
                .contains(&"status")
                .then(|| convert::status_choice(status)),
        };
        service
            .update_organisation_steps(&call, &organisation_id, version, changes, record.clone())
            .await
    }
    .await;
    let (organisation, changed) = match outcome {
        Ok(updated) => updated,
        Err(error) => return Err(service.refuse(&call, record, error).await),
    };

    Ok(Response::new(pb::UpdateOrganisationResponse {
        organisation: Some(convert::organisation(&organisation)),
        changed,
    }))
}
