//! Reading a log's static files: hash tiles and entry bundles under `<dir>/tile/`, as a
//! [`SubtreeSource`] for proofs at any published tree size.

use std::collections::HashMap;
use std::fs;
use std::io;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};

use vouch_merkle::{Hash, SubtreeSource, root_from_leaf_hashes};

use crate::tile::{
    TILE_HEIGHT, TILE_WIDTH, TileError, TileId, TileKind, decode_bundle, decode_hashes, full_tiles,
    partial_width,
};

/// Why the tiles could not give what was asked.
#[derive(Debug, Clone, thiserror::Error)]
pub enum StoreError {
    /// A file could not be read.
    #[error("reading {path}: {source}")]
    Io {
        /// The file.
        path: PathBuf,
        /// The error.
        #[source]
        source: Arc<io::Error>,
    },
    /// A tile file is malformed.
    #[error("{path}: {source}")]
    Tile {
        /// The file.
        path: PathBuf,
        /// What is wrong with it.
        #[source]
        source: TileError,
    },
    /// A hash or entry beyond the tree size was asked for.
    #[error("{what} {index} is outside a tree of {size} leaves")]
    OutOfRange {
        /// What was asked for.
        what: &'static str,
        /// The index asked for.
        index: u64,
        /// The tree size read at.
        size: u64,
    },
}

// Full tiles never change, so they can be cached; the cache is cleared when full rather than
// tracking recency, which keeps it simple and bounded (at most 2,048 × 8 KiB).
const CACHE_TILES: usize = 2048;

/// Full hash tiles by (level, index).
type TileCache = HashMap<(u8, u64), Arc<Vec<Hash>>>;

/// Reads tiles and entry bundles of a log directory as they are at tree size `size`.
#[derive(Debug, Clone)]
pub struct TileReader {
    dir: PathBuf,
    size: u64,
    cache: Arc<Mutex<TileCache>>,
}

impl TileReader {
    /// A reader of the log in `dir` at tree size `size` (which a checkpoint must have
    /// published, so that its partial tiles exist).
    pub fn new(dir: &Path, size: u64) -> Self {
        Self {
            dir: dir.to_owned(),
            size,
            cache: Arc::default(),
        }
    }

    /// The same files read at another size, sharing the cache.
    pub fn at_size(&self, size: u64) -> Self {
        Self {
            dir: self.dir.clone(),
            size,
            cache: Arc::clone(&self.cache),
        }
    }

    /// The tree size this reader reads at.
    pub fn size(&self) -> u64 {
        self.size
    }

    /// Reads the tile `kind`/`index` with at least `need` items, falling back from a partial
    /// tile that a sync point deleted (because the tile is now full) to the full tile, or, if
    /// the exact width is missing for another reason, to any wider partial one.
    fn read_raw(
        &self,
        kind: TileKind,
        index: u64,
        need: u16,
    ) -> Result<(Vec<u8>, u16), StoreError> {
        let full_width = TILE_WIDTH as u16;
        let exact = TileId {
            kind,
            index,
            width: need,
        };
        let mut tries = vec![exact];
        if need < full_width {
            tries.push(TileId {
                kind,
                index,
                width: full_width,
            });
        }
        for id in &tries {
            match fs::read(self.dir.join(id.path())) {
                Ok(b) => return Ok((b, id.width)),
                Err(e) if e.kind() == io::ErrorKind::NotFound => continue,
                Err(e) => return Err(io_error(&self.dir.join(id.path()), e)),
            }
        }
        // Any wider partial holds the same first `need` hashes.
        let partial_dir = self.dir.join(exact.path()).parent().map(Path::to_owned);
        if need < full_width
            && let Some(d) = partial_dir
            && let Ok(rd) = fs::read_dir(&d)
        {
            for e in rd.flatten() {
                let Some(w) = e.file_name().to_str().and_then(|n| n.parse::<u16>().ok()) else {
                    continue;
                };
                if w >= need && w < full_width {
                    let p = e.path();
                    return fs::read(&p).map(|b| (b, w)).map_err(|e| io_error(&p, e));
                }
            }
        }
        let path = self.dir.join(exact.path());
        Err(io_error(
            &path,
            io::Error::new(io::ErrorKind::NotFound, "tile not found"),
        ))
    }

    /// The first `need` hashes of hash tile `level`/`index`.
    fn hashes(&self, level: u8, index: u64, need: u16) -> Result<Arc<Vec<Hash>>, StoreError> {
        let full = need == TILE_WIDTH as u16;
        if full
            && let Some(t) = self
                .cache
                .lock()
                .unwrap_or_else(|p| p.into_inner())
                .get(&(level, index))
        {
            return Ok(Arc::clone(t));
        }
        let (body, width) = self.read_raw(TileKind::Hashes(level), index, need)?;
        let path = || {
            self.dir.join(
                TileId {
                    kind: TileKind::Hashes(level),
                    index,
                    width,
                }
                .path(),
            )
        };
        let mut hashes = decode_hashes(&body, width).map_err(|source| StoreError::Tile {
            path: path(),
            source,
        })?;
        hashes.truncate(usize::from(need));
        let hashes = Arc::new(hashes);
        if full {
            let mut c = self.cache.lock().unwrap_or_else(|p| p.into_inner());
            if c.len() >= CACHE_TILES {
                c.clear();
            }
            c.insert((level, index), Arc::clone(&hashes));
        }
        Ok(hashes)
    }

    /// How many items tile `index` of `level` holds at this size (256 if full, 0 if absent).
    fn width_at(&self, level: u8, index: u64) -> u16 {
        if index < full_tiles(self.size, level) {
            TILE_WIDTH as u16
        } else if index == full_tiles(self.size, level) {
            partial_width(self.size, level)
        } else {
            0
        }
    }

    /// Reads bundle `tile` (which must have `width` entries at this size) and hands its
    /// entries to `f`, so callers copy only what they keep.
    fn with_bundle<T>(
        &self,
        tile: u64,
        width: u16,
        f: impl FnOnce(&[&[u8]]) -> T,
    ) -> Result<T, StoreError> {
        let (body, got) = self.read_raw(TileKind::Entries, tile, width)?;
        let entries = decode_bundle(&body, got).map_err(|source| StoreError::Tile {
            path: self.dir.join(
                TileId {
                    kind: TileKind::Entries,
                    index: tile,
                    width: got,
                }
                .path(),
            ),
            source,
        })?;
        Ok(f(&entries[..usize::from(width)]))
    }

    /// Entry `index` of the log.
    pub fn entry(&self, index: u64) -> Result<Vec<u8>, StoreError> {
        if index >= self.size {
            return Err(StoreError::OutOfRange {
                what: "entry",
                index,
                size: self.size,
            });
        }
        let tile = index / TILE_WIDTH;
        self.with_bundle(tile, self.width_at(0, tile), |e| {
            e[(index % TILE_WIDTH) as usize].to_vec()
        })
    }

    /// The entries of bundle `tile` as it is at this size.
    pub fn bundle(&self, tile: u64) -> Result<Vec<Vec<u8>>, StoreError> {
        let width = self.width_at(0, tile);
        if width == 0 {
            return Err(StoreError::OutOfRange {
                what: "entry bundle",
                index: tile,
                size: self.size,
            });
        }
        self.with_bundle(tile, width, |e| e.iter().map(|x| x.to_vec()).collect())
    }

    /// The root of the tree at this size.
    pub fn root(&self) -> Result<Hash, StoreError> {
        self.range_hash(0, self.size)
    }
}

fn io_error(path: &Path, e: io::Error) -> StoreError {
    StoreError::Io {
        path: path.to_owned(),
        source: Arc::new(e),
    }
}

impl SubtreeSource for TileReader {
    type Error = StoreError;

    fn subtree_hash(&self, level: u8, index: u64) -> Result<Hash, StoreError> {
        let out_of_range = StoreError::OutOfRange {
            what: "subtree",
            index,
            size: self.size,
        };
        // The subtree must lie inside the tree: (index + 1) << level <= size.
        let end = index
            .checked_add(1)
            .and_then(|i| i.checked_mul(1u64.checked_shl(u32::from(level))?))
            .ok_or(out_of_range.clone())?;
        if level >= 64 || end > self.size {
            return Err(out_of_range);
        }
        // A node at height h = 8 L + r is the root over 2^r consecutive hashes of tile level L.
        let tile_level = (u32::from(level) / TILE_HEIGHT) as u8;
        let r = u32::from(level) % TILE_HEIGHT;
        let first = index << r;
        let tile = first / TILE_WIDTH;
        let offset = (first % TILE_WIDTH) as usize;
        let count = 1usize << r;
        let width = self.width_at(tile_level, tile);
        if offset + count > usize::from(width) {
            return Err(out_of_range);
        }
        let hashes = self.hashes(tile_level, tile, width)?;
        Ok(root_from_leaf_hashes(&hashes[offset..offset + count]))
    }
}
