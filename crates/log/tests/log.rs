//! The durable log end to end, in process: appends, proofs from tiles against an in-memory
//! reference tree, restarts, torn journal tails, offline proof bundles with witnesses, and
//! refusal of bad input.

use std::fs;
use std::path::Path;
use std::time::Duration;

use vouch_log::bundle::BundleError;
use vouch_log::checkpoint::{CheckpointError, check_consistent};
use vouch_log::cosignature::{CosignatureError, Cosigner, WitnessPolicy};
use vouch_log::log::LogError;
use vouch_log::note::NoteError;
use vouch_log::witness::Witness;
use vouch_log::{Checkpoint, Log, LogConfig, NoteSigner, SignedCheckpoint};
use vouch_merkle::{MemoryTree, leaf_hash, verify_consistency, verify_inclusion};

const ORIGIN: &str = "example.com/vouch-test-log";

fn signer() -> NoteSigner {
    NoteSigner::new(ORIGIN, &[42; 32]).unwrap()
}

fn config(dir: &Path) -> LogConfig {
    let mut c = LogConfig::new(dir);
    c.batch_interval = Duration::from_millis(2);
    c.max_batch = 100;
    c.sync_every_entries = 700;
    c
}

fn entry(i: u64) -> Vec<u8> {
    format!("entry number {i}").into_bytes()
}

/// Appends `n` entries from several threads; returns their acknowledged indices.
fn append_many(log: &Log, from: u64, n: u64) -> Vec<(u64, Vec<u8>)> {
    std::thread::scope(|s| {
        let handles: Vec<_> = (0..4u64)
            .map(|t| {
                s.spawn(move || {
                    let mut acks = Vec::new();
                    let pending: Vec<_> = (from..from + n)
                        .filter(|i| i % 4 == t)
                        .map(|i| (entry(i), log.append(entry(i)).unwrap()))
                        .collect();
                    for (e, h) in pending {
                        let a = h.wait().unwrap();
                        assert!(a.checkpoint.checkpoint.size > a.index);
                        acks.push((a.index, e));
                    }
                    acks
                })
            })
            .collect();
        handles
            .into_iter()
            .flat_map(|h| h.join().unwrap())
            .collect()
    })
}

fn check_log(log: &Log, dir: &Path, acks: &[(u64, Vec<u8>)]) -> MemoryTree {
    let cp = log.latest_checkpoint();
    let size = cp.checkpoint.size;
    let mut reference = MemoryTree::new();
    for i in 0..size {
        reference.push(&log.entry(i).unwrap());
    }
    assert_eq!(reference.root(), cp.checkpoint.root);
    for (i, e) in acks {
        assert_eq!(&log.entry(*i).unwrap(), e, "entry {i}");
    }
    let last_bundle = (size - 1) / 256;
    let bundle = log.reader().bundle(last_bundle).unwrap();
    assert_eq!(bundle.len() as u64, size - 256 * last_bundle);
    assert_eq!(bundle[0], log.entry(256 * last_bundle).unwrap());
    assert!(log.reader().bundle(last_bundle + 1).is_err());
    SignedCheckpoint::open(cp.to_text().as_bytes(), log.verifier()).unwrap();
    // The checkpoint file on disk is the latest.
    assert_eq!(
        fs::read_to_string(dir.join("checkpoint")).unwrap(),
        cp.to_text()
    );
    for (i, s) in [
        (0, 1),
        (0, size),
        (size - 1, size),
        (size / 2, size),
        (7, size - 3),
    ] {
        let proof = log.inclusion_proof(i, s).unwrap();
        let root = reference.root_at(s).unwrap();
        verify_inclusion(i, s, &leaf_hash(&log.entry(i).unwrap()), &proof, &root).unwrap();
    }
    for (a, b) in [
        (1, size),
        (size - 1, size),
        (255, 257),
        (256, 70 * 256 + 1),
        (size / 3, size / 2),
    ] {
        if b > size || a == 0 {
            continue;
        }
        let proof = log.consistency_proof(a, b).unwrap();
        verify_consistency(
            a,
            b,
            &proof,
            &reference.root_at(a).unwrap(),
            &reference.root_at(b).unwrap(),
        )
        .unwrap();
    }
    reference
}

#[test]
fn appends_prove_and_survive_restarts() {
    let dir = tempfile::tempdir().unwrap();
    let mut acks = Vec::new();
    let log = Log::open(config(dir.path()), signer()).unwrap();
    assert_eq!(log.latest_checkpoint().checkpoint.size, 0);
    acks.extend(append_many(&log, 0, 1000));
    check_log(&log, dir.path(), &acks);
    let before = log.latest_checkpoint();
    log.close().unwrap();

    // Restart: same tree, same checkpoint, and appends continue.
    let log = Log::open(config(dir.path()), signer()).unwrap();
    assert_eq!(*log.latest_checkpoint(), *before);
    acks.extend(append_many(&log, 1000, 700));
    check_log(&log, dir.path(), &acks);
    // Crash without close (drop would sync): simulate by forgetting the log after appends is
    // not possible in-process; a torn tail is simulated instead.
    drop(log);

    let jdir = dir.path().join("journal");
    let seg = fs::read_dir(&jdir).unwrap().next().unwrap().unwrap().path();
    let mut f = fs::OpenOptions::new().append(true).open(&seg).unwrap();
    use std::io::Write;
    f.write_all(b"VLJ1\0\0\0\0\0\0\x06\xa4\0\0\0\x01\0\0\0\x40partial")
        .unwrap();
    drop(f);
    let log = Log::open(config(dir.path()), signer()).unwrap();
    assert_eq!(log.latest_checkpoint().checkpoint.size, 1700);
    acks.extend(append_many(&log, 1700, 300));
    let reference = check_log(&log, dir.path(), &acks);
    assert_eq!(reference.size(), 2000);
    assert_eq!(acks.len(), 2000);
    let mut idx: Vec<u64> = acks.iter().map(|a| a.0).collect();
    idx.sort();
    idx.dedup();
    assert_eq!(idx.len(), 2000, "every index acknowledged once");
}

#[test]
fn bounds_and_errors() {
    let dir = tempfile::tempdir().unwrap();
    let mut c = config(dir.path());
    c.max_entry_bytes = 10;
    let log = Log::open(c, signer()).unwrap();
    assert!(matches!(
        log.append(vec![0; 11]),
        Err(LogError::EntryTooLarge { size: 11, max: 10 })
    ));
    log.append(vec![1; 10]).unwrap().wait().unwrap();
    assert!(matches!(
        log.inclusion_proof(0, 2),
        Err(LogError::BeyondLatest { .. })
    ));
    assert!(matches!(log.inclusion_proof(1, 1), Err(LogError::Proof(_))));
    assert!(log.entry(1).is_err());
    // A second sequencer on the same directory would fork the log.
    assert!(matches!(
        Log::open(config(dir.path()), signer()),
        Err(LogError::Locked(_))
    ));
    let mut too_big = config(dir.path());
    too_big.max_entry_bytes = 70_000;
    assert!(matches!(
        Log::open(too_big, signer()),
        Err(LogError::Config(_))
    ));
    drop(log);
    // Another key for the same directory: the stored checkpoint does not verify.
    let other = NoteSigner::new(ORIGIN, &[7; 32]).unwrap();
    assert!(matches!(
        Log::open(config(dir.path()), other),
        Err(LogError::Checkpoint(CheckpointError::Note(
            NoteError::NoKnownSignature
        )))
    ));
}

#[test]
fn async_append_resolves_as_a_future() {
    // A minimal executor: the handle is runtime-agnostic, so block on it with a thread waker.
    use std::sync::Arc;
    use std::task::{Context, Poll, Wake};
    struct ThreadWaker(std::thread::Thread);
    impl Wake for ThreadWaker {
        fn wake(self: Arc<Self>) {
            self.0.unpark();
        }
    }
    let dir = tempfile::tempdir().unwrap();
    let log = Log::open(config(dir.path()), signer()).unwrap();
    let mut fut = std::pin::pin!(log.append(b"hello".to_vec()).unwrap());
    let waker = Arc::new(ThreadWaker(std::thread::current())).into();
    let mut cx = Context::from_waker(&waker);
    let appended = loop {
        match fut.as_mut().poll(&mut cx) {
            Poll::Ready(r) => break r.unwrap(),
            Poll::Pending => std::thread::park_timeout(Duration::from_millis(50)),
        }
    };
    assert_eq!(appended.index, 0);
    assert_eq!(appended.checkpoint.checkpoint.size, 1);
}

#[test]
fn proof_bundles_with_witnesses() {
    let dir = tempfile::tempdir().unwrap();
    let log = Log::open(config(dir.path()), signer()).unwrap();
    append_many(&log, 0, 300);
    let wdir = tempfile::tempdir().unwrap();
    let w1 = Cosigner::new("witness1.example", &[1; 32]).unwrap();
    let w2 = Cosigner::new("witness2.example", &[2; 32]).unwrap();
    let policy = WitnessPolicy::new(vec![w1.verifier(), w2.verifier()], 2).unwrap();
    let witness1 = Witness::open(
        &wdir.path().join("1"),
        w1,
        [(ORIGIN.to_owned(), log.verifier().clone())],
    )
    .unwrap();
    let witness2 = Witness::open(
        &wdir.path().join("2"),
        w2,
        [(ORIGIN.to_owned(), log.verifier().clone())],
    )
    .unwrap();

    let mut cp = (*log.latest_checkpoint()).clone();
    for w in [&witness1, &witness2] {
        let sig = w
            .add_checkpoint(0, &[], cp.to_text().as_bytes(), 1_800_000_000)
            .unwrap();
        cp.add_signatures([sig]);
    }
    let bundle = log.prove(123, &cp).unwrap();
    let text = bundle.to_text();
    assert!(text.starts_with("c2sp.org/tlog-proof@v1\nindex 123\n"));
    let parsed = vouch_log::ProofBundle::parse(&text).unwrap();
    assert_eq!(parsed, bundle);
    let e = log.entry(123).unwrap();
    let ok = parsed.verify(&e, log.verifier(), &policy).unwrap();
    assert_eq!(ok.witnesses.len(), 2);
    assert!(matches!(
        parsed.verify(b"another entry", log.verifier(), &policy),
        Err(BundleError::Inclusion(_))
    ));
    // A malformed proof: a flipped bit is caught.
    let mut bad = parsed.clone();
    bad.proof[2][5] ^= 0x10;
    assert!(matches!(
        bad.verify(&e, log.verifier(), &policy),
        Err(BundleError::Inclusion(_))
    ));
    let (got, with_proof) = log.entry_with_proof(123).unwrap();
    assert_eq!(got, e);
    let none = WitnessPolicy::new(vec![], 0).unwrap();
    with_proof.verify(&got, log.verifier(), &none).unwrap();
    // Only the log's signature: the policy is not met.
    let bare = log.prove(123, &log.latest_checkpoint()).unwrap();
    assert!(matches!(
        bare.verify(&e, log.verifier(), &policy),
        Err(BundleError::Witnesses(CosignatureError::NotEnough {
            got: 0,
            required: 2
        }))
    ));
    // A tampered checkpoint signature.
    let tampered = text.replacen("\n300\n", "\n301\n", 1);
    assert!(matches!(
        vouch_log::ProofBundle::parse(&tampered)
            .unwrap()
            .verify(&e, log.verifier(), &policy),
        Err(BundleError::Checkpoint(_))
    ));

    // The witness follows the log as it grows, with consistency proofs from the log.
    append_many(&log, 300, 50);
    let newer = log.latest_checkpoint();
    let proof = log.consistency_proof(300, newer.checkpoint.size).unwrap();
    witness1
        .add_checkpoint(300, &proof, newer.to_text().as_bytes(), 1_800_000_060)
        .unwrap();
    for junk in [
        "",
        "c2sp.org/tlog-proof@v1\n\n",
        "c2sp.org/tlog-proof@v1\nindex 01\n\nx",
        "x\nindex 1\n\ny",
    ] {
        assert!(vouch_log::ProofBundle::parse(junk).is_err(), "{junk:?}");
    }
}

#[test]
fn forked_checkpoints_are_detected() {
    // Two logs under one key that diverge after 10 entries: their checkpoints conflict.
    let signer = signer();
    let honest = MemoryTree::from_leaves((0..20u32).map(|i| i.to_be_bytes()));
    let mut forked = MemoryTree::from_leaves((0..10u32).map(|i| i.to_be_bytes()));
    for i in 10..20u32 {
        forked.push(&(i + 1000).to_be_bytes());
    }
    let sign = |t: &MemoryTree, n: u64| {
        SignedCheckpoint::sign(Checkpoint::new(ORIGIN, n, t.root_at(n).unwrap()), &signer).unwrap()
    };
    let a = sign(&honest, 15);
    let b = sign(&forked, 18);
    // The forked log's own proof from 15 cannot link the honest size-15 root.
    let proof = vouch_merkle::prove_consistency(&forked, 15, 18).unwrap();
    let err = check_consistent(&a, &b, &proof).unwrap_err();
    assert_eq!(err.older.checkpoint.size, 15);
    assert_eq!(err.newer.checkpoint.size, 18);
    assert!(err.to_string().contains("fork"));
    // Same size, different roots.
    let err = check_consistent(&sign(&honest, 15), &sign(&forked, 15), &[]).unwrap_err();
    assert!(matches!(
        err.reason,
        vouch_merkle::ProofError::SameSizeDifferentRoots { size: 15, .. }
    ));
    // The honest pair passes.
    let p = vouch_merkle::prove_consistency(&honest, 15, 18).unwrap();
    check_consistent(&a, &sign(&honest, 18), &p).unwrap();
}

#[test]
fn partial_tiles_of_every_checkpoint_stay_until_the_tile_is_full() {
    let dir = tempfile::tempdir().unwrap();
    let mut c = config(dir.path());
    c.batch_interval = Duration::ZERO;
    let log = Log::open(c, signer()).unwrap();
    for i in 0..300 {
        // One entry per batch: one checkpoint per size.
        log.append(entry(i)).unwrap().wait().unwrap();
    }
    // Checkpoints of sizes 257..=300 need level-0 partials of widths 1..=44 of tile 1.
    for w in 1..=44 {
        assert!(
            dir.path().join(format!("tile/0/001.p/{w}")).is_file(),
            "width {w}"
        );
        assert!(
            dir.path().join(format!("tile/entries/001.p/{w}")).is_file(),
            "bundle width {w}"
        );
    }
    // Checkpoints of sizes 1..=255 as well, until the sync point after tile 0 filled.
    log.close().unwrap();
    assert!(dir.path().join("tile/0/000").is_file());
    assert!(
        !dir.path().join("tile/0/000.p").exists(),
        "partials of a full tile are pruned"
    );
    assert!(dir.path().join("tile/0/001.p/44").is_file());

    // Proving against another log's checkpoint is refused.
    let log = Log::open(config(dir.path()), signer()).unwrap();
    let foreign = SignedCheckpoint::sign(Checkpoint::new(ORIGIN, 10, [1; 32]), &signer()).unwrap();
    assert!(matches!(
        log.prove(3, &foreign),
        Err(LogError::ForeignCheckpoint { size: 10 })
    ));
}

#[test]
fn stale_journal_segments_are_skipped() {
    // A crash between writing the sync checkpoint and deleting the old segments leaves
    // segments whose records the tiles already cover; recovery must skip them.
    let dir = tempfile::tempdir().unwrap();
    let log = Log::open(config(dir.path()), signer()).unwrap();
    append_many(&log, 0, 600);
    let jdir = dir.path().join("journal");
    let first = fs::read_dir(&jdir).unwrap().next().unwrap().unwrap().path();
    let stale = fs::read(&first).unwrap();
    assert!(!stale.is_empty());
    append_many(&log, 600, 200); // crosses the sync point at 700: segment 0 is deleted
    let before = log.latest_checkpoint();
    log.close().unwrap();
    assert!(!first.exists());
    fs::write(&first, &stale).unwrap();
    let log = Log::open(config(dir.path()), signer()).unwrap();
    assert_eq!(*log.latest_checkpoint(), *before);
    assert_eq!(log.root_at(800).unwrap(), before.checkpoint.root);
    assert!(!first.exists(), "the next sync point removes it again");
}

#[test]
fn a_witness_follows_the_log_batch_after_batch() {
    let dir = tempfile::tempdir().unwrap();
    let log = Log::open(config(dir.path()), signer()).unwrap();
    let wdir = tempfile::tempdir().unwrap();
    let w = Cosigner::new("witness.example", &[9; 32]).unwrap();
    let vk = w.verifier();
    let witness = Witness::open(
        wdir.path(),
        w,
        [(ORIGIN.to_owned(), log.verifier().clone())],
    )
    .unwrap();
    let policy = WitnessPolicy::new(vec![vk], 1).unwrap();
    let mut witnessed = 0u64;
    for round in 0..25u64 {
        append_many(&log, round * 37, 37);
        let cp = log.latest_checkpoint();
        let proof = log
            .consistency_proof(witnessed, cp.checkpoint.size)
            .unwrap();
        let sig = witness
            .add_checkpoint(
                witnessed,
                &proof,
                cp.to_text().as_bytes(),
                1_800_000_000 + round,
            )
            .unwrap();
        let mut cosigned = (*cp).clone();
        cosigned.add_signatures([sig]);
        let i = round * 37 + 5;
        log.prove(i, &cosigned)
            .unwrap()
            .verify(&log.entry(i).unwrap(), log.verifier(), &policy)
            .unwrap();
        witnessed = cp.checkpoint.size;
    }
    assert_eq!(
        witness.latest(ORIGIN).unwrap().unwrap().checkpoint.size,
        25 * 37
    );
}
