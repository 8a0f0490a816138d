//! The register in a SQLite file.
//!
//! Writes go through the database's single writer connection; reads through the readers.
//! Set-based lookups bind one JSON array per key and read it with `json_each`, so a chunk of
//! a batch file is still one statement per blocking key, whatever its size.

use chrono::{DateTime, Utc};
use lrs_fields::learner::MatchKeys;
use lrs_fields::uln::Uln;
use lrs_store::SqliteDatabase;
use sqlx::{Connection, FromRow, Row, Sqlite, Transaction};

use super::row::{
    AuditRow, CANDIDATE_COLUMNS, CandidateRow, INSERT_AUDIT, LEARNER_COLUMNS, LearnerRow,
    StoredColumns, bind_details, distinct_candidates, distinct_keys, insert_statement, stored_uln,
    update_statement, with_links, with_links_statement,
};
use super::{
    AuditEntry, InsertOutcome, LearnerChange, LearnerStore, LinkOutcome, MergeWrite, NewLearner,
    StoreError, WithLinks, WriteOutcome,
};
use crate::domain::registration::RecentSearch;
use crate::domain::{BlockingKeys, Candidate, LearnerRecord};

/// The register in a SQLite file.
#[derive(Debug, Clone)]
pub struct SqliteLearnerStore {
    database: SqliteDatabase,
}

impl SqliteLearnerStore {
    /// A store on the service's SQLite file.
    pub fn new(database: SqliteDatabase) -> Self {
        Self { database }
    }
}

fn records(rows: Vec<LearnerRow>) -> Result<Vec<LearnerRecord>, StoreError> {
    rows.into_iter().map(LearnerRow::into_record).collect()
}

/// A JSON array of the values, for `json_each`.
fn json_array<T: serde::Serialize>(values: &[T]) -> String {
    // Serialising strings, numbers and arrays of them cannot fail.
    serde_json::to_string(values).unwrap_or_else(|_| "[]".to_owned())
}

fn micros(at: DateTime<Utc>) -> i64 {
    at.timestamp_micros()
}

super::queries::transaction_queries!(Sqlite);

#[async_trait::async_trait]
impl LearnerStore for SqliteLearnerStore {
    async fn learner_by_uln(&self, uln: Uln) -> Result<Option<LearnerRecord>, StoreError> {
        let sql = format!("SELECT {LEARNER_COLUMNS} FROM learners WHERE uln = $1");
        let row: Option<LearnerRow> = sqlx::query_as(&sql)
            .bind(stored_uln(uln))
            .fetch_optional(self.database.reader())
            .await?;
        row.map(LearnerRow::into_record).transpose()
    }

    async fn learners_with_links(&self, ulns: &[Uln]) -> Result<Vec<WithLinks>, StoreError> {
        let values: Vec<i64> = ulns.iter().copied().map(stored_uln).collect();
        let sql = with_links_statement(
            "IN (SELECT value FROM json_each($1))",
            "json_group_array(uln)",
        );
        let rows = sqlx::query(&sql)
            .bind(json_array(&values))
            .fetch_all(self.database.reader())
            .await?;
        rows.iter()
            .map(|row| {
                let learner = LearnerRow::from_row(row)?;
                let linked: String = row.try_get("linked")?;
                let linked = serde_json::from_str(&linked).map_err(|_| StoreError::Corrupt {
                    id: learner.id(),
                    column: "linked uln",
                })?;
                with_links(learner, linked)
            })
            .collect()
    }

    async fn learners_by_ulns(&self, ulns: &[Uln]) -> Result<Vec<LearnerRecord>, StoreError> {
        let values: Vec<i64> = ulns.iter().copied().map(stored_uln).collect();
        let sql = format!(
            "SELECT {LEARNER_COLUMNS} FROM learners WHERE uln IN (SELECT value FROM json_each($1))"
        );
        let rows: Vec<LearnerRow> = sqlx::query_as(&sql)
            .bind(json_array(&values))
            .fetch_all(self.database.reader())
            .await?;
        records(rows)
    }

    async fn linked_ulns(&self, masters: &[Uln]) -> Result<Vec<(Uln, Uln)>, StoreError> {
        let values: Vec<i64> = masters.iter().copied().map(stored_uln).collect();
        let rows: Vec<(i64, i64, i64)> = sqlx::query_as(
            "SELECT id, master_uln, uln FROM learners WHERE master_uln IN \
             (SELECT value FROM json_each($1)) ORDER BY uln",
        )
        .bind(json_array(&values))
        .fetch_all(self.database.reader())
        .await?;
        rows.into_iter()
            .map(|(id, master, linked)| {
                let parse = |value: i64, column| {
                    Uln::parse(&value.to_string()).map_err(|_| StoreError::Corrupt { id, column })
                };
                Ok((parse(master, "master_uln")?, parse(linked, "uln")?))
            })
            .collect()
    }

    async fn candidates(
        &self,
        searches: &[BlockingKeys],
        cap: u32,
    ) -> Result<Vec<Candidate>, StoreError> {
        let by_birth_and_family = distinct_keys(searches, |s| {
            (s.date_of_birth.to_string(), s.family_phonetic.clone())
        });
        let by_birth_and_given = distinct_keys(searches, |s| {
            (s.date_of_birth.to_string(), s.given_phonetic.clone())
        });
        let by_birth_and_initial = distinct_keys(searches, |s| {
            (s.date_of_birth.to_string(), s.family_initial.clone())
        });
        let by_phonetic_names = distinct_keys(searches, |s| {
            (
                s.family_phonetic.clone(),
                s.given_phonetic.clone(),
                s.birth_year,
            )
        });
        let postcodes = distinct_keys(searches, |s| s.postcode.clone());

        let capped = |partition: &str, filter: &str| {
            format!(
                "SELECT {CANDIDATE_COLUMNS} FROM (SELECT {CANDIDATE_COLUMNS}, ROW_NUMBER() OVER \
                 (PARTITION BY {partition} ORDER BY uln) AS position FROM learners WHERE {filter}) \
                 WHERE position <= $6"
            )
        };
        let sql = [
            capped(
                "date_of_birth, family_phonetic",
                "(date_of_birth, family_phonetic) IN (SELECT json_extract(value, '$[0]'), \
                 json_extract(value, '$[1]') FROM json_each($1))",
            ),
            capped(
                "date_of_birth, given_phonetic",
                "(date_of_birth, given_phonetic) IN (SELECT json_extract(value, '$[0]'), \
                 json_extract(value, '$[1]') FROM json_each($2))",
            ),
            capped(
                "date_of_birth, substr(norm_family, 1, 1)",
                "(date_of_birth, substr(norm_family, 1, 1)) IN (SELECT json_extract(value, \
                 '$[0]'), json_extract(value, '$[1]') FROM json_each($3))",
            ),
            capped(
                "family_phonetic, given_phonetic, birth_year",
                "(family_phonetic, given_phonetic, birth_year) IN (SELECT \
                 json_extract(value, '$[0]'), json_extract(value, '$[1]'), \
                 json_extract(value, '$[2]') FROM json_each($4))",
            ),
            capped(
                "postcode_compact",
                "postcode_compact IN (SELECT value FROM json_each($5))",
            ),
        ]
        .join(" UNION ALL ");
        let rows: Vec<CandidateRow> = sqlx::query_as(&sql)
            .bind(json_array(&by_birth_and_family))
            .bind(json_array(&by_birth_and_given))
            .bind(json_array(&by_birth_and_initial))
            .bind(json_array(&by_phonetic_names))
            .bind(json_array(&postcodes))
            .bind(i64::from(cap))
            .fetch_all(self.database.reader())
            .await?;

        distinct_candidates(rows)
    }

    async fn learners_with_keys(
        &self,
        keys: &[MatchKeys],
    ) -> Result<Vec<LearnerRecord>, StoreError> {
        let tuples: Vec<(String, String, String, u8, String)> = keys
            .iter()
            .map(|k| {
                (
                    k.given_name.clone(),
                    k.family_name.clone(),
                    k.date_of_birth.to_string(),
                    k.gender.code(),
                    k.postcode.clone(),
                )
            })
            .collect();
        let sql = format!(
            "SELECT {LEARNER_COLUMNS} FROM learners WHERE (norm_given, norm_family, \
             date_of_birth, gender, postcode_compact) IN (SELECT json_extract(value, '$[0]'), \
             json_extract(value, '$[1]'), json_extract(value, '$[2]'), \
             json_extract(value, '$[3]'), json_extract(value, '$[4]') FROM json_each($1)) \
             ORDER BY id"
        );
        let rows: Vec<LearnerRow> = sqlx::query_as(&sql)
            .bind(json_array(&tuples))
            .fetch_all(self.database.reader())
            .await?;
        records(rows)
    }

    async fn record_searches(&self, searches: &[RecentSearch]) -> Result<(), StoreError> {
        let mut tx = self.database.writer().begin().await?;
        for search in searches {
            sqlx::query(
                "INSERT INTO recent_searches (organisation_id, keys_hash, searched_at, \
                 exact_match_found) VALUES ($1, $2, $3, $4)",
            )
            .bind(&search.organisation_id)
            .bind(search.keys_hash.as_slice())
            .bind(micros(search.searched_at))
            .bind(search.exact_match_found)
            .execute(&mut *tx)
            .await?;
        }
        tx.commit().await?;
        Ok(())
    }

    async fn latest_search(
        &self,
        organisation_id: &str,
        keys_hash: &[u8; 32],
        since: DateTime<Utc>,
    ) -> Result<Option<RecentSearch>, StoreError> {
        let row: Option<(i64, bool)> = sqlx::query_as(
            "SELECT searched_at, exact_match_found FROM recent_searches WHERE organisation_id = $1 \
             AND keys_hash = $2 AND searched_at >= $3 ORDER BY searched_at DESC LIMIT 1",
        )
        .bind(organisation_id)
        .bind(keys_hash.as_slice())
        .bind(micros(since))
        .fetch_optional(self.database.reader())
        .await?;
        Ok(row.and_then(|(searched_at, exact_match_found)| {
            Some(RecentSearch {
                organisation_id: organisation_id.to_owned(),
                keys_hash: *keys_hash,
                searched_at: DateTime::from_timestamp_micros(searched_at)?,
                exact_match_found,
            })
        }))
    }

    async fn prune_searches(&self, before: DateTime<Utc>) -> Result<u64, StoreError> {
        let done = sqlx::query("DELETE FROM recent_searches WHERE searched_at < $1")
            .bind(micros(before))
            .execute(self.database.writer())
            .await?;
        Ok(done.rows_affected())
    }

    async fn learner_by_request(
        &self,
        organisation_id: &str,
        request_id: &str,
    ) -> Result<Option<LearnerRecord>, StoreError> {
        let sql = format!(
            "SELECT {LEARNER_COLUMNS} FROM learners WHERE registered_by = $1 AND request_id = $2"
        );
        let row: Option<LearnerRow> = sqlx::query_as(&sql)
            .bind(organisation_id)
            .bind(request_id)
            .fetch_optional(self.database.reader())
            .await?;
        row.map(LearnerRow::into_record).transpose()
    }

    async fn insert_learners(
        &self,
        learners: &[NewLearner],
    ) -> Result<Vec<InsertOutcome>, StoreError> {
        let insert = insert_statement();
        let mut tx = self.database.writer().begin().await?;
        let mut outcomes = Vec::with_capacity(learners.len());
        for learner in learners {
            let columns = StoredColumns::of(&learner.details);
            let query = sqlx::query_as::<_, LearnerRow>(&insert).bind(stored_uln(learner.uln));
            let row: Option<LearnerRow> = bind_details!(query, &columns)
                .bind(&learner.registered_by)
                .bind(&learner.request_id)
                .bind(learner.at)
                .fetch_optional(&mut *tx)
                .await?;
            let outcome = match row {
                Some(row) => InsertOutcome::Inserted(row.into_record()?),
                None => clash(&mut tx, learner).await?,
            };
            outcomes.push(outcome);
        }
        tx.commit().await?;
        Ok(outcomes)
    }

    async fn update_learners(
        &self,
        changes: &[LearnerChange],
    ) -> Result<Vec<WriteOutcome>, StoreError> {
        let update = update_statement();
        let mut tx = self.database.writer().begin().await?;
        let mut outcomes = Vec::with_capacity(changes.len());
        for change in changes {
            let columns = StoredColumns::of(&change.details);
            let mut savepoint = tx.begin().await?;
            let query = sqlx::query_as::<_, LearnerRow>(&update)
                .bind(change.expected_version)
                .bind(change.id);
            let written = bind_details!(query, &columns)
                .bind(change.at)
                .fetch_optional(&mut *savepoint)
                .await;
            let outcome = match written {
                Ok(Some(row)) => {
                    if let Some(entry) = &change.audit {
                        audit(&mut savepoint, entry).await?;
                    }
                    savepoint.commit().await?;
                    WriteOutcome::Written(row.into_record()?)
                }
                Ok(None) => WriteOutcome::VersionConflict,
                Err(error) if is_unique_violation(&error) => {
                    savepoint.rollback().await?;
                    WriteOutcome::KeysTaken
                }
                Err(error) => return Err(error.into()),
            };
            outcomes.push(outcome);
        }
        tx.commit().await?;
        Ok(outcomes)
    }

    async fn merge(&self, merge: &MergeWrite) -> Result<LinkOutcome, StoreError> {
        let mut tx = self.database.writer().begin().await?;
        let Some(master) = by_id(&mut tx, merge.master.0).await? else {
            return Ok(LinkOutcome::VersionConflict);
        };
        let Some(duplicate) = by_id(&mut tx, merge.duplicate.0).await? else {
            return Ok(LinkOutcome::VersionConflict);
        };
        if !bump(&mut tx, merge.master, merge.at).await? {
            return Ok(LinkOutcome::VersionConflict);
        }
        let linked = sqlx::query(
            "UPDATE learners SET version = version + 1, status = 2, master_uln = $3, \
             updated_at = $4 WHERE id = $1 AND version = $2 AND status = 1",
        )
        .bind(duplicate.id)
        .bind(merge.duplicate.1)
        .bind(stored_uln(master.uln))
        .bind(merge.at)
        .execute(&mut *tx)
        .await?;
        if linked.rows_affected() != 1 {
            return Ok(LinkOutcome::VersionConflict);
        }
        sqlx::query(
            "UPDATE learners SET version = version + 1, master_uln = $1, updated_at = $3 \
             WHERE master_uln = $2",
        )
        .bind(stored_uln(master.uln))
        .bind(stored_uln(duplicate.uln))
        .bind(merge.at)
        .execute(&mut *tx)
        .await?;
        audit(&mut tx, &merge.audit).await?;

        let (Some(master), Some(learner)) = (
            by_id(&mut tx, master.id).await?,
            by_id(&mut tx, duplicate.id).await?,
        ) else {
            return Ok(LinkOutcome::VersionConflict);
        };
        tx.commit().await?;
        Ok(LinkOutcome::Written { master, learner })
    }

    async fn unmerge(
        &self,
        linked: (i64, i64),
        master: (i64, i64),
        at: DateTime<Utc>,
        entry: &AuditEntry,
    ) -> Result<LinkOutcome, StoreError> {
        let mut tx = self.database.writer().begin().await?;
        if !bump(&mut tx, master, at).await? {
            return Ok(LinkOutcome::VersionConflict);
        }
        let restored = sqlx::query(
            "UPDATE learners SET version = version + 1, status = 1, master_uln = NULL, \
             updated_at = $3 WHERE id = $1 AND version = $2 AND status = 2",
        )
        .bind(linked.0)
        .bind(linked.1)
        .bind(at)
        .execute(&mut *tx)
        .await;
        match restored {
            Ok(done) if done.rows_affected() == 1 => {}
            Ok(_) => return Ok(LinkOutcome::VersionConflict),
            Err(error) if is_unique_violation(&error) => return Ok(LinkOutcome::KeysTaken),
            Err(error) => return Err(error.into()),
        }
        audit(&mut tx, entry).await?;

        let (Some(master), Some(learner)) = (
            by_id(&mut tx, master.0).await?,
            by_id(&mut tx, linked.0).await?,
        ) else {
            return Ok(LinkOutcome::VersionConflict);
        };
        tx.commit().await?;
        Ok(LinkOutcome::Written { master, learner })
    }

    async fn audit_entries(&self, uln: Uln) -> Result<Vec<AuditEntry>, StoreError> {
        let rows: Vec<AuditRow> = sqlx::query_as(
            "SELECT id, occurred_at, action, uln, other_uln, organisation_id, actor, reason \
             FROM learner_audit WHERE uln = $1 ORDER BY id",
        )
        .bind(stored_uln(uln))
        .fetch_all(self.database.reader())
        .await?;
        rows.into_iter().map(AuditRow::into_entry).collect()
    }
}

/// Why an insert that did nothing clashed: the request id, the five keys, or else the ULN.
async fn clash(
    tx: &mut Transaction<'_, Sqlite>,
    learner: &NewLearner,
) -> Result<InsertOutcome, StoreError> {
    if let (Some(organisation), Some(request_id)) = (&learner.registered_by, &learner.request_id)
        && let Some(first) = by_request(tx, organisation, request_id).await?
    {
        return Ok(InsertOutcome::RequestSeen(first));
    }
    if let Some(existing) = active_with_keys(tx, &learner.details.match_keys()).await? {
        return Ok(InsertOutcome::KeysTaken(existing));
    }
    Ok(InsertOutcome::UlnTaken)
}
