//! The Vouch node: one process that hosts models, runs them with signed receipts, and records
//! every receipt in a transparency log.
//!
//! - [`Node::start`] opens the data directory (hub, log, keys) and [`Node::serve`] runs the HTTP
//!   API (axum) until a shutdown signal, then drains requests and closes the log cleanly.
//! - [`router`] builds the API for tests.
//! - Routes: the hub (`/v1/models…`, `/v1/blobs/…`, `/v1/publish`), inference (`/v1/infer`), the
//!   log (`/checkpoint`, `/tile/…` as C2SP tlog-tiles, `/v1/log/…` convenience proofs), and
//!   `/healthz`, `/metrics`, `/openapi.json`. The API is specified in docs/openapi.json.
//!
//! Formats belong to `vouch-types`, execution to `vouch-engine`, storage to `vouch-hub` and
//! `vouch-log`; this crate wires them to HTTP and owns the operational limits.

pub mod config;
pub mod error;
mod inference;
mod metrics;
pub mod receipt_index;
mod routes;
pub mod witness;

use std::{
    path::Path,
    sync::{Arc, Mutex, RwLock, atomic::AtomicBool},
    time::Duration,
};

use k256::ecdsa::SigningKey;
use tokio::net::TcpListener;
use vouch_engine::{EngineConfig, Profile};
use vouch_hub::{BlobConfig, Hub, HubConfig};
use vouch_log::{Log, LogConfig, NoteSigner};
use vouch_types::{Address, Limits};

pub use config::NodeConfig;
pub use routes::{MANIFEST_HEADER, MODEL_ID_HEADER, log_entry_bytes, router};

use crate::{inference::Inference, metrics::Metrics};

/// What went wrong starting the node.
#[derive(Debug, thiserror::Error)]
pub enum NodeError {
    /// A configuration value is invalid.
    #[error("configuration: {0}")]
    Config(String),
    /// A key could not be read or created.
    #[error(transparent)]
    Key(#[from] vouch_keys::KeyError),
    /// The hub could not be opened.
    #[error("model hub: {0}")]
    Hub(#[from] vouch_hub::HubError),
    /// The log could not be opened or closed.
    #[error("transparency log: {0}")]
    Log(#[from] vouch_log::LogError),
    /// The receipt index could not be opened.
    #[error(transparent)]
    Index(#[from] receipt_index::IndexError),
    /// The engine refused the profile.
    #[error(transparent)]
    Engine(#[from] vouch_engine::EngineError),
    /// A socket or file error.
    #[error("{context}: {source}")]
    Io {
        /// What was being done.
        context: String,
        /// The error.
        source: std::io::Error,
    },
}

/// Shared state of the running node.
pub struct AppState {
    /// Configuration as started.
    pub config: NodeConfig,
    /// Model registry and blobs.
    pub hub: Hub,
    /// Transparency log of receipts.
    pub log: Arc<Log>,
    /// Leaf hash → index of every entry, for finding a receipt in the log.
    pub receipt_index: Arc<receipt_index::ReceiptIndex>,
    /// Checkpoints with the witness cosignatures collected so far.
    pub cosigned: Arc<RwLock<witness::Cosigned>>,
    /// Stops the background threads (witness pushers, receipt indexer) at shutdown.
    background_stop: Arc<AtomicBool>,
    background_threads: Mutex<Vec<std::thread::JoinHandle<()>>>,
    /// Operator key (signs receipts).
    pub operator: SigningKey,
    /// Its address.
    pub operator_address: Address,
    /// The log's public key, `name+id+base64`, for clients verifying checkpoints.
    pub log_vkey: String,
    inference: Inference,
    metrics: Arc<Metrics>,
}

/// A started node: state opened, socket bound.
pub struct Node {
    state: Arc<AppState>,
    listener: TcpListener,
}

fn io(context: impl Into<String>) -> impl FnOnce(std::io::Error) -> NodeError {
    let context = context.into();
    move |source| NodeError::Io { context, source }
}

/// Loads the operator key, or creates one on first start (encrypted when a password is set).
fn operator_key(config: &NodeConfig) -> Result<SigningKey, NodeError> {
    let password = std::env::var("VOUCH_KEYSTORE_PASSWORD").ok();
    if let Some(path) = &config.operator_key {
        return Ok(vouch_keys::load_key(path, password.as_deref())?);
    }
    let keys = config.data_dir.join("keys");
    let keystore = keys.join("operator.json");
    let raw = keys.join("operator.key");
    for path in [&keystore, &raw] {
        if path.exists() {
            return Ok(vouch_keys::load_key(path, password.as_deref())?);
        }
    }
    let key = match password.as_deref() {
        Some(pw) if !pw.is_empty() => vouch_keys::create_keystore(&keystore, pw, false)?,
        _ => vouch_keys::create_raw_key(&raw)?,
    };
    tracing::info!(address = %vouch_keys::address(&key), "created an operator key in {}", keys.display());
    Ok(key)
}

/// Loads the log's Ed25519 note key, or creates one on first start.
fn log_signer(config: &NodeConfig) -> Result<NoteSigner, NodeError> {
    let path = config.data_dir.join("keys").join("log.key");
    let bad = |e: vouch_log::note::NoteError| {
        NodeError::Config(format!("log key {}: {e}", path.display()))
    };
    if path.exists() {
        let text =
            std::fs::read_to_string(&path).map_err(io(format!("reading {}", path.display())))?;
        let signer = NoteSigner::from_private_key(text.trim()).map_err(bad)?;
        if signer.name() != config.log.origin {
            return Err(NodeError::Config(format!(
                "log.origin is {:?} but the log's key in {} is for {:?}; a log's origin never changes",
                config.log.origin,
                path.display(),
                signer.name()
            )));
        }
        return Ok(signer);
    }
    let signer = NoteSigner::generate(&config.log.origin).map_err(bad)?;
    vouch_keys::write_secret_file(&path, &format!("{}\n", signer.to_private_key()))?;
    Ok(signer)
}

fn hub_config(config: &NodeConfig) -> HubConfig {
    let h = &config.hub;
    let blobs = if h.blobs == "s3" {
        BlobConfig::S3(vouch_hub::S3Config {
            bucket: h.s3_bucket.clone(),
            endpoint: h.s3_endpoint.clone(),
            region: h.s3_region.clone(),
            access_key_id: std::env::var("AWS_ACCESS_KEY_ID").unwrap_or_default(),
            secret_access_key: std::env::var("AWS_SECRET_ACCESS_KEY").unwrap_or_default(),
            allow_http: h.s3_allow_http,
            prefix: h.s3_prefix.clone(),
        })
    } else {
        BlobConfig::Filesystem
    };
    HubConfig {
        data_dir: config.data_dir.join("hub"),
        blobs,
        max_model_bytes: h.max_model_bytes,
        publish_window_secs: h.publish_window_secs,
    }
}

impl Node {
    /// Opens the data directory (creating it on first start) and binds the listening socket.
    pub async fn start(config: NodeConfig) -> Result<Node, NodeError> {
        config.validate().map_err(NodeError::Config)?;
        let profile: Profile = config.inference.profile.parse()?;
        std::fs::create_dir_all(&config.data_dir)
            .map_err(io(format!("creating {}", config.data_dir.display())))?;
        let operator = operator_key(&config)?;
        let signer = log_signer(&config)?;
        let log_vkey = signer.verifier().to_vkey();
        let mut log_config = LogConfig::new(config.data_dir.join("log"));
        log_config.batch_interval = config.log.batch_interval;
        log_config.max_batch = config.log.max_batch;
        let log = tokio::task::spawn_blocking(move || Log::open(log_config, signer))
            .await
            .map_err(|e| NodeError::Config(format!("opening the log stopped: {e}")))??;
        let log = Arc::new(log);
        let cosigned = Arc::new(RwLock::new(witness::Cosigned::default()));
        let background_stop = Arc::new(AtomicBool::new(false));
        let mut background_threads = witness::spawn_pushers(
            &log,
            &config.log.witnesses,
            cosigned.clone(),
            Duration::from_secs(10),
            background_stop.clone(),
        )?;
        let index_path = config.data_dir.join("log-index.sqlite");
        let receipt_index = Arc::new(receipt_index::ReceiptIndex::open(&index_path)?);
        // Catch up before serving, so every receipt acknowledged before a restart can be found.
        let (index, log_) = (receipt_index.clone(), log.clone());
        let added = tokio::task::spawn_blocking(move || index.catch_up(&log_))
            .await
            .map_err(|e| NodeError::Config(format!("indexing the log stopped: {e}")))??;
        if added > 0 {
            tracing::info!(added, "indexed log entries");
        }
        background_threads.push(
            receipt_index::ReceiptIndex::spawn_follower(
                receipt_index.clone(),
                log.clone(),
                background_stop.clone(),
                Duration::from_millis(50),
            )
            .map_err(io("starting the receipt indexer"))?,
        );
        let hub = Hub::open(hub_config(&config)).await?;
        let engine = EngineConfig {
            profile,
            threads: config.inference.threads,
            limits: Limits {
                max_bytes: config.inference.max_tensor_bytes,
                ..Limits::DEFAULT
            },
            max_model_bytes: config.hub.max_model_bytes.min(usize::MAX as u64) as usize,
        };
        // Activate the profile now, so a machine that can't run it fails at start, not on the
        // first request.
        vouch_engine::profile::activate(profile)?;
        let metrics = Arc::new(Metrics::new());
        let listener = TcpListener::bind(config.listen)
            .await
            .map_err(io(format!("listening on {}", config.listen)))?;
        let state = Arc::new(AppState {
            inference: Inference::new(engine, config.inference.clone(), metrics.clone()),
            operator_address: vouch_keys::address(&operator),
            operator,
            log_vkey,
            log,
            receipt_index,
            cosigned,
            background_stop,
            background_threads: Mutex::new(background_threads),
            hub,
            metrics,
            config,
        });
        Ok(Node { state, listener })
    }

    /// The address actually bound (useful with port 0).
    pub fn local_addr(&self) -> std::net::SocketAddr {
        self.listener
            .local_addr()
            .expect("a bound socket has an address")
    }

    /// The shared state.
    pub fn state(&self) -> &Arc<AppState> {
        &self.state
    }

    /// Serves until `shutdown` resolves, then stops accepting, lets requests in flight finish
    /// (bounded by the request timeout), and closes the log so every acknowledged receipt is
    /// durable in its tiles.
    pub async fn serve(
        self,
        shutdown: impl std::future::Future<Output = ()> + Send + 'static,
    ) -> Result<(), NodeError> {
        let Node { state, listener } = self;
        tracing::info!(
            addr = %listener.local_addr().map(|a| a.to_string()).unwrap_or_default(),
            operator = %state.operator_address,
            log = %state.log_vkey,
            profile = %state.config.inference.profile,
            "vouch node listening"
        );
        let app = router(state.clone());
        axum::serve(listener, app)
            .with_graceful_shutdown(shutdown)
            .await
            .map_err(io("serving HTTP"))?;
        tracing::info!("draining done, closing the log");
        // Every handler has returned: stop the witness pushers, then this is the last reference
        // to the state and to the log.
        state
            .background_stop
            .store(true, std::sync::atomic::Ordering::Relaxed);
        let threads = std::mem::take(&mut *state.background_threads.lock().expect("lock"));
        tokio::task::spawn_blocking(move || threads.into_iter().for_each(|t| drop(t.join())))
            .await
            .map_err(|e| NodeError::Config(format!("stopping witness pushers: {e}")))?;
        let state = wait_for_sole_owner(state).await;
        let AppState { log, .. } = state;
        let log = Arc::try_unwrap(log)
            .map_err(|_| NodeError::Config("the log is still in use at shutdown".into()))?;
        tokio::task::spawn_blocking(move || log.close())
            .await
            .map_err(|e| NodeError::Config(format!("closing the log stopped: {e}")))??;
        Ok(())
    }
}

async fn wait_for_sole_owner(mut state: Arc<AppState>) -> AppState {
    // Background tasks (e.g. a blocking inference whose client went away) may still hold the
    // state briefly after the server stops; wait for them.
    loop {
        match Arc::try_unwrap(state) {
            Ok(s) => return s,
            Err(shared) => {
                state = shared;
                tokio::time::sleep(Duration::from_millis(20)).await;
            }
        }
    }
}

/// Resolves on SIGINT or SIGTERM.
pub async fn shutdown_signal() {
    let ctrl_c = async {
        let _ = tokio::signal::ctrl_c().await;
    };
    #[cfg(unix)]
    let term = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut s) => {
                s.recv().await;
            }
            Err(_) => std::future::pending::<()>().await,
        }
    };
    #[cfg(not(unix))]
    let term = std::future::pending::<()>();
    tokio::select! {
        _ = ctrl_c => {},
        _ = term => {},
    }
    tracing::info!("shutdown requested");
}

/// Installs the tracing subscriber: `RUST_LOG`-style filter (default `info`), JSON if asked.
pub fn init_tracing(json: bool) {
    let filter = tracing_subscriber::EnvFilter::try_from_env("VOUCH_LOG")
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info"));
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr);
    let _ = if json {
        builder.json().try_init()
    } else {
        builder.try_init()
    };
}

/// Reads a configuration file.
pub fn load_config(path: &Path) -> Result<NodeConfig, NodeError> {
    let text = std::fs::read_to_string(path).map_err(io(format!("reading {}", path.display())))?;
    NodeConfig::from_toml(&text).map_err(|e| NodeError::Config(format!("{}: {e}", path.display())))
}
