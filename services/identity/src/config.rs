//! The identity service's configuration block.

use std::fmt;
use std::time::Duration;

use base64::Engine;
use base64::engine::general_purpose::STANDARD;

use crate::domain::lockout::LockoutPolicy;
use crate::keys::KeyEncryptionKey;

/// Identity's settings. Every flag has an environment variable; the doc comments are the
/// `--help` text. [`IdentityConfig::validate`] checks the block before anything is bound.
#[derive(Clone, PartialEq, Eq, clap::Args)]
pub struct IdentityConfig {
    /// Key that encrypts the token signing keys at rest: 32 random bytes in base64 (for
    /// example from `openssl rand -base64 32`). Required; keep it secret, and keep it: the
    /// stored signing keys cannot be read without it.
    #[arg(
        long = "key-encryption-key",
        env = "LRS_KEY_ENCRYPTION_KEY",
        default_value = "",
        hide_env_values = true,
        hide_default_value = true
    )]
    pub key_encryption_key: String,

    /// How long an access token is valid (`15m`).
    #[arg(
        long = "access-token-ttl",
        env = "LRS_ACCESS_TOKEN_TTL",
        default_value = "15m",
        value_parser = humantime::parse_duration
    )]
    pub access_token_ttl: Duration,

    /// How long a refresh token is valid (`12h`); each use replaces it.
    #[arg(
        long = "refresh-token-ttl",
        env = "LRS_REFRESH_TOKEN_TTL",
        default_value = "12h",
        value_parser = humantime::parse_duration
    )]
    pub refresh_token_ttl: Duration,

    /// How old the current signing key may grow before a new one replaces it (`30days`).
    /// The old key stays published until every token it signed has expired.
    #[arg(
        long = "signing-key-rotation",
        env = "LRS_SIGNING_KEY_ROTATION",
        default_value = "30days",
        value_parser = humantime::parse_duration
    )]
    pub signing_key_rotation: Duration,

    /// Failed sign-ins in a row that lock an account.
    #[arg(
        long = "lockout-threshold",
        env = "LRS_LOCKOUT_THRESHOLD",
        default_value_t = 5
    )]
    pub lockout_threshold: u32,

    /// How long a locked account stays locked (`15m`).
    #[arg(
        long = "lockout-duration",
        env = "LRS_LOCKOUT_DURATION",
        default_value = "15m",
        value_parser = humantime::parse_duration
    )]
    pub lockout_duration: Duration,

    /// Largest provider or awarding-organisation list file accepted, in bytes (50 MiB).
    #[arg(
        long = "max-list-file-bytes",
        env = "LRS_MAX_LIST_FILE_BYTES",
        default_value_t = 50 * 1024 * 1024
    )]
    pub max_list_file_bytes: u64,
}

impl Default for IdentityConfig {
    fn default() -> Self {
        Self {
            key_encryption_key: String::new(),
            access_token_ttl: Duration::from_secs(15 * 60),
            refresh_token_ttl: Duration::from_secs(12 * 3600),
            signing_key_rotation: Duration::from_secs(30 * 24 * 3600),
            lockout_threshold: 5,
            lockout_duration: Duration::from_secs(15 * 60),
            max_list_file_bytes: 50 * 1024 * 1024,
        }
    }
}

/// Shows the block with the key-encryption key hidden, so it can be logged.
impl fmt::Debug for IdentityConfig {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let key = if self.key_encryption_key.is_empty() {
            ""
        } else {
            "<hidden>"
        };
        f.debug_struct("IdentityConfig")
            .field("key_encryption_key", &key)
            .field("access_token_ttl", &self.access_token_ttl)
            .field("refresh_token_ttl", &self.refresh_token_ttl)
            .field("signing_key_rotation", &self.signing_key_rotation)
            .field("lockout_threshold", &self.lockout_threshold)
            .field("lockout_duration", &self.lockout_duration)
            .field("max_list_file_bytes", &self.max_list_file_bytes)
            .finish()
    }
}

/// A configuration that cannot be used.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    /// No key-encryption key.
    #[error(
        "--key-encryption-key (LRS_KEY_ENCRYPTION_KEY) is required: 32 random bytes in base64, \
         for example from `openssl rand -base64 32`"
    )]
    MissingKeyEncryptionKey,
    /// The key is not 32 bytes of base64.
    #[error("--key-encryption-key must be 32 bytes in base64: {0}")]
    BadKeyEncryptionKey(String),
    /// A duration that must be positive is zero.
    #[error("--{0} must be longer than zero")]
    ZeroDuration(&'static str),
    /// The lockout threshold is zero.
    #[error("--lockout-threshold must be at least 1")]
    ZeroLockoutThreshold,
    /// The refresh token would expire before the access token.
    #[error("--refresh-token-ttl must be at least --access-token-ttl")]
    RefreshShorterThanAccess,
    /// The file size cap is zero.
    #[error("--max-list-file-bytes must be at least 1")]
    ZeroFileSize,
}

/// The checked settings the service runs with.
#[derive(Debug, Clone)]
pub struct Settings {
    /// Key that seals the signing keys.
    pub key_encryption_key: KeyEncryptionKey,
    /// Access token lifetime.
    pub access_token_ttl: Duration,
    /// Refresh token lifetime.
    pub refresh_token_ttl: Duration,
    /// Signing key rotation interval.
    pub signing_key_rotation: Duration,
    /// Lockout after failed sign-ins.
    pub lockout: LockoutPolicy,
    /// List file size cap in bytes.
    pub max_list_file_bytes: u64,
}

impl IdentityConfig {
    /// Checks the block and decodes the key-encryption key.
    pub fn validate(&self) -> Result<Settings, ConfigError> {
        if self.key_encryption_key.is_empty() {
            return Err(ConfigError::MissingKeyEncryptionKey);
        }
        let bytes = STANDARD
            .decode(self.key_encryption_key.trim())
            .map_err(|error| ConfigError::BadKeyEncryptionKey(error.to_string()))?;
        let key = KeyEncryptionKey::from_bytes(&bytes).ok_or_else(|| {
            ConfigError::BadKeyEncryptionKey(format!("it decodes to {} bytes", bytes.len()))
        })?;
        for (name, value) in [
            ("access-token-ttl", self.access_token_ttl),
            ("refresh-token-ttl", self.refresh_token_ttl),
            ("signing-key-rotation", self.signing_key_rotation),
            ("lockout-duration", self.lockout_duration),
        ] {
            if value.is_zero() {
                return Err(ConfigError::ZeroDuration(name));
            }
        }
        if self.lockout_threshold == 0 {
            return Err(ConfigError::ZeroLockoutThreshold);
        }
        if self.refresh_token_ttl < self.access_token_ttl {
            return Err(ConfigError::RefreshShorterThanAccess);
        }
        if self.max_list_file_bytes == 0 {
            return Err(ConfigError::ZeroFileSize);
        }
        Ok(Settings {
            key_encryption_key: key,
            access_token_ttl: self.access_token_ttl,
            refresh_token_ttl: self.refresh_token_ttl,
            signing_key_rotation: self.signing_key_rotation,
            lockout: LockoutPolicy {
                max_failures: self.lockout_threshold,
                duration: self.lockout_duration,
            },
            max_list_file_bytes: self.max_list_file_bytes,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_key_encryption_key_must_be_32_bytes() {
        let mut config = IdentityConfig::default();
        assert!(matches!(
            config.validate(),
            Err(ConfigError::MissingKeyEncryptionKey)
        ));
        config.key_encryption_key = STANDARD.encode([7u8; 16]);
        assert!(matches!(
            config.validate(),
            Err(ConfigError::BadKeyEncryptionKey(_))
        ));
        config.key_encryption_key = "not base64!".into();
        assert!(matches!(
            config.validate(),
            Err(ConfigError::BadKeyEncryptionKey(_))
        ));
        config.key_encryption_key = KeyEncryptionKey::generate().to_base64();
        assert!(config.validate().is_ok());
        assert!(!format!("{config:?}").contains(&config.key_encryption_key));
    }

    #[test]
    fn durations_and_thresholds_are_checked() {
        let valid = IdentityConfig {
            key_encryption_key: KeyEncryptionKey::generate().to_base64(),
            ..IdentityConfig::default()
        };
        let zero_lock = IdentityConfig {
            lockout_threshold: 0,
            ..valid.clone()
        };
        assert!(matches!(
            zero_lock.validate(),
            Err(ConfigError::ZeroLockoutThreshold)
        ));
        let short_refresh = IdentityConfig {
            refresh_token_ttl: Duration::from_secs(60),
            ..valid.clone()
        };
        assert!(short_refresh.validate().is_err());
        let zero = IdentityConfig {
            access_token_ttl: Duration::ZERO,
            ..valid
        };
        assert!(matches!(
            zero.validate(),
            Err(ConfigError::ZeroDuration("access-token-ttl"))
        ));
    }
}
