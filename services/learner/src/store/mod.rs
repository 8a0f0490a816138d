//! The register's storage: the [`LearnerStore`] trait and its PostgreSQL and SQLite
//! implementations, which [`conformance`] holds to the same behaviour.
//!
//! The store keeps no rules of its own beyond what its indexes enforce: one active learner
//! per five normalised keys, one learner per ULN, one learner per (organisation, request id).
//! Writes that depend on what was read are conditional on the version read.

mod postgres;
mod queries;
mod row;
mod sqlite;

#[cfg(test)]
pub(crate) mod conformance;

use std::fmt;
use std::sync::Arc;

use chrono::{DateTime, Utc};
use lrs_fields::learner::MatchKeys;
use lrs_fields::uln::Uln;
use lrs_store::{Database, Migrator};

use crate::domain::registration::RecentSearch;
use crate::domain::{BlockingKeys, Candidate, LearnerDetails, LearnerRecord};

pub use postgres::PostgresLearnerStore;
pub use sqlite::SqliteLearnerStore;

/// The PostgreSQL migrations of the learner schema.
pub static POSTGRES_MIGRATIONS: Migrator = sqlx::migrate!("migrations/postgres");
/// The SQLite migrations of the learner file.
pub static SQLITE_MIGRATIONS: Migrator = sqlx::migrate!("migrations/sqlite");

/// A failure of the storage itself (the database is down, a row is corrupt); rule outcomes
/// such as a stale version are results, not errors.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    /// The database refused or failed a statement.
    #[error("database error: {0}")]
    Database(#[from] sqlx::Error),
    /// A stored row holds a value the register never writes.
    #[error("stored learner {id} has an invalid {column}")]
    Corrupt {
        /// The row's internal id.
        id: i64,
        /// The column.
        column: &'static str,
    },
}

impl StoreError {
    /// True when no database connection came free in time ([`lrs_store::is_pool_exhausted`]).
    pub fn is_pool_exhausted(&self) -> bool {
        matches!(self, StoreError::Database(error) if lrs_store::is_pool_exhausted(error))
    }
}

/// A learner to insert.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NewLearner {
    /// The ULN allocated for it.
    pub uln: Uln,
    /// The details.
    pub details: LearnerDetails,
    /// The registering organisation.
    pub registered_by: Option<String>,
    /// The caller's idempotency key, scoped by the organisation.
    pub request_id: Option<String>,
    /// When.
    pub at: DateTime<Utc>,
}

/// What an insert did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum InsertOutcome {
    /// Inserted.
    Inserted(LearnerRecord),
    /// The organisation already registered a learner with this request id: that learner.
    RequestSeen(LearnerRecord),
    /// An active learner with the same five keys exists: that learner.
    KeysTaken(LearnerRecord),
    /// The ULN is taken; allocate another and try again.
    UlnTaken,
}

/// One entry of the learner-side audit.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AuditEntry {
    /// When.
    pub at: DateTime<Utc>,
    /// What happened.
    pub action: AuditAction,
    /// The learner it happened to.
    pub uln: Uln,
    /// The other learner of a merge or unmerge (the master).
    pub other_uln: Option<Uln>,
    /// The organisation the caller acted for.
    pub organisation_id: Option<String>,
    /// The caller (user, client or service id).
    pub actor: String,
    /// Why, as the caller gave it.
    pub reason: Option<String>,
}

/// What an audited action was.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AuditAction {
    /// The learner was linked to the master in `other_uln`.
    Merged,
    /// The learner was unlinked from the master in `other_uln`.
    Unmerged,
    /// A stored opt-out was ended: the organisation recorded that it gave the learner the
    /// current privacy notice.
    OptOutEnded,
}

impl AuditAction {
    /// The stored name.
    pub fn as_str(self) -> &'static str {
        match self {
            AuditAction::Merged => "MERGED",
            AuditAction::Unmerged => "UNMERGED",
            AuditAction::OptOutEnded => "OPT_OUT_ENDED",
        }
    }

    fn parse(stored: &str) -> Option<AuditAction> {
        match stored {
            "MERGED" => Some(AuditAction::Merged),
            "UNMERGED" => Some(AuditAction::Unmerged),
            "OPT_OUT_ENDED" => Some(AuditAction::OptOutEnded),
            _ => None,
        }
    }
}

/// A change of a learner's details, conditional on the version read.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LearnerChange {
    /// The learner's internal id.
    pub id: i64,
    /// The version read; the write happens only if it is still current.
    pub expected_version: i64,
    /// The new details.
    pub details: LearnerDetails,
    /// When.
    pub at: DateTime<Utc>,
    /// An audit entry written with the change.
    pub audit: Option<AuditEntry>,
}

/// What a conditional write did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum WriteOutcome {
    /// Written; the learner as it is now.
    Written(LearnerRecord),
    /// A version read is no longer current (or the learner is gone): nothing written.
    VersionConflict,
    /// The change would give an active learner the five keys of another: nothing written.
    KeysTaken,
}

/// A merge to write: both learners at the versions read.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MergeWrite {
    /// The master's internal id and version read.
    pub master: (i64, i64),
    /// The duplicate's internal id and version read.
    pub duplicate: (i64, i64),
    /// When.
    pub at: DateTime<Utc>,
    /// The audit entry.
    pub audit: AuditEntry,
}

/// What a merge or unmerge did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum LinkOutcome {
    /// Written: the master and the other learner as they are now.
    Written {
        /// The master.
        master: LearnerRecord,
        /// The duplicate (linked after a merge, active after an unmerge).
        learner: LearnerRecord,
    },
    /// A version read is no longer current: nothing written.
    VersionConflict,
    /// Restoring the learner would give two active learners the same five keys.
    KeysTaken,
}

/// A learner and the ULNs linked to it, by ULN.
pub type WithLinks = (LearnerRecord, Vec<Uln>);

/// The register's storage.
#[async_trait::async_trait]
pub trait LearnerStore: Send + Sync + fmt::Debug + 'static {
    /// The learner with this ULN.
    async fn learner_by_uln(&self, uln: Uln) -> Result<Option<LearnerRecord>, StoreError>;

    /// The learners with these ULNs, each with the ULNs linked to it (those merged into it)
    /// by ULN, in one read; in no particular order, unknown ULNs left out.
    async fn learners_with_links(&self, ulns: &[Uln]) -> Result<Vec<WithLinks>, StoreError>;

    /// The learners with these ULNs, in no particular order; unknown ULNs are left out.
    async fn learners_by_ulns(&self, ulns: &[Uln]) -> Result<Vec<LearnerRecord>, StoreError>;

    /// Every (master, linked) pair whose master is one of `masters`, by linked ULN.
    async fn linked_ulns(&self, masters: &[Uln]) -> Result<Vec<(Uln, Uln)>, StoreError>;

    /// The candidates of a set of searches: for each search, the learners sharing one of its
    /// blocking keys (those [`BlockingKeys::admits`]), each key's lookup capped at `cap`
    /// learners (lowest ULNs first). Each learner once, by id.
    async fn candidates(
        &self,
        searches: &[BlockingKeys],
        cap: u32,
    ) -> Result<Vec<Candidate>, StoreError>;

    /// Every learner, active or linked, whose five normalised keys are among `keys`.
    async fn learners_with_keys(
        &self,
        keys: &[MatchKeys],
    ) -> Result<Vec<LearnerRecord>, StoreError>;

    /// Writes recent searches, all in one transaction.
    async fn record_searches(&self, searches: &[RecentSearch]) -> Result<(), StoreError>;

    /// The latest search by `organisation_id` for `keys_hash` made at or after `since`.
    async fn latest_search(
        &self,
        organisation_id: &str,
        keys_hash: &[u8; 32],
        since: DateTime<Utc>,
    ) -> Result<Option<RecentSearch>, StoreError>;

    /// Removes the searches made before `before`; returns how many.
    async fn prune_searches(&self, before: DateTime<Utc>) -> Result<u64, StoreError>;

    /// The learner registered by `organisation_id` under `request_id`.
    async fn learner_by_request(
        &self,
        organisation_id: &str,
        request_id: &str,
    ) -> Result<Option<LearnerRecord>, StoreError>;

    /// Inserts learners in one transaction, each independently: a clash on one is reported
    /// for it and the others go on.
    async fn insert_learners(
        &self,
        learners: &[NewLearner],
    ) -> Result<Vec<InsertOutcome>, StoreError>;

    /// Applies changes in one transaction, each conditional on its version.
    async fn update_learners(
        &self,
        changes: &[LearnerChange],
    ) -> Result<Vec<WriteOutcome>, StoreError>;

    /// Links the duplicate (and the learners linked to it) to the master and writes the audit
    /// entry, if both are still at the versions read.
    async fn merge(&self, merge: &MergeWrite) -> Result<LinkOutcome, StoreError>;

    /// Restores a linked learner (id, version read) as active, bumps its former master
    /// (id, version read) and writes the audit entry.
    async fn unmerge(
        &self,
        linked: (i64, i64),
        master: (i64, i64),
        at: DateTime<Utc>,
        audit: &AuditEntry,
    ) -> Result<LinkOutcome, StoreError>;

    /// The audit entries about a ULN, oldest first.
    async fn audit_entries(&self, uln: Uln) -> Result<Vec<AuditEntry>, StoreError>;
}

/// The store for an open learner database.
pub fn for_database(database: &Database) -> Arc<dyn LearnerStore> {
    match database {
        Database::Postgres(postgres) => {
            Arc::new(PostgresLearnerStore::new(postgres.pool().clone()))
        }
        Database::Sqlite(sqlite) => Arc::new(SqliteLearnerStore::new(sqlite.clone())),
    }
}
