//! Loading a model under a profile, and running it with an execution trace.

use std::{
    collections::{BTreeMap, HashMap},
    panic::{AssertUnwindSafe, catch_unwind},
    sync::Arc,
};

use tract_onnx::{
    pb::ModelProto,
    prelude::*,
    tract_core::{ops::konst::Const, plan::SimplePlan},
};
use vouch_types::{
    Address, Commitment, DType, Limits, ModelId, NamedTensors, Nonce, Receipt, tensor::commit_named,
};

use crate::{
    EngineError,
    convert::{from_tract, to_tract},
    inspect::{self, Dim, KNOWN_DOMAINS, ModelInfo, OpName, TensorSpec},
    profile::{self, ENGINE, Profile},
    trace::{Trace, TraceBuilder},
};

/// Re-states the strides of constants whose size-1 axes carry a stride other than the natural
/// one. tract's `insert_axis` gives a new size-1 axis its neighbour's stride, so a per-channel
/// constant folded through `Unsqueeze` (a batch norm's scale as `[1, C, 1, 1]`) is not
/// "natural", and tract's binary ops then leave their vectorised path for a per-element one:
/// 10× slower on DenseNet's batch norms. A size-1 axis's stride addresses nothing, so the
/// values, and every bit computed from them, are unchanged.
fn natural_constant_strides(model: &mut TypedModel) -> TractResult<()> {
    for id in 0..model.nodes().len() {
        let Some(konst) = model.node(id).op_as::<Const>() else {
            continue;
        };
        let t = konst.val();
        let natural = Tensor::natural_strides(t.shape());
        if konst.exotic_fact().is_some() || t.strides() == &*natural {
            continue;
        }
        let unit_axes_only = t
            .shape()
            .iter()
            .zip(t.strides().iter().zip(&natural))
            .all(|(&dim, (s, n))| dim == 1 || s == n);
        if !unit_axes_only {
            continue;
        }
        let shape = t.shape().to_vec();
        // Through rank 1 and back: each reshape to a new shape recomputes natural strides.
        let relaid = (**t).clone().into_shape(&[t.len()])?.into_shape(&shape)?;
        model.node_mut(id).op = Box::new(Const::new(Arc::new(relaid))?);
    }
    Ok(())
}

/// How the engine loads and runs models.
#[derive(Clone, Debug)]
pub struct EngineConfig {
    /// Determinism profile.
    pub profile: Profile,
    /// Threads for matrix products (results do not depend on it).
    pub threads: usize,
    /// Bounds on every input tensor.
    pub limits: Limits,
    /// Largest model file accepted, in bytes.
    pub max_model_bytes: usize,
}

impl Default for EngineConfig {
    fn default() -> Self {
        EngineConfig {
            profile: Profile::ExactPortable,
            threads: 1,
            limits: Limits::DEFAULT,
            max_model_bytes: 1 << 30,
        }
    }
}

/// The result of one run.
#[derive(Clone, Debug)]
pub struct Execution {
    /// Output tensors by name.
    pub outputs: NamedTensors,
    /// Commitment to the inputs as given.
    pub input_commitment: Commitment,
    /// Commitment to the outputs.
    pub output_commitment: Commitment,
    /// Per-node hashes and their Merkle root.
    pub trace: Trace,
}

impl Execution {
    /// The receipt statement for this run, to be signed by `operator`.
    pub fn receipt(
        &self,
        model: &Model,
        operator: Address,
        timestamp: u64,
        nonce: Nonce,
    ) -> Receipt {
        Receipt {
            model: model.id(),
            input_commitment: self.input_commitment,
            output_commitment: self.output_commitment,
            trace_root: self.trace.root,
            trace_size: self.trace.size(),
            engine: ENGINE.to_string(),
            profile: model.profile().name().to_string(),
            operator,
            timestamp,
            nonce,
        }
    }
}

/// A model ready to run.
pub struct Model {
    info: ModelInfo,
    profile: Profile,
    limits: Limits,
    plan: Arc<TypedSimplePlan>,
    /// tract input position of each declared input name.
    input_slots: HashMap<String, usize>,
    /// Declared outputs, in tract's output order.
    outputs: Vec<TensorSpec>,
}

impl std::fmt::Debug for Model {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Model")
            .field("id", &self.info.id)
            .field("profile", &self.profile)
            .finish()
    }
}

fn tract_err(context: &str, e: impl std::fmt::Display) -> EngineError {
    EngineError::Tract(format!("{context}: {e}"))
}

/// Runs `f`, turning a panic inside tract into an error instead of a crash.
fn guarded<T>(what: &str, f: impl FnOnce() -> Result<T, EngineError>) -> Result<T, EngineError> {
    catch_unwind(AssertUnwindSafe(f)).unwrap_or_else(|panic| {
        let msg = panic
            .downcast_ref::<String>()
            .map(String::as_str)
            .or_else(|| panic.downcast_ref::<&str>().copied())
            .unwrap_or("(no message)");
        Err(EngineError::Internal(format!(
            "{what}: the engine panicked: {msg}"
        )))
    })
}

/// Decodes the ONNX protobuf, bounded.
pub(crate) fn decode_proto(
    bytes: &[u8],
    max_model_bytes: usize,
) -> Result<ModelProto, EngineError> {
    if bytes.len() > max_model_bytes {
        return Err(EngineError::ModelTooLarge {
            size: bytes.len() as u64,
            max: max_model_bytes as u64,
        });
    }
    use prost::Message;
    let proto = ModelProto::decode(bytes).map_err(|e| EngineError::NotOnnx(e.to_string()))?;
    if proto.graph.is_none() {
        return Err(EngineError::NotOnnx(
            "the protobuf has no graph: not an ONNX model".into(),
        ));
    }
    Ok(proto)
}

/// Gives every input dimension the model leaves unknown (as scikit-learn exports do for the
/// batch) a symbol of its own, so the model is prepared once for every size instead of failing.
fn name_unknown_input_dims(proto: &mut ModelProto) {
    use tract_onnx::pb::{tensor_shape_proto::dimension::Value as D, type_proto::Value as T};
    let Some(graph) = proto.graph.as_mut() else {
        return;
    };
    for (i, input) in graph.input.iter_mut().enumerate() {
        if let Some(T::TensorType(t)) = input.r#type.as_mut().and_then(|t| t.value.as_mut())
            && let Some(shape) = t.shape.as_mut()
        {
            for (axis, dim) in shape.dim.iter_mut().enumerate() {
                let known = match &dim.value {
                    Some(D::DimValue(v)) => *v >= 0,
                    Some(D::DimParam(p)) => !p.is_empty() && p != "?",
                    None => false,
                };
                if !known {
                    dim.value = Some(D::DimParam(format!("vouch_input{i}_axis{axis}")));
                }
            }
        }
    }
}

/// Whether the engine implements an operator.
pub fn op_supported(op: &OpName) -> bool {
    thread_local! {
        static REGISTRY: tract_onnx::Onnx = crate::registry::onnx();
    }
    KNOWN_DOMAINS.contains(&op.domain.as_str())
        && REGISTRY.with(|onnx| onnx.op_register.0.contains_key(&op.op_type))
}

/// Reads a model's declarations without preparing it to run.
pub fn inspect(bytes: &[u8], max_model_bytes: usize) -> Result<ModelInfo, EngineError> {
    guarded("inspecting the model", || {
        let proto = decode_proto(bytes, max_model_bytes)?;
        Ok(inspect::inspect(bytes, &proto, &op_supported))
    })
}

impl Model {
    /// Parses, checks and prepares a model under `config.profile`.
    pub fn load(bytes: &[u8], config: &EngineConfig) -> Result<Model, EngineError> {
        profile::activate(config.profile)?;
        guarded("loading the model", || Self::load_inner(bytes, config))
    }

    fn load_inner(bytes: &[u8], config: &EngineConfig) -> Result<Model, EngineError> {
        let mut proto = decode_proto(bytes, config.max_model_bytes)?;
        let info = inspect::inspect(bytes, &proto, &op_supported);
        let unsupported: Vec<OpName> = info
            .ops
            .iter()
            .filter(|o| !o.supported)
            .map(|o| o.op.clone())
            .collect();
        if !unsupported.is_empty() {
            return Err(EngineError::UnsupportedOps(unsupported));
        }
        if inspect::uses_external_data(&proto) {
            return Err(EngineError::ExternalData);
        }
        for spec in info.inputs.iter().chain(&info.outputs) {
            if spec.dtype.is_none() {
                return Err(EngineError::UnsupportedType {
                    name: spec.name.clone(),
                    onnx_elem_type: spec.onnx_elem_type,
                });
            }
        }
        name_unknown_input_dims(&mut proto);
        let onnx = crate::registry::onnx();
        let parsed = onnx
            .parse(&proto, None)
            .map_err(|e| tract_err("parsing the graph", format!("{e:#}")))?;
        if !parsed.unresolved_inputs.is_empty() {
            return Err(EngineError::NotOnnx(format!(
                "the graph uses values nothing defines: {}",
                parsed.unresolved_inputs.join(", ")
            )));
        }
        // Input slots are read off the parsed graph, where source nodes carry the ONNX input
        // names; the optimiser keeps the order of inputs but may rename their nodes.
        let input_slots = parsed
            .model
            .input_outlets()
            .map_err(|e| tract_err("reading inputs", e))?
            .iter()
            .enumerate()
            .map(|(slot, o)| (parsed.model.node(o.node).name.clone(), slot))
            .collect::<HashMap<_, _>>();
        if let Some(spec) = info
            .inputs
            .iter()
            .find(|s| !input_slots.contains_key(&s.name))
        {
            return Err(EngineError::Internal(format!(
                "input {} is not a source of the graph",
                spec.name
            )));
        }
        let typed = parsed
            .model
            .into_typed()
            .map_err(|e| tract_err("resolving types and shapes", format!("{e:#}")))?;
        // One fixed pipeline for every profile: the optimiser's rewrites change rounding, so
        // they are part of what a profile pins.
        let mut optimized = if config.profile == Profile::ExactFused {
            // tract's `into_optimized` with one step between its two passes: the plan decisions
            // tract takes from the CPU are pinned before code generation (see `pin`).
            let mut model = typed;
            model
                .declutter()
                .map_err(|e| tract_err("optimizing", format!("{e:#}")))?;
            crate::pin::pin_cpu_dependent_choices(&mut model)
                .map_err(|e| tract_err("optimizing", format!("{e:#}")))?;
            model
                .optimize()
                .map_err(|e| tract_err("optimizing", format!("{e:#}")))?;
            model
        } else {
            typed
                .into_optimized()
                .map_err(|e| tract_err("optimizing", format!("{e:#}")))?
        };
        natural_constant_strides(&mut optimized)
            .map_err(|e| tract_err("laying out constants", format!("{e:#}")))?;
        if config.profile == Profile::ExactFused {
            crate::pool::planar_max_pools(&mut optimized)
                .map_err(|e| tract_err("preparing max pools", format!("{e:#}")))?;
            crate::softmax::strided_softmaxes(&mut optimized)
                .map_err(|e| tract_err("preparing softmaxes", format!("{e:#}")))?;
        }
        profile::check_model(config.profile, &optimized)?;
        let prepared_inputs = optimized
            .input_outlets()
            .map_err(|e| tract_err("reading inputs", e))?
            .len();
        if prepared_inputs != input_slots.len() {
            return Err(EngineError::Internal(format!(
                "the graph has {} inputs, the prepared plan {prepared_inputs}",
                input_slots.len()
            )));
        }
        let outputs = info.outputs.clone();
        let mut options = RunOptions::default();
        if config.threads > 1 {
            options.executor = Some(tract_linalg::multithread::Executor::multithread(
                config.threads,
            ));
        }
        let plan = SimplePlan::new_with_options(optimized, &options)
            .map_err(|e| tract_err("planning", format!("{e:#}")))?;
        Ok(Model {
            info,
            profile: config.profile,
            limits: config.limits,
            plan,
            input_slots,
            outputs,
        })
    }

    /// What the model declares.
    pub fn info(&self) -> &ModelInfo {
        &self.info
    }

    /// The model's id.
    pub fn id(&self) -> ModelId {
        self.info.id
    }

    /// The profile this model runs under.
    pub fn profile(&self) -> Profile {
        self.profile
    }

    /// Bounds applied to inputs.
    pub fn limits(&self) -> &Limits {
        &self.limits
    }

    /// The dtype the model expects for an input, if it has that input.
    pub fn input_dtype(&self, name: &str) -> Option<DType> {
        self.info
            .inputs
            .iter()
            .find(|i| i.name == name)
            .and_then(|i| i.dtype)
    }

    /// Checks inputs against the declared signature: names, dtypes and shapes.
    pub fn check_inputs(&self, inputs: &NamedTensors) -> Result<(), EngineError> {
        for name in inputs.keys() {
            if !self.info.inputs.iter().any(|i| &i.name == name) {
                return Err(EngineError::UnknownInput {
                    name: name.clone(),
                    expected: self.info.inputs.iter().map(|i| i.name.clone()).collect(),
                });
            }
        }
        let mut symbols: BTreeMap<&str, u64> = BTreeMap::new();
        for spec in &self.info.inputs {
            let t = inputs
                .get(&spec.name)
                .ok_or_else(|| EngineError::MissingInput {
                    name: spec.name.clone(),
                    spec: spec.signature(),
                })?;
            let expected = spec.dtype.expect("unsupported types are refused at load");
            if t.dtype() != expected {
                return Err(EngineError::InputDType {
                    name: spec.name.clone(),
                    expected,
                    got: t.dtype(),
                });
            }
            if let Some(dims) = &spec.shape {
                let bad = || EngineError::InputShape {
                    name: spec.name.clone(),
                    expected: spec.signature(),
                    got: t.shape().to_vec(),
                };
                if dims.len() != t.shape().len() {
                    return Err(bad());
                }
                for (dim, &got) in dims.iter().zip(t.shape()) {
                    match dim {
                        Dim::Fixed(n) if *n != got => return Err(bad()),
                        Dim::Symbol(s) if *symbols.entry(s.as_str()).or_insert(got) != got => {
                            return Err(EngineError::InputShape {
                                name: spec.name.clone(),
                                expected: format!(
                                    "{} (with {s} = {})",
                                    spec.signature(),
                                    symbols[s.as_str()]
                                ),
                                got: t.shape().to_vec(),
                            });
                        }
                        _ => {}
                    }
                }
            }
        }
        Ok(())
    }

    /// Runs the model without recording a trace: the same outputs as [`Model::run`] (the trace
    /// only reads values), for callers that need no receipt and for measuring the trace's cost.
    pub fn run_without_trace(&self, inputs: &NamedTensors) -> Result<NamedTensors, EngineError> {
        self.check_inputs(inputs)?;
        guarded("running the model", || {
            let results = self
                .plan
                .run(self.tract_inputs(inputs)?)
                .map_err(|e| tract_err("running", format!("{e:#}")))?;
            self.collect_outputs(results)
        })
    }

    fn tract_inputs(&self, inputs: &NamedTensors) -> Result<TVec<TValue>, EngineError> {
        let mut slots: Vec<Option<TValue>> = vec![None; self.input_slots.len()];
        for (name, t) in inputs {
            slots[self.input_slots[name]] = Some(to_tract(t)?.into_tvalue());
        }
        slots
            .into_iter()
            .map(|t| t.ok_or_else(|| EngineError::Internal("an input slot stayed empty".into())))
            .collect()
    }

    fn collect_outputs(&self, results: TVec<TValue>) -> Result<NamedTensors, EngineError> {
        if results.len() != self.outputs.len() {
            return Err(EngineError::Internal(format!(
                "the engine returned {} outputs, the model declares {}",
                results.len(),
                self.outputs.len()
            )));
        }
        let mut outputs = NamedTensors::new();
        for (spec, value) in self.outputs.iter().zip(results) {
            let t = from_tract(&value, spec.dtype)
                .map_err(|e| EngineError::Internal(format!("output {}: {e}", spec.name)))?;
            outputs.insert(spec.name.clone(), t);
        }
        Ok(outputs)
    }

    /// Runs the model on `inputs`, recording the execution trace.
    pub fn run(&self, inputs: &NamedTensors) -> Result<Execution, EngineError> {
        self.check_inputs(inputs)?;
        let input_commitment =
            commit_named(inputs).map_err(|e| EngineError::BadInputs(e.to_string()))?;
        guarded("running the model", || {
            let tract_inputs = self.tract_inputs(inputs)?;
            let mut trace = TraceBuilder::default();
            let mut state = self
                .plan
                .spawn()
                .map_err(|e| tract_err("starting a run", e))?;
            let results = state
                .run_plan_with_eval(tract_inputs, |ctx, op_state, node, node_inputs| {
                    let outputs =
                        tract_onnx::tract_core::plan::eval(ctx, op_state, node, node_inputs)?;
                    if !node.op_is::<Const>() {
                        trace.record(&node.name, &outputs);
                    }
                    Ok::<_, TractError>(outputs)
                })
                .map_err(|e| tract_err("running", format!("{e:#}")))?;

            let outputs = self.collect_outputs(results)?;
            let output_commitment =
                commit_named(&outputs).map_err(|e| EngineError::Internal(e.to_string()))?;
            Ok(Execution {
                outputs,
                input_commitment,
                output_commitment,
                trace: trace.finish(),
            })
        })
    }
}

/// Builds input tensors for `model` from their JSON form, using the model's dtypes where the JSON
/// names none.
pub fn inputs_from_json(
    model: &Model,
    value: &serde_json::Value,
) -> Result<NamedTensors, EngineError> {
    vouch_types::tensor::json::named_from_json(value, |n| model.input_dtype(n), model.limits())
        .map_err(|e| EngineError::BadInputs(e.to_string()))
}
