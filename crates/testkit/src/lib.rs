//! Test support: the whole suite running in-process, on a database of its own, and clients
//! signed in to it.
//!
//! [`TestSuite::start`] brings the suite up exactly as `lrs up` does (the assembly is
//! [`lrs_suite`], shared with the command) on a free port, with its data in a fresh
//! temporary folder: SQLite files, or, when `DATABASE_URL` is set, a fresh PostgreSQL
//! database of its own (one schema per service), dropped afterwards. It returns once gRPC
//! health answers SERVING through the gateway for `""` and every public service; nothing
//! sleeps.
//!
//! Clients talk to the suite only through its public endpoint and the generated stubs:
//! [`TestSuite::admin`] signs in as the bootstrap admin (changing the generated password the
//! first time), [`TestSuite::sign_in`] as anyone, changing a generated password when the
//! suite requires it, and [`TestSuite::demo_user`] as a demonstration account.
//!
//! ```ignore
//! let suite = TestSuite::start().await;
//! let admin = suite.admin().await;
//! let organisations = admin.identity().list_organisations(request).await?;
//! suite.stop().await;
//! ```

use std::fmt;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use lrs_proto::batch::v1::batch_service_client::BatchServiceClient;
use lrs_proto::identity::v1::identity_service_client::IdentityServiceClient;
use lrs_proto::identity::v1::{ChangePasswordRequest, SignInRequest};
use lrs_proto::learner::v1::learner_service_client::LearnerServiceClient;
use lrs_store::testing::TestDatabase;
use lrs_suite::{RunningSuite, Suite, SuiteConfig};
use tempfile::TempDir;
use tokio::sync::Mutex;
use tonic::metadata::{Ascii, MetadataValue};
use tonic::service::Interceptor;
use tonic::service::interceptor::InterceptedService;
use tonic::transport::{Channel, Endpoint};
use tonic::{Request, Status};

pub use lrs_identity::bootstrap::{ADMIN_USERNAME, DEMO_PASSWORD};
pub use lrs_suite::{PUBLIC_SERVICES, ServingStatus, SuiteConfig as Config, health_status};

/// The suite, running in this process for one test.
pub struct TestSuite {
    suite: Option<RunningSuite>,
    endpoint: String,
    channel: Channel,
    admin_password: Arc<Mutex<String>>,
    grace: Duration,
    // Dropped last: the data outlives the servers.
    database: Option<TestDatabase>,
    folder: TempDir,
}

impl fmt::Debug for TestSuite {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("TestSuite")
            .field("endpoint", &self.endpoint)
            .field("folder", &self.folder.path())
            .finish_non_exhaustive()
    }
}

impl TestSuite {
    /// Starts the suite with every setting at its default.
    ///
    /// # Panics
    ///
    /// When the suite cannot start: a test cannot go on without it.
    pub async fn start() -> Self {
        Self::start_with(|_| {}).await
    }

    /// Starts the suite after `configure` has adjusted its configuration (`demo`, the grace
    /// period, the lockout policy, the clock, ...). The address, database and data folder are
    /// the test kit's.
    ///
    /// # Panics
    ///
    /// When the suite cannot start.
    pub async fn start_with(configure: impl FnOnce(&mut SuiteConfig)) -> Self {
        let folder = tempfile::Builder::new()
            .prefix("lrs-suite-")
            .tempdir()
            .expect("a temporary folder for the suite");
        let database = match lrs_store::testing::admin_url_from_env() {
            Some(url) => TestDatabase::postgres(&url).await,
            None => TestDatabase::sqlite(),
        }
        .expect("a fresh test database");

        let listen: SocketAddr = "127.0.0.1:0".parse().expect("a valid address");
        let data_dir = folder.path().join("lrs-data");
        let mut config = SuiteConfig::new(listen, database.config().clone(), &data_dir);
        configure(&mut config);
        config.listen = listen;
        config.database = database.config().clone();
        config.data_dir = data_dir;
        let grace = config.shutdown_grace;

        let suite = Suite::start(config).await.expect("the suite starts");
        let admin = suite.admin().expect("the suite bootstrapped an admin");
        let admin_password = std::fs::read_to_string(&admin.password_file)
            .expect("the admin-password file")
            .trim()
            .to_owned();
        let endpoint = suite.endpoint();
        let channel = Endpoint::from_shared(endpoint.clone())
            .expect("a valid endpoint")
            .connect_lazy();

        Self {
            suite: Some(suite),
            endpoint,
            channel,
            admin_password: Arc::new(Mutex::new(admin_password)),
            grace,
            database: Some(database),
            folder,
        }
    }

    /// The public endpoint (the gateway), `http://127.0.0.1:<port>`.
    pub fn endpoint(&self) -> &str {
        &self.endpoint
    }

    /// The running suite, for its addresses and accounts.
    pub fn running(&self) -> &RunningSuite {
        self.suite
            .as_ref()
            .expect("the suite is running until stopped")
    }

    /// The folder with the suite's data (`admin-password`, `key-encryption-key`, SQLite files).
    pub fn data_dir(&self) -> PathBuf {
        self.folder.path().join("lrs-data")
    }

    /// The grace period the suite was started with.
    pub fn grace(&self) -> Duration {
        self.grace
    }

    /// A channel to the public endpoint, without a token.
    pub fn channel(&self) -> Channel {
        self.channel.clone()
    }

    /// An identity client without a token.
    pub fn identity(&self) -> IdentityServiceClient<Channel> {
        IdentityServiceClient::new(self.channel())
    }

    /// The bootstrap admin, signed in. The first call changes the generated password.
    ///
    /// # Panics
    ///
    /// When the admin cannot sign in.
    pub async fn admin(&self) -> SignedIn {
        let mut password = self.admin_password.lock().await;
        let (signed_in, changed) = self
            .sign_in_changing(ADMIN_USERNAME, &password)
            .await
            .expect("the bootstrap admin signs in");
        if let Some(changed) = changed {
            *password = changed;
        }
        signed_in
    }

    /// Signs `username` in; a generated password is changed to a new random one.
    pub async fn sign_in(&self, username: &str, password: &str) -> Result<SignedIn, Status> {
        self.sign_in_changing(username, password)
            .await
            .map(|(signed_in, _)| signed_in)
    }

    /// A demonstration account signed in (the suite must have been started with `demo`).
    ///
    /// # Panics
    ///
    /// When the account cannot sign in.
    pub async fn demo_user(&self, username: &str) -> SignedIn {
        self.sign_in(username, DEMO_PASSWORD)
            .await
            .unwrap_or_else(|status| panic!("demo user {username} signs in: {status:?}"))
    }

    /// Signs in and, when the password must be changed first, changes it to a new random
    /// one; returns the new password when it did.
    pub async fn sign_in_changing(
        &self,
        username: &str,
        password: &str,
    ) -> Result<(SignedIn, Option<String>), Status> {
        let request = SignInRequest {
            username: username.to_owned(),
            password: password.to_owned(),
        };
        let signed_in = self.identity().sign_in(request).await?.into_inner();
        if !signed_in.password_change_required {
            let client = SignedIn::new(self.channel(), username, &signed_in.access_token)?;
            return Ok((client, None));
        }

        let new_password = format!("changed-{}", uuid::Uuid::new_v4().simple());
        let restricted = SignedIn::new(self.channel(), username, &signed_in.access_token)?;
        let request = ChangePasswordRequest {
            current_password: password.to_owned(),
            new_password: new_password.clone(),
        };
        let changed = restricted
            .identity()
            .change_password(request)
            .await?
            .into_inner();
        let client = SignedIn::new(self.channel(), username, &changed.access_token)?;
        Ok((client, Some(new_password)))
    }

    /// Stops the suite as SIGTERM does: NOT_SERVING everywhere, drain, close. Returns how
    /// long it took.
    ///
    /// # Panics
    ///
    /// When a server stopped with an error.
    pub async fn stop(mut self) -> Duration {
        let started = tokio::time::Instant::now();
        if let Some(suite) = self.suite.take() {
            suite.stop().await.expect("the suite stops cleanly");
        }
        let took = started.elapsed();
        if let Some(database) = self.database.take()
            && let Err(error) = database.close().await
        {
            eprintln!("test database left behind: {error}");
        }
        took
    }

    /// Takes the running suite out, to stop it from another task while the test watches.
    /// The test database stays until the test kit is dropped.
    pub fn take_running(&mut self) -> RunningSuite {
        self.suite
            .take()
            .expect("the suite is running until stopped")
    }
}

/// A client signed in as one user: every call carries the user's access token.
#[derive(Debug, Clone)]
pub struct SignedIn {
    username: String,
    channel: InterceptedService<Channel, Bearer>,
}

impl SignedIn {
    fn new(channel: Channel, username: &str, token: &str) -> Result<Self, Status> {
        Ok(Self {
            username: username.to_owned(),
            channel: InterceptedService::new(channel, Bearer::new(token)?),
        })
    }

    /// The username signed in.
    pub fn username(&self) -> &str {
        &self.username
    }

    /// The signed-in channel, for any generated client.
    pub fn channel(&self) -> InterceptedService<Channel, Bearer> {
        self.channel.clone()
    }

    /// An identity client.
    pub fn identity(&self) -> IdentityServiceClient<InterceptedService<Channel, Bearer>> {
        IdentityServiceClient::new(self.channel())
    }

    /// A learner client.
    pub fn learner(&self) -> LearnerServiceClient<InterceptedService<Channel, Bearer>> {
        LearnerServiceClient::new(self.channel())
    }

    /// A batch client.
    pub fn batch(&self) -> BatchServiceClient<InterceptedService<Channel, Bearer>> {
        BatchServiceClient::new(self.channel())
    }
}

/// Sends `authorization: Bearer <token>` on every call.
#[derive(Clone)]
pub struct Bearer(MetadataValue<Ascii>);

impl Bearer {
    /// An interceptor sending `token`.
    pub fn new(token: &str) -> Result<Self, Status> {
        format!("Bearer {token}")
            .parse()
            .map(Self)
            .map_err(|_| Status::internal("the suite returned a token that is not ASCII"))
    }
}

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

/// The reason in a status's `google.rpc.ErrorInfo`, empty when it has none.
pub fn reason(status: &Status) -> String {
    use tonic_types::StatusExt;
    status
        .get_error_details()
        .error_info()
        .map(|info| info.reason.clone())
        .unwrap_or_default()
}
