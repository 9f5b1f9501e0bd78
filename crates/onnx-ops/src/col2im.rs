//! `Col2Im` (opset 18): rebuilds images from their sliding blocks (the inverse of im2col),
//! summing overlapping contributions in block order, as ONNX's reference does.

use tract_onnx::model::ParsingContext;
use tract_onnx::pb::NodeProto;
use tract_onnx::tract_hir::internal::*;

use crate::rust_op::{Kernel, boxed, coords, from_f64, strides, to_f64, to_i64};

/// The `Col2Im` operator; image and block shapes are inputs.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Col2Im {
    dilations: Option<Vec<i64>>,
    pads: Option<Vec<i64>>,
    strides: Option<Vec<i64>>,
    /// Channels, then one per spatial axis, when shapes are only known at run time.
    symbols: Vec<Symbol>,
}

/// Builds `Col2Im`.
pub fn col2im(
    ctx: &ParsingContext,
    node: &NodeProto,
) -> TractResult<(Box<dyn InferenceOp>, Vec<String>)> {
    boxed(Col2Im {
        dilations: node.get_attr_opt_vec::<i64>("dilations")?,
        pads: node.get_attr_opt_vec::<i64>("pads")?,
        strides: node.get_attr_opt_vec::<i64>("strides")?,
        symbols: (0..9)
            .map(|_| ctx.template.symbols.new_with_prefix("col2im"))
            .collect(),
    })
}

impl Kernel for Col2Im {
    fn name(&self) -> &'static str {
        "Col2Im"
    }

    fn output_facts(&self, inputs: &[&TypedFact]) -> TractResult<TVec<TypedFact>> {
        let x = inputs[0];
        ensure!(
            x.rank() == 3,
            "Col2Im: input of rank {}, expected 3",
            x.rank()
        );
        let konst = |f: &TypedFact| f.konst.as_ref().and_then(|k| to_i64(k).ok());
        let n = inputs[1]
            .shape
            .iter()
            .next()
            .and_then(|d| d.to_usize().ok());
        let n = n.context("Col2Im: the image shape's length must be known")?;
        ensure!(n + 1 < self.symbols.len(), "Col2Im: {n} spatial axes");
        let channels = match konst(inputs[2]) {
            Some(block) => x.shape[1].clone() / block.iter().product::<i64>().max(1) as u64,
            None => self.symbols[0].to_dim(),
        };
        let mut dims = tvec![x.shape[0].clone(), channels];
        match konst(inputs[1]) {
            Some(image) => dims.extend(image.iter().map(|d| d.to_dim())),
            None => dims.extend(self.symbols[1..=n].iter().map(|s| s.to_dim())),
        }
        Ok(tvec![x.datum_type.fact(dims)])
    }

    fn eval(&self, inputs: TVec<TValue>) -> TractResult<TVec<TValue>> {
        let x = &inputs[0];
        let image: Vec<usize> = to_i64(&inputs[1])?
            .iter()
            .map(|&d| d.max(0) as usize)
            .collect();
        let block: Vec<usize> = to_i64(&inputs[2])?
            .iter()
            .map(|&d| d.max(1) as usize)
            .collect();
        let n = image.len();
        ensure!(
            block.len() == n,
            "Col2Im: image and block shapes differ in length"
        );
        let or = |v: &Option<Vec<i64>>, default: i64, len: usize| {
            v.clone().unwrap_or_else(|| vec![default; len])
        };
        let dil = or(&self.dilations, 1, n);
        let pads = or(&self.pads, 0, 2 * n);
        let st = or(&self.strides, 1, n);
        ensure!(
            dil.len() == n && pads.len() == 2 * n && st.len() == n,
            "Col2Im: attributes"
        );
        let (batch, rows, len) = (x.shape()[0], x.shape()[1], x.shape()[2]);
        let block_size: usize = block.iter().product();
        ensure!(
            rows % block_size == 0,
            "Col2Im: {rows} rows for blocks of {block_size}"
        );
        let channels = rows / block_size;
        let cols: Vec<usize> = (0..n)
            .map(|i| {
                let room =
                    image[i] as i64 + pads[i] + pads[n + i] - dil[i] * (block[i] as i64 - 1) - 1;
                ensure!(
                    room >= 0 && st[i] > 0,
                    "Col2Im: blocks do not fit the image"
                );
                Ok((room / st[i] + 1) as usize)
            })
            .collect::<TractResult<_>>()?;
        ensure!(
            cols.iter().product::<usize>() == len,
            "Col2Im: {len} blocks, expected {cols:?}"
        );
        let values = to_f64(x)?;
        let image_len: usize = image.iter().product();
        let image_strides = strides(&image);
        let mut out = vec![0.0; batch * channels * image_len];
        for b in 0..batch {
            for c in 0..channels {
                let src = &values[(b * rows + c * block_size) * len..][..block_size * len];
                let dst = &mut out[(b * channels + c) * image_len..][..image_len];
                for k in 0..block_size {
                    let offset = coords(k, &block);
                    'col: for col in 0..len {
                        let at = coords(col, &cols);
                        let mut flat = 0;
                        for i in 0..n {
                            let p = at[i] as i64 * st[i] - pads[i] + offset[i] as i64 * dil[i];
                            if p < 0 || p >= image[i] as i64 {
                                continue 'col;
                            }
                            flat += p as usize * image_strides[i];
                        }
                        dst[flat] += src[k * len + col];
                    }
                }
            }
        }
        let mut shape = vec![batch, channels];
        shape.extend(&image);
        Ok(tvec![from_f64(x.datum_type(), &shape, &out)?])
    }
}
