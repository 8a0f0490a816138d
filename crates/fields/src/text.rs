//! Free-text fields with a length limit (address lines, school at 16, notes, ...), and the
//! limits themselves.
//!
//! Lengths count Unicode characters, as the XSD types do. Surrounding whitespace is trimmed
//! before the length is counted and the value stored; a value that is empty or only whitespace
//! is absent. Control characters are refused (except line breaks and tabs in notes): they are
//! never part of a name or an address and only cause trouble further on.

use thiserror::Error;

/// Longest name: given, middle, family, preferred given, previous family, family name at 16.
pub const NAME_MAX: usize = 35;
/// Longest title.
pub const TITLE_MAX: usize = 35;
/// Longest place of birth.
pub const PLACE_OF_BIRTH_MAX: usize = 35;
/// Longest address line (line 1, line 2, town, county or city).
pub const ADDRESS_LINE_MAX: usize = 50;
/// Longest school at age 16.
pub const SCHOOL_MAX: usize = 254;
/// Longest e-mail address.
pub const EMAIL_MAX: usize = 254;
/// Longest nationality code.
pub const NATIONALITY_MAX: usize = 3;
/// Longest description of "other" verification evidence (verification type 999).
pub const OTHER_VERIFICATION_DESCRIPTION_MAX: usize = 255;
/// Longest notes.
pub const NOTES_MAX: usize = 4000;
/// Longest MIS identifier, the uploader's own key for a batch record.
pub const MIS_IDENTIFIER_MAX: usize = 128;
/// The exact length of a Scottish Candidate Number.
pub const SCOTTISH_CANDIDATE_NUMBER_LENGTH: usize = 9;

/// Why a free-text value is refused.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum TextError {
    /// Longer than the field allows.
    #[error("{found} characters is too long; at most {max} are allowed")]
    TooLong {
        /// The field's limit.
        max: usize,
        /// How many characters were given (after trimming).
        found: usize,
    },
    /// A control character such as a line break or a NUL.
    #[error("character {position} is a control character, which is not allowed here")]
    ControlCharacter {
        /// The 1-based position in the trimmed value.
        position: usize,
    },
}

/// Why a Scottish Candidate Number is refused.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum ScottishCandidateNumberError {
    /// Not exactly nine ASCII digits.
    #[error("a Scottish Candidate Number is exactly 9 digits")]
    NotNineDigits,
}

/// A single-line text value of at most `max` characters: trimmed, `None` when blank.
pub fn single_line(value: &str, max: usize) -> Result<Option<String>, TextError> {
    bounded(value, max, |c| c.is_control())
}

/// A text value of at most `max` characters that may hold line breaks and tabs (notes):
/// trimmed, `None` when blank.
pub fn multi_line(value: &str, max: usize) -> Result<Option<String>, TextError> {
    bounded(value, max, |c| {
        c.is_control() && !matches!(c, '\n' | '\r' | '\t')
    })
}

fn bounded(
    value: &str,
    max: usize,
    refused: impl Fn(char) -> bool,
) -> Result<Option<String>, TextError> {
    let trimmed = value.trim();
    if trimmed.is_empty() {
        return Ok(None);
    }
    if let Some(index) = trimmed.chars().position(refused) {
        return Err(TextError::ControlCharacter {
            position: index + 1,
        });
    }
    let found = trimmed.chars().count();
    if found > max {
        return Err(TextError::TooLong { max, found });
    }
    Ok(Some(trimmed.to_owned()))
}

/// A Scottish Candidate Number: exactly nine ASCII digits, as given.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct ScottishCandidateNumber(String);

impl ScottishCandidateNumber {
    /// Parses exactly nine ASCII digits; nothing is trimmed.
    pub fn parse(value: &str) -> Result<ScottishCandidateNumber, ScottishCandidateNumberError> {
        let nine_digits = value.len() == SCOTTISH_CANDIDATE_NUMBER_LENGTH
            && value.bytes().all(|b| b.is_ascii_digit());
        if !nine_digits {
            return Err(ScottishCandidateNumberError::NotNineDigits);
        }
        Ok(ScottishCandidateNumber(value.to_owned()))
    }

    /// The nine digits.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn blank_is_absent() {
        assert_eq!(single_line("", 50), Ok(None));
        assert_eq!(single_line("   \t", 50), Ok(None));
        assert_eq!(multi_line("\n\n", 10), Ok(None));
    }

    #[test]
    fn trimmed_then_counted_in_characters() {
        assert_eq!(
            single_line("  12 Orchard Way ", 50),
            Ok(Some("12 Orchard Way".into()))
        );
        let fifty = "é".repeat(50);
        assert_eq!(
            single_line(&fifty, ADDRESS_LINE_MAX),
            Ok(Some(fifty.clone()))
        );
        assert_eq!(
            single_line(&format!("{fifty}x"), ADDRESS_LINE_MAX),
            Err(TextError::TooLong { max: 50, found: 51 })
        );
    }

    #[test]
    fn limits_of_each_field() {
        for max in [
            TITLE_MAX,
            ADDRESS_LINE_MAX,
            SCHOOL_MAX,
            NOTES_MAX,
            NATIONALITY_MAX,
        ] {
            assert!(single_line(&"a".repeat(max), max).is_ok_and(|v| v.is_some()));
            assert_eq!(
                single_line(&"a".repeat(max + 1), max),
                Err(TextError::TooLong {
                    max,
                    found: max + 1
                })
            );
        }
    }

    #[test]
    fn control_characters() {
        assert_eq!(
            single_line("a\nb", 35),
            Err(TextError::ControlCharacter { position: 2 })
        );
        assert_eq!(
            single_line("a\0b", 35),
            Err(TextError::ControlCharacter { position: 2 })
        );
        assert_eq!(
            multi_line("line one\r\nline\ttwo", 100),
            Ok(Some("line one\r\nline\ttwo".into()))
        );
        assert_eq!(
            multi_line("a\u{7}", 100),
            Err(TextError::ControlCharacter { position: 2 })
        );
    }

    #[test]
    fn scottish_candidate_number() {
        assert!(
            ScottishCandidateNumber::parse("123456789").is_ok_and(|n| n.as_str() == "123456789")
        );
        for bad in [
            "12345678",
            "1234567890",
            "12345678A",
            " 12345678",
            "１23456789",
        ] {
            assert_eq!(
                ScottishCandidateNumber::parse(bad),
                Err(ScottishCandidateNumberError::NotNineDigits)
            );
        }
    }
}
