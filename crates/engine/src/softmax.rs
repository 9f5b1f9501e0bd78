//! Softmax over non-trailing axes for `exact-fused/1`.
//!
//! tract 0.23.9 computes a softmax whose axes are the trailing ones row by row with its linalg
//! routines (which the profile pins), but walks any other axis through strided views with the
//! C library's `exp` and an unordered sum. This op gathers each such row into a contiguous
//! buffer and runs the very steps tract runs on a trailing row, so a row's bits don't depend
//! on which axis it lies along: `m = max(row)`, `row = exp(row − m)` with the profile's `exp`,
//! `s` = the profile's ordered sum of `row`, `row = row · (1/s)`.

use tract_linalg::routines::Func;
use tract_onnx::tract_core::internal::*;
use tract_onnx::tract_core::ops::nn::{Softmax, SoftmaxKind};

/// A softmax over `axes` (not the trailing ones) of an f32 tensor.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct StridedSoftmax {
    axes: TVec<usize>,
}

impl StridedSoftmax {
    /// Offsets (in elements) of every position of `dims` (a subset of the axes of `shape`),
    /// in row-major order over those axes.
    fn offsets(shape: &[usize], strides: &[usize], dims: &[usize]) -> Vec<usize> {
        let mut offsets = vec![0usize];
        for &axis in dims {
            offsets = offsets
                .iter()
                .flat_map(|&o| (0..shape[axis]).map(move |i| o + i * strides[axis]))
                .collect();
        }
        offsets
    }

    fn run(&self, data: &mut [f32], shape: &[usize]) -> TractResult<()> {
        let mut strides = vec![1usize; shape.len()];
        for axis in (0..shape.len().saturating_sub(1)).rev() {
            strides[axis] = strides[axis + 1] * shape[axis + 1];
        }
        let mut axes = self.axes.to_vec();
        axes.sort_unstable();
        let outer: Vec<usize> = (0..shape.len()).filter(|a| !axes.contains(a)).collect();
        let row = Self::offsets(shape, &strides, &axes);
        let bases = Self::offsets(shape, &strides, &outer);
        if row.is_empty() {
            return Ok(());
        }
        let (max, exp_sum, scale) = (
            Func::ReduceMax.reduce_f32()?,
            Func::Softmax2.map_reduce_f32()?,
            Func::MulByScalar.ew_f32_param()?,
        );
        let mut buf = vec![0f32; row.len()];
        for base in bases {
            for (b, &o) in buf.iter_mut().zip(&row) {
                *b = data[base + o];
            }
            let m = max.run(&buf)?;
            let s = exp_sum.run_with_params(&mut buf, m)?;
            scale.run_with_params(&mut buf, s.recip())?;
            for (b, &o) in buf.iter().zip(&row) {
                data[base + o] = *b;
            }
        }
        Ok(())
    }
}

impl Op for StridedSoftmax {
    fn name(&self) -> StaticName {
        "Softmax".into()
    }

    op_as_typed_op!();
}

impl EvalOp for StridedSoftmax {
    op_out_of_plan!();

    fn eval(&self, _ctx: &EvalContext, inputs: TVec<TValue>) -> TractResult<TVec<TValue>> {
        let x = args_1!(inputs);
        let shape = x.shape().to_vec();
        ensure!(
            self.axes.iter().all(|&a| a < shape.len()),
            "Softmax: axes {:?} for rank {}",
            self.axes,
            shape.len()
        );
        let mut values = x.try_as_plain_ram()?.as_slice::<f32>()?.to_vec();
        self.run(&mut values, &shape)?;
        Ok(tvec!(Tensor::from_shape(&shape, &values)?.into_tvalue()))
    }
}

impl TypedOp for StridedSoftmax {
    fn output_facts(&self, inputs: &[&TypedFact]) -> TractResult<TVec<TypedFact>> {
        Ok(tvec!(inputs[0].without_value()))
    }

    as_op!();
}

/// Whether `axes` are the trailing axes of a rank-`rank` tensor: the layout on which tract runs
/// a softmax through its row routines.
pub(crate) fn on_trailing_axes(axes: &[usize], rank: usize) -> bool {
    let mut axes = axes.to_vec();
    axes.sort_unstable();
    !axes.is_empty()
        && axes
            .iter()
            .enumerate()
            .all(|(i, &a)| a + axes.len() == rank + i)
}

/// Replaces every f32 softmax of the prepared `model` whose axes are not the trailing ones.
/// Returns how many were replaced.
pub(crate) fn strided_softmaxes(model: &mut TypedModel) -> TractResult<usize> {
    let mut replaced = 0;
    for id in 0..model.nodes().len() {
        let node = model.node(id);
        let Some(softmax) = node.op_as::<Softmax>() else {
            continue;
        };
        let fact = &node.outputs[0].fact;
        if on_trailing_axes(&softmax.axes, fact.rank())
            || softmax.kind != SoftmaxKind::Softmax
            || softmax.quant_output_dt.is_some()
            || fact.datum_type != f32::datum_type()
        {
            continue;
        }
        let op = StridedSoftmax {
            axes: softmax.axes.clone(),
        };
        model.node_mut(id).op = Box::new(op);
        replaced += 1;
    }
    Ok(replaced)
}
