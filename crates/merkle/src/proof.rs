//! RFC 9162 §2.1.3 inclusion and §2.1.4 consistency proofs: generation from any
//! [`SubtreeSource`] and verification of untrusted proofs.
//!
//! Verification never panics and never allocates in proportion to its input beyond the proof
//! slice it is given: sizes and indices may be any `u64`, proofs any length.

use crate::subtree::SubtreeSource;
use crate::{Hash, node_hash};

/// The longest proof that any tree of up to `u64::MAX` leaves can need.
///
/// An inclusion proof has at most one hash per level (64); a consistency proof at most two per
/// level boundary but never more than 64 for trees below 2^64 leaves plus the seed.
pub const MAX_PROOF_HASHES: usize = 65;

/// Why a proof was refused or could not be generated.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ProofError {
    /// Inclusion in the empty tree is meaningless: it has no leaves.
    #[error("the tree is empty (size 0): it includes no leaf")]
    EmptyTree,
    /// The leaf index is not below the tree size.
    #[error("leaf index {index} is not below the tree size {size}")]
    IndexOutOfRange {
        /// The index asked about.
        index: u64,
        /// The size of the tree.
        size: u64,
    },
    /// A consistency proof was asked from a larger tree to a smaller one.
    #[error("old size {old} is larger than new size {new}")]
    SizesReversed {
        /// The first (older) size.
        old: u64,
        /// The second (newer) size.
        new: u64,
    },
    /// RFC 9162 defines no consistency proof from the empty tree: the empty tree is consistent
    /// with every tree, so a caller must handle size 0 itself.
    #[error("consistency from the empty tree is meaningless; handle old size 0 before asking")]
    ConsistencyFromEmpty,
    /// The proof does not have the number of hashes that the index and sizes demand.
    #[error("proof has {got} hashes, the sizes demand {expected}")]
    WrongLength {
        /// How many hashes the sizes demand.
        expected: usize,
        /// How many hashes the proof has.
        got: usize,
    },
    /// The proof recomputes a different root than the one it was checked against.
    #[error("proof recomputes root {computed}, expected {expected}", computed = hex(computed), expected = hex(expected))]
    RootMismatch {
        /// The root recomputed from the proof.
        computed: Hash,
        /// The root it should have matched.
        expected: Hash,
    },
    /// The proof recomputes a different old root than the one it was checked against.
    #[error("proof recomputes old root {computed}, expected {expected}", computed = hex(computed), expected = hex(expected))]
    OldRootMismatch {
        /// The old root recomputed from the proof.
        computed: Hash,
        /// The old root it should have matched.
        expected: Hash,
    },
    /// Two trees of the same size have different roots: one of them is a fork.
    #[error("same size {size}, different roots {a} and {b}", a = hex(a), b = hex(b))]
    SameSizeDifferentRoots {
        /// The size of both trees.
        size: u64,
        /// The first root.
        a: Hash,
        /// The second root.
        b: Hash,
    },
}

/// Why a proof could not be generated: a bad request, or the source failed.
#[derive(Debug, thiserror::Error)]
pub enum ProveError<E: std::error::Error + 'static> {
    /// The index or sizes asked for are not a valid request.
    #[error(transparent)]
    Invalid(#[from] ProofError),
    /// The source of subtree hashes failed (e.g. a tile could not be read).
    #[error("reading subtree hashes: {0}")]
    Source(#[source] E),
}

fn hex(h: &Hash) -> String {
    h.iter().map(|b| format!("{b:02x}")).collect()
}

/// The largest power of two strictly below `n` (RFC 9162's split point); `n` must be ≥ 2.
pub(crate) fn split_point(n: u64) -> u64 {
    debug_assert!(n >= 2);
    1u64 << (63 - (n - 1).leading_zeros())
}

/// How many hashes an inclusion proof for `index` in a tree of `size` leaves has.
///
/// Requires `index < size`. The proof climbs `inner` levels where the paths to `index` and to
/// the last leaf differ, then one hash per set bit above them (the left siblings on the border).
pub fn inclusion_proof_len(index: u64, size: u64) -> usize {
    let inner = 64 - (index ^ (size - 1)).leading_zeros();
    let border = if inner >= 64 {
        0
    } else {
        (index >> inner).count_ones()
    };
    (inner + border) as usize
}

/// How many hashes a consistency proof from `old` to `new` has; requires `0 < old < new`.
pub fn consistency_proof_len(old: u64, new: u64) -> usize {
    let shift = old.trailing_zeros();
    let inner = 64 - ((old - 1) ^ (new - 1)).leading_zeros();
    let border = if inner >= 64 {
        0
    } else {
        ((old - 1) >> inner).count_ones()
    };
    // When `old` is a power of two its root is a node of the new tree and is not sent.
    let seed = usize::from(!old.is_power_of_two());
    seed + (inner - shift + border) as usize
}

/// Recomputes the root of a tree of `size` leaves from the hash of leaf `index` and its
/// inclusion proof (RFC 9162 §2.1.3.2).
pub fn root_from_inclusion_proof(
    index: u64,
    size: u64,
    leaf_hash: &Hash,
    proof: &[Hash],
) -> Result<Hash, ProofError> {
    if size == 0 {
        return Err(ProofError::EmptyTree);
    }
    if index >= size {
        return Err(ProofError::IndexOutOfRange { index, size });
    }
    let expected = inclusion_proof_len(index, size);
    if proof.len() != expected {
        return Err(ProofError::WrongLength {
            expected,
            got: proof.len(),
        });
    }
    let (mut fnode, mut snode) = (index, size - 1);
    let mut r = *leaf_hash;
    for p in proof {
        // The length check above already guarantees this; kept so no input can walk past the root.
        if snode == 0 {
            return Err(ProofError::WrongLength {
                expected,
                got: proof.len(),
            });
        }
        if fnode & 1 == 1 || fnode == snode {
            r = node_hash(p, &r);
            while fnode & 1 == 0 && fnode != 0 {
                fnode >>= 1;
                snode >>= 1;
            }
        } else {
            r = node_hash(&r, p);
        }
        fnode >>= 1;
        snode >>= 1;
    }
    Ok(r)
}

/// Checks that leaf `index` with hash `leaf_hash` is in the tree of `size` leaves with `root`.
pub fn verify_inclusion(
    index: u64,
    size: u64,
    leaf_hash: &Hash,
    proof: &[Hash],
    root: &Hash,
) -> Result<(), ProofError> {
    let computed = root_from_inclusion_proof(index, size, leaf_hash, proof)?;
    if &computed != root {
        return Err(ProofError::RootMismatch {
            computed,
            expected: *root,
        });
    }
    Ok(())
}

/// Checks that the tree of `old_size` leaves with `old_root` is a prefix of the tree of
/// `new_size` leaves with `new_root` (RFC 9162 §2.1.4.2).
///
/// Equal sizes need an empty proof and equal roots. `old_size == 0` is refused with
/// [`ProofError::ConsistencyFromEmpty`]: callers such as a witness treat it before calling.
pub fn verify_consistency(
    old_size: u64,
    new_size: u64,
    proof: &[Hash],
    old_root: &Hash,
    new_root: &Hash,
) -> Result<(), ProofError> {
    if old_size > new_size {
        return Err(ProofError::SizesReversed {
            old: old_size,
            new: new_size,
        });
    }
    if old_size == 0 {
        return Err(ProofError::ConsistencyFromEmpty);
    }
    if old_size == new_size {
        if !proof.is_empty() {
            return Err(ProofError::WrongLength {
                expected: 0,
                got: proof.len(),
            });
        }
        if old_root != new_root {
            return Err(ProofError::SameSizeDifferentRoots {
                size: old_size,
                a: *old_root,
                b: *new_root,
            });
        }
        return Ok(());
    }
    let expected = consistency_proof_len(old_size, new_size);
    if proof.len() != expected {
        return Err(ProofError::WrongLength {
            expected,
            got: proof.len(),
        });
    }
    // RFC 9162 §2.1.4.2: when the old size is a power of two its root is the seed.
    let (seed, rest) = if old_size.is_power_of_two() {
        (*old_root, proof)
    } else {
        (proof[0], &proof[1..])
    };
    let (mut fnode, mut snode) = (old_size - 1, new_size - 1);
    while fnode & 1 == 1 {
        fnode >>= 1;
        snode >>= 1;
    }
    let (mut fr, mut sr) = (seed, seed);
    for c in rest {
        if snode == 0 {
            return Err(ProofError::WrongLength {
                expected,
                got: proof.len(),
            });
        }
        if fnode & 1 == 1 || fnode == snode {
            fr = node_hash(c, &fr);
            sr = node_hash(c, &sr);
            while fnode & 1 == 0 && fnode != 0 {
                fnode >>= 1;
                snode >>= 1;
            }
        } else {
            sr = node_hash(&sr, c);
        }
        fnode >>= 1;
        snode >>= 1;
    }
    if &fr != old_root {
        return Err(ProofError::OldRootMismatch {
            computed: fr,
            expected: *old_root,
        });
    }
    if &sr != new_root {
        return Err(ProofError::RootMismatch {
            computed: sr,
            expected: *new_root,
        });
    }
    Ok(())
}

/// Generates the inclusion proof for leaf `index` in the tree of the first `size` leaves of
/// `source` (RFC 9162 §2.1.3.1), leaf's sibling first.
pub fn prove_inclusion<S: SubtreeSource + ?Sized>(
    source: &S,
    index: u64,
    size: u64,
) -> Result<Vec<Hash>, ProveError<S::Error>> {
    if size == 0 {
        return Err(ProofError::EmptyTree.into());
    }
    if index >= size {
        return Err(ProofError::IndexOutOfRange { index, size }.into());
    }
    let mut proof = Vec::with_capacity(inclusion_proof_len(index, size));
    // Walk down from the root, collecting the sibling of each subtree on the path; the proof
    // lists them from the bottom up, so reverse at the end.
    let (mut start, mut end) = (0u64, size);
    while end - start > 1 {
        let k = split_point(end - start);
        if index < start + k {
            proof.push(
                source
                    .range_hash(start + k, end)
                    .map_err(ProveError::Source)?,
            );
            end = start + k;
        } else {
            proof.push(
                source
                    .range_hash(start, start + k)
                    .map_err(ProveError::Source)?,
            );
            start += k;
        }
    }
    proof.reverse();
    Ok(proof)
}

/// Generates the consistency proof from the tree of `old_size` leaves to the tree of
/// `new_size` leaves of `source` (RFC 9162 §2.1.4.1).
///
/// Equal sizes give an empty proof; `old_size == 0` is refused like in
/// [`verify_consistency`].
pub fn prove_consistency<S: SubtreeSource + ?Sized>(
    source: &S,
    old_size: u64,
    new_size: u64,
) -> Result<Vec<Hash>, ProveError<S::Error>> {
    if old_size > new_size {
        return Err(ProofError::SizesReversed {
            old: old_size,
            new: new_size,
        }
        .into());
    }
    if old_size == 0 {
        return Err(ProofError::ConsistencyFromEmpty.into());
    }
    if old_size == new_size {
        return Ok(Vec::new());
    }
    let mut proof = Vec::with_capacity(consistency_proof_len(old_size, new_size));
    // SUBPROOF(m, D[start:end], b), unrolled: descend towards the old tree's right edge.
    let (mut m, mut start, mut end, mut whole) = (old_size, 0u64, new_size, true);
    loop {
        let n = end - start;
        if m == n {
            if !whole {
                proof.push(source.range_hash(start, end).map_err(ProveError::Source)?);
            }
            break;
        }
        let k = split_point(n);
        if m <= k {
            proof.push(
                source
                    .range_hash(start + k, end)
                    .map_err(ProveError::Source)?,
            );
            end = start + k;
        } else {
            proof.push(
                source
                    .range_hash(start, start + k)
                    .map_err(ProveError::Source)?,
            );
            m -= k;
            start += k;
            whole = false;
        }
    }
    proof.reverse();
    Ok(proof)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn split_points() {
        assert_eq!(split_point(2), 1);
        assert_eq!(split_point(3), 2);
        assert_eq!(split_point(4), 2);
        assert_eq!(split_point(5), 4);
        assert_eq!(split_point(u64::MAX), 1 << 63);
    }

    #[test]
    fn extreme_inputs_do_not_panic() {
        let h = [7u8; 32];
        let long = vec![h; 200];
        for &(i, n) in &[
            (0, 0),
            (u64::MAX, u64::MAX),
            (u64::MAX - 1, u64::MAX),
            (0, u64::MAX),
            (1 << 63, u64::MAX),
            (u64::MAX, 1),
        ] {
            for proof in [&[][..], &long[..64], &long[..]] {
                let _ = verify_inclusion(i, n, &h, proof, &h);
                let _ = verify_consistency(i, n, proof, &h, &h);
                let _ = verify_consistency(n, i, proof, &h, &h);
            }
        }
        assert_eq!(inclusion_proof_len(u64::MAX - 1, u64::MAX), 63);
        assert_eq!(inclusion_proof_len(0, u64::MAX), 64);
        assert!(consistency_proof_len(1, u64::MAX) <= MAX_PROOF_HASHES);
        assert!(consistency_proof_len(u64::MAX - 1, u64::MAX) <= MAX_PROOF_HASHES);
    }
}
