//! The operator table the engine parses models with: tract's ONNX operators, plus and over them
//! Vouch's own (ONNX-ML ops for scikit-learn exports, and default-domain fixes).

/// tract's ONNX front end with Vouch's operators registered.
pub fn onnx() -> tract_onnx::Onnx {
    let mut onnx = tract_onnx::onnx();
    vouch_onnx_ml::register(&mut onnx);
    vouch_onnx_ops::register(&mut onnx);
    onnx
}
