//! One suite of storage tests, run on SQLite always and on PostgreSQL when `DATABASE_URL` is
//! set: every backend must behave the same.

use std::sync::Arc;

use chrono::{NaiveDate, TimeDelta, TimeZone, Utc};
use lrs_fields::codes::{AbilityToShare, Gender};
use lrs_fields::uln::Uln;
use lrs_store::Database;

use super::{
    AuditAction, AuditEntry, InsertOutcome, LearnerChange, LearnerStore, LinkOutcome, MergeWrite,
    NewLearner, POSTGRES_MIGRATIONS, SQLITE_MIGRATIONS, WriteOutcome, for_database,
};
use crate::domain::registration::{RecentSearch, keys_hash};
use crate::domain::{BlockingKeys, LearnerDetails, LearnerRecord, LearnerStatus};

/// A learner's details for the tests.
pub(crate) fn details(
    given: &str,
    family: &str,
    born: (i32, u32, u32),
    postcode: &str,
) -> LearnerDetails {
    LearnerDetails {
        title: Some("Ms".into()),
        given_name: given.into(),
        preferred_given_name: None,
        middle_names: None,
        family_name: family.into(),
        previous_family_name: Some("Jones".into()),
        family_name_at_16: None,
        school_at_16: Some("Hill School".into()),
        address_line_1: Some("1 High Street".into()),
        address_line_2: None,
        address_town: Some("Coventry".into()),
        address_county_or_city: None,
        postcode: postcode.into(),
        date_of_address_capture: NaiveDate::from_ymd_opt(2020, 1, 1),
        date_of_birth: NaiveDate::from_ymd_opt(born.0, born.1, born.2).expect("a real date"),
        place_of_birth: None,
        email_address: Some("Jane@Example.org".into()),
        gender: Gender::Female,
        nationality: None,
        scottish_candidate_number: None,
        verification_type: 1,
        other_verification_description: None,
        ability_to_share: AbilityToShare::NoticeSeen,
        notes: None,
        upn: None,
        uci: None,
    }
}

fn uln(text: &str) -> Uln {
    Uln::parse(text).expect("a valid test ULN")
}

fn new(uln_text: &str, details: LearnerDetails, request: Option<&str>) -> NewLearner {
    NewLearner {
        uln: uln(uln_text),
        details,
        registered_by: Some("org-1".into()),
        request_id: request.map(str::to_owned),
        at: Utc
            .with_ymd_and_hms(2025, 9, 1, 10, 0, 0)
            .single()
            .expect("a time"),
    }
}

async fn insert_one(store: &dyn LearnerStore, learner: NewLearner) -> InsertOutcome {
    let mut outcomes = store.insert_learners(&[learner]).await.expect("insert");
    outcomes.remove(0)
}

fn inserted(outcome: InsertOutcome) -> LearnerRecord {
    match outcome {
        InsertOutcome::Inserted(record) => record,
        other => panic!("expected an insert, got {other:?}"),
    }
}

/// Runs every conformance test on a fresh migrated database.
async fn run(database: Database) {
    database
        .migrate(&POSTGRES_MIGRATIONS, &SQLITE_MIGRATIONS)
        .await
        .expect("migrations apply");
    let store = for_database(&database);

    inserts_read_back_and_unique_keys(&*store).await;
    candidates_come_by_each_blocking_key_and_are_capped(&*store).await;
    recent_searches_are_found_latest_first(&*store).await;
    updates_are_conditional_on_the_version(&*store).await;
    merge_and_unmerge(&*store).await;
    concurrent_inserts_of_one_person_leave_one(store).await;
    if let Database::Postgres(postgres) = &database {
        bulk_copy_reads_back(&super::PostgresLearnerStore::new(postgres.pool().clone())).await;
    }
}

async fn bulk_copy_reads_back(store: &super::PostgresLearnerStore) {
    let mut quoted = details("Anne-Marie", "O'Neil \"Nell\"", (2003, 3, 3), "BS1 4DJ");
    quoted.notes = Some("line one, with a comma".into());
    let plain = details("Raj", "Patel", (2004, 4, 4), "BS1 4DJ");
    let learners = [
        new_with(fresh_uln(700_000_001), quoted.clone()),
        new_with(fresh_uln(800_000_001), plain.clone()),
    ];
    assert_eq!(store.copy_learners(&learners).await.expect("copied"), 2);
    for (learner, expected) in learners.iter().zip([quoted, plain]) {
        let read = store
            .learner_by_uln(learner.uln)
            .await
            .expect("read")
            .expect("stored");
        assert_eq!(read.details, expected);
        assert_eq!(read.version, 1);
        let keys = BlockingKeys::of(&expected.match_profile());
        let found = store.candidates(&[keys], 10).await.expect("candidates");
        assert!(
            found
                .iter()
                .any(|c| c.uln == learner.uln && c.profile == expected.match_profile())
        );
    }
}

fn new_with(uln: Uln, details: LearnerDetails) -> NewLearner {
    NewLearner {
        uln,
        ..new("1026893096", details, None)
    }
}

async fn inserts_read_back_and_unique_keys(store: &dyn LearnerStore) {
    let jane = details("Jane", "O'Brien", (2008, 3, 14), "CV4 9EE");
    let record = inserted(insert_one(store, new("1026893096", jane.clone(), Some("r1"))).await);
    assert_eq!(record.details, jane);
    assert_eq!(record.version, 1);
    assert_eq!(record.status, LearnerStatus::Active);
    assert_eq!(
        store.learner_by_uln(record.uln).await.expect("read"),
        Some(record.clone())
    );

    // The same request id again: the first learner, whatever the ULN offered.
    let retry = insert_one(store, new("6936002314", jane.clone(), Some("r1"))).await;
    assert_eq!(retry, InsertOutcome::RequestSeen(record.clone()));
    // The same five keys, written differently: taken.
    let mut same_person = jane.clone();
    same_person.family_name = "OBRIEN".into();
    same_person.postcode = "CV4 9EE".into();
    let taken = insert_one(store, new("6936002314", same_person, None)).await;
    assert_eq!(taken, InsertOutcome::KeysTaken(record.clone()));
    // Another person on a ULN in use.
    let other = details("Amy", "Patel", (2009, 6, 1), "LS1 4AP");
    assert_eq!(
        insert_one(store, new("1026893096", other, None)).await,
        InsertOutcome::UlnTaken
    );

    let found = store.learner_by_request("org-1", "r1").await.expect("read");
    assert_eq!(found, Some(record.clone()));
    assert_eq!(
        store.learner_by_request("org-2", "r1").await.expect("read"),
        None
    );
    let by_keys = store
        .learners_with_keys(&[jane.match_keys()])
        .await
        .expect("read");
    assert_eq!(by_keys, vec![record.clone()]);
    let many = store
        .learners_by_ulns(&[record.uln, uln("7667649978")])
        .await
        .expect("read");
    assert_eq!(many, vec![record]);
}

async fn candidates_come_by_each_blocking_key_and_are_capped(store: &dyn LearnerStore) {
    let learner = |uln: Uln, given: &str, family: &str, born, postcode: &str| {
        let learner = new_with(uln, details(given, family, born, postcode));
        async move { inserted(insert_one(store, learner).await) }
    };
    let born = (2001, 2, 3);
    let by_date_and_family =
        learner(fresh_uln(300_000_001), "Zed", "Thomson", born, "M1 1AE").await;
    let by_date_and_given = learner(fresh_uln(300_000_101), "Tim", "Xu", born, "M1 1AE").await;
    let by_date_and_initial = learner(fresh_uln(300_000_151), "Zed", "Tuck", born, "M1 1AE").await;
    let same_date_only = learner(fresh_uln(300_000_201), "Zed", "Xu", born, "M1 1AE").await;
    let by_names_and_year = learner(
        fresh_uln(300_000_301),
        "Tom",
        "Thomson",
        (2001, 9, 9),
        "B1 1AA",
    )
    .await;
    let by_postcode = learner(fresh_uln(300_000_401), "Ann", "Lee", (1990, 1, 1), "N1 9GU").await;
    let unrelated = learner(fresh_uln(300_000_501), "Bob", "Ray", (1980, 5, 5), "E1 6AN").await;

    let search = details("Tim", "Tomson", born, "N1 9GU").match_profile();
    let keys = BlockingKeys::of(&search);
    let found = store
        .candidates(std::slice::from_ref(&keys), 500)
        .await
        .expect("candidates");
    let ulns: Vec<Uln> = found.iter().map(|c| c.uln).collect();
    for admitted in [
        &by_date_and_family,
        &by_date_and_given,
        &by_date_and_initial,
        &by_names_and_year,
        &by_postcode,
    ] {
        assert!(ulns.contains(&admitted.uln), "{ulns:?}");
    }
    for not_admitted in [&same_date_only, &unrelated] {
        assert!(!ulns.contains(&not_admitted.uln), "{ulns:?}");
    }
    let candidate = found
        .iter()
        .find(|c| c.uln == by_names_and_year.uln)
        .expect("found");
    assert_eq!(candidate.profile, by_names_and_year.details.match_profile());

    // Two more born that day named Xu; a cap of 2 keeps the two lowest ULNs of that key.
    let lowest = [
        learner(fresh_uln(100_000_001), "Abe", "Xu", born, "M1 1AE").await,
        learner(fresh_uln(100_000_101), "Cy", "Xu", born, "M1 1AE").await,
    ];
    let xu = BlockingKeys::of(&same_date_only.details.match_profile());
    let only_date_and_family = BlockingKeys {
        given_phonetic: "NOTHING".into(),
        postcode: "ZZ99ZZ".into(),
        ..xu
    };
    let capped = store
        .candidates(&[only_date_and_family], 2)
        .await
        .expect("candidates");
    let mut ulns: Vec<Uln> = capped.iter().map(|c| c.uln).collect();
    ulns.sort_unstable();
    assert_eq!(ulns, lowest.map(|l| l.uln), "{ulns:?}");
}

async fn recent_searches_are_found_latest_first(store: &dyn LearnerStore) {
    let keys = details("Jane", "Smith", (2008, 3, 14), "CV4 9EE").match_keys();
    let hash = keys_hash(&keys);
    let at = Utc
        .with_ymd_and_hms(2025, 9, 1, 10, 0, 0)
        .single()
        .expect("a time");
    let search = |minutes: i64, exact: bool, organisation: &str| RecentSearch {
        organisation_id: organisation.into(),
        keys_hash: hash,
        searched_at: at + TimeDelta::minutes(minutes),
        exact_match_found: exact,
    };
    store
        .record_searches(&[
            search(0, true, "org-1"),
            search(5, false, "org-1"),
            search(9, true, "org-2"),
        ])
        .await
        .expect("recorded");

    let latest = store.latest_search("org-1", &hash, at).await.expect("read");
    assert_eq!(latest, Some(search(5, false, "org-1")));
    let none = store
        .latest_search("org-1", &hash, at + TimeDelta::minutes(6))
        .await
        .expect("read");
    assert_eq!(none, None);
    assert_eq!(
        store.latest_search("org-3", &hash, at).await.expect("read"),
        None
    );

    let pruned = store
        .prune_searches(at + TimeDelta::minutes(6))
        .await
        .expect("pruned");
    assert_eq!(pruned, 2);
}

async fn updates_are_conditional_on_the_version(store: &dyn LearnerStore) {
    let original = inserted(
        insert_one(
            store,
            new(
                "9276308686",
                details("Kim", "Ng", (2005, 5, 5), "SW1A 1AA"),
                None,
            ),
        )
        .await,
    );
    let mut changed = original.details.clone();
    changed.notes = Some("moved".into());
    changed.ability_to_share = AbilityToShare::NoticeNotSeen;
    let change = LearnerChange {
        id: original.id,
        expected_version: 1,
        details: changed.clone(),
        at: original.created_at + TimeDelta::minutes(1),
        audit: Some(AuditEntry {
            at: original.created_at,
            action: AuditAction::OptOutEnded,
            uln: original.uln,
            other_uln: None,
            organisation_id: Some("org-1".into()),
            actor: "user-1".into(),
            reason: None,
        }),
    };
    let outcomes = store
        .update_learners(&[change.clone(), change.clone()])
        .await
        .expect("update");
    let WriteOutcome::Written(updated) = &outcomes[0] else {
        panic!("expected a write, got {outcomes:?}");
    };
    assert_eq!(updated.version, 2);
    assert_eq!(updated.details, changed);
    assert_eq!(outcomes[1], WriteOutcome::VersionConflict);
    assert_eq!(
        store
            .audit_entries(original.uln)
            .await
            .expect("audit")
            .len(),
        1
    );

    // Taking the five keys of another active learner is refused, and nothing is written.
    let mut clash = updated.details.clone();
    clash.given_name = "Jane".into();
    clash.family_name = "O'Brien".into();
    clash.date_of_birth = NaiveDate::from_ymd_opt(2008, 3, 14).expect("date");
    clash.postcode = "CV4 9EE".into();
    let outcomes = store
        .update_learners(&[LearnerChange {
            id: original.id,
            expected_version: 2,
            details: clash,
            at: change.at,
            audit: None,
        }])
        .await
        .expect("update");
    assert_eq!(outcomes, vec![WriteOutcome::KeysTaken]);
    assert_eq!(
        store
            .learner_by_uln(original.uln)
            .await
            .expect("read")
            .map(|r| r.version),
        Some(2)
    );
}

async fn merge_and_unmerge(store: &dyn LearnerStore) {
    let master = inserted(
        insert_one(
            store,
            new(
                "1748529632",
                details("Lee", "Ward", (2004, 4, 4), "L1 8JQ"),
                None,
            ),
        )
        .await,
    );
    let duplicate = inserted(
        insert_one(
            store,
            new(
                "1000000043",
                details("Lee", "Warde", (2004, 4, 4), "L1 8JQ"),
                None,
            ),
        )
        .await,
    );
    let entry = |action, uln| AuditEntry {
        at: master.created_at,
        action,
        uln,
        other_uln: Some(master.uln),
        organisation_id: None,
        actor: "desk".into(),
        reason: Some("same person".into()),
    };
    let write = MergeWrite {
        master: (master.id, master.version),
        duplicate: (duplicate.id, duplicate.version),
        at: master.created_at,
        audit: entry(AuditAction::Merged, duplicate.uln),
    };
    let LinkOutcome::Written {
        master: after,
        learner: linked,
    } = store.merge(&write).await.expect("merge")
    else {
        panic!("merge conflicted");
    };
    assert_eq!(linked.status, LearnerStatus::Linked);
    assert_eq!(linked.master_uln, Some(master.uln));
    assert_eq!(linked.resolved_uln(), master.uln);
    assert_eq!(after.version, master.version + 1);
    assert_eq!(
        store.linked_ulns(&[master.uln]).await.expect("links"),
        vec![(master.uln, duplicate.uln)]
    );
    let mut read = store
        .learners_with_links(&[master.uln, duplicate.uln, fresh_uln(900_000_001)])
        .await
        .expect("read");
    read.sort_by_key(|(learner, _)| learner.uln);
    let mut expected = vec![
        (after.clone(), vec![duplicate.uln]),
        (linked.clone(), Vec::new()),
    ];
    expected.sort_by_key(|(learner, _)| learner.uln);
    assert_eq!(read, expected);
    // The same write again is stale.
    assert_eq!(
        store.merge(&write).await.expect("merge"),
        LinkOutcome::VersionConflict
    );

    let LinkOutcome::Written {
        master: former,
        learner: restored,
    } = store
        .unmerge(
            (linked.id, linked.version),
            (after.id, after.version),
            master.created_at,
            &entry(AuditAction::Unmerged, duplicate.uln),
        )
        .await
        .expect("unmerge")
    else {
        panic!("unmerge conflicted");
    };
    assert_eq!(restored.status, LearnerStatus::Active);
    assert_eq!(restored.master_uln, None);
    assert_eq!(restored.details, duplicate.details);
    assert_eq!(former.details, master.details);
    assert!(
        store
            .linked_ulns(&[master.uln])
            .await
            .expect("links")
            .is_empty()
    );
    let actions: Vec<AuditAction> = store
        .audit_entries(duplicate.uln)
        .await
        .expect("audit")
        .iter()
        .map(|e| e.action)
        .collect();
    assert_eq!(actions, [AuditAction::Merged, AuditAction::Unmerged]);
}

/// A valid ULN at or after `stem`.
fn fresh_uln(stem: u32) -> Uln {
    (stem..)
        .find_map(Uln::from_stem)
        .expect("some stem carries a check digit")
}

async fn concurrent_inserts_of_one_person_leave_one(store: Arc<dyn LearnerStore>) {
    let person = details("Ida", "Quinn", (2007, 7, 7), "G1 1XQ");
    let racers: Vec<_> = [500_000_001, 600_000_001]
        .into_iter()
        .map(|stem| {
            let store = Arc::clone(&store);
            let learner = NewLearner {
                uln: fresh_uln(stem),
                ..new("1000000043", person.clone(), None)
            };
            tokio::spawn(async move { store.insert_learners(&[learner]).await })
        })
        .collect();
    let mut outcomes = Vec::new();
    for racer in racers {
        outcomes.extend(racer.await.expect("task ran").expect("insert"));
    }

    let winners: Vec<&LearnerRecord> = outcomes
        .iter()
        .filter_map(|o| match o {
            InsertOutcome::Inserted(record) => Some(record),
            _ => None,
        })
        .collect();
    assert_eq!(winners.len(), 1, "{outcomes:?}");
    let loser = outcomes
        .iter()
        .find(|o| !matches!(o, InsertOutcome::Inserted(_)));
    assert_eq!(loser, Some(&InsertOutcome::KeysTaken(winners[0].clone())));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn conformance_on_every_backend() {
    lrs_store::testing::for_each_backend("learner", async |database| run(database).await).await;
}
