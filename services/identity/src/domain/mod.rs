//! The rules of identity, without I/O: what an organisation, a user and a machine
//! credential are and which values they accept, the password policy, which roles a kind of
//! organisation may grant, who may manage whom, the lockout after failed sign-ins, paging and
//! the audit log's records.
//!
//! Validation collects every violation, with the request's field path, so one
//! `INVALID_ARGUMENT` lists all that is wrong.

pub mod audit;
pub mod credential;
pub mod fields;
pub mod lockout;
pub mod organisation;
pub mod paging;
pub mod password;
pub mod permissions;
pub mod user;

pub use lrs_server::auth::{OrganisationKind, Role};
pub use lrs_server::error::FieldViolation;

/// Violations found while validating one request, with the path prefix of the message they
/// are in (`user.`).
#[derive(Debug, Default)]
pub struct Violations {
    prefix: &'static str,
    found: Vec<FieldViolation>,
}

impl Violations {
    /// Collects violations of fields under `prefix` (`"user."`, or `""` for top-level fields).
    pub fn under(prefix: &'static str) -> Self {
        Self {
            prefix,
            found: Vec::new(),
        }
    }

    /// Records that `field` (relative to the prefix) is wrong, and why.
    pub fn add(&mut self, field: &str, description: impl Into<String>) {
        self.found.push(FieldViolation::new(
            format!("{}{field}", self.prefix),
            description,
        ));
    }

    /// Records the error of `outcome`, if any, against `field`, and returns its value.
    pub fn check<T, E: std::fmt::Display>(
        &mut self,
        field: &str,
        outcome: Result<T, E>,
    ) -> Option<T> {
        match outcome {
            Ok(value) => Some(value),
            Err(error) => {
                self.add(field, error.to_string());
                None
            }
        }
    }

    /// Moves the violations of `other` into this collection.
    pub fn extend(&mut self, other: Violations) {
        self.found.extend(other.found);
    }

    /// True when nothing was wrong.
    pub fn is_empty(&self) -> bool {
        self.found.is_empty()
    }

    /// `Ok(value)` when nothing was wrong, else every violation.
    pub fn finish<T>(self, value: impl FnOnce() -> T) -> Result<T, Vec<FieldViolation>> {
        if self.found.is_empty() {
            Ok(value())
        } else {
            Err(self.found)
        }
    }

    /// The violations found.
    pub fn into_vec(self) -> Vec<FieldViolation> {
        self.found
    }
}

/// The name of a role as stored and shown (`ORG_ADMIN`).
pub fn role_name(role: Role) -> &'static str {
    role.as_str()
}

/// The role named `name` (`ORG_ADMIN`), if any.
pub fn role_from_name(name: &str) -> Option<Role> {
    ALL_ROLES.iter().copied().find(|role| role.as_str() == name)
}

/// Every role, in the order of the proto enum.
pub const ALL_ROLES: [Role; 8] = [
    Role::OrgAdmin,
    Role::BatchUser,
    Role::OnlineUser,
    Role::ViewOnly,
    Role::AoUser,
    Role::ServiceDesk,
    Role::Learner,
    Role::Service,
];

/// The stored name of an organisation kind.
pub fn organisation_kind_name(kind: OrganisationKind) -> &'static str {
    match kind {
        OrganisationKind::LearnerRegistrationBody => "LEARNER_REGISTRATION_BODY",
        OrganisationKind::AwardingOrganisation => "AWARDING_ORGANISATION",
        OrganisationKind::ServiceDesk => "SERVICE_DESK",
    }
}

/// The organisation kind with the stored name `name`, if any.
pub fn organisation_kind_from_name(name: &str) -> Option<OrganisationKind> {
    [
        OrganisationKind::LearnerRegistrationBody,
        OrganisationKind::AwardingOrganisation,
        OrganisationKind::ServiceDesk,
    ]
    .into_iter()
    .find(|kind| organisation_kind_name(*kind) == name)
}

/// Sorts roles in the proto enum's order and removes repeats.
pub fn normalise_roles(roles: &mut Vec<Role>) {
    roles.sort_by_key(|role| ALL_ROLES.iter().position(|known| known == role));
    roles.dedup();
}

/// Roles as stored: their names joined by commas, in canonical order.
pub fn roles_to_text(roles: &[Role]) -> String {
    roles
        .iter()
        .map(|role| role.as_str())
        .collect::<Vec<_>>()
        .join(",")
}

/// Roles read back from their stored text; `None` names an unknown role.
pub fn roles_from_text(text: &str) -> Result<Vec<Role>, String> {
    text.split(',')
        .filter(|name| !name.is_empty())
        .map(|name| role_from_name(name).ok_or_else(|| format!("unknown role `{name}`")))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn roles_round_trip_through_text_in_canonical_order() {
        let mut roles = vec![Role::OnlineUser, Role::OrgAdmin, Role::OnlineUser];
        normalise_roles(&mut roles);
        assert_eq!(roles, [Role::OrgAdmin, Role::OnlineUser]);
        let text = roles_to_text(&roles);
        assert_eq!(text, "ORG_ADMIN,ONLINE_USER");
        assert_eq!(roles_from_text(&text), Ok(roles));
        assert!(roles_from_text("ORG_ADMIN,WIZARD").is_err());
    }

    #[test]
    fn violations_carry_the_prefix_and_all_fields() {
        let mut violations = Violations::under("user.");
        violations.add("username", "is too short");
        violations.check::<(), _>("email", Err("is not an email address"));
        let found = violations.finish(|| ()).unwrap_err();
        let fields: Vec<_> = found.iter().map(|v| v.field.as_str()).collect();
        assert_eq!(fields, ["user.username", "user.email"]);
    }
}
