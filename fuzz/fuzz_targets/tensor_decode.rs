#![no_main]
use libfuzzer_sys::fuzz_target;
use vouch_types::{Limits, Tensor};

fuzz_target!(|data: &[u8]| {
    let limits = Limits { max_rank: 8, max_bytes: 1 << 20 };
    if let Ok(t) = Tensor::decode(data, &limits) {
        assert_eq!(t.encode(), data);
    }
});
