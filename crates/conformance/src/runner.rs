//! Running cases in child processes, a bounded number at a time, so that no case can crash or
//! hang the harness: each case is this same binary re-invoked with the hidden `case`
//! subcommand, under a time limit (then killed) and an address-space limit (set by the child on
//! itself before loading anything). An abort, a stack overflow, an allocation failure or a hang
//! becomes a named [`Failure`] of that one case.

use std::{
    io::Read,
    path::PathBuf,
    process::{Child, Command, ExitStatus, Stdio},
    sync::{
        Mutex,
        atomic::{AtomicUsize, Ordering},
    },
    thread,
    time::{Duration, Instant},
};

use serde::{Deserialize, Serialize};
use vouch_engine::Profile;

use crate::{case::Outcome, reason::Failure, suite::Case};

/// How child processes are run.
#[derive(Clone, Debug)]
pub struct RunnerConfig {
    /// The harness binary, re-invoked with `case` for each case.
    pub exe: PathBuf,
    /// The engine profile every case runs under.
    pub profile: Profile,
    /// Cases run at once.
    pub jobs: usize,
    /// Wall-clock limit per case.
    pub timeout: Duration,
    /// Address-space limit per case, in MiB (0: none).
    pub memory_limit_mb: u64,
}

/// The result of one case, as the reports hold it.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct CaseResult {
    /// Category.
    pub category: String,
    /// Case name.
    pub name: String,
    /// Whether every output of every data set matched.
    pub passed: bool,
    /// The reason code, e.g. `unsupported-op:Unique` (absent on a pass).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,
    /// The structured failure (absent on a pass).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub failure: Option<Failure>,
    /// The message behind the failure.
    #[serde(skip_serializing_if = "String::is_empty", default)]
    pub detail: String,
    /// For a load or run failure: whether the case passes with its inputs baked into the
    /// model as constants (see [`Outcome::passes_with_constant_inputs`]).
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub passes_with_constant_inputs: Option<bool>,
    /// Wall-clock seconds, process start to exit.
    pub seconds: f64,
}

impl CaseResult {
    fn new(case: &Case, outcome: Outcome, seconds: f64) -> CaseResult {
        CaseResult {
            category: case.category.clone(),
            name: case.name.clone(),
            passed: outcome.failure.is_none(),
            reason: outcome.failure.as_ref().map(Failure::code),
            failure: outcome.failure,
            detail: outcome.detail,
            passes_with_constant_inputs: outcome.passes_with_constant_inputs,
            seconds,
        }
    }
}

/// Runs every case, `config.jobs` at a time, largest model first (so a long case doesn't start
/// last); calls `on_done` as each finishes. Results come back in `cases` order.
pub fn run_all(
    cases: &[Case],
    config: &RunnerConfig,
    on_done: &(dyn Fn(&CaseResult) + Sync),
) -> Vec<CaseResult> {
    let mut order: Vec<usize> = (0..cases.len()).collect();
    let size = |i: &usize| std::fs::metadata(&cases[*i].model).map_or(0, |m| m.len());
    order.sort_by_key(|i| std::cmp::Reverse(size(i)));

    let next = AtomicUsize::new(0);
    let results: Mutex<Vec<Option<CaseResult>>> = Mutex::new(vec![None; cases.len()]);
    thread::scope(|scope| {
        for _ in 0..config.jobs.max(1) {
            scope.spawn(|| {
                while let Some(&i) = order.get(next.fetch_add(1, Ordering::Relaxed)) {
                    let result = run_in_child(&cases[i], config);
                    on_done(&result);
                    results.lock().expect("no worker panics holding the lock")[i] = Some(result);
                }
            });
        }
    });
    results
        .into_inner()
        .expect("workers finished")
        .into_iter()
        .map(|r| r.expect("every case ran"))
        .collect()
}

/// Runs one case in a child process and turns however it ended into a result.
pub fn run_in_child(case: &Case, config: &RunnerConfig) -> CaseResult {
    let started = Instant::now();
    let outcome = match spawn(case, config) {
        Ok(child) => supervise(child, config.timeout),
        Err(e) => Outcome::fail(
            Failure::HarnessError,
            format!("starting {}: {e}", config.exe.display()),
        ),
    };
    CaseResult::new(case, outcome, started.elapsed().as_secs_f64())
}

fn spawn(case: &Case, config: &RunnerConfig) -> std::io::Result<Child> {
    let spec = serde_json::to_string(case).expect("a case serializes");
    Command::new(&config.exe)
        .arg("case")
        .arg("--profile")
        .arg(config.profile.name())
        .arg("--memory-limit-mb")
        .arg(config.memory_limit_mb.to_string())
        .arg("--case")
        .arg(spec)
        // A backtrace needs memory and a lock that an allocation failure also takes: with one,
        // a case that runs out of memory while panicking deadlocks instead of dying. tract's
        // errors (anyhow) would also capture one each, which is slow.
        .env("RUST_BACKTRACE", "0")
        .env("RUST_LIB_BACKTRACE", "0")
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
}

/// Keeps the last `max` bytes of a child's output: enough to name a crash, bounded whatever the
/// child prints.
fn read_tail(mut pipe: impl Read, max: usize) -> Vec<u8> {
    let mut tail = Vec::new();
    let mut buf = [0u8; 8192];
    while let Ok(n) = pipe.read(&mut buf) {
        if n == 0 {
            break;
        }
        tail.extend_from_slice(&buf[..n]);
        if tail.len() > 2 * max {
            tail.drain(..tail.len() - max);
        }
    }
    if tail.len() > max {
        tail.drain(..tail.len() - max);
    }
    tail
}

fn supervise(mut child: Child, timeout: Duration) -> Outcome {
    let stdout = child.stdout.take().expect("stdout is piped");
    let stderr = child.stderr.take().expect("stderr is piped");
    let out_reader = thread::spawn(move || read_tail(stdout, 1 << 20));
    let err_reader = thread::spawn(move || read_tail(stderr, 4096));

    let deadline = Instant::now() + timeout;
    let mut pause = Duration::from_millis(1);
    let status = loop {
        match child.try_wait() {
            Ok(Some(status)) => break Some(status),
            Ok(None) if Instant::now() >= deadline => {
                // Killing an exited child is harmless; the wait reaps it either way.
                let _ = child.kill();
                let _ = child.wait();
                break None;
            }
            Ok(None) => {
                thread::sleep(pause);
                pause = (pause * 2).min(Duration::from_millis(20));
            }
            Err(e) => {
                let _ = child.kill();
                let _ = child.wait();
                return Outcome::fail(
                    Failure::HarnessError,
                    format!("waiting for the case process: {e}"),
                );
            }
        }
    };
    let stdout = out_reader.join().unwrap_or_default();
    let stderr = String::from_utf8_lossy(&err_reader.join().unwrap_or_default()).into_owned();
    let Some(status) = status else {
        return Outcome::fail(
            Failure::Timeout,
            format!("killed after {} s", timeout.as_secs_f64()),
        );
    };
    if status.success() {
        let last_line = String::from_utf8_lossy(&stdout)
            .lines()
            .rev()
            .find(|l| !l.trim().is_empty())
            .map(str::to_string)
            .unwrap_or_default();
        return serde_json::from_str(&last_line).unwrap_or_else(|e| {
            Outcome::fail(
                Failure::HarnessError,
                format!("the case process printed no result ({e}); stderr: {stderr}"),
            )
        });
    }
    Outcome::fail(
        classify_exit(status, &stderr),
        format!("{}; stderr: {}", describe(status), stderr.trim()),
    )
}

fn describe(status: ExitStatus) -> String {
    use std::os::unix::process::ExitStatusExt;
    match (status.code(), status.signal()) {
        (Some(code), _) => format!("exited with status {code}"),
        (None, Some(signal)) => format!("killed by {}", signal_name(signal)),
        (None, None) => "ended abnormally".into(),
    }
}

/// Names how a case process died, from its exit status and the tail of its stderr.
pub fn classify_exit(status: ExitStatus, stderr: &str) -> Failure {
    use std::os::unix::process::ExitStatusExt;
    if stderr.contains("has overflowed its stack") {
        return Failure::Crash {
            cause: "stack-overflow".into(),
        };
    }
    // Rust's allocation-failure handler, and the child's own message when an allocation
    // beyond the address-space limit fails.
    if stderr.contains("memory allocation of") || stderr.contains("capacity overflow") {
        return Failure::OutOfMemory;
    }
    let cause = match (status.code(), status.signal()) {
        (_, Some(signal)) => signal_name(signal),
        (Some(101), _) => "panic".into(),
        (Some(code), _) => format!("exit-{code}"),
        (None, None) => "unknown".into(),
    };
    Failure::Crash { cause }
}

fn signal_name(signal: i32) -> String {
    match signal {
        libc::SIGABRT => "SIGABRT".into(),
        libc::SIGSEGV => "SIGSEGV".into(),
        libc::SIGBUS => "SIGBUS".into(),
        libc::SIGILL => "SIGILL".into(),
        libc::SIGFPE => "SIGFPE".into(),
        libc::SIGKILL => "SIGKILL".into(),
        libc::SIGTERM => "SIGTERM".into(),
        other => format!("signal-{other}"),
    }
}

/// Caps this process's address space at `mb` MiB and disables core dumps: called by a case
/// process on itself before loading the model, so an allocation beyond it fails (and the case
/// is reported as out of memory) instead of pushing the machine into swap or the OOM killer.
pub fn limit_memory(mb: u64) -> std::io::Result<()> {
    let set = |resource, value: u64| {
        let limit = libc::rlimit {
            rlim_cur: value as libc::rlim_t,
            rlim_max: value as libc::rlim_t,
        };
        // SAFETY: setrlimit reads the struct we pass and changes only this process's limits.
        if unsafe { libc::setrlimit(resource, &limit) } == 0 {
            Ok(())
        } else {
            Err(std::io::Error::last_os_error())
        }
    };
    set(libc::RLIMIT_CORE, 0)?;
    if mb > 0 {
        set(libc::RLIMIT_AS, mb.saturating_mul(1 << 20))?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::process::ExitStatusExt;

    #[test]
    fn exits_are_named() {
        let signal = |s: i32| ExitStatus::from_raw(s);
        let code = |c: i32| ExitStatus::from_raw(c << 8);
        assert_eq!(
            classify_exit(signal(libc::SIGSEGV), "").group(),
            "crash:SIGSEGV"
        );
        assert_eq!(
            classify_exit(
                signal(libc::SIGABRT),
                "thread 'main' has overflowed its stack\nfatal runtime error: stack overflow"
            )
            .group(),
            "crash:stack-overflow"
        );
        assert_eq!(
            classify_exit(
                signal(libc::SIGABRT),
                "memory allocation of 8589934592 bytes failed"
            ),
            Failure::OutOfMemory
        );
        assert_eq!(classify_exit(code(101), "").group(), "crash:panic");
        assert_eq!(classify_exit(code(3), "").group(), "crash:exit-3");
    }

    fn sh(script: &str) -> Child {
        Command::new("sh")
            .args(["-c", script])
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap()
    }

    #[test]
    fn child_processes_end_as_named_outcomes() {
        let limit = Duration::from_secs(10);
        let passed = supervise(
            sh(r#"echo noise; echo '{"failure":null,"detail":""}'"#),
            limit,
        );
        assert_eq!(passed.failure, None);
        // `exec`: a grandchild would keep the pipes open after the kill (case processes never fork).
        let hung = supervise(sh("exec sleep 30"), Duration::from_millis(200));
        assert_eq!(hung.failure, Some(Failure::Timeout));
        let segv = supervise(sh("kill -SEGV $$"), limit);
        assert_eq!(segv.failure.unwrap().group(), "crash:SIGSEGV");
        let silent = supervise(sh("true"), limit);
        assert_eq!(silent.failure, Some(Failure::HarnessError));
        let chatty = supervise(sh("head -c 3000000 /dev/zero >&2; exit 4"), limit);
        assert_eq!(chatty.failure.unwrap().group(), "crash:exit-4");
    }

    #[test]
    fn tails_are_bounded() {
        let data = vec![b'x'; 100_000];
        assert_eq!(read_tail(&data[..], 10).len(), 10);
        assert_eq!(read_tail(&b"short"[..], 10), b"short");
    }
}
