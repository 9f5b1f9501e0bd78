//! The compact form every tree operator evaluates: one array of 16-byte (f32) or 24-byte (f64)
//! nodes per ensemble, trees laid out depth-first with the true child first, so a row walks
//! O(depth) nodes per tree with no allocation and no lookups.
//!
//! Building it validates the untrusted structure: every child index names a node, every leaf
//! has a weight, every tree is acyclic (so evaluation terminates), and feature ids fit.

use std::fmt::Debug;
use std::ops::{Add, Div, Neg, Sub};

use crate::error::MlResult;

/// f32 or f64, the types thresholds, weights and sums are kept in.
pub(crate) trait Float:
    Copy
    + Debug
    + PartialEq
    + PartialOrd
    + Add<Output = Self>
    + Sub<Output = Self>
    + Div<Output = Self>
    + Neg<Output = Self>
    + Send
    + Sync
    + 'static
{
    /// 0.
    const ZERO: Self;
    /// 1.
    const ONE: Self;
    /// NaN.
    const NAN: Self;
    /// Rounds an f64 to this type (exact for values that came from this type).
    fn from_f64(v: f64) -> Self;
    /// Converts an f32 exactly.
    fn from_f32(v: f32) -> Self;
    /// Rounds to f32.
    fn to_f32(self) -> f32;
    /// Widens to f64 exactly.
    fn to_f64(self) -> f64;
    /// Whether this is NaN.
    fn is_nan(self) -> bool;
}

impl Float for f32 {
    const ZERO: f32 = 0.0;
    const ONE: f32 = 1.0;
    const NAN: f32 = f32::NAN;
    fn from_f64(v: f64) -> f32 {
        v as f32
    }
    fn from_f32(v: f32) -> f32 {
        v
    }
    fn to_f32(self) -> f32 {
        self
    }
    fn to_f64(self) -> f64 {
        self as f64
    }
    fn is_nan(self) -> bool {
        f32::is_nan(self)
    }
}

impl Float for f64 {
    const ZERO: f64 = 0.0;
    const ONE: f64 = 1.0;
    const NAN: f64 = f64::NAN;
    fn from_f64(v: f64) -> f64 {
        v
    }
    fn from_f32(v: f32) -> f64 {
        v as f64
    }
    fn to_f32(self) -> f32 {
        self as f32
    }
    fn to_f64(self) -> f64 {
        self
    }
    fn is_nan(self) -> bool {
        f64::is_nan(self)
    }
}

/// Conversion of a stored value (threshold or weight) to the type a row is compared or summed
/// in: the same type, or f32 widened exactly to f64 (never narrowed).
pub(crate) trait Widen<X>: Float {
    /// The value in type `X`.
    fn widen(self) -> X;
}

impl Widen<f32> for f32 {
    #[inline(always)]
    fn widen(self) -> f32 {
        self
    }
}

impl Widen<f64> for f32 {
    #[inline(always)]
    fn widen(self) -> f64 {
        self as f64
    }
}

impl Widen<f64> for f64 {
    #[inline(always)]
    fn widen(self) -> f64 {
        self
    }
}

/// A branch node's comparison: the row's feature value `x` against the threshold `t`; true
/// takes the true branch. `Eq` also encodes set membership (a chain of `Eq` nodes).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Mode {
    /// `x <= t`
    Leq = 0,
    /// `x < t`
    Lt = 1,
    /// `x >= t`
    Gte = 2,
    /// `x > t`
    Gt = 3,
    /// `x == t`
    Eq = 4,
    /// `x != t`
    Neq = 5,
}

impl Mode {
    /// Parses the string form (`nodes_modes` of TreeEnsembleClassifier/Regressor); `None` is
    /// `LEAF`.
    pub(crate) fn parse(s: &str) -> Result<Option<Mode>, String> {
        Ok(Some(match s {
            "BRANCH_LEQ" => Mode::Leq,
            "BRANCH_LT" => Mode::Lt,
            "BRANCH_GTE" => Mode::Gte,
            "BRANCH_GT" => Mode::Gt,
            "BRANCH_EQ" => Mode::Eq,
            "BRANCH_NEQ" => Mode::Neq,
            "LEAF" => return Ok(None),
            other => {
                return Err(format!(
                    "is {other:?}; expected BRANCH_LEQ, BRANCH_LT, BRANCH_GTE, BRANCH_GT, BRANCH_EQ, BRANCH_NEQ or LEAF"
                ));
            }
        }))
    }

    fn from_bits(bits: u32) -> Mode {
        match bits {
            0 => Mode::Leq,
            1 => Mode::Lt,
            2 => Mode::Gte,
            3 => Mode::Gt,
            4 => Mode::Eq,
            _ => Mode::Neq,
        }
    }

    #[inline(always)]
    fn test<X: PartialOrd>(self, x: X, t: X) -> bool {
        match self {
            Mode::Leq => x <= t,
            Mode::Lt => x < t,
            Mode::Gte => x >= t,
            Mode::Gt => x > t,
            Mode::Eq => x == t,
            Mode::Neq => x != t,
        }
    }
}

/// A node as the parsers describe it, before validation and layout. Child references are
/// indices into the same list of source nodes.
#[derive(Clone, Debug)]
pub(crate) enum SourceNode<T> {
    /// An interior node.
    Branch {
        /// Comparison.
        mode: Mode,
        /// Feature index.
        feature: u32,
        /// Threshold.
        threshold: T,
        /// Whether a NaN feature takes the true branch.
        missing_true: bool,
        /// True child.
        on_true: usize,
        /// False child.
        on_false: usize,
    },
    /// Set membership (`BRANCH_MEMBER`): true when the feature equals one of `values`.
    Member {
        /// Feature index.
        feature: u32,
        /// The set.
        values: Vec<T>,
        /// Whether a NaN feature takes the true branch.
        missing_true: bool,
        /// True child.
        on_true: usize,
        /// False child.
        on_false: usize,
    },
    /// A leaf with its `(target, weight)` votes, in attribute order.
    Leaf(Vec<(u32, T)>),
}

/// Largest feature index a branch may test (the top 4 bits of a node's first word hold its
/// mode and missing-value flag).
pub(crate) const MAX_FEATURE: u32 = (1 << 28) - 1;
const MODE_SHIFT: u32 = 28;
const MODE_MASK: u32 = 0x7;
const LEAF_MODE: u32 = 7;
const MISSING_TRUE: u32 = 1 << 31;

/// A laid-out node. Branch: `a`/`b` are the true/false children. Leaf: `a` = `b` = its own
/// index, and with one target `value` is its (first) weight.
#[derive(Clone, Copy, Debug, PartialEq)]
struct Node<T> {
    value: T,
    /// Feature index (low 28 bits), mode (3 bits; 7 = leaf), missing-goes-true (top bit).
    word: u32,
    a: u32,
    b: u32,
}

impl<T: Float> Node<T> {
    #[inline(always)]
    fn is_leaf(&self) -> bool {
        (self.word >> MODE_SHIFT) & MODE_MASK == LEAF_MODE
    }

    #[inline(always)]
    fn feature(&self) -> usize {
        (self.word & MAX_FEATURE) as usize
    }

    #[inline(always)]
    fn mode(&self) -> Mode {
        Mode::from_bits((self.word >> MODE_SHIFT) & MODE_MASK)
    }

    #[inline(always)]
    fn missing_true(&self) -> bool {
        self.word & MISSING_TRUE != 0
    }
}

/// A validated, laid-out tree ensemble.
#[derive(Clone, Debug, PartialEq)]
pub(crate) struct Ensemble<T> {
    nodes: Vec<Node<T>>,
    /// Root of each tree, in evaluation order.
    roots: Vec<u32>,
    /// Leaf votes when there are several targets: `(target, weight)`.
    weights: Vec<(u32, T)>,
    /// With several targets, each leaf's range in `weights` as `(start, len)`, by node index.
    leaf_votes: Vec<(u32, u32)>,
    n_targets: usize,
    /// Largest feature index any reachable branch tests.
    max_feature: Option<usize>,
    /// The comparison every branch uses, when they all use one and none routes NaN to true:
    /// evaluation then takes a loop specialised to it.
    uniform: Option<Mode>,
}

/// Where a tree's walk ended, and what it contributes.
pub(crate) enum Vote<'e, T> {
    /// The single weight of a one-target ensemble.
    One(T),
    /// `(target, weight)` votes.
    Many(&'e [(u32, T)]),
}

impl<T: Float> Ensemble<T> {
    /// Lays out `source` as trees rooted at `roots` (evaluated in that order), with `n_targets`
    /// outputs. `what` names the operator for messages.
    pub(crate) fn build(
        source: &[SourceNode<T>],
        roots: &[usize],
        n_targets: usize,
        err: &dyn Fn(String) -> crate::error::MlError,
    ) -> MlResult<Ensemble<T>> {
        if roots.is_empty() {
            return Err(err("the ensemble has no trees".into()));
        }
        let n = source.len();
        const UNSEEN: u32 = u32::MAX;
        // Compact index of each source node once laid out; on-path marks detect cycles.
        let mut placed = vec![UNSEEN; n];
        let mut on_path = vec![false; n];
        let mut nodes: Vec<Node<T>> = Vec::with_capacity(n);
        let mut weights: Vec<(u32, T)> = vec![];
        let mut leaf_votes: Vec<(u32, u32)> = vec![];
        let mut max_feature: Option<usize> = None;
        let mut out_roots = Vec::with_capacity(roots.len());
        enum Step {
            Enter(usize),
            Exit(usize),
        }
        let mut stack: Vec<Step> = vec![];
        for (tree, &root) in roots.iter().enumerate() {
            if root >= n {
                return Err(err(format!(
                    "tree {tree} starts at node {root}, but there are {n} nodes"
                )));
            }
            stack.push(Step::Enter(root));
            while let Some(step) = stack.pop() {
                match step {
                    Step::Enter(i) => {
                        if on_path[i] {
                            return Err(err(format!(
                                "tree {tree} has a cycle through node {i}: a tree's branches must not lead back to an ancestor"
                            )));
                        }
                        if placed[i] != UNSEEN {
                            continue;
                        }
                        if nodes.len() + chain_len(&source[i]) > u32::MAX as usize {
                            return Err(err("the ensemble has too many nodes".into()));
                        }
                        placed[i] = nodes.len() as u32;
                        match &source[i] {
                            SourceNode::Leaf(votes) => {
                                if votes.is_empty() {
                                    return Err(err(format!(
                                        "leaf {i} has no weight: every leaf needs at least one"
                                    )));
                                }
                                if let Some(&(t, _)) =
                                    votes.iter().find(|(t, _)| *t as usize >= n_targets)
                                {
                                    return Err(err(format!(
                                        "leaf {i} votes for target {t}, but there are {n_targets}"
                                    )));
                                }
                                // A leaf leads to itself, so a walk can take a step from
                                // it without leaving it.
                                let here = nodes.len() as u32;
                                let value = if n_targets == 1 {
                                    votes[0].1
                                } else {
                                    let start = u32::try_from(weights.len())
                                        .map_err(|_| err("too many leaf weights".into()))?;
                                    weights.extend_from_slice(votes);
                                    leaf_votes.resize(nodes.len(), (0, 0));
                                    leaf_votes.push((start, votes.len() as u32));
                                    T::ZERO
                                };
                                nodes.push(Node {
                                    value,
                                    word: LEAF_MODE << MODE_SHIFT,
                                    a: here,
                                    b: here,
                                });
                                continue;
                            }
                            SourceNode::Branch {
                                mode,
                                feature,
                                threshold,
                                missing_true,
                                on_true,
                                on_false,
                            } => {
                                check_children(i, *on_true, *on_false, n, err)?;
                                max_feature = max_feature.max(Some(*feature as usize));
                                nodes.push(branch(*mode, *feature, *threshold, *missing_true));
                                on_path[i] = true;
                                stack.push(Step::Exit(i));
                                stack.push(Step::Enter(*on_false));
                                stack.push(Step::Enter(*on_true));
                            }
                            SourceNode::Member {
                                feature,
                                values,
                                missing_true,
                                on_true,
                                on_false,
                            } => {
                                check_children(i, *on_true, *on_false, n, err)?;
                                max_feature = max_feature.max(Some(*feature as usize));
                                // One equality test per member, each falling through to the
                                // next; an empty set never matches (NaN equals nothing).
                                if values.is_empty() {
                                    nodes.push(branch(Mode::Eq, *feature, T::NAN, *missing_true));
                                }
                                for &v in values {
                                    nodes.push(branch(Mode::Eq, *feature, v, *missing_true));
                                }
                                on_path[i] = true;
                                stack.push(Step::Exit(i));
                                stack.push(Step::Enter(*on_false));
                                stack.push(Step::Enter(*on_true));
                            }
                        }
                    }
                    Step::Exit(i) => {
                        on_path[i] = false;
                        let (on_true, on_false) = match &source[i] {
                            SourceNode::Branch {
                                on_true, on_false, ..
                            }
                            | SourceNode::Member {
                                on_true, on_false, ..
                            } => (*on_true, *on_false),
                            SourceNode::Leaf(_) => unreachable!("leaves are never pushed for exit"),
                        };
                        let first = placed[i] as usize;
                        let last = first + chain_len(&source[i]) - 1;
                        for (k, node) in nodes[first..=last].iter_mut().enumerate() {
                            node.a = placed[on_true];
                            node.b = if first + k == last {
                                placed[on_false]
                            } else {
                                (first + k + 1) as u32
                            };
                        }
                    }
                }
            }
            out_roots.push(placed[root]);
        }
        let mut uniform = None;
        let mut mixed = false;
        for node in nodes.iter().filter(|n| !n.is_leaf()) {
            if node.missing_true() || uniform.is_some_and(|m| m != node.mode()) {
                mixed = true;
                break;
            }
            uniform = Some(node.mode());
        }
        if n_targets > 1 {
            leaf_votes.resize(nodes.len(), (0, 0));
        }
        Ok(Ensemble {
            nodes,
            leaf_votes,
            roots: out_roots,
            weights,
            n_targets,
            max_feature,
            uniform: if mixed {
                None
            } else {
                uniform.or(Some(Mode::Leq))
            },
        })
    }

    /// Number of trees.
    pub(crate) fn n_trees(&self) -> usize {
        self.roots.len()
    }

    /// Number of targets (outputs per row).
    pub(crate) fn n_targets(&self) -> usize {
        self.n_targets
    }

    /// Number of features a row needs (largest tested index + 1).
    pub(crate) fn min_width(&self) -> usize {
        self.max_feature.map_or(0, |f| f + 1)
    }

    /// Root node of tree `tree`.
    pub(crate) fn root(&self, tree: usize) -> u32 {
        self.roots[tree]
    }

    /// The vote of the leaf at node `leaf`.
    #[inline(always)]
    pub(crate) fn vote(&self, leaf: u32) -> Vote<'_, T> {
        let leaf = leaf as usize;
        if self.n_targets == 1 {
            Vote::One(self.nodes[leaf].value)
        } else {
            let (start, len) = self.leaf_votes[leaf];
            Vote::Many(&self.weights[start as usize..(start + len) as usize])
        }
    }

    /// Walks [`LANES`] independent (start node, row) lanes down to their leaves at once, and
    /// returns the leaves. Interleaving independent walks lets the CPU overlap their memory
    /// loads; each lane's path is exactly its own walk. The caller must have checked that every
    /// row has at least `min_width()` features.
    #[inline]
    pub(crate) fn leaves<X>(&self, mut at: [u32; LANES], rows: [&[X]; LANES]) -> [u32; LANES]
    where
        X: Float,
        T: Widen<X>,
    {
        if self.max_feature.is_none() {
            return at; // every tree is a single leaf (and rows may have no feature to read)
        }
        match self.uniform {
            Some(Mode::Leq) => self.walk(&mut at, rows, |x, n| x <= n.value.widen()),
            Some(Mode::Lt) => self.walk(&mut at, rows, |x, n| x < n.value.widen()),
            Some(Mode::Gte) => self.walk(&mut at, rows, |x, n| x >= n.value.widen()),
            Some(Mode::Gt) => self.walk(&mut at, rows, |x, n| x > n.value.widen()),
            Some(Mode::Eq) => self.walk(&mut at, rows, |x, n| x == n.value.widen()),
            Some(Mode::Neq) => self.walk(&mut at, rows, |x, n| x != n.value.widen()),
            None => self.walk(&mut at, rows, |x, n| {
                n.mode().test(x, n.value.widen()) || (n.missing_true() && x.is_nan())
            }),
        }
        at
    }

    /// Steps every lane to the child `go_true` picks until no lane moves (all at leaves, which
    /// lead to themselves). Terminates: trees are acyclic, so a lane moves at most depth times.
    #[inline(always)]
    fn walk<X>(
        &self,
        at: &mut [u32; LANES],
        rows: [&[X]; LANES],
        go_true: impl Fn(X, &Node<T>) -> bool,
    ) where
        X: Float,
        T: Widen<X>,
    {
        let nodes = &self.nodes[..];
        loop {
            let mut moved = false;
            for (i, row) in at.iter_mut().zip(rows) {
                let node = &nodes[*i as usize];
                // A leaf tests feature 0, which exists since some branch tests a feature.
                let x = row[node.feature()];
                let next = if go_true(x, node) { node.a } else { node.b };
                moved |= next != *i;
                *i = next;
            }
            if !moved {
                return;
            }
        }
    }
}

/// How many walks [`Ensemble::leaves`] interleaves.
pub(crate) const LANES: usize = 8;

fn branch<T: Float>(mode: Mode, feature: u32, threshold: T, missing_true: bool) -> Node<T> {
    let mut word = (feature & MAX_FEATURE) | ((mode as u32) << MODE_SHIFT);
    if missing_true {
        word |= MISSING_TRUE;
    }
    Node {
        value: threshold,
        word,
        a: 0,
        b: 0,
    }
}

/// How many laid-out nodes a source node becomes.
fn chain_len<T>(node: &SourceNode<T>) -> usize {
    match node {
        SourceNode::Member { values, .. } => values.len().max(1),
        _ => 1,
    }
}

fn check_children(
    i: usize,
    on_true: usize,
    on_false: usize,
    n: usize,
    err: &dyn Fn(String) -> crate::error::MlError,
) -> MlResult<()> {
    for (which, child) in [("true", on_true), ("false", on_false)] {
        if child >= n {
            return Err(err(format!(
                "node {i}'s {which} branch leads to node {child}, but there are {n} nodes"
            )));
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::error::MlError;

    fn err(problem: String) -> MlError {
        MlError::Model {
            op: "test",
            node: "n".into(),
            problem,
        }
    }

    fn leaf(w: f32) -> SourceNode<f32> {
        SourceNode::Leaf(vec![(0, w)])
    }

    fn leq(feature: u32, t: f32, on_true: usize, on_false: usize) -> SourceNode<f32> {
        SourceNode::Branch {
            mode: Mode::Leq,
            feature,
            threshold: t,
            missing_true: false,
            on_true,
            on_false,
        }
    }

    fn run(e: &Ensemble<f32>, row: &[f32]) -> Vec<f32> {
        let mut out = vec![];
        for tree in 0..e.n_trees() {
            let leaf = e.leaves([e.root(tree); LANES], [row; LANES])[0];
            match e.vote(leaf) {
                Vote::One(w) => out.push(w),
                Vote::Many(ws) => out.extend(ws.iter().map(|w| w.1)),
            }
        }
        out
    }

    #[test]
    fn walks_to_the_right_leaf() {
        // x0 <= 1 ? (x1 <= 2 ? 10 : 20) : 30
        let src = vec![
            leq(0, 1.0, 1, 2),
            leq(1, 2.0, 3, 4),
            leaf(30.0),
            leaf(10.0),
            leaf(20.0),
        ];
        let e = Ensemble::build(&src, &[0], 1, &err).unwrap();
        assert_eq!(e.min_width(), 2);
        assert_eq!(run(&e, &[0.0, 0.0]), [10.0]);
        assert_eq!(run(&e, &[1.0, 2.5]), [20.0]);
        assert_eq!(run(&e, &[1.5, 0.0]), [30.0]);
        // NaN fails every comparison and goes false.
        assert_eq!(run(&e, &[f32::NAN, 0.0]), [30.0]);
    }

    #[test]
    fn missing_values_can_go_true() {
        let src = vec![
            SourceNode::Branch {
                mode: Mode::Lt,
                feature: 0,
                threshold: 1.0,
                missing_true: true,
                on_true: 1,
                on_false: 2,
            },
            leaf(1.0),
            leaf(2.0),
        ];
        let e = Ensemble::build(&src, &[0], 1, &err).unwrap();
        assert_eq!(e.uniform, None);
        assert_eq!(run(&e, &[f32::NAN]), [1.0]);
        assert_eq!(run(&e, &[5.0]), [2.0]);
    }

    #[test]
    fn membership_is_a_chain_of_equalities() {
        let src = vec![
            SourceNode::Member {
                feature: 0,
                values: vec![1.0, 3.0],
                missing_true: false,
                on_true: 1,
                on_false: 2,
            },
            leaf(1.0),
            leaf(2.0),
        ];
        let e = Ensemble::build(&src, &[0], 1, &err).unwrap();
        assert_eq!(run(&e, &[1.0]), [1.0]);
        assert_eq!(run(&e, &[3.0]), [1.0]);
        assert_eq!(run(&e, &[2.0]), [2.0]);
        let src = vec![
            SourceNode::Member {
                feature: 0,
                values: vec![],
                missing_true: false,
                on_true: 1,
                on_false: 2,
            },
            leaf(1.0),
            leaf(2.0),
        ];
        let e = Ensemble::build(&src, &[0], 1, &err).unwrap();
        assert_eq!(run(&e, &[f32::NAN]), [2.0]);
    }

    #[test]
    fn cycles_bad_children_and_empty_leaves_are_refused() {
        let cyclic = vec![leq(0, 1.0, 1, 2), leq(0, 2.0, 0, 2), leaf(1.0)];
        let e = Ensemble::build(&cyclic, &[0], 1, &err)
            .unwrap_err()
            .to_string();
        assert!(e.contains("cycle"), "{e}");
        let self_loop = vec![leq(0, 1.0, 0, 1), leaf(1.0)];
        assert!(Ensemble::build(&self_loop, &[0], 1, &err).is_err());
        let dangling = vec![leq(0, 1.0, 1, 7), leaf(1.0)];
        let e = Ensemble::build(&dangling, &[0], 1, &err)
            .unwrap_err()
            .to_string();
        assert!(e.contains("node 7"), "{e}");
        let empty = vec![SourceNode::<f32>::Leaf(vec![])];
        assert!(Ensemble::build(&empty, &[0], 1, &err).is_err());
        let bad_target = vec![SourceNode::Leaf(vec![(3, 1.0)])];
        assert!(Ensemble::build(&bad_target, &[0], 2, &err).is_err());
        assert!(Ensemble::build(&[leaf(1.0)], &[], 1, &err).is_err());
        assert!(Ensemble::build(&[leaf(1.0)], &[1], 1, &err).is_err());
    }

    #[test]
    fn shared_subtrees_are_fine() {
        // Both branches of the root lead to the same leaf; two trees share it too.
        let src = vec![leq(0, 1.0, 1, 1), leaf(4.0)];
        let e = Ensemble::build(&src, &[0, 0], 1, &err).unwrap();
        assert_eq!(run(&e, &[0.0]), [4.0, 4.0]);
    }

    #[test]
    fn deep_trees_do_not_overflow_the_stack() {
        // A chain 100k deep: layout is iterative.
        let depth = 100_000;
        let mut src: Vec<SourceNode<f32>> =
            (0..depth).map(|i| leq(0, -1.0, depth + 1, i + 1)).collect();
        src.push(leaf(1.0));
        src.push(leaf(2.0));
        let e = Ensemble::build(&src, &[0], 1, &err).unwrap();
        assert_eq!(run(&e, &[0.0]), [1.0]);
    }
}
