//! The audit log of management actions, for the service desk.

use lrs_proto::identity::v1 as pb;
use tonic::{Request, Response, Status};

use super::{IdentityGrpc, convert, parse_id};
use crate::domain::{FieldViolation, paging};
use crate::error::IdentityError;

pub(super) async fn list(
    service: &IdentityGrpc,
    request: Request<pb::ListAuditEventsRequest>,
) -> Result<Response<pb::ListAuditEventsResponse>, Status> {
    let call = service.gate.enter(&request).await?;
    let pb::ListAuditEventsRequest {
        page_size,
        page_token,
        organisation_id,
    } = request.into_inner();

    let outcome = async {
        if !call.caller.is_service_desk() {
            return Err(IdentityError::PermissionDenied(
                "only the service desk reads the audit log",
            ));
        }
        let page = paging::page("audit", 1, page_size, &page_token)?;
        let before = match page.after.as_ref().and_then(|key| key.first()) {
            Some(sequence) => Some(sequence.parse::<i64>().map_err(|_| {
                IdentityError::from(vec![FieldViolation::new("page_token", "is not valid")])
            })?),
            None => None,
        };
        let organisation = match organisation_id.as_str() {
            "" => None,
            given => Some(parse_id("organisation_id", given)?),
        };

        let found = service
            .store
            .list_audit_events(organisation, before, page.size + 1)
            .await?;
        Ok(paging::finish("audit", found, page.size, |event| {
            vec![event.sequence.to_string()]
        }))
    }
    .await;
    let (events, next_page_token) = outcome.map_err(|error| call.fail(error))?;

    Ok(Response::new(pb::ListAuditEventsResponse {
        audit_events: events.iter().map(convert::audit_event).collect(),
        next_page_token,
    }))
}
