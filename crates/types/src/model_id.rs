//! Model ids: CIDv1 (multicodec `raw`, multihash `sha2-256`) of a model file's exact bytes.

use std::{fmt, str::FromStr};

use cid::Cid;
use serde::{Deserialize, Deserializer, Serialize, Serializer};

use crate::hash::{Digest32, sha256};

/// Multicodec code of `raw` (the bytes are the content, no IPLD structure).
const RAW_CODEC: u64 = 0x55;
/// Multihash code of `sha2-256`.
const SHA2_256: u64 = 0x12;

/// The content address of a model: the SHA-256 of its bytes, shown as a CIDv1 in base32
/// (`bafkrei…`). The same digest is what a receipt signs (`modelDigest`).
#[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct ModelId(Digest32);

/// Why a string is not a model id.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum ModelIdError {
    /// Not a CID at all.
    #[error("not a CID: {0}")]
    NotACid(String),
    /// A CIDv0 (`Qm…`): dag-pb, which hashes a UnixFS wrapper rather than the bytes.
    #[error(
        "CIDv0 ids hash a UnixFS wrapper, not the model's bytes; a model id is a CIDv1 with the raw codec"
    )]
    CidV0,
    /// A CID whose codec is not `raw`.
    #[error(
        "CID codec 0x{0:x} is not raw (0x55): the id must address the model's bytes themselves"
    )]
    WrongCodec(u64),
    /// A valid CID spelled in another base or case than the canonical base32 lower case.
    #[error("{0} is not in canonical form (CIDv1, base32 lower case: {1})")]
    NotCanonical(String, String),
    /// A CID whose hash is not SHA-256.
    #[error("CID hash function 0x{0:x} is not sha2-256 (0x12)")]
    WrongHash(u64),
}

impl ModelId {
    /// The id of a model file's bytes.
    pub fn of_bytes(bytes: &[u8]) -> Self {
        ModelId(sha256(bytes))
    }

    /// Wraps a SHA-256 digest computed elsewhere (for instance while streaming a file).
    pub fn from_digest(digest: Digest32) -> Self {
        ModelId(digest)
    }

    /// The SHA-256 digest of the model's bytes.
    pub fn digest(&self) -> &Digest32 {
        &self.0
    }

    /// Whether `bytes` are the model this id names.
    pub fn matches(&self, bytes: &[u8]) -> bool {
        sha256(bytes) == self.0
    }

    /// The id as a CID.
    pub fn to_cid(&self) -> Cid {
        let mh = cid::multihash::Multihash::<64>::wrap(SHA2_256, &self.0)
            .expect("a 32-byte digest fits a 64-byte multihash");
        Cid::new_v1(RAW_CODEC, mh)
    }
}

impl fmt::Display for ModelId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        // CIDv1 displays as multibase base32 lower case ("b" prefix).
        write!(f, "{}", self.to_cid())
    }
}

impl fmt::Debug for ModelId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "ModelId({self})")
    }
}

impl FromStr for ModelId {
    type Err = ModelIdError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let cid = Cid::from_str(s).map_err(|e| ModelIdError::NotACid(e.to_string()))?;
        if cid.version() == cid::Version::V0 {
            return Err(ModelIdError::CidV0);
        }
        if cid.codec() != RAW_CODEC {
            return Err(ModelIdError::WrongCodec(cid.codec()));
        }
        let mh = cid.hash();
        if mh.code() != SHA2_256 {
            return Err(ModelIdError::WrongHash(mh.code()));
        }
        let digest: Digest32 = mh.digest().try_into().map_err(|_| {
            ModelIdError::NotACid(format!("sha2-256 digest of {} bytes", mh.size()))
        })?;
        let id = ModelId(digest);
        // One spelling per id: other multibases or cases would let two strings name one model.
        if id.to_string() != s {
            return Err(ModelIdError::NotCanonical(
                s.chars().take(80).collect(),
                id.to_string(),
            ));
        }
        Ok(id)
    }
}

impl Serialize for ModelId {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_str(self)
    }
}

impl<'de> Deserialize<'de> for ModelId {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let s = String::deserialize(d)?;
        s.parse().map_err(serde::de::Error::custom)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn empty_file_matches_ipfs() {
        // `ipfs add --cid-version=1 --raw-leaves` of an empty file, and `ipfs block put
        // --cid-codec=raw` of zero bytes, both give this well-known CID.
        let id = ModelId::of_bytes(b"");
        assert_eq!(
            id.to_string(),
            "bafkreihdwdcefgh4dqkjv67uzcmw7ojee6xedzdetojuzjevtenxquvyku"
        );
    }

    #[test]
    fn hello_world_matches_ipfs() {
        // `echo -n "hello world" | ipfs add --cid-version=1 -Q`
        let id = ModelId::of_bytes(b"hello world");
        assert_eq!(
            id.to_string(),
            "bafkreifzjut3te2nhyekklss27nh3k72ysco7y32koao5eei66wof36n5e"
        );
    }

    #[test]
    fn round_trips_and_rejects_other_cids() {
        let id = ModelId::of_bytes(b"model");
        assert_eq!(id.to_string().parse::<ModelId>().unwrap(), id);
        assert!(id.matches(b"model"));
        assert!(!id.matches(b"modem"));
        // A CIDv0 of the same bytes (dag-pb) is refused with a reason.
        assert_eq!(
            "QmaozNR7DZHQK1ZcU9p7QdrshMvXqWK6gpu5rmrkPdT3L4".parse::<ModelId>(),
            Err(ModelIdError::CidV0)
        );
        // dag-pb CIDv1 (what `ipfs add` gives for a chunked file).
        assert!(matches!(
            "bafybeigdyrzt5sfp7udm7hu76uh7y26nf3efuylqabf3oclgtqy55fbzdi".parse::<ModelId>(),
            Err(ModelIdError::WrongCodec(0x70))
        ));
        assert!(matches!(
            "not a cid".parse::<ModelId>(),
            Err(ModelIdError::NotACid(_))
        ));
    }
}
