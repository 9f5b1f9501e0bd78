//! Vouch's conformance harness: runs ONNX's own backend test suite (the `node`, `simple`,
//! `pytorch-converted`, `pytorch-operator` and `light` cases shipped in the `onnx` Python
//! package) through `vouch-engine`, compares every output with ONNX's reference under ONNX's
//! tolerances, and reports pass rates and named failure reasons.
//!
//! It owns the test-data layout ([`suite`]), the comparison rules ([`compare`]), the failure
//! taxonomy ([`reason`]), process isolation ([`runner`]: one child process per case, with a
//! time and memory limit), reports ([`report`]) and the regression gate ([`baseline`]). It does
//! not own the engine: failures it finds are reported, not worked around. The entry point is
//! the `vouch-conformance` binary; [`case::run_case`] runs one case in-process. This is a
//! binary's library, so its errors are `anyhow` errors.

pub mod baseline;
pub mod case;
pub mod compare;
pub mod reason;
pub mod report;
pub mod runner;
pub mod suite;
