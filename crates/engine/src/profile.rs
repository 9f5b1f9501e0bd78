//! Determinism profiles: which kernels the engine may use, and what that guarantees.
//!
//! tract picks its matmul and element-wise kernels from the CPU's features, and the kernels
//! differ in the last bits (fused vs separate multiply-add, different polynomial code). A
//! profile fixes that choice for the whole process; receipts name the profile that ran.
//!
//! The kernel set is process-global in tract (probed once, then frozen), so a process runs one
//! profile: the first model load activates it, and asking for another one later is an error.

use std::sync::OnceLock;

use tract_linalg::isa::{Arch, Isa};

use crate::EngineError;

/// The engine's name and version as receipts state it. The tract version is pinned exactly in
/// Cargo.toml; a test checks Cargo.lock agrees with this string.
pub const ENGINE: &str = concat!(
    "vouch-engine/",
    env!("CARGO_PKG_VERSION"),
    " tract-onnx/0.23.9"
);

/// A determinism profile.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Profile {
    /// tract's portable kernels only, on x86_64: every SIMD feature is hidden from tract's
    /// kernel selection, so the same code runs whatever the CPU offers. Bit-identical across
    /// x86_64 CPUs, thread counts and runs, for inputs of the same shapes (a row can round
    /// differently alone than inside a batch: tract groups reductions by memory alignment).
    /// Slower than [`Profile::Native`].
    ExactPortable,
    /// tract's fastest kernels for this CPU. Repeatable on one machine, but outputs may differ
    /// in the last bits on a CPU with other features: not for receipts others must reproduce.
    Native,
}

impl Profile {
    /// Every profile.
    pub const ALL: [Profile; 2] = [Profile::ExactPortable, Profile::Native];

    /// The name written in receipts.
    pub fn name(self) -> &'static str {
        match self {
            Profile::ExactPortable => "exact-portable/1",
            Profile::Native => "native/1",
        }
    }

    /// The profile a receipt names, if this engine knows it.
    pub fn from_name(name: &str) -> Option<Profile> {
        Profile::ALL.into_iter().find(|p| p.name() == name)
    }

    /// Whether outputs are promised bit-identical on other machines.
    pub fn is_exact(self) -> bool {
        matches!(self, Profile::ExactPortable)
    }
}

impl std::fmt::Display for Profile {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.name())
    }
}

impl std::str::FromStr for Profile {
    type Err = EngineError;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let alias = match s {
            "exact" | "exact-portable" => Some(Profile::ExactPortable),
            "native" => Some(Profile::Native),
            _ => None,
        };
        alias
            .or_else(|| Profile::from_name(s))
            .ok_or_else(|| EngineError::UnknownProfile(s.to_string()))
    }
}

static ACTIVE: OnceLock<Profile> = OnceLock::new();

/// Activates `profile` for this process (idempotent), or explains why it can't be.
pub fn activate(profile: Profile) -> Result<(), EngineError> {
    let active = *ACTIVE.get_or_init(|| {
        if profile == Profile::ExactPortable {
            // Hide every instruction-set extension of this architecture before tract probes the
            // CPU. The API setting wins over a TRACT_CPU_ISA environment variable.
            let arch = Arch::ALL.into_iter().find(Arch::is_native);
            let spec: Vec<String> = Isa::ALL
                .iter()
                .filter(|i| !i.is_arch() && Some(i.arch()) == arch)
                .map(|i| format!("-{}", i.name()))
                .collect();
            tract_linalg::knobs::TRACT_CPU_ISA.set(Some(spec.join(",")));
        }
        profile
    });
    if active != profile {
        return Err(EngineError::ProfileConflict {
            active,
            requested: profile,
        });
    }
    if profile == Profile::ExactPortable {
        check_portable()?;
    }
    Ok(())
}

/// The profile this process runs, if one has been activated.
pub fn active() -> Option<Profile> {
    ACTIVE.get().copied()
}

/// Confirms tract sees no extension beyond the base architecture.
fn check_portable() -> Result<(), EngineError> {
    if !cfg!(target_arch = "x86_64") {
        // On aarch64 tract's NEON kernels can't be switched off, so the portable code never runs.
        return Err(EngineError::ProfileUnavailable {
            profile: Profile::ExactPortable,
            reason: format!(
                "{} runs tract's portable kernels only on x86_64; this is {}",
                Profile::ExactPortable,
                std::env::consts::ARCH
            ),
        });
    }
    let native = tract_linalg::isa::native();
    let extensions: Vec<&str> = native
        .iter()
        .filter(|i| !i.is_arch())
        .map(|i| i.name())
        .collect();
    if !extensions.is_empty() {
        return Err(EngineError::ProfileUnavailable {
            profile: Profile::ExactPortable,
            reason: format!(
                "tract already selected kernels using {} before the profile was set",
                extensions.join(",")
            ),
        });
    }
    Ok(())
}

/// The instruction sets tract's kernels may use in this process, e.g. `x86_64` or
/// `x86_64+avx2+fma+…`.
pub fn kernel_isa() -> String {
    let set = tract_linalg::isa::native();
    set.iter().map(|i| i.name()).collect::<Vec<_>>().join("+")
}
