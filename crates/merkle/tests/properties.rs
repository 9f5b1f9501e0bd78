//! Property tests: every generated proof verifies, and every mutation of a proof, its index,
//! its sizes or its roots is rejected.

use proptest::prelude::*;
use vouch_merkle::{
    Hash, MemoryTree, ProofError, consistency_proof_len, inclusion_proof_len, prove_consistency,
    prove_inclusion, verify_consistency, verify_inclusion,
};

fn tree(n: u64) -> MemoryTree {
    MemoryTree::from_leaves((0..n).map(|i| i.to_le_bytes()))
}

/// Exhaustive up to a bound: every index in every size, every pair of sizes.
#[test]
fn every_proof_up_to_64_leaves_verifies() {
    // One spare leaf so that "the next size" has a root to pair a wrong size with.
    let t = tree(65);
    for size in 1..=64u64 {
        let root = t.root_at(size).unwrap();
        for index in 0..size {
            let proof = prove_inclusion(&t, index, size).unwrap();
            assert_eq!(proof.len(), inclusion_proof_len(index, size));
            let leaf = vouch_merkle::leaf_hash(&index.to_le_bytes());
            verify_inclusion(index, size, &leaf, &proof, &root).unwrap();
            // A wrong index is rejected. A wrong size is rejected together with the root of that
            // size (a verifier takes both from one checkpoint): the bare shape of a path can
            // fit several sizes, e.g. index 0 in sizes 3 and 4.
            if index + 1 < size {
                assert!(verify_inclusion(index + 1, size, &leaf, &proof, &root).is_err());
            }
            let next_root = t.root_at(size + 1).unwrap();
            assert!(verify_inclusion(index, size + 1, &leaf, &proof, &next_root).is_err());
        }
        for old in 1..=size {
            let proof = prove_consistency(&t, old, size).unwrap();
            if old < size {
                assert_eq!(proof.len(), consistency_proof_len(old, size));
            }
            let old_root = t.root_at(old).unwrap();
            verify_consistency(old, size, &proof, &old_root, &root).unwrap();
            if old < size {
                let next_root = t.root_at(size + 1).unwrap();
                assert!(verify_consistency(old, size + 1, &proof, &old_root, &next_root).is_err());
                let next_old = t.root_at(old + 1).unwrap();
                assert!(verify_consistency(old + 1, size, &proof, &next_old, &root).is_err());
                assert!(verify_consistency(old, size, &proof, &root, &root).is_err());
            }
        }
    }
}

fn flip(proof: &mut [Hash], bit: usize) {
    let n = proof.len() * 256;
    let bit = bit % n;
    proof[bit / 256][(bit % 256) / 8] ^= 1 << (bit % 8);
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(256))]

    #[test]
    fn inclusion_round_trip_and_tamper(size in 1u64..3000, index_seed: u64, bit: usize, other_seed: u64) {
        let other = other_seed % (size + 2);
        let t = tree(size + 1);
        let index = index_seed % size;
        let root = t.root_at(size).unwrap();
        let leaf = vouch_merkle::leaf_hash(&index.to_le_bytes());
        let proof = prove_inclusion(&t, index, size).unwrap();
        prop_assert!(verify_inclusion(index, size, &leaf, &proof, &root).is_ok());
        if !proof.is_empty() {
            let mut bad = proof.clone();
            flip(&mut bad, bit);
            prop_assert!(verify_inclusion(index, size, &leaf, &bad, &root).is_err());
            let mut short = proof.clone();
            short.pop();
            prop_assert!(verify_inclusion(index, size, &leaf, &short, &root).is_err());
        }
        let mut bad_leaf = leaf;
        bad_leaf[bit % 32] ^= 1 << (bit % 8);
        prop_assert!(verify_inclusion(index, size, &bad_leaf, &proof, &root).is_err());
        let mut long = proof.clone();
        long.push(root);
        prop_assert!(verify_inclusion(index, size, &leaf, &long, &root).is_err());
        if other != index {
            prop_assert!(verify_inclusion(other, size, &leaf, &proof, &root).is_err());
        }
        if other != size && other <= t.size() {
            let other_root = t.root_at(other).unwrap();
            prop_assert!(verify_inclusion(index, other, &leaf, &proof, &other_root).is_err());
        }
    }

    #[test]
    fn consistency_round_trip_and_tamper(new in 2u64..3000, old_seed: u64, bit: usize, other: u64) {
        let t = tree(new + 1);
        let old = 1 + old_seed % (new - 1);
        let (r1, r2) = (t.root_at(old).unwrap(), t.root_at(new).unwrap());
        let proof = prove_consistency(&t, old, new).unwrap();
        prop_assert!(verify_consistency(old, new, &proof, &r1, &r2).is_ok());
        let mut bad = proof.clone();
        flip(&mut bad, bit);
        prop_assert!(verify_consistency(old, new, &bad, &r1, &r2).is_err());
        let mut bad_r1 = r1;
        bad_r1[bit % 32] ^= 1;
        prop_assert!(verify_consistency(old, new, &proof, &bad_r1, &r2).is_err());
        let mut bad_r2 = r2;
        bad_r2[bit % 32] ^= 1;
        prop_assert!(verify_consistency(old, new, &proof, &r1, &bad_r2).is_err());
        let other = other % (new + 2);
        if other != old {
            let other_root = t.root_at(other).unwrap_or([0; 32]);
            prop_assert!(verify_consistency(other, new, &proof, &other_root, &r2).is_err());
        }
        if other != new {
            let other_root = t.root_at(other).unwrap_or([0; 32]);
            prop_assert!(verify_consistency(old, other, &proof, &r1, &other_root).is_err());
        }
    }

    #[test]
    fn arbitrary_inputs_never_panic(index: u64, size: u64, n in 0usize..80, seed: u8) {
        let proof: Vec<Hash> = (0..n).map(|i| [seed.wrapping_add(i as u8); 32]).collect();
        let h = [seed; 32];
        let _ = verify_inclusion(index, size, &h, &proof, &h);
        let _ = verify_consistency(index, size, &proof, &h, &h);
    }
}

#[test]
fn clear_errors() {
    let t = tree(10);
    let h = [0u8; 32];
    assert_eq!(
        verify_inclusion(0, 0, &h, &[], &h),
        Err(ProofError::EmptyTree)
    );
    assert_eq!(
        verify_inclusion(u64::MAX, 10, &h, &[], &h),
        Err(ProofError::IndexOutOfRange {
            index: u64::MAX,
            size: 10
        })
    );
    assert!(matches!(
        verify_inclusion(3, 10, &h, &[h], &h),
        Err(ProofError::WrongLength {
            expected: 4,
            got: 1
        })
    ));
    assert_eq!(
        verify_consistency(5, 4, &[], &h, &h),
        Err(ProofError::SizesReversed { old: 5, new: 4 })
    );
    assert_eq!(
        verify_consistency(0, 4, &[], &h, &h),
        Err(ProofError::ConsistencyFromEmpty)
    );
    assert!(matches!(
        verify_consistency(4, 4, &[], &h, &[1; 32]),
        Err(ProofError::SameSizeDifferentRoots { size: 4, .. })
    ));
    assert!(prove_inclusion(&t, 10, 10).is_err());
    assert!(prove_inclusion(&t, 0, 11).is_err());
    assert!(prove_consistency(&t, 0, 5).is_err());
    assert!(prove_consistency(&t, 5, 11).is_err());
}
