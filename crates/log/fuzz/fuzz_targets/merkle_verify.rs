#![no_main]
//! Proof verification over arbitrary u64 sizes and proof lengths: never panics.
use libfuzzer_sys::fuzz_target;
use vouch_merkle::{verify_consistency, verify_inclusion};

fuzz_target!(|data: &[u8]| {
    if data.len() < 16 {
        return;
    }
    let a = u64::from_le_bytes(data[..8].try_into().expect("8 bytes"));
    let b = u64::from_le_bytes(data[8..16].try_into().expect("8 bytes"));
    let proof: Vec<[u8; 32]> = data[16..]
        .chunks_exact(32)
        .map(|c| c.try_into().expect("32 bytes"))
        .collect();
    let h = [0u8; 32];
    let _ = verify_inclusion(a, b, &h, &proof, &h);
    let _ = verify_consistency(a, b, &proof, &h, &h);
});
