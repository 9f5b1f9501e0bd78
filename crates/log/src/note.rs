//! C2SP `signed-note` v1: parsing with bounded sizes, Ed25519 note keys (signature type
//! `0x01`), verifier keys (`name+hex(id)+base64(type||key)`), and verification that follows
//! the spec's rules for unknown and failing signatures.

use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use ed25519_dalek::{Signer as _, SigningKey, VerifyingKey};
use sha2::{Digest, Sha256};

/// The largest note this crate parses, signatures included. Post-quantum signatures can be
/// near 5 kB; 16 of them plus a checkpoint body still fit.
pub const MAX_NOTE_BYTES: usize = 128 * 1024;
/// The most signature lines this crate accepts on one note (the spec demands at least 16).
pub const MAX_SIGNATURES: usize = 64;
/// Signature type byte of plain Ed25519 note signatures.
pub const ED25519_TYPE: u8 = 0x01;

/// Why a note or key was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum NoteError {
    /// The note is larger than [`MAX_NOTE_BYTES`].
    #[error("note is {0} bytes, more than the {MAX_NOTE_BYTES} allowed")]
    TooLarge(usize),
    /// The note is not UTF-8.
    #[error("note is not valid UTF-8")]
    NotUtf8,
    /// The note holds a control character other than newline.
    #[error("note holds control character {0:#04x}")]
    ControlCharacter(u8),
    /// No blank line separates the text from the signatures, or the text is empty.
    #[error("note has no text followed by a blank line and signatures")]
    MissingSeparator,
    /// A signature line is not `— <name> <base64>\n`.
    #[error("malformed signature line {0:?}")]
    MalformedSignatureLine(String),
    /// More than [`MAX_SIGNATURES`] signature lines.
    #[error("note has more than {MAX_SIGNATURES} signatures")]
    TooManySignatures,
    /// A key name is empty or has a space or `+`.
    #[error("invalid key name {0:?}")]
    InvalidKeyName(String),
    /// A verifier or private key string is malformed.
    #[error("malformed key: {0}")]
    MalformedKey(String),
    /// The text to sign is not a valid note text (must be non-empty, end in a newline, and
    /// hold no other control characters).
    #[error("text cannot be signed as a note: {0}")]
    InvalidText(&'static str),
    /// A signature from a known key (same name and id) does not verify: the note is rejected.
    #[error("signature by {name} (key id {id:08x}) does not verify")]
    BadSignature {
        /// The key name.
        name: String,
        /// The key id.
        id: u32,
    },
    /// No signature from any of the given keys.
    #[error("no signature from a known key")]
    NoKnownSignature,
    /// The operating system's random source failed while generating a key.
    #[error("random source failed: {0}")]
    Random(String),
}

/// `SHA-256(name || 0x0A || sig_type || public_key)[:4]` as a big-endian `u32`.
pub fn key_id(name: &str, sig_type: u8, public_key: &[u8]) -> u32 {
    let mut h = Sha256::new();
    h.update(name.as_bytes());
    h.update([b'\n', sig_type]);
    h.update(public_key);
    let d = h.finalize();
    u32::from_be_bytes([d[0], d[1], d[2], d[3]])
}

/// Whether `name` may name a key: non-empty, no Unicode space, no `+`, no control character.
pub fn is_valid_key_name(name: &str) -> bool {
    !name.is_empty()
        && !name
            .chars()
            .any(|c| c.is_whitespace() || c == '+' || c.is_control())
}

/// One signature line of a note: key name, key id, and the signature bytes after the id.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NoteSignature {
    /// The signer's key name.
    pub name: String,
    /// The signer's key id.
    pub key_id: u32,
    /// The signature bytes (without the 4-byte key id).
    pub signature: Vec<u8>,
}

impl NoteSignature {
    /// The line `— <name> base64(id || signature)\n`.
    pub fn to_line(&self) -> String {
        let mut raw = Vec::with_capacity(4 + self.signature.len());
        raw.extend_from_slice(&self.key_id.to_be_bytes());
        raw.extend_from_slice(&self.signature);
        format!("\u{2014} {} {}\n", self.name, STANDARD.encode(raw))
    }

    /// Parses one signature line, without its final newline.
    pub fn parse_line(line: &str) -> Result<Self, NoteError> {
        let bad = || NoteError::MalformedSignatureLine(line.chars().take(200).collect());
        let rest = line.strip_prefix("\u{2014} ").ok_or_else(bad)?;
        let (name, b64) = rest.split_once(' ').ok_or_else(bad)?;
        if !is_valid_key_name(name) {
            return Err(NoteError::InvalidKeyName(name.to_owned()));
        }
        let raw = STANDARD.decode(b64).map_err(|_| bad())?;
        if raw.len() < 5 {
            return Err(bad());
        }
        Ok(Self {
            name: name.to_owned(),
            key_id: u32::from_be_bytes([raw[0], raw[1], raw[2], raw[3]]),
            signature: raw[4..].to_vec(),
        })
    }
}

/// A signed note: its text (ending in a newline) and its signature lines, not yet verified.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Note {
    /// The signed text, final newline included.
    pub text: String,
    /// The signatures in the order they appear.
    pub signatures: Vec<NoteSignature>,
}

/// Checks the characters a note may hold: UTF-8, no control characters but newline.
fn check_note_chars(bytes: &[u8]) -> Result<&str, NoteError> {
    if let Some(&c) = bytes.iter().find(|&&b| b < 0x20 && b != b'\n') {
        return Err(NoteError::ControlCharacter(c));
    }
    std::str::from_utf8(bytes).map_err(|_| NoteError::NotUtf8)
}

/// Checks that `text` can be the text of a note.
pub(crate) fn check_text(text: &str) -> Result<(), NoteError> {
    if text.is_empty() || !text.ends_with('\n') {
        return Err(NoteError::InvalidText(
            "must be non-empty and end in a newline",
        ));
    }
    if text.bytes().any(|b| b < 0x20 && b != b'\n') {
        return Err(NoteError::InvalidText("holds a control character"));
    }
    Ok(())
}

impl Note {
    /// Parses a signed note, refusing anything malformed or larger than the bounds.
    pub fn parse(bytes: &[u8]) -> Result<Self, NoteError> {
        if bytes.len() > MAX_NOTE_BYTES {
            return Err(NoteError::TooLarge(bytes.len()));
        }
        let s = check_note_chars(bytes)?;
        // The text ends at the last blank line; signatures follow and end in a newline.
        let split = s.rfind("\n\n").ok_or(NoteError::MissingSeparator)?;
        let (text, sigs) = (&s[..split + 1], &s[split + 2..]);
        if sigs.is_empty() || !sigs.ends_with('\n') {
            return Err(NoteError::MissingSeparator);
        }
        let lines: Vec<&str> = sigs[..sigs.len() - 1].split('\n').collect();
        if lines.len() > MAX_SIGNATURES {
            return Err(NoteError::TooManySignatures);
        }
        let signatures = lines
            .into_iter()
            .map(NoteSignature::parse_line)
            .collect::<Result<_, _>>()?;
        Ok(Self {
            text: text.to_owned(),
            signatures,
        })
    }

    /// The note as it is sent: text, blank line, signature lines.
    pub fn to_text(&self) -> String {
        let mut s = self.text.clone();
        s.push('\n');
        for sig in &self.signatures {
            s.push_str(&sig.to_line());
        }
        s
    }

    /// Verifies the note against `verifiers` per c2sp.org/signed-note: signatures from
    /// unknown keys are ignored, a failing signature from a known key rejects the note, and at
    /// least one known signature must verify. Returns the verified signatures.
    pub fn verify(&self, verifiers: &[&dyn Verifier]) -> Result<Vec<&NoteSignature>, NoteError> {
        let mut verified = Vec::new();
        for sig in &self.signatures {
            let Some(v) = verifiers
                .iter()
                .find(|v| v.name() == sig.name && v.key_id() == sig.key_id)
            else {
                continue;
            };
            if !v.verify(self.text.as_bytes(), &sig.signature) {
                return Err(NoteError::BadSignature {
                    name: sig.name.clone(),
                    id: sig.key_id,
                });
            }
            verified.push(sig);
        }
        if verified.is_empty() {
            return Err(NoteError::NoKnownSignature);
        }
        Ok(verified)
    }
}

/// A key that can check note signatures: the seam between note parsing and signature types.
pub trait Verifier {
    /// The key name that signature lines carry.
    fn name(&self) -> &str;
    /// The key id that signature lines carry.
    fn key_id(&self) -> u32;
    /// Whether `signature` (without the key id) is valid over the note `text`.
    fn verify(&self, text: &[u8], signature: &[u8]) -> bool;
}

/// Parses `name+hex(id)+base64(type||key)` and checks name, id and the Ed25519 key.
pub(crate) fn parse_vkey(
    vkey: &str,
    want_type: u8,
) -> Result<(String, u32, VerifyingKey), NoteError> {
    let bad = |why: &str| {
        NoteError::MalformedKey(format!(
            "{why}: {}",
            vkey.chars().take(200).collect::<String>()
        ))
    };
    // The base64 key may itself contain '+': split off the name and id only.
    let mut parts = vkey.splitn(3, '+');
    let (Some(name), Some(id_hex), Some(b64)) = (parts.next(), parts.next(), parts.next()) else {
        return Err(bad("a vkey is name+id+key"));
    };
    if !is_valid_key_name(name) {
        return Err(NoteError::InvalidKeyName(name.to_owned()));
    }
    if id_hex.len() != 8
        || !id_hex
            .bytes()
            .all(|b| b.is_ascii_hexdigit() && !b.is_ascii_uppercase())
    {
        return Err(bad("key id is not 8 lowercase hex digits"));
    }
    let id = u32::from_str_radix(id_hex, 16).map_err(|_| bad("key id"))?;
    let raw = STANDARD.decode(b64).map_err(|_| bad("key is not base64"))?;
    if raw.len() != 33 || raw[0] != want_type {
        return Err(bad(&format!(
            "want type {want_type:#04x} and a 32-byte Ed25519 key"
        )));
    }
    let key_bytes: [u8; 32] = raw[1..].try_into().expect("length checked above");
    let key = VerifyingKey::from_bytes(&key_bytes).map_err(|_| bad("not an Ed25519 point"))?;
    if key_id(name, want_type, &key_bytes) != id {
        return Err(bad("key id does not match name and key"));
    }
    Ok((name.to_owned(), id, key))
}

pub(crate) fn format_vkey(name: &str, id: u32, sig_type: u8, key: &VerifyingKey) -> String {
    let mut raw = vec![sig_type];
    raw.extend_from_slice(key.as_bytes());
    format!("{name}+{id:08x}+{}", STANDARD.encode(raw))
}

pub(crate) fn random_seed() -> Result<[u8; 32], NoteError> {
    let mut seed = [0u8; 32];
    getrandom::getrandom(&mut seed).map_err(|e| NoteError::Random(e.to_string()))?;
    Ok(seed)
}

/// An Ed25519 note signing key (signature type `0x01`) with its key name: what a log signs
/// its checkpoints with.
pub struct NoteSigner {
    name: String,
    id: u32,
    key: SigningKey,
}

impl std::fmt::Debug for NoteSigner {
    // The seed never reaches logs.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("NoteSigner")
            .field("name", &self.name)
            .field("key_id", &format_args!("{:08x}", self.id))
            .finish_non_exhaustive()
    }
}

impl NoteSigner {
    /// A signer from a key name and a 32-byte Ed25519 seed.
    pub fn new(name: &str, seed: &[u8; 32]) -> Result<Self, NoteError> {
        if !is_valid_key_name(name) {
            return Err(NoteError::InvalidKeyName(name.to_owned()));
        }
        let key = SigningKey::from_bytes(seed);
        let id = key_id(name, ED25519_TYPE, key.verifying_key().as_bytes());
        Ok(Self {
            name: name.to_owned(),
            id,
            key,
        })
    }

    /// A signer with a fresh random key.
    pub fn generate(name: &str) -> Result<Self, NoteError> {
        Self::new(name, &random_seed()?)
    }

    /// Parses `PRIVATE+KEY+<name>+<hex id>+base64(0x01 || seed)`, the form Go's
    /// `golang.org/x/mod/sumdb/note` uses.
    pub fn from_private_key(text: &str) -> Result<Self, NoteError> {
        let bad = || NoteError::MalformedKey("expected PRIVATE+KEY+name+id+base64".to_owned());
        let rest = text
            .trim_end()
            .strip_prefix("PRIVATE+KEY+")
            .ok_or_else(bad)?;
        // The base64 key may itself contain '+': split off the name and id only.
        let mut parts = rest.splitn(3, '+');
        let (Some(name), Some(id_hex), Some(b64)) = (parts.next(), parts.next(), parts.next())
        else {
            return Err(bad());
        };
        let raw = STANDARD.decode(b64).map_err(|_| bad())?;
        if raw.len() != 33 || raw[0] != ED25519_TYPE {
            return Err(bad());
        }
        let seed: [u8; 32] = raw[1..].try_into().expect("length checked above");
        let signer = Self::new(name, &seed)?;
        if format!("{:08x}", signer.id) != id_hex {
            return Err(NoteError::MalformedKey(
                "key id does not match the key".to_owned(),
            ));
        }
        Ok(signer)
    }

    /// The private key string (keep it secret): `PRIVATE+KEY+<name>+<id>+base64(0x01||seed)`.
    pub fn to_private_key(&self) -> String {
        let mut raw = vec![ED25519_TYPE];
        raw.extend_from_slice(&self.key.to_bytes());
        format!(
            "PRIVATE+KEY+{}+{:08x}+{}",
            self.name,
            self.id,
            STANDARD.encode(raw)
        )
    }

    /// The key name.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// The key id.
    pub fn key_id(&self) -> u32 {
        self.id
    }

    /// The matching verifier.
    pub fn verifier(&self) -> NoteVerifier {
        NoteVerifier {
            name: self.name.clone(),
            id: self.id,
            key: self.key.verifying_key(),
        }
    }

    /// Signs a note text (non-empty, ending in a newline).
    pub fn sign(&self, text: &str) -> Result<NoteSignature, NoteError> {
        check_text(text)?;
        Ok(NoteSignature {
            name: self.name.clone(),
            key_id: self.id,
            signature: self.key.sign(text.as_bytes()).to_bytes().to_vec(),
        })
    }
}

/// An Ed25519 note verifier key (signature type `0x01`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NoteVerifier {
    name: String,
    id: u32,
    key: VerifyingKey,
}

impl NoteVerifier {
    /// Parses a vkey `name+hex(id)+base64(0x01||key)`, checking that the id matches.
    pub fn from_vkey(vkey: &str) -> Result<Self, NoteError> {
        let (name, id, key) = parse_vkey(vkey.trim_end(), ED25519_TYPE)?;
        Ok(Self { name, id, key })
    }

    /// The vkey string.
    pub fn to_vkey(&self) -> String {
        format_vkey(&self.name, self.id, ED25519_TYPE, &self.key)
    }
}

impl Verifier for NoteVerifier {
    fn name(&self) -> &str {
        &self.name
    }
    fn key_id(&self) -> u32 {
        self.id
    }
    fn verify(&self, text: &[u8], signature: &[u8]) -> bool {
        let Ok(sig) = ed25519_dalek::Signature::from_slice(signature) else {
            return false;
        };
        // Strict verification refuses malleable and small-order forms.
        self.key.verify_strict(text, &sig).is_ok()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys_whose_base64_contains_plus_round_trip() {
        let mut with_plus = 0;
        for b in 0..=255u8 {
            let signer = NoteSigner::new("example.com/log", &[b; 32]).unwrap();
            let private = signer.to_private_key();
            let vkey = signer.verifier().to_vkey();
            with_plus +=
                usize::from(vkey.matches('+').count() > 2 || private.matches('+').count() > 4);
            assert_eq!(
                NoteSigner::from_private_key(&private)
                    .unwrap()
                    .to_private_key(),
                private
            );
            assert_eq!(NoteVerifier::from_vkey(&vkey).unwrap().to_vkey(), vkey);
        }
        assert!(
            with_plus > 0,
            "the sample includes keys with '+' in their base64"
        );
    }

    // The example of c2sp.org/signed-note v1 (C2SP/C2SP signed-note.md at commit 5ba5ee83,
    // CC BY 4.0): vkey and note.
    const SPEC_VKEY: &str = "example.com/foo+530d903a+AekyeRrm56hApGFkyQR4ZCbV54Id2LKaANYcrnKv3U2k";
    const SPEC_NOTE: &str = "This is an example message.\n\n\u{2014} example.com/foo Uw2QOkn8srV1yJGh2VYRlL1Tnagv1YEq6TfXppzi2ONncAlTgK7Ztg1ERYNZXsYjOBH3mFXmRKuwHjG1Yu72IneyaQM=\n";

    #[test]
    fn spec_example_verifies() {
        let v = NoteVerifier::from_vkey(SPEC_VKEY).unwrap();
        assert_eq!(v.to_vkey(), SPEC_VKEY);
        let note = Note::parse(SPEC_NOTE.as_bytes()).unwrap();
        assert_eq!(note.text, "This is an example message.\n");
        assert_eq!(note.to_text(), SPEC_NOTE);
        assert_eq!(note.verify(&[&v]).unwrap().len(), 1);
        // Tamper with the text: the known key's signature now fails.
        let mut bad = note.clone();
        bad.text = "This is an example massage.\n".into();
        assert!(matches!(
            bad.verify(&[&v]),
            Err(NoteError::BadSignature { .. })
        ));
    }

    #[test]
    fn sign_round_trip_and_unknown_keys() {
        let a = NoteSigner::new("example.com/a", &[1; 32]).unwrap();
        let b = NoteSigner::new("example.com/b", &[2; 32]).unwrap();
        let text = "hello\n\nworld\n";
        let note = Note {
            text: text.into(),
            signatures: vec![b.sign(text).unwrap(), a.sign(text).unwrap()],
        };
        let parsed = Note::parse(note.to_text().as_bytes()).unwrap();
        assert_eq!(parsed, note);
        let va = a.verifier();
        assert_eq!(parsed.verify(&[&va]).unwrap()[0].name, "example.com/a");
        let stranger = NoteSigner::new("example.com/c", &[3; 32])
            .unwrap()
            .verifier();
        assert_eq!(
            parsed.verify(&[&stranger]),
            Err(NoteError::NoKnownSignature)
        );
        assert_eq!(
            NoteSigner::from_private_key(&a.to_private_key())
                .unwrap()
                .verifier(),
            va
        );
        assert_eq!(NoteVerifier::from_vkey(&va.to_vkey()).unwrap(), va);
    }

    #[test]
    fn malformed_notes_are_refused() {
        let cases: &[&[u8]] = &[
            b"",
            b"no signatures\n",
            b"text\n\n",
            b"text\n\nnot a signature\n",
            b"text\n\n\xe2\x80\x94 name AAAA\n",
            b"text\n\n\xe2\x80\x94 name !!!!\n",
            b"text\n\n\xe2\x80\x94 na+me AAAAAAAA\n",
            b"text\r\n\n\xe2\x80\x94 name AAAAAAAA\n",
            b"text\n\n\xe2\x80\x94 name AAAAAAAA",
            b"\xff\n\n\xe2\x80\x94 name AAAAAAAA\n",
        ];
        for c in cases {
            assert!(Note::parse(c).is_err(), "{:?}", String::from_utf8_lossy(c));
        }
        assert!(matches!(
            Note::parse(&vec![b'a'; MAX_NOTE_BYTES + 1]),
            Err(NoteError::TooLarge(_))
        ));
        let many = format!(
            "t\n\n{}",
            "\u{2014} n AAAAAAAA\n".repeat(MAX_SIGNATURES + 1)
        );
        assert_eq!(
            Note::parse(many.as_bytes()),
            Err(NoteError::TooManySignatures)
        );
        for vkey in [
            "",
            "a+b",
            "example.com/foo+530d903b+AekyeRrm56hApGFkyQR4ZCbV54Id2LKaANYcrnKv3U2k",
            "example.com/foo+530D903A+AekyeRrm56hApGFkyQR4ZCbV54Id2LKaANYcrnKv3U2k",
            "example.com/foo+530d903a+BekyeRrm56hApGFkyQR4ZCbV54Id2LKaANYcrnKv3U2k",
            "example.com/foo+530d903a+AekyeRrm56hApGFkyQR4ZCbV54Id2LKaANYcrnKv3U2k+x",
        ] {
            assert!(NoteVerifier::from_vkey(vkey).is_err(), "{vkey}");
        }
        assert!(NoteSigner::new("has space", &[0; 32]).is_err());
        let s = NoteSigner::new("ok", &[0; 32]).unwrap();
        assert!(s.sign("no newline").is_err());
        assert!(s.sign("tab\there\n").is_err());
    }
}
