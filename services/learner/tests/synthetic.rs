//! Matching over a register of synthetic learners (skewed surnames, shared birthdays, twins,
//! siblings): every learner is found exactly by its own keys, near misses are possible
//! matches, and relatives are never taken for each other.

use std::sync::Arc;

use lrs_fields::codes::AbilityToShare;
use lrs_fields::date::FixedClock;
use lrs_learner::LearnerConfig;
use lrs_learner::domain::matching::Outcome;
use lrs_learner::domain::{LearnerDetails, MatchProfile};
use lrs_learner::register::{Register, Registered, Registration};
use lrs_store::testing::for_each_backend;
use lrs_synthetic::{Learners, Relation, SyntheticLearner};

fn details(learner: &SyntheticLearner) -> LearnerDetails {
    LearnerDetails {
        title: None,
        given_name: learner.given_name.clone(),
        preferred_given_name: None,
        middle_names: None,
        family_name: learner.family_name.clone(),
        previous_family_name: None,
        family_name_at_16: None,
        school_at_16: None,
        address_line_1: None,
        address_line_2: None,
        address_town: None,
        address_county_or_city: None,
        postcode: learner.postcode.clone(),
        date_of_address_capture: None,
        date_of_birth: learner.date_of_birth,
        place_of_birth: None,
        email_address: None,
        gender: learner.gender,
        nationality: None,
        scottish_candidate_number: None,
        verification_type: 0,
        other_verification_description: None,
        ability_to_share: AbilityToShare::NoticeSeen,
        notes: None,
        upn: learner.upn.clone(),
        uci: learner.uci.clone(),
    }
}

fn search(details: &LearnerDetails) -> MatchProfile {
    let mut profile = details.match_profile();
    profile.preferred_given = None;
    profile.previous_family = None;
    profile.refiners = Default::default();
    profile
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn synthetic_learners_match_themselves_and_not_their_relatives() {
    for_each_backend("learner", async |database| {
        database
            .migrate(
                &lrs_learner::POSTGRES_MIGRATIONS,
                &lrs_learner::SQLITE_MIGRATIONS,
            )
            .await
            .expect("migrated");
        let store = lrs_learner::store::for_database(&database);
        let clock = Arc::new(FixedClock::on_london_date(
            lrs_synthetic::Options::default().reference_date,
        ));
        let register = Register::new(store, clock, &LearnerConfig::default());

        let people: Vec<SyntheticLearner> = Learners::new(5).take(3_000).collect();
        let registrations: Vec<Registration> = people
            .iter()
            .enumerate()
            .map(|(i, p)| Registration {
                request_id: format!("load:{i}"),
                details: details(p),
            })
            .collect();
        let mut outcomes = Vec::new();
        for chunk in registrations.chunks(1000) {
            outcomes.extend(
                register
                    .register_many("org", chunk)
                    .await
                    .expect("registered"),
            );
        }

        let registered: Vec<(usize, lrs_fields::uln::Uln)> = outcomes
            .iter()
            .enumerate()
            .filter_map(|(i, o)| match o {
                Registered::New(uln) => Some((i, *uln)),
                Registered::Existing(_) => None,
            })
            .collect();
        assert!(registered.len() > 2_950, "{} registered", registered.len());

        // Every registered learner is found exactly by its own five keys, in one set.
        let sample: Vec<&(usize, lrs_fields::uln::Uln)> = registered.iter().step_by(7).collect();
        let searches: Vec<MatchProfile> = sample
            .iter()
            .map(|(i, _)| search(&registrations[*i].details))
            .collect();
        let answers = register
            .find_many("org", &searches, false)
            .await
            .expect("matched");
        for ((_, uln), answer) in sample.iter().zip(&answers) {
            assert_eq!(answer.decision.outcome, Outcome::ExactMatch);
            assert_eq!(answer.decision.matches[0].uln, *uln);
        }

        // A misspelt family name finds the learner among the possible matches.
        for (i, uln) in registered.iter().step_by(37) {
            let mut typo = registrations[*i].details.clone();
            typo.family_name = format!("{}x", typo.family_name);
            let answer = register
                .find("org", &search(&typo), false)
                .await
                .expect("searched");
            let found = answer.decision.matches.iter().any(|m| m.uln == *uln);
            assert!(
                answer.decision.outcome == Outcome::TooManyMatches || found,
                "{:?}",
                answer.decision
            );
        }

        // A twin's search answers that twin exactly, never the other.
        let by_index: std::collections::HashMap<usize, lrs_fields::uln::Uln> =
            registered.iter().copied().collect();
        let twins: Vec<usize> = (1..people.len())
            .filter(|i| people[*i].relation == Relation::Twin)
            .collect();
        assert!(!twins.is_empty());
        for &second in twins.iter().take(20) {
            let (Some(first_uln), Some(second_uln)) =
                (by_index.get(&(second - 1)), by_index.get(&second))
            else {
                continue;
            };
            let answer = register
                .find("org", &search(&details(&people[second - 1])), false)
                .await
                .expect("searched");
            assert_eq!(answer.decision.outcome, Outcome::ExactMatch);
            assert_eq!(answer.decision.matches[0].uln, *first_uln);
            assert_ne!(answer.decision.matches[0].uln, *second_uln);
        }
    })
    .await;
}
