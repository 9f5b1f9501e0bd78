//! The durable log: a sequencer thread that batches appends, makes each batch durable with one
//! `fdatasync` of the journal (entries and the checkpoint signed over them together), then
//! writes tiles and entry bundles and acknowledges; and recovery that replays the journal on
//! top of the last tile sync point.
//!
//! Directory layout (see `docs/log.md`):
//!
//! ```text
//! <dir>/checkpoint          latest signed checkpoint (served as <prefix>/checkpoint)
//! <dir>/tile/...            hash tiles and entry bundles (c2sp.org/tlog-tiles)
//! <dir>/sync-checkpoint     signed checkpoint up to which tiles are fsync'd
//! <dir>/journal/<start>.wal journal segments holding every batch after that
//! <dir>/lock                held (flock) while a sequencer has the directory open
//! ```

use std::collections::{BTreeSet, HashSet};
use std::fs;
use std::future::Future;
use std::io;
use std::path::PathBuf;
use std::pin::Pin;
use std::sync::mpsc::{Receiver, RecvTimeoutError, SyncSender, TrySendError};
use std::sync::{Arc, Condvar, Mutex, RwLock};
use std::task::{Context, Poll, Waker};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use vouch_merkle::{
    CompactRange, Hash, ProofError, ProveError, SubtreeSource, empty_root, leaf_hash,
    root_from_leaf_hashes,
};

use crate::bundle::ProofBundle;
use crate::checkpoint::{Checkpoint, CheckpointError, SignedCheckpoint};
use crate::journal::{self, Journal, JournalError};
use crate::note::NoteSigner;
use crate::store::{StoreError, TileReader};
use crate::tile::{
    MAX_ENTRY_BYTES, TILE_HEIGHT, TILE_WIDTH, TileId, TileKind, encode_hashes, partial_width,
    push_bundle_entry,
};
use crate::witness::write_atomically;

const CHECKPOINT_FILE: &str = "checkpoint";
const SYNC_FILE: &str = "sync-checkpoint";
const JOURNAL_DIR: &str = "journal";
const LOCK_FILE: &str = "lock";

/// Why the log refused or failed.
#[derive(Debug, Clone, thiserror::Error)]
pub enum LogError {
    /// The configuration cannot work.
    #[error("invalid configuration: {0}")]
    Config(String),
    /// Another `Log` (in this or another process) has the directory open.
    #[error("{} is in use by another log process", .0.display())]
    Locked(PathBuf),
    /// The entry is larger than the configured bound.
    #[error("entry of {size} bytes exceeds the {max}-byte limit")]
    EntryTooLarge {
        /// The entry's size.
        size: usize,
        /// The configured bound.
        max: usize,
    },
    /// The submission queue is full (only from [`Log::try_append`]).
    #[error("submission queue is full")]
    QueueFull,
    /// The log has stopped: shut down, or failed earlier and refuses writes until reopened.
    #[error("log is not accepting entries: {0}")]
    Stopped(String),
    /// A file operation failed.
    #[error("{context}: {source}")]
    Io {
        /// What the log was doing.
        context: String,
        /// The error.
        #[source]
        source: Arc<io::Error>,
    },
    /// Stored state contradicts itself; the log will not guess.
    #[error("log storage is corrupt: {0}")]
    Corrupt(String),
    /// Reading tiles failed.
    #[error(transparent)]
    Store(#[from] StoreError),
    /// A checkpoint was malformed.
    #[error(transparent)]
    Checkpoint(#[from] CheckpointError),
    /// A proof request was invalid (index or sizes).
    #[error(transparent)]
    Proof(#[from] ProofError),
    /// A checkpoint given to prove against is not one of this log's.
    #[error("the checkpoint of size {size} is not one of this log's")]
    ForeignCheckpoint {
        /// The checkpoint's size.
        size: u64,
    },
    /// A size beyond the latest checkpoint was asked for.
    #[error("size {size} is beyond the latest checkpoint's {latest}")]
    BeyondLatest {
        /// The size asked for.
        size: u64,
        /// The latest checkpoint's size.
        latest: u64,
    },
}

fn io_err(context: impl Into<String>) -> impl FnOnce(io::Error) -> LogError {
    let context = context.into();
    move |e| LogError::Io {
        context,
        source: Arc::new(e),
    }
}

impl From<JournalError> for LogError {
    fn from(e: JournalError) -> Self {
        match e {
            JournalError::Io { path, source } => LogError::Io {
                context: format!("reading journal {}", path.display()),
                source: Arc::new(source),
            },
            c @ JournalError::Corrupt { .. } => LogError::Corrupt(c.to_string()),
        }
    }
}

impl From<ProveError<StoreError>> for LogError {
    fn from(e: ProveError<StoreError>) -> Self {
        match e {
            ProveError::Invalid(p) => LogError::Proof(p),
            ProveError::Source(s) => LogError::Store(s),
        }
    }
}

/// How the log batches and bounds its work.
#[derive(Debug, Clone)]
pub struct LogConfig {
    /// The directory holding the journal, tiles and checkpoints.
    pub dir: PathBuf,
    /// The largest entry accepted, at most 65,535 bytes (an entry bundle's `u16` length).
    pub max_entry_bytes: usize,
    /// How long the sequencer waits, after the first entry of a batch arrives, for more.
    pub batch_interval: Duration,
    /// The most entries in one batch (one journal sync, one checkpoint).
    pub max_batch: usize,
    /// How many submitted entries may wait for the sequencer before `append` blocks.
    pub queue_capacity: usize,
    /// Entries between tile sync points (fsync of tiles, journal rotation); bounds replay
    /// work after a crash and the journal's size.
    pub sync_every_entries: u64,
}

impl LogConfig {
    /// Defaults: 64 KiB - 1 entries, 10 ms interval, batches of up to 256, a queue of 4,096,
    /// and a tile sync point every 65,536 entries.
    pub fn new(dir: impl Into<PathBuf>) -> Self {
        Self {
            dir: dir.into(),
            max_entry_bytes: MAX_ENTRY_BYTES,
            batch_interval: Duration::from_millis(10),
            max_batch: 256,
            queue_capacity: 4096,
            sync_every_entries: 1 << 16,
        }
    }

    fn validate(&self) -> Result<(), LogError> {
        let bad = |s: &str| Err(LogError::Config(s.to_owned()));
        if self.max_entry_bytes > MAX_ENTRY_BYTES {
            return bad("max_entry_bytes is above 65,535, which an entry bundle cannot hold");
        }
        if self.max_batch == 0 || self.queue_capacity == 0 || self.sync_every_entries == 0 {
            return bad("max_batch, queue_capacity and sync_every_entries must be positive");
        }
        if self.max_batch.saturating_mul(self.max_entry_bytes + 4) > journal::MAX_RECORD_BODY / 2 {
            return bad("max_batch × max_entry_bytes exceeds the journal's record bound");
        }
        Ok(())
    }
}

/// An acknowledged entry: its index and the first checkpoint that includes it, which was
/// durable before this was handed out.
#[derive(Debug, Clone)]
pub struct Appended {
    /// The entry's index in the log.
    pub index: u64,
    /// The checkpoint of the batch that integrated it.
    pub checkpoint: Arc<SignedCheckpoint>,
}

#[derive(Default)]
struct SlotState {
    result: Option<Result<Appended, LogError>>,
    waker: Option<Waker>,
}

#[derive(Default)]
struct Slot {
    state: Mutex<SlotState>,
    cv: Condvar,
}

impl Slot {
    fn fill(&self, r: Result<Appended, LogError>) {
        let mut s = self.state.lock().unwrap_or_else(|p| p.into_inner());
        s.result = Some(r);
        if let Some(w) = s.waker.take() {
            w.wake();
        }
        self.cv.notify_all();
    }
}

/// The pending result of [`Log::append`]: block on it with [`AppendHandle::wait`], or
/// `.await` it (it is a `Future`, runtime-agnostic).
pub struct AppendHandle {
    slot: Arc<Slot>,
}

impl AppendHandle {
    /// Blocks until the entry is durable and integrated, or the log failed.
    pub fn wait(self) -> Result<Appended, LogError> {
        let mut s = self.slot.state.lock().unwrap_or_else(|p| p.into_inner());
        loop {
            if let Some(r) = s.result.take() {
                return r;
            }
            s = self.slot.cv.wait(s).unwrap_or_else(|p| p.into_inner());
        }
    }
}

impl Future for AppendHandle {
    type Output = Result<Appended, LogError>;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        let mut s = self.slot.state.lock().unwrap_or_else(|p| p.into_inner());
        match s.result.take() {
            Some(r) => Poll::Ready(r),
            None => {
                s.waker = Some(cx.waker().clone());
                Poll::Pending
            }
        }
    }
}

struct Pending {
    entry: Vec<u8>,
    slot: Arc<Slot>,
}

struct Shared {
    dir: PathBuf,
    latest: RwLock<Arc<SignedCheckpoint>>,
    // Set once the sequencer stops; appends after that fail with this reason.
    stopped: Mutex<Option<String>>,
    reader: TileReader,
}

/// A durable, append-only transparency log over a directory.
///
/// Dropping it (or [`Log::close`]) drains the queue, runs a final sync point and joins the
/// sequencer thread, which can take as long as one sync point: from async code, close it in
/// `spawn_blocking`.
pub struct Log {
    shared: Arc<Shared>,
    tx: Option<SyncSender<Pending>>,
    thread: Option<JoinHandle<()>>,
    max_entry_bytes: usize,
    verifier: crate::note::NoteVerifier,
}

impl std::fmt::Debug for Log {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Log")
            .field("dir", &self.shared.dir)
            .field("size", &self.latest_checkpoint().checkpoint.size)
            .finish_non_exhaustive()
    }
}

impl Log {
    /// Opens the log in `config.dir` (creating it if empty), recovers from any crash, and
    /// starts the sequencer. The signer's key name is the log's origin.
    pub fn open(config: LogConfig, signer: NoteSigner) -> Result<Self, LogError> {
        config.validate()?;
        let verifier = signer.verifier();
        let seq = Sequencer::recover(&config, signer)?;
        let latest = Arc::new(seq.latest.clone());
        let shared = Arc::new(Shared {
            dir: config.dir.clone(),
            latest: RwLock::new(latest),
            stopped: Mutex::new(None),
            reader: TileReader::new(&config.dir, 0),
        });
        let (tx, rx) = std::sync::mpsc::sync_channel(config.queue_capacity);
        let thread_shared = Arc::clone(&shared);
        let thread = std::thread::Builder::new()
            .name("vouch-log-sequencer".into())
            .spawn(move || seq.run(rx, thread_shared))
            .map_err(io_err("starting the sequencer thread"))?;
        Ok(Self {
            shared,
            tx: Some(tx),
            thread: Some(thread),
            max_entry_bytes: config.max_entry_bytes,
            verifier,
        })
    }

    fn pending(&self, entry: Vec<u8>) -> Result<(Pending, AppendHandle), LogError> {
        if entry.len() > self.max_entry_bytes {
            return Err(LogError::EntryTooLarge {
                size: entry.len(),
                max: self.max_entry_bytes,
            });
        }
        if let Some(why) = self
            .shared
            .stopped
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .clone()
        {
            return Err(LogError::Stopped(why));
        }
        let slot = Arc::new(Slot::default());
        let handle = AppendHandle {
            slot: Arc::clone(&slot),
        };
        Ok((Pending { entry, slot }, handle))
    }

    fn stopped(&self) -> LogError {
        let why = self
            .shared
            .stopped
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .clone();
        LogError::Stopped(why.unwrap_or_else(|| "sequencer exited".into()))
    }

    /// Submits an entry, blocking while the queue is full. The handle resolves once the entry
    /// is fsync'd and in a signed, persisted checkpoint. From async code, prefer
    /// [`Log::try_append`] (answer `QueueFull` with back-pressure, e.g. HTTP 503) so that no
    /// runtime thread blocks, then `.await` the handle.
    pub fn append(&self, entry: Vec<u8>) -> Result<AppendHandle, LogError> {
        let (p, h) = self.pending(entry)?;
        let tx = self.tx.as_ref().ok_or_else(|| self.stopped())?;
        tx.send(p).map_err(|_| self.stopped())?;
        Ok(h)
    }

    /// Submits an entry without blocking; [`LogError::QueueFull`] if the queue is full.
    pub fn try_append(&self, entry: Vec<u8>) -> Result<AppendHandle, LogError> {
        let (p, h) = self.pending(entry)?;
        let tx = self.tx.as_ref().ok_or_else(|| self.stopped())?;
        match tx.try_send(p) {
            Ok(()) => Ok(h),
            Err(TrySendError::Full(_)) => Err(LogError::QueueFull),
            Err(TrySendError::Disconnected(_)) => Err(self.stopped()),
        }
    }

    /// The latest checkpoint handed out.
    pub fn latest_checkpoint(&self) -> Arc<SignedCheckpoint> {
        Arc::clone(&self.shared.latest.read().unwrap_or_else(|p| p.into_inner()))
    }

    /// The log's note verifier key.
    pub fn verifier(&self) -> &crate::note::NoteVerifier {
        &self.verifier
    }

    fn reader_at(&self, size: u64) -> Result<TileReader, LogError> {
        let latest = self.latest_checkpoint().checkpoint.size;
        if size > latest {
            return Err(LogError::BeyondLatest { size, latest });
        }
        Ok(self.shared.reader.at_size(size))
    }

    /// A reader of the tiles at the latest checkpoint's size.
    pub fn reader(&self) -> TileReader {
        self.shared
            .reader
            .at_size(self.latest_checkpoint().checkpoint.size)
    }

    /// Entry `index`.
    pub fn entry(&self, index: u64) -> Result<Vec<u8>, LogError> {
        Ok(self.reader().entry(index)?)
    }

    /// The root hash of the tree at `size` (at most the latest checkpoint's size).
    pub fn root_at(&self, size: u64) -> Result<Hash, LogError> {
        Ok(self.reader_at(size)?.root()?)
    }

    /// The inclusion proof of entry `index` in the tree of `size` leaves.
    pub fn inclusion_proof(&self, index: u64, size: u64) -> Result<Vec<Hash>, LogError> {
        let r = self.reader_at(size)?;
        Ok(vouch_merkle::prove_inclusion(&r, index, size)?)
    }

    /// The consistency proof from `old` to `new` (empty when `old` is 0 or equal to `new`).
    pub fn consistency_proof(&self, old: u64, new: u64) -> Result<Vec<Hash>, LogError> {
        let r = self.reader_at(new)?;
        if old == 0 {
            // The empty tree is consistent with every tree: tlog-witness sends no proof.
            return Ok(Vec::new());
        }
        Ok(vouch_merkle::prove_consistency(&r, old, new)?)
    }

    /// An offline proof of entry `index` against `checkpoint` (the latest one, or one that
    /// witnesses have since cosigned).
    pub fn prove(
        &self,
        index: u64,
        checkpoint: &SignedCheckpoint,
    ) -> Result<ProofBundle, LogError> {
        let size = checkpoint.checkpoint.size;
        // Only this log's checkpoints: same origin, and the root this log has at that size.
        let ours = checkpoint.checkpoint.origin == crate::note::Verifier::name(&self.verifier)
            && self.root_at(size)? == checkpoint.checkpoint.root;
        if !ours {
            return Err(LogError::ForeignCheckpoint { size });
        }
        let proof = self.inclusion_proof(index, size)?;
        Ok(ProofBundle {
            extra: None,
            index,
            proof,
            checkpoint: checkpoint.to_text(),
        })
    }

    /// Entry `index` with its offline proof against the latest checkpoint.
    pub fn entry_with_proof(&self, index: u64) -> Result<(Vec<u8>, ProofBundle), LogError> {
        let cp = self.latest_checkpoint();
        let bundle = self.prove(index, &cp)?;
        Ok((self.entry(index)?, bundle))
    }

    /// Stops accepting entries, integrates what was queued, makes tiles durable, and waits
    /// for the sequencer to exit.
    pub fn close(mut self) -> Result<(), LogError> {
        self.stop();
        match self
            .shared
            .stopped
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .as_deref()
        {
            Some(CLOSED) | None => Ok(()),
            Some(why) => Err(LogError::Stopped(why.to_owned())),
        }
    }

    fn stop(&mut self) {
        self.tx.take();
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

const CLOSED: &str = "log closed";

impl Drop for Log {
    fn drop(&mut self) {
        self.stop();
    }
}

/// The sequencer's private state: the tree's right edge, the partial tiles, the journal.
struct Sequencer {
    dir: PathBuf,
    signer: NoteSigner,
    origin: String,
    batch_interval: Duration,
    max_batch: usize,
    sync_every: u64,
    range: CompactRange,
    // partial[l] holds the hashes of the rightmost, incomplete tile at level l.
    partial: Vec<Vec<Hash>>,
    bundle: Vec<u8>,
    bundle_len: u16,
    // None only while recovering.
    journal: Option<Journal>,
    latest: SignedCheckpoint,
    // Files written since the last sync point, fsync'd at the next one.
    dirty: BTreeSet<PathBuf>,
    // Tiles with partial versions on disk; a sync point deletes those once the tile is full.
    touched: HashSet<(TileKind, u64)>,
    made_dirs: HashSet<PathBuf>,
    since_sync: u64,
    // Held for the sequencer's lifetime; see `recover`.
    _lock: fs::File,
}

impl Sequencer {
    fn recover(config: &LogConfig, signer: NoteSigner) -> Result<Self, LogError> {
        let dir = config.dir.clone();
        let jdir = dir.join(JOURNAL_DIR);
        fs::create_dir_all(&jdir).map_err(io_err(format!("creating {}", jdir.display())))?;
        // Two sequencers on one directory would fork the log. The lock is advisory (flock), held
        // by this process until the sequencer exits, and released by the kernel if it dies.
        let lock = fs::OpenOptions::new()
            .create(true)
            .truncate(false)
            .write(true)
            .open(dir.join(LOCK_FILE))
            .map_err(io_err("opening the lock file"))?;
        match lock.try_lock() {
            Ok(()) => {}
            Err(fs::TryLockError::WouldBlock) => return Err(LogError::Locked(dir.clone())),
            Err(fs::TryLockError::Error(e)) => return Err(io_err("locking the log directory")(e)),
        }
        fs::create_dir_all(dir.join("tile")).map_err(io_err("creating tile directory"))?;
        let origin = signer.name().to_owned();
        let verifier = signer.verifier();
        let sync_path = dir.join(SYNC_FILE);
        let segments = journal::list_segments(&jdir).map_err(io_err("listing journal"))?;
        let synced = match fs::read(&sync_path) {
            Ok(b) => SignedCheckpoint::open(&b, &verifier)?,
            Err(e) if e.kind() == io::ErrorKind::NotFound => {
                let has_tiles = fs::read_dir(dir.join("tile"))
                    .map_err(io_err("listing tiles"))?
                    .next()
                    .is_some();
                if !segments.is_empty() || has_tiles {
                    return Err(LogError::Corrupt(format!(
                        "{} is missing but the journal or tiles exist",
                        sync_path.display()
                    )));
                }
                let empty =
                    SignedCheckpoint::sign(Checkpoint::new(&origin, 0, empty_root()), &signer)?;
                write_atomically(&sync_path, empty.to_text().as_bytes())
                    .map_err(io_err("writing the first sync checkpoint"))?;
                empty
            }
            Err(e) => return Err(io_err("reading the sync checkpoint")(e)),
        };
        let size = synced.checkpoint.size;

        // Rebuild the right edge from the tiles as of the sync point.
        let reader = TileReader::new(&dir, size);
        let mut partial = Vec::new();
        let mut level = 0u8;
        while u32::from(level) * TILE_HEIGHT < 64 && size >> (u32::from(level) * TILE_HEIGHT) > 0 {
            let w = partial_width(size, level);
            let mut hashes = Vec::new();
            if w > 0 {
                let id = TileId {
                    kind: TileKind::Hashes(level),
                    index: size >> ((u32::from(level) + 1) * TILE_HEIGHT),
                    width: w,
                };
                let body = fs::read(dir.join(id.path()))
                    .map_err(io_err(format!("reading partial tile {}", id.path())))?;
                hashes = crate::tile::decode_hashes(&body, w)
                    .map_err(|e| LogError::Corrupt(format!("{}: {e}", id.path())))?;
            }
            partial.push(hashes);
            level += 1;
        }
        let (mut bundle, mut bundle_len) = (Vec::new(), 0u16);
        let w0 = partial_width(size, 0);
        if w0 > 0 {
            let id = TileId {
                kind: TileKind::Entries,
                index: size / TILE_WIDTH,
                width: w0,
            };
            bundle = fs::read(dir.join(id.path()))
                .map_err(io_err(format!("reading partial bundle {}", id.path())))?;
            crate::tile::decode_bundle(&bundle, w0)
                .map_err(|e| LogError::Corrupt(format!("{}: {e}", id.path())))?;
            bundle_len = w0;
        }
        let peaks = CompactRange::peak_positions(size)
            .into_iter()
            .map(|(l, i)| reader.subtree_hash(l, i))
            .collect::<Result<Vec<_>, _>>()?;
        let range =
            CompactRange::from_peaks(size, peaks).map_err(|e| LogError::Corrupt(e.to_string()))?;
        if range.root() != synced.checkpoint.root {
            return Err(LogError::Corrupt(format!(
                "tiles at size {size} do not hash to the sync checkpoint's root"
            )));
        }

        let mut seq = Self {
            dir: dir.clone(),
            signer,
            origin,
            batch_interval: config.batch_interval,
            max_batch: config.max_batch,
            sync_every: config.sync_every_entries,
            range,
            partial,
            bundle,
            bundle_len,
            // Opened by the sync point below, once replay knows where appends continue.
            journal: None,
            latest: synced,
            dirty: BTreeSet::new(),
            touched: HashSet::new(),
            made_dirs: HashSet::new(),
            since_sync: 0,
            _lock: lock,
        };
        seq.replay(&segments, &verifier)?;
        seq.sync_point()?;
        fs::write(dir.join(CHECKPOINT_FILE), seq.latest.to_text())
            .map_err(io_err("writing checkpoint"))?;
        Ok(seq)
    }

    /// Integrates every journal record after the sync point, checking each against the
    /// checkpoint stored with it, and cuts a torn tail.
    fn replay(
        &mut self,
        segments: &[(u64, PathBuf)],
        verifier: &crate::note::NoteVerifier,
    ) -> Result<(), LogError> {
        let mut torn_at: Option<PathBuf> = None;
        for (_, path) in segments {
            let seg = journal::read_segment(path)?;
            if let Some(earlier) = &torn_at
                && !seg.records.is_empty()
            {
                return Err(LogError::Corrupt(format!(
                    "{} has a torn record but {} follows with data",
                    earlier.display(),
                    path.display()
                )));
            }
            for rec in seg.records {
                let size = self.range.size();
                if rec.end() <= size {
                    continue; // covered by the durable tiles already
                }
                if rec.first_index != size {
                    return Err(LogError::Corrupt(format!(
                        "journal record starts at {} but the tree has {size} entries",
                        rec.first_index
                    )));
                }
                let hashes: Vec<Hash> = rec.entries.iter().map(|e| leaf_hash(e)).collect();
                for h in &hashes {
                    self.range.push(*h);
                }
                let cp = SignedCheckpoint::open(&rec.checkpoint, verifier)?;
                if cp.checkpoint.size != self.range.size()
                    || cp.checkpoint.root != self.range.root()
                {
                    return Err(LogError::Corrupt(format!(
                        "journal checkpoint at size {} does not match its entries",
                        cp.checkpoint.size
                    )));
                }
                self.write_tiles(rec.first_index, &rec.entries, &hashes)?;
                self.latest = cp;
            }
            if seg.torn {
                // Never acknowledged: the record was not fully on disk when the process died.
                fs::OpenOptions::new()
                    .write(true)
                    .open(path)
                    .and_then(|f| {
                        f.set_len(seg.valid_len)?;
                        f.sync_all()
                    })
                    .map_err(io_err(format!(
                        "cutting the torn tail of {}",
                        path.display()
                    )))?;
                torn_at = Some(path.clone());
            }
        }
        Ok(())
    }

    fn run(mut self, rx: Receiver<Pending>, shared: Arc<Shared>) {
        let reason = loop {
            let Ok(first) = rx.recv() else {
                break None;
            };
            let mut batch = vec![first];
            let deadline = Instant::now() + self.batch_interval;
            while batch.len() < self.max_batch {
                let now = Instant::now();
                let next = if now >= deadline {
                    rx.try_recv().map_err(|_| RecvTimeoutError::Timeout)
                } else {
                    rx.recv_timeout(deadline - now)
                };
                match next {
                    Ok(p) => batch.push(p),
                    Err(_) => break,
                }
            }
            if let Err(e) = self.integrate_batch(batch, &shared) {
                break Some(e.to_string());
            }
        };
        // Refuse new entries first, then drain and fail whatever is still queued.
        *shared.stopped.lock().unwrap_or_else(|p| p.into_inner()) =
            Some(reason.clone().unwrap_or_else(|| CLOSED.into()));
        let err = LogError::Stopped(reason.clone().unwrap_or_else(|| CLOSED.into()));
        while let Ok(p) = rx.try_recv() {
            p.slot.fill(Err(err.clone()));
        }
        if reason.is_none()
            && let Err(e) = self.sync_point()
        {
            *shared.stopped.lock().unwrap_or_else(|p| p.into_inner()) = Some(e.to_string());
        }
    }

    fn integrate_batch(&mut self, batch: Vec<Pending>, shared: &Shared) -> Result<(), LogError> {
        let first = self.range.size();
        let (entries, slots): (Vec<Vec<u8>>, Vec<Arc<Slot>>) =
            batch.into_iter().map(|p| (p.entry, p.slot)).unzip();
        let result = self.sequence(first, &entries);
        match result {
            Ok(cp) => {
                *shared.latest.write().unwrap_or_else(|p| p.into_inner()) = Arc::clone(&cp);
                for (i, slot) in slots.into_iter().enumerate() {
                    slot.fill(Ok(Appended {
                        index: first + i as u64,
                        checkpoint: Arc::clone(&cp),
                    }));
                }
                if self.since_sync >= self.sync_every {
                    self.sync_point()?;
                }
                Ok(())
            }
            Err(e) => {
                // The batch may or may not be durable; the next open decides. Nothing of it
                // was acknowledged or published.
                for slot in slots {
                    slot.fill(Err(e.clone()));
                }
                Err(e)
            }
        }
    }

    /// Makes one batch durable and integrated; returns its checkpoint.
    fn sequence(
        &mut self,
        first: u64,
        entries: &[Vec<u8>],
    ) -> Result<Arc<SignedCheckpoint>, LogError> {
        let mut range = self.range.clone();
        let hashes: Vec<Hash> = entries.iter().map(|e| leaf_hash(e)).collect();
        for h in &hashes {
            range.push(*h);
        }
        let cp = SignedCheckpoint::sign(
            Checkpoint::new(&self.origin, range.size(), range.root()),
            &self.signer,
        )?;
        let record = journal::encode(first, entries, cp.to_text().as_bytes());
        self.journal
            .as_mut()
            .ok_or_else(|| LogError::Stopped("journal not open".into()))?
            .append(&record)
            .map_err(io_err("appending to the journal"))?;
        // Durable from here: the entries and the checkpoint are on stable storage together.
        self.range = range;
        self.write_tiles(first, entries, &hashes)?;
        let text = cp.to_text();
        let tmp = self.dir.join("checkpoint.tmp");
        fs::write(&tmp, &text).map_err(io_err("writing checkpoint"))?;
        fs::rename(&tmp, self.dir.join(CHECKPOINT_FILE))
            .map_err(io_err("publishing checkpoint"))?;
        self.latest = cp.clone();
        self.since_sync += entries.len() as u64;
        Ok(Arc::new(cp))
    }

    fn write_file(&mut self, id: TileId, data: &[u8]) -> Result<(), LogError> {
        let path = self.dir.join(id.path());
        let parent = path.parent().expect("tile paths have a parent").to_owned();
        if !self.made_dirs.contains(&parent) {
            fs::create_dir_all(&parent)
                .map_err(io_err(format!("creating {}", parent.display())))?;
            self.made_dirs.insert(parent);
        }
        fs::write(&path, data).map_err(io_err(format!("writing {}", path.display())))?;
        self.dirty.insert(path);
        if u64::from(id.width) < TILE_WIDTH {
            self.touched.insert((id.kind, id.index));
        }
        Ok(())
    }

    /// Adds entries `first..` to the partial tiles and bundle, writing full tiles as they
    /// complete and the new partial tiles at the end.
    fn write_tiles(
        &mut self,
        first: u64,
        entries: &[Vec<u8>],
        hashes: &[Hash],
    ) -> Result<(), LogError> {
        let mut changed_levels: BTreeSet<u8> = BTreeSet::new();
        for (i, (entry, hash)) in entries.iter().zip(hashes).enumerate() {
            let n = first + i as u64 + 1; // tree size after this leaf
            push_bundle_entry(&mut self.bundle, entry)
                .map_err(|e| LogError::Corrupt(e.to_string()))?;
            self.bundle_len += 1;
            if u64::from(self.bundle_len) == TILE_WIDTH {
                let id = TileId {
                    kind: TileKind::Entries,
                    index: n / TILE_WIDTH - 1,
                    width: TILE_WIDTH as u16,
                };
                let body = std::mem::take(&mut self.bundle);
                self.write_file(id, &body)?;
                self.bundle_len = 0;
            }
            let mut level = 0u8;
            let mut node = *hash;
            loop {
                if self.partial.len() <= usize::from(level) {
                    self.partial.push(Vec::new());
                }
                self.partial[usize::from(level)].push(node);
                changed_levels.insert(level);
                if self.partial[usize::from(level)].len() as u64 != TILE_WIDTH {
                    break;
                }
                let full = std::mem::take(&mut self.partial[usize::from(level)]);
                let shift = (u32::from(level) + 1) * TILE_HEIGHT;
                let id = TileId {
                    kind: TileKind::Hashes(level),
                    index: (n >> shift) - 1,
                    width: TILE_WIDTH as u16,
                };
                self.write_file(id, &encode_hashes(&full))?;
                node = root_from_leaf_hashes(&full);
                level += 1;
            }
        }
        let size = first + entries.len() as u64;
        for level in changed_levels {
            let w = partial_width(size, level);
            if w > 0 {
                let shift = (u32::from(level) + 1) * TILE_HEIGHT;
                let id = TileId {
                    kind: TileKind::Hashes(level),
                    index: size >> shift,
                    width: w,
                };
                let body = encode_hashes(&self.partial[usize::from(level)]);
                self.write_file(id, &body)?;
            }
        }
        if self.bundle_len > 0 && !entries.is_empty() {
            let id = TileId {
                kind: TileKind::Entries,
                index: size / TILE_WIDTH,
                width: self.bundle_len,
            };
            let body = self.bundle.clone();
            self.write_file(id, &body)?;
        }
        Ok(())
    }

    /// Makes every tile written so far durable, records the size they cover, starts a new
    /// journal segment there, and removes what that makes redundant.
    fn sync_point(&mut self) -> Result<(), LogError> {
        let mut dirs: BTreeSet<PathBuf> = BTreeSet::new();
        for path in std::mem::take(&mut self.dirty) {
            fs::File::open(&path)
                .and_then(|f| f.sync_data())
                .map_err(io_err(format!("syncing {}", path.display())))?;
            // New files need their directory entries synced too, up to the tile root.
            let mut d = path.parent();
            while let Some(p) = d {
                if !p.starts_with(&self.dir) || p == self.dir || !dirs.insert(p.to_owned()) {
                    break;
                }
                d = p.parent();
            }
        }
        dirs.insert(self.dir.clone());
        for d in &dirs {
            fs::File::open(d)
                .and_then(|f| f.sync_all())
                .map_err(io_err(format!("syncing {}", d.display())))?;
        }
        write_atomically(&self.dir.join(SYNC_FILE), self.latest.to_text().as_bytes())
            .map_err(io_err("writing the sync checkpoint"))?;
        let size = self.range.size();
        let jdir = self.dir.join(JOURNAL_DIR);
        self.journal = Some(Journal::create(&jdir, size).map_err(io_err("rotating the journal"))?);
        for (start, path) in journal::list_segments(&jdir).map_err(io_err("listing journal"))? {
            if start != size {
                fs::remove_file(&path).map_err(io_err(format!("removing {}", path.display())))?;
            }
        }
        fs::File::open(&jdir)
            .and_then(|f| f.sync_all())
            .map_err(io_err("syncing journal directory"))?;
        self.prune_partials(size);
        self.since_sync = 0;
        Ok(())
    }

    /// Deletes the partial versions of tiles that are now full. tlog-tiles requires a log to
    /// serve the partial tile of every checkpointed size until the full tile exists, so the
    /// partials of a still-incomplete tile all stay (at most 255 of them). Failures are
    /// harmless (a reader that finds no partial reads the full tile), so they are ignored.
    fn prune_partials(&mut self, size: u64) {
        for (kind, index) in std::mem::take(&mut self.touched) {
            let level = match kind {
                TileKind::Hashes(l) => l,
                TileKind::Entries => 0,
            };
            if index >= crate::tile::full_tiles(size, level) {
                // Still partial: keep it for the next sync point to look at again.
                self.touched.insert((kind, index));
                continue;
            }
            let full = TileId {
                kind,
                index,
                width: TILE_WIDTH as u16,
            };
            let _ = fs::remove_dir_all(self.dir.join(format!("{}.p", full.path())));
        }
    }
}
