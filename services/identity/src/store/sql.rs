//! The SQL both backends share, as one implementation of [`IdentityStore`] generated for
//! each: the statements use `$n` placeholders, which PostgreSQL and SQLite both accept, and
//! the column types map to the same Rust types (UUID or BLOB to `Uuid`, TIMESTAMPTZ or TEXT
//! to `DateTime<Utc>`). What differs is given to the macro: the store type (with `writer()`
//! and `reader()` pools), the database, and the row-lock clause (`FOR UPDATE` on
//! PostgreSQL; SQLite needs none, as its writes are serialised).
//!
//! [`IdentityStore`]: super::IdentityStore

/// The columns of an organisation, in the order `organisation_row` reads them.
macro_rules! organisation_columns {
    () => {
        "organisation_id, kind, lrb_type, display_name, ukprn, organisation_reference, status, \
         version, created_at, updated_at"
    };
}

/// The columns of a user, in the order `user_row` reads them.
macro_rules! user_columns {
    () => {
        "user_id, organisation_id, username, given_name, family_name, email, roles, state, uln, \
         password_change_required, failed_sign_ins, locked_until, version, created_at, \
         updated_at, last_sign_in_at"
    };
}

/// The columns of a machine credential.
macro_rules! credential_columns {
    () => {
        "client_id, organisation_id, display_name, roles, service, created_at, revoked_at"
    };
}

/// The columns of a signing key.
macro_rules! signing_key_columns {
    () => {
        "key_id, public_key_pem, private_key_nonce, private_key_sealed, created_at, retired_at, \
         expires_at"
    };
}

/// The columns of an audit event.
macro_rules! audit_columns {
    () => {
        "sequence, audit_event_id, event_time, actor_id, actor_organisation_id, action, target, \
         target_organisation_id, outcome, detail, request_id"
    };
}

pub(super) use {
    audit_columns, credential_columns, organisation_columns, signing_key_columns, user_columns,
};

/// Implements `IdentityStore` for `$store` on database `$db`, with `$lock` appended to the
/// selects that lock the rows they read.
macro_rules! identity_store {
    ($store:ty, $db:ty, lock = $lock:literal) => {
        use chrono::{DateTime, Utc};
        use sqlx::Row;
        use uuid::Uuid;

        use crate::domain::audit::{
            Actor, AuditEvent, AuditOutcome, AuditRecord,
        };
        use crate::domain::credential::ClientCredential;
        use crate::domain::organisation::{LrbType, Organisation, OrganisationStatus};
        use crate::domain::user::{User, UserState, removes_last_admin};
        use crate::domain::{
            OrganisationKind, organisation_kind_from_name, organisation_kind_name,
            roles_from_text, roles_to_text,
        };
        use crate::store::sql::{
            audit_columns, credential_columns, organisation_columns, signing_key_columns,
            user_columns,
        };
        use crate::store::{
            AwardingOrganisationEntry, Created, IdempotencyKey, IdentityStore, ImportChange,
            NewRefreshToken, Provider, Rotation, SigningKeyRecord, StoreError, classify,
        };

        type Connection = <$db as sqlx::Database>::Connection;
        type DbRow = <$db as sqlx::Database>::Row;

        fn corrupt(what: &str, value: &str) -> StoreError {
            StoreError::Corrupt(format!("{what} `{value}`"))
        }

        fn organisation_row(row: &DbRow) -> Result<Organisation, StoreError> {
            let kind: String = row.try_get("kind")?;
            let lrb_type: Option<String> = row.try_get("lrb_type")?;
            let status: String = row.try_get("status")?;
            Ok(Organisation {
                id: row.try_get("organisation_id")?,
                kind: organisation_kind_from_name(&kind)
                    .ok_or_else(|| corrupt("organisation kind", &kind))?,
                lrb_type: match lrb_type {
                    Some(name) => Some(
                        LrbType::from_name(&name).ok_or_else(|| corrupt("LRB type", &name))?,
                    ),
                    None => None,
                },
                display_name: row.try_get("display_name")?,
                ukprn: row.try_get("ukprn")?,
                reference: row.try_get("organisation_reference")?,
                status: OrganisationStatus::from_name(&status)
                    .ok_or_else(|| corrupt("organisation status", &status))?,
                version: row.try_get("version")?,
                created_at: row.try_get("created_at")?,
                updated_at: row.try_get("updated_at")?,
            })
        }

        fn user_row(row: &DbRow) -> Result<User, StoreError> {
            let roles: String = row.try_get("roles")?;
            let state: String = row.try_get("state")?;
            Ok(User {
                id: row.try_get("user_id")?,
                organisation_id: row.try_get("organisation_id")?,
                username: row.try_get("username")?,
                given_name: row.try_get("given_name")?,
                family_name: row.try_get("family_name")?,
                email: row.try_get("email")?,
                roles: roles_from_text(&roles).map_err(StoreError::Corrupt)?,
                state: UserState::from_name(&state).ok_or_else(|| corrupt("user state", &state))?,
                uln: row.try_get("uln")?,
                password_change_required: row.try_get("password_change_required")?,
                failed_sign_ins: row.try_get("failed_sign_ins")?,
                locked_until: row.try_get("locked_until")?,
                version: row.try_get("version")?,
                created_at: row.try_get("created_at")?,
                updated_at: row.try_get("updated_at")?,
                last_sign_in_at: row.try_get("last_sign_in_at")?,
            })
        }

        fn credential_row(row: &DbRow) -> Result<ClientCredential, StoreError> {
            let roles: String = row.try_get("roles")?;
            Ok(ClientCredential {
                client_id: row.try_get("client_id")?,
                organisation_id: row.try_get("organisation_id")?,
                display_name: row.try_get("display_name")?,
                roles: roles_from_text(&roles).map_err(StoreError::Corrupt)?,
                service: row.try_get("service")?,
                created_at: row.try_get("created_at")?,
                revoked_at: row.try_get("revoked_at")?,
            })
        }

        fn signing_key_row(row: &DbRow) -> Result<SigningKeyRecord, StoreError> {
            Ok(SigningKeyRecord {
                key_id: row.try_get("key_id")?,
                public_key_pem: row.try_get("public_key_pem")?,
                private_key_nonce: row.try_get("private_key_nonce")?,
                private_key_sealed: row.try_get("private_key_sealed")?,
                created_at: row.try_get("created_at")?,
                retired_at: row.try_get("retired_at")?,
                expires_at: row.try_get("expires_at")?,
            })
        }

        fn audit_row(row: &DbRow) -> Result<AuditEvent, StoreError> {
            let outcome: String = row.try_get("outcome")?;
            Ok(AuditEvent {
                sequence: row.try_get("sequence")?,
                record: AuditRecord {
                    id: row.try_get("audit_event_id")?,
                    time: row.try_get("event_time")?,
                    actor: Actor {
                        id: row.try_get("actor_id")?,
                        organisation_id: row.try_get("actor_organisation_id")?,
                    },
                    action: row.try_get("action")?,
                    target: row.try_get("target")?,
                    target_organisation_id: row.try_get("target_organisation_id")?,
                    outcome: AuditOutcome::from_name(&outcome)
                        .ok_or_else(|| corrupt("audit outcome", &outcome))?,
                    detail: row.try_get("detail")?,
                    request_id: row.try_get("request_id")?,
                },
            })
        }

        async fn insert_audit(
            connection: &mut Connection,
            record: &AuditRecord,
        ) -> Result<(), StoreError> {
            sqlx::query(
                "INSERT INTO audit_events (audit_event_id, event_time, actor_id, \
                 actor_organisation_id, action, target, target_organisation_id, outcome, \
                 detail, request_id) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10)",
            )
            .bind(record.id)
            .bind(record.time)
            .bind(&record.actor.id)
            .bind(record.actor.organisation_id)
            .bind(&record.action)
            .bind(&record.target)
            .bind(record.target_organisation_id)
            .bind(record.outcome.name())
            .bind(&record.detail)
            .bind(&record.request_id)
            .execute(&mut *connection)
            .await?;
            Ok(())
        }

        async fn idempotent_resource(
            connection: &mut Connection,
            key: Option<&IdempotencyKey>,
        ) -> Result<Option<Uuid>, StoreError> {
            let Some(key) = key else {
                return Ok(None);
            };
            let found = sqlx::query_scalar(
                "SELECT resource_id FROM idempotency_keys \
                 WHERE caller = $1 AND operation = $2 AND request_id = $3",
            )
            .bind(&key.caller)
            .bind(key.operation)
            .bind(&key.request_id)
            .fetch_optional(&mut *connection)
            .await?;
            Ok(found)
        }

        async fn remember_idempotency(
            connection: &mut Connection,
            key: Option<&IdempotencyKey>,
            resource_id: Uuid,
            now: DateTime<Utc>,
        ) -> Result<(), StoreError> {
            let Some(key) = key else {
                return Ok(());
            };
            sqlx::query(
                "INSERT INTO idempotency_keys (caller, operation, request_id, resource_id, \
                 created_at) VALUES ($1, $2, $3, $4, $5)",
            )
            .bind(&key.caller)
            .bind(key.operation)
            .bind(&key.request_id)
            .bind(resource_id)
            .bind(now)
            .execute(&mut *connection)
            .await
            .map_err(classify)?;
            Ok(())
        }

        async fn user_in(connection: &mut Connection, id: Uuid) -> Result<Option<User>, StoreError> {
            let row = sqlx::query(concat!("SELECT ", user_columns!(), " FROM users WHERE user_id = $1"))
                .bind(id)
                .fetch_optional(&mut *connection)
                .await?;
            row.as_ref().map(user_row).transpose()
        }

        async fn organisation_in(
            connection: &mut Connection,
            id: Uuid,
        ) -> Result<Option<Organisation>, StoreError> {
            let row = sqlx::query(concat!(
                "SELECT ",
                organisation_columns!(),
                " FROM organisations WHERE organisation_id = $1"
            ))
            .bind(id)
            .fetch_optional(&mut *connection)
            .await?;
            row.as_ref().map(organisation_row).transpose()
        }

        async fn credential_in(
            connection: &mut Connection,
            id: Uuid,
        ) -> Result<Option<ClientCredential>, StoreError> {
            let row = sqlx::query(concat!(
                "SELECT ",
                credential_columns!(),
                " FROM client_credentials WHERE client_id = $1"
            ))
            .bind(id)
            .fetch_optional(&mut *connection)
            .await?;
            row.as_ref().map(credential_row).transpose()
        }

        impl $store {
            /// Looks up what an earlier request with `key` created, after a race lost.
            async fn after_race<T>(
                &self,
                key: Option<&IdempotencyKey>,
                load: impl AsyncFnOnce(&mut Connection, Uuid) -> Result<Option<T>, StoreError>,
            ) -> Result<Created<T>, StoreError> {
                let mut connection = self.writer().acquire().await?;
                let id = idempotent_resource(&mut connection, key)
                    .await?
                    .ok_or(StoreError::IdempotencyRace)?;
                let found = load(&mut connection, id).await?.ok_or(StoreError::NotFound)?;
                Ok(Created::Existing(found))
            }
        }

        #[async_trait::async_trait]
        impl IdentityStore for $store {
            async fn create_organisation(
                &self,
                organisation: &Organisation,
                idempotency: Option<&IdempotencyKey>,
                audit: &AuditRecord,
            ) -> Result<Created<Organisation>, StoreError> {
                let mut tx = self.writer().begin().await?;
                if let Some(id) = idempotent_resource(&mut tx, idempotency).await? {
                    let found = organisation_in(&mut tx, id).await?.ok_or(StoreError::NotFound)?;
                    return Ok(Created::Existing(found));
                }
                let inserted = sqlx::query(
                    "INSERT INTO organisations (organisation_id, kind, lrb_type, display_name, \
                     ukprn, organisation_reference, status, version, created_at, updated_at) \
                     VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10)",
                )
                .bind(organisation.id)
                .bind(organisation_kind_name(organisation.kind))
                .bind(organisation.lrb_type.map(LrbType::name))
                .bind(&organisation.display_name)
                .bind(&organisation.ukprn)
                .bind(&organisation.reference)
                .bind(organisation.status.name())
                .bind(organisation.version)
                .bind(organisation.created_at)
                .bind(organisation.updated_at)
                .execute(&mut *tx)
                .await
                .map_err(classify);
                inserted?;
                match remember_idempotency(&mut tx, idempotency, organisation.id, audit.time).await {
                    Err(StoreError::IdempotencyRace) => {
                        drop(tx);
                        return self
                            .after_race(idempotency, async |c, id| organisation_in(c, id).await)
                            .await;
                    }
                    other => other?,
                }
                insert_audit(&mut tx, audit).await?;
                tx.commit().await?;
                Ok(Created::New(organisation.clone()))
            }

            async fn organisation(&self, id: Uuid) -> Result<Option<Organisation>, StoreError> {
                let mut connection = self.reader().acquire().await?;
                organisation_in(&mut connection, id).await
            }

            async fn organisation_by_ukprn(
                &self,
                ukprn: &str,
            ) -> Result<Option<Organisation>, StoreError> {
                let row = sqlx::query(concat!(
                    "SELECT ",
                    organisation_columns!(),
                    " FROM organisations WHERE ukprn = $1"
                ))
                .bind(ukprn)
                .fetch_optional(self.reader())
                .await?;
                row.as_ref().map(organisation_row).transpose()
            }

            async fn service_desk_organisation(&self) -> Result<Option<Organisation>, StoreError> {
                let row = sqlx::query(concat!(
                    "SELECT ",
                    organisation_columns!(),
                    " FROM organisations WHERE kind = $1 ORDER BY created_at, organisation_id LIMIT 1"
                ))
                .bind(organisation_kind_name(OrganisationKind::ServiceDesk))
                .fetch_optional(self.reader())
                .await?;
                row.as_ref().map(organisation_row).transpose()
            }

            async fn list_organisations(
                &self,
                kind: Option<OrganisationKind>,
                ukprn: Option<&str>,
                after: Option<(String, Uuid)>,
                limit: usize,
            ) -> Result<Vec<Organisation>, StoreError> {
                let (after_name, after_id) = match after {
                    Some((name, id)) => (Some(name), Some(id)),
                    None => (None, None),
                };
                let rows = sqlx::query(concat!(
                    "SELECT ",
                    organisation_columns!(),
                    " FROM organisations \
                     WHERE ($1 IS NULL OR kind = $1) AND ($2 IS NULL OR ukprn = $2) \
                     AND ($3 IS NULL OR (display_name, organisation_id) > ($3, $4)) \
                     ORDER BY display_name, organisation_id LIMIT $5"
                ))
                .bind(kind.map(organisation_kind_name))
                .bind(ukprn)
                .bind(after_name)
                .bind(after_id)
                .bind(i64::try_from(limit).unwrap_or(i64::MAX))
                .fetch_all(self.reader())
                .await?;
                rows.iter().map(organisation_row).collect()
            }

            async fn update_organisation(
                &self,
                updated: &Organisation,
                expected_version: i64,
                audit: &AuditRecord,
            ) -> Result<Organisation, StoreError> {
                let mut tx = self.writer().begin().await?;
                let done = sqlx::query(
                    "UPDATE organisations SET display_name = $1, lrb_type = $2, status = $3, \
                     version = version + 1, updated_at = $4 \
                     WHERE organisation_id = $5 AND version = $6",
                )
                .bind(&updated.display_name)
                .bind(updated.lrb_type.map(LrbType::name))
                .bind(updated.status.name())
                .bind(audit.time)
                .bind(updated.id)
                .bind(expected_version)
                .execute(&mut *tx)
                .await?;
                let stored = organisation_in(&mut tx, updated.id).await?.ok_or(StoreError::NotFound)?;
                if done.rows_affected() == 0 {
                    return Err(StoreError::VersionConflict);
                }
                insert_audit(&mut tx, audit).await?;
                tx.commit().await?;
                Ok(stored)
            }

            async fn create_user(
                &self,
                user: &User,
                password_hash: &str,
                idempotency: Option<&IdempotencyKey>,
                audit: &AuditRecord,
            ) -> Result<Created<User>, StoreError> {
                let mut tx = self.writer().begin().await?;
                if let Some(id) = idempotent_resource(&mut tx, idempotency).await? {
                    let found = user_in(&mut tx, id).await?.ok_or(StoreError::NotFound)?;
                    return Ok(Created::Existing(found));
                }
                sqlx::query(
                    "INSERT INTO users (user_id, organisation_id, username, username_key, \
                     given_name, family_name, email, roles, state, uln, password_hash, \
                     password_change_required, failed_sign_ins, locked_until, version, \
                     created_at, updated_at, last_sign_in_at) \
                     VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15, \
                     $16, $17, $18)",
                )
                .bind(user.id)
                .bind(user.organisation_id)
                .bind(&user.username)
                .bind(crate::domain::fields::username_key(&user.username))
                .bind(&user.given_name)
                .bind(&user.family_name)
                .bind(&user.email)
                .bind(roles_to_text(&user.roles))
                .bind(user.state.name())
                .bind(&user.uln)
                .bind(password_hash)
                .bind(user.password_change_required)
                .bind(user.failed_sign_ins)
                .bind(user.locked_until)
                .bind(user.version)
                .bind(user.created_at)
                .bind(user.updated_at)
                .bind(user.last_sign_in_at)
                .execute(&mut *tx)
                .await
                .map_err(classify)?;
                match remember_idempotency(&mut tx, idempotency, user.id, audit.time).await {
                    Err(StoreError::IdempotencyRace) => {
                        drop(tx);
                        return self.after_race(idempotency, async |c, id| user_in(c, id).await).await;
                    }
                    other => other?,
                }
                insert_audit(&mut tx, audit).await?;
                tx.commit().await?;
                Ok(Created::New(user.clone()))
            }

            async fn user(&self, id: Uuid) -> Result<Option<User>, StoreError> {
                let mut connection = self.reader().acquire().await?;
                user_in(&mut connection, id).await
            }

            async fn user_for_sign_in(
                &self,
                username: &str,
            ) -> Result<Option<(User, String)>, StoreError> {
                let row = sqlx::query(concat!(
                    "SELECT ",
                    user_columns!(),
                    ", password_hash FROM users WHERE username_key = $1"
                ))
                .bind(crate::domain::fields::username_key(username))
                .fetch_optional(self.reader())
                .await?;
                match row {
                    Some(row) => Ok(Some((user_row(&row)?, row.try_get("password_hash")?))),
                    None => Ok(None),
                }
            }

            async fn list_users(
                &self,
                organisation_id: Uuid,
                after: Option<String>,
                limit: usize,
            ) -> Result<Vec<User>, StoreError> {
                let rows = sqlx::query(concat!(
                    "SELECT ",
                    user_columns!(),
                    " FROM users WHERE organisation_id = $1 AND ($2 IS NULL OR username_key > $2) \
                     ORDER BY username_key LIMIT $3"
                ))
                .bind(organisation_id)
                .bind(after)
                .bind(i64::try_from(limit).unwrap_or(i64::MAX))
                .fetch_all(self.reader())
                .await?;
                rows.iter().map(user_row).collect()
            }

            async fn update_user(
                &self,
                updated: &User,
                expected_version: i64,
                audit: &AuditRecord,
            ) -> Result<User, StoreError> {
                let mut tx = self.writer().begin().await?;
                let row = sqlx::query(concat!(
                    "SELECT ",
                    user_columns!(),
                    " FROM users WHERE user_id = $1",
                    $lock
                ))
                .bind(updated.id)
                .fetch_optional(&mut *tx)
                .await?;
                let current = row.as_ref().map(user_row).transpose()?.ok_or(StoreError::NotFound)?;
                if current.version != expected_version {
                    return Err(StoreError::VersionConflict);
                }
                if let Some(organisation_id) = current.organisation_id {
                    // Locking the organisation serialises admin changes within it, so two
                    // admins cannot remove each other at once.
                    sqlx::query(concat!(
                        "SELECT organisation_id FROM organisations WHERE organisation_id = $1",
                        $lock
                    ))
                    .bind(organisation_id)
                    .fetch_optional(&mut *tx)
                    .await?;
                    let others: Vec<String> = sqlx::query_scalar(
                        "SELECT roles FROM users \
                         WHERE organisation_id = $1 AND state = $2 AND user_id <> $3",
                    )
                    .bind(organisation_id)
                    .bind(UserState::Active.name())
                    .bind(current.id)
                    .fetch_all(&mut *tx)
                    .await?;
                    let other_admins = others
                        .iter()
                        .filter(|roles| roles.split(',').any(|role| role == "ORG_ADMIN"))
                        .count();
                    if removes_last_admin(&current, updated, other_admins) {
                        return Err(StoreError::LastAdmin);
                    }
                }
                sqlx::query(
                    "UPDATE users SET given_name = $1, family_name = $2, email = $3, roles = $4, \
                     state = $5, locked_until = $6, failed_sign_ins = $7, \
                     version = version + 1, updated_at = $8 WHERE user_id = $9",
                )
                .bind(&updated.given_name)
                .bind(&updated.family_name)
                .bind(&updated.email)
                .bind(roles_to_text(&updated.roles))
                .bind(updated.state.name())
                .bind(updated.locked_until)
                .bind(updated.failed_sign_ins)
                .bind(audit.time)
                .bind(updated.id)
                .execute(&mut *tx)
                .await?;
                if updated.state == UserState::Disabled {
                    sqlx::query(
                        "UPDATE refresh_tokens SET revoked_at = $1 \
                         WHERE user_id = $2 AND revoked_at IS NULL",
                    )
                    .bind(audit.time)
                    .bind(updated.id)
                    .execute(&mut *tx)
                    .await?;
                }
                let stored = user_in(&mut tx, updated.id).await?.ok_or(StoreError::NotFound)?;
                insert_audit(&mut tx, audit).await?;
                tx.commit().await?;
                Ok(stored)
            }

            async fn set_password(
                &self,
                user_id: Uuid,
                password_hash: &str,
                change_required: bool,
                audit: &AuditRecord,
            ) -> Result<User, StoreError> {
                let mut tx = self.writer().begin().await?;
                let done = sqlx::query(
                    "UPDATE users SET password_hash = $1, password_change_required = $2, \
                     failed_sign_ins = 0, locked_until = NULL, version = version + 1, \
                     updated_at = $3 WHERE user_id = $4",
                )
                .bind(password_hash)
                .bind(change_required)
                .bind(audit.time)
                .bind(user_id)
                .execute(&mut *tx)
                .await?;
                if done.rows_affected() == 0 {
                    return Err(StoreError::NotFound);
                }
                sqlx::query(
                    "UPDATE refresh_tokens SET revoked_at = $1 \
                     WHERE user_id = $2 AND revoked_at IS NULL",
                )
                .bind(audit.time)
                .bind(user_id)
                .execute(&mut *tx)
                .await?;
                let stored = user_in(&mut tx, user_id).await?.ok_or(StoreError::NotFound)?;
                insert_audit(&mut tx, audit).await?;
                tx.commit().await?;
                Ok(stored)
            }

            async fn record_failed_sign_in(&self, user_id: Uuid) -> Result<i64, StoreError> {
                let failures: Option<i64> = sqlx::query_scalar(
                    "UPDATE users SET failed_sign_ins = failed_sign_ins + 1 WHERE user_id = $1 \
                     RETURNING failed_sign_ins",
                )
                .bind(user_id)
                .fetch_optional(self.writer())
                .await?;
                failures.ok_or(StoreError::NotFound)
            }

            async fn lock_user(
                &self,
                user_id: Uuid,
                until: DateTime<Utc>,
                audit: &AuditRecord,
            ) -> Result<(), StoreError> {
                let mut tx = self.writer().begin().await?;
                sqlx::query(
                    "UPDATE users SET locked_until = $1, failed_sign_ins = 0 WHERE user_id = $2",
                )
                .bind(until)
                .bind(user_id)
                .execute(&mut *tx)
                .await?;
                insert_audit(&mut tx, audit).await?;
                tx.commit().await?;
                Ok(())
            }

            async fn record_sign_in(
                &self,
                user_id: Uuid,
                now: DateTime<Utc>,
            ) -> Result<(), StoreError> {
                sqlx::query(
                    "UPDATE users SET failed_sign_ins = 0, locked_until = NULL, \
                     last_sign_in_at = $1 WHERE user_id = $2",
                )
                .bind(now)
                .bind(user_id)
                .execute(self.writer())
                .await?;
                Ok(())
            }

            async fn insert_refresh_token(&self, token: &NewRefreshToken) -> Result<(), StoreError> {
                sqlx::query(
                    "INSERT INTO refresh_tokens (token_hash, family_id, user_id, issued_at, \
                     expires_at) VALUES ($1, $2, $3, $4, $5)",
                )
                .bind(&token.hash)
                .bind(token.family_id)
                .bind(token.user_id)
                .bind(token.issued_at)
                .bind(token.expires_at)
                .execute(self.writer())
                .await?;
                Ok(())
            }

            async fn rotate_refresh_token(
                &self,
                presented: &[u8],
                next: &NewRefreshToken,
                now: DateTime<Utc>,
            ) -> Result<Rotation, StoreError> {
                let mut tx = self.writer().begin().await?;
                let row = sqlx::query(concat!(
                    "SELECT family_id, user_id, expires_at, used_at, revoked_at \
                     FROM refresh_tokens WHERE token_hash = $1",
                    $lock
                ))
                .bind(presented)
                .fetch_optional(&mut *tx)
                .await?;
                let Some(row) = row else {
                    return Ok(Rotation::Invalid);
                };
                let family_id: Uuid = row.try_get("family_id")?;
                let user_id: Uuid = row.try_get("user_id")?;
                let expires_at: DateTime<Utc> = row.try_get("expires_at")?;
                let used_at: Option<DateTime<Utc>> = row.try_get("used_at")?;
                let revoked_at: Option<DateTime<Utc>> = row.try_get("revoked_at")?;

                if revoked_at.is_some() || expires_at <= now {
                    return Ok(Rotation::Invalid);
                }
                if used_at.is_some() {
                    sqlx::query(
                        "UPDATE refresh_tokens SET revoked_at = $1 \
                         WHERE family_id = $2 AND revoked_at IS NULL",
                    )
                    .bind(now)
                    .bind(family_id)
                    .execute(&mut *tx)
                    .await?;
                    tx.commit().await?;
                    return Ok(Rotation::Reused { user_id });
                }
                sqlx::query("UPDATE refresh_tokens SET used_at = $1 WHERE token_hash = $2")
                    .bind(now)
                    .bind(presented)
                    .execute(&mut *tx)
                    .await?;
                sqlx::query(
                    "INSERT INTO refresh_tokens (token_hash, family_id, user_id, issued_at, \
                     expires_at) VALUES ($1, $2, $3, $4, $5)",
                )
                .bind(&next.hash)
                .bind(family_id)
                .bind(user_id)
                .bind(next.issued_at)
                .bind(next.expires_at)
                .execute(&mut *tx)
                .await?;
                tx.commit().await?;
                Ok(Rotation::Rotated { user_id })
            }

            async fn revoke_refresh_token(
                &self,
                presented: &[u8],
                now: DateTime<Utc>,
            ) -> Result<(), StoreError> {
                sqlx::query(
                    "UPDATE refresh_tokens SET revoked_at = $1 WHERE revoked_at IS NULL AND \
                     family_id IN (SELECT family_id FROM refresh_tokens WHERE token_hash = $2)",
                )
                .bind(now)
                .bind(presented)
                .execute(self.writer())
                .await?;
                Ok(())
            }

            async fn create_credential(
                &self,
                credential: &ClientCredential,
                secret_hash: &[u8],
                idempotency: Option<&IdempotencyKey>,
                audit: &AuditRecord,
            ) -> Result<Created<ClientCredential>, StoreError> {
                let mut tx = self.writer().begin().await?;
                if let Some(id) = idempotent_resource(&mut tx, idempotency).await? {
                    let found = credential_in(&mut tx, id).await?.ok_or(StoreError::NotFound)?;
                    return Ok(Created::Existing(found));
                }
                sqlx::query(
                    "INSERT INTO client_credentials (client_id, organisation_id, display_name, \
                     roles, service, secret_hash, created_at, revoked_at) \
                     VALUES ($1, $2, $3, $4, $5, $6, $7, $8)",
                )
                .bind(credential.client_id)
                .bind(credential.organisation_id)
                .bind(&credential.display_name)
                .bind(roles_to_text(&credential.roles))
                .bind(&credential.service)
                .bind(secret_hash)
                .bind(credential.created_at)
                .bind(credential.revoked_at)
                .execute(&mut *tx)
                .await
                .map_err(classify)?;
                match remember_idempotency(&mut tx, idempotency, credential.client_id, audit.time)
                    .await
                {
                    Err(StoreError::IdempotencyRace) => {
                        drop(tx);
                        return self
                            .after_race(idempotency, async |c, id| credential_in(c, id).await)
                            .await;
                    }
                    other => other?,
                }
                insert_audit(&mut tx, audit).await?;
                tx.commit().await?;
                Ok(Created::New(credential.clone()))
            }

            async fn credential(
                &self,
                client_id: Uuid,
            ) -> Result<Option<(ClientCredential, Vec<u8>)>, StoreError> {
                let row = sqlx::query(concat!(
                    "SELECT ",
                    credential_columns!(),
                    ", secret_hash FROM client_credentials WHERE client_id = $1"
                ))
                .bind(client_id)
                .fetch_optional(self.reader())
                .await?;
                match row {
                    Some(row) => Ok(Some((credential_row(&row)?, row.try_get("secret_hash")?))),
                    None => Ok(None),
                }
            }

            async fn service_credential(
                &self,
                service: &str,
            ) -> Result<Option<ClientCredential>, StoreError> {
                let row = sqlx::query(concat!(
                    "SELECT ",
                    credential_columns!(),
                    " FROM client_credentials WHERE service = $1 AND revoked_at IS NULL"
                ))
                .bind(service)
                .fetch_optional(self.reader())
                .await?;
                row.as_ref().map(credential_row).transpose()
            }

            async fn replace_credential_secret(
                &self,
                client_id: Uuid,
                secret_hash: &[u8],
                audit: &AuditRecord,
            ) -> Result<(), StoreError> {
                let mut tx = self.writer().begin().await?;
                let done = sqlx::query(
                    "UPDATE client_credentials SET secret_hash = $1 \
                     WHERE client_id = $2 AND revoked_at IS NULL",
                )
                .bind(secret_hash)
                .bind(client_id)
                .execute(&mut *tx)
                .await?;
                if done.rows_affected() == 0 {
                    return Err(StoreError::NotFound);
                }
                insert_audit(&mut tx, audit).await?;
                tx.commit().await?;
                Ok(())
            }

            async fn list_credentials(
                &self,
                organisation_id: Uuid,
                after: Option<(DateTime<Utc>, Uuid)>,
                limit: usize,
            ) -> Result<Vec<ClientCredential>, StoreError> {
                let (after_time, after_id) = match after {
                    Some((time, id)) => (Some(time), Some(id)),
                    None => (None, None),
                };
                let rows = sqlx::query(concat!(
                    "SELECT ",
                    credential_columns!(),
                    " FROM client_credentials WHERE organisation_id = $1 \
                     AND ($2 IS NULL OR (created_at, client_id) < ($2, $3)) \
                     ORDER BY created_at DESC, client_id DESC LIMIT $4"
                ))
                .bind(organisation_id)
                .bind(after_time)
                .bind(after_id)
                .bind(i64::try_from(limit).unwrap_or(i64::MAX))
                .fetch_all(self.reader())
                .await?;
                rows.iter().map(credential_row).collect()
            }

            async fn revoke_credential(
                &self,
                client_id: Uuid,
                audit: &AuditRecord,
            ) -> Result<ClientCredential, StoreError> {
                let mut tx = self.writer().begin().await?;
                sqlx::query(
                    "UPDATE client_credentials SET revoked_at = $1 \
                     WHERE client_id = $2 AND revoked_at IS NULL",
                )
                .bind(audit.time)
                .bind(client_id)
                .execute(&mut *tx)
                .await?;
                let stored = credential_in(&mut tx, client_id).await?.ok_or(StoreError::NotFound)?;
                insert_audit(&mut tx, audit).await?;
                tx.commit().await?;
                Ok(stored)
            }

            async fn signing_keys(&self) -> Result<Vec<SigningKeyRecord>, StoreError> {
                let rows = sqlx::query(concat!(
                    "SELECT ",
                    signing_key_columns!(),
                    " FROM signing_keys ORDER BY created_at DESC"
                ))
                .fetch_all(self.reader())
                .await?;
                rows.iter().map(signing_key_row).collect()
            }

            async fn insert_first_signing_key(
                &self,
                key: &SigningKeyRecord,
            ) -> Result<bool, StoreError> {
                let inserted = sqlx::query(
                    "INSERT INTO signing_keys (key_id, public_key_pem, private_key_nonce, \
                     private_key_sealed, created_at, retired_at, expires_at) \
                     VALUES ($1, $2, $3, $4, $5, NULL, NULL)",
                )
                .bind(&key.key_id)
                .bind(&key.public_key_pem)
                .bind(&key.private_key_nonce)
                .bind(&key.private_key_sealed)
                .bind(key.created_at)
                .execute(self.writer())
                .await;
                match inserted {
                    Ok(_) => Ok(true),
                    Err(error)
                        if error
                            .as_database_error()
                            .is_some_and(|e| e.is_unique_violation()) =>
                    {
                        Ok(false)
                    }
                    Err(error) => Err(error.into()),
                }
            }

            async fn rotate_signing_key(
                &self,
                current: &str,
                retired_at: DateTime<Utc>,
                expires_at: DateTime<Utc>,
                next: &SigningKeyRecord,
            ) -> Result<bool, StoreError> {
                let mut tx = self.writer().begin().await?;
                let retired = sqlx::query(
                    "UPDATE signing_keys SET retired_at = $1, expires_at = $2 \
                     WHERE key_id = $3 AND retired_at IS NULL",
                )
                .bind(retired_at)
                .bind(expires_at)
                .bind(current)
                .execute(&mut *tx)
                .await?;
                if retired.rows_affected() == 0 {
                    return Ok(false);
                }
                sqlx::query(
                    "INSERT INTO signing_keys (key_id, public_key_pem, private_key_nonce, \
                     private_key_sealed, created_at, retired_at, expires_at) \
                     VALUES ($1, $2, $3, $4, $5, NULL, NULL)",
                )
                .bind(&next.key_id)
                .bind(&next.public_key_pem)
                .bind(&next.private_key_nonce)
                .bind(&next.private_key_sealed)
                .bind(next.created_at)
                .execute(&mut *tx)
                .await?;
                tx.commit().await?;
                Ok(true)
            }

            async fn delete_expired_signing_keys(
                &self,
                now: DateTime<Utc>,
            ) -> Result<u64, StoreError> {
                let done = sqlx::query(
                    "DELETE FROM signing_keys WHERE expires_at IS NOT NULL AND expires_at <= $1",
                )
                .bind(now)
                .execute(self.writer())
                .await?;
                Ok(done.rows_affected())
            }

            async fn upsert_providers(
                &self,
                rows: &[Provider],
            ) -> Result<Vec<ImportChange>, StoreError> {
                let mut tx = self.writer().begin().await?;
                let mut changes = Vec::with_capacity(rows.len());
                for provider in rows {
                    let stored = sqlx::query(
                        "SELECT name, status, town, postcode FROM providers WHERE ukprn = $1",
                    )
                    .bind(&provider.ukprn)
                    .fetch_optional(&mut *tx)
                    .await?;
                    let change = match stored {
                        None => ImportChange::Added,
                        Some(row) => {
                            let same = row.try_get::<String, _>("name")? == provider.name
                                && row.try_get::<String, _>("status")? == provider.status
                                && row.try_get::<String, _>("town")? == provider.town
                                && row.try_get::<String, _>("postcode")? == provider.postcode;
                            if same { ImportChange::Unchanged } else { ImportChange::Changed }
                        }
                    };
                    if change != ImportChange::Unchanged {
                        sqlx::query(
                            "INSERT INTO providers (ukprn, name, status, town, postcode, \
                             updated_at) VALUES ($1, $2, $3, $4, $5, $6) \
                             ON CONFLICT (ukprn) DO UPDATE SET name = excluded.name, \
                             status = excluded.status, town = excluded.town, \
                             postcode = excluded.postcode, updated_at = excluded.updated_at",
                        )
                        .bind(&provider.ukprn)
                        .bind(&provider.name)
                        .bind(&provider.status)
                        .bind(&provider.town)
                        .bind(&provider.postcode)
                        .bind(provider.updated_at)
                        .execute(&mut *tx)
                        .await?;
                    }
                    changes.push(change);
                }
                tx.commit().await?;
                Ok(changes)
            }

            async fn list_providers(
                &self,
                after: Option<String>,
                limit: usize,
            ) -> Result<Vec<Provider>, StoreError> {
                let rows = sqlx::query(
                    "SELECT ukprn, name, status, town, postcode, updated_at FROM providers \
                     WHERE ($1 IS NULL OR ukprn > $1) ORDER BY ukprn LIMIT $2",
                )
                .bind(after)
                .bind(i64::try_from(limit).unwrap_or(i64::MAX))
                .fetch_all(self.reader())
                .await?;
                rows.iter()
                    .map(|row| {
                        Ok(Provider {
                            ukprn: row.try_get("ukprn")?,
                            name: row.try_get("name")?,
                            status: row.try_get("status")?,
                            town: row.try_get("town")?,
                            postcode: row.try_get("postcode")?,
                            updated_at: row.try_get("updated_at")?,
                        })
                    })
                    .collect()
            }

            async fn upsert_awarding_organisations(
                &self,
                rows: &[AwardingOrganisationEntry],
            ) -> Result<Vec<ImportChange>, StoreError> {
                let mut tx = self.writer().begin().await?;
                let mut changes = Vec::with_capacity(rows.len());
                for entry in rows {
                    let stored = sqlx::query(
                        "SELECT name, acronym, status, ukprn FROM awarding_organisations \
                         WHERE number = $1",
                    )
                    .bind(&entry.number)
                    .fetch_optional(&mut *tx)
                    .await?;
                    let change = match stored {
                        None => ImportChange::Added,
                        Some(row) => {
                            let same = row.try_get::<String, _>("name")? == entry.name
                                && row.try_get::<String, _>("acronym")? == entry.acronym
                                && row.try_get::<String, _>("status")? == entry.status
                                && row.try_get::<String, _>("ukprn")? == entry.ukprn;
                            if same { ImportChange::Unchanged } else { ImportChange::Changed }
                        }
                    };
                    if change != ImportChange::Unchanged {
                        sqlx::query(
                            "INSERT INTO awarding_organisations (number, name, acronym, status, \
                             ukprn, updated_at) VALUES ($1, $2, $3, $4, $5, $6) \
                             ON CONFLICT (number) DO UPDATE SET name = excluded.name, \
                             acronym = excluded.acronym, status = excluded.status, \
                             ukprn = excluded.ukprn, updated_at = excluded.updated_at",
                        )
                        .bind(&entry.number)
                        .bind(&entry.name)
                        .bind(&entry.acronym)
                        .bind(&entry.status)
                        .bind(&entry.ukprn)
                        .bind(entry.updated_at)
                        .execute(&mut *tx)
                        .await?;
                    }
                    changes.push(change);
                }
                tx.commit().await?;
                Ok(changes)
            }

            async fn list_awarding_organisations(
                &self,
                after: Option<String>,
                limit: usize,
            ) -> Result<Vec<AwardingOrganisationEntry>, StoreError> {
                let rows = sqlx::query(
                    "SELECT number, name, acronym, status, ukprn, updated_at \
                     FROM awarding_organisations WHERE ($1 IS NULL OR number > $1) \
                     ORDER BY number LIMIT $2",
                )
                .bind(after)
                .bind(i64::try_from(limit).unwrap_or(i64::MAX))
                .fetch_all(self.reader())
                .await?;
                rows.iter()
                    .map(|row| {
                        Ok(AwardingOrganisationEntry {
                            number: row.try_get("number")?,
                            name: row.try_get("name")?,
                            acronym: row.try_get("acronym")?,
                            status: row.try_get("status")?,
                            ukprn: row.try_get("ukprn")?,
                            updated_at: row.try_get("updated_at")?,
                        })
                    })
                    .collect()
            }

            async fn record_audit(&self, record: &AuditRecord) -> Result<(), StoreError> {
                let mut connection = self.writer().acquire().await?;
                insert_audit(&mut connection, record).await
            }

            async fn list_audit_events(
                &self,
                organisation_id: Option<Uuid>,
                before: Option<i64>,
                limit: usize,
            ) -> Result<Vec<AuditEvent>, StoreError> {
                let rows = sqlx::query(concat!(
                    "SELECT ",
                    audit_columns!(),
                    " FROM audit_events WHERE ($1 IS NULL OR sequence < $1) \
                     AND ($2 IS NULL OR actor_organisation_id = $2 OR target_organisation_id = $2) \
                     ORDER BY sequence DESC LIMIT $3"
                ))
                .bind(before)
                .bind(organisation_id)
                .bind(i64::try_from(limit).unwrap_or(i64::MAX))
                .fetch_all(self.reader())
                .await?;
                rows.iter().map(audit_row).collect()
            }
        }
    };
}

pub(super) use identity_store;
