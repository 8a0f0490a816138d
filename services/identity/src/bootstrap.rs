//! What `lrs up` creates: the service desk and its first admin, the suite's own service
//! credentials, and (with `--demo`) the demonstration organisations and users.
//!
//! Every function is idempotent: it creates what is missing and leaves the rest. Passwords
//! and secrets are returned to the caller, never logged.

use std::fmt;

use uuid::Uuid;

use crate::domain::audit::{
    Actor, AuditAction, AuditRecord, client_target, organisation_target, user_target,
};
use crate::domain::credential::{ClientCredential, service_name};
use crate::domain::fields::generate_organisation_reference;
use crate::domain::organisation::{LrbType, NewOrganisation, Organisation, OrganisationStatus};
use crate::domain::user::NewUser;
use crate::domain::{OrganisationKind, Role, password};
use crate::store::{Created, IdentityStore, StoreError};
use crate::tokens::{digest, new_secret};
use lrs_fields::Clock;

/// The username of the service desk's first admin.
pub const ADMIN_USERNAME: &str = "admin";
/// The password every demonstration account has (documented; never use it elsewhere).
pub const DEMO_PASSWORD: &str = "demo-password-1";
/// The UKPRN of the demonstration learner registration body.
pub const DEMO_LRB_UKPRN: &str = "10000001";
/// The UKPRN of the demonstration awarding organisation.
pub const DEMO_AO_UKPRN: &str = "10000002";
/// The ULN of the demonstration learner account (a valid ULN from the published examples).
pub const DEMO_LEARNER_ULN: &str = "9276308686";

/// What went wrong while bootstrapping.
#[derive(Debug, thiserror::Error)]
pub enum BootstrapError {
    /// The store failed.
    #[error("storage failed: {0}")]
    Store(#[from] StoreError),
    /// Hashing a password failed.
    #[error("password hashing failed: {0}")]
    Hashing(String),
    /// The service name is not usable.
    #[error("`{0}` is not a service name: use lowercase letters, digits and `-`")]
    InvalidServiceName(String),
}

/// The service desk's first admin, created now with a generated password that must be
/// changed at the first sign-in.
#[derive(Clone, PartialEq, Eq)]
pub struct BootstrapAdmin {
    /// The username (`admin`).
    pub username: String,
    /// The generated password: write it to an owner-only file, never to a log.
    pub password: String,
}

impl fmt::Debug for BootstrapAdmin {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("BootstrapAdmin")
            .field("username", &self.username)
            .finish_non_exhaustive()
    }
}

/// A service's machine credential with its fresh secret.
#[derive(Clone, PartialEq, Eq)]
pub struct ServiceCredential {
    /// The client id.
    pub client_id: String,
    /// The secret, new at every call.
    pub client_secret: String,
}

impl fmt::Debug for ServiceCredential {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ServiceCredential")
            .field("client_id", &self.client_id)
            .finish_non_exhaustive()
    }
}

/// A demonstration account, for the CLI to print.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DemoAccount {
    /// Username.
    pub username: String,
    /// Password ([`DEMO_PASSWORD`]).
    pub password: String,
    /// The organisation's name; empty for the learner account.
    pub organisation: String,
    /// The roles held.
    pub roles: Vec<Role>,
    /// The learner account's ULN.
    pub uln: Option<String>,
}

fn record(
    clock: &dyn Clock,
    action: AuditAction,
    target: String,
    organisation: Option<Uuid>,
) -> AuditRecord {
    AuditRecord::new(
        Actor::default(),
        action,
        target,
        crate::now(clock),
        "bootstrap",
    )
    .on_organisation(organisation)
    .with_detail("bootstrap")
}

async fn hash(password: String) -> Result<String, BootstrapError> {
    tokio::task::spawn_blocking(move || password::hash(&password))
        .await
        .map_err(|error| BootstrapError::Hashing(error.to_string()))?
        .map_err(|error| BootstrapError::Hashing(error.to_string()))
}

fn created<T>(created: Created<T>) -> T {
    match created {
        Created::New(value) | Created::Existing(value) => value,
    }
}

async fn create_organisation(
    store: &dyn IdentityStore,
    clock: &dyn Clock,
    new: NewOrganisation,
) -> Result<Organisation, BootstrapError> {
    let id = Uuid::new_v4();
    let organisation =
        new.into_organisation(id, generate_organisation_reference(), crate::now(clock));
    let audit = record(
        clock,
        AuditAction::CreateOrganisation,
        organisation_target(id),
        Some(id),
    );
    let stored = store
        .create_organisation(&organisation, None, &audit)
        .await?;
    tracing::info!(organisation_id = %id, "created organisation at bootstrap");
    Ok(created(stored))
}

/// The service-desk organisation, created if there is none.
async fn service_desk(
    store: &dyn IdentityStore,
    clock: &dyn Clock,
) -> Result<Organisation, BootstrapError> {
    if let Some(desk) = store.service_desk_organisation().await? {
        return Ok(desk);
    }
    let new = NewOrganisation {
        kind: OrganisationKind::ServiceDesk,
        lrb_type: None,
        display_name: "LRS Service Desk".to_owned(),
        ukprn: None,
        reference: None,
        status: OrganisationStatus::Active,
    };
    create_organisation(store, clock, new).await
}

/// Creates a user unless the username exists; `password_change_required` as given.
async fn ensure_user(
    store: &dyn IdentityStore,
    clock: &dyn Clock,
    new: NewUser,
    password: &str,
    change_required: bool,
) -> Result<bool, BootstrapError> {
    if store.user_for_sign_in(&new.username).await?.is_some() {
        return Ok(false);
    }
    let hash = hash(password.to_owned()).await?;
    let id = Uuid::new_v4();
    let user = new.into_user(id, change_required, crate::now(clock));
    let audit = record(
        clock,
        AuditAction::CreateUser,
        user_target(id),
        user.organisation_id,
    );
    match store.create_user(&user, &hash, None, &audit).await {
        Ok(_) => {
            tracing::info!(user_id = %id, "created user at bootstrap");
            Ok(true)
        }
        // Another replica created it first.
        Err(StoreError::UsernameTaken) => Ok(false),
        Err(error) => Err(error.into()),
    }
}

/// On first start, creates the service-desk organisation and its admin (`admin`, roles
/// ORG_ADMIN and SERVICE_DESK) with a generated password that must be changed, and returns
/// them; `None` when the admin exists already.
pub async fn ensure_service_desk(
    store: &dyn IdentityStore,
    clock: &dyn Clock,
) -> Result<Option<BootstrapAdmin>, BootstrapError> {
    let desk = service_desk(store, clock).await?;
    let password = password::generate();
    let admin = NewUser {
        organisation_id: Some(desk.id),
        username: ADMIN_USERNAME.to_owned(),
        given_name: "Service".to_owned(),
        family_name: "Desk".to_owned(),
        email: String::new(),
        roles: vec![Role::OrgAdmin, Role::ServiceDesk],
        uln: None,
    };
    let created = ensure_user(store, clock, admin, &password, true).await?;
    Ok(created.then(|| BootstrapAdmin {
        username: ADMIN_USERNAME.to_owned(),
        password,
    }))
}

/// The machine credential of the suite's service `service` (ROLE_SERVICE, in the service
/// desk), created if missing; its secret is replaced at every call, so nothing needs
/// keeping on disk between starts.
pub async fn ensure_service_credential(
    store: &dyn IdentityStore,
    clock: &dyn Clock,
    service: &str,
) -> Result<ServiceCredential, BootstrapError> {
    let service =
        service_name(service).map_err(|_| BootstrapError::InvalidServiceName(service.into()))?;
    let desk = service_desk(store, clock).await?;
    let secret = new_secret();

    if let Some(existing) = store.service_credential(&service).await? {
        let audit = record(
            clock,
            AuditAction::RotateServiceCredential,
            client_target(existing.client_id),
            Some(desk.id),
        );
        store
            .replace_credential_secret(existing.client_id, &digest(&secret), &audit)
            .await?;
        tracing::info!(client_id = %existing.client_id, %service, "replaced service secret");
        return Ok(ServiceCredential {
            client_id: existing.client_id.to_string(),
            client_secret: secret,
        });
    }

    let credential = ClientCredential {
        client_id: Uuid::new_v4(),
        organisation_id: desk.id,
        display_name: format!("the {service} service"),
        roles: vec![Role::Service],
        service: Some(service.clone()),
        created_at: crate::now(clock),
        revoked_at: None,
    };
    let audit = record(
        clock,
        AuditAction::CreateClientCredential,
        client_target(credential.client_id),
        Some(desk.id),
    );
    store
        .create_credential(&credential, &digest(&secret), None, &audit)
        .await?;
    tracing::info!(client_id = %credential.client_id, %service, "created service credential");
    Ok(ServiceCredential {
        client_id: credential.client_id.to_string(),
        client_secret: secret,
    })
}

/// One demonstration user to create.
struct DemoUser<'a> {
    username: &'static str,
    given_name: &'static str,
    family_name: &'static str,
    organisation: Option<&'a Organisation>,
    roles: &'static [Role],
}

impl<'a> DemoUser<'a> {
    fn new(
        username: &'static str,
        given_name: &'static str,
        family_name: &'static str,
        organisation: Option<&'a Organisation>,
        roles: &'static [Role],
    ) -> Self {
        Self {
            username,
            given_name,
            family_name,
            organisation,
            roles,
        }
    }
}

async fn demo_organisation(
    store: &dyn IdentityStore,
    clock: &dyn Clock,
    new: NewOrganisation,
) -> Result<Organisation, BootstrapError> {
    let ukprn = new.ukprn.clone().unwrap_or_default();
    match store.organisation_by_ukprn(&ukprn).await? {
        Some(existing) => Ok(existing),
        None => create_organisation(store, clock, new).await,
    }
}

/// Creates, unless they exist, the demonstration organisations (a school with UKPRN
/// 10000001 and an awarding organisation with UKPRN 10000002) and their users, with the
/// documented password [`DEMO_PASSWORD`] that need not be changed, and a learner account.
pub async fn seed_demo(
    store: &dyn IdentityStore,
    clock: &dyn Clock,
) -> Result<Vec<DemoAccount>, BootstrapError> {
    let school = demo_organisation(
        store,
        clock,
        NewOrganisation {
            kind: OrganisationKind::LearnerRegistrationBody,
            lrb_type: Some(LrbType::School),
            display_name: "Demo School".to_owned(),
            ukprn: Some(DEMO_LRB_UKPRN.to_owned()),
            reference: None,
            status: OrganisationStatus::Active,
        },
    )
    .await?;
    let awarding_body = demo_organisation(
        store,
        clock,
        NewOrganisation {
            kind: OrganisationKind::AwardingOrganisation,
            lrb_type: None,
            display_name: "Demo Awarding Body".to_owned(),
            ukprn: Some(DEMO_AO_UKPRN.to_owned()),
            reference: None,
            status: OrganisationStatus::Active,
        },
    )
    .await?;

    let accounts = [
        DemoUser::new(
            "demo.lrb.admin",
            "Dana",
            "Admin",
            Some(&school),
            &[Role::OrgAdmin],
        ),
        DemoUser::new(
            "demo.lrb.batch",
            "Bob",
            "Batch",
            Some(&school),
            &[Role::BatchUser, Role::OnlineUser],
        ),
        DemoUser::new(
            "demo.lrb.online",
            "Olive",
            "Online",
            Some(&school),
            &[Role::OnlineUser],
        ),
        DemoUser::new(
            "demo.ao",
            "Avery",
            "Awarding",
            Some(&awarding_body),
            &[Role::AoUser],
        ),
        DemoUser::new("demo.learner", "Lee", "Learner", None, &[Role::Learner]),
    ];
    let mut seeded = Vec::new();
    for DemoUser {
        username,
        given_name,
        family_name,
        organisation,
        roles,
    } in accounts
    {
        let roles = roles.to_vec();
        let uln = organisation.is_none().then(|| DEMO_LEARNER_ULN.to_owned());
        let new = NewUser {
            organisation_id: organisation.map(|organisation| organisation.id),
            username: username.to_owned(),
            given_name: given_name.to_owned(),
            family_name: family_name.to_owned(),
            email: String::new(),
            roles: roles.clone(),
            uln: uln.clone(),
        };
        ensure_user(store, clock, new, DEMO_PASSWORD, false).await?;
        seeded.push(DemoAccount {
            username: username.to_owned(),
            password: DEMO_PASSWORD.to_owned(),
            organisation: organisation
                .map(|organisation| organisation.display_name.clone())
                .unwrap_or_default(),
            roles,
            uln,
        });
    }
    Ok(seeded)
}
