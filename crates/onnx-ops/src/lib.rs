//! Operators of the default ONNX domain that tract lacks or gets wrong, registered into tract's
//! ONNX operator table for Vouch's engine.
//!
//! It owns operator semantics only: parsing, typing and evaluation of single operators as tract
//! ops. Loading models, profiles and traces belong to `vouch-engine`, ONNX-ML operators to
//! `vouch-onnx-ml`. The entry point is [`register`]; [`late_bound`] lets tract's operators take
//! their parameters (axes, shapes, pads…) as run-time inputs.

pub mod affine_grid;
pub mod attention;
pub mod col2im;
pub mod det;
pub mod late_bound;
pub mod loss;
pub mod lp_pool;
pub mod lrn;
pub mod movement;
pub mod optimizer;
pub mod optional;
pub mod roi_align;
pub mod rust_op;
pub mod strings;
pub mod tfidf;
pub mod unique;

/// Adds this crate's operators to `onnx`, replacing tract's own where both exist.
pub fn register(onnx: &mut tract_onnx::Onnx) {
    late_bound::register(onnx);
    let ops: &[(&'static str, rust_op::OpBuilder)] = &[
        ("Adagrad", optimizer::adagrad),
        ("Adam", optimizer::adam),
        ("AffineGrid", affine_grid::affine_grid),
        ("Attention", attention::attention),
        ("CenterCropPad", movement::center_crop_pad),
        ("Col2Im", col2im::col2im),
        ("Det", det::det),
        ("LRN", lrn::lrn),
        ("LpPool", lp_pool::lp_pool),
        ("MaxUnpool", movement::max_unpool),
        ("Momentum", optimizer::momentum),
        ("NegativeLogLikelihoodLoss", loss::nll),
        ("OptionalGetElement", optional::get_element),
        ("OptionalHasElement", optional::has_element),
        ("ReverseSequence", movement::reverse_sequence),
        ("RoiAlign", roi_align::roi_align),
        ("SoftmaxCrossEntropyLoss", loss::softmax_cross_entropy),
        ("StringConcat", strings::string_concat),
        ("StringNormalizer", strings::string_normalizer),
        ("StringSplit", strings::string_split),
        ("TensorScatter", movement::tensor_scatter),
        ("TfIdfVectorizer", tfidf::tfidf),
        ("Unique", unique::unique),
        ("Upsample", movement::upsample),
    ];
    for (name, builder) in ops {
        onnx.op_register.insert(name, *builder);
    }
}
