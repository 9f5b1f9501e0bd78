//! `OptionalHasElement` and `OptionalGetElement` where the value is a plain tensor or absent:
//! Vouch's tensors have no optional type, so a present input is a tensor and is returned as is.

use tract_onnx::model::ParsingContext;
use tract_onnx::pb::NodeProto;
use tract_onnx::tract_hir::internal::*;

use crate::rust_op::{Kernel, boxed};

/// `OptionalHasElement`: true when its input is given.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HasElement {
    present: bool,
}

/// Builds `OptionalHasElement`.
pub fn has_element(
    _ctx: &ParsingContext,
    node: &NodeProto,
) -> TractResult<(Box<dyn InferenceOp>, Vec<String>)> {
    boxed(HasElement {
        present: node.input.first().is_some_and(|i| !i.is_empty()),
    })
}

impl Kernel for HasElement {
    fn name(&self) -> &'static str {
        "OptionalHasElement"
    }

    fn output_facts(&self, _inputs: &[&TypedFact]) -> TractResult<TVec<TypedFact>> {
        Ok(tvec![bool::scalar_fact()])
    }

    fn eval(&self, _inputs: TVec<TValue>) -> TractResult<TVec<TValue>> {
        Ok(tvec![tensor0(self.present).into_tvalue()])
    }
}

/// `OptionalGetElement` of a tensor: the tensor.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct GetElement;

/// Builds `OptionalGetElement`.
pub fn get_element(
    _ctx: &ParsingContext,
    node: &NodeProto,
) -> TractResult<(Box<dyn InferenceOp>, Vec<String>)> {
    ensure!(
        node.input.first().is_some_and(|i| !i.is_empty()),
        "OptionalGetElement of an absent value"
    );
    boxed(GetElement)
}

impl Kernel for GetElement {
    fn name(&self) -> &'static str {
        "OptionalGetElement"
    }

    fn output_facts(&self, inputs: &[&TypedFact]) -> TractResult<TVec<TypedFact>> {
        Ok(tvec![inputs[0].without_value()])
    }

    fn eval(&self, inputs: TVec<TValue>) -> TractResult<TVec<TValue>> {
        Ok(inputs)
    }
}
