//! The native profile in a process of its own (profiles are process-wide).

use vouch_engine::{EngineConfig, EngineError, Model, Profile, profile};

#[test]
fn native_profile_runs_and_then_excludes_the_exact_one() {
    let path = concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../../tests/fixtures/models/iris_mlp.onnx"
    );
    let bytes = std::fs::read(path).unwrap();
    let native = EngineConfig {
        profile: Profile::Native,
        ..EngineConfig::default()
    };
    let model = Model::load(&bytes, &native).unwrap();
    assert_eq!(model.profile(), Profile::Native);
    assert_eq!(profile::active(), Some(Profile::Native));
    let err = Model::load(&bytes, &EngineConfig::default()).unwrap_err();
    assert!(
        matches!(err, EngineError::ProfileConflict { .. }),
        "{err:?}"
    );
}
