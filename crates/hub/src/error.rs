//! The hub's one error type, with stable codes for HTTP mapping (docs/hub.md, "Errors").

use vouch_types::{Address, ModelId};

use crate::onnx_scan::ScanError;

/// Why a hub operation failed. [`HubError::code`] is stable and is what clients match on;
/// [`HubError::http_status`] is the status the node is expected to answer with.
#[derive(Debug, thiserror::Error)]
pub enum HubError {
    /// No model, repository or version by that name.
    #[error("{what} not found: {key}")]
    NotFound {
        /// `model`, `repository` or `version`.
        what: &'static str,
        /// What was looked up.
        key: String,
    },
    /// An upload went past the size limit (nothing past the limit was read).
    #[error("model larger than the hub's limit of {limit} bytes")]
    TooLarge {
        /// `max_model_bytes`.
        limit: u64,
    },
    /// The uploaded bytes are not an acceptable ONNX model.
    #[error("{0}")]
    NotOnnx(ScanError),
    /// The upload's body stream failed (the client went away, or the transport broke).
    #[error("upload interrupted: {0}")]
    UploadInterrupted(String),
    /// A manifest field breaks the format (name, version, lengths, tags).
    #[error("invalid manifest: {0}")]
    InvalidManifest(String),
    /// The manifest's signature is malformed or not the publisher's.
    #[error("{0}")]
    BadSignature(String),
    /// The manifest's timestamp is outside the hub's window around its clock.
    #[error(
        "manifest timestamp {timestamp} is more than {window_secs} s away from the hub's clock ({now})"
    )]
    StaleTimestamp {
        /// The manifest's timestamp.
        timestamp: u64,
        /// The hub's time.
        now: u64,
        /// The accepted distance.
        window_secs: u64,
    },
    /// The manifest's nonce was already used by an accepted manifest.
    #[error("nonce {0} was already used: a manifest is accepted once")]
    Replayed(String),
    /// The manifest names a model the hub doesn't hold.
    #[error("model {0} is not in the hub: upload it before publishing")]
    UnknownModel(ModelId),
    /// The owner namespace belongs to another address.
    #[error("namespace {owner:?} belongs to {claimed_by}, not to {publisher}")]
    NotOwner {
        /// The namespace (`owner` in `owner/model`).
        owner: String,
        /// Who claimed it.
        claimed_by: Address,
        /// Who tried to publish.
        publisher: Address,
    },
    /// `name@version` exists with another manifest.
    #[error("{name}@{version} already exists; versions are immutable, publish a new one")]
    VersionExists {
        /// Repository name.
        name: String,
        /// Version.
        version: String,
    },
    /// A query or lookup argument is malformed or out of bounds.
    #[error("invalid argument: {0}")]
    InvalidArgument(String),
    /// The hub's configuration can't be used.
    #[error("hub configuration: {0}")]
    Config(String),
    /// Blob storage failed (disk, S3).
    #[error("blob storage: {0}")]
    Storage(String),
    /// The metadata database failed.
    #[error("metadata database: {0}")]
    Database(String),
    /// A stored blob doesn't match its id (or the recorded size): storage is corrupted.
    #[error("stored blob for {id} is corrupted: {why}")]
    CorruptBlob {
        /// The model.
        id: ModelId,
        /// What didn't match.
        why: String,
    },
}

impl HubError {
    /// A stable, machine-readable code (`snake_case`), documented in docs/hub.md.
    pub fn code(&self) -> &'static str {
        match self {
            HubError::NotFound { .. } => "not_found",
            HubError::TooLarge { .. } => "too_large",
            HubError::NotOnnx(_) => "not_onnx",
            HubError::UploadInterrupted(_) => "upload_interrupted",
            HubError::InvalidManifest(_) => "invalid_manifest",
            HubError::BadSignature(_) => "bad_signature",
            HubError::StaleTimestamp { .. } => "stale_timestamp",
            HubError::Replayed(_) => "replayed",
            HubError::UnknownModel(_) => "unknown_model",
            HubError::NotOwner { .. } => "not_owner",
            HubError::VersionExists { .. } => "version_exists",
            HubError::InvalidArgument(_) => "invalid_argument",
            HubError::Config(_) => "config",
            HubError::Storage(_) => "storage",
            HubError::Database(_) => "database",
            HubError::CorruptBlob { .. } => "corrupt_blob",
        }
    }

    /// The HTTP status suggested for this error (docs/hub.md).
    pub fn http_status(&self) -> u16 {
        match self {
            HubError::NotFound { .. } => 404,
            HubError::TooLarge { .. } => 413,
            HubError::NotOnnx(_) => 422,
            HubError::UploadInterrupted(_) => 400,
            HubError::InvalidManifest(_) => 422,
            HubError::BadSignature(_) => 401,
            HubError::StaleTimestamp { .. } => 401,
            HubError::Replayed(_) => 409,
            HubError::UnknownModel(_) => 422,
            HubError::NotOwner { .. } => 403,
            HubError::VersionExists { .. } => 409,
            HubError::InvalidArgument(_) => 400,
            HubError::Config(_) => 500,
            HubError::Storage(_) => 503,
            HubError::Database(_) => 500,
            HubError::CorruptBlob { .. } => 500,
        }
    }

    pub(crate) fn not_found(what: &'static str, key: impl ToString) -> HubError {
        HubError::NotFound {
            what,
            key: key.to_string(),
        }
    }

    pub(crate) fn storage(context: &str, e: impl std::fmt::Display) -> HubError {
        HubError::Storage(format!("{context}: {e}"))
    }
}

impl From<ScanError> for HubError {
    fn from(e: ScanError) -> Self {
        match e {
            // The spool file failed to read back: a storage problem, not the client's bytes.
            ScanError::Io(e) => HubError::storage("reading the upload back", e),
            other => HubError::NotOnnx(other),
        }
    }
}

impl From<rusqlite::Error> for HubError {
    fn from(e: rusqlite::Error) -> Self {
        HubError::Database(e.to_string())
    }
}
