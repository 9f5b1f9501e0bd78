//! Tensors: element type, shape, row-major data, their canonical encoding and commitment.
//!
//! The canonical encoding (`vouch/tensor/v1`, docs/protocol.md §3) is:
//!
//! ```text
//! u32 LE  dtype            ONNX TensorProto.DataType code
//! u32 LE  rank
//! u64 LE  dims[rank]
//! payload                  numbers: little-endian, row-major; bool: one byte 0 or 1;
//!                          string: per element u32 LE byte length, then UTF-8 bytes
//! ```
//!
//! Floats are committed bit for bit: `-0.0`, NaN payloads and subnormals are all distinct.

mod dtype;
mod element;
pub mod json;
pub mod npy;
pub mod onnx_pb;

use std::collections::BTreeMap;

pub use dtype::{DType, UnknownDType};
pub use element::Element;

use crate::{
    commitment::Commitment,
    hash::{TaggedHasher, domain},
};

/// Size bounds applied to every tensor built from outside data, before anything is allocated.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Limits {
    /// Largest number of dimensions.
    pub max_rank: usize,
    /// Largest payload in bytes (for strings: the encoded payload, prefixes included).
    pub max_bytes: usize,
}

impl Limits {
    /// 16 dimensions, 256 MiB of data per tensor.
    pub const DEFAULT: Limits = Limits {
        max_rank: 16,
        max_bytes: 256 << 20,
    };
}

impl Default for Limits {
    fn default() -> Self {
        Limits::DEFAULT
    }
}

/// What is wrong with tensor data.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum TensorError {
    /// More dimensions than allowed.
    #[error("tensor has {rank} dimensions, the limit is {max}")]
    RankTooLarge {
        /// Dimensions given.
        rank: usize,
        /// Limit.
        max: usize,
    },
    /// The data would exceed the size limit (or overflow).
    #[error("tensor of shape {shape:?} ({dtype}) needs more than the {max}-byte limit")]
    TooLarge {
        /// Element type.
        dtype: DType,
        /// Shape asked for.
        shape: Vec<u64>,
        /// Limit in bytes.
        max: usize,
    },
    /// Data of the wrong length for the shape.
    #[error("shape {shape:?} needs {expected} elements, got {got}")]
    ElementCount {
        /// Shape.
        shape: Vec<u64>,
        /// Elements the shape needs.
        expected: u64,
        /// Elements given.
        got: u64,
    },
    /// A boolean byte that is neither 0 nor 1.
    #[error("bool element {index} is byte {value}, not 0 or 1")]
    InvalidBool {
        /// Element index.
        index: usize,
        /// The byte found.
        value: u8,
    },
    /// An element type code Vouch does not support.
    #[error("unsupported dtype code {0}")]
    UnsupportedDTypeCode(u32),
    /// The element type is not the one asked for.
    #[error("expected {expected} data, the tensor holds {got}")]
    DTypeMismatch {
        /// Type asked for.
        expected: DType,
        /// Type held.
        got: DType,
    },
    /// A canonical encoding that ends early.
    #[error("canonical encoding truncated: {0}")]
    Truncated(&'static str),
    /// A canonical encoding with bytes after the payload.
    #[error("canonical encoding has {0} trailing bytes")]
    TrailingBytes(usize),
    /// A string element that is not UTF-8.
    #[error("string element {0} is not valid UTF-8")]
    InvalidUtf8(usize),
    /// Malformed input in one of the file or text forms (JSON, .npy, TensorProto).
    #[error("{0}")]
    Format(String),
}

#[derive(Clone, Debug, PartialEq)]
enum Data {
    /// Fixed-size elements, little-endian, row-major: exactly the canonical payload.
    Bytes(Vec<u8>),
    /// String elements, row-major.
    Strings(Vec<String>),
}

/// A dense tensor.
#[derive(Clone, Debug, PartialEq)]
pub struct Tensor {
    dtype: DType,
    shape: Vec<u64>,
    data: Data,
}

/// The number of elements of `shape`, checked against overflow and `limits` for `dtype`.
pub fn checked_element_count(
    dtype: DType,
    shape: &[u64],
    limits: &Limits,
) -> Result<u64, TensorError> {
    if shape.len() > limits.max_rank {
        return Err(TensorError::RankTooLarge {
            rank: shape.len(),
            max: limits.max_rank,
        });
    }
    let too_large = || TensorError::TooLarge {
        dtype,
        shape: shape.to_vec(),
        max: limits.max_bytes,
    };
    let count = shape
        .iter()
        .try_fold(1u64, |acc, &d| acc.checked_mul(d))
        .ok_or_else(too_large)?;
    // Strings need at least their 4-byte length prefix each.
    let min_bytes = count
        .checked_mul(dtype.size().unwrap_or(4) as u64)
        .ok_or_else(too_large)?;
    if min_bytes > limits.max_bytes as u64 {
        return Err(too_large());
    }
    Ok(count)
}

impl Tensor {
    /// Builds a tensor of fixed-size elements from its little-endian payload.
    pub fn from_le_bytes(
        dtype: DType,
        shape: Vec<u64>,
        bytes: Vec<u8>,
        limits: &Limits,
    ) -> Result<Tensor, TensorError> {
        let count = checked_element_count(dtype, &shape, limits)?;
        let size = dtype.size().ok_or(TensorError::DTypeMismatch {
            expected: DType::String,
            got: DType::String,
        })?;
        let got = (bytes.len() / size) as u64;
        if !bytes.len().is_multiple_of(size) || got != count {
            return Err(TensorError::ElementCount {
                shape,
                expected: count,
                got,
            });
        }
        if dtype == DType::Bool
            && let Some(index) = bytes.iter().position(|&b| b > 1)
        {
            return Err(TensorError::InvalidBool {
                index,
                value: bytes[index],
            });
        }
        Ok(Tensor {
            dtype,
            shape,
            data: Data::Bytes(bytes),
        })
    }

    /// Builds a string tensor.
    pub fn from_strings(
        shape: Vec<u64>,
        strings: Vec<String>,
        limits: &Limits,
    ) -> Result<Tensor, TensorError> {
        let count = checked_element_count(DType::String, &shape, limits)?;
        if strings.len() as u64 != count {
            return Err(TensorError::ElementCount {
                shape,
                expected: count,
                got: strings.len() as u64,
            });
        }
        let payload: u64 = strings.iter().map(|s| 4 + s.len() as u64).sum();
        if payload > limits.max_bytes as u64 || strings.iter().any(|s| s.len() > u32::MAX as usize)
        {
            return Err(TensorError::TooLarge {
                dtype: DType::String,
                shape,
                max: limits.max_bytes,
            });
        }
        Ok(Tensor {
            dtype: DType::String,
            shape,
            data: Data::Strings(strings),
        })
    }

    /// Builds a tensor from typed values (for code that produced them itself).
    pub fn from_vec<T: Element>(shape: Vec<u64>, values: Vec<T>) -> Result<Tensor, TensorError> {
        let mut bytes = Vec::with_capacity(values.len() * T::DTYPE.size().unwrap_or(0));
        for v in &values {
            v.write_le(&mut bytes);
        }
        let limits = Limits {
            max_rank: usize::MAX,
            max_bytes: usize::MAX,
        };
        Tensor::from_le_bytes(T::DTYPE, shape, bytes, &limits)
    }

    /// Element type.
    pub fn dtype(&self) -> DType {
        self.dtype
    }

    /// Shape (row-major; empty for a scalar).
    pub fn shape(&self) -> &[u64] {
        &self.shape
    }

    /// Number of elements.
    pub fn len(&self) -> usize {
        match &self.data {
            Data::Bytes(b) => b.len() / self.dtype.size().unwrap_or(1),
            Data::Strings(s) => s.len(),
        }
    }

    /// Whether the tensor has no elements.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// The little-endian payload of a fixed-size tensor; `None` for strings.
    pub fn as_le_bytes(&self) -> Option<&[u8]> {
        match &self.data {
            Data::Bytes(b) => Some(b),
            Data::Strings(_) => None,
        }
    }

    /// The elements of a string tensor; `None` for other types.
    pub fn as_strings(&self) -> Option<&[String]> {
        match &self.data {
            Data::Strings(s) => Some(s),
            Data::Bytes(_) => None,
        }
    }

    /// The elements as `T`, which must be the tensor's type.
    pub fn to_vec<T: Element>(&self) -> Result<Vec<T>, TensorError> {
        match &self.data {
            Data::Bytes(b) if self.dtype == T::DTYPE => {
                let size = T::DTYPE.size().expect("Element types have a fixed size");
                Ok(b.chunks_exact(size).map(T::read_le).collect())
            }
            _ => Err(TensorError::DTypeMismatch {
                expected: T::DTYPE,
                got: self.dtype,
            }),
        }
    }

    fn encode_header(&self, out: &mut Vec<u8>) {
        out.extend_from_slice(&self.dtype.code().to_le_bytes());
        out.extend_from_slice(&(self.shape.len() as u32).to_le_bytes());
        for d in &self.shape {
            out.extend_from_slice(&d.to_le_bytes());
        }
    }

    /// The canonical encoding.
    pub fn encode(&self) -> Vec<u8> {
        let mut out = Vec::new();
        self.encode_header(&mut out);
        match &self.data {
            Data::Bytes(b) => out.extend_from_slice(b),
            Data::Strings(strings) => {
                for s in strings {
                    out.extend_from_slice(&(s.len() as u32).to_le_bytes());
                    out.extend_from_slice(s.as_bytes());
                }
            }
        }
        out
    }

    /// Parses a canonical encoding, enforcing `limits` before allocating.
    pub fn decode(bytes: &[u8], limits: &Limits) -> Result<Tensor, TensorError> {
        let mut r = Reader(bytes);
        let code = r.u32("dtype")?;
        let dtype = DType::from_code(code).ok_or(TensorError::UnsupportedDTypeCode(code))?;
        let rank = r.u32("rank")? as usize;
        if rank > limits.max_rank {
            return Err(TensorError::RankTooLarge {
                rank,
                max: limits.max_rank,
            });
        }
        let shape = (0..rank)
            .map(|_| r.u64("dims"))
            .collect::<Result<Vec<_>, _>>()?;
        let count = checked_element_count(dtype, &shape, limits)?;
        let tensor = if let Some(size) = dtype.size() {
            let payload = r.take(count as usize * size, "payload")?;
            Tensor::from_le_bytes(dtype, shape, payload.to_vec(), limits)?
        } else {
            let mut strings = Vec::with_capacity(count as usize);
            for i in 0..count as usize {
                let len = r.u32("string length")? as usize;
                let s = r.take(len, "string bytes")?;
                strings
                    .push(String::from_utf8(s.to_vec()).map_err(|_| TensorError::InvalidUtf8(i))?);
            }
            Tensor::from_strings(shape, strings, limits)?
        };
        if !r.0.is_empty() {
            return Err(TensorError::TrailingBytes(r.0.len()));
        }
        Ok(tensor)
    }

    /// `SHA-256("vouch/tensor/v1" || 0x00 || encode())`, computed without copying the payload.
    pub fn commitment(&self) -> Commitment {
        match &self.data {
            Data::Bytes(b) => commit_le_payload(self.dtype, &self.shape, b),
            Data::Strings(strings) => {
                let mut h = tensor_hasher(self.dtype, &self.shape);
                for s in strings {
                    h.update_prefixed(s.as_bytes());
                }
                Commitment(h.finish())
            }
        }
    }
}

fn tensor_hasher(dtype: DType, shape: &[u64]) -> TaggedHasher {
    let mut h = TaggedHasher::new(domain::TENSOR);
    h.update_u32(dtype.code()).update_u32(shape.len() as u32);
    for &d in shape {
        h.update_u64(d);
    }
    h
}

/// The commitment of a fixed-size tensor given as its parts, for engines that hold the data in
/// their own buffers: equal to [`Tensor::commitment`] of the same tensor. The caller guarantees
/// `payload` is the little-endian row-major data of `shape`.
pub fn commit_le_payload(dtype: DType, shape: &[u64], payload: &[u8]) -> Commitment {
    let mut h = tensor_hasher(dtype, shape);
    h.update(payload);
    Commitment(h.finish())
}

struct Reader<'a>(&'a [u8]);

impl<'a> Reader<'a> {
    fn take(&mut self, n: usize, what: &'static str) -> Result<&'a [u8], TensorError> {
        if self.0.len() < n {
            return Err(TensorError::Truncated(what));
        }
        let (head, tail) = self.0.split_at(n);
        self.0 = tail;
        Ok(head)
    }
    fn u32(&mut self, what: &'static str) -> Result<u32, TensorError> {
        Ok(u32::from_le_bytes(
            self.take(4, what)?.try_into().expect("4 bytes"),
        ))
    }
    fn u64(&mut self, what: &'static str) -> Result<u64, TensorError> {
        Ok(u64::from_le_bytes(
            self.take(8, what)?.try_into().expect("8 bytes"),
        ))
    }
}

/// Tensors by name, ordered by name (UTF-8 byte order), as a model's inputs or outputs.
pub type NamedTensors = BTreeMap<String, Tensor>;

/// The commitment to a named set of tensors (`vouch/tensor-set/v1`):
/// `SHA-256(tag || 0x00 || u32 count || for each name in byte order: u32 len || name || commitment)`.
/// It does not depend on the order the names were given in.
pub fn set_commitment<'a>(
    entries: impl IntoIterator<Item = (&'a str, Commitment)>,
) -> Result<Commitment, SetError> {
    let mut sorted: Vec<(&str, Commitment)> = entries.into_iter().collect();
    sorted.sort_by(|a, b| a.0.as_bytes().cmp(b.0.as_bytes()));
    if let Some(w) = sorted.windows(2).find(|w| w[0].0 == w[1].0) {
        return Err(SetError::DuplicateName(w[0].0.to_string()));
    }
    if let Some((name, _)) = sorted
        .iter()
        .find(|(n, _)| n.is_empty() || n.len() > MAX_NAME_BYTES)
    {
        return Err(SetError::BadName(name.chars().take(64).collect()));
    }
    let mut h = TaggedHasher::new(domain::TENSOR_SET);
    h.update_u32(sorted.len() as u32);
    for (name, c) in &sorted {
        h.update_prefixed(name.as_bytes()).update(c.as_bytes());
    }
    Ok(Commitment(h.finish()))
}

/// The commitment of a named tensor set.
pub fn commit_named(tensors: &NamedTensors) -> Result<Commitment, SetError> {
    set_commitment(tensors.iter().map(|(n, t)| (n.as_str(), t.commitment())))
}

/// Longest tensor name accepted in a set.
pub const MAX_NAME_BYTES: usize = 4096;

/// Why a set of names can't be committed.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum SetError {
    /// The same name twice.
    #[error("tensor name {0:?} appears twice")]
    DuplicateName(String),
    /// An empty or overlong name.
    #[error("tensor name {0:?} is empty or longer than 4096 bytes")]
    BadName(String),
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn encoding_layout_is_as_specified() {
        let t = Tensor::from_vec(vec![2], vec![1.0f32, -2.5]).unwrap();
        let enc = t.encode();
        assert_eq!(&enc[0..4], &1u32.to_le_bytes()); // float32
        assert_eq!(&enc[4..8], &1u32.to_le_bytes()); // rank 1
        assert_eq!(&enc[8..16], &2u64.to_le_bytes());
        assert_eq!(&enc[16..20], &1.0f32.to_le_bytes());
        assert_eq!(&enc[20..24], &(-2.5f32).to_le_bytes());
        assert_eq!(enc.len(), 24);
    }

    #[test]
    fn commitment_is_bit_exact() {
        let a = Tensor::from_vec(vec![1], vec![0.0f32]).unwrap();
        let b = Tensor::from_vec(vec![1], vec![-0.0f32]).unwrap();
        assert_ne!(a.commitment(), b.commitment());
        // Same numbers, other shape or type: other commitment.
        let c = Tensor::from_vec(vec![1, 1], vec![0.0f32]).unwrap();
        let d = Tensor::from_vec(vec![1], vec![0i32]).unwrap();
        assert_ne!(a.commitment(), c.commitment());
        assert_ne!(a.commitment(), d.commitment());
    }

    #[test]
    fn bounds_are_enforced_before_allocation() {
        let limits = Limits {
            max_rank: 4,
            max_bytes: 1024,
        };
        let err = Tensor::from_le_bytes(DType::F32, vec![u64::MAX, 2], vec![], &limits);
        assert!(matches!(err, Err(TensorError::TooLarge { .. })));
        let err = Tensor::from_le_bytes(DType::F32, vec![1; 5], vec![0; 4], &limits);
        assert!(matches!(
            err,
            Err(TensorError::RankTooLarge { rank: 5, max: 4 })
        ));
        let err = Tensor::from_le_bytes(DType::F32, vec![257], vec![0; 1028], &limits);
        assert!(matches!(err, Err(TensorError::TooLarge { .. })));
        // A header claiming 2^40 elements is refused without reading further.
        let mut enc = Vec::new();
        enc.extend_from_slice(&1u32.to_le_bytes());
        enc.extend_from_slice(&1u32.to_le_bytes());
        enc.extend_from_slice(&(1u64 << 40).to_le_bytes());
        assert!(matches!(
            Tensor::decode(&enc, &limits),
            Err(TensorError::TooLarge { .. })
        ));
    }

    #[test]
    fn bad_bools_and_lengths_are_refused() {
        let l = Limits::DEFAULT;
        assert_eq!(
            Tensor::from_le_bytes(DType::Bool, vec![2], vec![1, 2], &l),
            Err(TensorError::InvalidBool { index: 1, value: 2 })
        );
        assert!(matches!(
            Tensor::from_le_bytes(DType::I32, vec![2], vec![0; 7], &l),
            Err(TensorError::ElementCount { .. })
        ));
        let t = Tensor::from_vec(vec![1], vec![1i64]).unwrap();
        let mut enc = t.encode();
        enc.push(0);
        assert_eq!(Tensor::decode(&enc, &l), Err(TensorError::TrailingBytes(1)));
        enc.truncate(enc.len() - 2);
        assert!(matches!(
            Tensor::decode(&enc, &l),
            Err(TensorError::Truncated(_))
        ));
    }

    #[test]
    fn set_commitment_ignores_order_and_refuses_duplicates() {
        let a = Tensor::from_vec(vec![1], vec![1u8]).unwrap().commitment();
        let b = Tensor::from_vec(vec![1], vec![2u8]).unwrap().commitment();
        let ab = set_commitment([("a", a), ("b", b)]).unwrap();
        assert_eq!(ab, set_commitment([("b", b), ("a", a)]).unwrap());
        // Swapping which name holds which tensor changes it.
        assert_ne!(ab, set_commitment([("a", b), ("b", a)]).unwrap());
        assert_eq!(
            set_commitment([("a", a), ("a", b)]),
            Err(SetError::DuplicateName("a".into()))
        );
        assert!(set_commitment([("", a)]).is_err());
    }

    fn any_tensor() -> impl Strategy<Value = Tensor> {
        let shape = proptest::collection::vec(0u64..4, 0..4);
        (
            shape,
            proptest::sample::select(DType::ALL.to_vec()),
            any::<u64>(),
        )
            .prop_map(|(shape, dtype, seed)| {
                let count = shape.iter().product::<u64>() as usize;
                let mut x = seed;
                let mut next = || {
                    x = x
                        .wrapping_mul(6364136223846793005)
                        .wrapping_add(1442695040888963407);
                    (x >> 33) as u8
                };
                if dtype == DType::String {
                    let strings = (0..count)
                        .map(|i| "é".repeat(i % 3) + &next().to_string())
                        .collect();
                    Tensor::from_strings(shape, strings, &Limits::DEFAULT).unwrap()
                } else {
                    let mut bytes: Vec<u8> =
                        (0..count * dtype.size().unwrap()).map(|_| next()).collect();
                    if dtype == DType::Bool {
                        bytes.iter_mut().for_each(|b| *b &= 1);
                    }
                    Tensor::from_le_bytes(dtype, shape, bytes, &Limits::DEFAULT).unwrap()
                }
            })
    }

    proptest! {
        #[test]
        fn encoding_round_trips(t in any_tensor()) {
            let enc = t.encode();
            prop_assert_eq!(Tensor::decode(&enc, &Limits::DEFAULT).unwrap(), t.clone());
            // The streamed commitment equals the hash of the materialised encoding.
            prop_assert_eq!(t.commitment().0, crate::hash::tagged_hash(domain::TENSOR, &enc));
        }

        #[test]
        fn any_flipped_bit_changes_or_breaks_the_encoding(t in any_tensor(), bit in any::<usize>()) {
            let enc = t.encode();
            let mut bad = enc.clone();
            let i = bit % (enc.len() * 8);
            bad[i / 8] ^= 1 << (i % 8);
            if let Ok(other) = Tensor::decode(&bad, &Limits::DEFAULT) {
                prop_assert_ne!(other.commitment(), t.commitment());
            }
        }
    }
}
