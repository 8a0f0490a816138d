//! The sample LRB files through the whole suite: uploaded through the gateway, processed by
//! the batch workers against the real learner service, and read back as output.

use std::collections::HashMap;

use lrs_proto::batch::v1::{
    BatchFileMetadata, GetBatchOutputRequest, JobStatus, JobType, OutputFormat, RecordOutcome,
    RecordResult, SubmitBatchFileMetadata, SubmitBatchFileRequest, WatchBatchJobRequest,
    get_batch_output_response, submit_batch_file_request,
};
use lrs_testkit::{SignedIn, TestSuite};

const SAMPLE_2A: &str = "LRB_10000001_031220261200.CSV";
const SAMPLE_3A: &str = "LRB_10000001_031220261300.CSV";

fn sample(name: &str) -> Vec<u8> {
    let path = format!(
        "{}/../services/batch/tests/fixtures/{name}",
        env!("CARGO_MANIFEST_DIR")
    );
    std::fs::read(&path).unwrap_or_else(|error| panic!("sample file {path}: {error}"))
}

/// Uploads `name` in small chunks, follows the job until it ends and returns its records.
async fn run_job(user: &SignedIn, name: &str, request_id: &str) -> Vec<RecordResult> {
    let mut messages = vec![SubmitBatchFileRequest {
        content: Some(submit_batch_file_request::Content::Metadata(
            SubmitBatchFileMetadata {
                file: Some(BatchFileMetadata {
                    file_name: name.to_owned(),
                    job_type: JobType::LearnerFindAndRegister.into(),
                }),
                request_id: request_id.to_owned(),
            },
        )),
    }];
    for chunk in sample(name).chunks(700) {
        messages.push(SubmitBatchFileRequest {
            content: Some(submit_batch_file_request::Content::Chunk(chunk.to_vec())),
        });
    }
    let submitted = user
        .batch()
        .submit_batch_file(tokio_stream::iter(messages))
        .await;
    let job = submitted.expect("the sample is accepted").into_inner().job;
    let job_id = job.expect("the created job").job_id;

    let watch = WatchBatchJobRequest {
        job_id: job_id.clone(),
    };
    let mut progress = user
        .batch()
        .watch_batch_job(watch)
        .await
        .expect("watch")
        .into_inner();
    let mut status = JobStatus::Unspecified;
    while let Some(update) = progress.message().await.expect("progress") {
        status = update.job.expect("the job").status();
    }
    assert_eq!(status, JobStatus::Completed, "the job of {name} completes");

    let output = GetBatchOutputRequest {
        job_id,
        format: OutputFormat::Records.into(),
        after_row: 0,
    };
    let mut stream = user
        .batch()
        .get_batch_output(output)
        .await
        .expect("output")
        .into_inner();
    let mut records = Vec::new();
    while let Some(message) = stream.message().await.expect("output records") {
        if let Some(get_batch_output_response::Content::Records(page)) = message.content {
            records.extend(page.results);
        }
    }
    records
}

fn by_mis_identifier(records: &[RecordResult]) -> HashMap<&str, &RecordResult> {
    records
        .iter()
        .map(|record| (record.mis_identifier.as_str(), record))
        .collect()
}

fn assert_outcome(records: &HashMap<&str, &RecordResult>, mis: &str, outcome: RecordOutcome) {
    let record = records
        .get(mis)
        .unwrap_or_else(|| panic!("{mis} is in the output"));
    assert_eq!(record.outcome(), outcome, "{mis}: {:?}", record.reasons);
}

fn assert_code(records: &HashMap<&str, &RecordResult>, mis: &str, code: &str) {
    let record = records
        .get(mis)
        .unwrap_or_else(|| panic!("{mis} is in the output"));
    assert_eq!(record.return_code, code, "{mis}: {:?}", record.reasons);
    assert!(record.result_uln.is_empty(), "{mis} has no ULN");
}

#[tokio::test]
async fn the_2a_sample_registers_once_and_is_found_the_second_time() {
    let suite = TestSuite::start_with(|config| config.demo = true).await;
    let user = suite.demo_user("demo.lrb.batch").await;
    let new = [
        "STU0001", "STU0002", "STU0003", "STU0004", "STU0005", "STU0007", "STU0015",
    ];

    let first = run_job(&user, SAMPLE_2A, "first-upload").await;
    let records = by_mis_identifier(&first);
    let order: Vec<&str> = first.iter().map(|r| r.mis_identifier.as_str()).collect();
    let expected_order: Vec<String> = (1..=16).map(|n| format!("STU{n:04}")).collect();
    assert_eq!(order, expected_order, "the output keeps the input's order");
    for mis in new {
        assert_outcome(&records, mis, RecordOutcome::NewUln);
    }
    assert_outcome(&records, "STU0006", RecordOutcome::DuplicateInFile);
    assert_eq!(records["STU0006"].result_uln, records["STU0001"].result_uln);
    assert_eq!(records["STU0006"].duplicate_of_row, 2);
    for mis in [
        "STU0008", "STU0010", "STU0012", "STU0013", "STU0014", "STU0016",
    ] {
        assert_code(&records, mis, "RC011");
    }
    assert_code(&records, "STU0009", "RC013");
    assert_code(&records, "STU0011", "RC006");

    let second = run_job(&user, SAMPLE_2A, "second-upload").await;
    let again = by_mis_identifier(&second);
    for mis in new {
        assert_outcome(&again, mis, RecordOutcome::Found);
        assert_eq!(
            again[mis].result_uln, records[mis].result_uln,
            "{mis} keeps its ULN"
        );
    }
    assert_eq!(again["STU0006"].result_uln, records["STU0001"].result_uln);

    suite.stop().await;
}

#[tokio::test]
async fn the_3a_sample_checks_pupil_and_candidate_numbers() {
    let suite = TestSuite::start_with(|config| config.demo = true).await;
    let user = suite.demo_user("demo.lrb.batch").await;

    let output = run_job(&user, SAMPLE_3A, "upload-3a").await;
    let records = by_mis_identifier(&output);

    for mis in ["P3A001", "P3A002", "P3A006"] {
        assert_outcome(&records, mis, RecordOutcome::NewUln);
    }
    assert_code(&records, "P3A003", "RC012");
    assert_code(&records, "P3A004", "RC012");
    assert_code(&records, "P3A005", "RC011");

    suite.stop().await;
}
