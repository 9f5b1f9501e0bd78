//! `vouch infer`.

use std::{fs, path::PathBuf};

use clap::Args;
use k256::ecdsa::SigningKey;
use serde_json::json;
use vouch_engine::{Execution, Model};
use vouch_types::{NamedTensors, Nonce, SignedReceipt, tensor::json::named_to_json};

use super::{engine_config, load_model, schema, unix_now};
use crate::{
    EngineArgs, InputArgs, KeyArgs,
    exit::{CliError, Exit, WithExit, engine},
    inputs::read_inputs,
    keys::{PasswordSource, default_key_path, load_keystore},
    print::{json_out, tensor_summary},
};

/// Arguments of `vouch infer`.
#[derive(Args)]
pub struct InferArgs {
    /// The ONNX model file; with --node, a hub reference `owner/name[@version]` or a model id.
    model: String,
    /// Run on this node instead of locally; the answer is verified unless --no-verify.
    #[arg(long, env = "VOUCH_NODE")]
    node: Option<String>,
    /// With --node: longest the call may take, in seconds.
    #[arg(long, default_value_t = 600)]
    timeout: u64,
    /// With --node: write the log's proof bundle (c2sp.org/tlog-proof) here.
    #[arg(long, value_name = "FILE")]
    log_proof: Option<PathBuf>,
    /// With --node: the log key to trust (`origin+id+base64`) instead of the node's own claim.
    #[arg(long, value_name = "VKEY")]
    log_key: Option<String>,
    /// With --node: a witness key whose cosignature counts (repeatable).
    #[arg(long = "witness", value_name = "VKEY")]
    witnesses: Vec<String>,
    /// With --node: witness cosignatures required on the log checkpoint.
    #[arg(long, default_value_t = 0)]
    min_witnesses: usize,
    /// With --node: the operator address expected to sign.
    #[arg(long)]
    operator: Option<String>,
    /// With --node: skip verifying the answer (not recommended).
    #[arg(long)]
    no_verify: bool,
    #[command(flatten)]
    inputs: InputArgs,
    /// Write the signed receipt here.
    #[arg(short, long, value_name = "FILE")]
    out: Option<PathBuf>,
    /// Write the outputs here (JSON, Vouch's tensor form).
    #[arg(long, value_name = "FILE")]
    outputs: Option<PathBuf>,
    /// Write the execution trace (per-node hashes) here (JSON).
    #[arg(long, value_name = "FILE")]
    trace: Option<PathBuf>,
    /// Request nonce (0x + 64 hex digits) [default: random].
    #[arg(long)]
    nonce: Option<String>,
    #[command(flatten)]
    key: KeyArgs,
    /// Sign with a throwaway key made for this run instead of a keystore (for trying things out).
    #[arg(long, conflicts_with_all = ["key", "password_file"])]
    ephemeral_key: bool,
    #[command(flatten)]
    engine: EngineArgs,
    /// Print JSON.
    #[arg(long)]
    json: bool,
}

/// Runs `model` on `inputs` and signs the receipt.
pub fn execute_and_sign(
    model: &Model,
    inputs: &NamedTensors,
    key: &SigningKey,
    nonce: Nonce,
) -> Result<(Execution, SignedReceipt), CliError> {
    let execution = engine(model.run(inputs), || "running the model".into())?;
    let receipt = execution.receipt(model, crate::keys::address(key), unix_now(), nonce);
    let signed = receipt.sign(key).exit(Exit::Internal)?;
    Ok((execution, signed))
}

/// A random nonce from the OS.
pub fn random_nonce() -> Nonce {
    use rand::RngCore;
    let mut n = [0u8; 32];
    rand::rngs::OsRng.fill_bytes(&mut n);
    Nonce(n)
}

/// Writes a file atomically (temporary file, then rename) so a crash never leaves half a receipt.
pub fn write_atomic(path: &std::path::Path, bytes: &[u8]) -> Result<(), CliError> {
    let tmp = path.with_extension(format!("tmp-{}", std::process::id()));
    fs::write(&tmp, bytes).exit_ctx(Exit::Io, || format!("writing {}", tmp.display()))?;
    fs::rename(&tmp, path).exit_ctx(Exit::Io, || format!("writing {}", path.display()))
}

/// Runs `vouch infer`.
pub fn run(a: InferArgs) -> Result<(), CliError> {
    if let Some(node) = a.node {
        let operator = match &a.operator {
            Some(o) => Some(
                o.parse()
                    .exit_ctx(Exit::InvalidInput, || "--operator".into())?,
            ),
            None => None,
        };
        return super::remote::run(super::remote::RemoteInfer {
            reference: a.model,
            node: super::hub::NodeUrl {
                node,
                timeout: a.timeout,
            },
            inputs: a.inputs,
            out: a.out,
            outputs: a.outputs,
            log_proof: a.log_proof,
            log_key: a.log_key,
            witnesses: a.witnesses,
            min_witnesses: a.min_witnesses,
            operator,
            no_verify: a.no_verify,
            max_tensor_bytes: a.engine.max_tensor_bytes,
            json: a.json,
        });
    }
    let model_path = PathBuf::from(&a.model);
    let config = engine_config(&a.engine)?;
    let nonce = match &a.nonce {
        Some(n) => n
            .parse()
            .exit_ctx(Exit::InvalidInput, || "--nonce".into())?,
        None => random_nonce(),
    };
    // Open the key first: a wrong password should not cost a model run.
    let key = if a.ephemeral_key {
        SigningKey::random(&mut rand::rngs::OsRng)
    } else {
        let path = a.key.key.clone().unwrap_or_else(default_key_path);
        let pw = PasswordSource {
            file: a.key.password_file.clone(),
            env: std::env::var("VOUCH_KEYSTORE_PASSWORD").ok(),
        }
        .read("Keystore password: ", false)?;
        load_keystore(&path, &pw)?
    };
    let (_, model) = load_model(&model_path, &config)?;
    let inputs = read_inputs(
        &a.inputs.input,
        a.inputs.input_json.as_deref(),
        &schema(&model),
    )?;
    let (execution, signed) = execute_and_sign(&model, &inputs, &key, nonce)?;

    let receipt_json = signed.to_json();
    if let Some(path) = &a.out {
        write_atomic(
            path,
            serde_json::to_string_pretty(&receipt_json)
                .expect("JSON")
                .as_bytes(),
        )?;
    }
    let outputs_json = named_to_json(&execution.outputs);
    if let Some(path) = &a.outputs {
        write_atomic(
            path,
            serde_json::to_string(&outputs_json)
                .expect("JSON")
                .as_bytes(),
        )?;
    }
    if let Some(path) = &a.trace {
        let trace = serde_json::to_string_pretty(&execution.trace).expect("JSON");
        write_atomic(path, trace.as_bytes())?;
    }
    if a.json {
        json_out(&json!({"outputs": outputs_json, "receipt": receipt_json}));
        return Ok(());
    }
    let r = &signed.receipt;
    println!("model    {}", r.model);
    println!("profile  {}  ({})", r.profile, r.engine);
    println!("outputs");
    for (name, t) in &execution.outputs {
        println!("  {name:<16} {}", tensor_summary(t));
    }
    println!("receipt");
    println!(
        "  operator  {}{}",
        r.operator.to_checksum(None),
        if a.ephemeral_key {
            "  (ephemeral key)"
        } else {
            ""
        }
    );
    println!("  inputs    {}", r.input_commitment);
    println!("  outputs   {}", r.output_commitment);
    println!("  trace     {} ({} nodes)", r.trace_root, r.trace_size);
    println!("  nonce     {}", r.nonce);
    match &a.out {
        Some(p) => println!("  written   {}", p.display()),
        None => println!("  (not written; pass --out FILE to save it)"),
    }
    Ok(())
}
