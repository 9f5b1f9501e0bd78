//! 32-byte commitments (tensor, tensor set, trace root) and their hex form.

use std::{fmt, str::FromStr};

use serde::{Deserialize, Deserializer, Serialize, Serializer};

use crate::hash::Digest32;

/// A 32-byte hash that commits to some data; shown as `0x` + 64 lower-case hex digits.
#[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Default)]
pub struct Commitment(pub Digest32);

impl Commitment {
    /// The raw bytes.
    pub fn as_bytes(&self) -> &Digest32 {
        &self.0
    }
}

impl fmt::Display for Commitment {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "0x{}", hex::encode(self.0))
    }
}

impl fmt::Debug for Commitment {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Commitment({self})")
    }
}

/// A string that is not `0x` + 64 lower-case hex digits.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
#[error("expected 0x followed by 64 lower-case hex digits, got {0:?}")]
pub struct BadHex32(pub String);

/// Parses the canonical hex form, `0x` + lower-case hex digits, of exactly `N` bytes. Only one
/// spelling is accepted, so a signed document has one text form and any edit to it shows.
pub fn parse_hex<const N: usize>(s: &str) -> Option<[u8; N]> {
    let body = s.strip_prefix("0x")?;
    if body.len() != 2 * N
        || !body
            .bytes()
            .all(|c| c.is_ascii_digit() || (b'a'..=b'f').contains(&c))
    {
        return None;
    }
    let mut out = [0u8; N];
    hex::decode_to_slice(body, &mut out).ok()?;
    Some(out)
}

/// Parses `0x` + 64 lower-case hex digits into 32 bytes.
pub fn parse_hex32(s: &str) -> Result<Digest32, BadHex32> {
    parse_hex::<32>(s).ok_or_else(|| BadHex32(s.chars().take(80).collect()))
}

impl FromStr for Commitment {
    type Err = BadHex32;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        parse_hex32(s).map(Commitment)
    }
}

impl Serialize for Commitment {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_str(self)
    }
}

impl<'de> Deserialize<'de> for Commitment {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let s = String::deserialize(d)?;
        s.parse().map_err(serde::de::Error::custom)
    }
}
