//! Determinism across CPUs, tested the way another machine would see it: the `vouch` binary runs
//! under qemu-user emulating CPUs with fewer features (`Haswell`: AVX2+FMA, no AVX-512; `qemu64`:
//! SSE2 only), whose CPUID tract reads to pick its kernels, and natively.
//!
//! Under exact-portable/1 every model must give the same output commitment and trace root on
//! every CPU. Under native/1 they must not all agree: that shows the test can see a drift.
//!
//! Needs `qemu-x86_64` (Debian package qemu-user). `.ci/test` installs it and sets
//! `VOUCH_REQUIRE_QEMU=1`, which turns a missing qemu into a failure instead of a skip.

use std::{collections::BTreeSet, path::PathBuf, process::Command};

fn repo(path: &str) -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("../..")
        .join(path)
}

fn qemu() -> Option<String> {
    let found = Command::new("qemu-x86_64")
        .arg("--version")
        .output()
        .is_ok_and(|o| o.status.success());
    match (found, std::env::var_os("VOUCH_REQUIRE_QEMU").is_some()) {
        (true, _) => Some("qemu-x86_64".into()),
        (false, true) => panic!("VOUCH_REQUIRE_QEMU is set but qemu-x86_64 is not installed"),
        (false, false) => {
            eprintln!("skipped: install qemu-user to test other CPUs");
            None
        }
    }
}

/// (output commitment, trace root) of one run, natively (`cpu` = None) or emulated.
fn run(cpu: Option<&str>, stem: &str, profile: &str) -> (String, String) {
    let model = repo(&format!("tests/fixtures/models/{stem}.onnx"));
    let input = repo(&format!("tests/fixtures/models/{stem}.input.npy"));
    let args = [
        "infer",
        model.to_str().unwrap(),
        "-i",
        input.to_str().unwrap(),
        "--ephemeral-key",
        "--json",
        "--profile",
        profile,
    ];
    let vouch = env!("CARGO_BIN_EXE_vouch");
    let o = match cpu {
        None => Command::new(vouch).args(args).output().unwrap(),
        Some(cpu) => Command::new("qemu-x86_64")
            .args(["-cpu", cpu, vouch])
            .args(args)
            .output()
            .unwrap(),
    };
    assert!(
        o.status.success(),
        "{stem} on {cpu:?}: {}",
        String::from_utf8_lossy(&o.stderr)
    );
    let v: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
    let r = &v["receipt"];
    (
        r["output_commitment"].as_str().unwrap().into(),
        r["trace_root"].as_str().unwrap().into(),
    )
}

const CPUS: [Option<&str>; 3] = [None, Some("Haswell"), Some("qemu64")];
const MODELS: [&str; 3] = ["iris_mlp", "mnist_cnn", "mlp_784"];

#[test]
fn exact_profile_is_identical_on_every_cpu() {
    if qemu().is_none() {
        return;
    }
    for stem in MODELS {
        let results: BTreeSet<_> = CPUS.iter().map(|cpu| run(*cpu, stem, "exact")).collect();
        assert_eq!(
            results.len(),
            1,
            "{stem}: exact-portable/1 differs across CPUs: {results:?}"
        );
    }
}

#[test]
fn native_profile_drifts_so_the_test_can_fail() {
    if qemu().is_none() {
        return;
    }
    let distinct: usize = MODELS
        .iter()
        .map(|stem| {
            CPUS.iter()
                .map(|cpu| run(*cpu, stem, "native"))
                .collect::<BTreeSet<_>>()
                .len()
        })
        .max()
        .unwrap();
    assert!(
        distinct > 1,
        "native kernels gave identical bits on every CPU: the matrix can't detect drift"
    );
}
