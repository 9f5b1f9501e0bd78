//! Running one case in this process: load the model, feed each data set, compare every output.
//!
//! This runs inside the per-case child process ([`crate::runner`]); anything that goes wrong
//! here becomes a [`Failure`], never a panic that escapes.

use std::{
    fs,
    panic::{AssertUnwindSafe, catch_unwind},
    path::{Path, PathBuf},
};

use serde::{Deserialize, Serialize};
use vouch_engine::{Dim, EngineConfig, Model, TensorSpec};
use vouch_types::{
    DType, Limits, NamedTensors, Tensor,
    tensor::onnx_pb::{from_tensor_proto, to_tensor_proto},
};

use crate::{
    compare::compare,
    reason::Failure,
    suite::{Case, CaseData, numbered_files},
};

/// What a case's run found: no failure means it passed.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Outcome {
    /// Why it failed, if it did.
    pub failure: Option<Failure>,
    /// The full message behind the failure (engine error, differing values), empty on a pass.
    pub detail: String,
    /// For a case that failed to load or run: whether it passes when every input is baked
    /// into the model as a constant holding its test value (what tract's own test suite does
    /// for inputs it needs constant, such as axes or shapes). `None` when not tried.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub passes_with_constant_inputs: Option<bool>,
}

impl Outcome {
    fn pass() -> Outcome {
        Outcome {
            failure: None,
            detail: String::new(),
            passes_with_constant_inputs: None,
        }
    }

    /// A failure, with the message behind it.
    pub fn fail(failure: Failure, detail: impl Into<String>) -> Outcome {
        Outcome {
            failure: Some(failure),
            detail: detail.into(),
            passes_with_constant_inputs: None,
        }
    }
}

/// Inputs and reference outputs of one data set.
struct DataSet {
    inputs: NamedTensors,
    outputs: Vec<Tensor>,
}

/// Runs `case` under `config`, catching panics from anywhere in the harness or the engine.
pub fn run_case(case: &Case, config: &EngineConfig) -> Outcome {
    catch_unwind(AssertUnwindSafe(|| run_case_inner(case, config))).unwrap_or_else(|panic| {
        let msg = panic
            .downcast_ref::<String>()
            .map(String::as_str)
            .or_else(|| panic.downcast_ref::<&str>().copied())
            .unwrap_or("(no message)");
        Outcome::fail(
            Failure::Crash {
                cause: "panic".into(),
            },
            format!("panicked: {msg}"),
        )
    })
}

fn run_case_inner(case: &Case, config: &EngineConfig) -> Outcome {
    let bytes = match fs::read(&case.model) {
        Ok(b) => b,
        Err(e) => {
            return Outcome::fail(
                Failure::HarnessError,
                format!("reading {}: {e}", case.model.display()),
            );
        }
    };
    let mut outcome = run_model(case, &bytes, config);
    if matches!(
        outcome.failure,
        Some(Failure::LoadError { .. } | Failure::RunError { .. })
    ) {
        outcome.passes_with_constant_inputs = passes_with_constant_inputs(case, &bytes, config);
    }
    outcome
}

/// Loads `bytes` as the case's model and checks it on every data set.
fn run_model(case: &Case, bytes: &[u8], config: &EngineConfig) -> Outcome {
    let model = match Model::load(bytes, config) {
        Ok(m) => m,
        Err(e) => return Outcome::fail(Failure::from_load_error(&e), e.to_string()),
    };
    let data_sets = match load_data_sets(case, &model.info().inputs, &config.limits) {
        Ok(sets) => sets,
        Err(outcome) => return outcome,
    };
    if data_sets.is_empty() {
        return Outcome::fail(Failure::MissingReference, "the case has no test data set");
    }
    for (set_index, set) in data_sets.iter().enumerate() {
        if let Err(outcome) = check_data_set(&model, set, set_index, case) {
            return outcome;
        }
    }
    Outcome::pass()
}

/// Runs one data set and compares every reference output.
fn check_data_set(
    model: &Model,
    set: &DataSet,
    set_index: usize,
    case: &Case,
) -> Result<(), Outcome> {
    let outputs = match model.run(&set.inputs) {
        Ok(execution) => execution.outputs,
        Err(e) => return Err(Outcome::fail(Failure::from_run_error(&e), e.to_string())),
    };
    let declared = &model.info().outputs;
    let mut failures = Vec::new();
    for (k, reference) in set.outputs.iter().enumerate() {
        let Some(spec) = declared.get(k) else {
            failures.push((
                Failure::MissingOutput { index: k },
                format!(
                    "reference output {k} has no model output (the model declares {})",
                    declared.len()
                ),
            ));
            continue;
        };
        let Some(got) = outputs.get(&spec.name) else {
            failures.push((
                Failure::MissingOutput { index: k },
                format!("the engine returned no output {:?}", spec.name),
            ));
            continue;
        };
        if let Err(difference) = compare(reference, got, case.tolerance) {
            failures.push((
                Failure::from_difference(&spec.name, &difference),
                format!("data set {set_index}, output {:?}: {difference}", spec.name),
            ));
        }
    }
    match failures.first() {
        None => Ok(()),
        Some((first, _)) => {
            let detail = failures
                .iter()
                .map(|(_, d)| d.as_str())
                .collect::<Vec<_>>()
                .join("; ");
            Err(Outcome::fail(first.clone(), detail))
        }
    }
}

/// Whether the case passes with each data set's inputs baked into the model as initializers:
/// a diagnostic separating "tract needs this input constant" from other failures. `None` when
/// the model or its data can't be read.
fn passes_with_constant_inputs(case: &Case, bytes: &[u8], config: &EngineConfig) -> Option<bool> {
    let info = vouch_engine::inspect(bytes, config.max_model_bytes).ok()?;
    let data_sets = load_data_sets(case, &info.inputs, &config.limits).ok()?;
    if data_sets.is_empty() {
        return None;
    }
    for (set_index, set) in data_sets.into_iter().enumerate() {
        let folded = with_constant_inputs(bytes, &set.inputs)?;
        let Ok(model) = Model::load(&folded, config) else {
            return Some(false);
        };
        let set = DataSet {
            inputs: NamedTensors::new(),
            outputs: set.outputs,
        };
        if check_data_set(&model, &set, set_index, case).is_err() {
            return Some(false);
        }
    }
    Some(true)
}

/// The model with `inputs` moved from the graph's inputs to its initializers.
fn with_constant_inputs(bytes: &[u8], inputs: &NamedTensors) -> Option<Vec<u8>> {
    use prost::Message;
    use tract_onnx::pb::{ModelProto, TensorProto};
    let mut proto = ModelProto::decode(bytes).ok()?;
    let graph = proto.graph.as_mut()?;
    graph.input.retain(|i| !inputs.contains_key(&i.name));
    for (name, tensor) in inputs {
        let initializer = TensorProto::decode(&*to_tensor_proto(name, tensor)).ok()?;
        graph.initializer.push(initializer);
    }
    Some(proto.encode_to_vec())
}

fn read_tensor(path: &Path, limits: &Limits) -> Result<Tensor, Outcome> {
    let bytes = fs::read(path).map_err(|e| {
        Outcome::fail(
            Failure::MissingReference,
            format!("reading {}: {e}", path.display()),
        )
    })?;
    from_tensor_proto(&bytes, limits)
        .map(|(_, t)| t)
        .map_err(|e| {
            Outcome::fail(
                Failure::from_tensor_error(&e),
                format!("{}: {e}", path.display()),
            )
        })
}

fn read_tensors(paths: &[PathBuf], limits: &Limits) -> Result<Vec<Tensor>, Outcome> {
    paths.iter().map(|p| read_tensor(p, limits)).collect()
}

fn load_data_sets(
    case: &Case,
    declared: &[TensorSpec],
    limits: &Limits,
) -> Result<Vec<DataSet>, Outcome> {
    match &case.data {
        CaseData::DataSets { dirs } => dirs
            .iter()
            .map(|dir| {
                let inputs = read_tensors(&numbered_files(dir, "input_"), limits)?;
                let outputs = read_tensors(&numbered_files(dir, "output_"), limits)?;
                // Input K feeds the model's K-th non-initializer input, as in ONNX's runner.
                if inputs.len() != declared.len() {
                    return Err(Outcome::fail(
                        Failure::MissingReference,
                        format!(
                            "{} has {} inputs, the model declares {}",
                            dir.display(),
                            inputs.len(),
                            declared.len()
                        ),
                    ));
                }
                let inputs = declared
                    .iter()
                    .map(|spec| spec.name.clone())
                    .zip(inputs)
                    .collect();
                Ok(DataSet { inputs, outputs })
            })
            .collect(),
        CaseData::Generated { outputs } => {
            let inputs = declared
                .iter()
                .map(|spec| Ok((spec.name.clone(), generated_input(spec)?)))
                .collect::<Result<NamedTensors, Outcome>>()?;
            Ok(vec![DataSet {
                inputs,
                outputs: read_tensors(outputs, limits)?,
            }])
        }
    }
}

/// The input ONNX's runner feeds the `light` models (`Runner.generate_dummy_data` with
/// `random=False`): `arange(n).reshape(shape) / n` computed in double and cast to float,
/// unknown dimensions taken as 1.
fn generated_input(spec: &TensorSpec) -> Result<Tensor, Outcome> {
    if spec.dtype != Some(DType::F32) {
        return Err(Outcome::fail(
            Failure::MissingReference,
            format!(
                "input {:?} is {}: ONNX's runner generates float inputs only",
                spec.name,
                spec.signature()
            ),
        ));
    }
    let shape: Vec<u64> = spec
        .shape
        .iter()
        .flatten()
        .map(|d| match d {
            Dim::Fixed(n) => *n,
            Dim::Symbol(_) | Dim::Any => 1,
        })
        .collect();
    let n: u64 = shape.iter().product();
    let values = (0..n).map(|i| (i as f64 / n as f64) as f32).collect();
    Tensor::from_vec(shape, values).map_err(|e| {
        Outcome::fail(
            Failure::HarnessError,
            format!("generating input {:?}: {e}", spec.name),
        )
    })
}
