//! `vouch receipt …`.

use std::path::PathBuf;

use clap::Args;
use vouch_types::{SignedReceipt, receipt::MAX_RECEIPT_JSON_BYTES};

use crate::{
    exit::{CliError, Exit, WithExit},
    inputs::read_bounded,
    print::json_out,
};

/// Arguments of `vouch receipt typed-data`.
#[derive(Args)]
pub struct TypedDataArgs {
    /// The receipt file.
    receipt: PathBuf,
}

/// Prints the receipt's `eth_signTypedData_v4` JSON, with its signature beside it.
pub fn typed_data(a: TypedDataArgs) -> Result<(), CliError> {
    let bytes = read_bounded(&a.receipt, MAX_RECEIPT_JSON_BYTES as u64)?;
    let signed = SignedReceipt::from_json_bytes(&bytes).exit_ctx(Exit::InvalidInput, || {
        format!("reading receipt {}", a.receipt.display())
    })?;
    json_out(&serde_json::json!({
        "typed_data": signed.receipt.typed_data_json(),
        "signing_hash": signed.receipt.signing_hash().to_string(),
        "signature": signed.to_json()["signature"],
        "signer": signed.receipt.operator.to_checksum(None),
    }));
    Ok(())
}
