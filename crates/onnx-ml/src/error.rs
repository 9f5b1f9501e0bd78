//! What can go wrong reading an ONNX-ML node or running it.

/// An ONNX-ML node the engine refuses, or an input it can't evaluate. Every attribute comes from
/// an untrusted model file, so each of these is an ordinary error, never a panic.
#[derive(Debug, thiserror::Error)]
pub enum MlError {
    /// One attribute is missing, of the wrong type, or holds an invalid value.
    #[error("{op} node {node:?}: attribute {attr}: {problem}")]
    Attribute {
        /// Operator type, e.g. `TreeEnsembleClassifier`.
        op: &'static str,
        /// Node name.
        node: String,
        /// Attribute name.
        attr: String,
        /// What is wrong with it.
        problem: String,
    },
    /// The attributes are individually valid but don't describe a usable model together.
    #[error("{op} node {node:?}: {problem}")]
    Model {
        /// Operator type.
        op: &'static str,
        /// Node name.
        node: String,
        /// What is inconsistent.
        problem: String,
    },
    /// A valid node whose behaviour Vouch does not implement, with what to do instead.
    #[error("{op} node {node:?}: not supported: {problem}")]
    Unsupported {
        /// Operator type.
        op: &'static str,
        /// Node name.
        node: String,
        /// What is not supported, and what to do instead.
        problem: String,
    },
    /// An input the operator can't evaluate (type, shape or values).
    #[error("{op}: {problem}")]
    Input {
        /// Operator type.
        op: &'static str,
        /// What is wrong with the input.
        problem: String,
    },
}

/// Shorthand for results in this crate.
pub(crate) type MlResult<T> = Result<T, MlError>;

/// An input error for `op`.
pub(crate) fn input_error(op: &'static str, problem: impl Into<String>) -> MlError {
    MlError::Input {
        op,
        problem: problem.into(),
    }
}
