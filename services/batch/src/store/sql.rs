//! The SQL both backends share, as a macro expanded once per backend, and the conversions of
//! stored values. Each backend adds how it claims a chunk and how it writes a chunk's results.

use chrono::NaiveDate;
use uuid::Uuid;

use super::StoreError;
use crate::domain::job::{JobStatus, JobType};
use crate::domain::outcome::{Outcome, RecordFault};

/// The columns of `batch_job`, in the order `job_row` reads them.
macro_rules! job_columns {
    () => {
        "job_id, organisation_id, ukprn, created_by, acting_user_id, job_type, status, \
         file_name, file_version, file_size_bytes, headings, header_values, validation_date, \
         total_records, failure_message, create_time, start_time, end_time, update_time"
    };
}
pub(crate) use job_columns;

/// The columns of `batch_record` (as `r`), in the order `record_row` reads them.
macro_rules! record_columns {
    () => {
        "r.row_number, r.mis_identifier, r.input_values, r.outcome, r.result_uln, \
         r.duplicate_of_row, r.faults, r.reasons, r.exception_id"
    };
}
pub(crate) use record_columns;

/// The columns of `batch_exception` (as `e`), in the order `exception_row` reads them.
macro_rules! exception_columns {
    () => {
        "e.exception_id, e.job_id, e.organisation_id, e.status, e.candidates, \
         e.resolution_action, e.resolution_uln, e.resolution_note, e.resolved_by, \
         e.resolve_time, e.create_time, e.update_time"
    };
}
pub(crate) use exception_columns;

pub(crate) fn corrupt(what: &'static str, value: impl ToString) -> StoreError {
    StoreError::Corrupt {
        what,
        value: value.to_string(),
    }
}

pub(crate) fn uuid(value: &str) -> Result<Uuid, StoreError> {
    Uuid::parse_str(value).map_err(|_| corrupt("id", value))
}

pub(crate) fn job_type(code: i16) -> Result<JobType, StoreError> {
    JobType::from_code(code).ok_or_else(|| corrupt("job type", code))
}

pub(crate) fn job_status(code: i16) -> Result<JobStatus, StoreError> {
    JobStatus::from_code(code).ok_or_else(|| corrupt("job status", code))
}

pub(crate) fn outcome(code: Option<i16>) -> Result<Option<Outcome>, StoreError> {
    code.map(|code| Outcome::from_code(code).ok_or_else(|| corrupt("outcome", code)))
        .transpose()
}

pub(crate) fn date(value: &str) -> Result<NaiveDate, StoreError> {
    NaiveDate::parse_from_str(value, "%Y-%m-%d").map_err(|_| corrupt("date", value))
}

pub(crate) fn strings(value: &str) -> Result<Vec<String>, StoreError> {
    serde_json::from_str(value).map_err(|_| corrupt("list", value))
}

pub(crate) fn faults(value: &str) -> Result<Vec<RecordFault>, StoreError> {
    serde_json::from_str(value).map_err(|_| corrupt("faults", value))
}

pub(crate) fn json<T: serde::Serialize + ?Sized>(value: &T) -> String {
    // Lists of strings and faults always serialise.
    serde_json::to_string(value).unwrap_or_else(|_| "[]".to_owned())
}

/// Implements [`super::BatchStore`] for a backend's store type, which provides `writer()`,
/// `reader()`, `claim(...)` and `write_results(...)`.
macro_rules! batch_store {
    ($store:ty, $db:ty) => {
        use chrono::{DateTime, Utc};
        use sqlx::Row;
        use uuid::Uuid;

        use $crate::domain::job::JobStatus;
        use $crate::store::sql::{
            corrupt, date, exception_columns, faults, job_columns, job_status, job_type, json,
            outcome, record_columns, strings, uuid,
        };
        use $crate::store::{
            BatchStore, ChunkResults, ClaimedChunk, DecisionOutcome, ExceptionDecision,
            ExceptionFilter, ExceptionStatus, FinishOutcome, Job, JobCounts, JobFilter,
            NewRecord, NewUpload, ResolutionAction, StoreError, StoredException,
            StoredRecord, StoredResolution, UploadFinish,
        };

        type DbRow = <$db as sqlx::Database>::Row;

        fn job_row(row: &DbRow) -> Result<Job, StoreError> {
            let job_id: String = row.try_get("job_id")?;
            let validation_date: String = row.try_get("validation_date")?;
            let headings: String = row.try_get("headings")?;
            let header_values: String = row.try_get("header_values")?;
            Ok(Job {
                job_id: uuid(&job_id)?,
                organisation_id: row.try_get("organisation_id")?,
                ukprn: row.try_get("ukprn")?,
                created_by: row.try_get("created_by")?,
                acting_user_id: row.try_get("acting_user_id")?,
                job_type: job_type(row.try_get("job_type")?)?,
                status: job_status(row.try_get("status")?)?,
                file_name: row.try_get("file_name")?,
                file_version: row.try_get("file_version")?,
                file_size_bytes: row.try_get("file_size_bytes")?,
                headings: strings(&headings)?,
                header_values: strings(&header_values)?,
                validation_date: date(&validation_date)?,
                total_records: row.try_get("total_records")?,
                failure_message: row.try_get("failure_message")?,
                create_time: row.try_get("create_time")?,
                start_time: row.try_get("start_time")?,
                end_time: row.try_get("end_time")?,
                update_time: row.try_get("update_time")?,
            })
        }

        fn record_row(row: &DbRow) -> Result<StoredRecord, StoreError> {
            let values: String = row.try_get("input_values")?;
            let found_faults: String = row.try_get("faults")?;
            let reasons: String = row.try_get("reasons")?;
            let exception_id: Option<String> = row.try_get("exception_id")?;
            Ok(StoredRecord {
                row: row.try_get("row_number")?,
                mis_identifier: row.try_get("mis_identifier")?,
                values: strings(&values)?,
                outcome: outcome(row.try_get("outcome")?)?,
                result_uln: row.try_get("result_uln")?,
                duplicate_of_row: row.try_get("duplicate_of_row")?,
                faults: faults(&found_faults)?,
                reasons: strings(&reasons)?,
                exception_id: exception_id.as_deref().map(uuid).transpose()?,
            })
        }

        fn exception_row(row: &DbRow) -> Result<StoredException, StoreError> {
            let exception_id: String = row.try_get("exception_id")?;
            let job_id: String = row.try_get("job_id")?;
            let status: i16 = row.try_get("status")?;
            let action: Option<i16> = row.try_get("resolution_action")?;
            let resolution = match action {
                None => None,
                Some(code) => Some(StoredResolution {
                    action: ResolutionAction::from_code(code)
                        .ok_or_else(|| corrupt("resolution action", code))?,
                    result_uln: row
                        .try_get::<Option<String>, _>("resolution_uln")?
                        .unwrap_or_default(),
                    note: row
                        .try_get::<Option<String>, _>("resolution_note")?
                        .unwrap_or_default(),
                    resolved_by: row
                        .try_get::<Option<String>, _>("resolved_by")?
                        .unwrap_or_default(),
                    resolve_time: row
                        .try_get::<Option<DateTime<Utc>>, _>("resolve_time")?
                        .ok_or_else(|| corrupt("resolve time", "none"))?,
                }),
            };
            Ok(StoredException {
                exception_id: uuid(&exception_id)?,
                job_id: uuid(&job_id)?,
                organisation_id: row.try_get("organisation_id")?,
                status: ExceptionStatus::from_code(status)
                    .ok_or_else(|| corrupt("exception status", status))?,
                candidates: row.try_get("candidates")?,
                resolution,
                create_time: row.try_get("create_time")?,
                update_time: row.try_get("update_time")?,
                record: record_row(row)?,
            })
        }

        const UPLOADING: i16 = 0;

        impl $store {
            async fn load_job(
                executor: impl sqlx::Executor<'_, Database = $db>,
                job_id: Uuid,
            ) -> Result<Option<Job>, StoreError> {
                let row = sqlx::query(concat!(
                    "SELECT ",
                    job_columns!(),
                    " FROM batch_job WHERE job_id = $1 AND status <> 0"
                ))
                .bind(job_id.to_string())
                .fetch_optional(executor)
                .await?;
                row.as_ref().map(job_row).transpose()
            }

            async fn pending_records(
                &self,
                job_id: Uuid,
                chunk_number: i64,
            ) -> Result<Vec<StoredRecord>, StoreError> {
                let rows = sqlx::query(concat!(
                    "SELECT ",
                    record_columns!(),
                    " FROM batch_record r WHERE r.job_id = $1 AND r.chunk_number = $2 \
                     AND r.outcome IS NULL ORDER BY r.row_number"
                ))
                .bind(job_id.to_string())
                .bind(chunk_number)
                .fetch_all(self.reader())
                .await?;
                rows.iter().map(record_row).collect()
            }
        }

        #[async_trait::async_trait]
        impl BatchStore for $store {
            async fn begin_upload(&self, upload: &NewUpload) -> Result<(), StoreError> {
                sqlx::query(
                    "INSERT INTO batch_job (job_id, organisation_id, ukprn, created_by, \
                     acting_user_id, job_type, status, file_name, validation_date, create_time, \
                     update_time) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $10)",
                )
                .bind(upload.job_id.to_string())
                .bind(&upload.organisation_id)
                .bind(&upload.ukprn)
                .bind(&upload.created_by)
                .bind(&upload.acting_user_id)
                .bind(upload.job_type.code())
                .bind(UPLOADING)
                .bind(&upload.file_name)
                .bind(upload.validation_date.format("%Y-%m-%d").to_string())
                .bind(upload.now)
                .execute(self.writer())
                .await?;
                Ok(())
            }

            async fn add_records(
                &self,
                job_id: Uuid,
                chunk_number: i64,
                records: &[NewRecord],
            ) -> Result<(), StoreError> {
                if records.is_empty() {
                    return Ok(());
                }
                let job = job_id.to_string();
                let mut transaction = self.writer().begin().await?;
                let mut insert = sqlx::QueryBuilder::<$db>::new(
                    "INSERT INTO batch_record (job_id, row_number, chunk_number, mis_identifier, \
                     input_values, outcome, duplicate_of_row, faults, reasons, exception_id) ",
                );
                insert.push_values(records, |mut values, record| {
                    values
                        .push_bind(job.clone())
                        .push_bind(record.row)
                        .push_bind(chunk_number)
                        .push_bind(record.mis_identifier.clone())
                        .push_bind(json(&record.values))
                        .push_bind(record.outcome.map(|o| o.code()))
                        .push_bind(record.duplicate_of_row)
                        .push_bind(json(&record.faults))
                        .push_bind(json(&record.reasons))
                        .push_bind(record.exception_id.map(|id| id.to_string()));
                });
                insert.build().execute(&mut *transaction).await?;

                for record in records {
                    let Some(exception_id) = record.exception_id else {
                        continue;
                    };
                    sqlx::query(
                        "INSERT INTO batch_exception (exception_id, job_id, row_number, \
                         organisation_id, job_create_time, status, candidates, create_time, \
                         update_time) SELECT $1, job_id, $3, organisation_id, create_time, 1, \
                         $4, create_time, create_time FROM batch_job WHERE job_id = $2",
                    )
                    .bind(exception_id.to_string())
                    .bind(&job)
                    .bind(record.row)
                    .bind(Vec::<u8>::new())
                    .execute(&mut *transaction)
                    .await?;
                }

                if records.iter().any(|record| record.outcome.is_none()) {
                    sqlx::query(
                        "INSERT INTO batch_chunk (job_id, chunk_number, organisation_id, \
                         job_create_time) SELECT job_id, $2, organisation_id, create_time \
                         FROM batch_job WHERE job_id = $1",
                    )
                    .bind(&job)
                    .bind(chunk_number)
                    .execute(&mut *transaction)
                    .await?;
                }
                transaction.commit().await?;
                Ok(())
            }

            async fn finish_upload(
                &self,
                job_id: Uuid,
                finish: &UploadFinish,
            ) -> Result<FinishOutcome, StoreError> {
                let job = job_id.to_string();
                let mut transaction = self.writer().begin().await?;
                let organisation_id: Option<String> = sqlx::query_scalar(
                    "SELECT organisation_id FROM batch_job WHERE job_id = $1 AND status = 0",
                )
                .bind(&job)
                .fetch_optional(&mut *transaction)
                .await?;
                let Some(organisation_id) = organisation_id else {
                    return Err(corrupt("upload", "missing at its end"));
                };

                if let Some(request_id) = &finish.request_id {
                    let existing = sqlx::query(concat!(
                        "SELECT ",
                        job_columns!(),
                        " FROM batch_job WHERE organisation_id = $1 AND request_id = $2 \
                         AND status <> 0"
                    ))
                    .bind(&organisation_id)
                    .bind(request_id)
                    .fetch_optional(&mut *transaction)
                    .await?;
                    if let Some(existing) = existing {
                        let existing = job_row(&existing)?;
                        sqlx::query("DELETE FROM batch_job WHERE job_id = $1")
                            .bind(&job)
                            .execute(&mut *transaction)
                            .await?;
                        transaction.commit().await?;
                        return Ok(FinishOutcome::Existing(existing));
                    }
                }

                let waiting: i64 = sqlx::query_scalar(
                    "SELECT COUNT(*) FROM batch_chunk WHERE job_id = $1",
                )
                .bind(&job)
                .fetch_one(&mut *transaction)
                .await?;
                let (status, ended) = if waiting > 0 {
                    (JobStatus::Queued, None)
                } else {
                    (JobStatus::Completed, Some(finish.now))
                };
                sqlx::query(
                    "UPDATE batch_job SET status = $2, file_version = $3, headings = $4, \
                     header_values = $5, total_records = $6, file_size_bytes = $7, \
                     request_id = $8, update_time = $9, start_time = $10, end_time = $10 \
                     WHERE job_id = $1",
                )
                .bind(&job)
                .bind(status.code())
                .bind(&finish.file_version)
                .bind(json(&finish.headings))
                .bind(json(&finish.header_values))
                .bind(finish.total_records)
                .bind(finish.file_size_bytes)
                .bind(&finish.request_id)
                .bind(finish.now)
                .bind(ended)
                .execute(&mut *transaction)
                .await?;
                sqlx::query("UPDATE batch_chunk SET ready = TRUE WHERE job_id = $1")
                    .bind(&job)
                    .execute(&mut *transaction)
                    .await?;
                let created = Self::load_job(&mut *transaction, job_id)
                    .await?
                    .ok_or_else(|| corrupt("job", "missing after its upload"))?;
                transaction.commit().await?;
                Ok(FinishOutcome::Created(created))
            }

            async fn abandon_upload(&self, job_id: Uuid) -> Result<(), StoreError> {
                sqlx::query("DELETE FROM batch_job WHERE job_id = $1 AND status = 0")
                    .bind(job_id.to_string())
                    .execute(self.writer())
                    .await?;
                Ok(())
            }

            async fn sweep_uploads(&self, before: DateTime<Utc>) -> Result<u64, StoreError> {
                let done = sqlx::query("DELETE FROM batch_job WHERE status = 0 AND create_time < $1")
                    .bind(before)
                    .execute(self.writer())
                    .await?;
                Ok(done.rows_affected())
            }

            async fn job_by_request(
                &self,
                organisation_id: &str,
                request_id: &str,
            ) -> Result<Option<Job>, StoreError> {
                let row = sqlx::query(concat!(
                    "SELECT ",
                    job_columns!(),
                    " FROM batch_job WHERE organisation_id = $1 AND request_id = $2 \
                     AND status <> 0"
                ))
                .bind(organisation_id)
                .bind(request_id)
                .fetch_optional(self.reader())
                .await?;
                row.as_ref().map(job_row).transpose()
            }

            async fn job(&self, job_id: Uuid) -> Result<Option<Job>, StoreError> {
                Self::load_job(self.reader(), job_id).await
            }

            async fn job_counts(&self, job_id: Uuid) -> Result<JobCounts, StoreError> {
                let rows = sqlx::query(
                    "SELECT outcome, COUNT(*) AS records FROM batch_record \
                     WHERE job_id = $1 AND outcome IS NOT NULL GROUP BY outcome",
                )
                .bind(job_id.to_string())
                .fetch_all(self.reader())
                .await?;
                let mut counts = JobCounts::default();
                for row in &rows {
                    let found = outcome(row.try_get("outcome")?)?
                        .ok_or_else(|| corrupt("outcome", "none"))?;
                    counts.by_outcome.insert(found, row.try_get("records")?);
                }
                counts.open_exceptions = sqlx::query_scalar(
                    "SELECT COUNT(*) FROM batch_exception WHERE job_id = $1 AND status = 1",
                )
                .bind(job_id.to_string())
                .fetch_one(self.reader())
                .await?;
                Ok(counts)
            }

            async fn list_jobs(&self, filter: &JobFilter) -> Result<Vec<Job>, StoreError> {
                let mut query = sqlx::QueryBuilder::<$db>::new(concat!(
                    "SELECT ",
                    job_columns!(),
                    " FROM batch_job WHERE status <> 0"
                ));
                if let Some(organisation_id) = &filter.organisation_id {
                    query.push(" AND organisation_id = ").push_bind(organisation_id.clone());
                }
                if let Some(job_type) = filter.job_type {
                    query.push(" AND job_type = ").push_bind(job_type.code());
                }
                if let Some(status) = filter.status {
                    query.push(" AND status = ").push_bind(status.code());
                }
                if let Some((time, job_id)) = filter.after {
                    query
                        .push(" AND (create_time < ")
                        .push_bind(time)
                        .push(" OR (create_time = ")
                        .push_bind(time)
                        .push(" AND job_id < ")
                        .push_bind(job_id.to_string())
                        .push("))");
                }
                query
                    .push(" ORDER BY create_time DESC, job_id DESC LIMIT ")
                    .push_bind(filter.limit);
                let rows = query.build().fetch_all(self.reader()).await?;
                rows.iter().map(job_row).collect()
            }

            async fn cancel_job(
                &self,
                job_id: Uuid,
                now: DateTime<Utc>,
            ) -> Result<Option<Job>, StoreError> {
                let job = job_id.to_string();
                let mut transaction = self.writer().begin().await?;
                let cancelled = sqlx::query(
                    "UPDATE batch_job SET status = 6, end_time = $2, update_time = $2 \
                     WHERE job_id = $1 AND status IN (1, 3)",
                )
                .bind(&job)
                .bind(now)
                .execute(&mut *transaction)
                .await?;
                if cancelled.rows_affected() > 0 {
                    sqlx::query(
                        "UPDATE batch_chunk SET done = TRUE, lease_owner = NULL, \
                         leased_until = NULL WHERE job_id = $1 AND NOT done",
                    )
                    .bind(&job)
                    .execute(&mut *transaction)
                    .await?;
                }
                let after = Self::load_job(&mut *transaction, job_id).await?;
                transaction.commit().await?;
                Ok(after)
            }

            async fn claim_chunk(
                &self,
                owner: &str,
                now: DateTime<Utc>,
                lease_until: DateTime<Utc>,
            ) -> Result<Option<ClaimedChunk>, StoreError> {
                let Some((job_id, chunk_number, attempts)) =
                    self.claim(owner, now, lease_until).await?
                else {
                    return Ok(None);
                };
                let Some(job) = Self::load_job(self.reader(), job_id).await? else {
                    return Ok(None);
                };
                let records = self.pending_records(job_id, chunk_number).await?;
                Ok(Some(ClaimedChunk {
                    job,
                    chunk_number,
                    attempts,
                    records,
                }))
            }

            async fn complete_chunk(&self, results: &ChunkResults) -> Result<bool, StoreError> {
                let job = results.job_id.to_string();
                let mut transaction = self.writer().begin().await?;
                let held = sqlx::query(
                    "UPDATE batch_chunk SET done = TRUE, lease_owner = NULL, leased_until = NULL \
                     WHERE job_id = $1 AND chunk_number = $2 AND lease_owner = $3 AND NOT done",
                )
                .bind(&job)
                .bind(results.chunk_number)
                .bind(&results.owner)
                .execute(&mut *transaction)
                .await?;
                if held.rows_affected() != 1 {
                    transaction.rollback().await?;
                    return Ok(false);
                }

                Self::write_results(&mut transaction, &job, &results.results).await?;
                for result in &results.results {
                    let Some(exception) = &result.exception else {
                        continue;
                    };
                    sqlx::query(
                        "INSERT INTO batch_exception (exception_id, job_id, row_number, \
                         organisation_id, job_create_time, status, candidates, create_time, \
                         update_time) SELECT $1, job_id, $3, organisation_id, create_time, 1, \
                         $4, $5, $5 FROM batch_job WHERE job_id = $2",
                    )
                    .bind(exception.exception_id.to_string())
                    .bind(&job)
                    .bind(result.row)
                    .bind(&exception.candidates)
                    .bind(results.now)
                    .execute(&mut *transaction)
                    .await?;
                }
                sqlx::query(
                    "UPDATE batch_record SET result_uln = (SELECT o.result_uln FROM batch_record o \
                     WHERE o.job_id = batch_record.job_id \
                     AND o.row_number = batch_record.duplicate_of_row) \
                     WHERE job_id = $1 AND duplicate_of_row IN (SELECT row_number FROM \
                     batch_record WHERE job_id = $1 AND chunk_number = $2 AND result_uln <> '')",
                )
                .bind(&job)
                .bind(results.chunk_number)
                .execute(&mut *transaction)
                .await?;

                let waiting: i64 = sqlx::query_scalar(
                    "SELECT COUNT(*) FROM batch_chunk WHERE job_id = $1 AND NOT done",
                )
                .bind(&job)
                .fetch_one(&mut *transaction)
                .await?;
                if waiting == 0 {
                    sqlx::query(
                        "UPDATE batch_job SET status = 4, end_time = $2, update_time = $2 \
                         WHERE job_id = $1 AND status IN (1, 3)",
                    )
                    .bind(&job)
                    .bind(results.now)
                    .execute(&mut *transaction)
                    .await?;
                } else {
                    sqlx::query("UPDATE batch_job SET update_time = $2 WHERE job_id = $1")
                        .bind(&job)
                        .bind(results.now)
                        .execute(&mut *transaction)
                        .await?;
                }
                transaction.commit().await?;
                Ok(true)
            }

            async fn release_leases(&self, owner: &str) -> Result<u64, StoreError> {
                let done = sqlx::query(
                    "UPDATE batch_chunk SET lease_owner = NULL, leased_until = NULL \
                     WHERE lease_owner = $1 AND NOT done",
                )
                .bind(owner)
                .execute(self.writer())
                .await?;
                Ok(done.rows_affected())
            }

            async fn records(
                &self,
                job_id: Uuid,
                after_row: i64,
                limit: i64,
            ) -> Result<Vec<StoredRecord>, StoreError> {
                let rows = sqlx::query(concat!(
                    "SELECT ",
                    record_columns!(),
                    " FROM batch_record r WHERE r.job_id = $1 AND r.row_number > $2 \
                     AND r.outcome IS NOT NULL ORDER BY r.row_number LIMIT $3"
                ))
                .bind(job_id.to_string())
                .bind(after_row)
                .bind(limit)
                .fetch_all(self.reader())
                .await?;
                rows.iter().map(record_row).collect()
            }

            async fn exception(
                &self,
                exception_id: Uuid,
            ) -> Result<Option<StoredException>, StoreError> {
                let row = sqlx::query(concat!(
                    "SELECT ",
                    exception_columns!(),
                    ", ",
                    record_columns!(),
                    " FROM batch_exception e JOIN batch_record r ON r.job_id = e.job_id \
                     AND r.row_number = e.row_number WHERE e.exception_id = $1"
                ))
                .bind(exception_id.to_string())
                .fetch_optional(self.reader())
                .await?;
                row.as_ref().map(exception_row).transpose()
            }

            async fn list_exceptions(
                &self,
                filter: &ExceptionFilter,
            ) -> Result<Vec<StoredException>, StoreError> {
                let mut query = sqlx::QueryBuilder::<$db>::new(concat!(
                    "SELECT ",
                    exception_columns!(),
                    ", ",
                    record_columns!(),
                    " FROM batch_exception e JOIN batch_record r ON r.job_id = e.job_id \
                     AND r.row_number = e.row_number WHERE e.status = "
                ));
                query.push_bind(filter.status.code());
                if let Some(organisation_id) = &filter.organisation_id {
                    query.push(" AND e.organisation_id = ").push_bind(organisation_id.clone());
                }
                if let Some(job_id) = filter.job_id {
                    query.push(" AND e.job_id = ").push_bind(job_id.to_string());
                }
                if let Some(wanted) = filter.outcome {
                    query.push(" AND r.outcome = ").push_bind(wanted.code());
                }
                if let Some((time, job_id, row)) = filter.after {
                    let job_id = job_id.to_string();
                    query
                        .push(" AND (e.job_create_time < ")
                        .push_bind(time)
                        .push(" OR (e.job_create_time = ")
                        .push_bind(time)
                        .push(" AND (e.job_id > ")
                        .push_bind(job_id.clone())
                        .push(" OR (e.job_id = ")
                        .push_bind(job_id)
                        .push(" AND e.row_number > ")
                        .push_bind(row)
                        .push("))))");
                }
                query
                    .push(" ORDER BY e.job_create_time DESC, e.job_id, e.row_number LIMIT ")
                    .push_bind(filter.limit);
                let rows = query.build().fetch_all(self.reader()).await?;
                rows.iter().map(exception_row).collect()
            }

            async fn decide_exception(
                &self,
                decision: &ExceptionDecision,
            ) -> Result<DecisionOutcome, StoreError> {
                let exception_id = decision.exception_id.to_string();
                let mut transaction = self.writer().begin().await?;
                if let Some(request_id) = &decision.request_id {
                    let earlier: Option<String> = sqlx::query_scalar(
                        "SELECT exception_id FROM batch_exception_decision \
                         WHERE organisation_id = $1 AND request_id = $2",
                    )
                    .bind(&decision.organisation_id)
                    .bind(request_id)
                    .fetch_optional(&mut *transaction)
                    .await?;
                    if let Some(earlier) = earlier {
                        transaction.rollback().await?;
                        return match self.exception(uuid(&earlier)?).await? {
                            Some(found) => Ok(DecisionOutcome::Replayed(found)),
                            None => Ok(DecisionOutcome::NotFound),
                        };
                    }
                }

                let open = decision.status == ExceptionStatus::Open;
                let resolved = (!open).then_some(decision.now);
                let updated = sqlx::query(
                    "UPDATE batch_exception SET status = $2, resolution_action = $3, \
                     resolution_uln = $4, resolution_note = $5, resolved_by = $6, \
                     resolve_time = $7, update_time = $8, \
                     candidates = COALESCE($9, candidates) \
                     WHERE exception_id = $1 AND status = 1",
                )
                .bind(&exception_id)
                .bind(decision.status.code())
                .bind((!open).then_some(decision.action.code()))
                .bind((!open).then(|| decision.result_uln.clone()))
                .bind((!open).then(|| decision.note.clone()))
                .bind((!open).then(|| decision.actor.clone()))
                .bind(resolved)
                .bind(decision.now)
                .bind(decision.candidates.clone())
                .execute(&mut *transaction)
                .await?;
                if updated.rows_affected() != 1 {
                    let exists: Option<i16> = sqlx::query_scalar(
                        "SELECT status FROM batch_exception WHERE exception_id = $1",
                    )
                    .bind(&exception_id)
                    .fetch_optional(&mut *transaction)
                    .await?;
                    transaction.rollback().await?;
                    return Ok(match exists {
                        Some(_) => DecisionOutcome::NotOpen,
                        None => DecisionOutcome::NotFound,
                    });
                }

                let values = decision.values.as_ref().map(|values| json(values));
                sqlx::query(
                    "UPDATE batch_record SET outcome = $2, result_uln = $3, reasons = $4, \
                     faults = $5, input_values = COALESCE($6, input_values) \
                     WHERE (job_id, row_number) = (SELECT job_id, row_number \
                     FROM batch_exception WHERE exception_id = $1)",
                )
                .bind(&exception_id)
                .bind(decision.outcome.code())
                .bind(&decision.result_uln)
                .bind(json(&decision.reasons))
                .bind(json(&decision.faults))
                .bind(values)
                .execute(&mut *transaction)
                .await?;
                sqlx::query(
                    "UPDATE batch_record SET result_uln = $2 WHERE (job_id, duplicate_of_row) = \
                     (SELECT job_id, row_number FROM batch_exception WHERE exception_id = $1)",
                )
                .bind(&exception_id)
                .bind(&decision.result_uln)
                .execute(&mut *transaction)
                .await?;
                sqlx::query(
                    "INSERT INTO batch_exception_decision (decision_id, exception_id, \
                     organisation_id, actor, action, detail, request_id, decide_time) \
                     VALUES ($1, $2, $3, $4, $5, $6, $7, $8)",
                )
                .bind(Uuid::new_v4().to_string())
                .bind(&exception_id)
                .bind(&decision.organisation_id)
                .bind(&decision.actor)
                .bind(decision.action.code())
                .bind(&decision.detail)
                .bind(&decision.request_id)
                .bind(decision.now)
                .execute(&mut *transaction)
                .await?;
                transaction.commit().await?;

                match self.exception(decision.exception_id).await? {
                    Some(found) => Ok(DecisionOutcome::Applied(found)),
                    None => Ok(DecisionOutcome::NotFound),
                }
            }
        }
    };
}
pub(crate) use batch_store;
