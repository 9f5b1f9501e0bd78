//! `vouch demo`: the quick start. Everything it needs is built into the binary.

use std::{fs, path::PathBuf};

use clap::Args;
use k256::ecdsa::SigningKey;
use vouch_engine::{EngineConfig, Model, Profile};
use vouch_types::{ModelId, SignedReceipt, tensor::json::named_to_json};

use super::{
    infer::{execute_and_sign, random_nonce, write_atomic},
    verify::{Evidence, check},
};
use crate::{
    exit::{CliError, Exit, WithExit, engine, fail},
    inputs::{InputSchema, read_inputs},
    print::tensor_summary,
};

/// The demo model: a scikit-learn MLP classifier on iris (tests/fixtures, scripts/make_fixtures.py).
pub(crate) const MODEL: &[u8] = include_bytes!("../../../../tests/fixtures/models/iris_mlp.onnx");
/// Three flowers, one of each species.
pub(crate) const INPUT: &str =
    include_str!("../../../../tests/fixtures/models/iris_mlp.input.json");

/// Arguments of `vouch demo`.
#[derive(Args)]
pub struct DemoArgs {
    /// Directory for the demo's files (model, input, outputs, receipt).
    #[arg(long, default_value = "vouch-demo")]
    dir: PathBuf,
}

/// Runs `vouch demo`.
pub fn run(a: DemoArgs) -> Result<(), CliError> {
    fs::create_dir_all(&a.dir).exit_ctx(Exit::Io, || format!("creating {}", a.dir.display()))?;
    let path = |name: &str| a.dir.join(name);
    let id = ModelId::of_bytes(MODEL);
    println!(
        "Vouch demo: verifiable inference on a scikit-learn MLP (iris), built into this binary.\n"
    );

    println!("1. Model      {id}");
    println!(
        "              the CIDv1 of the model's bytes: `ipfs add --cid-version=1` gives the same id"
    );
    write_atomic(&path("iris_mlp.onnx"), MODEL)?;
    write_atomic(&path("input.json"), INPUT.as_bytes())?;

    let key = SigningKey::random(&mut rand::rngs::OsRng);
    let operator = crate::keys::address(&key);
    println!(
        "2. Operator   {}  (a throwaway key made for this demo)",
        operator.to_checksum(None)
    );

    let config = EngineConfig {
        profile: Profile::ExactPortable,
        ..EngineConfig::default()
    };
    let model = engine(Model::load(MODEL, &config), || {
        "loading the demo model".into()
    })?;
    let schema = InputSchema {
        inputs: model
            .info()
            .inputs
            .iter()
            .map(|i| (i.name.as_str(), i.dtype))
            .collect(),
        limits: *model.limits(),
    };
    let input_file = path("input.json").display().to_string();
    let inputs = read_inputs(std::slice::from_ref(&input_file), None, &schema)?;
    let nonce = random_nonce();
    let (execution, signed) = execute_and_sign(&model, &inputs, &key, nonce)?;
    println!(
        "3. Inference  three flowers, profile {}",
        signed.receipt.profile
    );
    for (name, t) in &execution.outputs {
        println!("     {name:<14} {}", tensor_summary(t));
    }
    write_atomic(
        &path("outputs.json"),
        serde_json::to_string(&named_to_json(&execution.outputs))
            .expect("JSON")
            .as_bytes(),
    )?;
    let receipt_path = path("receipt.json");
    write_atomic(
        &receipt_path,
        serde_json::to_string_pretty(&signed.to_json())
            .expect("JSON")
            .as_bytes(),
    )?;
    let r = &signed.receipt;
    println!(
        "4. Receipt    EIP-712, signed by the operator: {}",
        receipt_path.display()
    );
    println!("     inputs   {}", r.input_commitment);
    println!("     outputs  {}", r.output_commitment);
    println!(
        "     trace    {} (Merkle root over {} node hashes)",
        r.trace_root, r.trace_size
    );

    // Verify from the files, as a stranger holding only them would: the receipt and the model
    // are read back and the model is prepared afresh for the re-execution.
    let reread = SignedReceipt::from_json_bytes(&fs::read(&receipt_path).exit(Exit::Io)?)
        .exit(Exit::Internal)?;
    let model_bytes = fs::read(path("iris_mlp.onnx")).exit(Exit::Io)?;
    let fresh = engine(Model::load(&model_bytes, &config), || {
        "loading the written model".into()
    })?;
    let evidence = Evidence {
        nonce: Some(nonce),
        model_id: Some(("iris_mlp.onnx".into(), ModelId::of_bytes(&model_bytes))),
        model: Some(&fresh),
        inputs: Some(&inputs),
        outputs: Some(&execution.outputs),
        ..Evidence::default()
    };
    let report = check(&reread, &evidence)?;
    println!("5. Verify     signature, nonce, model id, inputs, outputs, and a re-execution:");
    report.print_indented("     ");
    if report.failed() {
        return Err(fail(
            Exit::VerificationFailed,
            "the demo's own receipt did not verify",
        ));
    }

    // Tamper: claim other outputs under the same signature.
    let mut forged = reread.clone();
    forged.receipt.output_commitment.0[0] ^= 0x01;
    let forged_report = check(&forged, &Evidence::default())?;
    println!("6. Tamper     one bit of the output commitment flipped:");
    match forged_report.first_failure() {
        Some(why) => println!("     rejected: {why}"),
        None => {
            return Err(fail(
                Exit::Internal,
                "a tampered receipt verified: this is a bug",
            ));
        }
    }

    println!("\nCheck it yourself, offline:");
    println!(
        "  vouch verify {} --model {} --input {} --nonce {}",
        receipt_path.display(),
        path("iris_mlp.onnx").display(),
        input_file,
        r.nonce
    );
    Ok(())
}
