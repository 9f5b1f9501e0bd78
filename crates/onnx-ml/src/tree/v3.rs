//! Reading the tree layout of TreeEnsembleClassifier / TreeEnsembleRegressor (ai.onnx.ml 1-3):
//! parallel `nodes_*` lists keyed by (tree id, node id), and `class_*` / `target_*` votes
//! attached to leaves by the same key.
//!
//! As in onnxruntime: a tree's root is the first of its nodes in the list, trees are evaluated
//! in order of first appearance, votes naming an interior node are ignored, and every leaf must
//! have a vote. Stricter than onnxruntime, because the attributes are untrusted: unknown modes,
//! duplicate keys, dangling references, out-of-range ids, cycles and a tree whose nodes are not
//! listed together are all refused with the attribute that is wrong.

use std::collections::HashMap;

use super::ensemble::{Ensemble, Float, MAX_FEATURE, Mode, SourceNode};
use super::{MAX_TARGETS, Trees};
use crate::attrs::{Attrs, TensorValues};
use crate::error::MlResult;

/// What the tree attributes of a TreeEnsembleClassifier/Regressor hold.
pub(crate) struct V3Trees {
    /// The ensemble, in the attributes' precision.
    pub(crate) trees: Trees,
    /// `base_values` (or `base_values_as_tensor`), widened to f64.
    pub(crate) base_values: Vec<f64>,
    /// Whether no vote weight is negative.
    pub(crate) weights_all_positive: bool,
    /// How many distinct target/class ids the votes use.
    pub(crate) distinct_ids: usize,
}

/// Reads the trees; `prefix` is `class` or `target`, `n_targets` the number of outputs.
pub(crate) fn parse(attrs: &Attrs, prefix: &str, n_targets: usize) -> MlResult<V3Trees> {
    if n_targets == 0 || n_targets > MAX_TARGETS {
        return Err(attrs.model_error(format!(
            "{n_targets} targets/classes; expected 1 to {MAX_TARGETS}"
        )));
    }
    let tree_ids = attrs.req_ints("nodes_treeids")?;
    let n = tree_ids.len();
    if n == 0 {
        return Err(attrs.error("nodes_treeids", "is empty: the ensemble has no nodes"));
    }
    let node_ids = attrs.req_ints("nodes_nodeids")?;
    let features = attrs.req_ints("nodes_featureids")?;
    let modes = attrs
        .strings("nodes_modes")?
        .ok_or_else(|| attrs.error("nodes_modes", "is required and missing"))?;
    let true_ids = attrs.req_ints("nodes_truenodeids")?;
    let false_ids = attrs.req_ints("nodes_falsenodeids")?;
    let missing = attrs.ints("nodes_missing_value_tracks_true")?;
    for (name, len) in [
        ("nodes_nodeids", Some(node_ids.len())),
        ("nodes_featureids", Some(features.len())),
        ("nodes_modes", Some(modes.len())),
        ("nodes_truenodeids", Some(true_ids.len())),
        ("nodes_falsenodeids", Some(false_ids.len())),
        ("nodes_missing_value_tracks_true", missing.map(<[i64]>::len)),
    ] {
        attrs.check_len(name, len, n, "node in nodes_treeids")?;
    }
    let thresholds = float_or_tensor(attrs, "nodes_values", "nodes_values_as_tensor")?;
    let base_values = float_or_tensor(attrs, "base_values", "base_values_as_tensor")?;
    let weights_name = format!("{prefix}_weights");
    let weights = float_or_tensor(attrs, &weights_name, &format!("{weights_name}_as_tensor"))?;
    let doubles = [&thresholds, &base_values, &weights]
        .iter()
        .any(|v| matches!(v, Some(Values::F64(_))));
    let thresholds =
        thresholds.ok_or_else(|| attrs.error("nodes_values", "is required and missing"))?;
    attrs.check_len(
        "nodes_values",
        Some(thresholds.len()),
        n,
        "node in nodes_treeids",
    )?;

    // (tree id, node id) -> position, and each tree's nodes listed together.
    let mut index: HashMap<(i64, i64), usize> = HashMap::with_capacity(n);
    let mut roots: Vec<usize> = vec![];
    let mut seen_trees: HashMap<i64, ()> = HashMap::new();
    for i in 0..n {
        if index.insert((tree_ids[i], node_ids[i]), i).is_some() {
            return Err(attrs.error(
                "nodes_nodeids",
                format!("node {} appears twice in tree {}", node_ids[i], tree_ids[i]),
            ));
        }
        if i == 0 || tree_ids[i] != tree_ids[i - 1] {
            if seen_trees.insert(tree_ids[i], ()).is_some() {
                return Err(attrs.error(
                    "nodes_treeids",
                    format!(
                        "the nodes of tree {} are not listed together (found again at position {i})",
                        tree_ids[i]
                    ),
                ));
            }
            roots.push(i);
        }
    }

    let ids_name = format!("{prefix}_ids");
    let ids = attrs.req_ints(&ids_name)?;
    let m = ids.len();
    let vote_nodes = attrs.req_ints(&format!("{prefix}_nodeids"))?;
    let vote_trees = attrs.req_ints(&format!("{prefix}_treeids"))?;
    attrs.check_len(
        &format!("{prefix}_nodeids"),
        Some(vote_nodes.len()),
        m,
        "vote",
    )?;
    attrs.check_len(
        &format!("{prefix}_treeids"),
        Some(vote_trees.len()),
        m,
        "vote",
    )?;
    let weights = weights.ok_or_else(|| attrs.error(&weights_name, "is required and missing"))?;
    attrs.check_len(&weights_name, Some(weights.len()), m, "vote")?;

    let mut leaf_modes: Vec<Option<Mode>> = Vec::with_capacity(n);
    for (i, s) in modes.iter().enumerate() {
        leaf_modes.push(Mode::parse(s).map_err(|p| attrs.error(&format!("nodes_modes[{i}]"), p))?);
    }
    let mut votes: Vec<Vec<(u32, usize)>> = vec![vec![]; n];
    let mut distinct: HashMap<i64, ()> = HashMap::new();
    let mut weights_all_positive = true;
    for k in 0..m {
        let id = ids[k];
        if id < 0 || id as u64 >= n_targets as u64 {
            return Err(attrs.error(
                &format!("{ids_name}[{k}]"),
                format!("is {id}, but there are {n_targets} targets/classes"),
            ));
        }
        distinct.insert(id, ());
        if weights.get(k) < 0.0 {
            weights_all_positive = false;
        }
        let key = (vote_trees[k], vote_nodes[k]);
        let Some(&node) = index.get(&key) else {
            return Err(attrs.error(
                &format!("{prefix}_nodeids[{k}]"),
                format!(
                    "names node {} of tree {}, which does not exist",
                    key.1, key.0
                ),
            ));
        };
        // Votes for interior nodes are ignored, as onnxruntime does (old converters wrote them).
        if leaf_modes[node].is_none() {
            votes[node].push((id as u32, k));
        }
    }

    let layout = Layout {
        attrs,
        tree_ids,
        features,
        modes: &leaf_modes,
        true_ids,
        false_ids,
        missing,
        index: &index,
        thresholds: &thresholds,
        weights: &weights,
        votes: &votes,
    };
    let err = |p: String| attrs.model_error(p);
    let trees = if doubles {
        Trees::F64(Ensemble::build(
            &layout.source::<f64>()?,
            &roots,
            n_targets,
            &err,
        )?)
    } else {
        Trees::F32(Ensemble::build(
            &layout.source::<f32>()?,
            &roots,
            n_targets,
            &err,
        )?)
    };
    Ok(V3Trees {
        trees,
        base_values: base_values.map(|v| v.to_f64()).unwrap_or_default(),
        weights_all_positive,
        distinct_ids: distinct.len(),
    })
}

/// The parsed attributes, before they become source nodes in the chosen precision.
struct Layout<'a> {
    attrs: &'a Attrs<'a>,
    tree_ids: &'a [i64],
    features: &'a [i64],
    modes: &'a [Option<Mode>],
    true_ids: &'a [i64],
    false_ids: &'a [i64],
    missing: Option<&'a [i64]>,
    index: &'a HashMap<(i64, i64), usize>,
    thresholds: &'a Values,
    weights: &'a Values,
    /// Per node, its votes as (target, position in the weights list).
    votes: &'a [Vec<(u32, usize)>],
}

impl Layout<'_> {
    fn source<T: Float>(&self) -> MlResult<Vec<SourceNode<T>>> {
        let attrs = self.attrs;
        let n = self.tree_ids.len();
        let mut nodes = Vec::with_capacity(n);
        for i in 0..n {
            let node = match self.modes[i] {
                None => {
                    if self.votes[i].is_empty() {
                        return Err(attrs.model_error(format!(
                            "leaf at position {i} (tree {}) has no vote: every leaf needs at least one",
                            self.tree_ids[i]
                        )));
                    }
                    SourceNode::Leaf(
                        self.votes[i]
                            .iter()
                            .map(|&(t, k)| (t, self.weights.as_type::<T>(k)))
                            .collect(),
                    )
                }
                Some(mode) => {
                    let feature = self.features[i];
                    if feature < 0 || feature > MAX_FEATURE as i64 {
                        return Err(attrs.error(
                            &format!("nodes_featureids[{i}]"),
                            format!("is {feature}, out of range 0..={MAX_FEATURE}"),
                        ));
                    }
                    let child = |ids: &[i64], name: &str| {
                        let key = (self.tree_ids[i], ids[i]);
                        self.index.get(&key).copied().ok_or_else(|| {
                            attrs.error(
                                &format!("{name}[{i}]"),
                                format!("is {}, which is not a node of tree {}", key.1, key.0),
                            )
                        })
                    };
                    SourceNode::Branch {
                        mode,
                        feature: feature as u32,
                        threshold: self.thresholds.as_type::<T>(i),
                        missing_true: self.missing.is_some_and(|m| m[i] == 1),
                        on_true: child(self.true_ids, "nodes_truenodeids")?,
                        on_false: child(self.false_ids, "nodes_falsenodeids")?,
                    }
                }
            };
            nodes.push(node);
        }
        Ok(nodes)
    }
}

/// A list given as floats or as a double tensor.
pub(crate) enum Values {
    F32(Vec<f32>),
    F64(Vec<f64>),
}

impl Values {
    fn len(&self) -> usize {
        match self {
            Values::F32(v) => v.len(),
            Values::F64(v) => v.len(),
        }
    }

    fn get(&self, i: usize) -> f64 {
        match self {
            Values::F32(v) => v[i] as f64,
            Values::F64(v) => v[i],
        }
    }

    fn as_type<T: Float>(&self, i: usize) -> T {
        match self {
            Values::F32(v) => T::from_f32(v[i]),
            Values::F64(v) => T::from_f64(v[i]),
        }
    }

    fn to_f64(&self) -> Vec<f64> {
        match self {
            Values::F32(v) => v.iter().map(|&x| x as f64).collect(),
            Values::F64(v) => v.clone(),
        }
    }
}

/// Reads `name` (floats) or `tensor_name` (a float or double tensor); not both.
fn float_or_tensor(attrs: &Attrs, name: &str, tensor_name: &str) -> MlResult<Option<Values>> {
    let floats = attrs.floats(name)?;
    let tensor = attrs.tensor(tensor_name)?;
    match (floats, tensor) {
        (Some(_), Some(_)) => Err(attrs.error(
            tensor_name,
            format!("is given together with {name}; give one of them"),
        )),
        (Some(f), None) => Ok(Some(Values::F32(f.to_vec()))),
        (None, Some(TensorValues::F64(v))) => Ok(Some(Values::F64(v))),
        (None, Some(TensorValues::F32(v))) => Ok(Some(Values::F32(v))),
        (None, Some(other)) => Err(attrs.error(
            tensor_name,
            format!("holds {} values; expected double", other.type_name()),
        )),
        (None, None) => Ok(None),
    }
}
