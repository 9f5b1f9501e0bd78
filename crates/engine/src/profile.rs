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
use tract_onnx::prelude::*;
use tract_onnx::tract_core::ops::{
    element_wise::ElementWiseOp,
    matmul::optimized::OptMatMul,
    nn::{GeluApproximate, Softmax, SoftmaxKind},
};

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
    /// Every f32 matrix product as one fused multiply-add chain along `k` in increasing order
    /// (tract's FMA-tier or NEON kernels where the CPU has them, Vouch's portable fused kernel
    /// where it doesn't), element-wise functions from one portable definition, and sums in a
    /// fixed order of indices (`vouch-kernels`). Bit-identical across CPUs, thread counts,
    /// runs, and for a row alone or inside a batch; models with operations it can't pin are
    /// refused. Much faster than [`Profile::ExactPortable`] on CPUs with FMA.
    ExactFused,
    /// tract's fastest kernels for this CPU. Repeatable on one machine, but outputs may differ
    /// in the last bits on a CPU with other features: not for receipts others must reproduce.
    Native,
}

impl Profile {
    /// Every profile.
    pub const ALL: [Profile; 3] = [Profile::ExactPortable, Profile::ExactFused, Profile::Native];

    /// The name written in receipts.
    pub fn name(self) -> &'static str {
        match self {
            Profile::ExactPortable => "exact-portable/1",
            Profile::ExactFused => "exact-fused/1",
            Profile::Native => "native/1",
        }
    }

    /// The profile a receipt names, if this engine knows it.
    pub fn from_name(name: &str) -> Option<Profile> {
        Profile::ALL.into_iter().find(|p| p.name() == name)
    }

    /// Whether outputs are promised bit-identical on other machines.
    pub fn is_exact(self) -> bool {
        matches!(self, Profile::ExactPortable | Profile::ExactFused)
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
            "exact-fused" => Some(Profile::ExactFused),
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
        match profile {
            Profile::ExactPortable => {
                // Hide every instruction-set extension of this architecture before tract
                // probes the CPU. The API setting wins over a TRACT_CPU_ISA environment variable.
                let hidden: Vec<String> = extensions()
                    .into_iter()
                    .map(|i| format!("-{}", i.name()))
                    .collect();
                tract_linalg::knobs::TRACT_CPU_ISA.set(Some(hidden.join(",")));
            }
            Profile::ExactFused => {
                vouch_kernels::select_exact_fused();
                let hidden: Vec<String> = extensions()
                    .into_iter()
                    .filter(|i| !fused_isa().contains(i))
                    .map(|i| format!("-{}", i.name()))
                    .collect();
                tract_linalg::knobs::TRACT_CPU_ISA.set(Some(hidden.join(",")));
                // Knobs that change how an operation is computed, set through the API so that
                // the environment can't change them: the direct convolution (its own kernels,
                // another summation order) stays off, as do the separable average pool
                // (reassociates sums), the blocked convolution and AMX's bf16 products.
                for (knob, value) in [
                    ("TRACT_DISABLE_DIRECT_SPATIAL", "true"),
                    ("TRACT_AVGPOOL_SEPARABLE", "false"),
                    ("TRACT_ENABLE_BLOCKED_CONV", "false"),
                    ("TRACT_AMX_BF16", "false"),
                ] {
                    let known = tract_onnx::tract_core::knobs::set_str(knob, value);
                    debug_assert!(known, "tract 0.23.9 declares {knob}");
                }
            }
            Profile::Native => {}
        }
        profile
    });
    if active != profile {
        return Err(EngineError::ProfileConflict {
            active,
            requested: profile,
        });
    }
    match profile {
        Profile::ExactPortable => check_isa(profile, &[]),
        Profile::ExactFused => check_isa(profile, &fused_isa()),
        Profile::Native => Ok(()),
    }
}

/// The profile this process runs, if one has been activated.
pub fn active() -> Option<Profile> {
    ACTIVE.get().copied()
}

/// Every instruction-set extension tract knows for this architecture.
fn extensions() -> Vec<Isa> {
    let arch = Arch::ALL.into_iter().find(Arch::is_native);
    Isa::ALL
        .into_iter()
        .filter(|i| !i.is_arch() && Some(i.arch()) == arch)
        .collect()
}

/// The extensions exact-fused/1 lets tract use on this CPU: the ones whose f32 matrix kernels
/// all compute the fused chain (`vouch_kernels::computes_fused_chain`). On x86_64 that is the
/// AVX2+FMA tier (F16C for one of its kernels' packings), and only where the CPU has both AVX2
/// and FMA: a CPU with AVX but no FMA would otherwise get tract's AVX kernels, which don't
/// fuse. AVX-512 stays hidden: its matrix-vector kernel `avx512_mmm_f32_16x1` splits sums
/// four ways. On aarch64 NEON is the baseline and always on; SVE's kernels fuse too; the
/// f16, SME and Apple AMX kernels are hidden.
///
/// Setting `VOUCH_EXACT_FUSED_FALLBACK=1` hides every extension, as on a CPU without them:
/// the profile then runs Vouch's portable fused kernel. It can only take kernels away, never
/// change the promised bits, which is what the determinism matrix uses it to show.
fn fused_isa() -> Vec<Isa> {
    if std::env::var_os("VOUCH_EXACT_FUSED_FALLBACK").is_some_and(|v| v == "1") {
        return vec![];
    }
    #[cfg(target_arch = "x86_64")]
    {
        if std::arch::is_x86_feature_detected!("avx2") && std::arch::is_x86_feature_detected!("fma")
        {
            return vec![
                Isa::X86_64Avx,
                Isa::X86_64Avx2,
                Isa::X86_64Fma,
                Isa::X86_64F16c,
            ];
        }
        vec![]
    }
    #[cfg(target_arch = "aarch64")]
    {
        vec![Isa::Aarch64DotProd, Isa::Aarch64Sve2]
    }
    #[cfg(not(any(target_arch = "x86_64", target_arch = "aarch64")))]
    {
        vec![]
    }
}

/// Confirms tract sees no extension beyond `allowed`, on an architecture the profile covers.
fn check_isa(profile: Profile, allowed: &[Isa]) -> Result<(), EngineError> {
    let covered = match profile {
        Profile::ExactPortable => cfg!(target_arch = "x86_64"),
        _ => cfg!(any(target_arch = "x86_64", target_arch = "aarch64")),
    };
    if !covered {
        // On aarch64 tract's NEON kernels can't be switched off, so the portable code never runs.
        return Err(EngineError::ProfileUnavailable {
            profile,
            reason: format!("{profile} is not implemented on {}", std::env::consts::ARCH),
        });
    }
    let native = tract_linalg::isa::native();
    let extra: Vec<&str> = native
        .iter()
        .filter(|i| !i.is_arch() && !allowed.contains(i))
        .map(|i| i.name())
        .collect();
    if !extra.is_empty() {
        return Err(EngineError::ProfileUnavailable {
            profile,
            reason: format!(
                "tract already selected kernels using {} before the profile was set",
                extra.join(",")
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

/// Element-wise and binary operations whose f32 arithmetic is the C library's (`sinf`, `powf`,
/// …), which picks its code by CPU at run time (glibc's FMA variants) and differs between C
/// libraries: exact-fused/1 can't promise their bits. Names as tract's optimised graph shows
/// them.
const LIBM_OPS: [&str; 14] = [
    "Cos",
    "Sin",
    "Tan",
    "Acos",
    "Asin",
    "Atan",
    "Cosh",
    "Sinh",
    "Acosh",
    "Asinh",
    "Atanh",
    "Lrn",
    "Multinomial",
    "ClampedSwiGlu",
];

/// Checks a prepared model against what `profile` pins, naming the first operation it can't
/// cover. Only exact-fused/1 has anything to check: it relies on tract choosing among kernels
/// the profile has vetted, so a kernel or an operation outside them is refused rather than
/// run with other arithmetic.
pub(crate) fn check_model(profile: Profile, model: &TypedModel) -> Result<(), EngineError> {
    if profile != Profile::ExactFused {
        return Ok(());
    }
    let refuse = |node: &TypedNode, op: String, reason: &str| EngineError::ProfileUnsupportedOp {
        profile,
        node: node.name.clone(),
        op,
        reason: reason.to_string(),
    };
    for node in model.nodes() {
        let name = node.op().name();
        if let Some(mm) = node.op_as::<OptMatMul>() {
            if let Some(k) = mm.mmm.iter().find(|k| {
                k.internal_type().is_float() && !vouch_kernels::computes_fused_chain(k.name())
            }) {
                return Err(refuse(
                    node,
                    format!("matrix product on kernel {}", k.name()),
                    "the kernel does not compute one fused multiply-add chain per output",
                ));
            }
        } else if LIBM_OPS.contains(&name.as_ref())
            || name.trim_start_matches("Opt").starts_with("Pow")
        {
            return Err(refuse(
                node,
                name.to_string(),
                "its f32 arithmetic comes from the C library, which chooses code by CPU",
            ));
        } else if let Some(softmax) = node.op_as::<Softmax>() {
            if softmax.kind != SoftmaxKind::Softmax {
                return Err(refuse(
                    node,
                    "LogSoftmax".into(),
                    "tract computes it with the C library's exp and log",
                ));
            }
            // tract's row routines (ours in this profile) only run when the axes are the
            // trailing ones; otherwise it walks strided views with the C library's exp.
            let rank = node.outputs[0].fact.rank();
            if !crate::softmax::on_trailing_axes(&softmax.axes, rank) {
                return Err(refuse(
                    node,
                    format!("Softmax over axes {:?} of rank {rank}", softmax.axes),
                    "tract computes a softmax over non-trailing axes with the C library's exp",
                ));
            }
        } else if name == "Fft"
            || name == "STFT"
            || [
                "LateBound(Dft",
                "LateBound(STFT",
                "LateBound(Mel",
                "LateBound(Stft",
            ]
            .iter()
            .any(|p| name.starts_with(p))
        {
            return Err(refuse(
                node,
                name.to_string(),
                "DFT/STFT (rustfft picks its algorithm by CPU) and window or mel tables computed \
                 with the C library's cos and log10",
            ));
        } else if node
            .op_as::<ElementWiseOp>()
            .and_then(|e| e.0.downcast_ref::<GeluApproximate>())
            .is_some_and(|g| g.fast_impl)
        {
            return Err(refuse(
                node,
                "GeluApproximate (fast)".into(),
                "tract computes it with the C library's tanh",
            ));
        }
        if let Some(fact) = node
            .outputs
            .iter()
            .map(|o| &o.fact)
            .find(|f| matches!(f.datum_type, DatumType::F16 | DatumType::F64))
        {
            return Err(refuse(
                node,
                format!("{name} on {:?}", fact.datum_type),
                "only f32 arithmetic is pinned",
            ));
        }
    }
    Ok(())
}
