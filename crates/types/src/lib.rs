//! Vouch's formats: everything a verifier needs, and nothing that touches a disk or a network.
//!
//! - [`ModelId`]: a model's content address (CIDv1, raw, sha2-256).
//! - [`Tensor`] with its canonical encoding, JSON, `.npy` and ONNX `TensorProto` forms, and its
//!   [`Commitment`]; [`tensor::commit_named`] commits to a named set of tensors.
//! - [`Receipt`] / [`SignedReceipt`]: the EIP-712 statement an operator signs.
//! - [`publish::SignedManifest`]: the EIP-712 request a publisher signs to add a model version.
//! - [`hash`]: the domain-separated SHA-256 every commitment uses.
//!
//! The engine that produces these values lives in `vouch-engine`; the byte-level formats are
//! specified in docs/protocol.md, whose test vectors `tests/protocol_vectors.rs` checks.

pub mod commitment;
pub mod hash;
pub mod model_id;
pub mod publish;
pub mod receipt;
pub mod tensor;

pub use alloy_primitives::Address;
pub use commitment::Commitment;
pub use k256::ecdsa::SigningKey;
pub use model_id::ModelId;
pub use receipt::{Nonce, Receipt, ReceiptError, SignedReceipt};
pub use tensor::{DType, Limits, NamedTensors, Tensor, TensorError};
