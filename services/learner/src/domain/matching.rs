//! Matching a search against candidate learners: the score of each candidate and the outcome.
//!
//! The rules are those written on `LearnerService` in `learner.proto` and in the service's
//! README; the tests below hold them to their word.
//!
//! Score (0 to 100) = `30·F + 25·G + D + S + P`, rounded half up:
//!
//! - F and G, name similarity from 0 to 1: 1 when the normalised names are equal; otherwise
//!   the Jaro-Winkler similarity of the normalised names, raised to at least 0.85 when their
//!   phonetic keys agree; below 0.70 counts as 0. The family name is compared with the
//!   stored family and previous family names, the given name with the stored given and
//!   preferred given names, the better taken.
//! - D, date of birth: 25 equal; 12 when day and month are transposed or exactly one of day,
//!   month and year differs; 0 otherwise.
//! - S, gender: 10 equal; 5 when either side is not known (0) or not specified (9); else 0.
//! - P, postcode: 10 equal without spaces; 5 when only the outward code agrees; else 0.
//!
//! A possible match scores at least the threshold *and* agrees at least partly on the date of
//! birth (D > 0): two people with the same names and nothing else in common are not the same
//! learner, and a common name would otherwise flood every search.

use std::cmp::Ordering;
use std::collections::HashMap;

use chrono::{Datelike, NaiveDate};
use lrs_fields::codes::Gender;
use lrs_fields::uln::Uln;

use super::{BlockingKeys, Candidate, LearnerStatus, MatchProfile, NameKey};

/// Weight of the family name.
pub const FAMILY_NAME_WEIGHT: f64 = 30.0;
/// Weight of the given name.
pub const GIVEN_NAME_WEIGHT: f64 = 25.0;
/// Points for an equal date of birth.
pub const DATE_OF_BIRTH_POINTS: u32 = 25;
/// Points for a date of birth with day and month transposed, or one part different.
pub const DATE_OF_BIRTH_PARTIAL_POINTS: u32 = 12;
/// Points for an equal gender.
pub const GENDER_POINTS: u32 = 10;
/// Points when either gender is not known or not specified.
pub const GENDER_UNKNOWN_POINTS: u32 = 5;
/// Points for an equal postcode.
pub const POSTCODE_POINTS: u32 = 10;
/// Points for an equal outward code only.
pub const OUTWARD_CODE_POINTS: u32 = 5;
/// Similarity given to names whose phonetic keys agree, when Jaro-Winkler says less.
pub const PHONETIC_FLOOR: f64 = 0.85;
/// Similarity below which a name counts as not agreeing at all.
pub const SIMILARITY_CUTOFF: f64 = 0.70;

/// The policy of a search: its thresholds.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct MatchPolicy {
    /// Lowest score of a possible match (default 60).
    pub threshold: u32,
    /// Most possible matches returned; more is "too many" (10).
    pub max_matches: usize,
}

impl Default for MatchPolicy {
    fn default() -> Self {
        Self {
            threshold: 60,
            max_matches: 10,
        }
    }
}

/// One of the five keys.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Key {
    /// Given name.
    GivenName,
    /// Family name.
    FamilyName,
    /// Date of birth.
    DateOfBirth,
    /// Gender.
    Gender,
    /// Postcode.
    Postcode,
}

/// How one candidate scored against a search.
#[derive(Debug, Clone, PartialEq)]
pub struct Score {
    /// The score, 0 to 100.
    pub points: u32,
    /// Points for the date of birth (0, 12 or 25).
    pub date_points: u32,
    /// The keys that agree exactly after normalisation, in key order.
    pub agreeing_keys: Vec<Key>,
    /// How many refiners given by the search agree.
    pub refiners_agreeing: u32,
}

impl Score {
    /// Whether all five keys agree: an exact match.
    pub fn is_exact(&self) -> bool {
        self.agreeing_keys.len() == 5
    }
}

/// Scores `candidate` against `search`.
pub fn score(search: &MatchProfile, candidate: &MatchProfile) -> Score {
    let family = name_similarity(
        &search.family,
        &candidate.family,
        &candidate.previous_family,
    );
    let given = name_similarity(&search.given, &candidate.given, &candidate.preferred_given);
    let date_points = date_points(search.date_of_birth, candidate.date_of_birth);
    let gender_points = gender_points(search.gender, candidate.gender);
    let postcode_points = postcode_points(&search.postcode, &candidate.postcode);

    let weighted = FAMILY_NAME_WEIGHT * family + GIVEN_NAME_WEIGHT * given;
    // Half up; the weighted sum is never negative, so floor(x + 0.5) is enough.
    let points = (weighted + 0.5).floor() as u32 + date_points + gender_points + postcode_points;

    let mut agreeing_keys = Vec::with_capacity(5);
    if search.given.normalised == candidate.given.normalised {
        agreeing_keys.push(Key::GivenName);
    }
    if search.family.normalised == candidate.family.normalised {
        agreeing_keys.push(Key::FamilyName);
    }
    if search.date_of_birth == candidate.date_of_birth {
        agreeing_keys.push(Key::DateOfBirth);
    }
    if search.gender == candidate.gender {
        agreeing_keys.push(Key::Gender);
    }
    if search.postcode == candidate.postcode {
        agreeing_keys.push(Key::Postcode);
    }

    Score {
        points: points.min(100),
        date_points,
        agreeing_keys,
        refiners_agreeing: refiners_agreeing(search, candidate),
    }
}

/// Similarity of a searched name to a stored name or its alternative, the better taken.
fn name_similarity(searched: &NameKey, stored: &NameKey, alternative: &Option<NameKey>) -> f64 {
    let main = one_name_similarity(searched, stored);
    match alternative {
        Some(alternative) if main < 1.0 => main.max(one_name_similarity(searched, alternative)),
        _ => main,
    }
}

/// Similarity of two names from 0 to 1, by the rule in the module documentation.
pub fn one_name_similarity(a: &NameKey, b: &NameKey) -> f64 {
    if a.normalised.is_empty() || b.normalised.is_empty() {
        return 0.0;
    }
    if a.normalised == b.normalised {
        return 1.0;
    }
    // The normalised forms are compared directly: lrs_fields::name::similarity would
    // normalise them again, to the same strings, at a cost paid once per candidate.
    let mut similarity = strsim::jaro_winkler(&a.normalised, &b.normalised).clamp(0.0, 1.0);
    if a.phonetic == b.phonetic && !a.phonetic.is_empty() {
        similarity = similarity.max(PHONETIC_FLOOR);
    }
    if similarity < SIMILARITY_CUTOFF {
        0.0
    } else {
        similarity
    }
}

/// Points for the date of birth.
pub fn date_points(searched: NaiveDate, stored: NaiveDate) -> u32 {
    if searched == stored {
        return DATE_OF_BIRTH_POINTS;
    }
    let transposed = searched.year() == stored.year()
        && searched.day() == stored.month()
        && searched.month() == stored.day();
    let differing = [
        searched.year() != stored.year(),
        searched.month() != stored.month(),
        searched.day() != stored.day(),
    ]
    .iter()
    .filter(|differs| **differs)
    .count();
    if transposed || differing == 1 {
        DATE_OF_BIRTH_PARTIAL_POINTS
    } else {
        0
    }
}

/// Points for the gender.
pub fn gender_points(searched: Gender, stored: Gender) -> u32 {
    let vague = |g: Gender| matches!(g, Gender::NotKnown | Gender::NotSpecified);
    if searched == stored {
        GENDER_POINTS
    } else if vague(searched) || vague(stored) {
        GENDER_UNKNOWN_POINTS
    } else {
        0
    }
}

/// Points for the postcode (both compact).
pub fn postcode_points(searched: &str, stored: &str) -> u32 {
    if searched == stored {
        return POSTCODE_POINTS;
    }
    match (outward_code(searched), outward_code(stored)) {
        (Some(a), Some(b)) if a == b => OUTWARD_CODE_POINTS,
        _ => 0,
    }
}

/// The outward code of a compact postcode: all but the last three characters. BFPO numbers
/// have none.
fn outward_code(compact: &str) -> Option<&str> {
    if compact.starts_with("BFPO") || compact.len() <= 3 || !compact.is_ascii() {
        return None;
    }
    Some(&compact[..compact.len() - 3])
}

fn refiners_agreeing(search: &MatchProfile, candidate: &MatchProfile) -> u32 {
    let agree = |a: &Option<String>, b: &Option<String>| match (a, b) {
        (Some(a), Some(b)) => !a.is_empty() && a == b,
        _ => false,
    };
    let (s, c) = (&search.refiners, &candidate.refiners);
    [
        agree(&s.previous_family_name, &c.previous_family_name),
        agree(&s.school_at_16, &c.school_at_16),
        agree(&s.place_of_birth, &c.place_of_birth),
        agree(&s.email_address, &c.email_address),
    ]
    .iter()
    .filter(|agrees| **agrees)
    .count() as u32
}

/// What a search found.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Outcome {
    /// One learner agrees on all five keys (`WSRC0004`).
    ExactMatch,
    /// As exact, but the learner found is linked; its master answers (`WSRC0022`).
    LinkedMaster,
    /// 1 to 10 candidates at or above the threshold (`WSRC0003`).
    PossibleMatches,
    /// More than 10 (`WSRC0002`).
    TooManyMatches,
    /// Nothing (`WSRC0001`).
    NoMatch,
}

impl Outcome {
    /// The old service's response code.
    pub fn response_code(self) -> &'static str {
        match self {
            Outcome::ExactMatch => "WSRC0004",
            Outcome::LinkedMaster => "WSRC0022",
            Outcome::PossibleMatches => "WSRC0003",
            Outcome::TooManyMatches => "WSRC0002",
            Outcome::NoMatch => "WSRC0001",
        }
    }

    /// Whether a search with this outcome found an exact match (which forbids registering).
    pub fn is_exact(self) -> bool {
        matches!(self, Outcome::ExactMatch | Outcome::LinkedMaster)
    }
}

/// One learner in a search's answer.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Match {
    /// The ULN answered: the master's when the record found was linked.
    pub uln: Uln,
    /// The ULN of the record that matched.
    pub matched_uln: Uln,
    /// Whether the record found was linked and its master answers.
    pub master_substituted: bool,
    /// The score, 0 to 100.
    pub score: u32,
    /// The keys that agree exactly.
    pub agreeing_keys: Vec<Key>,
    refiners_agreeing: u32,
}

/// The answer of a search: its outcome and the learners to return, best first.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Decision {
    /// The outcome.
    pub outcome: Outcome,
    /// One for an exact or linked match, 1 to 10 possible matches, none otherwise.
    pub matches: Vec<Match>,
}

/// Scores every candidate and decides the outcome of the search.
///
/// Candidates may come in any order and more than once (a learner found by two blocking
/// keys); the answer is the same. They are borrowed (a slice, or the references of
/// [`CandidateIndex::admitted`]) and read at most twice.
pub fn decide<'a, I>(search: &MatchProfile, candidates: I, policy: MatchPolicy) -> Decision
where
    I: IntoIterator<Item = &'a Candidate>,
    I::IntoIter: Clone,
{
    let candidates = candidates.into_iter();
    let mut by_uln: HashMap<Uln, Match> = HashMap::new();
    let mut exact: HashMap<Uln, bool> = HashMap::new();

    for candidate in candidates.clone() {
        let score = score(search, &candidate.profile);
        let resolved = candidate.resolved_uln();
        let substituted = candidate.status == LearnerStatus::Linked && resolved != candidate.uln;
        if score.is_exact() {
            // A master found itself outweighs a linked record found for it.
            let linked_only = exact.get(&resolved).copied().unwrap_or(true) && substituted;
            exact.insert(resolved, linked_only);
        }
        if score.points < policy.threshold || score.date_points == 0 {
            continue;
        }
        let found = Match {
            uln: resolved,
            matched_uln: candidate.uln,
            master_substituted: substituted,
            score: score.points,
            agreeing_keys: score.agreeing_keys,
            refiners_agreeing: score.refiners_agreeing,
        };
        match by_uln.get(&resolved) {
            Some(kept) if rank(kept, &found) != Ordering::Greater => {}
            _ => {
                by_uln.insert(resolved, found);
            }
        }
    }

    if exact.len() == 1
        && let Some((uln, linked_only)) = exact.into_iter().next()
    {
        return exact_decision(search, candidates, uln, linked_only);
    }

    let mut matches: Vec<Match> = by_uln.into_values().collect();
    matches.sort_by(rank);
    let outcome = match matches.len() {
        0 => Outcome::NoMatch,
        n if n > policy.max_matches => Outcome::TooManyMatches,
        _ => Outcome::PossibleMatches,
    };
    if outcome != Outcome::PossibleMatches {
        matches.clear();
    }
    Decision { outcome, matches }
}

/// The decision for a single exact match on `uln` (a master's, if `linked_only`).
fn exact_decision<'a>(
    search: &MatchProfile,
    candidates: impl Iterator<Item = &'a Candidate>,
    uln: Uln,
    linked_only: bool,
) -> Decision {
    let matched_uln = candidates
        .filter(|c| c.resolved_uln() == uln && score(search, &c.profile).is_exact())
        .map(|c| c.uln)
        .min_by_key(|matched| (*matched != uln, *matched))
        .unwrap_or(uln);
    Decision {
        outcome: if linked_only {
            Outcome::LinkedMaster
        } else {
            Outcome::ExactMatch
        },
        matches: vec![Match {
            uln,
            matched_uln,
            master_substituted: linked_only,
            score: 100,
            agreeing_keys: vec![
                Key::GivenName,
                Key::FamilyName,
                Key::DateOfBirth,
                Key::Gender,
                Key::Postcode,
            ],
            refiners_agreeing: 0,
        }],
    }
}

/// The candidates of a set of searches, indexed by each blocking key, so that each search
/// takes its own candidates from the entries of its keys instead of filtering the candidates
/// of the whole set (which grows with the square of the set's size).
#[derive(Debug)]
pub struct CandidateIndex<'a> {
    candidates: &'a [Candidate],
    by_birth_and_family: HashMap<(NaiveDate, &'a str), Vec<usize>>,
    by_birth_and_given: HashMap<(NaiveDate, &'a str), Vec<usize>>,
    by_birth_and_initial: HashMap<(NaiveDate, &'a str), Vec<usize>>,
    by_phonetic_names: HashMap<(&'a str, &'a str, i32), Vec<usize>>,
    by_postcode: HashMap<&'a str, Vec<usize>>,
}

impl<'a> CandidateIndex<'a> {
    /// Indexes `candidates` by date of birth with each name's phonetic key and with the
    /// family name's initial, by (phonetic family key, phonetic given key, year of birth) and
    /// by compact postcode.
    pub fn new(candidates: &'a [Candidate]) -> CandidateIndex<'a> {
        let mut index = CandidateIndex {
            candidates,
            by_birth_and_family: HashMap::new(),
            by_birth_and_given: HashMap::new(),
            by_birth_and_initial: HashMap::new(),
            by_phonetic_names: HashMap::new(),
            by_postcode: HashMap::new(),
        };
        for (position, candidate) in candidates.iter().enumerate() {
            let profile = &candidate.profile;
            let (family, given) = (
                profile.family.phonetic.as_str(),
                profile.given.phonetic.as_str(),
            );
            index
                .by_birth_and_family
                .entry((profile.date_of_birth, family))
                .or_default()
                .push(position);
            index
                .by_birth_and_given
                .entry((profile.date_of_birth, given))
                .or_default()
                .push(position);
            index
                .by_birth_and_initial
                .entry((profile.date_of_birth, profile.family.initial()))
                .or_default()
                .push(position);
            index
                .by_phonetic_names
                .entry((family, given, profile.birth_year()))
                .or_default()
                .push(position);
            index
                .by_postcode
                .entry(profile.postcode.as_str())
                .or_default()
                .push(position);
        }
        index
    }

    /// The candidates that share at least one blocking key with `keys` (those
    /// [`BlockingKeys::admits`]), each once, in the order they were indexed.
    pub fn admitted(&self, keys: &BlockingKeys) -> Vec<&'a Candidate> {
        let (family, given) = (keys.family_phonetic.as_str(), keys.given_phonetic.as_str());
        let mut positions: Vec<usize> = [
            self.by_birth_and_family.get(&(keys.date_of_birth, family)),
            self.by_birth_and_given.get(&(keys.date_of_birth, given)),
            self.by_birth_and_initial
                .get(&(keys.date_of_birth, keys.family_initial.as_str())),
            self.by_phonetic_names
                .get(&(family, given, keys.birth_year)),
            self.by_postcode.get(keys.postcode.as_str()),
        ]
        .into_iter()
        .flatten()
        .flatten()
        .copied()
        .collect();
        // A candidate found by two keys is indexed under both; a position is one candidate.
        positions.sort_unstable();
        positions.dedup();
        positions
            .into_iter()
            .map(|position| &self.candidates[position])
            .collect()
    }
}

/// Best first: higher score, more refiners agreeing, then lower ULN; for one ULN, its own
/// record before a linked one.
fn rank(a: &Match, b: &Match) -> Ordering {
    b.score
        .cmp(&a.score)
        .then(b.refiners_agreeing.cmp(&a.refiners_agreeing))
        .then(a.uln.as_u64().cmp(&b.uln.as_u64()))
        .then(a.master_substituted.cmp(&b.master_substituted))
        .then(a.matched_uln.as_u64().cmp(&b.matched_uln.as_u64()))
}

#[cfg(test)]
mod tests {
    use chrono::NaiveDate;

    use super::*;
    use crate::domain::{LearnerDetails, compact_postcode};

    fn date(y: i32, m: u32, d: u32) -> NaiveDate {
        NaiveDate::from_ymd_opt(y, m, d).expect("a real date")
    }

    fn person(
        given: &str,
        family: &str,
        born: NaiveDate,
        gender: Gender,
        postcode: &str,
    ) -> LearnerDetails {
        LearnerDetails {
            title: None,
            given_name: given.into(),
            preferred_given_name: None,
            middle_names: None,
            family_name: family.into(),
            previous_family_name: None,
            family_name_at_16: None,
            school_at_16: None,
            address_line_1: None,
            address_line_2: None,
            address_town: None,
            address_county_or_city: None,
            postcode: postcode.into(),
            date_of_address_capture: None,
            date_of_birth: born,
            place_of_birth: None,
            email_address: None,
            gender,
            nationality: None,
            scottish_candidate_number: None,
            verification_type: 0,
            other_verification_description: None,
            ability_to_share: lrs_fields::codes::AbilityToShare::NoticeSeen,
            notes: None,
            upn: None,
            uci: None,
        }
    }

    fn candidate(uln: &str, details: &LearnerDetails) -> Candidate {
        Candidate {
            id: 1,
            uln: Uln::parse(uln).expect("a valid test ULN"),
            status: LearnerStatus::Active,
            master_uln: None,
            profile: details.match_profile(),
        }
    }

    fn search(details: &LearnerDetails) -> MatchProfile {
        let mut profile = details.match_profile();
        profile.preferred_given = None;
        profile.previous_family = None;
        profile
    }

    fn jane() -> LearnerDetails {
        person(
            "Jane",
            "Smith",
            date(2008, 3, 14),
            Gender::Female,
            "CV4 9EE",
        )
    }

    const ULN_A: &str = "1026893096";
    const ULN_B: &str = "6936002314";
    const ULN_C: &str = "4444599390";

    #[test]
    fn all_five_keys_equal_is_an_exact_match_scoring_100() {
        let stored = jane();
        let decision = decide(
            &search(&jane()),
            &[candidate(ULN_A, &stored)],
            MatchPolicy::default(),
        );
        assert_eq!(decision.outcome, Outcome::ExactMatch);
        assert_eq!(decision.matches.len(), 1);
        assert_eq!(decision.matches[0].score, 100);
        assert_eq!(score(&search(&jane()), &stored.match_profile()).points, 100);
    }

    #[test]
    fn case_accents_hyphens_apostrophes_and_spaces_still_match_exactly() {
        let stored = person(
            "Zoë",
            "O'Brien-Smith",
            date(2007, 1, 2),
            Gender::Female,
            "EC1A 1BB",
        );
        let searched = person(
            "ZOE",
            "obrien smith",
            date(2007, 1, 2),
            Gender::Female,
            "ec1a1bb",
        );
        let decision = decide(
            &search(&searched),
            &[candidate(ULN_A, &stored)],
            MatchPolicy::default(),
        );
        assert_eq!(decision.outcome, Outcome::ExactMatch);

        let curly = person(
            "zoe",
            "O’Brien Smith",
            date(2007, 1, 2),
            Gender::Female,
            "EC1A1BB",
        );
        let decision = decide(
            &search(&curly),
            &[candidate(ULN_A, &stored)],
            MatchPolicy::default(),
        );
        assert_eq!(decision.outcome, Outcome::ExactMatch);
    }

    #[test]
    fn a_typo_in_the_family_name_is_a_possible_match() {
        let stored = jane();
        let mut typo = jane();
        typo.family_name = "Smiht".into();
        let decision = decide(
            &search(&typo),
            &[candidate(ULN_A, &stored)],
            MatchPolicy::default(),
        );
        assert_eq!(decision.outcome, Outcome::PossibleMatches);
        assert!(decision.matches[0].score >= 90, "{:?}", decision.matches);
        assert!(!decision.matches[0].agreeing_keys.contains(&Key::FamilyName));
    }

    #[test]
    fn swapped_day_and_month_is_a_possible_match_with_partial_date_points() {
        let stored = person("Jane", "Smith", date(2008, 3, 4), Gender::Female, "CV4 9EE");
        let swapped = person("Jane", "Smith", date(2008, 4, 3), Gender::Female, "CV4 9EE");
        assert_eq!(date_points(swapped.date_of_birth, stored.date_of_birth), 12);
        let decision = decide(
            &search(&swapped),
            &[candidate(ULN_A, &stored)],
            MatchPolicy::default(),
        );
        assert_eq!(decision.outcome, Outcome::PossibleMatches);
        assert_eq!(decision.matches[0].score, 30 + 25 + 12 + 10 + 10);
    }

    #[test]
    fn one_part_of_the_date_different_earns_partial_points_two_parts_none() {
        assert_eq!(date_points(date(2008, 3, 4), date(2008, 3, 5)), 12);
        assert_eq!(date_points(date(2008, 3, 4), date(2009, 3, 4)), 12);
        assert_eq!(date_points(date(2008, 3, 4), date(2009, 3, 5)), 0);
        assert_eq!(date_points(date(2008, 3, 4), date(2008, 5, 6)), 0);
    }

    #[test]
    fn twins_with_different_given_names_at_one_postcode_do_not_match_exactly() {
        let amy = person("Amy", "Patel", date(2009, 6, 1), Gender::Female, "LS1 4AP");
        let ben = person("Ben", "Patel", date(2009, 6, 1), Gender::Male, "LS1 4AP");
        let decision = decide(
            &search(&amy),
            &[candidate(ULN_B, &ben)],
            MatchPolicy::default(),
        );
        assert!(!decision.outcome.is_exact());
        // Family name, date and postcode agree: 30 + 25 + 10, the given name adds nothing.
        assert_eq!(score(&search(&amy), &ben.match_profile()).points, 65);

        let both = [candidate(ULN_A, &amy), candidate(ULN_B, &ben)];
        let decision = decide(&search(&amy), &both, MatchPolicy::default());
        assert_eq!(decision.outcome, Outcome::ExactMatch);
        assert_eq!(decision.matches[0].uln.to_string(), ULN_A);
    }

    #[test]
    fn a_common_surname_with_a_different_date_of_birth_is_not_a_possible_match() {
        let stored = person("Oliver", "Smith", date(1990, 7, 21), Gender::Male, "M1 1AE");
        let searched = person("Jack", "Smith", date(2008, 2, 9), Gender::Male, "M1 1AE");
        let decision = decide(
            &search(&searched),
            &[candidate(ULN_A, &stored)],
            MatchPolicy::default(),
        );
        assert_eq!(decision.outcome, Outcome::NoMatch);

        // Even the same names and gender, with nothing else in common, are not enough.
        let namesake = person("Jack", "Smith", date(1995, 11, 30), Gender::Male, "B1 1AA");
        let decision = decide(
            &search(&searched),
            &[candidate(ULN_A, &namesake)],
            MatchPolicy::default(),
        );
        assert_eq!(decision.outcome, Outcome::NoMatch);
    }

    #[test]
    fn phonetic_agreement_raises_a_weak_similarity() {
        let a = NameKey::of("Catherine");
        let b = NameKey::of("Kathryn");
        assert_eq!(a.phonetic, b.phonetic);
        assert!(strsim::jaro_winkler(&a.normalised, &b.normalised) < PHONETIC_FLOOR);
        assert_eq!(one_name_similarity(&a, &b), PHONETIC_FLOOR);
        assert_eq!(
            one_name_similarity(&NameKey::of("Amy"), &NameKey::of("Ben")),
            0.0
        );
    }

    #[test]
    fn the_stored_similarity_equals_the_fields_crate_similarity() {
        let a = NameKey::of("Catherine");
        let b = NameKey::of("Kathryn");
        let ours = strsim::jaro_winkler(&a.normalised, &b.normalised);
        let theirs = lrs_fields::name::similarity("Catherine", "Kathryn");
        assert!((ours - theirs).abs() < 1e-12);
    }

    #[test]
    fn gender_and_postcode_partial_points() {
        assert_eq!(gender_points(Gender::Female, Gender::NotKnown), 5);
        assert_eq!(gender_points(Gender::NotSpecified, Gender::Male), 5);
        assert_eq!(gender_points(Gender::Female, Gender::Male), 0);
        assert_eq!(postcode_points("CV49EE", "CV49EF"), 5);
        assert_eq!(postcode_points("CV49EE", "CV59EE"), 0);
        assert_eq!(postcode_points("BFPO123", "BFPO124"), 0);
        assert_eq!(compact_postcode("cv4 9ee"), "CV49EE");
    }

    #[test]
    fn more_than_ten_above_the_threshold_is_too_many_and_ten_is_not() {
        let searched = jane();
        let mut near = Vec::new();
        for i in 0..11u32 {
            let mut other = jane();
            other.postcode = format!("CV{} 9EE", 10 + i);
            let uln = Uln::from_stem(100_000_000 + i * 7919)
                .or_else(|| Uln::from_stem(200_000_000 + i))
                .expect("stem");
            near.push(Candidate {
                id: i64::from(i),
                uln,
                status: LearnerStatus::Active,
                master_uln: None,
                profile: other.match_profile(),
            });
        }
        let decision = decide(&search(&searched), &near, MatchPolicy::default());
        assert_eq!(decision.outcome, Outcome::TooManyMatches);
        assert!(decision.matches.is_empty());

        let decision = decide(&search(&searched), &near[..10], MatchPolicy::default());
        assert_eq!(decision.outcome, Outcome::PossibleMatches);
        assert_eq!(decision.matches.len(), 10);
        let ulns: Vec<u64> = decision.matches.iter().map(|m| m.uln.as_u64()).collect();
        let mut sorted = ulns.clone();
        sorted.sort_unstable();
        assert_eq!(ulns, sorted, "equal scores are ordered by ULN");
    }

    #[test]
    fn a_linked_learner_answers_with_its_master() {
        let stored = jane();
        let mut linked = candidate(ULN_C, &stored);
        linked.status = LearnerStatus::Linked;
        linked.master_uln = Some(Uln::parse(ULN_B).expect("valid"));
        let decision = decide(&search(&jane()), &[linked.clone()], MatchPolicy::default());
        assert_eq!(decision.outcome, Outcome::LinkedMaster);
        assert_eq!(decision.matches[0].uln.to_string(), ULN_B);
        assert_eq!(decision.matches[0].matched_uln.to_string(), ULN_C);
        assert!(decision.matches[0].master_substituted);

        // The master found as well: one learner, found exactly itself.
        let master = candidate(ULN_B, &stored);
        let decision = decide(&search(&jane()), &[linked, master], MatchPolicy::default());
        assert_eq!(decision.outcome, Outcome::ExactMatch);
        assert!(!decision.matches[0].master_substituted);
    }

    #[test]
    fn refiners_order_equal_scores_but_never_create_a_match() {
        let mut searched = jane();
        searched.place_of_birth = Some("Leeds".into());
        let mut first = jane();
        first.postcode = "CV5 1AA".into();
        let mut second = first.clone();
        second.place_of_birth = Some("LEEDS".into());
        let candidates = [candidate(ULN_A, &first), candidate(ULN_B, &second)];
        let decision = decide(&search(&searched), &candidates, MatchPolicy::default());
        assert_eq!(decision.outcome, Outcome::PossibleMatches);
        assert_eq!(decision.matches[0].uln.to_string(), ULN_B);

        let stranger = person("Ravi", "Kumar", date(1970, 1, 1), Gender::Male, "N1 1AA");
        let mut stranger_born_in_leeds = stranger.clone();
        stranger_born_in_leeds.place_of_birth = Some("Leeds".into());
        let decision = decide(
            &search(&searched),
            &[candidate(ULN_A, &stranger_born_in_leeds)],
            MatchPolicy::default(),
        );
        assert_eq!(decision.outcome, Outcome::NoMatch);
    }

    #[test]
    fn the_order_of_candidates_and_duplicates_change_nothing() {
        let searched = jane();
        let mut a = jane();
        a.postcode = "CV5 1AA".into();
        let mut b = jane();
        b.given_name = "Janet".into();
        let list = vec![
            candidate(ULN_A, &a),
            candidate(ULN_B, &b),
            candidate(ULN_A, &a),
        ];
        let mut reversed = list.clone();
        reversed.reverse();
        let policy = MatchPolicy::default();
        assert_eq!(
            decide(&search(&searched), &list, policy),
            decide(&search(&searched), &reversed, policy)
        );
    }

    #[test]
    fn a_search_sees_only_the_candidates_its_blocking_keys_admit() {
        let searched = jane();
        let born = searched.date_of_birth;
        let same_date_family_sound = person("Ann", "Smyth", born, Gender::Female, "L1 8JQ");
        let same_date_given_sound = person("Jayne", "Brown", born, Gender::Female, "L2 2AA");
        let same_date_family_initial = person("Ann", "Smiht", born, Gender::Female, "L4 4AA");
        let same_date_other_names = person("Ann", "Brown", born, Gender::Female, "L3 3AA");
        let same_postcode = person("Tom", "Green", date(1990, 1, 2), Gender::Male, "CV4 9EE");
        let sounds_alike = person(
            "Jayne",
            "Smyth",
            date(2008, 11, 30),
            Gender::Female,
            "M1 1AA",
        );
        let same_year_other_sound =
            person("Mary", "Smyth", date(2008, 5, 5), Gender::Female, "M1 1AB");
        let stranger = person("Jane", "Smith", date(1999, 3, 14), Gender::Female, "B1 1AA");
        let all = vec![
            candidate(ULN_A, &same_date_family_sound),
            candidate(ULN_B, &stranger),
            candidate(ULN_C, &same_postcode),
            candidate("7667649978", &sounds_alike),
            candidate("8383558804", &same_year_other_sound),
            candidate("1964986809", &same_date_given_sound),
            candidate("1174112637", &same_date_other_names),
            candidate("5550000015", &same_date_family_initial),
        ];
        let keys = BlockingKeys::of(&search(&searched));

        let admitted: Vec<&Candidate> = CandidateIndex::new(&all).admitted(&keys);

        let expected: Vec<&Candidate> = all.iter().filter(|c| keys.admits(&c.profile)).collect();
        assert_eq!(admitted, expected);
        let ulns: Vec<String> = admitted.iter().map(|c| c.uln.to_string()).collect();
        assert_eq!(
            ulns,
            [ULN_A, ULN_C, "7667649978", "1964986809", "5550000015"]
        );
    }

    #[test]
    fn a_candidate_found_by_every_key_is_admitted_once() {
        let searched = jane();
        let all = vec![candidate(ULN_A, &searched), candidate(ULN_B, &searched)];
        let keys = BlockingKeys::of(&search(&searched));

        let admitted = CandidateIndex::new(&all).admitted(&keys);

        assert_eq!(admitted, all.iter().collect::<Vec<_>>());
        assert_eq!(
            decide(&search(&searched), admitted, MatchPolicy::default()),
            decide(&search(&searched), &all, MatchPolicy::default())
        );
    }
}
