//! The file formats the batch service reads: their names, headings and header values.
//!
//! LRB learner files (`LRB_<UKPRN>_<DDMMYYYYHHMM>.CSV`) come in two layouts. Row 1 holds the
//! headings, exactly as listed here, in this order, case-sensitive. Row 2, columns 1 to 4,
//! holds the file values (`FileVersion`, `FileName`, `UKPRN`, `LearnerRecordCount`); the
//! learner columns start at column 5, in row 2 and every row after it (whose columns 1 to 4
//! stay empty).
//!
//! - `2A`: the published order ([`LRB_2A_HEADINGS`]).
//! - `3A`: the order of 3A is not published. This service uses the 2A order with `MiddleNames`
//!   in the slot of `MiddleOtherName`, `PrivacyNoticeSeen` in the slot of `AbilityToShare`,
//!   and `UCI`, `UPN` appended last ([`LRB_3A_HEADINGS`]). On a heading mismatch the
//!   validator lists the order it expects.
//!
//! AO verification files (`VRF_<UKPRN>_<DDMMYYYYHHMM>.CSV`) are this project's own format:
//! row 1 holds [`VRF_HEADINGS`], and every later row is one learner to verify. There are no
//! header values.

use chrono::NaiveDateTime;

/// The number of file-value columns at the start of an LRB file (row 2, columns 1 to 4).
pub const LRB_HEADER_COLUMNS: usize = 4;

/// The headings of an LRB `2A` file, in order.
pub const LRB_2A_HEADINGS: [&str; 30] = [
    "FileVersion",
    "FileName",
    "UKPRN",
    "LearnerRecordCount",
    "ULN",
    "MISIdentifier",
    "Title",
    "GivenName",
    "PreferredGivenName",
    "MiddleOtherName",
    "FamilyName",
    "PreviousFamilyName",
    "FamilyNameAt16",
    "SchoolAtAge16",
    "LastKnownAddressLine1",
    "LastKnownAddressLine2",
    "LastKnownAddressTown",
    "LastKnownAddressCountyorCity",
    "LastKnownPostCode",
    "DateOfAddressCapture",
    "DateOfBirth",
    "PlaceOfBirth",
    "EmailAddress",
    "Gender",
    "Nationality",
    "ScottishCandidateNumber",
    "AbilityToShare",
    "VerificationType",
    "OtherVerificationDescription",
    "Notes",
];

/// The headings of an LRB `3A` file, in order (see the module documentation for why).
pub const LRB_3A_HEADINGS: [&str; 32] = [
    "FileVersion",
    "FileName",
    "UKPRN",
    "LearnerRecordCount",
    "ULN",
    "MISIdentifier",
    "Title",
    "GivenName",
    "PreferredGivenName",
    "MiddleNames",
    "FamilyName",
    "PreviousFamilyName",
    "FamilyNameAt16",
    "SchoolAtAge16",
    "LastKnownAddressLine1",
    "LastKnownAddressLine2",
    "LastKnownAddressTown",
    "LastKnownAddressCountyorCity",
    "LastKnownPostCode",
    "DateOfAddressCapture",
    "DateOfBirth",
    "PlaceOfBirth",
    "EmailAddress",
    "Gender",
    "Nationality",
    "ScottishCandidateNumber",
    "PrivacyNoticeSeen",
    "VerificationType",
    "OtherVerificationDescription",
    "Notes",
    "UCI",
    "UPN",
];

/// The headings of an AO verification file, in order. `DateOfBirth` and `Gender` may be
/// left empty in a row; the other values are required.
pub const VRF_HEADINGS: [&str; 6] = [
    "MISIdentifier",
    "ULN",
    "GivenName",
    "FamilyName",
    "DateOfBirth",
    "Gender",
];

/// The version of an LRB file's layout.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum LrbVersion {
    /// `2A`: the published layout.
    V2A,
    /// `3A`: with `MiddleNames`, `PrivacyNoticeSeen`, `UCI` and `UPN`.
    V3A,
}

impl LrbVersion {
    /// The `FileVersion` value (`2A`, `3A`).
    pub fn as_str(self) -> &'static str {
        match self {
            LrbVersion::V2A => "2A",
            LrbVersion::V3A => "3A",
        }
    }

    /// Reads a `FileVersion` value exactly as given.
    pub fn parse(value: &str) -> Option<LrbVersion> {
        match value {
            "2A" => Some(LrbVersion::V2A),
            "3A" => Some(LrbVersion::V3A),
            _ => None,
        }
    }

    /// The headings of this layout, in order.
    pub fn headings(self) -> &'static [&'static str] {
        match self {
            LrbVersion::V2A => &LRB_2A_HEADINGS,
            LrbVersion::V3A => &LRB_3A_HEADINGS,
        }
    }
}

/// What a file is, which decides its layout and rules.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum FileKind {
    /// An LRB learner file (`LRB_...`).
    Learner,
    /// An AO verification file (`VRF_...`).
    Verification,
}

impl FileKind {
    /// The file name prefix (`LRB`, `VRF`).
    pub fn prefix(self) -> &'static str {
        match self {
            FileKind::Learner => "LRB",
            FileKind::Verification => "VRF",
        }
    }

    /// The kind a file name's prefix names, if any.
    pub fn from_file_name(name: &str) -> Option<FileKind> {
        if name.starts_with("LRB_") {
            Some(FileKind::Learner)
        } else if name.starts_with("VRF_") {
            Some(FileKind::Verification)
        } else {
            None
        }
    }
}

/// A file-name fault, in words a person can act on.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum FileNameFault {
    /// The name does not follow `<PREFIX>_<UKPRN>_<DDMMYYYYHHMM>.CSV`.
    Pattern(String),
    /// The extension is not the upper-case `.CSV`.
    Extension(String),
    /// The UKPRN in the name is not the uploader's.
    Ukprn(String),
}

/// What a well-formed file name says.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FileNameParts {
    /// The UKPRN in the name.
    pub ukprn: String,
    /// The date and time in the name.
    pub stamp: NaiveDateTime,
}

/// Checks a file name against `<PREFIX>_<UKPRN>_<DDMMYYYYHHMM>.CSV` for `kind`: an 8-digit
/// UKPRN (equal to `uploader_ukprn` when one is given), a real date and time, and the
/// upper-case `.CSV` extension. Every fault found is returned.
pub fn check_file_name(
    name: &str,
    kind: FileKind,
    uploader_ukprn: Option<&str>,
) -> Result<FileNameParts, Vec<FileNameFault>> {
    let prefix = kind.prefix();
    let pattern = format!("{prefix}_<UKPRN>_<DDMMYYYYHHMM>.CSV");
    let mut faults = Vec::new();

    let (stem, extension) = match name.rsplit_once('.') {
        Some((stem, extension)) => (stem, extension),
        None => (name, ""),
    };
    if extension != "CSV" {
        let message = if extension.eq_ignore_ascii_case("csv") {
            format!("the extension must be upper-case `.CSV`, not `.{extension}`")
        } else if extension.is_empty() {
            "the file name has no extension; it must end in `.CSV`".to_owned()
        } else {
            format!("only CSV files are accepted: the name must end in `.CSV`, not `.{extension}`")
        };
        faults.push(FileNameFault::Extension(message));
    }

    let parts: Vec<&str> = stem.split('_').collect();
    let parsed = match parts.as_slice() {
        [found_prefix, ukprn, stamp] if *found_prefix == prefix => {
            let ukprn_ok = ukprn.len() == 8 && ukprn.bytes().all(|b| b.is_ascii_digit());
            let stamp_ok = stamp.len() == 12 && stamp.bytes().all(|b| b.is_ascii_digit());
            let parsed_stamp = NaiveDateTime::parse_from_str(stamp, "%d%m%Y%H%M").ok();
            if !ukprn_ok {
                faults.push(FileNameFault::Pattern(format!(
                    "the UKPRN in the file name must be 8 digits, as in {pattern}"
                )));
            }
            match parsed_stamp.filter(|_| stamp_ok) {
                Some(stamp) if ukprn_ok => Some(FileNameParts {
                    ukprn: (*ukprn).to_owned(),
                    stamp,
                }),
                Some(_) => None,
                None => {
                    faults.push(FileNameFault::Pattern(format!(
                        "`{stamp}` in the file name is not a real date and time written \
                         DDMMYYYYHHMM (day, month, year, 24-hour hour, minute), as in {pattern}"
                    )));
                    None
                }
            }
        }
        _ => {
            faults.push(FileNameFault::Pattern(format!(
                "the file name must follow the pattern {pattern}"
            )));
            None
        }
    };

    if let (Some(parts), Some(uploader)) = (&parsed, uploader_ukprn)
        && parts.ukprn != uploader
    {
        faults.push(FileNameFault::Ukprn(format!(
            "the UKPRN in the file name ({}) is not your organisation's ({uploader})",
            parts.ukprn
        )));
    }

    match parsed {
        Some(parts) if faults.is_empty() => Ok(parts),
        _ => Err(faults),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn good_names_pass() {
        let parts = check_file_name("LRB_10000001_031220261200.CSV", FileKind::Learner, None)
            .expect("a good name");
        assert_eq!(parts.ukprn, "10000001");
        assert_eq!(parts.stamp.to_string(), "2026-12-03 12:00:00");
        assert!(
            check_file_name(
                "VRF_10000002_010120250000.CSV",
                FileKind::Verification,
                Some("10000002")
            )
            .is_ok()
        );
    }

    #[test]
    fn every_fault_is_listed() {
        let faults = check_file_name("LRB_1000001_320120261200.csv", FileKind::Learner, None)
            .expect_err("bad name");
        assert_eq!(faults.len(), 3, "{faults:?}");
        assert!(matches!(faults[0], FileNameFault::Extension(_)));
    }

    #[test]
    fn bad_names_are_refused() {
        for name in [
            "LRB_10000001_031220261200.XML",
            "LRB_10000001_031220262500.CSV",
            "LRB_10000001_29022025.CSV",
            "VRF_10000001_031220261200.CSV",
            "LRB_10000001_031220261200",
            "lrb_10000001_031220261200.CSV",
            "LRB_10000001_031220261200_2.CSV",
            "../LRB_10000001_031220261200.CSV",
            "",
        ] {
            assert!(
                check_file_name(name, FileKind::Learner, None).is_err(),
                "{name} should be refused"
            );
        }
    }

    #[test]
    fn another_organisations_ukprn_is_refused() {
        let faults = check_file_name(
            "LRB_10000001_031220261200.CSV",
            FileKind::Learner,
            Some("10000002"),
        )
        .expect_err("not the uploader's");
        assert!(matches!(faults.as_slice(), [FileNameFault::Ukprn(_)]));
    }

    #[test]
    fn the_3a_layout_is_the_2a_order_with_renamed_slots_and_two_more() {
        for (index, heading) in LRB_2A_HEADINGS.iter().enumerate() {
            let expected = match *heading {
                "MiddleOtherName" => "MiddleNames",
                "AbilityToShare" => "PrivacyNoticeSeen",
                other => other,
            };
            assert_eq!(LRB_3A_HEADINGS[index], expected);
        }
        assert_eq!(&LRB_3A_HEADINGS[30..], ["UCI", "UPN"]);
    }
}
