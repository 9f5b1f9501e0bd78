//! Vouch's inference engine: loads ONNX models with tract, runs them under a named determinism
//! profile, and commits to each run's inputs, outputs and execution trace.
//!
//! Entry points: [`Model::load`] (parse, check, prepare under a [`Profile`]), [`Model::run`]
//! (returns an [`Execution`]: outputs, commitments, [`Trace`]), and [`inspect`] (a model's
//! declared signature and operators, without preparing it). Formats (tensors, commitments,
//! receipts) belong to `vouch-types`; signing and I/O belong to the callers.
//!
//! Determinism is the product: see [`profile`] for what each profile guarantees and how tract's
//! kernel selection is pinned.

mod convert;
pub mod inspect;
mod model;
mod pin;
mod pool;
pub mod profile;
mod registry;
mod softmax;
pub mod trace;

pub use inspect::{Dim, ModelInfo, OpName, OpUse, TensorSpec};
pub use model::{EngineConfig, Execution, Model, inputs_from_json, inspect, op_supported};
pub use profile::{ENGINE, Profile};
pub use trace::{Trace, TraceNode};
use vouch_types::DType;

/// What went wrong loading or running a model.
#[derive(Debug, thiserror::Error)]
pub enum EngineError {
    /// The bytes are not an ONNX model.
    #[error("not a valid ONNX model: {0}")]
    NotOnnx(String),
    /// The model file is over the size limit.
    #[error("model is {size} bytes, over the {max}-byte limit")]
    ModelTooLarge {
        /// File size.
        size: u64,
        /// Limit.
        max: u64,
    },
    /// The model uses operators the engine does not implement.
    #[error("unsupported operator(s): {}", .0.iter().map(|o| format!("{} (domain {:?})", o.op_type, if o.domain.is_empty() { "ai.onnx" } else { &o.domain })).collect::<Vec<_>>().join(", "))]
    UnsupportedOps(Vec<OpName>),
    /// The model keeps weights in external files.
    #[error(
        "the model stores tensors in external data files; only self-contained models are accepted (its id must cover every weight)"
    )]
    ExternalData,
    /// A declared input or output type is not one Vouch supports.
    #[error("tensor {name:?} has ONNX element type {onnx_elem_type}, which is not supported")]
    UnsupportedType {
        /// Tensor name.
        name: String,
        /// ONNX element type code.
        onnx_elem_type: i32,
    },
    /// A required input is missing.
    #[error("missing input {name:?} (expected {spec})")]
    MissingInput {
        /// Input name.
        name: String,
        /// Its declared type and shape.
        spec: String,
    },
    /// An input the model doesn't have.
    #[error("unknown input {name:?}; the model's inputs are {}", .expected.join(", "))]
    UnknownInput {
        /// Name given.
        name: String,
        /// Names the model has.
        expected: Vec<String>,
    },
    /// An input of the wrong element type.
    #[error("input {name:?} must be {expected}, got {got}")]
    InputDType {
        /// Input name.
        name: String,
        /// Declared dtype.
        expected: DType,
        /// Given dtype.
        got: DType,
    },
    /// An input of the wrong shape.
    #[error("input {name:?} must be {expected}, got shape {got:?}")]
    InputShape {
        /// Input name.
        name: String,
        /// Declared type and shape.
        expected: String,
        /// Given shape.
        got: Vec<u64>,
    },
    /// Inputs that can't be read or committed.
    #[error("bad inputs: {0}")]
    BadInputs(String),
    /// tract rejected the model or failed while running it.
    #[error("{0}")]
    Tract(String),
    /// A profile name this engine doesn't know.
    #[error("unknown profile {0:?} (known: exact-portable/1, exact-fused/1, native/1)")]
    UnknownProfile(String),
    /// A second profile requested in a process that already runs another.
    #[error("this process already runs profile {active}; {requested} needs a separate process")]
    ProfileConflict {
        /// The active profile.
        active: Profile,
        /// The profile asked for.
        requested: Profile,
    },
    /// The profile can't run on this machine.
    #[error("profile {profile} is not available here: {reason}")]
    ProfileUnavailable {
        /// The profile.
        profile: Profile,
        /// Why.
        reason: String,
    },
    /// The model needs an operation the profile can't compute bit-identically everywhere.
    #[error("profile {profile} does not cover {op} (node {node:?}): {reason}")]
    ProfileUnsupportedOp {
        /// The profile.
        profile: Profile,
        /// The node, as the prepared graph names it.
        node: String,
        /// The operation (and kernel, for a matrix product).
        op: String,
        /// Why the profile can't pin it.
        reason: String,
    },
    /// A bug or an engine panic, reported instead of crashing.
    #[error("internal engine error: {0}")]
    Internal(String),
}
