#![no_main]
use libfuzzer_sys::fuzz_target;
use vouch_engine::{EngineConfig, Model};

fuzz_target!(|data: &[u8]| {
    let config = EngineConfig { max_model_bytes: 1 << 20, ..EngineConfig::default() };
    let _ = vouch_engine::inspect(data, config.max_model_bytes);
    let _ = Model::load(data, &config);
});
