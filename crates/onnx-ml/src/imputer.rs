//! Imputer: replaces the values equal to `replaced_value_*` (NaN matches NaN) with
//! `imputed_value_*`, one value for all features or one per feature. float or int64, same type
//! out, as in onnxruntime.

use tract_onnx::model::ParsingContext;
use tract_onnx::pb::NodeProto;
use tract_onnx::prelude::*;
use tract_onnx::tract_hir::infer::InferenceOp;

use crate::attrs::Attrs;
use crate::error::{MlResult, input_error};
use crate::op::{Kernel, inference_op, slice_of, tensor};

/// What to impute.
#[derive(Clone, Debug)]
enum Values {
    F32 { replaced: f32, imputed: Vec<f32> },
    I64 { replaced: i64, imputed: Vec<i64> },
}

/// A parsed Imputer.
#[derive(Clone, Debug)]
pub(crate) struct Imputer {
    values: Values,
}

const OP: &str = "Imputer";

pub(crate) fn parse(
    _ctx: &ParsingContext,
    node: &NodeProto,
) -> TractResult<(Box<dyn InferenceOp>, Vec<String>)> {
    let attrs = Attrs::new(OP, node);
    let floats = attrs
        .floats("imputed_value_floats")?
        .filter(|v| !v.is_empty());
    let ints = attrs
        .ints("imputed_value_int64s")?
        .filter(|v| !v.is_empty());
    let values = match (floats, ints) {
        (Some(f), None) => Values::F32 {
            replaced: attrs.float("replaced_value_float")?.unwrap_or(0.0),
            imputed: f.to_vec(),
        },
        (None, Some(i)) => Values::I64 {
            replaced: attrs.int("replaced_value_int64")?.unwrap_or(0),
            imputed: i.to_vec(),
        },
        _ => {
            return Err(attrs
                .model_error("needs exactly one of imputed_value_floats and imputed_value_int64s")
                .into());
        }
    };
    Ok(inference_op(Imputer { values }))
}

/// Index of the imputed value for element `i`: per feature when there is one per feature.
fn pick(n_values: usize, stride: usize, i: usize) -> usize {
    if n_values == stride { i % stride } else { 0 }
}

impl Kernel for Imputer {
    fn name(&self) -> &'static str {
        OP
    }

    fn output_types(&self, inputs: &[DatumType]) -> MlResult<TVec<DatumType>> {
        let want = match self.values {
            Values::F32 { .. } => DatumType::F32,
            Values::I64 { .. } => DatumType::I64,
        };
        if inputs[0] != want {
            return Err(input_error(
                OP,
                format!(
                    "this Imputer's values are {want:?}, so its input must be too, got {:?}",
                    inputs[0]
                ),
            ));
        }
        Ok(tvec!(want))
    }

    fn output_shapes(&self, inputs: &[TVec<TDim>]) -> MlResult<TVec<TVec<TDim>>> {
        if inputs[0].is_empty() {
            return Err(input_error(
                OP,
                "the input must have at least one dimension",
            ));
        }
        Ok(tvec!(inputs[0].clone()))
    }

    fn eval(&self, inputs: &[&Tensor]) -> MlResult<TVec<Tensor>> {
        let x = inputs[0];
        let stride = match x.shape() {
            [c] => *c,
            [_, c, ..] => *c,
            [] => {
                return Err(input_error(
                    OP,
                    "the input must have at least one dimension",
                ));
            }
        };
        let check = |n: usize| {
            if n == 1 || n == stride {
                Ok(())
            } else {
                Err(input_error(
                    OP,
                    format!("{n} imputed values for {stride} features (expected 1 or {stride})"),
                ))
            }
        };
        let y = match &self.values {
            Values::F32 { replaced, imputed } => {
                check(imputed.len())?;
                let v = slice_of::<f32>(OP, x)?;
                let out = v
                    .iter()
                    .enumerate()
                    .map(|(i, &v)| {
                        if (v.is_nan() && replaced.is_nan()) || v == *replaced {
                            imputed[pick(imputed.len(), stride, i)]
                        } else {
                            v
                        }
                    })
                    .collect();
                tensor(x.shape(), out)?
            }
            Values::I64 { replaced, imputed } => {
                check(imputed.len())?;
                let v = slice_of::<i64>(OP, x)?;
                let out = v
                    .iter()
                    .enumerate()
                    .map(|(i, &v)| {
                        if v == *replaced {
                            imputed[pick(imputed.len(), stride, i)]
                        } else {
                            v
                        }
                    })
                    .collect();
                tensor(x.shape(), out)?
            }
        };
        Ok(tvec!(y))
    }
}
