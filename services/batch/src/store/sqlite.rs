//! The SQLite store: the shared SQL of `sql.rs`, writing through the single writer
//! connection (which serialises writers, so a chunk is claimed by a compare-and-set update
//! rather than a row lock) and reading through the read-only pool.

use sqlx::{Sqlite, SqlitePool};

/// The batch service's storage in its own SQLite file.
#[derive(Debug, Clone)]
pub struct SqliteBatchStore {
    writer: SqlitePool,
    reader: SqlitePool,
}

impl SqliteBatchStore {
    /// A store writing through `writer` (one connection) and reading through `reader`.
    pub fn new(writer: SqlitePool, reader: SqlitePool) -> Self {
        Self { writer, reader }
    }

    fn writer(&self) -> &SqlitePool {
        &self.writer
    }

    fn reader(&self) -> &SqlitePool {
        &self.reader
    }

    /// Leases the next chunk, chosen as on PostgreSQL; the update succeeds only if the chunk
    /// is still free (another process sharing the file may have taken it).
    async fn claim(
        &self,
        owner: &str,
        now: DateTime<Utc>,
        lease_until: DateTime<Utc>,
    ) -> Result<Option<(Uuid, i64, i32)>, StoreError> {
        for _ in 0..3 {
            let mut transaction = self.writer.begin().await?;
            let next = sqlx::query(
                "SELECT c.job_id, c.chunk_number, c.organisation_id FROM batch_chunk c \
                 LEFT JOIN batch_organisation_turn t ON t.organisation_id = c.organisation_id \
                 WHERE c.ready AND NOT c.done AND (c.leased_until IS NULL OR c.leased_until < $1) \
                 ORDER BY t.last_served_at IS NOT NULL, t.last_served_at, c.job_create_time, \
                    c.job_id, c.chunk_number LIMIT 1",
            )
            .bind(now)
            .fetch_optional(&mut *transaction)
            .await?;
            let Some(next) = next else {
                transaction.rollback().await?;
                return Ok(None);
            };
            let job_id: String = next.try_get("job_id")?;
            let chunk_number: i64 = next.try_get("chunk_number")?;
            let organisation_id: String = next.try_get("organisation_id")?;

            let attempts: Option<i32> = sqlx::query_scalar(
                "UPDATE batch_chunk SET lease_owner = $3, leased_until = $4, \
                 attempts = attempts + 1 WHERE job_id = $1 AND chunk_number = $2 AND ready \
                 AND NOT done AND (leased_until IS NULL OR leased_until < $5) \
                 RETURNING attempts",
            )
            .bind(&job_id)
            .bind(chunk_number)
            .bind(owner)
            .bind(lease_until)
            .bind(now)
            .fetch_optional(&mut *transaction)
            .await?;
            let Some(attempts) = attempts else {
                transaction.rollback().await?;
                continue;
            };

            sqlx::query(
                "INSERT INTO batch_organisation_turn (organisation_id, last_served_at) \
                 VALUES ($1, $2) ON CONFLICT (organisation_id) \
                 DO UPDATE SET last_served_at = excluded.last_served_at",
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
            return Ok(Some((uuid(&job_id)?, chunk_number, attempts)));
        }
        Ok(None)
    }

    /// Writes the records' results, one statement each (SQLite runs in-process, so statements
    /// cost little; the one transaction is what counts).
    async fn write_results(
        transaction: &mut sqlx::Transaction<'_, Sqlite>,
        job_id: &str,
        results: &[crate::store::RecordResult],
    ) -> Result<(), StoreError> {
        for result in results {
            sqlx::query(
                "UPDATE batch_record SET outcome = $3, result_uln = $4, reasons = $5, \
                 exception_id = $6 WHERE job_id = $1 AND row_number = $2 AND outcome IS NULL",
            )
            .bind(job_id)
            .bind(result.row)
            .bind(result.outcome.code())
            .bind(&result.result_uln)
            .bind(json(&result.reasons))
            .bind(
                result
                    .exception
                    .as_ref()
                    .map(|e| e.exception_id.to_string()),
            )
            .execute(&mut **transaction)
            .await?;
        }
        Ok(())
    }
}

super::sql::batch_store!(SqliteBatchStore, Sqlite);
