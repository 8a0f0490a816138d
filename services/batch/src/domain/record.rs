//! The checks of one record: an LRB learner row through the shared learner rules of
//! `lrs-fields`, plus the batch's own rules (the MIS identifier, and names that a spreadsheet
//! would run as a formula), and a verification row.

use chrono::NaiveDate;
use lrs_fields::learner::field;
use lrs_fields::{
    Gender, MatchKeys, Name, RawLearner, Uln, ValidLearner, Violation, ViolationKind, parse_date,
};

use super::layout::{LRB_HEADER_COLUMNS, LrbVersion, VRF_HEADINGS};
use super::outcome::RecordFault;

/// The longest `MISIdentifier`, in characters.
pub const MIS_IDENTIFIER_MAX: usize = 128;

/// Characters that make a spreadsheet read a cell as a formula when they come first.
pub const FORMULA_STARTS: [char; 4] = ['=', '+', '-', '@'];

/// The name columns in which a leading formula character is refused (`RC011`).
const NAME_HEADINGS: [&str; 7] = [
    "GivenName",
    "PreferredGivenName",
    "MiddleOtherName",
    "MiddleNames",
    "FamilyName",
    "PreviousFamilyName",
    "FamilyNameAt16",
];

/// The result of checking one LRB learner row.
#[derive(Debug, Clone)]
pub struct LearnerCheck {
    /// The row's `MISIdentifier`, as given.
    pub mis_identifier: String,
    /// Every fault, in column order; empty when the record is valid.
    pub faults: Vec<RecordFault>,
    /// The learner, when there is no fault.
    pub learner: Option<ValidLearner>,
}

impl LearnerCheck {
    /// The five normalised matching keys of a valid learner.
    pub fn match_keys(&self) -> Option<MatchKeys> {
        self.learner.as_ref().map(ValidLearner::match_keys)
    }
}

/// Reads the learner columns of a row (`values` holds the columns after the four header
/// columns, in the layout's order) into the raw fields of a learner.
pub fn raw_learner(version: LrbVersion, values: &[String]) -> RawLearner {
    let mut raw = RawLearner::default();
    let headings = &version.headings()[LRB_HEADER_COLUMNS..];
    for (heading, value) in headings.iter().zip(values) {
        let value = Some(value.clone());
        match *heading {
            "ULN" => raw.uln = value,
            "Title" => raw.title = value,
            "GivenName" => raw.given_name = value,
            "PreferredGivenName" => raw.preferred_given_name = value,
            "MiddleOtherName" | "MiddleNames" => raw.middle_other_name = value,
            "FamilyName" => raw.family_name = value,
            "PreviousFamilyName" => raw.previous_family_name = value,
            "FamilyNameAt16" => raw.family_name_at_16 = value,
            "SchoolAtAge16" => raw.school_at_16 = value,
            "LastKnownAddressLine1" => raw.address_line_1 = value,
            "LastKnownAddressLine2" => raw.address_line_2 = value,
            "LastKnownAddressTown" => raw.address_town = value,
            "LastKnownAddressCountyorCity" => raw.address_county_or_city = value,
            "LastKnownPostCode" => raw.postcode = value,
            "DateOfAddressCapture" => raw.date_of_address_capture = value,
            "DateOfBirth" => raw.date_of_birth = value,
            "PlaceOfBirth" => raw.place_of_birth = value,
            "EmailAddress" => raw.email = value,
            "Gender" => raw.gender = value,
            "Nationality" => raw.nationality = value,
            "ScottishCandidateNumber" => raw.scottish_candidate_number = value,
            "AbilityToShare" => raw.ability_to_share = value,
            "PrivacyNoticeSeen" => raw.privacy_notice_seen = value,
            "VerificationType" => raw.verification_type = value,
            "OtherVerificationDescription" => raw.other_verification_description = value,
            "Notes" => raw.notes = value,
            "UCI" => raw.uci = value,
            "UPN" => raw.upn = value,
            // MISIdentifier is the batch's own column, checked by check_learner.
            _ => {}
        }
    }
    raw
}

/// The heading a shared-rules field name stands for in a layout.
fn heading_of(version: LrbVersion, field_name: &'static str) -> &'static str {
    match (version, field_name) {
        (LrbVersion::V3A, field::MIDDLE_OTHER_NAME) => "MiddleNames",
        // A 3A record never sets AbilityToShare, so a fault there is the notice column's.
        (LrbVersion::V3A, field::ABILITY_TO_SHARE) => "PrivacyNoticeSeen",
        (LrbVersion::V2A, field::PRIVACY_NOTICE_SEEN) => "AbilityToShare",
        _ => field_name,
    }
}

/// The reason of a shared-rules violation without its leading `Field: `.
fn reason_of(violation: &Violation) -> String {
    let prefix = format!("{}: ", violation.field);
    violation
        .message
        .strip_prefix(&prefix)
        .unwrap_or(&violation.message)
        .to_owned()
}

/// Checks the learner columns of an LRB row, `today` being the date in Europe/London that
/// the age rule uses. `values` holds the columns after the four header columns.
pub fn check_learner(
    version: LrbVersion,
    row: u64,
    values: &[String],
    today: NaiveDate,
) -> LearnerCheck {
    let headings = &version.headings()[LRB_HEADER_COLUMNS..];
    let value_of = |heading: &str| -> &str {
        headings
            .iter()
            .position(|h| *h == heading)
            .and_then(|index| values.get(index))
            .map(String::as_str)
            .unwrap_or("")
    };
    let mis_identifier = value_of("MISIdentifier").to_owned();

    let mut faults = Vec::new();
    if let Some(fault) = check_mis_identifier(row, &mis_identifier) {
        faults.push(fault);
    }
    for heading in NAME_HEADINGS {
        if headings.contains(&heading)
            && let Some(fault) = check_formula(row, heading, value_of(heading))
        {
            faults.push(fault);
        }
    }

    let learner = match raw_learner(version, values).validate(today) {
        Ok(learner) => Some(learner),
        Err(violations) => {
            for violation in &violations {
                let heading = heading_of(version, violation.field);
                faults.push(RecordFault::new(
                    row,
                    heading,
                    value_of(heading),
                    reason_of(violation),
                    violation.kind,
                ));
            }
            None
        }
    };

    faults.sort_by_key(|fault| headings.iter().position(|h| *h == fault.column));
    LearnerCheck {
        mis_identifier,
        learner: learner.filter(|_| faults.is_empty()),
        faults,
    }
}

fn check_mis_identifier(row: u64, value: &str) -> Option<RecordFault> {
    let length = value.chars().count();
    let reason = if length > MIS_IDENTIFIER_MAX {
        format!(
            "the MIS identifier has {length} characters; at most {MIS_IDENTIFIER_MAX} are allowed"
        )
    } else if value.chars().any(char::is_control) {
        "the MIS identifier holds a control character, which is not allowed".to_owned()
    } else {
        return None;
    };
    Some(RecordFault::new(
        row,
        "MISIdentifier",
        value,
        reason,
        ViolationKind::Format,
    ))
}

fn check_formula(row: u64, heading: &str, value: &str) -> Option<RecordFault> {
    let first = value.trim_start().chars().next()?;
    FORMULA_STARTS.contains(&first).then(|| {
        RecordFault::new(
            row,
            heading,
            value,
            format!(
                "a name may not start with `{first}`: spreadsheets run a value starting with \
                 = + - or @ as a formula"
            ),
            ViolationKind::Format,
        )
    })
}

/// One row of an AO verification file, checked.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct VerificationRow {
    /// The ULN to verify.
    pub uln: Uln,
    /// The given name held.
    pub given_name: Name,
    /// The family name held.
    pub family_name: Name,
    /// The date of birth held, when given.
    pub date_of_birth: Option<NaiveDate>,
    /// The gender held, when given.
    pub gender: Option<Gender>,
}

/// The result of checking one verification row.
#[derive(Debug, Clone)]
pub struct VerificationCheck {
    /// The row's `MISIdentifier`, as given.
    pub mis_identifier: String,
    /// Every fault, in column order.
    pub faults: Vec<RecordFault>,
    /// The row, when there is no fault.
    pub record: Option<VerificationRow>,
}

/// Checks a verification row (`values` in [`VRF_HEADINGS`] order): the ULN and both names
/// are required; the date of birth and gender are optional.
pub fn check_verification(row: u64, values: &[String]) -> VerificationCheck {
    let value = |index: usize| values.get(index).map(String::as_str).unwrap_or("");
    let mis_identifier = value(0).to_owned();
    let mut faults = Vec::new();
    let mut fault = |index: usize, reason: String, kind| {
        faults.push(RecordFault::new(
            row,
            VRF_HEADINGS[index],
            value(index),
            reason,
            kind,
        ));
    };
    let missing = "this field is required".to_owned();

    if let Some(found) = check_mis_identifier(row, &mis_identifier) {
        fault(0, found.reason, found.kind);
    }
    let uln = match value(1) {
        "" => {
            fault(1, missing.clone(), ViolationKind::Missing);
            None
        }
        given => Uln::parse(given)
            .map_err(|error| fault(1, error.to_string(), ViolationKind::Format))
            .ok(),
    };
    let mut name = |index: usize| {
        let given = value(index);
        if given.trim().is_empty() {
            fault(index, missing.clone(), ViolationKind::Missing);
            return None;
        }
        if let Some(found) = check_formula(row, VRF_HEADINGS[index], given) {
            fault(index, found.reason, found.kind);
            return None;
        }
        Name::parse(given)
            .map_err(|error| fault(index, error.to_string(), ViolationKind::Format))
            .ok()
    };
    let given_name = name(2);
    let family_name = name(3);
    let date_of_birth = match value(4).trim() {
        "" => Some(None),
        given => parse_date(given)
            .map(Some)
            .map_err(|error| fault(4, error.to_string(), ViolationKind::Format))
            .ok(),
    };
    let gender = match value(5).trim() {
        "" => Some(None),
        given => Gender::parse(given)
            .map(Some)
            .map_err(|error| fault(5, error.to_string(), ViolationKind::Format))
            .ok(),
    };

    let record = match (uln, given_name, family_name, date_of_birth, gender) {
        (Some(uln), Some(given_name), Some(family_name), Some(date_of_birth), Some(gender))
            if faults.is_empty() =>
        {
            Some(VerificationRow {
                uln,
                given_name,
                family_name,
                date_of_birth,
                gender,
            })
        }
        _ => None,
    };
    VerificationCheck {
        mis_identifier,
        faults,
        record,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn today() -> NaiveDate {
        NaiveDate::from_ymd_opt(2026, 12, 3).expect("a date")
    }

    fn row_2a(given: &str, family: &str) -> Vec<String> {
        let mut values = vec![String::new(); 26];
        values[1] = "MIS1".into();
        values[3] = given.into();
        values[6] = family.into();
        values[14] = "CV4 9EE".into();
        values[16] = "2009-03-14".into();
        values[19] = "2".into();
        values[22] = "1".into();
        values[23] = "1".into();
        values
    }

    #[test]
    fn a_good_row_is_valid() {
        let check = check_learner(LrbVersion::V2A, 2, &row_2a("Amelia", "Hartley"), today());
        assert!(check.faults.is_empty(), "{:?}", check.faults);
        assert_eq!(check.mis_identifier, "MIS1");
        assert!(check.learner.is_some());
    }

    #[test]
    fn formula_names_are_format_faults() {
        for value in ["=HYPERLINK(\"x\")", "+1", "-Smith", "@SUM(A1)", "  =1"] {
            let check = check_learner(LrbVersion::V2A, 5, &row_2a(value, "Hartley"), today());
            assert_eq!(check.faults.len(), 1, "{value}: {:?}", check.faults);
            assert_eq!(check.faults[0].column, "GivenName");
            assert_eq!(check.faults[0].kind, ViolationKind::Format);
            assert!(check.learner.is_none());
        }
    }

    #[test]
    fn mis_identifier_is_capped() {
        let mut values = row_2a("Amelia", "Hartley");
        values[1] = "M".repeat(129);
        let check = check_learner(LrbVersion::V2A, 2, &values, today());
        assert_eq!(check.faults.len(), 1);
        assert_eq!(check.faults[0].column, "MISIdentifier");
        assert_eq!(check.faults[0].value.len(), 100);
    }

    #[test]
    fn faults_come_in_column_order_with_3a_names() {
        let mut values = vec![String::new(); 28];
        values[5] = "x".repeat(36); // MiddleNames
        values[22] = "2".into(); // PrivacyNoticeSeen
        let check = check_learner(LrbVersion::V3A, 2, &values, today());
        let columns: Vec<_> = check.faults.iter().map(|f| f.column.as_str()).collect();
        assert_eq!(
            columns,
            [
                "GivenName",
                "MiddleNames",
                "FamilyName",
                "LastKnownPostCode",
                "DateOfBirth",
                "Gender",
                "PrivacyNoticeSeen",
                "VerificationType"
            ]
        );
        assert!(!check.faults[1].reason.starts_with("MiddleOtherName"));
    }

    #[test]
    fn verification_rows() {
        let row = |values: [&str; 6]| values.map(str::to_owned).to_vec();
        let good = check_verification(2, &row(["A1", "1026893096", "Ann", "Lee", "", ""]));
        assert!(good.faults.is_empty(), "{:?}", good.faults);
        assert!(good.record.is_some());

        let bad = check_verification(3, &row(["A2", "", "", "=X", "2009-02-30", "3"]));
        let kinds: Vec<_> = bad
            .faults
            .iter()
            .map(|f| (f.column.as_str(), f.kind))
            .collect();
        assert_eq!(
            kinds,
            [
                ("ULN", ViolationKind::Missing),
                ("GivenName", ViolationKind::Missing),
                ("FamilyName", ViolationKind::Format),
                ("DateOfBirth", ViolationKind::Format),
                ("Gender", ViolationKind::Format),
            ]
        );
        assert!(bad.record.is_none());
    }
}
