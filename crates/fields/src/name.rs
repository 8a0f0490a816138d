//! Learners' names: their rules, and the normalised forms used for matching.
//!
//! A required name (given or family) is 1 to 35 characters with at least one that is not
//! whitespace; an optional name is at most 35. As in the LRS schema, no character set is imposed,
//! so apostrophes, hyphens, accents and two-letter names are all valid; control characters are
//! refused (see [`crate::text`]). Surrounding whitespace is trimmed.
//!
//! Matching compares [`normalise_name`] forms, blocks candidates on [`phonetic_key`], and
//! scores near misses with [`similarity`].

use std::fmt;

use rphonetic::{DoubleMetaphone, Encoder};
use strsim::jaro_winkler;
use thiserror::Error;
use unicode_normalization::UnicodeNormalization;
use unicode_normalization::char::is_combining_mark;

use crate::text::{self, NAME_MAX, TextError};

/// A valid, trimmed name of 1 to 35 characters.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Name(String);

/// Why a name is refused. The messages do not repeat the name, because they may reach logs.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum NameError {
    /// A required name that is empty or only whitespace.
    #[error("the name is blank; it needs at least one character that is not a space")]
    Blank,
    /// More than 35 characters.
    #[error("the name has {found} characters; at most 35 are allowed")]
    TooLong {
        /// How many characters were given (after trimming).
        found: usize,
    },
    /// A control character such as a line break.
    #[error("name character {position} is a control character, which is not allowed in a name")]
    ControlCharacter {
        /// The 1-based position in the trimmed name.
        position: usize,
    },
}

impl Name {
    /// Parses a required name: trimmed, then 1 to 35 characters.
    pub fn parse(value: &str) -> Result<Name, NameError> {
        Name::parse_optional(value)?.ok_or(NameError::Blank)
    }

    /// Parses an optional name: `None` when blank, otherwise trimmed and at most 35
    /// characters.
    pub fn parse_optional(value: &str) -> Result<Option<Name>, NameError> {
        match text::single_line(value, NAME_MAX) {
            Ok(name) => Ok(name.map(Name)),
            Err(TextError::TooLong { found, .. }) => Err(NameError::TooLong { found }),
            Err(TextError::ControlCharacter { position }) => {
                Err(NameError::ControlCharacter { position })
            }
        }
    }

    /// The name as given, trimmed.
    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// The normalised form of this name, for matching (see [`normalise_name`]).
    pub fn normalised(&self) -> String {
        normalise_name(&self.0)
    }
}

impl fmt::Display for Name {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// The form of a name used to compare names: lower case, compatibility-decomposed (NFKD) with
/// the combining marks removed, and without whitespace, hyphens, apostrophes (`'`, `’`, `‘`,
/// `ʼ`) and dots.
///
/// So `O'Connor`, `O’Connor` and `oconnor` agree, as do `Zoë` and `Zoe`, `Smith-Jones` and
/// `Smith Jones`. Letters with no decomposition (`ø`, `ß`, `ł`) are kept as they are.
pub fn normalise_name(name: &str) -> String {
    // Lower-casing can itself produce combining marks (`İ` becomes `i` and a dot above) and
    // decomposition can produce capitals (`ℌ` becomes `H`), hence decompose, lower, decompose.
    name.nfkd()
        .flat_map(char::to_lowercase)
        .nfkd()
        .filter(|c| !is_combining_mark(*c) && !is_ignored_in_names(*c))
        .collect()
}

fn is_ignored_in_names(c: char) -> bool {
    c.is_whitespace()
        || matches!(
            c,
            '-' | '\u{2010}' | '\u{2011}' | '\'' | '\u{2019}' | '\u{2018}' | '\u{02bc}' | '.'
        )
}

/// A phonetic key of a name for blocking candidates: the primary Double Metaphone code (up to
/// four characters) of the normalised name's ASCII letters.
///
/// Names with no ASCII letters left after normalisation (written in a non-Latin script, say)
/// have no phonetic code; their key is their normalised form, so they block on exact
/// agreement. The key is deterministic and stable, so it can be stored in an index.
pub fn phonetic_key(name: &str) -> String {
    let normalised = normalise_name(name);
    let letters: String = normalised
        .chars()
        .filter(char::is_ascii_alphabetic)
        .collect();
    if letters.is_empty() {
        return normalised;
    }
    DoubleMetaphone::default().encode(&letters)
}

/// How alike two names are, from 0 (nothing in common) to 1 (the same once normalised): the
/// Jaro-Winkler similarity of their normalised forms.
///
/// A name with nothing left after normalisation carries no evidence and scores 0 against
/// anything.
pub fn similarity(a: &str, b: &str) -> f64 {
    let (a, b) = (normalise_name(a), normalise_name(b));
    if a.is_empty() || b.is_empty() {
        return 0.0;
    }
    jaro_winkler(&a, &b).clamp(0.0, 1.0)
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn sample_names_are_valid() {
        for name in [
            "O'Connor",
            "Smith-Jones",
            "Zoë",
            "Li",
            "Wei",
            "Amelia",
            "Mohammed",
        ] {
            assert_eq!(
                Name::parse(name).map(|n| n.as_str().to_owned()),
                Ok(name.to_owned())
            );
        }
    }

    #[test]
    fn required_name_rules() {
        assert_eq!(Name::parse("   "), Err(NameError::Blank));
        assert_eq!(Name::parse(""), Err(NameError::Blank));
        assert_eq!(
            Name::parse("  Ann  ").map(|n| n.to_string()),
            Ok("Ann".to_owned())
        );
        assert!(Name::parse(&"a".repeat(35)).is_ok());
        assert_eq!(
            Name::parse(&"a".repeat(36)),
            Err(NameError::TooLong { found: 36 })
        );
        assert!(
            Name::parse(&"é".repeat(35)).is_ok(),
            "counted in characters, not bytes"
        );
        assert_eq!(
            Name::parse("Ann\nMarie"),
            Err(NameError::ControlCharacter { position: 4 })
        );
        assert!(Name::parse("A").is_ok());
    }

    #[test]
    fn optional_name_rules() {
        assert_eq!(Name::parse_optional(""), Ok(None));
        assert_eq!(Name::parse_optional("  "), Ok(None));
        assert!(Name::parse_optional("James").is_ok_and(|n| n.is_some()));
        assert_eq!(
            Name::parse_optional(&"b".repeat(36)),
            Err(NameError::TooLong { found: 36 })
        );
    }

    #[test]
    fn normalisation() {
        let cases = [
            ("O'Connor", "oconnor"),
            ("O’Connor", "oconnor"),
            ("Smith-Jones", "smithjones"),
            ("Smith Jones", "smithjones"),
            ("Zoë", "zoe"),
            ("ZOE", "zoe"),
            ("St. John", "stjohn"),
            ("Ångström", "angstrom"),
            ("Łukasz", "łukasz"),
            ("İpek", "ipek"),
            ("ﬁona", "fiona"),
            ("  Mary  Ann ", "maryann"),
        ];
        for (input, expected) in cases {
            assert_eq!(normalise_name(input), expected, "{input:?}");
        }
    }

    #[test]
    fn phonetic_keys_group_sound_alikes() {
        assert_eq!(phonetic_key("Smith"), phonetic_key("Smyth"));
        assert_eq!(phonetic_key("O'Connor"), phonetic_key("OConnor"));
        assert_eq!(phonetic_key("Zoë"), phonetic_key("Zoe"));
        assert_ne!(phonetic_key("Hartley"), phonetic_key("Rahman"));
        assert_eq!(phonetic_key("王"), "王");
        assert_eq!(phonetic_key(""), "");
    }

    #[test]
    fn similarity_scores() {
        assert_eq!(similarity("O'Connor", "oconnor"), 1.0);
        assert_eq!(similarity("Zoë", "ZOE"), 1.0);
        let close = similarity("Hartley", "Hartly");
        let far = similarity("Hartley", "Rahman");
        assert!(close > 0.9 && close < 1.0, "{close}");
        assert!(far < close, "{far}");
        assert_eq!(similarity("", "Ann"), 0.0);
        assert_eq!(similarity("-", "-"), 0.0);
    }

    proptest! {
        #[test]
        fn normalising_twice_changes_nothing(name in "\\PC{0,40}") {
            let once = normalise_name(&name);
            prop_assert_eq!(normalise_name(&once), once);
        }

        #[test]
        fn phonetic_key_never_panics(name in "\\PC{0,40}") {
            let _ = phonetic_key(&name);
        }

        #[test]
        fn similarity_is_symmetric_and_bounded(a in "\\PC{0,20}", b in "\\PC{0,20}") {
            let ab = similarity(&a, &b);
            prop_assert!((0.0..=1.0).contains(&ab));
            prop_assert_eq!(ab, similarity(&b, &a));
        }
    }
}
