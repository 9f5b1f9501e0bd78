//! `vouch-conformance`: runs ONNX's backend test suite through the Vouch engine.
//!
//! Exit codes: 0 when the run completed (and met the gate, if one was given), 1 when a
//! category's pass rate is below its minimum, 2 when the harness itself could not run.

use std::{
    path::PathBuf,
    process::ExitCode,
    time::{Duration, Instant, SystemTime, UNIX_EPOCH},
};

use anyhow::{Context, Result, bail};
use clap::{Args, Parser, Subcommand};
use indicatif::{ProgressBar, ProgressStyle};
use vouch_conformance::{
    baseline,
    case::run_case,
    report::{Report, category_stats, reason_counts, utc_date},
    runner::{RunnerConfig, limit_memory, run_all},
    suite::{self, CATEGORIES, Case},
};
use vouch_engine::{ENGINE, EngineConfig, Profile};

/// Runs ONNX's backend test cases through the Vouch engine and reports pass rates.
#[derive(Parser, Debug)]
#[command(version, about)]
struct Cli {
    #[command(subcommand)]
    command: Option<Command>,
    #[command(flatten)]
    run: RunArgs,
}

#[derive(Subcommand, Debug)]
enum Command {
    /// Runs one case in this process and prints its outcome as JSON (used by the harness for
    /// each case it runs).
    #[command(hide = true)]
    Case(CaseArgs),
}

#[derive(Args, Debug)]
struct CaseArgs {
    /// Engine profile.
    #[arg(long)]
    profile: String,
    /// Address-space limit in MiB (0: none).
    #[arg(long, default_value_t = 0)]
    memory_limit_mb: u64,
    /// The case, as JSON.
    #[arg(long)]
    case: String,
}

#[derive(Args, Debug)]
struct RunArgs {
    /// ONNX's backend test data: `onnx/backend/test/data` of an installed `onnx` package
    /// (default: the one in ./.venv).
    #[arg(long, env = "VOUCH_CONFORMANCE_DATA")]
    data_dir: Option<PathBuf>,
    /// Categories to run, comma-separated.
    #[arg(long, value_delimiter = ',', default_values_t = CATEGORIES.map(String::from))]
    categories: Vec<String>,
    /// Engine profile: `exact` (exact-portable/1), `exact-fused` (exact-fused/1) or `native`.
    #[arg(long, default_value = "exact")]
    profile: String,
    /// Cases run at once (default: the number of cores).
    #[arg(long)]
    jobs: Option<usize>,
    /// Seconds a case may run before it is killed and counted as `timeout`.
    #[arg(long, default_value_t = 60)]
    timeout: u64,
    /// Address-space limit per case process in MiB (0: none).
    #[arg(long, default_value_t = 4096)]
    memory_limit_mb: u64,
    /// Run only cases whose name contains this.
    #[arg(long)]
    filter: Option<String>,
    /// Write the full JSON report (every case) here.
    #[arg(long)]
    report: Option<PathBuf>,
    /// Write a Markdown summary here.
    #[arg(long)]
    markdown: Option<PathBuf>,
    /// Fail (exit 1) when a category's rate is below the one recorded for this profile in
    /// this baseline file (e.g. crates/conformance/baseline.toml).
    #[arg(long)]
    baseline: Option<PathBuf>,
    /// Fail (exit 1) when a category's rate is below these, e.g. `node=0.70,simple=0.3`
    /// (over the baseline's where both name a category).
    #[arg(long)]
    min_rate: Option<String>,
    /// Record this run's rates for its profile in this baseline file.
    #[arg(long)]
    write_baseline: Option<PathBuf>,
    /// Print the JSON report on stdout instead of the table.
    #[arg(long)]
    json: bool,
    /// Reasons listed in the table.
    #[arg(long, default_value_t = 25)]
    top: usize,
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    let result = match cli.command {
        Some(Command::Case(args)) => run_one(args),
        None => run_suite(cli.run),
    };
    match result {
        Ok(code) => code,
        Err(e) => {
            eprintln!("error: {e:#}");
            ExitCode::from(2)
        }
    }
}

fn parse_profile(name: &str) -> Result<Profile> {
    name.parse::<Profile>().map_err(anyhow::Error::from)
}

/// The hidden `case` subcommand: one case, in this (child) process.
fn run_one(args: CaseArgs) -> Result<ExitCode> {
    // The default hook holds the lock an allocation failure's handler needs: a panic caused by
    // an allocation failure would deadlock there. The message reaches the outcome anyway.
    std::panic::set_hook(Box::new(|info| eprintln!("{info}")));
    limit_memory(args.memory_limit_mb).context("setting the memory limit")?;
    let case: Case = serde_json::from_str(&args.case).context("parsing --case")?;
    let config = EngineConfig {
        profile: parse_profile(&args.profile)?,
        ..EngineConfig::default()
    };
    let outcome = run_case(&case, &config);
    println!(
        "{}",
        serde_json::to_string(&outcome).context("encoding the outcome")?
    );
    Ok(ExitCode::SUCCESS)
}

fn run_suite(args: RunArgs) -> Result<ExitCode> {
    let profile = parse_profile(&args.profile)?;
    let data_dir = match args.data_dir.clone().or_else(suite::default_data_dir) {
        Some(dir) => dir,
        None => bail!(
            "no --data-dir and no onnx package in ./.venv; install one with \
             `python3 -m venv .venv && .venv/bin/pip install onnx==1.19.1`"
        ),
    };
    let mut cases = suite::discover(&data_dir, &args.categories)?;
    if let Some(filter) = &args.filter {
        cases.retain(|c| c.name.contains(filter.as_str()));
    }
    if cases.is_empty() {
        bail!("no cases found under {}", data_dir.display());
    }
    let jobs = args
        .jobs
        .unwrap_or_else(|| std::thread::available_parallelism().map_or(1, |n| n.get()));
    let config = RunnerConfig {
        exe: std::env::current_exe().context("finding this binary")?,
        profile,
        jobs,
        timeout: Duration::from_secs(args.timeout),
        memory_limit_mb: args.memory_limit_mb,
    };

    let started = Instant::now();
    let progress = ProgressBar::new(cases.len() as u64).with_style(
        ProgressStyle::with_template("{bar:40} {pos}/{len} cases [{elapsed}]")
            .expect("the template is valid"),
    );
    let results = run_all(&cases, &config, &|_| progress.inc(1));
    progress.finish_and_clear();

    let categories = category_stats(&results);
    let (reasons, unsupported_ops) = reason_counts(&results);
    let now = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_secs());
    let report = Report {
        date: utc_date(now),
        engine: ENGINE.to_string(),
        profile: profile.name().to_string(),
        onnx_version: suite::onnx_version(&data_dir),
        data_dir: data_dir.display().to_string(),
        command: std::env::args().collect::<Vec<_>>().join(" "),
        seconds: started.elapsed().as_secs_f64(),
        jobs,
        categories,
        reasons,
        unsupported_ops,
        cases: results,
    };
    if let Some(path) = &args.report {
        let json = serde_json::to_string_pretty(&report).context("encoding the report")?;
        std::fs::write(path, json).with_context(|| format!("writing {}", path.display()))?;
    }
    if let Some(path) = &args.markdown {
        std::fs::write(path, report.to_markdown())
            .with_context(|| format!("writing {}", path.display()))?;
    }
    if args.json {
        println!(
            "{}",
            serde_json::to_string_pretty(&report).context("encoding the report")?
        );
    } else {
        print!("{}", report.to_text(args.top));
    }
    if let Some(path) = &args.write_baseline {
        baseline::write(path, profile.name(), &report.categories)?;
        eprintln!("recorded the rates for {} in {}", profile, path.display());
    }

    let mut minimum = baseline::Rates::new();
    if let Some(path) = &args.baseline {
        let recorded = baseline::read(path)?;
        match recorded.get(profile.name()) {
            Some(rates) => minimum.extend(rates.clone()),
            None => bail!("{} records no rates for {profile}", path.display()),
        }
    }
    if let Some(spec) = &args.min_rate {
        minimum.extend(baseline::parse_min_rates(spec)?);
    }
    let regressions = baseline::regressions(&report.categories, &minimum);
    if regressions.is_empty() {
        return Ok(ExitCode::SUCCESS);
    }
    for r in &regressions {
        eprintln!("regression: {r}");
    }
    Ok(ExitCode::from(1))
}
