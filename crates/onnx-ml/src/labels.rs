//! A classifier's class labels (`classlabels_int64s` / `classlabels_ints` or
//! `classlabels_strings`) and the label output built from them.

use tract_onnx::prelude::{DatumType, Tensor};

use crate::attrs::Attrs;
use crate::error::MlResult;
use crate::op::tensor;

/// The labels a classifier outputs.
#[derive(Clone, Debug, PartialEq)]
pub(crate) enum ClassLabels {
    /// int64 labels.
    Int64(Vec<i64>),
    /// String labels.
    Strings(Vec<String>),
}

/// One row's predicted label.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Label {
    /// The label at this index of the class list.
    Class(usize),
    /// A fixed label onnxruntime emits in some binary cases (`1`/`0`, or `"1"`/`"0"` for string
    /// labels).
    Fixed(i64),
}

impl ClassLabels {
    /// Reads the labels from `ints` or `strings` (strings win when both are given, as in
    /// onnxruntime; an empty list counts as absent).
    pub(crate) fn read(attrs: &Attrs, ints: &str, strings: &str) -> MlResult<ClassLabels> {
        let s = attrs.strings(strings)?.filter(|s| !s.is_empty());
        let i = attrs.ints(ints)?.filter(|i| !i.is_empty());
        match (s, i) {
            (Some(s), _) => Ok(ClassLabels::Strings(s)),
            (None, Some(i)) => Ok(ClassLabels::Int64(i.to_vec())),
            (None, None) => {
                Err(attrs.model_error(format!("has no class labels: give {ints} or {strings}")))
            }
        }
    }

    /// Number of classes.
    pub(crate) fn len(&self) -> usize {
        match self {
            ClassLabels::Int64(v) => v.len(),
            ClassLabels::Strings(v) => v.len(),
        }
    }

    /// The label output's element type.
    pub(crate) fn datum_type(&self) -> DatumType {
        match self {
            ClassLabels::Int64(_) => DatumType::I64,
            ClassLabels::Strings(_) => DatumType::String,
        }
    }

    /// The 1-D label output for `picks`. Indices were validated against the list when the
    /// picks were made.
    pub(crate) fn output(&self, picks: &[Label]) -> MlResult<Tensor> {
        match self {
            ClassLabels::Int64(labels) => tensor(
                &[picks.len()],
                picks
                    .iter()
                    .map(|p| match *p {
                        Label::Class(k) => labels[k],
                        Label::Fixed(v) => v,
                    })
                    .collect(),
            ),
            ClassLabels::Strings(labels) => tensor(
                &[picks.len()],
                picks
                    .iter()
                    .map(|p| match *p {
                        Label::Class(k) => labels[k].clone(),
                        Label::Fixed(v) => v.to_string(),
                    })
                    .collect(),
            ),
        }
    }
}
