//! Reading a benchmark's input tensors: `.npy`, ONNX `.pb` (TensorProto) or a JSON input set.

use std::{fs, io::Read, path::Path};

use vouch_engine::Model;
use vouch_types::{
    NamedTensors,
    tensor::{npy, onnx_pb},
};

use crate::BenchError;

/// Largest JSON input set read; bigger tensors belong in `.npy` files.
const MAX_JSON_BYTES: u64 = 64 << 20;

/// Reads a file, refusing it if it is over `max` bytes.
pub fn read_bounded(path: &Path, max: u64) -> Result<Vec<u8>, BenchError> {
    let io = |error| BenchError::Io {
        path: path.to_path_buf(),
        error,
    };
    let file = fs::File::open(path).map_err(io)?;
    let mut bytes = Vec::new();
    file.take(max + 1).read_to_end(&mut bytes).map_err(io)?;
    if bytes.len() as u64 > max {
        return Err(BenchError::Input(format!(
            "{} is over the {max}-byte limit",
            path.display()
        )));
    }
    Ok(bytes)
}

/// Reads the inputs given as `[NAME=]FILE`. A `.npy` or `.pb` without a name is the model's only
/// input (a `.pb` may name its input itself); a `.json` file is a whole input set
/// `{"name": tensor, …}` in Vouch's JSON tensor form.
pub fn read_inputs(model: &Model, specs: &[String]) -> Result<NamedTensors, BenchError> {
    let limits = model.limits();
    let binary_max = limits.max_bytes as u64 + (1 << 20);
    let only_input = || match model.info().inputs.as_slice() {
        [one] => Ok(one.name.clone()),
        all => Err(BenchError::Input(format!(
            "the model has {} inputs: name each one as NAME=FILE",
            all.len()
        ))),
    };
    let mut inputs = NamedTensors::new();
    for spec in specs {
        let (name, path) = match spec.split_once('=') {
            Some((n, p)) if !n.is_empty() => (Some(n.to_string()), Path::new(p)),
            _ => (None, Path::new(spec.as_str())),
        };
        let bad = |e: &dyn std::fmt::Display| {
            BenchError::Input(format!("reading {}: {e}", path.display()))
        };
        let ext = path.extension().and_then(|e| e.to_str()).unwrap_or("");
        let named = match ext.to_ascii_lowercase().as_str() {
            "npy" => {
                let t =
                    npy::from_npy(&read_bounded(path, binary_max)?, limits).map_err(|e| bad(&e))?;
                vec![(name.map_or_else(only_input, Ok)?, t)]
            }
            "pb" => {
                let (own, t) =
                    onnx_pb::from_tensor_proto(&read_bounded(path, 2 * binary_max)?, limits)
                        .map_err(|e| bad(&e))?;
                let name = match name {
                    Some(n) => n,
                    None if !own.is_empty() => own,
                    None => only_input()?,
                };
                vec![(name, t)]
            }
            "json" => {
                let value: serde_json::Value =
                    serde_json::from_slice(&read_bounded(path, MAX_JSON_BYTES)?)
                        .map_err(|e| bad(&e))?;
                vouch_engine::inputs_from_json(model, &value)
                    .map_err(|e| bad(&e))?
                    .into_iter()
                    .collect()
            }
            _ => {
                return Err(BenchError::Input(format!(
                    "{}: unknown tensor file type (expected .npy, .pb or .json)",
                    path.display()
                )));
            }
        };
        for (name, t) in named {
            if inputs.insert(name.clone(), t).is_some() {
                return Err(BenchError::Input(format!("input {name:?} given twice")));
            }
        }
    }
    Ok(inputs)
}
