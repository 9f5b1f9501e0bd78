//! Where proof generation gets its hashes: any store that can give the hash of a complete
//! subtree, such as the in-memory [`MemoryTree`] or a log's tiles.

use crate::proof::split_point;
use crate::{Hash, empty_root, leaf_hash, node_hash};

/// A source of Merkle tree hashes for proof generation.
///
/// A *complete subtree* at `level` `l` and `index` `i` is the subtree over leaves
/// `[i * 2^l, (i + 1) * 2^l)`; level 0 holds the leaf hashes. Implementors give those; the
/// hash of any aligned leaf range follows from them.
pub trait SubtreeSource {
    /// The error a failed read reports (a missing tile, an I/O error).
    type Error: std::error::Error + 'static;

    /// The hash of the complete subtree at `level`, `index`.
    ///
    /// Callers only ask for subtrees that lie wholly inside the tree they are proving.
    fn subtree_hash(&self, level: u8, index: u64) -> Result<Hash, Self::Error>;

    /// The Merkle tree hash `MTH(D[start:end])` of the leaf range `[start, end)`.
    ///
    /// Proof generation only asks for ranges where `start` is a multiple of the smallest power
    /// of two ≥ `end - start` (a complete subtree, or one cut off by the tree's right edge).
    /// The default builds it from at most 64 complete subtrees.
    fn range_hash(&self, start: u64, end: u64) -> Result<Hash, Self::Error> {
        let n = end.saturating_sub(start);
        if n == 0 {
            return Ok(empty_root());
        }
        if n.is_power_of_two() && start.is_multiple_of(n) {
            let level = n.trailing_zeros() as u8;
            return self.subtree_hash(level, start >> level);
        }
        // The left part is complete; only the right part can be ragged.
        let k = split_point(n);
        let left = self.range_hash(start, start + k)?;
        let right = self.range_hash(start + k, end)?;
        Ok(node_hash(&left, &right))
    }
}

/// The error an in-memory tree reports: a subtree it does not hold.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("no complete subtree at level {level}, index {index} in a tree of {size} leaves")]
pub struct MissingSubtree {
    /// The level asked for.
    pub level: u8,
    /// The index asked for.
    pub index: u64,
    /// How many leaves the tree holds.
    pub size: u64,
}

/// An in-memory tree that keeps every complete subtree hash (about two hashes per leaf), for
/// tests, small trees and execution traces.
#[derive(Debug, Clone, Default)]
pub struct MemoryTree {
    // levels[l][i] is the complete subtree at level l, index i.
    levels: Vec<Vec<Hash>>,
}

impl MemoryTree {
    /// An empty tree.
    pub fn new() -> Self {
        Self::default()
    }

    /// A tree over the given leaf data, hashed with [`leaf_hash`].
    pub fn from_leaves<I: IntoIterator<Item = D>, D: AsRef<[u8]>>(leaves: I) -> Self {
        let mut t = Self::new();
        for l in leaves {
            t.push_leaf_hash(leaf_hash(l.as_ref()));
        }
        t
    }

    /// Appends a leaf given by its hash, completing any subtrees it closes.
    pub fn push_leaf_hash(&mut self, hash: Hash) {
        let mut level = 0;
        let mut node = hash;
        loop {
            if self.levels.len() == level {
                self.levels.push(Vec::new());
            }
            self.levels[level].push(node);
            let row = &self.levels[level];
            if !row.len().is_multiple_of(2) {
                break;
            }
            node = node_hash(&row[row.len() - 2], &row[row.len() - 1]);
            level += 1;
        }
    }

    /// Appends a leaf given by its data.
    pub fn push(&mut self, data: &[u8]) {
        self.push_leaf_hash(leaf_hash(data));
    }

    /// How many leaves the tree holds.
    pub fn size(&self) -> u64 {
        self.levels.first().map_or(0, |l| l.len() as u64)
    }

    /// The root of the tree over the first `size` leaves, or `None` if `size` is too large.
    pub fn root_at(&self, size: u64) -> Option<Hash> {
        if size > self.size() {
            return None;
        }
        self.range_hash(0, size).ok()
    }

    /// The root of the whole tree.
    pub fn root(&self) -> Hash {
        self.root_at(self.size())
            .expect("the whole tree is always within itself")
    }
}

impl SubtreeSource for MemoryTree {
    type Error = MissingSubtree;

    fn subtree_hash(&self, level: u8, index: u64) -> Result<Hash, MissingSubtree> {
        let missing = MissingSubtree {
            level,
            index,
            size: self.size(),
        };
        let row = self.levels.get(usize::from(level)).ok_or(missing.clone())?;
        usize::try_from(index)
            .ok()
            .and_then(|i| row.get(i))
            .copied()
            .ok_or(missing)
    }
}

/// The right edge of a growing tree: the roots of the complete subtrees that the binary
/// decomposition of its size gives, at most 64 hashes. Enough to append and to compute the
/// root, which is all a sequencer needs in memory.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct CompactRange {
    size: u64,
    // Largest (leftmost) subtree first.
    peaks: Vec<Hash>,
}

/// A compact range was given peaks that do not fit its size.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("a tree of size {size} has {expected} peaks, got {got}")]
pub struct PeakCountMismatch {
    /// The size given.
    pub size: u64,
    /// `size.count_ones()`.
    pub expected: usize,
    /// How many peaks were given.
    pub got: usize,
}

impl CompactRange {
    /// The empty tree's edge.
    pub fn new() -> Self {
        Self::default()
    }

    /// Rebuilds the edge of a tree of `size` leaves from its peaks, largest first (e.g. read
    /// back from storage). There must be exactly `size.count_ones()` of them.
    pub fn from_peaks(size: u64, peaks: Vec<Hash>) -> Result<Self, PeakCountMismatch> {
        let expected = size.count_ones() as usize;
        if peaks.len() != expected {
            return Err(PeakCountMismatch {
                size,
                expected,
                got: peaks.len(),
            });
        }
        Ok(Self { size, peaks })
    }

    /// The complete subtrees `(level, index)` whose hashes are the peaks of a tree of `size`
    /// leaves, largest first.
    pub fn peak_positions(size: u64) -> Vec<(u8, u64)> {
        let mut out = Vec::with_capacity(size.count_ones() as usize);
        let mut start = 0u64;
        for level in (0..64u8).rev() {
            if size & (1u64 << level) != 0 {
                out.push((level, start >> level));
                start += 1u64 << level;
            }
        }
        out
    }

    /// Appends one leaf hash. Panics only if the tree already holds `u64::MAX` leaves.
    pub fn push(&mut self, leaf: Hash) {
        let mut node = leaf;
        // Each trailing one bit of the old size is a peak that the new leaf completes.
        let mut merges = self.size.trailing_ones();
        while merges > 0 {
            let left = self.peaks.pop().expect("size bits and peaks agree");
            node = node_hash(&left, &node);
            merges -= 1;
        }
        self.peaks.push(node);
        self.size = self.size.checked_add(1).expect("tree size overflow");
    }

    /// How many leaves the tree holds.
    pub fn size(&self) -> u64 {
        self.size
    }

    /// The peaks, largest subtree first.
    pub fn peaks(&self) -> &[Hash] {
        &self.peaks
    }

    /// The tree's root hash (RFC 9162 `MTH`).
    pub fn root(&self) -> Hash {
        let mut iter = self.peaks.iter().rev();
        let Some(mut acc) = iter.next().copied() else {
            return empty_root();
        };
        for left in iter {
            acc = node_hash(left, &acc);
        }
        acc
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::root_from_leaf_hashes;

    #[test]
    fn memory_tree_and_compact_range_agree_with_the_reference() {
        let leaves: Vec<Hash> = (0..300u32).map(|i| leaf_hash(&i.to_be_bytes())).collect();
        let mut t = MemoryTree::new();
        let mut c = CompactRange::new();
        for (i, l) in leaves.iter().enumerate() {
            t.push_leaf_hash(*l);
            c.push(*l);
            let want = root_from_leaf_hashes(&leaves[..=i]);
            assert_eq!(t.root(), want);
            assert_eq!(c.root(), want);
            let n = i as u64 + 1;
            let peaks: Vec<Hash> = CompactRange::peak_positions(n)
                .into_iter()
                .map(|(l, i)| t.subtree_hash(l, i).unwrap())
                .collect();
            assert_eq!(CompactRange::from_peaks(n, peaks).unwrap(), c);
        }
        for n in 0..300u64 {
            assert_eq!(
                t.root_at(n).unwrap(),
                root_from_leaf_hashes(&leaves[..n as usize])
            );
        }
        assert!(t.root_at(301).is_none());
        assert!(t.subtree_hash(9, 0).is_err());
        assert!(t.subtree_hash(0, u64::MAX).is_err());
    }
}
