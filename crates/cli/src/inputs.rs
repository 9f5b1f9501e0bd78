//! Reading input tensors from the command line: `.npy`, ONNX `.pb`, and JSON files, or inline
//! JSON.

use std::{fs, io::Read, path::Path};

use vouch_types::{
    DType, Limits, NamedTensors, Tensor,
    tensor::{json, npy, onnx_pb},
};

use crate::exit::{CliError, Exit, WithExit, fail};

/// Largest JSON input read: JSON numbers take several times the space of binary ones, and a
/// parsed document several times more again; bigger tensors belong in `.npy` files.
pub const MAX_JSON_BYTES: u64 = 64 << 20;

/// What the inputs are read against: the model's declared inputs, when known.
pub struct InputSchema<'a> {
    /// Name and dtype of each declared input.
    pub inputs: Vec<(&'a str, Option<DType>)>,
    /// Bounds on each tensor.
    pub limits: Limits,
}

impl InputSchema<'_> {
    fn hint(&self, name: &str) -> Option<DType> {
        self.inputs
            .iter()
            .find(|(n, _)| *n == name)
            .and_then(|(_, d)| *d)
    }
}

/// Reads a file, refusing it before reading if it is over `max` bytes.
pub fn read_bounded(path: &Path, max: u64) -> Result<Vec<u8>, CliError> {
    let file = fs::File::open(path).exit_ctx(Exit::Io, || format!("opening {}", path.display()))?;
    let len = file.metadata().map(|m| m.len()).unwrap_or(0);
    if len > max {
        return Err(fail(
            Exit::InvalidInput,
            format!(
                "{} is {len} bytes, over the {max}-byte limit",
                path.display()
            ),
        ));
    }
    let mut bytes = Vec::with_capacity(len as usize);
    file.take(max + 1)
        .read_to_end(&mut bytes)
        .exit_ctx(Exit::Io, || format!("reading {}", path.display()))?;
    if bytes.len() as u64 > max {
        return Err(fail(
            Exit::InvalidInput,
            format!("{} grew past the {max}-byte limit", path.display()),
        ));
    }
    Ok(bytes)
}

fn parse_json(bytes: &[u8], what: &str) -> Result<serde_json::Value, CliError> {
    serde_json::from_slice(bytes)
        .exit_ctx(Exit::InvalidInput, || format!("{what} is not valid JSON"))
}

/// Reads one tensor file by extension; a `.pb` may carry its own name.
fn read_tensor_file(
    path: &Path,
    hint: Option<DType>,
    limits: &Limits,
) -> Result<(Option<String>, Tensor), CliError> {
    let ext = path
        .extension()
        .and_then(|e| e.to_str())
        .unwrap_or("")
        .to_ascii_lowercase();
    let binary_max = limits.max_bytes as u64 + (1 << 20);
    let what = || format!("reading tensor {}", path.display());
    match ext.as_str() {
        "npy" => {
            let bytes = read_bounded(path, binary_max)?;
            Ok((
                None,
                npy::from_npy(&bytes, limits).exit_ctx(Exit::InvalidInput, what)?,
            ))
        }
        "pb" => {
            let bytes = read_bounded(path, 2 * binary_max)?;
            let (name, t) =
                onnx_pb::from_tensor_proto(&bytes, limits).exit_ctx(Exit::InvalidInput, what)?;
            Ok(((!name.is_empty()).then_some(name), t))
        }
        "json" => {
            let bytes = read_bounded(path, MAX_JSON_BYTES)?;
            let v = parse_json(&bytes, &path.display().to_string())?;
            Ok((
                None,
                json::from_json(&v, hint, limits).exit_ctx(Exit::InvalidInput, what)?,
            ))
        }
        _ => Err(fail(
            Exit::InvalidInput,
            format!(
                "{}: unknown tensor file type (expected .npy, .pb or .json)",
                path.display()
            ),
        )),
    }
}

/// Reads the inputs given as `--input [NAME=]FILE` (repeatable) and `--input-json TEXT`.
///
/// A `.json` file without a name is a whole input set `{"name": tensor, …}`; a `.npy` or `.pb`
/// file without a name is the model's only input (or, for `.pb`, the input its name field names).
pub fn read_inputs(
    specs: &[String],
    inline: Option<&str>,
    schema: &InputSchema,
) -> Result<NamedTensors, CliError> {
    let known = |name: &str| -> Result<(), CliError> {
        if schema.inputs.is_empty() || schema.inputs.iter().any(|(n, _)| *n == name) {
            return Ok(());
        }
        let names: Vec<&str> = schema.inputs.iter().map(|(n, _)| *n).collect();
        Err(fail(
            Exit::InvalidInput,
            format!(
                "unknown input {name:?}; the model's inputs are {}",
                names.join(", ")
            ),
        ))
    };
    let check_names = |v: &serde_json::Value| -> Result<(), CliError> {
        v.as_object()
            .map_or(Ok(()), |o| o.keys().try_for_each(|k| known(k)))
    };
    let mut inputs = NamedTensors::new();
    let mut add = |name: String, t: Tensor| -> Result<(), CliError> {
        if inputs.insert(name.clone(), t).is_some() {
            return Err(fail(
                Exit::InvalidInput,
                format!("input {name:?} is given twice"),
            ));
        }
        Ok(())
    };
    let sole_input = || -> Result<String, CliError> {
        match schema.inputs.as_slice() {
            [(name, _)] => Ok(name.to_string()),
            _ => Err(fail(
                Exit::InvalidInput,
                format!(
                    "the model has {} inputs; name each one: --input NAME=FILE",
                    schema.inputs.len()
                ),
            )),
        }
    };
    for spec in specs {
        let (name, path) = match spec.split_once('=') {
            Some((n, p)) if !n.is_empty() && !Path::new(spec).exists() => {
                (Some(n.to_string()), Path::new(p))
            }
            _ => (None, Path::new(spec.as_str())),
        };
        let is_json = path
            .extension()
            .is_some_and(|e| e.eq_ignore_ascii_case("json"));
        match name {
            None if is_json => {
                let bytes = read_bounded(path, MAX_JSON_BYTES)?;
                let v = parse_json(&bytes, &path.display().to_string())?;
                check_names(&v)?;
                let set = json::named_from_json(&v, |n| schema.hint(n), &schema.limits)
                    .exit_ctx(Exit::InvalidInput, || {
                        format!("reading inputs from {}", path.display())
                    })?;
                for (n, t) in set {
                    add(n, t)?;
                }
            }
            None => {
                let (own_name, t) = read_tensor_file(path, None, &schema.limits)?;
                let name = match own_name {
                    Some(n) if schema.inputs.iter().any(|(i, _)| *i == n) => n,
                    _ => sole_input()?,
                };
                add(name, t)?;
            }
            Some(name) => {
                known(&name)?;
                let (_, t) = read_tensor_file(path, schema.hint(&name), &schema.limits)?;
                add(name, t)?;
            }
        }
    }
    if let Some(text) = inline {
        if text.len() as u64 > MAX_JSON_BYTES {
            return Err(fail(
                Exit::InvalidInput,
                "--input-json is over the size limit",
            ));
        }
        let v = parse_json(text.as_bytes(), "--input-json")?;
        check_names(&v)?;
        let set = json::named_from_json(&v, |n| schema.hint(n), &schema.limits)
            .exit_ctx(Exit::InvalidInput, || "reading --input-json".into())?;
        for (n, t) in set {
            add(n, t)?;
        }
    }
    Ok(inputs)
}
