//! What the hub returns: serde records the node sends as JSON (docs/hub.md, "Records").

use serde::{Deserialize, Serialize};
use vouch_types::{Address, ModelId, publish::SignedManifest};

use crate::onnx_scan::OnnxSummary;

/// A model file the hub holds.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct ModelRecord {
    /// Its id (CIDv1 of the bytes).
    pub id: ModelId,
    /// Its size in bytes.
    pub size: u64,
    /// What the ONNX scan found.
    pub summary: OnnxSummary,
    /// Unix seconds when the hub first stored it.
    pub created_at: u64,
}

/// The outcome of an upload.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct StoredModel {
    /// The model as stored.
    #[serde(flatten)]
    pub record: ModelRecord,
    /// Whether the hub already held these bytes (the upload changed nothing).
    pub existed: bool,
}

/// A published `name@version`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct VersionRecord {
    /// `owner/model`.
    pub name: String,
    /// Semantic version.
    pub version: String,
    /// The model it names.
    pub model: ModelId,
    /// The model's size in bytes.
    pub size: u64,
    /// Who published it (EIP-55).
    #[serde(with = "vouch_types::receipt::checksummed")]
    pub publisher: Address,
    /// Unix seconds when the hub accepted it (its clock, not the manifest's).
    pub published_at: u64,
    /// The publisher's signed manifest, exactly as accepted: clients verify it offline.
    pub manifest: SignedManifest,
}

/// One version in a repository's list.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct VersionSummary {
    /// Semantic version.
    pub version: String,
    /// The model it names.
    pub model: ModelId,
    /// Who published it.
    #[serde(with = "vouch_types::receipt::checksummed")]
    pub publisher: Address,
    /// Unix seconds when the hub accepted it.
    pub published_at: u64,
}

/// A repository (`owner/model`) with every version.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct RepoRecord {
    /// `owner/model`.
    pub name: String,
    /// The namespace.
    pub owner: String,
    /// The latest version (highest semver; pre-releases only if there is nothing else), whose
    /// manifest gives the repository's description, task, license and tags.
    pub latest: VersionRecord,
    /// Every version, highest first.
    pub versions: Vec<VersionSummary>,
}

/// A repository in a listing, described by its latest version.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct RepoSummary {
    /// `owner/model`.
    pub name: String,
    /// The namespace.
    pub owner: String,
    /// The latest version.
    pub latest_version: String,
    /// The latest version's model.
    pub model: ModelId,
    /// From the latest manifest.
    pub description: String,
    /// From the latest manifest.
    pub task: String,
    /// From the latest manifest.
    pub license: String,
    /// From the latest manifest.
    pub tags: Vec<String>,
    /// Publisher of the latest version.
    #[serde(with = "vouch_types::receipt::checksummed")]
    pub publisher: Address,
    /// Unix seconds of the last accepted publish to this repository.
    pub updated_at: u64,
    /// Number of versions.
    pub version_count: u64,
}

/// Most results a listing returns at once.
pub const MAX_LIST_LIMIT: u32 = 100;
/// Results when a listing names no limit.
pub const DEFAULT_LIST_LIMIT: u32 = 20;
/// Furthest a listing may page.
pub const MAX_LIST_OFFSET: u64 = 100_000;
/// Longest search text.
pub const MAX_QUERY_TEXT_BYTES: usize = 128;

/// A listing request. Filters combine with AND; results are ordered by name. Deserializable so
/// the node can take it straight from a query string.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ListQuery {
    /// Case-insensitive (ASCII) substring of the name or the latest description.
    #[serde(default, alias = "q")]
    pub text: Option<String>,
    /// A tag of the latest version, exactly.
    #[serde(default)]
    pub tag: Option<String>,
    /// The latest version's task, exactly.
    #[serde(default)]
    pub task: Option<String>,
    /// The namespace, exactly.
    #[serde(default)]
    pub owner: Option<String>,
    /// 1 to [`MAX_LIST_LIMIT`]; [`DEFAULT_LIST_LIMIT`] when absent.
    #[serde(default)]
    pub limit: Option<u32>,
    /// Results to skip, at most [`MAX_LIST_OFFSET`].
    #[serde(default)]
    pub offset: u64,
}
