//! Independent verification with Go's `golang.org/x/mod/sumdb/note` and `sumdb/tlog` (see
//! `interop/main.go`). Skipped when Go or those packages are missing, unless
//! `VOUCH_REQUIRE_GO=1`, which makes their absence a failure (CI sets it).
//!
//! Install on Debian: `apt-get install golang-go golang-golang-x-mod-dev`.

use std::collections::BTreeMap;
use std::path::Path;
use std::process::Command;
use std::time::Duration;

use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use vouch_log::cosignature::Cosigner;
use vouch_log::witness::Witness;
use vouch_log::{Log, LogConfig, NoteSigner};

const GOPATH: &str = "/usr/share/gocode";

fn go_available() -> bool {
    let go = Command::new("go")
        .arg("version")
        .output()
        .is_ok_and(|o| o.status.success());
    let pkgs = Path::new(GOPATH)
        .join("src/golang.org/x/mod/sumdb/tlog")
        .is_dir();
    if go && pkgs {
        return true;
    }
    let why = if go {
        "golang-golang-x-mod-dev is not installed"
    } else {
        "go is not installed"
    };
    if std::env::var("VOUCH_REQUIRE_GO").as_deref() == Ok("1") {
        panic!("VOUCH_REQUIRE_GO=1 but {why}");
    }
    eprintln!("skipping the Go interop test: {why} (set VOUCH_REQUIRE_GO=1 to fail instead)");
    false
}

#[test]
fn go_sumdb_verifies_our_checkpoints_tiles_and_proofs() {
    if !go_available() {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let signer = NoteSigner::new("interop.vouch.example/log", &[3; 32]).unwrap();
    let mut config = LogConfig::new(dir.path());
    config.max_batch = 4096;
    config.max_entry_bytes = 1024;
    config.batch_interval = Duration::from_millis(5);
    config.sync_every_entries = 20_000;
    let log = Log::open(config, signer).unwrap();
    // Past 256² entries so that level-2 tiles exist, with varied entry sizes.
    let n: u64 = 66_000;
    let handles: Vec<_> = (0..n)
        .map(|i| {
            log.append(vec![(i % 251) as u8; (i % 97) as usize])
                .unwrap()
        })
        .collect();
    for h in handles {
        h.wait().unwrap();
    }
    let latest = log.latest_checkpoint();
    let size = latest.checkpoint.size;
    assert_eq!(size, n);

    let mut roots = BTreeMap::new();
    let mut root = |s: u64| {
        roots.insert(s.to_string(), STANDARD.encode(log.root_at(s).unwrap()));
    };
    let b64 = |p: Vec<[u8; 32]>| p.iter().map(|h| STANDARD.encode(h)).collect::<Vec<_>>();
    let mut inclusion = Vec::new();
    for (i, s) in [
        (0, size),
        (size - 1, size),
        (65_535, 65_536),
        (12_345, 54_321),
        (3, 4),
        (0, 1),
    ] {
        root(s);
        inclusion.push(serde_json::json!({"index": i, "size": s, "proof": b64(log.inclusion_proof(i, s).unwrap())}));
    }
    let mut consistency = Vec::new();
    for (a, b) in [
        (1, size),
        (size - 1, size),
        (256, 65_536),
        (1000, 1001),
        (7, 8),
        (65_537, size),
    ] {
        root(a);
        root(b);
        consistency.push(serde_json::json!({"old": a, "new": b, "proof": b64(log.consistency_proof(a, b).unwrap())}));
    }
    let wdir = tempfile::tempdir().unwrap();
    let cosigner = Cosigner::new("witness.vouch.example", &[4; 32]).unwrap();
    let cosigner_vkey = cosigner.verifier().to_vkey();
    let witness = Witness::open(
        wdir.path(),
        cosigner,
        [(latest.checkpoint.origin.clone(), log.verifier().clone())],
    )
    .unwrap();
    let mut cosigned = (*latest).clone();
    cosigned.add_signatures([witness
        .add_checkpoint(0, &[], latest.to_text().as_bytes(), 1_790_000_000)
        .unwrap()]);
    let bundle = log.prove(4321, &cosigned).unwrap();
    let vectors = serde_json::json!({
        "proof_bundle": bundle.to_text(),
        "proof_bundle_entry": STANDARD.encode(log.entry(4321).unwrap()),
        "log_vkey": log.verifier().to_vkey(),
        "cosigner_vkey": cosigner_vkey,
        "cosigned_checkpoint": cosigned.to_text(),
        "roots": roots,
        "inclusion": inclusion,
        "consistency": consistency,
    });
    let vpath = dir.path().join("vectors.json");
    std::fs::write(&vpath, serde_json::to_vec_pretty(&vectors).unwrap()).unwrap();

    let main_go = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/interop/main.go");
    let gocache = tempfile::tempdir().unwrap();
    let run_go = || {
        Command::new("go")
            .arg("run")
            .arg(&main_go)
            .arg(dir.path())
            .arg(&vpath)
            .env("GO111MODULE", "off")
            .env("GOPATH", GOPATH)
            .env("GOPROXY", "off")
            .env("GOFLAGS", "")
            .env("GOCACHE", gocache.path())
            .output()
            .expect("run go")
    };
    let out = run_go();
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(out.status.success(), "Go verifier failed:\n{text}");
    assert!(text.contains("interop ok"), "{text}");
    eprintln!("{text}");

    // The verifier is not vacuous: one flipped bit in a full level-0 tile is caught.
    let tile = dir.path().join("tile/0/000");
    let mut body = std::fs::read(&tile).unwrap();
    body[100] ^= 1;
    std::fs::write(&tile, body).unwrap();
    let out = run_go();
    assert!(
        !out.status.success(),
        "Go verifier accepted a corrupted tile"
    );
}
