//! Which roles a kind of organisation may grant, and who may manage whom.

use lrs_server::auth::Caller;
use uuid::Uuid;

use super::{OrganisationKind, Role, Violations};

/// The roles users of an organisation of `kind` may hold; `None` is a learner account,
/// which belongs to no organisation.
pub fn user_roles_for(kind: Option<OrganisationKind>) -> &'static [Role] {
    match kind {
        Some(OrganisationKind::LearnerRegistrationBody) => &[
            Role::OrgAdmin,
            Role::BatchUser,
            Role::OnlineUser,
            Role::ViewOnly,
        ],
        Some(OrganisationKind::AwardingOrganisation) => &[Role::OrgAdmin, Role::AoUser],
        Some(OrganisationKind::ServiceDesk) => &[Role::OrgAdmin, Role::ServiceDesk],
        None => &[Role::Learner],
    }
}

/// The roles an integrator's machine credential of an organisation of `kind` may carry:
/// those of its users, except managing users (a person's job).
pub fn credential_roles_for(kind: OrganisationKind) -> Vec<Role> {
    user_roles_for(Some(kind))
        .iter()
        .copied()
        .filter(|role| *role != Role::OrgAdmin)
        .collect()
}

/// Checks that `roles` is not empty and that every role is in `allowed`; violations go to
/// `field`.
pub fn check_roles(roles: &[Role], allowed: &[Role], field: &str, violations: &mut Violations) {
    if roles.is_empty() {
        violations.add(field, "at least one role is required");
    }
    let refused: Vec<&str> = roles
        .iter()
        .filter(|role| !allowed.contains(role))
        .map(|role| role.as_str())
        .collect();
    if !refused.is_empty() {
        let allowed: Vec<&str> = allowed.iter().map(|role| role.as_str()).collect();
        violations.add(
            field,
            format!(
                "{} may not be granted here; allowed: {}",
                refused.join(", "),
                allowed.join(", ")
            ),
        );
    }
}

/// Who a caller may manage.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Manager {
    /// The service desk: every organisation, and learner accounts.
    ServiceDesk,
    /// An organisation admin: the users and credentials of its own organisation.
    Admin {
        /// The admin's organisation.
        organisation_id: Uuid,
    },
}

impl Manager {
    /// The manager a caller is, if any.
    pub fn of(caller: &Caller) -> Option<Manager> {
        if caller.is_service_desk() {
            return Some(Manager::ServiceDesk);
        }
        let organisation_id = caller_organisation(caller)?;
        caller
            .has_role(Role::OrgAdmin)
            .then_some(Manager::Admin { organisation_id })
    }

    /// Whether this manager may manage the users of `organisation_id` (`None`: learner
    /// accounts).
    pub fn may_manage(self, organisation_id: Option<Uuid>) -> bool {
        match self {
            Manager::ServiceDesk => true,
            Manager::Admin {
                organisation_id: own,
            } => organisation_id == Some(own),
        }
    }
}

/// The caller's own organisation as a UUID, if it has one.
pub fn caller_organisation(caller: &Caller) -> Option<Uuid> {
    caller
        .organisation_id()
        .and_then(|id| Uuid::try_parse(id).ok())
}

/// Whether the caller may read the user `user_id` of `organisation_id`: themselves, their
/// organisation's admin, or the service desk.
pub fn may_read_user(caller: &Caller, user_id: Uuid, organisation_id: Option<Uuid>) -> bool {
    caller.subject() == user_id.to_string()
        || Manager::of(caller).is_some_and(|manager| manager.may_manage(organisation_id))
}

/// Whether the caller may read the organisation `organisation_id`: its own, or any for the
/// service desk.
pub fn may_read_organisation(caller: &Caller, organisation_id: Uuid) -> bool {
    caller.is_service_desk() || caller_organisation(caller) == Some(organisation_id)
}

#[cfg(test)]
mod tests {
    use lrs_server::auth::{Claims, PrincipalKind};

    use super::*;

    fn caller(roles: Vec<Role>, organisation: Option<Uuid>) -> Caller {
        Caller {
            claims: Claims {
                iss: "lrs".into(),
                sub: Uuid::new_v4().to_string(),
                exp: 0,
                iat: 0,
                jti: "t".into(),
                kind: PrincipalKind::User,
                org: organisation.map(|id| id.to_string()),
                org_kind: None,
                ukprn: None,
                roles,
                uln: None,
                pwd_change: false,
            },
            acting_for: None,
        }
    }

    #[test]
    fn roles_follow_the_kind_of_organisation() {
        let lrb = user_roles_for(Some(OrganisationKind::LearnerRegistrationBody));
        let mut violations = Violations::under("user.");
        check_roles(
            &[Role::BatchUser, Role::OrgAdmin],
            lrb,
            "roles",
            &mut violations,
        );
        assert!(violations.is_empty());
        check_roles(&[Role::AoUser], lrb, "roles", &mut violations);
        check_roles(&[], lrb, "roles", &mut violations);
        assert_eq!(violations.into_vec().len(), 2);
        assert_eq!(user_roles_for(None), [Role::Learner]);
        assert!(
            !credential_roles_for(OrganisationKind::AwardingOrganisation).contains(&Role::OrgAdmin)
        );
    }

    #[test]
    fn admins_manage_only_their_own_organisation() {
        let own = Uuid::new_v4();
        let admin = caller(vec![Role::OrgAdmin], Some(own));
        let manager = Manager::of(&admin).expect("an admin manages");
        assert!(manager.may_manage(Some(own)));
        assert!(!manager.may_manage(Some(Uuid::new_v4())));
        assert!(!manager.may_manage(None));

        let batch = caller(vec![Role::BatchUser], Some(own));
        assert_eq!(Manager::of(&batch), None);
        let desk = caller(vec![Role::ServiceDesk], Some(Uuid::new_v4()));
        assert!(Manager::of(&desk).is_some_and(|m| m.may_manage(None)));
    }

    #[test]
    fn users_read_themselves() {
        let own = Uuid::new_v4();
        let batch = caller(vec![Role::BatchUser], Some(own));
        let me = Uuid::try_parse(batch.subject()).expect("uuid");
        assert!(may_read_user(&batch, me, Some(own)));
        assert!(!may_read_user(&batch, Uuid::new_v4(), Some(own)));
        assert!(may_read_organisation(&batch, own));
        assert!(!may_read_organisation(&batch, Uuid::new_v4()));
    }
}
