//! `NegativeLogLikelihoodLoss` and `SoftmaxCrossEntropyLoss` (opsets 12/13), as in ONNX's
//! reference implementation: optional class weights, an ignored target index, and reductions
//! `none`, `sum` and `mean` (weighted mean when weights or an ignored index are in play).
//!
//! Sums run in `f64` in index order, so the result does not depend on the machine.

use tract_onnx::model::ParsingContext;
use tract_onnx::pb::NodeProto;
use tract_onnx::tract_hir::internal::*;

use crate::rust_op::{Kernel, boxed, from_f64, input_slots, to_f64, to_i64};

/// How the per-element losses are combined.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Reduction {
    None,
    Sum,
    Mean,
}

/// Both losses: `softmax` says whether the input is scores (log-softmax taken first) or
/// log-probabilities already.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Loss {
    softmax: bool,
    reduction: Reduction,
    ignore_index: Option<i64>,
    /// Position of the weight input among tract's inputs.
    weight: Option<usize>,
    /// Whether the log-probabilities are a second output (`SoftmaxCrossEntropyLoss` only).
    log_prob: bool,
}

/// Builds `NegativeLogLikelihoodLoss`.
pub fn nll(
    _ctx: &ParsingContext,
    node: &NodeProto,
) -> TractResult<(Box<dyn InferenceOp>, Vec<String>)> {
    boxed(Loss::parse(node, false)?)
}

/// Builds `SoftmaxCrossEntropyLoss`.
pub fn softmax_cross_entropy(
    _ctx: &ParsingContext,
    node: &NodeProto,
) -> TractResult<(Box<dyn InferenceOp>, Vec<String>)> {
    boxed(Loss::parse(node, true)?)
}

impl Loss {
    fn parse(node: &NodeProto, softmax: bool) -> TractResult<Loss> {
        let reduction = match node.get_attr_opt::<&str>("reduction")?.unwrap_or("mean") {
            "none" => Reduction::None,
            "sum" => Reduction::Sum,
            "mean" => Reduction::Mean,
            other => bail!("{}: unknown reduction {other:?}", node.op_type),
        };
        let slots = input_slots(node, 3);
        ensure!(
            slots[0] == Some(0) && slots[1] == Some(1),
            "{} needs its scores and target inputs",
            node.op_type
        );
        let log_prob = softmax && node.output.get(1).is_some_and(|name| !name.is_empty());
        Ok(Loss {
            softmax,
            reduction,
            ignore_index: node.get_attr_opt::<i64>("ignore_index")?,
            weight: slots[2],
            log_prob,
        })
    }
}

impl Kernel for Loss {
    fn name(&self) -> &'static str {
        if self.softmax {
            "SoftmaxCrossEntropyLoss"
        } else {
            "NegativeLogLikelihoodLoss"
        }
    }

    fn nboutputs(&self) -> usize {
        1 + self.log_prob as usize
    }

    fn output_facts(&self, inputs: &[&TypedFact]) -> TractResult<TVec<TypedFact>> {
        let (x, target) = (inputs[0], inputs[1]);
        ensure!(
            x.datum_type.is_float(),
            "{}: scores must be floats",
            self.name()
        );
        ensure!(
            target.datum_type.is_integer(),
            "{}: target must be integers",
            self.name()
        );
        ensure!(x.rank() >= 2, "{}: scores need a class axis", self.name());
        ensure!(
            target.rank() + 1 == x.rank(),
            "{}: target rank {} for scores of rank {}",
            self.name(),
            target.rank(),
            x.rank()
        );
        let loss = match self.reduction {
            Reduction::None => x.datum_type.fact(target.shape.clone()),
            _ => x.datum_type.scalar_fact(),
        };
        let mut facts = tvec![loss];
        if self.log_prob {
            facts.push(x.datum_type.fact(x.shape.clone()));
        }
        Ok(facts)
    }

    fn eval(&self, inputs: TVec<TValue>) -> TractResult<TVec<TValue>> {
        let (x, target) = (&inputs[0], &inputs[1]);
        let dt = x.datum_type();
        let shape = x.shape();
        ensure!(shape.len() >= 2 && target.shape().len() + 1 == shape.len());
        let (n, c) = (shape[0], shape[1]);
        let d: usize = shape[2..].iter().product();
        ensure!(
            target.shape()[0] == n && target.shape()[1..] == shape[2..],
            "{}: target shape {:?} does not fit scores {:?}",
            self.name(),
            target.shape(),
            shape
        );
        let mut scores = to_f64(x)?;
        if self.softmax {
            log_softmax_axis1(&mut scores, n, c, d);
        }
        let labels = to_i64(target)?;
        let weights = match self.weight {
            Some(ix) => {
                let w = to_f64(&inputs[ix])?;
                ensure!(
                    w.len() == c,
                    "{}: {} weights for {c} classes",
                    self.name(),
                    w.len()
                );
                Some(w)
            }
            None => None,
        };
        // ONNX's reference weighs each element when there are class weights or an ignored
        // index (NegativeLogLikelihoodLoss: an ignored index of -1 without weights excepted);
        // the mean is then over the weights' sum rather than the element count.
        let weighted = weights.is_some()
            || match self.ignore_index {
                None => false,
                Some(-1) => self.softmax,
                Some(_) => true,
            };
        let mut losses = Vec::with_capacity(n * d);
        let mut weight_sum = 0.0f64;
        for i in 0..n {
            for j in 0..d {
                let label = labels[i * d + j];
                if Some(label) == self.ignore_index {
                    losses.push(0.0);
                    continue;
                }
                let class = usize::try_from(label)
                    .ok()
                    .filter(|&k| k < c)
                    .with_context(|| format!("{}: target {label} outside 0..{c}", self.name()))?;
                let w = weights.as_ref().map_or(1.0, |w| w[class]);
                weight_sum += w;
                losses.push(-scores[(i * c + class) * d + j] * w);
            }
        }
        let loss = match self.reduction {
            Reduction::None => from_f64(dt, target.shape(), &losses)?,
            Reduction::Sum => from_f64(dt, &[], &[losses.iter().sum()])?,
            Reduction::Mean => {
                let total: f64 = losses.iter().sum();
                let count = if weighted { weight_sum } else { (n * d) as f64 };
                from_f64(dt, &[], &[total / count])?
            }
        };
        let mut outputs = tvec![loss];
        if self.log_prob {
            outputs.push(from_f64(dt, shape, &scores)?);
        }
        Ok(outputs)
    }
}

/// Replaces scores laid out `[n, c, d]` by their log-softmax over `c`.
fn log_softmax_axis1(values: &mut [f64], n: usize, c: usize, d: usize) {
    for i in 0..n {
        for j in 0..d {
            let at = |k: usize| (i * c + k) * d + j;
            let max = (0..c)
                .map(|k| values[at(k)])
                .fold(f64::NEG_INFINITY, f64::max);
            let sum: f64 = (0..c).map(|k| libm::exp(values[at(k)] - max)).sum();
            let log_sum = libm::log(sum);
            for k in 0..c {
                values[at(k)] = values[at(k)] - max - log_sum;
            }
        }
    }
}
