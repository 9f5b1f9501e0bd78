//! Keys for operators (who sign receipts) and publishers (who sign publish manifests):
//! secp256k1, stored as Ethereum V3 keystores (scrypt + AES-128-CTR) so the same file works with
//! geth, foundry's `cast wallet` and other Ethereum tools.
//!
//! Files are created readable by their owner only, inside owner-only directories, and written
//! so that a partially written or world-readable key is never visible. Private keys never reach
//! logs or errors.

use std::{
    fs,
    path::{Path, PathBuf},
};

use k256::ecdsa::SigningKey;
use vouch_types::Address;

/// Largest keystore file read (they are about 500 bytes).
const MAX_KEYSTORE_BYTES: u64 = 64 * 1024;

/// What went wrong with a key.
#[derive(Debug, thiserror::Error)]
pub enum KeyError {
    /// The file exists and replacing it was not asked for.
    #[error("{0} already exists; pass --force to replace it")]
    Exists(PathBuf),
    /// Refusing an empty password for an encrypted keystore.
    #[error("refusing an empty keystore password")]
    EmptyPassword,
    /// The keystore's MAC doesn't match: wrong password (or a damaged file).
    #[error("cannot open keystore {0}: wrong password")]
    WrongPassword(PathBuf),
    /// The file is missing.
    #[error("no key at {0} (create one with `vouch keygen`)")]
    Missing(PathBuf),
    /// The file is not a keystore or raw key.
    #[error("{path} is not a valid key file: {why}")]
    Invalid {
        /// The file.
        path: PathBuf,
        /// What is wrong.
        why: String,
    },
    /// A filesystem error.
    #[error("{context}: {source}")]
    Io {
        /// What was being done.
        context: String,
        /// The error.
        source: std::io::Error,
    },
}

fn io(context: impl Into<String>) -> impl FnOnce(std::io::Error) -> KeyError {
    let context = context.into();
    move |source| KeyError::Io { context, source }
}

/// The Ethereum address of a key.
pub fn address(key: &SigningKey) -> Address {
    Address::from_private_key(key)
}

/// A fresh random key from the OS's generator.
pub fn random_key() -> SigningKey {
    SigningKey::random(&mut rand::rngs::OsRng)
}

/// Creates a new key and writes it as an encrypted keystore, readable by the owner only.
pub fn create_keystore(path: &Path, password: &str, force: bool) -> Result<SigningKey, KeyError> {
    if password.is_empty() {
        return Err(KeyError::EmptyPassword);
    }
    let key = random_key();
    write_private(path, force, |staging, name| {
        eth_keystore::encrypt_key(
            staging,
            &mut rand::rngs::OsRng,
            key.to_bytes(),
            password,
            Some(name),
        )
        .map(|_| ())
        .map_err(|e| KeyError::Invalid {
            path: path.to_owned(),
            why: e.to_string(),
        })
    })?;
    Ok(key)
}

/// Creates a new key and writes it as 0x-hex in a file readable by the owner only (for a node
/// started without a password; the keystore form is preferred).
pub fn create_raw_key(path: &Path) -> Result<SigningKey, KeyError> {
    let key = random_key();
    write_private(path, false, |staging, name| {
        fs::write(
            staging.join(name),
            format!("0x{}\n", hex::encode(key.to_bytes())),
        )
        .map_err(io(format!("writing {}", path.display())))
    })?;
    Ok(key)
}

/// Writes a secret (any text, e.g. a log's note key) to a new file readable by the owner only.
pub fn write_secret_file(path: &Path, contents: &str) -> Result<(), KeyError> {
    write_private(path, false, |staging, name| {
        fs::write(staging.join(name), contents).map_err(io(format!("writing {}", path.display())))
    })
}

/// Reads a key: an encrypted keystore (needs `password`) or a raw 0x-hex key file.
pub fn load_key(path: &Path, password: Option<&str>) -> Result<SigningKey, KeyError> {
    let meta = fs::metadata(path).map_err(|e| match e.kind() {
        std::io::ErrorKind::NotFound => KeyError::Missing(path.to_owned()),
        _ => KeyError::Io {
            context: format!("reading {}", path.display()),
            source: e,
        },
    })?;
    if meta.len() > MAX_KEYSTORE_BYTES {
        return Err(KeyError::Invalid {
            path: path.to_owned(),
            why: "too large".into(),
        });
    }
    let text = fs::read_to_string(path).map_err(io(format!("reading {}", path.display())))?;
    let invalid = |why: &str| KeyError::Invalid {
        path: path.to_owned(),
        why: why.into(),
    };
    if let Some(raw) = text.trim().strip_prefix("0x") {
        let bytes = hex::decode(raw).map_err(|_| invalid("not hex"))?;
        return SigningKey::from_slice(&bytes).map_err(|_| invalid("not a secp256k1 private key"));
    }
    let password = password.ok_or_else(|| {
        invalid("an encrypted keystore needs a password (VOUCH_KEYSTORE_PASSWORD)")
    })?;
    let secret = eth_keystore::decrypt_key(path, password).map_err(|e| match e {
        eth_keystore::KeystoreError::MacMismatch => KeyError::WrongPassword(path.to_owned()),
        other => invalid(&other.to_string()),
    })?;
    SigningKey::from_slice(&secret).map_err(|_| invalid("the keystore holds an invalid key"))
}

/// Writes a secret file: into a fresh owner-only staging directory, tightened to 0600, then
/// renamed into place, so it is never visible half-written or with a looser mode.
fn write_private(
    path: &Path,
    force: bool,
    write: impl FnOnce(&Path, &str) -> Result<(), KeyError>,
) -> Result<(), KeyError> {
    if path.exists() && !force {
        return Err(KeyError::Exists(path.to_owned()));
    }
    let dir = path
        .parent()
        .filter(|p| !p.as_os_str().is_empty())
        .unwrap_or(Path::new("."));
    create_private_dir(dir)?;
    let name = path
        .file_name()
        .and_then(|n| n.to_str())
        .ok_or_else(|| KeyError::Invalid {
            path: path.to_owned(),
            why: "names no file".into(),
        })?;
    let staging = dir.join(format!(
        ".vouch-key-{}-{}",
        std::process::id(),
        rand::random::<u32>()
    ));
    create_private_dir(&staging)?;
    let result = (|| {
        write(&staging, name)?;
        let staged = staging.join(name);
        set_mode(&staged, 0o600)?;
        fs::rename(&staged, path).map_err(io(format!("writing {}", path.display())))
    })();
    let _ = fs::remove_dir_all(&staging);
    result
}

fn create_private_dir(dir: &Path) -> Result<(), KeyError> {
    if !dir.exists() {
        fs::create_dir_all(dir).map_err(io(format!("creating {}", dir.display())))?;
        set_mode(dir, 0o700)?;
    }
    Ok(())
}

#[cfg(unix)]
fn set_mode(path: &Path, mode: u32) -> Result<(), KeyError> {
    use std::os::unix::fs::PermissionsExt;
    fs::set_permissions(path, fs::Permissions::from_mode(mode))
        .map_err(io(format!("restricting permissions of {}", path.display())))
}

#[cfg(not(unix))]
fn set_mode(_path: &Path, _mode: u32) -> Result<(), KeyError> {
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keystore_and_raw_keys_round_trip_with_owner_only_modes() {
        let dir = tempfile::tempdir().unwrap();
        let ks = dir.path().join("k/operator.json");
        let key = create_keystore(&ks, "pw", false).unwrap();
        assert_eq!(
            load_key(&ks, Some("pw")).unwrap().to_bytes(),
            key.to_bytes()
        );
        assert!(matches!(
            load_key(&ks, Some("nope")),
            Err(KeyError::WrongPassword(_))
        ));
        assert!(matches!(load_key(&ks, None), Err(KeyError::Invalid { .. })));
        assert!(matches!(
            create_keystore(&ks, "pw", false),
            Err(KeyError::Exists(_))
        ));
        assert!(matches!(
            create_keystore(&dir.path().join("x.json"), "", false),
            Err(KeyError::EmptyPassword)
        ));
        let raw = dir.path().join("k/raw.key");
        let key = create_raw_key(&raw).unwrap();
        assert_eq!(load_key(&raw, None).unwrap().to_bytes(), key.to_bytes());
        assert!(matches!(
            load_key(&dir.path().join("none"), None),
            Err(KeyError::Missing(_))
        ));
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            for f in [&ks, &raw] {
                assert_eq!(fs::metadata(f).unwrap().permissions().mode() & 0o777, 0o600);
            }
            assert_eq!(
                fs::metadata(dir.path().join("k"))
                    .unwrap()
                    .permissions()
                    .mode()
                    & 0o777,
                0o700
            );
        }
        // No staging directories are left behind.
        assert_eq!(fs::read_dir(dir.path().join("k")).unwrap().count(), 2);
    }
}
