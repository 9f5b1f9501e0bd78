//! `vouch keygen`.

use std::path::PathBuf;

use clap::Args;
use serde_json::json;

use crate::{
    exit::CliError,
    keys::{PasswordSource, address, create_keystore, default_key_path},
    print::json_out,
};

/// Arguments of `vouch keygen`.
#[derive(Args)]
pub struct KeygenArgs {
    /// Where to write the keystore [default: $VOUCH_HOME/keys/operator.json].
    #[arg(long, env = "VOUCH_KEY")]
    out: Option<PathBuf>,
    /// File holding the password (else VOUCH_KEYSTORE_PASSWORD, else a prompt).
    #[arg(long)]
    password_file: Option<PathBuf>,
    /// Replace an existing keystore.
    #[arg(long)]
    force: bool,
    /// Also print the private key (it is never printed otherwise).
    #[arg(long)]
    show_private_key: bool,
    /// Print JSON.
    #[arg(long)]
    json: bool,
}

/// Runs `vouch keygen`.
pub fn run(a: KeygenArgs) -> Result<(), CliError> {
    let path = a.out.unwrap_or_else(default_key_path);
    let pw = PasswordSource {
        file: a.password_file,
        env: std::env::var("VOUCH_KEYSTORE_PASSWORD").ok(),
    }
    .read("New keystore password: ", true)?;
    let key = create_keystore(&path, &pw, a.force)?;
    let addr = address(&key);
    let secret = a
        .show_private_key
        .then(|| format!("0x{}", hex::encode(key.to_bytes())));
    if a.json {
        let mut v =
            json!({"address": addr.to_checksum(None), "keystore": path.display().to_string()});
        if let Some(s) = &secret {
            v["private_key"] = json!(s);
        }
        json_out(&v);
    } else {
        println!("address   {}", addr.to_checksum(None));
        println!("keystore  {} (encrypted, mode 0600)", path.display());
        if let Some(s) = secret {
            println!("private   {s}  (shown because you asked; keep it secret)");
        }
    }
    Ok(())
}
