//! Who is calling: access-token claims, their verification, and the caller they identify.
//!
//! Identity signs access tokens (EdDSA JWTs with a key id). Every service and the gateway
//! verify them with the public keys that identity publishes through `GetSigningKeys`, and
//! cache each verified token by the SHA-256 of its text until it expires, so verification
//! costs one hash and one map lookup on the hot path.

use std::collections::HashMap;
use std::fmt;
use std::sync::Arc;
use std::time::{Duration, Instant};

use dashmap::DashMap;
use jsonwebtoken::{Algorithm, DecodingKey, Validation};
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};
use tokio::sync::RwLock;
use tonic::metadata::MetadataMap;

use crate::error::{Failure, ToFailure};

/// The issuer every LRS access token carries.
pub const ISSUER: &str = "lrs";

/// Metadata key of the organisation a service acts for (a UUID); honoured only from services.
pub const ACTING_ORGANISATION_HEADER: &str = "x-lrs-acting-organisation";
/// Metadata key of the user a service acts for (a UUID); honoured only from services.
pub const ACTING_USER_HEADER: &str = "x-lrs-acting-user";
/// Metadata key of the request id, taken from the caller or generated, and returned.
pub const REQUEST_ID_HEADER: &str = "x-request-id";

/// A role held by a user or machine credential. Mirrors `lrs.identity.v1.Role`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum Role {
    /// Manages its own organisation's users and credentials.
    OrgAdmin,
    /// Submits and follows its organisation's batch files.
    BatchUser,
    /// Finds, registers and updates learners; reads PLRs.
    OnlineUser,
    /// Finds learners and reads PLRs only.
    ViewOnly,
    /// An awarding organisation's user.
    AoUser,
    /// The operator.
    ServiceDesk,
    /// A learner reading their own record.
    Learner,
    /// One of the suite's own services.
    Service,
}

impl Role {
    /// The name used in tokens and messages (`ONLINE_USER`).
    pub fn as_str(self) -> &'static str {
        match self {
            Role::OrgAdmin => "ORG_ADMIN",
            Role::BatchUser => "BATCH_USER",
            Role::OnlineUser => "ONLINE_USER",
            Role::ViewOnly => "VIEW_ONLY",
            Role::AoUser => "AO_USER",
            Role::ServiceDesk => "SERVICE_DESK",
            Role::Learner => "LEARNER",
            Role::Service => "SERVICE",
        }
    }
}

impl fmt::Display for Role {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// What kind of principal a token was issued to.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum PrincipalKind {
    /// A person who belongs to an organisation.
    User,
    /// A learner's own account.
    Learner,
    /// An integrator's machine credential.
    Client,
    /// One of the suite's own services.
    Service,
}

/// The kind of organisation a caller belongs to. Mirrors `lrs.identity.v1.OrganisationKind`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum OrganisationKind {
    /// A learner registration body.
    LearnerRegistrationBody,
    /// An awarding organisation.
    AwardingOrganisation,
    /// The service desk.
    ServiceDesk,
}

/// The claims of an LRS access token.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Claims {
    /// Always [`ISSUER`].
    pub iss: String,
    /// The user id, client id or service name.
    pub sub: String,
    /// Expiry, seconds since the Unix epoch.
    pub exp: i64,
    /// Issue time, seconds since the Unix epoch.
    pub iat: i64,
    /// A unique token id.
    pub jti: String,
    /// What the token was issued to.
    pub kind: PrincipalKind,
    /// The principal's organisation id; absent for learners.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub org: Option<String>,
    /// The kind of that organisation.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub org_kind: Option<OrganisationKind>,
    /// That organisation's UKPRN, when it has one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ukprn: Option<String>,
    /// The roles held.
    pub roles: Vec<Role>,
    /// A learner account's ULN.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub uln: Option<String>,
    /// True on the restricted token of a user who must change a generated password.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub pwd_change: bool,
}

/// The organisation and user that a service acts for.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ActingFor {
    /// The organisation's id.
    pub organisation_id: String,
    /// The user's id, when the work was started by a person.
    pub user_id: Option<String>,
}

/// A verified caller.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Caller {
    /// The verified token's claims.
    pub claims: Claims,
    /// Set when a service calls on behalf of an organisation (and user).
    pub acting_for: Option<ActingFor>,
}

impl Caller {
    /// The user id, client id or service name.
    pub fn subject(&self) -> &str {
        &self.claims.sub
    }

    /// The caller's own organisation id; `None` for learners.
    pub fn organisation_id(&self) -> Option<&str> {
        self.claims.org.as_deref()
    }

    /// The organisation whose work this is: the one a service acts for, else the caller's.
    pub fn effective_organisation_id(&self) -> Option<&str> {
        match &self.acting_for {
            Some(acting) => Some(&acting.organisation_id),
            None => self.organisation_id(),
        }
    }

    /// True when the caller holds `role`.
    pub fn has_role(&self, role: Role) -> bool {
        self.claims.roles.contains(&role)
    }

    /// True when the caller is the service desk.
    pub fn is_service_desk(&self) -> bool {
        self.has_role(Role::ServiceDesk)
    }

    /// True when the caller is one of the suite's own services.
    pub fn is_service(&self) -> bool {
        self.claims.kind == PrincipalKind::Service && self.has_role(Role::Service)
    }

    /// Succeeds when the caller holds at least one of `roles`; the service desk always does.
    pub fn require_any(&self, roles: &[Role]) -> Result<(), AuthError> {
        if self.is_service_desk() || roles.iter().any(|role| self.has_role(*role)) {
            Ok(())
        } else {
            Err(AuthError::RoleRequired(roles.to_vec()))
        }
    }

    /// Succeeds only for the suite's own services (the internal RPCs).
    pub fn require_service(&self) -> Result<(), AuthError> {
        if self.is_service() {
            Ok(())
        } else {
            Err(AuthError::ServiceOnly)
        }
    }
}

/// Why a caller was not accepted.
#[derive(Debug, thiserror::Error)]
pub enum AuthError {
    /// No `authorization` metadata.
    #[error("this call needs an access token: send `authorization: Bearer <token>`")]
    MissingToken,
    /// The metadata is not `Bearer <token>`.
    #[error("the authorization metadata must be `Bearer <token>`")]
    MalformedHeader,
    /// Bad signature, unknown key, wrong issuer or malformed token.
    #[error("the access token is not valid")]
    InvalidToken,
    /// The token's expiry has passed.
    #[error("the access token has expired: sign in or refresh it")]
    ExpiredToken,
    /// The restricted token of a user who must change their password first.
    #[error("the password must be changed before anything else: call ChangePassword")]
    PasswordChangeRequired,
    /// The caller's roles do not allow the call.
    #[error("your roles do not allow this call")]
    RoleNotPermitted,
    /// The call needs one of these roles, and the caller has none of them.
    #[error("your roles do not allow this call: it needs one of {}", role_list(.0))]
    RoleRequired(Vec<Role>),
    /// An internal RPC called by something that is not a service.
    #[error("this call is only for the suite's own services")]
    ServiceOnly,
    /// Acting-for metadata that is malformed or sent by a caller that is not a service.
    #[error("acting-for metadata is accepted only from the suite's services")]
    ActingForRefused,
    /// The signing keys could not be fetched.
    #[error("the signing keys could not be fetched: {0}")]
    KeysUnavailable(String),
}

/// `ONLINE_USER, VIEW_ONLY or the service desk`.
fn role_list(roles: &[Role]) -> String {
    let mut names: Vec<&str> = roles.iter().map(|role| role.as_str()).collect();
    names.push("the service desk");
    let last = names.pop().unwrap_or_default();
    if names.is_empty() {
        last.to_owned()
    } else {
        format!("{} or {last}", names.join(", "))
    }
}

impl ToFailure for AuthError {
    fn to_failure(self) -> Failure {
        let message = self.to_string();
        match self {
            AuthError::MissingToken => Failure::unauthenticated("MISSING_TOKEN", message),
            AuthError::MalformedHeader => Failure::unauthenticated("MALFORMED_TOKEN", message),
            AuthError::InvalidToken => Failure::unauthenticated("INVALID_TOKEN", message),
            AuthError::ExpiredToken => Failure::unauthenticated("EXPIRED_TOKEN", message),
            AuthError::PasswordChangeRequired => {
                Failure::failed_precondition("PASSWORD_CHANGE_REQUIRED", message)
            }
            AuthError::RoleNotPermitted | AuthError::RoleRequired(_) => {
                Failure::permission_denied("ROLE_NOT_PERMITTED", message)
            }
            AuthError::ServiceOnly => Failure::permission_denied("SERVICE_ONLY", message),
            AuthError::ActingForRefused => {
                Failure::permission_denied("ACTING_FOR_REFUSED", message)
            }
            AuthError::KeysUnavailable(_) => {
                Failure::unavailable("SIGNING_KEYS_UNAVAILABLE", message)
            }
        }
    }
}

/// A public key that verifies tokens, by key id.
#[derive(Clone)]
pub struct VerifyingKey {
    /// The `kid` of tokens it verifies.
    pub key_id: String,
    /// The decoding key.
    pub key: DecodingKey,
}

impl fmt::Debug for VerifyingKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("VerifyingKey")
            .field("key_id", &self.key_id)
            .finish()
    }
}

impl VerifyingKey {
    /// Reads an Ed25519 public key in PEM (SubjectPublicKeyInfo) form.
    pub fn from_pem(key_id: impl Into<String>, pem: &str) -> Result<Self, AuthError> {
        let key = DecodingKey::from_ed_pem(pem.as_bytes())
            .map_err(|error| AuthError::KeysUnavailable(format!("bad public key: {error}")))?;
        Ok(Self {
            key_id: key_id.into(),
            key,
        })
    }
}

/// Where verifying keys come from: identity's `GetSigningKeys`, or identity's own store.
#[async_trait::async_trait]
pub trait KeySource: Send + Sync + 'static {
    /// Every key that may have signed a token still valid.
    async fn verifying_keys(&self) -> Result<Vec<VerifyingKey>, AuthError>;

    /// How long after a fetch to wait before fetching again for a key id it lacked. Remote
    /// sources keep the default, so a stream of bad tokens cannot flood identity; a source
    /// that reads memory may answer zero, so a key rotated a moment ago is found at once.
    fn refetch_backoff(&self) -> Duration {
        KEY_REFRESH_BACKOFF
    }
}

/// Fetches keys from the identity service over gRPC.
#[derive(Debug, Clone)]
pub struct IdentityKeySource {
    client: lrs_proto::identity::v1::identity_service_client::IdentityServiceClient<
        tonic::transport::Channel,
    >,
}

impl IdentityKeySource {
    /// Uses `channel` to reach the identity service.
    pub fn new(channel: tonic::transport::Channel) -> Self {
        Self {
            client: lrs_proto::identity::v1::identity_service_client::IdentityServiceClient::new(
                channel,
            ),
        }
    }
}

#[async_trait::async_trait]
impl KeySource for IdentityKeySource {
    async fn verifying_keys(&self) -> Result<Vec<VerifyingKey>, AuthError> {
        let request = lrs_proto::identity::v1::GetSigningKeysRequest {};
        let response = self
            .client
            .clone()
            .get_signing_keys(request)
            .await
            .map_err(|status| AuthError::KeysUnavailable(status.message().to_owned()))?;
        response
            .into_inner()
            .keys
            .iter()
            .map(|key| VerifyingKey::from_pem(&key.key_id, &key.public_key_pem))
            .collect()
    }
}

/// How long to wait before asking the key source again after it failed or lacked a key id.
const KEY_REFRESH_BACKOFF: Duration = Duration::from_secs(5);

#[derive(Default)]
struct KeyCache {
    keys: HashMap<String, DecodingKey>,
    fetched_at: Option<Instant>,
}

/// Verifies access tokens and caches each verified token until it expires.
#[derive(Clone)]
pub struct Authenticator {
    source: Arc<dyn KeySource>,
    keys: Arc<RwLock<KeyCache>>,
    verified: Arc<DashMap<[u8; 32], Claims>>,
}

impl fmt::Debug for Authenticator {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Authenticator")
            .field("cached_tokens", &self.verified.len())
            .finish()
    }
}

impl Authenticator {
    /// An authenticator that takes its keys from `source`.
    pub fn new(source: impl KeySource) -> Self {
        Self {
            source: Arc::new(source),
            keys: Arc::default(),
            verified: Arc::default(),
        }
    }

    /// Verifies the bearer token in `metadata` and returns the caller. A restricted token
    /// (password change pending) is refused.
    pub async fn caller(&self, metadata: &MetadataMap) -> Result<Caller, AuthError> {
        let caller = self.caller_allowing_password_change(metadata).await?;
        if caller.claims.pwd_change {
            return Err(AuthError::PasswordChangeRequired);
        }
        Ok(caller)
    }

    /// As [`Authenticator::caller`], but accepts the restricted token of a user who must
    /// change their password; only ChangePassword uses it.
    pub async fn caller_allowing_password_change(
        &self,
        metadata: &MetadataMap,
    ) -> Result<Caller, AuthError> {
        let token = bearer_token(metadata)?;
        let claims = self.verify(token).await?;
        let acting_for = acting_for(metadata, &claims)?;
        Ok(Caller { claims, acting_for })
    }

    /// Verifies a token's signature, issuer and expiry, using the cache when it can.
    pub async fn verify(&self, token: &str) -> Result<Claims, AuthError> {
        let digest: [u8; 32] = Sha256::digest(token.as_bytes()).into();
        let now = chrono::Utc::now().timestamp();
        if let Some(claims) = self.verified.get(&digest) {
            if claims.exp > now {
                return Ok(claims.clone());
            }
            drop(claims);
            self.verified.remove(&digest);
            return Err(AuthError::ExpiredToken);
        }

        let claims = self.verify_signature(token).await?;
        if claims.exp <= now {
            return Err(AuthError::ExpiredToken);
        }
        if self.verified.len() > 100_000 {
            self.verified.retain(|_, cached| cached.exp > now);
        }
        self.verified.insert(digest, claims.clone());
        Ok(claims)
    }

    async fn verify_signature(&self, token: &str) -> Result<Claims, AuthError> {
        let header = jsonwebtoken::decode_header(token).map_err(|_| AuthError::InvalidToken)?;
        let key_id = header.kid.ok_or(AuthError::InvalidToken)?;
        if header.alg != Algorithm::EdDSA {
            return Err(AuthError::InvalidToken);
        }
        let key = self.key(&key_id).await?;

        let mut validation = Validation::new(Algorithm::EdDSA);
        validation.set_issuer(&[ISSUER]);
        validation.set_required_spec_claims(&["exp", "iss", "sub"]);
        validation.leeway = 0;
        match jsonwebtoken::decode::<Claims>(token, &key, &validation) {
            Ok(data) => Ok(data.claims),
            Err(error) => match error.kind() {
                jsonwebtoken::errors::ErrorKind::ExpiredSignature => Err(AuthError::ExpiredToken),
                _ => Err(AuthError::InvalidToken),
            },
        }
    }

    async fn key(&self, key_id: &str) -> Result<DecodingKey, AuthError> {
        if let Some(key) = self.keys.read().await.keys.get(key_id) {
            return Ok(key.clone());
        }

        let mut cache = self.keys.write().await;
        if let Some(key) = cache.keys.get(key_id) {
            return Ok(key.clone());
        }
        let recently = cache
            .fetched_at
            .is_some_and(|at| at.elapsed() < self.source.refetch_backoff());
        if recently {
            return Err(AuthError::InvalidToken);
        }
        cache.fetched_at = Some(Instant::now());
        let keys = self.source.verifying_keys().await?;
        cache.keys = keys.into_iter().map(|k| (k.key_id, k.key)).collect();
        cache
            .keys
            .get(key_id)
            .cloned()
            .ok_or(AuthError::InvalidToken)
    }
}

fn bearer_token(metadata: &MetadataMap) -> Result<&str, AuthError> {
    let value = metadata
        .get("authorization")
        .ok_or(AuthError::MissingToken)?
        .to_str()
        .map_err(|_| AuthError::MalformedHeader)?;
    let token = value
        .strip_prefix("Bearer ")
        .or_else(|| value.strip_prefix("bearer "))
        .ok_or(AuthError::MalformedHeader)?
        .trim();
    if token.is_empty() {
        return Err(AuthError::MalformedHeader);
    }
    Ok(token)
}

fn acting_for(metadata: &MetadataMap, claims: &Claims) -> Result<Option<ActingFor>, AuthError> {
    let organisation = metadata.get(ACTING_ORGANISATION_HEADER);
    let user = metadata.get(ACTING_USER_HEADER);
    if organisation.is_none() && user.is_none() {
        return Ok(None);
    }
    let is_service = claims.kind == PrincipalKind::Service && claims.roles.contains(&Role::Service);
    let organisation_id = organisation
        .filter(|_| is_service)
        .and_then(|value| value.to_str().ok())
        .filter(|value| uuid::Uuid::parse_str(value).is_ok())
        .ok_or(AuthError::ActingForRefused)?;
    let user_id = match user {
        Some(value) => Some(
            value
                .to_str()
                .ok()
                .filter(|value| uuid::Uuid::parse_str(value).is_ok())
                .ok_or(AuthError::ActingForRefused)?
                .to_owned(),
        ),
        None => None,
    };
    Ok(Some(ActingFor {
        organisation_id: organisation_id.to_owned(),
        user_id,
    }))
}

/// The request id of a call: the `x-request-id` metadata (set by the request-id layer when
/// the caller sent none), or empty when absent.
pub fn request_id(metadata: &MetadataMap) -> &str {
    metadata
        .get(REQUEST_ID_HEADER)
        .and_then(|value| value.to_str().ok())
        .unwrap_or("")
}

#[cfg(test)]
mod tests {
    use ed25519_dalek::pkcs8::spki::der::pem::LineEnding;
    use ed25519_dalek::pkcs8::{EncodePrivateKey, EncodePublicKey};
    use jsonwebtoken::{EncodingKey, Header};
    use std::sync::atomic::{AtomicUsize, Ordering};

    use super::*;

    struct StaticKeys {
        pem: String,
        fetches: Arc<AtomicUsize>,
    }

    #[async_trait::async_trait]
    impl KeySource for StaticKeys {
        async fn verifying_keys(&self) -> Result<Vec<VerifyingKey>, AuthError> {
            self.fetches.fetch_add(1, Ordering::SeqCst);
            Ok(vec![VerifyingKey::from_pem("k1", &self.pem)?])
        }
    }

    fn keypair() -> (EncodingKey, String) {
        let signing = ed25519_dalek::SigningKey::generate(&mut rand_core::OsRng);
        let private = signing.to_pkcs8_pem(LineEnding::LF).expect("encodable key");
        let public = signing
            .verifying_key()
            .to_public_key_pem(LineEnding::LF)
            .expect("encodable key");
        let encoding = EncodingKey::from_ed_pem(private.as_bytes()).expect("valid pem");
        (encoding, public)
    }

    fn claims(expires_in: i64) -> Claims {
        let now = chrono::Utc::now().timestamp();
        Claims {
            iss: ISSUER.into(),
            sub: "user-1".into(),
            exp: now + expires_in,
            iat: now,
            jti: "t1".into(),
            kind: PrincipalKind::User,
            org: Some("0b0c6a0e-2f44-4bb6-9a55-7bd1c1c0c001".into()),
            org_kind: Some(OrganisationKind::LearnerRegistrationBody),
            ukprn: Some("10000001".into()),
            roles: vec![Role::OnlineUser],
            uln: None,
            pwd_change: false,
        }
    }

    fn sign(key: &EncodingKey, kid: &str, claims: &Claims) -> String {
        let mut header = Header::new(Algorithm::EdDSA);
        header.kid = Some(kid.into());
        jsonwebtoken::encode(&header, claims, key).expect("signable claims")
    }

    fn metadata_with(token: &str) -> MetadataMap {
        let mut metadata = MetadataMap::new();
        let value = format!("Bearer {token}").parse().expect("ascii header");
        metadata.insert("authorization", value);
        metadata
    }

    fn authenticator(public: String) -> (Authenticator, Arc<AtomicUsize>) {
        let fetches = Arc::new(AtomicUsize::new(0));
        let source = StaticKeys {
            pem: public,
            fetches: fetches.clone(),
        };
        (Authenticator::new(source), fetches)
    }

    #[tokio::test]
    async fn verifies_a_token_once_and_then_from_cache() {
        let (key, public) = keypair();
        let (authenticator, fetches) = authenticator(public);
        let token = sign(&key, "k1", &claims(600));

        let first = authenticator
            .caller(&metadata_with(&token))
            .await
            .expect("valid");
        let second = authenticator
            .caller(&metadata_with(&token))
            .await
            .expect("valid");

        assert_eq!(first, second);
        assert_eq!(first.claims.roles, [Role::OnlineUser]);
        assert_eq!(fetches.load(Ordering::SeqCst), 1);
    }

    #[tokio::test]
    async fn refuses_expired_forged_and_missing_tokens() {
        let (key, public) = keypair();
        let (forger, _) = keypair();
        let (authenticator, _) = authenticator(public);

        let expired = sign(&key, "k1", &claims(-10));
        let forged = sign(&forger, "k1", &claims(600));
        let unknown_kid = sign(&key, "k9", &claims(600));

        let outcome = authenticator.caller(&metadata_with(&expired)).await;
        assert!(matches!(outcome, Err(AuthError::ExpiredToken)));
        let outcome = authenticator.caller(&metadata_with(&forged)).await;
        assert!(matches!(outcome, Err(AuthError::InvalidToken)));
        let outcome = authenticator.caller(&metadata_with(&unknown_kid)).await;
        assert!(matches!(outcome, Err(AuthError::InvalidToken)));
        let outcome = authenticator.caller(&MetadataMap::new()).await;
        assert!(matches!(outcome, Err(AuthError::MissingToken)));
    }

    #[tokio::test]
    async fn restricted_tokens_only_change_passwords() {
        let (key, public) = keypair();
        let (authenticator, _) = authenticator(public);
        let mut restricted = claims(600);
        restricted.pwd_change = true;
        let metadata = metadata_with(&sign(&key, "k1", &restricted));

        let outcome = authenticator.caller(&metadata).await;
        assert!(matches!(outcome, Err(AuthError::PasswordChangeRequired)));
        let caller = authenticator
            .caller_allowing_password_change(&metadata)
            .await;
        assert!(caller.is_ok());
    }

    #[tokio::test]
    async fn acting_for_is_honoured_only_from_services() {
        let (key, public) = keypair();
        let (authenticator, _) = authenticator(public);
        let organisation = "0b0c6a0e-2f44-4bb6-9a55-7bd1c1c0c002";

        let mut user = metadata_with(&sign(&key, "k1", &claims(600)));
        user.insert(
            ACTING_ORGANISATION_HEADER,
            organisation.parse().expect("ascii"),
        );
        let outcome = authenticator.caller(&user).await;
        assert!(matches!(outcome, Err(AuthError::ActingForRefused)));

        let mut service_claims = claims(600);
        service_claims.kind = PrincipalKind::Service;
        service_claims.roles = vec![Role::Service];
        let mut service = metadata_with(&sign(&key, "k1", &service_claims));
        service.insert(
            ACTING_ORGANISATION_HEADER,
            organisation.parse().expect("ascii"),
        );
        let caller = authenticator
            .caller(&service)
            .await
            .expect("service may act for");
        assert_eq!(caller.effective_organisation_id(), Some(organisation));
    }

    #[test]
    fn service_desk_passes_every_role_check() {
        let mut desk = claims(600);
        desk.roles = vec![Role::ServiceDesk];
        let caller = Caller {
            claims: desk,
            acting_for: None,
        };
        assert!(caller.require_any(&[Role::BatchUser]).is_ok());
        assert!(caller.require_service().is_err());
    }

    #[test]
    fn a_refused_role_check_names_the_roles_that_would_pass() {
        let mut user = claims(600);
        user.roles = vec![Role::AoUser];
        let caller = Caller {
            claims: user,
            acting_for: None,
        };
        let refused = caller
            .require_any(&[Role::OnlineUser, Role::ViewOnly])
            .expect_err("an AO user may not search");
        assert_eq!(
            refused.to_string(),
            "your roles do not allow this call: it needs one of ONLINE_USER, VIEW_ONLY or the \
             service desk"
        );
    }
}
