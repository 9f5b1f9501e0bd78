//! Score post-transforms (`post_transform`) and the portable math they use.
//!
//! Outputs are bit-identical on every machine: transcendental functions come from the pure-Rust
//! `libm` crate (the same instructions everywhere, no FMA, no platform libm), sums run in a fixed
//! order, and nothing here calls `mul_add`. The formulas are onnxruntime's (`ml_common.h`), in f32
//! as there, so results agree with it to within a few ulps (onnxruntime's own vectorised
//! logistic and softmax are approximations; ours are the exactly rounded-per-step formulas).

use crate::attrs::Attrs;
use crate::error::MlResult;

/// `post_transform`: how raw scores become the output scores.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum PostTransform {
    /// Raw scores.
    None,
    /// Softmax over each row.
    Softmax,
    /// Logistic function of each score.
    Logistic,
    /// Softmax skipping (near-)zero scores.
    SoftmaxZero,
    /// Probit (inverse normal CDF) of each score.
    Probit,
}

impl PostTransform {
    /// Reads the string form (`post_transform` of the opset-1..3 operators).
    pub(crate) fn from_attr(attrs: &Attrs) -> MlResult<PostTransform> {
        match attrs.string("post_transform")?.as_deref() {
            None | Some("NONE") => Ok(PostTransform::None),
            Some("SOFTMAX") => Ok(PostTransform::Softmax),
            Some("LOGISTIC") => Ok(PostTransform::Logistic),
            Some("SOFTMAX_ZERO") => Ok(PostTransform::SoftmaxZero),
            Some("PROBIT") => Ok(PostTransform::Probit),
            Some(other) => Err(attrs.error(
                "post_transform",
                format!("is {other:?}; expected NONE, SOFTMAX, LOGISTIC, SOFTMAX_ZERO or PROBIT"),
            )),
        }
    }

    /// Reads the integer form (`post_transform` of opset-5 TreeEnsemble).
    pub(crate) fn from_int_attr(attrs: &Attrs) -> MlResult<PostTransform> {
        match attrs.int("post_transform")? {
            None | Some(0) => Ok(PostTransform::None),
            Some(1) => Ok(PostTransform::Softmax),
            Some(2) => Ok(PostTransform::Logistic),
            Some(3) => Ok(PostTransform::SoftmaxZero),
            Some(4) => Ok(PostTransform::Probit),
            Some(other) => Err(attrs.error(
                "post_transform",
                format!("is {other}; expected 0 (NONE) to 4 (PROBIT)"),
            )),
        }
    }

    /// Applies the transform to one row of two or more scores, in place.
    pub(crate) fn apply_row(self, scores: &mut [f32]) {
        match self {
            PostTransform::None => {}
            PostTransform::Logistic => scores.iter_mut().for_each(|s| *s = logistic(*s)),
            PostTransform::Probit => scores.iter_mut().for_each(|s| *s = probit(*s)),
            PostTransform::Softmax => softmax(scores),
            PostTransform::SoftmaxZero => softmax_zero(scores),
        }
    }
}

/// The logistic function, computed as onnxruntime does: on |x| (so it never overflows) and
/// mirrored for negative x.
pub(crate) fn logistic(x: f32) -> f32 {
    let v = 1.0 / (1.0 + libm::expf(-x.abs()));
    if x < 0.0 { 1.0 - v } else { v }
}

/// Probit: `sqrt(2) * erfinv(2x - 1)`, with onnxruntime's closed-form erfinv approximation.
pub(crate) fn probit(x: f32) -> f32 {
    std::f32::consts::SQRT_2 * erf_inv(2.0 * x - 1.0)
}

/// Winitzki's approximation of erfinv (a = 0.147), step for step as onnxruntime computes it.
fn erf_inv(x: f32) -> f32 {
    let sign = if x < 0.0 { -1.0f32 } else { 1.0 };
    let x = (1.0 - x) * (1.0 + x);
    let log = libm::logf(x);
    let v = 2.0 / (std::f32::consts::PI * 0.147) + 0.5 * log;
    let v2 = 1.0 / 0.147 * log;
    let v3 = -v + (v * v - v2).sqrt();
    sign * v3.sqrt()
}

/// Softmax of one row: subtract the row's maximum, exponentiate, divide by the sum taken in
/// index order.
pub(crate) fn softmax(row: &mut [f32]) {
    let mut max = -f32::MAX;
    for &v in row.iter() {
        if v > max {
            max = v;
        }
    }
    let mut sum = 0.0f32;
    for v in row.iter_mut() {
        *v = libm::expf(*v - max);
        sum += *v;
    }
    for v in row.iter_mut() {
        *v /= sum;
    }
}

/// Softmax that leaves scores within 1e-7 of zero out of the sum (onnxruntime's SOFTMAX_ZERO).
pub(crate) fn softmax_zero(row: &mut [f32]) {
    let mut max = -f32::MAX;
    for &v in row.iter() {
        if v > max {
            max = v;
        }
    }
    let exp_neg_max = libm::expf(-max);
    let mut sum = 0.0f32;
    for v in row.iter_mut() {
        if *v > 0.000_000_1 || *v < -0.000_000_1 {
            *v = libm::expf(*v - max);
            sum += *v;
        } else {
            *v *= exp_neg_max;
        }
    }
    for v in row.iter_mut() {
        *v /= sum;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn logistic_reaches_its_limits_and_is_symmetric() {
        assert_eq!(logistic(0.0), 0.5);
        assert_eq!(logistic(200.0), 1.0);
        assert_eq!(logistic(-200.0), 0.0);
        for x in [0.1f32, 1.0, 3.5, 20.0] {
            assert_eq!(logistic(-x), 1.0 - logistic(x));
        }
        assert!(logistic(f32::NAN).is_nan());
    }

    #[test]
    fn softmax_sums_to_one_and_survives_large_scores() {
        let mut row = [1000.0f32, 1000.0, -1000.0];
        softmax(&mut row);
        assert_eq!(row, [0.5, 0.5, 0.0]);
        let mut row = [0.0f32, 1.0, 2.0];
        softmax(&mut row);
        assert!((row.iter().sum::<f32>() - 1.0).abs() < 1e-6);
    }

    #[test]
    fn softmax_zero_skips_zeros() {
        let mut row = [0.0f32, 1.0, 1.0];
        softmax_zero(&mut row);
        assert_eq!(row, [0.0, 0.5, 0.5]);
    }

    #[test]
    fn probit_is_an_odd_function_around_one_half() {
        assert_eq!(probit(0.5), 0.0);
        assert!((probit(0.975) - 1.959_964).abs() < 2e-3);
        assert_eq!(probit(0.1), -probit(0.9));
    }

    #[test]
    fn math_is_the_portable_implementation() {
        // Fixed bits from libm's expf: the same on every platform Rust supports.
        assert_eq!(libm::expf(1.0).to_bits(), 0x402d_f854);
        assert_eq!(logistic(1.0).to_bits(), 0x3f3b_26a8);
    }
}
