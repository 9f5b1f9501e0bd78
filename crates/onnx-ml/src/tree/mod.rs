//! Tree ensembles: TreeEnsembleClassifier, TreeEnsembleRegressor (ai.onnx.ml 1-3) and
//! TreeEnsemble (ai.onnx.ml 5), all evaluated by one [`Ensemble`].
//!
//! Determinism: each row is scored on its own, tree by tree in the model's order, summing in a
//! fixed type (f32, or f64 for double inputs as onnxruntime does), so a row's bits never depend
//! on the batch it is in or on the thread count. Rows are processed in blocks, trees outer and
//! rows inner, only so that a tree stays in cache across the block; that changes no sum's order.

mod classifier;
mod ensemble;
mod regressor;
mod v3;
mod v5;

use std::borrow::Cow;

use tract_onnx::prelude::{DatumType, TDim, Tensor};
use tract_onnx::tract_hir::internal::DimLike;

pub(crate) use ensemble::{Ensemble, Float, LANES, Vote, Widen};

use crate::attrs::Attrs;
use crate::error::{MlResult, input_error};
use crate::op::{batch_of, slice_of};

/// Most outputs per row (classes or targets) a tree or linear operator may declare: bounds what
/// a row's scores allocate, whatever the model file claims.
pub(crate) const MAX_TARGETS: usize = 1 << 16;

/// How the leaves reached in the trees combine into one score per target.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Aggregate {
    /// Mean over trees.
    Average,
    /// Sum over trees.
    Sum,
    /// Smallest vote.
    Min,
    /// Largest vote.
    Max,
}

impl Aggregate {
    /// The string form (`aggregate_function` of TreeEnsembleRegressor).
    pub(crate) fn from_attr(attrs: &Attrs) -> MlResult<Aggregate> {
        match attrs.string("aggregate_function")?.as_deref() {
            None | Some("SUM") => Ok(Aggregate::Sum),
            Some("AVERAGE") => Ok(Aggregate::Average),
            Some("MIN") => Ok(Aggregate::Min),
            Some("MAX") => Ok(Aggregate::Max),
            Some(other) => Err(attrs.error(
                "aggregate_function",
                format!("is {other:?}; expected SUM, AVERAGE, MIN or MAX"),
            )),
        }
    }

    /// The integer form (`aggregate_function` of TreeEnsemble).
    pub(crate) fn from_int_attr(attrs: &Attrs) -> MlResult<Aggregate> {
        match attrs.int("aggregate_function")? {
            Some(0) => Ok(Aggregate::Average),
            None | Some(1) => Ok(Aggregate::Sum),
            Some(2) => Ok(Aggregate::Min),
            Some(3) => Ok(Aggregate::Max),
            Some(other) => Err(attrs.error(
                "aggregate_function",
                format!("is {other}; expected 0 (AVERAGE), 1 (SUM), 2 (MIN) or 3 (MAX)"),
            )),
        }
    }
}

/// One target's running score: its value and whether any tree voted for it.
#[derive(Clone, Copy, Debug, PartialEq)]
pub(crate) struct Score<A> {
    pub(crate) v: A,
    pub(crate) has: bool,
}

impl<A: Float> Score<A> {
    const EMPTY: Score<A> = Score {
        v: A::ZERO,
        has: false,
    };

    /// The score as onnxruntime reads it out: 0 when nothing set it.
    pub(crate) fn value(&self) -> A {
        if self.has { self.v } else { A::ZERO }
    }

    #[inline(always)]
    fn add(&mut self, aggregate: Aggregate, w: A) {
        match aggregate {
            Aggregate::Sum | Aggregate::Average => self.v = self.v + w,
            Aggregate::Min => {
                if !self.has || w < self.v {
                    self.v = w
                }
            }
            Aggregate::Max => {
                if !self.has || w > self.v {
                    self.v = w
                }
            }
        }
        self.has = true;
    }
}

/// The trees of one operator, in the precision its attributes were given in.
#[derive(Clone, Debug, PartialEq)]
pub(crate) enum Trees {
    /// Float thresholds and weights (`nodes_values`, `*_weights`, or float tensors).
    F32(Ensemble<f32>),
    /// Double thresholds and weights (`*_as_tensor`, or double tensors); needs a double input.
    F64(Ensemble<f64>),
}

impl Trees {
    /// Number of targets (outputs per row).
    pub(crate) fn n_targets(&self) -> usize {
        match self {
            Trees::F32(e) => e.n_targets(),
            Trees::F64(e) => e.n_targets(),
        }
    }

    fn min_width(&self) -> usize {
        match self {
            Trees::F32(e) => e.min_width(),
            Trees::F64(e) => e.min_width(),
        }
    }

    /// Checks a declared input width against the features the trees test.
    pub(crate) fn check_width(&self, op: &'static str, width: &TDim) -> MlResult<()> {
        if let Ok(w) = width.to_usize() {
            self.check_features(op, w)?;
        }
        Ok(())
    }

    fn check_features(&self, op: &'static str, width: usize) -> MlResult<()> {
        if width < self.min_width() {
            return Err(input_error(
                op,
                format!(
                    "the trees test feature {}, but the input has {width} feature(s) per row",
                    self.min_width() - 1
                ),
            ));
        }
        Ok(())
    }

    /// Checks an input type against the thresholds' precision.
    pub(crate) fn check_input(&self, op: &'static str, dt: DatumType) -> MlResult<()> {
        crate::op::check_numeric(op, dt)?;
        if matches!(self, Trees::F64(_)) && dt != DatumType::F64 {
            return Err(input_error(
                op,
                format!(
                    "this node's thresholds are doubles, so its input must be double (float64), got {dt:?}"
                ),
            ));
        }
        Ok(())
    }

    /// Scores every row of `input` (`[N, C]` or `[C]`): `N * n_targets` scores, row-major.
    /// Sums run in f64 when the input is double, in f32 otherwise, as in onnxruntime.
    pub(crate) fn score(
        &self,
        op: &'static str,
        aggregate: Aggregate,
        input: &Tensor,
    ) -> MlResult<(usize, RowScores)> {
        self.check_input(op, input.datum_type())?;
        let (rows, width) = batch_of(op, input)?;
        self.check_features(op, width)?;
        let scores = match (self, input.datum_type()) {
            (Trees::F32(e), DatumType::F64) => RowScores::F64(score_rows(
                e,
                aggregate,
                slice_of::<f64>(op, input)?,
                rows,
                width,
            )),
            (Trees::F32(e), _) => {
                let x = crate::op::as_f32(op, input)?;
                RowScores::F32(score_rows(e, aggregate, &x, rows, width))
            }
            (Trees::F64(e), _) => {
                let x: Cow<[f64]> = crate::op::as_f64(op, input)?;
                RowScores::F64(score_rows(e, aggregate, &x, rows, width))
            }
        };
        Ok((rows, scores))
    }
}

/// Scores of every row, in the type they were summed in.
pub(crate) enum RowScores {
    /// Summed in f32.
    F32(Vec<Score<f32>>),
    /// Summed in f64.
    F64(Vec<Score<f64>>),
}

/// Rows per block: trees outer, rows inner within a block (keeps a tree in cache).
const BLOCK_ROWS: usize = 64;

/// Runs every tree over every row; returns `rows * n_targets` scores.
fn score_rows<T, X>(
    e: &Ensemble<T>,
    aggregate: Aggregate,
    x: &[X],
    rows: usize,
    width: usize,
) -> Vec<Score<X>>
where
    X: Float,
    T: Widen<X>,
{
    // One specialised loop per aggregate, so the hot loop has no dispatch.
    match aggregate {
        Aggregate::Sum | Aggregate::Average => {
            score_rows_with(e, x, rows, width, |s: &mut Score<X>, w| {
                s.add(Aggregate::Sum, w)
            })
        }
        Aggregate::Min => score_rows_with(e, x, rows, width, |s, w| s.add(Aggregate::Min, w)),
        Aggregate::Max => score_rows_with(e, x, rows, width, |s, w| s.add(Aggregate::Max, w)),
    }
}

#[inline(always)]
fn score_rows_with<T, X>(
    e: &Ensemble<T>,
    x: &[X],
    rows: usize,
    width: usize,
    add: impl Fn(&mut Score<X>, X),
) -> Vec<Score<X>>
where
    X: Float,
    T: Widen<X>,
{
    let nt = e.n_targets();
    let mut scores = vec![Score::EMPTY; rows * nt];
    // The (tree, row) pairs in order: row blocks, then trees, then the block's rows. Each row
    // thus meets the trees in model order whatever the batch. Pairs are walked LANES at a time
    // (several rows of one tree, or several trees of one row), then their votes are added in
    // pair order.
    let mut lanes: [(u32, usize); LANES] = [(0, 0); LANES];
    let mut filled = 0;
    let flush = |lanes: &[(u32, usize); LANES], n: usize, scores: &mut [Score<X>]| {
        let rows_of = lanes.map(|(_, r)| &x[r * width..(r + 1) * width]);
        let leaves = e.leaves(lanes.map(|(root, _)| root), rows_of);
        for (&leaf, &(_, r)) in leaves.iter().zip(lanes).take(n) {
            let out = &mut scores[r * nt..(r + 1) * nt];
            match e.vote(leaf) {
                Vote::One(w) => add(&mut out[0], w.widen()),
                Vote::Many(votes) => {
                    for &(t, w) in votes {
                        add(&mut out[t as usize], w.widen());
                    }
                }
            }
        }
    };
    for block in (0..rows).step_by(BLOCK_ROWS) {
        let end = (block + BLOCK_ROWS).min(rows);
        for tree in 0..e.n_trees() {
            for r in block..end {
                lanes[filled] = (e.root(tree), r);
                filled += 1;
                if filled == LANES {
                    flush(&lanes, LANES, &mut scores);
                    filled = 0;
                }
            }
        }
    }
    if filled > 0 {
        // Unused lanes repeat the last pair; their results are dropped.
        let last = lanes[filled - 1];
        lanes[filled..].fill(last);
        flush(&lanes, filled, &mut scores);
    }
    scores
}

/// Registers the tree operators.
pub(crate) fn register(onnx: &mut tract_onnx::Onnx) {
    onnx.op_register
        .insert("TreeEnsembleClassifier", classifier::parse);
    onnx.op_register
        .insert("TreeEnsembleRegressor", regressor::parse_v3);
    onnx.op_register.insert("TreeEnsemble", regressor::parse_v5);
}
