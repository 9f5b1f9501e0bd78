//! RFC 9162 (Certificate Transparency v2, §2.1) Merkle tree hashing and proofs over SHA-256.
//!
//! Leaves are hashed as `SHA-256(0x00 || data)` and interior nodes as
//! `SHA-256(0x01 || left || right)`; the tree over `n` leaves splits at the largest power of two
//! below `n`. This crate owns the hashing, the tree head, and inclusion and consistency proofs
//! ([`verify_inclusion`], [`verify_consistency`], and [`prove_inclusion`] /
//! [`prove_consistency`] over any [`SubtreeSource`], such as [`MemoryTree`] or a log's tiles).
//! [`CompactRange`] is the O(log n) right edge a sequencer keeps in memory. Storage,
//! checkpoints and the log service live in `vouch-log`. The execution trace of `vouch-engine` uses the same tree so
//! that a disputed node can be proven in a trace with an ordinary inclusion proof.

#![warn(missing_docs)]

use sha2::{Digest, Sha256};

mod proof;
mod subtree;

pub use proof::{
    MAX_PROOF_HASHES, ProofError, ProveError, consistency_proof_len, inclusion_proof_len,
    prove_consistency, prove_inclusion, root_from_inclusion_proof, verify_consistency,
    verify_inclusion,
};
pub use subtree::{CompactRange, MemoryTree, MissingSubtree, PeakCountMismatch, SubtreeSource};

/// A 32-byte SHA-256 output.
pub type Hash = [u8; 32];

/// `SHA-256(0x00 || data)`: the hash of a leaf.
pub fn leaf_hash(data: &[u8]) -> Hash {
    let mut h = Sha256::new();
    h.update([0u8]);
    h.update(data);
    h.finalize().into()
}

/// `SHA-256(0x01 || left || right)`: the hash of an interior node.
pub fn node_hash(left: &Hash, right: &Hash) -> Hash {
    let mut h = Sha256::new();
    h.update([1u8]);
    h.update(left);
    h.update(right);
    h.finalize().into()
}

/// The hash of the empty tree, `SHA-256("")`.
pub fn empty_root() -> Hash {
    Sha256::digest([]).into()
}

/// The Merkle tree hash (RFC 9162 `MTH`) of a list of leaf hashes, in O(n) time and O(log n)
/// memory.
pub fn root_from_leaf_hashes(leaves: &[Hash]) -> Hash {
    // Fold left to right keeping a stack of complete subtrees, like a log appending leaves; the
    // remaining stack is then merged right to left, which yields RFC 9162's split at the
    // largest power of two.
    let mut stack: Vec<(Hash, u32)> = Vec::new();
    for leaf in leaves {
        let mut node = (*leaf, 0u32);
        while let Some(&(top, height)) = stack.last() {
            if height != node.1 {
                break;
            }
            stack.pop();
            node = (node_hash(&top, &node.0), height + 1);
        }
        stack.push(node);
    }
    let mut iter = stack.into_iter().rev();
    let Some((mut acc, _)) = iter.next() else {
        return empty_root();
    };
    for (left, _) in iter {
        acc = node_hash(&left, &acc);
    }
    acc
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The recursive definition of RFC 9162 §2.1.1, as the reference for the iterative one.
    fn mth(leaves: &[Hash]) -> Hash {
        match leaves.len() {
            0 => empty_root(),
            1 => leaves[0],
            n => {
                let k = n.next_power_of_two() / 2;
                node_hash(&mth(&leaves[..k]), &mth(&leaves[k..]))
            }
        }
    }

    #[test]
    fn matches_the_recursive_definition() {
        let leaves: Vec<Hash> = (0..70u32).map(|i| leaf_hash(&i.to_le_bytes())).collect();
        for n in 0..leaves.len() {
            assert_eq!(
                root_from_leaf_hashes(&leaves[..n]),
                mth(&leaves[..n]),
                "size {n}"
            );
        }
    }

    #[test]
    fn certificate_transparency_vectors() {
        // google/certificate-transparency cpp/merkletree/merkle_tree_test.cc (Apache-2.0):
        // the eight classic leaves and the root of the first 8.
        let inputs: [&str; 8] = [
            "",
            "00",
            "10",
            "2021",
            "3031",
            "40414243",
            "5051525354555657",
            "606162636465666768696a6b6c6d6e6f",
        ];
        let leaves: Vec<Hash> = inputs.iter().map(|h| leaf_hash(&decode_hex(h))).collect();
        assert_eq!(
            hex(&root_from_leaf_hashes(&leaves)),
            "5dc9da79a70659a9ad559cb701ded9a2ab9d823aad2f4960cfe370eff4604328"
        );
        assert_eq!(
            hex(&root_from_leaf_hashes(&leaves[..1])),
            "6e340b9cffb37a989ca544e6bb780a2c78901d3fb33738768511a30617afa01d"
        );
        assert_eq!(
            hex(&empty_root()),
            "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"
        );
    }

    fn decode_hex(s: &str) -> Vec<u8> {
        (0..s.len())
            .step_by(2)
            .map(|i| u8::from_str_radix(&s[i..i + 2], 16).unwrap())
            .collect()
    }

    fn hex(h: &Hash) -> String {
        h.iter().map(|b| format!("{b:02x}")).collect()
    }
}
