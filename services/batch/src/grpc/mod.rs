//! The gRPC adapter: requests taken apart and checked, the caller's rights checked, the work
//! done by the domain and the store, and the answers built ([`convert`]).
//!
//! Who may do what: LRB files need `BATCH_USER`, verification files `AO_USER`; the service
//! desk may do anything, and a service acting for an organisation acts as that organisation.
//! A job or exception of another organisation is `NOT_FOUND`, so its existence is not
//! revealed.

mod convert;
mod exceptions;
mod jobs;
mod upload;

use std::sync::Arc;

use chrono::{DateTime, Utc};
use lrs_fields::Clock;
use lrs_proto::batch::v1 as pb;
use lrs_server::auth::{AuthError, Caller, Role};
use lrs_server::call::{Call, CallGate};
use tokio::sync::Notify;
use tonic::{Request, Response, Status, Streaming};
use uuid::Uuid;

use crate::config::BatchConfig;
use crate::domain::job::JobType;
use crate::error::BatchError;
use crate::learners::LearnerRegister;
use crate::store::{BatchStore, Job};
use crate::worker::Processor;

/// What the handlers share.
#[derive(Debug)]
pub struct Shared {
    pub(crate) store: Arc<dyn BatchStore>,
    pub(crate) learners: Arc<dyn LearnerRegister>,
    pub(crate) clock: Arc<dyn Clock>,
    pub(crate) gate: CallGate,
    pub(crate) config: BatchConfig,
    pub(crate) wake: Arc<Notify>,
    pub(crate) processor: Processor,
    /// Turns true when the service begins to stop: open watches then end.
    pub(crate) stopping: tokio::sync::watch::Sender<bool>,
}

/// A job's creation time in a page token, to the nanosecond: a cursor must name the stored
/// value exactly, and SQLite keeps the clock's nanoseconds.
pub(crate) fn time_token(time: DateTime<Utc>) -> String {
    let seconds = time.timestamp();
    format!("{seconds}.{:09}", time.timestamp_subsec_nanos())
}

/// The time a [`time_token`] names.
pub(crate) fn token_time(token: &str) -> Option<DateTime<Utc>> {
    let (seconds, nanos) = token.split_once('.')?;
    if nanos.len() != 9 {
        return None;
    }
    DateTime::from_timestamp(seconds.parse().ok()?, nanos.parse().ok()?)
}

/// The `lrs.batch.v1.BatchService` implementation.
#[derive(Debug, Clone)]
pub struct BatchGrpc {
    shared: Arc<Shared>,
}

impl BatchGrpc {
    pub(crate) fn new(shared: Arc<Shared>) -> BatchGrpc {
        BatchGrpc { shared }
    }
}

/// The role a job type needs.
fn role_for(job_type: JobType) -> Role {
    match job_type {
        JobType::FindAndRegister | JobType::FindOnly => Role::BatchUser,
        JobType::Verification => Role::AoUser,
    }
}

/// Whether the caller may handle jobs of `job_type`.
fn require_role(caller: &Caller, job_type: JobType) -> Result<(), BatchError> {
    if caller.is_service() && caller.acting_for.is_some() {
        return Ok(());
    }
    Ok(caller.require_any(&[role_for(job_type)])?)
}

/// Whether the caller may use the batch service at all.
fn require_batch_role(caller: &Caller) -> Result<(), BatchError> {
    if caller.is_service() && caller.acting_for.is_some() {
        return Ok(());
    }
    Ok(caller.require_any(&[Role::BatchUser, Role::AoUser])?)
}

/// The organisation whose jobs the caller works with.
fn organisation_of(call: &Call) -> Result<String, BatchError> {
    call.caller
        .effective_organisation_id()
        .map(str::to_owned)
        .ok_or(BatchError::Auth(AuthError::RoleNotPermitted))
}

/// The job, if the caller may see it: its organisation's, or any for the service desk.
async fn visible_job(shared: &Shared, call: &Call, job_id: &str) -> Result<Job, BatchError> {
    let job_id = Uuid::parse_str(job_id).map_err(|_| {
        BatchError::field(
            "job_id",
            "a job id is a UUID such as 0190f3c4-7a8b-7c3d-9e0f-112233445566",
        )
    })?;
    let job = shared
        .store
        .job(job_id)
        .await?
        .ok_or(BatchError::JobNotFound)?;
    let own = call.caller.effective_organisation_id() == Some(job.organisation_id.as_str());
    if !(own || call.caller.is_service_desk()) {
        return Err(BatchError::JobNotFound);
    }
    require_role(&call.caller, job.job_type)?;
    Ok(job)
}

#[tonic::async_trait]
impl pb::batch_service_server::BatchService for BatchGrpc {
    async fn validate_batch_file(
        &self,
        request: Request<Streaming<pb::ValidateBatchFileRequest>>,
    ) -> Result<Response<pb::ValidateBatchFileResponse>, Status> {
        let call = self.shared.gate.enter(&request).await?;
        upload::validate(&self.shared, &call, request.into_inner())
            .await
            .map(Response::new)
            .map_err(|error| call.fail(error))
    }

    async fn submit_batch_file(
        &self,
        request: Request<Streaming<pb::SubmitBatchFileRequest>>,
    ) -> Result<Response<pb::SubmitBatchFileResponse>, Status> {
        let call = self.shared.gate.enter(&request).await?;
        upload::submit(self.shared.clone(), &call, request.into_inner())
            .await
            .map(Response::new)
            .map_err(|error| call.fail(error))
    }

    async fn get_batch_job(
        &self,
        request: Request<pb::GetBatchJobRequest>,
    ) -> Result<Response<pb::GetBatchJobResponse>, Status> {
        let call = self.shared.gate.enter(&request).await?;
        jobs::get(&self.shared, &call, request.into_inner())
            .await
            .map(Response::new)
            .map_err(|error| call.fail(error))
    }

    async fn list_batch_jobs(
        &self,
        request: Request<pb::ListBatchJobsRequest>,
    ) -> Result<Response<pb::ListBatchJobsResponse>, Status> {
        let call = self.shared.gate.enter(&request).await?;
        jobs::list(&self.shared, &call, request.into_inner())
            .await
            .map(Response::new)
            .map_err(|error| call.fail(error))
    }

    type WatchBatchJobStream = jobs::WatchStream;

    async fn watch_batch_job(
        &self,
        request: Request<pb::WatchBatchJobRequest>,
    ) -> Result<Response<Self::WatchBatchJobStream>, Status> {
        let call = self.shared.gate.enter(&request).await?;
        jobs::watch(self.shared.clone(), &call, request.into_inner())
            .await
            .map(Response::new)
            .map_err(|error| call.fail(error))
    }

    type GetBatchOutputStream = jobs::OutputStream;

    async fn get_batch_output(
        &self,
        request: Request<pb::GetBatchOutputRequest>,
    ) -> Result<Response<Self::GetBatchOutputStream>, Status> {
        let call = self.shared.gate.enter(&request).await?;
        jobs::output(self.shared.clone(), &call, request.into_inner())
            .await
            .map(Response::new)
            .map_err(|error| call.fail(error))
    }

    async fn list_batch_exceptions(
        &self,
        request: Request<pb::ListBatchExceptionsRequest>,
    ) -> Result<Response<pb::ListBatchExceptionsResponse>, Status> {
        let call = self.shared.gate.enter(&request).await?;
        exceptions::list(&self.shared, &call, request.into_inner())
            .await
            .map(Response::new)
            .map_err(|error| call.fail(error))
    }

    async fn resolve_batch_exception(
        &self,
        request: Request<pb::ResolveBatchExceptionRequest>,
    ) -> Result<Response<pb::ResolveBatchExceptionResponse>, Status> {
        let call = self.shared.gate.enter(&request).await?;
        exceptions::resolve(&self.shared, &call, request.into_inner())
            .await
            .map(Response::new)
            .map_err(|error| call.fail(error))
    }

    async fn cancel_batch_job(
        &self,
        request: Request<pb::CancelBatchJobRequest>,
    ) -> Result<Response<pb::CancelBatchJobResponse>, Status> {
        let call = self.shared.gate.enter(&request).await?;
        jobs::cancel(&self.shared, &call, request.into_inner())
            .await
            .map(Response::new)
            .map_err(|error| call.fail(error))
    }
}
