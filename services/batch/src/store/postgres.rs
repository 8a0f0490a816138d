//! The PostgreSQL store: the shared SQL of `sql.rs`; chunks claimed with a row lock that skips
//! chunks other workers hold (`FOR UPDATE SKIP LOCKED`), and a chunk's results written with
//! one `UPDATE ... FROM UNNEST` of arrays.

use sqlx::{PgPool, Postgres};

/// The batch service's storage in its PostgreSQL schema.
#[derive(Debug, Clone)]
pub struct PostgresBatchStore {
    pool: PgPool,
}

impl PostgresBatchStore {
    /// A store on `pool`, whose connections work in the batch schema.
    pub fn new(pool: PgPool) -> Self {
        Self { pool }
    }

    fn writer(&self) -> &PgPool {
        &self.pool
    }

    fn reader(&self) -> &PgPool {
        &self.pool
    }

    /// Leases the next chunk: the waiting chunk of the organisation served least recently
    /// (never served first), its oldest job, its first chunk, skipping chunks another
    /// transaction has locked.
    async fn claim(
        &self,
        owner: &str,
        now: DateTime<Utc>,
        lease_until: DateTime<Utc>,
    ) -> Result<Option<(Uuid, i64, i32)>, StoreError> {
        let mut transaction = self.pool.begin().await?;
        let claimed = sqlx::query(
            "WITH next AS ( \
                SELECT c.job_id, c.chunk_number FROM batch_chunk c \
                LEFT JOIN batch_organisation_turn t ON t.organisation_id = c.organisation_id \
                WHERE c.ready AND NOT c.done AND (c.leased_until IS NULL OR c.leased_until < $1) \
                ORDER BY t.last_served_at IS NOT NULL, t.last_served_at, c.job_create_time, \
                    c.job_id, c.chunk_number \
                LIMIT 1 FOR UPDATE OF c SKIP LOCKED) \
             UPDATE batch_chunk c SET lease_owner = $2, leased_until = $3, \
                attempts = c.attempts + 1 \
             FROM next WHERE c.job_id = next.job_id AND c.chunk_number = next.chunk_number \
             RETURNING c.job_id, c.chunk_number, c.attempts, c.organisation_id",
        )
        .bind(now)
        .bind(owner)
        .bind(lease_until)
        .fetch_optional(&mut *transaction)
        .await?;
        let Some(claimed) = claimed else {
            transaction.rollback().await?;
            return Ok(None);
        };
        let job_id: String = claimed.try_get("job_id")?;
        let organisation_id: String = claimed.try_get("organisation_id")?;

        sqlx::query(
            "INSERT INTO batch_organisation_turn (organisation_id, last_served_at) \
             VALUES ($1, $2) ON CONFLICT (organisation_id) \
             DO UPDATE SET last_served_at = EXCLUDED.last_served_at",
        )
        .bind(&organisation_id)
        .bind(now)
        .execute(&mut *transaction)
        .await?;
        sqlx::query(
            "UPDATE batch_job SET status = 3, start_time = COALESCE(start_time, $2), \
             update_time = $2 WHERE job_id = $1 AND status = 1",
        )
        .bind(&job_id)
        .bind(now)
        .execute(&mut *transaction)
        .await?;
        transaction.commit().await?;
        Ok(Some((
            uuid(&job_id)?,
            claimed.try_get("chunk_number")?,
            claimed.try_get("attempts")?,
        )))
    }

    /// Writes the records' results with one statement; a record that already has an outcome
    /// keeps it.
    async fn write_results(
        transaction: &mut sqlx::Transaction<'_, Postgres>,
        job_id: &str,
        results: &[crate::store::RecordResult],
    ) -> Result<(), StoreError> {
        let rows: Vec<i64> = results.iter().map(|r| r.row).collect();
        let outcomes: Vec<i16> = results.iter().map(|r| r.outcome.code()).collect();
        let ulns: Vec<String> = results.iter().map(|r| r.result_uln.clone()).collect();
        let reasons: Vec<String> = results.iter().map(|r| json(&r.reasons)).collect();
        let exceptions: Vec<Option<String>> = results
            .iter()
            .map(|r| r.exception.as_ref().map(|e| e.exception_id.to_string()))
            .collect();
        sqlx::query(
            "UPDATE batch_record r SET outcome = u.outcome, result_uln = u.uln, \
             reasons = u.reasons, exception_id = u.exception_id \
             FROM UNNEST($2::BIGINT[], $3::SMALLINT[], $4::TEXT[], $5::TEXT[], $6::TEXT[]) \
             AS u(row_number, outcome, uln, reasons, exception_id) \
             WHERE r.job_id = $1 AND r.row_number = u.row_number AND r.outcome IS NULL",
        )
        .bind(job_id)
        .bind(rows)
        .bind(outcomes)
        .bind(ulns)
        .bind(reasons)
        .bind(exceptions)
        .execute(&mut **transaction)
        .await?;
        Ok(())
    }
}

super::sql::batch_store!(PostgresBatchStore, Postgres);
