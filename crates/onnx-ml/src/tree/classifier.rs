//! TreeEnsembleClassifier: outputs `Y` (labels, `[N]`) and `Z` (scores, `[N, classes]` f32).
//!
//! Labels and scores follow onnxruntime's rules, including its binary conventions: when every
//! vote goes to one class id (scikit-learn's binary forests and gradient boosting), that single
//! score is the positive class's, thresholded at 0.5 when all weights are non-negative and at 0
//! otherwise, and the second column is derived from it (`1 - s`, or `-s`, or the logistic of
//! `-s`).

use tract_onnx::model::ParsingContext;
use tract_onnx::pb::NodeProto;
use tract_onnx::prelude::*;
use tract_onnx::tract_hir::infer::InferenceOp;

use super::{Aggregate, RowScores, Score, Trees, v3};
use crate::attrs::Attrs;
use crate::error::MlResult;
use crate::labels::{ClassLabels, Label};
use crate::op::{Kernel, batch_dims, inference_op, tensor};
use crate::transform::{PostTransform, logistic, probit};

const OP: &str = "TreeEnsembleClassifier";

/// A parsed TreeEnsembleClassifier.
#[derive(Clone, Debug, PartialEq)]
pub(crate) struct TreeClassifier {
    trees: Trees,
    labels: ClassLabels,
    post: PostTransform,
    base_values: Vec<f64>,
    /// Two classes and every vote for the same class id.
    binary_case: bool,
    weights_all_positive: bool,
}

pub(crate) fn parse(
    _ctx: &ParsingContext,
    node: &NodeProto,
) -> TractResult<(Box<dyn InferenceOp>, Vec<String>)> {
    Ok(inference_op(TreeClassifier::read(&Attrs::new(OP, node))?))
}

impl TreeClassifier {
    fn read(attrs: &Attrs) -> MlResult<TreeClassifier> {
        let labels = ClassLabels::read(attrs, "classlabels_int64s", "classlabels_strings")?;
        let n = labels.len();
        if n < 2 {
            return Err(attrs.model_error(format!(
                "has {n} class label(s); a classifier needs at least 2"
            )));
        }
        let post = PostTransform::from_attr(attrs)?;
        if n == 2 && post == PostTransform::Probit {
            return Err(attrs.unsupported(
                "PROBIT on a two-class tree ensemble: onnxruntime writes only the first score \
                 column then, leaving the second undefined; export without a post-transform and \
                 apply it after the classifier",
            ));
        }
        let parsed = v3::parse(attrs, "class", n)?;
        let b = parsed.base_values.len();
        if !(b == 0 || b == n || (b == 1 && n == 2)) {
            return Err(attrs.error(
                "base_values",
                format!(
                    "has {b} values; expected none, one per class ({n}), or one for two classes"
                ),
            ));
        }
        Ok(TreeClassifier {
            trees: parsed.trees,
            labels,
            post,
            base_values: parsed.base_values,
            binary_case: n == 2 && parsed.distinct_ids == 1,
            weights_all_positive: parsed.weights_all_positive,
        })
    }

    /// Finalises one row: its label, and its scores written to `out` (one per class).
    fn finalize<A: super::Float>(&self, preds: &mut [Score<A>], out: &mut [f32]) -> Label {
        let n = preds.len();
        let base = |k: usize| A::from_f64(self.base_values[k]);
        if n > 2 {
            for (p, &b) in preds.iter_mut().zip(&self.base_values) {
                let b = A::from_f64(b);
                *p = Score {
                    v: if p.has { p.v + b } else { b },
                    has: true,
                };
            }
            let mut best: Option<(usize, A)> = None;
            for (k, p) in preds.iter().enumerate() {
                if p.has && best.is_none_or(|(_, w)| p.v > w) {
                    best = Some((k, p.v));
                }
            }
            write_scores(preds, self.post, -1, out);
            // Every tree votes, so some class has a score.
            return Label::Class(best.map_or(0, |(k, _)| k));
        }
        let mut len = 2;
        let mut second = -1;
        match self.base_values.len() {
            2 => {
                if preds[1].has {
                    // onnxruntime's convention: base_values[0] is assumed equal to
                    // base_values[1] and the first class's score is the negated second.
                    preds[1].v = base(1) + preds[0].v;
                    preds[0].v = -preds[1].v;
                } else {
                    preds[1].v = preds[1].v + base(1);
                    preds[0].v = preds[0].v + base(0);
                }
            }
            1 => {
                preds[0].v = preds[0].v + base(0);
                if !preds[1].has {
                    len = 1;
                }
            }
            _ => {
                second = 3;
                if !preds[1].has {
                    len = 1;
                }
            }
        }
        let label = self.binary_label(&mut second, &preds[..len]);
        write_scores(&preds[..len], self.post, second, out);
        label
    }

    /// onnxruntime's `_set_score_binary`.
    fn binary_label<A: super::Float>(&self, second: &mut i32, preds: &[Score<A>]) -> Label {
        let (s0, h0) = (preds[0].v, preds[0].has);
        let (s1, h1) = match preds.get(1) {
            Some(p) if p.has => (p.v, true),
            _ => (A::ZERO, false),
        };
        let positive = if h1 {
            s1
        } else if h0 {
            s0
        } else {
            A::ZERO
        };
        if self.binary_case {
            let (win, code) = if self.weights_all_positive {
                (positive > A::from_f32(0.5), 0)
            } else {
                (positive > A::ZERO, 2)
            };
            *second = if win { code } else { code + 1 };
            return Label::Class(win as usize);
        }
        let win = positive > A::ZERO;
        match self.labels {
            // onnxruntime emits the literal labels 1 and 0 here (indices for string labels).
            ClassLabels::Int64(_) => Label::Fixed(win as i64),
            ClassLabels::Strings(_) => Label::Class(win as usize),
        }
    }

    fn finalize_all<A: super::Float>(
        &self,
        rows: usize,
        mut scores: Vec<Score<A>>,
    ) -> MlResult<TVec<Tensor>> {
        let n = self.labels.len();
        let mut out = vec![0f32; rows * n];
        let mut labels = Vec::with_capacity(rows);
        for (preds, z) in scores.chunks_mut(n).zip(out.chunks_mut(n)) {
            labels.push(self.finalize(preds, z));
        }
        Ok(tvec!(
            self.labels.output(&labels)?,
            tensor(&[rows, n], out)?
        ))
    }
}

/// onnxruntime's `write_scores`: applies the post-transform to a row of scores (in f32), or
/// expands a single binary score into two columns according to `second`. A class no tree voted
/// for (and no base value reached) counts as 0, as onnxruntime reads such a score.
fn write_scores<A: super::Float>(
    preds: &[Score<A>],
    post: PostTransform,
    second: i32,
    out: &mut [f32],
) {
    if preds.len() >= 2 {
        for (o, p) in out.iter_mut().zip(preds) {
            *o = p.value().to_f32();
        }
        post.apply_row(&mut out[..preds.len()]);
        return;
    }
    let s = preds[0].value();
    match (second, post) {
        (_, PostTransform::Probit) => {
            out[0] = probit(s.to_f32());
            out[1] = 0.0;
        }
        (0 | 1, PostTransform::Logistic) => {
            let p = logistic(s.to_f32());
            out[0] = 1.0 - p;
            out[1] = p;
        }
        (0 | 1, _) => {
            out[0] = (A::ONE - s).to_f32();
            out[1] = s.to_f32();
        }
        (2 | 3, PostTransform::Logistic) => {
            out[0] = logistic((-s).to_f32());
            out[1] = logistic(s.to_f32());
        }
        (2 | 3, _) => {
            out[0] = (-s).to_f32();
            out[1] = s.to_f32();
        }
        // onnxruntime leaves the second column unwritten here; Vouch writes 0.
        _ => {
            out[0] = s.to_f32();
            out[1] = 0.0;
        }
    }
}

impl Kernel for TreeClassifier {
    fn name(&self) -> &'static str {
        OP
    }

    fn n_outputs(&self) -> usize {
        2
    }

    fn output_types(&self, inputs: &[DatumType]) -> MlResult<TVec<DatumType>> {
        self.trees.check_input(OP, inputs[0])?;
        Ok(tvec!(self.labels.datum_type(), DatumType::F32))
    }

    fn output_shapes(&self, inputs: &[TVec<TDim>]) -> MlResult<TVec<TVec<TDim>>> {
        let (n, c) = batch_dims(OP, &inputs[0])?;
        self.trees.check_width(OP, &c)?;
        Ok(tvec!(tvec!(n.clone()), tvec!(n, self.labels.len().into())))
    }

    fn eval(&self, inputs: &[&Tensor]) -> MlResult<TVec<Tensor>> {
        let (rows, scores) = self.trees.score(OP, Aggregate::Sum, inputs[0])?;
        match scores {
            RowScores::F32(s) => self.finalize_all(rows, s),
            RowScores::F64(s) => self.finalize_all(rows, s),
        }
    }
}
