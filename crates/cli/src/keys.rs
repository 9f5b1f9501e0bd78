//! Operator keys: secp256k1, stored as Ethereum V3 keystores (scrypt + AES-128-CTR), so the
//! same file works with geth, foundry's `cast wallet` and other Ethereum tools.

use std::{
    fs,
    io::IsTerminal,
    path::{Path, PathBuf},
};

use k256::ecdsa::SigningKey;
use vouch_types::Address;

use crate::exit::{CliError, Exit, WithExit, fail};

/// Largest keystore file read (they are about 500 bytes).
const MAX_KEYSTORE_BYTES: u64 = 64 * 1024;

/// The default keystore path: `$VOUCH_HOME/keys/operator.json`, `~/.vouch/keys/operator.json`.
pub fn default_key_path() -> PathBuf {
    let home = std::env::var_os("VOUCH_HOME")
        .map(PathBuf::from)
        .unwrap_or_else(|| {
            std::env::var_os("HOME")
                .map(PathBuf::from)
                .unwrap_or_else(|| PathBuf::from("."))
                .join(".vouch")
        });
    home.join("keys").join("operator.json")
}

/// Where the keystore password comes from.
pub struct PasswordSource {
    /// `--password-file`.
    pub file: Option<PathBuf>,
    /// `VOUCH_KEYSTORE_PASSWORD`.
    pub env: Option<String>,
}

impl PasswordSource {
    /// Reads the password: file, then environment, then a prompt on a terminal.
    pub fn read(&self, prompt: &str, confirm: bool) -> Result<String, CliError> {
        if let Some(path) = &self.file {
            let text = fs::read_to_string(path).exit_ctx(Exit::Key, || {
                format!("reading password file {}", path.display())
            })?;
            return Ok(text.trim_end_matches(['\n', '\r']).to_string());
        }
        if let Some(p) = &self.env {
            return Ok(p.clone());
        }
        if !std::io::stdin().is_terminal() {
            return Err(fail(
                Exit::Key,
                "no keystore password: pass --password-file or set VOUCH_KEYSTORE_PASSWORD",
            ));
        }
        let pw = rpassword::prompt_password(prompt).exit(Exit::Key)?;
        if confirm && rpassword::prompt_password("Repeat password: ").exit(Exit::Key)? != pw {
            return Err(fail(Exit::Key, "the passwords differ"));
        }
        Ok(pw)
    }
}

/// Creates a new key and writes it, encrypted, readable by the owner only. Refuses to overwrite.
pub fn create_keystore(path: &Path, password: &str, force: bool) -> Result<SigningKey, CliError> {
    if path.exists() && !force {
        return Err(fail(
            Exit::Key,
            format!(
                "{} already exists; pass --force to replace it",
                path.display()
            ),
        ));
    }
    if password.is_empty() {
        return Err(fail(Exit::Key, "refusing an empty keystore password"));
    }
    let dir = path
        .parent()
        .filter(|p| !p.as_os_str().is_empty())
        .unwrap_or(Path::new("."));
    create_private_dir(dir)?;
    let name = path
        .file_name()
        .ok_or_else(|| fail(Exit::Key, "the key path names no file"))?;
    // Write into a fresh owner-only directory, tighten the file, then move it into place: the
    // keystore library creates files with the default mode, and that must never be visible.
    let staging = dir.join(format!(".vouch-keygen-{}", std::process::id()));
    create_private_dir(&staging)?;
    let result = (|| {
        let mut rng = rand::rngs::OsRng;
        let key = SigningKey::random(&mut rng);
        eth_keystore::encrypt_key(&staging, &mut rng, key.to_bytes(), password, name.to_str())
            .exit_ctx(Exit::Key, || "encrypting the keystore".into())?;
        let staged = staging.join(name);
        set_mode(&staged, 0o600)?;
        fs::rename(&staged, path).exit_ctx(Exit::Io, || format!("writing {}", path.display()))?;
        Ok(key)
    })();
    let _ = fs::remove_dir_all(&staging);
    result
}

/// Reads and decrypts a keystore.
pub fn load_keystore(path: &Path, password: &str) -> Result<SigningKey, CliError> {
    let meta = fs::metadata(path).exit_ctx(Exit::Key, || {
        format!(
            "reading keystore {} (create one with `vouch keygen`)",
            path.display()
        )
    })?;
    if meta.len() > MAX_KEYSTORE_BYTES {
        return Err(fail(
            Exit::Key,
            format!("{} is too large to be a keystore", path.display()),
        ));
    }
    let secret = eth_keystore::decrypt_key(path, password).map_err(|e| {
        let msg = match e {
            eth_keystore::KeystoreError::MacMismatch => "wrong password".to_string(),
            other => other.to_string(),
        };
        fail(
            Exit::Key,
            format!("cannot open keystore {}: {msg}", path.display()),
        )
    })?;
    SigningKey::from_slice(&secret)
        .exit_ctx(Exit::Key, || "the keystore holds an invalid key".into())
}

/// The Ethereum address of a key.
pub fn address(key: &SigningKey) -> Address {
    Address::from_private_key(key)
}

fn create_private_dir(dir: &Path) -> Result<(), CliError> {
    if !dir.exists() {
        fs::create_dir_all(dir).exit_ctx(Exit::Io, || format!("creating {}", dir.display()))?;
        set_mode(dir, 0o700)?;
    }
    Ok(())
}

#[cfg(unix)]
fn set_mode(path: &Path, mode: u32) -> Result<(), CliError> {
    use std::os::unix::fs::PermissionsExt;
    fs::set_permissions(path, fs::Permissions::from_mode(mode)).exit_ctx(Exit::Io, || {
        format!("restricting permissions of {}", path.display())
    })
}

#[cfg(not(unix))]
fn set_mode(_path: &Path, _mode: u32) -> Result<(), CliError> {
    Ok(())
}
