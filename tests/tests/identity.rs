//! Sign-in, organisations and users through the gateway, as an integrator sees them.

use lrs_proto::identity::v1::{
    CreateOrganisationRequest, CreateUserRequest, ListOrganisationsRequest, ListUsersRequest,
    LrbType, Organisation, OrganisationKind, Role, SignInRequest, User,
};
use lrs_testkit::{SignedIn, TestSuite, reason};
use tonic::Code;

/// The service desk creates a learner registration body with UKPRN `ukprn`.
async fn create_lrb(desk: &SignedIn, ukprn: &str) -> Organisation {
    let request = CreateOrganisationRequest {
        organisation: Some(Organisation {
            kind: OrganisationKind::LearnerRegistrationBody.into(),
            lrb_type: LrbType::College.into(),
            display_name: format!("College {ukprn}"),
            ukprn: ukprn.to_owned(),
            ..Organisation::default()
        }),
        request_id: format!("create-{ukprn}"),
    };
    let created = desk.identity().create_organisation(request).await;
    created
        .expect("the service desk creates an organisation")
        .into_inner()
        .organisation
        .expect("the created organisation")
}

/// `by` creates `username` with `roles` in `organisation_id` (empty: their own); returns the
/// user and the generated password.
async fn create_user(
    by: &SignedIn,
    organisation_id: &str,
    username: &str,
    roles: &[Role],
) -> Result<(User, String), tonic::Status> {
    let request = CreateUserRequest {
        user: Some(User {
            organisation_id: organisation_id.to_owned(),
            username: username.to_owned(),
            given_name: "Test".to_owned(),
            family_name: "User".to_owned(),
            roles: roles.iter().map(|role| (*role).into()).collect(),
            ..User::default()
        }),
        request_id: String::new(),
    };
    let created = by.identity().create_user(request).await?.into_inner();
    let user = created.user.expect("the created user");
    Ok((user, created.initial_password))
}

/// An LRB, its admin and a batch user, each signed in with their own password.
struct Lrb {
    organisation: Organisation,
    admin: SignedIn,
    batch_user: SignedIn,
    batch_username: String,
    batch_password: String,
}

async fn set_up_lrb(suite: &TestSuite, ukprn: &str) -> Lrb {
    let desk = suite.admin().await;
    let organisation = create_lrb(&desk, ukprn).await;

    let admin_name = format!("admin-{ukprn}");
    let (_, password) = create_user(
        &desk,
        &organisation.organisation_id,
        &admin_name,
        &[Role::OrgAdmin],
    )
    .await
    .expect("the service desk creates the LRB's admin");
    let admin = suite
        .sign_in(&admin_name, &password)
        .await
        .expect("the LRB admin signs in and changes the password");

    let batch_username = format!("batch-{ukprn}");
    let (batch, password) = create_user(&admin, "", &batch_username, &[Role::BatchUser])
        .await
        .expect("the LRB admin creates a batch user");
    assert_eq!(batch.organisation_id, organisation.organisation_id);
    let (batch_user, changed) = suite
        .sign_in_changing(&batch_username, &password)
        .await
        .expect("the batch user signs in and changes the password");
    let batch_password = changed.expect("a generated password must be changed");

    Lrb {
        organisation,
        admin,
        batch_user,
        batch_username,
        batch_password,
    }
}

#[tokio::test]
async fn the_service_desk_sets_up_an_lrb_whose_admin_adds_a_batch_user() {
    let suite = TestSuite::start().await;

    let lrb = set_up_lrb(&suite, "20000001").await;

    let request = ListUsersRequest {
        organisation_id: lrb.organisation.organisation_id.clone(),
        ..ListUsersRequest::default()
    };
    let users = lrb.admin.identity().list_users(request).await;
    let users = users
        .expect("the LRB admin lists its users")
        .into_inner()
        .users;
    let names: Vec<&str> = users.iter().map(|user| user.username.as_str()).collect();
    assert_eq!(names, ["admin-20000001", "batch-20000001"]);
    assert!(users.iter().all(|user| !user.password_change_required));
    suite.stop().await;
}

#[tokio::test]
async fn calls_without_a_token_are_unauthenticated() {
    let suite = TestSuite::start().await;

    let refused = suite
        .identity()
        .list_organisations(ListOrganisationsRequest::default())
        .await
        .expect_err("no token, no answer");

    assert_eq!(refused.code(), Code::Unauthenticated, "{refused:?}");
    assert_eq!(reason(&refused), "MISSING_TOKEN");
    suite.stop().await;
}

#[tokio::test]
async fn a_batch_user_may_not_create_users() {
    let suite = TestSuite::start().await;
    let lrb = set_up_lrb(&suite, "20000002").await;

    let refused = create_user(&lrb.batch_user, "", "sneaky-user", &[Role::OrgAdmin])
        .await
        .expect_err("a batch user cannot manage users");

    assert_eq!(refused.code(), Code::PermissionDenied, "{refused:?}");
    assert_eq!(reason(&refused), "ROLE_NOT_PERMITTED");
    suite.stop().await;
}

#[tokio::test]
async fn five_wrong_passwords_lock_the_account() {
    let suite = TestSuite::start().await;
    let lrb = set_up_lrb(&suite, "20000003").await;
    let sign_in = |password: &str| SignInRequest {
        username: lrb.batch_username.clone(),
        password: password.to_owned(),
    };

    for attempt in 1..=5 {
        let refused = suite
            .identity()
            .sign_in(sign_in(&format!("wrong-password-{attempt}")))
            .await
            .expect_err("a wrong password is refused");
        assert_eq!(refused.code(), Code::Unauthenticated, "{refused:?}");
    }
    let desk = suite.admin().await;
    let request = ListUsersRequest {
        organisation_id: lrb.organisation.organisation_id.clone(),
        ..ListUsersRequest::default()
    };
    let users = desk.identity().list_users(request).await.expect("listed");
    let batch = users
        .into_inner()
        .users
        .into_iter()
        .find(|user| user.username == lrb.batch_username)
        .expect("the batch user");
    assert!(batch.locked_until.is_some(), "the account shows its lock");

    // Even the right password is refused while the lock lasts.
    let locked = suite
        .identity()
        .sign_in(sign_in(&lrb.batch_password))
        .await
        .expect_err("locked");
    assert_eq!(locked.code(), Code::Unauthenticated, "{locked:?}");
    assert_eq!(reason(&locked), "ACCOUNT_LOCKED");
    suite.stop().await;
}

#[tokio::test]
async fn demo_accounts_sign_in_with_the_documented_password() {
    let suite = TestSuite::start_with(|config| config.demo = true).await;
    let accounts = suite.running().demo_accounts().to_vec();
    assert!(!accounts.is_empty(), "--demo creates accounts");

    for account in &accounts {
        suite.demo_user(&account.username).await;
    }
    let desk = suite.admin().await;
    let organisations = desk
        .identity()
        .list_organisations(ListOrganisationsRequest {
            ukprn: "10000001".to_owned(),
            ..ListOrganisationsRequest::default()
        })
        .await
        .expect("listed")
        .into_inner()
        .organisations;
    assert_eq!(organisations.len(), 1, "the demo LRB has UKPRN 10000001");
    suite.stop().await;
}
