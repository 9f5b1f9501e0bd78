//! `vouch witness`: a C2SP tlog-witness that cosigns the checkpoints of the logs it follows,
//! after checking each extends the last one it cosigned.

use std::{net::SocketAddr, path::PathBuf};

use clap::Args;
use vouch_node::witness::{WitnessConfig, WitnessServer};

use crate::exit::{CliError, Exit, WithExit, fail};

/// Arguments of `vouch witness`.
#[derive(Args)]
pub struct WitnessArgs {
    /// Address to listen on.
    #[arg(long, env = "VOUCH_WITNESS_LISTEN", default_value = "127.0.0.1:8081")]
    listen: SocketAddr,
    /// Directory for the witness's key and state.
    #[arg(long, env = "VOUCH_WITNESS_DATA_DIR", default_value = "vouch-witness")]
    data_dir: PathBuf,
    /// The witness's name (its key name in cosignatures).
    #[arg(long, default_value = "localhost/witness")]
    name: String,
    /// A log to follow: its note key, `origin+id+base64` (from the node's /healthz). Repeatable.
    #[arg(long = "log", value_name = "VKEY", required = true)]
    logs: Vec<String>,
}

/// Runs `vouch witness` until SIGINT/SIGTERM.
pub fn run(a: WitnessArgs) -> Result<(), CliError> {
    vouch_node::init_tracing(false);
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .exit_ctx(Exit::Internal, || "starting the async runtime".into())?;
    runtime.block_on(async {
        let server = WitnessServer::start(WitnessConfig {
            listen: a.listen,
            data_dir: a.data_dir,
            name: a.name,
            logs: a.logs,
        })
        .await
        .map_err(|e| fail(Exit::InvalidInput, e))?;
        println!("vouch witness key {}", server.vkey());
        println!("vouch witness listening on http://{}", server.local_addr());
        server
            .serve(vouch_node::shutdown_signal())
            .await
            .map_err(|e| fail(Exit::Io, e))
    })
}
