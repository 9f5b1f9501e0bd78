//! Finding a receipt's place in the log from the receipt alone: an index from each entry's
//! RFC 9162 leaf hash to its position, so `vouch log prove RECEIPT` needs no index number.
//!
//! The index is derived data. One background thread reads the log's entry bundles in order and
//! records their leaf hashes in SQLite (`<data_dir>/log-index.sqlite`); since it only ever
//! adds entries in log order, after a crash the highest indexed position tells where to resume,
//! and the log itself (durable before any receipt is acknowledged) is the source of truth. A
//! lookup can lag the log by one polling interval.

use std::{
    path::Path,
    sync::{
        Arc, Mutex,
        atomic::{AtomicBool, AtomicU64, Ordering},
    },
    time::Duration,
};

use rusqlite::{Connection, OptionalExtension, params};
use vouch_log::Log;

/// Entries per bundle tile (c2sp.org/tlog-tiles).
const TILE_WIDTH: u64 = 256;

/// Leaf hash → log index, kept up to date with the log by [`ReceiptIndex::spawn_follower`].
pub struct ReceiptIndex {
    db: Mutex<Connection>,
    /// Entries indexed so far (all positions below it), as the follower last left it.
    next: AtomicU64,
}

/// What went wrong with the index.
#[derive(Debug, thiserror::Error)]
pub enum IndexError {
    /// SQLite failed.
    #[error("receipt index: {0}")]
    Sql(#[from] rusqlite::Error),
    /// The log could not be read.
    #[error("receipt index: reading the log: {0}")]
    Log(String),
}

impl ReceiptIndex {
    /// Opens (or creates) the index file.
    pub fn open(path: &Path) -> Result<ReceiptIndex, IndexError> {
        let db = Connection::open(path)?;
        // Derived data: losing the last transactions on a crash only means re-reading them
        // from the log, so commits need not wait for fsync.
        db.pragma_update(None, "journal_mode", "WAL")?;
        db.pragma_update(None, "synchronous", "NORMAL")?;
        db.execute_batch(
            "CREATE TABLE IF NOT EXISTS entries (
                 leaf BLOB PRIMARY KEY NOT NULL CHECK (length(leaf) = 32),
                 idx INTEGER NOT NULL
             ) WITHOUT ROWID;
             CREATE INDEX IF NOT EXISTS entries_by_idx ON entries (idx);",
        )?;
        let index = ReceiptIndex {
            db: Mutex::new(db),
            next: AtomicU64::new(0),
        };
        // MAX(idx) once at open (an index lookup); the follower then keeps the count in memory.
        let indexed = index.indexed()?;
        index.next.store(indexed, Ordering::Relaxed);
        Ok(index)
    }

    fn db(&self) -> std::sync::MutexGuard<'_, Connection> {
        self.db.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// The log index of the entry with this leaf hash, if indexed.
    pub fn lookup(&self, leaf: &[u8; 32]) -> Result<Option<u64>, IndexError> {
        Ok(self
            .db()
            .query_row(
                "SELECT idx FROM entries WHERE leaf = ?1",
                params![&leaf[..]],
                |r| r.get::<_, i64>(0),
            )
            .optional()?
            .map(|i| i as u64))
    }

    /// How many leading entries of the log are indexed.
    pub fn indexed(&self) -> Result<u64, IndexError> {
        let max: Option<i64> = self
            .db()
            .query_row("SELECT MAX(idx) FROM entries", [], |r| r.get(0))?;
        Ok(max.map_or(0, |m| m as u64 + 1))
    }

    /// Indexes every entry of the log's latest checkpoint not indexed yet, a bundle per
    /// transaction. Returns the number of entries added.
    pub fn catch_up(&self, log: &Log) -> Result<u64, IndexError> {
        let reader = log.reader();
        let size = reader.size();
        let mut next = self.next.load(Ordering::Relaxed);
        let start = next;
        while next < size {
            let tile = next / TILE_WIDTH;
            let bundle = reader
                .bundle(tile)
                .map_err(|e| IndexError::Log(e.to_string()))?;
            let mut db = self.db();
            let tx = db.transaction()?;
            {
                let mut insert =
                    tx.prepare_cached("INSERT OR IGNORE INTO entries (leaf, idx) VALUES (?1, ?2)")?;
                for (i, entry) in bundle.iter().enumerate().skip((next % TILE_WIDTH) as usize) {
                    let leaf = vouch_merkle::leaf_hash(entry);
                    insert.execute(params![&leaf[..], (tile * TILE_WIDTH + i as u64) as i64])?;
                }
            }
            tx.commit()?;
            next = tile * TILE_WIDTH + bundle.len() as u64;
            self.next.store(next, Ordering::Relaxed);
        }
        Ok(next - start)
    }

    /// A thread that keeps the index up with the log until `stop` is set.
    pub fn spawn_follower(
        index: Arc<ReceiptIndex>,
        log: Arc<Log>,
        stop: Arc<AtomicBool>,
        interval: Duration,
    ) -> std::io::Result<std::thread::JoinHandle<()>> {
        std::thread::Builder::new()
            .name("vouch-receipt-index".into())
            .spawn(move || {
                while !stop.load(Ordering::Relaxed) {
                    if let Err(e) = index.catch_up(&log) {
                        tracing::warn!("{e}");
                    }
                    std::thread::sleep(interval);
                }
            })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use vouch_log::{LogConfig, NoteSigner};

    #[test]
    fn follows_the_log_and_resumes_after_reopening() {
        let dir = tempfile::tempdir().unwrap();
        let signer = NoteSigner::generate("example.com/index-test").unwrap();
        let mut config = LogConfig::new(dir.path().join("log"));
        config.batch_interval = Duration::from_millis(1);
        let log = Log::open(config, signer).unwrap();
        let entries: Vec<Vec<u8>> = (0..600)
            .map(|i| format!("entry {i}").into_bytes())
            .collect();
        for e in &entries[..300] {
            log.append(e.clone()).unwrap().wait().unwrap();
        }
        let path = dir.path().join("index.sqlite");
        let index = ReceiptIndex::open(&path).unwrap();
        assert_eq!(index.catch_up(&log).unwrap(), 300);
        assert_eq!(index.catch_up(&log).unwrap(), 0);
        drop(index);

        // More entries, a partial bundle, then a fresh open resumes where it stopped.
        let handles: Vec<_> = entries[300..]
            .iter()
            .map(|e| log.append(e.clone()).unwrap())
            .collect();
        for h in handles {
            h.wait().unwrap();
        }
        let index = ReceiptIndex::open(&path).unwrap();
        assert_eq!(index.indexed().unwrap(), 300);
        assert_eq!(index.catch_up(&log).unwrap(), 300);
        for (i, e) in entries.iter().enumerate() {
            assert_eq!(
                index.lookup(&vouch_merkle::leaf_hash(e)).unwrap(),
                Some(i as u64),
                "entry {i}"
            );
            assert_eq!(log.entry(i as u64).unwrap(), *e);
        }
        assert_eq!(
            index.lookup(&vouch_merkle::leaf_hash(b"absent")).unwrap(),
            None
        );
        log.close().unwrap();
    }
}
