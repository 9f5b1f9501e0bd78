//! Category encoders: OneHotEncoder (a `[..., categories]` f32 indicator per value) and
//! LabelEncoder (a lookup table between int64, string, float and double values, every opset's
//! attribute form), as onnxruntime computes them.

use std::collections::HashMap;

use tract_onnx::model::ParsingContext;
use tract_onnx::pb::NodeProto;
use tract_onnx::prelude::*;
use tract_onnx::tract_hir::infer::InferenceOp;

use crate::attrs::{Attrs, TensorValues};
use crate::error::{MlResult, input_error};
use crate::op::{Kernel, inference_op, slice_of, tensor};

/// A lookup key. Floats are keyed by their value widened to f64, with -0.0 folded into 0.0 and
/// every NaN into one (so a NaN key matches a NaN input).
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
enum Key {
    Int(i64),
    Text(String),
    Float(u64),
}

fn float_key(v: f64) -> Key {
    Key::Float(if v.is_nan() {
        f64::NAN.to_bits()
    } else if v == 0.0 {
        0
    } else {
        v.to_bits()
    })
}

/// The keys of a tensor's elements, by element type.
fn keys_of(op: &'static str, t: &Tensor) -> MlResult<Vec<Key>> {
    Ok(match t.datum_type() {
        DatumType::I64 => slice_of::<i64>(op, t)?
            .iter()
            .map(|&v| Key::Int(v))
            .collect(),
        DatumType::I32 => slice_of::<i32>(op, t)?
            .iter()
            .map(|&v| Key::Int(v as i64))
            .collect(),
        DatumType::I16 => slice_of::<i16>(op, t)?
            .iter()
            .map(|&v| Key::Int(v as i64))
            .collect(),
        DatumType::I8 => slice_of::<i8>(op, t)?
            .iter()
            .map(|&v| Key::Int(v as i64))
            .collect(),
        DatumType::U16 => slice_of::<u16>(op, t)?
            .iter()
            .map(|&v| Key::Int(v as i64))
            .collect(),
        DatumType::U8 => slice_of::<u8>(op, t)?
            .iter()
            .map(|&v| Key::Int(v as i64))
            .collect(),
        DatumType::String => slice_of::<String>(op, t)?
            .iter()
            .map(|s| Key::Text(s.clone()))
            .collect(),
        DatumType::F32 => slice_of::<f32>(op, t)?
            .iter()
            .map(|&v| float_key(v as f64))
            .collect(),
        DatumType::F64 => slice_of::<f64>(op, t)?
            .iter()
            .map(|&v| float_key(v))
            .collect(),
        other => {
            return Err(input_error(
                op,
                format!("input type {other:?} is not supported"),
            ));
        }
    })
}

const ONE_HOT: &str = "OneHotEncoder";
const LABEL: &str = "LabelEncoder";

/// A parsed OneHotEncoder.
#[derive(Clone, Debug)]
pub(crate) struct OneHotEncoder {
    /// Category -> output position (the last position when a category repeats).
    positions: HashMap<Key, usize>,
    count: usize,
    strings: bool,
    /// Unknown categories give all zeros (else they are an error).
    zeros: bool,
}

pub(crate) fn parse_one_hot(
    _ctx: &ParsingContext,
    node: &NodeProto,
) -> TractResult<(Box<dyn InferenceOp>, Vec<String>)> {
    let attrs = Attrs::new(ONE_HOT, node);
    let ints = attrs.ints("cats_int64s")?.filter(|v| !v.is_empty());
    let strings = attrs.strings("cats_strings")?.filter(|v| !v.is_empty());
    let (keys, is_strings): (Vec<Key>, bool) = match (ints, strings) {
        (Some(i), None) => (i.iter().map(|&v| Key::Int(v)).collect(), false),
        (None, Some(s)) => (s.into_iter().map(Key::Text).collect(), true),
        _ => {
            return Err(attrs
                .model_error(
                    "needs exactly one non-empty list of categories: cats_int64s or cats_strings",
                )
                .into());
        }
    };
    let count = keys.len();
    let positions = keys.into_iter().enumerate().map(|(i, k)| (k, i)).collect();
    Ok(inference_op(OneHotEncoder {
        positions,
        count,
        strings: is_strings,
        zeros: attrs.int("zeros")?.unwrap_or(1) != 0,
    }))
}

impl Kernel for OneHotEncoder {
    fn name(&self) -> &'static str {
        ONE_HOT
    }

    fn output_types(&self, inputs: &[DatumType]) -> MlResult<TVec<DatumType>> {
        let ok = if self.strings {
            inputs[0] == DatumType::String
        } else {
            matches!(
                inputs[0],
                DatumType::I64 | DatumType::I32 | DatumType::F32 | DatumType::F64
            )
        };
        if !ok {
            return Err(input_error(
                ONE_HOT,
                format!(
                    "input type {:?} does not match the {} categories",
                    inputs[0],
                    if self.strings { "string" } else { "int64" }
                ),
            ));
        }
        Ok(tvec!(DatumType::F32))
    }

    fn output_shapes(&self, inputs: &[TVec<TDim>]) -> MlResult<TVec<TVec<TDim>>> {
        let mut shape = inputs[0].clone();
        shape.push(self.count.into());
        Ok(tvec!(shape))
    }

    fn eval(&self, inputs: &[&Tensor]) -> MlResult<TVec<Tensor>> {
        let x = inputs[0];
        // Numbers are truncated to int64 as C++'s cast does; values no int64 can hold (NaN,
        // infinities, out of range) match no category.
        let trunc = |v: f64| -> Option<Key> {
            (-9.223_372_036_854_776e18..9.223_372_036_854_776e18)
                .contains(&v)
                .then(|| Key::Int(v.trunc() as i64))
        };
        let keys: Vec<Option<Key>> = match x.datum_type() {
            DatumType::F32 => slice_of::<f32>(ONE_HOT, x)?
                .iter()
                .map(|&v| trunc(v as f64))
                .collect(),
            DatumType::F64 => slice_of::<f64>(ONE_HOT, x)?
                .iter()
                .map(|&v| trunc(v))
                .collect(),
            DatumType::I32 => slice_of::<i32>(ONE_HOT, x)?
                .iter()
                .map(|&v| Some(Key::Int(v as i64)))
                .collect(),
            _ => keys_of(ONE_HOT, x)?.into_iter().map(Some).collect(),
        };
        let mut out = vec![0f32; keys.len() * self.count];
        for (i, key) in keys.iter().enumerate() {
            match key.as_ref().and_then(|k| self.positions.get(k)) {
                Some(&p) => out[i * self.count + p] = 1.0,
                None if self.zeros => {}
                None => {
                    return Err(input_error(
                        ONE_HOT,
                        format!("input value {i} is not a known category (and zeros = 0)"),
                    ));
                }
            }
        }
        let mut shape = x.shape().to_vec();
        shape.push(self.count);
        Ok(tvec!(tensor(&shape, out)?))
    }
}

/// LabelEncoder keys or values (integers of any width held as i64, with their type).
#[derive(Clone, Debug)]
enum Outputs {
    Int(Vec<i64>, DatumType),
    Text(Vec<String>),
    F32(Vec<f32>),
    F64(Vec<f64>),
}

impl Outputs {
    fn len(&self) -> usize {
        match self {
            Outputs::Int(v, _) => v.len(),
            Outputs::Text(v) => v.len(),
            Outputs::F32(v) => v.len(),
            Outputs::F64(v) => v.len(),
        }
    }

    fn datum_type(&self) -> DatumType {
        match self {
            Outputs::Int(_, dt) => *dt,
            Outputs::Text(_) => DatumType::String,
            Outputs::F32(_) => DatumType::F32,
            Outputs::F64(_) => DatumType::F64,
        }
    }

    /// `picks[i]` of these values, or `default` (a one-element list of the same type) for `None`.
    fn gather(
        &self,
        default: &Outputs,
        picks: &[Option<usize>],
        shape: &[usize],
    ) -> MlResult<Tensor> {
        fn take<T: Datum + Clone>(
            v: &[T],
            d: &[T],
            picks: &[Option<usize>],
            shape: &[usize],
        ) -> MlResult<Tensor> {
            tensor(
                shape,
                picks
                    .iter()
                    .map(|p| p.map_or_else(|| d[0].clone(), |i| v[i].clone()))
                    .collect(),
            )
        }
        fn narrow<T: Datum + Clone>(v: &[i64], f: impl Fn(i64) -> T) -> Vec<T> {
            v.iter().map(|&x| f(x)).collect()
        }
        match (self, default) {
            // The values came from their type, so narrowing them back is exact.
            (Outputs::Int(v, dt), Outputs::Int(d, _)) => match dt {
                DatumType::I32 => take(
                    &narrow(v, |x| x as i32),
                    &narrow(d, |x| x as i32),
                    picks,
                    shape,
                ),
                DatumType::I16 => take(
                    &narrow(v, |x| x as i16),
                    &narrow(d, |x| x as i16),
                    picks,
                    shape,
                ),
                DatumType::I8 => take(
                    &narrow(v, |x| x as i8),
                    &narrow(d, |x| x as i8),
                    picks,
                    shape,
                ),
                DatumType::U16 => take(
                    &narrow(v, |x| x as u16),
                    &narrow(d, |x| x as u16),
                    picks,
                    shape,
                ),
                DatumType::U8 => take(
                    &narrow(v, |x| x as u8),
                    &narrow(d, |x| x as u8),
                    picks,
                    shape,
                ),
                _ => take(v, d, picks, shape),
            },
            (Outputs::Text(v), Outputs::Text(d)) => take(v, d, picks, shape),
            (Outputs::F32(v), Outputs::F32(d)) => take(v, d, picks, shape),
            (Outputs::F64(v), Outputs::F64(d)) => take(v, d, picks, shape),
            _ => Err(input_error(
                LABEL,
                "the default value's type differs from the values'",
            )),
        }
    }
}

/// A parsed LabelEncoder.
#[derive(Clone, Debug)]
pub(crate) struct LabelEncoder {
    /// Key -> position in `values`.
    table: HashMap<Key, usize>,
    key_type: DatumType,
    values: Outputs,
    default: Outputs,
}

pub(crate) fn parse_label(
    _ctx: &ParsingContext,
    node: &NodeProto,
) -> TractResult<(Box<dyn InferenceOp>, Vec<String>)> {
    Ok(inference_op(LabelEncoder::read(&Attrs::new(LABEL, node))?))
}

impl LabelEncoder {
    fn read(attrs: &Attrs) -> MlResult<LabelEncoder> {
        if let Some(classes) = attrs.strings("classes_strings")? {
            return Err(attrs.unsupported(format!(
                "the opset-1 form (classes_strings, {} classes), whose output type depends on \
                 the input's; re-export with ai.onnx.ml opset 2 or later (keys_*/values_*)",
                classes.len()
            )));
        }
        let keys = one_of(attrs, "keys")?;
        let values = one_of(attrs, "values")?;
        attrs.check_len(values.1, Some(values.0.len()), keys.0.len(), "key")?;
        let (keys, key_type) = match keys.0 {
            Outputs::Int(v, dt) => (v.into_iter().map(Key::Int).collect::<Vec<_>>(), dt),
            Outputs::Text(v) => (v.into_iter().map(Key::Text).collect(), DatumType::String),
            Outputs::F32(v) => (
                v.into_iter().map(|f| float_key(f as f64)).collect(),
                DatumType::F32,
            ),
            Outputs::F64(v) => (v.into_iter().map(float_key).collect(), DatumType::F64),
        };
        let values = values.0;
        let default = match attrs.typed_tensor("default_tensor")? {
            Some((code, t)) => {
                let d = outputs_of(attrs, "default_tensor", code, t)?;
                if d.len() != 1 || d.datum_type() != values.datum_type() {
                    return Err(
                        attrs.error("default_tensor", "must hold one value of the values' type")
                    );
                }
                d
            }
            None => match values {
                Outputs::Int(_, dt) => {
                    Outputs::Int(vec![attrs.int("default_int64")?.unwrap_or(-1)], dt)
                }
                Outputs::Text(_) => Outputs::Text(vec![
                    attrs
                        .string("default_string")?
                        .unwrap_or_else(|| "_Unused".into()),
                ]),
                Outputs::F32(_) => {
                    Outputs::F32(vec![attrs.float("default_float")?.unwrap_or(-0.0)])
                }
                Outputs::F64(_) => {
                    Outputs::F64(vec![attrs.float("default_float")?.unwrap_or(-0.0) as f64])
                }
            },
        };
        // The first of repeated keys wins, as in onnxruntime.
        let mut table = HashMap::with_capacity(keys.len());
        for (i, k) in keys.into_iter().enumerate() {
            table.entry(k).or_insert(i);
        }
        Ok(LabelEncoder {
            table,
            key_type,
            values,
            default,
        })
    }
}

/// Reads `{prefix}_int64s`, `{prefix}_strings`, `{prefix}_floats` or `{prefix}_tensor`: exactly one.
fn one_of(attrs: &Attrs, prefix: &str) -> MlResult<(Outputs, &'static str)> {
    let mut found: Vec<(Outputs, &'static str)> = vec![];
    let name = |suffix: &str| -> &'static str {
        match (prefix, suffix) {
            ("keys", "int64s") => "keys_int64s",
            ("keys", "strings") => "keys_strings",
            ("keys", "floats") => "keys_floats",
            ("keys", _) => "keys_tensor",
            (_, "int64s") => "values_int64s",
            (_, "strings") => "values_strings",
            (_, "floats") => "values_floats",
            _ => "values_tensor",
        }
    };
    if let Some(v) = attrs.ints(name("int64s"))? {
        found.push((Outputs::Int(v.to_vec(), DatumType::I64), name("int64s")));
    }
    if let Some(v) = attrs.strings(name("strings"))? {
        found.push((Outputs::Text(v), name("strings")));
    }
    if let Some(v) = attrs.floats(name("floats"))? {
        found.push((Outputs::F32(v.to_vec()), name("floats")));
    }
    if let Some((code, t)) = attrs.typed_tensor(name("tensor"))? {
        found.push((outputs_of(attrs, name("tensor"), code, t)?, name("tensor")));
    }
    if found.len() != 1 {
        return Err(attrs.model_error(format!(
            "needs exactly one of {prefix}_int64s, {prefix}_strings, {prefix}_floats and {prefix}_tensor; it has {}",
            found.len()
        )));
    }
    Ok(found.pop().expect("one found"))
}

/// A tensor attribute's values as LabelEncoder keys or values; `code` is its ONNX type.
fn outputs_of(attrs: &Attrs, name: &str, code: i32, t: TensorValues) -> MlResult<Outputs> {
    Ok(match t {
        TensorValues::I64(v) => Outputs::Int(
            v,
            match code {
                6 => DatumType::I32,
                5 => DatumType::I16,
                3 => DatumType::I8,
                4 => DatumType::U16,
                _ => DatumType::I64,
            },
        ),
        TensorValues::U8(v) => Outputs::Int(v.into_iter().map(i64::from).collect(), DatumType::U8),
        TensorValues::Str(v) => Outputs::Text(v),
        TensorValues::F32(_) if code == 10 => {
            return Err(attrs.error(name, "holds float16 values, which are not supported here"));
        }
        TensorValues::F32(v) => Outputs::F32(v),
        TensorValues::F64(v) => Outputs::F64(v),
    })
}

impl Kernel for LabelEncoder {
    fn name(&self) -> &'static str {
        LABEL
    }

    fn output_types(&self, inputs: &[DatumType]) -> MlResult<TVec<DatumType>> {
        if inputs[0] != self.key_type {
            return Err(input_error(
                LABEL,
                format!(
                    "the keys are {:?}, so the input must be too, got {:?}",
                    self.key_type, inputs[0]
                ),
            ));
        }
        Ok(tvec!(self.values.datum_type()))
    }

    fn output_shapes(&self, inputs: &[TVec<TDim>]) -> MlResult<TVec<TVec<TDim>>> {
        Ok(tvec!(inputs[0].clone()))
    }

    fn eval(&self, inputs: &[&Tensor]) -> MlResult<TVec<Tensor>> {
        let x = inputs[0];
        self.output_types(&[x.datum_type()])?;
        let picks: Vec<Option<usize>> = keys_of(LABEL, x)?
            .iter()
            .map(|k| self.table.get(k).copied())
            .collect();
        Ok(tvec!(self.values.gather(
            &self.default,
            &picks,
            x.shape()
        )?))
    }
}
