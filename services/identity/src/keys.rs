//! Token signing keys: Ed25519 key pairs kept in identity's store with the private half
//! sealed (ChaCha20-Poly1305, a random nonce per key, the key id as associated data) under
//! the key-encryption key from configuration.
//!
//! The [`KeyRing`] signs with the current key and rotates it when it is older than the
//! rotation interval. A retired key stays published until every token it may have signed has
//! expired: its retirement time plus the access-token lifetime plus twice the cache period
//! (a replica may sign with a key it cached up to one period after another replica retired
//! it). Keys are cached in memory and re-read from the store once per cache period, so
//! replicas notice each other's rotations. [`StoreKeySource`] lets identity verify its own
//! callers' tokens from the same ring, without calling itself.

use std::fmt;
use std::sync::Arc;
use std::time::Duration;

use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use chacha20poly1305::aead::{Aead, KeyInit, Payload};
use chacha20poly1305::{ChaCha20Poly1305, Key, Nonce};
use chrono::{DateTime, Utc};
use ed25519_dalek::SigningKey;
use ed25519_dalek::pkcs8::spki::der::pem::LineEnding;
use ed25519_dalek::pkcs8::{EncodePrivateKey, EncodePublicKey};
use jsonwebtoken::{Algorithm, EncodingKey, Header};
use lrs_server::auth::{AuthError, Claims, KeySource, VerifyingKey};
use rand::RngCore;
use tokio::sync::Mutex;

use crate::store::{IdentityStore, SigningKeyRecord, StoreError};
use lrs_fields::Clock;

/// How long the ring trusts what it read from the store.
const CACHE_PERIOD: Duration = Duration::from_secs(60);

/// The 32-byte key that seals signing keys at rest.
#[derive(Clone, PartialEq, Eq)]
pub struct KeyEncryptionKey([u8; 32]);

impl fmt::Debug for KeyEncryptionKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("KeyEncryptionKey(<hidden>)")
    }
}

impl KeyEncryptionKey {
    /// The key in `bytes`, when there are exactly 32.
    pub fn from_bytes(bytes: &[u8]) -> Option<Self> {
        <[u8; 32]>::try_from(bytes).ok().map(Self)
    }

    /// A fresh random key (for `lrs up`, which keeps it in an owner-only file).
    pub fn generate() -> Self {
        let mut bytes = [0u8; 32];
        rand::rng().fill_bytes(&mut bytes);
        Self(bytes)
    }

    /// The key in base64, as `--key-encryption-key` takes it.
    pub fn to_base64(&self) -> String {
        STANDARD.encode(self.0)
    }

    fn cipher(&self) -> ChaCha20Poly1305 {
        ChaCha20Poly1305::new(&Key::from(self.0))
    }

    /// Seals `secret` for the key `key_id`: returns the nonce and the ciphertext.
    fn seal(&self, key_id: &str, secret: &[u8]) -> Result<(Vec<u8>, Vec<u8>), KeyError> {
        let mut nonce = [0u8; 12];
        rand::rng().fill_bytes(&mut nonce);
        let payload = Payload {
            msg: secret,
            aad: key_id.as_bytes(),
        };
        let sealed = self
            .cipher()
            .encrypt(&Nonce::from(nonce), payload)
            .map_err(|_| KeyError::Seal)?;
        Ok((nonce.to_vec(), sealed))
    }

    /// Opens what [`KeyEncryptionKey::seal`] sealed for `key_id`.
    fn open(&self, key_id: &str, nonce: &[u8], sealed: &[u8]) -> Result<Vec<u8>, KeyError> {
        let nonce: [u8; 12] = nonce
            .try_into()
            .map_err(|_| KeyError::Open(key_id.to_owned()))?;
        let payload = Payload {
            msg: sealed,
            aad: key_id.as_bytes(),
        };
        self.cipher()
            .decrypt(&Nonce::from(nonce), payload)
            .map_err(|_| KeyError::Open(key_id.to_owned()))
    }
}

/// What can go wrong with the signing keys.
#[derive(Debug, thiserror::Error)]
pub enum KeyError {
    /// The store failed.
    #[error("storage failed: {0}")]
    Store(#[from] StoreError),
    /// Sealing a new private key failed.
    #[error("a new signing key could not be sealed")]
    Seal,
    /// A stored private key could not be opened: the key-encryption key is not the one it
    /// was sealed with, or the row was altered.
    #[error(
        "signing key `{0}` cannot be opened: is --key-encryption-key the key it was sealed with?"
    )]
    Open(String),
    /// A key could not be encoded or decoded.
    #[error("signing key encoding failed: {0}")]
    Encoding(String),
    /// No current key after loading (another replica is rotating); retried by the caller.
    #[error("no current signing key")]
    NoCurrentKey,
    /// Signing a token failed.
    #[error("signing a token failed: {0}")]
    Sign(String),
}

/// A public key as `GetSigningKeys` publishes it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PublishedKey {
    /// The `kid`.
    pub key_id: String,
    /// SubjectPublicKeyInfo PEM.
    pub public_key_pem: String,
    /// When it started signing.
    pub created_at: DateTime<Utc>,
    /// When tokens it signed stop being accepted; `None` for the current key.
    pub expires_at: Option<DateTime<Utc>>,
}

struct CurrentKey {
    key_id: String,
    encoding: EncodingKey,
    created_at: DateTime<Utc>,
}

#[derive(Default)]
struct Cache {
    current: Option<CurrentKey>,
    published: Vec<PublishedKey>,
    loaded_at: Option<DateTime<Utc>>,
}

/// The signing keys: the current one to sign with and those still published.
pub struct KeyRing {
    store: Arc<dyn IdentityStore>,
    clock: Arc<dyn Clock>,
    key_encryption_key: KeyEncryptionKey,
    rotation: Duration,
    overlap: Duration,
    cache: Mutex<Cache>,
}

impl fmt::Debug for KeyRing {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("KeyRing")
            .field("rotation", &self.rotation)
            .field("overlap", &self.overlap)
            .finish_non_exhaustive()
    }
}

fn chrono_duration(duration: Duration) -> chrono::Duration {
    chrono::Duration::from_std(duration).unwrap_or(chrono::Duration::MAX)
}

impl KeyRing {
    /// Opens the ring and makes sure a current key exists (the first start creates one).
    pub async fn open(
        store: Arc<dyn IdentityStore>,
        clock: Arc<dyn Clock>,
        key_encryption_key: KeyEncryptionKey,
        rotation: Duration,
        access_token_ttl: Duration,
    ) -> Result<Self, KeyError> {
        let ring = Self {
            store,
            clock,
            key_encryption_key,
            rotation,
            overlap: access_token_ttl + CACHE_PERIOD * 2,
            cache: Mutex::new(Cache::default()),
        };
        ring.refresh(&mut *ring.cache.lock().await).await?;
        Ok(ring)
    }

    /// Signs `claims` with the current key, rotating it first when it is due.
    pub async fn sign(&self, claims: &Claims) -> Result<String, KeyError> {
        let mut cache = self.cache.lock().await;
        if self.is_stale(&cache) {
            self.refresh(&mut cache).await?;
        }
        let current = cache.current.as_ref().ok_or(KeyError::NoCurrentKey)?;
        let mut header = Header::new(Algorithm::EdDSA);
        header.kid = Some(current.key_id.clone());
        jsonwebtoken::encode(&header, claims, &current.encoding)
            .map_err(|error| KeyError::Sign(error.to_string()))
    }

    /// The keys still published, newest first.
    pub async fn published(&self) -> Result<Vec<PublishedKey>, KeyError> {
        let mut cache = self.cache.lock().await;
        if self.is_stale(&cache) {
            self.refresh(&mut cache).await?;
        }
        let now = crate::now(&self.clock);
        Ok(cache
            .published
            .iter()
            .filter(|key| key.expires_at.is_none_or(|expiry| expiry > now))
            .cloned()
            .collect())
    }

    fn is_stale(&self, cache: &Cache) -> bool {
        let now = crate::now(&self.clock);
        let loaded_long_ago = cache
            .loaded_at
            .is_none_or(|at| now - at >= chrono_duration(CACHE_PERIOD));
        let rotation_due = cache
            .current
            .as_ref()
            .is_none_or(|current| now - current.created_at >= chrono_duration(self.rotation));
        loaded_long_ago || rotation_due
    }

    /// Reads the keys from the store, creating the first or rotating the current one when
    /// needed, and drops those whose tokens have all expired.
    async fn refresh(&self, cache: &mut Cache) -> Result<(), KeyError> {
        let now = crate::now(&self.clock);
        let mut records = self.store.signing_keys().await?;
        let current = records.iter().find(|record| record.retired_at.is_none());
        let changed = match current {
            None => {
                let first = self.new_key(now)?;
                self.store.insert_first_signing_key(&first).await?;
                true
            }
            Some(current) if now - current.created_at >= chrono_duration(self.rotation) => {
                let next = self.new_key(now)?;
                let expires_at = now + chrono_duration(self.overlap);
                let rotated = self
                    .store
                    .rotate_signing_key(&current.key_id, now, expires_at, &next)
                    .await?;
                if rotated {
                    tracing::info!(
                        retired = %current.key_id,
                        current = %next.key_id,
                        "rotated signing key"
                    );
                }
                true
            }
            Some(_) => false,
        };
        let dropped = self.store.delete_expired_signing_keys(now).await?;
        if changed || dropped > 0 {
            records = self.store.signing_keys().await?;
        }

        let current = records
            .iter()
            .find(|record| record.retired_at.is_none())
            .ok_or(KeyError::NoCurrentKey)?;
        cache.current = Some(self.open_key(current)?);
        cache.published = records
            .iter()
            .map(|record| PublishedKey {
                key_id: record.key_id.clone(),
                public_key_pem: record.public_key_pem.clone(),
                created_at: record.created_at,
                expires_at: record.expires_at,
            })
            .collect();
        cache.loaded_at = Some(now);
        Ok(())
    }

    fn new_key(&self, now: DateTime<Utc>) -> Result<SigningKeyRecord, KeyError> {
        let mut seed = [0u8; 32];
        rand::rng().fill_bytes(&mut seed);
        let signing = SigningKey::from_bytes(&seed);
        let key_id = uuid::Uuid::new_v4().simple().to_string();
        let public_key_pem = signing
            .verifying_key()
            .to_public_key_pem(LineEnding::LF)
            .map_err(|error| KeyError::Encoding(error.to_string()))?;
        let (nonce, sealed) = self.key_encryption_key.seal(&key_id, &seed)?;
        Ok(SigningKeyRecord {
            key_id,
            public_key_pem,
            private_key_nonce: nonce,
            private_key_sealed: sealed,
            created_at: now,
            retired_at: None,
            expires_at: None,
        })
    }

    fn open_key(&self, record: &SigningKeyRecord) -> Result<CurrentKey, KeyError> {
        let seed = self.key_encryption_key.open(
            &record.key_id,
            &record.private_key_nonce,
            &record.private_key_sealed,
        )?;
        let seed: [u8; 32] = seed
            .as_slice()
            .try_into()
            .map_err(|_| KeyError::Open(record.key_id.clone()))?;
        let der = SigningKey::from_bytes(&seed)
            .to_pkcs8_der()
            .map_err(|error| KeyError::Encoding(error.to_string()))?;
        Ok(CurrentKey {
            key_id: record.key_id.clone(),
            encoding: EncodingKey::from_ed_der(der.as_bytes()),
            created_at: record.created_at,
        })
    }
}

/// Verifying keys read straight from identity's own ring, for identity's own callers.
#[derive(Debug, Clone)]
pub struct StoreKeySource {
    ring: Arc<KeyRing>,
}

impl StoreKeySource {
    /// A source reading `ring`.
    pub fn new(ring: Arc<KeyRing>) -> Self {
        Self { ring }
    }
}

#[async_trait::async_trait]
impl KeySource for StoreKeySource {
    async fn verifying_keys(&self) -> Result<Vec<VerifyingKey>, AuthError> {
        let keys = self
            .ring
            .published()
            .await
            .map_err(|error| AuthError::KeysUnavailable(error.to_string()))?;
        keys.iter()
            .map(|key| VerifyingKey::from_pem(&key.key_id, &key.public_key_pem))
            .collect()
    }

    /// The ring answers from memory (re-reading the store at most once a minute), so an
    /// unknown key id may be looked up again at once: a key rotated a moment ago is found.
    fn refetch_backoff(&self) -> Duration {
        Duration::ZERO
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sealed_keys_open_only_with_their_key_and_id() {
        let kek = KeyEncryptionKey::generate();
        let (nonce, sealed) = kek.seal("k1", b"secret seed").expect("seals");
        assert_eq!(
            kek.open("k1", &nonce, &sealed).expect("opens"),
            b"secret seed"
        );
        assert!(kek.open("k2", &nonce, &sealed).is_err());
        assert!(
            KeyEncryptionKey::generate()
                .open("k1", &nonce, &sealed)
                .is_err()
        );
        let (other_nonce, _) = kek.seal("k1", b"secret seed").expect("seals");
        assert_ne!(nonce, other_nonce);
        assert!(!format!("{kek:?}").contains(&kek.to_base64()));
    }
}
