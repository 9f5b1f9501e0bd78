//! The storage and registry behind a Vouch node's model hub.
//!
//! `vouch-hub` owns model files and the names they are published under. Files are stored by
//! content address (their [`ModelId`], the SHA-256 of their bytes) on the local disk or in an
//! S3-compatible bucket ([`BlobConfig`]); every read is checked against the id, so corrupted
//! storage is an error, never a wrong model. Uploads stream through a size-bounded, hashing
//! spool file and an ONNX scan ([`onnx_scan`]) that checks the bytes are a `ModelProto` and
//! summarises it without decoding tensors. Names (`owner/model@version`) are published with
//! EIP-712 manifests signed by the publisher (`vouch_types::publish`, docs/protocol.md §7); the
//! hub enforces its policy on them (namespace ownership, a timestamp window, nonce replay,
//! immutable versions) and keeps its metadata in SQLite.
//!
//! It does not speak HTTP (the node maps [`HubError::code`] and [`HubError::http_status`] to
//! responses), run models (that is `vouch-engine`, which the hub never needs) or log anything
//! to the transparency log.
//!
//! Entry points: [`Hub::open`] with a [`HubConfig`], then [`Hub::put_model`],
//! [`Hub::model_stream`] / [`Hub::model_bytes`], [`Hub::publish`], [`Hub::list`], [`Hub::repo`]
//! and [`Hub::resolve`]. Layouts, schema, rules and error codes: docs/hub.md.

mod blob;
mod catalog;
mod error;
pub mod onnx_scan;
mod records;
mod verify;
mod version;

use std::{
    error::Error as StdError,
    fmt,
    fs::{File, TryLockError},
    path::PathBuf,
    sync::Arc,
    time::{SystemTime, UNIX_EPOCH},
};

use bytes::{Bytes, BytesMut};
use futures::{Stream, StreamExt, stream::BoxStream};
use sha2::{Digest, Sha256};
use tokio::io::{AsyncWriteExt, BufWriter};
use vouch_types::{
    ModelId,
    publish::{self, PublishError, SignedManifest},
};

pub use error::HubError;
pub use onnx_scan::{OnnxSummary, ScanLimits};
pub use records::{
    DEFAULT_LIST_LIMIT, ListQuery, MAX_LIST_LIMIT, MAX_LIST_OFFSET, MAX_QUERY_TEXT_BYTES,
    ModelRecord, RepoRecord, RepoSummary, StoredModel, VersionRecord, VersionSummary,
};

use crate::{blob::BlobStore, catalog::Catalog, verify::VerifiedStream, version::VersionKey};

/// Default upload limit: 2 GiB, protobuf's own ceiling for one message (a larger ONNX model
/// needs external data, which the hub refuses anyway).
pub const DEFAULT_MAX_MODEL_BYTES: u64 = 2 << 30;
/// Default distance allowed between a manifest's timestamp and the hub's clock.
pub const DEFAULT_PUBLISH_WINDOW_SECS: u64 = 300;

/// How a hub is set up.
#[derive(Clone, Debug)]
pub struct HubConfig {
    /// Where the metadata database, temporary upload files and (for [`BlobConfig::Filesystem`])
    /// blobs live. One hub process per directory (a lock file enforces it).
    pub data_dir: PathBuf,
    /// Where blobs live.
    pub blobs: BlobConfig,
    /// Largest accepted model file.
    pub max_model_bytes: u64,
    /// Accepted distance, either way, between a manifest's timestamp and the hub's clock.
    pub publish_window_secs: u64,
}

impl HubConfig {
    /// Blobs on disk under `data_dir`, the default limits.
    pub fn new(data_dir: impl Into<PathBuf>) -> Self {
        HubConfig {
            data_dir: data_dir.into(),
            blobs: BlobConfig::Filesystem,
            max_model_bytes: DEFAULT_MAX_MODEL_BYTES,
            publish_window_secs: DEFAULT_PUBLISH_WINDOW_SECS,
        }
    }
}

/// Where blobs are stored.
#[derive(Clone, Debug)]
pub enum BlobConfig {
    /// Files under `data_dir/blobs/sha256/`.
    Filesystem,
    /// Objects in an S3-compatible bucket (needs the `s3` cargo feature, on by default).
    S3(S3Config),
}

/// An S3-compatible bucket. Its `Debug` hides the secret key.
#[derive(Clone)]
pub struct S3Config {
    /// Bucket name.
    pub bucket: String,
    /// Endpoint URL for S3-compatible services (MinIO, moto, R2…); `None` for AWS.
    pub endpoint: Option<String>,
    /// Region, e.g. `us-east-1`.
    pub region: String,
    /// Access key id.
    pub access_key_id: String,
    /// Secret access key.
    pub secret_access_key: String,
    /// Allow plain `http://` endpoints (tests, private networks).
    pub allow_http: bool,
    /// Key prefix, e.g. `vouch/` (empty for none): blobs go to `<prefix>blobs/sha256/<hex>`.
    pub prefix: String,
}

impl fmt::Debug for S3Config {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("S3Config")
            .field("bucket", &self.bucket)
            .field("endpoint", &self.endpoint)
            .field("region", &self.region)
            .field("access_key_id", &self.access_key_id)
            .field("secret_access_key", &"<redacted>")
            .field("allow_http", &self.allow_http)
            .field("prefix", &self.prefix)
            .finish()
    }
}

/// The model hub: cheap to clone (an `Arc` inside), `Send + Sync`.
#[derive(Clone)]
pub struct Hub {
    inner: Arc<Inner>,
}

struct Inner {
    config: HubConfig,
    tmp_dir: PathBuf,
    catalog: Catalog,
    blobs: BlobStore,
    scan_limits: ScanLimits,
    /// Held open for the hub's lifetime: the advisory lock on `data_dir/LOCK`.
    _lock: File,
}

/// A download: the blob's size and its bytes, checked against the id as they pass.
pub type ModelStream = BoxStream<'static, Result<Bytes, HubError>>;

pub(crate) fn unix_now() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_secs())
}

fn io_err(context: &str) -> impl Fn(std::io::Error) -> HubError + '_ {
    move |e| HubError::storage(context, e)
}

impl Hub {
    /// Opens (creating if needed) the hub in `config.data_dir`: takes the directory's lock,
    /// removes temporary files left by a crash, migrates the database, opens blob storage.
    pub async fn open(config: HubConfig) -> Result<Hub, HubError> {
        if config.max_model_bytes == 0 {
            return Err(HubError::Config("max_model_bytes must be positive".into()));
        }
        let data_dir = config.data_dir.clone();
        let tmp_dir = data_dir.join("tmp");
        let (lock, catalog) = tokio::task::spawn_blocking({
            let (data_dir, tmp_dir) = (data_dir.clone(), tmp_dir.clone());
            move || -> Result<(File, Catalog), HubError> {
                std::fs::create_dir_all(&tmp_dir)
                    .map_err(io_err(&format!("creating {}", tmp_dir.display())))?;
                let lock = File::options()
                    .create(true)
                    .truncate(false)
                    .write(true)
                    .open(data_dir.join("LOCK"))
                    .map_err(io_err("opening the lock file"))?;
                match lock.try_lock() {
                    Ok(()) => {}
                    Err(TryLockError::WouldBlock) => {
                        return Err(HubError::Config(format!(
                            "{} is in use by another hub",
                            data_dir.display()
                        )));
                    }
                    Err(TryLockError::Error(e)) => {
                        return Err(HubError::storage("locking the data directory", e));
                    }
                }
                // Only this process uses the directory now: anything in tmp/ is a leftover.
                for entry in std::fs::read_dir(&tmp_dir).map_err(io_err("listing tmp/"))? {
                    let path = entry.map_err(io_err("listing tmp/"))?.path();
                    if path.is_dir() {
                        std::fs::remove_dir_all(&path)
                    } else {
                        std::fs::remove_file(&path)
                    }
                    .map_err(io_err("cleaning tmp/"))?;
                }
                let catalog = Catalog::open(&data_dir.join("hub.sqlite"))?;
                Ok((lock, catalog))
            }
        })
        .await
        .map_err(|e| HubError::Storage(format!("opening the hub: {e}")))??;
        let blobs = BlobStore::open(&config.blobs, &data_dir).await?;
        Ok(Hub {
            inner: Arc::new(Inner {
                config,
                tmp_dir,
                catalog,
                blobs,
                scan_limits: ScanLimits::default(),
                _lock: lock,
            }),
        })
    }

    /// The configuration the hub was opened with.
    pub fn config(&self) -> &HubConfig {
        &self.inner.config
    }

    /// Stores an uploaded model from a stream of chunks: spools it to a temporary file while
    /// hashing it, refuses it as soon as it passes `max_model_bytes` (reading no further),
    /// checks it is an ONNX `ModelProto` and summarises it, then moves it to its content
    /// address. Uploading bytes the hub already holds succeeds with `existed: true` (and
    /// repairs a damaged local copy). Temporary files are removed on every failure, including
    /// when the returned future is dropped.
    pub async fn put_model<S, E>(&self, mut body: S) -> Result<StoredModel, HubError>
    where
        S: Stream<Item = Result<Bytes, E>> + Unpin,
        E: Into<Box<dyn StdError + Send + Sync>>,
    {
        let max = self.inner.config.max_model_bytes;
        let (file, spool) = tempfile::Builder::new()
            .prefix("upload-")
            .tempfile_in(&self.inner.tmp_dir)
            .map_err(io_err("creating an upload file"))?
            .into_parts();
        let mut out = BufWriter::with_capacity(1 << 20, tokio::fs::File::from_std(file));
        let mut hasher = Sha256::new();
        let mut size = 0u64;
        while let Some(chunk) = body.next().await {
            let chunk = chunk.map_err(|e| HubError::UploadInterrupted(e.into().to_string()))?;
            size = size.saturating_add(chunk.len() as u64);
            if size > max {
                return Err(HubError::TooLarge { limit: max });
            }
            hasher.update(&chunk);
            out.write_all(&chunk)
                .await
                .map_err(io_err("writing an upload"))?;
        }
        out.flush().await.map_err(io_err("writing an upload"))?;
        out.into_inner()
            .sync_all()
            .await
            .map_err(io_err("syncing an upload"))?;
        let id = ModelId::from_digest(hasher.finalize().into());

        let known = self
            .inner
            .catalog
            .call(move |c| catalog::get_model(c, &id))
            .await?;
        if let Some(record) = known {
            // Already checked when first stored; committing again repairs a damaged blob.
            self.inner.blobs.commit(spool, &id, size).await?;
            return Ok(StoredModel {
                record,
                existed: true,
            });
        }
        let limits = self.inner.scan_limits;
        let path = spool.to_path_buf();
        let summary = tokio::task::spawn_blocking(move || onnx_scan::scan_file(&path, &limits))
            .await
            .map_err(|e| HubError::Storage(format!("scanning an upload: {e}")))??;
        self.inner.blobs.commit(spool, &id, size).await?;
        let record = ModelRecord {
            id,
            size,
            summary,
            created_at: unix_now(),
        };
        let (record, existed) = self
            .inner
            .catalog
            .call(move |c| catalog::insert_model(c, &record))
            .await?;
        Ok(StoredModel { record, existed })
    }

    /// A model's record: size, ONNX summary, when it was stored.
    pub async fn model(&self, id: &ModelId) -> Result<ModelRecord, HubError> {
        let id = *id;
        self.inner
            .catalog
            .call(move |c| catalog::get_model(c, &id))
            .await?
            .ok_or_else(|| HubError::not_found("model", id))
    }

    /// Streams a model for download: its size, then its bytes, checked as they pass; a blob
    /// that doesn't match its id or recorded size ends the stream with
    /// [`HubError::CorruptBlob`] instead of ending normally.
    pub async fn model_stream(&self, id: &ModelId) -> Result<(u64, ModelStream), HubError> {
        let record = self.model(id).await?;
        let raw = self.inner.blobs.read(id).await?;
        let stream = VerifiedStream::new(raw, *id, record.size);
        Ok((record.size, stream.boxed()))
    }

    /// Reads a whole model into memory (at most its recorded size, which was bounded by
    /// `max_model_bytes` when it was stored), checked against its id.
    pub async fn model_bytes(&self, id: &ModelId) -> Result<Bytes, HubError> {
        let (size, mut stream) = self.model_stream(id).await?;
        let capacity = usize::try_from(size)
            .map_err(|_| HubError::Storage(format!("{size} bytes don't fit in memory here")))?;
        let mut buf = BytesMut::with_capacity(capacity);
        while let Some(chunk) = stream.next().await {
            buf.extend_from_slice(&chunk?);
        }
        Ok(buf.freeze())
    }

    /// Publishes `name@version` from a signed manifest, `now` being the hub's clock in Unix
    /// seconds. Checks, in order: the fields and the publisher's signature; if the identical
    /// signed manifest was already accepted, returns that version (a safe retry); the
    /// timestamp within `publish_window_secs` of `now`; the nonce never accepted before; the
    /// model stored here; the `owner` namespace unclaimed (the publisher then claims it) or
    /// claimed by the publisher; the version not yet published.
    pub async fn publish(
        &self,
        signed: SignedManifest,
        now: u64,
    ) -> Result<VersionRecord, HubError> {
        signed.verify().map_err(|e| match e {
            PublishError::InvalidField { .. } => HubError::InvalidManifest(e.to_string()),
            PublishError::BadSignature(_) => HubError::BadSignature(e.to_string()),
        })?;
        VersionKey::parse(&signed.manifest.version)?;
        let ctx = catalog::PublishContext {
            now,
            window_secs: self.inner.config.publish_window_secs,
        };
        self.inner
            .catalog
            .call(move |c| catalog::publish(c, &signed, &ctx))
            .await
    }

    /// Repositories matching a query, ordered by name, described by their latest versions.
    pub async fn list(&self, q: &ListQuery) -> Result<Vec<RepoSummary>, HubError> {
        check_query(q)?;
        let q = q.clone();
        self.inner.catalog.call(move |c| catalog::list(c, &q)).await
    }

    /// A repository: its latest version in full and every version, highest first.
    pub async fn repo(&self, name: &str) -> Result<RepoRecord, HubError> {
        check_name_arg(name)?;
        let name = name.to_string();
        self.inner
            .catalog
            .call(move |c| {
                catalog::repo(c, &name)?.ok_or_else(|| HubError::not_found("repository", &name))
            })
            .await
    }

    /// The version `name@version`, or with `None` the latest: the highest release by semver,
    /// or the highest pre-release if there is no release.
    pub async fn resolve(
        &self,
        name: &str,
        version: Option<&str>,
    ) -> Result<VersionRecord, HubError> {
        check_name_arg(name)?;
        if let Some(v) = version {
            publish::check_version(v).map_err(|e| HubError::InvalidArgument(e.to_string()))?;
        }
        let name = name.to_string();
        let version = version.map(str::to_string);
        self.inner
            .catalog
            .call(move |c| {
                let version = match version {
                    Some(v) => v,
                    None => catalog::latest_version(c, &name)?
                        .ok_or_else(|| HubError::not_found("repository", &name))?,
                };
                catalog::version_record(c, &name, &version)?
                    .ok_or_else(|| HubError::not_found("version", format!("{name}@{version}")))
            })
            .await
    }
}

fn check_name_arg(name: &str) -> Result<(), HubError> {
    publish::check_name(name).map_err(|e| HubError::InvalidArgument(e.to_string()))
}

fn check_query(q: &ListQuery) -> Result<(), HubError> {
    let bad = |m: String| Err(HubError::InvalidArgument(m));
    if let Some(limit) = q.limit
        && !(1..=MAX_LIST_LIMIT).contains(&limit)
    {
        return bad(format!(
            "limit {limit} is not between 1 and {MAX_LIST_LIMIT}"
        ));
    }
    if q.offset > MAX_LIST_OFFSET {
        return bad(format!("offset {} is above {MAX_LIST_OFFSET}", q.offset));
    }
    for (what, v, max) in [
        ("text", &q.text, MAX_QUERY_TEXT_BYTES),
        ("tag", &q.tag, publish::MAX_LABEL_BYTES),
        ("task", &q.task, publish::MAX_LABEL_BYTES),
        ("owner", &q.owner, publish::MAX_NAME_BYTES),
    ] {
        if let Some(v) = v
            && (v.is_empty() || v.len() > max)
        {
            return bad(format!("{what} must be 1 to {max} bytes"));
        }
    }
    Ok(())
}
