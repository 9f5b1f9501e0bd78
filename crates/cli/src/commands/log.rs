//! `vouch log checkpoint | prove | consistency | monitor`: reading and auditing a node's
//! transparency log.

use std::{path::PathBuf, time::Duration};

use base64::{Engine as _, engine::general_purpose::STANDARD as BASE64};
use clap::{Args, Subcommand};
use serde_json::{Value, json};
use vouch_log::{
    CosignatureVerifier, Hash, NoteVerifier, SignedCheckpoint, WitnessPolicy,
    checkpoint::check_consistent,
};
use vouch_types::{SignedReceipt, receipt::MAX_RECEIPT_JSON_BYTES};

use super::{
    hub::NodeUrl,
    infer::write_atomic,
    remote::check_log_proof,
    verify::{Report, Status},
};
use crate::{
    client::NodeClient,
    exit::{CliError, Exit, WithExit, fail},
    inputs::read_bounded,
    print::json_out,
};

/// `vouch log …`.
#[derive(Subcommand)]
pub enum LogCommand {
    /// Fetch and check the log's latest checkpoint.
    Checkpoint(CheckpointArgs),
    /// Prove that a receipt is in the log (fetches and checks its inclusion proof).
    Prove(ProveArgs),
    /// Check that one checkpoint extends another (detects a forked log).
    Consistency(ConsistencyArgs),
    /// Follow the log: check each new checkpoint extends the last one seen, and every new entry
    /// is a validly signed receipt.
    Monitor(MonitorArgs),
}

/// The log key and witness policy to check against.
#[derive(Args, Clone)]
pub struct Trust {
    /// The log's note key, `origin+id+base64` (get it out of band; /healthz shows the node's).
    #[arg(long, value_name = "VKEY")]
    log_key: String,
    /// A witness key whose cosignatures count (repeatable).
    #[arg(long = "witness", value_name = "VKEY")]
    witnesses: Vec<String>,
    /// Witness cosignatures required.
    #[arg(long, default_value_t = 0)]
    min_witnesses: usize,
}

impl Trust {
    fn verifier(&self) -> Result<NoteVerifier, CliError> {
        NoteVerifier::from_vkey(&self.log_key).exit_ctx(Exit::InvalidInput, || "--log-key".into())
    }
    fn policy(&self) -> Result<WitnessPolicy, CliError> {
        let ws = self
            .witnesses
            .iter()
            .map(|w| {
                CosignatureVerifier::from_vkey(w)
                    .exit_ctx(Exit::InvalidInput, || format!("--witness {w}"))
            })
            .collect::<Result<Vec<_>, _>>()?;
        WitnessPolicy::new(ws, self.min_witnesses).exit(Exit::InvalidInput)
    }
    /// Opens a checkpoint note: the log's signature and the witness policy.
    fn open(&self, text: &[u8]) -> Result<(SignedCheckpoint, usize), CliError> {
        let cp = SignedCheckpoint::open(text, &self.verifier()?)
            .map_err(|e| fail(Exit::VerificationFailed, format!("checkpoint: {e}")))?;
        let witnesses = self
            .policy()?
            .check(&cp.note)
            .map_err(|e| fail(Exit::VerificationFailed, format!("witness policy: {e}")))?;
        Ok((cp, witnesses.len()))
    }
}

fn fetch_text(client: &NodeClient, path: &str) -> Result<String, CliError> {
    let r = client.get_stream(path)?;
    let mut text = String::new();
    std::io::Read::read_to_string(
        &mut std::io::Read::take(r.into_body().into_reader(), 1 << 20),
        &mut text,
    )
    .map_err(|e| fail(Exit::Io, format!("reading {path}: {e}")))?;
    Ok(text)
}

/// Arguments of `vouch log checkpoint`.
#[derive(Args)]
pub struct CheckpointArgs {
    #[command(flatten)]
    trust: Trust,
    #[command(flatten)]
    node: NodeUrl,
    /// Save the checkpoint note here.
    #[arg(long)]
    out: Option<PathBuf>,
    /// Print JSON.
    #[arg(long)]
    json: bool,
}

fn checkpoint(a: CheckpointArgs) -> Result<(), CliError> {
    let text = fetch_text(&a.node.client(), "/checkpoint")?;
    let (cp, witnessed) = a.trust.open(text.as_bytes())?;
    if let Some(p) = &a.out {
        write_atomic(p, text.as_bytes())?;
    }
    let c = &cp.checkpoint;
    if a.json {
        json_out(
            &json!({"origin": c.origin, "size": c.size, "root": BASE64.encode(c.root), "witness_cosignatures": witnessed, "note": text}),
        );
    } else {
        println!("origin     {}", c.origin);
        println!("size       {}", c.size);
        println!("root       {}", BASE64.encode(c.root));
        println!("signature  ok (log key), {witnessed} witness cosignature(s) counted");
    }
    Ok(())
}

/// Arguments of `vouch log prove`.
#[derive(Args)]
pub struct ProveArgs {
    /// The receipt file.
    receipt: PathBuf,
    /// The receipt's index in the log (as `vouch infer --node` reports it); without it the
    /// node is asked where the receipt's leaf hash sits.
    #[arg(long)]
    index: Option<u64>,
    #[command(flatten)]
    trust: Trust,
    #[command(flatten)]
    node: NodeUrl,
    /// Save the proof bundle (c2sp.org/tlog-proof) here, for `vouch verify --log-proof`.
    #[arg(long)]
    out: Option<PathBuf>,
    /// Print JSON.
    #[arg(long)]
    json: bool,
}

fn prove(a: ProveArgs) -> Result<(), CliError> {
    let bytes = read_bounded(&a.receipt, MAX_RECEIPT_JSON_BYTES as u64)?;
    let signed = SignedReceipt::from_json_bytes(&bytes).exit(Exit::InvalidInput)?;
    let client = a.node.client();
    let index = match a.index {
        Some(i) => i,
        None => {
            let leaf = vouch_merkle::leaf_hash(&vouch_node::log_entry_bytes(&signed));
            let found = client.get_json(&format!("/v1/log/leaves/{}", hex::encode(leaf)))?;
            found["index"]
                .as_u64()
                .ok_or_else(|| fail(Exit::Io, "the node's answer to a leaf lookup has no index"))?
        }
    };
    // Whatever the lookup said, the proof below is checked against the receipt itself.
    let answer = client.get_json(&format!(
        "/v1/log/entries/{index}?min_cosignatures={}",
        a.trust.min_witnesses
    ))?;
    let bundle = answer["proof"].as_str().unwrap_or_default().to_string();
    let mut report = Report::default();
    check_log_proof(
        &mut report,
        &signed,
        &bundle,
        &a.trust.log_key,
        true,
        &a.trust.witnesses,
        a.trust.min_witnesses,
    )?;
    if let Some(p) = &a.out
        && !report.failed()
    {
        write_atomic(p, bundle.as_bytes())?;
    }
    if a.json {
        json_out(
            &json!({"included": !report.failed(), "checks": report.to_json(), "proof": bundle}),
        );
    } else {
        report.print();
    }
    if report.failed() {
        return Err(fail(
            Exit::VerificationFailed,
            "the receipt is not proven to be in the log",
        ));
    }
    Ok(())
}

/// Arguments of `vouch log consistency`.
#[derive(Args)]
pub struct ConsistencyArgs {
    /// A checkpoint note saved earlier.
    old: PathBuf,
    /// Another checkpoint note (for example the current one).
    new: PathBuf,
    #[command(flatten)]
    trust: Trust,
    #[command(flatten)]
    node: NodeUrl,
}

/// Checks two opened checkpoints are consistent, fetching the proof from the node.
fn consistent(
    client: &NodeClient,
    a: &SignedCheckpoint,
    b: &SignedCheckpoint,
) -> Result<Result<(), String>, CliError> {
    let (o, n) = if a.checkpoint.size <= b.checkpoint.size {
        (a, b)
    } else {
        (b, a)
    };
    let proof: Vec<Hash> = if o.checkpoint.size == 0 || o.checkpoint.size == n.checkpoint.size {
        Vec::new()
    } else {
        let v = client.get_json(&format!(
            "/v1/log/consistency?old={}&new={}",
            o.checkpoint.size, n.checkpoint.size
        ))?;
        v["proof"]
            .as_array()
            .ok_or_else(|| fail(Exit::Io, "the node's consistency answer has no proof"))?
            .iter()
            .map(|h| {
                h.as_str()
                    .and_then(|s| BASE64.decode(s).ok())
                    .and_then(|b| b.try_into().ok())
                    .ok_or_else(|| fail(Exit::VerificationFailed, "a proof hash is malformed"))
            })
            .collect::<Result<_, _>>()?
    };
    Ok(check_consistent(o, n, &proof).map_err(|e| e.to_string()))
}

fn consistency(a: ConsistencyArgs) -> Result<(), CliError> {
    let (old, _) = a.trust.open(&read_bounded(&a.old, 1 << 20)?)?;
    let (new, _) = a.trust.open(&read_bounded(&a.new, 1 << 20)?)?;
    match consistent(&a.node.client(), &old, &new)? {
        Ok(()) => {
            println!(
                "consistent: size {} extends size {}",
                new.checkpoint.size.max(old.checkpoint.size),
                new.checkpoint.size.min(old.checkpoint.size)
            );
            Ok(())
        }
        Err(e) => {
            println!("FORK: {e}");
            println!(
                "keep both checkpoint files: together they prove the log showed two histories"
            );
            Err(fail(Exit::VerificationFailed, "the log is forked"))
        }
    }
}

/// Arguments of `vouch log monitor`.
#[derive(Args)]
pub struct MonitorArgs {
    #[command(flatten)]
    trust: Trust,
    #[command(flatten)]
    node: NodeUrl,
    /// File holding the last checkpoint seen (created on first run).
    #[arg(long, default_value = "vouch-monitor.checkpoint")]
    state: PathBuf,
    /// Seconds between polls.
    #[arg(long, default_value_t = 10)]
    interval: u64,
    /// Check once and exit.
    #[arg(long)]
    once: bool,
    /// Most entries read per poll (the rest wait for the next poll).
    #[arg(long, default_value_t = 10_000)]
    max_entries: u64,
}

fn monitor(a: MonitorArgs) -> Result<(), CliError> {
    let client = a.node.client();
    loop {
        let text = fetch_text(&client, "/checkpoint")?;
        let (current, _) = a.trust.open(text.as_bytes())?;
        let previous = match std::fs::read(&a.state) {
            Ok(b) => Some(a.trust.open(&b)?.0),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => None,
            Err(e) => {
                return Err(fail(
                    Exit::Io,
                    format!("reading {}: {e}", a.state.display()),
                ));
            }
        };
        let from = previous.as_ref().map_or(0, |p| p.checkpoint.size);
        if let Some(prev) = &previous
            && let Err(e) = consistent(&client, prev, &current)?
        {
            println!("FORK: {e}");
            return Err(fail(
                Exit::VerificationFailed,
                "the log is forked: the state file and the node's checkpoint disagree",
            ));
        }
        let until = current.checkpoint.size.min(from + a.max_entries);
        let mut bad = 0;
        for index in from..until {
            let v: Value = client.get_json(&format!("/v1/log/entries/{index}"))?;
            let mut report = Report::default();
            let verdict = SignedReceipt::from_json(v["receipt"].clone())
                .map_err(|e| e.to_string())
                .and_then(|r| r.verify_signature().map(|_| r).map_err(|e| e.to_string()));
            match verdict {
                Ok(r) => {
                    check_log_proof(
                        &mut report,
                        &r,
                        v["proof"].as_str().unwrap_or_default(),
                        &a.trust.log_key,
                        true,
                        &[],
                        0,
                    )?;
                    let status = if report.failed() { "BAD-PROOF" } else { "ok" };
                    bad += report.failed() as u32;
                    println!(
                        "{index:>8} {status} {} {} {} {}",
                        r.receipt.model,
                        r.receipt.operator.to_checksum(None),
                        r.receipt.profile,
                        r.receipt.timestamp
                    );
                }
                Err(e) => {
                    bad += 1;
                    report.add("receipt", Status::Fail, e.clone());
                    println!("{index:>8} INVALID {e}");
                }
            }
        }
        if until == current.checkpoint.size {
            write_atomic(&a.state, text.as_bytes())?;
        }
        if bad > 0 {
            return Err(fail(
                Exit::VerificationFailed,
                format!("{bad} invalid entries"),
            ));
        }
        if a.once {
            println!("checked up to size {until}; log consistent");
            return Ok(());
        }
        std::thread::sleep(Duration::from_secs(a.interval.max(1)));
    }
}

/// Runs a `vouch log` subcommand.
pub fn run(cmd: LogCommand) -> Result<(), CliError> {
    match cmd {
        LogCommand::Checkpoint(a) => checkpoint(a),
        LogCommand::Prove(a) => prove(a),
        LogCommand::Consistency(a) => consistency(a),
        LogCommand::Monitor(a) => monitor(a),
    }
}
