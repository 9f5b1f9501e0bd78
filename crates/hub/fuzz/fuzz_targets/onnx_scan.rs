//! The ONNX scanner on arbitrary bytes: it must never panic, and a summary it returns must
//! respect the limits it was given.
#![no_main]

use libfuzzer_sys::fuzz_target;
use vouch_hub::onnx_scan::{ScanLimits, scan_bytes};

fuzz_target!(|data: &[u8]| {
    let limits = ScanLimits {
        max_graph_depth: 8,
        max_graph_values: 64,
        max_summary_bytes: 64 * 1024,
        ..ScanLimits::default()
    };
    if let Ok(s) = scan_bytes(data, &limits) {
        assert!(s.ir_version >= 1);
        assert!(s.inputs.len() <= limits.max_graph_values);
        assert!(s.outputs.len() <= limits.max_graph_values);
        assert!(s.operators.len() <= limits.max_distinct_ops);
        assert!(s.opset_imports.len() <= limits.max_opsets);
        let total: u64 = s.operators.iter().map(|o| o.count).sum();
        assert_eq!(total, s.node_count);
    }
});
