//! Operators of the default ONNX domain that tract lacks or gets wrong, registered into tract's
//! ONNX operator table for Vouch's engine.

/// Adds this crate's operators to `onnx`, replacing tract's own where both exist.
pub fn register(onnx: &mut tract_onnx::Onnx) {
    let _ = onnx;
}
