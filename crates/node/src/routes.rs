//! HTTP routes. Every error is JSON with a stable code (see [`crate::error`]); every body and
//! wait is bounded.

use std::{sync::Arc, time::Instant};

use axum::{
    Json, Router,
    body::Body,
    extract::{DefaultBodyLimit, MatchedPath, Path, Query, Request, State},
    http::{HeaderMap, HeaderValue, StatusCode, header},
    middleware::{self, Next},
    response::{IntoResponse, Response},
    routing::{get, post, put},
};
use base64::{Engine as _, engine::general_purpose::STANDARD as BASE64};
use futures::TryStreamExt;
use serde::Deserialize;
use serde_json::{Value, json};
use tower_http::{limit::RequestBodyLimitLayer, timeout::TimeoutLayer};
use vouch_engine::ENGINE;
use vouch_hub::ListQuery;
use vouch_log::tile::TileId;
use vouch_types::{
    ModelId, Nonce, SignedReceipt, publish::SignedManifest, tensor::json::named_to_json,
};

use crate::{AppState, error::ApiError};

type S = State<Arc<AppState>>;

/// The API description served at `/openapi.json`.
pub const OPENAPI: &str = include_str!("../../../docs/openapi.json");

/// Header carrying the signed publish manifest of an upload (base64 of its JSON).
pub const MANIFEST_HEADER: &str = "vouch-manifest";
/// Header carrying a downloaded blob's model id.
pub const MODEL_ID_HEADER: &str = "vouch-model-id";

/// Builds the API.
pub fn router(state: Arc<AppState>) -> Router {
    let json_limit = state.config.http.max_body_bytes;
    let upload_limit = state.config.hub.max_model_bytes.min(usize::MAX as u64) as usize;
    let timeout = state.config.http.request_timeout;
    let uploads = Router::new()
        .route("/v1/models/{owner}/{name}/{version}", put(publish))
        // Uploads stream to storage; the hub stops at its own bound (a little slack so the hub,
        // not the transport, reports the size error).
        .layer(DefaultBodyLimit::disable())
        .layer(RequestBodyLimitLayer::new(upload_limit.saturating_add(1)));
    let api = Router::new()
        .route("/healthz", get(health))
        .route("/metrics", get(metrics))
        .route("/openapi.json", get(openapi))
        .route("/v1/models", get(list_models))
        .route("/v1/models/{owner}/{name}", get(show_repo))
        .route("/v1/models/{owner}/{name}/{version}", get(show_version))
        .route("/v1/blobs/{id}", get(download))
        .route("/v1/blobs/{id}/info", get(blob_info))
        .route("/v1/infer", post(infer))
        .route("/checkpoint", get(checkpoint))
        .route("/tile/{*path}", get(tile))
        .route("/v1/log/entries/{index}", get(log_entry))
        .route("/v1/log/consistency", get(log_consistency))
        .route("/v1/log/leaves/{leaf_hash}", get(log_lookup))
        .layer(DefaultBodyLimit::max(json_limit));
    api.merge(uploads)
        .fallback(|| async { ApiError::not_found("no such route") })
        .layer(middleware::from_fn_with_state(state.clone(), observe))
        .layer(TimeoutLayer::with_status_code(
            StatusCode::GATEWAY_TIMEOUT,
            timeout,
        ))
        .with_state(state)
}

/// Counts requests and their latency per route.
async fn observe(State(state): S, req: Request, next: Next) -> Response {
    let route = req
        .extensions()
        .get::<MatchedPath>()
        .map(|p| p.as_str().to_owned())
        .unwrap_or_else(|| "unmatched".into());
    let start = Instant::now();
    let response = next.run(req).await;
    let m = &state.metrics;
    m.requests
        .with_label_values(&[&route, response.status().as_str()])
        .inc();
    m.request_seconds
        .with_label_values(&[&route])
        .observe(start.elapsed().as_secs_f64());
    response
}

async fn health(State(state): S) -> Json<Value> {
    let cp = state.log.latest_checkpoint();
    Json(json!({
        "status": "ok",
        "engine": ENGINE,
        "profile": state.inference.engine().profile.name(),
        "operator": state.operator_address.to_checksum(None),
        "log": {"origin": cp.checkpoint.origin, "size": cp.checkpoint.size, "key": state.log_vkey},
        "limits": {
            "max_model_bytes": state.config.hub.max_model_bytes,
            "max_body_bytes": state.config.http.max_body_bytes,
            "max_tensor_bytes": state.config.inference.max_tensor_bytes,
        },
    }))
}

async fn metrics(State(state): S) -> impl IntoResponse {
    (
        [(header::CONTENT_TYPE, "text/plain; version=0.0.4")],
        state.metrics.render(),
    )
}

async fn openapi() -> impl IntoResponse {
    ([(header::CONTENT_TYPE, "application/json")], OPENAPI)
}

// ---- hub --------------------------------------------------------------------------------------

fn now() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0)
}

fn parse_manifest(headers: &HeaderMap) -> Result<SignedManifest, ApiError> {
    let raw = headers.get(MANIFEST_HEADER).ok_or_else(|| {
        ApiError::new(
            StatusCode::UNAUTHORIZED,
            "missing_manifest",
            "uploads need a signed manifest in the vouch-manifest header",
        )
    })?;
    let json = BASE64
        .decode(raw.as_bytes())
        .map_err(|_| ApiError::bad_request("vouch-manifest is not base64"))?;
    let signed: SignedManifest = serde_json::from_slice(&json)
        .map_err(|e| ApiError::bad_request(format!("vouch-manifest: {e}")))?;
    signed
        .verify()
        .map_err(|e| ApiError::new(StatusCode::UNAUTHORIZED, "bad_signature", e.to_string()))?;
    Ok(signed)
}

/// `PUT /v1/models/{owner}/{name}/{version}`: streams the model into storage and publishes it
/// under the signed manifest. The manifest is checked before any byte is stored.
async fn publish(
    State(state): S,
    Path((owner, name, version)): Path<(String, String, String)>,
    headers: HeaderMap,
    body: Body,
) -> Result<Response, ApiError> {
    let signed = parse_manifest(&headers)?;
    let m = &signed.manifest;
    if m.name != format!("{owner}/{name}") || m.version != version {
        return Err(ApiError::bad_request(format!(
            "the manifest publishes {}@{}, the URL says {owner}/{name}@{version}",
            m.name, m.version
        )));
    }
    let window = state.config.hub.publish_window_secs;
    if now().abs_diff(m.timestamp) > window {
        return Err(ApiError::new(
            StatusCode::UNAUTHORIZED,
            "stale_timestamp",
            format!("the manifest's timestamp is more than {window} s from the node's clock"),
        ));
    }
    let stream = body
        .into_data_stream()
        .map_err(|e| std::io::Error::other(e.to_string()));
    let stored = state.hub.put_model(stream).await?;
    if stored.record.id != m.model {
        return Err(ApiError::new(
            StatusCode::UNPROCESSABLE_ENTITY,
            "digest_mismatch",
            format!(
                "the uploaded bytes are {}, the manifest names {}",
                stored.record.id, m.model
            ),
        ));
    }
    let record = state.hub.publish(signed, now()).await?;
    Ok((
        StatusCode::CREATED,
        Json(json!({"model": stored, "version": record})),
    )
        .into_response())
}

async fn list_models(State(state): S, Query(q): Query<ListQuery>) -> Result<Json<Value>, ApiError> {
    let repos = state.hub.list(&q).await?;
    Ok(Json(json!({"models": repos})))
}

async fn show_repo(
    State(state): S,
    Path((owner, name)): Path<(String, String)>,
) -> Result<Json<Value>, ApiError> {
    let repo = state.hub.repo(&format!("{owner}/{name}")).await?;
    Ok(Json(
        serde_json::to_value(repo).map_err(|e| ApiError::internal(e.to_string()))?,
    ))
}

async fn show_version(
    State(state): S,
    Path((owner, name, version)): Path<(String, String, String)>,
) -> Result<Json<Value>, ApiError> {
    let wanted = (version != "latest").then_some(version.as_str());
    let record = state
        .hub
        .resolve(&format!("{owner}/{name}"), wanted)
        .await?;
    let model = state.hub.model(&record.model).await?;
    Ok(Json(json!({"version": record, "model": model})))
}

fn parse_id(id: &str) -> Result<ModelId, ApiError> {
    id.parse()
        .map_err(|e| ApiError::bad_request(format!("{id:?}: {e}")))
}

async fn download(State(state): S, Path(id): Path<String>) -> Result<Response, ApiError> {
    let id = parse_id(&id)?;
    let (size, stream) = state.hub.model_stream(&id).await?;
    let mut response = Response::new(Body::from_stream(stream));
    let h = response.headers_mut();
    h.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/octet-stream"),
    );
    h.insert(header::CONTENT_LENGTH, HeaderValue::from(size));
    let id_value = HeaderValue::from_str(&id.to_string()).expect("CIDs are ASCII");
    h.insert(MODEL_ID_HEADER, id_value.clone());
    h.insert(
        header::ETAG,
        HeaderValue::from_str(&format!("\"{id}\"")).expect("ASCII"),
    );
    h.insert(
        header::CACHE_CONTROL,
        HeaderValue::from_static("public, max-age=31536000, immutable"),
    );
    Ok(response)
}

async fn blob_info(State(state): S, Path(id): Path<String>) -> Result<Json<Value>, ApiError> {
    let id = parse_id(&id)?;
    let model = state.hub.model(&id).await?;
    Ok(Json(
        serde_json::to_value(model).map_err(|e| ApiError::internal(e.to_string()))?,
    ))
}

// ---- inference --------------------------------------------------------------------------------

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct InferRequest {
    /// A model id (`bafkrei…`), or `owner/name@version`, or `owner/name` for the latest version.
    model: String,
    /// Named inputs in Vouch's JSON tensor form.
    inputs: Value,
    /// The client's request nonce, 0x + 64 hex digits.
    nonce: String,
}

async fn resolve_model(state: &AppState, model: &str) -> Result<ModelId, ApiError> {
    if model.starts_with("baf") || model.starts_with("Qm") {
        return parse_id(model);
    }
    let (name, version) = match model.split_once('@') {
        Some((n, v)) => (n, Some(v)),
        None => (model, None),
    };
    Ok(state.hub.resolve(name, version).await?.model)
}

async fn infer(State(state): S, body: axum::body::Bytes) -> Result<Json<Value>, ApiError> {
    let req: InferRequest = serde_json::from_slice(&body)
        .map_err(|e| ApiError::bad_request(format!("request body: {e}")))?;
    let nonce: Nonce = req
        .nonce
        .parse()
        .map_err(|e| ApiError::bad_request(format!("nonce: {e}")))?;
    let id = resolve_model(&state, &req.model).await?;
    let slot = state.inference.acquire().await?;
    let hub = state.hub.clone();
    let model = state
        .inference
        .model(id, || async move { Ok(hub.model_bytes(&id).await?) })
        .await?;
    let (_inputs, execution) = state
        .inference
        .run(&slot, model.clone(), req.inputs)
        .await?;
    drop(slot);

    let receipt = execution.receipt(&model, state.operator_address, now(), nonce);
    let signed = receipt
        .sign(&state.operator)
        .map_err(|e| ApiError::internal(format!("signing: {e}")))?;
    state
        .metrics
        .receipts
        .with_label_values(&[model.profile().name()])
        .inc();

    // The receipt is answered only once the log holds it durably: the response carries the
    // proof, and no acknowledged receipt can later be missing from the log.
    let entry = log_entry_bytes(&signed);
    let timer = state.metrics.log_append_seconds.start_timer();
    let appended = state.log.try_append(entry)?.await?;
    timer.observe_duration();
    let bundle = state.log.prove(appended.index, &appended.checkpoint)?;
    Ok(Json(json!({
        "model": id,
        "outputs": named_to_json(&execution.outputs),
        "receipt": signed.to_json(),
        "log": {"index": appended.index, "proof": bundle.to_text(), "key": state.log_vkey},
    })))
}

/// A receipt's log entry: its JSON form, compact, keys in byte order (docs/protocol.md §6.5).
pub fn log_entry_bytes(signed: &SignedReceipt) -> Vec<u8> {
    serde_json::to_vec(&signed.to_json()).expect("receipts serialize")
}

// ---- log --------------------------------------------------------------------------------------

/// The latest checkpoint, with the witness cosignatures collected for it when there are any.
fn current_checkpoint(state: &AppState) -> vouch_log::SignedCheckpoint {
    let latest = state.log.latest_checkpoint();
    state
        .cosigned
        .read()
        .expect("cosigned lock")
        .best(latest.checkpoint.size, 1)
        .filter(|c| c.checkpoint.size == latest.checkpoint.size)
        .unwrap_or_else(|| (*latest).clone())
}

async fn checkpoint(State(state): S) -> impl IntoResponse {
    let cp = current_checkpoint(&state);
    (
        [
            (header::CONTENT_TYPE, "text/plain; charset=utf-8"),
            (header::CACHE_CONTROL, "no-cache"),
        ],
        cp.to_text(),
    )
}

async fn tile(State(state): S, Path(path): Path<String>) -> Result<Response, ApiError> {
    let full = format!("tile/{path}");
    // Only paths that name a tile are served: no traversal, no internal files.
    let id = TileId::parse_path(&full).map_err(|e| ApiError::not_found(format!("{full}: {e}")))?;
    let file = state.config.data_dir.join("log").join(id.path());
    let bytes = tokio::fs::read(&file)
        .await
        .map_err(|_| ApiError::not_found(format!("{full} does not exist (yet)")))?;
    Ok((
        [
            (header::CONTENT_TYPE, "application/octet-stream"),
            (header::CACHE_CONTROL, "public, max-age=31536000, immutable"),
        ],
        bytes,
    )
        .into_response())
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct EntryQuery {
    /// Prove against a checkpoint carrying at least this many witness cosignatures.
    #[serde(default)]
    min_cosignatures: usize,
}

async fn log_entry(
    State(state): S,
    Path(index): Path<u64>,
    Query(q): Query<EntryQuery>,
) -> Result<Json<Value>, ApiError> {
    let checkpoint = if q.min_cosignatures == 0 {
        current_checkpoint(&state)
    } else {
        state
            .cosigned
            .read()
            .expect("cosigned lock")
            .best(index + 1, q.min_cosignatures)
            .ok_or_else(|| {
                ApiError::not_found(format!(
                    "no checkpoint with {} witness cosignature(s) includes entry {index} yet",
                    q.min_cosignatures
                ))
            })?
    };
    let log = state.clone();
    let (entry, bundle) = tokio::task::spawn_blocking(move || {
        let bundle = log.log.prove(index, &checkpoint)?;
        Ok::<_, vouch_log::LogError>((log.log.entry(index)?, bundle))
    })
    .await
    .map_err(|e| ApiError::internal(e.to_string()))??;
    let receipt: Value = serde_json::from_slice(&entry)
        .map_err(|e| ApiError::internal(format!("log entry {index}: {e}")))?;
    Ok(Json(
        json!({"index": index, "receipt": receipt, "proof": bundle.to_text()}),
    ))
}

/// Where the entry with this RFC 9162 leaf hash (hex) sits in the log.
async fn log_lookup(
    State(state): S,
    Path(leaf_hash): Path<String>,
) -> Result<Json<Value>, ApiError> {
    let mut leaf = [0u8; 32];
    hex::decode_to_slice(leaf_hash.trim_start_matches("0x"), &mut leaf).map_err(|_| {
        ApiError::bad_request("a leaf hash is 64 hex digits: SHA-256(0x00 || entry)")
    })?;
    let index = state.receipt_index.clone();
    let found = tokio::task::spawn_blocking(move || index.lookup(&leaf))
        .await
        .map_err(|e| ApiError::internal(e.to_string()))?
        .map_err(|e| ApiError::internal(e.to_string()))?;
    match found {
        Some(i) => Ok(Json(json!({"leaf_hash": hex::encode(leaf), "index": i}))),
        None => Err(ApiError::not_found(format!(
            "no entry with leaf hash {} in the log (a new receipt is indexed within a moment)",
            hex::encode(leaf)
        ))),
    }
}

#[derive(Deserialize)]
struct ConsistencyQuery {
    old: u64,
    new: u64,
}

async fn log_consistency(
    State(state): S,
    Query(q): Query<ConsistencyQuery>,
) -> Result<Json<Value>, ApiError> {
    if q.old > q.new {
        return Err(ApiError::bad_request("old must not exceed new"));
    }
    let log = state.clone();
    let proof = tokio::task::spawn_blocking(move || log.log.consistency_proof(q.old, q.new))
        .await
        .map_err(|e| ApiError::internal(e.to_string()))??;
    let hashes: Vec<String> = proof.iter().map(|h| BASE64.encode(h)).collect();
    Ok(Json(json!({"old": q.old, "new": q.new, "proof": hashes})))
}
