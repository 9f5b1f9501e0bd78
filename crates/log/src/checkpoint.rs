//! C2SP `tlog-checkpoint`: the note body `<origin>\n<size>\n<base64 root>\n[extensions]`,
//! signed by the log's Ed25519 note key, and the check that two checkpoints are consistent.

use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use vouch_merkle::{Hash, ProofError, empty_root, verify_consistency};

use crate::note::{Note, NoteError, NoteSignature, NoteSigner, NoteVerifier, Verifier};

/// The most extension lines a checkpoint may carry here.
pub const MAX_EXTENSION_LINES: usize = 16;
/// The longest checkpoint body accepted (origin, size, root and extensions).
pub const MAX_CHECKPOINT_TEXT: usize = 8 * 1024;

/// Why a checkpoint was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum CheckpointError {
    /// The text is longer than [`MAX_CHECKPOINT_TEXT`].
    #[error("checkpoint text is {0} bytes, more than {MAX_CHECKPOINT_TEXT}")]
    TooLarge(usize),
    /// The text does not end in a newline or has fewer than three lines.
    #[error("checkpoint text needs origin, size and root lines, each ending in a newline")]
    MissingLines,
    /// The origin line is empty.
    #[error("empty origin line")]
    EmptyOrigin,
    /// The size line is not a decimal `u64` without leading zeroes.
    #[error("invalid tree size line {0:?}")]
    InvalidSize(String),
    /// The root line is not the canonical base64 of 32 bytes.
    #[error("invalid root hash line {0:?}")]
    InvalidRoot(String),
    /// An extension line is empty, or there are too many.
    #[error("invalid extension lines (empty, or more than {MAX_EXTENSION_LINES})")]
    InvalidExtension,
    /// A size-0 checkpoint must carry the empty tree's root.
    #[error("a checkpoint of size 0 must carry the empty tree's root")]
    EmptyTreeRoot,
    /// The note around it failed.
    #[error(transparent)]
    Note(#[from] NoteError),
    /// The origin is not the one expected.
    #[error("origin {got:?}, expected {expected:?}")]
    WrongOrigin {
        /// The origin expected.
        expected: String,
        /// The origin found.
        got: String,
    },
}

/// A checkpoint body: the tree head of a log at one size.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Checkpoint {
    /// The log's origin line: its unique name.
    pub origin: String,
    /// The number of leaves.
    pub size: u64,
    /// The RFC 9162 root hash over the first `size` leaves.
    pub root: Hash,
    /// Opaque extension lines (non-empty each); Vouch's log writes none.
    pub extensions: Vec<String>,
}

impl Checkpoint {
    /// A checkpoint without extension lines.
    pub fn new(origin: &str, size: u64, root: Hash) -> Self {
        Self {
            origin: origin.to_owned(),
            size,
            root,
            extensions: Vec::new(),
        }
    }

    /// The note text: each line followed by a newline.
    pub fn to_text(&self) -> String {
        let mut s = format!(
            "{}\n{}\n{}\n",
            self.origin,
            self.size,
            STANDARD.encode(self.root)
        );
        for e in &self.extensions {
            s.push_str(e);
            s.push('\n');
        }
        s
    }

    /// Parses a checkpoint body strictly: no leading zeroes, canonical base64, no empty lines.
    pub fn parse(text: &str) -> Result<Self, CheckpointError> {
        if text.len() > MAX_CHECKPOINT_TEXT {
            return Err(CheckpointError::TooLarge(text.len()));
        }
        let body = text
            .strip_suffix('\n')
            .ok_or(CheckpointError::MissingLines)?;
        let mut lines = body.split('\n');
        let (Some(origin), Some(size), Some(root)) = (lines.next(), lines.next(), lines.next())
        else {
            return Err(CheckpointError::MissingLines);
        };
        if origin.is_empty() {
            return Err(CheckpointError::EmptyOrigin);
        }
        let size =
            parse_decimal(size).ok_or_else(|| CheckpointError::InvalidSize(size.to_owned()))?;
        let root: Hash = STANDARD
            .decode(root)
            .ok()
            .and_then(|r| r.try_into().ok())
            .ok_or_else(|| CheckpointError::InvalidRoot(root.chars().take(100).collect()))?;
        let extensions: Vec<String> = lines.map(str::to_owned).collect();
        if extensions.len() > MAX_EXTENSION_LINES || extensions.iter().any(String::is_empty) {
            return Err(CheckpointError::InvalidExtension);
        }
        if size == 0 && root != empty_root() {
            return Err(CheckpointError::EmptyTreeRoot);
        }
        Ok(Self {
            origin: origin.to_owned(),
            size,
            root,
            extensions,
        })
    }
}

/// Parses an ASCII decimal `u64` with no sign, no leading zeroes (except `0` itself).
pub fn parse_decimal(s: &str) -> Option<u64> {
    if s.is_empty() || s.len() > 20 || !s.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    if s.len() > 1 && s.starts_with('0') {
        return None;
    }
    s.parse().ok()
}

/// A checkpoint with its note signatures (the log's, and any witness cosignatures).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SignedCheckpoint {
    /// The parsed body.
    pub checkpoint: Checkpoint,
    /// The note: body text and every signature line.
    pub note: Note,
}

impl SignedCheckpoint {
    /// Signs `checkpoint` with the log's key.
    pub fn sign(checkpoint: Checkpoint, signer: &NoteSigner) -> Result<Self, CheckpointError> {
        let text = checkpoint.to_text();
        let sig = signer.sign(&text)?;
        Ok(Self {
            checkpoint,
            note: Note {
                text,
                signatures: vec![sig],
            },
        })
    }

    /// Parses a signed checkpoint without verifying any signature (to find its origin).
    pub fn parse_unverified(bytes: &[u8]) -> Result<Self, CheckpointError> {
        let note = Note::parse(bytes)?;
        if note.text.len() > MAX_CHECKPOINT_TEXT {
            return Err(CheckpointError::TooLarge(note.text.len()));
        }
        let checkpoint = Checkpoint::parse(&note.text)?;
        Ok(Self { checkpoint, note })
    }

    /// Parses a signed checkpoint and verifies it against the log's key; its origin must be
    /// the key name, as Vouch's logs sign with a key named after their origin.
    pub fn open(bytes: &[u8], log_key: &NoteVerifier) -> Result<Self, CheckpointError> {
        let cp = Self::parse_unverified(bytes)?;
        if cp.checkpoint.origin != log_key.name() {
            return Err(CheckpointError::WrongOrigin {
                expected: log_key.name().to_owned(),
                got: cp.checkpoint.origin,
            });
        }
        cp.note.verify(&[log_key])?;
        Ok(cp)
    }

    /// The signed note as text.
    pub fn to_text(&self) -> String {
        self.note.to_text()
    }

    /// Adds signature lines (e.g. witness cosignatures), skipping exact duplicates.
    pub fn add_signatures(&mut self, sigs: impl IntoIterator<Item = NoteSignature>) {
        for s in sigs {
            if !self.note.signatures.contains(&s) {
                self.note.signatures.push(s);
            }
        }
    }
}

/// Two checkpoints of one log that cannot both be honest.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("fork: checkpoints of sizes {} and {} are inconsistent ({reason})", .older.checkpoint.size, .newer.checkpoint.size)]
pub struct ForkError {
    /// The smaller (or first, at equal sizes) checkpoint.
    pub older: Box<SignedCheckpoint>,
    /// The larger (or second) checkpoint.
    pub newer: Box<SignedCheckpoint>,
    /// Why the consistency check failed.
    pub reason: ProofError,
}

/// Checks that `newer` extends `older` using a consistency proof between their sizes; on
/// failure returns both checkpoints as evidence. Origins must match (checked by the caller's
/// choice of key); checkpoints given in the wrong order are swapped.
pub fn check_consistent(
    a: &SignedCheckpoint,
    b: &SignedCheckpoint,
    proof: &[Hash],
) -> Result<(), ForkError> {
    let (older, newer) = if a.checkpoint.size <= b.checkpoint.size {
        (a, b)
    } else {
        (b, a)
    };
    let (o, n) = (&older.checkpoint, &newer.checkpoint);
    let result = if o.size == 0 {
        // The empty tree is consistent with every tree; there is nothing to prove.
        if proof.is_empty() {
            Ok(())
        } else {
            Err(ProofError::WrongLength {
                expected: 0,
                got: proof.len(),
            })
        }
    } else {
        verify_consistency(o.size, n.size, proof, &o.root, &n.root)
    };
    result.map_err(|reason| ForkError {
        older: Box::new(older.clone()),
        newer: Box::new(newer.clone()),
        reason,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn spec_example_body_parses() {
        // The body of c2sp.org/tlog-checkpoint's example.
        let text =
            "example.com/behind-the-sofa\n20852163\nCsUYapGGPo4dkMgIAUqom/Xajj7h2fB2MPA3j2jxq2I=\n";
        let cp = Checkpoint::parse(text).unwrap();
        assert_eq!(cp.size, 20852163);
        assert_eq!(cp.to_text(), text);
    }

    #[test]
    fn malformed_bodies_are_refused() {
        let root = STANDARD.encode([0u8; 32]);
        let empty = STANDARD.encode(empty_root());
        for text in [
            String::new(),
            "origin\n1\n".into(),
            format!("\n1\n{root}\n"),
            format!("o\n01\n{root}\n"),
            format!("o\n-1\n{root}\n"),
            format!("o\n+1\n{root}\n"),
            format!("o\n18446744073709551616\n{root}\n"),
            format!("o\n1\n{root}"),
            "o\n1\nAAAA\n".into(),
            format!("o\n1\n{root}\n\n"),
            format!("o\n1\n{root}\next\n\n"),
            format!("o\n0\n{root}\n"),
            format!("o\n1 \n{root}\n"),
        ] {
            assert!(Checkpoint::parse(&text).is_err(), "{text:?}");
        }
        assert!(Checkpoint::parse(&format!("o\n0\n{empty}\n")).is_ok());
        let with_ext = Checkpoint::parse(&format!("o\n5\n{root}\nfoo\nbar baz\n")).unwrap();
        assert_eq!(with_ext.extensions, vec!["foo", "bar baz"]);
    }

    #[test]
    fn signed_checkpoint_round_trip_and_bad_signature() {
        let signer = NoteSigner::new("example.com/log", &[9; 32]).unwrap();
        let cp =
            SignedCheckpoint::sign(Checkpoint::new("example.com/log", 0, empty_root()), &signer)
                .unwrap();
        let text = cp.to_text();
        let v = signer.verifier();
        assert_eq!(SignedCheckpoint::open(text.as_bytes(), &v).unwrap(), cp);
        // A flipped bit in the signature: the log's own key fails, so the note is rejected.
        let mut bad = cp.clone();
        bad.note.signatures[0].signature[3] ^= 1;
        assert!(matches!(
            SignedCheckpoint::open(bad.to_text().as_bytes(), &v),
            Err(CheckpointError::Note(NoteError::BadSignature { .. }))
        ));
        // Signed by another key under the same name: unknown key, no known signature.
        let other = NoteSigner::new("example.com/log", &[8; 32]).unwrap();
        let forged = SignedCheckpoint::sign(cp.checkpoint.clone(), &other).unwrap();
        assert!(matches!(
            SignedCheckpoint::open(forged.to_text().as_bytes(), &v),
            Err(CheckpointError::Note(NoteError::NoKnownSignature))
        ));
        let wrong_origin = SignedCheckpoint::sign(
            Checkpoint::new("example.com/other", 0, empty_root()),
            &signer,
        )
        .unwrap();
        assert!(matches!(
            SignedCheckpoint::open(wrong_origin.to_text().as_bytes(), &v),
            Err(CheckpointError::WrongOrigin { .. })
        ));
    }
}
