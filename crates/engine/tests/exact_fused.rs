//! exact-fused/1 in one process: what it computes (matrix products equal a plain `mul_add`
//! chain), what does not change its bits (threads, repeated runs and loads, a row alone or
//! inside a batch), and what it refuses. The kernel-family half of the matrix (other CPUs, via
//! qemu-user and the fallback knob) is crates/cli/tests/kernel_families.rs.
//!
//! The profile is process-wide: every test in this file runs under exact-fused/1.

use std::path::PathBuf;

use prost::Message;
use tract_onnx::pb;
use vouch_engine::{EngineConfig, EngineError, Model, Profile};
use vouch_types::{NamedTensors, Tensor};

fn fixture(name: &str) -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("../../tests/fixtures/models")
        .join(name)
}

fn config(threads: usize) -> EngineConfig {
    EngineConfig {
        profile: Profile::ExactFused,
        threads,
        ..EngineConfig::default()
    }
}

fn load_bytes(bytes: &[u8], threads: usize) -> Result<Model, EngineError> {
    Model::load(bytes, &config(threads))
}

fn load(stem: &str, threads: usize) -> Model {
    let bytes = std::fs::read(fixture(&format!("{stem}.onnx"))).unwrap();
    load_bytes(&bytes, threads).unwrap()
}

/// Deterministic pseudo-random values in [-1, 1), from a seed.
fn values(seed: u64, len: usize) -> Vec<f32> {
    let mut state = seed
        .wrapping_mul(6364136223846793005)
        .wrapping_add(1442695040888963407);
    (0..len)
        .map(|_| {
            state = state
                .wrapping_mul(6364136223846793005)
                .wrapping_add(1442695040888963407);
            ((state >> 40) as f32 / (1u64 << 24) as f32) * 2.0 - 1.0
        })
        .collect()
}

fn value_info(name: &str, dims: &[Option<i64>]) -> pb::ValueInfoProto {
    use pb::{tensor_shape_proto::dimension::Value as D, type_proto::Value as T};
    pb::ValueInfoProto {
        name: name.into(),
        r#type: Some(pb::TypeProto {
            value: Some(T::TensorType(pb::type_proto::Tensor {
                elem_type: 1,
                shape: Some(pb::TensorShapeProto {
                    dim: dims
                        .iter()
                        .map(|d| pb::tensor_shape_proto::Dimension {
                            value: Some(match d {
                                Some(v) => D::DimValue(*v),
                                None => D::DimParam("N".into()),
                            }),
                            ..Default::default()
                        })
                        .collect(),
                }),
            })),
            ..Default::default()
        }),
        ..Default::default()
    }
}

fn initializer(name: &str, dims: &[i64], data: Vec<f32>) -> pb::TensorProto {
    pb::TensorProto {
        name: name.into(),
        dims: dims.to_vec(),
        data_type: 1,
        float_data: data,
        ..Default::default()
    }
}

fn node(op_type: &str, inputs: &[&str], output: &str) -> pb::NodeProto {
    pb::NodeProto {
        input: inputs.iter().map(|s| s.to_string()).collect(),
        output: vec![output.into()],
        name: output.into(),
        op_type: op_type.into(),
        ..Default::default()
    }
}

fn model(
    nodes: Vec<pb::NodeProto>,
    inputs: Vec<pb::ValueInfoProto>,
    output: pb::ValueInfoProto,
    initializers: Vec<pb::TensorProto>,
) -> Vec<u8> {
    pb::ModelProto {
        ir_version: 8,
        opset_import: vec![pb::OperatorSetIdProto {
            domain: String::new(),
            version: 17,
        }],
        graph: Some(pb::GraphProto {
            node: nodes,
            name: "g".into(),
            input: inputs,
            output: vec![output],
            initializer: initializers,
            ..Default::default()
        }),
        ..Default::default()
    }
    .encode_to_vec()
}

fn tensor(shape: &[u64], data: Vec<f32>) -> Tensor {
    Tensor::from_vec(shape.to_vec(), data).unwrap()
}

/// `y[r][j] = sum over p of x[r][p] * w[p][j]`, as one fused chain in increasing `p`.
fn fused_chain(x: &[f32], w: &[f32], rows: usize, k: usize, m: usize) -> Vec<f32> {
    let mut y = vec![0f32; rows * m];
    for r in 0..rows {
        for j in 0..m {
            let mut s = 0f32;
            for p in 0..k {
                s = x[r * k + p].mul_add(w[p * m + j], s);
            }
            y[r * m + j] = s;
        }
    }
    y
}

fn bits(xs: &[f32]) -> Vec<u32> {
    xs.iter().map(|x| x.to_bits()).collect()
}

/// Shapes (rows n, depth k, outputs m) chosen to reach every kind of kernel: matrix-vector
/// products (n = 1) with few and many outputs (tract's AVX-512 16x1 kernel, the one that splits
/// sums, is its pick for m < 31), narrow and wide matrices, and long sums.
const SHAPES: [(usize, usize, usize); 9] = [
    (1, 64, 10),
    (1, 300, 30),
    (1, 256, 200),
    (2, 64, 10),
    (4, 37, 16),
    (7, 96, 33),
    (32, 128, 64),
    (49, 512, 64),
    (3, 1000, 5),
];

#[test]
fn matrix_products_equal_the_fused_chain_with_constant_weights() {
    for (n, k, m) in SHAPES {
        let w = values(k as u64 * 31 + m as u64, k * m);
        let bytes = model(
            vec![node("MatMul", &["x", "w"], "y")],
            vec![value_info("x", &[None, Some(k as i64)])],
            value_info("y", &[None, Some(m as i64)]),
            vec![initializer("w", &[k as i64, m as i64], w.clone())],
        );
        let model = load_bytes(&bytes, 1).unwrap();
        let x = values(n as u64, n * k);
        let out = model
            .run(&NamedTensors::from([(
                "x".to_string(),
                tensor(&[n as u64, k as u64], x.clone()),
            )]))
            .unwrap();
        let got = out.outputs["y"].to_vec::<f32>().unwrap();
        assert_eq!(
            bits(&got),
            bits(&fused_chain(&x, &w, n, k, m)),
            "MatMul {n}x{k} by {k}x{m}"
        );
    }
}

#[test]
fn matrix_products_equal_the_fused_chain_with_both_operands_at_run_time() {
    for (n, k, m) in SHAPES {
        let bytes = model(
            vec![node("MatMul", &["x", "w"], "y")],
            vec![
                value_info("x", &[Some(n as i64), Some(k as i64)]),
                value_info("w", &[Some(k as i64), Some(m as i64)]),
            ],
            value_info("y", &[Some(n as i64), Some(m as i64)]),
            vec![],
        );
        let model = load_bytes(&bytes, 1).unwrap();
        let x = values(n as u64 + 7, n * k);
        let w = values(k as u64 + 11, k * m);
        let out = model
            .run(&NamedTensors::from([
                ("x".to_string(), tensor(&[n as u64, k as u64], x.clone())),
                ("w".to_string(), tensor(&[k as u64, m as u64], w.clone())),
            ]))
            .unwrap();
        let got = out.outputs["y"].to_vec::<f32>().unwrap();
        assert_eq!(
            bits(&got),
            bits(&fused_chain(&x, &w, n, k, m)),
            "MatMul {n}x{k} by {k}x{m}, both at run time"
        );
    }
}

#[test]
fn a_bias_is_added_after_the_chain() {
    let (k, m) = (200, 24);
    let w = values(5, k * m);
    let b = values(6, m);
    let bytes = model(
        vec![
            node("MatMul", &["x", "w"], "xw"),
            node("Add", &["xw", "b"], "y"),
        ],
        vec![value_info("x", &[None, Some(k as i64)])],
        value_info("y", &[None, Some(m as i64)]),
        vec![
            initializer("w", &[k as i64, m as i64], w.clone()),
            initializer("b", &[m as i64], b.clone()),
        ],
    );
    let model = load_bytes(&bytes, 1).unwrap();
    for n in [1, 3] {
        let x = values(n as u64 + 100, n * k);
        let out = model
            .run(&NamedTensors::from([(
                "x".to_string(),
                tensor(&[n as u64, k as u64], x.clone()),
            )]))
            .unwrap();
        let expected: Vec<f32> = fused_chain(&x, &w, n, k, m)
            .iter()
            .enumerate()
            .map(|(i, s)| s + b[i % m])
            .collect();
        assert_eq!(
            bits(&out.outputs["y"].to_vec::<f32>().unwrap()),
            bits(&expected),
            "{n} rows"
        );
    }
}

/// (stem, the shape of one row) of the models the determinism tests run.
const MODELS: [(&str, &[u64]); 4] = [
    ("iris_mlp", &[4]),
    ("mlp_784", &[784]),
    ("mnist_cnn", &[1, 28, 28]),
    ("ops_zoo", &[3, 16, 16]),
];

fn input_name(model: &Model) -> String {
    model.info().inputs[0].name.clone()
}

fn batch(model: &Model, row: &[u64], rows: usize, seed: u64) -> NamedTensors {
    let len: u64 = row.iter().product();
    let mut shape = vec![rows as u64];
    shape.extend_from_slice(row);
    NamedTensors::from([(
        input_name(model),
        tensor(&shape, values(seed, rows * len as usize)),
    )])
}

#[test]
fn a_row_alone_equals_the_same_row_in_any_batch() {
    for (stem, row) in MODELS {
        let model = load(stem, 1);
        let row_len: u64 = row.iter().product();
        for rows in [2, 3, 5, 8] {
            let whole = batch(&model, row, rows, rows as u64);
            let data = whole[&input_name(&model)].to_vec::<f32>().unwrap();
            let batched = model.run(&whole).unwrap();
            for r in 0..rows {
                let mut shape = vec![1];
                shape.extend_from_slice(row);
                let len = row_len as usize;
                let single = model
                    .run(&NamedTensors::from([(
                        input_name(&model),
                        tensor(&shape, data[r * len..(r + 1) * len].to_vec()),
                    )]))
                    .unwrap();
                for (out, all) in &batched.outputs {
                    let part = single.outputs[out].as_le_bytes().unwrap();
                    assert!(
                        part == &all.as_le_bytes().unwrap()[r * part.len()..(r + 1) * part.len()],
                        "{stem}/{out}: row {r} of {rows} differs from the row alone"
                    );
                }
            }
        }
    }
}

#[test]
fn bit_identical_across_threads_runs_and_loads() {
    for (stem, row) in MODELS {
        let reference = {
            let m = load(stem, 1);
            m.run(&batch(&m, row, 3, 42)).unwrap()
        };
        for threads in [1, 2, 4] {
            let m = load(stem, threads);
            for _ in 0..2 {
                let ex = m.run(&batch(&m, row, 3, 42)).unwrap();
                assert_eq!(
                    ex.output_commitment, reference.output_commitment,
                    "{stem} at {threads} threads"
                );
                assert_eq!(
                    ex.trace, reference.trace,
                    "{stem} trace at {threads} threads"
                );
            }
        }
    }
}

#[test]
fn outputs_stay_close_to_onnxruntime() {
    use vouch_types::{Limits, tensor::json::named_from_json};
    for stem in ["iris_mlp", "mnist_cnn", "mlp_784"] {
        let model = load(stem, 1);
        let v: serde_json::Value =
            serde_json::from_slice(&std::fs::read(fixture(&format!("{stem}.input.json"))).unwrap())
                .unwrap();
        let ex = model
            .run(&vouch_engine::inputs_from_json(&model, &v).unwrap())
            .unwrap();
        let v: serde_json::Value = serde_json::from_slice(
            &std::fs::read(fixture(&format!("{stem}.ort_output.json"))).unwrap(),
        )
        .unwrap();
        for (name, want) in named_from_json(&v, |_| None, &Limits::DEFAULT).unwrap() {
            let got = &ex.outputs[&name];
            if let (Ok(g), Ok(w)) = (got.to_vec::<f32>(), want.to_vec::<f32>()) {
                for (g, w) in g.iter().zip(w) {
                    assert!(
                        (g - w).abs() <= 1e-7 + 1e-3 * w.abs(),
                        "{stem}/{name}: {g} vs {w}"
                    );
                }
            } else {
                assert_eq!(got, &want, "{stem}/{name}");
            }
        }
    }
}

fn refusal(what: &str, bytes: &[u8]) -> (String, String) {
    match load_bytes(bytes, 1) {
        Err(EngineError::ProfileUnsupportedOp {
            profile, op, node, ..
        }) => {
            assert_eq!(profile, Profile::ExactFused);
            (op, node)
        }
        other => panic!("{what}: expected a refusal naming the op, got {other:?}"),
    }
}

#[test]
fn operations_from_the_c_library_are_refused_by_name() {
    for op in ["Sin", "Cos", "Atan"] {
        let bytes = model(
            vec![node(op, &["x"], "y")],
            vec![value_info("x", &[Some(4)])],
            value_info("y", &[Some(4)]),
            vec![],
        );
        let (named, node) = refusal(op, &bytes);
        assert_eq!(named, op);
        assert_eq!(node, "y");
        let message = load_bytes(&bytes, 1).unwrap_err().to_string();
        assert!(
            message.contains(op) && message.contains("exact-fused/1"),
            "{message}"
        );
    }
    let pow = model(
        vec![node("Pow", &["x", "e"], "y")],
        vec![value_info("x", &[Some(4)]), value_info("e", &[Some(4)])],
        value_info("y", &[Some(4)]),
        vec![],
    );
    assert!(refusal("Pow", &pow).0.contains("Pow"));
    // ONNX's LogSoftmax is covered: tract rewrites it as Softmax then Ln, both pinned.
    let log_softmax = model(
        vec![node("LogSoftmax", &["x"], "y")],
        vec![value_info("x", &[Some(2), Some(4)])],
        value_info("y", &[Some(2), Some(4)]),
        vec![],
    );
    assert!(load_bytes(&log_softmax, 1).is_ok());
}

fn with_attrs(mut node: pb::NodeProto, attrs: Vec<pb::AttributeProto>) -> pb::NodeProto {
    node.attribute = attrs;
    node
}

fn int_attr(name: &str, i: i64) -> pb::AttributeProto {
    pb::AttributeProto {
        name: name.into(),
        r#type: pb::attribute_proto::AttributeType::Int as i32,
        i,
        ..Default::default()
    }
}

fn float_attr(name: &str, f: f32) -> pb::AttributeProto {
    pb::AttributeProto {
        name: name.into(),
        r#type: pb::attribute_proto::AttributeType::Float as i32,
        f,
        ..Default::default()
    }
}

#[test]
fn a_softmax_row_has_the_same_bits_along_any_axis() {
    // tract walks a non-trailing softmax axis with the C library's exp; the profile runs it as
    // a gathered row through the same steps as a trailing one.
    let softmax = |axis: i64, dims: &[i64]| {
        let d: Vec<Option<i64>> = dims.iter().map(|&v| Some(v)).collect();
        model(
            vec![with_attrs(
                node("Softmax", &["x"], "y"),
                vec![int_attr("axis", axis)],
            )],
            vec![value_info("x", &d)],
            value_info("y", &d),
            vec![],
        )
    };
    let (n, c, w) = (2usize, 7usize, 5usize);
    let x: Vec<f32> = values(5, n * c * w).iter().map(|v| v * 6.0).collect();
    // The same rows laid out with the softmax axis last.
    let mut xt = vec![0f32; x.len()];
    for (i, &v) in x.iter().enumerate() {
        let (a, b, d) = (i / (c * w), (i / w) % c, i % w);
        xt[a * w * c + d * c + b] = v;
    }
    let run = |bytes: &[u8], shape: &[u64], data: Vec<f32>| {
        load_bytes(bytes, 1)
            .unwrap()
            .run(&NamedTensors::from([(
                "x".to_string(),
                tensor(shape, data),
            )]))
            .unwrap()
            .outputs["y"]
            .to_vec::<f32>()
            .unwrap()
    };
    let along_1 = run(
        &softmax(1, &[n as i64, c as i64, w as i64]),
        &[n as u64, c as u64, w as u64],
        x,
    );
    let trailing = run(
        &softmax(-1, &[n as i64, w as i64, c as i64]),
        &[n as u64, w as u64, c as u64],
        xt,
    );
    for (i, v) in along_1.iter().enumerate() {
        let (a, b, d) = (i / (c * w), (i / w) % c, i % w);
        assert_eq!(
            v.to_bits(),
            trailing[a * w * c + d * c + b].to_bits(),
            "element {i}"
        );
    }
}

#[test]
fn lrn_runs_under_the_profile_as_its_documented_formula() {
    // Vouch's LRN (vouch-onnx-ops) replaces tract's, whose powf was the C library's.
    let (size, alpha, beta, bias) = (5usize, 1e-2f32, 0.75f32, 2.0f32);
    let bytes = model(
        vec![with_attrs(
            node("LRN", &["x"], "y"),
            vec![
                int_attr("size", size as i64),
                float_attr("alpha", alpha),
                float_attr("beta", beta),
                float_attr("bias", bias),
            ],
        )],
        vec![value_info("x", &[Some(1), Some(6), Some(3), Some(3)])],
        value_info("y", &[Some(1), Some(6), Some(3), Some(3)]),
        vec![],
    );
    let model = load_bytes(&bytes, 1).unwrap();
    let x: Vec<f32> = values(9, 54).iter().map(|v| v * 8.0).collect();
    let out = model
        .run(&NamedTensors::from([(
            "x".to_string(),
            tensor(&[1, 6, 3, 3], x.clone()),
        )]))
        .unwrap();
    let got = out.outputs["y"].to_vec::<f32>().unwrap();
    // docs/protocol.md: ss in increasing channel order from 0, then
    // x / powf(bias + (alpha / size) * ss, beta) with the pure-Rust libm's powf.
    let want: Vec<f32> = (0..54usize)
        .map(|i| {
            let (c, p) = (i / 9, i % 9);
            let (lo, hi) = (c.saturating_sub(2), (c + 2).min(5));
            let mut ss = 0f32;
            for cc in lo..=hi {
                ss += x[cc * 9 + p] * x[cc * 9 + p];
            }
            x[i] / libm::powf(bias + (alpha / size as f32) * ss, beta)
        })
        .collect();
    assert_eq!(bits(&got), bits(&want));
}

#[test]
fn fourier_transforms_are_refused_by_name() {
    // rustfft picks its algorithm by CPU; tract computes DFT with it.
    let dft = model(
        vec![node("DFT", &["x"], "y")],
        vec![value_info("x", &[Some(1), Some(8), Some(1)])],
        value_info("y", &[Some(1), Some(8), Some(2)]),
        vec![],
    );
    let (op, node) = refusal("DFT", &dft);
    assert!(op.contains("Fft") || op.contains("Dft"), "{op}");
    assert!(node.starts_with('y'), "{node}");
}
