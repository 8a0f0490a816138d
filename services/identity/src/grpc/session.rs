//! Sign-in, refresh, sign-out, password change, client tokens and the published keys.

use lrs_proto::identity::v1 as pb;
use lrs_server::auth::PrincipalKind;
use tonic::{Request, Response, Status};
use uuid::Uuid;

use super::{IdentityGrpc, convert, hash_password, verify_password};
use crate::domain::FieldViolation;
use crate::domain::audit::{Actor, AuditAction, AuditRecord, user_target};
use crate::domain::organisation::Organisation;
use crate::domain::password::{self, check_policy};
use crate::domain::user::{User, UserState};
use crate::error::IdentityError;
use crate::store::{NewRefreshToken, Rotation};
use crate::tokens::{client_claims, digest, digests_match, new_secret, user_claims};

/// The token type every response names.
const BEARER: &str = "Bearer";

/// An access token and, unless restricted, a refresh token.
struct Session {
    access_token: String,
    refresh_token: String,
    expires_in: i64,
}

impl IdentityGrpc {
    fn expires_in(&self) -> i64 {
        i64::try_from(self.settings.access_token_ttl.as_secs()).unwrap_or(i64::MAX)
    }

    /// A refresh token to store for `user_id` in the family `family_id`, and its text.
    fn new_refresh_token(&self, user_id: Uuid, family_id: Uuid) -> (String, NewRefreshToken) {
        let text = new_secret();
        let now = crate::now(&self.clock);
        let ttl = chrono::Duration::from_std(self.settings.refresh_token_ttl)
            .unwrap_or(chrono::Duration::MAX);
        let token = NewRefreshToken {
            hash: digest(&text),
            family_id,
            user_id,
            issued_at: now,
            expires_at: now + ttl,
        };
        (text, token)
    }

    /// The organisation of `user`, which must be active for them to act.
    async fn active_organisation(
        &self,
        user: &User,
    ) -> Result<Option<Organisation>, IdentityError> {
        let Some(organisation_id) = user.organisation_id else {
            return Ok(None);
        };
        match self.store.organisation(organisation_id).await? {
            Some(organisation) if organisation.is_active() => Ok(Some(organisation)),
            _ => Err(IdentityError::OrganisationInactive),
        }
    }

    /// Signs `user` in: a full session, or a restricted token when the password must change.
    async fn session_for(
        &self,
        user: &User,
        organisation: Option<&Organisation>,
    ) -> Result<Session, IdentityError> {
        let now = crate::now(&self.clock);
        let ttl = self.settings.access_token_ttl;
        let restricted = user.password_change_required;
        let claims = user_claims(user, organisation, now, ttl, restricted);
        let access_token = self.keys.sign(&claims).await?;
        let refresh_token = if restricted {
            String::new()
        } else {
            let (text, token) = self.new_refresh_token(user.id, Uuid::new_v4());
            self.store.insert_refresh_token(&token).await?;
            text
        };
        Ok(Session {
            access_token,
            refresh_token,
            expires_in: self.expires_in(),
        })
    }

    /// Counts a failed sign-in of `user`, locking the account when it reaches the limit.
    async fn failed_sign_in(&self, user: &User, request_id: &str) -> IdentityError {
        let failures = match self.store.record_failed_sign_in(user.id).await {
            Ok(failures) => failures,
            Err(error) => return error.into(),
        };
        let now = crate::now(&self.clock);
        let Some(until) = self.settings.lockout.lock_after(failures, now) else {
            return IdentityError::InvalidCredentials;
        };
        let record = AuditRecord::new(
            Actor::default(),
            AuditAction::SignInLocked,
            user_target(user.id),
            now,
            request_id,
        )
        .on_organisation(user.organisation_id)
        .with_detail(format!("locked after {failures} failed sign-ins in a row"));
        if let Err(error) = self.store.lock_user(user.id, until, &record).await {
            return error.into();
        }
        tracing::info!(user_id = %user.id, "locked account after failed sign-ins");
        IdentityError::AccountLocked {
            wait: self.settings.lockout.duration,
        }
    }

    async fn sign_in_steps(
        &self,
        username: String,
        password: String,
        request_id: &str,
    ) -> Result<(User, Session), IdentityError> {
        let mut violations = Vec::new();
        if username.is_empty() {
            violations.push(FieldViolation::new("username", "is required"));
        }
        if password.is_empty() {
            violations.push(FieldViolation::new("password", "is required"));
        }
        if !violations.is_empty() {
            return Err(violations.into());
        }

        let Some((user, hash)) = self.store.user_for_sign_in(&username).await? else {
            // The same work as a wrong password, so timing does not tell which it was.
            verify_password(password, password::dummy_hash().to_owned()).await?;
            return Err(IdentityError::InvalidCredentials);
        };
        let now = crate::now(&self.clock);
        if let Some(wait) = self.settings.lockout.remaining(user.locked_until, now) {
            return Err(IdentityError::AccountLocked { wait });
        }
        if !verify_password(password, hash).await? {
            return Err(self.failed_sign_in(&user, request_id).await);
        }
        if user.state == UserState::Disabled {
            return Err(IdentityError::AccountDisabled);
        }
        let organisation = self.active_organisation(&user).await?;

        self.store.record_sign_in(user.id, now).await?;
        let session = self.session_for(&user, organisation.as_ref()).await?;
        let user = self.store.user(user.id).await?.unwrap_or(user);
        tracing::debug!(user_id = %user.id, "signed in");
        Ok((user, session))
    }
}

pub(super) async fn sign_in(
    service: &IdentityGrpc,
    request: Request<pb::SignInRequest>,
) -> Result<Response<pb::SignInResponse>, Status> {
    let call = service.gate.enter_anonymous(&request);
    let pb::SignInRequest { username, password } = request.into_inner();

    let (user, session) = service
        .sign_in_steps(username, password, &call.request_id)
        .await
        .map_err(|error| call.fail(error))?;

    Ok(Response::new(pb::SignInResponse {
        access_token: session.access_token,
        refresh_token: session.refresh_token,
        expires_in: session.expires_in,
        token_type: BEARER.to_owned(),
        password_change_required: user.password_change_required,
        user: Some(convert::user(&user, crate::now(&service.clock))),
    }))
}

impl IdentityGrpc {
    async fn refresh_steps(&self, presented: String) -> Result<(String, String), IdentityError> {
        if presented.is_empty() {
            return Err(IdentityError::InvalidRefreshToken);
        }
        let (text, next) = self.new_refresh_token(Uuid::nil(), Uuid::nil());
        let now = crate::now(&self.clock);
        let user_id = match self
            .store
            .rotate_refresh_token(&digest(&presented), &next, now)
            .await?
        {
            Rotation::Rotated { user_id } => user_id,
            Rotation::Reused { user_id } => {
                tracing::warn!(%user_id, "refresh token reused; revoked its sign-in");
                return Err(IdentityError::InvalidRefreshToken);
            }
            Rotation::Invalid => return Err(IdentityError::InvalidRefreshToken),
        };

        let user = self.store.user(user_id).await?;
        let usable = user
            .as_ref()
            .is_some_and(|user| user.state == UserState::Active && !user.password_change_required);
        let organisation = match &user {
            Some(user) if usable => self.active_organisation(user).await,
            _ => Err(IdentityError::InvalidRefreshToken),
        };
        let (Some(user), Ok(organisation)) = (user, organisation) else {
            self.store.revoke_refresh_token(&next.hash, now).await?;
            return Err(IdentityError::InvalidRefreshToken);
        };
        let claims = user_claims(
            &user,
            organisation.as_ref(),
            now,
            self.settings.access_token_ttl,
            false,
        );
        Ok((self.keys.sign(&claims).await?, text))
    }
}

pub(super) async fn refresh_token(
    service: &IdentityGrpc,
    request: Request<pb::RefreshTokenRequest>,
) -> Result<Response<pb::RefreshTokenResponse>, Status> {
    let call = service.gate.enter_anonymous(&request);
    let pb::RefreshTokenRequest { refresh_token } = request.into_inner();

    let (access_token, refresh_token) = service
        .refresh_steps(refresh_token)
        .await
        .map_err(|error| call.fail(error))?;

    Ok(Response::new(pb::RefreshTokenResponse {
        access_token,
        refresh_token,
        expires_in: service.expires_in(),
        token_type: BEARER.to_owned(),
    }))
}

pub(super) async fn sign_out(
    service: &IdentityGrpc,
    request: Request<pb::SignOutRequest>,
) -> Result<Response<pb::SignOutResponse>, Status> {
    let call = service.gate.enter_anonymous(&request);
    let pb::SignOutRequest { refresh_token } = request.into_inner();
    if refresh_token.is_empty() {
        let violation = FieldViolation::new("refresh_token", "is required");
        return Err(call.fail(IdentityError::from(vec![violation])));
    }

    service
        .store
        .revoke_refresh_token(&digest(&refresh_token), crate::now(&service.clock))
        .await
        .map_err(|error| call.fail(IdentityError::from(error)))?;

    Ok(Response::new(pb::SignOutResponse {}))
}

impl IdentityGrpc {
    async fn change_password_steps(
        &self,
        caller_kind: PrincipalKind,
        subject: &str,
        current_password: String,
        new_password: String,
        record: AuditRecord,
    ) -> Result<Session, IdentityError> {
        if !matches!(caller_kind, PrincipalKind::User | PrincipalKind::Learner) {
            return Err(IdentityError::NotAPerson);
        }
        let user_id = Uuid::try_parse(subject).map_err(|_| IdentityError::NotAPerson)?;
        let user = self
            .store
            .user(user_id)
            .await?
            .ok_or(IdentityError::UserNotFound)?;
        let (_, hash) = self
            .store
            .user_for_sign_in(&user.username)
            .await?
            .ok_or(IdentityError::UserNotFound)?;
        if let Err(error) = check_policy(&new_password, &current_password, &user.username) {
            let violation = FieldViolation::new("new_password", error.to_string());
            return Err(vec![violation].into());
        }
        if !verify_password(current_password, hash).await? {
            return Err(IdentityError::InvalidCredentials);
        }
        if user.state == UserState::Disabled {
            return Err(IdentityError::AccountDisabled);
        }
        let organisation = self.active_organisation(&user).await?;

        let hash = hash_password(new_password).await?;
        let record = record.on_organisation(user.organisation_id);
        let user = self
            .store
            .set_password(user.id, &hash, false, &record)
            .await?;
        tracing::info!(user_id = %user.id, "changed password");
        self.session_for(&user, organisation.as_ref()).await
    }
}

pub(super) async fn change_password(
    service: &IdentityGrpc,
    request: Request<pb::ChangePasswordRequest>,
) -> Result<Response<pb::ChangePasswordResponse>, Status> {
    let call = service
        .gate
        .enter_allowing_password_change(&request)
        .await?;
    let pb::ChangePasswordRequest {
        current_password,
        new_password,
    } = request.into_inner();
    let target = user_target(Uuid::try_parse(call.caller.subject()).unwrap_or_default());
    let record = service.audit(&call, AuditAction::ChangePassword, target);

    let outcome = service
        .change_password_steps(
            call.caller.claims.kind,
            call.caller.subject(),
            current_password,
            new_password,
            record.clone(),
        )
        .await;
    let session = match outcome {
        Ok(session) => session,
        Err(error) => return Err(service.refuse(&call, record, error).await),
    };

    Ok(Response::new(pb::ChangePasswordResponse {
        access_token: session.access_token,
        refresh_token: session.refresh_token,
        expires_in: session.expires_in,
    }))
}

impl IdentityGrpc {
    async fn client_token_steps(
        &self,
        client_id: &str,
        client_secret: &str,
    ) -> Result<String, IdentityError> {
        let client_id = Uuid::try_parse(client_id).map_err(|_| IdentityError::InvalidClient)?;
        let presented = digest(client_secret);
        let Some((credential, stored)) = self.store.credential(client_id).await? else {
            return Err(IdentityError::InvalidClient);
        };
        if credential.revoked_at.is_some() || !digests_match(&presented, &stored) {
            return Err(IdentityError::InvalidClient);
        }
        let organisation = match self.store.organisation(credential.organisation_id).await? {
            Some(organisation) if organisation.is_active() => organisation,
            _ => return Err(IdentityError::InvalidClient),
        };

        let now = crate::now(&self.clock);
        let claims = client_claims(
            &credential,
            &organisation,
            now,
            self.settings.access_token_ttl,
        );
        tracing::debug!(client_id = %credential.client_id, "issued client token");
        Ok(self.keys.sign(&claims).await?)
    }
}

pub(super) async fn issue_client_token(
    service: &IdentityGrpc,
    request: Request<pb::IssueClientTokenRequest>,
) -> Result<Response<pb::IssueClientTokenResponse>, Status> {
    let call = service.gate.enter_anonymous(&request);
    let pb::IssueClientTokenRequest {
        client_id,
        client_secret,
    } = request.into_inner();

    let access_token = service
        .client_token_steps(&client_id, &client_secret)
        .await
        .map_err(|error| call.fail(error))?;

    Ok(Response::new(pb::IssueClientTokenResponse {
        access_token,
        expires_in: service.expires_in(),
        token_type: BEARER.to_owned(),
    }))
}

pub(super) async fn get_signing_keys(
    service: &IdentityGrpc,
    request: Request<pb::GetSigningKeysRequest>,
) -> Result<Response<pb::GetSigningKeysResponse>, Status> {
    let call = service.gate.enter_anonymous(&request);
    let pb::GetSigningKeysRequest {} = request.into_inner();

    let keys = service
        .keys
        .published()
        .await
        .map_err(|error| call.fail(IdentityError::from(error)))?;

    Ok(Response::new(pb::GetSigningKeysResponse {
        keys: keys.iter().map(convert::signing_key).collect(),
    }))
}
