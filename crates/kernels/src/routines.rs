//! Element-wise functions and reductions with one definition on every CPU.
//!
//! tract resolves each function (sigmoid, tanh, exp, erf, softmax sums, …) to one routine per
//! process: a routine written for the CPU's architecture wins over portable Rust, then the
//! highest instruction-set level. The SIMD routines use other polynomials than the portable
//! ones, so the bits depend on the CPU; and every reduction, portable ones included, is cut by
//! memory alignment (`element_wise_helper`), so a row summed alone and the same row inside a
//! batch can round differently.
//!
//! Each entry here is registered for this architecture with a preference no tract routine
//! reaches, so tract resolves the function to it. Under the exact-fused profile it computes:
//! - element-wise functions: tract's portable (generic) routine, the same code on every CPU;
//! - `ReduceSum` and the softmax sum: our own sums in a fixed order of indices (eight running
//!   sums by index modulo eight, combined pairwise, then the tail in order), whatever the
//!   slice's address;
//! - `ReduceMax`/`ReduceMin`, `RmsNorm`: tract's portable routine.
//!
//! Under any other profile it hands the work to the routine tract would have chosen without
//! it, so those profiles compute exactly as before.

use std::sync::OnceLock;

use tract_data::internal::{DatumType, TractResult};
use tract_linalg::element_wise::ElementWise;
use tract_linalg::isa::{Arch, IsaReq, LEVEL_BOOST};
use tract_linalg::reduce::{MapReduce, Reduce};
use tract_linalg::routines::{Func, Routine, RoutineFactory, declared};

use crate::{OVERRIDE_BOOST, exact_fused};

/// The architecture our entries are registered for: they must be "written for this
/// architecture" to rank above tract's own.
const ARCH: Option<Arch> = if cfg!(target_arch = "x86_64") {
    Some(Arch::X86_64)
} else if cfg!(target_arch = "aarch64") {
    Some(Arch::Aarch64)
} else {
    None
};

/// The f32 routine tract itself would pick for `func` (`portable_only`: among its portable
/// ones), leaving ours out. tract's own ranking: an architecture routine first, then level
/// and boost, then the name.
fn tract_routine(func: Func, portable_only: bool) -> &'static Routine {
    let isa = tract_linalg::isa::native();
    declared()
        .filter(|r| r.boost != OVERRIDE_BOOST && r.func == func && r.dt() == DatumType::F32)
        .filter(|r| {
            if portable_only {
                r.arch.is_none()
            } else {
                r.runnable_on(&isa)
            }
        })
        .max_by_key(|r| {
            let preference = r.isa.level() as isize * LEVEL_BOOST + r.boost;
            (r.arch.is_some(), preference, r.name())
        })
        .unwrap_or_else(|| {
            panic!(
                "tract-linalg 0.23.9 declares a portable f32 {} routine",
                func.name()
            )
        })
}

/// The routine our entry for `func` stands for in this process, resolved once per kind.
fn delegate(func: Func, cache: &'static [OnceLock<&'static Routine>; 2]) -> &'static Routine {
    let portable = exact_fused();
    cache[portable as usize].get_or_init(|| tract_routine(func, portable))
}

/// Like [`delegate`], for functions tract has no portable routine for: the routine tract
/// itself would run on this CPU, if any (under the profile: none, the caller's own walk runs).
#[cfg_attr(not(target_arch = "aarch64"), allow(dead_code))]
fn delegate_optional(
    func: Func,
    cache: &'static [OnceLock<Option<&'static Routine>>; 2],
) -> Option<&'static Routine> {
    let portable = exact_fused();
    *cache[portable as usize].get_or_init(|| {
        if portable {
            return None;
        }
        let isa = tract_linalg::isa::native();
        declared()
            .filter(|r| r.boost != OVERRIDE_BOOST && r.func == func && r.dt() == DatumType::F32)
            .filter(|r| r.runnable_on(&isa))
            .max_by_key(|r| {
                let preference = r.isa.level() as isize * LEVEL_BOOST + r.boost;
                (r.arch.is_some(), preference, r.name())
            })
    })
}

/// Declares our entry for a plain or scalar-parameter element-wise function.
macro_rules! element_wise {
    ($($func:ident: $arm:ident => $name:ident),* $(,)?) => {$(
        fn $name() -> Box<dyn ElementWise<f32, element_wise!(@params $arm)>> {
            static CACHE: [OnceLock<&'static Routine>; 2] = [OnceLock::new(), OnceLock::new()];
            match delegate(Func::$func, &CACHE).factory {
                RoutineFactory::$arm(make) => make(),
                _ => unreachable!(concat!("tract's ", stringify!($func), " is a ", stringify!($arm))),
            }
        }
        inventory::submit! {
            Routine {
                func: Func::$func,
                arch: ARCH,
                isa: IsaReq::ANY,
                boost: OVERRIDE_BOOST,
                round_trip: false,
                factory: RoutineFactory::$arm($name),
            }
        }
    )*};
    (@params F32) => { () };
    (@params F32Param) => { f32 };
}

element_wise! {
    Sigmoid: F32 => sigmoid,
    Tanh: F32 => tanh,
    Silu: F32 => silu,
    Gelu: F32 => gelu,
    Erf: F32 => erf,
    Ln: F32 => ln,
    Exp: F32 => exp,
    Hardswish: F32 => hardswish,
    LeakyRelu: F32Param => leaky_relu,
    MulByScalar: F32Param => mul_by_scalar,
}

/// Declares our entry for a reduction that is tract's portable one under the profile.
macro_rules! portable_reduce {
    ($($func:ident => $name:ident),* $(,)?) => {$(
        fn $name() -> Box<dyn Reduce<f32>> {
            static CACHE: [OnceLock<&'static Routine>; 2] = [OnceLock::new(), OnceLock::new()];
            match delegate(Func::$func, &CACHE).factory {
                RoutineFactory::F32Reduce(make) => make(),
                _ => unreachable!(concat!("tract's ", stringify!($func), " is a reduction")),
            }
        }
        inventory::submit! {
            Routine {
                func: Func::$func,
                arch: ARCH,
                isa: IsaReq::ANY,
                boost: OVERRIDE_BOOST,
                round_trip: false,
                factory: RoutineFactory::F32Reduce($name),
            }
        }
    )*};
}

// Max and min are exact whatever the order; they are pinned to one definition anyway, so NaN
// and signed-zero handling is the same everywhere too.
portable_reduce! {
    ReduceMax => reduce_max,
    ReduceMin => reduce_min,
}

/// The sum of `xs` in a fixed order of indices: eight running sums (index modulo eight), added
/// as `((s0+s1)+(s2+s3))+((s4+s5)+(s6+s7))`, then the remaining `len % 8` values in order.
/// Depends on the values and their order only, never on the slice's address; the eight
/// independent sums let the compiler use vector adds.
pub fn ordered_sum(xs: &[f32]) -> f32 {
    let mut lanes = [0f32; 8];
    let mut chunks = xs.chunks_exact(8);
    for chunk in &mut chunks {
        for (lane, x) in lanes.iter_mut().zip(chunk) {
            *lane += *x;
        }
    }
    let [s0, s1, s2, s3, s4, s5, s6, s7] = lanes;
    let mut sum = ((s0 + s1) + (s2 + s3)) + ((s4 + s5) + (s6 + s7));
    for x in chunks.remainder() {
        sum += *x;
    }
    sum
}

#[derive(Clone, Debug)]
struct OrderedSum;

impl Reduce<f32> for OrderedSum {
    fn name(&self) -> &'static str {
        "vouch_ordered_sum_f32"
    }
    fn run_with_params(&self, xs: &[f32], _: ()) -> TractResult<f32> {
        Ok(ordered_sum(xs))
    }
}

fn reduce_sum() -> Box<dyn Reduce<f32>> {
    static CACHE: [OnceLock<&'static Routine>; 2] = [OnceLock::new(), OnceLock::new()];
    if exact_fused() {
        return Box::new(OrderedSum);
    }
    match delegate(Func::ReduceSum, &CACHE).factory {
        RoutineFactory::F32Reduce(make) => make(),
        _ => unreachable!("tract's ReduceSum is a reduction"),
    }
}

inventory::submit! {
    Routine {
        func: Func::ReduceSum,
        arch: ARCH,
        isa: IsaReq::ANY,
        boost: OVERRIDE_BOOST,
        round_trip: false,
        factory: RoutineFactory::F32Reduce(reduce_sum),
    }
}

/// Softmax's middle step for one row: `x - max` through the portable exp, in place, and the
/// [`ordered_sum`] of the results.
#[derive(Clone, Debug)]
struct OrderedExpSum {
    exp: Box<dyn ElementWise<f32>>,
}

impl MapReduce<f32, f32> for OrderedExpSum {
    fn name(&self) -> &'static str {
        "vouch_ordered_exp_sum_f32"
    }
    fn run_with_params(&self, xs: &mut [f32], max: f32) -> TractResult<f32> {
        xs.iter_mut().for_each(|x| *x -= max);
        self.exp.run(xs)?;
        Ok(ordered_sum(xs))
    }
}

fn softmax2() -> Box<dyn MapReduce<f32, f32>> {
    static CACHE: [OnceLock<&'static Routine>; 2] = [OnceLock::new(), OnceLock::new()];
    if exact_fused() {
        return Box::new(OrderedExpSum { exp: exp() });
    }
    match delegate(Func::Softmax2, &CACHE).factory {
        RoutineFactory::F32MapReduce(make) => make(),
        _ => unreachable!("tract's Softmax2 is a map-reduction"),
    }
}

inventory::submit! {
    Routine {
        func: Func::Softmax2,
        arch: ARCH,
        isa: IsaReq::ANY,
        boost: OVERRIDE_BOOST,
        round_trip: false,
        factory: RoutineFactory::F32MapReduce(softmax2),
    }
}

fn rms_norm(xs: &mut [f32], epsilon: f32) {
    static CACHE: [OnceLock<&'static Routine>; 2] = [OnceLock::new(), OnceLock::new()];
    match delegate(Func::RmsNorm, &CACHE).factory {
        RoutineFactory::RmsNormF32 { run, .. } => run(xs, epsilon),
        _ => unreachable!("tract's RmsNorm is a plain function"),
    }
}

inventory::submit! {
    Routine {
        func: Func::RmsNorm,
        arch: ARCH,
        isa: IsaReq::ANY,
        boost: OVERRIDE_BOOST,
        round_trip: false,
        factory: RoutineFactory::RmsNormF32 { name: "vouch_rms_norm_f32", run: rms_norm },
    }
}

/// arm64 has a whole-buffer softmax kernel (x86_64 has none, and there an entry would turn the
/// softmax op onto a path it does not take today). Under the profile it runs the per-row
/// steps above, which is what the softmax op does where no such kernel exists.
#[cfg(target_arch = "aarch64")]
mod softmax_rows {
    use super::*;

    fn softmax_rows(data: &mut [f32], row_len: usize) {
        static CACHE: [OnceLock<&'static Routine>; 2] = [OnceLock::new(), OnceLock::new()];
        if !exact_fused() {
            match delegate(Func::SoftmaxRows, &CACHE).factory {
                RoutineFactory::SoftmaxRowsF32 { run, .. } => return run(data, row_len),
                _ => unreachable!("tract's SoftmaxRows is a plain function"),
            }
        }
        let (max, exp_sum, scale) = (reduce_max(), softmax2(), mul_by_scalar());
        for row in data.chunks_mut(row_len) {
            let mut run = || -> TractResult<()> {
                let m = max.run(row)?;
                let sum = exp_sum.run_with_params(row, m)?;
                scale.run_with_params(row, sum.recip())
            };
            run().expect("portable softmax steps do not fail on f32 rows");
        }
    }

    inventory::submit! {
        Routine {
            func: Func::SoftmaxRows,
            arch: ARCH,
            isa: IsaReq::ANY,
            boost: OVERRIDE_BOOST,
            round_trip: false,
            factory: RoutineFactory::SoftmaxRowsF32 { name: "vouch_softmax_rows_f32", run: softmax_rows },
        }
    }
}

/// Depthwise convolutions as the unfused walk, the arithmetic tract's x86_64 kernel and its
/// generic loops compute: per output point, `bias`, then `+ tap * x` for every tap in order,
/// each a separately rounded multiply and add. tract's aarch64 NEON kernels fuse the two
/// (`vfmaq`) in their vector lanes but not in their tails, so they give other bits, and which
/// channels get which depends on the channel count. Under the profile aarch64 runs this walk.
pub mod depthwise {
    /// `len` output points along a contiguous output axis: point `i` is `bias` plus every
    /// `taps[t] * input[offsets[t] + i * in_stride]`, unfused, taps in order (tract's
    /// `DepthwiseWF32` contract).
    ///
    /// # Safety
    /// As tract's: every `input.offset(offsets[t] + i * in_stride)` readable for `i < len`,
    /// `len` points writable at `output`.
    pub unsafe fn walk_w(
        input: *const f32,
        output: *mut f32,
        taps: &[f32],
        offsets: &[isize],
        bias: f32,
        len: usize,
        in_stride: isize,
    ) {
        // Taps outer, points inner: each point still sees its taps in order, and the inner
        // loop is a plain multiply-then-add the compiler vectorises without contracting.
        let out = unsafe { std::slice::from_raw_parts_mut(output, len) };
        out.fill(bias);
        for (tap, offset) in taps.iter().zip(offsets) {
            for (i, o) in out.iter_mut().enumerate() {
                *o += tap * unsafe { *input.offset(offset + i as isize * in_stride) };
            }
        }
    }

    /// `len` output positions of `channels` contiguous channels: point `i`, channel `c`, is
    /// `bias[c]` plus every `kernel[tap_indices[t] * k_stride + c] * input[i * in_stride +
    /// offsets[t] + c]`, unfused, taps in order (tract's `DepthwiseCF32` contract).
    ///
    /// # Safety
    /// As tract's `DepthwiseCF32`.
    #[allow(clippy::too_many_arguments)]
    pub unsafe fn walk_c(
        input: *const f32,
        output: *mut f32,
        kernel: *const f32,
        tap_indices: &[usize],
        offsets: &[isize],
        bias: *const f32,
        channels: usize,
        k_stride: usize,
        len: usize,
        in_stride: isize,
        out_stride: isize,
    ) {
        unsafe {
            let bias = std::slice::from_raw_parts(bias, channels);
            for i in 0..len as isize {
                let x0 = input.offset(i * in_stride);
                let out = std::slice::from_raw_parts_mut(output.offset(i * out_stride), channels);
                out.copy_from_slice(bias);
                for (&kix, &off) in tap_indices.iter().zip(offsets) {
                    let k = std::slice::from_raw_parts(kernel.add(kix * k_stride), channels);
                    let x = std::slice::from_raw_parts(x0.offset(off), channels);
                    for c in 0..channels {
                        out[c] += k[c] * x[c];
                    }
                }
            }
        }
    }

    #[cfg(target_arch = "aarch64")]
    mod entries {
        use super::super::*;
        use super::{walk_c, walk_w};

        #[allow(clippy::too_many_arguments)]
        unsafe fn depthwise_w(
            input: *const f32,
            output: *mut f32,
            taps: &[f32],
            offsets: &[isize],
            bias: f32,
            len: usize,
            in_stride: isize,
        ) {
            static CACHE: [OnceLock<Option<&'static Routine>>; 2] =
                [OnceLock::new(), OnceLock::new()];
            if let Some(RoutineFactory::DepthwiseWF32 { run, .. }) =
                delegate_optional(Func::DepthwiseW, &CACHE).map(|r| &r.factory)
            {
                return unsafe { run(input, output, taps, offsets, bias, len, in_stride) };
            }
            unsafe { walk_w(input, output, taps, offsets, bias, len, in_stride) }
        }

        #[allow(clippy::too_many_arguments)]
        unsafe fn depthwise_c(
            input: *const f32,
            output: *mut f32,
            kernel: *const f32,
            tap_indices: &[usize],
            offsets: &[isize],
            bias: *const f32,
            channels: usize,
            k_stride: usize,
            len: usize,
            in_stride: isize,
            out_stride: isize,
        ) {
            static CACHE: [OnceLock<Option<&'static Routine>>; 2] =
                [OnceLock::new(), OnceLock::new()];
            let args = (
                input,
                output,
                kernel,
                tap_indices,
                offsets,
                bias,
                channels,
                k_stride,
            );
            if let Some(RoutineFactory::DepthwiseCF32 { run, .. }) =
                delegate_optional(Func::DepthwiseC, &CACHE).map(|r| &r.factory)
            {
                let (i, o, k, t, f, b, c, ks) = args;
                return unsafe { run(i, o, k, t, f, b, c, ks, len, in_stride, out_stride) };
            }
            let (i, o, k, t, f, b, c, ks) = args;
            unsafe { walk_c(i, o, k, t, f, b, c, ks, len, in_stride, out_stride) }
        }

        inventory::submit! {
            Routine {
                func: Func::DepthwiseW,
                arch: ARCH,
                isa: IsaReq::ANY,
                boost: OVERRIDE_BOOST,
                round_trip: false,
                factory: RoutineFactory::DepthwiseWF32 { name: "vouch_depthwise_w_f32", run: depthwise_w },
            }
        }

        inventory::submit! {
            Routine {
                func: Func::DepthwiseC,
                arch: ARCH,
                isa: IsaReq::ANY,
                boost: OVERRIDE_BOOST,
                round_trip: false,
                factory: RoutineFactory::DepthwiseCF32 { name: "vouch_depthwise_c_f32", run: depthwise_c },
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tract_has_a_portable_routine_for_every_function_we_stand_in_for() {
        for func in [
            Func::Sigmoid,
            Func::Tanh,
            Func::Silu,
            Func::Gelu,
            Func::Erf,
            Func::Ln,
            Func::Exp,
            Func::Hardswish,
            Func::LeakyRelu,
            Func::MulByScalar,
            Func::ReduceMax,
            Func::ReduceMin,
            Func::ReduceSum,
            Func::Softmax2,
            Func::RmsNorm,
        ] {
            assert!(tract_routine(func, true).arch.is_none(), "{}", func.name());
            let ours = tract_linalg::routines::best_for(
                func,
                DatumType::F32,
                &tract_linalg::isa::native(),
            )
            .expect("a routine");
            assert_eq!(ours.boost, OVERRIDE_BOOST, "{} is not ours", func.name());
        }
    }

    #[test]
    fn the_ordered_sum_ignores_where_the_row_sits() {
        let values: Vec<f32> = (0..1000)
            .map(|i| ((i * 7919) % 1009) as f32 * 1e-3 + 1e3)
            .collect();
        let row = &values[..333];
        let expected = ordered_sum(row);
        for offset in 1..9 {
            let mut shifted = vec![0f32; offset];
            shifted.extend_from_slice(row);
            assert_eq!(
                ordered_sum(&shifted[offset..]).to_bits(),
                expected.to_bits()
            );
        }
    }

    fn data(n: usize, seed: usize) -> Vec<f32> {
        (0..n)
            .map(|i| (((i + seed) * 7919) % 2003) as f32 / 1001.5 - 1.0)
            .collect()
    }

    /// The unfused walk is what tract computes on x86_64: its AVX kernel where the CPU has AVX.
    #[test]
    fn the_depthwise_walk_equals_tracts_x86_kernel() {
        let Some(tract_kernel) = tract_linalg::routines::depthwise_w_f32() else {
            return;
        };
        let taps = data(9, 1);
        let offsets: Vec<isize> = (0..9).map(|t| (t / 3) * 40 + t % 3).collect();
        let input = data(40 * 3 + 80 * 2 + 8, 2);
        for (len, stride) in [(77usize, 1isize), (33, 2), (5, 1)] {
            let (mut ours, mut theirs) = (vec![0f32; len], vec![0f32; len]);
            unsafe {
                depthwise::walk_w(
                    input.as_ptr(),
                    ours.as_mut_ptr(),
                    &taps,
                    &offsets,
                    0.25,
                    len,
                    stride,
                );
                tract_kernel(
                    input.as_ptr(),
                    theirs.as_mut_ptr(),
                    &taps,
                    &offsets,
                    0.25,
                    len,
                    stride,
                );
            }
            assert_eq!(bits(&ours), bits(&theirs), "len {len} stride {stride}");
        }
    }

    #[test]
    fn the_channel_inner_walk_is_bias_then_unfused_taps_in_order() {
        let (channels, len, taps) = (19usize, 6usize, 4usize);
        let kernel = data(taps * channels, 3);
        let input = data(len * channels + 3 * channels, 4);
        let bias = data(channels, 5);
        let tap_indices: Vec<usize> = (0..taps).collect();
        let offsets: Vec<isize> = (0..taps as isize)
            .map(|t| t * channels as isize / 2)
            .collect();
        let mut out = vec![0f32; len * channels];
        unsafe {
            depthwise::walk_c(
                input.as_ptr(),
                out.as_mut_ptr(),
                kernel.as_ptr(),
                &tap_indices,
                &offsets,
                bias.as_ptr(),
                channels,
                channels,
                len,
                channels as isize,
                channels as isize,
            );
        }
        for i in 0..len {
            for c in 0..channels {
                let mut s = bias[c];
                for t in 0..taps {
                    let x = input[i * channels + offsets[t] as usize + c];
                    s += kernel[t * channels + c] * x;
                }
                assert_eq!(
                    out[i * channels + c].to_bits(),
                    s.to_bits(),
                    "point {i} channel {c}"
                );
            }
        }
    }

    fn bits(xs: &[f32]) -> Vec<u32> {
        xs.iter().map(|x| x.to_bits()).collect()
    }
}
