//! The Unique Candidate Identifier (UCI) of the JCQ awarding bodies: 13 characters.
//!
//! Layout: positions 1-5 the centre number where the candidate was first entered; 6 the
//! awarding-body digit (`0` at UK centres); 7-8 the year of allocation; 9-12 the candidate
//! number; 13 the check character.
//!
//! The check character: multiply characters 1 to 12 by the weights 16, 15, ..., 5, add, take
//! the remainder modulo 17 and look it up in `ABCDEFGHKLMRTVWXY` (0 is `A`, 16 is `Y`).
//!
//! Project decisions where the rules are not published: the learner register takes UCIs from
//! UK centres only, twelve digits and the check letter; a letter in position 6 (international
//! centres) is refused, because the two public implementations value that letter differently
//! and no example settles which is right. The check character is always verified. Input is
//! exact: no trimming or case change.

use std::fmt;
use std::str::FromStr;

use thiserror::Error;

/// The number of characters in a UCI.
pub const UCI_LENGTH: usize = 13;

/// The 17 check characters, in remainder order.
const CHECK_CHARACTERS: &[u8; 17] = b"ABCDEFGHKLMRTVWXY";

/// A UCI of a UK centre whose format and check character are valid.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Uci(String);

/// Why a string is not a valid UCI.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum UciError {
    /// Not 13 characters.
    #[error("the UCI has {found} characters; a UCI has exactly 13 (12 digits and a check letter)")]
    WrongLength {
        /// How many characters were given.
        found: usize,
    },
    /// A letter in position 6, which marks a centre outside the UK.
    #[error("UCI character 6 is {found:?}; only UK centres' UCIs (a digit there) are accepted")]
    InternationalCentre {
        /// The character given.
        found: char,
    },
    /// One of positions 1 to 12 is not an ASCII digit.
    #[error("UCI character {position} is {found:?}; characters 1 to 12 must be digits")]
    NotADigit {
        /// The 1-based position.
        position: usize,
        /// The character given.
        found: char,
    },
    /// Position 13 is not one of the 17 upper-case check characters.
    #[error("UCI character 13 is {found:?}; the check character is one of ABCDEFGHKLMRTVWXY")]
    CheckCharacterNotAllowed {
        /// The character given.
        found: char,
    },
    /// The check character does not match the twelve digits.
    #[error(
        "the UCI check character should be {expected} but is {found}; check it was copied right"
    )]
    CheckCharacter {
        /// The check character the digits call for.
        expected: char,
        /// The check character given.
        found: char,
    },
}

impl Uci {
    /// Parses a UCI exactly as given: twelve ASCII digits and the matching check letter.
    pub fn parse(input: &str) -> Result<Uci, UciError> {
        let chars: Vec<char> = input.chars().collect();
        if chars.len() != UCI_LENGTH {
            return Err(UciError::WrongLength { found: chars.len() });
        }
        if chars[5].is_ascii_alphabetic() {
            return Err(UciError::InternationalCentre { found: chars[5] });
        }

        let mut digits = [0u32; UCI_LENGTH - 1];
        for (index, (slot, c)) in digits.iter_mut().zip(&chars).enumerate() {
            *slot = c.to_digit(10).ok_or(UciError::NotADigit {
                position: index + 1,
                found: *c,
            })?;
        }
        let found = chars[12];
        if !u8::try_from(found).is_ok_and(|b| CHECK_CHARACTERS.contains(&b)) {
            return Err(UciError::CheckCharacterNotAllowed { found });
        }

        let expected = check_character(&digits);
        if expected != found {
            return Err(UciError::CheckCharacter { expected, found });
        }
        Ok(Uci(input.to_owned()))
    }

    /// The 13 characters of the UCI.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

fn check_character(digits: &[u32; UCI_LENGTH - 1]) -> char {
    let sum: u32 = digits
        .iter()
        .zip((5..=16u32).rev())
        .map(|(d, w)| d * w)
        .sum();
    char::from(CHECK_CHARACTERS[(sum % 17) as usize])
}

impl fmt::Display for Uci {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl FromStr for Uci {
    type Err = UciError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Uci::parse(s)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn valid_vectors() {
        for input in ["681990012058G", "689990980001D", "999990140001B"] {
            let uci = Uci::parse(input).unwrap_or_else(|e| panic!("{input}: {e}"));
            assert_eq!(uci.as_str(), input);
        }
    }

    #[test]
    fn wrong_check_characters() {
        let cases = [
            ("689990980001A", 'D', 'A'),
            // AQA's illustrative UCI: by the rule its check character is B.
            ("999990140001X", 'B', 'X'),
            // The 3A sample file's P3A004.
            ("681990012058H", 'G', 'H'),
        ];
        for (input, expected, found) in cases {
            assert_eq!(
                Uci::parse(input),
                Err(UciError::CheckCharacter { expected, found })
            );
        }
    }

    #[test]
    fn format_faults() {
        let cases: &[(&str, UciError)] = &[
            ("68199001205G", UciError::WrongLength { found: 12 }),
            ("681990012058", UciError::WrongLength { found: 12 }),
            ("681990012058G ", UciError::WrongLength { found: 14 }),
            (
                "68199B012058G",
                UciError::InternationalCentre { found: 'B' },
            ),
            (
                "6819900120X8G",
                UciError::NotADigit {
                    position: 11,
                    found: 'X',
                },
            ),
            (
                " 81990012058G",
                UciError::NotADigit {
                    position: 1,
                    found: ' ',
                },
            ),
            (
                "681990012058g",
                UciError::CheckCharacterNotAllowed { found: 'g' },
            ),
            (
                "681990012058N",
                UciError::CheckCharacterNotAllowed { found: 'N' },
            ),
            (
                "6819900120585",
                UciError::CheckCharacterNotAllowed { found: '5' },
            ),
        ];
        for (input, expected) in cases {
            assert_eq!(Uci::parse(input).as_ref(), Err(expected), "{input:?}");
        }
    }

    proptest! {
        #[test]
        fn changing_one_digit_is_caught(
            digits in proptest::array::uniform12(0..=9u32),
            position in 0..12usize,
            delta in 1..=9u32,
        ) {
            let body: String = digits.iter().filter_map(|d| char::from_digit(*d, 10)).collect();
            let original = format!("{body}{}", check_character(&digits));
            prop_assert!(Uci::parse(&original).is_ok(), "{}", original);

            let mut changed = digits;
            changed[position] = (changed[position] + delta) % 10;
            let body: String = changed.iter().filter_map(|d| char::from_digit(*d, 10)).collect();
            let changed = format!("{body}{}", check_character(&digits));
            prop_assert!(Uci::parse(&changed).is_err(), "{}", changed);
        }

        #[test]
        fn parse_never_panics(input in ".{0,20}") {
            let _ = Uci::parse(&input);
        }
    }
}
