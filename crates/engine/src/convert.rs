//! Conversions between Vouch tensors and tract's, and commitments of tract's tensors in place.

use tract_onnx::prelude::{DatumType, Tensor as TractTensor, tract_ndarray};
use vouch_types::{Commitment, DType, Limits, Tensor, tensor::commit_le_payload};

use crate::EngineError;

/// The tract type for a Vouch dtype.
fn datum_type(d: DType) -> DatumType {
    match d {
        DType::F32 => DatumType::F32,
        DType::F64 => DatumType::F64,
        DType::F16 => DatumType::F16,
        DType::I8 => DatumType::I8,
        DType::I16 => DatumType::I16,
        DType::I32 => DatumType::I32,
        DType::I64 => DatumType::I64,
        DType::U8 => DatumType::U8,
        DType::U16 => DatumType::U16,
        DType::U32 => DatumType::U32,
        DType::U64 => DatumType::U64,
        DType::Bool => DatumType::Bool,
        DType::String => DatumType::String,
    }
}

/// The Vouch dtype holding a tract type's values bit for bit (quantized types by their storage).
fn dtype_of(dt: DatumType) -> Option<DType> {
    Some(match dt {
        DatumType::F32 => DType::F32,
        DatumType::F64 => DType::F64,
        DatumType::F16 => DType::F16,
        DatumType::I8 | DatumType::QI8(_) => DType::I8,
        DatumType::I16 => DType::I16,
        DatumType::I32 | DatumType::QI32(_) => DType::I32,
        DatumType::I64 => DType::I64,
        DatumType::U8 | DatumType::QU8(_) => DType::U8,
        DatumType::U16 => DType::U16,
        DatumType::U32 => DType::U32,
        DatumType::U64 => DType::U64,
        DatumType::Bool => DType::Bool,
        DatumType::String => DType::String,
        _ => return None,
    })
}

fn shape_u64(shape: &[usize]) -> Vec<u64> {
    shape.iter().map(|&d| d as u64).collect()
}

/// A Vouch tensor as a tract tensor.
pub(crate) fn to_tract(t: &Tensor) -> Result<TractTensor, EngineError> {
    let shape: Vec<usize> = t.shape().iter().map(|&d| d as usize).collect();
    if let Some(strings) = t.as_strings() {
        let array = tract_ndarray::ArrayD::from_shape_vec(shape, strings.to_vec())
            .map_err(|e| EngineError::Internal(format!("string tensor shape: {e}")))?;
        return Ok(array.into());
    }
    let bytes = t.as_le_bytes().expect("non-string tensors hold bytes");
    // SAFETY: `Tensor` guarantees the payload has exactly shape-product elements of the dtype's
    // size in little-endian order (the in-memory order on every target tract supports), and
    // bool bytes are 0 or 1, so every element is a valid value of the tract type.
    const _: () = assert!(cfg!(target_endian = "little"));
    unsafe { TractTensor::from_raw_dt(datum_type(t.dtype()), &shape, bytes) }
        .map_err(|e| EngineError::Internal(format!("building an engine tensor: {e}")))
}

/// A tract tensor as a Vouch tensor. `declared` is the type the model declares for it: tract
/// sometimes computes an integer output as its symbolic-dimension type, which is converted back.
pub(crate) fn from_tract(t: &TractTensor, declared: Option<DType>) -> Result<Tensor, String> {
    let unbounded = Limits {
        max_rank: usize::MAX,
        max_bytes: usize::MAX,
    };
    let shape = shape_u64(t.shape());
    let dt = t.datum_type();
    if let Some(want) = declared
        && dtype_of(dt) != Some(want)
    {
        let cast = t.cast_to_dt(datum_type(want)).map_err(|e| {
            format!("the engine produced {dt:?} where the model declares {want}: {e}")
        })?;
        if dt != DatumType::TDim {
            return Err(format!(
                "the engine produced {dt:?} where the model declares {want}"
            ));
        }
        return from_tract(&cast, Some(want));
    }
    let dtype = dtype_of(dt).ok_or_else(|| format!("the engine produced values of type {dt:?}"))?;
    let view = t.try_as_plain_ram().map_err(|e| e.to_string())?;
    if dtype == DType::String {
        let strings = view
            .as_slice::<String>()
            .map_err(|e| e.to_string())?
            .to_vec();
        return Tensor::from_strings(shape, strings, &unbounded).map_err(|e| e.to_string());
    }
    Tensor::from_le_bytes(dtype, shape, view.as_bytes().to_vec(), &unbounded)
        .map_err(|e| e.to_string())
}

/// The commitment of a tract tensor, computed on its buffer without copying: equal to the
/// commitment of the same values as a Vouch tensor. `None` for values with no tensor form
/// (packed weights and other engine-internal objects).
pub(crate) fn tract_commitment(t: &TractTensor) -> Option<Commitment> {
    let dt = t.datum_type();
    if dt == DatumType::TDim {
        let cast = t.cast_to::<i64>().ok()?;
        return tract_commitment(&cast);
    }
    let dtype = dtype_of(dt)?;
    let view = t.as_plain_ram()?;
    if dtype == DType::String {
        return from_tract(t, None).ok().map(|v| v.commitment());
    }
    Some(commit_le_payload(
        dtype,
        &shape_u64(t.shape()),
        view.as_bytes(),
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trips_every_dtype_and_commits_in_place() {
        let l = Limits::DEFAULT;
        let tensors = vec![
            Tensor::from_vec(vec![2, 2], vec![1.5f32, -0.0, f32::NAN, 1e-40]).unwrap(),
            Tensor::from_vec(vec![3], vec![1.5f64, -2.0, 3.0]).unwrap(),
            Tensor::from_vec(vec![1], vec![half::f16::from_f32(0.5)]).unwrap(),
            Tensor::from_vec(vec![2], vec![-1i8, 2]).unwrap(),
            Tensor::from_vec(vec![2], vec![-1i16, 2]).unwrap(),
            Tensor::from_vec(vec![2], vec![-1i32, 2]).unwrap(),
            Tensor::from_vec(vec![], vec![i64::MIN]).unwrap(),
            Tensor::from_vec(vec![2], vec![255u8, 0]).unwrap(),
            Tensor::from_vec(vec![1], vec![65535u16]).unwrap(),
            Tensor::from_vec(vec![1], vec![u32::MAX]).unwrap(),
            Tensor::from_vec(vec![1], vec![u64::MAX]).unwrap(),
            Tensor::from_vec(vec![3], vec![true, false, true]).unwrap(),
            Tensor::from_strings(vec![2], vec!["a".into(), "bé".into()], &l).unwrap(),
            Tensor::from_vec(vec![0, 3], Vec::<f32>::new()).unwrap(),
        ];
        for t in tensors {
            let tract = to_tract(&t).unwrap();
            assert_eq!(
                from_tract(&tract, Some(t.dtype())).unwrap().encode(),
                t.encode()
            );
            assert_eq!(
                tract_commitment(&tract),
                Some(t.commitment()),
                "{:?}",
                t.dtype()
            );
        }
    }
}
