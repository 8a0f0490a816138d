//! The identity service over gRPC: a real tonic server on a free local port, called through
//! the generated client, on a fresh SQLite database per test and a clock the tests move.

use std::sync::Arc;
use std::time::Duration;

use chrono::{TimeDelta, Utc};
use lrs_fields::FixedClock;
use lrs_identity::{Identity, IdentityConfig, KeyEncryptionKey};
use lrs_proto::identity::v1 as pb;
use lrs_proto::identity::v1::identity_service_client::IdentityServiceClient;
use lrs_server::auth::PrincipalKind;
use lrs_server::error::{status_bad_fields, status_reason};
use lrs_store::testing::TestDatabase;
use tonic::transport::{Channel, Server};
use tonic::{Code, Request, Status};
use tonic_types::StatusExt;

const PASSWORD: &str = "a long enough password";

struct Suite {
    client: IdentityServiceClient<Channel>,
    clock: Arc<FixedClock>,
    identity: Identity,
    desk: String,
    _database: TestDatabase,
}

fn config() -> IdentityConfig {
    IdentityConfig {
        key_encryption_key: KeyEncryptionKey::generate().to_base64(),
        ..IdentityConfig::default()
    }
}

async fn start() -> Suite {
    start_with(config()).await
}

async fn start_with(config: IdentityConfig) -> Suite {
    let test_database = TestDatabase::sqlite().expect("temporary folder");
    let database = test_database
        .connect("identity")
        .await
        .expect("database opens");
    let clock = Arc::new(FixedClock::new(Utc::now()));
    let identity = Identity::open(&database, &config, Arc::clone(&clock) as _)
        .await
        .expect("identity opens");
    let admin = identity
        .ensure_service_desk()
        .await
        .expect("bootstrap")
        .expect("first start creates the admin");

    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("port");
    let address = listener.local_addr().expect("address");
    let service = identity.grpc_service();
    tokio::spawn(async move {
        Server::builder()
            .add_service(service)
            .serve_with_incoming(tokio_stream::wrappers::TcpListenerStream::new(listener))
            .await
    });
    let client = IdentityServiceClient::connect(format!("http://{address}"))
        .await
        .expect("connects");

    let mut suite = Suite {
        client,
        clock,
        identity,
        desk: String::new(),
        _database: test_database,
    };
    suite.desk = suite.first_sign_in("admin", &admin.password).await;
    suite
}

fn authorised<T>(token: &str, message: T) -> Request<T> {
    let mut request = Request::new(message);
    let value = format!("Bearer {token}").parse().expect("ascii");
    request.metadata_mut().insert("authorization", value);
    request
}

fn reason(status: &Status) -> String {
    status_reason(status).unwrap_or_default()
}

impl Suite {
    async fn sign_in(&self, username: &str, password: &str) -> Result<pb::SignInResponse, Status> {
        let request = pb::SignInRequest {
            username: username.into(),
            password: password.into(),
        };
        self.client
            .clone()
            .sign_in(request)
            .await
            .map(|r| r.into_inner())
    }

    /// Signs in with a generated password and changes it to [`PASSWORD`]; the full token.
    async fn first_sign_in(&self, username: &str, generated: &str) -> String {
        let restricted = self.sign_in(username, generated).await.expect("signs in");
        assert!(restricted.password_change_required);
        assert!(restricted.refresh_token.is_empty());
        let change = pb::ChangePasswordRequest {
            current_password: generated.into(),
            new_password: PASSWORD.into(),
        };
        self.client
            .clone()
            .change_password(authorised(&restricted.access_token, change))
            .await
            .expect("changes password")
            .into_inner()
            .access_token
    }

    async fn create_organisation(
        &self,
        token: &str,
        kind: pb::OrganisationKind,
        ukprn: &str,
    ) -> Result<pb::Organisation, Status> {
        let lrb_type = if kind == pb::OrganisationKind::LearnerRegistrationBody {
            pb::LrbType::School
        } else {
            pb::LrbType::Unspecified
        };
        let request = pb::CreateOrganisationRequest {
            organisation: Some(pb::Organisation {
                kind: kind.into(),
                lrb_type: lrb_type.into(),
                display_name: format!("Organisation {ukprn}"),
                ukprn: ukprn.into(),
                ..Default::default()
            }),
            request_id: String::new(),
        };
        let response = self
            .client
            .clone()
            .create_organisation(authorised(token, request))
            .await?;
        Ok(response.into_inner().organisation.expect("organisation"))
    }

    async fn create_user(
        &self,
        token: &str,
        organisation_id: &str,
        username: &str,
        roles: &[pb::Role],
        request_id: &str,
    ) -> Result<pb::CreateUserResponse, Status> {
        let request = pb::CreateUserRequest {
            user: Some(pb::User {
                organisation_id: organisation_id.into(),
                username: username.into(),
                given_name: "Given".into(),
                family_name: "Family".into(),
                roles: roles.iter().map(|role| (*role).into()).collect(),
                ..Default::default()
            }),
            request_id: request_id.into(),
        };
        let response = self
            .client
            .clone()
            .create_user(authorised(token, request))
            .await?;
        Ok(response.into_inner())
    }

    /// Creates a user and signs them in with their own password; their id and token.
    async fn user_with_token(
        &self,
        token: &str,
        organisation_id: &str,
        username: &str,
        roles: &[pb::Role],
    ) -> (String, String) {
        let created = self
            .create_user(token, organisation_id, username, roles, "")
            .await
            .expect("user created");
        let user_token = self
            .first_sign_in(username, &created.initial_password)
            .await;
        (created.user.expect("user").user_id, user_token)
    }

    /// An LRB with its admin: the organisation id, admin id and admin token.
    async fn school_with_admin(&self, ukprn: &str) -> (String, String, String) {
        let school = self
            .create_organisation(
                &self.desk,
                pb::OrganisationKind::LearnerRegistrationBody,
                ukprn,
            )
            .await
            .expect("school created");
        let username = format!("admin.{ukprn}");
        let (admin_id, token) = self
            .user_with_token(
                &self.desk,
                &school.organisation_id,
                &username,
                &[pb::Role::OrgAdmin],
            )
            .await;
        (school.organisation_id, admin_id, token)
    }

    async fn audit_actions(&self) -> Vec<(String, i32)> {
        let request = pb::ListAuditEventsRequest {
            page_size: 1000,
            ..Default::default()
        };
        let events = self
            .client
            .clone()
            .list_audit_events(authorised(&self.desk, request))
            .await
            .expect("desk reads the audit log")
            .into_inner()
            .audit_events;
        events.into_iter().map(|e| (e.action, e.outcome)).collect()
    }
}

#[tokio::test]
async fn generated_passwords_must_be_changed_before_anything_else() {
    let suite = start().await;
    let created = suite
        .create_user(&suite.desk, "", "desk.two", &[pb::Role::ServiceDesk], "")
        .await
        .expect("created");
    assert_eq!(created.initial_password.len(), 24);

    let restricted = suite
        .sign_in("DESK.TWO", &created.initial_password)
        .await
        .expect("signs in");
    assert!(restricted.password_change_required);
    let request = pb::ListOrganisationsRequest::default();
    let refused = suite
        .client
        .clone()
        .list_organisations(authorised(&restricted.access_token, request))
        .await
        .unwrap_err();
    assert_eq!(refused.code(), Code::FailedPrecondition);
    assert_eq!(reason(&refused), "PASSWORD_CHANGE_REQUIRED");

    let short = pb::ChangePasswordRequest {
        current_password: created.initial_password.clone(),
        new_password: "short".into(),
    };
    let refused = suite
        .client
        .clone()
        .change_password(authorised(&restricted.access_token, short))
        .await
        .unwrap_err();
    assert_eq!(status_bad_fields(&refused), ["new_password"]);

    let changed = pb::ChangePasswordRequest {
        current_password: created.initial_password.clone(),
        new_password: PASSWORD.into(),
    };
    let full = suite
        .client
        .clone()
        .change_password(authorised(&restricted.access_token, changed))
        .await
        .expect("changed")
        .into_inner();
    assert!(!full.refresh_token.is_empty());
    let claims = suite
        .identity
        .authenticator()
        .verify(&full.access_token)
        .await
        .expect("valid");
    assert!(!claims.pwd_change);
    assert_eq!(claims.kind, PrincipalKind::User);

    let old = suite
        .sign_in("desk.two", &created.initial_password)
        .await
        .unwrap_err();
    let unknown = suite.sign_in("nobody.here", PASSWORD).await.unwrap_err();
    assert_eq!(
        (old.code(), reason(&old)),
        (Code::Unauthenticated, "INVALID_CREDENTIALS".into())
    );
    assert_eq!(
        (unknown.code(), old.message()),
        (Code::Unauthenticated, unknown.message())
    );
    assert!(suite.sign_in("desk.two", PASSWORD).await.is_ok());
}

#[tokio::test]
async fn five_failures_lock_the_account_until_the_wait_is_over() {
    let suite = start().await;
    let (_, _, _) = suite.school_with_admin("10000001").await;
    for attempt in 1..=4 {
        let refused = suite
            .sign_in("admin.10000001", "wrong password!")
            .await
            .unwrap_err();
        assert_eq!(reason(&refused), "INVALID_CREDENTIALS", "attempt {attempt}");
    }
    let locked = suite
        .sign_in("admin.10000001", "wrong password!")
        .await
        .unwrap_err();
    assert_eq!(
        (locked.code(), reason(&locked)),
        (Code::Unauthenticated, "ACCOUNT_LOCKED".into())
    );
    let still = suite.sign_in("admin.10000001", PASSWORD).await.unwrap_err();
    assert_eq!(reason(&still), "ACCOUNT_LOCKED");
    let wait = still
        .get_error_details()
        .retry_info()
        .and_then(|r| r.retry_delay);
    assert_eq!(wait, Some(Duration::from_secs(15 * 60)));

    suite.clock.advance(TimeDelta::minutes(10));
    let later = suite.sign_in("admin.10000001", PASSWORD).await.unwrap_err();
    let wait = later
        .get_error_details()
        .retry_info()
        .and_then(|r| r.retry_delay);
    assert_eq!(wait, Some(Duration::from_secs(5 * 60)));
    suite.clock.advance(TimeDelta::minutes(5));
    let signed_in = suite
        .sign_in("admin.10000001", PASSWORD)
        .await
        .expect("lock over");
    assert!(signed_in.user.expect("user").locked_until.is_none());
    assert!(
        suite
            .audit_actions()
            .await
            .contains(&("SIGN_IN_LOCKED".into(), 1))
    );
}

#[tokio::test]
async fn refresh_tokens_rotate_and_a_reused_one_ends_the_sign_in() {
    let suite = start().await;
    let first = suite.sign_in("admin", PASSWORD).await.expect("signs in");
    let refresh = |token: &str| {
        let request = pb::RefreshTokenRequest {
            refresh_token: token.into(),
        };
        let mut client = suite.client.clone();
        async move { client.refresh_token(request).await.map(|r| r.into_inner()) }
    };

    let second = refresh(&first.refresh_token).await.expect("rotates");
    assert_ne!(second.refresh_token, first.refresh_token);
    assert!(
        suite
            .identity
            .authenticator()
            .verify(&second.access_token)
            .await
            .is_ok()
    );
    let reused = refresh(&first.refresh_token).await.unwrap_err();
    assert_eq!(reason(&reused), "INVALID_REFRESH_TOKEN");
    let revoked = refresh(&second.refresh_token).await.unwrap_err();
    assert_eq!(reason(&revoked), "INVALID_REFRESH_TOKEN");

    let other = suite.sign_in("admin", PASSWORD).await.expect("signs in");
    let request = pb::SignOutRequest {
        refresh_token: other.refresh_token.clone(),
    };
    suite
        .client
        .clone()
        .sign_out(request)
        .await
        .expect("signs out");
    assert!(refresh(&other.refresh_token).await.is_err());
    assert_eq!(
        reason(&refresh("made-up").await.unwrap_err()),
        "INVALID_REFRESH_TOKEN"
    );
}

#[tokio::test]
async fn admins_manage_only_their_own_organisation_and_batch_users_none() {
    let suite = start().await;
    let (school, _, admin) = suite.school_with_admin("10000001").await;
    let (other_school, other_admin_id, _) = suite.school_with_admin("10000002").await;

    let (_, batch) = suite
        .user_with_token(&admin, "", "batch.user", &[pb::Role::BatchUser])
        .await;
    let refused = suite
        .create_user(&batch, "", "sneaky.one", &[pb::Role::OrgAdmin], "")
        .await
        .unwrap_err();
    assert_eq!(refused.code(), Code::PermissionDenied);

    let refused = suite
        .create_user(
            &admin,
            &other_school,
            "intruder",
            &[pb::Role::OnlineUser],
            "",
        )
        .await
        .unwrap_err();
    assert_eq!(refused.code(), Code::PermissionDenied);
    let request = pb::GetUserRequest {
        user_id: other_admin_id,
    };
    let hidden = suite
        .client
        .clone()
        .get_user(authorised(&admin, request))
        .await
        .unwrap_err();
    assert_eq!(hidden.code(), Code::NotFound);

    let wrong_role = suite
        .create_user(&admin, &school, "ao.person", &[pb::Role::AoUser], "")
        .await
        .unwrap_err();
    assert_eq!(status_bad_fields(&wrong_role), ["user.roles"]);
    let refused_org = suite
        .create_organisation(
            &admin,
            pb::OrganisationKind::AwardingOrganisation,
            "10000003",
        )
        .await
        .unwrap_err();
    assert_eq!(refused_org.code(), Code::PermissionDenied);

    let actions = suite.audit_actions().await;
    let refused_creates = actions
        .iter()
        .filter(|(action, outcome)| action == "CREATE_USER" && *outcome == 2)
        .count();
    assert_eq!(refused_creates, 3);
    assert!(actions.contains(&("CREATE_ORGANISATION".into(), 2)));
}

#[tokio::test]
async fn the_last_active_admin_stays_and_disabling_ends_sign_ins() {
    let suite = start().await;
    let (_, admin_id, admin) = suite.school_with_admin("10000001").await;

    let request = pb::DisableUserRequest {
        user_id: admin_id.clone(),
    };
    let refused = suite
        .client
        .clone()
        .disable_user(authorised(&admin, request))
        .await
        .unwrap_err();
    assert_eq!(
        (refused.code(), reason(&refused)),
        (Code::FailedPrecondition, "LAST_ADMIN".into())
    );

    let update = pb::UpdateUserRequest {
        user: Some(pb::User {
            user_id: admin_id.clone(),
            roles: vec![pb::Role::OnlineUser.into()],
            version: 3,
            ..Default::default()
        }),
        update_mask: Some(prost_types::FieldMask {
            paths: vec!["roles".into()],
        }),
    };
    let current = suite
        .client
        .clone()
        .get_user(authorised(
            &admin,
            pb::GetUserRequest {
                user_id: admin_id.clone(),
            },
        ))
        .await
        .expect("reads self")
        .into_inner()
        .user
        .expect("user");
    let mut update = update;
    if let Some(user) = update.user.as_mut() {
        user.version = current.version;
    }
    let refused = suite
        .client
        .clone()
        .update_user(authorised(&admin, update))
        .await
        .unwrap_err();
    assert_eq!(reason(&refused), "LAST_ADMIN");

    let (online_id, _) = suite
        .user_with_token(&admin, "", "online.user", &[pb::Role::OnlineUser])
        .await;
    let session = suite
        .sign_in("online.user", PASSWORD)
        .await
        .expect("signs in");
    let request = pb::DisableUserRequest {
        user_id: online_id.clone(),
    };
    let disabled = suite
        .client
        .clone()
        .disable_user(authorised(&admin, request))
        .await
        .expect("disables")
        .into_inner()
        .user
        .expect("user");
    assert_eq!(disabled.state, i32::from(pb::UserState::Disabled));
    let request = pb::RefreshTokenRequest {
        refresh_token: session.refresh_token,
    };
    assert!(suite.client.clone().refresh_token(request).await.is_err());
    let refused = suite.sign_in("online.user", PASSWORD).await.unwrap_err();
    assert_eq!(reason(&refused), "ACCOUNT_DISABLED");

    let request = pb::EnableUserRequest { user_id: online_id };
    suite
        .client
        .clone()
        .enable_user(authorised(&admin, request))
        .await
        .expect("enables");
    assert!(suite.sign_in("online.user", PASSWORD).await.is_ok());
}

#[tokio::test]
async fn duplicates_conflicts_and_every_bad_field_are_reported() {
    let suite = start().await;
    let school = suite
        .create_organisation(
            &suite.desk,
            pb::OrganisationKind::LearnerRegistrationBody,
            "10000001",
        )
        .await
        .expect("created");
    assert_eq!(school.organisation_reference.len(), 6);
    let duplicate = suite
        .create_organisation(
            &suite.desk,
            pb::OrganisationKind::AwardingOrganisation,
            "10000001",
        )
        .await
        .unwrap_err();
    assert_eq!(
        (duplicate.code(), reason(&duplicate)),
        (Code::AlreadyExists, "UKPRN_TAKEN".into())
    );

    suite
        .create_user(
            &suite.desk,
            &school.organisation_id,
            "Same.Name",
            &[pb::Role::OrgAdmin],
            "",
        )
        .await
        .expect("created");
    let taken = suite
        .create_user(
            &suite.desk,
            &school.organisation_id,
            "same.name",
            &[pb::Role::ViewOnly],
            "",
        )
        .await
        .unwrap_err();
    assert_eq!(
        (taken.code(), reason(&taken)),
        (Code::AlreadyExists, "USERNAME_TAKEN".into())
    );

    let request = pb::CreateUserRequest {
        user: Some(pb::User {
            organisation_id: school.organisation_id.clone(),
            username: "x".into(),
            given_name: String::new(),
            family_name: "Family".into(),
            email: "not-an-email".into(),
            roles: vec![],
            ..Default::default()
        }),
        request_id: "r".repeat(65),
    };
    let invalid = suite
        .client
        .clone()
        .create_user(authorised(&suite.desk, request))
        .await
        .unwrap_err();
    assert_eq!(invalid.code(), Code::InvalidArgument);
    assert_eq!(
        status_bad_fields(&invalid),
        [
            "user.username",
            "user.given_name",
            "user.email",
            "user.roles",
            "request_id"
        ]
    );

    let rename = |version: i64, name: &str| pb::UpdateOrganisationRequest {
        organisation: Some(pb::Organisation {
            organisation_id: school.organisation_id.clone(),
            display_name: name.into(),
            version,
            ..Default::default()
        }),
        update_mask: Some(prost_types::FieldMask {
            paths: vec!["display_name".into()],
        }),
    };
    let updated = suite
        .client
        .clone()
        .update_organisation(authorised(&suite.desk, rename(1, "Renamed School")))
        .await
        .expect("updates")
        .into_inner();
    assert!(updated.changed);
    assert_eq!(updated.organisation.expect("organisation").version, 2);
    let same = suite
        .client
        .clone()
        .update_organisation(authorised(&suite.desk, rename(2, "Renamed School")))
        .await
        .expect("no change")
        .into_inner();
    assert!(!same.changed);
    let stale = suite
        .client
        .clone()
        .update_organisation(authorised(&suite.desk, rename(1, "Again")))
        .await
        .unwrap_err();
    assert_eq!(
        (stale.code(), reason(&stale)),
        (Code::Aborted, "VERSION_CONFLICT".into())
    );
}

#[tokio::test]
async fn a_retried_create_returns_the_first_result() {
    let suite = start().await;
    let (school, _, admin) = suite.school_with_admin("10000001").await;
    let first = suite
        .create_user(&admin, "", "retry.me", &[pb::Role::OnlineUser], "request-1")
        .await
        .expect("created");
    let again = suite
        .create_user(&admin, "", "retry.me", &[pb::Role::OnlineUser], "request-1")
        .await
        .expect("retry answers");
    assert_eq!(
        first.user.as_ref().map(|u| &u.user_id),
        again.user.as_ref().map(|u| &u.user_id)
    );
    assert!(!first.initial_password.is_empty());
    assert!(again.initial_password.is_empty());

    let request = pb::ListUsersRequest {
        page_size: 1,
        page_token: String::new(),
        organisation_id: school,
    };
    let page = suite
        .client
        .clone()
        .list_users(authorised(&admin, request.clone()))
        .await
        .expect("lists")
        .into_inner();
    assert_eq!(page.users.len(), 1);
    let next = pb::ListUsersRequest {
        page_token: page.next_page_token,
        page_size: 10,
        ..request
    };
    let rest = suite
        .client
        .clone()
        .list_users(authorised(&admin, next))
        .await
        .expect("lists")
        .into_inner();
    let names: Vec<_> = page
        .users
        .iter()
        .chain(&rest.users)
        .map(|u| u.username.as_str())
        .collect();
    assert_eq!(names, ["admin.10000001", "retry.me"]);
    assert!(rest.next_page_token.is_empty());
}

#[tokio::test]
async fn rotated_keys_stay_published_while_their_tokens_live() {
    let suite = start().await;
    let before = suite
        .sign_in("admin", PASSWORD)
        .await
        .expect("signs in")
        .access_token;
    suite.clock.advance(TimeDelta::days(31));
    let after = suite
        .sign_in("admin", PASSWORD)
        .await
        .expect("signs in")
        .access_token;
    let kid = |token: &str| jsonwebtoken::decode_header(token).expect("jwt").kid;
    assert_ne!(kid(&before), kid(&after));

    let keys = suite
        .client
        .clone()
        .get_signing_keys(pb::GetSigningKeysRequest {})
        .await
        .expect("keys")
        .into_inner()
        .keys;
    assert_eq!(keys.len(), 2);
    assert_eq!(Some(keys[0].key_id.clone()), kid(&after));
    assert!(keys[0].expire_time.is_none());
    assert!(keys[1].expire_time.is_some());

    for token in [&before, &after] {
        let request = pb::ListOrganisationsRequest::default();
        let listed = suite
            .client
            .clone()
            .list_organisations(authorised(token, request))
            .await;
        assert!(
            listed.is_ok(),
            "a token of either key is accepted: {listed:?}"
        );
    }

    suite.clock.advance(TimeDelta::minutes(20));
    let keys = suite
        .client
        .clone()
        .get_signing_keys(pb::GetSigningKeysRequest {})
        .await
        .expect("keys")
        .into_inner()
        .keys;
    assert_eq!(keys.len(), 1);
}

fn provider_upload(file_name: &str, bytes: &[u8]) -> Vec<pb::ImportProviderListRequest> {
    use pb::import_provider_list_request::Content;
    let mut messages = vec![pb::ImportProviderListRequest {
        content: Some(Content::Metadata(pb::ListFileMetadata {
            file_name: file_name.into(),
            format: pb::ListFileFormat::Unspecified.into(),
        })),
    }];
    for chunk in bytes.chunks(16) {
        messages.push(pb::ImportProviderListRequest {
            content: Some(Content::Chunk(chunk.to_vec())),
        });
    }
    messages
}

impl Suite {
    async fn import_providers(
        &self,
        token: &str,
        file_name: &str,
        bytes: &[u8],
    ) -> Result<pb::ListImportSummary, Status> {
        let stream = tokio_stream::iter(provider_upload(file_name, bytes));
        let response = self
            .client
            .clone()
            .import_provider_list(authorised(token, stream))
            .await?;
        Ok(response.into_inner().summary.expect("summary"))
    }
}

fn provider_workbook() -> Vec<u8> {
    let mut workbook = rust_xlsxwriter::Workbook::new();
    let sheet = workbook.add_worksheet();
    for (column, heading) in ["UKPRN", "Name", "Status", "Town", "Postcode"]
        .iter()
        .enumerate()
    {
        sheet
            .write_string(0, column as u16, *heading)
            .expect("cell");
    }
    sheet.write_number(1, 0, 10000001.0).expect("cell");
    sheet
        .write_string(1, 1, "Demo School Renamed")
        .expect("cell");
    sheet.write_string(1, 2, "Active").expect("cell");
    sheet.write_string(2, 0, "10000004").expect("cell");
    sheet.write_string(2, 1, "Fourth College").expect("cell");
    sheet.write_string(2, 2, "Active").expect("cell");
    sheet.write_string(3, 0, "bad").expect("cell");
    sheet.write_string(3, 1, "Broken").expect("cell");
    sheet.write_string(3, 2, "Active").expect("cell");
    workbook.save_to_buffer().expect("workbook")
}

#[tokio::test]
async fn provider_lists_import_from_csv_and_xlsx_and_update_in_place() {
    let suite = start_with(IdentityConfig {
        max_list_file_bytes: 20_000,
        ..config()
    })
    .await;
    let csv = "UKPRN,Name,Status,Town,Postcode,Ignored\n\
               10000001,Demo School,Active,Leeds,LS1 1AA,x\n\
               10000002,Second School,Active,York,,x\n\
               1234,Too Short,Active,,,x\n\
               10000003,,Active,,,x\n";
    let summary = suite
        .import_providers(&suite.desk, "providers.csv", csv.as_bytes())
        .await
        .expect("imports");
    assert_eq!(
        (
            summary.added,
            summary.changed,
            summary.unchanged,
            summary.rejected
        ),
        (2, 0, 0, 2)
    );
    let rows: Vec<i64> = summary.rejected_rows.iter().map(|r| r.row).collect();
    assert_eq!(rows, [4, 5]);

    let workbook = provider_workbook();
    let summary = suite
        .import_providers(&suite.desk, "providers.xlsx", &workbook)
        .await
        .expect("imports");
    assert_eq!(
        (
            summary.added,
            summary.changed,
            summary.unchanged,
            summary.rejected
        ),
        (1, 1, 0, 1)
    );
    assert_eq!(summary.rejected_rows[0].row, 4);

    let again = suite
        .import_providers(&suite.desk, "providers.csv", csv.as_bytes())
        .await
        .expect("imports");
    assert_eq!((again.added, again.changed, again.unchanged), (0, 1, 1));

    let missing = suite
        .import_providers(&suite.desk, "bad.csv", b"UKPRN,Town\n10000001,Leeds\n")
        .await
        .unwrap_err();
    assert_eq!(missing.code(), Code::InvalidArgument);
    assert!(missing.message().contains("Name, Status"));
    let too_big = vec![b'a'; 20_001];
    let refused = suite
        .import_providers(&suite.desk, "big.csv", &too_big)
        .await
        .unwrap_err();
    assert_eq!(refused.code(), Code::ResourceExhausted);
    let (_, _, admin) = suite.school_with_admin("10000009").await;
    let refused = suite
        .import_providers(&admin, "x.csv", csv.as_bytes())
        .await
        .unwrap_err();
    assert_eq!(refused.code(), Code::PermissionDenied);

    let request = pb::ListProvidersRequest {
        page_size: 2,
        page_token: String::new(),
    };
    let page = suite
        .client
        .clone()
        .list_providers(authorised(&suite.desk, request))
        .await
        .expect("lists")
        .into_inner();
    let ukprns: Vec<_> = page.providers.iter().map(|p| p.ukprn.as_str()).collect();
    assert_eq!(ukprns, ["10000001", "10000002"]);
    assert_eq!(page.providers[0].name, "Demo School");
    assert!(!page.next_page_token.is_empty());
}

#[tokio::test]
async fn awarding_organisation_lists_import() {
    use pb::import_awarding_organisation_list_request::Content;
    let suite = start().await;
    let csv = "Number,Name,Acronym,Status,UKPRN\n\
               100060,Demo Awarding Body,DAB,Recognised,10000002\n\
               100061,Gone Body,,Surrendered,\n\
               100062,Odd Body,,Sleeping,\n";
    let messages = vec![
        pb::ImportAwardingOrganisationListRequest {
            content: Some(Content::Metadata(pb::ListFileMetadata {
                file_name: "aos.csv".into(),
                format: pb::ListFileFormat::Csv.into(),
            })),
        },
        pb::ImportAwardingOrganisationListRequest {
            content: Some(Content::Chunk(csv.as_bytes().to_vec())),
        },
    ];
    let summary = suite
        .client
        .clone()
        .import_awarding_organisation_list(authorised(&suite.desk, tokio_stream::iter(messages)))
        .await
        .expect("imports")
        .into_inner()
        .summary
        .expect("summary");
    assert_eq!((summary.added, summary.rejected), (2, 1));
    assert_eq!(summary.rejected_rows[0].row, 4);
    let listed = suite
        .client
        .clone()
        .list_awarding_organisations(authorised(
            &suite.desk,
            pb::ListAwardingOrganisationsRequest::default(),
        ))
        .await
        .expect("lists")
        .into_inner();
    assert_eq!(listed.awarding_organisations[0].acronym, "DAB");
}

#[tokio::test]
async fn the_audit_log_pages_newest_first_for_the_service_desk_only() {
    let suite = start().await;
    let (school, _, admin) = suite.school_with_admin("10000001").await;
    let (_, _) = suite
        .user_with_token(&admin, "", "online.one", &[pb::Role::OnlineUser])
        .await;

    let mut client = suite.client.clone();
    let mut seen = Vec::new();
    let mut page_token = String::new();
    loop {
        let request = pb::ListAuditEventsRequest {
            page_size: 2,
            page_token: page_token.clone(),
            organisation_id: school.clone(),
        };
        let page = client
            .list_audit_events(authorised(&suite.desk, request))
            .await
            .expect("lists")
            .into_inner();
        assert!(page.audit_events.len() <= 2);
        seen.extend(page.audit_events.into_iter().map(|e| e.action));
        if page.next_page_token.is_empty() {
            break;
        }
        page_token = page.next_page_token;
    }
    assert_eq!(
        seen,
        [
            "CHANGE_PASSWORD",
            "CREATE_USER",
            "CHANGE_PASSWORD",
            "CREATE_USER",
            "CREATE_ORGANISATION"
        ]
    );

    let bad = pb::ListAuditEventsRequest {
        page_token: "not a token".into(),
        ..Default::default()
    };
    let refused = client
        .list_audit_events(authorised(&suite.desk, bad))
        .await
        .unwrap_err();
    assert_eq!(status_bad_fields(&refused), ["page_token"]);
    let denied = client
        .list_audit_events(authorised(&admin, pb::ListAuditEventsRequest::default()))
        .await
        .unwrap_err();
    assert_eq!(denied.code(), Code::PermissionDenied);
}

#[tokio::test]
async fn machine_credentials_issue_tokens_until_revoked() {
    let suite = start().await;
    let (_, _, admin) = suite.school_with_admin("10000001").await;
    let request = pb::CreateClientCredentialRequest {
        credential: Some(pb::ClientCredential {
            display_name: "School MIS".into(),
            roles: vec![pb::Role::BatchUser.into()],
            ..Default::default()
        }),
        request_id: String::new(),
    };
    let created = suite
        .client
        .clone()
        .create_client_credential(authorised(&admin, request))
        .await
        .expect("created")
        .into_inner();
    let client_id = created.credential.expect("credential").client_id;
    assert_eq!(created.client_secret.len(), 43);

    let issue = |secret: &str| pb::IssueClientTokenRequest {
        client_id: client_id.clone(),
        client_secret: secret.into(),
    };
    let token = suite
        .client
        .clone()
        .issue_client_token(issue(&created.client_secret))
        .await
        .expect("issues")
        .into_inner()
        .access_token;
    let claims = suite
        .identity
        .authenticator()
        .verify(&token)
        .await
        .expect("valid");
    assert_eq!(claims.kind, PrincipalKind::Client);
    let wrong = suite
        .client
        .clone()
        .issue_client_token(issue("wrong"))
        .await
        .unwrap_err();
    assert_eq!(reason(&wrong), "INVALID_CLIENT");

    let service_request = pb::CreateClientCredentialRequest {
        credential: Some(pb::ClientCredential {
            display_name: "fake".into(),
            roles: vec![pb::Role::Service.into()],
            service: "learner".into(),
            ..Default::default()
        }),
        request_id: String::new(),
    };
    let refused = suite
        .client
        .clone()
        .create_client_credential(authorised(&admin, service_request))
        .await
        .unwrap_err();
    assert_eq!(refused.code(), Code::PermissionDenied);

    let revoke = pb::RevokeClientCredentialRequest {
        client_id: client_id.clone(),
    };
    suite
        .client
        .clone()
        .revoke_client_credential(authorised(&admin, revoke))
        .await
        .expect("revokes");
    let revoked = suite
        .client
        .clone()
        .issue_client_token(issue(&created.client_secret))
        .await
        .unwrap_err();
    assert_eq!(reason(&revoked), "INVALID_CLIENT");
}

#[tokio::test]
async fn bootstrap_creates_service_credentials_and_demo_accounts_once() {
    let suite = start().await;
    assert!(
        suite
            .identity
            .ensure_service_desk()
            .await
            .expect("runs")
            .is_none()
    );

    let first = suite
        .identity
        .ensure_service_credential("learner")
        .await
        .expect("created");
    let second = suite
        .identity
        .ensure_service_credential("learner")
        .await
        .expect("rotated");
    assert_eq!(first.client_id, second.client_id);
    let issue = |secret: &str| pb::IssueClientTokenRequest {
        client_id: first.client_id.clone(),
        client_secret: secret.into(),
    };
    assert!(
        suite
            .client
            .clone()
            .issue_client_token(issue(&first.client_secret))
            .await
            .is_err()
    );
    let token = suite
        .client
        .clone()
        .issue_client_token(issue(&second.client_secret))
        .await
        .expect("issues")
        .into_inner()
        .access_token;
    let claims = suite
        .identity
        .authenticator()
        .verify(&token)
        .await
        .expect("valid");
    assert_eq!(claims.kind, PrincipalKind::Service);
    assert_eq!(claims.sub, "learner");

    let accounts = suite.identity.seed_demo().await.expect("seeds");
    let again = suite.identity.seed_demo().await.expect("seeds again");
    assert_eq!(accounts, again);
    assert_eq!(accounts.len(), 5);
    let batch = suite
        .sign_in("demo.lrb.batch", "demo-password-1")
        .await
        .expect("signs in");
    assert!(!batch.password_change_required);
    let learner = suite
        .sign_in("demo.learner", "demo-password-1")
        .await
        .expect("signs in");
    let claims = suite
        .identity
        .authenticator()
        .verify(&learner.access_token)
        .await
        .expect("valid");
    assert_eq!(claims.kind, PrincipalKind::Learner);
    assert_eq!(claims.uln.as_deref(), Some("9276308686"));
    let ao = suite
        .sign_in("demo.ao", "demo-password-1")
        .await
        .expect("signs in");
    let claims = suite
        .identity
        .authenticator()
        .verify(&ao.access_token)
        .await
        .expect("valid");
    assert_eq!(claims.ukprn.as_deref(), Some("10000002"));
}

#[tokio::test]
async fn learner_accounts_resets_and_suspended_organisations() {
    let suite = start().await;
    let (school, _, admin) = suite.school_with_admin("10000001").await;

    let bad_uln = suite
        .create_user(&suite.desk, "", "learner.one", &[pb::Role::Learner], "")
        .await
        .unwrap_err();
    assert_eq!(status_bad_fields(&bad_uln), ["user.uln"]);
    let request = pb::CreateUserRequest {
        user: Some(pb::User {
            username: "learner.one".into(),
            given_name: "Lee".into(),
            family_name: "Learner".into(),
            roles: vec![pb::Role::Learner.into()],
            uln: "1748529632".into(),
            ..Default::default()
        }),
        request_id: String::new(),
    };
    let refused = suite
        .client
        .clone()
        .create_user(authorised(&admin, request.clone()))
        .await
        .unwrap_err();
    assert_eq!(refused.code(), Code::PermissionDenied);
    let learner = suite
        .client
        .clone()
        .create_user(authorised(&suite.desk, request))
        .await
        .expect("the service desk creates learner accounts")
        .into_inner()
        .user
        .expect("user");
    assert!(learner.organisation_id.is_empty());
    assert_eq!(learner.uln, "1748529632");

    let (batch_id, _) = suite
        .user_with_token(&admin, "", "batch.one", &[pb::Role::BatchUser])
        .await;
    let request = pb::ResetPasswordRequest { user_id: batch_id };
    let temporary = suite
        .client
        .clone()
        .reset_password(authorised(&admin, request))
        .await
        .expect("resets")
        .into_inner()
        .temporary_password;
    assert_eq!(temporary.len(), 24);
    assert!(suite.sign_in("batch.one", PASSWORD).await.is_err());
    let restricted = suite
        .sign_in("batch.one", &temporary)
        .await
        .expect("signs in");
    assert!(restricted.password_change_required);

    let suspend = pb::UpdateOrganisationRequest {
        organisation: Some(pb::Organisation {
            organisation_id: school,
            status: pb::OrganisationStatus::Suspended.into(),
            version: 1,
            ..Default::default()
        }),
        update_mask: Some(prost_types::FieldMask {
            paths: vec!["status".into()],
        }),
    };
    suite
        .client
        .clone()
        .update_organisation(authorised(&suite.desk, suspend))
        .await
        .expect("suspends");
    let refused = suite.sign_in("admin.10000001", PASSWORD).await.unwrap_err();
    assert_eq!(reason(&refused), "ORGANISATION_INACTIVE");
}
