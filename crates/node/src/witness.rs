//! Witnesses (c2sp.org/tlog-witness): the server a witness runs, and the node's side that pushes
//! each new checkpoint to its witnesses and collects their cosignatures.
//!
//! A witness keeps, per log, the last checkpoint it cosigned; it cosigns a new one only with a
//! consistency proof from that size, so a log that shows two histories to two parties is caught
//! as soon as both reach a common witness. Clients that require k witness cosignatures on the
//! checkpoint their receipt's proof is checked against get that guarantee.

use std::{
    collections::BTreeMap,
    net::SocketAddr,
    path::{Path, PathBuf},
    sync::{Arc, RwLock},
    time::Duration,
};

use axum::{
    Router,
    body::Bytes,
    extract::State,
    http::{StatusCode, header},
    response::{IntoResponse, Response},
    routing::post,
};
use serde::{Deserialize, Serialize};
use vouch_log::{
    CosignatureVerifier, Cosigner, Log, NoteVerifier, SignedCheckpoint,
    note::NoteSignature,
    witness::{AddCheckpointRequest, Witness, WitnessError},
};

use crate::NodeError;

fn unix_now() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0)
}

// ---- the witness server ---------------------------------------------------------------------

/// Largest add-checkpoint body accepted (63 proof lines and a checkpoint with cosignatures).
const MAX_ADD_CHECKPOINT_BYTES: usize = 64 * 1024;

/// A witness's configuration.
#[derive(Clone, Debug)]
pub struct WitnessConfig {
    /// Address to listen on.
    pub listen: SocketAddr,
    /// Directory for the witness's key and state.
    pub data_dir: PathBuf,
    /// The witness's name (its key name in cosignatures).
    pub name: String,
    /// The logs it follows: their note verifier keys (`origin+id+base64`).
    pub logs: Vec<String>,
}

/// Loads or creates the witness's Ed25519 key (a 32-byte seed, hex, owner-only file).
fn witness_cosigner(dir: &Path, name: &str) -> Result<Cosigner, NodeError> {
    let path = dir.join("witness.key");
    let bad = |why: String| NodeError::Config(format!("witness key {}: {why}", path.display()));
    let seed: [u8; 32] = if path.exists() {
        let text = std::fs::read_to_string(&path).map_err(|source| NodeError::Io {
            context: format!("reading {}", path.display()),
            source,
        })?;
        let (stored_name, hex_seed) = text
            .trim()
            .split_once(' ')
            .ok_or_else(|| bad("malformed".into()))?;
        if stored_name != name {
            return Err(bad(format!(
                "the key is for witness {stored_name:?}, not {name:?}"
            )));
        }
        hex::decode(hex_seed)
            .ok()
            .and_then(|v| v.try_into().ok())
            .ok_or_else(|| bad("malformed seed".into()))?
    } else {
        let seed: [u8; 32] = rand::random();
        vouch_keys::write_secret_file(&path, &format!("{name} {}\n", hex::encode(seed)))?;
        seed
    };
    Cosigner::new(name, &seed).map_err(|e| bad(e.to_string()))
}

/// A started witness.
pub struct WitnessServer {
    router: Router,
    listener: tokio::net::TcpListener,
    vkey: String,
}

impl WitnessServer {
    /// Opens the witness's state and binds its socket.
    pub async fn start(config: WitnessConfig) -> Result<WitnessServer, NodeError> {
        std::fs::create_dir_all(&config.data_dir).map_err(|source| NodeError::Io {
            context: format!("creating {}", config.data_dir.display()),
            source,
        })?;
        let cosigner = witness_cosigner(&config.data_dir, &config.name)?;
        let vkey = cosigner.verifier().to_vkey();
        let logs = config
            .logs
            .iter()
            .map(|k| {
                let v = NoteVerifier::from_vkey(k)
                    .map_err(|e| NodeError::Config(format!("log key {k}: {e}")))?;
                Ok((vouch_log::note::Verifier::name(&v).to_string(), v))
            })
            .collect::<Result<Vec<_>, NodeError>>()?;
        let witness = Witness::open(&config.data_dir.join("state"), cosigner, logs)
            .map_err(|e| NodeError::Config(format!("witness state: {e}")))?;
        let router = Router::new()
            .route("/add-checkpoint", post(add_checkpoint))
            .layer(axum::extract::DefaultBodyLimit::max(
                MAX_ADD_CHECKPOINT_BYTES,
            ))
            .with_state(Arc::new(witness));
        let listener = tokio::net::TcpListener::bind(config.listen)
            .await
            .map_err(|source| NodeError::Io {
                context: format!("listening on {}", config.listen),
                source,
            })?;
        Ok(WitnessServer {
            router,
            listener,
            vkey,
        })
    }

    /// The witness's cosignature verifier key, for logs and clients to configure.
    pub fn vkey(&self) -> &str {
        &self.vkey
    }

    /// The bound address.
    pub fn local_addr(&self) -> SocketAddr {
        self.listener
            .local_addr()
            .expect("a bound socket has an address")
    }

    /// Serves until `shutdown` resolves.
    pub async fn serve(
        self,
        shutdown: impl std::future::Future<Output = ()> + Send + 'static,
    ) -> Result<(), NodeError> {
        axum::serve(self.listener, self.router)
            .with_graceful_shutdown(shutdown)
            .await
            .map_err(|source| NodeError::Io {
                context: "serving HTTP".into(),
                source,
            })
    }
}

async fn add_checkpoint(State(witness): State<Arc<Witness>>, body: Bytes) -> Response {
    let result = tokio::task::spawn_blocking(move || {
        let req = AddCheckpointRequest::parse(&body)?;
        witness.add_checkpoint_request(&req, unix_now())
    })
    .await;
    match result {
        Ok(Ok(sig)) => (
            StatusCode::OK,
            [(header::CONTENT_TYPE, "text/plain; charset=utf-8")],
            format!("{}\n", sig.to_line()),
        )
            .into_response(),
        Ok(Err(WitnessError::Conflict { witness_size, .. })) => {
            // tlog-witness: a 409 carries the witness's size so the log can retry with a proof.
            (
                StatusCode::CONFLICT,
                [(header::CONTENT_TYPE, "text/x.tlog.size")],
                format!("{witness_size}\n"),
            )
                .into_response()
        }
        Ok(Err(e)) => {
            let status =
                StatusCode::from_u16(e.http_status()).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
            if status.is_server_error() {
                tracing::warn!(error = %e, "witness failure");
            } else {
                tracing::info!(error = %e, "checkpoint refused");
            }
            (
                status,
                [(header::CONTENT_TYPE, "text/plain; charset=utf-8")],
                format!("{e}\n"),
            )
                .into_response()
        }
        Err(e) => (StatusCode::INTERNAL_SERVER_ERROR, format!("{e}\n")).into_response(),
    }
}

// ---- the node's side --------------------------------------------------------------------------

/// One witness the node pushes checkpoints to.
#[derive(Clone, Debug, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct WitnessPeer {
    /// The witness's base URL (its `add-checkpoint` is under it).
    pub url: String,
    /// Its cosignature verifier key.
    pub vkey: String,
}

/// The newest checkpoint and the cosignatures collected for it.
#[derive(Default)]
pub struct Cosigned {
    by_size: BTreeMap<u64, SignedCheckpoint>,
}

impl Cosigned {
    /// The newest checkpoint of at least `min_size` entries carrying at least `min_cosigs`
    /// cosignatures, if one was collected.
    pub fn best(&self, min_size: u64, min_cosigs: usize) -> Option<SignedCheckpoint> {
        self.by_size
            .range(min_size..)
            .rev()
            .find(|(_, cp)| cp.note.signatures.len() > min_cosigs)
            .map(|(_, cp)| cp.clone())
    }

    fn add(&mut self, checkpoint: &SignedCheckpoint, sig: NoteSignature) {
        let entry = self
            .by_size
            .entry(checkpoint.checkpoint.size)
            .or_insert_with(|| checkpoint.clone());
        entry.add_signatures([sig]);
        // Keep a bounded history: the newest few sizes are all a client can ask for.
        while self.by_size.len() > 64 {
            let oldest = *self.by_size.keys().next().expect("non-empty");
            self.by_size.remove(&oldest);
        }
    }
}

/// Pushes every new checkpoint to each witness, on a thread per witness, until the log stops
/// producing them (the node shuts down). Each call is bounded by `timeout`.
pub fn spawn_pushers(
    log: &Arc<Log>,
    peers: &[WitnessPeer],
    cosigned: Arc<RwLock<Cosigned>>,
    timeout: Duration,
    stop: Arc<std::sync::atomic::AtomicBool>,
) -> Result<Vec<std::thread::JoinHandle<()>>, NodeError> {
    let mut handles = Vec::new();
    for peer in peers {
        let verifier = CosignatureVerifier::from_vkey(&peer.vkey)
            .map_err(|e| NodeError::Config(format!("witness key {}: {e}", peer.vkey)))?;
        let log = log.clone();
        let (peer, cosigned, stop) = (peer.clone(), cosigned.clone(), stop.clone());
        let agent: ureq::Agent = ureq::Agent::config_builder()
            .timeout_global(Some(timeout))
            .http_status_as_error(false)
            .build()
            .into();
        handles.push(std::thread::spawn(move || {
            let url = format!("{}/add-checkpoint", peer.url.trim_end_matches('/'));
            let mut witness_size = 0u64;
            let mut done_size = None;
            while !stop.load(std::sync::atomic::Ordering::Relaxed) {
                let cp = log.latest_checkpoint();
                if done_size == Some(cp.checkpoint.size) {
                    std::thread::sleep(Duration::from_millis(20));
                    continue;
                }
                let proof = if witness_size == cp.checkpoint.size {
                    Ok(Vec::new())
                } else {
                    log.consistency_proof(witness_size, cp.checkpoint.size).map_err(|e| e.to_string())
                };
                let body = match proof {
                    Ok(proof) => AddCheckpointRequest {
                        old_size: witness_size,
                        proof,
                        checkpoint: cp.to_text().into_bytes(),
                    }
                    .to_bytes(),
                    Err(e) => {
                        tracing::warn!(witness = %peer.url, error = %e, "cannot prove consistency for the witness");
                        std::thread::sleep(Duration::from_secs(1));
                        continue;
                    }
                };
                match agent.post(&url).send(&body[..]) {
                    Ok(mut r) => {
                        let status = r.status().as_u16();
                        let text = r.body_mut().with_config().limit(64 * 1024).read_to_string().unwrap_or_default();
                        match status {
                            200 => match NoteSignature::parse_line(text.trim_end()) {
                                Ok(sig) if verifier.verify_timestamp(cp.note.text.as_bytes(), &sig.signature).is_some() => {
                                    cosigned.write().expect("cosigned lock").add(&cp, sig);
                                    witness_size = cp.checkpoint.size;
                                    done_size = Some(witness_size);
                                }
                                _ => {
                                    tracing::warn!(witness = %peer.url, "the witness answered with an invalid cosignature");
                                    std::thread::sleep(Duration::from_secs(1));
                                }
                            },
                            409 => match text.trim().parse() {
                                Ok(size) => witness_size = size,
                                Err(_) => std::thread::sleep(Duration::from_secs(1)),
                            },
                            _ => {
                                tracing::warn!(witness = %peer.url, status, answer = %text.trim(), "the witness refused the checkpoint");
                                std::thread::sleep(Duration::from_secs(1));
                            }
                        }
                    }
                    Err(e) => {
                        tracing::debug!(witness = %peer.url, error = %e, "witness unreachable");
                        std::thread::sleep(Duration::from_secs(1));
                    }
                }
            }
        }));
    }
    Ok(handles)
}
