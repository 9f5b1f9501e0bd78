//! The tract glue shared by this crate's own operators: an operator is a [`Kernel`] (typing
//! plus an evaluation over whole tensors in plain Rust), and [`RustOp`] makes it a tract
//! operator that analysis, typing and optimisation pass through unchanged.
//!
//! Kernels compute in a fixed order with no platform maths (transcendental functions come from
//! the pure-Rust `libm`), so their bits are the same on every machine.

use std::borrow::Cow;
use std::fmt;

use tract_onnx::model::ParsingContext;
use tract_onnx::pb::NodeProto;
use tract_onnx::tract_hir::internal::*;

/// An operator's semantics: its output types from its input types, and its evaluation.
pub trait Kernel: fmt::Debug + Clone + PartialEq + Eq + Send + Sync + 'static {
    /// The ONNX operator name, for messages and dumps.
    fn name(&self) -> &'static str;

    /// How many outputs the node has (ONNX outputs named `""` are not counted).
    fn nboutputs(&self) -> usize {
        1
    }

    /// Output types and shapes from the inputs'.
    fn output_facts(&self, inputs: &[&TypedFact]) -> TractResult<TVec<TypedFact>>;

    /// The outputs for these inputs.
    fn eval(&self, inputs: TVec<TValue>) -> TractResult<TVec<TValue>>;
}

/// A [`Kernel`] as a tract operator, both before typing (inference) and after.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RustOp<K: Kernel>(pub K);

/// The builder's result for a kernel, as tract's operator table wants it.
pub fn boxed<K: Kernel>(kernel: K) -> TractResult<(Box<dyn InferenceOp>, Vec<String>)> {
    Ok((Box::new(RustOp(kernel)), vec![]))
}

impl<K: Kernel> Op for RustOp<K> {
    fn name(&self) -> StaticName {
        self.0.name().into()
    }

    op_as_typed_op!();
}

impl<K: Kernel> EvalOp for RustOp<K> {
    op_out_of_plan!();

    fn eval(&self, _ctx: &EvalContext, inputs: TVec<TValue>) -> TractResult<TVec<TValue>> {
        self.0.eval(inputs)
    }
}

impl<K: Kernel> TypedOp for RustOp<K> {
    fn output_facts(&self, inputs: &[&TypedFact]) -> TractResult<TVec<TypedFact>> {
        self.0.output_facts(inputs)
    }

    fn as_op(&self) -> &dyn Op {
        self
    }

    fn as_op_mut(&mut self) -> &mut dyn Op {
        self
    }
}

impl<K: Kernel> InferenceOp for RustOp<K> {
    fn infer_facts(
        &mut self,
        inputs: TVec<&InferenceFact>,
        outputs: TVec<&InferenceFact>,
        observed: TVec<&InferenceFact>,
    ) -> TractResult<(
        TVec<InferenceFact>,
        TVec<InferenceFact>,
        TVec<InferenceFact>,
    )> {
        let typed: Option<TVec<TypedFact>> = inputs
            .iter()
            .map(|f| TypedFact::try_from(*f).ok())
            .collect();
        let new_outputs = match typed {
            Some(typed) => {
                let refs: TVec<&TypedFact> = typed.iter().collect();
                let facts = self.0.output_facts(&refs)?;
                ensure!(
                    facts.len() == outputs.len(),
                    "{} has {} outputs, the node {}",
                    self.0.name(),
                    facts.len(),
                    outputs.len()
                );
                facts
                    .into_iter()
                    .zip(&outputs)
                    .map(|(fact, known)| {
                        let fact = InferenceFact::from(fact.without_value());
                        known.unify(&fact)
                    })
                    .collect::<TractResult<TVec<_>>>()?
            }
            None => outputs.iter().map(|f| (*f).clone()).collect(),
        };
        Ok((
            inputs.into_iter().cloned().collect(),
            new_outputs,
            observed.into_iter().cloned().collect(),
        ))
    }

    fn nboutputs(&self) -> TractResult<usize> {
        Ok(self.0.nboutputs())
    }

    fn as_op(&self) -> &dyn Op {
        self
    }

    fn as_op_mut(&mut self) -> &mut dyn Op {
        self
    }

    fn to_typed(
        &self,
        _source: &InferenceModel,
        node: &InferenceNode,
        target: &mut TypedModel,
        mapping: &HashMap<OutletId, OutletId>,
    ) -> TractResult<TVec<OutletId>> {
        let inputs: TVec<OutletId> = node.inputs.iter().map(|o| mapping[o]).collect();
        target.wire_node(&node.name, self.clone(), &inputs)
    }
}

/// Which of a node's ONNX inputs are present, as positions among tract's inputs (tract drops
/// the inputs named `""`).
pub fn input_slots(node: &NodeProto, count: usize) -> Vec<Option<usize>> {
    let mut next = 0;
    (0..count)
        .map(|ix| match node.input.get(ix) {
            Some(name) if !name.is_empty() => {
                next += 1;
                Some(next - 1)
            }
            _ => None,
        })
        .collect()
}

/// Which of a node's ONNX outputs are present, as positions among tract's outputs.
pub fn output_slots(node: &NodeProto, count: usize) -> Vec<Option<usize>> {
    let mut next = 0;
    (0..count)
        .map(|ix| match node.output.get(ix) {
            Some(name) if !name.is_empty() => {
                next += 1;
                Some(next - 1)
            }
            _ => None,
        })
        .collect()
}

/// A tensor's elements as `f64`, in row-major order.
pub fn to_f64(t: &Tensor) -> TractResult<Vec<f64>> {
    ensure!(
        t.datum_type().is_float() || t.datum_type().is_integer(),
        "expected numbers, got {:?}",
        t.datum_type()
    );
    let cast: Cow<Tensor> = t.cast_to::<f64>()?;
    Ok(cast.try_as_plain_ram()?.as_slice::<f64>()?.to_vec())
}

/// A tensor's elements as `i64`, in row-major order.
pub fn to_i64(t: &Tensor) -> TractResult<Vec<i64>> {
    ensure!(
        t.datum_type().is_integer() || t.datum_type() == TDim::datum_type(),
        "expected integers, got {:?}",
        t.datum_type()
    );
    let cast: Cow<Tensor> = t.cast_to::<i64>()?;
    Ok(cast.try_as_plain_ram()?.as_slice::<i64>()?.to_vec())
}

/// A tensor of type `dt` and shape `shape` from `f64` values (rounded to nearest).
pub fn from_f64(dt: DatumType, shape: &[usize], values: &[f64]) -> TractResult<TValue> {
    let t = Tensor::from_shape(shape, values)?;
    Ok(t.cast_to_dt(dt)?.into_owned().into_tvalue())
}

/// The builder type of tract's ONNX operator table.
pub type OpBuilder =
    fn(&ParsingContext, &NodeProto) -> TractResult<(Box<dyn InferenceOp>, Vec<String>)>;

/// A tensor of `input`'s type and shape `shape` whose element `i` is `input`'s element
/// `sources[i]`, or zero (the empty string) where that is `None`.
pub fn gather_elements(
    input: &Tensor,
    shape: &[usize],
    sources: &[Option<usize>],
) -> TractResult<Tensor> {
    let dt = input.datum_type();
    ensure!(shape.iter().product::<usize>() == sources.len());
    if dt == String::datum_type() {
        let src = input.try_as_plain_ram()?.as_slice::<String>()?;
        let values: Vec<String> = sources
            .iter()
            .map(|s| s.map(|i| src[i].clone()).unwrap_or_default())
            .collect();
        return Ok(tract_ndarray::ArrayD::from_shape_vec(shape, values)?.into());
    }
    ensure!(dt.is_copy(), "{dt:?} elements can't be moved");
    let size = dt.size_of();
    let src = input.as_bytes();
    let mut out = Tensor::zero_dt(dt, shape)?;
    let dst = out.as_bytes_mut();
    for (i, s) in sources.iter().enumerate() {
        if let Some(s) = s {
            dst[i * size..(i + 1) * size].copy_from_slice(&src[s * size..(s + 1) * size]);
        }
    }
    Ok(out)
}

/// Row-major strides of `shape`.
pub fn strides(shape: &[usize]) -> Vec<usize> {
    let mut strides = vec![1; shape.len()];
    for axis in (0..shape.len().saturating_sub(1)).rev() {
        strides[axis] = strides[axis + 1] * shape[axis + 1];
    }
    strides
}

/// The coordinates of flat index `index` in `shape`.
pub fn coords(mut index: usize, shape: &[usize]) -> Vec<usize> {
    let mut c = vec![0; shape.len()];
    for axis in (0..shape.len()).rev() {
        if shape[axis] > 0 {
            c[axis] = index % shape[axis];
            index /= shape[axis];
        }
    }
    c
}

/// An attribute of floats as `f64` bits (so a kernel stays `Eq`), with a default.
pub fn float_attr(node: &NodeProto, name: &str, default: f32) -> TractResult<u64> {
    Ok((node.get_attr_opt::<f32>(name)?.unwrap_or(default) as f64).to_bits())
}
