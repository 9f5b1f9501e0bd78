//! Operators that only move elements, for every element type: `ReverseSequence`,
//! `TensorScatter`, `CenterCropPad`, `Upsample` (nearest, integer scales) and `MaxUnpool`.
//!
//! Where an output size depends on an input's values (a crop shape, scales, an output shape
//! given at run time), the output dimension is a symbol minted when the node is parsed and
//! bound by the plan when the node runs.

use tract_onnx::model::ParsingContext;
use tract_onnx::pb::NodeProto;
use tract_onnx::tract_hir::internal::*;

use crate::rust_op::{
    Kernel, boxed, coords, gather_elements, input_slots, strides, to_f64, to_i64,
};

/// Symbols for output dimensions that depend on input values, one per axis.
fn axis_symbols(ctx: &ParsingContext, prefix: &str) -> Vec<Symbol> {
    (0..MAX_RANK)
        .map(|_| ctx.template.symbols.new_with_prefix(prefix))
        .collect()
}

/// Highest rank these operators take when a size depends on values.
const MAX_RANK: usize = 8;

/// Values of a constant integer input, if the fact has them.
fn konst_i64(fact: &TypedFact) -> Option<Vec<i64>> {
    fact.konst.as_ref().and_then(|k| to_i64(k).ok())
}

/// `ReverseSequence`: reverses the first `sequence_lens[b]` steps of each batch entry.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ReverseSequence {
    batch_axis: usize,
    time_axis: usize,
}

/// Builds `ReverseSequence`.
pub fn reverse_sequence(
    _ctx: &ParsingContext,
    node: &NodeProto,
) -> TractResult<(Box<dyn InferenceOp>, Vec<String>)> {
    let batch_axis = node.get_attr_opt::<i64>("batch_axis")?.unwrap_or(1);
    let time_axis = node.get_attr_opt::<i64>("time_axis")?.unwrap_or(0);
    ensure!(
        matches!((batch_axis, time_axis), (0, 1) | (1, 0)),
        "ReverseSequence: batch_axis {batch_axis} and time_axis {time_axis}"
    );
    boxed(ReverseSequence {
        batch_axis: batch_axis as usize,
        time_axis: time_axis as usize,
    })
}

impl Kernel for ReverseSequence {
    fn name(&self) -> &'static str {
        "ReverseSequence"
    }

    fn output_facts(&self, inputs: &[&TypedFact]) -> TractResult<TVec<TypedFact>> {
        ensure!(inputs[0].rank() >= 2, "ReverseSequence: input of rank < 2");
        Ok(tvec![inputs[0].without_value()])
    }

    fn eval(&self, inputs: TVec<TValue>) -> TractResult<TVec<TValue>> {
        let (x, lens) = (&inputs[0], to_i64(&inputs[1])?);
        let shape = x.shape();
        ensure!(shape.len() >= 2, "ReverseSequence: input of rank < 2");
        let (batch, time) = (shape[self.batch_axis], shape[self.time_axis]);
        ensure!(
            lens.len() == batch,
            "ReverseSequence: {} lengths for {batch}",
            lens.len()
        );
        let st = strides(shape);
        let sources = (0..x.len())
            .map(|i| {
                let c = coords(i, shape);
                let len = lens[c[self.batch_axis]];
                ensure!(
                    (0..=time as i64).contains(&len),
                    "ReverseSequence: length {len} outside 0..={time}"
                );
                let t = c[self.time_axis];
                if (t as i64) < len {
                    let src = len as usize - 1 - t;
                    Ok(Some(i - t * st[self.time_axis] + src * st[self.time_axis]))
                } else {
                    Ok(Some(i))
                }
            })
            .collect::<TractResult<Vec<_>>>()?;
        Ok(tvec![gather_elements(x, shape, &sources)?.into_tvalue()])
    }
}

/// `TensorScatter`: writes `update` into a copy of the cache along `axis`, at each batch
/// entry's write index (`linear`) or modulo the cache length (`circular`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TensorScatter {
    axis: i64,
    circular: bool,
    write_indices: Option<usize>,
}

/// Builds `TensorScatter`.
pub fn tensor_scatter(
    _ctx: &ParsingContext,
    node: &NodeProto,
) -> TractResult<(Box<dyn InferenceOp>, Vec<String>)> {
    let circular = match node.get_attr_opt::<&str>("mode")?.unwrap_or("linear") {
        "linear" => false,
        "circular" => true,
        other => bail!("TensorScatter: unknown mode {other:?}"),
    };
    boxed(TensorScatter {
        axis: node.get_attr_opt::<i64>("axis")?.unwrap_or(-2),
        circular,
        write_indices: input_slots(node, 3)[2],
    })
}

impl Kernel for TensorScatter {
    fn name(&self) -> &'static str {
        "TensorScatter"
    }

    fn output_facts(&self, inputs: &[&TypedFact]) -> TractResult<TVec<TypedFact>> {
        ensure!(
            inputs[0].datum_type == inputs[1].datum_type,
            "TensorScatter: types differ"
        );
        Ok(tvec![inputs[0].without_value()])
    }

    fn eval(&self, inputs: TVec<TValue>) -> TractResult<TVec<TValue>> {
        let (cache, update) = (&inputs[0], &inputs[1]);
        let shape = cache.shape();
        let rank = shape.len() as i64;
        ensure!(
            rank >= 1 && (-rank..rank).contains(&self.axis),
            "TensorScatter: axis"
        );
        let axis = self.axis.rem_euclid(rank) as usize;
        ensure!(
            update.rank() == shape.len()
                && (0..shape.len()).all(|a| if a == axis {
                    update.shape()[a] <= shape[a]
                } else {
                    update.shape()[a] == shape[a]
                }),
            "TensorScatter: update {:?} does not fit cache {:?}",
            update.shape(),
            shape
        );
        let writes = match self.write_indices {
            Some(ix) => to_i64(&inputs[ix])?,
            None => vec![0; shape[0]],
        };
        ensure!(
            writes.len() == shape[0],
            "TensorScatter: one write index per batch entry"
        );
        let max_len = shape[axis] as i64;
        let cache_strides = strides(shape);
        // Each cache element comes from the update or stays; sources index the concatenation
        // cache ++ update.
        let mut sources: Vec<Option<usize>> = (0..cache.len()).map(Some).collect();
        for u in 0..update.len() {
            let mut c = coords(u, update.shape());
            let mut at = writes[c[0]] + c[axis] as i64;
            if self.circular {
                at = at.rem_euclid(max_len);
            }
            ensure!(
                (0..max_len).contains(&at),
                "TensorScatter: write at {at} outside the cache"
            );
            c[axis] = at as usize;
            let dst: usize = c.iter().zip(&cache_strides).map(|(a, b)| a * b).sum();
            sources[dst] = Some(cache.len() + u);
        }
        let joined = Tensor::stack_tensors(
            0,
            &[
                cache.clone().into_tensor().into_shape(&[cache.len()])?,
                update.clone().into_tensor().into_shape(&[update.len()])?,
            ],
        )?;
        Ok(tvec![
            gather_elements(&joined, shape, &sources)?.into_tvalue()
        ])
    }
}

/// `CenterCropPad`: crops or zero-pads the given axes to the given sizes, centred.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CenterCropPad {
    axes: Option<Vec<i64>>,
    symbols: Vec<Symbol>,
}

/// Builds `CenterCropPad`.
pub fn center_crop_pad(
    ctx: &ParsingContext,
    node: &NodeProto,
) -> TractResult<(Box<dyn InferenceOp>, Vec<String>)> {
    boxed(CenterCropPad {
        axes: node.get_attr_opt_vec::<i64>("axes")?,
        symbols: axis_symbols(ctx, "crop"),
    })
}

impl CenterCropPad {
    fn axes(&self, rank: usize) -> TractResult<Vec<usize>> {
        match &self.axes {
            None => Ok((0..rank).collect()),
            Some(axes) => axes
                .iter()
                .map(|&a| {
                    let r = rank as i64;
                    ensure!(
                        (-r..r).contains(&a),
                        "CenterCropPad: axis {a} for rank {rank}"
                    );
                    Ok(a.rem_euclid(r) as usize)
                })
                .collect(),
        }
    }
}

impl Kernel for CenterCropPad {
    fn name(&self) -> &'static str {
        "CenterCropPad"
    }

    fn output_facts(&self, inputs: &[&TypedFact]) -> TractResult<TVec<TypedFact>> {
        let rank = inputs[0].rank();
        ensure!(
            rank <= MAX_RANK,
            "CenterCropPad: rank {rank} above {MAX_RANK}"
        );
        let axes = self.axes(rank)?;
        let sizes = konst_i64(inputs[1]);
        let mut dims: TVec<TDim> = inputs[0].shape.to_tvec();
        for (i, &axis) in axes.iter().enumerate() {
            dims[axis] = match &sizes {
                Some(s) => s
                    .get(i)
                    .context("CenterCropPad: fewer sizes than axes")?
                    .to_dim(),
                None => self.symbols[axis].to_dim(),
            };
        }
        Ok(tvec![inputs[0].datum_type.fact(dims)])
    }

    fn eval(&self, inputs: TVec<TValue>) -> TractResult<TVec<TValue>> {
        let x = &inputs[0];
        let sizes = to_i64(&inputs[1])?;
        let axes = self.axes(x.rank())?;
        ensure!(
            sizes.len() == axes.len(),
            "CenterCropPad: {} sizes for {} axes",
            sizes.len(),
            axes.len()
        );
        let mut out_shape = x.shape().to_vec();
        // Per axis, output coordinate o reads input coordinate o + offset (when in range).
        let mut offsets = vec![0i64; x.rank()];
        for (&axis, &size) in axes.iter().zip(&sizes) {
            ensure!(size >= 0, "CenterCropPad: negative size {size}");
            let dim = x.shape()[axis] as i64;
            out_shape[axis] = size as usize;
            offsets[axis] = if size < dim {
                (dim - size) / 2
            } else {
                -((size - dim) / 2)
            };
        }
        let in_strides = strides(x.shape());
        let total: usize = out_shape.iter().product();
        let sources: Vec<Option<usize>> = (0..total)
            .map(|o| {
                let c = coords(o, &out_shape);
                let mut src = 0;
                for axis in 0..c.len() {
                    let i = c[axis] as i64 + offsets[axis];
                    if i < 0 || i >= x.shape()[axis] as i64 {
                        return None;
                    }
                    src += i as usize * in_strides[axis];
                }
                Some(src)
            })
            .collect();
        Ok(tvec![
            gather_elements(x, &out_shape, &sources)?.into_tvalue()
        ])
    }
}

/// `Upsample` (opsets 7–9) in `nearest` mode with whole-number scales.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Upsample {
    symbols: Vec<Symbol>,
}

/// Builds `Upsample`.
pub fn upsample(
    ctx: &ParsingContext,
    node: &NodeProto,
) -> TractResult<(Box<dyn InferenceOp>, Vec<String>)> {
    let mode = node.get_attr_opt::<&str>("mode")?.unwrap_or("nearest");
    ensure!(
        mode == "nearest",
        "Upsample: mode {mode:?} is not supported, only nearest"
    );
    ensure!(
        node.input.len() == 2,
        "Upsample: scales as an attribute (opset 7) are not supported"
    );
    boxed(Upsample {
        symbols: axis_symbols(ctx, "up"),
    })
}

fn whole_scales(scales: &[f64]) -> TractResult<Vec<usize>> {
    scales
        .iter()
        .map(|&s| {
            ensure!(
                s >= 1.0 && s.fract() == 0.0,
                "Upsample: scale {s} is not a whole number"
            );
            Ok(s as usize)
        })
        .collect()
}

impl Kernel for Upsample {
    fn name(&self) -> &'static str {
        "Upsample"
    }

    fn output_facts(&self, inputs: &[&TypedFact]) -> TractResult<TVec<TypedFact>> {
        let rank = inputs[0].rank();
        ensure!(rank <= MAX_RANK, "Upsample: rank {rank} above {MAX_RANK}");
        let scales = inputs[1].konst.as_ref().and_then(|k| to_f64(k).ok());
        let dims: TVec<TDim> = match scales {
            Some(s) => {
                let s = whole_scales(&s)?;
                ensure!(
                    s.len() == rank,
                    "Upsample: {} scales for rank {rank}",
                    s.len()
                );
                inputs[0]
                    .shape
                    .iter()
                    .zip(s)
                    .map(|(d, s)| d.clone() * s as i64)
                    .collect()
            }
            None => self.symbols[..rank].iter().map(|s| s.to_dim()).collect(),
        };
        Ok(tvec![inputs[0].datum_type.fact(dims)])
    }

    fn eval(&self, inputs: TVec<TValue>) -> TractResult<TVec<TValue>> {
        let x = &inputs[0];
        let scales = whole_scales(&to_f64(&inputs[1])?)?;
        ensure!(
            scales.len() == x.rank(),
            "Upsample: {} scales for rank {}",
            scales.len(),
            x.rank()
        );
        let out_shape: Vec<usize> = x.shape().iter().zip(&scales).map(|(d, s)| d * s).collect();
        let in_strides = strides(x.shape());
        let total: usize = out_shape.iter().product();
        let sources: Vec<Option<usize>> = (0..total)
            .map(|o| {
                let c = coords(o, &out_shape);
                Some(
                    c.iter()
                        .zip(&scales)
                        .zip(&in_strides)
                        .map(|((c, s), st)| c / s * st)
                        .sum(),
                )
            })
            .collect();
        Ok(tvec![
            gather_elements(x, &out_shape, &sources)?.into_tvalue()
        ])
    }
}

/// `MaxUnpool`: scatters pooled values back to the positions their indices name.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MaxUnpool {
    kernel_shape: Vec<usize>,
    pads: Vec<usize>,
    strides: Vec<usize>,
    has_output_shape: bool,
    symbols: Vec<Symbol>,
}

/// Builds `MaxUnpool`.
pub fn max_unpool(
    ctx: &ParsingContext,
    node: &NodeProto,
) -> TractResult<(Box<dyn InferenceOp>, Vec<String>)> {
    let kernel_shape: Vec<usize> = node
        .get_attr_vec::<i64>("kernel_shape")?
        .iter()
        .map(|&k| k as usize)
        .collect();
    let n = kernel_shape.len();
    let pads = node
        .get_attr_opt_vec::<i64>("pads")?
        .unwrap_or_else(|| vec![0; 2 * n])
        .iter()
        .map(|&p| p as usize)
        .collect::<Vec<_>>();
    let strides = node
        .get_attr_opt_vec::<i64>("strides")?
        .unwrap_or_else(|| vec![1; n])
        .iter()
        .map(|&s| s as usize)
        .collect::<Vec<_>>();
    ensure!(
        pads.len() == 2 * n && strides.len() == n,
        "MaxUnpool: pads or strides"
    );
    boxed(MaxUnpool {
        kernel_shape,
        pads,
        strides,
        has_output_shape: input_slots(node, 3)[2].is_some(),
        symbols: axis_symbols(ctx, "unpool"),
    })
}

impl MaxUnpool {
    fn inferred<D>(&self, shape: &[D]) -> Vec<D>
    where
        D: Clone
            + std::ops::Add<i64, Output = D>
            + std::ops::Mul<i64, Output = D>
            + std::ops::Sub<i64, Output = D>,
    {
        let n = self.kernel_shape.len();
        let mut out = shape.to_vec();
        for d in 0..n {
            out[d + 2] = (shape[d + 2].clone() - 1) * self.strides[d] as i64
                - (self.pads[d] + self.pads[n + d]) as i64
                + self.kernel_shape[d] as i64;
        }
        out
    }
}

impl Kernel for MaxUnpool {
    fn name(&self) -> &'static str {
        "MaxUnpool"
    }

    fn output_facts(&self, inputs: &[&TypedFact]) -> TractResult<TVec<TypedFact>> {
        let rank = inputs[0].rank();
        ensure!(
            rank == self.kernel_shape.len() + 2,
            "MaxUnpool: rank {rank} for the kernel"
        );
        let dims: Vec<TDim> = if self.has_output_shape {
            match konst_i64(inputs[2]) {
                Some(s) => s.iter().map(|d| d.to_dim()).collect(),
                None => self.symbols[..rank].iter().map(|s| s.to_dim()).collect(),
            }
        } else {
            let shape: Vec<TDim> = inputs[0].shape.to_tvec().into_vec();
            self.inferred(&shape)
        };
        Ok(tvec![inputs[0].datum_type.fact(dims)])
    }

    fn eval(&self, inputs: TVec<TValue>) -> TractResult<TVec<TValue>> {
        let (x, indices) = (&inputs[0], to_i64(&inputs[1])?);
        let shape: Vec<i64> = x.shape().iter().map(|&d| d as i64).collect();
        let inferred: Vec<usize> = self
            .inferred(&shape)
            .iter()
            .map(|&d| d.max(0) as usize)
            .collect();
        let out_shape: Vec<usize> = if self.has_output_shape {
            to_i64(&inputs[2])?
                .iter()
                .map(|&d| d.max(0) as usize)
                .collect()
        } else {
            inferred.clone()
        };
        ensure!(indices.len() == x.len(), "MaxUnpool: one index per value");
        ensure!(
            out_shape.len() == inferred.len()
                && out_shape.iter().zip(&inferred).all(|(o, i)| o >= i),
            "MaxUnpool: output shape {out_shape:?} smaller than {inferred:?}"
        );
        let inferred_len: usize = inferred.iter().product();
        let mut at_inferred: Vec<Option<usize>> = vec![None; inferred_len];
        for (src, &dst) in indices.iter().enumerate() {
            let dst = usize::try_from(dst).ok().filter(|&d| d < inferred_len);
            let dst = dst.with_context(|| format!("MaxUnpool: index outside 0..{inferred_len}"))?;
            at_inferred[dst] = Some(src);
        }
        let out_len: usize = out_shape.iter().product();
        let in_strides = strides(&inferred);
        let sources: Vec<Option<usize>> = (0..out_len)
            .map(|o| {
                let c = coords(o, &out_shape);
                if c.iter().zip(&inferred).any(|(c, d)| c >= d) {
                    return None;
                }
                at_inferred[c.iter().zip(&in_strides).map(|(c, s)| c * s).sum::<usize>()]
            })
            .collect();
        Ok(tvec![
            gather_elements(x, &out_shape, &sources)?.into_tvalue()
        ])
    }
}
