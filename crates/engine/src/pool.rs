//! Max pooling for `exact-fused/1`: one definition on every CPU, and a faster one.
//!
//! tract 0.23.9 has several max-pool paths (a SIMD stride-1 2×2 kernel, a scalar 2×2 walk
//! starting from `f32::MIN`, a generic patch walk), which agree on values but not on the sign
//! of a zero tie or on NaN, and a model with a symbolic batch rebuilds the pooling geometry on
//! every run. Under the profile, 2-D f32 max pools over planes (`NCHW`/`CHW`, no dilation, no
//! index output) run this op instead. Its definition (docs/protocol.md §4.1): each output
//! starts at −∞ and takes, in row-major kernel order over the taps that fall inside the
//! input, every value `v` with `v > current`; padding contributes nothing, and a NaN is never
//! taken.

use tract_onnx::tract_core::internal::*;
use tract_onnx::tract_core::ops::cnn::{MaxPool, OptMaxPool, PoolSpec};
use tract_onnx::tract_core::ops::nn::DataFormat;

/// A 2-D max pool over contiguous planes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct PlanarMaxPool {
    pool_spec: PoolSpec,
}

/// One spatial axis: input size, output size, stride, kernel size, pad before.
#[derive(Clone, Copy, Debug)]
struct Axis {
    input: usize,
    output: usize,
    stride: usize,
    kernel: usize,
    pad: usize,
}

impl PlanarMaxPool {
    fn axes(&self, hw: &[usize]) -> TractResult<[Axis; 2]> {
        let padding = self.pool_spec.computed_padding(hw);
        let axis = |i: usize| -> TractResult<Axis> {
            Ok(Axis {
                input: hw[i],
                output: padding[i].convoluted,
                stride: self.pool_spec.stride(i),
                kernel: self.pool_spec.kernel_shape[i],
                pad: padding[i].pad_before,
            })
        };
        Ok([axis(0)?, axis(1)?])
    }

    fn pool(&self, x: &[f32], planes: usize, [h, w]: [Axis; 2]) -> Vec<f32> {
        let (in_plane, out_plane) = (h.input * w.input, h.output * w.output);
        let mut y = vec![f32::NEG_INFINITY; planes * out_plane];
        // The taps of output `o` that fall inside the input: `k` in `lo..hi`.
        let taps = |a: Axis, o: usize| {
            let start = o * a.stride;
            let lo = a.pad.saturating_sub(start).min(a.kernel);
            let hi = (a.input + a.pad)
                .saturating_sub(start)
                .min(a.kernel)
                .max(lo);
            (lo, hi, start)
        };
        let columns: Vec<(usize, usize, usize)> = (0..w.output).map(|ox| taps(w, ox)).collect();
        for (xp, yp) in x.chunks_exact(in_plane).zip(y.chunks_exact_mut(out_plane)) {
            for oy in 0..h.output {
                let (ky_lo, ky_hi, y0) = taps(h, oy);
                let row = &mut yp[oy * w.output..(oy + 1) * w.output];
                for (m, &(kx_lo, kx_hi, x0)) in row.iter_mut().zip(&columns) {
                    // The whole window in registers, taps in row-major order.
                    let mut acc = f32::NEG_INFINITY;
                    if kx_lo == kx_hi {
                        // A window wholly in the padding (possible with ceil_mode).
                        *m = acc;
                        continue;
                    }
                    for ky in ky_lo..ky_hi {
                        let iy = y0 + ky - h.pad;
                        let irow = &xp[iy * w.input + x0 + kx_lo - w.pad..][..kx_hi - kx_lo];
                        for &v in irow {
                            acc = if v > acc { v } else { acc };
                        }
                    }
                    *m = acc;
                }
            }
        }
        y
    }
}

impl Op for PlanarMaxPool {
    fn name(&self) -> StaticName {
        "MaxPool".into()
    }

    op_as_typed_op!();
}

impl EvalOp for PlanarMaxPool {
    op_out_of_plan!();

    fn eval(&self, _ctx: &EvalContext, inputs: TVec<TValue>) -> TractResult<TVec<TValue>> {
        let x = args_1!(inputs);
        let shape = x.shape();
        let n_axis = self.pool_spec.data_format.has_n() as usize;
        ensure!(
            shape.len() == 3 + n_axis,
            "MaxPool: input of rank {}",
            shape.len()
        );
        let axes = self.axes(&shape[n_axis + 1..])?;
        let planes: usize = shape[..n_axis + 1].iter().product();
        let y = self.pool(x.try_as_plain_ram()?.as_slice::<f32>()?, planes, axes);
        let mut out_shape: TVec<usize> = shape[..n_axis + 1].into();
        out_shape.extend(axes.iter().map(|a| a.output));
        Ok(tvec!(Tensor::from_shape(&out_shape, &y)?.into_tvalue()))
    }
}

impl TypedOp for PlanarMaxPool {
    fn output_facts(&self, inputs: &[&TypedFact]) -> TractResult<TVec<TypedFact>> {
        self.pool_spec.output_facts(inputs)
    }

    as_op!();
}

/// Replaces every max pool of the prepared `model` that [`PlanarMaxPool`] covers. Returns how
/// many were replaced.
pub(crate) fn planar_max_pools(model: &mut TypedModel) -> TractResult<usize> {
    let mut replaced = 0;
    for id in 0..model.nodes().len() {
        let node = model.node(id);
        let (spec, indices) = if let Some(p) = node.op_as::<MaxPool>() {
            (&p.pool_spec, p.with_index_outputs)
        } else if let Some(p) = node.op_as::<OptMaxPool>() {
            (&p.pool_spec, p.with_index_outputs)
        } else {
            continue;
        };
        let covered = indices.is_none()
            && matches!(spec.data_format, DataFormat::NCHW | DataFormat::CHW)
            && spec.rank() == 2
            && spec.dilations().iter().all(|&d| d == 1)
            && spec.strides().iter().all(|&s| s > 0)
            && spec.kernel_shape.iter().all(|&k| k > 0)
            && model.outlet_fact(node.inputs[0])?.datum_type == f32::datum_type();
        if covered {
            let op = PlanarMaxPool {
                pool_spec: spec.clone(),
            };
            model.node_mut(id).op = Box::new(op);
            replaced += 1;
        }
    }
    Ok(replaced)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The definition, output by output, in row-major tap order.
    fn reference(x: &[f32], [h, w]: [Axis; 2]) -> Vec<f32> {
        let mut y = vec![];
        for oy in 0..h.output {
            for ox in 0..w.output {
                let mut m = f32::NEG_INFINITY;
                for ky in 0..h.kernel {
                    for kx in 0..w.kernel {
                        let (iy, ix) = (
                            (oy * h.stride + ky) as isize - h.pad as isize,
                            (ox * w.stride + kx) as isize - w.pad as isize,
                        );
                        if iy >= 0 && ix >= 0 && (iy as usize) < h.input && (ix as usize) < w.input
                        {
                            let v = x[iy as usize * w.input + ix as usize];
                            if v > m {
                                m = v;
                            }
                        }
                    }
                }
                y.push(m);
            }
        }
        y
    }

    fn axis(input: usize, kernel: usize, stride: usize, pad: usize, output: usize) -> Axis {
        Axis {
            input,
            output,
            stride,
            kernel,
            pad,
        }
    }

    #[test]
    fn the_fast_walk_is_the_definition() {
        let op = PlanarMaxPool {
            pool_spec: PoolSpec::default(),
        };
        for (h, w) in [
            (axis(28, 2, 2, 0, 14), axis(28, 2, 2, 0, 14)),
            (axis(13, 3, 2, 1, 7), axis(11, 3, 2, 1, 6)),
            (axis(7, 3, 1, 1, 7), axis(9, 2, 3, 0, 3)),
            (axis(5, 3, 2, 0, 3), axis(5, 3, 2, 0, 3)), // ceil mode: the last window overhangs
            (axis(4, 5, 1, 2, 4), axis(6, 1, 1, 0, 6)),
            (axis(3, 1, 4, 2, 2), axis(3, 1, 4, 0, 2)), // windows wholly in padding, left and right
        ] {
            let x: Vec<f32> = (0..2 * h.input * w.input)
                .map(|i| ((i * 7919) % 211) as f32 - 105.0)
                .collect();
            let got = op.pool(&x, 2, [h, w]);
            let plane = h.input * w.input;
            let mut want = reference(&x[..plane], [h, w]);
            want.extend(reference(&x[plane..], [h, w]));
            assert_eq!(got, want, "{h:?} {w:?}");
        }
    }
}
