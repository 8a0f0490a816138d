//! Users and learner accounts: their fields, roles and the last-admin rule.

use chrono::{DateTime, Utc};
use uuid::Uuid;

use super::organisation::Choice;
use super::permissions::{check_roles, user_roles_for};
use super::{FieldViolation, OrganisationKind, Role, Violations, fields, normalise_roles};

/// Whether a user may sign in.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum UserState {
    /// May sign in.
    Active,
    /// Disabled by an admin or the service desk.
    Disabled,
}

impl UserState {
    /// The stored name (`ACTIVE`).
    pub fn name(self) -> &'static str {
        match self {
            UserState::Active => "ACTIVE",
            UserState::Disabled => "DISABLED",
        }
    }

    /// The state with the stored name `name`.
    pub fn from_name(name: &str) -> Option<Self> {
        [Self::Active, Self::Disabled]
            .into_iter()
            .find(|state| state.name() == name)
    }
}

/// A user as stored (without the password hash).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct User {
    /// Its id.
    pub id: Uuid,
    /// Its organisation; `None` for a learner account.
    pub organisation_id: Option<Uuid>,
    /// The sign-in name as given.
    pub username: String,
    /// Given name.
    pub given_name: String,
    /// Family name.
    pub family_name: String,
    /// Contact email; may be empty.
    pub email: String,
    /// Roles held, in canonical order.
    pub roles: Vec<Role>,
    /// Whether the user may sign in.
    pub state: UserState,
    /// A learner account's ULN.
    pub uln: Option<String>,
    /// True when the password was generated and must be changed at the next sign-in.
    pub password_change_required: bool,
    /// Failed sign-ins in a row since the last success or lock.
    pub failed_sign_ins: i64,
    /// Set while locked after failed sign-ins.
    pub locked_until: Option<DateTime<Utc>>,
    /// Incremented on every change.
    pub version: i64,
    /// When it was created.
    pub created_at: DateTime<Utc>,
    /// When it last changed.
    pub updated_at: DateTime<Utc>,
    /// When the user last signed in.
    pub last_sign_in_at: Option<DateTime<Utc>>,
}

impl User {
    /// True for an active user holding `ORG_ADMIN`.
    pub fn is_active_admin(&self) -> bool {
        self.state == UserState::Active && self.roles.contains(&Role::OrgAdmin)
    }

    /// True for a learner's own account.
    pub fn is_learner(&self) -> bool {
        self.organisation_id.is_none()
    }

    /// True when the fields a caller can change equal those of `other`.
    pub fn same_details(&self, other: &User) -> bool {
        self.given_name == other.given_name
            && self.family_name == other.family_name
            && self.email == other.email
            && self.roles == other.roles
    }
}

/// A user as a caller describes it on create.
#[derive(Debug, Clone)]
pub struct UserDraft {
    /// The organisation's id; empty for the caller's own (or none, for a learner account).
    pub organisation_id: String,
    /// Sign-in name.
    pub username: String,
    /// Given name.
    pub given_name: String,
    /// Family name.
    pub family_name: String,
    /// Contact email.
    pub email: String,
    /// Roles asked for.
    pub roles: Vec<Choice<Role>>,
    /// A learner account's ULN.
    pub uln: String,
}

impl UserDraft {
    /// True when the draft describes a learner account (it asks for `ROLE_LEARNER`).
    pub fn is_learner(&self) -> bool {
        self.roles.contains(&Choice::Known(Role::Learner))
    }

    /// The organisation the user would belong to: the one named, or the caller's own when
    /// none is named; `None` for a learner account. A malformed id is a violation of
    /// `user.organisation_id`.
    pub fn organisation(
        &self,
        caller_organisation: Option<Uuid>,
    ) -> Result<Option<Uuid>, FieldViolation> {
        let violation =
            |description: &str| FieldViolation::new("user.organisation_id", description);
        match (self.is_learner(), self.organisation_id.as_str()) {
            (true, "") => Ok(None),
            (true, _) => Err(violation("must be empty for a learner account")),
            (false, "") => caller_organisation
                .map(Some)
                .ok_or_else(|| violation("is required: the caller belongs to no organisation")),
            (false, given) => fields::uuid(given)
                .map(Some)
                .map_err(|error| violation(&error.to_string())),
        }
    }
}

/// A valid new user, before it has an id, password and times.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NewUser {
    /// Its organisation; `None` for a learner account.
    pub organisation_id: Option<Uuid>,
    /// Sign-in name.
    pub username: String,
    /// Given name.
    pub given_name: String,
    /// Family name.
    pub family_name: String,
    /// Contact email.
    pub email: String,
    /// Roles, canonical order.
    pub roles: Vec<Role>,
    /// A learner account's ULN.
    pub uln: Option<String>,
}

impl NewUser {
    /// The user stored with `id` at `now`; `password_change_required` as given.
    pub fn into_user(self, id: Uuid, password_change_required: bool, now: DateTime<Utc>) -> User {
        User {
            id,
            organisation_id: self.organisation_id,
            username: self.username,
            given_name: self.given_name,
            family_name: self.family_name,
            email: self.email,
            roles: self.roles,
            state: UserState::Active,
            uln: self.uln,
            password_change_required,
            failed_sign_ins: 0,
            locked_until: None,
            version: 1,
            created_at: now,
            updated_at: now,
            last_sign_in_at: None,
        }
    }
}

/// Known roles of `choices`, with a violation for each unknown or unset one.
fn known_roles(choices: &[Choice<Role>], violations: &mut Violations) -> Vec<Role> {
    let mut roles = Vec::new();
    for choice in choices {
        match choice {
            Choice::Known(role) => roles.push(*role),
            Choice::Unset => violations.add("roles", "ROLE_UNSPECIFIED is not a role"),
            Choice::Unknown(number) => violations.add("roles", format!("{number} is not a role")),
        }
    }
    normalise_roles(&mut roles);
    roles
}

/// Validates a new user for the organisation `organisation` resolved from the draft (with
/// its kind), reporting every bad field under `user.`.
pub fn validate_new(
    draft: UserDraft,
    organisation: Result<Option<(Uuid, OrganisationKind)>, FieldViolation>,
) -> Result<NewUser, Vec<FieldViolation>> {
    let mut violations = Violations::under("user.");
    let username = violations.check("username", fields::username(&draft.username));
    let given_name = violations.check("given_name", fields::person_name(&draft.given_name));
    let family_name = violations.check("family_name", fields::person_name(&draft.family_name));
    let email = violations.check("email", fields::email(&draft.email));
    let roles = known_roles(&draft.roles, &mut violations);

    let mut found = Vec::new();
    let organisation = match organisation {
        Ok(organisation) => Some(organisation),
        Err(violation) => {
            found.push(violation);
            None
        }
    };
    if let Some(organisation) = organisation {
        check_roles(
            &roles,
            user_roles_for(organisation.map(|(_, kind)| kind)),
            "roles",
            &mut violations,
        );
    }
    let uln = match (draft.is_learner(), draft.uln.as_str()) {
        (true, given) => violations.check("uln", fields::uln(given)),
        (false, "") => None,
        (false, _) => {
            violations.add("uln", "is only for learner accounts");
            None
        }
    };

    found.extend(violations.into_vec());
    match (organisation, username, given_name, family_name, email) {
        (Some(organisation), Some(username), Some(given_name), Some(family_name), Some(email))
            if found.is_empty() =>
        {
            Ok(NewUser {
                organisation_id: organisation.map(|(id, _)| id),
                username,
                given_name,
                family_name,
                email,
                roles,
                uln,
            })
        }
        _ => Err(found),
    }
}

/// The changes an update asks for; `None` leaves a field as it is.
#[derive(Debug, Clone, Default)]
pub struct UserChanges {
    /// A new given name.
    pub given_name: Option<String>,
    /// A new family name.
    pub family_name: Option<String>,
    /// A new email (empty clears it).
    pub email: Option<String>,
    /// New roles, replacing the old.
    pub roles: Option<Vec<Choice<Role>>>,
}

/// The user after `changes`, validated for an organisation of `kind` (`None`: a learner
/// account). Version and times are left for the store to set.
pub fn apply_changes(
    current: &User,
    changes: UserChanges,
    kind: Option<OrganisationKind>,
) -> Result<User, Vec<FieldViolation>> {
    let mut violations = Violations::under("user.");
    let mut updated = current.clone();
    if let Some(name) = changes.given_name
        && let Some(name) = violations.check("given_name", fields::person_name(&name))
    {
        updated.given_name = name;
    }
    if let Some(name) = changes.family_name
        && let Some(name) = violations.check("family_name", fields::person_name(&name))
    {
        updated.family_name = name;
    }
    if let Some(email) = changes.email
        && let Some(email) = violations.check("email", fields::email(&email))
    {
        updated.email = email;
    }
    if let Some(roles) = changes.roles {
        let roles = known_roles(&roles, &mut violations);
        check_roles(&roles, user_roles_for(kind), "roles", &mut violations);
        updated.roles = roles;
    }
    violations.finish(|| updated)
}

/// True when changing `before` into `after` would leave its organisation without an active
/// admin, given how many other active admins it has.
pub fn removes_last_admin(before: &User, after: &User, other_active_admins: usize) -> bool {
    before.is_active_admin() && !after.is_active_admin() && other_active_admins == 0
}

#[cfg(test)]
mod tests {
    use super::*;

    fn draft() -> UserDraft {
        UserDraft {
            organisation_id: String::new(),
            username: "ann.admin".into(),
            given_name: "Ann".into(),
            family_name: "Admin".into(),
            email: "ann@example.org".into(),
            roles: vec![Choice::Known(Role::OrgAdmin)],
            uln: String::new(),
        }
    }

    #[test]
    fn a_user_takes_the_callers_organisation_by_default() {
        let own = Uuid::new_v4();
        let draft = draft();
        assert_eq!(draft.organisation(Some(own)), Ok(Some(own)));
        assert!(draft.organisation(None).is_err());
        let organisation = Ok(Some((own, OrganisationKind::LearnerRegistrationBody)));
        let new = validate_new(draft, organisation).expect("valid");
        assert_eq!(new.organisation_id, Some(own));
    }

    #[test]
    fn every_bad_field_is_listed() {
        let bad = UserDraft {
            username: "x".into(),
            given_name: String::new(),
            email: "nope".into(),
            roles: vec![Choice::Known(Role::AoUser), Choice::Unset],
            uln: "1748529632".into(),
            ..draft()
        };
        let organisation = Ok(Some((
            Uuid::new_v4(),
            OrganisationKind::LearnerRegistrationBody,
        )));
        let fields: Vec<_> = validate_new(bad, organisation)
            .unwrap_err()
            .into_iter()
            .map(|v| v.field)
            .collect();
        assert_eq!(
            fields,
            [
                "user.username",
                "user.given_name",
                "user.email",
                "user.roles",
                "user.roles",
                "user.uln"
            ]
        );
    }

    #[test]
    fn learner_accounts_have_a_uln_and_no_organisation() {
        let learner = UserDraft {
            roles: vec![Choice::Known(Role::Learner)],
            uln: "9276308686".into(),
            ..draft()
        };
        assert_eq!(learner.organisation(Some(Uuid::new_v4())), Ok(None));
        let new = validate_new(learner.clone(), Ok(None)).expect("valid");
        assert_eq!(new.uln.as_deref(), Some("9276308686"));

        let bad_uln = UserDraft {
            uln: "9276308687".into(),
            ..learner
        };
        assert_eq!(
            validate_new(bad_uln, Ok(None)).unwrap_err()[0].field,
            "user.uln"
        );
    }

    #[test]
    fn the_last_active_admin_stays() {
        let admin = NewUser {
            organisation_id: Some(Uuid::new_v4()),
            username: "a.admin".into(),
            given_name: "A".into(),
            family_name: "B".into(),
            email: String::new(),
            roles: vec![Role::OrgAdmin, Role::OnlineUser],
            uln: None,
        }
        .into_user(Uuid::new_v4(), false, Utc::now());
        let demoted = apply_changes(
            &admin,
            UserChanges {
                roles: Some(vec![Choice::Known(Role::OnlineUser)]),
                ..Default::default()
            },
            Some(OrganisationKind::LearnerRegistrationBody),
        )
        .expect("valid");
        assert!(removes_last_admin(&admin, &demoted, 0));
        assert!(!removes_last_admin(&admin, &demoted, 1));
        let disabled = User {
            state: UserState::Disabled,
            ..admin.clone()
        };
        assert!(removes_last_admin(&admin, &disabled, 0));
        assert!(!removes_last_admin(&demoted, &disabled, 0));
    }
}
