//! Appends a stream of entries to a log and prints every acknowledgement and every checkpoint
//! it is handed, so that a test can SIGKILL it mid-stream and check what survived.
//!
//! Usage: `vouch-log-stress DIR RUN COUNT [WRITERS] [MAX_BATCH] [INTERVAL_MS]`
//!
//! Output lines (each flushed before the next append is waited on):
//! - `ack <index> <hex SHA-256 of the entry>`
//! - `checkpoint <base64 of the signed checkpoint note>`
//!
//! The log key is fixed (seed `[7; 32]`, name `stress.vouch.example/log`): this is a test
//! tool, not a way to run a log.

use std::collections::HashSet;
use std::io::Write;
use std::sync::Mutex;
use std::time::Duration;

use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use sha2::{Digest, Sha256};
use vouch_log::{Log, LogConfig, NoteSigner};

/// The stress log's key name and origin.
pub const ORIGIN: &str = "stress.vouch.example/log";

fn arg<T: std::str::FromStr>(args: &[String], i: usize, default: Option<T>) -> T {
    match args.get(i) {
        Some(s) => s.parse().unwrap_or_else(|_| usage()),
        None => default.unwrap_or_else(|| usage()),
    }
}

fn usage() -> ! {
    eprintln!("usage: vouch-log-stress DIR RUN COUNT [WRITERS] [MAX_BATCH] [INTERVAL_MS]");
    std::process::exit(2)
}

fn main() {
    let args: Vec<String> = std::env::args().collect();
    let dir: String = arg(&args, 1, None);
    let run: u64 = arg(&args, 2, None);
    let count: u64 = arg(&args, 3, None);
    let writers: u64 = arg(&args, 4, Some(8));
    let max_batch: usize = arg(&args, 5, Some(64));
    let interval_ms: u64 = arg(&args, 6, Some(2));

    let signer = NoteSigner::new(ORIGIN, &[7; 32]).expect("fixed key name is valid");
    let mut config = LogConfig::new(&dir);
    config.max_batch = max_batch;
    config.batch_interval = Duration::from_millis(interval_ms);
    // Frequent sync points so that kills land in every phase: journal, tiles, rotation.
    config.sync_every_entries = 500;
    let log = match Log::open(config, signer) {
        Ok(l) => l,
        Err(e) => {
            eprintln!("vouch-log-stress: opening {dir}: {e}");
            std::process::exit(1);
        }
    };
    let out = Mutex::new((std::io::stdout(), HashSet::new()));
    std::thread::scope(|s| {
        for w in 0..writers {
            let (log, out) = (&log, &out);
            s.spawn(move || {
                let mut i = w;
                while i < count {
                    let entry = format!("run {run} writer {w} seq {i}").into_bytes();
                    let appended = match log.append(entry.clone()).and_then(|h| h.wait()) {
                        Ok(a) => a,
                        Err(e) => {
                            eprintln!("vouch-log-stress: append: {e}");
                            std::process::exit(1);
                        }
                    };
                    let hash: String = Sha256::digest(&entry)
                        .iter()
                        .map(|b| format!("{b:02x}"))
                        .collect();
                    let mut guard = out.lock().unwrap_or_else(|p| p.into_inner());
                    let (stdout, printed) = &mut *guard;
                    let mut lock = stdout.lock();
                    let cp = &appended.checkpoint;
                    if printed.insert(cp.checkpoint.size) {
                        let _ = writeln!(lock, "checkpoint {}", STANDARD.encode(cp.to_text()));
                    }
                    let _ = writeln!(lock, "ack {} {hash}", appended.index);
                    let _ = lock.flush();
                    i += writers;
                }
            });
        }
    });
    if let Err(e) = log.close() {
        eprintln!("vouch-log-stress: close: {e}");
        std::process::exit(1);
    }
}
