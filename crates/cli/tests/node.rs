//! End to end over loopback: a real `vouch node` process on an OS-chosen port, driven by the
//! `vouch` client commands and raw HTTP. Publish, list, show, pull, infer (verified, with the
//! log proof), bad requests, overload, restart and persistence.

use std::{
    io::{BufRead, BufReader},
    path::{Path, PathBuf},
    process::{Child, Command, Output, Stdio},
    time::Duration,
};

use serde_json::{Value, json};

const PASSWORD: &str = "node test password";

fn fixture(name: &str) -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("../../tests/fixtures/models")
        .join(name)
}

struct NodeProcess {
    child: Child,
    url: String,
}

impl NodeProcess {
    /// Starts `vouch node` with a config file, waits for its "listening on" line.
    fn start(dir: &Path, extra_config: &str) -> NodeProcess {
        NodeProcess::start_with_data(dir, "data", extra_config)
    }

    /// The same, with the data directory `dir/<data>`.
    fn start_with_data(dir: &Path, data: &str, extra_config: &str) -> NodeProcess {
        NodeProcess::start_with_args(dir, data, extra_config, &[])
    }

    /// The same, with more command-line arguments.
    fn start_with_args(dir: &Path, data: &str, extra_config: &str, args: &[&str]) -> NodeProcess {
        let config = dir.join(format!("{data}.toml"));
        std::fs::write(
            &config,
            format!(
                "listen = \"127.0.0.1:0\"\ndata_dir = \"{}\"\n{extra_config}",
                dir.join(data).display()
            ),
        )
        .unwrap();
        let mut child = Command::new(env!("CARGO_BIN_EXE_vouch"))
            .args(["node", "--config", config.to_str().unwrap()])
            .args(args)
            .env_remove("VOUCH_KEYSTORE_PASSWORD")
            .env("VOUCH_LOG", "warn")
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .spawn()
            .unwrap();
        let stdout = child.stdout.take().unwrap();
        let (tx, rx) = std::sync::mpsc::channel();
        std::thread::spawn(move || {
            for line in BufReader::new(stdout).lines().map_while(Result::ok) {
                if let Some(url) = line.strip_prefix("vouch node listening on ") {
                    let _ = tx.send(url.to_string());
                }
            }
        });
        let url = rx
            .recv_timeout(Duration::from_secs(60))
            .expect("the node starts within 60 s");
        NodeProcess { child, url }
    }

    /// SIGTERM, then wait for a clean exit.
    fn stop(mut self) {
        let pid = self.child.id().to_string();
        Command::new("kill").args(["-TERM", &pid]).status().unwrap();
        for _ in 0..300 {
            if let Some(status) = self.child.try_wait().unwrap() {
                assert!(status.success(), "the node exited with {status}");
                return;
            }
            std::thread::sleep(Duration::from_millis(100));
        }
        panic!("the node did not stop within 30 s of SIGTERM");
    }
}

impl Drop for NodeProcess {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn vouch(dir: &Path, args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_vouch"))
        .args(args)
        .current_dir(dir)
        .env("VOUCH_HOME", dir.join("home"))
        .env("VOUCH_KEYSTORE_PASSWORD", PASSWORD)
        .output()
        .unwrap()
}

fn ok(o: &Output) -> String {
    assert!(
        o.status.success(),
        "exit {:?}\nstdout: {}\nstderr: {}",
        o.status.code(),
        String::from_utf8_lossy(&o.stdout),
        String::from_utf8_lossy(&o.stderr)
    );
    String::from_utf8_lossy(&o.stdout).into_owned()
}

fn agent() -> ureq::Agent {
    ureq::Agent::config_builder()
        .http_status_as_error(false)
        .timeout_global(Some(Duration::from_secs(60)))
        .build()
        .into()
}

fn get(url: &str) -> (u16, Value) {
    let mut r = agent().get(url).call().unwrap();
    let status = r.status().as_u16();
    let body = r.body_mut().read_to_string().unwrap();
    (
        status,
        serde_json::from_str(&body).unwrap_or(Value::String(body)),
    )
}

fn post(url: &str, body: &str) -> (u16, Value, Option<String>) {
    let mut r = agent()
        .post(url)
        .header("content-type", "application/json")
        .send(body)
        .unwrap();
    let status = r.status().as_u16();
    let retry = r
        .headers()
        .get("retry-after")
        .map(|v| v.to_str().unwrap().to_string());
    let body = r.body_mut().read_to_string().unwrap();
    (
        status,
        serde_json::from_str(&body).unwrap_or(Value::String(body)),
        retry,
    )
}

fn push(
    dir: &Path,
    url: &str,
    file: &Path,
    name: &str,
    version: &str,
    key: Option<&str>,
) -> Output {
    let mut args = vec![
        "model",
        "push",
        file.to_str().unwrap(),
        "--name",
        name,
        "--version",
        version,
        "--node",
        url,
        "--task",
        "classification",
        "--tag",
        "sklearn",
        "--description",
        "iris MLP",
    ];
    if let Some(k) = key {
        args.extend(["--key", k]);
    }
    vouch(dir, &args)
}

#[test]
fn publish_infer_verify_restart() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    ok(&vouch(d, &["keygen"]));
    let node = NodeProcess::start(d, "");
    let url = node.url.clone();
    let iris = fixture("iris_mlp.onnx");

    // Publish, list, show, pull.
    ok(&push(d, &url, &iris, "acme/iris", "1.0.0", None));
    ok(&push(d, &url, &iris, "acme/iris", "1.1.0", None));
    let ls: Value =
        serde_json::from_str(&ok(&vouch(d, &["model", "ls", "--node", &url, "--json"]))).unwrap();
    assert_eq!(ls["models"].as_array().unwrap().len(), 1, "{ls}");
    let ls: Value = serde_json::from_str(&ok(&vouch(
        d,
        &["model", "ls", "--tag", "nosuch", "--node", &url, "--json"],
    )))
    .unwrap();
    assert!(ls["models"].as_array().unwrap().is_empty());
    let show = ok(&vouch(d, &["model", "show", "acme/iris", "--node", &url]));
    assert!(
        show.contains("acme/iris@1.1.0") && show.contains("signature checked"),
        "{show}"
    );
    ok(&vouch(
        d,
        &[
            "model",
            "pull",
            "acme/iris@1.0.0",
            "--node",
            &url,
            "--out",
            "pulled.onnx",
        ],
    ));
    assert_eq!(
        std::fs::read(d.join("pulled.onnx")).unwrap(),
        std::fs::read(&iris).unwrap()
    );

    // Inference through the node, verified by the client, with the log proof.
    let input = fixture("iris_mlp.input.json");
    let out = ok(&vouch(
        d,
        &[
            "infer",
            "acme/iris@1.0.0",
            "--node",
            &url,
            "-i",
            input.to_str().unwrap(),
            "--out",
            "r.json",
            "--log-proof",
            "proof.txt",
            "--json",
        ],
    ));
    let v: Value = serde_json::from_str(&out).unwrap();
    assert_eq!(v["verified"], true, "{v}");
    assert_eq!(v["outputs"]["label"]["data"], json!([0, 1, 2]));
    let checks: Vec<&str> = v["checks"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| c["check"].as_str().unwrap())
        .collect();
    for c in ["signature", "nonce", "model", "inputs", "outputs", "log"] {
        assert!(checks.contains(&c), "{c} missing from {checks:?}");
    }
    // The same receipt verifies offline: re-execution against the pulled model, and the log
    // proof against the log key from /healthz.
    let (_, health) = get(&format!("{url}/healthz"));
    let log_key = health["log"]["key"].as_str().unwrap().to_string();
    ok(&vouch(
        d,
        &[
            "verify",
            "r.json",
            "--model",
            "pulled.onnx",
            "-i",
            input.to_str().unwrap(),
            "--log-proof",
            "proof.txt",
            "--log-key",
            &log_key,
        ],
    ));
    // A proof checked against another log's key fails.
    let other = vouch_log::NoteSigner::generate("localhost/vouch")
        .unwrap()
        .verifier()
        .to_vkey();
    let o = vouch(
        d,
        &[
            "verify",
            "r.json",
            "--log-proof",
            "proof.txt",
            "--log-key",
            &other,
        ],
    );
    assert_eq!(
        o.status.code(),
        Some(1),
        "{}",
        String::from_utf8_lossy(&o.stdout)
    );

    // The log serves C2SP checkpoints and tiles, and the receipt as entry 0.
    let mut r = agent().get(&format!("{url}/checkpoint")).call().unwrap();
    let cp = r.body_mut().read_to_string().unwrap();
    assert!(cp.starts_with("localhost/vouch\n1\n"), "{cp}");
    let (status, entry) = get(&format!("{url}/v1/log/entries/0"));
    assert_eq!(status, 200);
    assert_eq!(
        entry["receipt"],
        serde_json::from_slice::<Value>(&std::fs::read(d.join("r.json")).unwrap()).unwrap()
    );
    let r = agent()
        .get(&format!("{url}/tile/entries/000.p/1"))
        .call()
        .unwrap();
    assert_eq!(r.status().as_u16(), 200);
    let (status, _) = get(&format!("{url}/tile/../../keys/operator.key"));
    assert_eq!(status, 404);

    // Metrics and the API description.
    let mut r = agent().get(&format!("{url}/metrics")).call().unwrap();
    let metrics = r.body_mut().read_to_string().unwrap();
    assert!(
        metrics.contains("vouch_receipts_total{profile=\"exact-portable/1\"} 1"),
        "{metrics}"
    );
    let (status, spec) = get(&format!("{url}/openapi.json"));
    assert_eq!((status, spec["openapi"].as_str()), (200, Some("3.1.0")));

    // Restart: everything is still there, and the log continues. The receipt index is
    // derived data: delete it, and the node rebuilds it from the log before serving.
    node.stop();
    for f in [
        "log-index.sqlite",
        "log-index.sqlite-wal",
        "log-index.sqlite-shm",
    ] {
        let _ = std::fs::remove_file(d.join("data").join(f));
    }
    let node = NodeProcess::start(d, "");
    let url = node.url.clone();
    let proved = ok(&vouch(
        d,
        &[
            "log",
            "prove",
            "r.json",
            "--node",
            &url,
            "--log-key",
            health["log"]["key"].as_str().unwrap(),
            "--json",
        ],
    ));
    let proved: Value = serde_json::from_str(&proved).unwrap();
    assert_eq!(proved["included"], true, "{proved}");
    let show = ok(&vouch(
        d,
        &["model", "show", "acme/iris@1.0.0", "--node", &url],
    ));
    assert!(show.contains("acme/iris@1.0.0"));
    let (_, health2) = get(&format!("{url}/healthz"));
    assert_eq!(health2["log"]["size"], 1);
    assert_eq!(
        health2["log"]["key"], health["log"]["key"],
        "the log keeps its key"
    );
    assert_eq!(
        health2["operator"], health["operator"],
        "the operator keeps its key"
    );
    let out = ok(&vouch(
        d,
        &[
            "infer",
            "acme/iris",
            "--node",
            &url,
            "-i",
            input.to_str().unwrap(),
            "--json",
            "--log-key",
            &log_key,
        ],
    ));
    let v: Value = serde_json::from_str(&out).unwrap();
    assert_eq!(v["log"]["index"], 1);
    node.stop();
}

#[test]
fn bad_requests_get_clear_errors() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    ok(&vouch(d, &["keygen"]));
    ok(&vouch(
        d,
        &["keygen", "--out", d.join("mallory.json").to_str().unwrap()],
    ));
    let node = NodeProcess::start(d, "[hub]\nmax_model_bytes = 100000\n");
    let url = node.url.clone();
    let iris = fixture("iris_mlp.onnx");
    ok(&push(d, &url, &iris, "acme/iris", "1.0.0", None));

    // Another key can't publish in a claimed namespace.
    let o = push(
        d,
        &url,
        &iris,
        "acme/iris",
        "2.0.0",
        Some(d.join("mallory.json").to_str().unwrap()),
    );
    assert!(!o.status.success());
    assert!(
        String::from_utf8_lossy(&o.stderr).contains("not_owner"),
        "{}",
        String::from_utf8_lossy(&o.stderr)
    );
    // The same version twice.
    let o = push(d, &url, &iris, "acme/iris", "1.0.0", None);
    assert!(
        String::from_utf8_lossy(&o.stderr).contains("version_exists"),
        "{}",
        String::from_utf8_lossy(&o.stderr)
    );
    // An upload over the size limit (mlp_784 is 438 KB).
    let o = push(d, &url, &fixture("mlp_784.onnx"), "acme/big", "1.0.0", None);
    assert!(
        String::from_utf8_lossy(&o.stderr).contains("too_large"),
        "{}",
        String::from_utf8_lossy(&o.stderr)
    );
    // Not ONNX.
    let junk = d.join("junk.onnx");
    std::fs::write(&junk, b"this is not a model").unwrap();
    let o = push(d, &url, &junk, "acme/junk", "1.0.0", None);
    assert!(
        String::from_utf8_lossy(&o.stderr).contains("not_onnx"),
        "{}",
        String::from_utf8_lossy(&o.stderr)
    );
    // An upload without a manifest.
    let mut r = agent()
        .put(&format!("{url}/v1/models/acme/x/1.0.0"))
        .send(&b"abc"[..])
        .unwrap();
    assert_eq!(r.status().as_u16(), 401);
    let body: Value = serde_json::from_str(&r.body_mut().read_to_string().unwrap()).unwrap();
    assert_eq!(body["error"]["code"], "missing_manifest");

    // Inference: unknown model, malformed body, bad inputs, bad nonce.
    let nonce = format!("0x{}", "11".repeat(32));
    let unknown =
        format!("{{\"model\": \"acme/none@1.0.0\", \"inputs\": {{}}, \"nonce\": \"{nonce}\"}}");
    let (status, body, _) = post(&format!("{url}/v1/infer"), &unknown);
    assert_eq!(
        (status, body["error"]["code"].as_str()),
        (404, Some("not_found")),
        "{body}"
    );
    let (status, body, _) = post(&format!("{url}/v1/infer"), "{\"model\": ");
    assert_eq!(
        (status, body["error"]["code"].as_str()),
        (400, Some("bad_request")),
        "{body}"
    );
    let wrong_shape = format!(
        "{{\"model\": \"acme/iris\", \"inputs\": {{\"X\": [[1,2,3]]}}, \"nonce\": \"{nonce}\"}}"
    );
    let (status, body, _) = post(&format!("{url}/v1/infer"), &wrong_shape);
    assert_eq!(
        (status, body["error"]["code"].as_str()),
        (400, Some("invalid_input")),
        "{body}"
    );
    let bad_nonce =
        "{\"model\": \"acme/iris\", \"inputs\": {\"X\": [[1,2,3,4]]}, \"nonce\": \"0x12\"}";
    let (status, _, _) = post(&format!("{url}/v1/infer"), bad_nonce);
    assert_eq!(status, 400);
    // Leaf lookups: a malformed hash is a 400, an absent one a 404.
    for (leaf, want) in [
        ("zz", 400),
        (&*"ab".repeat(33), 400),
        (&*"ab".repeat(32), 404),
    ] {
        let (status, body) = get(&format!("{url}/v1/log/leaves/{leaf}"));
        assert_eq!(status, want, "{leaf}: {body}");
    }
    let (status, body) = get(&format!("{url}/v1/blobs/not-a-cid"));
    assert_eq!(
        (status, body["error"]["code"].as_str()),
        (400, Some("bad_request"))
    );
    let (status, _) = get(&format!("{url}/no/such/route"));
    assert_eq!(status, 404);
    node.stop();
}

#[test]
fn overload_is_refused_quickly_not_queued_forever() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    ok(&vouch(d, &["keygen"]));
    let node = NodeProcess::start(d, "[inference]\nmax_concurrent = 1\nmax_queued = 0\n");
    let url = node.url.clone();
    ok(&push(
        d,
        &url,
        &fixture("mnist_cnn.onnx"),
        "acme/cnn",
        "1.0.0",
        None,
    ));
    // Big batches keep the single slot busy for a while.
    let batch = vec![vec![vec![vec![0.5f32; 28]; 28]; 1]; 512];
    let body = json!({"model": "acme/cnn", "inputs": {"image": batch}, "nonce": format!("0x{}", "22".repeat(32))}).to_string();
    let threads: Vec<_> = (0..6)
        .map(|_| {
            let (url, body) = (url.clone(), body.clone());
            std::thread::spawn(move || post(&format!("{url}/v1/infer"), &body))
        })
        .collect();
    let results: Vec<_> = threads.into_iter().map(|t| t.join().unwrap()).collect();
    let served = results.iter().filter(|r| r.0 == 200).count();
    let refused: Vec<_> = results.iter().filter(|r| r.0 == 503).collect();
    assert_eq!(
        served + refused.len(),
        results.len(),
        "only 200 or 503: {:?}",
        results.iter().map(|r| r.0).collect::<Vec<_>>()
    );
    assert!(
        served >= 1 && !refused.is_empty(),
        "served {served}, refused {}",
        refused.len()
    );
    for r in refused {
        assert_eq!(r.1["error"]["code"], "overloaded");
        assert_eq!(r.2.as_deref(), Some("1"), "503s carry Retry-After");
    }
    node.stop();
}

/// A child process killed when dropped (a failing test must not leak it).
struct KillOnDrop(Child);

impl Drop for KillOnDrop {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// Starts `vouch witness` following `log_key`; returns the process, its URL and its key.
fn start_witness(dir: &Path, log_key: &str) -> (KillOnDrop, String, String) {
    let mut child = Command::new(env!("CARGO_BIN_EXE_vouch"))
        .args([
            "witness",
            "--listen",
            "127.0.0.1:0",
            "--data-dir",
            dir.join("witness").to_str().unwrap(),
            "--name",
            "test/witness",
            "--log",
            log_key,
        ])
        .env("VOUCH_LOG", "warn")
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    let stdout = child.stdout.take().unwrap();
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        let (mut key, mut url) = (None, None);
        for line in BufReader::new(stdout).lines().map_while(Result::ok) {
            if let Some(k) = line.strip_prefix("vouch witness key ") {
                key = Some(k.to_string());
            }
            if let Some(u) = line.strip_prefix("vouch witness listening on ") {
                url = Some(u.to_string());
            }
            if let (Some(k), Some(u)) = (&key, &url) {
                let _ = tx.send((u.clone(), k.clone()));
                key = None;
            }
        }
    });
    let child = KillOnDrop(child);
    let (url, key) = rx
        .recv_timeout(Duration::from_secs(60))
        .expect("the witness starts");
    (child, url, key)
}

#[test]
fn witnessed_log_and_log_commands() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    ok(&vouch(d, &["keygen"]));
    // First start only to learn the log key, which the witness must be told.
    let node = NodeProcess::start(d, "");
    let (_, health) = get(&format!("{}/healthz", node.url));
    let log_key = health["log"]["key"].as_str().unwrap().to_string();
    node.stop();
    let (_witness, witness_url, witness_key) = start_witness(d, &log_key);
    let node = NodeProcess::start(
        d,
        &format!("[[log.witnesses]]\nurl = \"{witness_url}\"\nvkey = \"{witness_key}\"\n"),
    );
    let url = node.url.clone();
    ok(&push(
        d,
        &url,
        &fixture("iris_mlp.onnx"),
        "acme/iris",
        "1.0.0",
        None,
    ));
    let input = fixture("iris_mlp.input.json");
    let i = input.to_str().unwrap();

    // A client requiring one witness cosignature gets a proof against a cosigned checkpoint.
    let out = ok(&vouch(
        d,
        &[
            "infer",
            "acme/iris",
            "--node",
            &url,
            "-i",
            i,
            "--log-key",
            &log_key,
            "--witness",
            &witness_key,
            "--min-witnesses",
            "1",
            "--out",
            "r.json",
            "--log-proof",
            "p.txt",
            "--json",
        ],
    ));
    let v: Value = serde_json::from_str(&out).unwrap();
    assert_eq!(v["verified"], true, "{v}");
    let log_check = v["checks"]
        .as_array()
        .unwrap()
        .iter()
        .find(|c| c["check"] == "log")
        .unwrap()
        .clone();
    assert!(
        log_check["detail"]
            .as_str()
            .unwrap()
            .contains("1 witness cosignature"),
        "{log_check}"
    );
    // Offline: the saved proof passes with the witness required, and fails when two are.
    ok(&vouch(
        d,
        &[
            "verify",
            "r.json",
            "--log-proof",
            "p.txt",
            "--log-key",
            &log_key,
            "--witness",
            &witness_key,
            "--min-witnesses",
            "1",
        ],
    ));
    let o = vouch(
        d,
        &[
            "verify",
            "r.json",
            "--log-proof",
            "p.txt",
            "--log-key",
            &log_key,
            "--min-witnesses",
            "1",
        ],
    );
    assert!(
        !o.status.success(),
        "a policy the checkpoint can't meet must fail"
    );

    // vouch log: checkpoint, prove, consistency, monitor.
    ok(&vouch(
        d,
        &[
            "log",
            "checkpoint",
            "--node",
            &url,
            "--log-key",
            &log_key,
            "--out",
            "cp1.txt",
        ],
    ));
    let index = v["log"]["index"].as_u64().unwrap().to_string();
    ok(&vouch(
        d,
        &[
            "log",
            "prove",
            "r.json",
            "--index",
            &index,
            "--node",
            &url,
            "--log-key",
            &log_key,
            "--out",
            "p2.txt",
        ],
    ));
    // Without --index: the node finds the receipt by its leaf hash (indexed within ~50 ms).
    let prove_by_hash = |receipt: &str| {
        vouch(
            d,
            &[
                "log",
                "prove",
                receipt,
                "--node",
                &url,
                "--log-key",
                &log_key,
                "--json",
            ],
        )
    };
    let mut found = prove_by_hash("r.json");
    for _ in 0..50 {
        if found.status.success() {
            break;
        }
        std::thread::sleep(std::time::Duration::from_millis(100));
        found = prove_by_hash("r.json");
    }
    let proved: Value = serde_json::from_str(&ok(&found)).unwrap();
    assert_eq!(proved["included"], true, "{proved}");
    // A receipt with one changed field has another leaf hash: not in the log.
    let mut forged: Value =
        serde_json::from_str(&std::fs::read_to_string(d.join("r.json")).unwrap()).unwrap();
    let nonce = forged["nonce"].as_str().unwrap().to_string();
    let flipped = if nonce.ends_with('0') { "1" } else { "0" };
    forged["nonce"] = json!(format!("{}{flipped}", &nonce[..nonce.len() - 1]));
    std::fs::write(d.join("forged.json"), forged.to_string()).unwrap();
    let o = prove_by_hash("forged.json");
    assert!(
        !o.status.success()
            && String::from_utf8_lossy(&o.stderr).contains("no entry with leaf hash"),
        "{}",
        String::from_utf8_lossy(&o.stderr)
    );
    ok(&vouch(
        d,
        &[
            "infer",
            "acme/iris",
            "--node",
            &url,
            "-i",
            i,
            "--log-key",
            &log_key,
        ],
    ));
    ok(&vouch(
        d,
        &[
            "log",
            "checkpoint",
            "--node",
            &url,
            "--log-key",
            &log_key,
            "--out",
            "cp2.txt",
        ],
    ));
    let o = ok(&vouch(
        d,
        &[
            "log",
            "consistency",
            "cp1.txt",
            "cp2.txt",
            "--node",
            &url,
            "--log-key",
            &log_key,
        ],
    ));
    assert!(o.contains("consistent"), "{o}");
    let o = ok(&vouch(
        d,
        &[
            "log",
            "monitor",
            "--node",
            &url,
            "--log-key",
            &log_key,
            "--state",
            "mon.txt",
            "--once",
        ],
    ));
    assert_eq!(o.lines().filter(|l| l.contains(" ok ")).count(), 2, "{o}");
    // A checkpoint whose root was changed fails the log's signature.
    let text = std::fs::read_to_string(d.join("cp1.txt")).unwrap();
    let mut lines: Vec<&str> = text.lines().collect();
    lines[2] = "AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA=";
    std::fs::write(d.join("tampered.txt"), lines.join("\n") + "\n").unwrap();
    let o = vouch(
        d,
        &[
            "log",
            "consistency",
            "tampered.txt",
            "cp2.txt",
            "--node",
            &url,
            "--log-key",
            &log_key,
        ],
    );
    assert!(
        !o.status.success(),
        "a checkpoint with a changed root must not pass"
    );
    node.stop();

    // A fork: the same log (same key) continued in two places with different entries. Both
    // halves sign valid checkpoints; put side by side they are caught.
    copy_dir(&d.join("data"), &d.join("fork"));
    let a = NodeProcess::start(d, "");
    let b = NodeProcess::start_with_data(d, "fork", "");
    ok(&vouch(
        d,
        &[
            "infer",
            "acme/iris",
            "--node",
            &a.url,
            "-i",
            i,
            "--log-key",
            &log_key,
        ],
    ));
    ok(&vouch(
        d,
        &[
            "infer",
            "acme/iris",
            "--node",
            &b.url,
            "--input-json",
            r#"{"X": [[6.0, 2.2, 5.0, 1.5]]}"#,
            "--log-key",
            &log_key,
        ],
    ));
    ok(&vouch(
        d,
        &[
            "log",
            "checkpoint",
            "--node",
            &a.url,
            "--log-key",
            &log_key,
            "--out",
            "a.txt",
        ],
    ));
    ok(&vouch(
        d,
        &[
            "log",
            "checkpoint",
            "--node",
            &b.url,
            "--log-key",
            &log_key,
            "--out",
            "b.txt",
        ],
    ));
    let o = vouch(
        d,
        &[
            "log",
            "consistency",
            "a.txt",
            "b.txt",
            "--node",
            &a.url,
            "--log-key",
            &log_key,
        ],
    );
    assert_eq!(o.status.code(), Some(1));
    assert!(
        String::from_utf8_lossy(&o.stdout).contains("FORK"),
        "{}",
        String::from_utf8_lossy(&o.stdout)
    );
    // The monitor that followed A sees B's log as a fork of what it saw.
    ok(&vouch(
        d,
        &[
            "log",
            "monitor",
            "--node",
            &a.url,
            "--log-key",
            &log_key,
            "--state",
            "mon-a.txt",
            "--once",
        ],
    ));
    let o2 = vouch(
        d,
        &[
            "log",
            "monitor",
            "--node",
            &b.url,
            "--log-key",
            &log_key,
            "--state",
            "mon-a.txt",
            "--once",
        ],
    );
    assert!(
        !o2.status.success() && String::from_utf8_lossy(&o2.stdout).contains("FORK"),
        "{}",
        String::from_utf8_lossy(&o2.stdout)
    );
    a.stop();
    b.stop();
}

fn copy_dir(from: &Path, to: &Path) {
    std::fs::create_dir_all(to).unwrap();
    for entry in std::fs::read_dir(from).unwrap() {
        let entry = entry.unwrap();
        let target = to.join(entry.file_name());
        if entry.file_type().unwrap().is_dir() {
            copy_dir(&entry.path(), &target);
        } else if entry.file_name() != "lock" {
            std::fs::copy(entry.path(), &target).unwrap();
        }
    }
}

#[test]
fn demo_node_serves_the_built_in_model() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let node = NodeProcess::start_with_args(d, "data", "", &["--demo"]);
    let url = node.url.clone();
    let input = std::fs::read_to_string(fixture("iris_mlp.input.json")).unwrap();
    let out = ok(&vouch(
        d,
        &[
            "infer",
            "demo/iris@1.0.0",
            "--node",
            &url,
            "--input-json",
            &input,
            "--out",
            "r.json",
            "--json",
        ],
    ));
    let v: Value = serde_json::from_str(&out).unwrap();
    assert_eq!(v["verified"], true, "{v}");
    assert_eq!(v["outputs"]["label"]["data"], json!([0, 1, 2]));
    // Publishing is idempotent across restarts: the second start finds the version there.
    node.stop();
    let node = NodeProcess::start_with_args(d, "data", "", &["--demo"]);
    let (status, repo) = get(&format!("{}/v1/models/demo/iris", node.url));
    assert_eq!(status, 200, "{repo}");
    assert_eq!(repo["versions"].as_array().map(Vec::len), Some(1), "{repo}");
    node.stop();
}
