//! Receipts checked by an independent verifier: tests/interop/verify_receipt.py, written from
//! docs/protocol.md with hashlib, numpy and eth-account (a wallet library), no shared code.
//!
//! Needs a Python with numpy and eth-account: `VOUCH_PYTHON=/path/to/python`. `.ci/test` sets it
//! up and sets `VOUCH_REQUIRE_INTEROP=1`, which turns a missing Python into a failure instead of
//! a skip.

use std::{
    path::{Path, PathBuf},
    process::Command,
};

fn repo(path: &str) -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("../..")
        .join(path)
}

fn python() -> Option<String> {
    match std::env::var("VOUCH_PYTHON") {
        Ok(p) => Some(p),
        Err(_) if std::env::var_os("VOUCH_REQUIRE_INTEROP").is_some() => {
            panic!("VOUCH_REQUIRE_INTEROP is set but VOUCH_PYTHON is not")
        }
        Err(_) => {
            eprintln!("skipped: set VOUCH_PYTHON to a Python with numpy and eth-account");
            None
        }
    }
}

fn verifier(python: &str, args: &[&str]) -> (bool, String) {
    let o = Command::new(python)
        .arg(repo("tests/interop/verify_receipt.py"))
        .args(args)
        .output()
        .expect("python runs");
    (
        o.status.success(),
        format!(
            "{}{}",
            String::from_utf8_lossy(&o.stdout),
            String::from_utf8_lossy(&o.stderr)
        ),
    )
}

fn vouch(args: &[&str], dir: &Path) {
    let o = Command::new(env!("CARGO_BIN_EXE_vouch"))
        .args(args)
        .current_dir(dir)
        .output()
        .unwrap();
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
}

#[test]
fn independent_verifier_accepts_the_spec_vectors() {
    let Some(py) = python() else { return };
    let (ok, out) = verifier(
        &py,
        &["vectors", repo("docs/protocol.md").to_str().unwrap()],
    );
    assert!(ok, "{out}");
}

#[test]
fn independent_verifier_accepts_our_receipts_and_rejects_tampered_ones() {
    let Some(py) = python() else { return };
    let dir = tempfile::tempdir().unwrap();
    for stem in ["iris_mlp", "mnist_cnn"] {
        let model = repo(&format!("tests/fixtures/models/{stem}.onnx"));
        let input = repo(&format!("tests/fixtures/models/{stem}.input.json"));
        let (m, i) = (model.to_str().unwrap(), input.to_str().unwrap());
        vouch(
            &[
                "infer",
                m,
                "-i",
                i,
                "--ephemeral-key",
                "--out",
                "r.json",
                "--outputs",
                "o.json",
                "--trace",
                "t.json",
            ],
            dir.path(),
        );
        let check = |receipt: &str| {
            verifier(
                &py,
                &[
                    "receipt",
                    dir.path().join(receipt).to_str().unwrap(),
                    "--model",
                    m,
                    "--input",
                    i,
                    "--outputs",
                    dir.path().join("o.json").to_str().unwrap(),
                    "--trace",
                    dir.path().join("t.json").to_str().unwrap(),
                ],
            )
        };
        let (ok, out) = check("r.json");
        assert!(ok, "{stem}: {out}");
        // Each signed field changed in turn: the independent verifier must object every time.
        let original: serde_json::Value =
            serde_json::from_slice(&std::fs::read(dir.path().join("r.json")).unwrap()).unwrap();
        for field in [
            "input_commitment",
            "output_commitment",
            "trace_root",
            "nonce",
        ] {
            let mut forged = original.clone();
            let mut value = forged[field].as_str().unwrap().to_string();
            let last = if value.ends_with('0') { "1" } else { "0" };
            value.replace_range(value.len() - 1.., last);
            forged[field] = value.into();
            std::fs::write(dir.path().join("forged.json"), forged.to_string()).unwrap();
            let (ok, out) = check("forged.json");
            assert!(
                !ok,
                "{stem}: a changed {field} passed the independent verifier:\n{out}"
            );
        }
    }
}
