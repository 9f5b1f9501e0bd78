//! Building and slicing feature vectors: FeatureVectorizer (concatenates inputs into one
//! `[N, Σ inputdimensions]` f32 tensor, truncating or zero-padding each, as onnxruntime does)
//! and ArrayFeatureExtractor (selects features of the last axis by index).
//!
//! ArrayFeatureExtractor's output shape is tract's rule, `X.shape[..-1] + indices.shape`, except
//! that a scalar index counts as `[1]`, as in onnxruntime (skl2onnx's SVC graphs need the kept
//! axis; tract dropped it and could not load them). Elsewhere onnxruntime flattens the indices
//! and turns a 1-D input into `[1, k]`; keeping tract's rule there keeps the execution trace of
//! models that already have receipts (the iris MLP of docs/protocol.md §9) unchanged. The values
//! are the same either way.

use tract_onnx::model::ParsingContext;
use tract_onnx::pb::NodeProto;
use tract_onnx::prelude::*;
use tract_onnx::tract_hir::infer::InferenceOp;

use crate::attrs::Attrs;
use crate::error::{MlResult, input_error};
use crate::op::{Kernel, as_f32, check_numeric, inference_op, slice_of, tensor};

/// Largest total width a FeatureVectorizer may declare.
const MAX_WIDTH: usize = 1 << 24;

const VECTORIZER: &str = "FeatureVectorizer";
const EXTRACTOR: &str = "ArrayFeatureExtractor";

/// A parsed FeatureVectorizer.
#[derive(Clone, Debug)]
pub(crate) struct FeatureVectorizer {
    /// Width each input contributes.
    widths: Vec<usize>,
}

pub(crate) fn parse_vectorizer(
    _ctx: &ParsingContext,
    node: &NodeProto,
) -> TractResult<(Box<dyn InferenceOp>, Vec<String>)> {
    let attrs = Attrs::new(VECTORIZER, node);
    let dims = attrs.req_ints("inputdimensions")?;
    attrs.check_len(
        "inputdimensions",
        Some(dims.len()),
        node.input.len(),
        "input",
    )?;
    if dims.is_empty() {
        return Err(attrs.model_error("has no inputs").into());
    }
    let mut widths = Vec::with_capacity(dims.len());
    let mut total = 0usize;
    for (i, &d) in dims.iter().enumerate() {
        if d < 0 || d as u64 > MAX_WIDTH as u64 {
            return Err(attrs
                .error(&format!("inputdimensions[{i}]"), format!("is {d}"))
                .into());
        }
        total += d as usize;
        widths.push(d as usize);
    }
    if total > MAX_WIDTH {
        return Err(attrs
            .error(
                "inputdimensions",
                format!("add up to {total}, over {MAX_WIDTH}"),
            )
            .into());
    }
    Ok(inference_op(FeatureVectorizer { widths }))
}

/// Rows of a vectorizer input (`[C]` is one row).
fn rows_of(shape: &[TDim]) -> TDim {
    if shape.len() <= 1 {
        1.into()
    } else {
        shape[0].clone()
    }
}

impl Kernel for FeatureVectorizer {
    fn name(&self) -> &'static str {
        VECTORIZER
    }

    fn n_inputs(&self) -> usize {
        self.widths.len()
    }

    fn output_types(&self, inputs: &[DatumType]) -> MlResult<TVec<DatumType>> {
        for &dt in inputs {
            check_numeric(VECTORIZER, dt)?;
        }
        Ok(tvec!(DatumType::F32))
    }

    fn output_shapes(&self, inputs: &[TVec<TDim>]) -> MlResult<TVec<TVec<TDim>>> {
        Ok(tvec!(tvec!(
            rows_of(&inputs[0]),
            self.widths.iter().sum::<usize>().into()
        )))
    }

    fn eval(&self, inputs: &[&Tensor]) -> MlResult<TVec<Tensor>> {
        let n = match inputs[0].shape() {
            [] | [_] => 1,
            [n, ..] => *n,
        };
        let total: usize = self.widths.iter().sum();
        let mut out = vec![0f32; n * total];
        let mut offset = 0;
        for (k, (t, &width)) in inputs.iter().zip(&self.widths).enumerate() {
            let (rows, size) = match t.shape() {
                [] => (1, 1),
                [c] => (1, *c),
                [r, rest @ ..] => (*r, rest.iter().product()),
            };
            if rows != n {
                return Err(input_error(
                    VECTORIZER,
                    format!("input {k} has {rows} rows, input 0 has {n}"),
                ));
            }
            let x = as_f32(VECTORIZER, t)?;
            // Extra features are dropped, missing ones stay 0.
            let copy = size.min(width);
            for r in 0..n {
                out[r * total + offset..r * total + offset + copy]
                    .copy_from_slice(&x[r * size..r * size + copy]);
            }
            offset += width;
        }
        Ok(tvec!(tensor(&[n, total], out)?))
    }
}

/// A parsed ArrayFeatureExtractor (inputs: data, int64 indices).
#[derive(Clone, Debug)]
pub(crate) struct ArrayFeatureExtractor;

pub(crate) fn parse_extractor(
    _ctx: &ParsingContext,
    _node: &NodeProto,
) -> TractResult<(Box<dyn InferenceOp>, Vec<String>)> {
    Ok(inference_op(ArrayFeatureExtractor))
}

/// `outer` followed by the indices' shape, a scalar index counting as `[1]`.
fn output_shape<D: Clone + From<usize>>(outer: &[D], indices: &[D]) -> TVec<D> {
    let mut shape: TVec<D> = outer.iter().cloned().collect();
    if indices.is_empty() {
        shape.push(D::from(1));
    } else {
        shape.extend(indices.iter().cloned());
    }
    shape
}

fn select<T: Datum + Clone>(x: &Tensor, idx: &[usize], out_shape: &[usize]) -> MlResult<Tensor> {
    let v = slice_of::<T>(EXTRACTOR, x)?;
    let stride = *x.shape().last().expect("rank checked");
    let mut out = Vec::with_capacity(out_shape.iter().product());
    for row in v.chunks(stride.max(1)) {
        if stride == 0 {
            break;
        }
        out.extend(idx.iter().map(|&i| row[i].clone()));
    }
    tensor(out_shape, out)
}

impl Kernel for ArrayFeatureExtractor {
    fn name(&self) -> &'static str {
        EXTRACTOR
    }

    fn n_inputs(&self) -> usize {
        2
    }

    fn output_types(&self, inputs: &[DatumType]) -> MlResult<TVec<DatumType>> {
        if inputs[1] != DatumType::I64 {
            return Err(input_error(
                EXTRACTOR,
                format!("the indices must be int64, got {:?}", inputs[1]),
            ));
        }
        match inputs[0] {
            DatumType::F32
            | DatumType::F64
            | DatumType::I64
            | DatumType::I32
            | DatumType::String => Ok(tvec!(inputs[0])),
            other => Err(input_error(
                EXTRACTOR,
                format!("input type {other:?} is not supported"),
            )),
        }
    }

    fn output_shapes(&self, inputs: &[TVec<TDim>]) -> MlResult<TVec<TVec<TDim>>> {
        let Some((_, outer)) = inputs[0].split_last() else {
            return Err(input_error(
                EXTRACTOR,
                "the data must have at least one dimension",
            ));
        };
        Ok(tvec!(output_shape(outer, &inputs[1])))
    }

    fn eval(&self, inputs: &[&Tensor]) -> MlResult<TVec<Tensor>> {
        let (x, indices_t) = (inputs[0], inputs[1]);
        let shape = x.shape();
        let Some(&stride) = shape.last() else {
            return Err(input_error(
                EXTRACTOR,
                "the data must have at least one dimension",
            ));
        };
        let indices = slice_of::<i64>(EXTRACTOR, indices_t)?;
        if indices.is_empty() {
            return Err(input_error(EXTRACTOR, "no indices"));
        }
        let idx: Vec<usize> = indices
            .iter()
            .enumerate()
            .map(|(k, &i)| {
                if i >= 0 && (i as u64) < stride as u64 {
                    Ok(i as usize)
                } else {
                    Err(input_error(
                        EXTRACTOR,
                        format!("index {k} is {i}, out of range for {stride} features"),
                    ))
                }
            })
            .collect::<MlResult<_>>()?;
        let out_shape = output_shape(&shape[..shape.len() - 1], indices_t.shape());
        let y = match x.datum_type() {
            DatumType::F32 => select::<f32>(x, &idx, &out_shape)?,
            DatumType::F64 => select::<f64>(x, &idx, &out_shape)?,
            DatumType::I64 => select::<i64>(x, &idx, &out_shape)?,
            DatumType::I32 => select::<i32>(x, &idx, &out_shape)?,
            DatumType::String => select::<String>(x, &idx, &out_shape)?,
            other => {
                return Err(input_error(
                    EXTRACTOR,
                    format!("input type {other:?} is not supported"),
                ));
            }
        };
        Ok(tvec!(y))
    }
}
