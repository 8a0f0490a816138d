//! The register on PostgreSQL (schema `learner`).
//!
//! Set-based lookups bind arrays and `UNNEST` them, so a chunk of a batch file costs one
//! statement per blocking key, not one per record.

use chrono::{DateTime, NaiveDate, Utc};
use lrs_fields::learner::MatchKeys;
use lrs_fields::uln::Uln;
use sqlx::{Connection, FromRow, PgPool, Postgres, Row, Transaction};

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

/// The register in a PostgreSQL schema.
#[derive(Debug, Clone)]
pub struct PostgresLearnerStore {
    pool: PgPool,
}

impl PostgresLearnerStore {
    /// A store on `pool`, whose connections use the learner schema.
    pub fn new(pool: PgPool) -> Self {
        Self { pool }
    }

    /// The statement that reads the candidates of a set of searches: parameters `$1` to `$10`
    /// are arrays of the distinct blocking keys (date of birth with family phonetic key,
    /// with given phonetic key and with family initial; family and given phonetic keys with
    /// year of birth; compact postcode), `$11` the cap per lookup. Public so that the
    /// benchmark can run the very same SQL from `pgbench`.
    pub fn candidates_statement() -> String {
        let columns = CANDIDATE_COLUMNS
            .split(", ")
            .map(|c| format!("c.{c}"))
            .collect::<Vec<_>>()
            .join(", ");
        format!(
            "SELECT {columns} FROM UNNEST($1::date[], $2::text[]) \
         AS k(date_of_birth, family_phonetic) CROSS JOIN LATERAL \
         (SELECT {CANDIDATE_COLUMNS} FROM learners l WHERE l.date_of_birth = k.date_of_birth \
          AND l.family_phonetic = k.family_phonetic ORDER BY l.uln LIMIT $11) c \
         UNION ALL \
         SELECT {columns} FROM UNNEST($3::date[], $4::text[]) \
         AS k(date_of_birth, given_phonetic) CROSS JOIN LATERAL \
         (SELECT {CANDIDATE_COLUMNS} FROM learners l WHERE l.date_of_birth = k.date_of_birth \
          AND l.given_phonetic = k.given_phonetic ORDER BY l.uln LIMIT $11) c \
         UNION ALL \
         SELECT {columns} FROM UNNEST($5::date[], $6::text[]) \
         AS k(date_of_birth, family_initial) CROSS JOIN LATERAL \
         (SELECT {CANDIDATE_COLUMNS} FROM learners l WHERE l.date_of_birth = k.date_of_birth \
          AND substr(l.norm_family, 1, 1) = k.family_initial ORDER BY l.uln LIMIT $11) c \
         UNION ALL \
         SELECT {columns} FROM UNNEST($7::text[], $8::text[], $9::int4[]) \
         AS k(family_phonetic, given_phonetic, birth_year) CROSS JOIN LATERAL \
         (SELECT {CANDIDATE_COLUMNS} FROM learners l \
          WHERE l.family_phonetic = k.family_phonetic \
          AND l.given_phonetic = k.given_phonetic AND l.birth_year = k.birth_year \
          ORDER BY l.uln LIMIT $11) c \
         UNION ALL \
         SELECT {columns} FROM UNNEST($10::text[]) AS k(postcode) CROSS JOIN LATERAL \
         (SELECT {CANDIDATE_COLUMNS} FROM learners l WHERE l.postcode_compact = k.postcode \
          ORDER BY l.uln LIMIT $11) c"
        )
    }

    /// The statement that reads learners by ULN (`$1`, an array of ULNs as stored:
    /// `bigint[]`) with the ULNs linked to each, as `GetLearner` and the answers of
    /// `FindLearnersByDemographics` do.
    pub fn learners_with_links_statement() -> String {
        with_links_statement("= ANY($1)", "COALESCE(array_agg(uln), '{}')")
    }
}

impl PostgresLearnerStore {
    /// Loads learners in bulk with `COPY`, in one transaction: for importing a register and
    /// for benchmarks. Nothing is checked beyond the indexes, so one learner whose ULN or
    /// five keys are taken fails the whole call. Returns how many rows were copied.
    pub async fn copy_learners(&self, learners: &[NewLearner]) -> Result<u64, StoreError> {
        let mut text = String::with_capacity(learners.len() * 400);
        for learner in learners {
            copy_row(&mut text, learner);
        }
        let mut connection = self.pool.acquire().await?;
        let statement = format!(
            "COPY learners (uln, version, status, {COPY_COLUMNS}, registered_by, request_id, \
             created_at, updated_at) FROM STDIN (FORMAT csv)"
        );
        let mut copy = connection.copy_in_raw(&statement).await?;
        copy.send(text.into_bytes()).await?;
        Ok(copy.finish().await?)
    }
}

/// The detail and matching columns of a `COPY`, in the order [`copy_row`] writes them.
const COPY_COLUMNS: &str = "title, given_name, preferred_given_name, middle_names, \
    family_name, previous_family_name, family_name_at_16, school_at_16, address_line_1, \
    address_line_2, address_town, address_county_or_city, postcode, date_of_address_capture, \
    date_of_birth, place_of_birth, email_address, gender, nationality, \
    scottish_candidate_number, verification_type, other_verification_description, \
    ability_to_share, notes, upn, uci, norm_given, given_phonetic, norm_family, \
    family_phonetic, norm_preferred_given, preferred_given_phonetic, norm_previous_family, \
    previous_family_phonetic, birth_year, postcode_compact, norm_school, norm_place_of_birth, \
    norm_email";

/// Appends one learner as a CSV line: text quoted (an unquoted empty field is NULL).
fn copy_row(line: &mut String, learner: &NewLearner) {
    use std::fmt::Write as _;

    let text = |line: &mut String, value: Option<&str>| {
        if let Some(value) = value {
            line.push('"');
            line.push_str(&value.replace('"', "\"\""));
            line.push('"');
        }
        line.push(',');
    };
    let d = &learner.details;
    let p = d.match_profile();
    let _ = write!(line, "{},1,1,", stored_uln(learner.uln));
    text(line, d.title.as_deref());
    text(line, Some(&d.given_name));
    text(line, d.preferred_given_name.as_deref());
    text(line, d.middle_names.as_deref());
    text(line, Some(&d.family_name));
    text(line, d.previous_family_name.as_deref());
    text(line, d.family_name_at_16.as_deref());
    text(line, d.school_at_16.as_deref());
    text(line, d.address_line_1.as_deref());
    text(line, d.address_line_2.as_deref());
    text(line, d.address_town.as_deref());
    text(line, d.address_county_or_city.as_deref());
    text(line, Some(&d.postcode));
    text(
        line,
        d.date_of_address_capture
            .map(|date| date.to_string())
            .as_deref(),
    );
    text(line, Some(&d.date_of_birth.to_string()));
    text(line, d.place_of_birth.as_deref());
    text(line, d.email_address.as_deref());
    let _ = write!(line, "{},", d.gender.code());
    text(line, d.nationality.as_deref());
    text(line, d.scottish_candidate_number.as_deref());
    let _ = write!(line, "{},", d.verification_type);
    text(line, d.other_verification_description.as_deref());
    let _ = write!(line, "{},", d.ability_to_share.code());
    text(line, d.notes.as_deref());
    text(line, d.upn.as_deref());
    text(line, d.uci.as_deref());
    text(line, Some(&p.given.normalised));
    text(line, Some(&p.given.phonetic));
    text(line, Some(&p.family.normalised));
    text(line, Some(&p.family.phonetic));
    text(
        line,
        p.preferred_given.as_ref().map(|n| n.normalised.as_str()),
    );
    text(
        line,
        p.preferred_given.as_ref().map(|n| n.phonetic.as_str()),
    );
    text(
        line,
        p.previous_family.as_ref().map(|n| n.normalised.as_str()),
    );
    text(
        line,
        p.previous_family.as_ref().map(|n| n.phonetic.as_str()),
    );
    let _ = write!(line, "{},", p.birth_year());
    text(line, Some(&p.postcode));
    text(line, p.refiners.school_at_16.as_deref());
    text(line, p.refiners.place_of_birth.as_deref());
    text(line, p.refiners.email_address.as_deref());
    text(line, learner.registered_by.as_deref());
    text(line, learner.request_id.as_deref());
    let at = learner.at.to_rfc3339();
    let _ = writeln!(line, "{at},{at}");
}

fn records(rows: Vec<LearnerRow>) -> Result<Vec<LearnerRecord>, StoreError> {
    rows.into_iter().map(LearnerRow::into_record).collect()
}

super::queries::transaction_queries!(Postgres);

#[async_trait::async_trait]
impl LearnerStore for PostgresLearnerStore {
    async fn learner_by_uln(&self, uln: Uln) -> Result<Option<LearnerRecord>, StoreError> {
        let sql = format!("SELECT {LEARNER_COLUMNS} FROM learners WHERE uln = $1");
        let row: Option<LearnerRow> = sqlx::query_as(&sql)
            .bind(stored_uln(uln))
            .fetch_optional(&self.pool)
            .await?;
        row.map(LearnerRow::into_record).transpose()
    }

    async fn learners_with_links(&self, ulns: &[Uln]) -> Result<Vec<WithLinks>, StoreError> {
        let values: Vec<i64> = ulns.iter().copied().map(stored_uln).collect();
        let rows = sqlx::query(&Self::learners_with_links_statement())
            .bind(values)
            .fetch_all(&self.pool)
            .await?;
        rows.iter()
            .map(|row| with_links(LearnerRow::from_row(row)?, row.try_get("linked")?))
            .collect()
    }

    async fn learners_by_ulns(&self, ulns: &[Uln]) -> Result<Vec<LearnerRecord>, StoreError> {
        let values: Vec<i64> = ulns.iter().copied().map(stored_uln).collect();
        let sql = format!("SELECT {LEARNER_COLUMNS} FROM learners WHERE uln = ANY($1)");
        let rows: Vec<LearnerRow> = sqlx::query_as(&sql)
            .bind(values)
            .fetch_all(&self.pool)
            .await?;
        records(rows)
    }

    async fn linked_ulns(&self, masters: &[Uln]) -> Result<Vec<(Uln, Uln)>, StoreError> {
        let values: Vec<i64> = masters.iter().copied().map(stored_uln).collect();
        let rows: Vec<(i64, i64, i64)> = sqlx::query_as(
            "SELECT id, master_uln, uln FROM learners WHERE master_uln = ANY($1) ORDER BY uln",
        )
        .bind(values)
        .fetch_all(&self.pool)
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
        let (family_dates, family_keys): (Vec<NaiveDate>, Vec<String>) =
            distinct_keys(searches, |s| (s.date_of_birth, s.family_phonetic.clone()))
                .into_iter()
                .unzip();
        let (given_dates, given_keys): (Vec<NaiveDate>, Vec<String>) =
            distinct_keys(searches, |s| (s.date_of_birth, s.given_phonetic.clone()))
                .into_iter()
                .unzip();
        let (initial_dates, initials): (Vec<NaiveDate>, Vec<String>) =
            distinct_keys(searches, |s| (s.date_of_birth, s.family_initial.clone()))
                .into_iter()
                .unzip();
        let mut both_family = Vec::new();
        let mut both_given = Vec::new();
        let mut years = Vec::new();
        for (family, given, year) in distinct_keys(searches, |s| {
            (
                s.family_phonetic.clone(),
                s.given_phonetic.clone(),
                s.birth_year,
            )
        }) {
            both_family.push(family);
            both_given.push(given);
            years.push(year);
        }
        let postcodes = distinct_keys(searches, |s| s.postcode.clone());

        let sql = Self::candidates_statement();
        let rows: Vec<CandidateRow> = sqlx::query_as(&sql)
            .bind(family_dates)
            .bind(family_keys)
            .bind(given_dates)
            .bind(given_keys)
            .bind(initial_dates)
            .bind(initials)
            .bind(both_family)
            .bind(both_given)
            .bind(years)
            .bind(postcodes)
            .bind(i64::from(cap))
            .fetch_all(&self.pool)
            .await?;

        distinct_candidates(rows)
    }

    async fn learners_with_keys(
        &self,
        keys: &[MatchKeys],
    ) -> Result<Vec<LearnerRecord>, StoreError> {
        let given: Vec<&str> = keys.iter().map(|k| k.given_name.as_str()).collect();
        let family: Vec<&str> = keys.iter().map(|k| k.family_name.as_str()).collect();
        let dates: Vec<NaiveDate> = keys.iter().map(|k| k.date_of_birth).collect();
        let genders: Vec<i16> = keys.iter().map(|k| i16::from(k.gender.code())).collect();
        let postcodes: Vec<&str> = keys.iter().map(|k| k.postcode.as_str()).collect();
        let sql = format!(
            "SELECT {LEARNER_COLUMNS} FROM learners WHERE (norm_given, norm_family, \
             date_of_birth, gender, postcode_compact) IN (SELECT * FROM UNNEST($1::text[], \
             $2::text[], $3::date[], $4::int2[], $5::text[])) ORDER BY id"
        );
        let rows: Vec<LearnerRow> = sqlx::query_as(&sql)
            .bind(given)
            .bind(family)
            .bind(dates)
            .bind(genders)
            .bind(postcodes)
            .fetch_all(&self.pool)
            .await?;
        records(rows)
    }

    async fn record_searches(&self, searches: &[RecentSearch]) -> Result<(), StoreError> {
        let organisations: Vec<&str> = searches
            .iter()
            .map(|s| s.organisation_id.as_str())
            .collect();
        let hashes: Vec<Vec<u8>> = searches.iter().map(|s| s.keys_hash.to_vec()).collect();
        let times: Vec<DateTime<Utc>> = searches.iter().map(|s| s.searched_at).collect();
        let exact: Vec<bool> = searches.iter().map(|s| s.exact_match_found).collect();
        sqlx::query(
            "INSERT INTO recent_searches (organisation_id, keys_hash, searched_at, \
             exact_match_found) SELECT * FROM UNNEST($1::text[], $2::bytea[], \
             $3::timestamptz[], $4::bool[])",
        )
        .bind(organisations)
        .bind(hashes)
        .bind(times)
        .bind(exact)
        .execute(&self.pool)
        .await?;
        Ok(())
    }

    async fn latest_search(
        &self,
        organisation_id: &str,
        keys_hash: &[u8; 32],
        since: DateTime<Utc>,
    ) -> Result<Option<RecentSearch>, StoreError> {
        let row: Option<(DateTime<Utc>, bool)> = sqlx::query_as(
            "SELECT searched_at, exact_match_found FROM recent_searches WHERE organisation_id = $1 \
             AND keys_hash = $2 AND searched_at >= $3 ORDER BY searched_at DESC LIMIT 1",
        )
        .bind(organisation_id)
        .bind(keys_hash.as_slice())
        .bind(since)
        .fetch_optional(&self.pool)
        .await?;
        Ok(row.map(|(searched_at, exact_match_found)| RecentSearch {
            organisation_id: organisation_id.to_owned(),
            keys_hash: *keys_hash,
            searched_at,
            exact_match_found,
        }))
    }

    async fn prune_searches(&self, before: DateTime<Utc>) -> Result<u64, StoreError> {
        let done = sqlx::query("DELETE FROM recent_searches WHERE searched_at < $1")
            .bind(before)
            .execute(&self.pool)
            .await?;
        Ok(done.rows_affected())
    }

    async fn learner_by_request(
        &self,
        organisation_id: &str,
        request_id: &str,
    ) -> Result<Option<LearnerRecord>, StoreError> {
        let mut tx = self.pool.begin().await?;
        let found = by_request(&mut tx, organisation_id, request_id).await;
        tx.commit().await?;
        found
    }

    async fn insert_learners(
        &self,
        learners: &[NewLearner],
    ) -> Result<Vec<InsertOutcome>, StoreError> {
        let insert = insert_statement();
        let mut tx = self.pool.begin().await?;
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
        let mut tx = self.pool.begin().await?;
        let mut outcomes = Vec::with_capacity(changes.len());
        for change in changes {
            let columns = StoredColumns::of(&change.details);
            // A savepoint, so that a clash on the five keys undoes this change only.
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
        let mut tx = self.pool.begin().await?;
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
        let mut tx = self.pool.begin().await?;
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
        .fetch_all(&self.pool)
        .await?;
        rows.into_iter().map(AuditRow::into_entry).collect()
    }
}

/// Why an insert that did nothing clashed: the request id, the five keys, or else the ULN.
async fn clash(
    tx: &mut Transaction<'_, Postgres>,
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
