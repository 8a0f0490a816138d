//! Rules for the single fields of identity's records.

use rand::Rng;

/// Why a field's value was refused; the message is shown to the caller.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum FieldError {
    /// Empty where a value is required.
    #[error("is required")]
    Required,
    /// Too long.
    #[error("must be at most {max} characters")]
    TooLong {
        /// The most characters allowed.
        max: usize,
    },
    /// Too short.
    #[error("must be at least {min} characters")]
    TooShort {
        /// The fewest characters allowed.
        min: usize,
    },
    /// Begins or ends with spaces, or holds control characters.
    #[error("must not begin or end with spaces or hold control characters")]
    BadText,
    /// Not a UKPRN.
    #[error("must be exactly 8 ASCII letters or digits")]
    Ukprn,
    /// Not an organisation reference.
    #[error("must be exactly 6 ASCII letters or digits")]
    OrganisationReference,
    /// Not a username.
    #[error("must be 3 to 64 characters of ASCII letters, digits, `.`, `_`, `-` or `@`")]
    Username,
    /// Not an email address.
    #[error("must be an email address such as name@example.org, at most 254 characters")]
    Email,
    /// Not a ULN; the reason names the rule broken.
    #[error("must be a ULN: {0}")]
    Uln(String),
    /// Not a UUID.
    #[error("must be a UUID such as 0b0c6a0e-2f44-4bb6-9a55-7bd1c1c0c001")]
    Uuid,
}

/// Free text of one line: not blank, no surrounding spaces or control characters, at most
/// `max` characters.
pub fn text(value: &str, max: usize) -> Result<String, FieldError> {
    if value.is_empty() {
        return Err(FieldError::Required);
    }
    if value.chars().count() > max {
        return Err(FieldError::TooLong { max });
    }
    if value.trim() != value || value.chars().any(char::is_control) {
        return Err(FieldError::BadText);
    }
    Ok(value.to_owned())
}

/// A UKPRN: exactly 8 ASCII letters or digits, stored in upper case.
pub fn ukprn(value: &str) -> Result<String, FieldError> {
    if value.is_empty() {
        return Err(FieldError::Required);
    }
    if value.len() == 8 && value.bytes().all(|b| b.is_ascii_alphanumeric()) {
        Ok(value.to_ascii_uppercase())
    } else {
        Err(FieldError::Ukprn)
    }
}

/// An organisation reference: exactly 6 ASCII letters or digits, stored in upper case.
pub fn organisation_reference(value: &str) -> Result<String, FieldError> {
    if value.len() == 6 && value.bytes().all(|b| b.is_ascii_alphanumeric()) {
        Ok(value.to_ascii_uppercase())
    } else {
        Err(FieldError::OrganisationReference)
    }
}

/// A fresh random organisation reference (6 upper-case letters and digits).
pub fn generate_organisation_reference() -> String {
    const ALPHABET: &[u8] = b"ABCDEFGHJKLMNPQRSTUVWXYZ23456789";
    let mut rng = rand::rng();
    (0..6)
        .map(|_| char::from(ALPHABET[rng.random_range(0..ALPHABET.len())]))
        .collect()
}

/// A username as given: 3 to 64 of ASCII letters, digits, `.`, `_`, `-`, `@`.
pub fn username(value: &str) -> Result<String, FieldError> {
    let allowed = |b: u8| b.is_ascii_alphanumeric() || matches!(b, b'.' | b'_' | b'-' | b'@');
    if value.is_empty() {
        Err(FieldError::Required)
    } else if (3..=64).contains(&value.len()) && value.bytes().all(allowed) {
        Ok(value.to_owned())
    } else {
        Err(FieldError::Username)
    }
}

/// The key under which usernames are unique: the name in lower case.
pub fn username_key(username: &str) -> String {
    username.to_ascii_lowercase()
}

/// A person's given or family name: 1 to 35 characters.
pub fn person_name(value: &str) -> Result<String, FieldError> {
    text(value, 35)
}

/// An optional contact email: empty, or one `@` between a non-empty local part and a
/// domain with a dot, no spaces, at most 254 characters.
pub fn email(value: &str) -> Result<String, FieldError> {
    if value.is_empty() {
        return Ok(String::new());
    }
    let well_formed = value.len() <= 254
        && !value.chars().any(|c| c.is_whitespace() || c.is_control())
        && match value.split_once('@') {
            Some((local, domain)) => {
                !local.is_empty()
                    && !domain.contains('@')
                    && domain.contains('.')
                    && !domain.starts_with('.')
                    && !domain.ends_with('.')
            }
            None => false,
        };
    if well_formed {
        Ok(value.to_owned())
    } else {
        Err(FieldError::Email)
    }
}

/// A ULN, by the shared rule of `lrs-fields`: exactly 10 ASCII digits, the first 1 to 9,
/// with a valid check digit, and not the placeholder `9999999999`.
pub fn uln(value: &str) -> Result<String, FieldError> {
    lrs_fields::uln::Uln::parse(value)
        .map(|uln| uln.to_string())
        .map_err(|error| FieldError::Uln(error.to_string()))
}

/// A UUID in its usual hyphenated form.
pub fn uuid(value: &str) -> Result<uuid::Uuid, FieldError> {
    if value.is_empty() {
        return Err(FieldError::Required);
    }
    uuid::Uuid::try_parse(value).map_err(|_| FieldError::Uuid)
}

/// An idempotency key: empty (none), or 1 to 64 characters without control characters.
pub fn request_id(value: &str) -> Result<Option<String>, FieldError> {
    if value.is_empty() {
        Ok(None)
    } else if value.chars().count() > 64 {
        Err(FieldError::TooLong { max: 64 })
    } else if value.chars().any(char::is_control) {
        Err(FieldError::BadText)
    } else {
        Ok(Some(value.to_owned()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn uln_check_digit_follows_the_published_vectors() {
        for valid in [
            "9276308686",
            "1748529632",
            "1000000043",
            "4444599390",
            "1000102504",
        ] {
            assert_eq!(uln(valid), Ok(valid.to_owned()), "{valid}");
        }
        for invalid in [
            "1748529631",
            "9999999999",
            "1000000063",
            "0000000042",
            "123456789",
            "12345678901",
            "ABC4567890",
            " 1748529632",
        ] {
            assert!(matches!(uln(invalid), Err(FieldError::Uln(_))), "{invalid}");
        }
    }

    #[test]
    fn ukprn_and_reference_are_exact_and_upper_cased() {
        assert_eq!(ukprn("10000001"), Ok("10000001".into()));
        assert_eq!(ukprn("ab12cd34"), Ok("AB12CD34".into()));
        assert_eq!(ukprn("1000000"), Err(FieldError::Ukprn));
        assert_eq!(ukprn("1000 001"), Err(FieldError::Ukprn));
        assert_eq!(ukprn(""), Err(FieldError::Required));
        assert_eq!(organisation_reference("abc123"), Ok("ABC123".into()));
        assert!(organisation_reference("ABC12").is_err());
        let generated = generate_organisation_reference();
        assert_eq!(organisation_reference(&generated), Ok(generated));
    }

    #[test]
    fn usernames_names_and_emails() {
        assert!(username("demo.lrb.admin").is_ok());
        assert!(username("ab").is_err());
        assert!(username("has space").is_err());
        assert_eq!(username_key("Demo.Admin"), "demo.admin");
        assert!(person_name("Ann").is_ok());
        assert!(person_name(" Ann").is_err());
        assert!(person_name(&"a".repeat(36)).is_err());
        assert!(email("").is_ok());
        assert!(email("a@example.org").is_ok());
        assert!(email("a@b").is_err());
        assert!(email("a b@example.org").is_err());
        assert!(email("a@@example.org").is_err());
    }

    #[test]
    fn request_ids() {
        assert_eq!(request_id(""), Ok(None));
        assert_eq!(request_id("r-1"), Ok(Some("r-1".into())));
        assert!(request_id(&"x".repeat(65)).is_err());
    }
}
