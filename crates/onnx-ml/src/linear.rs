//! LinearClassifier and LinearRegressor: `scores = X · coefficientsᵀ + intercepts`, each dot
//! product summed in f32 in feature order with separate multiply and add (no FMA), then the
//! intercept added, as onnxruntime does after casting the input to f32.

use tract_onnx::model::ParsingContext;
use tract_onnx::pb::NodeProto;
use tract_onnx::prelude::*;
use tract_onnx::tract_hir::infer::InferenceOp;
use tract_onnx::tract_hir::internal::DimLike;

use crate::attrs::Attrs;
use crate::error::{MlResult, input_error};
use crate::labels::{ClassLabels, Label};
use crate::op::{Kernel, as_f32, batch_dims, batch_of, check_numeric, inference_op, tensor};
use crate::transform::{PostTransform, logistic, probit};

/// `x · w`, in index order, each product rounded before it is added.
#[inline]
pub(crate) fn dot(x: &[f32], w: &[f32]) -> f32 {
    let mut s = 0.0f32;
    for (a, b) in x.iter().zip(w) {
        s += a * b;
    }
    s
}

/// Weights shared by both operators: `targets` rows of `width` coefficients and an intercept
/// per row.
#[derive(Clone, Debug)]
struct Linear {
    coefficients: Vec<f32>,
    intercepts: Vec<f32>,
    targets: usize,
    width: usize,
}

impl Linear {
    fn read(attrs: &Attrs, targets: usize) -> MlResult<Linear> {
        let coefficients = attrs.floats("coefficients")?.unwrap_or_default().to_vec();
        if coefficients.is_empty() {
            return Err(attrs.error("coefficients", "is required and missing"));
        }
        if targets == 0 || !coefficients.len().is_multiple_of(targets) {
            return Err(attrs.error(
                "coefficients",
                format!(
                    "has {} values, not a multiple of the {targets} score column(s)",
                    coefficients.len()
                ),
            ));
        }
        let intercepts = match attrs.floats("intercepts")? {
            Some(v) => v.to_vec(),
            None => vec![0.0; targets],
        };
        attrs.check_len(
            "intercepts",
            Some(intercepts.len()),
            targets,
            "score column",
        )?;
        Ok(Linear {
            width: coefficients.len() / targets,
            coefficients,
            intercepts,
            targets,
        })
    }

    fn check_width(&self, op: &'static str, width: &TDim) -> MlResult<()> {
        if let Ok(w) = width.to_usize()
            && w != self.width
        {
            return Err(input_error(
                op,
                format!(
                    "the input has {w} features per row; the coefficients expect {}",
                    self.width
                ),
            ));
        }
        Ok(())
    }

    /// Raw scores, `rows * targets`.
    fn scores(&self, op: &'static str, input: &Tensor) -> MlResult<(usize, Vec<f32>)> {
        let (rows, width) = batch_of(op, input)?;
        self.check_width(op, &width.into())?;
        let x = as_f32(op, input)?;
        let mut out = Vec::with_capacity(rows * self.targets);
        for r in 0..rows {
            let row = &x[r * width..(r + 1) * width];
            for (t, w) in self.coefficients.chunks(width).enumerate() {
                out.push(dot(row, w) + self.intercepts[t]);
            }
        }
        Ok((rows, out))
    }
}

/// A parsed LinearClassifier: labels `[N]` and scores `[N, classes]` (f32).
#[derive(Clone, Debug)]
pub(crate) struct LinearClassifier {
    linear: Linear,
    labels: ClassLabels,
    post: PostTransform,
}

const CLASSIFIER: &str = "LinearClassifier";
const REGRESSOR: &str = "LinearRegressor";

pub(crate) fn parse_classifier(
    _ctx: &ParsingContext,
    node: &NodeProto,
) -> TractResult<(Box<dyn InferenceOp>, Vec<String>)> {
    let attrs = Attrs::new(CLASSIFIER, node);
    let labels = ClassLabels::read(&attrs, "classlabels_ints", "classlabels_strings")?;
    let intercepts = attrs.floats("intercepts")?.ok_or_else(|| {
        attrs.error(
            "intercepts",
            "is required (one per score column) and missing",
        )
    })?;
    let linear = Linear::read(&attrs, intercepts.len())?;
    let post = PostTransform::from_attr(&attrs)?;
    let n = labels.len();
    if linear.targets == 1 {
        if n != 2 {
            return Err(attrs
                .model_error(format!(
                    "has one score column, which needs exactly 2 class labels; it has {n}"
                ))
                .into());
        }
        if post == PostTransform::Probit {
            return Err(attrs
                .unsupported(
                    "PROBIT with one score column and two classes: onnxruntime's output for \
                     it is ill-defined; apply the transform after the classifier",
                )
                .into());
        }
    } else if linear.targets != n {
        return Err(attrs
            .model_error(format!(
                "has {} score columns (intercepts) but {n} class labels",
                linear.targets
            ))
            .into());
    }
    Ok(inference_op(LinearClassifier {
        linear,
        labels,
        post,
    }))
}

impl Kernel for LinearClassifier {
    fn name(&self) -> &'static str {
        CLASSIFIER
    }

    fn n_outputs(&self) -> usize {
        2
    }

    fn output_types(&self, inputs: &[DatumType]) -> MlResult<TVec<DatumType>> {
        check_numeric(CLASSIFIER, inputs[0])?;
        Ok(tvec!(self.labels.datum_type(), DatumType::F32))
    }

    fn output_shapes(&self, inputs: &[TVec<TDim>]) -> MlResult<TVec<TVec<TDim>>> {
        let (n, c) = batch_dims(CLASSIFIER, &inputs[0])?;
        self.linear.check_width(CLASSIFIER, &c)?;
        let cols = self.labels.len().max(self.linear.targets);
        Ok(tvec!(tvec!(n.clone()), tvec!(n, cols.into())))
    }

    fn eval(&self, inputs: &[&Tensor]) -> MlResult<TVec<Tensor>> {
        let (rows, scores) = self.linear.scores(CLASSIFIER, inputs[0])?;
        let nt = self.linear.targets;
        let mut labels = Vec::with_capacity(rows);
        let out = if nt == 1 {
            // One score column: the positive class wins when the raw score is above 0, and the
            // two columns are [1 - s, s], or [1 - p, p] with p the logistic of s (onnxruntime
            // applies no other transform here).
            let mut out = Vec::with_capacity(rows * 2);
            for &s in &scores {
                labels.push(Label::Class((s > 0.0) as usize));
                if self.post == PostTransform::Logistic {
                    let p = logistic(s);
                    out.extend([1.0 - p, p]);
                } else {
                    out.extend([1.0 - s, s]);
                }
            }
            out
        } else {
            let mut out = scores;
            for row in out.chunks_mut(nt) {
                let mut best = 0;
                for (j, &v) in row.iter().enumerate().skip(1) {
                    if v > row[best] {
                        best = j;
                    }
                }
                labels.push(Label::Class(best));
                self.post.apply_row(row);
            }
            out
        };
        let cols = if nt == 1 { 2 } else { nt };
        Ok(tvec!(
            self.labels.output(&labels)?,
            tensor(&[rows, cols], out)?
        ))
    }
}

/// A parsed LinearRegressor: `[N, targets]` f32.
#[derive(Clone, Debug)]
pub(crate) struct LinearRegressor {
    linear: Linear,
    post: PostTransform,
}

pub(crate) fn parse_regressor(
    _ctx: &ParsingContext,
    node: &NodeProto,
) -> TractResult<(Box<dyn InferenceOp>, Vec<String>)> {
    let attrs = Attrs::new(REGRESSOR, node);
    let targets = attrs.int("targets")?.unwrap_or(1);
    if targets < 1 || targets > crate::tree::MAX_TARGETS as i64 {
        return Err(attrs
            .error("targets", format!("is {targets}; expected at least 1"))
            .into());
    }
    let linear = Linear::read(&attrs, targets as usize)?;
    let post = PostTransform::from_attr(&attrs)?;
    if linear.targets == 1 && !matches!(post, PostTransform::None | PostTransform::Probit) {
        return Err(attrs
            .unsupported(format!(
                "post_transform {post:?} with a single target: onnxruntime ignores it while the \
                 operator spec applies it; export without it and apply the function after the \
                 regressor"
            ))
            .into());
    }
    Ok(inference_op(LinearRegressor { linear, post }))
}

impl Kernel for LinearRegressor {
    fn name(&self) -> &'static str {
        REGRESSOR
    }

    fn output_types(&self, inputs: &[DatumType]) -> MlResult<TVec<DatumType>> {
        check_numeric(REGRESSOR, inputs[0])?;
        Ok(tvec!(DatumType::F32))
    }

    fn output_shapes(&self, inputs: &[TVec<TDim>]) -> MlResult<TVec<TVec<TDim>>> {
        let (n, c) = batch_dims(REGRESSOR, &inputs[0])?;
        self.linear.check_width(REGRESSOR, &c)?;
        Ok(tvec!(tvec!(n, self.linear.targets.into())))
    }

    fn eval(&self, inputs: &[&Tensor]) -> MlResult<TVec<Tensor>> {
        let (rows, mut scores) = self.linear.scores(REGRESSOR, inputs[0])?;
        let nt = self.linear.targets;
        if nt == 1 {
            if self.post == PostTransform::Probit {
                scores.iter_mut().for_each(|s| *s = probit(*s));
            }
        } else {
            for row in scores.chunks_mut(nt) {
                self.post.apply_row(row);
            }
        }
        Ok(tvec!(tensor(&[rows, nt], scores)?))
    }
}
