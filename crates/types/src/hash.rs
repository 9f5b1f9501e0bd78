//! Domain-separated SHA-256: every hash Vouch computes says what it is a hash of.

use sha2::{Digest as _, Sha256};

/// A 32-byte SHA-256 output.
pub type Digest32 = [u8; 32];

/// The domain tags, one per kind of hashed object. Changing what is hashed means a new tag.
pub mod domain {
    /// A single tensor's canonical encoding.
    pub const TENSOR: &str = "vouch/tensor/v1";
    /// A named set of tensor commitments (a model's inputs, or its outputs).
    pub const TENSOR_SET: &str = "vouch/tensor-set/v1";
    /// One node of an execution trace.
    pub const TRACE_NODE: &str = "vouch/trace-node/v1";
}

/// A hasher whose input starts with `tag || 0x00`; tags are ASCII without NUL, so two
/// different tags can never produce the same prefix.
#[derive(Clone)]
pub struct TaggedHasher(Sha256);

impl TaggedHasher {
    /// Starts a hash in the given domain.
    pub fn new(tag: &str) -> Self {
        debug_assert!(
            !tag.as_bytes().contains(&0),
            "domain tags never contain NUL"
        );
        let mut h = Sha256::new();
        h.update(tag.as_bytes());
        h.update([0u8]);
        TaggedHasher(h)
    }

    /// Feeds bytes.
    pub fn update(&mut self, bytes: &[u8]) -> &mut Self {
        self.0.update(bytes);
        self
    }

    /// Feeds a little-endian u32.
    pub fn update_u32(&mut self, v: u32) -> &mut Self {
        self.update(&v.to_le_bytes())
    }

    /// Feeds a little-endian u64.
    pub fn update_u64(&mut self, v: u64) -> &mut Self {
        self.update(&v.to_le_bytes())
    }

    /// Feeds a length-prefixed (u32 LE) byte string.
    pub fn update_prefixed(&mut self, bytes: &[u8]) -> &mut Self {
        let len = u32::try_from(bytes.len()).expect("callers bound lengths below 4 GiB");
        self.update_u32(len).update(bytes)
    }

    /// Finishes the hash.
    pub fn finish(self) -> Digest32 {
        self.0.finalize().into()
    }
}

/// `SHA-256(tag || 0x00 || msg)`.
pub fn tagged_hash(tag: &str, msg: &[u8]) -> Digest32 {
    let mut h = TaggedHasher::new(tag);
    h.update(msg);
    h.finish()
}

/// Plain SHA-256 over data given in pieces (a model file streamed from disk or the network).
#[derive(Clone, Default)]
pub struct Sha256Stream(Sha256);

impl Sha256Stream {
    /// Feeds bytes.
    pub fn update(&mut self, bytes: &[u8]) {
        self.0.update(bytes);
    }

    /// Finishes the hash.
    pub fn finish(self) -> Digest32 {
        self.0.finalize().into()
    }
}

/// Plain SHA-256, for the places where a published format (CIDs, RFC 9162) fixes the input.
pub fn sha256(msg: &[u8]) -> Digest32 {
    Sha256::digest(msg).into()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tag_is_separated_from_message() {
        // "ab" tag + "c" must differ from "a" tag + "bc": the NUL terminator sees to it.
        assert_ne!(tagged_hash("ab", b"c"), tagged_hash("a", b"bc"));
        assert_eq!(tagged_hash("a", b"bc"), sha256(b"a\0bc"));
    }
}
