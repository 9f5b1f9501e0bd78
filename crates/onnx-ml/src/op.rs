//! One tract operator type for every ONNX-ML node: [`MlOp`] wraps a [`Kernel`] (the operator's
//! checked attributes and its evaluation) and gives tract what it needs at each stage: inference
//! rules for the parsed model, a typed op that `into_optimized()` keeps as it is (no rewrites,
//! so the computation is exactly the kernel's), and evaluation. The typed node keeps the ONNX
//! node's name, so its outputs enter the execution trace under that name like any other node's.

use std::borrow::Cow;
use std::fmt;

use tract_onnx::tract_hir::internal::*;

use crate::error::{MlError, MlResult, input_error};

/// An ONNX-ML operator's behaviour: output types and shapes from input ones, and evaluation.
pub(crate) trait Kernel: fmt::Debug + Send + Sync + 'static {
    /// The ONNX operator type.
    fn name(&self) -> &'static str;

    /// Number of inputs.
    fn n_inputs(&self) -> usize {
        1
    }

    /// Number of outputs.
    fn n_outputs(&self) -> usize {
        1
    }

    /// Output element types for these input types (or why the inputs are unsupported).
    fn output_types(&self, inputs: &[DatumType]) -> MlResult<TVec<DatumType>>;

    /// Output shapes for these input shapes (dimensions may be symbolic).
    fn output_shapes(&self, inputs: &[TVec<TDim>]) -> MlResult<TVec<TVec<TDim>>>;

    /// Computes the outputs.
    fn eval(&self, inputs: &[&Tensor]) -> MlResult<TVec<Tensor>>;
}

/// A [`Kernel`] as a tract operator.
///
/// Equality is identity (the same parsed node, however often tract clones it): two ONNX nodes
/// are never merged by the optimiser, even if their attributes compare equal as floats (0.0 and
/// -0.0 do, and could give differently signed zeros).
#[derive(Debug)]
pub(crate) struct MlOp<K>(Arc<K>);

impl<K> Clone for MlOp<K> {
    fn clone(&self) -> Self {
        MlOp(Arc::clone(&self.0))
    }
}

impl<K> PartialEq for MlOp<K> {
    fn eq(&self, other: &Self) -> bool {
        Arc::ptr_eq(&self.0, &other.0)
    }
}

impl<K> Eq for MlOp<K> {}

/// Boxes `kernel` as the inference op tract's ONNX parser expects.
pub(crate) fn inference_op<K: Kernel>(kernel: K) -> (Box<dyn InferenceOp>, Vec<String>) {
    (Box::new(MlOp(Arc::new(kernel))), vec![])
}

impl<K: Kernel> Op for MlOp<K> {
    fn name(&self) -> StaticName {
        self.0.name().into()
    }

    fn as_typed(&self) -> Option<&dyn TypedOp> {
        Some(self)
    }
}

impl<K: Kernel> EvalOp for MlOp<K> {
    fn eval(&self, _ctx: &EvalContext, inputs: TVec<TValue>) -> TractResult<TVec<TValue>> {
        if inputs.len() != self.0.n_inputs() {
            bail!(
                "{} takes {} input(s), got {}",
                self.0.name(),
                self.0.n_inputs(),
                inputs.len()
            );
        }
        // tract types some int64 values (shape arithmetic, casts of them) as its symbolic
        // dimension type: such inputs are read as the int64 they hold.
        let cast: TVec<Option<Tensor>> = inputs
            .iter()
            .map(|t| {
                (t.datum_type() == DatumType::TDim)
                    .then(|| t.cast_to::<i64>().map(|c| c.into_owned()))
                    .transpose()
            })
            .collect::<TractResult<_>>()?;
        let refs: TVec<&Tensor> = inputs
            .iter()
            .zip(&cast)
            .map(|(t, c)| c.as_ref().unwrap_or(t))
            .collect();
        let outputs = self.0.eval(&refs)?;
        Ok(outputs.into_iter().map(IntoTValue::into_tvalue).collect())
    }

    fn eval_out_of_plan(&self, inputs: TVec<TValue>) -> TractResult<Option<TVec<TValue>>> {
        Ok(Some(EvalOp::eval(
            self,
            &EvalContext::out_of_plan(),
            inputs,
        )?))
    }
}

impl<K: Kernel> TypedOp for MlOp<K> {
    fn as_op(&self) -> &dyn Op {
        self
    }

    fn as_op_mut(&mut self) -> &mut dyn Op {
        self
    }

    fn output_facts(&self, inputs: &[&TypedFact]) -> TractResult<TVec<TypedFact>> {
        let types: TVec<DatumType> = inputs
            .iter()
            .map(|f| int64_for_tdim(f.datum_type))
            .collect();
        let shapes: TVec<TVec<TDim>> = inputs.iter().map(|f| f.shape.to_tvec()).collect();
        let types = self.0.output_types(&types)?;
        let shapes = self.0.output_shapes(&shapes)?;
        Ok(types
            .into_iter()
            .zip(shapes)
            .map(|(dt, shape)| dt.fact(shape))
            .collect())
    }
}

impl<K: Kernel> InferenceRulesOp for MlOp<K> {
    fn rules<'r, 'p: 'r, 's: 'r>(
        &'s self,
        s: &mut Solver<'r>,
        inputs: &'p [TensorProxy],
        outputs: &'p [TensorProxy],
    ) -> InferenceResult {
        check_input_arity(inputs, self.0.n_inputs())?;
        check_output_arity(outputs, self.0.n_outputs())?;
        s.given_all(inputs.iter().map(|i| &i.datum_type), move |s, types| {
            let types: TVec<DatumType> = types.into_iter().map(int64_for_tdim).collect();
            for (o, dt) in outputs.iter().zip(self.0.output_types(&types)?) {
                s.equals(&o.datum_type, dt)?;
            }
            Ok(())
        })?;
        s.given_all(inputs.iter().map(|i| &i.shape), move |s, shapes| {
            for (o, shape) in outputs.iter().zip(self.0.output_shapes(&shapes)?) {
                s.equals(&o.shape, shape)?;
            }
            Ok(())
        })?;
        Ok(())
    }

    fn as_op(&self) -> &dyn Op {
        self
    }

    fn as_op_mut(&mut self) -> &mut dyn Op {
        self
    }

    fn nboutputs(&self) -> TractResult<usize> {
        Ok(self.0.n_outputs())
    }

    fn to_typed(
        &self,
        _source: &InferenceModel,
        node: &InferenceNode,
        target: &mut TypedModel,
        mapping: &HashMap<OutletId, OutletId>,
    ) -> TractResult<TVec<OutletId>> {
        let inputs: TVec<OutletId> = node.inputs.iter().map(|i| mapping[i]).collect();
        target.wire_node(&node.name, self.clone(), &inputs)
    }
}

/// tract's symbolic-dimension type holds int64 values: kernels see it as int64.
fn int64_for_tdim(dt: DatumType) -> DatumType {
    if dt == DatumType::TDim {
        DatumType::I64
    } else {
        dt
    }
}

/// Rows and features of a batch input: `[N, C]`, or `[C]` as one row (as onnxruntime reads a
/// 1-D input to the classifiers and regressors).
pub(crate) fn batch_dims(op: &'static str, shape: &[TDim]) -> MlResult<(TDim, TDim)> {
    match shape {
        [c] => Ok((1.into(), c.clone())),
        [n, c] => Ok((n.clone(), c.clone())),
        _ => Err(input_error(
            op,
            format!(
                "the input must be [N, C] or [C], got rank {} ({shape:?})",
                shape.len()
            ),
        )),
    }
}

/// [`batch_dims`] on a concrete tensor.
pub(crate) fn batch_of(op: &'static str, t: &Tensor) -> MlResult<(usize, usize)> {
    match t.shape() {
        [c] => Ok((1, *c)),
        [n, c] => Ok((*n, *c)),
        other => Err(input_error(
            op,
            format!("the input must be [N, C] or [C], got shape {other:?}"),
        )),
    }
}

/// The input's elements as a slice of `T`.
pub(crate) fn slice_of<'t, T: Datum>(op: &'static str, t: &'t Tensor) -> MlResult<&'t [T]> {
    t.try_as_plain_ram()
        .and_then(|v| v.as_slice::<T>())
        .map_err(|e| input_error(op, format!("reading the input: {e}")))
}

/// A numeric input (float, double, int64 or int32) as f32 values, converted as C++'s
/// `static_cast<float>` does (round to nearest); borrowed when already f32.
pub(crate) fn as_f32<'t>(op: &'static str, t: &'t Tensor) -> MlResult<Cow<'t, [f32]>> {
    Ok(match t.datum_type() {
        DatumType::F32 => Cow::Borrowed(slice_of::<f32>(op, t)?),
        DatumType::F64 => Cow::Owned(slice_of::<f64>(op, t)?.iter().map(|&v| v as f32).collect()),
        DatumType::I64 => Cow::Owned(slice_of::<i64>(op, t)?.iter().map(|&v| v as f32).collect()),
        DatumType::I32 => Cow::Owned(slice_of::<i32>(op, t)?.iter().map(|&v| v as f32).collect()),
        other => return Err(unsupported_type(op, other)),
    })
}

/// A numeric input as f64 values (exact for every supported type but int64 beyond 2^53, which
/// rounds to nearest as in C++).
pub(crate) fn as_f64<'t>(op: &'static str, t: &'t Tensor) -> MlResult<Cow<'t, [f64]>> {
    Ok(match t.datum_type() {
        DatumType::F64 => Cow::Borrowed(slice_of::<f64>(op, t)?),
        DatumType::F32 => Cow::Owned(slice_of::<f32>(op, t)?.iter().map(|&v| v as f64).collect()),
        DatumType::I64 => Cow::Owned(slice_of::<i64>(op, t)?.iter().map(|&v| v as f64).collect()),
        DatumType::I32 => Cow::Owned(slice_of::<i32>(op, t)?.iter().map(|&v| v as f64).collect()),
        other => return Err(unsupported_type(op, other)),
    })
}

/// Checks that an input type is one of the numeric types the ONNX-ML operators take.
pub(crate) fn check_numeric(op: &'static str, dt: DatumType) -> MlResult<()> {
    match dt {
        DatumType::F32 | DatumType::F64 | DatumType::I64 | DatumType::I32 => Ok(()),
        other => Err(unsupported_type(op, other)),
    }
}

fn unsupported_type(op: &'static str, dt: DatumType) -> MlError {
    input_error(
        op,
        format!("input type {dt:?} is not supported (expected float, double, int64 or int32)"),
    )
}

/// A tensor of `shape` holding `data` (row-major).
pub(crate) fn tensor<T: Datum>(shape: &[usize], data: Vec<T>) -> MlResult<Tensor> {
    tract_ndarray::ArrayD::from_shape_vec(shape, data)
        .map(Tensor::from)
        .map_err(|e| MlError::Input {
            op: "output",
            problem: format!("building an output of shape {shape:?}: {e}"),
        })
}
