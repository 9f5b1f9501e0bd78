//! Operators of the default ONNX domain that tract lacks or gets wrong, registered into tract's
//! ONNX operator table for Vouch's engine.
//!
//! It owns operator semantics only: parsing, typing and evaluation of single operators as tract
//! ops. Loading models, profiles and traces belong to `vouch-engine`, ONNX-ML operators to
//! `vouch-onnx-ml`. The entry point is [`register`]; [`late_bound`] lets tract's operators take
//! their parameters (axes, shapes, pads…) as run-time inputs.

pub mod attention;
pub mod late_bound;
pub mod loss;
pub mod rust_op;

/// Adds this crate's operators to `onnx`, replacing tract's own where both exist.
pub fn register(onnx: &mut tract_onnx::Onnx) {
    late_bound::register(onnx);
    let ops: &[(&'static str, rust_op::OpBuilder)] = &[
        ("Attention", attention::attention),
        ("NegativeLogLikelihoodLoss", loss::nll),
        ("SoftmaxCrossEntropyLoss", loss::softmax_cross_entropy),
    ];
    for (name, builder) in ops {
        onnx.op_register.insert(name, *builder);
    }
}
