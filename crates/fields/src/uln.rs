//! The Unique Learner Number (ULN): ten digits, the first 1 to 9, the last a weighted check
//! digit.
//!
//! The check: multiply the ten digits by the weights 10, 9, ..., 1 and add the products; the
//! ULN is valid when the sum leaves remainder 10 on division by 11. Seen from the issuer's
//! side, the first nine digits (the stem) give `r = (10·d1 + 9·d2 + ... + 2·d9) mod 11`; a
//! stem with `r = 0` can carry no check digit and is never issued, any other stem takes the
//! check digit `10 − r` (so `r = 10` gives check digit 0, which is valid).
//!
//! Because 11 is prime and every weight lies between 1 and 10, changing any one digit, or
//! swapping two different neighbouring digits, always breaks the check.
//!
//! `9999999999` is the placeholder the ILR uses for "ULN not known". It fails the check
//! anyway, but it is refused with its own error so that the message says what it is, and the
//! allocator can never produce it.

use std::fmt;
use std::str::FromStr;

use rand::Rng;
use thiserror::Error;

/// The number of digits in a ULN.
pub const ULN_LENGTH: usize = 10;

/// The ILR's "ULN not known" placeholder, never a learner's ULN.
pub const PLACEHOLDER_ULN: u64 = 9_999_999_999;

const SMALLEST_STEM: u32 = 100_000_000;
const LARGEST_STEM: u32 = 999_999_999;

/// A valid Unique Learner Number.
///
/// Only [`Uln::parse`], [`Uln::from_stem`] and [`Uln::allocate`] make one, so holding a `Uln`
/// means the ten digits passed every rule. It displays as its ten digits.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Uln(u64);

/// Why a string is not a valid ULN.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum UlnError {
    /// Nothing was given.
    #[error("the ULN is empty; a ULN is 10 digits")]
    Empty,
    /// A character that is not an ASCII digit `0`-`9`, at a 1-based position.
    #[error("ULN character {position} is {found:?}; a ULN is 10 digits 0-9, no spaces or signs")]
    NotADigit {
        /// The 1-based position of the first offending character.
        position: usize,
        /// The offending character.
        found: char,
    },
    /// All digits, but not ten of them.
    #[error("the ULN has {found} digits; a ULN has exactly 10")]
    WrongLength {
        /// How many digits were given.
        found: usize,
    },
    /// The first digit is 0.
    #[error("the ULN starts with 0; a ULN starts with a digit from 1 to 9")]
    LeadingZero,
    /// The ILR placeholder `9999999999`.
    #[error("9999999999 is the placeholder for an unknown ULN, not a learner's ULN")]
    Placeholder,
    /// The first nine digits leave remainder 0, so no check digit can make them valid.
    #[error(
        "no ULN starts with these nine digits (no check digit fits); check it was copied right"
    )]
    NoCheckDigit,
    /// The tenth digit is not the check digit of the first nine.
    #[error("the ULN check digit should be {expected} but is {found}; check it was copied right")]
    CheckDigit {
        /// The check digit the first nine digits call for.
        expected: u8,
        /// The tenth digit given.
        found: u8,
    },
}

impl Uln {
    /// Parses a ULN exactly as given: ten ASCII digits, the first 1 to 9, the last the check
    /// digit. Nothing is trimmed or converted; spaces, signs, line ends and non-ASCII digits
    /// are errors.
    ///
    /// ```
    /// use lrs_fields::uln::{Uln, UlnError};
    ///
    /// assert_eq!(Uln::parse("9276308686").map(|u| u.to_string()), Ok("9276308686".into()));
    /// assert_eq!(Uln::parse("1748529631"), Err(UlnError::CheckDigit { expected: 2, found: 1 }));
    /// ```
    pub fn parse(input: &str) -> Result<Uln, UlnError> {
        if input.is_empty() {
            return Err(UlnError::Empty);
        }
        if let Some((index, found)) = input.chars().enumerate().find(|(_, c)| !c.is_ascii_digit()) {
            return Err(UlnError::NotADigit {
                position: index + 1,
                found,
            });
        }

        let digits: Vec<u8> = input.bytes().map(|b| b - b'0').collect();
        if digits.len() != ULN_LENGTH {
            return Err(UlnError::WrongLength {
                found: digits.len(),
            });
        }
        if digits[0] == 0 {
            return Err(UlnError::LeadingZero);
        }

        let value = digits.iter().fold(0u64, |acc, d| acc * 10 + u64::from(*d));
        if value == PLACEHOLDER_ULN {
            return Err(UlnError::Placeholder);
        }

        let expected = check_digit(&digits[..ULN_LENGTH - 1]).ok_or(UlnError::NoCheckDigit)?;
        let found = digits[ULN_LENGTH - 1];
        if expected != found {
            return Err(UlnError::CheckDigit { expected, found });
        }
        Ok(Uln(value))
    }

    /// Builds the ULN for a nine-digit stem (`100000000` to `999999999`) by appending its
    /// check digit; `None` when the stem is out of range or can carry no check digit.
    pub fn from_stem(stem: u32) -> Option<Uln> {
        if !(SMALLEST_STEM..=LARGEST_STEM).contains(&stem) {
            return None;
        }
        let digits = stem_digits(stem);
        let check = check_digit(&digits)?;
        let value = u64::from(stem) * 10 + u64::from(check);
        (value != PLACEHOLDER_ULN).then_some(Uln(value))
    }

    /// Picks a new ULN at random: a random nine-digit stem whose remainder is not 0, with its
    /// check digit appended. Never returns the placeholder `9999999999`.
    ///
    /// Uniqueness is not checked here; the register's unique index decides, and the caller
    /// draws again on a clash.
    pub fn allocate<R: Rng + ?Sized>(rng: &mut R) -> Uln {
        loop {
            let stem = rng.random_range(SMALLEST_STEM..=LARGEST_STEM);
            if let Some(uln) = Uln::from_stem(stem) {
                return uln;
            }
        }
    }

    /// The ULN as a number (always ten digits, so no leading zeros are lost).
    pub fn as_u64(self) -> u64 {
        self.0
    }
}

/// The check digit for the first nine digits of a ULN, or `None` when their weighted sum
/// leaves remainder 0 (such stems are never issued).
fn check_digit(stem: &[u8]) -> Option<u8> {
    let sum: u32 = stem
        .iter()
        .zip((2..=10u32).rev())
        .map(|(d, w)| u32::from(*d) * w)
        .sum();
    let remainder = sum % 11;
    // remainder is 0..=10, so 10 - remainder fits in a u8 digit.
    (remainder != 0).then(|| (10 - remainder) as u8)
}

fn stem_digits(stem: u32) -> [u8; ULN_LENGTH - 1] {
    let mut digits = [0u8; ULN_LENGTH - 1];
    let mut rest = stem;
    for slot in digits.iter_mut().rev() {
        *slot = (rest % 10) as u8;
        rest /= 10;
    }
    digits
}

impl fmt::Display for Uln {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{:010}", self.0)
    }
}

impl FromStr for Uln {
    type Err = UlnError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Uln::parse(s)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;
    use rand::SeedableRng;
    use rand::rngs::StdRng;

    const VALID: &[&str] = &[
        "9276308686",
        "1748529632",
        "1000000043",
        "1026893096",
        "6936002314",
        "4444599390",
        "7667649978",
        "1964986809",
        "8383558804",
        "1174112637",
        "1026922983",
        "1000102504",
    ];

    #[test]
    fn domain_valid_vectors_parse() {
        for s in VALID {
            let uln = Uln::parse(s).unwrap_or_else(|e| panic!("{s}: {e}"));
            assert_eq!(uln.to_string(), *s);
        }
    }

    #[test]
    fn check_digit_zero_is_valid() {
        assert!(Uln::parse("4444599390").is_ok());
    }

    #[test]
    fn domain_invalid_vectors_fail_for_the_stated_reason() {
        let cases: &[(&str, UlnError)] = &[
            (
                "1748529631",
                UlnError::CheckDigit {
                    expected: 2,
                    found: 1,
                },
            ),
            (
                "1748529633",
                UlnError::CheckDigit {
                    expected: 2,
                    found: 3,
                },
            ),
            ("9999999999", UlnError::Placeholder),
            (
                "1000000042",
                UlnError::CheckDigit {
                    expected: 3,
                    found: 2,
                },
            ),
            ("1000000063", UlnError::NoCheckDigit),
            (
                "1000102508",
                UlnError::CheckDigit {
                    expected: 4,
                    found: 8,
                },
            ),
            (
                "1234567890",
                UlnError::CheckDigit {
                    expected: 9,
                    found: 0,
                },
            ),
            ("0000000042", UlnError::LeadingZero),
            ("0000000043", UlnError::LeadingZero),
            ("123456789", UlnError::WrongLength { found: 9 }),
            ("12345678901", UlnError::WrongLength { found: 11 }),
            (
                "ABC4567890",
                UlnError::NotADigit {
                    position: 1,
                    found: 'A',
                },
            ),
        ];
        for (input, expected) in cases {
            assert_eq!(Uln::parse(input).as_ref(), Err(expected), "{input}");
        }
    }

    #[test]
    fn repeated_digits_are_all_invalid() {
        for d in 1..=9u8 {
            let s: String = std::iter::repeat_n(char::from(b'0' + d), 10).collect();
            assert!(Uln::parse(&s).is_err(), "{s}");
        }
    }

    #[test]
    fn input_is_exact() {
        let cases: &[(&str, UlnError)] = &[
            ("", UlnError::Empty),
            (
                " 1748529632",
                UlnError::NotADigit {
                    position: 1,
                    found: ' ',
                },
            ),
            (
                "1748529632 ",
                UlnError::NotADigit {
                    position: 11,
                    found: ' ',
                },
            ),
            (
                "1748529632\n",
                UlnError::NotADigit {
                    position: 11,
                    found: '\n',
                },
            ),
            (
                "+1748529632",
                UlnError::NotADigit {
                    position: 1,
                    found: '+',
                },
            ),
            (
                "17485 29632",
                UlnError::NotADigit {
                    position: 6,
                    found: ' ',
                },
            ),
            // Arabic-Indic digit one in place of the first digit.
            (
                "\u{661}748529632",
                UlnError::NotADigit {
                    position: 1,
                    found: '\u{661}',
                },
            ),
            // Fullwidth digit one.
            (
                "\u{ff11}748529632",
                UlnError::NotADigit {
                    position: 1,
                    found: '\u{ff11}',
                },
            ),
        ];
        for (input, expected) in cases {
            assert_eq!(Uln::parse(input).as_ref(), Err(expected), "{input:?}");
        }
    }

    #[test]
    fn messages_say_what_to_fix() {
        let message = UlnError::CheckDigit {
            expected: 2,
            found: 1,
        }
        .to_string();
        assert!(message.contains("should be 2 but is 1"), "{message}");
        let message = UlnError::NotADigit {
            position: 11,
            found: '\n',
        }
        .to_string();
        assert!(message.contains("character 11 is '\\n'"), "{message}");
    }

    #[test]
    fn from_str_and_display_round_trip() {
        let uln: Uln = "1026893096".parse().expect("a valid ULN");
        assert_eq!(uln.to_string(), "1026893096");
        assert_eq!(uln.as_u64(), 1_026_893_096);
    }

    #[test]
    fn from_stem_appends_the_check_digit() {
        assert_eq!(
            Uln::from_stem(100_000_004).map(|u| u.as_u64()),
            Some(1_000_000_043)
        );
        assert_eq!(Uln::from_stem(100_000_006), None);
        assert_eq!(Uln::from_stem(99_999_999), None);
        assert_eq!(Uln::from_stem(1_000_000_000), None);
        assert_eq!(
            Uln::from_stem(999_999_999).map(|u| u.to_string()),
            Some("9999999998".into())
        );
    }

    #[test]
    fn allocation_is_reproducible_from_a_seed() {
        let a = Uln::allocate(&mut StdRng::seed_from_u64(7));
        let b = Uln::allocate(&mut StdRng::seed_from_u64(7));
        assert_eq!(a, b);
    }

    /// A brute-force pass over a slice of stems: the allocator's rule and the validator's rule
    /// agree on every stem and every possible tenth digit.
    #[test]
    fn validator_and_generator_agree_over_a_range_of_stems() {
        for stem in
            (SMALLEST_STEM..SMALLEST_STEM + 2_000).chain(LARGEST_STEM - 2_000..=LARGEST_STEM)
        {
            let issued = Uln::from_stem(stem);
            for last in 0..=9u64 {
                let candidate = format!("{}", u64::from(stem) * 10 + last);
                let parsed = Uln::parse(&candidate).ok();
                let expected = issued.filter(|u| u.as_u64() % 10 == last);
                assert_eq!(parsed, expected, "{candidate}");
            }
        }
    }

    proptest! {
        #[test]
        fn every_allocated_uln_parses(seed in any::<u64>()) {
            let uln = Uln::allocate(&mut StdRng::seed_from_u64(seed));
            let text = uln.to_string();
            prop_assert_eq!(text.len(), ULN_LENGTH);
            prop_assert_ne!(uln.as_u64(), PLACEHOLDER_ULN);
            prop_assert_eq!(Uln::parse(&text), Ok(uln));
        }

        #[test]
        fn changing_any_one_digit_breaks_a_valid_uln(
            seed in any::<u64>(),
            position in 0..ULN_LENGTH,
            delta in 1..=9u8,
        ) {
            let text = Uln::allocate(&mut StdRng::seed_from_u64(seed)).to_string();
            let mut bytes = text.into_bytes();
            bytes[position] = b'0' + (bytes[position] - b'0' + delta) % 10;
            let changed = String::from_utf8(bytes).expect("digits are ASCII");
            prop_assert!(Uln::parse(&changed).is_err(), "{}", changed);
        }

        #[test]
        fn swapping_two_different_neighbours_breaks_a_valid_uln(
            seed in any::<u64>(),
            position in 0..ULN_LENGTH - 1,
        ) {
            let text = Uln::allocate(&mut StdRng::seed_from_u64(seed)).to_string();
            let mut bytes = text.into_bytes();
            prop_assume!(bytes[position] != bytes[position + 1]);
            bytes.swap(position, position + 1);
            let changed = String::from_utf8(bytes).expect("digits are ASCII");
            prop_assert!(Uln::parse(&changed).is_err(), "{}", changed);
        }

        #[test]
        fn validator_and_generator_agree(stem in SMALLEST_STEM..=LARGEST_STEM, last in 0..=9u64) {
            let candidate = (u64::from(stem) * 10 + last).to_string();
            let parsed = Uln::parse(&candidate).ok();
            let expected = Uln::from_stem(stem).filter(|u| u.as_u64() % 10 == last);
            prop_assert_eq!(parsed, expected);
        }

        #[test]
        fn parse_never_panics(input in ".{0,16}") {
            let _ = Uln::parse(&input);
        }
    }
}
