//! The published learning provider list and awarding organisation list: streamed imports
//! by the service desk, and paged listings.

use lrs_proto::identity::v1 as pb;
use lrs_proto::identity::v1::{
    import_awarding_organisation_list_request, import_provider_list_request,
};
use lrs_server::call::Call;
use tonic::{Request, Response, Status, Streaming};

use super::{IdentityGrpc, convert};
use crate::domain::audit::{AuditAction, AuditRecord};
use crate::domain::{FieldViolation, paging};
use crate::error::IdentityError;
use crate::lists::{self, ListFileError, ListFormat, ParsedList, Rejected};
use crate::store::{ImportChange, StoreError};
use futures::future::BoxFuture;

/// Rows written per transaction.
const ROWS_PER_TRANSACTION: usize = 500;
/// Most rejected rows listed in a summary.
const MAX_REJECTED_LISTED: usize = 1000;

/// One message of an upload, whichever list it is for.
enum Part {
    Metadata(pb::ListFileMetadata),
    Chunk(Vec<u8>),
    Empty,
}

/// An uploaded file: its description and its bytes.
struct Upload {
    file_name: String,
    format: Option<ListFormat>,
    bytes: Vec<u8>,
}

/// Why an upload could not be taken in.
enum UploadError {
    /// The stream itself failed (the client went away).
    Stream(Status),
    /// The upload broke the rules.
    Refused(IdentityError),
}

/// Reads the whole upload, metadata first, refusing more than `limit` bytes.
async fn receive<T>(
    stream: &mut Streaming<T>,
    limit: u64,
    part_of: impl Fn(T) -> Part,
) -> Result<Upload, UploadError> {
    let refused = |field: &str, description: &str| {
        UploadError::Refused(vec![FieldViolation::new(field, description)].into())
    };
    let first = stream.message().await.map_err(UploadError::Stream)?;
    let metadata = match first.map(&part_of) {
        Some(Part::Metadata(metadata)) => metadata,
        _ => {
            return Err(refused(
                "metadata",
                "the first message must carry the metadata",
            ));
        }
    };
    let pb::ListFileMetadata { file_name, format } = metadata;
    let format = match pb::ListFileFormat::try_from(format) {
        Ok(pb::ListFileFormat::Unspecified) => None,
        Ok(pb::ListFileFormat::Csv) => Some(ListFormat::Csv),
        Ok(pb::ListFileFormat::Xlsx) => Some(ListFormat::Xlsx),
        Err(_) => return Err(refused("metadata.format", "is not a list file format")),
    };
    if file_name.chars().count() > 255 || file_name.chars().any(char::is_control) {
        return Err(refused(
            "metadata.file_name",
            "must be at most 255 characters without control characters",
        ));
    }

    let mut bytes = Vec::new();
    while let Some(message) = stream.message().await.map_err(UploadError::Stream)? {
        match part_of(message) {
            Part::Chunk(chunk) => {
                let total = u64::try_from(bytes.len() + chunk.len()).unwrap_or(u64::MAX);
                if total > limit {
                    return Err(UploadError::Refused(IdentityError::FileTooLarge { limit }));
                }
                bytes.extend_from_slice(&chunk);
            }
            Part::Metadata(_) => return Err(refused("metadata", "is allowed only first")),
            Part::Empty => {}
        }
    }
    Ok(Upload {
        file_name,
        format,
        bytes,
    })
}

fn file_error(error: ListFileError) -> IdentityError {
    vec![FieldViolation::new("chunk", error.to_string())].into()
}

/// The outcome of an import.
struct Summary {
    added: i64,
    changed: i64,
    unchanged: i64,
    rejected: Vec<Rejected>,
}

impl Summary {
    fn into_proto(self) -> pb::ListImportSummary {
        pb::ListImportSummary {
            added: self.added,
            changed: self.changed,
            unchanged: self.unchanged,
            rejected: i64::try_from(self.rejected.len()).unwrap_or(i64::MAX),
            rejected_rows: self
                .rejected
                .into_iter()
                .take(MAX_REJECTED_LISTED)
                .map(|rejected| pb::RejectedRow {
                    row: rejected.row,
                    reason: rejected.reason,
                })
                .collect(),
        }
    }

    fn describe(&self, file_name: &str) -> String {
        format!(
            "file `{file_name}`: {} added, {} changed, {} unchanged, {} rejected",
            self.added,
            self.changed,
            self.unchanged,
            self.rejected.len()
        )
    }
}

impl IdentityGrpc {
    /// Parses an upload on a blocking thread and writes its entries in chunks, each in one
    /// transaction.
    async fn import<T, Parse, Write>(
        &self,
        upload: Upload,
        parse: Parse,
        write: Write,
    ) -> Result<Summary, IdentityError>
    where
        T: Send + 'static,
        Parse: FnOnce(
                ListFormat,
                &[u8],
                chrono::DateTime<chrono::Utc>,
            ) -> Result<ParsedList<T>, ListFileError>
            + Send
            + 'static,
        Write: Fn(Vec<T>) -> BoxFuture<'static, Result<Vec<ImportChange>, StoreError>>,
    {
        let format = upload
            .format
            .unwrap_or_else(|| lists::detect_format(&upload.bytes));
        let now = crate::now(&self.clock);
        let parsed = tokio::task::spawn_blocking(move || parse(format, &upload.bytes, now))
            .await
            .map_err(|error| IdentityError::Task(format!("the list parser failed: {error}")))?
            .map_err(file_error)?;

        let mut summary = Summary {
            added: 0,
            changed: 0,
            unchanged: 0,
            rejected: parsed.rejected,
        };
        let mut entries = parsed
            .entries
            .into_iter()
            .map(|(_, entry)| entry)
            .peekable();
        while entries.peek().is_some() {
            let chunk: Vec<T> = entries.by_ref().take(ROWS_PER_TRANSACTION).collect();
            for change in write(chunk).await? {
                match change {
                    ImportChange::Added => summary.added += 1,
                    ImportChange::Changed => summary.changed += 1,
                    ImportChange::Unchanged => summary.unchanged += 1,
                }
            }
        }
        Ok(summary)
    }

    /// Finishes an import call: audits it either way and answers with the summary.
    async fn finish_import(
        &self,
        call: &Call,
        record: AuditRecord,
        file_name: &str,
        outcome: Result<Summary, IdentityError>,
    ) -> Result<pb::ListImportSummary, Status> {
        match outcome {
            Ok(summary) => {
                let record = record.with_detail(summary.describe(file_name));
                if let Err(error) = self.store.record_audit(&record).await {
                    return Err(call.fail(IdentityError::from(error)));
                }
                tracing::info!(action = %record.action, detail = %record.detail, "imported list");
                Ok(summary.into_proto())
            }
            Err(error) => Err(self.refuse(call, record, error).await),
        }
    }

    async fn receive_import<T>(
        &self,
        call: &Call,
        record: &AuditRecord,
        stream: &mut Streaming<T>,
        part_of: impl Fn(T) -> Part,
    ) -> Result<Upload, Status> {
        if !call.caller.is_service_desk() {
            let error = IdentityError::PermissionDenied("only the service desk imports lists");
            return Err(self.refuse(call, record.clone(), error).await);
        }
        match receive(stream, self.settings.max_list_file_bytes, part_of).await {
            Ok(upload) => Ok(upload),
            Err(UploadError::Stream(status)) => Err(status),
            Err(UploadError::Refused(error)) => Err(self.refuse(call, record.clone(), error).await),
        }
    }
}

pub(super) async fn import_providers(
    service: &IdentityGrpc,
    request: Request<Streaming<pb::ImportProviderListRequest>>,
) -> Result<Response<pb::ImportProviderListResponse>, Status> {
    let call = service.gate.enter(&request).await?;
    let mut stream = request.into_inner();
    let record = service.audit(&call, AuditAction::ImportProviderList, "list/providers");
    let upload = service
        .receive_import(&call, &record, &mut stream, |message| {
            let pb::ImportProviderListRequest { content } = message;
            match content {
                Some(import_provider_list_request::Content::Metadata(metadata)) => {
                    Part::Metadata(metadata)
                }
                Some(import_provider_list_request::Content::Chunk(chunk)) => Part::Chunk(chunk),
                None => Part::Empty,
            }
        })
        .await?;
    let file_name = upload.file_name.clone();

    let store = service.store.clone();
    let outcome = service
        .import(upload, lists::providers, move |chunk| {
            let store = store.clone();
            Box::pin(async move { store.upsert_providers(&chunk).await })
        })
        .await;
    let summary = service
        .finish_import(&call, record, &file_name, outcome)
        .await?;

    Ok(Response::new(pb::ImportProviderListResponse {
        summary: Some(summary),
    }))
}

pub(super) async fn import_awarding_organisations(
    service: &IdentityGrpc,
    request: Request<Streaming<pb::ImportAwardingOrganisationListRequest>>,
) -> Result<Response<pb::ImportAwardingOrganisationListResponse>, Status> {
    let call = service.gate.enter(&request).await?;
    let mut stream = request.into_inner();
    let record = service.audit(
        &call,
        AuditAction::ImportAwardingOrganisationList,
        "list/awarding-organisations",
    );
    let upload = service
        .receive_import(&call, &record, &mut stream, |message| {
            let pb::ImportAwardingOrganisationListRequest { content } = message;
            match content {
                Some(import_awarding_organisation_list_request::Content::Metadata(metadata)) => {
                    Part::Metadata(metadata)
                }
                Some(import_awarding_organisation_list_request::Content::Chunk(chunk)) => {
                    Part::Chunk(chunk)
                }
                None => Part::Empty,
            }
        })
        .await?;
    let file_name = upload.file_name.clone();

    let store = service.store.clone();
    let outcome = service
        .import(upload, lists::awarding_organisations, move |chunk| {
            let store = store.clone();
            Box::pin(async move { store.upsert_awarding_organisations(&chunk).await })
        })
        .await;
    let summary = service
        .finish_import(&call, record, &file_name, outcome)
        .await?;

    Ok(Response::new(pb::ImportAwardingOrganisationListResponse {
        summary: Some(summary),
    }))
}

pub(super) async fn list_providers(
    service: &IdentityGrpc,
    request: Request<pb::ListProvidersRequest>,
) -> Result<Response<pb::ListProvidersResponse>, Status> {
    let call = service.gate.enter(&request).await?;
    let pb::ListProvidersRequest {
        page_size,
        page_token,
    } = request.into_inner();

    let outcome = async {
        let page = paging::page("providers", 1, page_size, &page_token)?;
        let after = page.after.and_then(|key| key.into_iter().next());
        let found = service.store.list_providers(after, page.size + 1).await?;
        Ok::<_, IdentityError>(paging::finish("providers", found, page.size, |provider| {
            vec![provider.ukprn.clone()]
        }))
    }
    .await;
    let (providers, next_page_token) = outcome.map_err(|error| call.fail(error))?;

    Ok(Response::new(pb::ListProvidersResponse {
        providers: providers.iter().map(convert::provider).collect(),
        next_page_token,
    }))
}

pub(super) async fn list_awarding_organisations(
    service: &IdentityGrpc,
    request: Request<pb::ListAwardingOrganisationsRequest>,
) -> Result<Response<pb::ListAwardingOrganisationsResponse>, Status> {
    let call = service.gate.enter(&request).await?;
    let pb::ListAwardingOrganisationsRequest {
        page_size,
        page_token,
    } = request.into_inner();

    let outcome = async {
        let page = paging::page("awarding-organisations", 1, page_size, &page_token)?;
        let after = page.after.and_then(|key| key.into_iter().next());
        let found = service
            .store
            .list_awarding_organisations(after, page.size + 1)
            .await?;
        Ok::<_, IdentityError>(paging::finish(
            "awarding-organisations",
            found,
            page.size,
            |entry| vec![entry.number.clone()],
        ))
    }
    .await;
    let (entries, next_page_token) = outcome.map_err(|error| call.fail(error))?;

    Ok(Response::new(pb::ListAwardingOrganisationsResponse {
        awarding_organisations: entries.iter().map(convert::awarding_organisation).collect(),
        next_page_token,
    }))
}
