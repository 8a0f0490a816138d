//! Identity's storage: the [`IdentityStore`] trait and its PostgreSQL and SQLite
//! implementations, which share their SQL (see `sql.rs`) and differ only in pools, column
//! types and row locks.
//!
//! Every change that is audited writes its audit record in the same transaction, so the log
//! and the data never disagree. Creates that a client may retry take an idempotency key,
//! recorded in the same transaction as the row it created.

use std::fmt;
use std::sync::Arc;

use chrono::{DateTime, Utc};
use uuid::Uuid;

use crate::domain::OrganisationKind;
use crate::domain::audit::{AuditEvent, AuditRecord};
use crate::domain::credential::ClientCredential;
use crate::domain::organisation::Organisation;
use crate::domain::user::User;

#[cfg(test)]
pub(crate) mod conformance;
mod postgres;
mod sql;
mod sqlite;

pub use postgres::PostgresIdentityStore;
pub use sqlite::SqliteIdentityStore;

/// What can go wrong in the store.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    /// The database failed.
    #[error("database error: {0}")]
    Database(#[from] sqlx::Error),
    /// Another organisation has the UKPRN.
    #[error("the UKPRN is taken")]
    UkprnTaken,
    /// Another organisation has the reference.
    #[error("the organisation reference is taken")]
    OrganisationReferenceTaken,
    /// Another user has the username (compared without case).
    #[error("the username is taken")]
    UsernameTaken,
    /// The service already has a credential in force.
    #[error("the service already has a credential")]
    ServiceCredentialTaken,
    /// A concurrent create with the same idempotency key won.
    #[error("a request with the same idempotency key is being created")]
    IdempotencyRace,
    /// The row does not exist.
    #[error("not found")]
    NotFound,
    /// The version given is not the stored one.
    #[error("the stored version differs")]
    VersionConflict,
    /// The change would leave the organisation without an active admin.
    #[error("the organisation's last active admin")]
    LastAdmin,
    /// A stored value this version cannot read.
    #[error("a stored value is not valid: {0}")]
    Corrupt(String),
}

/// Whether a create made a new row or found the one a retried request made before.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Created<T> {
    /// Made now.
    New(T),
    /// Made by an earlier request with the same idempotency key.
    Existing(T),
}

/// An idempotency key: a request id, scoped to the caller and the operation.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct IdempotencyKey {
    /// The user id, client id or service name that sent the request.
    pub caller: String,
    /// The operation (`CreateUser`).
    pub operation: &'static str,
    /// The caller's request id.
    pub request_id: String,
}

/// A signing key as stored: the public half in PEM, the private half sealed with the
/// key-encryption key.
#[derive(Clone, PartialEq, Eq)]
pub struct SigningKeyRecord {
    /// The `kid`.
    pub key_id: String,
    /// The public key, SubjectPublicKeyInfo PEM.
    pub public_key_pem: String,
    /// The AEAD nonce the private half was sealed with.
    pub private_key_nonce: Vec<u8>,
    /// The sealed private half.
    pub private_key_sealed: Vec<u8>,
    /// When it started signing.
    pub created_at: DateTime<Utc>,
    /// When it stopped signing; `None` for the current key.
    pub retired_at: Option<DateTime<Utc>>,
    /// When the last token it signed expires; `None` for the current key.
    pub expires_at: Option<DateTime<Utc>>,
}

impl fmt::Debug for SigningKeyRecord {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SigningKeyRecord")
            .field("key_id", &self.key_id)
            .field("created_at", &self.created_at)
            .field("retired_at", &self.retired_at)
            .field("expires_at", &self.expires_at)
            .finish_non_exhaustive()
    }
}

/// A refresh token to store: only its SHA-256 hash is kept.
#[derive(Clone, PartialEq, Eq)]
pub struct NewRefreshToken {
    /// SHA-256 of the token text.
    pub hash: Vec<u8>,
    /// The chain of rotations it belongs to (a sign-in).
    pub family_id: Uuid,
    /// Whose it is.
    pub user_id: Uuid,
    /// When it was issued.
    pub issued_at: DateTime<Utc>,
    /// When it stops working.
    pub expires_at: DateTime<Utc>,
}

impl fmt::Debug for NewRefreshToken {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("NewRefreshToken")
            .field("family_id", &self.family_id)
            .field("user_id", &self.user_id)
            .finish_non_exhaustive()
    }
}

/// What presenting a refresh token for rotation found.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Rotation {
    /// It was in force: it is now used, and its successor stored.
    Rotated {
        /// Whose it is.
        user_id: Uuid,
    },
    /// It had been rotated already: a sign of theft, so its whole family is now revoked.
    Reused {
        /// Whose it is.
        user_id: Uuid,
    },
    /// Unknown, expired or revoked.
    Invalid,
}

/// An entry of the learning provider list.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Provider {
    /// UKPRN, the key.
    pub ukprn: String,
    /// Name.
    pub name: String,
    /// Status as published.
    pub status: String,
    /// Town; may be empty.
    pub town: String,
    /// Postcode; may be empty.
    pub postcode: String,
    /// When an import last changed it.
    pub updated_at: DateTime<Utc>,
}

/// An entry of the list of awarding organisations.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AwardingOrganisationEntry {
    /// The AO's number, the key.
    pub number: String,
    /// Name.
    pub name: String,
    /// Acronym; may be empty.
    pub acronym: String,
    /// Recognition status as published.
    pub status: String,
    /// UKPRN; may be empty.
    pub ukprn: String,
    /// When an import last changed it.
    pub updated_at: DateTime<Utc>,
}

/// What an import did with one row.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ImportChange {
    /// A new entry.
    Added,
    /// An entry whose values changed.
    Changed,
    /// An entry equal to the one stored.
    Unchanged,
}

/// Identity's storage.
#[async_trait::async_trait]
pub trait IdentityStore: Send + Sync + fmt::Debug + 'static {
    /// Stores a new organisation, or returns the one an earlier request with the same
    /// idempotency key created.
    async fn create_organisation(
        &self,
        organisation: &Organisation,
        idempotency: Option<&IdempotencyKey>,
        audit: &AuditRecord,
    ) -> Result<Created<Organisation>, StoreError>;

    /// The organisation `id`.
    async fn organisation(&self, id: Uuid) -> Result<Option<Organisation>, StoreError>;

    /// The organisation with `ukprn`.
    async fn organisation_by_ukprn(&self, ukprn: &str) -> Result<Option<Organisation>, StoreError>;

    /// The first service-desk organisation created, if any.
    async fn service_desk_organisation(&self) -> Result<Option<Organisation>, StoreError>;

    /// Up to `limit` organisations in (name, id) order after `after`, optionally of one
    /// kind or with one UKPRN.
    async fn list_organisations(
        &self,
        kind: Option<OrganisationKind>,
        ukprn: Option<&str>,
        after: Option<(String, Uuid)>,
        limit: usize,
    ) -> Result<Vec<Organisation>, StoreError>;

    /// Replaces the changeable fields of an organisation whose stored version is
    /// `expected_version`; the version goes up by one and the update time is the audit's.
    async fn update_organisation(
        &self,
        updated: &Organisation,
        expected_version: i64,
        audit: &AuditRecord,
    ) -> Result<Organisation, StoreError>;

    /// Stores a new user with its password hash, or returns the one an earlier request with
    /// the same idempotency key created.
    async fn create_user(
        &self,
        user: &User,
        password_hash: &str,
        idempotency: Option<&IdempotencyKey>,
        audit: &AuditRecord,
    ) -> Result<Created<User>, StoreError>;

    /// The user `id`.
    async fn user(&self, id: Uuid) -> Result<Option<User>, StoreError>;

    /// The user whose username equals `username` without regard to case, with their
    /// password hash.
    async fn user_for_sign_in(&self, username: &str) -> Result<Option<(User, String)>, StoreError>;

    /// Up to `limit` users of an organisation in username order after `after` (a username
    /// key).
    async fn list_users(
        &self,
        organisation_id: Uuid,
        after: Option<String>,
        limit: usize,
    ) -> Result<Vec<User>, StoreError>;

    /// Replaces a user's names, email, roles, state and lock, if the stored version is
    /// `expected_version` and the change leaves the organisation an active admin when it had
    /// one. Disabling revokes the user's refresh tokens.
    async fn update_user(
        &self,
        updated: &User,
        expected_version: i64,
        audit: &AuditRecord,
    ) -> Result<User, StoreError>;

    /// Replaces a user's password hash, clears any lock and revokes their refresh tokens.
    async fn set_password(
        &self,
        user_id: Uuid,
        password_hash: &str,
        change_required: bool,
        audit: &AuditRecord,
    ) -> Result<User, StoreError>;

    /// Counts a failed sign-in and returns the failures in a row now.
    async fn record_failed_sign_in(&self, user_id: Uuid) -> Result<i64, StoreError>;

    /// Locks a user until `until` and starts the count of failures again.
    async fn lock_user(
        &self,
        user_id: Uuid,
        until: DateTime<Utc>,
        audit: &AuditRecord,
    ) -> Result<(), StoreError>;

    /// Records a successful sign-in at `now`: the failures and any lock are cleared.
    async fn record_sign_in(&self, user_id: Uuid, now: DateTime<Utc>) -> Result<(), StoreError>;

    /// Stores a refresh token.
    async fn insert_refresh_token(&self, token: &NewRefreshToken) -> Result<(), StoreError>;

    /// Uses the refresh token with hash `presented` and stores `next` (whose family and user
    /// are taken from the presented token) in its place.
    async fn rotate_refresh_token(
        &self,
        presented: &[u8],
        next: &NewRefreshToken,
        now: DateTime<Utc>,
    ) -> Result<Rotation, StoreError>;

    /// Revokes the family of the refresh token with hash `presented`; nothing if unknown.
    async fn revoke_refresh_token(
        &self,
        presented: &[u8],
        now: DateTime<Utc>,
    ) -> Result<(), StoreError>;

    /// Stores a new machine credential with its secret's hash, or returns the one an earlier
    /// request with the same idempotency key created.
    async fn create_credential(
        &self,
        credential: &ClientCredential,
        secret_hash: &[u8],
        idempotency: Option<&IdempotencyKey>,
        audit: &AuditRecord,
    ) -> Result<Created<ClientCredential>, StoreError>;

    /// The credential `client_id` with its secret's hash.
    async fn credential(
        &self,
        client_id: Uuid,
    ) -> Result<Option<(ClientCredential, Vec<u8>)>, StoreError>;

    /// The credential in force of the suite's service `service`.
    async fn service_credential(
        &self,
        service: &str,
    ) -> Result<Option<ClientCredential>, StoreError>;

    /// Replaces a credential's secret hash.
    async fn replace_credential_secret(
        &self,
        client_id: Uuid,
        secret_hash: &[u8],
        audit: &AuditRecord,
    ) -> Result<(), StoreError>;

    /// Up to `limit` credentials of an organisation, newest first, after `after`.
    async fn list_credentials(
        &self,
        organisation_id: Uuid,
        after: Option<(DateTime<Utc>, Uuid)>,
        limit: usize,
    ) -> Result<Vec<ClientCredential>, StoreError>;

    /// Revokes a credential (no change if revoked already) and returns it.
    async fn revoke_credential(
        &self,
        client_id: Uuid,
        audit: &AuditRecord,
    ) -> Result<ClientCredential, StoreError>;

    /// Every stored signing key.
    async fn signing_keys(&self) -> Result<Vec<SigningKeyRecord>, StoreError>;

    /// Stores the first current key; false when a current key exists already.
    async fn insert_first_signing_key(&self, key: &SigningKeyRecord) -> Result<bool, StoreError>;

    /// Retires the current key `current` (setting its retire and expiry times) and stores
    /// `next` as current; false when `current` is no longer the current key.
    async fn rotate_signing_key(
        &self,
        current: &str,
        retired_at: DateTime<Utc>,
        expires_at: DateTime<Utc>,
        next: &SigningKeyRecord,
    ) -> Result<bool, StoreError>;

    /// Deletes retired keys whose tokens have all expired by `now`.
    async fn delete_expired_signing_keys(&self, now: DateTime<Utc>) -> Result<u64, StoreError>;

    /// Adds or updates provider list entries in one transaction; what happened to each.
    async fn upsert_providers(&self, rows: &[Provider]) -> Result<Vec<ImportChange>, StoreError>;

    /// Up to `limit` providers in UKPRN order after `after`.
    async fn list_providers(
        &self,
        after: Option<String>,
        limit: usize,
    ) -> Result<Vec<Provider>, StoreError>;

    /// Adds or updates awarding organisation list entries in one transaction.
    async fn upsert_awarding_organisations(
        &self,
        rows: &[AwardingOrganisationEntry],
    ) -> Result<Vec<ImportChange>, StoreError>;

    /// Up to `limit` awarding organisations in number order after `after`.
    async fn list_awarding_organisations(
        &self,
        after: Option<String>,
        limit: usize,
    ) -> Result<Vec<AwardingOrganisationEntry>, StoreError>;

    /// Appends a record to the audit log on its own (refusals, imports).
    async fn record_audit(&self, record: &AuditRecord) -> Result<(), StoreError>;

    /// Up to `limit` audit events, newest first, older than `before`; only those by or on
    /// `organisation_id` when given.
    async fn list_audit_events(
        &self,
        organisation_id: Option<Uuid>,
        before: Option<i64>,
        limit: usize,
    ) -> Result<Vec<AuditEvent>, StoreError>;
}

/// The store for an open database.
pub fn for_database(database: &lrs_store::Database) -> Arc<dyn IdentityStore> {
    match database {
        lrs_store::Database::Postgres(postgres) => {
            Arc::new(PostgresIdentityStore::new(postgres.pool().clone()))
        }
        lrs_store::Database::Sqlite(sqlite) => Arc::new(SqliteIdentityStore::new(
            sqlite.writer().clone(),
            sqlite.reader().clone(),
        )),
    }
}

/// The conflict a unique-index violation stands for, if `error` is one.
fn unique_violation(error: &sqlx::Error) -> Option<StoreError> {
    let database_error = error.as_database_error()?;
    if !database_error.is_unique_violation() {
        return None;
    }
    // PostgreSQL names the constraint; SQLite names the columns or index in its message.
    let what = format!(
        "{} {}",
        database_error.constraint().unwrap_or_default(),
        database_error.message()
    );
    let conflict = if what.contains("idempotency") {
        StoreError::IdempotencyRace
    } else if what.contains("ukprn") {
        StoreError::UkprnTaken
    } else if what.contains("organisation_reference") {
        StoreError::OrganisationReferenceTaken
    } else if what.contains("username") {
        StoreError::UsernameTaken
    } else if what.contains("service") {
        StoreError::ServiceCredentialTaken
    } else {
        return None;
    };
    Some(conflict)
}

/// The store error for a failed statement: a named conflict, or the database error.
fn classify(error: sqlx::Error) -> StoreError {
    unique_violation(&error).unwrap_or(StoreError::Database(error))
}
