//! The execution trace commitment: a hash of every evaluated node's outputs, in the plan's fixed
//! order, under one RFC 9162 Merkle root (docs/protocol.md §5).
//!
//! Two runs of one model on one input under one exact profile give the same trace; when two
//! operators disagree, comparing their node hashes (or bisecting with inclusion proofs against
//! the roots in their receipts) finds the first node whose outputs differ.

use serde::Serialize;
use tract_onnx::prelude::TValue;
use vouch_types::{
    Commitment,
    hash::{Digest32, TaggedHasher, domain},
};

use crate::convert::tract_commitment;

/// One evaluated node.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct TraceNode {
    /// Position in the plan's evaluation order (constants excluded).
    pub step: u32,
    /// The node's name in the prepared graph (ONNX node names, with a suffix where the optimiser
    /// split or fused a node).
    pub name: String,
    /// Commitment of each output; `None` for engine-internal values with no tensor form.
    pub outputs: Vec<Option<Commitment>>,
    /// The node hash, the trace tree's leaf data.
    pub hash: Commitment,
}

/// The trace of one run.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct Trace {
    /// Evaluated nodes in order.
    pub nodes: Vec<TraceNode>,
    /// RFC 9162 Merkle tree hash over the node hashes.
    pub root: Commitment,
}

impl Trace {
    /// Number of nodes (the tree size).
    pub fn size(&self) -> u32 {
        self.nodes.len() as u32
    }

    /// The first node at which two traces differ (by step), if any.
    pub fn first_divergence(&self, other: &Trace) -> Option<usize> {
        let common = self.nodes.len().min(other.nodes.len());
        (0..common)
            .find(|&i| self.nodes[i].hash != other.nodes[i].hash)
            .or((self.nodes.len() != other.nodes.len()).then_some(common))
    }
}

/// `SHA-256("vouch/trace-node/v1" || 0x00 || u32 step || u32 len || name || u32 n ||
/// per output: 0x01 || commitment, or 0x00 for an internal value)`.
pub fn node_hash(step: u32, name: &str, outputs: &[Option<Commitment>]) -> Digest32 {
    let mut h = TaggedHasher::new(domain::TRACE_NODE);
    h.update_u32(step)
        .update_prefixed(name.as_bytes())
        .update_u32(outputs.len() as u32);
    for o in outputs {
        match o {
            Some(c) => h.update(&[1]).update(c.as_bytes()),
            None => h.update(&[0]),
        };
    }
    h.finish()
}

/// The trace root over node hashes.
pub fn trace_root(node_hashes: impl IntoIterator<Item = Digest32>) -> Commitment {
    let leaves: Vec<vouch_merkle::Hash> = node_hashes
        .into_iter()
        .map(|h| vouch_merkle::leaf_hash(&h))
        .collect();
    Commitment(vouch_merkle::root_from_leaf_hashes(&leaves))
}

/// Accumulates node hashes while a plan runs.
#[derive(Default)]
pub(crate) struct TraceBuilder {
    nodes: Vec<TraceNode>,
}

impl TraceBuilder {
    pub(crate) fn record(&mut self, name: &str, outputs: &[TValue]) {
        let step = self.nodes.len() as u32;
        let commitments: Vec<Option<Commitment>> =
            outputs.iter().map(|v| tract_commitment(v)).collect();
        let hash = Commitment(node_hash(step, name, &commitments));
        self.nodes.push(TraceNode {
            step,
            name: name.to_string(),
            outputs: commitments,
            hash,
        });
    }

    pub(crate) fn finish(self) -> Trace {
        let root = trace_root(self.nodes.iter().map(|n| n.hash.0));
        Trace {
            nodes: self.nodes,
            root,
        }
    }
}
