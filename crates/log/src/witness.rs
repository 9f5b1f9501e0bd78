//! The core of a C2SP `tlog-witness` v1: given a log's signed checkpoint and a consistency
//! proof from the size the witness last cosigned, check consistency, persist the new state,
//! and return a cosignature. No HTTP here: [`WitnessError::http_status`] says which status the
//! spec assigns to each refusal, so an HTTP layer can map them.

use std::collections::BTreeMap;
use std::fs;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::Mutex;

use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use sha2::{Digest, Sha256};
use vouch_merkle::{Hash, ProofError, empty_root, verify_consistency};

use crate::checkpoint::{CheckpointError, SignedCheckpoint, parse_decimal};
use crate::cosignature::{CosignatureError, Cosigner};
use crate::note::{NoteError, NoteSignature, NoteVerifier};

/// The most consistency proof lines a request may carry (tlog-witness: "MUST NOT send more
/// than 63").
pub const MAX_PROOF_LINES: usize = 63;

/// Why the witness refused to cosign. Each variant maps to the status tlog-witness assigns.
#[derive(Debug, thiserror::Error)]
pub enum WitnessError {
    /// The request body is not `old N`, proof lines, a blank line, and a checkpoint (400).
    #[error("malformed request: {0}")]
    Malformed(String),
    /// The checkpoint itself is malformed (400).
    #[error("malformed checkpoint: {0}")]
    BadCheckpoint(CheckpointError),
    /// The witness does not follow this origin (404).
    #[error("unknown log origin {0:?}")]
    UnknownOrigin(String),
    /// No valid signature from the log's key, or one of its signatures fails (403).
    #[error("checkpoint not signed by the log: {0}")]
    Unauthenticated(NoteError),
    /// `old` is above the checkpoint's size (400).
    #[error("old size {old} is above the checkpoint size {size}")]
    OldSizeAhead {
        /// The old size claimed.
        old: u64,
        /// The checkpoint's size.
        size: u64,
    },
    /// `old` is not the size the witness last cosigned (409, body: the witness's size). This
    /// is also how a rollback to a smaller tree is refused.
    #[error("old size {old} does not match the witness's size {witness_size}")]
    Conflict {
        /// The old size claimed.
        old: u64,
        /// The size the witness last cosigned for this origin.
        witness_size: u64,
    },
    /// A size-0 checkpoint with another root, or a non-empty proof from size 0 (422).
    #[error("invalid proof: {0}")]
    InvalidProof(String),
    /// The proof does not show that the checkpoint extends the witness's latest one, or the
    /// same size has another root: the two checkpoints are evidence of a fork (422).
    #[error("checkpoint inconsistent with the witness's latest ({reason})")]
    Inconsistent {
        /// The checkpoint the witness cosigned last (signed note text).
        known: String,
        /// The submitted checkpoint (signed note text).
        submitted: String,
        /// What failed.
        reason: Box<ProofError>,
    },
    /// The witness's state could not be read or written (500).
    #[error("witness storage: {0}")]
    Storage(#[from] std::io::Error),
    /// Stored state is corrupt (500).
    #[error("witness state for {origin:?} is corrupt: {why}")]
    CorruptState {
        /// The origin whose state is corrupt.
        origin: String,
        /// What is wrong.
        why: String,
    },
    /// Signing failed (500).
    #[error(transparent)]
    Cosign(#[from] CosignatureError),
}

impl WitnessError {
    /// The HTTP status tlog-witness assigns to this refusal.
    pub fn http_status(&self) -> u16 {
        match self {
            Self::Malformed(_) | Self::BadCheckpoint(_) | Self::OldSizeAhead { .. } => 400,
            Self::Unauthenticated(_) => 403,
            Self::UnknownOrigin(_) => 404,
            Self::Conflict { .. } => 409,
            Self::InvalidProof(_) | Self::Inconsistent { .. } => 422,
            Self::Storage(_) | Self::CorruptState { .. } | Self::Cosign(_) => 500,
        }
    }
}

/// The body of a tlog-witness `add-checkpoint` request.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AddCheckpointRequest {
    /// The size of the checkpoint the client believes the witness has.
    pub old_size: u64,
    /// The consistency proof from `old_size` to the checkpoint's size.
    pub proof: Vec<Hash>,
    /// The signed checkpoint, as sent.
    pub checkpoint: Vec<u8>,
}

impl AddCheckpointRequest {
    /// Parses `old N\n`, up to 63 base64 hash lines, `\n`, then the signed checkpoint.
    pub fn parse(body: &[u8]) -> Result<Self, WitnessError> {
        let bad = |why: &str| WitnessError::Malformed(why.to_owned());
        let blank = body
            .windows(2)
            .position(|w| w == b"\n\n")
            .ok_or_else(|| bad("no blank line before the checkpoint"))?;
        let head = std::str::from_utf8(&body[..blank]).map_err(|_| bad("header is not UTF-8"))?;
        let mut lines = head.split('\n');
        let old = lines
            .next()
            .and_then(|l| l.strip_prefix("old "))
            .and_then(parse_decimal)
            .ok_or_else(|| bad("first line must be `old <size>`"))?;
        let mut proof = Vec::new();
        for l in lines {
            if proof.len() == MAX_PROOF_LINES {
                return Err(bad("more than 63 proof lines"));
            }
            let h: Hash = STANDARD
                .decode(l)
                .ok()
                .and_then(|v| v.try_into().ok())
                .ok_or_else(|| bad("a proof line is not a base64 SHA-256 hash"))?;
            proof.push(h);
        }
        Ok(Self {
            old_size: old,
            proof,
            checkpoint: body[blank + 2..].to_vec(),
        })
    }

    /// Encodes the request body.
    pub fn to_bytes(&self) -> Vec<u8> {
        let mut s = format!("old {}\n", self.old_size);
        for h in &self.proof {
            s.push_str(&STANDARD.encode(h));
            s.push('\n');
        }
        s.push('\n');
        let mut out = s.into_bytes();
        out.extend_from_slice(&self.checkpoint);
        out
    }
}

/// A witness: one cosigning key, the logs it follows, and a directory for its state.
#[derive(Debug)]
pub struct Witness {
    cosigner: Cosigner,
    logs: BTreeMap<String, NoteVerifier>,
    dir: PathBuf,
    // Checking the old size and persisting the new checkpoint must be atomic (tlog-witness's
    // rollback race); one lock over both is the simple way.
    lock: Mutex<()>,
}

impl Witness {
    /// Opens (creating if needed) a witness whose state lives in `dir`, following `logs`
    /// (origin → the log's note key).
    pub fn open(
        dir: &Path,
        cosigner: Cosigner,
        logs: impl IntoIterator<Item = (String, NoteVerifier)>,
    ) -> Result<Self, WitnessError> {
        fs::create_dir_all(dir)?;
        Ok(Self {
            cosigner,
            logs: logs.into_iter().collect(),
            dir: dir.to_owned(),
            lock: Mutex::new(()),
        })
    }

    fn state_path(&self, origin: &str) -> PathBuf {
        let h = Sha256::digest(origin.as_bytes());
        let name: String = h[..16].iter().map(|b| format!("{b:02x}")).collect();
        self.dir.join(format!("{name}.checkpoint"))
    }

    /// The checkpoint this witness last cosigned for `origin`, if any.
    pub fn latest(&self, origin: &str) -> Result<Option<SignedCheckpoint>, WitnessError> {
        let key = self
            .logs
            .get(origin)
            .ok_or_else(|| WitnessError::UnknownOrigin(origin.to_owned()))?;
        let bytes = match fs::read(self.state_path(origin)) {
            Ok(b) => b,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
            Err(e) => return Err(e.into()),
        };
        let corrupt = |why: String| WitnessError::CorruptState {
            origin: origin.to_owned(),
            why,
        };
        let cp = SignedCheckpoint::parse_unverified(&bytes).map_err(|e| corrupt(e.to_string()))?;
        cp.note.verify(&[key]).map_err(|e| corrupt(e.to_string()))?;
        if cp.checkpoint.origin != origin {
            return Err(corrupt("stored origin differs".into()));
        }
        Ok(Some(cp))
    }

    /// Handles a parsed `add-checkpoint` request at time `now` (POSIX seconds).
    pub fn add_checkpoint_request(
        &self,
        req: &AddCheckpointRequest,
        now: u64,
    ) -> Result<NoteSignature, WitnessError> {
        self.add_checkpoint(req.old_size, &req.proof, &req.checkpoint, now)
    }

    /// Checks `checkpoint` against the last cosigned state with `proof` from `old_size`, and
    /// cosigns it; the new state is on disk (fsync'd) before the cosignature is returned.
    pub fn add_checkpoint(
        &self,
        old_size: u64,
        proof: &[Hash],
        checkpoint: &[u8],
        now: u64,
    ) -> Result<NoteSignature, WitnessError> {
        let cp = match SignedCheckpoint::parse_unverified(checkpoint) {
            Ok(cp) => cp,
            Err(CheckpointError::EmptyTreeRoot) => {
                return Err(WitnessError::InvalidProof(
                    "a size-0 checkpoint must carry the empty tree's root".into(),
                ));
            }
            Err(e) => return Err(WitnessError::BadCheckpoint(e)),
        };
        let origin = cp.checkpoint.origin.clone();
        let key = self
            .logs
            .get(&origin)
            .ok_or_else(|| WitnessError::UnknownOrigin(origin.clone()))?;
        cp.note
            .verify(&[key])
            .map_err(WitnessError::Unauthenticated)?;
        let size = cp.checkpoint.size;
        if old_size > size {
            return Err(WitnessError::OldSizeAhead {
                old: old_size,
                size,
            });
        }
        let _guard = self.lock.lock().unwrap_or_else(|p| p.into_inner());
        let known = self.latest(&origin)?;
        let witness_size = known.as_ref().map_or(0, |k| k.checkpoint.size);
        if old_size != witness_size {
            return Err(WitnessError::Conflict {
                old: old_size,
                witness_size,
            });
        }
        match &known {
            None => {
                if !proof.is_empty() {
                    return Err(WitnessError::InvalidProof(
                        "proof from size 0 must be empty".into(),
                    ));
                }
            }
            Some(k) if old_size == 0 => {
                // The witness cosigned an empty tree earlier; nothing to prove.
                debug_assert_eq!(k.checkpoint.root, empty_root());
                if !proof.is_empty() {
                    return Err(WitnessError::InvalidProof(
                        "proof from size 0 must be empty".into(),
                    ));
                }
            }
            Some(k) => {
                verify_consistency(
                    old_size,
                    size,
                    proof,
                    &k.checkpoint.root,
                    &cp.checkpoint.root,
                )
                .map_err(|reason| WitnessError::Inconsistent {
                    known: k.to_text(),
                    submitted: cp.to_text(),
                    reason: Box::new(reason),
                })?;
            }
        }
        let sig = self.cosigner.cosign(&cp.note.text, now)?;
        // Store the log-signed checkpoint (with our cosignature) before answering.
        let mut stored = cp.clone();
        stored.note.signatures.retain(|s| s.name == key_name(key));
        stored.add_signatures([sig.clone()]);
        write_atomically(&self.state_path(&origin), stored.to_text().as_bytes())?;
        Ok(sig)
    }
}

fn key_name(key: &NoteVerifier) -> &str {
    crate::note::Verifier::name(key)
}

/// Writes `data` to `path` so that a crash leaves either the old or the new content: write a
/// temporary file, fsync it, rename over, fsync the directory.
pub(crate) fn write_atomically(path: &Path, data: &[u8]) -> std::io::Result<()> {
    let dir = path.parent().unwrap_or(Path::new("."));
    let tmp = path.with_extension("tmp");
    {
        let mut f = fs::File::create(&tmp)?;
        f.write_all(data)?;
        f.sync_all()?;
    }
    fs::rename(&tmp, path)?;
    fs::File::open(dir)?.sync_all()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::checkpoint::Checkpoint;
    use crate::note::NoteSigner;
    use vouch_merkle::{MemoryTree, prove_consistency};

    struct Fixture {
        _dir: tempfile::TempDir,
        witness: Witness,
        log: NoteSigner,
        tree: MemoryTree,
    }

    const ORIGIN: &str = "example.com/log";

    fn fixture() -> Fixture {
        let dir = tempfile::tempdir().unwrap();
        let log = NoteSigner::new(ORIGIN, &[1; 32]).unwrap();
        let witness = Witness::open(
            dir.path(),
            Cosigner::new("witness.example", &[2; 32]).unwrap(),
            [(ORIGIN.to_owned(), log.verifier())],
        )
        .unwrap();
        Fixture {
            _dir: dir,
            witness,
            log,
            tree: MemoryTree::from_leaves((0..20u8).map(|i| [i])),
        }
    }

    fn signed(f: &Fixture, size: u64) -> Vec<u8> {
        let cp = Checkpoint::new(ORIGIN, size, f.tree.root_at(size).unwrap());
        SignedCheckpoint::sign(cp, &f.log)
            .unwrap()
            .to_text()
            .into_bytes()
    }

    #[test]
    fn follows_a_growing_log_and_refuses_rollback_and_forks() {
        let f = fixture();
        let w = &f.witness;
        let sig = w.add_checkpoint(0, &[], &signed(&f, 5), 100).unwrap();
        let vk = Cosigner::new("witness.example", &[2; 32])
            .unwrap()
            .verifier();
        let text = Checkpoint::new(ORIGIN, 5, f.tree.root_at(5).unwrap()).to_text();
        assert_eq!(
            vk.verify_timestamp(text.as_bytes(), &sig.signature),
            Some(100)
        );

        // Wrong old size: 409 with the witness's size.
        let e = w.add_checkpoint(3, &[], &signed(&f, 8), 101).unwrap_err();
        assert!(matches!(
            e,
            WitnessError::Conflict {
                old: 3,
                witness_size: 5
            }
        ));
        assert_eq!(e.http_status(), 409);

        let p = prove_consistency(&f.tree, 5, 9).unwrap();
        w.add_checkpoint(5, &p, &signed(&f, 9), 102).unwrap();
        assert_eq!(w.latest(ORIGIN).unwrap().unwrap().checkpoint.size, 9);

        // Rollback to 7: old must be 9, and then old > size.
        let e = w.add_checkpoint(9, &[], &signed(&f, 7), 103).unwrap_err();
        assert_eq!(e.http_status(), 400);
        let e = w.add_checkpoint(5, &[], &signed(&f, 7), 103).unwrap_err();
        assert_eq!(e.http_status(), 409);

        // Bad proof: 422.
        let mut bad = prove_consistency(&f.tree, 9, 12).unwrap();
        bad[0][0] ^= 1;
        let e = w.add_checkpoint(9, &bad, &signed(&f, 12), 104).unwrap_err();
        assert_eq!(e.http_status(), 422);

        // A fork: same size, another root. Both checkpoints are reported.
        let forked = SignedCheckpoint::sign(Checkpoint::new(ORIGIN, 9, [7; 32]), &f.log).unwrap();
        let e = w
            .add_checkpoint(9, &[], forked.to_text().as_bytes(), 105)
            .unwrap_err();
        match e {
            WitnessError::Inconsistent {
                known, submitted, ..
            } => {
                assert!(known.contains("\n9\n") && submitted.contains("\n9\n"));
                assert_ne!(known, submitted);
            }
            other => panic!("{other}"),
        }

        // Unknown origin 404; bad signature 403; size 0 with a wrong root 422.
        let other = NoteSigner::new("other.example", &[3; 32]).unwrap();
        let cp =
            SignedCheckpoint::sign(Checkpoint::new("other.example", 1, [0; 32]), &other).unwrap();
        assert_eq!(
            w.add_checkpoint(0, &[], cp.to_text().as_bytes(), 1)
                .unwrap_err()
                .http_status(),
            404
        );
        let mut tampered = SignedCheckpoint::parse_unverified(&signed(&f, 12)).unwrap();
        tampered.note.signatures[0].signature[0] ^= 1;
        assert_eq!(
            w.add_checkpoint(9, &[], tampered.to_text().as_bytes(), 1)
                .unwrap_err()
                .http_status(),
            403
        );
        let zero = format!("{ORIGIN}\n0\n{}\n", STANDARD.encode([1u8; 32]));
        let sig = f.log.sign(&zero).unwrap();
        let note = crate::note::Note {
            text: zero,
            signatures: vec![sig],
        };
        assert_eq!(
            w.add_checkpoint(0, &[], note.to_text().as_bytes(), 1)
                .unwrap_err()
                .http_status(),
            422
        );
    }

    #[test]
    fn request_body_round_trip() {
        let f = fixture();
        let req = AddCheckpointRequest {
            old_size: 5,
            proof: prove_consistency(&f.tree, 5, 9).unwrap(),
            checkpoint: signed(&f, 9),
        };
        assert_eq!(AddCheckpointRequest::parse(&req.to_bytes()).unwrap(), req);
        for bad in [
            &b"old 01\n\nx"[..],
            b"new 1\n\nx",
            b"old 1\nAAAA\n\nx",
            b"old 1\n",
        ] {
            assert_eq!(
                AddCheckpointRequest::parse(bad).unwrap_err().http_status(),
                400
            );
        }
        let many = format!(
            "old 1\n{}\nx",
            format!("{}\n", STANDARD.encode([0u8; 32])).repeat(64)
        );
        assert!(AddCheckpointRequest::parse(many.as_bytes()).is_err());
    }
}
