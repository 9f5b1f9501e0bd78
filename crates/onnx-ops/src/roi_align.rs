//! `RoiAlign` (opsets 10/16): bilinearly sampled average or max pooling of regions of interest,
//! following ONNX's reference (itself onnxruntime's), including its max mode, which takes the
//! largest weighted corner rather than the interpolated value.

use tract_onnx::model::ParsingContext;
use tract_onnx::pb::NodeProto;
use tract_onnx::tract_hir::internal::*;

use crate::rust_op::{Kernel, boxed, float_attr, from_f64, to_f64, to_i64};

/// The `RoiAlign` operator.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RoiAlign {
    half_pixel: bool,
    max: bool,
    output_height: usize,
    output_width: usize,
    sampling_ratio: i64,
    /// `f64` bits.
    spatial_scale: u64,
}

/// Builds `RoiAlign`.
pub fn roi_align(
    ctx: &ParsingContext,
    node: &NodeProto,
) -> TractResult<(Box<dyn InferenceOp>, Vec<String>)> {
    // Opset 16 made half_pixel the default; before, only output_half_pixel existed.
    let default_mode = if ctx.onnx_operator_set_version >= 16 {
        "half_pixel"
    } else {
        "output_half_pixel"
    };
    let half_pixel = match node
        .get_attr_opt::<&str>("coordinate_transformation_mode")?
        .unwrap_or(default_mode)
    {
        "half_pixel" => true,
        "output_half_pixel" => false,
        other => bail!("RoiAlign: unknown coordinate_transformation_mode {other:?}"),
    };
    let max = match node.get_attr_opt::<&str>("mode")?.unwrap_or("avg") {
        "avg" => false,
        "max" => true,
        other => bail!("RoiAlign: unknown mode {other:?}"),
    };
    let size = |name: &str| -> TractResult<usize> {
        let v = node.get_attr_opt::<i64>(name)?.unwrap_or(1);
        usize::try_from(v)
            .ok()
            .filter(|&v| v > 0)
            .with_context(|| format!("RoiAlign: {name} {v}"))
    };
    boxed(RoiAlign {
        half_pixel,
        max,
        output_height: size("output_height")?,
        output_width: size("output_width")?,
        sampling_ratio: node.get_attr_opt::<i64>("sampling_ratio")?.unwrap_or(0),
        spatial_scale: float_attr(node, "spatial_scale", 1.0)?,
    })
}

impl Kernel for RoiAlign {
    fn name(&self) -> &'static str {
        "RoiAlign"
    }

    fn output_facts(&self, inputs: &[&TypedFact]) -> TractResult<TVec<TypedFact>> {
        let (x, rois) = (inputs[0], inputs[1]);
        ensure!(
            x.datum_type.is_float() && x.rank() == 4,
            "RoiAlign: X must be float [N, C, H, W]"
        );
        ensure!(rois.rank() == 2, "RoiAlign: rois must be [num_rois, 4]");
        Ok(tvec![x.datum_type.fact(tvec![
            rois.shape[0].clone(),
            x.shape[1].clone(),
            self.output_height.to_dim(),
            self.output_width.to_dim(),
        ])])
    }

    fn eval(&self, inputs: TVec<TValue>) -> TractResult<TVec<TValue>> {
        let x = &inputs[0];
        let [batch, channels, height, width] = *x.shape() else {
            bail!("RoiAlign: X of shape {:?}", x.shape());
        };
        let data = to_f64(x)?;
        let rois = to_f64(&inputs[1])?;
        let batch_indices = to_i64(&inputs[2])?;
        let n_rois = batch_indices.len();
        ensure!(
            rois.len() == n_rois * 4,
            "RoiAlign: rois must be [num_rois, 4]"
        );
        let (ph_n, pw_n) = (self.output_height, self.output_width);
        let scale = f64::from_bits(self.spatial_scale);
        let offset = if self.half_pixel { 0.5 } else { 0.0 };
        let mut out = Vec::with_capacity(n_rois * channels * ph_n * pw_n);
        for n in 0..n_rois {
            let b = usize::try_from(batch_indices[n])
                .ok()
                .filter(|&b| b < batch)
                .with_context(|| {
                    format!("RoiAlign: batch index {} of {batch}", batch_indices[n])
                })?;
            let roi = &rois[n * 4..n * 4 + 4];
            let (start_w, start_h) = (roi[0] * scale - offset, roi[1] * scale - offset);
            let (mut roi_w, mut roi_h) = (
                roi[2] * scale - offset - start_w,
                roi[3] * scale - offset - start_h,
            );
            if !self.half_pixel {
                roi_w = roi_w.max(1.0);
                roi_h = roi_h.max(1.0);
            }
            let (bin_h, bin_w) = (roi_h / ph_n as f64, roi_w / pw_n as f64);
            let grid = |extent: f64, bins: usize| {
                if self.sampling_ratio > 0 {
                    self.sampling_ratio as usize
                } else {
                    (extent / bins as f64).ceil().max(0.0) as usize
                }
            };
            let (grid_h, grid_w) = (grid(roi_h, ph_n), grid(roi_w, pw_n));
            let count = (grid_h * grid_w).max(1) as f64;
            // Per output cell, the samples' four corner positions and weights.
            let mut samples: Vec<[(usize, f64); 4]> =
                Vec::with_capacity(ph_n * pw_n * grid_h * grid_w);
            for ph in 0..ph_n {
                for pw in 0..pw_n {
                    for iy in 0..grid_h {
                        let yy =
                            start_h + ph as f64 * bin_h + (iy as f64 + 0.5) * bin_h / grid_h as f64;
                        for ix in 0..grid_w {
                            let xx = start_w
                                + pw as f64 * bin_w
                                + (ix as f64 + 0.5) * bin_w / grid_w as f64;
                            samples.push(corners(yy, xx, height, width));
                        }
                    }
                }
            }
            for c in 0..channels {
                let plane = &data[(b * channels + c) * height * width..][..height * width];
                let per_cell = grid_h * grid_w;
                for cell in 0..ph_n * pw_n {
                    let cell_samples = &samples[cell * per_cell..(cell + 1) * per_cell];
                    let value = if self.max {
                        cell_samples
                            .iter()
                            .map(|s| {
                                s.iter()
                                    .map(|&(p, w)| w * plane[p])
                                    .fold(f64::NEG_INFINITY, f64::max)
                            })
                            .fold(None, |m: Option<f64>, v| Some(m.map_or(v, |m| m.max(v))))
                            .unwrap_or(0.0)
                    } else {
                        let sum: f64 = cell_samples
                            .iter()
                            .map(|s| s.iter().map(|&(p, w)| w * plane[p]).sum::<f64>())
                            .sum();
                        sum / count
                    };
                    out.push(value);
                }
            }
        }
        Ok(tvec![from_f64(
            x.datum_type(),
            &[n_rois, channels, ph_n, pw_n],
            &out
        )?])
    }
}

/// The four bilinear corners of sample `(y, x)` as (flat position, weight); all weights zero
/// outside the image.
fn corners(y: f64, x: f64, height: usize, width: usize) -> [(usize, f64); 4] {
    if y < -1.0 || y > height as f64 || x < -1.0 || x > width as f64 || height == 0 || width == 0 {
        return [(0, 0.0); 4];
    }
    let (mut y, mut x) = (y.max(0.0), x.max(0.0));
    let (mut y_low, mut x_low) = (y as usize, x as usize);
    let y_high = if y_low >= height - 1 {
        y_low = height - 1;
        y = y_low as f64;
        y_low
    } else {
        y_low + 1
    };
    let x_high = if x_low >= width - 1 {
        x_low = width - 1;
        x = x_low as f64;
        x_low
    } else {
        x_low + 1
    };
    let (ly, lx) = (y - y_low as f64, x - x_low as f64);
    let (hy, hx) = (1.0 - ly, 1.0 - lx);
    [
        (y_low * width + x_low, hy * hx),
        (y_low * width + x_high, hy * lx),
        (y_high * width + x_low, ly * hx),
        (y_high * width + x_high, ly * lx),
    ]
}
