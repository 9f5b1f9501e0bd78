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
            let run = || -> TractResult<()> {
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
}
