#![no_main]
use libfuzzer_sys::fuzz_target;
use vouch_types::SignedReceipt;

fuzz_target!(|data: &[u8]| {
    if let Ok(r) = SignedReceipt::from_json_bytes(data) {
        let _ = r.verify_signature();
        let again = SignedReceipt::from_json(r.to_json()).expect("our own JSON parses");
        assert_eq!(again, r);
    }
});
