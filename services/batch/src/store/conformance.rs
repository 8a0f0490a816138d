//! One conformance suite for every backend: SQLite always, PostgreSQL when `DATABASE_URL` is
//! set.

use std::sync::Arc;

use chrono::{DateTime, Duration, NaiveDate, TimeZone, Utc};
use lrs_fields::ViolationKind;
use lrs_store::Database;
use uuid::Uuid;

use super::*;
use crate::domain::outcome::RecordFault;

const ORG_A: &str = "0b0c6a0e-2f44-4bb6-9a55-7bd1c1c0c001";
const ORG_B: &str = "0b0c6a0e-2f44-4bb6-9a55-7bd1c1c0c002";

fn at(minute: i64) -> DateTime<Utc> {
    Utc.with_ymd_and_hms(2026, 12, 3, 12, 0, 0)
        .single()
        .expect("a time")
        + Duration::minutes(minute)
}

async fn store_for(database: Database) -> Arc<dyn BatchStore> {
    crate::Batch::migrate(&database)
        .await
        .expect("migrations apply");
    match database {
        Database::Postgres(postgres) => Arc::new(PostgresBatchStore::new(postgres.pool().clone())),
        Database::Sqlite(sqlite) => Arc::new(SqliteBatchStore::new(
            sqlite.writer().clone(),
            sqlite.reader().clone(),
        )),
    }
}

fn pending(row: i64) -> NewRecord {
    NewRecord {
        row,
        mis_identifier: format!("M{row}"),
        values: vec![format!("v{row}"), "x".into()],
        outcome: None,
        duplicate_of_row: None,
        faults: Vec::new(),
        reasons: Vec::new(),
        exception_id: None,
    }
}

fn rejected(row: i64) -> NewRecord {
    NewRecord {
        outcome: Some(Outcome::IncorrectFormat),
        faults: vec![RecordFault::new(
            row as u64,
            "Gender",
            "3",
            "not a gender",
            ViolationKind::Format,
        )],
        reasons: vec!["Gender: not a gender".into()],
        exception_id: Some(Uuid::new_v4()),
        ..pending(row)
    }
}

fn duplicate(row: i64, of_row: i64) -> NewRecord {
    NewRecord {
        outcome: Some(Outcome::DuplicateInFile),
        duplicate_of_row: Some(of_row),
        ..pending(row)
    }
}

async fn upload(
    store: &dyn BatchStore,
    organisation: &str,
    minute: i64,
    chunks: Vec<Vec<NewRecord>>,
    request_id: Option<&str>,
) -> FinishOutcome {
    let job_id = Uuid::new_v4();
    let total = chunks.iter().map(Vec::len).sum::<usize>() as i64;
    store
        .begin_upload(&NewUpload {
            job_id,
            organisation_id: organisation.into(),
            ukprn: "10000001".into(),
            created_by: "user-1".into(),
            acting_user_id: Some("user-1".into()),
            job_type: JobType::FindAndRegister,
            file_name: "LRB_10000001_031220261200.CSV".into(),
            validation_date: NaiveDate::from_ymd_opt(2026, 12, 3).expect("a date"),
            now: at(minute),
        })
        .await
        .expect("upload begins");
    for (number, records) in chunks.iter().enumerate() {
        store
            .add_records(job_id, number as i64, records)
            .await
            .expect("records stored");
    }
    store
        .finish_upload(
            job_id,
            &UploadFinish {
                file_version: "2A".into(),
                headings: vec!["A".into(), "B".into()],
                header_values: vec!["2A".into()],
                total_records: total,
                file_size_bytes: 100,
                request_id: request_id.map(str::to_owned),
                now: at(minute),
            },
        )
        .await
        .expect("upload finishes")
}

fn created(outcome: FinishOutcome) -> Job {
    match outcome {
        FinishOutcome::Created(job) => job,
        FinishOutcome::Existing(job) => panic!("expected a new job, got {job:?}"),
    }
}

fn found(row: i64, uln: &str) -> RecordResult {
    RecordResult {
        row,
        outcome: Outcome::Found,
        result_uln: uln.into(),
        reasons: vec!["found".into()],
        exception: None,
    }
}

async fn uploads_become_jobs_only_when_finished(store: &dyn BatchStore) {
    let job_id = Uuid::new_v4();
    store
        .begin_upload(&NewUpload {
            job_id,
            organisation_id: ORG_A.into(),
            ukprn: String::new(),
            created_by: "u".into(),
            acting_user_id: None,
            job_type: JobType::FindOnly,
            file_name: "f".into(),
            validation_date: NaiveDate::from_ymd_opt(2026, 12, 3).expect("a date"),
            now: at(0),
        })
        .await
        .expect("begins");
    store
        .add_records(job_id, 0, &[pending(2)])
        .await
        .expect("stored");
    assert_eq!(
        store.job(job_id).await.expect("reads"),
        None,
        "an upload is not a job"
    );
    assert!(
        store
            .claim_chunk("w", at(1), at(2))
            .await
            .expect("claims")
            .is_none()
    );
    store.abandon_upload(job_id).await.expect("abandons");
    assert!(
        store
            .records(job_id, 0, 10)
            .await
            .expect("reads")
            .is_empty()
    );

    let job = created(
        upload(
            store,
            ORG_A,
            1,
            vec![vec![pending(2), rejected(3)], vec![rejected(4)]],
            None,
        )
        .await,
    );
    assert_eq!(job.status, JobStatus::Queued);
    assert_eq!(job.total_records, 3);
    assert_eq!(job.header_values, ["2A"]);
    let counts = store.job_counts(job.job_id).await.expect("counts");
    assert_eq!(counts.of(Outcome::IncorrectFormat), 2);
    assert_eq!(counts.processed(), 2);
    assert_eq!(
        counts.open_exceptions, 2,
        "rejected LRB records can be corrected"
    );
    let decided = store.records(job.job_id, 0, 10).await.expect("reads");
    assert_eq!(decided.iter().map(|r| r.row).collect::<Vec<_>>(), [3, 4]);
    assert_eq!(decided[0].faults[0].column, "Gender");

    let all_done = created(upload(store, ORG_A, 2, vec![vec![rejected(2)]], None).await);
    assert_eq!(all_done.status, JobStatus::Completed);
    assert!(all_done.end_time.is_some());

    let stale = Uuid::new_v4();
    store
        .begin_upload(&NewUpload {
            job_id: stale,
            organisation_id: ORG_A.into(),
            ukprn: String::new(),
            created_by: "u".into(),
            acting_user_id: None,
            job_type: JobType::FindOnly,
            file_name: "f".into(),
            validation_date: NaiveDate::from_ymd_opt(2026, 12, 3).expect("a date"),
            now: at(0),
        })
        .await
        .expect("begins");
    assert_eq!(store.sweep_uploads(at(30)).await.expect("sweeps"), 1);
    assert!(
        store.job(job.job_id).await.expect("reads").is_some(),
        "jobs are not swept"
    );
}

async fn a_request_id_answers_the_first_job(store: &dyn BatchStore) {
    let first = created(upload(store, ORG_A, 0, vec![vec![pending(2)]], Some("req-1")).await);
    let again = upload(store, ORG_A, 1, vec![vec![pending(2)]], Some("req-1")).await;
    let FinishOutcome::Existing(existing) = again else {
        panic!("a retry answers the first job");
    };
    assert_eq!(existing.job_id, first.job_id);
    let other_org = created(upload(store, ORG_B, 2, vec![vec![pending(2)]], Some("req-1")).await);
    assert_ne!(other_org.job_id, first.job_id);
    let by_request = store.job_by_request(ORG_A, "req-1").await.expect("reads");
    assert_eq!(by_request.map(|j| j.job_id), Some(first.job_id));
    let listed = store
        .list_jobs(&JobFilter {
            organisation_id: Some(ORG_A.into()),
            limit: 10,
            ..JobFilter::default()
        })
        .await
        .expect("lists");
    assert_eq!(listed.len(), 1, "the retried upload left nothing behind");
}

async fn leases_are_exclusive_and_taken_over_when_expired(store: &dyn BatchStore) {
    let job = created(
        upload(
            store,
            ORG_A,
            0,
            vec![vec![pending(2), pending(3), duplicate(4, 2)]],
            None,
        )
        .await,
    );
    let claimed = store
        .claim_chunk("w1", at(1), at(2))
        .await
        .expect("claims")
        .expect("a chunk");
    assert_eq!(claimed.job.job_id, job.job_id);
    assert_eq!(claimed.attempts, 1);
    assert_eq!(
        claimed.records.iter().map(|r| r.row).collect::<Vec<_>>(),
        [2, 3]
    );
    assert_eq!(
        store
            .job(job.job_id)
            .await
            .expect("reads")
            .map(|j| j.status),
        Some(JobStatus::Processing)
    );
    assert!(
        store
            .claim_chunk("w2", at(1), at(2))
            .await
            .expect("claims")
            .is_none(),
        "leased"
    );

    let taken = store
        .claim_chunk("w2", at(3), at(4))
        .await
        .expect("claims")
        .expect("expired");
    assert_eq!(taken.attempts, 2);
    let results = ChunkResults {
        job_id: job.job_id,
        chunk_number: 0,
        owner: "w1".into(),
        results: vec![found(2, "1026893096"), found(3, "1000000004")],
        now: at(3),
    };
    assert!(
        !store.complete_chunk(&results).await.expect("writes"),
        "w1 lost its lease"
    );
    assert_eq!(
        store
            .job_counts(job.job_id)
            .await
            .expect("counts")
            .of(Outcome::Found),
        0
    );

    let results = ChunkResults {
        owner: "w2".into(),
        ..results
    };
    assert!(store.complete_chunk(&results).await.expect("writes"));
    assert!(
        !store.complete_chunk(&results).await.expect("writes"),
        "done once only"
    );
    let after = store
        .job(job.job_id)
        .await
        .expect("reads")
        .expect("the job");
    assert_eq!(after.status, JobStatus::Completed);
    let records = store.records(job.job_id, 0, 10).await.expect("reads");
    assert_eq!(records.len(), 3);
    assert_eq!(
        records[2].result_uln, "1026893096",
        "the duplicate takes its row's ULN"
    );
    assert_eq!(records[2].duplicate_of_row, Some(2));
    assert_eq!(
        store.records(job.job_id, 2, 1).await.expect("reads")[0].row,
        3
    );

    let second = created(upload(store, ORG_A, 5, vec![vec![pending(2)]], None).await);
    store
        .claim_chunk("w3", at(6), at(7))
        .await
        .expect("claims")
        .expect("a chunk");
    assert_eq!(store.release_leases("w3").await.expect("releases"), 1);
    let again = store
        .claim_chunk("w4", at(6), at(7))
        .await
        .expect("claims")
        .expect("free again");
    assert_eq!(again.job.job_id, second.job_id);
}

async fn organisations_take_turns(store: &dyn BatchStore) {
    let big = created(
        upload(
            store,
            ORG_A,
            0,
            vec![vec![pending(2)], vec![pending(3)], vec![pending(4)]],
            None,
        )
        .await,
    );
    let small = created(upload(store, ORG_B, 1, vec![vec![pending(2)]], None).await);
    let mut order = Vec::new();
    for minute in 2..6 {
        let claimed = store
            .claim_chunk("w", at(minute), at(minute + 100))
            .await
            .expect("claims")
            .expect("a chunk");
        order.push((claimed.job.job_id, claimed.chunk_number));
    }
    assert_eq!(
        order,
        [
            (big.job_id, 0),
            (small.job_id, 0),
            (big.job_id, 1),
            (big.job_id, 2)
        ]
    );
}

async fn cancelled_jobs_stop(store: &dyn BatchStore) {
    let job = created(
        upload(
            store,
            ORG_A,
            0,
            vec![vec![pending(2)], vec![pending(3)]],
            None,
        )
        .await,
    );
    let claimed = store
        .claim_chunk("w", at(1), at(50))
        .await
        .expect("claims")
        .expect("a chunk");
    let cancelled = store
        .cancel_job(job.job_id, at(2))
        .await
        .expect("cancels")
        .expect("the job");
    assert_eq!(cancelled.status, JobStatus::Cancelled);
    assert!(
        store
            .claim_chunk("w", at(3), at(4))
            .await
            .expect("claims")
            .is_none()
    );
    let results = ChunkResults {
        job_id: job.job_id,
        chunk_number: claimed.chunk_number,
        owner: "w".into(),
        results: vec![found(2, "1026893096")],
        now: at(3),
    };
    assert!(
        !store.complete_chunk(&results).await.expect("writes"),
        "a cancelled job takes no results"
    );
    let again = store
        .cancel_job(job.job_id, at(4))
        .await
        .expect("cancels")
        .expect("the job");
    assert_eq!(again.status, JobStatus::Cancelled);
}

async fn exceptions_are_decided_once_and_audited(store: &dyn BatchStore) {
    let job = created(
        upload(
            store,
            ORG_A,
            0,
            vec![vec![pending(2), duplicate(3, 2)]],
            None,
        )
        .await,
    );
    store
        .claim_chunk("w", at(1), at(2))
        .await
        .expect("claims")
        .expect("a chunk");
    let exception_id = Uuid::new_v4();
    let results = ChunkResults {
        job_id: job.job_id,
        chunk_number: 0,
        owner: "w".into(),
        results: vec![RecordResult {
            row: 2,
            outcome: Outcome::PossibleMatch,
            result_uln: String::new(),
            reasons: vec!["2 possible matches".into()],
            exception: Some(NewException {
                exception_id,
                candidates: vec![1, 2, 3],
            }),
        }],
        now: at(1),
    };
    assert!(store.complete_chunk(&results).await.expect("writes"));
    let filter = ExceptionFilter {
        organisation_id: Some(ORG_A.into()),
        job_id: None,
        status: ExceptionStatus::Open,
        outcome: None,
        after: None,
        limit: 10,
    };
    let open = store.list_exceptions(&filter).await.expect("lists");
    assert_eq!(open.len(), 1);
    assert_eq!(open[0].candidates, [1, 2, 3]);
    assert_eq!(open[0].record.outcome, Some(Outcome::PossibleMatch));
    let other = ExceptionFilter {
        organisation_id: Some(ORG_B.into()),
        ..filter.clone()
    };
    assert!(
        store
            .list_exceptions(&other)
            .await
            .expect("lists")
            .is_empty()
    );

    let decision = ExceptionDecision {
        exception_id,
        organisation_id: ORG_A.into(),
        request_id: Some("decide-1".into()),
        actor: "user-1".into(),
        action: ResolutionAction::AcceptUln,
        status: ExceptionStatus::Resolved,
        outcome: Outcome::Found,
        result_uln: "1026893096".into(),
        reasons: vec!["accepted".into()],
        values: None,
        faults: Vec::new(),
        candidates: None,
        note: "checked".into(),
        detail: "{}".into(),
        now: at(5),
    };
    let DecisionOutcome::Applied(after) = store.decide_exception(&decision).await.expect("decides")
    else {
        panic!("an open exception is decided");
    };
    assert_eq!(after.status, ExceptionStatus::Resolved);
    let resolution = after.resolution.expect("a resolution");
    assert_eq!(resolution.resolved_by, "user-1");
    assert_eq!(resolution.action, ResolutionAction::AcceptUln);
    assert_eq!(after.record.result_uln, "1026893096");
    assert!(matches!(
        store.decide_exception(&decision).await.expect("decides"),
        DecisionOutcome::Replayed(_)
    ));
    let again = ExceptionDecision {
        request_id: None,
        ..decision.clone()
    };
    assert!(matches!(
        store.decide_exception(&again).await.expect("decides"),
        DecisionOutcome::NotOpen
    ));
    let unknown = ExceptionDecision {
        exception_id: Uuid::new_v4(),
        request_id: None,
        ..decision
    };
    assert!(matches!(
        store.decide_exception(&unknown).await.expect("decides"),
        DecisionOutcome::NotFound
    ));

    let records = store.records(job.job_id, 0, 10).await.expect("reads");
    assert_eq!(
        records[1].result_uln, "1026893096",
        "the duplicate follows the decision"
    );
    assert_eq!(
        store
            .job_counts(job.job_id)
            .await
            .expect("counts")
            .open_exceptions,
        0
    );
    let resolved = ExceptionFilter {
        status: ExceptionStatus::Resolved,
        ..filter
    };
    assert_eq!(
        store.list_exceptions(&resolved).await.expect("lists").len(),
        1
    );
}

async fn jobs_page_newest_first(store: &dyn BatchStore) {
    let mut ids = Vec::new();
    for minute in 0..5 {
        ids.push(created(upload(store, ORG_A, minute, vec![vec![pending(2)]], None).await).job_id);
    }
    let first = store
        .list_jobs(&JobFilter {
            organisation_id: Some(ORG_A.into()),
            limit: 2,
            ..JobFilter::default()
        })
        .await
        .expect("lists");
    assert_eq!(
        first.iter().map(|j| j.job_id).collect::<Vec<_>>(),
        [ids[4], ids[3]]
    );
    let last = first.last().expect("a job");
    let next = store
        .list_jobs(&JobFilter {
            organisation_id: Some(ORG_A.into()),
            after: Some((last.create_time, last.job_id)),
            limit: 10,
            ..JobFilter::default()
        })
        .await
        .expect("lists");
    assert_eq!(
        next.iter().map(|j| j.job_id).collect::<Vec<_>>(),
        [ids[2], ids[1], ids[0]]
    );
    let queued = store
        .list_jobs(&JobFilter {
            status: Some(JobStatus::Completed),
            limit: 10,
            ..JobFilter::default()
        })
        .await
        .expect("lists");
    assert!(queued.is_empty());
}

macro_rules! conformance {
    ($($name:ident),* $(,)?) => {
        $(
            #[tokio::test]
            async fn $name() {
                lrs_store::testing::for_each_backend("batch", async |database| {
                    let store = store_for(database).await;
                    super::conformance::$name(store.as_ref()).await;
                })
                .await;
            }
        )*
    };
}

mod run {
    use super::store_for;

    conformance!(
        uploads_become_jobs_only_when_finished,
        a_request_id_answers_the_first_job,
        leases_are_exclusive_and_taken_over_when_expired,
        organisations_take_turns,
        cancelled_jobs_stop,
        exceptions_are_decided_once_and_audited,
        jobs_page_newest_first,
    );
}
