//! What becomes of a record: its typed outcome and, where published, its LRS return code.

use lrs_fields::ViolationKind;
use serde::{Deserialize, Serialize};

/// The result of one record. The numbers are those of `lrs.batch.v1.RecordOutcome` and are
/// what the store keeps.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum Outcome {
    /// No match; a learner was registered.
    NewUln,
    /// Exact match, or the record's ULN given and verified.
    Found,
    /// The match is a linked ULN; the master's ULN is the result.
    LinkedMaster,
    /// The same five keys as an earlier row.
    DuplicateInFile,
    /// Candidates at or above the threshold: an exception.
    PossibleMatch,
    /// More than 10 candidates: an exception.
    TooManyMatches,
    /// No match in a find-only job.
    NotFound,
    /// `RC006`.
    InsufficientData,
    /// `RC011`.
    IncorrectFormat,
    /// `RC012`.
    IncorrectIdentifier,
    /// `RC013`.
    AgeOutOfRange,
    /// Verification files: verified.
    Verified,
    /// Verification files: not verified.
    NotVerified,
}

impl Outcome {
    /// Every outcome, in number order.
    pub const ALL: [Outcome; 13] = [
        Outcome::NewUln,
        Outcome::Found,
        Outcome::LinkedMaster,
        Outcome::DuplicateInFile,
        Outcome::PossibleMatch,
        Outcome::TooManyMatches,
        Outcome::NotFound,
        Outcome::InsufficientData,
        Outcome::IncorrectFormat,
        Outcome::IncorrectIdentifier,
        Outcome::AgeOutOfRange,
        Outcome::Verified,
        Outcome::NotVerified,
    ];

    /// The number of the outcome in `lrs.batch.v1.RecordOutcome`, also its stored code.
    pub fn code(self) -> i16 {
        match self {
            Outcome::NewUln => 1,
            Outcome::Found => 2,
            Outcome::LinkedMaster => 3,
            Outcome::DuplicateInFile => 4,
            Outcome::PossibleMatch => 5,
            Outcome::TooManyMatches => 6,
            Outcome::NotFound => 7,
            Outcome::InsufficientData => 8,
            Outcome::IncorrectFormat => 9,
            Outcome::IncorrectIdentifier => 10,
            Outcome::AgeOutOfRange => 11,
            Outcome::Verified => 12,
            Outcome::NotVerified => 13,
        }
    }

    /// The outcome stored as `code`.
    pub fn from_code(code: i16) -> Option<Outcome> {
        Outcome::ALL
            .into_iter()
            .find(|outcome| outcome.code() == code)
    }

    /// The name the output file's `Outcome` column carries (`NEW_ULN`).
    pub fn name(self) -> &'static str {
        match self {
            Outcome::NewUln => "NEW_ULN",
            Outcome::Found => "FOUND",
            Outcome::LinkedMaster => "LINKED_MASTER",
            Outcome::DuplicateInFile => "DUPLICATE_IN_FILE",
            Outcome::PossibleMatch => "POSSIBLE_MATCH",
            Outcome::TooManyMatches => "TOO_MANY_MATCHES",
            Outcome::NotFound => "NOT_FOUND",
            Outcome::InsufficientData => "INSUFFICIENT_DATA",
            Outcome::IncorrectFormat => "INCORRECT_FORMAT",
            Outcome::IncorrectIdentifier => "INCORRECT_IDENTIFIER",
            Outcome::AgeOutOfRange => "AGE_OUT_OF_RANGE",
            Outcome::Verified => "VERIFIED",
            Outcome::NotVerified => "NOT_VERIFIED",
        }
    }

    /// The LRS return code where its meaning is published; `None` otherwise.
    pub fn return_code(self) -> Option<&'static str> {
        self.fault_kind().map(ViolationKind::return_code)
    }

    /// The fault kind behind a rejected outcome.
    pub fn fault_kind(self) -> Option<ViolationKind> {
        match self {
            Outcome::InsufficientData => Some(ViolationKind::Missing),
            Outcome::IncorrectFormat => Some(ViolationKind::Format),
            Outcome::IncorrectIdentifier => Some(ViolationKind::Identifier),
            Outcome::AgeOutOfRange => Some(ViolationKind::AgeOutOfRange),
            Outcome::NewUln
            | Outcome::Found
            | Outcome::LinkedMaster
            | Outcome::DuplicateInFile
            | Outcome::PossibleMatch
            | Outcome::TooManyMatches
            | Outcome::NotFound
            | Outcome::Verified
            | Outcome::NotVerified => None,
        }
    }

    /// The rejected outcome a fault kind gives.
    pub fn for_fault(kind: ViolationKind) -> Outcome {
        match kind {
            ViolationKind::Missing => Outcome::InsufficientData,
            ViolationKind::Format => Outcome::IncorrectFormat,
            ViolationKind::Identifier => Outcome::IncorrectIdentifier,
            ViolationKind::AgeOutOfRange => Outcome::AgeOutOfRange,
        }
    }

    /// Whether the outcome needs a person's decision (an exception is raised).
    pub fn is_exception(self) -> bool {
        matches!(self, Outcome::PossibleMatch | Outcome::TooManyMatches)
    }

    /// Whether the outcome is a rejection for a fault in the record.
    pub fn is_rejected(self) -> bool {
        self.fault_kind().is_some()
    }
}

/// A fault in one field of one record.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct RecordFault {
    /// The row, 1 being the headings.
    pub row: u64,
    /// The column's heading.
    pub column: String,
    /// The value as given, cut to its first 100 characters.
    pub value: String,
    /// What is wrong.
    pub reason: String,
    /// The kind of fault, which decides the return code.
    #[serde(with = "kind_code")]
    pub kind: ViolationKind,
}

/// The longest value a fault repeats, in characters.
pub const FAULT_VALUE_MAX: usize = 100;

impl RecordFault {
    /// A fault in `column` of `row`, repeating at most the first 100 characters of `value`.
    pub fn new(
        row: u64,
        column: impl Into<String>,
        value: &str,
        reason: impl Into<String>,
        kind: ViolationKind,
    ) -> RecordFault {
        RecordFault {
            row,
            column: column.into(),
            value: value.chars().take(FAULT_VALUE_MAX).collect(),
            reason: reason.into(),
            kind,
        }
    }

    /// The outcome this fault gives on its own.
    pub fn outcome(&self) -> Outcome {
        Outcome::for_fault(self.kind)
    }
}

/// The outcome of a record with `faults`: the first in the order RC006, RC011, RC012, RC013.
pub fn decisive_outcome(faults: &[RecordFault]) -> Option<Outcome> {
    faults
        .iter()
        .map(|fault| fault.kind)
        .min()
        .map(Outcome::for_fault)
}

mod kind_code {
    use lrs_fields::ViolationKind;
    use serde::{Deserialize, Deserializer, Serializer};

    pub fn serialize<S: Serializer>(
        kind: &ViolationKind,
        serializer: S,
    ) -> Result<S::Ok, S::Error> {
        serializer.serialize_str(kind.return_code())
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(
        deserializer: D,
    ) -> Result<ViolationKind, D::Error> {
        let code = String::deserialize(deserializer)?;
        match code.as_str() {
            "RC006" => Ok(ViolationKind::Missing),
            "RC011" => Ok(ViolationKind::Format),
            "RC012" => Ok(ViolationKind::Identifier),
            "RC013" => Ok(ViolationKind::AgeOutOfRange),
            other => Err(serde::de::Error::custom(format!(
                "unknown return code {other}"
            ))),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn codes_round_trip() {
        for outcome in Outcome::ALL {
            assert_eq!(Outcome::from_code(outcome.code()), Some(outcome));
        }
        assert_eq!(Outcome::from_code(0), None);
    }

    #[test]
    fn precedence_is_rc006_rc011_rc012_rc013() {
        let fault = |kind| RecordFault::new(2, "X", "v", "r", kind);
        let faults = [
            fault(ViolationKind::AgeOutOfRange),
            fault(ViolationKind::Identifier),
            fault(ViolationKind::Format),
        ];
        assert_eq!(decisive_outcome(&faults), Some(Outcome::IncorrectFormat));
        assert_eq!(Outcome::IncorrectFormat.return_code(), Some("RC011"));
        assert_eq!(
            decisive_outcome(&faults[..2]),
            Some(Outcome::IncorrectIdentifier)
        );
        assert_eq!(decisive_outcome(&[]), None);
        assert_eq!(Outcome::NewUln.return_code(), None);
    }

    #[test]
    fn fault_values_are_cut() {
        let fault = RecordFault::new(
            2,
            "Notes",
            &"é".repeat(500),
            "too long",
            ViolationKind::Format,
        );
        assert_eq!(fault.value.chars().count(), FAULT_VALUE_MAX);
    }
}
