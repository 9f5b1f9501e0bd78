//! Crash safety: run `vouch-log-stress`, SIGKILL it mid-stream several times, restart it on
//! the same directory, and check that every acknowledged entry is present, that the tree is
//! consistent with every checkpoint ever handed out, and that no size ever had two roots.

use std::collections::HashMap;
use std::io::{BufRead, BufReader};
use std::process::{Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use sha2::{Digest, Sha256};
use vouch_log::tile::{TileId, TileKind};
use vouch_log::{Log, LogConfig, NoteSigner, SignedCheckpoint};
use vouch_merkle::verify_consistency;

const ORIGIN: &str = "stress.vouch.example/log";

/// Runs one stress process until it has printed `acks` acknowledgements, then kills it
/// (SIGKILL) and returns every complete line it printed.
fn run_and_kill(dir: &std::path::Path, run: u64, acks: usize, writers: u64) -> Vec<String> {
    let mut child = Command::new(env!("CARGO_BIN_EXE_vouch-log-stress"))
        .arg(dir)
        .arg(run.to_string())
        .arg("100000000")
        .arg(writers.to_string())
        .arg("32")
        .arg("1")
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit())
        .spawn()
        .expect("start vouch-log-stress");
    let stdout = child.stdout.take().expect("piped");
    let lines = Arc::new(Mutex::new(Vec::new()));
    let reader = {
        let lines = Arc::clone(&lines);
        std::thread::spawn(move || {
            for l in BufReader::new(stdout).lines() {
                let Ok(l) = l else { break };
                lines.lock().unwrap().push(l);
            }
        })
    };
    let start = Instant::now();
    loop {
        let n = lines
            .lock()
            .unwrap()
            .iter()
            .filter(|l| l.starts_with("ack "))
            .count();
        if n >= acks || start.elapsed() > Duration::from_secs(180) {
            break;
        }
        if let Some(status) = child.try_wait().unwrap() {
            panic!("stress process exited early: {status}");
        }
        std::thread::sleep(Duration::from_millis(1));
    }
    child.kill().expect("SIGKILL"); // std's kill is SIGKILL on Unix
    child.wait().unwrap();
    reader.join().unwrap();
    let out = lines.lock().unwrap().clone();
    assert!(
        out.len() >= acks,
        "only {} lines before the deadline",
        out.len()
    );
    out
}

#[test]
fn sigkill_mid_stream_loses_nothing_acknowledged() {
    let dir = tempfile::tempdir().unwrap();
    let mut acked: HashMap<u64, String> = HashMap::new();
    let mut checkpoints: Vec<SignedCheckpoint> = Vec::new();
    let verifier = NoteSigner::new(ORIGIN, &[7; 32]).unwrap().verifier();
    // Kill after a varying number of acknowledgements so kills land in different phases.
    let rounds = [(137, 8), (611, 4), (59, 16), (1203, 8), (333, 1), (871, 12)];
    for (run, &(acks, writers)) in rounds.iter().enumerate() {
        for line in run_and_kill(dir.path(), run as u64, acks, writers) {
            if let Some(rest) = line.strip_prefix("ack ") {
                let (i, h) = rest.split_once(' ').expect("ack <index> <hash>");
                let i: u64 = i.parse().unwrap();
                assert!(
                    acked.insert(i, h.to_owned()).is_none(),
                    "index {i} acknowledged twice"
                );
            } else if let Some(b64) = line.strip_prefix("checkpoint ") {
                let text = STANDARD.decode(b64).unwrap();
                checkpoints.push(SignedCheckpoint::open(&text, &verifier).unwrap());
            } else {
                panic!("unexpected line {line:?}");
            }
        }
    }

    // Power loss can also lose tile files written after the last sync point (only the journal
    // was fsync'd for them): delete every one of those, so recovery must rebuild them.
    let lost = drop_unsynced_tiles(dir.path());
    eprintln!("crash test: deleted {lost} tile files written after the last sync point");

    // Recover in process and check the three properties.
    let log = Log::open(
        LogConfig::new(dir.path()),
        NoteSigner::new(ORIGIN, &[7; 32]).unwrap(),
    )
    .unwrap();
    let latest = log.latest_checkpoint();
    let size = latest.checkpoint.size;
    // 1. Every acknowledged entry is present, at its index.
    for (i, h) in &acked {
        assert!(
            *i < size,
            "acknowledged index {i} beyond recovered size {size}"
        );
        let e = log.entry(*i).unwrap();
        let got: String = Sha256::digest(&e)
            .iter()
            .map(|b| format!("{b:02x}"))
            .collect();
        assert_eq!(&got, h, "entry {i} changed");
    }
    // 2. The tree is consistent with every checkpoint handed out.
    checkpoints.push((*latest).clone());
    for cp in &checkpoints {
        let c = &cp.checkpoint;
        assert!(c.size <= size);
        assert_eq!(log.root_at(c.size).unwrap(), c.root, "root at {}", c.size);
        if c.size > 0 {
            let proof = log.consistency_proof(c.size, size).unwrap();
            verify_consistency(c.size, size, &proof, &c.root, &latest.checkpoint.root).unwrap();
        }
    }
    // 3. Never two checkpoints of one size with different roots.
    let mut roots = HashMap::new();
    for cp in &checkpoints {
        let prev = roots.insert(cp.checkpoint.size, cp.checkpoint.root);
        assert!(
            prev.is_none_or(|r| r == cp.checkpoint.root),
            "two roots at size {}",
            cp.checkpoint.size
        );
    }
    // And the recovered log goes on appending.
    let a = log
        .append(b"after recovery".to_vec())
        .unwrap()
        .wait()
        .unwrap();
    assert_eq!(a.index, size);
    let total: usize = rounds.iter().map(|r| r.0).sum();
    assert!(acked.len() >= total, "{} acks", acked.len());
    eprintln!(
        "crash test: {} rounds, {} acknowledged, {} checkpoints, recovered size {size}",
        rounds.len(),
        acked.len(),
        checkpoints.len()
    );
}

/// Deletes the tile and bundle files that cover any leaf at or beyond the size of
/// `sync-checkpoint`; returns how many.
fn drop_unsynced_tiles(dir: &std::path::Path) -> usize {
    let synced = std::fs::read_to_string(dir.join("sync-checkpoint")).unwrap();
    let size: u64 = synced.lines().nth(1).unwrap().parse().unwrap();
    let mut files = Vec::new();
    walk(&dir.join("tile"), &mut files);
    let mut n = 0;
    for f in files {
        let rel = f.strip_prefix(dir).unwrap().to_str().unwrap().to_owned();
        let id = TileId::parse_path(&rel).unwrap_or_else(|e| panic!("{rel}: {e}"));
        let level = match id.kind {
            TileKind::Hashes(l) => u32::from(l),
            TileKind::Entries => 0,
        };
        let end = id.index * 256u64.pow(level + 1) + u64::from(id.width) * 256u64.pow(level);
        if end > size {
            std::fs::remove_file(&f).unwrap();
            n += 1;
        }
    }
    n
}

fn walk(d: &std::path::Path, out: &mut Vec<std::path::PathBuf>) {
    for e in std::fs::read_dir(d).unwrap() {
        let p = e.unwrap().path();
        if p.is_dir() {
            walk(&p, out);
        } else {
            out.push(p);
        }
    }
}
