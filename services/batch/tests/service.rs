//! The batch service through its gRPC contract, on SQLite and (with `DATABASE_URL`)
//! PostgreSQL: the samples come to their README outcomes, uploads are all-or-nothing and
//! retry-safe, other organisations see nothing, exceptions are resolved, and a worker that dies
//! mid-job loses and duplicates nothing.

mod common;

use std::collections::HashMap;
use std::sync::atomic::Ordering;
use std::time::Duration;

use common::*;
use futures::StreamExt;
use lrs_fields::Clock;
use lrs_proto::batch::v1 as pb;
use lrs_server::auth::Role;
use lrs_server::error::{status_bad_fields, status_reason};
use tonic::Code;

const NAME_2A: &str = "LRB_10000001_031220261200.CSV";
const NAME_3A: &str = "LRB_10000001_031220261300.CSV";

async fn submit(
    h: &Harness,
    token: &str,
    name: &str,
    bytes: &[u8],
    request_id: &str,
) -> Result<pb::BatchJob, tonic::Status> {
    let response = h
        .client()
        .submit_batch_file(request(token, submit_stream(name, bytes, 700, request_id)))
        .await?;
    Ok(response.into_inner().job.expect("a job"))
}

async fn records(h: &Harness, token: &str, job_id: &str) -> Vec<pb::RecordResult> {
    let message = pb::GetBatchOutputRequest {
        job_id: job_id.into(),
        format: pb::OutputFormat::Records as i32,
        after_row: 0,
    };
    let mut stream = h
        .client()
        .get_batch_output(request(token, message))
        .await
        .expect("output")
        .into_inner();
    let mut found = Vec::new();
    while let Some(message) = stream.next().await {
        if let Some(pb::get_batch_output_response::Content::Records(page)) =
            message.expect("a page").content
        {
            found.extend(page.results);
        }
    }
    found
}

async fn csv(h: &Harness, token: &str, job_id: &str) -> String {
    let message = pb::GetBatchOutputRequest {
        job_id: job_id.into(),
        format: pb::OutputFormat::Csv as i32,
        after_row: 0,
    };
    let mut stream = h
        .client()
        .get_batch_output(request(token, message))
        .await
        .expect("output")
        .into_inner();
    let mut bytes = Vec::new();
    while let Some(message) = stream.next().await {
        if let Some(pb::get_batch_output_response::Content::Csv(piece)) =
            message.expect("a piece").content
        {
            assert!(piece.file_name.ends_with("_OUTPUT.CSV"));
            bytes.extend(piece.data);
        }
    }
    String::from_utf8(bytes).expect("UTF-8 output")
}

async fn job(h: &Harness, token: &str, job_id: &str) -> Result<pb::BatchJob, tonic::Status> {
    let message = pb::GetBatchJobRequest {
        job_id: job_id.into(),
    };
    Ok(h.client()
        .get_batch_job(request(token, message))
        .await?
        .into_inner()
        .job
        .expect("a job"))
}

/// Follows a job with `WatchBatchJob`.
async fn watch(
    h: &Harness,
    token: &str,
    job_id: &str,
) -> tonic::Streaming<pb::WatchBatchJobResponse> {
    let message = pb::WatchBatchJobRequest {
        job_id: job_id.into(),
    };
    h.client()
        .watch_batch_job(request(token, message))
        .await
        .expect("watching")
        .into_inner()
}

fn batch_user(h: &Harness) -> String {
    h.token(ORG_A, "10000001", vec![Role::BatchUser])
}

fn by_mis(records: &[pb::RecordResult]) -> HashMap<String, pb::RecordResult> {
    records
        .iter()
        .map(|r| (r.mis_identifier.clone(), r.clone()))
        .collect()
}

fn outcome(record: &pb::RecordResult) -> pb::RecordOutcome {
    pb::RecordOutcome::try_from(record.outcome).expect("a known outcome")
}

#[tokio::test]
async fn the_samples_come_to_their_readme_outcomes() {
    for database in databases().await {
        let h = Harness::start(database).await;
        let token = batch_user(&h);

        let submitted = submit(&h, &token, NAME_2A, &fixture(NAME_2A), "")
            .await
            .expect("accepted");
        assert_eq!(submitted.status, pb::JobStatus::Queued as i32);
        h.process_all().await;
        let done = job(&h, &token, &submitted.job_id).await.expect("the job");
        assert_eq!(done.status, pb::JobStatus::Completed as i32);
        let counts = done.counts.expect("counts");
        assert_eq!(
            (
                counts.total,
                counts.processed,
                counts.new_ulns,
                counts.rejected,
                counts.duplicates
            ),
            (16, 16, 7, 8, 1)
        );

        let results = records(&h, &token, &submitted.job_id).await;
        assert_eq!(
            results.iter().map(|r| r.row).collect::<Vec<_>>(),
            (2..=17).collect::<Vec<_>>(),
            "input order"
        );
        let results = by_mis(&results);
        for mis in [
            "STU0001", "STU0002", "STU0003", "STU0004", "STU0005", "STU0007", "STU0015",
        ] {
            let record = &results[mis];
            assert_eq!(
                outcome(record),
                pb::RecordOutcome::NewUln,
                "{mis}: {:?}",
                record.reasons
            );
            assert_eq!(record.result_uln.len(), 10, "{mis}");
        }
        let duplicate = &results["STU0006"];
        assert_eq!(outcome(duplicate), pb::RecordOutcome::DuplicateInFile);
        assert_eq!(duplicate.duplicate_of_row, 2);
        assert_eq!(duplicate.result_uln, results["STU0001"].result_uln);
        for (mis, code) in [
            ("STU0008", "RC011"),
            ("STU0009", "RC013"),
            ("STU0010", "RC011"),
            ("STU0011", "RC006"),
            ("STU0012", "RC011"),
            ("STU0013", "RC011"),
            ("STU0014", "RC011"),
            ("STU0016", "RC011"),
        ] {
            assert_eq!(results[mis].return_code, code, "{mis}");
            assert!(!results[mis].faults.is_empty(), "{mis}");
        }
        assert_eq!(h.register.registrations.load(Ordering::SeqCst), 7);

        let output = csv(&h, &token, &submitted.job_id).await;
        let lines: Vec<&str> = output.split("\r\n").filter(|l| !l.is_empty()).collect();
        assert_eq!(lines.len(), 17);
        assert!(
            lines[0].starts_with(
                "\"FileVersion\",\"FileName\",\"UKPRN\",\"LearnerRecordCount\",\"ULN\""
            )
        );
        assert!(
            lines[0].ends_with("\"Notes\",\"ReturnCode\",\"Outcome\",\"ResultULN\",\"Reasons\"")
        );
        assert!(
            lines[1]
                .starts_with("\"2A\",\"Autumn intake 2026\",\"10000001\",\"16\",\"\",\"STU0001\"")
        );
        assert!(
            lines[8].contains("\"RC011\",\"INCORRECT_FORMAT\""),
            "{}",
            lines[8]
        );
        assert!(
            lines[9].contains("\"RC013\",\"AGE_OUT_OF_RANGE\""),
            "{}",
            lines[9]
        );

        let submitted = submit(&h, &token, NAME_3A, &fixture(NAME_3A), "")
            .await
            .expect("accepted");
        h.process_all().await;
        let results = by_mis(&records(&h, &token, &submitted.job_id).await);
        for mis in ["P3A001", "P3A002", "P3A006"] {
            assert_eq!(outcome(&results[mis]), pb::RecordOutcome::NewUln, "{mis}");
        }
        assert_eq!(results["P3A003"].return_code, "RC012");
        assert_eq!(results["P3A004"].return_code, "RC012");
        assert_eq!(results["P3A005"].return_code, "RC011");

        // The same file again finds every learner it registered.
        let again = submit(&h, &token, NAME_2A, &fixture(NAME_2A), "")
            .await
            .expect("accepted");
        h.process_all().await;
        let results = by_mis(&records(&h, &token, &again.job_id).await);
        assert_eq!(outcome(&results["STU0001"]), pb::RecordOutcome::Found);
        assert_eq!(h.register.registrations.load(Ordering::SeqCst), 10);
    }
}

#[tokio::test]
async fn validation_reports_without_storing_anything() {
    for database in databases().await {
        let h = Harness::start(database).await;
        let token = batch_user(&h);
        let report = h
            .client()
            .validate_batch_file(request(&token, validate_stream(NAME_2A, &fixture(NAME_2A))))
            .await
            .expect("validated")
            .into_inner();
        assert!(!report.valid);
        assert!(report.file_faults.is_empty());
        assert_eq!(report.record_count, 16);
        assert_eq!(report.faulty_record_count, 8);
        assert_eq!(report.file_version, "2A");
        let stu0009 = report
            .record_faults
            .iter()
            .find(|f| f.row == 10)
            .expect("row 10");
        assert_eq!(
            (stu0009.column.as_str(), stu0009.return_code.as_str()),
            ("DateOfBirth", "RC013")
        );

        let bad = String::from_utf8(fixture(NAME_2A))
            .expect("utf-8")
            .replacen("GivenName", "Givenname", 1);
        let report = h
            .client()
            .validate_batch_file(request(
                &token,
                validate_stream("LRB_10000002_031220261200.CSV", bad.as_bytes()),
            ))
            .await
            .expect("validated")
            .into_inner();
        let kinds: Vec<i32> = report.file_faults.iter().map(|f| f.kind).collect();
        assert!(kinds.contains(&(pb::FileFaultKind::Headings as i32)));
        assert!(kinds.contains(&(pb::FileFaultKind::Ukprn as i32)));
        assert_eq!(report.expected_headings.len(), 30);

        let listed = h
            .client()
            .list_batch_jobs(request(&token, pb::ListBatchJobsRequest::default()))
            .await
            .expect("listed")
            .into_inner();
        assert!(listed.jobs.is_empty());
    }
}

#[tokio::test]
async fn rejected_and_broken_uploads_leave_no_job_and_retries_answer_the_first() {
    for database in databases().await {
        let h = Harness::start(database).await;
        let token = batch_user(&h);

        let wrong_count = String::from_utf8(fixture(NAME_2A))
            .expect("utf-8")
            .replacen("\"16\"", "\"17\"", 1);
        let refused = submit(&h, &token, NAME_2A, wrong_count.as_bytes(), "")
            .await
            .expect_err("refused");
        assert_eq!(refused.code(), Code::InvalidArgument);
        assert!(
            status_bad_fields(&refused)
                .iter()
                .any(|f| f.contains("LearnerRecordCount")),
            "{refused:?}"
        );

        let lower = submit(
            &h,
            &token,
            "LRB_10000001_031220261200.csv",
            &fixture(NAME_2A),
            "",
        )
        .await
        .expect_err("refused");
        assert_eq!(lower.code(), Code::InvalidArgument);

        let broken = futures::stream::iter(vec![
            Ok(pb::SubmitBatchFileRequest {
                content: Some(pb::submit_batch_file_request::Content::Metadata(
                    pb::SubmitBatchFileMetadata {
                        file: Some(pb::BatchFileMetadata {
                            file_name: NAME_2A.into(),
                            job_type: 0,
                        }),
                        request_id: String::new(),
                    },
                )),
            }),
            Ok(pb::SubmitBatchFileRequest {
                content: Some(pb::submit_batch_file_request::Content::Chunk(
                    fixture(NAME_2A)[..900].to_vec(),
                )),
            }),
            Err(tonic::Status::cancelled("client went away")),
        ]);
        let outcome = h
            .client()
            .submit_batch_file(request(
                &token,
                broken
                    .filter_map(|m: Result<_, tonic::Status>| async move { m.ok() })
                    .take(2),
            ))
            .await;
        assert!(outcome.is_err(), "a cut-off file is refused");

        let listed = h
            .client()
            .list_batch_jobs(request(&token, pb::ListBatchJobsRequest::default()))
            .await
            .expect("listed")
            .into_inner();
        assert!(listed.jobs.is_empty(), "no job from refused uploads");

        let first = submit(&h, &token, NAME_2A, &fixture(NAME_2A), "retry-1")
            .await
            .expect("accepted");
        let again = submit(&h, &token, NAME_2A, &fixture(NAME_2A), "retry-1")
            .await
            .expect("accepted");
        assert_eq!(first.job_id, again.job_id);
        let listed = h
            .client()
            .list_batch_jobs(request(&token, pb::ListBatchJobsRequest::default()))
            .await
            .expect("listed")
            .into_inner();
        assert_eq!(listed.jobs.len(), 1);
    }
}

#[tokio::test]
async fn files_over_the_limits_are_refused_naming_the_limit() {
    for database in databases().await {
        let h = Harness::start_with(database, |config| {
            config.max_file_bytes = 8000;
            config.max_records = 10;
        })
        .await;
        let token = batch_user(&h);
        let text = String::from_utf8(fixture(NAME_2A)).expect("utf-8");
        let too_many = submit(&h, &token, NAME_2A, text.as_bytes(), "")
            .await
            .expect_err("too many");
        assert_eq!(too_many.code(), Code::ResourceExhausted);
        assert_eq!(
            status_reason(&too_many).as_deref(),
            Some("TOO_MANY_RECORDS")
        );
        assert!(
            too_many.message().contains("10 records"),
            "{}",
            too_many.message()
        );

        let lines: Vec<&str> = text.lines().collect();
        let row = lines[2];
        let long = format!("{}\"{}\"\r\n", &row[..row.len() - 2], "n".repeat(900));
        let big = format!("{}\r\n{}\r\n{}", lines[0], lines[1], long.repeat(9));
        let too_big = submit(&h, &token, NAME_2A, big.as_bytes(), "")
            .await
            .expect_err("too large");
        assert_eq!(too_big.code(), Code::ResourceExhausted);
        assert_eq!(status_reason(&too_big).as_deref(), Some("FILE_TOO_LARGE"));
        assert!(too_big.message().contains("8000"), "{}", too_big.message());
    }
}

#[tokio::test]
async fn other_organisations_and_roles_see_nothing() {
    for database in databases().await {
        let h = Harness::start(database).await;
        let token = batch_user(&h);
        let submitted = submit(&h, &token, NAME_2A, &fixture(NAME_2A), "")
            .await
            .expect("accepted");
        h.process_all().await;

        let stranger = h.token(ORG_B, "10000002", vec![Role::BatchUser]);
        let hidden = job(&h, &stranger, &submitted.job_id)
            .await
            .expect_err("hidden");
        assert_eq!(hidden.code(), Code::NotFound);
        assert_eq!(status_reason(&hidden).as_deref(), Some("JOB_NOT_FOUND"));
        let cancel = h
            .client()
            .cancel_batch_job(request(
                &stranger,
                pb::CancelBatchJobRequest {
                    job_id: submitted.job_id.clone(),
                },
            ))
            .await
            .expect_err("hidden");
        assert_eq!(cancel.code(), Code::NotFound);
        let output = h
            .client()
            .get_batch_output(request(
                &stranger,
                pb::GetBatchOutputRequest {
                    job_id: submitted.job_id.clone(),
                    format: 0,
                    after_row: 0,
                },
            ))
            .await
            .expect_err("hidden");
        assert_eq!(output.code(), Code::NotFound);
        let theirs = h
            .client()
            .list_batch_jobs(request(&stranger, pb::ListBatchJobsRequest::default()))
            .await
            .expect("listed")
            .into_inner();
        assert!(theirs.jobs.is_empty());
        let exceptions = h
            .client()
            .list_batch_exceptions(request(&token, pb::ListBatchExceptionsRequest::default()))
            .await
            .expect("listed")
            .into_inner();
        let some = exceptions
            .exceptions
            .first()
            .expect("rejected records are exceptions");
        let resolve = h
            .client()
            .resolve_batch_exception(request(
                &stranger,
                pb::ResolveBatchExceptionRequest {
                    exception_id: some.exception_id.clone(),
                    action: Some(pb::resolve_batch_exception_request::Action::Reject(
                        pb::RejectRecord {
                            reason: "no".into(),
                        },
                    )),
                    ..Default::default()
                },
            ))
            .await
            .expect_err("hidden");
        assert_eq!(resolve.code(), Code::NotFound);

        let online = h.token(ORG_A, "10000001", vec![Role::OnlineUser]);
        let denied = job(&h, &online, &submitted.job_id)
            .await
            .expect_err("no batch role");
        assert_eq!(denied.code(), Code::PermissionDenied);
        let denied = submit(&h, &online, NAME_2A, &fixture(NAME_2A), "")
            .await
            .expect_err("no batch role");
        assert_eq!(denied.code(), Code::PermissionDenied);

        let desk = h.token(ORG_B, "", vec![Role::ServiceDesk]);
        assert!(
            job(&h, &desk, &submitted.job_id).await.is_ok(),
            "the service desk sees every job"
        );
    }
}

#[tokio::test]
async fn exceptions_are_resolved_and_the_output_follows() {
    for database in databases().await {
        let h = Harness::start(database).await;
        let token = batch_user(&h);
        // Two learners share Hartley's family name and date of birth with a different given
        // name: the file's Amelia Hartley becomes a possible match.
        let amy = h
            .register
            .add("Amy", "Hartley", (2009, 3, 14), 2, "CV4 9EE");
        h.register
            .add("Emily", "Hartley", (2009, 3, 14), 2, "CV1 1AA");
        let submitted = submit(&h, &token, NAME_2A, &fixture(NAME_2A), "")
            .await
            .expect("accepted");
        h.process_all().await;
        let results = by_mis(&records(&h, &token, &submitted.job_id).await);
        let stu0001 = &results["STU0001"];
        assert_eq!(outcome(stu0001), pb::RecordOutcome::PossibleMatch);
        assert_eq!(
            outcome(&results["STU0006"]),
            pb::RecordOutcome::DuplicateInFile
        );
        assert!(
            results["STU0006"].result_uln.is_empty(),
            "no ULN until row 2 has one"
        );

        let list = |status: pb::ExceptionStatus| pb::ListBatchExceptionsRequest {
            job_id: submitted.job_id.clone(),
            status: status as i32,
            ..Default::default()
        };
        let open = h
            .client()
            .list_batch_exceptions(request(&token, list(pb::ExceptionStatus::Open)))
            .await
            .expect("listed")
            .into_inner();
        assert_eq!(
            open.exceptions.len(),
            9,
            "one possible match and eight faulty records"
        );
        let possible = open.exceptions.iter().find(|e| e.row == 2).expect("row 2");
        assert_eq!(possible.candidates.len(), 2);
        assert_eq!(
            possible
                .fields
                .iter()
                .find(|f| f.heading == "GivenName")
                .map(|f| f.value.as_str()),
            Some("Amelia")
        );

        use pb::resolve_batch_exception_request::Action;
        let resolve =
            |id: &str, action: Action, request_id: &str| pb::ResolveBatchExceptionRequest {
                exception_id: id.to_owned(),
                action: Some(action),
                note: "checked with the learner".into(),
                request_id: request_id.into(),
            };
        let not_listed = h
            .client()
            .resolve_batch_exception(request(
                &token,
                resolve(
                    &possible.exception_id,
                    Action::AcceptUln(pb::AcceptUln {
                        uln: "1026893096".into(),
                    }),
                    "",
                ),
            ))
            .await
            .expect_err("not a candidate and not on the register");
        assert_eq!(
            status_reason(&not_listed).as_deref(),
            Some("ULN_DOES_NOT_MATCH_RECORD")
        );

        let accepted = h
            .client()
            .resolve_batch_exception(request(
                &token,
                resolve(
                    &possible.exception_id,
                    Action::AcceptUln(pb::AcceptUln { uln: amy.clone() }),
                    "accept-1",
                ),
            ))
            .await
            .expect("accepted")
            .into_inner();
        let result = accepted.result.expect("a result");
        assert_eq!(
            (outcome(&result), result.result_uln.as_str()),
            (pb::RecordOutcome::Found, amy.as_str())
        );
        let exception = accepted.exception.expect("the exception");
        assert_eq!(exception.status, pb::ExceptionStatus::Resolved as i32);
        let resolution = exception.resolution.expect("a resolution");
        assert_eq!(resolution.action, pb::ResolutionAction::AcceptUln as i32);
        assert!(!resolution.resolved_by.is_empty());
        let replay = h
            .client()
            .resolve_batch_exception(request(
                &token,
                resolve(
                    &possible.exception_id,
                    Action::AcceptUln(pb::AcceptUln { uln: amy.clone() }),
                    "accept-1",
                ),
            ))
            .await
            .expect("a retry answers the first decision");
        assert_eq!(
            replay.into_inner().result.expect("a result").result_uln,
            amy
        );
        let twice = h
            .client()
            .resolve_batch_exception(request(
                &token,
                resolve(
                    &possible.exception_id,
                    Action::Reject(pb::RejectRecord { reason: "x".into() }),
                    "",
                ),
            ))
            .await
            .expect_err("decided already");
        assert_eq!(status_reason(&twice).as_deref(), Some("EXCEPTION_NOT_OPEN"));

        let results = by_mis(&records(&h, &token, &submitted.job_id).await);
        assert_eq!(
            results["STU0001"].result_uln, amy,
            "the output shows the decision"
        );
        assert_eq!(
            results["STU0006"].result_uln, amy,
            "and so does the duplicate of row 2"
        );

        // STU0008's postcode was wrong: correct it and run it again.
        let faulty = open
            .exceptions
            .iter()
            .find(|e| e.mis_identifier == "STU0008")
            .expect("STU0008");
        let register_first = h
            .client()
            .resolve_batch_exception(request(
                &token,
                resolve(
                    &faulty.exception_id,
                    Action::RegisterNew(pb::RegisterNew {}),
                    "",
                ),
            ))
            .await
            .expect_err("faults first");
        assert_eq!(
            status_reason(&register_first).as_deref(),
            Some("REGISTRATION_NOT_ALLOWED")
        );
        let still_bad = h
            .client()
            .resolve_batch_exception(request(
                &token,
                resolve(
                    &faulty.exception_id,
                    Action::CorrectAndRerun(pb::CorrectAndRerun {
                        corrections: vec![pb::BatchField {
                            heading: "LastKnownPostCode".into(),
                            value: "STILL BAD".into(),
                        }],
                    }),
                    "",
                ),
            ))
            .await
            .expect("rerun")
            .into_inner();
        assert_eq!(
            still_bad.exception.expect("open").status,
            pb::ExceptionStatus::Open as i32
        );
        let corrected = h
            .client()
            .resolve_batch_exception(request(
                &token,
                resolve(
                    &faulty.exception_id,
                    Action::CorrectAndRerun(pb::CorrectAndRerun {
                        corrections: vec![pb::BatchField {
                            heading: "LastKnownPostCode".into(),
                            value: "B1 1AA".into(),
                        }],
                    }),
                    "",
                ),
            ))
            .await
            .expect("rerun")
            .into_inner();
        let result = corrected.result.expect("a result");
        assert_eq!(outcome(&result), pb::RecordOutcome::NewUln);
        assert_eq!(
            corrected.exception.expect("resolved").status,
            pb::ExceptionStatus::Resolved as i32
        );
        let unknown_column = h
            .client()
            .resolve_batch_exception(request(
                &token,
                resolve(
                    &open
                        .exceptions
                        .iter()
                        .find(|e| e.mis_identifier == "STU0012")
                        .expect("STU0012")
                        .exception_id,
                    Action::CorrectAndRerun(pb::CorrectAndRerun {
                        corrections: vec![pb::BatchField {
                            heading: "Sex".into(),
                            value: "1".into(),
                        }],
                    }),
                    "",
                ),
            ))
            .await
            .expect_err("no such column");
        assert_eq!(unknown_column.code(), Code::InvalidArgument);

        let rejected = h
            .client()
            .resolve_batch_exception(request(
                &token,
                resolve(
                    &open
                        .exceptions
                        .iter()
                        .find(|e| e.mis_identifier == "STU0012")
                        .expect("STU0012")
                        .exception_id,
                    Action::Reject(pb::RejectRecord {
                        reason: "left the college".into(),
                    }),
                    "",
                ),
            ))
            .await
            .expect("rejected")
            .into_inner();
        assert_eq!(
            rejected.exception.expect("rejected").status,
            pb::ExceptionStatus::Rejected as i32
        );

        // Amelia is still not on the register: the next file offers the same exception,
        // and this time she is registered as new.
        let second = submit(&h, &token, NAME_2A, &fixture(NAME_2A), "")
            .await
            .expect("accepted");
        h.process_all().await;
        let open = h
            .client()
            .list_batch_exceptions(request(
                &token,
                pb::ListBatchExceptionsRequest {
                    job_id: second.job_id.clone(),
                    outcome: pb::RecordOutcome::PossibleMatch as i32,
                    ..Default::default()
                },
            ))
            .await
            .expect("listed")
            .into_inner();
        assert_eq!(open.exceptions.len(), 1);
        let registered = h
            .client()
            .resolve_batch_exception(request(
                &token,
                resolve(
                    &open.exceptions[0].exception_id,
                    Action::RegisterNew(pb::RegisterNew {}),
                    "",
                ),
            ))
            .await
            .expect("registered")
            .into_inner();
        let result = registered.result.expect("a result");
        assert_eq!(outcome(&result), pb::RecordOutcome::NewUln);
        let results = by_mis(&records(&h, &token, &second.job_id).await);
        assert_eq!(
            results["STU0006"].result_uln, result.result_uln,
            "the duplicate follows"
        );

        // A learner with Oliver O'Connor's five keys is registered twice elsewhere: his record
        // is a possible match, and registering him as new is refused.
        h.register
            .add("Oliver", "O'Connor", (2008, 11, 2), 1, "B15 2TT");
        let third = submit(&h, &token, NAME_2A, &fixture(NAME_2A), "")
            .await
            .expect("accepted");
        h.process_all().await;
        let results = by_mis(&records(&h, &token, &third.job_id).await);
        assert_eq!(outcome(&results["STU0001"]), pb::RecordOutcome::Found);
        let stu0002 = &results["STU0002"];
        assert_eq!(outcome(stu0002), pb::RecordOutcome::PossibleMatch);
        let refused = h
            .client()
            .resolve_batch_exception(request(
                &token,
                resolve(
                    &stu0002.exception_id,
                    Action::RegisterNew(pb::RegisterNew {}),
                    "",
                ),
            ))
            .await
            .expect_err("would duplicate");
        assert_eq!(refused.code(), Code::AlreadyExists);
        assert_eq!(
            status_reason(&refused).as_deref(),
            Some("LEARNER_ALREADY_REGISTERED")
        );
    }
}

#[tokio::test]
async fn a_chunk_that_fails_is_given_back_at_once() {
    for database in databases().await {
        let h = Harness::start(database).await;
        let token = batch_user(&h);
        let submitted = submit(&h, &token, NAME_2A, &fixture(NAME_2A), "")
            .await
            .expect("accepted");

        // The learner service is down: the chunk fails and its lease is given back.
        h.register.down.store(true, Ordering::SeqCst);
        let processor = h.batch.processor();
        processor
            .run_once("unlucky")
            .await
            .expect_err("the learner service is down");
        h.register.down.store(false, Ordering::SeqCst);

        // Without the clock moving on, the next attempt takes the chunk and the job ends.
        h.process_all().await;
        let done = job(&h, &token, &submitted.job_id).await.expect("the job");
        assert_eq!(done.status, pb::JobStatus::Completed as i32);
        let counts = done.counts.expect("counts");
        assert_eq!((counts.processed, counts.new_ulns), (16, 7));
        assert_eq!(records(&h, &token, &submitted.job_id).await.len(), 16);
    }
}

#[tokio::test]
async fn a_worker_that_dies_mid_job_loses_and_duplicates_nothing() {
    for database in databases().await {
        let h = Harness::start(database).await;
        let token = batch_user(&h);
        let submitted = submit(&h, &token, NAME_2A, &fixture(NAME_2A), "")
            .await
            .expect("accepted");

        // The first worker registers the learners of its chunk and dies before it writes.
        h.register
            .hang_after_registering
            .store(true, Ordering::SeqCst);
        let processor = h.batch.processor();
        let doomed = tokio::spawn(async move { processor.run_once("doomed").await });
        tokio::time::timeout(Duration::from_secs(10), async {
            while h.register.registrations.load(Ordering::SeqCst) == 0 {
                tokio::time::sleep(Duration::from_millis(10)).await;
            }
        })
        .await
        .expect("the first worker registered");
        doomed.abort();
        let registered_by_the_dead = h.register.registrations.load(Ordering::SeqCst);
        h.register
            .hang_after_registering
            .store(false, Ordering::SeqCst);

        // Until its lease ends nobody takes its chunk; the others are processed.
        h.process_all().await;
        let waiting = job(&h, &token, &submitted.job_id).await.expect("the job");
        assert_eq!(waiting.status, pb::JobStatus::Processing as i32);

        h.clock.advance(chrono::Duration::seconds(31));
        h.process_all().await;
        let done = job(&h, &token, &submitted.job_id).await.expect("the job");
        assert_eq!(done.status, pb::JobStatus::Completed as i32);
        let counts = done.counts.expect("counts");
        assert_eq!((counts.processed, counts.new_ulns), (16, 7));
        assert_eq!(
            h.register.registrations.load(Ordering::SeqCst),
            7,
            "none registered twice"
        );
        assert!(registered_by_the_dead > 0);
        let results = records(&h, &token, &submitted.job_id).await;
        assert_eq!(results.len(), 16, "none lost");
        let ulns: std::collections::HashSet<_> = results
            .iter()
            .filter(|r| outcome(r) == pb::RecordOutcome::NewUln)
            .map(|r| r.result_uln.clone())
            .collect();
        assert_eq!(ulns.len(), 7);
    }
}

#[tokio::test]
async fn workers_run_jobs_and_watch_follows_them() {
    for database in databases().await {
        let h = Harness::start_with(database, |config| {
            config.workers = 2;
            config.poll_interval = Duration::from_millis(20).into();
        })
        .await;
        let token = batch_user(&h);
        let submitted = submit(&h, &token, NAME_2A, &fixture(NAME_2A), "")
            .await
            .expect("accepted");
        let mut watch = watch(&h, &token, &submitted.job_id).await;
        let workers = h.batch.start_workers();
        let mut last = None;
        while let Some(message) = tokio::time::timeout(Duration::from_secs(20), watch.next())
            .await
            .expect("progress")
        {
            last = message.expect("a state").job;
        }
        workers.stop(Duration::from_secs(5)).await;
        let last = last.expect("a final state");
        assert_eq!(last.status, pb::JobStatus::Completed as i32);
        assert_eq!(last.counts.expect("counts").processed, 16);
    }
}

#[tokio::test]
async fn pages_of_jobs_and_exceptions_follow_on_whatever_the_clock_precision() {
    for database in databases().await {
        let h = Harness::start(database).await;
        // A clock with nanoseconds, as the system clock has: SQLite keeps them all.
        let now = h.clock.now();
        h.clock
            .set(now + chrono::TimeDelta::nanoseconds(123_456_789));
        let token = batch_user(&h);
        let first = submit(&h, &token, NAME_2A, &fixture(NAME_2A), "")
            .await
            .expect("accepted");
        h.clock.advance(chrono::TimeDelta::nanoseconds(1_001));
        let second = submit(&h, &token, NAME_3A, &fixture(NAME_3A), "")
            .await
            .expect("accepted");
        h.process_all().await;

        let mut jobs = Vec::new();
        let mut page_token = String::new();
        loop {
            let page = h
                .client()
                .list_batch_jobs(request(
                    &token,
                    pb::ListBatchJobsRequest {
                        page_size: 1,
                        page_token: page_token.clone(),
                        ..Default::default()
                    },
                ))
                .await
                .expect("a page of jobs")
                .into_inner();
            jobs.extend(page.jobs.into_iter().map(|job| job.job_id));
            if page.next_page_token.is_empty() {
                break;
            }
            page_token = page.next_page_token;
        }
        assert_eq!(jobs, [second.job_id.clone(), first.job_id.clone()]);

        let mut rows = Vec::new();
        let mut page_token = String::new();
        loop {
            let page = h
                .client()
                .list_batch_exceptions(request(
                    &token,
                    pb::ListBatchExceptionsRequest {
                        page_size: 3,
                        page_token: page_token.clone(),
                        job_id: first.job_id.clone(),
                        ..Default::default()
                    },
                ))
                .await
                .expect("a page of exceptions")
                .into_inner();
            rows.extend(page.exceptions.into_iter().map(|exception| exception.row));
            if page.next_page_token.is_empty() {
                break;
            }
            page_token = page.next_page_token;
        }
        let job = job(&h, &token, &first.job_id).await.expect("the job");
        assert!(job.open_exception_count > 3, "more than one page");
        assert_eq!(rows.len() as i64, job.open_exception_count);
        let mut sorted = rows.clone();
        sorted.sort_unstable();
        sorted.dedup();
        assert_eq!(sorted, rows, "each exception once, in row order");
    }
}

#[tokio::test]
async fn a_watch_ends_with_unavailable_when_the_service_begins_to_stop() {
    for database in databases().await {
        let h = Harness::start(database).await;
        let token = batch_user(&h);
        let submitted = submit(&h, &token, NAME_2A, &fixture(NAME_2A), "")
            .await
            .expect("accepted");
        let mut watch = watch(&h, &token, &submitted.job_id).await;
        // No workers: the job waits, and the watch would follow it for as long as it waits.
        let first = watch.next().await.expect("a first state").expect("a state");
        assert_eq!(first.job.expect("the job").job_id, submitted.job_id);

        h.batch.stop_watches();
        let ended = tokio::time::timeout(Duration::from_secs(5), watch.next())
            .await
            .expect("the watch ends at once");
        let status = ended.expect("an answer").expect_err("ended by the stop");
        assert_eq!(status.code(), Code::Unavailable, "{status:?}");
        assert_eq!(status_reason(&status).as_deref(), Some("SERVICE_STOPPING"));
    }
}

#[tokio::test]
async fn find_only_jobs_register_nobody_and_verification_files_verify() {
    for database in databases().await {
        let h = Harness::start(database).await;
        let token = batch_user(&h);
        let message = submit_stream(NAME_2A, &fixture(NAME_2A), 4096, "");
        let message = message.map(|mut m| {
            if let Some(pb::submit_batch_file_request::Content::Metadata(meta)) = m.content.as_mut()
                && let Some(file) = meta.file.as_mut()
            {
                file.job_type = pb::JobType::LearnerFindOnly as i32;
            }
            m
        });
        let submitted = h
            .client()
            .submit_batch_file(request(&token, message))
            .await
            .expect("accepted")
            .into_inner()
            .job
            .expect("a job");
        h.process_all().await;
        let results = by_mis(&records(&h, &token, &submitted.job_id).await);
        assert_eq!(outcome(&results["STU0001"]), pb::RecordOutcome::NotFound);
        assert_eq!(h.register.registrations.load(Ordering::SeqCst), 0);

        let held = h.register.add("Ann", "Lee", (2009, 3, 14), 2, "CV4 9EE");
        let file = format!(
            "MISIdentifier,ULN,GivenName,FamilyName,DateOfBirth,Gender\r\n\
             A1,{held},Ann,Lee,2009-03-14,2\r\n\
             A2,{held},Anne,Lee,,\r\n\
             A3,1026893096,Ann,Lee,,\r\n\
             A4,,Ann,Lee,,\r\n"
        );
        let ao = h.token(ORG_B, "10000002", vec![Role::AoUser]);
        let name = "VRF_10000002_031220261200.CSV";
        let lrb_user_refused = submit(&h, &token, name, file.as_bytes(), "")
            .await
            .expect_err("AO files need AO users");
        assert_eq!(lrb_user_refused.code(), Code::PermissionDenied);
        let submitted = submit(&h, &ao, name, file.as_bytes(), "")
            .await
            .expect("accepted");
        h.process_all().await;
        let results = by_mis(&records(&h, &ao, &submitted.job_id).await);
        assert_eq!(outcome(&results["A1"]), pb::RecordOutcome::Verified);
        assert_eq!(results["A1"].result_uln, held);
        assert_eq!(outcome(&results["A2"]), pb::RecordOutcome::NotVerified);
        assert!(
            results["A2"].reasons[0].contains("GivenName"),
            "{:?}",
            results["A2"].reasons
        );
        assert_eq!(outcome(&results["A3"]), pb::RecordOutcome::NotVerified);
        assert_eq!(results["A4"].return_code, "RC006");
    }
}

#[tokio::test]
async fn cancelled_jobs_keep_what_was_done() {
    for database in databases().await {
        let h = Harness::start(database).await;
        let token = batch_user(&h);
        let submitted = submit(&h, &token, NAME_2A, &fixture(NAME_2A), "")
            .await
            .expect("accepted");
        assert!(h.batch.processor().run_once("w").await.expect("one chunk"));
        let cancelled = h
            .client()
            .cancel_batch_job(request(
                &token,
                pb::CancelBatchJobRequest {
                    job_id: submitted.job_id.clone(),
                },
            ))
            .await
            .expect("cancelled")
            .into_inner()
            .job
            .expect("a job");
        assert_eq!(cancelled.status, pb::JobStatus::Cancelled as i32);
        h.process_all().await;
        let results = records(&h, &token, &submitted.job_id).await;
        assert!(
            results.len() < 16 && !results.is_empty(),
            "{}",
            results.len()
        );
    }
}

#[tokio::test]
async fn a_malformed_upload_stream_is_an_invalid_argument() {
    let database = databases().await.remove(0);
    let h = Harness::start(database).await;
    let token = batch_user(&h);
    let twice: Vec<_> = validate_stream(NAME_2A, &fixture(NAME_2A)).collect().await;
    let mut messages = vec![twice[0].clone()];
    messages.extend(twice.clone());
    let refused = h
        .client()
        .validate_batch_file(request(&token, futures::stream::iter(messages)))
        .await
        .expect_err("metadata twice");
    assert_eq!(refused.code(), Code::InvalidArgument);

    let no_metadata = futures::stream::iter(twice.into_iter().skip(1));
    let refused = h
        .client()
        .validate_batch_file(request(&token, no_metadata))
        .await
        .expect_err("no metadata");
    assert_eq!(refused.code(), Code::InvalidArgument);
}
