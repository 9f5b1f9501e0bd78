//! Comparing an output with ONNX's reference, the way ONNX's backend test runner does.
//!
//! The runner (`onnx/backend/test/runner/__init__.py`, `assert_similar_outputs`) checks the
//! shape, then the element type, then `numpy.testing.assert_allclose(out, ref, rtol, atol)`:
//! `|out - ref| <= atol + rtol * |ref|` element-wise, NaN equal to NaN, infinities equal only
//! to themselves. Strings are compared exactly. Integers and booleans are compared exactly here
//! too, which is stricter than numpy (whose `allclose` would let a large integer be off by
//! `rtol` of its size): an integer result that is off is wrong, not imprecise.

use serde::{Deserialize, Serialize};
use vouch_types::{DType, Tensor};

/// Relative and absolute tolerance for floating-point outputs.
#[derive(Clone, Copy, Debug, PartialEq, Serialize, Deserialize)]
pub struct Tolerance {
    /// Relative tolerance, a fraction of the reference value.
    pub rtol: f64,
    /// Absolute tolerance.
    pub atol: f64,
}

impl Tolerance {
    /// ONNX's runner default (`onnx/backend/test/loader/__init__.py`), used unless a case's
    /// `data.json` names others.
    pub const ONNX_DEFAULT: Tolerance = Tolerance {
        rtol: 1e-3,
        atol: 1e-7,
    };

    /// Whether `got` is close enough to `expected` (numpy's `isclose` with `equal_nan`).
    pub fn accepts(self, expected: f64, got: f64) -> bool {
        if expected.is_nan() || got.is_nan() {
            return expected.is_nan() && got.is_nan();
        }
        if expected.is_infinite() || got.is_infinite() {
            return expected == got;
        }
        (got - expected).abs() <= self.atol + self.rtol * expected.abs()
    }
}

impl Default for Tolerance {
    fn default() -> Self {
        Tolerance::ONNX_DEFAULT
    }
}

/// How an output differs from its reference.
#[derive(Clone, Debug, PartialEq)]
pub enum Difference {
    /// The shapes differ.
    Shape {
        /// Reference shape.
        expected: Vec<u64>,
        /// Engine's shape.
        got: Vec<u64>,
    },
    /// The element types differ.
    DType {
        /// Reference type.
        expected: DType,
        /// Engine's type.
        got: DType,
    },
    /// Some elements are outside the tolerance (or unequal, for exact types).
    Values {
        /// Largest `|got - expected|` over all elements (infinite when a NaN or an infinity
        /// is on one side only; for strings, 1 per differing element).
        max_abs_err: f64,
        /// Elements outside the tolerance.
        mismatched: u64,
        /// Elements compared.
        total: u64,
        /// Flat index of the first element outside the tolerance.
        first_index: u64,
    },
}

impl std::fmt::Display for Difference {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Difference::Shape { expected, got } => {
                write!(f, "shape {got:?}, reference {expected:?}")
            }
            Difference::DType { expected, got } => write!(f, "type {got}, reference {expected}"),
            Difference::Values {
                max_abs_err,
                mismatched,
                total,
                first_index,
            } => write!(
                f,
                "{mismatched} of {total} elements differ (max_abs_err={max_abs_err:.3e}, first at flat index {first_index})"
            ),
        }
    }
}

/// Compares an engine output with its reference: shape, then type, then values.
pub fn compare(expected: &Tensor, got: &Tensor, tolerance: Tolerance) -> Result<(), Difference> {
    if expected.shape() != got.shape() {
        return Err(Difference::Shape {
            expected: expected.shape().to_vec(),
            got: got.shape().to_vec(),
        });
    }
    if expected.dtype() != got.dtype() {
        return Err(Difference::DType {
            expected: expected.dtype(),
            got: got.dtype(),
        });
    }
    let pairs = ElementPairs::of(expected, got);
    let mut mismatched = 0u64;
    let mut first_index = None;
    let mut max_abs_err = 0.0f64;
    let total = pairs.len() as u64;
    for i in 0..pairs.len() {
        let (close, err) = pairs.check(i, tolerance);
        if !close {
            mismatched += 1;
            first_index.get_or_insert(i as u64);
        }
        // NaN never wins `max`, so an unmatched NaN is counted through `close` alone; make
        // the reported error infinite for it.
        let err = if err.is_nan() { f64::INFINITY } else { err };
        max_abs_err = max_abs_err.max(err);
    }
    match first_index {
        None => Ok(()),
        Some(first_index) => Err(Difference::Values {
            max_abs_err,
            mismatched,
            total,
            first_index,
        }),
    }
}

/// Both tensors' elements in a form that can be compared (same dtype and length, checked by
/// the caller).
enum ElementPairs {
    Floats(Vec<f64>, Vec<f64>),
    Signed(Vec<i128>, Vec<i128>),
    Strings(Vec<String>, Vec<String>),
}

impl ElementPairs {
    fn of(expected: &Tensor, got: &Tensor) -> ElementPairs {
        fn floats(t: &Tensor) -> Vec<f64> {
            match t.dtype() {
                DType::F32 => t
                    .to_vec::<f32>()
                    .expect("dtype checked")
                    .into_iter()
                    .map(f64::from)
                    .collect(),
                DType::F64 => t.to_vec::<f64>().expect("dtype checked"),
                DType::F16 => t
                    .to_vec::<half::f16>()
                    .expect("dtype checked")
                    .into_iter()
                    .map(f64::from)
                    .collect(),
                other => unreachable!("{other} is not a float type"),
            }
        }
        fn ints(t: &Tensor) -> Vec<i128> {
            fn conv<T: vouch_types::tensor::Element + Into<i128>>(t: &Tensor) -> Vec<i128> {
                t.to_vec::<T>()
                    .expect("dtype checked")
                    .into_iter()
                    .map(Into::into)
                    .collect()
            }
            match t.dtype() {
                DType::I8 => conv::<i8>(t),
                DType::I16 => conv::<i16>(t),
                DType::I32 => conv::<i32>(t),
                DType::I64 => conv::<i64>(t),
                DType::U8 => conv::<u8>(t),
                DType::U16 => conv::<u16>(t),
                DType::U32 => conv::<u32>(t),
                DType::U64 => conv::<u64>(t),
                DType::Bool => t
                    .to_vec::<bool>()
                    .expect("dtype checked")
                    .into_iter()
                    .map(i128::from)
                    .collect(),
                other => unreachable!("{other} is not an integer type"),
            }
        }
        match expected.dtype() {
            DType::F16 | DType::F32 | DType::F64 => {
                ElementPairs::Floats(floats(expected), floats(got))
            }
            DType::String => ElementPairs::Strings(
                expected.as_strings().expect("dtype checked").to_vec(),
                got.as_strings().expect("dtype checked").to_vec(),
            ),
            _ => ElementPairs::Signed(ints(expected), ints(got)),
        }
    }

    fn len(&self) -> usize {
        match self {
            ElementPairs::Floats(e, _) => e.len(),
            ElementPairs::Signed(e, _) => e.len(),
            ElementPairs::Strings(e, _) => e.len(),
        }
    }

    /// Whether element `i` matches, and its absolute error.
    fn check(&self, i: usize, tolerance: Tolerance) -> (bool, f64) {
        match self {
            ElementPairs::Floats(e, g) => {
                let (e, g) = (e[i], g[i]);
                let close = tolerance.accepts(e, g);
                // Equal infinities and paired NaNs have no error; `inf - inf` would be NaN.
                let err = if close && (e.is_nan() || e.is_infinite()) {
                    0.0
                } else {
                    (g - e).abs()
                };
                (close, err)
            }
            ElementPairs::Signed(e, g) => (e[i] == g[i], (g[i] - e[i]).unsigned_abs() as f64),
            ElementPairs::Strings(e, g) => {
                let equal = e[i] == g[i];
                (equal, if equal { 0.0 } else { 1.0 })
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use vouch_types::Limits;

    fn f32s(shape: Vec<u64>, v: Vec<f32>) -> Tensor {
        Tensor::from_vec(shape, v).unwrap()
    }

    #[test]
    fn floats_within_onnx_tolerance_pass() {
        let tol = Tolerance::ONNX_DEFAULT;
        let r = f32s(vec![3], vec![1.0, -1000.0, 0.0]);
        // rtol 1e-3 of 1000 is 1; atol 1e-7 around zero.
        let ok = f32s(vec![3], vec![1.0009, -1000.99, 9e-8]);
        assert_eq!(compare(&r, &ok, tol), Ok(()));
        let off = f32s(vec![3], vec![1.0, -1001.2, 0.0]);
        let Err(Difference::Values {
            max_abs_err,
            mismatched,
            total,
            first_index,
        }) = compare(&r, &off, tol)
        else {
            panic!("expected a value difference");
        };
        assert!((max_abs_err - 1.2).abs() < 1e-3, "{max_abs_err}");
        assert_eq!((mismatched, total, first_index), (1, 3, 1));
        // Tolerance is relative to the reference, not the result (numpy's asymmetry).
        assert!(!tol.accepts(0.0, 1e-6));
        assert!(
            Tolerance {
                rtol: 0.0,
                atol: 1e-6
            }
            .accepts(0.0, 1e-6)
        );
    }

    #[test]
    fn nan_equals_nan_and_infinities_must_match() {
        let tol = Tolerance::ONNX_DEFAULT;
        let r = f32s(vec![3], vec![f32::NAN, f32::INFINITY, f32::NEG_INFINITY]);
        assert_eq!(compare(&r, &r.clone(), tol), Ok(()));
        let nan_vs_num = f32s(vec![3], vec![1.0, f32::INFINITY, f32::NEG_INFINITY]);
        assert!(matches!(
            compare(&r, &nan_vs_num, tol),
            Err(Difference::Values { max_abs_err, mismatched: 1, .. }) if max_abs_err.is_infinite()
        ));
        let wrong_inf = f32s(
            vec![3],
            vec![f32::NAN, f32::NEG_INFINITY, f32::NEG_INFINITY],
        );
        assert!(matches!(
            compare(&r, &wrong_inf, tol),
            Err(Difference::Values {
                mismatched: 1,
                first_index: 1,
                ..
            })
        ));
        let big = f32s(vec![1], vec![f32::MAX]);
        assert!(compare(&big, &f32s(vec![1], vec![f32::INFINITY]), tol).is_err());
        assert!(!tol.accepts(1.0, f64::NAN));
    }

    #[test]
    fn shape_is_checked_before_type_and_scalars_differ_from_vectors() {
        let tol = Tolerance::ONNX_DEFAULT;
        let r = f32s(vec![2, 2], vec![1.0; 4]);
        assert_eq!(
            compare(&r, &f32s(vec![4], vec![1.0; 4]), tol),
            Err(Difference::Shape {
                expected: vec![2, 2],
                got: vec![4]
            })
        );
        let as_f64 = Tensor::from_vec(vec![2, 2], vec![1.0f64; 4]).unwrap();
        assert_eq!(
            compare(&r, &as_f64, tol),
            Err(Difference::DType {
                expected: DType::F32,
                got: DType::F64
            })
        );
        assert!(matches!(
            compare(&f32s(vec![], vec![1.0]), &f32s(vec![1], vec![1.0]), tol),
            Err(Difference::Shape { .. })
        ));
        assert!(matches!(
            compare(&f32s(vec![1], vec![1.0]), &as_f64, tol),
            Err(Difference::Shape { .. })
        ));
    }

    #[test]
    fn integers_bools_and_strings_are_exact() {
        let tol = Tolerance {
            rtol: 0.5,
            atol: 10.0,
        };
        let r = Tensor::from_vec(vec![2], vec![1_000_000i64, i64::MIN]).unwrap();
        let off_by_one = Tensor::from_vec(vec![2], vec![1_000_001i64, i64::MIN]).unwrap();
        assert_eq!(compare(&r, &r.clone(), tol), Ok(()));
        assert_eq!(
            compare(&r, &off_by_one, tol),
            Err(Difference::Values {
                max_abs_err: 1.0,
                mismatched: 1,
                total: 2,
                first_index: 0
            })
        );
        let u = Tensor::from_vec(vec![1], vec![u64::MAX]).unwrap();
        let u0 = Tensor::from_vec(vec![1], vec![0u64]).unwrap();
        assert!(
            matches!(compare(&u, &u0, tol), Err(Difference::Values { max_abs_err, .. }) if max_abs_err > 1.8e19)
        );
        let b = Tensor::from_vec(vec![2], vec![true, false]).unwrap();
        let nb = Tensor::from_vec(vec![2], vec![true, true]).unwrap();
        assert!(matches!(
            compare(&b, &nb, tol),
            Err(Difference::Values { first_index: 1, .. })
        ));
        let l = Limits::DEFAULT;
        let s = Tensor::from_strings(vec![2], vec!["a".into(), "b".into()], &l).unwrap();
        let s2 = Tensor::from_strings(vec![2], vec!["a".into(), "B".into()], &l).unwrap();
        assert_eq!(compare(&s, &s.clone(), tol), Ok(()));
        assert!(matches!(
            compare(&s, &s2, tol),
            Err(Difference::Values { mismatched: 1, .. })
        ));
    }

    #[test]
    fn half_and_double_compare_in_double() {
        let tol = Tolerance::ONNX_DEFAULT;
        let h = |v: f32| half::f16::from_f32(v);
        let r = Tensor::from_vec(vec![2], vec![h(1.0), h(2.0)]).unwrap();
        let g = Tensor::from_vec(vec![2], vec![h(1.0), h(2.001)]).unwrap();
        // f16 has ~3 decimal digits: 2.001 rounds to 2.0 or 2.00195, within 1e-3 relative.
        assert_eq!(compare(&r, &g, tol), Ok(()));
        let d = Tensor::from_vec(vec![1], vec![1e300f64]).unwrap();
        let d2 = Tensor::from_vec(vec![1], vec![1.002e300f64]).unwrap();
        assert!(compare(&d, &d2, tol).is_err());
    }
}
