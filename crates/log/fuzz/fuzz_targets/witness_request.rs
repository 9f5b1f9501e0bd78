#![no_main]
//! tlog-witness add-checkpoint bodies: no panic; canonical re-encoding.
use libfuzzer_sys::fuzz_target;
use vouch_log::witness::AddCheckpointRequest;

fuzz_target!(|data: &[u8]| {
    if let Ok(r) = AddCheckpointRequest::parse(data) {
        assert_eq!(r.to_bytes(), data);
    }
});
