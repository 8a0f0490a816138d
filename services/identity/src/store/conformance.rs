//! One conformance suite for every [`IdentityStore`]: each check runs on SQLite always and
//! on PostgreSQL when `DATABASE_URL` is set, each on a fresh database.

use std::sync::Arc;

use chrono::{Duration, Utc};
use uuid::Uuid;

use super::{
    AwardingOrganisationEntry, Created, IdempotencyKey, IdentityStore, ImportChange,
    NewRefreshToken, Provider, Rotation, SigningKeyRecord, StoreError, for_database,
};
use crate::domain::audit::{Actor, AuditAction, AuditOutcome, AuditRecord};
use crate::domain::credential::ClientCredential;
use crate::domain::organisation::{LrbType, NewOrganisation, Organisation, OrganisationStatus};
use crate::domain::user::{NewUser, User, UserState};
use crate::domain::{OrganisationKind, Role};
use crate::{POSTGRES_MIGRATIONS, SQLITE_MIGRATIONS};
use lrs_fields::SystemClock;

/// Runs `check` on a fresh, migrated store of each backend.
async fn on_each_backend(check: impl AsyncFn(Arc<dyn IdentityStore>)) {
    lrs_store::testing::for_each_backend("identity", async |database| {
        database
            .migrate(&POSTGRES_MIGRATIONS, &SQLITE_MIGRATIONS)
            .await
            .expect("migrations apply");
        check(for_database(&database)).await;
    })
    .await;
}

fn audit(action: AuditAction, organisation: Option<Uuid>) -> AuditRecord {
    AuditRecord::new(
        Actor {
            id: "tester".into(),
            organisation_id: None,
        },
        action,
        "test/target",
        crate::now(&SystemClock),
        "req-1",
    )
    .on_organisation(organisation)
}

fn school(ukprn: &str, name: &str, reference: &str) -> Organisation {
    NewOrganisation {
        kind: OrganisationKind::LearnerRegistrationBody,
        lrb_type: Some(LrbType::School),
        display_name: name.into(),
        ukprn: Some(ukprn.into()),
        reference: Some(reference.into()),
        status: OrganisationStatus::Active,
    }
    .into_organisation(Uuid::new_v4(), String::new(), crate::now(&SystemClock))
}

fn member(organisation: &Organisation, username: &str, roles: Vec<Role>) -> User {
    NewUser {
        organisation_id: Some(organisation.id),
        username: username.into(),
        given_name: "Given".into(),
        family_name: "Family".into(),
        email: String::new(),
        roles,
        uln: None,
    }
    .into_user(Uuid::new_v4(), false, crate::now(&SystemClock))
}

async fn stored_organisation(store: &dyn IdentityStore, organisation: &Organisation) {
    let created = store
        .create_organisation(
            organisation,
            None,
            &audit(AuditAction::CreateOrganisation, None),
        )
        .await
        .expect("organisation stored");
    assert_eq!(created, Created::New(organisation.clone()));
}

async fn stored_user(store: &dyn IdentityStore, user: &User) {
    store
        .create_user(user, "hash", None, &audit(AuditAction::CreateUser, None))
        .await
        .expect("user stored");
}

#[tokio::test]
async fn organisations_are_unique_idempotent_versioned_and_paged() {
    on_each_backend(async |store| {
        let first = school("10000001", "Beta School", "ABC123");
        stored_organisation(&*store, &first).await;
        assert_eq!(
            store.organisation(first.id).await.unwrap(),
            Some(first.clone())
        );
        assert_eq!(
            store
                .organisation_by_ukprn("10000001")
                .await
                .unwrap()
                .map(|o| o.id),
            Some(first.id)
        );

        let same_ukprn = school("10000001", "Other", "XYZ789");
        let outcome = store
            .create_organisation(
                &same_ukprn,
                None,
                &audit(AuditAction::CreateOrganisation, None),
            )
            .await;
        assert!(matches!(outcome, Err(StoreError::UkprnTaken)));
        let same_reference = school("10000009", "Other", "ABC123");
        let outcome = store
            .create_organisation(
                &same_reference,
                None,
                &audit(AuditAction::CreateOrganisation, None),
            )
            .await;
        assert!(matches!(
            outcome,
            Err(StoreError::OrganisationReferenceTaken)
        ));

        let key = IdempotencyKey {
            caller: "desk".into(),
            operation: "CreateOrganisation",
            request_id: "r-1".into(),
        };
        let second = school("10000002", "Alpha School", "DEF456");
        let created = store
            .create_organisation(
                &second,
                Some(&key),
                &audit(AuditAction::CreateOrganisation, None),
            )
            .await
            .unwrap();
        assert_eq!(created, Created::New(second.clone()));
        let retry = school("10000003", "Alpha School again", "GHI789");
        let again = store
            .create_organisation(
                &retry,
                Some(&key),
                &audit(AuditAction::CreateOrganisation, None),
            )
            .await
            .unwrap();
        assert_eq!(again, Created::Existing(second.clone()));
        assert_eq!(store.organisation(retry.id).await.unwrap(), None);

        let page = store.list_organisations(None, None, None, 1).await.unwrap();
        assert_eq!(page.iter().map(|o| o.id).collect::<Vec<_>>(), [second.id]);
        let after = Some((second.display_name.clone(), second.id));
        let next = store
            .list_organisations(None, None, after, 5)
            .await
            .unwrap();
        assert_eq!(next.iter().map(|o| o.id).collect::<Vec<_>>(), [first.id]);
        let by_ukprn = store
            .list_organisations(None, Some("10000001"), None, 5)
            .await
            .unwrap();
        assert_eq!(by_ukprn.len(), 1);
        let desks = store
            .list_organisations(Some(OrganisationKind::ServiceDesk), None, None, 5)
            .await
            .unwrap();
        assert!(desks.is_empty());

        let mut renamed = first.clone();
        renamed.display_name = "Beta Academy".into();
        renamed.status = OrganisationStatus::Suspended;
        let stored = store
            .update_organisation(&renamed, 1, &audit(AuditAction::UpdateOrganisation, None))
            .await
            .unwrap();
        assert_eq!(stored.version, 2);
        assert_eq!(stored.display_name, "Beta Academy");
        assert!(!stored.is_active());
        let stale = store
            .update_organisation(&renamed, 1, &audit(AuditAction::UpdateOrganisation, None))
            .await;
        assert!(matches!(stale, Err(StoreError::VersionConflict)));
    })
    .await;
}

#[tokio::test]
async fn usernames_are_unique_without_case_and_the_last_admin_stays() {
    on_each_backend(async |store| {
        let organisation = school("10000001", "School", "ABC123");
        stored_organisation(&*store, &organisation).await;
        let admin = member(&organisation, "Ann.Admin", vec![Role::OrgAdmin]);
        stored_user(&*store, &admin).await;
        let clash = member(&organisation, "ann.admin", vec![Role::BatchUser]);
        let outcome = store
            .create_user(&clash, "hash", None, &audit(AuditAction::CreateUser, None))
            .await;
        assert!(matches!(outcome, Err(StoreError::UsernameTaken)));

        let (found, hash) = store
            .user_for_sign_in("ANN.ADMIN")
            .await
            .unwrap()
            .expect("found");
        assert_eq!(found, admin);
        assert_eq!(hash, "hash");

        let mut demoted = admin.clone();
        demoted.roles = vec![Role::OnlineUser];
        let refused = store
            .update_user(&demoted, 1, &audit(AuditAction::UpdateUser, None))
            .await;
        assert!(matches!(refused, Err(StoreError::LastAdmin)));

        let second = member(&organisation, "bob.admin", vec![Role::OrgAdmin]);
        stored_user(&*store, &second).await;
        let stored = store
            .update_user(&demoted, 1, &audit(AuditAction::UpdateUser, None))
            .await
            .expect("another admin remains");
        assert_eq!(stored.roles, [Role::OnlineUser]);
        assert_eq!(stored.version, 2);
        let stale = store
            .update_user(&demoted, 1, &audit(AuditAction::UpdateUser, None))
            .await;
        assert!(matches!(stale, Err(StoreError::VersionConflict)));

        let mut disabled = second.clone();
        disabled.state = UserState::Disabled;
        let refused = store
            .update_user(&disabled, 1, &audit(AuditAction::DisableUser, None))
            .await;
        assert!(matches!(refused, Err(StoreError::LastAdmin)));

        let page = store.list_users(organisation.id, None, 1).await.unwrap();
        assert_eq!(page[0].id, admin.id);
        let next = store
            .list_users(organisation.id, Some("ann.admin".into()), 5)
            .await
            .unwrap();
        assert_eq!(next.iter().map(|u| u.id).collect::<Vec<_>>(), [second.id]);
    })
    .await;
}

#[tokio::test]
async fn failures_lock_and_disabling_revokes_refresh_tokens() {
    on_each_backend(async |store| {
        let organisation = school("10000001", "School", "ABC123");
        stored_organisation(&*store, &organisation).await;
        let admin = member(&organisation, "admin.one", vec![Role::OrgAdmin]);
        let user = member(&organisation, "batch.one", vec![Role::BatchUser]);
        stored_user(&*store, &admin).await;
        stored_user(&*store, &user).await;

        assert_eq!(store.record_failed_sign_in(user.id).await.unwrap(), 1);
        assert_eq!(store.record_failed_sign_in(user.id).await.unwrap(), 2);
        let until = crate::now(&SystemClock) + Duration::minutes(15);
        store
            .lock_user(user.id, until, &audit(AuditAction::SignInLocked, None))
            .await
            .unwrap();
        let locked = store.user(user.id).await.unwrap().expect("exists");
        assert_eq!(locked.locked_until, Some(until));
        assert_eq!(locked.failed_sign_ins, 0);
        let now = crate::now(&SystemClock);
        store.record_sign_in(user.id, now).await.unwrap();
        let signed_in = store.user(user.id).await.unwrap().expect("exists");
        assert_eq!(signed_in.locked_until, None);
        assert_eq!(signed_in.last_sign_in_at, Some(now));

        let token = NewRefreshToken {
            hash: vec![1; 32],
            family_id: Uuid::new_v4(),
            user_id: user.id,
            issued_at: now,
            expires_at: now + Duration::hours(12),
        };
        store.insert_refresh_token(&token).await.unwrap();
        let mut disabled = signed_in.clone();
        disabled.state = UserState::Disabled;
        store
            .update_user(
                &disabled,
                signed_in.version,
                &audit(AuditAction::DisableUser, None),
            )
            .await
            .unwrap();
        let next = NewRefreshToken {
            hash: vec![2; 32],
            ..token.clone()
        };
        let rotation = store
            .rotate_refresh_token(&token.hash, &next, now)
            .await
            .unwrap();
        assert_eq!(rotation, Rotation::Invalid);

        let changed = store
            .set_password(
                user.id,
                "new-hash",
                true,
                &audit(AuditAction::ResetPassword, None),
            )
            .await
            .unwrap();
        assert!(changed.password_change_required);
        let (_, hash) = store
            .user_for_sign_in("batch.one")
            .await
            .unwrap()
            .expect("found");
        assert_eq!(hash, "new-hash");
    })
    .await;
}

#[tokio::test]
async fn refresh_tokens_rotate_and_reuse_revokes_the_family() {
    on_each_backend(async |store| {
        let organisation = school("10000001", "School", "ABC123");
        stored_organisation(&*store, &organisation).await;
        let user = member(&organisation, "online.one", vec![Role::OnlineUser]);
        stored_user(&*store, &user).await;
        let now = Utc::now();
        let token = |byte: u8| NewRefreshToken {
            hash: vec![byte; 32],
            family_id: Uuid::new_v4(),
            user_id: user.id,
            issued_at: now,
            expires_at: now + Duration::hours(12),
        };
        store.insert_refresh_token(&token(1)).await.unwrap();

        let rotated = store
            .rotate_refresh_token(&[1; 32], &token(2), now)
            .await
            .unwrap();
        assert_eq!(rotated, Rotation::Rotated { user_id: user.id });
        let reused = store
            .rotate_refresh_token(&[1; 32], &token(3), now)
            .await
            .unwrap();
        assert_eq!(reused, Rotation::Reused { user_id: user.id });
        let successor = store
            .rotate_refresh_token(&[2; 32], &token(4), now)
            .await
            .unwrap();
        assert_eq!(successor, Rotation::Invalid);
        let unknown = store
            .rotate_refresh_token(&[9; 32], &token(5), now)
            .await
            .unwrap();
        assert_eq!(unknown, Rotation::Invalid);

        store.insert_refresh_token(&token(6)).await.unwrap();
        let later = now + Duration::hours(13);
        let expired = store
            .rotate_refresh_token(&[6; 32], &token(7), later)
            .await
            .unwrap();
        assert_eq!(expired, Rotation::Invalid);

        store.insert_refresh_token(&token(8)).await.unwrap();
        store.revoke_refresh_token(&[8; 32], now).await.unwrap();
        let revoked = store
            .rotate_refresh_token(&[8; 32], &token(10), now)
            .await
            .unwrap();
        assert_eq!(revoked, Rotation::Invalid);
    })
    .await;
}

#[tokio::test]
async fn credentials_are_created_listed_rotated_and_revoked() {
    on_each_backend(async |store| {
        let organisation = school("10000001", "School", "ABC123");
        stored_organisation(&*store, &organisation).await;
        let now = crate::now(&SystemClock);
        let credential = |service: Option<&str>, offset: i64| ClientCredential {
            client_id: Uuid::new_v4(),
            organisation_id: organisation.id,
            display_name: "MIS".into(),
            roles: vec![Role::BatchUser],
            service: service.map(str::to_owned),
            created_at: now + Duration::seconds(offset),
            revoked_at: None,
        };
        let first = credential(None, 0);
        let second = credential(Some("learner"), 1);
        for item in [&first, &second] {
            store
                .create_credential(
                    item,
                    &[7; 32],
                    None,
                    &audit(AuditAction::CreateClientCredential, None),
                )
                .await
                .unwrap();
        }
        let clash = credential(Some("learner"), 2);
        let outcome = store
            .create_credential(
                &clash,
                &[7; 32],
                None,
                &audit(AuditAction::CreateClientCredential, None),
            )
            .await;
        assert!(matches!(outcome, Err(StoreError::ServiceCredentialTaken)));

        let (found, hash) = store
            .credential(first.client_id)
            .await
            .unwrap()
            .expect("found");
        assert_eq!(found, first);
        assert_eq!(hash, vec![7; 32]);
        let service = store
            .service_credential("learner")
            .await
            .unwrap()
            .expect("found");
        assert_eq!(service.client_id, second.client_id);
        store
            .replace_credential_secret(
                second.client_id,
                &[8; 32],
                &audit(AuditAction::RotateServiceCredential, None),
            )
            .await
            .unwrap();
        let (_, hash) = store
            .credential(second.client_id)
            .await
            .unwrap()
            .expect("found");
        assert_eq!(hash, vec![8; 32]);

        let newest = store
            .list_credentials(organisation.id, None, 1)
            .await
            .unwrap();
        assert_eq!(newest[0].client_id, second.client_id);
        let after = Some((second.created_at, second.client_id));
        let older = store
            .list_credentials(organisation.id, after, 5)
            .await
            .unwrap();
        assert_eq!(
            older.iter().map(|c| c.client_id).collect::<Vec<_>>(),
            [first.client_id]
        );

        let revoked = store
            .revoke_credential(
                second.client_id,
                &audit(AuditAction::RevokeClientCredential, None),
            )
            .await
            .unwrap();
        assert!(revoked.revoked_at.is_some());
        assert_eq!(store.service_credential("learner").await.unwrap(), None);
    })
    .await;
}

#[tokio::test]
async fn one_current_signing_key_rotates_and_expired_keys_go() {
    on_each_backend(async |store| {
        let now = crate::now(&SystemClock);
        let key = |id: &str| SigningKeyRecord {
            key_id: id.into(),
            public_key_pem: format!("pem {id}"),
            private_key_nonce: vec![0; 12],
            private_key_sealed: vec![1; 48],
            created_at: now,
            retired_at: None,
            expires_at: None,
        };
        assert!(store.insert_first_signing_key(&key("k1")).await.unwrap());
        assert!(!store.insert_first_signing_key(&key("k2")).await.unwrap());

        let expires = now + Duration::minutes(17);
        assert!(
            store
                .rotate_signing_key("k1", now, expires, &key("k3"))
                .await
                .unwrap()
        );
        assert!(
            !store
                .rotate_signing_key("k1", now, expires, &key("k4"))
                .await
                .unwrap()
        );
        let keys = store.signing_keys().await.unwrap();
        assert_eq!(keys.len(), 2);
        let old = keys.iter().find(|k| k.key_id == "k1").expect("kept");
        assert_eq!(old.expires_at, Some(expires));
        assert_eq!(old.private_key_sealed, vec![1; 48]);

        assert_eq!(store.delete_expired_signing_keys(now).await.unwrap(), 0);
        assert_eq!(store.delete_expired_signing_keys(expires).await.unwrap(), 1);
        let keys = store.signing_keys().await.unwrap();
        assert_eq!(
            keys.iter().map(|k| k.key_id.as_str()).collect::<Vec<_>>(),
            ["k3"]
        );
    })
    .await;
}

#[tokio::test]
async fn list_imports_update_in_place() {
    on_each_backend(async |store| {
        let now = crate::now(&SystemClock);
        let provider = |ukprn: &str, name: &str| Provider {
            ukprn: ukprn.into(),
            name: name.into(),
            status: "Active".into(),
            town: String::new(),
            postcode: String::new(),
            updated_at: now,
        };
        let first = store
            .upsert_providers(&[provider("10000001", "A"), provider("10000002", "B")])
            .await
            .unwrap();
        assert_eq!(first, [ImportChange::Added, ImportChange::Added]);
        let second = store
            .upsert_providers(&[provider("10000001", "A"), provider("10000002", "B2")])
            .await
            .unwrap();
        assert_eq!(second, [ImportChange::Unchanged, ImportChange::Changed]);
        let page = store
            .list_providers(Some("10000001".into()), 5)
            .await
            .unwrap();
        assert_eq!(page.len(), 1);
        assert_eq!(page[0].name, "B2");

        let entry = AwardingOrganisationEntry {
            number: "100060".into(),
            name: "Board".into(),
            acronym: "B".into(),
            status: "Recognised".into(),
            ukprn: String::new(),
            updated_at: now,
        };
        let added = store
            .upsert_awarding_organisations(std::slice::from_ref(&entry))
            .await
            .unwrap();
        assert_eq!(added, [ImportChange::Added]);
        let same = store.upsert_awarding_organisations(&[entry]).await.unwrap();
        assert_eq!(same, [ImportChange::Unchanged]);
        assert_eq!(
            store
                .list_awarding_organisations(None, 5)
                .await
                .unwrap()
                .len(),
            1
        );
    })
    .await;
}

#[tokio::test]
async fn audit_events_list_newest_first_by_organisation() {
    on_each_backend(async |store| {
        let organisation = Uuid::new_v4();
        store
            .record_audit(&audit(AuditAction::CreateUser, Some(organisation)))
            .await
            .unwrap();
        store
            .record_audit(&audit(AuditAction::UpdateUser, None).refused("LAST_ADMIN"))
            .await
            .unwrap();
        store
            .record_audit(&audit(AuditAction::DisableUser, Some(organisation)))
            .await
            .unwrap();

        let all = store.list_audit_events(None, None, 10).await.unwrap();
        let actions: Vec<_> = all.iter().map(|e| e.record.action.as_str()).collect();
        assert_eq!(actions, ["DISABLE_USER", "UPDATE_USER", "CREATE_USER"]);
        assert_eq!(all[1].record.outcome, AuditOutcome::Refused);
        let older = store
            .list_audit_events(None, Some(all[0].sequence), 1)
            .await
            .unwrap();
        assert_eq!(older[0].record.action, "UPDATE_USER");
        let mine = store
            .list_audit_events(Some(organisation), None, 10)
            .await
            .unwrap();
        assert_eq!(mine.len(), 2);
    })
    .await;
}
