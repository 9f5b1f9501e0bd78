//! Runs the harness binary on a small case directory made here, in ONNX's backend-test layout,
//! from the repository's iris MLP fixture: one case that passes, one whose reference is off, one
//! whose reference has another element type, and one whose model is not ONNX.

use std::{fs, path::Path, process::Command};

use vouch_engine::{EngineConfig, Model};
use vouch_types::{NamedTensors, Tensor, tensor::onnx_pb::to_tensor_proto};

fn write_case(root: &Path, name: &str, model: &[u8], inputs: &[Tensor], outputs: &[Tensor]) {
    let set = root.join("node").join(name).join("test_data_set_0");
    fs::create_dir_all(&set).unwrap();
    fs::write(root.join("node").join(name).join("model.onnx"), model).unwrap();
    for (k, t) in inputs.iter().enumerate() {
        fs::write(set.join(format!("input_{k}.pb")), to_tensor_proto("", t)).unwrap();
    }
    for (k, t) in outputs.iter().enumerate() {
        fs::write(set.join(format!("output_{k}.pb")), to_tensor_proto("", t)).unwrap();
    }
}

#[test]
fn harness_reports_a_pass_a_mismatch_and_named_failures() {
    let model_bytes = fs::read(
        Path::new(env!("CARGO_MANIFEST_DIR")).join("../../tests/fixtures/models/iris_mlp.onnx"),
    )
    .unwrap();
    let x = Tensor::from_vec(vec![2, 4], vec![5.1f32, 3.5, 1.4, 0.2, 6.9, 3.2, 5.7, 2.3]).unwrap();
    // The reference outputs are the engine's own: this test checks the harness's plumbing and
    // comparison, not the engine's numerics.
    let model = Model::load(&model_bytes, &EngineConfig::default()).unwrap();
    let outputs = model
        .run(&NamedTensors::from([("X".to_string(), x.clone())]))
        .unwrap()
        .outputs;
    let label = outputs["label"].clone();
    let probabilities = outputs["probabilities"].clone();
    let mut off = probabilities.to_vec::<f32>().unwrap();
    off[4] += 0.01;
    let off = Tensor::from_vec(probabilities.shape().to_vec(), off).unwrap();
    let label_i32 = Tensor::from_vec(
        label.shape().to_vec(),
        label
            .to_vec::<i64>()
            .unwrap()
            .into_iter()
            .map(|v| v as i32)
            .collect(),
    )
    .unwrap();

    let dir = tempfile::tempdir().unwrap();
    let root = dir.path();
    let inputs = [x];
    write_case(
        root,
        "test_iris_pass",
        &model_bytes,
        &inputs,
        &[label.clone(), probabilities.clone()],
    );
    write_case(
        root,
        "test_iris_mismatch",
        &model_bytes,
        &inputs,
        &[label.clone(), off],
    );
    write_case(
        root,
        "test_iris_dtype",
        &model_bytes,
        &inputs,
        &[label_i32, probabilities],
    );
    write_case(root, "test_not_onnx", b"not a model", &inputs, &[label]);

    let report_path = root.join("report.json");
    let markdown_path = root.join("summary.md");
    let out = Command::new(env!("CARGO_BIN_EXE_vouch-conformance"))
        .arg("--data-dir")
        .arg(root)
        .args([
            "--categories",
            "node",
            "--jobs",
            "2",
            "--min-rate",
            "node=0.5",
        ])
        .arg("--report")
        .arg(&report_path)
        .arg("--markdown")
        .arg(&markdown_path)
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    // 1 of 4 passed: below the 0.5 asked for, so the gate fails the run.
    assert_eq!(
        out.status.code(),
        Some(1),
        "stdout: {stdout}\nstderr: {stderr}"
    );
    assert!(stderr.contains("regression: node: 1/4"), "{stderr}");
    assert!(stdout.contains("node"), "{stdout}");

    let report: serde_json::Value =
        serde_json::from_str(&fs::read_to_string(&report_path).unwrap()).unwrap();
    let reason_of = |name: &str| {
        let case = report["cases"]
            .as_array()
            .unwrap()
            .iter()
            .find(|c| c["name"] == name)
            .unwrap_or_else(|| panic!("{name} missing from the report"));
        (case["passed"].as_bool().unwrap(), case["reason"].clone())
    };
    assert_eq!(reason_of("test_iris_pass"), (true, serde_json::Value::Null));
    let (passed, reason) = reason_of("test_iris_mismatch");
    assert!(!passed);
    assert!(
        reason
            .as_str()
            .unwrap()
            .starts_with("mismatch:probabilities max_abs_err=1.0"),
        "{reason}"
    );
    assert_eq!(
        reason_of("test_iris_dtype"),
        (false, "dtype-mismatch:label".into())
    );
    assert_eq!(
        reason_of("test_not_onnx"),
        (false, "load-error:not-onnx".into())
    );
    assert_eq!(report["categories"][0]["passed"], 1);
    assert_eq!(report["categories"][0]["cases"], 4);
    let markdown = fs::read_to_string(&markdown_path).unwrap();
    assert!(
        markdown.contains("| node | 4 | 1 | 25.0% | 1 |"),
        "{markdown}"
    );
}
