//! What tokens carry and how opaque secrets are made and stored.
//!
//! Refresh tokens and client secrets are 32 random bytes (256 bits) in URL-safe base64,
//! stored only as their SHA-256. A fast hash is enough here, unlike for passwords: a
//! secret with 256 bits of entropy cannot be guessed by brute force however fast each guess
//! is, so a slow hash would add cost without adding safety.

use std::time::Duration;

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use chrono::{DateTime, Utc};
use lrs_server::auth::{Claims, ISSUER, PrincipalKind};
use rand::RngCore;
use sha2::{Digest, Sha256};

use crate::domain::Role;
use crate::domain::credential::ClientCredential;
use crate::domain::organisation::Organisation;
use crate::domain::user::User;

/// A fresh opaque secret: 32 random bytes, URL-safe base64 without padding (43 characters).
pub fn new_secret() -> String {
    let mut bytes = [0u8; 32];
    rand::rng().fill_bytes(&mut bytes);
    URL_SAFE_NO_PAD.encode(bytes)
}

/// The SHA-256 of a secret's text, as stored.
pub fn digest(secret: &str) -> Vec<u8> {
    Sha256::digest(secret.as_bytes()).to_vec()
}

/// Compares two digests in time that does not depend on where they differ.
pub fn digests_match(a: &[u8], b: &[u8]) -> bool {
    a.len() == b.len() && a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

fn expiry(now: DateTime<Utc>, ttl: Duration) -> i64 {
    now.timestamp()
        .saturating_add(i64::try_from(ttl.as_secs()).unwrap_or(i64::MAX))
}

/// The claims of a user's access token. `restricted` marks the token of a user who must
/// change a generated password first.
pub fn user_claims(
    user: &User,
    organisation: Option<&Organisation>,
    now: DateTime<Utc>,
    ttl: Duration,
    restricted: bool,
) -> Claims {
    Claims {
        iss: ISSUER.to_owned(),
        sub: user.id.to_string(),
        exp: expiry(now, ttl),
        iat: now.timestamp(),
        jti: uuid::Uuid::new_v4().to_string(),
        kind: if user.is_learner() {
            PrincipalKind::Learner
        } else {
            PrincipalKind::User
        },
        org: organisation.map(|organisation| organisation.id.to_string()),
        org_kind: organisation.map(|organisation| organisation.kind),
        ukprn: organisation.and_then(|organisation| organisation.ukprn.clone()),
        roles: user.roles.clone(),
        uln: user.uln.clone(),
        pwd_change: restricted,
    }
}

/// The claims of a machine credential's access token: kind `Service` (subject the service
/// name) for the suite's own services, `Client` (subject the client id) otherwise.
pub fn client_claims(
    credential: &ClientCredential,
    organisation: &Organisation,
    now: DateTime<Utc>,
    ttl: Duration,
) -> Claims {
    let (kind, subject) = match &credential.service {
        Some(service) if credential.roles == [Role::Service] => {
            (PrincipalKind::Service, service.clone())
        }
        _ => (PrincipalKind::Client, credential.client_id.to_string()),
    };
    Claims {
        iss: ISSUER.to_owned(),
        sub: subject,
        exp: expiry(now, ttl),
        iat: now.timestamp(),
        jti: uuid::Uuid::new_v4().to_string(),
        kind,
        org: Some(organisation.id.to_string()),
        org_kind: Some(organisation.kind),
        ukprn: organisation.ukprn.clone(),
        roles: credential.roles.clone(),
        uln: None,
        pwd_change: false,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn secrets_are_long_random_and_hashed() {
        let secret = new_secret();
        assert_eq!(secret.len(), 43);
        assert_ne!(secret, new_secret());
        assert_eq!(digest(&secret).len(), 32);
        assert!(digests_match(&digest(&secret), &digest(&secret)));
        assert!(!digests_match(&digest(&secret), &digest("other")));
        assert!(!digests_match(&[1, 2], &[1]));
    }
}
