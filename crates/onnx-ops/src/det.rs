//! `Det`: the determinant of each square matrix in the last two axes, by LU decomposition
//! with partial pivoting in `f64`.

use tract_onnx::model::ParsingContext;
use tract_onnx::pb::NodeProto;
use tract_onnx::tract_hir::internal::*;

use crate::rust_op::{Kernel, boxed, from_f64, to_f64};

/// The `Det` operator.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Det;

/// Builds `Det`.
pub fn det(
    _ctx: &ParsingContext,
    _node: &NodeProto,
) -> TractResult<(Box<dyn InferenceOp>, Vec<String>)> {
    boxed(Det)
}

/// The determinant of the `n`×`n` row-major matrix `m` (overwritten).
fn determinant(m: &mut [f64], n: usize) -> f64 {
    let mut det = 1.0;
    for col in 0..n {
        let pivot = (col..n)
            .max_by(|&a, &b| m[a * n + col].abs().total_cmp(&m[b * n + col].abs()))
            .expect("col < n");
        if m[pivot * n + col] == 0.0 {
            return 0.0;
        }
        if pivot != col {
            for k in 0..n {
                m.swap(col * n + k, pivot * n + k);
            }
            det = -det;
        }
        let p = m[col * n + col];
        det *= p;
        for row in col + 1..n {
            let f = m[row * n + col] / p;
            for k in col..n {
                m[row * n + k] -= f * m[col * n + k];
            }
        }
    }
    det
}

impl Kernel for Det {
    fn name(&self) -> &'static str {
        "Det"
    }

    fn output_facts(&self, inputs: &[&TypedFact]) -> TractResult<TVec<TypedFact>> {
        let x = inputs[0];
        ensure!(x.datum_type.is_float(), "Det: input must be floats");
        ensure!(
            x.rank() >= 2 && x.shape[x.rank() - 1] == x.shape[x.rank() - 2],
            "Det: square matrices"
        );
        Ok(tvec![x.datum_type.fact(&x.shape[..x.rank() - 2])])
    }

    fn eval(&self, inputs: TVec<TValue>) -> TractResult<TVec<TValue>> {
        let x = &inputs[0];
        let shape = x.shape();
        let r = shape.len();
        ensure!(
            r >= 2 && shape[r - 1] == shape[r - 2],
            "Det: square matrices, got {shape:?}"
        );
        let n = shape[r - 1];
        let mut values = to_f64(x)?;
        let dets: Vec<f64> = if n == 0 {
            vec![1.0; shape[..r - 2].iter().product()]
        } else {
            values
                .chunks_mut(n * n)
                .map(|m| determinant(m, n))
                .collect()
        };
        Ok(tvec![from_f64(x.datum_type(), &shape[..r - 2], &dets)?])
    }
}
