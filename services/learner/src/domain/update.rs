//! How a learner's details change: the ability-to-share rule, and the additive update a batch
//! file makes to a learner it found.

use lrs_fields::codes::AbilityToShare;

use super::LearnerDetails;

/// Why a change of the ability to share is refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AbilityToShareRefusal {
    /// New data may not set OPTED_OUT (learners cannot opt out since 2018).
    OptOutNotAccepted,
    /// A stored OPTED_OUT moves only to NOTICE_SEEN.
    OptOutMovesOnlyToNoticeSeen,
}

/// What a permitted change of the ability to share does.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AbilityToShareChange {
    /// The value stays as stored.
    Unchanged,
    /// An ordinary change between NOTICE_NOT_SEEN and NOTICE_SEEN.
    Changed,
    /// A stored OPTED_OUT moved to NOTICE_SEEN: the registration body records that it gave
    /// the learner the current privacy notice. Audited.
    OptOutEnded,
}

/// Applies the ability-to-share rule to a requested value.
pub fn ability_to_share_change(
    stored: AbilityToShare,
    requested: AbilityToShare,
) -> Result<AbilityToShareChange, AbilityToShareRefusal> {
    use AbilityToShare::{NoticeNotSeen, NoticeSeen, OptedOut};
    match (stored, requested) {
        (a, b) if a == b => Ok(AbilityToShareChange::Unchanged),
        (_, OptedOut) => Err(AbilityToShareRefusal::OptOutNotAccepted),
        (OptedOut, NoticeSeen) => Ok(AbilityToShareChange::OptOutEnded),
        (OptedOut, NoticeNotSeen) => Err(AbilityToShareRefusal::OptOutMovesOnlyToNoticeSeen),
        (NoticeNotSeen | NoticeSeen, NoticeNotSeen | NoticeSeen) => {
            Ok(AbilityToShareChange::Changed)
        }
    }
}

/// The optional details a batch record carries for a learner it found. `None` leaves the
/// stored value.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct BatchDetails {
    /// Title.
    pub title: Option<String>,
    /// Preferred given name.
    pub preferred_given_name: Option<String>,
    /// Middle names.
    pub middle_names: Option<String>,
    /// Previous family name.
    pub previous_family_name: Option<String>,
    /// Family name at 16.
    pub family_name_at_16: Option<String>,
    /// School at 16.
    pub school_at_16: Option<String>,
    /// Address line 1.
    pub address_line_1: Option<String>,
    /// Address line 2.
    pub address_line_2: Option<String>,
    /// Town.
    pub address_town: Option<String>,
    /// County or city.
    pub address_county_or_city: Option<String>,
    /// When the address was captured.
    pub date_of_address_capture: Option<chrono::NaiveDate>,
    /// Place of birth.
    pub place_of_birth: Option<String>,
    /// Email.
    pub email_address: Option<String>,
    /// Nationality.
    pub nationality: Option<String>,
    /// Scottish Candidate Number.
    pub scottish_candidate_number: Option<String>,
    /// Verification type, with its description.
    pub verification: Option<(u16, Option<String>)>,
    /// Ability to share.
    pub ability_to_share: Option<AbilityToShare>,
    /// Notes.
    pub notes: Option<String>,
    /// UPN.
    pub upn: Option<String>,
    /// UCI.
    pub uci: Option<String>,
}

/// Applies a batch record's details to a stored learner: a value given replaces the stored
/// one, except that a stored UPN is never overwritten (an empty one is filled) and the ability
/// to share only rises (NOTICE_SEEN replaces NOTICE_NOT_SEEN or OPTED_OUT). Returns the new
/// details and whether an opt-out ended (to audit).
pub fn apply_batch_details(
    stored: &LearnerDetails,
    batch: &BatchDetails,
) -> (LearnerDetails, bool) {
    let mut next = stored.clone();
    let replace = |field: &mut Option<String>, value: &Option<String>| {
        if let Some(value) = value {
            *field = Some(value.clone());
        }
    };
    replace(&mut next.title, &batch.title);
    replace(&mut next.preferred_given_name, &batch.preferred_given_name);
    replace(&mut next.middle_names, &batch.middle_names);
    replace(&mut next.previous_family_name, &batch.previous_family_name);
    replace(&mut next.family_name_at_16, &batch.family_name_at_16);
    replace(&mut next.school_at_16, &batch.school_at_16);
    replace(&mut next.address_line_1, &batch.address_line_1);
    replace(&mut next.address_line_2, &batch.address_line_2);
    replace(&mut next.address_town, &batch.address_town);
    replace(
        &mut next.address_county_or_city,
        &batch.address_county_or_city,
    );
    replace(&mut next.place_of_birth, &batch.place_of_birth);
    replace(&mut next.email_address, &batch.email_address);
    replace(&mut next.nationality, &batch.nationality);
    replace(
        &mut next.scottish_candidate_number,
        &batch.scottish_candidate_number,
    );
    replace(&mut next.notes, &batch.notes);
    replace(&mut next.uci, &batch.uci);
    if next.upn.is_none() {
        replace(&mut next.upn, &batch.upn);
    }
    if let Some(date) = batch.date_of_address_capture {
        next.date_of_address_capture = Some(date);
    }
    if let Some((code, description)) = &batch.verification {
        next.verification_type = *code;
        next.other_verification_description = description.clone();
    }

    let mut opt_out_ended = false;
    if batch.ability_to_share == Some(AbilityToShare::NoticeSeen) {
        opt_out_ended = stored.ability_to_share == AbilityToShare::OptedOut;
        next.ability_to_share = AbilityToShare::NoticeSeen;
    }
    (next, opt_out_ended)
}

#[cfg(test)]
mod tests {
    use super::*;
    use AbilityToShare::{NoticeNotSeen, NoticeSeen, OptedOut};

    #[test]
    fn opted_out_moves_only_to_notice_seen_and_nothing_moves_to_opted_out() {
        assert_eq!(
            ability_to_share_change(OptedOut, NoticeSeen),
            Ok(AbilityToShareChange::OptOutEnded)
        );
        assert_eq!(
            ability_to_share_change(OptedOut, NoticeNotSeen),
            Err(AbilityToShareRefusal::OptOutMovesOnlyToNoticeSeen)
        );
        assert_eq!(
            ability_to_share_change(NoticeSeen, OptedOut),
            Err(AbilityToShareRefusal::OptOutNotAccepted)
        );
        assert_eq!(
            ability_to_share_change(OptedOut, OptedOut),
            Ok(AbilityToShareChange::Unchanged)
        );
        assert_eq!(
            ability_to_share_change(NoticeNotSeen, NoticeSeen),
            Ok(AbilityToShareChange::Changed)
        );
    }

    fn stored() -> LearnerDetails {
        LearnerDetails {
            title: None,
            given_name: "Jane".into(),
            preferred_given_name: None,
            middle_names: None,
            family_name: "Smith".into(),
            previous_family_name: None,
            family_name_at_16: None,
            school_at_16: None,
            address_line_1: None,
            address_line_2: None,
            address_town: None,
            address_county_or_city: None,
            postcode: "CV4 9EE".into(),
            date_of_address_capture: None,
            date_of_birth: chrono::NaiveDate::from_ymd_opt(2008, 3, 14).expect("date"),
            place_of_birth: None,
            email_address: None,
            gender: lrs_fields::codes::Gender::Female,
            nationality: None,
            scottish_candidate_number: None,
            verification_type: 1,
            other_verification_description: None,
            ability_to_share: OptedOut,
            notes: None,
            upn: Some("A801200000001".into()),
            uci: None,
        }
    }

    #[test]
    fn a_batch_never_overwrites_a_stored_upn_but_fills_an_empty_one() {
        let batch = BatchDetails {
            upn: Some("B999999999999".into()),
            notes: Some("from the file".into()),
            ..BatchDetails::default()
        };
        let (next, _) = apply_batch_details(&stored(), &batch);
        assert_eq!(next.upn.as_deref(), Some("A801200000001"));
        assert_eq!(next.notes.as_deref(), Some("from the file"));

        let mut without = stored();
        without.upn = None;
        let (next, _) = apply_batch_details(&without, &batch);
        assert_eq!(next.upn.as_deref(), Some("B999999999999"));
    }

    #[test]
    fn a_batch_raises_the_ability_to_share_only_to_notice_seen() {
        let lower = BatchDetails {
            ability_to_share: Some(NoticeNotSeen),
            ..BatchDetails::default()
        };
        let (next, ended) = apply_batch_details(&stored(), &lower);
        assert_eq!(next.ability_to_share, OptedOut);
        assert!(!ended);

        let seen = BatchDetails {
            ability_to_share: Some(NoticeSeen),
            ..BatchDetails::default()
        };
        let (next, ended) = apply_batch_details(&stored(), &seen);
        assert_eq!(next.ability_to_share, NoticeSeen);
        assert!(ended);
    }
}
