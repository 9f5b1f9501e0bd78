//! `Attention` (opsets 23/24): scaled dot-product attention over 3-D (`[batch, seq, heads ×
//! head_size]`) or 4-D (`[batch, heads, seq, head_size]`) inputs, with an optional boolean or
//! additive mask (padded with "masked" up to the key length), causal masking, a key/value cache
//! (`past_key`/`past_value` → `present_key`/`present_value`), grouped-query heads, soft-capping,
//! per-batch key padding lengths, and the optional `qk_matmul_output`.
//!
//! Semantics follow ONNX's reference implementation. Everything is computed in `f64` with sums
//! in index order, and rounded once to the input type.

use tract_onnx::model::ParsingContext;
use tract_onnx::pb::NodeProto;
use tract_onnx::tract_hir::internal::*;

use crate::rust_op::{Kernel, boxed, from_f64, input_slots, output_slots, to_f64, to_i64};

/// Positions of the optional ONNX inputs among tract's inputs.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Inputs {
    mask: Option<usize>,
    past_key: Option<usize>,
    past_value: Option<usize>,
    nonpad_kv_seqlen: Option<usize>,
}

/// The `Attention` operator.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Attention {
    inputs: Inputs,
    /// Which of `Y`, `present_key`, `present_value`, `qk_matmul_output` the node produces.
    outputs: [bool; 4],
    /// The score scale as `f64` bits (`None`: 1/√head_size).
    scale: Option<u64>,
    is_causal: bool,
    q_num_heads: Option<usize>,
    kv_num_heads: Option<usize>,
    /// Soft cap as `f64` bits (0: none).
    softcap: u64,
    qk_matmul_output_mode: i64,
}

/// Builds `Attention`.
pub fn attention(
    _ctx: &ParsingContext,
    node: &NodeProto,
) -> TractResult<(Box<dyn InferenceOp>, Vec<String>)> {
    let slots = input_slots(node, 7);
    ensure!(
        slots[..3] == [Some(0), Some(1), Some(2)],
        "Attention needs its Q, K and V inputs"
    );
    let outs = output_slots(node, 4);
    let heads = |name: &str| -> TractResult<Option<usize>> {
        node.get_attr_opt::<i64>(name)?
            .map(|h| usize::try_from(h).ok().filter(|&h| h > 0))
            .map(|h| h.with_context(|| format!("Attention: {name} must be positive")))
            .transpose()
    };
    let mode = node
        .get_attr_opt::<i64>("qk_matmul_output_mode")?
        .unwrap_or(0);
    ensure!(
        (0..=3).contains(&mode),
        "Attention: qk_matmul_output_mode {mode}"
    );
    boxed(Attention {
        inputs: Inputs {
            mask: slots[3],
            past_key: slots[4],
            past_value: slots[5],
            nonpad_kv_seqlen: slots[6],
        },
        outputs: [
            outs[0].is_some(),
            outs[1].is_some(),
            outs[2].is_some(),
            outs[3].is_some(),
        ],
        scale: node
            .get_attr_opt::<f32>("scale")?
            .map(|s| (s as f64).to_bits()),
        is_causal: node.get_attr_opt::<i64>("is_causal")?.unwrap_or(0) != 0,
        q_num_heads: heads("q_num_heads")?,
        kv_num_heads: heads("kv_num_heads")?,
        softcap: (node.get_attr_opt::<f32>("softcap")?.unwrap_or(0.0) as f64).to_bits(),
        qk_matmul_output_mode: mode,
    })
}

/// Sizes of one evaluation, in the 4-D layout.
struct Dims {
    batch: usize,
    q_heads: usize,
    kv_heads: usize,
    q_len: usize,
    kv_len: usize,
    past_len: usize,
    head_size: usize,
    v_head_size: usize,
}

/// `[batch, heads, seq, size]` of a 3-D input with `heads` heads, or of a 4-D input.
fn dims4(shape: &[TDim], heads: Option<usize>) -> TractResult<[TDim; 4]> {
    match shape {
        [b, s, hidden] => {
            let h = heads.context("Attention: 3-D inputs need q_num_heads and kv_num_heads")?;
            Ok([b.clone(), h.into(), s.clone(), hidden.clone() / h as u64])
        }
        [b, h, s, size] => Ok([b.clone(), h.clone(), s.clone(), size.clone()]),
        _ => bail!("Attention: inputs of rank {}, expected 3 or 4", shape.len()),
    }
}

impl Kernel for Attention {
    fn name(&self) -> &'static str {
        "Attention"
    }

    fn nboutputs(&self) -> usize {
        self.outputs.iter().filter(|&&o| o).count()
    }

    fn output_facts(&self, inputs: &[&TypedFact]) -> TractResult<TVec<TypedFact>> {
        let (q, k, v) = (inputs[0], inputs[1], inputs[2]);
        let dt = q.datum_type;
        ensure!(dt.is_float(), "Attention: Q must be floats, got {dt:?}");
        ensure!(
            q.rank() == k.rank() && k.rank() == v.rank(),
            "Attention: Q, K and V of ranks {}, {}, {}",
            q.rank(),
            k.rank(),
            v.rank()
        );
        let q4 = dims4(&q.shape.to_tvec(), self.q_num_heads)?;
        let k4 = dims4(&k.shape.to_tvec(), self.kv_num_heads)?;
        let v4 = dims4(&v.shape.to_tvec(), self.kv_num_heads)?;
        let (batch, q_heads, q_len) = (q4[0].clone(), q4[1].clone(), q4[2].clone());
        let kv_heads = k4[1].clone();
        let past = self.inputs.past_key.map(|ix| inputs[ix].shape[2].clone());
        let total = match past {
            Some(p) => p + k4[2].clone(),
            None => k4[2].clone(),
        };
        let y = if q.rank() == 3 {
            dt.fact(tvec![
                batch.clone(),
                q_len.clone(),
                q_heads.clone() * v4[3].clone()
            ])
        } else {
            dt.fact(tvec![
                batch.clone(),
                q_heads.clone(),
                q_len.clone(),
                v4[3].clone()
            ])
        };
        let mut facts = tvec![];
        if self.outputs[0] {
            facts.push(y);
        }
        if self.outputs[1] {
            facts.push(dt.fact(tvec![
                batch.clone(),
                kv_heads.clone(),
                total.clone(),
                k4[3].clone()
            ]));
        }
        if self.outputs[2] {
            facts.push(dt.fact(tvec![batch.clone(), kv_heads, total.clone(), v4[3].clone()]));
        }
        if self.outputs[3] {
            facts.push(dt.fact(tvec![batch, q_heads, q_len, total]));
        }
        Ok(facts)
    }

    fn eval(&self, inputs: TVec<TValue>) -> TractResult<TVec<TValue>> {
        let dt = inputs[0].datum_type();
        let rank = inputs[0].rank();
        let (q, qd) = to_bhsd(&inputs[0], self.q_num_heads)?;
        let (k, kd) = to_bhsd(&inputs[1], self.kv_num_heads)?;
        let (v, vd) = to_bhsd(&inputs[2], self.kv_num_heads)?;
        ensure!(
            kd[0] == qd[0] && vd[0] == qd[0],
            "Attention: batch sizes differ"
        );
        ensure!(
            kd[1] == vd[1] && kd[2] == vd[2],
            "Attention: K and V disagree"
        );
        ensure!(kd[3] == qd[3], "Attention: Q and K head sizes differ");
        let (k, past_len) = with_past(self.inputs.past_key.map(|ix| &inputs[ix]), k, kd)?;
        let (v, _) = with_past(self.inputs.past_value.map(|ix| &inputs[ix]), v, vd)?;
        let dims = Dims {
            batch: qd[0],
            q_heads: qd[1],
            kv_heads: kd[1],
            q_len: qd[2],
            kv_len: past_len + kd[2],
            past_len,
            head_size: qd[3],
            v_head_size: vd[3],
        };
        ensure!(
            dims.kv_heads > 0 && dims.q_heads.is_multiple_of(dims.kv_heads),
            "Attention: {} query heads for {} key/value heads",
            dims.q_heads,
            dims.kv_heads
        );
        let bias = self.bias(&inputs, &dims)?;
        let scale = self
            .scale
            .map(f64::from_bits)
            .unwrap_or_else(|| 1.0 / libm::sqrt(dims.head_size as f64));
        let softcap = f64::from_bits(self.softcap);
        let Dims {
            batch,
            q_heads,
            kv_heads,
            q_len,
            kv_len,
            head_size,
            v_head_size,
            ..
        } = dims;
        let group = q_heads / kv_heads;
        let mut y = vec![0.0; batch * q_heads * q_len * v_head_size];
        let mut qk_out = vec![0.0; batch * q_heads * q_len * kv_len];
        let mut row = vec![0.0; kv_len];
        for b in 0..batch {
            for h in 0..q_heads {
                let kvh = h / group;
                for i in 0..q_len {
                    let q_row = &q[((b * q_heads + h) * q_len + i) * head_size..][..head_size];
                    for (j, score) in row.iter_mut().enumerate() {
                        let k_row =
                            &k[((b * kv_heads + kvh) * kv_len + j) * head_size..][..head_size];
                        let mut dot = 0.0;
                        for (a, c) in q_row.iter().zip(k_row) {
                            dot += a * c;
                        }
                        *score = dot * scale;
                    }
                    let out_row = &mut qk_out[((b * q_heads + h) * q_len + i) * kv_len..][..kv_len];
                    if self.qk_matmul_output_mode == 0 {
                        out_row.copy_from_slice(&row);
                    }
                    for (j, score) in row.iter_mut().enumerate() {
                        *score += bias(b, h, i, j);
                    }
                    if self.qk_matmul_output_mode == 1 {
                        out_row.copy_from_slice(&row);
                    }
                    if softcap > 0.0 {
                        for score in row.iter_mut() {
                            *score = softcap * libm::tanh(*score / softcap);
                        }
                    }
                    if self.qk_matmul_output_mode == 2 {
                        out_row.copy_from_slice(&row);
                    }
                    softmax(&mut row);
                    if self.qk_matmul_output_mode == 3 {
                        out_row.copy_from_slice(&row);
                    }
                    let y_row =
                        &mut y[((b * q_heads + h) * q_len + i) * v_head_size..][..v_head_size];
                    for (dv, out) in y_row.iter_mut().enumerate() {
                        let mut sum = 0.0;
                        for (j, p) in row.iter().enumerate() {
                            sum += p * v[((b * kv_heads + kvh) * kv_len + j) * v_head_size + dv];
                        }
                        *out = sum;
                    }
                }
            }
        }
        let mut outputs = tvec![];
        if self.outputs[0] {
            outputs.push(if rank == 3 {
                let mut t = vec![0.0; y.len()];
                for b in 0..batch {
                    for h in 0..q_heads {
                        for i in 0..q_len {
                            let src = ((b * q_heads + h) * q_len + i) * v_head_size;
                            let dst = ((b * q_len + i) * q_heads + h) * v_head_size;
                            t[dst..dst + v_head_size].copy_from_slice(&y[src..src + v_head_size]);
                        }
                    }
                }
                from_f64(dt, &[batch, q_len, q_heads * v_head_size], &t)?
            } else {
                from_f64(dt, &[batch, q_heads, q_len, v_head_size], &y)?
            });
        }
        if self.outputs[1] {
            outputs.push(from_f64(dt, &[batch, kv_heads, kv_len, head_size], &k)?);
        }
        if self.outputs[2] {
            outputs.push(from_f64(dt, &[batch, kv_heads, kv_len, v_head_size], &v)?);
        }
        if self.outputs[3] {
            outputs.push(from_f64(dt, &[batch, q_heads, q_len, kv_len], &qk_out)?);
        }
        Ok(outputs)
    }
}

impl Attention {
    /// The additive bias for score `(b, h, i, j)`: mask, causal mask and key padding.
    fn bias<'a>(
        &self,
        inputs: &'a [TValue],
        dims: &Dims,
    ) -> TractResult<impl Fn(usize, usize, usize, usize) -> f64 + use<'a>> {
        let mask = match self.inputs.mask {
            Some(ix) => {
                let m = &inputs[ix];
                ensure!(
                    (1..=4).contains(&m.rank()),
                    "Attention: mask of rank {}",
                    m.rank()
                );
                let is_bool = m.datum_type() == bool::datum_type();
                let values = if is_bool {
                    m.cast_to::<f64>()?
                        .try_as_plain_ram()?
                        .as_slice::<f64>()?
                        .to_vec()
                } else {
                    to_f64(m)?
                };
                // Right-aligned against [batch, q_heads, q_len, kv_len]; size-1 axes broadcast.
                let mut shape = [1usize; 4];
                shape[4 - m.rank()..].copy_from_slice(m.shape());
                let full = [dims.batch, dims.q_heads, dims.q_len, dims.kv_len];
                for axis in 0..3 {
                    ensure!(
                        shape[axis] == 1 || shape[axis] == full[axis],
                        "Attention: mask shape {:?} does not broadcast to {full:?}",
                        m.shape()
                    );
                }
                ensure!(
                    shape[3] <= dims.kv_len,
                    "Attention: mask longer than the keys"
                );
                Some((values, shape, is_bool))
            }
            None => None,
        };
        let nonpad = match self.inputs.nonpad_kv_seqlen {
            Some(ix) => {
                let n = to_i64(&inputs[ix])?;
                ensure!(
                    n.len() == dims.batch,
                    "Attention: nonpad_kv_seqlen per batch"
                );
                Some(n)
            }
            None => None,
        };
        let (is_causal, past_len) = (self.is_causal, dims.past_len);
        Ok(move |b: usize, h: usize, i: usize, j: usize| {
            let mut bias = 0.0;
            if let Some((values, shape, is_bool)) = &mask {
                let value = if j >= shape[3] {
                    // Padding up to the key length: "masked".
                    if *is_bool { 0.0 } else { f64::NEG_INFINITY }
                } else {
                    let at = |axis: usize, x: usize| if shape[axis] == 1 { 0 } else { x };
                    values[((at(0, b) * shape[1] + at(1, h)) * shape[2] + at(2, i)) * shape[3] + j]
                };
                bias = match (*is_bool, is_causal) {
                    // The reference turns a boolean mask into (1 - mask) · -inf when causal.
                    (true, true) => (1.0 - value) * f64::NEG_INFINITY,
                    (true, false) if value == 0.0 => f64::NEG_INFINITY,
                    (true, false) => 0.0,
                    (false, _) => value,
                };
            }
            if is_causal && j >= past_len && j - past_len > i {
                bias += f64::NEG_INFINITY;
            }
            if let Some(n) = &nonpad
                && (j as i64) >= n[b]
            {
                bias += f64::NEG_INFINITY;
            }
            bias
        })
    }
}

/// An input as `f64` in the `[batch, heads, seq, size]` layout, with those sizes.
fn to_bhsd(t: &Tensor, heads: Option<usize>) -> TractResult<(Vec<f64>, [usize; 4])> {
    let values = to_f64(t)?;
    match *t.shape() {
        [b, s, hidden] => {
            let h = heads.context("Attention: 3-D inputs need q_num_heads and kv_num_heads")?;
            ensure!(
                hidden % h == 0,
                "Attention: hidden size {hidden} for {h} heads"
            );
            let size = hidden / h;
            let mut out = vec![0.0; values.len()];
            for bi in 0..b {
                for si in 0..s {
                    for hi in 0..h {
                        let src = ((bi * s + si) * h + hi) * size;
                        let dst = ((bi * h + hi) * s + si) * size;
                        out[dst..dst + size].copy_from_slice(&values[src..src + size]);
                    }
                }
            }
            Ok((out, [b, h, s, size]))
        }
        [b, h, s, size] => Ok((values, [b, h, s, size])),
        _ => bail!(
            "Attention: input of shape {:?}, expected 3-D or 4-D",
            t.shape()
        ),
    }
}

/// `past ++ current` along the sequence axis, and the past length.
fn with_past(
    past: Option<&TValue>,
    current: Vec<f64>,
    dims: [usize; 4],
) -> TractResult<(Vec<f64>, usize)> {
    let Some(past) = past else {
        return Ok((current, 0));
    };
    let [b, h, s, size] = dims;
    let p = match *past.shape() {
        [pb, ph, p, psize] if pb == b && ph == h && psize == size => p,
        _ => bail!("Attention: past of shape {:?} for {dims:?}", past.shape()),
    };
    let past = to_f64(past)?;
    let mut out = Vec::with_capacity(b * h * (p + s) * size);
    for bh in 0..b * h {
        out.extend_from_slice(&past[bh * p * size..(bh + 1) * p * size]);
        out.extend_from_slice(&current[bh * s * size..(bh + 1) * s * size]);
    }
    Ok((out, p))
}

/// Softmax of a row in place, as ONNX's reference computes it (a row of -inf gives NaN).
fn softmax(row: &mut [f64]) {
    let max = row.iter().copied().fold(f64::NEG_INFINITY, f64::max);
    let mut sum = 0.0;
    for x in row.iter_mut() {
        *x = libm::exp(*x - max);
        sum += *x;
    }
    for x in row.iter_mut() {
        *x /= sum;
    }
}
