#![no_main]
//! Checkpoint bodies and signed checkpoints: no panic; canonical re-encoding.
use libfuzzer_sys::fuzz_target;
use vouch_log::{Checkpoint, SignedCheckpoint};

fuzz_target!(|data: &[u8]| {
    if let Ok(s) = std::str::from_utf8(data)
        && let Ok(c) = Checkpoint::parse(s)
    {
        assert_eq!(c.to_text(), s);
    }
    if let Ok(cp) = SignedCheckpoint::parse_unverified(data) {
        assert_eq!(cp.to_text().as_bytes(), data);
    }
});
