//! Verifying a ULN against the details a caller holds.
//!
//! Verified: every detail given agrees after normalisation. Similar: the date of birth and
//! gender (when given) agree, and the names agree only loosely: given and family swapped, the
//! family name equal to the stored previous family name, or each name with a Jaro-Winkler
//! similarity of at least 0.92. Otherwise not matched, naming the keys that disagree.

use chrono::NaiveDate;
use lrs_fields::codes::Gender;
use lrs_fields::name::normalise_name;

use super::LearnerDetails;
use super::matching::Key;

/// Lowest similarity at which a name that is not equal still counts as similar.
pub const SIMILAR_NAME: f64 = 0.92;

/// The details to verify.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Claimed {
    /// Given name.
    pub given_name: String,
    /// Family name.
    pub family_name: String,
    /// Date of birth, when it is to be checked.
    pub date_of_birth: Option<NaiveDate>,
    /// Gender, when it is to be checked.
    pub gender: Option<Gender>,
}

/// The verdict on a learner that exists.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Verdict {
    /// Every detail agrees.
    Verified,
    /// The names agree loosely, the rest exactly.
    Similar,
    /// These keys disagree.
    NotMatched(Vec<Key>),
}

/// The old service's failure flag for a key that disagrees.
pub fn failure_flag(key: Key) -> &'static str {
    match key {
        Key::GivenName => "VRF1",
        Key::FamilyName => "VRF4",
        Key::DateOfBirth => "VRF7",
        Key::Gender => "VRF8",
        Key::Postcode => "VRF9",
    }
}

/// Verifies `claimed` against a learner's `stored` details.
pub fn verify(stored: &LearnerDetails, claimed: &Claimed) -> Verdict {
    let given = normalise_name(&claimed.given_name);
    let family = normalise_name(&claimed.family_name);
    let stored_given = normalise_name(&stored.given_name);
    let stored_family = normalise_name(&stored.family_name);

    let mut mismatched = Vec::new();
    if claimed
        .date_of_birth
        .is_some_and(|d| d != stored.date_of_birth)
    {
        mismatched.push(Key::DateOfBirth);
    }
    if claimed.gender.is_some_and(|g| g != stored.gender) {
        mismatched.push(Key::Gender);
    }
    let given_equal = given == stored_given;
    let family_equal = family == stored_family;
    if given_equal && family_equal {
        return if mismatched.is_empty() {
            Verdict::Verified
        } else {
            Verdict::NotMatched(mismatched)
        };
    }

    let swapped = given == stored_family && family == stored_given;
    let previous = stored.previous_family_name.as_deref().map(normalise_name);
    let family_loose = family_equal
        || previous.as_deref() == Some(family.as_str())
        || similar(&family, &stored_family);
    let given_loose = given_equal || similar(&given, &stored_given);
    if mismatched.is_empty() && (swapped || (family_loose && given_loose)) {
        return Verdict::Similar;
    }

    let mut keys = Vec::new();
    if !given_equal {
        keys.push(Key::GivenName);
    }
    if !family_equal {
        keys.push(Key::FamilyName);
    }
    keys.extend(mismatched);
    keys.sort();
    Verdict::NotMatched(keys)
}

fn similar(a: &str, b: &str) -> bool {
    !a.is_empty() && !b.is_empty() && strsim::jaro_winkler(a, b) >= SIMILAR_NAME
}

#[cfg(test)]
mod tests {
    use lrs_fields::codes::AbilityToShare;

    use super::*;

    fn stored() -> LearnerDetails {
        LearnerDetails {
            title: None,
            given_name: "Darcie".into(),
            preferred_given_name: None,
            middle_names: None,
            family_name: "Tucker".into(),
            previous_family_name: Some("Jones".into()),
            family_name_at_16: None,
            school_at_16: None,
            address_line_1: None,
            address_line_2: None,
            address_town: None,
            address_county_or_city: None,
            postcode: "CV4 9EE".into(),
            date_of_address_capture: None,
            date_of_birth: NaiveDate::from_ymd_opt(2004, 8, 9).expect("date"),
            place_of_birth: None,
            email_address: None,
            gender: Gender::Female,
            nationality: None,
            scottish_candidate_number: None,
            verification_type: 0,
            other_verification_description: None,
            ability_to_share: AbilityToShare::NoticeSeen,
            notes: None,
            upn: None,
            uci: None,
        }
    }

    fn claim(given: &str, family: &str) -> Claimed {
        Claimed {
            given_name: given.into(),
            family_name: family.into(),
            date_of_birth: None,
            gender: None,
        }
    }

    #[test]
    fn verdicts() {
        assert_eq!(
            verify(&stored(), &claim("darcie", "TUCKER")),
            Verdict::Verified
        );
        assert_eq!(
            verify(&stored(), &claim("Tucker", "Darcie")),
            Verdict::Similar
        );
        assert_eq!(
            verify(&stored(), &claim("Darcie", "Jones")),
            Verdict::Similar
        );
        assert_eq!(
            verify(&stored(), &claim("Darcee", "Tucker")),
            Verdict::Similar
        );
        assert_eq!(
            verify(&stored(), &claim("Sample", "Tucker")),
            Verdict::NotMatched(vec![Key::GivenName])
        );

        let mut wrong_date = claim("Darcie", "Tucker");
        wrong_date.date_of_birth = NaiveDate::from_ymd_opt(2004, 9, 8);
        wrong_date.gender = Some(Gender::Female);
        assert_eq!(
            verify(&stored(), &wrong_date),
            Verdict::NotMatched(vec![Key::DateOfBirth])
        );
    }
}
