//! GetBatchJob, ListBatchJobs, WatchBatchJob, GetBatchOutput and CancelBatchJob.

use std::pin::Pin;
use std::sync::Arc;
use std::time::Duration;

use chrono::{DateTime, Utc};
use futures::Stream;
use lrs_proto::batch::v1 as pb;
use lrs_server::call::Call;
use tonic::Status;
use uuid::Uuid;

use super::{Shared, convert, organisation_of, require_batch_role, visible_job};
use crate::domain::job::{JobStatus, JobType};
use crate::domain::output::{OutputRow, OutputWriter, output_file_name};
use crate::error::BatchError;
use crate::store::{Job, JobFilter};

/// A server stream of job states.
pub type WatchStream =
    Pin<Box<dyn Stream<Item = Result<pb::WatchBatchJobResponse, Status>> + Send>>;
/// A server stream of output.
pub type OutputStream =
    Pin<Box<dyn Stream<Item = Result<pb::GetBatchOutputResponse, Status>> + Send>>;

/// Records read from the store per page of output, and per RECORDS message.
const OUTPUT_PAGE: i64 = 500;
/// The output file is sent in pieces of about this size (well under the 1 MiB the contract
/// allows per message).
const CSV_PIECE: usize = 256 * 1024;
/// A watch sends the state at least this often while the job runs.
const WATCH_HEARTBEAT: Duration = Duration::from_secs(30);

pub(crate) async fn get(
    shared: &Shared,
    call: &Call,
    request: pb::GetBatchJobRequest,
) -> Result<pb::GetBatchJobResponse, BatchError> {
    let pb::GetBatchJobRequest { job_id } = request;

    require_batch_role(&call.caller)?;
    let job = visible_job(shared, call, &job_id).await?;

    let counts = shared.store.job_counts(job.job_id).await?;
    Ok(pb::GetBatchJobResponse {
        job: Some(convert::job(&job, &counts)),
    })
}

fn page_size(size: i32) -> Result<i64, BatchError> {
    match size {
        0 => Ok(50),
        1..=1000 => Ok(i64::from(size)),
        _ => Err(BatchError::field("page_size", "1 to 1000, or 0 for 50")),
    }
}

fn job_cursor(token: &str) -> Result<Option<(DateTime<Utc>, Uuid)>, BatchError> {
    if token.is_empty() {
        return Ok(None);
    }
    let bad = || BatchError::field("page_token", "not a token this service gave");
    let (time, id) = token.split_once('_').ok_or_else(bad)?;
    let time = super::token_time(time).ok_or_else(bad)?;
    Ok(Some((time, Uuid::parse_str(id).map_err(|_| bad())?)))
}

fn job_token(job: &Job) -> String {
    format!("{}_{}", super::time_token(job.create_time), job.job_id)
}

pub(crate) async fn list(
    shared: &Shared,
    call: &Call,
    request: pb::ListBatchJobsRequest,
) -> Result<pb::ListBatchJobsResponse, BatchError> {
    let pb::ListBatchJobsRequest {
        page_size: size,
        page_token,
        organisation_id,
        job_type,
        status,
    } = request;
    let limit = page_size(size)?;
    let after = job_cursor(&page_token)?;
    let job_type = match pb::JobType::try_from(job_type).unwrap_or(pb::JobType::Unspecified) {
        pb::JobType::Unspecified | pb::JobType::Achievement => None,
        pb::JobType::LearnerFindAndRegister => Some(JobType::FindAndRegister),
        pb::JobType::LearnerFindOnly => Some(JobType::FindOnly),
        pb::JobType::Verification => Some(JobType::Verification),
    };
    let status = match pb::JobStatus::try_from(status).unwrap_or(pb::JobStatus::Unspecified) {
        pb::JobStatus::Unspecified | pb::JobStatus::Validating => None,
        pb::JobStatus::Queued => Some(JobStatus::Queued),
        pb::JobStatus::Processing => Some(JobStatus::Processing),
        pb::JobStatus::Completed => Some(JobStatus::Completed),
        pb::JobStatus::Failed => Some(JobStatus::Failed),
        pb::JobStatus::Cancelled => Some(JobStatus::Cancelled),
    };

    require_batch_role(&call.caller)?;
    let organisation = if call.caller.is_service_desk() {
        Some(organisation_id).filter(|id| !id.is_empty())
    } else {
        let own = organisation_of(call)?;
        if !organisation_id.is_empty() && organisation_id != own {
            return Err(BatchError::Auth(
                lrs_server::auth::AuthError::RoleNotPermitted,
            ));
        }
        Some(own)
    };

    let filter = JobFilter {
        organisation_id: organisation,
        job_type,
        status,
        after,
        limit: limit + 1,
    };
    let mut jobs = shared.store.list_jobs(&filter).await?;
    let more = jobs.len() as i64 > limit;
    jobs.truncate(limit as usize);
    let next_page_token = match (more, jobs.last()) {
        (true, Some(last)) => job_token(last),
        _ => String::new(),
    };
    let mut answered = Vec::with_capacity(jobs.len());
    for job in &jobs {
        let counts = shared.store.job_counts(job.job_id).await?;
        answered.push(convert::job(job, &counts));
    }
    Ok(pb::ListBatchJobsResponse {
        jobs: answered,
        next_page_token,
    })
}

pub(crate) async fn watch(
    shared: Arc<Shared>,
    call: &Call,
    request: pb::WatchBatchJobRequest,
) -> Result<WatchStream, BatchError> {
    let pb::WatchBatchJobRequest { job_id } = request;

    require_batch_role(&call.caller)?;
    let job = visible_job(&shared, call, &job_id).await?;

    let interval: Duration = shared.config.watch_interval.into();
    let fail = call.clone();
    let mut stopping = shared.stopping.subscribe();
    let stream = async_stream::try_stream! {
        let mut last: Option<pb::BatchJob> = None;
        let mut last_sent = tokio::time::Instant::now();
        loop {
            let current = shared.store.job(job.job_id).await.map_err(|e| fail.fail(BatchError::from(e)))?;
            let Some(current) = current else {
                Err(fail.fail(BatchError::JobNotFound))?;
                return;
            };
            let counts = shared.store.job_counts(job.job_id).await.map_err(|e| fail.fail(BatchError::from(e)))?;
            let mut answer = convert::job(&current, &counts);
            let changed = match &last {
                Some(previous) => {
                    let mut earlier = previous.clone();
                    earlier.update_time = answer.update_time;
                    earlier != answer
                }
                None => true,
            };
            if changed || last_sent.elapsed() >= WATCH_HEARTBEAT {
                last = Some(answer.clone());
                last_sent = tokio::time::Instant::now();
                yield pb::WatchBatchJobResponse { job: Some(std::mem::take(&mut answer)) };
            }
            if current.status.is_final() {
                return;
            }
            let stopped = tokio::select! {
                () = tokio::time::sleep(interval) => false,
                _ = stopping.wait_for(|stopping| *stopping) => true,
            };
            if stopped {
                Err(fail.fail(BatchError::Stopping))?;
            }
        }
    };
    Ok(Box::pin(stream))
}

pub(crate) async fn output(
    shared: Arc<Shared>,
    call: &Call,
    request: pb::GetBatchOutputRequest,
) -> Result<OutputStream, BatchError> {
    let pb::GetBatchOutputRequest {
        job_id,
        format,
        after_row,
    } = request;
    let format = pb::OutputFormat::try_from(format).unwrap_or(pb::OutputFormat::Unspecified);
    if after_row < 0 {
        return Err(BatchError::field("after_row", "0 or a row number"));
    }

    require_batch_role(&call.caller)?;
    let job = visible_job(&shared, call, &job_id).await?;
    match job.status {
        JobStatus::Completed | JobStatus::Cancelled => {}
        JobStatus::Failed => return Err(BatchError::JobFailed),
        JobStatus::Uploading | JobStatus::Queued | JobStatus::Processing => {
            return Err(BatchError::JobNotFinished);
        }
    }

    let fail = call.clone();
    Ok(match format {
        pb::OutputFormat::Csv => Box::pin(csv_output(shared, job, fail)),
        pb::OutputFormat::Records | pb::OutputFormat::Unspecified => {
            Box::pin(record_output(shared, job, after_row, fail))
        }
    })
}

fn record_output(
    shared: Arc<Shared>,
    job: Job,
    after_row: i64,
    fail: Call,
) -> impl Stream<Item = Result<pb::GetBatchOutputResponse, Status>> + Send {
    async_stream::try_stream! {
        let mut after = after_row;
        let mut headings = convert::value_headings(&job).to_vec();
        loop {
            let records = shared
                .store
                .records(job.job_id, after, OUTPUT_PAGE)
                .await
                .map_err(|e| fail.fail(BatchError::from(e)))?;
            let Some(last) = records.last() else {
                if !headings.is_empty() {
                    yield records_message(std::mem::take(&mut headings), Vec::new());
                }
                return;
            };
            after = last.row;
            let results = records.iter().map(convert::record).collect();
            yield records_message(std::mem::take(&mut headings), results);
            if (records.len() as i64) < OUTPUT_PAGE {
                return;
            }
        }
    }
}

fn records_message(
    headings: Vec<String>,
    results: Vec<pb::RecordResult>,
) -> pb::GetBatchOutputResponse {
    pb::GetBatchOutputResponse {
        content: Some(pb::get_batch_output_response::Content::Records(
            pb::RecordResults { headings, results },
        )),
    }
}

fn csv_output(
    shared: Arc<Shared>,
    job: Job,
    fail: Call,
) -> impl Stream<Item = Result<pb::GetBatchOutputResponse, Status>> + Send {
    async_stream::try_stream! {
        let file_name = output_file_name(&job.file_name);
        let mut writer = OutputWriter::new(&job.headings, job.header_values.clone());
        let mut after = 0;
        loop {
            let records = shared
                .store
                .records(job.job_id, after, OUTPUT_PAGE)
                .await
                .map_err(|e| fail.fail(BatchError::from(e)))?;
            for record in &records {
                if let Some(outcome) = record.outcome {
                    writer.row(&OutputRow {
                        values: &record.values,
                        outcome,
                        result_uln: &record.result_uln,
                        reasons: &record.reasons,
                    });
                }
            }
            let done = (records.len() as i64) < OUTPUT_PAGE;
            if let Some(last) = records.last() {
                after = last.row;
            }
            if done || writer.pending() >= CSV_PIECE {
                let data = writer.take();
                yield csv_message(&file_name, data);
            }
            if done {
                return;
            }
        }
    }
}

fn csv_message(file_name: &str, data: Vec<u8>) -> pb::GetBatchOutputResponse {
    pb::GetBatchOutputResponse {
        content: Some(pb::get_batch_output_response::Content::Csv(pb::CsvChunk {
            file_name: file_name.to_owned(),
            data,
        })),
    }
}

pub(crate) async fn cancel(
    shared: &Shared,
    call: &Call,
    request: pb::CancelBatchJobRequest,
) -> Result<pb::CancelBatchJobResponse, BatchError> {
    let pb::CancelBatchJobRequest { job_id } = request;

    require_batch_role(&call.caller)?;
    let job = visible_job(shared, call, &job_id).await?;

    let job = match job.status {
        JobStatus::Completed | JobStatus::Failed => return Err(BatchError::JobAlreadyFinished),
        JobStatus::Cancelled => job,
        JobStatus::Uploading | JobStatus::Queued | JobStatus::Processing => {
            let after = shared
                .store
                .cancel_job(job.job_id, shared.clock.now())
                .await?;
            let after = after.ok_or(BatchError::JobNotFound)?;
            if after.status == JobStatus::Completed {
                return Err(BatchError::JobAlreadyFinished);
            }
            tracing::info!(job_id = %after.job_id, "cancelled batch job");
            after
        }
    };
    let counts = shared.store.job_counts(job.job_id).await?;
    Ok(pb::CancelBatchJobResponse {
        job: Some(convert::job(&job, &counts)),
    })
}
