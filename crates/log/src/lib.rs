//! Vouch's transparency log.
//!
//! This crate owns what the log writes, signs and serves: C2SP signed notes ([`note`]) and
//! checkpoints ([`checkpoint`]), witness cosignatures and policies ([`cosignature`]), the
//! witness's consistency-checking core ([`witness`]), tile paths and entry bundles ([`tile`]),
//! the durable journal and sequencer ([`log`], entry point [`Log::open`] then
//! [`Log::append`]), reading entries and proofs back from the tiles ([`store`]), and offline
//! proof bundles ([`bundle`]). Merkle hashing and proofs come
//! from `vouch-merkle`. It does not own HTTP (the node maps [`witness::WitnessError`] to
//! status codes) or what the entries mean: entries are opaque bytes.
//!
//! The formats are specified in `docs/log.md`, with test vectors that `tests/vectors.rs`
//! checks byte for byte.

#![warn(missing_docs)]

pub mod bundle;
pub mod checkpoint;
pub mod cosignature;
mod journal;
pub mod log;
pub mod note;
pub mod store;
pub mod tile;
pub mod witness;

pub use bundle::ProofBundle;
pub use checkpoint::{Checkpoint, SignedCheckpoint};
pub use cosignature::{CosignatureVerifier, Cosigner, WitnessPolicy};
pub use log::{AppendHandle, Appended, Log, LogConfig, LogError};
pub use note::{Note, NoteSigner, NoteVerifier};
pub use vouch_merkle::Hash;
