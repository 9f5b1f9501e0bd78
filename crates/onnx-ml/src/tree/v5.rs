//! Reading TreeEnsemble (ai.onnx.ml 5): interior nodes in `nodes_*` (children are node or leaf
//! positions, as `nodes_trueleafs`/`nodes_falseleafs` say), leaves in `leaf_*`, one tree per
//! entry of `tree_roots`, `BRANCH_MEMBER` sets in `membership_values` separated by NaN.
//!
//! Thresholds, leaf weights and membership values must all be float or all double, and the
//! input must have that type. Unlike onnxruntime 1.32 (which treats a root whose two children
//! are equal as a leaf at the root's own position), a tree that is a single leaf is evaluated as
//! the spec describes it: a root whose two branches reach the same leaf.

use super::ensemble::{Ensemble, Float, MAX_FEATURE, Mode, SourceNode};
use super::{MAX_TARGETS, Trees};
use crate::attrs::{Attrs, TensorValues};
use crate::error::MlResult;

/// Reads the trees of a TreeEnsemble node.
pub(crate) fn parse(attrs: &Attrs) -> MlResult<Trees> {
    let n_targets = attrs.int("n_targets")?.unwrap_or(0);
    if n_targets < 1 || n_targets as u64 > MAX_TARGETS as u64 {
        return Err(attrs.error(
            "n_targets",
            format!("is {n_targets}; expected 1 to {MAX_TARGETS}"),
        ));
    }
    let n_targets = n_targets as usize;
    let splits = attrs
        .tensor("nodes_splits")?
        .ok_or_else(|| attrs.error("nodes_splits", "is required and missing"))?;
    let weights = attrs
        .tensor("leaf_weights")?
        .ok_or_else(|| attrs.error("leaf_weights", "is required and missing"))?;
    let members = attrs.tensor("membership_values")?;
    if let Some(m) = &members
        && m.type_name() != splits.type_name()
    {
        return Err(attrs.error(
            "membership_values",
            format!(
                "holds {} values; nodes_splits holds {}",
                m.type_name(),
                splits.type_name()
            ),
        ));
    }
    match (&splits, &weights) {
        (TensorValues::F32(_), TensorValues::F32(_)) => Ok(Trees::F32(build(
            attrs,
            n_targets,
            &splits,
            &weights,
            members.as_ref(),
        )?)),
        (TensorValues::F64(_), TensorValues::F64(_)) => Ok(Trees::F64(build(
            attrs,
            n_targets,
            &splits,
            &weights,
            members.as_ref(),
        )?)),
        _ => Err(attrs.error(
            "leaf_weights",
            format!(
                "holds {} values while nodes_splits holds {}; both must be float or both double",
                weights.type_name(),
                splits.type_name()
            ),
        )),
    }
}

/// A float or double tensor attribute's values as `T` (empty for other types).
fn values<T: Float>(t: &TensorValues) -> Vec<T> {
    match t {
        TensorValues::F32(v) => v.iter().map(|&x| T::from_f32(x)).collect(),
        TensorValues::F64(v) => v.iter().map(|&x| T::from_f64(x)).collect(),
        _ => vec![],
    }
}

fn build<T: Float>(
    attrs: &Attrs,
    n_targets: usize,
    splits: &TensorValues,
    weights: &TensorValues,
    members: Option<&TensorValues>,
) -> MlResult<Ensemble<T>> {
    let features = attrs.req_ints("nodes_featureids")?;
    let n = features.len();
    let splits: Vec<T> = values(splits);
    let modes = match attrs.tensor("nodes_modes")? {
        Some(TensorValues::U8(m)) => m,
        Some(other) => {
            return Err(attrs.error(
                "nodes_modes",
                format!("holds {} values; expected uint8", other.type_name()),
            ));
        }
        None => return Err(attrs.error("nodes_modes", "is required and missing")),
    };
    let true_ids = attrs.req_ints("nodes_truenodeids")?;
    let true_leafs = attrs.req_ints("nodes_trueleafs")?;
    let false_ids = attrs.req_ints("nodes_falsenodeids")?;
    let false_leafs = attrs.req_ints("nodes_falseleafs")?;
    let missing = attrs.ints("nodes_missing_value_tracks_true")?;
    for (name, len) in [
        ("nodes_splits", Some(splits.len())),
        ("nodes_modes", Some(modes.len())),
        ("nodes_truenodeids", Some(true_ids.len())),
        ("nodes_trueleafs", Some(true_leafs.len())),
        ("nodes_falsenodeids", Some(false_ids.len())),
        ("nodes_falseleafs", Some(false_leafs.len())),
        ("nodes_missing_value_tracks_true", missing.map(<[i64]>::len)),
    ] {
        attrs.check_len(name, len, n, "node in nodes_featureids")?;
    }
    let targets = attrs.req_ints("leaf_targetids")?;
    let leaf_weights: Vec<T> = values(weights);
    let n_leaves = targets.len();
    attrs.check_len(
        "leaf_weights",
        Some(leaf_weights.len()),
        n_leaves,
        "leaf in leaf_targetids",
    )?;
    let members: Vec<T> = members.map(values).unwrap_or_default();
    let roots = attrs.req_ints("tree_roots")?;

    // Source nodes: interior nodes first (positions 0..n), then leaves (n..n + n_leaves).
    let mut source: Vec<SourceNode<T>> = Vec::with_capacity(n + n_leaves);
    let mut member_pos = 0usize;
    for i in 0..n {
        let feature = features[i];
        if feature < 0 || feature > MAX_FEATURE as i64 {
            return Err(attrs.error(
                &format!("nodes_featureids[{i}]"),
                format!("is {feature}, out of range 0..={MAX_FEATURE}"),
            ));
        }
        let child = |ids: &[i64], leafs: &[i64], name: &str| -> MlResult<usize> {
            let (id, leaf) = (ids[i], leafs[i] != 0);
            let (bound, what) = if leaf {
                (n_leaves, "leaves")
            } else {
                (n, "nodes")
            };
            if id < 0 || id as u64 >= bound as u64 {
                return Err(attrs.error(
                    &format!("{name}[{i}]"),
                    format!("is {id}, but there are {bound} {what}"),
                ));
            }
            Ok(if leaf { n + id as usize } else { id as usize })
        };
        let on_true = child(true_ids, true_leafs, "nodes_truenodeids")?;
        let on_false = child(false_ids, false_leafs, "nodes_falsenodeids")?;
        let missing_true = missing.is_some_and(|m| m[i] == 1);
        let node = match modes[i] {
            6 => {
                // The next NaN-terminated run of membership_values.
                let start = member_pos.min(members.len());
                let len = members[start..]
                    .iter()
                    .position(|v| v.is_nan())
                    .unwrap_or(members.len() - start);
                member_pos = start + len + 1;
                if len == 0 {
                    return Err(attrs.error(
                        "membership_values",
                        format!("gives no value for the set of BRANCH_MEMBER node {i}"),
                    ));
                }
                SourceNode::Member {
                    feature: feature as u32,
                    values: members[start..start + len].to_vec(),
                    missing_true,
                    on_true,
                    on_false,
                }
            }
            m @ 0..=5 => SourceNode::Branch {
                mode: [
                    Mode::Leq,
                    Mode::Lt,
                    Mode::Gte,
                    Mode::Gt,
                    Mode::Eq,
                    Mode::Neq,
                ][m as usize],
                feature: feature as u32,
                threshold: splits[i],
                missing_true,
                on_true,
                on_false,
            },
            other => {
                return Err(attrs.error(
                    &format!("nodes_modes[{i}]"),
                    format!("is {other}; expected 0 (BRANCH_LEQ) to 6 (BRANCH_MEMBER)"),
                ));
            }
        };
        source.push(node);
    }
    for (k, (&t, &w)) in targets.iter().zip(&leaf_weights).enumerate() {
        if t < 0 || t as u64 >= n_targets as u64 {
            return Err(attrs.error(
                &format!("leaf_targetids[{k}]"),
                format!("is {t}, but there are {n_targets} targets"),
            ));
        }
        source.push(SourceNode::Leaf(vec![(t as u32, w)]));
    }
    let roots: Vec<usize> = roots
        .iter()
        .enumerate()
        .map(|(k, &r)| {
            if r >= 0 && (r as u64) < n as u64 {
                Ok(r as usize)
            } else {
                Err(attrs.error(
                    &format!("tree_roots[{k}]"),
                    format!("is {r}, but there are {n} nodes"),
                ))
            }
        })
        .collect::<MlResult<_>>()?;
    Ensemble::build(&source, &roots, n_targets, &|p| attrs.model_error(p))
}
