//! End-to-end tests of the `vouch` binary: the happy paths, and every kind of bad input the
//! foundation issue lists, each with its documented exit code and a clear message.

use std::{
    path::{Path, PathBuf},
    process::{Command, Output},
};

use serde_json::{Value, json};

const PASSWORD: &str = "correct horse battery staple";

fn fixture(name: &str) -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("../../tests/fixtures/models")
        .join(name)
}

fn vouch(args: &[&str], dir: &Path) -> Output {
    Command::new(env!("CARGO_BIN_EXE_vouch"))
        .args(args)
        .current_dir(dir)
        .env("VOUCH_HOME", dir.join("home"))
        .env("VOUCH_KEYSTORE_PASSWORD", PASSWORD)
        .env_remove("VOUCH_PROFILE")
        .output()
        .expect("the vouch binary runs")
}

fn code(o: &Output) -> i32 {
    o.status.code().expect("exited, not killed")
}

fn stderr(o: &Output) -> String {
    String::from_utf8_lossy(&o.stderr).into_owned()
}

fn stdout(o: &Output) -> String {
    String::from_utf8_lossy(&o.stdout).into_owned()
}

/// Asserts the exit code and that stderr says something containing `needle`, on one line, with
/// no panic or backtrace.
fn assert_fails(o: &Output, exit: i32, needle: &str) {
    let err = stderr(o);
    assert_eq!(code(o), exit, "stdout: {}\nstderr: {err}", stdout(o));
    assert!(
        err.to_lowercase().contains(&needle.to_lowercase()),
        "expected {needle:?} in: {err}"
    );
    assert!(
        !err.contains("panicked") && !err.contains("RUST_BACKTRACE"),
        "{err}"
    );
}

struct Setup {
    dir: tempfile::TempDir,
}

impl Setup {
    fn new() -> Setup {
        let s = Setup {
            dir: tempfile::tempdir().unwrap(),
        };
        let o = s.run(&["keygen"]);
        assert_eq!(code(&o), 0, "{}", stderr(&o));
        s
    }
    fn path(&self, name: &str) -> PathBuf {
        self.dir.path().join(name)
    }
    fn p(&self, name: &str) -> String {
        self.path(name).display().to_string()
    }
    fn run(&self, args: &[&str]) -> Output {
        vouch(args, self.dir.path())
    }
    fn write(&self, name: &str, bytes: impl AsRef<[u8]>) -> String {
        std::fs::write(self.path(name), bytes).unwrap();
        self.p(name)
    }
    /// Runs the iris model and writes `receipt.json` and `outputs.json`.
    fn infer_iris(&self) -> Value {
        let model = fixture("iris_mlp.onnx");
        let input = fixture("iris_mlp.input.json");
        let o = self.run(&[
            "infer",
            model.to_str().unwrap(),
            "--input",
            input.to_str().unwrap(),
            "--out",
            &self.p("receipt.json"),
            "--outputs",
            &self.p("outputs.json"),
            "--nonce",
            &format!("0x{}", "ab".repeat(32)),
        ]);
        assert_eq!(code(&o), 0, "{}", stderr(&o));
        serde_json::from_slice(&std::fs::read(self.path("receipt.json")).unwrap()).unwrap()
    }
    fn verify(&self, receipt: &str, extra: &[&str]) -> Output {
        let model = fixture("iris_mlp.onnx");
        let input = fixture("iris_mlp.input.json");
        let mut args = vec![
            "verify",
            receipt,
            "--model",
            model.to_str().unwrap(),
            "--input",
            input.to_str().unwrap(),
        ];
        args.extend_from_slice(extra);
        self.run(&args)
    }
}

#[test]
fn demo_runs_and_verifies() {
    let dir = tempfile::tempdir().unwrap();
    let o = vouch(&["demo", "--dir", "d"], dir.path());
    assert_eq!(code(&o), 0, "{}", stderr(&o));
    let out = stdout(&o);
    assert!(
        out.contains("re-execution  outputs reproduced bit for bit"),
        "{out}"
    );
    assert!(out.contains("rejected: signature"), "{out}");
    // The command it prints at the end works.
    let receipt = dir.path().join("d/receipt.json");
    let o = vouch(
        &[
            "verify",
            receipt.to_str().unwrap(),
            "--model",
            "d/iris_mlp.onnx",
            "--input",
            "d/input.json",
        ],
        dir.path(),
    );
    assert_eq!(code(&o), 0, "{}", stdout(&o));
}

#[test]
fn keygen_writes_an_encrypted_owner_only_keystore_and_hides_the_key() {
    let s = Setup::new();
    let path = s.path("home/keys/operator.json");
    let text = std::fs::read_to_string(&path).unwrap();
    let ks: Value = serde_json::from_str(&text).unwrap();
    assert_eq!(ks["crypto"]["kdf"], "scrypt");
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        assert_eq!(
            std::fs::metadata(&path).unwrap().permissions().mode() & 0o777,
            0o600
        );
        assert_eq!(
            std::fs::metadata(path.parent().unwrap())
                .unwrap()
                .permissions()
                .mode()
                & 0o777,
            0o700
        );
    }
    // A second keygen refuses to overwrite.
    assert_fails(&s.run(&["keygen"]), 5, "already exists");
    // The private key is printed only when asked.
    let o = s.run(&["keygen", "--out", &s.p("k2.json"), "--json"]);
    let v: Value = serde_json::from_slice(&o.stdout).unwrap();
    assert!(v.get("private_key").is_none());
    assert!(!stdout(&o).contains("private"));
    let o = s.run(&[
        "keygen",
        "--out",
        &s.p("k3.json"),
        "--json",
        "--show-private-key",
    ]);
    let v: Value = serde_json::from_slice(&o.stdout).unwrap();
    assert_eq!(v["private_key"].as_str().unwrap().len(), 66);
}

#[test]
fn infer_then_verify_passes_every_check() {
    let s = Setup::new();
    let receipt = s.infer_iris();
    assert_eq!(receipt["profile"], "exact-portable/1");
    let o = s.verify(
        &s.p("receipt.json"),
        &[
            "--outputs",
            &s.p("outputs.json"),
            "--nonce",
            &format!("0x{}", "ab".repeat(32)),
            "--json",
        ],
    );
    assert_eq!(code(&o), 0, "{}", stdout(&o));
    let v: Value = serde_json::from_slice(&o.stdout).unwrap();
    assert_eq!(v["valid"], true);
    let checks: Vec<(&str, &str)> = v["checks"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| (c["check"].as_str().unwrap(), c["status"].as_str().unwrap()))
        .collect();
    for name in [
        "signature",
        "nonce",
        "model",
        "inputs",
        "outputs",
        "re-execution",
        "trace",
    ] {
        assert!(
            checks.contains(&(name, "pass")),
            "{name} did not pass: {checks:?}"
        );
    }
}

#[test]
fn inputs_can_be_npy_pb_or_inline_json() {
    let s = Setup::new();
    let model = fixture("iris_mlp.onnx");
    let m = model.to_str().unwrap();
    let npy = fixture("iris_mlp.input.npy");
    let o1 = s.run(&[
        "infer",
        m,
        "-i",
        npy.to_str().unwrap(),
        "--json",
        "--ephemeral-key",
    ]);
    let o2 = s.run(&[
        "infer",
        m,
        "-i",
        &format!("X={}", npy.display()),
        "--json",
        "--ephemeral-key",
    ]);
    let json_in = fixture("iris_mlp.input.json");
    let o3 = s.run(&[
        "infer",
        m,
        "-i",
        json_in.to_str().unwrap(),
        "--json",
        "--ephemeral-key",
    ]);
    let commit = |o: &Output| -> Value {
        assert_eq!(code(o), 0, "{}", stderr(o));
        serde_json::from_slice::<Value>(&o.stdout).unwrap()["receipt"]["input_commitment"].clone()
    };
    assert_eq!(commit(&o1), commit(&o2));
    assert_eq!(commit(&o1), commit(&o3));
    let o4 = s.run(&[
        "infer",
        m,
        "--input-json",
        r#"{"X": [[5.1, 3.5, 1.4, 0.2]]}"#,
        "--json",
        "--ephemeral-key",
    ]);
    let v: Value = serde_json::from_slice(&o4.stdout).unwrap();
    assert_eq!(v["outputs"]["label"]["data"], json!([0]));
}

#[test]
fn model_inspect_reports_signature_and_support() {
    let s = Setup::new();
    let m = fixture("mnist_cnn.onnx");
    let o = s.run(&["model", "inspect", m.to_str().unwrap(), "--json"]);
    assert_eq!(code(&o), 0);
    let v: Value = serde_json::from_slice(&o.stdout).unwrap();
    assert_eq!(
        v["id"],
        "bafkreicvsgvfdfc22kbyhh4jr4w37pwxri7gqmeerbdqkciddb3bykga2y"
    );
    assert_eq!(v["inputs"][0]["shape"], json!(["batch", 1, 28, 28]));
    assert_eq!(v["opsets"][""], 13);
    assert_eq!(v["all_ops_supported"], true);
    let o = s.run(&["model", "inspect", m.to_str().unwrap()]);
    assert!(stdout(&o).contains("Conv") && stdout(&o).contains("supported   yes"));
}

// ---- bad input: models --------------------------------------------------------------------------

#[test]
fn truncated_or_random_model_bytes() {
    let s = Setup::new();
    let good = std::fs::read(fixture("iris_mlp.onnx")).unwrap();
    let truncated = s.write("truncated.onnx", &good[..good.len() / 2]);
    assert_fails(
        &s.run(&["infer", &truncated, "--input-json", "{}", "--ephemeral-key"]),
        3,
        "not a valid ONNX model",
    );
    assert_fails(
        &s.run(&["model", "inspect", &truncated]),
        3,
        "not a valid ONNX model",
    );
    let random = s.write(
        "random.onnx",
        (0..4096u32)
            .map(|i| (i.wrapping_mul(2654435761) >> 13) as u8)
            .collect::<Vec<_>>(),
    );
    assert_fails(
        &s.run(&["infer", &random, "--input-json", "{}", "--ephemeral-key"]),
        3,
        "ONNX",
    );
    let empty = s.write("empty.onnx", b"");
    assert_fails(
        &s.run(&["infer", &empty, "--input-json", "{}", "--ephemeral-key"]),
        3,
        "ONNX",
    );
}

#[test]
fn unsupported_operator() {
    let s = Setup::new();
    // The iris model with its ArgMax renamed to an operator that doesn't exist.
    let mut bytes = std::fs::read(fixture("iris_mlp.onnx")).unwrap();
    let mut renamed = 0;
    while let Some(at) = bytes.windows(6).position(|w| w == b"ArgMax") {
        bytes[at..at + 6].copy_from_slice(b"ArgMix");
        renamed += 1;
    }
    assert!(renamed > 0, "ArgMax in the model");
    let m = s.write("unsupported.onnx", &bytes);
    let input = fixture("iris_mlp.input.json");
    assert_fails(
        &s.run(&[
            "infer",
            &m,
            "-i",
            input.to_str().unwrap(),
            "--ephemeral-key",
        ]),
        4,
        "unsupported operator(s): ArgMix",
    );
    let o = s.run(&["model", "inspect", &m]);
    assert_eq!(code(&o), 0);
    assert!(
        stdout(&o).contains("ArgMix") && stdout(&o).contains("UNSUPPORTED"),
        "{}",
        stdout(&o)
    );
}

// ---- bad input: tensors --------------------------------------------------------------------------

fn iris_infer(s: &Setup, extra: &[&str]) -> Output {
    let model = fixture("iris_mlp.onnx");
    let mut args = vec!["infer", model.to_str().unwrap(), "--ephemeral-key"];
    args.extend_from_slice(extra);
    s.run(&args)
}

#[test]
fn missing_and_extra_inputs() {
    let s = Setup::new();
    assert_fails(
        &iris_infer(&s, &["--input-json", "{}"]),
        3,
        "missing input \"X\"",
    );
    assert_fails(
        &iris_infer(&s, &["--input-json", r#"{"X": [[1,2,3,4]], "Y": [1]}"#]),
        3,
        "unknown input \"Y\"",
    );
}

#[test]
fn wrong_dtype_or_shape() {
    let s = Setup::new();
    assert_fails(
        &iris_infer(
            &s,
            &[
                "--input-json",
                r#"{"X": {"dtype": "float64", "data": [[1,2,3,4]]}}"#,
            ],
        ),
        3,
        "float32",
    );
    assert_fails(
        &iris_infer(&s, &["--input-json", r#"{"X": [[1,2,3]]}"#]),
        3,
        "must be float32[?,4]",
    );
    assert_fails(
        &iris_infer(&s, &["--input-json", r#"{"X": [1,2,3,4]}"#]),
        3,
        "got shape [4]",
    );
}

#[test]
fn tensor_over_the_size_limit() {
    let s = Setup::new();
    let o = iris_infer(
        &s,
        &[
            "--input-json",
            r#"{"X": [[1,2,3,4],[5,6,7,8]]}"#,
            "--max-tensor-bytes",
            "16",
        ],
    );
    assert_fails(&o, 3, "limit");
    // A .npy header claiming a huge shape is refused before anything is allocated.
    let mut npy = b"\x93NUMPY\x01\x00".to_vec();
    let header = "{'descr': '<f4', 'fortran_order': False, 'shape': (100000000000, 4), }\n";
    npy.extend_from_slice(&(header.len() as u16).to_le_bytes());
    npy.extend_from_slice(header.as_bytes());
    let f = s.write("huge.npy", npy);
    assert_fails(&iris_infer(&s, &["-i", &f]), 3, "limit");
}

#[test]
fn malformed_json() {
    let s = Setup::new();
    assert_fails(
        &iris_infer(&s, &["--input-json", r#"{"X": [[1,2,3,4]"#]),
        3,
        "not valid JSON",
    );
    let f = s.write("bad.json", b"{\"X\": [[1, 2, 3, 4]], }");
    assert_fails(&iris_infer(&s, &["-i", &f]), 3, "not valid JSON");
    assert_fails(
        &iris_infer(&s, &["--input-json", r#"{"X": [[1,2,"three",4]]}"#]),
        3,
        "not a valid float32",
    );
}

// ---- bad input: receipts -------------------------------------------------------------------------

#[test]
fn receipt_with_a_flipped_byte() {
    let s = Setup::new();
    s.infer_iris();
    let text = std::fs::read_to_string(s.path("receipt.json")).unwrap();
    // A changed hex digit inside a signed field: the signature no longer matches.
    let at = text.find("\"output_commitment\": \"0x").unwrap() + 30;
    let mut bytes = text.clone().into_bytes();
    bytes[at] = if bytes[at] == b'0' { b'1' } else { b'0' };
    let f = s.write("flipped.json", &bytes);
    let o = s.verify(&f, &[]);
    assert_eq!(code(&o), 1, "{}", stdout(&o));
    assert!(stdout(&o).contains("FAIL signature"), "{}", stdout(&o));
    // A flipped bit in the structure: not a receipt at all.
    let mut bytes = text.into_bytes();
    bytes[0] ^= 0x01;
    let f = s.write("broken.json", &bytes);
    assert_fails(&s.verify(&f, &[]), 3, "malformed receipt");
}

#[test]
fn receipt_signed_by_another_key() {
    let s = Setup::new();
    let mut receipt = s.infer_iris();
    // Another operator's (valid) signature over the same statement.
    let o = s.run(&["keygen", "--out", &s.p("other.json")]);
    assert_eq!(code(&o), 0);
    let other_model = fixture("iris_mlp.onnx");
    let input = fixture("iris_mlp.input.json");
    let o = s.run(&[
        "infer",
        other_model.to_str().unwrap(),
        "-i",
        input.to_str().unwrap(),
        "--key",
        &s.p("other.json"),
        "--json",
    ]);
    let other: Value = serde_json::from_slice(&o.stdout).unwrap();
    receipt["signature"] = other["receipt"]["signature"].clone();
    let f = s.write(
        "stolen-signature.json",
        serde_json::to_vec(&receipt).unwrap(),
    );
    let o = s.verify(&f, &[]);
    assert_eq!(code(&o), 1);
    assert!(stdout(&o).contains("FAIL signature"), "{}", stdout(&o));
    // An intact receipt from the other key, checked against the expected operator.
    let f = s.write(
        "other-receipt.json",
        serde_json::to_vec(&other["receipt"]).unwrap(),
    );
    let expected = receipt["operator"].as_str().unwrap().to_string();
    let o = s.verify(&f, &["--operator", &expected]);
    assert_eq!(code(&o), 1);
    assert!(stdout(&o).contains("FAIL operator"), "{}", stdout(&o));
}

#[test]
fn receipt_for_another_model_or_input() {
    let s = Setup::new();
    s.infer_iris();
    let r = s.p("receipt.json");
    let cnn = fixture("mnist_cnn.onnx");
    let input = fixture("iris_mlp.input.json");
    let o = s.run(&[
        "verify",
        &r,
        "--model",
        cnn.to_str().unwrap(),
        "--input",
        input.to_str().unwrap(),
    ]);
    assert_eq!(code(&o), 1);
    assert!(stdout(&o).contains("FAIL model"), "{}", stdout(&o));
    let iris = fixture("iris_mlp.onnx");
    let o = s.run(&[
        "verify",
        &r,
        "--model",
        iris.to_str().unwrap(),
        "--input-json",
        r#"{"X": [[5.1, 3.5, 1.4, 0.2]]}"#,
    ]);
    assert_eq!(code(&o), 1, "{}", stderr(&o));
    assert!(stdout(&o).contains("FAIL inputs"), "{}", stdout(&o));
    let other_outputs = s.write(
        "other-outputs.json",
        br#"{"label": {"dtype": "int64", "shape": [1], "data": [2]}}"#,
    );
    let o = s.run(&["verify", &r, "--outputs", &other_outputs]);
    assert_eq!(code(&o), 1);
    assert!(stdout(&o).contains("FAIL outputs"), "{}", stdout(&o));
    let o = s.verify(&r, &["--nonce", &format!("0x{}", "cd".repeat(32))]);
    assert_eq!(code(&o), 1);
    assert!(stdout(&o).contains("FAIL nonce"), "{}", stdout(&o));
}

#[test]
fn a_forged_output_is_caught_by_re_execution() {
    // An operator who signs a receipt for outputs the model doesn't produce: the signature is
    // valid, the re-execution is not.
    let s = Setup::new();
    let model = fixture("iris_mlp.onnx");
    let input = fixture("iris_mlp.input.json");
    let o = s.run(&[
        "infer",
        model.to_str().unwrap(),
        "-i",
        input.to_str().unwrap(),
        "--json",
        "--out",
        &s.p("r.json"),
    ]);
    assert_eq!(code(&o), 0);
    // Re-sign a receipt for another input's run, then present it with the original input.
    let o = s.run(&[
        "infer",
        model.to_str().unwrap(),
        "--input-json",
        r#"{"X": [[6.3, 3.3, 6.0, 2.5], [5.1, 3.5, 1.4, 0.2], [5.7, 2.8, 4.1, 1.3]]}"#,
        "--out",
        &s.p("lie.json"),
    ]);
    assert_eq!(code(&o), 0);
    let o = s.verify(&s.p("lie.json"), &[]);
    assert_eq!(code(&o), 1);
    assert!(stdout(&o).contains("FAIL inputs"), "{}", stdout(&o));
    // Editing the lie's receipt to claim the honest input breaks the signature, and re-running
    // the model on that input does not give the lie's outputs.
    let mut lie: Value =
        serde_json::from_slice(&std::fs::read(s.path("lie.json")).unwrap()).unwrap();
    let honest: Value = serde_json::from_slice(&std::fs::read(s.path("r.json")).unwrap()).unwrap();
    lie["input_commitment"] = honest["input_commitment"].clone();
    let f = s.write("spliced.json", serde_json::to_vec(&lie).unwrap());
    let o = s.verify(&f, &[]);
    assert_eq!(code(&o), 1);
    assert!(stdout(&o).contains("FAIL signature"), "{}", stdout(&o));
    assert!(stdout(&o).contains("FAIL re-execution"), "{}", stdout(&o));
}

#[test]
fn wrong_keystore_password() {
    let s = Setup::new();
    let model = fixture("iris_mlp.onnx");
    let input = fixture("iris_mlp.input.json");
    let o = Command::new(env!("CARGO_BIN_EXE_vouch"))
        .args([
            "infer",
            model.to_str().unwrap(),
            "-i",
            input.to_str().unwrap(),
        ])
        .env("VOUCH_HOME", s.path("home"))
        .env("VOUCH_KEYSTORE_PASSWORD", "wrong")
        .output()
        .unwrap();
    assert_fails(&o, 5, "wrong password");
    let o = Command::new(env!("CARGO_BIN_EXE_vouch"))
        .args([
            "infer",
            model.to_str().unwrap(),
            "-i",
            input.to_str().unwrap(),
        ])
        .env("VOUCH_HOME", s.path("nowhere"))
        .env("VOUCH_KEYSTORE_PASSWORD", PASSWORD)
        .output()
        .unwrap();
    assert_fails(&o, 5, "vouch keygen");
}

#[test]
fn usage_errors_exit_2() {
    let s = Setup::new();
    assert_eq!(code(&s.run(&["infer"])), 2);
    assert_eq!(code(&s.run(&["frobnicate"])), 2);
    let m = fixture("iris_mlp.onnx");
    assert_fails(
        &s.run(&[
            "infer",
            m.to_str().unwrap(),
            "--profile",
            "fastest",
            "--ephemeral-key",
        ]),
        2,
        "unknown profile",
    );
}
