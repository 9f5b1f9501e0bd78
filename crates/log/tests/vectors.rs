//! The test vectors of `docs/log.md`, checked byte for byte: the test reads each labelled
//! block (```` ```text vector:<name> ````) from the document and compares it with what this
//! crate produces from the fixed keys and entries. `VOUCH_PRINT_VECTORS=1` prints the values
//! instead of failing, to (re)generate the document after a deliberate format change.

use std::collections::BTreeMap;
use std::path::Path;

use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use vouch_log::bundle::ProofBundle;
use vouch_log::cosignature::{Cosigner, WitnessPolicy};
use vouch_log::{Checkpoint, Log, LogConfig, NoteSigner, SignedCheckpoint};
use vouch_merkle::{MemoryTree, leaf_hash};

const LOG_NAME: &str = "vectors.vouch.example/log";
const WITNESS_NAME: &str = "witness.vouch.example/w1";
const TIMESTAMP: u64 = 1_767_225_600; // 2026-01-01T00:00:00Z

fn seed(start: u8) -> [u8; 32] {
    std::array::from_fn(|i| start + i as u8)
}

fn hex(b: &[u8]) -> String {
    b.iter().map(|x| format!("{x:02x}")).collect()
}

fn doc_vectors() -> BTreeMap<String, String> {
    let doc =
        std::fs::read_to_string(Path::new(env!("CARGO_MANIFEST_DIR")).join("../../docs/log.md"))
            .expect("docs/log.md");
    let mut out = BTreeMap::new();
    let mut lines = doc.lines();
    while let Some(l) = lines.next() {
        if let Some(name) = l.strip_prefix("```text vector:") {
            let mut body = String::new();
            for l in lines.by_ref() {
                if l == "```" {
                    break;
                }
                body.push_str(l);
                body.push('\n');
            }
            out.insert(name.trim().to_owned(), body);
        }
    }
    out
}

fn computed() -> BTreeMap<String, String> {
    let mut v = BTreeMap::new();
    let signer = NoteSigner::new(LOG_NAME, &seed(0)).unwrap();
    let cosigner = Cosigner::new(WITNESS_NAME, &seed(32)).unwrap();
    let entries: Vec<Vec<u8>> = (0..3)
        .map(|i| format!("vouch entry {i}").into_bytes())
        .collect();
    v.insert(
        "log-vkey".into(),
        format!("{}\n", signer.verifier().to_vkey()),
    );
    v.insert(
        "log-private-key".into(),
        format!("{}\n", signer.to_private_key()),
    );
    v.insert(
        "witness-vkey".into(),
        format!("{}\n", cosigner.verifier().to_vkey()),
    );
    let hashes: String = entries
        .iter()
        .map(|e| format!("{}\n", hex(&leaf_hash(e))))
        .collect();
    v.insert("leaf-hashes".into(), hashes);

    // Through the real log: one batch of three entries.
    let dir = tempfile::tempdir().unwrap();
    let log = Log::open(
        LogConfig::new(dir.path()),
        NoteSigner::new(LOG_NAME, &seed(0)).unwrap(),
    )
    .unwrap();
    let handles: Vec<_> = entries
        .iter()
        .map(|e| log.append(e.clone()).unwrap())
        .collect();
    for h in handles {
        h.wait().unwrap();
    }
    let cp = log.latest_checkpoint();
    assert_eq!(cp.checkpoint.size, 3);
    let tree = MemoryTree::from_leaves(&entries);
    assert_eq!(cp.checkpoint.root, tree.root());
    // Whatever the batching, the checkpoint at size 3 is a pure function of key and entries.
    let direct =
        SignedCheckpoint::sign(Checkpoint::new(LOG_NAME, 3, tree.root()), &signer).unwrap();
    assert_eq!(*cp, direct);
    v.insert("checkpoint".into(), cp.to_text());
    let empty = SignedCheckpoint::sign(
        Checkpoint::new(LOG_NAME, 0, vouch_merkle::empty_root()),
        &signer,
    )
    .unwrap();
    v.insert("checkpoint-empty".into(), empty.to_text());
    let read = |p: &str| hex(&std::fs::read(dir.path().join(p)).unwrap());
    v.insert(
        "tile-0-000.p-3".into(),
        format!("{}\n", read("tile/0/000.p/3")),
    );
    v.insert(
        "tile-entries-000.p-3".into(),
        format!("{}\n", read("tile/entries/000.p/3")),
    );

    let mut cosigned = (*cp).clone();
    cosigned.add_signatures([cosigner.cosign(&cp.note.text, TIMESTAMP).unwrap()]);
    v.insert("checkpoint-cosigned".into(), cosigned.to_text());
    let message = vouch_log::cosignature::cosigned_message(&cp.note.text, TIMESTAMP);
    v.insert(
        "cosigned-message".into(),
        String::from_utf8(message).unwrap(),
    );

    let bundle = log.prove(1, &cosigned).unwrap();
    let policy = WitnessPolicy::new(vec![cosigner.verifier()], 1).unwrap();
    bundle.verify(&entries[1], log.verifier(), &policy).unwrap();
    v.insert("proof-bundle".into(), bundle.to_text());
    assert_eq!(ProofBundle::parse(&bundle.to_text()).unwrap(), bundle);
    let root_line = STANDARD.encode(tree.root());
    assert!(v["checkpoint"].contains(&root_line));
    v
}

#[test]
fn docs_vectors_match_byte_for_byte() {
    let computed = computed();
    if std::env::var("VOUCH_PRINT_VECTORS").as_deref() == Ok("1") {
        for (k, body) in &computed {
            println!("```text vector:{k}\n{body}```\n");
        }
        return;
    }
    let doc = doc_vectors();
    for (k, body) in &computed {
        let got = doc
            .get(k)
            .unwrap_or_else(|| panic!("docs/log.md has no vector {k}"));
        assert_eq!(got, body, "vector {k} differs from docs/log.md");
    }
    assert_eq!(
        doc.len(),
        computed.len(),
        "docs/log.md has vectors this test does not check"
    );
}
