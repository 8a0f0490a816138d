//! The learner service through its generated clients, on SQLite always and on PostgreSQL when
//! `DATABASE_URL` is set.

mod support;

use chrono::TimeDelta;
use lrs_proto::learner::v1 as pb;
use lrs_proto::types::v1 as types;
use lrs_server::auth::Role;
use lrs_store::testing::for_each_backend;
use support::{DESK, ORG_A, ORG_B, Suite, assert_failure, jane, learner, search_for};
use tonic::Code;

fn outcome(value: i32) -> pb::MatchOutcome {
    pb::MatchOutcome::try_from(value).expect("a known outcome")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn registration_needs_a_recent_search_that_found_no_exact_match() {
    for_each_backend("learner", async |database| {
        let suite = Suite::start(&database).await;
        let mut online = suite.client(ORG_A, &[Role::OnlineUser]).await;
        let mut other_org = suite.client(ORG_B, &[Role::OnlineUser]).await;

        assert_failure(
            online.register(jane(), "").await,
            Code::FailedPrecondition,
            "SEARCH_REQUIRED",
        );

        // Another organisation's search does not count.
        other_org.find(search_for(&jane())).await.expect("search");
        assert_failure(
            online.register(jane(), "").await,
            Code::FailedPrecondition,
            "SEARCH_REQUIRED",
        );

        let found = online.find(search_for(&jane())).await.expect("search");
        assert_eq!(outcome(found.outcome), pb::MatchOutcome::NoMatch);
        assert_eq!(found.response_code, "WSRC0001");

        // Thirty-one minutes later the search no longer counts.
        suite.clock.advance(TimeDelta::minutes(31));
        assert_failure(
            online.register(jane(), "").await,
            Code::FailedPrecondition,
            "SEARCH_REQUIRED",
        );

        online.find(search_for(&jane())).await.expect("search");
        suite.clock.advance(TimeDelta::minutes(29));
        let registered = online.register(jane(), "").await.expect("registered");
        assert!(lrs_fields::uln::Uln::parse(&registered.uln).is_ok());
        assert_eq!(registered.version, 1);
        assert_eq!(registered.registered_by_organisation_id, ORG_A);

        // Searched again, the learner is found exactly; registering again is refused.
        let mut differently = search_for(&jane());
        differently.family_name = "SMITH".into();
        differently.postcode = "cv49ee".into();
        let found = online.find(differently).await.expect("search");
        assert_eq!(outcome(found.outcome), pb::MatchOutcome::ExactMatch);
        assert_eq!(found.candidates.len(), 1);
        assert_eq!(found.candidates[0].score, 100);
        let learner = found.candidates[0].learner.as_ref().expect("full details");
        assert_eq!(learner.uln, registered.uln);
        assert_failure(
            online.register(jane(), "").await,
            Code::FailedPrecondition,
            "SEARCH_REQUIRED",
        );

        // Another organisation that searched before the registration may not register it.
        other_org.find(search_for(&jane())).await.expect("search");
        let refused = other_org.register(jane(), "").await;
        assert_failure(refused, Code::FailedPrecondition, "SEARCH_REQUIRED");
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_learner_whose_five_keys_exist_is_already_registered() {
    for_each_backend("learner", async |database| {
        let suite = Suite::start(&database).await;
        let mut a = suite.client(ORG_A, &[Role::OnlineUser]).await;
        let mut b = suite.client(ORG_B, &[Role::OnlineUser]).await;

        // Both organisations search before either registers; the second is refused.
        a.find(search_for(&jane())).await.expect("search");
        b.find(search_for(&jane())).await.expect("search");
        let first = a.register(jane(), "").await.expect("registered");
        let second = b.register(jane(), "").await;
        assert_failure(second, Code::AlreadyExists, "LEARNER_ALREADY_REGISTERED");
        assert!(first.uln.len() == 10);
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn concurrent_registrations_of_one_person_give_one_uln() {
    for_each_backend("learner", async |database| {
        let suite = Suite::start(&database).await;
        let mut a = suite.client(ORG_A, &[Role::OnlineUser]).await;
        let mut b = suite.client(ORG_B, &[Role::OnlineUser]).await;
        a.find(search_for(&jane())).await.expect("search");
        b.find(search_for(&jane())).await.expect("search");

        let (first, second) = tokio::join!(
            tokio::spawn(async move { a.register(jane(), "a-1").await }),
            tokio::spawn(async move { b.register(jane(), "b-1").await }),
        );
        let outcomes = [first.expect("task"), second.expect("task")];
        let registered: Vec<_> = outcomes.iter().filter(|o| o.is_ok()).collect();
        assert_eq!(registered.len(), 1, "{outcomes:?}");
        let refused = outcomes
            .into_iter()
            .find(Result::is_err)
            .expect("one refused");
        assert_failure(refused, Code::AlreadyExists, "LEARNER_ALREADY_REGISTERED");
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_retry_with_the_same_request_id_answers_the_first_registration() {
    for_each_backend("learner", async |database| {
        let suite = Suite::start(&database).await;
        let mut online = suite.client(ORG_A, &[Role::OnlineUser]).await;
        online.find(search_for(&jane())).await.expect("search");

        let first = online.register(jane(), "req-42").await.expect("registered");
        let again = online
            .register(jane(), "req-42")
            .await
            .expect("the same answer");
        assert_eq!(first.uln, again.uln);

        // Even long after the search window.
        suite.clock.advance(TimeDelta::hours(5));
        let later = online
            .register(jane(), "req-42")
            .await
            .expect("the same answer");
        assert_eq!(first.uln, later.uln);

        let other = learner(
            "Omar",
            "Haddad",
            (2007, 1, 9),
            types::Gender::Male,
            "B1 1AA",
        );
        online.find(search_for(&other)).await.expect("search");
        let distinct = online.register(other, "req-43").await.expect("registered");
        assert_ne!(distinct.uln, first.uln);
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bad_requests_list_every_bad_field() {
    for_each_backend("learner", async |database| {
        let suite = Suite::start(&database).await;
        let mut online = suite.client(ORG_A, &[Role::OnlineUser]).await;
        let bad = pb::Learner {
            given_name: "   ".into(),
            family_name: "x".repeat(36),
            postcode: "CV4 9CE".into(),
            date_of_birth: Some(types::Date {
                year: 2008,
                month: 2,
                day: 30,
            }),
            gender: 0,
            verification_type: pb::VerificationType::Other as i32,
            ability_to_share: types::AbilityToShare::OptedOut as i32,
            email_address: "not an email".into(),
            upn: "A12345678901X".into(),
            uci: "123".into(),
            ..pb::Learner::default()
        };
        let status = online.register(bad, "").await.expect_err("refused");
        assert_eq!(status.code(), Code::InvalidArgument);
        let mut fields = lrs_server::error::status_bad_fields(&status);
        fields.sort();
        for expected in [
            "learner.ability_to_share",
            "learner.date_of_birth",
            "learner.email_address",
            "learner.family_name",
            "learner.gender",
            "learner.given_name",
            "learner.other_verification_description",
            "learner.postcode",
            "learner.uci",
            "learner.upn",
        ] {
            assert!(
                fields.iter().any(|f| f == expected),
                "{expected} missing from {fields:?}"
            );
        }

        // Twelve years old on the clock's date is out of range; so is 111.
        let young = learner(
            "Ava",
            "Young",
            (2012, 9, 2),
            types::Gender::Female,
            "CV4 9EE",
        );
        let status = online.register(young, "").await.expect_err("too young");
        assert_eq!(
            lrs_server::error::status_bad_fields(&status),
            ["learner.date_of_birth"]
        );
        let old = learner(
            "Ada",
            "Old",
            (1914, 8, 31),
            types::Gender::Female,
            "CV4 9EE",
        );
        let status = online.register(old, "").await.expect_err("too old");
        assert_eq!(
            lrs_server::error::status_bad_fields(&status),
            ["learner.date_of_birth"]
        );
        let thirteen = learner(
            "Ava",
            "Young",
            (2012, 9, 1),
            types::Gender::Female,
            "CV4 9EE",
        );
        online.find_and_register(thirteen).await;

        // A search with a missing key says which.
        let mut search = search_for(&jane());
        search.date_of_birth = None;
        search.postcode = String::new();
        let status = online.find(search).await.expect_err("refused");
        let mut fields = lrs_server::error::status_bad_fields(&status);
        fields.sort();
        assert_eq!(fields, ["search.date_of_birth", "search.postcode"]);

        // A date of birth after the clock's date finds nobody: it is refused, naming it.
        let mut search = search_for(&jane());
        search.date_of_birth = Some(types::Date {
            year: 2030,
            month: 1,
            day: 1,
        });
        let status = online.find(search).await.expect_err("refused");
        assert_eq!(status.code(), Code::InvalidArgument);
        assert_eq!(
            lrs_server::error::status_bad_fields(&status),
            ["search.date_of_birth"]
        );
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn matching_through_the_service() {
    for_each_backend("learner", async |database| {
        let suite = Suite::start(&database).await;
        let mut online = suite.client(ORG_A, &[Role::OnlineUser]).await;
        let registered = online.find_and_register(jane()).await;
        let twin = learner(
            "Jade",
            "Smith",
            (2008, 3, 14),
            types::Gender::Female,
            "CV4 9EE",
        );
        let twin = online.find_and_register(twin).await;

        // A misspelt family name: a possible match with Jane first.
        let mut typo = search_for(&jane());
        typo.family_name = "Smiht".into();
        let found = online.find(typo).await.expect("search");
        assert_eq!(outcome(found.outcome), pb::MatchOutcome::PossibleMatches);
        assert_eq!(found.response_code, "WSRC0003");
        let first = found.candidates[0].learner.as_ref().expect("details");
        assert_eq!(first.uln, registered.uln);

        // Both names misspelt so that neither sounds the same, after a move: the learner
        // born that day is still a candidate, by the family name's initial.
        let mut moved = search_for(&jane());
        moved.given_name = "Jame".into();
        moved.family_name = "Smiht".into();
        moved.postcode = "M1 1AE".into();
        let found = online.find(moved).await.expect("search");
        assert_eq!(outcome(found.outcome), pb::MatchOutcome::PossibleMatches);
        let ulns: Vec<&str> = found
            .candidates
            .iter()
            .filter_map(|c| c.learner.as_ref().map(|l| l.uln.as_str()))
            .collect();
        assert!(ulns.contains(&registered.uln.as_str()), "{ulns:?}");

        // Day and month swapped, or one part of the date different: still possible.
        let mut transposed = search_for(&jane());
        transposed.given_name = "Jane".into();
        transposed.date_of_birth = Some(types::Date {
            year: 2008,
            month: 3,
            day: 4,
        });
        let found = online.find(transposed).await.expect("search");
        assert_eq!(outcome(found.outcome), pb::MatchOutcome::PossibleMatches);

        // The twin searched for exactly is found exactly, not Jane.
        let found = online.find(search_for(&twin)).await.expect("search");
        assert_eq!(outcome(found.outcome), pb::MatchOutcome::ExactMatch);
        assert_eq!(
            found.candidates[0].learner.as_ref().map(|l| l.uln.clone()),
            Some(twin.uln.clone())
        );

        // Accents, hyphens, apostrophes, case and spaces all agree exactly.
        let irish = learner(
            "Zoë",
            "O'Brien-Smith",
            (2006, 11, 2),
            types::Gender::Female,
            "EC1A 1BB",
        );
        let irish = online.find_and_register(irish).await;
        let mut plain = search_for(&irish);
        plain.given_name = "ZOE".into();
        plain.family_name = "obrien smith".into();
        plain.postcode = "ec1a1bb".into();
        let found = online.find(plain).await.expect("search");
        assert_eq!(outcome(found.outcome), pb::MatchOutcome::ExactMatch);

        // A common surname with another date of birth and given name is no match.
        let stranger = learner(
            "Maya",
            "Smith",
            (1999, 7, 21),
            types::Gender::Female,
            "M1 1AE",
        );
        let found = online.find(search_for(&stranger)).await.expect("search");
        assert_eq!(outcome(found.outcome), pb::MatchOutcome::NoMatch);
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn more_than_ten_possible_matches_are_too_many() {
    for_each_backend("learner", async |database| {
        let suite = Suite::start(&database).await;
        let internal = suite.service().await;
        let registrations = (0..11)
            .map(|i| pb::LearnerRegistration {
                record_id: format!("{i}"),
                request_id: format!("job-1:{i}"),
                learner: Some(learner(
                    "Jane",
                    "Smith",
                    (2008, 3, 14),
                    types::Gender::Female,
                    &format!("CV{} 9EE", 10 + i),
                )),
            })
            .collect();
        let request = pb::RegisterLearnersRequest {
            acting_for: Some(types::Actor {
                organisation_id: ORG_A.into(),
                user_id: String::new(),
            }),
            registrations,
        };
        internal
            .inner
            .clone()
            .register_learners(internal.signed(request))
            .await
            .expect("registered");

        let mut online = suite.client(ORG_A, &[Role::OnlineUser]).await;
        let found = online.find(search_for(&jane())).await.expect("search");
        assert_eq!(outcome(found.outcome), pb::MatchOutcome::TooManyMatches);
        assert_eq!(found.response_code, "WSRC0002");
        assert!(found.candidates.is_empty());
        // Too many is not an exact match, so the learner may be registered.
        online.register(jane(), "").await.expect("registered");
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn get_learner_by_uln_and_names() {
    for_each_backend("learner", async |database| {
        let suite = Suite::start(&database).await;
        let mut online = suite.client(ORG_A, &[Role::OnlineUser]).await;
        let registered = online.find_and_register(jane()).await;
        let mut ao = suite.client(ORG_B, &[Role::AoUser]).await;

        let found = ao
            .get(&registered.uln, "JANE", " smith ", pb::FindType::Full)
            .await
            .expect("get");
        assert_eq!(outcome(found.outcome), pb::MatchOutcome::ExactMatch);
        assert_eq!(found.response_code, "WSRC0004");
        assert_eq!(
            found.learner.as_ref().map(|l| l.postcode.as_str()),
            Some("CV4 9EE")
        );

        let check = ao
            .get(&registered.uln, "Jane", "Smith", pb::FindType::Check)
            .await
            .expect("get");
        assert_eq!(check.found_uln, registered.uln);
        assert!(check.learner.is_none());

        let wrong = ao
            .get(&registered.uln, "Janet", "Smith", pb::FindType::Full)
            .await
            .expect("get");
        assert_eq!(outcome(wrong.outcome), pb::MatchOutcome::NoMatch);
        assert!(wrong.learner.is_none() && wrong.found_uln.is_empty());
        let unknown = ao
            .get("1000000043", "Jane", "Smith", pb::FindType::Full)
            .await
            .expect("get");
        assert_eq!(outcome(unknown.outcome), pb::MatchOutcome::NoMatch);

        let status = ao
            .get("1000000042", "", "Smith", pb::FindType::Full)
            .await
            .expect_err("bad");
        let mut fields = lrs_server::error::status_bad_fields(&status);
        fields.sort();
        assert_eq!(fields, ["given_name", "uln"]);
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn updates_check_the_version_and_the_ability_to_share() {
    for_each_backend("learner", async |database| {
        let suite = Suite::start(&database).await;
        let mut online = suite.client(ORG_A, &[Role::OnlineUser]).await;
        let registered = online.find_and_register(jane()).await;

        let mut change = registered.clone();
        change.notes = "moved house".into();
        change.address_town = "Coventry".into();
        let updated = online
            .update(change.clone(), &["notes", "address_town"])
            .await
            .expect("updated");
        assert!(updated.changed);
        assert_eq!(updated.response_code, "WSRC0006");
        let after = updated.learner.expect("the learner");
        assert_eq!(after.version, 2);
        assert_eq!(after.notes, "moved house");

        // The same change with the version read before: stale, nothing written.
        let mut stale = change.clone();
        stale.notes = "other".into();
        assert_failure(
            online.update(stale, &["notes"]).await,
            Code::Aborted,
            "VERSION_CONFLICT",
        );
        let now = online
            .get(&registered.uln, "Jane", "Smith", pb::FindType::Full)
            .await
            .expect("get");
        assert_eq!(
            now.learner.as_ref().map(|l| l.notes.as_str()),
            Some("moved house")
        );

        // Nothing to change says so.
        let same = online.update(after.clone(), &[]).await.expect("no change");
        assert!(!same.changed);
        assert_eq!(same.response_code, "WSRC0020");
        assert_eq!(same.learner.map(|l| l.version), Some(2));

        // Opting out is refused on new data.
        let mut opt_out = after.clone();
        opt_out.ability_to_share = types::AbilityToShare::OptedOut as i32;
        let status = online
            .update(opt_out, &["ability_to_share"])
            .await
            .expect_err("refused");
        assert_eq!(status.code(), Code::InvalidArgument);

        // Unknown ULN, unknown mask path.
        let mut unknown = after.clone();
        unknown.uln = "1000000043".into();
        assert_failure(
            online.update(unknown, &["notes"]).await,
            Code::NotFound,
            "LEARNER_NOT_FOUND",
        );
        let status = online
            .update(after.clone(), &["uln"])
            .await
            .expect_err("refused");
        assert_eq!(
            lrs_server::error::status_bad_fields(&status),
            ["update_mask"]
        );
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_stored_opt_out_moves_only_to_notice_seen_and_is_audited() {
    for_each_backend("learner", async |database| {
        let suite = Suite::start(&database).await;
        let mut online = suite.client(ORG_A, &[Role::OnlineUser]).await;
        let registered = online.find_and_register(jane()).await;

        // A historic opt-out, as loaded from the old register.
        let register = suite.learner.register();
        let uln = lrs_fields::uln::Uln::parse(&registered.uln).expect("valid");
        let record = register
            .store()
            .learner_by_uln(uln)
            .await
            .expect("read")
            .expect("stored");
        let mut details = record.details.clone();
        details.ability_to_share = lrs_fields::codes::AbilityToShare::OptedOut;
        let change = lrs_learner::store::LearnerChange {
            id: record.id,
            expected_version: record.version,
            details,
            at: record.updated_at,
            audit: None,
        };
        register
            .store()
            .update_learners(&[change])
            .await
            .expect("written");

        let mut lower = registered.clone();
        lower.version = 2;
        lower.ability_to_share = types::AbilityToShare::NoticeNotSeen as i32;
        let refused = online.update(lower.clone(), &["ability_to_share"]).await;
        assert_failure(
            refused,
            Code::FailedPrecondition,
            "ABILITY_TO_SHARE_CHANGE_REFUSED",
        );

        let mut seen = lower;
        seen.ability_to_share = types::AbilityToShare::NoticeSeen as i32;
        let updated = online
            .update(seen, &["ability_to_share"])
            .await
            .expect("updated");
        assert!(updated.changed);
        let audit = register.store().audit_entries(uln).await.expect("audit");
        assert_eq!(audit.len(), 1);
        assert_eq!(
            audit[0].action,
            lrs_learner::store::AuditAction::OptOutEnded
        );
        assert_eq!(audit[0].organisation_id.as_deref(), Some(ORG_A));
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn merge_and_unmerge() {
    for_each_backend("learner", async |database| {
        let suite = Suite::start(&database).await;
        let mut online = suite.client(ORG_A, &[Role::OnlineUser]).await;
        let master = online.find_and_register(jane()).await;
        let duplicate = learner(
            "Jane",
            "Smyth",
            (2008, 3, 14),
            types::Gender::Female,
            "CV4 9EF",
        );
        let duplicate = online.find_and_register(duplicate).await;
        let mut desk = suite.client(DESK, &[Role::ServiceDesk]).await;

        assert_failure(
            online.merge(&master.uln, &duplicate.uln).await,
            Code::PermissionDenied,
            "ROLE_NOT_PERMITTED",
        );
        assert_failure(
            desk.merge(&master.uln, &master.uln).await,
            Code::FailedPrecondition,
            "SAME_LEARNER",
        );

        let merged = desk
            .merge(&master.uln, &duplicate.uln)
            .await
            .expect("merged");
        let linked = merged.duplicate.expect("duplicate");
        assert_eq!(linked.status, pb::LearnerStatus::Linked as i32);
        assert_eq!(linked.master_uln, master.uln);
        assert_eq!(
            merged.master.expect("master").linked_ulns,
            vec![duplicate.uln.clone()]
        );

        // Merging into a linked learner is refused.
        let third = online
            .find_and_register(learner(
                "Kai",
                "Lee",
                (2005, 5, 5),
                types::Gender::Male,
                "L1 8JQ",
            ))
            .await;
        assert_failure(
            desk.merge(&duplicate.uln, &third.uln).await,
            Code::FailedPrecondition,
            "MASTER_IS_LINKED",
        );

        // The linked ULN answers with its master.
        let found = online
            .get(&duplicate.uln, "Jane", "Smyth", pb::FindType::Full)
            .await
            .expect("get");
        assert_eq!(outcome(found.outcome), pb::MatchOutcome::LinkedMaster);
        assert_eq!(found.response_code, "WSRC0022");
        assert!(found.master_substituted);
        assert_eq!(found.found_uln, master.uln);
        let searched = online
            .find(search_for(&learner(
                "Jane",
                "Smyth",
                (2008, 3, 14),
                types::Gender::Female,
                "CV4 9EF",
            )))
            .await
            .expect("search");
        assert_eq!(outcome(searched.outcome), pb::MatchOutcome::LinkedMaster);
        assert_eq!(searched.candidates[0].matched_uln, duplicate.uln);
        let retrieved = online
            .batch_get(vec![duplicate.uln.clone()])
            .await
            .expect("batch get");
        assert_eq!(
            retrieved.learners[0].status,
            pb::RetrievedUlnStatus::Linked as i32
        );
        assert_eq!(retrieved.learners[0].master_uln, master.uln);

        let restored = desk.unmerge(&duplicate.uln).await.expect("unmerged");
        let learner = restored.learner.expect("restored");
        assert_eq!(learner.status, pb::LearnerStatus::Active as i32);
        assert_eq!(learner.family_name, "Smyth");
        assert!(
            restored
                .former_master
                .expect("master")
                .linked_ulns
                .is_empty()
        );
        assert_failure(
            desk.unmerge(&duplicate.uln).await,
            Code::FailedPrecondition,
            "LEARNER_NOT_LINKED",
        );

        let audit = suite
            .learner
            .register()
            .store()
            .audit_entries(lrs_fields::uln::Uln::parse(&duplicate.uln).expect("valid"))
            .await
            .expect("audit");
        assert_eq!(audit.len(), 2);
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn roles_decide_who_may_call_what() {
    for_each_backend("learner", async |database| {
        let suite = Suite::start(&database).await;
        let mut online = suite.client(ORG_A, &[Role::OnlineUser]).await;
        let registered = online.find_and_register(jane()).await;

        let mut viewer = suite.client(ORG_A, &[Role::ViewOnly]).await;
        viewer
            .find(search_for(&jane()))
            .await
            .expect("view-only users find");
        assert_failure(
            viewer.register(jane(), "").await,
            Code::PermissionDenied,
            "ROLE_NOT_PERMITTED",
        );
        assert_failure(
            viewer.update(registered.clone(), &["notes"]).await,
            Code::PermissionDenied,
            "ROLE_NOT_PERMITTED",
        );

        let mut ao = suite.client(ORG_B, &[Role::AoUser]).await;
        assert_failure(
            ao.find(search_for(&jane())).await,
            Code::PermissionDenied,
            "ROLE_NOT_PERMITTED",
        );
        let verified = ao
            .verify(pb::LearnerToVerify {
                uln: registered.uln.clone(),
                given_name: "Jane".into(),
                family_name: "Smith".into(),
                date_of_birth: registered.date_of_birth,
                gender: types::Gender::Female as i32,
            })
            .await
            .expect("AO users verify");
        assert_eq!(verified.outcome, pb::VerificationOutcome::Verified as i32);

        let mut batch = suite.client(ORG_A, &[Role::BatchUser]).await;
        assert_failure(
            batch.find(search_for(&jane())).await,
            Code::PermissionDenied,
            "ROLE_NOT_PERMITTED",
        );

        let user_internal = suite.internal_as_user(ORG_A, &[Role::ServiceDesk]).await;
        let request = pb::VerifyLearnersRequest {
            acting_for: None,
            records: vec![],
        };
        let refused = user_internal
            .inner
            .clone()
            .verify_learners(user_internal.signed(request))
            .await;
        assert_failure(refused, Code::PermissionDenied, "SERVICE_ONLY");

        let mut desk = suite.client(DESK, &[Role::ServiceDesk]).await;
        desk.find(search_for(&jane()))
            .await
            .expect("the service desk may do everything");
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn verify_and_batch_get() {
    for_each_backend("learner", async |database| {
        let suite = Suite::start(&database).await;
        let mut online = suite.client(ORG_A, &[Role::OnlineUser]).await;
        let registered = online.find_and_register(jane()).await;
        let mut ao = suite.client(ORG_B, &[Role::AoUser]).await;

        let claim = |given: &str, family: &str, day: i32| pb::LearnerToVerify {
            uln: registered.uln.clone(),
            given_name: given.into(),
            family_name: family.into(),
            date_of_birth: Some(types::Date {
                year: 2008,
                month: 3,
                day,
            }),
            gender: 0,
        };
        let verdict = ao.verify(claim("Smith", "Jane", 14)).await.expect("verify");
        assert_eq!(verdict.outcome, pb::VerificationOutcome::Similar as i32);
        let verdict = ao.verify(claim("Jane", "Smith", 15)).await.expect("verify");
        assert_eq!(verdict.outcome, pb::VerificationOutcome::NotMatched as i32);
        assert_eq!(
            verdict.mismatched_keys,
            [pb::DemographicKey::DateOfBirth as i32]
        );
        assert_eq!(verdict.failure_flags, ["VRF7"]);
        let mut unknown = claim("Jane", "Smith", 14);
        unknown.uln = "1000000043".into();
        let verdict = ao.verify(unknown).await.expect("verify");
        assert_eq!(verdict.outcome, pb::VerificationOutcome::UlnNotFound as i32);

        let asked = vec![registered.uln.clone(), "1000000043".into(), "12345".into()];
        let retrieved = ao.batch_get(asked).await.expect("batch get");
        let statuses: Vec<i32> = retrieved.learners.iter().map(|l| l.status).collect();
        assert_eq!(
            statuses,
            [
                pb::RetrievedUlnStatus::Active as i32,
                pb::RetrievedUlnStatus::NotFound as i32,
                pb::RetrievedUlnStatus::Invalid as i32
            ]
        );
        assert_eq!(retrieved.learners[0].family_name, "Smith");
        let too_many = vec![registered.uln.clone(); 201];
        let status = ao.batch_get(too_many).await.expect_err("too many");
        assert_eq!(status.code(), Code::InvalidArgument);

        let valid = ao.validate("9276308686").await.expect("validate");
        assert!(valid.valid);
        let invalid = ao.validate(" 9276308686").await.expect("validate");
        assert!(!invalid.valid);
        assert_eq!(invalid.fault, pb::UlnFault::NotDigits as i32);
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn internal_matching_and_bulk_registration_are_set_based_and_idempotent() {
    for_each_backend("learner", async |database| {
        let suite = Suite::start(&database).await;
        let mut online = suite.client(ORG_A, &[Role::OnlineUser]).await;
        let known = online.find_and_register(jane()).await;
        let internal = suite.service().await;
        let acting_for = Some(types::Actor {
            organisation_id: ORG_A.into(),
            user_id: "0b0c6a0e-2f44-4bb6-9a55-7bd1c1c0c0ff".into(),
        });

        let records = vec![
            pb::MatchRecord {
                record_id: "1".into(),
                uln: String::new(),
                search: Some(search_for(&jane())),
            },
            pb::MatchRecord {
                record_id: "2".into(),
                uln: known.uln.clone(),
                search: Some(search_for(&jane())),
            },
            pb::MatchRecord {
                record_id: "3".into(),
                uln: String::new(),
                search: Some(search_for(&learner(
                    "Noor",
                    "Ali",
                    (2009, 1, 1),
                    types::Gender::Female,
                    "B2 4QA",
                ))),
            },
        ];
        let request = pb::MatchLearnersRequest {
            acting_for: acting_for.clone(),
            records,
            find_type: pb::FindType::Check as i32,
        };
        let matched = internal
            .inner
            .clone()
            .match_learners(internal.signed(request))
            .await
            .expect("matched")
            .into_inner();
        let outcomes: Vec<pb::MatchOutcome> =
            matched.results.iter().map(|r| outcome(r.outcome)).collect();
        assert_eq!(
            outcomes,
            [
                pb::MatchOutcome::ExactMatch,
                pb::MatchOutcome::ExactMatch,
                pb::MatchOutcome::NoMatch
            ]
        );
        assert!(!matched.results[0].matched_by_uln && matched.results[1].matched_by_uln);
        let check = matched.results[0].candidates[0]
            .learner
            .as_ref()
            .expect("check details");
        assert_eq!(check.uln, known.uln);
        assert!(check.postcode.is_empty(), "CHECK answers carry no details");

        let noor = learner("Noor", "Ali", (2009, 1, 1), types::Gender::Female, "B2 4QA");
        let registrations = vec![
            pb::LearnerRegistration {
                record_id: "3".into(),
                request_id: "job-7:3".into(),
                learner: Some(noor.clone()),
            },
            pb::LearnerRegistration {
                record_id: "4".into(),
                request_id: "job-7:4".into(),
                learner: Some(noor.clone()),
            },
            pb::LearnerRegistration {
                record_id: "5".into(),
                request_id: "job-7:5".into(),
                learner: Some(jane()),
            },
        ];
        let request = pb::RegisterLearnersRequest {
            acting_for: acting_for.clone(),
            registrations: registrations.clone(),
        };
        let first = internal
            .inner
            .clone()
            .register_learners(internal.signed(request))
            .await
            .expect("registered")
            .into_inner();
        let outcomes: Vec<i32> = first.results.iter().map(|r| r.outcome).collect();
        use pb::RegistrationOutcome as R;
        assert_eq!(
            outcomes,
            [
                R::Registered as i32,
                R::AlreadyRegistered as i32,
                R::AlreadyRegistered as i32
            ]
        );
        assert_eq!(first.results[0].uln, first.results[1].uln);
        assert_eq!(first.results[2].uln, known.uln);

        // A worker that died after the commit retries the chunk: nobody is registered twice.
        let request = pb::RegisterLearnersRequest {
            acting_for: acting_for.clone(),
            registrations,
        };
        let again = internal
            .inner
            .clone()
            .register_learners(internal.signed(request))
            .await
            .expect("retried")
            .into_inner();
        assert_eq!(again, first);

        // Batch details: an empty UPN is filled, a stored one never overwritten.
        let update = |upn: &str| pb::UpdateLearnersFromBatchRequest {
            acting_for: acting_for.clone(),
            updates: vec![pb::LearnerDetailsUpdate {
                record_id: "3".into(),
                uln: first.results[0].uln.clone(),
                details: Some(pb::Learner {
                    upn: upn.into(),
                    notes: "from the file".into(),
                    ..pb::Learner::default()
                }),
            }],
        };
        let filled = internal
            .inner
            .clone()
            .update_learners_from_batch(internal.signed(update("B801200005001")))
            .await
            .expect("updated")
            .into_inner();
        assert!(filled.results[0].found && filled.results[0].changed);
        let kept = internal
            .inner
            .clone()
            .update_learners_from_batch(internal.signed(update("H801200001001")))
            .await
            .expect("updated")
            .into_inner();
        assert!(!kept.results[0].changed);
        let stored = online
            .get(&first.results[0].uln, "Noor", "Ali", pb::FindType::Full)
            .await
            .expect("get");
        assert_eq!(
            stored.learner.map(|l| l.upn),
            Some("B801200005001".to_owned())
        );

        let records = vec![pb::VerifyRecord {
            record_id: "1".into(),
            learner: Some(pb::LearnerToVerify {
                uln: known.uln.clone(),
                given_name: "Jane".into(),
                family_name: "Smith".into(),
                date_of_birth: None,
                gender: 0,
            }),
        }];
        let request = pb::VerifyLearnersRequest {
            acting_for,
            records,
        };
        let verified = internal
            .inner
            .clone()
            .verify_learners(internal.signed(request))
            .await
            .expect("verified")
            .into_inner();
        assert_eq!(verified.results[0].record_ulns, vec![known.uln.clone()]);
        assert_eq!(
            verified.results[0].ability_to_share,
            types::AbilityToShare::NoticeSeen as i32
        );
    })
    .await;
}
