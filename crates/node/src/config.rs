//! The node's configuration: a TOML file, overridden by flags and `VOUCH_*` environment
//! variables (the CLI applies those; see docs/node.md for every key).

use std::{net::SocketAddr, path::PathBuf, time::Duration};

use serde::{Deserialize, Serialize};

/// Everything the node needs to start. Every field has a default, so an empty file (or none)
/// gives a working node on loopback.
#[derive(Clone, Debug, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct NodeConfig {
    /// Address to listen on.
    pub listen: SocketAddr,
    /// Directory for blobs, metadata, keys and the log.
    pub data_dir: PathBuf,
    /// Operator key: an Ethereum V3 keystore. When unset, the node uses (creating it on first
    /// start) `<data_dir>/keys/operator.json`, encrypted with `VOUCH_KEYSTORE_PASSWORD` if set,
    /// else a raw key file readable only by the owner.
    pub operator_key: Option<PathBuf>,
    /// Inference settings.
    pub inference: InferenceConfig,
    /// Hub settings.
    pub hub: HubSettings,
    /// Transparency log settings.
    pub log: LogSettings,
    /// Request limits.
    pub http: HttpConfig,
}

impl Default for NodeConfig {
    fn default() -> Self {
        NodeConfig {
            listen: "127.0.0.1:8080".parse().expect("a valid address"),
            data_dir: PathBuf::from("vouch-data"),
            operator_key: None,
            inference: InferenceConfig::default(),
            hub: HubSettings::default(),
            log: LogSettings::default(),
            http: HttpConfig::default(),
        }
    }
}

/// How inference runs.
#[derive(Clone, Debug, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct InferenceConfig {
    /// Determinism profile (`exact` or `native`).
    pub profile: String,
    /// Threads per inference for matrix products.
    pub threads: usize,
    /// Inferences running at once; more wait in a queue.
    pub max_concurrent: usize,
    /// Requests allowed to wait for a slot; past this the node answers 503 at once.
    pub max_queued: usize,
    /// Longest a request waits for a slot before a 503.
    #[serde(with = "millis")]
    pub queue_timeout: Duration,
    /// Memory budget of the prepared-model cache, in bytes (estimated from model file sizes).
    pub model_cache_bytes: u64,
    /// Largest input tensor, in bytes.
    pub max_tensor_bytes: usize,
}

impl Default for InferenceConfig {
    fn default() -> Self {
        InferenceConfig {
            profile: "exact".into(),
            threads: 1,
            max_concurrent: std::thread::available_parallelism().map_or(2, |n| n.get()),
            max_queued: 64,
            queue_timeout: Duration::from_millis(2000),
            model_cache_bytes: 2 << 30,
            max_tensor_bytes: 64 << 20,
        }
    }
}

/// Model hub settings.
#[derive(Clone, Debug, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct HubSettings {
    /// Largest model upload, in bytes.
    pub max_model_bytes: u64,
    /// How far a publish manifest's timestamp may be from the node's clock, in seconds.
    pub publish_window_secs: u64,
    /// `filesystem` (under data_dir) or `s3`.
    pub blobs: String,
    /// S3 bucket (for `blobs = "s3"`).
    pub s3_bucket: String,
    /// S3 endpoint URL, for S3-compatible servers.
    pub s3_endpoint: Option<String>,
    /// S3 region.
    pub s3_region: String,
    /// Key prefix inside the bucket.
    pub s3_prefix: String,
    /// Allow plain HTTP to the endpoint (local test servers).
    pub s3_allow_http: bool,
}

impl Default for HubSettings {
    fn default() -> Self {
        HubSettings {
            max_model_bytes: 2 << 30,
            publish_window_secs: 300,
            blobs: "filesystem".into(),
            s3_bucket: String::new(),
            s3_endpoint: None,
            s3_region: "us-east-1".into(),
            s3_prefix: String::new(),
            s3_allow_http: false,
        }
    }
}

/// Transparency log settings.
#[derive(Clone, Debug, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct LogSettings {
    /// The log's origin line (its name in checkpoints); keep it stable forever.
    pub origin: String,
    /// How long the sequencer waits for more entries before integrating a batch.
    #[serde(with = "millis")]
    pub batch_interval: Duration,
    /// Most entries per batch.
    pub max_batch: usize,
    /// Witnesses to push each new checkpoint to (`[[log.witnesses]] url = …, vkey = …`).
    pub witnesses: Vec<crate::witness::WitnessPeer>,
}

impl Default for LogSettings {
    fn default() -> Self {
        LogSettings {
            origin: "localhost/vouch".into(),
            batch_interval: Duration::from_millis(5),
            max_batch: 256,
            witnesses: Vec::new(),
        }
    }
}

/// HTTP limits.
#[derive(Clone, Debug, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct HttpConfig {
    /// Largest JSON request body, in bytes (uploads have their own limit).
    pub max_body_bytes: usize,
    /// Longest a request may take, end to end.
    #[serde(with = "millis")]
    pub request_timeout: Duration,
}

impl Default for HttpConfig {
    fn default() -> Self {
        HttpConfig {
            max_body_bytes: 16 << 20,
            request_timeout: Duration::from_secs(120),
        }
    }
}

/// Durations as integer milliseconds in TOML (`queue_timeout = 2000`).
mod millis {
    use std::time::Duration;

    use serde::{Deserialize, Deserializer, Serializer};

    pub fn serialize<S: Serializer>(d: &Duration, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_u64(d.as_millis() as u64)
    }
    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Duration, D::Error> {
        Ok(Duration::from_millis(u64::deserialize(d)?))
    }
}

impl NodeConfig {
    /// Parses a TOML configuration file's text.
    pub fn from_toml(text: &str) -> Result<NodeConfig, String> {
        toml::from_str(text).map_err(|e| e.to_string())
    }

    /// Checks values that would make the node misbehave.
    pub fn validate(&self) -> Result<(), String> {
        let i = &self.inference;
        if i.max_concurrent == 0 || i.threads == 0 {
            return Err("inference.max_concurrent and inference.threads must be at least 1".into());
        }
        if self.log.max_batch == 0 {
            return Err("log.max_batch must be at least 1".into());
        }
        if !matches!(self.hub.blobs.as_str(), "filesystem" | "s3") {
            return Err(format!(
                "hub.blobs must be \"filesystem\" or \"s3\", not {:?}",
                self.hub.blobs
            ));
        }
        if self.hub.blobs == "s3" && self.hub.s3_bucket.is_empty() {
            return Err("hub.blobs = \"s3\" needs hub.s3_bucket".into());
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn empty_file_gives_defaults_and_unknown_keys_are_refused() {
        let c = NodeConfig::from_toml("").unwrap();
        assert_eq!(c.listen.port(), 8080);
        c.validate().unwrap();
        let c =
            NodeConfig::from_toml("listen = \"127.0.0.1:0\"\n[inference]\nqueue_timeout = 50\n")
                .unwrap();
        assert_eq!(c.inference.queue_timeout, Duration::from_millis(50));
        assert!(NodeConfig::from_toml("listne = \"x\"").is_err());
        assert!(NodeConfig::from_toml("[inference]\nthreads = \"two\"").is_err());
        let mut c = NodeConfig::default();
        c.hub.blobs = "s3".into();
        assert!(c.validate().is_err());
    }
}
