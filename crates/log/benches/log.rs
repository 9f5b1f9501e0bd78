//! Benchmark of the durable log (a plain binary, not criterion: the figures are throughput and
//! latency percentiles of a running sequencer, with real fsyncs, which criterion's model of
//! repeated closures does not fit).
//!
//! `cargo bench -p vouch-log --bench log` runs everything; arguments narrow it:
//! - `appends` — durable appends/s and submit→integrated latency at several batch sizes,
//!   saturated and closed-loop; `latency` — the closed-loop part alone;
//! - `proofs [SIZES]` — build a log of the largest size (comma-separated, default
//!   1000000,10000000) through the sequencer, then time proofs from its tiles at each size.
//!
//! The log directory is created under `$VOUCH_BENCH_DIR` (default: the system temp dir).

use std::time::{Duration, Instant};

use vouch_log::{Log, LogConfig, NoteSigner};
use vouch_merkle::{leaf_hash, verify_consistency, verify_inclusion};

fn bench_dir() -> tempfile::TempDir {
    match std::env::var_os("VOUCH_BENCH_DIR") {
        Some(d) => tempfile::tempdir_in(d).expect("create bench dir"),
        None => tempfile::tempdir().expect("create bench dir"),
    }
}

fn signer() -> NoteSigner {
    NoteSigner::new("bench.vouch.example/log", &[5; 32]).expect("valid name")
}

fn percentile(sorted: &[Duration], p: f64) -> Duration {
    let i = ((sorted.len() as f64 - 1.0) * p).round() as usize;
    sorted[i]
}

/// Tiny deterministic generator so runs are repeatable without a rand dependency.
struct SplitMix(u64);
impl SplitMix {
    fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9e3779b97f4a7c15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58476d1ce4e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d049bb133111eb);
        z ^ (z >> 31)
    }
}

fn appends() {
    println!(
        "## Saturated: one producer submitting as fast as the queue takes (1 KiB entries, fdatasync before ack)\n"
    );
    println!(
        "Latency here is mostly time spent queued behind earlier entries; see the closed loop below for what a client waits.\n"
    );
    println!(
        "| max batch | interval | entries | appends/s | p50 latency | p99 latency | mean batch |"
    );
    println!("|---|---|---|---|---|---|---|");
    for &(batch, entries) in &[
        (1usize, 3_000usize),
        (16, 20_000),
        (64, 50_000),
        (256, 100_000),
        (1024, 150_000),
    ] {
        let dir = bench_dir();
        let mut config = LogConfig::new(dir.path());
        config.max_batch = batch;
        config.batch_interval = Duration::from_millis(1);
        config.queue_capacity = 4 * batch.max(256);
        config.sync_every_entries = 1 << 16;
        let log = Log::open(config, signer()).expect("open log");
        let entry = vec![0xabu8; 1024];
        let (tx, rx) = std::sync::mpsc::sync_channel(8 * batch.max(256));
        let start = Instant::now();
        let mut latencies = Vec::with_capacity(entries);
        let mut sizes = std::collections::BTreeSet::new();
        std::thread::scope(|s| {
            let log = &log;
            let entry = &entry;
            s.spawn(move || {
                for i in 0..entries {
                    let mut e = entry.clone();
                    e[..8].copy_from_slice(&(i as u64).to_be_bytes());
                    let t = Instant::now();
                    let h = log.append(e).expect("append");
                    tx.send((t, h)).expect("consumer alive");
                }
            });
            for (t, h) in rx.iter() {
                let a = h.wait().expect("durable append");
                latencies.push(t.elapsed());
                sizes.insert(a.checkpoint.checkpoint.size);
            }
        });
        let elapsed = start.elapsed();
        latencies.sort();
        println!(
            "| {batch} | 1 ms | {entries} | {:.0} | {:.2} ms | {:.2} ms | {:.1} |",
            entries as f64 / elapsed.as_secs_f64(),
            percentile(&latencies, 0.5).as_secs_f64() * 1e3,
            percentile(&latencies, 0.99).as_secs_f64() * 1e3,
            entries as f64 / sizes.len() as f64,
        );
        log.close().expect("close");
    }
    println!();
}

/// Closed loop: `writers` threads each append and wait, so latency is what one client sees
/// (no queueing behind a saturating producer).
fn closed_loop() {
    println!(
        "## Closed loop: W writers each waiting for their ack (1 KiB entries, max batch 256)\n"
    );
    println!("| writers | interval | appends/s | p50 latency | p99 latency | mean batch |");
    println!("|---|---|---|---|---|---|");
    for &(writers, interval_ms) in &[(1usize, 0u64), (1, 1), (16, 1), (64, 1), (256, 1), (256, 5)] {
        let dir = bench_dir();
        let mut config = LogConfig::new(dir.path());
        config.max_batch = 256;
        config.batch_interval = Duration::from_millis(interval_ms);
        let log = Log::open(config, signer()).expect("open log");
        let run_for = Duration::from_secs(3);
        let start = Instant::now();
        let results: Vec<(Vec<Duration>, Vec<u64>)> = std::thread::scope(|s| {
            let handles: Vec<_> = (0..writers)
                .map(|w| {
                    let log = &log;
                    s.spawn(move || {
                        let (mut lat, mut sizes) = (Vec::new(), Vec::new());
                        let mut i = 0u64;
                        while start.elapsed() < run_for {
                            let mut e = vec![0xcdu8; 1024];
                            e[..16].copy_from_slice(
                                &[(w as u64).to_be_bytes(), i.to_be_bytes()].concat(),
                            );
                            let t = Instant::now();
                            let a = log.append(e).expect("append").wait().expect("durable");
                            lat.push(t.elapsed());
                            sizes.push(a.checkpoint.checkpoint.size);
                            i += 1;
                        }
                        (lat, sizes)
                    })
                })
                .collect();
            handles
                .into_iter()
                .map(|h| h.join().expect("writer"))
                .collect()
        });
        let elapsed = start.elapsed();
        let mut lat: Vec<Duration> = results.iter().flat_map(|r| r.0.iter().copied()).collect();
        let batches: std::collections::BTreeSet<u64> =
            results.iter().flat_map(|r| r.1.iter().copied()).collect();
        lat.sort();
        println!(
            "| {writers} | {interval_ms} ms | {:.0} | {:.2} ms | {:.2} ms | {:.1} |",
            lat.len() as f64 / elapsed.as_secs_f64(),
            percentile(&lat, 0.5).as_secs_f64() * 1e3,
            percentile(&lat, 0.99).as_secs_f64() * 1e3,
            lat.len() as f64 / batches.len() as f64,
        );
        log.close().expect("close");
    }
    println!();
}

fn proofs(sizes: &[u64]) {
    let max = *sizes.iter().max().expect("at least one size");
    let dir = bench_dir();
    let mut config = LogConfig::new(dir.path());
    config.max_batch = 1 << 16;
    config.max_entry_bytes = 64;
    config.batch_interval = Duration::from_millis(20);
    config.queue_capacity = 1 << 17;
    config.sync_every_entries = 1 << 20;
    let log = Log::open(config, signer()).expect("open log");
    let start = Instant::now();
    let (tx, rx) = std::sync::mpsc::sync_channel(1 << 17);
    std::thread::scope(|s| {
        let log = &log;
        s.spawn(move || {
            for i in 0..max {
                let h = log
                    .append(leaf_hash(&i.to_be_bytes()).to_vec())
                    .expect("append");
                tx.send(h).expect("consumer alive");
            }
        });
        for h in rx.iter() {
            h.wait().expect("durable append");
        }
    });
    let build = start.elapsed();
    let du = dir_size(dir.path());
    println!("## Proofs from tiles\n");
    println!(
        "Built a log of {max} entries (32 bytes each) through the sequencer in {:.1} s ({:.0} appends/s, batches of up to 65,536); {:.0} MiB on disk.\n",
        build.as_secs_f64(),
        max as f64 / build.as_secs_f64(),
        du as f64 / (1 << 20) as f64
    );
    println!(
        "| tree size | root from tiles | inclusion proof: generate | verify | consistency proof: generate | verify | proof hashes (incl./cons.) |"
    );
    println!("|---|---|---|---|---|---|---|");
    let mut rng = SplitMix(42);
    for &size in sizes {
        // A fresh reader per size: its tile cache starts cold, then warms as it goes.
        let reader = log.reader().at_size(size);
        let t = Instant::now();
        let root = reader.root().expect("root");
        let root_time = t.elapsed();
        let iters = 2000;
        let (mut gen_i, mut ver_i, mut gen_c, mut ver_c) = (
            Duration::ZERO,
            Duration::ZERO,
            Duration::ZERO,
            Duration::ZERO,
        );
        let (mut len_i, mut len_c) = (0usize, 0usize);
        for _ in 0..iters {
            let index = rng.next() % size;
            let t = Instant::now();
            let proof = vouch_merkle::prove_inclusion(&reader, index, size).expect("prove");
            gen_i += t.elapsed();
            let leaf = leaf_hash(&leaf_hash(&index.to_be_bytes()));
            let t = Instant::now();
            verify_inclusion(index, size, &leaf, &proof, &root).expect("verify");
            ver_i += t.elapsed();
            len_i += proof.len();

            let old = 1 + rng.next() % (size - 1);
            let old_root = log.root_at(old).expect("old root");
            let t = Instant::now();
            let proof = vouch_merkle::prove_consistency(&reader, old, size).expect("prove");
            gen_c += t.elapsed();
            let t = Instant::now();
            verify_consistency(old, size, &proof, &old_root, &root).expect("verify");
            ver_c += t.elapsed();
            len_c += proof.len();
        }
        let us = |d: Duration| d.as_secs_f64() * 1e6 / iters as f64;
        println!(
            "| {size} | {:.0} µs | {:.1} µs | {:.1} µs | {:.1} µs | {:.1} µs | {:.1} / {:.1} |",
            root_time.as_secs_f64() * 1e6,
            us(gen_i),
            us(ver_i),
            us(gen_c),
            us(ver_c),
            len_i as f64 / iters as f64,
            len_c as f64 / iters as f64,
        );
    }
    println!();
    log.close().expect("close");
}

fn dir_size(p: &std::path::Path) -> u64 {
    let mut total = 0;
    if let Ok(rd) = std::fs::read_dir(p) {
        for e in rd.flatten() {
            let Ok(m) = e.metadata() else { continue };
            total += if m.is_dir() {
                dir_size(&e.path())
            } else {
                m.len()
            };
        }
    }
    total
}

fn main() {
    // `cargo bench` passes `--bench`; `cargo test --all-targets` runs this binary without it,
    // and then only a small smoke run is done so the test suite stays fast.
    if !std::env::args().any(|a| a == "--bench") {
        proofs(&[1_000]);
        return;
    }
    let args: Vec<String> = std::env::args()
        .skip(1)
        .filter(|a| !a.starts_with("--"))
        .collect();
    let what = args.first().map(String::as_str).unwrap_or("all");
    let sizes: Vec<u64> = args
        .get(1)
        .map(|s| {
            s.split(',')
                .map(|x| x.parse().expect("sizes are integers"))
                .collect()
        })
        .unwrap_or_else(|| vec![1_000_000, 10_000_000]);
    if what == "all" || what == "appends" {
        appends();
    }
    if what == "all" || what == "appends" || what == "latency" {
        closed_loop();
    }
    if what == "all" || what == "proofs" {
        proofs(&sizes);
    }
}
