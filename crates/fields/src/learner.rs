//! The one validation of a learner's details as they arrive (a batch record, an RPC), shared
//! by the learner service and the batch validator, and the five matching keys.
//!
//! Every field is checked and every fault reported, each with the kind that decides its batch
//! return code. Blank handling: a value that is absent, empty or only whitespace is missing; a
//! required field that is missing is [`ViolationKind::Missing`]. Identifiers, codes and dates
//! that are present are read exactly as given; free text and names are trimmed.

use std::fmt;

use chrono::NaiveDate;

use crate::codes::{AbilityToShare, Gender, PrivacyNoticeSeen, Verification, VerificationType};
use crate::date::{age_on, parse_date};
use crate::email::Email;
use crate::name::{Name, normalise_name};
use crate::postcode::Postcode;
use crate::text::{self, ScottishCandidateNumber};
use crate::uci::Uci;
use crate::uln::Uln;
use crate::upn::Upn;

/// The youngest age, in whole years on today's date in London, at which a learner may be
/// registered.
pub const MIN_AGE: i32 = 13;
/// The oldest age at which a learner may be registered.
pub const MAX_AGE: i32 = 110;

/// The names violations give fields: the LRB batch file headings (2A), with the 3A additions.
pub mod field {
    /// The learner's ULN.
    pub const ULN: &str = "ULN";
    /// Title.
    pub const TITLE: &str = "Title";
    /// Given name (required).
    pub const GIVEN_NAME: &str = "GivenName";
    /// Preferred given name.
    pub const PREFERRED_GIVEN_NAME: &str = "PreferredGivenName";
    /// Middle or other names (3A heading `MiddleNames`).
    pub const MIDDLE_OTHER_NAME: &str = "MiddleOtherName";
    /// Family name (required).
    pub const FAMILY_NAME: &str = "FamilyName";
    /// Previous family name.
    pub const PREVIOUS_FAMILY_NAME: &str = "PreviousFamilyName";
    /// Family name at age 16.
    pub const FAMILY_NAME_AT_16: &str = "FamilyNameAt16";
    /// School at age 16.
    pub const SCHOOL_AT_16: &str = "SchoolAtAge16";
    /// Address line 1.
    pub const ADDRESS_LINE_1: &str = "LastKnownAddressLine1";
    /// Address line 2.
    pub const ADDRESS_LINE_2: &str = "LastKnownAddressLine2";
    /// Town.
    pub const ADDRESS_TOWN: &str = "LastKnownAddressTown";
    /// County or city.
    pub const ADDRESS_COUNTY_OR_CITY: &str = "LastKnownAddressCountyorCity";
    /// Last known postcode (required).
    pub const POSTCODE: &str = "LastKnownPostCode";
    /// Date the address was captured.
    pub const DATE_OF_ADDRESS_CAPTURE: &str = "DateOfAddressCapture";
    /// Date of birth (required).
    pub const DATE_OF_BIRTH: &str = "DateOfBirth";
    /// Place of birth.
    pub const PLACE_OF_BIRTH: &str = "PlaceOfBirth";
    /// E-mail address.
    pub const EMAIL: &str = "EmailAddress";
    /// Gender (required).
    pub const GENDER: &str = "Gender";
    /// Nationality.
    pub const NATIONALITY: &str = "Nationality";
    /// Scottish Candidate Number.
    pub const SCOTTISH_CANDIDATE_NUMBER: &str = "ScottishCandidateNumber";
    /// Verification type (required).
    pub const VERIFICATION_TYPE: &str = "VerificationType";
    /// Description of other verification evidence (required with type 999).
    pub const OTHER_VERIFICATION_DESCRIPTION: &str = "OtherVerificationDescription";
    /// Ability to share (2A, required unless privacy notice seen is given).
    pub const ABILITY_TO_SHARE: &str = "AbilityToShare";
    /// Privacy notice seen (3A, in place of ability to share).
    pub const PRIVACY_NOTICE_SEEN: &str = "PrivacyNoticeSeen";
    /// Notes.
    pub const NOTES: &str = "Notes";
    /// Unique Pupil Number (3A).
    pub const UPN: &str = "UPN";
    /// Unique Candidate Identifier (3A).
    pub const UCI: &str = "UCI";
}

/// What kind of fault a violation is; it decides the batch return code. Ordered by
/// precedence: a record with several faults takes the code of the smallest kind.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum ViolationKind {
    /// A required field is missing or blank (`RC006`).
    Missing,
    /// A field is present but malformed, including a ULN that fails its check (`RC011`).
    Format,
    /// A UPN or UCI is malformed or fails its check character (`RC012`).
    Identifier,
    /// The learner is younger than 13 or older than 110 today (`RC013`).
    AgeOutOfRange,
}

impl ViolationKind {
    /// The LRS batch return code for this kind of fault.
    pub fn return_code(self) -> &'static str {
        match self {
            ViolationKind::Missing => "RC006",
            ViolationKind::Format => "RC011",
            ViolationKind::Identifier => "RC012",
            ViolationKind::AgeOutOfRange => "RC013",
        }
    }

    /// The kind that decides a record's return code: the first in the order RC006, RC011,
    /// RC012, RC013; `None` when there are no violations.
    pub fn decisive(violations: &[Violation]) -> Option<ViolationKind> {
        violations.iter().map(|v| v.kind).min()
    }
}

/// One fault in a learner's details. The message names the field and says what to fix; it
/// never repeats the learner's names, date of birth or postcode.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Violation {
    /// The field at fault, one of the [`field`] names.
    pub field: &'static str,
    /// What kind of fault it is.
    pub kind: ViolationKind,
    /// A message a person can act on.
    pub message: String,
}

impl fmt::Display for Violation {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.message)
    }
}

/// A learner's details as they arrive, each field as raw text. `None`, an empty string and a
/// string of spaces all mean "not given".
///
/// A 3A batch record sets `privacy_notice_seen` (to `Some`, even if empty) and leaves
/// `ability_to_share` as `None`; a 2A record or a request sets `ability_to_share`.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct RawLearner {
    /// `ULN`: the learner's ULN, if the caller knows it.
    pub uln: Option<String>,
    /// `Title`.
    pub title: Option<String>,
    /// `GivenName` (required).
    pub given_name: Option<String>,
    /// `PreferredGivenName`.
    pub preferred_given_name: Option<String>,
    /// `MiddleOtherName` (3A `MiddleNames`).
    pub middle_other_name: Option<String>,
    /// `FamilyName` (required).
    pub family_name: Option<String>,
    /// `PreviousFamilyName`.
    pub previous_family_name: Option<String>,
    /// `FamilyNameAt16`.
    pub family_name_at_16: Option<String>,
    /// `SchoolAtAge16`.
    pub school_at_16: Option<String>,
    /// `LastKnownAddressLine1`.
    pub address_line_1: Option<String>,
    /// `LastKnownAddressLine2`.
    pub address_line_2: Option<String>,
    /// `LastKnownAddressTown`.
    pub address_town: Option<String>,
    /// `LastKnownAddressCountyorCity`.
    pub address_county_or_city: Option<String>,
    /// `LastKnownPostCode` (required).
    pub postcode: Option<String>,
    /// `DateOfAddressCapture`, `YYYY-MM-DD`.
    pub date_of_address_capture: Option<String>,
    /// `DateOfBirth`, `YYYY-MM-DD` (required).
    pub date_of_birth: Option<String>,
    /// `PlaceOfBirth`.
    pub place_of_birth: Option<String>,
    /// `EmailAddress`.
    pub email: Option<String>,
    /// `Gender`: 0, 1, 2 or 9 (required).
    pub gender: Option<String>,
    /// `Nationality`.
    pub nationality: Option<String>,
    /// `ScottishCandidateNumber`.
    pub scottish_candidate_number: Option<String>,
    /// `VerificationType`: 0 to 7 or 999 (required).
    pub verification_type: Option<String>,
    /// `OtherVerificationDescription` (required with verification type 999).
    pub other_verification_description: Option<String>,
    /// `AbilityToShare`: 0 or 1 (required unless `privacy_notice_seen` is set).
    pub ability_to_share: Option<String>,
    /// `PrivacyNoticeSeen` (3A): 0 or 1.
    pub privacy_notice_seen: Option<String>,
    /// `Notes`.
    pub notes: Option<String>,
    /// `UPN` (3A).
    pub upn: Option<String>,
    /// `UCI` (3A).
    pub uci: Option<String>,
}

/// A learner's details that passed every rule, in their typed forms.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ValidLearner {
    /// The learner's ULN, if one was given.
    pub uln: Option<Uln>,
    /// Title.
    pub title: Option<String>,
    /// Given name.
    pub given_name: Name,
    /// Preferred given name.
    pub preferred_given_name: Option<Name>,
    /// Middle or other names.
    pub middle_other_name: Option<Name>,
    /// Family name.
    pub family_name: Name,
    /// Previous family name.
    pub previous_family_name: Option<Name>,
    /// Family name at age 16.
    pub family_name_at_16: Option<Name>,
    /// School at age 16.
    pub school_at_16: Option<String>,
    /// Address line 1.
    pub address_line_1: Option<String>,
    /// Address line 2.
    pub address_line_2: Option<String>,
    /// Town.
    pub address_town: Option<String>,
    /// County or city.
    pub address_county_or_city: Option<String>,
    /// Last known postcode, canonical.
    pub postcode: Postcode,
    /// Date the address was captured.
    pub date_of_address_capture: Option<NaiveDate>,
    /// Date of birth.
    pub date_of_birth: NaiveDate,
    /// Place of birth.
    pub place_of_birth: Option<String>,
    /// E-mail address.
    pub email: Option<Email>,
    /// Gender.
    pub gender: Gender,
    /// Nationality code (at most 3 characters, not checked against a list).
    pub nationality: Option<String>,
    /// Scottish Candidate Number.
    pub scottish_candidate_number: Option<ScottishCandidateNumber>,
    /// Verification type and its description.
    pub verification: Verification,
    /// Ability to share: never [`AbilityToShare::OptedOut`] on new data.
    pub ability_to_share: AbilityToShare,
    /// Notes.
    pub notes: Option<String>,
    /// Unique Pupil Number.
    pub upn: Option<Upn>,
    /// Unique Candidate Identifier.
    pub uci: Option<Uci>,
}

/// The five keys that identify a learner for matching and duplicate detection, normalised:
/// names by [`normalise_name`], the postcode without its space. Two records with equal keys
/// are the same learner as far as the register's duplicate rule goes.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct MatchKeys {
    /// The normalised given name.
    pub given_name: String,
    /// The normalised family name.
    pub family_name: String,
    /// The date of birth.
    pub date_of_birth: NaiveDate,
    /// The gender.
    pub gender: Gender,
    /// The postcode in its compact form (`CV49EE`).
    pub postcode: String,
}

impl MatchKeys {
    /// The keys of already validated fields.
    pub fn new(
        given_name: &Name,
        family_name: &Name,
        date_of_birth: NaiveDate,
        gender: Gender,
        postcode: &Postcode,
    ) -> MatchKeys {
        MatchKeys {
            given_name: normalise_name(given_name.as_str()),
            family_name: normalise_name(family_name.as_str()),
            date_of_birth,
            gender,
            postcode: postcode.compact(),
        }
    }

    /// Validates the five keys of a search (all required, by the same rules as a learner's
    /// details, without the age rule) and normalises them.
    pub fn from_raw(
        given_name: &str,
        family_name: &str,
        date_of_birth: &str,
        gender: &str,
        postcode: &str,
    ) -> Result<MatchKeys, Vec<Violation>> {
        let mut check = Check::default();
        let keys = check.five_keys(
            Some(given_name),
            Some(family_name),
            Some(date_of_birth),
            Some(gender),
            Some(postcode),
        );
        match keys {
            Some(keys) if check.violations.is_empty() => Ok(keys.match_keys()),
            _ => Err(check.violations),
        }
    }
}

impl ValidLearner {
    /// The learner's five matching keys.
    pub fn match_keys(&self) -> MatchKeys {
        MatchKeys::new(
            &self.given_name,
            &self.family_name,
            self.date_of_birth,
            self.gender,
            &self.postcode,
        )
    }

    /// The learner's age in whole years on `today`.
    pub fn age_on(&self, today: NaiveDate) -> i32 {
        age_on(self.date_of_birth, today)
    }
}

impl RawLearner {
    /// Checks every field, with `today` (the date in Europe/London, from a
    /// [`Clock`](crate::date::Clock)) for the age rule, and returns the typed learner or every
    /// violation found.
    pub fn validate(&self, today: NaiveDate) -> Result<ValidLearner, Vec<Violation>> {
        let mut check = Check::default();

        let keys = check.five_keys(
            self.given_name.as_deref(),
            self.family_name.as_deref(),
            self.date_of_birth.as_deref(),
            self.gender.as_deref(),
            self.postcode.as_deref(),
        );
        if let Some(date_of_birth) = check.date_of_birth {
            check.age(date_of_birth, today);
        }

        let uln = check.optional(field::ULN, &self.uln, ViolationKind::Format, Uln::parse);
        let upn = check.optional(field::UPN, &self.upn, ViolationKind::Identifier, Upn::parse);
        let uci = check.optional(field::UCI, &self.uci, ViolationKind::Identifier, Uci::parse);

        let preferred_given_name =
            check.name(field::PREFERRED_GIVEN_NAME, &self.preferred_given_name);
        let middle_other_name = check.name(field::MIDDLE_OTHER_NAME, &self.middle_other_name);
        let previous_family_name =
            check.name(field::PREVIOUS_FAMILY_NAME, &self.previous_family_name);
        let family_name_at_16 = check.name(field::FAMILY_NAME_AT_16, &self.family_name_at_16);

        let title = check.text(field::TITLE, &self.title, text::TITLE_MAX);
        let place_of_birth = check.text(
            field::PLACE_OF_BIRTH,
            &self.place_of_birth,
            text::PLACE_OF_BIRTH_MAX,
        );
        let school_at_16 = check.text(field::SCHOOL_AT_16, &self.school_at_16, text::SCHOOL_MAX);
        let address_line_1 = check.text(
            field::ADDRESS_LINE_1,
            &self.address_line_1,
            text::ADDRESS_LINE_MAX,
        );
        let address_line_2 = check.text(
            field::ADDRESS_LINE_2,
            &self.address_line_2,
            text::ADDRESS_LINE_MAX,
        );
        let address_town = check.text(
            field::ADDRESS_TOWN,
            &self.address_town,
            text::ADDRESS_LINE_MAX,
        );
        let address_county_or_city = check.text(
            field::ADDRESS_COUNTY_OR_CITY,
            &self.address_county_or_city,
            text::ADDRESS_LINE_MAX,
        );
        let nationality = check.text(field::NATIONALITY, &self.nationality, text::NATIONALITY_MAX);
        let notes = check
            .optional(field::NOTES, &self.notes, ViolationKind::Format, |v| {
                text::multi_line(v, text::NOTES_MAX)
            })
            .map(Option::flatten);

        let date_of_address_capture = check.optional(
            field::DATE_OF_ADDRESS_CAPTURE,
            &self.date_of_address_capture,
            ViolationKind::Format,
            parse_date,
        );
        let email = check.optional(
            field::EMAIL,
            &self.email,
            ViolationKind::Format,
            Email::parse,
        );
        let scottish_candidate_number = check.optional(
            field::SCOTTISH_CANDIDATE_NUMBER,
            &self.scottish_candidate_number,
            ViolationKind::Format,
            ScottishCandidateNumber::parse,
        );
        let verification = check.verification(
            self.verification_type.as_deref(),
            self.other_verification_description.as_deref(),
        );
        let ability_to_share = check.ability_to_share(
            self.ability_to_share.as_deref(),
            self.privacy_notice_seen.as_deref(),
        );

        // Every required value that is None has left a violation behind, so the else branch
        // always returns a non-empty list.
        let (Some(keys), Some(verification), Some(ability_to_share)) =
            (keys, verification, ability_to_share)
        else {
            return Err(check.violations);
        };
        if !check.violations.is_empty() {
            return Err(check.violations);
        }

        Ok(ValidLearner {
            uln: uln.flatten(),
            title: title.flatten(),
            given_name: keys.given_name,
            preferred_given_name: preferred_given_name.flatten(),
            middle_other_name: middle_other_name.flatten(),
            family_name: keys.family_name,
            previous_family_name: previous_family_name.flatten(),
            family_name_at_16: family_name_at_16.flatten(),
            school_at_16: school_at_16.flatten(),
            address_line_1: address_line_1.flatten(),
            address_line_2: address_line_2.flatten(),
            address_town: address_town.flatten(),
            address_county_or_city: address_county_or_city.flatten(),
            postcode: keys.postcode,
            date_of_address_capture: date_of_address_capture.flatten(),
            date_of_birth: keys.date_of_birth,
            place_of_birth: place_of_birth.flatten(),
            email: email.flatten(),
            gender: keys.gender,
            nationality: nationality.flatten(),
            scottish_candidate_number: scottish_candidate_number.flatten(),
            verification,
            ability_to_share,
            notes: notes.flatten(),
            upn: upn.flatten(),
            uci: uci.flatten(),
        })
    }
}

/// The five keys in their validated, not yet normalised, forms.
struct FiveKeys {
    given_name: Name,
    family_name: Name,
    date_of_birth: NaiveDate,
    gender: Gender,
    postcode: Postcode,
}

impl FiveKeys {
    fn match_keys(&self) -> MatchKeys {
        MatchKeys::new(
            &self.given_name,
            &self.family_name,
            self.date_of_birth,
            self.gender,
            &self.postcode,
        )
    }
}

/// Collects violations while the fields are checked one by one.
#[derive(Default)]
struct Check {
    violations: Vec<Violation>,
    date_of_birth: Option<NaiveDate>,
}

fn given(value: Option<&str>) -> Option<&str> {
    value.filter(|v| !v.trim().is_empty())
}

impl Check {
    fn push(&mut self, field: &'static str, kind: ViolationKind, detail: impl fmt::Display) {
        let message = format!("{field}: {detail}");
        self.violations.push(Violation {
            field,
            kind,
            message,
        });
    }

    /// A required field: missing when blank, otherwise parsed (a failure is a format fault).
    fn required<T, E: fmt::Display>(
        &mut self,
        field: &'static str,
        value: Option<&str>,
        parse: impl FnOnce(&str) -> Result<T, E>,
    ) -> Option<T> {
        let Some(value) = given(value) else {
            self.push(field, ViolationKind::Missing, "this field is required");
            return None;
        };
        parse(value)
            .map_err(|e| self.push(field, ViolationKind::Format, e))
            .ok()
    }

    /// An optional field: `Some(None)` when blank, `Some(Some(_))` when valid, `None` (with a
    /// violation of `kind`) when present but not valid.
    fn optional<T, E: fmt::Display>(
        &mut self,
        field: &'static str,
        value: &Option<String>,
        kind: ViolationKind,
        parse: impl FnOnce(&str) -> Result<T, E>,
    ) -> Option<Option<T>> {
        let Some(value) = given(value.as_deref()) else {
            return Some(None);
        };
        parse(value)
            .map(Some)
            .map_err(|e| self.push(field, kind, e))
            .ok()
    }

    fn name(&mut self, field: &'static str, value: &Option<String>) -> Option<Option<Name>> {
        self.optional(field, value, ViolationKind::Format, Name::parse)
    }

    fn text(
        &mut self,
        field: &'static str,
        value: &Option<String>,
        max: usize,
    ) -> Option<Option<String>> {
        self.optional(field, value, ViolationKind::Format, |v| {
            text::single_line(v, max)
        })
        .map(Option::flatten)
    }

    fn five_keys(
        &mut self,
        given_name: Option<&str>,
        family_name: Option<&str>,
        date_of_birth: Option<&str>,
        gender: Option<&str>,
        postcode: Option<&str>,
    ) -> Option<FiveKeys> {
        let given_name = self.required(field::GIVEN_NAME, given_name, Name::parse);
        let family_name = self.required(field::FAMILY_NAME, family_name, Name::parse);
        let postcode = self.required(field::POSTCODE, postcode, Postcode::parse);
        let date_of_birth = self.required(field::DATE_OF_BIRTH, date_of_birth, parse_date);
        let gender = self.required(field::GENDER, gender, Gender::parse);
        // Kept apart so the age rule can run even when another key is at fault.
        self.date_of_birth = date_of_birth;
        Some(FiveKeys {
            given_name: given_name?,
            family_name: family_name?,
            date_of_birth: date_of_birth?,
            gender: gender?,
            postcode: postcode?,
        })
    }

    fn age(&mut self, date_of_birth: NaiveDate, today: NaiveDate) {
        let age = age_on(date_of_birth, today);
        if !(MIN_AGE..=MAX_AGE).contains(&age) {
            let detail = if age < 0 {
                "the date of birth is in the future; a learner must be 13 to 110 years old today"
                    .to_owned()
            } else {
                format!("the learner is {age}; a learner must be 13 to 110 years old today")
            };
            self.push(field::DATE_OF_BIRTH, ViolationKind::AgeOutOfRange, detail);
        }
    }

    fn verification(
        &mut self,
        verification_type: Option<&str>,
        description: Option<&str>,
    ) -> Option<Verification> {
        let verification_type = self.required(
            field::VERIFICATION_TYPE,
            verification_type,
            VerificationType::parse,
        );
        let description = description.unwrap_or_default();
        let Some(verification_type) = verification_type else {
            // Still check the description on its own, so that its faults are reported too.
            let limit = text::OTHER_VERIFICATION_DESCRIPTION_MAX;
            if let Err(e) = text::single_line(description, limit) {
                self.push(
                    field::OTHER_VERIFICATION_DESCRIPTION,
                    ViolationKind::Format,
                    e,
                );
            }
            return None;
        };
        Verification::new(verification_type, description)
            .map_err(|e| {
                self.push(
                    field::OTHER_VERIFICATION_DESCRIPTION,
                    ViolationKind::Format,
                    e,
                )
            })
            .ok()
    }

    fn ability_to_share(
        &mut self,
        ability_to_share: Option<&str>,
        privacy_notice_seen: Option<&str>,
    ) -> Option<AbilityToShare> {
        let Some(privacy_notice_seen) = privacy_notice_seen else {
            return self.required(
                field::ABILITY_TO_SHARE,
                ability_to_share,
                AbilityToShare::parse_new,
            );
        };
        if given(ability_to_share).is_some() {
            self.push(
                field::ABILITY_TO_SHARE,
                ViolationKind::Format,
                "give PrivacyNoticeSeen (3A) or AbilityToShare (2A), not both",
            );
        }
        self.required(
            field::PRIVACY_NOTICE_SEEN,
            Some(privacy_notice_seen),
            PrivacyNoticeSeen::parse,
        )
        .map(AbilityToShare::from)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::upn::UpnKind;

    /// The date the sample files are named for.
    fn today() -> NaiveDate {
        NaiveDate::from_ymd_opt(2026, 12, 3).expect("a real date")
    }

    fn some(value: &str) -> Option<String> {
        Some(value.to_owned())
    }

    /// A 2A sample row's required fields, in the file's order.
    fn row(
        given: &str,
        family: &str,
        postcode: &str,
        date_of_birth: &str,
        gender: &str,
        ability_to_share: &str,
        verification_type: &str,
    ) -> RawLearner {
        RawLearner {
            given_name: some(given),
            family_name: some(family),
            postcode: some(postcode),
            date_of_birth: some(date_of_birth),
            gender: some(gender),
            ability_to_share: some(ability_to_share),
            verification_type: some(verification_type),
            // The batch reader hands empty columns over as empty strings.
            other_verification_description: some(""),
            uln: some(""),
            email: some(""),
            ..RawLearner::default()
        }
    }

    /// A 3A sample row: privacy notice seen in place of ability to share, and UCI and UPN.
    fn row_3a(privacy_notice_seen: &str, uci: &str, upn: &str) -> RawLearner {
        RawLearner {
            ability_to_share: None,
            privacy_notice_seen: some(privacy_notice_seen),
            uci: some(uci),
            upn: some(upn),
            ..row("Aisha", "Okafor", "NG1 5FS", "2010-01-20", "2", "", "1")
        }
    }

    fn violations(raw: &RawLearner) -> Vec<(&'static str, ViolationKind)> {
        match raw.validate(today()) {
            Ok(_) => Vec::new(),
            Err(violations) => violations.iter().map(|v| (v.field, v.kind)).collect(),
        }
    }

    fn valid(raw: &RawLearner) -> ValidLearner {
        raw.validate(today())
            .unwrap_or_else(|v| panic!("expected valid, got {v:?}"))
    }

    fn stu0001() -> RawLearner {
        RawLearner {
            title: some("Miss"),
            address_line_1: some("12 Orchard Way"),
            address_town: some("Coventry"),
            ..row("Amelia", "Hartley", "CV4 9EE", "2009-03-14", "2", "1", "1")
        }
    }

    #[test]
    fn sample_2a_records_that_are_valid() {
        let stu0001 = valid(&stu0001());
        assert_eq!(stu0001.title.as_deref(), Some("Miss"));
        assert_eq!(stu0001.address_line_1.as_deref(), Some("12 Orchard Way"));
        assert_eq!(stu0001.postcode.as_str(), "CV4 9EE");
        assert_eq!(stu0001.gender, Gender::Female);
        assert_eq!(stu0001.ability_to_share, AbilityToShare::NoticeSeen);
        assert_eq!(stu0001.uln, None);
        assert_eq!(stu0001.age_on(today()), 17);

        let stu0002 = RawLearner {
            middle_other_name: some("James"),
            ..row("Oliver", "O'Connor", "B15 2TT", "2008-11-02", "1", "1", "2")
        };
        assert_eq!(valid(&stu0002).family_name.as_str(), "O'Connor");
        valid(&row(
            "Zoë",
            "Smith-Jones",
            "M1 1AE",
            "2009-07-30",
            "2",
            "1",
            "1",
        ));
        let stu0004 = RawLearner {
            email: some("m.rahman@example.org"),
            ..row("Mohammed", "Rahman", "E1 6AN", "2008-01-19", "1", "1", "5")
        };
        assert!(valid(&stu0004).email.is_some());
        let stu0005 = valid(&row("Li", "Wei", "LS1 4AP", "2009-09-09", "9", "0", "0"));
        assert_eq!(stu0005.ability_to_share, AbilityToShare::NoticeNotSeen);
        let stu0007 = RawLearner {
            other_verification_description: some("Forces ID card"),
            ..row("Harry", "Patel", "BFPO 123", "2007-05-05", "1", "1", "999")
        };
        let stu0007 = valid(&stu0007);
        assert!(stu0007.postcode.is_bfpo());
        assert!(stu0007.verification.verification_type.is_other());
        let stu0015 = RawLearner {
            email: some("freya.walker@example.co.uk"),
            ..row("Freya", "Walker", "l1 8jq", "2008-06-15", "2", "1", "3")
        };
        assert_eq!(valid(&stu0015).postcode.as_str(), "L1 8JQ");
    }

    #[test]
    fn stu0006_has_the_same_keys_as_stu0001() {
        let stu0006 = RawLearner {
            notes: some("same learner as STU0001 entered twice"),
            ..row("Amelia", "Hartley", "CV49EE", "2009-03-14", "2", "1", "1")
        };
        let first = valid(&stu0001()).match_keys();
        assert_eq!(valid(&stu0006).match_keys(), first);
        assert_eq!(first.postcode, "CV49EE");
        assert_eq!(first.given_name, "amelia");
    }

    #[test]
    fn sample_2a_records_with_faults() {
        use ViolationKind::*;
        let cases = [
            (
                row("Ella", "Brown", "NOT A PC", "2009-02-01", "2", "1", "1"),
                field::POSTCODE,
                Format,
            ),
            (
                row("Noah", "Evans", "CF10 1AA", "2020-06-01", "1", "1", "1"),
                field::DATE_OF_BIRTH,
                AgeOutOfRange,
            ),
            (
                row("Isla", "Murray", "EH1 1YZ", "2009-02-30", "2", "1", "1"),
                field::DATE_OF_BIRTH,
                Format,
            ),
            (
                row("   ", "Taylor", "SW1A 1AA", "2008-08-08", "1", "1", "1"),
                field::GIVEN_NAME,
                Missing,
            ),
            (
                row("Jack", "Wilson", "NE2 2AS", "2008-12-25", "3", "1", "1"),
                field::GENDER,
                Format,
            ),
            (
                RawLearner {
                    uln: some("1748529631"),
                    ..row("Sophie", "Clarke", "BS1 5TR", "2008-04-04", "2", "1", "1")
                },
                field::ULN,
                Format,
            ),
            (
                row(
                    "Charlie",
                    "Davies",
                    "CV4 9EE",
                    "2009-10-10",
                    "0",
                    "1",
                    "999",
                ),
                field::OTHER_VERIFICATION_DESCRIPTION,
                Format,
            ),
            (
                row("Daniel", "Kowalski", "RG1 1AZ", "2008-09-17", "1", "2", "1"),
                field::ABILITY_TO_SHARE,
                Format,
            ),
        ];
        for (raw, field, kind) in cases {
            assert_eq!(violations(&raw), vec![(field, kind)], "{raw:?}");
        }
    }

    #[test]
    fn sample_return_codes() {
        let bad_date = row("Isla", "Murray", "EH1 1YZ", "2009-02-30", "2", "1", "1");
        let found = bad_date.validate(today()).expect_err("30 February");
        assert_eq!(
            ViolationKind::decisive(&found).map(ViolationKind::return_code),
            Some("RC011")
        );
        let blank = row("   ", "Taylor", "SW1A 1AA", "2008-08-08", "1", "1", "1");
        let found = blank.validate(today()).expect_err("blank given name");
        assert_eq!(
            ViolationKind::decisive(&found).map(ViolationKind::return_code),
            Some("RC006")
        );
        assert_eq!(ViolationKind::decisive(&[]), None);
    }

    #[test]
    fn sample_3a_records() {
        let p3a001 = valid(&row_3a("1", "", "B801200005001"));
        assert_eq!(p3a001.upn.as_ref().map(Upn::kind), Some(UpnKind::Permanent));
        assert_eq!(p3a001.ability_to_share, AbilityToShare::NoticeSeen);
        let p3a002 = valid(&row_3a("1", "681990012058G", ""));
        assert_eq!(p3a002.uci.as_ref().map(Uci::as_str), Some("681990012058G"));
        let p3a006 = valid(&row_3a("0", "", "X00180001701A"));
        assert_eq!(p3a006.upn.as_ref().map(Upn::kind), Some(UpnKind::Temporary));
        assert_eq!(p3a006.ability_to_share, AbilityToShare::NoticeNotSeen);

        let identifier = ViolationKind::Identifier;
        assert_eq!(
            violations(&row_3a("1", "", "A801200005001")),
            vec![(field::UPN, identifier)]
        );
        assert_eq!(
            violations(&row_3a("1", "681990012058H", "")),
            vec![(field::UCI, identifier)]
        );
        assert_eq!(
            violations(&row_3a("2", "", "")),
            vec![(field::PRIVACY_NOTICE_SEEN, ViolationKind::Format)]
        );
        assert_eq!(
            violations(&row_3a("", "", "")),
            vec![(field::PRIVACY_NOTICE_SEEN, ViolationKind::Missing)]
        );
    }

    #[test]
    fn sharing_given_twice_is_a_fault() {
        let both = RawLearner {
            ability_to_share: some("1"),
            ..row_3a("1", "", "")
        };
        assert_eq!(
            violations(&both),
            vec![(field::ABILITY_TO_SHARE, ViolationKind::Format)]
        );
    }

    #[test]
    fn every_violation_is_reported() {
        let raw = RawLearner {
            uln: some("1748529631"),
            upn: some("A801200005001"),
            email: some("not an address"),
            ..row("", "Wilson", "CV4  9EE", "2020-01-01", "3", "2", "999")
        };
        let found = raw.validate(today()).expect_err("many faults");
        let fields: Vec<_> = found.iter().map(|v| (v.field, v.kind)).collect();
        use ViolationKind::*;
        for expected in [
            (field::GIVEN_NAME, Missing),
            (field::POSTCODE, Format),
            (field::GENDER, Format),
            (field::DATE_OF_BIRTH, AgeOutOfRange),
            (field::ULN, Format),
            (field::UPN, Identifier),
            (field::EMAIL, Format),
            (field::OTHER_VERIFICATION_DESCRIPTION, Format),
            (field::ABILITY_TO_SHARE, Format),
        ] {
            assert!(fields.contains(&expected), "{expected:?} in {fields:?}");
        }
        assert_eq!(found.len(), 9);
        assert_eq!(ViolationKind::decisive(&found), Some(Missing));
    }

    #[test]
    fn nothing_given_reports_each_required_field_missing() {
        let found = RawLearner::default().validate(today()).expect_err("empty");
        let fields: Vec<_> = found.iter().map(|v| v.field).collect();
        assert_eq!(
            fields,
            [
                field::GIVEN_NAME,
                field::FAMILY_NAME,
                field::POSTCODE,
                field::DATE_OF_BIRTH,
                field::GENDER,
                field::VERIFICATION_TYPE,
                field::ABILITY_TO_SHARE,
            ]
        );
        assert!(found.iter().all(|v| v.kind == ViolationKind::Missing));
        assert!(
            found
                .iter()
                .all(|v| v.message.ends_with("this field is required"))
        );
    }

    #[test]
    fn age_limits_are_inclusive_on_the_london_date() {
        let born = |date: &str| row("Ann", "Lee", "CV4 9EE", date, "2", "1", "1");
        assert!(born("2013-12-03").validate(today()).is_ok(), "13 today");
        assert!(born("1916-12-03").validate(today()).is_ok(), "110 today");
        assert_eq!(
            violations(&born("2013-12-04")),
            vec![(field::DATE_OF_BIRTH, ViolationKind::AgeOutOfRange)]
        );
        assert!(
            born("1915-12-04").validate(today()).is_ok(),
            "110, 111 tomorrow"
        );
        assert_eq!(
            violations(&born("1915-12-03")),
            vec![(field::DATE_OF_BIRTH, ViolationKind::AgeOutOfRange)]
        );
        assert_eq!(
            violations(&born("2030-01-01")),
            vec![(field::DATE_OF_BIRTH, ViolationKind::AgeOutOfRange)]
        );
        let message = &born("2020-06-01").validate(today()).expect_err("too young")[0].message;
        assert!(message.contains("the learner is 6"), "{message}");
        assert!(!message.contains("2020"), "no date of birth in {message}");
    }

    #[test]
    fn optional_fields_are_checked_and_kept() {
        let raw = RawLearner {
            uln: some("1026893096"),
            preferred_given_name: some(" Mo "),
            previous_family_name: some("Smith"),
            family_name_at_16: some("Smith"),
            school_at_16: some("Coventry School"),
            address_county_or_city: some("West Midlands"),
            date_of_address_capture: some("2025-09-01"),
            place_of_birth: some("Coventry"),
            nationality: some("GBR"),
            scottish_candidate_number: some("123456789"),
            notes: some("line one\nline two"),
            other_verification_description: some("kept even for type 1"),
            ..stu0001()
        };
        let learner = valid(&raw);
        assert_eq!(
            learner.uln.map(|u| u.to_string()).as_deref(),
            Some("1026893096")
        );
        assert_eq!(
            learner.preferred_given_name.as_ref().map(Name::as_str),
            Some("Mo")
        );
        assert_eq!(
            learner.date_of_address_capture,
            NaiveDate::from_ymd_opt(2025, 9, 1)
        );
        assert_eq!(learner.nationality.as_deref(), Some("GBR"));
        assert_eq!(learner.notes.as_deref(), Some("line one\nline two"));
        assert_eq!(
            learner.verification.other_description.as_deref(),
            Some("kept even for type 1")
        );
        assert!(learner.scottish_candidate_number.is_some());
    }

    #[test]
    fn optional_field_faults_are_format_faults() {
        let cases = [
            (
                RawLearner {
                    title: some(&"t".repeat(36)),
                    ..stu0001()
                },
                field::TITLE,
            ),
            (
                RawLearner {
                    middle_other_name: some(&"m".repeat(36)),
                    ..stu0001()
                },
                field::MIDDLE_OTHER_NAME,
            ),
            (
                RawLearner {
                    address_line_2: some(&"a".repeat(51)),
                    ..stu0001()
                },
                field::ADDRESS_LINE_2,
            ),
            (
                RawLearner {
                    address_town: some(&"a".repeat(51)),
                    ..stu0001()
                },
                field::ADDRESS_TOWN,
            ),
            (
                RawLearner {
                    school_at_16: some(&"s".repeat(255)),
                    ..stu0001()
                },
                field::SCHOOL_AT_16,
            ),
            (
                RawLearner {
                    place_of_birth: some(&"p".repeat(36)),
                    ..stu0001()
                },
                field::PLACE_OF_BIRTH,
            ),
            (
                RawLearner {
                    nationality: some("GBRX"),
                    ..stu0001()
                },
                field::NATIONALITY,
            ),
            (
                RawLearner {
                    notes: some(&"n".repeat(4001)),
                    ..stu0001()
                },
                field::NOTES,
            ),
            (
                RawLearner {
                    scottish_candidate_number: some("12345678"),
                    ..stu0001()
                },
                field::SCOTTISH_CANDIDATE_NUMBER,
            ),
            (
                RawLearner {
                    date_of_address_capture: some("2025-02-29"),
                    ..stu0001()
                },
                field::DATE_OF_ADDRESS_CAPTURE,
            ),
            (
                RawLearner {
                    email: some("a@x.org"),
                    ..stu0001()
                },
                field::EMAIL,
            ),
            (
                RawLearner {
                    verification_type: some("8"),
                    ..stu0001()
                },
                field::VERIFICATION_TYPE,
            ),
            (
                RawLearner {
                    family_name: some(&"f".repeat(36)),
                    ..stu0001()
                },
                field::FAMILY_NAME,
            ),
            (
                RawLearner {
                    uln: some(" 1026893096"),
                    ..stu0001()
                },
                field::ULN,
            ),
        ];
        for (raw, field) in cases {
            assert_eq!(
                violations(&raw),
                vec![(field, ViolationKind::Format)],
                "{field}"
            );
        }
    }

    #[test]
    fn a_bad_verification_type_does_not_hide_a_bad_description() {
        let raw = RawLearner {
            verification_type: some("8"),
            other_verification_description: some(&"d".repeat(256)),
            ..stu0001()
        };
        assert_eq!(
            violations(&raw),
            vec![
                (field::VERIFICATION_TYPE, ViolationKind::Format),
                (field::OTHER_VERIFICATION_DESCRIPTION, ViolationKind::Format),
            ]
        );
    }

    #[test]
    fn messages_name_the_field_and_hide_personal_details() {
        let raw = row("Ella", "Brown", "NOT A PC", "2009-02-30", "2", "1", "1");
        let found = raw.validate(today()).expect_err("two faults");
        assert_eq!(found.len(), 2);
        assert!(
            found[0].message.starts_with("LastKnownPostCode: "),
            "{}",
            found[0]
        );
        assert!(
            found[1].message.starts_with("DateOfBirth: "),
            "{}",
            found[1]
        );
        for violation in &found {
            assert!(!violation.message.contains("NOT A PC"), "{violation}");
            assert!(!violation.message.contains("2009"), "{violation}");
        }
    }

    #[test]
    fn match_keys_from_a_search() {
        let keys = MatchKeys::from_raw("Zoë", "Smith-Jones", "2009-07-30", "2", "m11ae")
            .expect("valid keys");
        assert_eq!(keys.given_name, "zoe");
        assert_eq!(keys.family_name, "smithjones");
        assert_eq!(keys.postcode, "M11AE");
        let learner = valid(&row(
            "ZOE",
            "Smith Jones",
            "M1 1AE",
            "2009-07-30",
            "2",
            "1",
            "1",
        ));
        assert_eq!(learner.match_keys(), keys);

        let found = MatchKeys::from_raw("", "Smith", "2009-02-30", "3", "").expect_err("faults");
        let fields: Vec<_> = found.iter().map(|v| (v.field, v.kind)).collect();
        assert_eq!(
            fields,
            vec![
                (field::GIVEN_NAME, ViolationKind::Missing),
                (field::POSTCODE, ViolationKind::Missing),
                (field::DATE_OF_BIRTH, ViolationKind::Format),
                (field::GENDER, ViolationKind::Format),
            ]
        );
        // The search keys carry no age rule.
        assert!(MatchKeys::from_raw("Noah", "Evans", "2020-06-01", "1", "CF10 1AA").is_ok());
    }

    #[test]
    fn return_codes_by_kind() {
        assert_eq!(ViolationKind::Missing.return_code(), "RC006");
        assert_eq!(ViolationKind::Format.return_code(), "RC011");
        assert_eq!(ViolationKind::Identifier.return_code(), "RC012");
        assert_eq!(ViolationKind::AgeOutOfRange.return_code(), "RC013");
        assert!(ViolationKind::Missing < ViolationKind::Format);
        assert!(ViolationKind::Format < ViolationKind::Identifier);
        assert!(ViolationKind::Identifier < ViolationKind::AgeOutOfRange);
    }
}
