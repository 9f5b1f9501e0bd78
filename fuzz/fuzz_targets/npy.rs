#![no_main]
use libfuzzer_sys::fuzz_target;
use vouch_types::{Limits, tensor::npy};

fuzz_target!(|data: &[u8]| {
    let limits = Limits { max_rank: 8, max_bytes: 1 << 20 };
    if let Ok(t) = npy::from_npy(data, &limits) {
        let again = npy::from_npy(&npy::to_npy(&t), &limits).expect("our own .npy parses");
        assert_eq!(again.encode(), t.encode());
    }
});
