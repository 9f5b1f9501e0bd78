//! The benchmark's code paths on the iris fixture, a few iterations each: behaviour only, never
//! timing.

use std::{
    io::Write,
    path::PathBuf,
    process::{Command, Stdio},
};

use serde_json::Value;
use vouch_bench::Bench;
use vouch_engine::EngineConfig;

fn fixture(name: &str) -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("../../tests/fixtures/models")
        .join(name)
}

fn iris_bytes() -> Vec<u8> {
    std::fs::read(fixture("iris_mlp.onnx")).expect("the iris fixture is committed")
}

const LATENCY_FIELDS: [&str; 7] = [
    "iterations",
    "p50_us",
    "p90_us",
    "p99_us",
    "mean_us",
    "min_us",
    "max_us",
];

fn assert_latency(v: &Value, iterations: u64) {
    for f in LATENCY_FIELDS {
        assert!(v[f].is_number(), "missing {f} in {v}");
    }
    assert_eq!(v["iterations"], iterations);
    let p = |f: &str| v[f].as_f64().unwrap();
    assert!(p("min_us") <= p("p50_us") && p("p50_us") <= p("p90_us"));
    assert!(p("p90_us") <= p("p99_us") && p("p99_us") <= p("max_us"));
}

#[test]
fn both_paths_give_identical_outputs_and_the_report_has_its_fields() {
    let input = fixture("iris_mlp.input.npy").display().to_string();
    let mut bench = Bench::load(&iris_bytes(), &EngineConfig::default(), &[input])
        .expect("the iris model loads under the exact profile");
    bench.warm_up(1).unwrap();
    bench.measure(2).unwrap();
    bench.measure(1).unwrap();
    let out = tempdir("outputs");
    bench.save_outputs(&out).unwrap();

    let report = bench.report("iris_mlp.onnx");
    assert!(report.outputs_identical);
    // 1 reference run per path, 1 warm-up per path, 3 timed per path.
    assert_eq!(report.runs_checked, 10);
    assert_eq!(report.rounds, 2);
    assert!(report.trace_nodes > 0);
    assert_eq!(report.profile, "exact-portable/1");
    assert_eq!(report.kernel_isa, "x86_64");

    let v = serde_json::to_value(&report).unwrap();
    for path in [
        "engine_alone",
        "with_receipt",
        "run_with_trace",
        "receipt_and_sign",
    ] {
        assert_latency(&v[path], 3);
    }
    for f in [
        "model_id",
        "engine",
        "threads",
        "load_ms",
        "trace_overhead_p50_us",
        "warmup",
    ] {
        assert!(!v[f].is_null(), "missing {f}");
    }
    let names: Vec<&str> = v["outputs"]
        .as_array()
        .unwrap()
        .iter()
        .map(|o| o["name"].as_str().unwrap())
        .collect();
    assert_eq!(names, ["label", "probabilities"]);
    for o in v["outputs"].as_array().unwrap() {
        let file = o["file"].as_str().expect("saved outputs are listed");
        assert!(std::fs::read(file).unwrap().starts_with(b"\x93NUMPY"));
    }
}

#[test]
fn a_json_input_set_is_read_like_the_npy_file() {
    let npy = fixture("iris_mlp.input.npy").display().to_string();
    let json = fixture("iris_mlp.input.json").display().to_string();
    let a = Bench::load(&iris_bytes(), &EngineConfig::default(), &[npy]).unwrap();
    let b = Bench::load(&iris_bytes(), &EngineConfig::default(), &[json]).unwrap();
    let commitments = |bench: &Bench| {
        bench
            .report("")
            .outputs
            .into_iter()
            .map(|o| o.commitment)
            .collect::<Vec<_>>()
    };
    assert_eq!(commitments(&a), commitments(&b));
}

#[test]
fn a_missing_input_is_an_error() {
    let err = Bench::load(&iris_bytes(), &EngineConfig::default(), &[]).unwrap_err();
    assert!(err.to_string().contains("missing input"), "{err}");
}

/// The binary in paced mode, under the native profile (a process of its own).
#[test]
fn paced_binary_follows_its_protocol() {
    let mut child = Command::new(env!("CARGO_BIN_EXE_vouch-bench"))
        .arg(fixture("iris_mlp.onnx"))
        .args([
            "--input",
            &format!("X={}", fixture("iris_mlp.input.npy").display()),
        ])
        .args(["--profile", "native", "--warmup", "1", "--paced"])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    child.stdin.take().unwrap().write_all(b"2\n1\n").unwrap();
    let out = child.wait_with_output().unwrap();
    assert!(out.status.success(), "{out:?}");
    let lines: Vec<Value> = String::from_utf8(out.stdout)
        .unwrap()
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    assert_eq!(lines.len(), 4, "{lines:?}");
    assert_eq!(lines[0]["event"], "ready");
    assert_eq!(lines[1]["event"], "measured");
    assert_eq!(lines[2]["iterations"], 1);
    let report = &lines[3];
    assert_eq!(report["profile"], "native/1");
    assert_eq!(report["rounds"], 2);
    assert_eq!(report["outputs_identical"], true);
    assert_latency(&report["engine_alone"], 3);
    assert_latency(&report["with_receipt"], 3);
}

fn tempdir(what: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("vouch-bench-test-{what}-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    dir
}
