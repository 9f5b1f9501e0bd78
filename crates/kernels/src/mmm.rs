//! Matrix products as one fused multiply-add chain per output.
//!
//! Every f32 kernel of tract's FMA tier (and the arm64 NEON and SVE ones) computes output
//! `(i, j)` as `s = 0; for p in 0..k { s = a[i][p].mul_add(b[p][j], s) }`: packing reorders rows
//! and columns, never the sum. tract's generic kernel, the only one a CPU without FMA gets,
//! rounds the product and the sum separately and so gives other bits. The kernels here compute
//! the chain in portable Rust (`f32::mul_add` rounds once, in hardware or in software), and
//! join tract's kernel registry with a preference that makes them win over tract's generic
//! kernels once [`crate::select_exact_fused`] is called, and lose to everything otherwise.
//! tract still prefers any kernel written for the CPU's architecture, so these run only where
//! the profile left tract none (a CPU without FMA).

use std::sync::LazyLock;

use tract_linalg::isa::NEVER_PREFERRED;
use tract_linalg::mmm::{DynKernel, FusedKerSpec, FusedSpec, OutputStoreKer};
use tract_linalg::mmm_routines::MmmRoutine;
use tract_linalg::pack::Packing;

use crate::{OVERRIDE_BOOST, exact_fused};

/// Name prefix of the kernels this module registers.
pub const KERNEL_PREFIX: &str = "vouch_fused_mmm_f32_";

/// Whether the matrix-product kernel called `name` computes each f32 output as one fused
/// multiply-add chain along `k` in increasing order: the kernels the exact-fused profile
/// accepts. Checked against a plain `mul_add` loop by the engine's tests on every kernel family
/// they can reach; tract's `avx512_mmm_f32_16x1` (four partial sums) and its generic and
/// AVX-without-FMA kernels (no fusion) are the known exceptions, and are not named.
pub fn computes_fused_chain(name: &str) -> bool {
    const FUSED: [&str; 5] = [
        "fma_mmm_f32_",
        "arm64simd_mmm_f32_",
        "sve_mmm_f32_",
        "sve_mmv_f32_",
        KERNEL_PREFIX,
    ];
    FUSED.iter().any(|prefix| name.starts_with(prefix))
}

fn preference() -> isize {
    if exact_fused() {
        OVERRIDE_BOOST
    } else {
        NEVER_PREFERRED
    }
}

/// The fused specs this kernel implements: everything f32 needs, none of the integer
/// requantisation steps.
fn can_fuse(spec: &FusedSpec) -> bool {
    !matches!(
        spec,
        FusedSpec::AddRowColProducts(..)
            | FusedSpec::QScale(..)
            | FusedSpec::RoundingShiftRight(..)
            | FusedSpec::ShiftLeft(..)
    )
}

fn build<const MR: usize, const NR: usize>() -> DynKernel<MR, NR, f32> {
    DynKernel::<MR, NR, f32>::new(
        &format!("{KERNEL_PREFIX}{MR}x{NR}"),
        fused_kernel::<MR, NR>,
        f32::packing(MR),
        f32::packing(NR),
    )
    .with_boost(preference)
    .with_can_fuse(can_fuse)
}

static FUSED_8X8: LazyLock<DynKernel<8, 8, f32>> = LazyLock::new(build::<8, 8>);
static FUSED_8X1: LazyLock<DynKernel<8, 1, f32>> = LazyLock::new(build::<8, 1>);

inventory::submit! { MmmRoutine { make: || FUSED_8X8.mmm() } }
inventory::submit! { MmmRoutine { make: || FUSED_8X1.mmm() } }

/// Reads an `MR`×`NR` tile's element as `T` from a store descriptor.
///
/// # Safety
/// `tile` must describe a readable `MR`×`NR` tile of `T`.
unsafe fn at<T>(tile: &OutputStoreKer, i: usize, j: usize) -> *mut T {
    unsafe {
        tile.ptr
            .offset(tile.row_byte_stride * i as isize + tile.col_byte_stride * j as isize)
            as *mut T
    }
}

/// One tile of a matrix product and the operations fused after it, as tract's kernels run
/// them: the spec list is read in order until `Done`. Returns non-zero for a spec this kernel
/// does not implement (integer requantisation, non-f32 operands), which tract reports as an
/// error; `can_fuse` keeps tract from asking for those.
///
/// # Safety
/// The pointers in `spec` must be valid as tract's kernel contract describes (packed panels of
/// `k` steps of `MR` and `NR` values, tiles of `MR`×`NR` f32, per-row and per-column vectors).
unsafe fn fused_kernel<const MR: usize, const NR: usize>(spec: &[FusedKerSpec<f32>]) -> isize {
    let mut ab = [[0f32; NR]; MR];
    let each = |ab: &mut [[f32; NR]; MR], f: &dyn Fn(usize, usize, f32) -> f32| {
        for (i, row) in ab.iter_mut().enumerate() {
            for (j, v) in row.iter_mut().enumerate() {
                *v = f(i, j, *v);
            }
        }
    };
    // tract's generic kernel's conventions for the binary ops: `min`/`max` keep the
    // accumulator unless the other operand is strictly smaller/larger.
    let min = |m: f32, v: f32| if m < v { m } else { v };
    let max = |m: f32, v: f32| if m > v { m } else { v };
    unsafe {
        for op in spec {
            match *op {
                FusedKerSpec::Done => break,
                FusedKerSpec::Clear => ab = [[0f32; NR]; MR],
                FusedKerSpec::LoadTile(col_major, _) => {
                    each(&mut ab, &|i, j, _| *col_major.add(j * MR + i))
                }
                FusedKerSpec::ScalarMin(m) => each(&mut ab, &|_, _, v| min(m, v)),
                FusedKerSpec::ScalarMax(m) => each(&mut ab, &|_, _, v| max(m, v)),
                FusedKerSpec::ScalarAdd(m) => each(&mut ab, &|_, _, v| m + v),
                FusedKerSpec::ScalarMul(m) => each(&mut ab, &|_, _, v| m * v),
                FusedKerSpec::ScalarSub(m) => each(&mut ab, &|_, _, v| m - v),
                FusedKerSpec::ScalarSubF(m) => each(&mut ab, &|_, _, v| v - m),
                FusedKerSpec::LeakyRelu(alpha) => {
                    each(&mut ab, &|_, _, v| if v > 0.0 { v } else { alpha * v })
                }
                FusedKerSpec::PerRowMin(p) => each(&mut ab, &|i, _, v| min(*p.add(i), v)),
                FusedKerSpec::PerRowMax(p) => each(&mut ab, &|i, _, v| max(*p.add(i), v)),
                FusedKerSpec::PerRowAdd(p) => each(&mut ab, &|i, _, v| *p.add(i) + v),
                FusedKerSpec::PerRowMul(p) => each(&mut ab, &|i, _, v| *p.add(i) * v),
                FusedKerSpec::PerRowSub(p) => each(&mut ab, &|i, _, v| *p.add(i) - v),
                FusedKerSpec::PerRowSubF(p) => each(&mut ab, &|i, _, v| v - *p.add(i)),
                FusedKerSpec::PerColMin(p) => each(&mut ab, &|_, j, v| min(*p.add(j), v)),
                FusedKerSpec::PerColMax(p) => each(&mut ab, &|_, j, v| max(*p.add(j), v)),
                FusedKerSpec::PerColAdd(p) => each(&mut ab, &|_, j, v| *p.add(j) + v),
                FusedKerSpec::PerColMul(p) => each(&mut ab, &|_, j, v| *p.add(j) * v),
                FusedKerSpec::PerColSub(p) => each(&mut ab, &|_, j, v| *p.add(j) - v),
                FusedKerSpec::PerColSubF(p) => each(&mut ab, &|_, j, v| v - *p.add(j)),
                FusedKerSpec::AddUnicast(other) if other.item_size == 4 => {
                    each(&mut ab, &|i, j, v| v + *at::<f32>(&other, i, j))
                }
                FusedKerSpec::AddMatMul {
                    k,
                    pa,
                    pb,
                    packing: 0,
                } => {
                    let a = pa as *const f32;
                    let b = pb as *const f32;
                    for p in 0..k {
                        let a = std::slice::from_raw_parts(a.add(MR * p), MR);
                        let b = std::slice::from_raw_parts(b.add(NR * p), NR);
                        for (acc, a) in ab.iter_mut().zip(a) {
                            for (acc, b) in acc.iter_mut().zip(b) {
                                *acc = a.mul_add(*b, *acc);
                            }
                        }
                    }
                }
                FusedKerSpec::Store(tile) if tile.item_size == 4 => {
                    for (i, row) in ab.iter().enumerate() {
                        for (j, v) in row.iter().enumerate() {
                            *at::<f32>(&tile, i, j) = *v;
                        }
                    }
                }
                _ => return 1,
            }
        }
    }
    0
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_registry_names_our_kernels_as_fused() {
        assert!(computes_fused_chain(&FUSED_8X8.name));
        assert!(computes_fused_chain(&FUSED_8X1.name));
        assert!(computes_fused_chain("fma_mmm_f32_16x6"));
        assert!(!computes_fused_chain("avx512_mmm_f32_16x1"));
        assert!(!computes_fused_chain("generic_f32_4x4"));
        assert!(!computes_fused_chain("avx_mmm_f32_8x8"));
    }

    #[test]
    fn a_tile_is_the_fused_chain_then_the_fused_ops() {
        const K: usize = 37;
        let a: Vec<f32> = (0..K * 8)
            .map(|x| ((x * 7919) % 1013) as f32 / 101.3 - 5.0)
            .collect();
        let b: Vec<f32> = (0..K)
            .map(|x| ((x * 104729) % 997) as f32 / 99.7 - 5.0)
            .collect();
        let bias: Vec<f32> = (0..8).map(|i| i as f32 * 0.25 - 1.0).collect();
        let mut c = [0f32; 8];
        let store = OutputStoreKer {
            ptr: c.as_mut_ptr() as *mut u8,
            row_byte_stride: 4,
            col_byte_stride: 32,
            item_size: 4,
        };
        let spec = [
            FusedKerSpec::Clear,
            FusedKerSpec::AddMatMul {
                k: K,
                pa: a.as_ptr() as *const u8,
                pb: b.as_ptr() as *const u8,
                packing: 0,
            },
            FusedKerSpec::PerRowAdd(bias.as_ptr()),
            FusedKerSpec::ScalarMax(0.0),
            FusedKerSpec::Store(store),
            FusedKerSpec::Done,
        ];
        assert_eq!(unsafe { fused_kernel::<8, 1>(&spec) }, 0);
        for i in 0..8 {
            let mut s = 0f32;
            for p in 0..K {
                s = a[p * 8 + i].mul_add(b[p], s);
            }
            let expected = (s + bias[i]).max(0.0);
            assert_eq!(c[i].to_bits(), expected.to_bits(), "row {i}");
        }
    }
}
