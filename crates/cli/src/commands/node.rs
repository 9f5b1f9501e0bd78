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
    /// Determinism profile: exact, exact-fused or native [default: exact].
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
    /// Publish the built-in demo model (a scikit-learn MLP on iris) as `demo/iris@1.0.0`,
    /// signed by the operator key, if it isn't there yet, and print commands to try.
    #[arg(long)]
    demo: bool,
}

/// The demo model's name and version in the hub.
const DEMO_NAME: &str = "demo/iris";
const DEMO_VERSION: &str = "1.0.0";

/// Stores and publishes the built-in model, unless this hub already has that version.
async fn publish_demo(node: &Node) -> Result<vouch_types::ModelId, CliError> {
    let state = node.state();
    let hub_err =
        |e: vouch_hub::HubError| fail(Exit::Io, format!("publishing the demo model: {e}"));
    match state.hub.resolve(DEMO_NAME, Some(DEMO_VERSION)).await {
        Ok(v) => return Ok(v.model),
        Err(vouch_hub::HubError::NotFound { .. }) => {}
        Err(e) => return Err(hub_err(e)),
    }
    let chunk: Result<bytes::Bytes, std::io::Error> =
        Ok(bytes::Bytes::from_static(super::demo::MODEL));
    let stored = state
        .hub
        .put_model(futures::stream::iter([chunk]))
        .await
        .map_err(hub_err)?;
    let manifest = vouch_types::publish::PublishManifest {
        name: DEMO_NAME.into(),
        version: DEMO_VERSION.into(),
        model: stored.record.id,
        description: "scikit-learn MLP classifier on iris (Vouch's built-in demo model)".into(),
        task: "classification".into(),
        license: "Apache-2.0".into(),
        tags: vec!["demo".into(), "sklearn".into()],
        publisher: state.operator_address,
        timestamp: super::unix_now(),
        nonce: super::infer::random_nonce(),
    };
    let signed = manifest.sign(&state.operator).exit(Exit::Internal)?;
    let version = state
        .hub
        .publish(signed, super::unix_now())
        .await
        .map_err(hub_err)?;
    Ok(version.model)
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
        let demo = if a.demo {
            Some(publish_demo(&node).await?)
        } else {
            None
        };
        // The one line scripts wait for: the address actually bound.
        let url = format!("http://{}", node.local_addr());
        println!("vouch node listening on {url}");
        if let Some(id) = demo {
            let input: serde_json::Value =
                serde_json::from_str(super::demo::INPUT).expect("the demo input is JSON");
            let log_key = &node.state().log_vkey;
            println!(
                "\nDemo model {DEMO_NAME}@{DEMO_VERSION} ({id}) is published. From another terminal:\n\n  \
                 vouch infer {DEMO_NAME}@{DEMO_VERSION} --node {url} --log-key '{log_key}' \\\n    \
                 --input-json '{input}' --out receipt.json\n  \
                 vouch log prove receipt.json --node {url} --log-key '{log_key}'\n  \
                 vouch model pull {DEMO_NAME}@{DEMO_VERSION} --node {url} --out iris.onnx\n  \
                 vouch verify receipt.json --model iris.onnx --input-json '{input}'\n\n\
                 (vouch = cargo run --release -p vouch-cli --, or target/release/vouch.) \
                 Stop the node with Ctrl-C."
            );
        }
        node.serve(vouch_node::shutdown_signal())
            .await
            .map_err(|e| fail(Exit::Io, e))
    })
}
