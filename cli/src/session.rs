//! The saved sign-in: the tokens `lrs login` obtained, kept in a file only its owner can read.
//!
//! The file is `$LRS_SESSION_FILE` when set, else `$XDG_CONFIG_HOME/lrs/session.json`, else
//! `~/.config/lrs/session.json`. It is written to a temporary file created with mode 0600 in
//! the same folder (itself created 0700) and renamed over the old one, so it is never
//! readable by others, not even for a moment, and never half-written.

use std::fs;
use std::io::{self, Write};
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use crate::failure::CliError;

/// The environment variable that overrides where the session is kept.
pub const SESSION_FILE_ENV: &str = "LRS_SESSION_FILE";

/// How long before its expiry an access token is already treated as expired, so that it
/// does not run out while a call is on its way.
pub const EXPIRY_MARGIN_SECONDS: i64 = 30;

/// One sign-in to one suite.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Session {
    /// The endpoint signed in to (`http://127.0.0.1:50051`).
    pub endpoint: String,
    /// The username signed in with.
    pub username: String,
    /// The user's id.
    pub user_id: String,
    /// The bearer access token.
    pub access_token: String,
    /// The refresh token that gets the next access token.
    pub refresh_token: String,
    /// When the access token expires, seconds since the Unix epoch.
    pub expires_at: i64,
}

impl Session {
    /// True when the access token has expired at `now` (seconds since the Unix epoch), or is
    /// about to.
    pub fn is_expired(&self, now: i64) -> bool {
        now >= self.expires_at - EXPIRY_MARGIN_SECONDS
    }

    /// Reads the session at `path`; `None` when there is none.
    pub fn load(path: &Path) -> Result<Option<Self>, CliError> {
        let text = match fs::read_to_string(path) {
            Ok(text) => text,
            Err(error) if error.kind() == io::ErrorKind::NotFound => return Ok(None),
            Err(source) => return Err(file_error(path, source)),
        };
        serde_json::from_str(&text)
            .map(Some)
            .map_err(|source| CliError::SessionFormat {
                path: path.to_owned(),
                source,
            })
    }

    /// Writes the session to `path`, readable and writable by its owner only.
    pub fn save(&self, path: &Path) -> Result<(), CliError> {
        let folder = path
            .parent()
            .filter(|folder| !folder.as_os_str().is_empty());
        if let Some(folder) = folder {
            create_private_folder(folder).map_err(|source| file_error(folder, source))?;
        }
        let json = serde_json::to_vec_pretty(self).map_err(CliError::Json)?;

        let temporary = temporary_path(path);
        let written = write_private(&temporary, &json).and_then(|()| fs::rename(&temporary, path));
        if let Err(source) = written {
            let _ = fs::remove_file(&temporary);
            return Err(file_error(path, source));
        }
        Ok(())
    }

    /// Removes the session file at `path`; true when there was one.
    pub fn remove(path: &Path) -> Result<bool, CliError> {
        match fs::remove_file(path) {
            Ok(()) => Ok(true),
            Err(error) if error.kind() == io::ErrorKind::NotFound => Ok(false),
            Err(source) => Err(file_error(path, source)),
        }
    }
}

/// Where the session is kept: `explicit` when given (from `--session-file` or
/// `LRS_SESSION_FILE`), else under the user's configuration folder.
pub fn session_path(explicit: Option<&Path>) -> Result<PathBuf, CliError> {
    if let Some(path) = explicit.filter(|path| !path.as_os_str().is_empty()) {
        return Ok(path.to_owned());
    }
    let config_home = std::env::var_os("XDG_CONFIG_HOME")
        .filter(|folder| !folder.is_empty())
        .map(PathBuf::from)
        .or_else(|| {
            std::env::var_os("HOME")
                .filter(|home| !home.is_empty())
                .map(|home| PathBuf::from(home).join(".config"))
        })
        .ok_or(CliError::NoSessionLocation)?;
    Ok(config_home.join("lrs").join("session.json"))
}

/// The current time in seconds since the Unix epoch.
pub fn now() -> i64 {
    chrono::Utc::now().timestamp()
}

fn file_error(path: &Path, source: io::Error) -> CliError {
    CliError::SessionFile {
        path: path.to_owned(),
        source,
    }
}

fn temporary_path(path: &Path) -> PathBuf {
    let mut name = path.file_name().unwrap_or_default().to_owned();
    name.push(format!(".{}.tmp", std::process::id()));
    path.with_file_name(name)
}

fn create_private_folder(folder: &Path) -> io::Result<()> {
    let mut builder = fs::DirBuilder::new();
    builder.recursive(true);
    #[cfg(unix)]
    std::os::unix::fs::DirBuilderExt::mode(&mut builder, 0o700);
    builder.create(folder)
}

/// Creates `path` afresh with mode 0600 (never widening an existing file) and writes `bytes`.
fn write_private(path: &Path, bytes: &[u8]) -> io::Result<()> {
    let _ = fs::remove_file(path);
    let mut options = fs::OpenOptions::new();
    options.write(true).create_new(true);
    #[cfg(unix)]
    std::os::unix::fs::OpenOptionsExt::mode(&mut options, 0o600);
    let mut file = options.open(path)?;
    file.write_all(bytes)?;
    file.sync_all()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn session() -> Session {
        Session {
            endpoint: "http://127.0.0.1:50051".into(),
            username: "admin".into(),
            user_id: "u-1".into(),
            access_token: "access".into(),
            refresh_token: "refresh".into(),
            expires_at: 1_000,
        }
    }

    #[test]
    fn saves_owner_only_and_loads_back() {
        let folder = tempfile::tempdir().unwrap();
        let path = folder.path().join("nested/lrs/session.json");

        session().save(&path).unwrap();

        assert_eq!(Session::load(&path).unwrap(), Some(session()));
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            let mode = fs::metadata(&path).unwrap().permissions().mode();
            assert_eq!(mode & 0o777, 0o600);
            let parent = fs::metadata(path.parent().unwrap()).unwrap();
            assert_eq!(parent.permissions().mode() & 0o777, 0o700);
        }
    }

    #[test]
    fn overwrites_and_removes() {
        let folder = tempfile::tempdir().unwrap();
        let path = folder.path().join("session.json");
        session().save(&path).unwrap();
        let mut newer = session();
        newer.access_token = "newer".into();

        newer.save(&path).unwrap();

        assert_eq!(Session::load(&path).unwrap(), Some(newer));
        assert!(Session::remove(&path).unwrap());
        assert!(!Session::remove(&path).unwrap());
        assert_eq!(Session::load(&path).unwrap(), None);
    }

    #[test]
    fn a_damaged_file_says_so() {
        let folder = tempfile::tempdir().unwrap();
        let path = folder.path().join("session.json");
        fs::write(&path, "not json").unwrap();

        let error = Session::load(&path).unwrap_err();

        assert!(matches!(error, CliError::SessionFormat { .. }), "{error:?}");
    }

    #[test]
    fn expiry_counts_the_margin() {
        let session = session();
        assert!(!session.is_expired(1_000 - EXPIRY_MARGIN_SECONDS - 1));
        assert!(session.is_expired(1_000 - EXPIRY_MARGIN_SECONDS));
        assert!(session.is_expired(2_000));
    }

    #[test]
    fn an_explicit_path_wins() {
        let path = session_path(Some(Path::new("/tmp/x/session.json"))).unwrap();
        assert_eq!(path, PathBuf::from("/tmp/x/session.json"));
    }
}
