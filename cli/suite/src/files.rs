//! The files the suite keeps beside its data: the bootstrap admin's first password, the
//! generated key-encryption key, and the lock that keeps a second `lrs up` off the folder. All
//! are created owner-only (mode 0600) from the start, never widened afterwards.

use std::fs;
use std::io::{self, Write};
use std::path::{Path, PathBuf};

use lrs_identity::KeyEncryptionKey;

use crate::SuiteError;

/// The file in the data folder that holds the bootstrap admin's generated first password.
pub const ADMIN_PASSWORD_FILE: &str = "admin-password";

/// The file in the data folder that holds the key-encryption key `lrs up` generated, used
/// when `--key-encryption-key` is not given.
pub const KEY_ENCRYPTION_KEY_FILE: &str = "key-encryption-key";

/// The file in the data folder that a running suite holds locked.
pub const LOCK_FILE: &str = "lock";

/// The data folder held by one running suite: an exclusive lock on `<data_dir>/lock`, given
/// up when dropped or when the process ends, however it ends.
#[derive(Debug)]
pub struct DataFolderLock {
    _file: fs::File,
}

/// Takes the data folder for this process, creating it owner-only if missing. Refused when
/// another process holds it: two suites on the same files would each replace the other's
/// service credentials and run workers over the same jobs.
pub fn lock_data_folder(data_dir: &Path) -> Result<DataFolderLock, SuiteError> {
    create_private_folder(data_dir)?;
    let path = data_dir.join(LOCK_FILE);
    let error = |source| SuiteError::File {
        path: path.clone(),
        source,
    };
    let mut options = fs::OpenOptions::new();
    options.read(true).write(true).create(true).truncate(false);
    #[cfg(unix)]
    std::os::unix::fs::OpenOptionsExt::mode(&mut options, 0o600);
    let mut file = options.open(&path).map_err(error)?;
    match file.try_lock() {
        Ok(()) => {}
        Err(fs::TryLockError::WouldBlock) => {
            let holder = fs::read_to_string(&path).unwrap_or_default();
            return Err(SuiteError::DataFolderInUse {
                folder: data_dir.to_owned(),
                holder: holder.trim().to_owned(),
            });
        }
        Err(fs::TryLockError::Error(source)) => return Err(error(source)),
    }
    // The holder's process id, for the message a second start prints.
    file.set_len(0).map_err(error)?;
    writeln!(file, "{}", std::process::id()).map_err(error)?;
    Ok(DataFolderLock { _file: file })
}

/// Creates `folder` (and its parents) owner-only (0700) if missing.
pub fn create_private_folder(folder: &Path) -> Result<(), SuiteError> {
    let error = |source| SuiteError::File {
        path: folder.to_owned(),
        source,
    };
    if folder.exists() && !folder.is_dir() {
        return Err(error(io::Error::new(
            io::ErrorKind::NotADirectory,
            "is not a folder: give --data-dir a folder (it is created when missing)",
        )));
    }
    let mut builder = fs::DirBuilder::new();
    builder.recursive(true);
    #[cfg(unix)]
    std::os::unix::fs::DirBuilderExt::mode(&mut builder, 0o700);
    builder.create(folder).map_err(error)
}

/// Writes `contents` to a new file at `path` created with mode 0600, replacing any file there.
pub fn write_private(path: &Path, contents: &str) -> Result<(), SuiteError> {
    let error = |source| SuiteError::File {
        path: path.to_owned(),
        source,
    };
    match fs::remove_file(path) {
        Ok(()) => {}
        Err(missing) if missing.kind() == io::ErrorKind::NotFound => {}
        Err(source) => return Err(error(source)),
    }

    let mut options = fs::OpenOptions::new();
    options.write(true).create_new(true);
    #[cfg(unix)]
    std::os::unix::fs::OpenOptionsExt::mode(&mut options, 0o600);
    let mut file = options.open(path).map_err(error)?;
    file.write_all(contents.as_bytes()).map_err(error)?;
    file.sync_all().map_err(error)
}

/// Writes the admin's first password to `<data_dir>/admin-password` and returns the path.
pub fn write_admin_password(data_dir: &Path, password: &str) -> Result<PathBuf, SuiteError> {
    let path = data_dir.join(ADMIN_PASSWORD_FILE);
    write_private(&path, &format!("{password}\n"))?;
    Ok(path)
}

/// The key-encryption key kept in `<data_dir>/key-encryption-key`, generated and written
/// there on first start. Losing the file makes the stored signing keys unreadable, so it is
/// read back rather than replaced whenever it exists.
pub fn stored_key_encryption_key(data_dir: &Path) -> Result<String, SuiteError> {
    let path = data_dir.join(KEY_ENCRYPTION_KEY_FILE);
    match fs::read_to_string(&path) {
        Ok(key) => return Ok(key.trim().to_owned()),
        Err(error) if error.kind() == io::ErrorKind::NotFound => {}
        Err(source) => return Err(SuiteError::File { path, source }),
    }

    let key = KeyEncryptionKey::generate().to_base64();
    write_private(&path, &format!("{key}\n"))?;
    tracing::info!(path = %path.display(), "generated the key-encryption key");
    Ok(key)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[cfg(unix)]
    fn mode(path: &Path) -> u32 {
        use std::os::unix::fs::PermissionsExt;
        fs::metadata(path).unwrap().permissions().mode() & 0o777
    }

    #[test]
    fn the_password_file_is_owner_only_and_replaced() {
        let folder = tempfile::tempdir().unwrap();

        let path = write_admin_password(folder.path(), "first").unwrap();
        write_admin_password(folder.path(), "second").unwrap();

        assert_eq!(fs::read_to_string(&path).unwrap(), "second\n");
        #[cfg(unix)]
        assert_eq!(mode(&path), 0o600);
    }

    #[test]
    fn the_key_encryption_key_is_generated_once() {
        let folder = tempfile::tempdir().unwrap();

        let first = stored_key_encryption_key(folder.path()).unwrap();
        let again = stored_key_encryption_key(folder.path()).unwrap();

        assert_eq!(first, again);
        assert_eq!(first.len(), 44, "32 bytes in base64");
        #[cfg(unix)]
        assert_eq!(mode(&folder.path().join(KEY_ENCRYPTION_KEY_FILE)), 0o600);
    }

    #[cfg(unix)]
    #[test]
    fn a_data_folder_is_held_by_one_suite_at_a_time() {
        let folder = tempfile::tempdir().expect("a temporary folder");
        let data_dir = folder.path().join("data");
        let held = lock_data_folder(&data_dir).expect("the first takes the folder");
        let refused = lock_data_folder(&data_dir).expect_err("the second is refused");
        let message = refused.to_string();
        assert!(message.contains("in use"), "{message}");
        assert!(
            message.contains(&std::process::id().to_string()),
            "{message}"
        );
        drop(held);
        lock_data_folder(&data_dir).expect("free again once the first lets go");
    }

    #[test]
    fn a_data_folder_that_is_a_file_is_named_as_such() {
        let folder = tempfile::tempdir().expect("a temporary folder");
        let file = folder.path().join("afile");
        fs::write(&file, "").expect("a file");
        let refused = lock_data_folder(&file).expect_err("a file is not a folder");
        assert!(refused.to_string().contains("is not a folder"), "{refused}");
    }

    #[test]
    fn data_folders_are_owner_only() {
        let folder = tempfile::tempdir().unwrap();
        let data = folder.path().join("a/b");

        create_private_folder(&data).unwrap();

        assert_eq!(mode(&data), 0o700);
    }
}
