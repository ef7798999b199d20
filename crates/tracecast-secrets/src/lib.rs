//! Secret files: the tokens, keys and device state a process keeps on
//! disk, servers and clients alike. One crate so every one of them is
//! written the same way: readable by its owner only (mode 0600), synced,
//! and never left half-written.
//!
//! Two ways to write, named for what the caller means:
//! - [`write_new`] makes a file that must not exist yet (a key: replacing
//!   it would silently orphan everything marked or signed with the old one);
//! - [`replace`] swaps in new contents atomically (a token its owner
//!   rotated, a state file), through a `.partial` file and a rename.
//!
//! A key file that exists but is malformed is an error, never a reason to
//! make a new key.

use std::io::Write;
use std::path::{Path, PathBuf};

/// Why a secret file could not be read or written.
#[derive(Debug, thiserror::Error)]
pub enum SecretFileError {
    #[error("reading {path}: {source}")]
    Read {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("writing {path}: {source}")]
    Write {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("{path} is not {expected}: it was left as it is (move it away to make a new one)")]
    Malformed { path: PathBuf, expected: String },
    #[error("{path} is empty")]
    Empty { path: PathBuf },
}

fn write_err(path: &Path) -> impl FnOnce(std::io::Error) -> SecretFileError + '_ {
    move |source| SecretFileError::Write {
        path: path.to_owned(),
        source,
    }
}

fn open_private(path: &Path, create_new: bool) -> std::io::Result<std::fs::File> {
    let mut options = std::fs::OpenOptions::new();
    options.write(true);
    if create_new {
        options.create_new(true);
    } else {
        options.create(true).truncate(true);
    }
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt;
        options.mode(0o600);
    }
    options.open(path)
}

fn create_parent(path: &Path) -> Result<(), SecretFileError> {
    match path.parent() {
        Some(dir) if !dir.as_os_str().is_empty() => {
            std::fs::create_dir_all(dir).map_err(write_err(dir))
        }
        _ => Ok(()),
    }
}

/// Writes `contents` to a new file at `path` (its directory made first);
/// fails if the file exists.
pub fn write_new(path: &Path, contents: &[u8]) -> Result<(), SecretFileError> {
    create_parent(path)?;
    let mut f = open_private(path, true).map_err(write_err(path))?;
    f.write_all(contents)
        .and_then(|()| f.sync_all())
        .map_err(write_err(path))
}

/// Puts `contents` at `path` in one step: readers see the old file or the
/// new one, never a part.
pub fn replace(path: &Path, contents: &[u8]) -> Result<(), SecretFileError> {
    create_parent(path)?;
    let mut tmp = path.as_os_str().to_owned();
    tmp.push(".partial");
    let tmp = PathBuf::from(tmp);
    let mut f = open_private(&tmp, false).map_err(write_err(&tmp))?;
    f.write_all(contents)
        .and_then(|()| f.sync_all())
        .map_err(write_err(&tmp))?;
    std::fs::rename(&tmp, path).map_err(write_err(path))
}

/// A token or secret kept as text: the file's contents, trimmed.
pub fn read_text(path: &Path) -> Result<String, SecretFileError> {
    let s = std::fs::read_to_string(path).map_err(|source| SecretFileError::Read {
        path: path.to_owned(),
        source,
    })?;
    let s = s.trim();
    if s.is_empty() {
        return Err(SecretFileError::Empty {
            path: path.to_owned(),
        });
    }
    Ok(s.to_owned())
}

/// The raw bytes of a key file.
pub fn read_bytes(path: &Path) -> Result<Vec<u8>, SecretFileError> {
    std::fs::read(path).map_err(|source| SecretFileError::Read {
        path: path.to_owned(),
        source,
    })
}

/// The `N`-byte key at `path`, or a new random one written there when
/// there is no file. `what` names the key in errors.
pub fn read_or_make<const N: usize>(path: &Path, what: &str) -> Result<[u8; N], SecretFileError> {
    match std::fs::read(path) {
        Ok(bytes) => {
            <[u8; N]>::try_from(bytes.as_slice()).map_err(|_| SecretFileError::Malformed {
                path: path.to_owned(),
                expected: format!("a {N}-byte {what}"),
            })
        }
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            let mut key = [0u8; N];
            rand::RngCore::fill_bytes(&mut rand::rngs::OsRng, &mut key);
            write_new(path, &key)?;
            Ok(key)
        }
        Err(source) => Err(SecretFileError::Read {
            path: path.to_owned(),
            source,
        }),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys_are_made_once_and_kept() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("sub/k.key");
        let a: [u8; 32] = read_or_make(&path, "key").unwrap();
        let b: [u8; 32] = read_or_make(&path, "key").unwrap();
        assert_eq!(a, b);
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            let mode = std::fs::metadata(&path).unwrap().permissions().mode();
            assert_eq!(mode & 0o777, 0o600);
        }
    }

    #[test]
    fn a_malformed_key_is_an_error_and_stays() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("k.key");
        std::fs::write(&path, b"short").unwrap();
        let e = read_or_make::<32>(&path, "link key").unwrap_err();
        assert!(matches!(e, SecretFileError::Malformed { .. }), "{e}");
        assert_eq!(std::fs::read(&path).unwrap(), b"short");
    }

    #[test]
    fn write_new_never_overwrites_and_replace_does() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("t.token");
        write_new(&path, b"one\n").unwrap();
        assert!(write_new(&path, b"two\n").is_err());
        assert_eq!(read_text(&path).unwrap(), "one");
        replace(&path, b"three\n").unwrap();
        assert_eq!(read_text(&path).unwrap(), "three");
        assert!(!dir.path().join("t.token.partial").exists());
        std::fs::write(&path, b" \n").unwrap();
        assert!(matches!(
            read_text(&path),
            Err(SecretFileError::Empty { .. })
        ));
    }
}
