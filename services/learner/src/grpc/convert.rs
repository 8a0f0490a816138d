//! Proto messages to domain values and back. Validation goes through `lrs-fields`; its
//! violations are renamed to the request's proto field paths.

use chrono::{DateTime, Datelike, NaiveDate, Utc};
use lrs_fields::codes::{AbilityToShare, Gender};
use lrs_fields::email::Email;
use lrs_fields::learner::{RawLearner, ValidLearner, Violation, ViolationKind, field};
use lrs_fields::name::{Name, normalise_name};
use lrs_fields::text::{self, SCHOOL_MAX};
use lrs_fields::uln::Uln;
use lrs_proto::learner::v1 as pb;
use lrs_proto::types::v1 as types;
use lrs_server::error::FieldViolation;

use crate::domain::matching::{Decision, Key, Match, Outcome};
use crate::domain::{
    LearnerDetails, LearnerStatus, MatchProfile, NameKey, Refiners, compact_postcode,
};
use crate::error::LearnerError;
use crate::register::{Found, SearchAnswer};

/// `prefix.name`, or `name` when there is no prefix.
pub(crate) fn path(prefix: &str, name: &str) -> String {
    if prefix.is_empty() {
        name.to_owned()
    } else {
        format!("{prefix}.{name}")
    }
}

/// The proto field name of a `lrs-fields` field.
fn proto_field(name: &str) -> &'static str {
    match name {
        field::ULN => "uln",
        field::TITLE => "title",
        field::GIVEN_NAME => "given_name",
        field::PREFERRED_GIVEN_NAME => "preferred_given_name",
        field::MIDDLE_OTHER_NAME => "middle_names",
        field::FAMILY_NAME => "family_name",
        field::PREVIOUS_FAMILY_NAME => "previous_family_name",
        field::FAMILY_NAME_AT_16 => "family_name_at_16",
        field::SCHOOL_AT_16 => "school_at_16",
        field::ADDRESS_LINE_1 => "address_line_1",
        field::ADDRESS_LINE_2 => "address_line_2",
        field::ADDRESS_TOWN => "address_town",
        field::ADDRESS_COUNTY_OR_CITY => "address_county_or_city",
        field::POSTCODE => "postcode",
        field::DATE_OF_ADDRESS_CAPTURE => "date_of_address_capture",
        field::DATE_OF_BIRTH => "date_of_birth",
        field::PLACE_OF_BIRTH => "place_of_birth",
        field::EMAIL => "email_address",
        field::GENDER => "gender",
        field::NATIONALITY => "nationality",
        field::SCOTTISH_CANDIDATE_NUMBER => "scottish_candidate_number",
        field::VERIFICATION_TYPE => "verification_type",
        field::OTHER_VERIFICATION_DESCRIPTION => "other_verification_description",
        field::ABILITY_TO_SHARE | field::PRIVACY_NOTICE_SEEN => "ability_to_share",
        field::NOTES => "notes",
        field::UPN => "upn",
        field::UCI => "uci",
        _ => "learner",
    }
}

/// The violations of `lrs-fields`, as `BadRequest` field violations under `prefix`.
pub(crate) fn field_violations(prefix: &str, violations: &[Violation]) -> Vec<FieldViolation> {
    violations
        .iter()
        .map(|v| FieldViolation::new(path(prefix, proto_field(v.field)), v.message.clone()))
        .collect()
}

/// A proto date as the `YYYY-MM-DD` text the field rules read; `None` when unset.
fn date_text(date: &Option<types::Date>) -> Option<String> {
    date.as_ref()
        .map(|d| format!("{:04}-{:02}-{:02}", d.year, d.month, d.day))
}

/// A date as a proto date.
pub(crate) fn date(date: NaiveDate) -> types::Date {
    types::Date {
        year: date.year(),
        month: date.month() as i32,
        day: date.day() as i32,
    }
}

/// A proto date as a date, if it is one.
pub(crate) fn parse_date(value: &types::Date) -> Option<NaiveDate> {
    let month = u32::try_from(value.month).ok()?;
    let day = u32::try_from(value.day).ok()?;
    NaiveDate::from_ymd_opt(value.year, month, day)
}

/// The register's gender code of a proto gender; `None` when unspecified, `"?"` when the
/// number is not a gender at all (the rules then refuse it).
fn gender_code(value: i32) -> Option<String> {
    match types::Gender::try_from(value) {
        Ok(types::Gender::Unspecified) => None,
        Ok(types::Gender::NotKnown) => Some("0".into()),
        Ok(types::Gender::Male) => Some("1".into()),
        Ok(types::Gender::Female) => Some("2".into()),
        Ok(types::Gender::NotSpecified) => Some("9".into()),
        Err(_) => Some("?".into()),
    }
}

/// A gender as its proto value.
pub(crate) fn gender(value: Gender) -> i32 {
    let gender = match value {
        Gender::NotKnown => types::Gender::NotKnown,
        Gender::Male => types::Gender::Male,
        Gender::Female => types::Gender::Female,
        Gender::NotSpecified => types::Gender::NotSpecified,
    };
    gender as i32
}

/// A proto gender as a gender; `None` when unspecified or unknown.
pub(crate) fn parse_gender(value: i32) -> Option<Gender> {
    gender_code(value).and_then(|code| Gender::parse(&code).ok())
}

fn verification_code(value: i32) -> Option<String> {
    use pb::VerificationType as V;
    let code = match V::try_from(value) {
        Ok(V::Unspecified) => return None,
        Ok(V::NoneProvided) => "0",
        Ok(V::RelationshipWithSchool) => "1",
        Ok(V::Passport) => "2",
        Ok(V::DrivingLicence) => "3",
        Ok(V::IdCard) => "4",
        Ok(V::NationalInsuranceCard) => "5",
        Ok(V::CertificateOfEntitlementToFunding) => "6",
        Ok(V::BankCard) => "7",
        Ok(V::Other) => "999",
        Err(_) => "?",
    };
    Some(code.to_owned())
}

fn verification_type(code: u16) -> i32 {
    use pb::VerificationType as V;
    let value = match code {
        0 => V::NoneProvided,
        1 => V::RelationshipWithSchool,
        2 => V::Passport,
        3 => V::DrivingLicence,
        4 => V::IdCard,
        5 => V::NationalInsuranceCard,
        6 => V::CertificateOfEntitlementToFunding,
        7 => V::BankCard,
        999 => V::Other,
        _ => V::Unspecified,
    };
    value as i32
}

/// The register's ability-to-share code of a proto value (as [`gender_code`]).
fn ability_code(value: i32) -> Option<String> {
    use types::AbilityToShare as A;
    match A::try_from(value) {
        Ok(A::Unspecified) => None,
        Ok(A::NoticeNotSeen) => Some("0".into()),
        Ok(A::NoticeSeen) => Some("1".into()),
        Ok(A::OptedOut) => Some("2".into()),
        Err(_) => Some("?".into()),
    }
}

/// A proto ability to share, `None` when unspecified or unknown.
pub(crate) fn parse_ability(value: i32) -> Option<AbilityToShare> {
    ability_code(value).and_then(|code| AbilityToShare::parse_stored(&code).ok())
}

/// An ability to share as its proto value.
pub(crate) fn ability(value: AbilityToShare) -> i32 {
    let value = match value {
        AbilityToShare::NoticeNotSeen => types::AbilityToShare::NoticeNotSeen,
        AbilityToShare::NoticeSeen => types::AbilityToShare::NoticeSeen,
        AbilityToShare::OptedOut => types::AbilityToShare::OptedOut,
    };
    value as i32
}

fn text(value: &str) -> Option<String> {
    Some(value.to_owned())
}

/// The raw fields of a proto learner, for the field rules.
pub(crate) fn raw_learner(learner: &pb::Learner) -> RawLearner {
    RawLearner {
        uln: None,
        title: text(&learner.title),
        given_name: text(&learner.given_name),
        preferred_given_name: text(&learner.preferred_given_name),
        middle_other_name: text(&learner.middle_names),
        family_name: text(&learner.family_name),
        previous_family_name: text(&learner.previous_family_name),
        family_name_at_16: text(&learner.family_name_at_16),
        school_at_16: text(&learner.school_at_16),
        address_line_1: text(&learner.address_line_1),
        address_line_2: text(&learner.address_line_2),
        address_town: text(&learner.address_town),
        address_county_or_city: text(&learner.address_county_or_city),
        postcode: text(&learner.postcode),
        date_of_address_capture: date_text(&learner.date_of_address_capture),
        date_of_birth: date_text(&learner.date_of_birth),
        place_of_birth: text(&learner.place_of_birth),
        email: text(&learner.email_address),
        gender: gender_code(learner.gender),
        nationality: text(&learner.nationality),
        scottish_candidate_number: text(&learner.scottish_candidate_number),
        verification_type: verification_code(learner.verification_type),
        other_verification_description: text(&learner.other_verification_description),
        ability_to_share: ability_code(learner.ability_to_share),
        privacy_notice_seen: None,
        notes: text(&learner.notes),
        upn: text(&learner.upn),
        uci: text(&learner.uci),
    }
}

/// Validates a learner to register: every field rule, the age on `today`, ability to share
/// only 0 or 1.
pub(crate) fn learner_to_register(
    prefix: &str,
    learner: Option<&pb::Learner>,
    today: NaiveDate,
) -> Result<LearnerDetails, LearnerError> {
    let Some(learner) = learner else {
        return Err(LearnerError::invalid(prefix, "the learner is required"));
    };
    let valid = raw_learner(learner)
        .validate(today)
        .map_err(|violations| LearnerError::Invalid(field_violations(prefix, &violations)))?;
    Ok(LearnerDetails::from_valid(&valid))
}

/// Validates a learner's details where the age rule applies only to a changed date of birth
/// (updates): a learner registered at 13 may be updated at 111. The ability to share is
/// checked by the caller, so any value the rules accept for new data stands in for it here.
pub(crate) fn learner_to_update(
    prefix: &str,
    learner: &pb::Learner,
    stored_date_of_birth: NaiveDate,
    today: NaiveDate,
) -> Result<ValidLearner, LearnerError> {
    let mut raw = raw_learner(learner);
    raw.ability_to_share = Some("0".into());
    match raw.validate(today) {
        Ok(valid) => Ok(valid),
        Err(violations) => {
            let only_age = violations
                .iter()
                .all(|v| v.kind == ViolationKind::AgeOutOfRange);
            let date_unchanged =
                learner.date_of_birth.as_ref().and_then(parse_date) == Some(stored_date_of_birth);
            if only_age && date_unchanged {
                // A day on which the stored date of birth is within the age range.
                let in_range = stored_date_of_birth
                    .with_year(stored_date_of_birth.year() + 20)
                    .or_else(|| {
                        stored_date_of_birth
                            .succ_opt()?
                            .with_year(stored_date_of_birth.year() + 20)
                    })
                    .unwrap_or(today);
                return raw.validate(in_range).map_err(|violations| {
                    LearnerError::Invalid(field_violations(prefix, &violations))
                });
            }
            Err(LearnerError::Invalid(field_violations(prefix, &violations)))
        }
    }
}

/// The stored details as a proto learner (for merging an update mask onto).
pub(crate) fn details_to_proto(details: &LearnerDetails) -> pb::Learner {
    let owned = |value: &Option<String>| value.clone().unwrap_or_default();
    pb::Learner {
        title: owned(&details.title),
        given_name: details.given_name.clone(),
        preferred_given_name: owned(&details.preferred_given_name),
        middle_names: owned(&details.middle_names),
        family_name: details.family_name.clone(),
        previous_family_name: owned(&details.previous_family_name),
        family_name_at_16: owned(&details.family_name_at_16),
        school_at_16: owned(&details.school_at_16),
        address_line_1: owned(&details.address_line_1),
        address_line_2: owned(&details.address_line_2),
        address_town: owned(&details.address_town),
        address_county_or_city: owned(&details.address_county_or_city),
        postcode: details.postcode.clone(),
        date_of_address_capture: details.date_of_address_capture.map(date),
        date_of_birth: Some(date(details.date_of_birth)),
        place_of_birth: owned(&details.place_of_birth),
        email_address: owned(&details.email_address),
        gender: gender(details.gender),
        nationality: owned(&details.nationality),
        scottish_candidate_number: owned(&details.scottish_candidate_number),
        verification_type: verification_type(details.verification_type),
        other_verification_description: owned(&details.other_verification_description),
        ability_to_share: ability(details.ability_to_share),
        notes: owned(&details.notes),
        upn: owned(&details.upn),
        uci: owned(&details.uci),
        ..pb::Learner::default()
    }
}

fn timestamp(at: DateTime<Utc>) -> prost_types::Timestamp {
    prost_types::Timestamp {
        seconds: at.timestamp(),
        nanos: at.timestamp_subsec_nanos() as i32,
    }
}

fn status(value: LearnerStatus) -> i32 {
    match value {
        LearnerStatus::Active => pb::LearnerStatus::Active as i32,
        LearnerStatus::Linked => pb::LearnerStatus::Linked as i32,
    }
}

/// A stored learner as a proto learner.
pub(crate) fn learner(found: &Found) -> pb::Learner {
    let record = &found.record;
    pb::Learner {
        uln: record.uln.to_string(),
        status: status(record.status),
        master_uln: record.master_uln.map(|u| u.to_string()).unwrap_or_default(),
        linked_ulns: found.linked_ulns.iter().map(ToString::to_string).collect(),
        registered_by_organisation_id: record.registered_by.clone().unwrap_or_default(),
        version: record.version,
        create_time: Some(timestamp(record.created_at)),
        update_time: Some(timestamp(record.updated_at)),
        ..details_to_proto(&record.details)
    }
}

/// Only what a check-only answer carries: ULN, names, status and master.
pub(crate) fn learner_check(found: &Found) -> pb::Learner {
    let record = &found.record;
    pb::Learner {
        uln: record.uln.to_string(),
        given_name: record.details.given_name.clone(),
        family_name: record.details.family_name.clone(),
        status: status(record.status),
        master_uln: record.master_uln.map(|u| u.to_string()).unwrap_or_default(),
        ..pb::Learner::default()
    }
}

/// Whether a find type asks for full details (unspecified means full).
pub(crate) fn is_full(find_type: i32) -> bool {
    find_type != pb::FindType::Check as i32
}

/// Parses a ULN field, naming it on failure.
pub(crate) fn uln(field: &str, value: &str) -> Result<Uln, FieldViolation> {
    Uln::parse(value).map_err(|e| FieldViolation::new(field, e.to_string()))
}

/// Validates a required name field, normalised later.
pub(crate) fn name(field: &str, value: &str) -> Result<Name, FieldViolation> {
    Name::parse(value).map_err(|e| FieldViolation::new(field, e.to_string()))
}

/// A demographic search as a match profile: the five keys validated by the register's rules
/// (without the age rule, but a date of birth after `today` is refused), the refiners by
/// their lengths and patterns.
pub(crate) fn search(
    prefix: &str,
    search: Option<&pb::DemographicSearch>,
    today: NaiveDate,
) -> Result<MatchProfile, Vec<FieldViolation>> {
    let Some(search) = search else {
        return Err(vec![FieldViolation::new(
            prefix,
            "the search keys are required",
        )]);
    };
    let pb::DemographicSearch {
        given_name,
        family_name,
        date_of_birth,
        gender,
        postcode,
        previous_family_name,
        school_at_16,
        place_of_birth,
        email_address,
    } = search;
    let date_of_birth_text = date_text(date_of_birth).unwrap_or_default();
    let gender_text = gender_code(*gender).unwrap_or_default();
    let keys = lrs_fields::learner::MatchKeys::from_raw(
        given_name,
        family_name,
        &date_of_birth_text,
        &gender_text,
        postcode,
    );
    let mut violations = match &keys {
        Ok(keys) if keys.date_of_birth > today => vec![FieldViolation::new(
            path(prefix, "date_of_birth"),
            "the date of birth is in the future",
        )],
        Ok(_) => Vec::new(),
        Err(violations) => field_violations(prefix, violations),
    };

    let previous = Name::parse_optional(previous_family_name)
        .map_err(|e| {
            violations.push(FieldViolation::new(
                path(prefix, "previous_family_name"),
                e.to_string(),
            ))
        })
        .ok()
        .flatten();
    let school = text::single_line(school_at_16, SCHOOL_MAX)
        .map_err(|e| {
            violations.push(FieldViolation::new(
                path(prefix, "school_at_16"),
                e.to_string(),
            ))
        })
        .ok()
        .flatten();
    let place = text::single_line(place_of_birth, text::PLACE_OF_BIRTH_MAX)
        .map_err(|e| {
            violations.push(FieldViolation::new(
                path(prefix, "place_of_birth"),
                e.to_string(),
            ))
        })
        .ok()
        .flatten();
    let email = if email_address.trim().is_empty() {
        None
    } else {
        Email::parse(email_address)
            .map_err(|e| {
                violations.push(FieldViolation::new(
                    path(prefix, "email_address"),
                    e.to_string(),
                ))
            })
            .ok()
    };
    let keys = match keys {
        Ok(keys) if violations.is_empty() => keys,
        _ => return Err(violations),
    };

    Ok(MatchProfile {
        given: NameKey::of(given_name),
        family: NameKey::of(family_name),
        preferred_given: None,
        previous_family: None,
        date_of_birth: keys.date_of_birth,
        gender: keys.gender,
        postcode: compact_postcode(&keys.postcode),
        refiners: Refiners {
            previous_family_name: previous.map(|n| normalise_name(n.as_str())),
            school_at_16: school.as_deref().map(normalise_name),
            place_of_birth: place.as_deref().map(normalise_name),
            email_address: email.map(|e| e.as_str().to_lowercase()),
        },
    })
}

/// A match outcome as its proto value.
pub(crate) fn outcome(value: Outcome) -> i32 {
    let value = match value {
        Outcome::ExactMatch => pb::MatchOutcome::ExactMatch,
        Outcome::LinkedMaster => pb::MatchOutcome::LinkedMaster,
        Outcome::PossibleMatches => pb::MatchOutcome::PossibleMatches,
        Outcome::TooManyMatches => pb::MatchOutcome::TooManyMatches,
        Outcome::NoMatch => pb::MatchOutcome::NoMatch,
    };
    value as i32
}

/// A key as its proto value.
pub(crate) fn key(value: Key) -> i32 {
    let value = match value {
        Key::GivenName => pb::DemographicKey::GivenName,
        Key::FamilyName => pb::DemographicKey::FamilyName,
        Key::DateOfBirth => pb::DemographicKey::DateOfBirth,
        Key::Gender => pb::DemographicKey::Gender,
        Key::Postcode => pb::DemographicKey::Postcode,
    };
    value as i32
}

fn candidate(found: &Match, answer: &SearchAnswer, full: bool) -> pb::MatchCandidate {
    let learner = answer
        .learners
        .get(&found.uln)
        .map(|f| if full { learner(f) } else { learner_check(f) });
    pb::MatchCandidate {
        learner,
        score: found.score as i32,
        master_substituted: found.master_substituted,
        matched_uln: found.matched_uln.to_string(),
        agreeing_keys: found.agreeing_keys.iter().copied().map(key).collect(),
    }
}

/// The candidates of a search answer.
pub(crate) fn candidates(answer: &SearchAnswer, full: bool) -> Vec<pb::MatchCandidate> {
    let Decision { matches, .. } = &answer.decision;
    matches.iter().map(|m| candidate(m, answer, full)).collect()
}
