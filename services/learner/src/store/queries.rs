//! Queries that run inside a write transaction and read the same on both backends: written
//! once here and stamped out for each backend's transaction type, since both accept `$n`
//! placeholders and the same SQL.

/// Defines the transaction helpers (`by_request`, `active_with_keys`, `by_id`, `bump`,
/// `audit`, `is_unique_violation`) for the backend `$db` (`Postgres` or `Sqlite`). The names
/// they use (`LearnerRow`, `LEARNER_COLUMNS`, ...) resolve where the macro is invoked.
macro_rules! transaction_queries {
    ($db:ty) => {
        async fn by_request(
            tx: &mut Transaction<'_, $db>,
            organisation_id: &str,
            request_id: &str,
        ) -> Result<Option<LearnerRecord>, StoreError> {
            let sql = format!(
                "SELECT {LEARNER_COLUMNS} FROM learners WHERE registered_by = $1 AND request_id = $2"
            );
            let row: Option<LearnerRow> = sqlx::query_as(&sql)
                .bind(organisation_id)
                .bind(request_id)
                .fetch_optional(&mut **tx)
                .await?;
            row.map(LearnerRow::into_record).transpose()
        }

        async fn active_with_keys(
            tx: &mut Transaction<'_, $db>,
            keys: &MatchKeys,
        ) -> Result<Option<LearnerRecord>, StoreError> {
            let sql = format!(
                "SELECT {LEARNER_COLUMNS} FROM learners WHERE norm_given = $1 AND norm_family = $2 \
                 AND date_of_birth = $3 AND gender = $4 AND postcode_compact = $5 AND status = 1"
            );
            let row: Option<LearnerRow> = sqlx::query_as(&sql)
                .bind(&keys.given_name)
                .bind(&keys.family_name)
                .bind(keys.date_of_birth)
                .bind(i16::from(keys.gender.code()))
                .bind(&keys.postcode)
                .fetch_optional(&mut **tx)
                .await?;
            row.map(LearnerRow::into_record).transpose()
        }

        async fn by_id(
            tx: &mut Transaction<'_, $db>,
            id: i64,
        ) -> Result<Option<LearnerRecord>, StoreError> {
            let sql = format!("SELECT {LEARNER_COLUMNS} FROM learners WHERE id = $1");
            let row: Option<LearnerRow> = sqlx::query_as(&sql)
                .bind(id)
                .fetch_optional(&mut **tx)
                .await?;
            row.map(LearnerRow::into_record).transpose()
        }

        async fn bump(
            tx: &mut Transaction<'_, $db>,
            (id, version): (i64, i64),
            at: DateTime<Utc>,
        ) -> Result<bool, StoreError> {
            let done = sqlx::query(
                "UPDATE learners SET version = version + 1, updated_at = $3 WHERE id = $1 AND version = $2",
            )
            .bind(id)
            .bind(version)
            .bind(at)
            .execute(&mut **tx)
            .await?;
            Ok(done.rows_affected() == 1)
        }

        async fn audit(tx: &mut Transaction<'_, $db>, entry: &AuditEntry) -> Result<(), StoreError> {
            sqlx::query(INSERT_AUDIT)
                .bind(entry.at)
                .bind(entry.action.as_str())
                .bind(stored_uln(entry.uln))
                .bind(entry.other_uln.map(stored_uln))
                .bind(&entry.organisation_id)
                .bind(&entry.actor)
                .bind(&entry.reason)
                .execute(&mut **tx)
                .await?;
            Ok(())
        }

        fn is_unique_violation(error: &sqlx::Error) -> bool {
            error
                .as_database_error()
                .is_some_and(|e| e.kind() == sqlx::error::ErrorKind::UniqueViolation)
        }
    };
}

pub(super) use transaction_queries;
