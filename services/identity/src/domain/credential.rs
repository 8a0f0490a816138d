//! Machine credentials: integrators' clients and the suite's own services.

use chrono::{DateTime, Utc};
use uuid::Uuid;

use super::organisation::Choice;
use super::permissions::{check_roles, credential_roles_for};
use super::{FieldViolation, OrganisationKind, Role, Violations, fields, normalise_roles};

/// A machine credential as stored (its secret is kept only as a hash, elsewhere).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ClientCredential {
    /// The public client id.
    pub client_id: Uuid,
    /// The organisation it acts for.
    pub organisation_id: Uuid,
    /// What it is for.
    pub display_name: String,
    /// The roles its tokens carry.
    pub roles: Vec<Role>,
    /// For the suite's own services, the service's name.
    pub service: Option<String>,
    /// When it was created.
    pub created_at: DateTime<Utc>,
    /// When it was revoked.
    pub revoked_at: Option<DateTime<Utc>>,
}

/// A credential as a caller describes it.
#[derive(Debug, Clone)]
pub struct CredentialDraft {
    /// What it is for.
    pub display_name: String,
    /// Roles asked for.
    pub roles: Vec<Choice<Role>>,
    /// The service name, for the suite's own services.
    pub service: String,
}

/// A valid new credential, before it has an id and secret.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NewCredential {
    /// What it is for.
    pub display_name: String,
    /// Roles.
    pub roles: Vec<Role>,
    /// Service name.
    pub service: Option<String>,
}

/// A service name: 1 to 32 lowercase ASCII letters, digits or `-`.
pub fn service_name(value: &str) -> Result<String, fields::FieldError> {
    let allowed = |b: u8| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-';
    if value.is_empty() {
        Err(fields::FieldError::Required)
    } else if value.len() <= 32 && value.bytes().all(allowed) {
        Ok(value.to_owned())
    } else {
        Err(fields::FieldError::BadText)
    }
}

/// Validates a new credential of an organisation of `kind`, reporting every bad field under
/// `credential.`. A service credential (with `service`) holds `ROLE_SERVICE` only and belongs
/// to the service desk.
pub fn validate_new(
    draft: CredentialDraft,
    kind: OrganisationKind,
) -> Result<NewCredential, Vec<FieldViolation>> {
    let mut violations = Violations::under("credential.");
    let display_name = violations.check("display_name", fields::text(&draft.display_name, 255));
    let mut roles = Vec::new();
    for choice in &draft.roles {
        match choice {
            Choice::Known(role) => roles.push(*role),
            Choice::Unset => violations.add("roles", "ROLE_UNSPECIFIED is not a role"),
            Choice::Unknown(number) => violations.add("roles", format!("{number} is not a role")),
        }
    }
    normalise_roles(&mut roles);

    let service = match draft.service.as_str() {
        "" => {
            check_roles(
                &roles,
                &credential_roles_for(kind),
                "roles",
                &mut violations,
            );
            None
        }
        given => {
            if roles != [Role::Service] {
                violations.add("roles", "a service credential holds ROLE_SERVICE only");
            }
            if kind != OrganisationKind::ServiceDesk {
                violations.add("service", "service credentials belong to the service desk");
            }
            violations.check("service", service_name(given))
        }
    };
    match display_name {
        Some(display_name) if violations.is_empty() => Ok(NewCredential {
            display_name,
            roles,
            service,
        }),
        _ => Err(violations.into_vec()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn integrator_credentials_take_their_organisations_roles() {
        let draft = CredentialDraft {
            display_name: "MIS".into(),
            roles: vec![Choice::Known(Role::BatchUser)],
            service: String::new(),
        };
        assert!(validate_new(draft.clone(), OrganisationKind::LearnerRegistrationBody).is_ok());
        assert!(validate_new(draft, OrganisationKind::AwardingOrganisation).is_err());
        let admin = CredentialDraft {
            display_name: "MIS".into(),
            roles: vec![Choice::Known(Role::OrgAdmin)],
            service: String::new(),
        };
        assert!(validate_new(admin, OrganisationKind::LearnerRegistrationBody).is_err());
    }

    #[test]
    fn service_credentials_hold_only_the_service_role() {
        let draft = CredentialDraft {
            display_name: "learner service".into(),
            roles: vec![Choice::Known(Role::Service)],
            service: "learner".into(),
        };
        let new = validate_new(draft.clone(), OrganisationKind::ServiceDesk).expect("valid");
        assert_eq!(new.service.as_deref(), Some("learner"));
        assert_eq!(
            validate_new(draft, OrganisationKind::AwardingOrganisation)
                .unwrap_err()
                .len(),
            1
        );
        let wrong = CredentialDraft {
            display_name: "x".into(),
            roles: vec![Choice::Known(Role::Service)],
            service: String::new(),
        };
        assert!(validate_new(wrong, OrganisationKind::ServiceDesk).is_err());
    }
}
