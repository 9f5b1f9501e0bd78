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
use vouch_types::{DType, Limits, NamedTensors, Tensor, tensor::onnx_pb::from_tensor_proto};

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
}

impl Outcome {
    fn pass() -> Outcome {
        Outcome {
            failure: None,
            detail: String::new(),
        }
    }

    fn fail(failure: Failure, detail: impl Into<String>) -> Outcome {
        Outcome {
            failure: Some(failure),
            detail: detail.into(),
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
    let model = match Model::load(&bytes, config) {
        Ok(m) => m,
        Err(e) => return Outcome::fail(Failure::from_load_error(&e), e.to_string()),
    };
    let data_sets = match load_data_sets(case, &model, &config.limits) {
        Ok(sets) => sets,
        Err(outcome) => return outcome,
    };
    if data_sets.is_empty() {
        return Outcome::fail(Failure::MissingReference, "the case has no test data set");
    }
    for (set_index, set) in data_sets.iter().enumerate() {
        let outputs = match model.run(&set.inputs) {
            Ok(execution) => execution.outputs,
            Err(e) => return Outcome::fail(Failure::from_run_error(&e), e.to_string()),
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
        if let Some((first, _)) = failures.first() {
            let detail = failures
                .iter()
                .map(|(_, d)| d.as_str())
                .collect::<Vec<_>>()
                .join("; ");
            return Outcome::fail(first.clone(), detail);
        }
    }
    Outcome::pass()
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

fn load_data_sets(case: &Case, model: &Model, limits: &Limits) -> Result<Vec<DataSet>, Outcome> {
    let declared = &model.info().inputs;
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
