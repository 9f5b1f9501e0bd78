#![no_main]
use libfuzzer_sys::fuzz_target;
use vouch_types::{Limits, tensor::onnx_pb};

fuzz_target!(|data: &[u8]| {
    let limits = Limits { max_rank: 8, max_bytes: 1 << 20 };
    if let Ok((name, t)) = onnx_pb::from_tensor_proto(data, &limits) {
        let (n2, again) =
            onnx_pb::from_tensor_proto(&onnx_pb::to_tensor_proto(&name, &t), &limits).expect("round trip");
        assert_eq!(n2, name);
        assert_eq!(again.encode(), t.encode());
    }
});
