//! Reaching a running suite: the endpoint flags, the channel, and calls signed in with the
//! saved session (refreshed first when its access token has expired).

use std::fmt;
use std::path::{Path, PathBuf};
use std::time::Duration;

use lrs_proto::identity::v1::RefreshTokenRequest;
use lrs_proto::identity::v1::identity_service_client::IdentityServiceClient;
use tonic::metadata::{Ascii, MetadataValue};
use tonic::service::Interceptor;
use tonic::service::interceptor::InterceptedService;
use tonic::transport::{Channel, Endpoint};
use tonic::{Code, Request, Status};

use crate::failure::CliError;
use crate::session::{self, Session};

/// How long to wait for the suite to accept a connection.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(5);

/// Where the suite is and where the sign-in is kept; shared by every client command.
#[derive(Debug, Clone, clap::Args)]
pub struct ClientArgs {
    /// The suite's public endpoint (its gateway).
    #[arg(
        long = "endpoint",
        env = "LRS_ENDPOINT",
        default_value = "http://127.0.0.1:50051",
        global = true
    )]
    pub endpoint: String,

    /// The file that keeps the sign-in [default: ~/.config/lrs/session.json].
    #[arg(long = "session-file", env = "LRS_SESSION_FILE", global = true)]
    pub session_file: Option<PathBuf>,
}

impl ClientArgs {
    /// The endpoint without a trailing slash, as sessions record it.
    pub fn endpoint(&self) -> &str {
        self.endpoint.trim().trim_end_matches('/')
    }

    /// Where the session file is.
    pub fn session_path(&self) -> Result<PathBuf, CliError> {
        session::session_path(self.session_file.as_deref())
    }

    /// A channel to the endpoint, connected now so that a suite that is down is reported at
    /// once.
    pub async fn channel(&self) -> Result<Channel, CliError> {
        connect(self.endpoint()).await
    }

    /// A channel that signs every call with the saved session, refreshing the session first
    /// when its access token has expired.
    pub async fn signed_in(&self) -> Result<SignedIn, CliError> {
        check_scheme(self.endpoint())?;
        let path = self.session_path()?;
        let session = Session::load(&path)?
            .filter(|session| session.endpoint == self.endpoint())
            .ok_or_else(|| CliError::NotSignedIn {
                endpoint: self.endpoint().to_owned(),
            })?;
        let channel = self.channel().await?;

        let session = if session.is_expired(session::now()) {
            refresh(&channel, session, &path).await?
        } else {
            session
        };

        let bearer = Bearer::new(&session.access_token)?;
        Ok(SignedIn {
            channel: InterceptedService::new(channel, bearer),
            session,
        })
    }
}

/// A channel to `endpoint`, connected now so that a suite that is down is reported at once.
pub async fn connect(endpoint: &str) -> Result<Channel, CliError> {
    check_scheme(endpoint)?;
    let target =
        Endpoint::from_shared(endpoint.to_owned()).map_err(|source| CliError::InvalidEndpoint {
            endpoint: endpoint.to_owned(),
            source,
        })?;
    target
        .connect_timeout(CONNECT_TIMEOUT)
        .connect()
        .await
        .map_err(|source| CliError::Connect {
            endpoint: endpoint.to_owned(),
            source,
        })
}

/// Refuses an endpoint that the client would reach otherwise than it says: without a scheme,
/// or over `https://`, which the client does not speak (it would send the call, password and
/// all, as plain HTTP/2).
fn check_scheme(endpoint: &str) -> Result<(), CliError> {
    match endpoint.split_once("://") {
        Some(("http", _)) => Ok(()),
        Some(("https", _)) => Err(CliError::TlsEndpoint {
            endpoint: endpoint.to_owned(),
        }),
        _ => Err(CliError::EndpointScheme {
            endpoint: endpoint.to_owned(),
        }),
    }
}

/// Exchanges the session's refresh token for new tokens and saves them.
async fn refresh(channel: &Channel, session: Session, path: &Path) -> Result<Session, CliError> {
    let request = RefreshTokenRequest {
        refresh_token: session.refresh_token.clone(),
    };
    let response = IdentityServiceClient::new(channel.clone())
        .refresh_token(request)
        .await;
    let tokens = match response {
        Ok(response) => response.into_inner(),
        Err(status) if status.code() == Code::Unauthenticated => {
            return Err(CliError::SessionExpired {
                endpoint: session.endpoint,
            });
        }
        Err(status) => return Err(status.into()),
    };

    let refreshed = Session {
        access_token: tokens.access_token,
        refresh_token: tokens.refresh_token,
        expires_at: session::now() + tokens.expires_in,
        ..session
    };
    refreshed.save(path)?;
    Ok(refreshed)
}

/// A channel whose calls carry the session's access token.
pub type AuthChannel = InterceptedService<Channel, Bearer>;

/// The signed-in connection to a suite. Build any service's client on [`SignedIn::channel`].
#[derive(Debug, Clone)]
pub struct SignedIn {
    channel: AuthChannel,
    session: Session,
}

impl SignedIn {
    /// The channel; `LearnerServiceClient::new(signed_in.channel())` and the like.
    pub fn channel(&self) -> AuthChannel {
        self.channel.clone()
    }

    /// A client of the identity service.
    pub fn identity(&self) -> IdentityServiceClient<AuthChannel> {
        IdentityServiceClient::new(self.channel())
    }

    /// The session in use.
    pub fn session(&self) -> &Session {
        &self.session
    }
}

/// Adds `authorization: Bearer <token>` to every call.
#[derive(Clone)]
pub struct Bearer(MetadataValue<Ascii>);

impl Bearer {
    /// An interceptor that sends `token`.
    pub fn new(token: &str) -> Result<Self, CliError> {
        let mut value: MetadataValue<Ascii> = format!("Bearer {token}")
            .parse()
            .map_err(|_| CliError::UnusableToken)?;
        value.set_sensitive(true);
        Ok(Self(value))
    }
}

/// Shows no token.
impl fmt::Debug for Bearer {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Bearer(***)")
    }
}

impl Interceptor for Bearer {
    fn call(&mut self, mut request: Request<()>) -> Result<Request<()>, Status> {
        request
            .metadata_mut()
            .insert("authorization", self.0.clone());
        Ok(request)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_plain_http_endpoints_are_taken() {
        assert!(check_scheme("http://127.0.0.1:50051").is_ok());
        assert!(matches!(
            check_scheme("https://lrs.example:443"),
            Err(CliError::TlsEndpoint { .. })
        ));
        assert!(matches!(
            check_scheme("127.0.0.1:50051"),
            Err(CliError::EndpointScheme { .. })
        ));
        assert!(matches!(
            check_scheme("grpc://127.0.0.1:50051"),
            Err(CliError::EndpointScheme { .. })
        ));
    }

    #[tokio::test]
    async fn a_tls_endpoint_is_refused_before_anything_is_sent() {
        let args = ClientArgs {
            endpoint: "https://127.0.0.1:1".to_owned(),
            session_file: None,
        };
        let refused = args.channel().await.expect_err("no TLS");
        assert!(refused.to_string().contains("does not speak"), "{refused}");
        let Err(refused) = args.signed_in().await else {
            panic!("signed in over TLS");
        };
        assert!(matches!(refused, CliError::TlsEndpoint { .. }));
    }
}
