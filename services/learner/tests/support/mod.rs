//! A learner service started on 127.0.0.1:0 over a fresh test database, with a stopped clock
//! and clients that carry tokens signed by a test Ed25519 key.

#![allow(dead_code)]

use std::net::SocketAddr;
use std::sync::Arc;

use chrono::NaiveDate;
use ed25519_dalek::pkcs8::spki::der::pem::LineEnding;
use ed25519_dalek::pkcs8::{EncodePrivateKey, EncodePublicKey};
use jsonwebtoken::{Algorithm, EncodingKey, Header};
use lrs_fields::date::FixedClock;
use lrs_learner::{Learner, LearnerConfig};
use lrs_proto::learner::v1 as pb;
use lrs_proto::learner::v1::learner_internal_service_client::LearnerInternalServiceClient;
use lrs_proto::learner::v1::learner_service_client::LearnerServiceClient;
use lrs_proto::types::v1 as types;
use lrs_server::auth::{
    AuthError, Authenticator, Claims, ISSUER, KeySource, OrganisationKind, PrincipalKind, Role,
    VerifyingKey,
};
use lrs_store::Database;
use tokio::net::TcpListener;
use tokio::task::JoinHandle;
use tokio_stream::wrappers::TcpListenerStream;
use tonic::transport::Channel;
use tonic::{Code, Request, Status};

/// The organisation most tests act as.
pub const ORG_A: &str = "0b0c6a0e-2f44-4bb6-9a55-7bd1c1c0c001";
/// Another organisation.
pub const ORG_B: &str = "0b0c6a0e-2f44-4bb6-9a55-7bd1c1c0c002";
/// The service desk's organisation.
pub const DESK: &str = "0b0c6a0e-2f44-4bb6-9a55-7bd1c1c0c003";

struct TestKeys {
    public_pem: String,
}

#[async_trait::async_trait]
impl KeySource for TestKeys {
    async fn verifying_keys(&self) -> Result<Vec<VerifyingKey>, AuthError> {
        Ok(vec![VerifyingKey::from_pem("test", &self.public_pem)?])
    }
}

/// A running learner service.
pub struct Suite {
    pub address: SocketAddr,
    pub clock: Arc<FixedClock>,
    pub learner: Learner,
    signing: EncodingKey,
    server: JoinHandle<()>,
}

impl Drop for Suite {
    fn drop(&mut self) {
        self.server.abort();
    }
}

/// The clock's date: 1 September 2025, noon in London.
pub fn today() -> NaiveDate {
    NaiveDate::from_ymd_opt(2025, 9, 1).expect("a real date")
}

impl Suite {
    /// Opens the service on `database` and serves it.
    pub async fn start(database: &Database) -> Suite {
        Suite::start_with(database, LearnerConfig::default()).await
    }

    /// As [`Suite::start`], with a configuration.
    pub async fn start_with(database: &Database, config: LearnerConfig) -> Suite {
        let signing = ed25519_dalek::SigningKey::generate(&mut rand_core::OsRng);
        let private = signing.to_pkcs8_pem(LineEnding::LF).expect("encodable key");
        let public_pem = signing
            .verifying_key()
            .to_public_key_pem(LineEnding::LF)
            .expect("encodable key");
        let signing = EncodingKey::from_ed_pem(private.as_bytes()).expect("valid pem");
        let authenticator = Authenticator::new(TestKeys { public_pem });

        let clock = Arc::new(FixedClock::on_london_date(today()));
        let learner = Learner::open(database, &config, clock.clone(), authenticator)
            .await
            .expect("the learner service opens");

        let listener = TcpListener::bind("127.0.0.1:0").await.expect("a free port");
        let address = listener.local_addr().expect("an address");
        let router = tonic::transport::Server::builder()
            .add_service(learner.grpc_service())
            .add_service(learner.internal_grpc_service());
        let server = tokio::spawn(async move {
            let _ = router
                .serve_with_incoming(TcpListenerStream::new(listener))
                .await;
        });
        Suite {
            address,
            clock,
            learner,
            signing,
            server,
        }
    }

    async fn channel(&self) -> Channel {
        Channel::from_shared(format!("http://{}", self.address))
            .expect("a valid url")
            .connect()
            .await
            .expect("the server accepts connections")
    }

    /// A signed token for a principal with `roles` in `organisation`.
    pub fn token(&self, kind: PrincipalKind, organisation: Option<&str>, roles: &[Role]) -> String {
        let now = chrono::Utc::now().timestamp();
        let claims = Claims {
            iss: ISSUER.into(),
            sub: format!(
                "{kind:?}-{}",
                roles.first().map(|r| r.as_str()).unwrap_or("none")
            ),
            exp: now + 600,
            iat: now,
            jti: format!("{now}-{}", rand::random::<u64>()),
            kind,
            org: organisation.map(str::to_owned),
            org_kind: organisation.map(|_| OrganisationKind::LearnerRegistrationBody),
            ukprn: None,
            roles: roles.to_vec(),
            uln: None,
            pwd_change: false,
        };
        let mut header = Header::new(Algorithm::EdDSA);
        header.kid = Some("test".into());
        jsonwebtoken::encode(&header, &claims, &self.signing).expect("signable claims")
    }

    /// A client of the public service as a user with `roles` in `organisation`.
    pub async fn client(&self, organisation: &str, roles: &[Role]) -> Client {
        Client {
            inner: LearnerServiceClient::new(self.channel().await),
            token: self.token(PrincipalKind::User, Some(organisation), roles),
        }
    }

    /// A client of the internal service as a service.
    pub async fn service(&self) -> Internal {
        Internal {
            inner: LearnerInternalServiceClient::new(self.channel().await),
            token: self.token(PrincipalKind::Service, None, &[Role::Service]),
        }
    }

    /// A client of the internal service with a user's token (to be refused).
    pub async fn internal_as_user(&self, organisation: &str, roles: &[Role]) -> Internal {
        Internal {
            inner: LearnerInternalServiceClient::new(self.channel().await),
            token: self.token(PrincipalKind::User, Some(organisation), roles),
        }
    }
}

fn signed<T>(token: &str, message: T) -> Request<T> {
    let mut request = Request::new(message);
    let value = format!("Bearer {token}").parse().expect("an ascii header");
    request.metadata_mut().insert("authorization", value);
    request
}

/// A signed-in client of LearnerService.
#[derive(Clone)]
pub struct Client {
    pub inner: LearnerServiceClient<Channel>,
    pub token: String,
}

impl Client {
    pub async fn find(
        &mut self,
        search: pb::DemographicSearch,
    ) -> Result<pb::FindLearnersByDemographicsResponse, Status> {
        let request = pb::FindLearnersByDemographicsRequest {
            search: Some(search),
        };
        Ok(self
            .inner
            .find_learners_by_demographics(signed(&self.token, request))
            .await?
            .into_inner())
    }

    pub async fn register(
        &mut self,
        learner: pb::Learner,
        request_id: &str,
    ) -> Result<pb::Learner, Status> {
        let request = pb::RegisterLearnerRequest {
            learner: Some(learner),
            request_id: request_id.into(),
        };
        let response = self
            .inner
            .register_learner(signed(&self.token, request))
            .await?
            .into_inner();
        assert_eq!(response.response_code, "WSRC0005");
        Ok(response.learner.expect("the registered learner"))
    }

    pub async fn get(
        &mut self,
        uln: &str,
        given: &str,
        family: &str,
        find_type: pb::FindType,
    ) -> Result<pb::GetLearnerResponse, Status> {
        let request = pb::GetLearnerRequest {
            uln: uln.into(),
            given_name: given.into(),
            family_name: family.into(),
            find_type: find_type as i32,
        };
        Ok(self
            .inner
            .get_learner(signed(&self.token, request))
            .await?
            .into_inner())
    }

    pub async fn update(
        &mut self,
        learner: pb::Learner,
        paths: &[&str],
    ) -> Result<pb::UpdateLearnerResponse, Status> {
        let request = pb::UpdateLearnerRequest {
            learner: Some(learner),
            update_mask: Some(prost_types::FieldMask {
                paths: paths.iter().map(|p| (*p).to_owned()).collect(),
            }),
        };
        Ok(self
            .inner
            .update_learner(signed(&self.token, request))
            .await?
            .into_inner())
    }

    pub async fn verify(
        &mut self,
        learner: pb::LearnerToVerify,
    ) -> Result<pb::Verification, Status> {
        let request = pb::VerifyLearnerRequest {
            learner: Some(learner),
        };
        let response = self
            .inner
            .verify_learner(signed(&self.token, request))
            .await?
            .into_inner();
        Ok(response.verification.expect("a verdict"))
    }

    pub async fn batch_get(
        &mut self,
        ulns: Vec<String>,
    ) -> Result<pb::BatchGetLearnersResponse, Status> {
        let request = pb::BatchGetLearnersRequest { ulns };
        Ok(self
            .inner
            .batch_get_learners(signed(&self.token, request))
            .await?
            .into_inner())
    }

    pub async fn merge(
        &mut self,
        master: &str,
        duplicate: &str,
    ) -> Result<pb::MergeLearnersResponse, Status> {
        let request = pb::MergeLearnersRequest {
            master_uln: master.into(),
            duplicate_uln: duplicate.into(),
            reason: "same person registered twice".into(),
        };
        Ok(self
            .inner
            .merge_learners(signed(&self.token, request))
            .await?
            .into_inner())
    }

    pub async fn unmerge(&mut self, linked: &str) -> Result<pb::UnmergeLearnersResponse, Status> {
        let request = pb::UnmergeLearnersRequest {
            linked_uln: linked.into(),
            reason: "merged by mistake".into(),
        };
        Ok(self
            .inner
            .unmerge_learners(signed(&self.token, request))
            .await?
            .into_inner())
    }

    pub async fn validate(&mut self, uln: &str) -> Result<pb::ValidateUlnResponse, Status> {
        let request = pb::ValidateUlnRequest { uln: uln.into() };
        Ok(self
            .inner
            .validate_uln(signed(&self.token, request))
            .await?
            .into_inner())
    }

    /// Searches for `learner`'s five keys, then registers it.
    pub async fn find_and_register(&mut self, learner: pb::Learner) -> pb::Learner {
        let found = self
            .find(search_for(&learner))
            .await
            .expect("the search runs");
        assert!(
            found.outcome != pb::MatchOutcome::ExactMatch as i32,
            "expected no exact match, got {found:?}"
        );
        self.register(learner, "")
            .await
            .expect("the registration succeeds")
    }
}

/// A signed-in client of LearnerInternalService.
#[derive(Clone)]
pub struct Internal {
    pub inner: LearnerInternalServiceClient<Channel>,
    pub token: String,
}

impl Internal {
    pub fn signed<T>(&self, message: T) -> Request<T> {
        signed(&self.token, message)
    }
}

/// A valid learner to register.
pub fn learner(
    given: &str,
    family: &str,
    born: (i32, i32, i32),
    gender: types::Gender,
    postcode: &str,
) -> pb::Learner {
    pb::Learner {
        title: "Ms".into(),
        given_name: given.into(),
        family_name: family.into(),
        postcode: postcode.into(),
        date_of_birth: Some(types::Date {
            year: born.0,
            month: born.1,
            day: born.2,
        }),
        gender: gender as i32,
        verification_type: pb::VerificationType::Passport as i32,
        ability_to_share: types::AbilityToShare::NoticeSeen as i32,
        ..pb::Learner::default()
    }
}

/// Jane Smith, born 14 March 2008, female, CV4 9EE.
pub fn jane() -> pb::Learner {
    learner(
        "Jane",
        "Smith",
        (2008, 3, 14),
        types::Gender::Female,
        "CV4 9EE",
    )
}

/// The search for a learner's five keys.
pub fn search_for(learner: &pb::Learner) -> pb::DemographicSearch {
    pb::DemographicSearch {
        given_name: learner.given_name.clone(),
        family_name: learner.family_name.clone(),
        date_of_birth: learner.date_of_birth,
        gender: learner.gender,
        postcode: learner.postcode.clone(),
        ..pb::DemographicSearch::default()
    }
}

/// The reason of a failed call.
pub fn reason(status: &Status) -> String {
    lrs_server::error::status_reason(status).unwrap_or_default()
}

/// Asserts a status's code and reason.
pub fn assert_failure<T: std::fmt::Debug>(result: Result<T, Status>, code: Code, expected: &str) {
    match result {
        Ok(value) => panic!("expected {code:?} {expected}, got {value:?}"),
        Err(status) => {
            assert_eq!(status.code(), code, "{status:?}");
            assert_eq!(reason(&status), expected, "{status:?}");
        }
    }
}
