//! The password policy, generated passwords and argon2id hashing.
//!
//! Hashing is deliberately slow (argon2id with the crate's defaults: 19 MiB, 2 passes), so
//! callers run it on a blocking thread.

use std::sync::OnceLock;

use argon2::Argon2;
use argon2::password_hash::{PasswordHash, PasswordHasher, PasswordVerifier, SaltString};
use rand::RngCore;
use rand::distr::{Alphanumeric, SampleString};

/// Fewest characters a password may have.
pub const MIN_LENGTH: usize = 12;
/// Most characters a password may have.
pub const MAX_LENGTH: usize = 256;
/// Characters in a generated password.
pub const GENERATED_LENGTH: usize = 24;

/// Why a new password was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum PolicyError {
    /// Fewer than [`MIN_LENGTH`] characters.
    #[error("must be at least {MIN_LENGTH} characters")]
    TooShort,
    /// More than [`MAX_LENGTH`] characters.
    #[error("must be at most {MAX_LENGTH} characters")]
    TooLong,
    /// Equal to the current password.
    #[error("must differ from the current password")]
    Unchanged,
    /// Equal to the username.
    #[error("must not be the username")]
    IsUsername,
}

/// Checks a new password against the policy.
pub fn check_policy(new: &str, current: &str, username: &str) -> Result<(), PolicyError> {
    let length = new.chars().count();
    if length < MIN_LENGTH {
        Err(PolicyError::TooShort)
    } else if length > MAX_LENGTH {
        Err(PolicyError::TooLong)
    } else if new == current {
        Err(PolicyError::Unchanged)
    } else if new.eq_ignore_ascii_case(username) {
        Err(PolicyError::IsUsername)
    } else {
        Ok(())
    }
}

/// A fresh password of [`GENERATED_LENGTH`] letters and digits from the thread's CSPRNG
/// (about 143 bits).
pub fn generate() -> String {
    Alphanumeric.sample_string(&mut rand::rng(), GENERATED_LENGTH)
}

/// Hashing failed; only a fault of the library or its parameters.
#[derive(Debug, thiserror::Error)]
#[error("password hashing failed: {0}")]
pub struct HashError(String);

/// The argon2id PHC string of `password` with a random salt.
pub fn hash(password: &str) -> Result<String, HashError> {
    let mut salt = [0u8; 16];
    rand::rng().fill_bytes(&mut salt);
    let salt = SaltString::encode_b64(&salt).map_err(|error| HashError(error.to_string()))?;
    Argon2::default()
        .hash_password(password.as_bytes(), &salt)
        .map(|hash| hash.to_string())
        .map_err(|error| HashError(error.to_string()))
}

/// True when `password` matches the PHC string `hash`; false for a malformed hash.
pub fn verify(password: &str, hash: &str) -> bool {
    match PasswordHash::new(hash) {
        Ok(parsed) => Argon2::default()
            .verify_password(password.as_bytes(), &parsed)
            .is_ok(),
        Err(_) => false,
    }
}

/// A hash of a password nobody knows, checked when the username is unknown so that an
/// unknown user costs the same time as a wrong password.
pub fn dummy_hash() -> &'static str {
    static DUMMY: OnceLock<String> = OnceLock::new();
    DUMMY.get_or_init(|| hash(&generate()).unwrap_or_default())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn policy_bounds() {
        assert_eq!(check_policy("short", "", "u"), Err(PolicyError::TooShort));
        assert_eq!(
            check_policy(&"x".repeat(257), "", "u"),
            Err(PolicyError::TooLong)
        );
        assert_eq!(
            check_policy("twelve chars", "twelve chars", "u"),
            Err(PolicyError::Unchanged)
        );
        assert_eq!(
            check_policy("Demo.Admin.01", "", "demo.admin.01"),
            Err(PolicyError::IsUsername)
        );
        assert_eq!(check_policy("twelve chars", "old", "u"), Ok(()));
        // Characters, not bytes: twelve accented letters pass.
        assert_eq!(check_policy(&"é".repeat(12), "", "u"), Ok(()));
    }

    #[test]
    fn generated_passwords_meet_the_policy_and_differ() {
        let first = generate();
        assert_eq!(first.len(), GENERATED_LENGTH);
        assert!(first.chars().all(|c| c.is_ascii_alphanumeric()));
        assert_ne!(first, generate());
        assert_eq!(check_policy(&first, "", "u"), Ok(()));
    }

    #[test]
    fn hashes_verify_only_their_password() {
        let hashed = hash("correct horse battery").expect("hashes");
        assert!(hashed.starts_with("$argon2id$"));
        assert!(verify("correct horse battery", &hashed));
        assert!(!verify("correct horse battery!", &hashed));
        assert!(!verify("anything", "not a hash"));
        assert!(!verify("anything", dummy_hash()));
    }
}
