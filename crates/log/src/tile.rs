//! C2SP `tlog-tiles` naming and encodings: tile paths (`tile/<L>/<N>[.p/<W>]` with `N` in
//! x-prefixed 3-digit groups), hash tiles of 256 SHA-256 hashes, and entry bundles of
//! big-endian `u16` length-prefixed entries.

use vouch_merkle::Hash;

/// Hashes in a full tile; the tile height is 8 levels.
pub const TILE_WIDTH: u64 = 256;
/// log2 of [`TILE_WIDTH`].
pub const TILE_HEIGHT: u32 = 8;
/// The largest entry an entry bundle can hold (its length prefix is a `u16`).
pub const MAX_ENTRY_BYTES: usize = u16::MAX as usize;

/// Why a tile path or body was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum TileError {
    /// The path is not a valid tile or entry bundle path.
    #[error("invalid tile path {0:?}")]
    InvalidPath(String),
    /// A tile body is not `32 * width` bytes.
    #[error("tile body is {got} bytes, expected {expected}")]
    WrongTileLength {
        /// `32 * width`.
        expected: usize,
        /// The body's length.
        got: usize,
    },
    /// An entry bundle is truncated, has trailing bytes, or the wrong number of entries.
    #[error("malformed entry bundle: {0}")]
    MalformedBundle(&'static str),
    /// An entry is larger than a bundle can hold.
    #[error("entry of {0} bytes exceeds the {MAX_ENTRY_BYTES}-byte bundle limit")]
    EntryTooLarge(usize),
}

/// Which tile: a hash tile at a level, or an entry bundle.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum TileKind {
    /// A hash tile at level `L` (0..=63); level 0 holds leaf hashes.
    Hashes(u8),
    /// An entry bundle, alongside level 0.
    Entries,
}

/// A tile or entry bundle: its kind, index within the level, and width (1..=256; 256 = full).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct TileId {
    /// Hash level or entries.
    pub kind: TileKind,
    /// Index of the tile within its level.
    pub index: u64,
    /// Number of hashes or entries, 256 for a full tile.
    pub width: u16,
}

/// Formats `n` as x-prefixed 3-digit path elements: 1234067 → `x001/x234/067`.
pub fn index_path(n: u64) -> String {
    let mut groups = Vec::new();
    let mut n = n;
    loop {
        groups.push(n % 1000);
        n /= 1000;
        if n == 0 {
            break;
        }
    }
    let mut s = String::new();
    for (i, g) in groups.iter().rev().enumerate() {
        if i + 1 < groups.len() {
            s.push_str(&format!("x{g:03}/"));
        } else {
            s.push_str(&format!("{g:03}"));
        }
    }
    s
}

impl TileId {
    /// The path relative to the log's prefix, e.g. `tile/0/x001/234.p/7`.
    pub fn path(&self) -> String {
        let level = match self.kind {
            TileKind::Hashes(l) => l.to_string(),
            TileKind::Entries => "entries".to_owned(),
        };
        let mut p = format!("tile/{level}/{}", index_path(self.index));
        if u64::from(self.width) < TILE_WIDTH {
            p.push_str(&format!(".p/{}", self.width));
        }
        p
    }

    /// Parses a path made by [`TileId::path`], strictly (no leading zeroes, canonical groups).
    pub fn parse_path(path: &str) -> Result<Self, TileError> {
        let bad = || TileError::InvalidPath(path.chars().take(200).collect());
        let rest = path.strip_prefix("tile/").ok_or_else(bad)?;
        let (level, rest) = rest.split_once('/').ok_or_else(bad)?;
        let kind = if level == "entries" {
            TileKind::Entries
        } else {
            let l = crate::checkpoint::parse_decimal(level).ok_or_else(bad)?;
            TileKind::Hashes(u8::try_from(l).ok().filter(|l| *l <= 63).ok_or_else(bad)?)
        };
        let (index_part, width) = match rest.split_once(".p/") {
            Some((i, w)) => {
                let w = crate::checkpoint::parse_decimal(w).ok_or_else(bad)?;
                if !(1..TILE_WIDTH).contains(&w) {
                    return Err(bad());
                }
                (i, w as u16)
            }
            None => (rest, TILE_WIDTH as u16),
        };
        let groups: Vec<&str> = index_part.split('/').collect();
        let mut index: u64 = 0;
        for (i, g) in groups.iter().enumerate() {
            let digits = if i + 1 < groups.len() {
                g.strip_prefix('x').ok_or_else(bad)?
            } else {
                g
            };
            if digits.len() != 3 || !digits.bytes().all(|b| b.is_ascii_digit()) {
                return Err(bad());
            }
            let d: u64 = digits.parse().map_err(|_| bad())?;
            index = index
                .checked_mul(1000)
                .and_then(|x| x.checked_add(d))
                .ok_or_else(bad)?;
        }
        let id = Self { kind, index, width };
        // Canonical form only: "x000/001" is not 1.
        if id.path() != path {
            return Err(bad());
        }
        Ok(id)
    }
}

/// The width of the rightmost tile at `level` for a tree of `size` leaves (0 if that level has
/// no partial tile): `floor(size / 256^level) mod 256`.
pub fn partial_width(size: u64, level: u8) -> u16 {
    let shift = u32::from(level) * TILE_HEIGHT;
    if shift >= 64 {
        return 0;
    }
    ((size >> shift) % TILE_WIDTH) as u16
}

/// How many full tiles level `level` has in a tree of `size` leaves.
pub fn full_tiles(size: u64, level: u8) -> u64 {
    let shift = (u32::from(level) + 1) * TILE_HEIGHT;
    if shift >= 64 { 0 } else { size >> shift }
}

/// Concatenates hashes into a tile body.
pub fn encode_hashes(hashes: &[Hash]) -> Vec<u8> {
    hashes.concat()
}

/// Splits a tile body of `width` hashes.
pub fn decode_hashes(body: &[u8], width: u16) -> Result<Vec<Hash>, TileError> {
    let expected = usize::from(width) * 32;
    if body.len() != expected {
        return Err(TileError::WrongTileLength {
            expected,
            got: body.len(),
        });
    }
    Ok(body
        .chunks_exact(32)
        .map(|c| c.try_into().expect("chunks are 32 bytes"))
        .collect())
}

/// Appends one entry to a bundle body: `u16` big-endian length, then the bytes.
pub fn push_bundle_entry(bundle: &mut Vec<u8>, entry: &[u8]) -> Result<(), TileError> {
    let len = u16::try_from(entry.len()).map_err(|_| TileError::EntryTooLarge(entry.len()))?;
    bundle.extend_from_slice(&len.to_be_bytes());
    bundle.extend_from_slice(entry);
    Ok(())
}

/// Splits an entry bundle that must hold exactly `width` entries.
pub fn decode_bundle(body: &[u8], width: u16) -> Result<Vec<&[u8]>, TileError> {
    let mut out = Vec::with_capacity(usize::from(width));
    let mut rest = body;
    while !rest.is_empty() {
        if out.len() == usize::from(width) {
            return Err(TileError::MalformedBundle("more entries than its width"));
        }
        let (len, tail) = rest
            .split_first_chunk::<2>()
            .ok_or(TileError::MalformedBundle("truncated length"))?;
        let len = usize::from(u16::from_be_bytes(*len));
        if tail.len() < len {
            return Err(TileError::MalformedBundle("truncated entry"));
        }
        out.push(&tail[..len]);
        rest = &tail[len..];
    }
    if out.len() != usize::from(width) {
        return Err(TileError::MalformedBundle("fewer entries than its width"));
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn paths_follow_the_spec() {
        assert_eq!(index_path(1234067), "x001/x234/067");
        assert_eq!(index_path(0), "000");
        assert_eq!(index_path(999), "999");
        assert_eq!(index_path(1000), "x001/000");
        let t = TileId {
            kind: TileKind::Hashes(0),
            index: 1234067,
            width: 256,
        };
        assert_eq!(t.path(), "tile/0/x001/x234/067");
        let p = TileId {
            kind: TileKind::Entries,
            index: 5,
            width: 7,
        };
        assert_eq!(p.path(), "tile/entries/005.p/7");
        for id in [
            t,
            p,
            TileId {
                kind: TileKind::Hashes(63),
                index: u64::MAX,
                width: 1,
            },
        ] {
            assert_eq!(TileId::parse_path(&id.path()).unwrap(), id);
        }
        for bad in [
            "tile/0/1",
            "tile/0/x000/001",
            "tile/00/001",
            "tile/64/001",
            "tile/0/001.p/0",
            "tile/0/001.p/256",
            "tile/0/001.p/07",
            "tile/0/001/",
            "tile/0/y001/001",
            "tile/0/x018/x446/x744/x073/x709/x551/616",
            "tiles/0/001",
            "tile/data/001",
        ] {
            assert!(TileId::parse_path(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn spec_example_widths() {
        // tlog-tiles: a tree of 70,000 has 273 full level-0 tiles and a partial of 112, one
        // full level-1 tile and a partial of 17, and a level-2 partial of 1.
        assert_eq!(
            (full_tiles(70_000, 0), partial_width(70_000, 0)),
            (273, 112)
        );
        assert_eq!((full_tiles(70_000, 1), partial_width(70_000, 1)), (1, 17));
        assert_eq!((full_tiles(70_000, 2), partial_width(70_000, 2)), (0, 1));
        assert_eq!(partial_width(256, 0), 0);
        assert_eq!(partial_width(256, 1), 1);
        assert_eq!(partial_width(u64::MAX, 63), 0);
    }

    #[test]
    fn bundles_round_trip_and_reject_garbage() {
        let mut b = Vec::new();
        for e in [&b""[..], b"a", &[7u8; 300]] {
            push_bundle_entry(&mut b, e).unwrap();
        }
        let d = decode_bundle(&b, 3).unwrap();
        assert_eq!(d[2].len(), 300);
        assert!(decode_bundle(&b, 2).is_err());
        assert!(decode_bundle(&b, 4).is_err());
        assert!(decode_bundle(&b[..b.len() - 1], 3).is_err());
        assert!(push_bundle_entry(&mut b, &vec![0; MAX_ENTRY_BYTES + 1]).is_err());
        assert!(decode_hashes(&[0; 33], 1).is_err());
    }
}
