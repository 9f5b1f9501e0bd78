#![no_main]
//! Tile paths, hash tiles and entry bundles: no panic; canonical paths.
use libfuzzer_sys::fuzz_target;
use vouch_log::tile::{TileId, decode_bundle, decode_hashes};

fuzz_target!(|data: &[u8]| {
    if let Ok(s) = std::str::from_utf8(data)
        && let Ok(t) = TileId::parse_path(s)
    {
        assert_eq!(t.path(), s);
    }
    if let Some((&w, body)) = data.split_first() {
        let _ = decode_bundle(body, u16::from(w) + 1);
        let _ = decode_hashes(body, u16::from(w) + 1);
    }
});
