//! Training optimizers of domain `ai.onnx.preview.training`: `Adagrad`, `Adam` and `Momentum`
//! (standard and Nesterov), one update step for each of several tensors, as in ONNX's
//! reference. Computed element-wise in `f64`.

use tract_onnx::model::ParsingContext;
use tract_onnx::pb::NodeProto;
use tract_onnx::tract_hir::internal::*;

use crate::rust_op::{Kernel, boxed, float_attr, from_f64, to_f64, to_i64};

/// The update rule and its coefficients (as `f64` bits).
#[derive(Debug, Clone, PartialEq, Eq)]
enum Rule {
    Adagrad {
        decay_factor: u64,
        epsilon: u64,
        norm_coefficient: u64,
    },
    Adam {
        alpha: u64,
        beta: u64,
        epsilon: u64,
        norm_coefficient: u64,
        norm_coefficient_post: u64,
    },
    Momentum {
        alpha: u64,
        beta: u64,
        norm_coefficient: u64,
        nesterov: bool,
    },
}

/// One optimizer node over `tensors` tensors.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Optimizer {
    rule: Rule,
    tensors: usize,
}

impl Rule {
    /// Inputs per optimized tensor (X, G, then the state), which is also the outputs per
    /// tensor plus one.
    fn per_tensor(&self) -> usize {
        match self {
            Rule::Adagrad { .. } | Rule::Momentum { .. } => 3,
            Rule::Adam { .. } => 4,
        }
    }
}

fn build(node: &NodeProto, rule: Rule) -> TractResult<(Box<dyn InferenceOp>, Vec<String>)> {
    let per = rule.per_tensor();
    let inputs = node.input.len();
    ensure!(
        inputs > 2 && (inputs - 2).is_multiple_of(per) && node.input.iter().all(|i| !i.is_empty()),
        "{}: {inputs} inputs",
        node.op_type
    );
    boxed(Optimizer {
        rule,
        tensors: (inputs - 2) / per,
    })
}

/// Builds `Adagrad`.
pub fn adagrad(
    _ctx: &ParsingContext,
    node: &NodeProto,
) -> TractResult<(Box<dyn InferenceOp>, Vec<String>)> {
    let rule = Rule::Adagrad {
        decay_factor: float_attr(node, "decay_factor", 0.0)?,
        epsilon: float_attr(node, "epsilon", 0.0)?,
        norm_coefficient: float_attr(node, "norm_coefficient", 0.0)?,
    };
    build(node, rule)
}

/// Builds `Adam`.
pub fn adam(
    _ctx: &ParsingContext,
    node: &NodeProto,
) -> TractResult<(Box<dyn InferenceOp>, Vec<String>)> {
    let rule = Rule::Adam {
        alpha: float_attr(node, "alpha", 0.9)?,
        beta: float_attr(node, "beta", 0.999)?,
        epsilon: float_attr(node, "epsilon", 0.0)?,
        norm_coefficient: float_attr(node, "norm_coefficient", 0.0)?,
        norm_coefficient_post: float_attr(node, "norm_coefficient_post", 0.0)?,
    };
    build(node, rule)
}

/// Builds `Momentum`.
pub fn momentum(
    _ctx: &ParsingContext,
    node: &NodeProto,
) -> TractResult<(Box<dyn InferenceOp>, Vec<String>)> {
    let nesterov = match node.get_attr::<&str>("mode")? {
        "standard" => false,
        "nesterov" => true,
        other => bail!("Momentum: unknown mode {other:?}"),
    };
    let rule = Rule::Momentum {
        alpha: float_attr(node, "alpha", 0.0)?,
        beta: float_attr(node, "beta", 0.0)?,
        norm_coefficient: float_attr(node, "norm_coefficient", 0.0)?,
        nesterov,
    };
    build(node, rule)
}

impl Kernel for Optimizer {
    fn name(&self) -> &'static str {
        match self.rule {
            Rule::Adagrad { .. } => "Adagrad",
            Rule::Adam { .. } => "Adam",
            Rule::Momentum { .. } => "Momentum",
        }
    }

    fn nboutputs(&self) -> usize {
        self.tensors * (self.rule.per_tensor() - 1)
    }

    fn output_facts(&self, inputs: &[&TypedFact]) -> TractResult<TVec<TypedFact>> {
        let n = self.tensors;
        // Outputs: new X for each tensor, then each state input (after G) in order.
        let mut facts = tvec![];
        for i in 0..n {
            facts.push(inputs[2 + i].without_value());
        }
        for group in 2..self.rule.per_tensor() {
            for i in 0..n {
                facts.push(inputs[2 + group * n + i].without_value());
            }
        }
        Ok(facts)
    }

    fn eval(&self, inputs: TVec<TValue>) -> TractResult<TVec<TValue>> {
        let n = self.tensors;
        let r = *to_f64(&inputs[0])?.first().context("empty learning rate")?;
        let t = *to_i64(&inputs[1])?.first().context("empty step count")? as f64;
        let f = f64::from_bits;
        let per = self.rule.per_tensor();
        let mut new: Vec<Vec<TValue>> = vec![vec![]; per - 1];
        for i in 0..n {
            let group = |g: usize| &inputs[2 + g * n + i];
            let x = to_f64(group(0))?;
            let g = to_f64(group(1))?;
            let s1 = to_f64(group(2))?;
            ensure!(
                g.len() == x.len() && s1.len() == x.len(),
                "{}: shapes differ",
                self.name()
            );
            let mut x_new = Vec::with_capacity(x.len());
            let mut s1_new = Vec::with_capacity(x.len());
            let mut s2_new = Vec::with_capacity(x.len());
            match self.rule {
                Rule::Adagrad {
                    decay_factor,
                    epsilon,
                    norm_coefficient,
                } => {
                    let r = r / (1.0 + t * f(decay_factor));
                    for k in 0..x.len() {
                        let g = f(norm_coefficient) * x[k] + g[k];
                        let h = s1[k] + g * g;
                        x_new.push(x[k] - r * g / (libm::sqrt(h) + f(epsilon)));
                        s1_new.push(h);
                    }
                }
                Rule::Momentum {
                    alpha,
                    beta,
                    norm_coefficient,
                    nesterov,
                } => {
                    let beta = if t > 0.0 { f(beta) } else { 1.0 };
                    for k in 0..x.len() {
                        let g = f(norm_coefficient) * x[k] + g[k];
                        let v = f(alpha) * s1[k] + beta * g;
                        let step = if nesterov { g + f(alpha) * v } else { v };
                        x_new.push(x[k] - r * step);
                        s1_new.push(v);
                    }
                }
                Rule::Adam {
                    alpha,
                    beta,
                    epsilon,
                    norm_coefficient,
                    norm_coefficient_post,
                } => {
                    let h_old = to_f64(group(3))?;
                    ensure!(h_old.len() == x.len(), "Adam: shapes differ");
                    let (a, b) = (f(alpha), f(beta));
                    let r = if t > 0.0 {
                        r * libm::sqrt(1.0 - libm::pow(b, t)) / (1.0 - libm::pow(a, t))
                    } else {
                        r
                    };
                    for k in 0..x.len() {
                        let g = f(norm_coefficient) * x[k] + g[k];
                        let v = a * s1[k] + (1.0 - a) * g;
                        let h = b * h_old[k] + (1.0 - b) * g * g;
                        let x1 = x[k] - r * (v / (libm::sqrt(h) + f(epsilon)));
                        x_new.push((1.0 - f(norm_coefficient_post)) * x1);
                        s1_new.push(v);
                        s2_new.push(h);
                    }
                }
            }
            let out =
                |values: &[f64], like: &TValue| from_f64(like.datum_type(), like.shape(), values);
            new[0].push(out(&x_new, group(0))?);
            new[1].push(out(&s1_new, group(2))?);
            if per == 4 {
                new[2].push(out(&s2_new, group(3))?);
            }
        }
        Ok(new.into_iter().flatten().collect())
    }
}
