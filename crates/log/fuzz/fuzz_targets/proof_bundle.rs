#![no_main]
//! tlog-proof bundles: no panic in parsing or verifying; canonical re-encoding.
use libfuzzer_sys::fuzz_target;
use vouch_log::{NoteSigner, ProofBundle, WitnessPolicy};

fuzz_target!(|data: &[u8]| {
    let Ok(s) = std::str::from_utf8(data) else {
        return;
    };
    if let Ok(b) = ProofBundle::parse(s) {
        assert_eq!(b.to_text(), s);
        let key = NoteSigner::new("fuzz.example/log", &[1; 32])
            .expect("valid")
            .verifier();
        let policy = WitnessPolicy::new(vec![], 0).expect("valid");
        let _ = b.verify(b"entry", &key, &policy);
    }
});
