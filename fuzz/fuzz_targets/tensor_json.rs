#![no_main]
use libfuzzer_sys::fuzz_target;
use vouch_types::{DType, Limits, tensor::json};

fuzz_target!(|data: &[u8]| {
    let Some((&hint, text)) = data.split_first() else { return };
    let Ok(v) = serde_json::from_slice::<serde_json::Value>(text) else { return };
    let limits = Limits { max_rank: 8, max_bytes: 1 << 20 };
    let hint = DType::ALL.get(hint as usize % 14).copied();
    if let Ok(t) = json::from_json(&v, hint, &limits) {
        let again = json::from_json(&json::to_json(&t), None, &limits).expect("our own JSON parses");
        assert_eq!(again.encode(), t.encode());
    }
});
