//! The real `lrs` binary as a person runs it: `lrs up` serves the suite, the client commands
//! (organisations, users, machine credentials) work against it, and SIGTERM stops it with
//! exit status 0 within the grace period.

use std::fs;
use std::path::Path;
use std::process::{Child, Command, ExitStatus, Output, Stdio};
use std::time::{Duration, Instant};

use lrs_proto::identity::v1::identity_service_client::IdentityServiceClient;
use lrs_proto::identity::v1::{IssueClientTokenRequest, IssueClientTokenResponse};

const LRS: &str = env!("CARGO_BIN_EXE_lrs");
const GRACE: Duration = Duration::from_secs(5);

/// Ends the child if the test fails before it is stopped.
struct Running(Child);

impl Drop for Running {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn free_address() -> String {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("a free port");
    listener.local_addr().expect("an address").to_string()
}

#[cfg(unix)]
fn mode(path: &Path) -> u32 {
    use std::os::unix::fs::PermissionsExt;
    fs::metadata(path)
        .expect("the file exists")
        .permissions()
        .mode()
        & 0o777
}

/// Runs a client command against the suite, with the session kept in `session`.
fn lrs(endpoint: &str, session: &Path, args: &[&str], env: &[(&str, &str)]) -> Output {
    let mut command = Command::new(LRS);
    command
        .args(args)
        .env("LRS_ENDPOINT", endpoint)
        .env("LRS_SESSION_FILE", session)
        .stdin(Stdio::null());
    for (name, value) in env {
        command.env(name, value);
    }
    command.output().expect("lrs runs")
}

fn text(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}

/// Waits for the child to exit, for at most `limit`.
fn wait_for_exit(child: &mut Child, limit: Duration) -> Option<(ExitStatus, Duration)> {
    let started = Instant::now();
    while started.elapsed() <= limit {
        if let Some(status) = child.try_wait().expect("the child can be waited on") {
            return Some((status, started.elapsed()));
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    None
}

/// Starts `lrs up` with `extra` flags, its output in `<folder>/up.out`, and waits until it
/// reports SERVING through the gateway.
async fn start_up(folder: &Path, data_dir: &Path, address: &str, extra: &[&str]) -> Running {
    let stdout = fs::File::create(folder.join("up.out")).expect("a log file");
    let grace = format!("{}s", GRACE.as_secs());
    let child = Command::new(LRS)
        .args(["up", "--listen", address, "--shutdown-grace", &grace])
        .args(extra)
        .arg("--data-dir")
        .arg(data_dir)
        .env_remove("LRS_KEY_ENCRYPTION_KEY")
        .stdin(Stdio::null())
        .stdout(stdout)
        .stderr(Stdio::inherit())
        .spawn()
        .expect("lrs up starts");
    let running = Running(child);

    let endpoint = format!("http://{address}");
    let serving = lrs_suite::wait_until_serving(
        &endpoint,
        lrs_suite::PUBLIC_SERVICES,
        Duration::from_secs(60),
    )
    .await;
    serving.expect("the suite reports SERVING through the gateway");
    running
}

/// Signs the bootstrap admin in with `lrs login`, changing the generated password.
fn login_admin(endpoint: &str, session: &Path, data_dir: &Path) {
    let password_file = data_dir.join(lrs_suite::ADMIN_PASSWORD_FILE);
    let password = fs::read_to_string(&password_file).expect("the password file");
    let login = lrs(
        endpoint,
        session,
        &["login", "--username", "admin"],
        &[
            ("LRS_PASSWORD", password.trim()),
            ("LRS_NEW_PASSWORD", "a-brand-new-password-1"),
        ],
    );
    assert!(login.status.success(), "login: {}", text(&login.stderr));
}

/// Stops `lrs up` with SIGTERM and checks it exits with status 0 within the grace period.
fn stop_up(mut running: Running) {
    let pid = running.0.id().to_string();
    let signalled = Command::new("kill").args(["-TERM", &pid]).status();
    assert!(signalled.expect("kill runs").success());
    let exit = wait_for_exit(&mut running.0, GRACE + Duration::from_secs(2));
    let (status, took) = exit.expect("lrs up exits within the grace period");
    assert!(status.success(), "lrs up exited with {status}");
    assert!(took <= GRACE, "stopped in {took:?}");
}

// Multi-threaded: the test blocks on child processes, and the connections it opened to wait
// for health must still be able to close when the suite asks them to while it drains.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn up_serves_the_suite_and_stops_on_sigterm_with_status_zero() {
    let folder = tempfile::tempdir().expect("a temporary folder");
    let data_dir = folder.path().join("lrs-data");
    let address = free_address();
    let endpoint = format!("http://{address}");
    let running = start_up(folder.path(), &data_dir, &address, &["--demo"]).await;

    let password_file = data_dir.join(lrs_suite::ADMIN_PASSWORD_FILE);
    let password = fs::read_to_string(&password_file).expect("the password file");
    let password = password.trim();
    #[cfg(unix)]
    assert_eq!(
        mode(&password_file),
        0o600,
        "the password file is owner-only"
    );

    let session = folder.path().join("config/lrs/session.json");
    login_admin(&endpoint, &session, &data_dir);
    #[cfg(unix)]
    assert_eq!(mode(&session), 0o600, "the session file is owner-only");

    let listed = lrs(&endpoint, &session, &["org", "list", "--json"], &[]);
    assert!(
        listed.status.success(),
        "org list: {}",
        text(&listed.stderr)
    );
    assert!(
        text(&listed.stdout).contains("\"10000001\""),
        "the demo LRB is listed"
    );

    let refused = lrs(
        &endpoint,
        &session,
        &[
            "user",
            "create",
            "--username",
            "x",
            "--given-name",
            "",
            "--family-name",
            "Y",
        ],
        &[("LRS_USER_ROLES", "org-admin")],
    );
    assert!(!refused.status.success(), "a bad user is refused");
    let errors = text(&refused.stderr);
    assert!(errors.contains("INVALID_ARGUMENT"), "{errors}");
    assert!(errors.contains("field user.username"), "{errors}");
    assert!(errors.contains("field user.given_name"), "{errors}");

    stop_up(running);

    let printed = fs::read_to_string(folder.path().join("up.out")).expect("the output");
    assert!(
        printed.contains(&password_file.display().to_string()),
        "{printed}"
    );
    assert!(
        !printed.contains(password),
        "the password never reaches the output"
    );
    assert!(printed.contains("reported not serving"), "{printed}");
}

/// The JSON `lrs credential create --json` prints.
fn created_credential(output: &Output) -> (String, String) {
    assert!(
        output.status.success(),
        "credential create: {}",
        text(&output.stderr)
    );
    let printed: serde_json::Value = serde_json::from_slice(&output.stdout).expect("JSON");
    let field = |value: &serde_json::Value| value.as_str().unwrap_or_default().to_owned();
    let client_id = field(&printed["credential"]["client_id"]);
    let client_secret = field(&printed["client_secret"]);
    assert!(
        !client_id.is_empty() && !client_secret.is_empty(),
        "{printed}"
    );
    (client_id, client_secret)
}

/// Exchanges a credential for an access token through the gateway, as a service does.
async fn issue_client_token(
    endpoint: &str,
    client_id: &str,
    client_secret: &str,
) -> Result<IssueClientTokenResponse, tonic::Status> {
    let mut identity = IdentityServiceClient::connect(endpoint.to_owned())
        .await
        .expect("the gateway accepts connections");
    let request = IssueClientTokenRequest {
        client_id: client_id.to_owned(),
        client_secret: client_secret.to_owned(),
    };
    identity
        .issue_client_token(request)
        .await
        .map(tonic::Response::into_inner)
}

// An operator on Kubernetes replaces batch's credential: revokes the one in force, creates
// a new one and hands its id and secret to batch, which exchanges them for a token.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn credential_commands_create_a_service_credential_that_issues_tokens() {
    let folder = tempfile::tempdir().expect("a temporary folder");
    let data_dir = folder.path().join("lrs-data");
    let address = free_address();
    let endpoint = format!("http://{address}");
    let running = start_up(folder.path(), &data_dir, &address, &[]).await;
    let session = folder.path().join("config/lrs/session.json");
    login_admin(&endpoint, &session, &data_dir);

    let listed = lrs(&endpoint, &session, &["credential", "list", "--json"], &[]);
    assert!(listed.status.success(), "list: {}", text(&listed.stderr));
    let listed: serde_json::Value = serde_json::from_slice(&listed.stdout).expect("JSON");
    let credentials = listed["credentials"]
        .as_array()
        .cloned()
        .unwrap_or_default();
    let started_with = credentials
        .iter()
        .find(|credential| credential["service"] == "batch")
        .and_then(|credential| credential["client_id"].as_str())
        .expect("lrs up created batch's credential")
        .to_owned();

    let taken = lrs(
        &endpoint,
        &session,
        &["credential", "create", "--service", "batch"],
        &[],
    );
    assert!(
        !taken.status.success(),
        "a service has one credential in force"
    );
    let revoked = lrs(
        &endpoint,
        &session,
        &["credential", "revoke", &started_with],
        &[],
    );
    assert!(
        revoked.status.success(),
        "revoke: {}",
        text(&revoked.stderr)
    );

    let created = lrs(
        &endpoint,
        &session,
        &["credential", "create", "--service", "batch", "--json"],
        &[],
    );
    let (client_id, client_secret) = created_credential(&created);
    let issued = issue_client_token(&endpoint, &client_id, &client_secret).await;
    let issued = issued.expect("the new service credential issues a token");
    assert!(!issued.access_token.is_empty());
    assert!(issued.expires_in > 0);

    let revoked = lrs(
        &endpoint,
        &session,
        &["credential", "revoke", &client_id],
        &[],
    );
    assert!(
        revoked.status.success(),
        "revoke: {}",
        text(&revoked.stderr)
    );
    let refused = issue_client_token(&endpoint, &client_id, &client_secret).await;
    let refused = refused.expect_err("a revoked credential issues no token");
    assert_eq!(refused.code(), tonic::Code::Unauthenticated);

    let integrator = lrs(
        &endpoint,
        &session,
        &[
            "credential",
            "create",
            "--role",
            "service-desk",
            "--display-name",
            "operator scripts",
        ],
        &[],
    );
    let printed = text(&integrator.stdout);
    assert!(
        integrator.status.success(),
        "create: {}",
        text(&integrator.stderr)
    );
    assert!(printed.contains("shown only now"), "{printed}");

    stop_up(running);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn batch_commands_answer_in_json() {
    let folder = tempfile::tempdir().expect("a temporary folder");
    let data_dir = folder.path().join("lrs-data");
    let address = free_address();
    let endpoint = format!("http://{address}");
    let running = start_up(folder.path(), &data_dir, &address, &["--demo"]).await;
    let session = folder.path().join("config/lrs/session.json");
    let login = lrs(
        &endpoint,
        &session,
        &["login", "--username", "demo.lrb.batch"],
        &[("LRS_PASSWORD", "demo-password-1")],
    );
    assert!(login.status.success(), "login: {}", text(&login.stderr));

    let sample = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../services/batch/tests/fixtures/LRB_10000001_031220261200.CSV");
    let file = folder.path().join("LRB_10000001_031220261200.CSV");
    fs::copy(&sample, &file).expect("the sample file copies");
    let file = file.to_str().expect("a UTF-8 path");

    let submitted = lrs(
        &endpoint,
        &session,
        &["batch", "submit", file, "--json"],
        &[],
    );
    assert!(submitted.status.success(), "{}", text(&submitted.stderr));
    let job: serde_json::Value = serde_json::from_slice(&submitted.stdout).expect("one JSON job");
    assert_eq!(job["status"], "COMPLETED");
    assert_eq!(job["records"], 16);
    assert_eq!(job["new_ulns"], 7);
    let output_file = job["output_file"].as_str().expect("where the output went");
    assert!(Path::new(output_file).is_file());
    let job_id = job["job_id"].as_str().expect("a job id");

    let status = lrs(
        &endpoint,
        &session,
        &["batch", "status", job_id, "--json"],
        &[],
    );
    let status: serde_json::Value = serde_json::from_slice(&status.stdout).expect("JSON");
    assert_eq!(status["job_id"], job_id);
    assert_eq!(status["rejected"], job["rejected"]);

    let records = lrs(
        &endpoint,
        &session,
        &["batch", "output", job_id, "--records", "--json"],
        &[],
    );
    let records: Vec<serde_json::Value> =
        serde_json::from_slice(&records.stdout).expect("JSON records");
    assert_eq!(records.len(), 16);
    let under_age = records
        .iter()
        .find(|record| record["mis_identifier"] == "STU0009")
        .expect("STU0009 is in the output");
    assert_eq!(under_age["return_code"], "RC013");
    assert_eq!(under_age["outcome"], "AGE_OUT_OF_RANGE");

    let exceptions = lrs(
        &endpoint,
        &session,
        &["batch", "exceptions", job_id],
        &[("LRS_JSON", "true")],
    );
    let exceptions: Vec<serde_json::Value> =
        serde_json::from_slice(&exceptions.stdout).expect("JSON exceptions");
    assert!(
        exceptions
            .iter()
            .all(|exception| exception["job_id"] == job_id)
    );

    stop_up(running);
}
