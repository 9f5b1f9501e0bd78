//! The test vectors of docs/protocol.md §9, checked byte for byte.
//!
//! The vectors live in the document itself (between the `vectors:begin/end` markers), so the spec
//! and the test can't drift apart. After a deliberate format change (which needs a new version
//! anyway), regenerate them with `VOUCH_WRITE_VECTORS=1 cargo test -p vouch-engine --test
//! protocol_vectors` and review the diff.

use std::path::PathBuf;

use alloy_sol_types::SolStruct;
use serde_json::{Value, json};
use vouch_engine::{EngineConfig, Model, inputs_from_json};
use vouch_types::{
    Address, Limits, ModelId, Nonce, SigningKey, Tensor,
    receipt::domain,
    tensor::{commit_named, json::to_json, set_commitment},
};

const TEST_KEY: &str = "ac0974bec39a17e36ba4a6b4d238ff944bacb478cbed5efcae784d7bf4f2ff80";

fn repo(path: &str) -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("../..")
        .join(path)
}

fn tensor_vector(t: &Tensor) -> Value {
    json!({
        "tensor": to_json(t),
        "encoding": hex::encode(t.encode()),
        "commitment": t.commitment().to_string(),
    })
}

fn compute() -> Value {
    let l = Limits::DEFAULT;
    let f = Tensor::from_vec(vec![2], vec![1.0f32, -2.5]).unwrap();
    let s = Tensor::from_strings(vec![2], vec!["a".into(), "bé".into()], &l).unwrap();
    let b = Tensor::from_vec(vec![], vec![true]).unwrap();
    let i = Tensor::from_vec(vec![2, 1], vec![-1i64, 1 << 40]).unwrap();
    let set = set_commitment([("b", f.commitment()), ("a", s.commitment())]).unwrap();

    let key = SigningKey::from_slice(&hex::decode(TEST_KEY).unwrap()).unwrap();
    let model_bytes = std::fs::read(repo("tests/fixtures/models/iris_mlp.onnx")).unwrap();
    let model = Model::load(&model_bytes, &EngineConfig::default()).unwrap();
    let input: Value = serde_json::from_slice(
        &std::fs::read(repo("tests/fixtures/models/iris_mlp.input.json")).unwrap(),
    )
    .unwrap();
    let inputs = inputs_from_json(&model, &input).unwrap();
    let execution = model.run(&inputs).unwrap();
    let receipt = execution.receipt(
        &model,
        Address::from_private_key(&key),
        1_700_000_000,
        Nonce([1; 32]),
    );
    let signed = receipt.clone().sign(&key).unwrap();

    let manifest = vouch_types::publish::PublishManifest {
        name: "acme/iris-mlp".into(),
        version: "1.0.0".into(),
        model: ModelId::of_bytes(&model_bytes),
        description: "An MLP classifier on the iris data set".into(),
        task: "classification".into(),
        license: "Apache-2.0".into(),
        tags: vec!["sklearn".into(), "tabular".into()],
        publisher: Address::from_private_key(&key),
        timestamp: 1_700_000_000,
        nonce: Nonce([2; 32]),
    };
    let publish = json!({
        "struct_hash": manifest.to_eip712().eip712_hash_struct().to_string(),
        "type_hash": manifest.to_eip712().eip712_type_hash().to_string(),
        "signing_hash": manifest.signing_hash().to_string(),
        "signed": serde_json::to_value(manifest.sign(&key).unwrap()).unwrap(),
    });

    json!({
        "publish": publish,
        "model_ids": [
            {"bytes_utf8": "", "id": ModelId::of_bytes(b"").to_string()},
            {"bytes_utf8": "hello world", "id": ModelId::of_bytes(b"hello world").to_string()},
        ],
        "tensors": [tensor_vector(&f), tensor_vector(&s), tensor_vector(&b), tensor_vector(&i)],
        "tensor_set": {
            "entries": {"b": "tensors[0]", "a": "tensors[1]"},
            "commitment": set.to_string(),
        },
        "eip712": {
            "domain_separator": domain().separator().to_string(),
            "receipt_type_hash": receipt.to_eip712().eip712_type_hash().to_string(),
        },
        "receipt": {
            "model_file": "tests/fixtures/models/iris_mlp.onnx",
            "input_file": "tests/fixtures/models/iris_mlp.input.json",
            "outputs": vouch_types::tensor::json::named_to_json(&execution.outputs),
            "input_commitment": commit_named(&inputs).unwrap().to_string(),
            "struct_hash": receipt.to_eip712().eip712_hash_struct().to_string(),
            "signing_hash": receipt.signing_hash().to_string(),
            "signed": signed.to_json(),
            "trace_nodes": execution.trace.nodes.iter().map(|n| json!({"name": n.name, "hash": n.hash.to_string()})).collect::<Vec<_>>(),
        },
    })
}

const BEGIN: &str = "<!-- vectors:begin -->\n```json\n";
const END: &str = "\n```\n<!-- vectors:end -->";

#[test]
fn protocol_md_vectors_hold() {
    let doc_path = repo("docs/protocol.md");
    let doc = std::fs::read_to_string(&doc_path).unwrap();
    let start = doc.find(BEGIN).expect("vectors:begin marker") + BEGIN.len();
    let end = doc[start..].find(END).expect("vectors:end marker") + start;
    let computed = compute();
    if std::env::var_os("VOUCH_WRITE_VECTORS").is_some() {
        let text = serde_json::to_string_pretty(&computed).unwrap();
        std::fs::write(&doc_path, format!("{}{text}{}", &doc[..start], &doc[end..])).unwrap();
        return;
    }
    let recorded: Value =
        serde_json::from_str(&doc[start..end]).expect("the vectors block is JSON");
    assert_eq!(
        recorded, computed,
        "docs/protocol.md §9 no longer matches the implementation"
    );
}

#[test]
fn vectors_are_self_consistent() {
    // The recorded receipt verifies, names the model file and matches the recorded outputs.
    let v = compute();
    let signed = vouch_types::SignedReceipt::from_json(v["receipt"]["signed"].clone()).unwrap();
    signed.verify_signature().unwrap();
    assert_eq!(
        signed.receipt.operator.to_checksum(None),
        "0xf39Fd6e51aad88F6F4ce6aB8827279cffFb92266"
    );
    let model = std::fs::read(repo("tests/fixtures/models/iris_mlp.onnx")).unwrap();
    assert!(signed.receipt.model.matches(&model));
    let outputs = vouch_types::tensor::json::named_from_json(
        &v["receipt"]["outputs"],
        |_| None,
        &Limits::DEFAULT,
    )
    .unwrap();
    assert_eq!(
        commit_named(&outputs).unwrap(),
        signed.receipt.output_commitment
    );
    // The trace root is the Merkle root of the recorded node hashes.
    let hashes: Vec<[u8; 32]> = v["receipt"]["trace_nodes"]
        .as_array()
        .unwrap()
        .iter()
        .map(|n| {
            n["hash"]
                .as_str()
                .unwrap()
                .parse::<vouch_types::Commitment>()
                .unwrap()
                .0
        })
        .collect();
    assert_eq!(
        vouch_engine::trace::trace_root(hashes),
        signed.receipt.trace_root
    );
}
