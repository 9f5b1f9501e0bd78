//! ONNX `TensorProto` files (`.pb`), as in ONNX's own backend test data.
//!
//! Only the fields needed to rebuild a dense tensor are decoded; external data and segments are
//! refused. The message definition follows onnx/onnx.proto3 (field numbers are the contract).

use prost::Message;

use super::{DType, Limits, Tensor, TensorError};

#[derive(Clone, PartialEq, Message)]
struct TensorProto {
    #[prost(int64, repeated, tag = "1")]
    dims: Vec<i64>,
    #[prost(int32, tag = "2")]
    data_type: i32,
    #[prost(message, optional, tag = "3")]
    segment: Option<Segment>,
    #[prost(float, repeated, tag = "4")]
    float_data: Vec<f32>,
    #[prost(int32, repeated, tag = "5")]
    int32_data: Vec<i32>,
    #[prost(bytes = "vec", repeated, tag = "6")]
    string_data: Vec<Vec<u8>>,
    #[prost(int64, repeated, tag = "7")]
    int64_data: Vec<i64>,
    #[prost(string, tag = "8")]
    name: String,
    #[prost(bytes = "vec", tag = "9")]
    raw_data: Vec<u8>,
    #[prost(double, repeated, tag = "10")]
    double_data: Vec<f64>,
    #[prost(uint64, repeated, tag = "11")]
    uint64_data: Vec<u64>,
    #[prost(message, repeated, tag = "13")]
    external_data: Vec<StringStringEntry>,
    #[prost(int32, tag = "14")]
    data_location: i32,
}

#[derive(Clone, PartialEq, Message)]
struct Segment {
    #[prost(int64, tag = "1")]
    begin: i64,
    #[prost(int64, tag = "2")]
    end: i64,
}

#[derive(Clone, PartialEq, Message)]
struct StringStringEntry {
    #[prost(string, tag = "1")]
    key: String,
    #[prost(string, tag = "2")]
    value: String,
}

fn err(msg: impl Into<String>) -> TensorError {
    TensorError::Format(format!("TensorProto: {}", msg.into()))
}

/// Reads a serialized `TensorProto`; returns its name (possibly empty) and the tensor.
pub fn from_tensor_proto(bytes: &[u8], limits: &Limits) -> Result<(String, Tensor), TensorError> {
    // A protobuf is at most a few bytes of framing per element larger than its payload.
    if bytes.len() > limits.max_bytes.saturating_mul(2).saturating_add(1 << 20) {
        return Err(err(format!("{} bytes is over the size limit", bytes.len())));
    }
    let p = TensorProto::decode(bytes).map_err(|e| err(format!("not a valid protobuf: {e}")))?;
    if p.data_location == 1 || !p.external_data.is_empty() {
        return Err(err(
            "external data is not supported; embed the data in the file",
        ));
    }
    if p.segment.is_some() {
        return Err(err("segmented tensors are not supported"));
    }
    let code = u32::try_from(p.data_type).map_err(|_| err(format!("data_type {}", p.data_type)))?;
    let dtype = DType::from_code(code).ok_or(TensorError::UnsupportedDTypeCode(code))?;
    let shape = p
        .dims
        .iter()
        .map(|&d| u64::try_from(d).map_err(|_| err(format!("negative dimension {d}"))))
        .collect::<Result<Vec<_>, _>>()?;
    let count = super::checked_element_count(dtype, &shape, limits)? as usize;

    if dtype == DType::String {
        let strings = p
            .string_data
            .into_iter()
            .enumerate()
            .map(|(i, b)| String::from_utf8(b).map_err(|_| TensorError::InvalidUtf8(i)))
            .collect::<Result<Vec<_>, _>>()?;
        return Ok((p.name, Tensor::from_strings(shape, strings, limits)?));
    }
    let bytes = if !p.raw_data.is_empty() || count == 0 {
        // raw_data is little-endian, row-major: the canonical payload already.
        p.raw_data
    } else {
        typed_fields_to_le(dtype, &p, count)?
    };
    Ok((p.name, Tensor::from_le_bytes(dtype, shape, bytes, limits)?))
}

/// Converts the typed repeated fields to the little-endian payload, per onnx.proto's rules on
/// which field carries which type.
fn typed_fields_to_le(dtype: DType, p: &TensorProto, count: usize) -> Result<Vec<u8>, TensorError> {
    let mut out = Vec::with_capacity(count * dtype.size().unwrap_or(1));
    let narrow = |v: i32, out: &mut Vec<u8>| -> Result<(), TensorError> {
        match dtype {
            DType::I8 => out.extend_from_slice(
                &i8::try_from(v)
                    .map_err(|_| err(format!("{v} is not an int8")))?
                    .to_le_bytes(),
            ),
            DType::U8 => out.extend_from_slice(
                &u8::try_from(v)
                    .map_err(|_| err(format!("{v} is not a uint8")))?
                    .to_le_bytes(),
            ),
            DType::I16 => out.extend_from_slice(
                &i16::try_from(v)
                    .map_err(|_| err(format!("{v} is not an int16")))?
                    .to_le_bytes(),
            ),
            DType::U16 => out.extend_from_slice(
                &u16::try_from(v)
                    .map_err(|_| err(format!("{v} is not a uint16")))?
                    .to_le_bytes(),
            ),
            // float16 values travel as their bit patterns in int32_data.
            DType::F16 => out.extend_from_slice(
                &u16::try_from(v)
                    .map_err(|_| err(format!("{v} is not float16 bits")))?
                    .to_le_bytes(),
            ),
            DType::Bool => out.push(
                u8::try_from(v)
                    .ok()
                    .filter(|b| *b <= 1)
                    .ok_or_else(|| err(format!("{v} is not a bool")))?,
            ),
            DType::I32 => out.extend_from_slice(&v.to_le_bytes()),
            _ => unreachable!("only int32_data types reach here"),
        }
        Ok(())
    };
    match dtype {
        DType::F32 => p
            .float_data
            .iter()
            .for_each(|v| out.extend_from_slice(&v.to_le_bytes())),
        DType::F64 => p
            .double_data
            .iter()
            .for_each(|v| out.extend_from_slice(&v.to_le_bytes())),
        DType::I64 => p
            .int64_data
            .iter()
            .for_each(|v| out.extend_from_slice(&v.to_le_bytes())),
        DType::U64 => p
            .uint64_data
            .iter()
            .for_each(|v| out.extend_from_slice(&v.to_le_bytes())),
        DType::U32 => {
            for &v in &p.uint64_data {
                let v = u32::try_from(v).map_err(|_| err(format!("{v} is not a uint32")))?;
                out.extend_from_slice(&v.to_le_bytes());
            }
        }
        DType::I8 | DType::U8 | DType::I16 | DType::U16 | DType::F16 | DType::Bool | DType::I32 => {
            for &v in &p.int32_data {
                narrow(v, &mut out)?;
            }
        }
        DType::String => unreachable!("strings handled by the caller"),
    }
    Ok(out)
}

/// Serializes a tensor as a `TensorProto` with `raw_data` (strings in `string_data`).
pub fn to_tensor_proto(name: &str, t: &Tensor) -> Vec<u8> {
    let p = TensorProto {
        dims: t.shape().iter().map(|&d| d as i64).collect(),
        data_type: t.dtype().code() as i32,
        name: name.to_string(),
        raw_data: t.as_le_bytes().map(<[u8]>::to_vec).unwrap_or_default(),
        string_data: t
            .as_strings()
            .map(|s| s.iter().map(|s| s.as_bytes().to_vec()).collect())
            .unwrap_or_default(),
        ..Default::default()
    };
    p.encode_to_vec()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn raw_and_typed_fields_agree() {
        let l = Limits::DEFAULT;
        let t = Tensor::from_vec(vec![2, 2], vec![1.0f32, 2.0, -3.0, 0.5]).unwrap();
        let (name, back) = from_tensor_proto(&to_tensor_proto("x", &t), &l).unwrap();
        assert_eq!((name.as_str(), &back), ("x", &t));
        let typed = TensorProto {
            dims: vec![2, 2],
            data_type: 1,
            float_data: vec![1.0, 2.0, -3.0, 0.5],
            ..Default::default()
        };
        assert_eq!(from_tensor_proto(&typed.encode_to_vec(), &l).unwrap().1, t);
        let bools = TensorProto {
            dims: vec![2],
            data_type: 9,
            int32_data: vec![1, 0],
            ..Default::default()
        };
        assert_eq!(
            from_tensor_proto(&bools.encode_to_vec(), &l)
                .unwrap()
                .1
                .to_vec::<bool>()
                .unwrap(),
            vec![true, false]
        );
        let strings = Tensor::from_strings(vec![1], vec!["a b".into()], &l).unwrap();
        assert_eq!(
            from_tensor_proto(&to_tensor_proto("s", &strings), &l)
                .unwrap()
                .1,
            strings
        );
    }

    #[test]
    fn refuses_bad_protos() {
        let l = Limits::DEFAULT;
        assert!(from_tensor_proto(&[0xff, 0xff, 0xff], &l).is_err());
        let wrong_count = TensorProto {
            dims: vec![3],
            data_type: 1,
            float_data: vec![1.0],
            ..Default::default()
        };
        assert!(from_tensor_proto(&wrong_count.encode_to_vec(), &l).is_err());
        let external = TensorProto {
            dims: vec![1],
            data_type: 1,
            data_location: 1,
            ..Default::default()
        };
        assert!(from_tensor_proto(&external.encode_to_vec(), &l).is_err());
        let bf16 = TensorProto {
            dims: vec![1],
            data_type: 16,
            raw_data: vec![0, 0],
            ..Default::default()
        };
        assert_eq!(
            from_tensor_proto(&bf16.encode_to_vec(), &l),
            Err(TensorError::UnsupportedDTypeCode(16))
        );
        let negative = TensorProto {
            dims: vec![-1],
            data_type: 1,
            ..Default::default()
        };
        assert!(from_tensor_proto(&negative.encode_to_vec(), &l).is_err());
        let bad_i8 = TensorProto {
            dims: vec![1],
            data_type: 3,
            int32_data: vec![200],
            ..Default::default()
        };
        assert!(from_tensor_proto(&bad_i8.encode_to_vec(), &l).is_err());
    }
}
