//! One module per subcommand.

pub mod demo;
pub mod hub;
pub mod infer;
pub mod inspect;
pub mod keygen;
pub mod log;
pub mod node;
pub mod receipt;
pub mod remote;
pub mod verify;
pub mod witness;

use std::path::Path;

use vouch_engine::{EngineConfig, Model, Profile};
use vouch_types::Limits;

use crate::{
    EngineArgs,
    exit::{CliError, Exit, WithExit, engine},
    inputs::read_bounded,
};

/// The engine configuration the flags ask for.
pub fn engine_config(a: &EngineArgs) -> Result<EngineConfig, CliError> {
    let profile: Profile = a.profile.parse().exit(Exit::Usage)?;
    Ok(EngineConfig {
        profile,
        threads: a.threads.max(1),
        limits: Limits {
            max_bytes: a.max_tensor_bytes,
            ..Limits::DEFAULT
        },
        max_model_bytes: a.max_model_bytes,
    })
}

/// Reads and prepares a model file.
pub fn load_model(path: &Path, config: &EngineConfig) -> Result<(Vec<u8>, Model), CliError> {
    let bytes = read_bounded(path, config.max_model_bytes as u64)?;
    let model = engine(Model::load(&bytes, config), || {
        format!("loading {}", path.display())
    })?;
    Ok((bytes, model))
}

/// The input schema of a prepared model.
pub fn schema(model: &Model) -> crate::inputs::InputSchema<'_> {
    crate::inputs::InputSchema {
        inputs: model
            .info()
            .inputs
            .iter()
            .map(|i| (i.name.as_str(), i.dtype))
            .collect(),
        limits: *model.limits(),
    }
}

/// Current Unix time in seconds.
pub fn unix_now() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0)
}
