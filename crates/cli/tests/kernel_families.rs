//! Determinism across CPUs, tested the way another machine would see it: the `vouch` binary runs
//! under qemu-user emulating CPUs with fewer features (`Haswell`: AVX2+FMA, no AVX-512; `qemu64`:
//! SSE2 only), whose CPUID tract reads to pick its kernels, and natively.
//!
//! Under exact-portable/1 and exact-fused/1 every model must give the same output commitment and
//! trace root on every CPU; exact-fused/1 is also run natively with its fallback forced
//! (`VOUCH_EXACT_FUSED_FALLBACK=1`: no extension, Vouch's portable fused kernel), at 1, 2 and 4
//! threads, and on a batch whose rows must each equal the row run alone. Under native/1 the
//! CPUs must not all agree: that shows the test can see a drift.
//!
//! Needs `qemu-x86_64` (Debian package qemu-user). `.ci/test` installs it and sets
//! `VOUCH_REQUIRE_QEMU=1`, which turns a missing qemu into a failure instead of a skip.
//!
//! The arm64 half: with `VOUCH_AARCH64_VOUCH` naming a `vouch` binary built for aarch64
//! (`scripts/arm64_matrix.sh` builds one and runs this), exact-fused/1 must also give this
//! machine's bits under `qemu-aarch64` as a Cortex-A72 (NEON), a Neoverse-N1 (NEON + dot
//! product), an A64FX (SVE 512-bit) and qemu's `max` CPU (SVE2), at 1 and 2 threads.
//! `VOUCH_REQUIRE_AARCH64=1` turns a missing binary into a failure.

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

/// How the binary runs: natively or under an emulated CPU, with extra environment and threads.
#[derive(Clone, Copy, Debug)]
struct Machine {
    cpu: Option<&'static str>,
    env: &'static [(&'static str, &'static str)],
    threads: usize,
    /// Runs the aarch64 build under `qemu-aarch64` (with `cpu`) instead of this machine's.
    arm64: bool,
}

const fn cpu(cpu: Option<&'static str>) -> Machine {
    Machine {
        cpu,
        env: &[],
        threads: 1,
        arm64: false,
    }
}

const fn arm64(cpu: &'static str, threads: usize) -> Machine {
    Machine {
        cpu: Some(cpu),
        env: &[],
        threads,
        arm64: true,
    }
}

/// The aarch64 `vouch` binary, if one was built (see the module docs).
fn arm64_vouch() -> Option<PathBuf> {
    match std::env::var_os("VOUCH_AARCH64_VOUCH") {
        Some(path) => Some(PathBuf::from(path)),
        None if std::env::var_os("VOUCH_REQUIRE_AARCH64").is_some() => {
            panic!("VOUCH_REQUIRE_AARCH64 is set but VOUCH_AARCH64_VOUCH names no binary")
        }
        None => {
            eprintln!("skipped: run scripts/arm64_matrix.sh to test aarch64 CPUs");
            None
        }
    }
}

/// The `infer --json` output of one run.
fn infer(m: Machine, model: &str, input: &std::path::Path, profile: &str) -> serde_json::Value {
    let model = repo(&format!("tests/fixtures/models/{model}.onnx"));
    let threads = m.threads.to_string();
    let args = [
        "infer",
        model.to_str().unwrap(),
        "-i",
        input.to_str().unwrap(),
        "--ephemeral-key",
        "--json",
        "--profile",
        profile,
        "--threads",
        &threads,
    ];
    let vouch = env!("CARGO_BIN_EXE_vouch");
    let mut command = match (m.cpu, m.arm64) {
        (None, _) => Command::new(vouch),
        (Some(cpu), false) => {
            let mut c = Command::new("qemu-x86_64");
            c.args(["-cpu", cpu, vouch]);
            c
        }
        (Some(cpu), true) => {
            let mut c = Command::new("qemu-aarch64");
            let bin = arm64_vouch().expect("an aarch64 machine needs VOUCH_AARCH64_VOUCH");
            c.args(["-cpu", cpu, "-L", "/usr/aarch64-linux-gnu"])
                .arg(bin);
            c
        }
    };
    let o = command
        .args(args)
        .envs(m.env.iter().copied())
        .output()
        .unwrap();
    assert!(
        o.status.success(),
        "{model:?} on {m:?}: {}",
        String::from_utf8_lossy(&o.stderr)
    );
    serde_json::from_slice(&o.stdout).unwrap()
}

/// (output commitment, trace root) of one run.
fn commitments(v: &serde_json::Value) -> (String, String) {
    let r = &v["receipt"];
    (
        r["output_commitment"].as_str().unwrap().into(),
        r["trace_root"].as_str().unwrap().into(),
    )
}

/// (output commitment, trace root) of one run of a fixture on its own input.
fn run(m: Machine, stem: &str, profile: &str) -> (String, String) {
    let input = repo(&format!("tests/fixtures/models/{stem}.input.npy"));
    commitments(&infer(m, stem, &input, profile))
}

/// The CPU families every exact profile must agree on: this machine (AVX-512 where the CI has
/// it), an emulated AVX2+FMA CPU without AVX-512, and an emulated SSE2-only CPU.
const CPUS: [Machine; 3] = [cpu(None), cpu(Some("Haswell")), cpu(Some("qemu64"))];
const MODELS: [&str; 4] = ["iris_mlp", "mnist_cnn", "mlp_784", "ops_zoo"];

/// exact-fused/1 adds this machine with its fallback kernel forced, and more threads.
const FUSED_MACHINES: [Machine; 6] = [
    cpu(None),
    Machine {
        cpu: None,
        env: &[("VOUCH_EXACT_FUSED_FALLBACK", "1")],
        threads: 1,
        arm64: false,
    },
    Machine {
        cpu: None,
        env: &[],
        threads: 2,
        arm64: false,
    },
    Machine {
        cpu: None,
        env: &[],
        threads: 4,
        arm64: false,
    },
    cpu(Some("Haswell")),
    cpu(Some("qemu64")),
];

#[test]
fn exact_profile_is_identical_on_every_cpu() {
    if qemu().is_none() {
        return;
    }
    for stem in MODELS {
        let results: BTreeSet<_> = CPUS.iter().map(|m| run(*m, stem, "exact")).collect();
        assert_eq!(
            results.len(),
            1,
            "{stem}: exact-portable/1 differs across CPUs: {results:?}"
        );
    }
}

#[test]
fn exact_fused_profile_is_identical_on_every_kernel_family_and_thread_count() {
    if qemu().is_none() {
        return;
    }
    for stem in MODELS {
        let results: Vec<_> = FUSED_MACHINES
            .iter()
            .map(|m| (run(*m, stem, "exact-fused/1"), m))
            .collect();
        let distinct: BTreeSet<_> = results.iter().map(|(r, _)| r.clone()).collect();
        assert_eq!(
            distinct.len(),
            1,
            "{stem}: exact-fused/1 differs across kernel families: {results:#?}"
        );
    }
}

/// Writes `{"x": tensor}` with `rows` rows of `row` shape, and returns the path.
fn json_input(dir: &std::path::Path, name: &str, row: &[u64], data: &[f32]) -> PathBuf {
    let len: u64 = row.iter().product();
    let mut shape = vec![data.len() as u64 / len];
    shape.extend_from_slice(row);
    let v = serde_json::json!({"x": {"dtype": "float32", "shape": shape, "data": data}});
    let path = dir.join(format!("{name}.json"));
    std::fs::write(&path, v.to_string()).unwrap();
    path
}

/// Runs a 3-row ops_zoo batch (values from `value(i)`) and its row 1 alone on each machine,
/// asserts row 1 of the batch equals the row alone, and returns each machine's batch
/// (output commitment, trace root).
fn batch_rows_on(
    tag: &str,
    machines: &[Machine],
    value: impl Fn(usize) -> f32,
) -> Vec<((String, String), Machine)> {
    let dir = std::env::temp_dir().join(format!("vouch-{tag}-rows-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let row = [3u64, 16, 16];
    let len = 3 * 16 * 16;
    let data: Vec<f32> = (0..3 * len).map(value).collect();
    let whole = json_input(&dir, "batch", &row, &data);
    let second = json_input(&dir, "row1", &row, &data[len..2 * len]);
    let mut batches = vec![];
    for &m in machines {
        let batched = infer(m, "ops_zoo", &whole, "exact-fused/1");
        let alone = infer(m, "ops_zoo", &second, "exact-fused/1");
        for out in ["probs", "aux"] {
            let all = batched["outputs"][out]["data"].as_array().unwrap();
            let one = alone["outputs"][out]["data"].as_array().unwrap();
            let n = one.len();
            assert_eq!(
                &all[n..2 * n],
                &one[..],
                "ops_zoo/{out} on {m:?}: row 1 of the batch differs from the row alone"
            );
        }
        batches.push((commitments(&batched), m));
    }
    std::fs::remove_dir_all(&dir).unwrap();
    batches
}

#[test]
fn exact_fused_rows_in_a_batch_equal_rows_alone_on_every_cpu() {
    if qemu().is_none() {
        return;
    }
    let machines = [CPUS[0], FUSED_MACHINES[1], CPUS[1], CPUS[2]];
    let batches = batch_rows_on("kernel-families", &machines, |i| {
        ((i * 7919) % 2003) as f32 / 1001.5 - 1.0
    });
    let distinct: BTreeSet<_> = batches.iter().map(|(c, _)| c.clone()).collect();
    assert_eq!(
        distinct.len(),
        1,
        "the batch differs across CPUs: {batches:?}"
    );
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
                .map(|m| run(*m, stem, "native"))
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

/// The aarch64 CPUs the arm64 half runs: NEON only, NEON with dot product, SVE, SVE2.
const ARM64_MACHINES: [Machine; 5] = [
    arm64("cortex-a72", 1),
    arm64("neoverse-n1", 1),
    arm64("a64fx", 1),
    arm64("max", 1),
    arm64("neoverse-n1", 2),
];

#[test]
fn exact_fused_profile_gives_this_machines_bits_on_arm64() {
    if arm64_vouch().is_none() {
        return;
    }
    for stem in MODELS {
        let here = run(cpu(None), stem, "exact-fused/1");
        for m in ARM64_MACHINES {
            assert_eq!(
                run(m, stem, "exact-fused/1"),
                here,
                "{stem}: exact-fused/1 on {m:?} differs from x86_64"
            );
        }
    }
}

#[test]
fn exact_fused_rows_in_a_batch_equal_rows_alone_on_arm64() {
    if arm64_vouch().is_none() {
        return;
    }
    let machines = [cpu(None), ARM64_MACHINES[0], ARM64_MACHINES[2]];
    let batches = batch_rows_on("arm64", &machines, |i| {
        ((i * 104729) % 4001) as f32 / 2000.5 - 1.0
    });
    let here = &batches[0].0;
    for (c, m) in &batches[1..] {
        assert_eq!(c, here, "the batch on {m:?} differs from x86_64");
    }
}
