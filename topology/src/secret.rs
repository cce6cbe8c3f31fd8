//! Reading a secret file (a shared key, ticket keys, a signing key): the
//! one rule every daemon applies, as ssh does for a private key — a file
//! its group or others may read or write is refused, checked on the file
//! actually opened, not on whatever the path names a moment later.

use std::io::Read;
use std::os::unix::fs::PermissionsExt;
use std::path::Path;

/// Why a secret file was not read.
#[derive(Debug, thiserror::Error)]
pub enum SecretError {
    /// It could not be opened or read.
    #[error("cannot read {}: {source}", .path.display())]
    Read {
        /// The file.
        path: std::path::PathBuf,
        /// The I/O error.
        source: std::io::Error,
    },
    /// Group or others may read or write it.
    #[error("{} has mode {mode:o}: group or others can reach it; run `chmod 600 {}`", .path.display(), .path.display())]
    Exposed {
        /// The file.
        path: std::path::PathBuf,
        /// Its permission bits.
        mode: u32,
    },
}

/// The contents of the secret file at `path`, refused when its mode lets
/// group or others at it.
pub fn read(path: &Path) -> Result<Vec<u8>, SecretError> {
    let failed = |source| SecretError::Read {
        path: path.to_owned(),
        source,
    };
    let mut file = std::fs::File::open(path).map_err(failed)?;
    let mode = file.metadata().map_err(failed)?.permissions().mode() & 0o777;
    if mode & 0o077 != 0 {
        return Err(SecretError::Exposed {
            path: path.to_owned(),
            mode,
        });
    }
    let mut bytes = Vec::new();
    file.read_to_end(&mut bytes).map_err(failed)?;
    Ok(bytes)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_an_owner_only_file_is_read() {
        let dir = std::env::temp_dir().join(format!("topology-secret-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let path = dir.join("key");
        std::fs::write(&path, b"secret").unwrap();
        for (mode, readable) in [(0o600, true), (0o400, true), (0o640, false), (0o604, false)] {
            std::fs::set_permissions(&path, std::fs::Permissions::from_mode(mode)).unwrap();
            match read(&path) {
                Ok(bytes) => assert!(readable && bytes == b"secret", "mode {mode:o}"),
                Err(SecretError::Exposed { mode: seen, .. }) => {
                    assert!(!readable, "mode {mode:o}");
                    assert_eq!(seen, mode);
                }
                Err(other) => panic!("mode {mode:o}: {other}"),
            }
        }
        let missing = read(&dir.join("missing")).unwrap_err().to_string();
        assert!(missing.starts_with("cannot read "), "{missing}");
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
