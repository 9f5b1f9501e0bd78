//! `vouch verify`: every check a receipt allows, each reported on its own.

use std::path::PathBuf;

use clap::Args;
use serde::Serialize;
use serde_json::json;
use vouch_engine::{ENGINE, EngineConfig, Model, Profile};
use vouch_types::{
    Address, ModelId, SignedReceipt,
    receipt::MAX_RECEIPT_JSON_BYTES,
    tensor::{commit_named, json::named_from_json},
};

use super::engine_config;
use crate::{
    EngineArgs, InputArgs,
    exit::{CliError, Exit, WithExit, fail},
    inputs::{InputSchema, MAX_JSON_BYTES, read_bounded, read_inputs},
    print::json_out,
};

/// Arguments of `vouch verify`.
#[derive(Args)]
pub struct VerifyArgs {
    /// The receipt file.
    receipt: PathBuf,
    /// The model file the receipt should name; with inputs, it is also re-executed.
    #[arg(long)]
    model: Option<PathBuf>,
    #[command(flatten)]
    inputs: InputArgs,
    /// The outputs the receipt should commit to (JSON, as `vouch infer --outputs` writes).
    #[arg(long, value_name = "FILE")]
    outputs: Option<PathBuf>,
    /// The nonce the request used.
    #[arg(long)]
    nonce: Option<String>,
    /// The operator address expected to have signed.
    #[arg(long)]
    operator: Option<String>,
    /// Don't re-execute the model, only compare commitments.
    #[arg(long)]
    no_exec: bool,
    /// A transparency-log proof bundle (c2sp.org/tlog-proof) for the receipt.
    #[arg(long, value_name = "FILE", requires = "log_key")]
    log_proof: Option<PathBuf>,
    /// The log's public key (`origin+id+base64`), to check the proof against.
    #[arg(long, value_name = "VKEY")]
    log_key: Option<String>,
    /// A witness's public key whose cosignature counts (repeatable).
    #[arg(long = "witness", value_name = "VKEY")]
    witnesses: Vec<String>,
    /// Witness cosignatures required on the log checkpoint.
    #[arg(long, default_value_t = 0)]
    min_witnesses: usize,
    #[command(flatten)]
    engine: EngineArgs,
    /// Print JSON.
    #[arg(long)]
    json: bool,
}

/// The outcome of one check.
#[derive(Serialize, Clone, Copy, PartialEq, Eq)]
#[serde(rename_all = "snake_case")]
pub enum Status {
    /// The check was made and holds.
    Pass,
    /// The check was made and fails.
    Fail,
    /// The check couldn't be made (what's missing is said).
    NotChecked,
}

#[derive(Serialize)]
struct Check {
    check: &'static str,
    status: Status,
    detail: String,
}

/// The checks made, in order.
#[derive(Default)]
pub struct Report(Vec<Check>);

impl Report {
    /// Records a check.
    pub fn add(
        &mut self,
        check: &'static str,
        status: Status,
        detail: impl Into<String>,
    ) -> Status {
        self.0.push(Check {
            check,
            status,
            detail: detail.into(),
        });
        status
    }
    fn pass_if(
        &mut self,
        check: &'static str,
        ok: bool,
        pass: impl Into<String>,
        fail: impl Into<String>,
    ) -> Status {
        if ok {
            self.add(check, Status::Pass, pass)
        } else {
            self.add(check, Status::Fail, fail)
        }
    }
}

/// What a verifier holds besides the receipt; each piece present enables more checks.
#[derive(Default)]
pub struct Evidence<'a> {
    /// The operator expected to sign.
    pub operator: Option<Address>,
    /// The nonce of the request.
    pub nonce: Option<vouch_types::Nonce>,
    /// A model file: its label and id.
    pub model_id: Option<(String, ModelId)>,
    /// The model prepared to run (only when its id matched).
    pub model: Option<&'a Model>,
    /// The inputs.
    pub inputs: Option<&'a vouch_types::NamedTensors>,
    /// The outputs as received.
    pub outputs: Option<&'a vouch_types::NamedTensors>,
    /// Skip re-execution.
    pub no_exec: bool,
}

/// Runs every check the evidence allows.
pub fn check(signed: &SignedReceipt, ev: &Evidence) -> Result<Report, CliError> {
    let r = &signed.receipt;
    let mut report = Report::default();
    match signed.verify_signature() {
        Ok(()) => report.add(
            "signature",
            Status::Pass,
            format!("signed by {}", r.operator.to_checksum(None)),
        ),
        Err(e) => report.add("signature", Status::Fail, e.to_string()),
    };
    if let Some(expected) = ev.operator {
        report.pass_if(
            "operator",
            expected == r.operator,
            format!("{} as expected", r.operator.to_checksum(None)),
            format!(
                "receipt names {}, expected {}",
                r.operator.to_checksum(None),
                expected.to_checksum(None)
            ),
        );
    }
    if let Some(n) = ev.nonce {
        report.pass_if(
            "nonce",
            n == r.nonce,
            "matches the request",
            format!("receipt has {}, the request used {n}", r.nonce),
        );
    }
    let model_ok = ev.model_id.as_ref().map(|(label, id)| {
        report.pass_if(
            "model",
            *id == r.model,
            format!("{label} is {}", r.model),
            format!("{label} is {id}, the receipt names {}", r.model),
        ) == Status::Pass
    });
    let inputs_ok = match ev.inputs {
        Some(inputs) => {
            let c = commit_named(inputs).exit(Exit::InvalidInput)?;
            Some(
                report.pass_if(
                    "inputs",
                    c == r.input_commitment,
                    format!("commitment {c}"),
                    format!(
                        "the inputs commit to {c}, the receipt to {}",
                        r.input_commitment
                    ),
                ) == Status::Pass,
            )
        }
        None => None,
    };
    if let Some(outputs) = ev.outputs {
        let c = commit_named(outputs).exit(Exit::InvalidInput)?;
        report.pass_if(
            "outputs",
            c == r.output_commitment,
            format!("commitment {c}"),
            format!(
                "the outputs commit to {c}, the receipt to {}",
                r.output_commitment
            ),
        );
    }
    if ev.no_exec {
        report.add("re-execution", Status::NotChecked, "skipped (--no-exec)");
    } else if model_ok == Some(false) {
        report.add(
            "re-execution",
            Status::NotChecked,
            "skipped: the model file is not the receipt's model",
        );
    } else if inputs_ok == Some(false) {
        report.add(
            "re-execution",
            Status::NotChecked,
            "skipped: the inputs are not the receipt's inputs",
        );
    } else if Profile::from_name(&r.profile).is_none() {
        report.add(
            "re-execution",
            Status::Fail,
            format!(
                "the receipt's profile {:?} is unknown to this engine ({ENGINE})",
                r.profile
            ),
        );
    } else if let (Some(model), Some(inputs)) = (ev.model, ev.inputs) {
        reexecute(&mut report, model, inputs, signed);
    } else {
        report.add(
            "re-execution",
            Status::NotChecked,
            "needs --model and inputs",
        );
    }
    Ok(report)
}

impl Report {
    /// Keeps only the checks `keep` accepts (by name).
    pub fn retain(&mut self, keep: impl Fn(&str) -> bool) {
        self.0.retain(|c| keep(c.check));
    }

    /// The checks as JSON.
    pub fn to_json(&self) -> serde_json::Value {
        serde_json::to_value(&self.0).expect("checks serialize")
    }

    /// Whether any check failed.
    pub fn failed(&self) -> bool {
        self.0.iter().any(|c| c.status == Status::Fail)
    }

    /// One line per check.
    pub fn print(&self) {
        self.print_indented("");
    }

    /// One line per check, indented.
    pub fn print_indented(&self, indent: &str) {
        for c in &self.0 {
            let mark = match c.status {
                Status::Pass => "ok  ",
                Status::Fail => "FAIL",
                Status::NotChecked => "--  ",
            };
            println!("{indent}{mark} {:<13} {}", c.check, c.detail);
        }
    }

    /// The first failure, if any.
    pub fn first_failure(&self) -> Option<String> {
        self.0
            .iter()
            .find(|c| c.status == Status::Fail)
            .map(|c| format!("{}: {}", c.check, c.detail))
    }
}

/// Runs `vouch verify`.
pub fn run(a: VerifyArgs) -> Result<(), CliError> {
    let bytes = read_bounded(&a.receipt, MAX_RECEIPT_JSON_BYTES as u64)?;
    let signed = SignedReceipt::from_json_bytes(&bytes).exit_ctx(Exit::InvalidInput, || {
        format!("reading receipt {}", a.receipt.display())
    })?;
    let r = &signed.receipt;
    let operator = match &a.operator {
        Some(o) => Some(
            o.parse::<Address>()
                .exit_ctx(Exit::InvalidInput, || "--operator".into())?,
        ),
        None => None,
    };
    let nonce = match &a.nonce {
        Some(n) => Some(
            n.parse()
                .exit_ctx(Exit::InvalidInput, || "--nonce".into())?,
        ),
        None => None,
    };
    let has_inputs = !a.inputs.input.is_empty() || a.inputs.input_json.is_some();
    let mut config: EngineConfig = engine_config(&a.engine)?;
    // Re-execution runs the profile the receipt names, whatever --profile says.
    if let Some(p) = Profile::from_name(&r.profile) {
        config.profile = p;
    }
    let mut model_id = None;
    let mut model = None;
    if let Some(path) = &a.model {
        let b = read_bounded(path, a.engine.max_model_bytes as u64)?;
        let id = ModelId::of_bytes(&b);
        // Prepared only when it is the receipt's model and there are inputs to run it on; its
        // declared dtypes are then also what the inputs are read with.
        if id == r.model && has_inputs && !a.no_exec && Profile::from_name(&r.profile).is_some() {
            model = Some(Model::load(&b, &config).map_err(|e| {
                fail(
                    crate::exit::engine_exit(&e),
                    format!("loading the model: {e}"),
                )
            })?);
        }
        model_id = Some((path.display().to_string(), id));
    }
    let inputs = if has_inputs {
        let schema = match &model {
            Some(m) => super::schema(m),
            None => InputSchema {
                inputs: vec![],
                limits: config.limits,
            },
        };
        Some(read_inputs(
            &a.inputs.input,
            a.inputs.input_json.as_deref(),
            &schema,
        )?)
    } else {
        None
    };
    let outputs = match &a.outputs {
        Some(path) => {
            let b = read_bounded(path, MAX_JSON_BYTES)?;
            let v: serde_json::Value = serde_json::from_slice(&b)
                .exit_ctx(Exit::InvalidInput, || {
                    format!("{} is not JSON", path.display())
                })?;
            Some(
                named_from_json(&v, |_| None, &config.limits)
                    .exit_ctx(Exit::InvalidInput, || {
                        format!("reading outputs {}", path.display())
                    })?,
            )
        }
        None => None,
    };
    let evidence = Evidence {
        operator,
        nonce,
        model_id,
        model: model.as_ref(),
        inputs: inputs.as_ref(),
        outputs: outputs.as_ref(),
        no_exec: a.no_exec,
    };
    let mut report = check(&signed, &evidence)?;
    if let (Some(path), Some(key)) = (&a.log_proof, &a.log_key) {
        let bytes = read_bounded(path, 1 << 20)?;
        let text = String::from_utf8(bytes).exit_ctx(Exit::InvalidInput, || {
            format!("{} is not text", path.display())
        })?;
        super::remote::check_log_proof(
            &mut report,
            &signed,
            &text,
            key,
            true,
            &a.witnesses,
            a.min_witnesses,
        )?;
    }
    let failed = report.failed();
    if a.json {
        json_out(
            &json!({"valid": !failed, "receipt": a.receipt.display().to_string(), "checks": report.0}),
        );
    } else {
        report.print();
        let unchecked = report
            .0
            .iter()
            .filter(|c| c.status == Status::NotChecked)
            .count();
        if failed {
            println!(
                "receipt INVALID: {} check(s) failed",
                report.0.iter().filter(|c| c.status == Status::Fail).count()
            );
        } else if unchecked > 0 {
            println!("receipt valid for the checks made ({unchecked} not made)");
        } else {
            println!("receipt valid");
        }
    }
    if failed {
        return Err(fail(Exit::VerificationFailed, "verification failed"));
    }
    Ok(())
}

fn reexecute(
    report: &mut Report,
    model: &Model,
    inputs: &vouch_types::NamedTensors,
    signed: &SignedReceipt,
) {
    let r = &signed.receipt;
    let execution = match model.run(inputs) {
        Ok(e) => e,
        Err(e) => {
            report.add(
                "re-execution",
                Status::Fail,
                format!("the model did not run: {e}"),
            );
            return;
        }
    };
    let same_engine = r.engine == ENGINE;
    let caveat = if !same_engine {
        format!(
            " (the receipt was made by {:?}, this is {ENGINE:?})",
            r.engine
        )
    } else if !model.profile().is_exact() {
        format!(
            " (profile {} is not reproducible across machines)",
            r.profile
        )
    } else {
        String::new()
    };
    report.pass_if(
        "re-execution",
        execution.output_commitment == r.output_commitment,
        format!("outputs reproduced bit for bit under {}", r.profile),
        format!(
            "re-running gives outputs {}, the receipt claims {}{caveat}",
            execution.output_commitment, r.output_commitment
        ),
    );
    report.pass_if(
        "trace",
        execution.trace.root == r.trace_root && execution.trace.size() == r.trace_size,
        format!(
            "root {} over {} nodes reproduced",
            r.trace_root, r.trace_size
        ),
        format!(
            "re-running gives trace {} over {} nodes, the receipt claims {} over {}{caveat}",
            execution.trace.root,
            execution.trace.size(),
            r.trace_root,
            r.trace_size
        ),
    );
}
