//! `vouch infer NAME@VERSION --node URL`: inference on a node, verified by default.
//!
//! The client resolves the name to a model id itself (checking the publisher's signature), sends
//! fully typed inputs and a fresh nonce, and checks the answer: the receipt's signature, that it
//! names the model, nonce and inputs it asked for, that the outputs it got are the ones signed,
//! and that the receipt is in the node's transparency log (inclusion proof against a signed
//! checkpoint, with the witness cosignatures asked for).

use std::path::PathBuf;

use serde_json::{Value, json};
use vouch_log::{CosignatureVerifier, NoteVerifier, ProofBundle, WitnessPolicy};
use vouch_types::{
    Address, DType, Limits, ModelId, NamedTensors, SignedReceipt,
    tensor::json::{named_from_json, named_to_json},
};

use super::{
    hub::{NodeUrl, fetch_version},
    infer::{random_nonce, write_atomic},
    verify::{Evidence, Report, Status, check},
};
use crate::{
    InputArgs,
    client::NodeClient,
    exit::{CliError, Exit, WithExit, fail},
    inputs::{InputSchema, read_inputs},
    print::{json_out, tensor_summary},
};

/// What `vouch infer --node` was given.
pub struct RemoteInfer {
    /// `owner/name[@version]` or a model id.
    pub reference: String,
    /// The node.
    pub node: NodeUrl,
    /// Inputs.
    pub inputs: InputArgs,
    /// Where to write the receipt.
    pub out: Option<PathBuf>,
    /// Where to write the outputs.
    pub outputs: Option<PathBuf>,
    /// Where to write the log proof bundle.
    pub log_proof: Option<PathBuf>,
    /// The log key to trust (else the node's own claim, reported as such).
    pub log_key: Option<String>,
    /// Witness keys whose cosignatures are required.
    pub witnesses: Vec<String>,
    /// How many of them.
    pub min_witnesses: usize,
    /// The operator expected to sign.
    pub operator: Option<Address>,
    /// Skip verification.
    pub no_verify: bool,
    /// Largest input tensor.
    pub max_tensor_bytes: usize,
    /// Print JSON.
    pub json: bool,
}

/// The model id and declared inputs for a reference, publisher signature checked.
fn resolve(client: &NodeClient, reference: &str) -> Result<(ModelId, Value), CliError> {
    let id = if reference.starts_with("baf") {
        reference.parse::<ModelId>().exit(Exit::InvalidInput)?
    } else {
        fetch_version(client, reference)?.1.manifest.model
    };
    let info = client.get_json(&format!("/v1/blobs/{id}/info"))?;
    Ok((id, info))
}

/// The declared inputs (name, dtype) of a model record.
fn declared_inputs(info: &Value) -> Result<Vec<(String, Option<DType>)>, CliError> {
    Ok(info["summary"]["inputs"]
        .as_array()
        .ok_or_else(|| fail(Exit::Io, "the node's model record lists no inputs"))?
        .iter()
        .map(|i| {
            let name = i["name"].as_str().unwrap_or_default().to_string();
            let dtype = i["elem_type"].as_str().and_then(|d| d.parse().ok());
            (name, dtype)
        })
        .collect())
}

/// Checks the log proof of a receipt: inclusion in a checkpoint signed by the log key and
/// cosigned as the policy asks.
pub fn check_log_proof(
    report: &mut Report,
    signed: &SignedReceipt,
    bundle_text: &str,
    log_key: &str,
    pinned: bool,
    witnesses: &[String],
    min_witnesses: usize,
) -> Result<(), CliError> {
    let verifier =
        NoteVerifier::from_vkey(log_key).exit_ctx(Exit::InvalidInput, || "log key".into())?;
    let cosigners = witnesses
        .iter()
        .map(|w| {
            CosignatureVerifier::from_vkey(w)
                .exit_ctx(Exit::InvalidInput, || format!("witness key {w}"))
        })
        .collect::<Result<Vec<_>, _>>()?;
    let policy = WitnessPolicy::new(cosigners, min_witnesses).exit(Exit::InvalidInput)?;
    let entry = vouch_node::log_entry_bytes(signed);
    let verdict = ProofBundle::parse(bundle_text)
        .map_err(|e| e.to_string())
        .and_then(|b| {
            b.verify(&entry, &verifier, &policy)
                .map(|v| (b.index, v))
                .map_err(|e| e.to_string())
        });
    match verdict {
        Ok((index, v)) => {
            let trust = if pinned {
                ""
            } else {
                " (log key as the node states it; pin it with --log-key)"
            };
            report.add(
                "log",
                Status::Pass,
                format!(
                    "entry {index} in checkpoint {} of {}, {} witness cosignature(s){trust}",
                    v.checkpoint.checkpoint.size,
                    v.checkpoint.checkpoint.origin,
                    v.witnesses.len()
                ),
            );
        }
        Err(e) => {
            report.add("log", Status::Fail, e);
        }
    }
    Ok(())
}

/// Runs the remote inference.
pub fn run(a: RemoteInfer) -> Result<(), CliError> {
    let client = a.node.client();
    let limits = Limits {
        max_bytes: a.max_tensor_bytes,
        ..Limits::DEFAULT
    };
    let (id, info) = resolve(&client, &a.reference)?;
    let declared = declared_inputs(&info)?;
    let schema = InputSchema {
        inputs: declared.iter().map(|(n, d)| (n.as_str(), *d)).collect(),
        limits,
    };
    let inputs: NamedTensors =
        read_inputs(&a.inputs.input, a.inputs.input_json.as_deref(), &schema)?;
    let nonce = random_nonce();
    let answer = client.post_json(
        "/v1/infer",
        &json!({"model": id.to_string(), "inputs": named_to_json(&inputs), "nonce": nonce.to_string()}),
    )?;
    let signed = SignedReceipt::from_json(answer["receipt"].clone()).map_err(|e| {
        fail(
            Exit::VerificationFailed,
            format!("the node's receipt is unreadable: {e}"),
        )
    })?;
    let outputs = named_from_json(
        &answer["outputs"],
        |_| None,
        &Limits {
            max_rank: 64,
            max_bytes: usize::MAX,
        },
    )
    .map_err(|e| {
        fail(
            Exit::VerificationFailed,
            format!("the node's outputs are unreadable: {e}"),
        )
    })?;
    let mut bundle = answer["log"]["proof"]
        .as_str()
        .unwrap_or_default()
        .to_string();
    // A fresh receipt's checkpoint isn't cosigned yet: when witnesses are required, wait
    // (bounded) for the node to collect their cosignatures on a checkpoint that includes it.
    if a.min_witnesses > 0
        && let Some(index) = answer["log"]["index"].as_u64()
    {
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(30);
        loop {
            match client.get_json(&format!(
                "/v1/log/entries/{index}?min_cosignatures={}",
                a.min_witnesses
            )) {
                Ok(v) => {
                    bundle = v["proof"].as_str().unwrap_or_default().to_string();
                    break;
                }
                Err(_) if std::time::Instant::now() < deadline => {
                    std::thread::sleep(std::time::Duration::from_millis(200));
                }
                Err(e) => return Err(e),
            }
        }
    }

    let mut report = Report::default();
    if !a.no_verify {
        let evidence = Evidence {
            operator: a.operator,
            nonce: Some(nonce),
            model_id: Some((a.reference.clone(), id)),
            inputs: Some(&inputs),
            outputs: Some(&outputs),
            no_exec: true,
            ..Evidence::default()
        };
        report = check(&signed, &evidence)?;
        // Re-execution is `vouch verify`'s job (it needs the model file); drop its line here.
        report.retain(|c| c != "re-execution");
        let (key, pinned) = match &a.log_key {
            Some(k) => (k.clone(), true),
            None => (
                answer["log"]["key"]
                    .as_str()
                    .unwrap_or_default()
                    .to_string(),
                false,
            ),
        };
        check_log_proof(
            &mut report,
            &signed,
            &bundle,
            &key,
            pinned,
            &a.witnesses,
            a.min_witnesses,
        )?;
    }
    let receipt_json = signed.to_json();
    if let Some(p) = &a.out {
        write_atomic(
            p,
            serde_json::to_string_pretty(&receipt_json)
                .expect("JSON")
                .as_bytes(),
        )?;
    }
    if let Some(p) = &a.outputs {
        write_atomic(
            p,
            serde_json::to_string(&answer["outputs"])
                .expect("JSON")
                .as_bytes(),
        )?;
    }
    if let Some(p) = &a.log_proof {
        write_atomic(p, bundle.as_bytes())?;
    }
    if a.json {
        json_out(&json!({
            "outputs": answer["outputs"],
            "receipt": receipt_json,
            "log": answer["log"],
            "verified": !a.no_verify && !report.failed(),
            "checks": report.to_json(),
        }));
    } else {
        println!("model    {id}  ({})", a.reference);
        println!(
            "profile  {}  ({})",
            signed.receipt.profile, signed.receipt.engine
        );
        println!("outputs");
        for (name, t) in &outputs {
            println!("  {name:<16} {}", tensor_summary(t));
        }
        if a.no_verify {
            println!("receipt  NOT verified (--no-verify)");
        } else {
            println!("verification");
            report.print_indented("  ");
        }
    }
    if report.failed() {
        return Err(fail(
            Exit::VerificationFailed,
            "the node's answer did not verify",
        ));
    }
    Ok(())
}
