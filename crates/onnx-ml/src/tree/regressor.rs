//! TreeEnsembleRegressor (ai.onnx.ml 1-3; output `[N, n_targets]` f32) and TreeEnsemble
//! (ai.onnx.ml 5; output `[N, n_targets]` in the input's type).

use tract_onnx::model::ParsingContext;
use tract_onnx::pb::NodeProto;
use tract_onnx::prelude::*;
use tract_onnx::tract_hir::infer::InferenceOp;

use super::{Aggregate, Float, RowScores, Score, Trees, v3, v5};
use crate::attrs::Attrs;
use crate::error::{MlResult, input_error};
use crate::op::{Kernel, batch_dims, inference_op, tensor};
use crate::transform::{PostTransform, probit};

/// A parsed TreeEnsembleRegressor or TreeEnsemble.
#[derive(Clone, Debug, PartialEq)]
pub(crate) struct TreeRegressor {
    op: &'static str,
    trees: Trees,
    aggregate: Aggregate,
    post: PostTransform,
    /// Added to the aggregated scores (TreeEnsembleRegressor only).
    base_values: Vec<f64>,
    /// Output type: f32 (TreeEnsembleRegressor), or the input's type (TreeEnsemble).
    output: Option<DatumType>,
}

pub(crate) fn parse_v3(
    _ctx: &ParsingContext,
    node: &NodeProto,
) -> TractResult<(Box<dyn InferenceOp>, Vec<String>)> {
    let attrs = Attrs::new("TreeEnsembleRegressor", node);
    let n_targets = attrs.int("n_targets")?.unwrap_or(1);
    let n_targets = usize::try_from(n_targets).unwrap_or(0);
    let parsed = v3::parse(&attrs, "target", n_targets)?;
    let b = parsed.base_values.len();
    if !(b == 0 || b == n_targets) {
        return Err(attrs
            .error(
                "base_values",
                format!("has {b} values; expected none or one per target ({n_targets})"),
            )
            .into());
    }
    let post = PostTransform::from_attr(&attrs)?;
    check_single_target_transform(&attrs, n_targets, post)?;
    Ok(inference_op(TreeRegressor {
        op: attrs.op,
        trees: parsed.trees,
        aggregate: Aggregate::from_attr(&attrs)?,
        post,
        base_values: parsed.base_values,
        output: Some(DatumType::F32),
    }))
}

pub(crate) fn parse_v5(
    _ctx: &ParsingContext,
    node: &NodeProto,
) -> TractResult<(Box<dyn InferenceOp>, Vec<String>)> {
    let attrs = Attrs::new("TreeEnsemble", node);
    let trees = v5::parse(&attrs)?;
    let post = PostTransform::from_int_attr(&attrs)?;
    check_single_target_transform(&attrs, trees.n_targets(), post)?;
    Ok(inference_op(TreeRegressor {
        op: attrs.op,
        trees,
        aggregate: Aggregate::from_int_attr(&attrs)?,
        post,
        base_values: vec![],
        output: None,
    }))
}

/// With one target, onnxruntime applies only PROBIT and ignores the other transforms, which the
/// operator spec says to apply: rather than pick one reading, such models are refused.
fn check_single_target_transform(
    attrs: &Attrs,
    n_targets: usize,
    post: PostTransform,
) -> MlResult<()> {
    if n_targets == 1 && !matches!(post, PostTransform::None | PostTransform::Probit) {
        return Err(attrs.unsupported(format!(
            "post_transform {post:?} with a single target: onnxruntime ignores it while the \
             operator spec applies it; export with post_transform NONE and apply the function \
             with a standard operator (e.g. Sigmoid) after the ensemble"
        )));
    }
    Ok(())
}

impl TreeRegressor {
    fn output_type(&self, input: DatumType) -> DatumType {
        self.output.unwrap_or(input)
    }

    /// Finalises `rows` rows of scores summed in `A` into the output tensor.
    fn finalize<A: Float>(
        &self,
        rows: usize,
        scores: &[Score<A>],
        out_dt: DatumType,
    ) -> MlResult<Tensor> {
        let nt = self.trees.n_targets();
        let n_trees = A::from_f64(match &self.trees {
            Trees::F32(e) => e.n_trees(),
            Trees::F64(e) => e.n_trees(),
        } as f64);
        let base = |j: usize| A::from_f64(self.base_values[j]);
        let use_base = self.base_values.len() == nt;
        let mut values: Vec<A> = Vec::with_capacity(scores.len());
        let mut transformed: Option<Vec<f32>> = None;
        if nt == 1 {
            let origin = if self.base_values.len() == 1 {
                base(0)
            } else {
                A::ZERO
            };
            for s in scores {
                let v = match self.aggregate {
                    Aggregate::Sum => s.v + origin,
                    Aggregate::Average => s.v / n_trees + origin,
                    Aggregate::Min | Aggregate::Max => {
                        if s.has {
                            s.v + origin
                        } else {
                            origin
                        }
                    }
                };
                values.push(v);
            }
            if self.post == PostTransform::Probit {
                transformed = Some(values.iter().map(|v| probit(v.to_f32())).collect());
            }
        } else {
            for row in scores.chunks(nt) {
                for (j, s) in row.iter().enumerate() {
                    let b = if use_base { base(j) } else { A::ZERO };
                    // A target no tree voted for reads as 0, base value or not, as in
                    // onnxruntime.
                    values.push(if !s.has {
                        A::ZERO
                    } else {
                        match self.aggregate {
                            Aggregate::Sum if use_base => s.v + b,
                            Aggregate::Sum => s.v,
                            Aggregate::Average if use_base => s.v / n_trees + b,
                            Aggregate::Average => s.v / n_trees,
                            // onnxruntime starts from the base value, or 0.
                            Aggregate::Min | Aggregate::Max => b + s.v,
                        }
                    });
                }
            }
            if self.post != PostTransform::None {
                let mut t: Vec<f32> = values.iter().map(|v| v.to_f32()).collect();
                for row in t.chunks_mut(nt) {
                    self.post.apply_row(row);
                }
                transformed = Some(t);
            }
        }
        let shape = [rows, nt];
        match (transformed, out_dt) {
            (Some(t), DatumType::F64) => tensor(&shape, t.into_iter().map(f64::from).collect()),
            (Some(t), _) => tensor(&shape, t),
            (None, DatumType::F64) => tensor(&shape, values.iter().map(|v| v.to_f64()).collect()),
            (None, _) => tensor(&shape, values.iter().map(|v| v.to_f32()).collect()),
        }
    }
}

impl Kernel for TreeRegressor {
    fn name(&self) -> &'static str {
        self.op
    }

    fn output_types(&self, inputs: &[DatumType]) -> MlResult<TVec<DatumType>> {
        self.trees.check_input(self.op, inputs[0])?;
        if self.output.is_none() {
            let want = match self.trees {
                Trees::F32(_) => DatumType::F32,
                Trees::F64(_) => DatumType::F64,
            };
            if inputs[0] != want {
                return Err(input_error(
                    self.op,
                    format!(
                        "the input must have the thresholds' type {want:?}, got {:?}",
                        inputs[0]
                    ),
                ));
            }
        }
        Ok(tvec!(self.output_type(inputs[0])))
    }

    fn output_shapes(&self, inputs: &[TVec<TDim>]) -> MlResult<TVec<TVec<TDim>>> {
        let (n, c) = batch_dims(self.op, &inputs[0])?;
        self.trees.check_width(self.op, &c)?;
        Ok(tvec!(tvec!(n, self.trees.n_targets().into())))
    }

    fn eval(&self, inputs: &[&Tensor]) -> MlResult<TVec<Tensor>> {
        let out_dt = self.output_types(&[inputs[0].datum_type()])?[0];
        let (rows, scores) = self.trees.score(self.op, self.aggregate, inputs[0])?;
        let y = match scores {
            RowScores::F32(s) => self.finalize(rows, &s, out_dt)?,
            RowScores::F64(s) => self.finalize(rows, &s, out_dt)?,
        };
        Ok(tvec!(y))
    }
}
