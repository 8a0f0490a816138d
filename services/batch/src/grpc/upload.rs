//! ValidateBatchFile and SubmitBatchFile: an upload stream read by the parser on a blocking
//! thread while its bytes arrive, so a file is checked (and stored) as it streams.

use std::io::{self, Read};
use std::ops::ControlFlow;
use std::sync::Arc;

use futures::{Stream, StreamExt};
use lrs_proto::batch::v1 as pb;
use lrs_server::call::Call;
use lrs_server::error::FieldViolation;
use tokio::sync::mpsc;
use tonic::Streaming;
use uuid::Uuid;

use super::{Shared, convert, require_role};
use crate::domain::job::JobType;
use crate::domain::layout::FileKind;
use crate::domain::parser::{
    FileContext, FileFaultKind, FileSummary, Interruption, ParsedRecord, RecordSink, Verdict,
    parse_file,
};
use crate::error::BatchError;
use crate::store::{FinishOutcome, NewRecord, NewUpload, UploadFinish};

/// The most record faults ValidateBatchFile lists.
const MAX_LISTED_RECORD_FAULTS: usize = 5000;
/// The longest idempotency key.
const REQUEST_ID_MAX: usize = 64;
/// What a stream that sends its metadata twice is told.
const METADATA_TWICE: &str = "the metadata may come only once, first; then only chunks";

/// The job type a file runs as: the one asked for, else the one its name's prefix says.
fn job_type_of(metadata: &pb::BatchFileMetadata) -> Result<JobType, BatchError> {
    let pb::BatchFileMetadata {
        file_name,
        job_type,
    } = metadata;
    let asked = pb::JobType::try_from(*job_type).unwrap_or(pb::JobType::Unspecified);
    let by_name = match FileKind::from_file_name(file_name) {
        Some(FileKind::Learner) => Some(JobType::FindAndRegister),
        Some(FileKind::Verification) => Some(JobType::Verification),
        None => None,
    };
    match asked {
        pb::JobType::LearnerFindAndRegister => Ok(JobType::FindAndRegister),
        pb::JobType::LearnerFindOnly => Ok(JobType::FindOnly),
        pb::JobType::Verification => Ok(JobType::Verification),
        pb::JobType::Achievement => Err(BatchError::JobTypeNotSupported(
            "achievement files are not processed by this version of the batch service: \
             submit achievements through the PLR service"
                .to_owned(),
        )),
        pb::JobType::Unspecified => by_name.ok_or_else(|| {
            BatchError::field(
                "metadata.file.file_name",
                "the file name must start with LRB_ (learner file) or VRF_ (verification \
                 file), or give the job type",
            )
        }),
    }
}

fn check_file_name(name: &str) -> Result<(), BatchError> {
    if name.is_empty() || name.chars().count() > 255 {
        return Err(BatchError::field(
            "metadata.file.file_name",
            "the file name must be 1 to 255 characters",
        ));
    }
    Ok(())
}

/// Reads the bytes that `receiver` hands over, blocking; an error from the upload becomes a
/// read error, and the end of the channel the end of the file.
struct ChunkReader {
    receiver: mpsc::Receiver<Result<Vec<u8>, String>>,
    current: Vec<u8>,
    offset: usize,
}

impl Read for ChunkReader {
    fn read(&mut self, buffer: &mut [u8]) -> io::Result<usize> {
        while self.offset >= self.current.len() {
            match self.receiver.blocking_recv() {
                Some(Ok(bytes)) => {
                    self.current = bytes;
                    self.offset = 0;
                }
                Some(Err(reason)) => return Err(io::Error::other(reason)),
                None => return Ok(0),
            }
        }
        let count = (self.current.len() - self.offset).min(buffer.len());
        buffer[..count].copy_from_slice(&self.current[self.offset..self.offset + count]);
        self.offset += count;
        Ok(count)
    }
}

/// Runs the parser over the bytes `chunks` yields, on a blocking thread, with `sink`; `finish`
/// runs on that thread after the parse, with the summary.
async fn parse_stream<S, K, F>(
    mut chunks: S,
    context: FileContext,
    sink: K,
    finish: F,
) -> Result<(FileSummary, K), BatchError>
where
    S: Stream<Item = Result<Vec<u8>, String>> + Unpin,
    K: RecordSink + Send + 'static,
    F: FnOnce(&FileSummary, &mut K) + Send + 'static,
{
    let (sender, receiver) = mpsc::channel(4);
    let parser = tokio::task::spawn_blocking(move || {
        let reader = ChunkReader {
            receiver,
            current: Vec::new(),
            offset: 0,
        };
        let mut sink = sink;
        let summary = parse_file(reader, &context, &mut sink);
        finish(&summary, &mut sink);
        (summary, sink)
    });
    while let Some(chunk) = chunks.next().await {
        let broken = chunk.is_err();
        if sender.send(chunk).await.is_err() || broken {
            break;
        }
    }
    drop(sender);
    parser
        .await
        .map_err(|error| BatchError::Internal(format!("the file reader stopped: {error}")))
}

/// The upload's bytes, after its metadata message.
fn file_bytes<M, E>(
    stream: Streaming<M>,
    chunk_of: E,
) -> impl Stream<Item = Result<Vec<u8>, String>> + Unpin
where
    M: Send + 'static,
    E: Fn(M) -> Option<Vec<u8>> + Send + 'static,
{
    stream.map(move |message| match message {
        Ok(message) => chunk_of(message).ok_or_else(|| METADATA_TWICE.to_owned()),
        Err(status) => Err(format!("the upload stream failed: {}", status.message())),
    })
}

fn interrupted(summary: &FileSummary) -> Option<BatchError> {
    match &summary.interruption {
        Some(Interruption::TooLarge { limit }) => Some(BatchError::FileTooLarge { limit: *limit }),
        Some(Interruption::Read(reason)) if reason == METADATA_TWICE => {
            Some(BatchError::field("chunk", METADATA_TWICE))
        }
        Some(Interruption::Read(reason)) => Some(BatchError::UploadInterrupted(reason.clone())),
        Some(Interruption::SinkClosed) => Some(BatchError::Internal(
            "the records could not be stored".to_owned(),
        )),
        None => None,
    }
}

/// Collects the record faults of a file being validated.
struct FaultList {
    faults: Vec<pb::RecordFault>,
}

impl RecordSink for FaultList {
    fn accept(&mut self, record: ParsedRecord) -> ControlFlow<()> {
        for fault in &record.faults {
            if self.faults.len() < MAX_LISTED_RECORD_FAULTS {
                self.faults.push(convert::record_fault(fault));
            }
        }
        ControlFlow::Continue(())
    }
}

fn context(shared: &Shared, call: &Call, file_name: String, job_type: JobType) -> FileContext {
    FileContext {
        file_name,
        kind: job_type.file_kind(),
        uploader_ukprn: uploader_ukprn(call),
        today: shared.clock.today(),
        limits: shared.config.limits(),
    }
}

/// The UKPRN a file must carry: the caller's organisation's. The service desk, and services,
/// are not held to one.
fn uploader_ukprn(call: &Call) -> Option<String> {
    if call.caller.is_service_desk() || call.caller.is_service() {
        None
    } else {
        Some(call.caller.claims.ukprn.clone().unwrap_or_default())
    }
}

pub(crate) async fn validate(
    shared: &Shared,
    call: &Call,
    mut stream: Streaming<pb::ValidateBatchFileRequest>,
) -> Result<pb::ValidateBatchFileResponse, BatchError> {
    let first = stream
        .message()
        .await
        .map_err(|status| BatchError::UploadInterrupted(status.message().to_owned()))?;
    let Some(pb::ValidateBatchFileRequest {
        content: Some(pb::validate_batch_file_request::Content::Metadata(metadata)),
    }) = first
    else {
        return Err(BatchError::field(
            "metadata",
            "the first message must carry the metadata",
        ));
    };

    let job_type = job_type_of(&metadata)?;
    check_file_name(&metadata.file_name)?;
    require_role(&call.caller, job_type)?;

    let context = context(shared, call, metadata.file_name, job_type);
    let bytes = file_bytes(
        stream,
        |message: pb::ValidateBatchFileRequest| match message.content {
            Some(pb::validate_batch_file_request::Content::Chunk(bytes)) => Some(bytes),
            _ => None,
        },
    );
    let sink = FaultList { faults: Vec::new() };
    let (summary, sink) = parse_stream(bytes, context, sink, |_, _| {}).await?;
    if let Some(error) = interrupted(&summary) {
        return Err(error);
    }

    Ok(pb::ValidateBatchFileResponse {
        valid: summary.accepted() && summary.record_fault_count == 0,
        job_type: convert::job_type(job_type) as i32,
        file_version: summary
            .version
            .map(|v| v.as_str().to_owned())
            .unwrap_or_default(),
        record_count: summary.record_count as i64,
        file_faults: summary
            .file_faults
            .iter()
            .map(convert::file_fault)
            .collect(),
        expected_headings: summary.expected_headings.clone(),
        record_faults: sink.faults,
        record_fault_count: summary.record_fault_count as i64,
        faulty_record_count: summary.faulty_record_count as i64,
    })
}

/// Turns parsed records into stored ones and hands them on a chunk at a time.
struct StoreSink {
    job_type: JobType,
    chunk_size: usize,
    pending: Vec<NewRecord>,
    sender: mpsc::Sender<Vec<NewRecord>>,
}

impl StoreSink {
    fn flush(&mut self) -> ControlFlow<()> {
        if self.pending.is_empty() {
            return ControlFlow::Continue(());
        }
        let chunk = std::mem::take(&mut self.pending);
        match self.sender.blocking_send(chunk) {
            Ok(()) => ControlFlow::Continue(()),
            Err(_) => ControlFlow::Break(()),
        }
    }
}

/// A stored record's reasons: each fault, or the row it duplicates.
fn reasons_of(record: &ParsedRecord) -> Vec<String> {
    let mut reasons: Vec<String> = record
        .faults
        .iter()
        .map(|fault| format!("{}: {}", fault.column, fault.reason))
        .collect();
    if let Verdict::Duplicate { of_row } = record.verdict {
        reasons.push(format!(
            "the same learner (the same five keys) as row {of_row}; that row's ULN is given"
        ));
    }
    reasons
}

impl RecordSink for StoreSink {
    fn accept(&mut self, record: ParsedRecord) -> ControlFlow<()> {
        let rejected = matches!(record.verdict, Verdict::Rejected(_));
        let learner_file = self.job_type.file_kind() == FileKind::Learner;
        let stored = NewRecord {
            row: record.row as i64,
            mis_identifier: record.mis_identifier.clone(),
            outcome: record.outcome(),
            duplicate_of_row: match record.verdict {
                Verdict::Duplicate { of_row } => Some(of_row as i64),
                Verdict::Pending | Verdict::Rejected(_) => None,
            },
            reasons: reasons_of(&record),
            exception_id: (rejected && learner_file).then(Uuid::new_v4),
            faults: record.faults,
            values: record.values,
        };
        self.pending.push(stored);
        if self.pending.len() >= self.chunk_size {
            return self.flush();
        }
        ControlFlow::Continue(())
    }
}

/// The file-level faults as the fields of an `INVALID_ARGUMENT`; too many records is
/// `RESOURCE_EXHAUSTED`.
fn rejection(summary: &FileSummary, max_records: u64) -> BatchError {
    if summary
        .file_faults
        .iter()
        .any(|f| f.kind == FileFaultKind::TooManyRecords)
    {
        return BatchError::TooManyRecords { limit: max_records };
    }
    let mut violations: Vec<FieldViolation> = summary
        .file_faults
        .iter()
        .map(|fault| {
            let field = match (fault.row, fault.column.as_str()) {
                (0, _) => "file".to_owned(),
                (row, "") => format!("row {row}"),
                (row, column) => format!("row {row} {column}"),
            };
            FieldViolation::new(field, fault.message.clone())
        })
        .collect();
    if !summary.expected_headings.is_empty() {
        violations.push(FieldViolation::new(
            "row 1",
            format!(
                "expected headings, in order: {}",
                summary.expected_headings.join(",")
            ),
        ));
    }
    let unlisted = summary.file_fault_count as usize - summary.file_faults.len();
    if unlisted > 0 {
        violations.push(FieldViolation::new(
            "file",
            format!("and {unlisted} more faults"),
        ));
    }
    BatchError::FileRejected(violations)
}

pub(crate) async fn submit(
    shared: Arc<Shared>,
    call: &Call,
    mut stream: Streaming<pb::SubmitBatchFileRequest>,
) -> Result<pb::SubmitBatchFileResponse, BatchError> {
    let first = stream
        .message()
        .await
        .map_err(|status| BatchError::UploadInterrupted(status.message().to_owned()))?;
    let Some(pb::SubmitBatchFileRequest {
        content: Some(pb::submit_batch_file_request::Content::Metadata(metadata)),
    }) = first
    else {
        return Err(BatchError::field(
            "metadata",
            "the first message must carry the metadata",
        ));
    };
    let pb::SubmitBatchFileMetadata { file, request_id } = metadata;
    let Some(file) = file else {
        return Err(BatchError::field(
            "metadata.file",
            "the file's name is required",
        ));
    };

    let job_type = job_type_of(&file)?;
    check_file_name(&file.file_name)?;
    if request_id.chars().count() > REQUEST_ID_MAX {
        return Err(BatchError::field(
            "metadata.request_id",
            "at most 64 characters",
        ));
    }
    let request_id = Some(request_id).filter(|id| !id.is_empty());
    require_role(&call.caller, job_type)?;
    let organisation_id = super::organisation_of(call)?;

    if let Some(request_id) = &request_id
        && let Some(job) = shared
            .store
            .job_by_request(&organisation_id, request_id)
            .await?
    {
        let counts = shared.store.job_counts(job.job_id).await?;
        return Ok(pb::SubmitBatchFileResponse {
            job: Some(convert::job(&job, &counts)),
        });
    }

    let upload = NewUpload {
        job_id: Uuid::new_v4(),
        organisation_id,
        ukprn: call.caller.claims.ukprn.clone().unwrap_or_default(),
        created_by: call.caller.subject().to_owned(),
        acting_user_id: call.acting_for().and_then(|acting| acting.user_id),
        job_type,
        file_name: file.file_name.clone(),
        validation_date: shared.clock.today(),
        now: shared.clock.now(),
    };
    let context = context(&shared, call, file.file_name, job_type);
    // The upload runs as a task of its own, so that a client that goes away mid-stream still
    // leaves its partial upload removed.
    let task = tokio::spawn(store_upload(
        shared.clone(),
        upload,
        context,
        stream,
        request_id,
    ));
    task.await
        .map_err(|error| BatchError::Internal(format!("the upload task stopped: {error}")))?
}

async fn store_upload(
    shared: Arc<Shared>,
    upload: NewUpload,
    context: FileContext,
    stream: Streaming<pb::SubmitBatchFileRequest>,
    request_id: Option<String>,
) -> Result<pb::SubmitBatchFileResponse, BatchError> {
    let job_id = upload.job_id;
    shared.store.begin_upload(&upload).await?;
    let outcome = read_and_store(&shared, &upload, context, stream, request_id).await;
    match outcome {
        Ok(response) => Ok(response),
        Err(error) => {
            if let Err(cleanup) = shared.store.abandon_upload(job_id).await {
                tracing::warn!(%job_id, error = %cleanup, "could not remove a refused upload");
            }
            Err(error)
        }
    }
}

async fn read_and_store(
    shared: &Arc<Shared>,
    upload: &NewUpload,
    context: FileContext,
    stream: Streaming<pb::SubmitBatchFileRequest>,
    request_id: Option<String>,
) -> Result<pb::SubmitBatchFileResponse, BatchError> {
    let (sender, mut receiver) = mpsc::channel::<Vec<NewRecord>>(2);
    let sink = StoreSink {
        job_type: upload.job_type,
        chunk_size: shared.config.chunk_size,
        pending: Vec::with_capacity(shared.config.chunk_size),
        sender,
    };
    let store = shared.store.clone();
    let job_id = upload.job_id;
    let storer = tokio::spawn(async move {
        let mut chunk_number = 0i64;
        while let Some(records) = receiver.recv().await {
            store.add_records(job_id, chunk_number, &records).await?;
            chunk_number += 1;
        }
        Ok::<_, BatchError>(())
    });

    let bytes = file_bytes(
        stream,
        |message: pb::SubmitBatchFileRequest| match message.content {
            Some(pb::submit_batch_file_request::Content::Chunk(bytes)) => Some(bytes),
            _ => None,
        },
    );
    let finish = |summary: &FileSummary, sink: &mut StoreSink| {
        if summary.accepted() {
            let _ = sink.flush();
        }
    };
    let (summary, sink) = parse_stream(bytes, context, sink, finish).await?;
    drop(sink);
    let stored = storer
        .await
        .map_err(|error| BatchError::Internal(format!("the record writer stopped: {error}")))?;
    if let Some(error) = interrupted(&summary) {
        stored?;
        return Err(error);
    }
    stored?;
    if !summary.accepted() {
        return Err(rejection(&summary, shared.config.max_records));
    }

    let header_values = match upload.job_type.file_kind() {
        FileKind::Learner => summary.header_values.clone(),
        FileKind::Verification => Vec::new(),
    };
    let finish = UploadFinish {
        file_version: summary
            .version
            .map(|v| v.as_str().to_owned())
            .unwrap_or_default(),
        headings: summary.headings.clone(),
        header_values,
        total_records: summary.record_count as i64,
        file_size_bytes: summary.byte_count as i64,
        request_id,
        now: shared.clock.now(),
    };
    let job = match shared.store.finish_upload(job_id, &finish).await? {
        FinishOutcome::Created(job) => {
            tracing::info!(%job_id, records = job.total_records, "accepted batch file");
            shared.wake.notify_waiters();
            job
        }
        FinishOutcome::Existing(job) => job,
    };
    let counts = shared.store.job_counts(job.job_id).await?;
    Ok(pb::SubmitBatchFileResponse {
        job: Some(convert::job(&job, &counts)),
    })
}
