//! The JSON form of tensors: `{"dtype": "float32", "shape": [2, 2], "data": [1, 2, 3, 4]}`.
//!
//! On input, `data` may also be nested arrays (the shape is then read from the nesting), a bare
//! nested array or number may stand for the whole tensor, and `dtype` may be left out where the
//! model says what it expects. `data_base64` (the little-endian payload) is the exact form for
//! floats whose NaN payloads matter; the output uses it only for such tensors.
//!
//! Numbers are parsed from their decimal text straight into the target type (correctly rounded,
//! no detour through f64 for f32), so the same JSON gives the same bits in every verifier.

use std::str::FromStr;

use base64::{Engine as _, engine::general_purpose::STANDARD as BASE64};
use serde_json::{Map, Number, Value};

use super::{DType, Element, Limits, NamedTensors, Tensor, TensorError};

fn fmt_err(msg: impl Into<String>) -> TensorError {
    TensorError::Format(msg.into())
}

/// The JSON form of a tensor (flat `data`, or `data_base64` when a NaN carries a payload JSON
/// numbers can't hold).
pub fn to_json(t: &Tensor) -> Value {
    let mut obj = Map::new();
    obj.insert("dtype".into(), Value::String(t.dtype().name().into()));
    obj.insert(
        "shape".into(),
        Value::Array(t.shape().iter().map(|&d| Value::from(d)).collect()),
    );
    if needs_exact_form(t) {
        obj.insert(
            "data_base64".into(),
            Value::String(BASE64.encode(t.as_le_bytes().expect("floats are fixed-size"))),
        );
    } else {
        obj.insert("data".into(), Value::Array(flat_values(t)));
    }
    Value::Object(obj)
}

/// The JSON form of a named set: an object from name to tensor.
pub fn named_to_json(tensors: &NamedTensors) -> Value {
    Value::Object(
        tensors
            .iter()
            .map(|(n, t)| (n.clone(), to_json(t)))
            .collect(),
    )
}

fn float_value(v: f64, shortest: String) -> Value {
    if v.is_nan() {
        Value::String("NaN".into())
    } else if v.is_infinite() {
        Value::String(if v > 0.0 { "Infinity" } else { "-Infinity" }.into())
    } else {
        // The shortest decimal that reads back to the same bits in the tensor's own type.
        Value::Number(Number::from_str(&shortest).expect("Rust float Display is valid JSON"))
    }
}

fn shortest<T: std::fmt::Debug>(v: T) -> String {
    // Debug prints the shortest round-trip form and always shows a fraction or exponent.
    format!("{v:?}")
}

fn flat_values(t: &Tensor) -> Vec<Value> {
    fn ints<T: Element + Into<Value>>(t: &Tensor) -> Vec<Value> {
        t.to_vec::<T>()
            .expect("dtype checked by caller")
            .into_iter()
            .map(Into::into)
            .collect()
    }
    match t.dtype() {
        DType::F32 => t
            .to_vec::<f32>()
            .expect("f32")
            .into_iter()
            .map(|v| float_value(v as f64, shortest(v)))
            .collect(),
        DType::F64 => t
            .to_vec::<f64>()
            .expect("f64")
            .into_iter()
            .map(|v| float_value(v, shortest(v)))
            .collect(),
        DType::F16 => t
            .to_vec::<half::f16>()
            .expect("f16")
            .into_iter()
            .map(|v| float_value(v.to_f64(), shortest(v.to_f32())))
            .collect(),
        DType::I8 => ints::<i8>(t),
        DType::I16 => ints::<i16>(t),
        DType::I32 => ints::<i32>(t),
        DType::I64 => ints::<i64>(t),
        DType::U8 => ints::<u8>(t),
        DType::U16 => ints::<u16>(t),
        DType::U32 => ints::<u32>(t),
        DType::U64 => ints::<u64>(t),
        DType::Bool => ints::<bool>(t),
        DType::String => t
            .as_strings()
            .expect("strings")
            .iter()
            .map(|s| Value::String(s.clone()))
            .collect(),
    }
}

/// Whether the tensor holds a NaN other than the canonical quiet NaN, which the "NaN" string
/// can't carry.
fn needs_exact_form(t: &Tensor) -> bool {
    match t.dtype() {
        DType::F32 => t
            .to_vec::<f32>()
            .expect("f32")
            .iter()
            .any(|v| v.is_nan() && v.to_bits() != f32::NAN.to_bits()),
        DType::F64 => t
            .to_vec::<f64>()
            .expect("f64")
            .iter()
            .any(|v| v.is_nan() && v.to_bits() != f64::NAN.to_bits()),
        DType::F16 => t
            .to_vec::<half::f16>()
            .expect("f16")
            .iter()
            .any(|v| v.is_nan() && v.to_bits() != half::f16::NAN.to_bits()),
        _ => false,
    }
}

/// Reads a tensor from its JSON form. `hint` is the dtype the model expects, used when the JSON
/// names none; when both are present they must agree.
pub fn from_json(v: &Value, hint: Option<DType>, limits: &Limits) -> Result<Tensor, TensorError> {
    let (dtype, shape, data) = match v {
        Value::Object(obj) => {
            if let Some(key) = obj
                .keys()
                .find(|k| !["dtype", "shape", "data", "data_base64"].contains(&k.as_str()))
            {
                return Err(fmt_err(format!(
                    "unknown tensor field {key:?} (expected dtype, shape, data or data_base64)"
                )));
            }
            let dtype = match obj.get("dtype") {
                None => None,
                Some(Value::String(s)) => {
                    Some(DType::from_str(s).map_err(|e| fmt_err(e.to_string()))?)
                }
                Some(other) => return Err(fmt_err(format!("dtype must be a string, got {other}"))),
            };
            let shape = match obj.get("shape") {
                None => None,
                Some(Value::Array(dims)) => Some(
                    dims.iter()
                        .map(|d| {
                            d.as_u64().ok_or_else(|| {
                                fmt_err(format!("shape entry {d} is not a non-negative integer"))
                            })
                        })
                        .collect::<Result<Vec<u64>, _>>()?,
                ),
                Some(other) => return Err(fmt_err(format!("shape must be an array, got {other}"))),
            };
            let data = match (obj.get("data"), obj.get("data_base64")) {
                (Some(d), None) => Data::Values(d),
                (None, Some(Value::String(b))) => Data::Base64(b),
                (None, Some(_)) => return Err(fmt_err("data_base64 must be a string")),
                (Some(_), Some(_)) => {
                    return Err(fmt_err("give either data or data_base64, not both"));
                }
                (None, None) => return Err(fmt_err("tensor has no data")),
            };
            (dtype, shape, data)
        }
        other => (None, None, Data::Values(other)),
    };
    let dtype = match (dtype, hint) {
        (Some(d), Some(h)) if d != h => {
            return Err(TensorError::DTypeMismatch {
                expected: h,
                got: d,
            });
        }
        (Some(d), _) | (None, Some(d)) => d,
        (None, None) => {
            return Err(fmt_err(
                "the tensor names no dtype and none is expected; add \"dtype\"",
            ));
        }
    };
    match data {
        Data::Base64(b64) => {
            let shape = shape.ok_or_else(|| fmt_err("data_base64 needs an explicit shape"))?;
            if dtype == DType::String {
                return Err(fmt_err("data_base64 is for fixed-size dtypes, not strings"));
            }
            // Bound before decoding: base64 is 4/3 the payload.
            if b64.len() / 4 * 3 > limits.max_bytes + 3 {
                return Err(TensorError::TooLarge {
                    dtype,
                    shape,
                    max: limits.max_bytes,
                });
            }
            let bytes = BASE64
                .decode(b64)
                .map_err(|e| fmt_err(format!("data_base64: {e}")))?;
            Tensor::from_le_bytes(dtype, shape, bytes, limits)
        }
        Data::Values(values) => {
            let mut flat = Vec::new();
            let nested_shape = flatten(values, limits, &mut flat)?;
            let shape = match shape {
                Some(s) => s,
                None => nested_shape,
            };
            super::checked_element_count(dtype, &shape, limits)?;
            build(dtype, shape, &flat, limits)
        }
    }
}

enum Data<'a> {
    Values(&'a Value),
    Base64(&'a String),
}

/// Flattens nested arrays row-major, checking they are rectangular; returns the shape.
/// The shape is read down the first elements, then every array is checked against it.
fn flatten<'a>(
    v: &'a Value,
    limits: &Limits,
    out: &mut Vec<&'a Value>,
) -> Result<Vec<u64>, TensorError> {
    let mut shape = Vec::new();
    let mut cursor = v;
    while let Value::Array(items) = cursor {
        if shape.len() >= limits.max_rank {
            return Err(TensorError::RankTooLarge {
                rank: shape.len() + 1,
                max: limits.max_rank,
            });
        }
        shape.push(items.len() as u64);
        match items.first() {
            Some(first) => cursor = first,
            None => break,
        }
    }
    fn walk<'a>(v: &'a Value, shape: &[u64], out: &mut Vec<&'a Value>) -> Result<(), TensorError> {
        match (v, shape.split_first()) {
            (Value::Array(items), Some((&len, rest))) if items.len() as u64 == len => {
                items.iter().try_for_each(|item| walk(item, rest, out))
            }
            (Value::Array(items), Some((&len, _))) => Err(fmt_err(format!(
                "nested data is not rectangular: a row of length {} where {len} was expected",
                items.len()
            ))),
            (Value::Array(_), None) => Err(fmt_err(
                "nested data is not rectangular: an array where a number was expected",
            )),
            (_, Some(_)) => Err(fmt_err(
                "nested data is not rectangular: a number where an array was expected",
            )),
            (scalar, None) => {
                out.push(scalar);
                Ok(())
            }
        }
    }
    walk(v, &shape, out)?;
    Ok(shape)
}

fn build(
    dtype: DType,
    shape: Vec<u64>,
    flat: &[&Value],
    limits: &Limits,
) -> Result<Tensor, TensorError> {
    fn parse<T: Element>(
        flat: &[&Value],
        f: impl Fn(&Value) -> Option<T>,
    ) -> Result<Vec<u8>, TensorError> {
        let mut bytes = Vec::with_capacity(flat.len() * T::DTYPE.size().unwrap_or(1));
        for (i, v) in flat.iter().enumerate() {
            let x = f(v).ok_or_else(|| {
                fmt_err(format!(
                    "element {i}: {} is not a valid {}",
                    short(v),
                    T::DTYPE
                ))
            })?;
            x.write_le(&mut bytes);
        }
        Ok(bytes)
    }
    fn int<T: TryFrom<i64> + TryFrom<u64>>(v: &Value) -> Option<T> {
        match v {
            Value::Number(n) => {
                if let Some(i) = n.as_i64() {
                    T::try_from(i).ok()
                } else {
                    n.as_u64().and_then(|u| T::try_from(u).ok())
                }
            }
            _ => None,
        }
    }
    fn float<T: FromStr>(v: &Value, from_special: fn(f64) -> T) -> Option<T> {
        match v {
            // Parse the decimal text itself: correctly rounded to T, never via f64.
            Value::Number(n) => n.to_string().parse::<T>().ok(),
            Value::String(s) => match s.as_str() {
                "NaN" | "nan" => Some(from_special(f64::NAN)),
                "Infinity" | "inf" | "+Infinity" | "+inf" => Some(from_special(f64::INFINITY)),
                "-Infinity" | "-inf" => Some(from_special(f64::NEG_INFINITY)),
                _ => None,
            },
            _ => None,
        }
    }
    let bytes = match dtype {
        DType::F32 => parse::<f32>(flat, |v| float(v, |x| x as f32))?,
        DType::F64 => parse::<f64>(flat, |v| float(v, |x| x))?,
        // half has no correctly rounded decimal parser; f64 then one rounding to f16 is exact for
        // every f16 written in shortest form, which is what Vouch prints.
        DType::F16 => {
            parse::<half::f16>(flat, |v| float::<f64>(v, |x| x).map(half::f16::from_f64))?
        }
        DType::I8 => parse::<i8>(flat, int)?,
        DType::I16 => parse::<i16>(flat, int)?,
        DType::I32 => parse::<i32>(flat, int)?,
        DType::I64 => parse::<i64>(flat, int)?,
        DType::U8 => parse::<u8>(flat, int)?,
        DType::U16 => parse::<u16>(flat, int)?,
        DType::U32 => parse::<u32>(flat, int)?,
        DType::U64 => parse::<u64>(flat, int)?,
        DType::Bool => parse::<bool>(flat, |v| match v {
            Value::Bool(b) => Some(*b),
            Value::Number(n) => match n.as_u64() {
                Some(0) => Some(false),
                Some(1) => Some(true),
                _ => None,
            },
            _ => None,
        })?,
        DType::String => {
            let strings = flat
                .iter()
                .enumerate()
                .map(|(i, v)| match v {
                    Value::String(s) => Ok(s.clone()),
                    other => Err(fmt_err(format!(
                        "element {i}: {} is not a string",
                        short(other)
                    ))),
                })
                .collect::<Result<Vec<_>, _>>()?;
            return Tensor::from_strings(shape, strings, limits);
        }
    };
    Tensor::from_le_bytes(dtype, shape, bytes, limits)
}

fn short(v: &Value) -> String {
    let s = v.to_string();
    if s.len() > 40 {
        format!("{}…", &s[..s.floor_char_boundary(40)])
    } else {
        s
    }
}

/// Reads a named set `{"name": tensor, …}`; `hint` gives the dtype the model expects per name.
pub fn named_from_json(
    v: &Value,
    hint: impl Fn(&str) -> Option<DType>,
    limits: &Limits,
) -> Result<NamedTensors, TensorError> {
    let obj = v
        .as_object()
        .ok_or_else(|| fmt_err("expected a JSON object mapping input names to tensors"))?;
    obj.iter()
        .map(|(name, t)| {
            from_json(t, hint(name), limits)
                .map(|t| (name.clone(), t))
                .map_err(|e| fmt_err(format!("tensor {name:?}: {e}")))
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn parse(v: Value, hint: Option<DType>) -> Result<Tensor, TensorError> {
        from_json(&v, hint, &Limits::DEFAULT)
    }

    #[test]
    fn nested_and_flat_forms_agree() {
        let nested = parse(json!([[1, 2], [3, 4]]), Some(DType::F32)).unwrap();
        let flat = parse(
            json!({"shape": [2, 2], "data": [1, 2, 3, 4]}),
            Some(DType::F32),
        )
        .unwrap();
        let full = parse(
            json!({"dtype": "float32", "shape": [2, 2], "data": [1.0, 2.0, 3.0, 4.0]}),
            None,
        )
        .unwrap();
        assert_eq!(nested, flat);
        assert_eq!(nested, full);
        assert_eq!(nested.shape(), &[2, 2]);
        let scalar = parse(json!(7), Some(DType::I64)).unwrap();
        assert_eq!(scalar.shape(), &[] as &[u64]);
        let empty = parse(json!([[], []]), Some(DType::F32)).unwrap();
        assert_eq!(empty.shape(), &[2, 0]);
    }

    #[test]
    fn ragged_and_mistyped_data_is_refused() {
        assert!(parse(json!([[1, 2], [3]]), Some(DType::F32)).is_err());
        assert!(parse(json!([[1, 2], 3]), Some(DType::F32)).is_err());
        assert!(parse(json!([1, [2, 3]]), Some(DType::F32)).is_err());
        assert!(parse(json!([1.5]), Some(DType::I64)).is_err());
        assert!(parse(json!([300]), Some(DType::U8)).is_err());
        assert!(parse(json!([-1]), Some(DType::U64)).is_err());
        assert!(parse(json!(["x"]), Some(DType::F32)).is_err());
        assert!(parse(json!([1, 2]), None).is_err());
        assert!(matches!(
            parse(json!({"dtype": "int32", "data": [1]}), Some(DType::F32)),
            Err(TensorError::DTypeMismatch { .. })
        ));
        assert!(parse(json!({"shape": [3], "data": [1, 2]}), Some(DType::F32)).is_err());
        assert!(parse(json!({"data": [1], "extra": 1}), Some(DType::F32)).is_err());
        // Deeper than the rank limit.
        let mut deep = json!(1);
        for _ in 0..20 {
            deep = json!([deep]);
        }
        assert!(matches!(
            parse(deep, Some(DType::F32)),
            Err(TensorError::RankTooLarge { .. })
        ));
    }

    #[test]
    fn floats_round_trip_bit_exactly() {
        let values = vec![
            0.1f32,
            -0.0,
            1e-45,
            3.4028235e38,
            f32::NAN,
            f32::INFINITY,
            f32::NEG_INFINITY,
            16777217.0,
        ];
        let t = Tensor::from_vec(vec![values.len() as u64], values).unwrap();
        let back = parse(to_json(&t), None).unwrap();
        assert_eq!(back.encode(), t.encode());
        // A payload-carrying NaN switches to the exact base64 form.
        let odd = Tensor::from_vec(vec![2], vec![f32::from_bits(0x7fc0_0001), 1.0]).unwrap();
        let j = to_json(&odd);
        assert!(j.get("data_base64").is_some());
        assert_eq!(parse(j, None).unwrap().encode(), odd.encode());
    }

    #[test]
    fn f32_is_parsed_without_double_rounding() {
        // 1.00000005960464477539062500000000001 lies just above the midpoint between 1.0 and the
        // next f32; read as f64 first it rounds to the midpoint and then, ties-to-even, to 1.0.
        let text = "1.00000005960464477539062500000000001";
        let v: Value = serde_json::from_str(&format!("[{text}]")).unwrap();
        let t = parse(v, Some(DType::F32)).unwrap();
        assert_eq!(t.to_vec::<f32>().unwrap()[0], text.parse::<f32>().unwrap());
        assert_eq!(
            t.to_vec::<f32>().unwrap()[0].to_bits(),
            1.0f32.to_bits() + 1
        );
    }

    #[test]
    fn all_dtypes_round_trip() {
        for dtype in DType::ALL {
            let data = match dtype {
                DType::String => json!(["a", "é"]),
                DType::Bool => json!([true, false]),
                DType::I8 | DType::I16 | DType::I32 | DType::I64 => json!([-3, 5]),
                _ => json!([0, 7]),
            };
            let t = parse(json!({"dtype": dtype.name(), "data": data}), None).unwrap();
            assert_eq!(t.dtype(), dtype);
            assert_eq!(parse(to_json(&t), None).unwrap(), t);
        }
    }
}
