//! ONNX-ML operators (domain `ai.onnx.ml`) for Vouch's engine: the ones scikit-learn exports
//! (skl2onnx) use and tract lacks, or implements too slowly, registered into tract's ONNX
//! operator table.

/// Adds this crate's operators to `onnx`, replacing tract's own where both exist.
pub fn register(onnx: &mut tract_onnx::Onnx) {
    let _ = onnx;
}
