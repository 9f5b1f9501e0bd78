//! Offline proof bundles in the format of c2sp.org/tlog-proof v1: an entry's index, its
//! inclusion proof, and the (cosigned) checkpoint it is proven against, verifiable with only
//! the log's key and a witness policy.

use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use vouch_merkle::{Hash, ProofError, leaf_hash, verify_inclusion};

use crate::checkpoint::{CheckpointError, SignedCheckpoint, parse_decimal};
use crate::cosignature::{Attestation, CosignatureError, WitnessPolicy};
use crate::note::{MAX_NOTE_BYTES, NoteVerifier};

/// The first line of a bundle.
pub const HEADER: &str = "c2sp.org/tlog-proof@v1";
/// The most extra-data bytes a bundle may carry.
pub const MAX_EXTRA_BYTES: usize = 16 * 1024;

/// Why a proof bundle was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum BundleError {
    /// The text is not a tlog-proof v1 bundle.
    #[error("malformed proof bundle: {0}")]
    Malformed(&'static str),
    /// The checkpoint is malformed or not signed by the log.
    #[error(transparent)]
    Checkpoint(#[from] CheckpointError),
    /// The witness policy is not met.
    #[error(transparent)]
    Witnesses(#[from] CosignatureError),
    /// The inclusion proof does not bind the entry to the checkpoint.
    #[error(transparent)]
    Inclusion(#[from] ProofError),
}

/// An entry's offline proof: index, inclusion proof, and checkpoint note.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ProofBundle {
    /// Unauthenticated extra data (the `extra` line), if any.
    pub extra: Option<Vec<u8>>,
    /// The entry's index.
    pub index: u64,
    /// The inclusion proof, leaf's sibling first.
    pub proof: Vec<Hash>,
    /// The signed checkpoint note, verbatim, with any cosignatures.
    pub checkpoint: String,
}

/// What a verified bundle establishes.
#[derive(Debug, Clone)]
pub struct VerifiedBundle {
    /// The checkpoint the entry is included in.
    pub checkpoint: SignedCheckpoint,
    /// The witnesses that cosigned it.
    pub witnesses: Vec<Attestation>,
}

impl ProofBundle {
    /// The bundle's text.
    pub fn to_text(&self) -> String {
        let mut s = format!("{HEADER}\n");
        if let Some(e) = &self.extra {
            s.push_str(&format!("extra {}\n", STANDARD.encode(e)));
        }
        s.push_str(&format!("index {}\n", self.index));
        for h in &self.proof {
            s.push_str(&STANDARD.encode(h));
            s.push('\n');
        }
        s.push('\n');
        s.push_str(&self.checkpoint);
        s
    }

    /// Parses a bundle strictly, with bounded sizes.
    pub fn parse(text: &str) -> Result<Self, BundleError> {
        let bad = BundleError::Malformed;
        if text.len() > MAX_NOTE_BYTES + 8 * 1024 + MAX_EXTRA_BYTES * 2 {
            return Err(bad("too large"));
        }
        let (head, checkpoint) = text.split_once("\n\n").ok_or(bad("no blank line"))?;
        let mut lines = head.split('\n');
        if lines.next() != Some(HEADER) {
            return Err(bad("first line is not c2sp.org/tlog-proof@v1"));
        }
        let mut next = lines.next().ok_or(bad("no index line"))?;
        let mut extra = None;
        if let Some(e) = next.strip_prefix("extra ") {
            let e = STANDARD.decode(e).map_err(|_| bad("extra is not base64"))?;
            if e.len() > MAX_EXTRA_BYTES {
                return Err(bad("extra too large"));
            }
            extra = Some(e);
            next = lines.next().ok_or(bad("no index line"))?;
        }
        let index = next
            .strip_prefix("index ")
            .and_then(parse_decimal)
            .ok_or(bad("invalid index line"))?;
        let mut proof = Vec::new();
        for l in lines {
            if proof.len() == vouch_merkle::MAX_PROOF_HASHES {
                return Err(bad("too many proof lines"));
            }
            let h: Hash = STANDARD
                .decode(l)
                .ok()
                .and_then(|v| v.try_into().ok())
                .ok_or(bad("a proof line is not a base64 SHA-256 hash"))?;
            proof.push(h);
        }
        Ok(Self {
            extra,
            index,
            proof,
            checkpoint: checkpoint.to_owned(),
        })
    }

    /// Verifies that `entry` is at `index` in a checkpoint signed by `log_key` and cosigned as
    /// `policy` requires (tlog-proof's verification steps 1–4).
    pub fn verify(
        &self,
        entry: &[u8],
        log_key: &NoteVerifier,
        policy: &WitnessPolicy,
    ) -> Result<VerifiedBundle, BundleError> {
        let cp = SignedCheckpoint::open(self.checkpoint.as_bytes(), log_key)?;
        let witnesses = policy.check(&cp.note)?;
        verify_inclusion(
            self.index,
            cp.checkpoint.size,
            &leaf_hash(entry),
            &self.proof,
            &cp.checkpoint.root,
        )?;
        Ok(VerifiedBundle {
            checkpoint: cp,
            witnesses,
        })
    }
}
