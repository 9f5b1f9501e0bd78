//! Vouch's own kernels for tract: the arithmetic behind the `exact-fused/1` determinism profile.
//!
//! tract-linalg collects its kernels in registries (`inventory`): matrix-product kernels with
//! their dispatch tiers, and one winning routine per element-wise function and reduction. This
//! crate adds entries to those registries through their public types, so that once
//! [`select_exact_fused`] has been called the process computes with definitions that give the
//! same bits on every CPU:
//!
//! - **Matrix products**: tract's FMA-tier kernels compute every output as one fused
//!   multiply-add chain along `k` in increasing order. On a CPU without FMA, [`mmm`] supplies a
//!   portable kernel computing that same chain with `f32::mul_add` (correctly rounded in
//!   hardware or software alike), in place of tract's generic kernel, which does not fuse.
//!   [`computes_fused_chain`] names the kernels known to compute the chain.
//! - **Element-wise functions and reductions** ([`routines`]): the portable definition of each
//!   function (tract's generic code, never a CPU-specific polynomial), and sums and softmax
//!   sums taken in index order, so a row's result does not depend on where it sits in memory.
//!
//! Without [`select_exact_fused`] every entry defers to what tract would have chosen, so other
//! profiles (`native/1`, `exact-portable/1`) compute exactly as before. What this crate does not
//! own: which instruction sets tract may use (the engine's profile sets tract's `TRACT_CPU_ISA`
//! knob) and checking a prepared model (the engine refuses what the profile does not cover).

pub mod mmm;
pub mod routines;

use std::sync::atomic::{AtomicBool, Ordering};

static EXACT_FUSED: AtomicBool = AtomicBool::new(false);

/// Switches this process to the exact-fused definitions. Call it before tract resolves its
/// kernels (the first model load): tract keeps what it resolved for the life of the process.
pub fn select_exact_fused() {
    EXACT_FUSED.store(true, Ordering::SeqCst);
}

/// Whether [`select_exact_fused`] has been called.
pub fn exact_fused() -> bool {
    EXACT_FUSED.load(Ordering::Relaxed)
}

pub use mmm::computes_fused_chain;

/// The preference our registry entries claim when they win: far above any level or boost
/// tract's own entries use, and a value nothing of tract's uses, so our entries can be told
/// apart from tract's when we ask what tract would have chosen.
pub(crate) const OVERRIDE_BOOST: isize = 1 << 40;
