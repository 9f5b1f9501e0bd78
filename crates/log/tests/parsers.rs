//! Every parser of outside input, fed arbitrary and mutated bytes: none may panic, and
//! whatever parses must re-encode to the same bytes (the formats have one canonical form).
//! This is the stable-toolchain stand-in for `cargo fuzz` targets.

use proptest::prelude::*;
use vouch_log::bundle::ProofBundle;
use vouch_log::checkpoint::Checkpoint;
use vouch_log::note::Note;
use vouch_log::tile::{TileId, decode_bundle};
use vouch_log::witness::AddCheckpointRequest;
use vouch_log::{NoteSigner, SignedCheckpoint};

fn sample_note() -> String {
    let s = NoteSigner::new("example.com/log", &[1; 32]).unwrap();
    let cp = Checkpoint::new("example.com/log", 12345, [9; 32]);
    SignedCheckpoint::sign(cp, &s).unwrap().to_text()
}

/// A valid input with one byte replaced, inserted or deleted.
fn mutated(base: String) -> impl Strategy<Value = Vec<u8>> {
    let len = base.len();
    (0..len, any::<u8>(), 0..3u8).prop_map(move |(i, b, op)| {
        let mut v = base.clone().into_bytes();
        match op {
            0 => v[i] = b,
            1 => v.insert(i, b),
            _ => {
                v.remove(i);
            }
        }
        v
    })
}

fn check_all(bytes: &[u8]) {
    if let Ok(n) = Note::parse(bytes) {
        assert_eq!(n.to_text().as_bytes(), bytes);
    }
    if let Ok(s) = std::str::from_utf8(bytes) {
        if let Ok(c) = Checkpoint::parse(s) {
            assert_eq!(c.to_text(), s);
        }
        if let Ok(b) = ProofBundle::parse(s) {
            assert_eq!(b.to_text(), s);
        }
        if let Ok(t) = TileId::parse_path(s) {
            assert_eq!(t.path(), s);
        }
    }
    let _ = SignedCheckpoint::parse_unverified(bytes);
    if let Ok(r) = AddCheckpointRequest::parse(bytes) {
        assert_eq!(r.to_bytes(), bytes);
    }
    for w in [0u16, 1, 3, 256] {
        let _ = decode_bundle(bytes, w);
    }
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(2000))]

    #[test]
    fn arbitrary_bytes(bytes in proptest::collection::vec(any::<u8>(), 0..300)) {
        check_all(&bytes);
    }

    #[test]
    fn mutated_notes(bytes in mutated(sample_note())) {
        check_all(&bytes);
        // A mutated note never verifies unless the mutation left the signed text intact.
        let v = NoteSigner::new("example.com/log", &[1; 32]).unwrap().verifier();
        if let Ok(cp) = SignedCheckpoint::open(&bytes, &v) {
            prop_assert_eq!(cp.note.text, Note::parse(sample_note().as_bytes()).unwrap().text);
        }
    }

    #[test]
    fn mutated_requests(bytes in mutated(format!("old 5\n{}\n\n{}", "A".repeat(43) + "=", sample_note()))) {
        check_all(&bytes);
    }

    #[test]
    fn mutated_bundles(bytes in mutated(format!("c2sp.org/tlog-proof@v1\nextra AAEC\nindex 7\n{}\n\n{}", "B".repeat(43) + "=", sample_note()))) {
        check_all(&bytes);
    }

    #[test]
    fn mutated_paths(bytes in mutated("tile/entries/x001/x234/067.p/7".to_owned())) {
        check_all(&bytes);
    }
}
