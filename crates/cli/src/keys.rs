//! Where the CLI finds keys and their passwords; the keystores themselves are `vouch-keys`'.

use std::{
    fs,
    io::IsTerminal,
    path::{Path, PathBuf},
};

use k256::ecdsa::SigningKey;
use vouch_types::Address;

use crate::exit::{CliError, Exit, WithExit, fail};

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

/// Maps a key error to its exit code.
fn key_error(e: vouch_keys::KeyError) -> CliError {
    let exit = match e {
        vouch_keys::KeyError::Io { .. } => Exit::Io,
        _ => Exit::Key,
    };
    fail(exit, e)
}

/// Creates a new key and writes it, encrypted, readable by the owner only. Refuses to overwrite.
pub fn create_keystore(path: &Path, password: &str, force: bool) -> Result<SigningKey, CliError> {
    vouch_keys::create_keystore(path, password, force).map_err(key_error)
}

/// Reads and decrypts a keystore (or a raw key file).
pub fn load_keystore(path: &Path, password: &str) -> Result<SigningKey, CliError> {
    vouch_keys::load_key(path, Some(password)).map_err(key_error)
}

/// The Ethereum address of a key.
pub fn address(key: &SigningKey) -> Address {
    vouch_keys::address(key)
}
