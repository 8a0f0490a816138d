//! E-mail addresses, by the LRS schema's pattern (MIAPEmail), at most 254 characters.
//!
//! Local part: dot-separated atoms (no leading, trailing or doubled dot) of ASCII letters,
//! digits and ``! # $ % ' * + - / = ? ^ _ ` { | } ~``. Domain: one or more dot-separated labels
//! of 2 to 63 letters, digits and inner hyphens, then a dot and a top-level domain of 2 to 6
//! letters. The pattern is stricter than the e-mail standards (no quoted local parts, no
//! one-letter labels); it is the register's rule, so it is followed as written.

use std::fmt;

use thiserror::Error;

use crate::text::EMAIL_MAX;

/// Symbols allowed in the local part besides letters and digits.
const LOCAL_SYMBOLS: &str = "!#$%'*+-/=?^_`{|}~";

/// An e-mail address that matches the register's pattern, as given.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Email(String);

/// Why a string is not a valid e-mail address. The messages do not repeat the address.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum EmailError {
    /// Longer than 254 characters.
    #[error("the e-mail address has {found} characters; at most 254 are allowed")]
    TooLong {
        /// How many characters were given.
        found: usize,
    },
    /// Not exactly one `@`.
    #[error("an e-mail address has exactly one @, like name@example.org")]
    At,
    /// The part before the `@` breaks the pattern.
    #[error("before the @: letters, digits and !#$%'*+-/=?^_`{{|}}~ in parts split by single dots")]
    LocalPart,
    /// The part after the `@` breaks the pattern.
    #[error(
        "after the @: a domain like example.org (parts of 2+ characters, ending in 2-6 letters)"
    )]
    Domain,
}

impl Email {
    /// Parses an e-mail address exactly as given.
    pub fn parse(input: &str) -> Result<Email, EmailError> {
        let found = input.chars().count();
        if found > EMAIL_MAX {
            return Err(EmailError::TooLong { found });
        }
        let Some((local, domain)) = input.split_once('@') else {
            return Err(EmailError::At);
        };
        if domain.contains('@') {
            return Err(EmailError::At);
        }
        if !is_local_part(local) {
            return Err(EmailError::LocalPart);
        }
        if !is_domain(domain) {
            return Err(EmailError::Domain);
        }
        Ok(Email(input.to_owned()))
    }

    /// The address as given.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

fn is_local_part(local: &str) -> bool {
    local.split('.').all(|atom| {
        !atom.is_empty()
            && atom
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || LOCAL_SYMBOLS.contains(c))
    })
}

fn is_domain(domain: &str) -> bool {
    let Some((labels, top_level)) = domain.rsplit_once('.') else {
        return false;
    };
    let top_level_ok =
        (2..=6).contains(&top_level.len()) && top_level.bytes().all(|b| b.is_ascii_alphabetic());
    top_level_ok && labels.split('.').all(is_label)
}

fn is_label(label: &str) -> bool {
    let bytes = label.as_bytes();
    let (Some(first), Some(last)) = (bytes.first(), bytes.last()) else {
        return false;
    };
    (2..=63).contains(&bytes.len())
        && first.is_ascii_alphanumeric()
        && last.is_ascii_alphanumeric()
        && bytes
            .iter()
            .all(|b| b.is_ascii_alphanumeric() || *b == b'-')
}

impl fmt::Display for Email {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn valid_addresses() {
        for input in [
            "m.rahman@example.org",
            "freya.walker@example.co.uk",
            "a@example.museum",
            "o'connor+lrs@mail-server.example.com",
            "x!#$%'*+-/=?^_`{|}~@ab.cd",
            "UPPER@EXAMPLE.ORG",
            "a1@1a.uk",
        ] {
            assert!(Email::parse(input).is_ok(), "{input}");
        }
    }

    #[test]
    fn invalid_addresses() {
        let cases: &[(&str, EmailError)] = &[
            ("no-at.example.org", EmailError::At),
            ("a@b@example.org", EmailError::At),
            ("@example.org", EmailError::LocalPart),
            (".a@example.org", EmailError::LocalPart),
            ("a.@example.org", EmailError::LocalPart),
            ("a..b@example.org", EmailError::LocalPart),
            ("a b@example.org", EmailError::LocalPart),
            ("\"a\"@example.org", EmailError::LocalPart),
            ("zoë@example.org", EmailError::LocalPart),
            ("a@", EmailError::Domain),
            ("a@org", EmailError::Domain),
            ("a@x.org", EmailError::Domain),
            ("a@-ab.org", EmailError::Domain),
            ("a@ab-.org", EmailError::Domain),
            ("a@ab..org", EmailError::Domain),
            ("a@example.o", EmailError::Domain),
            ("a@example.abcdefg", EmailError::Domain),
            ("a@example.c0m", EmailError::Domain),
            ("a@example.org.", EmailError::Domain),
            ("a@ex_ample.org", EmailError::Domain),
            (" a@example.org", EmailError::LocalPart),
            ("a@example.org ", EmailError::Domain),
        ];
        for (input, expected) in cases {
            assert_eq!(Email::parse(input).as_ref(), Err(expected), "{input:?}");
        }
    }

    #[test]
    fn label_and_length_limits() {
        let label63 = "a".repeat(63);
        assert!(Email::parse(&format!("a@{label63}.org")).is_ok());
        assert_eq!(
            Email::parse(&format!("a@{label63}b.org")),
            Err(EmailError::Domain)
        );
        let local = "a".repeat(254 - "@example.org".len());
        assert!(Email::parse(&format!("{local}@example.org")).is_ok());
        assert_eq!(
            Email::parse(&format!("{local}b@example.org")),
            Err(EmailError::TooLong { found: 255 })
        );
    }

    proptest! {
        #[test]
        fn parse_never_panics(input in ".{0,40}") {
            let _ = Email::parse(&input);
        }
    }
}
