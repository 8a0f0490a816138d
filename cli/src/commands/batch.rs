//! `lrs batch validate|submit|status|output|exceptions|resolve`: batch files.
//!
//! `validate` runs offline, with no suite: it reads the file with the batch service's own
//! validator (the same code `ValidateBatchFile` runs) and prints every file-level fault and
//! every record fault with its row, column, value and reason. It exits non-zero when the file
//! would be rejected (and, with `--strict`, when any record has a fault). The other commands
//! talk to a running suite with the saved sign-in.

use std::io::{BufReader, Read, Write};
use std::ops::ControlFlow;
use std::path::{Path, PathBuf};

use clap::{Subcommand, ValueEnum};
use indicatif::{ProgressBar, ProgressStyle};
use lrs_batch::domain::layout::FileKind;
use lrs_batch::domain::output::output_file_name;
use lrs_batch::domain::parser::{
    FileContext, Interruption, Limits, ParsedRecord, Verdict, parse_file,
};
use lrs_fields::{Clock, SystemClock};
use lrs_proto::batch::v1 as pb;
use lrs_proto::batch::v1::batch_service_client::BatchServiceClient;
use serde::Serialize;
use tonic::codegen::tokio_stream::wrappers::ReceiverStream;

use crate::connection::{AuthChannel, ClientArgs};
use crate::failure::CliError;
use crate::output::{self, Table};

/// Bytes per upload message (the contract allows up to 1 MiB).
const UPLOAD_CHUNK: usize = 256 * 1024;
/// The most record faults `validate` prints (all are counted).
const PRINTED_FAULTS: usize = 1000;

/// Arguments of `lrs batch`.
#[derive(Debug, clap::Args)]
pub struct BatchArgs {
    /// Where the suite is and where the session is kept (not used by `validate`).
    #[command(flatten)]
    pub client: ClientArgs,

    /// Print JSON instead of text (jobs, records, exceptions, decisions).
    #[arg(long = "json", env = "LRS_JSON", global = true)]
    pub json: bool,

    /// What to do.
    #[command(subcommand)]
    pub action: BatchAction,
}

/// What a file is to be used for, as typed on the command line.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum JobTypeArg {
    /// LRB learner file: find each learner and register those not found (`FUL`).
    Ful,
    /// LRB learner file: find each learner, register none (`CHK`).
    Chk,
    /// AO verification file (`VRF_...`).
    Vrf,
}

impl From<JobTypeArg> for pb::JobType {
    fn from(job_type: JobTypeArg) -> Self {
        match job_type {
            JobTypeArg::Ful => pb::JobType::LearnerFindAndRegister,
            JobTypeArg::Chk => pb::JobType::LearnerFindOnly,
            JobTypeArg::Vrf => pb::JobType::Verification,
        }
    }
}

/// Exception states, as typed on the command line.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum ExceptionStatusArg {
    /// Waiting for a decision.
    Open,
    /// Decided with a ULN.
    Resolved,
    /// Rejected.
    Rejected,
}

/// The batch commands.
#[derive(Debug, Subcommand)]
pub enum BatchAction {
    /// Checks a file offline, as the suite would, and reports every fault.
    Validate {
        /// The file (`LRB_<UKPRN>_<DDMMYYYYHHMM>.CSV` or `VRF_...`).
        file: PathBuf,
        /// Your organisation's UKPRN, checked against the file's; unchecked when not given.
        #[arg(long = "ukprn", env = "LRS_UKPRN")]
        ukprn: Option<String>,
        /// Exit non-zero when any record has a fault, not only when the file is rejected.
        #[arg(long = "strict")]
        strict: bool,
    },
    /// Uploads a file, follows its job with a progress bar and writes the output file.
    Submit {
        /// The file.
        file: PathBuf,
        /// What to do with it; by default taken from the name (`LRB_` is `ful`).
        #[arg(long = "job-type", value_enum)]
        job_type: Option<JobTypeArg>,
        /// Idempotency key: submitting again with the same key answers the first job.
        #[arg(long = "request-id", env = "LRS_REQUEST_ID", default_value = "")]
        request_id: String,
        /// Where to write the output file [default: beside the input, `_OUTPUT` added].
        #[arg(long = "output")]
        output: Option<PathBuf>,
        /// Answer the job id at once instead of following the job.
        #[arg(long = "no-wait")]
        no_wait: bool,
    },
    /// Shows a job and its counts.
    Status {
        /// The job's id.
        job_id: String,
    },
    /// Writes a job's output file, or prints its records.
    Output {
        /// The job's id.
        job_id: String,
        /// Where to write the output CSV [default: the output file's name, here].
        #[arg(long = "output")]
        output: Option<PathBuf>,
        /// Print the records as a table instead of writing the CSV.
        #[arg(long = "records")]
        records: bool,
    },
    /// Lists exceptions: of one job, or of every job of your organisation.
    Exceptions {
        /// Only this job's (as `status` and `output` take it).
        #[arg(value_name = "JOB_ID")]
        job: Option<String>,
        /// Only this job's (the same as the argument).
        #[arg(long = "job", conflicts_with = "job")]
        job_id: Option<String>,
        /// Which exceptions.
        #[arg(long = "status", value_enum, default_value = "open")]
        status: ExceptionStatusArg,
    },
    /// Decides an exception.
    Resolve {
        /// The exception's id.
        exception_id: String,
        /// Accept this ULN as the learner's.
        #[arg(long = "accept-uln", group = "decision")]
        accept_uln: Option<String>,
        /// Register the learner with a new ULN.
        #[arg(long = "register-new", group = "decision")]
        register_new: bool,
        /// Correct a column and run the record again (`--correct LastKnownPostCode="CV4 9EE"`,
        /// repeatable).
        #[arg(long = "correct", group = "decision", num_args = 1..)]
        corrections: Vec<String>,
        /// Reject the record, saying why.
        #[arg(long = "reject", group = "decision")]
        reject: Option<String>,
        /// A note kept with the decision.
        #[arg(long = "note", default_value = "")]
        note: String,
        /// Idempotency key.
        #[arg(long = "request-id", env = "LRS_REQUEST_ID", default_value = "")]
        request_id: String,
    },
}

/// Runs a batch command.
pub async fn run(args: BatchArgs) -> Result<(), CliError> {
    let json = args.json;
    match args.action {
        BatchAction::Validate {
            file,
            ukprn,
            strict,
        } => validate(&file, ukprn, strict),
        BatchAction::Submit {
            file,
            job_type,
            request_id,
            output,
            no_wait,
        } => {
            let upload = Upload {
                path: &file,
                job_type,
                request_id,
                output,
                no_wait,
            };
            submit(&args.client, upload, json).await
        }
        BatchAction::Status { job_id } => status(&args.client, job_id, json).await,
        BatchAction::Output {
            job_id,
            output,
            records,
        } => fetch_output(&args.client, job_id, output, records, json).await,
        BatchAction::Exceptions {
            job,
            job_id,
            status,
        } => exceptions(&args.client, job.or(job_id), status, json).await,
        BatchAction::Resolve {
            exception_id,
            accept_uln,
            register_new,
            corrections,
            reject,
            note,
            request_id,
        } => {
            let action = decision(accept_uln, register_new, corrections, reject)?;
            resolve(&args.client, exception_id, action, note, request_id, json).await
        }
    }
}

fn file_name(path: &Path) -> String {
    path.file_name()
        .map(|name| name.to_string_lossy().into_owned())
        .unwrap_or_default()
}

/// `1 record`, `2 records`: a count with its noun, plural when it is not one. A noun ending
/// in a verb (`record has`) takes its plural on the noun (`records have`).
fn count(number: impl Into<u64>, noun: &str) -> String {
    let number = number.into();
    if number == 1 {
        return format!("1 {noun}");
    }
    match noun.split_once(' ') {
        Some((noun, "has")) => format!("{number} {noun}s have"),
        _ => format!("{number} {noun}s"),
    }
}

fn failed(message: String) -> CliError {
    CliError::Start(anyhow::anyhow!(message))
}

fn validate(path: &Path, ukprn: Option<String>, strict: bool) -> Result<(), CliError> {
    let name = file_name(path);
    let file = std::fs::File::open(path).map_err(|source| CliError::ReadInput {
        what: "batch file",
        source,
    })?;
    let context = FileContext {
        kind: FileKind::from_file_name(&name).unwrap_or(FileKind::Learner),
        file_name: name,
        uploader_ukprn: ukprn,
        today: SystemClock.today(),
        limits: Limits::default(),
    };

    let mut faults = Table::new(&["ROW", "COLUMN", "VALUE", "CODE", "REASON"]);
    let mut printed = 0;
    let mut duplicates = Vec::new();
    let mut sink = |record: ParsedRecord| {
        if let Verdict::Duplicate { of_row } = record.verdict
            && duplicates.len() < PRINTED_FAULTS
        {
            duplicates.push(format!(
                "row {} repeats row {of_row} (the same five keys): it will get that row's ULN\n",
                record.row
            ));
        }
        for fault in &record.faults {
            if printed < PRINTED_FAULTS {
                faults.row(vec![
                    fault.row.to_string(),
                    fault.column.clone(),
                    fault.value.clone(),
                    fault.outcome().return_code().unwrap_or("").to_owned(),
                    fault.reason.clone(),
                ]);
                printed += 1;
            }
        }
        ControlFlow::Continue(())
    };
    let summary = parse_file(BufReader::new(file), &context, &mut sink);

    let mut text = String::new();
    for fault in &summary.file_faults {
        let place = match (fault.row, fault.column.as_str()) {
            (0, _) => "file".to_owned(),
            (row, "") => format!("row {row}"),
            (row, column) => format!("row {row}, {column}"),
        };
        text.push_str(&format!("file fault ({place}): {}\n", fault.message));
    }
    let unlisted = summary.file_fault_count as usize - summary.file_faults.len();
    if unlisted > 0 {
        text.push_str(&format!(
            "and {} more\n",
            count(unlisted as u64, "file fault")
        ));
    }
    if printed > 0 {
        text.push_str(&faults.render());
    }
    for line in &duplicates {
        text.push_str(line);
    }
    let version = summary.version.map(|v| v.as_str()).unwrap_or("-");
    text.push_str(&format!(
        "{} (version {version}), {} with faults ({} in all), {}\n",
        count(summary.record_count, "record"),
        summary.faulty_record_count,
        count(summary.record_fault_count, "fault"),
        count(summary.duplicate_count, "duplicate"),
    ));
    output::print(&text)?;

    if let Some(Interruption::TooLarge { limit }) = &summary.interruption {
        return Err(failed(format!(
            "the file is larger than {limit} bytes, the most one file may be"
        )));
    }
    if let Some(Interruption::Read(reason)) = &summary.interruption {
        return Err(failed(format!("the file could not be read: {reason}")));
    }
    if summary.file_fault_count > 0 {
        return Err(failed(format!(
            "the file would be rejected: {}",
            count(summary.file_fault_count, "file fault")
        )));
    }
    if strict && summary.record_fault_count > 0 {
        return Err(failed(format!(
            "{} faults",
            count(summary.faulty_record_count, "record has")
        )));
    }
    Ok(())
}

async fn client(args: &ClientArgs) -> Result<BatchServiceClient<AuthChannel>, CliError> {
    let signed_in = args.signed_in().await?;
    Ok(BatchServiceClient::new(signed_in.channel()))
}

/// The upload stream: the metadata, then the file in pieces read on a thread of its own.
fn upload_stream(
    path: &Path,
    metadata: pb::SubmitBatchFileMetadata,
) -> Result<ReceiverStream<pb::SubmitBatchFileRequest>, CliError> {
    let mut file = std::fs::File::open(path).map_err(|source| CliError::ReadInput {
        what: "batch file",
        source,
    })?;
    let (sender, receiver) = tokio::sync::mpsc::channel(4);
    std::thread::spawn(move || {
        let first = pb::SubmitBatchFileRequest {
            content: Some(pb::submit_batch_file_request::Content::Metadata(metadata)),
        };
        if sender.blocking_send(first).is_err() {
            return;
        }
        let mut buffer = vec![0u8; UPLOAD_CHUNK];
        loop {
            match file.read(&mut buffer) {
                Ok(0) | Err(_) => return,
                Ok(read) => {
                    let chunk = pb::SubmitBatchFileRequest {
                        content: Some(pb::submit_batch_file_request::Content::Chunk(
                            buffer[..read].to_vec(),
                        )),
                    };
                    if sender.blocking_send(chunk).is_err() {
                        return;
                    }
                }
            }
        }
    });
    Ok(ReceiverStream::new(receiver))
}

/// What `lrs batch submit` was asked to do.
struct Upload<'a> {
    path: &'a Path,
    job_type: Option<JobTypeArg>,
    request_id: String,
    output: Option<PathBuf>,
    no_wait: bool,
}

async fn submit(args: &ClientArgs, upload: Upload<'_>, json: bool) -> Result<(), CliError> {
    let Upload {
        path,
        job_type,
        request_id,
        output,
        no_wait,
    } = upload;
    let name = file_name(path);
    let metadata = pb::SubmitBatchFileMetadata {
        file: Some(pb::BatchFileMetadata {
            file_name: name.clone(),
            job_type: job_type
                .map(pb::JobType::from)
                .unwrap_or(pb::JobType::Unspecified) as i32,
        }),
        request_id,
    };
    let mut batch = client(args).await?;
    let stream = upload_stream(path, metadata)?;
    let job = batch
        .submit_batch_file(stream)
        .await?
        .into_inner()
        .job
        .unwrap_or_default();
    if no_wait {
        if json {
            return output::print_json(&JobView::of(&job));
        }
        return output::print(&format!("submitted job {}\n", job.job_id));
    }
    if !json {
        output::print(&format!("submitted job {}\n", job.job_id))?;
    }

    let total = job.counts.as_ref().map(|c| c.total).unwrap_or(0).max(0) as u64;
    // With --json the bar stays off standard output's way: only the job is printed there.
    let bar = if json {
        ProgressBar::hidden()
    } else {
        ProgressBar::new(total)
    };
    let style = ProgressStyle::with_template("{bar:40} {pos}/{len} records {msg}")
        .unwrap_or_else(|_| ProgressStyle::default_bar());
    bar.set_style(style);
    let mut watch = batch
        .watch_batch_job(pb::WatchBatchJobRequest {
            job_id: job.job_id.clone(),
        })
        .await?
        .into_inner();
    let mut last = job.clone();
    while let Some(state) = watch.message().await? {
        if let Some(state) = state.job {
            let processed = state.counts.as_ref().map(|c| c.processed).unwrap_or(0);
            bar.set_position(processed.max(0) as u64);
            bar.set_message(status_name(state.status));
            last = state;
        }
    }
    bar.finish();
    if !json {
        output::print(&JobView::of(&last).details())?;
    }
    if last.status != pb::JobStatus::Completed as i32 {
        if json {
            output::print_json(&JobView::of(&last))?;
        }
        return Err(failed(format!(
            "the job ended {}",
            status_name(last.status)
        )));
    }

    let target = output.unwrap_or_else(|| path.with_file_name(output_file_name(&name)));
    write_csv(&mut batch, &job.job_id, &target).await?;
    if json {
        let view = JobView {
            output_file: Some(target.display().to_string()),
            ..JobView::of(&last)
        };
        return output::print_json(&view);
    }
    output::print(&format!("output written to {}\n", target.display()))
}

fn status_name(status: i32) -> String {
    let name = pb::JobStatus::try_from(status)
        .unwrap_or(pb::JobStatus::Unspecified)
        .as_str_name();
    output::enum_name(name, "JOB_STATUS_")
}

/// A job as printed.
#[derive(Debug, Serialize)]
struct JobView {
    job_id: String,
    file_name: String,
    status: String,
    records: i64,
    processed: i64,
    new_ulns: i64,
    found: i64,
    possible_matches: i64,
    too_many_matches: i64,
    not_found: i64,
    rejected: i64,
    duplicates: i64,
    verified: i64,
    not_verified: i64,
    open_exceptions: i64,
    started: String,
    ended: String,
    /// Where `submit` wrote the output file.
    #[serde(skip_serializing_if = "Option::is_none")]
    output_file: Option<String>,
}

impl JobView {
    fn of(job: &pb::BatchJob) -> Self {
        let counts = job.counts.unwrap_or_default();
        Self {
            job_id: job.job_id.clone(),
            file_name: job.file_name.clone(),
            status: status_name(job.status),
            records: counts.total,
            processed: counts.processed,
            new_ulns: counts.new_ulns,
            found: counts.found + counts.linked_master,
            possible_matches: counts.possible_matches,
            too_many_matches: counts.too_many_matches,
            not_found: counts.not_found,
            rejected: counts.rejected,
            duplicates: counts.duplicates,
            verified: counts.verified,
            not_verified: counts.not_verified,
            open_exceptions: job.open_exception_count,
            started: output::timestamp(job.start_time.as_ref()),
            ended: output::timestamp(job.end_time.as_ref()),
            output_file: None,
        }
    }

    fn details(&self) -> String {
        output::details(&[
            ("job", self.job_id.clone()),
            ("file", self.file_name.clone()),
            ("status", self.status.clone()),
            ("records", self.records.to_string()),
            ("processed", self.processed.to_string()),
            ("new ULNs", self.new_ulns.to_string()),
            ("found", self.found.to_string()),
            ("possible matches", self.possible_matches.to_string()),
            ("too many matches", self.too_many_matches.to_string()),
            ("not found", self.not_found.to_string()),
            ("rejected", self.rejected.to_string()),
            ("duplicates", self.duplicates.to_string()),
            ("verified", self.verified.to_string()),
            ("not verified", self.not_verified.to_string()),
            ("open exceptions", self.open_exceptions.to_string()),
            ("started", self.started.clone()),
            ("ended", self.ended.clone()),
        ])
    }
}

/// One record of a job's output as printed.
#[derive(Debug, Serialize)]
struct RecordView {
    row: i64,
    mis_identifier: String,
    outcome: String,
    return_code: String,
    uln: String,
    reasons: Vec<String>,
}

impl RecordView {
    fn of(result: pb::RecordResult) -> Self {
        Self {
            row: result.row,
            mis_identifier: result.mis_identifier,
            outcome: outcome_name(result.outcome),
            return_code: result.return_code,
            uln: result.result_uln,
            reasons: result.reasons,
        }
    }
}

/// An exception as printed.
#[derive(Debug, Serialize)]
struct ExceptionView {
    exception_id: String,
    job_id: String,
    row: i64,
    mis_identifier: String,
    outcome: String,
    return_code: String,
    candidates: Vec<CandidateView>,
}

/// A learner offered for an exception, with its score.
#[derive(Debug, Serialize)]
struct CandidateView {
    uln: String,
    score: i32,
}

impl ExceptionView {
    fn of(exception: pb::BatchException) -> Self {
        let candidates = exception
            .candidates
            .iter()
            .filter_map(|candidate| {
                let learner = candidate.learner.as_ref()?;
                Some(CandidateView {
                    uln: learner.uln.clone(),
                    score: candidate.score,
                })
            })
            .collect();
        Self {
            exception_id: exception.exception_id,
            job_id: exception.job_id,
            row: exception.row,
            mis_identifier: exception.mis_identifier,
            outcome: outcome_name(exception.outcome),
            return_code: exception.return_code,
            candidates,
        }
    }
}

/// A decided exception as printed.
#[derive(Debug, Serialize)]
struct DecisionView {
    exception_id: String,
    status: String,
    row: i64,
    outcome: String,
    uln: String,
    reasons: Vec<String>,
}

fn outcome_name(outcome: i32) -> String {
    let name = pb::RecordOutcome::try_from(outcome)
        .unwrap_or(pb::RecordOutcome::Unspecified)
        .as_str_name();
    output::enum_name(name, "RECORD_OUTCOME_")
}

async fn status(args: &ClientArgs, job_id: String, json: bool) -> Result<(), CliError> {
    let mut batch = client(args).await?;
    let job = batch
        .get_batch_job(pb::GetBatchJobRequest { job_id })
        .await?
        .into_inner()
        .job
        .unwrap_or_default();
    let view = JobView::of(&job);
    if json {
        output::print_json(&view)
    } else {
        output::print(&view.details())
    }
}

async fn write_csv(
    batch: &mut BatchServiceClient<AuthChannel>,
    job_id: &str,
    target: &Path,
) -> Result<(), CliError> {
    let request = pb::GetBatchOutputRequest {
        job_id: job_id.to_owned(),
        format: pb::OutputFormat::Csv as i32,
        after_row: 0,
    };
    let mut stream = batch.get_batch_output(request).await?.into_inner();
    let mut file = std::fs::File::create(target).map_err(CliError::Stdout)?;
    while let Some(message) = stream.message().await? {
        if let Some(pb::get_batch_output_response::Content::Csv(piece)) = message.content {
            file.write_all(&piece.data).map_err(CliError::Stdout)?;
        }
    }
    file.flush().map_err(CliError::Stdout)
}

async fn fetch_output(
    args: &ClientArgs,
    job_id: String,
    output_path: Option<PathBuf>,
    records: bool,
    json: bool,
) -> Result<(), CliError> {
    let mut batch = client(args).await?;
    if !records {
        let job = batch
            .get_batch_job(pb::GetBatchJobRequest {
                job_id: job_id.clone(),
            })
            .await?
            .into_inner()
            .job
            .unwrap_or_default();
        let target = output_path.unwrap_or_else(|| PathBuf::from(output_file_name(&job.file_name)));
        write_csv(&mut batch, &job_id, &target).await?;
        if json {
            let view = JobView {
                output_file: Some(target.display().to_string()),
                ..JobView::of(&job)
            };
            return output::print_json(&view);
        }
        return output::print(&format!("output written to {}\n", target.display()));
    }

    let request = pb::GetBatchOutputRequest {
        job_id,
        format: pb::OutputFormat::Records as i32,
        after_row: 0,
    };
    let mut stream = batch.get_batch_output(request).await?.into_inner();
    let mut records = Vec::new();
    while let Some(message) = stream.message().await? {
        if let Some(pb::get_batch_output_response::Content::Records(page)) = message.content {
            records.extend(page.results.into_iter().map(RecordView::of));
        }
    }
    if json {
        return output::print_json(&records);
    }
    let mut table = Table::new(&["ROW", "MIS ID", "OUTCOME", "CODE", "ULN", "REASONS"]);
    for record in records {
        table.row(vec![
            record.row.to_string(),
            record.mis_identifier,
            record.outcome,
            record.return_code,
            record.uln,
            record.reasons.join("; "),
        ]);
    }
    output::print(&table.render())
}

async fn exceptions(
    args: &ClientArgs,
    job_id: Option<String>,
    status: ExceptionStatusArg,
    json: bool,
) -> Result<(), CliError> {
    let mut batch = client(args).await?;
    let status = match status {
        ExceptionStatusArg::Open => pb::ExceptionStatus::Open,
        ExceptionStatusArg::Resolved => pb::ExceptionStatus::Resolved,
        ExceptionStatusArg::Rejected => pb::ExceptionStatus::Rejected,
    };
    let mut listed = Vec::new();
    let mut page_token = String::new();
    loop {
        let page = batch
            .list_batch_exceptions(pb::ListBatchExceptionsRequest {
                page_size: 200,
                page_token: page_token.clone(),
                job_id: job_id.clone().unwrap_or_default(),
                status: status as i32,
                outcome: 0,
            })
            .await?
            .into_inner();
        listed.extend(page.exceptions.into_iter().map(ExceptionView::of));
        if page.next_page_token.is_empty() {
            break;
        }
        page_token = page.next_page_token;
    }
    if json {
        return output::print_json(&listed);
    }
    let mut table = Table::new(&[
        "EXCEPTION",
        "ROW",
        "MIS ID",
        "OUTCOME",
        "CODE",
        "CANDIDATES",
    ]);
    for exception in listed {
        let candidates: Vec<String> = exception
            .candidates
            .iter()
            .map(|candidate| format!("{} ({})", candidate.uln, candidate.score))
            .collect();
        table.row(vec![
            exception.exception_id,
            exception.row.to_string(),
            exception.mis_identifier,
            exception.outcome,
            exception.return_code,
            candidates.join(", "),
        ]);
    }
    output::print(&table.render())
}

fn decision(
    accept_uln: Option<String>,
    register_new: bool,
    corrections: Vec<String>,
    reject: Option<String>,
) -> Result<pb::resolve_batch_exception_request::Action, CliError> {
    use pb::resolve_batch_exception_request::Action;
    if let Some(uln) = accept_uln {
        return Ok(Action::AcceptUln(pb::AcceptUln { uln }));
    }
    if register_new {
        return Ok(Action::RegisterNew(pb::RegisterNew {}));
    }
    if let Some(reason) = reject {
        return Ok(Action::Reject(pb::RejectRecord { reason }));
    }
    if corrections.is_empty() {
        return Err(failed(
            "say what to do: --accept-uln, --register-new, --correct or --reject".to_owned(),
        ));
    }
    let corrections = corrections
        .iter()
        .map(|pair| match pair.split_once('=') {
            Some((heading, value)) => Ok(pb::BatchField {
                heading: heading.to_owned(),
                value: value.to_owned(),
            }),
            None => Err(failed(format!("`{pair}` is not Heading=value"))),
        })
        .collect::<Result<Vec<_>, _>>()?;
    Ok(Action::CorrectAndRerun(pb::CorrectAndRerun { corrections }))
}

async fn resolve(
    args: &ClientArgs,
    exception_id: String,
    action: pb::resolve_batch_exception_request::Action,
    note: String,
    request_id: String,
    json: bool,
) -> Result<(), CliError> {
    let mut batch = client(args).await?;
    let answer = batch
        .resolve_batch_exception(pb::ResolveBatchExceptionRequest {
            exception_id,
            action: Some(action),
            note,
            request_id,
        })
        .await?
        .into_inner();
    let result = answer.result.unwrap_or_default();
    let exception = answer.exception.unwrap_or_default();
    let status = pb::ExceptionStatus::try_from(exception.status)
        .unwrap_or(pb::ExceptionStatus::Unspecified)
        .as_str_name();
    let view = DecisionView {
        exception_id: exception.exception_id,
        status: output::enum_name(status, "EXCEPTION_STATUS_"),
        row: result.row,
        outcome: outcome_name(result.outcome),
        uln: result.result_uln,
        reasons: result.reasons,
    };
    if json {
        return output::print_json(&view);
    }
    output::print(&output::details(&[
        ("exception", view.exception_id),
        ("status", view.status),
        ("row", view.row.to_string()),
        ("outcome", view.outcome),
        ("ULN", view.uln),
        ("reasons", view.reasons.join("; ")),
    ]))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn counts_agree_with_their_number() {
        assert_eq!(count(1u64, "duplicate"), "1 duplicate");
        assert_eq!(count(0u64, "duplicate"), "0 duplicates");
        assert_eq!(count(2u64, "file fault"), "2 file faults");
        assert_eq!(count(1u64, "record has"), "1 record has");
        assert_eq!(count(3u64, "record has"), "3 records have");
    }
}
