#![no_main]
//! Signed notes: no panic; a parsed note re-encodes to the input.
use libfuzzer_sys::fuzz_target;
use vouch_log::note::Note;

fuzz_target!(|data: &[u8]| {
    if let Ok(n) = Note::parse(data) {
        assert_eq!(n.to_text().as_bytes(), data);
    }
});
