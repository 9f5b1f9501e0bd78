//! Why a case failed: a small fixed taxonomy, so reports can be grouped and compared run to run.
//!
//! Each [`Failure`] has a [`code`](Failure::code) (one line, e.g. `unsupported-op:Unique`,
//! `mismatch:y max_abs_err=2.1e-2`) and a [`group`](Failure::group) that drops the per-case
//! details (`mismatch`), used to count failures by cause. The full engine message travels
//! beside it in the case result, not in the code.

use serde::{Deserialize, Serialize};
use vouch_engine::EngineError;
use vouch_types::TensorError;

use crate::compare::Difference;

/// Why a case failed.
// Externally tagged: serde_json's `arbitrary_precision` (enabled in this workspace by a
// dependency) can't read numbers inside internally tagged enums.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Failure {
    /// The model uses operators the engine does not implement.
    UnsupportedOp {
        /// The operators, as `Op` or `domain:Op`.
        ops: Vec<String>,
    },
    /// A tensor type the engine or Vouch's tensors do not support (`bfloat16`, `sequence`, …).
    UnsupportedType {
        /// The ONNX type name.
        dtype: String,
    },
    /// The engine refused or failed to prepare the model.
    LoadError {
        /// Which step: `parse`, `typing`, `optimize`, `plan`, `panic`, `not-onnx`, …
        stage: String,
    },
    /// The model loaded but running it failed.
    RunError {
        /// Which step: `run`, `panic`, `input-dtype`, `input-shape`, `output-type`, …
        stage: String,
    },
    /// An output's values are outside the tolerance.
    Mismatch {
        /// Output name.
        output: String,
        /// Largest absolute error; `None` when infinite (a NaN or an infinity on one side
        /// only), which JSON can't carry.
        max_abs_err: Option<f64>,
    },
    /// An output has the wrong shape.
    ShapeMismatch {
        /// Output name.
        output: String,
    },
    /// An output has the wrong element type.
    DtypeMismatch {
        /// Output name.
        output: String,
    },
    /// The case has more reference outputs than the model declares.
    MissingOutput {
        /// Position of the reference output the model lacks.
        index: usize,
    },
    /// The case has no test data, or its inputs don't fit the model's inputs.
    MissingReference,
    /// A reference file could not be read.
    BadReference,
    /// The case ran past the time limit and was killed.
    Timeout,
    /// The case ran out of its memory limit.
    OutOfMemory,
    /// The case process died: a signal name, `stack-overflow`, or `exit-N`.
    Crash {
        /// What killed it.
        cause: String,
    },
    /// The harness itself could not run the case.
    HarnessError,
}

impl Failure {
    /// The one-line reason code, e.g. `unsupported-op:Unique` or `mismatch:y max_abs_err=…`.
    pub fn code(&self) -> String {
        match self {
            Failure::Mismatch {
                output,
                max_abs_err,
            } => match max_abs_err {
                Some(e) => format!("mismatch:{output} max_abs_err={e:.3e}"),
                None => format!("mismatch:{output} max_abs_err=inf"),
            },
            Failure::ShapeMismatch { output } => format!("shape-mismatch:{output}"),
            Failure::DtypeMismatch { output } => format!("dtype-mismatch:{output}"),
            Failure::MissingOutput { index } => format!("missing-output:{index}"),
            Failure::UnsupportedOp { ops } => format!("unsupported-op:{}", ops.join("+")),
            _ => self.group(),
        }
    }

    /// The reason without per-case details, for counting failures by cause. A case with several
    /// unsupported operators is grouped under the first; [`Failure::unsupported_ops`] has all.
    pub fn group(&self) -> String {
        match self {
            Failure::UnsupportedOp { ops } => {
                format!("unsupported-op:{}", ops.first().map_or("?", String::as_str))
            }
            Failure::UnsupportedType { dtype } => format!("unsupported-type:{dtype}"),
            Failure::LoadError { stage } => format!("load-error:{stage}"),
            Failure::RunError { stage } => format!("run-error:{stage}"),
            Failure::Mismatch { .. } => "mismatch".into(),
            Failure::ShapeMismatch { .. } => "shape-mismatch".into(),
            Failure::DtypeMismatch { .. } => "dtype-mismatch".into(),
            Failure::MissingOutput { .. } => "missing-output".into(),
            Failure::MissingReference => "missing-reference".into(),
            Failure::BadReference => "bad-reference".into(),
            Failure::Timeout => "timeout".into(),
            Failure::OutOfMemory => "out-of-memory".into(),
            Failure::Crash { cause } => format!("crash:{cause}"),
            Failure::HarnessError => "harness-error".into(),
        }
    }

    /// The operators this failure names as unsupported (empty for other failures).
    pub fn unsupported_ops(&self) -> &[String] {
        match self {
            Failure::UnsupportedOp { ops } => ops,
            _ => &[],
        }
    }

    /// The failure for an output that differs from its reference.
    pub fn from_difference(output: &str, difference: &Difference) -> Failure {
        let output = output.to_string();
        match difference {
            Difference::Shape { .. } => Failure::ShapeMismatch { output },
            Difference::DType { .. } => Failure::DtypeMismatch { output },
            Difference::Values { max_abs_err, .. } => Failure::Mismatch {
                output,
                max_abs_err: Some(*max_abs_err).filter(|e| e.is_finite()),
            },
        }
    }

    /// The failure for an error from [`vouch_engine::Model::load`].
    pub fn from_load_error(e: &EngineError) -> Failure {
        if is_allocation_failure(e) {
            return Failure::OutOfMemory;
        }
        let stage = match e {
            EngineError::UnsupportedOps(ops) => {
                return Failure::UnsupportedOp {
                    ops: ops.iter().map(ToString::to_string).collect(),
                };
            }
            EngineError::UnsupportedType { onnx_elem_type, .. } => {
                return Failure::UnsupportedType {
                    dtype: onnx_type_name(*onnx_elem_type),
                };
            }
            EngineError::NotOnnx(_) => "not-onnx",
            EngineError::ModelTooLarge { .. } => "too-large",
            EngineError::ExternalData => "external-data",
            EngineError::Tract(msg) => tract_stage(msg),
            EngineError::Internal(msg) => internal_stage(msg),
            EngineError::UnknownProfile(_)
            | EngineError::ProfileConflict { .. }
            | EngineError::ProfileUnavailable { .. } => return Failure::HarnessError,
            _ => "other",
        };
        Failure::LoadError {
            stage: stage.into(),
        }
    }

    /// The failure for an error from [`vouch_engine::Model::run`].
    pub fn from_run_error(e: &EngineError) -> Failure {
        if is_allocation_failure(e) {
            return Failure::OutOfMemory;
        }
        let stage = match e {
            EngineError::MissingInput { .. } => "missing-input",
            EngineError::UnknownInput { .. } => "unknown-input",
            EngineError::InputDType { .. } => "input-dtype",
            EngineError::InputShape { .. } => "input-shape",
            EngineError::BadInputs(_) => "bad-inputs",
            EngineError::Tract(msg) => tract_stage(msg),
            // Outputs are converted after a successful run; a failure there is a type the
            // engine computed differently from the declaration.
            EngineError::Internal(msg) if msg.starts_with("output ") => "output-type",
            EngineError::Internal(msg) => internal_stage(msg),
            other => return Failure::from_load_error(other),
        };
        Failure::RunError {
            stage: stage.into(),
        }
    }

    /// The failure for a reference or input file that can't be read.
    pub fn from_tensor_error(e: &TensorError) -> Failure {
        match e {
            TensorError::UnsupportedDTypeCode(code) => Failure::UnsupportedType {
                dtype: onnx_type_name(i32::try_from(*code).unwrap_or(-1)),
            },
            _ => Failure::BadReference,
        }
    }
}

/// The step named by the context the engine puts before tract's messages.
fn tract_stage(msg: &str) -> &'static str {
    const STAGES: [(&str, &str); 6] = [
        ("parsing the graph", "parse"),
        ("resolving types and shapes", "typing"),
        ("optimizing", "optimize"),
        ("planning", "plan"),
        ("starting a run", "run"),
        ("running", "run"),
    ];
    STAGES
        .iter()
        .find(|(prefix, _)| msg.starts_with(prefix))
        .map_or("tract", |(_, stage)| stage)
}

/// Whether an engine message is tract's panic on a failed allocation (it panics rather than
/// aborting for large tensors).
fn is_allocation_failure(e: &EngineError) -> bool {
    matches!(e, EngineError::Internal(msg) if msg.contains("failed to allocate"))
}

fn internal_stage(msg: &str) -> &'static str {
    if msg.contains("panicked") {
        "panic"
    } else {
        "internal"
    }
}

/// ONNX's name for a `TensorProto.DataType` code (0 is how the engine reports a non-tensor
/// type: sequence, map, optional).
pub fn onnx_type_name(code: i32) -> String {
    let name = match code {
        0 => "non-tensor",
        1 => "float",
        2 => "uint8",
        3 => "int8",
        4 => "uint16",
        5 => "int16",
        6 => "int32",
        7 => "int64",
        8 => "string",
        9 => "bool",
        10 => "float16",
        11 => "double",
        12 => "uint32",
        13 => "uint64",
        14 => "complex64",
        15 => "complex128",
        16 => "bfloat16",
        17 => "float8e4m3fn",
        18 => "float8e4m3fnuz",
        19 => "float8e5m2",
        20 => "float8e5m2fnuz",
        21 => "uint4",
        22 => "int4",
        23 => "float4e2m1",
        24 => "float8e8m0",
        other => return format!("onnx-type-{other}"),
    };
    name.into()
}

#[cfg(test)]
mod tests {
    use super::*;
    use vouch_engine::OpName;
    use vouch_types::DType;

    #[test]
    fn codes_and_groups() {
        let cases = [
            (
                Failure::UnsupportedOp {
                    ops: vec!["Unique".into(), "ai.onnx.ml:Imputer".into()],
                },
                "unsupported-op:Unique+ai.onnx.ml:Imputer",
                "unsupported-op:Unique",
            ),
            (
                Failure::Mismatch {
                    output: "y".into(),
                    max_abs_err: Some(0.0123),
                },
                "mismatch:y max_abs_err=1.230e-2",
                "mismatch",
            ),
            (
                Failure::Mismatch {
                    output: "y".into(),
                    max_abs_err: None,
                },
                "mismatch:y max_abs_err=inf",
                "mismatch",
            ),
            (
                Failure::ShapeMismatch { output: "y".into() },
                "shape-mismatch:y",
                "shape-mismatch",
            ),
            (
                Failure::DtypeMismatch { output: "z".into() },
                "dtype-mismatch:z",
                "dtype-mismatch",
            ),
            (Failure::Timeout, "timeout", "timeout"),
            (
                Failure::Crash {
                    cause: "SIGSEGV".into(),
                },
                "crash:SIGSEGV",
                "crash:SIGSEGV",
            ),
            (
                Failure::LoadError {
                    stage: "typing".into(),
                },
                "load-error:typing",
                "load-error:typing",
            ),
            (
                Failure::MissingReference,
                "missing-reference",
                "missing-reference",
            ),
        ];
        for (failure, code, group) in cases {
            assert_eq!(failure.code(), code);
            assert_eq!(failure.group(), group);
            let json = serde_json::to_string(&failure).unwrap();
            assert_eq!(serde_json::from_str::<Failure>(&json).unwrap(), failure);
        }
    }

    #[test]
    fn engine_errors_map_to_named_reasons() {
        let ops = EngineError::UnsupportedOps(vec![OpName {
            domain: "ai.onnx.ml".into(),
            op_type: "Imputer".into(),
        }]);
        assert_eq!(
            Failure::from_load_error(&ops).code(),
            "unsupported-op:ai.onnx.ml:Imputer"
        );
        let bf16 = EngineError::UnsupportedType {
            name: "x".into(),
            onnx_elem_type: 16,
        };
        assert_eq!(
            Failure::from_load_error(&bf16).code(),
            "unsupported-type:bfloat16"
        );
        let seq = EngineError::UnsupportedType {
            name: "x".into(),
            onnx_elem_type: 0,
        };
        assert_eq!(
            Failure::from_load_error(&seq).code(),
            "unsupported-type:non-tensor"
        );
        let typing = EngineError::Tract("resolving types and shapes: Failed analyse".into());
        assert_eq!(
            Failure::from_load_error(&typing).code(),
            "load-error:typing"
        );
        let panic = EngineError::Internal("loading the model: the engine panicked: boom".into());
        assert_eq!(Failure::from_load_error(&panic).code(), "load-error:panic");
        let oom = EngineError::Internal(
            "running the model: the engine panicked: failed to allocate Layout { size: 1 }".into(),
        );
        assert_eq!(Failure::from_run_error(&oom), Failure::OutOfMemory);
        let run = EngineError::Tract("running: shape mismatch".into());
        assert_eq!(Failure::from_run_error(&run).code(), "run-error:run");
        let out = EngineError::Internal("output y: the engine produced I32".into());
        assert_eq!(
            Failure::from_run_error(&out).code(),
            "run-error:output-type"
        );
        let dtype = EngineError::InputDType {
            name: "x".into(),
            expected: DType::F32,
            got: DType::F64,
        };
        assert_eq!(
            Failure::from_run_error(&dtype).code(),
            "run-error:input-dtype"
        );
        assert_eq!(
            Failure::from_tensor_error(&TensorError::UnsupportedDTypeCode(17)).code(),
            "unsupported-type:float8e4m3fn"
        );
        assert_eq!(
            Failure::from_tensor_error(&TensorError::Truncated("x")).code(),
            "bad-reference"
        );
    }

    #[test]
    fn differences_map_to_mismatch_kinds() {
        let shape = Difference::Shape {
            expected: vec![1],
            got: vec![],
        };
        assert_eq!(
            Failure::from_difference("y", &shape).group(),
            "shape-mismatch"
        );
        let dtype = Difference::DType {
            expected: DType::F32,
            got: DType::F64,
        };
        assert_eq!(
            Failure::from_difference("y", &dtype).code(),
            "dtype-mismatch:y"
        );
        let values = Difference::Values {
            max_abs_err: 2.0,
            mismatched: 1,
            total: 4,
            first_index: 3,
        };
        assert_eq!(
            Failure::from_difference("y", &values).code(),
            "mismatch:y max_abs_err=2.000e0"
        );
    }
}
