//! The Unique Pupil Number (UPN) of English schools: 13 characters, a check letter first.
//!
//! Layout: position 1 the check letter; 2-4 the local authority number; 5-8 the school's
//! establishment number; 9-10 the year of allocation; 11-13 a three-digit serial (a permanent
//! UPN) or a two-digit serial and a letter (a temporary UPN). Letters come from a 23-letter
//! alphabet without I, O and S.
//!
//! The check letter: give positions 2-13 their values (a digit its own value, a letter its
//! index in the alphabet, `A` = 0 ... `Z` = 22), multiply each by its position (2 to 13), add,
//! take the remainder modulo 23 and look it up in the same alphabet.
//!
//! Project decisions where the LRS rule is not published: a UPN is checked by format and check
//! letter only, not against a list of local authority codes (the lists differ between
//! sources and drift over time); input is exact, so lower-case letters and spaces are errors
//! rather than being corrected silently.

use std::fmt;
use std::str::FromStr;

use thiserror::Error;

/// The number of characters in a UPN.
pub const UPN_LENGTH: usize = 13;

/// The 23 letters a UPN may use, in the order that gives each its value.
const ALPHABET: &[u8; 23] = b"ABCDEFGHJKLMNPQRTUVWXYZ";

/// A UPN whose format and check letter are valid.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Upn(String);

/// Whether a UPN is permanent or temporary.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum UpnKind {
    /// Ends in a three-digit serial.
    Permanent,
    /// Ends in a two-digit serial and a letter; replaced once the pupil's permanent UPN is
    /// known.
    Temporary,
}

/// Why a string is not a valid UPN.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum UpnError {
    /// Not 13 characters.
    #[error("the UPN has {found} characters; a UPN has exactly 13")]
    WrongLength {
        /// How many characters were given.
        found: usize,
    },
    /// Position 1 is not one of the 23 upper-case check letters.
    #[error("UPN character 1 is {found:?}; it must be an upper-case letter other than I, O or S")]
    CheckLetterNotAllowed {
        /// The character given.
        found: char,
    },
    /// A position from 2 to 12 is not an ASCII digit.
    #[error("UPN character {position} is {found:?}; characters 2 to 12 must be digits")]
    NotADigit {
        /// The 1-based position.
        position: usize,
        /// The character given.
        found: char,
    },
    /// Position 13 is neither a digit nor one of the 23 upper-case letters.
    #[error("UPN character 13 is {found:?}; it must be a digit, or A-Z but I, O, S (temporary)")]
    LastCharacterNotAllowed {
        /// The character given.
        found: char,
    },
    /// The check letter does not match the other twelve characters.
    #[error("the UPN check letter should be {expected} but is {found}; check it was copied right")]
    CheckLetter {
        /// The check letter the other characters call for.
        expected: char,
        /// The check letter given.
        found: char,
    },
}

impl Upn {
    /// Parses a UPN exactly as given (no trimming or case change), checking its layout and its
    /// check letter.
    pub fn parse(input: &str) -> Result<Upn, UpnError> {
        let chars: Vec<char> = input.chars().collect();
        if chars.len() != UPN_LENGTH {
            return Err(UpnError::WrongLength { found: chars.len() });
        }

        let found = chars[0];
        if letter_value(found).is_none() {
            return Err(UpnError::CheckLetterNotAllowed { found });
        }
        if let Some((index, c)) = chars[1..12]
            .iter()
            .enumerate()
            .find(|(_, c)| !c.is_ascii_digit())
        {
            return Err(UpnError::NotADigit {
                position: index + 2,
                found: *c,
            });
        }
        let last = chars[12];
        if !last.is_ascii_digit() && letter_value(last).is_none() {
            return Err(UpnError::LastCharacterNotAllowed { found: last });
        }

        let expected = check_letter(&chars[1..]);
        if expected != found {
            return Err(UpnError::CheckLetter { expected, found });
        }
        Ok(Upn(input.to_owned()))
    }

    /// Whether this UPN is permanent or temporary.
    pub fn kind(&self) -> UpnKind {
        if self.0.ends_with(|c: char| c.is_ascii_digit()) {
            UpnKind::Permanent
        } else {
            UpnKind::Temporary
        }
    }

    /// The 13 characters of the UPN.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

fn letter_value(c: char) -> Option<u32> {
    let byte = u8::try_from(c).ok()?;
    ALPHABET.iter().position(|l| *l == byte).map(|i| i as u32)
}

/// The check letter for positions 2-13, which the caller has already checked are digits or
/// alphabet letters.
fn check_letter(rest: &[char]) -> char {
    let sum: u32 = rest
        .iter()
        .zip(2u32..)
        .map(|(c, weight)| c.to_digit(10).or_else(|| letter_value(*c)).unwrap_or(0) * weight)
        .sum();
    char::from(ALPHABET[(sum % 23) as usize])
}

impl fmt::Display for Upn {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl FromStr for Upn {
    type Err = UpnError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Upn::parse(s)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn published_and_derived_valid_vectors() {
        let cases = [
            ("B801200005001", UpnKind::Permanent),
            ("H801200001001", UpnKind::Permanent),
            ("G80120000101A", UpnKind::Temporary),
            ("A950000178301", UpnKind::Permanent),
            ("H243278544154", UpnKind::Permanent),
            ("X845212818005", UpnKind::Permanent),
            ("A123456789012", UpnKind::Permanent),
            ("X00180001701A", UpnKind::Temporary),
            ("P207000016049", UpnKind::Permanent),
            ("W80120000101B", UpnKind::Temporary),
            ("T80120000101Z", UpnKind::Temporary),
            ("Z00180001701K", UpnKind::Temporary),
        ];
        for (input, kind) in cases {
            let upn = Upn::parse(input).unwrap_or_else(|e| panic!("{input}: {e}"));
            assert_eq!(upn.kind(), kind, "{input}");
            assert_eq!(upn.as_str(), input);
        }
    }

    #[test]
    fn local_authority_codes_are_not_checked() {
        // Valid check letters with LA numbers 000 and 900, which no LA list holds.
        assert!(Upn::parse("E000200005001").is_ok());
        assert!(Upn::parse("R900400001001").is_ok());
    }

    #[test]
    fn wrong_check_letters() {
        let cases = [
            ("A801200005001", 'B'),
            ("Z801200001001", 'H'),
            ("R247962919251", 'Q'),
            ("X428558133462", 'W'),
            ("B123456789012", 'A'),
            ("B207000016049", 'P'),
            ("Q207000016049", 'P'),
            // Passes only where a temporary letter is counted as 0.
            ("G80120000101B", 'W'),
        ];
        for (input, expected) in cases {
            let found = input.chars().next().unwrap_or_default();
            assert_eq!(
                Upn::parse(input),
                Err(UpnError::CheckLetter { expected, found }),
                "{input}"
            );
        }
    }

    #[test]
    fn format_faults() {
        let cases: &[(&str, UpnError)] = &[
            (
                "X80120000A001",
                UpnError::NotADigit {
                    position: 10,
                    found: 'A',
                },
            ),
            (
                "H81311 000121",
                UpnError::NotADigit {
                    position: 7,
                    found: ' ',
                },
            ),
            (
                "H813111E00121",
                UpnError::NotADigit {
                    position: 8,
                    found: 'E',
                },
            ),
            (
                "G80120000101S",
                UpnError::LastCharacterNotAllowed { found: 'S' },
            ),
            (
                "G80120000101I",
                UpnError::LastCharacterNotAllowed { found: 'I' },
            ),
            (
                "G80120000101O",
                UpnError::LastCharacterNotAllowed { found: 'O' },
            ),
            (
                "G80120000101a",
                UpnError::LastCharacterNotAllowed { found: 'a' },
            ),
            (
                "b801200005001",
                UpnError::CheckLetterNotAllowed { found: 'b' },
            ),
            (
                "I801200005001",
                UpnError::CheckLetterNotAllowed { found: 'I' },
            ),
            (
                "1801200005001",
                UpnError::CheckLetterNotAllowed { found: '1' },
            ),
            ("B80120000500", UpnError::WrongLength { found: 12 }),
            ("B801200005001 ", UpnError::WrongLength { found: 14 }),
            ("", UpnError::WrongLength { found: 0 }),
        ];
        for (input, expected) in cases {
            assert_eq!(Upn::parse(input).as_ref(), Err(expected), "{input:?}");
        }
    }

    fn value(c: char) -> Option<u32> {
        c.to_digit(10).or_else(|| letter_value(c))
    }

    #[test]
    fn a_temporary_letter_weighs_the_same_as_the_digit_of_its_value() {
        assert!(Upn::parse("G80120000101A").is_ok());
        assert!(Upn::parse("G801200001010").is_ok());
    }

    fn tail() -> impl Strategy<Value = String> {
        ("[0-9]{11}", "[0-9ABCDEFGHJKLMNPQRTUVWXYZ]").prop_map(|(digits, last)| digits + &last)
    }

    proptest! {
        #[test]
        fn a_computed_check_letter_is_accepted(rest in tail()) {
            let chars: Vec<char> = rest.chars().collect();
            let upn = format!("{}{rest}", check_letter(&chars));
            prop_assert!(Upn::parse(&upn).is_ok(), "{}", upn);
        }

        #[test]
        fn changing_one_character_of_positions_2_to_13_is_caught(
            rest in tail(),
            position in 0..12usize,
            replacement in "[0-9]",
        ) {
            let mut chars: Vec<char> = rest.chars().collect();
            let original = format!("{}{rest}", check_letter(&chars));
            let new = replacement.chars().next().unwrap_or('0');
            // A temporary letter and a digit of the same value (A and 0, B and 1, ...) weigh
            // the same, so only a change of value is expected to be caught.
            prop_assume!(value(chars[position]) != value(new));
            chars[position] = new;
            let changed: String = original.chars().take(1).chain(chars).collect();
            prop_assert!(Upn::parse(&changed).is_err(), "{} -> {}", original, changed);
        }

        #[test]
        fn parse_never_panics(input in ".{0,20}") {
            let _ = Upn::parse(&input);
        }
    }
}
