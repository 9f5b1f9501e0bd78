//! `vouch node`: runs a node (hub, inference with receipts, transparency log).

use std::{net::SocketAddr, path::PathBuf};

use clap::Args;
use vouch_node::{Node, NodeConfig};

use crate::exit::{CliError, Exit, WithExit, fail};

/// Arguments of `vouch node`. Flags win over `VOUCH_*` environment variables, which win over
/// the configuration file, which wins over the defaults (docs/node.md).
#[derive(Args)]
pub struct NodeArgs {
    /// TOML configuration file.
    #[arg(long, env = "VOUCH_CONFIG")]
    config: Option<PathBuf>,
    /// Address to listen on [default: 127.0.0.1:8080].
    #[arg(long, env = "VOUCH_LISTEN")]
    listen: Option<SocketAddr>,
    /// Data directory [default: ./vouch-data].
    #[arg(long, env = "VOUCH_DATA_DIR")]
    data_dir: Option<PathBuf>,
    /// Determinism profile: exact or native [default: exact].
    #[arg(long, env = "VOUCH_PROFILE")]
    profile: Option<String>,
    /// Operator keystore [default: <data-dir>/keys/operator.json, created on first start].
    #[arg(long, env = "VOUCH_OPERATOR_KEY")]
    operator_key: Option<PathBuf>,
    /// Log origin (the log's permanent name in checkpoints) [default: localhost/vouch].
    #[arg(long, env = "VOUCH_LOG_ORIGIN")]
    log_origin: Option<String>,
    /// Logs as JSON lines instead of text.
    #[arg(long, env = "VOUCH_JSON_LOGS")]
    json_logs: bool,
}

/// Runs `vouch node` until SIGINT/SIGTERM.
pub fn run(a: NodeArgs) -> Result<(), CliError> {
    let mut config = match &a.config {
        Some(path) => vouch_node::load_config(path).exit(Exit::InvalidInput)?,
        None => NodeConfig::default(),
    };
    if let Some(l) = a.listen {
        config.listen = l;
    }
    if let Some(d) = a.data_dir {
        config.data_dir = d;
    }
    if let Some(p) = a.profile {
        config.inference.profile = p;
    }
    if let Some(k) = a.operator_key {
        config.operator_key = Some(k);
    }
    if let Some(o) = a.log_origin {
        config.log.origin = o;
    }
    vouch_node::init_tracing(a.json_logs);
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .exit_ctx(Exit::Internal, || "starting the async runtime".into())?;
    runtime.block_on(async {
        let node = Node::start(config).await.map_err(|e| {
            let exit = match &e {
                vouch_node::NodeError::Config(_) => Exit::InvalidInput,
                vouch_node::NodeError::Key(_) => Exit::Key,
                vouch_node::NodeError::Engine(_) => Exit::Unsupported,
                _ => Exit::Io,
            };
            fail(exit, e)
        })?;
        // The one line scripts wait for: the address actually bound.
        println!("vouch node listening on http://{}", node.local_addr());
        node.serve(vouch_node::shutdown_signal())
            .await
            .map_err(|e| fail(Exit::Io, e))
    })
}
