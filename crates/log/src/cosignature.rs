//! C2SP `tlog-cosignature` v1 with Ed25519 (signature type `0x04`): a witness's timestamped
//! signature over `cosignature/v1\ntime <ts>\n` followed by the checkpoint body, and a policy
//! that requires N valid cosignatures from a set of witness keys.

use ed25519_dalek::{Signer as _, SigningKey, VerifyingKey};

use crate::note::{
    Note, NoteError, NoteSignature, Verifier, check_text, format_vkey, is_valid_key_name, key_id,
    parse_vkey, random_seed,
};

/// Signature type byte of timestamped Ed25519 cosignatures.
pub const COSIGNATURE_V1_TYPE: u8 = 0x04;

/// Why a cosignature or policy check failed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum CosignatureError {
    /// A key or note problem.
    #[error(transparent)]
    Note(#[from] NoteError),
    /// The timestamp is above 2^63 - 1, which the spec forbids.
    #[error("timestamp {0} exceeds 2^63 - 1")]
    TimestampTooLarge(u64),
    /// A cosignature from a known witness does not verify: the note is rejected.
    #[error("cosignature by {0} does not verify")]
    BadCosignature(String),
    /// The policy needs more valid cosignatures than the note carries.
    #[error("{got} valid cosignatures from known witnesses, policy requires {required}")]
    NotEnough {
        /// How many distinct witnesses cosigned validly.
        got: usize,
        /// How many the policy requires.
        required: usize,
    },
    /// The policy itself is unsatisfiable or names a witness twice.
    #[error("invalid policy: {0}")]
    InvalidPolicy(&'static str),
}

/// The message a v1 cosignature signs: header, time line, then the checkpoint body.
pub fn cosigned_message(checkpoint_text: &str, timestamp: u64) -> Vec<u8> {
    let mut m = format!("cosignature/v1\ntime {timestamp}\n").into_bytes();
    m.extend_from_slice(checkpoint_text.as_bytes());
    m
}

/// A witness's cosigning key and name.
pub struct Cosigner {
    name: String,
    id: u32,
    key: SigningKey,
}

impl std::fmt::Debug for Cosigner {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Cosigner")
            .field("name", &self.name)
            .field("key_id", &format_args!("{:08x}", self.id))
            .finish_non_exhaustive()
    }
}

impl Cosigner {
    /// A cosigner from its name and a 32-byte Ed25519 seed.
    pub fn new(name: &str, seed: &[u8; 32]) -> Result<Self, CosignatureError> {
        if !is_valid_key_name(name) {
            return Err(NoteError::InvalidKeyName(name.to_owned()).into());
        }
        let key = SigningKey::from_bytes(seed);
        let id = key_id(name, COSIGNATURE_V1_TYPE, key.verifying_key().as_bytes());
        Ok(Self {
            name: name.to_owned(),
            id,
            key,
        })
    }

    /// A cosigner with a fresh random key.
    pub fn generate(name: &str) -> Result<Self, CosignatureError> {
        Self::new(name, &random_seed()?)
    }

    /// The cosigner's name.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// The matching verifier.
    pub fn verifier(&self) -> CosignatureVerifier {
        CosignatureVerifier {
            name: self.name.clone(),
            id: self.id,
            key: self.key.verifying_key(),
        }
    }

    /// Cosigns a checkpoint body at `timestamp` (POSIX seconds).
    pub fn cosign(
        &self,
        checkpoint_text: &str,
        timestamp: u64,
    ) -> Result<NoteSignature, CosignatureError> {
        check_text(checkpoint_text)?;
        if timestamp > i64::MAX as u64 {
            return Err(CosignatureError::TimestampTooLarge(timestamp));
        }
        let sig = self.key.sign(&cosigned_message(checkpoint_text, timestamp));
        let mut signature = timestamp.to_be_bytes().to_vec();
        signature.extend_from_slice(&sig.to_bytes());
        Ok(NoteSignature {
            name: self.name.clone(),
            key_id: self.id,
            signature,
        })
    }
}

/// A witness's public cosignature key.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CosignatureVerifier {
    name: String,
    id: u32,
    key: VerifyingKey,
}

impl CosignatureVerifier {
    /// Parses a vkey `name+hex(id)+base64(0x04||key)`.
    pub fn from_vkey(vkey: &str) -> Result<Self, CosignatureError> {
        let (name, id, key) = parse_vkey(vkey.trim_end(), COSIGNATURE_V1_TYPE)?;
        Ok(Self { name, id, key })
    }

    /// The vkey string.
    pub fn to_vkey(&self) -> String {
        format_vkey(&self.name, self.id, COSIGNATURE_V1_TYPE, &self.key)
    }

    /// The timestamp of a valid cosignature over `text`, or `None` if it does not verify.
    pub fn verify_timestamp(&self, text: &[u8], signature: &[u8]) -> Option<u64> {
        if signature.len() != 8 + 64 {
            return None;
        }
        let ts = u64::from_be_bytes(signature[..8].try_into().expect("length checked"));
        if ts > i64::MAX as u64 {
            return None;
        }
        let text = std::str::from_utf8(text).ok()?;
        let sig = ed25519_dalek::Signature::from_slice(&signature[8..]).ok()?;
        self.key
            .verify_strict(&cosigned_message(text, ts), &sig)
            .ok()
            .map(|()| ts)
    }
}

impl Verifier for CosignatureVerifier {
    fn name(&self) -> &str {
        &self.name
    }
    fn key_id(&self) -> u32 {
        self.id
    }
    fn verify(&self, text: &[u8], signature: &[u8]) -> bool {
        self.verify_timestamp(text, signature).is_some()
    }
}

/// One witness's valid cosignature.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Attestation {
    /// The witness's name.
    pub witness: String,
    /// When it cosigned (POSIX seconds).
    pub timestamp: u64,
}

/// "Require `threshold` valid cosignatures from these witnesses."
#[derive(Debug, Clone)]
pub struct WitnessPolicy {
    witnesses: Vec<CosignatureVerifier>,
    threshold: usize,
}

impl WitnessPolicy {
    /// A k-of-n policy. `threshold` may be 0 (no witnesses needed) but not above `n`, and no
    /// witness may appear twice (it would count double).
    pub fn new(
        witnesses: Vec<CosignatureVerifier>,
        threshold: usize,
    ) -> Result<Self, CosignatureError> {
        if threshold > witnesses.len() {
            return Err(CosignatureError::InvalidPolicy(
                "threshold above the number of witnesses",
            ));
        }
        for (i, w) in witnesses.iter().enumerate() {
            if witnesses[..i]
                .iter()
                .any(|o| o.name == w.name || o.key == w.key)
            {
                return Err(CosignatureError::InvalidPolicy("a witness is listed twice"));
            }
        }
        Ok(Self {
            witnesses,
            threshold,
        })
    }

    /// The witnesses' verifiers.
    pub fn witnesses(&self) -> &[CosignatureVerifier] {
        &self.witnesses
    }

    /// How many distinct witnesses must cosign.
    pub fn threshold(&self) -> usize {
        self.threshold
    }

    /// Checks the note's cosignatures: unknown signatures are ignored, an invalid cosignature
    /// from a known witness rejects the note, and at least `threshold` distinct witnesses must
    /// have cosigned.
    pub fn check(&self, note: &Note) -> Result<Vec<Attestation>, CosignatureError> {
        let mut seen: Vec<Attestation> = Vec::new();
        for sig in &note.signatures {
            let Some(w) = self
                .witnesses
                .iter()
                .find(|w| w.name == sig.name && w.id == sig.key_id)
            else {
                continue;
            };
            let ts = w
                .verify_timestamp(note.text.as_bytes(), &sig.signature)
                .ok_or_else(|| CosignatureError::BadCosignature(w.name.clone()))?;
            if !seen.iter().any(|a| a.witness == w.name) {
                seen.push(Attestation {
                    witness: w.name.clone(),
                    timestamp: ts,
                });
            }
        }
        if seen.len() < self.threshold {
            return Err(CosignatureError::NotEnough {
                got: seen.len(),
                required: self.threshold,
            });
        }
        Ok(seen)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cosign_verify_and_policy() {
        let text = "example.com/log\n1\nbjQLnP+zepicpUTmu3gKLHiQHT+zNzh2hRGjBhevoB0=\n";
        let w1 = Cosigner::new("w1.example", &[1; 32]).unwrap();
        let w2 = Cosigner::new("w2.example", &[2; 32]).unwrap();
        let w3 = Cosigner::new("w3.example", &[3; 32]).unwrap();
        let s1 = w1.cosign(text, 1_700_000_000).unwrap();
        assert_eq!(&s1.signature[..8], &1_700_000_000u64.to_be_bytes());
        let v1 = CosignatureVerifier::from_vkey(&w1.verifier().to_vkey()).unwrap();
        assert_eq!(
            v1.verify_timestamp(text.as_bytes(), &s1.signature),
            Some(1_700_000_000)
        );
        // The time is signed: changing it breaks the signature.
        let mut moved = s1.signature.clone();
        moved[7] ^= 1;
        assert_eq!(v1.verify_timestamp(text.as_bytes(), &moved), None);

        let mut note = Note {
            text: text.into(),
            signatures: vec![s1.clone(), s1.clone(), w2.cosign(text, 5).unwrap()],
        };
        let policy =
            WitnessPolicy::new(vec![w1.verifier(), w2.verifier(), w3.verifier()], 2).unwrap();
        assert_eq!(policy.check(&note).unwrap().len(), 2);
        let strict =
            WitnessPolicy::new(vec![w1.verifier(), w2.verifier(), w3.verifier()], 3).unwrap();
        assert_eq!(
            strict.check(&note),
            Err(CosignatureError::NotEnough {
                got: 2,
                required: 3
            })
        );
        note.signatures[2].signature[20] ^= 1;
        assert_eq!(
            policy.check(&note),
            Err(CosignatureError::BadCosignature("w2.example".into()))
        );
        assert!(WitnessPolicy::new(vec![w1.verifier()], 2).is_err());
        assert!(WitnessPolicy::new(vec![w1.verifier(), w1.verifier()], 1).is_err());
        assert!(w1.cosign(text, u64::MAX).is_err());
        // A cosigner vkey is not a note vkey and vice versa.
        assert!(crate::note::NoteVerifier::from_vkey(&w1.verifier().to_vkey()).is_err());
    }
}
