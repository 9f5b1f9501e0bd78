//! Plan decisions tract takes from the CPU, pinned for `exact-fused/1` so that every machine
//! prepares the same graph, and so computes the same trace (docs/determinism.md).
//!
//! tract 0.23.9 turns a binary operation whose second operand is broadcast along leading axes
//! (`[N, 48] * [1, 48]`) into its vectorised "unicast" op only when the broadcast row's length
//! is a multiple of `vector_size()`, which it reads from the CPU: 16 on aarch64, 32 on x86_64
//! with AVX2, 64 with AVX-512. Where that choice differs, the optimiser then fuses different
//! nodes into chains, so the plan (and the trace's node list) differs while every output is the
//! same. Such operations are kept as plain binary operations on every CPU.

use tract_onnx::tract_core::internal::*;
use tract_onnx::tract_core::ops::binary::TypedBinOp;

/// A binary operation kept out of tract's CPU-dependent unicast rewrite: it evaluates exactly
/// as the plain operation (element by element, one IEEE operation each).
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct PinnedBinOp(TypedBinOp);

impl Op for PinnedBinOp {
    fn name(&self) -> StaticName {
        self.0.name()
    }

    op_as_typed_op!();
}

impl EvalOp for PinnedBinOp {
    op_out_of_plan!();

    fn eval(&self, ctx: &EvalContext, inputs: TVec<TValue>) -> TractResult<TVec<TValue>> {
        self.0.eval(ctx, inputs)
    }
}

impl TypedOp for PinnedBinOp {
    fn output_facts(&self, inputs: &[&TypedFact]) -> TractResult<TVec<TypedFact>> {
        self.0.output_facts(inputs)
    }

    as_op!();
}

/// Whether tract's unicast rewrite of `a op b` depends on the CPU: `b` is broadcast along
/// leading axes and its row length is a multiple of some CPUs' `vector_size()` but not all.
fn unicast_depends_on_cpu(a: &[TDim], b: &[TDim]) -> bool {
    if a.len() != b.len() {
        return false;
    }
    let one = TDim::from(1);
    let unicast_possible = a
        .iter()
        .zip(b)
        .skip_while(|(_, b)| **b == one)
        .all(|(a, b)| a == b);
    if !unicast_possible {
        return false;
    }
    let iterations: TDim = a
        .iter()
        .zip(b)
        .take_while(|(_, b)| **b == one)
        .map(|(a, _)| a.clone())
        .product();
    if iterations.is_one() {
        return false;
    }
    let row: TDim = b.iter().skip_while(|b| **b == one).cloned().product();
    // 16, 32 and 64 are the sizes tract's `vector_size()` returns on the CPUs it knows.
    row.to_i64().is_ok_and(|n| n % 16 == 0 && n % 64 != 0)
}

/// Replaces, in a decluttered model, every binary operation whose optimisation would depend on
/// the CPU by a [`PinnedBinOp`]. Returns how many were pinned.
pub(crate) fn pin_cpu_dependent_choices(model: &mut TypedModel) -> TractResult<usize> {
    let mut pinned = 0;
    for id in 0..model.nodes().len() {
        let Some(bin) = model.node(id).op_as::<TypedBinOp>() else {
            continue;
        };
        if bin.0.as_linalg_binop().is_none() {
            continue;
        }
        let bin = bin.clone();
        let facts = model.node_input_facts(id)?;
        let [a, b] = &*facts else { continue };
        // tract puts the larger operand first (`must_swap_inputs`).
        let swap = (a.shape.volume() - b.shape.volume()).prove_strict_negative();
        let (a, b) = if swap { (b, a) } else { (a, b) };
        let depends = unicast_depends_on_cpu(a.shape.as_ref(), b.shape.as_ref());
        drop(facts);
        // A bias added to a matrix product's (or convolution's) only output is fused into the
        // product by tract's optimiser on every CPU: leave it to that.
        let a_outlet = model.node(id).inputs[swap as usize];
        let producer = model.node(a_outlet.node).op().name();
        let into_product = matches!(&*producer, "EinSum" | "Conv" | "MatMul" | "Deconv")
            && model.outlet_successors(a_outlet).len() == 1;
        if depends && !into_product {
            let op = PinnedBinOp(bin);
            model.node_mut(id).op = Box::new(op);
            pinned += 1;
        }
    }
    Ok(pinned)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn dims(d: &[i64]) -> Vec<TDim> {
        d.iter().map(|&v| TDim::from(v)).collect()
    }

    #[test]
    fn only_rows_some_cpus_align_and_others_do_not_are_pinned() {
        let pinned = |a: &[i64], b: &[i64]| unicast_depends_on_cpu(&dims(a), &dims(b));
        assert!(pinned(&[8, 48], &[1, 48])); // 16 | 48, 32 ∤ 48: aarch64 differs from x86_64
        assert!(pinned(&[8, 32], &[1, 32])); // AVX2 differs from AVX-512
        assert!(!pinned(&[8, 64], &[1, 64])); // every CPU aligns
        assert!(!pinned(&[8, 10], &[1, 10])); // no CPU aligns
        assert!(!pinned(&[1, 48], &[1, 48])); // one iteration: no alignment asked
        assert!(!pinned(&[8, 48], &[8, 1])); // not a unicast shape
    }
}
