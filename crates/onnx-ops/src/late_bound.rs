//! Operators whose parameters (axes, shapes, pads, sizes, scales, split sizes…) arrive as graph
//! inputs at run time instead of constants.
//!
//! tract types a graph before it runs, and its translation of these operators needs the
//! parameter values then: `ReduceSum` with `axes` as a graph input fails with "expected axes as a
//! constant". ONNX allows such inputs, and a user feeds them like any other. The wrapper here
//! keeps tract's own operator and, only where tract cannot type it because a parameter is not a
//! constant, wires a [`LateBound`] node instead: its output shapes are fresh symbols that the
//! plan binds when the node runs, and at run time it specialises tract's operator on the input
//! values it was given (every input a constant) and evaluates that. Where the values are
//! constants, nothing changes: tract's operator is used as is.

use std::collections::HashMap;
use std::sync::LazyLock;

use tract_onnx::model::ParsingContext;
use tract_onnx::pb::NodeProto;
use tract_onnx::pb::type_proto::Value as TypeValue;
use tract_onnx::tract_hir::internal::*;

/// tract-onnx's own operator builders, which the wrapper builds the inner operator with.
type OpBuilder =
    fn(&ParsingContext, &NodeProto) -> TractResult<(Box<dyn InferenceOp>, Vec<String>)>;

static TRACT_BUILDERS: LazyLock<HashMap<String, OpBuilder>> = LazyLock::new(|| {
    tract_onnx::onnx()
        .op_register
        .0
        .into_iter()
        .map(|(name, builder)| (name, builder as OpBuilder))
        .collect()
});

/// Operators of tract's table that need some input to be a constant when the graph is typed.
pub const OPS: &[&str] = &[
    "BatchNormalization",
    "BlackmanWindow",
    "Compress",
    "ConstantOfShape",
    "CumSum",
    "DFT",
    "DequantizeLinear",
    "Expand",
    "HammingWindow",
    "HannWindow",
    "MelWeightMatrix",
    "OneHot",
    "Pad",
    "QuantizeLinear",
    "Range",
    "ReduceL1",
    "ReduceL2",
    "ReduceLogSum",
    "ReduceLogSumExp",
    "ReduceMax",
    "ReduceMean",
    "ReduceMin",
    "ReduceProd",
    "ReduceSum",
    "ReduceSumSquare",
    "Reshape",
    "Resize",
    "STFT",
    "Slice",
    "Split",
    "Squeeze",
    "Tile",
    "TopK",
    "Unsqueeze",
    "Upsample",
];

/// Registers the wrapper over tract's builder for every operator of [`OPS`] that tract has.
pub fn register(onnx: &mut tract_onnx::Onnx) {
    for op in OPS {
        if TRACT_BUILDERS.contains_key(*op) {
            onnx.op_register.insert(op, build);
        }
    }
}

fn build(
    ctx: &ParsingContext,
    node: &NodeProto,
) -> TractResult<(Box<dyn InferenceOp>, Vec<String>)> {
    let builder = TRACT_BUILDERS
        .get(&node.op_type)
        .with_context(|| format!("no tract operator {}", node.op_type))?;
    let (inner, closures) = builder(ctx, node)?;
    let declared = node
        .output
        .iter()
        .filter(|name| !name.is_empty())
        .map(|name| declared_fact(ctx, name))
        .collect();
    let rank = RankRule::of(node)?;
    // tract types a Slice with variable starts and ends as a DynSlice, which takes them as
    // in-range offsets: negative or out-of-range ones (valid ONNX) fail at run time.
    let always_late_from = (node.op_type == "Slice").then_some(1);
    Ok((
        Box::new(RuntimeInputs {
            inner,
            declared,
            rank,
            always_late_from,
        }),
        closures,
    ))
}

/// How an operator's output rank follows from its inputs' ranks and lengths, none of which
/// need values: what lets a node deep inside a graph, whose outputs the graph declares
/// nothing about, wait for its parameters.
#[derive(Debug, Clone, PartialEq, Eq)]
enum RankRule {
    /// The rank of input 0, plus this.
    Input0Plus(usize),
    /// A reduction over the axes listed by input 1 (absent: all of them).
    Reduce {
        keepdims: bool,
        noop_with_empty_axes: bool,
    },
    /// The length of the 1-D input at this position.
    LengthOf(usize),
    /// The rank of input 0, minus the length of input 1.
    Squeeze,
    /// The rank of input 0, plus the length of input 1.
    Unsqueeze,
    /// The larger of input 0's rank and input 1's length.
    Expand,
    /// This rank.
    Fixed(usize),
    /// No rule: analysis or the declaration must say.
    Unknown,
}

impl RankRule {
    fn of(node: &NodeProto) -> TractResult<RankRule> {
        Ok(match node.op_type.as_str() {
            op if op.starts_with("Reduce") => RankRule::Reduce {
                keepdims: node.get_attr_opt::<i64>("keepdims")?.unwrap_or(1) != 0,
                noop_with_empty_axes: node
                    .get_attr_opt::<i64>("noop_with_empty_axes")?
                    .unwrap_or(0)
                    != 0,
            },
            "Reshape" => RankRule::LengthOf(1),
            "ConstantOfShape" => RankRule::LengthOf(0),
            "Squeeze" => RankRule::Squeeze,
            "Unsqueeze" => RankRule::Unsqueeze,
            "Expand" => RankRule::Expand,
            "OneHot" => RankRule::Input0Plus(1),
            "Range" | "BlackmanWindow" | "HammingWindow" | "HannWindow" => RankRule::Fixed(1),
            "MelWeightMatrix" => RankRule::Fixed(2),
            "STFT" => RankRule::Fixed(4),
            "Compress" if node.get_attr_opt::<i64>("axis")?.is_none() => RankRule::Fixed(1),
            "BatchNormalization" | "Compress" | "CumSum" | "DFT" | "DequantizeLinear" | "Pad"
            | "QuantizeLinear" | "Resize" | "Slice" | "Split" | "Tile" | "TopK" | "Upsample" => {
                RankRule::Input0Plus(0)
            }
            _ => RankRule::Unknown,
        })
    }

    fn rank(&self, node: &InferenceNode, source: &InferenceModel) -> Option<usize> {
        let fact = |ix: usize| source.outlet_fact(*node.inputs.get(ix)?).ok();
        let rank = |ix: usize| Some(fact(ix)?.shape.rank().concretize()? as usize);
        let length = |ix: usize| {
            let f = fact(ix)?;
            if f.shape.rank().concretize()? != 1 {
                return None;
            }
            f.shape.dim(0)?.concretize()?.to_usize().ok()
        };
        match *self {
            RankRule::Input0Plus(n) => Some(rank(0)? + n),
            RankRule::Reduce {
                keepdims,
                noop_with_empty_axes,
            } => {
                let axes = if node.inputs.len() > 1 { length(1)? } else { 0 };
                match (keepdims, axes) {
                    (true, _) => rank(0),
                    (false, 0) if noop_with_empty_axes => rank(0),
                    (false, 0) => Some(0),
                    (false, n) => rank(0)?.checked_sub(n),
                }
            }
            RankRule::LengthOf(ix) => length(ix),
            RankRule::Squeeze => rank(0)?.checked_sub(length(1)?),
            RankRule::Unsqueeze => Some(rank(0)? + length(1)?),
            RankRule::Expand => Some(rank(0)?.max(length(1)?)),
            RankRule::Fixed(n) => Some(n),
            RankRule::Unknown => None,
        }
    }
}

/// The type the graph declares for a value (graph output or `value_info`), if any.
fn declared_fact(ctx: &ParsingContext, name: &str) -> Option<InferenceFact> {
    let graph = ctx.parent_graphs.last()?;
    graph
        .output
        .iter()
        .chain(&graph.value_info)
        .find(|info| info.name == name)
        .and_then(|info| info.r#type.as_ref()?.value.as_ref())
        .and_then(|value| match value {
            TypeValue::TensorType(t) => {
                tract_onnx::tensor::translate_inference_fact(ctx, t, false).ok()
            }
        })
}

/// tract's operator, typed as tract does when its parameters are constants, and as a
/// [`LateBound`] node when they are not.
#[derive(Debug, Clone)]
pub struct RuntimeInputs {
    inner: Box<dyn InferenceOp>,
    /// What the graph declares for each output: the fallback for its rank and element type.
    declared: Vec<Option<InferenceFact>>,
    /// How the outputs' rank follows from the inputs'.
    rank: RankRule,
    /// Inputs from this position on are parameters that tract's typed operator handles wrongly
    /// when they are not constants: bind late whenever one of them isn't.
    always_late_from: Option<usize>,
}

impl PartialEq for RuntimeInputs {
    fn eq(&self, other: &Self) -> bool {
        self.inner.as_op() == other.inner.as_op()
            && self.declared == other.declared
            && self.rank == other.rank
            && self.always_late_from == other.always_late_from
    }
}
impl Eq for RuntimeInputs {}

impl Op for RuntimeInputs {
    fn name(&self) -> StaticName {
        self.inner.as_op().name()
    }

    fn info(&self) -> TractResult<Vec<String>> {
        self.inner.as_op().info()
    }

    not_a_typed_op!();
}

impl EvalOp for RuntimeInputs {
    fn eval(&self, ctx: &EvalContext, inputs: TVec<TValue>) -> TractResult<TVec<TValue>> {
        self.inner.as_op().eval(ctx, inputs)
    }

    fn eval_out_of_plan(&self, inputs: TVec<TValue>) -> TractResult<Option<TVec<TValue>>> {
        self.inner.as_op().eval_out_of_plan(inputs)
    }

    fn state(&self, ctx: &EvalContext) -> TractResult<Option<Box<dyn OpState>>> {
        self.inner.as_op().state(ctx)
    }
}

impl InferenceOp for RuntimeInputs {
    fn infer(
        &mut self,
        inputs: TVec<&InferenceFact>,
        outputs: TVec<&InferenceFact>,
        observed: TVec<&InferenceFact>,
    ) -> TractResult<(
        TVec<InferenceFact>,
        TVec<InferenceFact>,
        TVec<InferenceFact>,
    )> {
        self.inner.infer(inputs, outputs, observed)
    }

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
        self.inner.infer_facts(inputs, outputs, observed)
    }

    fn observe_outlets(
        &self,
        model: &InferenceModel,
        node: &InferenceNode,
    ) -> TractResult<Vec<OutletId>> {
        self.inner.observe_outlets(model, node)
    }

    fn incorporate(
        &self,
        model: &InferenceModel,
        node: &InferenceNode,
    ) -> TractResult<Option<InferenceModelPatch>> {
        self.inner.incorporate(model, node)
    }

    fn nboutputs(&self) -> TractResult<usize> {
        self.inner.nboutputs()
    }

    fn as_op(&self) -> &dyn Op {
        self
    }

    fn as_op_mut(&mut self) -> &mut dyn Op {
        self
    }

    fn to_typed(
        &self,
        source: &InferenceModel,
        node: &InferenceNode,
        target: &mut TypedModel,
        mapping: &HashMap<OutletId, OutletId>,
    ) -> TractResult<TVec<OutletId>> {
        let inputs: TVec<OutletId> = node.inputs.iter().map(|o| mapping[o]).collect();
        let is_constant = |o: &OutletId| target.outlet_fact(*o).is_ok_and(|f| f.konst.is_some());
        let all_constant = inputs.iter().all(is_constant);
        let late_anyway = self
            .always_late_from
            .is_some_and(|from| inputs.iter().skip(from).any(|o| !is_constant(o)));
        let error = if late_anyway {
            format_err!("{} with variable parameters", self.inner.as_op().name())
        } else {
            match self.inner.to_typed(source, node, target, mapping) {
                Ok(outlets) => return Ok(outlets),
                Err(e) if all_constant => return Err(e),
                Err(e) => e,
            }
        };
        // tract could not type the node with these inputs unknown: type it from what analysis
        // and the graph's declarations say about its outputs, and bind the values at run time.
        let mut facts = tvec![];
        let rank = self.rank.rank(node, source);
        for ix in 0..node.outputs.len() {
            let inferred = &node.outputs[ix].fact;
            let declared = self.declared.get(ix).and_then(Option::as_ref);
            match self.late_fact(inferred, rank, declared, target) {
                Some(fact) => facts.push(fact),
                None => return Err(error),
            }
        }
        let op = LateBound {
            inner: self.inner.clone(),
            facts,
        };
        target.wire_node(&node.name, op, &inputs)
    }
}

impl RuntimeInputs {
    /// An output's fact when its shape waits for run time: element type and rank from analysis
    /// or the declaration, each dimension analysis doesn't know a fresh symbol.
    fn late_fact(
        &self,
        inferred: &InferenceFact,
        rank: Option<usize>,
        declared: Option<&InferenceFact>,
        target: &TypedModel,
    ) -> Option<TypedFact> {
        let datum_type = inferred
            .datum_type
            .concretize()
            .or_else(|| declared?.datum_type.concretize())?;
        let shape = &inferred.shape;
        let rank = match (shape.rank().concretize(), rank) {
            (Some(rank), _) => rank as usize,
            (None, Some(rank)) => rank,
            (None, None) => declared?.shape.rank().concretize()? as usize,
        };
        let dims: TVec<TDim> = (0..rank)
            .map(|axis| {
                shape
                    .dim(axis)
                    .and_then(|d| d.concretize())
                    .filter(|_| !shape.is_open())
                    .unwrap_or_else(|| target.symbols.new_with_prefix("vouch_late").into())
            })
            .collect();
        Some(datum_type.fact(dims))
    }
}

/// A node whose parameters are known only at run time: it specialises tract's operator on the
/// input values and evaluates it. Its output dimensions are symbols the plan binds from what the
/// node produces.
#[derive(Debug, Clone)]
pub struct LateBound {
    inner: Box<dyn InferenceOp>,
    facts: TVec<TypedFact>,
}

impl PartialEq for LateBound {
    fn eq(&self, other: &Self) -> bool {
        self.inner.as_op() == other.inner.as_op() && self.facts == other.facts
    }
}
impl Eq for LateBound {}

impl Op for LateBound {
    fn name(&self) -> StaticName {
        format!("LateBound({})", self.inner.as_op().name()).into()
    }

    fn mints_runtime_symbols(&self) -> bool {
        true
    }

    op_as_typed_op!();
}

impl EvalOp for LateBound {
    op_out_of_plan!();

    fn eval(&self, ctx: &EvalContext, inputs: TVec<TValue>) -> TractResult<TVec<TValue>> {
        // Shapes computed from this run's symbols (a Shape of a late-bound output) arrive as
        // symbolic dimensions: give them their values for this run.
        let inputs = inputs
            .into_iter()
            .map(|value| {
                if value.datum_type() != TDim::datum_type() {
                    return Ok(value);
                }
                let mut tensor = value.into_tensor();
                for dim in tensor.try_as_plain_ram_mut()?.as_slice_mut::<TDim>()? {
                    *dim = dim.eval(ctx.symbols);
                }
                Ok(tensor.into_tvalue())
            })
            .collect::<TractResult<TVec<_>>>()?;
        let outputs = evaluate_with_values(&*self.inner, inputs)
            .with_context(|| format!("{} with its inputs' values", self.inner.as_op().name()))?;
        ensure!(
            outputs.len() == self.facts.len(),
            "{} gave {} outputs, expected {}",
            self.inner.as_op().name(),
            outputs.len(),
            self.facts.len()
        );
        for (ix, (value, fact)) in outputs.iter().zip(&self.facts).enumerate() {
            ensure!(
                value.datum_type() == fact.datum_type && value.rank() == fact.rank(),
                "{} output {ix} is {:?} of rank {}, the model declares {:?} of rank {}",
                self.inner.as_op().name(),
                value.datum_type(),
                value.rank(),
                fact.datum_type,
                fact.rank()
            );
        }
        Ok(outputs)
    }
}

impl TypedOp for LateBound {
    fn output_facts(&self, _inputs: &[&TypedFact]) -> TractResult<TVec<TypedFact>> {
        Ok(self.facts.clone())
    }

    as_op!();
}

/// Runs `op` on `inputs` as a one-node graph whose inputs are all constants, so that tract's
/// translation sees every parameter.
fn evaluate_with_values(op: &dyn InferenceOp, inputs: TVec<TValue>) -> TractResult<TVec<TValue>> {
    let mut model = InferenceModel::default();
    let mut wires = tvec![];
    for (ix, value) in inputs.into_iter().enumerate() {
        // Distinct names, and no sharing of equal values: `add_const` would merge them.
        let value = value.into_arc_tensor();
        let fact: InferenceFact = TypedFact::try_from(value.clone())?.into();
        let id = model.add_node(
            format!("input.{ix}"),
            tract_onnx::tract_hir::ops::konst::Const::new(value)?,
            tvec!(fact),
        )?;
        wires.push(OutletId::new(id, 0));
    }
    let op: Box<dyn InferenceOp> = tract_onnx::tract_core::dyn_clone::clone_box(op);
    let outputs = model.wire_node("node", op, &wires)?;
    model.select_output_outlets(&outputs)?;
    let typed = model.into_typed()?;
    let plan = TypedSimplePlan::new(typed)?;
    plan.run(tvec![])
}
