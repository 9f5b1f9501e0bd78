//! Latency benchmark of Vouch's engine: times one model on fixed inputs along two paths, the
//! engine alone ([`Model::run_without_trace`]) and what an operator does per request
//! ([`Model::run`] with its execution trace, then the receipt and its secp256k1 signature), and
//! checks that both paths give the same outputs bit for bit.
//!
//! Entry points: [`Bench::load`] (model, inputs, one reference run of each path),
//! [`Bench::warm_up`], [`Bench::measure`] (one round of timed iterations; rounds alternate which
//! path goes first) and [`Bench::report`] (the [`Report`] that `vouch-bench` prints as JSON). The
//! comparison with onnxruntime lives in `scripts/bench_vs_ort.py`, which drives the binary.
//! Not here: statistics beyond percentiles, and anything about timing assertions (tests check
//! behaviour only).

pub mod inputs;
pub mod latency;

use std::{
    hint::black_box,
    path::{Path, PathBuf},
    time::{Duration, Instant, SystemTime, UNIX_EPOCH},
};

use k256::ecdsa::SigningKey;
use serde::Serialize;
use vouch_engine::{EngineConfig, EngineError, Model, profile};
use vouch_types::{
    Address, DType, NamedTensors, Nonce, ReceiptError,
    tensor::{commit_le_payload, npy},
};

use crate::latency::{Latency, Samples};

/// What went wrong preparing or running a benchmark.
#[derive(Debug, thiserror::Error)]
pub enum BenchError {
    /// The engine refused the model or failed running it.
    // The causes are shown in the message, not chained as `source`, so that a report printed
    // with its chain does not say them twice.
    #[error("{context}: {error}")]
    Engine {
        /// What the benchmark was doing.
        context: &'static str,
        /// The engine's error.
        error: EngineError,
    },
    /// Signing the receipt failed.
    #[error("signing the receipt: {0}")]
    Receipt(ReceiptError),
    /// An input file that can't be used.
    #[error("{0}")]
    Input(String),
    /// A file that can't be read or written.
    #[error("{}: {error}", path.display())]
    Io {
        /// The file.
        path: PathBuf,
        /// The OS error.
        error: std::io::Error,
    },
}

fn engine(context: &'static str) -> impl FnOnce(EngineError) -> BenchError {
    move |error| BenchError::Engine { context, error }
}

/// A fixed operator key: receipts made here prove nothing, they only cost what real ones cost.
const BENCH_KEY: [u8; 32] = [0x42; 32];

/// One model loaded with its inputs, and the timings taken so far.
pub struct Bench {
    model: Model,
    inputs: NamedTensors,
    threads: usize,
    key: SigningKey,
    operator: Address,
    load_time: Duration,
    hash_mib_per_s: f64,
    /// Outputs of the first engine-alone run; every later run of either path is compared to it.
    reference: NamedTensors,
    trace_nodes: u32,
    warmup: usize,
    rounds: usize,
    runs: u64,
    mismatched_runs: u64,
    alone: Samples,
    with_receipt: Samples,
    run_with_trace: Samples,
    receipt_and_sign: Samples,
    saved: Vec<(String, PathBuf)>,
}

impl std::fmt::Debug for Bench {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Bench")
            .field("model", &self.model)
            .field("rounds", &self.rounds)
            .finish_non_exhaustive()
    }
}

impl Bench {
    /// Loads the model under `config` (timed), reads its inputs (`[NAME=]FILE`, see
    /// [`inputs::read_inputs`]) and runs each path once for the reference outputs.
    pub fn load(
        model_bytes: &[u8],
        config: &EngineConfig,
        input_specs: &[String],
    ) -> Result<Bench, BenchError> {
        let start = Instant::now();
        let model = Model::load(model_bytes, config).map_err(engine("loading the model"))?;
        let load_time = start.elapsed();
        let inputs = inputs::read_inputs(&model, input_specs)?;
        model
            .check_inputs(&inputs)
            .map_err(engine("checking the inputs"))?;
        let reference = model
            .run_without_trace(&inputs)
            .map_err(engine("running the model"))?;
        let key = SigningKey::from_slice(&BENCH_KEY).expect("a valid fixed secp256k1 scalar");
        let mut bench = Bench {
            operator: Address::from_private_key(&key),
            key,
            model,
            inputs,
            threads: config.threads,
            load_time,
            hash_mib_per_s: hash_throughput(),
            reference,
            trace_nodes: 0,
            warmup: 0,
            rounds: 0,
            runs: 1,
            mismatched_runs: 0,
            alone: Samples::default(),
            with_receipt: Samples::default(),
            run_with_trace: Samples::default(),
            receipt_and_sign: Samples::default(),
            saved: Vec::new(),
        };
        bench.step_with_receipt()?;
        Ok(bench)
    }

    /// Runs each path `iterations` times without recording the timings (outputs are still
    /// checked).
    pub fn warm_up(&mut self, iterations: usize) -> Result<(), BenchError> {
        for _ in 0..iterations {
            self.step_alone()?;
            self.step_with_receipt()?;
        }
        self.warmup += iterations;
        Ok(())
    }

    /// One round: `iterations` timed runs of each path, one path after the other. Even rounds
    /// start with the engine alone, odd rounds with the receipt path, so that drift in the
    /// machine's speed falls on both alike.
    pub fn measure(&mut self, iterations: usize) -> Result<(), BenchError> {
        let alone_first = self.rounds.is_multiple_of(2);
        for pass in 0..2 {
            if (pass == 0) == alone_first {
                for _ in 0..iterations {
                    let d = self.step_alone()?;
                    self.alone.push(d);
                }
            } else {
                for _ in 0..iterations {
                    let (run, sign) = self.step_with_receipt()?;
                    self.run_with_trace.push(run);
                    self.receipt_and_sign.push(sign);
                    self.with_receipt.push(run + sign);
                }
            }
        }
        self.rounds += 1;
        Ok(())
    }

    /// One engine-alone run; returns its time.
    fn step_alone(&mut self) -> Result<Duration, BenchError> {
        let start = Instant::now();
        let outputs = self
            .model
            .run_without_trace(black_box(&self.inputs))
            .map_err(engine("running the model"))?;
        let elapsed = start.elapsed();
        self.check(&outputs);
        Ok(elapsed)
    }

    /// One run with trace, receipt and signature; returns the time of the run and of the
    /// receipt + signature.
    fn step_with_receipt(&mut self) -> Result<(Duration, Duration), BenchError> {
        // A distinct nonce per request, as an operator would use.
        let mut nonce = [0u8; 32];
        nonce[24..].copy_from_slice(&self.runs.to_be_bytes());
        let start = Instant::now();
        let execution = self
            .model
            .run(black_box(&self.inputs))
            .map_err(engine("running the model with its trace"))?;
        let ran = Instant::now();
        let timestamp = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map_or(0, |d| d.as_secs());
        let signed = execution
            .receipt(&self.model, self.operator, timestamp, Nonce(nonce))
            .sign(&self.key)
            .map_err(BenchError::Receipt)?;
        let signed_at = Instant::now();
        black_box(&signed);
        self.trace_nodes = execution.trace.size();
        self.check(&execution.outputs);
        Ok((ran - start, signed_at - ran))
    }

    fn check(&mut self, outputs: &NamedTensors) {
        self.runs += 1;
        if *outputs != self.reference {
            self.mismatched_runs += 1;
        }
    }

    /// Writes the reference outputs as `.npy` files in `dir` (one per output, named after it),
    /// for comparing with another engine; the report lists them.
    pub fn save_outputs(&mut self, dir: &Path) -> Result<(), BenchError> {
        let io = |path: &Path| {
            let path = path.to_path_buf();
            move |error| BenchError::Io { path, error }
        };
        std::fs::create_dir_all(dir).map_err(io(dir))?;
        self.saved.clear();
        for (name, t) in &self.reference {
            let stem: String = name
                .chars()
                .map(|c| {
                    if c.is_ascii_alphanumeric() || "-_.".contains(c) {
                        c
                    } else {
                        '_'
                    }
                })
                .collect();
            let path = dir.join(format!("{stem}.npy"));
            std::fs::write(&path, npy::to_npy(t)).map_err(io(&path))?;
            self.saved.push((name.clone(), path));
        }
        Ok(())
    }

    /// The model being measured.
    pub fn model(&self) -> &Model {
        &self.model
    }

    /// Everything measured so far.
    pub fn report(&self, label: &str) -> Report {
        let alone = self.alone.summary();
        let with_receipt = self.with_receipt.summary();
        Report {
            model: label.to_string(),
            model_id: self.model.id().to_string(),
            engine: vouch_engine::ENGINE,
            profile: self.model.profile().name(),
            kernel_isa: profile::kernel_isa(),
            threads: self.threads,
            load_ms: self.load_time.as_secs_f64() * 1e3,
            hash_mib_per_s: self.hash_mib_per_s,
            warmup: self.warmup,
            rounds: self.rounds,
            trace_overhead_p50_us: with_receipt.p50_us - alone.p50_us,
            engine_alone: alone,
            with_receipt,
            run_with_trace: self.run_with_trace.summary(),
            receipt_and_sign: self.receipt_and_sign.summary(),
            trace_nodes: self.trace_nodes,
            runs_checked: self.runs,
            outputs_identical: self.mismatched_runs == 0,
            outputs: self
                .reference
                .iter()
                .map(|(name, t)| OutputInfo {
                    name: name.clone(),
                    dtype: t.dtype().name(),
                    shape: t.shape().to_vec(),
                    commitment: t.commitment().to_string(),
                    file: self
                        .saved
                        .iter()
                        .find(|(n, _)| n == name)
                        .map(|(_, p)| p.display().to_string()),
                })
                .collect(),
        }
    }
}

/// MiB/s of [`commit_le_payload`] over 16 MiB (the best of 3), as the trace commits tensors.
pub fn hash_throughput() -> f64 {
    let payload = vec![0x5au8; 16 << 20];
    let best = (0..3)
        .map(|_| {
            let start = Instant::now();
            black_box(commit_le_payload(
                DType::F32,
                &[payload.len() as u64 / 4],
                black_box(&payload),
            ));
            start.elapsed()
        })
        .min()
        .expect("3 timings");
    16.0 / best.as_secs_f64()
}

/// What `vouch-bench` prints: the timings of both paths and the facts needed to read them.
#[derive(Clone, Debug, Serialize)]
pub struct Report {
    /// The model as named on the command line.
    pub model: String,
    /// The model's content id.
    pub model_id: String,
    /// Engine and tract version.
    pub engine: &'static str,
    /// Determinism profile the model ran under.
    pub profile: &'static str,
    /// Instruction sets tract's kernels could use (`x86_64` alone under the exact profile).
    pub kernel_isa: String,
    /// Threads given to the engine.
    pub threads: usize,
    /// Time to parse, check, optimise and plan the model.
    pub load_ms: f64,
    /// Speed of the tensor commitment (SHA-256) on this machine: the trace hashes every node's
    /// outputs, so the trace overhead divided by this is roughly the bytes it hashed.
    pub hash_mib_per_s: f64,
    /// Untimed iterations of each path before measuring.
    pub warmup: usize,
    /// Rounds measured (each path runs once per round, alternating which goes first).
    pub rounds: usize,
    /// (a) `run_without_trace`: the engine alone.
    pub engine_alone: Latency,
    /// (b) `run` (trace, input and output commitments) + receipt + signature.
    pub with_receipt: Latency,
    /// The `run` part of (b).
    pub run_with_trace: Latency,
    /// The receipt + signature part of (b).
    pub receipt_and_sign: Latency,
    /// p50 of (b) minus p50 of (a).
    pub trace_overhead_p50_us: f64,
    /// Nodes in the execution trace.
    pub trace_nodes: u32,
    /// Runs whose outputs were compared with the reference (both paths, warm-up included).
    pub runs_checked: u64,
    /// Whether every run of both paths gave the reference outputs bit for bit.
    pub outputs_identical: bool,
    /// The reference outputs.
    pub outputs: Vec<OutputInfo>,
}

/// One output of the reference run.
#[derive(Clone, Debug, Serialize)]
pub struct OutputInfo {
    /// Output name.
    pub name: String,
    /// Element type.
    pub dtype: &'static str,
    /// Shape.
    pub shape: Vec<u64>,
    /// Vouch's tensor commitment.
    pub commitment: String,
    /// Where [`Bench::save_outputs`] wrote it, if it did.
    pub file: Option<String>,
}
