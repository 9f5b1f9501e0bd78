//! `vouch`: run ONNX models with signed receipts, and verify receipts offline.
//!
//! This crate parses arguments and prints; the work is done by `vouch-engine` (inference and
//! traces) and `vouch-types` (formats, commitments, receipts). Exit codes are in [`exit`].

mod client;
mod commands;
mod exit;
mod inputs;
mod keys;
mod print;

use std::{path::PathBuf, process::ExitCode};

use clap::{Args, Parser, Subcommand};

use crate::exit::{CliError, Exit};

/// Verifiable inference: run ONNX models with signed, checkable receipts.
#[derive(Parser)]
#[command(name = "vouch", version, about, long_about = None)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Walk through infer → receipt → verify → tamper on a model built into the binary.
    Demo(commands::demo::DemoArgs),
    /// Create an operator key (secp256k1) in an encrypted keystore readable only by you.
    Keygen(commands::keygen::KeygenArgs),
    /// Work with model files.
    #[command(subcommand)]
    Model(ModelCommand),
    /// Run a model on inputs and sign a receipt for the result.
    Infer(commands::infer::InferArgs),
    /// Check a receipt: signature, model, inputs, outputs, and a re-execution.
    Verify(commands::verify::VerifyArgs),
    /// Work with receipt files.
    #[command(subcommand)]
    Receipt(ReceiptCommand),
    /// Run a node: model hub, inference with receipts, transparency log, over HTTP.
    Node(commands::node::NodeArgs),
    /// Read and audit a node's transparency log.
    #[command(subcommand)]
    Log(commands::log::LogCommand),
    /// Run a witness that cosigns a log's checkpoints after checking their consistency.
    Witness(commands::witness::WitnessArgs),
}

#[derive(Subcommand)]
enum ModelCommand {
    /// Show a model's id, signature, opsets and operators, and whether it can run here.
    Inspect(commands::inspect::InspectArgs),
    /// Publish a model file to a node's hub as owner/name@version, signed by your key.
    Push(commands::hub::PushArgs),
    /// List or search a node's models.
    Ls(commands::hub::LsArgs),
    /// Show a published version, with its publisher's signature checked.
    Show(commands::hub::ShowArgs),
    /// Download a model, checking its bytes against its id.
    Pull(commands::hub::PullArgs),
}

#[derive(Subcommand)]
enum ReceiptCommand {
    /// Print a receipt's EIP-712 typed data (eth_signTypedData_v4 JSON) for Ethereum tools.
    TypedData(commands::receipt::TypedDataArgs),
}

/// Options shared by commands that run a model.
#[derive(Args, Clone)]
pub struct EngineArgs {
    /// Determinism profile: `exact` (exact-portable/1: bit-identical on any x86_64 CPU),
    /// `exact-fused` (exact-fused/1: bit-identical on x86_64 and aarch64 CPUs and for a row alone
    /// or in a batch, near native speed; refuses ops it can't pin, naming them) or `native`
    /// (native/1: fastest kernels of this CPU; not reproducible elsewhere).
    #[arg(long, env = "VOUCH_PROFILE", default_value = "exact")]
    pub profile: String,
    /// Threads for matrix products (outputs don't depend on it).
    #[arg(long, env = "VOUCH_THREADS", default_value_t = 1)]
    pub threads: usize,
    /// Largest input tensor, in bytes.
    #[arg(long, env = "VOUCH_MAX_TENSOR_BYTES", default_value_t = vouch_types::Limits::DEFAULT.max_bytes)]
    pub max_tensor_bytes: usize,
    /// Largest model file, in bytes.
    #[arg(long, env = "VOUCH_MAX_MODEL_BYTES", default_value_t = 1 << 30)]
    pub max_model_bytes: usize,
}

/// Options for reading inputs.
#[derive(Args, Clone, Default)]
pub struct InputArgs {
    /// An input: `NAME=FILE` (.npy, .pb or .json tensor), or a .json file holding
    /// `{"name": tensor, …}`, or a .npy/.pb file for a model with one input. Repeatable.
    #[arg(short, long = "input", value_name = "[NAME=]FILE")]
    pub input: Vec<String>,
    /// Inputs as inline JSON: `{"name": tensor, …}`.
    #[arg(long, value_name = "JSON")]
    pub input_json: Option<String>,
}

/// Options for reading the operator key.
#[derive(Args, Clone)]
pub struct KeyArgs {
    /// Keystore file [default: $VOUCH_HOME/keys/operator.json, VOUCH_HOME defaulting to ~/.vouch].
    #[arg(long, env = "VOUCH_KEY")]
    pub key: Option<PathBuf>,
    /// File holding the keystore password (else VOUCH_KEYSTORE_PASSWORD, else a prompt).
    #[arg(long)]
    pub password_file: Option<PathBuf>,
}

fn run(cli: Cli) -> Result<(), CliError> {
    match cli.command {
        Command::Demo(a) => commands::demo::run(a),
        Command::Keygen(a) => commands::keygen::run(a),
        Command::Model(ModelCommand::Inspect(a)) => commands::inspect::run(a),
        Command::Model(ModelCommand::Push(a)) => commands::hub::push(a),
        Command::Model(ModelCommand::Ls(a)) => commands::hub::ls(a),
        Command::Model(ModelCommand::Show(a)) => commands::hub::show(a),
        Command::Model(ModelCommand::Pull(a)) => commands::hub::pull(a),
        Command::Node(a) => commands::node::run(a),
        Command::Log(c) => commands::log::run(c),
        Command::Witness(a) => commands::witness::run(a),
        Command::Infer(a) => commands::infer::run(a),
        Command::Verify(a) => commands::verify::run(a),
        Command::Receipt(ReceiptCommand::TypedData(a)) => commands::receipt::typed_data(a),
    }
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    // Panics are bugs: report them as one line with exit 70, never a backtrace dump. The engine
    // already turns panics inside tract into errors; this catches anything else.
    std::panic::set_hook(Box::new(|_| {}));
    let result = std::panic::catch_unwind(|| run(cli)).unwrap_or_else(|panic| {
        let msg = panic
            .downcast_ref::<String>()
            .cloned()
            .or_else(|| panic.downcast_ref::<&str>().map(|s| s.to_string()))
            .unwrap_or_default();
        Err(exit::fail(
            Exit::Internal,
            format!("vouch panicked (a bug; please report it): {msg}"),
        ))
    });
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            if e.exit != Exit::VerificationFailed {
                eprintln!("error: {:#}", e.error);
            }
            ExitCode::from(e.exit as u8)
        }
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn the_command_line_definition_is_consistent() {
        use clap::CommandFactory;
        super::Cli::command().debug_assert();
    }
}
