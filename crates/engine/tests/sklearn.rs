//! ONNX-ML operators (crates/onnx-ml) against onnxruntime: scikit-learn models exported with
//! skl2onnx and hand-built ONNX-ML nodes, made by scripts/sklearn_cases.py with onnxruntime's
//! outputs on several rows each. Also: refusals name the operator, a row alone gives the same
//! bytes as inside a batch, and every ONNX-ML node's outputs enter the execution trace.
//!
//! Needs a Python with scripts/requirements-test.txt: `VOUCH_PYTHON=/path/to/python`. Without
//! it the tests skip with a message, unless `VOUCH_REQUIRE_SKLEARN=1` (set by .ci/test), which
//! turns a missing Python into a failure.
//!
//! Every test here runs under the exact-portable profile.

use std::{
    collections::BTreeMap,
    path::{Path, PathBuf},
    process::Command,
    sync::OnceLock,
};

use prost::Message;
use tract_onnx::pb;
use vouch_engine::{EngineConfig, Model};
use vouch_types::{DType, Limits, NamedTensors, Tensor, tensor::json::named_from_json};

/// Float outputs must satisfy `|vouch - ort| <= ATOL + RTOL * |ort|`: onnxruntime's own model-test
/// tolerance (`per_sample_tolerance` and `relative_per_sample_tolerance`, both 1e-3, in
/// onnxruntime/test/onnx). Labels, integers and strings must match exactly.
const ATOL: f64 = 1e-3;
const RTOL: f64 = 1e-3;

fn python() -> Option<String> {
    match std::env::var("VOUCH_PYTHON") {
        Ok(p) => Some(p),
        Err(_) if std::env::var_os("VOUCH_REQUIRE_SKLEARN").is_some() => {
            panic!("VOUCH_REQUIRE_SKLEARN is set but VOUCH_PYTHON is not")
        }
        Err(_) => {
            eprintln!(
                "skipped: set VOUCH_PYTHON to a Python with scripts/requirements-test.txt installed"
            );
            None
        }
    }
}

/// Runs scripts/sklearn_cases.py once per test process; `None` when skipping.
fn cases_dir() -> Option<&'static Path> {
    static DIR: OnceLock<Option<PathBuf>> = OnceLock::new();
    DIR.get_or_init(|| {
        let py = python()?;
        let dir = PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join("sklearn-cases");
        let _ = std::fs::remove_dir_all(&dir);
        let script =
            PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../scripts/sklearn_cases.py");
        let out = Command::new(&py)
            .arg(&script)
            .arg(&dir)
            .output()
            .unwrap_or_else(|e| panic!("running {py}: {e}"));
        assert!(
            out.status.success(),
            "scripts/sklearn_cases.py failed:\n{}",
            String::from_utf8_lossy(&out.stderr)
        );
        Some(dir)
    })
    .as_deref()
}

struct Case {
    name: String,
    model: Vec<u8>,
    spec: serde_json::Value,
}

fn cases(dir: &Path) -> Vec<Case> {
    let mut names: Vec<String> = std::fs::read_dir(dir)
        .unwrap()
        .filter_map(|e| {
            let p = e.unwrap().path();
            (p.extension()? == "json")
                .then(|| p.file_stem().unwrap().to_string_lossy().into_owned())
        })
        .collect();
    names.sort();
    names
        .into_iter()
        .map(|name| Case {
            model: std::fs::read(dir.join(format!("{name}.onnx"))).unwrap(),
            spec: serde_json::from_slice(&std::fs::read(dir.join(format!("{name}.json"))).unwrap())
                .unwrap(),
            name,
        })
        .collect()
}

fn tensors(v: &serde_json::Value) -> NamedTensors {
    named_from_json(v, |_| None, &Limits::DEFAULT).unwrap()
}

fn load(case: &Case) -> Model {
    Model::load(&case.model, &EngineConfig::default())
        .unwrap_or_else(|e| panic!("{}: load failed: {e}", case.name))
}

fn floats(t: &Tensor) -> Option<Vec<f64>> {
    match t.dtype() {
        DType::F32 => Some(
            t.to_vec::<f32>()
                .unwrap()
                .into_iter()
                .map(f64::from)
                .collect(),
        ),
        DType::F64 => Some(t.to_vec::<f64>().unwrap()),
        _ => None,
    }
}

/// Differences from onnxruntime's outputs, one line each; the largest relative float error within
/// tolerance in `worst`.
fn compare(
    case: &str,
    got: &NamedTensors,
    want: &NamedTensors,
    worst: &mut (f64, String),
) -> Vec<String> {
    let mut problems = vec![];
    for (name, w) in want {
        let Some(g) = got.get(name) else {
            problems.push(format!("{case}/{name}: missing output"));
            continue;
        };
        if g.dtype() != w.dtype() || g.shape() != w.shape() {
            problems.push(format!(
                "{case}/{name}: {} {:?}, onnxruntime gives {} {:?}",
                g.dtype(),
                g.shape(),
                w.dtype(),
                w.shape()
            ));
            continue;
        }
        match (floats(g), floats(w)) {
            (Some(g), Some(w)) => {
                for (i, (a, b)) in g.iter().zip(&w).enumerate() {
                    let same_nan = a.is_nan() && b.is_nan();
                    let same_inf = a.is_infinite() && a == b;
                    let d = (a - b).abs();
                    if !same_nan && !same_inf {
                        if d.is_nan() || d > ATOL + RTOL * b.abs() {
                            problems.push(format!("{case}/{name}[{i}]: {a} vs onnxruntime {b}"));
                        } else if d / (1e-6 + b.abs()) > worst.0 {
                            *worst = (
                                d / (1e-6 + b.abs()),
                                format!("{case}/{name}[{i}]: {a} vs {b}"),
                            );
                        }
                    }
                }
            }
            _ => {
                if g != w {
                    problems.push(format!("{case}/{name}: {g:?} vs onnxruntime {w:?}"));
                }
            }
        }
    }
    problems
}

#[test]
fn outputs_match_onnxruntime() {
    let Some(dir) = cases_dir() else { return };
    let mut checked = 0;
    let mut problems = vec![];
    let mut worst = (0.0, String::new());
    for case in cases(dir)
        .iter()
        .filter(|c| c.spec.get("outputs").is_some())
    {
        let model = load(case);
        let run = model
            .run(&tensors(&case.spec["inputs"]))
            .unwrap_or_else(|e| panic!("{}: run failed: {e}", case.name));
        let mismatches = compare(
            &case.name,
            &run.outputs,
            &tensors(&case.spec["outputs"]),
            &mut worst,
        );
        if !mismatches.is_empty() {
            // Vouch's outputs next to the case, to compare with onnxruntime's by hand.
            let json = vouch_types::tensor::json::named_to_json(&run.outputs);
            std::fs::write(
                dir.join(format!("{}.vouch.json", case.name)),
                json.to_string(),
            )
            .unwrap();
        }
        problems.extend(mismatches);
        checked += 1;
    }
    eprintln!(
        "{checked} cases; largest relative float difference (|d| / (1e-6 + |ort|)): {} ({})",
        worst.0, worst.1
    );
    assert!(
        checked >= 150,
        "only {checked} cases: the case script produced too few"
    );
    assert!(
        problems.is_empty(),
        "{} mismatches:\n{}",
        problems.len(),
        problems.join("\n")
    );
}

#[test]
fn unsupported_models_are_refused_at_load_naming_the_operator() {
    let Some(dir) = cases_dir() else { return };
    let mut checked = 0;
    for case in cases(dir).iter().filter(|c| c.spec.get("refuse").is_some()) {
        let err = Model::load(&case.model, &EngineConfig::default())
            .err()
            .unwrap_or_else(|| panic!("{}: loaded, but must be refused", case.name))
            .to_string();
        for word in case.spec["refuse"].as_array().unwrap() {
            let word = word.as_str().unwrap();
            assert!(
                err.contains(word),
                "{}: the error must mention {word:?}: {err}",
                case.name
            );
        }
        checked += 1;
    }
    assert!(checked >= 6, "only {checked} refusal cases");
}

/// Row `r` (along axis 0) of `t`.
fn row(t: &Tensor, r: usize) -> Tensor {
    let mut shape = t.shape().to_vec();
    let n = shape[0] as usize;
    shape[0] = 1;
    let unbounded = Limits {
        max_rank: usize::MAX,
        max_bytes: usize::MAX,
    };
    if let Some(s) = t.as_strings() {
        let per = s.len() / n;
        return Tensor::from_strings(shape, s[r * per..(r + 1) * per].to_vec(), &unbounded)
            .unwrap();
    }
    let bytes = t.as_le_bytes().unwrap();
    let per = bytes.len() / n;
    Tensor::from_le_bytes(
        t.dtype(),
        shape,
        bytes[r * per..(r + 1) * per].to_vec(),
        &unbounded,
    )
    .unwrap()
}

#[test]
fn a_row_alone_gives_the_same_bytes_as_in_a_batch() {
    let Some(dir) = cases_dir() else { return };
    let mut checked = 0;
    for case in cases(dir)
        .iter()
        .filter(|c| c.spec.get("outputs").is_some())
    {
        let model = load(case);
        let inputs = tensors(&case.spec["inputs"]);
        let n = inputs.values().next().unwrap().shape()[0] as usize;
        let batch = model.run_without_trace(&inputs).unwrap();
        for r in 0..n {
            let alone: NamedTensors = inputs.iter().map(|(k, t)| (k.clone(), row(t, r))).collect();
            let out = model.run_without_trace(&alone).unwrap();
            for (name, t) in &batch {
                assert_eq!(
                    out[name].encode(),
                    row(t, r).encode(),
                    "{}: output {name}, row {r} alone differs from the batch",
                    case.name
                );
            }
        }
        checked += 1;
    }
    assert!(checked >= 150);
}

#[test]
fn every_onnx_ml_node_enters_the_trace() {
    let Some(dir) = cases_dir() else { return };
    let mut seen: BTreeMap<String, usize> = BTreeMap::new();
    for case in cases(dir)
        .iter()
        .filter(|c| c.spec.get("outputs").is_some())
    {
        let proto = pb::ModelProto::decode(case.model.as_slice()).unwrap();
        let model = load(case);
        let run = model.run(&tensors(&case.spec["inputs"])).unwrap();
        let traced: Vec<&str> = run.trace.nodes.iter().map(|n| n.name.as_str()).collect();
        for node in proto
            .graph
            .unwrap()
            .node
            .iter()
            .filter(|n| n.domain == "ai.onnx.ml")
        {
            assert!(
                !node.name.is_empty(),
                "{}: the case script must name its nodes",
                case.name
            );
            let entry = run
                .trace
                .nodes
                .iter()
                .find(|t| t.name == node.name)
                .unwrap_or_else(|| {
                    panic!(
                        "{}: {} node {:?} not in the trace {traced:?}",
                        case.name, node.op_type, node.name
                    )
                });
            assert!(
                entry.outputs.iter().all(Option::is_some),
                "{}: {:?} has uncommitted outputs",
                case.name,
                node.name
            );
            *seen.entry(node.op_type.clone()).or_default() += 1;
        }
    }
    for op in vouch_onnx_ml::OPERATORS {
        assert!(seen.contains_key(op), "no case exercises {op}: {seen:?}");
    }
}

#[test]
fn outputs_do_not_depend_on_the_thread_count() {
    let Some(dir) = cases_dir() else { return };
    for case in cases(dir)
        .iter()
        .filter(|c| c.spec.get("outputs").is_some())
        .step_by(7)
    {
        let inputs = tensors(&case.spec["inputs"]);
        let one = load(case).run(&inputs).unwrap();
        let two = Model::load(
            &case.model,
            &EngineConfig {
                threads: 2,
                ..EngineConfig::default()
            },
        )
        .unwrap()
        .run(&inputs)
        .unwrap();
        assert_eq!(
            one.output_commitment, two.output_commitment,
            "{}",
            case.name
        );
        assert_eq!(one.trace.root, two.trace.root, "{}", case.name);
    }
}
