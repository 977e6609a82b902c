//! Vector math at the CPU's full width: activations applied to runs of f32 in memory, with
//! AVX-512 (16 lanes), AVX2 + FMA (8 lanes) or portable code chosen at run time.
//!
//! Cranelift emits 128-bit vectors only; these are the `std::arch` loops the executor calls on
//! whole rows where an activation ends a kernel (a GEMM, depthwise or elementwise kernel's
//! epilogue) or is the kernel. Every function is written once over [`Lanes`], with the JIT's
//! range reductions, polynomials and clamps (`jit/math.rs`); NaN stays NaN through every
//! clamp. Two ISA-specific steps make results differ from the JIT's by an ulp or two, within
//! the tests' tolerance: divisions are reciprocal estimates refined by one Newton step, and
//! AVX-512 builds e^x's power of two with `vscalefps`.

#[cfg(target_arch = "x86_64")]
mod avx2;
#[cfg(target_arch = "x86_64")]
mod avx512;
mod portable;

#[cfg(target_arch = "x86_64")]
pub(crate) use {avx2::Avx2, avx512::Avx512};

/// An activation applied element by element.
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum Activation {
    Exp,
    Sigmoid,
    Tanh,
    Erf,
    /// `x * sigmoid(x)`.
    Silu,
    /// `x * Phi(x)` through erf.
    Gelu,
    /// `x * Phi(x)` by the tanh approximation.
    GeluTanh,
    /// `min(max(alpha x + beta, 0), 1)`.
    HardSigmoid {
        alpha: f32,
        beta: f32,
    },
    /// `x * min(max(x / 6 + 1/2, 0), 1)`.
    HardSwish,
    /// `log(1 + e^x)`, as `max(x, 0) + log(1 + e^-|x|)`.
    Softplus,
    /// `x * tanh(softplus(x))`.
    Mish,
    /// `clamp(round(x / scale), lo, hi) * scale`: `x` rounded to an integer grid of `scale`
    /// steps, as a quantize-dequantize pair computes it (the division exact, halves to even).
    RoundToGrid {
        scale: f32,
        lo: f32,
        hi: f32,
    },
}

/// One SIMD register of f32 lanes and what the activations need of it.
pub(crate) trait Lanes: Copy {
    type Mask: Copy;
    unsafe fn splat(x: f32) -> Self;
    unsafe fn load(p: *const f32) -> Self;
    unsafe fn store(self, p: *mut f32);
    /// The first `n` lanes from `p` (no more are read), the rest zero; `n` at most the width.
    unsafe fn load_first(p: *const f32, n: usize) -> Self;
    /// The first `n` lanes to `p` (no more are written); `n` at most the width.
    unsafe fn store_first(self, p: *mut f32, n: usize);
    unsafe fn add(self, o: Self) -> Self;
    unsafe fn sub(self, o: Self) -> Self;
    unsafe fn mul(self, o: Self) -> Self;
    unsafe fn div(self, o: Self) -> Self;
    /// `self * m + a`, fused where the ISA has it.
    unsafe fn mul_add(self, m: Self, a: Self) -> Self;
    /// To the nearest integer, halves to even.
    unsafe fn round(self) -> Self;
    unsafe fn abs(self) -> Self;
    /// `self < o` lane by lane (false for NaN).
    unsafe fn lt(self, o: Self) -> Self::Mask;
    /// `self > o` lane by lane (false for NaN).
    unsafe fn gt(self, o: Self) -> Self::Mask;
    /// `self >= o` lane by lane (false for NaN).
    unsafe fn ge(self, o: Self) -> Self::Mask;
    /// `self == o` lane by lane (false for NaN).
    unsafe fn eq(self, o: Self) -> Self::Mask;
    unsafe fn select(m: Self::Mask, yes: Self, no: Self) -> Self;
    /// `self` clamped to `[lo, hi]`; NaN stays NaN.
    unsafe fn clamp(self, lo: f32, hi: f32) -> Self;
    /// `1 / self`, to within an ulp or two: a reciprocal estimate refined by Newton's step
    /// where the ISA has one (a division costs ten times its throughput).
    unsafe fn recip(self) -> Self;
    /// e^x (see [`exp`]).
    #[inline(always)]
    unsafe fn exp(self) -> Self {
        exp_by_bits(self)
    }
    /// `2^n` for lanes holding `n + MAGIC` (see [`exp`]): the bits of `self` minus MAGIC's,
    /// plus the exponent bias, shifted into the exponent field.
    unsafe fn pow2_of_magic(self) -> Self;
    /// For [`log`]: `e = (bits(self) - offset) >> 23` (arithmetic), as a float, and `self`
    /// with `e` taken out of its exponent field.
    unsafe fn split_exponent(self, offset: i32) -> (Self, Self);
}

const MAGIC: f32 = 12_582_912.0;
use crate::jit::math::{ERF_P, ERF_Q, EXP_POLY, LOG_POLY, TANH_SMALL_POLY};
pub(crate) use crate::jit::math::{EXP_MAX, EXP_MIN};
/// Below [`EXP_MAX`], so `1 + e^x` stays finite where its reciprocal is taken.
const FINITE_EXP_MAX: f32 = 88.0;

/// `coefficients` (highest degree first) at `x` by Estrin's scheme, as `jit::math` evaluates.
#[inline(always)]
pub(crate) unsafe fn poly<V: Lanes>(x: V, coefficients: &[f32]) -> V {
    let mut terms = [V::splat(0.0); 8];
    let n = coefficients.len();
    for (i, &k) in coefficients.iter().rev().enumerate() {
        terms[i] = V::splat(k);
    }
    let (mut len, mut power) = (n, x);
    while len > 1 {
        let mut j = 0;
        while 2 * j < len {
            terms[j] = if 2 * j + 1 < len { terms[2 * j + 1].mul_add(power, terms[2 * j]) } else { terms[2 * j] };
            j += 1;
        }
        len = j;
        if len > 1 {
            power = power.mul(power);
        }
    }
    terms[0]
}

/// `x` clamped to `[lo, hi]`; NaN stays NaN.
#[inline(always)]
pub(crate) unsafe fn clamp<V: Lanes>(x: V, lo: f32, hi: f32) -> V {
    x.clamp(lo, hi)
}

/// [`clamp`] by compare and select: where min / max instructions are not modelled (Miri).
#[inline(always)]
pub(crate) unsafe fn clamp_by_select<V: Lanes>(x: V, lo: f32, hi: f32) -> V {
    let (l, h) = (V::splat(lo), V::splat(hi));
    let x = V::select(x.gt(h), h, x);
    V::select(x.lt(l), l, x)
}

/// One Newton step on a reciprocal estimate `r` of `1 / x`: `r (2 - x r)`.
#[inline(always)]
pub(crate) unsafe fn refine_recip<V: Lanes>(x: V, r: V) -> V {
    r.mul(V::splat(2.0).sub(x.mul(r)))
}

/// e^x: range reduction by ln 2 and a degree-6 polynomial; 0 below f32's normal range,
/// infinity above its largest value ([`Lanes::exp`], which an ISA may compute its own way).
#[inline(always)]
pub(crate) unsafe fn exp<V: Lanes>(x: V) -> V {
    x.exp()
}

/// [`exp`] with the exponent built from its bits: any ISA.
#[inline(always)]
pub(crate) unsafe fn exp_by_bits<V: Lanes>(x: V) -> V {
    let c = clamp(x, EXP_MIN, EXP_MAX);
    let shifted = c.mul(V::splat(std::f32::consts::LOG2_E)).add(V::splat(MAGIC));
    let n = shifted.sub(V::splat(MAGIC));
    let r = n.mul_add(V::splat(-0.693_145_75), c);
    let r = n.mul_add(V::splat(-1.428_606_8e-6), r);
    let p = poly(r, &EXP_POLY);
    let e = p.mul(shifted.pow2_of_magic());
    let e = V::select(x.gt(V::splat(EXP_MAX)), V::splat(f32::INFINITY), e);
    V::select(x.lt(V::splat(EXP_MIN)), V::splat(0.0), e)
}

/// ln x for x > 0: the exponent split off and `2 atanh(s)` of the mantissa; ln 0 = -inf,
/// ln inf = inf, ln of a negative or NaN is NaN.
#[inline(always)]
pub(crate) unsafe fn log<V: Lanes>(x: V) -> V {
    let (e, m) = x.split_exponent(0x3f35_04f3);
    let one = V::splat(1.0);
    let s = m.sub(one).div(m.add(one));
    let p = poly(s.mul(s), &LOG_POLY);
    let y = e.mul(V::splat(std::f32::consts::LN_2)).add(s.mul(p));
    let zero = V::splat(0.0);
    let y = V::select(x.eq(zero), V::splat(f32::NEG_INFINITY), y);
    let y = V::select(x.eq(V::splat(f32::INFINITY)), V::splat(f32::INFINITY), y);
    V::select(x.ge(zero), y, V::splat(f32::NAN))
}

/// `1 - 2 / (e^2x + 1)`, and the odd Taylor series below |x| = 0.25.
#[inline(always)]
pub(crate) unsafe fn tanh<V: Lanes>(x: V) -> V {
    let one = V::splat(1.0);
    let e = exp(x.add(x).clamp(f32::NEG_INFINITY, FINITE_EXP_MAX));
    let large = one.sub(V::splat(2.0).mul(e.add(one).recip()));
    let p = poly(x.mul(x), &TANH_SMALL_POLY);
    V::select(x.abs().lt(V::splat(0.25)), x.mul(p), large)
}

/// 1 / (1 + e^-x).
#[inline(always)]
pub(crate) unsafe fn sigmoid<V: Lanes>(x: V) -> V {
    // e^-x kept finite: a reciprocal estimate of infinity would make the Newton step NaN.
    let e = exp(V::splat(0.0).sub(x).clamp(f32::NEG_INFINITY, FINITE_EXP_MAX));
    // 0 exactly where e^-x saturates, as the JIT's sigmoid (and IEEE's 1 / (1 + inf)).
    V::select(x.lt(V::splat(-EXP_MAX)), V::splat(0.0), V::splat(1.0).add(e).recip())
}

/// The rational fit on [-4, 4] the JIT uses.
#[inline(always)]
pub(crate) unsafe fn erf<V: Lanes>(x: V) -> V {
    let x = clamp(x, -4.0, 4.0);
    let x2 = x.mul(x);
    let p = poly(x2, &ERF_P);
    let q = poly(x2, &ERF_Q);
    x.mul(p).mul(q.recip())
}

#[inline(always)]
unsafe fn softplus<V: Lanes>(x: V) -> V {
    let zero = V::splat(0.0);
    let positive = V::select(x.lt(zero), zero, x); // max(x, 0), NaN stays
    let e = exp(zero.sub(x.abs()));
    positive.add(log(V::splat(1.0).add(e)))
}

/// `act` of one register, as the JIT expands it (`exec/elementwise.rs`).
#[inline(always)]
pub(crate) unsafe fn activate<V: Lanes>(act: Activation, x: V) -> V {
    let (half, one, zero) = (V::splat(0.5), V::splat(1.0), V::splat(0.0));
    let unit = |t: V| {
        // min(max(t, 0), 1) with NaN kept.
        let t = V::select(t.lt(zero), zero, t);
        V::select(t.gt(one), one, t)
    };
    match act {
        Activation::Exp => exp(x),
        Activation::Sigmoid => sigmoid(x),
        Activation::Tanh => tanh(x),
        Activation::Erf => erf(x),
        Activation::Silu => x.mul(sigmoid(x)),
        Activation::Gelu => {
            let p = erf(x.mul(V::splat(std::f32::consts::FRAC_1_SQRT_2))).add(one);
            x.mul(half).mul(p)
        }
        Activation::GeluTanh => {
            let x3 = x.mul(x).mul(x);
            let u = x.add(x3.mul(V::splat(0.044715))).mul(V::splat(0.797_884_6));
            x.mul(half).mul(tanh(u).add(one))
        }
        Activation::HardSigmoid { alpha, beta } => unit(x.mul(V::splat(alpha)).add(V::splat(beta))),
        Activation::HardSwish => x.mul(unit(x.mul(V::splat(1.0 / 6.0)).add(half))),
        Activation::Softplus => softplus(x),
        Activation::Mish => x.mul(tanh(softplus(x))),
        Activation::RoundToGrid { scale, lo, hi } => {
            let k = V::splat(scale);
            x.div(k).round().clamp(lo, hi).mul(k)
        }
    }
}

/// The activations applied in order to one register.
#[inline(always)]
pub(crate) unsafe fn chain<V: Lanes>(acts: &[Activation], mut x: V) -> V {
    for &a in acts {
        x = activate(a, x);
    }
    x
}

/// `to[i] = acts(from[i])`, at the widest width the CPU has. `from` and `to` may be the same
/// memory (in place) but must not otherwise overlap.
///
/// # Safety
/// `from` and `to` hold `n` floats each.
pub unsafe fn apply_raw(acts: &[Activation], from: *const f32, to: *mut f32, n: usize) {
    if acts.is_empty() {
        if !std::ptr::eq(from, to) {
            std::ptr::copy(from, to, n);
        }
        return;
    }
    #[cfg(target_arch = "x86_64")]
    {
        if is_x86_feature_detected!("avx512f") {
            return avx512::apply(acts, from, to, n);
        }
        if is_x86_feature_detected!("avx2") && is_x86_feature_detected!("fma") {
            return avx2::apply(acts, from, to, n);
        }
    }
    portable::apply(acts, from, to, n)
}

/// [`apply_raw`] in place on a slice.
pub fn apply_in_place(acts: &[Activation], x: &mut [f32]) {
    let p = x.as_mut_ptr();
    // SAFETY: the slice holds its length of floats; one pointer reads and writes it.
    unsafe { apply_raw(acts, p, p, x.len()) }
}

/// The ISA [`apply_raw`] runs on this CPU.
pub fn isa() -> &'static str {
    #[cfg(target_arch = "x86_64")]
    {
        if is_x86_feature_detected!("avx512f") {
            return "avx512f";
        }
        if is_x86_feature_detected!("avx2") && is_x86_feature_detected!("fma") {
            return "avx2+fma";
        }
    }
    "portable"
}

/// Runs every lane-width implementation the CPU has on `x`, for tests: (name, result).
#[cfg(test)]
pub(crate) fn every_isa(acts: &[Activation], x: &[f32]) -> Vec<(&'static str, Vec<f32>)> {
    let mut out = Vec::new();
    let run = |f: unsafe fn(&[Activation], *const f32, *mut f32, usize)| {
        let mut y = vec![f32::NAN; x.len()];
        // SAFETY: both hold x.len() floats.
        unsafe { f(acts, x.as_ptr(), y.as_mut_ptr(), x.len()) };
        y
    };
    out.push(("portable", run(portable::apply)));
    #[cfg(target_arch = "x86_64")]
    {
        if is_x86_feature_detected!("avx2") && is_x86_feature_detected!("fma") {
            out.push(("avx2", run(|a, f, t, n| unsafe { avx2::apply(a, f, t, n) })));
        }
        if is_x86_feature_detected!("avx512f") {
            out.push(("avx512", run(|a, f, t, n| unsafe { avx512::apply(a, f, t, n) })));
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn reference(act: Activation, x: f64) -> f64 {
        let sig = |x: f64| 1.0 / (1.0 + (-x).exp());
        let softplus = |x: f64| if x > 30.0 { x } else { x.exp().ln_1p() };
        match act {
            Activation::Exp => x.exp(),
            Activation::Sigmoid => sig(x),
            Activation::Tanh => x.tanh(),
            Activation::Erf => libm::erf(x),
            Activation::Silu => x * sig(x),
            Activation::Gelu => 0.5 * x * (1.0 + libm::erf(x / std::f64::consts::SQRT_2)),
            Activation::GeluTanh => {
                0.5 * x * (1.0 + ((2.0 / std::f64::consts::PI).sqrt() * (x + 0.044715 * x * x * x)).tanh())
            }
            Activation::HardSigmoid { alpha, beta } => (alpha as f64 * x + beta as f64).clamp(0.0, 1.0),
            Activation::HardSwish => x * (x / 6.0 + 0.5).clamp(0.0, 1.0),
            Activation::Softplus => softplus(x),
            Activation::Mish => x * softplus(x).tanh(),
            Activation::RoundToGrid { scale, lo, hi } => {
                (((x as f32 / scale).round_ties_even().clamp(lo, hi)) * scale) as f64
            }
        }
    }

    const ALL: [Activation; 12] = [
        Activation::Exp,
        Activation::Sigmoid,
        Activation::Tanh,
        Activation::Erf,
        Activation::Silu,
        Activation::Gelu,
        Activation::GeluTanh,
        Activation::HardSigmoid { alpha: 0.2, beta: 0.5 },
        Activation::HardSwish,
        Activation::Softplus,
        Activation::Mish,
        Activation::RoundToGrid { scale: 0.3, lo: -10.0, hi: 20.0 },
    ];

    /// Every activation on every width the CPU has matches f64 within 1e-6 relative (2e-6
    /// absolute near zero), over a range with every tail length, and keeps NaN.
    #[test]
    fn small_activations_match_f64_on_every_isa() {
        // Every 0.02 from -12 to 12 (every 0.4 under Miri, which interprets each lane op).
        let (n, step) = if cfg!(miri) { (61, 0.4) } else { (1203, 0.02) };
        let mut xs: Vec<f32> = (0..n).map(|i| -12.0 + i as f32 * step).collect();
        xs.extend([0.0, -0.0, 1e-8, -1e-8, 40.0, -40.0, 100.0, -100.0, f32::NAN]);
        for act in ALL {
            for (isa, ys) in every_isa(&[act], &xs) {
                for (x, y) in xs.iter().zip(&ys) {
                    if x.is_nan() {
                        assert!(y.is_nan(), "{isa} {act:?}(NaN) = {y}");
                        continue;
                    }
                    // The f32 a correctly rounded result would be (infinity past f32's range).
                    let want = reference(act, *x as f64) as f32 as f64;
                    if want.is_infinite() {
                        assert_eq!(*y as f64, want, "{isa} {act:?}({x})");
                        continue;
                    }
                    let err = (*y as f64 - want).abs();
                    assert!(err <= 2e-6 + 1e-6 * want.abs(), "{isa} {act:?}({x}) = {y}, want {want}");
                }
            }
        }
    }

    #[test]
    fn small_chains_apply_in_order_and_in_place() {
        let xs: Vec<f32> = (0..37).map(|i| i as f32 * 0.1 - 2.0).collect();
        let acts = [Activation::Sigmoid, Activation::Tanh];
        for (isa, ys) in every_isa(&acts, &xs) {
            for (x, y) in xs.iter().zip(&ys) {
                let want = reference(Activation::Tanh, reference(Activation::Sigmoid, *x as f64));
                assert!((*y as f64 - want).abs() < 2e-6, "{isa}: {x} -> {y}, want {want}");
            }
        }
        let mut inplace = xs.clone();
        apply_in_place(&acts, &mut inplace);
        assert_eq!(inplace, every_isa(&acts, &xs).last().unwrap().1);
    }
}
