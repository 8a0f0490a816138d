//! Users and learner accounts: organisation admins manage their own organisation's users,
//! the service desk manages everyone.

use lrs_proto::identity::v1 as pb;
use lrs_server::call::Call;
use tonic::{Request, Response, Status};
use uuid::Uuid;

use super::{IdentityGrpc, convert, hash_password, mask_paths, parse_id};
use crate::domain::audit::{AuditAction, AuditRecord, user_target};
use crate::domain::permissions::{Manager, caller_organisation, may_read_user};
use crate::domain::user::{self, User, UserChanges, UserDraft, UserState};
use crate::domain::{FieldViolation, OrganisationKind, fields, paging, password, roles_to_text};
use crate::error::IdentityError;
use crate::store::{Created, IdempotencyKey};

fn manager(call: &Call) -> Result<Manager, IdentityError> {
    Manager::of(&call.caller).ok_or(IdentityError::PermissionDenied(
        "only organisation admins and the service desk manage users",
    ))
}

impl IdentityGrpc {
    /// The kind of the organisation `id`, `None` for learner accounts.
    async fn kind_of(&self, id: Option<Uuid>) -> Result<Option<OrganisationKind>, IdentityError> {
        match id {
            None => Ok(None),
            Some(id) => self
                .store
                .organisation(id)
                .await?
                .map(|organisation| Some(organisation.kind))
                .ok_or(IdentityError::OrganisationNotFound),
        }
    }

    /// The user `id` when the caller may manage them; another organisation's user is
    /// `NOT_FOUND`, so their existence is not revealed.
    async fn managed_user(
        &self,
        call: &Call,
        field: &str,
        id: &str,
    ) -> Result<User, IdentityError> {
        let manager = manager(call)?;
        let id = parse_id(field, id)?;
        match self.store.user(id).await? {
            Some(user) if manager.may_manage(user.organisation_id) => Ok(user),
            _ => Err(IdentityError::UserNotFound),
        }
    }

    async fn create_user_steps(
        &self,
        call: &Call,
        draft: UserDraft,
        request_id: &str,
        record: AuditRecord,
    ) -> Result<(Created<User>, String), IdentityError> {
        let manager = manager(call)?;
        let organisation = draft.organisation(caller_organisation(&call.caller));
        if let Ok(organisation_id) = organisation
            && !manager.may_manage(organisation_id)
        {
            return Err(IdentityError::PermissionDenied(
                "you may manage only your own organisation's users",
            ));
        }
        let resolved = match organisation {
            Ok(Some(id)) => Ok(self.kind_of(Some(id)).await?.map(|kind| (id, kind))),
            Ok(None) => Ok(None),
            Err(violation) => Err(violation),
        };
        let mut violations = Vec::new();
        let new = user::validate_new(draft, resolved).map_err(|found| violations.extend(found));
        let request_id = fields::request_id(request_id)
            .map_err(|error| violations.push(FieldViolation::new("request_id", error.to_string())));
        let (Ok(new), Ok(request_id)) = (new, request_id) else {
            return Err(violations.into());
        };

        let initial_password = password::generate();
        let hash = hash_password(initial_password.clone()).await?;
        let id = Uuid::new_v4();
        let user = new.into_user(id, true, crate::now(&self.clock));
        let record = AuditRecord {
            target: user_target(id),
            ..record
        }
        .on_organisation(user.organisation_id)
        .with_detail(format!("roles {}", roles_to_text(&user.roles)));
        let idempotency = request_id.map(|request_id| IdempotencyKey {
            caller: call.caller.subject().to_owned(),
            operation: "CreateUser",
            request_id,
        });
        let created = self
            .store
            .create_user(&user, &hash, idempotency.as_ref(), &record)
            .await?;
        Ok((created, initial_password))
    }
}

pub(super) async fn create(
    service: &IdentityGrpc,
    request: Request<pb::CreateUserRequest>,
) -> Result<Response<pb::CreateUserResponse>, Status> {
    let call = service.gate.enter(&request).await?;
    let pb::CreateUserRequest { user, request_id } = request.into_inner();
    let pb::User {
        user_id: _,
        organisation_id,
        username,
        given_name,
        family_name,
        email,
        roles,
        state: _,
        uln,
        password_change_required: _,
        locked_until: _,
        version: _,
        create_time: _,
        update_time: _,
        last_sign_in_time: _,
    } = user.unwrap_or_default();
    let draft = UserDraft {
        organisation_id,
        username,
        given_name,
        family_name,
        email,
        roles: convert::role_choices(&roles),
        uln,
    };
    let record = service.audit(&call, AuditAction::CreateUser, "user/new");

    let outcome = service
        .create_user_steps(&call, draft, &request_id, record.clone())
        .await;
    let (user, initial_password) = match outcome {
        Ok((Created::New(user), password)) => {
            tracing::info!(user_id = %user.id, "created user");
            (user, password)
        }
        Ok((Created::Existing(user), _)) => (user, String::new()),
        Err(error) => return Err(service.refuse(&call, record, error).await),
    };

    Ok(Response::new(pb::CreateUserResponse {
        user: Some(convert::user(&user, crate::now(&service.clock))),
        initial_password,
    }))
}

pub(super) async fn get(
    service: &IdentityGrpc,
    request: Request<pb::GetUserRequest>,
) -> Result<Response<pb::GetUserResponse>, Status> {
    let call = service.gate.enter(&request).await?;
    let pb::GetUserRequest { user_id } = request.into_inner();

    let outcome = async {
        let id = parse_id("user_id", &user_id)?;
        match service.store.user(id).await? {
            Some(user) if may_read_user(&call.caller, user.id, user.organisation_id) => Ok(user),
            _ => Err(IdentityError::UserNotFound),
        }
    }
    .await;
    let user = outcome.map_err(|error| call.fail(error))?;

    Ok(Response::new(pb::GetUserResponse {
        user: Some(convert::user(&user, crate::now(&service.clock))),
    }))
}

pub(super) async fn list(
    service: &IdentityGrpc,
    request: Request<pb::ListUsersRequest>,
) -> Result<Response<pb::ListUsersResponse>, Status> {
    let call = service.gate.enter(&request).await?;
    let pb::ListUsersRequest {
        page_size,
        page_token,
        organisation_id,
    } = request.into_inner();

    let outcome = async {
        let manager = manager(&call)?;
        let mut violations = Vec::new();
        let page = paging::page("users", 1, page_size, &page_token)
            .map_err(|found| violations.extend(found));
        let organisation = match organisation_id.as_str() {
            "" => caller_organisation(&call.caller).ok_or_else(|| {
                violations.push(FieldViolation::new("organisation_id", "is required"));
            }),
            given => parse_id("organisation_id", given).map_err(|_| {
                violations.push(FieldViolation::new("organisation_id", "must be a UUID"));
            }),
        };
        let (Ok(page), Ok(organisation)) = (page, organisation) else {
            return Err(IdentityError::from(violations));
        };
        if !manager.may_manage(Some(organisation)) {
            return Err(IdentityError::PermissionDenied(
                "you may list only your own organisation's users",
            ));
        }

        let after = page.after.and_then(|key| key.into_iter().next());
        let found = service
            .store
            .list_users(organisation, after, page.size + 1)
            .await?;
        Ok(paging::finish("users", found, page.size, |user| {
            vec![fields::username_key(&user.username)]
        }))
    }
    .await;
    let (users, next_page_token) = outcome.map_err(|error| call.fail(error))?;

    let now = crate::now(&service.clock);
    Ok(Response::new(pb::ListUsersResponse {
        users: users.iter().map(|user| convert::user(user, now)).collect(),
        next_page_token,
    }))
}

impl IdentityGrpc {
    async fn update_user_steps(
        &self,
        call: &Call,
        id: &str,
        version: i64,
        changes: UserChanges,
        record: AuditRecord,
    ) -> Result<(User, bool), IdentityError> {
        let current = self.managed_user(call, "user.user_id", id).await?;
        let kind = self.kind_of(current.organisation_id).await?;
        let updated = user::apply_changes(&current, changes, kind)?;
        if version != current.version {
            return Err(IdentityError::VersionConflict);
        }
        if updated.same_details(&current) {
            return Ok((current, false));
        }

        let record = AuditRecord {
            target: user_target(current.id),
            ..record
        }
        .on_organisation(current.organisation_id)
        .with_detail(format!("roles {}", roles_to_text(&updated.roles)));
        let stored = self.store.update_user(&updated, version, &record).await?;
        tracing::info!(user_id = %stored.id, "updated user");
        Ok((stored, true))
    }
}

pub(super) async fn update(
    service: &IdentityGrpc,
    request: Request<pb::UpdateUserRequest>,
) -> Result<Response<pb::UpdateUserResponse>, Status> {
    let call = service.gate.enter(&request).await?;
    let pb::UpdateUserRequest { user, update_mask } = request.into_inner();
    let pb::User {
        user_id,
        organisation_id: _,
        username: _,
        given_name,
        family_name,
        email,
        roles,
        state: _,
        uln: _,
        password_change_required: _,
        locked_until: _,
        version,
        create_time: _,
        update_time: _,
        last_sign_in_time: _,
    } = user.unwrap_or_default();
    let record = service.audit(&call, AuditAction::UpdateUser, format!("user/{user_id}"));

    let outcome = async {
        let paths = mask_paths(
            update_mask,
            &["given_name", "family_name", "email", "roles"],
        )?;
        let changes = UserChanges {
            given_name: paths.contains(&"given_name").then_some(given_name),
            family_name: paths.contains(&"family_name").then_some(family_name),
            email: paths.contains(&"email").then_some(email),
            roles: paths
                .contains(&"roles")
                .then(|| convert::role_choices(&roles)),
        };
        service
            .update_user_steps(&call, &user_id, version, changes, record.clone())
            .await
    }
    .await;
    let (user, changed) = match outcome {
        Ok(updated) => updated,
        Err(error) => return Err(service.refuse(&call, record, error).await),
    };

    Ok(Response::new(pb::UpdateUserResponse {
        user: Some(convert::user(&user, crate::now(&service.clock))),
        changed,
    }))
}

impl IdentityGrpc {
    /// Moves a managed user to `state` (clearing any lock when enabling); no write when the
    /// user is in that state already.
    async fn set_user_state(
        &self,
        call: &Call,
        id: &str,
        state: UserState,
        record: AuditRecord,
    ) -> Result<User, IdentityError> {
        let current = self.managed_user(call, "user_id", id).await?;
        if current.state == state {
            return Ok(current);
        }
        let mut updated = current.clone();
        updated.state = state;
        if state == UserState::Active {
            updated.locked_until = None;
            updated.failed_sign_ins = 0;
        }

        let record = AuditRecord {
            target: user_target(current.id),
            ..record
        }
        .on_organisation(current.organisation_id);
        let stored = self
            .store
            .update_user(&updated, current.version, &record)
            .await?;
        tracing::info!(user_id = %stored.id, state = state.name(), "changed user state");
        Ok(stored)
    }
}

pub(super) async fn disable(
    service: &IdentityGrpc,
    request: Request<pb::DisableUserRequest>,
) -> Result<Response<pb::DisableUserResponse>, Status> {
    let call = service.gate.enter(&request).await?;
    let pb::DisableUserRequest { user_id } = request.into_inner();
    let record = service.audit(&call, AuditAction::DisableUser, format!("user/{user_id}"));

    let outcome = service
        .set_user_state(&call, &user_id, UserState::Disabled, record.clone())
        .await;
    let user = match outcome {
        Ok(user) => user,
        Err(error) => return Err(service.refuse(&call, record, error).await),
    };

    Ok(Response::new(pb::DisableUserResponse {
        user: Some(convert::user(&user, crate::now(&service.clock))),
    }))
}

pub(super) async fn enable(
    service: &IdentityGrpc,
    request: Request<pb::EnableUserRequest>,
) -> Result<Response<pb::EnableUserResponse>, Status> {
    let call = service.gate.enter(&request).await?;
    let pb::EnableUserRequest { user_id } = request.into_inner();
    let record = service.audit(&call, AuditAction::EnableUser, format!("user/{user_id}"));

    let outcome = service
        .set_user_state(&call, &user_id, UserState::Active, record.clone())
        .await;
    let user = match outcome {
        Ok(user) => user,
        Err(error) => return Err(service.refuse(&call, record, error).await),
    };

    Ok(Response::new(pb::EnableUserResponse {
        user: Some(convert::user(&user, crate::now(&service.clock))),
    }))
}

impl IdentityGrpc {
    async fn reset_password_steps(
        &self,
        call: &Call,
        id: &str,
        record: AuditRecord,
    ) -> Result<String, IdentityError> {
        let user = self.managed_user(call, "user_id", id).await?;

        let temporary = password::generate();
        let hash = hash_password(temporary.clone()).await?;
        let record = AuditRecord {
            target: user_target(user.id),
            ..record
        }
        .on_organisation(user.organisation_id);
        self.store
            .set_password(user.id, &hash, true, &record)
            .await?;
        tracing::info!(user_id = %user.id, "reset password");
        Ok(temporary)
    }
}

pub(super) async fn reset_password(
    service: &IdentityGrpc,
    request: Request<pb::ResetPasswordRequest>,
) -> Result<Response<pb::ResetPasswordResponse>, Status> {
    let call = service.gate.enter(&request).await?;
    let pb::ResetPasswordRequest { user_id } = request.into_inner();
    let record = service.audit(&call, AuditAction::ResetPassword, format!("user/{user_id}"));

    let outcome = service
        .reset_password_steps(&call, &user_id, record.clone())
        .await;
    let temporary_password = match outcome {
        Ok(password) => password,
        Err(error) => return Err(service.refuse(&call, record, error).await),
    };

    Ok(Response::new(pb::ResetPasswordResponse {
        temporary_password,
    }))
}
