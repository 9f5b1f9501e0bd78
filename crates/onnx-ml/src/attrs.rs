//! Reading a node's attributes, typed and checked. Every attribute comes from the model file, so
//! types, lengths and values are checked here and reported as [`MlError`]s naming the node and
//! attribute; nothing read here is trusted further down.

use tract_onnx::pb::{AttributeProto, NodeProto, TensorProto};

use crate::error::{MlError, MlResult};

// ONNX `AttributeProto.AttributeType` codes.
const FLOAT: i32 = 1;
const INT: i32 = 2;
const STRING: i32 = 3;
const TENSOR: i32 = 4;
const FLOATS: i32 = 6;
const INTS: i32 = 7;
const STRINGS: i32 = 8;

// ONNX `TensorProto.DataType` codes.
const DT_FLOAT: i32 = 1;
const DT_UINT8: i32 = 2;
const DT_INT8: i32 = 3;
const DT_UINT16: i32 = 4;
const DT_INT16: i32 = 5;
const DT_INT32: i32 = 6;
const DT_INT64: i32 = 7;
const DT_STRING: i32 = 8;
const DT_FLOAT16: i32 = 10;
const DT_DOUBLE: i32 = 11;

/// The values of a tensor attribute, flattened (the ONNX-ML attributes that are tensors are all
/// read as 1-D lists).
#[derive(Clone, Debug, PartialEq)]
pub(crate) enum TensorValues {
    /// float32 (and float16, widened exactly).
    F32(Vec<f32>),
    /// float64.
    F64(Vec<f64>),
    /// int64 (and int32/int8, widened).
    I64(Vec<i64>),
    /// uint8.
    U8(Vec<u8>),
    /// UTF-8 strings.
    Str(Vec<String>),
}

impl TensorValues {
    /// Number of elements.
    pub(crate) fn len(&self) -> usize {
        match self {
            TensorValues::F32(v) => v.len(),
            TensorValues::F64(v) => v.len(),
            TensorValues::I64(v) => v.len(),
            TensorValues::U8(v) => v.len(),
            TensorValues::Str(v) => v.len(),
        }
    }

    /// The element type's name, for messages.
    pub(crate) fn type_name(&self) -> &'static str {
        match self {
            TensorValues::F32(_) => "float",
            TensorValues::F64(_) => "double",
            TensorValues::I64(_) => "int64",
            TensorValues::U8(_) => "uint8",
            TensorValues::Str(_) => "string",
        }
    }
}

/// A node's attributes, with the node's identity for error messages.
#[derive(Clone, Copy)]
pub(crate) struct Attrs<'a> {
    /// The operator being read.
    pub(crate) op: &'static str,
    node: &'a NodeProto,
}

impl<'a> Attrs<'a> {
    /// The attributes of `node`, read as operator `op`.
    pub(crate) fn new(op: &'static str, node: &'a NodeProto) -> Attrs<'a> {
        Attrs { op, node }
    }

    /// An error about attribute `attr`.
    pub(crate) fn error(&self, attr: &str, problem: impl Into<String>) -> MlError {
        MlError::Attribute {
            op: self.op,
            node: self.node.name.clone(),
            attr: attr.to_string(),
            problem: problem.into(),
        }
    }

    /// An error about the node as a whole.
    pub(crate) fn model_error(&self, problem: impl Into<String>) -> MlError {
        MlError::Model {
            op: self.op,
            node: self.node.name.clone(),
            problem: problem.into(),
        }
    }

    /// A refusal of something valid that Vouch does not implement.
    pub(crate) fn unsupported(&self, problem: impl Into<String>) -> MlError {
        MlError::Unsupported {
            op: self.op,
            node: self.node.name.clone(),
            problem: problem.into(),
        }
    }

    /// The attribute `name` if present, checked to have ONNX type `ty`. Old exporters leave the
    /// type unset; then the field that holds a value decides.
    fn get(&self, name: &str, ty: i32, ty_name: &str) -> MlResult<Option<&'a AttributeProto>> {
        let mut found = self.node.attribute.iter().filter(|a| a.name == name);
        let Some(attr) = found.next() else {
            return Ok(None);
        };
        if found.next().is_some() {
            return Err(self.error(name, "given more than once"));
        }
        if !attr.ref_attr_name.is_empty() {
            return Err(self.error(
                name,
                "refers to a function attribute, which is not supported here",
            ));
        }
        let actual = if attr.r#type != 0 {
            attr.r#type
        } else {
            inferred_type(attr)
        };
        if actual != ty {
            return Err(self.error(
                name,
                format!(
                    "must be {ty_name} (ONNX attribute type {ty}), the model gives type {actual}"
                ),
            ));
        }
        Ok(Some(attr))
    }

    /// An `INTS` attribute.
    pub(crate) fn ints(&self, name: &str) -> MlResult<Option<&'a [i64]>> {
        Ok(self
            .get(name, INTS, "a list of ints")?
            .map(|a| a.ints.as_slice()))
    }

    /// An `INTS` attribute that must be present.
    pub(crate) fn req_ints(&self, name: &str) -> MlResult<&'a [i64]> {
        self.ints(name)?
            .ok_or_else(|| self.error(name, "is required and missing"))
    }

    /// A `FLOATS` attribute.
    pub(crate) fn floats(&self, name: &str) -> MlResult<Option<&'a [f32]>> {
        Ok(self
            .get(name, FLOATS, "a list of floats")?
            .map(|a| a.floats.as_slice()))
    }

    /// A `STRINGS` attribute, each checked to be UTF-8.
    pub(crate) fn strings(&self, name: &str) -> MlResult<Option<Vec<String>>> {
        let Some(a) = self.get(name, STRINGS, "a list of strings")? else {
            return Ok(None);
        };
        a.strings
            .iter()
            .enumerate()
            .map(|(i, s)| {
                String::from_utf8(s.clone())
                    .map_err(|_| self.error(&format!("{name}[{i}]"), "is not valid UTF-8"))
            })
            .collect::<MlResult<Vec<_>>>()
            .map(Some)
    }

    /// An `INT` attribute.
    pub(crate) fn int(&self, name: &str) -> MlResult<Option<i64>> {
        Ok(self.get(name, INT, "an int")?.map(|a| a.i))
    }

    /// A `FLOAT` attribute.
    pub(crate) fn float(&self, name: &str) -> MlResult<Option<f32>> {
        Ok(self.get(name, FLOAT, "a float")?.map(|a| a.f))
    }

    /// A `STRING` attribute, checked to be UTF-8.
    pub(crate) fn string(&self, name: &str) -> MlResult<Option<String>> {
        let Some(a) = self.get(name, STRING, "a string")? else {
            return Ok(None);
        };
        String::from_utf8(a.s.clone())
            .map(Some)
            .map_err(|_| self.error(name, "is not valid UTF-8"))
    }

    /// A `TENSOR` attribute, flattened.
    pub(crate) fn tensor(&self, name: &str) -> MlResult<Option<TensorValues>> {
        Ok(self.typed_tensor(name)?.map(|(_, v)| v))
    }

    /// A `TENSOR` attribute, flattened, with its ONNX element type code (integers of every
    /// width are widened to int64 in the values).
    pub(crate) fn typed_tensor(&self, name: &str) -> MlResult<Option<(i32, TensorValues)>> {
        let Some(a) = self.get(name, TENSOR, "a tensor")? else {
            return Ok(None);
        };
        let t =
            a.t.as_ref()
                .ok_or_else(|| self.error(name, "is a tensor attribute without a tensor"))?;
        decode_tensor(t)
            .map(|v| Some((t.data_type, v)))
            .map_err(|problem| self.error(name, problem))
    }

    /// Checks that attribute `name`, if given, has `len` values (`what` says what they match).
    pub(crate) fn check_len(
        &self,
        name: &str,
        actual: Option<usize>,
        len: usize,
        what: &str,
    ) -> MlResult<()> {
        match actual {
            Some(n) if n != len => Err(self.error(
                name,
                format!("has {n} values, expected {len} (one per {what})"),
            )),
            _ => Ok(()),
        }
    }
}

/// The type an untyped attribute holds, by which field is set.
fn inferred_type(a: &AttributeProto) -> i32 {
    if !a.floats.is_empty() {
        FLOATS
    } else if !a.ints.is_empty() {
        INTS
    } else if !a.strings.is_empty() {
        STRINGS
    } else if a.t.is_some() {
        TENSOR
    } else if !a.s.is_empty() {
        STRING
    } else if a.i != 0 {
        INT
    } else if a.f != 0.0 {
        FLOAT
    } else {
        0
    }
}

/// Decodes a tensor attribute's values, from `raw_data` or the typed fields. Sizes are checked
/// against the data actually present, so nothing is allocated beyond what the file holds.
fn decode_tensor(t: &TensorProto) -> Result<TensorValues, String> {
    if t.data_location == Some(1) || !t.external_data.is_empty() {
        return Err("keeps its data in an external file, which is not supported".into());
    }
    let mut count: u64 = 1;
    for &d in &t.dims {
        if d < 0 {
            return Err(format!("has a negative dimension {d}"));
        }
        count = count.saturating_mul(d as u64);
    }
    let raw = &t.raw_data;
    let check = |n: usize| -> Result<(), String> {
        if n as u64 == count {
            Ok(())
        } else {
            Err(format!(
                "declares {count} elements (dims {:?}) but holds {n}",
                t.dims
            ))
        }
    };
    fn le_chunks<const N: usize>(raw: &[u8]) -> impl Iterator<Item = [u8; N]> + '_ {
        raw.chunks_exact(N)
            .map(|c| c.try_into().expect("chunks_exact yields N bytes"))
    }
    let values = match t.data_type {
        DT_FLOAT if !raw.is_empty() => {
            check_raw(raw.len(), 4)?;
            TensorValues::F32(le_chunks::<4>(raw).map(f32::from_le_bytes).collect())
        }
        DT_FLOAT => TensorValues::F32(t.float_data.clone()),
        DT_DOUBLE if !raw.is_empty() => {
            check_raw(raw.len(), 8)?;
            TensorValues::F64(le_chunks::<8>(raw).map(f64::from_le_bytes).collect())
        }
        DT_DOUBLE => TensorValues::F64(t.double_data.clone()),
        DT_FLOAT16 => {
            let bits: Vec<u16> = if !raw.is_empty() {
                check_raw(raw.len(), 2)?;
                le_chunks::<2>(raw).map(u16::from_le_bytes).collect()
            } else {
                t.int32_data.iter().map(|&v| v as u16).collect()
            };
            TensorValues::F32(bits.into_iter().map(f16_to_f32).collect())
        }
        DT_INT64 if !raw.is_empty() => {
            check_raw(raw.len(), 8)?;
            TensorValues::I64(le_chunks::<8>(raw).map(i64::from_le_bytes).collect())
        }
        DT_INT64 => TensorValues::I64(t.int64_data.clone()),
        DT_INT32 if !raw.is_empty() => {
            check_raw(raw.len(), 4)?;
            TensorValues::I64(
                le_chunks::<4>(raw)
                    .map(|b| i32::from_le_bytes(b) as i64)
                    .collect(),
            )
        }
        DT_INT32 => TensorValues::I64(t.int32_data.iter().map(|&v| v as i64).collect()),
        DT_INT8 if !raw.is_empty() => {
            TensorValues::I64(raw.iter().map(|&b| b as i8 as i64).collect())
        }
        DT_INT8 => TensorValues::I64(t.int32_data.iter().map(|&v| v as i8 as i64).collect()),
        DT_INT16 if !raw.is_empty() => {
            check_raw(raw.len(), 2)?;
            TensorValues::I64(
                le_chunks::<2>(raw)
                    .map(|b| i16::from_le_bytes(b) as i64)
                    .collect(),
            )
        }
        DT_INT16 => TensorValues::I64(t.int32_data.iter().map(|&v| v as i16 as i64).collect()),
        DT_UINT16 if !raw.is_empty() => {
            check_raw(raw.len(), 2)?;
            TensorValues::I64(
                le_chunks::<2>(raw)
                    .map(|b| u16::from_le_bytes(b) as i64)
                    .collect(),
            )
        }
        DT_UINT16 => TensorValues::I64(t.int32_data.iter().map(|&v| v as u16 as i64).collect()),
        DT_UINT8 if !raw.is_empty() => TensorValues::U8(raw.clone()),
        DT_UINT8 => TensorValues::U8(t.int32_data.iter().map(|&v| v as u8).collect()),
        DT_STRING => TensorValues::Str(
            t.string_data
                .iter()
                .map(|s| {
                    String::from_utf8(s.clone())
                        .map_err(|_| "holds a string that is not UTF-8".to_string())
                })
                .collect::<Result<_, _>>()?,
        ),
        other => {
            return Err(format!(
                "has element type {other}, which is not supported here"
            ));
        }
    };
    check(values.len())?;
    Ok(values)
}

fn check_raw(len: usize, size: usize) -> Result<(), String> {
    if len.is_multiple_of(size) {
        Ok(())
    } else {
        Err(format!(
            "raw data of {len} bytes is not a whole number of {size}-byte elements"
        ))
    }
}

/// IEEE binary16 bits to f32 (exact).
fn f16_to_f32(bits: u16) -> f32 {
    let sign = ((bits >> 15) as u32) << 31;
    let exp = ((bits >> 10) & 0x1f) as u32;
    let frac = (bits & 0x3ff) as u32;
    let magnitude = match (exp, frac) {
        (0, 0) => 0,
        (0, f) => {
            // Subnormal: f * 2^-24, exact in f32 (a power-of-two scaling of an 11-bit integer).
            let v = f as f32 * (1.0 / 16_777_216.0);
            return if sign != 0 { -v } else { v };
        }
        (0x1f, 0) => 0x7f80_0000,
        (0x1f, f) => 0x7f80_0000 | (f << 13),
        (e, f) => ((e + 127 - 15) << 23) | (f << 13),
    };
    f32::from_bits(sign | magnitude)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn f16_conversion_is_exact() {
        assert_eq!(f16_to_f32(0x3c00), 1.0);
        assert_eq!(f16_to_f32(0xc000), -2.0);
        assert_eq!(f16_to_f32(0x0001), 2f32.powi(-24));
        assert_eq!(f16_to_f32(0x8001), -(2f32.powi(-24)));
        assert_eq!(f16_to_f32(0x7c00), f32::INFINITY);
        assert!(f16_to_f32(0x7e00).is_nan());
        assert_eq!(f16_to_f32(0x7bff), 65504.0);
    }

    #[test]
    fn tensors_decode_from_raw_and_typed_fields_and_check_sizes() {
        let t = TensorProto {
            dims: vec![2],
            data_type: DT_DOUBLE,
            raw_data: [1.5f64.to_le_bytes(), (-2f64).to_le_bytes()].concat(),
            ..Default::default()
        };
        assert_eq!(
            decode_tensor(&t).unwrap(),
            TensorValues::F64(vec![1.5, -2.0])
        );
        let t = TensorProto {
            dims: vec![3],
            data_type: DT_FLOAT,
            float_data: vec![1.0, 2.0],
            ..Default::default()
        };
        assert!(decode_tensor(&t).unwrap_err().contains("declares 3"));
        let t = TensorProto {
            dims: vec![1],
            data_type: DT_DOUBLE,
            raw_data: vec![0; 7],
            ..Default::default()
        };
        assert!(decode_tensor(&t).is_err());
        let t = TensorProto {
            dims: vec![-1],
            data_type: DT_FLOAT,
            ..Default::default()
        };
        assert!(decode_tensor(&t).is_err());
    }
}
