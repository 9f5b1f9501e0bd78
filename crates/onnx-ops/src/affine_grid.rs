//! `AffineGrid` (opset 20): the sampling grid of a batch of 2-D or 3-D affine transforms, in
//! normalised coordinates (`align_corners` or pixel centres).

use tract_onnx::model::ParsingContext;
use tract_onnx::pb::NodeProto;
use tract_onnx::tract_hir::internal::*;

use crate::rust_op::{Kernel, boxed, coords, from_f64, to_f64, to_i64};

/// The `AffineGrid` operator.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AffineGrid {
    align_corners: bool,
    /// Spatial sizes when the size input is only known at run time.
    symbols: Vec<Symbol>,
}

/// Builds `AffineGrid`.
pub fn affine_grid(
    ctx: &ParsingContext,
    node: &NodeProto,
) -> TractResult<(Box<dyn InferenceOp>, Vec<String>)> {
    boxed(AffineGrid {
        align_corners: node.get_attr_opt::<i64>("align_corners")?.unwrap_or(0) != 0,
        symbols: (0..3)
            .map(|_| ctx.template.symbols.new_with_prefix("grid"))
            .collect(),
    })
}

impl Kernel for AffineGrid {
    fn name(&self) -> &'static str {
        "AffineGrid"
    }

    fn output_facts(&self, inputs: &[&TypedFact]) -> TractResult<TVec<TypedFact>> {
        let theta = inputs[0];
        ensure!(
            theta.rank() == 3,
            "AffineGrid: theta of rank {}",
            theta.rank()
        );
        let spatial = theta.shape[1]
            .to_usize()
            .context("AffineGrid: theta's shape must be known")?;
        ensure!(
            spatial == 2 || spatial == 3,
            "AffineGrid: {spatial}-D transforms"
        );
        let mut dims = tvec![theta.shape[0].clone()];
        match inputs[1].konst.as_ref().and_then(|k| to_i64(k).ok()) {
            Some(size) => {
                ensure!(
                    size.len() == spatial + 2,
                    "AffineGrid: size of length {}",
                    size.len()
                );
                dims.extend(size[2..].iter().map(|d| d.to_dim()));
            }
            None => dims.extend(self.symbols[..spatial].iter().map(|s| s.to_dim())),
        }
        dims.push(spatial.to_dim());
        Ok(tvec![theta.datum_type.fact(dims)])
    }

    fn eval(&self, inputs: TVec<TValue>) -> TractResult<TVec<TValue>> {
        let theta = &inputs[0];
        let [batch, spatial, homogeneous] = *theta.shape() else {
            bail!("AffineGrid: theta of shape {:?}", theta.shape());
        };
        ensure!(
            (spatial == 2 || spatial == 3) && homogeneous == spatial + 1,
            "AffineGrid: theta of shape {:?}",
            theta.shape()
        );
        let size = to_i64(&inputs[1])?;
        ensure!(
            size.len() == spatial + 2,
            "AffineGrid: size of length {}",
            size.len()
        );
        let sizes: Vec<usize> = size[2..].iter().map(|&d| d.max(0) as usize).collect();
        let t = to_f64(theta)?;
        // Normalised coordinate of index i along an axis of n.
        let at = |i: usize, n: usize| {
            if self.align_corners {
                if n > 1 {
                    -1.0 + 2.0 * i as f64 / (n - 1) as f64
                } else {
                    -1.0
                }
            } else {
                -1.0 + (2 * i + 1) as f64 / n as f64
            }
        };
        let points: usize = sizes.iter().product();
        let mut out = Vec::with_capacity(batch * points * spatial);
        for b in 0..batch {
            let m = &t[b * spatial * homogeneous..][..spatial * homogeneous];
            for p in 0..points {
                let c = coords(p, &sizes);
                // Homogeneous point (x, y[, z], 1): x runs along the last axis.
                let mut h: Vec<f64> = c
                    .iter()
                    .zip(&sizes)
                    .rev()
                    .map(|(&i, &n)| at(i, n))
                    .collect();
                h.push(1.0);
                for row in 0..spatial {
                    let mut sum = 0.0;
                    for (k, v) in h.iter().enumerate() {
                        sum += m[row * homogeneous + k] * v;
                    }
                    out.push(sum);
                }
            }
        }
        let mut shape = vec![batch];
        shape.extend(&sizes);
        shape.push(spatial);
        Ok(tvec![from_f64(theta.datum_type(), &shape, &out)?])
    }
}
