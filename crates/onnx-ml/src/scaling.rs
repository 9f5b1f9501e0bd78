//! Feature scaling: Scaler (`y = (x - offset) * scale`, f32 out), Normalizer (rows scaled to unit MAX, L1 or L2
//! norm, f32 out) and Binarizer (`x > threshold`, same type out), as onnxruntime computes them.

use tract_onnx::model::ParsingContext;
use tract_onnx::pb::NodeProto;
use tract_onnx::prelude::*;
use tract_onnx::tract_hir::infer::InferenceOp;

use crate::attrs::Attrs;
use crate::error::{MlResult, input_error};
use crate::op::{Kernel, check_numeric, inference_op, slice_of, tensor};

/// The feature count onnxruntime scales and normalises along: the last dimension of a 1-D
/// input, else dimension 1.
fn stride(shape: &[usize]) -> usize {
    match shape {
        [c] => *c,
        [_, c, ..] => *c,
        [] => 0,
    }
}

/// A parsed Scaler.
#[derive(Clone, Debug)]
pub(crate) struct Scaler {
    offset: Vec<f32>,
    scale: Vec<f32>,
}

const SCALER: &str = "Scaler";

pub(crate) fn parse_scaler(
    _ctx: &ParsingContext,
    node: &NodeProto,
) -> TractResult<(Box<dyn InferenceOp>, Vec<String>)> {
    let attrs = Attrs::new(SCALER, node);
    let scale = attrs.floats("scale")?.unwrap_or_default().to_vec();
    if scale.is_empty() {
        return Err(attrs.error("scale", "is required and missing").into());
    }
    let offset = attrs.floats("offset")?.unwrap_or_default().to_vec();
    attrs.check_len("offset", Some(offset.len()), scale.len(), "value of scale")?;
    Ok(inference_op(Scaler { offset, scale }))
}

impl Kernel for Scaler {
    fn name(&self) -> &'static str {
        SCALER
    }

    fn output_types(&self, inputs: &[DatumType]) -> MlResult<TVec<DatumType>> {
        check_numeric(SCALER, inputs[0])?;
        Ok(tvec!(DatumType::F32))
    }

    fn output_shapes(&self, inputs: &[TVec<TDim>]) -> MlResult<TVec<TVec<TDim>>> {
        if inputs[0].is_empty() {
            return Err(input_error(
                SCALER,
                "the input must have at least one dimension",
            ));
        }
        Ok(tvec!(inputs[0].clone()))
    }

    fn eval(&self, inputs: &[&Tensor]) -> MlResult<TVec<Tensor>> {
        let x = inputs[0];
        let stride = stride(x.shape());
        let per_feature = self.scale.len() == stride;
        if !per_feature && self.scale.len() != 1 {
            return Err(input_error(
                SCALER,
                format!(
                    "scale and offset have {} values; the input has {stride} features (expected 1 or {stride})",
                    self.scale.len()
                ),
            ));
        }
        let k = |i: usize| if per_feature { i % stride } else { 0 };
        let out: Vec<f32> = match x.datum_type() {
            // In double for a double input, as onnxruntime does, then rounded.
            DatumType::F64 => slice_of::<f64>(SCALER, x)?
                .iter()
                .enumerate()
                .map(|(i, &v)| ((v - self.offset[k(i)] as f64) * self.scale[k(i)] as f64) as f32)
                .collect(),
            _ => crate::op::as_f32(SCALER, x)?
                .iter()
                .enumerate()
                .map(|(i, &v)| (v - self.offset[k(i)]) * self.scale[k(i)])
                .collect(),
        };
        Ok(tvec!(tensor(x.shape(), out)?))
    }
}

/// `norm` of a Normalizer.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Norm {
    Max,
    L1,
    L2,
}

/// A parsed Normalizer.
#[derive(Clone, Debug)]
pub(crate) struct Normalizer {
    norm: Norm,
}

const NORMALIZER: &str = "Normalizer";

pub(crate) fn parse_normalizer(
    _ctx: &ParsingContext,
    node: &NodeProto,
) -> TractResult<(Box<dyn InferenceOp>, Vec<String>)> {
    let attrs = Attrs::new(NORMALIZER, node);
    let norm = match attrs.string("norm")?.as_deref() {
        None | Some("MAX") => Norm::Max,
        Some("L1") => Norm::L1,
        Some("L2") => Norm::L2,
        Some(other) => {
            return Err(attrs
                .error("norm", format!("is {other:?}; expected MAX, L1 or L2"))
                .into());
        }
    };
    Ok(inference_op(Normalizer { norm }))
}

impl Normalizer {
    /// Normalises the values `x[offset + s * step]`, `s < stride`, into `out` at the same places.
    /// `sq` gives x² in the input's own type, rounded to f32 (onnxruntime squares before
    /// converting).
    fn group(
        &self,
        x: &[f32],
        sq: &[f32],
        out: &mut [f32],
        offset: usize,
        stride: usize,
        step: usize,
    ) {
        let idx = |s: usize| offset + s * step;
        match self.norm {
            Norm::Max => {
                let mut max = f32::MIN;
                for s in 0..stride {
                    if max < x[idx(s)] {
                        max = x[idx(s)];
                    }
                }
                for s in 0..stride {
                    out[idx(s)] = if max != 0.0 {
                        x[idx(s)] / max
                    } else {
                        x[idx(s)]
                    };
                }
            }
            Norm::L1 => {
                let mut sum = 0f32;
                for s in 0..stride {
                    sum += x[idx(s)].abs();
                }
                for s in 0..stride {
                    out[idx(s)] = if sum != 0.0 {
                        x[idx(s)] / sum
                    } else {
                        x[idx(s)]
                    };
                }
            }
            Norm::L2 => {
                let mut sum = 0f32;
                for s in 0..stride {
                    sum += sq[idx(s)];
                }
                for s in 0..stride {
                    let v = x[idx(s)];
                    out[idx(s)] = if sum == 0.0 {
                        v
                    } else if v < 0.0 {
                        -(sq[idx(s)] / sum).sqrt()
                    } else {
                        (sq[idx(s)] / sum).sqrt()
                    };
                }
            }
        }
    }
}

impl Kernel for Normalizer {
    fn name(&self) -> &'static str {
        NORMALIZER
    }

    fn output_types(&self, inputs: &[DatumType]) -> MlResult<TVec<DatumType>> {
        check_numeric(NORMALIZER, inputs[0])?;
        Ok(tvec!(DatumType::F32))
    }

    fn output_shapes(&self, inputs: &[TVec<TDim>]) -> MlResult<TVec<TVec<TDim>>> {
        if inputs[0].is_empty() {
            return Err(input_error(
                NORMALIZER,
                "the input must have at least one dimension",
            ));
        }
        Ok(tvec!(inputs[0].clone()))
    }

    fn eval(&self, inputs: &[&Tensor]) -> MlResult<TVec<Tensor>> {
        let t = inputs[0];
        let shape = t.shape();
        let x = crate::op::as_f32(NORMALIZER, t)?;
        let sq: Vec<f32> = if self.norm == Norm::L2 {
            match t.datum_type() {
                DatumType::F64 => slice_of::<f64>(NORMALIZER, t)?
                    .iter()
                    .map(|&v| (v * v) as f32)
                    .collect(),
                DatumType::I64 => slice_of::<i64>(NORMALIZER, t)?
                    .iter()
                    .map(|&v| v.wrapping_mul(v) as f32)
                    .collect(),
                DatumType::I32 => slice_of::<i32>(NORMALIZER, t)?
                    .iter()
                    .map(|&v| v.wrapping_mul(v) as f32)
                    .collect(),
                _ => x.iter().map(|&v| v * v).collect(),
            }
        } else {
            vec![]
        };
        let mut out = vec![0f32; x.len()];
        let stride = stride(shape);
        // Along dimension 1: groups of `stride` values `step` apart (none when a size is 0).
        if let Some(groups) = x.len().checked_div(stride) {
            let step: usize = if shape.len() > 1 {
                shape[2..].iter().product()
            } else {
                1
            };
            for n in 0..groups {
                let offset = (n % step) + (n / step) * (stride * step);
                self.group(&x, &sq, &mut out, offset, stride, step);
            }
        }
        Ok(tvec!(tensor(shape, out)?))
    }
}

/// A parsed Binarizer.
#[derive(Clone, Debug)]
pub(crate) struct Binarizer {
    threshold: f32,
}

const BINARIZER: &str = "Binarizer";

pub(crate) fn parse_binarizer(
    _ctx: &ParsingContext,
    node: &NodeProto,
) -> TractResult<(Box<dyn InferenceOp>, Vec<String>)> {
    let attrs = Attrs::new(BINARIZER, node);
    Ok(inference_op(Binarizer {
        threshold: attrs.float("threshold")?.unwrap_or(0.0),
    }))
}

impl Kernel for Binarizer {
    fn name(&self) -> &'static str {
        BINARIZER
    }

    fn output_types(&self, inputs: &[DatumType]) -> MlResult<TVec<DatumType>> {
        check_numeric(BINARIZER, inputs[0])?;
        Ok(tvec!(inputs[0]))
    }

    fn output_shapes(&self, inputs: &[TVec<TDim>]) -> MlResult<TVec<TVec<TDim>>> {
        Ok(tvec!(inputs[0].clone()))
    }

    fn eval(&self, inputs: &[&Tensor]) -> MlResult<TVec<Tensor>> {
        let x = inputs[0];
        let t = self.threshold;
        let nan = |i: usize| {
            input_error(
                BINARIZER,
                format!(
                    "input value {i} is NaN, which has no binary value (onnxruntime refuses it too)"
                ),
            )
        };
        let y = match x.datum_type() {
            DatumType::F32 => {
                let v = slice_of::<f32>(BINARIZER, x)?;
                if let Some(i) = v.iter().position(|v| v.is_nan()) {
                    return Err(nan(i));
                }
                tensor(
                    x.shape(),
                    v.iter().map(|&v| if v > t { 1f32 } else { 0.0 }).collect(),
                )?
            }
            DatumType::F64 => {
                let v = slice_of::<f64>(BINARIZER, x)?;
                if let Some(i) = v.iter().position(|v| v.is_nan()) {
                    return Err(nan(i));
                }
                tensor(
                    x.shape(),
                    v.iter()
                        .map(|&v| if v > t as f64 { 1f64 } else { 0.0 })
                        .collect(),
                )?
            }
            // Integers compare as f32, as C++ compares an integer with a float.
            DatumType::I64 => tensor(
                x.shape(),
                slice_of::<i64>(BINARIZER, x)?
                    .iter()
                    .map(|&v| ((v as f32) > t) as i64)
                    .collect(),
            )?,
            _ => tensor(
                x.shape(),
                slice_of::<i32>(BINARIZER, x)?
                    .iter()
                    .map(|&v| ((v as f32) > t) as i32)
                    .collect(),
            )?,
        };
        Ok(tvec!(y))
    }
}
