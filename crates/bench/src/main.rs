//! `vouch-bench`: times one model under one profile along two paths (the engine alone; run +
//! trace + signed receipt) and prints JSON. See the crate docs of `vouch_bench`.

use std::{
    io::{BufRead, Write},
    path::PathBuf,
    process::ExitCode,
};

use anyhow::{Context, bail};
use clap::Parser;
use serde_json::json;
use vouch_bench::{Bench, inputs::read_bounded};
use vouch_engine::{EngineConfig, Profile};

/// Latency of Vouch's engine on one model: (a) the engine alone, (b) run + execution trace +
/// signed receipt. Prints JSON (microseconds). A process runs one profile: run it once per profile.
#[derive(Parser)]
#[command(name = "vouch-bench", version)]
struct Args {
    /// The ONNX model file.
    model: PathBuf,
    /// An input tensor, `[NAME=]FILE` (.npy, .pb, or a .json input set); repeatable.
    #[arg(short, long = "input", value_name = "[NAME=]FILE")]
    inputs: Vec<String>,
    /// Determinism profile: exact (exact-portable/1), exact-fused (exact-fused/1) or native
    /// (native/1).
    #[arg(long, default_value = "exact")]
    profile: Profile,
    /// Engine threads (outputs do not depend on it).
    #[arg(long, default_value_t = 1)]
    threads: usize,
    /// Untimed iterations of each path before measuring.
    #[arg(long, default_value_t = 10)]
    warmup: usize,
    /// Timed iterations of each path in all, split evenly over the rounds.
    #[arg(long, default_value_t = 100)]
    iters: usize,
    /// Rounds; each runs both paths, alternating which goes first.
    #[arg(long, default_value_t = 1)]
    rounds: usize,
    /// Let another program pace the rounds, to interleave with another engine: after the
    /// warm-up print `{"event":"ready"}`, then for each line N read from stdin measure a round of
    /// N iterations and print `{"event":"measured"}`; at end of input print the report. Every
    /// message is one line of JSON. --iters and --rounds are ignored.
    #[arg(long)]
    paced: bool,
    /// Write the reference outputs as .npy files in this directory.
    #[arg(long, value_name = "DIR")]
    save_outputs: Option<PathBuf>,
}

/// Exit status when the two paths (or two runs) disagree on the outputs.
const EXIT_OUTPUTS_DIFFER: u8 = 3;

fn main() -> ExitCode {
    let args = Args::parse();
    match run(&args) {
        Ok(identical) if identical => ExitCode::SUCCESS,
        Ok(_) => {
            eprintln!("vouch-bench: outputs differ between runs or between the two paths");
            ExitCode::from(EXIT_OUTPUTS_DIFFER)
        }
        Err(e) => {
            eprintln!("vouch-bench: {e:#}");
            ExitCode::FAILURE
        }
    }
}

/// Returns whether every run gave the same outputs.
fn run(a: &Args) -> anyhow::Result<bool> {
    if a.rounds == 0 && !a.paced {
        bail!("--rounds must be at least 1");
    }
    let config = EngineConfig {
        profile: a.profile,
        threads: a.threads.max(1),
        ..EngineConfig::default()
    };
    let bytes = read_bounded(&a.model, config.max_model_bytes as u64)?;
    let mut bench = Bench::load(&bytes, &config, &a.inputs)
        .with_context(|| format!("benchmarking {}", a.model.display()))?;
    if let Some(dir) = &a.save_outputs {
        bench.save_outputs(dir)?;
    }
    bench.warm_up(a.warmup)?;

    let label = a.model.display().to_string();
    let stdout = std::io::stdout();
    if a.paced {
        let mut out = stdout.lock();
        writeln!(out, "{}", json!({"event": "ready"}))?;
        out.flush()?;
        for line in std::io::stdin().lock().lines() {
            let line = line.context("reading stdin")?;
            let n: usize = line
                .trim()
                .parse()
                .with_context(|| format!("expected an iteration count on stdin, got {line:?}"))?;
            bench.measure(n)?;
            writeln!(out, "{}", json!({"event": "measured", "iterations": n}))?;
            out.flush()?;
        }
        let report = bench.report(&label);
        writeln!(out, "{}", serde_json::to_string(&report)?)?;
        return Ok(report.outputs_identical);
    }
    for round in 0..a.rounds {
        let n = a.iters / a.rounds + usize::from(round < a.iters % a.rounds);
        bench.measure(n)?;
    }
    let report = bench.report(&label);
    println!("{}", serde_json::to_string_pretty(&report)?);
    Ok(report.outputs_identical)
}
