//! `LRN` (local response normalisation across channels, opsets 1/13), replacing tract's, whose
//! `powf` is the C library's: glibc picks an FMA or a plain variant by CPU and other C
//! libraries round otherwise, so its bits were not portable. Here the power is the pure-Rust
//! `libm`'s and the rest is a fixed sequence of IEEE operations:
//!
//! ```text
//! ss = x[c0]² + x[c0+1]² + … + x[c1]²          (f32, increasing channel, from 0)
//!      c0 = max(0, c − ⌊(size−1)/2⌋), c1 = min(C−1, c + ⌈(size−1)/2⌉)
//! y  = x / powf(bias + (alpha / size) · ss, beta)
//! ```
//!
//! which is the ONNX definition evaluated left to right. f16 and f64 inputs are computed in
//! f64 and rounded once to the input type.

use tract_onnx::model::ParsingContext;
use tract_onnx::pb::NodeProto;
use tract_onnx::tract_hir::internal::*;

use crate::rust_op::{Kernel, boxed, float_attr, from_f64, to_f64};

/// The `LRN` operator. Floats are kept as `f64` bits so the op stays `Eq`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Lrn {
    alpha: u64,
    beta: u64,
    bias: u64,
    size: usize,
}

/// Builds `LRN`.
pub fn lrn(
    _ctx: &ParsingContext,
    node: &NodeProto,
) -> TractResult<(Box<dyn InferenceOp>, Vec<String>)> {
    let size = node
        .get_attr_opt::<i64>("size")?
        .context("LRN: the size attribute is required")?;
    ensure!(
        (1..=1 << 16).contains(&size),
        "LRN: size {size} out of range"
    );
    boxed(Lrn {
        alpha: float_attr(node, "alpha", 1e-4)?,
        beta: float_attr(node, "beta", 0.75)?,
        bias: float_attr(node, "bias", 1.0)?,
        size: size as usize,
    })
}

impl Lrn {
    fn params(&self) -> (f64, f64, f64) {
        (
            f64::from_bits(self.alpha),
            f64::from_bits(self.beta),
            f64::from_bits(self.bias),
        )
    }

    /// The channel window `[c0, c1]` of channel `c` among `channels`.
    fn window(&self, c: usize, channels: usize) -> (usize, usize) {
        let lo = c.saturating_sub((self.size - 1) / 2);
        let hi = (c + (self.size - 1).div_ceil(2)).min(channels - 1);
        (lo, hi)
    }

    /// f32 in f32 arithmetic, over `[batch, channels, inner]` row-major data.
    fn eval_f32(&self, x: &[f32], shape: &[usize]) -> Vec<f32> {
        let (alpha, beta, bias) = self.params();
        let (alpha, beta, bias) = (alpha as f32, beta as f32, bias as f32);
        let scale = alpha / self.size as f32;
        let channels = shape[1];
        let inner: usize = shape[2..].iter().product();
        let mut y = vec![0f32; x.len()];
        let mut ss = vec![0f32; inner];
        for (xb, yb) in x
            .chunks_exact(channels * inner)
            .zip(y.chunks_exact_mut(channels * inner))
        {
            for c in 0..channels {
                let (lo, hi) = self.window(c, channels);
                ss.iter_mut().for_each(|s| *s = 0.0);
                // Channel-major loops keep the sum for each position in increasing channel
                // order while reading contiguous memory.
                for plane in xb[lo * inner..(hi + 1) * inner].chunks_exact(inner) {
                    for (s, v) in ss.iter_mut().zip(plane) {
                        *s += v * v;
                    }
                }
                let xc = &xb[c * inner..(c + 1) * inner];
                for ((out, v), s) in yb[c * inner..(c + 1) * inner].iter_mut().zip(xc).zip(&ss) {
                    *out = v / libm::powf(bias + scale * s, beta);
                }
            }
        }
        y
    }

    /// Any float type through f64.
    fn eval_f64(&self, x: &[f64], shape: &[usize]) -> Vec<f64> {
        let (alpha, beta, bias) = self.params();
        let scale = alpha / self.size as f64;
        let channels = shape[1];
        let inner: usize = shape[2..].iter().product();
        let mut y = vec![0f64; x.len()];
        for (xb, yb) in x
            .chunks_exact(channels * inner)
            .zip(y.chunks_exact_mut(channels * inner))
        {
            for c in 0..channels {
                let (lo, hi) = self.window(c, channels);
                for i in 0..inner {
                    let mut s = 0f64;
                    for cc in lo..=hi {
                        let v = xb[cc * inner + i];
                        s += v * v;
                    }
                    yb[c * inner + i] = xb[c * inner + i] / libm::pow(bias + scale * s, beta);
                }
            }
        }
        y
    }
}

impl Kernel for Lrn {
    fn name(&self) -> &'static str {
        "LRN"
    }

    fn output_facts(&self, inputs: &[&TypedFact]) -> TractResult<TVec<TypedFact>> {
        let x = inputs[0];
        ensure!(x.datum_type.is_float(), "LRN: input must be floats");
        ensure!(
            x.rank() >= 3,
            "LRN: input of rank {} (at least 3)",
            x.rank()
        );
        Ok(tvec![x.datum_type.fact(x.shape.clone())])
    }

    fn eval(&self, inputs: TVec<TValue>) -> TractResult<TVec<TValue>> {
        let x = &inputs[0];
        let shape = x.shape().to_vec();
        ensure!(shape.len() >= 3, "LRN: input of rank {}", shape.len());
        if shape.contains(&0) {
            return Ok(tvec![x.clone()]);
        }
        if x.datum_type() == f32::datum_type() {
            let y = self.eval_f32(x.try_as_plain_ram()?.as_slice::<f32>()?, &shape);
            return Ok(tvec![Tensor::from_shape(&shape, &y)?.into_tvalue()]);
        }
        let y = self.eval_f64(&to_f64(x)?, &shape);
        Ok(tvec![from_f64(x.datum_type(), &shape, &y)?])
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn op(size: usize, alpha: f64, beta: f64, bias: f64) -> Lrn {
        Lrn {
            alpha: alpha.to_bits(),
            beta: beta.to_bits(),
            bias: bias.to_bits(),
            size,
        }
    }

    /// The ONNX reference formula written out per element, in the documented order.
    fn reference(op: &Lrn, x: &[f32], shape: &[usize]) -> Vec<f32> {
        let (alpha, beta, bias) = op.params();
        let (c_n, inner) = (shape[1], shape[2..].iter().product::<usize>());
        (0..x.len())
            .map(|i| {
                let (b, c, p) = (i / (c_n * inner), (i / inner) % c_n, i % inner);
                let lo = c.saturating_sub((op.size - 1) / 2);
                let hi = (c + (op.size - 1).div_ceil(2)).min(c_n - 1);
                let mut s = 0f32;
                for cc in lo..=hi {
                    let v = x[b * c_n * inner + cc * inner + p];
                    s += v * v;
                }
                let scale = alpha as f32 / op.size as f32;
                x[i] / libm::powf(bias as f32 + scale * s, beta as f32)
            })
            .collect()
    }

    #[test]
    fn matches_the_definition_bit_for_bit() {
        for (size, shape) in [
            (5, vec![2, 7, 3, 4]),
            (3, vec![1, 1, 5]),
            (4, vec![1, 6, 2, 2]),
            (9, vec![1, 4, 3]),
        ] {
            let n: usize = shape.iter().product();
            let x: Vec<f32> = (0..n)
                .map(|i| ((i * 7919 % 97) as f32 - 48.0) * 0.37)
                .collect();
            let lrn = op(size, 2e-3, 0.75, 1.5);
            assert_eq!(
                lrn.eval_f32(&x, &shape),
                reference(&lrn, &x, &shape),
                "size {size} {shape:?}"
            );
        }
    }

    #[test]
    fn f64_path_agrees_with_f32_to_rounding() {
        let shape = [1usize, 5, 4];
        let x: Vec<f32> = (0..20).map(|i| i as f32 * 0.5 - 4.0).collect();
        let lrn = op(3, 1e-2, 0.75, 1.0);
        let y32 = lrn.eval_f32(&x, &shape);
        let y64 = lrn.eval_f64(&x.iter().map(|&v| v as f64).collect::<Vec<_>>(), &shape);
        for (a, b) in y32.iter().zip(&y64) {
            assert!(
                (*a as f64 - b).abs() <= 1e-5 * b.abs().max(1.0),
                "{a} vs {b}"
            );
        }
    }

    #[test]
    fn an_input_below_rank_3_is_an_error() {
        let lrn = op(1, 1e-4, 0.75, 1.0);
        assert!(lrn.output_facts(&[&f32::fact([3])]).is_err());
    }
}
