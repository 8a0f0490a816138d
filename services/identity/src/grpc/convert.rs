//! Between the proto messages and the domain types.

use chrono::{DateTime, Utc};
use lrs_proto::identity::v1 as pb;
use prost_types::Timestamp;

use crate::domain::audit::{AuditEvent, AuditOutcome};
use crate::domain::credential::ClientCredential;
use crate::domain::organisation::{Choice, LrbType, Organisation, OrganisationStatus};
use crate::domain::user::{User, UserState};
use crate::domain::{OrganisationKind, Role};
use crate::keys::PublishedKey;
use crate::store::{AwardingOrganisationEntry, Provider};

/// A time as a proto timestamp.
pub fn timestamp(time: DateTime<Utc>) -> Timestamp {
    Timestamp {
        seconds: time.timestamp(),
        nanos: i32::try_from(time.timestamp_subsec_nanos()).unwrap_or(0),
    }
}

fn optional_timestamp(time: Option<DateTime<Utc>>) -> Option<Timestamp> {
    time.map(timestamp)
}

/// A proto organisation kind as a choice.
pub fn organisation_kind_choice(value: i32) -> Choice<OrganisationKind> {
    match pb::OrganisationKind::try_from(value) {
        Ok(pb::OrganisationKind::Unspecified) => Choice::Unset,
        Ok(pb::OrganisationKind::LearnerRegistrationBody) => {
            Choice::Known(OrganisationKind::LearnerRegistrationBody)
        }
        Ok(pb::OrganisationKind::AwardingOrganisation) => {
            Choice::Known(OrganisationKind::AwardingOrganisation)
        }
        Ok(pb::OrganisationKind::ServiceDesk) => Choice::Known(OrganisationKind::ServiceDesk),
        Err(_) => Choice::Unknown(value),
    }
}

fn organisation_kind(kind: OrganisationKind) -> pb::OrganisationKind {
    match kind {
        OrganisationKind::LearnerRegistrationBody => pb::OrganisationKind::LearnerRegistrationBody,
        OrganisationKind::AwardingOrganisation => pb::OrganisationKind::AwardingOrganisation,
        OrganisationKind::ServiceDesk => pb::OrganisationKind::ServiceDesk,
    }
}

/// A proto LRB type as a choice.
pub fn lrb_type_choice(value: i32) -> Choice<LrbType> {
    match pb::LrbType::try_from(value) {
        Ok(pb::LrbType::Unspecified) => Choice::Unset,
        Ok(pb::LrbType::School) => Choice::Known(LrbType::School),
        Ok(pb::LrbType::College) => Choice::Known(LrbType::College),
        Ok(pb::LrbType::LocalAuthority) => Choice::Known(LrbType::LocalAuthority),
        Ok(pb::LrbType::HigherEducation) => Choice::Known(LrbType::HigherEducation),
        Ok(pb::LrbType::Other) => Choice::Known(LrbType::Other),
        Err(_) => Choice::Unknown(value),
    }
}

fn lrb_type(lrb_type: Option<LrbType>) -> pb::LrbType {
    match lrb_type {
        None => pb::LrbType::Unspecified,
        Some(LrbType::School) => pb::LrbType::School,
        Some(LrbType::College) => pb::LrbType::College,
        Some(LrbType::LocalAuthority) => pb::LrbType::LocalAuthority,
        Some(LrbType::HigherEducation) => pb::LrbType::HigherEducation,
        Some(LrbType::Other) => pb::LrbType::Other,
    }
}

/// A proto organisation status as a choice.
pub fn status_choice(value: i32) -> Choice<OrganisationStatus> {
    match pb::OrganisationStatus::try_from(value) {
        Ok(pb::OrganisationStatus::Unspecified) => Choice::Unset,
        Ok(pb::OrganisationStatus::Active) => Choice::Known(OrganisationStatus::Active),
        Ok(pb::OrganisationStatus::Suspended) => Choice::Known(OrganisationStatus::Suspended),
        Ok(pb::OrganisationStatus::Closed) => Choice::Known(OrganisationStatus::Closed),
        Err(_) => Choice::Unknown(value),
    }
}

fn status(status: OrganisationStatus) -> pb::OrganisationStatus {
    match status {
        OrganisationStatus::Active => pb::OrganisationStatus::Active,
        OrganisationStatus::Suspended => pb::OrganisationStatus::Suspended,
        OrganisationStatus::Closed => pb::OrganisationStatus::Closed,
    }
}

/// A proto role as a choice.
pub fn role_choice(value: i32) -> Choice<Role> {
    match pb::Role::try_from(value) {
        Ok(pb::Role::Unspecified) => Choice::Unset,
        Ok(pb::Role::OrgAdmin) => Choice::Known(Role::OrgAdmin),
        Ok(pb::Role::BatchUser) => Choice::Known(Role::BatchUser),
        Ok(pb::Role::OnlineUser) => Choice::Known(Role::OnlineUser),
        Ok(pb::Role::ViewOnly) => Choice::Known(Role::ViewOnly),
        Ok(pb::Role::AoUser) => Choice::Known(Role::AoUser),
        Ok(pb::Role::ServiceDesk) => Choice::Known(Role::ServiceDesk),
        Ok(pb::Role::Learner) => Choice::Known(Role::Learner),
        Ok(pb::Role::Service) => Choice::Known(Role::Service),
        Err(_) => Choice::Unknown(value),
    }
}

/// Roles of a request as choices.
pub fn role_choices(values: &[i32]) -> Vec<Choice<Role>> {
    values.iter().copied().map(role_choice).collect()
}

fn role(role: Role) -> i32 {
    let role = match role {
        Role::OrgAdmin => pb::Role::OrgAdmin,
        Role::BatchUser => pb::Role::BatchUser,
        Role::OnlineUser => pb::Role::OnlineUser,
        Role::ViewOnly => pb::Role::ViewOnly,
        Role::AoUser => pb::Role::AoUser,
        Role::ServiceDesk => pb::Role::ServiceDesk,
        Role::Learner => pb::Role::Learner,
        Role::Service => pb::Role::Service,
    };
    role.into()
}

/// An organisation as the proto shows it.
pub fn organisation(organisation: &Organisation) -> pb::Organisation {
    pb::Organisation {
        organisation_id: organisation.id.to_string(),
        kind: organisation_kind(organisation.kind).into(),
        lrb_type: lrb_type(organisation.lrb_type).into(),
        display_name: organisation.display_name.clone(),
        ukprn: organisation.ukprn.clone().unwrap_or_default(),
        organisation_reference: organisation.reference.clone(),
        status: status(organisation.status).into(),
        version: organisation.version,
        create_time: Some(timestamp(organisation.created_at)),
        update_time: Some(timestamp(organisation.updated_at)),
    }
}

/// A user as the proto shows it; the lock shows only while in force at `now`.
pub fn user(user: &User, now: DateTime<Utc>) -> pb::User {
    let state = match user.state {
        UserState::Active => pb::UserState::Active,
        UserState::Disabled => pb::UserState::Disabled,
    };
    pb::User {
        user_id: user.id.to_string(),
        organisation_id: user
            .organisation_id
            .map(|id| id.to_string())
            .unwrap_or_default(),
        username: user.username.clone(),
        given_name: user.given_name.clone(),
        family_name: user.family_name.clone(),
        email: user.email.clone(),
        roles: user.roles.iter().copied().map(role).collect(),
        state: state.into(),
        uln: user.uln.clone().unwrap_or_default(),
        password_change_required: user.password_change_required,
        locked_until: optional_timestamp(user.locked_until.filter(|until| *until > now)),
        version: user.version,
        create_time: Some(timestamp(user.created_at)),
        update_time: Some(timestamp(user.updated_at)),
        last_sign_in_time: optional_timestamp(user.last_sign_in_at),
    }
}

/// A machine credential as the proto shows it (never its secret).
pub fn credential(credential: &ClientCredential) -> pb::ClientCredential {
    pb::ClientCredential {
        client_id: credential.client_id.to_string(),
        organisation_id: credential.organisation_id.to_string(),
        display_name: credential.display_name.clone(),
        roles: credential.roles.iter().copied().map(role).collect(),
        service: credential.service.clone().unwrap_or_default(),
        create_time: Some(timestamp(credential.created_at)),
        revoke_time: optional_timestamp(credential.revoked_at),
    }
}

/// A published signing key.
pub fn signing_key(key: &PublishedKey) -> pb::SigningKey {
    pb::SigningKey {
        key_id: key.key_id.clone(),
        algorithm: "EdDSA".to_owned(),
        public_key_pem: key.public_key_pem.clone(),
        create_time: Some(timestamp(key.created_at)),
        expire_time: optional_timestamp(key.expires_at),
    }
}

/// A provider list entry.
pub fn provider(provider: &Provider) -> pb::Provider {
    pb::Provider {
        ukprn: provider.ukprn.clone(),
        name: provider.name.clone(),
        status: provider.status.clone(),
        town: provider.town.clone(),
        postcode: provider.postcode.clone(),
        update_time: Some(timestamp(provider.updated_at)),
    }
}

/// An awarding organisation list entry.
pub fn awarding_organisation(entry: &AwardingOrganisationEntry) -> pb::AwardingOrganisation {
    pb::AwardingOrganisation {
        number: entry.number.clone(),
        name: entry.name.clone(),
        acronym: entry.acronym.clone(),
        status: entry.status.clone(),
        ukprn: entry.ukprn.clone(),
        update_time: Some(timestamp(entry.updated_at)),
    }
}

/// An audit event.
pub fn audit_event(event: &AuditEvent) -> pb::AuditEvent {
    let record = &event.record;
    let outcome = match record.outcome {
        AuditOutcome::Succeeded => pb::AuditOutcome::Succeeded,
        AuditOutcome::Refused => pb::AuditOutcome::Refused,
    };
    pb::AuditEvent {
        audit_event_id: record.id.to_string(),
        event_time: Some(timestamp(record.time)),
        actor_id: record.actor.id.clone(),
        actor_organisation_id: record
            .actor
            .organisation_id
            .map(|id| id.to_string())
            .unwrap_or_default(),
        action: record.action.clone(),
        target: record.target.clone(),
        outcome: outcome.into(),
        detail: record.detail.clone(),
        request_id: record.request_id.clone(),
    }
}
