//! `LpPool` (opsets 11/18): the p-norm of each window, `(Σ |x|^p)^(1/p)`, with explicit or
//! automatic padding (padding contributes nothing), strides, dilations and `ceil_mode`.

use tract_onnx::model::ParsingContext;
use tract_onnx::pb::NodeProto;
use tract_onnx::tract_hir::internal::*;

use crate::rust_op::{Kernel, boxed, coords, from_f64, strides, to_f64};

/// How padding is chosen.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Padding {
    /// Begin pads then end pads, per spatial axis.
    Explicit(Vec<usize>),
    SameUpper,
    SameLower,
}

/// The `LpPool` operator.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LpPool {
    kernel: Vec<usize>,
    strides: Vec<usize>,
    dilations: Vec<usize>,
    padding: Padding,
    ceil_mode: bool,
    p: i64,
}

/// Builds `LpPool`.
pub fn lp_pool(
    _ctx: &ParsingContext,
    node: &NodeProto,
) -> TractResult<(Box<dyn InferenceOp>, Vec<String>)> {
    let usizes = |name: &str, default: Vec<i64>| -> TractResult<Vec<usize>> {
        node.get_attr_opt_vec::<i64>(name)?
            .unwrap_or(default)
            .into_iter()
            .map(|v| usize::try_from(v).with_context(|| format!("LpPool: negative {name}")))
            .collect()
    };
    let kernel = usizes("kernel_shape", vec![])?;
    let n = kernel.len();
    ensure!(
        n > 0 && kernel.iter().all(|&k| k > 0),
        "LpPool: kernel_shape"
    );
    let padding = match node.get_attr_opt::<&str>("auto_pad")?.unwrap_or("NOTSET") {
        "NOTSET" => Padding::Explicit(usizes("pads", vec![0; 2 * n])?),
        "VALID" => Padding::Explicit(vec![0; 2 * n]),
        "SAME_UPPER" => Padding::SameUpper,
        "SAME_LOWER" => Padding::SameLower,
        other => bail!("LpPool: unknown auto_pad {other:?}"),
    };
    let op = LpPool {
        strides: usizes("strides", vec![1; n])?,
        dilations: usizes("dilations", vec![1; n])?,
        kernel,
        padding,
        ceil_mode: node.get_attr_opt::<i64>("ceil_mode")?.unwrap_or(0) != 0,
        p: node.get_attr_opt::<i64>("p")?.unwrap_or(2),
    };
    ensure!(
        op.strides.len() == n && op.dilations.len() == n && op.strides.iter().all(|&s| s > 0),
        "LpPool: strides or dilations"
    );
    if let Padding::Explicit(p) = &op.padding {
        ensure!(p.len() == 2 * n, "LpPool: {} pads for {n} axes", p.len());
    }
    boxed(op)
}

impl LpPool {
    /// Output size and begin pad of a spatial axis of size `input`.
    fn axis(&self, axis: usize, input: usize) -> (usize, usize) {
        let n = self.kernel.len();
        let (s, span) = (
            self.strides[axis],
            self.dilations[axis] * (self.kernel[axis] - 1) + 1,
        );
        match &self.padding {
            Padding::Explicit(pads) => {
                let padded = input + pads[axis] + pads[n + axis];
                let room = padded.saturating_sub(span);
                let out = if self.ceil_mode {
                    room.div_ceil(s) + 1
                } else {
                    room / s + 1
                };
                (out, pads[axis])
            }
            Padding::SameUpper | Padding::SameLower => {
                let out = input.div_ceil(s);
                let total = ((out - 1) * s + span).saturating_sub(input);
                let begin = if self.padding == Padding::SameUpper {
                    total / 2
                } else {
                    total - total / 2
                };
                (out, begin)
            }
        }
    }
}

impl Kernel for LpPool {
    fn name(&self) -> &'static str {
        "LpPool"
    }

    fn output_facts(&self, inputs: &[&TypedFact]) -> TractResult<TVec<TypedFact>> {
        let x = inputs[0];
        ensure!(x.datum_type.is_float(), "LpPool: input must be floats");
        ensure!(
            x.rank() == self.kernel.len() + 2,
            "LpPool: rank {} for the kernel",
            x.rank()
        );
        let mut dims: TVec<TDim> = x.shape.to_tvec();
        for axis in 0..self.kernel.len() {
            let input = dims[axis + 2]
                .to_usize()
                .context("LpPool: spatial sizes must be known")?;
            dims[axis + 2] = self.axis(axis, input).0.to_dim();
        }
        Ok(tvec![x.datum_type.fact(dims)])
    }

    fn eval(&self, inputs: TVec<TValue>) -> TractResult<TVec<TValue>> {
        let x = &inputs[0];
        let shape = x.shape();
        let values = to_f64(x)?;
        let n = self.kernel.len();
        let geometry: Vec<(usize, usize)> = (0..n).map(|a| self.axis(a, shape[a + 2])).collect();
        let mut out_shape = shape[..2].to_vec();
        out_shape.extend(geometry.iter().map(|g| g.0));
        let in_strides = strides(shape);
        let window: usize = self.kernel.iter().product();
        let total: usize = out_shape.iter().product();
        let p = self.p as f64;
        let mut out = Vec::with_capacity(total);
        for o in 0..total {
            let c = coords(o, &out_shape);
            let base = c[0] * in_strides[0] + c[1] * in_strides[1];
            let mut sum = 0.0;
            'window: for w in 0..window {
                let k = coords(w, &self.kernel);
                let mut at = base;
                for a in 0..n {
                    let i = (c[a + 2] * self.strides[a] + k[a] * self.dilations[a]) as i64
                        - geometry[a].1 as i64;
                    if i < 0 || i >= shape[a + 2] as i64 {
                        continue 'window;
                    }
                    at += i as usize * in_strides[a + 2];
                }
                sum += libm::pow(values[at].abs(), p);
            }
            out.push(libm::pow(sum, 1.0 / p));
        }
        Ok(tvec![from_f64(x.datum_type(), &out_shape, &out)?])
    }
}
