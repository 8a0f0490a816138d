//! The learner's last known postcode: a UK postcode or a BFPO number.
//!
//! The rule (MIAPPostCode): `[A-Z]{1,2}[0-9R][0-9A-Z]? ?[0-9][ABD-HJLNP-UW-Z]{2}` or
//! `BFPO ?[0-9]{1,4}`, either followed by up to four trailing spaces, compared without regard
//! to case. Only one space is allowed inside, between the outward and inward parts. The stored
//! form is upper case with exactly one space (`CV4 9EE`, `BFPO 123`); matching compares the
//! [`Postcode::compact`] form without spaces.
//!
//! The type's nine-character limit is met by every postcode the pattern accepts once the
//! trailing spaces are set aside, so it needs no check of its own.

use std::fmt;
use std::str::FromStr;

use thiserror::Error;

/// The most trailing spaces a postcode may carry.
const MAX_TRAILING_SPACES: usize = 4;

/// Letters the inward part of a postcode may end with: A to Z without C, I, K, M, O and V.
const INWARD_LETTERS: &str = "ABDEFGHJLNPQRSTUWXYZ";

/// A valid postcode in its canonical form: upper case, one space.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Postcode(String);

/// Why a string is not a valid postcode. The messages do not repeat the postcode, because they
/// may reach logs.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum PostcodeError {
    /// Nothing but spaces.
    #[error("the postcode is empty")]
    Empty,
    /// More than four trailing spaces.
    #[error("the postcode ends in {found} spaces; at most 4 are allowed")]
    TooManyTrailingSpaces {
        /// How many trailing spaces were given.
        found: usize,
    },
    /// A `BFPO` postcode whose number is not 1 to 4 digits after at most one space.
    #[error(
        "a BFPO postcode is BFPO, an optional space and a number of 1 to 4 digits, like BFPO 123"
    )]
    Bfpo,
    /// Neither a UK postcode nor a BFPO number.
    #[error("not a UK postcode like CV4 9EE (one space at most) or a BFPO number like BFPO 123")]
    NotAPostcode,
    /// The last two letters use one of C, I, K, M, O or V, which postcodes never end with.
    #[error("the last two letters of a postcode are never C, I, K, M, O or V")]
    InwardLetter,
}

impl Postcode {
    /// Parses a UK postcode or BFPO number, in any case, and returns its canonical form.
    pub fn parse(input: &str) -> Result<Postcode, PostcodeError> {
        let core = input.trim_end_matches(' ');
        let trailing = input.len() - core.len();
        if core.is_empty() {
            return Err(PostcodeError::Empty);
        }
        if trailing > MAX_TRAILING_SPACES {
            return Err(PostcodeError::TooManyTrailingSpaces { found: trailing });
        }
        if !core.is_ascii() {
            return Err(PostcodeError::NotAPostcode);
        }

        let upper = core.to_ascii_uppercase();
        match upper.strip_prefix("BFPO") {
            Some(number) => parse_bfpo(number),
            None => parse_uk(&upper),
        }
    }

    /// The canonical form: upper case with one space (`CV4 9EE`, `BFPO 123`).
    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// The canonical form without its space (`CV49EE`, `BFPO123`), for matching.
    pub fn compact(&self) -> String {
        self.0.replace(' ', "")
    }

    /// Whether this is a British Forces Post Office number rather than a UK postcode.
    pub fn is_bfpo(&self) -> bool {
        self.0.starts_with("BFPO ")
    }
}

fn parse_bfpo(number: &str) -> Result<Postcode, PostcodeError> {
    let digits = number.strip_prefix(' ').unwrap_or(number);
    let well_formed = (1..=4).contains(&digits.len()) && digits.bytes().all(|b| b.is_ascii_digit());
    if !well_formed {
        return Err(PostcodeError::Bfpo);
    }
    Ok(Postcode(format!("BFPO {digits}")))
}

fn parse_uk(upper: &str) -> Result<Postcode, PostcodeError> {
    let (outward, inward) = match upper.split_once(' ') {
        Some(parts) => parts,
        None if upper.len() > 3 => upper.split_at(upper.len() - 3),
        None => return Err(PostcodeError::NotAPostcode),
    };
    if !is_outward(outward) || !is_inward_shape(inward) {
        return Err(PostcodeError::NotAPostcode);
    }
    if !inward[1..].chars().all(|c| INWARD_LETTERS.contains(c)) {
        return Err(PostcodeError::InwardLetter);
    }
    Ok(Postcode(format!("{outward} {inward}")))
}

/// `[A-Z]{1,2}[0-9R][0-9A-Z]?`
fn is_outward(outward: &str) -> bool {
    let bytes = outward.as_bytes();
    (1..=2).any(|letters| {
        let Some((area, rest)) = bytes.split_at_checked(letters) else {
            return false;
        };
        let Some((district, tail)) = rest.split_first() else {
            return false;
        };
        area.iter().all(u8::is_ascii_uppercase)
            && (district.is_ascii_digit() || *district == b'R')
            && tail.len() <= 1
            && tail
                .iter()
                .all(|b| b.is_ascii_digit() || b.is_ascii_uppercase())
    })
}

/// A digit and two upper-case letters; which letters is checked separately so that the
/// message can say what is wrong.
fn is_inward_shape(inward: &str) -> bool {
    let bytes = inward.as_bytes();
    bytes.len() == 3 && bytes[0].is_ascii_digit() && bytes[1..].iter().all(u8::is_ascii_uppercase)
}

impl fmt::Display for Postcode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl FromStr for Postcode {
    type Err = PostcodeError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Postcode::parse(s)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn canonical(input: &str) -> Result<String, PostcodeError> {
        Postcode::parse(input).map(|p| p.as_str().to_owned())
    }

    #[test]
    fn domain_valid_examples() {
        let cases = [
            ("CV4 9EE", "CV4 9EE"),
            ("CV49EE", "CV4 9EE"),
            ("cv4 9ee", "CV4 9EE"),
            ("EC1A 1BB", "EC1A 1BB"),
            ("BFPO 123", "BFPO 123"),
            ("GIR 0AA", "GIR 0AA"),
        ];
        for (input, expected) in cases {
            assert_eq!(canonical(input).as_deref(), Ok(expected), "{input:?}");
        }
    }

    #[test]
    fn sample_file_postcodes() {
        let cases = [
            ("l1 8jq", "L1 8JQ"),
            ("SW1A 1AA", "SW1A 1AA"),
            ("CF10 1AA", "CF10 1AA"),
            ("M1 1AE", "M1 1AE"),
            ("B15 2TT", "B15 2TT"),
            ("G2 1DY", "G2 1DY"),
        ];
        for (input, expected) in cases {
            assert_eq!(canonical(input).as_deref(), Ok(expected), "{input:?}");
        }
        assert_eq!(canonical("NOT A PC"), Err(PostcodeError::NotAPostcode));
    }

    #[test]
    fn every_outward_shape() {
        for (input, expected) in [
            ("A9 9AA", "A9 9AA"),
            ("A99 9AA", "A99 9AA"),
            ("A9A 9AA", "A9A 9AA"),
            ("AA9 9AA", "AA9 9AA"),
            ("AA99 9AA", "AA99 9AA"),
            ("AA9A 9AA", "AA9A 9AA"),
            ("ar9a9aa", "AR9A 9AA"),
        ] {
            assert_eq!(canonical(input).as_deref(), Ok(expected), "{input:?}");
        }
    }

    #[test]
    fn bfpo_forms() {
        assert_eq!(canonical("BFPO123").as_deref(), Ok("BFPO 123"));
        assert_eq!(canonical("bfpo 1").as_deref(), Ok("BFPO 1"));
        assert_eq!(canonical("BFPO 1234    ").as_deref(), Ok("BFPO 1234"));
        assert_eq!(canonical("BFPO 12345"), Err(PostcodeError::Bfpo));
        assert_eq!(canonical("BFPO  123"), Err(PostcodeError::Bfpo));
        assert_eq!(canonical("BFPO"), Err(PostcodeError::Bfpo));
        assert_eq!(canonical("BFPO X1"), Err(PostcodeError::Bfpo));
        assert!(Postcode::parse("BFPO 7").is_ok_and(|p| p.is_bfpo()));
        assert!(Postcode::parse("CV4 9EE").is_ok_and(|p| !p.is_bfpo()));
    }

    #[test]
    fn spaces() {
        assert_eq!(canonical("CV4 9EE    ").as_deref(), Ok("CV4 9EE"));
        assert_eq!(
            canonical("CV4 9EE     "),
            Err(PostcodeError::TooManyTrailingSpaces { found: 5 })
        );
        assert_eq!(canonical("CV4  9EE"), Err(PostcodeError::NotAPostcode));
        assert_eq!(canonical(" CV4 9EE"), Err(PostcodeError::NotAPostcode));
        assert_eq!(canonical("CV 49EE"), Err(PostcodeError::NotAPostcode));
        assert_eq!(canonical("CV4\t9EE"), Err(PostcodeError::NotAPostcode));
        assert_eq!(canonical("CV4 9EE\n"), Err(PostcodeError::NotAPostcode));
        assert_eq!(canonical(""), Err(PostcodeError::Empty));
        assert_eq!(canonical("   "), Err(PostcodeError::Empty));
    }

    #[test]
    fn inward_letters() {
        assert_eq!(canonical("CV4 9CE"), Err(PostcodeError::InwardLetter));
        for letter in ['C', 'I', 'K', 'M', 'O', 'V'] {
            assert_eq!(
                canonical(&format!("CV4 9E{letter}")),
                Err(PostcodeError::InwardLetter)
            );
        }
    }

    #[test]
    fn other_faults() {
        for input in [
            "CV4",
            "9EE",
            "C4",
            "CVX 9EE",
            "CVB4 9EE",
            "CV4Z1 9EE",
            "ÇV4 9EE",
            "CV4 EEE",
        ] {
            assert_eq!(
                canonical(input),
                Err(PostcodeError::NotAPostcode),
                "{input:?}"
            );
        }
    }

    #[test]
    fn compact_form_drops_the_space() {
        let a = Postcode::parse("CV4 9EE").expect("valid");
        let b = Postcode::parse("cv49ee").expect("valid");
        assert_eq!(a.compact(), "CV49EE");
        assert_eq!(a.compact(), b.compact());
        assert_eq!(
            Postcode::parse("BFPO 12").map(|p| p.compact()),
            Ok("BFPO12".to_owned())
        );
    }

    const POSTCODE_PATTERN: &str = "[A-Za-z]{1,2}[0-9R][0-9A-Z]? ?[0-9][ABD-HJLNP-UW-Z]{2} {0,4}";

    proptest! {
        #[test]
        fn canonical_form_is_a_fixed_point(input in POSTCODE_PATTERN) {
            let once = Postcode::parse(&input).expect("matches the pattern");
            let twice = Postcode::parse(once.as_str()).expect("canonical form parses");
            prop_assert_eq!(&once, &twice);
            prop_assert_eq!(once.as_str().matches(' ').count(), 1);
            prop_assert!(once.as_str().len() <= 9);
        }

        #[test]
        fn parse_never_panics(input in ".{0,14}") {
            let _ = Postcode::parse(&input);
        }
    }
}
