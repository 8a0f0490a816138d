//! The real `lrs` binary as a person runs it: `lrs up` serves the suite, the client commands
//! work against it, and SIGTERM stops it with exit status 0 within the grace period.

use std::fs;
use std::path::Path;
use std::process::{Child, Command, ExitStatus, Output, Stdio};
use std::time::{Duration, Instant};

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

// Multi-threaded: the test blocks on child processes, and the connections it opened to wait
// for health must still be able to close when the suite asks them to while it drains.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn up_serves_the_suite_and_stops_on_sigterm_with_status_zero() {
    let folder = tempfile::tempdir().expect("a temporary folder");
    let data_dir = folder.path().join("lrs-data");
    let address = free_address();
    let endpoint = format!("http://{address}");
    let stdout = fs::File::create(folder.path().join("up.out")).expect("a log file");
    let grace = format!("{}s", GRACE.as_secs());

    let child = Command::new(LRS)
        .args([
            "up",
            "--demo",
            "--listen",
            &address,
            "--shutdown-grace",
            &grace,
        ])
        .arg("--data-dir")
        .arg(&data_dir)
        .env_remove("LRS_KEY_ENCRYPTION_KEY")
        .stdin(Stdio::null())
        .stdout(stdout)
        .stderr(Stdio::inherit())
        .spawn()
        .expect("lrs up starts");
    let mut running = Running(child);
    let serving = lrs_suite::wait_until_serving(
        &endpoint,
        lrs_suite::PUBLIC_SERVICES,
        Duration::from_secs(60),
    )
    .await;
    serving.expect("the suite reports SERVING through the gateway");

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
    let new_password = "a-brand-new-password-1";
    let login = lrs(
        &endpoint,
        &session,
        &["login", "--username", "admin"],
        &[
            ("LRS_PASSWORD", password),
            ("LRS_NEW_PASSWORD", new_password),
        ],
    );
    assert!(login.status.success(), "login: {}", text(&login.stderr));
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

    let pid = running.0.id().to_string();
    let signalled = Command::new("kill").args(["-TERM", &pid]).status();
    assert!(signalled.expect("kill runs").success());
    let exit = wait_for_exit(&mut running.0, GRACE + Duration::from_secs(2));
    let (status, took) = exit.expect("lrs up exits within the grace period");
    assert!(status.success(), "lrs up exited with {status}");
    assert!(took <= GRACE, "stopped in {took:?}");

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
