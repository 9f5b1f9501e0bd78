//! ONNX-ML operators (domain `ai.onnx.ml`) for Vouch's engine: the ones scikit-learn exports
//! (skl2onnx) use, implemented as tract operators and registered into tract's ONNX operator
//! table in place of tract's own where both exist.
//!
//! Owns: parsing and validating each node's attributes (every one comes from an untrusted model
//! file: lengths, indices and tree structure are checked at load, and a bad model is an error
//! naming the node and attribute, never a panic), and evaluating the operators
//! deterministically: fixed summation order, no fused multiply-add, and transcendental
//! functions from the pure-Rust `libm` crate, so outputs are the same bits on every machine,
//! at every thread count, for a row alone or inside a batch. Each operator is one typed tract
//! node named after the ONNX node, so its outputs enter the engine's execution trace.
//!
//! Does not own: model loading, profiles or traces (`vouch-engine`). Operators over maps and
//! sequences (ZipMap, DictVectorizer, CastMap) are not registered: Vouch tensors have no map or
//! sequence type, and the engine refuses such models at load naming the operator;
//! [`refusal_hint`] says what to do instead.
//!
//! Entry point: [`register`]. Semantics follow onnxruntime's CPU kernels (docs/onnx-ml.md lists
//! every deliberate difference).

mod attrs;
mod encoders;
mod error;
mod feature_vectors;
mod imputer;
mod labels;
mod linear;
mod op;
mod scaling;
mod svm;
mod transform;
mod tree;

pub use error::MlError;

/// Adds this crate's operators to `onnx`, replacing tract's own where both exist.
pub fn register(onnx: &mut tract_onnx::Onnx) {
    tree::register(onnx);
    let reg = &mut onnx.op_register;
    reg.insert("LinearClassifier", linear::parse_classifier);
    reg.insert("LinearRegressor", linear::parse_regressor);
    reg.insert("SVMClassifier", svm::parse_classifier);
    reg.insert("SVMRegressor", svm::parse_regressor);
    reg.insert("Scaler", scaling::parse_scaler);
    reg.insert("Normalizer", scaling::parse_normalizer);
    reg.insert("Binarizer", scaling::parse_binarizer);
    reg.insert("Imputer", imputer::parse);
    reg.insert("OneHotEncoder", encoders::parse_one_hot);
    reg.insert("LabelEncoder", encoders::parse_label);
    reg.insert("FeatureVectorizer", feature_vectors::parse_vectorizer);
    reg.insert("ArrayFeatureExtractor", feature_vectors::parse_extractor);
}

/// The ONNX-ML operators this crate registers (all in domain `ai.onnx.ml`).
pub const OPERATORS: [&str; 15] = [
    "TreeEnsembleClassifier",
    "TreeEnsembleRegressor",
    "TreeEnsemble",
    "LinearClassifier",
    "LinearRegressor",
    "SVMClassifier",
    "SVMRegressor",
    "Scaler",
    "Normalizer",
    "Binarizer",
    "Imputer",
    "OneHotEncoder",
    "LabelEncoder",
    "FeatureVectorizer",
    "ArrayFeatureExtractor",
];

/// For an ONNX-ML operator Vouch deliberately does not implement, what to do instead.
pub fn refusal_hint(op_type: &str) -> Option<&'static str> {
    Some(match op_type {
        "ZipMap" => {
            "ZipMap outputs a sequence of maps, which Vouch tensors can't hold: export the \
             classifier without it (skl2onnx: options={id(model): {'zipmap': False}}) to get \
             the probabilities as a [N, classes] tensor"
        }
        "DictVectorizer" => {
            "DictVectorizer takes a map input, which Vouch tensors can't hold: vectorise the \
             features before the model and give it a dense tensor"
        }
        "CastMap" => {
            "CastMap takes a map input, which Vouch tensors can't hold: give the model a dense \
             tensor"
        }
        _ => return None,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_listed_operator_is_registered_and_refused_ones_are_not() {
        let mut onnx = tract_onnx::onnx();
        register(&mut onnx);
        for op in OPERATORS {
            assert!(
                onnx.op_register.0.contains_key(op),
                "{op} is not registered"
            );
        }
        for op in ["ZipMap", "DictVectorizer", "CastMap"] {
            assert!(
                !onnx.op_register.0.contains_key(op),
                "{op} must stay unregistered"
            );
            assert!(refusal_hint(op).is_some(), "{op} needs a hint");
        }
        assert!(refusal_hint("ZipMap").unwrap().contains("'zipmap': False"));
        assert_eq!(refusal_hint("TreeEnsembleClassifier"), None);
    }
}
