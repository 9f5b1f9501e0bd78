//! Content-addressed blob storage: model files on the local disk or in an S3-compatible bucket.
//!
//! Both backends only ever see complete, hashed, checked files: an upload is spooled to a
//! temporary file under `data_dir/tmp` first (`Hub::put_model`), and [`BlobStore::commit`] moves
//! it to its content address in one step a reader can't observe half-done (a rename on disk; a
//! single PUT or a completed multipart upload in S3). Reads return the bytes as stored; checking
//! them against the id is the caller's job (`verify.rs`), so no backend can skip it.

use std::{
    io,
    path::{Path, PathBuf},
};

use bytes::{Bytes, BytesMut};
use futures::{StreamExt, stream::BoxStream};
use tempfile::TempPath;
use tokio::io::AsyncReadExt;
use vouch_types::ModelId;

use crate::{BlobConfig, HubError};

/// Bytes of a blob as they come back from storage.
pub(crate) type ByteStream = BoxStream<'static, Result<Bytes, HubError>>;

/// Bytes read from disk per chunk of a download.
const READ_CHUNK: usize = 256 * 1024;

/// Where blobs live.
pub(crate) enum BlobStore {
    /// `data_dir/blobs/sha256/<hex>`.
    Fs(FsBlobs),
    /// `<prefix>blobs/sha256/<hex>` in a bucket.
    #[cfg(feature = "s3")]
    S3(s3::S3Blobs),
}

/// The relative key of a blob: `blobs/sha256/<64 lower-case hex digits>`.
pub(crate) fn blob_key(id: &ModelId) -> String {
    format!("blobs/sha256/{}", hex::encode(id.digest()))
}

impl BlobStore {
    /// Opens the configured backend.
    pub(crate) async fn open(config: &BlobConfig, data_dir: &Path) -> Result<Self, HubError> {
        match config {
            BlobConfig::Filesystem => {
                let root = data_dir.join("blobs").join("sha256");
                tokio::fs::create_dir_all(&root)
                    .await
                    .map_err(|e| HubError::storage(&format!("creating {}", root.display()), e))?;
                Ok(BlobStore::Fs(FsBlobs {
                    data_dir: data_dir.to_path_buf(),
                }))
            }
            #[cfg(feature = "s3")]
            BlobConfig::S3(s3) => Ok(BlobStore::S3(s3::S3Blobs::open(s3).await?)),
            #[cfg(not(feature = "s3"))]
            BlobConfig::S3(_) => Err(HubError::Config(
                "this build of vouch-hub has no S3 support (cargo feature `s3`)".into(),
            )),
        }
    }

    /// Moves a complete spool file of `size` bytes whose SHA-256 is `id` to its content
    /// address. Safe to run concurrently for the same id: every writer stores the same bytes.
    pub(crate) async fn commit(
        &self,
        spool: TempPath,
        id: &ModelId,
        size: u64,
    ) -> Result<(), HubError> {
        match self {
            BlobStore::Fs(fs) => fs.commit(spool, id, size).await,
            #[cfg(feature = "s3")]
            BlobStore::S3(s3) => s3.commit(spool, id, size).await,
        }
    }

    /// The blob's bytes as stored, unchecked; a missing blob is [`HubError::CorruptBlob`]
    /// (the catalog only lists committed blobs).
    pub(crate) async fn read(&self, id: &ModelId) -> Result<ByteStream, HubError> {
        match self {
            BlobStore::Fs(fs) => fs.read(id).await,
            #[cfg(feature = "s3")]
            BlobStore::S3(s3) => s3.read(id).await,
        }
    }
}

fn missing(id: &ModelId) -> HubError {
    HubError::CorruptBlob {
        id: *id,
        why: "the blob is missing from storage".into(),
    }
}

/// Blobs as files under the data directory.
pub(crate) struct FsBlobs {
    data_dir: PathBuf,
}

impl FsBlobs {
    /// The file holding a blob.
    pub(crate) fn path(&self, id: &ModelId) -> PathBuf {
        self.data_dir.join(blob_key(id))
    }

    async fn commit(&self, spool: TempPath, id: &ModelId, size: u64) -> Result<(), HubError> {
        let to = self.path(id);
        tokio::task::spawn_blocking(move || -> io::Result<()> {
            let len = std::fs::metadata(&spool)?.len();
            if len != size {
                return Err(io::Error::other(format!(
                    "the spool file has {len} bytes, {size} were written"
                )));
            }
            // rename(2) replaces atomically: concurrent commits of the same bytes each leave a
            // complete file, and a corrupted blob is repaired by uploading it again.
            spool.persist(&to).map_err(|e| e.error)?;
            // Make the rename durable before the catalog points at it.
            if let Some(dir) = to.parent() {
                std::fs::File::open(dir)?.sync_all()?;
            }
            Ok(())
        })
        .await
        .map_err(|e| HubError::storage("committing a blob", e))?
        .map_err(|e| HubError::storage("committing a blob", e))
    }

    async fn read(&self, id: &ModelId) -> Result<ByteStream, HubError> {
        let file = match tokio::fs::File::open(self.path(id)).await {
            Ok(f) => f,
            Err(e) if e.kind() == io::ErrorKind::NotFound => return Err(missing(id)),
            Err(e) => return Err(HubError::storage("opening a blob", e)),
        };
        let stream = futures::stream::try_unfold(file, |mut file| async move {
            let mut buf = BytesMut::with_capacity(READ_CHUNK);
            let n = file
                .read_buf(&mut buf)
                .await
                .map_err(|e| HubError::storage("reading a blob", e))?;
            Ok((n > 0).then(|| (buf.freeze(), file)))
        });
        Ok(stream.boxed())
    }
}

#[cfg(feature = "s3")]
pub(crate) mod s3 {
    //! Blobs in an S3-compatible bucket through `object_store`.

    use std::{sync::Arc, time::Duration};

    use futures::TryStreamExt;
    use object_store::{
        ClientOptions, ObjectStore, ObjectStoreExt, PutPayload, RetryConfig, WriteMultipart,
        aws::AmazonS3, aws::AmazonS3Builder, path::Path as ObjectPath,
    };

    use super::*;
    use crate::S3Config;

    /// Files up to this size are sent in one PUT; larger ones as a multipart upload of parts
    /// this size (S3 wants parts of at least 5 MiB).
    const PART_BYTES: usize = 8 * 1024 * 1024;
    /// Parts uploaded at once.
    const PARTS_IN_FLIGHT: usize = 4;

    /// A bucket and a key prefix.
    pub(crate) struct S3Blobs {
        store: Arc<AmazonS3>,
        prefix: String,
    }

    /// Checks a key prefix: empty, or `/`-separated segments of letters, digits, `-`, `_`, `.`
    /// (not `.` or `..`), with or without a trailing `/`; returns it ending in `/` if not empty.
    pub(crate) fn normalise_prefix(prefix: &str) -> Result<String, HubError> {
        let trimmed = prefix.strip_suffix('/').unwrap_or(prefix);
        if trimmed.is_empty() {
            return Ok(String::new());
        }
        let ok = trimmed.split('/').all(|seg| {
            !seg.is_empty()
                && seg != "."
                && seg != ".."
                && seg
                    .bytes()
                    .all(|c| c.is_ascii_alphanumeric() || b"-_.".contains(&c))
        });
        if ok {
            Ok(format!("{trimmed}/"))
        } else {
            Err(HubError::Config(format!(
                "S3 prefix {prefix:?} must be /-separated segments of letters, digits, - _ ."
            )))
        }
    }

    impl S3Blobs {
        /// Builds the client and checks the bucket answers, so a wrong endpoint, bucket or key
        /// fails at startup rather than at the first upload.
        pub(crate) async fn open(config: &S3Config) -> Result<Self, HubError> {
            let prefix = normalise_prefix(&config.prefix)?;
            // Every call has a connect timeout and a timeout between reads; no overall timeout,
            // so a multi-gigabyte download isn't cut off while it still makes progress.
            let client = ClientOptions::new()
                .with_allow_http(config.allow_http)
                .with_connect_timeout(Duration::from_secs(5))
                .with_timeout_disabled()
                .with_read_timeout(Duration::from_secs(30));
            let mut builder = AmazonS3Builder::new()
                .with_bucket_name(&config.bucket)
                .with_region(&config.region)
                .with_access_key_id(&config.access_key_id)
                .with_secret_access_key(&config.secret_access_key)
                .with_allow_http(config.allow_http)
                .with_client_options(client)
                // object_store's default retries for up to 3 minutes; a request fails within a
                // minute here, and the node answers 503.
                .with_retry(RetryConfig {
                    max_retries: 4,
                    retry_timeout: Duration::from_secs(60),
                    ..RetryConfig::default()
                });
            if let Some(endpoint) = &config.endpoint {
                builder = builder.with_endpoint(endpoint);
            }
            let store = builder
                .build()
                .map_err(|e| HubError::Config(format!("S3: {e}")))?;
            let blobs = S3Blobs {
                store: Arc::new(store),
                prefix,
            };
            // A listing, not a HEAD: a HEAD can't tell a missing bucket from a missing key.
            let probe = ObjectPath::from(format!("{}blobs/sha256/probe", blobs.prefix));
            match blobs.store.list_with_delimiter(Some(&probe)).await {
                Ok(_) => Ok(blobs),
                Err(e) => Err(HubError::storage(
                    &format!("S3 bucket {:?} is not usable", config.bucket),
                    e,
                )),
            }
        }

        fn location(&self, id: &ModelId) -> ObjectPath {
            ObjectPath::from(format!("{}{}", self.prefix, blob_key(id)))
        }

        pub(crate) async fn commit(
            &self,
            spool: TempPath,
            id: &ModelId,
            size: u64,
        ) -> Result<(), HubError> {
            let location = self.location(id);
            match self.store.head(&location).await {
                // Content-addressed: the same key with the same size holds the same bytes
                // (reads verify them anyway).
                Ok(meta) if meta.size == size => return Ok(()),
                Ok(_) | Err(object_store::Error::NotFound { .. }) => {}
                Err(e) => return Err(HubError::storage("S3 HEAD", e)),
            }
            let mut file = tokio::fs::File::open(&spool)
                .await
                .map_err(|e| HubError::storage("reopening the upload", e))?;
            if size <= PART_BYTES as u64 {
                let mut buf = Vec::with_capacity(size as usize);
                file.read_to_end(&mut buf)
                    .await
                    .map_err(|e| HubError::storage("reading the upload", e))?;
                self.store
                    .put(&location, PutPayload::from(buf))
                    .await
                    .map_err(|e| HubError::storage("S3 PUT", e))?;
                return Ok(());
            }
            let upload = self
                .store
                .put_multipart(&location)
                .await
                .map_err(|e| HubError::storage("starting an S3 multipart upload", e))?;
            let mut writer = WriteMultipart::new_with_chunk_size(upload, PART_BYTES);
            let sent = async {
                loop {
                    let mut buf = BytesMut::with_capacity(PART_BYTES);
                    while buf.len() < PART_BYTES {
                        let n = file
                            .read_buf(&mut buf)
                            .await
                            .map_err(|e| HubError::storage("reading the upload", e))?;
                        if n == 0 {
                            break;
                        }
                    }
                    if buf.is_empty() {
                        return Ok::<(), HubError>(());
                    }
                    writer
                        .wait_for_capacity(PARTS_IN_FLIGHT)
                        .await
                        .map_err(|e| HubError::storage("S3 upload part", e))?;
                    writer.put(buf.freeze());
                }
            }
            .await;
            match sent {
                Ok(()) => writer
                    .finish()
                    .await
                    .map(drop)
                    .map_err(|e| HubError::storage("completing an S3 multipart upload", e)),
                Err(e) => {
                    // Best effort: a bucket lifecycle rule should abort leftovers too.
                    let _ = writer.abort().await;
                    Err(e)
                }
            }
        }

        pub(crate) async fn read(&self, id: &ModelId) -> Result<ByteStream, HubError> {
            match self.store.get(&self.location(id)).await {
                Ok(got) => Ok(got
                    .into_stream()
                    .map_err(|e| HubError::storage("S3 GET body", e))
                    .boxed()),
                Err(object_store::Error::NotFound { .. }) => Err(missing(id)),
                Err(e) => Err(HubError::storage("S3 GET", e)),
            }
        }
    }

    #[cfg(test)]
    mod tests {
        use super::*;

        #[test]
        fn prefixes_are_checked_and_normalised() {
            assert_eq!(normalise_prefix("").unwrap(), "");
            assert_eq!(normalise_prefix("/").unwrap(), "");
            assert_eq!(normalise_prefix("vouch").unwrap(), "vouch/");
            assert_eq!(normalise_prefix("a/b.c/").unwrap(), "a/b.c/");
            for bad in ["a//b", "../x", "a/./b", "sp ace", "/abs"] {
                assert!(normalise_prefix(bad).is_err(), "{bad}");
            }
        }
    }
}
